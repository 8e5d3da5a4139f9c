#!/usr/bin/env python3
"""Checks that every op of ir/ops.def appears in at least one test of a suite, so that a new op without tests
fails the suite.

Usage: ops_coverage.py ROOT GLOB LABEL [--skip-prefix P] [--require TEXT]
  GLOB      test files relative to ROOT (e.g. test/frontend/ops-*.tir)
  --skip-prefix P   ignore files whose name starts with P (e.g. err-)
  --require TEXT    count only files containing TEXT (e.g. optest.py)
An op counts as covered when a counted file has a statement `... = NAME(` (for `return` and `yield`: a line
starting with the keyword) outside comments. Prints each uncovered op and `LABEL: N ops, M uncovered`.
"""
import argparse
import glob
import os
import re
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("glob")
    ap.add_argument("label")
    ap.add_argument("--skip-prefix")
    ap.add_argument("--require")
    a = ap.parse_args()
    ops = re.findall(r'^TGC_OP\(\w+,\s*"(\w+)"', open(os.path.join(a.root, "ir", "ops.def")).read(), re.M)
    code = []
    for path in sorted(glob.glob(os.path.join(a.root, a.glob))):
        if a.skip_prefix and os.path.basename(path).startswith(a.skip_prefix):
            continue
        text = open(path).read()
        if a.require and a.require not in text:
            continue
        code.extend(line.split("//", 1)[0] for line in text.splitlines())
    body = "\n".join(code)
    missing = [op for op in ops
               if not (re.search(r"^\s*%s\b" % op, body, re.M) if op in ("return", "yield")
                       else re.search(r"=\s*%s\(" % op, body))]
    for op in missing:
        print(f"{a.label}: op '{op}' has no test in {a.glob}")
    print(f"{a.label}: {len(ops)} ops, {len(missing)} uncovered")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Checks that every op of ir/ops.def is named in a file that must describe or implement each op, so that a
new op missing there fails a test (docs/adding-an-op.md lists these places).

Usage: ops_named.py ROOT FILE LABEL --kind docs|ref
  --kind docs   FILE is docs/ir.md: each op is spelled `name(...)` or `name` (in backquotes) in its section 8;
  --kind ref    FILE is the numpy reference (test/runtime/Inputs/ref.py): each op is a string literal "name"
                there, terminators excepted (the reference parses them as statements, not ops).
Prints each op not found and `LABEL: N ops, M missing`; exits 1 when an op is missing.
"""
import argparse
import os
import re
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("file")
    ap.add_argument("label")
    ap.add_argument("--kind", choices=["docs", "ref"], required=True)
    a = ap.parse_args()
    rows = re.findall(r'^TGC_OP\(\w+,\s*"(\w+)",[^,]*,[^,]*,[^,]*,([^,]*),', open(os.path.join(a.root, "ir", "ops.def")).read(), re.M)
    text = open(os.path.join(a.root, a.file)).read()
    missing = []
    if a.kind == "docs":
        start, end = text.find("\n## 8."), text.find("\n## 9.")
        if start < 0 or end < start:
            print(f"{a.label}: no section 8 (## 8. ... ## 9.) in {a.file}")
            return 1
        ops_text = text[start:end]
        missing = [op for op, _ in rows if not re.search(r"`%s[`(]" % op, ops_text)]
        where = "section 8 of " + a.file
    else:
        code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        missing = [op for op, flags in rows
                   if "TGC_OPF_TERMINATOR" not in flags and not re.search(r"[\"']%s[\"']" % op, code)]
        where = a.file
    for op in missing:
        print(f"{a.label}: op '{op}' is not in {where}")
    print(f"{a.label}: {len(rows)} ops, {len(missing)} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())

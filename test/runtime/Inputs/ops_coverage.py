#!/usr/bin/env python3
"""Checks that every op of ir/ops.def has a numerical test in test/runtime/ (a file *.tir, not err-*.tir, run
through optest.py).

Usage: ops_coverage.py REPO_ROOT

An op counts as covered when a test file that runs optest.py has a statement `... = NAME(` (for `return` and
`yield`: a line starting with the keyword) outside comments. Prints each uncovered op and a summary line
    runtime ops coverage: N ops, M uncovered
and exits 1 when M is non-zero or no op was found.
"""
import glob
import os
import re
import sys


def main(argv):
    root = argv[1]
    with open(os.path.join(root, "ir", "ops.def")) as f:
        ops = re.findall(r'^TGC_OP\(\s*\w+\s*,\s*"([a-z_0-9]+)"', f.read(), re.M)
    code = []
    for path in sorted(glob.glob(os.path.join(root, "test", "runtime", "*.tir"))):
        if os.path.basename(path).startswith("err-"):
            continue
        with open(path) as f:
            text = f.read()
        if "optest.py" not in text:
            continue
        code.extend(line.split("//", 1)[0] for line in text.splitlines())
    text = "\n".join(code)
    missing = []
    for op in ops:
        if op in ("return", "yield"):
            pat = r"^\s*%s\b" % op
        else:
            pat = r"=\s*%s\(" % re.escape(op)
        if not re.search(pat, text, re.M):
            missing.append(op)
    for op in missing:
        print("runtime ops coverage: op '%s' has no numerical test in test/runtime/*.tir" % op)
    print("runtime ops coverage: %d ops, %d uncovered" % (len(ops), len(missing)))
    return 1 if missing or not ops else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

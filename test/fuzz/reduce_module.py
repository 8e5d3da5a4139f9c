#!/usr/bin/env python3
"""Shrinks a module that scripts/fuzz-cli saved (fuzz-out/cli/SEED-STEP/) while it fails the same way.

Usage: reduce_module.py --tgc PATH DIR [--out FILE.tir]
Re-runs the step's command (the `$ ` line of DIR/log) on candidates: the body with one statement removed, or
with `return` giving another value (its result type changed to match). A candidate is kept when the failure
class (fuzz_cli.classify, digits ignored) stays the same. Writes DIR/reduced.tir (or --out) and prints it.
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree (the lit tests run this)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_cli  # noqa: E402

STMT = re.compile(r"^\s+(\(?%[\w, %]+\)?) = .* : (\(?.*\)?)$")


def key(why):
    return re.sub(r"\d+", "N", why) if why else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tgc", required=True)
    ap.add_argument("dir")
    ap.add_argument("--out")
    a = ap.parse_args()
    log = open(os.path.join(a.dir, "log")).read().splitlines()
    cmd = shlex.split(log[0][2:])
    tir = next(f for f in os.listdir(a.dir) if f.endswith(".tir") and f != "reduced.tir")
    lines = open(os.path.join(a.dir, tir)).read().split("\n")
    work = tempfile.mkdtemp(prefix="tgc-reduce.")
    for f in os.listdir(a.dir):
        if f.endswith(".safetensors"):
            shutil.copy(os.path.join(a.dir, f), work)
    tgc = os.path.abspath(a.tgc)
    argv = [tgc if c == "tgc" else c for c in cmd]

    def fails(cand):
        with open(os.path.join(work, tir), "w") as f:
            f.write("\n".join(cand))
        rc, out, to = fuzz_cli.run_one(argv, work, 120)
        return key(fuzz_cli.classify(rc, out, to))

    want = fails(lines)
    if want is None:
        print("reduce_module: the saved module does not fail any more", file=sys.stderr)
        return 1
    changed = True
    while changed:
        changed = False
        i = 0
        while i < len(lines):
            if STMT.match(lines[i]) and fails(lines[:i] + lines[i + 1:]) == want:
                lines = lines[:i] + lines[i + 1:]
                changed = True
                continue
            i += 1
        # return each single value instead
        ri = next(i for i, l in enumerate(lines) if l.strip().startswith("return "))
        fi = next(i for i, l in enumerate(lines) if l.strip().startswith("func @"))
        for l in lines[fi + 1:ri]:
            m = STMT.match(l)
            if not m or m.group(1).startswith("("):
                continue
            name, ty = m.group(1), m.group(2)
            cand = list(lines)
            cand[ri] = re.sub(r"return .*", f"return {name}", cand[ri])
            cand[fi] = re.sub(r"-> .* \{$", f"-> {ty} {{", cand[fi])
            if cand != lines and fails(cand) == want:
                lines = cand
                changed = True
                break
    out = a.out or os.path.join(a.dir, "reduced.tir")
    with open(out, "w") as f:
        f.write("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)
    print("\n".join(lines))
    print(f"// reduce_module: still fails as: {want}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

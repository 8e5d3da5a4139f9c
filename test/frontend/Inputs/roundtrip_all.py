#!/usr/bin/env python3
"""Checks print(parse(print(x))) == print(x) for every .tir file of the repository that tgc accepts.

Usage: roundtrip_all.py TGC REPO_ROOT

Walks REPO_ROOT/test and REPO_ROOT/examples for *.tir files, skipping anything under an Inputs/ directory
and every file whose RUN lines contain `not %tgc` (a test that expects tgc to fail). For each remaining file
it runs `TGC FILE`, then `TGC -` on that output, and compares the two outputs byte for byte. A file whose
RUN lines pass `--no-verify` to tgc is run with `--no-verify` too.

Prints each failure and mismatch, then one summary line
    roundtrip: N files, M mismatches, F failures
and exits 1 when M or F is non-zero (or when no file was found), 0 otherwise.
"""
import difflib
import os
import re
import subprocess
import sys

TIMEOUT_S = 120
RUN_RE = re.compile(r"\bRUN:(.*)$")


def run_lines(text):
    lines = []
    for line in text.splitlines():
        m = RUN_RE.search(line)
        if m:
            lines.append(m.group(1))
    return lines


def find_inputs(root):
    files = []
    for top in ("test", "examples"):
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d != "Inputs")
            for name in sorted(filenames):
                if name.endswith(".tir"):
                    files.append(os.path.join(dirpath, name))
    return files


def run_tgc(tgc, args, stdin=None):
    try:
        p = subprocess.run([tgc] + args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, b"timed out after %d s" % TIMEOUT_S, -1
    return p.stdout, p.stderr, p.returncode


def show(data, limit=40):
    lines = data.decode("utf-8", "replace").splitlines()
    out = lines[:limit]
    if len(lines) > limit:
        out.append("... (%d more lines)" % (len(lines) - limit))
    return "\n".join("    " + l for l in out)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: roundtrip_all.py TGC REPO_ROOT\n")
        return 2
    tgc, root = argv[1], argv[2]
    checked = mismatches = failures = 0
    for path in find_inputs(root):
        rel = os.path.relpath(path, root)
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        runs = run_lines(text)
        if any(re.search(r"\bnot\s+%tgc\b", r) for r in runs):
            continue
        flags = ["--no-verify"] if any(re.search(r"%tgc\b[^|]*--no-verify", r) for r in runs) else []
        checked += 1
        first, err, rc = run_tgc(tgc, flags + [path])
        if rc != 0:
            failures += 1
            print("roundtrip: FAIL %s: tgc exited %d on a file expected to parse" % (rel, rc))
            print(show(err))
            continue
        second, err, rc = run_tgc(tgc, flags + ["-"], stdin=first)
        if rc != 0:
            mismatches += 1
            print("roundtrip: MISMATCH %s: tgc exited %d re-parsing its own output" % (rel, rc))
            print(show(err))
            continue
        if first != second:
            mismatches += 1
            print("roundtrip: MISMATCH %s: print(parse(print(x))) != print(x)" % rel)
            diff = difflib.unified_diff(first.decode("utf-8", "replace").splitlines(),
                                        second.decode("utf-8", "replace").splitlines(),
                                        "print(x)", "print(parse(print(x)))", lineterm="")
            print(show("\n".join(diff).encode()))
    print("roundtrip: %d files, %d mismatches, %d failures" % (checked, mismatches, failures))
    if checked == 0:
        print("roundtrip: no .tir files found under %s" % root)
        return 1
    return 1 if mismatches or failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

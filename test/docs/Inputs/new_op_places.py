#!/usr/bin/env python3
"""Keeps docs/adding-an-op.md true: adds a fake op to a scratch copy of the source tree and checks that the
places the build and the coverage tests then flag are exactly the places the document's table lists.

Usage: new_op_places.py --src ROOT --work DIR [--jobs N]
       new_op_places.py --src ROOT --table-only

--table-only (quick, no build) checks only that each place the table lists exists: the file, the function
defined in it, the test. It catches a renamed function or a moved test on every lit run; the full check
below needs the `long` lit feature.

1. ROOT is copied to DIR/src (build trees, .git and .venv left out) and a row for `frobnicate`, a unary
   elementwise op, is added to ir/ops.def after `clamp`.
2. DIR/src is configured (Ninja, -DTGC_WERROR=ON, as CI builds) and built with `ninja -k 0`. -Wswitch is
   demoted from an error to a warning (-Wno-error=switch) so that one build both names every switch over
   ops that lacks the new op (each would fail a -Werror build: "enumeration value 'TGC_OP_FROBNICATE' not
   handled in switch") and yields binaries for step 3. Each such switch is a place `FILE:FUNCTION()`; any other
   compile error is reported as well (and counts as a place, so the comparison fails on it).
3. The unit tests run (ctest), then the coverage tests: the lit tests that read the op table, found as the
   tests whose text names ir/ops.def or a script under test/ that reads it (ops_coverage.py, nvrtc_sweep.py,
   ...). Each that fails is a place `TEST-PATH`; one lit reports UNSUPPORTED here (no NVRTC) is left out of
   the comparison and said so. TGC_CACHE_DIR (the suite's kernel cache) is passed on, so the NVRTC sweep only
   compiles kernels that the cache lacks.
4. The table under "## Checked places" in docs/adding-an-op.md (rows naming `FILE` `FUNCTION()` or `TEST-PATH`)
   is compared with the flagged set. Every difference is printed (MISSING: flagged, not in the table; STALE: in
   the table, not flagged), then `new-op places: N flagged (B by the build, T by tests), the table lists M, D
   differ`. Exits 1 when D > 0 or a stage could not run.
"""
import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import time

START = time.time()
ROW = 'TGC_OP(FROBNICATE,     "frobnicate",     1,  1,  1,  TGC_OPF_ELEMWISE,                               "")'
DOC = "docs/adding-an-op.md"
SELF = os.path.basename(__file__)


def say(msg):
    print("new-op: " + msg, flush=True)


def stage(what):
    say("[%3.0fs] %s" % (time.time() - START, what))


def copy_tree(src, dst):
    """Copies SRC to DST without .git, .venv and what .gitignore names at the top (build trees, fuzz output)."""
    top = [".git", ".venv"]
    gi = os.path.join(src, ".gitignore")
    if os.path.exists(gi):
        top += [l.strip().strip("/") for l in open(gi) if l.strip() and not l.startswith("#") and "/" in l.strip()]

    def ignore(d, names):
        skip = {n for n in names if n == "__pycache__" or n.endswith(".pyc")}
        if os.path.abspath(d) == os.path.abspath(src):
            skip |= {n for n in names if any(fnmatch.fnmatch(n, p) for p in top)}
        return skip

    shutil.copytree(src, dst, ignore=ignore, symlinks=True)


def add_row(src):
    path = os.path.join(src, "ir", "ops.def")
    lines = open(path).read().split("\n")
    at = next((i for i, l in enumerate(lines) if l.startswith("TGC_OP(CLAMP,")), None)
    if at is None:
        raise SystemExit("new-op: error: no clamp row in ir/ops.def to add the fake op after")
    lines.insert(at + 1, ROW)
    open(path, "w").write("\n".join(lines))


def run(cmd, log, env=None, cwd=None):
    with open(log, "w") as f:
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd).returncode


def build_places(src, log):
    """Switches that miss the op (from -Wswitch) and other compile errors, as FILE:FUNCTION() places."""
    places, errors = set(), set()
    func = {}
    prefix = os.path.abspath(src) + os.sep
    for line in open(log, errors="replace"):
        line = line.rstrip("\n")
        m = re.match(r"^(\S+?): In function '(\w+)':$", line)
        if m:
            func[m.group(1)] = m.group(2)
            continue
        m = re.match(r"^(\S+?):(\d+):\d+: (warning|error): (.*)$", line)
        if not m:
            continue
        path, kind, msg = m.group(1), m.group(3), m.group(4)
        rel = path[len(prefix):] if path.startswith(prefix) else path
        where = "%s:%s()" % (rel, func.get(path, "?"))
        if kind == "warning" and "'TGC_OP_FROBNICATE' not handled in switch" in msg:
            places.add(where)
        elif kind == "error":
            errors.add("%s:%s: %s" % (rel, m.group(2), msg))
            places.add(where)
    return places, errors


def coverage_tests(src):
    """The lit tests that read the op table: they name ir/ops.def or a script under test/ that does."""
    test_dir = os.path.join(src, "test")
    scripts = set()
    reads = re.compile(r"[\"']ir[\"'],\s*[\"']ops\.def[\"']|[\"']ir/ops\.def[\"']")
    for d, _, names in os.walk(test_dir):
        for n in names:
            if n.endswith(".py") and n != SELF and reads.search(open(os.path.join(d, n), errors="replace").read()):
                scripts.add(n)
    tests = []
    for d, dirs, names in os.walk(test_dir):
        dirs[:] = sorted(x for x in dirs if x not in ("Inputs", "unit", "fuzz", "Output"))
        for n in sorted(names):
            if not n.endswith((".test", ".tir")):
                continue
            text = open(os.path.join(d, n), errors="replace").read()
            if SELF in text:
                continue
            run_lines = "\n".join(l for l in text.splitlines() if "RUN:" in l)
            if "ops.def" in run_lines or any(s in run_lines for s in scripts):
                tests.append(os.path.relpath(os.path.join(d, n), src))
    return tests


def doc_places(src):
    """The places listed in the "## Checked places" table of the document."""
    text = open(os.path.join(src, DOC)).read()
    m = re.search(r"^## Checked places\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not m:
        raise SystemExit("new-op: error: %s has no '## Checked places' section" % DOC)
    places = set()
    for line in m.group(1).splitlines():
        if not line.startswith("|") or re.match(r"^\|[\s|:-]+$", line):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        spans = re.findall(r"`([^`]+)`", cells[1] if len(cells) > 1 else "")
        if not spans:
            continue
        if spans[0].startswith("test/"):
            places.add(spans[0])
        elif len(spans) > 1 and spans[1].endswith("()"):
            places.add("%s:%s" % (spans[0], spans[1]))
    return places


def table_only(src):
    """Each place of the table exists: FILE defines FUNCTION(), a TEST-PATH is a file."""
    bad = 0
    listed = sorted(doc_places(src))
    for p in listed:
        path, _, func = p.partition(":")
        full = os.path.join(src, path)
        if not os.path.isfile(full):
            say("NO SUCH FILE in the table of %s: %s" % (DOC, path))
            bad += 1
        elif func and not re.search(r"^[A-Za-z_].*\b%s\(" % re.escape(func[:-2]), open(full).read(), re.M):
            say("NO SUCH FUNCTION in the table of %s: %s defines no %s" % (DOC, path, func))
            bad += 1
    print("new-op table: %d places, %d not found" % (len(listed), bad))
    return 1 if bad or not listed else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--work")
    ap.add_argument("--jobs", default="2")
    ap.add_argument("--table-only", action="store_true")
    a = ap.parse_args()
    if a.table_only:
        return table_only(a.src)
    if not a.work:
        ap.error("--work is needed (or --table-only)")
    work = os.path.abspath(a.work)
    src, bld = os.path.join(work, "src"), os.path.join(work, "build")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    copy_tree(a.src, src)
    add_row(src)
    env = dict(os.environ, LC_ALL="C")
    cfg = ["cmake", "-S", src, "-B", bld, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=", "-DTGC_WERROR=ON",
           "-DCMAKE_C_FLAGS=-Wno-error=switch", "-DPython3_EXECUTABLE=" + sys.executable]
    stage("configuring")
    if run(cfg, os.path.join(work, "configure.log"), env) != 0:
        say("error: configuring the scratch tree failed (see %s)" % os.path.join(work, "configure.log"))
        return 1
    build_log = os.path.join(work, "build.log")
    stage("building")
    built = run(["ninja", "-C", bld, "-k", "0", "-j", a.jobs], build_log, env) == 0
    flagged_build, errors = build_places(src, build_log)
    for p in sorted(flagged_build):
        say("the build flags %s" % p)
    for e in sorted(errors):
        say("compile error: %s" % e)
    if not built:
        say("error: the scratch build failed (see %s); the tests were not run" % build_log)
        return 1

    flagged_tests, unchecked = set(), set()
    unit_log = os.path.join(work, "ctest.log")
    stage("unit tests")
    run(["ctest", "--test-dir", bld, "--no-tests=error"], unit_log, env)
    for line in open(unit_log, errors="replace"):
        m = re.search(r"Test\s+#\d+: (\S+) \.+\*?\*?\*?(Failed|Exception|Timeout|Not Run)", line)
        if m:
            flagged_tests.add("test/unit/%s.c" % m.group(1))
    tests = coverage_tests(src)
    lit_log = os.path.join(work, "lit.log")
    stage("coverage tests")
    lit = [sys.executable, "-c", "import sys, lit.main; sys.argv[0] = 'lit'; lit.main.main()", "-v",
           "--no-progress-bar"] + [os.path.join(bld, t) for t in tests]
    run(lit, lit_log, env)
    results = {}
    for line in open(lit_log, errors="replace"):
        m = re.match(r"^(PASS|FAIL|XFAIL|XPASS|UNSUPPORTED|UNRESOLVED|TIMEOUT): tgc :: (\S+)", line)
        if m:
            results["test/" + m.group(2)] = m.group(1)
    for t in tests:
        r = results.get(t, "NOT RUN")
        if r == "UNSUPPORTED":
            unchecked.add(t)
        elif r != "PASS":
            flagged_tests.add(t)
    say("coverage tests run: %d (%s)" % (len(tests), ", ".join(tests)))
    for p in sorted(flagged_tests):
        say("a test flags %s (%s)" % (p, results.get(p, "unit test failed")))

    stage("done")
    listed = doc_places(src)
    flagged = flagged_build | flagged_tests
    missing = sorted(flagged - listed)
    stale = sorted(p for p in listed - flagged if p not in unchecked)
    for p in missing:
        say("MISSING from the table of %s: %s" % (DOC, p))
    for p in stale:
        say("STALE in the table of %s (nothing flags it): %s" % (DOC, p))
    for p in sorted(unchecked & listed):
        say("not checked here (%s is UNSUPPORTED in this build): %s" % (p, p))
    print("new-op places: %d flagged (%d by the build, %d by tests), the table lists %d, %d differ" %
          (len(flagged), len(flagged_build), len(flagged_tests), len(listed), len(missing) + len(stale)))
    return 1 if missing or stale else 0


if __name__ == "__main__":
    sys.exit(main())

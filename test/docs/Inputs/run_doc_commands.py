#!/usr/bin/env python3
"""Runs the commands that README.md and docs/*.md mark as runnable, so the docs stay true (docs/README.md
describes the markers):

  ```sh runnable [requires=FEATURE,...] [exit=N]
  build/bin/tgc examples/mlp.tir         # one command a line ('\\' continues it); '#' lines are comments
  ```

  ```sh runnable
  $ build/bin/tgc examples/mlp.tir       # with '$ ' prompts, only those lines are commands, and the lines
  module @mlp ...                         # under one are its expected output (stdout and stderr together);
  ...                                     # a line '...' stands for any number of lines
  ```

  ```python file=mymodels.py              # (any language) the block is written to that file for later commands
  ```

Each document runs in its own temporary directory that looks like the repository root: every top-level entry
of the source tree is linked in, except that `build` is the build tree under test, `.venv/bin/python` is the
--python given (the test suite's: a machine may have no .venv), and build trees (build*/, any directory with a
CMakeCache.txt, the tree under test), .git, fuzz-out and out are left out. Commands run there with bash, in
document order; outputs (`-o out.tir`, `out/`) land in the temporary directory. No directory that holds a
`tgc` is on PATH: the docs say `build/bin/tgc`. A block whose requirements are
not in --features is skipped. Fails, naming FILE:LINE and the command, when a command exits with a status
other than the block's `exit=` (default 0), prints other output than shown, or the run adds or changes a file
of the source tree (build trees inside it, where other tests write, are not watched).

Usage: run_doc_commands.py --src ROOT --tgc BUILD/bin/tgc [--python PY] [--features a,b] [--timeout S] [FILE.md ...]
  FILE.md default: ROOT/README.md and ROOT/docs/*.md
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^(\s*)```(.*)$")
SKIP_TOP = re.compile(r"^(build.*|\.git|fuzz-out|out)$")


class Block:
    def __init__(self, path, line, info, lines):
        self.path, self.line, self.lines = path, line, lines
        words = info.split()
        self.lang = words[0] if words else ""
        self.runnable = "runnable" in words[1:]
        self.opts = dict(w.split("=", 1) for w in words[1:] if "=" in w)

    def requires(self):
        r = self.opts.get("requires", "")
        return [x for x in r.split(",") if x]

    def commands(self):
        """(line number, command, expected output lines or None)."""
        out = []
        prompt = any(l.startswith("$ ") for l in self.lines)
        i = 0
        while i < len(self.lines):
            l, n = self.lines[i], self.line + 1 + i
            i += 1
            if prompt and not l.startswith("$ "):
                continue
            cmd = l[2:] if prompt else l
            if not cmd.strip() or cmd.lstrip().startswith("#"):
                continue
            while cmd.endswith("\\") and i < len(self.lines):
                cmd = cmd[:-1] + "\n" + self.lines[i]
                i += 1
            expect = None
            if prompt:
                expect = []
                while i < len(self.lines) and not self.lines[i].startswith("$ "):
                    expect.append(self.lines[i])
                    i += 1
            out.append((n, cmd, expect))
        return out


def blocks_of(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, info, start = m.group(1), m.group(2).strip(), i
        body = []
        i += 1
        while i < len(lines) and not FENCE.match(lines[i]):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        i += 1
        out.append(Block(path, start + 1, info, body))
    return out


def matches(expect, actual):
    """Lines of EXPECT equal those of ACTUAL in order, '...' standing for any number of lines."""
    e = [l.rstrip() for l in expect]
    while e and not e[-1]:
        e.pop()
    a = [l.rstrip() for l in actual.rstrip("\n").split("\n")] if actual.strip() else []

    def rec(i, j):
        if i == len(e):
            return j == len(a)
        if e[i] == "...":
            return any(rec(i + 1, k) for k in range(j, len(a) + 1))
        return j < len(a) and e[i] == a[j] and rec(i + 1, j + 1)

    return rec(0, 0)


def is_build_tree(path, build):
    """A build tree: the one under test, or any directory CMake configured (it holds a CMakeCache.txt)."""
    return os.path.realpath(path) == os.path.realpath(build) or os.path.isfile(os.path.join(path, "CMakeCache.txt"))


def snapshot(root, build):
    """Every file of the source tree outside the build trees, with its size and mtime."""
    seen = {}
    for top in os.listdir(root):
        if SKIP_TOP.match(top) or top in (".venv",):
            continue
        p = os.path.join(root, top)
        if os.path.islink(p) or not os.path.isdir(p):
            st = os.lstat(p)
            seen[top] = (st.st_size, st.st_mtime_ns)
            continue
        if is_build_tree(p, build):
            continue
        for d, dirs, files in os.walk(p):
            dirs[:] = [x for x in dirs if x != "__pycache__" and not is_build_tree(os.path.join(d, x), build)]
            for f in files:
                fp = os.path.join(d, f)
                st = os.lstat(fp)
                seen[os.path.relpath(fp, root)] = (st.st_size, st.st_mtime_ns)
    return seen


def workdir(src, build, python):
    w = tempfile.mkdtemp(prefix="tgc-docs.")
    for top in os.listdir(src):
        p = os.path.join(src, top)
        if not SKIP_TOP.match(top) and top != ".venv" and not (os.path.isdir(p) and is_build_tree(p, build)):
            os.symlink(p, os.path.join(w, top))
    os.symlink(os.path.abspath(build), os.path.join(w, "build"))
    # a script, not a link: a venv's python finds its packages only when run by its own path
    os.makedirs(os.path.join(w, ".venv", "bin"))
    py = os.path.join(w, ".venv", "bin", "python")
    with open(py, "w") as f:
        f.write("#!/bin/sh\nexec '%s' \"$@\"\n" % python.replace("'", "'\\''"))
    os.chmod(py, 0o755)
    return w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--tgc", required=True, help="the tgc under test: its build tree is the docs' build/")
    ap.add_argument("--python", default=sys.executable, help="what the docs' .venv/bin/python runs")
    ap.add_argument("--features", default="")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    src = os.path.abspath(a.src)
    features = set(x for x in a.features.split(",") if x)
    files = a.files or [os.path.join(src, "README.md")] + sorted(glob.glob(os.path.join(src, "docs", "*.md")))
    env = dict(os.environ)
    bindir = os.path.dirname(os.path.realpath(a.tgc))
    build = os.path.dirname(bindir)
    # no tgc on PATH, neither the one under test nor another build's or an installed one
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and os.path.realpath(p) != bindir and not os.path.exists(os.path.join(p, "tgc")))
    python = shutil.which(a.python) or a.python
    before = snapshot(src, build)
    ran = skipped = failed = 0
    for path in files:
        rel = os.path.relpath(path, src)
        w = workdir(src, build, os.path.abspath(python))
        try:
            for b in blocks_of(path):
                if "file" in b.opts:
                    with open(os.path.join(w, b.opts["file"]), "w") as f:
                        f.write("\n".join(b.lines) + "\n")
                    continue
                if not b.runnable:
                    continue
                missing = [r for r in b.requires() if r not in features]
                cmds = b.commands()
                if missing:
                    skipped += len(cmds)
                    print(f"{rel}:{b.line}: skipped {len(cmds)} command(s): requires {', '.join(missing)}")
                    continue
                want = int(b.opts.get("exit", "0"))
                for line, cmd, expect in cmds:
                    ran += 1
                    try:
                        p = subprocess.run(["bash", "-c", "set -o pipefail\n" + cmd], cwd=w, env=env,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=a.timeout)
                        rc, out = p.returncode, p.stdout.decode(errors="replace")
                    except subprocess.TimeoutExpired as e:
                        rc, out = "timeout", (e.stdout or b"").decode(errors="replace")
                    why = None
                    if rc != want:
                        why = f"exit {rc}, expected {want}"
                    elif expect is not None and not matches(expect, out):
                        why = "its output differs from the one shown"
                    if why:
                        failed += 1
                        print(f"{rel}:{line}: error: command failed ({why}): {cmd}")
                        if expect is not None and rc == want:
                            print("  shown:\n" + "".join(f"    {l}\n" for l in expect), end="")
                        print("  output:\n" + "".join(f"    {l}\n" for l in out.rstrip("\n").split("\n")[-40:]))
                    else:
                        print(f"{rel}:{line}: ok: {cmd.splitlines()[0]}")
        finally:
            shutil.rmtree(w, ignore_errors=True)
    after = snapshot(src, build)
    changed = sorted(p for p in after if before.get(p) != after[p])
    for p in changed:
        failed += 1
        print(f"error: the commands {'changed' if p in before else 'created'} '{p}' in the source tree")
    print(f"run_doc_commands: {ran} commands run, {skipped} skipped, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Runs a command, passes its standard output and error through, then prints `exit: N` on standard output.

Usage: exit_code.py [--stdin FILE] COMMAND [ARGS...]

N is the exit status, or `signal S` when the command was killed by signal S (a crash), so that a test can
pin the exact status with FileCheck (lit's `not` accepts any non-zero status).
"""
import subprocess
import sys


def main(argv):
    args = argv[1:]
    stdin = None
    if len(args) >= 2 and args[0] == "--stdin":
        stdin = open(args[1], "rb")
        args = args[2:]
    if not args:
        sys.stderr.write("usage: exit_code.py [--stdin FILE] COMMAND [ARGS...]\n")
        return 2
    sys.stdout.flush()
    p = subprocess.run(args, stdin=stdin)
    sys.stdout.flush()
    if p.returncode < 0:
        print("exit: signal %d" % -p.returncode)
    else:
        print("exit: %d" % p.returncode)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

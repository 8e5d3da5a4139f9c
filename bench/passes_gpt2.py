#!/usr/bin/env python3
"""Pass pipeline benchmark: exports GPT-2 124M (tools/tgc-export gpt2, needs the torch venv) unless --tir is
given, then runs `tgc -O2 --time-passes` R times (parse + verify + the -O2 pipeline + print, no codegen) and
reports the median pipeline time from the timing table (budget: 100 ms) and the whole process time.

Usage: .venv/bin/python bench/passes_gpt2.py [--tgc build/bin/tgc] [--tir FILE] [--runs 7]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tgc", default=os.path.join(ROOT, "build", "bin", "tgc"))
    ap.add_argument("--tir")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tir = args.tir
        if not tir:
            subprocess.run([sys.executable, os.path.join(ROOT, "tools", "tgc-export"), "gpt2", "-o", d],
                           check=True, stdout=subprocess.DEVNULL)
            tir = os.path.join(d, "gpt2.tir")
        nops = sum(1 for line in open(tir) if re.match(r"\s+(%|\()", line))
        pipeline, whole, table = [], [], ""
        for _ in range(args.runs):
            t0 = time.perf_counter()
            r = subprocess.run([args.tgc, "-O2", "--time-passes", tir, "-o", os.path.join(d, "out.tir")],
                               capture_output=True, text=True)
            whole.append((time.perf_counter() - t0) * 1e3)
            if r.returncode:
                sys.stderr.write(r.stderr)
                return 1
            table = r.stderr
            pipeline.append(float(re.search(r"Total Execution Time: ([0-9.]+) seconds", table).group(1)) * 1e3)
        print(table.rstrip())
        med = statistics.median(pipeline)
        print(f"passes_gpt2: {nops} ops; -O2 pipeline median {med:.1f} ms (min {min(pipeline):.1f}, {args.runs} runs; "
              f"budget 100 ms); whole process (parse+verify+passes+print) median {statistics.median(whole):.1f} ms")
    return 0 if med < 100 else 1


if __name__ == "__main__":
    sys.exit(main())

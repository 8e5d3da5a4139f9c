#!/usr/bin/env python3
"""The CLI fuzzer's loop (run through scripts/fuzz-cli): random valid modules from gen_modules.py through

  (a) tgc -O2 --verify-each=numerics m.tir -o m.opt.tir
  (b) tgc -O2 --emit=cuda --nvrtc-check m.tir -o m.cu        (unless --no-nvrtc)
  (c) tgc run m.tir --random-inputs --dim SYM=N ...

Every module is valid, so a failure is any exit status other than 0: a sanitizer report, a signal, a timeout,
exit 1 with an `error:` line (a valid module rejected) or exit 1 without one. Each failure is saved under
OUT/SEED-STEP/ (the module, its weights, the command and its log) and the loop goes on.

Usage: fuzz_cli.py --tgc PATH (--seconds N | --count N) [--seed N] [--out DIR] [--timeout S] [--no-nvrtc]
Prints `fuzz-cli: E executions of M modules, F failures` and one line per failure; exits 1 if any failed.
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree (the lit tests run this)
sys.path.insert(0, HERE)
import gen_modules  # noqa: E402

SANITIZER = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: \w+Sanitizer")


def classify(rc, out, timed_out):
    """None for a pass, else a one-line reason."""
    m = SANITIZER.search(out)
    if m:
        line = next((l for l in out.splitlines() if "SUMMARY:" in l or "runtime error:" in l), m.group(0))
        return "sanitizer: " + line.strip()
    if timed_out:
        return "timeout"
    if rc < 0 or rc >= 128:
        return f"signal/crash (exit {rc})"
    if rc == 0:
        return None
    errs = [l for l in out.splitlines() if "error:" in l]
    # NVRTC's own message says more than tgc's summary line above it
    err = next((l for l in errs if "NVRTC failed" not in l), errs[0] if errs else None)
    if rc == 1 and err is None:
        return "exit 1 without an error: line"
    return f"exit {rc}: " + (err.strip() if err else "(no message)")


def run_one(cmd, cwd, timeout):
    try:
        p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace"), False
    except subprocess.TimeoutExpired as e:
        return -9, (e.stdout or b"").decode(errors="replace"), True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tgc", required=True)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--count", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="fuzz-out/cli")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--no-nvrtc", action="store_true")
    a = ap.parse_args()
    if (a.seconds is None) == (a.count is None):
        ap.error("give --seconds or --count")
    tgc = os.path.abspath(a.tgc)
    end = time.monotonic() + (a.seconds or 0)
    work = tempfile.mkdtemp(prefix="tgc-fuzz-cli.")
    execs = modules = 0
    failures = []
    seed = a.seed
    try:
        while (a.count is not None and modules < a.count) or (a.seconds is not None and time.monotonic() < end):
            g = gen_modules.Gen(seed)
            name = f"m{seed}"
            text, syms = g.module(name)
            d = os.path.join(work, name)
            os.makedirs(d)
            with open(os.path.join(d, name + ".tir"), "w") as f:
                f.write(text)
            gen_modules.write_safetensors(os.path.join(d, name + ".safetensors"), g.weights)
            dims = gen_modules.run_dims(seed, syms)
            steps = [("O2-numerics", [tgc, "-O2", "--verify-each=numerics", name + ".tir", "-o", name + ".opt.tir"])]
            if not a.no_nvrtc:
                steps.append(("cuda", [tgc, "-O2", "--emit=cuda", "--nvrtc-check", name + ".tir", "-o", name + ".cu"]))
            steps.append(("run", [tgc, "run", name + ".tir", "--random-inputs"] + dims))
            modules += 1
            for step, cmd in steps:
                rc, out, timed_out = run_one(cmd, d, a.timeout)
                execs += 1
                why = classify(rc, out, timed_out)
                if why is None:
                    continue
                keep = os.path.join(a.out, f"{seed}-{step}")
                shutil.rmtree(keep, ignore_errors=True)
                os.makedirs(keep)
                for fn in (name + ".tir", name + ".safetensors"):
                    shutil.copy(os.path.join(d, fn), keep)
                shown = " ".join(shlex.quote(c if c != tgc else "tgc") for c in cmd)
                with open(os.path.join(keep, "log"), "w") as f:
                    f.write(f"$ {shown}\n# exit {rc}; {why}\n{out}")
                failures.append((seed, step, why, keep, shown))
                print(f"fuzz-cli: FAIL seed {seed} {step}: {why}  [{keep}]", flush=True)
            shutil.rmtree(d, ignore_errors=True)
            seed += 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"fuzz-cli: {execs} executions of {modules} modules (seeds {a.seed}..{seed - 1}), "
          f"{len(failures)} failures")
    classes = {}
    for s, step, why, keep, shown in failures:
        classes.setdefault((step, re.sub(r"\d+", "N", why)), []).append(keep)
    for (step, why), keeps in sorted(classes.items()):
        print(f"fuzz-cli:   {len(keeps)} x {step}: {why}   e.g. {keeps[0]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

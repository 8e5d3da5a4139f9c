#!/usr/bin/env python3
"""A stand-in for `tgc` that looks like a run on the CUDA backend, for optest-cuda-tol.test: it runs the real
tgc (FAKE_TGC, on the CPU backend), and for `run` prints the CUDA backend's summary line on standard error (unless FAKE_DEVICE=cpu)
and scales every f32 output by 1 + FAKE_SCALE (a relative error that size, as a different summation order
gives). Standard library only: the f32 .npy data is rewritten with the array module."""
import array
import os
import subprocess
import sys

# the real tgc runs on the CPU backend, so that on a GPU machine too only this script decides what the run looks like
argv = sys.argv[1:2] + ["--device=cpu"] + sys.argv[2:] if sys.argv[1:2] == ["run"] else sys.argv[1:]
r = subprocess.run([os.environ["FAKE_TGC"]] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
sys.stdout.buffer.write(r.stdout)
sys.stderr.buffer.write(r.stderr)
if r.returncode or sys.argv[1:2] != ["run"]:
    sys.exit(r.returncode)
if os.environ.get("FAKE_DEVICE") != "cpu":
    sys.stderr.write("cuda: 1 steps (1 kernels, 1 distinct, 0 cuBLASLt GEMMs) on a fake GPU (sm_90)\n")
scale = 1.0 + float(os.environ.get("FAKE_SCALE", "0"))
args = sys.argv[1:]
for i, a in enumerate(args[:-1]):
    if a == "--output":
        path = args[i + 1].split("=", 1)[1]
        data = open(path, "rb").read()
        hlen = int.from_bytes(data[8:10], "little")
        head = data[:10 + hlen]
        if b"'<f4'" not in head:
            continue
        v = array.array("f", data[10 + hlen:])
        open(path, "wb").write(head + array.array("f", (x * scale for x in v)).tobytes())
sys.exit(0)

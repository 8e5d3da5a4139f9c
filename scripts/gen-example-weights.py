#!/usr/bin/env python3
"""Generates the small .safetensors weights of every example model in examples/ (fixed seed, standard library
only, byte-for-byte reproducible). The parameters are read from the .tir file itself: every
`param() {name = "..."} : f32[d0, d1, ...]` gets a tensor. Initialisation: 2-D and larger weights are
Gaussian with std 1/sqrt(fan_in); 1-D '*.weight' (norm gains) are 1 + 0.1*N(0,1); biases 0.02*N(0,1).

Usage: scripts/gen-example-weights.py [--check] [FILE.tir ...]   (default: every examples/*.tir)
  --check   regenerate in memory and fail if a committed file differs
"""
import glob
import json
import math
import os
import random
import re
import struct
import sys
import zlib

PARAM = re.compile(r'param\(\)\s*\{name\s*=\s*"([^"]+)"\}\s*:\s*(\w+)\[([^\]]*)\]')


def params_of(tir_text):
    out = []
    for name, dtype, dims in PARAM.findall(tir_text):
        if dtype != "f32":
            raise SystemExit(f"gen-example-weights: parameter {name} is {dtype}; only f32 is generated")
        shape = [int(d) for d in dims.split(",")] if dims.strip() else []
        out.append((name, shape))
    return out


def make_tensor(rng, name, shape):
    n = math.prod(shape) if shape else 1
    if len(shape) >= 2:
        std = 1.0 / math.sqrt(shape[0])
        return [rng.gauss(0.0, std) for _ in range(n)]
    if name.endswith("weight"):
        return [1.0 + 0.1 * rng.gauss(0.0, 1.0) for _ in range(n)]
    return [0.02 * rng.gauss(0.0, 1.0) for _ in range(n)]


def safetensors_bytes(tensors):
    header, blobs, off = {}, [], 0
    for name, shape, values in tensors:
        blob = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    header["__metadata__"] = {"generator": "scripts/gen-example-weights.py"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def main():
    args = [a for a in sys.argv[1:] if a != "--check"]
    check = "--check" in sys.argv[1:]
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    files = args or sorted(glob.glob(os.path.join(root, "examples", "*.tir")))
    bad = 0
    for tir in files:
        text = open(tir).read()
        m = re.search(r'weights\s*=\s*"([^"]+)"', text)
        if not m:
            continue
        # one fixed seed per model, derived from its file name, so adding a model changes no other file
        rng = random.Random(zlib.crc32(os.path.basename(tir).encode()))
        tensors = [(n, s, make_tensor(rng, n, s)) for n, s in params_of(text)]
        data = safetensors_bytes(tensors)
        out = os.path.join(os.path.dirname(tir), m.group(1))
        if check:
            same = os.path.exists(out) and open(out, "rb").read() == data
            print(f"{os.path.basename(out)}: {'ok' if same else 'DIFFERS'}")
            bad += not same
            continue
        if len(data) >= 1 << 20:
            raise SystemExit(f"gen-example-weights: {out} would be {len(data)} bytes; examples stay under 1 MB")
        tmp = out + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, out)
        print(f"{os.path.basename(out)}: {len(tensors)} tensors, {len(data)} bytes")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

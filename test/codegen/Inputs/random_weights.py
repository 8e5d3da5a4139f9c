#!/usr/bin/env python3
"""Writes random weights for every param of a module's entry function to a .safetensors file, as optest.py's
--random-weights does (floats from N(0, 1), integers in -8..8 clipped to the dtype; i4 as I8 values in -8..7).

Usage: random_weights.py TGC FILE.tir OUT.safetensors [--seed N]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "Inputs"))
import optest  # noqa: E402
import ref  # noqa: E402


def main():
    tgc, tir, out = sys.argv[1:4]
    seed = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--seed" else 0
    mod = ref.load_module(tgc, tir)
    rng = np.random.default_rng(seed)
    tensors = []
    for op in optest.params_of(mod.entry(None).ops):
        ty = op.types[0]
        tensors.append((op.attrs["name"], ref.Val(optest.gen_array(rng, ty.dt, ty.shape({})), ty.dt)))
    ref.write_safetensors(out, tensors)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes good and deliberately broken .safetensors and .npy files for the I/O error tests.

Usage: mkfile.py KIND OUT   (KIND: see CASES below)
"""
import json
import struct
import sys


def st(header, data=b"", raw_header=None, length=None):
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    n = len(h) if length is None else length
    return struct.pack("<Q", n) + h + data


W = [0.5, -1.0, 2.0, 0.25, 1.5, -0.75, 3.0, 1.0]  # a 2x4 f32 matrix
WB = struct.pack("<8f", *W)
GOOD = {"w": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32]}}

CASES = {
    "st-good": lambda: st(GOOD, WB),
    "st-truncated-length": lambda: b"\x10\x00\x00",
    "st-truncated-header": lambda: st(GOOD, WB)[:20],
    "st-truncated-data": lambda: st(GOOD, WB)[:-5],
    "st-not-object": lambda: st(None, WB, raw_header=b"[1, 2, 3]"),
    "st-bad-json": lambda: st(None, WB, raw_header=b'{"w": {"dtype": "F32",'),
    "st-overlap": lambda: st({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                              "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, WB),
    "st-past-end": lambda: st({"w": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 64]}}, WB),
    "st-size-mismatch": lambda: st({"w": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 32]}}, WB),
    "st-bad-dtype": lambda: st({"w": {"dtype": "F17", "shape": [2, 4], "data_offsets": [0, 32]}}, WB),
    "st-huge-length": lambda: st(GOOD, WB, length=1 << 40),
    "st-f16": lambda: st({"w": {"dtype": "F16", "shape": [2, 4], "data_offsets": [0, 16]}}, WB[:16]),
    "st-other-name": lambda: st({"v": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32]}}, WB),
    # json.dumps escapes the NUL as \u0000: cut at the NUL, the name would be "w"
    "st-nul-name": lambda: st({"w\x00junk": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32]}}, WB),
    # a literal backslash before u0000 is text, not a NUL: "w" is the second tensor (W doubled)
    "st-backslash-name": lambda: st({"w\\u0000junk": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32]},
                                     "w": {"dtype": "F32", "shape": [2, 4], "data_offsets": [32, 64]}},
                                    WB + struct.pack("<8f", *[2 * v for v in W])),
    "npy-good": lambda: npy("<f4", (2, 4), WB),
    "npy-bad-magic": lambda: b"\x93NUMPX" + npy("<f4", (2, 4), WB)[6:],
    "npy-fortran": lambda: npy("<f4", (2, 4), WB, fortran=True),
    "npy-big-endian": lambda: npy(">f4", (2, 4), WB),
    "npy-object": lambda: npy("|O", (2,), b"\x00" * 16),
    "npy-short-data": lambda: npy("<f4", (2, 4), WB[:20]),
    "npy-bad-header": lambda: b"\x93NUMPY\x01\x00" + struct.pack("<H", 16) + b"{'descr': '<f4'\n",
}


def npy(descr, shape, data, fortran=False):
    hdr = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, repr(tuple(shape)))
    pad = 64 - (10 + len(hdr) + 1) % 64
    hdr = hdr + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + data


if __name__ == "__main__":
    kind, out = sys.argv[1], sys.argv[2]
    with open(out, "wb") as f:
        f.write(CASES[kind]())

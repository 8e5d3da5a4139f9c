#!/usr/bin/env python3
"""Writes a small .npy file with the standard library only (for the error tests, which need no numpy).

Usage: mknpy.py OUT.npy DTYPE SHAPE [VALUES]
  DTYPE   f64 f32 f16 i64 i32 i16 i8 u8 bool
  SHAPE   comma-separated dims ("2,3"; "" or "scalar" for rank 0)
  VALUES  comma-separated values repeated cyclically over the elements in row-major order (default 1)
"""
import struct
import sys

DESCR = {"f64": ("<f8", "d"), "f32": ("<f4", "f"), "f16": ("<f2", "e"), "i64": ("<i8", "q"), "i32": ("<i4", "i"),
         "i16": ("<i2", "h"), "i8": ("|i1", "b"), "u8": ("|u1", "B"), "bool": ("|b1", "?")}


def main(argv):
    if len(argv) not in (3, 4) or argv[1] not in DESCR:
        sys.stderr.write(__doc__)
        return 2
    path, dt = argv[0], argv[1]
    shape = [] if argv[2] in ("", "scalar") else [int(d) for d in argv[2].split(",")]
    descr, fmt = DESCR[dt]
    vals = (argv[3] if len(argv) == 4 else "1").split(",")
    n = 1
    for d in shape:
        n *= d
    conv = float if dt[0] == "f" else (lambda v: v not in ("0", "false", "False")) if dt == "bool" else int
    data = b"".join(struct.pack("<" + fmt, conv(vals[i % len(vals)])) for i in range(n))
    shape_txt = "(%s)" % ("".join("%d, " % d for d in shape) if len(shape) != 1 else "%d," % shape[0])
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_txt)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * (pad % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Prints one section of a model.tgc artifact (the container of runtime/artifact.h), or checks a memory plan.

  artifact_section.py FILE NAME          the section's bytes
  artifact_section.py FILE --check-plan  validates the "plan" section independently of tgc: every buffer lies
                                         inside the arena at an aligned offset, and no two buffers whose live
                                         ranges overlap share a byte; prints a summary line
"""
import struct
import sys


def sections(path):
    data = open(path, "rb").read()
    assert data[:8] == b"TGCART\0\0", "bad magic"
    version, n = struct.unpack_from("<II", data, 8)
    out = {}
    for i in range(n):
        name, off, size = struct.unpack_from("<32sQQ", data, 24 + 48 * i)
        out[name.rstrip(b"\0").decode()] = data[off:off + size]
    return out


def check_plan(text):
    lines = text.decode().splitlines()
    assert lines[0] == "tgc-memplan 1", lines[0]
    align = int(lines[1].split()[1])
    arena = int(lines[3].split()[1])
    n = int(lines[4].split()[1])
    bufs = [tuple(int(x) for x in l.split()) for l in lines[5:5 + n]]
    assert len(bufs) == n
    for first, last, size, off in bufs:
        slot = max(align, (size + align - 1) // align * align)
        assert off % align == 0 and off + slot <= arena, (first, last, size, off, arena)
    overlapping = 0
    for i, (f1, l1, s1, o1) in enumerate(bufs):
        for f2, l2, s2, o2 in bufs[i + 1:]:
            if f1 <= l2 and f2 <= l1:  # live at the same time
                overlapping += 1
                assert o1 + max(s1, 1) <= o2 or o2 + max(s2, 1) <= o1, ((f1, l1, s1, o1), (f2, l2, s2, o2))
    total = sum(max(align, (s + align - 1) // align * align) for _, _, s, _ in bufs)
    print(f"plan ok: {n} buffers, {overlapping} pairs live together and disjoint, arena {arena} <= {total}")
    assert arena <= total


if __name__ == "__main__":
    secs = sections(sys.argv[1])
    if sys.argv[2] == "--check-plan":
        check_plan(secs["plan"])
    else:
        sys.stdout.write(secs[sys.argv[2]].decode())

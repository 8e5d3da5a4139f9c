"""compare_norms.py [--rtol R] RUN_MODEL_OUTPUT REF0.npy [REF1.npy ...]: run_model's printed outputs
(examples/c-api) against the outputs `tgc run --output I=REFi.npy` saved: the same count, dtype and shape, and L2
norms equal within R relative (default 1e-6: a norm printed with 9 significant digits). On a GPU two processes
may pick different cuBLASLt algorithms (each times its candidates), so the GPU check passes a looser R and
prints the largest difference seen. Prints one line per output; exits 1 on a difference."""
import re
import sys

import numpy as np

DTYPES = {"float64": "f64", "float32": "f32", "float16": "f16", "int64": "i64", "int32": "i32", "int16": "i16",
          "int8": "i8", "uint8": "u8", "bool": "bool"}
LINE = re.compile(r"^output (\d+) (\S+): (\w+)\[([0-9, ]*)\] l2 (\S+)$")


def main():
    args = sys.argv[1:]
    rtol = 1e-6
    if args[:1] == ["--rtol"]:
        rtol, args = float(args[1]), args[2:]
    got = [LINE.match(l.rstrip("\n")) for l in open(args[0]) if l.startswith("output ")]
    refs = args[1:]
    if any(m is None for m in got) or len(got) != len(refs):
        print(f"compare_norms: {len(got)} outputs printed, {len(refs)} references, or a malformed line")
        return 1
    bad = 0
    for m, path in zip(got, refs):
        ref = np.load(path)
        shape = tuple(int(d) for d in m.group(4).split(",")) if m.group(4).strip() else ()
        norm = float(m.group(5))
        want = float(np.linalg.norm(ref.astype(np.float64).ravel()))
        rel = abs(norm - want) / max(abs(want), 1e-30)
        ok = shape == ref.shape and m.group(3) == DTYPES.get(str(ref.dtype)) and rel <= rtol and want > 0
        print(f"output {m.group(1)} {m.group(2)}: {m.group(3)}{list(shape)} l2 {norm:.9g} vs tgc run "
              f"{str(ref.dtype)}{list(ref.shape)} l2 {want:.9g} (rel {rel:.2e}): {'ok' if ok else 'DIFFERENT'}")
        bad += not ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

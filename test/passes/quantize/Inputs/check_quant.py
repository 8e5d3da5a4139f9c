#!/usr/bin/env python3
"""The quantize pass against numpy: a two-layer model (one weight stored as torch's Linear [N, K], reached through
a transpose) with random weights whose columns differ in magnitude, calibrated here in numpy. For MODE it checks:
  - the quantized weights and scales tgc writes to OUT.safetensors, exactly (bytes), against numpy's quantization;
  - that tgc run (CPU backend) on the quantized module agrees with the independent numpy interpreter (ref.py);
  - the quantized model's relative L2 error against the float model on fresh inputs, below the mode's bound.

Usage: check_quant.py TGC WORKDIR MODE [GRANULARITY]
"""
import os
import subprocess
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "runtime", "Inputs"))
import ref  # noqa: E402

K, H, N = 32, 48, 8
BOUND = {"int8": 0.03, "fp8": 0.1, "int4w": 0.2}
TIR = """module @q {weights = "w.safetensors"} {
  func @main(%%x: f32[B, %d]) -> f32[B, %d] {calib.arg0.amax = %r, calib.arg0.absmax = %r} {
    %%w1 = param() {name = "l1.weight"} : f32[%d, %d]
    %%w2t = param() {name = "l2.weight"} : f32[%d, %d]
    %%h = matmul(%%x, %%w1) : f32[B, %d]
    %%r = relu(%%h) {calib.amax = %r, calib.absmax = %r} : f32[B, %d]
    %%w2 = transpose(%%w2t) {perm = [1, 0]} : f32[%d, %d]
    %%y = matmul(%%r, %%w2) : f32[B, %d]
    return %%y
  }
}
"""


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        fail("%s failed:\n%s" % (" ".join(cmd), r.stderr))
    return r


def f16(x):
    return np.float64(np.float16(x))


def f32(x):
    return np.float64(np.float32(x))


def expect(w, mode, group, d=None):
    """numpy's quantization of the [K, N] weight W: (stored values, scales) as the pass must write them. int4
    scales are clipped: of amax * r / 7 for r = 1, 0.95, ..., 0.5 the one whose rounding error, row k weighing D[k]
    (default 1), is least."""
    kk, nn = w.shape
    if mode == "int4w":
        qmax, lo, hi, sc = 7.0, -8, 7, f16
    elif mode == "fp8":
        qmax, sc = 448.0, f32
    else:
        qmax, lo, hi, sc = 127.0, -128, 127, f32
    if group == "tensor":
        blocks = [(slice(0, kk), slice(0, nn))]
        sshape = None
    elif group == "channel":
        blocks = [(slice(0, kk), slice(n, n + 1)) for n in range(nn)]
        sshape = (nn,)
    else:
        g = min(int(group.split(":")[1]), kk)
        blocks = [(slice(r, min(r + g, kk)), slice(n, n + 1)) for r in range(0, kk, g) for n in range(nn)]
        sshape = ((kk + g - 1) // g, nn)
    q = np.zeros_like(w)
    scales = []
    dk = np.ones(kk) if d is None else d
    for rs, cs in blocks:
        amax = np.abs(w[rs, cs]).max()
        s = sc(amax / qmax) if amax > 0 else 1.0
        if mode == "int4w":
            best = np.inf
            for i in range(11):
                si = sc(amax * (1 - 0.05 * i) / qmax) if amax > 0 else 1.0
                e = float(np.sum(dk[rs] * np.sum((np.clip(np.rint(w[rs, cs] / si), lo, hi) * si - w[rs, cs]) ** 2, axis=1)))
                if e < best:
                    best, s = e, si
        scales.append(s)
        if mode == "fp8":
            import ml_dtypes
            q[rs, cs] = np.clip(w[rs, cs] / s, -448, 448).astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
        else:
            q[rs, cs] = np.clip(np.rint(w[rs, cs] / s), lo, hi)
    scales = np.array(scales)
    return q, (scales.reshape(sshape) if sshape else scales[0])


def main():
    tgc, work, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    gran = sys.argv[4] if len(sys.argv) > 4 else ("group:128" if mode == "int4w" else "channel")
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32((mode + gran).encode()))
    w1 = (rng.standard_normal((K, H)) * rng.uniform(0.05, 0.5, size=H)).astype(np.float32)
    w2 = (rng.standard_normal((N, H)) * rng.uniform(0.05, 0.5, size=(N, 1))).astype(np.float32)  # [N, K] layout
    calib = rng.uniform(-1, 1, size=(256, K)).astype(np.float32)
    h = np.maximum(calib.astype(np.float64) @ w1, 0)
    ax, ah = float(np.abs(calib).max()), float(h.max())
    ref.write_safetensors(os.path.join(work, "w.safetensors"),
                          [("l1.weight", ref.Val(w1, "f32")), ("l2.weight", ref.Val(w2, "f32"))])
    src = os.path.join(work, "model.tir")
    with open(src, "w") as f:
        f.write(TIR % (K, N, ax, ax, K, H, N, H, H, ah, ah, H, H, N, N))
    out = os.path.join(work, "q.tir")
    run([tgc, "--passes=shape-infer,quantize{mode=%s,granularity=%s}" % (mode, gran), src, "-o", out])

    # the weights file: the quantized weights and their scales, exactly
    st = ref.read_safetensors(os.path.join(work, "q.safetensors"))
    suffix = ".q4" if mode == "int4w" else ".q"
    want_dt = {"int8": "i8", "fp8": "f8e4m3", "int4w": "i4"}[mode]
    for name, w in (("l1.weight", w1.astype(np.float64)), ("l2.weight", w2.T.astype(np.float64))):
        q, s = expect(w, mode, gran)
        got = st[name + suffix]
        # stored [N, K]: each output channel's K values contiguous
        if got.dt != want_dt or got.a.shape != w.T.shape:
            fail("%s%s is %s%s, want %s%s" % (name, suffix, got.dt, got.a.shape, want_dt, w.T.shape))
        gq = got.a.astype(np.float64).T
        if not np.array_equal(gq, q):
            bad = np.argwhere(gq != q)[0]
            fail("%s%s differs from numpy at %s: %r vs %r" % (name, suffix, tuple(bad), gq[tuple(bad)], q[tuple(bad)]))
        if gran == "tensor":
            if name + ".scale" in st:
                fail("per-tensor scales are attributes, but %s.scale is in the weights file" % name)
            if ("scale = %r" % float(s)) not in open(out).read():
                fail("the per-tensor scale %r of %s is not in the IR" % (s, name))
        else:
            gs = st[name + ".scale"]
            if gs.dt != ("f16" if mode == "int4w" else "f32") or not np.array_equal(gs.a.astype(np.float64), s):
                fail("%s.scale (%s%s) differs from numpy's" % (name, gs.dt, gs.a.shape))
        print("%s: %s weights and scales match numpy exactly" % (name, want_dt))
    if "l1.weight" in st or "l2.weight" in st:
        fail("the float weights are still in the quantized model's weights file")

    # tgc's CPU backend against the numpy interpreter, and the quantized model against the float one
    x = rng.uniform(-1, 1, size=(16, K)).astype(np.float32)
    np.save(os.path.join(work, "x.npy"), x)
    for path, tag in ((src, "float"), (out, "quant")):
        run([tgc, "run", path, "--device=cpu", "--input", "x=" + os.path.join(work, "x.npy"),
             "--output", "0=" + os.path.join(work, tag + ".npy")])
    yq, yf = np.load(os.path.join(work, "quant.npy")), np.load(os.path.join(work, "float.npy"))
    mod = ref.load_module(tgc, out)
    yr = ref.run(mod, {"x": x}, os.path.join(work, "q.safetensors"))[0].a
    e = np.linalg.norm(yq - yr) / np.linalg.norm(yr)
    if not e < 1e-5:
        fail("tgc run differs from the numpy interpreter on the quantized module: %.3g" % e)
    e = np.linalg.norm(yq.astype(np.float64) - yf) / np.linalg.norm(yf)
    if not (np.isfinite(yq).all() and e < BOUND[mode]):
        fail("%s: relative error %.4g against the float model exceeds %g" % (mode, e, BOUND[mode]))
    print("%s %s: tgc run matches numpy; relative error against float %.4f < %g" % (mode, gran, e, BOUND[mode]))


if __name__ == "__main__":
    main()

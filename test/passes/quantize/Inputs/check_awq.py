#!/usr/bin/env python3
"""Activation-aware int4 weight-only quantization (quantize{mode=int4w}, awq=true by default) against numpy.

The model: two matmuls that read one activation %x whose channels differ in size by up to 30x (a few outlier
channels, as after MiniLM's layer norms), calibrated here (calib.arg0.chmax = each channel's max |x|). numpy repeats
the pass's documented search (docs/quantization.md): factors s_k = chmax_k^alpha / sqrt(max * min), alpha in 0, 0.1,
..., 1 minimizing the rounding error of the scaled weights W_k s_k (group-wise int4, each scale clipped to the best
of amax * r / 7, r = 1, 0.95, ..., 0.5), row k weighing chmax_k^2 / s_k^2. It checks:
  - the factors (x's multiply by 1/s, stored as WEIGHT.awq), the i4 weights and their f16 scales, bytes exactly;
  - that both matmuls read the one scaled activation;
  - tgc run against the independent numpy interpreter (ref.py);
  - that AWQ helps: on fresh inputs with the calibration's channel sizes, the error against the float model with
    awq=true is below awq=false's (which still clips activation-aware) and below the plain round-to-nearest of the
    unclipped, unscaled weights.

With --size K,N1,N2,G the model has those dims: a weight of 65536 values or more has its blocks searched in
parallel (tgc_parallel_for; TGC_THREADS sets the threads), which must change nothing.

Usage: check_awq.py TGC WORKDIR [--size K,N1,N2,G]
"""
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "runtime", "Inputs"))
import ref  # noqa: E402
from check_quant import f16, fail, run  # noqa: E402  (the same folder)

K, N1, N2, G = 64, 32, 24, 16
TIR = """module @awq {weights = "w.safetensors"} {
  func @main(%%x: f32[B, %d]) -> (f32[B, %d], f32[B, %d]) {calib.arg0.amax = %r, calib.arg0.absmax = %r, calib.arg0.chmax = [%s]} {
    %%w1 = param() {name = "l1.weight"} : f32[%d, %d]
    %%w2 = param() {name = "l2.weight"} : f32[%d, %d]
    %%a = matmul(%%x, %%w1) : f32[B, %d]
    %%b = matmul(%%x, %%w2) : f32[B, %d]
    return %%a, %%b
  }
}
"""


def quant4(w, d):
    """Group-wise (G rows) int4 of the [K, N] weight W with clipped f16 scales, row k's error weighing D[k]:
    (stored values, scales [K/G, N], total weighted error)."""
    q = np.zeros_like(w)
    sc = np.zeros((K // G, w.shape[1]))
    total = 0.0
    for r in range(K // G):
        rs = slice(r * G, (r + 1) * G)
        for n in range(w.shape[1]):
            blk = w[rs, n]
            amax = np.abs(blk).max()
            best, bs = np.inf, 1.0
            for i in range(11):
                s = f16(amax * (1 - 0.05 * i) / 7)
                e = float(np.sum(d[rs] * (np.clip(np.rint(blk / s), -8, 7) * s - blk) ** 2))
                if e < best:
                    best, bs = e, s
            q[rs, n] = np.clip(np.rint(blk / bs), -8, 7)
            sc[r, n] = bs
            total += best
    return q, sc, total


def factors(cm, alpha):
    f = np.maximum(cm, 1e-5) ** alpha
    return f / np.sqrt(f.max() * f.min())


def main():
    global K, N1, N2, G
    tgc, work = sys.argv[1], sys.argv[2]
    if len(sys.argv) == 5 and sys.argv[3] == "--size":
        K, N1, N2, G = (int(v) for v in sys.argv[4].split(","))
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(7)
    size = rng.uniform(0.3, 1.0, size=K)
    size[rng.choice(K, 4, replace=False)] = rng.uniform(10, 30, size=4)  # outlier channels
    w1 = (rng.standard_normal((K, N1)) * 0.2).astype(np.float32)
    w2 = (rng.standard_normal((K, N2)) * 0.1).astype(np.float32)
    calib = (rng.uniform(-1, 1, size=(512, K)) * size).astype(np.float32)
    cm = np.abs(calib.astype(np.float64)).max(0)
    cm = np.array([float(np.float64(np.float32(c))) for c in cm])
    amax = float(cm.max())
    ref.write_safetensors(os.path.join(work, "w.safetensors"),
                          [("l1.weight", ref.Val(w1, "f32")), ("l2.weight", ref.Val(w2, "f32"))])
    src = os.path.join(work, "model.tir")
    with open(src, "w") as f:
        f.write(TIR % (K, N1, N2, amax, amax, ", ".join(repr(float(c)) for c in cm), K, N1, K, N2, N1, N2))

    # numpy's choice of alpha: the least total weighted error over both weights
    ws = [w1.astype(np.float64), w2.astype(np.float64)]
    errs = []
    for ai in range(11):
        fa = factors(cm, ai / 10)
        errs.append(sum(quant4(w * fa[:, None], cm ** 2 / fa ** 2)[2] for w in ws))
    alpha_np = int(np.argmin(errs)) / 10

    out = os.path.join(work, "q.tir")
    r = run([tgc, "--passes=shape-infer,quantize{mode=int4w,granularity=group:%d}" % G, "-Rpass=quantize", src,
             "-o", out])
    m = re.search(r"activation-aware \(AWQ\) alpha ([0-9.]+)", r.stderr)
    if not m:
        fail("no AWQ scaling in -Rpass=quantize:\n" + r.stderr)
    alpha = float(m.group(1))
    if alpha != alpha_np:
        # only a tie (to rounding of the sums) may choose differently
        a, b = errs[int(round(alpha * 10))], errs[int(round(alpha_np * 10))]
        if abs(a - b) > 1e-9 * abs(b):
            fail("tgc chose alpha %g (error %.10g), numpy %g (error %.10g)" % (alpha, a, alpha_np, b))
    text = open(out).read()
    if not re.search(r"%x\.awq = mul\(%x, %l1\.weight\.awq\)", text):
        fail("x is not multiplied by the factors l1.weight.awq:\n" + text)
    for res, wq in (("a", "l1"), ("b", "l2")):
        if not re.search(r"%%%s = matmul\(%%x\.awq, %%%s\.weight\.dq\)" % (res, wq), text):
            fail("%%%s does not read the scaled activation and %s's dequantized weight:\n%s" % (res, wq, text))

    st = ref.read_safetensors(os.path.join(work, "q.safetensors"))
    fa = factors(cm, alpha)
    inv = np.float32(1.0 / np.clip(fa, 1e-5, 1e5))
    got = st["l1.weight.awq"]
    if got.dt != "f32" or not np.array_equal(got.a, inv):
        fail("the factors l1.weight.awq differ from numpy's 1/s (alpha %g)" % alpha)
    s_stored = 1.0 / inv.astype(np.float64)
    for name, w in (("l1.weight", ws[0]), ("l2.weight", ws[1])):
        q, sc, _ = quant4(w * s_stored[:, None], cm ** 2 / s_stored ** 2)
        gq, gs = st[name + ".q4"], st[name + ".scale"]
        if gq.dt != "i4" or not np.array_equal(gq.a.astype(np.float64).T, q):  # stored [N, K]
            fail("%s.q4 differs from numpy's" % name)
        if gs.dt != "f16" or not np.array_equal(gs.a.astype(np.float64), sc):
            fail("%s.scale differs from numpy's" % name)
    print("alpha %g; factors, i4 weights and f16 scales match numpy exactly" % alpha)

    # tgc run against the numpy interpreter; AWQ's error against awq=false and plain round-to-nearest
    x = (rng.uniform(-1, 1, size=(64, K)) * size).astype(np.float32)
    np.save(os.path.join(work, "x.npy"), x)
    noawq = os.path.join(work, "noawq.tir")
    run([tgc, "--passes=shape-infer,quantize{mode=int4w,granularity=group:%d,awq=false}" % G, src, "-o", noawq])
    if " = mul(" in open(noawq).read():
        fail("awq=false still scales the activation")

    def outputs(path, tag):
        run([tgc, "run", path, "--device=cpu", "--input", "x=" + os.path.join(work, "x.npy"),
             "--output", "0=" + os.path.join(work, tag + "0.npy"), "--output", "1=" + os.path.join(work, tag + "1.npy")])
        return np.concatenate([np.load(os.path.join(work, tag + "%d.npy" % i)).ravel() for i in (0, 1)])

    yf, yq, yn = outputs(src, "float"), outputs(out, "awq"), outputs(noawq, "noawq")
    mod = ref.load_module(tgc, out)
    yr = np.concatenate([v.a.ravel() for v in ref.run(mod, {"x": x}, os.path.join(work, "q.safetensors"))])
    e = np.linalg.norm(yq - yr) / np.linalg.norm(yr)
    if not e < 1e-5:
        fail("tgc run differs from the numpy interpreter on the AWQ module: %.3g" % e)
    xd = x.astype(np.float64)
    rtn = []
    for w in ws:
        amax_b = np.abs(w.reshape(K // G, G, -1)).max(1)
        s = np.repeat(np.vectorize(f16)(amax_b / 7), G, axis=0)
        rtn.append((xd @ (np.clip(np.rint(w / s), -8, 7) * s)).ravel())
    yrtn = np.concatenate(rtn)
    err = {k: np.linalg.norm(v - yf) / np.linalg.norm(yf) for k, v in (("awq", yq), ("noawq", yn), ("rtn", yrtn))}
    if not (np.isfinite(yq).all() and err["awq"] < err["noawq"] < err["rtn"]):
        fail("errors against float: awq %.4g, awq=false %.4g, round-to-nearest %.4g: want increasing"
             % (err["awq"], err["noawq"], err["rtn"]))
    print("errors against float: awq %.4f < awq=false %.4f < round-to-nearest %.4f" % (err["awq"], err["noawq"],
                                                                                     err["rtn"]))


if __name__ == "__main__":
    main()

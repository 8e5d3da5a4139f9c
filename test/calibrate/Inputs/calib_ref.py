"""The numpy reference of `tgc calibrate` (docs/cli.md): calibration data, weights, and the statistics and methods
computed independently of tgc's C code, compared with the calib.* attributes of a calibrated module.

  calib_ref.py data DIR SEED NAME:DTYPE:D0,D1,...:DIST ...   write DIR/NAME.npy (DIST: normal, laplace, uniform,
                                                             outliers (laplace with a few large values), ints)
  calib_ref.py weights FILE SEED NAME:D0,D1,... ...          write a .safetensors file of f32 tensors
  calib_ref.py check CALIB.tir MODEL METHOD (--data DIR --weights FILE | --random N --seed S --dim SYM=N ...)
"""
import json
import math
import os
import re
import struct
import sys

import numpy as np

BINS = 2048
LEVELS = 128


# ---- data ----

def make(rng, shape, dtype, dist):
    if dist == "normal":
        a = rng.standard_normal(shape)
    elif dist == "laplace":
        a = rng.laplace(0.0, 1.0, shape)
    elif dist == "uniform":
        a = rng.uniform(-2.0, 3.0, shape)
    elif dist == "outliers":
        a = rng.laplace(0.0, 0.5, shape)
        flat = a.reshape(-1)
        idx = rng.choice(flat.size, size=max(1, flat.size // 500), replace=False)
        flat[idx] *= 40.0
    elif dist == "ints":
        a = rng.integers(0, 100, shape)
    else:
        sys.exit("unknown distribution " + dist)
    a = a.astype(dtype)
    if np.issubdtype(a.dtype, np.floating):
        a[a == 0] = 0.5  # random and non-zero
    return a


def cmd_data(args):
    out, seed = args[0], int(args[1])
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    for spec in args[2:]:
        name, dtype, shape, dist = spec.split(":")
        shape = tuple(int(d) for d in shape.split(",")) if shape else ()
        np.save(os.path.join(out, name + ".npy"), make(rng, shape, np.dtype(dtype), dist))


def cmd_weights(args):
    path, seed = args[0], int(args[1])
    rng = np.random.default_rng(seed)
    header, blobs, off = {}, [], 0
    for spec in args[2:]:
        name, shape = spec.split(":")
        shape = [int(d) for d in shape.split(",")]
        b = make(rng, tuple(shape), np.float32, "normal").tobytes()
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        d = f.read()
    n = struct.unpack("<Q", d[:8])[0]
    header = json.loads(d[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(d[8 + n + a:8 + n + b], dtype=np.float32).reshape(t["shape"])
    return out


# ---- tgc run's random inputs (runtime/random.c: splitmix64, floats uniform in [-1, 1) rounded to f32) ----

M64 = (1 << 64) - 1


def random_f32(state, n):
    out = np.empty(n, dtype=np.float32)
    for e in range(n):
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        z ^= z >> 31
        out[e] = np.float32((z >> 11) * 2.0 ** -52 - 1.0)
    return state, out


# ---- the models of the tests: the values that get statistics, computed as the CPU backend does (f32) ----

def model_stats(inp, w):
    x, m = inp["x"], inp["m"]
    h = np.matmul(x, w["w"])          # %h: a matmul result, f32 (sgemm)
    a = (h + (-m)).astype(np.float32)  # %a = add(%h, neg(%m))
    e = (m * m).astype(np.float32)     # %e = mul(%m, %m): exact
    return {"x": x, "a": a, "e": e}


def model_methods(inp, w):
    x = inp["x"]
    s = (x * x).astype(np.float32)
    return {"x": x, "s": s}


def model_random(inp, w):
    x, v = inp["x"], inp["v"]
    return {"x": x, "p": (x * v).astype(np.float32)}


MODELS = {
    "stats": (["x", "m"], model_stats),
    "methods": (["x"], model_methods),
    "random": (["x", "v"], model_random),
}


# ---- the methods, as docs/cli.md defines them ----

def edges_of(absmax):
    return np.arange(BINS + 1, dtype=np.float64) * (absmax / BINS)


def histogram(a, absmax):
    """Bin k holds the |x| with edge(k) < |x| <= edge(k + 1); 0 is in bin 0."""
    k = np.searchsorted(edges_of(absmax), a, side="left") - 1
    return np.bincount(np.clip(k, 0, BINS - 1), minlength=BINS).astype(np.int64)


def seqsum(v):
    return float(np.cumsum(v)[-1]) if v.size else 0.0


def th_percentile(h, p):
    cum = np.cumsum(h)
    return int(np.argmax(cum >= p / 100.0 * float(h.sum()))) + 1


def th_entropy(h):
    # TensorRT's (pytorch-quantization's _compute_amax_entropy): bin 0 counts as bin 1; P is the cut histogram with
    # the tail in its last bin, Q the cut histogram without it, merged into 128 levels and spread back over each
    # level's non-empty bins; both normalized; KL is infinite where Q is 0 and P is not
    h = h.astype(np.float64).copy()
    h[0] = h[1]
    n = float(h.sum())
    best, best_i = math.inf, BINS
    for i in range(LEVELS, BINS + 1):
        cut = h[:i]
        qn = float(cut.sum())
        if qn == 0 or n == 0:
            continue
        p = cut.copy()
        p[i - 1] += float(h[i:].sum())
        lev = (np.arange(i) * LEVELS) // i
        s = np.bincount(lev, weights=cut, minlength=LEVELS)
        nz = np.bincount(lev, weights=(cut > 0).astype(np.float64), minlength=LEVELS)
        q = np.where(cut > 0, s[lev] / np.maximum(nz[lev], 1), 0.0) / qn
        mask = p > 0
        if np.any(q[mask] == 0):
            continue
        pn = p[mask] / n
        kl = seqsum(pn * np.log(pn / q[mask]))
        if kl <= best:
            best, best_i = kl, i
    return best_i


def th_mse(h):
    c = (np.arange(BINS, dtype=np.float64) + 0.5) / BINS
    hf = h.astype(np.float64)
    best, best_i = math.inf, BINS
    for i in range(1, BINS + 1):
        s = i / BINS / 127.0
        d = c - np.minimum(np.rint(c / s), 127.0) * s
        err = seqsum(hf * d * d)
        if err <= best:
            best, best_i = err, i
    return best_i


def reference(x, method):
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    absmax = float(a.max())
    last = x.shape[-1] if x.ndim else 1
    st = {"absmax": absmax, "min": float(x.min()), "max": float(x.max()),
          "chmax": a.reshape(-1, last).max(axis=0).tolist()}
    if method == "minmax" or absmax == 0:
        st["amax"], st["clip"] = absmax, 0.0
        return st
    h = histogram(a.reshape(-1), absmax)
    if method.startswith("percentile:"):
        i = th_percentile(h, float(method.split(":", 1)[1]))
    elif method == "entropy":
        i = th_entropy(h)
    elif method == "mse":
        i = th_mse(h)
    else:
        sys.exit("unknown method " + method)
    st["amax"] = float(edges_of(absmax)[i])
    st["clip"] = float((a > st["amax"]).sum()) / a.size
    return st


# ---- the calibrated module ----

ATTR = re.compile(r'(calib\.[A-Za-z0-9_.]+) = (\[[^\]]*\]|"[^"]*"|[^,}\s]+)')


def value(text):
    if text.startswith("["):
        return [float(t) for t in text[1:-1].split(",") if t.strip()]
    if text.startswith('"'):
        return text[1:-1]
    return float(text)


def parse_calibrated(path):
    module, stats = {}, {}
    for line in open(path):
        s = line.strip()
        attrs = {k: value(v) for k, v in ATTR.findall(s)}
        if s.startswith("module"):
            module = attrs
        elif s.startswith("func"):
            args = re.findall(r"%([A-Za-z0-9_.]+):", s.split("->")[0])
            for k, v in attrs.items():
                m = re.match(r"calib\.arg(\d+)\.(\w+)$", k)
                stats.setdefault(args[int(m.group(1))], {})[m.group(2)] = v
        else:
            m = re.match(r"%([A-Za-z0-9_.]+) = ", s)
            if m and attrs:
                stats[m.group(1)] = {k[len("calib."):]: v for k, v in attrs.items()}
    return module, stats


def close(got, ref, rel):
    return abs(got - ref) <= rel * max(abs(ref), 1e-30)


def cmd_check(args):
    path, model, method = args[0], args[1], args[2]
    opts = args[3:]
    names, fn = MODELS[model]
    data_dir = weights = None
    nrandom, seed, dims = 0, 0, {}
    i = 0
    while i < len(opts):
        if opts[i] == "--data":
            data_dir = opts[i + 1]
        elif opts[i] == "--weights":
            weights = opts[i + 1]
        elif opts[i] == "--random":
            nrandom = int(opts[i + 1])
        elif opts[i] == "--seed":
            seed = int(opts[i + 1])
        elif opts[i] == "--dim":
            k, v = opts[i + 1].split("=")
            dims[k] = int(v)
        i += 2
    w = read_safetensors(weights) if weights else {}
    if data_dir:
        values = fn({n: np.load(os.path.join(data_dir, n + ".npy")) for n in names}, w)
    else:  # every run's random inputs, then the values of all runs stacked along dim 0
        state, runs = seed, []
        for _ in range(nrandom):
            inp = {}
            for n in names:
                shape = (dims.get("B", 2), 8)
                state, flat = random_f32(state, int(np.prod(shape)))
                inp[n] = flat.reshape(shape)
            runs.append(fn(inp, w))
        values = {k: np.concatenate([r[k] for r in runs]) for k in runs[0]}
    module, stats = parse_calibrated(path)
    print("module:", " ".join("%s=%s" % kv for kv in sorted(module.items())))
    print("values with statistics:", " ".join("%" + n for n in sorted(stats)))
    bad = 0
    # exact data (function arguments, exact elementwise ops) agrees to rounding; a matmul's result only to the
    # order of its sums
    for n in sorted(values):
        if n not in stats:
            print("MISSING statistics of %" + n)
            bad += 1
            continue
        ref = reference(values[n], method)
        got = stats[n]
        for k in ["amax", "absmax", "min", "max", "clip"]:
            ok = close(got.get(k, math.nan), ref[k], 1e-6) if k != "clip" else abs(got.get(k, math.nan) - ref[k]) <= 1e-12
            if not ok:
                print("MISMATCH %%%s %s: tgc %r, numpy %r" % (n, k, got.get(k), ref[k]))
                bad += 1
        gch, rch = got.get("chmax", []), ref["chmax"]
        if len(gch) != len(rch) or not all(close(a, b, 1e-6) for a, b in zip(gch, rch)):
            print("MISMATCH %%%s chmax: tgc %r, numpy %r" % (n, gch, rch))
            bad += 1
        print("%%%s: amax %.9g absmax %.9g clip %.6g" % (n, ref["amax"], ref["absmax"], ref["clip"]))
    print("calib_ref: %d values checked, %d mismatches" % (len(values), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "data":
        cmd_data(sys.argv[2:])
    elif cmd == "weights":
        cmd_weights(sys.argv[2:])
    elif cmd == "check":
        sys.exit(cmd_check(sys.argv[2:]))
    else:
        sys.exit(__doc__)

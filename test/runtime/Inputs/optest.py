#!/usr/bin/env python3
"""Runs one .tir module on tgc's CPU backend and checks every result against the numpy reference (ref.py).

Usage:
  optest.py TGC FILE.tir [--dims B=2,S=3] [--seed N] [--weights W | --random-weights] [--rtol R]
                         [--entry F] [--allow-nan] [--expect-error]

It generates fresh random inputs for the entry function's arguments (default @main), writes them as .npy
files into a temporary directory, runs
    TGC run FILE.tir --input NAME=FILE.npy ... --output 0=OUT0.npy ...
evaluates the same module with ref.py, and compares each result:

- floats: the relative error ||out - ref|| / ||ref|| in float64 (the absolute error when ||ref|| is 0), over
  the positions where both are finite; infinities must match; a NaN in either is a failure unless both have
  NaN at the same positions and --allow-nan is given;
- integers and bool: exactly.

The default tolerance of a result is that of the narrowest float dtype it depends on (its own, and that of
every argument, parameter and op result upstream of it), since one rounding there can show in the result:
f64 1e-12, f32 1e-6, f16 and bf16 1e-2, f8e4m3 and f8e5m2 1e-1. When `tgc run` ran on the CUDA backend (it
prints its `cuda: N steps (...)` summary on standard error; `--device=auto` picks it on a machine with a GPU),
f32 is held to the project's fp32 policy, 1e-5, instead: cuBLASLt and the kernels sum in another order than the
CPU backend, whose 1e-6 stays. --rtol overrides it.

Inputs: floats are drawn from N(0, 1); integers uniformly from [-8, 8] (u8: [0, 16]); bools with p = 1/2.
A comment in the .tir file changes this per argument (several entries may share a line):
    // ARGRANGE: %x=-3,3 %idx=0,4       floats uniform in [lo, hi), integers uniform in [lo, hi]
    // ARGVALUES: %m=1,0,0,1            the exact values, in row-major order
No generated input is all zeros (one element is changed if it would be). Symbols take their sizes from
--dims (a symbol not given there is 3).

It prints one line per result, e.g.
    output 0: f32[2, 3] relerr 3.1e-08 ok (tol 1e-06)
    output 1: i64[2] mismatches 0 ok (exact)
and finally `optest: PASS` or `optest: FAIL` (exit 1).

--expect-error: tgc must fail (exit status 1, no crash); its standard error is printed for FileCheck,
followed by `optest: tgc failed as expected`.

Set OPTEST_LOG=FILE to append one JSON line per compared result (used to collect error statistics).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import numpy as np
except ImportError:
    print("optest: error: the Python that lit runs as %%python (%s) cannot import numpy. The runtime tests need "
          "the project venv (.venv, with scripts/requirements-test.txt installed) to be lit's %%python: configure "
          "with -DPython3_EXECUTABLE=<repo>/.venv/bin/python (test/lit.site.cfg.py.in's python_executable)."
          % sys.executable)
    print("optest: FAIL")
    sys.exit(1)

sys.path.insert(0, HERE)
import ref  # noqa: E402

TOL = {"f64": 1e-12, "f32": 1e-6, "f16": 1e-2, "bf16": 1e-2, "f8e4m3": 1e-1, "f8e5m2": 1e-1}
TOL_CUDA = dict(TOL, f32=1e-5)  # the fp32 policy for the GPU (docs/codegen.md)
NPY_DTYPES = ("f64", "f32", "f16", "i64", "i32", "i16", "i8", "u8", "bool")


def fail(msg):
    print("optest: error: %s" % msg)
    print("optest: FAIL")
    sys.exit(1)


def parse_dims(specs):
    dims = {}
    for spec in specs:
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_.]*)=([0-9]+)$", part)
            if not m:
                fail("--dims expects SYM=N[,SYM=N...], not %r" % part)
            dims[m.group(1)] = int(m.group(2))
    return dims


def num(text):
    """An int when TEXT is written as one (exact beyond 2^53), else a float (inf and nan included)."""
    return int(text) if re.match(r"^[-+]?[0-9]+$", text) else float(text)


def parse_comments(path):
    ranges, values = {}, {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.search(r"//\s*ARGRANGE:\s*(.*)$", line)
            if m:
                for name, lo, hi in re.findall(r"%?([A-Za-z0-9_.]+)=([-+0-9.eE]+|-?inf),([-+0-9.eE]+|-?inf)",
                                               m.group(1)):
                    ranges[name] = (num(lo), num(hi))
            m = re.search(r"//\s*ARGVALUES:\s*(.*)$", line)
            if m:
                for name, vals in re.findall(r"%?([A-Za-z0-9_.]+)=(\S+)", m.group(1)):
                    values[name] = [num(v) for v in vals.split(",") if v]
    return ranges, values


def gen_array(rng, dt, shape, rng_range=None, exact=None, what="input"):
    """A random array of tgc dtype DT (its numpy storage), never all zeros."""
    n = int(np.prod(shape, dtype=np.int64))
    if exact is not None:
        if len(exact) != n:
            fail("ARGVALUES of %s has %d values for %d elements" % (what, len(exact), n))
        return ref.to_storage(np.array(exact).reshape(shape), dt).a
    if ref.is_float(dt):
        if rng_range:
            v = rng.uniform(rng_range[0], rng_range[1], size=shape)
        else:
            v = rng.standard_normal(size=shape)
        a = ref.to_storage(v, dt).a
        if n and not np.any(a.astype(np.float64) != 0):
            a.reshape(-1)[0] = 1
        return a
    if dt == "bool":
        a = rng.random(size=shape) < 0.5
        if n and not a.any():
            a.reshape(-1)[0] = True
        return a
    lo, hi = ref.int_range(dt)
    if rng_range:
        rlo, rhi = int(rng_range[0]), int(rng_range[1])
        if rhi - rlo >= 2 ** 62:
            fail("the ARGRANGE of %s is too wide" % what)
    else:
        rlo, rhi = (0, 16) if dt == "u8" else (-8, 8)
    rlo, rhi = max(rlo, lo), min(rhi, hi)
    v = rlo + rng.integers(0, rhi - rlo + 1, size=shape, dtype=np.int64)
    if n and not v.any() and (rlo, rhi) != (0, 0):
        v.reshape(-1)[0] = rhi if rhi != 0 else rlo
    return ref.to_storage(v, dt).a


def loosest(dts):
    """The float dtype of DTS with the loosest tolerance, or None."""
    fl = [dt for dt in dts if ref.is_float(dt)]
    return max(fl, key=lambda dt: TOL[dt]) if fl else None


def result_precision(f):
    """For each result of F, the float dtypes it depends on: its own and those of every value on a path from the
    arguments and parameters to it (a rounding to f16 anywhere upstream can show in an f32 result)."""
    def walk(ops, env):
        for op in ops:
            deps = set()
            for o in op.operands:
                deps |= env.get(o, set())
            deps |= set(t.dt for t in op.types)
            if op.region:
                inner = {n: env.get(o, set()) | ({t.dt} if t else set())
                         for n, o, t in zip(op.region[0], op.operands, op.region[1])}
                walk(op.region[2], inner)
                for y in op.region[3]:
                    deps |= inner.get(y, set())
            for r in op.results:
                env[r] = set(deps)
    env = {name: {ty.dt} for name, ty in f.args}
    walk(f.ops, env)
    return [env[r] | {t.dt} for r, t in zip(f.returns, f.result_types)]


def params_of(ops):
    out = []
    for op in ops:
        if op.name == "param":
            out.append(op)
        if op.region:
            out.extend(params_of(op.region[2]))
    return out


def fmt_shape(a):
    return "[%s]" % ", ".join(str(d) for d in a.shape)


def compare(k, out, want, tol, allow_nan, log):
    """Returns True when result K matches."""
    dt = want.dt
    label = "output %d: %s%s" % (k, dt, fmt_shape(want.a))
    if out.shape != want.a.shape:
        print("%s shape mismatch: tgc gave %s FAIL" % (label, fmt_shape(out)))
        return False
    if np.dtype(out.dtype) != np.dtype(want.a.dtype):
        print("%s dtype mismatch: tgc gave numpy %s, the reference %s FAIL" % (label, out.dtype, want.a.dtype))
        return False
    if not ref.is_float(dt):
        bad = int(np.count_nonzero(out != want.a))
        status = "ok" if bad == 0 else "FAIL"
        print("%s mismatches %d %s (exact)" % (label, bad, status))
        if bad:
            idx = np.argwhere(out != want.a)[:5]
            for i in idx:
                i = tuple(int(t) for t in i)
                print("  at %s: tgc %s, reference %s" % (list(i), out[i].item(), want.a[i].item()))
        log(k, dt, float(bad), bad == 0)
        return bad == 0
    o = out.astype(np.float64)
    r = want.a.astype(np.float64)
    ok = True
    notes = []
    on, rn = np.isnan(o), np.isnan(r)
    if rn.any() or on.any():
        same = np.array_equal(on, rn)
        if not (allow_nan and same):
            ok = False
            notes.append("NaN: tgc %d, reference %d%s" % (on.sum(), rn.sum(),
                                                          "" if same else " at different positions"))
    oi, ri = np.isinf(o), np.isinf(r)
    if oi.any() or ri.any():
        if not (np.array_equal(oi, ri) and np.array_equal(o[oi], r[ri])):
            ok = False
            notes.append("infinities differ")
    fin = np.isfinite(o) & np.isfinite(r)
    diff = np.linalg.norm(o[fin] - r[fin])
    norm = np.linalg.norm(r[fin])
    relerr = diff / norm if norm > 0 else diff
    if not relerr <= tol:
        ok = False
    print("%s relerr %.2g %s (tol %g)%s" % (label, relerr, "ok" if ok else "FAIL", tol,
                                            "".join("; " + n for n in notes)))
    if not ok and fin.any():
        err = np.abs(o - r)
        err[~fin] = 0
        i = np.unravel_index(int(np.argmax(err)), err.shape) if err.size else ()
        print("  largest difference at %s: tgc %r, reference %r" % (list(int(t) for t in i), float(o[i]), float(r[i])))
    log(k, dt, float(relerr), ok)
    return ok


def main(argv):
    ap = argparse.ArgumentParser(usage=__doc__.split("\n\n")[1])
    ap.add_argument("tgc")
    ap.add_argument("file")
    ap.add_argument("--dims", action="append", default=[])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights")
    ap.add_argument("--random-weights", action="store_true")
    ap.add_argument("--rtol", type=float)
    ap.add_argument("--entry")
    ap.add_argument("--allow-nan", action="store_true")
    ap.add_argument("--expect-error", action="store_true")
    ap.add_argument("--device", help="passed to tgc run (default: its own, auto)")
    o = ap.parse_args(argv)

    try:
        mod = ref.load_module(o.tgc, o.file)
        f = mod.entry(o.entry)
    except ref.RefError as e:
        fail(str(e))
    dims = parse_dims(o.dims)
    ranges, values = parse_comments(o.file)
    syms = {}
    for _, ty in f.args:
        for d in range(len(ty.dims)):
            s = ty.bare_symbol(d)
            if s is not None and s not in syms:
                syms[s] = dims.get(s, 3)
    for s in dims:
        if s not in syms:
            fail("--dims names %s, which no argument of @%s binds" % (s, f.name))
    for name in list(ranges) + list(values):
        if name not in [a for a, _ in f.args]:
            fail("ARGRANGE/ARGVALUES name %%%s, which is not an argument of @%s" % (name, f.name))

    rng = np.random.default_rng(o.seed)
    tmp = tempfile.mkdtemp(prefix="optest.")
    try:
        cmd = [o.tgc, "run", o.file]
        if o.entry:
            cmd += ["--entry", o.entry]
        if o.device:
            cmd += ["--device=" + o.device]
        inputs = {}
        for name, ty in f.args:
            if ty.dt not in NPY_DTYPES:
                fail("argument %%%s is %s, which .npy cannot hold: take an f32 argument and cast it" % (name, ty))
            try:
                shape = ty.shape(syms)
            except ref.RefError as e:
                fail(str(e))
            a = gen_array(rng, ty.dt, shape, ranges.get(name), values.get(name), "%" + name)
            inputs[name] = ref.Val(a, ty.dt)
            path = os.path.join(tmp, "in_%s.npy" % name)
            np.save(path, a)
            cmd += ["--input", "%s=%s" % (name, path)]
        weights = o.weights
        if o.random_weights:
            tensors = []
            for op in params_of(f.ops):
                ty = op.types[0]
                tensors.append((op.attrs["name"], ref.Val(gen_array(rng, ty.dt, ty.shape(syms)), ty.dt)))
            weights = os.path.join(tmp, "weights.safetensors")
            ref.write_safetensors(weights, tensors)
        if weights:
            cmd += ["--weights", weights]
        outs = []
        for k in range(len(f.result_types)):
            outs.append(os.path.join(tmp, "out_%d.npy" % k))
            cmd += ["--output", "%d=%s" % (k, outs[-1])]
        print("dims: %s" % (" ".join("%s=%d" % kv for kv in sorted(syms.items())) or "(none)"))
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            fail("tgc run did not finish in 600 s")
        if o.expect_error:
            sys.stdout.write(r.stderr)
            if r.returncode == 1:
                print("optest: tgc failed as expected")
                return 0
            if r.returncode == 0:
                print("optest: tgc succeeded, but an error was expected")
            else:
                print("optest: tgc crashed or exited with status %d" % r.returncode)
            print("optest: FAIL")
            return 1
        if r.returncode != 0:
            print("optest: tgc run failed with status %d:" % r.returncode)
            sys.stdout.write(r.stderr)
            print("optest: FAIL")
            return 1
        try:
            want = ref.run(mod, inputs, weights, o.entry)
        except ref.RefError as e:
            print("optest: reference error: %s" % e)
            print("optest: FAIL")
            return 1
        precision = result_precision(f)
        on_cuda = any(l.startswith("cuda: ") and " steps (" in l for l in r.stderr.splitlines())
        tols = TOL_CUDA if on_cuda else TOL
        logpath = os.environ.get("OPTEST_LOG")
        good = True
        for k, path in enumerate(outs):
            narrow = loosest(precision[k])
            tol = o.rtol if o.rtol is not None else (tols[narrow] if narrow else 0.0)

            def log(k, dt, err, ok, narrow=narrow, tol=tol):
                if logpath:
                    with open(logpath, "a") as lf:
                        lf.write(json.dumps({"file": os.path.basename(o.file), "dims": syms, "output": k,
                                             "dtype": dt, "narrowest": narrow, "err": err, "ok": ok,
                                             "tol": tol}) + "\n")
            good &= compare(k, np.load(path), want[k], tol, o.allow_nan, log)
        print("optest: %s" % ("PASS" if good else "FAIL"))
        return 0 if good else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except ref.RefError as e:
        fail(str(e))

#!/usr/bin/env python3
"""Runs a generated CUDA kernel on the host and compares it with the CPU reference backend.

The module must compile (shape-infer + fuse) to exactly one launch, a pointwise or a rows kernel, whose operands
are @main's arguments and whose result is returned (or to no launch and a returned constant, which a kernel of
its own writes). The kernel from `tgc --emit=cuda` is compiled as C++ with g++ and a shim for the CUDA
built-ins, and its output compared with `tgc run` on the same random inputs: relative error < 1e-5 (fp32 math
vs the reference's double), with NaNs and infinities exactly where the reference has them. A signed integer
overflow in the kernel (undefined in CUDA C++ too; the CPU backend wraps) aborts it (-fsanitize).
  - pointwise: called once per output element (one "thread");
  - rows: each block is emulated with one host thread per CUDA thread (pthreads): __syncthreads is a barrier,
    __shared__ is static storage, and __shfl_xor_sync exchanges through a slot per thread between two
    barriers (the rows kernels call their block reductions uniformly, so every thread reaches them).

A kernel with a second output (out2: a fusion's second result) is compared on both, the module returning them in
that order (a line each).

With --expect-error, the CPU backend must reject the run (its message is printed) and so must the kernel, through
its error flag (the value it set is printed).

Usage: host_check.py TGC FILE.tir --dims B=2,S=3 [--seed N] [--expect-error] [--values X=1,2,3]

--values gives argument X's values (flattened, as its dtype) instead of random ones. Random arguments: f32 from
N(0, 1), i8 and i32 over their whole range (quantized operands and accumulators), other integers in 0..3.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim")
PRELUDE = r"""
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <pthread.h>
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__ __restrict
#define __align__(n) alignas(n)
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct tgc_dim3 { long long x; };
static thread_local tgc_dim3 blockIdx = {0}, threadIdx = {0};
static tgc_dim3 blockDim = {1};
static pthread_barrier_t tgc_bar;
static inline void __syncthreads() { pthread_barrier_wait(&tgc_bar); }
template <typename T> static T __shfl_xor_sync(unsigned, T v, int o) {
  static T slot[1024];
  slot[threadIdx.x] = v;
  __syncthreads();
  T r = slot[threadIdx.x ^ o];
  __syncthreads();
  return r;
}
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline int atomicExch(int *p, int v) { int o = *p; *p = v; return o; }
static inline long long __double_as_longlong(double d) { long long r; memcpy(&r, &d, sizeof r); return r; }
static inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
using std::rint;
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tgc")
    ap.add_argument("tir")
    ap.add_argument("--dims", default="")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--expect-error", action="store_true")
    ap.add_argument("--values", action="append", default=[])
    a = ap.parse_args()
    dims = dict(kv.split("=") for kv in a.dims.split(",") if kv)
    passes = "--passes=shape-infer,canonicalize,fuse"
    tir = subprocess.run([a.tgc, passes, a.tir], capture_output=True, text=True, check=True).stdout
    cuda = subprocess.run([a.tgc, passes, "--emit=cuda", a.tir], capture_output=True, text=True, check=True).stdout
    kernels = re.findall(r"// ===== kernel (\w+) \((\w+)\) =====\n(.*?)(?=\n// =====|\Z)", cuda, re.S)
    if len(kernels) != 1 or kernels[0][1] not in ("pointwise", "rows", "constant"):
        print(f"host_check: expected one pointwise, rows or constant kernel, got {[(k[0], k[1]) for k in kernels]}")
        return 1
    name, kind, src = kernels[0]
    sig = re.search(r"void %s\((.*?)\) \{" % name, src).group(1)
    n_in = len(re.findall(r"const \w[\w ]* \*__restrict__ in\d+", sig))
    syms = re.findall(r"long long s_(\w+)", sig)
    head = re.search(r"func @main\((.*?)\) ->", tir).group(1)
    args = re.findall(r"%([\w.]+): (\w+)\[([^\]]*)\]", head)
    body_lines = tir[tir.index("func @main"):].split("\n")[1:]
    launch = next((m for m in (re.match(r"\s+\(?%[^=]+= (\w+)\((.*?)\)", l) for l in body_lines)
                   if m and m.group(1) not in ("param", "constant", "reshape")), None)
    # scalar constants are inlined into the kernel: its inputs are the launch's other operands (none when the
    # result is a constant, which a kernel of its own writes)
    argnames = [nm for nm, _, _ in args]
    operands = [o for o in re.findall(r"%([\w.]+)", launch.group(2)) if o in argnames] if launch else []
    order = [next(i for i, (nm, _, _) in enumerate(args) if nm == op) for op in operands]
    if len(order) != n_in:
        print(f"host_check: the kernel takes {n_in} inputs, the launch has {len(order)} operands")
        return 1
    rng = np.random.default_rng(a.seed)
    with tempfile.TemporaryDirectory() as d:
        files, run = [], [a.tgc, "run", a.tir]
        for nm, dt, shape in args:
            shp = [int(dims.get(s.strip(), s.strip())) for s in shape.split(",") if s.strip()]
            if dt == "f32":
                x = rng.standard_normal(shp).astype(np.float32)
            elif dt == "i8":  # the whole range (quantized operands)
                x = rng.integers(-128, 128, shp).astype(np.int8)
            elif dt == "i32":  # accumulators
                x = rng.integers(-2 ** 31, 2 ** 31, shp).astype(np.int32)
            else:
                x = rng.integers(0, 4, shp).astype(np.int64)
            given = [v.split("=", 1)[1] for v in a.values if v.split("=", 1)[0] == nm]
            if given:
                x = np.array([int(t) if x.dtype.kind == "i" else float(t) for t in given[0].split(",")],
                             dtype=x.dtype).reshape(shp)
            p = os.path.join(d, nm + ".npy")
            np.save(p, x)
            run += ["--input", f"{nm}={p}"]
            files.append(x)
        ref, ref2 = os.path.join(d, "ref.npy"), os.path.join(d, "ref2.npy")
        two = "*__restrict__ out2" in sig  # a fusion's second result: the module returns it second
        r = subprocess.run(run + ["--output", f"0={ref}"] + (["--output", f"1={ref2}"] if two else []),
                           capture_output=True, text=True)
        if a.expect_error:
            if r.returncode != 1:
                print(f"host_check: the CPU backend exited {r.returncode}, not 1")
                return 1
            print("host_check: CPU: " + r.stderr.strip().splitlines()[-1])
            dt, shape = re.search(r"\) -> (\w+)\[([^\]]*)\]", tir).groups()
            want = np.zeros([int(dims.get(s.strip(), s.strip())) for s in shape.split(",") if s.strip()],
                            {"f32": np.float32, "i64": np.int64, "i32": np.int32, "i8": np.int8}[dt])
        else:
            if r.returncode:
                print("host_check: tgc run failed:\n" + r.stderr)
                return 1
            want = np.load(ref)
            want2 = np.load(ref2) if two else None
        ctype = {np.dtype("float32"): "float", np.dtype("float64"): "double", np.dtype("int64"): "long long",
                 np.dtype("int32"): "int", np.dtype("int8"): "signed char", np.dtype("bool"): "bool"}
        glob, body, call = [PRELUDE, src], ["int main() {"], []
        for j, k in enumerate(order):
            x = files[k]
            glob.append(f"static {ctype[x.dtype]} in{j}[{max(x.size, 1)}];")
            body.append(f"  {{ FILE *f = fopen(\"{d}/in{j}.bin\", \"rb\"); fread(in{j}, sizeof in{j}[0], {x.size}, f); fclose(f); }}")
            x.tofile(os.path.join(d, f"in{j}.bin"))
            call.append(f"in{j}")
        glob.append(f"static {ctype[want.dtype]} out[{max(want.size, 1)}];")
        call.append("out")
        if two:
            glob.append(f"static {ctype[want2.dtype]} out2[{max(want2.size, 1)}];")
            call.append("out2")
        call += [str(int(dims[s])) for s in syms]
        glob.append("static int err = 0;")
        call.append("&err")
        if kind in ("pointwise", "constant"):
            body.append(f"  for (long long t = 0; t < {want.size}; t++) {{ threadIdx.x = t; {name}({', '.join(call)}); }}")
        else:
            block = int(re.search(r"#define BLOCK (\d+)", src).group(1))
            last = want.shape[-1] if want.ndim else 1
            # a kernel whose result is the row's statistic writes one element per row (block)
            rows = want.size if "const long long i = row;" in src else want.size // max(last, 1)
            glob.append("struct tgc_arg { long long block, thread; };")
            glob.append("static void *tgc_thread(void *p) {\n"
                        "  tgc_arg *a = (tgc_arg *)p;\n  blockIdx.x = a->block;\n  threadIdx.x = a->thread;\n"
                        f"  {name}({', '.join(call)});\n  return NULL;\n}}")
            body.append(f"  blockDim.x = {block};")
            body.append(f"  pthread_barrier_init(&tgc_bar, NULL, {block});")
            body.append(f"  static pthread_t th[{block}]; static tgc_arg args[{block}];")
            body.append(f"  for (long long b = 0; b < {rows}; b++) {{")
            body.append(f"    for (long long t = 0; t < {block}; t++) {{ args[t] = {{b, t}}; "
                        "pthread_create(&th[t], NULL, tgc_thread, &args[t]); }")
            body.append(f"    for (long long t = 0; t < {block}; t++) pthread_join(th[t], NULL);")
            body.append("  }")
        body.append(f"  FILE *f = fopen(\"{d}/out.bin\", \"wb\"); fwrite(out, sizeof out[0], {want.size}, f); fclose(f);")
        if two:
            body.append(f"  f = fopen(\"{d}/out2.bin\", \"wb\"); fwrite(out2, sizeof out2[0], {want2.size}, f); fclose(f);")
        body.append("  if (err) { fprintf(stderr, \"the kernel set its error flag to %d\\n\", err); return 3; }")
        body.append("  return 0;\n}")
        body = glob + body
        cpp = os.path.join(d, "k.cpp")
        open(cpp, "w").write("\n".join(body))
        exe = os.path.join(d, "k")
        r = subprocess.run(["g++", "-O1", "-std=c++17", "-pthread", "-fsanitize=signed-integer-overflow",
                            "-fno-sanitize-recover", "-I", SHIM, cpp, "-o", exe], capture_output=True,
                           text=True)
        if r.returncode:
            print("host_check: g++ failed:\n" + r.stderr[:3000])
            return 1
        r = subprocess.run([exe], capture_output=True, text=True)
        if a.expect_error:
            print(f"host_check: kernel {name}: exit {r.returncode}: {r.stderr.strip()}")
            return 0 if r.returncode == 3 else 1
        if r.returncode:
            print(f"host_check: kernel {name} exited {r.returncode}: {r.stderr.strip()}")
            return 1
        got = np.fromfile(os.path.join(d, "out.bin"), dtype=want.dtype).reshape(want.shape)
        if two:
            got2 = np.fromfile(os.path.join(d, "out2.bin"), dtype=want2.dtype).reshape(want2.shape)
            ok1 = compare(name, got, want) == 0
            return 0 if compare(name, got2, want2) == 0 and ok1 else 1
    return compare(name, got, want)


def compare(name, got, want):
    """0 when the kernel's output GOT matches the CPU backend's WANT (printed either way), else 1."""
    if want.dtype == np.bool_ or want.dtype.kind in "iu":
        ok = np.array_equal(got, want)
        print(f"host_check: kernel {name}: {want.dtype}{list(want.shape)} {'exact' if ok else 'MISMATCH'}")
        return 0 if ok else 1
    # non-finite values (an -inf mask, a NaN constant) must be where the reference has them, with their sign
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    fin = np.isfinite(want64)
    same = np.array_equal(np.isnan(got64), np.isnan(want64)) and np.array_equal(got64[np.isinf(want64)],
                                                                              want64[np.isinf(want64)])
    err = np.linalg.norm(got64[fin] - want64[fin]) / max(np.linalg.norm(want64[fin]), 1e-30)
    ok = same and np.isfinite(got64[fin]).all() and err < 1e-5
    print(f"host_check: kernel {name}: {want.dtype}{list(want.shape)} relerr {err:.1e} {'ok' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

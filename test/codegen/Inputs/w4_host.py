#!/usr/bin/env python3
"""Runs the int4 weight-only kernels (w4gemm, w4dequant: codegen/kernels/w4gemm.cuh) on the host and compares them
with the CPU backend, so that their packed-weight layout and tensor-core fragment logic are tested without a GPU.

The module is matmul(x, dequantize(transpose(q), s) {axis = 0, group = G}) (+ a bias) with symbolic rows, whose
CUDA program holds both kernels. Each is compiled as C++ by g++ with a prelude for the CUDA built-ins it uses:
_Float16 for __half (one rounding per operation, as the GPU's: a product of two halves is exact in float), a
block of 256 threads as 256 pthreads (__syncthreads a block barrier), and mma.sync.m16n8k16 emulated from the
PTX ISA's fragment layouts: every lane of a warp leaves its A and B registers in the warp's slots, a warp barrier,
each lane sums its four outputs from the slots (float, k in order), a warp barrier. The packed weight is made here
from the layout docs/codegen.md describes (independently of tgc_rt_pack_w4, which test_rt_convert checks against
the kernel's reads).
  - w4dequant's f16 [N][K] weight must equal numpy's q * s rounded once to f16, exactly;
  - w4gemm's output must match `tgc run` (the CPU backend) within 1e-3 relative L2 (f16 outputs; fp32 sums in
    another order).

Usage: w4_host.py TGC --m M --n N --k K --group G [--bias] [--seed S]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "Inputs"))
import ref  # noqa: E402

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
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static
struct alignas(16) uint4 { unsigned x, y, z, w; };
typedef _Float16 __half;
struct alignas(4) __half2 { __half x, y; };
static inline __half __ushort_as_half(unsigned short b) { __half h; memcpy(&h, &b, 2); return h; }
static inline __half2 __half2half2(__half h) { return {h, h}; }
static inline __half2 __hsub2(__half2 a, __half2 b) { return {(__half)(a.x - b.x), (__half)(a.y - b.y)}; }
static inline __half2 __hmul2(__half2 a, __half2 b) { return {(__half)(a.x * b.x), (__half)(a.y * b.y)}; }
static inline float __half2float(__half h) { return (float)h; }
static inline __half __float2half(float f) { return (__half)f; }
struct tgc_dim3 { long long x, y, z; };
static thread_local tgc_dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0};
static pthread_barrier_t tgc_block_bar, tgc_warp_bar[8];
static inline void __syncthreads() { pthread_barrier_wait(&tgc_block_bar); }
static unsigned tgc_slot_a[8][32][4], tgc_slot_b[8][32][2];
static float tgc_half_at(unsigned r, int hi) { unsigned short b = hi ? r >> 16 : r & 0xffff; return (float)__ushort_as_half(b); }
/* mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32, from the PTX ISA's fragment layouts */
static void tgc_mma16816(float *c, const unsigned *a, const unsigned *b) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  memcpy(tgc_slot_a[w][lane], a, 16);
  memcpy(tgc_slot_b[w][lane], b, 8);
  pthread_barrier_wait(&tgc_warp_bar[w]);
  int g = lane >> 2, t = lane & 3;
  for (int i = 0; i < 4; i++) {
    int row = g + (i >> 1) * 8, col = t * 2 + (i & 1);
    float s = 0;
    for (int k = 0; k < 16; k++) {
      float av = tgc_half_at(tgc_slot_a[w][(row % 8) * 4 + (k % 8) / 2][(row >= 8) + 2 * (k >= 8)], k % 2);
      float bv = tgc_half_at(tgc_slot_b[w][col * 4 + (k % 8) / 2][k >= 8], k % 2);
      s += av * bv;
    }
    c[i] += s;
  }
  pthread_barrier_wait(&tgc_warp_bar[w]);
}
"""


def pack(q, n, k):
    """The w4 kernels' order (docs/codegen.md): per 8 rows and 128 columns, 512 bytes; lane L's 16 bytes are 4
    words, word j holding k-tiles 2j (h = 0) and 2j + 1 (h = 1); fragment value v of row 8 tile + L / 4 and
    column 16 ktile + 2 (L % 4) + (v % 2) + 8 (v / 2) sits at nibble 2h + v / 2 + 4 (v % 2), offset by 8."""
    out = np.zeros((n // 8, k // 128, 32, 4), np.uint32)
    for lane in range(32):
        rows = np.arange(n // 8)[:, None] * 8 + lane // 4
        for j in range(4):
            word = np.zeros((n // 8, k // 128), np.uint32)
            for h in range(2):
                for v in range(4):
                    cols = np.arange(k // 128)[None, :] * 128 + (2 * j + h) * 16 + 2 * (lane % 4) + (v % 2) + 8 * (v // 2)
                    nib = (q[rows, cols].astype(np.int32) + 8).astype(np.uint32)
                    word |= nib << (4 * (2 * h + v // 2 + 4 * (v % 2)))
            out[:, :, lane, j] = word
    return out.reshape(-1)


def host_run(d, name, src, main_body, globs):
    cpp = os.path.join(d, name + ".cpp")
    with open(cpp, "w") as f:
        f.write(PRELUDE + src + "\n" + "\n".join(globs) + "\nint main() {\n" + main_body + "\n  return 0;\n}\n")
    exe = os.path.join(d, name)
    r = subprocess.run(["g++", "-O1", "-std=c++17", "-pthread", "-I", SHIM, cpp, "-o", exe], capture_output=True,
                       text=True)
    if r.returncode:
        sys.exit(f"w4_host: g++ failed:\n{r.stderr[:3000]}")
    r = subprocess.run([exe], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"w4_host: {name} exited {r.returncode}: {r.stderr}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tgc")
    ap.add_argument("--m", type=int, required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--group", type=int, required=True)
    ap.add_argument("--bias", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    M, N, K, G = a.m, a.n, a.k, a.group
    rng = np.random.default_rng(a.seed)
    q = rng.integers(-8, 8, (N, K)).astype(np.int8)
    s = (rng.standard_normal((K // G, N)) * 0.1).astype(np.float16)
    b = rng.standard_normal(N).astype(np.float16)
    x = rng.standard_normal((M, K)).astype(np.float16)
    tir = f"""module @w4 {{weights = "w.safetensors"}} {{
  func @main(%x: f16[M, {K}]) -> f16[M, {N}] {{
    %q = param() {{name = "q"}} : i4[{N}, {K}]
    %s = param() {{name = "s"}} : f16[{K // G}, {N}]
    %b = param() {{name = "b"}} : f16[{N}]
    %qt = transpose(%q) {{perm = [1, 0]}} : i4[{K}, {N}]
    %wd = dequantize(%qt, %s) {{axis = 0, group = {G}}} : f16[{K}, {N}]
    %y = matmul(%x, %wd) : f16[M, {N}]
    {"%z = add(%y, %b) : f16[M, " + str(N) + "]" if a.bias else "%z = reshape(%y) : f16[M, " + str(N) + "]"}
    return %z
  }}
}}
"""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "w4.tir")
        with open(path, "w") as f:
            f.write(tir)
        ref.write_safetensors(os.path.join(d, "w.safetensors"),
                              [("q", ref.Val(q, "i4")), ("s", ref.Val(s, "f16")), ("b", ref.Val(b, "f16"))])
        np.save(os.path.join(d, "x.npy"), x)
        r = subprocess.run([a.tgc, "run", path, "--device=cpu", "--input", f"x={d}/x.npy", "--output",
                            f"0={d}/ref.npy"], capture_output=True, text=True)
        if r.returncode:
            sys.exit("w4_host: tgc run failed:\n" + r.stderr)
        want = np.load(os.path.join(d, "ref.npy")).astype(np.float64)
        cuda = subprocess.run([a.tgc, "-O2", "--emit=cuda", path], capture_output=True, text=True, check=True).stdout
        # each kernel of the kind whose condition (", when 16 < M <= 128") holds at M rows
        kernels = {}
        for nm, kind, cond, src in re.findall(r"// ===== kernel (\w+) \((\w+)\)([^\n]*)=====\n(.*?)(?=\n// =====|\Z)",
                                             cuda, re.S):
            c = re.search(r"when (?:(\d+) < )?M (<=|>) (\d+)", cond)
            holds = not c or ((not c.group(1) or M > int(c.group(1))) and
                              (M <= int(c.group(3)) if c.group(2) == "<=" else M > int(c.group(3))))
            if holds or kind == "w4dequant":  # the dequant kernel is the many-rows path's: tested at any M
                kernels[kind] = (nm, src)
        if "w4gemm" not in kernels or "w4dequant" not in kernels:
            sys.exit(f"w4_host: expected a w4gemm for {M} rows and a w4dequant kernel, got {sorted(kernels)}")
        packed = pack(q, N, K)
        packed.tofile(os.path.join(d, "w.bin"))
        s.tofile(os.path.join(d, "s.bin"))
        b.tofile(os.path.join(d, "b.bin"))
        x.tofile(os.path.join(d, "x.bin"))
        load = lambda v, n, t: f'  {{ FILE *f = fopen("{d}/{v}.bin", "rb"); fread({v}, sizeof({t}), {n}, f); fclose(f); }}'  # noqa: E731

        # w4dequant: one thread per 16 bytes
        nm, src = kernels["w4dequant"]
        threads = N // 8 * (K // 128) * 32
        globs = [f"static uint4 w[{packed.size // 4}];", f"static __half s[{s.size}];", f"static __half out[{N * K}];",
                 "static int err;"]
        body = "\n".join([load("w", packed.size // 4, "uint4"), load("s", s.size, "__half"),
                          f"  for (long long t = 0; t < {(threads + 255) // 256 * 256}; t++) {{ blockIdx.x = t / 256; "
                          f"threadIdx.x = t % 256; {nm}(w, s, out, &err); }}",
                          f'  FILE *f = fopen("{d}/dq.bin", "wb"); fwrite(out, 2, {N * K}, f); fclose(f);'])
        host_run(d, "dequant", src, body, globs)
        dq = np.fromfile(os.path.join(d, "dq.bin"), np.float16).reshape(N, K)
        wdq = (q.astype(np.float64) * np.repeat(s.astype(np.float64), G, axis=0).T).astype(np.float16)
        same = np.array_equal(dq.view(np.uint16), wdq.view(np.uint16))
        print(f"w4_host: {nm}: f16[{N}, {K}] {'exact' if same else 'MISMATCH'} against q * s")

        # w4gemm: blocks of 256 threads (pthreads), 8 warps
        nm, src = kernels["w4gemm"]
        nt = int(re.search(r"#define NT (\d+)", src).group(1))
        mt = int(re.search(r"#define MT (\d+)", src).group(1))
        syms = re.findall(r"long long s_(\w+)", re.search(r"%s\((.*?)\) \{" % nm, src, re.S).group(1))
        args = ["x", "w", "s"] + (["b"] if a.bias else []) + ["out"] + [str(M) for _ in syms] + ["&err"]
        globs = [f"static __half x[{x.size}];", f"static uint4 w[{packed.size // 4}];", f"static __half s[{s.size}];",
                 f"static __half b[{N}];", f"static __half out[{M * N}];", "static int err;",
                 "struct tgc_arg { long long bx, by, t; };",
                 "static void *tgc_thread(void *p) {\n  tgc_arg *a = (tgc_arg *)p;\n  blockIdx.x = a->bx;\n"
                 f"  blockIdx.y = a->by;\n  threadIdx.x = a->t;\n  {nm}({', '.join(args)});\n  return NULL;\n}}"]
        body = "\n".join([load("x", x.size, "__half"), load("w", packed.size // 4, "uint4"), load("s", s.size, "__half"),
                          load("b", N, "__half"),
                          "  pthread_barrier_init(&tgc_block_bar, NULL, 256);",
                          "  for (int i = 0; i < 8; i++) pthread_barrier_init(&tgc_warp_bar[i], NULL, 32);",
                          "  static pthread_t th[256]; static tgc_arg ta[256];",
                          f"  for (long long bx = 0; bx < {(M + 16 * mt - 1) // (16 * mt)}; bx++)",
                          f"    for (long long by = 0; by < {N // (8 * nt)}; by++) {{",
                          "      for (int t = 0; t < 256; t++) { ta[t] = {bx, by, t}; pthread_create(&th[t], NULL, tgc_thread, &ta[t]); }",
                          "      for (int t = 0; t < 256; t++) pthread_join(th[t], NULL);",
                          "    }",
                          f'  FILE *f = fopen("{d}/y.bin", "wb"); fwrite(out, 2, {M * N}, f); fclose(f);'])
        host_run(d, "gemm", src, body, globs)
        got = np.fromfile(os.path.join(d, "y.bin"), np.float16).reshape(M, N).astype(np.float64)
    rel = float(np.linalg.norm(got - want) / np.linalg.norm(want))
    ok = np.isfinite(got).all() and rel < 1e-3
    print(f"w4_host: {nm} (MT {mt}, NT {nt}): f16[{M}, {N}] relerr {rel:.1e} {'ok' if ok else 'MISMATCH'} against the "
          "CPU backend")
    return 0 if ok and same else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Quantized GEMMs on the GPU: tgc's int8 and fp8 linear layers against tgc's fp16 one and PyTorch's, one run on
one device, ratios only.

Each shape M x N x K is one linear layer y = x W^T as the quantize pass and fold-qdq leave it (the weight stored
[N, K], read through a transpose):
  fp16   x f16[M, K] @ W f16[N, K]^T -> f16                         (cuBLASLt fp16)
  int8   x i8 @ W i8^T -> i32, dequantize by per-channel scales -> f16  (cuBLASLt IMMA + tgc's epilogue kernel)
  fp8    x f8e4m3 @ W f8e4m3^T -> f32, dequantize per channel -> f16     (cuBLASLt fp8 + tgc's epilogue kernel)
  fp8t   the same with one per-tensor weight scale: the rescale is cuBLASLt's alpha, f16 out  (one cuBLASLt call)
tgc is timed by `tgc run --time` (CUDA graph replays, median of --runs); PyTorch by CUDA events (median of --runs
after a warm-up): fp16 `x @ w.t()`, `torch._int_mm` (int32 out, no rescale: less work than tgc's int8 layer) and
`torch._scaled_mm` (fp8 with per-tensor scales, f16 out). The int8 result is checked exactly against torch's
int32 product rescaled in fp32 (within f16 rounding).

Usage: python3 bench/quant_gpu.py --tgc build/bin/tgc [--shapes 4096x5632x2048,8192x8192x8192] [--runs 50]
                                  [--out DIR]
Writes DIR/results.md and DIR/results.json.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import gpu_models  # noqa: E402  (CUDA-event timing, one home)

FORMS = {
    "fp16": """module @lin {weights = "w.safetensors"} {
  func @main(%x: f16[M, K]) -> f16[M, N] {
    %w = param() {name = "w"} : f16[N, K]
    %wt = transpose(%w) {perm = [1, 0]} : f16[K, N]
    %y = matmul(%x, %wt) : f16[M, N]
    return %y
  }
}
""",
    "int8": """module @lin {weights = "w.safetensors"} {
  func @main(%x: i8[M, K]) -> f16[M, N] {
    %w = param() {name = "wq"} : i8[N, K]
    %s = param() {name = "ws"} : f32[N]
    %wt = transpose(%w) {perm = [1, 0]} : i8[K, N]
    %acc = matmul(%x, %wt) : i32[M, N]
    %y = dequantize(%acc, %s) {axis = 1} : f16[M, N]
    return %y
  }
}
""",
    "fp8": """module @lin {weights = "w.safetensors"} {
  func @main(%x: f8e4m3[M, K]) -> f16[M, N] {
    %w = param() {name = "w8"} : f8e4m3[N, K]
    %s = param() {name = "ws"} : f32[N]
    %wt = transpose(%w) {perm = [1, 0]} : f8e4m3[K, N]
    %acc = matmul(%x, %wt) : f32[M, N]
    %y = dequantize(%acc, %s) {axis = 1} : f16[M, N]
    return %y
  }
}
""",
    "fp8t": """module @lin {weights = "w.safetensors"} {
  func @main(%x: f8e4m3[M, K]) -> f16[M, N] {
    %w = param() {name = "w8"} : f8e4m3[N, K]
    %wt = transpose(%w) {perm = [1, 0]} : f8e4m3[K, N]
    %acc = matmul(%x, %wt) : f32[M, N]
    %y = dequantize(%acc) {scale = 0.001} : f16[M, N]
    return %y
  }
}
""",
}


def cuda_time(fn, runs):
    return gpu_models.cuda_time(fn, runs, spread=True)


def tgc_time(tgc, tir, dims, runs, cache, inputs=None, out=None):
    return gpu_models.tgc_replay_time(tgc, tir, runs, cache, dims, inputs, out, who="quant_gpu")


def program_summary(tgc, tir):
    r = subprocess.run([tgc, "-O2", tir, "--emit=cuda"], capture_output=True, text=True)
    return [line[9:].strip(" =") for line in r.stdout.splitlines() if line.startswith("// ===== ")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tgc", default=os.path.join(ROOT, "build", "bin", "tgc"))
    ap.add_argument("--shapes", default="4096x5632x2048,8192x8192x8192,4096x384x384,16x4096x4096")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="tgc-quant-gpu-")
    os.makedirs(out, exist_ok=True)
    cache = os.path.join(out, "kcache")
    dev = torch.cuda.get_device_name()
    rows = []
    for shape in a.shapes.split(","):
        M, N, K = (int(v) for v in shape.split("x"))
        d = os.path.join(out, shape)
        os.makedirs(d, exist_ok=True)
        g = torch.Generator(device="cuda").manual_seed(0)
        w16 = torch.randn(N, K, device="cuda", generator=g, dtype=torch.float16) * 0.05
        ws = (w16.float().abs().amax(1) / 127).contiguous()
        wq = torch.clamp(torch.round(w16.float() / ws[:, None]), -128, 127).to(torch.int8)
        ws8 = (w16.float().abs().amax(1) / 448).contiguous()
        w8 = (w16.float() / ws8[:, None]).to(torch.float8_e4m3fn)
        save_file({"w": w16.cpu(), "wq": wq.cpu(), "ws": ws.cpu(), "w8": w8.cpu()}, os.path.join(d, "w.safetensors"))
        tirs = {}
        for form, text in FORMS.items():
            tirs[form] = os.path.join(d, form + ".tir")
            with open(tirs[form], "w") as f:  # N and K are the weight's: concrete, like an exported model's
                f.write(text.replace("N, K]", f"{N}, {K}]").replace("K, N]", f"{K}, {N}]").replace("M, N]", f"M, {N}]")
                        .replace("M, K]", f"M, {K}]").replace("f32[N]", f"f32[{N}]"))
        dims = {"M": M}
        # correctness of the int8 layer: tgc against torch's int32 product, rescaled
        xq = torch.randint(-127, 128, (M, K), device="cuda", generator=g, dtype=torch.int8)
        np.save(os.path.join(d, "xq.npy"), xq.cpu().numpy())
        t_i8 = tgc_time(a.tgc, tirs["int8"], dims, a.runs, cache, {"x": os.path.join(d, "xq.npy")},
                        os.path.join(d, "y8.npy"))
        want = (torch._int_mm(xq, wq.t()).double() * ws.double()).cpu().numpy() if M > 16 else \
            (xq.double() @ wq.double().t() * ws.double()).cpu().numpy()
        got = np.load(os.path.join(d, "y8.npy")).astype(np.float64)
        relerr = float(np.linalg.norm(got - want) / np.linalg.norm(want))
        t_f16 = tgc_time(a.tgc, tirs["fp16"], dims, a.runs, cache)
        t_f8 = tgc_time(a.tgc, tirs["fp8"], dims, a.runs, cache)
        t_f8t = tgc_time(a.tgc, tirs["fp8t"], dims, a.runs, cache)
        x16 = torch.randn(M, K, device="cuda", generator=g, dtype=torch.float16)
        x8 = x16.to(torch.float8_e4m3fn)
        one = torch.ones((), device="cuda")
        peers = {"torch fp16": cuda_time(lambda: x16 @ w16.t(), a.runs)}
        if M > 16:  # torch._int_mm needs M > 16
            peers["torch._int_mm"] = cuda_time(lambda: torch._int_mm(xq, wq.t()), a.runs)
        peers["torch._scaled_mm"] = cuda_time(
            lambda: torch._scaled_mm(x8, w8.t(), scale_a=one, scale_b=one, out_dtype=torch.float16), a.runs)
        row = {"shape": shape, "M": M, "N": N, "K": K, "device": dev,
               "tgc_ms": {"fp16": t_f16, "int8": t_i8, "fp8": t_f8, "fp8t": t_f8t}, "torch_ms": peers,
               "int8_relerr_vs_torch": relerr,
               "programs": {f: program_summary(a.tgc, p) for f, p in tirs.items()}}
        flops = 2.0 * M * N * K
        row["tops"] = {k: flops / (v[0] * 1e-3) / 1e12 for k, v in row["tgc_ms"].items()}
        rows.append(row)
        print(f"{shape}: tgc fp16 {t_f16[0]*1e3:.1f} us, int8 {t_i8[0]*1e3:.1f} us ({t_f16[0]/t_i8[0]:.2f}x fp16), "
              f"fp8 {t_f8[0]*1e3:.1f} us ({t_f16[0]/t_f8[0]:.2f}x), fp8t {t_f8t[0]*1e3:.1f} us ({t_f16[0]/t_f8t[0]:.2f}x); " +
              ", ".join(f"{k} {v[0]*1e3:.1f} us" for k, v in peers.items()) + f"; int8 relerr {relerr:.2e}",
              flush=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    lines = [f"# Quantized GEMMs on {dev} (median of {a.runs}; ratios > 1: faster than the reference)", "",
             "| M x N x K | int8 / tgc fp16 | fp8 / tgc fp16 | fp8t / tgc fp16 | int8 / torch._int_mm | "
             "fp8t / torch._scaled_mm | tgc fp16 / torch fp16 | tgc int8 TOPS | tgc fp8t TOPS | int8 relerr |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t, p = r["tgc_ms"], r["torch_ms"]
        im = f"{p['torch._int_mm'][0] / t['int8'][0]:.2f}x" if "torch._int_mm" in p else "—"
        lines.append(f"| {r['shape']} | {t['fp16'][0] / t['int8'][0]:.2f}x | {t['fp16'][0] / t['fp8'][0]:.2f}x | "
                     f"{t['fp16'][0] / t['fp8t'][0]:.2f}x | {im} | {p['torch._scaled_mm'][0] / t['fp8t'][0]:.2f}x | "
                     f"{p['torch fp16'][0] / t['fp16'][0]:.2f}x | {r['tops']['int8']:.0f} | {r['tops']['fp8t']:.0f} | "
                     f"{r['int8_relerr_vs_torch']:.1e} |")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    bad = [r["shape"] for r in rows if not r["int8_relerr_vs_torch"] < 1e-2]
    if bad:
        sys.exit(f"quant_gpu: the int8 layer differs from torch at {bad}")


if __name__ == "__main__":
    main()

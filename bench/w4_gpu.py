#!/usr/bin/env python3
"""The int4 weight-only linear layer on the GPU: tgc's w4 GEMM kernel against tgc's fp16 layer, the general path
(TGC_W4=off: a dequantize kernel writes the f16 weight, then cuBLASLt), PyTorch fp16 and the device's copy
bandwidth, one run on one device, ratios only.

Each shape M x N x K is y = x dequantize(q, s)^T as quantize{mode=int4w} leaves it: q i4 [N, K] (read through a
transpose), s f16 [K / 128, N] group scales, x and y f16. tgc is timed by `tgc run --time` (CUDA graph replays,
median of --runs), PyTorch by CUDA events. The packed weight is N K / 2 bytes (+ N K / 64 of scales); its read
rate (over the kernel's own time, from `tgc run --profile`: a replay's time adds the graph launch's latency,
comparable to a small layer's work) is compared with the copy bandwidth of a 1 GiB device-to-device copy ((read +
write) / time). The w4 result
is checked against torch's fp32 product of x and the dequantized weight (relative L2 < 1e-2).

--tiles MT,SPB:MT,SPB:... also times the w4 kernel (--profile) with each block shape (TGC_W4_TILE: m-tiles of 16
rows per block, spans of 128 k a warp loads at once) -- how the defaults in codegen/cuda_w4.c were chosen.

Usage: python3 bench/w4_gpu.py --tgc build/bin/tgc [--shapes 1x4096x4096,...] [--runs 50] [--out DIR]
                               [--tiles 1,1:1,4:4,4 [--tiles-only]]
Writes DIR/results.md and DIR/results.json.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import gpu_models  # noqa: E402  (CUDA-event timing, one home)
import quant_gpu  # noqa: E402  (its fp16 layer)

GROUP = 128
FORMS = {
    "fp16": quant_gpu.FORMS["fp16"],  # the same fp16 linear layer as the other GEMM bench
    "int4w": """module @lin {weights = "w.safetensors"} {
  func @main(%x: f16[M, K]) -> f16[M, N] {
    %q = param() {name = "q"} : i4[N, K]
    %s = param() {name = "s"} : f16[G, N]
    %qt = transpose(%q) {perm = [1, 0]} : i4[K, N]
    %wd = dequantize(%qt, %s) {axis = 0, group = 128} : f16[K, N]
    %y = matmul(%x, %wd) : f16[M, N]
    return %y
  }
}
""",
}
DEFAULT_SHAPES = ",".join(f"{m}x{nk}" for nk in ("4096x4096", "14336x4096", "4096x14336") for m in (1, 8, 16)) + \
    ",128x4096x4096"


def tgc_time(tgc, tir, dims, runs, cache, env=None, inputs=None, out=None):
    return gpu_models.tgc_replay_time(tgc, tir, runs, cache, dims, inputs, out, env, who="w4_gpu")


def kernel_time(tgc, tir, dims, cache, tries=3, env=None):
    """The layer's GPU time in ms, its steps' sum from `tgc run --profile` (events around every step, the launches
    queued back to back; steps the sizes skip take none): the minimum of TRIES runs. Unlike a replay's time it
    leaves out the graph launch's latency, which is comparable to a small layer's whole work."""
    best = None
    for _ in range(tries):
        cmd = [tgc, "run", tir, "--device=cuda", "--profile", "--random-inputs"]
        for k, v in dims.items():
            cmd += ["--dim", f"{k}={v}"]
        r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TGC_CACHE_DIR=cache, **(env or {})))
        if r.returncode:
            sys.exit(f"w4_gpu: {' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
        m = re.search(r"profile: \d+ steps, ([\d.]+) ms in all", r.stdout)
        t = float(m.group(1))
        best = t if best is None else min(best, t)
    return best


def program_kernels(tgc, tir, env=None):
    r = subprocess.run([tgc, "-O2", tir, "--emit=cuda"], capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    return [line[9:].strip(" =") for line in r.stdout.splitlines() if line.startswith("// ===== ")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tgc", default=os.path.join(ROOT, "build", "bin", "tgc"))
    ap.add_argument("--shapes", default=DEFAULT_SHAPES)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--out", default=None)
    ap.add_argument("--tiles", default="")
    ap.add_argument("--tiles-only", action="store_true", help="only the --tiles kernel times")
    a = ap.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="tgc-w4-gpu-")
    os.makedirs(out, exist_ok=True)
    cache = os.path.join(out, "kcache")
    dev = torch.cuda.get_device_name()
    big = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    big2 = torch.empty_like(big)
    t_copy = gpu_models.cuda_time(lambda: big2.copy_(big), 20, spread=True)
    copy_bw = 2 * big.numel() / (t_copy[0] * 1e-3)
    del big, big2
    print(f"copy bandwidth {copy_bw / 1e9:.0f} GB/s (1 GiB device-to-device, read + write)", flush=True)
    rows = []
    for shape in a.shapes.split(","):
        M, N, K = (int(v) for v in shape.split("x"))
        d = os.path.join(out, shape)
        os.makedirs(d, exist_ok=True)
        g = torch.Generator(device="cuda").manual_seed(0)
        w16 = torch.randn(N, K, device="cuda", generator=g, dtype=torch.float16) * 0.05
        wg = w16.float().reshape(N, K // GROUP, GROUP)
        s = (wg.abs().amax(2) / 7).to(torch.float16)  # [N, K/G]
        q = torch.clamp(torch.round(wg / s.float()[:, :, None]), -8, 7).to(torch.int8).reshape(N, K)
        wdq = (q.float().reshape(N, K // GROUP, GROUP) * s.float()[:, :, None]).to(torch.float16).reshape(N, K)
        save_file({"w": w16.cpu(), "q": q.cpu(), "s": s.t().contiguous().cpu()}, os.path.join(d, "w.safetensors"))
        tirs = {}
        for form, text in FORMS.items():
            tirs[form] = os.path.join(d, form + ".tir")
            with open(tirs[form], "w") as f:
                f.write(text.replace("N, K]", f"{N}, {K}]").replace("K, N]", f"{K}, {N}]").replace("M, N]", f"M, {N}]")
                        .replace("M, K]", f"M, {K}]").replace("G, N]", f"{K // GROUP}, {N}]"))
        dims = {"M": M}
        x16 = torch.randn(M, K, device="cuda", generator=g, dtype=torch.float16)
        np.save(os.path.join(d, "x.npy"), x16.cpu().numpy())
        if a.tiles_only:
            tiles = {t: kernel_time(a.tgc, tirs["int4w"], dims, cache, env={"TGC_W4_TILE": t}) for t in a.tiles.split(":")}
            rows.append({"shape": shape, "device": dev, "tiles_kernel_ms": tiles})
            wbytes = N * K / 2 + N * (K // GROUP) * 2
            print(f"{shape}: w4 kernel us by TGC_W4_TILE: " + ", ".join(
                f"{t} {v*1e3:.1f} ({wbytes / (v * 1e-3) / copy_bw * 100:.0f}% of copy)" for t, v in tiles.items()),
                flush=True)
            continue
        t_w4 = tgc_time(a.tgc, tirs["int4w"], dims, a.runs, cache, inputs={"x": os.path.join(d, "x.npy")},
                        out=os.path.join(d, "y.npy"))
        want = (x16.double() @ wdq.double().t()).cpu().numpy()
        got = np.load(os.path.join(d, "y.npy")).astype(np.float64)
        relerr = float(np.linalg.norm(got - want) / np.linalg.norm(want))
        t_gen = tgc_time(a.tgc, tirs["int4w"], dims, a.runs, cache + "-off", env={"TGC_W4": "off"})
        t_f16 = tgc_time(a.tgc, tirs["fp16"], dims, a.runs, cache)
        t_torch = gpu_models.cuda_time(lambda: x16 @ w16.t(), a.runs, spread=True)
        k_w4 = kernel_time(a.tgc, tirs["int4w"], dims, cache)
        k_f16 = kernel_time(a.tgc, tirs["fp16"], dims, cache)
        wbytes = N * K / 2 + N * (K // GROUP) * 2
        row = {"shape": shape, "M": M, "N": N, "K": K, "device": dev, "copy_GBps": copy_bw / 1e9,
               "tgc_ms": {"fp16": t_f16, "int4w": t_w4, "int4w_general": t_gen}, "torch_fp16_ms": t_torch,
               "kernel_ms": {"fp16": k_f16, "int4w": k_w4},
               "relerr": relerr, "weight_GBps": wbytes / (k_w4 * 1e-3) / 1e9,
               "programs": {"int4w": program_kernels(a.tgc, tirs["int4w"]),
                            "int4w_general": program_kernels(a.tgc, tirs["int4w"], {"TGC_W4": "off"})}}
        row["copy_fraction"] = row["weight_GBps"] / row["copy_GBps"]
        if a.tiles:
            row["tiles_kernel_ms"] = {t: kernel_time(a.tgc, tirs["int4w"], dims, cache, env={"TGC_W4_TILE": t})
                                      for t in a.tiles.split(":")}
            print(f"{shape}: w4 kernel us by TGC_W4_TILE: " +
                  ", ".join(f"{t} {v*1e3:.1f}" for t, v in row["tiles_kernel_ms"].items()), flush=True)
        rows.append(row)
        print(f"{shape}: replays: tgc fp16 {t_f16[0]*1e3:.1f} us, w4 {t_w4[0]*1e3:.1f} us ({t_f16[0]/t_w4[0]:.2f}x fp16), "
              f"general {t_gen[0]*1e3:.1f} us, torch fp16 {t_torch[0]*1e3:.1f} us; kernels: fp16 {k_f16*1e3:.1f} us, "
              f"w4 {k_w4*1e3:.1f} us ({k_f16/k_w4:.2f}x, weights {row['weight_GBps']:.0f} GB/s = "
              f"{row['copy_fraction']*100:.0f}% of copy); relerr {relerr:.1e}", flush=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    if a.tiles_only:
        return
    lines = [f"# int4 weight-only linear layers on {dev} (median of {a.runs}; copy bandwidth "
             f"{rows[0]['copy_GBps']:.0f} GB/s)", "",
             "| M x N x K | w4 replay us (min) | tgc fp16 replay us | w4 / tgc fp16 (replays) | w4 / torch fp16 | "
             "w4 / general path | w4 kernel us | fp16 GEMM us | w4 / fp16 (kernels) | weights GB/s (kernel) | "
             "of copy bw | relerr |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r["tgc_ms"]
        lines.append(f"| {r['shape']} | {t['int4w'][0]*1e3:.1f} ({t['int4w'][1]*1e3:.1f}) | {t['fp16'][0]*1e3:.1f} | "
                     f"{t['fp16'][0] / t['int4w'][0]:.2f}x | {r['torch_fp16_ms'][0] / t['int4w'][0]:.2f}x | "
                     f"{t['int4w_general'][0] / t['int4w'][0]:.2f}x | {r['kernel_ms']['int4w']*1e3:.1f} | "
                     f"{r['kernel_ms']['fp16']*1e3:.1f} | {r['kernel_ms']['fp16'] / r['kernel_ms']['int4w']:.2f}x | "
                     f"{r['weight_GBps']:.0f} | {r['copy_fraction']*100:.0f}% | {r['relerr']:.1e} |")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    bad = [r["shape"] for r in rows if not r["relerr"] < 1e-2]
    if bad:
        sys.exit(f"w4_gpu: the w4 layer differs from torch at {bad}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Quantized whole models on the GPU: tgc's int8, fp8 and int4w modules against tgc's fp16 module and PyTorch's
fp16 model under torch.compile(mode="reduce-overhead"), one run on one device, ratios only.

For each model (exported in fp16 by tools/tgc-export): `tgc calibrate` on random inputs (the CPU backend; the
kernels' speed does not depend on the statistics), `quantize{mode=...}` for each mode, then every module is run
by `tgc run --device=cuda --time` (-O2, CUDA graph replays, median of --runs) on the same random token ids at
each shape, and PyTorch's fp16 model timed by CUDA events. Each quantized output is compared with tgc's fp16
output on the same inputs (relative L2 and cosine of the flattened outputs: what quantization costs on a
random-weight model, for orientation; accuracy on real data is bench/quant_accuracy.py's).

--prepare-only stops after the CPU's part (export, calibrate, quantize; no GPU used), --reuse skips each of those
steps whose output DIR already holds: the CPU's part can run while the GPU does other work.

Usage: python3 bench/quant_models.py --tgc build/bin/tgc [--models llama-2k:8x512+1x128,minilm-arch:32x128]
                                     [--modes int8,fp8,fp8-tensor,int4w] [--runs 30] [--out DIR] [--no-compile]
                                     [--prepare-only | --reuse]
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import gpu_models  # noqa: E402  (the exporter loader and CUDA-event timing, one home)

MODES = {
    "int8": "int8,smoothquant=0.8",
    "fp8": "fp8",
    "fp8-tensor": "fp8,granularity=tensor",
    # AWQ's search takes 12 minutes on llama-2k (2 cores; 72 s without it) and changes no kernel but one scaling
    # of each shared activation: the speed is measured without it
    "int4w": "int4w,awq=false",
}


def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    if r.returncode:
        sys.exit(f"quant_models: {' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return r.stdout


def tgc_time(tgc, tir, files, out, runs, cache):
    return gpu_models.tgc_replay_time(tgc, tir, runs, cache, inputs=files, out=out, who="quant_models")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tgc", default=os.path.join(ROOT, "build", "bin", "tgc"))
    ap.add_argument("--models", default="llama-2k:8x512+1x128,minilm-arch:32x128")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--prepare-only", action="store_true")
    ap.add_argument("--reuse", action="store_true")
    a = ap.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="tgc-quant-models-")
    os.makedirs(out, exist_ok=True)
    exp = gpu_models.load_exporter()
    rows = []
    for spec in a.models.split(","):
        name, shapes = spec.split(":")
        d = os.path.join(out, name)
        tir = os.path.join(d, name + ".tir")
        fresh = lambda path: not (a.reuse and os.path.exists(path))  # noqa: E731
        if fresh(tir):
            run([sys.executable, os.path.join(ROOT, "tools", "tgc-export"), name, "--dtype", "float16", "-o", d])
        cache = os.path.join(d, "kcache")
        if fresh(os.path.join(d, "calib.tir")):
            run([a.tgc, "calibrate", tir, "--random-inputs", "2", "--dim", "B=1", "--dim", "S=64", "-o",
                 os.path.join(d, "calib.tir")])
        tirs = {"fp16": tir}
        for mode in a.modes.split(","):
            tirs[mode] = os.path.join(d, mode + ".tir")
            if fresh(tirs[mode]):
                run([a.tgc, f"--passes=shape-infer,quantize{{mode={MODES[mode]}}}", os.path.join(d, "calib.tir"),
                     "-o", tirs[mode]])
        print(f"{name}: exported, calibrated and quantized in {d}", flush=True)
        if a.prepare_only:
            continue
        dev = torch.cuda.get_device_name()
        model16 = exp.build(name, 2, 8)[0].half().cuda().eval()
        for shape in shapes.split("+"):
            B, S = (int(x) for x in shape.split("x"))
            vocab = next(m for m in model16.modules() if isinstance(m, torch.nn.Embedding)).num_embeddings
            ids = torch.randint(0, vocab, (B, S), generator=torch.Generator().manual_seed(7))
            args = [ids] + ([torch.ones(B, S, dtype=torch.int64)] if "minilm" in name else [])
            files = {}
            for nm, t in zip(["input_ids", "attention_mask"], args):
                files[nm] = os.path.join(d, f"{nm}_{shape}.npy")
                np.save(files[nm], t.numpy())
            t, outs = {}, {}
            for form, path in tirs.items():
                outs[form] = os.path.join(d, f"out_{form}_{shape}.npy")
                t[form] = tgc_time(a.tgc, path, files, outs[form], a.runs, cache)
            base = np.load(outs["fp16"]).astype(np.float64).ravel()
            err = {}
            for form in tirs:
                y = np.load(outs[form]).astype(np.float64).ravel()
                err[form] = {"relerr": float(np.linalg.norm(y - base) / np.linalg.norm(base)),
                             "cos": float(y @ base / (np.linalg.norm(y) * np.linalg.norm(base))),
                             "finite": bool(np.isfinite(y).all())}
            cargs = [x.cuda() for x in args]
            peers = {}
            with torch.no_grad():
                peers["eager"] = gpu_models.cuda_time(lambda: model16(*cargs), a.runs, spread=True)
                if not a.no_compile:
                    torch._dynamo.reset()
                    cr = torch.compile(model16, mode="reduce-overhead")
                    peers["reduce-overhead"] = gpu_models.cuda_time(lambda: cr(*cargs), a.runs, spread=True)
            row = {"model": name, "shape": shape, "device": dev, "tgc_ms": t, "torch_ms": peers, "vs_fp16": err}
            rows.append(row)
            ro = peers.get("reduce-overhead")
            print(f"{name} {shape}: " + ", ".join(
                f"{f} {v[0]:.3f} ms ({t['fp16'][0] / v[0]:.2f}x fp16" + (f", {ro[0] / v[0]:.2f}x r-o" if ro else "") +
                f", cos {err[f]['cos']:.4f})" for f, v in t.items()) +
                f"; torch eager {peers['eager'][0]:.3f} ms" + (f", reduce-overhead {ro[0]:.3f} ms" if ro else ""),
                flush=True)
    if a.prepare_only:
        return
    dev = rows[0]["device"]
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    modes = a.modes.split(",")
    lines = [f"# Quantized models on {dev} (median of {a.runs} CUDA-graph replays; ratios > 1: faster)", "",
             "| model | shape | tgc fp16 ms | " + " | ".join(f"{m} ms / vs fp16 / vs r-o / cos" for m in modes) +
             " | torch r-o ms |", "|---|---|---|" + "---|" * len(modes) + "---|"]
    for r in rows:
        t, ro = r["tgc_ms"], r["torch_ms"].get("reduce-overhead")
        cells = [f"{t[m][0]:.3f} / {t['fp16'][0] / t[m][0]:.2f}x / " +
                 (f"{ro[0] / t[m][0]:.2f}x" if ro else "—") + f" / {r['vs_fp16'][m]['cos']:.4f}" for m in modes]
        lines.append(f"| {r['model']} | {r['shape']} | {t['fp16'][0]:.3f} | " + " | ".join(cells) +
                     (f" | {ro[0]:.3f} |" if ro else " | — |"))
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    bad = [(r["model"], r["shape"], m) for r in rows for m, e in r["vs_fp16"].items() if not e["finite"]]
    if bad:
        sys.exit(f"quant_models: non-finite outputs: {bad}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""tgc on the GPU against PyTorch, on the exported models, in one run on one device.

For each model (exported in fp16 by tools/tgc-export) and each shape (batch x seq):
  - correctness: tgc's output and torch's fp16 output, each against torch run in fp32 on the same (fp16-rounded)
    weights: ||out - ref|| / ||ref||, which must be < 1e-2 and finite for tgc;
  - latency (CUDA events, warm-up, median of --runs): tgc (its CUDA graph replays, timed by `tgc run --time`),
    PyTorch eager, torch.compile and torch.compile(mode="reduce-overhead"), with ratios to torch.compile;
  - the roofline floor: max(weight and activation bytes / measured copy bandwidth, GEMM FLOPs / measured fp16
    GEMM throughput), both measured in this run;
  - tgc's cold compile (empty kernel cache) and warm compile (cache filled) of the first shape.
Then a large elementwise fusion: tgc's kernel bandwidth against the device's copy bandwidth.

Usage: python3 bench/gpu_models.py --tgc build/bin/tgc [--models gpt2,minilm-arch,llama] [--shapes 1x128,8x512]
                                   [--runs 50] [--out DIR] [--no-compile]
"""
import argparse
import importlib.machinery
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_exporter():
    path = os.path.join(ROOT, "tools", "tgc-export")
    loader = importlib.machinery.SourceFileLoader("tgc_export", path)
    spec = importlib.util.spec_from_loader("tgc_export", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def cuda_time(fn, runs, warmup=5, spread=False):
    """Milliseconds of FN by CUDA events: the median of RUNS after WARMUP (with SPREAD: (median, min))."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(runs):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    return (float(np.median(ts)), float(np.min(ts))) if spread else float(np.median(ts))


def tgc_replay_time(tgc, tir, runs, cache, dims=None, inputs=None, out=None, env=None, who="bench"):
    """(median, min) ms of `tgc run --time` replays of TIR on the GPU (RUNS of them after the first run): with
    DIMS' symbol sizes, INPUTS (name -> .npy) or random inputs (seed 1), output 0 to OUT, kernel cache CACHE and
    ENV added to the environment. Exits with tgc's message when it fails."""
    cmd = [tgc, "run", tir, "--device=cuda", "--time", "--repeat", str(runs + 1)]
    for k, v in (dims or {}).items():
        cmd += ["--dim", f"{k}={v}"]
    for k, v in (inputs or {}).items():
        cmd += ["--input", f"{k}={v}"]
    if not inputs:
        cmd += ["--random-inputs", "--seed", "1"]
    if out:
        cmd += ["--output", f"0={out}"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TGC_CACHE_DIR=cache, **(env or {})))
    if r.returncode:
        sys.exit(f"{who}: {' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    m = re.search(r"replay median ([\d.]+) ms, min ([\d.]+) ms", r.stdout)
    return float(m.group(1)), float(m.group(2))


def copy_bandwidth():
    x = torch.empty(1 << 28, dtype=torch.float32, device="cuda")  # 1 GiB
    y = torch.empty_like(x)
    ms = cuda_time(lambda: y.copy_(x), 20)
    return 2 * x.numel() * 4 / (ms * 1e-3)


def gemm_flops():
    a = torch.randn(8192, 8192, dtype=torch.float16, device="cuda")
    b = torch.randn(8192, 8192, dtype=torch.float16, device="cuda")
    ms = cuda_time(lambda: a @ b, 10)
    return 2 * 8192 ** 3 / (ms * 1e-3)


def relerr(x, ref):
    x = x.double()
    ref = ref.double()
    return (torch.linalg.norm(x - ref) / torch.linalg.norm(ref)).item()


def run_tgc(tgc, tir, inputs, out, runs, cache, extra=()):
    cmd = [tgc, "run", tir, "--device=cuda", "--time", "--repeat", str(runs + 1), "--output", f"0={out}"]
    for k, v in inputs.items():
        cmd += ["--input", f"{k}={v}"]
    env = dict(os.environ, TGC_CACHE_DIR=cache)
    t0 = time.time()
    r = subprocess.run(cmd + list(extra), capture_output=True, text=True, env=env)
    wall = time.time() - t0
    if r.returncode:
        raise RuntimeError(f"tgc failed ({r.returncode}):\n{r.stderr[-3000:]}")
    comp = float(re.search(r"compile ([\d.]+) ms", r.stdout).group(1))
    rep = re.search(r"replay median ([\d.]+) ms", r.stdout)
    return {"compile_ms": comp, "ms": float(rep.group(1)) if rep else None, "wall_s": wall, "log": r.stderr}


def model_costs(model, tokens, seq, batch):
    """(bytes, flops): weights once plus logits out; 2 * tokens * params of every matrix, plus attention."""
    wbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    flops = 0
    for name, p in model.named_parameters():
        if p.dim() == 2 and "embed" not in name and "wpe" not in name and "wte" not in name:
            flops += 2 * tokens * p.numel()
    return wbytes, flops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tgc", default=os.path.join(ROOT, "build", "bin", "tgc"))
    ap.add_argument("--models", default="gpt2,minilm-arch,llama")
    ap.add_argument("--shapes", default="1x128,8x512")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile peers")
    a = ap.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="tgc-bench-")
    os.makedirs(out, exist_ok=True)
    exp = load_exporter()
    dev = torch.cuda.get_device_name()
    bw = copy_bandwidth()
    peak = gemm_flops()
    print(f"device: {dev}; measured copy bandwidth {bw / 1e12:.2f} TB/s, fp16 GEMM {peak / 1e12:.0f} TFLOP/s")
    rows, failures = [], 0
    for name in a.models.split(","):
        mdir = os.path.join(out, name)
        t0 = time.time()
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "tgc-export"), name, "--dtype", "float16",
                        "-o", mdir], check=True, capture_output=True)
        print(f"\n== {name}: exported in fp16 in {time.time() - t0:.1f} s")
        tir = os.path.join(mdir, name + ".tir")
        model, example, _ = exp.build(name, 2, 8)
        ref_model = model.float().cuda().eval()  # fp32 copy of the fp16-rounded weights, below
        model16 = exp.build(name, 2, 8)[0].half().cuda().eval()
        with torch.no_grad():
            for p32, p16 in zip(ref_model.parameters(), model16.parameters()):
                p32.copy_(p16.float())
            for b32, b16 in zip(ref_model.buffers(), model16.buffers()):
                if b16.is_floating_point():
                    b32.copy_(b16.float())
        cache = os.path.join(mdir, "kcache")
        for si, shape in enumerate(a.shapes.split(",")):
            B, S = (int(x) for x in shape.split("x"))
            g = torch.Generator().manual_seed(1000 + si)
            vocab = model16.config.vocab_size if hasattr(model16, "config") else \
                next(m for m in model16.modules() if isinstance(m, torch.nn.Embedding)).num_embeddings
            ids = torch.randint(0, vocab, (B, S), generator=g)
            args = [ids] + ([torch.ones(B, S, dtype=torch.int64)] if len(example) > 1 else [])
            names = ["input_ids", "attention_mask"][:len(args)]
            files = {}
            for nm, t in zip(names, args):
                files[nm] = os.path.join(mdir, f"{nm}_{shape}.npy")
                np.save(files[nm], t.numpy())
            res = os.path.join(mdir, f"out_{shape}.npy")
            cold = None
            if si == 0:
                subprocess.run(["rm", "-rf", cache])
                cold = run_tgc(a.tgc, tir, files, res, 1, cache)["compile_ms"]
            r = run_tgc(a.tgc, tir, files, res, a.runs, cache)
            got = torch.from_numpy(np.load(res).astype(np.float32))
            cargs = [t.cuda() for t in args]
            with torch.no_grad():
                ref = ref_model(*cargs).float().cpu()
                o16 = model16(*cargs).float().cpu()
                eager = cuda_time(lambda: model16(*cargs), a.runs)
                comp = ro = None
                if not a.no_compile:
                    torch._dynamo.reset()
                    cm = torch.compile(model16)
                    comp = cuda_time(lambda: cm(*cargs), a.runs)
                    torch._dynamo.reset()
                    cr = torch.compile(model16, mode="reduce-overhead")
                    ro = cuda_time(lambda: cr(*cargs), a.runs)
            e_tgc, e_torch = relerr(got, ref), relerr(o16, ref)
            ok = bool(torch.isfinite(got).all()) and e_tgc < 1e-2
            failures += not ok
            wbytes, flops = model_costs(model16, B * S, S, B)
            floor = max((wbytes + got.numel() * 2) / bw, flops / peak) * 1e3
            row = dict(model=name, shape=shape, tgc_ms=r["ms"], eager_ms=eager, compile_ms=comp, ro_ms=ro,
                       floor_ms=floor, err_tgc=e_tgc, err_torch16=e_torch, ok=ok,
                       cold_compile_ms=cold, warm_compile_ms=r["compile_ms"] if si == 0 else None)
            rows.append(row)
            print(f"  {shape}: tgc {r['ms']:.3f} ms | eager {eager:.3f} | compile {comp or float('nan'):.3f} | "
                  f"reduce-overhead {ro or float('nan'):.3f} | floor {floor:.3f} ms | rel err tgc {e_tgc:.2e} "
                  f"(torch fp16 {e_torch:.2e}) {'ok' if ok else 'FAIL'}")
            if si == 0:
                print(f"  tgc compile: cold {cold:.0f} ms, warm {r['compile_ms']:.0f} ms")
            print("  " + r["log"].strip().replace("\n", "\n  "))
    # elementwise bandwidth: one fused kernel over a large tensor
    ew = os.path.join(out, "elementwise.tir")
    with open(ew, "w") as f:
        f.write("module @ew {\n  func @main(%x: f32[N], %y: f32[N]) -> f32[N] {\n"
                "    %a = mul(%x, %y) : f32[N]\n    %b = add(%a, %x) : f32[N]\n    %c = gelu(%b) : f32[N]\n"
                "    return %c\n  }\n}\n")
    n = 1 << 26
    xs = {k: os.path.join(out, f"ew_{k}.npy") for k in "xy"}
    for k in "xy":
        np.save(xs[k], np.random.default_rng(ord(k)).standard_normal(n, dtype=np.float32))
    r = run_tgc(a.tgc, ew, xs, os.path.join(out, "ew_out.npy"), a.runs, os.path.join(out, "kcache-ew"))
    moved = 3 * n * 4
    print(f"\n== elementwise fusion (mul, add, gelu) over {n} f32: tgc {r['ms']:.3f} ms = "
          f"{moved / (r['ms'] * 1e-3) / 1e12:.2f} TB/s, {moved / (r['ms'] * 1e-3) / bw * 100:.0f}% of the copy bandwidth")
    print("\n| model | shape | tgc ms | eager ms | compile ms | reduce-overhead ms | tgc / compile | tgc / reduce-overhead "
          "| floor ms | rel err |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r_ in rows:
        c, o = r_["compile_ms"], r_["ro_ms"]
        print(f"| {r_['model']} | {r_['shape']} | {r_['tgc_ms']:.3f} | {r_['eager_ms']:.3f} | "
              f"{c if c else float('nan'):.3f} | {o if o else float('nan'):.3f} | "
              f"{r_['tgc_ms'] / c if c else float('nan'):.2f} | {r_['tgc_ms'] / o if o else float('nan'):.2f} | "
              f"{r_['floor_ms']:.3f} | {r_['err_tgc']:.1e} |")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

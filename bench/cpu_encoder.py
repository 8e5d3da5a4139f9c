#!/usr/bin/env python3
"""CPU reference backend benchmark: a MiniLM-sized BERT encoder (6 layers, hidden 384, 12 heads, FFN 1536,
post-LN, erf GELU), fp32, random weights, batch 1, sequence 128. Generates the .tir and its .safetensors
(numpy, fixed seed), runs `tgc run --time` R times and reports the median ms per run. When torch is
importable, the same model runs in PyTorch eager on the CPU in the same process and the ratio is printed.

Usage: bench/cpu_encoder.py [--tgc build/bin/tgc] [--runs 5] [--seq 128] [--batch 1] [--layers 6]
"""
import argparse
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import tempfile

import numpy as np

H, NH, FF = 384, 12, 1536
HD = H // NH


def encoder_tir(layers):
    L = ['module @encoder {weights = "encoder.safetensors"} {',
         f"  func @main(%x: f32[B, S, {H}]) -> f32[B, S, {H}] {{"]
    cur = "%x"
    for i in range(layers):
        p = f"l{i}"
        w = lambda n, shape: L.append(f'    %{p}_{n} = param() {{name = "layer.{i}.{n}"}} : f32[{shape}]')
        for n in ("q", "k", "v"):
            w(f"{n}_w", f"{H}, {H}")
            w(f"{n}_b", f"{H}")
            L.append(f"    %{p}_{n}0 = matmul({cur}, %{p}_{n}_w) : f32[B, S, {H}]")
            L.append(f"    %{p}_{n}1 = add(%{p}_{n}0, %{p}_{n}_b) : f32[B, S, {H}]")
            L.append(f"    %{p}_{n}2 = reshape(%{p}_{n}1) : f32[B, S, {NH}, {HD}]")
            L.append(f"    %{p}_{n} = transpose(%{p}_{n}2) {{perm = [0, 2, 1, 3]}} : f32[B, {NH}, S, {HD}]")
        L.append(f"    %{p}_a = attention(%{p}_q, %{p}_k, %{p}_v) : f32[B, {NH}, S, {HD}]")
        L.append(f"    %{p}_a1 = transpose(%{p}_a) {{perm = [0, 2, 1, 3]}} : f32[B, S, {NH}, {HD}]")
        L.append(f"    %{p}_a2 = reshape(%{p}_a1) : f32[B, S, {H}]")
        w("o_w", f"{H}, {H}")
        w("o_b", f"{H}")
        L.append(f"    %{p}_o0 = matmul(%{p}_a2, %{p}_o_w) : f32[B, S, {H}]")
        L.append(f"    %{p}_o1 = add(%{p}_o0, %{p}_o_b) : f32[B, S, {H}]")
        L.append(f"    %{p}_r1 = add(%{p}_o1, {cur}) : f32[B, S, {H}]")
        w("ln1_g", f"{H}")
        w("ln1_b", f"{H}")
        L.append(f"    %{p}_h = layer_norm(%{p}_r1, %{p}_ln1_g, %{p}_ln1_b) {{eps = 1.0e-12}} : f32[B, S, {H}]")
        w("f1_w", f"{H}, {FF}")
        w("f1_b", f"{FF}")
        w("f2_w", f"{FF}, {H}")
        w("f2_b", f"{H}")
        L.append(f"    %{p}_f0 = matmul(%{p}_h, %{p}_f1_w) : f32[B, S, {FF}]")
        L.append(f"    %{p}_f1 = add(%{p}_f0, %{p}_f1_b) : f32[B, S, {FF}]")
        L.append(f"    %{p}_f2 = gelu(%{p}_f1) : f32[B, S, {FF}]")
        L.append(f"    %{p}_f3 = matmul(%{p}_f2, %{p}_f2_w) : f32[B, S, {H}]")
        L.append(f"    %{p}_f4 = add(%{p}_f3, %{p}_f2_b) : f32[B, S, {H}]")
        L.append(f"    %{p}_r2 = add(%{p}_f4, %{p}_h) : f32[B, S, {H}]")
        w("ln2_g", f"{H}")
        w("ln2_b", f"{H}")
        L.append(f"    %{p}_y = layer_norm(%{p}_r2, %{p}_ln2_g, %{p}_ln2_b) {{eps = 1.0e-12}} : f32[B, S, {H}]")
        cur = f"%{p}_y"
    L += [f"    return {cur}", "  }", "}", ""]
    return "\n".join(L)


def write_weights(tir, path, rng):
    header, blobs, off = {}, [], 0
    for name, dims in re.findall(r'param\(\) \{name = "([^"]+)"\} : f32\[([^\]]*)\]', tir):
        shape = [int(d) for d in dims.split(",")]
        std = 1.0 / np.sqrt(shape[0]) if len(shape) == 2 else 0.02
        a = (rng.standard_normal(shape) * std + (1.0 if name.endswith("_g") else 0.0)).astype("<f4")
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def torch_peer(tir_path, weights_path, batch, seq, runs):
    try:
        import torch
    except ImportError:
        return None
    # A direct PyTorch transcription of the same encoder, reading the same weights.
    raw = open(weights_path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    W = {k: torch.from_numpy(np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                                           dtype="<f4").reshape(v["shape"]).copy()) for k, v in hdr.items()}
    layers = len({k.split(".")[1] for k in W})
    x = torch.randn(batch, seq, H)

    def fwd(x):
        for i in range(layers):
            g = lambda n: W[f"layer.{i}.{n}"]
            q, k, v = ((x @ g(f"{n}_w") + g(f"{n}_b")).view(batch, seq, NH, HD).transpose(1, 2) for n in "qkv")
            a = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, seq, H)
            h = torch.nn.functional.layer_norm(a @ g("o_w") + g("o_b") + x, (H,), g("ln1_g"), g("ln1_b"), 1e-12)
            f = torch.nn.functional.gelu(h @ g("f1_w") + g("f1_b")) @ g("f2_w") + g("f2_b")
            x = torch.nn.functional.layer_norm(f + h, (H,), g("ln2_g"), g("ln2_b"), 1e-12)
        return x

    import time
    with torch.no_grad():
        fwd(x)
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fwd(x)
            ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts), torch.get_num_threads()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tgc", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin", "tgc"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--layers", type=int, default=6)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        tir = encoder_tir(args.layers)
        tp = os.path.join(d, "encoder.tir")
        open(tp, "w").write(tir)
        wp = os.path.join(d, "encoder.safetensors")
        write_weights(tir, wp, rng)
        times = []
        for r in range(args.runs):
            out = subprocess.run([args.tgc, "run", tp, "--random-inputs", "--seed", str(r), "--dim",
                                  f"B={args.batch}", "--dim", f"S={args.seq}", "--time"],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                sys.stderr.write(out.stderr)
                return 1
            times.append(float(re.search(r"time: ([0-9.]+) ms", out.stdout).group(1)))
        med = statistics.median(times)
        print(f"cpu_encoder: {args.layers} layers, hidden {H}, {NH} heads, batch {args.batch}, seq {args.seq}, fp32")
        print(f"cpu_encoder: tgc CPU reference backend: median {med:.1f} ms per run "
              f"(min {min(times):.1f}, {args.runs} runs; OPENBLAS threads: "
              f"{os.environ.get('OPENBLAS_NUM_THREADS', 'default')})")
        peer = torch_peer(tp, wp, args.batch, args.seq, args.runs)
        if peer:
            print(f"cpu_encoder: PyTorch eager CPU ({peer[1]} threads): median {peer[0]:.1f} ms; "
                  f"tgc/torch = {med / peer[0]:.2f}")
        else:
            print("cpu_encoder: PyTorch not importable here: no peer measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())

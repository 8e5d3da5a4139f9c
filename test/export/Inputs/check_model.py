#!/usr/bin/env python3
"""Exports a registered model with tools/tgc-export, then for each requested (batch, seq) shape runs PyTorch
and `tgc run` (CPU reference backend) on the same fresh random inputs and compares every output:
relative error ||tgc - torch|| / ||torch|| in float64 must stay under --tol (default 1e-5), never NaN.

Usage: check_model.py TGC MODEL WORKDIR --shapes 2x8,1x13 [--tol 1e-5] [--seed N]
"""
import argparse
import importlib.machinery
import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def load_exporter():
    path = os.path.join(ROOT, "tools", "tgc-export")
    loader = importlib.machinery.SourceFileLoader("tgc_export", path)
    spec = importlib.util.spec_from_loader("tgc_export", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tgc")
    ap.add_argument("model")
    ap.add_argument("workdir")
    ap.add_argument("--shapes", default="2x8,1x5")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ex = load_exporter()
    os.makedirs(args.workdir, exist_ok=True)
    name = args.model
    model, example, dyn = ex.build(args.model, 2, 8)
    text, weights, hist = ex.export_model(model, example, dyn, name)
    tir = os.path.join(args.workdir, name + ".tir")
    open(tir, "w").write(text)
    ex.write_safetensors(os.path.join(args.workdir, name + ".safetensors"), weights)
    print(f"exported {name}: {sum(1 for l in text.splitlines() if l.lstrip().startswith(('%', '(')))} ops")
    ok = True
    g = torch.Generator().manual_seed(args.seed)
    for shape in args.shapes.split(","):
        b, s = (int(x) for x in shape.split("x"))
        inputs = []
        for i, x in enumerate(example):
            spec = dyn.get(i, {})
            dims = list(x.shape)
            for d, sym in spec.items():
                dims[d] = b if sym == "B" else s
            if x.dtype == torch.int64 and i == 0:
                hi = int(model.m.config.vocab_size if hasattr(model, "m") else
                         model.bert.config.vocab_size if hasattr(model, "bert") else 100)
                t = torch.randint(0, hi, dims, generator=g)
            elif x.dtype == torch.int64:  # an attention mask: trailing padding on all but the first row
                t = torch.ones(dims, dtype=torch.int64)
                for r in range(1, dims[0]):
                    t[r, max(1, dims[1] - r):] = 0
            else:
                t = torch.randn(dims, generator=g, dtype=x.dtype)
            inputs.append(t)
        with torch.no_grad():
            ref = model(*inputs)
        refs = list(ref) if isinstance(ref, (tuple, list)) else [ref]
        sig = next(line for line in text.splitlines() if "func @main(" in line)
        names = re.findall(r"%([A-Za-z0-9_.]+):", sig[:sig.index("->")])
        cmd = [args.tgc, "run", tir]
        for nm, t in zip(names, inputs):
            p = os.path.join(args.workdir, f"{name}.{shape}.{nm}.npy")
            np.save(p, t.numpy())
            cmd += ["--input", f"{nm}={p}"]
        outs = []
        for j in range(len(refs)):
            p = os.path.join(args.workdir, f"{name}.{shape}.out{j}.npy")
            cmd += ["--output", f"{j}={p}"]
            outs.append(p)
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"shape {shape}: tgc run failed:\n{r.stderr}")
            ok = False
            continue
        for j, (p, rt) in enumerate(zip(outs, refs)):
            got = np.load(p).astype(np.float64)
            want = rt.double().numpy()
            if got.shape != want.shape:
                print(f"shape {shape}: output {j}: shape {got.shape} != torch {want.shape} FAIL")
                ok = False
                continue
            err = np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-300)
            good = np.isfinite(got).all() and err < args.tol
            print(f"shape {shape}: output {j} {list(got.shape)} relerr {err:.2e} {'ok' if good else 'FAIL'}")
            if hasattr(model, "bert"):  # sentence embeddings: cosine per sentence
                cos = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
                print(f"shape {shape}: min cosine {cos.min():.8f} {'ok' if cos.min() >= 0.99999 else 'FAIL'}")
                good = good and cos.min() >= 0.99999
            ok = ok and good
    print("check_model: PASS" if ok else "check_model: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

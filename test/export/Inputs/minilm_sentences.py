#!/usr/bin/env python3
"""MiniLM sentence embeddings: real sentences through the real tokenizer, embedded by sentence-transformers
(PyTorch) and by tgc (the exported all-MiniLM-L6-v2 on the CPU backend); prints the cosine similarity of the
two embeddings of every sentence, which must be >= 0.99999.

Usage: minilm_sentences.py TGC WORKDIR
"""
import importlib.machinery
import importlib.util
import os
import subprocess
import sys

import numpy as np

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
import torch  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SENTENCES = [
    "The cat sits outside.",
    "A man is playing guitar.",
    "I love pasta with fresh basil and a little garlic.",
    "The new movie is awesome, everyone should see it this weekend!",
    "Compilers turn high-level programs into efficient machine code.",
    "Quantum computers may one day factor large numbers quickly.",
    "She forgot her umbrella and got soaked on the way home.",
    "Tensor graphs are optimized by fusing small kernels.",
    "Paris is the capital of France.",
    "Why?",
]


def main():
    tgc, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    loader = importlib.machinery.SourceFileLoader("tgc_export", os.path.join(ROOT, "tools", "tgc-export"))
    spec = importlib.util.spec_from_loader("tgc_export", loader)
    ex = importlib.util.module_from_spec(spec)
    loader.exec_module(ex)
    path = str(ex.minilm_dir())

    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(path, device="cpu")
    ref = st.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=True).astype(np.float64)

    tok = st.tokenizer
    enc = tok(SENTENCES, padding=True, truncation=True, max_length=128, return_tensors="np")
    model, example, dyn = ex.build("minilm", 2, 8)
    text, weights, _ = ex.export_model(model, example, dyn, "minilm")
    tir = os.path.join(work, "minilm.tir")
    open(tir, "w").write(text)
    ex.write_safetensors(os.path.join(work, "minilm.safetensors"), weights)
    ids = os.path.join(work, "ids.npy")
    mask = os.path.join(work, "mask.npy")
    out = os.path.join(work, "emb.npy")
    np.save(ids, enc["input_ids"].astype(np.int64))
    np.save(mask, enc["attention_mask"].astype(np.int64))
    r = subprocess.run([tgc, "run", tir, "--input", f"input_ids={ids}", "--input", f"attention_mask={mask}",
                        "--output", f"0={out}"], capture_output=True, text=True)
    if r.returncode:
        print(r.stderr)
        return 1
    got = np.load(out).astype(np.float64)
    print(f"{len(SENTENCES)} sentences, {enc['input_ids'].shape[1]} tokens after padding")
    worst = 1.0
    for s, g, w in zip(SENTENCES, got, ref):
        cos = float(g @ w / (np.linalg.norm(g) * np.linalg.norm(w)))
        worst = min(worst, cos)
        print(f"cosine {cos:.9f} (1 - cos = {1 - cos:.1e}) {'ok' if cos >= 0.99999 else 'FAIL'}  {s}")
    # the embeddings also rank sentence pairs the same way
    print(f"minilm_sentences: worst cosine {worst:.9f}: {'PASS' if worst >= 0.99999 else 'FAIL'}")
    return 0 if worst >= 0.99999 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Why tgc pads a GEMM's n to 16 bytes (docs/codegen.md, "Padded n"): times GPT-2's lm-head GEMM in f16 through
torch (cuBLAS) with n = 50257 (rows of 100514 bytes) against n = 50264 (16-byte rows), and the padded GEMM
followed by a copy that drops the padding, at m = 128 and 4096. CUDA events, median of 30. Needs a GPU.

  python3 bench/gemm_alignment.py
"""
import torch
def t(f, n=30):
    for _ in range(5): f()
    torch.cuda.synchronize()
    s = [torch.cuda.Event(enable_timing=True) for _ in range(n)]; e = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    for i in range(n):
        s[i].record(); f(); e[i].record()
    torch.cuda.synchronize()
    return sorted(a.elapsed_time(b) for a, b in zip(s, e))[n // 2]
for M in (128, 4096):
    x = torch.randn(M, 768, device='cuda', dtype=torch.half)
    w = torch.randn(50257, 768, device='cuda', dtype=torch.half)
    wp = torch.zeros(50264, 768, device='cuda', dtype=torch.half); wp[:50257] = w
    out = torch.empty(M, 50264, device='cuda', dtype=torch.half)
    a = t(lambda: x @ w.t())
    b = t(lambda: x @ wp.t())
    c = t(lambda: torch.matmul(x, wp.t(), out=out)[:, :50257].contiguous())
    fl = 2 * M * 768 * 50257
    print(f"M={M}: ld 50257 {a:.3f} ms ({fl/a/1e9:.0f} TFLOP/s) | ld 50264 {b:.3f} ms ({fl/b/1e9:.0f}) | padded + compact {c:.3f} ms")

#!/usr/bin/env python3
"""The NVRTC sweep: every op of ir/ops.def in every dtype that the verifier and the CPU backend accept must
give CUDA C that NVRTC compiles, or a launch that the CUDA backend says it does not generate (never code that
NVRTC rejects).

The ops come from ir/ops.def, not from a list here: each op needs a recipe below (a small use of it for a
dtype T) or an entry in SKIP saying why it has none, else the sweep fails, so a new op is covered as soon as it
is added. Each (op, dtype, variant) is a one-function module, checked by `tgc -O2 --verify-each=numerics`
(the verifier, shape-infer, and the CPU backend on random inputs before and after every pass). The
combinations it accepts are put together into a few modules, compiled with `tgc -O2 --emit=cuda
--nvrtc-check` (two at a time), and each kernel that NVRTC rejects is traced back, through the location in its
heading comment, to its combination. About 850 kernels: ~45 s of CPU on a cold kernel cache, seconds after.

Usage: nvrtc_sweep.py TGC ROOT WORKDIR [-j N] [--ops a,b] [--dtypes f32,i8] [--target compute_90|sm_90]
Prints one line per failure (`nvrtc sweep: FAIL op dtype [variant]: kernel ...: message`), one per launch not
generated, and `nvrtc sweep: N ops (S skipped), C combinations accepted of A, K kernels compiled, F failed,
P launches not generated`. Exits 1 on a failure or an op without a recipe or a reason.
"""
import argparse
import concurrent.futures
import os
import re
import subprocess
import sys

DTYPES = ["f64", "f32", "f16", "bf16", "f8e4m3", "f8e5m2", "i64", "i32", "i16", "i8", "u8", "i4", "bool"]

# Ops with no recipe, and why. Anything else in ir/ops.def without a recipe fails the sweep.
SKIP = {
    "param": "a weight buffer loaded from the weights file: no kernel computes it",
    "fusion": "made by the fuse pass: the sweep compiles at -O2, so every fusion kind is reached through the ops",
    "yield": "the terminator of a fusion region (see fusion)",
    "return": "the terminator of every function of the sweep",
}

X = "{T}[2, 8]"


def unary(op, attrs=""):
    return [("", [("a", X)], [f"%r = {op}(%a){attrs}"], [("r", X)])]


def binary(op, result=X):
    return [("", [("a", X), ("b", X)], [f"%r = {op}(%a, %b)"], [("r", result)])]


# A recipe: op name -> function(dtype) -> list of (variant, args [(name, type)], body lines, results
# [(name, type)]). Types may use {T}, the dtype under test.
RECIPES = {
    "gelu": lambda T: unary("gelu", ' {approximate = "none"}') + [
        ("tanh", [("a", X)], ['%r = gelu(%a) {approximate = "tanh"}'], [("r", X)])],
    "clamp": lambda T: [("", [("a", X)], ["%r = clamp(%a) {min = -0.5, max = 1.5}"], [("r", X)])],
    "cast": lambda T: [(f"to {U}", [("a", X)], [f"%r = cast(%a) : {U}[2, 8]"], [("r", f"{U}[2, 8]")])
                       for U in DTYPES],
    # random integer inputs are 0..3: the divisor is one more, as the CPU backend rightly refuses to divide by 0
    "div": lambda T: [("", [("a", X), ("b", X)],
                       ["%one = constant() {value = 1} : {T}[]", "%d = add(%b, %one)", "%r = div(%a, %d)"],
                       [("r", X)])],
    "where": lambda T: [("", [("c", "bool[2, 8]"), ("a", X), ("b", X)], ["%r = where(%c, %a, %b)"], [("r", X)])],
    "argmax": lambda T: [("", [("a", X)], ["%r = argmax(%a) {axis = 1}"], [("r", "i64[2]")]),
                         ("axis 0", [("a", X)], ["%r = argmax(%a) {axis = 0, keepdim = true}"],
                          [("r", "i64[1, 8]")])],
    "cumsum": lambda T: [("", [("a", X)], ["%r = cumsum(%a) {axis = 1}"], [("r", X)])],
    "softmax": lambda T: [("", [("a", X)], ["%r = softmax(%a) {axis = -1}"], [("r", X)])],
    "log_softmax": lambda T: [("", [("a", X)], ["%r = log_softmax(%a) {axis = -1}"], [("r", X)])],
    "layer_norm": lambda T: [("", [("a", X), ("g", "{T}[8]"), ("b", "{T}[8]")],
                              ["%r = layer_norm(%a, %g, %b) {axis = -1, eps = 1.0e-5}"], [("r", X)])],
    "rms_norm": lambda T: [("", [("a", X), ("g", "{T}[8]")], ["%r = rms_norm(%a, %g) {eps = 1.0e-6}"], [("r", X)])],
    "matmul": lambda T: [("", [("a", "{T}[2, 3, 8]"), ("b", "{T}[8, 4]")], ["%r = matmul(%a, %b)"],
                          [("r", "{T}[2, 3, 4]")]),
                         ("bias epilogue", [("a", "{T}[3, 8]"), ("b", "{T}[8, 4]"), ("c", "{T}[4]")],
                          ["%m = matmul(%a, %b)", "%r = add(%m, %c)"], [("r", "{T}[3, 4]")])],
    "attention": lambda T: [
        ("", [("q", "{T}[1, 2, 4, 8]"), ("k", "{T}[1, 1, 6, 8]"), ("v", "{T}[1, 1, 6, 8]")],
         ["%r = attention(%q, %k, %v)"], [("r", "{T}[1, 2, 4, 8]")]),
        ("causal", [("q", "{T}[1, 2, 4, 8]"), ("k", "{T}[1, 2, 4, 8]"), ("v", "{T}[1, 2, 4, 8]")],
         ["%r = attention(%q, %k, %v) {causal = true, scale = 1.0}"], [("r", "{T}[1, 2, 4, 8]")]),
        ("bool mask", [("q", "{T}[1, 2, 4, 8]"), ("k", "{T}[1, 2, 6, 8]"), ("v", "{T}[1, 2, 6, 8]"),
                       ("m", "bool[1, 1, 4, 6]")],
         ["%r = attention(%q, %k, %v, %m)"], [("r", "{T}[1, 2, 4, 8]")]),
        ("float mask", [("q", "{T}[1, 2, 4, 16]"), ("k", "{T}[1, 2, 6, 16]"), ("v", "{T}[1, 2, 6, 16]"),
                        ("m", "{T}[4, 6]")],
         ["%r = attention(%q, %k, %v, %m)"], [("r", "{T}[1, 2, 4, 16]")])],
    # a reshape is a view of its operand's buffer: read through it by the transpose's kernel
    "reshape": lambda T: [("", [("a", X)], ["%s = reshape(%a) : {T}[4, 4]", "%r = transpose(%s) {perm = [1, 0]}"],
                           [("r", "{T}[4, 4]")])],
    "transpose": lambda T: [("", [("a", X)], ["%r = transpose(%a) {perm = [1, 0]}"], [("r", "{T}[8, 2]")])],
    "broadcast_to": lambda T: [("", [("a", "{T}[8]")], ["%r = broadcast_to(%a) : {T}[2, 8]"], [("r", X)])],
    "slice": lambda T: [("", [("a", X)], ["%r = slice(%a) {axis = 1, start = 1, end = 7, step = 2}"],
                         [("r", "{T}[2, 3]")])],
    "concat": lambda T: [("", [("a", X), ("b", X)], ["%r = concat(%a, %b) {axis = 0}"], [("r", "{T}[4, 8]")])],
    "split": lambda T: [("", [("a", X)], ["(%r, %s) = split(%a) {axis = 1, sizes = [3, 5]}"],
                         [("r", "{T}[2, 3]"), ("s", "{T}[2, 5]")])],
    "gather": lambda T: [("", [("a", X), ("i", "i32[2, 8]")], ["%r = gather(%a, %i) {axis = 1}"], [("r", X)])],
    "embedding": lambda T: [("", [("t", "{T}[10, 8]"), ("i", "i64[2, 3]")], ["%r = embedding(%t, %i)"],
                             [("r", "{T}[2, 3, 8]")])],
    "iota": lambda T: [("", [], ["%r = iota() {axis = 1} : {T}[2, 8]"], [("r", X)])],
    "pad": lambda T: [("", [("a", X)], ["%r = pad(%a) {low = [0, 1], high = [1, 0], value = -1.5}"],
                       [("r", "{T}[3, 9]")])],
    "constant": lambda T: [("", [], ["%r = constant() {value = [[1, 0], [1.5, -2.0]]} : {T}[2, 2]"],
                            [("r", "{T}[2, 2]")])],
    "quantize": lambda T: [("", [("a", "f32[2, 8]")], ["%r = quantize(%a) {scale = 0.1, zero_point = 3} : {T}[2, 8]"],
                            [("r", X)])],
    "dequantize": lambda T: [("", [("a", X)], ["%r = dequantize(%a) {scale = 0.1, zero_point = 3} : f32[2, 8]"],
                              [("r", "f32[2, 8]")])],
    "all_reduce": lambda T: [("", [("a", X)], ['%r = all_reduce(%a) {mesh = @mesh, axes = ["tp"], reduce = "sum"}'],
                              [("r", X)])],
    "all_gather": lambda T: [("", [("a", X)], ['%r = all_gather(%a) {mesh = @mesh, axes = ["tp"], dim = 0}'],
                              [("r", X)])],
    "reduce_scatter": lambda T: [("", [("a", X)],
                                  ['%r = reduce_scatter(%a) {mesh = @mesh, axes = ["tp"], dim = 0, reduce = "sum"}'],
                                  [("r", X)])],
}
for _op in ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min"):
    RECIPES[_op] = (lambda op: lambda T: [
        ("", [("a", X)], [f"%r = {op}(%a) {{axes = [1]}}"], [("r", "{T}[2]")]),
        ("axis 0", [("a", X)], [f"%r = {op}(%a) {{axes = [0], keepdim = true}}"], [("r", "{T}[1, 8]")])])(_op)


def parse_ops(root):
    """(name, min operands, max operands, flags) of every row of ir/ops.def."""
    text = open(os.path.join(root, "ir", "ops.def")).read()
    rows = re.findall(r'^TGC_OP\(\s*\w+,\s*"(\w+)",\s*(-?\d+),\s*(-?\d+),\s*(-?\d+),\s*([^,]*),', text, re.M)
    return [(name, int(lo), int(hi), flags) for name, lo, hi, _, flags in rows]


def recipes_for(name, lo, hi, flags):
    """The op's recipe, or one made from its ops.def row for plain elementwise ops; None when there is none."""
    if name in RECIPES:
        return RECIPES[name]
    if "TGC_OPF_ELEMWISE" in flags and lo == hi == 1:
        return lambda T: unary(name)
    if "TGC_OPF_ELEMWISE" in flags and lo == hi == 2:
        return lambda T: binary(name, "bool[2, 8]" if "TGC_OPF_COMPARE" in flags else X)
    return None


class Combo:
    def __init__(self, idx, op, dtype, variant, args, body, results):
        self.idx, self.op, self.dtype, self.variant = idx, op, dtype, variant
        fill = lambda s: s.replace("{T}", dtype)
        pre = f"%c{idx}_"
        ren = lambda s: re.sub(r"%(\w+)", lambda m: pre + m.group(1), s)
        self.args = [(pre + n, fill(t)) for n, t in args]
        self.body = [ren(fill(l)) for l in body]
        self.results = [(pre + n, fill(t)) for n, t in results]

    def label(self):
        return f"{self.op} {self.dtype}" + (f" [{self.variant}]" if self.variant else "")


def module(combos, name="sweep"):
    """One @main computing every combination; returns the text and, per combination, its line range."""
    args = ", ".join(f"{n}: {t}" for c in combos for n, t in c.args)
    rtypes = ", ".join(t for c in combos for _, t in c.results)
    lines = [f"module @{name} {{", "  mesh @mesh = [tp = 1]", f"  func @main({args}) -> ({rtypes}) {{"]
    ranges = []
    for c in combos:
        first = len(lines) + 1
        lines += ["    " + l for l in c.body]
        ranges.append((first, len(lines), c))
    lines += ["    return " + ", ".join(n for c in combos for n, _ in c.results), "  }", "}", ""]
    return "\n".join(lines), ranges


def run(cmd, timeout=300, cwd=None):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tgc")
    ap.add_argument("root")
    ap.add_argument("workdir")
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("--ops", default="")
    ap.add_argument("--dtypes", default="")
    ap.add_argument("--batch", type=int, default=120, help="combinations per compiled module")
    # PTX: NVRTC's whole C++ front end (where every failure the sweep has found was) at 60% of the cost of a
    # CUBIN, which adds ptxas; the examples and models are compiled for sm_90 by nvrtc-examples/models.test
    ap.add_argument("--target", default="compute_90")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    if os.sep in a.tgc:  # the batches compile in the work directory
        a.tgc = os.path.abspath(a.tgc)
    only = set(filter(None, a.ops.split(",")))
    dtypes = [d for d in DTYPES if not a.dtypes or d in a.dtypes.split(",")]
    bad = 0
    combos, nops, nskip = [], 0, 0
    for name, lo, hi, flags in parse_ops(a.root):
        if only and name not in only:
            continue
        nops += 1
        if name in SKIP:
            nskip += 1
            print(f"nvrtc sweep: skipped '{name}': {SKIP[name]}")
            continue
        rec = recipes_for(name, lo, hi, flags)
        if not rec:
            print(f"nvrtc sweep: FAIL op '{name}' has no recipe in {os.path.basename(__file__)} and no reason in SKIP")
            bad += 1
            continue
        for dt in dtypes:
            for variant, args, body, results in rec(dt):
                combos.append(Combo(len(combos), name, dt, variant, args, body, results))

    # which combinations the verifier and the CPU backend accept (one process each)
    def accepted(c):
        path = os.path.join(a.workdir, f"c{c.idx}.tir")
        open(path, "w").write(module([c], "c%d" % c.idx)[0])
        # one process: the verifier, then the CPU backend before and after every pass of -O2 (shape-infer first)
        r = run([a.tgc, "-O2", "--verify-each=numerics", path])
        if r.returncode not in (0, 1) or "changed output" in r.stderr:
            return c, f"'tgc -O2 --verify-each=numerics' exited {r.returncode}: {r.stderr.strip()[-300:]}"
        return c, None if r.returncode == 0 else "rejected"


    ok = []
    with concurrent.futures.ThreadPoolExecutor(a.j) as ex:
        for c, why in ex.map(accepted, combos):
            if why is None:
                ok.append(c)
            elif why != "rejected":
                print(f"nvrtc sweep: FAIL {c.label()}: {why}")
                bad += 1
    ops_ok = {c.op for c in ok}
    for name, lo, hi, flags in parse_ops(a.root):
        if (not only or name in only) and name not in SKIP and recipes_for(name, lo, hi, flags) and name not in ops_ok:
            print(f"nvrtc sweep: FAIL op '{name}': no dtype of its recipe is accepted by the verifier and the CPU "
                  f"backend (fix the recipe)")
            bad += 1

    # compile the accepted ones in batches
    batches = [ok[i:i + a.batch] for i in range(0, len(ok), a.batch)]

    def compile_batch(b):
        k, combos_b = b
        text, ranges = module(combos_b)
        path = os.path.join(a.workdir, f"batch{k}.tir")
        cu = os.path.join(a.workdir, f"batch{k}.cu")
        if os.path.exists(cu):
            os.remove(cu)
        open(path, "w").write(text)
        # run in the work directory on the relative name: the kernels' location comments (and so their kernel
        # cache keys) then do not depend on where the work directory is (a scratch build reuses the cache)
        rel = [os.path.basename(path), "-o", os.path.basename(cu)]
        r = run([a.tgc, "-O2", "--emit=cuda", "--nvrtc-check", "--target=" + a.target] + rel, cwd=a.workdir)
        if r.returncode == 1 and not os.path.exists(cu):  # a kernel failed: the source, for the locations
            run([a.tgc, "-O2", "--emit=cuda"] + rel, cwd=a.workdir)
        return path, cu, ranges, r

    nkernels = nfailed = npending = 0
    with concurrent.futures.ThreadPoolExecutor(a.j) as ex:
        for path, cu, ranges, r in ex.map(compile_batch, enumerate(batches)):
            where = lambda line: next((c for lo, hi, c in ranges if lo <= line <= hi), None)
            m = re.search(r"nvrtc [\d.]+: (\d+) kernels compiled .*?, (\d+) failed; (\d+) launches", r.stderr)
            if not m or not os.path.exists(cu):
                print(f"nvrtc sweep: FAIL {path}: tgc exited {r.returncode} without compiling:\n{r.stderr[-2000:]}")
                bad += 1
                continue
            nkernels += int(m.group(1)) + int(m.group(2))
            src = open(cu).read()
            heads = dict(re.findall(r"// ===== kernel (\w+) \(\w+\) =====\n// \S+ at [^\n]*?:(\d+):\d+\n", src))
            for name, msg in re.findall(r"tgc: error: kernel (\w+): (.*?)(?=\ntgc: error: kernel |\nnvrtc |\Z)",
                                        r.stderr, re.S):
                c = where(int(heads.get(name, 0)))
                first = next((l for l in msg.splitlines() if "error" in l), msg.splitlines()[0] if msg else "")
                print(f"nvrtc sweep: FAIL {c.label() if c else '?'}: kernel {name}: {first.strip()}")
                nfailed += 1
                bad += 1
            pend = re.search(r"// ===== \d+ launches not generated \((.*?)\) =====\n((?://   .*\n?)*)", src)
            if pend:
                for line, why in re.findall(r":(\d+):\d+: (.*)$", pend.group(2), re.M):
                    c = where(int(line))
                    print(f"nvrtc sweep: not generated: {c.label() if c else '?'}: {why}")
                    npending += 1
    print(f"nvrtc sweep: {nops} ops ({nskip} skipped), {len(ok)} combinations accepted of {len(combos)}, "
          f"{nkernels} kernels compiled, {nfailed} failed, {npending} launches not generated")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

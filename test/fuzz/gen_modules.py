#!/usr/bin/env python3
"""Random VALID tgc modules for the CLI fuzzer (scripts/fuzz-cli), deterministic per seed.

Usage: gen_modules.py SEED OUTDIR [--name NAME]
Writes OUTDIR/NAME.tir and OUTDIR/NAME.safetensors (NAME defaults to m<SEED>) and prints the `--dim SYM=N`
arguments that `tgc run` needs, one line.

A module is one function @main with 1-3 arguments of random shapes (static dims and the symbols B, S), a random
DAG of 3-25 ops of ir/ops.def built on them (elementwise with broadcasting, comparisons, where, cast, clamp,
reductions, argmax, cumsum, softmax, norms, matmul, attention, reshape, transpose, broadcast_to, slice, concat,
split, gather, embedding, iota, pad, constants and params bound to a random .safetensors file, quantize /
dequantize), returning 1-2 values. Every declared type is the exact result type of docs/ir.md §8, so -O0 and
-O2 must accept the module; values are kept in ranges where the ops are defined (no integer division by zero,
in-range indices), so every run must succeed as well. The weights file is written with numpy.
"""
import argparse
import json
import os
import random
import re
import struct
import sys

import numpy as np

FLOATS = ["f32", "f16", "bf16"]
INTS = ["i32", "i64"]
DTYPES = FLOATS + INTS + ["bool"]
SYMS = ["B", "S"]
ST_NAMES = {"f32": "F32", "f16": "F16", "bf16": "BF16", "i32": "I32", "i64": "I64", "bool": "BOOL", "i8": "I8"}


# ---- dims: a dim is a polynomial {tuple(sorted symbols): coefficient}; the empty tuple is the constant ----

def dconst(n):
    return {(): n} if n else {}


def dsym(s):
    return {(s,): 1}


def dadd(a, b):
    r = dict(a)
    for k, v in b.items():
        r[k] = r.get(k, 0) + v
        if r[k] == 0:
            del r[k]
    return r


def dmul(a, b):
    r = {}
    for ka, va in a.items():
        for kb, vb in b.items():
            k = tuple(sorted(ka + kb))
            r[k] = r.get(k, 0) + va * vb
            if r[k] == 0:
                del r[k]
    return r


def dstatic(d):
    """The value of a constant dim, else None."""
    if not d:
        return 0
    if list(d) == [()]:
        return d[()]
    return None


def dstr(d):
    if not d:
        return "0"
    terms = []
    for k in sorted(d, key=lambda k: (-len(k), k)):
        c = d[k]
        body = "*".join(k)
        if not body:
            t = str(abs(c))
        elif abs(c) == 1:
            t = body
        else:
            t = f"{abs(c)}*{body}"
        terms.append(("-" if c < 0 else "+", t))
    out = ("-" if terms[0][0] == "-" else "") + terms[0][1]
    for sign, t in terms[1:]:
        out += f" {sign} {t}"
    return out


def deq(a, b):
    return a == b


def deval(d, env):
    total = 0
    for k, c in d.items():
        v = c
        for s in k:
            v *= env[s]
        total += v
    return total


class T:
    """A tensor type: dtype and a list of dims."""

    def __init__(self, dtype, dims):
        self.dtype = dtype
        self.dims = [dict(d) for d in dims]

    def empty(self):
        """Has a dim that is 0 (a static one: symbols are at least 1 when the fuzzer runs)."""
        return any(dstatic(d) == 0 for d in self.dims)

    @property
    def rank(self):
        return len(self.dims)

    def with_dtype(self, dt):
        return T(dt, self.dims)

    def __str__(self):
        return f"{self.dtype}[{', '.join(dstr(d) for d in self.dims)}]"


def is_float(dt):
    return dt in FLOATS


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.np = np.random.default_rng(seed)
        self.lines = []
        self.values = []  # (name, T)
        self.used = set()  # values that some op reads
        self.weights = {}  # name -> (dtype, shape, np array)
        self.n = 0
        self.bound = None  # the symbols the arguments bind, once they exist
        self.untyped = self.r.random() < 0.2  # some results without a declared type (ir.md §3)

    # ---- helpers ----
    def fresh(self, base="v"):
        self.n += 1
        return f"%{base}{self.n}"

    NEEDS_TYPE = ("cast(", "reshape(", "broadcast_to(", "iota(", "param(", "constant(", "quantize(", "dequantize(")

    def emit(self, text, ty, add=True):
        name = self.fresh()
        if self.untyped and not text.startswith(self.NEEDS_TYPE) and self.r.random() < 0.15:
            self.lines.append(f"    {name} = {text}")  # the IR allows it; shape-infer gives the type
        else:
            self.lines.append(f"    {name} = {text} : {ty}")
        self.used.update(re.findall(r"%\w+", text))
        if add:
            self.values.append((name, ty))
        return name

    def pick(self, pred=lambda t: True):
        cands = [(n, t) for n, t in self.values if pred(t)]
        if not cands:
            return None
        # prefer values nothing reads yet (so few ops are dead), then recent ones (so the DAG gets deep)
        unused = [c for c in cands if c[0] not in self.used]
        if unused and self.r.random() < 0.5:
            return self.r.choice(unused)
        if self.r.random() < 0.6:
            return cands[-1 - min(len(cands) - 1, int(self.r.expovariate(0.7)))]
        return self.r.choice(cands)

    def rand_dim(self):
        x = self.r.random()
        syms = SYMS if self.bound is None else sorted(self.bound)
        if x < 0.35 and syms:
            return dsym(self.r.choice(syms))
        if x < 0.37:
            return dconst(0)  # empty tensors are valid (ir.md §4)
        return dconst(self.r.choice([1, 1, 2, 3, 4, 5, 8]))

    def rand_type(self, dtype=None, rank=None):
        if rank is None:
            rank = self.r.choice([0, 1, 1, 2, 2, 2, 3, 3, 4] * 6 + [5, 6, 8])
        if dtype is None:
            dtype = self.r.choice(["f32"] * 4 + ["f16", "bf16", "i32", "i64", "bool"])
        return T(dtype, [self.rand_dim() for _ in range(rank)])

    def static_type(self, dtype, dims):
        return T(dtype, [dconst(d) for d in dims])

    def param(self, ty, kind="normal"):
        """A param of static type TY with random weights."""
        shape = [dstatic(d) for d in ty.dims]
        assert all(s is not None for s in shape)
        name = f"w{len(self.weights)}"
        if ty.dtype == "bool":
            data = self.np.integers(0, 2, size=shape).astype(np.bool_)
        elif ty.dtype in INTS or ty.dtype == "i8":
            lo, hi = (0, 4) if kind == "normal" else kind
            data = self.np.integers(lo, hi, size=shape).astype({"i32": np.int32, "i64": np.int64, "i8": np.int8}[ty.dtype])
        else:
            data = self.np.standard_normal(size=shape).astype(np.float32)
            if kind == "positive":
                data = np.abs(data) + 0.5
        self.weights[name] = (ty.dtype, shape, data)
        return self.emit(f'param() {{name = "{name}"}}', ty)

    def constant(self, dtype, like=None):
        """A scalar constant, or with LIKE (a type) sometimes a list constant that broadcasts with it."""
        if like is not None and like.rank and self.r.random() < 0.3:
            return self.constant_list(dtype, like)
        if dtype == "bool":
            v = self.r.choice(["true", "false"])
        elif dtype in INTS:
            v = str(self.r.randint(-3, 5))
            if self.r.random() < 0.05:  # the dtype's extremes: wrapping arithmetic must not be UB
                v = self.r.choice({"i32": ["2147483647", "-2147483648"],
                                   "i64": ["9223372036854775807", "-9223372036854775807"]}[dtype])
        else:
            v = self.r.choice(["0.5", "2.0", "-1.25", "3", "1.0e-3", "0.0"])
            if self.r.random() < 0.05:  # huge and non-finite values (overflow on casts, -inf masks)
                v = self.r.choice(["1.0e30", "-3.0e38", "65504", "inf", "-inf", "nan"])
        return self.emit(f"constant() {{value = {v}}}", T(dtype, []))

    def constant_list(self, dtype, like):
        """A constant of LIKE's trailing (at most 2) dims, symbolic ones as 1, written as a nested list (constant
        folding reads it element by element)."""
        shape = [dstatic(d) if dstatic(d) is not None and self.r.random() < 0.8 else 1
                 for d in like.dims[-self.r.randint(1, min(2, like.rank)):]]

        def item():
            if dtype == "bool":
                return self.r.choice(["true", "false"])
            if dtype in INTS:
                return str(self.r.randint(1, 5))
            return self.r.choice(["0.5", "-1.5", "2", "0.25", "1.0e-2"])

        def nest(dims):
            if len(dims) == 1:
                return "[" + ", ".join(item() for _ in range(dims[0])) + "]"
            return "[" + ", ".join(nest(dims[1:]) for _ in range(dims[0])) + "]"

        return self.emit(f"constant() {{value = {nest(shape)}}}", self.static_type(dtype, shape))

    def like_operand(self, ty, allow_bcast=True):
        """A second operand broadcastable with TY: a value of the same type, a suffix/unit-dim variant, a
        scalar constant or a static param."""
        x = self.r.random()
        if x < 0.35:
            same = self.pick(lambda t: t.dtype == ty.dtype and t.rank == ty.rank and
                             all(deq(a, b) for a, b in zip(t.dims, ty.dims)))
            if same:
                return same[0]
        if x < 0.55 or not allow_bcast:
            return self.constant(ty.dtype, ty if allow_bcast else None)
        # a static param of the trailing dims, with some dims replaced by 1
        k = self.r.randint(0, ty.rank)
        dims = []
        for d in ty.dims[ty.rank - k:]:
            v = dstatic(d)
            dims.append(v if v is not None and self.r.random() < 0.7 else 1)
        return self.param(self.static_type(ty.dtype, dims))

    # ---- ops ----
    def op_unary_float(self):
        v = self.pick(lambda t: is_float(t.dtype))
        if not v:
            return
        name, t = v
        op = self.r.choice(["exp", "log", "sqrt", "rsqrt", "tanh", "erf", "sigmoid", "silu", "sin", "cos", "gelu",
                            "gelu_tanh"])
        if op in ("log", "sqrt", "rsqrt", "exp"):
            # keep the domain: log/sqrt of |x| + something, exp of a bounded value
            name = self.emit(f"abs({name})", t) if op != "exp" else self.emit(f"tanh({name})", t)
        if op == "gelu_tanh":
            self.emit(f'gelu({name}) {{approximate = "tanh"}}', t)
        else:
            self.emit(f"{op}({name})", t)

    def op_unary_any(self):
        v = self.pick(lambda t: t.dtype != "bool")
        if not v:
            return
        name, t = v
        op = self.r.choice(["neg", "abs", "relu", "clamp", "clamp1"])
        if op.startswith("clamp"):
            if is_float(t.dtype):
                lo, hi = self.r.choice([("-0.5", "0.5"), ("0.0", "2.5"), ("-1.0e2", "1.0e2")])
            else:
                lo, hi = self.r.choice([("0", "2"), ("-1", "3"), ("1", "1")])
            attrs = {"clamp": f"min = {lo}, max = {hi}", "clamp1": self.r.choice([f"min = {lo}", f"max = {hi}"])}[op]
            self.emit(f"clamp({name}) {{{attrs}}}", t)
        else:
            self.emit(f"{op}({name})", t)

    def op_not(self):
        v = self.pick(lambda t: t.dtype == "bool")
        if v:
            self.emit(f"not({v[0]})", v[1])

    def broadcast_type(self, a, b):
        r = max(a.rank, b.rank)
        out = []
        for k in range(r):
            da = a.dims[k - (r - a.rank)] if k >= r - a.rank else dconst(1)
            db = b.dims[k - (r - b.rank)] if k >= r - b.rank else dconst(1)
            if deq(da, db) or dstatic(db) == 1:
                out.append(da)
            elif dstatic(da) == 1:
                out.append(db)
            else:
                raise AssertionError("generator made operands that do not broadcast")
        return out

    def type_of(self, name):
        for n, t in self.values:
            if n == name:
                return t
        raise KeyError(name)

    def op_binary(self):
        v = self.pick(lambda t: t.dtype != "bool")
        if not v:
            return
        a, ta = v
        op = self.r.choice(["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
        if op == "div" and not is_float(ta.dtype):
            # a non-zero divisor: a positive constant
            b = self.emit(f"constant() {{value = {self.r.randint(1, 4)}}}", T(ta.dtype, []))
        elif op == "pow" and is_float(ta.dtype):
            a = self.emit(f"abs({a})", ta)
            b = self.constant(ta.dtype, ta)
        elif op == "pow":
            b = self.emit(f"constant() {{value = {self.r.randint(0, 3)}}}", T(ta.dtype, []))
        else:
            b = self.like_operand(ta)
        tb = self.type_of(b)
        if self.r.random() < 0.5:
            a, b, ta, tb = (b, a, tb, ta) if op in ("add", "mul", "maximum", "minimum") else (a, b, ta, tb)
        self.emit(f"{op}({a}, {b})", T(ta.dtype, self.broadcast_type(ta, tb)))

    def op_compare(self):
        v = self.pick(lambda t: t.dtype != "bool")
        if not v:
            return
        a, ta = v
        b = self.like_operand(ta)
        tb = self.type_of(b)
        op = self.r.choice(["eq", "ne", "lt", "le", "gt", "ge"])
        self.emit(f"{op}({a}, {b})", T("bool", self.broadcast_type(ta, tb)))

    def op_logic(self):
        v = self.pick(lambda t: t.dtype == "bool")
        if not v:
            return
        a, ta = v
        b = self.like_operand(ta)
        tb = self.type_of(b)
        self.emit(f"{self.r.choice(['and', 'or'])}({a}, {b})", T("bool", self.broadcast_type(ta, tb)))

    def op_where(self):
        c = self.pick(lambda t: t.dtype == "bool")
        if not c:
            return
        cn, ct = c
        v = self.pick(lambda t: t.dtype != "bool" and t.rank <= ct.rank and
                      all(deq(a, b) or dstatic(b) == 1 or dstatic(a) == 1
                          for a, b in zip(reversed(t.dims), reversed(ct.dims))))
        if not v:
            return
        a, ta = v
        b = self.constant(ta.dtype, ta)
        self.emit(f"where({cn}, {a}, {b})", T(ta.dtype, self.broadcast_type(ct, ta)))

    def op_cast(self):
        v = self.pick()
        if not v:
            return
        name, t = v
        dt = self.r.choice([d for d in DTYPES if d != t.dtype])
        self.emit(f"cast({name})", t.with_dtype(dt))

    def op_reduce(self):
        # no empty operands: the maximum of no elements is (rightly) a run-time error
        v = self.pick(lambda t: t.rank >= 1 and t.dtype != "bool" and not t.empty())
        if not v:
            return
        name, t = v
        op = self.r.choice(["reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "argmax", "cumsum"])
        if op == "reduce_mean" and not is_float(t.dtype):
            op = "reduce_sum"
        keep = self.r.random() < 0.4
        if op == "argmax" or op == "cumsum":
            ax = self.r.randrange(t.rank)
            axw = ax - t.rank if self.r.random() < 0.3 else ax
            if op == "cumsum":
                self.emit(f"cumsum({name}) {{axis = {axw}}}", t)
                return
            dims = [dconst(1) if i == ax else d for i, d in enumerate(t.dims) if keep or i != ax]
            attrs = f"axis = {axw}" + (", keepdim = true" if keep else "")
            self.emit(f"argmax({name}) {{{attrs}}}", T("i64", dims))
            return
        axes = sorted(self.r.sample(range(t.rank), self.r.randint(1, t.rank)))
        dims = [dconst(1) if i in axes else d for i, d in enumerate(t.dims) if keep or i not in axes]
        attrs = f"axes = [{', '.join(map(str, axes))}]" + (", keepdim = true" if keep else "")
        self.emit(f"{op}({name}) {{{attrs}}}", T(t.dtype, dims))

    def op_softmax(self):
        v = self.pick(lambda t: t.rank >= 1 and is_float(t.dtype))
        if not v:
            return
        name, t = v
        ax = self.r.randrange(t.rank) - (t.rank if self.r.random() < 0.5 else 0)
        self.emit(f"{self.r.choice(['softmax', 'log_softmax'])}({name}) {{axis = {ax}}}", t)

    def op_norm(self):
        v = self.pick(lambda t: t.rank >= 1 and is_float(t.dtype))
        if not v:
            return
        name, t = v
        eps = self.r.choice(["", "1.0e-5", "1.0e-6", "0.001"])
        if self.r.random() < 0.5:
            # rms_norm over the last dim, gamma of that dim when it is static
            last = dstatic(t.dims[-1])
            ops = [name]
            if last is not None and self.r.random() < 0.7:
                ops.append(self.param(self.static_type(t.dtype, [last])))
            attrs = f" {{eps = {eps}}}" if eps else ""
            self.emit(f"rms_norm({', '.join(ops)}){attrs}", t)
            return
        axis = self.r.randrange(t.rank)
        trailing = [dstatic(d) for d in t.dims[axis:]]
        ops = [name]
        if all(s is not None for s in trailing):
            for _ in range(self.r.randint(0, 2)):
                ops.append(self.param(self.static_type(t.dtype, trailing)))
        attrs = []
        if axis != t.rank - 1 or self.r.random() < 0.3:
            attrs.append(f"axis = {axis - t.rank if self.r.random() < 0.5 else axis}")
        if eps:
            attrs.append(f"eps = {eps}")
        self.emit(f"layer_norm({', '.join(ops)})" + (f" {{{', '.join(attrs)}}}" if attrs else ""), t)

    def op_matmul(self):
        v = self.pick(lambda t: t.rank >= 1 and t.dtype != "bool" and dstatic(t.dims[-1]) is not None)
        if not v:
            return
        name, t = v
        k = dstatic(t.dims[-1])
        n = self.r.choice([1, 2, 3, 4, 8, 16])
        if self.r.random() < 0.2 and t.rank >= 1:
            w = self.param(self.static_type(t.dtype, [k]))  # matrix-vector: [.., K] x [K] -> [..]
            dims = t.dims[:-1]
        else:
            w = self.param(self.static_type(t.dtype, [k, n]))
            dims = (t.dims[:-1] if t.rank >= 2 else []) + [dconst(n)]
        self.emit(f"matmul({name}, {w})", T(t.dtype, dims))

    def op_attention(self):
        # not 0 heads: ir.md asks that Hkv divide H, and whether 0 divides 0 is left open (fuzz findings)
        v = self.pick(lambda t: t.rank == 4 and is_float(t.dtype) and dstatic(t.dims[1]) != 0)
        if not v:
            return
        name, t = v
        attrs = []
        if self.r.random() < 0.4:
            attrs.append(f"scale = {self.r.choice(['0.125', '0.5', '2.0'])}")
        if self.r.random() < 0.4:
            attrs.append("causal = true")
        ops = [name, name, name]
        if self.r.random() < 0.3:
            # a bool mask broadcast over [B, H, S, S]: one row of keys that every query may see
            s = t.dims[2]
            m = self.emit("iota() {axis = 0}", T("i64", [s]))
            c = self.emit("constant() {value = 0}", T("i64", []))
            ops.append(self.emit(f"ge({m}, {c})", T("bool", [s])))
        self.emit(f"attention({', '.join(ops)})" + (f" {{{', '.join(attrs)}}}" if attrs else ""), t)

    def op_reshape(self):
        v = self.pick(lambda t: t.rank >= 1)
        if not v:
            return
        name, t = v
        dims = list(t.dims)
        x = self.r.random()
        if x < 0.35 and len(dims) >= 2:
            i = self.r.randrange(len(dims) - 1)  # merge two neighbours
            dims[i:i + 2] = [dmul(dims[i], dims[i + 1])]
        elif x < 0.6:
            dims.insert(self.r.randint(0, len(dims)), dconst(1))
        elif x < 0.8 and any(dstatic(d) in (4, 8) for d in dims):
            i = next(i for i, d in enumerate(dims) if dstatic(d) in (4, 8))
            dims[i:i + 1] = [dconst(2), dconst(dstatic(dims[i]) // 2)]
        else:
            prod = dconst(1)
            for d in dims:
                prod = dmul(prod, d)
            dims = [prod]
        self.emit(f"reshape({name})", T(t.dtype, dims))

    def op_transpose(self):
        v = self.pick(lambda t: t.rank >= 2)
        if not v:
            return
        name, t = v
        perm = list(range(t.rank))
        self.r.shuffle(perm)
        self.emit(f"transpose({name}) {{perm = [{', '.join(map(str, perm))}]}}", T(t.dtype, [t.dims[p] for p in perm]))

    def op_broadcast_to(self):
        v = self.pick(lambda t: t.rank <= 3)
        if not v:
            return
        name, t = v
        dims = [dconst(self.r.choice([2, 3])) if dstatic(d) == 1 and self.r.random() < 0.5 else d for d in t.dims]
        dims = [self.rand_dim() for _ in range(self.r.randint(0, 1))] + dims
        self.emit(f"broadcast_to({name})", T(t.dtype, dims))

    def op_slice(self):
        v = self.pick(lambda t: any((dstatic(d) or 0) >= 2 for d in t.dims))
        if not v:
            return
        name, t = v
        axes = [i for i, d in enumerate(t.dims) if (dstatic(d) or 0) >= 2]
        ax = self.r.choice(axes)
        n = dstatic(t.dims[ax])
        start = self.r.randrange(n)
        # never empty: reduce_max and argmax of no elements are (rightly) run-time errors
        end = self.r.choice([self.r.randint(start + 1, n), n + 3, 9223372036854775807])
        step = self.r.choice([1, 1, 2, 3])
        sw = start - n if self.r.random() < 0.3 else start
        count = len(range(start, min(end, n), step))
        dims = list(t.dims)
        dims[ax] = dconst(count)
        attrs = f"axis = {ax}, start = {sw}, end = {end}" + (f", step = {step}" if step != 1 else "")
        self.emit(f"slice({name}) {{{attrs}}}", T(t.dtype, dims))

    def op_concat(self):
        v = self.pick(lambda t: t.rank >= 1)
        if not v:
            return
        name, t = v
        ax = self.r.randrange(t.rank)
        others = [n for n, u in self.values if u.dtype == t.dtype and u.rank == t.rank and
                  all(deq(a, b) for i, (a, b) in enumerate(zip(u.dims, t.dims)) if i != ax)]
        ops = [name] + [self.r.choice(others) for _ in range(self.r.randint(1, 2))]
        total = {}
        for o in ops:
            total = dadd(total, self.type_of(o).dims[ax])
        dims = list(t.dims)
        dims[ax] = total
        self.emit(f"concat({', '.join(ops)}) {{axis = {ax}}}", T(t.dtype, dims))

    def op_split(self):
        v = self.pick(lambda t: any((dstatic(d) or 0) >= 2 for d in t.dims))
        if not v:
            return
        name, t = v
        ax = self.r.choice([i for i, d in enumerate(t.dims) if (dstatic(d) or 0) >= 2])
        n = dstatic(t.dims[ax])
        cut = self.r.randint(1, n - 1)
        sizes = [cut, n - cut]
        if n >= 3 and self.r.random() < 0.4:
            c2 = self.r.randint(1, n - cut - 1) if n - cut >= 2 else 0
            if c2:
                sizes = [cut, c2, n - cut - c2]
        names = [self.fresh() for _ in sizes]
        types = []
        for s in sizes:
            dims = list(t.dims)
            dims[ax] = dconst(s)
            types.append(T(t.dtype, dims))
        self.used.add(name)
        self.lines.append(f"    ({', '.join(names)}) = split({name}) {{axis = {ax}, sizes = [{', '.join(map(str, sizes))}]}}"
                          f" : ({', '.join(str(x) for x in types)})")
        self.values.extend(zip(names, types))

    def op_gather(self):
        v = self.pick(lambda t: t.rank >= 1 and t.dtype != "bool" and not t.empty())
        if not v:
            return
        name, t = v
        ax = self.r.randrange(t.rank)
        dims = [dconst(1) if i == ax else d for i, d in enumerate(t.dims)]
        idx = self.emit(f"argmax({name}) {{axis = {ax}, keepdim = true}}", T("i64", dims))
        self.emit(f"gather({name}, {idx}) {{axis = {ax}}}", T(t.dtype, dims))

    def op_embedding(self):
        v = self.pick(lambda t: t.dtype in INTS)
        if not v:
            return
        name, t = v
        # random integer inputs and the generator's int values lie in [-?, ..]: clamp them into the table
        rows = self.r.choice([4, 6, 10])
        ids = self.emit(f"clamp({name}) {{min = 0, max = {rows - 1}}}", t)
        dt = self.r.choice(["f32", "f32", "f16", "bf16"])
        e = self.r.choice([2, 3, 8])
        table = self.param(self.static_type(dt, [rows, e]))
        self.emit(f"embedding({table}, {ids})", T(dt, t.dims + [dconst(e)]))

    def op_iota(self):
        ty = self.rand_type(dtype=self.r.choice(["i64", "i32", "f32"]), rank=self.r.randint(1, 3))
        self.emit(f"iota() {{axis = {self.r.randrange(ty.rank)}}}", ty)

    def op_pad(self):
        v = self.pick(lambda t: t.rank >= 1 and t.dtype != "bool")
        if not v:
            return
        name, t = v
        low = [self.r.randint(0, 2) for _ in t.dims]
        high = [self.r.randint(0, 2) for _ in t.dims]
        dims = [dadd(dadd(d, dconst(lo)), dconst(hi)) for d, lo, hi in zip(t.dims, low, high)]
        val = "" if self.r.random() < 0.4 else f", value = {self.r.choice(['1.5', '-2.0', '0.0'])}"
        if val and not is_float(t.dtype):
            val = ", value = 1"
        self.emit(f"pad({name}) {{low = [{', '.join(map(str, low))}], high = [{', '.join(map(str, high))}]{val}}}",
                  T(t.dtype, dims))

    def op_quant(self):
        v = self.pick(lambda t: t.dtype == "f32")
        if not v:
            return
        name, t = v
        scale = self.r.choice(["0.1", "0.05", "1.0"])
        zp = self.r.choice([0, 3, -2])
        attrs = f"scale = {scale}, zero_point = {zp}"
        q = self.emit(f"quantize({name}) {{{attrs}}}", t.with_dtype("i8"), add=False)
        self.emit(f"dequantize({q}) {{{attrs}}}", t)

    OPS = [("op_unary_float", 6), ("op_unary_any", 4), ("op_not", 1), ("op_binary", 8), ("op_compare", 3),
           ("op_logic", 1), ("op_where", 2), ("op_cast", 3), ("op_reduce", 4), ("op_softmax", 2), ("op_norm", 2),
           ("op_matmul", 3), ("op_attention", 1), ("op_reshape", 3), ("op_transpose", 2), ("op_broadcast_to", 1),
           ("op_slice", 2), ("op_concat", 2), ("op_split", 1), ("op_gather", 1), ("op_embedding", 1),
           ("op_iota", 1), ("op_pad", 1), ("op_quant", 1)]

    def module(self, name):
        nargs = self.r.randint(1, 3)
        args = []
        for i in range(nargs):
            t = self.rand_type()
            if i == 0 and self.r.random() < 0.3:
                t = self.rand_type(dtype=self.r.choice(FLOATS), rank=4)
            elif i == 0 and self.r.random() < 0.1:
                # a long last dim with few rows: split-reductions cuts its reductions (min-length 16384)
                t = T(self.r.choice(FLOATS), [dconst(self.r.choice([1, 2, 3]))] * self.r.randint(0, 1) +
                      [dconst(self.r.choice([16384, 20000, 33000]))])
            if args and self.r.random() < 0.15 and t.rank:
                bound = sorted({k[0] for _, u in args for d in u.dims for k in d if len(k) == 1 and d == {k: 1}})
                if bound:
                    b = dsym(self.r.choice(bound))
                    t.dims[self.r.randrange(t.rank)] = self.r.choice([dadd(b, dconst(1)), dmul(dconst(2), b)])
            n = f"%a{i}"
            args.append((n, t))
            self.values.append((n, t))
        # an argument binds a symbol when the symbol stands alone as one of its dims (ir.md §4), as rand_dim
        # makes them; the types of later ops use only those symbols
        self.bound = set()
        for _, t in args:
            for d in t.dims:
                for k in d:
                    self.bound.update(k)
        target = self.r.randint(3, 25)
        methods = [m for m, w in self.OPS for _ in range(w)]
        tries = 0
        while len(self.lines) < target and tries < 200:
            tries += 1
            getattr(self, self.r.choice(methods))()
        self.lines = self.lines[:max(len(self.lines), 1)]
        produced = [v for v in self.values if v[0] not in dict(args)] or self.values
        sinks = [v for v in produced[:-1] if v[0] not in self.used]
        results = [produced[-1]]
        x = self.r.random()
        if x < 0.5 and (sinks or len(produced) > 1):
            results.append(self.r.choice(sinks or produced[:-1]))
        elif x < 0.57:
            results.append(results[0])  # one value returned twice
        elif x < 0.62:
            results.append(args[0])  # an argument returned as it is
        sig = ", ".join(f"{n}: {t}" for n, t in args)
        rets = ", ".join(str(t) for _, t in results)
        text = [f'module @{name} {{weights = "{name}.safetensors"}} {{',
                f"  func @main({sig}) -> ({rets}) {{" if len(results) > 1 else f"  func @main({sig}) -> {rets} {{"]
        text += self.lines
        text.append(f"    return {', '.join(n for n, _ in results)}")
        text += ["  }", "}", ""]
        return "\n".join(text), sorted(self.bound)


def write_safetensors(path, weights):
    header = {}
    blobs = []
    off = 0
    for name, (dtype, shape, data) in weights.items():
        if dtype == "f16":
            raw = data.astype(np.float16).tobytes()
        elif dtype == "bf16":
            bits = data.astype(np.float32).view(np.uint32)
            raw = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16).tobytes()
        elif dtype == "f32":
            raw = data.astype(np.float32).tobytes()
        else:
            raw = data.tobytes()
        header[name] = {"dtype": ST_NAMES[dtype], "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def run_dims(seed, syms):
    """The `--dim SYM=N` arguments of `tgc run` for a module of SEED (sizes 1..5; numerics verification uses 3)."""
    r = random.Random(seed ^ 0x5EED)
    out = []
    for s in syms:
        out += ["--dim", f"{s}={r.randint(1, 5)}"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seed", type=int)
    ap.add_argument("outdir")
    ap.add_argument("--name")
    a = ap.parse_args()
    name = a.name or f"m{a.seed}"
    g = Gen(a.seed)
    text, syms = g.module(name)
    os.makedirs(a.outdir, exist_ok=True)
    with open(os.path.join(a.outdir, name + ".tir"), "w") as f:
        f.write(text)
    write_safetensors(os.path.join(a.outdir, name + ".safetensors"), g.weights)
    print(" ".join(run_dims(a.seed, syms)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

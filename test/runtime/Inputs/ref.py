#!/usr/bin/env python3
"""An independent numpy reference interpreter of .tir modules, written from docs/ir.md (not from runtime/cpu.c).

It asks `tgc --emit=tir FILE` for the canonical printed form (ir.md section 11), parses that line-oriented form
with regular expressions, and evaluates a function with numpy: float math in float64, integer math in int64,
bool as bool, each op's result rounded once to its dtype's storage (np.float32, np.float16,
ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2, np.int64..np.int8, np.uint8, i4 as
np.int8 holding -8..7, np.bool_) -- the same contract as the CPU backend.

Library use (optest.py):   mod = load_module(TGC, PATH); outs = run(mod, {"x": arr}, weights=PATH or None)
Command line:              ref.py TGC FILE.tir [--entry F] [--weights W] --input x=a.npy ... --output 0=o.npy ...

Errors in the module or its inputs raise RefError.
"""
import json
import math
import os
import re
import struct
import subprocess
import sys

import numpy as np

_ml_dtypes = None
np.seterr(all="ignore")  # NaN and infinities are results here, compared explicitly


class RefError(Exception):
    pass


def ml_dtypes():
    """ml_dtypes, imported on first use so that tests without bf16/fp8 need only numpy."""
    global _ml_dtypes
    if _ml_dtypes is None:
        try:
            import ml_dtypes as m
        except ImportError:
            raise RefError("the reference needs the Python package ml_dtypes for bf16/fp8, and %s cannot import "
                           "it: run lit with the project venv's Python (scripts/requirements-test.txt)"
                           % sys.executable)
        _ml_dtypes = m
    return _ml_dtypes


# ---- dtypes -------------------------------------------------------------------------------------------

FLOATS = ("f64", "f32", "f16", "bf16", "f8e4m3", "f8e5m2")
SINTS = {"i64": 64, "i32": 32, "i16": 16, "i8": 8, "i4": 4}
UINTS = {"u8": 8}
DTYPES = FLOATS + tuple(SINTS) + tuple(UINTS) + ("bool",)


def is_float(dt):
    return dt in FLOATS


def is_int(dt):
    return dt in SINTS or dt in UINTS


def np_dtype(dt):
    """The numpy storage dtype of a tgc dtype."""
    simple = {"f64": np.float64, "f32": np.float32, "f16": np.float16, "i64": np.int64, "i32": np.int32,
              "i16": np.int16, "i8": np.int8, "u8": np.uint8, "i4": np.int8, "bool": np.bool_}
    if dt in simple:
        return np.dtype(simple[dt])
    m = ml_dtypes()
    return np.dtype({"bf16": m.bfloat16, "f8e4m3": m.float8_e4m3fn, "f8e5m2": m.float8_e5m2}[dt])


def int_range(dt):
    if dt in SINTS:
        b = SINTS[dt]
        return -(1 << (b - 1)), (1 << (b - 1)) - 1
    if dt in UINTS:
        return 0, (1 << UINTS[dt]) - 1
    raise RefError("%s is not an integer dtype" % dt)


def dtype_of_array(a):
    """The tgc dtype of a numpy array (i4 cannot be told from i8: arrays here carry their tgc dtype)."""
    k = np.dtype(a.dtype)
    table = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32", np.dtype(np.float16): "f16",
             np.dtype(np.int64): "i64", np.dtype(np.int32): "i32", np.dtype(np.int16): "i16",
             np.dtype(np.int8): "i8", np.dtype(np.uint8): "u8", np.dtype(np.bool_): "bool"}
    if k in table:
        return table[k]
    m = ml_dtypes()
    for name in ("bf16", "f8e4m3", "f8e5m2"):
        if k == np_dtype(name):
            return name
    raise RefError("unsupported array dtype %s" % k)


class Val:
    """A tensor value: the storage array and its tgc dtype."""
    __slots__ = ("a", "dt")

    def __init__(self, a, dt):
        self.a = a
        self.dt = dt

    def f(self):
        return np.asarray(self.a).astype(np.float64)

    def i(self):
        return np.asarray(self.a).astype(np.int64)

    def compute(self):
        """float64 for floats, int64 for integers, bool for bool."""
        if is_float(self.dt):
            return self.f()
        if self.dt == "bool":
            return np.asarray(self.a).astype(np.bool_)
        return self.i()


def to_storage(x, dt):
    """Rounds a float64/int64/bool array once to dtype DT's storage: floats to nearest even, float to integer
    truncating toward zero (torch's Tensor.to), integers wrapping modulo 2^bits, anything to bool as x != 0."""
    x = np.asarray(x)
    if dt == "bool":
        return Val(x != 0, dt)
    if is_float(dt):
        return Val(x.astype(np.float64).astype(np_dtype(dt)), dt)
    # integers
    if x.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            x = np.trunc(x)
        if not np.all(np.isfinite(x)):
            raise RefError("a non-finite value converted to %s" % dt)
        if np.any(np.abs(x) >= 2.0 ** 63):
            raise RefError("a value out of the int64 range converted to %s" % dt)
        x = x.astype(np.int64)
    x = x.astype(np.int64)
    if dt == "i4":
        return Val((((x + 8) & 15) - 8).astype(np.int8), dt)
    return Val(x.astype(np_dtype(dt)), dt)  # numpy's integer casts wrap


# ---- the printed form ----------------------------------------------------------------------------------

TOKEN = re.compile(r'''\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<value>%[A-Za-z0-9_.]+)
  | (?P<sym>@[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<num>[0-9]+\.[0-9]*(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)
  | (?P<int>[0-9]+)
  | (?P<id>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<p>->|[()\[\]{},:=*+\-^])
)''', re.X)


def tokenize(line):
    toks, pos = [], 0
    line = line.rstrip()
    while pos < len(line):
        m = TOKEN.match(line, pos)
        if not m or m.end() == pos:
            if line[pos:].strip() == "":
                break
            raise RefError("cannot tokenize %r at %d" % (line, pos))
        kind = m.lastgroup
        toks.append((kind, m.group(kind)))
        pos = m.end()
    return toks


def unescape(s):
    body = s[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            n = body[i + 1]
            if n == "x":
                out.append(int(body[i + 2:i + 4], 16))
                i += 4
                continue
            out += {"n": b"\n", "t": b"\t", '"': b'"', "\\": b"\\"}[n]
            i += 2
            continue
        out += c.encode()
        i += 1
    return out.decode("utf-8", "surrogateescape")


class Parser:
    def __init__(self, toks):
        self.t = toks
        self.i = 0

    def peek(self, k=0):
        return self.t[self.i + k] if self.i + k < len(self.t) else (None, None)

    def next(self):
        tok = self.peek()
        self.i += 1
        return tok

    def at(self, text):
        return self.peek()[1] == text and self.peek()[0] in ("p", "id")

    def expect(self, text):
        tok = self.next()
        if tok[1] != text:
            raise RefError("expected %r, found %r" % (text, tok[1]))

    def done(self):
        return self.i >= len(self.t)

    # value ::= INT | '-' INT | NUMBER | '-' NUMBER | inf | nan | '-' inf | STRING | true | false | DTYPE | SYMBOL | list
    def attr_value(self):
        kind, text = self.next()
        if kind == "p" and text == "-":
            v = self.attr_value()
            return -v
        if kind == "int":
            return int(text)
        if kind == "num":
            return float(text)
        if kind == "str":
            return unescape(text)
        if kind == "sym":
            return ("sym", text[1:])
        if kind == "id":
            if text == "inf":
                return math.inf
            if text == "nan":
                return math.nan
            if text == "true":
                return True
            if text == "false":
                return False
            if text in DTYPES:
                return ("dtype", text)
            raise RefError("unexpected identifier %r in an attribute" % text)
        if kind == "p" and text == "[":
            items = []
            if self.at("]"):
                self.next()
                return items
            while True:
                items.append(self.attr_value())
                if self.at("]"):
                    self.next()
                    return items
                self.expect(",")
        raise RefError("unexpected %r in an attribute" % text)

    def attr_dict(self):
        self.expect("{")
        d = {}
        if self.at("}"):
            self.next()
            return d
        while True:
            _, name = self.next()
            self.expect("=")
            d[name] = self.attr_value()
            if self.at("}"):
                self.next()
                return d
            self.expect(",")

    def dim(self):
        """A dim expression, kept as its token list until ',' or ']' at depth 0."""
        toks, depth = [], 0
        while True:
            kind, text = self.peek()
            if kind is None:
                raise RefError("unterminated type")
            if depth == 0 and text in (",", "]") and kind == "p":
                return toks
            if text == "(":
                depth += 1
            elif text == ")":
                depth -= 1
            toks.append((kind, text))
            self.next()

    def type(self):
        _, dt = self.next()
        if dt not in DTYPES:
            raise RefError("expected a dtype, found %r" % dt)
        self.expect("[")
        dims = []
        if self.at("]"):
            self.next()
            return Type(dt, dims)
        while True:
            dims.append(self.dim())
            if self.at("]"):
                self.next()
                return Type(dt, dims)
            self.expect(",")

    def types(self):
        if self.at("("):
            self.next()
            ts = []
            if self.at(")"):
                self.next()
                return ts
            while True:
                ts.append(self.type())
                if self.at(")"):
                    self.next()
                    return ts
                self.expect(",")
        return [self.type()]

    def values(self, close):
        vs = []
        if self.at(close):
            return vs
        while True:
            kind, text = self.next()
            if kind != "value":
                raise RefError("expected a value name, found %r" % text)
            vs.append(text[1:])
            if not self.at(","):
                return vs
            self.next()


def eval_dim(toks, syms):
    """Evaluates a dim polynomial (ints, symbols, + - * and parentheses) with the symbol values SYMS."""
    pos = [0]

    def peek():
        return toks[pos[0]][1] if pos[0] < len(toks) else None

    def atom():
        kind, text = toks[pos[0]]
        pos[0] += 1
        if text == "(":
            v = expr()
            pos[0] += 1  # ')'
            return v
        if kind == "int":
            return int(text)
        if text not in syms:
            raise RefError("symbol %s is not bound" % text)
        return syms[text]

    def prod():
        v = atom()
        while peek() == "*":
            pos[0] += 1
            v *= atom()
        return v

    def expr():
        neg = False
        if peek() == "-":
            pos[0] += 1
            neg = True
        v = prod()
        if neg:
            v = -v
        while peek() in ("+", "-"):
            op = peek()
            pos[0] += 1
            w = prod()
            v = v + w if op == "+" else v - w
        return v

    return expr()


class Type:
    def __init__(self, dt, dims):
        self.dt = dt
        self.dims = dims  # token lists

    def shape(self, syms):
        return tuple(eval_dim(d, syms) for d in self.dims)

    def bare_symbol(self, i):
        d = self.dims[i]
        return d[0][1] if len(d) == 1 and d[0][0] == "id" else None

    def __str__(self):
        return "%s[%s]" % (self.dt, ", ".join(" ".join(t for _, t in d) for d in self.dims))


class Op:
    def __init__(self, results, name, operands, attrs, types, line):
        self.results = results
        self.name = name
        self.operands = operands
        self.attrs = attrs
        self.types = types  # list of Type, or [] when not printed
        self.region = None  # (arg names, arg types, ops, yield operands)
        self.line = line


class Func:
    def __init__(self, name, args, result_types, attrs):
        self.name = name
        self.args = args  # [(name, Type)]
        self.result_types = result_types
        self.attrs = attrs
        self.ops = []
        self.returns = []


class Module:
    def __init__(self):
        self.name = None
        self.attrs = {}
        self.meshes = {}  # name -> {axis: size}
        self.funcs = {}
        self.func_order = []
        self.path = None

    def entry(self, name=None):
        if name:
            if name not in self.funcs:
                raise RefError("no function @%s" % name)
            return self.funcs[name]
        if "main" in self.funcs:
            return self.funcs["main"]
        return self.funcs[self.func_order[0]]


MODULE_RE = re.compile(r"^module @(\S+)(.*)\{$")
MESH_RE = re.compile(r"^mesh @(\S+) = \[(.*)\]$")
FUNC_RE = re.compile(r"^func @([A-Za-z_][A-Za-z0-9_.]*)\((.*)\) -> (.*?) \{$")
REGION_ARGS_RE = re.compile(r"^\^\((.*)\):$")
TERM_RE = re.compile(r"^(return|yield)\b(.*)$")
OP_RE = re.compile(r"^(\(?%[^=]*?\)?) = ([a-z_0-9]+)\((.*)$")


def parse_args(text):
    """'%a: f32[B, 3], %b: i64[]' -> [(name, Type)]"""
    p = Parser(tokenize(text))
    args = []
    while not p.done():
        kind, name = p.next()
        if kind != "value":
            raise RefError("expected an argument name, found %r" % name)
        ty = None
        if p.at(":"):
            p.next()
            ty = p.type()
        args.append((name[1:], ty))
        if p.at(","):
            p.next()
    return args


def parse_printed(text):
    mod = Module()
    lines = text.splitlines()
    stack = []  # open blocks: ("module"|"func"|"region", object)
    cur_ops = None
    i = 0
    while i < len(lines):
        raw = lines[i]
        line = raw.strip()
        i += 1
        if not line:
            continue
        m = MODULE_RE.match(line)
        if m and not stack:
            mod.name = m.group(1)
            rest = m.group(2).strip()
            if rest:
                mod.attrs = Parser(tokenize(rest)).attr_dict()
            stack.append(("module", mod))
            continue
        m = MESH_RE.match(line)
        if m:
            axes = {}
            for part in m.group(2).split(","):
                k, v = part.split("=")
                axes[k.strip()] = int(v)
            mod.meshes[m.group(1)] = axes
            continue
        m = FUNC_RE.match(line)
        if m and stack and stack[-1][0] == "module":
            args = parse_args(m.group(2))
            rest = m.group(3)
            p = Parser(tokenize(rest))
            if p.at("("):
                result_types = p.types()
            else:
                result_types = [p.type()]
            attrs = p.attr_dict() if not p.done() and p.at("{") else {}
            f = Func(m.group(1), args, result_types, attrs)
            mod.funcs[f.name] = f
            mod.func_order.append(f.name)
            stack.append(("func", f))
            cur_ops = f.ops
            continue
        if line == "}":
            kind = stack.pop()[0]
            if kind == "region":
                cur_ops = stack[-1][2] if stack[-1][0] == "region" else stack[-1][1].ops
            continue
        m = REGION_ARGS_RE.match(line)
        if m:
            op = stack[-1][1]
            args = parse_args(m.group(1))
            op.region[0][:] = [a for a, _ in args]
            op.region[1][:] = [t for _, t in args]
            continue
        m = TERM_RE.match(line)
        if m:
            p = Parser(tokenize(m.group(2)))
            vals = p.values(None) if not p.done() else []
            if m.group(1) == "return":
                stack[-1][1].returns = vals
            else:
                stack[-1][1].region[3][:] = vals
            continue
        m = OP_RE.match(line)
        if m:
            toks = tokenize(line)
            p = Parser(toks)
            if p.at("("):
                p.next()
                results = p.values(")")
                p.expect(")")
            else:
                results = p.values("=")
            p.expect("=")
            _, name = p.next()
            p.expect("(")
            operands = p.values(")")
            p.expect(")")
            attrs, types, region = {}, [], False
            if p.at("{") and not (p.i + 1 == len(p.t)):
                attrs = p.attr_dict()
            if p.at(":"):
                p.next()
                types = p.types()
            if p.at("{"):
                p.next()
                region = True
            if not p.done():
                raise RefError("unparsed text at the end of line %d: %r" % (i, line))
            op = Op(results, name, operands, attrs, types, i)
            cur_ops.append(op)
            if region:
                op.region = ([], [], [], [])
                stack.append(("region", op, op.region[2]))
                cur_ops = op.region[2]
            continue
        raise RefError("cannot parse printed line %d: %r" % (i, line))
    return mod


def load_module(tgc, path):
    r = subprocess.run([tgc, "--emit=tir", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RefError("tgc --emit=tir %s failed:\n%s" % (path, r.stderr))
    mod = parse_printed(r.stdout)
    mod.path = path
    return mod


# ---- safetensors (a tiny stdlib reader) ------------------------------------------------------------------

ST_DTYPES = {"F64": "f64", "F32": "f32", "F16": "f16", "BF16": "bf16", "F8_E4M3": "f8e4m3", "F8_E5M2": "f8e5m2",
             "I64": "i64", "I32": "i32", "I16": "i16", "I8": "i8", "U8": "u8", "BOOL": "bool"}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    meta = header.get("__metadata__", {})
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = ST_DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[base + b:base + e], dtype=np_dtype(dt)).reshape(info["shape"]).copy()
        i4 = meta.get("tgc.i4." + name)
        if i4 is not None:
            # two elements a byte, the first in the low nibble, two's complement (docs/quantization.md)
            shape = [int(d) for d in i4.split(",")] if i4 else []
            nib = np.stack([arr & 0xF, arr >> 4], axis=-1).reshape(-1)[:int(np.prod(shape))].astype(np.int8)
            arr, dt = np.where(nib >= 8, nib - 16, nib).astype(np.int8).reshape(shape), "i4"
        out[name] = Val(arr, dt)
    return out


def write_safetensors(path, tensors):
    """TENSORS: list of (name, Val)."""
    inv = {v: k for k, v in ST_DTYPES.items()}
    header, blobs, off = {}, [], 0
    for name, v in tensors:
        b = np.ascontiguousarray(v.a).tobytes()
        # i4 has no safetensors dtype: written as I8, one sign-extended value a byte
        header[name] = {"dtype": inv["i8" if v.dt == "i4" else v.dt], "shape": list(v.a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---- evaluation ----------------------------------------------------------------------------------------

def norm_axis(axis, rank, what="axis"):
    if rank == 0 and axis in (0, -1):
        return 0
    if not -rank <= axis < rank:
        raise RefError("%s %d is out of range for rank %d" % (what, axis, rank))
    return axis % rank


def erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


UNARY_FLOAT = {
    "neg": lambda x: -x,
    "abs": np.abs,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "rsqrt": lambda x: 1.0 / np.sqrt(x),
    "tanh": np.tanh,
    "erf": erf,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "relu": lambda x: np.where((x > 0) | np.isnan(x), x, 0.0),  # torch.relu(nan) is nan
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "sin": np.sin,
    "cos": np.cos,
}

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}

COMPARE = ("eq", "ne", "lt", "le", "gt", "ge")


def softmax(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


class Interp:
    def __init__(self, mod, weights=None):
        self.mod = mod
        self.weights_path = weights
        self.weights = None
        self.syms = {}

    def load_weights(self):
        if self.weights is None:
            path = self.weights_path
            if path is None:
                w = self.mod.attrs.get("weights")
                if not isinstance(w, str):
                    raise RefError("param needs weights: no --weights and no 'weights' module attribute")
                path = w if os.path.isabs(w) else os.path.join(os.path.dirname(self.mod.path) or ".", w)
            self.weights = read_safetensors(path)
        return self.weights

    # -- running --
    def run_func(self, f, inputs):
        env = {}
        for (name, ty) in f.args:
            if name not in inputs:
                raise RefError("no value for input %%%s" % name)
            v = inputs[name]
            if not isinstance(v, Val):
                v = Val(np.asarray(v), dtype_of_array(np.asarray(v)) if ty.dt != "i4" else "i4")
            if v.dt != ty.dt or v.a.ndim != len(ty.dims):
                raise RefError("input %%%s is %s%s, declared %s" % (name, v.dt, list(v.a.shape), ty))
            for d in range(len(ty.dims)):
                s = ty.bare_symbol(d)
                if s is not None:
                    if s in self.syms and self.syms[s] != v.a.shape[d]:
                        raise RefError("input %%%s dim %d is %d, but %s is %d" % (name, d, v.a.shape[d], s,
                                                                            self.syms[s]))
                    self.syms[s] = v.a.shape[d]
            env[name] = v
        for (name, ty) in f.args:
            if tuple(env[name].a.shape) != ty.shape(self.syms):
                raise RefError("input %%%s has shape %s, declared %s" % (name, list(env[name].a.shape), ty))
        outs = self.run_block(f.ops, env)
        res = [env[r] for r in f.returns]
        for k, (v, ty) in enumerate(zip(res, f.result_types)):
            if v.dt != ty.dt or tuple(v.a.shape) != ty.shape(self.syms):
                raise RefError("result #%d is %s%s, declared %s" % (k, v.dt, list(v.a.shape), ty))
        return res

    def run_block(self, ops, env):
        for op in ops:
            try:
                vals = self.run_op(op, [env[o] for o in op.operands])
            except RefError as e:
                raise RefError("line %d: '%s': %s" % (op.line, op.name, e))
            if len(vals) != len(op.results):
                raise RefError("line %d: '%s' gave %d results for %d names" % (op.line, op.name, len(vals),
                                                                              len(op.results)))
            for k, (name, v) in enumerate(zip(op.results, vals)):
                if op.types:
                    ty = op.types[k]
                    want = ty.shape(self.syms)
                    if tuple(v.a.shape) != want:
                        raise RefError("line %d: '%s' result #%d has shape %s, but its declared type is %s = %s"
                                       % (op.line, op.name, k, list(v.a.shape), ty, list(want)))
                    if v.dt != ty.dt:
                        v = to_storage(v.compute(), ty.dt)
                env[name] = v
        return env

    def result_dtype(self, op, k, default):
        return op.types[k].dt if op.types else default

    def declared_shape(self, op, k=0):
        if not op.types:
            raise RefError("needs a declared result type")
        return op.types[k].shape(self.syms)

    def run_op(self, op, ins):
        n = op.name
        a = op.attrs
        if n in UNARY_FLOAT or n in ("not", "gelu", "cast", "clamp"):
            return [self.unary(op, ins[0])]
        if n in BINARY or n in ("div", "pow", "and", "or"):
            return [self.binary(op, ins[0], ins[1])]
        if n == "where":
            c, x, y = ins
            dt = self.result_dtype(op, 0, x.dt)
            if is_float(x.dt) or is_float(y.dt) or is_float(dt):
                r = np.where(c.compute() != 0, x.f(), y.f())
            else:
                r = np.where(c.compute() != 0, x.compute(), y.compute())
            return [to_storage(r, dt)]
        if n in ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min"):
            x = ins[0]
            axes = tuple(sorted(set(norm_axis(ax, x.a.ndim) for ax in a["axes"])))
            if x.a.ndim == 0:
                axes = ()
            keep = a.get("keepdim", False)
            v = x.compute() if not x.dt == "bool" else x.i()
            dt = self.result_dtype(op, 0, x.dt)
            if n in ("reduce_max", "reduce_min") and any(x.a.shape[ax] == 0 for ax in axes):
                raise RefError("reduction over an empty axis")
            if n == "reduce_sum":
                r = np.sum(v, axis=axes, keepdims=keep)
            elif n == "reduce_mean":
                r = np.mean(v.astype(np.float64), axis=axes, keepdims=keep)
            elif n == "reduce_max":
                r = np.max(v, axis=axes, keepdims=keep)
            else:
                r = np.min(v, axis=axes, keepdims=keep)
            return [to_storage(r, dt)]
        if n == "argmax":
            x = ins[0]
            keep = a.get("keepdim", False)
            ax = norm_axis(a["axis"], x.a.ndim)
            if x.a.shape[ax] == 0:
                raise RefError("argmax over an empty axis")
            r = np.argmax(x.compute(), axis=ax, keepdims=keep)  # the first maximum
            return [to_storage(np.asarray(r, np.int64), self.result_dtype(op, 0, "i64"))]
        if n == "cumsum":
            x = ins[0]
            ax = norm_axis(a["axis"], x.a.ndim)
            r = np.cumsum(x.compute(), axis=ax) if x.a.ndim else x.compute()
            return [to_storage(r, self.result_dtype(op, 0, x.dt))]
        if n in ("softmax", "log_softmax"):
            x = ins[0]
            ax = norm_axis(a["axis"], x.a.ndim)
            r = (softmax if n == "softmax" else log_softmax)(x.f(), ax)
            return [to_storage(r, self.result_dtype(op, 0, x.dt))]
        if n == "layer_norm":
            x = ins[0]
            ax = norm_axis(a.get("axis", -1), x.a.ndim)
            eps = float(a.get("eps", 1e-5))
            axes = tuple(range(ax, x.a.ndim))
            v = x.f()
            mean = np.mean(v, axis=axes, keepdims=True)
            var = np.mean((v - mean) ** 2, axis=axes, keepdims=True)
            y = (v - mean) / np.sqrt(var + eps)
            norm_shape = x.a.shape[ax:]
            for k, p in enumerate(ins[1:]):
                if p.a.shape != norm_shape:
                    raise RefError("%s has shape %s, not the normalized shape %s" % (
                        ("gamma", "beta")[k], list(p.a.shape), list(norm_shape)))
            if len(ins) > 1:
                y = y * ins[1].f()
            if len(ins) > 2:
                y = y + ins[2].f()
            return [to_storage(y, self.result_dtype(op, 0, x.dt))]
        if n == "rms_norm":
            x = ins[0]
            eps = float(a.get("eps", 1e-6))
            v = x.f()
            y = v / np.sqrt(np.mean(v * v, axis=-1, keepdims=True) + eps)
            if len(ins) > 1:
                if ins[1].a.shape != x.a.shape[-1:]:
                    raise RefError("gamma has shape %s, not %s" % (list(ins[1].a.shape), list(x.a.shape[-1:])))
                y = y * ins[1].f()
            return [to_storage(y, self.result_dtype(op, 0, x.dt))]
        if n == "matmul":
            x, y = ins
            if x.a.ndim == 0 or y.a.ndim == 0:
                raise RefError("matmul of a scalar")
            kx = x.a.shape[-1]
            ky = y.a.shape[0] if y.a.ndim == 1 else y.a.shape[-2]
            if kx != ky:
                raise RefError("contraction dims differ: %d vs %d" % (kx, ky))
            fp8 = ("f8e4m3", "f8e5m2")
            if x.dt == "i8" and y.dt == "i8":  # exact i32 accumulation (K <= 131071)
                if kx > 131071:
                    raise RefError("an i8 matmul's contraction dim %d is above 131071" % kx)
                dt = "i32"
            elif x.dt in fp8 and y.dt in fp8:  # f32 unless declared f16 / bf16
                dt = self.result_dtype(op, 0, "f32")
            else:
                dt = self.result_dtype(op, 0, x.dt)
            r = np.matmul(x.f(), y.f()) if is_float(dt) or is_float(x.dt) else np.matmul(x.i(), y.i())
            return [to_storage(r, dt)]
        if n == "attention":
            return [self.attention(op, ins)]
        if n == "reshape":
            x = ins[0]
            shape = self.declared_shape(op)
            if int(np.prod(shape, dtype=np.int64)) != x.a.size:
                raise RefError("cannot reshape %d elements to %s" % (x.a.size, list(shape)))
            return [self.same_dtype(op, Val(x.a.reshape(shape), x.dt))]
        if n == "transpose":
            x = ins[0]
            perm = a["perm"]
            if sorted(perm) != list(range(x.a.ndim)):
                raise RefError("perm %s is not a permutation" % perm)
            return [self.same_dtype(op, Val(np.ascontiguousarray(np.transpose(x.a, perm)), x.dt))]
        if n == "broadcast_to":
            x = ins[0]
            shape = self.declared_shape(op)
            try:
                r = np.broadcast_to(x.a, shape).copy()
            except ValueError as e:
                raise RefError(str(e))
            return [self.same_dtype(op, Val(r, x.dt))]
        if n == "slice":
            x = ins[0]
            ax = norm_axis(a["axis"], x.a.ndim)
            step = a.get("step", 1)
            if step < 1:
                raise RefError("step %d" % step)
            dim = x.a.shape[ax]
            # Python's slice rules (clamping); numpy's basic slicing implements exactly these.
            start, end = a["start"], a["end"]
            start = max(-dim - 1, min(start, dim + 1))  # keep the values small; the clamping is unchanged
            end = max(-dim - 1, min(end, dim + 1))
            idx = [slice(None)] * x.a.ndim
            idx[ax] = slice(start, end, step)
            return [self.same_dtype(op, Val(x.a[tuple(idx)].copy(), x.dt))]
        if n == "concat":
            ax = norm_axis(a["axis"], ins[0].a.ndim)
            for v in ins:
                if v.dt != ins[0].dt:
                    raise RefError("concat of %s and %s" % (ins[0].dt, v.dt))
            try:
                r = np.concatenate([v.a for v in ins], axis=ax)
            except ValueError as e:
                raise RefError(str(e))
            return [self.same_dtype(op, Val(r, ins[0].dt))]
        if n == "split":
            x = ins[0]
            ax = norm_axis(a["axis"], x.a.ndim)
            sizes = a["sizes"]
            if sum(sizes) != x.a.shape[ax]:
                raise RefError("sizes %s do not add up to %d" % (sizes, x.a.shape[ax]))
            cuts = np.cumsum(sizes)[:-1]
            parts = np.split(x.a, cuts, axis=ax)
            return [self.same_dtype(op, Val(p.copy(), x.dt), k) for k, p in enumerate(parts)]
        if n == "gather":
            x, idx = ins
            ax = norm_axis(a["axis"], x.a.ndim)
            if not is_int(idx.dt):
                raise RefError("the index is %s" % idx.dt)
            if idx.a.ndim != x.a.ndim:
                raise RefError("index rank %d, operand rank %d" % (idx.a.ndim, x.a.ndim))
            ii = idx.i()
            dim = x.a.shape[ax]
            if ii.size and (ii.min() < -dim or ii.max() >= dim):
                raise RefError("index out of range for a dim of %d" % dim)
            # torch.gather: the index may be smaller than x in the other dims
            sl = tuple(slice(0, s) if d != ax else slice(None) for d, s in enumerate(ii.shape))
            r = np.take_along_axis(x.a[sl], ii % max(dim, 1), axis=ax)
            return [self.same_dtype(op, Val(r, x.dt))]
        if n == "embedding":
            t, ids = ins
            if t.a.ndim != 2 or not is_int(ids.dt):
                raise RefError("embedding of %s%s with %s ids" % (t.dt, list(t.a.shape), ids.dt))
            ii = ids.i()
            if ii.size and (ii.min() < 0 or ii.max() >= t.a.shape[0]):
                raise RefError("id out of range for %d rows" % t.a.shape[0])
            return [self.same_dtype(op, Val(t.a[ii], t.dt))]
        if n == "iota":
            shape = self.declared_shape(op)
            ax = norm_axis(a["axis"], len(shape))
            view = [1] * len(shape)
            if shape:
                view[ax] = shape[ax]
            r = np.broadcast_to(np.arange(shape[ax] if shape else 1, dtype=np.int64).reshape(view), shape)
            return [to_storage(r, op.types[0].dt)]
        if n == "pad":
            x = ins[0]
            lo, hi = a["low"], a["high"]
            if len(lo) != x.a.ndim or len(hi) != x.a.ndim or min(lo + hi, default=0) < 0:
                raise RefError("bad padding %s %s" % (lo, hi))
            value = a.get("value", 0)
            if is_float(x.dt):
                r = np.pad(x.f(), list(zip(lo, hi)), constant_values=float(value))
            else:
                r = np.pad(x.compute().astype(np.int64), list(zip(lo, hi)), constant_values=int(value))
            return [to_storage(r, self.result_dtype(op, 0, x.dt))]
        if n == "param":
            w = self.load_weights()
            name = a["name"]
            if name not in w:
                raise RefError("parameter %r is missing" % name)
            v = w[name]
            ty = op.types[0]
            if ty.dt == "i4" and v.dt == "i8" and v.a.min(initial=0) >= -8 and v.a.max(initial=0) <= 7:
                v = Val(v.a, "i4")  # i4 has no safetensors dtype: an I8 tensor of values in -8..7 binds it
            if v.dt != ty.dt or tuple(v.a.shape) != ty.shape(self.syms):
                raise RefError("parameter %r is %s%s, declared %s" % (name, v.dt, list(v.a.shape), ty))
            return [v]
        if n == "constant":
            return [self.constant(op)]
        if n == "fusion":
            names, _, ops, yields = op.region
            env = dict(zip(names, ins))
            self.run_block(ops, env)
            return [env[y] for y in yields]
        if n in ("quantize", "dequantize"):
            return [self.quant(op, ins)]
        if n in ("all_reduce", "all_gather", "reduce_scatter"):
            mesh = self.mod.meshes[a["mesh"][1]]
            size = 1
            for ax in a["axes"]:
                size *= mesh[ax]
            if size != 1:
                raise RefError("a group of %d devices" % size)
            x = ins[0]
            return [self.same_dtype(op, Val(x.a.copy(), x.dt))]
        raise RefError("the reference does not know op '%s'" % n)

    def same_dtype(self, op, v, k=0):
        if op.types and op.types[k].dt != v.dt:
            return to_storage(v.compute(), op.types[k].dt)
        return v

    def unary(self, op, x):
        n = op.name
        dt = self.result_dtype(op, 0, x.dt)
        if n == "cast":
            return to_storage(x.compute(), dt)
        if n == "not":
            if x.dt == "bool":
                return to_storage(~x.compute(), dt)
            return to_storage(~x.i(), dt)
        if n == "clamp":
            lo, hi = op.attrs.get("min"), op.attrs.get("max")
            if is_float(x.dt):
                v = x.f()
                if lo is not None:
                    v = np.where(v < lo, lo, v)
                if hi is not None:
                    v = np.where(v > hi, hi, v)
                return to_storage(v, dt)
            v = x.i()
            if lo is not None:
                v = np.maximum(v, math.ceil(lo))
            if hi is not None:
                v = np.minimum(v, math.floor(hi))
            return to_storage(v, dt)
        if not is_float(x.dt) and n in ("neg", "abs", "relu"):
            v = x.i()
            return to_storage({"neg": -v, "abs": np.abs(v), "relu": np.maximum(v, 0)}[n], dt)
        if not is_float(x.dt):
            raise RefError("'%s' of %s" % (n, x.dt))
        v = x.f()
        with np.errstate(all="ignore"):
            if n == "gelu":
                if op.attrs.get("approximate", "none") == "tanh":
                    r = 0.5 * v * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v ** 3)))
                else:
                    r = v * 0.5 * (1.0 + erf(v / math.sqrt(2.0)))
            else:
                r = UNARY_FLOAT[n](v)
        return to_storage(r, dt)

    def binary(self, op, x, y):
        n = op.name
        try:
            np.broadcast_shapes(x.a.shape, y.a.shape)
        except ValueError:
            raise RefError("%s%s and %s%s do not broadcast" % (x.dt, list(x.a.shape), y.dt, list(y.a.shape)))
        if x.dt != y.dt:
            raise RefError("operands of different dtypes %s and %s" % (x.dt, y.dt))
        dt = self.result_dtype(op, 0, "bool" if n in COMPARE else x.dt)
        if n in ("and", "or"):
            if x.dt == "bool":
                a, b = x.compute(), y.compute()
                return to_storage(np.logical_and(a, b) if n == "and" else np.logical_or(a, b), dt)
            a, b = x.i(), y.i()
            return to_storage(a & b if n == "and" else a | b, dt)
        with np.errstate(all="ignore"):
            if is_float(x.dt):
                a, b = x.f(), y.f()
                if n == "div":
                    r = a / b
                elif n == "pow":
                    r = np.power(a, b)
                else:
                    r = BINARY[n](a, b)
                return to_storage(r, dt)
            a, b = (x.i(), y.i()) if x.dt != "bool" else (x.compute(), y.compute())
            if n == "div":
                # ir.md only says "true division for floats"; integers divide truncating toward zero, as
                # torch's div(rounding_mode='trunc') and C do.
                a, b = np.broadcast_arrays(a, b)
                if np.any(b == 0):
                    raise RefError("integer division by zero")
                q = np.abs(a) // np.abs(b)
                r = np.where((a < 0) != (b < 0), -q, q)
            elif n == "pow":
                if np.any(b < 0):
                    raise RefError("integer power with a negative exponent")
                r = np.power(a, b)
            else:
                r = BINARY[n](a, b)
            return to_storage(r, dt)

    def attention(self, op, ins):
        q, k, v = ins[:3]
        mask = ins[3] if len(ins) > 3 else None
        if q.a.ndim != 4 or k.a.ndim != 4 or v.a.ndim != 4:
            raise RefError("q, k, v must have rank 4")
        B, H, S, D = q.a.shape
        _, Hkv, T, _ = k.a.shape
        if k.a.shape != (B, Hkv, T, D) or v.a.shape[:3] != (B, Hkv, T) or Hkv == 0 or H % Hkv:
            raise RefError("shapes q %s k %s v %s" % (q.a.shape, k.a.shape, v.a.shape))
        g = H // Hkv
        # query head h uses key/value head h // (H / Hkv)
        kk = np.repeat(k.f(), g, axis=1)
        vv = np.repeat(v.f(), g, axis=1)
        scale = float(op.attrs.get("scale", 1.0 / math.sqrt(D)))
        s = scale * np.matmul(q.f(), np.swapaxes(kk, -1, -2))  # [B, H, S, T]
        allowed = np.ones((B, H, S, T), dtype=bool)
        if op.attrs.get("causal", False):
            allowed &= np.tril(np.ones((S, T), dtype=bool))  # j <= i, top-left aligned
        if mask is not None:
            try:
                mb = np.broadcast_to(mask.compute(), (B, H, S, T))
            except ValueError:
                raise RefError("mask %s does not broadcast to %s" % (mask.a.shape, (B, H, S, T)))
            if mask.dt == "bool":
                allowed &= mb
            else:
                s = s + mb
        s = np.where(allowed, s, -np.inf)
        with np.errstate(all="ignore"):
            m = np.max(s, axis=-1, keepdims=True) if T else np.zeros((B, H, S, 1))
            e = np.exp(s - m)
            p = e / np.sum(e, axis=-1, keepdims=True)
        r = np.matmul(p, vv)
        return to_storage(r, self.result_dtype(op, 0, q.dt))

    def constant(self, op):
        ty = op.types[0]
        shape = ty.shape(self.syms)
        value = op.attrs["value"]

        def flat(v):
            if isinstance(v, list):
                out = []
                for item in v:
                    out.extend(flat(item))
                return out
            return [v]

        vals = flat(value)
        count = int(np.prod(shape, dtype=np.int64))
        if len(vals) == 1 and not isinstance(value, list):
            vals = vals * count
        if len(vals) != count:
            raise RefError("%d values for %d elements" % (len(vals), count))
        vals = [int(v) if isinstance(v, bool) else v for v in vals]
        if is_float(ty.dt):
            arr = np.array(vals, dtype=np.float64).reshape(shape)
        elif all(isinstance(v, int) for v in vals):
            arr = np.array(vals, dtype=object).reshape(shape)
            lo, hi = (-(1 << 63), (1 << 63) - 1)
            if any(not lo <= v <= hi for v in vals):
                raise RefError("an integer constant out of the int64 range")
            arr = arr.astype(np.int64)
        else:
            arr = np.array(vals, dtype=np.float64).reshape(shape)
        return to_storage(arr, ty.dt)

    def quant(self, op, ins):
        a = op.attrs
        x = ins[0]
        ty = op.types[0]
        quantize = op.name == "quantize"
        storage = ty.dt if quantize else x.dt
        scale = ins[1].f() if len(ins) > 1 else np.float64(a.get("scale", 1.0))
        zp = ins[2].i() if len(ins) > 2 else np.int64(a.get("zero_point", 0))
        if "axis" in a:
            ax = norm_axis(a["axis"], x.a.ndim)
            group = a.get("group")
            if group is None:
                # per channel: 1-D scales (and zero points), one per index of axis
                n = x.a.shape[ax]
                view = [1] * x.a.ndim
                view[ax] = n
                if scale.shape != (n,) or (len(ins) > 2 and zp.shape != (n,)):
                    raise RefError("per-channel scales %s / zero points %s for %d channels"
                                   % (scale.shape, zp.shape, n))
                scale = scale.reshape(view)
                if len(ins) > 2:
                    zp = zp.reshape(view)
            else:
                # group-wise: the scales have x's shape with dim axis divided by G
                if x.a.shape[ax] % group:
                    raise RefError("dim %d is not a multiple of the group %d" % (x.a.shape[ax], group))
                want = list(x.a.shape)
                want[ax] //= group
                if list(scale.shape) != want or (len(ins) > 2 and list(zp.shape) != want):
                    raise RefError("group-wise scales %s / zero points %s, expected %s"
                                   % (list(scale.shape), list(zp.shape), want))
                scale = np.repeat(scale, group, axis=ax)
                if len(ins) > 2:
                    zp = np.repeat(zp, group, axis=ax)
        else:
            if scale.ndim > 0 and scale.size != 1 or np.ndim(zp) > 0 and np.size(zp) != 1:
                raise RefError("per-tensor scale/zero point operands must be scalars")
        with np.errstate(all="ignore"):
            if quantize:
                v = x.f() / scale
                if is_float(storage):
                    # fp8: saturate to the largest finite value (NaN stays NaN), convert rounding to nearest
                    # even; zero_point is 0
                    big = {"f8e4m3": 448.0, "f8e5m2": 57344.0}.get(storage, np.inf)
                    return to_storage(np.clip(v, -big, big), storage)
                lo, hi = int_range(storage)
                q = np.rint(v) + zp  # round half to even
                q = np.clip(np.where(np.isnan(q), 0, q), lo, hi)
                return to_storage(q, storage)
            v = (x.f() - zp) * scale
            return to_storage(v, ty.dt)


def run(mod, inputs, weights=None, entry=None):
    """Runs the entry function on INPUTS (name -> Val or numpy array); returns the list of result Vals."""
    it = Interp(mod, weights)
    return it.run_func(mod.entry(entry), inputs)


# ---- .npy helpers and the command line -----------------------------------------------------------------------

def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tgc")
    ap.add_argument("file")
    ap.add_argument("--entry")
    ap.add_argument("--weights")
    ap.add_argument("--input", action="append", default=[])
    ap.add_argument("--output", action="append", default=[])
    o = ap.parse_args(argv)
    mod = load_module(o.tgc, o.file)
    f = mod.entry(o.entry)
    types = dict(f.args)
    inputs = {}
    for spec in o.input:
        name, path = spec.split("=", 1)
        name = name.lstrip("%")
        arr = np.load(path)
        inputs[name] = Val(arr, types[name].dt if name in types else dtype_of_array(arr))
    try:
        outs = run(mod, inputs, o.weights, o.entry)
    except RefError as e:
        print("ref: error: %s" % e, file=sys.stderr)
        return 1
    for k, v in enumerate(outs):
        print("output %d: %s%s" % (k, v.dt, list(v.a.shape)))
    for spec in o.output:
        idx, path = spec.split("=", 1)
        np.save(path, outs[int(idx)].a)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

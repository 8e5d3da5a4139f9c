/* CUDA C generation. Every launch of the optimized entry function becomes one or more steps of a CUDA program
 * (cuda_codegen.h):
 *  - a *pointwise* kernel computes one output element per thread: it turns the linear index into the output's
 *    multi-index and evaluates the launch's ops as an expression tree, each value at the multi-index its
 *    consumer needs (broadcasts drop or zero dims, transposes permute them, slices offset them, reshapes go
 *    through the linear index, concats branch, gathers load their index first). Reductions, cumsum and matmul
 *    inside such a kernel are serial loops in the thread: always correct, fast only when they are short.
 *  - a *rows* kernel runs one block per row when every reduction of the launch is along the output's last dim
 *    (layer_norm, rms_norm, softmax, reduce over the last axis, with pointwise prologues and epilogues): each
 *    row statistic is a block-strided loop and a warp-shuffle block reduction, then one loop writes the row.
 *  - an *attention* kernel (flash style: online softmax over key tiles in shared memory, fp32 accumulators)
 *    reads q, k, v and the mask as strided views of their buffers, so the split/reshape/transpose around
 *    attention costs nothing; what is not a view is computed first by an operand kernel.
 *  - a GEMM is a cuBLASLt call, with bias, tanh-GELU, ReLU and a residual folded into it when the launch is
 *    exactly that; otherwise the product goes to a temporary and an epilogue kernel does the rest.
 * Symbolic dims are kernel parameters, so a new batch size does not recompile. Math is fp32 (double for f64,
 * exact 64-bit integers for integer values); storage is the tensor's dtype. Groups are trees (fusion grows
 * along single-user values), so nothing is evaluated twice. */
#include "cuda_codegen.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "lower.h"
#include "program.h"
#include "tgc/clamp.h"
#include "tgc/slice.h"

/* ---- the emitter: one place that handles indentation ---- */

typedef struct {
  uint32_t rank;
  const char *ix[TGC_RT_MAX_RANK];
} index_vec;

typedef struct {
  tgc_strbuf *out;
  int indent;
  int next; /* fresh variable numbers */
  tgc_module *m;
  const tgc_sym **syms; /* the symbols a kernel takes as parameters */
  uint32_t nsyms, symcap;
  bool failed;
  char why[256];
  int code; /* written to *err when an index is out of range: the launch's number + 1 */
  /* rows mode: the row's index variables, and the row statistics computed before the output loop */
  bool rows;
  uint32_t nrow;
  const char *rowix[TGC_RT_MAX_RANK];
  const tgc_op *stat_op[32];
  const char *stat_a[32], *stat_b[32];
  uint32_t nstats;
  /* vector mode (pointwise kernels): inputs read at the output's own index come from VEC-element vectors
   * loaded before the lane loop (vin<j>[u]); VLOADED marks them */
  bool vec;
  const tgc_type *root_t;
  index_vec root_I;
  bool *vloaded;
  bool ipow; /* the kernel needs IPOW */
  bool idiv; /* the kernel needs IDIV */
  bool f8;   /* the kernel needs FP8 */
  bool f2i;  /* the kernel needs F2I */
} emitter;

static void line(emitter *e, const char *fmt, ...) TGC_PRINTF(2, 3);
static void line(emitter *e, const char *fmt, ...) {
  for (int i = 0; i < e->indent; i++)
    tgc_sb_puts(e->out, "  ");
  va_list ap;
  va_start(ap, fmt);
  tgc_sb_vprintf(e->out, fmt, ap);
  va_end(ap);
  tgc_sb_putc(e->out, '\n');
}

static void fail(emitter *e, const char *fmt, ...) TGC_PRINTF(2, 3);
static void fail(emitter *e, const char *fmt, ...) {
  if (e->failed)
    return;
  e->failed = true;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->why, sizeof e->why, fmt, ap);
  va_end(ap);
}

/* ---- types ---- */

static const char *storage_type(tgc_dtype dt) {
  switch (dt) {
  case TGC_DT_F64: return "double";
  case TGC_DT_F32: return "float";
  case TGC_DT_F16: return "__half";
  case TGC_DT_BF16: return "__nv_bfloat16";
  case TGC_DT_F8E4M3: return "__nv_fp8_e4m3";
  case TGC_DT_F8E5M2: return "__nv_fp8_e5m2";
  case TGC_DT_I64: return "long long";
  case TGC_DT_I32: return "int";
  case TGC_DT_I16: return "short";
  case TGC_DT_I8: return "signed char";
  case TGC_DT_U8: return "unsigned char";
  case TGC_DT_I4: return "signed char"; /* unpacked, as in the runtime */
  case TGC_DT_BOOL: return "bool";
  case TGC_DT_COUNT: break;
  }
  tgc_unreachable();
}

/* The type a value is computed in. */
static const char *compute_type(tgc_dtype dt) {
  switch (tgc_dtype_kind_of(dt)) {
  case TGC_DTK_FLOAT: return dt == TGC_DT_F64 ? "double" : "float";
  case TGC_DTK_SINT:
  case TGC_DTK_UINT: return "long long";
  case TGC_DTK_BOOL: return "bool";
  }
  tgc_unreachable();
}

/* ---- dims as C expressions ---- */

static uint32_t sym_param(emitter *e, const tgc_sym *s) {
  for (uint32_t i = 0; i < e->nsyms; i++)
    if (e->syms[i] == s)
      return i;
  if (e->nsyms == e->symcap) {
    uint32_t cap = e->symcap ? e->symcap * 2 : 4;
    e->syms = tgc_arena_grow(&e->m->arena, e->syms, e->symcap, cap, sizeof *e->syms);
    e->symcap = cap;
  }
  e->syms[e->nsyms] = s;
  return e->nsyms++;
}

/* A dim as a C expression over the symbol parameters s_NAME: 768LL, s_B, (2LL * s_S + 1LL). */
static void dim_c(emitter *e, const tgc_dim *d, tgc_strbuf *b) {
  int64_t c;
  if (tgc_dim_is_const(d, &c)) {
    tgc_sb_printf(b, "%lldLL", (long long)c);
    return;
  }
  bool paren = d->nterms > 1 || d->terms[0].coeff != 1 || d->terms[0].nsyms > 1;
  if (paren)
    tgc_sb_putc(b, '(');
  for (uint32_t i = 0; i < d->nterms; i++) {
    const tgc_term *t = &d->terms[i];
    if (i)
      tgc_sb_puts(b, " + ");
    bool first = true;
    if (t->coeff != 1 || t->nsyms == 0) {
      tgc_sb_printf(b, "%lldLL", (long long)t->coeff);
      first = false;
    }
    for (uint32_t j = 0; j < t->nsyms; j++) {
      tgc_sb_printf(b, "%ss_%s", first ? "" : " * ", t->syms[j]->name);
      first = false;
      sym_param(e, t->syms[j]);
    }
  }
  if (paren)
    tgc_sb_putc(b, ')');
}

static bool dim_is(const tgc_dim *d, int64_t v) {
  int64_t x;
  return tgc_dim_is_const(d, &x) && x == v;
}

/* ---- index vectors: one C expression (a variable name or literal) per dim ---- */


static const char *fresh(emitter *e, const char *prefix) {
  char buf[32];
  snprintf(buf, sizeof buf, "%s%d", prefix, e->next++);
  return tgc_arena_strndup(&e->m->arena, buf, strlen(buf));
}

/* The index of a broadcast operand of type W, for the consumer's index I (numpy alignment at the last dims). */
static index_vec broadcast_index(const index_vec *I, const tgc_type *w) {
  index_vec r;
  r.rank = w->rank;
  for (uint32_t d = 0; d < w->rank; d++)
    r.ix[d] = dim_is(w->dims[d], 1) ? "0LL" : I->ix[I->rank - w->rank + d];
  return r;
}

/* Linear index of I in type T (Horner: ((i0 * d1 + i1) * d2 + i2) ...), as a fresh variable. */
static const char *linearize(emitter *e, const index_vec *I, const tgc_type *t) {
  tgc_strbuf b;
  tgc_sb_init(&b);
  if (t->rank == 0)
    tgc_sb_puts(&b, "0LL");
  for (uint32_t d = 0; d < t->rank; d++) {
    if (d == 0) {
      tgc_sb_puts(&b, I->ix[0]);
      continue;
    }
    tgc_strbuf prev;
    tgc_sb_init(&prev);
    tgc_sb_printf(&prev, "(%s) * ", b.data);
    dim_c(e, t->dims[d], &prev);
    tgc_sb_printf(&prev, " + %s", I->ix[d]);
    tgc_sb_free(&b);
    b = prev;
  }
  const char *v = fresh(e, "l");
  line(e, "const long long %s = %s;", v, b.data);
  tgc_sb_free(&b);
  return v;
}

static index_vec delinearize(emitter *e, const char *lin, const tgc_type *t) {
  index_vec r;
  TGC_ASSERT(t->rank <= TGC_RT_MAX_RANK); /* the verifier's rank limit */
  r.rank = t->rank;
  const char *rest = lin;
  for (uint32_t d = t->rank; d-- > 0;) {
    tgc_strbuf b;
    tgc_sb_init(&b);
    dim_c(e, t->dims[d], &b);
    const char *v = fresh(e, "i");
    if (d == 0) {
      line(e, "const long long %s = %s;", v, rest);
    } else {
      line(e, "const long long %s = %s %% %s;", v, rest, b.data);
      const char *q = fresh(e, "q");
      line(e, "const long long %s = %s / %s;", q, rest, b.data);
      rest = q;
    }
    r.ix[d] = v;
    tgc_sb_free(&b);
  }
  return r;
}

/* ---- evaluation ---- */

typedef struct {
  tgc_value *const *inputs; /* kernel inputs: region arguments or outside values */
  uint32_t ninputs;
  /* inputs fed by a constant outside: inlined (a literal, or an array indexed by the linear index) */
  const tgc_value *const *const_args;
  const tgc_op *const *const_defs;
  uint32_t nconst;
} kernel_src;

static int input_index(const kernel_src *k, const tgc_value *v) {
  for (uint32_t i = 0; i < k->ninputs; i++)
    if (k->inputs[i] == v)
      return (int)i;
  return -1;
}

static const char *eval(emitter *e, const kernel_src *k, const tgc_value *v, const index_vec *I);

static bool is_identity(const emitter *e, const tgc_type *t, const index_vec *I) {
  if (!e->vec || t->rank != e->root_t->rank || I->rank != e->root_I.rank)
    return false;
  for (uint32_t d = 0; d < t->rank; d++)
    if (I->ix[d] != e->root_I.ix[d] || !tgc_dim_equal(t->dims[d], e->root_t->dims[d]))
      return false;
  return true;
}

static const char *load(emitter *e, int in, const tgc_value *v, const index_vec *I) {
  const tgc_type *t = v->type;
  char vref[32];
  const char *off;
  if (is_identity(e, t, I)) {
    /* lane u of the vector loaded before the lane loop */
    e->vloaded[in] = true;
    snprintf(vref, sizeof vref, "u");
    off = vref;
  } else {
    off = linearize(e, I, t);
  }
  char arr[16];
  snprintf(arr, sizeof arr, off == vref ? "vin%d" : "in%d", in);
  const char *r = fresh(e, "v");
  const char *ct = compute_type(t->dtype);
  switch (t->dtype) {
  case TGC_DT_F16:
    line(e, "const float %s = __half2float(%s[%s]);", r, arr, off);
    break;
  case TGC_DT_BF16:
    line(e, "const float %s = __bfloat162float(%s[%s]);", r, arr, off);
    break;
  case TGC_DT_F8E4M3:
  case TGC_DT_F8E5M2:
    line(e, "const float %s = (float)%s[%s];", r, arr, off);
    break;
  default:
    line(e, "const %s %s = (%s)%s[%s];", ct, r, ct, arr, off);
    break;
  }
  return r;
}

static const char *unary_expr(const tgc_op *op, const char *x, bool dbl, char *buf, size_t n) {
  const char *f = dbl ? "" : "f"; /* float math functions end in f */
  if (tgc_dtype_kind_of(op->results[0].type->dtype) != TGC_DTK_FLOAT &&
      (op->opcode == TGC_OP_NEG || op->opcode == TGC_OP_ABS)) {
    /* integers: exact and wrapping as the CPU backend (fabsf would round through a float, -INT64_MIN overflow) */
    if (op->opcode == TGC_OP_NEG)
      snprintf(buf, n, "(long long)(0ULL - (unsigned long long)%s)", x);
    else
      snprintf(buf, n, "(%s < 0 ? (long long)(0ULL - (unsigned long long)%s) : (long long)%s)", x, x, x);
    return buf;
  }
  switch (op->opcode) {
  case TGC_OP_NEG: snprintf(buf, n, "-%s", x); break;
  case TGC_OP_ABS: snprintf(buf, n, "fabs%s(%s)", f, x); break;
  case TGC_OP_EXP: snprintf(buf, n, "exp%s(%s)", f, x); break;
  case TGC_OP_LOG: snprintf(buf, n, "log%s(%s)", f, x); break;
  case TGC_OP_SQRT: snprintf(buf, n, "sqrt%s(%s)", f, x); break;
  case TGC_OP_RSQRT: snprintf(buf, n, "rsqrt%s(%s)", f, x); break;
  case TGC_OP_TANH: snprintf(buf, n, "tanh%s(%s)", f, x); break;
  case TGC_OP_ERF: snprintf(buf, n, "erf%s(%s)", f, x); break;
  case TGC_OP_SIGMOID: snprintf(buf, n, "1 / (1 + exp%s(-%s))", f, x); break;
  case TGC_OP_RELU: snprintf(buf, n, "(%s > 0 || %s != %s ? %s : 0)", x, x, x, x); break; /* NaN stays NaN */
  case TGC_OP_SILU: snprintf(buf, n, "%s / (1 + exp%s(-%s))", x, f, x); break;
  case TGC_OP_SIN: snprintf(buf, n, "sin%s(%s)", f, x); break;
  case TGC_OP_COS: snprintf(buf, n, "cos%s(%s)", f, x); break;
  case TGC_OP_GELU:
    if (strcmp(tgc_op_attr_str(op, "approximate", "none"), "tanh") == 0)
      snprintf(buf, n, "0.5%s * %s * (1 + tanh%s(0.7978845608028654%s * (%s + 0.044715%s * %s * %s * %s)))", f, x, f,
               f, x, f, x, x, x);
    else
      snprintf(buf, n, "0.5%s * %s * (1 + erf%s(%s * 0.7071067811865476%s))", f, x, f, x, f);
    break;
  default:
    return NULL;
  }
  return buf;
}

/* The arguments of tgc_f8_bits and tgc_f8_value that name DT's format (see FP8). */
static const char *fp8_fmt(tgc_dtype dt) { return dt == TGC_DT_F8E4M3 ? "4, 3, 1" : "5, 2, 0"; }

static const char *binary_op(tgc_opcode op) {
  switch (op) {
  case TGC_OP_ADD: return "+";
  case TGC_OP_SUB: return "-";
  case TGC_OP_MUL: return "*";
  case TGC_OP_DIV: return "/";
  case TGC_OP_EQ: return "==";
  case TGC_OP_NE: return "!=";
  case TGC_OP_LT: return "<";
  case TGC_OP_LE: return "<=";
  case TGC_OP_GT: return ">";
  case TGC_OP_GE: return ">=";
  case TGC_OP_AND: return "&&";
  case TGC_OP_OR: return "||";
  default: return NULL;
  }
}

static uint32_t norm_axis(int64_t axis, uint32_t rank) { return (uint32_t)(axis < 0 ? axis + (int64_t)rank : axis); }

static const char *dim_str(emitter *e, const tgc_dim *d) {
  tgc_strbuf b;
  tgc_sb_init(&b);
  dim_c(e, d, &b);
  const char *r = tgc_arena_strndup(&e->m->arena, b.data, b.len);
  tgc_sb_free(&b);
  return r;
}

/* The constant's values, flattened; false when it has none or too many to inline. */
static bool const_values(const tgc_attr *a, const tgc_attr **vals, uint32_t *n, uint32_t cap) {
  if (!a)
    return false;
  if (a->kind != TGC_ATTR_LIST) {
    if (*n >= cap)
      return false;
    vals[(*n)++] = a;
    return true;
  }
  for (uint32_t i = 0; i < a->u.list.n; i++)
    if (!const_values(a->u.list.items[i], vals, n, cap))
      return false;
  return true;
}

/* ---- literals: every number the generated code spells goes through these ---- */

/* V as an element of a DT tensor stores it (the runtime's rounding, wrapping and saturation, so the kernels
 * agree with the CPU backend): a double for float dtypes, *I for integer and bool ones. */
static double element_value(tgc_dtype dt, double v, bool from_int, int64_t iv, int64_t *i) {
  uint64_t storage = 0;
  tgc_rt_tensor t;
  memset(&t, 0, sizeof t);
  t.dtype = dt;
  t.data = &storage;
  if (from_int && tgc_dtype_kind_of(dt) != TGC_DTK_FLOAT)
    tgc_rt_set_i64(&t, 0, dt == TGC_DT_BOOL ? iv != 0 : iv);
  else
    tgc_rt_set(&t, 0, from_int ? (double)iv : v);
  if (tgc_dtype_kind_of(dt) == TGC_DTK_FLOAT)
    return tgc_rt_get(&t, 0);
  *i = tgc_rt_get_i64(&t, 0);
  return (double)*i;
}

void tgc_cuda_float_literal(tgc_strbuf *b, double v, tgc_dtype dt) {
  bool dbl = dt == TGC_DT_F64;
  int64_t unused;
  if (!dbl)
    v = element_value(tgc_dtype_kind_of(dt) == TGC_DTK_FLOAT ? dt : TGC_DT_F32, v, false, 0, &unused);
  if (isnan(v)) { /* the IR's NaN has no sign */
    tgc_sb_puts(b, dbl ? "(double)NAN" : "NAN");
    return;
  }
  if (isinf(v)) {
    tgc_sb_puts(b, v > 0 ? (dbl ? "(double)INFINITY" : "INFINITY") : dbl ? "(-(double)INFINITY)" : "(-INFINITY)");
    return;
  }
  /* integers as 100.0, else the shortest digits that read back as the same float or double */
  char buf[48];
  if (fabs(v) < 1e15 && v == floor(v))
    snprintf(buf, sizeof buf, "%.1f", fabs(v));
  else
    for (int prec = 1; prec <= 17; prec++) {
      snprintf(buf, sizeof buf, "%.*g", prec, fabs(v));
      if (dbl ? strtod(buf, NULL) == fabs(v) : strtof(buf, NULL) == (float)fabs(v))
        break;
    }
  bool neg = signbit(v) != 0;
  tgc_sb_printf(b, "%s%s%s%s%s", neg ? "(-" : "", buf, strpbrk(buf, ".e") ? "" : ".0", dbl ? "" : "f", neg ? ")" : "");
}

/* An integer as a long long literal (the smallest one has no literal of its own). */
static void int_literal(tgc_strbuf *b, int64_t i) {
  if (i == INT64_MIN)
    tgc_sb_puts(b, "(-9223372036854775807LL - 1)");
  else
    tgc_sb_printf(b, "%lldLL", (long long)i);
}

/* V (or the integer IV when FROM_INT) as a value of dtype DT, spelled in DT's compute type. */
static void value_literal(tgc_strbuf *b, tgc_dtype dt, double v, bool from_int, int64_t iv) {
  int64_t i = 0;
  switch (tgc_dtype_kind_of(dt)) {
  case TGC_DTK_FLOAT:
    tgc_cuda_float_literal(b, from_int ? (double)iv : v, dt);
    return;
  case TGC_DTK_SINT:
  case TGC_DTK_UINT:
    element_value(dt, v, from_int, iv, &i);
    int_literal(b, i);
    return;
  case TGC_DTK_BOOL:
    element_value(dt, v, from_int, iv, &i);
    tgc_sb_puts(b, i ? "true" : "false");
    return;
  }
  tgc_unreachable();
}

/* One value of a constant of dtype DT. */
static void const_literal(tgc_strbuf *b, const tgc_attr *a, tgc_dtype dt) {
  if (a->kind == TGC_ATTR_FLOAT)
    value_literal(b, dt, a->u.f, false, 0);
  else
    value_literal(b, dt, 0, true, a->kind == TGC_ATTR_BOOL ? a->u.b : a->u.i);
}

/* A float attribute of OP as a literal of the precision DBL picks (math parameters: eps, scale). */
static const char *float_attr(emitter *e, const tgc_op *op, const char *name, double dflt, bool dbl) {
  tgc_strbuf b;
  tgc_sb_init(&b);
  tgc_cuda_float_literal(&b, tgc_op_attr_float(op, name, dflt), dbl ? TGC_DT_F64 : TGC_DT_F32);
  const char *r = tgc_arena_strndup(&e->m->arena, b.data, b.len);
  tgc_sb_free(&b);
  return r;
}

/* An index into a dim of size DIM, checked: out of range sets *err and reads element 0 instead. */
static const char *checked_index(emitter *e, const char *x, const char *dim) {
  const char *j = fresh(e, "j");
  line(e, "long long %s = (long long)%s;", j, x);
  line(e, "if (%s < 0)", j);
  line(e, "  %s += %s;", j, dim);
  line(e, "if (%s < 0 || %s >= %s) {", j, j, dim);
  line(e, "  atomicExch(err, %d);", e->code);
  line(e, "  %s = 0;", j);
  line(e, "}");
  return j;
}

static const char *acc_init(tgc_opcode op, const char *ct) {
  bool flt = strcmp(ct, "float") == 0 || strcmp(ct, "double") == 0;
  if (strcmp(ct, "bool") == 0)
    return op == TGC_OP_REDUCE_MAX ? "false" : op == TGC_OP_REDUCE_MIN ? "true" : "0";
  switch (op) {
  case TGC_OP_REDUCE_MAX: return flt ? "-INFINITY" : "(-9223372036854775807LL - 1)";
  case TGC_OP_REDUCE_MIN: return flt ? "INFINITY" : "9223372036854775807LL";
  default: return "0";
  }
}

/* acc = acc (op) x, NaN propagating for max and min as torch does; an integer sum wraps modulo 2^64, as the CPU
 * backend's (a signed overflow would be undefined) */
static void acc_update(emitter *e, tgc_opcode op, const char *ct, const char *acc, const char *x) {
  if (op == TGC_OP_REDUCE_MAX)
    line(e, "%s = (%s > %s || %s != %s) ? %s : %s;", acc, x, acc, x, x, x, acc);
  else if (op == TGC_OP_REDUCE_MIN)
    line(e, "%s = (%s < %s || %s != %s) ? %s : %s;", acc, x, acc, x, x, x, acc);
  else if (strcmp(ct, "long long") == 0)
    line(e, "%s = (long long)((unsigned long long)%s + (unsigned long long)%s);", acc, acc, x);
  else
    line(e, "%s += %s;", acc, x);
}

static const char *block_op(tgc_opcode op) {
  return op == TGC_OP_REDUCE_MAX ? "tgc_max_op" : op == TGC_OP_REDUCE_MIN ? "tgc_min_op" : "tgc_sum_op";
}

/* A loop over the last dim of index I (whose last entry is replaced by the loop variable), accumulating X(I)
 * with OP into a fresh accumulator of type CT; in rows mode the loop is strided over the block and followed by
 * a block reduction. X is evaluated by EVALF. */
typedef const char *(*row_body_fn)(emitter *e, const kernel_src *k, const tgc_op *op, const index_vec *J,
                                   const char *aux);

static const char *row_loop(emitter *e, const kernel_src *k, const tgc_op *op, const index_vec *I, const char *n,
                            tgc_opcode acc_op, const char *ct, row_body_fn body, const char *aux) {
  const char *acc = fresh(e, "acc");
  const char *t = fresh(e, "t");
  line(e, "%s %s = %s;", ct, acc, acc_init(acc_op, ct));
  if (e->rows) {
    line(e, "#pragma unroll 4");
    line(e, "for (long long %s = threadIdx.x; %s < %s; %s += BLOCK) {", t, t, n, t);
  }
  else
    line(e, "for (long long %s = 0; %s < %s; %s++) {", t, t, n, t);
  e->indent++;
  index_vec J = *I;
  J.ix[J.rank - 1] = t;
  acc_update(e, acc_op, ct, acc, body(e, k, op, &J, aux));
  e->indent--;
  line(e, "}");
  if (e->rows)
    line(e, "%s = tgc_block_reduce(%s, %s<%s>());", acc, acc, block_op(acc_op), ct);
  return acc;
}

static const char *body_x(emitter *e, const kernel_src *k, const tgc_op *op, const index_vec *J, const char *aux) {
  (void)aux;
  return eval(e, k, op->operands[0].value, J);
}

static const char *body_sq_dev(emitter *e, const kernel_src *k, const tgc_op *op, const index_vec *J,
                               const char *mean) {
  const char *x = eval(e, k, op->operands[0].value, J);
  const char *d = fresh(e, "d");
  line(e, "const float %s = %s - %s;", d, x, mean ? mean : "0.0f");
  const char *r = fresh(e, "v");
  line(e, "const float %s = %s * %s;", r, d, d);
  return r;
}

static const char *body_exp(emitter *e, const kernel_src *k, const tgc_op *op, const index_vec *J, const char *mx) {
  const char *x = eval(e, k, op->operands[0].value, J);
  const char *r = fresh(e, "v");
  line(e, "const float %s = expf(%s - %s);", r, x, mx);
  return r;
}

/* Whether OP reduces exactly the last dim of its first operand (the shape a rows kernel handles). */
static bool reduces_last_dim(const tgc_op *op) {
  const tgc_type *x = op->operands[0].value->type;
  if (!x || x->rank == 0)
    return false;
  switch (op->opcode) {
  case TGC_OP_RMS_NORM:
    return true;
  case TGC_OP_LAYER_NORM:
  case TGC_OP_SOFTMAX:
  case TGC_OP_LOG_SOFTMAX:
    return norm_axis(tgc_op_attr_int(op, "axis", -1), x->rank) == x->rank - 1;
  case TGC_OP_REDUCE_SUM:
  case TGC_OP_REDUCE_MEAN:
  case TGC_OP_REDUCE_MAX:
  case TGC_OP_REDUCE_MIN: {
    const tgc_attr *axes = tgc_op_attr(op, "axes");
    return axes && axes->kind == TGC_ATTR_LIST && axes->u.list.n == 1 &&
           norm_axis(axes->u.list.items[0]->u.i, x->rank) == x->rank - 1;
  }
  default:
    return false;
  }
}

/* The row statistics of OP at index I of its operand (I's last entry is ignored): stat a and stat b. */
static void row_stats(emitter *e, const kernel_src *k, const tgc_op *op, const index_vec *I, const char **a,
                      const char **b) {
  const tgc_type *xt = op->operands[0].value->type;
  const char *n = dim_str(e, xt->dims[xt->rank - 1]);
  const char *ct = compute_type(op->results[0].type->dtype);
  *a = *b = NULL;
  switch (op->opcode) {
  case TGC_OP_REDUCE_SUM:
  case TGC_OP_REDUCE_MAX:
  case TGC_OP_REDUCE_MIN:
    *a = row_loop(e, k, op, I, n, op->opcode, ct, body_x, NULL);
    return;
  case TGC_OP_REDUCE_MEAN: {
    const char *s = row_loop(e, k, op, I, n, TGC_OP_REDUCE_SUM, ct, body_x, NULL);
    *a = fresh(e, "mean");
    line(e, "const %s %s = %s / (%s)%s;", ct, *a, s, ct, n);
    return;
  }
  case TGC_OP_SOFTMAX:
  case TGC_OP_LOG_SOFTMAX:
    *a = row_loop(e, k, op, I, n, TGC_OP_REDUCE_MAX, "float", body_x, NULL);
    *b = row_loop(e, k, op, I, n, TGC_OP_REDUCE_SUM, "float", body_exp, *a);
    return;
  case TGC_OP_LAYER_NORM: {
    const char *s = row_loop(e, k, op, I, n, TGC_OP_REDUCE_SUM, "float", body_x, NULL);
    *a = fresh(e, "mean");
    line(e, "const float %s = %s / (float)%s;", *a, s, n);
    const char *v = row_loop(e, k, op, I, n, TGC_OP_REDUCE_SUM, "float", body_sq_dev, *a);
    *b = fresh(e, "rstd");
    line(e, "const float %s = rsqrtf(%s / (float)%s + %s);", *b, v, n, float_attr(e, op, "eps", 1e-5, false));
    return;
  }
  case TGC_OP_RMS_NORM: {
    const char *v = row_loop(e, k, op, I, n, TGC_OP_REDUCE_SUM, "float", body_sq_dev, NULL);
    *b = fresh(e, "rstd");
    line(e, "const float %s = rsqrtf(%s / (float)%s + %s);", *b, v, n, float_attr(e, op, "eps", 1e-6, false));
    return;
  }
  default:
    tgc_unreachable();
  }
}

static bool same_row(emitter *e, const index_vec *J, const tgc_type *xt) {
  for (uint32_t d = 0; d + 1 < xt->rank; d++)
    if (d >= J->rank || (J->ix[d] != e->rowix[d] && !dim_is(xt->dims[d], 1)))
      return false;
  return true;
}

/* A row-statistic op at index I of its result. */
static const char *eval_row_op(emitter *e, const kernel_src *k, const tgc_op *op, const index_vec *I) {
  const tgc_type *xt = op->operands[0].value->type;
  const char *ct = compute_type(op->results[0].type->dtype);
  const char *a = NULL, *b = NULL;
  /* the operand's index for the row: the result's index (same-shape ops, keepdim), or it with the reduced dim
   * put back */
  index_vec X;
  X.rank = xt->rank;
  for (uint32_t d = 0; d < xt->rank; d++)
    X.ix[d] = d < I->rank ? I->ix[d] : "0LL";
  if (e->rows) {
    uint32_t s = 0;
    while (s < e->nstats && e->stat_op[s] != op)
      s++;
    if (s == e->nstats || !same_row(e, &X, xt)) {
      fail(e, "a row statistic used off its row");
      return "0";
    }
    a = e->stat_a[s];
    b = e->stat_b[s];
  } else {
    row_stats(e, k, op, &X, &a, &b);
  }
  const char *r = fresh(e, "v");
  switch (op->opcode) {
  case TGC_OP_REDUCE_SUM:
  case TGC_OP_REDUCE_MEAN:
  case TGC_OP_REDUCE_MAX:
  case TGC_OP_REDUCE_MIN:
    return a;
  case TGC_OP_SOFTMAX:
  case TGC_OP_LOG_SOFTMAX: {
    const char *x = eval(e, k, op->operands[0].value, I);
    if (op->opcode == TGC_OP_SOFTMAX)
      line(e, "const %s %s = (%s)(expf(%s - %s) / %s);", ct, r, ct, x, a, b);
    else
      line(e, "const %s %s = (%s)(%s - %s - logf(%s));", ct, r, ct, x, a, b);
    return r;
  }
  case TGC_OP_LAYER_NORM:
  case TGC_OP_RMS_NORM: {
    const char *x = eval(e, k, op->operands[0].value, I);
    tgc_strbuf s;
    tgc_sb_init(&s);
    if (a)
      tgc_sb_printf(&s, "(%s - %s) * %s", x, a, b);
    else
      tgc_sb_printf(&s, "%s * %s", x, b);
    for (uint32_t j = 1; j < op->noperands; j++) {
      const tgc_value *w = op->operands[j].value;
      index_vec W = broadcast_index(I, w->type);
      const char *wv = eval(e, k, w, &W);
      tgc_sb_printf(&s, j == 1 ? " * %s" : " + %s", wv);
      if (j == 1) {
        tgc_strbuf p;
        tgc_sb_init(&p);
        tgc_sb_printf(&p, "(%s)", s.data);
        tgc_sb_free(&s);
        s = p;
      }
    }
    line(e, "const %s %s = (%s)(%s);", ct, r, ct, s.data);
    tgc_sb_free(&s);
    return r;
  }
  default:
    tgc_unreachable();
  }
}

/* A reduction along any axes, as nested serial loops in the thread. */
static const char *eval_reduce_serial(emitter *e, const kernel_src *k, const tgc_op *op, const index_vec *I) {
  const tgc_type *xt = op->operands[0].value->type;
  const char *ct = compute_type(op->results[0].type->dtype);
  bool keep = tgc_op_attr_bool(op, "keepdim", false);
  bool red[TGC_RT_MAX_RANK] = {false};
  const tgc_attr *axes = tgc_op_attr(op, "axes");
  if (op->opcode == TGC_OP_ARGMAX)
    red[norm_axis(tgc_op_attr_int(op, "axis", 0), xt->rank)] = true;
  else
    for (uint32_t i = 0; axes && i < axes->u.list.n; i++)
      red[norm_axis(axes->u.list.items[i]->u.i, xt->rank)] = true;
  index_vec J;
  J.rank = xt->rank;
  const char *acc = fresh(e, "acc"), *best = NULL;
  if (op->opcode == TGC_OP_ARGMAX) {
    /* the running maximum in the operand's own compute type: an i64 through a double (53 bits) loses the
     * order of values that differ in the last bits */
    const char *xct = compute_type(xt->dtype);
    best = fresh(e, "best");
    line(e, "long long %s = 0;", acc);
    line(e, "%s %s = %s;", xct, best, acc_init(TGC_OP_REDUCE_MAX, xct));
  } else {
    line(e, "%s %s = %s;", ct, acc, acc_init(op->opcode, ct));
  }
  tgc_strbuf count;
  tgc_sb_init(&count);
  tgc_sb_puts(&count, "1LL");
  uint32_t pos = 0, opened = 0;
  const char *argix = NULL;
  for (uint32_t d = 0; d < xt->rank; d++) {
    if (!red[d]) {
      J.ix[d] = keep ? I->ix[d] : I->ix[pos++];
      if (keep)
        pos++;
      continue;
    }
    if (keep)
      pos++;
    const char *t = fresh(e, "t"), *n = dim_str(e, xt->dims[d]);
    tgc_sb_printf(&count, " * %s", n);
    line(e, "for (long long %s = 0; %s < %s; %s++) {", t, t, n, t);
    e->indent++;
    opened++;
    J.ix[d] = t;
    argix = t;
  }
  const char *x = eval(e, k, op->operands[0].value, &J);
  if (op->opcode == TGC_OP_ARGMAX) {
    line(e, "if (%s > %s || (%s != %s && %s == %s)) {", x, best, x, x, best, best);
    line(e, "  %s = %s;", best, x);
    line(e, "  %s = %s;", acc, argix ? argix : "0");
    line(e, "}");
  } else {
    acc_update(e, op->opcode == TGC_OP_REDUCE_MEAN ? TGC_OP_REDUCE_SUM : op->opcode, ct, acc, x);
  }
  while (opened--) {
    e->indent--;
    line(e, "}");
  }
  if (op->opcode == TGC_OP_REDUCE_MEAN) {
    const char *r = fresh(e, "mean");
    line(e, "const %s %s = %s / (%s)(%s);", ct, r, acc, ct, count.data);
    acc = r;
  }
  tgc_sb_free(&count);
  return acc;
}

static const char *eval_op(emitter *e, const kernel_src *k, const tgc_op *op, const tgc_value *v, const index_vec *I) {
  const tgc_type *t = v->type;
  const char *ct = compute_type(t->dtype);
  bool dbl = t->dtype == TGC_DT_F64;
  const char *r = fresh(e, "v");
  char buf[512];
  switch (op->opcode) {
  case TGC_OP_CONSTANT: {
    const tgc_attr *vals[4096];
    uint32_t n = 0;
    if (!const_values(tgc_op_attr(op, "value"), vals, &n, 4096) || n == 0) {
      fail(e, "a constant with too many values to inline");
      return "0";
    }
    tgc_strbuf b;
    tgc_sb_init(&b);
    if (n == 1) {
      const_literal(&b, vals[0], t->dtype);
      line(e, "const %s %s = %s;", ct, r, b.data);
    } else {
      for (uint32_t i = 0; i < n; i++) {
        if (i)
          tgc_sb_puts(&b, ", ");
        const_literal(&b, vals[i], t->dtype);
      }
      const char *arr = fresh(e, "cv");
      line(e, "const %s %s[%u] = {%s};", ct, arr, n, b.data);
      line(e, "const %s %s = %s[%s];", ct, r, arr, linearize(e, I, t));
    }
    tgc_sb_free(&b);
    return r;
  }
  case TGC_OP_IOTA:
    line(e, "const %s %s = (%s)%s;", ct, r, ct, I->ix[norm_axis(tgc_op_attr_int(op, "axis", 0), t->rank)]);
    return r;
  case TGC_OP_RESHAPE: {
    const tgc_value *w = op->operands[0].value;
    index_vec J = delinearize(e, linearize(e, I, t), w->type);
    return eval(e, k, w, &J);
  }
  case TGC_OP_TRANSPOSE: {
    const tgc_attr *perm = tgc_op_attr(op, "perm");
    index_vec J;
    J.rank = t->rank;
    for (uint32_t d = 0; d < t->rank; d++)
      J.ix[perm->u.list.items[d]->u.i] = I->ix[d];
    return eval(e, k, op->operands[0].value, &J);
  }
  case TGC_OP_SLICE: {
    const tgc_value *w = op->operands[0].value;
    uint32_t axis = norm_axis(tgc_op_attr_int(op, "axis", 0), t->rank);
    int64_t start = tgc_op_attr_int(op, "start", 0), step = tgc_op_attr_int(op, "step", 1), dim;
    if (start < 0) {
      if (!tgc_dim_is_const(w->type->dims[axis], &dim)) {
        fail(e, "a slice with a negative start on a symbolic dim");
        return "0";
      }
      int64_t len;
      tgc_slice_range(dim, start, INT64_MAX, 1, &start, &len);
    }
    index_vec J = *I;
    const char *s = fresh(e, "i");
    line(e, "const long long %s = %lldLL + %s * %lldLL;", s, (long long)start, I->ix[axis], (long long)step);
    J.ix[axis] = s;
    return eval(e, k, w, &J);
  }
  case TGC_OP_SPLIT: {
    uint32_t axis = norm_axis(tgc_op_attr_int(op, "axis", 0), t->rank);
    const tgc_attr *sizes = tgc_op_attr(op, "sizes");
    int64_t off = 0;
    for (uint32_t j = 0; j < op->nresults && &op->results[j] != v; j++)
      off += sizes->u.list.items[j]->u.i;
    index_vec J = *I;
    const char *s = fresh(e, "i");
    line(e, "const long long %s = %s + %lldLL;", s, I->ix[axis], (long long)off);
    J.ix[axis] = s;
    return eval(e, k, op->operands[0].value, &J);
  }
  case TGC_OP_PAD: {
    const tgc_value *w = op->operands[0].value;
    const tgc_attr *low = tgc_op_attr(op, "low");
    index_vec J = *I;
    const char *in = fresh(e, "inb");
    line(e, "bool %s = true;", in);
    for (uint32_t d = 0; d < t->rank; d++) {
      const char *s = fresh(e, "i");
      line(e, "const long long %s = %s - %lldLL;", s, I->ix[d], (long long)low->u.list.items[d]->u.i);
      line(e, "%s = %s && %s >= 0 && %s < %s;", in, in, s, s, dim_str(e, w->type->dims[d]));
      J.ix[d] = s;
    }
    tgc_strbuf pv;
    tgc_sb_init(&pv);
    value_literal(&pv, t->dtype, tgc_op_attr_float(op, "value", 0), false, 0); /* as the padded tensor stores it */
    line(e, "%s %s = %s;", ct, r, pv.data);
    tgc_sb_free(&pv);
    line(e, "if (%s) {", in);
    e->indent++;
    line(e, "%s = %s;", r, eval(e, k, w, &J));
    e->indent--;
    line(e, "}");
    return r;
  }
  case TGC_OP_CONCAT: {
    uint32_t axis = norm_axis(tgc_op_attr_int(op, "axis", 0), t->rank);
    line(e, "%s %s;", ct, r);
    tgc_strbuf off;
    tgc_sb_init(&off);
    tgc_sb_puts(&off, "0LL");
    for (uint32_t j = 0; j < op->noperands; j++) {
      const tgc_value *w = op->operands[j].value;
      tgc_strbuf end;
      tgc_sb_init(&end);
      tgc_sb_printf(&end, "%s + ", off.data);
      dim_c(e, w->type->dims[axis], &end);
      if (j + 1 < op->noperands)
        line(e, "%sif (%s < %s) {", j ? "} else " : "", I->ix[axis], end.data);
      else
        line(e, "%s{", j ? "} else " : "");
      e->indent++;
      index_vec J = *I;
      const char *s = fresh(e, "i");
      line(e, "const long long %s = %s - (%s);", s, I->ix[axis], off.data);
      J.ix[axis] = s;
      line(e, "%s = %s;", r, eval(e, k, w, &J));
      e->indent--;
      tgc_sb_free(&off);
      off = end;
    }
    line(e, "}");
    tgc_sb_free(&off);
    return r;
  }
  case TGC_OP_GATHER: {
    const tgc_value *x = op->operands[0].value, *idx = op->operands[1].value;
    uint32_t axis = norm_axis(tgc_op_attr_int(op, "axis", 0), t->rank);
    const char *j = checked_index(e, eval(e, k, idx, I), dim_str(e, x->type->dims[axis]));
    index_vec J = *I;
    J.ix[axis] = j;
    return eval(e, k, x, &J);
  }
  case TGC_OP_EMBEDDING: {
    const tgc_value *table = op->operands[0].value, *ids = op->operands[1].value;
    index_vec J = *I;
    J.rank = t->rank - 1;
    const char *j = checked_index(e, eval(e, k, ids, &J), dim_str(e, table->type->dims[0]));
    index_vec T;
    T.rank = 2;
    T.ix[0] = j;
    T.ix[1] = I->ix[t->rank - 1];
    return eval(e, k, table, &T);
  }
  case TGC_OP_CUMSUM: {
    uint32_t axis = norm_axis(tgc_op_attr_int(op, "axis", 0), t->rank);
    const char *s = fresh(e, "t");
    line(e, "%s %s = 0;", ct, r);
    line(e, "for (long long %s = 0; %s <= %s; %s++) {", s, s, I->ix[axis], s);
    e->indent++;
    index_vec J = *I;
    J.ix[axis] = s;
    line(e, "%s += %s;", r, eval(e, k, op->operands[0].value, &J));
    e->indent--;
    line(e, "}");
    return r;
  }
  case TGC_OP_MATMUL: {
    const tgc_value *a = op->operands[0].value, *b = op->operands[1].value;
    if (a->type->rank < 2 || b->type->rank < 2) {
      fail(e, "a matmul with a 1-D operand");
      return "0";
    }
    index_vec A, B;
    A.rank = a->type->rank;
    B.rank = b->type->rank;
    for (uint32_t d = 0; d + 2 < A.rank; d++)
      A.ix[d] = dim_is(a->type->dims[d], 1) ? "0LL" : I->ix[t->rank - A.rank + d];
    for (uint32_t d = 0; d + 2 < B.rank; d++)
      B.ix[d] = dim_is(b->type->dims[d], 1) ? "0LL" : I->ix[t->rank - B.rank + d];
    const char *s = fresh(e, "t");
    A.ix[A.rank - 2] = I->ix[t->rank - 2];
    A.ix[A.rank - 1] = s;
    B.ix[B.rank - 2] = s;
    B.ix[B.rank - 1] = I->ix[t->rank - 1];
    line(e, "%s %s = 0;", ct, r);
    line(e, "for (long long %s = 0; %s < %s; %s++) {", s, s, dim_str(e, a->type->dims[A.rank - 1]), s);
    e->indent++;
    const char *x = eval(e, k, a, &A);
    const char *y = eval(e, k, b, &B);
    line(e, "%s += %s * %s;", r, x, y);
    e->indent--;
    line(e, "}");
    return r;
  }
  case TGC_OP_REDUCE_SUM:
  case TGC_OP_REDUCE_MEAN:
  case TGC_OP_REDUCE_MAX:
  case TGC_OP_REDUCE_MIN:
    if (e->rows)
      return eval_row_op(e, k, op, I);
    return eval_reduce_serial(e, k, op, I);
  case TGC_OP_ARGMAX:
    return eval_reduce_serial(e, k, op, I);
  case TGC_OP_SOFTMAX:
  case TGC_OP_LOG_SOFTMAX:
  case TGC_OP_LAYER_NORM:
  case TGC_OP_RMS_NORM:
    if (!reduces_last_dim(op)) {
      fail(e, "'%s' along a dim other than the last", tgc_op_name(op->opcode));
      return "0";
    }
    return eval_row_op(e, k, op, I);
  case TGC_OP_BROADCAST_TO: {
    index_vec J = broadcast_index(I, op->operands[0].value->type);
    return eval(e, k, op->operands[0].value, &J);
  }
  case TGC_OP_CAST: {
    index_vec J = broadcast_index(I, op->operands[0].value->type);
    const char *x = eval(e, k, op->operands[0].value, &J);
    /* narrow floats are computed in float: a cast to one rounds to the dtype, as the CPU backend stores it */
    switch (t->dtype) {
    case TGC_DT_F16: line(e, "const float %s = __half2float(__float2half_rn(%s));", r, x); break;
    case TGC_DT_BF16: line(e, "const float %s = __bfloat162float(__float2bfloat16_rn(%s));", r, x); break;
    case TGC_DT_F8E4M3:
    case TGC_DT_F8E5M2:
      e->f8 = true;
      line(e, "const float %s = tgc_f8_value(tgc_f8_bits((double)%s, %s), %s);", r, x, fp8_fmt(t->dtype),
           fp8_fmt(t->dtype));
      break;
    default:
      if (tgc_dtype_kind_of(t->dtype) != TGC_DTK_FLOAT && t->dtype != TGC_DT_BOOL &&
          tgc_dtype_kind_of(op->operands[0].value->type->dtype) == TGC_DTK_FLOAT) {
        e->f2i = true; /* not a C cast, which saturates (or is undefined) out of range */
        line(e, "const %s %s = tgc_f2i((double)%s);", ct, r, x);
      } else {
        line(e, "const %s %s = (%s)%s;", ct, r, ct, x);
      }
      break;
    }
    return r;
  }
  case TGC_OP_WHERE: {
    const char *x[3];
    for (uint32_t j = 0; j < 3; j++) {
      index_vec J = broadcast_index(I, op->operands[j].value->type);
      x[j] = eval(e, k, op->operands[j].value, &J);
    }
    line(e, "const %s %s = %s ? %s : %s;", ct, r, x[0], x[1], x[2]);
    return r;
  }
  case TGC_OP_CLAMP: {
    index_vec J = broadcast_index(I, op->operands[0].value->type);
    const char *x = eval(e, k, op->operands[0].value, &J);
    const tgc_attr *lo = tgc_op_attr(op, "min"), *hi = tgc_op_attr(op, "max");
    line(e, "%s %s = %s;", ct, r, x);
    if (tgc_dtype_kind_of(t->dtype) != TGC_DTK_FLOAT) {
      /* integer bounds as the CPU backend reads them (tgc_clamp_int_bound), compared in 64 bits; a bound at
       * the int64 extreme bounds nothing (and INT64_MIN has no literal) */
      int64_t b;
      if (lo && tgc_clamp_int_bound(lo->kind == TGC_ATTR_INT, lo->u.i, tgc_op_attr_float(op, "min", 0), true, &b) &&
          b != INT64_MIN)
        line(e, "%s = (long long)%s < %lldLL ? (%s)%lldLL : %s;", r, r, (long long)b, ct, (long long)b, r);
      if (hi && tgc_clamp_int_bound(hi->kind == TGC_ATTR_INT, hi->u.i, tgc_op_attr_float(op, "max", 0), false, &b) &&
          b != INT64_MAX)
        line(e, "%s = (long long)%s > %lldLL ? (%s)%lldLL : %s;", r, r, (long long)b, ct, (long long)b, r);
      return r;
    }
    for (int side = 0; side < 2; side++) {
      if (!(side ? hi : lo))
        continue;
      tgc_strbuf lit;
      tgc_sb_init(&lit);
      tgc_cuda_float_literal(&lit, tgc_op_attr_float(op, side ? "max" : "min", 0), dbl ? TGC_DT_F64 : TGC_DT_F32);
      line(e, "%s = %s %s %s ? %s : %s;", r, r, side ? ">" : "<", lit.data, lit.data, r);
      tgc_sb_free(&lit);
    }
    return r;
  }
  case TGC_OP_NOT: { /* as the CPU backend: logical for bool, bitwise for integers, x == 0 for floats */
    index_vec J = broadcast_index(I, op->operands[0].value->type);
    const char *x = eval(e, k, op->operands[0].value, &J);
    if (tgc_dtype_kind_of(t->dtype) == TGC_DTK_FLOAT)
      line(e, "const %s %s = (%s)(%s == 0);", ct, r, ct, x);
    else
      line(e, "const %s %s = %s%s;", ct, r, t->dtype == TGC_DT_BOOL ? "!" : "~", x);
    return r;
  }
  case TGC_OP_POW:
  case TGC_OP_MAXIMUM:
  case TGC_OP_MINIMUM: {
    const char *x[2];
    for (uint32_t j = 0; j < 2; j++) {
      index_vec J = broadcast_index(I, op->operands[j].value->type);
      x[j] = eval(e, k, op->operands[j].value, &J);
    }
    const char *f = dbl ? "" : "f";
    if (op->opcode == TGC_OP_POW && tgc_dtype_kind_of(t->dtype) == TGC_DTK_FLOAT) {
      line(e, "const %s %s = (%s)pow%s(%s, %s);", ct, r, ct, f, x[0], x[1]);
    } else if (op->opcode == TGC_OP_POW) { /* integers and bool: exact, wrapping, as the CPU backend */
      e->ipow = true;
      line(e, "const %s %s = (%s)tgc_ipow((long long)%s, (long long)%s, err, %d);", ct, r, ct, x[0], x[1],
           tgc_rt_kerr_value(e->code, TGC_RT_KERR_NEG_EXPONENT));
    } else /* NaN propagates, as torch.maximum does */
      line(e, "const %s %s = (%s != %s || %s != %s) ? (%s)NAN : (%s %s %s ? %s : %s);", ct, r, x[0], x[0], x[1], x[1],
           ct, x[0], op->opcode == TGC_OP_MAXIMUM ? ">" : "<", x[1], x[0], x[1]);
    return r;
  }
  default:
    break;
  }
  const char *bop = binary_op(op->opcode);
  if (bop && op->noperands == 2) {
    const char *x[2];
    for (uint32_t j = 0; j < 2; j++) {
      index_vec J = broadcast_index(I, op->operands[j].value->type);
      x[j] = eval(e, k, op->operands[j].value, &J);
    }
    if (op->opcode == TGC_OP_DIV && tgc_dtype_kind_of(t->dtype) != TGC_DTK_FLOAT) {
      /* integers and bool: division by zero is an error, INT64_MIN / -1 wraps, as in the CPU backend */
      e->idiv = true;
      line(e, "const %s %s = (%s)tgc_idiv((long long)%s, (long long)%s, err, %d);", ct, r, ct, x[0], x[1],
           tgc_rt_kerr_value(e->code, TGC_RT_KERR_DIV_ZERO));
      return r;
    }
    if ((op->opcode == TGC_OP_ADD || op->opcode == TGC_OP_SUB || op->opcode == TGC_OP_MUL) &&
        strcmp(ct, "long long") == 0) { /* wrapping modulo 2^64 as the CPU backend (signed overflow is undefined) */
      line(e, "const %s %s = (long long)((unsigned long long)%s %s (unsigned long long)%s);", ct, r, x[0], bop, x[1]);
      return r;
    }
    line(e, "const %s %s = %s %s %s;", ct, r, x[0], bop, x[1]);
    return r;
  }
  if (op->noperands == 1 && (tgc_op_info_of(op->opcode)->flags & TGC_OPF_ELEMWISE)) {
    index_vec J = broadcast_index(I, op->operands[0].value->type);
    const char *x = eval(e, k, op->operands[0].value, &J);
    if (unary_expr(op, x, dbl, buf, sizeof buf)) {
      line(e, "const %s %s = %s;", ct, r, buf);
      return r;
    }
  }
  fail(e, "'%s' is not generated as CUDA C yet", tgc_op_name(op->opcode));
  return "0";
}

static const char *eval(emitter *e, const kernel_src *k, const tgc_value *v, const index_vec *I) {
  if (e->failed)
    return "0";
  for (uint32_t c = 0; c < k->nconst; c++)
    if (k->const_args[c] == v)
      return eval_op(e, k, k->const_defs[c], v, I);
  int in = input_index(k, v);
  if (in >= 0)
    return load(e, in, v, I);
  if (!v->def || !v->type) {
    fail(e, "a value without a type or definition");
    return "0";
  }
  return eval_op(e, k, v->def, v, I);
}

/* Rows mode: the statistics every row-statistic op under V needs, innermost first, at the row's index. */
static void collect_stats(emitter *e, const kernel_src *k, const tgc_value *v) {
  if (e->failed || input_index(k, v) >= 0 || !v->def)
    return;
  for (uint32_t c = 0; c < k->nconst; c++)
    if (k->const_args[c] == v)
      return;
  const tgc_op *op = v->def;
  for (uint32_t j = 0; j < op->noperands; j++)
    collect_stats(e, k, op->operands[j].value);
  if (!tgc_op_is_row_reduction(op))
    return;
  for (uint32_t s = 0; s < e->nstats; s++)
    if (e->stat_op[s] == op)
      return;
  if (e->nstats == 32) {
    fail(e, "too many row statistics");
    return;
  }
  index_vec X;
  X.rank = e->nrow + 1;
  for (uint32_t d = 0; d < e->nrow; d++)
    X.ix[d] = e->rowix[d];
  X.ix[e->nrow] = "0LL";
  const char *a, *b;
  line(e, "// %s", tgc_op_name(op->opcode));
  row_stats(e, k, op, &X, &a, &b);
  e->stat_op[e->nstats] = op;
  e->stat_a[e->nstats] = a;
  e->stat_b[e->nstats++] = b;
}

/* The row space of a rows kernel computing ROOT: ROOT's own type, or, when ROOT is a reduction along a long
 * constant last dim (256 or more) of its operand, the operand's type: one block then reduces each row and one
 * thread writes its result. */
static const tgc_type *row_space(const kernel_src *k, const tgc_value *root, bool *reduce_root) {
  *reduce_root = false;
  const tgc_op *op = root->def;
  if (!op || input_index(k, root) >= 0)
    return root->type;
  for (uint32_t c = 0; c < k->nconst; c++)
    if (k->const_args[c] == root)
      return root->type;
  int64_t n;
  if ((op->opcode == TGC_OP_REDUCE_SUM || op->opcode == TGC_OP_REDUCE_MEAN || op->opcode == TGC_OP_REDUCE_MAX ||
       op->opcode == TGC_OP_REDUCE_MIN) &&
      reduces_last_dim(op)) {
    const tgc_type *x = op->operands[0].value->type;
    if (tgc_dim_is_const(x->dims[x->rank - 1], &n) && n >= 256) {
      *reduce_root = true;
      return x;
    }
  }
  return root->type;
}

/* Whether a rows kernel can compute ROOT: every row-statistic op under it reduces the last dim of an operand
 * shaped like ROOT (checked again, value by value, while generating). */
static bool rows_ok(const kernel_src *k, const tgc_type *space, const tgc_value *v, bool *any) {
  if (input_index(k, v) >= 0 || !v->def)
    return true;
  for (uint32_t c = 0; c < k->nconst; c++)
    if (k->const_args[c] == v)
      return true;
  const tgc_op *op = v->def;
  if (op->opcode == TGC_OP_ARGMAX || op->opcode == TGC_OP_MATMUL || op->opcode == TGC_OP_CUMSUM)
    return false;
  if (tgc_op_is_row_reduction(op)) {
    const tgc_type *x = op->operands[0].value->type, *r = space;
    if (!reduces_last_dim(op) || x->rank != r->rank)
      return false;
    for (uint32_t d = 0; d < r->rank; d++)
      if (!tgc_dim_equal(x->dims[d], r->dims[d]))
        return false;
    *any = true;
  }
  for (uint32_t j = 0; j < op->noperands; j++)
    if (!rows_ok(k, space, op->operands[j].value, any))
      return false;
  return true;
}

/* ---- kernels ---- */

static void store_at(emitter *e, const char *dst, const char *x, tgc_dtype dt) {
  switch (dt) {
  case TGC_DT_F16: line(e, "%s = __float2half_rn(%s);", dst, x); break;
  case TGC_DT_BF16: line(e, "%s = __float2bfloat16_rn(%s);", dst, x); break;
  case TGC_DT_F8E4M3:
  case TGC_DT_F8E5M2: /* not __nv_fp8_e4m3(x), which saturates: the CPU backend's rounding, overflow included */
    e->f8 = true;
    line(e, "%s.__x = (__nv_fp8_storage_t)tgc_f8_bits((double)%s, %s);", dst, x, fp8_fmt(dt));
    break;
  default: line(e, "%s = (%s)%s;", dst, storage_type(dt), x); break;
  }
}

static void store(emitter *e, const char *x, tgc_dtype dt) { store_at(e, "out[i]", x, dt); }

/* An integer type of BYTES bytes (1 to 16) for vector loads and stores. */
static const char *vector_type(uint32_t bytes) {
  return bytes >= 16 ? "uint4" : bytes == 8 ? "uint2" : bytes == 4 ? "unsigned" : bytes == 2 ? "unsigned short"
                                                                                        : "unsigned char";
}

static const char *const HEADERS = "#include <cuda_fp16.h>\n#include <cuda_bf16.h>\n#include <cuda_fp8.h>\n"
                                   "#ifndef INFINITY\n#define INFINITY __int_as_float(0x7f800000)\n#endif\n"
                                   "#ifndef NAN\n#define NAN __int_as_float(0x7fffffff)\n#endif\n";

/* Integer power by squaring, wrapping modulo 2^64 as the CPU backend's; a negative exponent is an error, which
 * the kernel reports as VALUE in *err (tgc_rt_kerr_value; the runtime names it at the launch). */
static const char *const IPOW =
    "__device__ long long tgc_ipow(long long b, long long e, int *err, int value) {\n"
    "  if (e < 0) {\n"
    "    atomicExch(err, value);\n"
    "    return 0;\n"
    "  }\n"
    "  unsigned long long r = 1, x = (unsigned long long)b;\n"
    "  for (; e > 0; e >>= 1, x *= x)\n"
    "    if (e & 1)\n"
    "      r *= x;\n"
    "  return (long long)r;\n"
    "}\n";

/* Integer division as the CPU backend's: by zero an error, which the kernel reports as VALUE in *err;
 * INT64_MIN / -1 wraps to INT64_MIN. */
static const char *const IDIV =
    "__device__ long long tgc_idiv(long long a, long long b, int *err, int value) {\n"
    "  if (b == 0) {\n"
    "    atomicExch(err, value);\n"
    "    return 0;\n"
    "  }\n"
    "  return b == -1 ? (long long)(0ULL - (unsigned long long)a) : a / b;\n"
    "}\n";

/* A float to an integer as the CPU backend's cast (runtime/tensor.c, wrap_double): NaN and infinities give 0,
 * other values are truncated and wrap modulo 2^64 (then to the dtype's bits when stored). */
static const char *const F2I =
    "__device__ long long tgc_f2i(double x) {\n"
    "  if (x > -9223372036854775808.0 && x < 9223372036854775808.0)\n"
    "    return (long long)x; /* in range: the C cast truncates */\n"
    "  if (x != x || x - x != 0.0)\n"
    "    return 0;\n"
    "  const double r = fmod(trunc(x), 18446744073709551616.0);\n"
    "  const unsigned long long mag = (unsigned long long)fabs(r);\n"
    "  return (long long)(r < 0 ? 0ULL - mag : mag);\n"
    "}\n";

/* OCP fp8 (E4M3FN: EB 4, MB 3, FN 1; E5M2: 5, 2, 0) exactly as runtime/convert.c: round to nearest even on
 * the bits of a double (so an f64 is rounded once), overflow to infinity, or to NaN for E4M3FN, which has no
 * infinity; and back to float. CUDA's __nv_fp8_e4m3(x) saturates instead. */
static const char *const FP8 =
    "__device__ unsigned tgc_f8_bits(double x, int eb, int mb, int fn) {\n"
    "  const unsigned long long b = (unsigned long long)__double_as_longlong(x);\n"
    "  const unsigned s = (b >> 63) ? 1u << (eb + mb) : 0u, ones = ((1u << eb) - 1) << mb;\n"
    "  const unsigned nan = s | ones | (fn ? (1u << mb) - 1 : 1u << (mb - 1)), inf = fn ? nan : s | ones;\n"
    "  const int be = (int)((b >> 52) & 0x7FF);\n"
    "  const unsigned long long frac = b & ((1ULL << 52) - 1);\n"
    "  if (be == 0x7FF)\n"
    "    return frac ? nan : inf;\n"
    "  const unsigned long long sig = be ? frac | (1ULL << 52) : frac;\n"
    "  const int exp = be ? be - 1075 : -1074;\n"
    "  if (sig == 0)\n"
    "    return s;\n"
    "  const int bias = (1 << (eb - 1)) - 1, emin = 1 - bias;\n"
    "  const int e = exp + (63 - __clzll((long long)sig));\n"
    "  const int shift = (e >= emin ? e : emin) - mb - exp;\n"
    "  unsigned long long m;\n"
    "  if (shift <= 0) {\n"
    "    m = sig << -shift;\n"
    "  } else if (shift >= 64) {\n"
    "    m = 0; /* sig < 2^53: below half a quantum */\n"
    "  } else {\n"
    "    m = sig >> shift;\n"
    "    const unsigned long long rem = sig & ((1ULL << shift) - 1), half = 1ULL << (shift - 1);\n"
    "    if (rem > half || (rem == half && (m & 1)))\n"
    "      m++;\n"
    "  }\n"
    "  const unsigned long long bits = e < emin ? m : ((unsigned long long)(e + bias) << mb) + (m - (1ULL << mb));\n"
    "  if (fn ? bits >= (ones | ((1u << mb) - 1)) : bits >= ones)\n"
    "    return inf;\n"
    "  return s | (unsigned)bits;\n"
    "}\n"
    "__device__ float tgc_f8_value(unsigned v, int eb, int mb, int fn) {\n"
    "  const int bias = (1 << (eb - 1)) - 1;\n"
    "  const unsigned ef = (v >> mb) & ((1u << eb) - 1), mf = v & ((1u << mb) - 1);\n"
    "  const float sign = (v >> (eb + mb)) & 1 ? -1.0f : 1.0f;\n"
    "  if (ef == (1u << eb) - 1 && (!fn || mf == (1u << mb) - 1))\n"
    "    return mf ? NAN : sign * INFINITY;\n"
    "  /* exact in float: at most 4 significant bits, exponents within float's normals */\n"
    "  const float mant = ef ? (float)((1u << mb) | mf) : (float)mf;\n"
    "  return sign * ldexpf(mant, (ef ? (int)ef : 1) - bias - mb);\n"
    "}\n";

/* Block-wide reductions for rows kernels: a butterfly in each warp, then every thread combines the warps'
 * partials (at most 32), so all threads get the result. */
static const char *const BLOCK_REDUCE =
    "template <typename T> struct tgc_sum_op {\n"
    "  __device__ T operator()(T a, T b) const { return a + b; }\n"
    "};\n"
    "template <> struct tgc_sum_op<long long> { /* wrapping, as the CPU backend */\n"
    "  __device__ long long operator()(long long a, long long b) const {\n"
    "    return (long long)((unsigned long long)a + (unsigned long long)b);\n"
    "  }\n"
    "};\n"
    "template <typename T> struct tgc_max_op {\n"
    "  __device__ T operator()(T a, T b) const { return (a > b || a != a) ? a : b; }\n"
    "};\n"
    "template <typename T> struct tgc_min_op {\n"
    "  __device__ T operator()(T a, T b) const { return (a < b || a != a) ? a : b; }\n"
    "};\n"
    "template <typename T, typename Op> __device__ T tgc_block_reduce(T v, Op op) {\n"
    "  __shared__ T part[32];\n"
    "  for (int o = 16; o > 0; o >>= 1)\n"
    "    v = op(v, __shfl_xor_sync(0xffffffffu, v, o));\n"
    "  __syncthreads(); /* the previous reduction's readers are done with part[] */\n"
    "  if ((threadIdx.x & 31) == 0)\n"
    "    part[threadIdx.x >> 5] = v;\n"
    "  __syncthreads();\n"
    "  T r = part[0];\n"
    "  for (int w = 1; w < (int)(blockDim.x >> 5); w++)\n"
    "    r = op(r, part[w]);\n"
    "  return r;\n"
    "}\n";

typedef struct {
  tgc_module *m;
  tgc_cuda_module *cm;
  int n;                /* the launch's number */
  const tgc_op *launch; /* the launch being generated */
  char where[400];      /* "kind at file:line:col" */
  const tgc_value **consts; /* constants already given a buffer */
  uint32_t nconsts;
  char why[256];
} gen;

static const tgc_dim *numel_dim(tgc_arena *a, const tgc_type *t, uint32_t from, uint32_t to) {
  const tgc_dim *n = tgc_dim_const(a, 1);
  for (uint32_t d = from; d < to; d++)
    if (tgc_dim_mul(a, n, t->dims[d], &n) != TGC_DIM_OK)
      return NULL;
  return n;
}

static tgc_cuda_kernel *add_kernel(gen *g, const char *kind, const char *source, const char *name,
                                   const tgc_value *const *args, uint32_t nargs, const emitter *e) {
  tgc_cuda_module *cm = g->cm;
  cm->kernels = tgc_arena_grow(&g->m->arena, cm->kernels, cm->nkernels, cm->nkernels + 1, sizeof *cm->kernels);
  tgc_cuda_kernel *k = &cm->kernels[cm->nkernels];
  memset(k, 0, sizeof *k);
  k->name = tgc_arena_strndup(&g->m->arena, name, strlen(name));
  k->source = source;
  k->kind = kind;
  k->op = g->launch;
  k->args = args;
  k->nargs = nargs;
  const char **names = tgc_arena_alloc(&g->m->arena, sizeof *names * (e->nsyms + 1));
  for (uint32_t i = 0; i < e->nsyms; i++)
    names[i] = e->syms[i]->name;
  k->sym_names = names;
  k->nsyms = e->nsyms;
  k->code = g->n + 1;
  cm->steps = tgc_arena_grow(&g->m->arena, cm->steps, cm->nsteps, cm->nsteps + 1, sizeof *cm->steps);
  cm->steps[cm->nsteps++] = (tgc_cuda_step){false, cm->nkernels};
  return &cm->kernels[cm->nkernels++];
}

static void kernel_name(gen *g, char *buf, size_t n, const char *what) {
  snprintf(buf, n, "k%u_%s", g->cm->nkernels, what);
  for (char *p = buf; *p; p++)
    if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
      *p = '_';
}

/* The kernel's signature: inputs, the output, the symbols, the error flag. */
static void signature(tgc_strbuf *src, const char *name, tgc_value *const *ins, uint32_t nin, tgc_dtype out,
                      const emitter *e) {
  tgc_sb_printf(src, "extern \"C\" __global__ void %s(", name);
  for (uint32_t j = 0; j < nin; j++)
    tgc_sb_printf(src, "const %s *__restrict__ in%u, ", storage_type(ins[j]->type->dtype), j);
  tgc_sb_printf(src, "%s *__restrict__ out", storage_type(out));
  for (uint32_t s = 0; s < e->nsyms; s++)
    tgc_sb_printf(src, ", long long s_%s", e->syms[s]->name);
  tgc_sb_puts(src, ", int *__restrict__ err) {\n");
}

static uint32_t row_block(const tgc_dim *n) {
  int64_t c;
  if (!tgc_dim_is_const(n, &c))
    return 256;
  return c >= 4096 ? 512 : c >= 512 ? 256 : c >= 128 ? 128 : c > 32 ? 64 : 32;
}

/* One attempt at a kernel computing ROOT over its type (rows mode or one thread per element). */
static const char *value_kernel_src(gen *g, const char *name, const tgc_value *root, const kernel_src *k,
                                    bool rows, bool reduce_root, const tgc_type *space, emitter *e,
                                    uint32_t *vec_out) {
  tgc_module *m = g->m;
  tgc_strbuf body, src, tail;
  tgc_sb_init(&body);
  tgc_sb_init(&src);
  tgc_sb_init(&tail);
  memset(e, 0, sizeof *e);
  e->out = &body;
  e->indent = 1;
  e->m = m;
  e->code = g->n + 1;
  e->rows = rows;
  const tgc_type *t = rows ? space : root->type;
  if (rows) {
    tgc_type rt = {t->dtype, t->rank - 1, t->dims};
    line(e, "const long long row = blockIdx.x;");
    line(e, "const long long n = %s;", dim_str(e, t->dims[t->rank - 1]));
    index_vec R = delinearize(e, "row", &rt);
    e->nrow = R.rank;
    for (uint32_t d = 0; d < R.rank; d++)
      e->rowix[d] = R.ix[d];
    collect_stats(e, k, root);
    index_vec I;
    for (uint32_t d = 0; d < R.rank; d++)
      I.ix[d] = R.ix[d];
    if (reduce_root) {
      /* the launch's result is the row's statistic: one thread writes it */
      I.rank = root->type->rank;
      if (I.rank == t->rank)
        I.ix[t->rank - 1] = "0LL"; /* keepdim */
      line(e, "if (threadIdx.x == 0) {");
      e->indent++;
      line(e, "const long long i = row;");
      const char *x = eval(e, k, root, &I);
      if (!e->failed)
        store(e, x, root->type->dtype);
    } else {
      line(e, "#pragma unroll 4");
      line(e, "for (long long j = threadIdx.x; j < n; j += BLOCK) {");
      e->indent++;
      line(e, "const long long i = row * n + j;");
      I.rank = t->rank;
      I.ix[t->rank - 1] = "j";
      const char *x = eval(e, k, root, &I);
      if (!e->failed)
        store(e, x, t->dtype);
    }
    e->indent--;
    line(e, "}");
  } else {
    /* the vector body (lane u of VEC consecutive elements; inputs read at the element's own index come from
     * vectors loaded before the lane loop), then the scalar body for the tail */
    e->vec = true;
    e->root_t = t;
    e->vloaded = tgc_arena_alloc(&m->arena, sizeof *e->vloaded * (k->ninputs + 1));
    e->indent = 2;
    index_vec I = delinearize(e, "i", t);
    e->root_I = I;
    const char *x = eval(e, k, root, &I);
    if (!e->failed)
      store_at(e, "ov[u]", x, t->dtype);
    e->vec = false;
    tgc_sb_init(&tail);
    e->out = &tail;
    e->indent = 2;
    I = delinearize(e, "i", t);
    x = eval(e, k, root, &I);
    if (!e->failed)
      store(e, x, t->dtype);
    e->out = &body;
  }
  if (e->failed) {
    tgc_sb_free(&body);
    tgc_sb_free(&tail);
    tgc_sb_free(&src);
    return NULL;
  }
  tgc_strbuf count;
  tgc_sb_init(&count);
  if (t->rank == 0)
    tgc_sb_puts(&count, "1LL");
  for (uint32_t d = 0; d < t->rank; d++) {
    if (d)
      tgc_sb_puts(&count, " * ");
    dim_c(e, t->dims[d], &count);
  }
  tgc_sb_printf(&src, "// %s\n", g->where);
  tgc_sb_puts(&src, HEADERS);
  if (e->ipow)
    tgc_sb_puts(&src, IPOW);
  if (e->idiv)
    tgc_sb_puts(&src, IDIV);
  if (e->f8)
    tgc_sb_puts(&src, FP8);
  if (e->f2i)
    tgc_sb_puts(&src, F2I);
  if (rows) {
    tgc_sb_printf(&src, "#define BLOCK %u /* threads per block: one block per row */\n", row_block(t->dims[t->rank - 1]));
    tgc_sb_puts(&src, BLOCK_REDUCE);
  }
  uint32_t vec = 1;
  if (!rows) {
    uint32_t widest = (uint32_t)(tgc_dtype_bits(t->dtype) + 7) / 8;
    for (uint32_t j = 0; j < k->ninputs; j++)
      if (e->vloaded[j]) {
        uint32_t sz = (uint32_t)(tgc_dtype_bits(k->inputs[j]->type->dtype) + 7) / 8;
        widest = sz > widest ? sz : widest;
      }
    vec = 16 / (widest ? widest : 1);
    *vec_out = vec;
    tgc_sb_printf(&src, "#define VEC %u /* elements per thread: 16 bytes of the widest vector access */\n", vec);
  }
  tgc_sb_putc(&src, '\n');
  signature(&src, name, k->inputs, k->ninputs, root->type->dtype, e);
  if (!rows) {
    /* VEC consecutive elements per thread: inputs read at the elements' own index and the output move as one
     * 16-byte access (buffers are 256-byte aligned and FIRST is a multiple of VEC) */
    tgc_sb_printf(&src, "  const long long count = %s;\n", count.data);
    tgc_sb_puts(&src, "  const long long first = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * VEC;\n");
    tgc_sb_puts(&src, "  if (first + VEC <= count) {\n");
    for (uint32_t j = 0; j < k->ninputs; j++)
      if (e->vloaded[j]) {
        tgc_dtype dj = k->inputs[j]->type->dtype;
        uint32_t sz = (uint32_t)(tgc_dtype_bits(dj) + 7) / 8;
        const char *vt = vector_type(sz * vec);
        tgc_sb_printf(&src, "    __align__(16) %s vin%u[VEC];\n", storage_type(dj), j);
        tgc_sb_printf(&src, "    *(%s *)vin%u = *(const %s *)&in%u[first];\n", vt, j, vt, j);
      }
    tgc_sb_printf(&src, "    __align__(16) %s ov[VEC];\n", storage_type(t->dtype));
    tgc_sb_puts(&src, "#pragma unroll\n    for (int u = 0; u < VEC; u++) {\n");
    tgc_sb_puts(&src, "      const long long i = first + u;\n");
    /* the body was emitted two levels deep; the lane loop is three */
    for (const char *l = body.data ? body.data : ""; *l;) {
      const char *nl = strchr(l, '\n');
      size_t len = nl ? (size_t)(nl - l) : strlen(l);
      tgc_sb_puts(&src, "  ");
      tgc_sb_putn(&src, l, len);
      tgc_sb_putc(&src, '\n');
      l += len + (nl ? 1 : 0);
    }
    const char *ot = vector_type(((uint32_t)(tgc_dtype_bits(t->dtype) + 7) / 8) * vec);
    tgc_sb_puts(&src, "    }\n");
    tgc_sb_printf(&src, "    *(%s *)&out[first] = *(const %s *)ov;\n", ot, ot);
    tgc_sb_puts(&src, "    return;\n  }\n");
    tgc_sb_puts(&src, "  for (long long i = first; i < count; i++) {\n");
    tgc_sb_puts(&src, tail.data ? tail.data : "");
    tgc_sb_puts(&src, "  }\n}\n");
  } else {
    tgc_sb_puts(&src, body.data ? body.data : "");
    tgc_sb_puts(&src, "}\n");
  }
  const char *r = tgc_arena_strndup(&m->arena, src.data, src.len);
  tgc_sb_free(&count);
  tgc_sb_free(&body);
  tgc_sb_free(&tail);
  tgc_sb_free(&src);
  return r;
}

static bool ensure_buffer(gen *g, const tgc_value *v);
static const tgc_value *buffer_storage(const tgc_value *v);

/* The constant op whose storage V is (V itself, or a top-level reshape of it), else NULL. */
static const tgc_op *constant_def(const tgc_value *v) {
  const tgc_value *s = v ? buffer_storage(v) : NULL;
  return s && s->def && s->def->opcode == TGC_OP_CONSTANT ? s->def : NULL;
}

/* Adds a kernel computing ROOT into buffer OUT (ROOT's own value unless given), reading INS whose buffers are
 * OUTER (constants among them are inlined). Rows mode when every reduction allows it. False with g->why set
 * when some op cannot be generated. */
static bool value_kernel(gen *g, const char *kind, const tgc_value *root, tgc_value *const *ins,
                         const tgc_value *const *outer, uint32_t nin, const tgc_value *out) {
  tgc_module *m = g->m;
  tgc_value **kin = tgc_arena_alloc(&m->arena, sizeof *kin * (nin + 1));
  const tgc_value **args = tgc_arena_alloc(&m->arena, sizeof *args * (nin + 2));
  const tgc_value **cargs = tgc_arena_alloc(&m->arena, sizeof *cargs * (nin + 1));
  const tgc_op **cdefs = tgc_arena_alloc(&m->arena, sizeof *cdefs * (nin + 1));
  uint32_t n = 0, nconst = 0;
  for (uint32_t j = 0; j < nin; j++) {
    const tgc_value *o = outer[j];
    const tgc_op *cdef = constant_def(o);
    if (cdef) { /* a reshape keeps the linear order, so the constant is read at the input's linear index */
      cargs[nconst] = ins[j];
      cdefs[nconst++] = cdef;
    } else {
      args[n] = o;
      kin[n++] = ins[j];
    }
  }
  args[n] = out ? out : root;
  kernel_src k = {kin, n, cargs, cdefs, nconst};
  char name[96];
  const tgc_op *rd = root->def;
  kernel_name(g, name, sizeof name,
              g->launch->opcode == TGC_OP_FUSION && strcmp(kind, "operand") != 0
                  ? tgc_op_attr_str(g->launch, "kind", "fusion")
                  : rd ? tgc_op_name(rd->opcode) : "copy");
  if (strcmp(kind, "epilogue") == 0)
    kernel_name(g, name, sizeof name, "gemm_epilogue");
  emitter e;
  bool any = false;
  const char *src = NULL;
  bool reduce_root;
  uint32_t vec = 1;
  const tgc_type *space = row_space(&k, root, &reduce_root);
  bool rows = space->rank > 0 && rows_ok(&k, space, root, &any) && any;
  if (rows)
    src = value_kernel_src(g, name, root, &k, true, reduce_root, space, &e, &vec);
  if (!src) {
    rows = false;
    src = value_kernel_src(g, name, root, &k, false, false, root->type, &e, &vec);
  }
  if (!src) {
    snprintf(g->why, sizeof g->why, "%s", e.why);
    return false;
  }
  tgc_cuda_kernel *kk = add_kernel(g, rows ? "rows" : kind, src, name, args, n + 1, &e);
  const tgc_type *t = rows ? space : root->type;
  if (rows) {
    kk->grid = TGC_CUDA_GRID_ROWS;
    kk->count = numel_dim(&m->arena, t, 0, t->rank - 1);
    kk->block = row_block(t->dims[t->rank - 1]);
  } else {
    kk->grid = TGC_CUDA_GRID_ELEMENTS;
    kk->count = numel_dim(&m->arena, t, 0, t->rank);
    kk->block = 256;
    kk->per_block = 256 * vec; /* VEC elements per thread */
  }
  return true;
}

/* A constant that a library call reads or the function returns (directly or through top-level reshapes, which
 * share its storage) needs a buffer: a kernel of its own writes it once per run. The kernel belongs to the
 * constant op (its name, location and error code), not to the launch being generated, if any. False with g->why
 * set when the kernel cannot be generated. */
static bool ensure_buffer(gen *g, const tgc_value *v) {
  const tgc_op *c = constant_def(v);
  if (!c)
    return true;
  v = &c->results[0];
  for (uint32_t i = 0; i < g->nconsts; i++)
    if (g->consts[i] == v)
      return true;
  g->consts = tgc_arena_grow(&g->m->arena, g->consts, g->nconsts, g->nconsts + 1, sizeof *g->consts);
  g->consts[g->nconsts++] = v;
  const tgc_op *launch = g->launch;
  char where[sizeof g->where];
  memcpy(where, g->where, sizeof where);
  g->launch = c;
  snprintf(g->where, sizeof g->where, "constant at %s:%u:%u", c->loc.file ? c->loc.file : "?", c->loc.line,
           c->loc.col);
  bool ok = value_kernel(g, "constant", v, NULL, NULL, 0, v);
  g->launch = launch;
  memcpy(g->where, where, sizeof where);
  if (!ok)
    g->nconsts--;
  return ok;
}

/* ---- strided views ---- */

typedef struct {
  const tgc_value *buf; /* the buffer (a value at the kernel's level) */
  const tgc_dim *off;
  uint32_t rank;
  const tgc_dim *st[TGC_RT_MAX_RANK];
} view;

static bool contiguous_view(tgc_arena *a, const tgc_value *buf, const tgc_type *t, view *out) {
  out->buf = buf;
  out->off = tgc_dim_const(a, 0);
  out->rank = t->rank;
  const tgc_dim *s = tgc_dim_const(a, 1);
  for (uint32_t d = t->rank; d-- > 0;) {
    out->st[d] = s;
    if (tgc_dim_mul(a, s, t->dims[d], &s) != TGC_DIM_OK)
      return false;
  }
  return true;
}

/* V (a view with dims OD) seen with dims ND of the same element count: dims are split or merged. */
static bool reshape_view(tgc_arena *a, const view *v, const tgc_type *od, const tgc_type *nd, view *out) {
  uint32_t oi[TGC_RT_MAX_RANK], ni[TGC_RT_MAX_RANK], no = 0, nn = 0;
  for (uint32_t d = 0; d < od->rank; d++)
    if (!dim_is(od->dims[d], 1))
      oi[no++] = d;
  for (uint32_t d = 0; d < nd->rank; d++)
    if (!dim_is(nd->dims[d], 1))
      ni[nn++] = d;
  view r = *v;
  r.rank = nd->rank;
  for (uint32_t d = 0; d < nd->rank; d++)
    r.st[d] = tgc_dim_const(a, 0);
  uint32_t i = 0, j = 0;
  while (i < no && j < nn) {
    const tgc_dim *odim = od->dims[oi[i]], *ndim = nd->dims[ni[j]];
    if (tgc_dim_equal(odim, ndim)) {
      r.st[ni[j++]] = v->st[oi[i++]];
      continue;
    }
    /* split one old dim into several new ones */
    const tgc_dim *p = ndim;
    uint32_t j2 = j;
    while (j2 + 1 < nn && !tgc_dim_equal(p, odim))
      if (tgc_dim_mul(a, p, nd->dims[ni[++j2]], &p) != TGC_DIM_OK)
        return false;
    if (tgc_dim_equal(p, odim)) {
      r.st[ni[j2]] = v->st[oi[i]];
      for (uint32_t t = j2; t-- > j;)
        if (tgc_dim_mul(a, r.st[ni[t + 1]], nd->dims[ni[t + 1]], &r.st[ni[t]]) != TGC_DIM_OK)
          return false;
      i++;
      j = j2 + 1;
      continue;
    }
    /* merge several old dims into one new one: they must be contiguous with each other */
    p = odim;
    uint32_t i2 = i;
    while (i2 + 1 < no && !tgc_dim_equal(p, ndim)) {
      const tgc_dim *need;
      if (tgc_dim_mul(a, v->st[oi[i2 + 1]], od->dims[oi[i2 + 1]], &need) != TGC_DIM_OK ||
          !tgc_dim_equal(need, v->st[oi[i2]]))
        return false;
      if (tgc_dim_mul(a, p, od->dims[oi[++i2]], &p) != TGC_DIM_OK)
        return false;
    }
    if (!tgc_dim_equal(p, ndim))
      return false;
    r.st[ni[j++]] = v->st[oi[i2]];
    i = i2 + 1;
  }
  if (i != no || j != nn)
    return false;
  *out = r;
  return true;
}

static int in_index(tgc_value *const *ins, uint32_t nin, const tgc_value *v) {
  for (uint32_t i = 0; i < nin; i++)
    if (ins[i] == v)
      return (int)i;
  return -1;
}

/* V as a strided view of a buffer: V is one of INS (its buffer is OUTER[i]) or data movement of one. */
static bool view_of(tgc_arena *a, const tgc_value *v, tgc_value *const *ins, const tgc_value *const *outer,
                    uint32_t nin, view *out) {
  int i = in_index(ins, nin, v);
  if (i >= 0)
    return !constant_def(outer[i]) && contiguous_view(a, outer[i], v->type, out);
  const tgc_op *op = v->def;
  if (!op || op->noperands == 0)
    return false;
  const tgc_value *x = op->operands[0].value;
  view w;
  if (!view_of(a, x, ins, outer, nin, &w))
    return false;
  switch (op->opcode) {
  case TGC_OP_RESHAPE:
    return reshape_view(a, &w, x->type, v->type, out);
  case TGC_OP_TRANSPOSE: {
    const tgc_attr *perm = tgc_op_attr(op, "perm");
    *out = w;
    for (uint32_t d = 0; d < v->type->rank; d++)
      out->st[d] = w.st[perm->u.list.items[d]->u.i];
    return true;
  }
  case TGC_OP_SLICE:
  case TGC_OP_SPLIT: {
    uint32_t axis = norm_axis(tgc_op_attr_int(op, "axis", 0), v->type->rank);
    int64_t start = 0, step = 1;
    if (op->opcode == TGC_OP_SLICE) {
      start = tgc_op_attr_int(op, "start", 0);
      step = tgc_op_attr_int(op, "step", 1);
      int64_t dim, len;
      if (tgc_dim_is_const(x->type->dims[axis], &dim) && dim >= 0)
        tgc_slice_range(dim, start, tgc_op_attr_int(op, "end", INT64_MAX), step, &start, &len);
      else if (start < 0)
        return false;
    } else {
      const tgc_attr *sizes = tgc_op_attr(op, "sizes");
      for (uint32_t j = 0; j < op->nresults && &op->results[j] != v; j++)
        start += sizes->u.list.items[j]->u.i;
    }
    *out = w;
    const tgc_dim *o;
    if (tgc_dim_mul(a, w.st[axis], tgc_dim_const(a, start), &o) != TGC_DIM_OK ||
        tgc_dim_add(a, w.off, o, &out->off) != TGC_DIM_OK ||
        tgc_dim_mul(a, w.st[axis], tgc_dim_const(a, step), &out->st[axis]) != TGC_DIM_OK)
      return false;
    return true;
  }
  case TGC_OP_BROADCAST_TO: {
    const tgc_type *xt = x->type, *t = v->type;
    *out = w;
    out->rank = t->rank;
    for (uint32_t d = 0; d < t->rank; d++) {
      int64_t xd = (int64_t)d - (int64_t)(t->rank - xt->rank);
      out->st[d] = xd < 0 || (dim_is(xt->dims[xd], 1) && !dim_is(t->dims[d], 1)) ? tgc_dim_const(a, 0) : w.st[xd];
    }
    return true;
  }
  default:
    return false;
  }
}

/* The kernel that computes a launch's ROOT from a library call's or attention's result PRODUCT (a temporary,
 * the kernel's input 0) and the launch's inputs, into RESULT. */
static bool epilogue_kernel(gen *g, const tgc_value *product, const tgc_value *root, tgc_value *const *ins,
                            const tgc_value *const *outer, uint32_t nin, const tgc_value *result) {
  tgc_arena *ar = &g->m->arena;
  tgc_value **eins = tgc_arena_alloc(ar, sizeof *eins * (nin + 2));
  const tgc_value **eout = tgc_arena_alloc(ar, sizeof *eout * (nin + 2));
  eins[0] = (tgc_value *)product;
  eout[0] = product;
  for (uint32_t j = 0; j < nin; j++) {
    eins[j + 1] = ins[j];
    eout[j + 1] = outer[j];
  }
  return value_kernel(g, "epilogue", root, eins, eout, nin + 1, result);
}

/* ---- GEMMs ---- */

const char *tgc_cuda_epilogue_name(tgc_cuda_epilogue e) {
  switch (e) {
  case TGC_CUDA_EPI_NONE: return "none";
  case TGC_CUDA_EPI_BIAS: return "bias";
  case TGC_CUDA_EPI_GELU_BIAS: return "gelu_tanh+bias";
  case TGC_CUDA_EPI_RELU_BIAS: return "relu+bias";
  case TGC_CUDA_EPI_GELU: return "gelu_tanh";
  case TGC_CUDA_EPI_RELU: return "relu";
  }
  return "?";
}

static bool gemm_dtype(tgc_dtype dt) {
  return dt == TGC_DT_F16 || dt == TGC_DT_BF16 || dt == TGC_DT_F32 || dt == TGC_DT_F64;
}

/* A matmul operand as a buffer: one of INS, or a reshape of one, or the transpose of its last two dims.
 * Anything else is computed into a temporary by an operand kernel first. */
static const tgc_value *gemm_operand(gen *g, const tgc_value *v, tgc_value *const *ins, const tgc_value *const *outer,
                                     uint32_t nin, bool *trans, const tgc_type **stored) {
  const tgc_value *w = v;
  bool tr = false;
  for (;;) {
    int i = in_index(ins, nin, w);
    if (i >= 0) {
      if (!ensure_buffer(g, outer[i]))
        return NULL;
      *trans = tr;
      *stored = w->type;
      return outer[i];
    }
    const tgc_op *op = w->def;
    if (!op)
      break;
    if (op->opcode == TGC_OP_RESHAPE && !tr) {
      w = op->operands[0].value;
      continue;
    }
    if (op->opcode == TGC_OP_TRANSPOSE && !tr && w->type->rank >= 2) {
      const tgc_attr *perm = tgc_op_attr(op, "perm");
      uint32_t r = w->type->rank;
      bool swap = perm->u.list.items[r - 1]->u.i == (int64_t)r - 2 && perm->u.list.items[r - 2]->u.i == (int64_t)r - 1;
      for (uint32_t d = 0; d + 2 < r; d++)
        swap = swap && perm->u.list.items[d]->u.i == (int64_t)d;
      if (swap && w == v) {
        tr = true;
        w = op->operands[0].value;
        continue;
      }
    }
    break;
  }
  /* computed inside the launch: an operand kernel writes it to a temporary */
  if (!value_kernel(g, "operand", v, ins, outer, nin, v))
    return NULL;
  *trans = false;
  *stored = v->type;
  return v;
}

/* Skips reshapes that keep the last dim (the GEMM's n): the buffer is the same. */
static const tgc_value *skip_reshapes(const tgc_value *v, tgc_value *const *ins, uint32_t nin) {
  while (in_index(ins, nin, v) < 0 && v->def && v->def->opcode == TGC_OP_RESHAPE) {
    const tgc_value *x = v->def->operands[0].value;
    if (!x->type->rank || !v->type->rank || !tgc_dim_equal(x->type->dims[x->type->rank - 1], v->type->dims[v->type->rank - 1]))
      break;
    v = x;
  }
  return v;
}

static bool is_bias(const tgc_value *b, const tgc_dim *n) {
  const tgc_type *t = b->type;
  if (!t || t->rank == 0 || !tgc_dim_equal(t->dims[t->rank - 1], n))
    return false;
  for (uint32_t d = 0; d + 1 < t->rank; d++)
    if (!dim_is(t->dims[d], 1))
      return false;
  return true;
}

static bool same_numel(tgc_arena *a, const tgc_type *x, const tgc_type *y) {
  const tgc_dim *nx = numel_dim(a, x, 0, x->rank), *ny = numel_dim(a, y, 0, y->rank);
  return nx && ny && tgc_dim_equal(nx, ny);
}

/* A matmul launch (a gemm_epilogue fusion, or one matmul) as a cuBLASLt call with what of its epilogue
 * cuBLASLt computes exactly, and an epilogue kernel for the rest. */
static bool gen_gemm(gen *g, const tgc_op *mm, const tgc_value *root, tgc_value *const *ins,
                     const tgc_value *const *outer, uint32_t nin, const tgc_value *result) {
  tgc_arena *ar = &g->m->arena;
  const tgc_value *av = mm->operands[0].value, *bv = mm->operands[1].value, *mmv = &mm->results[0];
  const tgc_type *at = av->type, *bt = bv->type, *ot = mmv->type;
  tgc_dtype dt = ot->dtype;
  if (!gemm_dtype(dt) || at->dtype != dt || bt->dtype != dt || at->rank < 2 || bt->rank < 2)
    return false;
  tgc_cuda_gemm gm;
  memset(&gm, 0, sizeof gm);
  gm.op = g->launch;
  gm.dtype = dt;
  const tgc_type *ast, *bst;
  gm.a = gemm_operand(g, av, ins, outer, nin, &gm.trans_a, &ast);
  gm.b = gm.a ? gemm_operand(g, bv, ins, outer, nin, &gm.trans_b, &bst) : NULL;
  if (!gm.a || !gm.b)
    return false;
  gm.k = at->dims[at->rank - 1];
  gm.n = bt->dims[bt->rank - 1];
  if (bt->rank == 2 && !gm.trans_a) {
    /* [.., m, k] x [k, n]: the leading dims of a are rows of one GEMM */
    gm.m = numel_dim(ar, at, 0, at->rank - 1);
    gm.batch = tgc_dim_const(ar, 1);
  } else {
    gm.m = at->dims[at->rank - 2];
    gm.batch = numel_dim(ar, ot, 0, ot->rank - 2);
    const tgc_dim *ba = numel_dim(ar, at, 0, at->rank - 2), *bb = numel_dim(ar, bt, 0, bt->rank - 2);
    if (!gm.batch || !ba || !bb)
      return false;
    gm.batch_a = !dim_is(ba, 1);
    gm.batch_b = !dim_is(bb, 1);
    if ((gm.batch_a && !tgc_dim_equal(ba, gm.batch)) || (gm.batch_b && !tgc_dim_equal(bb, gm.batch)))
      return false; /* a partial broadcast of the batch dims: not one strided batch */
  }
  if (!gm.m || !gm.batch)
    return false;
  /* what cuBLASLt can do of the epilogue: D = act(A B + bias) or D = A B + bias + C */
  const tgc_value *y = skip_reshapes(root, ins, nin);
  bool ok;
  if (y->def && y->def->opcode == TGC_OP_ADD && in_index(ins, nin, y) < 0) {
    for (uint32_t s = 0; s < 2 && !gm.c; s++) {
      const tgc_value *r = skip_reshapes(y->def->operands[s].value, ins, nin);
      int i = in_index(ins, nin, r);
      if (i >= 0 && r->type->dtype == dt && same_numel(ar, r->type, ot) && r->type->rank &&
          tgc_dim_equal(r->type->dims[r->type->rank - 1], gm.n) && !constant_def(outer[i])) {
        gm.c = outer[i];
        y = skip_reshapes(y->def->operands[1 - s].value, ins, nin);
      }
    }
  }
  if (!gm.c && y->def && in_index(ins, nin, y) < 0 &&
      ((y->def->opcode == TGC_OP_GELU && strcmp(tgc_op_attr_str(y->def, "approximate", "none"), "tanh") == 0) ||
       y->def->opcode == TGC_OP_RELU)) {
    gm.epilogue = y->def->opcode == TGC_OP_GELU ? TGC_CUDA_EPI_GELU : TGC_CUDA_EPI_RELU;
    y = skip_reshapes(y->def->operands[0].value, ins, nin);
  }
  if (y->def && y->def->opcode == TGC_OP_ADD && in_index(ins, nin, y) < 0) {
    for (uint32_t s = 0; s < 2; s++) {
      const tgc_value *b = y->def->operands[s].value;
      int i = in_index(ins, nin, b);
      if (i >= 0 && b->type->dtype == dt && is_bias(b, gm.n) && !constant_def(outer[i])) {
        gm.bias = outer[i];
        gm.epilogue = gm.epilogue == TGC_CUDA_EPI_GELU   ? TGC_CUDA_EPI_GELU_BIAS
                      : gm.epilogue == TGC_CUDA_EPI_RELU ? TGC_CUDA_EPI_RELU_BIAS
                                                         : TGC_CUDA_EPI_BIAS;
        y = skip_reshapes(y->def->operands[1 - s].value, ins, nin);
        break;
      }
    }
  }
  ok = y == mmv && result->type->dtype == dt; /* else a cast follows: the epilogue kernel does it */
  if (!ok) {
    /* cuBLASLt computes the product alone; an epilogue kernel reads it */
    gm.c = NULL;
    gm.bias = NULL;
    gm.epilogue = TGC_CUDA_EPI_NONE;
  }
  gm.d = ok ? result : mmv;
  tgc_cuda_module *cm = g->cm;
  cm->gemms = tgc_arena_grow(ar, cm->gemms, cm->ngemms, cm->ngemms + 1, sizeof *cm->gemms);
  cm->gemms[cm->ngemms] = gm;
  cm->steps = tgc_arena_grow(ar, cm->steps, cm->nsteps, cm->nsteps + 1, sizeof *cm->steps);
  cm->steps[cm->nsteps++] = (tgc_cuda_step){true, cm->ngemms++};
  if (ok)
    return true;
  return epilogue_kernel(g, mmv, root, ins, outer, nin, result);
}

/* ---- attention ---- */

static bool coeffs_divisible(const tgc_dim *d, int64_t k) {
  for (uint32_t i = 0; i < d->nterms; i++)
    if (d->terms[i].coeff % k)
      return false;
  return true;
}

/* Whether a [B, H, S, HD] view can be read VEC elements at a time: the head dim contiguous and every offset a
 * multiple of VEC for all values of the symbols (buffers themselves are 256-byte aligned). */
static bool vec_ok(const view *v, int64_t hd, uint32_t vec) {
  if (v->rank != 4 || !dim_is(v->st[3], 1) || hd % vec || !coeffs_divisible(v->off, vec))
    return false;
  for (uint32_t d = 0; d < 3; d++)
    if (!coeffs_divisible(v->st[d], vec))
      return false;
  return true;
}

static void view_index(emitter *e, tgc_strbuf *b, const view *v, const char *const *ix) {
  tgc_sb_puts(b, "(");
  dim_c(e, v->off, b);
  for (uint32_t d = 0; d < v->rank; d++) {
    if (dim_is(v->st[d], 0))
      continue;
    tgc_sb_printf(b, " + %s * ", ix[d]);
    dim_c(e, v->st[d], b);
  }
  tgc_sb_puts(b, ")");
}

static const char *const ATTN_HELPERS =
    "__device__ __forceinline__ float tgc_ld(float x) { return x; }\n"
    "__device__ __forceinline__ float tgc_ld(double x) { return (float)x; }\n"
    "__device__ __forceinline__ float tgc_ld(__half x) { return __half2float(x); }\n"
    "__device__ __forceinline__ float tgc_ld(__nv_bfloat16 x) { return __bfloat162float(x); }\n"
    "__device__ __forceinline__ void tgc_st(float *p, float x) { *p = x; }\n"
    "__device__ __forceinline__ void tgc_st(double *p, float x) { *p = x; }\n"
    "__device__ __forceinline__ void tgc_st(__half *p, float x) { *p = __float2half_rn(x); }\n"
    "__device__ __forceinline__ void tgc_st(__nv_bfloat16 *p, float x) { *p = __float2bfloat16_rn(x); }\n"
    "/* 16 bytes from P (aligned) to VEC floats at OUT */\n"
    "__device__ __forceinline__ void tgc_ld_vec(const float *p, float *out) {\n"
    "  const float4 v = *(const float4 *)p;\n"
    "  out[0] = v.x; out[1] = v.y; out[2] = v.z; out[3] = v.w;\n"
    "}\n"
    "__device__ __forceinline__ void tgc_ld_vec(const __half *p, float *out) {\n"
    "  const uint4 v = *(const uint4 *)p;\n"
    "  const unsigned w[4] = {v.x, v.y, v.z, v.w};\n"
    "  for (int i = 0; i < 4; i++) {\n"
    "    const float2 f = __half22float2(*(const __half2 *)&w[i]);\n"
    "    out[2 * i] = f.x; out[2 * i + 1] = f.y;\n"
    "  }\n"
    "}\n"
    "__device__ __forceinline__ void tgc_ld_vec(const __nv_bfloat16 *p, float *out) {\n"
    "  const uint4 v = *(const uint4 *)p;\n"
    "  const unsigned w[4] = {v.x, v.y, v.z, v.w};\n"
    "  for (int i = 0; i < 4; i++) {\n"
    "    const float2 f = __bfloat1622float2(*(const __nv_bfloat162 *)&w[i]);\n"
    "    out[2 * i] = f.x; out[2 * i + 1] = f.y;\n"
    "  }\n"
    "}\n";

/* mma.sync m16n8k16 with fp32 accumulators (sm_80 and later), and packing two values into one register */
/* Tensor-core kernels' shared-memory helpers (sm_80 and later, as mma.sync m16n8k16 is): 16-byte asynchronous
 * copies from global memory (zero-filled when the source is out of range) and ldmatrix. */
static const char *const MMA_COMMON =
    "__device__ __forceinline__ void tgc_cp16(void *smem, const void *gmem, bool in_range) {\n"
    "  const unsigned d = (unsigned)__cvta_generic_to_shared(smem);\n"
    "  asm volatile(\"cp.async.cg.shared.global [%0], [%1], 16, %2;\\n\" :: \"r\"(d), \"l\"(gmem), \"r\"(in_range ? 16 : 0));\n"
    "}\n"
    "__device__ __forceinline__ void tgc_cp_wait() {\n"
    "  asm volatile(\"cp.async.commit_group;\\ncp.async.wait_group 0;\\n\" ::: \"memory\");\n"
    "}\n"
    "/* two 8x8 b16 matrices, transposed: rows R0..R0+15 of a row-major tile at columns C..C+7 as an mma B fragment */\n"
    "__device__ __forceinline__ void tgc_ldmatrix_t2(unsigned *r, const void *row) {\n"
    "  const unsigned a = (unsigned)__cvta_generic_to_shared(row);\n"
    "  asm volatile(\"ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\\n\" : \"=r\"(r[0]), \"=r\"(r[1]) : \"r\"(a));\n"
    "}\n";

static const char *const MMA_F16 =
    "__device__ __forceinline__ __half tgc_zero() { return __float2half_rn(0.0f); }\n"
    "__device__ __forceinline__ unsigned tgc_pack(__half lo, __half hi) {\n"
    "  __half2 h = __halves2half2(lo, hi);\n"
    "  return *(unsigned *)&h;\n"
    "}\n"
    "__device__ __forceinline__ unsigned tgc_pack2(float lo, float hi) {\n"
    "  __half2 h = __floats2half2_rn(lo, hi);\n"
    "  return *(unsigned *)&h;\n"
    "}\n"
    "__device__ __forceinline__ void tgc_mma(float *c, const unsigned *a, const unsigned *b) {\n"
    "  asm volatile(\"mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, \"\n"
    "               \"{%8, %9}, {%0, %1, %2, %3};\\n\"\n"
    "               : \"+f\"(c[0]), \"+f\"(c[1]), \"+f\"(c[2]), \"+f\"(c[3])\n"
    "               : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b[0]), \"r\"(b[1]));\n"
    "}\n";
static const char *const MMA_BF16 =
    "__device__ __forceinline__ __nv_bfloat16 tgc_zero() { return __float2bfloat16_rn(0.0f); }\n"
    "__device__ __forceinline__ unsigned tgc_pack(__nv_bfloat16 lo, __nv_bfloat16 hi) {\n"
    "  __nv_bfloat162 h = __halves2bfloat162(lo, hi);\n"
    "  return *(unsigned *)&h;\n"
    "}\n"
    "__device__ __forceinline__ unsigned tgc_pack2(float lo, float hi) {\n"
    "  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);\n"
    "  return *(unsigned *)&h;\n"
    "}\n"
    "__device__ __forceinline__ void tgc_mma(float *c, const unsigned *a, const unsigned *b) {\n"
    "  asm volatile(\"mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, \"\n"
    "               \"{%8, %9}, {%0, %1, %2, %3};\\n\"\n"
    "               : \"+f\"(c[0]), \"+f\"(c[1]), \"+f\"(c[2]), \"+f\"(c[3])\n"
    "               : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b[0]), \"r\"(b[1]));\n"
    "}\n";

/* The attention op AT of a launch: q, k, v and the mask read as strided views (or computed into temporaries
 * first), the result written through a view of the launch's result (or to a temporary an epilogue reads). */
static bool gen_attention(gen *g, const tgc_op *at, const tgc_value *root, tgc_value *const *ins,
                          const tgc_value *const *outer, uint32_t nin, const tgc_value *result) {
  tgc_arena *ar = &g->m->arena;
  const tgc_value *av = &at->results[0];
  const tgc_type *qt = at->operands[0].value->type, *kt = at->operands[1].value->type,
                 *vt = at->operands[2].value->type;
  int64_t H, Hk, D, Dv;
  if (qt->rank != 4 || kt->rank != 4 || vt->rank != 4 || !tgc_dim_is_const(qt->dims[1], &H) ||
      !tgc_dim_is_const(kt->dims[1], &Hk) || !tgc_dim_is_const(qt->dims[3], &D) ||
      !tgc_dim_is_const(vt->dims[3], &Dv) || Hk <= 0 || H % Hk || D > 128 || Dv > 128 || D <= 0 || Dv <= 0) {
    snprintf(g->why, sizeof g->why, "attention needs rank-4 q/k/v with constant heads and head dims up to 128");
    return false;
  }
  tgc_dtype dt = qt->dtype;
  if ((dt != TGC_DT_F16 && dt != TGC_DT_BF16 && dt != TGC_DT_F32) || kt->dtype != dt || vt->dtype != dt) {
    snprintf(g->why, sizeof g->why, "attention on %s", tgc_dtype_name(dt));
    return false;
  }
  /* operands: views, else temporaries */
  view vw[4];
  uint32_t nops = at->noperands;
  for (uint32_t j = 0; j < nops; j++) {
    const tgc_value *x = at->operands[j].value;
    if (view_of(ar, x, ins, outer, nin, &vw[j]))
      continue;
    if (!value_kernel(g, "operand", x, ins, outer, nin, x) || !contiguous_view(ar, x, x->type, &vw[j]))
      return false;
  }
  if (nops == 4 && vw[3].rank > 4)
    return false;
  /* the result: a view of the launch's result, else a temporary */
  view ov;
  bool direct = contiguous_view(ar, result, root->type, &ov);
  for (const tgc_value *y = root; direct && y != av;) {
    const tgc_op *op = y->def;
    if (in_index(ins, nin, y) >= 0 || !op)
      direct = false;
    else if (op->opcode == TGC_OP_RESHAPE) {
      direct = reshape_view(ar, &ov, y->type, op->operands[0].value->type, &ov);
      y = op->operands[0].value;
    } else if (op->opcode == TGC_OP_TRANSPOSE) {
      const tgc_attr *perm = tgc_op_attr(op, "perm");
      view x = ov;
      for (uint32_t d = 0; d < y->type->rank; d++)
        x.st[perm->u.list.items[d]->u.i] = ov.st[d];
      ov = x;
      y = op->operands[0].value;
    } else
      direct = false;
  }
  if (!direct && !contiguous_view(ar, av, av->type, &ov))
    return false;
  /* the kernel */
  /* TPQ threads share a query row (its dot products end in a shuffle butterfly): more warps in flight than
   * one thread per row, which matters when there are few rows (batch 1, short sequences) */
  uint32_t tpq = (D % 8 == 0 && Dv % 8 == 0) ? 8 : (D % 4 == 0 && Dv % 4 == 0) ? 4 : 1, qpb = 8, tk = 32;
  uint32_t vec = 128 / (uint32_t)tgc_dtype_bits(dt);
  tgc_strbuf body, src;
  tgc_sb_init(&body);
  tgc_sb_init(&src);
  emitter e;
  memset(&e, 0, sizeof e);
  e.out = &body;
  e.indent = 1;
  e.m = g->m;
  const char *qix[4] = {"b", "h", "qi", "d"}, *kix[4] = {"b", "hk", "j", "d"}, *oix[4] = {"b", "h", "qi", "d"};
  const char *mix[4] = {"b", "h", "qi", "j"};
  tgc_strbuf qo, ko, vo, oo, mo;
  tgc_sb_init(&qo);
  tgc_sb_init(&ko);
  tgc_sb_init(&vo);
  tgc_sb_init(&oo);
  tgc_sb_init(&mo);
  view_index(&e, &qo, &vw[0], qix);
  view_index(&e, &ko, &vw[1], kix);
  view_index(&e, &vo, &vw[2], kix);
  view_index(&e, &oo, &ov, oix);
  bool bool_mask = false;
  if (nops == 4) {
    /* the mask broadcasts to [B, H, Sq, Sk]: align its dims at the right, size-1 dims read index 0 */
    view m = vw[3];
    view full;
    full.buf = m.buf;
    full.off = m.off;
    full.rank = 4;
    const tgc_type *mt = at->operands[3].value->type;
    for (uint32_t d = 0; d < 4; d++) {
      int64_t md = (int64_t)d - (int64_t)(4 - m.rank);
      full.st[d] = md < 0 || dim_is(mt->dims[md], 1) ? tgc_dim_const(ar, 0) : m.st[md];
    }
    view_index(&e, &mo, &full, mix);
    bool_mask = mt->dtype == TGC_DT_BOOL;
  }
  const char *scale = float_attr(&e, at, "scale", 1.0 / sqrt((double)D), false);
  bool causal = tgc_op_attr_bool(at, "causal", false);
  const char *sq = dim_str(&e, qt->dims[2]), *sk = dim_str(&e, kt->dims[2]);
  const char *T = storage_type(dt);
  /* tensor cores: f16/bf16, equal head dims up to 64 that are multiples of 16 */
  const char *force = getenv("TGC_ATTENTION"); /* "scalar": the CUDA-core kernel everywhere (for comparisons) */
  bool use_mma = (dt == TGC_DT_F16 || dt == TGC_DT_BF16) && D == Dv && D % 16 == 0 && D <= 64 &&
                 !(force && strcmp(force, "scalar") == 0);
  if (use_mma) {
    /* 16 query rows per block; its 4 warps split the keys (warp w takes every 4th tile of 32 keys), each with
     * its own online softmax, and the 4 partial states are merged at the end: short sequences get 4x the
     * warps in flight of one warp per row block */
    line(&e, "const long long b = blockIdx.z, h = blockIdx.y, hk = h / %lldLL;", (long long)(H / Hk));
    line(&e, "const long long sq = %s, sk = %s;", sq, sk);
    line(&e, "const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tg = lane & 3;");
    line(&e, "const long long q0 = (long long)blockIdx.x * BM;");
    line(&e, "__shared__ __align__(16) %s kv[NW][2][BN][KP]; /* per warp: its key tile and value tile */", T);
    line(&e, "__shared__ float wm[NW][BM], wl[NW][BM];        /* per warp: row max and row sum, for the merge */");
    line(&e, "%s(*ks)[KP] = kv[warp][0], (*vs)[KP] = kv[warp][1];", T);
    line(&e, "/* the block's 16 query rows as mma A fragments: register i holds row g (+8 if i is odd), columns");
    line(&e, " * 2 tg, 2 tg + 1 (+8 if i >= 2) of each 16-column chunk */");
    line(&e, "unsigned qf[D / 16][4];");
    line(&e, "#pragma unroll");
    line(&e, "for (int c = 0; c < D / 16; c++)");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int i = 0; i < 4; i++) {");
    line(&e, "    const long long qi = q0 + g + ((i & 1) ? 8 : 0);");
    line(&e, "    const int col = c * 16 + tg * 2 + ((i & 2) ? 8 : 0);");
    line(&e, "    %s lo = tgc_zero(), hi = tgc_zero();", T);
    line(&e, "    if (qi < sq) {");
    line(&e, "      long long d = col;");
    line(&e, "      lo = q[%s];", qo.data);
    line(&e, "      d = col + 1;");
    line(&e, "      hi = q[%s];", qo.data);
    line(&e, "    }");
    line(&e, "    qf[c][i] = tgc_pack(lo, hi);");
    line(&e, "  }");
    line(&e, "float o[DV / 8][4];");
    line(&e, "#pragma unroll");
    line(&e, "for (int t = 0; t < DV / 8; t++)");
    line(&e, "  o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;");
    line(&e, "float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.0f, 0.0f};");
    if (causal)
      line(&e, "const long long kend = min(sk, q0 + BM); /* later keys are masked for every row of the block */");
    else
      line(&e, "const long long kend = sk;");
    line(&e, "for (long long k0 = (long long)warp * BN; k0 < kend; k0 += NW * BN) {");
    line(&e, "  /* the mask of the lane's 16 scores (rows g, g + 8; keys 2 tg, 2 tg + 1 of each 8-key group): 0 where");
    line(&e, "   * a key is attended, -inf where not (bounds, causal, a bool mask), or the additive mask's value. A");
    line(&e, "   * tile that no row attends is skipped before its keys and values are read */");
    line(&e, "  float mk[BN / 8][4];");
    line(&e, "  bool any = false;");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int nt = 0; nt < BN / 8; nt++)");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int i = 0; i < 4; i++) {");
    line(&e, "      const long long qi = q0 + g + (i >> 1) * 8, j = k0 + nt * 8 + tg * 2 + (i & 1);");
    line(&e, "      bool keep = qi < sq && j < sk;");
    if (causal)
      line(&e, "      keep = keep && j <= qi;");
    if (nops == 4 && bool_mask)
      line(&e, "      keep = keep && mask[%s];", mo.data);
    if (nops == 4 && !bool_mask)
      line(&e, "      mk[nt][i] = keep ? tgc_ld(mask[%s]) : -INFINITY;", mo.data);
    else
      line(&e, "      mk[nt][i] = keep ? 0.0f : -INFINITY;");
    line(&e, "      any = any || keep;");
    line(&e, "    }");
    line(&e, "  if (!__any_sync(0xffffffffu, any))");
    line(&e, "    continue;");
    line(&e, "  __syncwarp(); /* the previous tile's fragments are read */");
    bool async = vec_ok(&vw[1], D, vec) && vec_ok(&vw[2], D, vec);
    for (int w = 0; w < 2; w++) {
      const char *tile = w ? "vs" : "ks", *ptr = w ? "v" : "k", *ix = w ? vo.data : ko.data;
      if (async) {
        /* asynchronous 16-byte copies: no registers held while they fly */
        line(&e, "  for (int x = lane; x < BN * D / VEC; x += 32) {");
        line(&e, "    const int jj = x / (D / VEC);");
        line(&e, "    const long long j = k0 + jj, d = (x %% (D / VEC)) * VEC;");
        line(&e, "    tgc_cp16(&%s[jj][d], &%s[j < sk ? %s : 0], j < sk);", tile, ptr, ix);
        line(&e, "  }");
      } else {
        line(&e, "  #pragma unroll");
        line(&e, "  for (int x = lane; x < BN * D; x += 32) {");
        line(&e, "    const int jj = x / D;");
        line(&e, "    const long long j = k0 + jj, d = x %% D;");
        line(&e, "    %s[jj][d] = j < sk ? %s[%s] : tgc_zero();", tile, ptr, ix);
        line(&e, "  }");
      }
    }
    if (async)
      line(&e, "  tgc_cp_wait();");
    line(&e, "  __syncwarp();");
    line(&e, "  /* S = Q K^T: 16 rows x BN keys, accumulators in the mma C layout (rows g, g + 8; columns 2 tg,");
    line(&e, "   * 2 tg + 1 of each 8-key tile) */");
    line(&e, "  float s[BN / 8][4];");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int nt = 0; nt < BN / 8; nt++) {");
    line(&e, "    s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int c = 0; c < D / 16; c++) {");
    line(&e, "      unsigned kb[2];");
    line(&e, "      kb[0] = *(const unsigned *)&ks[nt * 8 + g][c * 16 + tg * 2];");
    line(&e, "      kb[1] = *(const unsigned *)&ks[nt * 8 + g][c * 16 + tg * 2 + 8];");
    line(&e, "      tgc_mma(s[nt], qf[c], kb);");
    line(&e, "    }");
    line(&e, "  }");
    line(&e, "  float mx[2] = {mrow[0], mrow[1]};");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int nt = 0; nt < BN / 8; nt++)");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int i = 0; i < 4; i++) {");
    line(&e, "      s[nt][i] = s[nt][i] * %s + mk[nt][i];", scale);
    line(&e, "      mx[i >> 1] = fmaxf(mx[i >> 1], s[nt][i]);");
    line(&e, "    }");
    line(&e, "  float ref[2], corr[2];");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int r = 0; r < 2; r++) {");
    line(&e, "    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));");
    line(&e, "    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));");
    line(&e, "    ref[r] = mx[r] == -INFINITY ? 0.0f : mx[r]; /* nothing attended yet: exponentials are 0 */");
    line(&e, "    corr[r] = expf(mrow[r] - ref[r]);");
    line(&e, "    mrow[r] = mx[r];");
    line(&e, "    lrow[r] *= corr[r];");
    line(&e, "  }");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int nt = 0; nt < BN / 8; nt++)");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int i = 0; i < 4; i++) {");
    line(&e, "      s[nt][i] = expf(s[nt][i] - ref[i >> 1]);");
    line(&e, "      lrow[i >> 1] += s[nt][i];");
    line(&e, "    }");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int t = 0; t < DV / 8; t++) {");
    line(&e, "    o[t][0] *= corr[0];");
    line(&e, "    o[t][1] *= corr[0];");
    line(&e, "    o[t][2] *= corr[1];");
    line(&e, "    o[t][3] *= corr[1];");
    line(&e, "  }");
    line(&e, "  /* O += P V: P's accumulators are already in the A layout, two 8-key tiles per 16-key chunk */");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int c = 0; c < BN / 16; c++) {");
    line(&e, "    unsigned pa[4];");
    line(&e, "    pa[0] = tgc_pack2(s[2 * c][0], s[2 * c][1]);");
    line(&e, "    pa[1] = tgc_pack2(s[2 * c][2], s[2 * c][3]);");
    line(&e, "    pa[2] = tgc_pack2(s[2 * c + 1][0], s[2 * c + 1][1]);");
    line(&e, "    pa[3] = tgc_pack2(s[2 * c + 1][2], s[2 * c + 1][3]);");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int t = 0; t < DV / 8; t++) {");
    line(&e, "      unsigned vb[2];");
    line(&e, "      tgc_ldmatrix_t2(vb, &vs[c * 16 + (lane & 15)][t * 8]);");
    line(&e, "      tgc_mma(o[t], pa, vb);");
    line(&e, "    }");
    line(&e, "  }");
    line(&e, "}");
    line(&e, "/* merge the warps' states: M = max of the row maxima, each warp's sum and output scaled by");
    line(&e, " * exp(m_w - M); the key/value tiles' memory holds the partial outputs */");
    line(&e, "#pragma unroll");
    line(&e, "for (int r = 0; r < 2; r++) {");
    line(&e, "  lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 1);");
    line(&e, "  lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 2);");
    line(&e, "}");
    line(&e, "__syncthreads(); /* every warp is done with its tiles */");
    line(&e, "float (*wo)[BM][DV] = (float (*)[BM][DV])&kv[0][0][0][0];");
    line(&e, "if (tg == 0) {");
    line(&e, "  wm[warp][g] = mrow[0];");
    line(&e, "  wm[warp][g + 8] = mrow[1];");
    line(&e, "  wl[warp][g] = lrow[0];");
    line(&e, "  wl[warp][g + 8] = lrow[1];");
    line(&e, "}");
    line(&e, "#pragma unroll");
    line(&e, "for (int t = 0; t < DV / 8; t++)");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int i = 0; i < 4; i++)");
    line(&e, "    wo[warp][g + (i >> 1) * 8][t * 8 + tg * 2 + (i & 1)] = o[t][i];");
    line(&e, "__syncthreads();");
    line(&e, "for (int x = threadIdx.x; x < BM * DV; x += NT) {");
    line(&e, "  const int row = x / DV;");
    line(&e, "  const long long qi = q0 + row, d = x %% DV;");
    line(&e, "  if (qi >= sq)");
    line(&e, "    continue;");
    line(&e, "  float M = -INFINITY, L = 0.0f, O = 0.0f;");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int w = 0; w < NW; w++)");
    line(&e, "    M = fmaxf(M, wm[w][row]);");
    line(&e, "  const float ref = M == -INFINITY ? 0.0f : M;");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int w = 0; w < NW; w++) {");
    line(&e, "    const float f = expf(wm[w][row] - ref);");
    line(&e, "    L += f * wl[w][row];");
    line(&e, "    O += f * wo[w][row][d];");
    line(&e, "  }");
    line(&e, "  tgc_st(&out[%s], L > 0.0f ? O / L : NAN); /* a fully masked row is NaN, as in torch */", oo.data);
    line(&e, "}");
  } else {
    line(&e, "const long long b = blockIdx.z, h = blockIdx.y, hk = h / %lldLL;", (long long)(H / Hk));
    line(&e, "const long long sq = %s, sk = %s;", sq, sk);
    line(&e, "const int part = threadIdx.x %% TPQ;");
    line(&e, "const long long qi = (long long)blockIdx.x * QPB + threadIdx.x / TPQ;");
    line(&e, "const bool active = qi < sq;");
    line(&e, "float qv[D / TPQ], acc[DV / TPQ];");
    line(&e, "#pragma unroll");
    line(&e, "for (int t = 0; t < D / TPQ; t++) {");
    line(&e, "  const long long d = t * TPQ + part;");
    line(&e, "  qv[t] = active ? tgc_ld(q[%s]) * %s : 0.0f;", qo.data, scale);
    line(&e, "}");
    line(&e, "#pragma unroll");
    line(&e, "for (int t = 0; t < DV / TPQ; t++)");
    line(&e, "  acc[t] = 0.0f;");
    line(&e, "float mx = -INFINITY, l = 0.0f;");
    line(&e, "__shared__ float ks[TK][D + 1], vs[TK][DV + 1];");
    if (nops == 4)
      line(&e, "__shared__ float mt[QPB][TK];");
    if (causal)
      line(&e, "const long long kend = min(sk, (long long)(blockIdx.x + 1) * QPB); /* later keys are masked */");
    else
      line(&e, "const long long kend = sk;");
    line(&e, "for (long long k0 = 0; k0 < kend; k0 += TK) {");
    line(&e, "  __syncthreads();");
    /* the tiles: constant trip counts, unrolled, so that all of a thread's loads are in flight together; 16-byte
     * loads where the view's head dim is contiguous and every offset is a multiple of the vector */
    for (int w = 0; w < 2; w++) {
      const char *tile = w ? "vs" : "ks", *ptr = w ? "v" : "k", *dd = w ? "DV" : "D";
      const char *ix = w ? vo.data : ko.data;
      if (vec_ok(&vw[w + 1], w ? Dv : D, vec)) {
        line(&e, "#pragma unroll");
        line(&e, "  for (int x = threadIdx.x; x < TK * %s / VEC; x += NT) {", dd);
        line(&e, "    const long long j = k0 + x / (%s / VEC), d = (x %% (%s / VEC)) * VEC;", dd, dd);
        line(&e, "    if (j < sk)");
        line(&e, "      tgc_ld_vec(&%s[%s], &%s[x / (%s / VEC)][d]);", ptr, ix, tile, dd);
        line(&e, "    else");
        line(&e, "      for (int u = 0; u < VEC; u++)");
        line(&e, "        %s[x / (%s / VEC)][d + u] = 0.0f;", tile, dd);
        line(&e, "  }");
      } else {
        line(&e, "#pragma unroll");
        line(&e, "  for (int x = threadIdx.x; x < TK * %s; x += NT) {", dd);
        line(&e, "    const long long j = k0 + x / %s, d = x %% %s;", dd, dd);
        line(&e, "    %s[x / %s][d] = j < sk ? tgc_ld(%s[%s]) : 0.0f;", tile, dd, ptr, ix);
        line(&e, "  }");
      }
    }
    if (nops == 4) {
      /* the mask tile of the block's query rows, as 0 / -inf (bool) or the additive value, in shared memory */
      line(&e, "#pragma unroll");
      line(&e, "  for (int x = threadIdx.x; x < QPB * TK; x += NT) {");
      line(&e, "    const long long qi = (long long)blockIdx.x * QPB + x / TK, j = k0 + x %% TK;");
      if (bool_mask)
        line(&e, "    mt[x / TK][x %% TK] = qi < sq && j < sk && mask[%s] ? 0.0f : -INFINITY;", mo.data);
      else
        line(&e, "    mt[x / TK][x %% TK] = qi < sq && j < sk ? tgc_ld(mask[%s]) : -INFINITY;", mo.data);
      line(&e, "  }");
    }
    line(&e, "  __syncthreads();");
    line(&e, "  const int nk = (int)min((long long)TK, kend - k0);");
    /* KU keys at a time: their dot products, shuffles and exponentials are independent, so their latencies
     * overlap; one rescale of the accumulators per group */
    line(&e, "  for (int jj = 0; jj < nk; jj += KU) {");
    line(&e, "    float s[KU];");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int u = 0; u < KU; u++) {");
    line(&e, "      s[u] = 0.0f;");
    line(&e, "      #pragma unroll");
    line(&e, "      for (int t = 0; t < D / TPQ; t++)");
    line(&e, "        s[u] += qv[t] * ks[jj + u][t * TPQ + part];");
    line(&e, "    }");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int o = TPQ / 2; o > 0; o >>= 1)");
    line(&e, "      #pragma unroll");
    line(&e, "      for (int u = 0; u < KU; u++)");
    line(&e, "        s[u] += __shfl_xor_sync(0xffffffffu, s[u], o);");
    line(&e, "    float mn = mx;");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int u = 0; u < KU; u++) {");
    line(&e, "      const long long j = k0 + jj + u;");
    line(&e, "      bool keep = active && jj + u < nk;");
    if (causal)
      line(&e, "      keep = keep && j <= qi;");
    else
      line(&e, "      (void)j;");
    if (nops == 4)
      line(&e, "      s[u] += mt[threadIdx.x / TPQ][jj + u]; /* -inf where masked */");
    line(&e, "      s[u] = keep ? s[u] : -INFINITY;");
    line(&e, "      mn = fmaxf(mn, s[u]);");
    line(&e, "    }");
    line(&e, "    if (mn > -INFINITY) {");
    line(&e, "      const float corr = expf(mx - mn); /* 0 while nothing was kept yet */");
    line(&e, "      float p[KU];");
    line(&e, "      #pragma unroll");
    line(&e, "      for (int u = 0; u < KU; u++) {");
    line(&e, "        p[u] = expf(s[u] - mn);");
    line(&e, "        l = (u == 0 ? l * corr : l) + p[u];");
    line(&e, "      }");
    line(&e, "      #pragma unroll");
    line(&e, "      for (int t = 0; t < DV / TPQ; t++) {");
    line(&e, "        float a = acc[t] * corr;");
    line(&e, "        #pragma unroll");
    line(&e, "        for (int u = 0; u < KU; u++)");
    line(&e, "          a += p[u] * vs[jj + u][t * TPQ + part];");
    line(&e, "        acc[t] = a;");
    line(&e, "      }");
    line(&e, "      mx = mn;");
    line(&e, "    }");
    line(&e, "  }");
    line(&e, "}");
    line(&e, "if (active)");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int t = 0; t < DV / TPQ; t++) {");
    line(&e, "    const long long d = t * TPQ + part;");
    line(&e, "    tgc_st(&out[%s], l > 0.0f ? acc[t] / l : NAN); /* a fully masked row is NaN, as in torch */", oo.data);
    line(&e, "  }");
  }
  char name[96];
  kernel_name(g, name, sizeof name, "attention");
  tgc_sb_printf(&src, "// %s\n", g->where);
  tgc_sb_puts(&src, HEADERS);
  if (use_mma) {
    tgc_sb_printf(&src, "#define D %lld\n#define DV %lld\n#define BM 16 /* query rows per block */\n"
                        "#define BN 32 /* keys per tile */\n#define NW 4 /* warps per block, splitting the keys */\n"
                        "#define NT (32 * NW) /* threads per block */\n"
                        "#define KP (D + 8) /* padded tile row: conflict-free fragment loads */\n"
                        "#define VEC %u /* elements per 16-byte load */\n", (long long)D, (long long)Dv, vec);
    tgc_sb_puts(&src, ATTN_HELPERS);
    tgc_sb_puts(&src, dt == TGC_DT_F16 ? MMA_F16 : MMA_BF16);
    tgc_sb_puts(&src, MMA_COMMON);
  } else {
    tgc_sb_printf(&src, "#define D %lld\n#define DV %lld\n#define TPQ %u /* threads per query row */\n"
                        "#define QPB %u /* query rows per block */\n#define NT (QPB * TPQ) /* threads per block */\n"
                        "#define TK %u /* keys per shared-memory tile */\n#define KU 4 /* keys per step of the online softmax */\n"
                        "#define VEC %u /* elements per 16-byte load */\n",
                  (long long)D, (long long)Dv, tpq, qpb, tk, vec);
    tgc_sb_puts(&src, ATTN_HELPERS);
  }
  tgc_sb_printf(&src, "\nextern \"C\" __global__ void %s(const %s *__restrict__ q, const %s *__restrict__ k, "
                      "const %s *__restrict__ v, ", name, T, T, T);
  if (nops == 4)
    tgc_sb_printf(&src, "const %s *__restrict__ mask, ", storage_type(at->operands[3].value->type->dtype));
  tgc_sb_printf(&src, "%s *__restrict__ out", T);
  for (uint32_t s = 0; s < e.nsyms; s++)
    tgc_sb_printf(&src, ", long long s_%s", e.syms[s]->name);
  tgc_sb_puts(&src, ", int *__restrict__ err) {\n");
  tgc_sb_puts(&src, body.data);
  tgc_sb_puts(&src, "}\n");
  const tgc_value **args = tgc_arena_alloc(ar, sizeof *args * 5);
  uint32_t na = 0;
  for (uint32_t j = 0; j < nops; j++)
    args[na++] = vw[j].buf;
  args[na++] = direct ? result : av;
  tgc_cuda_kernel *kk = add_kernel(g, "attention", tgc_arena_strndup(ar, src.data, src.len), name, args, na, &e);
  kk->grid = TGC_CUDA_GRID_ATTENTION;
  kk->count = qt->dims[2];
  kk->gy = qt->dims[1];
  kk->gz = qt->dims[0];
  kk->block = use_mma ? 128 : qpb * tpq;
  kk->per_block = use_mma ? 16 : qpb;
  tgc_sb_free(&qo);
  tgc_sb_free(&ko);
  tgc_sb_free(&vo);
  tgc_sb_free(&oo);
  tgc_sb_free(&mo);
  tgc_sb_free(&body);
  tgc_sb_free(&src);
  if (direct)
    return true;
  return epilogue_kernel(g, av, root, ins, outer, nin, result);
}

/* ---- the program ---- */

static void add_pending(tgc_cuda_module *cm, tgc_module *m, const tgc_op *op, const char *why) {
  const char *w = tgc_arena_strndup(&m->arena, why, strlen(why));
  if (!cm->npending)
    cm->why = w;
  cm->pending = tgc_arena_grow(&m->arena, cm->pending, cm->npending, cm->npending + 1, sizeof *cm->pending);
  cm->pending_why =
      tgc_arena_grow(&m->arena, cm->pending_why, cm->npending, cm->npending + 1, sizeof *cm->pending_why);
  cm->pending_why[cm->npending] = w;
  cm->pending[cm->npending++] = op;
}

static const tgc_op *find_op(const tgc_block *r, tgc_opcode code, uint32_t *count) {
  const tgc_op *found = NULL;
  *count = 0;
  for (const tgc_op *o = r->first; o; o = o->next)
    if (o->opcode == code) {
      found = o;
      (*count)++;
    }
  return found;
}

/* One launch: its steps, or false (and the program unchanged) when some op cannot be generated. */
static bool gen_launch(gen *g, const tgc_op *op) {
  tgc_arena *ar = &g->m->arena;
  if (op->opcode == TGC_OP_FUSION) {
    const tgc_block *r = op->region;
    if (!r || !r->last || r->last->opcode != TGC_OP_YIELD || op->nresults != 1 || !op->results[0].type) {
      snprintf(g->why, sizeof g->why, "a fusion with several results");
      return false;
    }
    const tgc_value *root = r->last->operands[0].value;
    const tgc_value **outer = tgc_arena_alloc(ar, sizeof *outer * (r->nargs + 1));
    for (uint32_t j = 0; j < r->nargs; j++)
      outer[j] = op->operands[j].value;
    const char *kind = tgc_op_attr_str(op, "kind", "fusion");
    uint32_t n;
    if (strcmp(kind, "gemm_epilogue") == 0) {
      const tgc_op *mm = find_op(r, TGC_OP_MATMUL, &n);
      if (n == 1 && gen_gemm(g, mm, root, r->args, outer, r->nargs, &op->results[0]))
        return true;
    } else if (strcmp(kind, "attention") == 0) {
      const tgc_op *at = find_op(r, TGC_OP_ATTENTION, &n);
      if (n == 1)
        return gen_attention(g, at, root, r->args, outer, r->nargs, &op->results[0]);
    }
    return value_kernel(g, "pointwise", root, r->args, outer, r->nargs, &op->results[0]);
  }
  tgc_value **ins = tgc_arena_alloc(ar, sizeof *ins * (op->noperands + 1));
  for (uint32_t j = 0; j < op->noperands; j++)
    ins[j] = op->operands[j].value;
  if (op->opcode == TGC_OP_MATMUL && gen_gemm(g, op, &op->results[0], ins, (const tgc_value *const *)ins,
                                              op->noperands, &op->results[0]))
    return true;
  if (op->opcode == TGC_OP_ATTENTION)
    return gen_attention(g, op, &op->results[0], ins, (const tgc_value *const *)ins, op->noperands, &op->results[0]);
  for (uint32_t r = 0; r < op->nresults; r++)
    if (!value_kernel(g, "pointwise", &op->results[r], ins, (const tgc_value *const *)ins, op->noperands,
                      &op->results[r]))
      return false;
  return true;
}

/* ---- padded GEMM results ---- */

/* Whether V's storage is read by a step other than writing gemm GI, or by the function's result through a
 * reshape that changes its last dim. */
static bool read_in_program(const tgc_cuda_module *cm, const tgc_value *v, uint32_t gi) {
  for (uint32_t s = 0; s < cm->nsteps; s++) {
    const tgc_cuda_step *st = &cm->steps[s];
    if (st->gemm) {
      const tgc_cuda_gemm *g = &cm->gemms[st->index];
      const tgc_value *vs[5] = {g->a, g->b, g->c, g->bias, st->index == gi ? NULL : g->d};
      for (int j = 0; j < 5; j++)
        if (vs[j] && buffer_storage(vs[j]) == v)
          return true;
    } else {
      const tgc_cuda_kernel *k = &cm->kernels[st->index];
      for (uint32_t j = 0; j < k->nargs; j++)
        if (buffer_storage(k->args[j]) == v)
          return true;
    }
  }
  return false;
}

/* Pads the rows of every GEMM result that only the function returns to 16 bytes, when they are not already a
 * multiple of it (see tgc_cuda_gemm.ldd). */
static void pad_gemm_rows(tgc_cuda_module *cm) {
  const tgc_op *ret = cm->func ? cm->func->body->last : NULL;
  if (!ret || ret->opcode != TGC_OP_RETURN)
    return;
  for (uint32_t gi = 0; gi < cm->ngemms; gi++) {
    tgc_cuda_gemm *g = &cm->gemms[gi];
    int64_t n;
    uint32_t es = (uint32_t)(tgc_dtype_bits(g->dtype) / 8);
    int64_t k;
    const tgc_value *w = buffer_storage(g->b);
    if (g->c || g->bias || !g->trans_b || g->batch_b || !w->def || w->def->opcode != TGC_OP_PARAM || !es ||
        !tgc_dim_is_const(g->n, &n) || n <= 0 || (n * es) % 16 == 0 || !tgc_dim_is_const(g->k, &k))
      continue;
    const tgc_value *v = buffer_storage(g->d);
    bool returned = false, plain = true;
    for (uint32_t i = 0; i < ret->noperands; i++) {
      const tgc_value *r = ret->operands[i].value;
      if (buffer_storage(r) != v)
        continue;
      returned = true;
      int64_t last;
      plain = plain && r->type->rank > 0 && tgc_dim_is_const(r->type->dims[r->type->rank - 1], &last) && last == n;
    }
    if (returned && plain && !read_in_program(cm, v, gi))
      g->ldd = (n + 16 / es - 1) / (16 / es) * (16 / es);
  }
}

/* The function the program is made of: @main, else the first. */
static const tgc_func *entry_func(const tgc_module *m, const char *entry) {
  if (entry)
    return tgc_module_find_func(m, entry);
  const tgc_func *f = tgc_module_find_func(m, "main");
  return f ? f : m->funcs;
}

static const tgc_op *first_untyped(const tgc_block *b) {
  for (const tgc_op *o = b->first; o; o = o->next) {
    for (uint32_t i = 0; i < o->nresults; i++)
      if (!o->results[i].type)
        return o;
    const tgc_op *r = o->region ? first_untyped(o->region) : NULL;
    if (r)
      return r;
  }
  return NULL;
}

const tgc_op *tgc_cuda_first_untyped(const tgc_module *m, const char *entry) {
  const tgc_func *f = entry_func(m, entry);
  return f ? first_untyped(f->body) : NULL;
}

void tgc_cuda_generate(tgc_module *m, const char *entry, tgc_cuda_module *cm) {
  memset(cm, 0, sizeof *cm);
  const tgc_func *f = entry_func(m, entry);
  if (!f)
    return;
  cm->func = f;
  /* every kernel is sized and typed from the values' types: without them nothing is generated */
  const tgc_op *untyped = first_untyped(f->body);
  if (untyped) {
    add_pending(cm, m, untyped, TGC_CUDA_NEEDS_TYPES);
    return;
  }
  gen g;
  memset(&g, 0, sizeof g);
  g.m = m;
  g.cm = cm;
  for (const tgc_op *op = f->body->first; op; op = op->next) {
    if (op->opcode == TGC_OP_PARAM || op->opcode == TGC_OP_CONSTANT || op->opcode == TGC_OP_RESHAPE)
      continue;
    if (op->opcode == TGC_OP_RETURN) {
      /* a returned constant (written, or what folding left) is computed into its buffer by a kernel */
      for (uint32_t j = 0; j < op->noperands; j++) {
        uint32_t nk = cm->nkernels, ns = cm->nsteps;
        g.why[0] = 0;
        if (!ensure_buffer(&g, op->operands[j].value)) {
          cm->nkernels = nk;
          cm->nsteps = ns;
          add_pending(cm, m, constant_def(op->operands[j].value), g.why[0] ? g.why : "not generated");
        }
      }
      continue;
    }
    g.launch = op;
    snprintf(g.where, sizeof g.where, "%s at %s:%u:%u",
             op->opcode == TGC_OP_FUSION ? tgc_op_attr_str(op, "kind", "fusion") : tgc_op_name(op->opcode),
             op->loc.file ? op->loc.file : "?", op->loc.line, op->loc.col);
    uint32_t nk = cm->nkernels, ng = cm->ngemms, ns = cm->nsteps;
    g.why[0] = 0;
    bool ok;
    if (tgc_op_info_of(op->opcode)->flags & TGC_OPF_COLLECTIVE) {
      snprintf(g.why, sizeof g.why, "collectives run through NCCL (not yet)");
      ok = false;
    } else if (op->opcode == TGC_OP_QUANTIZE || op->opcode == TGC_OP_DEQUANTIZE) {
      snprintf(g.why, sizeof g.why, "quantized kernels are not generated yet");
      ok = false;
    } else {
      ok = gen_launch(&g, op);
    }
    if (!ok) {
      cm->nkernels = nk;
      cm->ngemms = ng;
      cm->nsteps = ns;
      add_pending(cm, m, op, g.why[0] ? g.why : "not generated");
    }
    g.n++;
  }
  pad_gemm_rows(cm);
}

char *tgc_cuda_canonical_source(const tgc_cuda_kernel *k) {
  const char *src = k->source;
  if (strncmp(src, "//", 2) == 0 && strchr(src, '\n'))
    src = strchr(src, '\n') + 1;
  size_t nl = strlen(k->name), cap = strlen(src) + 64, len = 0;
  char *out = tgc_xmalloc(cap);
  for (const char *s = src; *s;) {
    const char *hit = strstr(s, k->name);
    if (!hit) {
      size_t r = strlen(s);
      memcpy(out + len, s, r);
      len += r;
      break;
    }
    memcpy(out + len, s, (size_t)(hit - s));
    len += (size_t)(hit - s);
    memcpy(out + len, "tgc_kernel", 10);
    len += 10;
    s = hit + nl;
  }
  out[len] = 0;
  return out;
}

static void print_dim(tgc_strbuf *out, const tgc_dim *d) {
  if (d)
    tgc_dim_print(d, out);
  else
    tgc_sb_puts(out, "?");
}

static void print_value(tgc_strbuf *out, const tgc_value *v) {
  if (v->name)
    tgc_sb_printf(out, "%%%s", v->name);
  else
    tgc_sb_puts(out, "%<unnamed>");
}

void tgc_cuda_print(const tgc_cuda_module *cm, tgc_strbuf *out) {
  tgc_sb_printf(out, "// CUDA program: %u steps (%u kernels, %u cuBLASLt GEMMs)\n", cm->nsteps, cm->nkernels, cm->ngemms);
  for (uint32_t s = 0; s < cm->nsteps; s++) {
    const tgc_cuda_step *st = &cm->steps[s];
    if (st->gemm) {
      const tgc_cuda_gemm *gm = &cm->gemms[st->index];
      tgc_sb_printf(out, "// ===== gemm %u: cuBLASLt, %s =====\n// D = ", st->index, tgc_dtype_name(gm->dtype));
      print_value(out, gm->d);
      tgc_sb_puts(out, " [batch ");
      print_dim(out, gm->batch);
      tgc_sb_puts(out, "] [m ");
      print_dim(out, gm->m);
      tgc_sb_puts(out, ", n ");
      print_dim(out, gm->n);
      tgc_sb_puts(out, ", k ");
      print_dim(out, gm->k);
      tgc_sb_puts(out, "], A = ");
      print_value(out, gm->a);
      bool one = dim_is(gm->batch, 1);
      tgc_sb_printf(out, "%s%s, B = ", gm->trans_a ? "^T" : "", gm->batch_a || one ? "" : " (shared)");
      print_value(out, gm->b);
      tgc_sb_printf(out, "%s%s, epilogue %s", gm->trans_b ? "^T" : "", gm->batch_b || one ? "" : " (shared)",
                    tgc_cuda_epilogue_name(gm->epilogue));
      if (gm->ldd)
        tgc_sb_printf(out, ", padded to n %lld (16-byte rows; B gets zero rows)", (long long)gm->ldd);
      if (gm->bias) {
        tgc_sb_puts(out, ", bias = ");
        print_value(out, gm->bias);
      }
      if (gm->c) {
        tgc_sb_puts(out, ", C = ");
        print_value(out, gm->c);
      }
      const tgc_op *op = gm->op;
      tgc_sb_printf(out, "\n// (%s at %s:%u:%u)\n\n",
                    op->opcode == TGC_OP_FUSION ? tgc_op_attr_str(op, "kind", "fusion") : tgc_op_name(op->opcode),
                    op->loc.file ? op->loc.file : "?", op->loc.line, op->loc.col);
      continue;
    }
    const tgc_cuda_kernel *k = &cm->kernels[st->index];
    tgc_sb_printf(out, "// ===== kernel %s (%s) =====\n", k->name, k->kind);
    tgc_sb_puts(out, k->source);
    tgc_sb_putc(out, '\n');
  }
  if (cm->npending) {
    tgc_sb_printf(out, "// ===== %u launches not generated (%s) =====\n", cm->npending, cm->why);
    for (uint32_t i = 0; i < cm->npending; i++) {
      const tgc_op *op = cm->pending[i];
      tgc_sb_printf(out, "//   %s at %s:%u:%u: %s\n",
                    op->opcode == TGC_OP_FUSION ? tgc_op_attr_str(op, "kind", "fusion") : tgc_op_name(op->opcode),
                    op->loc.file ? op->loc.file : "?", op->loc.line, op->loc.col, cm->pending_why[i]);
    }
  }
}

/* ---- the program's buffers ---- */

static const tgc_value *buffer_storage(const tgc_value *v) {
  while (v->def && v->def->opcode == TGC_OP_RESHAPE && v->def->parent && v->def->parent->parent_op == NULL)
    v = v->def->operands[0].value;
  return v;
}

static void use_buffer(tgc_cuda_buffer **bs, uint32_t *n, uint32_t *cap, const tgc_value *v, int step) {
  v = buffer_storage(v);
  uint32_t i = 0;
  while (i < *n && (*bs)[i].v != v)
    i++;
  if (i == *n) {
    if (*n == *cap) {
      *cap = *cap ? *cap * 2 : 64;
      *bs = tgc_xrealloc(*bs, sizeof **bs * *cap);
    }
    tgc_cuda_buf_kind kind = !v->def ? TGC_CUDA_BUF_INPUT
                             : v->def->opcode == TGC_OP_PARAM ? TGC_CUDA_BUF_PARAM
                                                              : TGC_CUDA_BUF_TEMP;
    (*bs)[(*n)++] = (tgc_cuda_buffer){v, kind, step, step, 0, 0};
  }
  if (step > (*bs)[i].last)
    (*bs)[i].last = step;
}

tgc_cuda_buffer *tgc_cuda_buffers(const tgc_cuda_module *cm, uint32_t *n) {
  tgc_cuda_buffer *bs = NULL;
  uint32_t cap = 0;
  *n = 0;
  for (uint32_t s = 0; s < cm->nsteps; s++) {
    const tgc_cuda_step *st = &cm->steps[s];
    if (st->gemm) {
      const tgc_cuda_gemm *g = &cm->gemms[st->index];
      const tgc_value *vs[5] = {g->a, g->b, g->c, g->bias, g->d};
      for (int j = 0; j < 5; j++)
        if (vs[j])
          use_buffer(&bs, n, &cap, vs[j], (int)s);
      int64_t gn, gk;
      if (g->ldd && tgc_dim_is_const(g->n, &gn) && tgc_dim_is_const(g->k, &gk))
        for (uint32_t i = 0; i < *n; i++) {
          if (bs[i].v == buffer_storage(g->d))
            bs[i].pitch = g->ldd;
          if (bs[i].v == buffer_storage(g->b) && (g->ldd - gn) * gk > bs[i].tail)
            bs[i].tail = (g->ldd - gn) * gk;
        }
    } else {
      const tgc_cuda_kernel *k = &cm->kernels[st->index];
      for (uint32_t j = 0; j < k->nargs; j++)
        use_buffer(&bs, n, &cap, k->args[j], (int)s);
    }
  }
  const tgc_op *ret = cm->func ? cm->func->body->last : NULL;
  for (uint32_t i = 0; ret && i < ret->noperands; i++)
    use_buffer(&bs, n, &cap, ret->operands[i].value, (int)cm->nsteps);
  if (!bs)
    bs = tgc_xcalloc(1, sizeof *bs);
  return bs;
}

bool tgc_cuda_buffer_bytes(const tgc_cuda_buffer *b, const char *const *names, const int64_t *sizes, uint32_t n,
                           uint64_t *bytes) {
  const tgc_type *t = b->v->type;
  uint64_t r = (uint64_t)((tgc_dtype_bits(t->dtype) + 7) / 8);
  bool over = false;
  for (uint32_t d = 0; d < t->rank && !over; d++) {
    const tgc_dim *dim = t->dims[d];
    int64_t sum = 0;
    for (uint32_t i = 0; i < dim->nterms && !over; i++) {
      int64_t term = dim->terms[i].coeff;
      for (uint32_t j = 0; j < dim->terms[i].nsyms && !over; j++) {
        uint32_t q = 0;
        while (q < n && strcmp(names[q], dim->terms[i].syms[j]->name) != 0)
          q++;
        over = __builtin_mul_overflow(term, q < n ? sizes[q] : 0, &term);
      }
      over = over || __builtin_add_overflow(sum, term, &sum);
    }
    if (d == t->rank - 1 && b->pitch && sum > 0) /* padded rows */
      sum = b->pitch;
    over = over || __builtin_mul_overflow(r, (uint64_t)(sum > 0 ? sum : 0), &r);
  }
  *bytes = r;
  return !over && r <= ((uint64_t)1 << 62);
}

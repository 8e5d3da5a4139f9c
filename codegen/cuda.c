/* CUDA C emitter for pointwise launches. A kernel computes one output element per thread: it turns the linear
 * index into the output's multi-index, then evaluates the group's ops as an expression tree, each value at the
 * multi-index its consumer needs (broadcasts drop or zero dims, transposes permute them, slices offset them,
 * reshapes go through the linear index, concats branch), loading inputs at row-major offsets. Symbolic dims are
 * kernel parameters, so a new batch size does not recompile. Math is fp32 (double for f64, exact 64-bit
 * integers for integer values); storage is the tensor's dtype (f16 and bf16 through cuda_fp16.h/cuda_bf16.h).
 * Groups are trees (fusion grows along single-user values), so nothing is evaluated twice. */
#include "cuda.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lower.h"

/* ---- the emitter: one place that handles indentation ---- */

typedef struct {
  tgc_strbuf *out;
  int indent;
  int next; /* fresh variable numbers */
  tgc_module *m;
  const tgc_sym **syms; /* the symbols a kernel takes as parameters */
  uint32_t nsyms, symcap;
  bool failed;
  char why[256];
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

typedef struct {
  uint32_t rank;
  const char *ix[TGC_RT_MAX_RANK];
} index_vec;

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
  /* region arguments fed by a one-value constant outside: inlined as literals, not loaded */
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

static const char *load(emitter *e, int in, const tgc_value *v, const index_vec *I) {
  const tgc_type *t = v->type;
  const char *off = linearize(e, I, t);
  const char *r = fresh(e, "v");
  const char *ct = compute_type(t->dtype);
  switch (t->dtype) {
  case TGC_DT_F16:
    line(e, "const float %s = __half2float(in%d[%s]);", r, in, off);
    break;
  case TGC_DT_BF16:
    line(e, "const float %s = __bfloat162float(in%d[%s]);", r, in, off);
    break;
  case TGC_DT_F8E4M3:
  case TGC_DT_F8E5M2:
    line(e, "const float %s = (float)in%d[%s];", r, in, off);
    break;
  default:
    line(e, "const %s %s = (%s)in%d[%s];", ct, r, ct, in, off);
    break;
  }
  return r;
}

static const char *unary_expr(const tgc_op *op, const char *x, bool dbl, char *buf, size_t n) {
  const char *f = dbl ? "" : "f"; /* float math functions end in f */
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
  case TGC_OP_RELU: snprintf(buf, n, "(%s > 0 ? %s : 0)", x, x); break;
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

static const char *eval_op(emitter *e, const kernel_src *k, const tgc_op *op, const tgc_value *v, const index_vec *I) {
  const tgc_type *t = v->type;
  const char *ct = compute_type(t->dtype);
  bool dbl = t->dtype == TGC_DT_F64;
  const char *r = fresh(e, "v");
  char buf[512];
  switch (op->opcode) {
  case TGC_OP_CONSTANT: {
    const tgc_attr *a = tgc_op_attr(op, "value");
    while (a && a->kind == TGC_ATTR_LIST && a->u.list.n == 1)
      a = a->u.list.items[0];
    if (!a || a->kind == TGC_ATTR_LIST) {
      fail(e, "a constant with several values");
      return "0";
    }
    if (a->kind == TGC_ATTR_FLOAT)
      line(e, "const %s %s = (%s)%.17g;", ct, r, ct, a->u.f);
    else if (a->kind == TGC_ATTR_BOOL)
      line(e, "const %s %s = (%s)%d;", ct, r, ct, a->u.b);
    else
      line(e, "const %s %s = (%s)%lldLL;", ct, r, ct, (long long)a->u.i);
    return r;
  }
  case TGC_OP_IOTA:
    line(e, "const %s %s = (%s)%s;", ct, r, ct, I->ix[tgc_op_attr_int(op, "axis", 0) < 0 ? 0 : tgc_op_attr_int(op, "axis", 0)]);
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
    int64_t axis = tgc_op_attr_int(op, "axis", 0), start = tgc_op_attr_int(op, "start", 0);
    int64_t step = tgc_op_attr_int(op, "step", 1), dim;
    if (axis < 0)
      axis += t->rank;
    if (start < 0) {
      if (!tgc_dim_is_const(w->type->dims[axis], &dim)) {
        fail(e, "a slice with a negative start on a symbolic dim");
        return "0";
      }
      start = start + dim < 0 ? 0 : start + dim;
    }
    index_vec J = *I;
    const char *s = fresh(e, "i");
    line(e, "const long long %s = %lldLL + %s * %lldLL;", s, (long long)start, I->ix[axis], (long long)step);
    J.ix[axis] = s;
    return eval(e, k, w, &J);
  }
  case TGC_OP_CONCAT: {
    int64_t axis = tgc_op_attr_int(op, "axis", 0);
    if (axis < 0)
      axis += t->rank;
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
  case TGC_OP_BROADCAST_TO: {
    index_vec J = broadcast_index(I, op->operands[0].value->type);
    return eval(e, k, op->operands[0].value, &J);
  }
  case TGC_OP_CAST: {
    index_vec J = broadcast_index(I, op->operands[0].value->type);
    const char *x = eval(e, k, op->operands[0].value, &J);
    line(e, "const %s %s = (%s)%s;", ct, r, ct, x);
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
    snprintf(buf, sizeof buf, "%s", x);
    line(e, "%s %s = %s;", ct, r, x);
    if (lo)
      line(e, "%s = %s < (%s)%.17g ? (%s)%.17g : %s;", r, r, ct, tgc_op_attr_float(op, "min", 0), ct,
           tgc_op_attr_float(op, "min", 0), r);
    if (hi)
      line(e, "%s = %s > (%s)%.17g ? (%s)%.17g : %s;", r, r, ct, tgc_op_attr_float(op, "max", 0), ct,
           tgc_op_attr_float(op, "max", 0), r);
    return r;
  }
  case TGC_OP_NOT: {
    index_vec J = broadcast_index(I, op->operands[0].value->type);
    const char *x = eval(e, k, op->operands[0].value, &J);
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
    if (op->opcode == TGC_OP_POW)
      line(e, "const %s %s = (%s)pow%s(%s, %s);", ct, r, ct, tgc_dtype_kind_of(t->dtype) == TGC_DTK_FLOAT ? f : "",
           x[0], x[1]);
    else /* NaN propagates, as torch.maximum does */
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
  fail(e, "'%s' is not generated as a pointwise kernel yet", tgc_op_name(op->opcode));
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

/* ---- kernels ---- */

static void store(emitter *e, const char *x, tgc_dtype dt) {
  switch (dt) {
  case TGC_DT_F16: line(e, "out[i] = __float2half_rn(%s);", x); break;
  case TGC_DT_BF16: line(e, "out[i] = __float2bfloat16_rn(%s);", x); break;
  case TGC_DT_F8E4M3: line(e, "out[i] = __nv_fp8_e4m3(%s);", x); break;
  case TGC_DT_F8E5M2: line(e, "out[i] = __nv_fp8_e5m2(%s);", x); break;
  default: line(e, "out[i] = (%s)%s;", storage_type(dt), x); break;
  }
}

/* Generates a pointwise kernel computing ROOT over its type, reading INPUTS; NULL when an op is not supported
 * (WHY says which). */
static const char *pointwise_kernel(tgc_module *m, const char *name, const tgc_value *root, tgc_value *const *inputs,
                                    const tgc_value *const *outer_of, uint32_t ninputs, const char *comment, char *why,
                                    size_t whylen, const char *const **syms, uint32_t *nsyms,
                                    const tgc_value *const **outer_inputs, uint32_t *nouter) {
  tgc_strbuf body, src;
  tgc_sb_init(&body);
  tgc_sb_init(&src);
  emitter e = {&body, 1, 0, m, NULL, 0, 0, false, {0}};
  /* scalar constants among the inputs become literals */
  tgc_value **ins = tgc_arena_alloc(&m->arena, sizeof *ins * (ninputs + 1));
  const tgc_value **outs = tgc_arena_alloc(&m->arena, sizeof *outs * (ninputs + 1));
  const tgc_value **cargs = tgc_arena_alloc(&m->arena, sizeof *cargs * (ninputs + 1));
  const tgc_op **cdefs = tgc_arena_alloc(&m->arena, sizeof *cdefs * (ninputs + 1));
  uint32_t nin = 0, nconst = 0;
  for (uint32_t j = 0; j < ninputs; j++) {
    const tgc_value *outer = outer_of ? outer_of[j] : inputs[j];
    const tgc_attr *a = outer && outer->def && outer->def->opcode == TGC_OP_CONSTANT ? tgc_op_attr(outer->def, "value")
                                                                                     : NULL;
    while (a && a->kind == TGC_ATTR_LIST && a->u.list.n == 1)
      a = a->u.list.items[0];
    if (a && a->kind != TGC_ATTR_LIST) {
      cargs[nconst] = inputs[j];
      cdefs[nconst++] = outer->def;
    } else {
      outs[nin] = outer;
      ins[nin++] = inputs[j];
    }
  }
  *outer_inputs = outs;
  *nouter = nin;
  inputs = ins;
  ninputs = nin;
  kernel_src k = {inputs, ninputs, cargs, cdefs, nconst};
  const tgc_type *t = root->type;
  /* the output's multi-index from the linear index */
  index_vec I = delinearize(&e, "i", t);
  const char *x = eval(&e, &k, root, &I);
  if (!e.failed)
    store(&e, x, t->dtype);
  if (e.failed) {
    snprintf(why, whylen, "%s", e.why);
    tgc_sb_free(&body);
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
    dim_c(&e, t->dims[d], &count);
  }
  tgc_sb_printf(&src, "// %s\n", comment);
  tgc_sb_puts(&src, "#include <cuda_fp16.h>\n#include <cuda_bf16.h>\n#include <cuda_fp8.h>\n\n");
  tgc_sb_printf(&src, "extern \"C\" __global__ void %s(", name);
  for (uint32_t j = 0; j < ninputs; j++)
    tgc_sb_printf(&src, "const %s *__restrict__ in%u, ", storage_type(inputs[j]->type->dtype), j);
  tgc_sb_printf(&src, "%s *__restrict__ out", storage_type(t->dtype));
  for (uint32_t s = 0; s < e.nsyms; s++)
    tgc_sb_printf(&src, ", long long s_%s", e.syms[s]->name);
  tgc_sb_puts(&src, ") {\n");
  tgc_sb_puts(&src, "  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n");
  tgc_sb_printf(&src, "  if (i >= %s)\n    return;\n", count.data);
  tgc_sb_puts(&src, body.data ? body.data : "");
  tgc_sb_puts(&src, "}\n");
  const char *r = tgc_arena_strndup(&m->arena, src.data, src.len);
  const char **names = tgc_arena_alloc(&m->arena, sizeof *names * (e.nsyms + 1));
  for (uint32_t i = 0; i < e.nsyms; i++)
    names[i] = e.syms[i]->name;
  *syms = names;
  *nsyms = e.nsyms;
  tgc_sb_free(&count);
  tgc_sb_free(&body);
  tgc_sb_free(&src);
  return r;
}

static void add_kernel(tgc_cuda_module *cm, tgc_module *m, const char *name, const char *src, const tgc_op *op,
                       const char *const *syms, uint32_t nsyms, const tgc_value *const *ins, uint32_t nin) {
  cm->kernels = tgc_arena_grow(&m->arena, cm->kernels, cm->nkernels, cm->nkernels + 1, sizeof *cm->kernels);
  tgc_cuda_kernel *k = &cm->kernels[cm->nkernels++];
  k->name = name;
  k->source = src;
  k->op = op;
  k->sym_names = syms;
  k->nsyms = nsyms;
  k->inputs = ins;
  k->ninputs = nin;
}

static void add_pending(tgc_cuda_module *cm, tgc_module *m, const tgc_op *op) {
  cm->pending = tgc_arena_grow(&m->arena, cm->pending, cm->npending, cm->npending + 1, sizeof *cm->pending);
  cm->pending[cm->npending++] = op;
}

static bool is_pointwise_op(const tgc_op *op) {
  switch (op->opcode) {
  case TGC_OP_BROADCAST_TO:
  case TGC_OP_TRANSPOSE:
  case TGC_OP_SLICE:
  case TGC_OP_CONCAT:
  case TGC_OP_IOTA:
    return true;
  default:
    return (tgc_op_info_of(op->opcode)->flags & TGC_OPF_ELEMWISE) != 0;
  }
}

void tgc_cuda_generate(tgc_module *m, tgc_cuda_module *cm) {
  memset(cm, 0, sizeof *cm);
  const tgc_func *f = tgc_module_find_func(m, "main");
  if (!f)
    f = m->funcs;
  if (!f)
    return;
  int n = 0;
  for (const tgc_op *op = f->body->first; op; op = op->next) {
    if (op->opcode == TGC_OP_PARAM || op->opcode == TGC_OP_CONSTANT || op->opcode == TGC_OP_RESHAPE ||
        op->opcode == TGC_OP_RETURN)
      continue;
    char name[96], comment[512], why[256] = "";
    const char *src = NULL;
    const char *const *syms = NULL;
    const tgc_value *const *kin = NULL;
    uint32_t nsyms = 0, nkin = 0;
    const char *kind = op->opcode == TGC_OP_FUSION ? tgc_op_attr_str(op, "kind", "fusion") : tgc_op_name(op->opcode);
    snprintf(comment, sizeof comment, "%s at %s:%u:%u", kind, op->loc.file ? op->loc.file : "?", op->loc.line,
             op->loc.col);
    if (op->opcode == TGC_OP_FUSION && op->region && op->region->last && op->region->last->opcode == TGC_OP_YIELD &&
        op->nresults == 1 && op->results[0].type) {
      const tgc_block *r = op->region;
      const tgc_value *root = r->last->operands[0].value;
      snprintf(name, sizeof name, "k%d_%s_%s", n, kind, root->def ? tgc_op_name(root->def->opcode) : "arg");
      if (strcmp(kind, "elementwise") == 0) {
        const tgc_value **outer = tgc_arena_alloc(&m->arena, sizeof *outer * (r->nargs + 1));
        for (uint32_t j = 0; j < r->nargs; j++)
          outer[j] = op->operands[j].value;
        src = pointwise_kernel(m, name, root, r->args, outer, r->nargs, comment, why, sizeof why, &syms, &nsyms, &kin, &nkin);
      } else if (strcmp(kind, "gemm_epilogue") == 0) {
        /* the GEMM is a cuBLASLt call; its epilogue a kernel reading the GEMM's result */
        const tgc_op *mm = NULL;
        for (const tgc_op *o = r->first; o; o = o->next)
          if (o->opcode == TGC_OP_MATMUL)
            mm = o;
        if (mm && root != &mm->results[0]) {
          tgc_value **ins = tgc_arena_alloc(&m->arena, sizeof *ins * (r->nargs + 2));
          uint32_t nin = 0;
          ins[nin++] = (tgc_value *)&mm->results[0];
          const tgc_value **outer = tgc_arena_alloc(&m->arena, sizeof *outer * (r->nargs + 2));
          outer[0] = NULL;
          for (uint32_t j = 0; j < r->nargs; j++) {
            outer[nin] = op->operands[j].value;
            ins[nin++] = r->args[j];
          }
          snprintf(name, sizeof name, "k%d_gemm_epilogue_%s", n, tgc_op_name(root->def->opcode));
          char c2[600];
          snprintf(c2, sizeof c2, "epilogue of the GEMM of %s (in0 is the GEMM's result)", comment);
          src = pointwise_kernel(m, name, root, ins, outer, nin, c2, why, sizeof why, &syms, &nsyms, &kin, &nkin);
        }
      }
    } else if (is_pointwise_op(op) && op->nresults == 1 && op->results[0].type) {
      snprintf(name, sizeof name, "k%d_%s", n, tgc_op_name(op->opcode));
      tgc_value **ins = tgc_arena_alloc(&m->arena, sizeof *ins * (op->noperands + 1));
      for (uint32_t j = 0; j < op->noperands; j++)
        ins[j] = op->operands[j].value;
      src = pointwise_kernel(m, name, &op->results[0], ins, NULL, op->noperands, comment, why, sizeof why, &syms,
                             &nsyms, &kin, &nkin);
    }
    if (src)
      add_kernel(cm, m, tgc_arena_strndup(&m->arena, name, strlen(name)), src, op, syms, nsyms, kin, nkin);
    else
      add_pending(cm, m, op);
    n++;
  }
}

void tgc_cuda_print(const tgc_cuda_module *cm, tgc_strbuf *out) {
  for (uint32_t i = 0; i < cm->nkernels; i++) {
    tgc_sb_printf(out, "// ===== kernel %s =====\n", cm->kernels[i].name);
    tgc_sb_puts(out, cm->kernels[i].source);
    tgc_sb_putc(out, '\n');
  }
  if (cm->npending) {
    tgc_sb_printf(out, "// ===== %u launches not generated as CUDA C yet (library calls and templates of the CUDA "
                       "backend) =====\n", cm->npending);
    for (uint32_t i = 0; i < cm->npending; i++) {
      const tgc_op *op = cm->pending[i];
      tgc_sb_printf(out, "//   %s at %s:%u:%u\n",
                    op->opcode == TGC_OP_FUSION ? tgc_op_attr_str(op, "kind", "fusion") : tgc_op_name(op->opcode),
                    op->loc.file ? op->loc.file : "?", op->loc.line, op->loc.col);
    }
  }
}

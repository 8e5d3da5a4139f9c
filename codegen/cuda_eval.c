/* A launch's ops as CUDA C expressions, each value evaluated at the multi-index its consumer needs: broadcasts
 * drop or zero dims, transposes permute them, slices offset them, reshapes go through the linear index, concats
 * branch, gathers load their index first. Reductions, cumsum and matmul are serial loops in the thread; in rows
 * mode a row statistic is a block-strided loop and a block reduction, computed once per row before the output
 * loop. Groups are trees (fusion grows along single-user values), so nothing is evaluated twice. */
#include "cuda_internal.h"

#include "program.h"
#include "tgc/clamp.h"
#include "tgc/slice.h"

static int input_index(const kernel_src *k, const tgc_value *v) {
  for (uint32_t i = 0; i < k->ninputs; i++)
    if (k->inputs[i] == v)
      return (int)i;
  return -1;
}

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
    off = tgc_cuda_linearize(e, I, t);
  }
  char arr[16];
  snprintf(arr, sizeof arr, off == vref ? "vin%d" : "in%d", in);
  const char *r = tgc_cuda_fresh(e, "v");
  const char *ct = tgc_cuda_compute_type(t->dtype);
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

/* The index of a broadcast operand of type W, for the consumer's index I (numpy alignment at the last dims). */
static index_vec broadcast_index(const index_vec *I, const tgc_type *w) {
  index_vec r;
  r.rank = w->rank;
  for (uint32_t d = 0; d < w->rank; d++)
    r.ix[d] = dim_is(w->dims[d], 1) ? "0LL" : I->ix[I->rank - w->rank + d];
  return r;
}

/* An index into a dim of size DIM, checked: out of range sets *err and reads element 0 instead. */
static const char *checked_index(emitter *e, const char *x, const char *dim) {
  const char *j = tgc_cuda_fresh(e, "j");
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
  const char *acc = tgc_cuda_fresh(e, "acc");
  const char *t = tgc_cuda_fresh(e, "t");
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
  return tgc_cuda_eval(e, k, op->operands[0].value, J);
}

static const char *body_sq_dev(emitter *e, const kernel_src *k, const tgc_op *op, const index_vec *J,
                               const char *mean) {
  const char *x = tgc_cuda_eval(e, k, op->operands[0].value, J);
  const char *d = tgc_cuda_fresh(e, "d");
  line(e, "const float %s = %s - %s;", d, x, mean ? mean : "0.0f");
  const char *r = tgc_cuda_fresh(e, "v");
  line(e, "const float %s = %s * %s;", r, d, d);
  return r;
}

static const char *body_exp(emitter *e, const kernel_src *k, const tgc_op *op, const index_vec *J, const char *mx) {
  const char *x = tgc_cuda_eval(e, k, op->operands[0].value, J);
  const char *r = tgc_cuda_fresh(e, "v");
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
  const char *n = tgc_cuda_dim_str(e, xt->dims[xt->rank - 1]);
  const char *ct = tgc_cuda_compute_type(op->results[0].type->dtype);
  *a = *b = NULL;
  switch (op->opcode) {
  case TGC_OP_REDUCE_SUM:
  case TGC_OP_REDUCE_MAX:
  case TGC_OP_REDUCE_MIN:
    *a = row_loop(e, k, op, I, n, op->opcode, ct, body_x, NULL);
    return;
  case TGC_OP_REDUCE_MEAN: {
    const char *s = row_loop(e, k, op, I, n, TGC_OP_REDUCE_SUM, ct, body_x, NULL);
    *a = tgc_cuda_fresh(e, "mean");
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
    *a = tgc_cuda_fresh(e, "mean");
    line(e, "const float %s = %s / (float)%s;", *a, s, n);
    const char *v = row_loop(e, k, op, I, n, TGC_OP_REDUCE_SUM, "float", body_sq_dev, *a);
    *b = tgc_cuda_fresh(e, "rstd");
    line(e, "const float %s = rsqrtf(%s / (float)%s + %s);", *b, v, n, tgc_cuda_float_attr(e, op, "eps", 1e-5, false));
    return;
  }
  case TGC_OP_RMS_NORM: {
    const char *v = row_loop(e, k, op, I, n, TGC_OP_REDUCE_SUM, "float", body_sq_dev, NULL);
    *b = tgc_cuda_fresh(e, "rstd");
    line(e, "const float %s = rsqrtf(%s / (float)%s + %s);", *b, v, n, tgc_cuda_float_attr(e, op, "eps", 1e-6, false));
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
  const char *ct = tgc_cuda_compute_type(op->results[0].type->dtype);
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
  const char *r = tgc_cuda_fresh(e, "v");
  switch (op->opcode) {
  case TGC_OP_REDUCE_SUM:
  case TGC_OP_REDUCE_MEAN:
  case TGC_OP_REDUCE_MAX:
  case TGC_OP_REDUCE_MIN:
    return a;
  case TGC_OP_SOFTMAX:
  case TGC_OP_LOG_SOFTMAX: {
    const char *x = tgc_cuda_eval(e, k, op->operands[0].value, I);
    if (op->opcode == TGC_OP_SOFTMAX)
      line(e, "const %s %s = (%s)(expf(%s - %s) / %s);", ct, r, ct, x, a, b);
    else
      line(e, "const %s %s = (%s)(%s - %s - logf(%s));", ct, r, ct, x, a, b);
    return r;
  }
  case TGC_OP_LAYER_NORM:
  case TGC_OP_RMS_NORM: {
    const char *x = tgc_cuda_eval(e, k, op->operands[0].value, I);
    tgc_strbuf s;
    tgc_sb_init(&s);
    if (a)
      tgc_sb_printf(&s, "(%s - %s) * %s", x, a, b);
    else
      tgc_sb_printf(&s, "%s * %s", x, b);
    for (uint32_t j = 1; j < op->noperands; j++) {
      const tgc_value *w = op->operands[j].value;
      index_vec W = broadcast_index(I, w->type);
      const char *wv = tgc_cuda_eval(e, k, w, &W);
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
  const char *ct = tgc_cuda_compute_type(op->results[0].type->dtype);
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
  const char *acc = tgc_cuda_fresh(e, "acc"), *best = NULL;
  if (op->opcode == TGC_OP_ARGMAX) {
    /* the running maximum in the operand's own compute type: an i64 through a double (53 bits) loses the
     * order of values that differ in the last bits */
    const char *xct = tgc_cuda_compute_type(xt->dtype);
    best = tgc_cuda_fresh(e, "best");
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
    const char *t = tgc_cuda_fresh(e, "t"), *n = tgc_cuda_dim_str(e, xt->dims[d]);
    tgc_sb_printf(&count, " * %s", n);
    line(e, "for (long long %s = 0; %s < %s; %s++) {", t, t, n, t);
    e->indent++;
    opened++;
    J.ix[d] = t;
    argix = t;
  }
  const char *x = tgc_cuda_eval(e, k, op->operands[0].value, &J);
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
    const char *r = tgc_cuda_fresh(e, "mean");
    line(e, "const %s %s = %s / (%s)(%s);", ct, r, acc, ct, count.data);
    acc = r;
  }
  tgc_sb_free(&count);
  return acc;
}

/* A double D rounded once to DT, as the float value a kernel computes DT in (CT): the CPU backend stores a
 * double result by one rounding (tgc_rt_encode_f64), so f16 and bf16 go through __double2half and
 * __double2bfloat16, never through a float first. */
static const char *round_double_to(emitter *e, const char *d, tgc_dtype dt) {
  const char *r = tgc_cuda_fresh(e, "v");
  switch (dt) {
  case TGC_DT_F64: return d;
  case TGC_DT_F16: line(e, "const float %s = __half2float(__double2half(%s));", r, d); break;
  case TGC_DT_BF16: line(e, "const float %s = __bfloat162float(__double2bfloat16(%s));", r, d); break;
  case TGC_DT_F8E4M3:
  case TGC_DT_F8E5M2:
    e->f8 = true;
    line(e, "const float %s = tgc_f8_value(tgc_f8_bits(%s, %s), %s);", r, d, fp8_fmt(dt), fp8_fmt(dt));
    break;
  default: line(e, "const float %s = (float)%s;", r, d); break;
  }
  return r;
}

/* quantize and dequantize (docs/ir.md 8.9), computed in double exactly as the CPU backend does
 * (tgc_rt_cpu_quant), so the two agree bit for bit. The element's scale and zero point are the attributes, the
 * scalar operands (per tensor), the operands' entry at the element's index along axis (per channel), or at
 * that index divided by the group size (group-wise); then
 *   quantize:   integer storage: rint(x / scale) + zero_point, NaN to 0, clamped to the dtype's range;
 *               fp8 storage: x / scale saturated at the largest finite value (NaN stays), rounded to even;
 *   dequantize: (q - zero_point) * scale, rounded once to the result dtype; q may be a storage dtype, an i32
 *               accumulator or a float one. */
static const char *eval_quant(emitter *e, const kernel_src *k, const tgc_op *op, const index_vec *I) {
  const tgc_type *t = op->results[0].type, *xt = op->operands[0].value->type;
  bool q = op->opcode == TGC_OP_QUANTIZE, has_axis = tgc_op_attr(op, "axis") != NULL;
  int64_t group = tgc_op_attr_int(op, "group", 0);
  uint32_t axis = has_axis ? norm_axis(tgc_op_attr_int(op, "axis", 0), xt->rank) : 0;
  const char *x = tgc_cuda_eval(e, k, op->operands[0].value, I);
  const char *sc = tgc_cuda_float_attr(e, op, "scale", 1.0, true);
  char zlit[48];
  snprintf(zlit, sizeof zlit, "(double)(%lldLL)", (long long)tgc_op_attr_int(op, "zero_point", 0));
  const char *zp = zlit;
  for (uint32_t j = 1; j < op->noperands && j < 3; j++) {
    const tgc_value *s = op->operands[j].value;
    index_vec J;
    J.rank = s->type->rank;
    for (uint32_t d = 0; d < J.rank; d++)
      J.ix[d] = "0LL"; /* per tensor, or the one channel of a scalar */
    if (has_axis && xt->rank > 0 && group == 0 && J.rank == 1) {
      J.ix[0] = I->ix[axis];
    } else if (has_axis && xt->rank > 0 && group > 0 && J.rank == xt->rank) {
      for (uint32_t d = 0; d < J.rank; d++)
        J.ix[d] = I->ix[d];
      const char *g = tgc_cuda_fresh(e, "g");
      line(e, "const long long %s = %s / %lldLL;", g, I->ix[axis], (long long)group);
      J.ix[axis] = g;
    }
    const char *val = tgc_cuda_eval(e, k, s, &J);
    const char *dv = tgc_cuda_fresh(e, j == 1 ? "scale" : "zp");
    line(e, "const double %s = (double)%s;", dv, val);
    if (j == 1)
      sc = dv;
    else
      zp = dv;
  }
  const char *d = tgc_cuda_fresh(e, "d");
  if (!q) {
    line(e, "const double %s = ((double)%s - %s) * %s;", d, x, zp, sc);
    return round_double_to(e, d, t->dtype);
  }
  /* a float X: X times the scale's float reciprocal, the double division only near a rounding boundary
   * (tgc_quant_rint, tgc_f8_quant_bits) */
  const char *inv = NULL;
  if (xt->dtype == TGC_DT_F16 || xt->dtype == TGC_DT_BF16 || xt->dtype == TGC_DT_F32) {
    if (op->noperands > 1) {
      inv = tgc_cuda_fresh(e, "inv");
      line(e, "const float %s = 1.0f / (float)%s;", inv, sc);
    } else {
      double r = 1.0 / tgc_op_attr_float(op, "scale", 1.0);
      if (isfinite(r) && r >= 0x1p-126 && r <= 0x1p127) {
        char lit[48];
        snprintf(lit, sizeof lit, "%.9ef", (double)(float)r);
        inv = tgc_arena_strndup(&e->m->arena, lit, strlen(lit));
      }
    }
  }
  if (tgc_dtype_kind_of(t->dtype) == TGC_DTK_FLOAT && inv) {
    e->f8 = true;
    const char *r8 = tgc_cuda_fresh(e, "v");
    line(e, "const float %s = tgc_f8_value(tgc_f8_quant_bits(%s, %s, %s, %s), %s);", r8, x, inv, sc,
         fp8_fmt(t->dtype), fp8_fmt(t->dtype));
    return r8;
  }
  if (inv) {
    e->qint = true;
    line(e, "double %s = tgc_quant_rint(%s, %s, %s);", d, x, inv, sc);
  } else
    line(e, "double %s = (double)%s / %s;", d, x, sc);
  if (tgc_dtype_kind_of(t->dtype) == TGC_DTK_FLOAT) {
    const char *big = t->dtype == TGC_DT_F8E4M3 ? "448.0" : "57344.0";
    line(e, "%s = %s > %s ? %s : %s < -%s ? -%s : %s; /* saturate; NaN stays NaN */", d, d, big, big, d, big, big, d);
    e->f8 = true;
    const char *r8 = tgc_cuda_fresh(e, "v");
    line(e, "const float %s = tgc_f8_value(tgc_f8_sat_bits(%s, %s), %s);", r8, d, fp8_fmt(t->dtype), fp8_fmt(t->dtype));
    return r8;
  }
  int bits = tgc_dtype_bits(t->dtype);
  bool sgn = tgc_dtype_kind_of(t->dtype) == TGC_DTK_SINT;
  long long lo = sgn ? -(1LL << (bits - 1)) : 0, hi = sgn ? (1LL << (bits - 1)) - 1 : (1LL << bits) - 1;
  const char *r = tgc_cuda_fresh(e, "v");
  if (inv)
    line(e, "%s = %s + %s;", d, d, zp);
  else
    line(e, "%s = rint(%s) + %s; /* ties to even */", d, d, zp);
  line(e, "const long long %s = %s != %s ? 0LL : %s < %lld.0 ? %lldLL : %s > %lld.0 ? %lldLL : (long long)%s;", r, d,
       d, d, lo, lo, d, hi, hi, d);
  return r;
}

static const char *eval_op(emitter *e, const kernel_src *k, const tgc_op *op, const tgc_value *v, const index_vec *I) {
  const tgc_type *t = v->type;
  const char *ct = tgc_cuda_compute_type(t->dtype);
  bool dbl = t->dtype == TGC_DT_F64;
  const char *r = tgc_cuda_fresh(e, "v");
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
      tgc_cuda_const_literal(&b, vals[0], t->dtype);
      line(e, "const %s %s = %s;", ct, r, b.data);
    } else {
      for (uint32_t i = 0; i < n; i++) {
        if (i)
          tgc_sb_puts(&b, ", ");
        tgc_cuda_const_literal(&b, vals[i], t->dtype);
      }
      const char *arr = tgc_cuda_fresh(e, "cv");
      line(e, "const %s %s[%u] = {%s};", ct, arr, n, b.data);
      line(e, "const %s %s = %s[%s];", ct, r, arr, tgc_cuda_linearize(e, I, t));
    }
    tgc_sb_free(&b);
    return r;
  }
  case TGC_OP_IOTA:
    line(e, "const %s %s = (%s)%s;", ct, r, ct, I->ix[norm_axis(tgc_op_attr_int(op, "axis", 0), t->rank)]);
    return r;
  case TGC_OP_RESHAPE: {
    const tgc_value *w = op->operands[0].value;
    index_vec J = tgc_cuda_delinearize(e, tgc_cuda_linearize(e, I, t), w->type);
    return tgc_cuda_eval(e, k, w, &J);
  }
  case TGC_OP_TRANSPOSE: {
    const tgc_attr *perm = tgc_op_attr(op, "perm");
    index_vec J;
    J.rank = t->rank;
    for (uint32_t d = 0; d < t->rank; d++)
      J.ix[perm->u.list.items[d]->u.i] = I->ix[d];
    return tgc_cuda_eval(e, k, op->operands[0].value, &J);
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
    const char *s = tgc_cuda_fresh(e, "i");
    line(e, "const long long %s = %lldLL + %s * %lldLL;", s, (long long)start, I->ix[axis], (long long)step);
    J.ix[axis] = s;
    return tgc_cuda_eval(e, k, w, &J);
  }
  case TGC_OP_SPLIT: {
    uint32_t axis = norm_axis(tgc_op_attr_int(op, "axis", 0), t->rank);
    const tgc_attr *sizes = tgc_op_attr(op, "sizes");
    int64_t off = 0;
    for (uint32_t j = 0; j < op->nresults && &op->results[j] != v; j++)
      off += sizes->u.list.items[j]->u.i;
    index_vec J = *I;
    const char *s = tgc_cuda_fresh(e, "i");
    line(e, "const long long %s = %s + %lldLL;", s, I->ix[axis], (long long)off);
    J.ix[axis] = s;
    return tgc_cuda_eval(e, k, op->operands[0].value, &J);
  }
  case TGC_OP_PAD: {
    const tgc_value *w = op->operands[0].value;
    const tgc_attr *low = tgc_op_attr(op, "low");
    index_vec J = *I;
    const char *in = tgc_cuda_fresh(e, "inb");
    line(e, "bool %s = true;", in);
    for (uint32_t d = 0; d < t->rank; d++) {
      const char *s = tgc_cuda_fresh(e, "i");
      line(e, "const long long %s = %s - %lldLL;", s, I->ix[d], (long long)low->u.list.items[d]->u.i);
      line(e, "%s = %s && %s >= 0 && %s < %s;", in, in, s, s, tgc_cuda_dim_str(e, w->type->dims[d]));
      J.ix[d] = s;
    }
    tgc_strbuf pv;
    tgc_sb_init(&pv);
    tgc_cuda_value_literal(&pv, t->dtype, tgc_op_attr_float(op, "value", 0), false, 0); /* as the padded tensor stores it */
    line(e, "%s %s = %s;", ct, r, pv.data);
    tgc_sb_free(&pv);
    line(e, "if (%s) {", in);
    e->indent++;
    line(e, "%s = %s;", r, tgc_cuda_eval(e, k, w, &J));
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
      tgc_cuda_dim_c(e, w->type->dims[axis], &end);
      if (j + 1 < op->noperands)
        line(e, "%sif (%s < %s) {", j ? "} else " : "", I->ix[axis], end.data);
      else
        line(e, "%s{", j ? "} else " : "");
      e->indent++;
      index_vec J = *I;
      const char *s = tgc_cuda_fresh(e, "i");
      line(e, "const long long %s = %s - (%s);", s, I->ix[axis], off.data);
      J.ix[axis] = s;
      line(e, "%s = %s;", r, tgc_cuda_eval(e, k, w, &J));
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
    const char *j = checked_index(e, tgc_cuda_eval(e, k, idx, I), tgc_cuda_dim_str(e, x->type->dims[axis]));
    index_vec J = *I;
    J.ix[axis] = j;
    return tgc_cuda_eval(e, k, x, &J);
  }
  case TGC_OP_EMBEDDING: {
    const tgc_value *table = op->operands[0].value, *ids = op->operands[1].value;
    index_vec J = *I;
    J.rank = t->rank - 1;
    const char *j = checked_index(e, tgc_cuda_eval(e, k, ids, &J), tgc_cuda_dim_str(e, table->type->dims[0]));
    index_vec T;
    T.rank = 2;
    T.ix[0] = j;
    T.ix[1] = I->ix[t->rank - 1];
    return tgc_cuda_eval(e, k, table, &T);
  }
  case TGC_OP_CUMSUM: {
    uint32_t axis = norm_axis(tgc_op_attr_int(op, "axis", 0), t->rank);
    const char *s = tgc_cuda_fresh(e, "t");
    line(e, "%s %s = 0;", ct, r);
    line(e, "for (long long %s = 0; %s <= %s; %s++) {", s, s, I->ix[axis], s);
    e->indent++;
    index_vec J = *I;
    J.ix[axis] = s;
    line(e, "%s += %s;", r, tgc_cuda_eval(e, k, op->operands[0].value, &J));
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
    const char *s = tgc_cuda_fresh(e, "t");
    A.ix[A.rank - 2] = I->ix[t->rank - 2];
    A.ix[A.rank - 1] = s;
    B.ix[B.rank - 2] = s;
    B.ix[B.rank - 1] = I->ix[t->rank - 1];
    /* the accumulator: the result's compute type (long long for integers: i8 x i8 -> i32 is exact), but double
     * for fp8 operands, whose products are exact, as the CPU backend sums them, rounded once at the end */
    bool fp8 = tgc_dtype_kind_of(a->type->dtype) == TGC_DTK_FLOAT && tgc_dtype_bits(a->type->dtype) == 8;
    const char *acc = fp8 ? tgc_cuda_fresh(e, "acc") : r;
    line(e, "%s %s = 0;", fp8 ? "double" : ct, acc);
    line(e, "for (long long %s = 0; %s < %s; %s++) {", s, s, tgc_cuda_dim_str(e, a->type->dims[A.rank - 1]), s);
    e->indent++;
    const char *x = tgc_cuda_eval(e, k, a, &A);
    const char *y = tgc_cuda_eval(e, k, b, &B);
    if (fp8)
      line(e, "%s += (double)%s * (double)%s;", acc, x, y);
    else if (strcmp(ct, "long long") == 0) /* wrapping, as the CPU backend's integer results (signed overflow is undefined) */
      line(e, "%s = (long long)((unsigned long long)%s + (unsigned long long)%s * (unsigned long long)%s);", acc, acc, x, y);
    else
      line(e, "%s += %s * %s;", acc, x, y);
    e->indent--;
    line(e, "}");
    return fp8 ? round_double_to(e, acc, t->dtype) : r;
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
    return tgc_cuda_eval(e, k, op->operands[0].value, &J);
  }
  case TGC_OP_QUANTIZE:
  case TGC_OP_DEQUANTIZE:
    return eval_quant(e, k, op, I);
  case TGC_OP_CAST: {
    index_vec J = broadcast_index(I, op->operands[0].value->type);
    const char *x = tgc_cuda_eval(e, k, op->operands[0].value, &J);
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
      x[j] = tgc_cuda_eval(e, k, op->operands[j].value, &J);
    }
    line(e, "const %s %s = %s ? %s : %s;", ct, r, x[0], x[1], x[2]);
    return r;
  }
  case TGC_OP_CLAMP: {
    index_vec J = broadcast_index(I, op->operands[0].value->type);
    const char *x = tgc_cuda_eval(e, k, op->operands[0].value, &J);
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
    const char *x = tgc_cuda_eval(e, k, op->operands[0].value, &J);
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
      x[j] = tgc_cuda_eval(e, k, op->operands[j].value, &J);
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
      x[j] = tgc_cuda_eval(e, k, op->operands[j].value, &J);
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
    const char *x = tgc_cuda_eval(e, k, op->operands[0].value, &J);
    if (unary_expr(op, x, dbl, buf, sizeof buf)) {
      line(e, "const %s %s = %s;", ct, r, buf);
      return r;
    }
  }
  fail(e, "'%s' is not generated as CUDA C yet", tgc_op_name(op->opcode));
  return "0";
}

const char *tgc_cuda_eval(emitter *e, const kernel_src *k, const tgc_value *v, const index_vec *I) {
  if (e->failed)
    return "0";
  if (v == e->reg_v)
    return e->reg_x;
  if (v == e->memo_v && I->rank == e->memo_I.rank) {
    bool same = true;
    for (uint32_t d = 0; d < I->rank && same; d++)
      same = I->ix[d] == e->memo_I.ix[d];
    if (same)
      return e->memo_x;
  }
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
void tgc_cuda_collect_stats(emitter *e, const kernel_src *k, const tgc_value *v) {
  if (e->failed || input_index(k, v) >= 0 || !v->def)
    return;
  for (uint32_t c = 0; c < k->nconst; c++)
    if (k->const_args[c] == v)
      return;
  const tgc_op *op = v->def;
  for (uint32_t j = 0; j < op->noperands; j++)
    tgc_cuda_collect_stats(e, k, op->operands[j].value);
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
const tgc_type *tgc_cuda_row_space(const kernel_src *k, const tgc_value *root, bool *reduce_root) {
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
bool tgc_cuda_rows_ok(const kernel_src *k, const tgc_type *space, const tgc_value *v, bool *any) {
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
    if (!tgc_cuda_rows_ok(k, space, op->operands[j].value, any))
      return false;
  return true;
}

/* The CPU reference backend: an interpreter of execution plans. Floating-point math is done in double and
 * rounded once into the result's storage dtype (RNE for f16/bf16/fp8), integer math is exact in int64,
 * matmul goes through OpenBLAS (sgemm for f32 and narrower floats, dgemm for f64). Every kernel computes its
 * result shape from its operands and checks it against the declared type; symbolic dims are bound from the
 * input shapes. This backend is the reference other backends are checked against: clarity first. */
#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "plan.h"
#include "session.h"
#include "tgc/clamp.h"
#include "tgc/slice.h"

typedef struct {
  const tgc_rt_cpu_opts *opts;
  tgc_rt_err *err;
  int64_t *syms;
  bool *bound;
  uint32_t nsyms;
} cpu_ctx;

/* The plan's helpers (tgc_rt_step_attr, tgc_rt_poly_eval, tgc_rt_plan_check) are in plan.c. */

bool tgc_rt_cpu_supports(tgc_opcode op, tgc_dtype dt) {
  (void)op;
  (void)dt;
  return true;
}

/* ---- errors ---- */

static int step_error(cpu_ctx *c, const tgc_rt_step *s, const char *fmt, ...) TGC_RT_PRINTF(3, 4);
static int step_error(cpu_ctx *c, const tgc_rt_step *s, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return tgc_rt_errorf(c->err, "%s: error: '%s': %s", s->loc, tgc_op_name(s->op), msg);
}

static void type_str(const cpu_ctx *c, const tgc_rt_type *t, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%s[", tgc_dtype_name(t->dtype));
  for (uint32_t i = 0; i < t->rank && k < n; i++) {
    int64_t v;
    if (tgc_rt_poly_eval(&t->dims[i], c->syms, &v))
      k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)v);
    else
      k += (size_t)snprintf(buf + k, n - k, "%s?", i ? ", " : "");
  }
  if (k < n)
    snprintf(buf + k, n - k, "]");
}

static void tensor_type_str(const tgc_rt_tensor *t, char *buf, size_t n) {
  char shape[256];
  tgc_rt_shape_str(t->rank, t->shape, shape, sizeof shape);
  snprintf(buf, n, "%s%s", tgc_dtype_name(t->dtype), shape);
}

/* Evaluates a declared type's shape with the bound symbols. */
static int eval_shape(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_type *t, int64_t *shape) {
  TGC_ASSERT(t->rank <= TGC_RT_MAX_RANK); /* tgc_rt_plan_check */
  for (uint32_t i = 0; i < t->rank; i++) {
    if (!tgc_rt_poly_eval(&t->dims[i], c->syms, &shape[i]))
      return step_error(c, s, "dim %u of the declared type overflows 64-bit integers", i);
    if (shape[i] < 0)
      return step_error(c, s, "dim %u of the declared type evaluates to %lld", i, (long long)shape[i]);
  }
  return 0;
}

/* ---- dtypes ---- */

static bool is_float(tgc_dtype d) { return tgc_dtype_kind_of(d) == TGC_DTK_FLOAT; }

/* ---- tensors ---- */

static size_t numel(const tgc_rt_tensor *t) { return tgc_rt_tensor_numel(t); }

static int alloc_out(cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *t, tgc_dtype dt, uint32_t rank,
                     const int64_t *shape) {
  if (tgc_rt_tensor_alloc(t, dt, rank, shape, c->err) != 0) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", c->err->msg);
    return step_error(c, s, "%s", msg);
  }
  return 0;
}

/* Converts T to a dense float (or double) buffer. */
static void *to_floats(const tgc_rt_tensor *t, bool dbl) {
  size_t n = numel(t);
  void *p = tgc_xmalloc((n ? n : 1) * (dbl ? sizeof(double) : sizeof(float)));
  if (t->dtype == TGC_DT_F32 && !dbl) {
    memcpy(p, t->data, n * sizeof(float));
  } else if (t->dtype == TGC_DT_F64 && dbl) {
    memcpy(p, t->data, n * sizeof(double));
  } else if (t->dtype == TGC_DT_F32) {
    const float *f = t->data;
    for (size_t i = 0; i < n; i++)
      ((double *)p)[i] = f[i];
  } else {
    for (size_t i = 0; i < n; i++) {
      if (dbl)
        ((double *)p)[i] = tgc_rt_get(t, i);
      else
        ((float *)p)[i] = (float)tgc_rt_get(t, i);
    }
  }
  return p;
}

/* Stores N doubles into T, rounding to its dtype (the common f32 and f64 cases without a per-element switch). */
static void store_doubles(tgc_rt_tensor *t, const double *v, size_t n) {
  if (t->dtype == TGC_DT_F32) {
    float *f = t->data;
    for (size_t i = 0; i < n; i++)
      f[i] = (float)v[i];
  } else if (t->dtype == TGC_DT_F64) {
    memcpy(t->data, v, n * sizeof(double));
  } else {
    for (size_t i = 0; i < n; i++)
      tgc_rt_set(t, i, v[i]);
  }
}

/* Row-major strides in elements. */
static void strides_of(uint32_t rank, const int64_t *shape, int64_t *st) {
  int64_t acc = 1;
  for (uint32_t i = rank; i-- > 0;) {
    st[i] = acc;
    acc *= shape[i];
  }
}

static int norm_axis(cpu_ctx *c, const tgc_rt_step *s, int64_t axis, uint32_t rank, const char *what) {
  if (axis < -(int64_t)rank || axis >= (int64_t)rank || (rank == 0 && axis != 0 && axis != -1)) {
    step_error(c, s, "%s %lld is out of range for rank %u", what, (long long)axis, rank);
    return -1;
  }
  return (int)(axis < 0 ? axis + rank : axis);
}

/* ---- broadcasting ---- */

static int broadcast_shapes(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *ts, uint32_t n,
                            uint32_t *rank, int64_t *shape) {
  uint32_t r = 0;
  for (uint32_t i = 0; i < n; i++)
    r = ts[i]->rank > r ? ts[i]->rank : r;
  for (uint32_t d = 0; d < r; d++) {
    int64_t v = 1;
    for (uint32_t i = 0; i < n; i++) {
      int64_t off = (int64_t)d - (int64_t)(r - ts[i]->rank);
      if (off < 0)
        continue;
      int64_t x = ts[i]->shape[off];
      if (x == v || x == 1)
        continue;
      if (v == 1) {
        v = x;
        continue;
      }
      char a[256], b[256];
      tensor_type_str(ts[0], a, sizeof a);
      tensor_type_str(ts[i], b, sizeof b);
      return step_error(c, s, "operands %s and %s do not broadcast (dim %u: %lld vs %lld)", a, b, d,
                        (long long)v, (long long)x);
    }
    shape[d] = v;
  }
  *rank = r;
  return 0;
}

/* Strides of T viewed with the broadcast shape (rank R): 0 where T is broadcast. */
static void bcast_strides(const tgc_rt_tensor *t, uint32_t r, const int64_t *shape, int64_t *st) {
  int64_t own[TGC_RT_MAX_RANK];
  strides_of(t->rank, t->shape, own);
  for (uint32_t d = 0; d < r; d++) {
    int64_t off = (int64_t)d - (int64_t)(r - t->rank);
    st[d] = (off < 0 || t->shape[off] == 1 || shape[d] == 1) ? 0 : own[off];
  }
}

/* ---- elementwise ---- */

static double gelu(double x, bool tanh_approx) {
  if (tanh_approx)
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  return 0.5 * x * (1.0 + erf(x / 1.4142135623730951));
}

static double ew_float(const tgc_rt_step *s, const double *x, bool tanh_gelu, double lo, double hi) {
  switch (s->op) {
  case TGC_OP_NEG: return -x[0];
  case TGC_OP_ABS: return fabs(x[0]);
  case TGC_OP_EXP: return exp(x[0]);
  case TGC_OP_LOG: return log(x[0]);
  case TGC_OP_SQRT: return sqrt(x[0]);
  case TGC_OP_RSQRT: return 1.0 / sqrt(x[0]);
  case TGC_OP_TANH: return tanh(x[0]);
  case TGC_OP_ERF: return erf(x[0]);
  case TGC_OP_SIGMOID: return 1.0 / (1.0 + exp(-x[0]));
  case TGC_OP_RELU: return x[0] > 0 ? x[0] : (isnan(x[0]) ? x[0] : 0.0);
  case TGC_OP_SILU: return x[0] / (1.0 + exp(-x[0]));
  case TGC_OP_SIN: return sin(x[0]);
  case TGC_OP_COS: return cos(x[0]);
  case TGC_OP_NOT: return x[0] == 0.0;
  case TGC_OP_GELU: return gelu(x[0], tanh_gelu);
  case TGC_OP_CAST: return x[0];
  case TGC_OP_CLAMP: return isnan(x[0]) ? x[0] : x[0] < lo ? lo : x[0] > hi ? hi : x[0];
  case TGC_OP_ADD: return x[0] + x[1];
  case TGC_OP_SUB: return x[0] - x[1];
  case TGC_OP_MUL: return x[0] * x[1];
  case TGC_OP_DIV: return x[0] / x[1];
  case TGC_OP_POW: return pow(x[0], x[1]);
  case TGC_OP_MAXIMUM: return isnan(x[0]) || isnan(x[1]) ? NAN : fmax(x[0], x[1]);
  case TGC_OP_MINIMUM: return isnan(x[0]) || isnan(x[1]) ? NAN : fmin(x[0], x[1]);
  case TGC_OP_EQ: return x[0] == x[1];
  case TGC_OP_NE: return x[0] != x[1];
  case TGC_OP_LT: return x[0] < x[1];
  case TGC_OP_LE: return x[0] <= x[1];
  case TGC_OP_GT: return x[0] > x[1];
  case TGC_OP_GE: return x[0] >= x[1];
  case TGC_OP_AND: return x[0] != 0.0 && x[1] != 0.0;
  case TGC_OP_OR: return x[0] != 0.0 || x[1] != 0.0;
  case TGC_OP_WHERE: return x[0] != 0.0 ? x[1] : x[2];
  default: tgc_unreachable();
  }
}

/* Integer math, exact; *bad is set on division by zero or a shift of the domain (e.g. sqrt of an int). */
static int64_t ew_int(const tgc_rt_step *s, const int64_t *x, bool is_bool, int64_t lo, int64_t hi, int *bad) {
  switch (s->op) {
  case TGC_OP_NEG: return (int64_t)(0 - (uint64_t)x[0]);
  case TGC_OP_ABS: return x[0] < 0 ? (int64_t)(0 - (uint64_t)x[0]) : x[0];
  case TGC_OP_RELU: return x[0] > 0 ? x[0] : 0;
  case TGC_OP_NOT: return is_bool ? !x[0] : ~x[0];
  case TGC_OP_CAST: return x[0];
  case TGC_OP_CLAMP: return x[0] < lo ? lo : x[0] > hi ? hi : x[0];
  case TGC_OP_ADD: return (int64_t)((uint64_t)x[0] + (uint64_t)x[1]);
  case TGC_OP_SUB: return (int64_t)((uint64_t)x[0] - (uint64_t)x[1]);
  case TGC_OP_MUL: return (int64_t)((uint64_t)x[0] * (uint64_t)x[1]);
  case TGC_OP_DIV:
    if (x[1] == 0) {
      *bad = 1;
      return 0;
    }
    return x[0] == INT64_MIN && x[1] == -1 ? INT64_MIN : x[0] / x[1];
  case TGC_OP_POW: {
    if (x[1] < 0) {
      *bad = 2;
      return 0;
    }
    uint64_t r = 1, b = (uint64_t)x[0];
    for (int64_t e = x[1]; e > 0; e >>= 1, b *= b)
      if (e & 1)
        r *= b;
    return (int64_t)r;
  }
  case TGC_OP_MAXIMUM: return x[0] > x[1] ? x[0] : x[1];
  case TGC_OP_MINIMUM: return x[0] < x[1] ? x[0] : x[1];
  case TGC_OP_EQ: return x[0] == x[1];
  case TGC_OP_NE: return x[0] != x[1];
  case TGC_OP_LT: return x[0] < x[1];
  case TGC_OP_LE: return x[0] <= x[1];
  case TGC_OP_GT: return x[0] > x[1];
  case TGC_OP_GE: return x[0] >= x[1];
  case TGC_OP_AND: return is_bool ? (x[0] && x[1]) : (x[0] & x[1]);
  case TGC_OP_OR: return is_bool ? (x[0] || x[1]) : (x[0] | x[1]);
  case TGC_OP_WHERE: return x[0] ? x[1] : x[2];
  default:
    *bad = 3;
    return 0;
  }
}

static int run_elementwise(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *in, tgc_rt_tensor *out) {
  uint32_t rank = 0;
  int64_t shape[TGC_RT_MAX_RANK];
  if (broadcast_shapes(c, s, in, s->nin, &rank, shape))
    return -1;
  const tgc_op_info *info = tgc_op_info_of(s->op);
  /* docs/ir.md 8.1-8.3: binary operands (and where's two values) share one dtype, which the result keeps,
   * except that comparisons give bool and cast gives its declared dtype */
  uint32_t first = s->op == TGC_OP_WHERE ? 1 : 0;
  for (uint32_t i = first + 1; i < s->nin; i++)
    if (in[i]->dtype != in[first]->dtype)
      return step_error(c, s, "operands #%u and #%u have different dtypes, %s and %s (insert a cast)", first, i,
                        tgc_dtype_name(in[first]->dtype), tgc_dtype_name(in[i]->dtype));
  if (s->op == TGC_OP_WHERE && in[0]->dtype != TGC_DT_BOOL)
    return step_error(c, s, "the condition must be bool, not %s", tgc_dtype_name(in[0]->dtype));
  tgc_dtype dt = in[first]->dtype;
  if (info->flags & TGC_OPF_COMPARE)
    dt = TGC_DT_BOOL;
  else if (s->op == TGC_OP_CAST) {
    if (!s->out_types[0].known)
      return step_error(c, s, "needs a declared result type");
    dt = s->out_types[0].dtype;
  }
  if (alloc_out(c, s, out, dt, rank, shape))
    return -1;
  /* the domain of the math: float if the result or any (value) operand is float */
  bool fdomain = is_float(dt);
  for (uint32_t i = (s->op == TGC_OP_WHERE ? 1 : 0); i < s->nin; i++)
    fdomain = fdomain || is_float(in[i]->dtype);
  if (!fdomain && (s->op == TGC_OP_EXP || s->op == TGC_OP_LOG || s->op == TGC_OP_SQRT || s->op == TGC_OP_RSQRT ||
                   s->op == TGC_OP_TANH || s->op == TGC_OP_ERF || s->op == TGC_OP_SIGMOID ||
                   s->op == TGC_OP_SILU || s->op == TGC_OP_SIN || s->op == TGC_OP_COS || s->op == TGC_OP_GELU))
    return step_error(c, s, "needs a floating-point result type, not %s (cast the operand first)",
                      tgc_dtype_name(dt));
  const char *approx = tgc_rt_step_str(s, "approximate", "none");
  bool tanh_gelu = strcmp(approx, "tanh") == 0;
  double flo = tgc_rt_step_float(s, "min", -INFINITY), fhi = tgc_rt_step_float(s, "max", INFINITY);
  int64_t ilo = INT64_MIN, ihi = INT64_MAX;
  const tgc_rt_attr *amin = tgc_rt_step_attr(s, "min"), *amax = tgc_rt_step_attr(s, "max");
  for (int k = 0; s->op == TGC_OP_CLAMP && k < 2; k++) {
    const tgc_rt_attr *b = k ? amax : amin;
    int64_t lo = 0, hi = 0;
    if (!b || tgc_clamp_bound_ok(in[0]->dtype, b->kind == TGC_RT_ATTR_INT, b->i, b->f, &lo, &hi))
      continue;
    if (b->kind != TGC_RT_ATTR_INT && isnan(b->f))
      return step_error(c, s, "'%s' is NaN, which bounds nothing", b->name);
    return step_error(c, s, "'%s' is %.16g, which the dtype %s cannot hold: on integers, bounds are integers from %lld "
                      "to %lld", b->name, b->kind == TGC_RT_ATTR_INT ? (double)b->i : b->f,
                      tgc_dtype_name(in[0]->dtype), (long long)lo, (long long)hi);
  }
  if (amin && !tgc_clamp_int_bound(amin->kind == TGC_RT_ATTR_INT, amin->i, amin->f, true, &ilo))
    ilo = INT64_MIN;
  if (amax && !tgc_clamp_int_bound(amax->kind == TGC_RT_ATTR_INT, amax->i, amax->f, false, &ihi))
    ihi = INT64_MAX;
  bool is_bool = dt == TGC_DT_BOOL || (in[0]->dtype == TGC_DT_BOOL && (s->op == TGC_OP_NOT || s->op == TGC_OP_AND ||
                                                                      s->op == TGC_OP_OR));
  int64_t st[3][TGC_RT_MAX_RANK];
  for (uint32_t i = 0; i < s->nin; i++)
    bcast_strides(in[i], rank, shape, st[i]);
  size_t n = numel(out);
  int64_t idx[TGC_RT_MAX_RANK] = {0};
  int64_t off[3] = {0, 0, 0};
  int bad = 0;
  double *X[3] = {NULL, NULL, NULL}, *Y = NULL;
  if (fdomain) {
    for (uint32_t i = 0; i < s->nin; i++)
      X[i] = to_floats(in[i], true);
    Y = tgc_xmalloc(sizeof(double) * (n ? n : 1));
  }
  for (size_t e = 0; e < n; e++) {
    if (fdomain) {
      double x[3];
      for (uint32_t i = 0; i < s->nin; i++)
        x[i] = X[i][off[i]];
      Y[e] = ew_float(s, x, tanh_gelu, flo, fhi);
    } else {
      int64_t x[3];
      for (uint32_t i = 0; i < s->nin; i++)
        x[i] = tgc_rt_get_i64(in[i], (size_t)off[i]);
      tgc_rt_set_i64(out, e, ew_int(s, x, is_bool, ilo, ihi, &bad));
      if (bad)
        break;
    }
    for (uint32_t d = rank; d-- > 0;) {
      idx[d]++;
      for (uint32_t i = 0; i < s->nin; i++)
        off[i] += st[i][d];
      if (idx[d] < shape[d])
        break;
      for (uint32_t i = 0; i < s->nin; i++)
        off[i] -= st[i][d] * idx[d];
      idx[d] = 0;
    }
  }
  if (fdomain) {
    store_doubles(out, Y, n);
    for (uint32_t i = 0; i < s->nin; i++)
      free(X[i]);
    free(Y);
  }
  if (bad == 1)
    return step_error(c, s, "integer division by zero");
  if (bad == 2)
    return step_error(c, s, "integer power with a negative exponent");
  if (bad == 3)
    return step_error(c, s, "is not defined on integers");
  return 0;
}

/* ---- reductions ---- */

/* Views T as [outer, mid, inner] around axis range [a0, a1). */
static void split3(const tgc_rt_tensor *t, uint32_t a0, uint32_t a1, size_t *outer, size_t *mid, size_t *inner) {
  *outer = *mid = *inner = 1;
  for (uint32_t i = 0; i < t->rank; i++)
    *(i < a0 ? outer : i < a1 ? mid : inner) *= (size_t)t->shape[i];
}

static int run_reduce(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
  bool reduce[TGC_RT_MAX_RANK] = {false};
  bool keep = tgc_rt_step_bool(s, "keepdim", false);
  if (s->op == TGC_OP_ARGMAX) {
    int a = norm_axis(c, s, tgc_rt_step_int(s, "axis", 0), x->rank, "axis");
    if (a < 0)
      return -1;
    if (x->rank)
      reduce[a] = true;
  } else {
    const tgc_rt_attr *axes = tgc_rt_step_attr(s, "axes");
    for (uint32_t i = 0; axes && i < axes->n; i++) {
      int a = norm_axis(c, s, axes->items[i].i, x->rank, "axis");
      if (a < 0)
        return -1;
      if (x->rank)
        reduce[a] = true;
    }
  }
  int64_t shape[TGC_RT_MAX_RANK];
  uint32_t rank = 0;
  for (uint32_t i = 0; i < x->rank; i++) {
    if (!reduce[i])
      shape[rank++] = x->shape[i];
    else if (keep)
      shape[rank++] = 1;
  }
  for (uint32_t i = 0; i < x->rank; i++)
    if (reduce[i] && x->shape[i] == 0 && (s->op == TGC_OP_REDUCE_MAX || s->op == TGC_OP_REDUCE_MIN ||
                                          s->op == TGC_OP_ARGMAX))
      return step_error(c, s, "cannot reduce over the empty axis %u", i);
  tgc_dtype dt = s->op == TGC_OP_ARGMAX ? TGC_DT_I64 : x->dtype;
  if (alloc_out(c, s, out, dt, rank, shape))
    return -1;
  size_t n = numel(out);
  double *acc = tgc_xcalloc(n ? n : 1, sizeof *acc);
  int64_t *arg = tgc_xcalloc(n ? n : 1, sizeof *arg);
  bool *seen = tgc_xcalloc(n ? n : 1, sizeof *seen);
  int64_t *iacc = tgc_xcalloc(n ? n : 1, sizeof *iacc);
  /* map each input element to its output element */
  int64_t ost[TGC_RT_MAX_RANK], full[TGC_RT_MAX_RANK];
  uint32_t k = 0;
  for (uint32_t i = 0; i < x->rank; i++)
    full[i] = reduce[i] ? 1 : x->shape[i];
  strides_of(x->rank, full, ost);
  (void)k;
  int64_t idx[TGC_RT_MAX_RANK] = {0};
  size_t m = numel(x);
  for (size_t e = 0; e < m; e++) {
    size_t o = 0;
    for (uint32_t i = 0; i < x->rank; i++)
      o += reduce[i] ? 0 : (size_t)(idx[i] * ost[i]);
    double v = tgc_rt_get(x, e);
    if (!is_float(x->dtype) && s->op != TGC_OP_REDUCE_MEAN) {
      /* integers: exact int64 arithmetic (sum wraps like the storage type) */
      int64_t iv = tgc_rt_get_i64(x, e);
      if (s->op == TGC_OP_REDUCE_SUM)
        iacc[o] = (int64_t)((uint64_t)iacc[o] + (uint64_t)iv);
      else if (s->op == TGC_OP_REDUCE_MAX && (!seen[o] || iv > iacc[o]))
        iacc[o] = iv;
      else if (s->op == TGC_OP_REDUCE_MIN && (!seen[o] || iv < iacc[o]))
        iacc[o] = iv;
      else if (s->op == TGC_OP_ARGMAX && (!seen[o] || iv > iacc[o])) {
        uint32_t a = 0;
        for (uint32_t i = 0; i < x->rank; i++)
          if (reduce[i])
            a = i;
        iacc[o] = iv;
        arg[o] = x->rank ? idx[a] : 0;
      }
      seen[o] = true;
      for (uint32_t d = x->rank; d-- > 0;) {
        if (++idx[d] < x->shape[d])
          break;
        idx[d] = 0;
      }
      continue;
    }
    switch (s->op) {
    case TGC_OP_REDUCE_SUM:
    case TGC_OP_REDUCE_MEAN: acc[o] += v; break;
    case TGC_OP_REDUCE_MAX:
      if (!seen[o] || v > acc[o] || isnan(v))
        acc[o] = isnan(acc[o]) && seen[o] ? acc[o] : v;
      break;
    case TGC_OP_REDUCE_MIN:
      if (!seen[o] || v < acc[o] || isnan(v))
        acc[o] = isnan(acc[o]) && seen[o] ? acc[o] : v;
      break;
    case TGC_OP_ARGMAX: {
      uint32_t a = 0;
      for (uint32_t i = 0; i < x->rank; i++)
        if (reduce[i])
          a = i;
      /* first maximum wins; NaN counts as the maximum */
      if (!seen[o] || (!isnan(acc[o]) && (v > acc[o] || isnan(v)))) {
        acc[o] = v;
        arg[o] = x->rank ? idx[a] : 0;
      }
      break;
    }
    default: tgc_unreachable();
    }
    seen[o] = true;
    for (uint32_t d = x->rank; d-- > 0;) {
      if (++idx[d] < x->shape[d])
        break;
      idx[d] = 0;
    }
  }
  double count = 1;
  for (uint32_t i = 0; i < x->rank; i++)
    if (reduce[i])
      count *= (double)x->shape[i];
  for (size_t o = 0; o < n; o++) {
    if (s->op == TGC_OP_ARGMAX)
      tgc_rt_set_i64(out, o, arg[o]);
    else if (s->op == TGC_OP_REDUCE_MEAN)
      tgc_rt_set(out, o, count ? acc[o] / count : NAN);
    else if (!is_float(x->dtype))
      tgc_rt_set_i64(out, o, iacc[o]);
    else
      tgc_rt_set(out, o, acc[o]);
  }
  free(iacc);
  free(acc);
  free(arg);
  free(seen);
  return 0;
}

/* The 'axis' attribute (default DFLT) of a scan along one axis, and X viewed as [outer, mid, inner] around it;
 * a scalar is one element. Returns the axis, or -1 after reporting a bad one. */
static int axis_view(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, int64_t dflt, size_t *outer,
                     size_t *mid, size_t *inner) {
  int a = norm_axis(c, s, tgc_rt_step_int(s, "axis", dflt), x->rank, "axis");
  if (a < 0)
    return -1;
  split3(x, (uint32_t)a, (uint32_t)a + 1, outer, mid, inner);
  if (x->rank == 0)
    *mid = 1;
  return a;
}

static int run_cumsum(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
  size_t outer, mid, inner;
  if (axis_view(c, s, x, 0, &outer, &mid, &inner) < 0)
    return -1;
  tgc_dtype dt = x->dtype;
  if (alloc_out(c, s, out, dt, x->rank, x->shape))
    return -1;
  for (size_t o = 0; o < outer; o++)
    for (size_t i = 0; i < inner; i++) {
      double accf = 0;
      int64_t acci = 0;
      for (size_t k = 0; k < mid; k++) {
        size_t e = (o * mid + k) * inner + i;
        if (is_float(dt)) {
          accf += tgc_rt_get(x, e);
          tgc_rt_set(out, e, accf);
        } else {
          acci = (int64_t)((uint64_t)acci + (uint64_t)tgc_rt_get_i64(x, e));
          tgc_rt_set_i64(out, e, acci);
        }
      }
    }
  return 0;
}

/* ---- normalization ---- */

static int run_softmax(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
  size_t outer, mid, inner;
  if (axis_view(c, s, x, -1, &outer, &mid, &inner) < 0)
    return -1;
  tgc_dtype dt = x->dtype;
  if (!is_float(dt))
    return step_error(c, s, "needs a floating-point result type, not %s", tgc_dtype_name(dt));
  if (alloc_out(c, s, out, dt, x->rank, x->shape))
    return -1;
  for (size_t o = 0; o < outer; o++)
    for (size_t i = 0; i < inner; i++) {
      double mx = -INFINITY, sum = 0;
      for (size_t k = 0; k < mid; k++)
        mx = fmax(mx, tgc_rt_get(x, (o * mid + k) * inner + i));
      if (isinf(mx) && mx < 0)
        mx = 0; /* a row of -inf: exp gives 0s and the result is nan, as in torch */
      for (size_t k = 0; k < mid; k++)
        sum += exp(tgc_rt_get(x, (o * mid + k) * inner + i) - mx);
      for (size_t k = 0; k < mid; k++) {
        size_t e = (o * mid + k) * inner + i;
        double v = tgc_rt_get(x, e) - mx;
        tgc_rt_set(out, e, s->op == TGC_OP_SOFTMAX ? exp(v) / sum : v - log(sum));
      }
    }
  return 0;
}

static int run_norm(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *in, tgc_rt_tensor *out) {
  const tgc_rt_tensor *x = in[0];
  bool layer = s->op == TGC_OP_LAYER_NORM;
  /* a scalar has no axis to normalize over (rms_norm's is the last; layer_norm's axis -1 would be accepted by
   * norm_axis at rank 0), so rank 0 is an error before any axis is computed */
  if (x->rank == 0)
    return step_error(c, s, "needs an operand of rank 1 or more (a scalar has no axis to normalize)");
  int a = layer ? norm_axis(c, s, tgc_rt_step_int(s, "axis", -1), x->rank, "axis") : (int)x->rank - 1;
  if (a < 0)
    return -1;
  double eps = tgc_rt_step_float(s, "eps", layer ? 1e-5 : 1e-6);
  tgc_dtype dt = x->dtype;
  if (!is_float(dt))
    return step_error(c, s, "needs a floating-point result type, not %s", tgc_dtype_name(dt));
  size_t outer, mid, inner;
  split3(x, 0, (uint32_t)a, &outer, &mid, &inner); /* outer = 1, mid = rows, inner = normalized size */
  size_t rows = mid, cols = inner;
  for (uint32_t i = 1; i < s->nin; i++) {
    /* gamma and beta have the normalized shape */
    size_t n = numel(in[i]);
    bool ok = in[i]->rank == x->rank - (uint32_t)a;
    for (uint32_t d = 0; ok && d < in[i]->rank; d++)
      ok = in[i]->shape[d] == x->shape[(uint32_t)a + d];
    if (!ok || n != cols) {
      char ts[256], xs[256];
      tensor_type_str(in[i], ts, sizeof ts);
      tensor_type_str(x, xs, sizeof xs);
      return step_error(c, s, "operand #%u %s must have the normalized shape of %s (dims %d..%u)", i, ts, xs, a,
                        x->rank - 1);
    }
  }
  if (alloc_out(c, s, out, dt, x->rank, x->shape))
    return -1;
  double *X = to_floats(x, true), *G = s->nin > 1 ? to_floats(in[1], true) : NULL;
  double *Bt = s->nin > 2 ? to_floats(in[2], true) : NULL, *Y = tgc_xmalloc(sizeof(double) * (rows * cols + 1));
  for (size_t r = 0; r < rows; r++) {
    const double *xr = X + r * cols;
    double mean = 0, var = 0;
    if (layer) {
      for (size_t k = 0; k < cols; k++)
        mean += xr[k];
      mean /= (double)cols;
    }
    for (size_t k = 0; k < cols; k++)
      var += (xr[k] - mean) * (xr[k] - mean);
    var /= (double)cols;
    double inv = 1.0 / sqrt(var + eps);
    for (size_t k = 0; k < cols; k++)
      Y[r * cols + k] = (xr[k] - mean) * inv * (G ? G[k] : 1.0) + (Bt ? Bt[k] : 0.0);
  }
  store_doubles(out, Y, rows * cols);
  free(X);
  free(G);
  free(Bt);
  free(Y);
  return 0;
}

/* ---- matmul ---- */

static int run_matmul(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *a, const tgc_rt_tensor *b,
                      tgc_rt_tensor *out) {
  if (a->rank == 0 || b->rank == 0)
    return step_error(c, s, "operands must have rank 1 or more");
  /* torch.matmul: 1-D operands gain a dim that is dropped again from the result */
  int64_t m = a->rank == 1 ? 1 : a->shape[a->rank - 2], k = a->shape[a->rank - 1];
  int64_t kb = b->rank == 1 ? b->shape[0] : b->shape[b->rank - 2], n = b->rank == 1 ? 1 : b->shape[b->rank - 1];
  if (k != kb) {
    char as[256], bs[256];
    tensor_type_str(a, as, sizeof as);
    tensor_type_str(b, bs, sizeof bs);
    return step_error(c, s, "contraction dims differ: %s has %lld, %s has %lld", as, (long long)k, bs,
                      (long long)kb);
  }
  /* batch dims broadcast */
  uint32_t ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
  uint32_t rbat = ra > rb ? ra : rb;
  int64_t bshape[TGC_RT_MAX_RANK];
  for (uint32_t d = 0; d < rbat; d++) {
    int64_t da = d + ra >= rbat ? a->shape[d + ra - rbat] : 1, db = d + rb >= rbat ? b->shape[d + rb - rbat] : 1;
    if (da != db && da != 1 && db != 1)
      return step_error(c, s, "batch dims do not broadcast (%lld vs %lld)", (long long)da, (long long)db);
    bshape[d] = da == 1 ? db : da;
  }
  int64_t shape[TGC_RT_MAX_RANK];
  uint32_t rank = 0;
  for (uint32_t d = 0; d < rbat; d++)
    shape[rank++] = bshape[d];
  if (a->rank > 1)
    shape[rank++] = m;
  if (b->rank > 1)
    shape[rank++] = n;
  if (a->dtype != b->dtype)
    return step_error(c, s, "operands have different dtypes, %s and %s (insert a cast)", tgc_dtype_name(a->dtype),
                      tgc_dtype_name(b->dtype));
  tgc_dtype dt = a->dtype;
  if (alloc_out(c, s, out, dt, rank, shape))
    return -1;
  bool dbl = a->dtype == TGC_DT_F64 || b->dtype == TGC_DT_F64 || dt == TGC_DT_F64 || !is_float(dt);
  void *A = to_floats(a, dbl), *B = to_floats(b, dbl);
  size_t batches = 1;
  for (uint32_t d = 0; d < rbat; d++)
    batches *= (size_t)bshape[d];
  size_t mn = (size_t)(m * n);
  void *C = tgc_xmalloc((mn ? mn : 1) * (dbl ? sizeof(double) : sizeof(float)));
  int64_t ast[TGC_RT_MAX_RANK], bst[TGC_RT_MAX_RANK], idx[TGC_RT_MAX_RANK] = {0};
  /* strides (in matrices) of each operand's batch dims, 0 where broadcast */
  int64_t acc = 1;
  for (uint32_t d = rbat; d-- > 0;) {
    int64_t da = d + ra >= rbat ? a->shape[d + ra - rbat] : 1;
    ast[d] = da == 1 ? 0 : acc;
    acc *= da;
  }
  acc = 1;
  for (uint32_t d = rbat; d-- > 0;) {
    int64_t db = d + rb >= rbat ? b->shape[d + rb - rbat] : 1;
    bst[d] = db == 1 ? 0 : acc;
    acc *= db;
  }
  for (size_t bt = 0; bt < batches; bt++) {
    size_t ao = 0, bo = 0;
    for (uint32_t d = 0; d < rbat; d++) {
      ao += (size_t)(idx[d] * ast[d]);
      bo += (size_t)(idx[d] * bst[d]);
    }
    if (m > 0 && n > 0) {
      if (k == 0) {
        memset(C, 0, mn * (dbl ? sizeof(double) : sizeof(float)));
      } else if (dbl) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0,
                    (double *)A + ao * (size_t)(m * k), (int)k, (double *)B + bo * (size_t)(k * n), (int)n, 0.0,
                    (double *)C, (int)n);
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f,
                    (float *)A + ao * (size_t)(m * k), (int)k, (float *)B + bo * (size_t)(k * n), (int)n, 0.0f,
                    (float *)C, (int)n);
      }
    }
    if (out->dtype == TGC_DT_F32 && !dbl)
      memcpy((float *)out->data + bt * mn, C, mn * sizeof(float));
    else
      for (size_t e = 0; e < mn; e++)
        tgc_rt_set(out, bt * mn + e, dbl ? ((double *)C)[e] : ((float *)C)[e]);
    for (uint32_t d = rbat; d-- > 0;) {
      if (++idx[d] < bshape[d])
        break;
      idx[d] = 0;
    }
  }
  free(A);
  free(B);
  free(C);
  return 0;
}

/* ---- attention ---- */

static int run_attention(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *in, tgc_rt_tensor *out) {
  const tgc_rt_tensor *q = in[0], *k = in[1], *v = in[2], *mask = s->nin > 3 ? in[3] : NULL;
  if (q->rank != 4 || k->rank != 4 || v->rank != 4)
    return step_error(c, s, "q, k and v must have rank 4 ([B, H, S, D]), not %u, %u and %u", q->rank, k->rank,
                      v->rank);
  int64_t B = q->shape[0], H = q->shape[1], S = q->shape[2], D = q->shape[3];
  int64_t Hkv = k->shape[1], T = k->shape[2], Dv = v->shape[3];
  if (k->shape[0] != B || v->shape[0] != B || v->shape[1] != Hkv || v->shape[2] != T || k->shape[3] != D)
    return step_error(c, s, "k [%lld, %lld, %lld, %lld] and v [%lld, %lld, %lld, %lld] do not match q [%lld, %lld, "
                      "%lld, %lld]", (long long)k->shape[0], (long long)k->shape[1], (long long)k->shape[2],
                      (long long)k->shape[3], (long long)v->shape[0], (long long)v->shape[1], (long long)v->shape[2],
                      (long long)v->shape[3], (long long)B, (long long)H, (long long)S, (long long)D);
  if (Hkv == 0 || H % Hkv != 0)
    return step_error(c, s, "the %lld query heads are not a multiple of the %lld key/value heads", (long long)H,
                      (long long)Hkv);
  int64_t mst[4] = {0, 0, 0, 0};
  if (mask) {
    if (mask->rank > 4)
      return step_error(c, s, "the mask has rank %u; it must broadcast to [B, H, S, T]", mask->rank);
    int64_t full[4] = {B, H, S, T}, own[TGC_RT_MAX_RANK];
    strides_of(mask->rank, mask->shape, own);
    for (uint32_t d = 0; d < 4; d++) {
      int64_t off = (int64_t)d - (4 - (int64_t)mask->rank);
      if (off < 0)
        continue;
      if (mask->shape[off] != 1 && mask->shape[off] != full[d])
        return step_error(c, s, "mask dim %lld is %lld; it must be 1 or %lld", (long long)off,
                          (long long)mask->shape[off], (long long)full[d]);
      mst[d] = mask->shape[off] == 1 ? 0 : own[off];
    }
  }
  double scale = tgc_rt_step_float(s, "scale", 1.0 / sqrt((double)D));
  bool causal = tgc_rt_step_bool(s, "causal", false);
  tgc_dtype dt = q->dtype;
  int64_t shape[4] = {B, H, S, Dv};
  if (alloc_out(c, s, out, dt, 4, shape))
    return -1;
  /* per (batch, head): P = softmax(Q K^T * scale + mask) and O = P V, both products through dgemm */
  double *Q = to_floats(q, true), *K = to_floats(k, true), *V = to_floats(v, true);
  double *M = mask ? to_floats(mask, true) : NULL;
  double *P = tgc_xmalloc(sizeof(double) * (size_t)(S * T > 0 ? S * T : 1));
  double *O = tgc_xmalloc(sizeof(double) * (size_t)(B * H * S * Dv > 0 ? B * H * S * Dv : 1));
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++) {
      int64_t hk = h / (H / Hkv);
      const double *Qh = Q + (b * H + h) * S * D, *Kh = K + (b * Hkv + hk) * T * D, *Vh = V + (b * Hkv + hk) * T * Dv;
      double *Oh = O + (b * H + h) * S * Dv;
      if (S > 0 && T > 0 && D > 0)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)S, (int)T, (int)D, scale, Qh, (int)D, Kh, (int)D,
                    0.0, P, (int)T);
      else
        memset(P, 0, sizeof(double) * (size_t)(S * T));
      for (int64_t i = 0; i < S; i++) {
        double *row = P + i * T, mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < T; j++) {
          if (causal && j > i) {
            row[j] = -INFINITY;
          } else if (M) {
            double m = M[b * mst[0] + h * mst[1] + i * mst[2] + j * mst[3]];
            if (mask->dtype == TGC_DT_BOOL)
              row[j] = m != 0 ? row[j] : -INFINITY;
            else
              row[j] += m;
          }
          mx = fmax(mx, row[j]);
        }
        for (int64_t j = 0; j < T; j++) {
          row[j] = isinf(mx) && mx < 0 ? NAN : exp(row[j] - mx); /* a fully masked row gives nan, as in torch */
          sum += row[j];
        }
        for (int64_t j = 0; j < T; j++)
          row[j] /= sum;
      }
      if (S > 0 && Dv > 0 && T > 0)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)S, (int)Dv, (int)T, 1.0, P, (int)T, Vh, (int)Dv,
                    0.0, Oh, (int)Dv);
      else
        memset(Oh, 0, sizeof(double) * (size_t)(S * Dv));
    }
  store_doubles(out, O, (size_t)(B * H * S * Dv));
  free(P);
  free(O);
  free(M);
  free(Q);
  free(K);
  free(V);
  return 0;
}

/* ---- data movement ---- */

static void copy_elem(tgc_rt_tensor *dst, size_t di, const tgc_rt_tensor *src, size_t si) {
  size_t es = tgc_rt_dtype_size(src->dtype);
  if (dst->dtype == src->dtype)
    memcpy((char *)dst->data + di * es, (const char *)src->data + si * es, es);
  else if (is_float(dst->dtype) || is_float(src->dtype))
    tgc_rt_set(dst, di, tgc_rt_get(src, si));
  else
    tgc_rt_set_i64(dst, di, tgc_rt_get_i64(src, si));
}

/* out[i...] = x[sum(i_d * st_d)] over OUT's shape: transposes and broadcasts are strided views. */
static void strided_copy(tgc_rt_tensor *out, const tgc_rt_tensor *x, const int64_t *shape, const int64_t *st) {
  int64_t idx[TGC_RT_MAX_RANK] = {0}, off = 0;
  size_t n = numel(out);
  for (size_t e = 0; e < n; e++) {
    copy_elem(out, e, x, (size_t)off);
    for (uint32_t d = out->rank; d-- > 0;) {
      idx[d]++;
      off += st[d];
      if (idx[d] < shape[d])
        break;
      off -= st[d] * idx[d];
      idx[d] = 0;
    }
  }
}

static int declared_shape(cpu_ctx *c, const tgc_rt_step *s, uint32_t i, int64_t *shape) {
  if (!s->out_types[i].known)
    return step_error(c, s, "needs a declared result type");
  return eval_shape(c, s, &s->out_types[i], shape);
}

/* The result shape of reshape step S of X (X's data is not read): its declared type's, of X's element count. */
static int reshape_shape(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, int64_t *shape, size_t *n) {
  const tgc_rt_type *t = &s->out_types[0];
  if (declared_shape(c, s, 0, shape))
    return -1;
  if (!tgc_rt_numel(t->rank, shape, n) || *n != numel(x)) {
    char xs[256], ts[256];
    tensor_type_str(x, xs, sizeof xs);
    type_str(c, t, ts, sizeof ts);
    return step_error(c, s, "cannot reshape %s (%zu elements) to %s", xs, numel(x), ts);
  }
  return 0;
}

static int run_reshape(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
  int64_t shape[TGC_RT_MAX_RANK];
  const tgc_rt_type *t = &s->out_types[0];
  size_t n;
  if (reshape_shape(c, s, x, shape, &n) || alloc_out(c, s, out, x->dtype, t->rank, shape))
    return -1;
  for (size_t e = 0; e < n; e++)
    copy_elem(out, e, x, e);
  return 0;
}

static int run_transpose(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
  const tgc_rt_attr *perm = tgc_rt_step_attr(s, "perm");
  if (!perm || perm->n != x->rank)
    return step_error(c, s, "'perm' has %u entries for an operand of rank %u", perm ? perm->n : 0, x->rank);
  int64_t shape[TGC_RT_MAX_RANK], ist[TGC_RT_MAX_RANK], st[TGC_RT_MAX_RANK];
  bool used[TGC_RT_MAX_RANK] = {false};
  for (uint32_t i = 0; i < x->rank; i++) {
    int64_t p = perm->items[i].i;
    if (p < 0 || p >= (int64_t)x->rank || used[p])
      return step_error(c, s, "'perm' is not a permutation of 0..%u", x->rank - 1);
    used[p] = true;
    shape[i] = x->shape[p];
  }
  strides_of(x->rank, x->shape, ist);
  for (uint32_t i = 0; i < x->rank; i++)
    st[i] = ist[perm->items[i].i];
  tgc_dtype dt = x->dtype;
  if (alloc_out(c, s, out, dt, x->rank, shape))
    return -1;
  strided_copy(out, x, shape, st);
  return 0;
}

static int run_broadcast_to(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
  int64_t shape[TGC_RT_MAX_RANK];
  const tgc_rt_type *t = &s->out_types[0];
  if (declared_shape(c, s, 0, shape))
    return -1;
  bool ok = x->rank <= t->rank;
  for (uint32_t i = 0; ok && i < x->rank; i++) {
    int64_t xd = x->shape[i], od = shape[t->rank - x->rank + i];
    ok = xd == od || xd == 1;
  }
  if (!ok) {
    char xs[256], ts[256];
    tensor_type_str(x, xs, sizeof xs);
    type_str(c, t, ts, sizeof ts);
    return step_error(c, s, "cannot broadcast %s to %s", xs, ts);
  }
  if (alloc_out(c, s, out, x->dtype, t->rank, shape))
    return -1;
  int64_t st[TGC_RT_MAX_RANK];
  bcast_strides(x, t->rank, shape, st);
  strided_copy(out, x, shape, st);
  return 0;
}

static int run_slice(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
  int a = norm_axis(c, s, tgc_rt_step_int(s, "axis", 0), x->rank, "axis");
  if (a < 0 || x->rank == 0)
    return a < 0 ? -1 : step_error(c, s, "needs an operand of rank 1 or more");
  int64_t dim = x->shape[a], start = tgc_rt_step_int(s, "start", 0), end = tgc_rt_step_int(s, "end", INT64_MAX);
  int64_t step = tgc_rt_step_int(s, "step", 1);
  if (step <= 0)
    return step_error(c, s, "'step' must be positive, not %lld", (long long)step);
  int64_t len;
  tgc_slice_range(dim, start, end, step, &start, &len); /* Python's clamping, overflow-free */
  int64_t shape[TGC_RT_MAX_RANK];
  memcpy(shape, x->shape, sizeof(int64_t) * x->rank);
  shape[a] = len;
  tgc_dtype dt = x->dtype;
  if (alloc_out(c, s, out, dt, x->rank, shape))
    return -1;
  size_t outer, mid, inner;
  split3(x, (uint32_t)a, (uint32_t)a + 1, &outer, &mid, &inner);
  for (size_t o = 0; o < outer; o++)
    for (int64_t k = 0; k < len; k++)
      for (size_t i = 0; i < inner; i++)
        copy_elem(out, (o * (size_t)len + (size_t)k) * inner + i, x, (o * mid + (size_t)(start + k * step)) * inner + i);
  return 0;
}

static int run_concat(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *in, tgc_rt_tensor *out) {
  const tgc_rt_tensor *x = in[0];
  int a = norm_axis(c, s, tgc_rt_step_int(s, "axis", 0), x->rank, "axis");
  if (a < 0 || x->rank == 0)
    return a < 0 ? -1 : step_error(c, s, "needs operands of rank 1 or more");
  int64_t shape[TGC_RT_MAX_RANK];
  memcpy(shape, x->shape, sizeof(int64_t) * x->rank);
  shape[a] = 0;
  tgc_dtype dt = x->dtype;
  for (uint32_t i = 0; i < s->nin; i++) {
    bool ok = in[i]->rank == x->rank;
    for (uint32_t d = 0; ok && d < x->rank; d++)
      ok = d == (uint32_t)a || in[i]->shape[d] == x->shape[d];
    if (!ok) {
      char xs[256], ys[256];
      tensor_type_str(x, xs, sizeof xs);
      tensor_type_str(in[i], ys, sizeof ys);
      return step_error(c, s, "operand #%u %s does not match operand #0 %s outside axis %d", i, ys, xs, a);
    }
    shape[a] += in[i]->shape[a];
    if (in[i]->dtype != dt)
      return step_error(c, s, "operand #%u is %s, but operand #0 is %s (insert a cast)", i,
                        tgc_dtype_name(in[i]->dtype), tgc_dtype_name(dt));
  }
  if (alloc_out(c, s, out, dt, x->rank, shape))
    return -1;
  size_t outer, mid, inner;
  split3(out, (uint32_t)a, (uint32_t)a + 1, &outer, &mid, &inner);
  size_t base = 0;
  for (uint32_t i = 0; i < s->nin; i++) {
    size_t m = (size_t)in[i]->shape[a];
    for (size_t o = 0; o < outer; o++)
      for (size_t k = 0; k < m; k++)
        for (size_t j = 0; j < inner; j++)
          copy_elem(out, (o * mid + base + k) * inner + j, in[i], (o * m + k) * inner + j);
    base += m;
  }
  return 0;
}

static int run_split(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *outs) {
  int a = norm_axis(c, s, tgc_rt_step_int(s, "axis", 0), x->rank, "axis");
  if (a < 0 || x->rank == 0)
    return a < 0 ? -1 : step_error(c, s, "needs an operand of rank 1 or more");
  const tgc_rt_attr *sizes = tgc_rt_step_attr(s, "sizes");
  int64_t total = 0;
  for (uint32_t i = 0; sizes && i < sizes->n; i++)
    total += sizes->items[i].i;
  if (!sizes || sizes->n != s->nout || total != x->shape[a])
    return step_error(c, s, "the sizes add up to %lld, but dim %d is %lld", (long long)total, a,
                      (long long)x->shape[a]);
  size_t outer, mid, inner;
  split3(x, (uint32_t)a, (uint32_t)a + 1, &outer, &mid, &inner);
  size_t base = 0;
  for (uint32_t r = 0; r < s->nout; r++) {
    int64_t shape[TGC_RT_MAX_RANK];
    memcpy(shape, x->shape, sizeof(int64_t) * x->rank);
    shape[a] = sizes->items[r].i;
    tgc_dtype dt = x->dtype;
    if (alloc_out(c, s, &outs[r], dt, x->rank, shape))
      return -1;
    size_t m = (size_t)shape[a];
    for (size_t o = 0; o < outer; o++)
      for (size_t k = 0; k < m; k++)
        for (size_t j = 0; j < inner; j++)
          copy_elem(&outs[r], (o * m + k) * inner + j, x, (o * mid + base + k) * inner + j);
    base += m;
  }
  return 0;
}

static int index_at(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *idx, size_t e, int64_t dim, int64_t *out) {
  if (is_float(idx->dtype))
    return step_error(c, s, "indices must be integers, not %s", tgc_dtype_name(idx->dtype));
  int64_t i = tgc_rt_get_i64(idx, e);
  if (i < -dim || i >= dim)
    return step_error(c, s, "index %lld is out of range for a dim of size %lld", (long long)i, (long long)dim);
  *out = i < 0 ? i + dim : i;
  return 0;
}

static int run_gather(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, const tgc_rt_tensor *idx,
                      tgc_rt_tensor *out) {
  int a = norm_axis(c, s, tgc_rt_step_int(s, "axis", 0), x->rank, "axis");
  if (a < 0)
    return -1;
  if (idx->rank != x->rank)
    return step_error(c, s, "the index has rank %u, but the operand has rank %u (gather works like torch.gather)",
                      idx->rank, x->rank);
  for (uint32_t d = 0; d < x->rank; d++)
    if (d != (uint32_t)a && idx->shape[d] > x->shape[d])
      return step_error(c, s, "index dim %u is %lld, larger than the operand's %lld", d, (long long)idx->shape[d],
                        (long long)x->shape[d]);
  tgc_dtype dt = x->dtype;
  if (alloc_out(c, s, out, dt, idx->rank, idx->shape))
    return -1;
  int64_t xst[TGC_RT_MAX_RANK], id[TGC_RT_MAX_RANK] = {0};
  strides_of(x->rank, x->shape, xst);
  size_t n = numel(out);
  for (size_t e = 0; e < n; e++) {
    int64_t j;
    if (index_at(c, s, idx, e, x->shape[a], &j))
      return -1;
    int64_t off = 0;
    for (uint32_t d = 0; d < x->rank; d++)
      off += (d == (uint32_t)a ? j : id[d]) * xst[d];
    copy_elem(out, e, x, (size_t)off);
    for (uint32_t d = idx->rank; d-- > 0;) {
      if (++id[d] < idx->shape[d])
        break;
      id[d] = 0;
    }
  }
  return 0;
}

static int run_embedding(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *table, const tgc_rt_tensor *ids,
                         tgc_rt_tensor *out) {
  if (table->rank != 2)
    return step_error(c, s, "the table must have rank 2, not %u", table->rank);
  if (ids->rank + 1 > TGC_RT_MAX_RANK)
    return step_error(c, s, "the ids have too high a rank");
  int64_t shape[TGC_RT_MAX_RANK];
  memcpy(shape, ids->shape, sizeof(int64_t) * ids->rank);
  shape[ids->rank] = table->shape[1];
  tgc_dtype dt = table->dtype;
  if (alloc_out(c, s, out, dt, ids->rank + 1, shape))
    return -1;
  size_t n = numel(ids), d = (size_t)table->shape[1];
  for (size_t e = 0; e < n; e++) {
    int64_t j;
    if (index_at(c, s, ids, e, table->shape[0], &j))
      return -1;
    for (size_t k = 0; k < d; k++)
      copy_elem(out, e * d + k, table, (size_t)j * d + k);
  }
  return 0;
}

static int run_iota(cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *out) {
  int64_t shape[TGC_RT_MAX_RANK];
  const tgc_rt_type *t = &s->out_types[0];
  if (declared_shape(c, s, 0, shape))
    return -1;
  int a = norm_axis(c, s, tgc_rt_step_int(s, "axis", 0), t->rank, "axis");
  if (a < 0 || alloc_out(c, s, out, t->dtype, t->rank, shape))
    return -1;
  size_t outer, mid, inner;
  split3(out, (uint32_t)a, (uint32_t)a + 1, &outer, &mid, &inner);
  for (size_t o = 0; o < outer; o++)
    for (size_t k = 0; k < mid; k++)
      for (size_t i = 0; i < inner; i++)
        tgc_rt_set_i64(out, (o * mid + k) * inner + i, (int64_t)k);
  if (is_float(t->dtype))
    for (size_t e = 0; e < numel(out); e++)
      tgc_rt_set(out, e, (double)((e / inner) % (mid ? mid : 1)));
  return 0;
}

/* The result shape of pad step S of X (X's data is not read). */
static int pad_shape(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, int64_t *shape) {
  const tgc_rt_attr *lo = tgc_rt_step_attr(s, "low"), *hi = tgc_rt_step_attr(s, "high");
  if (!lo || !hi || lo->n != x->rank || hi->n != x->rank)
    return step_error(c, s, "'low' and 'high' need one entry per dim (%u)", x->rank);
  for (uint32_t d = 0; d < x->rank; d++) {
    int64_t l = lo->items[d].i, h = hi->items[d].i;
    if (l < 0 || h < 0)
      return step_error(c, s, "negative padding is not supported (dim %u)", d);
    if (__builtin_add_overflow(x->shape[d], l, &shape[d]) || __builtin_add_overflow(shape[d], h, &shape[d]))
      return step_error(c, s, "dim %u of the result, %lld + %lld + %lld, overflows 64-bit integers", d,
                        (long long)x->shape[d], (long long)l, (long long)h);
  }
  return 0;
}

static int run_pad(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
  const tgc_rt_attr *lo = tgc_rt_step_attr(s, "low");
  int64_t shape[TGC_RT_MAX_RANK];
  if (pad_shape(c, s, x, shape))
    return -1;
  tgc_dtype dt = x->dtype;
  if (alloc_out(c, s, out, dt, x->rank, shape))
    return -1;
  double value = tgc_rt_step_float(s, "value", 0.0);
  size_t n = numel(out);
  for (size_t e = 0; e < n; e++)
    tgc_rt_set(out, e, value);
  int64_t idx[TGC_RT_MAX_RANK] = {0}, ost[TGC_RT_MAX_RANK];
  strides_of(x->rank, shape, ost);
  size_t m = numel(x);
  for (size_t e = 0; e < m; e++) {
    int64_t off = 0;
    for (uint32_t d = 0; d < x->rank; d++)
      off += (idx[d] + lo->items[d].i) * ost[d];
    copy_elem(out, (size_t)off, x, e);
    for (uint32_t d = x->rank; d-- > 0;) {
      if (++idx[d] < x->shape[d])
        break;
      idx[d] = 0;
    }
  }
  return 0;
}

/* ---- structure ---- */

/* The weight of param step S: present in the weights and of its declared dtype and shape at SYMS. */
static int param_weight(cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *w, int64_t *shape) {
  const char *name = tgc_rt_step_str(s, "name", "");
  const tgc_rt_type *t = &s->out_types[0];
  if (declared_shape(c, s, 0, shape))
    return -1;
  if (!c->opts || !c->opts->weights)
    return step_error(c, s, "parameter '%s' needs weights, but none were given (--weights FILE.safetensors)", name);
  const char *wname = c->opts->weights_name ? c->opts->weights_name : tgc_rt_weights_label(c->opts->weights);
  if (tgc_rt_weights_get(c->opts->weights, name, w))
    return step_error(c, s, "parameter '%s' is missing from %s", name, wname);
  bool ok = w->dtype == t->dtype && w->rank == t->rank;
  for (uint32_t i = 0; ok && i < t->rank; i++)
    ok = w->shape[i] == shape[i];
  if (!ok) {
    char ws[256], ts[256];
    tensor_type_str(w, ws, sizeof ws);
    type_str(c, t, ts, sizeof ts);
    return step_error(c, s, "parameter '%s' is %s in %s, but the module declares %s", name, ws, wname, ts);
  }
  return 0;
}

int tgc_rt_param_weight(const tgc_rt_step *s, const int64_t *syms, const tgc_rt_cpu_opts *opts, tgc_rt_tensor *w,
                        tgc_rt_err *err) {
  cpu_ctx c;
  memset(&c, 0, sizeof c);
  c.opts = opts;
  c.err = err;
  c.syms = (int64_t *)syms; /* only read */
  int64_t shape[TGC_RT_MAX_RANK];
  return param_weight(&c, s, w, shape) ? 1 : 0;
}

static int run_param(cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *out) {
  const tgc_rt_type *t = &s->out_types[0];
  int64_t shape[TGC_RT_MAX_RANK];
  tgc_rt_tensor w;
  if (param_weight(c, s, &w, shape) || alloc_out(c, s, out, t->dtype, t->rank, shape))
    return -1;
  memcpy(out->data, w.data, tgc_rt_tensor_nbytes(out));
  return 0;
}

static void flatten_values(const tgc_rt_attr *a, const tgc_rt_attr **out, size_t *k) {
  if (a->kind == TGC_RT_ATTR_LIST) {
    for (uint32_t i = 0; i < a->n; i++)
      flatten_values(&a->items[i], out, k);
    return;
  }
  out[(*k)++] = a;
}

static size_t count_values(const tgc_rt_attr *a) {
  if (a->kind != TGC_RT_ATTR_LIST)
    return 1;
  size_t n = 0;
  for (uint32_t i = 0; i < a->n; i++)
    n += count_values(&a->items[i]);
  return n;
}

static int run_constant(cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *out) {
  const tgc_rt_type *t = &s->out_types[0];
  int64_t shape[TGC_RT_MAX_RANK];
  if (declared_shape(c, s, 0, shape) || alloc_out(c, s, out, t->dtype, t->rank, shape))
    return -1;
  const tgc_rt_attr *v = tgc_rt_step_attr(s, "value");
  size_t n = numel(out), m = v ? count_values(v) : 0;
  if (m != 1 && m != n)
    return step_error(c, s, "has %zu values for %zu elements", m, n);
  const tgc_rt_attr **vals = tgc_xmalloc(sizeof *vals * (m ? m : 1));
  size_t k = 0;
  flatten_values(v, vals, &k);
  for (size_t e = 0; e < n; e++) {
    const tgc_rt_attr *x = vals[m == 1 ? 0 : e];
    /* integer literals stay exact in integer dtypes; floats convert as a cast does (bool: x != 0) */
    if (x->kind == TGC_RT_ATTR_FLOAT || is_float(t->dtype))
      tgc_rt_set(out, e, x->kind == TGC_RT_ATTR_FLOAT ? x->f : (double)x->i);
    else
      tgc_rt_set_i64(out, e, t->dtype == TGC_DT_BOOL ? x->i != 0 : x->i);
  }
  free(vals);
  return 0;
}

/* ---- quantization ---- */

static int run_quant(cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *in, tgc_rt_tensor *out) {
  const tgc_rt_tensor *x = in[0], *scales = s->nin > 1 ? in[1] : NULL, *zps = s->nin > 2 ? in[2] : NULL;
  const tgc_rt_type *t = &s->out_types[0];
  bool q = s->op == TGC_OP_QUANTIZE;
  if (!t->known)
    return step_error(c, s, "needs a declared result type");
  if (alloc_out(c, s, out, t->dtype, x->rank, x->shape))
    return -1;
  double scale = tgc_rt_step_float(s, "scale", 1.0);
  int64_t zp = tgc_rt_step_int(s, "zero_point", 0), group = tgc_rt_step_int(s, "group", 0);
  bool has_axis = tgc_rt_step_attr(s, "axis") != NULL;
  int axis = -1;
  /* docs/ir.md 8.9: per tensor (no axis: attributes or scalar operands), per channel (1-D scales along
   * axis), group-wise (scales shaped like x with dim axis divided by group) */
  int64_t sshape[TGC_RT_MAX_RANK];
  if (!has_axis) {
    if ((scales && numel(scales) != 1) || (zps && numel(zps) != 1))
      return step_error(c, s, "per-tensor quantization (no 'axis') takes scalar scale and zero point operands");
    if (scales)
      scale = tgc_rt_get(scales, 0);
    if (zps)
      zp = tgc_rt_get_i64(zps, 0);
    scales = zps = NULL;
  } else {
    axis = norm_axis(c, s, tgc_rt_step_int(s, "axis", 0), x->rank, "axis");
    if (axis < 0)
      return -1;
    if (!scales)
      return step_error(c, s, "per-channel quantization ('axis' given) needs a scale operand");
    if (group < 0)
      return step_error(c, s, "'group' must be positive, not %lld", (long long)group);
    memcpy(sshape, x->shape, sizeof(int64_t) * x->rank);
    if (group > 0)
      sshape[axis] = x->shape[axis] / group + (x->shape[axis] % group != 0); /* rounding up, overflow-free */
    const tgc_rt_tensor *ops[2] = {scales, zps};
    for (int k = 0; k < 2; k++) {
      const tgc_rt_tensor *t2 = ops[k];
      if (!t2)
        continue;
      bool ok = group > 0 ? t2->rank == x->rank : (t2->rank == 1 && t2->shape[0] == x->shape[axis]);
      for (uint32_t d = 0; ok && group > 0 && d < x->rank; d++)
        ok = t2->shape[d] == sshape[d];
      if (!ok) {
        char ts[256], ws[256];
        tensor_type_str(t2, ts, sizeof ts);
        if (group > 0)
          tgc_rt_shape_str(x->rank, sshape, ws, sizeof ws);
        else
          snprintf(ws, sizeof ws, "[%lld]", (long long)x->shape[axis]);
        return step_error(c, s, "the %s operand is %s, but %s quantization along axis %d needs shape %s",
                          k ? "zero point" : "scale", ts, group > 0 ? "group-wise" : "per-channel", axis, ws);
      }
    }
  }
  int64_t xst[TGC_RT_MAX_RANK], sst[TGC_RT_MAX_RANK];
  if (axis >= 0) {
    strides_of(x->rank, x->shape, xst);
    strides_of(x->rank, sshape, sst);
  }
  tgc_dtype st = q ? t->dtype : x->dtype; /* the storage dtype */
  bool fstore = is_float(st);
  double qmin = 0, qmax = 0;
  if (!fstore) {
    int bits = tgc_dtype_bits(st);
    bool sgn = tgc_dtype_kind_of(st) == TGC_DTK_SINT;
    qmin = sgn ? -ldexp(1.0, bits - 1) : 0;
    qmax = sgn ? ldexp(1.0, bits - 1) - 1 : ldexp(1.0, bits) - 1;
  }
  size_t n = numel(x);
  for (size_t e = 0; e < n; e++) {
    double sc = scale, z = (double)zp;
    if (axis >= 0) {
      size_t si;
      if (group > 0) {
        size_t rem = e;
        si = 0;
        for (uint32_t d = 0; d < x->rank; d++) {
          size_t id = rem / (size_t)xst[d];
          rem %= (size_t)xst[d];
          si += (d == (uint32_t)axis ? id / (size_t)group : id) * (size_t)sst[d];
        }
      } else {
        si = (e / (size_t)xst[axis]) % (size_t)x->shape[axis];
      }
      sc = tgc_rt_get(scales, si);
      z = zps ? tgc_rt_get(zps, si) : 0;
    }
    double v = tgc_rt_get(x, e);
    if (q) {
      double r = v / sc;
      if (!fstore) {
        r = nearbyint(r) + z; /* the default rounding mode: ties to even */
        r = isnan(r) ? 0 : r < qmin ? qmin : r > qmax ? qmax : r;
      }
      tgc_rt_set(out, e, r);
    } else {
      tgc_rt_set(out, e, (v - z) * sc);
    }
  }
  return 0;
}

/* ---- the interpreter ---- */

static int run_plan(cpu_ctx *c, const tgc_rt_plan *p, const tgc_rt_tensor *inputs, tgc_rt_tensor *outputs);

static int check_result(cpu_ctx *c, const tgc_rt_step *s, uint32_t i, const tgc_rt_tensor *t) {
  const tgc_rt_type *d = &s->out_types[i];
  if (!d->known)
    return 0;
  int64_t shape[TGC_RT_MAX_RANK];
  if (eval_shape(c, s, d, shape))
    return -1;
  bool ok = d->dtype == t->dtype && d->rank == t->rank;
  for (uint32_t k = 0; ok && k < d->rank; k++)
    ok = shape[k] == t->shape[k];
  if (ok)
    return 0;
  char got[256], want[256];
  tensor_type_str(t, got, sizeof got);
  type_str(c, d, want, sizeof want);
  return step_error(c, s, "result #%u is %s, but its declared type is %s", i, got, want);
}

static int run_step(cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *vals) {
  const tgc_rt_tensor *in[64];
  const tgc_rt_tensor **inp = s->nin <= 64 ? in : tgc_xmalloc(sizeof *inp * s->nin);
  for (uint32_t i = 0; i < s->nin; i++)
    inp[i] = &vals[s->in[i]];
  tgc_rt_tensor *out = &vals[s->out[0 < s->nout ? 0 : 0]];
  int rc = 0;
  switch (s->op) {
  case TGC_OP_NEG:
  case TGC_OP_ABS:
  case TGC_OP_EXP:
  case TGC_OP_LOG:
  case TGC_OP_SQRT:
  case TGC_OP_RSQRT:
  case TGC_OP_TANH:
  case TGC_OP_ERF:
  case TGC_OP_SIGMOID:
  case TGC_OP_RELU:
  case TGC_OP_SILU:
  case TGC_OP_SIN:
  case TGC_OP_COS:
  case TGC_OP_NOT:
  case TGC_OP_GELU:
  case TGC_OP_CAST:
  case TGC_OP_CLAMP:
  case TGC_OP_ADD:
  case TGC_OP_SUB:
  case TGC_OP_MUL:
  case TGC_OP_DIV:
  case TGC_OP_POW:
  case TGC_OP_MAXIMUM:
  case TGC_OP_MINIMUM:
  case TGC_OP_EQ:
  case TGC_OP_NE:
  case TGC_OP_LT:
  case TGC_OP_LE:
  case TGC_OP_GT:
  case TGC_OP_GE:
  case TGC_OP_AND:
  case TGC_OP_OR:
  case TGC_OP_WHERE:
    rc = run_elementwise(c, s, inp, out);
    break;
  case TGC_OP_REDUCE_SUM:
  case TGC_OP_REDUCE_MEAN:
  case TGC_OP_REDUCE_MAX:
  case TGC_OP_REDUCE_MIN:
  case TGC_OP_ARGMAX:
    rc = run_reduce(c, s, inp[0], out);
    break;
  case TGC_OP_CUMSUM:
    rc = run_cumsum(c, s, inp[0], out);
    break;
  case TGC_OP_SOFTMAX:
  case TGC_OP_LOG_SOFTMAX:
    rc = run_softmax(c, s, inp[0], out);
    break;
  case TGC_OP_LAYER_NORM:
  case TGC_OP_RMS_NORM:
    rc = run_norm(c, s, inp, out);
    break;
  case TGC_OP_MATMUL:
    rc = run_matmul(c, s, inp[0], inp[1], out);
    break;
  case TGC_OP_ATTENTION:
    rc = run_attention(c, s, inp, out);
    break;
  case TGC_OP_RESHAPE:
    rc = run_reshape(c, s, inp[0], out);
    break;
  case TGC_OP_TRANSPOSE:
    rc = run_transpose(c, s, inp[0], out);
    break;
  case TGC_OP_BROADCAST_TO:
    rc = run_broadcast_to(c, s, inp[0], out);
    break;
  case TGC_OP_SLICE:
    rc = run_slice(c, s, inp[0], out);
    break;
  case TGC_OP_CONCAT:
    rc = run_concat(c, s, inp, out);
    break;
  case TGC_OP_SPLIT: {
    /* results are consecutive slots: lowering numbers an op's results in order */
    rc = run_split(c, s, inp[0], &vals[s->out[0]]);
    break;
  }
  case TGC_OP_GATHER:
    rc = run_gather(c, s, inp[0], inp[1], out);
    break;
  case TGC_OP_EMBEDDING:
    rc = run_embedding(c, s, inp[0], inp[1], out);
    break;
  case TGC_OP_IOTA:
    rc = run_iota(c, s, out);
    break;
  case TGC_OP_PAD:
    rc = run_pad(c, s, inp[0], out);
    break;
  case TGC_OP_PARAM:
    rc = run_param(c, s, out);
    break;
  case TGC_OP_CONSTANT:
    rc = run_constant(c, s, out);
    break;
  case TGC_OP_FUSION: {
    tgc_rt_tensor *args = tgc_xcalloc(s->nin + 1, sizeof *args);
    for (uint32_t i = 0; i < s->nin; i++)
      args[i] = *inp[i]; /* borrowed: the region reads, never frees, its arguments */
    rc = run_plan(c, s->region, args, &vals[s->out[0]]);
    free(args);
    break;
  }
  case TGC_OP_YIELD:
  case TGC_OP_RETURN:
    tgc_unreachable(); /* terminators are not steps */
  case TGC_OP_QUANTIZE:
  case TGC_OP_DEQUANTIZE:
    rc = run_quant(c, s, inp, out);
    break;
  case TGC_OP_ALL_REDUCE:
  case TGC_OP_ALL_GATHER:
  case TGC_OP_REDUCE_SCATTER:
    if (s->mesh_size < 1) {
      rc = step_error(c, s, "no valid device group (a mesh axis it names is missing, or the group is too large)");
      break;
    }
    if (s->mesh_size != 1) {
      rc = step_error(c, s, "the CPU backend runs one device; a group of %lld devices needs the sharding "
                      "simulation", (long long)s->mesh_size);
      break;
    }
    rc = alloc_out(c, s, out, inp[0]->dtype, inp[0]->rank,
                   inp[0]->shape);
    for (size_t e = 0; rc == 0 && e < numel(out); e++)
      copy_elem(out, e, inp[0], e);
    break;
  case TGC_OP_COUNT:
    tgc_unreachable();
  }
  if (inp != in)
    free(inp);
  for (uint32_t i = 0; rc == 0 && i < s->nout; i++)
    rc = check_result(c, s, i, &vals[s->out[i]]);
  return rc;
}

/* Runs P; OUTPUTS receive owned tensors (copies of the returned values). */
static int run_plan(cpu_ctx *c, const tgc_rt_plan *p, const tgc_rt_tensor *inputs, tgc_rt_tensor *outputs) {
  tgc_rt_tensor *vals = tgc_xcalloc(p->nslots + 1, sizeof *vals);
  for (uint32_t i = 0; i < p->ninputs; i++) {
    vals[p->input_slots[i]] = inputs[i];
    vals[p->input_slots[i]].owned = false;
  }
  int rc = 0;
  for (uint32_t i = 0; rc == 0 && i < p->nsteps; i++) {
    if (c->err)
      c->err->msg[0] = 0;
    rc = run_step(c, &p->steps[i], vals);
    if (rc != 0 && c->err && !c->err->msg[0]) {
      /* every failing path must say why; an empty message is a bug of this backend (fatal in debug builds) */
#ifndef NDEBUG
      tgc_fatal(__FILE__, __LINE__, "step %u ('%s' at %s) failed without a message", i,
                tgc_op_name(p->steps[i].op), p->steps[i].loc);
#endif
      step_error(c, &p->steps[i], "failed without a message (step %u; a bug in tgc's CPU backend)", i);
    }
  }
  for (uint32_t i = 0; i < p->noutputs; i++) {
    if (rc != 0) {
      memset(&outputs[i], 0, sizeof outputs[i]);
      continue;
    }
    const tgc_rt_tensor *v = &vals[p->output_slots[i]];
    tgc_rt_err e;
    if (tgc_rt_tensor_alloc(&outputs[i], v->dtype, v->rank, v->shape, &e) != 0) {
      rc = tgc_rt_errorf(c->err, "%s", e.msg);
      continue;
    }
    memcpy(outputs[i].data, v->data, tgc_rt_tensor_nbytes(v));
  }
  for (uint32_t i = 0; i < p->nslots; i++)
    tgc_rt_tensor_free(&vals[i]);
  free(vals);
  if (rc != 0)
    for (uint32_t i = 0; i < p->noutputs; i++)
      tgc_rt_tensor_free(&outputs[i]);
  return rc;
}

/* The shapes of PLAN's values at the bound symbols, without computing them: every declared type evaluated (no
 * overflow, no negative dim), and the ops whose sizes a backend cannot check from types alone computed by the
 * CPU backend's own shape rules (reshape keeps the element count, pad's sums fit in int64). A slot whose shape
 * is unknown here (an untyped result of another op) is skipped: the CPU backend checks it as it runs. */
static int check_sizes(cpu_ctx *c, const tgc_rt_plan *p) {
  tgc_rt_tensor *vals = tgc_xcalloc(p->nslots + 1, sizeof *vals); /* shapes only: data stays NULL */
  bool *known = tgc_xcalloc(p->nslots + 1, sizeof *known);
  int rc = 0;
  for (uint32_t i = 0; i < p->ninputs; i++) {
    const tgc_rt_type *t = &p->input_types[i];
    tgc_rt_tensor *v = &vals[p->input_slots[i]];
    bool ok = t->known;
    for (uint32_t d = 0; ok && d < t->rank; d++)
      ok = tgc_rt_poly_eval(&t->dims[d], c->syms, &v->shape[d]);
    v->dtype = t->dtype;
    v->rank = t->rank;
    known[p->input_slots[i]] = ok;
  }
  for (uint32_t k = 0; rc == 0 && k < p->nsteps; k++) {
    const tgc_rt_step *s = &p->steps[k];
    for (uint32_t i = 0; rc == 0 && i < s->nout; i++) {
      const tgc_rt_type *t = &s->out_types[i];
      tgc_rt_tensor *v = &vals[s->out[i]];
      const tgc_rt_tensor *x = s->nin && known[s->in[0]] ? &vals[s->in[0]] : NULL;
      size_t n;
      if (i == 0 && x && s->op == TGC_OP_RESHAPE && t->known) {
        rc = reshape_shape(c, s, x, v->shape, &n);
        v->dtype = x->dtype;
        v->rank = t->rank;
      } else if (i == 0 && x && s->op == TGC_OP_PAD) {
        rc = pad_shape(c, s, x, v->shape);
        v->dtype = x->dtype;
        v->rank = x->rank;
        rc = rc || check_result(c, s, 0, v);
      } else if (t->known) {
        rc = eval_shape(c, s, t, v->shape);
        v->dtype = t->dtype;
        v->rank = t->rank;
      } else {
        continue;
      }
      known[s->out[i]] = rc == 0;
    }
  }
  free(vals);
  free(known);
  return rc;
}

int tgc_rt_plan_check_sizes(const tgc_rt_plan *plan, const int64_t *syms, tgc_rt_err *err) {
  cpu_ctx c;
  memset(&c, 0, sizeof c);
  c.err = err;
  c.nsyms = plan->nsyms;
  c.syms = tgc_xcalloc(plan->nsyms + 1, sizeof *c.syms);
  if (plan->nsyms)
    memcpy(c.syms, syms, plan->nsyms * sizeof *c.syms);
  int rc = tgc_rt_plan_check(plan, err);
  if (rc == 0)
    rc = check_sizes(&c, plan);
  free(c.syms);
  return rc ? 1 : 0;
}

/* Binds the plan's symbols from the input shapes: first every dim that is a bare symbol, then every other
 * dim is checked against its evaluated expression. */
static int bind_inputs(cpu_ctx *c, const tgc_rt_plan *p, const tgc_rt_tensor *inputs) {
  for (int pass = 0; pass < 2; pass++) {
    for (uint32_t i = 0; i < p->ninputs; i++) {
      const tgc_rt_type *t = &p->input_types[i];
      const tgc_rt_tensor *x = &inputs[i];
      const char *name = p->input_names[i];
      if (!t->known)
        continue;
      if (pass == 0 && (x->rank != t->rank || x->dtype != t->dtype)) {
        char got[256];
        tensor_type_str(x, got, sizeof got);
        return tgc_rt_errorf(c->err, "error: input '%%%s' is %s, but '@%s' declares %s of rank %u", name, got, p->name,
                             tgc_dtype_name(t->dtype), t->rank);
      }
      for (uint32_t d = 0; d < t->rank; d++) {
        const tgc_rt_poly *dim = &t->dims[d];
        bool bare = dim->nterms == 1 && dim->terms[0].coeff == 1 && dim->terms[0].nsyms == 1;
        if (pass == 0 && bare) {
          uint32_t sym = dim->terms[0].syms[0];
          if (!c->bound[sym]) {
            c->bound[sym] = true;
            c->syms[sym] = x->shape[d];
          } else if (c->syms[sym] != x->shape[d]) {
            return tgc_rt_errorf(c->err, "error: input '%%%s' dim %u is %lld, but %s is already %lld from an earlier dim",
                                 name, d, (long long)x->shape[d], p->sym_names[sym], (long long)c->syms[sym]);
          }
        } else if (pass == 1 && !bare) {
          int64_t v;
          if (!tgc_rt_poly_eval(dim, c->syms, &v) || v != x->shape[d])
            return tgc_rt_errorf(c->err, "error: input '%%%s' dim %u is %lld, but its declared size evaluates to %lld",
                                 name, d, (long long)x->shape[d], (long long)v);
        }
      }
    }
  }
  return 0;
}

int tgc_rt_bind_symbols(const tgc_rt_plan *plan, const tgc_rt_tensor *inputs, int64_t *syms, tgc_rt_err *err) {
  cpu_ctx c;
  memset(&c, 0, sizeof c);
  c.err = err;
  c.nsyms = plan->nsyms;
  c.syms = syms;
  c.bound = tgc_xcalloc(plan->nsyms + 1, sizeof *c.bound);
  int rc = bind_inputs(&c, plan, inputs);
  free(c.bound);
  return rc;
}

int tgc_rt_cpu_run(const tgc_rt_plan *plan, const tgc_rt_tensor *inputs, tgc_rt_tensor *outputs,
                   const tgc_rt_cpu_opts *opts, tgc_rt_err *err) {
  cpu_ctx c;
  memset(&c, 0, sizeof c);
  c.opts = opts;
  c.err = err;
  if (err)
    err->msg[0] = 0;
  c.nsyms = plan->nsyms;
  c.syms = tgc_xcalloc(plan->nsyms + 1, sizeof *c.syms);
  c.bound = tgc_xcalloc(plan->nsyms + 1, sizeof *c.bound);
  int rc = tgc_rt_plan_check(plan, err);
  if (rc == 0)
    rc = bind_inputs(&c, plan, inputs);
  if (rc == 0) /* the sizes first, as every backend checks them (tgc_rt_plan_check_sizes) */
    rc = check_sizes(&c, plan);
  if (rc == 0)
    rc = run_plan(&c, plan, inputs, outputs);
  for (uint32_t i = 0; rc == 0 && i < plan->noutputs; i++) {
    const tgc_rt_type *t = &plan->output_types[i];
    if (!t->known)
      continue;
    bool ok = t->dtype == outputs[i].dtype && t->rank == outputs[i].rank;
    for (uint32_t d = 0; ok && d < t->rank; d++) {
      int64_t v;
      ok = tgc_rt_poly_eval(&t->dims[d], c.syms, &v) && v == outputs[i].shape[d];
    }
    if (!ok) {
      char got[256], want[256];
      tensor_type_str(&outputs[i], got, sizeof got);
      type_str(&c, t, want, sizeof want);
      rc = tgc_rt_errorf(err, "error: result #%u of '@%s' is %s, but the function declares %s", i, plan->name, got,
                         want);
      for (uint32_t k = 0; k < plan->noutputs; k++)
        tgc_rt_tensor_free(&outputs[k]);
    }
  }
  free(c.syms);
  free(c.bound);
  return rc;
}

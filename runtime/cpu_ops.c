/* The CPU backend's math kernels: elementwise, reductions, softmax, normalization, matmul (OpenBLAS),
 * attention and quantization, in double, rounded once to the result's dtype (see cpu.c). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "tgc/clamp.h"
#include "tgc/limits.h"

/* ---- tensors ---- */

/* Converts T to a dense float (or double) buffer. */
static void *to_floats(const tgc_rt_tensor *t, bool dbl) {
  size_t n = tgc_rt_cpu_numel(t);
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

/* ---- broadcasting ---- */

static int broadcast_shapes(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *ts, uint32_t n,
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
      tgc_rt_cpu_tensor_type_str(ts[0], a, sizeof a);
      tgc_rt_cpu_tensor_type_str(ts[i], b, sizeof b);
      return tgc_rt_cpu_step_error(c, s, "operands %s and %s do not broadcast (dim %u: %lld vs %lld)", a, b, d,
                                   (long long)v, (long long)x);
    }
    shape[d] = v;
  }
  *rank = r;
  return 0;
}

/* Strides of T viewed with the broadcast shape (rank R): 0 where T is broadcast. */
void tgc_rt_cpu_bcast_strides(const tgc_rt_tensor *t, uint32_t r, const int64_t *shape, int64_t *st) {
  int64_t own[TGC_RT_MAX_RANK];
  tgc_rt_cpu_strides_of(t->rank, t->shape, own);
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

int tgc_rt_cpu_elementwise(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *in,
                           tgc_rt_tensor *out) {
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
      return tgc_rt_cpu_step_error(c, s, "operands #%u and #%u have different dtypes, %s and %s (insert a cast)", first,
                                   i, tgc_dtype_name(in[first]->dtype), tgc_dtype_name(in[i]->dtype));
  if (s->op == TGC_OP_WHERE && in[0]->dtype != TGC_DT_BOOL)
    return tgc_rt_cpu_step_error(c, s, "the condition must be bool, not %s", tgc_dtype_name(in[0]->dtype));
  tgc_dtype dt = in[first]->dtype;
  if (info->flags & TGC_OPF_COMPARE)
    dt = TGC_DT_BOOL;
  else if (s->op == TGC_OP_CAST) {
    if (!s->out_types[0].known)
      return tgc_rt_cpu_step_error(c, s, "needs a declared result type");
    dt = s->out_types[0].dtype;
  }
  if (tgc_rt_cpu_alloc_out(c, s, out, dt, rank, shape))
    return -1;
  /* the domain of the math: float if the result or any (value) operand is float */
  bool fdomain = tgc_rt_cpu_is_float(dt);
  for (uint32_t i = (s->op == TGC_OP_WHERE ? 1 : 0); i < s->nin; i++)
    fdomain = fdomain || tgc_rt_cpu_is_float(in[i]->dtype);
  if (!fdomain && (info->flags & TGC_OPF_FLOAT_ONLY))
    return tgc_rt_cpu_step_error(c, s, "needs a floating-point result type, not %s (cast the operand first)",
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
      return tgc_rt_cpu_step_error(c, s, "'%s' is NaN, which bounds nothing", b->name);
    return tgc_rt_cpu_step_error(c, s, "'%s' is %.16g, which the dtype %s cannot hold: on integers, bounds are "
                                 "integers from %lld to %lld", b->name,
                                 b->kind == TGC_RT_ATTR_INT ? (double)b->i : b->f, tgc_dtype_name(in[0]->dtype),
                                 (long long)lo, (long long)hi);
  }
  if (amin && !tgc_clamp_int_bound(amin->kind == TGC_RT_ATTR_INT, amin->i, amin->f, true, &ilo))
    ilo = INT64_MIN;
  if (amax && !tgc_clamp_int_bound(amax->kind == TGC_RT_ATTR_INT, amax->i, amax->f, false, &ihi))
    ihi = INT64_MAX;
  bool is_bool = dt == TGC_DT_BOOL || (in[0]->dtype == TGC_DT_BOOL && (info->flags & TGC_OPF_LOGICAL));
  int64_t st[3][TGC_RT_MAX_RANK];
  for (uint32_t i = 0; i < s->nin; i++)
    tgc_rt_cpu_bcast_strides(in[i], rank, shape, st[i]);
  size_t n = tgc_rt_cpu_numel(out);
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
    return tgc_rt_cpu_step_error(c, s, "integer division by zero");
  if (bad == 2)
    return tgc_rt_cpu_step_error(c, s, "integer power with a negative exponent");
  if (bad == 3)
    return tgc_rt_cpu_step_error(c, s, "is not defined on integers");
  return 0;
}

/* ---- reductions ---- */

/* Views T as [outer, mid, inner] around axis range [a0, a1). */
void tgc_rt_cpu_split3(const tgc_rt_tensor *t, uint32_t a0, uint32_t a1, size_t *outer, size_t *mid, size_t *inner) {
  *outer = *mid = *inner = 1;
  for (uint32_t i = 0; i < t->rank; i++)
    *(i < a0 ? outer : i < a1 ? mid : inner) *= (size_t)t->shape[i];
}

int tgc_rt_cpu_reduce(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
  bool reduce[TGC_RT_MAX_RANK] = {false};
  bool keep = tgc_rt_step_bool(s, "keepdim", false);
  if (s->op == TGC_OP_ARGMAX) {
    int a = tgc_rt_cpu_norm_axis(c, s, tgc_rt_step_int(s, "axis", 0), x->rank, "axis");
    if (a < 0)
      return -1;
    if (x->rank)
      reduce[a] = true;
  } else {
    const tgc_rt_attr *axes = tgc_rt_step_attr(s, "axes");
    for (uint32_t i = 0; axes && i < axes->n; i++) {
      int a = tgc_rt_cpu_norm_axis(c, s, axes->items[i].i, x->rank, "axis");
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
      return tgc_rt_cpu_step_error(c, s, "cannot reduce over the empty axis %u", i);
  tgc_dtype dt = s->op == TGC_OP_ARGMAX ? TGC_DT_I64 : x->dtype;
  if (tgc_rt_cpu_alloc_out(c, s, out, dt, rank, shape))
    return -1;
  size_t n = tgc_rt_cpu_numel(out);
  double *acc = tgc_xcalloc(n ? n : 1, sizeof *acc);
  int64_t *arg = tgc_xcalloc(n ? n : 1, sizeof *arg);
  bool *seen = tgc_xcalloc(n ? n : 1, sizeof *seen);
  int64_t *iacc = tgc_xcalloc(n ? n : 1, sizeof *iacc);
  /* map each input element to its output element */
  int64_t ost[TGC_RT_MAX_RANK], full[TGC_RT_MAX_RANK];
  uint32_t k = 0;
  for (uint32_t i = 0; i < x->rank; i++)
    full[i] = reduce[i] ? 1 : x->shape[i];
  tgc_rt_cpu_strides_of(x->rank, full, ost);
  (void)k;
  int64_t idx[TGC_RT_MAX_RANK] = {0};
  size_t m = tgc_rt_cpu_numel(x);
  for (size_t e = 0; e < m; e++) {
    size_t o = 0;
    for (uint32_t i = 0; i < x->rank; i++)
      o += reduce[i] ? 0 : (size_t)(idx[i] * ost[i]);
    double v = tgc_rt_get(x, e);
    if (!tgc_rt_cpu_is_float(x->dtype) && s->op != TGC_OP_REDUCE_MEAN) {
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
    else if (!tgc_rt_cpu_is_float(x->dtype))
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
static int axis_view(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, int64_t dflt, size_t *outer,
                     size_t *mid, size_t *inner) {
  int a = tgc_rt_cpu_norm_axis(c, s, tgc_rt_step_int(s, "axis", dflt), x->rank, "axis");
  if (a < 0)
    return -1;
  tgc_rt_cpu_split3(x, (uint32_t)a, (uint32_t)a + 1, outer, mid, inner);
  if (x->rank == 0)
    *mid = 1;
  return a;
}

int tgc_rt_cpu_cumsum(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
  size_t outer, mid, inner;
  if (axis_view(c, s, x, 0, &outer, &mid, &inner) < 0)
    return -1;
  tgc_dtype dt = x->dtype;
  if (tgc_rt_cpu_alloc_out(c, s, out, dt, x->rank, x->shape))
    return -1;
  for (size_t o = 0; o < outer; o++)
    for (size_t i = 0; i < inner; i++) {
      double accf = 0;
      int64_t acci = 0;
      for (size_t k = 0; k < mid; k++) {
        size_t e = (o * mid + k) * inner + i;
        if (tgc_rt_cpu_is_float(dt)) {
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

int tgc_rt_cpu_softmax(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
  size_t outer, mid, inner;
  if (axis_view(c, s, x, -1, &outer, &mid, &inner) < 0)
    return -1;
  tgc_dtype dt = x->dtype;
  if (!tgc_rt_cpu_is_float(dt))
    return tgc_rt_cpu_step_error(c, s, "needs a floating-point result type, not %s", tgc_dtype_name(dt));
  if (tgc_rt_cpu_alloc_out(c, s, out, dt, x->rank, x->shape))
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

int tgc_rt_cpu_norm(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *in, tgc_rt_tensor *out) {
  const tgc_rt_tensor *x = in[0];
  bool layer = s->op == TGC_OP_LAYER_NORM;
  /* a scalar has no axis to normalize over (rms_norm's is the last; layer_norm's axis -1 would be accepted by
   * norm_axis at rank 0), so rank 0 is an error before any axis is computed */
  if (x->rank == 0)
    return tgc_rt_cpu_step_error(c, s, "needs an operand of rank 1 or more (a scalar has no axis to normalize)");
  int a = layer ? tgc_rt_cpu_norm_axis(c, s, tgc_rt_step_int(s, "axis", -1), x->rank, "axis") : (int)x->rank - 1;
  if (a < 0)
    return -1;
  double eps = tgc_rt_step_float(s, "eps", layer ? 1e-5 : 1e-6);
  tgc_dtype dt = x->dtype;
  if (!tgc_rt_cpu_is_float(dt))
    return tgc_rt_cpu_step_error(c, s, "needs a floating-point result type, not %s", tgc_dtype_name(dt));
  size_t outer, mid, inner;
  tgc_rt_cpu_split3(x, 0, (uint32_t)a, &outer, &mid, &inner); /* outer = 1, mid = rows, inner = normalized size */
  size_t rows = mid, cols = inner;
  for (uint32_t i = 1; i < s->nin; i++) {
    /* gamma and beta have the normalized shape */
    size_t n = tgc_rt_cpu_numel(in[i]);
    bool ok = in[i]->rank == x->rank - (uint32_t)a;
    for (uint32_t d = 0; ok && d < in[i]->rank; d++)
      ok = in[i]->shape[d] == x->shape[(uint32_t)a + d];
    if (!ok || n != cols) {
      char ts[256], xs[256];
      tgc_rt_cpu_tensor_type_str(in[i], ts, sizeof ts);
      tgc_rt_cpu_tensor_type_str(x, xs, sizeof xs);
      return tgc_rt_cpu_step_error(c, s, "operand #%u %s must have the normalized shape of %s (dims %d..%u)", i, ts, xs,
                                   a, x->rank - 1);
    }
  }
  if (tgc_rt_cpu_alloc_out(c, s, out, dt, x->rank, x->shape))
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

int tgc_rt_cpu_matmul(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *a, const tgc_rt_tensor *b,
                      tgc_rt_tensor *out) {
  if (a->rank == 0 || b->rank == 0)
    return tgc_rt_cpu_step_error(c, s, "operands must have rank 1 or more");
  /* torch.matmul: 1-D operands gain a dim that is dropped again from the result */
  int64_t m = a->rank == 1 ? 1 : a->shape[a->rank - 2], k = a->shape[a->rank - 1];
  int64_t kb = b->rank == 1 ? b->shape[0] : b->shape[b->rank - 2], n = b->rank == 1 ? 1 : b->shape[b->rank - 1];
  if (k != kb) {
    char as[256], bs[256];
    tgc_rt_cpu_tensor_type_str(a, as, sizeof as);
    tgc_rt_cpu_tensor_type_str(b, bs, sizeof bs);
    return tgc_rt_cpu_step_error(c, s, "contraction dims differ: %s has %lld, %s has %lld", as, (long long)k, bs,
                                 (long long)kb);
  }
  /* batch dims broadcast */
  uint32_t ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
  uint32_t rbat = ra > rb ? ra : rb;
  int64_t bshape[TGC_RT_MAX_RANK];
  for (uint32_t d = 0; d < rbat; d++) {
    int64_t da = d + ra >= rbat ? a->shape[d + ra - rbat] : 1, db = d + rb >= rbat ? b->shape[d + rb - rbat] : 1;
    if (da != db && da != 1 && db != 1)
      return tgc_rt_cpu_step_error(c, s, "batch dims do not broadcast (%lld vs %lld)", (long long)da, (long long)db);
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
  /* docs/ir.md 8.6: i8 x i8 accumulates exactly in i32; fp8 x fp8 (either format) gives f32, or the declared
   * f16 or bf16; other operands share one dtype, which the result keeps */
  bool fp8 = (a->dtype == TGC_DT_F8E4M3 || a->dtype == TGC_DT_F8E5M2) &&
             (b->dtype == TGC_DT_F8E4M3 || b->dtype == TGC_DT_F8E5M2);
  tgc_dtype dt = a->dtype;
  if (a->dtype == TGC_DT_I8 && b->dtype == TGC_DT_I8) {
    dt = TGC_DT_I32;
    if (k > TGC_MATMUL_I8_MAX_K)
      return tgc_rt_cpu_step_error(c, s, "an i8 matmul's contraction dim is %lld: an exact i32 accumulation allows "
                                   "at most %d", (long long)k, TGC_MATMUL_I8_MAX_K);
  } else if (fp8) {
    dt = s->out_types[0].known ? s->out_types[0].dtype : TGC_DT_F32;
    if (dt != TGC_DT_F32 && dt != TGC_DT_F16 && dt != TGC_DT_BF16)
      return tgc_rt_cpu_step_error(c, s, "an fp8 matmul gives f32, f16 or bf16, not %s", tgc_dtype_name(dt));
  } else if (a->dtype != b->dtype) {
    return tgc_rt_cpu_step_error(c, s, "operands have different dtypes, %s and %s (insert a cast)",
                                 tgc_dtype_name(a->dtype), tgc_dtype_name(b->dtype));
  }
  if (tgc_rt_cpu_alloc_out(c, s, out, dt, rank, shape))
    return -1;
  /* Double (dgemm) for f64 and integers, exact for integer sums below 2^53 (the i8 one by its K limit), and
   * for fp8: its products are exact and an f8e4m3 dot product's partial sums are multiples of 2^-18 below
   * 2^17.6 * K, exact in double for K < 2^17, so the result is the exact dot product rounded once. */
  bool dbl = a->dtype == TGC_DT_F64 || b->dtype == TGC_DT_F64 || dt == TGC_DT_F64 || !tgc_rt_cpu_is_float(dt) ||
             !tgc_rt_cpu_is_float(a->dtype) || fp8;
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

int tgc_rt_cpu_attention(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *in, tgc_rt_tensor *out) {
  const tgc_rt_tensor *q = in[0], *k = in[1], *v = in[2], *mask = s->nin > 3 ? in[3] : NULL;
  if (q->rank != 4 || k->rank != 4 || v->rank != 4)
    return tgc_rt_cpu_step_error(c, s, "q, k and v must have rank 4 ([B, H, S, D]), not %u, %u and %u", q->rank,
                                 k->rank, v->rank);
  int64_t B = q->shape[0], H = q->shape[1], S = q->shape[2], D = q->shape[3];
  int64_t Hkv = k->shape[1], T = k->shape[2], Dv = v->shape[3];
  if (k->shape[0] != B || v->shape[0] != B || v->shape[1] != Hkv || v->shape[2] != T || k->shape[3] != D)
    return tgc_rt_cpu_step_error(c, s, "k [%lld, %lld, %lld, %lld] and v [%lld, %lld, %lld, %lld] do not match q "
                                 "[%lld, %lld, %lld, %lld]", (long long)k->shape[0], (long long)k->shape[1],
                                 (long long)k->shape[2], (long long)k->shape[3], (long long)v->shape[0],
                                 (long long)v->shape[1], (long long)v->shape[2], (long long)v->shape[3], (long long)B,
                                 (long long)H, (long long)S, (long long)D);
  if (Hkv == 0 || H % Hkv != 0)
    return tgc_rt_cpu_step_error(c, s, "the %lld query heads are not a multiple of the %lld key/value heads",
                                 (long long)H, (long long)Hkv);
  int64_t mst[4] = {0, 0, 0, 0};
  if (mask) {
    if (mask->rank > 4)
      return tgc_rt_cpu_step_error(c, s, "the mask has rank %u; it must broadcast to [B, H, S, T]", mask->rank);
    int64_t full[4] = {B, H, S, T}, own[TGC_RT_MAX_RANK];
    tgc_rt_cpu_strides_of(mask->rank, mask->shape, own);
    for (uint32_t d = 0; d < 4; d++) {
      int64_t off = (int64_t)d - (4 - (int64_t)mask->rank);
      if (off < 0)
        continue;
      if (mask->shape[off] != 1 && mask->shape[off] != full[d])
        return tgc_rt_cpu_step_error(c, s, "mask dim %lld is %lld; it must be 1 or %lld", (long long)off,
                                     (long long)mask->shape[off], (long long)full[d]);
      mst[d] = mask->shape[off] == 1 ? 0 : own[off];
    }
  }
  double scale = tgc_rt_step_float(s, "scale", 1.0 / sqrt((double)D));
  bool causal = tgc_rt_step_bool(s, "causal", false);
  tgc_dtype dt = q->dtype;
  int64_t shape[4] = {B, H, S, Dv};
  if (tgc_rt_cpu_alloc_out(c, s, out, dt, 4, shape))
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

/* ---- quantization ---- */

int tgc_rt_cpu_quant(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *in, tgc_rt_tensor *out) {
  const tgc_rt_tensor *x = in[0], *scales = s->nin > 1 ? in[1] : NULL, *zps = s->nin > 2 ? in[2] : NULL;
  const tgc_rt_type *t = &s->out_types[0];
  bool q = s->op == TGC_OP_QUANTIZE;
  if (!t->known)
    return tgc_rt_cpu_step_error(c, s, "needs a declared result type");
  if (tgc_rt_cpu_alloc_out(c, s, out, t->dtype, x->rank, x->shape))
    return -1;
  double scale = tgc_rt_step_float(s, "scale", 1.0);
  int64_t zp = tgc_rt_step_int(s, "zero_point", 0), group = tgc_rt_step_int(s, "group", 0);
  bool has_axis = tgc_rt_step_attr(s, "axis") != NULL;
  int axis = -1;
  /* docs/ir.md 8.9: per tensor (no axis: attributes or scalar operands), per channel (1-D scales along
   * axis), group-wise (scales shaped like x with dim axis divided by group) */
  int64_t sshape[TGC_RT_MAX_RANK];
  if (!has_axis) {
    if ((scales && tgc_rt_cpu_numel(scales) != 1) || (zps && tgc_rt_cpu_numel(zps) != 1))
      return tgc_rt_cpu_step_error(c, s,
                                   "per-tensor quantization (no 'axis') takes scalar scale and zero point operands");
    if (scales)
      scale = tgc_rt_get(scales, 0);
    if (zps)
      zp = tgc_rt_get_i64(zps, 0);
    scales = zps = NULL;
  } else {
    axis = tgc_rt_cpu_norm_axis(c, s, tgc_rt_step_int(s, "axis", 0), x->rank, "axis");
    if (axis < 0)
      return -1;
    if (!scales)
      return tgc_rt_cpu_step_error(c, s, "per-channel quantization ('axis' given) needs a scale operand");
    if (group < 0)
      return tgc_rt_cpu_step_error(c, s, "'group' must be positive, not %lld", (long long)group);
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
        tgc_rt_cpu_tensor_type_str(t2, ts, sizeof ts);
        if (group > 0)
          tgc_rt_shape_str(x->rank, sshape, ws, sizeof ws);
        else
          snprintf(ws, sizeof ws, "[%lld]", (long long)x->shape[axis]);
        return tgc_rt_cpu_step_error(c, s, "the %s operand is %s, but %s quantization along axis %d needs shape %s",
                                     k ? "zero point" : "scale", ts, group > 0 ? "group-wise" : "per-channel", axis,
                                     ws);
      }
    }
  }
  int64_t xst[TGC_RT_MAX_RANK], sst[TGC_RT_MAX_RANK];
  if (axis >= 0) {
    tgc_rt_cpu_strides_of(x->rank, x->shape, xst);
    tgc_rt_cpu_strides_of(x->rank, sshape, sst);
  }
  size_t n = tgc_rt_cpu_numel(x);
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
      tgc_rt_set(out, e, tgc_rt_quant_store(v, sc, z, t->dtype));
    } else {
      tgc_rt_set(out, e, (v - z) * sc);
    }
  }
  return 0;
}

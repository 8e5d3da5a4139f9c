/* The CPU backend's data-movement kernels (reshape, transpose, broadcast, slice, concat, split, gather,
 * embedding, pad) and its sources (iota, param, constant). */
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "tgc/slice.h"

/* ---- data movement ---- */

void tgc_rt_cpu_copy_elem(tgc_rt_tensor *dst, size_t di, const tgc_rt_tensor *src, size_t si) {
  size_t es = tgc_rt_dtype_size(src->dtype);
  if (dst->dtype == src->dtype)
    memcpy((char *)dst->data + di * es, (const char *)src->data + si * es, es);
  else if (tgc_rt_cpu_is_float(dst->dtype) || tgc_rt_cpu_is_float(src->dtype))
    tgc_rt_set(dst, di, tgc_rt_get(src, si));
  else
    tgc_rt_set_i64(dst, di, tgc_rt_get_i64(src, si));
}

/* out[i...] = x[sum(i_d * st_d)] over OUT's shape: transposes and broadcasts are strided views. */
static void strided_copy(tgc_rt_tensor *out, const tgc_rt_tensor *x, const int64_t *shape, const int64_t *st) {
  int64_t idx[TGC_RT_MAX_RANK] = {0}, off = 0;
  size_t n = tgc_rt_cpu_numel(out);
  for (size_t e = 0; e < n; e++) {
    tgc_rt_cpu_copy_elem(out, e, x, (size_t)off);
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

static int declared_shape(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, uint32_t i, int64_t *shape) {
  if (!s->out_types[i].known)
    return tgc_rt_cpu_step_error(c, s, "needs a declared result type");
  return tgc_rt_cpu_eval_shape(c, s, &s->out_types[i], shape);
}

/* The result shape of reshape step S of X (X's data is not read): its declared type's, of X's element count. */
int tgc_rt_cpu_reshape_shape(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, int64_t *shape,
                             size_t *n) {
  const tgc_rt_type *t = &s->out_types[0];
  if (declared_shape(c, s, 0, shape))
    return -1;
  if (!tgc_rt_numel(t->rank, shape, n) || *n != tgc_rt_cpu_numel(x)) {
    char xs[256], ts[256];
    tgc_rt_cpu_tensor_type_str(x, xs, sizeof xs);
    tgc_rt_cpu_type_str(c, t, ts, sizeof ts);
    return tgc_rt_cpu_step_error(c, s, "cannot reshape %s (%zu elements) to %s", xs, tgc_rt_cpu_numel(x), ts);
  }
  return 0;
}

int tgc_rt_cpu_reshape(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
  int64_t shape[TGC_RT_MAX_RANK];
  const tgc_rt_type *t = &s->out_types[0];
  size_t n;
  if (tgc_rt_cpu_reshape_shape(c, s, x, shape, &n) || tgc_rt_cpu_alloc_out(c, s, out, x->dtype, t->rank, shape))
    return -1;
  for (size_t e = 0; e < n; e++)
    tgc_rt_cpu_copy_elem(out, e, x, e);
  return 0;
}

int tgc_rt_cpu_transpose(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
  const tgc_rt_attr *perm = tgc_rt_step_attr(s, "perm");
  if (!perm || perm->n != x->rank)
    return tgc_rt_cpu_step_error(c, s, "'perm' has %u entries for an operand of rank %u", perm ? perm->n : 0, x->rank);
  int64_t shape[TGC_RT_MAX_RANK], ist[TGC_RT_MAX_RANK], st[TGC_RT_MAX_RANK];
  bool used[TGC_RT_MAX_RANK] = {false};
  for (uint32_t i = 0; i < x->rank; i++) {
    int64_t p = perm->items[i].i;
    if (p < 0 || p >= (int64_t)x->rank || used[p])
      return tgc_rt_cpu_step_error(c, s, "'perm' is not a permutation of 0..%u", x->rank - 1);
    used[p] = true;
    shape[i] = x->shape[p];
  }
  tgc_rt_cpu_strides_of(x->rank, x->shape, ist);
  for (uint32_t i = 0; i < x->rank; i++)
    st[i] = ist[perm->items[i].i];
  tgc_dtype dt = x->dtype;
  if (tgc_rt_cpu_alloc_out(c, s, out, dt, x->rank, shape))
    return -1;
  strided_copy(out, x, shape, st);
  return 0;
}

int tgc_rt_cpu_broadcast_to(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
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
    tgc_rt_cpu_tensor_type_str(x, xs, sizeof xs);
    tgc_rt_cpu_type_str(c, t, ts, sizeof ts);
    return tgc_rt_cpu_step_error(c, s, "cannot broadcast %s to %s", xs, ts);
  }
  if (tgc_rt_cpu_alloc_out(c, s, out, x->dtype, t->rank, shape))
    return -1;
  int64_t st[TGC_RT_MAX_RANK];
  tgc_rt_cpu_bcast_strides(x, t->rank, shape, st);
  strided_copy(out, x, shape, st);
  return 0;
}

int tgc_rt_cpu_slice(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
  int a = tgc_rt_cpu_norm_axis(c, s, tgc_rt_step_int(s, "axis", 0), x->rank, "axis");
  if (a < 0 || x->rank == 0)
    return a < 0 ? -1 : tgc_rt_cpu_step_error(c, s, "needs an operand of rank 1 or more");
  int64_t dim = x->shape[a], start = tgc_rt_step_int(s, "start", 0), end = tgc_rt_step_int(s, "end", INT64_MAX);
  int64_t step = tgc_rt_step_int(s, "step", 1);
  if (step <= 0)
    return tgc_rt_cpu_step_error(c, s, "'step' must be positive, not %lld", (long long)step);
  int64_t len;
  tgc_slice_range(dim, start, end, step, &start, &len); /* Python's clamping, overflow-free */
  int64_t shape[TGC_RT_MAX_RANK];
  memcpy(shape, x->shape, sizeof(int64_t) * x->rank);
  shape[a] = len;
  tgc_dtype dt = x->dtype;
  if (tgc_rt_cpu_alloc_out(c, s, out, dt, x->rank, shape))
    return -1;
  size_t outer, mid, inner;
  tgc_rt_cpu_split3(x, (uint32_t)a, (uint32_t)a + 1, &outer, &mid, &inner);
  for (size_t o = 0; o < outer; o++)
    for (int64_t k = 0; k < len; k++)
      for (size_t i = 0; i < inner; i++)
        tgc_rt_cpu_copy_elem(out, (o * (size_t)len + (size_t)k) * inner + i, x,
                             (o * mid + (size_t)(start + k * step)) * inner + i);
  return 0;
}

int tgc_rt_cpu_concat(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *in, tgc_rt_tensor *out) {
  const tgc_rt_tensor *x = in[0];
  int a = tgc_rt_cpu_norm_axis(c, s, tgc_rt_step_int(s, "axis", 0), x->rank, "axis");
  if (a < 0 || x->rank == 0)
    return a < 0 ? -1 : tgc_rt_cpu_step_error(c, s, "needs operands of rank 1 or more");
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
      tgc_rt_cpu_tensor_type_str(x, xs, sizeof xs);
      tgc_rt_cpu_tensor_type_str(in[i], ys, sizeof ys);
      return tgc_rt_cpu_step_error(c, s, "operand #%u %s does not match operand #0 %s outside axis %d", i, ys, xs, a);
    }
    shape[a] += in[i]->shape[a];
    if (in[i]->dtype != dt)
      return tgc_rt_cpu_step_error(c, s, "operand #%u is %s, but operand #0 is %s (insert a cast)", i,
                                   tgc_dtype_name(in[i]->dtype), tgc_dtype_name(dt));
  }
  if (tgc_rt_cpu_alloc_out(c, s, out, dt, x->rank, shape))
    return -1;
  size_t outer, mid, inner;
  tgc_rt_cpu_split3(out, (uint32_t)a, (uint32_t)a + 1, &outer, &mid, &inner);
  size_t base = 0;
  for (uint32_t i = 0; i < s->nin; i++) {
    size_t m = (size_t)in[i]->shape[a];
    for (size_t o = 0; o < outer; o++)
      for (size_t k = 0; k < m; k++)
        for (size_t j = 0; j < inner; j++)
          tgc_rt_cpu_copy_elem(out, (o * mid + base + k) * inner + j, in[i], (o * m + k) * inner + j);
    base += m;
  }
  return 0;
}

int tgc_rt_cpu_split(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *outs) {
  int a = tgc_rt_cpu_norm_axis(c, s, tgc_rt_step_int(s, "axis", 0), x->rank, "axis");
  if (a < 0 || x->rank == 0)
    return a < 0 ? -1 : tgc_rt_cpu_step_error(c, s, "needs an operand of rank 1 or more");
  const tgc_rt_attr *sizes = tgc_rt_step_attr(s, "sizes");
  int64_t total = 0;
  for (uint32_t i = 0; sizes && i < sizes->n; i++)
    total += sizes->items[i].i;
  if (!sizes || sizes->n != s->nout || total != x->shape[a])
    return tgc_rt_cpu_step_error(c, s, "the sizes add up to %lld, but dim %d is %lld", (long long)total, a,
                                 (long long)x->shape[a]);
  size_t outer, mid, inner;
  tgc_rt_cpu_split3(x, (uint32_t)a, (uint32_t)a + 1, &outer, &mid, &inner);
  size_t base = 0;
  for (uint32_t r = 0; r < s->nout; r++) {
    int64_t shape[TGC_RT_MAX_RANK];
    memcpy(shape, x->shape, sizeof(int64_t) * x->rank);
    shape[a] = sizes->items[r].i;
    tgc_dtype dt = x->dtype;
    if (tgc_rt_cpu_alloc_out(c, s, &outs[r], dt, x->rank, shape))
      return -1;
    size_t m = (size_t)shape[a];
    for (size_t o = 0; o < outer; o++)
      for (size_t k = 0; k < m; k++)
        for (size_t j = 0; j < inner; j++)
          tgc_rt_cpu_copy_elem(&outs[r], (o * m + k) * inner + j, x, (o * mid + base + k) * inner + j);
    base += m;
  }
  return 0;
}

static int index_at(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *idx, size_t e, int64_t dim,
                    int64_t *out) {
  if (tgc_rt_cpu_is_float(idx->dtype))
    return tgc_rt_cpu_step_error(c, s, "indices must be integers, not %s", tgc_dtype_name(idx->dtype));
  int64_t i = tgc_rt_get_i64(idx, e);
  if (i < -dim || i >= dim)
    return tgc_rt_cpu_step_error(c, s, "index %lld is out of range for a dim of size %lld", (long long)i,
                                 (long long)dim);
  *out = i < 0 ? i + dim : i;
  return 0;
}

int tgc_rt_cpu_gather(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, const tgc_rt_tensor *idx,
                      tgc_rt_tensor *out) {
  int a = tgc_rt_cpu_norm_axis(c, s, tgc_rt_step_int(s, "axis", 0), x->rank, "axis");
  if (a < 0)
    return -1;
  if (idx->rank != x->rank)
    return tgc_rt_cpu_step_error(c, s,
                                 "the index has rank %u, but the operand has rank %u (gather works like torch.gather)",
                                 idx->rank, x->rank);
  for (uint32_t d = 0; d < x->rank; d++)
    if (d != (uint32_t)a && idx->shape[d] > x->shape[d])
      return tgc_rt_cpu_step_error(c, s, "index dim %u is %lld, larger than the operand's %lld", d,
                                   (long long)idx->shape[d], (long long)x->shape[d]);
  tgc_dtype dt = x->dtype;
  if (tgc_rt_cpu_alloc_out(c, s, out, dt, idx->rank, idx->shape))
    return -1;
  int64_t xst[TGC_RT_MAX_RANK], id[TGC_RT_MAX_RANK] = {0};
  tgc_rt_cpu_strides_of(x->rank, x->shape, xst);
  size_t n = tgc_rt_cpu_numel(out);
  for (size_t e = 0; e < n; e++) {
    int64_t j;
    if (index_at(c, s, idx, e, x->shape[a], &j))
      return -1;
    int64_t off = 0;
    for (uint32_t d = 0; d < x->rank; d++)
      off += (d == (uint32_t)a ? j : id[d]) * xst[d];
    tgc_rt_cpu_copy_elem(out, e, x, (size_t)off);
    for (uint32_t d = idx->rank; d-- > 0;) {
      if (++id[d] < idx->shape[d])
        break;
      id[d] = 0;
    }
  }
  return 0;
}

int tgc_rt_cpu_embedding(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *table, const tgc_rt_tensor *ids,
                         tgc_rt_tensor *out) {
  if (table->rank != 2)
    return tgc_rt_cpu_step_error(c, s, "the table must have rank 2, not %u", table->rank);
  if (ids->rank + 1 > TGC_RT_MAX_RANK)
    return tgc_rt_cpu_step_error(c, s, "the ids have too high a rank");
  int64_t shape[TGC_RT_MAX_RANK];
  memcpy(shape, ids->shape, sizeof(int64_t) * ids->rank);
  shape[ids->rank] = table->shape[1];
  tgc_dtype dt = table->dtype;
  if (tgc_rt_cpu_alloc_out(c, s, out, dt, ids->rank + 1, shape))
    return -1;
  size_t n = tgc_rt_cpu_numel(ids), d = (size_t)table->shape[1];
  for (size_t e = 0; e < n; e++) {
    int64_t j;
    if (index_at(c, s, ids, e, table->shape[0], &j))
      return -1;
    for (size_t k = 0; k < d; k++)
      tgc_rt_cpu_copy_elem(out, e * d + k, table, (size_t)j * d + k);
  }
  return 0;
}

int tgc_rt_cpu_iota(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *out) {
  int64_t shape[TGC_RT_MAX_RANK];
  const tgc_rt_type *t = &s->out_types[0];
  if (declared_shape(c, s, 0, shape))
    return -1;
  int a = tgc_rt_cpu_norm_axis(c, s, tgc_rt_step_int(s, "axis", 0), t->rank, "axis");
  if (a < 0 || tgc_rt_cpu_alloc_out(c, s, out, t->dtype, t->rank, shape))
    return -1;
  size_t outer, mid, inner;
  tgc_rt_cpu_split3(out, (uint32_t)a, (uint32_t)a + 1, &outer, &mid, &inner);
  for (size_t o = 0; o < outer; o++)
    for (size_t k = 0; k < mid; k++)
      for (size_t i = 0; i < inner; i++)
        tgc_rt_set_i64(out, (o * mid + k) * inner + i, (int64_t)k);
  if (tgc_rt_cpu_is_float(t->dtype))
    for (size_t e = 0; e < tgc_rt_cpu_numel(out); e++)
      tgc_rt_set(out, e, (double)((e / inner) % (mid ? mid : 1)));
  return 0;
}

/* The result shape of pad step S of X (X's data is not read). */
int tgc_rt_cpu_pad_shape(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, int64_t *shape) {
  const tgc_rt_attr *lo = tgc_rt_step_attr(s, "low"), *hi = tgc_rt_step_attr(s, "high");
  if (!lo || !hi || lo->n != x->rank || hi->n != x->rank)
    return tgc_rt_cpu_step_error(c, s, "'low' and 'high' need one entry per dim (%u)", x->rank);
  for (uint32_t d = 0; d < x->rank; d++) {
    int64_t l = lo->items[d].i, h = hi->items[d].i;
    if (l < 0 || h < 0)
      return tgc_rt_cpu_step_error(c, s, "negative padding is not supported (dim %u)", d);
    if (__builtin_add_overflow(x->shape[d], l, &shape[d]) || __builtin_add_overflow(shape[d], h, &shape[d]))
      return tgc_rt_cpu_step_error(c, s, "dim %u of the result, %lld + %lld + %lld, overflows 64-bit integers", d,
                                   (long long)x->shape[d], (long long)l, (long long)h);
  }
  return 0;
}

int tgc_rt_cpu_pad(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out) {
  const tgc_rt_attr *lo = tgc_rt_step_attr(s, "low");
  int64_t shape[TGC_RT_MAX_RANK];
  if (tgc_rt_cpu_pad_shape(c, s, x, shape))
    return -1;
  tgc_dtype dt = x->dtype;
  if (tgc_rt_cpu_alloc_out(c, s, out, dt, x->rank, shape))
    return -1;
  double value = tgc_rt_step_float(s, "value", 0.0);
  size_t n = tgc_rt_cpu_numel(out);
  for (size_t e = 0; e < n; e++)
    tgc_rt_set(out, e, value);
  int64_t idx[TGC_RT_MAX_RANK] = {0}, ost[TGC_RT_MAX_RANK];
  tgc_rt_cpu_strides_of(x->rank, shape, ost);
  size_t m = tgc_rt_cpu_numel(x);
  for (size_t e = 0; e < m; e++) {
    int64_t off = 0;
    for (uint32_t d = 0; d < x->rank; d++)
      off += (idx[d] + lo->items[d].i) * ost[d];
    tgc_rt_cpu_copy_elem(out, (size_t)off, x, e);
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
static int param_weight(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *w, int64_t *shape) {
  const char *name = tgc_rt_step_str(s, "name", "");
  const tgc_rt_type *t = &s->out_types[0];
  if (declared_shape(c, s, 0, shape))
    return -1;
  if (!c->opts || !c->opts->weights)
    return tgc_rt_cpu_step_error(c, s, "parameter '%s' needs weights, but none were given (--weights FILE.safetensors)",
                                 name);
  const char *wname = c->opts->weights_name ? c->opts->weights_name : tgc_rt_weights_label(c->opts->weights);
  if (tgc_rt_weights_get(c->opts->weights, name, w))
    return tgc_rt_cpu_step_error(c, s, "parameter '%s' is missing from %s", name, wname);
  if (t->dtype == TGC_DT_I4 && w->dtype == TGC_DT_I8) {
    /* safetensors has no 4-bit dtype: an I8 tensor whose values all lie in -8..7 is exactly the runtime's i4
     * storage (one sign-extended value a byte, runtime/tensor.c), so it binds an i4 param */
    size_t n = tgc_rt_cpu_numel(w);
    for (size_t i = 0; i < n; i++) {
      int v = ((const signed char *)w->data)[i];
      if (v < -8 || v > 7)
        return tgc_rt_cpu_step_error(c, s,
                                     "parameter '%s' is i4, stored as I8 in %s, but its element %zu is %d, outside "
                                     "the i4 range -8..7", name, wname, i, v);
    }
    w->dtype = TGC_DT_I4;
  }
  bool ok = w->dtype == t->dtype && w->rank == t->rank;
  for (uint32_t i = 0; ok && i < t->rank; i++)
    ok = w->shape[i] == shape[i];
  if (!ok) {
    char ws[256], ts[256];
    tgc_rt_cpu_tensor_type_str(w, ws, sizeof ws);
    tgc_rt_cpu_type_str(c, t, ts, sizeof ts);
    return tgc_rt_cpu_step_error(c, s, "parameter '%s' is %s in %s, but the module declares %s", name, ws, wname, ts);
  }
  return 0;
}

int tgc_rt_param_weight(const tgc_rt_step *s, const int64_t *syms, const tgc_rt_cpu_opts *opts, tgc_rt_tensor *w,
                        tgc_rt_err *err) {
  tgc_rt_cpu_ctx c;
  memset(&c, 0, sizeof c);
  c.opts = opts;
  c.err = err;
  c.syms = (int64_t *)syms; /* only read */
  int64_t shape[TGC_RT_MAX_RANK];
  return param_weight(&c, s, w, shape) ? 1 : 0;
}

int tgc_rt_cpu_param(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *out) {
  const tgc_rt_type *t = &s->out_types[0];
  int64_t shape[TGC_RT_MAX_RANK];
  tgc_rt_tensor w;
  if (param_weight(c, s, &w, shape) || tgc_rt_cpu_alloc_out(c, s, out, t->dtype, t->rank, shape))
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

int tgc_rt_cpu_constant(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *out) {
  const tgc_rt_type *t = &s->out_types[0];
  int64_t shape[TGC_RT_MAX_RANK];
  if (declared_shape(c, s, 0, shape) || tgc_rt_cpu_alloc_out(c, s, out, t->dtype, t->rank, shape))
    return -1;
  const tgc_rt_attr *v = tgc_rt_step_attr(s, "value");
  size_t n = tgc_rt_cpu_numel(out), m = v ? count_values(v) : 0;
  if (m != 1 && m != n)
    return tgc_rt_cpu_step_error(c, s, "has %zu values for %zu elements", m, n);
  const tgc_rt_attr **vals = tgc_xmalloc(sizeof *vals * (m ? m : 1));
  size_t k = 0;
  flatten_values(v, vals, &k);
  for (size_t e = 0; e < n; e++) {
    const tgc_rt_attr *x = vals[m == 1 ? 0 : e];
    /* integer literals stay exact in integer dtypes; floats convert as a cast does (bool: x != 0) */
    if (x->kind == TGC_RT_ATTR_FLOAT || tgc_rt_cpu_is_float(t->dtype))
      tgc_rt_set(out, e, x->kind == TGC_RT_ATTR_FLOAT ? x->f : (double)x->i);
    else
      tgc_rt_set_i64(out, e, t->dtype == TGC_DT_BOOL ? x->i != 0 : x->i);
  }
  free(vals);
  return 0;
}

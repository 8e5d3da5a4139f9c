/* Strided views: a value that is data movement (reshape, transpose, slice, split, broadcast_to) of a launch's
 * input, seen as an offset and a stride per dim into the input's buffer, so that attention reads its operands
 * and writes its result in place instead of through copies. */
#include "cuda_internal.h"

#include "tgc/slice.h"

bool tgc_cuda_contiguous_view(tgc_arena *a, const tgc_value *buf, const tgc_type *t, view *out) {
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
bool tgc_cuda_reshape_view(tgc_arena *a, const view *v, const tgc_type *od, const tgc_type *nd, view *out) {
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

/* V as a strided view of a buffer: V is one of INS (its buffer is OUTER[i]) or data movement of one. */
bool tgc_cuda_view_of(tgc_arena *a, const tgc_value *v, tgc_value *const *ins, const tgc_value *const *outer,
                      uint32_t nin, view *out) {
  int i = in_index(ins, nin, v);
  if (i >= 0)
    return !tgc_cuda_constant_def(outer[i]) && tgc_cuda_contiguous_view(a, outer[i], v->type, out);
  const tgc_op *op = v->def;
  if (!op || op->noperands == 0)
    return false;
  const tgc_value *x = op->operands[0].value;
  view w;
  if (!tgc_cuda_view_of(a, x, ins, outer, nin, &w))
    return false;
  switch (op->opcode) {
  case TGC_OP_RESHAPE:
    return tgc_cuda_reshape_view(a, &w, x->type, v->type, out);
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

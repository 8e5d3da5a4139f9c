/* split-reductions: the two-pass path for long rows. A reduce_sum / reduce_mean / reduce_max / reduce_min along
 * a long constant last dim (N >= min-length) with few rows (a constant count below 256) would give a GPU one
 * block per row and leave most of it idle. The row is cut into C chunks of L elements, each chunk reduced
 * (rows x C blocks), then the C partial results (a second, short reduction):
 *
 *   %y = reduce_sum(%x) {axes = [1]} : f32[R]      %c = reshape(%x) : f32[R, C, L]
 *                                            ==>   %s = reduce_sum(%c) {axes = [2]} : f32[R, C]
 *                                                  %y = reduce_sum(%s) {axes = [1]} : f32[R]
 *
 * L is the divisor of N closest to `chunk` within [chunk / 2, 2 chunk]; without one, a sum or mean pads the row
 * with zeros to C * L (and a padded mean becomes a sum times 1/N), while max and min are left alone. A mean
 * over equal chunks is the mean of the chunks' means. Only float dtypes are split. Requires typed IR;
 * preserves it. Run before fuse: each level then becomes one rows kernel. */
#include <string.h>

#include "pass.h"

static bool split_one(tgc_pass_ctx *ctx, tgc_block *b, tgc_op *op, int64_t min_len, int64_t chunk) {
  tgc_module *m = ctx->module;
  tgc_arena *a = &m->arena;
  tgc_opcode code = op->opcode;
  if (code != TGC_OP_REDUCE_SUM && code != TGC_OP_REDUCE_MEAN && code != TGC_OP_REDUCE_MAX &&
      code != TGC_OP_REDUCE_MIN)
    return false;
  tgc_value *x = op->operands[0].value;
  const tgc_type *xt = x->type, *yt = op->results[0].type;
  const tgc_attr *axes = tgc_op_attr(op, "axes");
  if (!xt || !yt || xt->rank == 0 || tgc_dtype_kind_of(xt->dtype) != TGC_DTK_FLOAT || !axes ||
      axes->kind != TGC_ATTR_LIST || axes->u.list.n != 1)
    return false;
  int64_t ax = axes->u.list.items[0]->u.i, n, rows = 1;
  if (ax < 0)
    ax += xt->rank;
  if (ax != (int64_t)xt->rank - 1 || !tgc_dim_is_const(xt->dims[ax], &n) || n < min_len)
    return false;
  for (uint32_t d = 0; d + 1 < xt->rank; d++) {
    int64_t v;
    if (!tgc_dim_is_const(xt->dims[d], &v))
      return false;
    rows *= v;
  }
  if (rows >= 256)
    return false;
  int64_t L = 0;
  for (int64_t dist = 0; !L && dist <= chunk; dist++) {
    if (chunk - dist >= chunk / 2 && chunk - dist >= 2 && n % (chunk - dist) == 0)
      L = chunk - dist;
    else if (chunk + dist <= 2 * chunk && n % (chunk + dist) == 0)
      L = chunk + dist;
  }
  bool padded = false;
  if (!L) {
    if (code == TGC_OP_REDUCE_MAX || code == TGC_OP_REDUCE_MIN)
      return false;
    L = chunk;
    padded = true;
  }
  int64_t C = (n + L - 1) / L, P = C * L - n;
  uint32_t r = xt->rank;
  tgc_builder bd = {m, b, op, op->loc};
  const tgc_dim **dims = tgc_arena_alloc(a, sizeof *dims * (r + 1));
  for (uint32_t d = 0; d + 1 < r; d++)
    dims[d] = xt->dims[d];
  tgc_value *v = x;
  if (padded) {
    dims[r - 1] = tgc_dim_const(a, C * L);
    int64_t *lo = tgc_arena_alloc(a, sizeof *lo * r), *hi = tgc_arena_alloc(a, sizeof *hi * r);
    hi[r - 1] = P;
    tgc_op *pad = tgc_build(&bd, TGC_OP_PAD, &v, 1, tgc_type_create(a, xt->dtype, r, dims));
    tgc_op_set_attr(m, pad, "low", tgc_attr_ints(a, lo, r));
    tgc_op_set_attr(m, pad, "high", tgc_attr_ints(a, hi, r));
    tgc_op_set_attr(m, pad, "value", tgc_attr_float(a, 0.0));
    v = &pad->results[0];
  }
  dims[r - 1] = tgc_dim_const(a, C);
  dims[r] = tgc_dim_const(a, L);
  v = tgc_build_unary(&bd, TGC_OP_RESHAPE, v, tgc_type_create(a, xt->dtype, r + 1, dims));
  tgc_opcode inner = code == TGC_OP_REDUCE_MEAN && padded ? TGC_OP_REDUCE_SUM : code;
  int64_t last = r, prev = r - 1;
  tgc_op *part = tgc_build(&bd, inner, &v, 1, tgc_type_create(a, xt->dtype, r, dims));
  tgc_op_set_attr(m, part, "axes", tgc_attr_ints(a, &last, 1));
  tgc_op_set_attr(m, part, "keepdim", tgc_attr_bool(a, false));
  v = &part->results[0];
  tgc_op *outer = tgc_build(&bd, inner, &v, 1, yt);
  tgc_op_set_attr(m, outer, "axes", tgc_attr_ints(a, &prev, 1));
  tgc_op_set_attr(m, outer, "keepdim", tgc_attr_bool(a, tgc_op_attr_bool(op, "keepdim", false)));
  v = &outer->results[0];
  if (inner != code) {
    tgc_op *k = tgc_build(&bd, TGC_OP_CONSTANT, NULL, 0, tgc_type_create(a, yt->dtype, 0, NULL));
    tgc_op_set_attr(m, k, "value", tgc_attr_float(a, 1.0 / (double)n));
    v = tgc_build_binary(&bd, TGC_OP_MUL, v, &k->results[0], yt);
  }
  if (ctx->remark_pass)
    tgc_diag_report(ctx->diag, TGC_DIAG_REMARK, op->loc,
                    "split a %s over %lld elements (%lld rows) into %lld chunks of %lld%s [-Rpass=split-reductions]",
                    tgc_op_name(code), (long long)n, (long long)rows, (long long)C, (long long)L,
                    padded ? ", padded with zeros" : "");
  tgc_value_replace_all_uses(&op->results[0], v);
  tgc_op_erase(op);
  return true;
}

int tgc_pass_split_reductions(tgc_pass_ctx *ctx) {
  bool bad = false;
  int64_t min_len = tgc_pass_opt_int(ctx, "min-length", 16384, &bad);
  int64_t chunk = tgc_pass_opt_int(ctx, "chunk", 1024, &bad);
  if (bad)
    return 1;
  if (chunk < 2 || min_len < 2) {
    tgc_loc noloc = {NULL, 0, 0};
    tgc_error(ctx->diag, noloc, "split-reductions: chunk and min-length must be at least 2");
    return 1;
  }
  for (tgc_func *f = ctx->module->funcs; f; f = f->next)
    for (tgc_op *op = f->body->first; op;) {
      tgc_op *next = op->next;
      if (split_one(ctx, f->body, op, min_len, chunk))
        ctx->changed = true;
      op = next;
    }
  return 0;
}

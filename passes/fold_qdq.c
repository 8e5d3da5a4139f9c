/* fold-qdq: a matmul of two dequantized operands becomes a quantized contraction — the matmul of the stored
 * values, accumulated exactly (int32 for i8) or in fp32 (fp8), and one rescale by the product of the scales:
 *
 *   %xd = dequantize(%xq) {scale = sa} : f32[M, K]          %acc = matmul(%xq, %wq) : i32[M, N]
 *   %wd = dequantize(%wq, %ws) {axis = 1} : f32[K, N]  ==>  %sa = constant() {value = sa} : f32[]
 *   %y = matmul(%xd, %wd) : f32[M, N]                       %cs = mul(%ws, %sa) : f32[N]
 *                                                           %y = dequantize(%acc, %cs) {axis = 1} : f32[M, N]
 *
 * Folded when both operands are stored as i8 (or both as one fp8 format) with zero point 0, the left one per
 * tensor and the right one per tensor or per channel of its last dim (N): then every product of a row and a
 * column shares one scale, sa * ws[n]. Group-wise scales change along K and stay unfolded, as int4 weight-only
 * matmuls do (their dequantize is the matmul's operand: a dequant-in-GEMM for the GPU). -Rpass=fold-qdq reports
 * every fold, -Rpass-missed=fold-qdq why a matmul of dequantized operands was not folded. Requires typed IR;
 * preserves it (the rescale is the old matmul's type). */
#include <string.h>

#include "pass.h"

static bool is_fp8(tgc_dtype dt) { return dt == TGC_DT_F8E4M3 || dt == TGC_DT_F8E5M2; }

/* Why the dequantize D cannot be folded as the matmul's operand (RIGHT: the weight side), or NULL. */
static const char *unfoldable(const tgc_op *d, bool right, uint32_t out_rank) {
  if (tgc_op_attr(d, "group"))
    return "its scales are group-wise (they change along the contraction)";
  if (d->noperands > 2 || tgc_op_attr_int(d, "zero_point", 0) != 0)
    return "it has a zero point (asymmetric)";
  const tgc_attr *axis = tgc_op_attr(d, "axis");
  if (!axis)
    return d->noperands > 1 ? "its per-tensor scale is an operand, not an attribute" : NULL;
  if (!right)
    return "the left operand's scales are per channel (they change along the contraction)";
  const tgc_type *t = d->results[0].type;
  int64_t ax = axis->u.i < 0 ? axis->u.i + (int64_t)t->rank : axis->u.i;
  if (t->rank != 2 || ax != 1 || out_rank < 1)
    return "the weight's scales are not per channel of its last dim";
  const tgc_type *st = d->operands[1].value->type;
  if (!st || tgc_dtype_kind_of(st->dtype) != TGC_DTK_FLOAT)
    return "its scale operand is not a float tensor";
  return NULL;
}

static bool fold_one(tgc_pass_ctx *ctx, tgc_block *b, tgc_op *mm) {
  tgc_module *m = ctx->module;
  tgc_arena *a = &m->arena;
  tgc_op *da = mm->operands[0].value->def, *db = mm->operands[1].value->def;
  bool dqa = da && da->opcode == TGC_OP_DEQUANTIZE, dqb = db && db->opcode == TGC_OP_DEQUANTIZE;
  if (!dqa && !dqb)
    return false;
  if (!dqa || !dqb) {
    tgc_value *q = (dqa ? da : db)->operands[0].value;
    if (dqb && q->type && q->type->dtype == TGC_DT_I4)
      tgc_pass_remark(ctx, true, mm, "int4 weight-only: the weight's dequantize stays the matmul's operand (dequant-in-GEMM)");
    else
      tgc_pass_remark(ctx, true, mm, "not folded: only its %s operand is dequantized", dqa ? "left" : "right");
    return false;
  }
  const tgc_type *qa = da->operands[0].value->type, *qb = db->operands[0].value->type, *yt = mm->results[0].type;
  tgc_dtype sd = qa->dtype;
  if (sd != qb->dtype || !(sd == TGC_DT_I8 || is_fp8(sd))) {
    tgc_pass_remark(ctx, true, mm, "not folded: the operands are stored as %s and %s, not both as i8 or as one fp8 format",
         tgc_dtype_name(qa->dtype), tgc_dtype_name(qb->dtype));
    return false;
  }
  if (tgc_dtype_kind_of(yt->dtype) != TGC_DTK_FLOAT) {
    tgc_pass_remark(ctx, true, mm, "not folded: the matmul's result is %s, not a float", tgc_dtype_name(yt->dtype));
    return false;
  }
  const char *why = unfoldable(da, false, yt->rank);
  if (!why)
    why = unfoldable(db, true, yt->rank);
  if (why) {
    tgc_pass_remark(ctx, true, mm, "not folded: %s", why);
    return false;
  }
  tgc_builder bd = {m, b, mm, mm->loc};
  tgc_value *ops[2] = {da->operands[0].value, db->operands[0].value};
  tgc_dtype acc_dt = sd == TGC_DT_I8 ? TGC_DT_I32 : TGC_DT_F32;
  tgc_op *acc = tgc_build(&bd, TGC_OP_MATMUL, ops, 2, tgc_type_create(a, acc_dt, yt->rank, yt->dims));
  acc->results[0].name = tgc_module_strdup(m, "acc", 3);
  double sa = tgc_op_attr_float(da, "scale", 1.0);
  tgc_op *rescale;
  if (!tgc_op_attr(db, "axis")) {
    double s = sa * tgc_op_attr_float(db, "scale", 1.0);
    tgc_value *av = &acc->results[0];
    rescale = tgc_build(&bd, TGC_OP_DEQUANTIZE, &av, 1, yt);
    tgc_op_set_attr(m, rescale, "scale", tgc_attr_float(a, s));
  } else {
    tgc_value *ws = db->operands[1].value;
    tgc_op *k = tgc_build(&bd, TGC_OP_CONSTANT, NULL, 0, tgc_type_create(a, ws->type->dtype, 0, NULL));
    tgc_op_set_attr(m, k, "value", tgc_attr_float(a, sa));
    tgc_value *cs = tgc_build_binary(&bd, TGC_OP_MUL, ws, &k->results[0], ws->type);
    tgc_value *rops[2] = {&acc->results[0], cs};
    rescale = tgc_build(&bd, TGC_OP_DEQUANTIZE, rops, 2, yt);
    tgc_op_set_attr(m, rescale, "axis", tgc_attr_int(a, (int64_t)yt->rank - 1));
  }
  rescale->results[0].name = mm->results[0].name;
  tgc_pass_remark(ctx, false, mm, "folded into an %s x %s matmul with %s accumulation and a %s rescale", tgc_dtype_name(sd),
       tgc_dtype_name(sd), sd == TGC_DT_I8 ? "exact int32" : "fp32",
       tgc_op_attr(db, "axis") ? "per-channel" : "per-tensor");
  tgc_value_replace_all_uses(&mm->results[0], &rescale->results[0]);
  tgc_op_erase(mm);
  tgc_pass_erase_if_dead(da);
  if (db != da)
    tgc_pass_erase_if_dead(db);
  return true;
}

int tgc_pass_fold_qdq(tgc_pass_ctx *ctx) {
  for (tgc_func *f = ctx->module->funcs; f; f = f->next)
    for (tgc_op *op = f->body->first; op;) {
      tgc_op *next = op->next;
      if (op->opcode == TGC_OP_MATMUL && op->results[0].type && fold_one(ctx, f->body, op))
        ctx->changed = true;
      op = next;
    }
  return 0;
}

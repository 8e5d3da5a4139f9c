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
 * preserves it (the rescale is the old matmul's type).
 *
 * The cost model (option int8-min-k, default 2048): an int8 contraction pays only when its K is large. cuBLASLt's
 * int8 GEMMs write an int32 product that an epilogue kernel reads back -- 8 bytes an output more than the float
 * GEMM's -- while halving the multiply's time, 2 M N K / P of it: the int8 GEMM is ahead when M N K / P > 8 M N /
 * B, K > 8 P / B, whatever M and N (P the fp16 tensor-core rate, B the memory bandwidth; about 2000 on an H100,
 * which measured 0.68x fp16 at K = 384 and 1.03x at K = 2048). Below it the matmul stays a float matmul, its
 * result exactly the unfolded module's: the weight's dequantize is computed at compile time into a module weight
 * (NAME.dq, in the matmul's dtype, stored like the quantized one) when the weights' values are at hand, and the
 * activation keeps its quantize/dequantize (a pointwise pair that fuses into its producer). int8-min-k=0 folds
 * every int8 matmul. fp8 GEMMs have no such cost (their rescale is cuBLASLt's) and always fold. */
#include <string.h>

#include "pass.h"
#include "session.h"

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

typedef struct {
  tgc_pass_ctx *ctx;
  int64_t int8_min_k;
  struct tgc_rt_weights *w; /* opened at the first use; NULL: not yet (or WFAILED) */
  bool wfailed;
} folder;

/* The weight DB = dequantize(q or transpose(q), ws) {axis = 1} or {scale = s}, q and ws params, computed now into
 * a module weight NAME.dq of DB's dtype stored like q (read through the same transpose): DB's uses read it. The
 * name of the new weight, or NULL (with WHY) when the values are not at hand. */
static const char *materialize(folder *fo, tgc_block *b, tgc_op *db, const char **why) {
  tgc_module *m = fo->ctx->module;
  tgc_arena *a = &m->arena;
  tgc_op *t = db->operands[0].value->def, *p = t;
  bool tr = t && t->opcode == TGC_OP_TRANSPOSE;
  if (tr)
    p = t->operands[0].value->def;
  tgc_op *sp = db->noperands > 1 ? db->operands[1].value->def : NULL;
  const tgc_type *qt = p ? p->results[0].type : NULL, *yt = db->results[0].type;
  int64_t r0, r1;
  if (!p || p->opcode != TGC_OP_PARAM || (db->noperands > 1 && (!sp || sp->opcode != TGC_OP_PARAM)) || !qt ||
      qt->rank != 2 || !tgc_dim_is_const(qt->dims[0], &r0) || !tgc_dim_is_const(qt->dims[1], &r1)) {
    *why = "the weight is not a param of constant shape";
    return NULL;
  }
  if (!fo->w && !fo->wfailed) {
    tgc_rt_err err;
    fo->wfailed = tgc_module_weights_open(m, fo->ctx->weights_path, &fo->w, &err) != 0;
  }
  tgc_rt_tensor q, s;
  const char *qname = tgc_op_attr_str(p, "name", ""), *sname = sp ? tgc_op_attr_str(sp, "name", "") : NULL;
  if (fo->wfailed || tgc_rt_weights_get(fo->w, qname, &q) || (sp && tgc_rt_weights_get(fo->w, sname, &s)) ||
      q.rank != 2 || q.shape[0] != r0 || q.shape[1] != r1 || (sp && (s.rank != 1 || s.shape[0] != (tr ? r0 : r1)))) {
    *why = "the weights' values are not at hand";
    return NULL;
  }
  char name[1024];
  snprintf(name, sizeof name, "%s.dq", qname);
  int64_t shape[2] = {r0, r1};
  tgc_module_weight *mw = tgc_module_find_weight(m, name) ? NULL : tgc_module_add_weight(m, name, yt->dtype, 2, shape);
  if (!mw) {
    *why = "a weight of its name exists";
    return NULL;
  }
  tgc_rt_tensor out = {.dtype = yt->dtype, .rank = 2, .shape = {r0, r1}, .data = mw->data};
  double sc = tgc_op_attr_float(db, "scale", 1.0), zp = (double)tgc_op_attr_int(db, "zero_point", 0);
  for (int64_t i = 0; i < r0; i++)
    for (int64_t j = 0; j < r1; j++) {
      size_t e = (size_t)(i * r1 + j);
      /* the column of the dequantize's [K, N] view: q's row when it is read transposed */
      double scale = sp ? tgc_rt_get(&s, (size_t)(tr ? i : j)) : sc;
      tgc_rt_set(&out, e, (tgc_rt_get(&q, e) - zp) * scale); /* as dequantize: in double, rounded once */
    }
  tgc_builder bd = {m, b, db, db->loc};
  tgc_value *pv = tgc_build_param(&bd, mw->name, tgc_type_create(a, yt->dtype, 2, qt->dims));
  pv->name = mw->name;
  if (tr) {
    pv = tgc_build_unary(&bd, TGC_OP_TRANSPOSE, pv, yt);
    tgc_op_set_attr(m, pv->def, "perm", tgc_op_attr(t, "perm"));
  }
  pv->name = db->results[0].name;
  tgc_value_replace_all_uses(&db->results[0], pv);
  tgc_pass_erase_if_dead(db);
  return mw->name;
}

static bool fold_one(folder *fo, tgc_block *b, tgc_op *mm) {
  tgc_pass_ctx *ctx = fo->ctx;
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
  int64_t K = 0;
  if (sd == TGC_DT_I8 && fo->int8_min_k > 0 && tgc_dim_is_const(qa->dims[qa->rank - 1], &K) && K < fo->int8_min_k) {
    const char *wwhy = NULL, *wname = materialize(fo, b, db, &wwhy);
    if (wname)
      tgc_pass_remark(ctx, true, mm, "not folded (cost): an int8 GEMM with K = %lld < int8-min-k = %lld is slower than "
                      "the float one (its int32 product is written and read again); the weight is dequantized at "
                      "compile time into '%s'", (long long)K, (long long)fo->int8_min_k, wname);
    else
      tgc_pass_remark(ctx, true, mm, "not folded (cost): an int8 GEMM with K = %lld < int8-min-k = %lld is slower than "
                      "the float one; the weight stays dequantized at run time (%s)", (long long)K,
                      (long long)fo->int8_min_k, wwhy);
    return wname != NULL;
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
  bool bad = false;
  folder fo = {ctx, tgc_pass_opt_int(ctx, "int8-min-k", 2048, &bad), NULL, false};
  if (bad)
    return 1;
  if (fo.int8_min_k < 0) {
    tgc_error(ctx->diag, (tgc_loc){0}, "fold-qdq: int8-min-k=%lld is negative", (long long)fo.int8_min_k);
    return 1;
  }
  for (tgc_func *f = ctx->module->funcs; f; f = f->next)
    for (tgc_op *op = f->body->first; op;) {
      tgc_op *next = op->next;
      if (op->opcode == TGC_OP_MATMUL && op->results[0].type && fold_one(&fo, f->body, op))
        ctx->changed = true;
      op = next;
    }
  tgc_rt_weights_release(fo.w);
  return 0;
}

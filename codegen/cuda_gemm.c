/* GEMM lowering: a matmul launch becomes a cuBLASLt call, with bias, tanh-GELU, ReLU and a residual folded
 * into it when the launch is exactly that; otherwise the product goes to a temporary and an epilogue kernel
 * does the rest. Operands that are not (a reshape or a last-two-dims transpose of) a buffer are computed first
 * by an operand kernel. Quantized contractions (i8 x i8 -> i32, f8e4m3 x f8e4m3 -> float, as fold-qdq makes them)
 * are cuBLASLt tensor-core GEMMs too when their weight is stored [n][k] (the quantize pass stores it so) and k
 * and n are multiples of 16; their rescale, bias, activation and the next quantize are the epilogue kernel's. */
#include "cuda_internal.h"

#include <math.h>

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

/* A quantized contraction cuBLASLt computes on tensor cores: i8 x i8 -> i32 (IMMA, exact) or f8e4m3 x f8e4m3 ->
 * f32, f16 or bf16. */
static bool quant_gemm_dtypes(tgc_dtype ab, tgc_dtype d) {
  return (ab == TGC_DT_I8 && d == TGC_DT_I32) ||
         (ab == TGC_DT_F8E4M3 && (d == TGC_DT_F32 || d == TGC_DT_F16 || d == TGC_DT_BF16));
}

/* cuBLASLt's conditions for its int8 and fp8 kernels (cublasLtMatmul's documentation): the "TN" form (A
 * transposed, B not, in its column-major terms: our B stored [n][k], our A [m][k]), and 16-byte aligned leading
 * dimensions and sizes (k and n multiples of 16; IMMA asks 4, fp8 16). Returns why not, or NULL. */
static const char *quant_gemm_unsupported(const tgc_cuda_gemm *gm) {
  int64_t k, n;
  if (!gm->trans_b || gm->trans_a)
    return "the weight is not stored [n][k] (cuBLASLt's int8 and fp8 GEMMs are TN only)";
  if (!tgc_dim_is_const(gm->k, &k) || k % 16 || !tgc_dim_is_const(gm->n, &n) || n % 16)
    return "k and n are not multiples of 16";
  return NULL;
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
      if (!tgc_cuda_ensure_buffer(g, outer[i]))
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
  if (!tgc_cuda_value_kernel(g, "operand", v, ins, outer, nin, v))
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
  const tgc_dim *nx = tgc_cuda_numel_dim(a, x, 0, x->rank), *ny = tgc_cuda_numel_dim(a, y, 0, y->rank);
  return nx && ny && tgc_dim_equal(nx, ny);
}

/* A matmul launch (a gemm_epilogue fusion, or one matmul) as a cuBLASLt call with what of its epilogue
 * cuBLASLt computes exactly, and an epilogue kernel for the rest. */
static bool gen_general(gen *g, const tgc_op *mm, const tgc_value *root, tgc_value *const *ins,
                        const tgc_value *const *outer, uint32_t nin, const tgc_value *result);

bool tgc_cuda_gen_gemm(gen *g, const tgc_op *mm, const tgc_value *root, tgc_value *const *ins,
                       const tgc_value *const *outer, uint32_t nin, const tgc_value *result) {
  const tgc_dim *rows = NULL;
  int w4 = tgc_cuda_try_w4(g, mm, root, ins, outer, nin, result, &rows);
  if (w4 < 0 || (w4 > 0 && !rows))
    return w4 > 0;
  if (w4 > 0) {
    /* the w4 kernels (their steps' conditions set) for up to TGC_CUDA_W4_MAX_ROWS rows, the general path above:
     * chosen at the bound sizes */
    uint32_t s1 = g->cm->nsteps;
    if (!gen_general(g, mm, root, ins, outer, nin, result))
      return false;
    for (uint32_t s = s1; s < g->cm->nsteps; s++) {
      g->cm->steps[s].when = TGC_CUDA_WHEN_GT;
      g->cm->steps[s].when_dim = rows;
      g->cm->steps[s].limit = TGC_CUDA_W4_MAX_ROWS;
    }
    return true;
  }
  return gen_general(g, mm, root, ins, outer, nin, result);
}

/* DQ, a rescale of the fp8 product MMV that cuBLASLt computes, into GM: dequantize(acc) {scale = s} (alpha), or
 * per column by a buffer ws (f32[n]) or fold-qdq's mul(ws, sa) with sa a scalar constant, to f16 or bf16
 * (cuBLASLt's outer-vector scales: ws for the columns, sa for the rows). GM's dtype becomes the rescale's. */
static bool fp8_rescale(tgc_cuda_gemm *gm, const tgc_op *dq, const tgc_value *mmv, tgc_value *const *ins,
                        const tgc_value *const *outer, uint32_t nin) {
  const tgc_type *yt = dq->results[0].type;
  if (dq->opcode != TGC_OP_DEQUANTIZE || tgc_op_attr_int(dq, "zero_point", 0) != 0 ||
      skip_reshapes(dq->operands[0].value, ins, nin) != mmv)
    return false;
  if (dq->noperands == 1 && !tgc_op_attr(dq, "axis")) {
    gm->alpha = tgc_op_attr_float(dq, "scale", 1.0);
    gm->dtype = yt->dtype;
    return true;
  }
  const tgc_attr *ax = tgc_op_attr(dq, "axis");
  if (dq->noperands != 2 || !ax || ax->kind != TGC_ATTR_INT || yt->dtype == TGC_DT_F32 ||
      norm_axis(ax->u.i, yt->rank) != yt->rank - 1)
    return false;
  const tgc_value *sv = dq->operands[1].value;
  double factor = 1;
  if (in_index(ins, nin, sv) < 0 && sv->def && sv->def->opcode == TGC_OP_MUL)
    for (uint32_t s = 0; s < 2; s++) {
      const tgc_value *c = sv->def->operands[1 - s].value;
      int ci = in_index(ins, nin, c);
      const tgc_op *k = ci >= 0 ? tgc_cuda_constant_def(outer[ci]) : c->def && c->def->opcode == TGC_OP_CONSTANT ? c->def : NULL;
      const tgc_attr *v = k ? tgc_op_attr(k, "value") : NULL;
      if (v && (v->kind == TGC_ATTR_FLOAT || v->kind == TGC_ATTR_INT) && c->type && c->type->rank == 0) {
        factor = tgc_op_attr_float(k, "value", 1.0);
        sv = sv->def->operands[s].value;
        break;
      }
    }
  int si = in_index(ins, nin, sv);
  if (si < 0 || sv->type->dtype != TGC_DT_F32 || sv->type->rank != 1 || !tgc_dim_equal(sv->type->dims[0], gm->n) ||
      tgc_cuda_constant_def(outer[si]) || !isfinite(factor) || factor == 0)
    return false;
  gm->scale = outer[si];
  gm->alpha = factor;
  gm->dtype = yt->dtype;
  return true;
}

/* The matmul as cuBLASLt GEMMs (or the pointwise kernel when it returns false before emitting anything). */
static bool gen_general(gen *g, const tgc_op *mm, const tgc_value *root, tgc_value *const *ins,
                        const tgc_value *const *outer, uint32_t nin, const tgc_value *result) {
  tgc_arena *ar = &g->m->arena;
  const tgc_value *av = mm->operands[0].value, *bv = mm->operands[1].value, *mmv = &mm->results[0];
  const tgc_type *at = av->type, *bt = bv->type, *ot = mmv->type;
  tgc_dtype dt = ot->dtype;
  bool quant = at->dtype == bt->dtype && quant_gemm_dtypes(at->dtype, dt);
  if ((!gemm_dtype(dt) || at->dtype != dt || bt->dtype != dt || at->rank < 2 || bt->rank < 2) && !quant)
    return false;
  if (quant && (bt->rank != 2 || at->rank < 2))
    return false;
  tgc_cuda_gemm gm;
  memset(&gm, 0, sizeof gm);
  gm.op = g->launch;
  gm.dtype = dt;
  gm.ab_dtype = at->dtype;
  gm.alpha = 1;
  if (quant) {
    /* decided before any operand kernel is emitted: a refusal leaves the launch to the pointwise kernel */
    bool tr = bv->def && bv->def->opcode == TGC_OP_TRANSPOSE;
    tgc_cuda_gemm probe = {.trans_b = tr, .k = at->dims[at->rank - 1], .n = bt->dims[1]};
    if (quant_gemm_unsupported(&probe))
      return false;
  }
  const tgc_type *ast, *bst = bt;
  gm.a = gemm_operand(g, av, ins, outer, nin, &gm.trans_a, &ast);
  if (gm.a && (gm.b = tgc_cuda_w4_dequant(g, mm, ins, outer, nin)))
    gm.trans_b = true; /* a packed int4 weight, dequantized [n][k] */
  else
    gm.b = gm.a ? gemm_operand(g, bv, ins, outer, nin, &gm.trans_b, &bst) : NULL;
  if (!gm.a || !gm.b)
    return false;
  gm.k = at->dims[at->rank - 1];
  gm.n = bt->dims[bt->rank - 1];
  if (bt->rank == 2 && !gm.trans_a) {
    /* [.., m, k] x [k, n]: the leading dims of a are rows of one GEMM */
    gm.m = tgc_cuda_numel_dim(ar, at, 0, at->rank - 1);
    gm.batch = tgc_dim_const(ar, 1);
  } else {
    gm.m = at->dims[at->rank - 2];
    gm.batch = tgc_cuda_numel_dim(ar, ot, 0, ot->rank - 2);
    const tgc_dim *ba = tgc_cuda_numel_dim(ar, at, 0, at->rank - 2), *bb = tgc_cuda_numel_dim(ar, bt, 0, bt->rank - 2);
    if (!gm.batch || !ba || !bb)
      return false;
    gm.batch_a = !dim_is(ba, 1);
    gm.batch_b = !dim_is(bb, 1);
    if ((gm.batch_a && !tgc_dim_equal(ba, gm.batch)) || (gm.batch_b && !tgc_dim_equal(bb, gm.batch)))
      return false; /* a partial broadcast of the batch dims: not one strided batch */
  }
  if (!gm.m || !gm.batch)
    return false;
  if (quant && quant_gemm_unsupported(&gm))
    return false;
  /* what cuBLASLt can do of the epilogue: D = act(A B + bias) or D = A B + bias + C */
  const tgc_value *y = skip_reshapes(root, ins, nin);
  bool ok;
  /* i8: cuBLASLt's IMMA GEMMs have no epilogue tgc can use (i32 out): the epilogue kernel computes the rest. fp8:
   * a per-tensor rescale is cuBLASLt's alpha, and the bias and activation after it its epilogue, in the
   * rescale's dtype (f16 or bf16; f32 without bias or activation) -- no residual (untested in cuBLASLt's fp8) */
  bool fp8 = quant && gm.ab_dtype == TGC_DT_F8E4M3;
  tgc_dtype edt = fp8 ? result->type->dtype : dt;
  if (quant && (!fp8 || !(edt == TGC_DT_F16 || edt == TGC_DT_BF16 || edt == TGC_DT_F32)))
    y = mmv;
  if (!fp8 && y->def && y->def->opcode == TGC_OP_ADD && in_index(ins, nin, y) < 0) {
    for (uint32_t s = 0; s < 2 && !gm.c; s++) {
      const tgc_value *r = skip_reshapes(y->def->operands[s].value, ins, nin);
      int i = in_index(ins, nin, r);
      if (i >= 0 && r->type->dtype == dt && same_numel(ar, r->type, ot) && r->type->rank &&
          tgc_dim_equal(r->type->dims[r->type->rank - 1], gm.n) && !tgc_cuda_constant_def(outer[i])) {
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
      if (i >= 0 && b->type->dtype == edt && is_bias(b, gm.n) && !tgc_cuda_constant_def(outer[i])) {
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
  if (quant && !fp8)
    ok = skip_reshapes(root, ins, nin) == mmv && result->type->dtype == dt;
  if (fp8 && y != mmv) {
    /* the rescale: dequantize(acc) {scale = s} per tensor, of the product, to the chain's dtype */
    const tgc_op *dq = y->def && in_index(ins, nin, y) < 0 ? y->def : NULL;
    ok = dq && y->type->dtype == edt && fp8_rescale(&gm, dq, mmv, ins, outer, nin);
  }
  if (fp8 && ok && gm.dtype == TGC_DT_F32 && gm.epilogue != TGC_CUDA_EPI_NONE)
    ok = false; /* cuBLASLt's fp8 bias and activation epilogues are measured with f16/bf16 results only */
  const tgc_value *product = mmv;
  if (!ok) {
    /* cuBLASLt computes the product alone, unscaled; an epilogue kernel reads it */
    gm.alpha = 1;
    gm.dtype = dt;
    gm.scale = NULL;
    gm.c = NULL;
    gm.bias = NULL;
    gm.epilogue = TGC_CUDA_EPI_NONE;
    /* fp8 whose product only a rescale to f16/bf16 reads (a residual, a layout change, another activation follow):
     * cuBLASLt computes the rescale too and writes its 2-byte value, which the epilogue kernel reads, where an
     * f32 product would be written and read at 4 bytes */
    const tgc_use *u = mmv->uses;
    if (fp8 && u && !u->next && u->user->nresults == 1 && u->user->results[0].type &&
        (u->user->results[0].type->dtype == TGC_DT_F16 || u->user->results[0].type->dtype == TGC_DT_BF16) &&
        fp8_rescale(&gm, u->user, mmv, ins, outer, nin))
      product = &u->user->results[0];
    else
      gm.alpha = 1, gm.dtype = dt, gm.scale = NULL;
  }
  gm.d = ok ? result : product;
  tgc_cuda_module *cm = g->cm;
  cm->gemms = tgc_arena_grow(ar, cm->gemms, cm->ngemms, cm->ngemms + 1, sizeof *cm->gemms);
  cm->gemms[cm->ngemms] = gm;
  cm->steps = tgc_arena_grow(ar, cm->steps, cm->nsteps, cm->nsteps + 1, sizeof *cm->steps);
  cm->steps[cm->nsteps++] = (tgc_cuda_step){true, cm->ngemms++, TGC_CUDA_ALWAYS, NULL, 0, 0};
  if (ok)
    return true;
  return tgc_cuda_epilogue_kernel(g, product, root, ins, outer, nin, result);
}

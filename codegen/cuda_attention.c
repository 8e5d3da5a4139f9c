/* Attention kernels, flash style: online softmax over key tiles in shared memory, fp32 accumulators; tensor
 * cores (mma.sync) for f16/bf16 head dims up to 64, CUDA cores otherwise. q, k, v and the mask are read as
 * strided views of their buffers, so the split/reshape/transpose around attention costs nothing; what is not a
 * view is computed first by an operand kernel. */
#include "cuda_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool coeffs_divisible(const tgc_dim *d, int64_t k) {
  for (uint32_t i = 0; i < d->nterms; i++)
    if (d->terms[i].coeff % k)
      return false;
  return true;
}

/* Whether a [B, H, S, HD] view can be read VEC elements at a time: the head dim contiguous and every offset a
 * multiple of VEC for all values of the symbols (buffers themselves are 256-byte aligned). */
static bool vec_ok(const view *v, int64_t hd, uint32_t vec) {
  if (v->rank != 4 || !dim_is(v->st[3], 1) || hd % vec || !coeffs_divisible(v->off, vec))
    return false;
  for (uint32_t d = 0; d < 3; d++)
    if (!coeffs_divisible(v->st[d], vec))
      return false;
  return true;
}

static void view_index(emitter *e, tgc_strbuf *b, const view *v, const char *const *ix) {
  tgc_sb_puts(b, "(");
  tgc_cuda_dim_c(e, v->off, b);
  for (uint32_t d = 0; d < v->rank; d++) {
    if (dim_is(v->st[d], 0))
      continue;
    tgc_sb_printf(b, " + %s * ", ix[d]);
    tgc_cuda_dim_c(e, v->st[d], b);
  }
  tgc_sb_puts(b, ")");
}

/* The attention op AT of a launch: q, k, v and the mask read as strided views (or computed into temporaries
 * first), the result written through a view of the launch's result (or to a temporary an epilogue reads). */
bool tgc_cuda_gen_attention(gen *g, const tgc_op *at, const tgc_value *root, tgc_value *const *ins,
                            const tgc_value *const *outer, uint32_t nin, const tgc_value *result) {
  tgc_arena *ar = &g->m->arena;
  const tgc_value *av = &at->results[0];
  const tgc_type *qt = at->operands[0].value->type, *kt = at->operands[1].value->type,
                 *vt = at->operands[2].value->type;
  int64_t H, Hk, D, Dv;
  if (qt->rank != 4 || kt->rank != 4 || vt->rank != 4 || !tgc_dim_is_const(qt->dims[1], &H) ||
      !tgc_dim_is_const(kt->dims[1], &Hk) || !tgc_dim_is_const(qt->dims[3], &D) ||
      !tgc_dim_is_const(vt->dims[3], &Dv) || Hk <= 0 || H % Hk || D > 128 || Dv > 128 || D <= 0 || Dv <= 0) {
    snprintf(g->why, sizeof g->why, "attention needs rank-4 q/k/v with constant heads and head dims up to 128");
    return false;
  }
  tgc_dtype dt = qt->dtype;
  if ((dt != TGC_DT_F16 && dt != TGC_DT_BF16 && dt != TGC_DT_F32) || kt->dtype != dt || vt->dtype != dt) {
    snprintf(g->why, sizeof g->why, "attention on %s", tgc_dtype_name(dt));
    return false;
  }
  /* operands: views, else temporaries */
  view vw[4];
  uint32_t nops = at->noperands;
  for (uint32_t j = 0; j < nops; j++) {
    const tgc_value *x = at->operands[j].value;
    if (tgc_cuda_view_of(ar, x, ins, outer, nin, &vw[j]))
      continue;
    if (!tgc_cuda_value_kernel(g, "operand", x, ins, outer, nin, x) || !tgc_cuda_contiguous_view(ar, x, x->type, &vw[j]))
      return false;
  }
  if (nops == 4 && vw[3].rank > 4)
    return false;
  /* the result: a view of the launch's result, else a temporary. Between the root and the attention's result:
   * views, and elementwise ops (a quantize of the result for the next GEMM) whose other operands are launch
   * inputs, read at the element's index: the kernel computes them at its store (EPI) */
  view ov;
  bool direct = tgc_cuda_contiguous_view(ar, result, root->type, &ov), epi = false;
  for (const tgc_value *y = root; direct && y != av;) {
    const tgc_op *op = y->def;
    if (in_index(ins, nin, y) >= 0 || !op)
      direct = false;
    else if (op->nresults == 1 && ((tgc_op_info_of(op->opcode)->flags & TGC_OPF_ELEMWISE) ||
                                   op->opcode == TGC_OP_QUANTIZE || op->opcode == TGC_OP_DEQUANTIZE)) {
      /* one operand computed in the launch, of the op's shape (no broadcast); the rest launch inputs */
      const tgc_value *path = NULL;
      for (uint32_t j = 0; j < op->noperands && direct; j++) {
        const tgc_value *x = op->operands[j].value;
        if (in_index(ins, nin, x) >= 0)
          continue;
        direct = !path && tgc_type_same_shape(x->type, y->type);
        path = x;
      }
      direct = direct && path;
      epi = true;
      y = path;
    } else if (op->opcode == TGC_OP_RESHAPE) {
      direct = tgc_cuda_reshape_view(ar, &ov, y->type, op->operands[0].value->type, &ov);
      y = op->operands[0].value;
    } else if (op->opcode == TGC_OP_TRANSPOSE) {
      const tgc_attr *perm = tgc_op_attr(op, "perm");
      view x = ov;
      for (uint32_t d = 0; d < y->type->rank; d++)
        x.st[perm->u.list.items[d]->u.i] = ov.st[d];
      ov = x;
      y = op->operands[0].value;
    } else
      direct = false;
  }
  if (!direct && !tgc_cuda_contiguous_view(ar, av, av->type, &ov))
    return false;
  /* the kernel */
  /* TPQ threads share a query row (its dot products end in a shuffle butterfly): more warps in flight than
   * one thread per row, which matters when there are few rows (batch 1, short sequences) */
  uint32_t tpq = (D % 8 == 0 && Dv % 8 == 0) ? 8 : (D % 4 == 0 && Dv % 4 == 0) ? 4 : 1, qpb = 8, tk = 32;
  uint32_t vec = 128 / (uint32_t)tgc_dtype_bits(dt);
  tgc_strbuf src;
  tgc_sb_init(&src);
  emitter e;
  memset(&e, 0, sizeof e);
  e.m = g->m;
  const char *qix[4] = {"b", "h", "qi", "d"}, *kix[4] = {"b", "hk", "j", "d"}, *oix[4] = {"b", "h", "qi", "d"};
  const char *mix[4] = {"b", "h", "qi", "j"};
  tgc_strbuf qo, ko, vo, oo, mo;
  tgc_sb_init(&qo);
  tgc_sb_init(&ko);
  tgc_sb_init(&vo);
  tgc_sb_init(&oo);
  tgc_sb_init(&mo);
  view_index(&e, &qo, &vw[0], qix);
  view_index(&e, &ko, &vw[1], kix);
  view_index(&e, &vo, &vw[2], kix);
  view_index(&e, &oo, &ov, oix);
  bool bool_mask = false;
  if (nops == 4) {
    /* the mask broadcasts to [B, H, Sq, Sk]: align its dims at the right, size-1 dims read index 0 */
    view m = vw[3];
    view full;
    full.buf = m.buf;
    full.off = m.off;
    full.rank = 4;
    const tgc_type *mt = at->operands[3].value->type;
    for (uint32_t d = 0; d < 4; d++) {
      int64_t md = (int64_t)d - (int64_t)(4 - m.rank);
      full.st[d] = md < 0 || dim_is(mt->dims[md], 1) ? tgc_dim_const(ar, 0) : m.st[md];
    }
    view_index(&e, &mo, &full, mix);
    bool_mask = mt->dtype == TGC_DT_BOOL;
  }
  /* the store: tgc_st, or the epilogue computed at the element (its inputs in0.., constants inlined) */
  tgc_strbuf store, epi_params;
  tgc_sb_init(&store);
  tgc_sb_init(&epi_params);
  const tgc_value **eargs = tgc_arena_alloc(ar, sizeof *eargs * (nin + 1));
  uint32_t neargs = 0;
  if (!epi || !direct) {
    tgc_sb_puts(&store, "tgc_st(&out[tgc_o], tgc_v);");
  } else {
    bool *keep = tgc_arena_alloc(ar, sizeof *keep * (nin + 1));
    for (uint32_t j = 0; j < nin; j++) /* read by an op of the epilogue chain, not by the attention's operands */
      for (const tgc_use *u = ins[j]->uses; u && !keep[j]; u = u->next)
        keep[j] = u->user != at && u->user->opcode != TGC_OP_TRANSPOSE && u->user->opcode != TGC_OP_RESHAPE &&
                  u->user->opcode != TGC_OP_SPLIT;
    kernel_src ks = tgc_cuda_kernel_inputs(ar, ins, outer, nin, keep, eargs);
    neargs = ks.ninputs;
    for (uint32_t j = 0; j < neargs; j++)
      tgc_sb_printf(&epi_params, ", const %s *__restrict__ in%u", tgc_cuda_storage_type(ks.inputs[j]->type->dtype), j);
    tgc_strbuf *saved = e.out;
    e.out = &store;
    e.indent = 3; /* the template's STORE is 6 spaces in: its first line's own indent is dropped below */
    e.code = g->n + 1;
    /* the first fresh name: the emitted code's names then end in a number >= 1, and the template's own names
     * with digits (q0, k0) cannot be among them */
    const char *r = tgc_cuda_fresh(&e, "r");
    /* the result as the CPU backend has it, rounded to its dtype, before the epilogue reads it */
    line(&e, "const float %s = %s;", r, dt == TGC_DT_F16 ? "__half2float(__float2half_rn(tgc_v))"
                                       : dt == TGC_DT_BF16 ? "__bfloat162float(__float2bfloat16_rn(tgc_v))" : "tgc_v");
    e.reg_v = av;
    e.reg_x = r;
    index_vec I = tgc_cuda_delinearize(&e, "tgc_o", root->type);
    const char *x = tgc_cuda_eval(&e, &ks, root, &I);
    e.reg_v = NULL;
    if (!e.failed)
      tgc_cuda_store_at(&e, "out[tgc_o]", x, root->type->dtype);
    e.out = saved;
    if (e.failed) {
      /* not computable at the store: the kernel writes the result to a temporary, an epilogue kernel the rest */
      e.failed = false;
      direct = false;
      neargs = 0;
      tgc_sb_free(&store);
      tgc_sb_free(&epi_params);
      tgc_sb_init(&store);
      tgc_sb_init(&epi_params);
      tgc_sb_puts(&store, "tgc_st(&out[tgc_o], tgc_v);");
      if (!tgc_cuda_contiguous_view(ar, av, av->type, &ov))
        return false;
      tgc_sb_free(&oo);
      tgc_sb_init(&oo);
      view_index(&e, &oo, &ov, oix);
    }
  }
  const char *scale = tgc_cuda_float_attr(&e, at, "scale", 1.0 / sqrt((double)D), false);
  bool causal = tgc_op_attr_bool(at, "causal", false);
  const char *sq = tgc_cuda_dim_str(&e, qt->dims[2]), *sk = tgc_cuda_dim_str(&e, kt->dims[2]);
  const char *T = tgc_cuda_storage_type(dt);
  /* tensor cores: f16/bf16, equal head dims up to 64 that are multiples of 16 */
  const char *force = getenv("TGC_ATTENTION"); /* "scalar": the CUDA-core kernel everywhere (for comparisons) */
  bool use_mma = (dt == TGC_DT_F16 || dt == TGC_DT_BF16) && D == Dv && D % 16 == 0 && D <= 64 &&
                 !(force && strcmp(force, "scalar") == 0);
  /* the kernel: the template with this launch's dims, index expressions and choices */
  char name[96];
  tgc_cuda_kernel_name(g, name, sizeof name, "attention");
  char d_s[24], dv_s[24], vec_s[16], tpq_s[16], qpb_s[16], tk_s[16], hpk_s[24];
  snprintf(d_s, sizeof d_s, "%lld", (long long)D);
  snprintf(dv_s, sizeof dv_s, "%lld", (long long)Dv);
  snprintf(vec_s, sizeof vec_s, "%u", vec);
  snprintf(tpq_s, sizeof tpq_s, "%u", tpq);
  snprintf(qpb_s, sizeof qpb_s, "%u", qpb);
  snprintf(tk_s, sizeof tk_s, "%u", tk);
  snprintf(hpk_s, sizeof hpk_s, "%lld", (long long)(H / Hk));
  tgc_strbuf mask_param, sym_params;
  tgc_sb_init(&mask_param);
  tgc_sb_init(&sym_params);
  if (nops == 4)
    tgc_sb_printf(&mask_param, "const %s *__restrict__ mask, ", tgc_cuda_storage_type(at->operands[3].value->type->dtype));
  for (uint32_t s = 0; s < e.nsyms; s++)
    tgc_sb_printf(&sym_params, ", long long s_%s", e.syms[s]->name);
  bool vec_k = vec_ok(&vw[1], D, vec), vec_v = vec_ok(&vw[2], Dv, vec);
  const tgc_cuda_tflag flags[] = {
      {"mma", use_mma}, {"f16", dt == TGC_DT_F16}, {"causal", causal}, {"mask", nops == 4},
      {"bool_mask", bool_mask}, {"float_mask", nops == 4 && !bool_mask},
      {"async", vec_k && vec_v}, /* both tiles by cp.async (tensor cores: D == DV) */
      {"vec_k", vec_k}, {"vec_v", vec_v},
  };
  const tgc_cuda_tvar vars[] = {
      {"NAME", name}, {"T", T}, {"MASK_PARAM", mask_param.data ? mask_param.data : ""},
      {"SYM_PARAMS", sym_params.data ? sym_params.data : ""}, {"D", d_s}, {"DV", dv_s}, {"VEC", vec_s},
      {"TPQ", tpq_s}, {"QPB", qpb_s}, {"TK", tk_s}, {"HPK", hpk_s}, {"SQ", sq}, {"SK", sk}, {"Q", qo.data},
      {"K", ko.data}, {"V", vo.data}, {"O", oo.data}, {"M", mo.data ? mo.data : ""}, {"SCALE", scale},
      {"OT", tgc_cuda_storage_type((direct ? root : av)->type->dtype)},
      {"EPI_PARAMS", epi_params.data ? epi_params.data : ""}, {"STORE", store.data + strspn(store.data, " ")},
  };
  tgc_sb_printf(&src, "// %s\n", g->where);
  tgc_sb_puts(&src, tgc_cuda_kernel_headers);
  tgc_cuda_put_helpers(&src, &e);
  tgc_cuda_expand(&src, tgc_cuda_attention_cuh, flags, sizeof flags / sizeof *flags, vars, sizeof vars / sizeof *vars);
  tgc_sb_free(&mask_param);
  tgc_sb_free(&sym_params);
  tgc_sb_free(&store);
  tgc_sb_free(&epi_params);
  const tgc_value **args = tgc_arena_alloc(ar, sizeof *args * (5 + neargs));
  uint32_t na = 0;
  for (uint32_t j = 0; j < nops; j++)
    args[na++] = vw[j].buf;
  args[na++] = direct ? result : av;
  for (uint32_t j = 0; j < neargs; j++)
    args[na++] = eargs[j];
  tgc_cuda_kernel *kk = tgc_cuda_add_kernel(g, "attention", tgc_arena_strndup(ar, src.data, src.len), name, args, na, &e);
  kk->grid = TGC_CUDA_GRID_ATTENTION;
  kk->count = qt->dims[2];
  kk->gy = qt->dims[1];
  kk->gz = qt->dims[0];
  kk->block = use_mma ? 128 : qpb * tpq;
  kk->per_block = use_mma ? 16 : qpb;
  tgc_sb_free(&qo);
  tgc_sb_free(&ko);
  tgc_sb_free(&vo);
  tgc_sb_free(&oo);
  tgc_sb_free(&mo);
  tgc_sb_free(&src);
  if (direct)
    return true;
  return tgc_cuda_epilogue_kernel(g, av, root, ins, outer, nin, result);
}

/* The int4 weight-only GEMM: a matmul whose weight is matmul(x, dequantize(transpose(q), s) {axis = 0, group = G})
 * -- what quantize{mode=int4w} leaves and fuse keeps in the GEMM's launch -- becomes one kernel of the template
 * codegen/kernels/w4gemm.cuh that reads q packed (4 bits a value, in its own order: the program marks q's buffer
 * pack_w4 and the runtime packs it at upload, tgc_rt_pack_w4) instead of a dequantize kernel writing an f16
 * copy of the weight and a cuBLASLt GEMM reading it. The conditions: x, the dequantized weight and the product
 * are f16; q an i4 param [N, K] with constant dims, K a multiple of 128, N of 8, G a multiple of 16 dividing K;
 * and every use of q is such a weight (its buffer has one layout). Anything else keeps the general path. */
#include "cuda_internal.h"

#include <stdlib.h>

/* The w4 GEMM's block: MT m-tiles of 16 rows (one for at most W4_SMALL_ROWS rows: a decoding step's GEMV, where
 * a block of 4 m-tiles would hold 4 times the accumulators for rows that do not exist) by NT n-tiles of 8 columns
 * (2 where N allows); each warp loads SPB spans of 128 k at once. The template's shared-memory sums are
 * MT * 16 * NT * 8 floats. TGC_W4_TILE=MT,SPB[,NT] in the environment sets them (for measurements: bench/w4_gpu.py
 * --tiles); an NT that does not divide N / 8 is ignored. */
#define W4_MT 4
#define W4_SPB 4
#define W4_SMALL_ROWS 16

typedef struct {
  int mt, spb, nt;
} w4_tile;

/* The block for at most MAX_ROWS rows and N columns. */
static w4_tile tile_for(int64_t max_rows, int64_t n) {
  w4_tile t = {max_rows <= W4_SMALL_ROWS ? 1 : W4_MT, W4_SPB, n % 16 == 0 ? 2 : 1};
  const char *env = getenv("TGC_W4_TILE");
  int a, b, c, k;
  if (env && (k = sscanf(env, "%d,%d,%d", &a, &b, &c)) >= 2 && a >= 1 && a <= 8 && b >= 1 && b <= 16) {
    t.mt = a;
    t.spb = b;
    if (k == 3 && c >= 1 && c <= 16 && n % (8 * c) == 0)
      t.nt = c;
  }
  return t;
}

typedef struct {
  const tgc_value *x, *q, *s; /* inside the launch */
  int64_t n, k, group;
} w4_form;

static const tgc_value *skip_views(const tgc_value *v, tgc_value *const *ins, uint32_t nin) {
  while (ins && in_index(ins, nin, v) < 0 && v->def && v->def->opcode == TGC_OP_RESHAPE)
    v = v->def->operands[0].value;
  return v;
}

/* MM as the w4 kernel's form (true), by its IR alone. */
static bool match(const tgc_op *mm, w4_form *f) {
  if (mm->opcode != TGC_OP_MATMUL || mm->noperands != 2)
    return false;
  const tgc_value *xv = mm->operands[0].value, *wd = mm->operands[1].value;
  const tgc_type *xt = xv->type, *yt = mm->results[0].type;
  const tgc_op *dq = wd->def;
  if (!xt || !yt || xt->dtype != TGC_DT_F16 || yt->dtype != TGC_DT_F16 || xt->rank < 2 || !dq ||
      dq->opcode != TGC_OP_DEQUANTIZE || dq->noperands != 2 || !wd->uses || wd->uses->next)
    return false;
  const tgc_type *wt = wd->type;
  const tgc_attr *axis = tgc_op_attr(dq, "axis"), *group = tgc_op_attr(dq, "group");
  if (!wt || wt->dtype != TGC_DT_F16 || wt->rank != 2 || !axis || !group || axis->kind != TGC_ATTR_INT ||
      group->kind != TGC_ATTR_INT || norm_axis(axis->u.i, 2) != 0 || tgc_op_attr_int(dq, "zero_point", 0) != 0)
    return false;
  const tgc_value *tv = dq->operands[0].value, *s = dq->operands[1].value;
  const tgc_op *tr = tv->def;
  if (!tr || tr->opcode != TGC_OP_TRANSPOSE || !tv->uses || tv->uses->next)
    return false;
  const tgc_value *q = tr->operands[0].value;
  const tgc_type *qt = q->type, *st = s->type;
  int64_t n, k, kx;
  if (!qt || qt->dtype != TGC_DT_I4 || qt->rank != 2 || !tgc_dim_is_const(qt->dims[0], &n) ||
      !tgc_dim_is_const(qt->dims[1], &k) || !tgc_dim_is_const(xt->dims[xt->rank - 1], &kx) || kx != k ||
      !st || st->dtype != TGC_DT_F16 || st->rank != 2 || !dim_is(st->dims[1], n))
    return false;
  f->x = xv;
  f->q = q;
  f->s = s;
  f->n = n;
  f->k = k;
  f->group = group->u.i;
  return k % 128 == 0 && n % 8 == 0 && f->group > 0 && f->group % 16 == 0 && k % f->group == 0 &&
         dim_is(st->dims[0], k / f->group);
}

/* Every use of the param Q (outside the launches) is the weight of a w4-form matmul inside a launch. */
static bool only_w4_uses(const tgc_value *q) {
  for (const tgc_use *u = q->uses; u; u = u->next) {
    const tgc_op *f = u->user;
    if (f->opcode != TGC_OP_FUSION || !f->region)
      return false;
    const tgc_value *arg = f->region->args[u - f->operands];
    for (const tgc_use *t = arg->uses; t; t = t->next) {
      const tgc_op *tr = t->user;
      if (tr->opcode != TGC_OP_TRANSPOSE || !tr->results[0].uses)
        return false;
      const tgc_op *dq = tr->results[0].uses->user;
      w4_form wf;
      if (!dq->results[0].uses || !match(dq->results[0].uses->user, &wf) || wf.q != arg)
        return false;
    }
  }
  return q->uses != NULL;
}

/* The launch's matmul MM reads a packed w4 weight: its form, q a param, every use of q such a weight. */
static bool w4_applies(const tgc_op *mm, tgc_value *const *ins, const tgc_value *const *outer, uint32_t nin,
                       w4_form *f, int *qi, int *si) {
  if (getenv("TGC_W4") && strcmp(getenv("TGC_W4"), "off") == 0) /* the dequantize + cuBLASLt path, to compare */
    return false;
  if (!match(mm, f))
    return false;
  *qi = in_index(ins, nin, f->q);
  *si = in_index(ins, nin, f->s);
  return *qi >= 0 && *si >= 0 && outer[*qi]->def && outer[*qi]->def->opcode == TGC_OP_PARAM &&
         only_w4_uses(outer[*qi]);
}

/* The template expanded for F, as kernel KIND ("w4gemm" or "w4dequant") of the launch, M rows (w4gemm). */
static tgc_cuda_kernel *emit(gen *g, const char *kind, const w4_form *f, const tgc_dim *mdim, w4_tile tl,
                             bool bias, const tgc_value **args, uint32_t na) {
  tgc_arena *ar = &g->m->arena;
  emitter e;
  memset(&e, 0, sizeof e);
  e.m = g->m;
  const char *mexpr = mdim ? tgc_cuda_dim_str(&e, mdim) : "0";
  int nt = tl.nt;
  char name[96], n_s[24], k_s[24], g_s[24], mt_s[8], nt_s[8], spb_s[8];
  tgc_cuda_kernel_name(g, name, sizeof name, kind);
  snprintf(n_s, sizeof n_s, "%lld", (long long)f->n);
  snprintf(k_s, sizeof k_s, "%lld", (long long)f->k);
  snprintf(g_s, sizeof g_s, "%lld", (long long)f->group);
  snprintf(mt_s, sizeof mt_s, "%d", tl.mt);
  snprintf(spb_s, sizeof spb_s, "%d", tl.spb);
  snprintf(nt_s, sizeof nt_s, "%d", nt);
  tgc_strbuf src, sym_params;
  tgc_sb_init(&src);
  tgc_sb_init(&sym_params);
  tgc_sb_puts(&sym_params, "");
  for (uint32_t i = 0; i < e.nsyms; i++)
    tgc_sb_printf(&sym_params, ", long long s_%s", e.syms[i]->name);
  bool dequant = strcmp(kind, "w4dequant") == 0;
  const tgc_cuda_tflag flags[] = {{"bias", bias}, {"dequant", dequant}};
  const tgc_cuda_tvar vars[] = {{"NAME", name}, {"SYM_PARAMS", sym_params.data}, {"M", mexpr}, {"N", n_s},
                                {"K", k_s},     {"GROUP", g_s},                  {"MT", mt_s}, {"NT", nt_s}, {"SPB", spb_s}};
  tgc_sb_printf(&src, "// %s\n", g->where);
  tgc_sb_puts(&src, tgc_cuda_kernel_headers);
  tgc_cuda_expand(&src, tgc_cuda_w4gemm_cuh, flags, sizeof flags / sizeof *flags, vars, sizeof vars / sizeof *vars);
  tgc_sb_free(&sym_params);
  tgc_cuda_kernel *kk = tgc_cuda_add_kernel(g, kind, tgc_arena_strndup(ar, src.data, src.len), name, args, na, &e);
  tgc_sb_free(&src);
  if (dequant) {
    kk->grid = TGC_CUDA_GRID_ELEMENTS;
    kk->count = tgc_dim_const(ar, f->n / 8 * (f->k / 128) * 32);
    kk->per_block = 256;
  } else {
    kk->grid = TGC_CUDA_GRID_ATTENTION;
    kk->count = mdim;
    kk->per_block = 16 * tl.mt;
    kk->gy = tgc_dim_const(ar, f->n / (8 * nt));
    kk->gz = tgc_dim_const(ar, 1);
  }
  kk->block = 256;
  return kk;
}

/* The w4 GEMM kernel with block TL (and the epilogue kernel after it unless DIRECT): 1, or -1 on an error. */
static int emit_gemm(gen *g, const w4_form *f, const tgc_dim *mdim, w4_tile tl, bool bias, const tgc_value **args,
                     uint32_t na, bool direct, const tgc_value *mmv, const tgc_value *root, tgc_value *const *ins,
                     const tgc_value *const *outer, uint32_t nin, const tgc_value *result) {
  emit(g, "w4gemm", f, mdim, tl, bias, args, na);
  if (direct)
    return 1;
  return tgc_cuda_epilogue_kernel(g, mmv, root, ins, outer, nin, result) ? 1 : -1;
}

int tgc_cuda_try_w4(gen *g, const tgc_op *mm, const tgc_value *root, tgc_value *const *ins,
                    const tgc_value *const *outer, uint32_t nin, const tgc_value *result, const tgc_dim **rows) {
  tgc_arena *ar = &g->m->arena;
  w4_form f;
  int qi, si;
  *rows = NULL;
  if (!w4_applies(mm, ins, outer, nin, &f, &qi, &si))
    return 0;
  const tgc_value *x = skip_views(f.x, ins, nin);
  int xi = in_index(ins, nin, x);
  const tgc_type *xt = f.x->type;
  const tgc_dim *mdim = tgc_cuda_numel_dim(ar, xt, 0, xt->rank - 1);
  int64_t mconst;
  if (xi < 0 || !mdim || (tgc_dim_is_const(mdim, &mconst) && mconst > TGC_CUDA_W4_MAX_ROWS))
    return 0; /* the general path, which reads the packed weight through tgc_cuda_w4_dequant */
  if (!tgc_dim_is_const(mdim, &mconst))
    *rows = mdim;
  if (!tgc_cuda_ensure_buffer(g, outer[xi]) || !tgc_cuda_ensure_buffer(g, outer[si]))
    return -1;
  const tgc_value *mmv = &mm->results[0];
  /* what the kernel computes of the epilogue: nothing, or + bias[n] (f16) */
  const tgc_value *y = skip_views(root, ins, nin), *bias = NULL;
  if (y != mmv && y->def && y->def->opcode == TGC_OP_ADD && in_index(ins, nin, y) < 0)
    for (uint32_t s = 0; s < 2 && !bias; s++) {
      const tgc_value *bv = y->def->operands[s].value;
      int bi = in_index(ins, nin, bv);
      if (bi >= 0 && skip_views(y->def->operands[1 - s].value, ins, nin) == mmv && bv->type->dtype == TGC_DT_F16 &&
          bv->type->rank == 1 && dim_is(bv->type->dims[0], f.n) && !tgc_cuda_constant_def(outer[bi]))
        bias = outer[bi];
    }
  bool direct = result->type->dtype == TGC_DT_F16 && (y == mmv || bias);
  if (!direct)
    bias = NULL;
  const tgc_value **args = tgc_arena_alloc(ar, sizeof *args * 5);
  uint32_t na = 0;
  args[na++] = outer[xi];
  args[na++] = outer[qi];
  args[na++] = outer[si];
  if (bias)
    args[na++] = bias;
  args[na++] = direct ? result : mmv;
  if (!*rows)
    return emit_gemm(g, &f, mdim, tile_for(mconst, f.n), bias != NULL, args, na, direct, mmv, root, ins, outer, nin,
                     result);
  /* symbolic rows: a block of one m-tile for up to W4_SMALL_ROWS rows, of W4_MT m-tiles up to
   * TGC_CUDA_W4_MAX_ROWS (the caller's general path above), each launch a step run at its sizes only */
  uint32_t s0 = g->cm->nsteps;
  if (emit_gemm(g, &f, mdim, tile_for(W4_SMALL_ROWS, f.n), bias != NULL, args, na, direct, mmv, root, ins, outer,
                nin, result) < 0)
    return -1;
  uint32_t s1 = g->cm->nsteps;
  if (emit_gemm(g, &f, mdim, tile_for(TGC_CUDA_W4_MAX_ROWS, f.n), bias != NULL, args, na, direct, mmv, root, ins,
                outer, nin, result) < 0)
    return -1;
  for (uint32_t s = s0; s < g->cm->nsteps; s++) {
    tgc_cuda_step *st = &g->cm->steps[s];
    st->when = s < s1 ? TGC_CUDA_WHEN_LE : TGC_CUDA_WHEN_RANGE;
    st->when_dim = mdim;
    st->lo = W4_SMALL_ROWS;
    st->limit = s < s1 ? W4_SMALL_ROWS : TGC_CUDA_W4_MAX_ROWS;
  }
  return 1;
}

const tgc_value *tgc_cuda_w4_dequant(gen *g, const tgc_op *mm, tgc_value *const *ins, const tgc_value *const *outer,
                                     uint32_t nin) {
  w4_form f;
  int qi, si;
  if (!w4_applies(mm, ins, outer, nin, &f, &qi, &si))
    return NULL;
  if (!tgc_cuda_ensure_buffer(g, outer[si]))
    return NULL;
  /* the temporary is the matmul's operand, dequantize(...) : f16[K, N], holding its transpose [N][K] */
  const tgc_value *wd = mm->operands[1].value;
  const tgc_value **args = tgc_arena_alloc(&g->m->arena, sizeof *args * 3);
  args[0] = outer[qi];
  args[1] = outer[si];
  args[2] = wd;
  emit(g, "w4dequant", &f, NULL, tile_for(TGC_CUDA_W4_MAX_ROWS, f.n), false, args, 3);
  return wd;
}

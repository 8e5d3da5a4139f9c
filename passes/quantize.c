/* quantize: post-training quantization of the matmuls whose right operand is a weight (a param, or the 2-D
 * transpose of one), in the explicit Q/DQ style (docs/quantization.md):
 *
 *   %h = matmul(%x, %w)         ==>   %wq = param() {name = "fc1.weight.q"} : i8[N, K]       (weights file)
 *                                     %wt = transpose(%wq) {perm = [1, 0]} : i8[K, N]
 *                                     %ws = param() {name = "fc1.weight.scale"} : f32[N]
 *                                     %wd = dequantize(%wt, %ws) {axis = 1} : f32[K, N]
 *                                     %xq = quantize(%x) {scale = s} : i8[.., K]             (int8, fp8 only)
 *                                     %xd = dequantize(%xq) {scale = s} : f32[.., K]
 *                                     %h = matmul(%xd, %wd)
 *
 * Weights are quantized here, from their values (symmetric; per channel of N for int8 and fp8, group-wise along K
 * with f16 scales for int4w); the new tensors become weights of the module (tgc_module_add_weight), which the
 * driver writes beside its output. Activations get a per-tensor symmetric scale from the calibration statistics
 * that `tgc calibrate` left on the IR (calib.amax; ir/calib.h). Options:
 *   mode=int8|fp8|int4w     W8A8 int8, W8A8 fp8 e4m3, or int4 weight-only (activations stay float)
 *   granularity=tensor|channel|group:N   the weights' scales (default channel; group:128 for int4w)
 *   skip=REGEX              keep in float the matmuls whose result name, weight name or op name matches
 *   smoothquant=ALPHA       migrate activation outliers into the weights first (needs calib.chmax)
 *   awq=true|false          int4w: activation-aware scaling (AWQ-style) when the activation has calib.chmax
 *                           (default true); int4 scales are always clipped to the ratio that minimizes the
 *                           (activation-weighted) rounding error
 *   accuracy=cos:X          keep the most sensitive matmuls in float until the output's cosine against the float
 *                           model on the calibration data is at least X (passes/quant_accuracy.c)
 * fold-qdq turns the Q/DQ pairs into quantized contractions. Requires typed, unfused IR; preserves both. */
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib.h"
#include "parallel.h"
#include "pass.h"
#include "quantize.h"
#include "session.h"

typedef enum { QM_INT8, QM_FP8, QM_INT4W } qmode;

static const char *const mode_names[] = {"int8", "fp8", "int4w"};

/* One matmul to quantize, found in the first sweep. */
typedef struct cand {
  tgc_op *mm;
  tgc_op *wparam;    /* the weight's param */
  bool transposed;   /* the weight is transpose(param) with perm [1, 0] */
  int64_t K, N;
  const char *wname; /* the param's name */
  tgc_value *act;    /* the activation operand */
  tgc_calib cal;     /* its calibration statistics (int8, fp8) */
  tgc_quant_choice choice; /* its operands in float and quantized; accuracy=cos:X decides */
  double err_w, err_a; /* relative errors of its weight (exact) and its activation (estimated) */
  const double *dk;  /* int4: the weight of row k's rounding error (its activation's max^2 / AWQ factor^2), or NULL */
  double clip_lo, clip_hi; /* int4: the range of the clip ratios chosen for its scales */
  double awq_alpha, awq_lo, awq_hi; /* int4w with awq: the exponent and the range of the factors (alpha < 0: none) */
  const char *note;  /* its -Rpass=quantize remark, emitted once the choice is made */
  struct cand *next;
} cand;

typedef struct {
  tgc_pass_ctx *ctx;
  qmode mode;
  int64_t group; /* -1 per tensor, 0 per channel, >0 group size along K */
  bool has_skip, smooth, awq;
  regex_t skip;
  const char *skip_text;
  double alpha;
  tgc_rt_weights *w;
  cand *cands, *last;
  uint32_t ncands;
  tgc_strmap quantized; /* weight name -> its dequantized value (without SmoothQuant) */
  tgc_op **created;     /* every op the pass built, to erase those a float choice leaves dead */
  uint32_t ncreated, capcreated;
} qstate;

static tgc_value *track(qstate *q, tgc_value *v) {
  if (q->ncreated == q->capcreated) {
    uint32_t cap = q->capcreated ? 2 * q->capcreated : 64;
    q->created = tgc_arena_grow(q->ctx->scratch, q->created, q->capcreated, cap, sizeof *q->created);
    q->capcreated = cap;
  }
  q->created[q->ncreated++] = v->def;
  return v;
}

static const char *value_label(const tgc_value *v) { return v->name && v->name[0] ? v->name : "(unnamed)"; }

static bool const_dims2(const tgc_type *t, int64_t *a, int64_t *b) {
  return t && t->rank == 2 && tgc_dim_is_const(t->dims[0], a) && tgc_dim_is_const(t->dims[1], b);
}

/* True when V is computed from params and constants alone (a weight, not an activation). */
static bool is_static(const tgc_value *v, int depth) {
  const tgc_op *d = v->def;
  if (!d || depth > 64)
    return false;
  if (tgc_op_info_of(d->opcode)->flags & TGC_OPF_SOURCE)
    return true;
  for (uint32_t i = 0; i < d->noperands; i++)
    if (!is_static(d->operands[i].value, depth + 1))
      return false;
  return true;
}

static bool skip_matches(qstate *q, const char *s) { return s && q->has_skip && regexec(&q->skip, s, 0, NULL, 0) == 0; }

/* The first sweep: which matmuls can be quantized, and why not the others (-Rpass-missed=quantize). */
static int find_candidates(qstate *q, tgc_func *f) {
  int errors = 0;
  for (tgc_op *op = f->body->first; op; op = op->next) {
    if (op->opcode != TGC_OP_MATMUL)
      continue;
    tgc_value *b = op->operands[1].value, *a = op->operands[0].value;
    tgc_op *d = b->def;
    bool tr = false;
    if (d && d->opcode == TGC_OP_TRANSPOSE && d->operands[0].value->def &&
        d->operands[0].value->def->opcode == TGC_OP_PARAM) {
      const tgc_attr *perm = tgc_op_attr(d, "perm");
      if (perm && perm->kind == TGC_ATTR_LIST && perm->u.list.n == 2 && perm->u.list.items[0]->u.i == 1) {
        tr = true;
        d = d->operands[0].value->def;
      }
    }
    if (!d || d->opcode != TGC_OP_PARAM) {
      tgc_pass_remark(q->ctx, true, op, "kept in float: its right operand '%s' is not a weight (a param)",
               value_label(b));
      continue;
    }
    const char *wname = tgc_op_attr_str(d, "name", NULL);
    int64_t K, N, pk, pn;
    const tgc_type *pt = d->results[0].type;
    if (!wname || !const_dims2(pt, &pk, &pn) || tgc_dtype_kind_of(pt->dtype) != TGC_DTK_FLOAT ||
        tgc_dtype_bits(pt->dtype) < 16) {
      tgc_pass_remark(q->ctx, true, op, "kept in float: weight '%s' is not a 2-D f16, bf16, f32 or f64 tensor of known size",
               wname ? wname : "?");
      continue;
    }
    K = tr ? pn : pk;
    N = tr ? pk : pn;
    const tgc_type *at = a->type;
    if (!at || tgc_dtype_kind_of(at->dtype) != TGC_DTK_FLOAT || is_static(a, 0)) {
      tgc_pass_remark(q->ctx, true, op, "kept in float: its left operand '%s' is not a float activation",
               value_label(a));
      continue;
    }
    if (skip_matches(q, op->results[0].name) || skip_matches(q, wname) || skip_matches(q, "matmul")) {
      tgc_pass_remark(q->ctx, true, op, "kept in float: '%s' (weight '%s') matches skip='%s'",
               value_label(&op->results[0]), wname, q->skip_text);
      continue;
    }
    cand *c = tgc_arena_alloc(q->ctx->scratch, sizeof *c);
    *c = (cand){.mm = op, .wparam = d, .transposed = tr, .K = K, .N = N, .wname = wname, .act = a, .awq_alpha = -1};
    if (q->mode == QM_INT4W) {
      /* optional: per-channel statistics make the rounding activation-aware */
      if (!tgc_calib_get(a, &c->cal) || !c->cal.chmax || c->cal.nch != (uint32_t)K)
        c->cal.chmax = NULL;
    } else {
      if (!tgc_calib_get(a, &c->cal) || !(c->cal.amax > 0)) {
        tgc_error(q->ctx->diag, op->loc,
                  "quantize{mode=%s}: the activation '%s' of this matmul has no calibration statistics "
                  "(calib.amax): run 'tgc calibrate' on the module first, or keep it in float with skip=REGEX",
                  mode_names[q->mode], value_label(a));
        errors++;
        continue;
      }
      if (q->smooth && (!c->cal.chmax || c->cal.nch != (uint32_t)K)) {
        tgc_error(q->ctx->diag, op->loc,
                  "quantize{smoothquant=%g}: the activation '%s' has no per-channel statistics (calib.chmax of "
                  "%lld entries): calibrate the module again with this tgc",
                  q->alpha, value_label(a), (long long)K);
        errors++;
        continue;
      }
    }
    if (q->last)
      q->last->next = c;
    else
      q->cands = c;
    q->last = c;
    q->ncands++;
  }
  return errors;
}

/* The weight of C as a [K, N] row-major array of doubles. */
static int load_weight(qstate *q, const cand *c, double **out) {
  tgc_rt_tensor t;
  if (tgc_rt_weights_get(q->w, c->wname, &t)) {
    tgc_error(q->ctx->diag, c->wparam->loc, "quantize: weight '%s' is not in %s", c->wname,
              q->ctx->weights_path ? q->ctx->weights_path : "the module's weights (it has no 'weights' file)");
    return -1;
  }
  int64_t r0 = c->transposed ? c->N : c->K, r1 = c->transposed ? c->K : c->N;
  if (t.rank != 2 || t.shape[0] != r0 || t.shape[1] != r1 || tgc_dtype_kind_of(t.dtype) != TGC_DTK_FLOAT) {
    char s[128];
    tgc_rt_shape_str(t.rank, t.shape, s, sizeof s);
    tgc_error(q->ctx->diag, c->wparam->loc, "quantize: weight '%s' is %s%s in the weights file, not the param's %lldx%lld float",
              c->wname, tgc_dtype_name(t.dtype), s, (long long)r0, (long long)r1);
    return -1;
  }
  double *w = tgc_xmalloc(sizeof *w * (size_t)(c->K * c->N));
  for (int64_t k = 0; k < c->K; k++)
    for (int64_t n = 0; n < c->N; n++)
      w[k * c->N + n] = tgc_rt_get(&t, (size_t)(c->transposed ? n * c->K + k : k * c->N + n));
  *out = w;
  return 0;
}

/* A view of module weight MW, for the runtime's conversions (fp8 rounding, i4 range). */
static tgc_rt_tensor view_of(tgc_module_weight *mw) {
  tgc_rt_tensor t = {.dtype = mw->dtype, .rank = mw->rank, .data = mw->data, .owned = false};
  memcpy(t.shape, mw->shape, sizeof(int64_t) * mw->rank);
  return t;
}

/* A new module weight named BASE + SUFFIX, or BASE + SUFFIX + ".2", ".3", ... when the name is taken (a weight
 * quantized once per activation under SmoothQuant), or a name the weights file already has. */
static tgc_module_weight *new_weight(qstate *q, const tgc_op *at, const char *base, const char *suffix, tgc_dtype dt,
                                     uint32_t rank, const int64_t *shape) {
  char name[1024];
  tgc_rt_tensor old;
  for (int k = 1; k < 1000; k++) {
    if (k == 1)
      snprintf(name, sizeof name, "%s%s", base, suffix);
    else
      snprintf(name, sizeof name, "%s%s.%d", base, suffix, k);
    if (tgc_module_find_weight(q->ctx->module, name) || tgc_rt_weights_get(q->w, name, &old) == 0)
      continue;
    tgc_module_weight *mw = tgc_module_add_weight(q->ctx->module, name, dt, rank, shape);
    if (mw)
      return mw;
    break;
  }
  tgc_error(q->ctx->diag, at->loc, "quantize: cannot create a weight named after '%s%s' (rank %u)", base, suffix, rank);
  return NULL;
}

/* NAME + SUFFIX in M's arena: the printed name of a value the pass creates (NULL without a name). */
static const char *suffixed(tgc_module *m, const char *name, const char *suffix) {
  if (!name || !name[0])
    return NULL;
  char buf[512];
  int n = snprintf(buf, sizeof buf, "%s%s", name, suffix);
  return tgc_module_strdup(m, buf, n < (int)sizeof buf ? (size_t)n : sizeof buf - 1);
}

static const tgc_type *type2(tgc_module *m, tgc_dtype dt, int64_t a, int64_t b) {
  const tgc_dim *d[2] = {tgc_dim_const(&m->arena, a), tgc_dim_const(&m->arena, b)};
  return tgc_type_create(&m->arena, dt, 2, d);
}

enum { CLIP_STEPS = 11 }; /* int4 scales try amax * r / qmax for r = 1, 0.95, ..., 0.5 */

/* The blocks that share a scale in a [K, N] weight: ROWS x COLS of them, each G rows of K (G 0: all of K) of one
 * column (of every column per tensor). */
typedef struct {
  int64_t G, rows, cols;
} blocking;

static blocking blocks_of(const qstate *q, int64_t K, int64_t N) {
  int64_t G = q->group > 0 ? (q->group < K ? q->group : K) : 0;
  return (blocking){G, q->group < 0 ? 1 : G ? (K + G - 1) / G : 1, q->group < 0 ? 1 : N};
}

/* One weight's scale search (weight_scales), its blocks searched by search_block. */
typedef struct {
  const qstate *q;
  const double *W, *WT, *D;
  int64_t K, N;
  blocking b;
  tgc_dtype scdt;
  double qmax, qlo;
  int steps;
  double *s, *e, *r; /* per block: the scale, its weighted error, its clipping ratio */
} scale_search;

/* Block BI (= r * cols + n) of a scale_search. */
static void search_block(void *ctx, uint64_t bi) {
  const scale_search *x = ctx;
  const qstate *q = x->q;
  int64_t K = x->K, N = x->N, r = (int64_t)bi / x->b.cols, n = (int64_t)bi % x->b.cols;
  int64_t k0 = x->b.G ? r * x->b.G : 0, k1 = x->b.G ? (k0 + x->b.G < K ? k0 + x->b.G : K) : K;
  int64_t n0 = q->group < 0 ? 0 : n, n1 = q->group < 0 ? N : n + 1;
  /* element (k, j) of the block at B[k * ks + j * js] */
  const double *B = x->WT && n1 == n0 + 1 ? x->WT + n0 * K : x->W; /* W is NULL only with column blocks */
  int64_t ks = B == x->W ? N : 1, js = B == x->W ? 1 : 0;
  if (B == x->W)
    B += n0;
  double amax = 0, qmax = x->qmax, qlo = x->qlo;
  for (int64_t k = k0; k < k1; k++)
    for (int64_t j = 0; j < n1 - n0; j++)
      amax = fmax(amax, fabs(B[k * ks + j * js]));
  double best_s = tgc_rt_quant_scale(amax, qmax, x->scdt), best_e = INFINITY, best_r = 1;
  for (int i = 0; i < x->steps; i++) {
    double ratio = 1 - 0.05 * i, s = tgc_rt_quant_scale(amax * ratio, qmax, x->scdt), e = 0;
    for (int64_t k = k0; k < k1; k++) {
      double ek = 0;
      for (int64_t j = 0; j < n1 - n0; j++) {
        double w = B[k * ks + j * js];
        double d = tgc_rt_quant_int(w, s, 0, qlo, qmax) * s - w; /* tgc_rt_quant_store's, inline */
        ek += d * d;
      }
      e += (x->D ? x->D[k] : 1) * ek;
    }
    if (e < best_e) {
      best_e = e;
      best_s = s;
      best_r = ratio;
    }
  }
  x->s[bi] = best_s;
  x->e[bi] = best_e;
  x->r[bi] = best_r;
}

/* The scales of the [K, N] weight W stored as SDT with scales of dtype SCDT, one per block (into SCALE when not
 * NULL): amax / qmax of the block, or for int4 the clipped amax * r / qmax whose rounding error
 * sum_k D[k] (dequantized - w)^2 is least (D NULL: every row weighs 1) -- activation-aware clipping, since D[k] is
 * what row k's error is multiplied by (its activation's square). Returns the total weighted error of the choice
 * and the range of the ratios chosen in R_LO, R_HI. WT (may be NULL) is W transposed, [N, K]: read instead of W
 * where a block is one column (group-wise and per-channel scales), whose K values it holds contiguously -- the
 * int4 clipping search reads each block 12 times, and W's column is one value every N doubles. The sums are
 * taken in the same order either way, and the blocks' searches run in parallel (tgc_parallel_for), combined
 * in block order: the result does not depend on the threads. */
static double weight_scales(const qstate *q, const double *W, const double *WT, int64_t K, int64_t N,
                            const double *D, tgc_dtype sdt, tgc_dtype scdt, double *scale, double *r_lo,
                            double *r_hi) {
  scale_search x = {q, W, WT, D, K, N, blocks_of(q, K, N), scdt, tgc_rt_quant_qmax(sdt), 0, 0, NULL, NULL, NULL};
  x.qlo = -x.qmax - 1;                          /* the signed storage's least value */
  x.steps = sdt == TGC_DT_I4 ? CLIP_STEPS : 0; /* 0: amax / qmax, no search */
  uint64_t nb = (uint64_t)(x.b.rows * x.b.cols);
  x.s = tgc_xmalloc(sizeof *x.s * (nb * 3 + 1));
  x.e = x.s + nb;
  x.r = x.e + nb;
  /* the blocks are independent: searched in parallel when the search is long, combined below in block order */
  if (x.steps && (uint64_t)K * (uint64_t)N >= (1u << 16))
    tgc_parallel_for(nb, 16, search_block, &x);
  else
    for (uint64_t bi = 0; bi < nb; bi++)
      search_block(&x, bi);
  double total = 0;
  *r_lo = 1;
  *r_hi = 0;
  for (uint64_t bi = 0; bi < nb; bi++) {
    if (scale)
      scale[bi] = x.s[bi];
    total += x.steps ? x.e[bi] : 0;
    *r_lo = fmin(*r_lo, x.r[bi]);
    *r_hi = fmax(*r_hi, x.r[bi]);
  }
  free(x.s);
  return total;
}

/* Quantizes the [K, N] weight W of C (already smoothed) into new module weights and returns the dequantized value,
 * built before C's matmul. SMIN and SMAX receive the range of the scales. */
static tgc_value *quantize_weight(qstate *q, cand *c, const double *W, double *smin, double *smax) {
  tgc_module *m = q->ctx->module;
  tgc_arena *a = &m->arena;
  int64_t K = c->K, N = c->N;
  tgc_dtype sdt = q->mode == QM_INT4W ? TGC_DT_I4 : q->mode == QM_FP8 ? TGC_DT_F8E4M3 : TGC_DT_I8;
  tgc_dtype scdt = q->mode == QM_INT4W ? TGC_DT_F16 : TGC_DT_F32;
  blocking b = blocks_of(q, K, N);
  int64_t G = b.G, rows = b.rows, cols = b.cols;
  /* stored [N, K] (each output channel's K values contiguous: the layout of torch's Linear, of cuBLASLt's int8
   * and fp8 GEMMs (TN) and of a weight-streaming int4 GEMV) and read through a transpose */
  int64_t wshape[2] = {N, K}, sshape[2] = {rows, cols};
  tgc_module_weight *wq = new_weight(q, c->mm, c->wname, q->mode == QM_INT4W ? ".q4" : ".q", sdt, 2, wshape);
  tgc_module_weight *ws = q->group < 0 ? NULL : new_weight(q, c->mm, c->wname, ".scale", scdt, G ? 2 : 1, G ? sshape : &N);
  if (!wq || (q->group >= 0 && !ws))
    return NULL;
  tgc_rt_tensor tq = view_of(wq), ts = q->group >= 0 ? view_of(ws) : (tgc_rt_tensor){0};
  double *scale = tgc_xmalloc(sizeof *scale * (size_t)(rows * cols));
  double *WT = NULL;
  if (sdt == TGC_DT_I4 && q->group >= 0) { /* the clipping search's blocks are columns */
    WT = tgc_xmalloc(sizeof *WT * (size_t)(K * N));
    for (int64_t k = 0; k < K; k++)
      for (int64_t j = 0; j < N; j++)
        WT[j * K + k] = W[k * N + j];
  }
  weight_scales(q, W, WT, K, N, c->dk, sdt, scdt, scale, &c->clip_lo, &c->clip_hi);
  free(WT);
  /* each scale's block: rows [r*G, (r+1)*G) of column n (all of K per channel, everything per tensor) */
  *smin = INFINITY;
  *smax = 0;
  double err2 = 0, norm2 = 0;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t n = 0; n < cols; n++) {
      int64_t k0 = G ? r * G : 0, k1 = G ? (k0 + G < K ? k0 + G : K) : K;
      int64_t n0 = q->group < 0 ? 0 : n, n1 = q->group < 0 ? N : n + 1;
      double s = scale[r * cols + n];
      *smin = fmin(*smin, s);
      *smax = fmax(*smax, s);
      if (ws)
        tgc_rt_set(&ts, (size_t)(r * cols + n), s);
      for (int64_t k = k0; k < k1; k++)
        for (int64_t j = n0; j < n1; j++) {
          size_t e = (size_t)(k * N + j), t = (size_t)(j * K + k);
          tgc_rt_set(&tq, t, tgc_rt_quant_store(W[e], s, 0, sdt));
          double d = tgc_rt_get(&tq, t) * s - W[e];
          err2 += d * d;
          norm2 += W[e] * W[e];
        }
    }
  c->err_w = norm2 > 0 ? sqrt(err2 / norm2) : 0;
  /* right after the float weight's param, which dominates every use of it */
  tgc_builder bd = {m, c->wparam->parent, c->wparam->next, c->wparam->loc};
  tgc_value *pq = track(q, tgc_build_param(&bd, wq->name, type2(m, sdt, N, K)));
  pq->name = wq->name;
  tgc_value *pt = track(q, tgc_build_unary(&bd, TGC_OP_TRANSPOSE, pq, type2(m, sdt, K, N)));
  const tgc_attr *perm[2] = {tgc_attr_int(a, 1), tgc_attr_int(a, 0)};
  tgc_op_set_attr(m, pt->def, "perm", tgc_attr_list(a, perm, 2));
  pt->name = suffixed(m, wq->name, ".t");
  pq = pt;
  const tgc_type *wt = c->wparam->results[0].type;
  tgc_op *dq;
  if (q->group < 0) {
    dq = tgc_build(&bd, TGC_OP_DEQUANTIZE, &pq, 1, type2(m, wt->dtype, K, N));
    track(q, &dq->results[0]);
    tgc_op_set_attr(m, dq, "scale", tgc_attr_float(a, scale[0]));
  } else {
    const tgc_type *st;
    if (G) {
      st = type2(m, scdt, rows, cols);
    } else {
      const tgc_dim *d = tgc_dim_const(a, N);
      st = tgc_type_create(a, scdt, 1, &d);
    }
    tgc_value *ps = track(q, tgc_build_param(&bd, ws->name, st));
    ps->name = ws->name;
    tgc_value *ops[2] = {pq, ps};
    dq = tgc_build(&bd, TGC_OP_DEQUANTIZE, ops, 2, type2(m, wt->dtype, K, N));
    track(q, &dq->results[0]);
    tgc_op_set_attr(m, dq, "axis", tgc_attr_int(a, G ? 0 : 1));
    if (G)
      tgc_op_set_attr(m, dq, "group", tgc_attr_int(a, G));
  }
  free(scale);
  dq->results[0].name = suffixed(m, c->wname, ".dq");
  return &dq->results[0];
}

/* Inserts OP's builder position for a value: right after its definition (or, for an argument, after the weights
 * and what is computed from them alone, which lead the body). */
static tgc_builder after_def(tgc_module *m, tgc_value *v, tgc_block *body) {
  tgc_op *at = v->def ? v->def->next : body->first;
  while (!v->def && at && at->nresults && is_static(&at->results[0], 0))
    at = at->next;
  return (tgc_builder){m, v->def ? v->def->parent : body, at, v->def ? v->def->loc : body->loc};
}

/* AWQ-style factors for the int4 weights WS[0..n) of the candidates G that read one activation: s_k = chmax_k^alpha
 * (divided by the geometric mean of the largest and smallest, so that they straddle 1), with alpha among 0, 0.1,
 * ..., 1 the one whose scaled weights W_k * s_k round with the least error, row k weighing chmax_k^2 / s_k^2 (the
 * activation it is multiplied by, divided by s_k). Returns alpha (0: no scaling pays) with the factors in FAC. */
static double awq_factors(const qstate *q, cand **g, uint32_t n, double **ws, int64_t K, double *fac) {
  const double *cm = g[0]->cal.chmax;
  double *f = tgc_xmalloc(sizeof *f * (size_t)K), *d = tgc_xmalloc(sizeof *d * (size_t)K);
  double best_e = INFINITY, best_a = 0;
  /* with a scale per column block (group-wise, per channel) each weight is searched transposed, [N, K]: a
   * block's values contiguous (see weight_scales) */
  bool cols = q->group >= 0;
  double **wt = tgc_xcalloc(n + 1, sizeof *wt);
  int64_t most = 0;
  for (uint32_t i = 0; i < n; i++) {
    int64_t N = g[i]->N;
    most = K * N > most ? K * N : most;
    if (!cols)
      continue;
    wt[i] = tgc_xmalloc(sizeof **wt * (size_t)(K * N));
    for (int64_t k = 0; k < K; k++)
      for (int64_t j = 0; j < N; j++)
        wt[i][j * K + k] = ws[i][k * N + j];
  }
  double *t = tgc_xmalloc(sizeof *t * (size_t)(most ? most : 1));
  for (int ai = 0; ai <= 10; ai++) {
    double alpha = ai / 10.0, lo = INFINITY, hi = 0, e = 0, rl, rh;
    for (int64_t k = 0; k < K; k++) {
      f[k] = pow(fmax(cm[k], 1e-5), alpha);
      lo = fmin(lo, f[k]);
      hi = fmax(hi, f[k]);
    }
    for (int64_t k = 0; k < K; k++) {
      f[k] /= sqrt(lo * hi);
      d[k] = cm[k] * cm[k] / (f[k] * f[k]);
    }
    for (uint32_t i = 0; i < n && e < best_e; i++) {
      int64_t N = g[i]->N;
      if (cols) {
        for (int64_t j = 0; j < N; j++)
          for (int64_t k = 0; k < K; k++)
            t[j * K + k] = wt[i][j * K + k] * f[k];
        e += weight_scales(q, NULL, t, K, N, d, TGC_DT_I4, TGC_DT_F16, NULL, &rl, &rh);
      } else {
        for (int64_t k = 0; k < K; k++)
          for (int64_t j = 0; j < N; j++)
            t[k * N + j] = ws[i][k * N + j] * f[k];
        e += weight_scales(q, t, NULL, K, N, d, TGC_DT_I4, TGC_DT_F16, NULL, &rl, &rh);
      }
    }
    if (e < best_e) {
      best_e = e;
      best_a = alpha;
      memcpy(fac, f, sizeof *f * (size_t)K);
    }
  }
  for (uint32_t i = 0; i < n; i++)
    free(wt[i]);
  free(wt);
  free(t);
  free(f);
  free(d);
  return best_a;
}

/* The activation side of the candidates that share activation ACT (the group G[0..n)): the optional per-channel
 * factors s (SmoothQuant's, or AWQ's for int4w), folded into their weights (WS) and applied to the activation as
 * a multiply by 1/s, then (int8, fp8) one quantize/dequantize pair that replaces ACT in their matmuls. */
static int quantize_activation(qstate *q, tgc_func *f, cand **g, uint32_t n, double **ws, double *sq_lo,
                               double *sq_hi, double *act_scale) {
  tgc_module *m = q->ctx->module;
  tgc_arena *a = &m->arena;
  tgc_value *x = g[0]->act;
  const tgc_type *xt = x->type;
  const tgc_calib *cal = &g[0]->cal;
  int64_t K = g[0]->K;
  double amax = cal->amax;
  *sq_lo = *sq_hi = 1;
  tgc_builder bd = after_def(m, x, f->body);
  tgc_value *src = x;
  double *fac = NULL, alpha = -1;
  if (q->smooth) {
    /* s_k = max|X_k|^alpha / max|W_k|^(1-alpha), W_k over every weight that reads X (SmoothQuant's eq. 4) */
    fac = tgc_arena_alloc(q->ctx->scratch, sizeof *fac * (size_t)K);
    for (int64_t k = 0; k < K; k++) {
      double wmax = 0;
      for (uint32_t i = 0; i < n; i++)
        for (int64_t j = 0; j < g[i]->N; j++)
          wmax = fmax(wmax, fabs(ws[i][k * g[i]->N + j]));
      double xm = fmax(cal->chmax[k], 1e-5);
      fac[k] = pow(xm, q->alpha) / pow(fmax(wmax, 1e-5), 1 - q->alpha);
    }
  } else if (q->mode == QM_INT4W && q->awq && cal->chmax) {
    fac = tgc_arena_alloc(q->ctx->scratch, sizeof *fac * (size_t)K);
    alpha = awq_factors(q, g, n, ws, K, fac);
    if (!(alpha > 0))
      fac = NULL;
  }
  if (q->mode == QM_INT4W && cal->chmax) {
    /* the rows' weights in the clipping search: the activation's max squared, over the factor squared */
    double *dk = tgc_arena_alloc(q->ctx->scratch, sizeof *dk * (size_t)K);
    for (int64_t k = 0; k < K; k++)
      dk[k] = cal->chmax[k] * cal->chmax[k];
    for (uint32_t i = 0; i < n; i++) {
      g[i]->dk = dk;
      g[i]->awq_alpha = q->awq ? fmax(alpha, 0) : -1;
    }
  }
  if (fac) {
    tgc_module_weight *sw = new_weight(q, g[0]->mm, g[0]->wname, q->smooth ? ".smooth" : ".awq", xt->dtype, 1, &K);
    if (!sw)
      return -1;
    tgc_rt_tensor tv = view_of(sw);
    double smoothed = 0;
    *sq_lo = INFINITY;
    *sq_hi = 0;
    double *dk = q->mode == QM_INT4W ? (double *)g[0]->dk : NULL;
    for (int64_t k = 0; k < K; k++) {
      double s = fmin(fmax(fac[k], 1e-5), 1e5);
      tgc_rt_set(&tv, (size_t)k, 1.0 / s);
      s = 1.0 / tgc_rt_get(&tv, (size_t)k); /* the factor as stored, so that X/s * s*W is the product again */
      for (uint32_t i = 0; i < n; i++)
        for (int64_t j = 0; j < g[i]->N; j++)
          ws[i][k * g[i]->N + j] *= s;
      if (cal->chmax)
        smoothed = fmax(smoothed, cal->chmax[k] / s);
      if (dk)
        dk[k] /= s * s;
      *sq_lo = fmin(*sq_lo, s);
      *sq_hi = fmax(*sq_hi, s);
    }
    for (uint32_t i = 0; i < n; i++) {
      g[i]->awq_lo = *sq_lo;
      g[i]->awq_hi = *sq_hi;
    }
    /* the method's clipping carries over in proportion: amax/absmax of the unsmoothed distribution */
    if (q->smooth)
      amax = smoothed * (cal->absmax > 0 ? fmin(cal->amax / cal->absmax, 1.0) : 1.0); /* absmax may be NaN */
    const tgc_dim *kd = tgc_dim_const(a, K);
    tgc_value *p = track(q, tgc_build_param(&bd, sw->name, tgc_type_create(a, xt->dtype, 1, &kd)));
    p->name = sw->name;
    src = track(q, tgc_build_binary(&bd, TGC_OP_MUL, x, p, xt));
    src->name = suffixed(m, x->name, q->smooth ? ".smoothed" : ".awq");
  }
  if (q->mode == QM_INT4W) {
    /* weight-only: the activation stays float, but AWQ's multiply replaces it */
    if (src != x)
      for (uint32_t i = 0; i < n; i++)
        tgc_op_set_operand(g[i]->mm, 0, src);
    return 0;
  }
  tgc_dtype sdt = q->mode == QM_FP8 ? TGC_DT_F8E4M3 : TGC_DT_I8;
  double s = tgc_rt_quant_scale(amax, tgc_rt_quant_qmax(sdt), TGC_DT_F32);
  *act_scale = s;
  /* rounding noise against a signal spread over [-amax, amax]: s / (2 amax) for integers; fp8's 3-bit mantissa
   * rounds each value by 2^-4 / sqrt(3) relative (RMS) */
  for (uint32_t i = 0; i < n; i++)
    g[i]->err_a = sdt == TGC_DT_I8 ? s / (2 * amax) : 0.036;
  tgc_value *qv = track(q, tgc_build_unary(&bd, TGC_OP_QUANTIZE, src, tgc_type_create(a, sdt, xt->rank, xt->dims)));
  tgc_op_set_attr(m, qv->def, "scale", tgc_attr_float(a, s));
  qv->name = suffixed(m, x->name, ".q");
  tgc_value *dv = track(q, tgc_build_unary(&bd, TGC_OP_DEQUANTIZE, qv, xt));
  dv->name = suffixed(m, x->name, ".dq");
  tgc_op_set_attr(m, dv->def, "scale", tgc_attr_float(a, s));
  for (uint32_t i = 0; i < n; i++)
    tgc_op_set_operand(g[i]->mm, 0, dv);
  return 0;
}

/* Rewrites the candidates not kept in float; WS[i] is candidate i's weight (in list order). */
static int rewrite(qstate *q, tgc_func *f, double **ws) {
  cand **all = tgc_arena_alloc(q->ctx->scratch, sizeof *all * (q->ncands + 1));
  uint32_t n = 0;
  for (cand *c = q->cands; c; c = c->next) {
    c->choice = (tgc_quant_choice){.mm = c->mm};
    c->choice.float_ops[0] = c->mm->operands[0].value;
    c->choice.float_ops[1] = c->mm->operands[1].value;
    all[n++] = c;
  }
  bool *done = tgc_arena_alloc(q->ctx->scratch, n + 1);
  cand **grp = tgc_arena_alloc(q->ctx->scratch, sizeof *grp * (n + 1));
  double **gw = tgc_arena_alloc(q->ctx->scratch, sizeof *gw * (n + 1));
  for (uint32_t i = 0; i < n; i++) {
    if (done[i])
      continue;
    uint32_t gn = 0;
    for (uint32_t j = i; j < n; j++)
      if (!done[j] && all[j]->act == all[i]->act && all[j]->K == all[i]->K) {
        done[j] = true;
        grp[gn] = all[j];
        gw[gn++] = ws[j];
      }
    double lo = 1, hi = 1, as = 0;
    if (quantize_activation(q, f, grp, gn, gw, &lo, &hi, &as))
      return -1;
    for (uint32_t k = 0; k < gn; k++) {
      cand *c = grp[k];
      double smin = 0, smax = 0;
      /* a weight read by several matmuls is quantized once (but once per activation under SmoothQuant, which
       * scales it by that activation's factors) */
      const char *key = c->wname;
      bool scaled = q->smooth || c->awq_alpha > 0; /* scaled by its activation's factors: not shared */
      tgc_value *wd = scaled ? NULL : tgc_strmap_get(&q->quantized, key, strlen(key));
      if (wd) {
        for (cand *o = q->cands; o; o = o->next) /* the weight's error is the first quantization's */
          if (o != c && o->choice.quant_ops[1] == wd)
            c->err_w = o->err_w;
      } else {
        wd = quantize_weight(q, c, gw[k], &smin, &smax);
        if (!wd)
          return -1;
        if (!scaled)
          tgc_strmap_put(&q->quantized, key, strlen(key), wd);
      }
      tgc_op_set_operand(c->mm, 1, wd);
      c->choice.quant_ops[0] = c->mm->operands[0].value;
      c->choice.quant_ops[1] = wd;
      char sq[192] = "", act[256] = "", sc[96] = "";
      if (q->smooth)
        snprintf(sq, sizeof sq, "; SmoothQuant alpha %g, factors %.3g..%.3g", q->alpha, lo, hi);
      if (q->mode == QM_INT4W) {
        char aw[96] = "";
        if (c->awq_alpha > 0)
          snprintf(aw, sizeof aw, "; activation-aware (AWQ) alpha %g, factors %.3g..%.3g", c->awq_alpha, c->awq_lo,
                   c->awq_hi);
        else if (c->awq_alpha == 0)
          snprintf(aw, sizeof aw, "; activation-aware (AWQ): no scaling pays (alpha 0)");
        snprintf(sq, sizeof sq, "; scales clipped to %.2f..%.2f of the block max (%s)%s", c->clip_lo, c->clip_hi,
                 c->dk ? "rounding error weighted by calib.chmax^2" : "no calib.chmax: unweighted", aw);
      }
      if (q->mode != QM_INT4W) {
        char clip[64] = "";
        if (isfinite(c->cal.clip)) /* statistics not recorded read as NaN */
          snprintf(clip, sizeof clip, " (clips %.3g%% of calibration values)", 100 * c->cal.clip);
        snprintf(act, sizeof act, "; activation '%s' amax %.4g of %.4g observed%s, scale %.4g", value_label(c->act),
                 c->cal.amax, c->cal.absmax, clip, as);
      }
      if (smax > 0)
        snprintf(sc, sizeof sc, ", %s scales %.4g..%.4g",
                 q->group < 0 ? "per-tensor" : q->group == 0 ? "per-channel" : "group-wise", smin, smax);
      char note[1024];
      snprintf(note, sizeof note, "weight '%s' [%lld, %lld]%s (relative error %.3g)%s%s", c->wname, (long long)c->K,
               (long long)c->N, sc, c->err_w, act, sq);
      c->note = tgc_arena_strndup(q->ctx->scratch, note, strlen(note));
    }
  }
  return 0;
}

static tgc_op *ch_def(tgc_value *v) { return v ? v->def : NULL; }

/* The choice made (accuracy=cos:X, else every candidate quantized): each matmul reads its float or its quantized
 * operands, remarks say which and why, and what the float choices left dead is erased. Returns the sum of the
 * relative errors of the quantized matmuls' weights and activations. */
static double settle(qstate *q, const cand *cands, uint32_t n) {
  double err = 0;
  uint32_t kept = 0;
  for (const cand *c = cands; c; c = c->next)
    kept += c->choice.keep;
  for (const cand *c = cands; c; c = c->next) {
    const tgc_quant_choice *ch = &c->choice;
    tgc_value *const *ops = ch->keep ? ch->float_ops : ch->quant_ops;
    tgc_op_set_operand(c->mm, 0, ops[0]);
    tgc_op_set_operand(c->mm, 1, ops[1]);
    char sens[96] = "";
    if (ch->measured)
      snprintf(sens, sizeof sens, "; alone it lowers the output cosine by %.3g", ch->sensitivity);
    if (ch->keep) {
      tgc_pass_remark(q->ctx, false, c->mm, "kept in float by accuracy: the most sensitive %u of %u matmuls stay float%s", kept, n,
             sens);
    } else {
      err += c->err_w + c->err_a;
      tgc_pass_remark(q->ctx, false, c->mm, "quantized %s: %s%s", mode_names[q->mode], c->note, sens);
    }
  }
  /* the ops the float choices no longer read, latest first so that their operands die after them */
  for (bool again = true; again;) {
    again = false;
    for (uint32_t i = q->ncreated; i-- > 0;)
      if (q->created[i]->parent && tgc_pass_erase_if_dead(q->created[i]))
        again = true;
    for (const cand *c = cands; c; c = c->next) {
      tgc_op *fb = ch_def(c->choice.float_ops[1]);
      if (fb && fb->parent && fb->opcode == TGC_OP_TRANSPOSE && tgc_pass_erase_if_dead(fb))
        again = true;
      if (c->wparam->parent && tgc_pass_erase_if_dead(c->wparam))
        again = true;
    }
  }
  return err;
}

static int parse_options(qstate *q) {
  tgc_pass_ctx *ctx = q->ctx;
  tgc_loc none = {NULL, 0, 0};
  const char *mode = tgc_pass_opt_str(ctx, "mode");
  if (!mode) {
    tgc_error(ctx->diag, none, "quantize: option 'mode' is required (int8, fp8 or int4w)");
    return 1;
  }
  for (q->mode = QM_INT8; q->mode <= QM_INT4W && strcmp(mode, mode_names[q->mode]) != 0; q->mode++)
    ;
  if (q->mode > QM_INT4W) {
    tgc_error(ctx->diag, none, "quantize: mode '%s' is not int8, fp8 or int4w", mode);
    return 1;
  }
  const char *gran = tgc_pass_opt_str(ctx, "granularity");
  q->group = q->mode == QM_INT4W ? 128 : 0;
  if (gran && strcmp(gran, "tensor") == 0) {
    q->group = -1;
  } else if (gran && strcmp(gran, "channel") == 0) {
    q->group = 0;
  } else if (gran) {
    char *end = NULL;
    long long g = strncmp(gran, "group:", 6) == 0 ? strtoll(gran + 6, &end, 10) : 0;
    if (!end || *end || end == gran + 6 || g < 1) {
      tgc_error(ctx->diag, none, "quantize: granularity '%s' is not tensor, channel or group:N with N >= 1", gran);
      return 1;
    }
    q->group = g;
  }
  const char *skip = tgc_pass_opt_str(ctx, "skip");
  if (skip) {
    int rc = regcomp(&q->skip, skip, REG_EXTENDED | REG_NOSUB);
    if (rc) {
      char why[256];
      regerror(rc, &q->skip, why, sizeof why);
      tgc_error(ctx->diag, none, "quantize: skip='%s' is not a POSIX extended regex: %s", skip, why);
      return 1;
    }
    q->has_skip = true;
    q->skip_text = skip;
  }
  bool bad = false;
  q->alpha = tgc_pass_opt_float(ctx, "smoothquant", -1, &bad);
  if (bad)
    return 1;
  if (tgc_pass_opt_str(ctx, "smoothquant")) {
    if (!(q->alpha >= 0 && q->alpha <= 1)) {
      tgc_error(ctx->diag, none, "quantize: smoothquant=%g is not a migration strength from 0 to 1", q->alpha);
      return 1;
    }
    if (q->mode == QM_INT4W) {
      tgc_error(ctx->diag, none, "quantize: smoothquant needs quantized activations (mode int8 or fp8, not int4w)");
      return 1;
    }
    q->smooth = true;
  }
  q->awq = tgc_pass_opt_bool(ctx, "awq", q->mode == QM_INT4W, &bad);
  if (bad)
    return 1;
  if (q->awq && q->mode != QM_INT4W) {
    tgc_error(ctx->diag, none, "quantize: awq scales int4 weights against float activations (mode int4w, not %s)",
              mode_names[q->mode]);
    return 1;
  }
  return 0;
}

int tgc_pass_quantize(tgc_pass_ctx *ctx) {
  qstate q = {.ctx = ctx};
  if (parse_options(&q))
    return 1;
  tgc_loc none = {NULL, 0, 0};
  double min_cos = 0;
  const char *acc = tgc_pass_opt_str(ctx, "accuracy");
  if (acc) {
    char *end = NULL;
    min_cos = strncmp(acc, "cos:", 4) == 0 ? strtod(acc + 4, &end) : -2;
    if (!end || *end || end == acc + 4 || !(min_cos > -1 && min_cos <= 1)) {
      tgc_error(ctx->diag, none, "quantize: accuracy='%s' is not cos:X with X a cosine in (-1, 1]", acc);
      if (q.has_skip)
        regfree(&q.skip);
      return 1;
    }
  }
  int rc = 0;
  tgc_rt_err err;
  if (tgc_module_weights_open(ctx->module, ctx->weights_path, &q.w, &err)) {
    tgc_error(ctx->diag, none, "quantize needs the weights' values: %s", err.msg);
    rc = 1;
  }
  double expected_err = 0;
  for (tgc_func *f = ctx->module->funcs; f && rc == 0; f = f->next) {
    q.cands = q.last = NULL;
    q.ncands = 0;
    q.ncreated = 0;
    if (find_candidates(&q, f)) {
      rc = 1;
      break;
    }
    if (!q.ncands)
      continue;
    tgc_strmap_init(&q.quantized, ctx->scratch);
    double **ws = tgc_xcalloc(q.ncands, sizeof *ws);
    uint32_t i = 0;
    for (cand *c = q.cands; c && rc == 0; c = c->next, i++)
      rc = load_weight(&q, c, &ws[i]);
    if (rc == 0)
      rc = rewrite(&q, f, ws);
    for (i = 0; i < q.ncands; i++)
      free(ws[i]);
    free(ws);
    tgc_strmap_free(&q.quantized);
    if (rc == 0 && acc) {
      tgc_quant_choice **ch = tgc_arena_alloc(ctx->scratch, sizeof *ch * q.ncands);
      i = 0;
      for (cand *c = q.cands; c; c = c->next)
        ch[i++] = &c->choice;
      rc = tgc_quant_select_by_accuracy(ctx, f, ch, q.ncands, min_cos);
    }
    if (rc == 0)
      expected_err += settle(&q, q.cands, q.ncands);
    ctx->changed = true;
  }
  /* The error --verify-each=numerics allows this pass: twice the first-order sum of the relative errors it made
   * (each quantized weight's, exactly; each activation's rounding noise), at least 1% (docs/quantization.md). */
  ctx->numerics_tol = fmax(0.01, 2 * expected_err);
  tgc_rt_weights_release(q.w);
  if (q.has_skip)
    regfree(&q.skip);
  return rc;
}

/* quantize{accuracy=cos:X}: which matmuls stay float. Every candidate is quantized when this runs; the function is
 * run on the CPU backend over the first samples of the calibration data (the module's calib.data directory, as
 * `tgc calibrate --data` recorded it): once in float (the reference), once per matmul with that matmul alone
 * quantized (its sensitivity: 1 - the mean output cosine against float), then with the K most sensitive matmuls
 * back in float, K the fewest that reach a mean cosine of X (found by bisection: the cosine grows, near enough,
 * with every matmul put back). The mean cosine is over
 * samples (dim 0 of each float output) and outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"
#include "quantize.h"
#include "session.h"

/* Samples of the calibration data the search runs on: enough to rank the matmuls, few enough to stay quick. */
enum { ACC_MAX_SAMPLES = 32 };

typedef struct {
  tgc_pass_ctx *ctx;
  tgc_func *f;
  tgc_rt_weights *w;
  tgc_rt_tensor *inputs;
  uint32_t ninputs, nsamples;
  tgc_rt_tensor *ref; /* the float outputs */
  uint32_t nref;
  uint32_t runs;
} acc_state;

static tgc_loc noloc(void) { return (tgc_loc){NULL, 0, 0}; }

/* The first N samples (dim 0) of the .npy file PATH, owned by *OUT. */
static int read_samples(acc_state *s, const char *path, uint32_t *n, tgc_rt_tensor *out) {
  tgc_rt_err err;
  tgc_rt_tensor t;
  if (tgc_rt_npy_read(path, &t, &err)) {
    tgc_error(s->ctx->diag, noloc(), "quantize{accuracy}: %s", err.msg);
    return -1;
  }
  if (t.rank == 0 || t.shape[0] < 1) {
    tgc_error(s->ctx->diag, noloc(), "quantize{accuracy}: %s holds no samples (dim 0 stacks them)", path);
    tgc_rt_tensor_free(&t);
    return -1;
  }
  uint32_t take = t.shape[0] < (int64_t)*n ? (uint32_t)t.shape[0] : *n;
  *n = take;
  int64_t shape[TGC_RT_MAX_RANK];
  memcpy(shape, t.shape, sizeof shape);
  shape[0] = take;
  int rc = tgc_rt_tensor_alloc(out, t.dtype, t.rank, shape, &err);
  if (rc == 0) {
    size_t per = 1;
    for (uint32_t d = 1; d < t.rank; d++)
      per *= (size_t)t.shape[d];
    memcpy(out->data, t.data, per * take * tgc_rt_dtype_size(t.dtype));
  } else {
    tgc_error(s->ctx->diag, noloc(), "quantize{accuracy}: %s", err.msg);
  }
  tgc_rt_tensor_free(&t);
  return rc;
}

static int load_data(acc_state *s) {
  tgc_module *m = s->ctx->module;
  const tgc_attr *d = tgc_attrs_get(&m->attrs, "calib.data");
  if (!d || d->kind != TGC_ATTR_STR) {
    tgc_error(s->ctx->diag, noloc(),
              "quantize{accuracy}: the module names no calibration data (calib.data): the search re-runs it, so "
              "calibrate with 'tgc calibrate --data DIR'");
    return -1;
  }
  tgc_block *body = s->f->body;
  s->ninputs = body->nargs;
  s->inputs = tgc_xcalloc(body->nargs + 1, sizeof *s->inputs);
  s->nsamples = ACC_MAX_SAMPLES;
  for (uint32_t pass = 0; pass < 2; pass++) /* twice: the second time with the smallest count of any file */
    for (uint32_t i = 0; i < body->nargs; i++) {
      tgc_rt_tensor_free(&s->inputs[i]);
      char path[4096];
      snprintf(path, sizeof path, "%s/%s.npy", d->u.s, body->args[i]->name ? body->args[i]->name : "");
      uint32_t n = s->nsamples;
      if (read_samples(s, path, &n, &s->inputs[i]))
        return -1;
      s->nsamples = n;
    }
  return 0;
}

/* Runs the function as its matmuls now read; OUT receives owned outputs. */
static int run(acc_state *s, tgc_rt_tensor **out) {
  tgc_arena a;
  tgc_arena_init(&a);
  const tgc_rt_plan *p = tgc_lower_func_into(&a, s->ctx->module, s->f);
  *out = tgc_xcalloc(p->noutputs + 1, sizeof **out);
  s->nref = p->noutputs;
  tgc_rt_cpu_opts co = {s->w, s->ctx->weights_path, NULL};
  tgc_rt_err err;
  int rc = tgc_rt_cpu_run(p, s->inputs, *out, &co, &err);
  if (rc)
    tgc_error(s->ctx->diag, noloc(), "quantize{accuracy}: running the calibration data failed: %s", err.msg);
  tgc_arena_free(&a);
  s->runs++;
  return rc;
}

static void free_outs(tgc_rt_tensor *t, uint32_t n) {
  for (uint32_t i = 0; t && i < n; i++)
    tgc_rt_tensor_free(&t[i]);
  free(t);
}

/* The mean cosine of OUT against the float outputs: per sample (dim 0) when dim 0 is the samples, else whole. */
static double cosine(const acc_state *s, const tgc_rt_tensor *out) {
  double total = 0;
  uint32_t count = 0;
  for (uint32_t o = 0; o < s->nref; o++) {
    const tgc_rt_tensor *r = &s->ref[o], *q = &out[o];
    if (tgc_dtype_kind_of(r->dtype) != TGC_DTK_FLOAT)
      continue;
    size_t n;
    tgc_rt_numel(r->rank, r->shape, &n);
    size_t rows = r->rank > 0 && r->shape[0] == (int64_t)s->nsamples ? s->nsamples : 1, per = rows ? n / rows : 0;
    for (size_t i = 0; i < rows; i++) {
      double dot = 0, nr = 0, nq = 0;
      for (size_t e = i * per; e < (i + 1) * per; e++) {
        double x = tgc_rt_get(r, e), y = tgc_rt_get(q, e);
        dot += x * y;
        nr += x * x;
        nq += y * y;
      }
      total += nr > 0 && nq > 0 ? dot / sqrt(nr * nq) : (nr == nq ? 1 : 0);
      count++;
    }
  }
  return count ? total / count : 1;
}

static void set(tgc_quant_choice *c, bool keep) {
  c->keep = keep;
  tgc_value *const *ops = keep ? c->float_ops : c->quant_ops;
  tgc_op_set_operand(c->mm, 0, ops[0]);
  tgc_op_set_operand(c->mm, 1, ops[1]);
}

static int by_sensitivity(const void *a, const void *b) {
  double x = (*(tgc_quant_choice *const *)a)->sensitivity, y = (*(tgc_quant_choice *const *)b)->sensitivity;
  return x < y ? 1 : x > y ? -1 : 0;
}

int tgc_quant_select_by_accuracy(tgc_pass_ctx *ctx, tgc_func *f, tgc_quant_choice **ch, uint32_t n, double min_cos) {
  acc_state s = {.ctx = ctx, .f = f};
  tgc_rt_err err;
  int rc = load_data(&s);
  if (rc == 0 && (rc = tgc_module_weights_open(ctx->module, ctx->weights_path, &s.w, &err)) != 0)
    tgc_error(ctx->diag, noloc(), "quantize{accuracy}: %s", err.msg);
  for (uint32_t i = 0; i < n; i++)
    set(ch[i], true);
  if (rc == 0)
    rc = run(&s, &s.ref);
  double cos = 1;
  for (uint32_t i = 0; i < n && rc == 0; i++) { /* each matmul alone quantized */
    tgc_rt_tensor *out;
    set(ch[i], false);
    rc = run(&s, &out);
    if (rc == 0) {
      ch[i]->sensitivity = 1 - cosine(&s, out);
      ch[i]->measured = true;
    }
    free_outs(out, s.nref);
    set(ch[i], true);
  }
  tgc_quant_choice **order = tgc_xcalloc(n + 1, sizeof *order);
  memcpy(order, ch, sizeof *order * n);
  qsort(order, n, sizeof *order, by_sensitivity);
  /* the fewest of the most sensitive to keep in float: the output cosine grows (near enough) with every matmul
   * put back, so bisect on their count K; K = N (all float) meets any X */
  uint32_t lo = 0, hi = n;
  double cos_hi = 1;
  while (rc == 0 && lo < hi) {
    uint32_t k = lo + (hi - lo) / 2;
    for (uint32_t i = 0; i < n; i++)
      set(order[i], i < k);
    tgc_rt_tensor *out;
    rc = run(&s, &out);
    double c = rc == 0 ? cosine(&s, out) : 0;
    free_outs(out, s.nref);
    if (c >= min_cos) {
      hi = k;
      cos_hi = c;
    } else {
      lo = k + 1;
    }
  }
  for (uint32_t i = 0; i < n; i++)
    set(order[i], i < hi);
  cos = cos_hi;
  if (rc == 0 && ctx->remark_pass) {
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++)
      kept += ch[i]->keep;
    tgc_diag_report(ctx->diag, TGC_DIAG_REMARK, f->loc,
                    "accuracy: %u of %u matmuls quantized, output cosine %.5f against float on %u calibration "
                    "samples (asked: %g; %u runs) [-Rpass=quantize]",
                    n - kept, n, cos, s.nsamples, min_cos, s.runs);
  }
  free(order);
  free_outs(s.ref, s.nref);
  for (uint32_t i = 0; i < s.ninputs; i++)
    tgc_rt_tensor_free(&s.inputs[i]);
  free(s.inputs);
  tgc_rt_weights_release(s.w);
  return rc;
}

/* Sessions (runtime/session.h), their common part and the CPU backend. The common part owns what every device
 * does the same way: the inputs set, the symbols bound from their shapes, the plan's sizes and every param's
 * weight checked before anything runs (the CPU backend's own checks and messages, so that both devices report
 * a bad input or weight alike), and the host outputs. The CPU backend runs the program's plan with
 * tgc_rt_cpu_run; the CUDA backend is in session_cuda.c. */
#include <stdlib.h>
#include <string.h>

#include "session_internal.h"

/* ---- the params of a plan --------------------------------------------------------------------- */

static bool poly_has_syms(const tgc_rt_poly *p) {
  for (uint32_t t = 0; t < p->nterms; t++)
    if (p->terms[t].nsyms)
      return true;
  return false;
}

static bool type_has_syms(const tgc_rt_type *t) {
  for (uint32_t d = 0; d < t->rank; d++)
    if (poly_has_syms(&t->dims[d]))
      return true;
  return false;
}

/* Checks the weight of every param step of P (fusion regions included) with tgc_rt_param_weight at SYMS: those
 * whose declared shape has symbols when SYMBOLIC, the others when not. */
static int check_params(const tgc_rt_plan *p, const int64_t *syms, const tgc_rt_cpu_opts *o, bool symbolic,
                        tgc_rt_err *err) {
  for (uint32_t k = 0; k < p->nsteps; k++) {
    const tgc_rt_step *st = &p->steps[k];
    if (st->region && check_params(st->region, syms, o, symbolic, err))
      return -1;
    if (st->op != TGC_OP_PARAM || st->nout != 1 || type_has_syms(&st->out_types[0]) != symbolic)
      continue;
    tgc_rt_tensor w;
    if (tgc_rt_param_weight(st, syms, o, &w, err))
      return -1;
  }
  return 0;
}

/* ---- the common part ---------------------------------------------------------------------------- */

static void reset_outputs(tgc_rt_session *s) {
  for (uint32_t i = 0; i < s->p->plan->noutputs; i++)
    tgc_rt_tensor_free(&s->out[i]);
  s->ran = false;
}

static const tgc_rt_backend cpu_backend;

int tgc_rt_session_create(const tgc_rt_program *p, const tgc_rt_session_opts *o, tgc_rt_session **out,
                          tgc_rt_err *err) {
  *out = NULL;
  tgc_rt_device dev = o ? o->device : TGC_RT_DEVICE_CPU;
  if (!p || !p->plan)
    return tgc_rt_errorf(err, "error: a session needs a program");
  if (tgc_rt_plan_check(p->plan, err))
    return -1;
  if (dev == TGC_RT_DEVICE_CUDA && !p->has_cuda) {
    const char *why = p->cuda_why ? p->cuda_why : "it has no CUDA program";
    if (p->cuda_why_loc && p->cuda_why_loc[0])
      return tgc_rt_errorf(err, "%s: error: the CUDA backend cannot run this %s: %s", p->cuda_why_loc,
                           p->cuda_why_op && p->cuda_why_op[0] ? p->cuda_why_op : "op", why);
    return tgc_rt_errorf(err, "error: the CUDA backend cannot run '@%s': %s", p->plan->name, why);
  }
  tgc_rt_session *s = tgc_xcalloc(1, sizeof *s);
  const tgc_rt_plan *pl = p->plan;
  s->p = p;
  s->device = dev;
  s->be = dev == TGC_RT_DEVICE_CUDA ? &tgc_rt_cuda_backend : &cpu_backend;
  s->in = tgc_xcalloc(pl->ninputs + 1, sizeof *s->in);
  s->in_dev = tgc_xcalloc(pl->ninputs + 1, sizeof *s->in_dev);
  s->syms = tgc_xcalloc(pl->nsyms + 1, sizeof *s->syms);
  s->out = tgc_xcalloc(pl->noutputs + 1, sizeof *s->out);
  if (s->be->create && s->be->create(s, o, err)) {
    tgc_rt_session_destroy(s);
    return -1;
  }
  *out = s;
  return 0;
}

void tgc_rt_session_destroy(tgc_rt_session *s) {
  if (!s)
    return;
  reset_outputs(s);
  if (s->be->destroy)
    s->be->destroy(s);
  tgc_rt_weights_release(s->w);
  free(s->in);
  free(s->in_dev);
  free(s->syms);
  free(s->out);
  free(s);
}

tgc_rt_device tgc_rt_session_device(const tgc_rt_session *s) { return s->device; }

int tgc_rt_session_bind_weights(tgc_rt_session *s, tgc_rt_weights *w, tgc_rt_err *err) {
  if (!w)
    return tgc_rt_errorf(err, "error: no weights to bind");
  tgc_rt_cpu_opts o = {w, NULL, NULL};
  /* the params whose shape has no symbols now; the others at every run (tgc_rt_session_run) */
  if (check_params(s->p->plan, s->syms, &o, false, err))
    return -1;
  tgc_rt_weights_release(s->w);
  s->w = tgc_rt_weights_retain(w);
  if (s->be->bind && s->be->bind(s, err)) { /* a device error midway: no set is bound whole */
    tgc_rt_weights_release(s->w);
    s->w = NULL;
    return -1;
  }
  return 0;
}

int tgc_rt_session_set_input(tgc_rt_session *s, uint32_t i, const tgc_rt_tensor *t, bool on_device,
                             tgc_rt_err *err) {
  const tgc_rt_plan *pl = s->p->plan;
  if (i >= pl->ninputs)
    return tgc_rt_errorf(err, "error: '@%s' has %u inputs, no input %u", pl->name, pl->ninputs, i);
  if (on_device && s->device != TGC_RT_DEVICE_CUDA)
    return tgc_rt_errorf(err, "error: input '%%%s' is in GPU memory, but the session runs on the CPU",
                         pl->input_names[i]);
  if (t->rank > TGC_RT_MAX_RANK)
    return tgc_rt_errorf(err, "error: input '%%%s' has rank %u, more than %d", pl->input_names[i], t->rank,
                         TGC_RT_MAX_RANK);
  size_t n;
  if (!tgc_rt_numel(t->rank, t->shape, &n) || (n && !t->data))
    return tgc_rt_errorf(err, "error: input '%%%s' has an invalid shape or no data", pl->input_names[i]);
  s->in[i] = *t;
  s->in[i].owned = false;
  if (!s->in[i].data) /* an empty tensor may have no data; it is set all the same (never read or freed) */
    s->in[i].data = s->in;
  s->in_dev[i] = on_device;
  return 0;
}

int tgc_rt_session_run(tgc_rt_session *s, tgc_rt_err *err) {
  const tgc_rt_plan *pl = s->p->plan;
  reset_outputs(s);
  for (uint32_t i = 0; i < pl->ninputs; i++)
    if (!s->in[i].data)
      return tgc_rt_errorf(err, "error: no value for input '%%%s' of '@%s'", pl->input_names[i], pl->name);
  /* the sizes at these inputs, checked before anything runs: the CPU backend's rules and located errors */
  if (tgc_rt_bind_symbols(pl, s->in, s->syms, err) || tgc_rt_plan_check_sizes(pl, s->syms, err))
    return -1;
  tgc_rt_cpu_opts o = {s->w, NULL, NULL};
  if (!s->w && check_params(pl, s->syms, &o, false, err)) /* none bound: the first param says so */
    return -1;
  if (check_params(pl, s->syms, &o, true, err))
    return -1;
  if (s->be->run(s, err))
    return -1;
  s->ran = true;
  return 0;
}

static int check_output(const tgc_rt_session *s, uint32_t i, tgc_rt_err *err) {
  const tgc_rt_plan *pl = s->p->plan;
  if (i >= pl->noutputs)
    return tgc_rt_errorf(err, "error: '@%s' has %u results, no output %u", pl->name, pl->noutputs, i);
  if (!s->ran)
    return tgc_rt_errorf(err, "error: output %u of '@%s' is asked for before a run succeeded", i, pl->name);
  return 0;
}

int tgc_rt_session_output(tgc_rt_session *s, uint32_t i, const tgc_rt_tensor **t, tgc_rt_err *err) {
  *t = NULL;
  if (check_output(s, i, err))
    return -1;
  if (!s->out[i].data && s->be->fetch(s, i, err))
    return -1;
  *t = &s->out[i];
  return 0;
}

int tgc_rt_session_output_shape(const tgc_rt_session *s, uint32_t i, int64_t *shape, tgc_rt_err *err) {
  const tgc_rt_type *t = &s->p->plan->output_types[i];
  if (!t->known)
    return tgc_rt_errorf(err, "error: output %u of '@%s' has no declared type", i, s->p->plan->name);
  for (uint32_t d = 0; d < t->rank; d++)
    if (!tgc_rt_poly_eval(&t->dims[d], s->syms, &shape[d]) || shape[d] < 0)
      return tgc_rt_errorf(err, "error: dim %u of output %u is not a valid size", d, i);
  return 0;
}

int tgc_rt_session_copy_output(tgc_rt_session *s, uint32_t i, void *dst, size_t bytes, bool on_device,
                               tgc_rt_err *err) {
  if (check_output(s, i, err))
    return -1;
  if (on_device && !s->be->copy_to_device)
    return tgc_rt_errorf(err, "error: output %u cannot be copied to GPU memory: the session runs on the CPU", i);
  const tgc_rt_tensor *h = NULL;
  size_t want;
  if (s->out[i].data || !on_device) { /* the host copy: its size is the output's */
    if (tgc_rt_session_output(s, i, &h, err))
      return -1;
    want = tgc_rt_tensor_nbytes(h);
  } else {
    int64_t shape[TGC_RT_MAX_RANK];
    const tgc_rt_type *t = &s->p->plan->output_types[i];
    size_t n = 0;
    if (tgc_rt_session_output_shape(s, i, shape, err))
      return -1;
    if (!tgc_rt_numel(t->rank, shape, &n))
      return tgc_rt_errorf(err, "error: output %u has too many elements", i);
    want = n * tgc_rt_dtype_size(t->dtype);
  }
  if (want != bytes)
    return tgc_rt_errorf(err, "error: output %u is %zu bytes, not %zu", i, want, bytes);
  if (on_device)
    return s->be->copy_to_device(s, i, dst, bytes, err);
  if (bytes)
    memcpy(dst, h->data, bytes);
  return 0;
}

void tgc_rt_session_stats_get(const tgc_rt_session *s, tgc_rt_session_stats *st) {
  memset(st, 0, sizeof *st);
  st->nsteps = s->p->plan->nsteps;
  st->device_name = "the CPU";
  st->arch = "cpu";
  st->plan_from = "";
  st->notes = "";
  if (s->be->stats)
    s->be->stats(s, st);
}

int tgc_rt_session_time_replays(tgc_rt_session *s, int n, float *ms, tgc_rt_err *err) {
  if (!s->be->time_replays)
    return tgc_rt_errorf(err, "error: timing graph replays needs a CUDA session");
  if (!s->ran)
    return tgc_rt_errorf(err, "error: timing graph replays needs a run first");
  return s->be->time_replays(s, n, ms, err);
}

int tgc_rt_session_profile(tgc_rt_session *s, float *ms, int64_t *gemm_mnkb, unsigned *grid, tgc_rt_err *err) {
  if (!s->be->profile)
    return tgc_rt_errorf(err, "error: a per-step profile needs a CUDA session");
  if (!s->ran)
    return tgc_rt_errorf(err, "error: a per-step profile needs a run first");
  return s->be->profile(s, ms, gemm_mnkb, grid, err);
}

/* ---- the CPU backend: the plan, through the reference interpreter ------------------------------- */

static int cpu_run(tgc_rt_session *s, tgc_rt_err *err) {
  tgc_rt_cpu_opts o = {s->w, NULL, NULL};
  return tgc_rt_cpu_run(s->p->plan, s->in, s->out, &o, err);
}

static int cpu_fetch(tgc_rt_session *s, uint32_t i, tgc_rt_err *err) {
  (void)s; /* tgc_rt_cpu_run made every output, each with data (never NULL, even when empty) */
  return tgc_rt_errorf(err, "error: internal: output %u of a CPU run is missing", i);
}

static const tgc_rt_backend cpu_backend = {NULL, NULL, NULL, cpu_run, cpu_fetch, NULL, NULL, NULL, NULL};

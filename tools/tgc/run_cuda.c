/* `tgc run --device=cuda`: the driver's side of a CUDA session (runtime/session_cuda.c does the work). A .tir
 * module is optimized (-O2) and built into a program (codegen/program_build.h); a model.tgc's program is run as
 * loaded. The first run is queued step by step; --repeat times replays of the CUDA graph captured from the same
 * steps, --profile times every step once; this file prints what the session reports. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../codegen/cuda_codegen.h"
#include "../../codegen/program_build.h"
#include "../../passes/pass_manager.h"
#include "../../runtime/cuda_driver.h"
#include "../../runtime/session.h"
#include "driver.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int tgc_driver_cuda_generate(struct tgc_module *m, const char *entry, struct tgc_diag *diag,
                             struct tgc_cuda_module *cm) {
  const tgc_op *untyped = tgc_cuda_first_untyped(m, entry);
  if (untyped) {
    tgc_note(diag, untyped->loc, "the CUDA backend needs every value's type: running shape-infer first (add it to "
             "the pipeline, e.g. -O1 or --passes=shape-infer, to make this explicit)");
    tgc_pipeline *pl = tgc_pipeline_parse("shape-infer", diag);
    tgc_pm_options o;
    memset(&o, 0, sizeof o);
    o.dump = stderr;
    int rc = pl ? tgc_pipeline_run(pl, m, diag, &o) : 1;
    tgc_pipeline_destroy(pl);
    if (rc)
      return 1;
  }
  tgc_cuda_generate(m, entry, cm);
  return 0;
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x < y ? -1 : x > y;
}

/* The line of a "file:line:col" location (0 when there is none). */
static unsigned loc_line(const char *loc) {
  const char *c = loc ? strrchr(loc, ':') : NULL;
  if (!c || c == loc)
    return 0;
  const char *l = c - 1;
  while (l > loc && *l != ':')
    l--;
  return *l == ':' ? (unsigned)strtoul(l + 1, NULL, 10) : 0;
}

/* --profile: one more run with an event around every step; the steps' times by launch kind, the slowest
 * steps, and the sum against the run's own time. */
static int profile_steps(tgc_rt_session *s, const tgc_rt_program *cp) {
  tgc_rt_err err = {""};
  uint32_t n = cp->nsteps;
  float *ms = tgc_xcalloc(n + 1, sizeof *ms);
  int64_t *mnkb = tgc_xcalloc(4 * (size_t)n + 1, sizeof *mnkb);
  unsigned *grid = tgc_xcalloc(3 * (size_t)n + 1, sizeof *grid);
  int rc = 1;
  if (tgc_rt_session_profile(s, ms, mnkb, grid, &err)) {
    tgc_driver_rt_error("the CUDA backend", &err);
    goto out;
  }
  const char *kinds[] = {"gemm", "attention", "rows", "pointwise", "epilogue", "operand", "constant"};
  double tot[8] = {0}, all = 0;
  unsigned cnt[8] = {0};
  for (uint32_t k = 0; k < n; k++) {
    const char *kind = cp->steps[k].gemm ? "gemm" : cp->kernels[cp->steps[k].index].kind;
    uint32_t j = 0;
    while (j < 7 && strcmp(kinds[j], kind) != 0)
      j++;
    tot[j] += ms[k];
    cnt[j]++;
    all += ms[k];
  }
  printf("profile: %u steps, %.4f ms in all (events between steps, so launch gaps count)\n", n, all);
  for (uint32_t j = 0; j < 8; j++)
    if (cnt[j])
      printf("profile:   %-10s %4u steps %9.4f ms %5.1f%%\n", j < 7 ? kinds[j] : "other", cnt[j], tot[j],
             100 * tot[j] / (all > 0 ? all : 1));
  for (int top = 0; top < 8; top++) {
    uint32_t best = n;
    for (uint32_t k = 0; k < n; k++)
      if (ms[k] >= 0 && (best == n || ms[k] > ms[best]))
        best = k;
    if (best == n)
      break;
    const tgc_rt_pstep *st = &cp->steps[best];
    if (st->gemm)
      printf("profile:   step %3u %8.4f ms gemm [%lld x %lld x %lld, batch %lld] at line %u\n", best, ms[best],
             (long long)mnkb[4 * best], (long long)mnkb[4 * best + 1], (long long)mnkb[4 * best + 2],
             (long long)mnkb[4 * best + 3], loc_line(cp->gemms[st->index].loc));
    else
      printf("profile:   step %3u %8.4f ms %s (grid %u x %u x %u, block %u) at line %u\n", best, ms[best],
             cp->kernels[st->index].name, grid[3 * best], grid[3 * best + 1], grid[3 * best + 2],
             cp->kernels[st->index].block, loc_line(cp->kernels[st->index].loc));
    ms[best] = -1;
  }
  rc = 0;
out:
  free(ms);
  free(mnkb);
  free(grid);
  return rc;
}

/* The notes the session has for the user (a stored memory plan that did not fit...), one per line. */
static void print_notes(const tgc_rt_session *s) {
  tgc_rt_session_stats st;
  tgc_rt_session_stats_get(s, &st);
  for (const char *l = st.notes; *l;) {
    const char *e = strchr(l, '\n');
    size_t len = e ? (size_t)(e - l) : strlen(l);
    fprintf(stderr, "tgc: note: %.*s\n", (int)len, l);
    l += len + (e != NULL);
  }
}

int tgc_run_cuda(tgc_module *m, bool optimize, const tgc_rt_program *cpu, const tgc_rt_tensor *inputs,
                 tgc_rt_tensor *outputs, tgc_rt_weights *w, const tgc_cuda_run_opts *ro) {
  tgc_rt_err err = {""};
  const tgc_rt_plan *p = cpu->plan;
  /* the device first: without one there is nothing to compile for (the session opens it again; this handle
   * keeps the device's context alive until then) */
  tgc_rt_cuda *probe = tgc_rt_cuda_open(&err);
  if (!probe) {
    tgc_driver_rt_error("the CUDA backend", &err);
    return 1;
  }
  double c0 = now_ms();
  tgc_rt_program *built = NULL;
  const tgc_rt_program *cp = cpu;
  tgc_rt_session *s = NULL;
  float *times = NULL;
  int rc = 1;
  if (m) {
    /* the GPU runs the optimized module, as -O2 makes it (an older artifact's module already is) */
    tgc_diag diag;
    tgc_diag_init(&diag, stderr);
    tgc_pipeline *pl = optimize ? tgc_pipeline_parse(tgc_pipeline_for_level(2), &diag) : NULL;
    tgc_pm_options pmo;
    memset(&pmo, 0, sizeof pmo);
    pmo.dump = stderr;
    int prc = !optimize ? 0 : pl ? tgc_pipeline_run(pl, m, &diag, &pmo) : 1;
    tgc_pipeline_destroy(pl);
    tgc_diag_free(&diag);
    if (prc)
      goto done;
    /* the function tgc run lowered into P, not the module's default entry: INPUTS are its arguments */
    const tgc_program_opts po = {true, false};
    if (!(built = tgc_program_build(m, p->name, &po))) {
      fprintf(stderr, "tgc: error: the optimized module has no function '@%s' for the CUDA backend\n", p->name);
      goto done;
    }
    cp = built;
  }
  if (!cp->has_cuda) {
    bool fb = ro && ro->fallback;
    fprintf(stderr, "%s: %s: the CUDA backend cannot run this %s: %s; %s\n",
            cp->cuda_why_loc && cp->cuda_why_loc[0] ? cp->cuda_why_loc : "?", fb ? "note" : "error",
            cp->cuda_why_op && cp->cuda_why_op[0] ? cp->cuda_why_op : "program",
            cp->cuda_why ? cp->cuda_why : "it has no CUDA program", fb ? "running on the CPU backend" : "use --device=cpu");
    rc = fb ? 2 : 1;
    goto done;
  }
  if (cp->plan->ninputs != p->ninputs || cp->plan->noutputs != p->noutputs) {
    fprintf(stderr, "tgc: error: internal: the CUDA program of '@%s' has other inputs or results than its plan\n",
            p->name);
    goto done;
  }
  if (ro && ro->fp8_gemms) {
    *ro->fp8_gemms = false;
    for (uint32_t g = 0; g < cp->ngemms; g++)
      *ro->fp8_gemms |= cp->gemms[g].ab_dtype == TGC_DT_F8E4M3 || cp->gemms[g].ab_dtype == TGC_DT_F8E5M2;
  }
  const tgc_rt_session_opts so = {TGC_RT_DEVICE_CUDA, 0, NULL};
  if (tgc_rt_session_create(cp, &so, &s, &err)) {
    tgc_driver_rt_error("the CUDA backend", &err);
    goto done;
  }
  tgc_rt_cuda_close(probe);
  probe = NULL;
  if (w && tgc_rt_session_bind_weights(s, w, &err)) {
    tgc_driver_rt_error("binding the weights", &err);
    goto done;
  }
  for (uint32_t i = 0; i < p->ninputs; i++)
    if (tgc_rt_session_set_input(s, i, &inputs[i], false, &err)) {
      tgc_driver_rt_error("the CUDA backend", &err);
      goto done;
    }
  double c1 = now_ms();

  /* run 1: queued step by step */
  double r0 = now_ms();
  if (tgc_rt_session_run(s, &err)) {
    print_notes(s);
    tgc_driver_rt_error("the CUDA backend", &err);
    goto done;
  }
  double r1 = now_ms();
  print_notes(s);
  for (uint32_t i = 0; i < p->noutputs; i++) {
    const tgc_rt_tensor *t;
    if (tgc_rt_session_output(s, i, &t, &err) ||
        tgc_rt_tensor_alloc(&outputs[i], t->dtype, t->rank, t->shape, &err)) {
      tgc_driver_rt_error("the CUDA backend", &err);
      goto done;
    }
    memcpy(outputs[i].data, t->data, tgc_rt_tensor_nbytes(t));
  }
  if (ro && ro->profile && profile_steps(s, cp))
    goto done;
  /* runs 2..N: one CUDA graph, captured from the same steps, replayed */
  int repeat = ro && ro->repeat > 1 ? ro->repeat : 1;
  if (repeat > 1) {
    times = tgc_xcalloc((size_t)repeat + 3, sizeof *times);
    if (tgc_rt_session_time_replays(s, repeat - 1 + 3, times, &err)) { /* three warm-up replays */
      tgc_driver_rt_error("the CUDA backend", &err);
      goto done;
    }
    /* the replayed graph must give what the first run gave, bit for bit */
    for (uint32_t i = 0; i < p->noutputs; i++) {
      const tgc_rt_tensor *t;
      size_t nb = tgc_rt_tensor_nbytes(&outputs[i]);
      if (tgc_rt_session_output(s, i, &t, &err) || tgc_rt_tensor_nbytes(t) != nb ||
          memcmp(t->data, outputs[i].data, nb) != 0) {
        fprintf(stderr, "tgc: error: output %u of the CUDA graph replay differs from the first run\n", i);
        goto done;
      }
    }
  }
  tgc_rt_session_stats st;
  tgc_rt_session_stats_get(s, &st);
  fprintf(stderr, "cuda: %u steps (%u kernels, %u distinct, %u cuBLASLt GEMMs) on %s (%s); kernel cache: %u hits, %u "
          "misses; from the artifact: %u\n", st.nsteps, st.nkernels, st.ndistinct, st.ngemms, st.device_name, st.arch,
          st.cache_hits, st.cache_misses, st.from_program);
  fprintf(stderr, "cuda: memory: weights %.2f MiB, intermediates %.2f MiB in one arena (%.2f MiB without reuse; "
          "plan: %s)\n", st.weight_bytes / 1048576.0, st.arena_bytes / 1048576.0, st.naive_bytes / 1048576.0,
          st.plan_from);
  if (ro && ro->time) {
    printf("time: compile %.1f ms (optimize, generate, NVRTC or cache), first run %.3f ms\n", c1 - c0, r1 - r0);
    if (repeat > 1) {
      qsort(times + 3, (size_t)repeat - 1, sizeof *times, cmp_float);
      printf("time: CUDA graph replay median %.4f ms, min %.4f ms over %d runs\n", times[3 + (repeat - 1) / 2],
             times[3], repeat - 1);
    }
  }
  rc = 0;
done:
  if (rc == 1)
    for (uint32_t i = 0; i < p->noutputs; i++)
      tgc_rt_tensor_free(&outputs[i]);
  free(times);
  tgc_rt_session_destroy(s);
  tgc_rt_program_free(built);
  tgc_rt_cuda_close(probe);
  return rc;
}

/* Unit tests of weight sets and sessions (runtime/session.h). Weight sets: a safetensors file and tensors in the
 * caller's memory, names given twice, lookups. CPU sessions of the program tgc_program_build makes of
 * examples/mlp.tir (-O2): bound once, run at two batch sizes with outputs equal to tgc_rt_cpu_run's bit for bit;
 * a missing or misshapen weight refused at bind with the CPU backend's located message; an input of the wrong
 * rank or dtype, a run before the weights are bound, outputs asked for wrongly: errors naming what is wrong. On
 * a machine with a GPU, the same program in a CUDA session (first run, graph replays, another size, back to
 * the first, inputs and outputs in GPU memory) agrees with the CPU backend within f32's tolerance. A program
 * stored as artifact sections and loaded back runs as the one it was stored from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_driver.h"
#include "artifact.h"
#include "frontend.h"
#include "pass_manager.h"
#include "program_build.h"
#include "session.h"
#include "check.h"

#ifndef TGC_SOURCE_DIR
#error "TGC_SOURCE_DIR must name the source tree (set by CMakeLists.txt)"
#endif

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  *len = fread(b, 1, (size_t)n, f);
  b[*len] = 0;
  fclose(f);
  return b;
}

/* The program of examples/mlp.tir as `tgc run --device=cuda` builds it: -O2, then tgc_program_build. */
static tgc_rt_program *mlp_program(void) {
  size_t len;
  char *src = read_all(TGC_SOURCE_DIR "/examples/mlp.tir", &len);
  CHECK(src != NULL);
  if (!src)
    return NULL;
  tgc_diag d;
  tgc_diag_init(&d, stderr);
  tgc_module *m = tgc_parse_module("mlp.tir", src, len, &d);
  CHECK(m && tgc_verify_module(m, &d) == 0);
  tgc_pipeline *pl = tgc_pipeline_parse(tgc_pipeline_for_level(2), &d);
  tgc_pm_options o;
  memset(&o, 0, sizeof o);
  o.dump = stderr;
  CHECK(pl && m && tgc_pipeline_run(pl, m, &d, &o) == 0);
  tgc_pipeline_destroy(pl);
  const tgc_program_opts po = {true, false};
  tgc_rt_program *p = m ? tgc_program_build(m, NULL, &po) : NULL;
  CHECK(p != NULL);
  tgc_module_destroy(m); /* the program outlives its module */
  tgc_diag_free(&d);
  free(src);
  return p;
}

static void fill(tgc_rt_tensor *t, tgc_dtype dt, uint32_t rank, const int64_t *shape, uint64_t seed) {
  tgc_rt_err err;
  CHECK(tgc_rt_tensor_alloc(t, dt, rank, shape, &err) == 0);
  tgc_rt_fill_random(t, &seed);
}

/* ---- weight sets ---- */

static void test_weights_file(void) {
  const char *path = "test_rt_session.safetensors";
  int64_t s2[1] = {2}, s3[2] = {3, 1};
  tgc_rt_tensor a, b;
  fill(&a, TGC_DT_F32, 1, s2, 1);
  fill(&b, TGC_DT_I32, 2, s3, 2);
  const char *names[2] = {"a", "b"};
  const tgc_rt_tensor *ts[2] = {&a, &b};
  tgc_rt_err err;
  CHECK(tgc_rt_st_write(path, names, ts, 2, NULL, 0, &err) == 0);
  tgc_rt_weights *w = NULL;
  CHECK(tgc_rt_weights_open(path, &w, &err) == 0 && w);
  if (!w)
    return;
  CHECK_STR(tgc_rt_weights_label(w), path);
  tgc_rt_tensor v;
  CHECK(tgc_rt_weights_get(w, "b", &v) == 0 && v.dtype == TGC_DT_I32 && v.rank == 2 && v.shape[0] == 3 &&
        v.shape[1] == 1 && !v.owned && memcmp(v.data, b.data, 12) == 0);
  CHECK(tgc_rt_weights_get(w, "c", &v) == 1);
  /* a name the file has already is given twice */
  CHECK(tgc_rt_weights_add(w, "a", &b, &err) == -1);
  CHECK_HAS(err.msg, "weight 'a' is given twice in test_rt_session.safetensors");
  /* a name it lacks is added beside the file's */
  CHECK(tgc_rt_weights_add(w, "c", &b, &err) == 0);
  CHECK(tgc_rt_weights_get(w, "c", &v) == 0 && v.data == b.data && v.dtype == TGC_DT_I32);
  /* a reference outlives the first release */
  tgc_rt_weights *r = tgc_rt_weights_retain(w);
  CHECK(r == w);
  tgc_rt_weights_release(w);
  CHECK(tgc_rt_weights_get(r, "a", &v) == 0 && memcmp(v.data, a.data, 8) == 0);
  tgc_rt_weights_release(r);
  CHECK(tgc_rt_weights_open("no-such-file.safetensors", &w, &err) == -1 && !w);
  CHECK_HAS(err.msg, "no-such-file.safetensors");
  remove(path);
  tgc_rt_tensor_free(&a);
  tgc_rt_tensor_free(&b);
}

static void test_weights_memory(void) {
  tgc_rt_weights *w = tgc_rt_weights_new("my weights");
  CHECK_STR(tgc_rt_weights_label(w), "my weights");
  float data[6] = {1, 2, 3, 4, 5, 6};
  tgc_rt_tensor t = {TGC_DT_F32, 2, {2, 3}, data, false};
  tgc_rt_err err;
  CHECK(tgc_rt_weights_add(w, "x", &t, &err) == 0);
  tgc_rt_tensor v;
  CHECK(tgc_rt_weights_get(w, "x", &v) == 0 && v.data == data && v.rank == 2 && v.shape[1] == 3);
  CHECK(tgc_rt_weights_add(w, "x", &t, &err) == -1);
  CHECK_HAS(err.msg, "weight 'x' is given twice in my weights");
  CHECK(tgc_rt_weights_add(w, "", &t, &err) == -1);
  tgc_rt_tensor nodata = {TGC_DT_F32, 1, {4}, NULL, false};
  CHECK(tgc_rt_weights_add(w, "y", &nodata, &err) == -1);
  CHECK_HAS(err.msg, "'y'");
  CHECK(tgc_rt_weights_get(w, "y", &v) == 1);
  tgc_rt_weights_release(w);
}

/* ---- CPU sessions ---- */

/* The weights of examples/mlp.tir in caller memory (copies of mlp.safetensors), with NAME left out or, when
 * BAD_SHAPE, given as a 1-element tensor. */
static tgc_rt_weights *mlp_weights(tgc_rt_weights *file, const char *name, bool bad_shape) {
  static const char *const names[] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
  tgc_rt_weights *w = tgc_rt_weights_new("mine");
  tgc_rt_err err;
  for (int i = 0; i < 4; i++) {
    tgc_rt_tensor t;
    CHECK(tgc_rt_weights_get(file, names[i], &t) == 0);
    if (name && strcmp(name, names[i]) == 0) {
      if (!bad_shape)
        continue;
      t.rank = 1;
      t.shape[0] = 1;
    }
    CHECK(tgc_rt_weights_add(w, names[i], &t, &err) == 0);
  }
  return w;
}

static void run_at(tgc_rt_session *s, const tgc_rt_program *p, const tgc_rt_weights *w, int64_t batch,
                   uint64_t seed) {
  int64_t shape[2] = {batch, 64};
  tgc_rt_tensor x;
  fill(&x, TGC_DT_F32, 2, shape, seed);
  tgc_rt_err err;
  CHECK(tgc_rt_session_set_input(s, 0, &x, false, &err) == 0);
  int rc = tgc_rt_session_run(s, &err);
  CHECK(rc == 0);
  if (rc)
    fprintf(stderr, "  %s\n", err.msg);
  const tgc_rt_tensor *y = NULL;
  CHECK(rc == 0 && tgc_rt_session_output(s, 0, &y, &err) == 0 && y);
  tgc_rt_tensor ref;
  tgc_rt_cpu_opts o = {w, NULL, NULL};
  CHECK(tgc_rt_cpu_run(p->plan, &x, &ref, &o, &err) == 0);
  if (y) {
    CHECK(y->dtype == TGC_DT_F32 && y->rank == 2 && y->shape[0] == batch && y->shape[1] == 16);
    if (tgc_rt_session_device(s) == TGC_RT_DEVICE_CPU) {
      CHECK(memcmp(y->data, ref.data, tgc_rt_tensor_nbytes(&ref)) == 0);
    } else {
      tgc_rt_compare_result c;
      tgc_rt_compare(y, &ref, &c);
      CHECK(c.ok);
      if (!c.ok)
        fprintf(stderr, "  relative error %g\n", c.rel);
    }
    /* copy_output: exactly the output's bytes, the same data */
    float *copy = malloc(tgc_rt_tensor_nbytes(&ref));
    CHECK(tgc_rt_session_copy_output(s, 0, copy, tgc_rt_tensor_nbytes(&ref), false, &err) == 0 &&
          memcmp(copy, y->data, tgc_rt_tensor_nbytes(&ref)) == 0);
    CHECK(tgc_rt_session_copy_output(s, 0, copy, 4, false, &err) == -1);
    CHECK_HAS(err.msg, "output 0 is");
    free(copy);
  }
  tgc_rt_tensor_free(&ref);
  tgc_rt_tensor_free(&x);
}

static void test_cpu_session(tgc_rt_program *p, tgc_rt_weights *file) {
  tgc_rt_session *s = NULL;
  tgc_rt_session_opts so = {TGC_RT_DEVICE_CPU, 0, NULL};
  tgc_rt_err err;
  CHECK(tgc_rt_session_create(p, &so, &s, &err) == 0 && s);
  if (!s)
    return;
  CHECK(tgc_rt_session_device(s) == TGC_RT_DEVICE_CPU);
  int64_t shape[2] = {3, 64};
  tgc_rt_tensor x;
  fill(&x, TGC_DT_F32, 2, shape, 7);
  CHECK(tgc_rt_session_run(s, &err) == -1);
  CHECK_HAS(err.msg, "no value for input '%x'");
  CHECK(tgc_rt_session_set_input(s, 0, &x, false, &err) == 0);
  /* before the weights are bound, the first param says it has none */
  CHECK(tgc_rt_session_run(s, &err) == -1);
  CHECK_HAS(err.msg, "mlp.tir:");
  CHECK_HAS(err.msg, ": error: 'param': parameter 'fc1.weight' needs weights, but none were given");
  const tgc_rt_tensor *y;
  CHECK(tgc_rt_session_output(s, 0, &y, &err) == -1);
  CHECK_HAS(err.msg, "before a run succeeded");
  CHECK(tgc_rt_session_set_input(s, 0, &x, true, &err) == -1);
  CHECK_HAS(err.msg, "input '%x' is in GPU memory");
  CHECK(tgc_rt_session_set_input(s, 1, &x, false, &err) == -1);

  /* a weight missing, a weight of the wrong shape: refused at bind, located at the param */
  tgc_rt_weights *missing = mlp_weights(file, "fc2.bias", false);
  CHECK(tgc_rt_session_bind_weights(s, missing, &err) == -1);
  CHECK_HAS(err.msg, "mlp.tir:7:");
  CHECK_HAS(err.msg, "error: 'param': parameter 'fc2.bias' is missing from mine");
  tgc_rt_weights_release(missing);
  tgc_rt_weights *bad = mlp_weights(file, "fc1.bias", true);
  CHECK(tgc_rt_session_bind_weights(s, bad, &err) == -1);
  CHECK_HAS(err.msg, "mlp.tir:5:");
  CHECK_HAS(err.msg, "parameter 'fc1.bias' is f32[1] in mine, but the module declares f32[128]");
  tgc_rt_weights_release(bad);

  /* bound once (the session keeps its own reference), run at two batch sizes */
  tgc_rt_weights *good = mlp_weights(file, NULL, false);
  CHECK(tgc_rt_session_bind_weights(s, good, &err) == 0);
  tgc_rt_weights_release(good);
  run_at(s, p, file, 3, 11);
  run_at(s, p, file, 5, 12);
  CHECK(tgc_rt_session_output(s, 1, &y, &err) == -1);
  CHECK_HAS(err.msg, "no output 1");

  /* an input of the wrong rank, of the wrong dtype: errors naming it */
  int64_t s1[1] = {64}, s2[2] = {2, 64};
  tgc_rt_tensor r1, f64;
  fill(&r1, TGC_DT_F32, 1, s1, 3);
  fill(&f64, TGC_DT_F64, 2, s2, 4);
  CHECK(tgc_rt_session_set_input(s, 0, &r1, false, &err) == 0 && tgc_rt_session_run(s, &err) == -1);
  CHECK_HAS(err.msg, "input '%x' is f32[64], but '@main' declares f32 of rank 2");
  CHECK(tgc_rt_session_output(s, 0, &y, &err) == -1); /* a failed run has no outputs */
  CHECK(tgc_rt_session_set_input(s, 0, &f64, false, &err) == 0 && tgc_rt_session_run(s, &err) == -1);
  CHECK_HAS(err.msg, "input '%x' is f64[2, 64]");
  tgc_rt_tensor_free(&r1);
  tgc_rt_tensor_free(&f64);
  tgc_rt_session_stats st;
  tgc_rt_session_stats_get(s, &st);
  CHECK(st.nsteps == p->plan->nsteps && st.notes && !st.notes[0]);
  float ms[1];
  CHECK(tgc_rt_session_time_replays(s, 1, ms, &err) == -1);
  CHECK_HAS(err.msg, "needs a CUDA session");
  tgc_rt_session_destroy(s);
  tgc_rt_tensor_free(&x);
}

/* The program stored as artifact sections and loaded back (tgc_rt_program_load): a CPU session of it gives what a
 * session of the program it was stored from gives, bit for bit. */
static void test_loaded_program(const tgc_rt_program *p, tgc_rt_weights *file) {
  const char *path = "test_rt_session.tgc";
  tgc_rt_sections secs;
  tgc_rt_err err;
  int rc = tgc_rt_program_sections(p, &secs, &err);
  CHECK(rc == 0);
  if (rc) {
    fprintf(stderr, "  %s\n", err.msg);
    return;
  }
  CHECK(tgc_rt_artifact_write(path, secs.v, secs.n, &err) == 0);
  tgc_rt_sections_free(&secs);
  tgc_rt_program *q = NULL;
  rc = tgc_rt_program_load(path, &q, &err);
  CHECK(rc == 0 && q);
  if (rc)
    fprintf(stderr, "  %s\n", err.msg);
  tgc_rt_session_opts so = {TGC_RT_DEVICE_CPU, 0, NULL};
  tgc_rt_session *a = NULL, *b = NULL;
  CHECK(q && tgc_rt_session_create(p, &so, &a, &err) == 0 && tgc_rt_session_create(q, &so, &b, &err) == 0);
  if (a && b) {
    int64_t shape[2] = {4, 64};
    tgc_rt_tensor x;
    fill(&x, TGC_DT_F32, 2, shape, 31);
    const tgc_rt_tensor *ya = NULL, *yb = NULL;
    CHECK(tgc_rt_session_bind_weights(a, file, &err) == 0 && tgc_rt_session_bind_weights(b, file, &err) == 0);
    CHECK(tgc_rt_session_set_input(a, 0, &x, false, &err) == 0 && tgc_rt_session_run(a, &err) == 0 &&
          tgc_rt_session_output(a, 0, &ya, &err) == 0);
    CHECK(tgc_rt_session_set_input(b, 0, &x, false, &err) == 0 && tgc_rt_session_run(b, &err) == 0 &&
          tgc_rt_session_output(b, 0, &yb, &err) == 0);
    CHECK(ya && yb && tgc_rt_tensor_nbytes(ya) == tgc_rt_tensor_nbytes(yb) &&
          memcmp(ya->data, yb->data, tgc_rt_tensor_nbytes(ya)) == 0);
    tgc_rt_tensor_free(&x);
  }
  tgc_rt_session_destroy(a);
  tgc_rt_session_destroy(b);
  tgc_rt_program_free(q);
  remove(path);
}

/* A CUDA session of the same program, where there is a GPU; without one, creating it is the driver's error. */
static void test_cuda_session(tgc_rt_program *p, tgc_rt_weights *file) {
  tgc_rt_session *s = NULL;
  tgc_rt_session_opts so = {TGC_RT_DEVICE_CUDA, 0, NULL};
  tgc_rt_err err;
  if (!tgc_rt_cuda_available()) {
    CHECK(tgc_rt_session_create(p, &so, &s, &err) == -1 && !s);
    CHECK(strstr(err.msg, "no CUDA driver") || strstr(err.msg, "no GPU"));
    return;
  }
  CHECK(p->has_cuda);
  int rc = tgc_rt_session_create(p, &so, &s, &err);
  CHECK(rc == 0 && s);
  if (rc) {
    fprintf(stderr, "  %s\n", err.msg);
    return;
  }
  CHECK(tgc_rt_session_bind_weights(s, file, &err) == 0);
  run_at(s, p, file, 3, 21); /* queued step by step */
  run_at(s, p, file, 3, 22); /* the graph of B=3, captured now */
  run_at(s, p, file, 5, 23); /* another instance */
  run_at(s, p, file, 3, 24); /* B=3's graph again */
  /* ever new sizes keep at most TGC_RT_SESSION_MAX_INSTANCES instances, the least recently used freed: eight new
   * sizes after B=3 and B=5 free B=5, then B=3; sizes run again after their eviction are made again (a kept one is
   * not), and every run still matches the CPU backend */
  for (int64_t b = 6; b < 6 + TGC_RT_SESSION_MAX_INSTANCES; b++)
    run_at(s, p, file, b, 30 + (uint64_t)b);
  tgc_rt_session_stats st;
  tgc_rt_session_stats_get(s, &st);
  CHECK(st.instances == TGC_RT_SESSION_MAX_INSTANCES && st.evicted == 2);
  run_at(s, p, file, 3, 26); /* made again: frees B=6 */
  run_at(s, p, file, 5, 27); /* made again: frees B=7 */
  run_at(s, p, file, 5, 28); /* kept: its graph */
  run_at(s, p, file, 13, 29); /* kept */
  tgc_rt_session_stats_get(s, &st);
  CHECK(st.instances == TGC_RT_SESSION_MAX_INSTANCES && st.evicted == 4);
  /* an input in GPU memory (copied device to device) and an output copied to GPU memory */
  tgc_rt_cuda *cuda = tgc_rt_cuda_open(&err); /* the same device's primary context: its pointers are the session's */
  CHECK(cuda != NULL);
  if (cuda) {
    int64_t shape[2] = {3, 64};
    tgc_rt_tensor x, ref;
    fill(&x, TGC_DT_F32, 2, shape, 25);
    tgc_rt_devptr dx = 0, dy = 0;
    size_t ny = 3 * 16 * sizeof(float);
    float host[3 * 16];
    CHECK(tgc_rt_cuda_alloc(cuda, tgc_rt_tensor_nbytes(&x), &dx, &err) == 0 &&
          tgc_rt_cuda_upload(cuda, dx, x.data, tgc_rt_tensor_nbytes(&x), &err) == 0 &&
          tgc_rt_cuda_alloc(cuda, ny, &dy, &err) == 0);
    tgc_rt_tensor dev = x;
    dev.data = (void *)(uintptr_t)dx;
    dev.owned = false;
    CHECK(tgc_rt_session_set_input(s, 0, &dev, true, &err) == 0 && tgc_rt_session_run(s, &err) == 0);
    CHECK(tgc_rt_session_copy_output(s, 0, (void *)(uintptr_t)dy, ny, true, &err) == 0 &&
          tgc_rt_cuda_download(cuda, host, dy, ny, &err) == 0);
    tgc_rt_cpu_opts o = {file, NULL, NULL};
    CHECK(tgc_rt_cpu_run(p->plan, &x, &ref, &o, &err) == 0);
    tgc_rt_tensor got = ref;
    got.data = host;
    got.owned = false;
    tgc_rt_compare_result c;
    tgc_rt_compare(&got, &ref, &c);
    CHECK(c.ok);
    tgc_rt_tensor_free(&ref);
    tgc_rt_tensor_free(&x);
    tgc_rt_cuda_free(cuda, dx);
    tgc_rt_cuda_free(cuda, dy);
    tgc_rt_cuda_close(cuda);
  }
  float ms[4];
  CHECK(tgc_rt_session_time_replays(s, 4, ms, &err) == 0 && ms[0] >= 0 && ms[3] >= 0);
  const tgc_rt_tensor *y;
  CHECK(tgc_rt_session_output(s, 0, &y, &err) == 0 && y->shape[0] == 3);
  uint32_t n = p->nsteps;
  float *pm = calloc(n + 1, sizeof *pm);
  int64_t *mnkb = calloc(4 * n + 1, sizeof *mnkb);
  unsigned *grid = calloc(3 * n + 1, sizeof *grid);
  CHECK(tgc_rt_session_profile(s, pm, mnkb, grid, &err) == 0);
  for (uint32_t k = 0; k < n; k++)
    CHECK(p->steps[k].gemm ? mnkb[4 * k] == 3 && grid[3 * k] == 0 : grid[3 * k] > 0 && mnkb[4 * k] == 0);
  free(pm);
  free(mnkb);
  free(grid);
  tgc_rt_session_stats_get(s, &st);
  CHECK(st.nsteps == n && st.ngemms == p->ngemms && st.weight_bytes >= (64 * 128 + 128 + 128 * 16 + 16) * 4);
  CHECK(st.arch && strncmp(st.arch, "sm_", 3) == 0);
  tgc_rt_session_destroy(s);
}

/* The one rule of weights references: resolved against the directory of the file they were read from, and
 * stored by an artifact as a name beside it or an absolute path elsewhere. */
static void test_weights_paths(void) {
  static const struct { const char *origin, *ref, *want; } cases[] = {
      {"models/m.tir", "w.safetensors", "models/w.safetensors"}, {"m.tir", "w.safetensors", "w.safetensors"},
      {"/a/b/m.tgc", "../w.st", "/a/b/../w.st"},                  {"models/m.tir", "/abs/w.st", "/abs/w.st"},
      {"-", "w.st", "w.st"},                                      {NULL, "w.st", "w.st"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *r = tgc_rt_weights_resolve(cases[i].origin, cases[i].ref);
    CHECK_STR(r, cases[i].want);
    free(r);
  }
  tgc_rt_err err;
  char *ref = NULL;
  CHECK(tgc_rt_weights_reference(TGC_SOURCE_DIR "/examples/mlp.safetensors", TGC_SOURCE_DIR "/examples/x.tgc",
                                 &ref, &err) == 0);
  CHECK_STR(ref, "mlp.safetensors");
  free(ref);
  CHECK(tgc_rt_weights_reference(TGC_SOURCE_DIR "/examples/mlp.safetensors", "/tmp/x.tgc", &ref, &err) == 0);
  CHECK(ref && ref[0] == '/' && strstr(ref, "/examples/mlp.safetensors"));
  free(ref);
  CHECK(tgc_rt_weights_reference("no/such.safetensors", "x.tgc", &ref, &err) == -1 && !ref);
  CHECK_HAS(err.msg, "the weights 'no/such.safetensors' cannot be found");
}

int main(void) {
  test_weights_paths();
  test_weights_file();
  test_weights_memory();
  tgc_rt_program *p = mlp_program();
  tgc_rt_weights *file = NULL;
  tgc_rt_err err;
  CHECK(tgc_rt_weights_open(TGC_SOURCE_DIR "/examples/mlp.safetensors", &file, &err) == 0);
  if (p && file) {
    test_cpu_session(p, file);
    test_loaded_program(p, file);
    test_cuda_session(p, file);
  }
  tgc_rt_weights_release(file);
  tgc_rt_program_free(p);
  return CHECK_EXIT();
}

/* Unit tests of the public C API (include/tgc/tgc.h), linked against libtgc.so as an application is: version and
 * dtype helpers; a bad module's diagnostics come back as the error, all of them, with the first one's location,
 * and nothing reaches stderr; a NULL error pointer is accepted everywhere; program queries (symbolic dims as
 * text, shapes at symbol sizes, out-of-range indices); CPU sessions (an input of the wrong dtype or rank and an
 * index out of range are errors naming the input, running before binding the weights names the param, results
 * equal the arithmetic done here, a second run at another batch size); the save/load round trip. */
#define _POSIX_C_SOURCE 200809L /* fileno, mkdtemp */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tgc/tgc.h"
#include "check.h"

/* stderr is captured into a temporary file around the calls under test: the library must write nothing. */
static FILE *capture;
static int saved_stderr = -1;

static void capture_begin(void) {
  fflush(stderr);
  capture = tmpfile();
  saved_stderr = dup(2);
  dup2(fileno(capture), 2);
}

/* Ends the capture; returns how many bytes were written to stderr meanwhile. */
static long capture_end(void) {
  fflush(stderr);
  dup2(saved_stderr, 2);
  close(saved_stderr);
  long n = ftell(capture) >= 0 ? (fseek(capture, 0, SEEK_END), ftell(capture)) : -1;
  fclose(capture);
  return n;
}

static const char bad[] = "module @m {\n"
                          "  func @main(%x: f32[4]) -> f32[4] {\n"
                          "    %y = add(%x, %x) : f32[5]\n"
                          "    %z = exp(%y) : i32[4]\n"
                          "    return %z\n"
                          "  }\n"
                          "}\n";

/* z = x @ w + x, with a symbolic batch B */
static const char good[] = "module @m {\n"
                           "  func @main(%x: f32[B, 4]) -> f32[B, 4] {\n"
                           "    %w = param() {name = \"w\"} : f32[4, 4]\n"
                           "    %y = matmul(%x, %w) : f32[B, 4]\n"
                           "    %z = add(%y, %x) : f32[B, 4]\n"
                           "    return %z\n"
                           "  }\n"
                           "}\n";

/* The capture itself: what is written to stderr is counted. */
static void test_capture(void) {
  capture_begin();
  fputs("seen\n", stderr);
  CHECK(capture_end() == 5);
}

/* good's weights in the caller's memory: w[i][j] = i - j */
static float good_w[16];
static tgc_weights *good_weights(void) {
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      good_w[i * 4 + j] = (float)(i - j);
  tgc_weights *ws = NULL;
  tgc_tensor wt = {TGC_F32, 2, {4, 4}, good_w, TGC_MEMORY_HOST};
  CHECK(tgc_weights_create(&ws, NULL) == 0 && tgc_weights_add(ws, "w", &wt, NULL) == 0);
  return ws;
}

/* SRC compiled at -O2 for no GPU target (the CPU runs it, a CUDA session compiles its kernels), or NULL after
 * printing why. */
static tgc_program *compile_none(const char *src, const char *name, const char *weights) {
  tgc_compile_options o;
  tgc_compile_options_init(&o);
  o.target = "none";
  o.weights = weights;
  tgc_program *p = NULL;
  tgc_error *e = NULL;
  if (tgc_compile_text(src, strlen(src), name, &o, &p, &e)) {
    fprintf(stderr, "%s: %s\n", name, tgc_error_message(e));
    tgc_error_free(e);
  }
  return p;
}

static void test_version_and_dtypes(void) {
  CHECK_STR(tgc_version(), TGC_VERSION);
  char v[32];
  snprintf(v, sizeof v, "%d.%d.%d", TGC_VERSION_MAJOR, TGC_VERSION_MINOR, TGC_VERSION_PATCH);
  CHECK_STR(v, TGC_VERSION);
  CHECK_STR(tgc_dtype_str(TGC_BF16), "bf16");
  CHECK_STR(tgc_dtype_str(TGC_F8E4M3), "f8e4m3");
  CHECK_STR(tgc_dtype_str(TGC_BOOL), "bool");
  CHECK(tgc_dtype_str((tgc_dtype_t)99) == NULL);
  CHECK(tgc_dtype_size(TGC_F16) == 2 && tgc_dtype_size(TGC_I64) == 8 && tgc_dtype_size(TGC_I4) == 1);
  CHECK(tgc_dtype_size((tgc_dtype_t)-1) == 0);
}

static void test_bad_module(void) {
  tgc_compile_options o;
  tgc_compile_options_init(&o);
  CHECK(o.opt_level == 2 && o.passes == NULL && strcmp(o.target, "sm_90") == 0);
  o.target = "none";
  tgc_program *p = (tgc_program *)&o; /* set to NULL on failure */
  tgc_error *e = NULL;
  capture_begin();
  int rc = tgc_compile_text(bad, strlen(bad), "bad.tir", &o, &p, &e);
  int rc_null = tgc_compile_text(bad, strlen(bad), "bad.tir", &o, &p, NULL);
  long leaked = capture_end();
  CHECK(rc == -1 && rc_null == -1 && p == NULL && e != NULL);
  CHECK(leaked == 0);
  if (!e)
    return;
  CHECK_STR(tgc_error_location(e), "bad.tir:3:10");
  /* all three diagnostics, in order, with the source lines, as tgc prints them */
  const char *m = tgc_error_message(e);
  CHECK_HAS(m, "bad.tir:3:10: error: 'add' result is declared f32[5]");
  CHECK_HAS(m, "    %y = add(%x, %x) : f32[5]\n         ^");
  const char *second = strstr(m, "bad.tir:4:10: error: 'exp'"), *third = strstr(m, "bad.tir:5:5: error:");
  CHECK(second && third && second < third);
  tgc_error_free(e);

  /* errors before any parsing: no location */
  o.passes = "no-such-pass";
  CHECK(tgc_compile_text(good, strlen(good), "good.tir", &o, &p, &e) == -1);
  CHECK_HAS(tgc_error_message(e), "no-such-pass");
  tgc_error_free(e);
  o.passes = NULL;
  o.target = "sm_x";
  CHECK(tgc_compile_text(good, strlen(good), "good.tir", &o, &p, &e) == -1);
  CHECK_HAS(tgc_error_message(e), "invalid target 'sm_x'");
  CHECK_STR(tgc_error_location(e), "");
  tgc_error_free(e);
  o.target = "none";
  o.entry = "other";
  CHECK(tgc_compile_text(good, strlen(good), "good.tir", &o, &p, &e) == -1);
  CHECK_HAS(tgc_error_message(e), "no function '@other'");
  tgc_error_free(e);
  CHECK(tgc_compile_file("/nonexistent/model.tir", NULL, &p, &e) == -1);
  CHECK_HAS(tgc_error_message(e), "/nonexistent/model.tir");
  tgc_error_free(e);
  CHECK(tgc_program_load("/nonexistent/model.tgc", &p, NULL) == -1 && p == NULL);
  /* a pipeline that creates weights (quantize reads the module's weights file) is refused, saying how to do it */
  o.entry = NULL;
  o.passes = "shape-infer,quantize{mode=int4w}";
  CHECK(tgc_compile_file(TGC_SOURCE_DIR "/examples/mlp.tir", &o, &p, &e) == -1 && p == NULL);
  CHECK_HAS(tgc_error_message(e), "the pass pipeline created weights (fc1.weight.q4, ...), which the C API cannot "
                                  "hand out yet: quantize with the tgc CLI");
  tgc_error_free(e);
  tgc_error_free(NULL);
}

static tgc_program *compile_good(void) {
  capture_begin();
  tgc_program *p = compile_none(good, "good.tir", NULL);
  CHECK(capture_end() == 0);
  CHECK(p != NULL);
  return p;
}

static void test_queries(const tgc_program *p) {
  CHECK(tgc_program_num_inputs(p) == 1 && tgc_program_num_outputs(p) == 1);
  CHECK_STR(tgc_program_input_name(p, 0), "x");
  CHECK_STR(tgc_program_output_name(p, 0), "z");
  CHECK(tgc_program_input_dtype(p, 0) == TGC_F32 && tgc_program_output_dtype(p, 0) == TGC_F32);
  CHECK(tgc_program_input_rank(p, 0) == 2 && tgc_program_output_rank(p, 0) == 2);
  CHECK_STR(tgc_program_input_dim(p, 0, 0), "B");
  CHECK_STR(tgc_program_input_dim(p, 0, 1), "4");
  CHECK_STR(tgc_program_output_dim(p, 0, 0), "B");
  CHECK(tgc_program_num_symbols(p) == 1);
  CHECK_STR(tgc_program_symbol(p, 0), "B");
  CHECK(tgc_program_input_index(p, "x") == 0 && tgc_program_input_index(p, "w") == -1);
  CHECK(tgc_program_weights_path(p) == NULL);
  CHECK(tgc_program_ir(p) && strstr(tgc_program_ir(p), "matmul"));
  /* out of range */
  CHECK(tgc_program_input_name(p, 1) == NULL && tgc_program_output_name(p, 7) == NULL);
  CHECK(tgc_program_input_dim(p, 0, 2) == NULL && tgc_program_output_dim(p, 1, 0) == NULL);
  CHECK(tgc_program_input_rank(p, 3) == 0 && (int)tgc_program_input_dtype(p, 3) == -1);
  CHECK(tgc_program_symbol(p, 1) == NULL);
  int64_t sizes[1] = {3}, shape[2] = {0, 0};
  CHECK(tgc_program_input_shape(p, 0, sizes, shape, NULL) == 0 && shape[0] == 3 && shape[1] == 4);
  tgc_error *e = NULL;
  CHECK(tgc_program_input_shape(p, 1, sizes, shape, &e) == -1);
  CHECK_HAS(tgc_error_message(e), "input 1 out of range");
  tgc_error_free(e);
  CHECK(tgc_program_input_shape(p, 0, NULL, shape, NULL) == -1); /* B needs a size */
  sizes[0] = -5;
  CHECK(tgc_program_input_shape(p, 0, sizes, shape, NULL) == -1);
}

/* Runs P on a batch of N rows of x = (r + c) / 8 with weights w[i][j] = i - j and checks z = x @ w + x. */
static void run_and_check(tgc_session *s, int64_t n) {
  float x[8 * 4];
  for (int64_t r = 0; r < n; r++)
    for (int c = 0; c < 4; c++)
      x[r * 4 + c] = (float)(r + c) / 8;
  tgc_tensor xt = {TGC_F32, 2, {n, 4}, x, TGC_MEMORY_HOST};
  tgc_error *e = NULL;
  CHECK(tgc_session_set_input(s, 0, &xt, NULL) == 0);
  int rc = tgc_session_run(s, &e);
  CHECK(rc == 0);
  if (rc) {
    fprintf(stderr, "%s\n", tgc_error_message(e));
    tgc_error_free(e);
    return;
  }
  tgc_tensor z;
  CHECK(tgc_session_get_output(s, 0, &z, NULL) == 0);
  CHECK(z.dtype == TGC_F32 && z.rank == 2 && z.shape[0] == n && z.shape[1] == 4 && z.memory == TGC_MEMORY_HOST);
  CHECK(tgc_tensor_numel(&z) == (size_t)(n * 4));
  bool ok = true;
  for (int64_t r = 0; r < n; r++)
    for (int j = 0; j < 4; j++) {
      double want = x[r * 4 + j];
      for (int i = 0; i < 4; i++)
        want += (double)x[r * 4 + i] * (i - j);
      ok = ok && fabs(tgc_tensor_get(&z, (size_t)(r * 4 + j)) - want) < 1e-5;
    }
  CHECK(ok);
  float copy[8 * 4];
  CHECK(tgc_session_copy_output(s, 0, copy, (size_t)n * 4 * sizeof(float), TGC_MEMORY_HOST, NULL) == 0);
  CHECK(memcmp(copy, z.data, (size_t)n * 4 * sizeof(float)) == 0);
  CHECK(tgc_session_copy_output(s, 0, copy, 3, TGC_MEMORY_HOST, NULL) == -1); /* not its size */
}

static void test_session(const tgc_program *p) {
  tgc_session_options so;
  tgc_session_options_init(&so);
  CHECK(so.device == TGC_DEVICE_AUTO && so.gpu == 0 && so.cuda_stream == NULL);
  so.device = TGC_DEVICE_CPU;
  tgc_session *s = NULL;
  tgc_error *e = NULL;
  CHECK(tgc_session_create(p, &so, &s, &e) == 0 && s != NULL);
  if (!s)
    return;
  CHECK(tgc_session_device(s) == TGC_DEVICE_CPU);
  capture_begin();

  /* the weights are not bound yet: the error names the param */
  float x[2 * 4] = {0};
  tgc_tensor xt = {TGC_F32, 2, {2, 4}, x, TGC_MEMORY_HOST};
  CHECK(tgc_session_set_input(s, 0, &xt, NULL) == 0);
  CHECK(tgc_session_run(s, &e) == -1);
  CHECK_HAS(tgc_error_message(e), "'w'");
  tgc_error_free(e);
  /* no weights file to bind from */
  CHECK(tgc_session_bind_weights(s, NULL, &e) == -1);
  CHECK_HAS(tgc_error_message(e), "no weights file");
  tgc_error_free(e);

  /* inputs of the wrong dtype or rank, an index out of range: errors naming the input */
  int32_t xi[2 * 4] = {0};
  tgc_tensor bad_dtype = {TGC_I32, 2, {2, 4}, xi, TGC_MEMORY_HOST};
  tgc_tensor bad_rank = {TGC_F32, 1, {8}, x, TGC_MEMORY_HOST};
  tgc_tensor bad_enum = {(tgc_dtype_t)42, 2, {2, 4}, x, TGC_MEMORY_HOST};
  const tgc_tensor *bads[3] = {&bad_dtype, &bad_rank, &bad_enum};
  for (int k = 0; k < 3; k++) {
    int rc = tgc_session_set_input(s, 0, bads[k], &e);
    if (rc == 0)
      rc = tgc_session_run(s, &e); /* a runtime may check at the run instead */
    CHECK(rc == -1);
    if (rc == -1) {
      CHECK_HAS(tgc_error_message(e), "%x");
      tgc_error_free(e);
    }
  }
  CHECK(tgc_session_set_input(s, 1, &xt, &e) == -1);
  CHECK_HAS(tgc_error_message(e), "input 1 out of range");
  tgc_error_free(e);
  CHECK(tgc_session_set_input(s, 5, &xt, NULL) == -1); /* a NULL error pointer is fine */
  tgc_tensor z;
  CHECK(tgc_session_get_output(s, 1, &z, &e) == -1);
  CHECK_HAS(tgc_error_message(e), "output 1 out of range");
  tgc_error_free(e);
  CHECK(tgc_session_copy_output(s, 2, x, sizeof x, TGC_MEMORY_HOST, NULL) == -1);
  CHECK(capture_end() == 0);

  /* caller weights: w[i][j] = i - j */
  tgc_weights *ws = good_weights();
  tgc_tensor wt = {TGC_F32, 2, {4, 4}, good_w, TGC_MEMORY_HOST};
  CHECK(tgc_weights_add(ws, "w", &wt, &e) == -1); /* twice */
  tgc_error_free(e);
  CHECK(tgc_session_bind_weights(s, ws, NULL) == 0);
  tgc_weights_free(ws); /* the session keeps its reference */
  run_and_check(s, 2);
  run_and_check(s, 5);
  tgc_session_free(s);
  tgc_session_free(NULL);
}

/* AUTO picks CUDA when there is a GPU (the kernels are compiled with NVRTC at creation: the program has no
 * images), else the CPU; CUDA itself is an error without a GPU. Either way the numbers are right. */
static void test_devices(const tgc_program *p) {
  tgc_weights *ws = good_weights();
  tgc_device devices[2] = {TGC_DEVICE_AUTO, TGC_DEVICE_CUDA};
  for (int k = 0; k < 2; k++) {
    tgc_session_options so;
    tgc_session_options_init(&so);
    so.device = devices[k];
    tgc_session *s = NULL;
    tgc_error *e = NULL;
    capture_begin();
    int rc = tgc_session_create(p, &so, &s, &e);
    CHECK(capture_end() == 0);
    if (rc) {
      CHECK(devices[k] == TGC_DEVICE_CUDA && s == NULL);
      CHECK(e && tgc_error_message(e)[0]);
      tgc_error_free(e);
      continue;
    }
    CHECK(tgc_session_device(s) == TGC_DEVICE_CPU || tgc_session_device(s) == TGC_DEVICE_CUDA);
    CHECK(devices[k] != TGC_DEVICE_CUDA || tgc_session_device(s) == TGC_DEVICE_CUDA);
    CHECK(tgc_session_bind_weights(s, ws, NULL) == 0);
    run_and_check(s, 2);
    run_and_check(s, 2); /* on the GPU: the replay of the graph captured by the first run */
    run_and_check(s, 7);
    tgc_session_free(s);
  }
  tgc_weights_free(ws);
}

/* The weights file: the module's reference resolved against its file's directory, or the options' file (named
 * relative to the working directory) instead. */
static void test_weights_path(void) {
  static const char withw[] = "module @m {weights = \"w.safetensors\"} {\n"
                              "  func @main(%x: f32[2]) -> f32[2] {\n"
                              "    %p = param() {name = \"p\"} : f32[2]\n"
                              "    %y = add(%x, %p) : f32[2]\n"
                              "    return %y\n"
                              "  }\n"
                              "}\n";
  tgc_program *p = compile_none(withw, "models/m.tir", NULL);
  CHECK_STR(tgc_program_weights_path(p), "models/w.safetensors");
  tgc_program_free(p);
  p = compile_none(withw, "models/m.tir", "other.safetensors");
  const char *w = tgc_program_weights_path(p);
  CHECK(w && w[0] == '/' && strlen(w) > 18 && strcmp(w + strlen(w) - 18, "/other.safetensors") == 0);
  /* binding from a file that is not there names it */
  tgc_session *s = NULL;
  tgc_error *e = NULL;
  CHECK(tgc_session_create(p, NULL, &s, NULL) == 0);
  CHECK(s && tgc_session_bind_weights(s, NULL, &e) == -1);
  CHECK_HAS(tgc_error_message(e), "other.safetensors");
  tgc_error_free(e);
  tgc_session_free(s);
  tgc_program_free(p);
}

/* Runs examples/mlp.tir's program P with its own weights file on the inputs of seed 0 at B = 2; the L2 norm of
 * its output, or -1. */
static double mlp_norm(const tgc_program *p) {
  tgc_session_options so;
  tgc_session_options_init(&so);
  so.device = TGC_DEVICE_CPU;
  tgc_session *s = NULL;
  tgc_error *e = NULL;
  double norm = -1;
  float x[2 * 64];
  tgc_tensor xt = {TGC_F32, 2, {2, 64}, x, TGC_MEMORY_HOST}, y;
  uint64_t state = 0;
  if (tgc_session_create(p, &so, &s, &e) || tgc_session_bind_weights(s, NULL, &e) ||
      tgc_tensor_fill_random(&xt, &state, &e) || tgc_session_set_input(s, 0, &xt, &e) || tgc_session_run(s, &e) ||
      tgc_session_get_output(s, 0, &y, &e)) {
    fprintf(stderr, "mlp: %s\n", tgc_error_message(e));
    tgc_error_free(e);
  } else {
    norm = 0;
    for (size_t i = 0; i < tgc_tensor_numel(&y); i++)
      norm += tgc_tensor_get(&y, i) * tgc_tensor_get(&y, i);
    norm = sqrt(norm);
  }
  tgc_session_free(s);
  return norm;
}

/* An artifact saved by tgc_program_save finds its weights wherever it is loaded from: by name when they share
 * its directory (the pair can move together), by absolute path otherwise. */
static void test_save_weights(void) {
  char dir[] = "/tmp/tgc-test-api-XXXXXX", moved[64], path[128];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(moved, sizeof moved, "%s-moved", dir);
  tgc_compile_options o;
  tgc_compile_options_init(&o);
  o.target = "none";
  tgc_program *p = NULL, *q = NULL;
  CHECK(tgc_compile_file(TGC_SOURCE_DIR "/examples/mlp.tir", &o, &p, NULL) == 0);
  double want = p ? mlp_norm(p) : -1;
  CHECK(want > 0);

  /* the weights elsewhere: an absolute reference */
  snprintf(path, sizeof path, "%s/far.tgc", dir);
  CHECK(p && tgc_program_save(p, path, NULL) == 0);
  CHECK(tgc_program_load(path, &q, NULL) == 0);
  const char *w = tgc_program_weights_path(q);
  CHECK(w && w[0] == '/' && strstr(w, "/examples/mlp.safetensors"));
  CHECK(q && mlp_norm(q) == want);
  tgc_program_free(q);
  q = NULL;

  /* the weights beside it: a reference by name, which survives moving the directory */
  char wcopy[128];
  snprintf(wcopy, sizeof wcopy, "%s/mlp.safetensors", dir);
  FILE *in = fopen(TGC_SOURCE_DIR "/examples/mlp.safetensors", "rb"), *out = fopen(wcopy, "wb");
  char buf[4096];
  size_t n;
  while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0)
    fwrite(buf, 1, n, out);
  if (in)
    fclose(in);
  if (out)
    fclose(out);
  tgc_program_free(p);
  o.weights = wcopy;
  CHECK(tgc_compile_file(TGC_SOURCE_DIR "/examples/mlp.tir", &o, &p, NULL) == 0);
  snprintf(path, sizeof path, "%s/near.tgc", dir);
  CHECK(p && tgc_program_save(p, path, NULL) == 0);
  CHECK(rename(dir, moved) == 0);
  snprintf(path, sizeof path, "%s/near.tgc", moved);
  CHECK(tgc_program_load(path, &q, NULL) == 0);
  snprintf(wcopy, sizeof wcopy, "%s/mlp.safetensors", moved);
  CHECK_STR(tgc_program_weights_path(q), wcopy);
  CHECK(q && mlp_norm(q) == want);
  tgc_program_free(q);
  tgc_program_free(p);
  remove(wcopy);
  remove(path);
  snprintf(path, sizeof path, "%s/far.tgc", moved);
  remove(path);
  rmdir(moved);
}

/* A module the CUDA backend cannot run compiles (its program runs on the CPU) and says why, at the op; AUTO
 * then runs it on the CPU even where there is a GPU, and CUDA is an error naming the op. */
static void test_cuda_unsupported(const tgc_program *good_program) {
  static const char src[] = "module @c {\n  mesh @one = [tp = 1]\n"
                            "  func @main(%x: f32[4]) -> f32[4] {\n"
                            "    %a = all_reduce(%x) {mesh = @one, axes = [\"tp\"], reduce = \"sum\"} : f32[4]\n"
                            "    return %a\n  }\n}\n";
  CHECK(tgc_program_cuda_unsupported(good_program) == NULL);
  tgc_compile_options o;
  tgc_compile_options_init(&o); /* sm_90: there is nothing to compile for the GPU */
  tgc_program *p = NULL;
  tgc_error *e = NULL;
  CHECK(tgc_compile_text(src, strlen(src), "c.tir", &o, &p, &e) == 0);
  if (!p) {
    fprintf(stderr, "%s\n", tgc_error_message(e));
    tgc_error_free(e);
    return;
  }
  const char *why = tgc_program_cuda_unsupported(p);
  CHECK(why != NULL);
  if (why)
    CHECK_HAS(why, "c.tir:4:10: the CUDA backend cannot run this all_reduce");
  tgc_session *s = NULL;
  CHECK(tgc_session_create(p, NULL, &s, NULL) == 0 && tgc_session_device(s) == TGC_DEVICE_CPU);
  float x[4] = {1, 2, 3, 4};
  tgc_tensor xt = {TGC_F32, 1, {4}, x, TGC_MEMORY_HOST}, y;
  CHECK(tgc_session_set_input(s, 0, &xt, NULL) == 0 && tgc_session_run(s, NULL) == 0);
  CHECK(tgc_session_get_output(s, 0, &y, NULL) == 0 && tgc_tensor_get(&y, 3) == 4); /* one device: the identity */
  tgc_session_free(s);
  tgc_session_options so;
  tgc_session_options_init(&so);
  so.device = TGC_DEVICE_CUDA;
  CHECK(tgc_session_create(p, &so, &s, &e) == -1);
  CHECK(e && strstr(tgc_error_message(e), "all_reduce"));
  tgc_error_free(e);
  tgc_program_free(p);
}

/* A failure at run time is an error located at the op that failed. */
static void test_run_error(void) {
  static const char divz[] = "module @m {\n"
                             "  func @main(%x: i32[4]) -> i32[4] {\n"
                             "    %z = constant() {value = [1, 2, 0, 3]} : i32[4]\n"
                             "    %q = div(%x, %z) : i32[4]\n"
                             "    return %q\n"
                             "  }\n"
                             "}\n";
  tgc_program *p = compile_none(divz, "divz.tir", NULL);
  tgc_session *s = NULL;
  tgc_session_options so;
  tgc_session_options_init(&so);
  so.device = TGC_DEVICE_CPU;
  CHECK(p && tgc_session_create(p, &so, &s, NULL) == 0);
  if (!s) {
    tgc_program_free(p);
    return;
  }
  int32_t x[4] = {7, -3, 0, 5};
  tgc_tensor xt = {TGC_I32, 1, {4}, x, TGC_MEMORY_HOST};
  tgc_error *e = NULL;
  capture_begin();
  CHECK(tgc_session_set_input(s, 0, &xt, NULL) == 0);
  CHECK(tgc_session_run(s, &e) == -1);
  CHECK(capture_end() == 0);
  CHECK_STR(tgc_error_location(e), "divz.tir:4:10");
  CHECK_HAS(tgc_error_message(e), "divz.tir:4:10: error: 'div': integer division by zero");
  tgc_error_free(e);
  tgc_session_free(s);
  tgc_program_free(p);
}

static void test_save_load(const tgc_program *p) {
  char dir[] = "/tmp/tgc-test-api-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[64];
  snprintf(path, sizeof path, "%s/m.tgc", dir);
  tgc_error *e = NULL;
  int rc = tgc_program_save(p, path, &e);
  CHECK(rc == 0);
  if (rc) {
    fprintf(stderr, "%s\n", tgc_error_message(e));
    tgc_error_free(e);
  }
  tgc_program *q = NULL;
  rc = tgc_program_load(path, &q, &e);
  CHECK(rc == 0 && q);
  if (rc) {
    fprintf(stderr, "%s\n", tgc_error_message(e));
    tgc_error_free(e);
  }
  if (q) {
    CHECK_STR(tgc_program_input_dim(q, 0, 0), "B");
    CHECK_STR(tgc_program_output_name(q, 0), "z");
    tgc_session *s = NULL;
    tgc_session_options so;
    tgc_session_options_init(&so);
    so.device = TGC_DEVICE_CPU;
    CHECK(tgc_session_create(q, &so, &s, NULL) == 0);
    tgc_weights *ws = good_weights();
    CHECK(s && tgc_session_bind_weights(s, ws, NULL) == 0);
    tgc_weights_free(ws);
    if (s)
      run_and_check(s, 3);
    tgc_session_free(s);
    tgc_program_free(q);
  }
  /* garbage is an error, not a crash */
  FILE *f = fopen(path, "wb");
  fputs("not an artifact", f);
  fclose(f);
  CHECK(tgc_program_load(path, &q, &e) == -1 && q == NULL);
  CHECK_HAS(tgc_error_message(e), path);
  tgc_error_free(e);
  remove(path);
  rmdir(dir);
}

static void test_random(void) {
  /* the generator of tgc run --random-inputs: floats in [-1, 1), reproducible from the state */
  float a[64], b[64];
  tgc_tensor ta = {TGC_F32, 1, {64}, a, TGC_MEMORY_HOST}, tb = {TGC_F32, 1, {64}, b, TGC_MEMORY_HOST};
  uint64_t s1 = 0, s2 = 0;
  CHECK(tgc_tensor_fill_random(&ta, &s1, NULL) == 0 && tgc_tensor_fill_random(&tb, &s2, NULL) == 0);
  CHECK(memcmp(a, b, sizeof a) == 0 && s1 == s2 && s1 != 0);
  bool in_range = true, distinct = false;
  for (int i = 0; i < 64; i++) {
    in_range = in_range && a[i] >= -1 && a[i] < 1;
    distinct = distinct || a[i] != a[0];
  }
  CHECK(in_range && distinct);
  CHECK(tgc_tensor_fill_random(&ta, &s1, NULL) == 0 && memcmp(a, b, sizeof a) != 0); /* the state moved on */
  tgc_tensor dev = {TGC_F32, 1, {64}, a, TGC_MEMORY_DEVICE};
  CHECK(tgc_tensor_fill_random(&dev, &s1, NULL) == -1);
}

int main(void) {
  test_capture();
  test_version_and_dtypes();
  test_bad_module();
  test_random();
  test_run_error();
  test_weights_path();
  test_save_weights();
  tgc_program *p = compile_good();
  if (p) {
    test_queries(p);
    test_session(p);
    test_devices(p);
    test_cuda_unsupported(p);
    test_save_load(p);
  }
  tgc_program_free(p);
  return CHECK_EXIT();
}

/* run_model: tgc's public C API by example. Compiles a module (.tir, at -O2) or loads a compiled program (.tgc),
 * binds its weights, runs it once on seeded random inputs with every symbol of size 2, and prints each output's
 * name, dtype, shape and L2 norm:
 *
 *   run_model MODEL.tir|MODEL.tgc [--device cpu|cuda]
 *
 * The inputs are those of `tgc run MODEL --random-inputs --seed 0` (tgc_tensor_fill_random, the inputs filled
 * in order from one generator state), so the norms can be checked against tgc run's outputs. Built with
 * -DRUN_MODEL_RT_ONLY it links libtgc_rt alone and loads only .tgc files. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tgc/tgc.h>

static int fail(const char *what, tgc_error *e) {
  fprintf(stderr, "run_model: %s: %s\n", what, tgc_error_message(e));
  tgc_error_free(e);
  return 1;
}

static int usage(void) {
  fprintf(stderr, "usage: run_model MODEL.tir|MODEL.tgc [--device cpu|cuda]\n");
  return 2;
}

/* "f32[2, 16]" */
static void print_type(const tgc_tensor *t) {
  printf("%s[", tgc_dtype_str(t->dtype));
  for (uint32_t d = 0; d < t->rank; d++)
    printf("%s%lld", d ? ", " : "", (long long)t->shape[d]);
  printf("]");
}

int main(int argc, char **argv) {
  const char *model = NULL, *device = "auto";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--device") == 0 && i + 1 < argc)
      device = argv[++i];
    else if (strncmp(argv[i], "--device=", 9) == 0)
      device = argv[i] + 9;
    else if (argv[i][0] != '-' && !model)
      model = argv[i];
    else
      return usage();
  }
  if (!model || (strcmp(device, "cpu") != 0 && strcmp(device, "cuda") != 0 && strcmp(device, "auto") != 0))
    return usage();

  tgc_error *err = NULL;
  tgc_program *prog = NULL;
  size_t len = strlen(model);
  if (len > 4 && strcmp(model + len - 4, ".tgc") == 0) {
    if (tgc_program_load(model, &prog, &err))
      return fail("loading the program", err);
  } else {
#ifdef RUN_MODEL_RT_ONLY
    fprintf(stderr, "run_model: %s: this run_model links libtgc_rt, which loads compiled programs (.tgc) only\n",
            model);
    return 1;
#else
    tgc_compile_options co;
    tgc_compile_options_init(&co); /* -O2 */
    if (strcmp(device, "cpu") == 0)
      co.target = "none"; /* no CUDA images: the CPU backend runs it */
    if (tgc_compile_file(model, &co, &prog, &err))
      return fail("compiling", err);
#endif
  }

  tgc_session_options so;
  tgc_session_options_init(&so);
  so.device = strcmp(device, "cpu") == 0 ? TGC_DEVICE_CPU : strcmp(device, "cuda") == 0 ? TGC_DEVICE_CUDA
                                                                                        : TGC_DEVICE_AUTO;
  tgc_session *s = NULL;
  int rc = 1;
  void **inputs = calloc(tgc_program_num_inputs(prog) + 1, sizeof *inputs);
  int64_t *sizes = calloc(tgc_program_num_symbols(prog) + 1, sizeof *sizes);
  if (!inputs || !sizes) {
    fprintf(stderr, "run_model: out of memory\n");
    goto done;
  }
  if (tgc_session_create(prog, &so, &s, &err)) {
    fail("creating a session", err);
    goto done;
  }

  /* the weights, once: they stay bound for every run of the session */
  const char *wpath = tgc_program_weights_path(prog);
  if (wpath) {
    tgc_weights *w;
    if (tgc_weights_open(wpath, &w, &err)) {
      fail("opening the weights", err);
      goto done;
    }
    int brc = tgc_session_bind_weights(s, w, &err);
    tgc_weights_free(w); /* the session keeps its own reference */
    if (brc) {
      fail("binding the weights", err);
      goto done;
    }
  }

  /* seeded random inputs, every symbol of size 2 */
  for (uint32_t k = 0; k < tgc_program_num_symbols(prog); k++)
    sizes[k] = 2;
  uint64_t state = 0; /* the seed */
  for (uint32_t i = 0; i < tgc_program_num_inputs(prog); i++) {
    tgc_tensor t = {tgc_program_input_dtype(prog, i), tgc_program_input_rank(prog, i), {0}, NULL,
                    TGC_MEMORY_HOST};
    if (tgc_program_input_shape(prog, i, sizes, t.shape, &err)) {
      fail("shaping an input", err);
      goto done;
    }
    inputs[i] = t.data = calloc(tgc_tensor_numel(&t) + 1, tgc_dtype_size(t.dtype));
    if (!t.data) {
      fprintf(stderr, "run_model: out of memory\n");
      goto done;
    }
    if (tgc_tensor_fill_random(&t, &state, &err) || tgc_session_set_input(s, i, &t, &err)) {
      fail("setting an input", err);
      goto done;
    }
  }

  if (tgc_session_run(s, &err)) {
    fail("running", err);
    goto done;
  }
  for (uint32_t i = 0; i < tgc_program_num_outputs(prog); i++) {
    tgc_tensor out;
    if (tgc_session_get_output(s, i, &out, &err)) {
      fail("reading an output", err);
      goto done;
    }
    double sumsq = 0;
    for (size_t e = 0, n = tgc_tensor_numel(&out); e < n; e++) {
      double v = tgc_tensor_get(&out, e);
      sumsq += v * v;
    }
    const char *name = tgc_program_output_name(prog, i);
    printf("output %u %s: ", i, name[0] ? name : "(unnamed)");
    print_type(&out);
    printf(" l2 %.9g\n", sqrt(sumsq));
  }
  printf("device: %s\n", tgc_session_device(s) == TGC_DEVICE_CUDA ? "cuda" : "cpu");
  rc = 0;

done:
  tgc_session_free(s);
  for (uint32_t i = 0; inputs && i < tgc_program_num_inputs(prog); i++)
    free(inputs[i]);
  free(inputs);
  free(sizes);
  tgc_program_free(prog);
  return rc;
}

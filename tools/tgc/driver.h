/* Pieces of the tgc driver shared by its modes. */
#ifndef TGC_DRIVER_H
#define TGC_DRIVER_H

#include <stdbool.h>
struct tgc_rt_artifact;
#include <stddef.h>

/* Reads all of PATH ('-' is standard input); prints an error and returns NULL on failure. */
char *tgc_read_file(const char *path, size_t *len);
struct tgc_rt_artifact;
/* Reads PATH like tgc_read_file; a model.tgc artifact gives its optimized IR text and, when ART is not NULL,
 * stays open in *ART for its kernels (the caller closes it). */
char *tgc_read_input(const char *path, size_t *len, struct tgc_rt_artifact **art);
struct tgc_module;
/* The weights file of module M: OVERRIDE if given, else its 'weights' attribute resolved against the directory
 * of INPUT; NULL when there is none. The caller frees it. */
char *tgc_weights_path(const char *input, const char *override, const struct tgc_module *m);
struct tgc_func;
struct tgc_rt_plan;
struct tgc_rt_tensor;
struct tgc_rt_safetensors;
typedef struct tgc_cuda_run_opts {
  int repeat; /* runs: the first queued step by step, the others replays of one CUDA graph */
  bool time;  /* print compile and run times (graph replays timed with CUDA events) */
  bool profile;  /* time every step once (CUDA events) and print where the time goes */
  bool fallback; /* --device=auto: a module the CUDA backend cannot generate returns 2 (run it on the CPU) */
  const struct tgc_rt_artifact *artifact; /* a model.tgc: its IR is already optimized, its kernels compiled */
} tgc_cuda_run_opts;
/* Runs F (lowered to P) on the GPU; OUTPUTS receive owned tensors (from the first run). The weights are WOPTS's
 * (the CPU backend's options: the same weights, checked by the same tgc_rt_param_weight). 0, or 1 after printing
 * the error, or 2 (with opts->fallback) after a note that the module cannot run on the GPU. */
struct tgc_rt_cpu_opts;
int tgc_run_cuda(struct tgc_module *m, const struct tgc_func *f, const struct tgc_rt_plan *p,
                 const struct tgc_rt_tensor *inputs, struct tgc_rt_tensor *outputs,
                 const struct tgc_rt_cpu_opts *wopts, const tgc_cuda_run_opts *opts);
struct tgc_rt_err;
/* Prints ERR of the runtime step STEP ("reading an --input") to stderr in the driver's format; an empty message
 * (a runtime bug) is fatal in debug builds and else reported naming STEP. */
void tgc_driver_rt_error(const char *step, const struct tgc_rt_err *err);
struct tgc_diag;
struct tgc_cuda_module;
/* The CUDA program of M (codegen/cuda_codegen.h). The backend needs every value's type: a module that lacks some (-O0,
 * or a --passes pipeline without shape-infer) gets shape-infer first, with a note saying so. 1 after reporting
 * shape-infer's errors. Every path to CUDA code (--emit=cuda, -o x.tgc, tgc run --device=cuda) comes here. ENTRY
 * names the function to generate (NULL: "main", else the first; tgc run passes its --entry). */
int tgc_driver_cuda_generate(struct tgc_module *m, const char *entry, struct tgc_diag *diag,
                             struct tgc_cuda_module *cm);
/* `tgc run ...` with ARGV holding the arguments after "run". */
int tgc_driver_run(int argc, char **argv);

#endif

/* Pieces of the tgc driver shared by its modes. */
#ifndef TGC_DRIVER_H
#define TGC_DRIVER_H

#include <stdbool.h>
struct tgc_rt_artifact;
#include <stddef.h>
#include <stdint.h>

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
struct tgc_rt_program;
struct tgc_rt_tensor;
struct tgc_rt_weights;
struct tgc_rt_session;
typedef struct tgc_cuda_run_opts {
  int repeat; /* runs: the first queued step by step, the others replays of one CUDA graph */
  bool time;  /* print compile and run times (graph replays timed with CUDA events) */
  bool profile;  /* time every step once (CUDA events) and print where the time goes */
  bool fallback; /* --device=auto: a module the CUDA backend cannot run returns 2 (run it on the CPU) */
  bool *fp8_gemms; /* out, when not NULL: whether the program that ran has fp8 GEMMs (--check's tolerance) */
} tgc_cuda_run_opts;
/* Runs on the GPU, in a CUDA session: the program made of M (optimized with -O2 first when OPTIMIZE) for the
 * function of CPU's plan, or when M is NULL the program CPU itself (loaded from a model.tgc). INPUTS are the
 * plan's inputs; OUTPUTS receive owned tensors (from the first run); W (may be NULL) is bound once. 0, or 1 after
 * printing the error, or 2 (with opts->fallback) after a note that the program cannot run on the GPU. */
int tgc_run_cuda(struct tgc_module *m, bool optimize, const struct tgc_rt_program *cpu,
                 const struct tgc_rt_tensor *inputs, struct tgc_rt_tensor *outputs, struct tgc_rt_weights *w,
                 const tgc_cuda_run_opts *opts);
struct tgc_rt_err;
/* A CPU session of PROG run once on INPUTS with W bound (may be NULL): OUTPUTS receive views of its outputs,
 * valid until *OUT (the session, for the caller to destroy) ends. -1 with ERR set. */
int tgc_driver_cpu_run(const struct tgc_rt_program *prog, const struct tgc_rt_tensor *inputs,
                       struct tgc_rt_weights *w, struct tgc_rt_tensor *outputs, struct tgc_rt_session **out,
                       struct tgc_rt_err *err);
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
/* When the passes gave module M weights of its own (quantize): writes OUT's weights file, OUT with its .tir or .tgc
 * suffix replaced by .safetensors, holding every weight M's params name (M's own and those of WPATH, its weights
 * file), and points M's 'weights' attribute at it; *NEW_PATH receives the file's path (the caller frees it), NULL
 * when nothing was written. Without an output file (OUT NULL or "-") it notes that the weights are not written.
 * 0, or 1 after printing the error. */
int tgc_driver_write_weights(struct tgc_module *m, const char *wpath, const char *out, char **new_path);
/* Module M, read with the weights file WPATH (resolved), is written to the file OUT: its 'weights' attribute is
 * made to name WPATH from OUT's directory (the file's name when they share a directory, else its absolute path),
 * so the output finds its weights wherever it is written. Nothing changes for standard output or when WPATH does
 * not exist. */
int tgc_driver_point_weights(struct tgc_module *m, const char *wpath, const char *out);
/* An argument of 'tgc CMD' that no option took: an unknown flag is an error, else it is the input file (a second
 * one is an error). 0, or 1 after printing the error. */
int tgc_driver_positional(const char *cmd, const char *a, const char **input);
struct tgc_rt_plan;
/* The weights of plan P from WPATH into *OUT (NULL when P has no params): 0, or 1 after printing why not (no
 * weights file given for a plan with params, or one that does not open). */
int tgc_driver_open_weights(const struct tgc_rt_plan *p, const char *wpath, struct tgc_rt_weights **out);
/* `tgc run ...` with ARGV holding the arguments after "run". */
int tgc_driver_run(int argc, char **argv);
/* `tgc calibrate ...` with ARGV holding the arguments after "calibrate" (calibrate.c). */
int tgc_driver_calibrate(int argc, char **argv);

/* ---- helpers the modes share (run.c, main.c) ---- */

/* Writes DATA to PATH (NULL or '-': standard output) with the runtime's one output writer (atomic for a regular
 * file); 1 after printing the error. */
int tgc_driver_write_output(const char *path, const char *data, size_t len);
/* Accepts "--opt value" and "--opt=value": the value, or NULL when ARGV[*I] is not OPT. A missing or empty value
 * is an error naming OPT (*BAD set). */
const char *tgc_driver_opt_value(int argc, char **argv, int *i, const char *opt, bool *bad);
/* A decimal integer from LO to HI for OPT ("--seed") into *OUT; no sign, spaces or trailing bytes. False after
 * printing the error. */
bool tgc_driver_parse_uint(const char *opt, const char *v, unsigned long long lo, unsigned long long hi,
                           unsigned long long *out);
struct tgc_rt_plan;
struct tgc_sym_sizes;
/* Appends the items of a --dim value V to DIMS (tgc_sym_sizes_parse); 1 after printing the error naming V. */
int tgc_driver_parse_dims(const char *v, struct tgc_sym_sizes *dims);
/* The symbol sizes of random inputs: 2 for each symbol of P, or as DIMS (--dim) says, into SYMS (P->nsyms
 * entries). 1 after printing the error (a --dim naming no symbol of P). */
int tgc_driver_random_sizes(const struct tgc_rt_plan *p, const struct tgc_sym_sizes *dims, int64_t *syms);
/* Input I of P as a new tensor of random values (tgc_rt_fill_random from *RNG) at the symbol sizes SYMS: the one
 * way `tgc run --random-inputs` and `tgc calibrate --random-inputs` make them. 1 after printing the error. */
int tgc_driver_random_input(const struct tgc_rt_plan *p, uint32_t i, const int64_t *syms, uint64_t *rng,
                            struct tgc_rt_tensor *t);
/* Whether P (fusion regions included) has a param step: then it needs weights. */
bool tgc_driver_plan_has_params(const struct tgc_rt_plan *p);

#endif

/* Pieces of the tgc driver shared by its modes. */
#ifndef TGC_DRIVER_H
#define TGC_DRIVER_H

#include <stddef.h>

/* Reads all of PATH ('-' is standard input); prints an error and returns NULL on failure. */
char *tgc_read_file(const char *path, size_t *len);
struct tgc_module;
/* The weights file of module M: OVERRIDE if given, else its 'weights' attribute resolved against the directory
 * of INPUT; NULL when there is none. The caller frees it. */
char *tgc_weights_path(const char *input, const char *override, const struct tgc_module *m);
struct tgc_func;
struct tgc_rt_plan;
struct tgc_rt_tensor;
struct tgc_rt_safetensors;
/* Runs F (lowered to P) on the GPU; OUTPUTS receive owned tensors. 0, or 1 after printing the error. */
int tgc_run_cuda(struct tgc_module *m, const struct tgc_func *f, const struct tgc_rt_plan *p,
                 const struct tgc_rt_tensor *inputs, struct tgc_rt_tensor *outputs,
                 const struct tgc_rt_safetensors *weights, double *ms);
/* `tgc run ...` with ARGV holding the arguments after "run". */
int tgc_driver_run(int argc, char **argv);

#endif

/* The CUDA driver API through dlopen: tgc starts, compiles and runs on the CPU backend where there is no
 * driver, and says clearly why a CUDA run is not possible there. */
#ifndef TGC_RT_CUDA_H
#define TGC_RT_CUDA_H

#include "rt.h"

typedef struct tgc_rt_cuda tgc_rt_cuda;
typedef unsigned long long tgc_rt_devptr;

/* Opens libcuda, initializes it and makes device 0's primary context current; NULL with a clear message when
 * there is no driver or no GPU. */
tgc_rt_cuda *tgc_rt_cuda_open(tgc_rt_err *err);
void tgc_rt_cuda_close(tgc_rt_cuda *c);
/* "sm_90" for the device, and its name. */
const char *tgc_rt_cuda_arch(const tgc_rt_cuda *c);
const char *tgc_rt_cuda_device_name(const tgc_rt_cuda *c);

int tgc_rt_cuda_alloc(tgc_rt_cuda *c, size_t bytes, tgc_rt_devptr *out, tgc_rt_err *err);
void tgc_rt_cuda_free(tgc_rt_cuda *c, tgc_rt_devptr p);
int tgc_rt_cuda_upload(tgc_rt_cuda *c, tgc_rt_devptr dst, const void *src, size_t bytes, tgc_rt_err *err);
int tgc_rt_cuda_download(tgc_rt_cuda *c, void *dst, tgc_rt_devptr src, size_t bytes, tgc_rt_err *err);

/* Loads a CUBIN (or PTX) image and finds NAME in it; the function stays valid until the handle closes. */
int tgc_rt_cuda_load(tgc_rt_cuda *c, const void *image, const char *name, void **func, tgc_rt_err *err);
/* Launches FUNC on a 1-D grid of N threads (blocks of 256) with the kernel parameters PARAMS (pointers to
 * each argument's value) and waits for it. */
int tgc_rt_cuda_launch(tgc_rt_cuda *c, void *func, long long n, void **params, tgc_rt_err *err);

#endif

/* NVRTC through dlopen: compile CUDA C to PTX and CUBIN for a named architecture, without a GPU. */
#ifndef TGC_RT_NVRTC_H
#define TGC_RT_NVRTC_H

#include "rt.h"

typedef struct tgc_rt_nvrtc tgc_rt_nvrtc;

typedef struct tgc_rt_nvrtc_output {
  char *ptx, *cubin, *log;
  size_t ptx_size, cubin_size;
} tgc_rt_nvrtc_output;

/* Loads libnvrtc (TGC_NVRTC_LIBRARY, then the usual names); NULL with a clear message when there is none.
 * CUDA headers (cuda_fp16.h) are found in TGC_CUDA_INCLUDE, else the toolkit found at build time. */
tgc_rt_nvrtc *tgc_rt_nvrtc_open(tgc_rt_err *err);
void tgc_rt_nvrtc_close(tgc_rt_nvrtc *nv);
void tgc_rt_nvrtc_version(const tgc_rt_nvrtc *nv, int *major, int *minor);
/* Compiles SOURCE (a translation unit named NAME) for ARCH ("sm_90", or "compute_90" for PTX only). On failure
 * ERR holds NVRTC's log. */
int tgc_rt_nvrtc_compile(tgc_rt_nvrtc *nv, const char *source, const char *name, const char *arch,
                         tgc_rt_nvrtc_output *out, tgc_rt_err *err);
void tgc_rt_nvrtc_output_free(tgc_rt_nvrtc_output *o);

#endif

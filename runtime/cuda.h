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
/* The same for device GPU (an ordinal) with the work queued on STREAM (a CUstream of that device's primary
 * context, which the caller keeps and destroys), or on a stream of the handle's own when STREAM is NULL. */
tgc_rt_cuda *tgc_rt_cuda_open_device(int gpu, void *stream, tgc_rt_err *err);
void tgc_rt_cuda_close(tgc_rt_cuda *c);
/* Whether a CUDA driver and at least one GPU are present (for --device=auto). */
bool tgc_rt_cuda_available(void);
/* "sm_90" for the device, and its name. */
const char *tgc_rt_cuda_arch(const tgc_rt_cuda *c);
const char *tgc_rt_cuda_device_name(const tgc_rt_cuda *c);

int tgc_rt_cuda_alloc(tgc_rt_cuda *c, size_t bytes, tgc_rt_devptr *out, tgc_rt_err *err);
void tgc_rt_cuda_free(tgc_rt_cuda *c, tgc_rt_devptr p);
int tgc_rt_cuda_upload(tgc_rt_cuda *c, tgc_rt_devptr dst, const void *src, size_t bytes, tgc_rt_err *err);
int tgc_rt_cuda_download(tgc_rt_cuda *c, void *dst, tgc_rt_devptr src, size_t bytes, tgc_rt_err *err);
/* Copies queued on the handle's stream, in order with its other work (SRC must stay valid until it is synced). */
int tgc_rt_cuda_upload_async(tgc_rt_cuda *c, tgc_rt_devptr dst, const void *src, size_t bytes, tgc_rt_err *err);
int tgc_rt_cuda_copy_async(tgc_rt_cuda *c, tgc_rt_devptr dst, tgc_rt_devptr src, size_t bytes, tgc_rt_err *err);

/* Loads a CUBIN (or PTX) image and finds NAME in it; the function stays valid until the handle closes. */
int tgc_rt_cuda_load(tgc_rt_cuda *c, const void *image, const char *name, void **func, tgc_rt_err *err);
/* Everything below is queued on one stream of the handle, in order; tgc_rt_cuda_sync waits for it. */
/* Launches FUNC on GRID blocks of BLOCK threads with the kernel parameters PARAMS (pointers to each argument's
 * value). */
int tgc_rt_cuda_launch(tgc_rt_cuda *c, void *func, const unsigned grid[3], unsigned block, void **params,
                       tgc_rt_err *err);
int tgc_rt_cuda_sync(tgc_rt_cuda *c, tgc_rt_err *err);
void *tgc_rt_cuda_stream(tgc_rt_cuda *c); /* the CUstream, for libraries (cuBLASLt) */
int tgc_rt_cuda_memset32(tgc_rt_cuda *c, tgc_rt_devptr p, unsigned value, size_t count, tgc_rt_err *err);
/* CUDA graphs: the work queued between begin and end is captured (not run) and instantiated into *EXEC. */
int tgc_rt_cuda_capture_begin(tgc_rt_cuda *c, tgc_rt_err *err);
int tgc_rt_cuda_capture_end(tgc_rt_cuda *c, void **exec, tgc_rt_err *err);
int tgc_rt_cuda_graph_launch(tgc_rt_cuda *c, void *exec, tgc_rt_err *err);
void tgc_rt_cuda_graph_destroy(tgc_rt_cuda *c, void *exec);
/* Events, for timing on the GPU. */
int tgc_rt_cuda_event(tgc_rt_cuda *c, void **ev, tgc_rt_err *err);
int tgc_rt_cuda_record(tgc_rt_cuda *c, void *ev, tgc_rt_err *err);
int tgc_rt_cuda_elapsed(tgc_rt_cuda *c, void *start, void *end, float *ms, tgc_rt_err *err);
void tgc_rt_cuda_event_destroy(tgc_rt_cuda *c, void *ev);

#endif

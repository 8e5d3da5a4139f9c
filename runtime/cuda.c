/* CUDA driver API loaded with dlopen (see cuda.h). Only the handful of entry points tgc needs are looked up;
 * every failure becomes a message that names the call and CUDA's own error string. */
#define _POSIX_C_SOURCE 200809L
#include "cuda.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "rt_internal.h"

typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;

struct tgc_rt_cuda {
  void *lib;
  CUdevice dev;
  CUcontext ctx;
  char arch[16];
  char name[256];
  CUmodule *modules;
  size_t nmodules;
  CUresult (*init)(unsigned);
  CUresult (*device_get_count)(int *);
  CUresult (*device_get)(CUdevice *, int);
  CUresult (*device_get_name)(char *, int, CUdevice);
  CUresult (*device_get_attribute)(int *, int, CUdevice);
  CUresult (*primary_retain)(CUcontext *, CUdevice);
  CUresult (*primary_release)(CUdevice);
  CUresult (*ctx_set_current)(CUcontext);
  CUresult (*ctx_synchronize)(void);
  CUresult (*mem_alloc)(tgc_rt_devptr *, size_t);
  CUresult (*mem_free)(tgc_rt_devptr);
  CUresult (*htod)(tgc_rt_devptr, const void *, size_t);
  CUresult (*dtoh)(void *, tgc_rt_devptr, size_t);
  CUresult (*module_load_data)(CUmodule *, const void *);
  CUresult (*module_unload)(CUmodule);
  CUresult (*module_get_function)(CUfunction *, CUmodule, const char *);
  CUresult (*launch)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *, void **,
                     void **);
  CUresult (*get_error_string)(CUresult, const char **);
  CUresult (*stream_create)(CUstream *, unsigned);
  CUresult (*stream_destroy)(CUstream);
  CUresult (*stream_synchronize)(CUstream);
  CUresult (*begin_capture)(CUstream, int);
  CUresult (*end_capture)(CUstream, CUgraph *);
  CUresult (*graph_instantiate)(CUgraphExec *, CUgraph, unsigned long long);
  CUresult (*graph_launch)(CUgraphExec, CUstream);
  CUresult (*graph_exec_destroy)(CUgraphExec);
  CUresult (*graph_destroy)(CUgraph);
  CUresult (*event_create)(CUevent *, unsigned);
  CUresult (*event_destroy)(CUevent);
  CUresult (*event_record)(CUevent, CUstream);
  CUresult (*event_synchronize)(CUevent);
  CUresult (*event_elapsed)(float *, CUevent, CUevent);
  CUresult (*memset_d32)(tgc_rt_devptr, unsigned, size_t, CUstream);
  CUresult (*mem_get_info)(size_t *, size_t *);
  CUresult (*htod_async)(tgc_rt_devptr, const void *, size_t, CUstream);
  CUresult (*dtod_async)(tgc_rt_devptr, tgc_rt_devptr, size_t, CUstream);
  CUstream stream;
  bool own_stream; /* made here (else the caller's, never destroyed) */
};

static int cuda_error(tgc_rt_cuda *c, tgc_rt_err *err, const char *call, CUresult r) {
  const char *s = NULL;
  if (c && c->get_error_string)
    c->get_error_string(r, &s);
  return tgc_rt_errorf(err, "CUDA: %s failed: %s (error %d)", call, s ? s : "unknown error", r);
}

tgc_rt_cuda *tgc_rt_cuda_open(tgc_rt_err *err) { return tgc_rt_cuda_open_device(0, NULL, err); }

tgc_rt_cuda *tgc_rt_cuda_open_device(int gpu, void *stream, tgc_rt_err *err) {
  static const char *const names[] = {"libcuda.so.1", "libcuda.so"};
  void *lib = tgc_rt_dlopen_first(NULL, names, 2);
  if (!lib) {
    tgc_rt_errorf(err, "no CUDA driver: libcuda.so.1 cannot be loaded (is this a machine with an NVIDIA GPU and its "
                       "driver? use --device=cpu)");
    return NULL;
  }
  tgc_rt_cuda *c = tgc_xcalloc(1, sizeof *c);
  c->lib = lib;
  const tgc_rt_dlsym syms[] = {
      {(void **)&c->init, "cuInit"},
      {(void **)&c->device_get_count, "cuDeviceGetCount"},
      {(void **)&c->device_get, "cuDeviceGet"},
      {(void **)&c->device_get_name, "cuDeviceGetName"},
      {(void **)&c->device_get_attribute, "cuDeviceGetAttribute"},
      {(void **)&c->primary_retain, "cuDevicePrimaryCtxRetain"},
      {(void **)&c->primary_release, "cuDevicePrimaryCtxRelease_v2"},
      {(void **)&c->ctx_set_current, "cuCtxSetCurrent"},
      {(void **)&c->ctx_synchronize, "cuCtxSynchronize"},
      {(void **)&c->mem_alloc, "cuMemAlloc_v2"},
      {(void **)&c->mem_free, "cuMemFree_v2"},
      {(void **)&c->htod, "cuMemcpyHtoD_v2"},
      {(void **)&c->dtoh, "cuMemcpyDtoH_v2"},
      {(void **)&c->module_load_data, "cuModuleLoadData"},
      {(void **)&c->module_unload, "cuModuleUnload"},
      {(void **)&c->module_get_function, "cuModuleGetFunction"},
      {(void **)&c->launch, "cuLaunchKernel"},
      {(void **)&c->get_error_string, "cuGetErrorString"},
      {(void **)&c->stream_create, "cuStreamCreate"},
      {(void **)&c->stream_destroy, "cuStreamDestroy_v2"},
      {(void **)&c->stream_synchronize, "cuStreamSynchronize"},
      {(void **)&c->begin_capture, "cuStreamBeginCapture_v2"},
      {(void **)&c->end_capture, "cuStreamEndCapture"},
      {(void **)&c->graph_instantiate, "cuGraphInstantiateWithFlags"},
      {(void **)&c->graph_launch, "cuGraphLaunch"},
      {(void **)&c->graph_exec_destroy, "cuGraphExecDestroy"},
      {(void **)&c->graph_destroy, "cuGraphDestroy"},
      {(void **)&c->event_create, "cuEventCreate"},
      {(void **)&c->event_destroy, "cuEventDestroy_v2"},
      {(void **)&c->event_record, "cuEventRecord"},
      {(void **)&c->event_synchronize, "cuEventSynchronize"},
      {(void **)&c->event_elapsed, "cuEventElapsedTime_v2"},
      {(void **)&c->memset_d32, "cuMemsetD32Async"},
      {(void **)&c->mem_get_info, "cuMemGetInfo_v2"},
      {(void **)&c->htod_async, "cuMemcpyHtoDAsync_v2"},
      {(void **)&c->dtod_async, "cuMemcpyDtoDAsync_v2"},
  };
  if (tgc_rt_dlsym_all(lib, syms, sizeof syms / sizeof syms[0], "the CUDA driver (too old a driver?)", err)) {
    dlclose(lib);
    free(c);
    return NULL;
  }
  int n = 0;
  CUresult r;
  if ((r = c->init(0)) != 0 || (r = c->device_get_count(&n)) != 0 || n == 0 || gpu < 0 || gpu >= n) {
    if (r != 0)
      cuda_error(c, err, "cuInit", r);
    else if (n == 0)
      tgc_rt_errorf(err, "the CUDA driver reports no GPU (use --device=cpu)");
    else
      tgc_rt_errorf(err, "there is no GPU %d: the CUDA driver reports %d", gpu, n);
    dlclose(lib);
    free(c);
    return NULL;
  }
  int major = 0, minor = 0;
  enum { ATTR_CC_MAJOR = 75, ATTR_CC_MINOR = 76 };
  if ((r = c->device_get(&c->dev, gpu)) != 0 || (r = c->device_get_attribute(&major, ATTR_CC_MAJOR, c->dev)) != 0 ||
      (r = c->device_get_attribute(&minor, ATTR_CC_MINOR, c->dev)) != 0 ||
      (r = c->device_get_name(c->name, (int)sizeof c->name, c->dev)) != 0 ||
      (r = c->primary_retain(&c->ctx, c->dev)) != 0 || (r = c->ctx_set_current(c->ctx)) != 0) {
    char what[64];
    snprintf(what, sizeof what, "setting up device %d", gpu);
    cuda_error(c, err, what, r);
    dlclose(lib);
    free(c);
    return NULL;
  }
  snprintf(c->arch, sizeof c->arch, "sm_%d%d", major, minor);
  c->stream = stream;
  c->own_stream = !stream;
  if (!stream && (r = c->stream_create(&c->stream, 1 /* CU_STREAM_NON_BLOCKING */)) != 0) {
    cuda_error(c, err, "cuStreamCreate", r);
    c->primary_release(c->dev);
    dlclose(lib);
    free(c);
    return NULL;
  }
  return c;
}

bool tgc_rt_cuda_available(void) {
  static const char *const names[] = {"libcuda.so.1", "libcuda.so"};
  void *lib = tgc_rt_dlopen_first(NULL, names, 2);
  CUresult (*init)(unsigned) = NULL;
  CUresult (*count)(int *) = NULL;
  const tgc_rt_dlsym syms[] = {{(void **)&init, "cuInit"}, {(void **)&count, "cuDeviceGetCount"}};
  tgc_rt_err err;
  int n = 0;
  return lib && tgc_rt_dlsym_all(lib, syms, 2, "libcuda", &err) == 0 && init(0) == 0 && count(&n) == 0 && n > 0;
}

void tgc_rt_cuda_close(tgc_rt_cuda *c) {
  if (!c)
    return;
  for (size_t i = 0; i < c->nmodules; i++)
    c->module_unload(c->modules[i]);
  free(c->modules);
  if (c->own_stream)
    c->stream_destroy(c->stream);
  c->primary_release(c->dev);
  free(c); /* libcuda stays loaded for the life of the process */
}

const char *tgc_rt_cuda_arch(const tgc_rt_cuda *c) { return c->arch; }
const char *tgc_rt_cuda_device_name(const tgc_rt_cuda *c) { return c->name; }

int tgc_rt_cuda_alloc(tgc_rt_cuda *c, size_t bytes, tgc_rt_devptr *out, tgc_rt_err *err) {
  CUresult r = c->mem_alloc(out, bytes ? bytes : 1);
  if (r != 0) {
    const char *s = NULL;
    c->get_error_string(r, &s);
    size_t fr = 0, total = 0;
    c->mem_get_info(&fr, &total);
    return tgc_rt_errorf(err, "CUDA: out of GPU memory: %zu bytes (%.1f MiB) were needed, %.1f MiB of %.1f MiB are "
                         "free (%s)", bytes, bytes / 1048576.0, fr / 1048576.0, total / 1048576.0, s ? s : "error");
  }
  return 0;
}

void tgc_rt_cuda_free(tgc_rt_cuda *c, tgc_rt_devptr p) {
  if (p)
    c->mem_free(p);
}

int tgc_rt_cuda_upload(tgc_rt_cuda *c, tgc_rt_devptr dst, const void *src, size_t bytes, tgc_rt_err *err) {
  CUresult r = bytes ? c->htod(dst, src, bytes) : 0;
  return r ? cuda_error(c, err, "cuMemcpyHtoD", r) : 0;
}

int tgc_rt_cuda_download(tgc_rt_cuda *c, void *dst, tgc_rt_devptr src, size_t bytes, tgc_rt_err *err) {
  CUresult r = bytes ? c->dtoh(dst, src, bytes) : 0;
  return r ? cuda_error(c, err, "cuMemcpyDtoH", r) : 0;
}

int tgc_rt_cuda_upload_async(tgc_rt_cuda *c, tgc_rt_devptr dst, const void *src, size_t bytes, tgc_rt_err *err) {
  CUresult r = bytes ? c->htod_async(dst, src, bytes, c->stream) : 0;
  return r ? cuda_error(c, err, "cuMemcpyHtoDAsync", r) : 0;
}

int tgc_rt_cuda_copy_async(tgc_rt_cuda *c, tgc_rt_devptr dst, tgc_rt_devptr src, size_t bytes, tgc_rt_err *err) {
  CUresult r = bytes ? c->dtod_async(dst, src, bytes, c->stream) : 0;
  return r ? cuda_error(c, err, "cuMemcpyDtoDAsync", r) : 0;
}

int tgc_rt_cuda_load(tgc_rt_cuda *c, const void *image, const char *name, void **func, tgc_rt_err *err) {
  CUmodule m;
  CUresult r = c->module_load_data(&m, image);
  if (r != 0)
    return cuda_error(c, err, "cuModuleLoadData", r);
  c->modules = tgc_xrealloc(c->modules, sizeof *c->modules * (c->nmodules + 1));
  c->modules[c->nmodules++] = m;
  CUfunction f;
  r = c->module_get_function(&f, m, name);
  if (r != 0)
    return cuda_error(c, err, "cuModuleGetFunction", r);
  *func = f;
  return 0;
}

int tgc_rt_cuda_launch(tgc_rt_cuda *c, void *func, const unsigned grid[3], unsigned block, void **params,
                       tgc_rt_err *err) {
  if (!grid[0] || !grid[1] || !grid[2])
    return 0;
  CUresult r = c->launch((CUfunction)func, grid[0], grid[1], grid[2], block, 1, 1, 0, c->stream, params, NULL);
  return r ? cuda_error(c, err, "cuLaunchKernel", r) : 0;
}

int tgc_rt_cuda_sync(tgc_rt_cuda *c, tgc_rt_err *err) {
  CUresult r = c->stream_synchronize(c->stream);
  return r ? cuda_error(c, err, "the GPU work (cuStreamSynchronize)", r) : 0;
}

void *tgc_rt_cuda_stream(tgc_rt_cuda *c) { return c->stream; }

int tgc_rt_cuda_memset32(tgc_rt_cuda *c, tgc_rt_devptr p, unsigned value, size_t count, tgc_rt_err *err) {
  CUresult r = c->memset_d32(p, value, count, c->stream);
  return r ? cuda_error(c, err, "cuMemsetD32Async", r) : 0;
}

int tgc_rt_cuda_capture_begin(tgc_rt_cuda *c, tgc_rt_err *err) {
  CUresult r = c->begin_capture(c->stream, 2 /* CU_STREAM_CAPTURE_MODE_RELAXED */);
  return r ? cuda_error(c, err, "cuStreamBeginCapture", r) : 0;
}

int tgc_rt_cuda_capture_end(tgc_rt_cuda *c, void **exec, tgc_rt_err *err) {
  CUgraph g = NULL;
  CUgraphExec x = NULL;
  CUresult r = c->end_capture(c->stream, &g);
  if (r)
    return cuda_error(c, err, "cuStreamEndCapture", r);
  r = c->graph_instantiate(&x, g, 0);
  c->graph_destroy(g);
  if (r)
    return cuda_error(c, err, "cuGraphInstantiate", r);
  *exec = x;
  return 0;
}

int tgc_rt_cuda_graph_launch(tgc_rt_cuda *c, void *exec, tgc_rt_err *err) {
  CUresult r = c->graph_launch((CUgraphExec)exec, c->stream);
  return r ? cuda_error(c, err, "cuGraphLaunch", r) : 0;
}

void tgc_rt_cuda_graph_destroy(tgc_rt_cuda *c, void *exec) {
  if (exec)
    c->graph_exec_destroy((CUgraphExec)exec);
}

int tgc_rt_cuda_event(tgc_rt_cuda *c, void **ev, tgc_rt_err *err) {
  CUevent e = NULL;
  CUresult r = c->event_create(&e, 0);
  *ev = e;
  return r ? cuda_error(c, err, "cuEventCreate", r) : 0;
}

int tgc_rt_cuda_record(tgc_rt_cuda *c, void *ev, tgc_rt_err *err) {
  CUresult r = c->event_record((CUevent)ev, c->stream);
  return r ? cuda_error(c, err, "cuEventRecord", r) : 0;
}

int tgc_rt_cuda_elapsed(tgc_rt_cuda *c, void *start, void *end, float *ms, tgc_rt_err *err) {
  CUresult r = c->event_synchronize((CUevent)end);
  if (!r)
    r = c->event_elapsed(ms, (CUevent)start, (CUevent)end);
  return r ? cuda_error(c, err, "cuEventElapsedTime", r) : 0;
}

void tgc_rt_cuda_event_destroy(tgc_rt_cuda *c, void *ev) {
  if (ev)
    c->event_destroy((CUevent)ev);
}

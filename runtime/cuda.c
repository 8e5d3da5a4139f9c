/* CUDA driver API loaded with dlopen (see cuda.h). Only the handful of entry points tgc needs are looked up;
 * every failure becomes a message that names the call and CUDA's own error string. */
#define _POSIX_C_SOURCE 200809L
#include "cuda.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;

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
};

static int cuda_error(tgc_rt_cuda *c, tgc_rt_err *err, const char *call, CUresult r) {
  const char *s = NULL;
  if (c && c->get_error_string)
    c->get_error_string(r, &s);
  return tgc_rt_errorf(err, "CUDA: %s failed: %s (error %d)", call, s ? s : "unknown error", r);
}

tgc_rt_cuda *tgc_rt_cuda_open(tgc_rt_err *err) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    lib = dlopen("libcuda.so", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    tgc_rt_errorf(err, "no CUDA driver: libcuda.so.1 cannot be loaded (is this a machine with an NVIDIA GPU and its "
                       "driver? use --device=cpu)");
    return NULL;
  }
  tgc_rt_cuda *c = tgc_xcalloc(1, sizeof *c);
  c->lib = lib;
  struct {
    void **slot;
    const char *name;
  } syms[] = {
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
  };
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    void *p = dlsym(lib, syms[i].name);
    if (!p) {
      tgc_rt_errorf(err, "the CUDA driver lacks %s (too old a driver?)", syms[i].name);
      dlclose(lib);
      free(c);
      return NULL;
    }
    memcpy(syms[i].slot, &p, sizeof p);
  }
  int n = 0;
  CUresult r;
  if ((r = c->init(0)) != 0 || (r = c->device_get_count(&n)) != 0 || n == 0) {
    if (r != 0)
      cuda_error(c, err, "cuInit", r);
    else
      tgc_rt_errorf(err, "the CUDA driver reports no GPU (use --device=cpu)");
    dlclose(lib);
    free(c);
    return NULL;
  }
  int major = 0, minor = 0;
  enum { ATTR_CC_MAJOR = 75, ATTR_CC_MINOR = 76 };
  if ((r = c->device_get(&c->dev, 0)) != 0 || (r = c->device_get_attribute(&major, ATTR_CC_MAJOR, c->dev)) != 0 ||
      (r = c->device_get_attribute(&minor, ATTR_CC_MINOR, c->dev)) != 0 ||
      (r = c->device_get_name(c->name, (int)sizeof c->name, c->dev)) != 0 ||
      (r = c->primary_retain(&c->ctx, c->dev)) != 0 || (r = c->ctx_set_current(c->ctx)) != 0) {
    cuda_error(c, err, "setting up device 0", r);
    dlclose(lib);
    free(c);
    return NULL;
  }
  snprintf(c->arch, sizeof c->arch, "sm_%d%d", major, minor);
  return c;
}

void tgc_rt_cuda_close(tgc_rt_cuda *c) {
  if (!c)
    return;
  for (size_t i = 0; i < c->nmodules; i++)
    c->module_unload(c->modules[i]);
  free(c->modules);
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
    return tgc_rt_errorf(err, "CUDA: cannot allocate %zu bytes of GPU memory: %s", bytes, s ? s : "error");
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

int tgc_rt_cuda_launch(tgc_rt_cuda *c, void *func, long long n, void **params, tgc_rt_err *err) {
  if (n <= 0)
    return 0;
  long long blocks = (n + 255) / 256;
  if (blocks > 2147483647LL)
    return tgc_rt_errorf(err, "CUDA: %lld elements are too many for one launch", n);
  CUresult r = c->launch((CUfunction)func, (unsigned)blocks, 1, 1, 256, 1, 1, 0, NULL, params, NULL);
  if (r != 0)
    return cuda_error(c, err, "cuLaunchKernel", r);
  r = c->ctx_synchronize();
  return r ? cuda_error(c, err, "the kernel (cuCtxSynchronize)", r) : 0;
}

/* NVRTC, opened with dlopen: tgc builds and starts without the CUDA toolkit, and compiles CUDA C for a named
 * GPU architecture on any machine that has libnvrtc (no GPU or driver needed). */
#define _POSIX_C_SOURCE 200809L
#include "nvrtc.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "rt_internal.h"

/* The few NVRTC entry points tgc uses, with their C types (nvrtc.h is not needed to build tgc). */
typedef int nvrtcResult;
typedef struct _nvrtcProgram *nvrtcProgram;

struct tgc_rt_nvrtc {
  void *lib;
  int major, minor;
  const char *include_dir;
  nvrtcResult (*version)(int *, int *);
  const char *(*error_string)(nvrtcResult);
  nvrtcResult (*create)(nvrtcProgram *, const char *, const char *, int, const char *const *, const char *const *);
  nvrtcResult (*destroy)(nvrtcProgram *);
  nvrtcResult (*compile)(nvrtcProgram, int, const char *const *);
  nvrtcResult (*log_size)(nvrtcProgram, size_t *);
  nvrtcResult (*log)(nvrtcProgram, char *);
  nvrtcResult (*ptx_size)(nvrtcProgram, size_t *);
  nvrtcResult (*ptx)(nvrtcProgram, char *);
  nvrtcResult (*cubin_size)(nvrtcProgram, size_t *);
  nvrtcResult (*cubin)(nvrtcProgram, char *);
};

#ifndef TGC_CUDA_INCLUDE_DIR
#define TGC_CUDA_INCLUDE_DIR "/usr/local/cuda/include"
#endif

tgc_rt_nvrtc *tgc_rt_nvrtc_open(tgc_rt_err *err) {
  static const char *const names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so",
                                      "/usr/local/cuda/lib64/libnvrtc.so.13", "/usr/local/cuda/lib64/libnvrtc.so.12",
                                      "/usr/local/cuda/lib64/libnvrtc.so"};
  void *lib = tgc_rt_dlopen_first("TGC_NVRTC_LIBRARY", names, sizeof names / sizeof names[0]);
  if (!lib) {
    tgc_rt_errorf(err, "NVRTC is not available: cannot load libnvrtc (install the CUDA toolkit, or set "
                       "TGC_NVRTC_LIBRARY to its path)");
    return NULL;
  }
  tgc_rt_nvrtc *nv = tgc_xcalloc(1, sizeof *nv);
  nv->lib = lib;
  const tgc_rt_dlsym syms[] = {
      {(void **)&nv->version, "nvrtcVersion"},
      {(void **)&nv->error_string, "nvrtcGetErrorString"},
      {(void **)&nv->create, "nvrtcCreateProgram"},
      {(void **)&nv->destroy, "nvrtcDestroyProgram"},
      {(void **)&nv->compile, "nvrtcCompileProgram"},
      {(void **)&nv->log_size, "nvrtcGetProgramLogSize"},
      {(void **)&nv->log, "nvrtcGetProgramLog"},
      {(void **)&nv->ptx_size, "nvrtcGetPTXSize"},
      {(void **)&nv->ptx, "nvrtcGetPTX"},
      {(void **)&nv->cubin_size, "nvrtcGetCUBINSize"},
      {(void **)&nv->cubin, "nvrtcGetCUBIN"},
  };
  if (tgc_rt_dlsym_all(lib, syms, sizeof syms / sizeof syms[0], "libnvrtc", err)) {
    dlclose(lib);
    free(nv);
    return NULL;
  }
  nv->version(&nv->major, &nv->minor);
  nv->include_dir = getenv("TGC_CUDA_INCLUDE") ? getenv("TGC_CUDA_INCLUDE") : TGC_CUDA_INCLUDE_DIR;
  return nv;
}

void tgc_rt_nvrtc_close(tgc_rt_nvrtc *nv) {
  /* libnvrtc stays loaded: unloading it gains nothing, and keeps its own allocations attributable (it keeps
   * some for the life of the process, which LeakSanitizer is told about in test/lsan.supp) */
  free(nv);
}

void tgc_rt_nvrtc_version(const tgc_rt_nvrtc *nv, int *major, int *minor) {
  *major = nv->major;
  *minor = nv->minor;
}

int tgc_rt_nvrtc_compile(tgc_rt_nvrtc *nv, const char *source, const char *name, const char *arch,
                         tgc_rt_nvrtc_output *out, tgc_rt_err *err) {
  memset(out, 0, sizeof *out);
  nvrtcProgram prog;
  nvrtcResult r = nv->create(&prog, source, name, 0, NULL, NULL);
  if (r != 0)
    return tgc_rt_errorf(err, "%s: nvrtcCreateProgram: %s", name, nv->error_string(r));
  char archopt[64], incopt[1024];
  snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", arch);
  snprintf(incopt, sizeof incopt, "-I%s", nv->include_dir);
  const char *opts[] = {archopt, incopt, "--std=c++17", "-default-device"};
  r = nv->compile(prog, 4, opts);
  size_t n = 0;
  nv->log_size(prog, &n);
  char *log = tgc_xmalloc(n + 1);
  log[0] = 0;
  if (n)
    nv->log(prog, log);
  if (r != 0) {
    tgc_rt_errorf(err, "%s: NVRTC failed (%s) for %s:\n%.900s", name, nv->error_string(r), arch, log);
    free(log);
    nv->destroy(&prog);
    return -1;
  }
  out->log = log;
  /* a real architecture (sm_XX) gives a CUBIN; a virtual one (compute_XX) only PTX */
  if (nv->ptx_size(prog, &n) == 0 && n) {
    out->ptx = tgc_xmalloc(n);
    nv->ptx(prog, out->ptx);
    out->ptx_size = n;
  }
  if (strncmp(arch, "sm_", 3) == 0 && nv->cubin_size(prog, &n) == 0 && n) {
    out->cubin = tgc_xmalloc(n);
    nv->cubin(prog, out->cubin);
    out->cubin_size = n;
  }
  nv->destroy(&prog);
  return 0;
}

void tgc_rt_nvrtc_output_free(tgc_rt_nvrtc_output *o) {
  free(o->log);
  free(o->ptx);
  free(o->cubin);
  memset(o, 0, sizeof *o);
}

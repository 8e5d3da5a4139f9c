/* Loading optional shared libraries (libcuda, libnvrtc, libcublasLt) at run time; see rt_internal.h. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

void *tgc_rt_dlopen_first(const char *env, const char *const *names, size_t n) {
  void *lib = NULL;
  const char *path = env ? getenv(env) : NULL;
  if (path)
    lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  for (size_t i = 0; !lib && i < n; i++)
    lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  return lib;
}

int tgc_rt_dlsym_all(void *lib, const tgc_rt_dlsym *syms, size_t n, const char *what, tgc_rt_err *err) {
  for (size_t i = 0; i < n; i++) {
    void *p = dlsym(lib, syms[i].name);
    if (!p)
      return tgc_rt_errorf(err, "%s lacks %s", what, syms[i].name);
    memcpy(syms[i].slot, &p, sizeof p); /* object-to-function pointer conversion, as POSIX allows */
  }
  return 0;
}

/* Helpers shared by the files of libtgc_rt and not part of its API (rt.h): exact rounding of
 * doubles and 64-bit integers to the narrow float formats and read-only file mappings. */
#ifndef TGC_RT_INTERNAL_H
#define TGC_RT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "rt.h"

/* The encodings of X in DT (F16, BF16, F8E4M3 or F8E5M2), rounded once to nearest even. tgc_rt_set
 * uses these rather than the f32 entry points so that a double is not rounded twice (first to f32).
 */
uint16_t tgc_rt_encode_f64(tgc_dtype dt, double x);
uint16_t tgc_rt_encode_i64(tgc_dtype dt, int64_t x);

/* A whole file, read-only: memory-mapped when non-empty (DATA is NULL and LEN 0 for an empty file).
 */
typedef struct tgc_rt_mapped {
  const unsigned char *data;
  size_t len;
} tgc_rt_mapped;

int tgc_rt_map_file(const char *path, tgc_rt_mapped *m, tgc_rt_err *err);
void tgc_rt_unmap_file(tgc_rt_mapped *m);

/* Optional libraries: the first of $ENV (when ENV is set) and NAMES that dlopen loads, or NULL; then every
 * entry point of SYMS stored through its slot, or an error "WHAT lacks NAME". */
void *tgc_rt_dlopen_first(const char *env, const char *const *names, size_t n);
typedef struct tgc_rt_dlsym {
  void **slot;
  const char *name;
} tgc_rt_dlsym;
int tgc_rt_dlsym_all(void *lib, const tgc_rt_dlsym *syms, size_t n, const char *what, tgc_rt_err *err);

#endif

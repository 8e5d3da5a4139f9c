/* The on-disk cache of NVRTC results ($TGC_CACHE_DIR, default ~/.cache/tgc): keyed by an xxHash of the source,
 * kernel name, target, NVRTC version and options; atomic writes; corrupt entries recompiled. */
#ifndef TGC_RT_KCACHE_H
#define TGC_RT_KCACHE_H

#include "nvrtc.h"

typedef struct tgc_rt_kcache_stats {
  unsigned hits, misses, corrupt, write_errors;
} tgc_rt_kcache_stats;

/* The cache directory: $TGC_CACHE_DIR, else $HOME/.cache/tgc; -1 when neither is set. */
int tgc_rt_kcache_dir(char *out, size_t n);
uint64_t tgc_rt_kcache_key(const char *source, const char *name, const char *arch, int nvrtc_major, int nvrtc_minor);
/* The compiled image (CUBIN for sm_XX, PTX for compute_XX) of SOURCE, from the cache or compiled and stored; the
 * caller frees *IMAGE. Counts the outcome in STATS. */
int tgc_rt_kcache_compile(tgc_rt_nvrtc *nv, const char *source, const char *name, const char *arch,
                          tgc_rt_kcache_stats *stats, void **image, size_t *size, tgc_rt_err *err);

#endif

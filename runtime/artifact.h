/* The model.tgc artifact: a versioned, checksummed container of named sections. tgc writes the optimized IR,
 * the target, the NVRTC version and every distinct kernel of the CUDA program as CUBIN for the target and PTX
 * as a fallback (sections "ir", "target", "nvrtc", "kernel/<key>.cubin", "kernel/<key>.ptx", where <key> is the
 * kernel's hash, tgc_rt_kernel_key). The container itself knows nothing of the IR.
 *
 * Layout (little-endian): "TGCART\0\0", u32 version, u32 section count, u64 xxHash3 of every byte of the file
 * but the hash itself (the magic, version and count included: in version 1 the count was outside the checksum, so
 * a lowered count dropped kernels silently); then per section a 48-byte entry (name, NUL-padded to 32 bytes; u64
 * offset; u64 size); then the sections' bytes. */
#ifndef TGC_RT_ARTIFACT_H
#define TGC_RT_ARTIFACT_H

#include "rt.h"

#define TGC_RT_ARTIFACT_VERSION 2u

typedef struct tgc_rt_section {
  const char *name; /* at most 31 bytes */
  const void *data;
  size_t size;
} tgc_rt_section;

typedef struct tgc_rt_artifact tgc_rt_artifact;

/* Whether DATA (LEN bytes) starts like an artifact. */
bool tgc_rt_artifact_magic(const void *data, size_t len);
/* Writes the sections to PATH atomically (a temporary file, synced, then renamed). */
int tgc_rt_artifact_write(const char *path, const tgc_rt_section *sections, size_t n, tgc_rt_err *err);
/* Reads and validates PATH: magic, version, checksum, every entry inside the file. */
int tgc_rt_artifact_open(const char *path, tgc_rt_artifact **out, tgc_rt_err *err);
void tgc_rt_artifact_close(tgc_rt_artifact *a);
/* The section NAME, or NULL. */
const void *tgc_rt_artifact_find(const tgc_rt_artifact *a, const char *name, size_t *size);

/* The key of a kernel's source in artifacts (xxHash3-64, as 16 hex digits plus NUL in OUT). */
void tgc_rt_kernel_key(const char *source, char out[17]);

#endif

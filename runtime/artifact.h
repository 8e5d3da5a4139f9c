/* The model.tgc artifact: a versioned, checksummed container of named sections. tgc writes the program
 * (runtime/program.h) as the section "program" (JSON: the plan, the CUDA program, the weights reference), each
 * distinct kernel source as "kernel/<key>.cu" and its images as "kernel/<key>.cubin" (for the target) and
 * "kernel/<key>.ptx" (the fallback), where <key> is the source's hash (tgc_rt_kernel_key), the memory plan as
 * "plan", the optimized IR as "ir" (for inspection and `tgc FILE.tgc`), the target and the NVRTC version
 * ("target", "nvrtc"). The container itself knows nothing of programs or IR.
 *
 * Layout (little-endian): "TGCART\0\0", u32 version, u32 section count, u64 xxHash3 of every byte of the file
 * but the hash itself (the magic, version and count included: in version 1 the count was outside the checksum, so
 * a lowered count dropped kernels silently); then per section a 48-byte entry (name, NUL-padded to 32 bytes; u64
 * offset; u64 size); then the sections' bytes. Version 3 added the "program" and "kernel/<key>.cu" sections: the
 * runtime loads a program without the compiler, so older artifacts are refused with a request to recompile. */
#ifndef TGC_RT_ARTIFACT_H
#define TGC_RT_ARTIFACT_H

#include "rt.h"

#define TGC_RT_ARTIFACT_VERSION 3u

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
/* The sections in file order: their count, and section I (its name and data point into the mapping). */
size_t tgc_rt_artifact_count(const tgc_rt_artifact *a);
tgc_rt_section tgc_rt_artifact_section(const tgc_rt_artifact *a, size_t i);

/* The key of a kernel's source in artifacts (xxHash3-64, as 16 hex digits plus NUL in OUT). */
void tgc_rt_kernel_key(const char *source, char out[17]);

#endif

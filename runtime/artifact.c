/* The model.tgc container (see artifact.h). */
#define _POSIX_C_SOURCE 200809L
#include "artifact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "arena.h"
#include "rt_internal.h"

#define HEADER 24
#define ENTRY 48
#define NAME 32
#define SUMMED_HEAD 16 /* the header bytes before the checksum, which it covers */

struct tgc_rt_artifact {
  tgc_rt_mapped map; /* the whole file, read-only */
  uint32_t n;
};

static const char MAGIC[8] = {'T', 'G', 'C', 'A', 'R', 'T', 0, 0};

static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

/* The hash of every byte of the file of SIZE bytes at B but the 8 that hold it. */
static uint64_t checksum(const unsigned char *b, size_t size) {
  XXH3_state_t *st = XXH3_createState();
  XXH3_64bits_reset(st);
  XXH3_64bits_update(st, b, SUMMED_HEAD);
  XXH3_64bits_update(st, b + HEADER, size - HEADER);
  uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

bool tgc_rt_artifact_magic(const void *data, size_t len) { return len >= 8 && memcmp(data, MAGIC, 8) == 0; }

void tgc_rt_kernel_key(const char *source, char out[17]) {
  snprintf(out, 17, "%016llx", (unsigned long long)XXH3_64bits(source, strlen(source)));
}

int tgc_rt_artifact_write(const char *path, const tgc_rt_section *s, size_t n, tgc_rt_err *err) {
  for (size_t i = 0; i < n; i++)
    if (strlen(s[i].name) >= NAME)
      return tgc_rt_errorf(err, "artifact section name '%s' is too long", s[i].name);
  /* the header and the section table; the sections' bytes are written from where they are */
  size_t table = HEADER + ENTRY * n, off = table;
  unsigned char *head = tgc_xcalloc(table, 1);
  memcpy(head, MAGIC, 8);
  put64(head + 8, (uint64_t)TGC_RT_ARTIFACT_VERSION | (uint64_t)n << 32);
  for (size_t i = 0; i < n; i++) {
    unsigned char *e = head + HEADER + ENTRY * i;
    memcpy(e, s[i].name, strlen(s[i].name));
    put64(e + NAME, off);
    put64(e + NAME + 8, s[i].size);
    off += s[i].size;
  }
  XXH3_state_t *st = XXH3_createState();
  XXH3_64bits_reset(st);
  XXH3_64bits_update(st, head, SUMMED_HEAD); /* magic, version and section count */
  XXH3_64bits_update(st, head + HEADER, table - HEADER);
  tgc_rt_chunk *chunks = tgc_xcalloc(n + 1, sizeof *chunks);
  chunks[0] = (tgc_rt_chunk){head, table};
  for (size_t i = 0; i < n; i++) {
    XXH3_64bits_update(st, s[i].data, s[i].size);
    chunks[i + 1] = (tgc_rt_chunk){s[i].data, s[i].size};
  }
  put64(head + 16, XXH3_64bits_digest(st));
  XXH3_freeState(st);
  int rc = tgc_rt_write_file(path, chunks, n + 1, 0, err);
  free(chunks);
  free(head);
  return rc;
}

int tgc_rt_artifact_open(const char *path, tgc_rt_artifact **out, tgc_rt_err *err) {
  tgc_rt_artifact *a = tgc_xcalloc(1, sizeof *a);
  if (tgc_rt_map_file(path, &a->map, err)) {
    free(a);
    return -1;
  }
  const unsigned char *b = a->map.data;
  size_t size = a->map.len;
  const char *why = NULL;
  if (size < HEADER || !tgc_rt_artifact_magic(b, size))
    why = "is not a tgc artifact (bad magic)";
  if (!why) {
    uint64_t vn = get64(b + 8);
    a->n = (uint32_t)(vn >> 32);
    if ((uint32_t)vn < TGC_RT_ARTIFACT_VERSION) {
      tgc_rt_errorf(err, "'%s' was made by an older tgc (format %u); recompile it with tgc -o FILE.tgc", path,
                    (uint32_t)vn);
      tgc_rt_artifact_close(a);
      return -1;
    }
    if ((uint32_t)vn != TGC_RT_ARTIFACT_VERSION) {
      tgc_rt_errorf(err, "'%s' is a version %u artifact; this tgc reads version %u (rebuild it with tgc -O2 ... -o "
                    "FILE.tgc)", path, (uint32_t)vn, TGC_RT_ARTIFACT_VERSION);
      tgc_rt_artifact_close(a);
      return -1;
    }
    if ((uint64_t)a->n > (size - HEADER) / ENTRY)
      why = "is truncated (its section table is cut off)";
    else if (get64(b + 16) != checksum(b, size))
      why = "is corrupt or truncated (checksum mismatch)";
  }
  for (uint32_t i = 0; !why && i < a->n; i++) {
    const unsigned char *e = b + HEADER + ENTRY * i;
    uint64_t off = get64(e + NAME), sz = get64(e + NAME + 8);
    if (e[NAME - 1] != 0 || off > size || sz > size - off)
      why = "has a section outside the file";
  }
  if (why) {
    tgc_rt_errorf(err, "'%s' %s", path, why);
    tgc_rt_artifact_close(a);
    return -1;
  }
  *out = a;
  return 0;
}

void tgc_rt_artifact_close(tgc_rt_artifact *a) {
  if (!a)
    return;
  tgc_rt_unmap_file(&a->map);
  free(a);
}

const void *tgc_rt_artifact_find(const tgc_rt_artifact *a, const char *name, size_t *size) {
  for (uint32_t i = 0; i < a->n; i++) {
    const unsigned char *e = a->map.data + HEADER + ENTRY * i;
    if (strncmp((const char *)e, name, NAME) == 0) {
      *size = (size_t)get64(e + NAME + 8);
      return a->map.data + get64(e + NAME);
    }
  }
  return NULL;
}

size_t tgc_rt_artifact_count(const tgc_rt_artifact *a) { return a->n; }

tgc_rt_section tgc_rt_artifact_section(const tgc_rt_artifact *a, size_t i) {
  const unsigned char *e = a->map.data + HEADER + ENTRY * i;
  /* tgc_rt_artifact_open checked that every name is NUL-terminated and every section inside the file */
  return (tgc_rt_section){(const char *)e, a->map.data + get64(e + NAME), (size_t)get64(e + NAME + 8)};
}

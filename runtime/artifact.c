/* The model.tgc container (see artifact.h). */
#define _POSIX_C_SOURCE 200809L
#include "artifact.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "arena.h"

#define HEADER 24
#define ENTRY 48
#define NAME 32

struct tgc_rt_artifact {
  unsigned char *bytes;
  size_t size;
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

bool tgc_rt_artifact_magic(const void *data, size_t len) { return len >= 8 && memcmp(data, MAGIC, 8) == 0; }

void tgc_rt_kernel_key(const char *source, char out[17]) {
  snprintf(out, 17, "%016llx", (unsigned long long)XXH3_64bits(source, strlen(source)));
}

int tgc_rt_artifact_write(const char *path, const tgc_rt_section *s, size_t n, tgc_rt_err *err) {
  size_t size = HEADER + ENTRY * n;
  for (size_t i = 0; i < n; i++) {
    if (strlen(s[i].name) >= NAME)
      return tgc_rt_errorf(err, "artifact section name '%s' is too long", s[i].name);
    size += s[i].size;
  }
  unsigned char *b = tgc_xcalloc(size, 1);
  memcpy(b, MAGIC, 8);
  put64(b + 8, (uint64_t)TGC_RT_ARTIFACT_VERSION | (uint64_t)n << 32);
  size_t off = HEADER + ENTRY * n;
  for (size_t i = 0; i < n; i++) {
    unsigned char *e = b + HEADER + ENTRY * i;
    memcpy(e, s[i].name, strlen(s[i].name));
    put64(e + NAME, off);
    put64(e + NAME + 8, s[i].size);
    if (s[i].size)
      memcpy(b + off, s[i].data, s[i].size);
    off += s[i].size;
  }
  put64(b + 16, XXH3_64bits(b + HEADER, size - HEADER));
  size_t plen = strlen(path);
  char *tmp = tgc_xmalloc(plen + 32);
  snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  bool ok = f && fwrite(b, 1, size, f) == size && fflush(f) == 0 && fsync(fileno(f)) == 0;
  int e = errno;
  if (f && fclose(f) != 0 && ok) {
    ok = false;
    e = errno;
  }
  free(b);
  if (!ok || rename(tmp, path) != 0) {
    if (ok)
      e = errno;
    remove(tmp);
    free(tmp);
    return tgc_rt_errorf(err, "cannot write '%s': %s", path, strerror(e));
  }
  free(tmp);
  return 0;
}

int tgc_rt_artifact_open(const char *path, tgc_rt_artifact **out, tgc_rt_err *err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return tgc_rt_errorf(err, "cannot open '%s': %s", path, strerror(errno));
  tgc_rt_artifact *a = tgc_xcalloc(1, sizeof *a);
  size_t cap = 1 << 16;
  a->bytes = tgc_xmalloc(cap);
  size_t r;
  while ((r = fread(a->bytes + a->size, 1, cap - a->size, f)) > 0) {
    a->size += r;
    if (a->size == cap) {
      cap *= 2;
      a->bytes = tgc_xrealloc(a->bytes, cap);
    }
  }
  bool rerr = ferror(f);
  fclose(f);
  const char *why = NULL;
  if (rerr)
    why = "cannot be read";
  else if (a->size < HEADER || !tgc_rt_artifact_magic(a->bytes, a->size))
    why = "is not a tgc artifact (bad magic)";
  if (!why) {
    uint64_t vn = get64(a->bytes + 8);
    a->n = (uint32_t)(vn >> 32);
    if ((uint32_t)vn != TGC_RT_ARTIFACT_VERSION) {
      tgc_rt_errorf(err, "'%s' is a version %u artifact; this tgc reads version %u (rebuild it with tgc -O2 ... -o "
                    "FILE.tgc)", path, (uint32_t)vn, TGC_RT_ARTIFACT_VERSION);
      tgc_rt_artifact_close(a);
      return -1;
    }
    if ((uint64_t)a->n > (a->size - HEADER) / ENTRY)
      why = "is truncated (its section table is cut off)";
    else if (get64(a->bytes + 16) != XXH3_64bits(a->bytes + HEADER, a->size - HEADER))
      why = "is corrupt or truncated (checksum mismatch)";
  }
  for (uint32_t i = 0; !why && i < a->n; i++) {
    const unsigned char *e = a->bytes + HEADER + ENTRY * i;
    uint64_t off = get64(e + NAME), sz = get64(e + NAME + 8);
    if (e[NAME - 1] != 0 || off > a->size || sz > a->size - off)
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
  free(a->bytes);
  free(a);
}

const void *tgc_rt_artifact_find(const tgc_rt_artifact *a, const char *name, size_t *size) {
  for (uint32_t i = 0; i < a->n; i++) {
    const unsigned char *e = a->bytes + HEADER + ENTRY * i;
    if (strncmp((const char *)e, name, NAME) == 0) {
      *size = (size_t)get64(e + NAME + 8);
      return a->bytes + get64(e + NAME);
    }
  }
  return NULL;
}

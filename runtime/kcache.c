/* The on-disk cache of compiled kernels. An entry is keyed by an xxHash64 of everything that decides NVRTC's
 * output: the source, the kernel name, the target architecture, NVRTC's version, the options and the output
 * kind. Entries are written atomically (a temporary file, then a rename) and carry their key, their size and a
 * checksum of their payload, so a truncated or corrupt entry is detected, recompiled and rewritten — never
 * trusted. So is an entry that is not a regular file (a FIFO there would otherwise block the compile forever). */
#define _POSIX_C_SOURCE 200809L
#include "kcache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "arena.h"
#include "rt_internal.h"

enum { HEADER = 32 };
static const char MAGIC[8] = {'T', 'G', 'C', 'K', 'C', 'A', 'C', '1'};

/* The NVRTC options tgc compiles with (nvrtc.c); part of the key, so changing them invalidates entries. */
static const char OPTIONS[] = "--std=c++17 -default-device";

static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* mkdir -p */
static int make_dirs(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = 0;
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
      return -1;
    *p = '/';
  }
  return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int tgc_rt_kcache_dir(char *out, size_t n) {
  const char *env = getenv("TGC_CACHE_DIR");
  if (env && *env)
    snprintf(out, n, "%s", env);
  else if (getenv("HOME"))
    snprintf(out, n, "%s/.cache/tgc", getenv("HOME"));
  else
    return -1;
  return 0;
}

uint64_t tgc_rt_kcache_key(const char *source, const char *name, const char *arch, int nvrtc_major, int nvrtc_minor) {
  XXH3_state_t *st = XXH3_createState();
  XXH3_64bits_reset(st);
  char meta[256];
  int n = snprintf(meta, sizeof meta, "tgc-kcache-1|%s|%s|nvrtc %d.%d|%s|%s", name, arch, nvrtc_major, nvrtc_minor,
                   OPTIONS, strncmp(arch, "sm_", 3) == 0 ? "cubin" : "ptx");
  XXH3_64bits_update(st, meta, (size_t)n);
  XXH3_64bits_update(st, source, strlen(source));
  uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

/* Reads the entry for KEY; 1 = hit (image returned), 0 = miss, -1 = an entry that is there but corrupt, or
 * not a regular file (a FIFO or a device there is never read nor waited on: tgc_rt_map_file opens with
 * O_NONBLOCK and checks the opened file). */
static int read_entry(const char *path, uint64_t key, void **image, size_t *size) {
  tgc_rt_mapped m;
  tgc_rt_err err;
  if (tgc_rt_map_file(path, &m, &err) != 0)
    return access(path, F_OK) == 0 || errno != ENOENT ? -1 : 0;
  int rc = -1;
  if (m.len >= HEADER && memcmp(m.data, MAGIC, 8) == 0 && get64(m.data + 8) == key) {
    uint64_t n = get64(m.data + 16), sum = get64(m.data + 24);
    if (n > 0 && n == m.len - HEADER && XXH3_64bits(m.data + HEADER, (size_t)n) == sum) {
      *image = memcpy(tgc_xmalloc((size_t)n), m.data + HEADER, (size_t)n);
      *size = (size_t)n;
      rc = 1;
    }
  }
  tgc_rt_unmap_file(&m);
  return rc;
}

static int write_entry(const char *path, uint64_t key, const void *image, size_t size) {
  unsigned char h[HEADER];
  memcpy(h, MAGIC, 8);
  put64(h + 8, key);
  put64(h + 16, size);
  put64(h + 24, XXH3_64bits(image, size));
  tgc_rt_chunk chunks[2] = {{h, HEADER}, {image, size}};
  tgc_rt_err err;
  /* REPLACE: whatever is at the entry's name (a FIFO, a device) is the cache's to replace, never written into */
  return tgc_rt_write_file(path, chunks, 2, TGC_RT_WRITE_REPLACE, &err);
}

int tgc_rt_kcache_compile(tgc_rt_nvrtc *nv, const char *source, const char *name, const char *arch,
                          tgc_rt_kcache_stats *stats, void **image, size_t *size, tgc_rt_err *err) {
  int major, minor;
  tgc_rt_nvrtc_version(nv, &major, &minor);
  uint64_t key = tgc_rt_kcache_key(source, name, arch, major, minor);
  char dir[4096], path[4200];
  bool cache = tgc_rt_kcache_dir(dir, sizeof dir - 16) == 0;
  if (cache) {
    strcat(dir, "/kernels");
    snprintf(path, sizeof path, "%s/%016llx.bin", dir, (unsigned long long)key);
    int r = read_entry(path, key, image, size);
    if (r == 1) {
      stats->hits++;
      return 0;
    }
    if (r < 0)
      stats->corrupt++; /* recompiled below and rewritten */
  }
  stats->misses++;
  tgc_rt_nvrtc_output o;
  if (tgc_rt_nvrtc_compile(nv, source, name, arch, &o, err) != 0)
    return -1;
  size_t n = o.cubin_size ? o.cubin_size : o.ptx_size;
  void *img = tgc_xmalloc(n ? n : 1);
  memcpy(img, o.cubin_size ? o.cubin : o.ptx, n);
  tgc_rt_nvrtc_output_free(&o);
  if (cache && (make_dirs(dir) != 0 || write_entry(path, key, img, n) != 0))
    stats->write_errors++; /* the kernel still runs; the next run compiles it again */
  *image = img;
  *size = n;
  return 0;
}

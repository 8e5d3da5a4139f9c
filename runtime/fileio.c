/* File access for the weight readers and writers: whole files mapped read-only, and atomic writes
 * (a temporary beside the target, renamed over it) so that a crash never leaves a half-written
 * weight file. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arena.h"
#include "rt_internal.h"

int tgc_rt_map_file(const char *path, tgc_rt_mapped *m, tgc_rt_err *err) {
  m->data = NULL;
  m->len = 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return tgc_rt_errorf(err, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return tgc_rt_errorf(err, "%s: cannot stat: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return tgc_rt_errorf(err, "%s: not a regular file", path);
  }
  if ((uintmax_t)st.st_size > SIZE_MAX) {
    close(fd);
    return tgc_rt_errorf(err, "%s: file too large to map", path);
  }
  size_t len = (size_t)st.st_size;
  if (len == 0) { /* mmap rejects a zero length; an empty file is left for the parsers to reject */
    close(fd);
    return 0;
  }
  void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  close(fd); /* the mapping keeps the file */
  if (p == MAP_FAILED)
    return tgc_rt_errorf(err, "%s: cannot map %zu bytes: %s", path, len, strerror(e));
  m->data = p;
  m->len = len;
  return 0;
}

void tgc_rt_unmap_file(tgc_rt_mapped *m) {
  if (m->data)
    munmap((void *)m->data, m->len);
  m->data = NULL;
  m->len = 0;
}

static bool write_all(int fd, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    p += w;
    n -= (size_t)w;
  }
  return true;
}

int tgc_rt_write_atomic(const char *path, const tgc_rt_chunk *chunks, size_t n, tgc_rt_err *err) {
  size_t plen = strlen(path);
  char *tmp = tgc_xmalloc(plen + 32);
  snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) {
    int e = errno;
    free(tmp);
    return tgc_rt_errorf(err, "%s: cannot open for writing: %s", path, strerror(e));
  }
  bool ok = true;
  for (size_t i = 0; ok && i < n; i++)
    ok = write_all(fd, chunks[i].data, chunks[i].len);
  /* fsync before the rename: otherwise a crash can leave the new name pointing at unwritten blocks.
   */
  ok = ok && fsync(fd) == 0;
  int e = errno;
  if (close(fd) != 0 && ok) {
    ok = false;
    e = errno;
  }
  if (ok && rename(tmp, path) != 0) {
    ok = false;
    e = errno;
  }
  if (!ok) {
    unlink(tmp);
    free(tmp);
    return tgc_rt_errorf(err, "%s: cannot write: %s", path, strerror(e));
  }
  free(tmp);
  return 0;
}

/* File access for the readers and writers: whole files mapped read-only, and tgc_rt_write_file, the one
 * writer of every output (atomic for regular files, so a crash never leaves a half-written one; in place for
 * devices and FIFOs, which a rename would destroy). */
#define _XOPEN_SOURCE 700 /* realpath */

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
  /* O_NONBLOCK: opening a FIFO must not wait for a writer; the fstat below then rejects it */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
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

static bool write_chunks(int fd, const tgc_rt_chunk *chunks, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!write_all(fd, chunks[i].data, chunks[i].len))
      return false;
  return true;
}

/* Writes into an existing non-regular file (a device, a FIFO, standard output) where it is: renaming a
 * regular file over it would destroy it (as root, `-o /dev/null` would replace the machine's /dev/null). */
static int write_in_place(int fd, const char *path, const tgc_rt_chunk *chunks, size_t n, tgc_rt_err *err) {
  bool ok = write_chunks(fd, chunks, n);
  int e = errno;
  if (fd != STDOUT_FILENO && close(fd) != 0 && ok) {
    ok = false;
    e = errno;
  }
  if (ok)
    return 0;
  if (fd == STDOUT_FILENO)
    return tgc_rt_errorf(err, "cannot write to standard output: %s", strerror(e));
  return tgc_rt_errorf(err, "cannot write '%s': %s", path, strerror(e));
}

/* The regular file (or new name) TARGET replaced atomically: a temporary beside it, flushed to disk, renamed over
 * it. MODE is the permission of the replaced file (-1 for a new one: 0666 less the umask). */
static int write_replace(const char *path, const char *target, int mode, const tgc_rt_chunk *chunks, size_t n,
                         tgc_rt_err *err) {
  size_t plen = strlen(target);
  char *tmp = tgc_xmalloc(plen + 32);
  snprintf(tmp, plen + 32, "%s.tmp.%ld", target, (long)getpid());
  /* O_EXCL: never write through a link or file planted at the temporary's name; a stale one of ours goes */
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
  if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
  if (fd < 0) {
    int e = errno;
    free(tmp);
    return tgc_rt_errorf(err, "cannot open '%s' for writing: %s", path, strerror(e));
  }
  bool ok = mode < 0 || fchmod(fd, (mode_t)mode) == 0;
  ok = ok && write_chunks(fd, chunks, n);
  /* fsync before the rename: otherwise a crash can leave the new name pointing at unwritten blocks. */
  ok = ok && fsync(fd) == 0;
  int e = errno;
  if (close(fd) != 0 && ok) {
    ok = false;
    e = errno;
  }
  if (ok && rename(tmp, target) != 0) {
    ok = false;
    e = errno;
  }
  if (!ok)
    unlink(tmp);
  free(tmp);
  return ok ? 0 : tgc_rt_errorf(err, "cannot write '%s': %s", path, strerror(e));
}

int tgc_rt_write_file(const char *path, const tgc_rt_chunk *chunks, size_t n, unsigned flags, tgc_rt_err *err) {
  if (strcmp(path, "-") == 0)
    return write_in_place(STDOUT_FILENO, "-", chunks, n, err);
  if (flags & TGC_RT_WRITE_REPLACE)
    return write_replace(path, path, -1, chunks, n, err);
  for (;;) {
    struct stat st;
    if (stat(path, &st) != 0) {
      if (errno != ENOENT)
        return tgc_rt_errorf(err, "cannot open '%s' for writing: %s", path, strerror(errno));
      struct stat lst;
      if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
        /* a dangling link: create its target through it (replacing the link would surprise its owner) */
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY, 0666);
        if (fd < 0)
          return tgc_rt_errorf(err, "cannot open '%s' for writing: %s", path, strerror(errno));
        return write_in_place(fd, path, chunks, n, err);
      }
      return write_replace(path, path, -1, chunks, n, err);
    }
    if (S_ISREG(st.st_mode)) {
      /* through a symlink: the file it names is replaced and the link kept */
      char *target = realpath(path, NULL);
      if (!target)
        return tgc_rt_errorf(err, "cannot open '%s' for writing: %s", path, strerror(errno));
      int rc = write_replace(path, target, (int)(st.st_mode & 07777), chunks, n, err);
      free(target);
      return rc;
    }
    if (S_ISDIR(st.st_mode))
      return tgc_rt_errorf(err, "cannot write '%s': it is a directory", path);
    /* a device or a FIFO (opening a FIFO waits for its reader, as the shell's '>' does) */
    int fd = open(path, O_WRONLY | O_NOCTTY);
    if (fd < 0)
      return tgc_rt_errorf(err, "cannot open '%s' for writing: %s", path, strerror(errno));
    struct stat fst;
    if (fstat(fd, &fst) == 0 && S_ISREG(fst.st_mode)) {
      close(fd); /* replaced by a regular file since the stat: start again */
      continue;
    }
    return write_in_place(fd, path, chunks, n, err);
  }
}

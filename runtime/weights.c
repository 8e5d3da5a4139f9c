/* Weight sets (runtime/session.h): the named host tensors a session binds a program's params to, from a
 * memory-mapped safetensors file or from the caller's memory. A set is filled once and then only read, so the
 * sessions of any number of threads may share it; the reference count is the only thing they change. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

struct tgc_rt_weights {
  atomic_int refs;
  tgc_arena arena;         /* owns the label, the names and the entries */
  const char *label;       /* the file's path, or the caller's label */
  tgc_rt_safetensors *st;  /* the file, or NULL */
  tgc_strmap added;        /* name -> tgc_rt_tensor * (arena copies of the caller's views) */
};

tgc_rt_weights *tgc_rt_weights_new(const char *label) {
  tgc_rt_weights *w = tgc_xcalloc(1, sizeof *w);
  atomic_init(&w->refs, 1);
  tgc_arena_init(&w->arena);
  const char *l = label ? label : "the weights";
  w->label = tgc_arena_strndup(&w->arena, l, strlen(l));
  tgc_strmap_init(&w->added, &w->arena);
  return w;
}

int tgc_rt_weights_open(const char *path, tgc_rt_weights **out, tgc_rt_err *err) {
  *out = NULL;
  tgc_rt_safetensors *st;
  if (tgc_rt_st_open(path, &st, err))
    return -1;
  tgc_rt_weights *w = tgc_rt_weights_new(path);
  w->st = st;
  *out = w;
  return 0;
}

int tgc_rt_weights_get(const tgc_rt_weights *w, const char *name, tgc_rt_tensor *t) {
  const tgc_rt_tensor *a = tgc_strmap_get(&w->added, name, strlen(name));
  if (a) {
    *t = *a;
    t->owned = false;
    return 0;
  }
  tgc_rt_err ignored; /* tgc_rt_st_get fails only by not finding NAME: the header was checked at open */
  return w->st && tgc_rt_st_get(w->st, name, t, &ignored) == 0 ? 0 : 1;
}

int tgc_rt_weights_add(tgc_rt_weights *w, const char *name, const tgc_rt_tensor *t, tgc_rt_err *err) {
  tgc_rt_tensor old;
  if (!name || !name[0])
    return tgc_rt_errorf(err, "error: a weight of %s needs a name", w->label);
  if (tgc_rt_weights_get(w, name, &old) == 0)
    return tgc_rt_errorf(err, "error: weight '%s' is given twice in %s", name, w->label);
  if (t->rank > TGC_RT_MAX_RANK)
    return tgc_rt_errorf(err, "error: weight '%s' has rank %u, more than %d", name, t->rank, TGC_RT_MAX_RANK);
  size_t n;
  if (!tgc_rt_numel(t->rank, t->shape, &n) || (n && !t->data))
    return tgc_rt_errorf(err, "error: weight '%s' has an invalid shape or no data", name);
  tgc_rt_tensor *copy = tgc_arena_alloc(&w->arena, sizeof *copy);
  *copy = *t;
  copy->owned = false; /* borrowed: the caller keeps the data alive */
  tgc_strmap_put(&w->added, name, strlen(name), copy);
  return 0;
}

const char *tgc_rt_weights_label(const tgc_rt_weights *w) { return w->label; }

tgc_rt_weights *tgc_rt_weights_retain(tgc_rt_weights *w) {
  if (w)
    atomic_fetch_add(&w->refs, 1);
  return w;
}

void tgc_rt_weights_release(tgc_rt_weights *w) {
  if (!w || atomic_fetch_sub(&w->refs, 1) != 1)
    return;
  if (w->st)
    tgc_rt_st_close(w->st);
  tgc_strmap_free(&w->added);
  tgc_arena_free(&w->arena);
  free(w);
}

char *tgc_rt_weights_resolve(const char *origin, const char *ref) {
  const char *slash = origin && strcmp(origin, "-") != 0 ? strrchr(origin, '/') : NULL;
  size_t dir = ref[0] == '/' || !slash ? 0 : (size_t)(slash - origin) + 1;
  char *p = tgc_xmalloc(dir + strlen(ref) + 1);
  memcpy(p, origin ? origin : "", dir);
  strcpy(p + dir, ref);
  return p;
}

/* The directory of PATH, resolved (that of a file which may not exist yet), or NULL. */
static char *real_dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    return realpath(".", NULL);
  size_t n = (size_t)(slash - path);
  char *d = tgc_xcalloc(n + 2, 1);
  memcpy(d, path, n);
  if (n == 0)
    d[0] = '/';
  char *r = realpath(d, NULL);
  free(d);
  return r;
}

int tgc_rt_weights_reference(const char *weights, const char *artifact, char **ref, tgc_rt_err *err) {
  *ref = NULL;
  char *wabs = realpath(weights, NULL);
  if (!wabs)
    return tgc_rt_errorf(err, "error: the weights '%s' cannot be found: %s (an artifact refers to its weights)",
                         weights, strerror(errno));
  char *odir = real_dir_of(artifact), *wdir = real_dir_of(wabs);
  if (odir && wdir && strcmp(odir, wdir) == 0) {
    const char *name = strrchr(wabs, '/') + 1;
    *ref = strcpy(tgc_xmalloc(strlen(name) + 1), name);
    free(wabs);
  } else {
    *ref = wabs;
  }
  free(odir);
  free(wdir);
  return 0;
}

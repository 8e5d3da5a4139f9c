/* The weights file beside a compiled output: a module whose passes created weights (quantize) is written with
 * a safetensors file of its own, holding every weight its params name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ir/ir.h"
#include "../../passes/pass.h"
#include "../../runtime/session.h"
#include "driver.h"

/* Appends the names of the params of B (and its regions) to NAMES, once each. */
static void collect_params(const tgc_block *b, tgc_strmap *seen, const char ***names, size_t *n, size_t *cap) {
  for (const tgc_op *op = b->first; op; op = op->next) {
    if (op->region)
      collect_params(op->region, seen, names, n, cap);
    if (op->opcode != TGC_OP_PARAM)
      continue;
    const char *name = tgc_op_attr_str(op, "name", NULL);
    if (!name || tgc_strmap_get(seen, name, strlen(name)))
      continue;
    tgc_strmap_put(seen, name, strlen(name), (void *)1);
    if (*n == *cap) {
      *cap = *cap ? 2 * *cap : 64;
      *names = tgc_xrealloc(*names, *cap * sizeof **names);
    }
    (*names)[(*n)++] = name;
  }
}

/* OUT with a .tir or .tgc suffix replaced by .safetensors (appended otherwise). */
static char *weights_file_for(const char *out) {
  size_t n = strlen(out);
  if (n > 4 && (strcmp(out + n - 4, ".tir") == 0 || strcmp(out + n - 4, ".tgc") == 0))
    n -= 4;
  char *p = tgc_xmalloc(n + sizeof ".safetensors");
  memcpy(p, out, n);
  strcpy(p + n, ".safetensors");
  return p;
}

int tgc_driver_write_weights(tgc_module *m, const char *wpath, const char *out, char **new_path) {
  *new_path = NULL;
  if (!m->weights)
    return 0;
  uint32_t nnew = 0;
  for (const tgc_module_weight *w = m->weights; w; w = w->next)
    nnew++;
  if (!out || strcmp(out, "-") == 0) {
    fprintf(stderr, "tgc: note: the %u weights the passes created are not written: with -o FILE.tir (or FILE.tgc) "
            "they go to FILE.safetensors, which the output then names\n", nnew);
    return 0;
  }
  tgc_rt_err err;
  tgc_rt_weights *w;
  if (tgc_module_weights_open(m, wpath, &w, &err)) {
    tgc_driver_rt_error("reading the weights", &err);
    return 1;
  }
  tgc_arena a;
  tgc_arena_init(&a);
  tgc_strmap seen;
  tgc_strmap_init(&seen, &a);
  const char **names = NULL;
  size_t n = 0, cap = 0;
  for (const tgc_func *f = m->funcs; f; f = f->next)
    collect_params(f->body, &seen, &names, &n, &cap);
  tgc_rt_tensor *ts = tgc_xcalloc(n ? n : 1, sizeof *ts);
  const tgc_rt_tensor **tp = tgc_xcalloc(n ? n : 1, sizeof *tp);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (tgc_rt_weights_get(w, names[i], &ts[i])) {
      fprintf(stderr, "tgc: error: weight '%s' is in neither %s nor the weights the passes created\n", names[i],
              wpath ? wpath : "(the module has no weights file)");
      rc = 1;
    }
    tp[i] = &ts[i];
  }
  char *path = weights_file_for(out);
  const char *meta[2] = {"format", "pt"};
  if (rc == 0 && tgc_rt_st_write(path, names, tp, n, meta, 1, &err)) {
    tgc_driver_rt_error("writing the weights", &err);
    rc = 1;
  }
  if (rc == 0) {
    /* the output and its weights share a directory: the module names the file alone */
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    tgc_attrs_set(&m->arena, &m->attrs, "weights", tgc_attr_str(&m->arena, base, strlen(base)), m->loc);
    *new_path = path;
  } else {
    free(path);
  }
  free(tp);
  free(ts);
  free(names);
  tgc_strmap_free(&seen);
  tgc_arena_free(&a);
  tgc_rt_weights_release(w);
  return rc;
}

int tgc_driver_point_weights(tgc_module *m, const char *wpath, const char *out) {
  if (!wpath || !out || strcmp(out, "-") == 0)
    return 0;
  char *ref;
  tgc_rt_err err;
  if (tgc_rt_weights_reference(wpath, out, &ref, &err))
    return 0; /* a weights file that does not exist stays named as it was: running the output says so */
  tgc_attrs_set(&m->arena, &m->attrs, "weights", tgc_attr_str(&m->arena, ref, strlen(ref)), m->loc);
  free(ref);
  return 0;
}

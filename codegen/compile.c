/* The compiling half of the public C API (include/tgc/tgc.h, libtgc only): tgc_compile_text/file parse and
 * verify a module, run the pipeline of the -O level or of the passes string, build the program
 * (tgc_program_build) and, unless the target is "none", compile its kernel images. Every diagnostic goes into
 * a memory stream that becomes the error's message: the library never writes to stderr. */
#define _POSIX_C_SOURCE 200809L /* open_memstream, getcwd */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_internal.h"
#include "frontend.h"
#include "nvrtc.h"
#include "pass_manager.h"
#include "program_build.h"
#include "session.h"
#include "rt_internal.h"

/* "sm_XX" or "compute_XX" (two or three digits and an optional letter suffix, as tgc --target accepts). */
static bool valid_target(const char *t) {
  const char *d = strncmp(t, "sm_", 3) == 0 ? t + 3 : strncmp(t, "compute_", 8) == 0 ? t + 8 : NULL;
  if (!d)
    return false;
  size_t n = 0;
  while (d[n] >= '0' && d[n] <= '9')
    n++;
  return n >= 2 && n <= 3 && (d[n] == 0 || ((d[n] == 'a' || d[n] == 'f') && d[n + 1] == 0));
}

/* The weights file given in the options, as the module's reference: absolute, since a reference is resolved
 * against the module's directory and the caller named the file relative to the working directory. */
static char *weights_override(const char *w) {
  if (w[0] == '/')
    return strcpy(tgc_xmalloc(strlen(w) + 1), w);
  char *cwd = getcwd(NULL, 0);
  if (!cwd)
    return strcpy(tgc_xmalloc(strlen(w) + 1), w);
  char *p = tgc_xmalloc(strlen(cwd) + strlen(w) + 2);
  sprintf(p, "%s/%s", cwd, w);
  free(cwd);
  return p;
}

/* The diagnostics written so far, as the error (or a generic one when nothing was reported). */
static int diag_error(FILE *mem, char **buf, tgc_error **err, const char *fallback) {
  fflush(mem);
  return tgc_rt_api_error(err, *buf && **buf ? *buf : fallback);
}

int tgc_compile_text(const char *text, size_t len, const char *name, const tgc_compile_options *o,
                     tgc_program **out, tgc_error **err) {
  if (out)
    *out = NULL;
  if (!text || !out)
    return tgc_rt_api_errorf(err, "error: tgc_compile_text: %s is NULL", text ? "OUT" : "TEXT");
  tgc_compile_options dflt;
  tgc_compile_options_init(&dflt);
  if (!o)
    o = &dflt;
  if (!name)
    name = "<text>";
  const char *target = o->target ? o->target : "sm_90";
  if (!o->passes && (o->opt_level < 0 || o->opt_level > 3))
    return tgc_rt_api_errorf(err, "error: invalid optimization level %d (use 0..3)", o->opt_level);
  if (strcmp(target, "none") != 0 && !valid_target(target))
    return tgc_rt_api_errorf(err, "error: invalid target '%s' (use sm_XX, e.g. sm_90, compute_XX for PTX only, "
                             "or none)", target);

  char *buf = NULL;
  size_t blen = 0;
  FILE *mem = open_memstream(&buf, &blen);
  if (!mem)
    return tgc_rt_api_errorf(err, "error: cannot open a memory stream for the diagnostics");
  tgc_diag diag;
  tgc_diag_init(&diag, mem);
  int rc = -1;
  char *wref = NULL, *wpath = NULL;
  tgc_module *m = NULL;
  tgc_pipeline *pipeline = tgc_pipeline_parse(o->passes ? o->passes : tgc_pipeline_for_level(o->opt_level), &diag);
  if (!pipeline) {
    diag_error(mem, &buf, err, "error: invalid pass pipeline");
    goto done;
  }
  m = tgc_parse_module(name, text, len, &diag);
  if (!m || tgc_verify_module(m, &diag) != 0) {
    diag_error(mem, &buf, err, "error: the module does not parse or verify");
    goto done;
  }
  if (o->weights) {
    wref = weights_override(o->weights);
    tgc_attrs_set(&m->arena, &m->attrs, "weights", tgc_attr_str(&m->arena, wref, strlen(wref)), m->loc);
  }
  tgc_pm_options pm;
  memset(&pm, 0, sizeof pm);
  pm.dump = mem;
  /* the weights file, for passes that read weight values (quantize) and numeric verification */
  const tgc_attr *wattr = tgc_attrs_get(&m->attrs, "weights");
  if (wattr && wattr->kind == TGC_ATTR_STR)
    wpath = tgc_rt_weights_resolve(name, wattr->u.s);
  pm.weights_path = wpath;
  if (tgc_pipeline_run(pipeline, m, &diag, &pm) != 0) {
    diag_error(mem, &buf, err, "error: the pass pipeline failed");
    goto done;
  }
  if (m->weights) { /* a program refers to a weights file; the new tensors would have nowhere to go */
    tgc_rt_api_errorf(err, "%s: error: the pass pipeline created weights (%s, ...), which the C API cannot hand out "
                      "yet: quantize with the tgc CLI (tgc -o OUT.tir writes them to OUT.safetensors)", name,
                      m->weights->name);
    goto done;
  }
  tgc_program_opts po = {true, true};
  tgc_rt_program *rt = tgc_program_build(m, o->entry, &po);
  if (!rt) {
    tgc_rt_api_errorf(err, "%s: error: the module has no function '@%s'", name, o->entry ? o->entry : "main");
    goto done;
  }
  if (strcmp(target, "none") != 0 && rt->has_cuda) {
    tgc_rt_err e = {""};
    tgc_rt_nvrtc *nv = tgc_rt_nvrtc_open(&e);
    if (!nv || tgc_rt_program_compile(rt, nv, target, NULL, &e)) {
      tgc_rt_nvrtc_close(nv);
      tgc_rt_program_free(rt);
      tgc_rt_api_errorf(err, "error: %s (compiling the kernels for %s; target \"none\" compiles none)", e.msg,
                        target);
      goto done;
    }
    tgc_rt_nvrtc_close(nv);
  }
  rc = tgc_rt_api_program_new(rt, name, out, err);
done:
  tgc_pipeline_destroy(pipeline);
  tgc_module_destroy(m);
  tgc_diag_free(&diag);
  fclose(mem);
  free(buf);
  free(wref);
  free(wpath);
  return rc;
}

int tgc_compile_file(const char *path, const tgc_compile_options *o, tgc_program **out, tgc_error **err) {
  if (out)
    *out = NULL;
  if (!path)
    return tgc_rt_api_errorf(err, "error: tgc_compile_file: PATH is NULL");
  tgc_rt_mapped f;
  tgc_rt_err e = {""};
  if (tgc_rt_map_file(path, &f, &e))
    return tgc_rt_api_error(err, e.msg);
  int rc = tgc_compile_text((const char *)f.data, f.len, path, o, out, err);
  tgc_rt_unmap_file(&f);
  return rc;
}

/* Reading calibration statistics from the IR (ir/calib.h). */
#include "calib.h"

#include <stdio.h>
#include <string.h>

static double num(const tgc_attr *a, double dflt) {
  return !a ? dflt : a->kind == TGC_ATTR_FLOAT ? a->u.f : a->kind == TGC_ATTR_INT ? (double)a->u.i : dflt;
}

bool tgc_calib_get(const tgc_value *v, tgc_calib *out) {
  memset(out, 0, sizeof *out);
  const tgc_attrs *attrs;
  char pre[32] = "calib.";
  if (v->def) {
    attrs = &v->def->attrs;
  } else if (v->block && v->block->parent_func && v->block->parent_func->body == v->block) {
    attrs = &v->block->parent_func->attrs;
    snprintf(pre, sizeof pre, "calib.arg%u.", v->index);
  } else {
    return false;
  }
  char key[64];
#define GET(field, name, dflt)                                                                                         \
  snprintf(key, sizeof key, "%s%s", pre, name);                                                                        \
  out->field = num(tgc_attrs_get(attrs, key), dflt)
  snprintf(key, sizeof key, "%samax", pre);
  if (!tgc_attrs_get(attrs, key))
    return false;
  GET(amax, "amax", 0);
  GET(absmax, "absmax", out->amax);
  GET(min, "min", -out->absmax);
  GET(max, "max", out->absmax);
  GET(clip, "clip", 0);
#undef GET
  out->present = true;
  return true;
}

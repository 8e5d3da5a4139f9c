/* Programs in artifacts: tgc_rt_program_sections writes a program as the sections of a model.tgc (the "program"
 * section is JSON, see docs/runtime.md "Programs and artifacts"), tgc_rt_program_read and tgc_rt_program_load
 * read them back with every field validated and then the whole program checked (tgc_rt_program_check), so that
 * a damaged or hostile artifact is an error naming the section and the JSON path, never a crash.
 *
 * The JSON is strict: every key the schema names is required (but "region", present exactly on fusion steps),
 * and an unknown or repeated key is an error. A program written by a newer tgc with fields this one does not
 * know therefore fails loudly rather than running without them; the artifact's format version says when the
 * schema changes. Integers beyond 2^53 are written as decimal strings, non-finite floats as "inf", "-inf", "nan"
 * and "-nan", so that every value reads back exactly. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "artifact.h"
#include "memplan.h"
#include "program.h"

#define EXACT_INT ((int64_t)1 << 53) /* the largest integer magnitude a JSON number (a double) holds exactly */

/* ---- writing ---- */

/* Numbers are printed here, not by cJSON, which prints a double with 15 digits when that reads back merely close
 * to it, and so would round large integers and some floats. */
static cJSON *j_int(int64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", (long long)v);
  return v >= -EXACT_INT && v <= EXACT_INT ? cJSON_CreateRaw(buf) : cJSON_CreateString(buf);
}

static cJSON *j_u32(uint32_t v) { return j_int(v); }

/* The shortest of 15, 16 or 17 significant digits that reads back to V exactly. */
static cJSON *j_float(double v) {
  if (isnan(v))
    return cJSON_CreateString(signbit(v) ? "-nan" : "nan");
  if (isinf(v))
    return cJSON_CreateString(v < 0 ? "-inf" : "inf");
  char buf[40];
  for (int digits = 15; digits <= 17; digits++) {
    snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (strtod(buf, NULL) == v)
      break;
  }
  return cJSON_CreateRaw(buf);
}

static cJSON *j_str(const char *s) { return s ? cJSON_CreateString(s) : cJSON_CreateNull(); }

static cJSON *j_u32s(const uint32_t *v, uint32_t n) {
  cJSON *a = cJSON_CreateArray();
  for (uint32_t i = 0; i < n; i++)
    cJSON_AddItemToArray(a, j_u32(v[i]));
  return a;
}

/* A polynomial: a list of terms, each [coeff, sym, sym, ...] (symbol indices into the plan's "syms"). */
static cJSON *j_poly(const tgc_rt_poly *p) {
  cJSON *a = cJSON_CreateArray();
  for (uint32_t i = 0; i < p->nterms; i++) {
    cJSON *t = cJSON_CreateArray();
    cJSON_AddItemToArray(t, j_int(p->terms[i].coeff));
    for (uint32_t j = 0; j < p->terms[i].nsyms; j++)
      cJSON_AddItemToArray(t, j_u32(p->terms[i].syms[j]));
    cJSON_AddItemToArray(a, t);
  }
  return a;
}

/* A type: null when unknown, else {"dtype": "f32", "dims": [poly, ...]}. */
static cJSON *j_type(const tgc_rt_type *t) {
  if (!t->known)
    return cJSON_CreateNull();
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "dtype", tgc_dtype_name(t->dtype));
  cJSON *dims = cJSON_AddArrayToObject(o, "dims");
  for (uint32_t i = 0; i < t->rank; i++)
    cJSON_AddItemToArray(dims, j_poly(&t->dims[i]));
  return o;
}

/* An attribute: {"name": "axis", "int": 1}; list items have no name: {"list": [{"int": 0}, {"int": 1}]}. */
static cJSON *j_attr(const tgc_rt_attr *a) {
  cJSON *o = cJSON_CreateObject();
  if (a->name)
    cJSON_AddStringToObject(o, "name", a->name);
  switch (a->kind) {
  case TGC_RT_ATTR_INT:
    cJSON_AddItemToObject(o, "int", j_int(a->i));
    break;
  case TGC_RT_ATTR_FLOAT:
    cJSON_AddItemToObject(o, "float", j_float(a->f));
    break;
  case TGC_RT_ATTR_STR:
    cJSON_AddStringToObject(o, "str", a->s);
    break;
  case TGC_RT_ATTR_BOOL:
    cJSON_AddBoolToObject(o, "bool", a->i != 0);
    break;
  case TGC_RT_ATTR_DTYPE:
    cJSON_AddStringToObject(o, "dtype", tgc_dtype_name((tgc_dtype)a->i));
    break;
  case TGC_RT_ATTR_SYM:
    cJSON_AddStringToObject(o, "sym", a->s);
    break;
  case TGC_RT_ATTR_LIST: {
    cJSON *l = cJSON_AddArrayToObject(o, "list");
    for (uint32_t i = 0; i < a->n; i++)
      cJSON_AddItemToArray(l, j_attr(&a->items[i]));
    break;
  }
  }
  return o;
}

static cJSON *j_plan(const tgc_rt_plan *p, bool top) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", p->name);
  if (top) {
    cJSON *syms = cJSON_AddArrayToObject(o, "syms");
    for (uint32_t i = 0; i < p->nsyms; i++)
      cJSON_AddItemToArray(syms, cJSON_CreateString(p->sym_names[i]));
  }
  cJSON_AddItemToObject(o, "nslots", j_int(p->nslots));
  cJSON *ins = cJSON_AddArrayToObject(o, "inputs");
  for (uint32_t i = 0; i < p->ninputs; i++) {
    cJSON *in = cJSON_CreateObject();
    cJSON_AddItemToObject(in, "slot", j_int(p->input_slots[i]));
    cJSON_AddStringToObject(in, "name", p->input_names[i]);
    cJSON_AddItemToObject(in, "type", j_type(&p->input_types[i]));
    cJSON_AddItemToArray(ins, in);
  }
  cJSON *outs = cJSON_AddArrayToObject(o, "outputs");
  for (uint32_t i = 0; i < p->noutputs; i++) {
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "slot", j_int(p->output_slots[i]));
    cJSON_AddStringToObject(out, "name", p->output_names[i]);
    cJSON_AddItemToObject(out, "type", j_type(&p->output_types[i]));
    cJSON_AddItemToArray(outs, out);
  }
  cJSON *steps = cJSON_AddArrayToObject(o, "steps");
  for (uint32_t k = 0; k < p->nsteps; k++) {
    const tgc_rt_step *s = &p->steps[k];
    cJSON *st = cJSON_CreateObject();
    cJSON_AddStringToObject(st, "op", tgc_op_name(s->op));
    cJSON_AddItemToObject(st, "in", j_u32s(s->in, s->nin));
    cJSON_AddItemToObject(st, "out", j_u32s(s->out, s->nout));
    cJSON *types = cJSON_AddArrayToObject(st, "types");
    for (uint32_t i = 0; i < s->nout; i++)
      cJSON_AddItemToArray(types, j_type(&s->out_types[i]));
    cJSON *attrs = cJSON_AddArrayToObject(st, "attrs");
    for (uint32_t i = 0; i < s->nattrs; i++)
      cJSON_AddItemToArray(attrs, j_attr(&s->attrs[i]));
    if (s->region)
      cJSON_AddItemToObject(st, "region", j_plan(s->region, false));
    cJSON_AddItemToObject(st, "mesh_size", j_int(s->mesh_size));
    cJSON_AddStringToObject(st, "loc", s->loc);
    cJSON_AddItemToArray(steps, st);
  }
  return o;
}

static const char *const buf_kinds[] = {"input", "param", "temp"};
static const char *const grids[] = {"elements", "rows", "attention"};

static cJSON *j_program(const tgc_rt_program *p) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, "plan", j_plan(p->plan, true));
  cJSON_AddItemToObject(o, "weights", j_str(p->weights));
  cJSON_AddBoolToObject(o, "has_cuda", p->has_cuda);
  cJSON_AddItemToObject(o, "cuda_why", j_str(p->cuda_why));
  cJSON_AddItemToObject(o, "cuda_why_loc", j_str(p->cuda_why_loc));
  cJSON_AddItemToObject(o, "cuda_why_op", j_str(p->cuda_why_op));
  cJSON *bufs = cJSON_AddArrayToObject(o, "buffers");
  for (uint32_t i = 0; i < p->nbuffers; i++) {
    const tgc_rt_pbuffer *b = &p->buffers[i];
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "kind", buf_kinds[b->kind]);
    cJSON_AddItemToObject(e, "index", j_int(b->index));
    cJSON_AddStringToObject(e, "name", b->name);
    cJSON_AddItemToObject(e, "type", j_type(&b->type));
    cJSON_AddItemToObject(e, "first", j_int(b->first));
    cJSON_AddItemToObject(e, "last", j_int(b->last));
    cJSON_AddItemToObject(e, "pitch", j_int(b->pitch));
    cJSON_AddItemToObject(e, "tail", j_int(b->tail));
    if (b->pack_w4)
      cJSON_AddBoolToObject(e, "pack_w4", true); /* optional: absent is false */
    cJSON_AddStringToObject(e, "loc", b->loc);
    cJSON_AddStringToObject(e, "op", b->op);
    cJSON_AddItemToArray(bufs, e);
  }
  cJSON *ks = cJSON_AddArrayToObject(o, "kernels");
  for (uint32_t i = 0; i < p->nkernels; i++) {
    const tgc_rt_pkernel *k = &p->kernels[i];
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", k->name);
    cJSON_AddStringToObject(e, "kind", k->kind);
    cJSON_AddItemToObject(e, "source", j_int(k->source));
    cJSON_AddItemToObject(e, "args", j_u32s(k->args, k->nargs));
    cJSON_AddItemToObject(e, "syms", j_u32s(k->syms, k->nsyms));
    cJSON_AddStringToObject(e, "grid", grids[k->grid]);
    cJSON_AddItemToObject(e, "count", j_poly(&k->count));
    cJSON_AddItemToObject(e, "gy", j_poly(&k->gy));
    cJSON_AddItemToObject(e, "gz", j_poly(&k->gz));
    cJSON_AddItemToObject(e, "block", j_int(k->block));
    cJSON_AddItemToObject(e, "per_block", j_int(k->per_block));
    cJSON_AddItemToObject(e, "code", j_int(k->code));
    cJSON_AddStringToObject(e, "loc", k->loc);
    cJSON_AddStringToObject(e, "op", k->op);
    cJSON_AddItemToArray(ks, e);
  }
  cJSON *gs = cJSON_AddArrayToObject(o, "gemms");
  for (uint32_t i = 0; i < p->ngemms; i++) {
    const tgc_rt_pgemm *g = &p->gemms[i];
    cJSON *e = cJSON_CreateObject();
    const uint32_t idx[5] = {g->a, g->b, g->c, g->bias, g->d};
    static const char *const names[5] = {"a", "b", "c", "bias", "d"};
    for (int j = 0; j < 5; j++)
      cJSON_AddItemToObject(e, names[j], idx[j] == TGC_RT_NONE ? cJSON_CreateNull() : j_u32(idx[j]));
    cJSON_AddBoolToObject(e, "trans_a", g->trans_a);
    cJSON_AddBoolToObject(e, "trans_b", g->trans_b);
    cJSON_AddBoolToObject(e, "batch_a", g->batch_a);
    cJSON_AddBoolToObject(e, "batch_b", g->batch_b);
    cJSON_AddItemToObject(e, "batch", j_poly(&g->batch));
    cJSON_AddItemToObject(e, "m", j_poly(&g->m));
    cJSON_AddItemToObject(e, "n", j_poly(&g->n));
    cJSON_AddItemToObject(e, "k", j_poly(&g->k));
    cJSON_AddItemToObject(e, "epilogue", j_int(g->epilogue));
    cJSON_AddStringToObject(e, "dtype", tgc_dtype_name(g->dtype));
    if (g->ab_dtype != g->dtype)
      cJSON_AddStringToObject(e, "ab_dtype", tgc_dtype_name(g->ab_dtype));
    if (g->alpha != 1)
      cJSON_AddNumberToObject(e, "alpha", g->alpha);
    if (g->scale != TGC_RT_NONE)
      cJSON_AddItemToObject(e, "scale", j_int(g->scale)); /* optional: absent is none */
    cJSON_AddItemToObject(e, "ldd", j_int(g->ldd));
    cJSON_AddStringToObject(e, "loc", g->loc);
    cJSON_AddItemToArray(gs, e);
  }
  cJSON *steps = cJSON_AddArrayToObject(o, "steps");
  for (uint32_t i = 0; i < p->nsteps; i++) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddItemToObject(e, p->steps[i].gemm ? "gemm" : "kernel", j_int(p->steps[i].index));
    if (p->steps[i].when != TGC_RT_ALWAYS) { /* optional: absent is always */
      cJSON *w = cJSON_CreateObject();
      cJSON_AddItemToObject(w, "dim", j_poly(&p->steps[i].when_poly));
      if (p->steps[i].when == TGC_RT_WHEN_RANGE) {
        cJSON_AddItemToObject(w, "gt", j_int(p->steps[i].lo));
        cJSON_AddItemToObject(w, "le", j_int(p->steps[i].limit));
      } else
        cJSON_AddItemToObject(w, p->steps[i].when == TGC_RT_WHEN_LE ? "le" : "gt", j_int(p->steps[i].limit));
      cJSON_AddItemToObject(e, "when", w);
    }
    cJSON_AddItemToArray(steps, e);
  }
  cJSON *srcs = cJSON_AddArrayToObject(o, "sources");
  for (uint32_t i = 0; i < p->nsources; i++)
    cJSON_AddItemToArray(srcs, cJSON_CreateString(p->sources[i].key));
  cJSON *ims = cJSON_AddArrayToObject(o, "images");
  for (uint32_t i = 0; i < p->nimages; i++) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddItemToObject(e, "source", j_int(p->images[i].source));
    cJSON_AddStringToObject(e, "arch", p->images[i].arch);
    cJSON_AddItemToArray(ims, e);
  }
  cJSON_AddItemToObject(o, "output_buffers",
                        p->output_buffers ? j_u32s(p->output_buffers, p->plan->noutputs) : cJSON_CreateNull());
  return o;
}

/* The section name of source KEY's image of architecture ARCH ("" is PTX). */
static void image_name(char *out, size_t n, const char *key, const char *arch) {
  snprintf(out, n, "kernel/%s.%s", key, arch[0] ? "cubin" : "ptx");
}

int tgc_rt_program_sections(const tgc_rt_program *p, tgc_rt_sections *out, tgc_rt_err *err) {
  memset(out, 0, sizeof *out);
  if (tgc_rt_program_check(p, err))
    return -1;
  cJSON *j = j_program(p);
  char *text = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  if (!text)
    return tgc_rt_errorf(err, "out of memory writing the program");
  tgc_arena_init(&out->arena);
  size_t n = 0, cap = 3 + p->nsources + p->nimages;
  tgc_rt_section *v = tgc_arena_alloc(&out->arena, sizeof *v * cap);
  size_t len = strlen(text);
  v[n++] = (tgc_rt_section){"program", tgc_arena_strndup(&out->arena, text, len), len};
  free(text);
  char nm[64];
  for (uint32_t i = 0; i < p->nsources; i++) {
    snprintf(nm, sizeof nm, "kernel/%s.cu", p->sources[i].key);
    v[n++] = (tgc_rt_section){tgc_arena_strndup(&out->arena, nm, strlen(nm)), p->sources[i].text,
                              strlen(p->sources[i].text)};
  }
  for (uint32_t i = 0; i < p->nimages; i++) {
    image_name(nm, sizeof nm, p->sources[p->images[i].source].key, p->images[i].arch);
    v[n++] = (tgc_rt_section){tgc_arena_strndup(&out->arena, nm, strlen(nm)), p->images[i].data, p->images[i].size};
  }
  if (p->memplan)
    v[n++] = (tgc_rt_section){"plan", p->memplan, p->memplan_len};
  if (p->ir)
    v[n++] = (tgc_rt_section){"ir", p->ir, strlen(p->ir)};
  out->v = v;
  out->n = n;
  return 0;
}

void tgc_rt_sections_free(tgc_rt_sections *s) {
  tgc_arena_free(&s->arena);
  memset(s, 0, sizeof *s);
}

/* ---- reading ---- */

typedef struct {
  tgc_arena *a;
  const char *file;
  tgc_rt_err *err;
  uint32_t nsyms; /* the top plan's, once read */
} reader;

/* "FILE: program: AT: message" */
static int fail(reader *r, const char *at, const char *fmt, ...) TGC_RT_PRINTF(3, 4);
static int fail(reader *r, const char *at, const char *fmt, ...) {
  char msg[700];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return tgc_rt_errorf(r->err, "%s: program: %s%s%s", r->file, at, at[0] ? ": " : "", msg);
}

/* Checks that object O at AT has the keys KEYS (a NULL-terminated list; a name starting with '?' is optional),
 * no other and none twice. */
static int expect_keys(reader *r, const cJSON *o, const char *at, const char *const *keys) {
  if (!cJSON_IsObject(o))
    return fail(r, at, "expected an object");
  const cJSON *c;
  cJSON_ArrayForEach(c, o) {
    size_t i = 0;
    while (keys[i] && strcmp(keys[i] + (keys[i][0] == '?'), c->string) != 0)
      i++;
    if (!keys[i])
      return fail(r, at, "unknown key '%s'", c->string);
    for (const cJSON *d = o->child; d != c; d = d->next)
      if (strcmp(d->string, c->string) == 0)
        return fail(r, at, "key '%s' given twice", c->string);
  }
  for (size_t i = 0; keys[i]; i++)
    if (keys[i][0] != '?' && !cJSON_GetObjectItemCaseSensitive(o, keys[i]))
      return fail(r, at, "missing key '%s'", keys[i]);
  return 0;
}

static const cJSON *field(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

/* JSON paths in messages ("plan.steps[3].in[1]"), cut at P bytes. */
#define P 512
static void pathf(char *out, const char *fmt, ...) TGC_RT_PRINTF(2, 3);
static void pathf(char *out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out, P, fmt, ap);
  va_end(ap);
}

static void sub(char *out, const char *at, const char *key) { pathf(out, "%s%s%s", at, at[0] ? "." : "", key); }

static int get_i64(reader *r, const cJSON *j, const char *at, int64_t *out) {
  if (cJSON_IsNumber(j)) {
    double d = j->valuedouble;
    if (!(d >= (double)-EXACT_INT && d <= (double)EXACT_INT) || d != floor(d))
      return fail(r, at, "expected an integer, not %g", d);
    *out = (int64_t)d;
    return 0;
  }
  if (cJSON_IsString(j)) {
    char *end;
    errno = 0;
    long long v = strtoll(j->valuestring, &end, 10);
    if (!j->valuestring[0] || *end || errno)
      return fail(r, at, "expected an integer, not \"%.40s\"", j->valuestring);
    *out = v;
    return 0;
  }
  return fail(r, at, "expected an integer");
}

static int get_range(reader *r, const cJSON *j, const char *at, int64_t lo, int64_t hi, int64_t *out) {
  if (get_i64(r, j, at, out))
    return -1;
  if (*out < lo || *out > hi)
    return fail(r, at, "%lld out of range [%lld, %lld]", (long long)*out, (long long)lo, (long long)hi);
  return 0;
}

static int get_u32(reader *r, const cJSON *j, const char *at, uint32_t *out) {
  int64_t v;
  if (get_range(r, j, at, 0, UINT32_MAX, &v))
    return -1;
  *out = (uint32_t)v;
  return 0;
}

static int get_int(reader *r, const cJSON *j, const char *at, int *out) {
  int64_t v;
  if (get_range(r, j, at, INT32_MIN, INT32_MAX, &v))
    return -1;
  *out = (int)v;
  return 0;
}

static int get_double(reader *r, const cJSON *j, const char *at, double *out) {
  if (cJSON_IsNumber(j)) {
    *out = j->valuedouble;
    return 0;
  }
  if (cJSON_IsString(j)) {
    const char *s = j->valuestring;
    if (strcmp(s, "inf") == 0 || strcmp(s, "-inf") == 0) {
      *out = s[0] == '-' ? -INFINITY : INFINITY;
      return 0;
    }
    if (strcmp(s, "nan") == 0 || strcmp(s, "-nan") == 0) {
      *out = s[0] == '-' ? -NAN : NAN;
      return 0;
    }
  }
  return fail(r, at, "expected a number (or \"inf\", \"-inf\", \"nan\", \"-nan\")");
}

static int get_bool(reader *r, const cJSON *j, const char *at, bool *out) {
  *out = false;
  if (!cJSON_IsBool(j))
    return fail(r, at, "expected true or false");
  *out = cJSON_IsTrue(j);
  return 0;
}

/* A string copied into the program; NULLABLE: null reads as NULL. */
static int get_str(reader *r, const cJSON *j, const char *at, bool nullable, const char **out) {
  if (nullable && cJSON_IsNull(j)) {
    *out = NULL;
    return 0;
  }
  if (!cJSON_IsString(j))
    return fail(r, at, nullable ? "expected a string or null" : "expected a string");
  *out = tgc_arena_strndup(r->a, j->valuestring, strlen(j->valuestring));
  return 0;
}

static int get_dtype(reader *r, const cJSON *j, const char *at, tgc_dtype *out) {
  if (!cJSON_IsString(j))
    return fail(r, at, "expected a dtype name");
  if (!tgc_dtype_lookup(j->valuestring, strlen(j->valuestring), out))
    return fail(r, at, "unknown dtype '%.40s'", j->valuestring);
  return 0;
}

/* One of the N names of NAMES. */
static int get_enum(reader *r, const cJSON *j, const char *at, const char *const *names, int n, int *out) {
  if (cJSON_IsString(j))
    for (int i = 0; i < n; i++)
      if (strcmp(j->valuestring, names[i]) == 0) {
        *out = i;
        return 0;
      }
  return fail(r, at, "expected one of '%s'..'%s'", names[0], names[n - 1]);
}

/* An array at AT: its items' count in *N. */
static int get_array(reader *r, const cJSON *j, const char *at, uint32_t *n) {
  *n = 0;
  if (!cJSON_IsArray(j))
    return fail(r, at, "expected an array");
  uint32_t k = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, j) k++;
  *n = k;
  return 0;
}

static void *alloc_n(reader *r, uint32_t n, size_t size) { return tgc_arena_alloc(r->a, size * ((size_t)n + 1)); }

static int get_u32s(reader *r, const cJSON *j, const char *at, uint32_t *n, const uint32_t **out) {
  if (get_array(r, j, at, n))
    return -1;
  uint32_t *v = alloc_n(r, *n, sizeof *v);
  uint32_t i = 0;
  const cJSON *c;
  char t[P];
  cJSON_ArrayForEach(c, j) {
    pathf(t, "%s[%u]", at, i);
    if (get_u32(r, c, t, &v[i++]))
      return -1;
  }
  *out = v;
  return 0;
}

static int get_poly(reader *r, const cJSON *j, const char *at, tgc_rt_poly *out) {
  uint32_t n;
  if (get_array(r, j, at, &n))
    return -1;
  tgc_rt_term *terms = alloc_n(r, n, sizeof *terms);
  uint32_t i = 0;
  const cJSON *c;
  char t[P];
  cJSON_ArrayForEach(c, j) {
    pathf(t, "%s[%u]", at, i);
    uint32_t m;
    if (get_array(r, c, t, &m))
      return -1;
    if (m < 1)
      return fail(r, t, "a term without its coefficient");
    uint32_t *syms = alloc_n(r, m - 1, sizeof *syms);
    uint32_t q = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, c) {
      char u[P];
      pathf(u, "%s[%u]", t, q);
      if (q == 0 ? get_i64(r, e, u, &terms[i].coeff) : get_u32(r, e, u, &syms[q - 1]))
        return -1;
      q++;
    }
    terms[i].nsyms = m - 1;
    terms[i].syms = syms;
    i++;
  }
  out->nterms = n;
  out->terms = terms;
  return 0;
}

static int get_type(reader *r, const cJSON *j, const char *at, tgc_rt_type *out) {
  memset(out, 0, sizeof *out);
  if (cJSON_IsNull(j))
    return 0;
  static const char *const keys[] = {"dtype", "dims", NULL};
  if (expect_keys(r, j, at, keys))
    return -1;
  char t[P];
  sub(t, at, "dtype");
  if (get_dtype(r, field(j, "dtype"), t, &out->dtype))
    return -1;
  sub(t, at, "dims");
  const cJSON *dims = field(j, "dims");
  if (get_array(r, dims, t, &out->rank))
    return -1;
  if (out->rank > TGC_RT_MAX_RANK)
    return fail(r, t, "rank %u is above the maximum rank %d", out->rank, TGC_RT_MAX_RANK);
  tgc_rt_poly *d = alloc_n(r, out->rank, sizeof *d);
  uint32_t i = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, dims) {
    char u[P];
    pathf(u, "%s[%u]", t, i);
    if (get_poly(r, c, u, &d[i++]))
      return -1;
  }
  out->dims = d;
  out->known = true;
  return 0;
}

static int get_attr(reader *r, const cJSON *j, const char *at, bool top, tgc_rt_attr *out) {
  memset(out, 0, sizeof *out);
  static const char *const kinds[] = {"int", "float", "str", "bool", "dtype", "sym", "list"};
  static const char *const top_keys[] = {"name", "?int", "?float", "?str", "?bool", "?dtype", "?sym", "?list", NULL};
  if (expect_keys(r, j, at, top ? top_keys : top_keys + 1))
    return -1;
  if (top && get_str(r, field(j, "name"), at, false, &out->name))
    return -1;
  const cJSON *v = NULL;
  int kind = -1;
  for (int k = 0; k < 7; k++)
    if (field(j, kinds[k])) {
      if (v)
        return fail(r, at, "an attribute of two kinds ('%s' and '%s')", kinds[kind], kinds[k]);
      v = field(j, kinds[k]);
      kind = k;
    }
  if (!v)
    return fail(r, at, "an attribute of no kind (int, float, str, bool, dtype, sym or list)");
  char t[P];
  sub(t, at, kinds[kind]);
  out->kind = (tgc_rt_attr_kind)kind;
  switch (out->kind) {
  case TGC_RT_ATTR_INT:
    if (get_i64(r, v, t, &out->i))
      return -1;
    out->f = (double)out->i;
    return 0;
  case TGC_RT_ATTR_FLOAT:
    return get_double(r, v, t, &out->f);
  case TGC_RT_ATTR_STR:
  case TGC_RT_ATTR_SYM:
    return get_str(r, v, t, false, &out->s);
  case TGC_RT_ATTR_BOOL: {
    bool b;
    if (get_bool(r, v, t, &b))
      return -1;
    out->i = b;
    return 0;
  }
  case TGC_RT_ATTR_DTYPE: {
    tgc_dtype dt;
    if (get_dtype(r, v, t, &dt))
      return -1;
    out->i = dt;
    return 0;
  }
  case TGC_RT_ATTR_LIST: {
    if (get_array(r, v, t, &out->n))
      return -1;
    tgc_rt_attr *items = alloc_n(r, out->n, sizeof *items);
    uint32_t i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, v) {
      char u[P];
      pathf(u, "%s[%u]", t, i);
      if (get_attr(r, c, u, false, &items[i++]))
        return -1;
    }
    out->items = items;
    return 0;
  }
  }
  return -1;
}

/* The inputs or outputs of a plan: SLOTS, NAMES and TYPES of *N entries. */
static int get_ports(reader *r, const cJSON *j, const char *at, uint32_t *n, const uint32_t **slots,
                     const char *const **names, const tgc_rt_type **types) {
  if (get_array(r, j, at, n))
    return -1;
  uint32_t *s = alloc_n(r, *n, sizeof *s);
  const char **nm = alloc_n(r, *n, sizeof *nm);
  tgc_rt_type *ty = alloc_n(r, *n, sizeof *ty);
  static const char *const keys[] = {"slot", "name", "type", NULL};
  uint32_t i = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, j) {
    char t[P], u[640];
    pathf(t, "%s[%u]", at, i);
    if (expect_keys(r, c, t, keys))
      return -1;
    sub(u, t, "slot");
    if (get_u32(r, field(c, "slot"), u, &s[i]))
      return -1;
    sub(u, t, "name");
    if (get_str(r, field(c, "name"), u, false, &nm[i]))
      return -1;
    sub(u, t, "type");
    if (get_type(r, field(c, "type"), u, &ty[i]))
      return -1;
    i++;
  }
  *slots = s;
  *names = nm;
  *types = ty;
  return 0;
}

static int get_plan(reader *r, const cJSON *j, const char *at, bool top, const tgc_rt_plan **out);

static int get_step(reader *r, const cJSON *j, const char *at, tgc_rt_step *s) {
  static const char *const keys[] = {"op", "in", "out", "types", "attrs", "?region", "mesh_size", "loc", NULL};
  if (expect_keys(r, j, at, keys))
    return -1;
  char t[P];
  sub(t, at, "op");
  const cJSON *op = field(j, "op");
  if (!cJSON_IsString(op))
    return fail(r, t, "expected an op name");
  if (!tgc_op_lookup(op->valuestring, strlen(op->valuestring), &s->op))
    return fail(r, t, "unknown op '%.40s'", op->valuestring);
  sub(t, at, "in");
  if (get_u32s(r, field(j, "in"), t, &s->nin, &s->in))
    return -1;
  sub(t, at, "out");
  if (get_u32s(r, field(j, "out"), t, &s->nout, &s->out))
    return -1;
  sub(t, at, "types");
  const cJSON *types = field(j, "types");
  uint32_t n;
  if (get_array(r, types, t, &n))
    return -1;
  if (n != s->nout)
    return fail(r, t, "%u types for %u results", n, s->nout);
  tgc_rt_type *ot = alloc_n(r, n, sizeof *ot);
  uint32_t i = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, types) {
    char u[P];
    pathf(u, "%s[%u]", t, i);
    if (get_type(r, c, u, &ot[i++]))
      return -1;
  }
  s->out_types = ot;
  sub(t, at, "attrs");
  const cJSON *attrs = field(j, "attrs");
  if (get_array(r, attrs, t, &s->nattrs))
    return -1;
  tgc_rt_attr *as = alloc_n(r, s->nattrs, sizeof *as);
  i = 0;
  cJSON_ArrayForEach(c, attrs) {
    char u[P];
    pathf(u, "%s[%u]", t, i);
    if (get_attr(r, c, u, true, &as[i++]))
      return -1;
  }
  s->attrs = as;
  if (field(j, "region")) {
    sub(t, at, "region");
    if (get_plan(r, field(j, "region"), t, false, &s->region))
      return -1;
  }
  sub(t, at, "mesh_size");
  if (get_range(r, field(j, "mesh_size"), t, 0, INT64_MAX, &s->mesh_size))
    return -1;
  sub(t, at, "loc");
  return get_str(r, field(j, "loc"), t, false, &s->loc);
}

static int get_plan(reader *r, const cJSON *j, const char *at, bool top, const tgc_rt_plan **out) {
  static const char *const top_keys[] = {"name", "syms", "nslots", "inputs", "outputs", "steps", NULL};
  static const char *const region_keys[] = {"name", "nslots", "inputs", "outputs", "steps", NULL};
  if (expect_keys(r, j, at, top ? top_keys : region_keys))
    return -1;
  tgc_rt_plan *p = tgc_arena_alloc(r->a, sizeof *p);
  char t[P];
  sub(t, at, "name");
  if (get_str(r, field(j, "name"), t, false, &p->name))
    return -1;
  if (top) {
    sub(t, at, "syms");
    const cJSON *syms = field(j, "syms");
    if (get_array(r, syms, t, &p->nsyms))
      return -1;
    const char **names = alloc_n(r, p->nsyms, sizeof *names);
    uint32_t i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, syms) {
      char u[P];
      pathf(u, "%s[%u]", t, i);
      if (get_str(r, c, u, false, &names[i++]))
        return -1;
    }
    p->sym_names = names;
    r->nsyms = p->nsyms;
  }
  sub(t, at, "nslots");
  if (get_u32(r, field(j, "nslots"), t, &p->nslots))
    return -1;
  sub(t, at, "inputs");
  if (get_ports(r, field(j, "inputs"), t, &p->ninputs, &p->input_slots, &p->input_names, &p->input_types))
    return -1;
  sub(t, at, "outputs");
  if (get_ports(r, field(j, "outputs"), t, &p->noutputs, &p->output_slots, &p->output_names, &p->output_types))
    return -1;
  sub(t, at, "steps");
  const cJSON *steps = field(j, "steps");
  if (get_array(r, steps, t, &p->nsteps))
    return -1;
  tgc_rt_step *st = alloc_n(r, p->nsteps, sizeof *st);
  uint32_t i = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, steps) {
    char u[P];
    pathf(u, "%s[%u]", t, i);
    if (get_step(r, c, u, &st[i++]))
      return -1;
  }
  p->steps = st;
  *out = p;
  return 0;
}

/* The section NAME of the N sections S, or NULL. */
static const tgc_rt_section *find_section(const tgc_rt_section *s, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s[i].name, name) == 0)
      return &s[i];
  return NULL;
}

static int get_buffers(reader *r, const cJSON *j, tgc_rt_program *p) {
  if (get_array(r, j, "buffers", &p->nbuffers))
    return -1;
  tgc_rt_pbuffer *bs = alloc_n(r, p->nbuffers, sizeof *bs);
  static const char *const keys[] = {"kind", "index", "name", "type", "first", "last", "pitch", "tail", "?pack_w4",
                                     "loc",  "op",    NULL};
  uint32_t i = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, j) {
    tgc_rt_pbuffer *b = &bs[i];
    char at[P], t[600];
    pathf(at, "buffers[%u]", i++);
    if (expect_keys(r, c, at, keys))
      return -1;
    int kind;
#define GET(key, call)                                                                                         \
  do {                                                                                                         \
    sub(t, at, key);                                                                                 \
    if (call)                                                                                                  \
      return -1;                                                                                               \
  } while (0)
    GET("kind", get_enum(r, field(c, "kind"), t, buf_kinds, 3, &kind));
    b->kind = (tgc_rt_buf_kind)kind;
    GET("index", get_u32(r, field(c, "index"), t, &b->index));
    GET("name", get_str(r, field(c, "name"), t, false, &b->name));
    GET("type", get_type(r, field(c, "type"), t, &b->type));
    GET("first", get_int(r, field(c, "first"), t, &b->first));
    GET("last", get_int(r, field(c, "last"), t, &b->last));
    GET("pitch", get_i64(r, field(c, "pitch"), t, &b->pitch));
    GET("tail", get_i64(r, field(c, "tail"), t, &b->tail));
    if (field(c, "pack_w4"))
      GET("pack_w4", get_bool(r, field(c, "pack_w4"), t, &b->pack_w4));
    GET("loc", get_str(r, field(c, "loc"), t, false, &b->loc));
    GET("op", get_str(r, field(c, "op"), t, false, &b->op));
  }
  p->buffers = bs;
  return 0;
}

static int get_kernels(reader *r, const cJSON *j, tgc_rt_program *p) {
  if (get_array(r, j, "kernels", &p->nkernels))
    return -1;
  tgc_rt_pkernel *ks = alloc_n(r, p->nkernels, sizeof *ks);
  static const char *const keys[] = {"name", "kind",  "source", "args",      "syms", "grid", "count", "gy",
                                     "gz",   "block", "per_block", "code", "loc",  "op",   NULL};
  uint32_t i = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, j) {
    tgc_rt_pkernel *k = &ks[i];
    char at[P], t[600];
    pathf(at, "kernels[%u]", i++);
    if (expect_keys(r, c, at, keys))
      return -1;
    int grid;
    GET("name", get_str(r, field(c, "name"), t, false, &k->name));
    GET("kind", get_str(r, field(c, "kind"), t, false, &k->kind));
    GET("source", get_u32(r, field(c, "source"), t, &k->source));
    GET("args", get_u32s(r, field(c, "args"), t, &k->nargs, &k->args));
    GET("syms", get_u32s(r, field(c, "syms"), t, &k->nsyms, &k->syms));
    GET("grid", get_enum(r, field(c, "grid"), t, grids, 3, &grid));
    k->grid = (tgc_rt_grid)grid;
    GET("count", get_poly(r, field(c, "count"), t, &k->count));
    GET("gy", get_poly(r, field(c, "gy"), t, &k->gy));
    GET("gz", get_poly(r, field(c, "gz"), t, &k->gz));
    GET("block", get_u32(r, field(c, "block"), t, &k->block));
    GET("per_block", get_u32(r, field(c, "per_block"), t, &k->per_block));
    GET("code", get_int(r, field(c, "code"), t, &k->code));
    GET("loc", get_str(r, field(c, "loc"), t, false, &k->loc));
    GET("op", get_str(r, field(c, "op"), t, false, &k->op));
  }
  p->kernels = ks;
  return 0;
}

static int get_gemms(reader *r, const cJSON *j, tgc_rt_program *p) {
  if (get_array(r, j, "gemms", &p->ngemms))
    return -1;
  tgc_rt_pgemm *gs = alloc_n(r, p->ngemms, sizeof *gs);
  static const char *const keys[] = {"a", "b", "c", "bias", "d", "trans_a", "trans_b", "batch_a", "batch_b", "batch",
                                     "m", "n", "k", "epilogue", "dtype", "?ab_dtype", "?alpha", "?scale", "ldd", "loc",
                                     NULL};
  uint32_t i = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, j) {
    tgc_rt_pgemm *g = &gs[i];
    char at[P], t[600];
    pathf(at, "gemms[%u]", i++);
    if (expect_keys(r, c, at, keys))
      return -1;
    uint32_t *idx[5] = {&g->a, &g->b, &g->c, &g->bias, &g->d};
    for (int q = 0; q < 5; q++) {
      const cJSON *v = field(c, keys[q]);
      if ((q == 2 || q == 3) && cJSON_IsNull(v))
        *idx[q] = TGC_RT_NONE;
      else
        GET(keys[q], get_u32(r, v, t, idx[q]));
    }
    GET("trans_a", get_bool(r, field(c, "trans_a"), t, &g->trans_a));
    GET("trans_b", get_bool(r, field(c, "trans_b"), t, &g->trans_b));
    GET("batch_a", get_bool(r, field(c, "batch_a"), t, &g->batch_a));
    GET("batch_b", get_bool(r, field(c, "batch_b"), t, &g->batch_b));
    GET("batch", get_poly(r, field(c, "batch"), t, &g->batch));
    GET("m", get_poly(r, field(c, "m"), t, &g->m));
    GET("n", get_poly(r, field(c, "n"), t, &g->n));
    GET("k", get_poly(r, field(c, "k"), t, &g->k));
    GET("epilogue", get_int(r, field(c, "epilogue"), t, &g->epilogue));
    GET("dtype", get_dtype(r, field(c, "dtype"), t, &g->dtype));
    g->ab_dtype = g->dtype;
    if (field(c, "ab_dtype"))
      GET("ab_dtype", get_dtype(r, field(c, "ab_dtype"), t, &g->ab_dtype));
    g->alpha = 1;
    if (field(c, "alpha")) {
      if (!cJSON_IsNumber(field(c, "alpha")))
        return fail(r, at, "alpha is not a number");
      g->alpha = cJSON_GetNumberValue(field(c, "alpha"));
    }
    g->scale = TGC_RT_NONE;
    if (field(c, "scale"))
      GET("scale", get_u32(r, field(c, "scale"), t, &g->scale));
    GET("ldd", get_i64(r, field(c, "ldd"), t, &g->ldd));
    GET("loc", get_str(r, field(c, "loc"), t, false, &g->loc));
  }
  p->gemms = gs;
  return 0;
}

static int get_steps(reader *r, const cJSON *j, tgc_rt_program *p) {
  if (get_array(r, j, "steps", &p->nsteps))
    return -1;
  tgc_rt_pstep *ss = alloc_n(r, p->nsteps, sizeof *ss);
  static const char *const keys[] = {"?kernel", "?gemm", "?when", NULL};
  static const char *const when_keys[] = {"dim", "?le", "?gt", NULL};
  uint32_t i = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, j) {
    tgc_rt_pstep *s = &ss[i];
    char at[P], t[600];
    pathf(at, "steps[%u]", i++);
    if (expect_keys(r, c, at, keys))
      return -1;
    const cJSON *k = field(c, "kernel"), *g = field(c, "gemm");
    if (!k == !g)
      return fail(r, at, "expected {\"kernel\": N} or {\"gemm\": N}");
    s->gemm = g != NULL;
    GET(g ? "gemm" : "kernel", get_u32(r, g ? g : k, t, &s->index));
    const cJSON *w = field(c, "when");
    if (w) {
      char wt[P];
      pathf(wt, "%s.when", at);
      if (expect_keys(r, w, wt, when_keys))
        return -1;
      const cJSON *le = field(w, "le"), *gt = field(w, "gt");
      if (!le && !gt)
        return fail(r, wt, "expected \"le\", \"gt\" or both");
      s->when = le && gt ? TGC_RT_WHEN_RANGE : le ? TGC_RT_WHEN_LE : TGC_RT_WHEN_GT;
      GET("when.dim", get_poly(r, field(w, "dim"), t, &s->when_poly));
      if (le && gt) {
        GET("when.gt", get_i64(r, gt, t, &s->lo));
        GET("when.le", get_i64(r, le, t, &s->limit));
      } else
        GET(le ? "when.le" : "when.gt", get_i64(r, le ? le : gt, t, &s->limit));
    }
  }
  p->steps = ss;
  return 0;
}

/* The sources (keys in the JSON, texts in "kernel/<key>.cu") and images ("kernel/<key>.cubin" or ".ptx"). */
static int get_kernel_sections(reader *r, const cJSON *srcs, const cJSON *ims, const tgc_rt_section *s, size_t n,
                               tgc_rt_program *p) {
  if (get_array(r, srcs, "sources", &p->nsources))
    return -1;
  tgc_rt_psource *ps = alloc_n(r, p->nsources, sizeof *ps);
  uint32_t i = 0;
  const cJSON *c;
  char at[P], nm[64];
  cJSON_ArrayForEach(c, srcs) {
    pathf(at, "sources[%u]", i);
    const char *key = cJSON_IsString(c) ? c->valuestring : NULL;
    if (!key || strlen(key) != 16 || strspn(key, "0123456789abcdef") != 16)
      return fail(r, at, "expected a kernel key (16 hex digits)");
    memcpy(ps[i].key, key, 17);
    snprintf(nm, sizeof nm, "kernel/%s.cu", key);
    const tgc_rt_section *sec = find_section(s, n, nm);
    if (!sec)
      return fail(r, at, "no section '%s'", nm);
    if (memchr(sec->data, 0, sec->size))
      return fail(r, at, "section '%s' holds a NUL byte", nm);
    ps[i].text = tgc_arena_strndup(r->a, sec->data, sec->size);
    i++;
  }
  p->sources = ps;
  if (get_array(r, ims, "images", &p->nimages))
    return -1;
  tgc_rt_pimage *pi = alloc_n(r, p->nimages, sizeof *pi);
  static const char *const keys[] = {"source", "arch", NULL};
  i = 0;
  cJSON_ArrayForEach(c, ims) {
    tgc_rt_pimage *im = &pi[i];
    char t[P];
    pathf(at, "images[%u]", i++);
    if (expect_keys(r, c, at, keys))
      return -1;
    GET("source", get_u32(r, field(c, "source"), t, &im->source));
    GET("arch", get_str(r, field(c, "arch"), t, false, &im->arch));
    if (im->source >= p->nsources)
      return fail(r, at, "source %u out of range (%u sources)", im->source, p->nsources);
    image_name(nm, sizeof nm, ps[im->source].key, im->arch);
    const tgc_rt_section *sec = find_section(s, n, nm);
    if (!sec)
      return fail(r, at, "no section '%s'", nm);
    void *data = tgc_arena_alloc(r->a, sec->size + 1);
    if (sec->size)
      memcpy(data, sec->data, sec->size);
    im->data = data;
    im->size = sec->size;
  }
  p->images = pi;
  return 0;
}
#undef GET

static int read_program(reader *r, const cJSON *j, const tgc_rt_section *s, size_t n, tgc_rt_program *p) {
  static const char *const keys[] = {"plan",    "weights", "has_cuda", "cuda_why", "cuda_why_loc", "cuda_why_op",
                                     "buffers", "kernels", "gemms",    "steps",    "sources",      "images",
                                     "output_buffers", NULL};
  if (expect_keys(r, j, "", keys))
    return -1;
  if (get_plan(r, field(j, "plan"), "plan", true, &p->plan) ||
      get_str(r, field(j, "weights"), "weights", true, &p->weights) ||
      get_bool(r, field(j, "has_cuda"), "has_cuda", &p->has_cuda) ||
      get_str(r, field(j, "cuda_why"), "cuda_why", true, &p->cuda_why) ||
      get_str(r, field(j, "cuda_why_loc"), "cuda_why_loc", true, &p->cuda_why_loc) ||
      get_str(r, field(j, "cuda_why_op"), "cuda_why_op", true, &p->cuda_why_op) ||
      get_buffers(r, field(j, "buffers"), p) || get_kernels(r, field(j, "kernels"), p) ||
      get_gemms(r, field(j, "gemms"), p) || get_steps(r, field(j, "steps"), p) ||
      get_kernel_sections(r, field(j, "sources"), field(j, "images"), s, n, p))
    return -1;
  const cJSON *ob = field(j, "output_buffers");
  if (!cJSON_IsNull(ob)) {
    uint32_t no;
    if (get_u32s(r, ob, "output_buffers", &no, &p->output_buffers))
      return -1;
    if (no != p->plan->noutputs)
      return fail(r, "output_buffers", "%u buffers for %u results", no, p->plan->noutputs);
  }
  return 0;
}

int tgc_rt_program_read(const tgc_rt_section *s, size_t n, const char *file, tgc_rt_program **out,
                        tgc_rt_err *err) {
  *out = NULL;
  const tgc_rt_section *ps = find_section(s, n, "program");
  if (!ps)
    return tgc_rt_errorf(err, "%s: has no program section (made by an older tgc? recompile it with tgc -o)", file);
  cJSON *j = cJSON_ParseWithLength(ps->data, ps->size);
  if (!j)
    return tgc_rt_errorf(err, "%s: program: not valid JSON", file);
  tgc_rt_program *p = tgc_rt_program_new();
  reader r = {&p->arena, file, err, 0};
  int rc = read_program(&r, j, s, n, p);
  cJSON_Delete(j);
  const tgc_rt_section *plan = rc ? NULL : find_section(s, n, "plan");
  if (plan) {
    tgc_rt_memplan mp;
    char why[256];
    if (tgc_rt_memplan_parse(plan->data, plan->size, &mp, why, sizeof why)) {
      rc = tgc_rt_errorf(err, "%s: plan: %s", file, why);
    } else {
      tgc_rt_memplan_free(&mp);
      p->memplan = tgc_arena_strndup(&p->arena, plan->data, plan->size);
      p->memplan_len = plan->size;
    }
  }
  const tgc_rt_section *ir = rc ? NULL : find_section(s, n, "ir");
  if (ir)
    p->ir = tgc_arena_strndup(&p->arena, ir->data, ir->size);
  if (!rc) {
    tgc_rt_err e;
    if (tgc_rt_program_check(p, &e))
      rc = tgc_rt_errorf(err, "%s: program: %s", file, e.msg);
  }
  if (rc) {
    tgc_rt_program_free(p);
    return -1;
  }
  *out = p;
  return 0;
}

int tgc_rt_program_load(const char *path, tgc_rt_program **out, tgc_rt_err *err) {
  *out = NULL;
  tgc_rt_artifact *a;
  if (tgc_rt_artifact_open(path, &a, err))
    return -1;
  size_t n = tgc_rt_artifact_count(a);
  tgc_rt_section *s = tgc_xcalloc(n + 1, sizeof *s);
  for (size_t i = 0; i < n; i++)
    s[i] = tgc_rt_artifact_section(a, i);
  int rc = tgc_rt_program_read(s, n, path, out, err);
  free(s);
  tgc_rt_artifact_close(a);
  return rc;
}

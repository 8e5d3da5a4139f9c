/* The public C API (include/tgc/tgc.h) over the runtime: error objects, dtype and tensor helpers, program
 * handles (load, save, queries with dims printed as polynomials over the plan's symbols), weights sets and
 * sessions over runtime/session.h. Everything but compiling, which is codegen/compile.c's (libtgc only). It never
 * prints: every failure becomes a tgc_error. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "arena.h"
#include "artifact.h"
#include "cuda_driver.h"
#include "session.h"

/* tgc_dtype_t is tgc_dtype under public names: the values must agree one for one. */
#define TGC_DTYPE(e, name, bits, kind) _Static_assert((int)TGC_##e == (int)TGC_DT_##e, "tgc_dtype_t " name);
#include "tgc/dtypes.def"
#undef TGC_DTYPE
_Static_assert((int)TGC_BOOL + 1 == (int)TGC_DT_COUNT, "tgc_dtype_t has every dtype");
_Static_assert(TGC_TENSOR_MAX_RANK == TGC_RT_MAX_RANK, "one rank limit");

const char *tgc_version(void) { return TGC_VERSION; }

/* ---- errors --------------------------------------------------------------------------------------------- */

struct tgc_error {
  char *message;
  char *location;
};

/* "FILE:LINE:COL" of the first line of MSG saying ": error: ", when what precedes it ends in :LINE:COL. */
static char *error_location(const char *msg) {
  for (const char *line = msg; line && *line;) {
    const char *nl = strchr(line, '\n');
    const char *e = strstr(line, ": error: ");
    if (e && (!nl || e < nl)) {
      const char *p = e;
      int fields = 0;
      while (fields < 2) {
        const char *q = p;
        while (q > line && q[-1] >= '0' && q[-1] <= '9')
          q--;
        if (q == p || q == line || q[-1] != ':')
          break;
        p = q - 1;
        fields++;
      }
      if (fields == 2 && p > line)
        return strncpy(tgc_xcalloc((size_t)(e - line) + 1, 1), line, (size_t)(e - line));
      break;
    }
    line = nl ? nl + 1 : NULL;
  }
  return strcpy(tgc_xmalloc(1), "");
}

int tgc_rt_api_error(tgc_error **err, const char *msg) {
  if (!err)
    return -1;
  if (!msg || !*msg)
    msg = "error: an operation failed without a message (a bug in tgc)";
  size_t n = strlen(msg);
  while (n && msg[n - 1] == '\n')
    n--;
  tgc_error *e = tgc_xmalloc(sizeof *e);
  e->message = strncpy(tgc_xcalloc(n + 1, 1), msg, n);
  e->location = error_location(e->message);
  *err = e;
  return -1;
}

int tgc_rt_api_errorf(tgc_error **err, const char *fmt, ...) {
  if (!err)
    return -1;
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return tgc_rt_api_error(err, buf);
}

static int rt_error(tgc_error **err, const tgc_rt_err *e) { return tgc_rt_api_error(err, e->msg); }

const char *tgc_error_message(const tgc_error *e) { return e ? e->message : ""; }
const char *tgc_error_location(const tgc_error *e) { return e ? e->location : ""; }

void tgc_error_free(tgc_error *e) {
  if (!e)
    return;
  free(e->message);
  free(e->location);
  free(e);
}

/* ---- dtypes and tensors --------------------------------------------------------------------------------- */

static bool valid_dtype(tgc_dtype_t dt) { return (unsigned)dt < (unsigned)TGC_DT_COUNT; }

const char *tgc_dtype_str(tgc_dtype_t dt) { return valid_dtype(dt) ? tgc_dtype_name((tgc_dtype)dt) : NULL; }
size_t tgc_dtype_size(tgc_dtype_t dt) { return valid_dtype(dt) ? tgc_rt_dtype_size((tgc_dtype)dt) : 0; }

/* T as the runtime's tensor (data borrowed); an error naming WHAT when its dtype or rank is no valid one. */
static int to_rt(const tgc_tensor *t, const char *what, tgc_rt_tensor *rt, tgc_error **err) {
  if (!t)
    return tgc_rt_api_errorf(err, "error: %s: no tensor (NULL)", what);
  if (!valid_dtype(t->dtype))
    return tgc_rt_api_errorf(err, "error: %s: %d is no tgc_dtype_t", what, (int)t->dtype);
  if (t->rank > TGC_TENSOR_MAX_RANK)
    return tgc_rt_api_errorf(err, "error: %s: rank %u exceeds the maximum of %d", what, t->rank,
                             TGC_TENSOR_MAX_RANK);
  memset(rt, 0, sizeof *rt);
  rt->dtype = (tgc_dtype)t->dtype;
  rt->rank = t->rank;
  memcpy(rt->shape, t->shape, t->rank * sizeof t->shape[0]);
  rt->data = t->data;
  return 0;
}

size_t tgc_tensor_numel(const tgc_tensor *t) {
  size_t n;
  if (!t || !valid_dtype(t->dtype) || t->rank > TGC_TENSOR_MAX_RANK || !tgc_rt_numel(t->rank, t->shape, &n))
    return 0;
  return n;
}

double tgc_tensor_get(const tgc_tensor *t, size_t i) {
  tgc_rt_tensor rt;
  if (i >= tgc_tensor_numel(t) || !t->data || to_rt(t, "", &rt, NULL))
    return 0;
  return tgc_rt_get(&rt, i);
}

int tgc_tensor_fill_random(tgc_tensor *t, uint64_t *state, tgc_error **err) {
  tgc_rt_tensor rt;
  if (to_rt(t, "tgc_tensor_fill_random", &rt, err))
    return -1;
  if (t->memory != TGC_MEMORY_HOST)
    return tgc_rt_api_errorf(err, "error: tgc_tensor_fill_random: the tensor is not in host memory");
  size_t n;
  if (!tgc_rt_numel(rt.rank, rt.shape, &n))
    return tgc_rt_api_errorf(err, "error: tgc_tensor_fill_random: invalid shape");
  if (n && !rt.data)
    return tgc_rt_api_errorf(err, "error: tgc_tensor_fill_random: the tensor has no data");
  tgc_rt_fill_random(&rt, state);
  return 0;
}

/* ---- programs ------------------------------------------------------------------------------------------- */

struct tgc_program {
  tgc_rt_program *rt;
  tgc_arena arena;          /* the strings below */
  char *weights_path;       /* resolved, or NULL */
  char *cuda_why;           /* NULL when the CUDA backend can run it */
  const char **input_dims, **output_dims; /* dim d of input i: input_dims[input_at[i] + d] */
  uint32_t *input_at, *output_at;
};

/* P as text over the plan's symbols, as the IR prints dims ("768", "B*S", "2*S + 1"). */
static void poly_print(const tgc_rt_poly *p, const char *const *syms, tgc_strbuf *b) {
  if (p->nterms == 0)
    tgc_sb_putc(b, '0');
  for (uint32_t i = 0; i < p->nterms; i++) {
    const tgc_rt_term *t = &p->terms[i];
    bool neg = t->coeff < 0;
    uint64_t mag = neg ? (uint64_t)0 - (uint64_t)t->coeff : (uint64_t)t->coeff;
    tgc_sb_puts(b, i == 0 ? (neg ? "-" : "") : (neg ? " - " : " + "));
    if (t->nsyms == 0 || mag != 1)
      tgc_sb_printf(b, "%llu%s", (unsigned long long)mag, t->nsyms ? "*" : "");
    for (uint32_t j = 0; j < t->nsyms; j++)
      tgc_sb_printf(b, "%s%s", j ? "*" : "", syms[t->syms[j]]);
  }
}

/* The dims of N types as strings in P's arena: DIMS[AT[i] + d] is dim d of type i. */
static void dims_text(tgc_program *p, const tgc_rt_type *types, uint32_t n, const char ***dims, uint32_t **at) {
  const tgc_rt_plan *plan = p->rt->plan;
  uint32_t total = 0;
  *at = tgc_arena_alloc(&p->arena, (n + 1) * sizeof **at);
  for (uint32_t i = 0; i < n; i++) {
    (*at)[i] = total;
    total += types[i].rank;
  }
  *dims = tgc_arena_alloc(&p->arena, (total + 1) * sizeof **dims);
  tgc_strbuf b;
  tgc_sb_init(&b);
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t d = 0; d < types[i].rank; d++) {
      b.len = 0;
      poly_print(&types[i].dims[d], plan->sym_names, &b);
      (*dims)[(*at)[i] + d] = tgc_arena_strndup(&p->arena, b.data, b.len);
    }
  tgc_sb_free(&b);
}

int tgc_rt_api_program_new(tgc_rt_program *rt, const char *origin, tgc_program **out, tgc_error **err) {
  *out = NULL;
  tgc_rt_err e = {""};
  if (tgc_rt_program_check(rt, &e)) {
    tgc_rt_program_free(rt);
    return rt_error(err, &e);
  }
  tgc_program *p = tgc_xcalloc(1, sizeof *p);
  p->rt = rt;
  tgc_arena_init(&p->arena);
  if (rt->weights) {
    char *w = tgc_rt_weights_resolve(origin, rt->weights);
    p->weights_path = tgc_arena_strndup(&p->arena, w, strlen(w));
    free(w);
  }
  if (!rt->has_cuda) {
    tgc_strbuf b;
    tgc_sb_init(&b);
    const char *loc = rt->cuda_why_loc ? rt->cuda_why_loc : "";
    tgc_sb_printf(&b, "%s%sthe CUDA backend cannot run this %s: %s", loc, loc[0] ? ": " : "",
                  rt->cuda_why_op && rt->cuda_why_op[0] ? rt->cuda_why_op : "function",
                  rt->cuda_why && rt->cuda_why[0] ? rt->cuda_why : "no reason given");
    p->cuda_why = tgc_arena_strndup(&p->arena, b.data, b.len);
    tgc_sb_free(&b);
  }
  dims_text(p, rt->plan->input_types, rt->plan->ninputs, &p->input_dims, &p->input_at);
  dims_text(p, rt->plan->output_types, rt->plan->noutputs, &p->output_dims, &p->output_at);
  *out = p;
  return 0;
}

int tgc_program_load(const char *path, tgc_program **out, tgc_error **err) {
  tgc_rt_err e = {""};
  tgc_rt_program *rt = NULL;
  if (out)
    *out = NULL;
  if (!path || !out)
    return tgc_rt_api_errorf(err, "error: tgc_program_load: %s is NULL", path ? "OUT" : "PATH");
  if (tgc_rt_program_load(path, &rt, &e))
    return rt_error(err, &e);
  return tgc_rt_api_program_new(rt, path, out, err);
}

void tgc_program_free(tgc_program *p) {
  if (!p)
    return;
  tgc_rt_program_free(p->rt);
  tgc_arena_free(&p->arena);
  free(p);
}

int tgc_program_save(const tgc_program *p, const char *path, tgc_error **err) {
  if (!p || !path)
    return tgc_rt_api_errorf(err, "error: tgc_program_save: %s is NULL", p ? "PATH" : "the program");
  /* the reference an artifact stores (tgc_rt_weights_reference, as tgc -o writes it) */
  char *ref = NULL;
  tgc_rt_err we = {""};
  if (p->weights_path && tgc_rt_weights_reference(p->weights_path, path, &ref, &we))
    return rt_error(err, &we);
  tgc_rt_program copy = *p->rt; /* the same program but for the reference: nothing is allocated in its arena */
  copy.weights = ref;
  tgc_rt_sections secs = {0};
  tgc_rt_err e = {""};
  int rc = 0;
  if (tgc_rt_program_sections(&copy, &secs, &e) || tgc_rt_artifact_write(path, secs.v, secs.n, &e))
    rc = rt_error(err, &e);
  tgc_rt_sections_free(&secs);
  free(ref);
  return rc;
}

const char *tgc_program_cuda_unsupported(const tgc_program *p) { return p ? p->cuda_why : NULL; }
const char *tgc_program_weights_path(const tgc_program *p) { return p ? p->weights_path : NULL; }
const char *tgc_program_ir(const tgc_program *p) { return p ? p->rt->ir : NULL; }

uint32_t tgc_program_num_inputs(const tgc_program *p) { return p ? p->rt->plan->ninputs : 0; }
uint32_t tgc_program_num_outputs(const tgc_program *p) { return p ? p->rt->plan->noutputs : 0; }
uint32_t tgc_program_num_symbols(const tgc_program *p) { return p ? p->rt->plan->nsyms : 0; }

#define IN_RANGE(p, i, n) ((p) && (i) < (p)->rt->plan->n)

const char *tgc_program_input_name(const tgc_program *p, uint32_t i) {
  return IN_RANGE(p, i, ninputs) ? p->rt->plan->input_names[i] : NULL;
}
const char *tgc_program_output_name(const tgc_program *p, uint32_t i) {
  return IN_RANGE(p, i, noutputs) ? p->rt->plan->output_names[i] : NULL;
}
const char *tgc_program_symbol(const tgc_program *p, uint32_t i) {
  return IN_RANGE(p, i, nsyms) ? p->rt->plan->sym_names[i] : NULL;
}
tgc_dtype_t tgc_program_input_dtype(const tgc_program *p, uint32_t i) {
  return IN_RANGE(p, i, ninputs) ? (tgc_dtype_t)p->rt->plan->input_types[i].dtype : (tgc_dtype_t)-1;
}
tgc_dtype_t tgc_program_output_dtype(const tgc_program *p, uint32_t i) {
  return IN_RANGE(p, i, noutputs) ? (tgc_dtype_t)p->rt->plan->output_types[i].dtype : (tgc_dtype_t)-1;
}
uint32_t tgc_program_input_rank(const tgc_program *p, uint32_t i) {
  return IN_RANGE(p, i, ninputs) ? p->rt->plan->input_types[i].rank : 0;
}
uint32_t tgc_program_output_rank(const tgc_program *p, uint32_t i) {
  return IN_RANGE(p, i, noutputs) ? p->rt->plan->output_types[i].rank : 0;
}
const char *tgc_program_input_dim(const tgc_program *p, uint32_t i, uint32_t d) {
  return d < tgc_program_input_rank(p, i) ? p->input_dims[p->input_at[i] + d] : NULL;
}
const char *tgc_program_output_dim(const tgc_program *p, uint32_t i, uint32_t d) {
  return d < tgc_program_output_rank(p, i) ? p->output_dims[p->output_at[i] + d] : NULL;
}

int tgc_program_input_index(const tgc_program *p, const char *name) {
  for (uint32_t i = 0; p && name && i < p->rt->plan->ninputs; i++)
    if (strcmp(p->rt->plan->input_names[i], name) == 0)
      return (int)i;
  return -1;
}

int tgc_program_input_shape(const tgc_program *p, uint32_t i, const int64_t *sizes, int64_t *shape,
                            tgc_error **err) {
  if (!IN_RANGE(p, i, ninputs))
    return tgc_rt_api_errorf(err, "error: input %u out of range (the program has %u)", i,
                             tgc_program_num_inputs(p));
  if (!sizes && p->rt->plan->nsyms)
    return tgc_rt_api_errorf(err, "error: tgc_program_input_shape: no symbol sizes (the program has %u symbols)",
                             p->rt->plan->nsyms);
  const tgc_rt_type *ty = &p->rt->plan->input_types[i];
  for (uint32_t d = 0; d < ty->rank; d++)
    if (!tgc_rt_poly_eval(&ty->dims[d], sizes, &shape[d]) || shape[d] < 0)
      return tgc_rt_api_errorf(err, "error: dim %u of input '%%%s' (%s) is no valid size at the given symbol "
                               "sizes", d, p->rt->plan->input_names[i], tgc_program_input_dim(p, i, d));
  return 0;
}

/* ---- weights -------------------------------------------------------------------------------------------- */

/* A handle over a reference to a runtime weights set. */
struct tgc_weights {
  tgc_rt_weights *rt;
};

int tgc_weights_open(const char *path, tgc_weights **out, tgc_error **err) {
  tgc_rt_err e = {""};
  tgc_rt_weights *w;
  if (!path || !out)
    return tgc_rt_api_errorf(err, "error: tgc_weights_open: %s is NULL", path ? "OUT" : "PATH");
  *out = NULL;
  if (tgc_rt_weights_open(path, &w, &e))
    return rt_error(err, &e);
  *out = tgc_xmalloc(sizeof **out);
  (*out)->rt = w;
  return 0;
}

int tgc_weights_create(tgc_weights **out, tgc_error **err) {
  if (!out)
    return tgc_rt_api_errorf(err, "error: tgc_weights_create: OUT is NULL");
  *out = tgc_xmalloc(sizeof **out);
  (*out)->rt = tgc_rt_weights_new("the caller's weights");
  return 0;
}

int tgc_weights_add(tgc_weights *w, const char *name, const tgc_tensor *t, tgc_error **err) {
  if (!w || !name)
    return tgc_rt_api_errorf(err, "error: tgc_weights_add: %s is NULL", w ? "NAME" : "the weights");
  tgc_rt_tensor rt;
  char what[256];
  snprintf(what, sizeof what, "weight '%s'", name);
  if (to_rt(t, what, &rt, err))
    return -1;
  if (t->memory != TGC_MEMORY_HOST)
    return tgc_rt_api_errorf(err, "error: %s: weights are tensors in host memory", what);
  tgc_rt_err e = {""};
  return tgc_rt_weights_add(w->rt, name, &rt, &e) ? rt_error(err, &e) : 0;
}

void tgc_weights_free(tgc_weights *w) {
  if (!w)
    return;
  tgc_rt_weights_release(w->rt);
  free(w);
}

/* ---- sessions ------------------------------------------------------------------------------------------- */

struct tgc_session {
  tgc_rt_session *rt;
  const tgc_program *program;
};

void tgc_compile_options_init(tgc_compile_options *o) {
  if (o)
    *o = (tgc_compile_options){2, NULL, "sm_90", NULL, NULL};
}

void tgc_session_options_init(tgc_session_options *o) {
  if (o)
    *o = (tgc_session_options){TGC_DEVICE_AUTO, 0, NULL};
}

int tgc_session_create(const tgc_program *p, const tgc_session_options *o, tgc_session **out, tgc_error **err) {
  if (!p || !out)
    return tgc_rt_api_errorf(err, "error: tgc_session_create: %s is NULL", p ? "OUT" : "the program");
  *out = NULL;
  tgc_session_options dflt;
  tgc_session_options_init(&dflt);
  if (!o)
    o = &dflt;
  tgc_rt_session_opts ro = {TGC_RT_DEVICE_CPU, o->gpu, o->cuda_stream};
  switch (o->device) {
  case TGC_DEVICE_CPU:
    break;
  case TGC_DEVICE_CUDA:
    ro.device = TGC_RT_DEVICE_CUDA;
    break;
  case TGC_DEVICE_AUTO:
    ro.device = p->rt->has_cuda && tgc_rt_cuda_available() ? TGC_RT_DEVICE_CUDA : TGC_RT_DEVICE_CPU;
    break;
  default:
    return tgc_rt_api_errorf(err, "error: tgc_session_create: %d is no tgc_device", (int)o->device);
  }
  tgc_rt_err e = {""};
  tgc_rt_session *s;
  if (tgc_rt_session_create(p->rt, &ro, &s, &e))
    return rt_error(err, &e);
  *out = tgc_xmalloc(sizeof **out);
  **out = (tgc_session){s, p};
  return 0;
}

void tgc_session_free(tgc_session *s) {
  if (!s)
    return;
  tgc_rt_session_destroy(s->rt);
  free(s);
}

tgc_device tgc_session_device(const tgc_session *s) {
  return s && tgc_rt_session_device(s->rt) == TGC_RT_DEVICE_CUDA ? TGC_DEVICE_CUDA : TGC_DEVICE_CPU;
}

int tgc_session_bind_weights(tgc_session *s, tgc_weights *w, tgc_error **err) {
  if (!s)
    return tgc_rt_api_errorf(err, "error: tgc_session_bind_weights: the session is NULL");
  tgc_rt_err e = {""};
  if (w)
    return tgc_rt_session_bind_weights(s->rt, w->rt, &e) ? rt_error(err, &e) : 0;
  const char *path = s->program->weights_path;
  if (!path)
    return tgc_rt_api_errorf(err, "error: the program refers to no weights file: give a weights set "
                             "(tgc_weights_open or tgc_weights_create)");
  tgc_rt_weights *own;
  if (tgc_rt_weights_open(path, &own, &e))
    return rt_error(err, &e);
  int rc = tgc_rt_session_bind_weights(s->rt, own, &e) ? rt_error(err, &e) : 0;
  tgc_rt_weights_release(own); /* the session holds its own reference */
  return rc;
}

/* An error unless I is an index below N (inputs or outputs, as WHAT says). */
static int check_index(uint32_t i, uint32_t n, const char *what, tgc_error **err) {
  if (i < n)
    return 0;
  return tgc_rt_api_errorf(err, "error: %s %u out of range (the program has %u %s%s)", what, i, n, what,
                           n == 1 ? "" : "s");
}

int tgc_session_set_input(tgc_session *s, uint32_t i, const tgc_tensor *t, tgc_error **err) {
  if (!s)
    return tgc_rt_api_errorf(err, "error: tgc_session_set_input: the session is NULL");
  const tgc_rt_plan *plan = s->program->rt->plan;
  if (check_index(i, plan->ninputs, "input", err))
    return -1;
  char what[256];
  snprintf(what, sizeof what, "input '%%%s'", plan->input_names[i]);
  tgc_rt_tensor rt;
  if (to_rt(t, what, &rt, err))
    return -1;
  tgc_rt_err e = {""};
  return tgc_rt_session_set_input(s->rt, i, &rt, t->memory == TGC_MEMORY_DEVICE, &e) ? rt_error(err, &e) : 0;
}

int tgc_session_run(tgc_session *s, tgc_error **err) {
  if (!s)
    return tgc_rt_api_errorf(err, "error: tgc_session_run: the session is NULL");
  tgc_rt_err e = {""};
  return tgc_rt_session_run(s->rt, &e) ? rt_error(err, &e) : 0;
}

int tgc_session_get_output(tgc_session *s, uint32_t i, tgc_tensor *out, tgc_error **err) {
  if (!s || !out)
    return tgc_rt_api_errorf(err, "error: tgc_session_get_output: %s is NULL", s ? "OUT" : "the session");
  if (check_index(i, s->program->rt->plan->noutputs, "output", err))
    return -1;
  tgc_rt_err e = {""};
  const tgc_rt_tensor *t;
  if (tgc_rt_session_output(s->rt, i, &t, &e))
    return rt_error(err, &e);
  memset(out, 0, sizeof *out);
  out->dtype = (tgc_dtype_t)t->dtype;
  out->rank = t->rank;
  memcpy(out->shape, t->shape, t->rank * sizeof t->shape[0]);
  out->data = t->data;
  out->memory = TGC_MEMORY_HOST;
  return 0;
}

int tgc_session_copy_output(tgc_session *s, uint32_t i, void *dst, size_t bytes, tgc_memory memory,
                            tgc_error **err) {
  if (!s)
    return tgc_rt_api_errorf(err, "error: tgc_session_copy_output: the session is NULL");
  if (check_index(i, s->program->rt->plan->noutputs, "output", err))
    return -1;
  tgc_rt_err e = {""};
  return tgc_rt_session_copy_output(s->rt, i, dst, bytes, memory == TGC_MEMORY_DEVICE, &e) ? rt_error(err, &e)
                                                                                          : 0;
}

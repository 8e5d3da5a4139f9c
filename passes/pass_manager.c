/* The pass manager: registry lookup (from passes.def), the pipeline parser, the -O pipelines, and the
 * instrumented run loop (IR dumps, --time-passes, --verify-each, numeric verification on the CPU backend). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "pass_manager.h"

#include <math.h>
#include <stdarg.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lower.h"
#include "session.h"

/* ---- the registry ---- */

typedef struct {
  const char *name, *summary, *options;
  unsigned requires, preserves;
  tgc_pass_fn fn;
} pass_info;

static const pass_info registry[] = {
#define TGC_PASS(id, name, summary, options, requires, preserves, fn) {name, summary, options, requires, preserves, fn},
#include "passes.def"
#undef TGC_PASS
};
enum { NPASSES = sizeof registry / sizeof registry[0] };

static const pass_info *find_pass(const char *name, size_t len) {
  for (int i = 0; i < NPASSES; i++)
    if (strlen(registry[i].name) == len && memcmp(registry[i].name, name, len) == 0)
      return &registry[i];
  return NULL;
}

bool tgc_pass_exists(const char *name) { return find_pass(name, strlen(name)) != NULL; }

/* -Rpass=REGEX as in clang: a POSIX extended regex searched for in the pass name (unanchored). */
static bool remark_regex_matches(const char *re, const char *name) {
  regex_t rx;
  if (!re || regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
    return false;
  bool m = regexec(&rx, name, 0, NULL, 0) == 0;
  regfree(&rx);
  return m;
}

bool tgc_pass_remark_regex_check(const char *flag, const char *re, tgc_strbuf *msg) {
  if (!*re) {
    tgc_sb_printf(msg, "'%s' needs a pass name or regular expression", flag);
    return false;
  }
  regex_t rx;
  int rc = regcomp(&rx, re, REG_EXTENDED | REG_NOSUB);
  if (rc != 0) {
    char why[256];
    regerror(rc, &rx, why, sizeof why);
    tgc_sb_printf(msg, "invalid regular expression in '%s%s': %s", flag, re, why);
    return false;
  }
  bool any = false;
  const char *best = NULL;
  size_t best_d = 4;
  for (int i = 0; i < NPASSES; i++) {
    any = any || regexec(&rx, registry[i].name, 0, NULL, 0) == 0;
    size_t d = tgc_edit_distance(re, registry[i].name, 3);
    if (d < best_d) {
      best_d = d;
      best = registry[i].name;
    }
  }
  regfree(&rx);
  if (any)
    return true;
  /* a typo or another compiler's pass name would otherwise print nothing and look like "no remarks" */
  tgc_sb_printf(msg, "'%s%s' matches no pass", flag, re);
  if (best)
    tgc_sb_printf(msg, "; did you mean '%s'?", best);
  tgc_sb_puts(msg, " (the passes are:");
  for (int i = 0; i < NPASSES; i++)
    tgc_sb_printf(msg, " %s", registry[i].name);
  tgc_sb_puts(msg, ")");
  return false;
}

void tgc_passes_list(FILE *out) {
  fprintf(out, "Available passes:\n");
  for (int i = 0; i < NPASSES; i++) {
    fprintf(out, "  %-14s %s", registry[i].name, registry[i].summary);
    if (registry[i].options[0])
      fprintf(out, " {%s}", registry[i].options);
    fprintf(out, "\n");
  }
}

const char *tgc_pipeline_for_level(int level) {
  switch (level) {
  case 0:
    return "";
  case 1:
    return "shape-infer,canonicalize,dce";
  case 2:
    return "shape-infer,canonicalize,cse,canonicalize,fold-qdq,dce,split-reductions,fuse";
  default:
    return "shape-infer,canonicalize{max-iterations=16},cse,canonicalize{max-iterations=16},fold-qdq,dce,split-reductions,"
           "fuse";
  }
}

/* ---- pipelines ---- */

typedef struct {
  const pass_info *pass;
  tgc_pass_option *options;
  uint32_t noptions;
} pass_instance;

struct tgc_pipeline {
  tgc_arena arena;
  pass_instance *passes;
  uint32_t n;
};

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n')
    p++;
  return p;
}

static bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Checks an option against the pass's "key:type" schema. */
static bool option_known(const pass_info *pi, const char *key, size_t len, const char **type) {
  const char *s = pi->options;
  while (*s) {
    while (*s == ' ' || *s == ',')
      s++;
    const char *k = s;
    while (*s && *s != ':')
      s++;
    size_t klen = (size_t)(s - k);
    if (*s == ':')
      s++;
    const char *t = s;
    while (*s && *s != ',')
      s++;
    if (klen == len && memcmp(k, key, len) == 0) {
      *type = t;
      return true;
    }
  }
  return false;
}

tgc_pipeline *tgc_pipeline_parse(const char *text, tgc_diag *diag) {
  tgc_pipeline *pl = tgc_xcalloc(1, sizeof *pl);
  tgc_arena_init(&pl->arena);
  tgc_diag_add_source(diag, "<pipeline>", text, strlen(text));
  uint32_t cap = 0;
  const char *p = skip_ws(text);
  int errors = diag->nerrors;
#define PERR(at, ...) tgc_error(diag, ((tgc_loc){"<pipeline>", 1, (uint32_t)((at) - text) + 1}), __VA_ARGS__)
  while (*p) {
    const char *name = p;
    while (is_name_char(*p))
      p++;
    if (p == name) {
      PERR(p, "expected a pass name, found '%c'", *p);
      break;
    }
    size_t len = (size_t)(p - name);
    const pass_info *pi = find_pass(name, len);
    if (!pi) {
      char buf[64];
      snprintf(buf, sizeof buf, "%.*s", (int)(len < 60 ? len : 60), name);
      const char *best = NULL;
      size_t best_d = 3;
      for (int i = 0; i < NPASSES; i++) {
        size_t d = tgc_edit_distance(buf, registry[i].name, 2);
        if (d < best_d) {
          best_d = d;
          best = registry[i].name;
        }
      }
      if (best)
        PERR(name, "unknown pass '%s'; did you mean '%s'?", buf, best);
      else
        PERR(name, "unknown pass '%s' (see --list-passes)", buf);
      break;
    }
    if (pl->n == cap) {
      cap = cap ? cap * 2 : 8;
      pl->passes = tgc_arena_grow(&pl->arena, pl->passes, pl->n, cap, sizeof *pl->passes);
    }
    pass_instance *inst = &pl->passes[pl->n++];
    memset(inst, 0, sizeof *inst);
    inst->pass = pi;
    p = skip_ws(p);
    if (*p == '{') {
      p = skip_ws(p + 1);
      uint32_t ocap = 0;
      while (*p && *p != '}') {
        const char *key = p;
        while (is_name_char(*p))
          p++;
        size_t klen = (size_t)(p - key);
        const char *type;
        if (!klen) {
          PERR(p, "expected an option name, found '%c'", *p ? *p : ' ');
          goto done;
        }
        if (!option_known(pi, key, klen, &type)) {
          PERR(key, "pass '%s' has no option '%.*s'%s%s", pi->name, (int)klen, key,
               pi->options[0] ? "; its options: " : " (it takes none)", pi->options);
          goto done;
        }
        p = skip_ws(p);
        if (*p != '=') {
          PERR(p, "expected '=' after option '%.*s'", (int)klen, key);
          goto done;
        }
        p = skip_ws(p + 1);
        const char *value = p;
        while (*p && *p != ',' && *p != '}' && *p != ' ')
          p++;
        if (p == value) {
          PERR(p, "expected a value for option '%.*s'", (int)klen, key);
          goto done;
        }
        if (strncmp(type, "int", 3) == 0) {
          char *end;
          strtoll(value, &end, 10);
          if (end != p) {
            PERR(value, "option '%.*s' of '%s' expects an integer, not '%.*s'", (int)klen, key, pi->name,
                 (int)(p - value), value);
            goto done;
          }
        }
        if (strncmp(type, "float", 5) == 0) {
          char *end;
          strtod(value, &end);
          if (end != p) {
            PERR(value, "option '%.*s' of '%s' expects a number, not '%.*s'", (int)klen, key, pi->name,
                 (int)(p - value), value);
            goto done;
          }
        }
        if (inst->noptions == ocap) {
          ocap = ocap ? ocap * 2 : 4;
          inst->options = tgc_arena_grow(&pl->arena, inst->options, inst->noptions, ocap, sizeof *inst->options);
        }
        inst->options[inst->noptions].key = tgc_arena_strndup(&pl->arena, key, klen);
        inst->options[inst->noptions].value = tgc_arena_strndup(&pl->arena, value, (size_t)(p - value));
        inst->noptions++;
        p = skip_ws(p);
        if (*p == ',')
          p = skip_ws(p + 1);
        else if (!*p) {
          PERR(p, "unterminated options of '%s': expected '}'", pi->name);
          goto done;
        } else if (*p != '}') {
          PERR(p, "expected ',' or '}' in the options of '%s'", pi->name);
          goto done;
        }
      }
      if (*p != '}') {
        PERR(p, "unterminated options of '%s': expected '}'", pi->name);
        break;
      }
      p = skip_ws(p + 1);
    }
    if (*p == ',') {
      p = skip_ws(p + 1);
      if (!*p) {
        PERR(p, "expected a pass name after ','");
        break;
      }
    } else if (*p) {
      PERR(p, "expected ',' between passes, found '%c'", *p);
      break;
    }
  }
done:
#undef PERR
  if (diag->nerrors != errors) {
    tgc_pipeline_destroy(pl);
    return NULL;
  }
  return pl;
}

void tgc_pipeline_destroy(tgc_pipeline *p) {
  if (!p)
    return;
  tgc_arena_free(&p->arena);
  free(p);
}

void tgc_pipeline_print(const tgc_pipeline *p, tgc_strbuf *out) {
  for (uint32_t i = 0; i < p->n; i++) {
    if (i)
      tgc_sb_putc(out, ',');
    tgc_sb_puts(out, p->passes[i].pass->name);
    if (p->passes[i].noptions) {
      tgc_sb_putc(out, '{');
      for (uint32_t k = 0; k < p->passes[i].noptions; k++)
        tgc_sb_printf(out, "%s%s=%s", k ? "," : "", p->passes[i].options[k].key, p->passes[i].options[k].value);
      tgc_sb_putc(out, '}');
    }
  }
}

/* ---- options ---- */

static const char *opt_value(tgc_pass_ctx *ctx, const char *key) {
  for (uint32_t i = 0; i < ctx->noptions; i++)
    if (strcmp(ctx->options[i].key, key) == 0)
      return ctx->options[i].value;
  return NULL;
}

int64_t tgc_pass_opt_int(tgc_pass_ctx *ctx, const char *key, int64_t dflt, bool *bad) {
  const char *v = opt_value(ctx, key);
  if (!v)
    return dflt;
  char *end;
  long long x = strtoll(v, &end, 10);
  if (*end) {
    tgc_loc loc = {NULL, 0, 0};
    tgc_error(ctx->diag, loc, "option '%s' expects an integer, not '%s'", key, v);
    if (bad)
      *bad = true;
    return dflt;
  }
  return x;
}

double tgc_pass_opt_float(tgc_pass_ctx *ctx, const char *key, double dflt, bool *bad) {
  const char *v = opt_value(ctx, key);
  if (!v)
    return dflt;
  char *end;
  double x = strtod(v, &end);
  if (!*v || *end || !isfinite(x)) {
    tgc_loc loc = {NULL, 0, 0};
    tgc_error(ctx->diag, loc, "option '%s' expects a number, not '%s'", key, v);
    if (bad)
      *bad = true;
    return dflt;
  }
  return x;
}

const char *tgc_pass_opt_str(tgc_pass_ctx *ctx, const char *key) { return opt_value(ctx, key); }

void tgc_pass_remark(tgc_pass_ctx *ctx, bool missed, const tgc_op *op, const char *fmt, ...) {
  const char *name = missed ? ctx->remark_missed : ctx->remark_pass;
  if (!name)
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  tgc_diag_report(ctx->diag, TGC_DIAG_REMARK, op->loc, "%s [-Rpass%s=%s]", msg, missed ? "-missed" : "", name);
}

bool tgc_pass_opt_bool(tgc_pass_ctx *ctx, const char *key, bool dflt, bool *bad) {
  const char *v = opt_value(ctx, key);
  if (!v)
    return dflt;
  if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
    return true;
  if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
    return false;
  tgc_loc loc = {NULL, 0, 0};
  tgc_error(ctx->diag, loc, "option '%s' expects true or false, not '%s'", key, v);
  if (bad)
    *bad = true;
  return dflt;
}

/* ---- instrumentation ---- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool in_list(const char *list, const char *name) {
  if (!list)
    return false;
  size_t n = strlen(name);
  for (const char *p = list; *p;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (len == n && memcmp(p, name, n) == 0)
      return true;
    if (!comma)
      break;
    p = comma + 1;
  }
  return false;
}

static void dump(const tgc_pm_options *o, const char *when, const char *pass, const tgc_module *m) {
  tgc_strbuf b;
  tgc_sb_init(&b);
  tgc_print_module(m, &b);
  fprintf(o->dump, "// -----// IR Dump %s %s //----- //\n%s\n", when, pass, b.data);
  tgc_sb_free(&b);
}

/* ---- contracts: the IR properties of passes.def, one check each ---- */

/* The first op (or block, for an argument) where B is not typed, else NULL; *WHAT says which value. */
static bool find_untyped(const tgc_block *b, tgc_loc *where, tgc_strbuf *what) {
  for (uint32_t i = 0; i < b->nargs; i++)
    if (!b->args[i]->type) {
      *where = b->loc;
      tgc_sb_printf(what, "argument #%u of this block has no type", i);
      return true;
    }
  for (const tgc_op *o = b->first; o; o = o->next) {
    for (uint32_t i = 0; i < o->nresults; i++)
      if (!o->results[i].type) {
        *where = o->loc;
        tgc_sb_printf(what, "result #%u of this '%s' has no type", i, tgc_op_name(o->opcode));
        return true;
      }
    if (o->region && find_untyped(o->region, where, what))
      return true;
  }
  return false;
}

static bool find_fusion(const tgc_block *b, tgc_loc *where, tgc_strbuf *what) {
  for (const tgc_op *o = b->first; o; o = o->next)
    if (o->opcode == TGC_OP_FUSION) {
      *where = o->loc;
      tgc_sb_puts(what, "this is a fusion op");
      return true;
    }
  return false;
}

typedef struct {
  unsigned prop;
  const char *name;
  bool (*violated)(const tgc_block *b, tgc_loc *where, tgc_strbuf *what); /* the first place it fails */
} prop_info;

static const prop_info props[] = {
    {TGC_PROP_TYPED, "typed", find_untyped},
    {TGC_PROP_UNFUSED, "unfused", find_fusion},
};
enum { NPROPS = sizeof props / sizeof props[0] };

/* True when property P holds for every function of M; else the first violation is in *WHERE and WHAT. */
static bool prop_holds(const prop_info *p, const tgc_module *m, tgc_loc *where, tgc_strbuf *what) {
  for (const tgc_func *f = m->funcs; f; f = f->next)
    if (p->violated(f->body, where, what))
      return false;
  return true;
}

/* The set of properties that hold for M now. */
static unsigned props_holding(const tgc_module *m) {
  unsigned held = 0;
  for (int i = 0; i < NPROPS; i++) {
    tgc_loc where;
    tgc_strbuf what;
    tgc_sb_init(&what);
    if (prop_holds(&props[i], m, &where, &what))
      held |= props[i].prop;
    tgc_sb_free(&what);
  }
  return held;
}

/* Under --verify-each: every property PASS claims to preserve that held before it (HELD) still holds. An error
 * at the first violation of each broken one; returns how many broke. */
static int check_preserved(const pass_info *pass, unsigned held, const tgc_module *m, tgc_diag *diag) {
  int broken = 0;
  for (int i = 0; i < NPROPS; i++) {
    if (!(held & pass->preserves & props[i].prop))
      continue;
    tgc_loc where = {NULL, 0, 0};
    tgc_strbuf what;
    tgc_sb_init(&what);
    if (!prop_holds(&props[i], m, &where, &what)) {
      tgc_error(diag, where, "pass '%s' breaks its contract: it claims to preserve '%s' (passes/passes.def), "
                "but after it %s", pass->name, props[i].name, what.data);
      broken++;
    }
    tgc_sb_free(&what);
  }
  return broken;
}

/* ---- numeric verification ---- */

typedef struct {
  const char *weights_path;
  uint64_t seed;
} numerics;

int tgc_module_weights_open(const tgc_module *m, const char *path, tgc_rt_weights **out, tgc_rt_err *err) {
  tgc_rt_weights *w = NULL;
  if (path) {
    if (tgc_rt_weights_open(path, &w, err))
      return -1;
  } else {
    w = tgc_rt_weights_new(m->name);
  }
  for (const tgc_module_weight *mw = m->weights; mw; mw = mw->next) {
    tgc_rt_tensor t = {.dtype = mw->dtype, .rank = mw->rank, .data = mw->data, .owned = false};
    memcpy(t.shape, mw->shape, sizeof(int64_t) * mw->rank);
    if (tgc_rt_weights_add(w, mw->name, &t, err)) {
      tgc_rt_weights_release(w);
      return -1;
    }
  }
  *out = w;
  return 0;
}

/* Runs the entry function of M on random inputs drawn from SEED; OUT receives owned outputs. */
static int run_entry(const numerics *nu, tgc_module *m, uint64_t seed, tgc_rt_tensor **out, uint32_t *nout,
                     tgc_rt_err *err) {
  const tgc_func *f = tgc_module_find_func(m, "main");
  if (!f)
    f = m->funcs;
  if (!f) {
    *nout = 0;
    return 0;
  }
  const tgc_rt_plan *p = tgc_lower_func(m, f);
  int64_t syms[64];
  for (uint32_t s = 0; s < p->nsyms && s < 64; s++)
    syms[s] = 3; /* every symbolic dim 3: small, and different from the static dims of typical tests */
  tgc_rt_tensor *in = tgc_xcalloc(p->ninputs + 1, sizeof *in);
  int rc = 0;
  uint64_t rng = seed;
  for (uint32_t i = 0; i < p->ninputs && rc == 0; i++) {
    const tgc_rt_type *t = &p->input_types[i];
    int64_t shape[TGC_RT_MAX_RANK];
    for (uint32_t d = 0; d < t->rank; d++)
      if (!tgc_rt_poly_eval(&t->dims[d], syms, &shape[d]) || shape[d] < 0)
        rc = tgc_rt_errorf(err, "cannot size input '%%%s' for numeric verification", p->input_names[i]);
    if (rc == 0 && tgc_rt_tensor_alloc(&in[i], t->dtype, t->rank, shape, err) == 0)
      tgc_rt_fill_random(&in[i], &rng);
    else
      rc = -1;
  }
  *nout = p->noutputs;
  *out = tgc_xcalloc(p->noutputs + 1, sizeof **out);
  tgc_rt_weights *w = NULL;
  if (rc == 0 && (nu->weights_path || m->weights))
    rc = tgc_module_weights_open(m, nu->weights_path, &w, err);
  if (rc == 0) {
    tgc_rt_cpu_opts co = {w, nu->weights_path, NULL};
    rc = tgc_rt_cpu_run(p, in, *out, &co, err);
  }
  tgc_rt_weights_release(w);
  for (uint32_t i = 0; i < p->ninputs; i++)
    tgc_rt_tensor_free(&in[i]);
  free(in);
  return rc;
}

static void free_outputs(tgc_rt_tensor *t, uint32_t n) {
  for (uint32_t i = 0; t && i < n; i++)
    tgc_rt_tensor_free(&t[i]);
  free(t);
}

/* Compares the outputs before and after PASS; reports the first divergence. */
static int compare_outputs(tgc_diag *diag, const char *pass, double pass_tol, const tgc_rt_tensor *a, uint32_t na,
                           const tgc_rt_tensor *b, uint32_t nb) {
  tgc_loc none = {NULL, 0, 0};
  if (na != nb) {
    tgc_error(diag, none, "numeric verification: after '%s' the entry function returns %u values instead of %u",
              pass, nb, na);
    return 1;
  }
  for (uint32_t i = 0; i < na; i++) {
    char sa[256], sb[256];
    tgc_rt_shape_str(a[i].rank, a[i].shape, sa, sizeof sa);
    tgc_rt_shape_str(b[i].rank, b[i].shape, sb, sizeof sb);
    if (a[i].dtype != b[i].dtype || strcmp(sa, sb) != 0) {
      tgc_error(diag, none, "numeric verification: after '%s' output %u is %s%s instead of %s%s", pass, i,
                tgc_dtype_name(b[i].dtype), sb, tgc_dtype_name(a[i].dtype), sa);
      return 1;
    }
    /* the one comparison (runtime/tensor.c), as tgc run --check judges: the output before the pass is the
     * reference */
    tgc_rt_compare_result r;
    tgc_rt_compare(&b[i], &a[i], &r);
    bool flt = tgc_dtype_kind_of(a[i].dtype) == TGC_DTK_FLOAT;
    if (flt && pass_tol > r.tol) { /* a pass that changes the numbers on purpose is judged by its own bound */
      r.tol = pass_tol;
      r.ok = r.mismatches == 0 && r.rel <= r.tol;
    }
    if (r.ok)
      continue;
    tgc_strbuf why;
    tgc_sb_init(&why);
    if (!flt)
      tgc_sb_printf(&why, "%zu elements differ (compared exactly)", r.mismatches);
    else if (r.rel > r.tol)
      tgc_sb_printf(&why, "relative error %.3g exceeds %g%s", r.rel, r.tol,
                    r.mismatches ? ", and NaNs or infinities differ" : "");
    else
      tgc_sb_printf(&why, "%zu NaN or infinite values differ (relative error %.3g of the finite ones)",
                    r.mismatches, r.rel);
    tgc_error(diag, none, "numeric verification: '%s' changed output %u (%s%s): %s", pass, i,
              tgc_dtype_name(a[i].dtype), sa, why.data);
    tgc_sb_free(&why);
    return 1;
  }
  return 0;
}

/* ---- the run loop ---- */

int tgc_pipeline_run(const tgc_pipeline *p, tgc_module *m, tgc_diag *diag, const tgc_pm_options *o) {
  double *times = tgc_xcalloc(p->n + 1, sizeof *times);
  double verify_time = 0, numerics_time = 0, total0 = now_s();
  int rc = 0;
  tgc_loc none = {NULL, 0, 0};
  numerics nu = {o->weights_path, o->numerics_seed};
  if (o->verify_numerics && o->weights_path) {
    tgc_rt_err err;
    tgc_rt_weights *weights = NULL;
    if (tgc_rt_weights_open(o->weights_path, &weights, &err) != 0) { /* say so before any pass runs */
      tgc_error(diag, none, "numeric verification: %s", err.msg);
      free(times);
      return 1;
    }
    tgc_rt_weights_release(weights);
  }
  for (uint32_t i = 0; i < p->n && rc == 0; i++) {
    const pass_instance *inst = &p->passes[i];
    const char *name = inst->pass->name;
    unsigned held = o->verify_each || inst->pass->requires ? props_holding(m) : 0;
    if ((inst->pass->requires & TGC_PROP_TYPED) && !(held & TGC_PROP_TYPED)) {
      tgc_error(diag, none, "pass '%s' needs every value typed: run 'shape-infer' before it", name);
      rc = 1;
      break;
    }
    if ((inst->pass->requires & TGC_PROP_UNFUSED) && !(held & TGC_PROP_UNFUSED)) {
      tgc_error(diag, none, "pass '%s' needs IR without fusion ops: run it before 'fuse'", name);
      rc = 1;
      break;
    }
    if (o->print_before_all || in_list(o->print_before, name))
      dump(o, "Before", name, m);
    tgc_rt_tensor *before = NULL, *after = NULL;
    uint32_t nbefore = 0, nafter = 0;
    if (o->verify_numerics) {
      double t0 = now_s();
      tgc_rt_err err;
      if (run_entry(&nu, m, o->numerics_seed + i, &before, &nbefore, &err) != 0) {
        tgc_error(diag, none, "numeric verification: the module does not run before '%s': %s", name, err.msg);
        free_outputs(before, nbefore);
        rc = 1;
        break;
      }
      numerics_time += now_s() - t0;
    }
    tgc_arena scratch;
    tgc_arena_init(&scratch);
    /* a pass sees its own name as remark_pass/remark_missed when the -Rpass regexes match it, else NULL */
    tgc_pass_ctx ctx = {.module = m,
                        .diag = diag,
                        .scratch = &scratch,
                        .options = inst->options,
                        .noptions = inst->noptions,
                        .remark_pass = remark_regex_matches(o->remark_pass, name) ? name : NULL,
                        .remark_missed = remark_regex_matches(o->remark_missed, name) ? name : NULL,
                        .weights_path = o->weights_path};
    int errors = diag->nerrors;
    double t0 = now_s();
    int prc = inst->pass->fn(&ctx);
    times[i] = now_s() - t0;
    double ctx_tol = ctx.numerics_tol;
    tgc_arena_free(&scratch);
    if (prc != 0 || diag->nerrors != errors) {
      if (diag->nerrors == errors)
        tgc_error(diag, none, "pass '%s' failed", name);
      free_outputs(before, nbefore);
      rc = 1;
      break;
    }
    if (o->print_after_all || in_list(o->print_after, name))
      dump(o, "After", name, m);
    if (o->verify_each) {
      double v0 = now_s();
      int n = tgc_verify_module(m, diag);
      if (n) {
        verify_time += now_s() - v0;
        tgc_error(diag, none, "the IR is invalid after pass '%s' (%d error%s above)", name, n, n == 1 ? "" : "s");
        free_outputs(before, nbefore);
        rc = 1;
        break;
      }
      n = check_preserved(inst->pass, held, m, diag);
      verify_time += now_s() - v0;
      if (n) {
        free_outputs(before, nbefore);
        rc = 1;
        break;
      }
    }
    if (o->verify_numerics) {
      double n0 = now_s();
      tgc_rt_err err;
      if (run_entry(&nu, m, o->numerics_seed + i, &after, &nafter, &err) != 0) {
        tgc_error(diag, none, "numeric verification: the module no longer runs after '%s': %s", name, err.msg);
        rc = 1;
      } else {
        rc = compare_outputs(diag, name, ctx_tol, before, nbefore, after, nafter);
      }
      numerics_time += now_s() - n0;
      free_outputs(before, nbefore);
      free_outputs(after, nafter);
    }
  }
  double total = now_s() - total0;
  if (o->time_passes) {
    FILE *f = o->dump;
    fprintf(f, "===-------------------------------------------------------------------------===\n");
    fprintf(f, "                      ... Pass execution timing report ...\n");
    fprintf(f, "===-------------------------------------------------------------------------===\n");
    fprintf(f, "  Total Execution Time: %.4f seconds\n\n", total);
    fprintf(f, "   ---Wall Time---  --- Name ---\n");
    for (uint32_t i = 0; i < p->n; i++)
      fprintf(f, "   %.4f (%5.1f%%)  %s\n", times[i], total > 0 ? 100.0 * times[i] / total : 0.0, p->passes[i].pass->name);
    if (o->verify_each)
      fprintf(f, "   %.4f (%5.1f%%)  verifier\n", verify_time, total > 0 ? 100.0 * verify_time / total : 0.0);
    if (o->verify_numerics)
      fprintf(f, "   %.4f (%5.1f%%)  numeric verification\n", numerics_time,
              total > 0 ? 100.0 * numerics_time / total : 0.0);
    fprintf(f, "   %.4f (100.0%%)  Total\n", total);
  }
  free(times);
  return rc;
}

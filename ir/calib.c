/* Calibration statistics as IR attributes (calib.*) and the methods that pick a clipping threshold from a
 * histogram of |x| (ir/calib.h). tgc calibrate writes them, the verifier checks them, the quantize pass reads them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib.h"

/* The per-value statistics, in the order they are written. */
static const char *const stat_names[] = {"amax", "absmax", "min", "max", "chmax", "clip"};
enum { NSTATS = sizeof stat_names / sizeof stat_names[0] };

bool tgc_calib_is_attr(const char *name) { return strncmp(name, "calib.", 6) == 0; }

/* ---- reading and writing ---- */

/* The attributes V's statistics live in, and the prefix of their names ("calib." or "calib.argN."). */
static tgc_attrs *stats_home(const tgc_value *v, char *prefix, size_t n) {
  if (v->def) {
    if (v->def->nresults != 1)
      return NULL;
    snprintf(prefix, n, "calib.");
    return &v->def->attrs;
  }
  if (!v->block || v->block->parent_op || !v->block->parent_func)
    return NULL; /* an argument of a fusion region */
  snprintf(prefix, n, "calib.arg%u.", v->index);
  return &v->block->parent_func->attrs;
}

static const tgc_attr *get_stat(const tgc_attrs *a, const char *prefix, const char *stat) {
  char name[96];
  snprintf(name, sizeof name, "%s%s", prefix, stat);
  return tgc_attrs_get(a, name);
}

static double num(const tgc_attr *a) {
  if (!a)
    return NAN;
  return a->kind == TGC_ATTR_FLOAT ? a->u.f : a->kind == TGC_ATTR_INT ? (double)a->u.i : NAN;
}

/* The module V belongs to, for the arena that holds chmax. */
static tgc_module *module_of(const tgc_value *v) {
  const tgc_block *b = v->def ? v->def->parent : v->block;
  return b && b->parent_func ? b->parent_func->module : NULL;
}

bool tgc_calib_get(const tgc_value *v, tgc_calib *out) {
  memset(out, 0, sizeof *out);
  out->amax = out->absmax = out->min = out->max = out->clip = NAN;
  char prefix[48];
  tgc_attrs *home = stats_home(v, prefix, sizeof prefix);
  const tgc_attr *amax = home ? get_stat(home, prefix, "amax") : NULL;
  if (!amax)
    return false;
  out->present = true;
  out->amax = num(amax);
  out->absmax = num(get_stat(home, prefix, "absmax"));
  out->min = num(get_stat(home, prefix, "min"));
  out->max = num(get_stat(home, prefix, "max"));
  out->clip = num(get_stat(home, prefix, "clip"));
  const tgc_attr *ch = get_stat(home, prefix, "chmax");
  tgc_module *m = module_of(v);
  if (ch && ch->kind == TGC_ATTR_LIST && ch->u.list.n && m) {
    /* like every IR object, the array lives in the module's arena (reading allocates; the IR is unchanged) */
    double *d = tgc_arena_alloc(&m->arena, sizeof *d * ch->u.list.n);
    for (uint32_t i = 0; i < ch->u.list.n; i++)
      d[i] = num(ch->u.list.items[i]);
    out->chmax = d;
    out->nch = ch->u.list.n;
  }
  return true;
}

bool tgc_calib_set(tgc_module *m, tgc_value *v, const tgc_calib *c) {
  char prefix[48], name[96];
  tgc_attrs *home = stats_home(v, prefix, sizeof prefix);
  if (!home)
    return false;
  tgc_loc loc = v->def ? v->def->loc : v->loc;
  const double vals[NSTATS] = {c->amax, c->absmax, c->min, c->max, 0, c->clip};
  for (int k = 0; k < NSTATS; k++) {
    const tgc_attr *a;
    if (strcmp(stat_names[k], "chmax") == 0) {
      const tgc_attr **items = tgc_arena_alloc(&m->arena, sizeof *items * (c->nch + 1));
      for (uint32_t i = 0; i < c->nch; i++)
        items[i] = tgc_attr_float(&m->arena, c->chmax[i]);
      a = tgc_attr_list(&m->arena, items, c->nch);
    } else {
      a = tgc_attr_float(&m->arena, vals[k]);
    }
    snprintf(name, sizeof name, "%s%s", prefix, stat_names[k]);
    tgc_attrs_set(&m->arena, home, tgc_module_strdup(m, name, strlen(name)), a, loc);
  }
  return true;
}

void tgc_calib_set_run(tgc_module *m, const char *method, int64_t samples, const char *data, int64_t seed) {
  tgc_attrs_set(&m->arena, &m->attrs, "calib.method", tgc_attr_str(&m->arena, method, strlen(method)), m->loc);
  tgc_attrs_set(&m->arena, &m->attrs, "calib.samples", tgc_attr_int(&m->arena, samples), m->loc);
  if (data)
    tgc_attrs_set(&m->arena, &m->attrs, "calib.data", tgc_attr_str(&m->arena, data, strlen(data)), m->loc);
  else
    tgc_attrs_set(&m->arena, &m->attrs, "calib.seed", tgc_attr_int(&m->arena, seed), m->loc);
}

static void clear_attrs(tgc_attrs *a) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < a->n; i++)
    if (!tgc_calib_is_attr(a->items[i].name))
      a->items[k++] = a->items[i];
  a->n = k;
}

static void clear_block(tgc_block *b) {
  for (tgc_op *o = b->first; o; o = o->next) {
    clear_attrs(&o->attrs);
    if (o->region)
      clear_block(o->region);
  }
}

void tgc_calib_clear(tgc_module *m) {
  clear_attrs(&m->attrs);
  for (tgc_func *f = m->funcs; f; f = f->next) {
    clear_attrs(&f->attrs);
    clear_block(f->body);
  }
}

/* ---- the verifier's rules ---- */

static bool is_num(const tgc_attr *a) { return a->kind == TGC_ATTR_FLOAT || a->kind == TGC_ATTR_INT; }

/* Checks statistic STAT (a name of stat_names) = A; FULL is the attribute's name for messages. */
static bool check_stat(const char *full, const char *stat, const tgc_attr *a, tgc_strbuf *why) {
  int k = 0;
  while (k < NSTATS && strcmp(stat_names[k], stat) != 0)
    k++;
  if (k == NSTATS) {
    tgc_sb_printf(why, "unknown calibration statistic '%s' (known: calib.amax, calib.absmax, calib.min, calib.max, "
                  "calib.chmax, calib.clip)", full);
    return false;
  }
  if (strcmp(stat, "chmax") == 0) {
    bool ok = a->kind == TGC_ATTR_LIST;
    for (uint32_t i = 0; ok && i < a->u.list.n; i++)
      ok = is_num(a->u.list.items[i]);
    if (!ok)
      tgc_sb_printf(why, "attribute '%s' must be a list of floats", full);
    return ok;
  }
  if (!is_num(a))
    tgc_sb_printf(why, "attribute '%s' must be a float", full);
  return is_num(a);
}

bool tgc_calib_check_attr(tgc_calib_site site, const char *name, const tgc_attr *a, uint32_t n, tgc_strbuf *why) {
  const char *rest = name + 6; /* after "calib." */
  switch (site) {
  case TGC_CALIB_ON_OP:
    if (!check_stat(name, rest, a, why))
      return false;
    if (n != 1) {
      tgc_sb_printf(why, "'%s' describes an op's one result, but this op has %u results", name, n);
      return false;
    }
    return true;
  case TGC_CALIB_ON_FUNC: {
    char *end;
    unsigned long arg = strncmp(rest, "arg", 3) == 0 && rest[3] >= '0' && rest[3] <= '9' ? strtoul(rest + 3, &end, 10)
                                                                                           : 0;
    if (strncmp(rest, "arg", 3) != 0 || rest[3] < '0' || rest[3] > '9' || *end != '.') {
      tgc_sb_printf(why, "a function's calibration attribute is named calib.argN.STAT, not '%s'", name);
      return false;
    }
    if (arg >= n) {
      tgc_sb_printf(why, "'%s' names argument #%lu, but the function has %u argument%s", name, arg, n,
                    n == 1 ? "" : "s");
      return false;
    }
    return check_stat(name, end + 1, a, why);
  }
  case TGC_CALIB_ON_MODULE:
    if (strcmp(rest, "method") == 0) {
      tgc_calib_method m;
      if (a->kind != TGC_ATTR_STR) {
        tgc_sb_printf(why, "attribute 'calib.method' must be a string");
        return false;
      }
      tgc_strbuf reason;
      tgc_sb_init(&reason);
      bool ok = strlen(a->u.s) == a->len && tgc_calib_method_parse(a->u.s, &m, &reason);
      if (!ok)
        tgc_sb_printf(why, "bad 'calib.method' \"%s\": %s", a->u.s, reason.data ? reason.data : "a NUL byte");
      tgc_sb_free(&reason);
      return ok;
    }
    if (strcmp(rest, "data") == 0) {
      if (a->kind != TGC_ATTR_STR)
        tgc_sb_printf(why, "attribute 'calib.data' must be a string (the --data directory)");
      return a->kind == TGC_ATTR_STR;
    }
    if (strcmp(rest, "samples") == 0 || strcmp(rest, "seed") == 0) {
      bool ok = a->kind == TGC_ATTR_INT && a->u.i >= 0;
      if (!ok)
        tgc_sb_printf(why, "attribute '%s' must be a non-negative integer", name);
      return ok;
    }
    tgc_sb_printf(why, "unknown module attribute '%s' (known: calib.method, calib.samples, calib.data, calib.seed)",
                  name);
    return false;
  }
  tgc_unreachable();
}

/* ---- methods ---- */

bool tgc_calib_method_parse(const char *s, tgc_calib_method *m, tgc_strbuf *why) {
  memset(m, 0, sizeof *m);
  if (strcmp(s, "minmax") == 0) {
    m->kind = TGC_CALIB_MINMAX;
    return true;
  }
  if (strcmp(s, "entropy") == 0) {
    m->kind = TGC_CALIB_ENTROPY;
    return true;
  }
  if (strcmp(s, "mse") == 0) {
    m->kind = TGC_CALIB_MSE;
    return true;
  }
  if (strncmp(s, "percentile:", 11) == 0) {
    const char *p = s + 11;
    char *end = NULL;
    /* a plain decimal number: no sign, spaces, hex or exponent surprises */
    bool ok = (p[0] >= '0' && p[0] <= '9') || (p[0] == '.' && p[1] >= '0' && p[1] <= '9');
    for (const char *q = p; ok && *q; q++)
      ok = (*q >= '0' && *q <= '9') || *q == '.';
    double v = ok ? strtod(p, &end) : 0;
    if (!ok || *end || !(v > 0 && v <= 100)) {
      tgc_sb_printf(why, "the percentile must be a number P with 0 < P <= 100");
      return false;
    }
    m->kind = TGC_CALIB_PERCENTILE;
    m->percentile = v;
    return true;
  }
  tgc_sb_printf(why, "unknown method (use minmax, percentile:P, entropy or mse)");
  return false;
}

bool tgc_calib_method_needs_hist(const tgc_calib_method *m) { return m->kind != TGC_CALIB_MINMAX; }

double tgc_calib_edge(uint32_t i, double absmax) { return (double)i * (absmax / TGC_CALIB_BINS); }

uint32_t tgc_calib_bin(double a, double absmax) {
  /* a first guess, then corrected against the edges themselves, so that the bins are exactly those edge()
   * bounds (a reference implementation finds them with a sorted search) */
  double g = a / absmax * TGC_CALIB_BINS;
  uint32_t k = g >= TGC_CALIB_BINS ? TGC_CALIB_BINS - 1 : g > 0 ? (uint32_t)g : 0;
  while (k > 0 && tgc_calib_edge(k, absmax) >= a)
    k--;
  while (k + 1 < TGC_CALIB_BINS && tgc_calib_edge(k + 1, absmax) < a)
    k++;
  return k;
}

static uint32_t percentile(double p, const uint64_t *hist) {
  uint64_t total = 0, cum = 0;
  for (uint32_t k = 0; k < TGC_CALIB_BINS; k++)
    total += hist[k];
  double target = p / 100.0 * (double)total;
  for (uint32_t k = 0; k < TGC_CALIB_BINS; k++) {
    cum += hist[k];
    if ((double)cum >= target)
      return k + 1;
  }
  return TGC_CALIB_BINS;
}

/* TensorRT's KL-divergence calibration (docs/cli.md gives the exact definition the tests compare with). */
static uint32_t entropy(const uint64_t *hist_in) {
  /* TensorRT's calibration (as NVIDIA's pytorch-quantization computes it): bin 0 (exact zeros, often a large
   * share after ReLU or GELU) counts as bin 1 does; the reference P is the histogram cut at i with the tail added to
   * its last bin, the candidate Q the cut histogram WITHOUT the tail merged into 128 levels and spread back over
   * each level's non-empty bins; both normalized, KL(P||Q) is infinite where Q is 0 and P is not. */
  static uint64_t h[TGC_CALIB_BINS];
  memcpy(h, hist_in, sizeof h);
  h[0] = h[1];
  uint64_t total = 0;
  for (uint32_t k = 0; k < TGC_CALIB_BINS; k++)
    total += h[k];
  uint64_t tail[TGC_CALIB_BINS + 1]; /* tail[i] = sum of h[i:] */
  tail[TGC_CALIB_BINS] = 0;
  for (uint32_t k = TGC_CALIB_BINS; k-- > 0;)
    tail[k] = tail[k + 1] + h[k];
  static const uint32_t L = TGC_CALIB_LEVELS;
  double sum[TGC_CALIB_LEVELS];
  uint32_t nonzero[TGC_CALIB_LEVELS];
  double best = INFINITY;
  uint32_t best_i = TGC_CALIB_BINS;
  for (uint32_t i = L; i <= TGC_CALIB_BINS; i++) {
    uint64_t qtotal = total - tail[i];
    if (!qtotal || !total)
      continue;
    memset(sum, 0, sizeof sum);
    memset(nonzero, 0, sizeof nonzero);
    for (uint32_t j = 0; j < i; j++) {
      sum[(uint64_t)j * L / i] += (double)h[j];
      nonzero[(uint64_t)j * L / i] += h[j] != 0;
    }
    double kl = 0;
    for (uint32_t j = 0; j < i && kl < INFINITY; j++) {
      uint64_t p = j == i - 1 ? h[j] + tail[i] : h[j];
      if (!p)
        continue;
      uint32_t l = (uint32_t)((uint64_t)j * L / i);
      double q = h[j] ? sum[l] / (double)nonzero[l] / (double)qtotal : 0, pn = (double)p / (double)total;
      kl = q > 0 ? kl + pn * log(pn / q) : INFINITY;
    }
    if (kl <= best && kl < INFINITY) { /* ties go to the larger threshold, which clips less */
      best = kl;
      best_i = i;
    }
  }
  return best_i;
}

/* The threshold minimizing the squared error of symmetric int8 quantization over the bin centres. */
static uint32_t mse(const uint64_t *hist) {
  double best = INFINITY;
  uint32_t best_i = TGC_CALIB_BINS;
  /* on [0, 1] rather than [0, absmax]: the error scales with absmax^2, so the argmin is the same, and the result
   * does not depend on absmax's rounding */
  for (uint32_t i = 1; i <= TGC_CALIB_BINS; i++) {
    double err = 0;
    for (uint32_t k = 0; k < TGC_CALIB_BINS; k++) {
      if (!hist[k])
        continue;
      double c = ((double)k + 0.5) / TGC_CALIB_BINS, s = (double)i / TGC_CALIB_BINS / 127.0;
      double d = c - fmin(rint(c / s), 127.0) * s;
      err += (double)hist[k] * d * d;
    }
    if (err <= best) {
      best = err;
      best_i = i;
    }
  }
  return best_i;
}

uint32_t tgc_calib_threshold(const tgc_calib_method *m, const uint64_t *hist) {
  switch (m->kind) {
  case TGC_CALIB_MINMAX:
    return TGC_CALIB_BINS;
  case TGC_CALIB_PERCENTILE:
    return percentile(m->percentile, hist);
  case TGC_CALIB_ENTROPY:
    return entropy(hist);
  case TGC_CALIB_MSE:
    return mse(hist);
  }
  tgc_unreachable();
}

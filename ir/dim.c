/* Symbolic dims as canonical polynomials over named symbols (see tgc_dim in ir.h). */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

enum { MAX_TERMS = 64, MAX_DEGREE = 16 };

/* Like terms are combined in 128 bits and range-checked once, so that the order of the terms never decides
 * whether an intermediate sum overflows. */
__extension__ typedef __int128 wide;

static bool fits64(wide w) { return w >= INT64_MIN && w <= INT64_MAX; }

static int sym_cmp(const tgc_sym *a, const tgc_sym *b) { return a == b ? 0 : strcmp(a->name, b->name); }

/* Canonical term order: higher degree first, then lexicographic by symbol names; constants last. */
static int mono_cmp(const tgc_term *a, const tgc_term *b) {
  if (a->nsyms != b->nsyms)
    return a->nsyms > b->nsyms ? -1 : 1;
  for (uint32_t i = 0; i < a->nsyms; i++) {
    int c = sym_cmp(a->syms[i], b->syms[i]);
    if (c)
      return c;
  }
  return 0;
}

const tgc_dim *tgc_dim_const(tgc_arena *a, int64_t v) {
  tgc_dim *d = tgc_arena_alloc(a, sizeof *d);
  if (v != 0) {
    tgc_term *t = tgc_arena_alloc(a, sizeof *t);
    t->coeff = v;
    d->nterms = 1;
    d->terms = t;
  }
  return d;
}

const tgc_dim *tgc_dim_sym(tgc_arena *a, const tgc_sym *s) {
  tgc_dim *d = tgc_arena_alloc(a, sizeof *d);
  tgc_term *t = tgc_arena_alloc(a, sizeof *t);
  const tgc_sym **syms = tgc_arena_alloc(a, sizeof *syms);
  syms[0] = s;
  t->coeff = 1;
  t->nsyms = 1;
  t->syms = syms;
  d->nterms = 1;
  d->terms = t;
  return d;
}

/* Adds x + sign*y term by term (both canonical), merging equal monomials. */
static tgc_dim_status add_signed(tgc_arena *a, const tgc_dim *x, const tgc_dim *y, int sign, const tgc_dim **out) {
  tgc_term *terms = tgc_arena_alloc(a, sizeof *terms * (x->nterms + y->nterms + 1));
  uint32_t n = 0, i = 0, j = 0;
  while (i < x->nterms || j < y->nterms) {
    int c = i == x->nterms ? 1 : j == y->nterms ? -1 : mono_cmp(&x->terms[i], &y->terms[j]);
    tgc_term t;
    wide sum;
    if (c < 0) {
      t = x->terms[i++];
      sum = t.coeff;
    } else {
      t = y->terms[j++];
      sum = sign < 0 ? -(wide)t.coeff : (wide)t.coeff;
      if (c == 0)
        sum += x->terms[i++].coeff;
    }
    if (!fits64(sum))
      return TGC_DIM_OVERFLOW;
    t.coeff = (int64_t)sum;
    if (t.coeff != 0)
      terms[n++] = t;
  }
  if (n > MAX_TERMS)
    return TGC_DIM_TOO_BIG;
  tgc_dim *d = tgc_arena_alloc(a, sizeof *d);
  d->nterms = n;
  d->terms = terms;
  *out = d;
  return TGC_DIM_OK;
}

tgc_dim_status tgc_dim_add(tgc_arena *a, const tgc_dim *x, const tgc_dim *y, const tgc_dim **out) {
  return add_signed(a, x, y, 1, out);
}

tgc_dim_status tgc_dim_sub(tgc_arena *a, const tgc_dim *x, const tgc_dim *y, const tgc_dim **out) {
  return add_signed(a, x, y, -1, out);
}

/* A stable insertion sort of term indices (at most MAX_TERMS * 4 of them). */
static void sort_order(size_t *order, size_t k, const tgc_term *terms) {
  for (size_t i = 1; i < k; i++) {
    size_t x = order[i], j = i;
    while (j > 0 && mono_cmp(&terms[order[j - 1]], &terms[x]) > 0) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = x;
  }
}

tgc_dim_status tgc_dim_mul(tgc_arena *a, const tgc_dim *x, const tgc_dim *y, const tgc_dim **out) {
  size_t n = (size_t)x->nterms * y->nterms;
  if (n > MAX_TERMS * 4)
    return TGC_DIM_TOO_BIG;
  tgc_term *terms = tgc_arena_alloc(a, sizeof *terms * (n + 1));
  wide *prods = tgc_arena_alloc(a, sizeof *prods * (n + 1));
  size_t k = 0;
  for (uint32_t i = 0; i < x->nterms; i++) {
    for (uint32_t j = 0; j < y->nterms; j++) {
      const tgc_term *p = &x->terms[i], *q = &y->terms[j];
      tgc_term *t = &terms[k];
      prods[k++] = (wide)p->coeff * q->coeff; /* exact: |a*b| < 2^126 */
      t->nsyms = p->nsyms + q->nsyms;
      if (t->nsyms > MAX_DEGREE)
        return TGC_DIM_TOO_BIG;
      const tgc_sym **syms = tgc_arena_alloc(a, sizeof *syms * (t->nsyms + 1));
      uint32_t u = 0, v = 0, w = 0;
      while (u < p->nsyms || v < q->nsyms) {
        if (v == q->nsyms || (u < p->nsyms && sym_cmp(p->syms[u], q->syms[v]) <= 0))
          syms[w++] = p->syms[u++];
        else
          syms[w++] = q->syms[v++];
      }
      t->syms = syms;
    }
  }
  /* sort (term, product) pairs together, then combine like terms in 128 bits */
  size_t *order = tgc_arena_alloc(a, sizeof *order * (k + 1));
  for (size_t i = 0; i < k; i++) {
    order[i] = i;
    terms[i].coeff = 0;
  }
  sort_order(order, k, terms);
  tgc_term *sorted = tgc_arena_alloc(a, sizeof *sorted * (k + 1));
  size_t m = 0;
  wide acc = 0;
  for (size_t i = 0; i < k; i++) {
    const tgc_term *t = &terms[order[i]];
    if (m > 0 && mono_cmp(&sorted[m - 1], t) == 0) {
      if (__builtin_add_overflow(acc, prods[order[i]], &acc))
        return TGC_DIM_OVERFLOW;
    } else {
      if (m > 0) {
        if (!fits64(acc))
          return TGC_DIM_OVERFLOW;
        sorted[m - 1].coeff = (int64_t)acc;
      }
      sorted[m++] = *t;
      acc = prods[order[i]];
    }
  }
  if (m > 0) {
    if (!fits64(acc))
      return TGC_DIM_OVERFLOW;
    sorted[m - 1].coeff = (int64_t)acc;
  }
  terms = sorted;
  size_t nz = 0;
  for (size_t i = 0; i < m; i++)
    if (terms[i].coeff != 0)
      terms[nz++] = terms[i];
  m = nz;
  if (m > MAX_TERMS)
    return TGC_DIM_TOO_BIG;
  tgc_dim *d = tgc_arena_alloc(a, sizeof *d);
  d->nterms = (uint32_t)m;
  d->terms = terms;
  *out = d;
  return TGC_DIM_OK;
}

bool tgc_dim_equal(const tgc_dim *x, const tgc_dim *y) {
  if (x == y)
    return true;
  if (x->nterms != y->nterms)
    return false;
  for (uint32_t i = 0; i < x->nterms; i++)
    if (x->terms[i].coeff != y->terms[i].coeff || mono_cmp(&x->terms[i], &y->terms[i]) != 0)
      return false;
  return true;
}

bool tgc_dim_is_const(const tgc_dim *d, int64_t *value) {
  if (d->nterms == 0) {
    if (value)
      *value = 0;
    return true;
  }
  if (d->nterms == 1 && d->terms[0].nsyms == 0) {
    if (value)
      *value = d->terms[0].coeff;
    return true;
  }
  return false;
}

void tgc_dim_print(const tgc_dim *d, tgc_strbuf *buf) {
  if (d->nterms == 0) {
    tgc_sb_putc(buf, '0');
    return;
  }
  for (uint32_t i = 0; i < d->nterms; i++) {
    const tgc_term *t = &d->terms[i];
    bool neg = t->coeff < 0;
    uint64_t mag = neg ? (uint64_t)0 - (uint64_t)t->coeff : (uint64_t)t->coeff;
    if (t->coeff == INT64_MIN) {
      /* its magnitude is no int64 literal: spell it so that it parses back */
      tgc_sb_puts(buf, i == 0 ? "(-9223372036854775807 - 1)" : " + (-9223372036854775807 - 1)");
      for (uint32_t j = 0; j < t->nsyms; j++) {
        tgc_sb_putc(buf, '*');
        tgc_sb_puts(buf, t->syms[j]->name);
      }
      continue;
    }
    if (i == 0)
      tgc_sb_puts(buf, neg ? "-" : "");
    else
      tgc_sb_puts(buf, neg ? " - " : " + ");
    if (t->nsyms == 0) {
      tgc_sb_printf(buf, "%llu", (unsigned long long)mag);
      continue;
    }
    if (mag != 1)
      tgc_sb_printf(buf, "%llu*", (unsigned long long)mag);
    for (uint32_t j = 0; j < t->nsyms; j++) {
      if (j)
        tgc_sb_putc(buf, '*');
      tgc_sb_puts(buf, t->syms[j]->name);
    }
  }
}

/* ---- evaluation at given symbol sizes ---- */

tgc_dim_status tgc_dim_eval(const tgc_dim *d, const char *const *names, const int64_t *sizes, uint32_t n,
                            int64_t *out, const char **unbound) {
  wide sum = 0; /* terms summed in 128 bits, as above: the order of the terms never decides an overflow */
  bool over = false;
  for (uint32_t i = 0; i < d->nterms; i++) {
    int64_t t = d->terms[i].coeff;
    for (uint32_t j = 0; j < d->terms[i].nsyms; j++) {
      const char *name = d->terms[i].syms[j]->name;
      uint32_t k = 0;
      while (k < n && strcmp(names[k], name) != 0)
        k++;
      if (k == n) {
        if (unbound)
          *unbound = name;
        return TGC_DIM_UNBOUND;
      }
      over = over || __builtin_mul_overflow(t, sizes[k], &t);
    }
    sum += t;
  }
  if (over || !fits64(sum))
    return TGC_DIM_OVERFLOW;
  *out = (int64_t)sum;
  return TGC_DIM_OK;
}

/* ---- lists of symbol sizes: B=8,S=512 ---- */

/* A symbol's name as the lexer reads one (frontend/lexer.l: IDSTART IDCHAR*): a letter or '_', then letters,
 * digits, '_' or '.'. */
static bool is_ident(const char *s, size_t n) {
  if (n == 0 || !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!(s[i] == '_' || s[i] == '.' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
          (s[i] >= '0' && s[i] <= '9')))
      return false;
  return true;
}

/* A decimal integer from 0 to INT64_MAX spelled by the N bytes at S: digits only, no sign or spaces. */
static bool parse_size(const char *s, size_t n, int64_t *out) {
  int64_t v = 0;
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9' || __builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[i] - '0', &v))
      return false;
  *out = v;
  return true;
}

int tgc_sym_sizes_find(const tgc_sym_sizes *s, const char *name) {
  for (uint32_t i = 0; i < s->n; i++)
    if (strcmp(s->names[i], name) == 0)
      return (int)i;
  return -1;
}

bool tgc_sym_sizes_parse(tgc_sym_sizes *s, const char *text, tgc_strbuf *why) {
  for (const char *p = text;;) {
    size_t len = strcspn(p, ",;");
    const char *eq = memchr(p, '=', len);
    int64_t v;
    if (len == 0) {
      tgc_sb_puts(why, "an empty item (items are SYM=N, separated by ',' or ';')");
      return false;
    }
    if (!eq || !is_ident(p, (size_t)(eq - p)) || !parse_size(eq + 1, len - (size_t)(eq - p) - 1, &v)) {
      tgc_sb_printf(why, "item '%.*s' is not SYM=N with N an integer from 0 to %lld", (int)len, p,
                    (long long)INT64_MAX);
      return false;
    }
    char *name = tgc_xmalloc((size_t)(eq - p) + 1);
    memcpy(name, p, (size_t)(eq - p));
    name[eq - p] = 0;
    if (tgc_sym_sizes_find(s, name) >= 0) {
      tgc_sb_printf(why, "symbol '%s' is given twice", name);
      free(name);
      return false;
    }
    if (s->n == s->cap) {
      s->cap = s->cap ? 2 * s->cap : 8;
      s->names = tgc_xrealloc(s->names, s->cap * sizeof *s->names);
      s->sizes = tgc_xrealloc(s->sizes, s->cap * sizeof *s->sizes);
    }
    s->names[s->n] = name;
    s->sizes[s->n++] = v;
    if (!p[len])
      return true;
    p += len + 1;
  }
}

void tgc_sym_sizes_free(tgc_sym_sizes *s) {
  for (uint32_t i = 0; i < s->n; i++)
    free((void *)s->names[i]);
  free(s->names);
  free(s->sizes);
  memset(s, 0, sizeof *s);
}

/* The CUDA emitter's core (cuda_internal.h): the C types of dtypes, dims as C expressions over the kernel's
 * symbol parameters, index vectors (linear index <-> multi-index) and the literals: every number a generated
 * kernel spells goes through here. */
#include "cuda_internal.h"

#include <math.h>
#include <stdlib.h>

/* ---- types ---- */

const char *tgc_cuda_storage_type(tgc_dtype dt) {
  switch (dt) {
  case TGC_DT_F64: return "double";
  case TGC_DT_F32: return "float";
  case TGC_DT_F16: return "__half";
  case TGC_DT_BF16: return "__nv_bfloat16";
  case TGC_DT_F8E4M3: return "__nv_fp8_e4m3";
  case TGC_DT_F8E5M2: return "__nv_fp8_e5m2";
  case TGC_DT_I64: return "long long";
  case TGC_DT_I32: return "int";
  case TGC_DT_I16: return "short";
  case TGC_DT_I8: return "signed char";
  case TGC_DT_U8: return "unsigned char";
  case TGC_DT_I4: return "signed char"; /* unpacked, as in the runtime */
  case TGC_DT_BOOL: return "bool";
  case TGC_DT_COUNT: break;
  }
  tgc_unreachable();
}

/* The type a value is computed in. */
const char *tgc_cuda_compute_type(tgc_dtype dt) {
  switch (tgc_dtype_kind_of(dt)) {
  case TGC_DTK_FLOAT: return dt == TGC_DT_F64 ? "double" : "float";
  case TGC_DTK_SINT:
  case TGC_DTK_UINT: return "long long";
  case TGC_DTK_BOOL: return "bool";
  }
  tgc_unreachable();
}

/* ---- dims as C expressions ---- */

static uint32_t sym_param(emitter *e, const tgc_sym *s) {
  for (uint32_t i = 0; i < e->nsyms; i++)
    if (e->syms[i] == s)
      return i;
  if (e->nsyms == e->symcap) {
    uint32_t cap = e->symcap ? e->symcap * 2 : 4;
    e->syms = tgc_arena_grow(&e->m->arena, e->syms, e->symcap, cap, sizeof *e->syms);
    e->symcap = cap;
  }
  e->syms[e->nsyms] = s;
  return e->nsyms++;
}

/* A dim as a C expression over the symbol parameters s_NAME: 768LL, s_B, (2LL * s_S + 1LL). */
void tgc_cuda_dim_c(emitter *e, const tgc_dim *d, tgc_strbuf *b) {
  int64_t c;
  if (tgc_dim_is_const(d, &c)) {
    tgc_sb_printf(b, "%lldLL", (long long)c);
    return;
  }
  bool paren = d->nterms > 1 || d->terms[0].coeff != 1 || d->terms[0].nsyms > 1;
  if (paren)
    tgc_sb_putc(b, '(');
  for (uint32_t i = 0; i < d->nterms; i++) {
    const tgc_term *t = &d->terms[i];
    if (i)
      tgc_sb_puts(b, " + ");
    bool first = true;
    if (t->coeff != 1 || t->nsyms == 0) {
      tgc_sb_printf(b, "%lldLL", (long long)t->coeff);
      first = false;
    }
    for (uint32_t j = 0; j < t->nsyms; j++) {
      tgc_sb_printf(b, "%ss_%s", first ? "" : " * ", t->syms[j]->name);
      first = false;
      sym_param(e, t->syms[j]);
    }
  }
  if (paren)
    tgc_sb_putc(b, ')');
}

/* ---- index vectors: one C expression (a variable name or literal) per dim ---- */

const char *tgc_cuda_fresh(emitter *e, const char *prefix) {
  char buf[32];
  snprintf(buf, sizeof buf, "%s%d", prefix, e->next++);
  return tgc_arena_strndup(&e->m->arena, buf, strlen(buf));
}

/* Whether the RANK dims DIMS are T's, one by one. */
static bool same_dims(const tgc_dim *const *dims, uint32_t rank, const tgc_type *t) {
  if (rank != t->rank)
    return false;
  for (uint32_t d = 0; d < rank; d++)
    if (!tgc_dim_equal(dims[d], t->dims[d]))
      return false;
  return true;
}

/* Linear index of I in type T (Horner: ((i0 * d1 + i1) * d2 + i2) ...), as a fresh variable; the index I was
 * made from when tgc_cuda_delinearize made I in these dims. */
const char *tgc_cuda_linearize(emitter *e, const index_vec *I, const tgc_type *t) {
  for (uint32_t k = 0; k < e->nlins && t->rank > 0; k++) {
    bool same = e->lins[k].I.rank == I->rank && same_dims(e->lins[k].dims, e->lins[k].I.rank, t);
    for (uint32_t d = 0; same && d < I->rank; d++)
      same = e->lins[k].I.ix[d] == I->ix[d];
    if (same)
      return e->lins[k].lin;
  }
  tgc_strbuf b;
  tgc_sb_init(&b);
  if (t->rank == 0)
    tgc_sb_puts(&b, "0LL");
  for (uint32_t d = 0; d < t->rank; d++) {
    if (d == 0) {
      tgc_sb_puts(&b, I->ix[0]);
      continue;
    }
    tgc_strbuf prev;
    tgc_sb_init(&prev);
    tgc_sb_printf(&prev, "(%s) * ", b.data);
    tgc_cuda_dim_c(e, t->dims[d], &prev);
    tgc_sb_printf(&prev, " + %s", I->ix[d]);
    tgc_sb_free(&b);
    b = prev;
  }
  const char *v = tgc_cuda_fresh(e, "l");
  line(e, "const long long %s = %s;", v, b.data);
  tgc_sb_free(&b);
  return v;
}

index_vec tgc_cuda_delinearize(emitter *e, const char *lin, const tgc_type *t) {
  index_vec r;
  TGC_ASSERT(t->rank <= TGC_RT_MAX_RANK); /* the verifier's rank limit */
  r.rank = t->rank;
  const char *rest = lin;
  for (uint32_t d = t->rank; d-- > 0;) {
    tgc_strbuf b;
    tgc_sb_init(&b);
    tgc_cuda_dim_c(e, t->dims[d], &b);
    const char *v = tgc_cuda_fresh(e, "i");
    if (d == 0) {
      line(e, "const long long %s = %s;", v, rest);
    } else {
      line(e, "const long long %s = %s %% %s;", v, rest, b.data);
      const char *q = tgc_cuda_fresh(e, "q");
      line(e, "const long long %s = %s / %s;", q, rest, b.data);
      rest = q;
    }
    r.ix[d] = v;
    tgc_sb_free(&b);
  }
  if (e->nlins < sizeof e->lins / sizeof *e->lins && t->rank > 0) {
    e->lins[e->nlins].I = r;
    for (uint32_t d = 0; d < t->rank; d++)
      e->lins[e->nlins].dims[d] = t->dims[d];
    e->lins[e->nlins++].lin = lin;
  }
  return r;
}

const char *tgc_cuda_dim_str(emitter *e, const tgc_dim *d) {
  tgc_strbuf b;
  tgc_sb_init(&b);
  tgc_cuda_dim_c(e, d, &b);
  const char *r = tgc_arena_strndup(&e->m->arena, b.data, b.len);
  tgc_sb_free(&b);
  return r;
}

const tgc_dim *tgc_cuda_numel_dim(tgc_arena *a, const tgc_type *t, uint32_t from, uint32_t to) {
  const tgc_dim *n = tgc_dim_const(a, 1);
  for (uint32_t d = from; d < to; d++)
    if (tgc_dim_mul(a, n, t->dims[d], &n) != TGC_DIM_OK)
      return NULL;
  return n;
}

/* ---- literals: every number the generated code spells goes through these ---- */

/* V as an element of a DT tensor stores it (the runtime's rounding, wrapping and saturation, so the kernels
 * agree with the CPU backend): a double for float dtypes, *I for integer and bool ones. */
static double element_value(tgc_dtype dt, double v, bool from_int, int64_t iv, int64_t *i) {
  uint64_t storage = 0;
  tgc_rt_tensor t;
  memset(&t, 0, sizeof t);
  t.dtype = dt;
  t.data = &storage;
  if (from_int && tgc_dtype_kind_of(dt) != TGC_DTK_FLOAT)
    tgc_rt_set_i64(&t, 0, dt == TGC_DT_BOOL ? iv != 0 : iv);
  else
    tgc_rt_set(&t, 0, from_int ? (double)iv : v);
  if (tgc_dtype_kind_of(dt) == TGC_DTK_FLOAT)
    return tgc_rt_get(&t, 0);
  *i = tgc_rt_get_i64(&t, 0);
  return (double)*i;
}

void tgc_cuda_float_literal(tgc_strbuf *b, double v, tgc_dtype dt) {
  bool dbl = dt == TGC_DT_F64;
  int64_t unused;
  if (!dbl)
    v = element_value(tgc_dtype_kind_of(dt) == TGC_DTK_FLOAT ? dt : TGC_DT_F32, v, false, 0, &unused);
  if (isnan(v)) { /* the IR's NaN has no sign */
    tgc_sb_puts(b, dbl ? "(double)NAN" : "NAN");
    return;
  }
  if (isinf(v)) {
    tgc_sb_puts(b, v > 0 ? (dbl ? "(double)INFINITY" : "INFINITY") : dbl ? "(-(double)INFINITY)" : "(-INFINITY)");
    return;
  }
  /* integers as 100.0, else the shortest digits that read back as the same float or double */
  char buf[48];
  if (fabs(v) < 1e15 && v == floor(v))
    snprintf(buf, sizeof buf, "%.1f", fabs(v));
  else
    for (int prec = 1; prec <= 17; prec++) {
      snprintf(buf, sizeof buf, "%.*g", prec, fabs(v));
      if (dbl ? strtod(buf, NULL) == fabs(v) : strtof(buf, NULL) == (float)fabs(v))
        break;
    }
  bool neg = signbit(v) != 0;
  tgc_sb_printf(b, "%s%s%s%s%s", neg ? "(-" : "", buf, strpbrk(buf, ".e") ? "" : ".0", dbl ? "" : "f", neg ? ")" : "");
}

/* An integer as a long long literal (the smallest one has no literal of its own). */
static void int_literal(tgc_strbuf *b, int64_t i) {
  if (i == INT64_MIN)
    tgc_sb_puts(b, "(-9223372036854775807LL - 1)");
  else
    tgc_sb_printf(b, "%lldLL", (long long)i);
}

/* V (or the integer IV when FROM_INT) as a value of dtype DT, spelled in DT's compute type. */
void tgc_cuda_value_literal(tgc_strbuf *b, tgc_dtype dt, double v, bool from_int, int64_t iv) {
  int64_t i = 0;
  switch (tgc_dtype_kind_of(dt)) {
  case TGC_DTK_FLOAT:
    tgc_cuda_float_literal(b, from_int ? (double)iv : v, dt);
    return;
  case TGC_DTK_SINT:
  case TGC_DTK_UINT:
    element_value(dt, v, from_int, iv, &i);
    int_literal(b, i);
    return;
  case TGC_DTK_BOOL:
    element_value(dt, v, from_int, iv, &i);
    tgc_sb_puts(b, i ? "true" : "false");
    return;
  }
  tgc_unreachable();
}

/* One value of a constant of dtype DT. */
void tgc_cuda_const_literal(tgc_strbuf *b, const tgc_attr *a, tgc_dtype dt) {
  if (a->kind == TGC_ATTR_FLOAT)
    tgc_cuda_value_literal(b, dt, a->u.f, false, 0);
  else
    tgc_cuda_value_literal(b, dt, 0, true, a->kind == TGC_ATTR_BOOL ? a->u.b : a->u.i);
}

/* A float attribute of OP as a literal of the precision DBL picks (math parameters: eps, scale). */
const char *tgc_cuda_float_attr(emitter *e, const tgc_op *op, const char *name, double dflt, bool dbl) {
  tgc_strbuf b;
  tgc_sb_init(&b);
  tgc_cuda_float_literal(&b, tgc_op_attr_float(op, name, dflt), dbl ? TGC_DT_F64 : TGC_DT_F32);
  const char *r = tgc_arena_strndup(&e->m->arena, b.data, b.len);
  tgc_sb_free(&b);
  return r;
}

/* ---- kernel templates (codegen/kernels/NAME.cuh) ---- */

static bool template_flag(const tgc_cuda_tflag *flags, uint32_t n, const char *name, size_t len) {
  for (uint32_t i = 0; i < n; i++)
    if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
      return flags[i].on;
  TGC_ASSERT(!"a template flag the emitter does not set");
  return false;
}

static const char *template_var(const tgc_cuda_tvar *vars, uint32_t n, const char *name, size_t len) {
  for (uint32_t i = 0; i < n; i++)
    if (strlen(vars[i].name) == len && strncmp(vars[i].name, name, len) == 0)
      return vars[i].value;
  TGC_ASSERT(!"a template substitution point the emitter does not set");
  return "";
}

/* Whether the line [L, L + LEN) is the directive "//@ WORD" (with an identifier after it when ARG is set). */
static bool directive(const char *l, size_t len, const char *word, const char **arg, size_t *arglen) {
  size_t w = strlen(word);
  if (len < 4 + w || strncmp(l, "//@ ", 4) != 0 || strncmp(l + 4, word, w) != 0)
    return false;
  if (!arg)
    return len == 4 + w;
  if (len < 6 + w || l[4 + w] != ' ')
    return false;
  for (size_t i = 5 + w; i < len; i++)
    if (!(l[i] == '_' || (l[i] >= 'a' && l[i] <= 'z') || (l[i] >= '0' && l[i] <= '9')))
      return false;
  *arg = l + 5 + w;
  *arglen = len - 5 - w;
  return true;
}

void tgc_cuda_expand(tgc_strbuf *out, const char *tmpl, const tgc_cuda_tflag *flags, uint32_t nflags,
                     const tgc_cuda_tvar *vars, uint32_t nvars) {
  /* one entry per open `//@ if`: whether its current branch is kept, and whether it is in its else */
  bool keep[16], in_else[16];
  uint32_t depth = 0;
  bool on = true; /* every open branch is kept */
  for (const char *l = tmpl; *l;) {
    const char *nl = strchr(l, '\n');
    size_t len = nl ? (size_t)(nl - l) : strlen(l);
    const char *arg;
    size_t arglen;
    if (directive(l, len, "if", &arg, &arglen)) {
      TGC_ASSERT(depth < 16);
      keep[depth] = template_flag(flags, nflags, arg, arglen);
      in_else[depth++] = false;
    } else if (directive(l, len, "else", NULL, NULL)) {
      TGC_ASSERT(depth > 0 && !in_else[depth - 1]);
      keep[depth - 1] = !keep[depth - 1];
      in_else[depth - 1] = true;
    } else if (directive(l, len, "end", NULL, NULL)) {
      TGC_ASSERT(depth > 0);
      depth--;
    } else if (on && !(len >= 3 && strncmp(l, "//@", 3) == 0)) {
      for (size_t i = 0; i < len; i++) {
        const char *at = l[i] == '@' ? memchr(l + i + 1, '@', len - i - 1) : NULL;
        if (l[i] != '@') {
          tgc_sb_putc(out, l[i]);
          continue;
        }
        TGC_ASSERT(at); /* an unclosed substitution point */
        tgc_sb_puts(out, template_var(vars, nvars, l + i + 1, (size_t)(at - l - i - 1)));
        i = (size_t)(at - l);
      }
      tgc_sb_putc(out, '\n');
    }
    on = true;
    for (uint32_t d = 0; d < depth; d++)
      on = on && keep[d];
    l += len + (nl ? 1 : 0);
  }
  TGC_ASSERT(depth == 0); /* an `//@ if` without its `//@ end` */
}

/* The IR verifier: structural invariants every pass must preserve. It checks operand and result arity and
 * attribute schemas against ops.def, SSA dominance (a value is defined earlier in the same block; regions
 * are isolated), terminators, region well-formedness, consistency of declared types (returns, region
 * arguments and yields, comparisons), symbolic dims bound by function arguments, mesh references, the rank
 * limit TGC_MAX_RANK, and, for every op whose operand types are all known, the op's type rule (ir/infer.c, the
 * rules shape inference applies): a shape error or a declared result type that contradicts the rule is
 * reported at that op at every optimization level. Every problem is reported with the op's location. */
#include <string.h>

#include "calib.h"
#include "infer.h"
#include "tgc/limits.h"

typedef struct {
  tgc_diag *diag;
  const tgc_module *m;
  const tgc_func *f;
  tgc_arena scratch;
  tgc_strmap bound; /* symbols bound by the function's arguments (pointer keys) */
  int errors;
} verifier;

#define VERR(v, loc, ...)                                                                                     \
  do {                                                                                                       \
    (v)->errors++;                                                                                           \
    tgc_error((v)->diag, (loc), __VA_ARGS__);                                                                \
  } while (0)

static void value_desc(const tgc_value *v, char *buf, size_t n) {
  if (v && v->name)
    snprintf(buf, n, " '%%%s'", v->name);
  else
    buf[0] = 0;
}

static void type_str(const tgc_type *t, tgc_strbuf *b) {
  if (t)
    tgc_type_print(t, b);
  else
    tgc_sb_puts(b, "<unknown>");
}

/* ---- attribute schemas ---- */

typedef struct {
  const char *name, *type, *enums;
  size_t name_len, type_len, enums_len;
  bool optional;
} schema_entry;

/* Reads the next "name:type[(a|b)][?]" entry of an ops.def attribute schema; false at the end. */
static bool schema_next(const char **p, schema_entry *e) {
  const char *s = *p;
  while (*s == ' ' || *s == ',')
    s++;
  if (!*s)
    return false;
  memset(e, 0, sizeof *e);
  e->name = s;
  while (*s && *s != ':')
    s++;
  e->name_len = (size_t)(s - e->name);
  TGC_ASSERT(*s == ':');
  s++;
  e->type = s;
  while (*s && *s != '(' && *s != '?' && *s != ',')
    s++;
  e->type_len = (size_t)(s - e->type);
  if (*s == '(') {
    e->enums = ++s;
    while (*s && *s != ')')
      s++;
    e->enums_len = (size_t)(s - e->enums);
    s++;
  }
  if (*s == '?') {
    e->optional = true;
    s++;
  }
  *p = s;
  return true;
}

static bool is_type(const schema_entry *e, const char *t) {
  return strlen(t) == e->type_len && memcmp(e->type, t, e->type_len) == 0;
}

static bool list_of(const tgc_attr *a, tgc_attr_kind k, bool allow_int) {
  if (a->kind != TGC_ATTR_LIST)
    return false;
  for (uint32_t i = 0; i < a->u.list.n; i++) {
    tgc_attr_kind ik = a->u.list.items[i]->kind;
    if (ik != k && !(allow_int && ik == TGC_ATTR_INT))
      return false;
  }
  return true;
}

static bool attr_matches(const schema_entry *e, const tgc_attr *a) {
  if (is_type(e, "int"))
    return a->kind == TGC_ATTR_INT;
  if (is_type(e, "float"))
    return a->kind == TGC_ATTR_FLOAT || a->kind == TGC_ATTR_INT;
  if (is_type(e, "bool"))
    return a->kind == TGC_ATTR_BOOL;
  if (is_type(e, "str"))
    return a->kind == TGC_ATTR_STR;
  if (is_type(e, "dtype"))
    return a->kind == TGC_ATTR_DTYPE;
  if (is_type(e, "sym"))
    return a->kind == TGC_ATTR_SYM;
  if (is_type(e, "ints"))
    return list_of(a, TGC_ATTR_INT, false);
  if (is_type(e, "floats"))
    return list_of(a, TGC_ATTR_FLOAT, true);
  if (is_type(e, "strs"))
    return list_of(a, TGC_ATTR_STR, false);
  if (is_type(e, "list"))
    return a->kind == TGC_ATTR_LIST;
  if (is_type(e, "any"))
    return true;
  tgc_fatal(__FILE__, __LINE__, "bad attribute type '%.*s' in ops.def", (int)e->type_len, e->type);
}

/* For list schema types (ints, floats, strs): does one item have the element kind? */
static bool attr_matches_item(const schema_entry *e, const tgc_attr *a) {
  if (is_type(e, "ints"))
    return a->kind == TGC_ATTR_INT;
  if (is_type(e, "floats"))
    return a->kind == TGC_ATTR_FLOAT || a->kind == TGC_ATTR_INT;
  if (is_type(e, "strs"))
    return a->kind == TGC_ATTR_STR;
  return true;
}

static const char *attr_kind_name(const tgc_attr *a) {
  switch (a->kind) {
  case TGC_ATTR_INT: return "int";
  case TGC_ATTR_FLOAT: return "float";
  case TGC_ATTR_STR: return "str";
  case TGC_ATTR_BOOL: return "bool";
  case TGC_ATTR_DTYPE: return "dtype";
  case TGC_ATTR_SYM: return "sym";
  case TGC_ATTR_LIST: return "list";
  }
  tgc_unreachable();
}

static bool enum_contains(const schema_entry *e, const tgc_attr *a) {
  const char *s = e->enums, *end = e->enums + e->enums_len;
  while (s < end) {
    const char *bar = memchr(s, '|', (size_t)(end - s));
    if (!bar)
      bar = end;
    if ((size_t)(bar - s) == a->len && memcmp(s, a->u.s, a->len) == 0)
      return true;
    s = bar + 1;
  }
  return false;
}

/* Attributes any op may carry (annotations of passes that work across ops). */
static bool is_universal_attr(const char *name) { return strcmp(name, "shard") == 0; }

static void verify_attrs(verifier *v, const tgc_op *op) {
  const tgc_op_info *info = tgc_op_info_of(op->opcode);
  schema_entry e;
  for (uint32_t i = 0; i < op->attrs.n; i++) {
    const tgc_named_attr *na = &op->attrs.items[i];
    const char *p = info->attr_schema;
    bool found = false;
    while (schema_next(&p, &e)) {
      if (strlen(na->name) != e.name_len || memcmp(na->name, e.name, e.name_len) != 0)
        continue;
      found = true;
      if (!attr_matches(&e, na->value)) {
        if (na->value->kind == TGC_ATTR_LIST && e.type_len > 1 && e.type[e.type_len - 1] == 's') {
          uint32_t bad = 0;
          while (bad < na->value->u.list.n && attr_matches_item(&e, na->value->u.list.items[bad]))
            bad++;
          VERR(v, na->loc, "attribute '%s' of '%s' must be a list of %.*s, but item #%u is %s", na->name,
               info->name, (int)e.type_len - 1, e.type, bad,
               bad < na->value->u.list.n ? attr_kind_name(na->value->u.list.items[bad]) : "?");
        } else {
          VERR(v, na->loc, "attribute '%s' of '%s' must be %.*s, but is %s", na->name, info->name,
               (int)e.type_len, e.type, attr_kind_name(na->value));
        }
      } else if (e.enums && !enum_contains(&e, na->value)) {
        tgc_strbuf b;
        tgc_sb_init(&b);
        tgc_attr_print(na->value, &b);
        VERR(v, na->loc, "attribute '%s' of '%s' must be one of %.*s, but is %s", na->name, info->name,
             (int)e.enums_len, e.enums, b.data);
        tgc_sb_free(&b);
      }
      break;
    }
    if (found || is_universal_attr(na->name))
      continue;
    if (tgc_calib_is_attr(na->name)) { /* statistics of tgc calibrate, on any op with one result */
      tgc_strbuf why;
      tgc_sb_init(&why);
      if (!tgc_calib_check_attr(TGC_CALIB_ON_OP, na->name, na->value, op->nresults, &why))
        VERR(v, na->loc, "%s", why.data);
      tgc_sb_free(&why);
      continue;
    }
    /* suggest the closest attribute name of the schema */
    const char *best = NULL;
    size_t best_len = 0, best_d = 3;
    p = info->attr_schema;
    while (schema_next(&p, &e)) {
      char name[64];
      snprintf(name, sizeof name, "%.*s", (int)e.name_len, e.name);
      size_t d = tgc_edit_distance(na->name, name, 2);
      if (d < best_d) {
        best_d = d;
        best = e.name;
        best_len = e.name_len;
      }
    }
    if (tgc_edit_distance(na->name, "shard", 2) < best_d) {
      best = "shard";
      best_len = 5;
    }
    if (best)
      VERR(v, na->loc, "'%s' has no attribute '%.64s'; did you mean '%.*s'?", info->name, na->name, (int)best_len, best);
    else
      VERR(v, na->loc, "'%s' has no attribute '%.64s'", info->name, na->name);
  }
  const char *p = info->attr_schema;
  while (schema_next(&p, &e)) {
    if (e.optional)
      continue;
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)e.name_len, e.name);
    if (!tgc_attrs_get(&op->attrs, name))
      VERR(v, op->loc, "'%s' requires attribute '%s' (%.*s)", info->name, name, (int)e.type_len, e.type);
  }
}

/* ---- symbols ---- */

static void check_type_syms(verifier *v, const tgc_type *t, tgc_loc loc, const char *what) {
  if (!t)
    return;
  for (uint32_t i = 0; i < t->rank; i++) {
    const tgc_dim *d = t->dims[i];
    for (uint32_t j = 0; j < d->nterms; j++) {
      for (uint32_t k = 0; k < d->terms[j].nsyms; k++) {
        const tgc_sym *s = d->terms[j].syms[k];
        if (tgc_strmap_get(&v->bound, (const char *)&s, sizeof s))
          continue;
        VERR(v, loc, "symbol '%s' in the type of %s is not bound: it must appear alone as a dimension of an "
             "argument of '@%s'", s->name, what, v->f->name);
        /* report each unbound symbol once */
        tgc_strmap_put(&v->bound, (const char *)&s, sizeof s, (void *)1);
      }
    }
  }
}

/* Where a type enters the IR: the rank limit, then its symbols. */
static void check_type(verifier *v, const tgc_type *t, tgc_loc loc, const char *what) {
  if (t && t->rank > TGC_MAX_RANK) {
    VERR(v, loc, "the type of %s has rank %u, above the maximum rank %d", what, t->rank, TGC_MAX_RANK);
    return;
  }
  check_type_syms(v, t, loc, what);
}

/* ---- blocks and ops ---- */

static void verify_block(verifier *v, const tgc_block *b, bool is_region);

static void check_operands_defined(verifier *v, const tgc_op *op, tgc_strmap *defined) {
  for (uint32_t i = 0; i < op->noperands; i++) {
    const tgc_value *x = op->operands[i].value;
    char desc[80];
    if (!x) {
      VERR(v, op->loc, "operand #%u of '%s' is missing", i, tgc_op_name(op->opcode));
      continue;
    }
    if (tgc_strmap_get(defined, (const char *)&x, sizeof x))
      continue;
    value_desc(x, desc, sizeof desc);
    if (x->def && x->def->parent == op->parent)
      VERR(v, op->loc, "operand #%u of '%s'%s is used before its definition", i, tgc_op_name(op->opcode), desc);
    else
      VERR(v, op->loc, "operand #%u of '%s'%s is not defined in this %s", i, tgc_op_name(op->opcode), desc,
           op->parent && op->parent->parent_op ? "region (regions are isolated)" : "function");
  }
}

static void verify_arity(verifier *v, const tgc_op *op) {
  const tgc_op_info *info = tgc_op_info_of(op->opcode);
  int n = (int)op->noperands;
  if (n < info->min_operands || (info->max_operands >= 0 && n > info->max_operands)) {
    if (info->min_operands == info->max_operands)
      VERR(v, op->loc, "'%s' expects %d operand%s, but has %d", info->name, info->min_operands,
           info->min_operands == 1 ? "" : "s", n);
    else if (info->max_operands < 0)
      VERR(v, op->loc, "'%s' expects at least %d operand%s, but has %d", info->name, info->min_operands,
           info->min_operands == 1 ? "" : "s", n);
    else
      VERR(v, op->loc, "'%s' expects %d to %d operands, but has %d", info->name, info->min_operands,
           info->max_operands, n);
  }
  if (info->nresults >= 0 && (int)op->nresults != info->nresults)
    VERR(v, op->loc, "'%s' produces %d result%s, but %u %s bound", info->name, info->nresults,
         info->nresults == 1 ? "" : "s", op->nresults, op->nresults == 1 ? "is" : "are");
  if (info->nresults < 0 && op->nresults == 0)
    VERR(v, op->loc, "'%s' must produce at least one result", info->name);
}

static void verify_types(verifier *v, const tgc_op *op) {
  const tgc_op_info *info = tgc_op_info_of(op->opcode);
  for (uint32_t i = 0; i < op->nresults; i++) {
    const tgc_type *t = op->results[i].type;
    if (!t && (info->flags & TGC_OPF_NEEDS_TYPE)) {
      VERR(v, op->loc, "'%s' requires a declared result type (it defines the %s)", info->name,
           info->flags & TGC_OPF_SOURCE ? "value's type" : "result's shape and dtype");
    }
    char what[64];
    snprintf(what, sizeof what, "result #%u of '%s'", i, info->name);
    check_type(v, t, op->loc, what);
  }
  if ((info->flags & TGC_OPF_COMPARE) && op->nresults == 1 && op->results[0].type &&
      op->results[0].type->dtype != TGC_DT_BOOL)
    VERR(v, op->loc, "'%s' is a comparison: its result dtype must be bool, not %s", info->name,
         tgc_dtype_name(op->results[0].type->dtype));
  if (op->opcode == TGC_OP_WHERE && op->noperands == 3 && op->operands[0].value && op->operands[0].value->type &&
      op->operands[0].value->type->dtype != TGC_DT_BOOL)
    VERR(v, op->loc, "the condition of 'where' must be bool, not %s",
         tgc_dtype_name(op->operands[0].value->type->dtype));
  /* Unary elementwise ops other than cast keep their operand's dtype. */
  if ((info->flags & TGC_OPF_ELEMWISE) && info->max_operands == 1 && op->opcode != TGC_OP_CAST &&
      op->noperands == 1 && op->nresults == 1 && op->operands[0].value && op->operands[0].value->type &&
      op->results[0].type && op->results[0].type->dtype != op->operands[0].value->type->dtype)
    VERR(v, op->loc, "'%s' keeps its operand's dtype %s, but its result is declared %s (use 'cast')", info->name,
         tgc_dtype_name(op->operands[0].value->type->dtype), tgc_dtype_name(op->results[0].type->dtype));
}

static int64_t type_numel(const tgc_type *t, bool *is_static) {
  int64_t n = 1;
  *is_static = true;
  for (uint32_t i = 0; i < t->rank; i++) {
    int64_t d;
    if (!tgc_dim_is_const(t->dims[i], &d)) {
      *is_static = false;
      return -1;
    }
    if (__builtin_mul_overflow(n, d, &n)) {
      *is_static = false;
      return -1;
    }
  }
  return n;
}

static uint64_t attr_flat_count(const tgc_attr *a) {
  if (a->kind != TGC_ATTR_LIST)
    return 1;
  uint64_t n = 0;
  for (uint32_t i = 0; i < a->u.list.n; i++)
    n += attr_flat_count(a->u.list.items[i]);
  return n;
}

static bool attr_all_numeric(const tgc_attr *a) {
  if (a->kind == TGC_ATTR_LIST) {
    for (uint32_t i = 0; i < a->u.list.n; i++)
      if (!attr_all_numeric(a->u.list.items[i]))
        return false;
    return true;
  }
  return a->kind == TGC_ATTR_INT || a->kind == TGC_ATTR_FLOAT || a->kind == TGC_ATTR_BOOL;
}

static void verify_op_specific(verifier *v, const tgc_op *op) {
  const tgc_op_info *info = tgc_op_info_of(op->opcode);
  const tgc_type *in = op->noperands >= 1 && op->operands[0].value ? op->operands[0].value->type : NULL;
  switch (op->opcode) {
  case TGC_OP_FUSION:
    /* a closed set of kinds (ir.h, TGC_FUSION_KINDS); a missing or non-string kind is verify_attrs' */
    for (uint32_t i = 0; i < op->attrs.n; i++) {
      const tgc_named_attr *na = &op->attrs.items[i];
      if (strcmp(na->name, "kind") != 0 || na->value->kind != TGC_ATTR_STR ||
          tgc_fusion_kind_parse(na->value->u.s, na->value->len) != TGC_FUSION_KIND_COUNT)
        continue;
      tgc_strbuf kinds, b;
      tgc_sb_init(&kinds);
      tgc_sb_init(&b);
      for (int k = 0; k < TGC_FUSION_KIND_COUNT; k++)
        tgc_sb_printf(&kinds, "%s%s", k ? "|" : "", tgc_fusion_kind_name((tgc_fusion_kind)k));
      tgc_attr_print(na->value, &b);
      VERR(v, na->loc, "attribute 'kind' of 'fusion' must be one of %s, but is %s", kinds.data, b.data);
      tgc_sb_free(&kinds);
      tgc_sb_free(&b);
    }
    break;
  case TGC_OP_PARAM: {
    const tgc_attr *a = tgc_op_attr(op, "name");
    if (a && a->kind == TGC_ATTR_STR && a->len == 0)
      VERR(v, op->loc, "'param' needs a non-empty name");
    else if (a && a->kind == TGC_ATTR_STR && memchr(a->u.s, 0, a->len)) /* would bind the tensor named up to it */
      VERR(v, op->loc, "the name of 'param' holds a NUL byte (\\x00), which no weights tensor can be named");
    break;
  }
  case TGC_OP_CONSTANT: {
    const tgc_attr *a = tgc_op_attr(op, "value");
    if (!a || op->nresults != 1 || !op->results[0].type)
      break;
    if (!attr_all_numeric(a)) {
      VERR(v, op->loc, "the value of 'constant' must be a number or a (nested) list of numbers");
      break;
    }
    bool st;
    int64_t numel = type_numel(op->results[0].type, &st);
    if (a->kind == TGC_ATTR_LIST && st && attr_flat_count(a) != (uint64_t)numel)
      VERR(v, op->loc, "'constant' has %llu value%s, but its type holds %lld element%s (give one value to splat)",
           (unsigned long long)attr_flat_count(a), attr_flat_count(a) == 1 ? "" : "s", (long long)numel,
           numel == 1 ? "" : "s");
    break;
  }
  case TGC_OP_TRANSPOSE: {
    const tgc_attr *perm = tgc_op_attr(op, "perm");
    if (!in || !perm || !list_of(perm, TGC_ATTR_INT, false))
      break; /* a malformed perm was reported by the schema check */
    bool ok = perm->u.list.n == in->rank;
    bool *seen = tgc_arena_alloc(&v->scratch, in->rank + 1);
    for (uint32_t i = 0; ok && i < perm->u.list.n; i++) {
      int64_t x = perm->u.list.items[i]->u.i;
      ok = x >= 0 && x < (int64_t)in->rank && !seen[x];
      if (ok)
        seen[x] = true;
    }
    if (!ok)
      VERR(v, op->loc, "'perm' of 'transpose' must be a permutation of 0..%u for an operand of rank %u",
           in->rank ? in->rank - 1 : 0, in->rank);
    break;
  }
  case TGC_OP_REDUCE_SUM:
  case TGC_OP_REDUCE_MEAN:
  case TGC_OP_REDUCE_MAX:
  case TGC_OP_REDUCE_MIN: {
    const tgc_attr *axes = tgc_op_attr(op, "axes");
    if (!in || !axes || axes->kind != TGC_ATTR_LIST)
      break;
    for (uint32_t i = 0; i < axes->u.list.n; i++) {
      const tgc_attr *x = axes->u.list.items[i];
      if (x->kind == TGC_ATTR_INT && (x->u.i >= (int64_t)in->rank || x->u.i < -(int64_t)in->rank))
        VERR(v, op->loc, "axis %lld of '%s' is out of range for an operand of rank %u", (long long)x->u.i,
             info->name, in->rank);
    }
    break;
  }
  case TGC_OP_SPLIT: {
    const tgc_attr *sizes = tgc_op_attr(op, "sizes"), *axis_attr = tgc_op_attr(op, "axis");
    if (!sizes || !list_of(sizes, TGC_ATTR_INT, false))
      break; /* reported by the schema check */
    if (sizes->u.list.n != op->nresults) {
      VERR(v, op->loc, "'split' has %u size%s, but %u result%s %s bound", sizes->u.list.n,
           sizes->u.list.n == 1 ? "" : "s", op->nresults, op->nresults == 1 ? "" : "s",
           op->nresults == 1 ? "is" : "are");
      break;
    }
    if (!in || !axis_attr || axis_attr->kind != TGC_ATTR_INT)
      break;
    int64_t axis = axis_attr->u.i, dim, total = 0;
    if (axis < -(int64_t)in->rank || axis >= (int64_t)in->rank) {
      VERR(v, op->loc, "axis %lld of 'split' is out of range for an operand of rank %u", (long long)axis, in->rank);
      break;
    }
    if (axis < 0)
      axis += in->rank;
    bool negative = false, overflow = false;
    for (uint32_t i = 0; i < sizes->u.list.n; i++) {
      int64_t x = sizes->u.list.items[i]->u.i;
      negative = negative || x < 0;
      overflow = overflow || __builtin_add_overflow(total, x, &total);
    }
    if (negative)
      VERR(v, op->loc, "the sizes of 'split' must not be negative");
    else if (overflow)
      VERR(v, op->loc, "the sizes of 'split' add up to more than 64-bit integers hold");
    else if (tgc_dim_is_const(in->dims[axis], &dim) && dim != total)
      VERR(v, op->loc, "the sizes of 'split' add up to %lld, but dim %lld of the operand is %lld", (long long)total,
           (long long)axis, (long long)dim);
    break;
  }
  case TGC_OP_ALL_REDUCE:
  case TGC_OP_ALL_GATHER:
  case TGC_OP_REDUCE_SCATTER: {
    const tgc_attr *ma = tgc_op_attr(op, "mesh");
    if (!ma || ma->kind != TGC_ATTR_SYM)
      break;
    const tgc_mesh *mesh = tgc_module_find_mesh(v->m, ma->u.s);
    if (!mesh) {
      VERR(v, op->loc, "'%s' refers to mesh '@%s', which is not declared", info->name, ma->u.s);
      break;
    }
    const tgc_attr *axes = tgc_op_attr(op, "axes");
    for (uint32_t i = 0; axes && axes->kind == TGC_ATTR_LIST && i < axes->u.list.n; i++) {
      const tgc_attr *x = axes->u.list.items[i];
      if (x->kind != TGC_ATTR_STR)
        continue;
      bool found = false;
      for (uint32_t j = 0; j < mesh->naxes; j++)
        found = found || strcmp(mesh->axis_names[j], x->u.s) == 0;
      if (!found)
        VERR(v, op->loc, "mesh '@%s' has no axis '%s'", mesh->name, x->u.s);
    }
    uint32_t bad;
    if (axes && tgc_mesh_group_size(mesh, axes, &bad) < 0)
      VERR(v, op->loc, "the group of '%s' (the axes of mesh '@%s' it names) has more than %d devices", info->name,
           mesh->name, TGC_MAX_GROUP);
    break;
  }
  default:
    break;
  }
}

/* The op's type rule, when every operand type is known: its shape errors, and declared result types that
 * contradict it, are reported here rather than at a later op or at the return. */
static void verify_type_rule(verifier *v, const tgc_op *op) {
  if (tgc_op_info_of(op->opcode)->flags & (TGC_OPF_TERMINATOR | TGC_OPF_REGION))
    return; /* no results, or a region's yield decides (verify_region_op) */
  const tgc_type **ot = tgc_arena_alloc(&v->scratch, sizeof *ot * (op->noperands + 1));
  for (uint32_t i = 0; i < op->noperands; i++) {
    ot[i] = op->operands[i].value->type;
    if (!ot[i])
      return;
  }
  tgc_infer in = {.m = v->m, .diag = v->diag, .tmp = &v->scratch};
  const tgc_type **res = tgc_arena_alloc(&v->scratch, sizeof *res * (op->nresults + 1));
  if (tgc_ir_infer_op(&in, op, ot, res)) {
    for (uint32_t i = 0; i < op->nresults; i++)
      if (res[i] && op->results[i].type && !tgc_type_equal(op->results[i].type, res[i]))
        tgc_ir_report_type_mismatch(&in, op, i, ot, res[i]);
  }
  v->errors += in.errors;
}

static void verify_region_op(verifier *v, const tgc_op *op) {
  const tgc_op_info *info = tgc_op_info_of(op->opcode);
  if (!(info->flags & TGC_OPF_REGION)) {
    if (op->region)
      VERR(v, op->loc, "'%s' does not take a region", info->name);
    return;
  }
  const tgc_block *r = op->region;
  if (!r) {
    VERR(v, op->loc, "'%s' requires a region", info->name);
    return;
  }
  if (r->nargs != op->noperands) {
    VERR(v, r->loc, "the region of '%s' has %u argument%s, but the op has %u operand%s", info->name, r->nargs,
         r->nargs == 1 ? "" : "s", op->noperands, op->noperands == 1 ? "" : "s");
  } else {
    for (uint32_t i = 0; i < r->nargs; i++) {
      const tgc_type *at = r->args[i]->type, *ot = op->operands[i].value ? op->operands[i].value->type : NULL;
      if (at && ot && !tgc_type_equal(at, ot)) {
        tgc_strbuf a, b;
        tgc_sb_init(&a);
        tgc_sb_init(&b);
        type_str(at, &a);
        type_str(ot, &b);
        VERR(v, r->args[i]->loc, "region argument #%u has type %s, but operand #%u has type %s", i, a.data, i,
             b.data);
        tgc_sb_free(&a);
        tgc_sb_free(&b);
      }
    }
  }
  for (uint32_t i = 0; i < r->nargs; i++) {
    char what[64];
    snprintf(what, sizeof what, "region argument #%u", i);
    check_type(v, r->args[i]->type, r->args[i]->loc, what);
  }
  verify_block(v, r, true);
  const tgc_op *y = r->last;
  if (y && y->opcode == TGC_OP_YIELD) {
    if (y->noperands != op->nresults) {
      VERR(v, y->loc, "'yield' returns %u value%s, but '%s' has %u result%s", y->noperands,
           y->noperands == 1 ? "" : "s", info->name, op->nresults, op->nresults == 1 ? "" : "s");
    } else {
      for (uint32_t i = 0; i < y->noperands; i++) {
        const tgc_type *yt = y->operands[i].value ? y->operands[i].value->type : NULL, *rt = op->results[i].type;
        if (yt && rt && !tgc_type_equal(yt, rt)) {
          tgc_strbuf a, b;
          tgc_sb_init(&a);
          tgc_sb_init(&b);
          type_str(yt, &a);
          type_str(rt, &b);
          VERR(v, y->loc, "yielded value #%u has type %s, but result #%u of '%s' has type %s", i, a.data, i,
               info->name, b.data);
          tgc_sb_free(&a);
          tgc_sb_free(&b);
        }
      }
    }
  }
}

static void verify_block(verifier *v, const tgc_block *b, bool is_region) {
  tgc_strmap defined;
  tgc_strmap_init(&defined, &v->scratch);
  for (uint32_t i = 0; i < b->nargs; i++) {
    const tgc_value *a = b->args[i];
    tgc_strmap_put(&defined, (const char *)&a, sizeof a, (void *)1);
  }
  const char *where = is_region ? "a region" : "a function body";
  const tgc_opcode want = is_region ? TGC_OP_YIELD : TGC_OP_RETURN;
  for (const tgc_op *op = b->first; op; op = op->next) {
    if (tgc_diag_should_stop(v->diag))
      break;
    const tgc_op_info *info = tgc_op_info_of(op->opcode);
    int errors_before = v->errors;
    check_operands_defined(v, op, &defined);
    verify_arity(v, op);
    verify_attrs(v, op);
    verify_types(v, op);
    verify_op_specific(v, op);
    verify_region_op(v, op);
    if (v->errors == errors_before)
      verify_type_rule(v, op); /* on an op the checks above found well-formed */
    if (info->flags & TGC_OPF_TERMINATOR) {
      if (op->opcode != want)
        VERR(v, op->loc, "'%s' cannot appear in %s (use '%s')", info->name, where, tgc_op_name(want));
      else if (op->next)
        VERR(v, op->loc, "'%s' must be the last op of %s", info->name, where);
    }
    for (uint32_t i = 0; i < op->nresults; i++) {
      const tgc_value *r = &op->results[i];
      tgc_strmap_put(&defined, (const char *)&r, sizeof r, (void *)1);
    }
  }
  bool has_terminator = false;
  for (const tgc_op *op = b->first; op; op = op->next)
    has_terminator = has_terminator || (tgc_op_info_of(op->opcode)->flags & TGC_OPF_TERMINATOR);
  /* a misplaced or wrong terminator was reported above */
  if (!has_terminator) {
    tgc_loc loc = b->last ? b->last->loc : b->loc;
    if (is_region)
      VERR(v, loc, "a region must end with 'yield'");
    else
      VERR(v, loc, "function '@%s' must end with 'return'", v->f->name);
  }
  tgc_strmap_free(&defined);
}

/* The calib.* attributes of a function or the module (ir/calib.h); other attributes there are free. */
static void verify_calib_attrs(verifier *v, const tgc_attrs *attrs, tgc_calib_site site, uint32_t n) {
  for (uint32_t i = 0; i < attrs->n; i++) {
    const tgc_named_attr *na = &attrs->items[i];
    if (!tgc_calib_is_attr(na->name))
      continue;
    tgc_strbuf why;
    tgc_sb_init(&why);
    if (!tgc_calib_check_attr(site, na->name, na->value, n, &why))
      VERR(v, na->loc, "%s", why.data);
    tgc_sb_free(&why);
  }
}

static void verify_func(verifier *v, const tgc_func *f) {
  v->f = f;
  verify_calib_attrs(v, &f->attrs, TGC_CALIB_ON_FUNC, f->body->nargs);
  tgc_strmap_init(&v->bound, &v->scratch);
  const tgc_block *b = f->body;
  for (uint32_t i = 0; i < b->nargs; i++) {
    const tgc_type *t = b->args[i]->type;
    if (!t) {
      VERR(v, b->args[i]->loc, "argument #%u of '@%s' has no type", i, f->name);
      continue;
    }
    for (uint32_t j = 0; j < t->rank; j++) {
      const tgc_dim *d = t->dims[j];
      if (d->nterms == 1 && d->terms[0].coeff == 1 && d->terms[0].nsyms == 1) {
        const tgc_sym *s = d->terms[0].syms[0];
        tgc_strmap_put(&v->bound, (const char *)&s, sizeof s, (void *)1);
      }
    }
  }
  for (uint32_t i = 0; i < b->nargs; i++) {
    char what[64];
    snprintf(what, sizeof what, "argument #%u", i);
    check_type(v, b->args[i]->type, b->args[i]->loc, what);
  }
  for (uint32_t i = 0; i < f->nresults; i++) {
    char what[64];
    snprintf(what, sizeof what, "result #%u of '@%s'", i, f->name);
    check_type(v, f->result_types[i], f->loc, what);
  }
  verify_block(v, b, false);
  const tgc_op *ret = b->last;
  if (ret && ret->opcode == TGC_OP_RETURN) {
    if (ret->noperands != f->nresults) {
      VERR(v, ret->loc, "'return' returns %u value%s, but '@%s' declares %u result%s", ret->noperands,
           ret->noperands == 1 ? "" : "s", f->name, f->nresults, f->nresults == 1 ? "" : "s");
    } else {
      for (uint32_t i = 0; i < ret->noperands; i++) {
        const tgc_type *t = ret->operands[i].value ? ret->operands[i].value->type : NULL;
        if (t && !tgc_type_equal(t, f->result_types[i])) {
          tgc_strbuf a, c;
          tgc_sb_init(&a);
          tgc_sb_init(&c);
          type_str(t, &a);
          type_str(f->result_types[i], &c);
          VERR(v, ret->loc, "returned value #%u has type %s, but '@%s' declares %s", i, a.data, f->name, c.data);
          tgc_sb_free(&a);
          tgc_sb_free(&c);
        }
      }
    }
  }
  tgc_strmap_free(&v->bound);
}

int tgc_verify_module(const tgc_module *m, tgc_diag *diag) {
  verifier v;
  memset(&v, 0, sizeof v);
  v.diag = diag;
  v.m = m;
  tgc_arena_init(&v.scratch);
  for (uint32_t i = 0; i < m->attrs.n; i++) {
    const tgc_named_attr *a = &m->attrs.items[i];
    if (strcmp(a->name, "weights") == 0 && a->value->kind != TGC_ATTR_STR)
      VERR(&v, a->loc, "module attribute 'weights' must be a string (a .safetensors path)");
  }
  verify_calib_attrs(&v, &m->attrs, TGC_CALIB_ON_MODULE, 0);
  for (const tgc_func *f = m->funcs; f && !tgc_diag_should_stop(diag); f = f->next)
    verify_func(&v, f);
  tgc_arena_free(&v.scratch);
  return v.errors;
}

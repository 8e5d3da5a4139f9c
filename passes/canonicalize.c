/* canonicalize: constant folding on the CPU reference backend, algebraic identities and removal of no-op ops,
 * swept over every block (fusion regions included) until a sweep changes nothing or `max-iterations` sweeps
 * (default 8) have run.
 *
 * Requires: nothing. Every rewrite checks the types it relies on and skips an op whose types are unknown, so the
 * pass is safe before shape-infer and finds more after it.
 * Preserves: everything (TGC_PROP_TYPED included): a forwarded operand has exactly the known type of the result
 * it replaces, an op rewritten in place keeps its declared type, a folded constant takes the folded result's
 * declared type. Collectives, terminators, params and fusions are never rewritten. Ops a rewrite leaves without
 * uses are erased; ops that were already dead are left to dce.
 *
 * Folding. An op whose operands are all `constant`s of static declared type (at most FOLD_MAX_OPERAND_ELEMS
 * elements each) and whose results have static declared types of at most FOLD_MAX_ELEMS elements in all (a
 * static `iota` included) is copied with its constants into a scratch module, lowered, and run by
 * tgc_rt_cpu_run: the very kernels `tgc run` uses, so a folded module computes what the unfolded one did, bit
 * for bit. The result becomes a `constant` whose value is a scalar when every element has the same bits and a
 * flat list otherwise: floats as the doubles the backend stored (already rounded to f16/bf16/fp8), integers as
 * exact integers, bools as true/false. That constant is itself run on the backend and the fold is dropped unless
 * it gives the same bytes (only a NaN whose sign `nan` cannot spell fails this). An op the backend rejects
 * (division of integers by zero, an index out of range) is not folded: the error stays for run time.
 *
 * Identities, each only when the replacement is type-correct: add(x, 0), add(0, x), sub(x, 0), mul(x, 1),
 * mul(1, x), div(x, 1), and on bools and(x, true), or(x, false) -> x when the constant has x's dtype and
 * broadcasting does not grow x; neg(neg(x)) -> x; where(c, x, x) -> x; transpose by the identity -> x;
 * transpose(transpose(x, p), q) -> transpose(x, r) with r[i] = p[q[i]]; reshape(reshape(x)) -> reshape(x);
 * broadcast_to(broadcast_to(x)) -> broadcast_to(x); cast(cast(x)) -> cast(x) when the inner cast is exact;
 * reshape, broadcast_to and cast to x's own type -> x. The inference no-ops: a slice of a whole dim with step
 * 1, a concat of one operand, a split into one part, a pad of nothing and a clamp without bounds -> x.
 * add(x, +0.0) -> x is exact but for one thing: -0.0 + +0.0 is +0.0, so the sign of a zero result may change.
 *
 * Each sweep applies at most one rewrite per op (the next sweep sees its effect), skips ops whose results are
 * unused, and ends by erasing what its rewrites left dead. With -Rpass=canonicalize every rewrite, every fold
 * refused and a sweep limit reached before the fixed point is reported as a remark at the op. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"
#include "pass.h"
#include "tgc/slice.h"

enum {
  FOLD_MAX_ELEMS = 4096,              /* larger results would bloat the printed module */
  FOLD_MAX_OPERAND_ELEMS = 1 << 20,   /* bounds the time and memory one fold may take */
};

typedef struct {
  tgc_pass_ctx *ctx;
  tgc_module *m;
  bool remarks;
  tgc_op **dead; /* ops a rewrite may have left without uses; erased after each sweep */
  size_t ndead, dead_cap;
  tgc_strmap nofold; /* ops the backend refused to fold: not retried every sweep */
} canon;

static void remark(canon *c, const tgc_op *op, const char *fmt, ...) TGC_PRINTF(3, 4);
static void remark(canon *c, const tgc_op *op, const char *fmt, ...) {
  if (!c->remarks)
    return;
  va_list ap;
  va_start(ap, fmt);
  tgc_diag_vreport(c->ctx->diag, TGC_DIAG_REMARK, op->loc, fmt, ap);
  va_end(ap);
}

static void queue_dead(canon *c, tgc_op *op) {
  if (!op)
    return;
  if (c->ndead == c->dead_cap) {
    c->dead_cap = c->dead_cap ? c->dead_cap * 2 : 64;
    c->dead = tgc_xrealloc(c->dead, c->dead_cap * sizeof *c->dead);
  }
  c->dead[c->ndead++] = op;
}

/* Erases the queued ops that have no uses left, then the operands' producers that this leaves unused. */
static bool erase_dead(canon *c) {
  bool changed = false;
  while (c->ndead) {
    tgc_op *op = c->dead[--c->ndead];
    if (!op->parent) /* erased already (queued twice) */
      continue;
    for (uint32_t i = 0; i < op->nresults; i++)
      if (op->results[i].uses)
        goto next;
    if (!tgc_op_is_pure(op))
      continue;
    for (uint32_t i = 0; i < op->noperands; i++)
      queue_dead(c, op->operands[i].value ? op->operands[i].value->def : NULL);
    changed |= tgc_pass_erase_if_dead(op);
  next:;
  }
  return changed;
}

/* Replaces all uses of OP's single result by X. X must have a known type equal to the result's, or the result
 * none yet, the caller having shown that OP maps X's type to itself. */
static bool forward(canon *c, tgc_op *op, tgc_value *x, const char *why) {
  tgc_value *r = &op->results[0];
  if (!x->type || (r->type && !tgc_type_equal(r->type, x->type)))
    return false;
  remark(c, op, "replaced '%s' by its operand (%s)", tgc_op_name(op->opcode), why);
  tgc_value_replace_all_uses(r, x);
  queue_dead(c, op);
  return true;
}

/* Points operand I of OP at V, queueing the old producer, which may now be dead. */
static void set_operand(canon *c, tgc_op *op, uint32_t i, tgc_value *v) {
  tgc_op *old = op->operands[i].value->def;
  tgc_op_set_operand(op, i, v);
  queue_dead(c, old);
}

/* ---- types ---- */

static bool static_numel(const tgc_type *t, int64_t *n) {
  if (!t)
    return false;
  int64_t acc = 1;
  for (uint32_t i = 0; i < t->rank; i++) {
    int64_t d;
    if (!tgc_dim_is_const(t->dims[i], &d) || d < 0 || __builtin_mul_overflow(acc, d, &acc))
      return false;
  }
  *n = acc;
  return true;
}

/* True when a value of type SMALL broadcasts against X without growing it (numpy rules). */
static bool broadcasts_into(const tgc_type *small, const tgc_type *x) {
  if (!small || !x || small->rank > x->rank)
    return false;
  for (uint32_t i = 0; i < small->rank; i++) {
    const tgc_dim *s = small->dims[i], *d = x->dims[x->rank - small->rank + i];
    int64_t v;
    if (!tgc_dim_equal(s, d) && !(tgc_dim_is_const(s, &v) && v == 1))
      return false;
  }
  return true;
}

/* Normalizes AXIS (negative counts from the end) against RANK; false when out of range. */
static bool norm_axis(int64_t axis, uint32_t rank, uint32_t *out) {
  if (axis < -(int64_t)rank || axis >= (int64_t)rank)
    return false;
  *out = (uint32_t)(axis < 0 ? axis + rank : axis);
  return true;
}

/* Reads an `ints` attribute into V (up to MAX entries). */
static bool ints_attr(const tgc_op *op, const char *name, int64_t *v, uint32_t max, uint32_t *n) {
  const tgc_attr *a = tgc_op_attr(op, name);
  if (!a || a->kind != TGC_ATTR_LIST || a->u.list.n > max)
    return false;
  for (uint32_t i = 0; i < a->u.list.n; i++) {
    if (a->u.list.items[i]->kind != TGC_ATTR_INT)
      return false;
    v[i] = a->u.list.items[i]->u.i;
  }
  *n = a->u.list.n;
  return true;
}

enum { MAX_RANK = 64 };

static bool is_perm(const int64_t *p, uint32_t n) {
  bool seen[MAX_RANK] = {false};
  for (uint32_t i = 0; i < n; i++) {
    if (p[i] < 0 || p[i] >= (int64_t)n || seen[p[i]])
      return false;
    seen[p[i]] = true;
  }
  return true;
}

static bool is_identity(const int64_t *p, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (p[i] != (int64_t)i)
      return false;
  return true;
}

/* Significand bits (with the implicit one) and exponent range of the float dtypes, for exact casts. */
static bool float_format(tgc_dtype dt, int *sig, int *emax, int *emin_sub) {
  switch (dt) {
  case TGC_DT_F64: *sig = 53, *emax = 1023, *emin_sub = -1074; return true;
  case TGC_DT_F32: *sig = 24, *emax = 127, *emin_sub = -149; return true;
  case TGC_DT_F16: *sig = 11, *emax = 15, *emin_sub = -24; return true;
  case TGC_DT_BF16: *sig = 8, *emax = 127, *emin_sub = -133; return true;
  case TGC_DT_F8E4M3: *sig = 4, *emax = 8, *emin_sub = -9; return true;
  case TGC_DT_F8E5M2: *sig = 3, *emax = 15, *emin_sub = -16; return true;
  case TGC_DT_I64:
  case TGC_DT_I32:
  case TGC_DT_I16:
  case TGC_DT_I8:
  case TGC_DT_U8:
  case TGC_DT_I4:
  case TGC_DT_BOOL:
  case TGC_DT_COUNT:
    return false;
  }
  return false;
}

/* True when every value of FROM is exactly a value of TO, so that casting through TO changes nothing: the
 * backend's casts depend on the value alone, hence cast(cast(x, TO), T) == cast(x, T). Widening floats,
 * widening integers, bool to anything, and integers into a float whose significand holds them. */
static bool cast_is_exact(tgc_dtype from, tgc_dtype to) {
  tgc_dtype_kind fk = tgc_dtype_kind_of(from), tk = tgc_dtype_kind_of(to);
  int fsig, femax, fsub, tsig, temax, tsub;
  if (from == to || fk == TGC_DTK_BOOL)
    return true;
  if (tk == TGC_DTK_BOOL)
    return false;
  if (fk == TGC_DTK_FLOAT)
    return tk == TGC_DTK_FLOAT && float_format(from, &fsig, &femax, &fsub) && float_format(to, &tsig, &temax, &tsub) &&
           tsig >= fsig && temax >= femax && tsub <= fsub;
  /* magnitudes of FROM are below 2^bits (2^(bits-1) for signed types, reached by the minimum) */
  int bits = tgc_dtype_bits(from) - (fk == TGC_DTK_SINT);
  if (tk == TGC_DTK_FLOAT)
    return float_format(to, &tsig, &temax, &tsub) && bits <= tsig;
  if (tk == TGC_DTK_SINT)
    return tgc_dtype_bits(to) - 1 >= bits;
  return false; /* into u8: only from itself */
}

/* ---- constants ---- */

static tgc_op *const_def(const tgc_value *v) {
  return v->def && v->def->opcode == TGC_OP_CONSTANT ? v->def : NULL;
}

static bool attr_all_equal_to(const tgc_attr *a, int want) {
  switch (a->kind) {
  case TGC_ATTR_INT: return a->u.i == want;
  case TGC_ATTR_FLOAT: return a->u.f == want; /* -0.0 counts as 0 */
  case TGC_ATTR_BOOL: return a->u.b == (want != 0);
  case TGC_ATTR_LIST:
    for (uint32_t i = 0; i < a->u.list.n; i++)
      if (!attr_all_equal_to(a->u.list.items[i], want))
        return false;
    return true;
  case TGC_ATTR_STR:
  case TGC_ATTR_DTYPE:
  case TGC_ATTR_SYM:
    return false;
  }
  return false;
}

/* True when V is a typed constant whose every element is WANT (0 or 1, exact in every dtype). */
static bool is_const_splat(const tgc_value *v, int want) {
  tgc_op *k = const_def(v);
  const tgc_attr *a = k ? tgc_op_attr(k, "value") : NULL;
  return a && v->type && attr_all_equal_to(a, want);
}

/* ---- folding ---- */

static bool foldable_op(const tgc_op *op) {
  return !(tgc_op_info_of(op->opcode)->flags &
           (TGC_OPF_COLLECTIVE | TGC_OPF_TERMINATOR | TGC_OPF_REGION | TGC_OPF_SOURCE));
}

/* Lowers function F of the scratch module SM and runs it on the CPU backend; OUT receives owned tensors. */
static bool run_scratch(tgc_module *sm, const tgc_func *f, tgc_rt_tensor *out, tgc_rt_err *err) {
  const tgc_rt_plan *p = tgc_lower_func(sm, f);
  tgc_rt_cpu_opts opts = {NULL, NULL, NULL};
  return tgc_rt_cpu_run(p, NULL, out, &opts, err) == 0;
}

/* Runs OP on its constant operands in a scratch module; OUT receives op->nresults owned tensors. */
static bool evaluate(tgc_op *op, tgc_rt_tensor *out, tgc_rt_err *err) {
  tgc_module *sm = tgc_module_create("canonicalize.fold");
  const tgc_type **rtypes = tgc_arena_alloc(&sm->arena, sizeof *rtypes * (op->nresults + 1));
  for (uint32_t i = 0; i < op->nresults; i++)
    rtypes[i] = op->results[i].type;
  tgc_func *f = tgc_func_create(sm, "fold", NULL, NULL, 0, rtypes, op->nresults, op->loc);
  tgc_value **args = tgc_arena_alloc(&sm->arena, sizeof *args * (op->noperands + 1));
  for (uint32_t i = 0; i < op->noperands; i++) {
    const tgc_value *v = op->operands[i].value;
    for (uint32_t j = 0; j < i && !args[i]; j++)
      if (op->operands[j].value == v)
        args[i] = args[j];
    if (args[i])
      continue;
    tgc_op *k = tgc_op_create(sm, TGC_OP_CONSTANT, NULL, 0, &v->type, 1, v->def->loc);
    tgc_op_set_attr(sm, k, "value", tgc_op_attr(v->def, "value"));
    tgc_block_append(f->body, k);
    args[i] = &k->results[0];
  }
  tgc_op *e = tgc_op_create(sm, op->opcode, args, op->noperands, rtypes, op->nresults, op->loc);
  for (uint32_t i = 0; i < op->attrs.n; i++)
    tgc_attrs_append(&sm->arena, &e->attrs, op->attrs.items[i].name, op->attrs.items[i].value, op->loc);
  tgc_block_append(f->body, e);
  tgc_value **rets = tgc_arena_alloc(&sm->arena, sizeof *rets * (op->nresults + 1));
  for (uint32_t i = 0; i < op->nresults; i++)
    rets[i] = &e->results[i];
  tgc_block_append(f->body, tgc_op_create(sm, TGC_OP_RETURN, rets, op->nresults, NULL, 0, op->loc));
  bool ok = run_scratch(sm, f, out, err);
  tgc_module_destroy(sm);
  return ok;
}

static const tgc_attr *element_attr(tgc_arena *a, const tgc_rt_tensor *t, size_t i) {
  switch (tgc_dtype_kind_of(t->dtype)) {
  case TGC_DTK_FLOAT: {
    double v = tgc_rt_get(t, i);
    return tgc_attr_float(a, isnan(v) ? NAN : v); /* `nan` is all the text form can spell */
  }
  case TGC_DTK_BOOL:
    return tgc_attr_bool(a, tgc_rt_get_i64(t, i) != 0);
  case TGC_DTK_SINT:
  case TGC_DTK_UINT:
    return tgc_attr_int(a, tgc_rt_get_i64(t, i));
  }
  tgc_unreachable();
}

/* The `value` attribute for T: one scalar when all elements have the same bits, else a flat list. */
static const tgc_attr *tensor_attr(tgc_arena *a, const tgc_rt_tensor *t) {
  size_t n = tgc_rt_tensor_numel(t), es = tgc_rt_dtype_size(t->dtype);
  const char *d = t->data;
  bool splat = n > 0;
  for (size_t i = 1; splat && i < n; i++)
    splat = memcmp(d + i * es, d, es) == 0;
  if (splat)
    return element_attr(a, t, 0);
  const tgc_attr **items = tgc_arena_alloc(a, sizeof *items * (n + 1));
  for (size_t i = 0; i < n; i++)
    items[i] = element_attr(a, t, i);
  return tgc_attr_list(a, items, (uint32_t)n);
}

/* True when constants of OP's result types with VALUES materialize, on the backend, into exactly the bytes of
 * the folded results FOLDED. */
static bool materializes_to(const tgc_op *op, const tgc_attr *const *values, const tgc_rt_tensor *folded) {
  tgc_module *sm = tgc_module_create("canonicalize.check");
  const tgc_type **rtypes = tgc_arena_alloc(&sm->arena, sizeof *rtypes * (op->nresults + 1));
  tgc_value **rets = tgc_arena_alloc(&sm->arena, sizeof *rets * (op->nresults + 1));
  for (uint32_t i = 0; i < op->nresults; i++)
    rtypes[i] = op->results[i].type;
  tgc_func *f = tgc_func_create(sm, "check", NULL, NULL, 0, rtypes, op->nresults, op->loc);
  for (uint32_t i = 0; i < op->nresults; i++) {
    tgc_op *k = tgc_op_create(sm, TGC_OP_CONSTANT, NULL, 0, &rtypes[i], 1, op->loc);
    tgc_op_set_attr(sm, k, "value", values[i]);
    tgc_block_append(f->body, k);
    rets[i] = &k->results[0];
  }
  tgc_block_append(f->body, tgc_op_create(sm, TGC_OP_RETURN, rets, op->nresults, NULL, 0, op->loc));
  tgc_rt_tensor *out = tgc_xcalloc(op->nresults + 1, sizeof *out);
  tgc_rt_err err;
  bool same = run_scratch(sm, f, out, &err);
  for (uint32_t i = 0; same && i < op->nresults; i++)
    same = out[i].dtype == folded[i].dtype && out[i].rank == folded[i].rank &&
           memcmp(out[i].shape, folded[i].shape, sizeof(int64_t) * out[i].rank) == 0 &&
           memcmp(out[i].data, folded[i].data, tgc_rt_tensor_nbytes(&out[i])) == 0;
  for (uint32_t i = 0; i < op->nresults; i++)
    tgc_rt_tensor_free(&out[i]);
  free(out);
  tgc_module_destroy(sm);
  return same;
}

static bool try_fold(canon *c, tgc_op *op) {
  if (!foldable_op(op) || op->nresults == 0)
    return false;
  int64_t n, total = 0;
  for (uint32_t i = 0; i < op->noperands; i++) {
    const tgc_value *v = op->operands[i].value;
    if (!const_def(v) || !static_numel(v->type, &n) || n > FOLD_MAX_OPERAND_ELEMS)
      return false;
  }
  for (uint32_t i = 0; i < op->nresults; i++) {
    if (!static_numel(op->results[i].type, &n))
      return false;
    total += n;
    if (total > FOLD_MAX_ELEMS)
      return false;
  }
  if (tgc_strmap_get(&c->nofold, (const char *)&op, sizeof op))
    return false;
  tgc_rt_tensor *out = tgc_xcalloc(op->nresults + 1, sizeof *out);
  const tgc_attr **values = tgc_arena_alloc(c->ctx->scratch, sizeof *values * (op->nresults + 1));
  tgc_rt_err err;
  bool ran = evaluate(op, out, &err), ok = ran;
  for (uint32_t i = 0; ok && i < op->nresults; i++)
    values[i] = tensor_attr(&c->m->arena, &out[i]);
  ok = ok && materializes_to(op, values, out);
  for (uint32_t i = 0; i < op->nresults; i++)
    tgc_rt_tensor_free(&out[i]);
  free(out);
  if (!ok) {
    tgc_strmap_put(&c->nofold, (const char *)&op, sizeof op, op);
    if (!ran) {
      const char *msg = strstr(err.msg, "error: ");
      remark(c, op, "left '%s' unfolded: the CPU backend rejects it (%s)", tgc_op_name(op->opcode),
             msg ? msg + 7 : err.msg);
    } else {
      remark(c, op, "left '%s' unfolded: a constant would not reproduce its result bit for bit (a NaN with the sign "
             "bit set, which 'nan' cannot spell)", tgc_op_name(op->opcode));
    }
    return false;
  }
  remark(c, op, "folded '%s' to a constant", tgc_op_name(op->opcode));
  const tgc_attr *shard = tgc_op_attr(op, "shard");
  for (uint32_t i = 0; i < op->nresults; i++) {
    tgc_value *r = &op->results[i];
    tgc_op *k = tgc_op_create(c->m, TGC_OP_CONSTANT, NULL, 0, &r->type, 1, op->loc);
    tgc_op_set_attr(c->m, k, "value", values[i]);
    if (shard && op->nresults == 1)
      tgc_op_set_attr(c->m, k, "shard", shard);
    k->results[0].name = r->name;
    tgc_block_insert_before(op->parent, op, k);
    tgc_value_replace_all_uses(r, &k->results[0]);
  }
  queue_dead(c, op);
  return true;
}

/* ---- identities ---- */

/* OP(x, k) or OP(k, x) -> x, where k is a constant of x's dtype whose every element is WANT and whose shape
 * broadcasts into x's. K_SIDE is the operand index k may take (2: either). */
static bool unit_operand(canon *c, tgc_op *op, int want, int k_side, const char *why) {
  for (uint32_t ki = 0; ki < 2; ki++) {
    if (k_side != 2 && (int)ki != k_side)
      continue;
    tgc_value *k = op->operands[ki].value, *x = op->operands[1 - ki].value;
    if (is_const_splat(k, want) && x->type && k->type->dtype == x->type->dtype && broadcasts_into(k->type, x->type))
      return forward(c, op, x, why);
  }
  return false;
}

static bool simplify_transpose(canon *c, tgc_op *op) {
  int64_t q[MAX_RANK], p[MAX_RANK], r[MAX_RANK];
  uint32_t nq, np;
  if (!ints_attr(op, "perm", q, MAX_RANK, &nq) || !is_perm(q, nq))
    return false;
  tgc_value *x = op->operands[0].value;
  if (is_identity(q, nq) && x->type && x->type->rank == nq && forward(c, op, x, "identity permutation"))
    return true;
  tgc_op *inner = x->def;
  if (!inner || inner->opcode != TGC_OP_TRANSPOSE || !ints_attr(inner, "perm", p, MAX_RANK, &np) || np != nq ||
      !is_perm(p, np))
    return false;
  /* result dim i is inner dim q[i], which is x dim p[q[i]] */
  for (uint32_t i = 0; i < nq; i++)
    r[i] = p[q[i]];
  tgc_value *y = inner->operands[0].value;
  if (is_identity(r, nq) && forward(c, op, y, "transpose of its inverse transpose"))
    return true;
  remark(c, op, "merged 'transpose' of 'transpose' into one 'transpose'");
  tgc_op_set_attr(c->m, op, "perm", tgc_attr_ints(&c->m->arena, r, nq));
  set_operand(c, op, 0, y);
  return true;
}

/* OP(inner(y)) -> OP(y) when INNER has OP's opcode and OP's declared type is what matters (reshape,
 * broadcast_to). */
static bool skip_same_inner(canon *c, tgc_op *op) {
  tgc_op *inner = op->operands[0].value->def;
  if (!inner || inner->opcode != op->opcode || !op->results[0].type)
    return false;
  remark(c, op, "merged '%s' of '%s' into one '%s'", tgc_op_name(op->opcode), tgc_op_name(op->opcode),
         tgc_op_name(op->opcode));
  set_operand(c, op, 0, inner->operands[0].value);
  return true;
}

static bool simplify_cast(canon *c, tgc_op *op) {
  tgc_value *x = op->operands[0].value;
  if (x->type && op->results[0].type && x->type->dtype == op->results[0].type->dtype)
    return forward(c, op, x, "cast to its own type");
  tgc_op *inner = x->def;
  if (!inner || inner->opcode != TGC_OP_CAST || !op->results[0].type)
    return false;
  tgc_value *y = inner->operands[0].value;
  if (!y->type || !x->type || !cast_is_exact(y->type->dtype, x->type->dtype))
    return false;
  remark(c, op, "merged 'cast' of an exact 'cast' into one 'cast'");
  set_operand(c, op, 0, y);
  return true;
}

static bool simplify_slice(canon *c, tgc_op *op) {
  tgc_value *x = op->operands[0].value;
  uint32_t axis;
  if (!x->type || !norm_axis(tgc_op_attr_int(op, "axis", 0), x->type->rank, &axis) ||
      tgc_op_attr_int(op, "step", 1) != 1 || !tgc_op_attr(op, "start") || !tgc_op_attr(op, "end"))
    return false;
  int64_t start = tgc_op_attr_int(op, "start", 0), end = tgc_op_attr_int(op, "end", 0), n;
  bool whole;
  if (tgc_dim_is_const(x->type->dims[axis], &n) && n >= 0) {
    int64_t first, len;
    tgc_slice_range(n, start, end, 1, &first, &len);
    whole = first == 0 && len == n;
  } else {
    whole = start == 0 && end == INT64_MAX; /* a symbolic dim may be any size */
  }
  return whole && forward(c, op, x, "slice of the whole dim");
}

static bool simplify_pad(canon *c, tgc_op *op) {
  int64_t lo[MAX_RANK], hi[MAX_RANK];
  uint32_t nlo, nhi;
  tgc_value *x = op->operands[0].value;
  if (!x->type || !ints_attr(op, "low", lo, MAX_RANK, &nlo) || !ints_attr(op, "high", hi, MAX_RANK, &nhi) ||
      nlo != x->type->rank || nhi != nlo)
    return false;
  for (uint32_t i = 0; i < nlo; i++)
    if (lo[i] || hi[i])
      return false;
  return forward(c, op, x, "pad of nothing");
}

static bool simplify_split(canon *c, tgc_op *op) {
  int64_t sizes[1], n;
  uint32_t ns, axis;
  tgc_value *x = op->operands[0].value;
  if (op->nresults != 1 || !x->type || !ints_attr(op, "sizes", sizes, 1, &ns) || ns != 1 ||
      !norm_axis(tgc_op_attr_int(op, "axis", 0), x->type->rank, &axis) ||
      !tgc_dim_is_const(x->type->dims[axis], &n) || n != sizes[0])
    return false;
  return forward(c, op, x, "split into one part");
}

static bool simplify_concat(canon *c, tgc_op *op) {
  tgc_value *x = op->operands[0].value;
  uint32_t axis;
  if (op->noperands != 1 || !x->type || !norm_axis(tgc_op_attr_int(op, "axis", 0), x->type->rank, &axis))
    return false;
  return forward(c, op, x, "concat of one operand");
}

static bool simplify_where(canon *c, tgc_op *op) {
  tgc_value *cond = op->operands[0].value, *x = op->operands[1].value;
  if (x != op->operands[2].value || !cond->type || cond->type->dtype != TGC_DT_BOOL ||
      !broadcasts_into(cond->type, x->type))
    return false;
  return forward(c, op, x, "both branches are the same value");
}

static bool simplify_neg(canon *c, tgc_op *op) {
  tgc_op *inner = op->operands[0].value->def;
  if (!inner || inner->opcode != TGC_OP_NEG)
    return false;
  return forward(c, op, inner->operands[0].value, "negation of a negation");
}

/* One rewrite of OP, if any applies; the sweep comes back to OP for the next. */
static bool rewrite_op(canon *c, tgc_op *op) {
  bool used = false;
  for (uint32_t i = 0; i < op->nresults; i++)
    used |= op->results[i].uses != NULL;
  if (!used) /* nothing to gain; dead ops are dce's */
    return false;
  /* the rewrites index operands freely: leave an op the verifier would reject (under --no-verify) alone */
  const tgc_op_info *info = tgc_op_info_of(op->opcode);
  if ((int)op->noperands < info->min_operands || (info->max_operands >= 0 && (int)op->noperands > info->max_operands))
    return false;
  if (try_fold(c, op))
    return true;
  tgc_value *x = op->noperands ? op->operands[0].value : NULL;
  switch (op->opcode) {
  case TGC_OP_ADD:
    return unit_operand(c, op, 0, 2, "x + 0");
  case TGC_OP_SUB:
    return unit_operand(c, op, 0, 1, "x - 0");
  case TGC_OP_MUL:
    return unit_operand(c, op, 1, 2, "x * 1");
  case TGC_OP_DIV:
    return unit_operand(c, op, 1, 1, "x / 1");
  case TGC_OP_AND: /* on integers `and` is bitwise: 1 is no identity there */
    return x->type && x->type->dtype == TGC_DT_BOOL && unit_operand(c, op, 1, 2, "x and true");
  case TGC_OP_OR:
    return x->type && x->type->dtype == TGC_DT_BOOL && unit_operand(c, op, 0, 2, "x or false");
  case TGC_OP_NEG:
    return simplify_neg(c, op);
  case TGC_OP_CAST:
    return simplify_cast(c, op);
  case TGC_OP_CLAMP:
    return !tgc_op_attr(op, "min") && !tgc_op_attr(op, "max") && forward(c, op, x, "clamp without bounds");
  case TGC_OP_WHERE:
    return simplify_where(c, op);
  case TGC_OP_RESHAPE:
  case TGC_OP_BROADCAST_TO:
    if (x->type && op->results[0].type && tgc_type_equal(x->type, op->results[0].type))
      return forward(c, op, x, op->opcode == TGC_OP_RESHAPE ? "reshape to its own type" : "broadcast to its own type");
    return skip_same_inner(c, op);
  case TGC_OP_TRANSPOSE:
    return simplify_transpose(c, op);
  case TGC_OP_SLICE:
    return simplify_slice(c, op);
  case TGC_OP_CONCAT:
    return simplify_concat(c, op);
  case TGC_OP_SPLIT:
    return simplify_split(c, op);
  case TGC_OP_PAD:
    return simplify_pad(c, op);
  case TGC_OP_ABS:
  case TGC_OP_EXP:
  case TGC_OP_LOG:
  case TGC_OP_SQRT:
  case TGC_OP_RSQRT:
  case TGC_OP_TANH:
  case TGC_OP_ERF:
  case TGC_OP_SIGMOID:
  case TGC_OP_RELU:
  case TGC_OP_SILU:
  case TGC_OP_SIN:
  case TGC_OP_COS:
  case TGC_OP_NOT:
  case TGC_OP_GELU:
  case TGC_OP_POW:
  case TGC_OP_MAXIMUM:
  case TGC_OP_MINIMUM:
  case TGC_OP_EQ:
  case TGC_OP_NE:
  case TGC_OP_LT:
  case TGC_OP_LE:
  case TGC_OP_GT:
  case TGC_OP_GE:
  case TGC_OP_REDUCE_SUM:
  case TGC_OP_REDUCE_MEAN:
  case TGC_OP_REDUCE_MAX:
  case TGC_OP_REDUCE_MIN:
  case TGC_OP_ARGMAX:
  case TGC_OP_CUMSUM:
  case TGC_OP_SOFTMAX:
  case TGC_OP_LOG_SOFTMAX:
  case TGC_OP_LAYER_NORM:
  case TGC_OP_RMS_NORM:
  case TGC_OP_MATMUL:
  case TGC_OP_ATTENTION:
  case TGC_OP_GATHER:
  case TGC_OP_EMBEDDING:
  case TGC_OP_IOTA:
  case TGC_OP_PARAM:
  case TGC_OP_CONSTANT:
  case TGC_OP_FUSION:
  case TGC_OP_YIELD:
  case TGC_OP_RETURN:
  case TGC_OP_QUANTIZE:
  case TGC_OP_DEQUANTIZE:
  case TGC_OP_ALL_REDUCE:
  case TGC_OP_ALL_GATHER:
  case TGC_OP_REDUCE_SCATTER:
    return false;
  case TGC_OP_COUNT:
    tgc_unreachable();
  }
  return false;
}

/* One forward sweep over B and its regions. Rewrites only insert before the current op and erasure waits for
 * the end of the sweep, so the walk's next pointer stays valid. */
static bool sweep(canon *c, tgc_block *b) {
  bool changed = false;
  for (tgc_op *op = b->first; op; op = op->next) {
    if (tgc_op_info_of(op->opcode)->flags & TGC_OPF_COLLECTIVE)
      continue;
    if (op->region && sweep(c, op->region))
      changed = true;
    if (rewrite_op(c, op))
      changed = true;
  }
  return changed;
}

int tgc_pass_canonicalize(tgc_pass_ctx *ctx) {
  bool bad = false;
  int64_t max_iterations = tgc_pass_opt_int(ctx, "max-iterations", 8, &bad);
  if (bad)
    return 1;
  if (max_iterations < 1) {
    tgc_loc none = {NULL, 0, 0};
    tgc_error(ctx->diag, none, "option 'max-iterations' of 'canonicalize' must be at least 1, not %lld",
              (long long)max_iterations);
    return 1;
  }
  canon c;
  memset(&c, 0, sizeof c);
  c.ctx = ctx;
  c.m = ctx->module;
  c.remarks = ctx->remark_pass && strcmp(ctx->remark_pass, "canonicalize") == 0;
  tgc_strmap_init(&c.nofold, ctx->scratch);
  for (tgc_func *f = ctx->module->funcs; f; f = f->next) {
    bool changed = true;
    int64_t it = 0;
    while (changed && it < max_iterations) {
      changed = sweep(&c, f->body);
      changed |= erase_dead(&c);
      ctx->changed |= changed;
      it++;
    }
    if (changed && c.remarks)
      tgc_diag_report(ctx->diag, TGC_DIAG_REMARK, f->loc,
                      "stopped after %lld iteration%s on '@%s' while still rewriting (raise max-iterations to go on)",
                      (long long)it, it == 1 ? "" : "s", f->name);
  }
  tgc_strmap_free(&c.nofold);
  free(c.dead);
  return 0;
}

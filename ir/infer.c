/* The type rules of the IR (docs/ir.md §8), shared by shape inference and the verifier: see infer.h.
 *
 * - Shapes: numpy broadcasting over symbolic dims (dims equal as canonical polynomials, or one of them the
 *   constant 1), torch.matmul with 1-D operands and broadcast batch dims, grouped-query attention,
 *   reductions, data movement and collectives. Dim arithmetic goes through tgc_dim_*, so results stay
 *   canonical: [B, S, 768] -> [B*S, 768] -> [B, S, 768] keeps B and S.
 * - Dtypes: the ops whose operands share one dtype (binary elementwise, the values of where, matmul, concat)
 *   get torch's type promotion (torch.result_type, rank-0 operands included); the rule reports the dtype
 *   (tgc_infer.promote) and shape-infer inserts the casts.
 * - Ops whose declared type is part of their meaning (reshape, broadcast_to, cast, iota, param, constant,
 *   quantize, dequantize), and sizes no polynomial expresses (a slice of part of a symbolic dim, a
 *   reduce_scatter of B over 4 devices), keep the declared type after the checks that can be made (element
 *   counts, broadcastability, dtypes, scale shapes); undeclared, they are errors.
 *
 * The rules agree with the CPU reference backend (runtime/cpu.c), which computes the same shapes at run time.
 * They never change the IR and tolerate IR the verifier would reject (never a crash). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "infer.h"
#include "tgc/clamp.h"
#include "tgc/limits.h"
#include "tgc/slice.h"

typedef tgc_infer infer;

#define IERR(in, loc, ...)                                                                                             \
  do {                                                                                                                 \
    (in)->errors++;                                                                                                    \
    tgc_error((in)->diag, (loc), __VA_ARGS__);                                                                         \
  } while (0)

/* ---- strings for messages (in the scratch arena, so that several fit in one printf) ---- */

static const char *keep(infer *in, tgc_strbuf *b) {
  const char *s = tgc_arena_strndup(in->tmp, b->data ? b->data : "", b->len);
  tgc_sb_free(b);
  return s;
}

static const char *tstr(infer *in, const tgc_type *t) {
  tgc_strbuf b;
  tgc_sb_init(&b);
  if (t)
    tgc_type_print(t, &b);
  else
    tgc_sb_puts(&b, "<unknown>");
  return keep(in, &b);
}

static const char *dstr(infer *in, const tgc_dim *d) {
  tgc_strbuf b;
  tgc_sb_init(&b);
  tgc_dim_print(d, &b);
  return keep(in, &b);
}

/* "[768, 64]": a shape without a dtype. */
static const char *shape_str(infer *in, uint32_t rank, const tgc_dim *const *dims) {
  tgc_strbuf b;
  tgc_sb_init(&b);
  tgc_sb_putc(&b, '[');
  for (uint32_t i = 0; i < rank; i++) {
    if (i)
      tgc_sb_puts(&b, ", ");
    tgc_dim_print(dims[i], &b);
  }
  tgc_sb_putc(&b, ']');
  return keep(in, &b);
}

/* "A", "A and B", "A, B and C". */
static const char *types_list(infer *in, const tgc_type *const *ts, uint32_t n) {
  tgc_strbuf b;
  tgc_sb_init(&b);
  for (uint32_t i = 0; i < n; i++) {
    if (i)
      tgc_sb_puts(&b, i + 1 == n ? " and " : ", ");
    if (ts[i])
      tgc_type_print(ts[i], &b);
    else
      tgc_sb_puts(&b, "<unknown>");
  }
  return keep(in, &b);
}

static const char *opname(const tgc_op *op) {
  return tgc_op_name(op->opcode);
}

/* ---- dims and types ---- */

static bool dim_is(const tgc_dim *d, int64_t v) {
  int64_t x;
  return tgc_dim_is_const(d, &x) && x == v;
}

static const tgc_dim *dconst(infer *in, int64_t v) {
  return tgc_dim_const(in->tmp, v);
}

static const tgc_dim **new_dims(infer *in, uint32_t rank) {
  return tgc_arena_alloc(in->tmp, sizeof(const tgc_dim *) * (rank + 1));
}

static const tgc_type *mk(infer *in, tgc_dtype dt, uint32_t rank, const tgc_dim *const *dims) {
  return tgc_type_create(in->tmp, dt, rank, dims);
}

/* A failed dim computation (a coefficient out of int64, or a polynomial too large) is a user error. */
static bool dim_ok(infer *in, const tgc_op *op, tgc_dim_status st) {
  if (st == TGC_DIM_OK)
    return true;
  IERR(in, op->loc, "the result shape of '%s' %s", opname(op),
       st == TGC_DIM_OVERFLOW ? "overflows 64-bit integers" : "is too large an expression");
  return false;
}

static bool is_float(tgc_dtype dt) {
  return tgc_dtype_kind_of(dt) == TGC_DTK_FLOAT;
}

static bool is_int(tgc_dtype dt) {
  tgc_dtype_kind k = tgc_dtype_kind_of(dt);
  return k == TGC_DTK_SINT || k == TGC_DTK_UINT;
}

/* ---- dtype promotion ---- */

/* torch's category order: bool < integer < floating point. */
static int category(tgc_dtype dt) {
  switch (tgc_dtype_kind_of(dt)) {
  case TGC_DTK_BOOL:
    return 0;
  case TGC_DTK_SINT:
  case TGC_DTK_UINT:
    return 1;
  case TGC_DTK_FLOAT:
    return 2;
  }
  tgc_unreachable();
}

static tgc_dtype sint_of_bits(int bits) {
  return bits <= 8 ? TGC_DT_I8 : bits <= 16 ? TGC_DT_I16 : bits <= 32 ? TGC_DT_I32 : TGC_DT_I64;
}

/* torch.promote_types for tensors of equal standing: the higher category wins with its own dtype; within a
 * category the wider wins. Two floats of one width but different formats go to the next wider float
 * (f16 with bf16 is f32, as in torch; e4m3 with e5m2 is f16, which holds both exactly: torch refuses fp8
 * promotion). u8 with a signed integer is the wider signed type, at least i16, which holds both ranges. */
static tgc_dtype promote(tgc_dtype a, tgc_dtype b) {
  if (a == b)
    return a;
  int ca = category(a), cb = category(b);
  if (ca != cb)
    return ca > cb ? a : b;
  int wa = tgc_dtype_bits(a), wb = tgc_dtype_bits(b);
  if (ca == 2) {
    if (wa != wb)
      return wa > wb ? a : b;
    return wa == 16 ? TGC_DT_F32 : wa == 8 ? TGC_DT_F16 : TGC_DT_F64;
  }
  bool ua = tgc_dtype_kind_of(a) == TGC_DTK_UINT, ub = tgc_dtype_kind_of(b) == TGC_DTK_UINT;
  if (ua == ub)
    return wa >= wb ? a : b;
  int ws = ua ? wb : wa, wu = ua ? wa : wb; /* the signed and the unsigned width */
  return sint_of_bits(ws > wu ? ws : 2 * wu);
}

/* The dtype that operands FIRST..N-1 promote to together, by torch's result_type: the operands of rank 1 or
 * more decide, and rank-0 operands matter only with a higher category (f16[B, S] * f32[] is f16, i64[B] *
 * f32[] is f32), so that a scalar constant does not widen a whole tensor. */
static tgc_dtype promoted(const tgc_type *const *ot, uint32_t first, uint32_t n) {
  bool have_dim = false, have_zero = false;
  tgc_dtype dim = TGC_DT_BOOL, zero = TGC_DT_BOOL;
  for (uint32_t i = first; i < n; i++) {
    if (ot[i]->rank > 0) {
      dim = have_dim ? promote(dim, ot[i]->dtype) : ot[i]->dtype;
      have_dim = true;
    } else {
      zero = have_zero ? promote(zero, ot[i]->dtype) : ot[i]->dtype;
      have_zero = true;
    }
  }
  if (!have_dim)
    return zero;
  if (have_zero && category(zero) > category(dim))
    return promote(dim, zero);
  return dim;
}

/* Records that the value operands FIRST..N-1 promote to DT (shape-infer inserts the casts). */
static void request_casts(infer *in, uint32_t first, uint32_t n, tgc_dtype dt) {
  in->promote = true;
  in->promote_first = first;
  in->promote_end = n;
  in->promote_dtype = dt;
}

/* ---- attributes (the verifier checks them, but the pass also runs under --no-verify) ---- */

static bool attr_int(infer *in, const tgc_op *op, const char *name, bool required, int64_t dflt, int64_t *out) {
  const tgc_attr *a = tgc_op_attr(op, name);
  if (!a && !required) {
    *out = dflt;
    return true;
  }
  if (!a || a->kind != TGC_ATTR_INT) {
    IERR(in, op->loc, "'%s' needs an int attribute '%s'", opname(op), name);
    return false;
  }
  *out = a->u.i;
  return true;
}

static bool attr_bool(infer *in, const tgc_op *op, const char *name, bool *out) {
  const tgc_attr *a = tgc_op_attr(op, name);
  if (a && a->kind != TGC_ATTR_BOOL) {
    IERR(in, op->loc, "attribute '%s' of '%s' must be bool", name, opname(op));
    return false;
  }
  *out = a ? a->u.b : false;
  return true;
}

/* A list of ints, copied into *OUT (scratch). */
static bool attr_ints(infer *in, const tgc_op *op, const char *name, int64_t **out, uint32_t *n) {
  const tgc_attr *a = tgc_op_attr(op, name);
  bool ok = a && a->kind == TGC_ATTR_LIST;
  for (uint32_t i = 0; ok && i < a->u.list.n; i++)
    ok = a->u.list.items[i]->kind == TGC_ATTR_INT;
  if (!ok) {
    IERR(in, op->loc, "'%s' needs a list of ints '%s'", opname(op), name);
    return false;
  }
  *n = a->u.list.n;
  *out = tgc_arena_alloc(in->tmp, sizeof **out * (*n + 1));
  for (uint32_t i = 0; i < *n; i++)
    (*out)[i] = a->u.list.items[i]->u.i;
  return true;
}

/* Normalizes AXIS (negative counts from the end) for a tensor of type T. SCALAR_OK accepts 0 and -1 on a
 * rank-0 tensor, as torch and the CPU backend do for softmax, cumsum, argmax and friends (*out is then 0,
 * which names no dim: callers treat rank 0 apart). */
static bool norm_axis(infer *in, const tgc_op *op, const char *what, int64_t axis, const tgc_type *t, const char *whose,
                      bool scalar_ok, uint32_t *out) {
  int64_t r = t->rank;
  if (r == 0 && scalar_ok && (axis == 0 || axis == -1)) {
    *out = 0;
    return true;
  }
  if (axis < -r || axis >= r) {
    IERR(in, op->loc, "%s %lld of '%s' is out of range for %s %s (rank %u)", what, (long long)axis, opname(op), whose,
         tstr(in, t), t->rank);
    return false;
  }
  *out = (uint32_t)(axis < 0 ? axis + r : axis);
  return true;
}

static bool need_rank1(infer *in, const tgc_op *op, const tgc_type *x) {
  if (x->rank > 0)
    return true;
  IERR(in, op->loc, "'%s' needs an operand of rank 1 or more, not %s", opname(op), tstr(in, x));
  return false;
}

/* An operand of a TGC_OPF_FLOAT_ONLY op must be floating point; any dtype does for the other ops. */
static bool need_float(infer *in, const tgc_op *op, const tgc_type *x) {
  if (!(tgc_op_info_of(op->opcode)->flags & TGC_OPF_FLOAT_ONLY) || is_float(x->dtype))
    return true;
  IERR(in, op->loc, "'%s' needs a floating-point operand, not %s (cast it first)", opname(op), tstr(in, x));
  return false;
}

static bool need_declared(infer *in, const tgc_op *op) {
  if (op->results[0].type)
    return true;
  IERR(in, op->loc, "'%s' requires a declared result type (it defines the %s)", opname(op),
       tgc_op_info_of(op->opcode)->flags & TGC_OPF_SOURCE ? "value's type" : "result's shape and dtype");
  return false;
}

/* ---- elementwise ---- */

/* numpy broadcasting of N types: aligned at their last dims, a missing dim counts as 1, and in each position
 * the dims are equal (canonically) or one of them is 1. Reports the first failure with every operand type. */
static bool broadcast(infer *in, const tgc_op *op, const tgc_type *const *ts, uint32_t n, uint32_t *rank,
                      const tgc_dim ***dims) {
  uint32_t r = 0;
  for (uint32_t i = 0; i < n; i++)
    r = ts[i]->rank > r ? ts[i]->rank : r;
  const tgc_dim **d = new_dims(in, r);
  const tgc_dim *one = dconst(in, 1);
  for (uint32_t k = 0; k < r; k++) {
    const tgc_dim *v = one;
    for (uint32_t i = 0; i < n; i++) {
      if (k + ts[i]->rank < r)
        continue;
      const tgc_dim *x = ts[i]->dims[k + ts[i]->rank - r];
      if (tgc_dim_equal(x, v) || dim_is(x, 1))
        continue;
      if (dim_is(v, 1)) {
        v = x;
        continue;
      }
      IERR(in, op->loc, "'%s' operands %s do not broadcast: dim %u is %s vs %s", opname(op), types_list(in, ts, n), k,
           dstr(in, v), dstr(in, x));
      return false;
    }
    d[k] = v;
  }
  *rank = r;
  *dims = d;
  return true;
}

/* clamp's bounds (docs/ir.md 8.1): never NaN; on an integer or bool operand, integers its dtype holds (a
 * float-to-int conversion of 1.0e300 has no meaning, and 1.5 would round differently by direction). */
static bool clamp_bounds(infer *in, const tgc_op *op, const tgc_type *x) {
  static const char *const names[] = {"min", "max"};
  bool ok = true;
  for (int k = 0; k < 2; k++) {
    const tgc_attr *b = tgc_op_attr(op, names[k]);
    if (!b || (b->kind != TGC_ATTR_INT && b->kind != TGC_ATTR_FLOAT))
      continue; /* absent, or reported by the schema check */
    int64_t lo = 0, hi = 0;
    bool is_i = b->kind == TGC_ATTR_INT;
    bool fits = tgc_clamp_bound_ok(x->dtype, is_i, is_i ? b->u.i : 0, is_i ? 0.0 : b->u.f, &lo, &hi);
    if (!fits && b->kind == TGC_ATTR_FLOAT && isnan(b->u.f)) {
      IERR(in, op->loc, "'%s' of 'clamp' is NaN, which bounds nothing", names[k]);
      ok = false;
      continue;
    }
    if (!fits) {
      tgc_strbuf sb;
      tgc_sb_init(&sb);
      tgc_attr_print(b, &sb);
      IERR(in, op->loc, "'%s' of 'clamp' is %s, which its operand's dtype %s cannot hold: on integers, bounds are "
           "integers from %lld to %lld", names[k], sb.data, tgc_dtype_name(x->dtype), (long long)lo, (long long)hi);
      tgc_sb_free(&sb);
      ok = false;
    }
  }
  return ok;
}

static bool unary(infer *in, const tgc_op *op, const tgc_type *x, const tgc_type **res) {
  if (!need_float(in, op, x))
    return false;
  res[0] = x;
  return true;
}

/* Binary ops and where: broadcast the operands, promote the value operands to one dtype. */
static bool elementwise(infer *in, const tgc_op *op, const tgc_type *const *ot, const tgc_type **res) {
  uint32_t first = op->opcode == TGC_OP_WHERE ? 1 : 0, n = op->noperands;
  if (op->opcode == TGC_OP_WHERE && ot[0]->dtype != TGC_DT_BOOL) {
    IERR(in, op->loc, "the condition of 'where' must be bool, not %s (operands %s)", tgc_dtype_name(ot[0]->dtype),
         types_list(in, ot, n));
    return false;
  }
  uint32_t rank;
  const tgc_dim **dims;
  if (!broadcast(in, op, ot, n, &rank, &dims))
    return false;
  tgc_dtype dt = promoted(ot, first, n);
  request_casts(in, first, n, dt);
  res[0] = mk(in, tgc_op_info_of(op->opcode)->flags & TGC_OPF_COMPARE ? TGC_DT_BOOL : dt, rank, dims);
  return true;
}

/* ---- reductions and normalization ---- */

static bool reduction(infer *in, const tgc_op *op, const tgc_type *x, const tgc_type **res) {
  bool keepdim;
  if (!attr_bool(in, op, "keepdim", &keepdim))
    return false;
  bool *reduce = tgc_arena_alloc(in->tmp, x->rank + 1);
  if (op->opcode == TGC_OP_ARGMAX) {
    int64_t axis;
    uint32_t a;
    if (!attr_int(in, op, "axis", true, 0, &axis) || !norm_axis(in, op, "axis", axis, x, "its operand", true, &a))
      return false;
    if (x->rank)
      reduce[a] = true;
  } else {
    int64_t *axes;
    uint32_t n;
    if (!attr_ints(in, op, "axes", &axes, &n))
      return false;
    /* an empty list reduces nothing (numpy's axis=(), and the CPU backend); a repeated axis counts once */
    for (uint32_t i = 0; i < n; i++) {
      uint32_t a;
      if (!norm_axis(in, op, "axis", axes[i], x, "its operand", false, &a))
        return false;
      reduce[a] = true;
    }
  }
  const tgc_dim **dims = new_dims(in, x->rank);
  uint32_t rank = 0;
  for (uint32_t i = 0; i < x->rank; i++) {
    if (!reduce[i])
      dims[rank++] = x->dims[i];
    else if (keepdim)
      dims[rank++] = dconst(in, 1);
  }
  res[0] = mk(in, op->opcode == TGC_OP_ARGMAX ? TGC_DT_I64 : x->dtype, rank, dims);
  return true;
}

/* cumsum, softmax, log_softmax: the operand's type, along an axis. */
static bool along_axis(infer *in, const tgc_op *op, const tgc_type *x, const tgc_type **res) {
  int64_t axis;
  uint32_t a;
  if (!attr_int(in, op, "axis", true, 0, &axis) || !norm_axis(in, op, "axis", axis, x, "its operand", true, &a))
    return false;
  if (!need_float(in, op, x))
    return false;
  res[0] = x;
  return true;
}

/* layer_norm and rms_norm: gamma and beta have the normalized shape (dims axis..rank-1 of x). */
static bool norm(infer *in, const tgc_op *op, const tgc_type *const *ot, const tgc_type **res) {
  const tgc_type *x = ot[0];
  if (!need_rank1(in, op, x) || !need_float(in, op, x))
    return false;
  uint32_t a = x->rank - 1;
  if (op->opcode == TGC_OP_LAYER_NORM) {
    int64_t axis;
    if (!attr_int(in, op, "axis", false, -1, &axis) || !norm_axis(in, op, "axis", axis, x, "its operand", false, &a))
      return false;
  }
  static const char *const names[] = {"x", "gamma", "beta"};
  bool ok = true;
  for (uint32_t i = 1; i < op->noperands && i < 3; i++) {
    const tgc_type *g = ot[i];
    bool same = g->rank == x->rank - a;
    for (uint32_t d = 0; same && d < g->rank; d++)
      same = tgc_dim_equal(g->dims[d], x->dims[a + d]);
    if (!same) {
      IERR(in, op->loc, "'%s' %s %s must have the normalized shape %s of its operand %s", opname(op), names[i],
           tstr(in, g), shape_str(in, x->rank - a, x->dims + a), tstr(in, x));
      ok = false;
    }
  }
  res[0] = x;
  return ok;
}

/* ---- contractions ---- */

static bool is_fp8(tgc_dtype dt) { return dt == TGC_DT_F8E4M3 || dt == TGC_DT_F8E5M2; }

/* The result dtype of a matmul (docs/ir.md 8.6): the quantized accumulation forms that fold-qdq produces,
 * i8 x i8 -> i32 (exact; K at most TGC_MATMUL_I8_MAX_K) and fp8 x fp8 -> f32 (or the declared f16 / bf16),
 * take no casts; other operands promote to one dtype, which the result keeps. */
static bool matmul_dtype(infer *in, const tgc_op *op, const tgc_type *a, const tgc_type *b, const tgc_dim *k,
                         tgc_dtype *dt) {
  const tgc_type *decl = op->nresults == 1 ? op->results[0].type : NULL;
  if (a->dtype == TGC_DT_I8 && b->dtype == TGC_DT_I8) {
    if (decl && decl->dtype != TGC_DT_I32) {
      IERR(in, op->loc, "'matmul' of i8 operands %s and %s accumulates exactly in i32: its result must be i32, not %s",
           tstr(in, a), tstr(in, b), tgc_dtype_name(decl->dtype));
      return false;
    }
    int64_t kv;
    if (tgc_dim_is_const(k, &kv) && kv > TGC_MATMUL_I8_MAX_K) {
      IERR(in, op->loc,
           "'matmul' of i8 operands %s and %s has contraction dim %lld: an exact i32 accumulation allows at most %d",
           tstr(in, a), tstr(in, b), (long long)kv, TGC_MATMUL_I8_MAX_K);
      return false;
    }
    *dt = TGC_DT_I32;
    return true;
  }
  if (is_fp8(a->dtype) && is_fp8(b->dtype)) {
    *dt = decl ? decl->dtype : TGC_DT_F32;
    if (*dt != TGC_DT_F32 && *dt != TGC_DT_F16 && *dt != TGC_DT_BF16) {
      IERR(in, op->loc, "'matmul' of fp8 operands %s and %s accumulates in fp32: its result must be f32, f16 or bf16, not %s",
           tstr(in, a), tstr(in, b), tgc_dtype_name(*dt));
      return false;
    }
    return true;
  }
  *dt = promoted((const tgc_type *const[]){a, b}, 0, 2);
  request_casts(in, 0, 2, *dt);
  return true;
}

/* torch.matmul: [.., M, K] x [.., K, N] -> [.., M, N]; a 1-D operand gains a dim that the result drops; the
 * batch dims broadcast. */
static bool matmul(infer *in, const tgc_op *op, const tgc_type *const *ot, const tgc_type **res) {
  const tgc_type *a = ot[0], *b = ot[1];
  if (a->rank == 0 || b->rank == 0) {
    IERR(in, op->loc, "'matmul' operands %s and %s must have rank 1 or more", tstr(in, a), tstr(in, b));
    return false;
  }
  const tgc_dim *ka = a->dims[a->rank - 1], *kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
  if (!tgc_dim_equal(ka, kb)) {
    IERR(in, op->loc, "'matmul' operands %s and %s have different contraction dims: %s vs %s", tstr(in, a), tstr(in, b),
         dstr(in, ka), dstr(in, kb));
    return false;
  }
  uint32_t ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0, rbat = ra > rb ? ra : rb;
  const tgc_dim **dims = new_dims(in, rbat + 2);
  uint32_t rank = 0;
  for (uint32_t d = 0; d < rbat; d++) {
    const tgc_dim *da = d + ra >= rbat ? a->dims[d + ra - rbat] : NULL;
    const tgc_dim *db = d + rb >= rbat ? b->dims[d + rb - rbat] : NULL;
    if (da && db && !tgc_dim_equal(da, db) && !dim_is(da, 1) && !dim_is(db, 1)) {
      IERR(in, op->loc, "'matmul' operands %s and %s do not broadcast their batch dims: dim %u is %s vs %s",
           tstr(in, a), tstr(in, b), d, dstr(in, da), dstr(in, db));
      return false;
    }
    dims[rank++] = !da || dim_is(da, 1) ? (db ? db : da) : da;
  }
  if (a->rank > 1)
    dims[rank++] = a->dims[a->rank - 2];
  if (b->rank > 1)
    dims[rank++] = b->dims[b->rank - 1];
  tgc_dtype dt;
  if (!matmul_dtype(in, op, a, b, ka, &dt))
    return false;
  res[0] = mk(in, dt, rank, dims);
  return true;
}

/* q [B, H, S, D], k [B, Hkv, T, D], v [B, Hkv, T, Dv] -> [B, H, S, Dv]; Hkv divides H; the mask broadcasts to
 * [B, H, S, T]. The CPU backend allows Dv != D, so the result takes v's last dim (docs/ir.md writes D). */
static bool attention(infer *in, const tgc_op *op, const tgc_type *const *ot, const tgc_type **res) {
  const tgc_type *q = ot[0], *k = ot[1], *v = ot[2], *mask = op->noperands > 3 ? ot[3] : NULL;
  if (q->rank != 4 || k->rank != 4 || v->rank != 4) {
    IERR(in, op->loc, "'attention' needs q, k and v of rank 4 ([B, H, S, D]), but they are %s", types_list(in, ot, 3));
    return false;
  }
  /* like torch's scaled_dot_product_attention, no implicit promotion: mixed dtypes are a mistake upstream */
  if (q->dtype != k->dtype || q->dtype != v->dtype) {
    IERR(in, op->loc, "'attention' needs q, k and v of one dtype, but they are %s", types_list(in, ot, 3));
    return false;
  }
  if (!tgc_dim_equal(k->dims[0], q->dims[0]) || !tgc_dim_equal(v->dims[0], q->dims[0]) ||
      !tgc_dim_equal(k->dims[1], v->dims[1]) || !tgc_dim_equal(k->dims[2], v->dims[2]) ||
      !tgc_dim_equal(k->dims[3], q->dims[3])) {
    IERR(in, op->loc,
         "'attention' operands q %s, k %s and v %s do not match: for q [B, H, S, D], k must be [B, Hkv, T, D] "
         "and v [B, Hkv, T, Dv]",
         tstr(in, q), tstr(in, k), tstr(in, v));
    return false;
  }
  int64_t h, hkv;
  if (tgc_dim_is_const(q->dims[1], &h) && tgc_dim_is_const(k->dims[1], &hkv) && (hkv == 0 || h % hkv != 0)) {
    IERR(in, op->loc, "the %lld query heads of 'attention' are not a multiple of its %lld key/value heads (q %s, k %s)",
         (long long)h, (long long)hkv, tstr(in, q), tstr(in, k));
    return false;
  }
  if (mask) {
    const tgc_dim *full[4] = {q->dims[0], q->dims[1], q->dims[2], k->dims[2]};
    if (mask->dtype != TGC_DT_BOOL && !is_float(mask->dtype)) {
      IERR(in, op->loc, "the mask of 'attention' must be bool or floating-point, not %s", tstr(in, mask));
      return false;
    }
    if (mask->rank > 4) {
      IERR(in, op->loc, "the mask %s of 'attention' has rank %u; it must broadcast to [B, H, S, T] = %s",
           tstr(in, mask), mask->rank, shape_str(in, 4, full));
      return false;
    }
    for (uint32_t d = 0; d < mask->rank; d++) {
      const tgc_dim *md = mask->dims[d], *fd = full[4 - mask->rank + d];
      if (!dim_is(md, 1) && !tgc_dim_equal(md, fd)) {
        IERR(in, op->loc, "the mask %s of 'attention' does not broadcast to [B, H, S, T] = %s: dim %u is %s vs %s",
             tstr(in, mask), shape_str(in, 4, full), d, dstr(in, md), dstr(in, fd));
        return false;
      }
    }
  }
  const tgc_dim *dims[4] = {q->dims[0], q->dims[1], q->dims[2], v->dims[3]};
  res[0] = mk(in, q->dtype, 4, dims);
  return true;
}

/* ---- data movement ---- */

/* The product of the dims of T, or NULL when it cannot be formed. */
static const tgc_dim *numel(infer *in, const tgc_type *t) {
  const tgc_dim *p = dconst(in, 1);
  for (uint32_t i = 0; i < t->rank; i++)
    if (tgc_dim_mul(in->tmp, p, t->dims[i], &p) != TGC_DIM_OK)
      return NULL;
  return p;
}

/* Two element counts differ for sure when their difference is nonzero for every size the symbols may take
 * (sizes are >= 0): a nonzero constant (N vs N + 1), or a nonzero constant term with every other coefficient
 * of its sign (N*S + 1 vs N*S - S); or when both are one monomial c*X*Y.. of the same symbols with different
 * coefficients (a zero symbol aside). Other differences may vanish at run time. */
static bool counts_differ(infer *in, const tgc_dim *p, const tgc_dim *q) {
  if (tgc_dim_equal(p, q))
    return false;
  const tgc_dim *diff;
  if (tgc_dim_sub(in->tmp, p, q, &diff) == TGC_DIM_OK && diff->nterms > 0) {
    const tgc_term *c = &diff->terms[diff->nterms - 1]; /* canonical: the constant term is last */
    bool same_sign = c->nsyms == 0;
    for (uint32_t i = 0; same_sign && i < diff->nterms; i++)
      same_sign = (diff->terms[i].coeff > 0) == (c->coeff > 0);
    if (same_sign)
      return true;
  }
  if (p->nterms != 1 || q->nterms != 1 || p->terms[0].nsyms != q->terms[0].nsyms)
    return false;
  for (uint32_t i = 0; i < p->terms[0].nsyms; i++)
    if (p->terms[0].syms[i] != q->terms[0].syms[i])
      return false;
  return true;
}

static bool reshape(infer *in, const tgc_op *op, const tgc_type *x, const tgc_type **res) {
  if (!need_declared(in, op))
    return false;
  const tgc_type *t = op->results[0].type;
  if (t->dtype != x->dtype) {
    IERR(in, op->loc, "'reshape' keeps its operand's dtype %s, but its result is declared %s (use 'cast')",
         tgc_dtype_name(x->dtype), tgc_dtype_name(t->dtype));
    return false;
  }
  const tgc_dim *p = numel(in, x), *q = numel(in, t);
  if (p && q && counts_differ(in, p, q)) {
    IERR(in, op->loc, "'reshape' changes the element count: its operand %s has %s elements, but the declared %s has %s",
         tstr(in, x), dstr(in, p), tstr(in, t), dstr(in, q));
    return false;
  }
  res[0] = t;
  return true;
}

static bool broadcast_to(infer *in, const tgc_op *op, const tgc_type *x, const tgc_type **res) {
  if (!need_declared(in, op))
    return false;
  const tgc_type *t = op->results[0].type;
  if (t->dtype != x->dtype) {
    IERR(in, op->loc, "'broadcast_to' keeps its operand's dtype %s, but its result is declared %s (use 'cast')",
         tgc_dtype_name(x->dtype), tgc_dtype_name(t->dtype));
    return false;
  }
  if (x->rank > t->rank) {
    IERR(in, op->loc, "'broadcast_to' cannot broadcast its operand %s to the declared %s of lower rank", tstr(in, x),
         tstr(in, t));
    return false;
  }
  for (uint32_t i = 0; i < x->rank; i++) {
    const tgc_dim *xd = x->dims[i], *td = t->dims[t->rank - x->rank + i];
    if (!dim_is(xd, 1) && !tgc_dim_equal(xd, td)) {
      IERR(in, op->loc, "'broadcast_to' cannot broadcast its operand %s to the declared %s: dim %u is %s vs %s",
           tstr(in, x), tstr(in, t), t->rank - x->rank + i, dstr(in, xd), dstr(in, td));
      return false;
    }
  }
  res[0] = t;
  return true;
}

static bool transpose(infer *in, const tgc_op *op, const tgc_type *x, const tgc_type **res) {
  int64_t *perm;
  uint32_t n;
  if (!attr_ints(in, op, "perm", &perm, &n))
    return false;
  bool ok = n == x->rank;
  bool *seen = tgc_arena_alloc(in->tmp, x->rank + 1);
  const tgc_dim **dims = new_dims(in, x->rank);
  for (uint32_t i = 0; ok && i < n; i++) {
    ok = perm[i] >= 0 && perm[i] < (int64_t)x->rank && !seen[perm[i]];
    if (ok) {
      seen[perm[i]] = true;
      dims[i] = x->dims[perm[i]];
    }
  }
  if (!ok) {
    IERR(in, op->loc, "'perm' of 'transpose' must be a permutation of 0..%u for its operand %s of rank %u",
         x->rank ? x->rank - 1 : 0, tstr(in, x), x->rank);
    return false;
  }
  res[0] = mk(in, x->dtype, x->rank, dims);
  return true;
}

/* Python slicing along one axis. A symbolic dim has a computable result only when the whole dim is taken;
 * otherwise (e.g. start = 1: N - 1 when N >= 1, else 0) the declared type says what the slice gives. */
static bool slice(infer *in, const tgc_op *op, const tgc_type *x, const tgc_type **res) {
  int64_t axis, start, end, step;
  uint32_t a;
  if (!attr_int(in, op, "axis", true, 0, &axis) || !attr_int(in, op, "start", true, 0, &start) ||
      !attr_int(in, op, "end", true, 0, &end) || !attr_int(in, op, "step", false, 1, &step))
    return false;
  if (!need_rank1(in, op, x) || !norm_axis(in, op, "axis", axis, x, "its operand", false, &a))
    return false;
  if (step <= 0) {
    IERR(in, op->loc, "'step' of 'slice' must be positive, not %lld", (long long)step);
    return false;
  }
  const tgc_type *decl = op->results[0].type;
  const tgc_dim *d = x->dims[a], *len;
  int64_t size;
  if (tgc_dim_is_const(d, &size) && size >= 0) {
    int64_t first, n;
    tgc_slice_range(size, start, end, step, &first, &n);
    len = dconst(in, n);
  } else if ((start == 0 || start <= INT64_MIN / 2) && end >= INT64_MAX / 2 && step == 1) {
    len = d;
  } else if (decl) {
    len = a < decl->rank ? decl->dims[a] : d; /* a rank mismatch is reported by the caller */
  } else {
    IERR(in, op->loc,
         "'slice' of the symbolic dim %s (axis %u of its operand %s) with start = %lld, end = %lld, step = %lld "
         "has a size that depends on %s: declare the result type",
         dstr(in, d), a, tstr(in, x), (long long)start, (long long)end, (long long)step, dstr(in, d));
    return false;
  }
  const tgc_dim **dims = new_dims(in, x->rank);
  for (uint32_t i = 0; i < x->rank; i++)
    dims[i] = i == a ? len : x->dims[i];
  res[0] = mk(in, x->dtype, x->rank, dims);
  return true;
}

static bool concat(infer *in, const tgc_op *op, const tgc_type *const *ot, const tgc_type **res) {
  int64_t axis;
  uint32_t a, n = op->noperands, rank = ot[0]->rank;
  if (!attr_int(in, op, "axis", true, 0, &axis))
    return false;
  for (uint32_t i = 1; i < n; i++) {
    if (ot[i]->rank != rank) {
      IERR(in, op->loc, "'concat' operands %s must have one rank", types_list(in, ot, n));
      return false;
    }
  }
  if (!need_rank1(in, op, ot[0]) || !norm_axis(in, op, "axis", axis, ot[0], "its operand", false, &a))
    return false;
  const tgc_dim *sum = ot[0]->dims[a];
  for (uint32_t i = 1; i < n; i++) {
    for (uint32_t d = 0; d < rank; d++) {
      if (d != a && !tgc_dim_equal(ot[i]->dims[d], ot[0]->dims[d])) {
        IERR(in, op->loc, "'concat' operands %s and %s differ in dim %u (%s vs %s), which is not the axis %u",
             tstr(in, ot[0]), tstr(in, ot[i]), d, dstr(in, ot[0]->dims[d]), dstr(in, ot[i]->dims[d]), a);
        return false;
      }
    }
    if (!dim_ok(in, op, tgc_dim_add(in->tmp, sum, ot[i]->dims[a], &sum)))
      return false;
  }
  const tgc_dim **dims = new_dims(in, rank);
  for (uint32_t d = 0; d < rank; d++)
    dims[d] = d == a ? sum : ot[0]->dims[d];
  tgc_dtype dt = promoted(ot, 0, n);
  request_casts(in, 0, n, dt);
  res[0] = mk(in, dt, rank, dims);
  return true;
}

static bool split(infer *in, const tgc_op *op, const tgc_type *x, const tgc_type **res) {
  int64_t axis, *sizes, total = 0;
  uint32_t a, n;
  if (!attr_int(in, op, "axis", true, 0, &axis) || !attr_ints(in, op, "sizes", &sizes, &n))
    return false;
  if (n != op->nresults) {
    IERR(in, op->loc, "'split' has %u size%s, but %u result%s %s bound", n, n == 1 ? "" : "s", op->nresults,
         op->nresults == 1 ? "" : "s", op->nresults == 1 ? "is" : "are");
    return false;
  }
  if (!need_rank1(in, op, x) || !norm_axis(in, op, "axis", axis, x, "its operand", false, &a))
    return false;
  for (uint32_t i = 0; i < n; i++) {
    if (sizes[i] < 0 || __builtin_add_overflow(total, sizes[i], &total)) {
      IERR(in, op->loc, "the sizes of 'split' must be non-negative and add up to a 64-bit integer");
      return false;
    }
  }
  if (!tgc_dim_equal(x->dims[a], dconst(in, total))) {
    IERR(in, op->loc, "the sizes of 'split' add up to %lld, but dim %u of its operand %s is %s", (long long)total, a,
         tstr(in, x), dstr(in, x->dims[a]));
    return false;
  }
  for (uint32_t r = 0; r < n; r++) {
    const tgc_dim **dims = new_dims(in, x->rank);
    for (uint32_t d = 0; d < x->rank; d++)
      dims[d] = d == a ? dconst(in, sizes[r]) : x->dims[d];
    res[r] = mk(in, x->dtype, x->rank, dims);
  }
  return true;
}

/* torch.gather: an index of the operand's rank, no larger than it outside the axis; the index's shape. */
static bool gather(infer *in, const tgc_op *op, const tgc_type *const *ot, const tgc_type **res) {
  const tgc_type *x = ot[0], *idx = ot[1];
  int64_t axis;
  uint32_t a;
  if (!attr_int(in, op, "axis", true, 0, &axis))
    return false;
  if (!is_int(idx->dtype)) {
    IERR(in, op->loc, "the index of 'gather' must be an integer tensor, not %s", tstr(in, idx));
    return false;
  }
  if (idx->rank != x->rank) {
    IERR(in, op->loc, "'gather' operands %s and %s must have one rank (gather works like torch.gather)", tstr(in, x),
         tstr(in, idx));
    return false;
  }
  if (!norm_axis(in, op, "axis", axis, x, "its operand", true, &a))
    return false;
  for (uint32_t d = 0; d < x->rank; d++) {
    int64_t xi, ii;
    if (d != a && tgc_dim_is_const(x->dims[d], &xi) && tgc_dim_is_const(idx->dims[d], &ii) && ii > xi) {
      IERR(in, op->loc, "'gather' operands %s and %s: index dim %u is %lld, larger than the operand's %lld",
           tstr(in, x), tstr(in, idx), d, (long long)ii, (long long)xi);
      return false;
    }
  }
  res[0] = mk(in, x->dtype, idx->rank, idx->dims);
  return true;
}

static bool embedding(infer *in, const tgc_op *op, const tgc_type *const *ot, const tgc_type **res) {
  const tgc_type *table = ot[0], *ids = ot[1];
  if (table->rank != 2) {
    IERR(in, op->loc, "the table of 'embedding' must have rank 2 ([V, E]), not %s", tstr(in, table));
    return false;
  }
  if (!is_int(ids->dtype)) {
    IERR(in, op->loc, "the ids of 'embedding' must be an integer tensor, not %s", tstr(in, ids));
    return false;
  }
  const tgc_dim **dims = new_dims(in, ids->rank + 1);
  for (uint32_t d = 0; d < ids->rank; d++)
    dims[d] = ids->dims[d];
  dims[ids->rank] = table->dims[1];
  res[0] = mk(in, table->dtype, ids->rank + 1, dims);
  return true;
}

static bool pad(infer *in, const tgc_op *op, const tgc_type *x, const tgc_type **res) {
  int64_t *lo, *hi;
  uint32_t nlo, nhi;
  if (!attr_ints(in, op, "low", &lo, &nlo) || !attr_ints(in, op, "high", &hi, &nhi))
    return false;
  if (nlo != x->rank || nhi != x->rank) {
    IERR(in, op->loc, "'low' and 'high' of 'pad' need one entry per dim of its operand %s, not %u and %u", tstr(in, x),
         nlo, nhi);
    return false;
  }
  const tgc_dim **dims = new_dims(in, x->rank);
  for (uint32_t d = 0; d < x->rank; d++) {
    if (lo[d] < 0 || hi[d] < 0) {
      IERR(in, op->loc, "'pad' does not support negative padding (dim %u)", d);
      return false;
    }
    const tgc_dim *s;
    if (!dim_ok(in, op, tgc_dim_add(in->tmp, x->dims[d], dconst(in, lo[d]), &s)) ||
        !dim_ok(in, op, tgc_dim_add(in->tmp, s, dconst(in, hi[d]), &s)))
      return false;
    dims[d] = s;
  }
  res[0] = mk(in, x->dtype, x->rank, dims);
  return true;
}

static bool iota(infer *in, const tgc_op *op, const tgc_type **res) {
  int64_t axis;
  uint32_t a;
  if (!need_declared(in, op) || !attr_int(in, op, "axis", true, 0, &axis) ||
      !norm_axis(in, op, "axis", axis, op->results[0].type, "its declared type", true, &a))
    return false;
  res[0] = op->results[0].type;
  return true;
}

/* ---- quantization ---- */

static bool is_storage(tgc_dtype dt) {
  return dt == TGC_DT_I8 || dt == TGC_DT_U8 || dt == TGC_DT_I4 || dt == TGC_DT_F8E4M3 || dt == TGC_DT_F8E5M2;
}

/* Scale and zero-point operands as the CPU backend reads them: scalars per tensor, [x.dim[axis]] per channel,
 * x's shape with dim axis divided (rounding up) by the group size group-wise. */
static bool quantize(infer *in, const tgc_op *op, const tgc_type *const *ot, const tgc_type **res) {
  const tgc_type *x = ot[0];
  bool q = op->opcode == TGC_OP_QUANTIZE;
  if (!need_declared(in, op))
    return false;
  const tgc_type *t = op->results[0].type;
  if (q ? !is_storage(t->dtype) : !is_float(t->dtype)) {
    IERR(in, op->loc, "'%s' must declare %s, not %s", opname(op),
         q ? "a storage dtype (i8, u8, i4, f8e4m3 or f8e5m2)" : "a floating-point dtype", tgc_dtype_name(t->dtype));
    return false;
  }
  /* dequantize reads a storage dtype, or an accumulator to rescale (an i32 from an i8 matmul, a float one) */
  if (!q && !is_storage(x->dtype) && x->dtype != TGC_DT_I32 && !is_float(x->dtype)) {
    IERR(in, op->loc,
         "the operand of 'dequantize' must be a storage dtype (i8, u8, i4, f8e4m3 or f8e5m2), an i32 accumulator or "
         "a floating-point value, not %s",
         tstr(in, x));
    return false;
  }
  int64_t group, axis;
  if (!attr_int(in, op, "group", false, 0, &group) || !attr_int(in, op, "axis", false, 0, &axis))
    return false;
  if (group < 0) {
    IERR(in, op->loc, "'group' of '%s' must be positive, not %lld", opname(op), (long long)group);
    return false;
  }
  bool has_axis = tgc_op_attr(op, "axis") != NULL;
  uint32_t a = 0;
  if (has_axis && !norm_axis(in, op, "axis", axis, x, "its operand", true, &a))
    return false;
  if (has_axis && op->noperands < 2) {
    IERR(in, op->loc, "per-channel '%s' ('axis' given) needs a scale operand", opname(op));
    return false;
  }
  static const char *const what[] = {"", "scale", "zero point"};
  for (uint32_t i = 1; i < op->noperands; i++) {
    const tgc_type *s = ot[i];
    const char *want = NULL;
    if (!has_axis) {
      for (uint32_t d = 0; d < s->rank && !want; d++)
        if (!dim_is(s->dims[d], 1))
          want = "a single element (per-tensor: no 'axis')";
    } else if (x->rank == 0) {
      /* a scalar's one channel: the backend takes one scale */
    } else if (group == 0) {
      if (s->rank != 1 || !tgc_dim_equal(s->dims[0], x->dims[a]))
        want = shape_str(in, 1, x->dims + a);
    } else {
      const tgc_dim **dims = new_dims(in, x->rank);
      bool ok = s->rank == x->rank;
      for (uint32_t d = 0; d < x->rank; d++) {
        int64_t v;
        dims[d] = x->dims[d];
        if (d == a)
          dims[d] = tgc_dim_is_const(x->dims[d], &v) ? dconst(in, v / group + (v % group != 0)) : NULL;
        if (ok && dims[d])
          ok = tgc_dim_equal(s->dims[d], dims[d]);
      }
      if (!ok)
        want = dims[a] ? shape_str(in, x->rank, dims) : "the operand's rank";
    }
    if (want) {
      IERR(in, op->loc, "the %s operand of '%s' is %s, but for its operand %s it must be %s", what[i], opname(op),
           tstr(in, s), tstr(in, x), want);
      return false;
    }
  }
  res[0] = mk(in, t->dtype, x->rank, x->dims);
  return true;
}

/* ---- collectives ---- */

/* The group size of a collective: the product of the sizes of its mesh axes (tgc_mesh_group_size). */
static bool group_size(infer *in, const tgc_op *op, const tgc_mesh **mesh_out, int64_t *n) {
  const tgc_attr *ma = tgc_op_attr(op, "mesh"), *axes = tgc_op_attr(op, "axes");
  const tgc_mesh *mesh = ma && ma->kind == TGC_ATTR_SYM ? tgc_module_find_mesh(in->m, ma->u.s) : NULL;
  if (!mesh || !axes || axes->kind != TGC_ATTR_LIST) {
    IERR(in, op->loc, "'%s' needs a declared mesh and a list of its axes", opname(op));
    return false;
  }
  uint32_t bad = 0;
  *n = tgc_mesh_group_size(mesh, axes, &bad);
  if (*n == 0) {
    IERR(in, op->loc, "mesh '@%s' of '%s' has no such axis (item #%u of 'axes')", mesh->name, opname(op), bad);
    return false;
  }
  if (*n < 0) {
    IERR(in, op->loc, "the group of '%s' (the axes of mesh '@%s' it names) has more than %d devices", opname(op),
         mesh->name, TGC_MAX_GROUP);
    return false;
  }
  *mesh_out = mesh;
  return true;
}

/* D / N when every coefficient of D divides by N (exact on polynomials: 4*B / 2 = 2*B), else NULL. */
static const tgc_dim *dim_div(infer *in, const tgc_dim *d, int64_t n) {
  tgc_term *terms = tgc_arena_alloc(in->tmp, sizeof *terms * (d->nterms + 1));
  for (uint32_t i = 0; i < d->nterms; i++) {
    if (d->terms[i].coeff % n != 0)
      return NULL;
    terms[i] = d->terms[i];
    terms[i].coeff /= n;
  }
  tgc_dim *q = tgc_arena_alloc(in->tmp, sizeof *q);
  q->nterms = d->nterms;
  q->terms = terms;
  return q;
}

static bool collective(infer *in, const tgc_op *op, const tgc_type *x, const tgc_type **res) {
  const tgc_mesh *mesh;
  int64_t n, dim;
  uint32_t a;
  if (!group_size(in, op, &mesh, &n))
    return false;
  if (op->opcode == TGC_OP_ALL_REDUCE) {
    res[0] = x;
    return true;
  }
  if (!attr_int(in, op, "dim", true, 0, &dim) || !norm_axis(in, op, "dim", dim, x, "its operand", false, &a))
    return false;
  const tgc_dim *d = x->dims[a], *r;
  if (op->opcode == TGC_OP_ALL_GATHER) {
    if (!dim_ok(in, op, tgc_dim_mul(in->tmp, d, dconst(in, n), &r)))
      return false;
  } else if (n > 0 && (r = dim_div(in, d, n)) != NULL) {
    /* exact */
  } else if (!tgc_dim_is_const(d, NULL) && op->results[0].type && a < op->results[0].type->rank) {
    /* B / 4 is no polynomial (the case of slice on a symbolic dim): the declared dim stands */
    r = op->results[0].type->dims[a];
  } else {
    IERR(in, op->loc,
         "'reduce_scatter' cannot split dim %u of its operand %s (%s) into %lld equal parts (the devices of mesh "
         "'@%s' along its axes)%s",
         a, tstr(in, x), dstr(in, d), (long long)n, mesh->name,
         tgc_dim_is_const(d, NULL) ? "" : ": declare the result type");
    return false;
  }
  const tgc_dim **dims = new_dims(in, x->rank);
  for (uint32_t i = 0; i < x->rank; i++)
    dims[i] = i == a ? r : x->dims[i];
  res[0] = mk(in, x->dtype, x->rank, dims);
  return true;
}

/* ---- the driver ---- */

static bool infer_rule(infer *in, const tgc_op *op, const tgc_type *const *ot, const tgc_type **res) {
  const tgc_type *x = op->noperands ? ot[0] : NULL;
  switch (op->opcode) {
  case TGC_OP_NEG:
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
    return unary(in, op, x, res); /* float-only or not: the op's TGC_OPF_FLOAT_ONLY flag */
  case TGC_OP_CLAMP:
    return clamp_bounds(in, op, x) && unary(in, op, x, res);
  case TGC_OP_CAST:
    if (!need_declared(in, op))
      return false;
    res[0] = mk(in, op->results[0].type->dtype, x->rank, x->dims);
    return true;
  case TGC_OP_ADD:
  case TGC_OP_SUB:
  case TGC_OP_MUL:
  case TGC_OP_DIV:
  case TGC_OP_POW:
  case TGC_OP_MAXIMUM:
  case TGC_OP_MINIMUM:
  case TGC_OP_EQ:
  case TGC_OP_NE:
  case TGC_OP_LT:
  case TGC_OP_LE:
  case TGC_OP_GT:
  case TGC_OP_GE:
  case TGC_OP_AND:
  case TGC_OP_OR:
  case TGC_OP_WHERE:
    return elementwise(in, op, ot, res);
  case TGC_OP_REDUCE_SUM:
  case TGC_OP_REDUCE_MEAN:
  case TGC_OP_REDUCE_MAX:
  case TGC_OP_REDUCE_MIN:
  case TGC_OP_ARGMAX:
    return reduction(in, op, x, res);
  case TGC_OP_CUMSUM:
  case TGC_OP_SOFTMAX:
  case TGC_OP_LOG_SOFTMAX:
    return along_axis(in, op, x, res);
  case TGC_OP_LAYER_NORM:
  case TGC_OP_RMS_NORM:
    return norm(in, op, ot, res);
  case TGC_OP_MATMUL:
    return matmul(in, op, ot, res);
  case TGC_OP_ATTENTION:
    return attention(in, op, ot, res);
  case TGC_OP_RESHAPE:
    return reshape(in, op, x, res);
  case TGC_OP_TRANSPOSE:
    return transpose(in, op, x, res);
  case TGC_OP_BROADCAST_TO:
    return broadcast_to(in, op, x, res);
  case TGC_OP_SLICE:
    return slice(in, op, x, res);
  case TGC_OP_CONCAT:
    return concat(in, op, ot, res);
  case TGC_OP_SPLIT:
    return split(in, op, x, res);
  case TGC_OP_GATHER:
    return gather(in, op, ot, res);
  case TGC_OP_EMBEDDING:
    return embedding(in, op, ot, res);
  case TGC_OP_IOTA:
    return iota(in, op, res);
  case TGC_OP_PAD:
    return pad(in, op, x, res);
  case TGC_OP_PARAM:
  case TGC_OP_CONSTANT:
    if (!need_declared(in, op))
      return false;
    res[0] = op->results[0].type;
    return true;
  case TGC_OP_FUSION:
    return true; /* its region decides: the caller walks it (shape-infer infers it, the verifier checks yields) */
  case TGC_OP_YIELD:
  case TGC_OP_RETURN:
    return true; /* no results */
  case TGC_OP_QUANTIZE:
  case TGC_OP_DEQUANTIZE:
    return quantize(in, op, ot, res);
  case TGC_OP_ALL_REDUCE:
  case TGC_OP_ALL_GATHER:
  case TGC_OP_REDUCE_SCATTER:
    return collective(in, op, x, res);
  case TGC_OP_COUNT:
    break;
  }
  tgc_unreachable();
}

bool tgc_ir_infer_op(infer *in, const tgc_op *op, const tgc_type *const *ot, const tgc_type **res) {
  in->promote = false;
  for (uint32_t i = 0; i < op->nresults; i++)
    res[i] = NULL;
  if (!infer_rule(in, op, ot, res))
    return false;
  for (uint32_t i = 0; i < op->nresults; i++) {
    if (res[i] && res[i]->rank > TGC_MAX_RANK) {
      IERR(in, op->loc, "result #%u of '%s' would have rank %u, above the maximum rank %d", i, opname(op),
           res[i]->rank, TGC_MAX_RANK);
      return false;
    }
  }
  return true;
}

void tgc_ir_report_type_mismatch(infer *in, const tgc_op *op, uint32_t i, const tgc_type *const *ot, const tgc_type *t) {
  char which[32] = "";
  if (op->nresults > 1)
    snprintf(which, sizeof which, " #%u", i);
  const char *decl = tstr(in, op->results[i].type), *got = tstr(in, t);
  if (op->opcode == TGC_OP_FUSION)
    IERR(in, op->loc, "'fusion' result%s is declared %s but its region yields %s", which, decl, got);
  else if (op->noperands == 0)
    IERR(in, op->loc, "'%s' result%s is declared %s but it is inferred as %s", opname(op), which, decl, got);
  else
    IERR(in, op->loc, "'%s' result%s is declared %s but its operand%s %s give%s %s", opname(op), which, decl,
         op->noperands == 1 ? "" : "s", types_list(in, ot, op->noperands), op->noperands == 1 ? "s" : "", got);
}


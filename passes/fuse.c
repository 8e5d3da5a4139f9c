/* fuse: groups ops into `fusion` ops whose regions hold them, so that codegen emits one kernel (or one GEMM
 * call with its epilogue) per group. Requires: every value typed (shape-infer). Preserves: types; the numbers
 * (a region computes exactly what its ops did). Breaks: unfused IR (TGC_PROP_UNFUSED, not in its preserves).
 *
 * The groups, in the order they are formed (an op joins at most one):
 *  1. pattern rewrites first: a tanh-GELU spelled out in ops (0.5*x*(1+tanh(0.79788456*(x+0.044715*x^3))))
 *     becomes one `gelu {approximate = "tanh"}`; matmul(q, kᵀ)·scale (+mask) -> softmax -> matmul(·, v) becomes
 *     one `attention` op;
 *  2. "attention": an attention op with the layout ops around it (split/reshape/transpose of its q, k, v and
 *     the transpose/reshape of its result), which a fused kernel folds into its addressing;
 *  3. "gemm_epilogue": a matmul with the chain of elementwise ops and reshapes that consume it (bias, activation,
 *     residual add, scale, cast);
 *  4. "reduction": softmax, log_softmax, layer_norm, rms_norm or reduce_* with its elementwise producers and
 *     consumers;
 *  5. "elementwise": the remaining connected elementwise ops.
 *
 * Cost model (docs/passes.md): a group holds at most one contraction (never two GEMMs), at most `max-ops` ops;
 * it grows only along values with a single user, so nothing is computed twice and every group has one
 * result; collectives, params and constants never join (a group never spans a collective). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pass.h"

typedef struct {
  tgc_op **ops;
  uint32_t n, cap;
  tgc_fusion_kind kind;
  tgc_op *root;  /* the op whose result is the group's result */
  tgc_op *root2; /* a reduction group's second result (side_output), or NULL */
} group;

typedef struct {
  tgc_pass_ctx *ctx;
  tgc_module *m;
  tgc_strmap grouped;  /* op pointer -> 1 */
  tgc_strmap reported; /* ops that already got their missed-fusion remark: one each */
  int64_t max_ops;
  bool remarks, missed;
  int ngroups;
} fuser;

static bool is_grouped(fuser *f, const tgc_op *op) {
  return tgc_strmap_get(&f->grouped, (const char *)&op, sizeof op) != NULL;
}

static void mark(fuser *f, const tgc_op *op) { tgc_strmap_put(&f->grouped, (const char *)&op, sizeof op, (void *)1); }

static void remark(fuser *f, const tgc_op *op, const char *fmt, ...) TGC_PRINTF(3, 4);
static void remark(fuser *f, const tgc_op *op, const char *fmt, ...) {
  if (!f->remarks)
    return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  tgc_pass_remark(f->ctx, false, op, "%s", msg);
}

static void missed(fuser *f, const tgc_op *op, const char *fmt, ...) TGC_PRINTF(3, 4);
static void missed(fuser *f, const tgc_op *op, const char *fmt, ...) {
  if (!f->missed || tgc_strmap_get(&f->reported, (const char *)&op, sizeof op))
    return;
  tgc_strmap_put(&f->reported, (const char *)&op, sizeof op, (void *)1);
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  tgc_pass_remark(f->ctx, true, op, "%s", msg);
}

/* ---- op classes ---- */

static bool is_view(const tgc_op *op) { return (tgc_op_info_of(op->opcode)->flags & TGC_OPF_VIEW) != 0; }

/* Ops a fused loop computes per output element: elementwise math, and the data movement that is only index
 * arithmetic there (ops.def's index-map ops: broadcasts, views, transposes, slices, concats, iota). */
static bool is_pointwise(const tgc_op *op) {
  /* quantize and dequantize are per element too: their scales are read at the element's channel or group */
  return (tgc_op_info_of(op->opcode)->flags & (TGC_OPF_ELEMWISE | TGC_OPF_INDEX_MAP)) != 0 ||
         op->opcode == TGC_OP_QUANTIZE || op->opcode == TGC_OP_DEQUANTIZE;
}

/* A transpose of the last two dims only: a GEMM reads such an operand transposed for free. */
static bool is_matrix_transpose(const tgc_op *op) {
  const tgc_attr *perm = op->opcode == TGC_OP_TRANSPOSE ? tgc_op_attr(op, "perm") : NULL;
  if (!perm || perm->kind != TGC_ATTR_LIST || perm->u.list.n < 2)
    return false;
  uint32_t n = perm->u.list.n;
  for (uint32_t i = 0; i + 2 < n; i++)
    if (perm->u.list.items[i]->u.i != (int64_t)i)
      return false;
  return perm->u.list.items[n - 2]->u.i == (int64_t)n - 1 && perm->u.list.items[n - 1]->u.i == (int64_t)n - 2;
}

/* The only user of V, or NULL when V has none or several. */
static tgc_op *single_user(const tgc_value *v) {
  return v->uses && !v->uses->next ? v->uses->user : NULL;
}

/* ---- constants ---- */

/* True when V is a `constant` whose value is one number (a splat); *x receives it. */
static bool const_scalar(const tgc_value *v, double *x) {
  const tgc_op *d = v ? v->def : NULL;
  if (!d || d->opcode != TGC_OP_CONSTANT)
    return false;
  const tgc_attr *a = tgc_op_attr(d, "value");
  while (a && a->kind == TGC_ATTR_LIST && a->u.list.n == 1)
    a = a->u.list.items[0];
  if (!a || (a->kind != TGC_ATTR_FLOAT && a->kind != TGC_ATTR_INT))
    return false;
  if (a->kind == TGC_ATTR_LIST)
    return false;
  *x = a->kind == TGC_ATTR_FLOAT ? a->u.f : (double)a->u.i;
  return true;
}

static bool near(double a, double b) { return fabs(a - b) <= 1e-6 * fabs(b); }

/* For a binary op, the operand that is not the scalar constant C (within 1e-6), or NULL. */
static tgc_value *other_than_const(const tgc_op *op, double c) {
  if (op->noperands != 2)
    return NULL;
  double x;
  if (const_scalar(op->operands[1].value, &x) && near(x, c))
    return op->operands[0].value;
  if ((tgc_op_info_of(op->opcode)->flags & TGC_OPF_COMMUTATIVE) && const_scalar(op->operands[0].value, &x) &&
      near(x, c))
    return op->operands[1].value;
  return NULL;
}

static const tgc_op *def_is(const tgc_value *v, tgc_opcode opc) {
  return v && v->def && v->def->opcode == opc ? v->def : NULL;
}

/* Erases OP if it is dead, then the producers of its operands that became dead with it: only what a rewrite
 * left behind goes, never unrelated dead ops (that is dce's job). */
static void erase_dead_tree(tgc_op *op) {
  if (!op || !op->parent || !tgc_op_is_pure(op))
    return;
  for (uint32_t i = 0; i < op->nresults; i++)
    if (op->results[i].uses)
      return;
  tgc_op *defs[8];
  uint32_t n = 0;
  for (uint32_t i = 0; i < op->noperands && n < 8; i++)
    if (op->operands[i].value->def)
      defs[n++] = op->operands[i].value->def;
  tgc_op_erase(op);
  for (uint32_t i = 0; i < n; i++)
    erase_dead_tree(defs[i]);
}

/* ---- 1a. tanh-GELU recognition ---- */

/* Matches mul(mul(x, 0.5), add(tanh(mul(add(x, mul(pow(x, 3), 0.044715)), sqrt(2/pi))), 1)) (any operand
 * order) and returns x, or NULL. */
static tgc_value *match_tanh_gelu(const tgc_op *root) {
  if (root->opcode != TGC_OP_MUL)
    return NULL;
  for (int side = 0; side < 2; side++) {
    const tgc_op *half = def_is(root->operands[side].value, TGC_OP_MUL);
    const tgc_op *plus1 = def_is(root->operands[1 - side].value, TGC_OP_ADD);
    if (!half || !plus1)
      continue;
    tgc_value *x = other_than_const(half, 0.5);
    tgc_value *th = other_than_const(plus1, 1.0);
    const tgc_op *tanh_op = def_is(th, TGC_OP_TANH);
    if (!x || !tanh_op)
      continue;
    const tgc_op *scaled = def_is(tanh_op->operands[0].value, TGC_OP_MUL);
    const tgc_op *inner = scaled ? def_is(other_than_const(scaled, 0.7978845608028654), TGC_OP_ADD) : NULL;
    if (!inner)
      continue;
    for (int s2 = 0; s2 < 2; s2++) {
      if (inner->operands[s2].value != x)
        continue;
      const tgc_op *cube_scaled = def_is(inner->operands[1 - s2].value, TGC_OP_MUL);
      const tgc_op *cube = cube_scaled ? def_is(other_than_const(cube_scaled, 0.044715), TGC_OP_POW) : NULL;
      double e;
      if (cube && cube->operands[0].value == x && const_scalar(cube->operands[1].value, &e) && e == 3.0)
        return x;
    }
  }
  return NULL;
}

static bool rewrite_gelus(fuser *f, tgc_block *b) {
  bool changed = false;
  for (tgc_op *op = b->first; op;) {
    tgc_op *next = op->next;
    tgc_value *x = match_tanh_gelu(op);
    if (x && op->results[0].type && x->type && tgc_type_equal(x->type, op->results[0].type)) {
      tgc_op *g = tgc_op_create(f->m, TGC_OP_GELU, &x, 1, &op->results[0].type, 1, op->loc);
      tgc_op_set_attr(f->m, g, "approximate", tgc_attr_str(&f->m->arena, "tanh", 4));
      g->results[0].name = op->results[0].name;
      tgc_block_insert_before(b, op, g);
      tgc_value_replace_all_uses(&op->results[0], &g->results[0]);
      remark(f, g, "recognized a tanh-approximated GELU spelled out in 8 ops");
      erase_dead_tree(op); /* the spelled-out ops */
      next = g->next;
      changed = true;
    }
    op = next;
  }
  return changed;
}

/* ---- 1b. decomposed attention -> attention ---- */

/* matmul(softmax(s, axis=-1), v) with s = [add(mask) | where(mask, ., c)] of [mul(., scale) | div(., c)] of
 * matmul(q, transpose(k) swapping the last two dims); rank 4, every intermediate with one user. */
static bool rewrite_attention(fuser *f, tgc_block *b) {
  bool changed = false;
  for (tgc_op *op = b->first; op; op = op->next) {
    if (op->opcode != TGC_OP_MATMUL || !op->results[0].type || op->results[0].type->rank != 4)
      continue;
    const tgc_op *sm = def_is(op->operands[0].value, TGC_OP_SOFTMAX);
    if (!sm || single_user(&sm->results[0]) != op)
      continue;
    int64_t axis = tgc_op_attr_int(sm, "axis", -1);
    if (axis != -1 && axis != 3)
      continue;
    tgc_value *s = sm->operands[0].value, *mask = NULL;
    const tgc_op *t;
    if ((t = def_is(s, TGC_OP_ADD)) && single_user(s) == sm) {
      /* additive mask: the operand that is not the score product */
      const tgc_op *a0 = t->operands[0].value->def;
      bool first = a0 && (a0->opcode == TGC_OP_MATMUL || a0->opcode == TGC_OP_MUL || a0->opcode == TGC_OP_DIV);
      mask = t->operands[first ? 1 : 0].value;
      s = t->operands[first ? 0 : 1].value;
    } else if ((t = def_is(s, TGC_OP_WHERE)) && single_user(s) == sm) {
      double c;
      if (!const_scalar(t->operands[2].value, &c) || !(isinf(c) && c < 0))
        continue;
      mask = t->operands[0].value; /* true: may attend */
      s = t->operands[1].value;
    }
    double scale = NAN;
    if ((t = def_is(s, TGC_OP_MUL)) && single_user(s)) {
      double c;
      if (const_scalar(t->operands[1].value, &c)) {
        scale = c;
        s = t->operands[0].value;
      } else if (const_scalar(t->operands[0].value, &c)) {
        scale = c;
        s = t->operands[1].value;
      }
    } else if ((t = def_is(s, TGC_OP_DIV)) && single_user(s)) {
      double c;
      if (const_scalar(t->operands[1].value, &c) && c != 0) {
        scale = 1.0 / c;
        s = t->operands[0].value;
      }
    }
    const tgc_op *qk = def_is(s, TGC_OP_MATMUL);
    if (!qk || !single_user(s))
      continue;
    /* kᵀ = transpose(x, p): k itself is transpose(x, p with its last two entries swapped), or x when that is
     * the identity (canonicalize may have merged the head and the key transposes into one) */
    const tgc_op *kt = def_is(qk->operands[1].value, TGC_OP_TRANSPOSE);
    const tgc_attr *perm = kt ? tgc_op_attr(kt, "perm") : NULL;
    if (!perm || perm->u.list.n != 4 || single_user(&kt->results[0]) != qk)
      continue;
    int64_t pk[4];
    bool identity = true;
    for (int d = 0; d < 4; d++)
      pk[d] = perm->u.list.items[d]->u.i;
    int64_t tmp = pk[2];
    pk[2] = pk[3];
    pk[3] = tmp;
    for (int d = 0; d < 4; d++)
      identity = identity && pk[d] == d;
    tgc_value *q = qk->operands[0].value, *x = kt->operands[0].value, *v = op->operands[1].value;
    const tgc_type *qt = q->type, *xt = x->type, *vt = v->type, *rt = op->results[0].type;
    if (!qt || !xt || !vt || qt->rank != 4 || xt->rank != 4 || vt->rank != 4)
      continue;
    const tgc_dim *kd[4];
    for (int d = 0; d < 4; d++)
      kd[d] = xt->dims[pk[d]];
    /* q [B, H, S, D], k [B, Hk, T, D], v [B, Hk, T, Dv], all one dtype, and H a multiple of Hk */
    int64_t h, hk;
    bool heads_ok = tgc_dim_equal(qt->dims[1], kd[1]) ||
                    (tgc_dim_is_const(qt->dims[1], &h) && tgc_dim_is_const(kd[1], &hk) && hk > 0 && h % hk == 0);
    if (!tgc_dim_equal(qt->dims[0], kd[0]) || !tgc_dim_equal(vt->dims[0], kd[0]) || !tgc_dim_equal(vt->dims[1], kd[1]) ||
        !tgc_dim_equal(vt->dims[2], kd[2]) || !tgc_dim_equal(qt->dims[3], kd[3]) || !heads_ok ||
        qt->dtype != xt->dtype || vt->dtype != xt->dtype || !rt || rt->dtype != qt->dtype)
      continue;
    tgc_value *k = x;
    if (!identity) {
      tgc_builder bd = {f->m, b, op, op->loc};
      const tgc_dim *const *dims = kd;
      tgc_op *tr = tgc_build(&bd, TGC_OP_TRANSPOSE, &x, 1, tgc_type_create(&f->m->arena, xt->dtype, 4, dims));
      tgc_op_set_attr(f->m, tr, "perm", tgc_attr_ints(&f->m->arena, pk, 4));
      k = &tr->results[0];
    }
    tgc_value *ops[4] = {q, k, v, mask};
    tgc_op *att = tgc_op_create(f->m, TGC_OP_ATTENTION, ops, mask ? 4 : 3, &op->results[0].type, 1, op->loc);
    /* the spelled-out form had no scale, or one we matched: the op's default 1/sqrt(D) must not apply */
    tgc_op_set_attr(f->m, att, "scale", tgc_attr_float(&f->m->arena, isnan(scale) ? 1.0 : scale));
    att->results[0].name = op->results[0].name;
    tgc_block_insert_before(b, op, att);
    tgc_value_replace_all_uses(&op->results[0], &att->results[0]);
    remark(f, att, "recognized attention spelled out as matmul, %ssoftmax and matmul",
           mask ? "mask, " : "");
    erase_dead_tree(op);
    op = att;
    changed = true;
  }
  return changed;
}

/* ---- groups ---- */

static void group_add(fuser *f, group *g, tgc_op *op) {
  if (g->n == g->cap) {
    uint32_t cap = g->cap ? g->cap * 2 : 8;
    g->ops = tgc_arena_grow(f->ctx->scratch, g->ops, g->n, cap, sizeof *g->ops);
    g->cap = cap;
  }
  g->ops[g->n++] = op;
  mark(f, op);
}

static bool group_has(const group *g, const tgc_op *op) {
  for (uint32_t i = 0; i < g->n; i++)
    if (g->ops[i] == op)
      return true;
  return false;
}

/* Position of OP in its block (for ordering members). */
static int64_t position(const tgc_op *op) {
  int64_t i = 0;
  for (const tgc_op *o = op->parent->first; o && o != op; o = o->next)
    i++;
  return i;
}

/* Moves the group's ops into a new fusion op placed where its root was. External operands become region
 * arguments; the root's result becomes the fusion's result. */
static tgc_op *materialize(fuser *f, group *g) {
  tgc_block *b = g->root->parent;
  /* order members as they appear in the block */
  int64_t *pos = tgc_arena_alloc(f->ctx->scratch, sizeof *pos * g->n);
  for (uint32_t i = 0; i < g->n; i++)
    pos[i] = position(g->ops[i]);
  for (uint32_t i = 1; i < g->n; i++)
    for (uint32_t j = i; j > 0 && pos[j - 1] > pos[j]; j--) {
      int64_t tp = pos[j];
      pos[j] = pos[j - 1];
      pos[j - 1] = tp;
      tgc_op *to = g->ops[j];
      g->ops[j] = g->ops[j - 1];
      g->ops[j - 1] = to;
    }
  /* external inputs, in order of first use */
  tgc_value **ins = tgc_arena_alloc(f->ctx->scratch, sizeof *ins * 64);
  uint32_t nin = 0, incap = 64;
  for (uint32_t i = 0; i < g->n; i++)
    for (uint32_t k = 0; k < g->ops[i]->noperands; k++) {
      tgc_value *v = g->ops[i]->operands[k].value;
      if (v->def && group_has(g, v->def))
        continue;
      bool seen = false;
      for (uint32_t j = 0; j < nin && !seen; j++)
        seen = ins[j] == v;
      if (seen)
        continue;
      if (nin == incap) {
        ins = tgc_arena_grow(f->ctx->scratch, ins, incap, incap * 2, sizeof *ins);
        incap *= 2;
      }
      ins[nin++] = v;
    }
  tgc_op *root = g->root;
  tgc_op *roots[2] = {root, g->root2};
  uint32_t nres = g->root2 ? 2 : 1;
  const tgc_type *rtypes[2] = {root->results[0].type, g->root2 ? g->root2->results[0].type : NULL};
  tgc_op *fusion = tgc_op_create(f->m, TGC_OP_FUSION, ins, nin, rtypes, nres, root->loc);
  const char *kind = tgc_fusion_kind_name(g->kind);
  tgc_op_set_attr(f->m, fusion, "kind", tgc_attr_str(&f->m->arena, kind, strlen(kind)));
  /* where the last member was: every operand from outside is defined before it (side_output checked that the
   * first result's users come after it) */
  tgc_block_insert_before(b, g->ops[g->n - 1], fusion);
  for (uint32_t i = 0; i < nres; i++) {
    fusion->results[i].name = roots[i]->results[0].name;
    /* the uses outside the group (a side output's chain reads the first result inside it) */
    for (tgc_use *u = roots[i]->results[0].uses, *next; u; u = next) {
      next = u->next;
      if (u->user != fusion && !group_has(g, u->user))
        tgc_op_set_operand(u->user, (uint32_t)(u - u->user->operands), &fusion->results[i]);
    }
  }
  tgc_block *r = fusion->region;
  for (uint32_t j = 0; j < nin; j++)
    r->args[j]->name = ins[j]->name;
  for (uint32_t i = 0; i < g->n; i++) {
    tgc_op *op = g->ops[i];
    tgc_op_unlink(op);
    for (uint32_t k = 0; k < op->noperands; k++)
      for (uint32_t j = 0; j < nin; j++)
        if (op->operands[k].value == ins[j]) {
          tgc_op_set_operand(op, k, r->args[j]);
          break;
        }
    tgc_block_append(r, op);
  }
  tgc_value *y[2] = {&root->results[0], g->root2 ? &g->root2->results[0] : NULL};
  tgc_op *yield = tgc_op_create(f->m, TGC_OP_YIELD, y, nres, NULL, 0, root->loc);
  tgc_block_append(r, yield);
  f->ngroups++;
  f->ctx->changed = true;
  remark(f, fusion, "fused %u ops into %s %s group rooted at '%s' (%u input%s)", g->n,
         strchr("aeiou", kind[0]) ? "an" : "a", kind, tgc_op_name(root->opcode), nin, nin == 1 ? "" : "s");
  if (g->root2)
    remark(f, fusion, "the group also writes '%s' (a second result: its kernel stores both)",
           tgc_op_name(g->root2->opcode));
  return fusion;
}

static bool full(fuser *f, const group *g, const tgc_op *candidate, const char *what) {
  if ((int64_t)g->n < f->max_ops)
    return false;
  missed(f, candidate, "not fusing '%s' into the %s group: the group has reached max-ops (%lld)", what,
         tgc_fusion_kind_name(g->kind), (long long)f->max_ops);
  return true;
}

/* Grows G forward from its root along single-user pointwise consumers; returns the new root. */
static void grow_forward(fuser *f, group *g) {
  for (;;) {
    tgc_op *u = single_user(&g->root->results[0]);
    if (!u) {
      size_t n = tgc_value_num_uses(&g->root->results[0]);
      const tgc_use *use = g->root->results[0].uses;
      if (n > 1 && use && is_pointwise(use->user))
        missed(f, use->user, "not fusing '%s' into the %s group of '%s': its operand has %zu users (fusing would "
               "compute it twice)", tgc_op_name(use->user->opcode), tgc_fusion_kind_name(g->kind),
               tgc_op_name(g->root->opcode), n);
      return;
    }
    if (is_grouped(f, u) || u->nresults != 1 || u->parent != g->root->parent)
      return;
    if (!is_pointwise(u)) {
      if (tgc_op_info_of(u->opcode)->flags & TGC_OPF_CONTRACTION)
        missed(f, u, "not fusing '%s' into the %s group of '%s': a group holds at most one contraction",
               tgc_op_name(u->opcode), tgc_fusion_kind_name(g->kind), tgc_op_name(g->root->opcode));
      else if (tgc_op_info_of(u->opcode)->flags & TGC_OPF_COLLECTIVE)
        missed(f, u, "not fusing '%s' into a group: fusion never crosses a collective", tgc_op_name(u->opcode));
      return;
    }
    if (full(f, g, u, tgc_op_name(u->opcode)))
      return;
    group_add(f, g, u);
    g->root = u;
  }
}

/* Pulls single-user pointwise producers of OP's operands into G (backwards, depth first). */
static void grow_backward(fuser *f, group *g, tgc_op *op) {
  for (uint32_t k = 0; k < op->noperands; k++) {
    tgc_value *v = op->operands[k].value;
    tgc_op *p = v->def;
    if (!p || is_grouped(f, p) || p->parent != op->parent || !is_pointwise(p) || p->nresults != 1)
      continue;
    if (single_user(v) != op)
      continue; /* shared producers: absorb_shared decides once the group is complete */
    if (full(f, g, p, tgc_op_name(p->opcode)))
      return;
    group_add(f, g, p);
    grow_backward(f, g, p);
  }
}

/* True when P is the only user of an ungrouped contraction's result: P belongs to that GEMM's own epilogue (a
 * GEMM group formed later starts there), which writes P's result instead of the raw product -- half the bytes
 * when the product is a quantized GEMM's f32 or i32 accumulator read by another GEMM's epilogue (SwiGLU's up
 * projection beside its gate). */
static bool epilogue_of_other_gemm(fuser *f, const tgc_op *p) {
  for (uint32_t k = 0; k < p->noperands; k++) {
    const tgc_op *d = p->operands[k].value->def;
    if (d && !is_grouped(f, d) && (tgc_op_info_of(d->opcode)->flags & TGC_OPF_CONTRACTION) &&
        single_user(&d->results[0]) == p)
      return true;
  }
  return false;
}

/* A pointwise producer whose users are all in G joins it (a multi-consumer producer inside one kernel is
 * computed there, per element, for each use); one with users outside stays out and is a missed fusion. */
static void absorb_shared(fuser *f, group *g) {
  for (bool changed = true; changed;) {
    changed = false;
    for (uint32_t i = 0; i < g->n; i++) {
      tgc_op *m = g->ops[i];
      /* a GEMM reads its operands from memory: what computes them is no part of its epilogue */
      if ((tgc_op_info_of(m->opcode)->flags & TGC_OPF_CONTRACTION) || is_matrix_transpose(m))
        continue;
      for (uint32_t k = 0; k < m->noperands; k++) {
        tgc_op *p = m->operands[k].value->def;
        if (!p || is_grouped(f, p) || p->parent != m->parent || !is_pointwise(p) || p->nresults != 1 ||
            epilogue_of_other_gemm(f, p))
          continue;
        bool inside = true;
        for (const tgc_use *u = p->results[0].uses; u && inside; u = u->next)
          inside = group_has(g, u->user);
        if (inside && !is_grouped(f, p) && !full(f, g, p, tgc_op_name(p->opcode))) {
          group_add(f, g, p);
          changed = true;
        }
      }
    }
  }
  for (uint32_t i = 0; i < g->n; i++) {
    if ((tgc_op_info_of(g->ops[i]->opcode)->flags & TGC_OPF_CONTRACTION) || is_matrix_transpose(g->ops[i]))
      continue;
    for (uint32_t k = 0; k < g->ops[i]->noperands; k++) {
      const tgc_value *v = g->ops[i]->operands[k].value;
      const tgc_op *p = v->def;
      if (!p || is_grouped(f, p) || p->parent != g->ops[i]->parent || !is_pointwise(p) ||
          !(tgc_op_info_of(p->opcode)->flags & TGC_OPF_ELEMWISE))
        continue;
      size_t outside = 0;
      for (const tgc_use *u = v->uses; u; u = u->next)
        outside += !group_has(g, u->user);
      if (outside)
        missed(f, p, "not fusing '%s' into the %s group of '%s': its result has %zu user%s outside the group "
               "(fusing would compute it twice)", tgc_op_name(p->opcode), tgc_fusion_kind_name(g->kind),
               tgc_op_name(g->root->opcode), outside, outside == 1 ? "" : "s");
    }
  }
}

static void new_group(fuser *f, group *g, tgc_op *root, tgc_fusion_kind kind) {
  memset(g, 0, sizeof *g);
  g->kind = kind;
  g->root = root;
  group_add(f, g, root);
}

/* 2. attention with its layout ops */
static void group_attention(fuser *f, tgc_block *b) {
  for (tgc_op *op = b->first; op;) {
    tgc_op *next = op->next;
    if (op->opcode == TGC_OP_ATTENTION && !is_grouped(f, op)) {
      group g;
      new_group(f, &g, op, TGC_FUSION_ATTENTION);
      /* producers of q, k, v: transposes and reshapes with one user, then a split whose every result is used
       * by the group */
      for (uint32_t k = 0; k < 3 && k < op->noperands; k++) {
        tgc_value *v = op->operands[k].value;
        while (v->def && !is_grouped(f, v->def) && single_user(v) &&
               (v->def->opcode == TGC_OP_TRANSPOSE || v->def->opcode == TGC_OP_RESHAPE) &&
               v->def->parent == b && !full(f, &g, v->def, tgc_op_name(v->def->opcode))) {
          group_add(f, &g, v->def);
          v = v->def->operands[0].value;
        }
        if (v->def && v->def->opcode == TGC_OP_SPLIT && !is_grouped(f, v->def) && v->def->parent == b) {
          /* the split joins once all its results feed the group (checked after the last operand) */
          bool all = true;
          for (uint32_t r = 0; r < v->def->nresults && all; r++)
            for (const tgc_use *u = v->def->results[r].uses; u && all; u = u->next)
              all = group_has(&g, u->user);
          if (all && !full(f, &g, v->def, "split"))
            group_add(f, &g, v->def);
        }
      }
      /* consumers: the layout ops that put the result back in [B, S, H*D], then a chain of elementwise ops of
       * that shape through a quantize (the next GEMM's activation quantize, which the kernel computes at its
       * store) -- up to the quantize or the last computing op after it; without a quantize, the layout ops */
      tgc_op *last = g.root;
      uint32_t nlast = g.n;
      bool computed = false, quantized = false;
      for (;;) {
        tgc_op *u = single_user(&g.root->results[0]);
        bool layout = u && (u->opcode == TGC_OP_TRANSPOSE || u->opcode == TGC_OP_RESHAPE);
        bool compute = u && u->nresults == 1 &&
                       ((tgc_op_info_of(u->opcode)->flags & TGC_OPF_ELEMWISE) || u->opcode == TGC_OP_QUANTIZE ||
                        u->opcode == TGC_OP_DEQUANTIZE) &&
                       tgc_type_same_shape(u->results[0].type, g.root->results[0].type);
        if (!u || is_grouped(f, u) || u->parent != b || (!layout && !compute) || full(f, &g, u, tgc_op_name(u->opcode)))
          break;
        group_add(f, &g, u);
        g.root = u;
        computed = computed || compute;
        quantized = quantized || u->opcode == TGC_OP_QUANTIZE;
        if (!computed || (compute && quantized)) { /* the layout ops right after attention; then a quantize */
          last = u;
          nlast = g.n;
        }
      }
      while (g.n > nlast) { /* views after the last computing op leave */
        tgc_op *x = g.ops[--g.n];
        tgc_strmap_put(&f->grouped, (const char *)&x, sizeof x, NULL);
      }
      g.root = last;
      if (g.n > 1) {
        materialize(f, &g);
        next = b->first; /* members left the block, from anywhere before the root: rescan */
      }
    }
    op = next;
  }
}

/* A reduction group whose result has several users takes a chain of single-user pointwise ops from it, of the
 * result's shape and holding a quantize (and what follows it in that shape: the dequantize of a GEMM that
 * fold-qdq kept in float), as a second result: the kernel writes both, where a launch of its own
 * would read the result back (a post-LN encoder's layer_norm feeds the residual and, quantized, the next GEMMs).
 * The chain is what an ungrouped pointwise user of the result starts; it ends where that stops (a view at its
 * end stays out). Taken only when every other user of the result comes after the chain's last op, where the
 * fusion is placed. */
static void side_output(fuser *f, group *g) {
  const tgc_value *r = &g->root->results[0];
  if (single_user(r) || !r->uses || !r->type)
    return;
  for (const tgc_use *u = r->uses; u; u = u->next) {
    tgc_op *c = u->user;
    if (is_grouped(f, c) || c->parent != g->root->parent || !is_pointwise(c) || is_view(c) || c->nresults != 1)
      continue;
    tgc_op *chain[16], *end = NULL;
    uint32_t n = 0;
    bool quantized = false;
    for (tgc_op *x = c; x && n < 16;) {
      chain[n++] = x;
      if (!tgc_type_same_shape(x->results[0].type, r->type))
        break;
      quantized = quantized || x->opcode == TGC_OP_QUANTIZE;
      if (quantized)
        end = x; /* through the dequantize that a GEMM kept in float reads */
      tgc_op *nx = single_user(&x->results[0]);
      if (!nx || is_grouped(f, nx) || nx->parent != x->parent || !is_pointwise(nx) || nx->nresults != 1)
        break;
      x = nx;
    }
    if (!end || (int64_t)(g->n + n) > f->max_ops)
      continue;
    /* the fusion stands where END was: the result's other users must come after it */
    int64_t at = position(end);
    bool after = true;
    for (const tgc_use *w = r->uses; w && after; w = w->next)
      if (w->user != c)
        after = position(w->user) > at;
    if (!after)
      continue;
    for (uint32_t i = 0; i < n; i++) {
      group_add(f, g, chain[i]);
      if (chain[i] == end)
        break;
    }
    g->root2 = end;
    return;
  }
}

/* Ends a grown group: trailing views are free, so they leave it (the root is the op added last until
 * absorb_shared runs) and the group ends at real work; shared producers join; a group of two or more ops
 * becomes a fusion. True when it did. */
static bool finish_group(fuser *f, group *g) {
  while (g->n > 1 && is_view(g->root) && g->ops[g->n - 1] == g->root) {
    tgc_op *last = g->root;
    g->n--;
    tgc_strmap_put(&f->grouped, (const char *)&last, sizeof last, NULL);
    g->root = last->operands[0].value->def;
  }
  if (g->kind == TGC_FUSION_REDUCTION)
    side_output(f, g);
  absorb_shared(f, g);
  if (g->n < 2)
    return false;
  materialize(f, g);
  return true;
}

/* An int4 weight-only matmul's weight, dequantize(transpose(q : i4), s) {group} with q and s from outside, joins
 * the GEMM's group (copied when other ops read it): the GPU's w4 kernel reads q packed and dequantizes in
 * registers (codegen/cuda_w4.c), where a launch of its own would write the weight in f16 on every run. */
static void pull_w4_weight(fuser *f, group *g, tgc_block *b, tgc_op *mm) {
  tgc_op *dq = mm->operands[1].value->def;
  if (!dq || dq->opcode != TGC_OP_DEQUANTIZE || dq->noperands != 2 || !tgc_op_attr(dq, "group") ||
      is_grouped(f, dq) || dq->parent != b)
    return;
  tgc_op *t = dq->operands[0].value->def;
  if (!t || t->opcode != TGC_OP_TRANSPOSE || is_grouped(f, t) || t->parent != b || !is_matrix_transpose(t) ||
      !t->operands[0].value->type || t->operands[0].value->type->dtype != TGC_DT_I4)
    return;
  if (single_user(&dq->results[0]) != mm || single_user(&t->results[0]) != dq) {
    /* shared: this GEMM gets its own copy of both */
    tgc_builder bd = {f->m, b, mm, t->loc};
    tgc_value *x = t->operands[0].value;
    tgc_op *tc = tgc_build(&bd, TGC_OP_TRANSPOSE, &x, 1, t->results[0].type);
    tgc_op_set_attr(f->m, tc, "perm", tgc_op_attr(t, "perm"));
    tc->results[0].name = t->results[0].name;
    tgc_value *ops[2] = {&tc->results[0], dq->operands[1].value};
    bd.loc = dq->loc;
    tgc_op *dc = tgc_build(&bd, TGC_OP_DEQUANTIZE, ops, 2, dq->results[0].type);
    for (uint32_t i = 0; i < dq->attrs.n; i++)
      tgc_op_set_attr(f->m, dc, dq->attrs.items[i].name, dq->attrs.items[i].value);
    dc->results[0].name = dq->results[0].name;
    tgc_op_set_operand(mm, 1, &dc->results[0]);
    if (!dq->results[0].uses) {
      tgc_op_erase(dq);
      if (!t->results[0].uses)
        tgc_op_erase(t);
    }
    dq = dc;
    t = tc;
  }
  if (!full(f, g, dq, "dequantize") && !full(f, g, t, "transpose")) {
    group_add(f, g, dq);
    group_add(f, g, t);
  }
}

/* 3. GEMM epilogues */
static void group_gemms(fuser *f, tgc_block *b) {
  for (tgc_op *op = b->first; op;) {
    tgc_op *next = op->next;
    if (op->opcode == TGC_OP_MATMUL && !is_grouped(f, op)) {
      group g;
      new_group(f, &g, op, TGC_FUSION_GEMM_EPILOGUE);
      /* operands transposed in their last two dims (a linear layer's weight) are read transposed by the GEMM */
      for (uint32_t k = 0; k < 2; k++) {
        tgc_op *t = op->operands[k].value->def;
        if (t && !is_grouped(f, t) && is_matrix_transpose(t) && t->parent == b && single_user(&t->results[0]) != op) {
          /* a transpose read by several GEMMs (cse merged a weight's): each GEMM gets its own copy, which it reads
           * for free, rather than a transpose kernel */
          tgc_builder bd = {f->m, b, op, t->loc};
          tgc_value *x = t->operands[0].value;
          tgc_op *c = tgc_build(&bd, TGC_OP_TRANSPOSE, &x, 1, t->results[0].type);
          tgc_op_set_attr(f->m, c, "perm", tgc_op_attr(t, "perm"));
          c->results[0].name = t->results[0].name;
          tgc_op_set_operand(op, k, &c->results[0]);
          if (!t->results[0].uses)
            tgc_op_erase(t);
          t = c;
        }
        if (t && !is_grouped(f, t) && is_matrix_transpose(t) && single_user(&t->results[0]) == op &&
            t->parent == b && !full(f, &g, t, "transpose"))
          group_add(f, &g, t);
      }
      pull_w4_weight(f, &g, b, op);
      grow_forward(f, &g);
      if (finish_group(f, &g))
        next = b->first; /* members left the block, from anywhere before the root: rescan */
    }
    op = next;
  }
}

/* 4. reductions with their producers and consumers */
static void group_reductions(fuser *f, tgc_block *b) {
  for (tgc_op *op = b->first; op;) {
    tgc_op *next = op->next;
    if (tgc_op_is_row_reduction(op) && !is_grouped(f, op)) {
      group g;
      new_group(f, &g, op, TGC_FUSION_REDUCTION);
      grow_backward(f, &g, op);
      grow_forward(f, &g);
      if (finish_group(f, &g))
        next = b->first; /* members left the block, from anywhere before the root: rescan */
    }
    op = next;
  }
}

/* 5. connected elementwise ops: each op joins the group of its single user (an in-tree with one root) */
static void group_elementwise(fuser *f, tgc_block *b) {
  for (tgc_op *op = b->last; op;) {
    tgc_op *prev = op->prev;
    bool compute = is_pointwise(op) && !is_view(op);
    /* a root: a pointwise op whose result does not continue into another ungrouped pointwise op */
    tgc_op *u = op->nresults == 1 ? single_user(&op->results[0]) : NULL;
    /* a chain continues into a computing pointwise op, possibly through views; views at its end stay out */
    while (u && !is_grouped(f, u) && is_view(u) && u->parent == b)
      u = single_user(&u->results[0]);
    bool continues = u && !is_grouped(f, u) && is_pointwise(u) && !is_view(u) && u->parent == b;
    if (compute && !is_grouped(f, op) && !continues) {
      group g;
      new_group(f, &g, op, TGC_FUSION_ELEMENTWISE);
      grow_backward(f, &g, op);
      absorb_shared(f, &g);
      int ncompute = 0; /* a group needs two computing ops: a chain of views is no kernel */
      for (uint32_t i = 0; i < g.n; i++)
        ncompute += !is_view(g.ops[i]);
      if (ncompute >= 2) {
        materialize(f, &g);
        prev = b->last; /* members left the block: rescan */
      } else {
        for (uint32_t i = 0; i < g.n; i++) {
          tgc_op *x = g.ops[i];
          tgc_strmap_put(&f->grouped, (const char *)&x, sizeof x, NULL);
        }
      }
    }
    op = prev;
  }
}

int tgc_pass_fuse(tgc_pass_ctx *ctx) {
  fuser f;
  memset(&f, 0, sizeof f);
  f.ctx = ctx;
  f.m = ctx->module;
  bool bad = false;
  f.max_ops = tgc_pass_opt_int(ctx, "max-ops", 32, &bad);
  if (bad)
    return 1;
  if (f.max_ops < 2) {
    tgc_loc none = {NULL, 0, 0};
    tgc_error(ctx->diag, none, "option 'max-ops' of 'fuse' must be at least 2, not %lld", (long long)f.max_ops);
    return 1;
  }
  f.remarks = ctx->remark_pass && strcmp(ctx->remark_pass, "fuse") == 0;
  f.missed = ctx->remark_missed && strcmp(ctx->remark_missed, "fuse") == 0;
  tgc_strmap_init(&f.grouped, ctx->scratch);
  tgc_strmap_init(&f.reported, ctx->scratch);
  for (tgc_func *fn = ctx->module->funcs; fn; fn = fn->next) {
    tgc_block *b = fn->body;
    if (rewrite_gelus(&f, b) | rewrite_attention(&f, b))
      ctx->changed = true;
    group_attention(&f, b);
    group_gemms(&f, b);
    group_reductions(&f, b);
    group_elementwise(&f, b);
  }
  tgc_strmap_free(&f.grouped);
  tgc_strmap_free(&f.reported);
  return 0;
}

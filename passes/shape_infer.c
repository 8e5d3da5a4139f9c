/* shape-infer: gives every op's results their types, computed from the operand types and attributes by the
 * type rules of docs/ir.md §8 (ir/infer.c, which the verifier also checks declared types against), and
 * checks the types that are declared against them.
 *
 * - Dtypes: the ops whose operands share one dtype (binary elementwise, the values of where, matmul, concat)
 *   get torch's type promotion, made explicit with `cast` ops inserted before the op, so the same-dtype
 *   contract of docs/ir.md holds after the pass.
 * - A fusion's region arguments take its operand types, its region is inferred, and its yield types the
 *   fusion's results.
 * - Shape errors and declared types that contradict inference are reported at the op with its operand
 *   types. Every error is reported (up to the diagnostics limit); the pass fails when there was one.
 *
 * Requires: nothing; IR the verifier would reject is tolerated (never a crash): its malformed ops are skipped,
 * and each one left untyped is an error.
 * Establishes: TGC_PROP_TYPED (every value has a type) when it succeeds. Preserves: everything else; it only
 * fills in missing result and region-argument types and inserts casts. Running it twice changes nothing. */
#include <stdio.h>
#include <string.h>

#include "infer.h"
#include "pass.h"

typedef struct {
  tgc_pass_ctx *ctx;
  tgc_module *m;
  tgc_arena *tmp; /* ctx->scratch: inferred types until they are kept, message strings */
  bool remarks;   /* -Rpass=shape-infer: a remark for every inserted cast */
  tgc_infer rule; /* the type rules' context; rule.errors counts every error of the pass */
} infer;

#define IERR(in, loc, ...)                                                                                             \
  do {                                                                                                                 \
    (in)->rule.errors++;                                                                                               \
    tgc_error((in)->ctx->diag, (loc), __VA_ARGS__);                                                                    \
  } while (0)

static const char *opname(const tgc_op *op) {
  return tgc_op_name(op->opcode);
}

/* A type's spelling, in the scratch arena. */
static const char *tstr(infer *in, const tgc_type *t) {
  tgc_strbuf b;
  tgc_sb_init(&b);
  tgc_type_print(t, &b);
  const char *s = tgc_arena_strndup(in->tmp, b.data ? b.data : "", b.len);
  tgc_sb_free(&b);
  return s;
}

static void infer_block(infer *in, tgc_block *b);

/* Inferred types live in the scratch arena until they are set on a value; then they move to the module's. */
static const tgc_dim *copy_dim(tgc_arena *a, const tgc_dim *d) {
  tgc_dim *c = tgc_arena_alloc(a, sizeof *c);
  tgc_term *terms = tgc_arena_alloc(a, sizeof *terms * (d->nterms + 1));
  for (uint32_t i = 0; i < d->nterms; i++) {
    const tgc_sym **syms = tgc_arena_alloc(a, sizeof *syms * (d->terms[i].nsyms + 1));
    for (uint32_t j = 0; j < d->terms[i].nsyms; j++)
      syms[j] = d->terms[i].syms[j];
    terms[i] = d->terms[i];
    terms[i].syms = syms;
  }
  c->nterms = d->nterms;
  c->terms = terms;
  return c;
}

static const tgc_type *copy_type(tgc_module *m, const tgc_type *t) {
  const tgc_dim **dims = tgc_arena_alloc(&m->arena, sizeof *dims * (t->rank + 1));
  for (uint32_t i = 0; i < t->rank; i++)
    dims[i] = copy_dim(&m->arena, t->dims[i]);
  return tgc_type_create(&m->arena, t->dtype, t->rank, dims);
}

/* Gives operands FIRST..N-1 of OP dtype DT through casts inserted just before OP; a value that appears twice
 * is cast once. */
static void cast_operands(infer *in, tgc_op *op, uint32_t first, uint32_t n, tgc_dtype dt) {
  tgc_value **orig = tgc_arena_alloc(in->tmp, sizeof *orig * (n + 1));
  for (uint32_t i = first; i < n; i++) {
    tgc_value *v = orig[i] = op->operands[i].value;
    if (v->type->dtype == dt)
      continue;
    uint32_t j = first;
    while (j < i && orig[j] != v)
      j++;
    if (j < i) {
      tgc_op_set_operand(op, i, op->operands[j].value);
      continue;
    }
    const tgc_type *t = tgc_type_create(&in->m->arena, dt, v->type->rank, v->type->dims);
    tgc_op *c = tgc_op_create(in->m, TGC_OP_CAST, &v, 1, &t, 1, op->loc);
    tgc_block_insert_before(op->parent, op, c);
    tgc_op_set_operand(op, i, &c->results[0]);
    in->ctx->changed = true;
    if (in->remarks)
      tgc_diag_report(in->ctx->diag, TGC_DIAG_REMARK, op->loc,
                      "cast operand #%u of '%s' from %s to %s (type promotion)", i, opname(op),
                      tgc_dtype_name(v->type->dtype), tgc_dtype_name(dt));
  }
}

/* ---- fusion ---- */

/* The region's arguments take the operand types, its ops are inferred, and its yield gives the results. */
static bool fusion(infer *in, tgc_op *op, const tgc_type *const *ot, const tgc_type **res) {
  tgc_block *r = op->region;
  if (!r || r->nargs != op->noperands)
    return false; /* malformed: the verifier's business; its results stay untyped */
  bool ok = true;
  for (uint32_t i = 0; i < r->nargs; i++) {
    tgc_value *arg = r->args[i];
    if (!ot[i])
      continue;
    if (!arg->type) {
      arg->type = ot[i];
      in->ctx->changed = true;
    } else if (!tgc_type_equal(arg->type, ot[i])) {
      IERR(in, arg->loc, "region argument #%u of 'fusion' is declared %s, but operand #%u is %s", i,
           tstr(in, arg->type), i, tstr(in, ot[i]));
      ok = false;
    }
  }
  if (!ok)
    return false;
  infer_block(in, r);
  const tgc_op *y = r->last;
  if (!y || y->opcode != TGC_OP_YIELD || y->noperands != op->nresults)
    return false;
  for (uint32_t i = 0; i < y->noperands; i++)
    res[i] = y->operands[i].value ? y->operands[i].value->type : NULL;
  return true;
}

/* Operand and result counts in the ranges of ops.def, and every operand present (the verifier's rules 7-8;
 * an op that breaks them under --no-verify is skipped rather than guessed at). */
static bool well_formed(const tgc_op *op) {
  const tgc_op_info *info = tgc_op_info_of(op->opcode);
  if ((int)op->noperands < info->min_operands || (info->max_operands >= 0 && (int)op->noperands > info->max_operands))
    return false;
  for (uint32_t i = 0; i < op->noperands; i++)
    if (!op->operands[i].value)
      return false;
  return info->nresults >= 0 ? (int)op->nresults == info->nresults : op->nresults > 0;
}

/* A returned value whose inferred type differs from the function's declared result type. */
static void check_return(infer *in, const tgc_op *op) {
  const tgc_func *f = op->parent ? op->parent->parent_func : NULL;
  if (!f || op->parent->parent_op || op->noperands != f->nresults)
    return;
  for (uint32_t i = 0; i < op->noperands; i++) {
    const tgc_type *t = op->operands[i].value ? op->operands[i].value->type : NULL;
    if (t && f->result_types[i] && !tgc_type_equal(t, f->result_types[i]))
      IERR(in, op->loc, "returned value #%u has type %s, but '@%s' declares %s", i, tstr(in, t), f->name,
           tstr(in, f->result_types[i]));
  }
}

static void infer_one(infer *in, tgc_op *op) {
  if (op->opcode == TGC_OP_RETURN) {
    check_return(in, op);
    return;
  }
  if (op->opcode == TGC_OP_YIELD)
    return;
  if (!well_formed(op)) {
    for (uint32_t i = 0; i < op->nresults; i++) {
      if (!op->results[i].type) {
        IERR(in, op->loc, "cannot infer the type of result #%u of '%s' (run the verifier)", i, opname(op));
        break;
      }
    }
    return;
  }
  const tgc_type **ot = tgc_arena_alloc(in->tmp, sizeof *ot * (op->noperands + 1));
  bool known = true;
  for (uint32_t i = 0; i < op->noperands; i++) {
    ot[i] = op->operands[i].value->type;
    known = known && ot[i];
  }
  /* an operand of unknown type follows an error reported earlier: nothing more to say */
  if (!known && op->opcode != TGC_OP_FUSION)
    return;
  const tgc_type **res = tgc_arena_alloc(in->tmp, sizeof *res * (op->nresults + 1));
  if (op->opcode == TGC_OP_FUSION ? !fusion(in, op, ot, res) : !tgc_ir_infer_op(&in->rule, op, ot, res))
    return;
  if (op->opcode != TGC_OP_FUSION && in->rule.promote)
    cast_operands(in, op, in->rule.promote_first, in->rule.promote_end, in->rule.promote_dtype);
  for (uint32_t i = 0; i < op->nresults; i++) {
    tgc_value *r = &op->results[i];
    if (!res[i])
      continue;
    if (r->type) {
      if (!tgc_type_equal(r->type, res[i]))
        tgc_ir_report_type_mismatch(&in->rule, op, i, ot, res[i]);
    } else {
      r->type = copy_type(in->m, res[i]);
      in->ctx->changed = true;
    }
  }
}

static void infer_block(infer *in, tgc_block *b) {
  /* casts are inserted before the current op, so walking forward never visits them */
  for (tgc_op *op = b->first; op && !tgc_diag_should_stop(in->ctx->diag); op = op->next)
    infer_one(in, op);
}

/* Without errors every value must now have a type; one that has none comes from IR the verifier would
 * reject (run under --no-verify), and gets an error rather than breaking TGC_PROP_TYPED silently. */
static void check_typed(infer *in, const tgc_block *b) {
  for (uint32_t i = 0; i < b->nargs; i++)
    if (!b->args[i]->type)
      IERR(in, b->args[i]->loc, "cannot infer the type of this argument");
  for (const tgc_op *op = b->first; op && !tgc_diag_should_stop(in->ctx->diag); op = op->next) {
    for (uint32_t i = 0; i < op->nresults; i++) {
      if (!op->results[i].type) {
        IERR(in, op->loc, "cannot infer the type of result #%u of '%s' (run the verifier)", i, opname(op));
        break;
      }
    }
    if (op->region)
      check_typed(in, op->region);
  }
}

int tgc_pass_shape_infer(tgc_pass_ctx *ctx) {
  infer in = {ctx, ctx->module, ctx->scratch, ctx->remark_pass && strcmp(ctx->remark_pass, "shape-infer") == 0,
              {.m = ctx->module, .diag = ctx->diag, .tmp = ctx->scratch}};
  for (tgc_func *f = ctx->module->funcs; f && !tgc_diag_should_stop(ctx->diag); f = f->next)
    infer_block(&in, f->body);
  for (tgc_func *f = ctx->module->funcs; f && in.rule.errors == 0; f = f->next)
    check_typed(&in, f->body);
  return in.rule.errors ? 1 : 0;
}

/* Passes that break things on purpose, to test the pass manager's safety nets (--verify-each, the contract
 * checks of passes.def's preserves column under it, --verify-each=numerics). They are registered like any pass
 * but never part of an -O pipeline. */
#include <string.h>

#include "pass.h"

/* test-perturb: scales the first floating-point constant by 1.5, a change numeric verification must catch. */
int tgc_pass_test_perturb(tgc_pass_ctx *ctx) {
  for (tgc_func *f = ctx->module->funcs; f; f = f->next) {
    for (tgc_op *op = f->body->first; op; op = op->next) {
      const tgc_attr *v = tgc_op_attr(op, "value");
      if (op->opcode != TGC_OP_CONSTANT || !v || v->kind != TGC_ATTR_FLOAT)
        continue;
      tgc_op_set_attr(ctx->module, op, "value", tgc_attr_float(&ctx->module->arena, v->u.f * 1.5 + 0.5));
      ctx->changed = true;
      return 0;
    }
  }
  return 0;
}

/* test-invalid-ir: moves the function's first op after its terminator, which the verifier must reject. */
int tgc_pass_test_invalid_ir(tgc_pass_ctx *ctx) {
  for (tgc_func *f = ctx->module->funcs; f; f = f->next) {
    tgc_op *first = f->body->first;
    if (!first || first == f->body->last)
      continue;
    /* unlink without touching uses, then append after the return */
    tgc_block *b = f->body;
    b->first = first->next;
    b->first->prev = NULL;
    first->next = NULL;
    first->parent = NULL;
    tgc_block_append(b, first);
    ctx->changed = true;
    return 0;
  }
  return 0;
}

/* test-untype: drops the type of the last typed op result of the first function, while its registry row claims
 * to preserve TGC_PROP_TYPED; --verify-each must name the broken contract. */
int tgc_pass_test_untype(tgc_pass_ctx *ctx) {
  for (tgc_func *f = ctx->module->funcs; f; f = f->next) {
    tgc_value *last = NULL;
    for (tgc_op *op = f->body->first; op; op = op->next)
      for (uint32_t i = 0; i < op->nresults; i++)
        if (op->results[i].type)
          last = &op->results[i];
    if (last) {
      last->type = NULL;
      ctx->changed = true;
      return 0;
    }
  }
  return 0;
}

/* test-wrap-op: wraps the first top-level op with operands, one result and no region in a fusion of its
 * own (as fuse would), while its registry row claims to preserve TGC_PROP_UNFUSED; --verify-each must name the
 * broken contract. The IR stays valid. */
int tgc_pass_test_wrap_op(tgc_pass_ctx *ctx) {
  tgc_module *m = ctx->module;
  for (tgc_func *f = m->funcs; f; f = f->next)
    for (tgc_op *op = f->body->first; op; op = op->next) {
      if (op->nresults != 1 || op->noperands == 0 || op->region || op == f->body->last)
        continue;
      tgc_value **ins = tgc_arena_alloc(ctx->scratch, sizeof *ins * op->noperands);
      for (uint32_t k = 0; k < op->noperands; k++)
        ins[k] = op->operands[k].value;
      tgc_op *fusion = tgc_op_create(m, TGC_OP_FUSION, ins, op->noperands, &op->results[0].type, 1, op->loc);
      tgc_op_set_attr(m, fusion, "kind", tgc_attr_str(&m->arena, "elementwise", strlen("elementwise")));
      fusion->results[0].name = op->results[0].name;
      tgc_block_insert_before(f->body, op, fusion);
      tgc_value_replace_all_uses(&op->results[0], &fusion->results[0]);
      tgc_op_unlink(op);
      for (uint32_t k = 0; k < op->noperands; k++)
        tgc_op_set_operand(op, k, fusion->region->args[k]);
      tgc_block_append(fusion->region, op);
      tgc_value *y = &op->results[0];
      tgc_block_append(fusion->region, tgc_op_create(m, TGC_OP_YIELD, &y, 1, NULL, 0, op->loc));
      ctx->changed = true;
      return 0;
    }
  return 0;
}

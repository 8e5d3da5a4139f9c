/* Passes that break things on purpose, to test the pass manager's safety nets (--verify-each and
 * --verify-each=numerics). They are registered like any pass but never part of an -O pipeline. */
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

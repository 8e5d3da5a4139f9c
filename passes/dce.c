/* dce: removes pure ops whose results are unused, inside regions too.
 * Requires: nothing. Preserves: everything (types untouched). Collectives and terminators are never removed. */
#include "pass.h"

bool tgc_op_is_pure(const tgc_op *op) {
  unsigned f = tgc_op_info_of(op->opcode)->flags;
  if (f & (TGC_OPF_COLLECTIVE | TGC_OPF_TERMINATOR))
    return false;
  if (op->region)
    for (const tgc_op *o = op->region->first; o; o = o->next)
      if (!(tgc_op_info_of(o->opcode)->flags & TGC_OPF_TERMINATOR) && !tgc_op_is_pure(o))
        return false; /* a region's own yield does not make it impure */
  return true;
}

bool tgc_pass_erase_if_dead(tgc_op *op) {
  if (!tgc_op_is_pure(op))
    return false;
  for (uint32_t i = 0; i < op->nresults; i++)
    if (op->results[i].uses)
      return false;
  tgc_op_erase(op);
  return true;
}

static bool dce_block(tgc_block *b) {
  bool changed = false;
  /* backwards, so that an op whose only users were dead goes in the same sweep */
  for (tgc_op *op = b->last; op;) {
    tgc_op *prev = op->prev;
    if (op->region && dce_block(op->region))
      changed = true;
    if (tgc_pass_erase_if_dead(op))
      changed = true;
    op = prev;
  }
  return changed;
}

int tgc_pass_dce(tgc_pass_ctx *ctx) {
  for (tgc_func *f = ctx->module->funcs; f; f = f->next)
    if (dce_block(f->body))
      ctx->changed = true;
  return 0;
}

/* cse: within each block, an op identical to an earlier one (same opcode, operands, attributes and result
 * types) is replaced by it. Commutative ops match with their operands in either order.
 * Requires: nothing. Preserves: everything. Only pure ops without regions are merged. */
#include <string.h>

#include "pass.h"

static void op_key(const tgc_op *op, tgc_strbuf *k) {
  k->len = 0;
  if (k->data)
    k->data[0] = 0;
  tgc_sb_printf(k, "%d|", (int)op->opcode);
  const tgc_value *ops[2] = {NULL, NULL};
  bool comm = (tgc_op_info_of(op->opcode)->flags & TGC_OPF_COMMUTATIVE) && op->noperands == 2;
  if (comm) {
    ops[0] = op->operands[0].value;
    ops[1] = op->operands[1].value;
    if ((uintptr_t)ops[0] > (uintptr_t)ops[1]) {
      const tgc_value *t = ops[0];
      ops[0] = ops[1];
      ops[1] = t;
    }
  }
  for (uint32_t i = 0; i < op->noperands; i++) {
    const tgc_value *v = comm ? ops[i] : op->operands[i].value;
    tgc_sb_putn(k, (const char *)&v, sizeof v);
  }
  tgc_sb_putc(k, '|');
  for (uint32_t i = 0; i < op->attrs.n; i++) {
    tgc_sb_printf(k, "%s=", op->attrs.items[i].name);
    tgc_attr_print(op->attrs.items[i].value, k);
    tgc_sb_putc(k, ',');
  }
  tgc_sb_printf(k, "|%u|", op->nresults);
  for (uint32_t i = 0; i < op->nresults; i++) {
    if (op->results[i].type)
      tgc_type_print(op->results[i].type, k);
    tgc_sb_putc(k, ';');
  }
}

static bool cse_block(tgc_pass_ctx *ctx, tgc_block *b) {
  bool changed = false;
  tgc_strmap seen;
  tgc_strmap_init(&seen, ctx->scratch);
  tgc_strbuf key;
  tgc_sb_init(&key);
  for (tgc_op *op = b->first; op;) {
    tgc_op *next = op->next;
    if (op->region) {
      changed |= cse_block(ctx, op->region);
    } else if (tgc_op_is_pure(op) && op->nresults > 0) {
      op_key(op, &key);
      tgc_op *prev = tgc_strmap_get(&seen, key.data, key.len);
      if (prev) {
        for (uint32_t i = 0; i < op->nresults; i++)
          tgc_value_replace_all_uses(&op->results[i], &prev->results[i]);
        tgc_op_erase(op);
        changed = true;
      } else {
        tgc_strmap_put(&seen, key.data, key.len, op);
      }
    }
    op = next;
  }
  tgc_sb_free(&key);
  tgc_strmap_free(&seen);
  return changed;
}

int tgc_pass_cse(tgc_pass_ctx *ctx) {
  for (tgc_func *f = ctx->module->funcs; f; f = f->next)
    if (cse_block(ctx, f->body))
      ctx->changed = true;
  return 0;
}

/* The type rules of the IR (docs/ir.md §8): the result types of one op computed from its operand types and
 * attributes, with every shape error reported at the op. Shape inference (passes/shape_infer.c) fills in
 * types with them; the verifier checks declared types against them at every optimization level. */
#ifndef TGC_IR_INFER_H
#define TGC_IR_INFER_H

#include "ir.h"

typedef struct tgc_infer {
  const tgc_module *m;
  tgc_diag *diag;
  tgc_arena *tmp; /* inferred types and message strings; the caller copies the types it keeps */
  int errors;     /* errors reported */
  /* Set by tgc_ir_infer_op when the value operands PROMOTE_FIRST..PROMOTE_END-1 of the op promote to one
   * dtype PROMOTE_DTYPE (torch.result_type); shape-infer makes that explicit with casts. */
  bool promote;
  uint32_t promote_first, promote_end;
  tgc_dtype promote_dtype;
} tgc_infer;

/* Fills RES (op->nresults entries) with the inferred result types of OP, whose operand types OT are all
 * known (NULL entries in RES: nothing inferred, the declared type stands; a fusion infers nothing: its
 * region decides). False after reporting an error at the op. OP must have the operand and result counts of
 * ops.def. A result of rank above TGC_MAX_RANK is an error. */
bool tgc_ir_infer_op(tgc_infer *in, const tgc_op *op, const tgc_type *const *ot, const tgc_type **res);
/* Reports that result I of OP is declared otherwise than the inferred T (OT: the operand types). */
void tgc_ir_report_type_mismatch(tgc_infer *in, const tgc_op *op, uint32_t i, const tgc_type *const *ot,
                                 const tgc_type *t);

#endif

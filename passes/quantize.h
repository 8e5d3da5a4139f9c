/* What the quantize pass (quantize.c) and its accuracy search (quant_accuracy.c) share. */
#ifndef TGC_QUANTIZE_H
#define TGC_QUANTIZE_H

#include "pass.h"

/* One quantized matmul and its two versions: the operands it reads in float and quantized. */
typedef struct tgc_quant_choice {
  tgc_op *mm;
  tgc_value *float_ops[2], *quant_ops[2];
  bool keep;           /* read the float operands */
  bool measured;       /* SENSITIVITY was measured */
  double sensitivity;  /* 1 - the output cosine with this matmul alone quantized */
} tgc_quant_choice;

/* accuracy=cos:MIN_COS for the N choices of function F (all quantized on entry): runs F on the CPU backend over
 * the calibration data the module names (its calib.data directory) — in float, with each matmul alone quantized
 * (its sensitivity), then with the fewest of the most sensitive kept in float that bring the mean cosine of the
 * outputs against float to MIN_COS — and leaves the choice in CH (operands set accordingly). 0, or nonzero after
 * reporting an error (no data, a run that fails). */
int tgc_quant_select_by_accuracy(tgc_pass_ctx *ctx, tgc_func *f, tgc_quant_choice **ch, uint32_t n, double min_cos);

#endif

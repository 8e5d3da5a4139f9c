/* CUDA C generation: one readable kernel per pointwise launch of the optimized module. */
#ifndef TGC_CUDA_H
#define TGC_CUDA_H

#include "ir.h"

typedef struct tgc_cuda_kernel {
  const char *name;   /* the kernel's symbol, named after its group: k3_gemm_epilogue_add */
  const char *source; /* a complete translation unit for NVRTC */
  const tgc_op *op;   /* the launch it implements (a fusion, or one op) */
  /* its parameters: one pointer per input (the values outside the launch, in this order; for a GEMM epilogue
   * input 0 is the GEMM's result), the output, then the symbolic dims in this order */
  const tgc_value *const *inputs;
  uint32_t ninputs;
  const char *const *sym_names;
  uint32_t nsyms;
} tgc_cuda_kernel;

typedef struct tgc_cuda_module {
  tgc_cuda_kernel *kernels;
  uint32_t nkernels;
  /* launches not generated yet (GEMMs, attention, row reductions, gathers...), for the report */
  const tgc_op **pending;
  uint32_t npending;
} tgc_cuda_module;

/* Generates the kernels of M's entry function into M's arena: elementwise fusion groups, the epilogues of
 * gemm_epilogue groups (the GEMM itself is a cuBLASLt call), and single pointwise ops. */
void tgc_cuda_generate(tgc_module *m, tgc_cuda_module *out);
/* Appends every kernel's source, each headed by a comment naming its launch and location, and a list of the
 * launches not generated yet. */
void tgc_cuda_print(const tgc_cuda_module *cm, tgc_strbuf *out);

#endif

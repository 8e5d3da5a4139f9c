/* The compiler side of the runtime boundary: an optimized module's entry function becomes a program
 * (runtime/program.h), plain data that outlives the module — the CPU backend's plan and, when the CUDA backend
 * can run it, the CUDA program of codegen/cuda.h with every IR pointer replaced by an index or a string. */
#ifndef TGC_CODEGEN_PROGRAM_BUILD_H
#define TGC_CODEGEN_PROGRAM_BUILD_H

#include "ir.h"
#include "program.h"

typedef struct tgc_program_opts {
  bool cuda;    /* generate the CUDA program (false: the plan alone, has_cuda false) */
  bool keep_ir; /* keep the module's text in the program (an artifact's "ir" section) */
} tgc_program_opts;

/* The program of the function ENTRY of the verified module M (NULL: "main", else the first), or NULL when M has
 * no such function. M is read, not changed; it may be destroyed afterwards. With O->cuda, every value must have
 * a type (shape-infer) for the CUDA program to be made: otherwise, as for a launch the CUDA backend cannot
 * generate, has_cuda is false and cuda_why says why, at cuda_why_loc. */
tgc_rt_program *tgc_program_build(tgc_module *m, const char *entry, const tgc_program_opts *o);

#endif

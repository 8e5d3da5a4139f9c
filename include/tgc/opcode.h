/* The op codes and their static properties, expanded from ir/ops.def; shared by the compiler and the
 * runtime (plain data: no IR here). */
#ifndef TGC_OPCODE_H
#define TGC_OPCODE_H

#include <stdbool.h>
#include <stddef.h>

/* ---- ops --------------------------------------------------------------------------------------- */

enum {
  TGC_OPF_ELEMWISE = 1u << 0,    /* per element, numpy broadcasting of operands */
  TGC_OPF_COMMUTATIVE = 1u << 1, /* binary op whose operands may be swapped */
  TGC_OPF_REDUCTION = 1u << 2,   /* reduces (or normalizes) along axes */
  TGC_OPF_REGION = 1u << 3,      /* carries one isolated region */
  TGC_OPF_TERMINATOR = 1u << 4,  /* ends a function body or a region */
  TGC_OPF_COLLECTIVE = 1u << 5,  /* communicates across a mesh: never dropped or reordered freely */
  TGC_OPF_COMPARE = 1u << 6,     /* result dtype is bool */
  TGC_OPF_NEEDS_TYPE = 1u << 7,  /* the result type is part of the op's meaning and must be written */
  TGC_OPF_CONTRACTION = 1u << 8, /* matmul-like: a GEMM or a fused attention */
  TGC_OPF_FLOAT_ONLY = 1u << 9,  /* its (value) operand must be floating point: the type rule rejects others */
  TGC_OPF_LOGICAL = 1u << 10,    /* logical on bool operands, bitwise on integers */
  TGC_OPF_INDEX_MAP = 1u << 11,  /* moves data only, each result element an operand element at an index computed
                                    from the result's index alone (iota: the index itself): a fused loop computes
                                    it per element, like an elementwise op */
  TGC_OPF_VIEW = 1u << 12,       /* the result shares its operand's storage (a reshape): no data moves, no launch */
  TGC_OPF_SOURCE = 1u << 13,     /* a value from outside the computation (param, constant): nothing to compute or
                                    fold, no launch */
};

typedef enum {
#define TGC_OP(e, name, mn, mx, res, flags, attrs) TGC_OP_##e,
#include "../../ir/ops.def"
#undef TGC_OP
  TGC_OP_COUNT
} tgc_opcode;

typedef struct tgc_op_info {
  const char *name;
  int min_operands, max_operands; /* max -1: variadic */
  int nresults;                   /* -1: one or more */
  unsigned flags;
  const char *attr_schema;
} tgc_op_info;

const tgc_op_info *tgc_op_info_of(tgc_opcode op);
const char *tgc_op_name(tgc_opcode op);
bool tgc_op_lookup(const char *name, size_t len, tgc_opcode *out);
/* The op name closest to NAME by edit distance, or NULL when nothing is close. */
const char *tgc_op_suggest(const char *name);

#endif

/* Element types shared by the compiler and the runtime (plain data: no IR here). */
#ifndef TGC_DTYPE_H
#define TGC_DTYPE_H

#include <stdbool.h>
#include <stddef.h>

/* ---- dtypes ------------------------------------------------------------------------------------ */

typedef enum {
  TGC_DTK_FLOAT,
  TGC_DTK_SINT,
  TGC_DTK_UINT,
  TGC_DTK_BOOL,
} tgc_dtype_kind;

typedef enum {
#define TGC_DTYPE(e, name, bits, kind) TGC_DT_##e,
#include "dtypes.def"
#undef TGC_DTYPE
  TGC_DT_COUNT
} tgc_dtype;

const char *tgc_dtype_name(tgc_dtype dt);
int tgc_dtype_bits(tgc_dtype dt);
tgc_dtype_kind tgc_dtype_kind_of(tgc_dtype dt);
/* Returns true and sets *out when NAME (LEN bytes) spells a dtype. */
bool tgc_dtype_lookup(const char *name, size_t len, tgc_dtype *out);

#endif

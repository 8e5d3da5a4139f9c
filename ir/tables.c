/* The dtype and op tables, expanded from dtypes.def and ops.def. */
#include <string.h>

#include "arena.h"
#include "tgc/dtype.h"
#include "tgc/opcode.h"

/* ---- dtypes ---- */

static const struct {
  const char *name;
  int bits;
  tgc_dtype_kind kind;
} dtype_table[] = {
#define TGC_DTYPE(e, name, bits, kind) {name, bits, kind},
#include "tgc/dtypes.def"
#undef TGC_DTYPE
};

const char *tgc_dtype_name(tgc_dtype dt) { return dtype_table[dt].name; }
int tgc_dtype_bits(tgc_dtype dt) { return dtype_table[dt].bits; }
tgc_dtype_kind tgc_dtype_kind_of(tgc_dtype dt) { return dtype_table[dt].kind; }

bool tgc_dtype_lookup(const char *name, size_t len, tgc_dtype *out) {
  for (int i = 0; i < TGC_DT_COUNT; i++) {
    if (strlen(dtype_table[i].name) == len && memcmp(dtype_table[i].name, name, len) == 0) {
      *out = (tgc_dtype)i;
      return true;
    }
  }
  return false;
}

/* ---- op table ---- */

static const tgc_op_info op_table[] = {
#define TGC_OP(e, name, mn, mx, res, flags, attrs) {name, mn, mx, res, flags, attrs},
#include "ops.def"
#undef TGC_OP
};

const tgc_op_info *tgc_op_info_of(tgc_opcode op) { return &op_table[op]; }
const char *tgc_op_name(tgc_opcode op) { return op_table[op].name; }

bool tgc_op_lookup(const char *name, size_t len, tgc_opcode *out) {
  for (int i = 0; i < TGC_OP_COUNT; i++) {
    if (strlen(op_table[i].name) == len && memcmp(op_table[i].name, name, len) == 0) {
      *out = (tgc_opcode)i;
      return true;
    }
  }
  return false;
}

const char *tgc_op_suggest(const char *name) {
  size_t len = strlen(name);
  size_t max = len < 3 ? 1 : len < 7 ? 2 : 3;
  const char *best = NULL;
  size_t best_d = max + 1;
  for (int i = 0; i < TGC_OP_COUNT; i++) {
    size_t d = tgc_edit_distance(name, op_table[i].name, max);
    if (d < best_d) {
      best_d = d;
      best = op_table[i].name;
    }
  }
  return best;
}


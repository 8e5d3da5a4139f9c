/* The errors a generated kernel reports through its `int *err` (runtime/program.h): one int carries the
 * launch's code and the kind of error, so that the runtime can name the op and the failure at its location. */
#include "program.h"

int tgc_rt_kerr_value(int code, tgc_rt_kerr kind) {
  return kind == TGC_RT_KERR_INDEX ? code : -(4 * code + (int)kind);
}

void tgc_rt_kerr_decode(int value, int *code, tgc_rt_kerr *kind) {
  *code = value > 0 ? value : -value / 4;
  *kind = value > 0 ? TGC_RT_KERR_INDEX : (tgc_rt_kerr)(-value % 4);
}

const char *tgc_rt_kerr_message(tgc_rt_kerr kind) {
  switch (kind) {
  case TGC_RT_KERR_INDEX: return "an index is out of range";
  case TGC_RT_KERR_NEG_EXPONENT: return "integer power with a negative exponent";
  case TGC_RT_KERR_DIV_ZERO: return "integer division by zero";
  }
  tgc_unreachable();
}

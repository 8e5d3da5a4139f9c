/* The integer bound of `clamp` on an integer dtype, shared by the CPU backend and the CUDA emitter (plain
 * data: no IR here), so that both read a bound the same way. */
#ifndef TGC_CLAMP_H
#define TGC_CLAMP_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "dtype.h"

/* The rule of docs/ir.md 8.1, checked by the type rule (every level) and by the CPU backend: a bound (an int
 * attribute I when IS_INT, else the float F) is never NaN, and on an integer or bool dtype DT it is an
 * integer DT holds. *LO and *HI receive DT's integer range (for the message). */
static inline bool tgc_clamp_bound_ok(tgc_dtype dt, bool is_int, int64_t i, double f, int64_t *lo, int64_t *hi) {
  if (!is_int && isnan(f))
    return false;
  if (tgc_dtype_kind_of(dt) == TGC_DTK_FLOAT)
    return true;
  int bits = dt == TGC_DT_BOOL ? 1 : tgc_dtype_bits(dt);
  bool uns = dt == TGC_DT_BOOL || tgc_dtype_kind_of(dt) == TGC_DTK_UINT;
  *lo = bits >= 64 ? INT64_MIN : uns ? 0 : -((int64_t)1 << (bits - 1));
  *hi = bits >= 64 ? INT64_MAX : ((int64_t)1 << (uns ? bits : bits - 1)) - 1;
  /* (double)*hi + 1 is exact, or rounds to 2^63, the first double above INT64_MAX */
  return is_int ? i >= *lo && i <= *hi : f == floor(f) && f >= (double)*lo && f < (double)*hi + 1.0;
}

/* The verifier accepts on an integer operand only bounds that are integers the dtype holds (docs/ir.md 8.1);
 * for IR that skipped it, a bound is read without undefined behaviour: an int attribute (IS_INT, I) as is, a
 * float F rounded inward (ceil for a minimum, floor for a maximum) and saturated to int64. A NaN is no bound
 * (false), as `x < NaN` is false for floats. */
static inline bool tgc_clamp_int_bound(bool is_int, int64_t i, double f, bool is_min, int64_t *out) {
  if (is_int) {
    *out = i;
    return true;
  }
  if (isnan(f))
    return false;
  double r = is_min ? ceil(f) : floor(f);
  *out = r >= 9223372036854775808.0 ? INT64_MAX : r < -9223372036854775808.0 ? INT64_MIN : (int64_t)r;
  return true;
}

#endif

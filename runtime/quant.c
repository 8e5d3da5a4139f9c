/* The arithmetic of symmetric quantization, in one home: what `quantize` stores (the CPU backend's op), how the
 * quantize pass picks scales and quantizes weights, and what calibration's error model assumes. */
#include <math.h>

#include "rt.h"

double tgc_rt_quant_qmax(tgc_dtype storage) {
  switch (storage) {
  case TGC_DT_F8E4M3:
    return 448;
  case TGC_DT_F8E5M2:
    return 57344;
  default:
    break;
  }
  int bits = tgc_dtype_bits(storage);
  return tgc_dtype_kind_of(storage) == TGC_DTK_SINT ? ldexp(1.0, bits - 1) - 1 : ldexp(1.0, bits) - 1;
}

double tgc_rt_quant_scale(double amax, double qmax, tgc_dtype scale_dtype) {
  if (!(amax > 0) || !isfinite(amax))
    return 1;
  double s = amax / qmax;
  tgc_rt_tensor t = {.dtype = scale_dtype, .rank = 0};
  unsigned char buf[8];
  t.data = buf;
  tgc_rt_set(&t, 0, s);
  double r = tgc_rt_get(&t, 0);
  return r > 0 && isfinite(r) ? r : 1; /* a scale below the dtype's range would divide by zero */
}

double tgc_rt_quant_store(double x, double scale, double zero_point, tgc_dtype storage) {
  double r = x / scale;
  if (tgc_dtype_kind_of(storage) == TGC_DTK_FLOAT) {
    /* fp8 saturates: a clipped activation is the format's largest value, never NaN or inf */
    double hi = tgc_rt_quant_qmax(storage);
    return isnan(r) ? r : r > hi ? hi : r < -hi ? -hi : r;
  }
  int bits = tgc_dtype_bits(storage);
  bool sgn = tgc_dtype_kind_of(storage) == TGC_DTK_SINT;
  double lo = sgn ? -ldexp(1.0, bits - 1) : 0, hi = sgn ? ldexp(1.0, bits - 1) - 1 : ldexp(1.0, bits) - 1;
  r = nearbyint(r) + zero_point; /* the default rounding mode: ties to even */
  return isnan(r) ? 0 : r < lo ? lo : r > hi ? hi : r;
}

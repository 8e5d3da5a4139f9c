// Host shim for tests: generated kernels run on the CPU, one "thread" per output element (fp32 tests only).
// The fp8 converter the kernels call is modelled here from its specification, independently of the kernels'
// own software rounding (tgc_f8_bits): round to nearest, ties to the even code, among the format's finite
// values; __NV_SATFINITE clamps beyond them to the largest, __NV_NOSAT overflows (from half a step past the
// largest, ties to even) to infinity (E5M2) or NaN (E4M3, which has none).
#pragma once
#include <cmath>
#include <cstring>
typedef unsigned char __nv_fp8_storage_t;
enum __nv_saturation_t { __NV_NOSAT, __NV_SATFINITE };
enum __nv_fp8_interpretation_t { __NV_E4M3, __NV_E5M2 };
static inline unsigned __float_as_uint(float f) {
  unsigned u;
  memcpy(&u, &f, 4);
  return u;
}
/* the magnitude of code C (sign bit clear) */
static inline double tgc_shim_f8_mag(unsigned c, int eb, int mb) {
  const int bias = (1 << (eb - 1)) - 1;
  const unsigned e = c >> mb, m = c & ((1u << mb) - 1);
  return e ? std::ldexp((double)((1u << mb) | m), (int)e - bias - mb) : std::ldexp((double)m, 1 - bias - mb);
}
static inline __nv_fp8_storage_t __nv_cvt_float_to_fp8(float x, __nv_saturation_t sat, __nv_fp8_interpretation_t k) {
  const int eb = k == __NV_E4M3 ? 4 : 5, mb = k == __NV_E4M3 ? 3 : 2;
  const unsigned sign = std::signbit(x) ? 1u << (eb + mb) : 0u;
  const unsigned top = k == __NV_E4M3 ? 0x7E : 0x7B; /* the largest finite code */
  const unsigned nan = k == __NV_E4M3 ? 0x7F : 0x7E, inf = k == __NV_E4M3 ? 0x7F : 0x7C;
  if (std::isnan(x))
    return (__nv_fp8_storage_t)nan;
  const double a = std::fabs((double)x), big = tgc_shim_f8_mag(top, eb, mb);
  const double step = big - tgc_shim_f8_mag(top - 1, eb, mb);
  /* past the largest: half a step beyond is a tie with the next code, which rounds to the even one */
  if (a > big + step / 2 || (a == big + step / 2 && (top & 1)) || std::isinf(x))
    return (__nv_fp8_storage_t)(sign | (sat == __NV_SATFINITE ? top : inf));
  unsigned best = 0;
  for (unsigned c = 1; c <= top; c++) {
    const double d = std::fabs(tgc_shim_f8_mag(c, eb, mb) - a), db = std::fabs(tgc_shim_f8_mag(best, eb, mb) - a);
    if (d < db || (d == db && (c & 1) == 0))
      best = c;
  }
  return (__nv_fp8_storage_t)(sign | best);
}

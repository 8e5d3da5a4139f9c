/* Conversions between f32/f64 and the narrow float formats (f16, bf16, OCP fp8 E4M3FN and E5M2).
 * Rounding is done once, to nearest with ties to even, by integer arithmetic on the bits, so
 * results depend neither on the compiler's _Float16 support nor on the FPU's rounding mode. */
#include <string.h>

#include "arena.h"
#include "rt_internal.h"

/* A binary float format narrower than f32. IEEE-style formats reserve the all-ones exponent for
 * infinities and NaNs; E4M3FN ("finite") spends it on normals and keeps only S.1111.111 as NaN. */
typedef struct fmt {
  int ebits, mbits;
  bool finite;
} fmt;

static const fmt FMT_F16 = {5, 10, false};
static const fmt FMT_BF16 = {8, 7, false};
static const fmt FMT_E4M3 = {4, 3, true};
static const fmt FMT_E5M2 = {5, 2, false};

static unsigned sign_bit(fmt f, bool neg) {
  return neg ? 1u << (f.ebits + f.mbits) : 0u;
}

/* A quiet NaN: every exponent bit set and the top mantissa bit (E4M3FN has only all-ones). */
static unsigned nan_bits(fmt f, bool neg) {
  unsigned e = ((1u << f.ebits) - 1) << f.mbits;
  unsigned m = f.finite ? (1u << f.mbits) - 1 : 1u << (f.mbits - 1);
  return sign_bit(f, neg) | e | m;
}

/* Infinity, or NaN where the format has no infinity (E4M3FN, as torch's cast does). */
static unsigned inf_bits(fmt f, bool neg) {
  if (f.finite)
    return nan_bits(f, neg);
  return sign_bit(f, neg) | (((1u << f.ebits) - 1) << f.mbits);
}

static int top_bit(uint64_t x) {
#if defined(__GNUC__)
  return 63 - __builtin_clzll(x);
#else
  int n = 0;
  while (x >>= 1)
    n++;
  return n;
#endif
}

/* Rounds SIG * 2^EXP (SIG may be 0) to F. The quantum is 2^q with q = max(e, emin) - mbits, where
 * 2^e is the leading power of two of the value; subnormals share emin's quantum. The rounded
 * mantissa is then placed so that a carry (m == 2^(mbits+1), or a subnormal rounding up to 2^mbits)
 * flows into the exponent field. */
static unsigned round_parts(fmt f, bool neg, uint64_t sig, int exp) {
  if (sig == 0)
    return sign_bit(f, neg);
  int bias = (1 << (f.ebits - 1)) - 1;
  int emin = 1 - bias;
  int e = exp + top_bit(sig);
  int q = (e >= emin ? e : emin) - f.mbits;
  int shift = q - exp;
  uint64_t m;
  if (shift <= 0) {
    m = sig << -shift; /* exact: m < 2^(mbits+1) */
  } else if (shift >= 64) {
    /* The value is below 2^(q-1) (half a quantum) unless shift is 64 and SIG exceeds 2^63. */
    m = shift == 64 && sig > (UINT64_C(1) << 63) ? 1 : 0;
  } else {
    m = sig >> shift;
    uint64_t rem = sig & ((UINT64_C(1) << shift) - 1);
    uint64_t half = UINT64_C(1) << (shift - 1);
    if (rem > half || (rem == half && (m & 1)))
      m++;
  }
  uint64_t bits;
  if (e < emin)
    bits = m;
  else
    bits = ((uint64_t)(e + bias) << f.mbits) + (m - (UINT64_C(1) << f.mbits));
  uint64_t exp_ones = (uint64_t)((1u << f.ebits) - 1) << f.mbits;
  if (f.finite ? bits >= (exp_ones | ((1u << f.mbits) - 1)) : bits >= exp_ones)
    return inf_bits(f, neg);
  return sign_bit(f, neg) | (unsigned)bits;
}

static unsigned round_double(fmt f, double x) {
  uint64_t b;
  memcpy(&b, &x, sizeof b);
  bool neg = (b >> 63) != 0;
  int be = (int)((b >> 52) & 0x7FF);
  uint64_t frac = b & ((UINT64_C(1) << 52) - 1);
  if (be == 0x7FF)
    return frac ? nan_bits(f, neg) : inf_bits(f, neg);
  if (be == 0)
    return round_parts(f, neg, frac, -1074);
  return round_parts(f, neg, frac | (UINT64_C(1) << 52), be - 1075);
}

/* Decodes F (not bf16, whose subnormals are f32 subnormals) to f32: every finite value of f16, E4M3
 * and E5M2 is an f32 normal, so the result is built directly from the fields. */
static float decode_narrow(fmt f, unsigned v) {
  int bias = (1 << (f.ebits - 1)) - 1;
  unsigned ef = (v >> f.mbits) & ((1u << f.ebits) - 1);
  unsigned mf = v & ((1u << f.mbits) - 1);
  uint32_t out = (v >> (f.ebits + f.mbits)) & 1 ? UINT32_C(0x80000000) : 0;
  if (ef == (1u << f.ebits) - 1 && (!f.finite || mf == (1u << f.mbits) - 1)) {
    /* Infinity, or a NaN that stays quiet and keeps its payload's top bits. */
    out |= UINT32_C(0x7F800000);
    if (mf)
      out |= UINT32_C(0x400000) | ((uint32_t)mf << (23 - f.mbits));
  } else if (ef == 0) {
    if (mf) {
      int p = top_bit(mf); /* value = 2^(p + 1 - bias - mbits) * (mf / 2^p) */
      out |= (uint32_t)(p + 1 - bias - f.mbits + 127) << 23;
      out |= (uint32_t)(mf ^ (1u << p)) << (23 - p);
    }
  } else {
    out |= (uint32_t)((int)ef - bias + 127) << 23;
    out |= (uint32_t)mf << (23 - f.mbits);
  }
  float r;
  memcpy(&r, &out, sizeof r);
  return r;
}

static fmt fmt_of(tgc_dtype dt) {
  switch (dt) {
  case TGC_DT_F16:
    return FMT_F16;
  case TGC_DT_BF16:
    return FMT_BF16;
  case TGC_DT_F8E4M3:
    return FMT_E4M3;
  case TGC_DT_F8E5M2:
    return FMT_E5M2;
  case TGC_DT_F64:
  case TGC_DT_F32:
  case TGC_DT_I64:
  case TGC_DT_I32:
  case TGC_DT_I16:
  case TGC_DT_I8:
  case TGC_DT_U8:
  case TGC_DT_I4:
  case TGC_DT_BOOL:
  case TGC_DT_COUNT:
    break;
  }
  tgc_unreachable();
}

uint16_t tgc_rt_encode_f64(tgc_dtype dt, double x) {
  return (uint16_t)round_double(fmt_of(dt), x);
}

uint16_t tgc_rt_encode_i64(tgc_dtype dt, int64_t x) {
  /* Through the magnitude, so that integers beyond 2^53 are not first rounded to a double. */
  bool neg = x < 0;
  uint64_t mag = neg ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
  return (uint16_t)round_parts(fmt_of(dt), neg, mag, 0);
}

/* An f32 widens to a double exactly, so rounding the double is rounding the f32. */
uint16_t tgc_rt_f32_to_f16(float x) {
  return (uint16_t)round_double(FMT_F16, x);
}
float tgc_rt_f16_to_f32(uint16_t h) {
  return decode_narrow(FMT_F16, h);
}
uint16_t tgc_rt_f32_to_bf16(float x) {
  return (uint16_t)round_double(FMT_BF16, x);
}

float tgc_rt_bf16_to_f32(uint16_t h) {
  uint32_t b = (uint32_t)h << 16;
  float r;
  memcpy(&r, &b, sizeof r);
  return r;
}

uint8_t tgc_rt_f32_to_f8e4m3(float x) {
  return (uint8_t)round_double(FMT_E4M3, x);
}
float tgc_rt_f8e4m3_to_f32(uint8_t v) {
  return decode_narrow(FMT_E4M3, v);
}
uint8_t tgc_rt_f32_to_f8e5m2(float x) {
  return (uint8_t)round_double(FMT_E5M2, x);
}
float tgc_rt_f8e5m2_to_f32(uint8_t v) {
  return decode_narrow(FMT_E5M2, v);
}

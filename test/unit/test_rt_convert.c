/* Unit tests of the runtime's dtype conversions (runtime/convert.c) and element access
 * (tgc_rt_get/set and their i64 forms): every f16, bf16 and fp8 bit pattern decoded against an
 * independent ldexp formula and encoded back, round-to-nearest-even at every midpoint between
 * neighbouring values, overflow, subnormals, random f32 inputs against a brute-force nearest-value
 * oracle, and the wrapping rules of the integer dtypes. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "check.h"



/* Compares encodings and prints both in hex on a mismatch. */
#define CHECK_BITS(actual, expected)                                                               \
  do {                                                                                             \
    unsigned a_ = (actual), e_ = (expected);                                                       \
    if (a_ == e_) {                                                                                \
      passed++;                                                                                    \
    } else {                                                                                       \
      failed++;                                                                                    \
      fprintf(stderr, "%s:%d: check failed: %s == %s\n  actual:   0x%04x\n  expected: 0x%04x\n",   \
              __FILE__, __LINE__, #actual, #expected, a_, e_);                                     \
    }                                                                                              \
  } while (0)

/* Loops that test thousands of cases count one check and report only their first few failures. */
typedef struct sweep {
  const char *what;
  long bad;
} sweep;

static void sweep_fail(sweep *s, const char *fmt, double x, unsigned got, unsigned want) {
  if (s->bad++ < 5)
    fprintf(stderr, "%s: %s: x=%a got 0x%04x want 0x%04x\n", s->what, fmt, x, got, want);
}

static void sweep_end(sweep *s) {
  if (s->bad) {
    failed++;
    fprintf(stderr, "%s: %ld mismatches\n", s->what, s->bad);
  } else {
    passed++;
  }
}

/* ---- an independent model of the formats ----------------------------------------------------- */

typedef struct format {
  const char *name;
  int ebits, mbits;
  bool finite; /* E4M3FN: no infinities, only S.1111.111 is NaN */
  unsigned (*encode)(float);
  float (*decode)(unsigned);
} format;

static unsigned enc_f16(float x) {
  return tgc_rt_f32_to_f16(x);
}
static float dec_f16(unsigned v) {
  return tgc_rt_f16_to_f32((uint16_t)v);
}
static unsigned enc_bf16(float x) {
  return tgc_rt_f32_to_bf16(x);
}
static float dec_bf16(unsigned v) {
  return tgc_rt_bf16_to_f32((uint16_t)v);
}
static unsigned enc_e4m3(float x) {
  return tgc_rt_f32_to_f8e4m3(x);
}
static float dec_e4m3(unsigned v) {
  return tgc_rt_f8e4m3_to_f32((uint8_t)v);
}
static unsigned enc_e5m2(float x) {
  return tgc_rt_f32_to_f8e5m2(x);
}
static float dec_e5m2(unsigned v) {
  return tgc_rt_f8e5m2_to_f32((uint8_t)v);
}

static const format formats[] = {
    {"f16", 5, 10, false, enc_f16, dec_f16},
    {"bf16", 8, 7, false, enc_bf16, dec_bf16},
    {"f8e4m3", 4, 3, true, enc_e4m3, dec_e4m3},
    {"f8e5m2", 5, 2, false, enc_e5m2, dec_e5m2},
};

static unsigned npatterns(const format *f) {
  return 1u << (1 + f->ebits + f->mbits);
}
static unsigned sign_of(const format *f) {
  return 1u << (f->ebits + f->mbits);
}

static bool ref_is_nan(const format *f, unsigned v) {
  unsigned e = (v >> f->mbits) & ((1u << f->ebits) - 1), m = v & ((1u << f->mbits) - 1);
  if (e != (1u << f->ebits) - 1)
    return false;
  return f->finite ? m == (1u << f->mbits) - 1 : m != 0;
}

/* The value of pattern V by the textbook formula (NaN for NaNs). */
static double ref_value(const format *f, unsigned v) {
  int bias = (1 << (f->ebits - 1)) - 1;
  unsigned e = (v >> f->mbits) & ((1u << f->ebits) - 1), m = v & ((1u << f->mbits) - 1);
  double s = (v & sign_of(f)) ? -1.0 : 1.0;
  if (ref_is_nan(f, v))
    return NAN;
  if (!f->finite && e == (1u << f->ebits) - 1)
    return s * INFINITY;
  if (e == 0)
    return s * ldexp((double)m, 1 - bias - f->mbits);
  return s * ldexp((double)((1u << f->mbits) + m), (int)e - bias - f->mbits);
}

/* The largest finite positive pattern; the pattern after it is +inf (IEEE) or NaN (E4M3FN). */
static unsigned max_finite(const format *f) {
  unsigned ones = ((1u << f->ebits) - 1) << f->mbits;
  return f->finite ? ones | ((1u << f->mbits) - 2) : ones - 1;
}

/* Nearest-even rounding of a non-negative finite X by search over the patterns 0..max+1, where
 * max+1 stands for the value one step past the largest finite one (it decodes as inf or NaN, so its
 * value is computed). */
static unsigned ref_round(const format *f, double x) {
  unsigned hi = max_finite(f) + 1;
  double top = ref_value(f, hi - 1) + (ref_value(f, hi - 1) - ref_value(f, hi - 2));
  if (x >= top)
    return hi;
  unsigned lo = 0; /* invariant: value(lo) <= x < value(hi) */
  while (hi - lo > 1) {
    unsigned mid = (lo + hi) / 2;
    if (ref_value(f, mid) <= x)
      lo = mid;
    else
      hi = mid;
  }
  double a = ref_value(f, lo), b = hi == max_finite(f) + 1 ? top : ref_value(f, hi);
  if (x - a < b - x)
    return lo;
  if (x - a > b - x)
    return hi;
  return (lo & 1) ? hi : lo;
}

/* ---- tests ----------------------------------------------------------------------------------- */

/* Every pattern decodes to the formula's value and encodes back to itself; NaNs stay NaN. */
static void test_all_patterns(void) {
  for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
    const format *f = &formats[k];
    char what[64];
    snprintf(what, sizeof what, "%s decode/encode of every pattern", f->name);
    sweep s = {what, 0};
    for (unsigned v = 0; v < npatterns(f); v++) {
      float x = f->decode(v);
      double want = ref_value(f, v);
      if (ref_is_nan(f, v)) {
        if (!isnan(x))
          sweep_fail(&s, "NaN pattern decodes to a number", x, v, v);
        unsigned back = f->encode(x);
        if (!ref_is_nan(f, back) || (back & sign_of(f)) != (v & sign_of(f)))
          sweep_fail(&s, "NaN does not encode to a NaN of the same sign", x, back, v);
        continue;
      }
      if ((double)x != want || !signbit(x) != !signbit(want))
        sweep_fail(&s, "decode differs from the formula", want, v, v);
      unsigned back = f->encode(x);
      if (back != v)
        sweep_fail(&s, "decode then encode is not the identity", x, back, v);
    }
    sweep_end(&s);
  }
}

/* At the midpoint between two neighbours, the even pattern wins; one f32 step either side decides.
 */
static void test_midpoints(void) {
  for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
    const format *f = &formats[k];
    char what[64];
    snprintf(what, sizeof what, "%s midpoints", f->name);
    sweep s = {what, 0};
    unsigned last = max_finite(f);
    for (unsigned v = 0; v <= last; v++) {
      double a = ref_value(f, v);
      double b = v < last ? ref_value(f, v + 1) : a + (a - ref_value(f, v - 1));
      float m = (float)((a + b) / 2); /* exact: one more bit than the format */
      unsigned even = (v & 1) ? v + 1 : v;
      for (int sgn = 0; sgn < 2; sgn++) {
        unsigned sb = sgn ? sign_of(f) : 0;
        float ms = sgn ? -m : m;
        unsigned got = f->encode(ms);
        if (got != (even | sb))
          sweep_fail(&s, "tie", ms, got, even | sb);
        float below = nextafterf(m, 0.0f), above = nextafterf(m, INFINITY);
        got = f->encode(sgn ? -below : below);
        if (got != (v | sb))
          sweep_fail(&s, "just below the tie", below, got, v | sb);
        got = f->encode(sgn ? -above : above);
        if (got != ((v + 1) | sb))
          sweep_fail(&s, "just above the tie", above, got, (v + 1) | sb);
      }
    }
    sweep_end(&s);
  }
}

static uint32_t next_random(uint64_t *state) {
  *state ^= *state << 13;
  *state ^= *state >> 7;
  *state ^= *state << 17;
  return (uint32_t)(*state >> 16);
}

/* Random f32 bit patterns (every exponent equally likely) against the search oracle. */
static void test_random(void) {
  for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
    const format *f = &formats[k];
    char what[64];
    snprintf(what, sizeof what, "%s random f32 inputs", f->name);
    sweep s = {what, 0};
    uint64_t state = 0x9E3779B97F4A7C15u + k;
    for (int i = 0; i < 200000; i++) {
      uint32_t bits = next_random(&state);
      float x;
      memcpy(&x, &bits, sizeof x);
      if (isnan(x) || isinf(x))
        continue;
      unsigned want = ref_round(f, fabs((double)x)) | (signbit(x) ? sign_of(f) : 0);
      unsigned got = f->encode(x);
      if (got != want)
        sweep_fail(&s, "rounding differs from the oracle", x, got, want);
    }
    sweep_end(&s);
  }
}

/* The classic bf16 rounding of the f32 bits, an independent check of the general path. */
static void test_bf16_bit_trick(void) {
  sweep s = {"bf16 against (b + 0x7fff + lsb) >> 16", 0};
  uint64_t state = 12345;
  for (int i = 0; i < 1000000; i++) {
    uint32_t b = next_random(&state);
    float x;
    memcpy(&x, &b, sizeof x);
    if (isnan(x))
      continue;
    unsigned want = (b + 0x7FFFu + ((b >> 16) & 1)) >> 16;
    unsigned got = tgc_rt_f32_to_bf16(x);
    if (got != want)
      sweep_fail(&s, "differs", x, got, want);
  }
  sweep_end(&s);
}

static void test_f16_known(void) {
  CHECK_BITS(tgc_rt_f32_to_f16(1.0f), 0x3C00);
  CHECK_BITS(tgc_rt_f32_to_f16(1.0f + 0x1p-11f), 0x3C00);     /* tie, down to even */
  CHECK_BITS(tgc_rt_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3C02); /* tie, up to even */
  CHECK_BITS(tgc_rt_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);
  CHECK_BITS(tgc_rt_f32_to_f16(-2.0f), 0xC000);
  CHECK_BITS(tgc_rt_f32_to_f16(65504.0f), 0x7BFF);
  CHECK_BITS(tgc_rt_f32_to_f16(65519.0f), 0x7BFF);
  CHECK_BITS(tgc_rt_f32_to_f16(65520.0f), 0x7C00); /* the tie above the largest value overflows */
  CHECK_BITS(tgc_rt_f32_to_f16(1e6f), 0x7C00);
  CHECK_BITS(tgc_rt_f32_to_f16(-1e6f), 0xFC00);
  CHECK_BITS(tgc_rt_f32_to_f16(FLT_MAX), 0x7C00);
  CHECK_BITS(tgc_rt_f32_to_f16(INFINITY), 0x7C00);
  CHECK_BITS(tgc_rt_f32_to_f16(-INFINITY), 0xFC00);
  CHECK_BITS(tgc_rt_f32_to_f16(0x1p-14f), 0x0400); /* smallest normal */
  CHECK_BITS(tgc_rt_f32_to_f16(0x1p-24f), 0x0001); /* smallest subnormal */
  CHECK_BITS(tgc_rt_f32_to_f16(0x1p-25f), 0x0000); /* tie to zero */
  CHECK_BITS(tgc_rt_f32_to_f16(0x1.000002p-25f), 0x0001);
  CHECK_BITS(tgc_rt_f32_to_f16(3 * 0x1p-25f), 0x0002); /* tie between 1 and 2 */
  CHECK_BITS(tgc_rt_f32_to_f16(0x1.ff8p-15f), 0x03FF); /* largest subnormal */
  CHECK_BITS(tgc_rt_f32_to_f16(0x1.ffcp-15f), 0x0400); /* tie: rounds up into the normals */
  CHECK_BITS(tgc_rt_f32_to_f16(0x1.ffbp-15f), 0x03FF);
  CHECK_BITS(tgc_rt_f32_to_f16(FLT_MIN), 0x0000);
  CHECK_BITS(tgc_rt_f32_to_f16(-0.0f), 0x8000);
  CHECK(tgc_rt_f16_to_f32(0x7BFF) == 65504.0f);
  CHECK(tgc_rt_f16_to_f32(0x0001) == 0x1p-24f);
  CHECK(tgc_rt_f16_to_f32(0x3555) == 0x1.554p-2f);
  CHECK(isinf(tgc_rt_f16_to_f32(0xFC00)) && tgc_rt_f16_to_f32(0xFC00) < 0);
  CHECK(isnan(tgc_rt_f16_to_f32(0x7E00)) && isnan(tgc_rt_f16_to_f32(0x7C01)));
  uint16_t n = tgc_rt_f32_to_f16(NAN);
  CHECK((n & 0x7C00) == 0x7C00 && (n & 0x3FF) != 0);
}

static void test_bf16_known(void) {
  CHECK_BITS(tgc_rt_f32_to_bf16(1.0f), 0x3F80);
  CHECK_BITS(tgc_rt_f32_to_bf16(1.0f + 0x1p-8f), 0x3F80);     /* tie, down to even */
  CHECK_BITS(tgc_rt_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82); /* tie, up to even */
  CHECK_BITS(tgc_rt_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);
  CHECK_BITS(tgc_rt_f32_to_bf16(FLT_MAX), 0x7F80); /* rounds past the largest bf16 */
  CHECK_BITS(tgc_rt_f32_to_bf16(0x1.fep127f), 0x7F7F);
  CHECK_BITS(tgc_rt_f32_to_bf16(-INFINITY), 0xFF80);
  CHECK_BITS(tgc_rt_f32_to_bf16(0x1p-133f), 0x0001); /* smallest subnormal */
  CHECK_BITS(tgc_rt_f32_to_bf16(0x1p-134f), 0x0000); /* tie to zero */
  CHECK(tgc_rt_bf16_to_f32(0x7F7F) == 0x1.fep127f);
  CHECK(tgc_rt_bf16_to_f32(0xC040) == -3.0f);
  /* NaN stays NaN, including a NaN whose payload lives only in the low 16 bits of the f32. */
  uint32_t nb = 0x7F800001u;
  float low_nan;
  memcpy(&low_nan, &nb, sizeof low_nan);
  uint16_t b = tgc_rt_f32_to_bf16(low_nan);
  CHECK((b & 0x7F80) == 0x7F80 && (b & 0x7F) != 0);
  b = tgc_rt_f32_to_bf16(-NAN);
  CHECK((b & 0xFF80) == 0xFF80 && (b & 0x7F) != 0);
  CHECK(isnan(tgc_rt_bf16_to_f32(0x7FC0)));
}

static void test_fp8_known(void) {
  /* E4M3FN: bias 7, max 448, smallest subnormal 2^-9, no infinities, overflow to NaN (0x7f). */
  CHECK(tgc_rt_f8e4m3_to_f32(0x7E) == 448.0f);
  CHECK(tgc_rt_f8e4m3_to_f32(0x01) == 0x1p-9f);
  CHECK(tgc_rt_f8e4m3_to_f32(0x08) == 0x1p-6f);
  CHECK(tgc_rt_f8e4m3_to_f32(0x38) == 1.0f);
  CHECK(tgc_rt_f8e4m3_to_f32(0xFE) == -448.0f);
  CHECK(tgc_rt_f8e4m3_to_f32(0x78) == 256.0f); /* the all-ones exponent holds normals */
  CHECK(isnan(tgc_rt_f8e4m3_to_f32(0x7F)) && isnan(tgc_rt_f8e4m3_to_f32(0xFF)));
  CHECK(signbit(tgc_rt_f8e4m3_to_f32(0x80)) && tgc_rt_f8e4m3_to_f32(0x80) == 0.0f);
  CHECK_BITS(tgc_rt_f32_to_f8e4m3(448.0f), 0x7E);
  CHECK_BITS(tgc_rt_f32_to_f8e4m3(464.0f), 0x7E); /* the tie rounds to 448 (even) */
  CHECK_BITS(tgc_rt_f32_to_f8e4m3(464.5f), 0x7F); /* rounds to 480, beyond the range: NaN */
  CHECK_BITS(tgc_rt_f32_to_f8e4m3(480.0f), 0x7F);
  CHECK_BITS(tgc_rt_f32_to_f8e4m3(1e9f), 0x7F);
  CHECK_BITS(tgc_rt_f32_to_f8e4m3(-500.0f), 0xFF);
  CHECK_BITS(tgc_rt_f32_to_f8e4m3(INFINITY), 0x7F);
  CHECK_BITS(tgc_rt_f32_to_f8e4m3(-INFINITY), 0xFF);
  CHECK_BITS(tgc_rt_f32_to_f8e4m3(NAN), 0x7F);
  CHECK_BITS(tgc_rt_f32_to_f8e4m3(0x1p-10f), 0x00); /* tie to zero */
  CHECK_BITS(tgc_rt_f32_to_f8e4m3(0x1.8p-10f), 0x01);
  CHECK_BITS(tgc_rt_f32_to_f8e4m3(0x1p-12f), 0x00);
  CHECK_BITS(tgc_rt_f32_to_f8e4m3(0.1f), 0x1D); /* 0.1015625 */
  /* E5M2: bias 15, max 57344, smallest subnormal 2^-16, infinities, overflow to inf. */
  CHECK(tgc_rt_f8e5m2_to_f32(0x7B) == 57344.0f);
  CHECK(tgc_rt_f8e5m2_to_f32(0x01) == 0x1p-16f);
  CHECK(tgc_rt_f8e5m2_to_f32(0x04) == 0x1p-14f);
  CHECK(tgc_rt_f8e5m2_to_f32(0x3C) == 1.0f);
  CHECK(isinf(tgc_rt_f8e5m2_to_f32(0x7C)) && isinf(tgc_rt_f8e5m2_to_f32(0xFC)));
  CHECK(isnan(tgc_rt_f8e5m2_to_f32(0x7D)) && isnan(tgc_rt_f8e5m2_to_f32(0xFF)));
  CHECK_BITS(tgc_rt_f32_to_f8e5m2(57344.0f), 0x7B);
  CHECK_BITS(tgc_rt_f32_to_f8e5m2(61439.0f), 0x7B);
  CHECK_BITS(tgc_rt_f32_to_f8e5m2(61440.0f), 0x7C); /* the tie above the largest value overflows */
  CHECK_BITS(tgc_rt_f32_to_f8e5m2(-1e9f), 0xFC);
  CHECK_BITS(tgc_rt_f32_to_f8e5m2(INFINITY), 0x7C);
  CHECK_BITS(tgc_rt_f32_to_f8e5m2(0x1p-17f), 0x00);
  CHECK_BITS(tgc_rt_f32_to_f8e5m2(0x1.8p-17f), 0x01);
  uint8_t n = tgc_rt_f32_to_f8e5m2(NAN);
  CHECK((n & 0x7C) == 0x7C && (n & 0x03) != 0);
}

/* ---- element access -------------------------------------------------------------------------- */

static tgc_rt_tensor vec(tgc_dtype dt, int64_t n) {
  tgc_rt_tensor t;
  tgc_rt_err err;
  int rc = tgc_rt_tensor_alloc(&t, dt, 1, &n, &err);
  if (rc) {
    fprintf(stderr, "alloc failed: %s\n", err.msg);
    exit(1);
  }
  return t;
}

static double set_get(tgc_dtype dt, double x) {
  tgc_rt_tensor t = vec(dt, 3);
  tgc_rt_set(&t, 1, x);
  double r = tgc_rt_get(&t, 1);
  tgc_rt_tensor_free(&t);
  return r;
}

static int64_t set_get_i64(tgc_dtype dt, double x) {
  tgc_rt_tensor t = vec(dt, 3);
  tgc_rt_set(&t, 2, x);
  int64_t r = tgc_rt_get_i64(&t, 2);
  tgc_rt_tensor_free(&t);
  return r;
}

static unsigned raw16(tgc_dtype dt, double x, int64_t ix, bool use_i64) {
  tgc_rt_tensor t = vec(dt, 2);
  if (use_i64)
    tgc_rt_set_i64(&t, 1, ix);
  else
    tgc_rt_set(&t, 1, x);
  unsigned r =
      tgc_rt_dtype_size(dt) == 2 ? (unsigned)((uint16_t *)t.data)[1] : ((uint8_t *)t.data)[1];
  tgc_rt_tensor_free(&t);
  return r;
}

static void test_get_set_floats(void) {
  CHECK(set_get(TGC_DT_F64, 0.1) == 0.1);
  CHECK(set_get(TGC_DT_F32, 0.1) == (double)0.1f);
  CHECK(set_get(TGC_DT_F32, 1e300) == INFINITY);
  CHECK(set_get(TGC_DT_F16, 0.1) == (double)tgc_rt_f16_to_f32(tgc_rt_f32_to_f16(0.1f)));
  CHECK(set_get(TGC_DT_BF16, -3.0) == -3.0);
  CHECK(isnan(set_get(TGC_DT_F8E4M3, 1000.0)));
  CHECK(set_get(TGC_DT_F8E5M2, 1e6) == INFINITY);
  CHECK(isnan(set_get(TGC_DT_F16, NAN)));
  /* A double is rounded once: 1 + 2^-11 + 2^-40 is just above the f16 tie, though as an f32 it is
   * the tie. */
  CHECK_BITS(raw16(TGC_DT_F16, 1.0 + 0x1p-11 + 0x1p-40, 0, false), 0x3C01);
  CHECK_BITS(raw16(TGC_DT_BF16, 1.0 + 0x1p-8 + 0x1p-40, 0, false), 0x3F81);
  CHECK_BITS(raw16(TGC_DT_F16, 0x1p-25 + 0x1p-60, 0, false), 0x0001);
  CHECK_BITS(raw16(TGC_DT_F16, 1e-300, 0, false), 0x0000);
  CHECK_BITS(raw16(TGC_DT_F16, -1e-300, 0, false), 0x8000);
  CHECK_BITS(raw16(TGC_DT_F16, 0x1p-1074, 0, false), 0x0000); /* a double subnormal */
  CHECK_BITS(raw16(TGC_DT_F8E5M2, 1e300, 0, false), 0x7C);
  /* Integers into floats, also rounded once: 2^60 + 2^52 + 1 is above the bf16 tie at 2^60 + 2^52.
   */
  int64_t big = (INT64_C(1) << 60) + (INT64_C(1) << 52);
  CHECK_BITS(raw16(TGC_DT_BF16, 0, big, true), 0x5D80);
  CHECK_BITS(raw16(TGC_DT_BF16, 0, big + 1, true), 0x5D81);
  CHECK_BITS(raw16(TGC_DT_BF16, 0, -big - 1, true), 0xDD81);
  CHECK_BITS(raw16(TGC_DT_BF16, 0, INT64_MIN, true), 0xDF00);
  CHECK_BITS(raw16(TGC_DT_F16, 0, 65520, true), 0x7C00);
  CHECK_BITS(raw16(TGC_DT_F16, 0, -2049, true), 0xE800); /* -2048: tie to even */
  CHECK_BITS(raw16(TGC_DT_F8E4M3, 0, 465, true), 0x7F);
  CHECK_BITS(raw16(TGC_DT_F8E4M3, 0, 0, true), 0x00);
  tgc_rt_tensor t = vec(TGC_DT_F32, 1);
  tgc_rt_set_i64(&t, 0, 16777217); /* 2^24 + 1: a tie in f32 */
  CHECK(tgc_rt_get(&t, 0) == 16777216.0);
  tgc_rt_tensor_free(&t);
  t = vec(TGC_DT_F64, 1);
  tgc_rt_set_i64(&t, 0, INT64_MAX);
  CHECK(tgc_rt_get(&t, 0) == 0x1p63);
  tgc_rt_tensor_free(&t);
  /* get_i64 of floats truncates and saturates. */
  CHECK(set_get_i64(TGC_DT_F32, -2.7) == -2);
  CHECK(set_get_i64(TGC_DT_F32, 1e30) == INT64_MAX);
  CHECK(set_get_i64(TGC_DT_F64, -1e30) == INT64_MIN);
  CHECK(set_get_i64(TGC_DT_F16, NAN) == 0);
  CHECK(set_get_i64(TGC_DT_F8E5M2, -INFINITY) == INT64_MIN);
  CHECK(set_get_i64(TGC_DT_BF16, 3.5) == 3);
}

static void test_get_set_ints(void) {
  CHECK(set_get_i64(TGC_DT_I8, 300.7) == 44);
  CHECK(set_get_i64(TGC_DT_I8, -129) == 127);
  CHECK(set_get_i64(TGC_DT_I8, -1.9) == -1);
  CHECK(set_get_i64(TGC_DT_U8, -1) == 255);
  CHECK(set_get_i64(TGC_DT_U8, 256) == 0);
  CHECK(set_get_i64(TGC_DT_U8, 255.99) == 255);
  CHECK(set_get_i64(TGC_DT_I16, 40000) == 40000 - 65536);
  CHECK(set_get_i64(TGC_DT_I32, 0x1p40 + 7) == 7);
  CHECK(set_get_i64(TGC_DT_I32, -0x1p31) == INT32_MIN);
  CHECK(set_get_i64(TGC_DT_I32, 0x1p31) == INT32_MIN);
  CHECK(set_get_i64(TGC_DT_I64, 0x1p63) == INT64_MIN);
  CHECK(set_get_i64(TGC_DT_I64, -0x1p63) == INT64_MIN);
  CHECK(set_get_i64(TGC_DT_I64, 0x1p64 + 0x1p12) == 4096);
  CHECK(set_get_i64(TGC_DT_I64, -0x1p64 - 0x1p12) == -4096);
  CHECK(set_get_i64(TGC_DT_I64, 0x1p100) == 0);
  CHECK(set_get_i64(TGC_DT_I64, -(0x1p62 + 0x1p61)) == -(INT64_C(3) << 61));
  CHECK(set_get_i64(TGC_DT_I32, NAN) == 0);
  CHECK(set_get_i64(TGC_DT_I32, INFINITY) == 0);
  CHECK(set_get_i64(TGC_DT_I4, 7) == 7);
  CHECK(set_get_i64(TGC_DT_I4, 8) == -8);
  CHECK(set_get_i64(TGC_DT_I4, 15) == -1);
  CHECK(set_get_i64(TGC_DT_I4, -9) == 7);
  CHECK(set_get_i64(TGC_DT_BOOL, 0.5) == 1);
  CHECK(set_get_i64(TGC_DT_BOOL, -0.0) == 0);
  CHECK(set_get_i64(TGC_DT_BOOL, NAN) == 1);
  CHECK(set_get(TGC_DT_I8, -5) == -5.0);
  CHECK(set_get(TGC_DT_U8, 200) == 200.0);

  tgc_rt_tensor t = vec(TGC_DT_I64, 2);
  tgc_rt_set_i64(&t, 0, INT64_MAX);
  tgc_rt_set_i64(&t, 1, INT64_MIN);
  CHECK(tgc_rt_get_i64(&t, 0) == INT64_MAX);
  CHECK(tgc_rt_get_i64(&t, 1) == INT64_MIN);
  CHECK(tgc_rt_get(&t, 0) == 0x1p63); /* beyond 2^53 get rounds */
  tgc_rt_tensor_free(&t);
  t = vec(TGC_DT_I4, 2);
  tgc_rt_set_i64(&t, 0, 0x1F);
  tgc_rt_set_i64(&t, 1, -8);
  CHECK(tgc_rt_get_i64(&t, 0) == -1 && ((int8_t *)t.data)[0] == -1);
  CHECK(tgc_rt_get_i64(&t, 1) == -8);
  tgc_rt_tensor_free(&t);
  t = vec(TGC_DT_I16, 1);
  tgc_rt_set_i64(&t, 0, 0x12345);
  CHECK(tgc_rt_get_i64(&t, 0) == 0x2345);
  tgc_rt_tensor_free(&t);
  t = vec(TGC_DT_BOOL, 2);
  tgc_rt_set_i64(&t, 0, 256); /* x != 0, not the low byte */
  ((uint8_t *)t.data)[1] = 2; /* a file's nonzero byte reads as true */
  CHECK(tgc_rt_get_i64(&t, 0) == 1 && tgc_rt_get(&t, 1) == 1.0 && tgc_rt_get_i64(&t, 1) == 1);
  tgc_rt_tensor_free(&t);
}

/* Views into a file need not be aligned: element access copies bytes. */
static void test_unaligned(void) {
  unsigned char buf[64] = {0};
  tgc_dtype dts[] = {TGC_DT_F64, TGC_DT_F32, TGC_DT_F16, TGC_DT_BF16,
                     TGC_DT_I64, TGC_DT_I32, TGC_DT_I16};
  for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
    tgc_rt_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dts[k];
    t.rank = 1;
    t.shape[0] = 3;
    t.data = buf + 1;
    tgc_rt_set(&t, 1, -3.0);
    tgc_rt_set_i64(&t, 2, 5);
    CHECK(tgc_rt_get(&t, 1) == -3.0 && tgc_rt_get_i64(&t, 2) == 5);
  }
}

/* tgc_rt_pack_w4 against the way the w4 GEMM kernel reads it (codegen/kernels/w4gemm.cuh) and the tensor-core
 * fragment of mma.m16n8k16's B operand (PTX ISA: lane L holds B[k][n] for n = L / 4 and k = 2 (L % 4) + {0, 1}
 * in its first register, + 8 in its second): for every lane, n-tile, span and k-tile, the kernel's word and
 * shifts give back q, offset by 8, at exactly the fragment's positions. */
static void test_pack_w4(void) {
  enum { N = 24, K = 384 };
  static int8_t q[N * K];
  static uint8_t packed[N * K / 2];
  uint32_t r = 12345;
  for (int i = 0; i < N * K; i++) {
    r = r * 1103515245u + 12345u;
    q[i] = (int8_t)((int)((r >> 16) % 16) - 8);
  }
  memset(packed, 0xa5, sizeof packed);
  tgc_rt_pack_w4(q, N, K, packed);
  int bad = 0;
  for (int nt = 0; nt < N / 8; nt++)
    for (int sp = 0; sp < K / 128; sp++) {
      const uint8_t *blk = packed + ((size_t)nt * (K / 128) + sp) * 512;
      for (int lane = 0; lane < 32; lane++)
        for (int kt = 0; kt < 8; kt++) {
          uint32_t word;
          memcpy(&word, blk + lane * 16 + (kt / 2) * 4, 4);
          word >>= (kt % 2) * 8;
          int n = nt * 8 + lane / 4, k = sp * 128 + kt * 16 + 2 * (lane % 4);
          int got[4] = {(int)(word & 15), (int)((word >> 16) & 15), (int)((word >> 4) & 15), (int)((word >> 20) & 15)};
          int want[4] = {q[n * K + k], q[n * K + k + 1], q[n * K + k + 8], q[n * K + k + 9]};
          for (int v = 0; v < 4; v++)
            bad += got[v] - 8 != want[v];
        }
    }
  CHECK(bad == 0);
}

int main(void) {
  test_all_patterns();
  test_midpoints();
  test_random();
  test_bf16_bit_trick();
  test_f16_known();
  test_bf16_known();
  test_fp8_known();
  test_get_set_floats();
  test_get_set_ints();
  test_unaligned();
  test_pack_w4();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

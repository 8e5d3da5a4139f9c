/* Runtime errors, tensor storage (sizes, allocation, shape printing) and element access in every
 * dtype. Element access goes through memcpy, so a tensor's data needs no alignment: views into a
 * memory-mapped safetensors file point at whatever offset the file gives. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "rt_internal.h"

/* Integers are stored little-endian (the .npy and safetensors byte order) and copied with memcpy.
 */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) &&                                 \
    __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libtgc_rt assumes a little-endian host"
#endif

int tgc_rt_errorf(tgc_rt_err *err, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return -1;
}

size_t tgc_rt_dtype_size(tgc_dtype dt) {
  switch (dt) {
  case TGC_DT_F64:
  case TGC_DT_I64:
    return 8;
  case TGC_DT_F32:
  case TGC_DT_I32:
    return 4;
  case TGC_DT_F16:
  case TGC_DT_BF16:
  case TGC_DT_I16:
    return 2;
  case TGC_DT_F8E4M3:
  case TGC_DT_F8E5M2:
  case TGC_DT_I8:
  case TGC_DT_U8:
  case TGC_DT_I4:
  case TGC_DT_BOOL:
    return 1;
  case TGC_DT_COUNT:
    break;
  }
  tgc_unreachable();
}

/* The product of the nonzero dims must fit as well, not only the element count: a [0, 2^40, 2^40]
 * tensor holds nothing, but the strides a backend derives from its shape would overflow. */
bool tgc_rt_numel(uint32_t rank, const int64_t *shape, size_t *out) {
  if (rank > TGC_RT_MAX_RANK)
    return false;
  size_t n = 1;
  bool zero = false;
  for (uint32_t i = 0; i < rank; i++) {
    if (shape[i] < 0 || (uint64_t)shape[i] > SIZE_MAX)
      return false;
    size_t d = (size_t)shape[i];
    if (d == 0) {
      zero = true;
      continue;
    }
    if (n > SIZE_MAX / d)
      return false;
    n *= d;
  }
  *out = zero ? 0 : n;
  return true;
}

int tgc_rt_tensor_alloc(tgc_rt_tensor *t, tgc_dtype dt, uint32_t rank, const int64_t *shape,
                        tgc_rt_err *err) {
  TGC_ASSERT(dt < TGC_DT_COUNT);
  memset(t, 0, sizeof *t);
  if (rank > TGC_RT_MAX_RANK)
    return tgc_rt_errorf(err, "tensor rank %" PRIu32 " exceeds the maximum of %d", rank,
                         TGC_RT_MAX_RANK);
  char shp[512];
  tgc_rt_shape_str(rank, shape, shp, sizeof shp);
  for (uint32_t i = 0; i < rank; i++)
    if (shape[i] < 0)
      return tgc_rt_errorf(err, "negative dim %" PRId64 " in tensor shape %s", shape[i], shp);
  size_t n, size = tgc_rt_dtype_size(dt);
  if (!tgc_rt_numel(rank, shape, &n) || n > SIZE_MAX / size)
    return tgc_rt_errorf(err,
                         "a %s tensor of shape %s needs more bytes than the address space holds",
                         tgc_dtype_name(dt), shp);
  size_t bytes = n * size;
  /* At least one byte, so that data is never NULL (memcpy and friends reject NULL even for 0
   * bytes). */
  void *p = calloc(bytes ? bytes : 1, 1);
  if (!p)
    return tgc_rt_errorf(err, "out of memory allocating %zu bytes for a %s tensor of shape %s",
                         bytes, tgc_dtype_name(dt), shp);
  t->dtype = dt;
  t->rank = rank;
  if (rank)
    memcpy(t->shape, shape, rank * sizeof *shape);
  t->data = p;
  t->owned = true;
  return 0;
}

void tgc_rt_tensor_free(tgc_rt_tensor *t) {
  if (!t)
    return;
  if (t->owned)
    free(t->data);
  t->data = NULL;
  t->owned = false;
}

double tgc_rt_tolerance(tgc_dtype dt) {
  if (dt == TGC_DT_F32 || dt == TGC_DT_F64)
    return 1e-5;
  if (dt == TGC_DT_F8E4M3 || dt == TGC_DT_F8E5M2)
    return 1e-1;
  return tgc_dtype_kind_of(dt) == TGC_DTK_FLOAT ? 1e-2 : 0; /* f16, bf16; integers and bool exact */
}

void tgc_rt_compare(const tgc_rt_tensor *got, const tgc_rt_tensor *ref, tgc_rt_compare_result *r) {
  tgc_dtype dt = ref->dtype;
  bool flt = tgc_dtype_kind_of(dt) == TGC_DTK_FLOAT;
  r->tol = tgc_rt_tolerance(dt);
  r->rel = 0;
  r->mismatches = 0;
  size_t n = tgc_rt_tensor_numel(ref);
  if (got->dtype != dt || tgc_rt_tensor_numel(got) != n) {
    r->mismatches = n ? n : 1;
    r->ok = false;
    return;
  }
  double num = 0, den = 0;
  for (size_t e = 0; e < n; e++) {
    if (!flt) {
      r->mismatches += tgc_rt_get_i64(got, e) != tgc_rt_get_i64(ref, e);
      continue;
    }
    double a = tgc_rt_get(got, e), b = tgc_rt_get(ref, e);
    if (isfinite(a) && isfinite(b)) {
      num += (a - b) * (a - b);
      den += b * b;
    } else if (!(isnan(a) && isnan(b)) && a != b) {
      r->mismatches++; /* a NaN or an infinity where REF has another value */
    }
  }
  if (flt)
    r->rel = den > 0 ? sqrt(num / den) : sqrt(num);
  r->ok = r->mismatches == 0 && r->rel <= r->tol;
}

size_t tgc_rt_tensor_numel(const tgc_rt_tensor *t) {
  size_t n = 0;
  bool ok = tgc_rt_numel(t->rank, t->shape, &n);
  TGC_ASSERT(ok); /* every tensor was checked when it was allocated or read */
  return n;
}

size_t tgc_rt_tensor_nbytes(const tgc_rt_tensor *t) {
  return tgc_rt_tensor_numel(t) * tgc_rt_dtype_size(t->dtype);
}

void tgc_rt_shape_str(uint32_t rank, const int64_t *shape, char *buf, size_t n) {
  if (n == 0)
    return;
  size_t len = 0;
  buf[0] = '\0';
  for (uint32_t i = 0; i <= rank && len < n; i++) {
    int w;
    if (i == rank)
      w = snprintf(buf + len, n - len, "%s]", rank ? "" : "[");
    else
      w = snprintf(buf + len, n - len, "%s%" PRId64, i ? ", " : "[", shape[i]);
    if (w < 0)
      return;
    len += (size_t)w;
  }
}

/* ---- element access -------------------------------------------------------------------------- */

static unsigned char *elem(const tgc_rt_tensor *t, size_t i) {
  return (unsigned char *)t->data + i * tgc_rt_dtype_size(t->dtype);
}

static uint16_t load16(const unsigned char *p) {
  uint16_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static void store16(unsigned char *p, uint16_t v) {
  memcpy(p, &v, sizeof v);
}

/* Integers as the host sees them, sign- or zero-extended; i4 is stored as a sign-extended int8. */
static int64_t load_int(tgc_dtype dt, const unsigned char *p) {
  switch (dt) {
  case TGC_DT_I64: {
    int64_t v;
    memcpy(&v, p, sizeof v);
    return v;
  }
  case TGC_DT_I32: {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
  }
  case TGC_DT_I16: {
    int16_t v;
    memcpy(&v, p, sizeof v);
    return v;
  }
  case TGC_DT_I8:
  case TGC_DT_I4: {
    int8_t v;
    memcpy(&v, p, sizeof v);
    return v;
  }
  case TGC_DT_U8:
    return *p;
  case TGC_DT_BOOL:
    return *p != 0;
  case TGC_DT_F64:
  case TGC_DT_F32:
  case TGC_DT_F16:
  case TGC_DT_BF16:
  case TGC_DT_F8E4M3:
  case TGC_DT_F8E5M2:
  case TGC_DT_COUNT:
    break;
  }
  tgc_unreachable();
}

/* Stores X modulo 2^bits: the low bytes of its two's complement, so no conversion is
 * implementation-defined. */
static void store_int(tgc_dtype dt, unsigned char *p, uint64_t x) {
  switch (dt) {
  case TGC_DT_I64:
    memcpy(p, &x, 8);
    return;
  case TGC_DT_I32: {
    uint32_t v = (uint32_t)x;
    memcpy(p, &v, sizeof v);
    return;
  }
  case TGC_DT_I16: {
    uint16_t v = (uint16_t)x;
    memcpy(p, &v, sizeof v);
    return;
  }
  case TGC_DT_I8:
  case TGC_DT_U8:
    *p = (unsigned char)x;
    return;
  case TGC_DT_I4: {
    int v = (int)(x & 0xF);
    int8_t s = (int8_t)(v >= 8 ? v - 16 : v);
    memcpy(p, &s, 1);
    return;
  }
  case TGC_DT_BOOL:
    *p = x != 0;
    return;
  case TGC_DT_F64:
  case TGC_DT_F32:
  case TGC_DT_F16:
  case TGC_DT_BF16:
  case TGC_DT_F8E4M3:
  case TGC_DT_F8E5M2:
  case TGC_DT_COUNT:
    break;
  }
  tgc_unreachable();
}

/* The integer part of X modulo 2^64. fmod is exact, and so is the cast of |r| < 2^64; NaN and the
 * infinities, which have no integer part, give 0. */
static uint64_t wrap_double(double x) {
  if (isnan(x) || isinf(x))
    return 0;
  double r = fmod(trunc(x), 18446744073709551616.0);
  uint64_t mag = (uint64_t)fabs(r);
  return r < 0 ? (uint64_t)0 - mag : mag;
}

double tgc_rt_get(const tgc_rt_tensor *t, size_t i) {
  const unsigned char *p = elem(t, i);
  switch (t->dtype) {
  case TGC_DT_F64: {
    double v;
    memcpy(&v, p, sizeof v);
    return v;
  }
  case TGC_DT_F32: {
    float v;
    memcpy(&v, p, sizeof v);
    return v;
  }
  case TGC_DT_F16:
    return tgc_rt_f16_to_f32(load16(p));
  case TGC_DT_BF16:
    return tgc_rt_bf16_to_f32(load16(p));
  case TGC_DT_F8E4M3:
    return tgc_rt_f8e4m3_to_f32(*p);
  case TGC_DT_F8E5M2:
    return tgc_rt_f8e5m2_to_f32(*p);
  case TGC_DT_I64:
  case TGC_DT_I32:
  case TGC_DT_I16:
  case TGC_DT_I8:
  case TGC_DT_U8:
  case TGC_DT_I4:
  case TGC_DT_BOOL:
    return (double)load_int(t->dtype, p);
  case TGC_DT_COUNT:
    break;
  }
  tgc_unreachable();
}

/* The narrow floats round the double once (not through f32, which could round twice). */
void tgc_rt_set(tgc_rt_tensor *t, size_t i, double x) {
  unsigned char *p = elem(t, i);
  switch (t->dtype) {
  case TGC_DT_F64:
    memcpy(p, &x, sizeof x);
    return;
  case TGC_DT_F32: {
    float v = (float)x;
    memcpy(p, &v, sizeof v);
    return;
  }
  case TGC_DT_F16:
  case TGC_DT_BF16:
    store16(p, tgc_rt_encode_f64(t->dtype, x));
    return;
  case TGC_DT_F8E4M3:
  case TGC_DT_F8E5M2:
    *p = (unsigned char)tgc_rt_encode_f64(t->dtype, x);
    return;
  case TGC_DT_BOOL:
    *p = x != 0; /* NaN is true, as in C */
    return;
  case TGC_DT_I64:
  case TGC_DT_I32:
  case TGC_DT_I16:
  case TGC_DT_I8:
  case TGC_DT_U8:
  case TGC_DT_I4:
    store_int(t->dtype, p, wrap_double(x));
    return;
  case TGC_DT_COUNT:
    break;
  }
  tgc_unreachable();
}

/* On a float dtype: the value truncated toward zero, saturated to the int64 range, NaN as 0 (no
 * UB). */
int64_t tgc_rt_get_i64(const tgc_rt_tensor *t, size_t i) {
  switch (t->dtype) {
  case TGC_DT_F64:
  case TGC_DT_F32:
  case TGC_DT_F16:
  case TGC_DT_BF16:
  case TGC_DT_F8E4M3:
  case TGC_DT_F8E5M2: {
    double v = tgc_rt_get(t, i);
    if (isnan(v))
      return 0;
    if (v >= 9223372036854775808.0)
      return INT64_MAX;
    if (v < -9223372036854775808.0)
      return INT64_MIN;
    return (int64_t)v;
  }
  case TGC_DT_I64:
  case TGC_DT_I32:
  case TGC_DT_I16:
  case TGC_DT_I8:
  case TGC_DT_U8:
  case TGC_DT_I4:
  case TGC_DT_BOOL:
    return load_int(t->dtype, elem(t, i));
  case TGC_DT_COUNT:
    break;
  }
  tgc_unreachable();
}

/* On a float dtype: X rounded once to nearest even. */
void tgc_rt_set_i64(tgc_rt_tensor *t, size_t i, int64_t x) {
  unsigned char *p = elem(t, i);
  switch (t->dtype) {
  case TGC_DT_F64: {
    double v = (double)x;
    memcpy(p, &v, sizeof v);
    return;
  }
  case TGC_DT_F32: {
    float v = (float)x;
    memcpy(p, &v, sizeof v);
    return;
  }
  case TGC_DT_F16:
  case TGC_DT_BF16:
    store16(p, tgc_rt_encode_i64(t->dtype, x));
    return;
  case TGC_DT_F8E4M3:
  case TGC_DT_F8E5M2:
    *p = (unsigned char)tgc_rt_encode_i64(t->dtype, x);
    return;
  case TGC_DT_I64:
  case TGC_DT_I32:
  case TGC_DT_I16:
  case TGC_DT_I8:
  case TGC_DT_U8:
  case TGC_DT_I4:
  case TGC_DT_BOOL:
    store_int(t->dtype, p, (uint64_t)x);
    return;
  case TGC_DT_COUNT:
    break;
  }
  tgc_unreachable();
}

/* Unit tests of tgc_rt_compare (runtime/tensor.c), the comparison of `tgc run --check`: NaN and infinities
 * matched by position and sign, the relative error over the finite elements (it was NaN when both sides had an
 * infinity at the same place: inf - inf), integers compared exactly (not through a double), per-dtype
 * tolerances (tgc_rt_tolerance, the one table: --verify-each=numerics had its own). */
#include <math.h>
#include <stdint.h>

#include "rt.h"
#include "check.h"

static tgc_rt_tensor floats(tgc_dtype dt, const double *v, int64_t n) {
  tgc_rt_tensor t;
  tgc_rt_err err = {""};
  CHECK(tgc_rt_tensor_alloc(&t, dt, 1, &n, &err) == 0);
  for (int64_t i = 0; i < n; i++)
    tgc_rt_set(&t, (size_t)i, v[i]);
  return t;
}

static tgc_rt_tensor ints(tgc_dtype dt, const int64_t *v, int64_t n) {
  tgc_rt_tensor t;
  tgc_rt_err err = {""};
  CHECK(tgc_rt_tensor_alloc(&t, dt, 1, &n, &err) == 0);
  for (int64_t i = 0; i < n; i++)
    tgc_rt_set_i64(&t, (size_t)i, v[i]);
  return t;
}

static tgc_rt_compare_result cmp_f(tgc_dtype dt, const double *got, const double *ref, int64_t n) {
  tgc_rt_tensor a = floats(dt, got, n), b = floats(dt, ref, n);
  tgc_rt_compare_result r;
  tgc_rt_compare(&a, &b, &r);
  tgc_rt_tensor_free(&a);
  tgc_rt_tensor_free(&b);
  return r;
}

int main(void) {
  tgc_rt_compare_result r;
  /* the same non-finite values at the same places: ok, the error over the finite ones */
  r = cmp_f(TGC_DT_F32, (double[]){1.0, INFINITY, NAN, -INFINITY, 2.0}, (double[]){1.0, INFINITY, NAN, -INFINITY, 2.0},
            5);
  CHECK(r.ok && r.mismatches == 0 && r.rel == 0 && r.tol == 1e-5);
  r = cmp_f(TGC_DT_F32, (double[]){1.0, INFINITY, 2.0}, (double[]){1.0, INFINITY, 2.000001}, 3);
  CHECK(r.ok && r.mismatches == 0 && r.rel > 0 && r.rel < 1e-6);
  /* a NaN or an infinity the reference does not have (or lacks one it has), or an infinity of the other sign */
  r = cmp_f(TGC_DT_F32, (double[]){1.0, NAN}, (double[]){1.0, 2.0}, 2);
  CHECK(!r.ok && r.mismatches == 1 && r.rel == 0);
  r = cmp_f(TGC_DT_F32, (double[]){1.0, 2.0}, (double[]){1.0, NAN}, 2);
  CHECK(!r.ok && r.mismatches == 1);
  r = cmp_f(TGC_DT_F32, (double[]){INFINITY, 2.0}, (double[]){-INFINITY, 2.0}, 2);
  CHECK(!r.ok && r.mismatches == 1);
  r = cmp_f(TGC_DT_F32, (double[]){NAN, 2.0}, (double[]){INFINITY, 2.0}, 2);
  CHECK(!r.ok && r.mismatches == 1);
  r = cmp_f(TGC_DT_F32, (double[]){3.0e38, 2.0}, (double[]){INFINITY, 2.0}, 2);
  CHECK(!r.ok && r.mismatches == 1);
  /* finite values beyond the tolerance; f16 has its own */
  r = cmp_f(TGC_DT_F32, (double[]){1.0, 2.0}, (double[]){1.0, 2.1}, 2);
  CHECK(!r.ok && r.mismatches == 0 && r.rel > 1e-2);
  r = cmp_f(TGC_DT_F16, (double[]){1.0, 2.0}, (double[]){1.0, 2.0078125}, 2);
  CHECK(r.ok && r.tol == 1e-2);
  /* integers exactly: 2^60 + 1 and 2^60 are one double */
  int64_t a[] = {(INT64_C(1) << 60) + 1, 5}, b[] = {INT64_C(1) << 60, 5};
  tgc_rt_tensor ta = ints(TGC_DT_I64, a, 2), tb = ints(TGC_DT_I64, b, 2);
  tgc_rt_compare(&ta, &tb, &r);
  CHECK(!r.ok && r.mismatches == 1 && r.tol == 0);
  tgc_rt_compare(&ta, &ta, &r);
  CHECK(r.ok && r.mismatches == 0 && r.rel == 0);
  tgc_rt_tensor_free(&ta);
  tgc_rt_tensor_free(&tb);
  /* the one table of tolerances */
  CHECK(tgc_rt_tolerance(TGC_DT_F64) == 1e-5 && tgc_rt_tolerance(TGC_DT_F32) == 1e-5);
  CHECK(tgc_rt_tolerance(TGC_DT_F16) == 1e-2 && tgc_rt_tolerance(TGC_DT_BF16) == 1e-2);
  CHECK(tgc_rt_tolerance(TGC_DT_F8E4M3) == 1e-1 && tgc_rt_tolerance(TGC_DT_F8E5M2) == 1e-1);
  CHECK(tgc_rt_tolerance(TGC_DT_I32) == 0 && tgc_rt_tolerance(TGC_DT_BOOL) == 0);
  /* fp8: one element of four a step of the 3-bit mantissa away (1.0 vs 1.125) is within 1e-1 (rel ~0.056) */
  r = cmp_f(TGC_DT_F8E4M3, (double[]){1.125, 1.0, 1.0, 1.0}, (double[]){1.0, 1.0, 1.0, 1.0}, 4);
  CHECK(r.ok && r.tol == 1e-1 && r.rel > 1e-2);
  r = cmp_f(TGC_DT_F8E4M3, (double[]){2.0, 1.0}, (double[]){1.0, 1.0}, 2);
  CHECK(!r.ok && r.mismatches == 0);
  /* a shape that differs is a mismatch */
  tgc_rt_tensor x = floats(TGC_DT_F32, (double[]){1.0, 2.0}, 2), y = floats(TGC_DT_F32, (double[]){1.0}, 1);
  tgc_rt_compare(&x, &y, &r);
  CHECK(!r.ok && r.mismatches == 1);
  tgc_rt_tensor_free(&x);
  tgc_rt_tensor_free(&y);
  return CHECK_EXIT();
}

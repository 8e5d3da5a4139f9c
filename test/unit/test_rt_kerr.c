/* Unit tests of the kernel error codes (runtime/kerr.c): every kind of error of every launch code encodes into one
 * int that decodes back to the same code and kind, an index error is the code itself and the arithmetic errors
 * the negative values the generated kernels write, and each kind has the CPU backend's words. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "program.h"

static void test_values(void) {
  CHECK(tgc_rt_kerr_value(1, TGC_RT_KERR_INDEX) == 1);
  CHECK(tgc_rt_kerr_value(7, TGC_RT_KERR_INDEX) == 7);
  CHECK(tgc_rt_kerr_value(1, TGC_RT_KERR_NEG_EXPONENT) == -5);
  CHECK(tgc_rt_kerr_value(1, TGC_RT_KERR_DIV_ZERO) == -6); /* what test/codegen/host-div-zero.tir expects */
  CHECK(tgc_rt_kerr_value(3, TGC_RT_KERR_DIV_ZERO) == -14);
}

static void test_round_trip(void) {
  const tgc_rt_kerr kinds[] = {TGC_RT_KERR_INDEX, TGC_RT_KERR_NEG_EXPONENT, TGC_RT_KERR_DIV_ZERO};
  int bad = 0;
  for (int code = 1; code <= 100000; code++)
    for (int i = 0; i < 3; i++) {
      int v = tgc_rt_kerr_value(code, kinds[i]), c = -1;
      tgc_rt_kerr k = TGC_RT_KERR_INDEX;
      tgc_rt_kerr_decode(v, &c, &k);
      if (v == 0 || c != code || k != kinds[i]) {
        if (bad++ < 5)
          fprintf(stderr, "code %d kind %d: value %d decodes to code %d kind %d\n", code, (int)kinds[i], v, c, (int)k);
      }
    }
  CHECK(bad == 0);
}

static void test_messages(void) {
  CHECK_STR(tgc_rt_kerr_message(TGC_RT_KERR_INDEX), "an index is out of range");
  CHECK_STR(tgc_rt_kerr_message(TGC_RT_KERR_NEG_EXPONENT), "integer power with a negative exponent");
  CHECK_STR(tgc_rt_kerr_message(TGC_RT_KERR_DIV_ZERO), "integer division by zero");
}

int main(void) {
  test_values();
  test_round_trip();
  test_messages();
  return CHECK_EXIT();
}

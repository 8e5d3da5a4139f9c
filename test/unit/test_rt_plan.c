/* Unit tests of the runtime's plan checks: a plan the verifier would reject (lowered here from IR that skipped
 * it) is refused by tgc_rt_plan_check and tgc_rt_cpu_run with a message, never read past its shape arrays. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "frontend.h"
#include "ir.h"
#include "lower.h"
#include "plan.h"

/* A rank-17 input and result (one above TGC_MAX_RANK): parsed, not verified, lowered. */
static void test_rank_above_limit(void) {
  const char *src = "module @m {\n"
                    "  func @main(%x: f32[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]) -> "
                    "f32[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1] {\n"
                    "    return %x\n"
                    "  }\n"
                    "}\n";
  tgc_diag diag;
  tgc_diag_init(&diag, stderr);
  tgc_module *m = tgc_parse_module("rank17.tir", src, strlen(src), &diag);
  CHECK(m != NULL);
  if (!m) {
    tgc_diag_free(&diag);
    return;
  }
  const tgc_rt_plan *p = tgc_lower_func(m, m->funcs);
  tgc_rt_err err;
  CHECK(tgc_rt_plan_check(p, &err) != 0);
  CHECK_HAS(err.msg, "input '%x' of '@main' has rank 17, above the maximum rank 16");
  tgc_rt_tensor in, out;
  memset(&in, 0, sizeof in);
  memset(&out, 0, sizeof out);
  in.dtype = TGC_DT_F32;
  in.rank = TGC_RT_MAX_RANK; /* the most a tensor holds: the plan is refused before the input is compared */
  CHECK(tgc_rt_cpu_run(p, &in, &out, NULL, &err) != 0);
  CHECK_HAS(err.msg, "above the maximum rank 16");
  tgc_module_destroy(m);
  tgc_diag_free(&diag);
}

int main(void) {
  test_rank_above_limit();
  return CHECK_EXIT();
}

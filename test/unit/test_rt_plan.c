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

/* tgc_rt_plan_check_sizes: the sizes at bound symbols, before anything runs (the CUDA backend calls it; it used
 * to size its buffers from a reshape of another element count and fail in cuMemcpyDtoH, or to report a pad past
 * int64 as an unlocated "2^62 bytes"). The messages are the CPU backend's, at the op. */
static void check_sizes(const char *src, int64_t sym, const char *want) {
  tgc_diag diag;
  tgc_diag_init(&diag, stderr);
  tgc_module *m = tgc_parse_module("s.tir", src, strlen(src), &diag);
  CHECK(m != NULL);
  if (m) {
    const tgc_rt_plan *p = tgc_lower_func(m, m->funcs);
    tgc_rt_err err = {""};
    CHECK(p->nsyms == 1);
    int rc = tgc_rt_plan_check_sizes(p, &sym, &err);
    if (want) {
      CHECK(rc == 1);
      CHECK_HAS(err.msg, want);
    } else {
      CHECK(rc == 0);
    }
    tgc_module_destroy(m);
  }
  tgc_diag_free(&diag);
}

static void test_sizes(void) {
  const char *reshape = "module @m {\n  func @main(%x: f32[B, 3]) -> f32[4, 2] {\n"
                        "    %r = reshape(%x) : f32[4, 2]\n    return %r\n  }\n}\n";
  check_sizes(reshape, 2, "s.tir:3:10: error: 'reshape': cannot reshape f32[2, 3] (6 elements) to f32[4, 2]");
  check_sizes("module @m {\n  func @main(%x: f32[B, 4]) -> f32[8] {\n    %r = reshape(%x) : f32[8]\n"
              "    return %r\n  }\n}\n", 2, NULL);
  const char *pad = "module @m {\n  func @main(%x: f32[N]) -> f32[N + 9223372036854775807] {\n"
                    "    %y = pad(%x) {low = [9223372036854775800], high = [7]}\n    return %y\n  }\n}\n";
  check_sizes(pad, 5, "s.tir:3:10: error: 'pad': dim 0 of the result, 5 + 9223372036854775800 + 7, overflows "
                      "64-bit integers");
  const char *decl = "module @m {\n  func @main(%x: f32[N]) -> f32[N * N] {\n"
                     "    %y = mul(%x, %x) : f32[N]\n    %z = mul(%y, %y) : f32[N * N * N]\n    return %y\n  }\n}\n";
  check_sizes(decl, 3, NULL);
  check_sizes(decl, 3037000500, "s.tir:4:10: error: 'mul': dim 0 of the declared type overflows 64-bit integers");
}

int main(void) {
  test_rank_above_limit();
  test_sizes();
  return CHECK_EXIT();
}

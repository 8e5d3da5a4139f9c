/* Unit tests of the CUDA backend: its one float-literal printer (tgc_cuda_float_literal: every special value in
 * every float dtype is valid CUDA C, no `1f`, `inf` or `nan`, and reads back to the value the dtype holds),
 * generation's refusal of a module with untyped values (it crashed), and the kernel-template expander
 * (tgc_cuda_expand: flags, nesting, else branches, substitution points, the template's own comments). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_codegen.h"
#include "cuda_internal.h"
#include "frontend.h"
#include "check.h"

static char buf[128];

static const char *lit(double v, tgc_dtype dt) {
  tgc_strbuf b;
  tgc_sb_init(&b);
  tgc_cuda_float_literal(&b, v, dt);
  snprintf(buf, sizeof buf, "%s", b.data ? b.data : "");
  tgc_sb_free(&b);
  return buf;
}

static void test_f32(void) {
  CHECK_STR(lit(0.0, TGC_DT_F32), "0.0f");
  CHECK_STR(lit(-0.0, TGC_DT_F32), "(-0.0f)");
  CHECK_STR(lit(1.0, TGC_DT_F32), "1.0f");
  CHECK_STR(lit(-1.0, TGC_DT_F32), "(-1.0f)");
  CHECK_STR(lit(100.0, TGC_DT_F32), "100.0f");
  CHECK_STR(lit(0.1, TGC_DT_F32), "0.1f");
  CHECK_STR(lit(1e-5, TGC_DT_F32), "1e-05f");
  CHECK_STR(lit(1e20, TGC_DT_F32), "1e+20f");
  CHECK_STR(lit(16777217.0, TGC_DT_F32), "16777216.0f"); /* rounded to f32 first */
  CHECK_STR(lit(FLT_MAX, TGC_DT_F32), "3.4028235e+38f");
  CHECK_STR(lit(FLT_MIN, TGC_DT_F32), "1.1754944e-38f");
  CHECK_STR(lit(FLT_TRUE_MIN, TGC_DT_F32), "1e-45f"); /* the smallest subnormal */
  CHECK_STR(lit(1e300, TGC_DT_F32), "INFINITY");       /* beyond f32: the f32 value is infinite */
  CHECK_STR(lit(-1e300, TGC_DT_F32), "(-INFINITY)");
  CHECK_STR(lit(1e-300, TGC_DT_F32), "0.0f");
  CHECK_STR(lit(INFINITY, TGC_DT_F32), "INFINITY");
  CHECK_STR(lit(-INFINITY, TGC_DT_F32), "(-INFINITY)");
  CHECK_STR(lit(NAN, TGC_DT_F32), "NAN");
  CHECK_STR(lit(-NAN, TGC_DT_F32), "NAN");
}

static void test_f64(void) {
  CHECK_STR(lit(0.0, TGC_DT_F64), "0.0");
  CHECK_STR(lit(-0.0, TGC_DT_F64), "(-0.0)");
  CHECK_STR(lit(1.0, TGC_DT_F64), "1.0");
  CHECK_STR(lit(0.1, TGC_DT_F64), "0.1");
  CHECK_STR(lit(1e-300, TGC_DT_F64), "1e-300");
  CHECK_STR(lit(16777217.0, TGC_DT_F64), "16777217.0");
  CHECK_STR(lit(DBL_MAX, TGC_DT_F64), "1.7976931348623157e+308");
  CHECK_STR(lit(-DBL_MAX, TGC_DT_F64), "(-1.7976931348623157e+308)");
  CHECK_STR(lit(DBL_MIN, TGC_DT_F64), "2.2250738585072014e-308");
  CHECK_STR(lit(DBL_TRUE_MIN, TGC_DT_F64), "5e-324");
  CHECK_STR(lit(INFINITY, TGC_DT_F64), "(double)INFINITY");
  CHECK_STR(lit(-INFINITY, TGC_DT_F64), "(-(double)INFINITY)");
  CHECK_STR(lit(NAN, TGC_DT_F64), "(double)NAN");
}

/* f16, bf16 and fp8 values are computed in float: a float literal of the value the dtype holds */
static void test_narrow(void) {
  CHECK_STR(lit(1.0, TGC_DT_F16), "1.0f");
  CHECK_STR(lit(0.0, TGC_DT_F16), "0.0f");
  CHECK_STR(lit(-0.0, TGC_DT_F16), "(-0.0f)");
  CHECK_STR(lit(0.1, TGC_DT_F16), "0.099975586f");
  CHECK_STR(lit(65504.0, TGC_DT_F16), "65504.0f");  /* the largest f16 */
  CHECK_STR(lit(65520.0, TGC_DT_F16), "INFINITY");  /* rounds past it */
  CHECK_STR(lit(5.960464477539063e-08, TGC_DT_F16), "5.9604645e-08f"); /* the smallest subnormal */
  CHECK_STR(lit(1e-8, TGC_DT_F16), "0.0f");
  CHECK_STR(lit(-INFINITY, TGC_DT_F16), "(-INFINITY)");
  CHECK_STR(lit(NAN, TGC_DT_F16), "NAN");
  CHECK_STR(lit(0.1, TGC_DT_BF16), "0.100097656f");
  CHECK_STR(lit(1e39, TGC_DT_BF16), "INFINITY");
  CHECK_STR(lit(1.0, TGC_DT_BF16), "1.0f");
  CHECK_STR(lit(448.0, TGC_DT_F8E4M3), "448.0f");
  CHECK_STR(lit(1000.0, TGC_DT_F8E4M3), "NAN"); /* E4M3FN has no infinity */
  CHECK_STR(lit(INFINITY, TGC_DT_F8E4M3), "NAN");
  CHECK_STR(lit(1e6, TGC_DT_F8E5M2), "INFINITY");
  CHECK_STR(lit(1.5, TGC_DT_I32), "1.5f"); /* a float in an integer kernel is an f32 */
}

/* The literal without its parentheses and suffix, parsed back. */
static double parse_back(const char *s, bool dbl) {
  char t[128];
  size_t n = 0;
  for (const char *p = s; *p && n + 1 < sizeof t; p++)
    if (*p != '(' && *p != ')' && *p != 'f')
      t[n++] = *p;
  t[n] = 0;
  return dbl ? strtod(t, NULL) : (double)strtof(t, NULL);
}

/* Finite values of both precisions, from bit patterns spread over the whole range, read back bit for bit. */
static void test_round_trip(void) {
  uint64_t x = 0x9e3779b97f4a7c15ull;
  int bad = 0;
  for (int i = 0; i < 20000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double d;
    memcpy(&d, &x, sizeof d);
    uint32_t fb = (uint32_t)(x >> 32);
    float f;
    memcpy(&f, &fb, sizeof f);
    if (isfinite(d)) {
      double r = parse_back(lit(d, TGC_DT_F64), true);
      bad += memcmp(&r, &d, sizeof d) != 0;
    }
    if (isfinite(f)) {
      float r = (float)parse_back(lit(f, TGC_DT_F32), false);
      bad += memcmp(&r, &f, sizeof f) != 0;
    }
  }
  CHECK(bad == 0);
}

/* An untyped value (the IR allows it before shape-infer): nothing is generated and the op is the one pending
 * launch, with the reason naming the pass; typed, the same module is one kernel. */
static void test_untyped(void) {
  static const char src[] = "module @m {\n  func @main(%x: f32[4]) -> f32[4] {\n    %y = neg(%x)\n    return %y\n"
                            "  }\n}\n";
  tgc_diag d;
  tgc_diag_init(&d, stderr);
  tgc_module *m = tgc_parse_module("u.tir", src, strlen(src), &d);
  CHECK(m != NULL);
  if (!m)
    return;
  const tgc_op *u = tgc_cuda_first_untyped(m, NULL);
  CHECK(u && u->opcode == TGC_OP_NEG && u->loc.line == 3);
  tgc_cuda_module cm;
  tgc_cuda_generate(m, NULL, &cm);
  CHECK(cm.nkernels == 0 && cm.nsteps == 0 && cm.npending == 1 && cm.pending[0] == u);
  CHECK_STR(cm.why, TGC_CUDA_NEEDS_TYPES);
  CHECK_HAS(cm.why, "run shape-infer");
  tgc_module_destroy(m);
  static const char typed[] = "module @m {\n  func @main(%x: f32[4]) -> f32[4] {\n    %y = neg(%x) : f32[4]\n"
                              "    return %y\n  }\n}\n";
  m = tgc_parse_module("t.tir", typed, strlen(typed), &d);
  CHECK(m && !tgc_cuda_first_untyped(m, NULL));
  if (m) {
    tgc_cuda_generate(m, NULL, &cm);
    CHECK(cm.nkernels == 1 && cm.npending == 0);
    tgc_module_destroy(m);
  }
  tgc_diag_free(&d);
}

/* The entry function is the one asked for (tgc run --entry): generating @main's program for a run of @other
 * read @main's arguments where @other's inputs were given ("input 1 cannot be uploaded: unknown" on a GPU). */
static void test_entry(void) {
  static const char src[] = "module @m {\n  func @other(%i: i32[N]) -> i32[N] {\n    %n = neg(%i) : i32[N]\n"
                            "    return %n\n  }\n  func @main(%x: f32[2], %y: f32[3]) -> f32[2] {\n"
                            "    %e = exp(%x) : f32[2]\n    return %e\n  }\n}\n";
  tgc_diag d;
  tgc_diag_init(&d, stderr);
  tgc_module *m = tgc_parse_module("e.tir", src, strlen(src), &d);
  CHECK(m != NULL);
  if (m) {
    tgc_cuda_module cm;
    tgc_cuda_generate(m, "other", &cm);
    CHECK(cm.func && strcmp(cm.func->name, "other") == 0 && cm.nkernels == 1 && cm.npending == 0);
    CHECK(cm.nkernels == 1 && cm.kernels[0].nargs >= 1 && cm.kernels[0].args[0] == cm.func->body->args[0]);
    tgc_cuda_generate(m, NULL, &cm);
    CHECK(cm.func && strcmp(cm.func->name, "main") == 0);
    tgc_cuda_generate(m, "none", &cm);
    CHECK(!cm.func && cm.nkernels == 0);
    tgc_module_destroy(m);
  }
  tgc_diag_free(&d);
}

static const char *expand(const char *tmpl) {
  static const tgc_cuda_tflag flags[] = {{"on", true}, {"off", false}};
  static const tgc_cuda_tvar vars[] = {{"X", "1"}, {"YY", "two"}, {"EMPTY", ""}};
  tgc_strbuf b;
  tgc_sb_init(&b);
  tgc_cuda_expand(&b, tmpl, flags, 2, vars, 3);
  static char out[512];
  snprintf(out, sizeof out, "%s", b.data ? b.data : "");
  tgc_sb_free(&b);
  return out;
}

static void test_expand(void) {
  CHECK_STR(expand("a @X@ b\n"), "a 1 b\n");
  CHECK_STR(expand("@YY@@X@@EMPTY@;\n\n  x\n"), "two1;\n\n  x\n"); /* blank lines and indentation kept */
  CHECK_STR(expand("//@ a comment\nkept\n//@ if the words of a comment\n"), "kept\n");
  CHECK_STR(expand("//@ if on\nyes\n//@ else\nno\n//@ end\n//@ if off\nno\n//@ else\nyes 2\n//@ end\n"),
            "yes\nyes 2\n");
  /* nested: an inner branch is kept only when every enclosing one is */
  CHECK_STR(expand("//@ if off\n//@ if on\nno\n//@ else\nno\n//@ end\nno\n//@ else\n//@ if on\nin @X@\n"
                   "//@ end\n//@ end\nlast"),
            "in 1\nlast\n");
  /* the embedded attention template: every branch closed, no template line or substitution point left */
  static const tgc_cuda_tflag aflags[] = {{"mma", true}, {"f16", true}, {"causal", true}, {"mask", true},
                                          {"bool_mask", true}, {"float_mask", false}, {"async", false},
                                          {"vec_k", true}, {"vec_v", true}};
  static const char *const names[] = {"NAME", "T", "MASK_PARAM", "SYM_PARAMS", "D", "DV", "VEC", "TPQ", "QPB",
                                      "TK", "HPK", "SQ", "SK", "Q", "K", "V", "O", "M", "SCALE", "OT",
                                      "EPI_PARAMS", "STORE"};
  tgc_cuda_tvar avars[22];
  for (int i = 0; i < 22; i++)
    avars[i] = (tgc_cuda_tvar){names[i], "x"};
  tgc_strbuf b;
  tgc_sb_init(&b);
  tgc_cuda_expand(&b, tgc_cuda_attention_cuh, aflags, 9, avars, 22);
  CHECK(b.data && strstr(b.data, "#define BM 16") && strstr(b.data, "keep = keep && mask[x];"));
  CHECK(b.data && !strstr(b.data, "//@") && !strchr(b.data, '@') && !strstr(b.data, "tgc_cp16(&ks"));
  CHECK(b.data && strstr(b.data, "extern \"C\" __global__ void x(const x *__restrict__ q,"));
  tgc_sb_free(&b);
}

int main(void) {
  test_expand();
  test_untyped();
  test_entry();
  test_f32();
  test_f64();
  test_narrow();
  test_round_trip();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

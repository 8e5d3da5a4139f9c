/* Unit tests of tgc_program_build (codegen/program_build.c): the program of an optimized module mirrors its CUDA
 * program step for step with IR values replaced by buffer indices, outlives the module (every string copied:
 * the ASan build catches a use after free), shares one source between kernels that differ only in name, and
 * says why there is no CUDA part (a launch the backend cannot generate, untyped values) at the op. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda.h"
#include "frontend.h"
#include "pass_manager.h"
#include "program_build.h"
#include "check.h"

static tgc_module *parse(const char *name, const char *src, bool optimize) {
  tgc_diag d;
  tgc_diag_init(&d, stderr);
  tgc_module *m = tgc_parse_module(name, src, strlen(src), &d);
  if (m && tgc_verify_module(m, &d) != 0) {
    tgc_module_destroy(m);
    m = NULL;
  }
  if (m && optimize) {
    tgc_pipeline *pl = tgc_pipeline_parse(tgc_pipeline_for_level(2), &d);
    tgc_pm_options o;
    memset(&o, 0, sizeof o);
    o.dump = stderr;
    CHECK(pl && tgc_pipeline_run(pl, m, &d, &o) == 0);
    tgc_pipeline_destroy(pl);
  }
  tgc_diag_free(&d);
  return m;
}

/* Two layers of the same shape (their kernels differ only in name), a reshape chain and a GEMM with a bias. */
static const char mlp[] =
    "module @mlp {weights = \"w.safetensors\"} {\n"
    "  func @main(%x: f32[B, 8]) -> (f32[B, 8], f32[B, 2, 4]) {\n"
    "    %w = param() {name = \"w\"} : f32[8, 8]\n"
    "    %b = param() {name = \"b\"} : f32[8]\n"
    "    %0 = matmul(%x, %w)\n"
    "    %1 = add(%0, %b)\n"
    "    %2 = tanh(%1)\n"
    "    %3 = exp(%2)\n"
    "    %4 = tanh(%3)\n"
    "    %5 = exp(%4)\n"
    "    %r = reshape(%5) : f32[B, 2, 4]\n"
    "    %y = sigmoid(%5)\n"
    "    return %y, %r\n"
    "  }\n"
    "}\n";

static void test_mirror(void) {
  tgc_module *m = parse("mlp.tir", mlp, true);
  CHECK(m != NULL);
  if (!m)
    return;
  tgc_cuda_module cm;
  tgc_cuda_generate(m, NULL, &cm);
  uint32_t nk = cm.nkernels, ng = cm.ngemms, ns = cm.nsteps;
  tgc_program_opts o = {true, true};
  tgc_rt_program *p = tgc_program_build(m, NULL, &o);
  CHECK(p && p->has_cuda && !p->cuda_why);
  if (!p) {
    tgc_module_destroy(m);
    return;
  }
  CHECK(p->nkernels == nk && p->ngemms == ng && p->nsteps == ns && ng >= 1);
  for (uint32_t s = 0; s < ns && s < p->nsteps; s++)
    CHECK(p->steps[s].gemm == cm.steps[s].gemm && p->steps[s].index == cm.steps[s].index);
  /* distinct canonical sources, and kernels with the same canonical source share it */
  uint32_t distinct = 0;
  for (uint32_t k = 0; k < nk; k++) {
    char *c = tgc_cuda_canonical_source(&cm.kernels[k]);
    bool seen = false;
    for (uint32_t j = 0; j < k && !seen; j++) {
      char *d = tgc_cuda_canonical_source(&cm.kernels[j]);
      seen = strcmp(c, d) == 0;
      if (seen)
        CHECK(p->kernels[k].source == p->kernels[j].source);
      free(d);
    }
    distinct += !seen;
    CHECK(p->kernels[k].source < p->nsources && strcmp(p->sources[p->kernels[k].source].text, c) == 0);
    free(c);
  }
  CHECK(p->nsources == distinct);
  tgc_module_destroy(m); /* the program must not need the module any more */

  CHECK_STR(p->weights, "w.safetensors");
  CHECK(p->ir && strstr(p->ir, "module @mlp"));
  CHECK(p->plan->ninputs == 1 && p->plan->noutputs == 2 && p->plan->nsyms == 1);
  CHECK_STR(p->plan->sym_names[0], "B");
  CHECK_STR(p->plan->input_names[0], "x");
  uint32_t inputs = 0, params = 0;
  for (uint32_t i = 0; i < p->nbuffers; i++) {
    const tgc_rt_pbuffer *b = &p->buffers[i];
    CHECK(b->type.known && b->type.rank >= 1);
    if (b->kind == TGC_RT_BUF_INPUT) {
      inputs++;
      CHECK(b->index == 0 && b->loc[0] == 0);
    } else if (b->kind == TGC_RT_BUF_PARAM) {
      params++;
      CHECK(strcmp(b->name, "w") == 0 || strcmp(b->name, "b") == 0);
      CHECK_HAS(b->loc, "mlp.tir:");
    }
  }
  CHECK(inputs == 1 && params == 2);
  for (uint32_t k = 0; k < p->nkernels; k++) {
    const tgc_rt_pkernel *kk = &p->kernels[k];
    CHECK(kk->nargs >= 1 && kk->code > 0);
    for (uint32_t j = 0; j < kk->nargs; j++)
      CHECK(kk->args[j] < p->nbuffers);
    for (uint32_t j = 0; j < kk->nsyms; j++)
      CHECK(kk->syms[j] < p->plan->nsyms);
    CHECK_HAS(kk->loc, "mlp.tir:");
    CHECK(kk->op[0] != 0 && kk->name[0] == 'k');
  }
  for (uint32_t g = 0; g < p->ngemms; g++) {
    const tgc_rt_pgemm *gg = &p->gemms[g];
    CHECK(gg->a < p->nbuffers && gg->b < p->nbuffers && gg->d < p->nbuffers);
    CHECK(gg->c == TGC_RT_NONE || gg->c < p->nbuffers);
    CHECK(gg->bias == TGC_RT_NONE || gg->bias < p->nbuffers);
    CHECK_HAS(gg->loc, "mlp.tir:");
  }
  /* the reshape of a result shares its operand's buffer: both outputs' buffers exist; %r's is %5's */
  CHECK(p->output_buffers[0] < p->nbuffers && p->output_buffers[1] < p->nbuffers);
  CHECK(p->output_buffers[0] != p->output_buffers[1]);
  CHECK(p->buffers[p->output_buffers[1]].type.rank == 2); /* %5: f32[B, 8], not the reshape's rank 3 */
  tgc_rt_program_free(p);
}

/* A collective: the CPU backend runs it, the CUDA backend does not generate it: the plan alone, with why. */
static void test_pending(void) {
  static const char src[] = "module @c {\n  mesh @one = [tp = 1]\n"
                            "  func @main(%x: f32[4]) -> f32[4] {\n"
                            "    %a = all_reduce(%x) {mesh = @one, axes = [\"tp\"], reduce = \"sum\"} : f32[4]\n"
                            "    return %a\n  }\n}\n";
  tgc_module *m = parse("c.tir", src, false);
  CHECK(m != NULL);
  if (!m)
    return;
  tgc_program_opts o = {true, false};
  tgc_rt_program *p = tgc_program_build(m, NULL, &o);
  tgc_module_destroy(m);
  CHECK(p && !p->has_cuda && p->cuda_why && p->plan->nsteps == 1);
  if (p) {
    CHECK_STR(p->cuda_why_loc, "c.tir:4:10");
    CHECK_STR(p->cuda_why_op, "all_reduce");
    CHECK(p->ir == NULL && p->nkernels == 0);
  }
  tgc_rt_program_free(p);
}

/* Untyped values (-O0): no CUDA part, the reason names shape-infer, at the first untyped op. */
static void test_untyped(void) {
  static const char src[] = "module @u {\n  func @main(%x: f32[4]) -> f32[4] {\n    %y = neg(%x)\n    return %y\n"
                            "  }\n}\n";
  tgc_module *m = parse("u.tir", src, false);
  CHECK(m != NULL);
  if (!m)
    return;
  tgc_program_opts o = {true, false};
  tgc_rt_program *p = tgc_program_build(m, NULL, &o);
  CHECK(tgc_program_build(m, "nope", &o) == NULL);
  tgc_module_destroy(m);
  CHECK(p && !p->has_cuda);
  if (p) {
    CHECK_STR(p->cuda_why, TGC_CUDA_NEEDS_TYPES);
    CHECK_STR(p->cuda_why_loc, "u.tir:3:10");
    CHECK_STR(p->cuda_why_op, "neg");
  }
  tgc_rt_program_free(p);
}

int main(void) {
  test_mirror();
  test_pending();
  test_untyped();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

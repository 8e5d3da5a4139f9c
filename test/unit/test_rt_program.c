/* Unit tests of programs as data (runtime/program.c, program_io.c, program_compile.c): programs built from the
 * example modules and the codegen tests' modules are stored as artifact sections and read back equal in every
 * field; tgc_rt_pbuffer_bytes agrees with codegen's tgc_cuda_buffer_bytes; tgc_rt_program_check refuses each kind
 * of inconsistency; the loader names the section and JSON path of a bad field, and every flipped, truncated or
 * renumbered byte of a stored program either fails cleanly or loads a program that passes the check (run under
 * ASan to catch what does neither); tgc_rt_program_compile adds a CUBIN and a PTX per source. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact.h"
#include "cuda_codegen.h"
#include "frontend.h"
#include "kcache.h"
#include "nvrtc.h"
#include "pass_manager.h"
#include "program_build.h"
#include "session.h"
#include "check.h"

#ifndef TGC_SOURCE_DIR
#define TGC_SOURCE_DIR "."
#endif

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  size_t got = fread(s, 1, (size_t)n, f);
  s[got] = 0;
  fclose(f);
  return s;
}

static tgc_module *parse(const char *name, const char *src, int level) {
  tgc_diag d;
  tgc_diag_init(&d, stderr);
  tgc_module *m = tgc_parse_module(name, src, strlen(src), &d);
  if (m && tgc_verify_module(m, &d) != 0) {
    tgc_module_destroy(m);
    m = NULL;
  }
  if (m && level) {
    tgc_pipeline *pl = tgc_pipeline_parse(tgc_pipeline_for_level(level), &d);
    tgc_pm_options o;
    memset(&o, 0, sizeof o);
    o.dump = stderr;
    CHECK(pl && tgc_pipeline_run(pl, m, &d, &o) == 0);
    tgc_pipeline_destroy(pl);
  }
  tgc_diag_free(&d);
  return m;
}

/* The program of the file PATH (relative to the source tree) at -O LEVEL, or NULL. */
static tgc_rt_program *build_file(const char *path, int level, tgc_module **keep) {
  char full[1024];
  snprintf(full, sizeof full, "%s/%s", TGC_SOURCE_DIR, path);
  char *src = read_text(full);
  CHECK(src != NULL);
  if (!src) {
    fprintf(stderr, "cannot read %s\n", full);
    return NULL;
  }
  tgc_module *m = parse(path, src, level);
  free(src);
  CHECK(m != NULL);
  if (!m)
    return NULL;
  tgc_program_opts o = {true, true};
  tgc_rt_program *p = tgc_program_build(m, NULL, &o);
  if (keep)
    *keep = m;
  else
    tgc_module_destroy(m);
  return p;
}

/* ---- comparing programs field by field ---- */

static int diffs;
#define SAME(cond)                                                                                            \
  do {                                                                                                        \
    if (!(cond)) {                                                                                            \
      if (diffs++ < 5)                                                                                        \
        fprintf(stderr, "%s:%d: programs differ: %s\n", __FILE__, __LINE__, #cond);                           \
    }                                                                                                         \
  } while (0)

static bool str_eq(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

static void same_poly(const tgc_rt_poly *a, const tgc_rt_poly *b) {
  SAME(a->nterms == b->nterms);
  for (uint32_t i = 0; i < a->nterms && i < b->nterms; i++) {
    SAME(a->terms[i].coeff == b->terms[i].coeff && a->terms[i].nsyms == b->terms[i].nsyms);
    for (uint32_t j = 0; j < a->terms[i].nsyms && j < b->terms[i].nsyms; j++)
      SAME(a->terms[i].syms[j] == b->terms[i].syms[j]);
  }
}

static void same_type(const tgc_rt_type *a, const tgc_rt_type *b) {
  SAME(a->known == b->known);
  if (!a->known || !b->known)
    return;
  SAME(a->dtype == b->dtype && a->rank == b->rank);
  for (uint32_t i = 0; i < a->rank && i < b->rank; i++)
    same_poly(&a->dims[i], &b->dims[i]);
}

static void same_attr(const tgc_rt_attr *a, const tgc_rt_attr *b) {
  SAME(str_eq(a->name, b->name) && a->kind == b->kind);
  switch (a->kind) {
  case TGC_RT_ATTR_INT:
    SAME(a->i == b->i && a->f == b->f);
    break;
  case TGC_RT_ATTR_FLOAT: /* bit for bit: -0.0, NaN and infinities included */
    SAME(memcmp(&a->f, &b->f, sizeof a->f) == 0 || (isnan(a->f) && isnan(b->f) && signbit(a->f) == signbit(b->f)));
    break;
  case TGC_RT_ATTR_BOOL:
  case TGC_RT_ATTR_DTYPE:
    SAME(a->i == b->i);
    break;
  case TGC_RT_ATTR_STR:
  case TGC_RT_ATTR_SYM:
    SAME(str_eq(a->s, b->s));
    break;
  case TGC_RT_ATTR_LIST:
    SAME(a->n == b->n);
    for (uint32_t i = 0; i < a->n && i < b->n; i++)
      same_attr(&a->items[i], &b->items[i]);
    break;
  }
}

static void same_plan(const tgc_rt_plan *a, const tgc_rt_plan *b) {
  SAME(str_eq(a->name, b->name) && a->nsyms == b->nsyms && a->nslots == b->nslots);
  for (uint32_t i = 0; i < a->nsyms && i < b->nsyms; i++)
    SAME(str_eq(a->sym_names[i], b->sym_names[i]));
  SAME(a->ninputs == b->ninputs && a->noutputs == b->noutputs && a->nsteps == b->nsteps);
  for (uint32_t i = 0; i < a->ninputs && i < b->ninputs; i++) {
    SAME(a->input_slots[i] == b->input_slots[i] && str_eq(a->input_names[i], b->input_names[i]));
    same_type(&a->input_types[i], &b->input_types[i]);
  }
  for (uint32_t i = 0; i < a->noutputs && i < b->noutputs; i++) {
    SAME(a->output_slots[i] == b->output_slots[i] && str_eq(a->output_names[i], b->output_names[i]));
    same_type(&a->output_types[i], &b->output_types[i]);
  }
  for (uint32_t k = 0; k < a->nsteps && k < b->nsteps; k++) {
    const tgc_rt_step *x = &a->steps[k], *y = &b->steps[k];
    SAME(x->op == y->op && x->nin == y->nin && x->nout == y->nout && x->nattrs == y->nattrs);
    SAME(x->mesh_size == y->mesh_size && str_eq(x->loc, y->loc));
    for (uint32_t i = 0; i < x->nin && i < y->nin; i++)
      SAME(x->in[i] == y->in[i]);
    for (uint32_t i = 0; i < x->nout && i < y->nout; i++) {
      SAME(x->out[i] == y->out[i]);
      same_type(&x->out_types[i], &y->out_types[i]);
    }
    for (uint32_t i = 0; i < x->nattrs && i < y->nattrs; i++)
      same_attr(&x->attrs[i], &y->attrs[i]);
    SAME(!x->region == !y->region);
    if (x->region && y->region)
      same_plan(x->region, y->region);
  }
}

static void same_program(const tgc_rt_program *a, const tgc_rt_program *b) {
  same_plan(a->plan, b->plan);
  SAME(str_eq(a->weights, b->weights) && str_eq(a->ir, b->ir));
  SAME(a->has_cuda == b->has_cuda && str_eq(a->cuda_why, b->cuda_why) && str_eq(a->cuda_why_loc, b->cuda_why_loc) &&
       str_eq(a->cuda_why_op, b->cuda_why_op));
  SAME(a->nbuffers == b->nbuffers && a->nkernels == b->nkernels && a->ngemms == b->ngemms &&
       a->nsteps == b->nsteps && a->nsources == b->nsources && a->nimages == b->nimages);
  for (uint32_t i = 0; i < a->nbuffers && i < b->nbuffers; i++) {
    const tgc_rt_pbuffer *x = &a->buffers[i], *y = &b->buffers[i];
    SAME(x->kind == y->kind && x->index == y->index && str_eq(x->name, y->name));
    same_type(&x->type, &y->type);
    SAME(x->first == y->first && x->last == y->last && x->pitch == y->pitch && x->tail == y->tail &&
         x->pack_w4 == y->pack_w4);
    SAME(str_eq(x->loc, y->loc) && str_eq(x->op, y->op));
  }
  for (uint32_t i = 0; i < a->nkernels && i < b->nkernels; i++) {
    const tgc_rt_pkernel *x = &a->kernels[i], *y = &b->kernels[i];
    SAME(str_eq(x->name, y->name) && str_eq(x->kind, y->kind) && x->source == y->source);
    SAME(x->nargs == y->nargs && x->nsyms == y->nsyms && x->grid == y->grid);
    for (uint32_t j = 0; j < x->nargs && j < y->nargs; j++)
      SAME(x->args[j] == y->args[j]);
    for (uint32_t j = 0; j < x->nsyms && j < y->nsyms; j++)
      SAME(x->syms[j] == y->syms[j]);
    same_poly(&x->count, &y->count);
    same_poly(&x->gy, &y->gy);
    same_poly(&x->gz, &y->gz);
    SAME(x->block == y->block && x->per_block == y->per_block && x->code == y->code);
    SAME(str_eq(x->loc, y->loc) && str_eq(x->op, y->op));
  }
  for (uint32_t i = 0; i < a->ngemms && i < b->ngemms; i++) {
    const tgc_rt_pgemm *x = &a->gemms[i], *y = &b->gemms[i];
    SAME(x->a == y->a && x->b == y->b && x->c == y->c && x->bias == y->bias && x->d == y->d);
    SAME(x->trans_a == y->trans_a && x->trans_b == y->trans_b && x->batch_a == y->batch_a && x->batch_b == y->batch_b);
    same_poly(&x->batch, &y->batch);
    same_poly(&x->m, &y->m);
    same_poly(&x->n, &y->n);
    same_poly(&x->k, &y->k);
    SAME(x->epilogue == y->epilogue && x->dtype == y->dtype && x->ldd == y->ldd && str_eq(x->loc, y->loc));
    SAME(x->ab_dtype == y->ab_dtype && x->alpha == y->alpha && x->scale == y->scale);
  }
  for (uint32_t i = 0; i < a->nsteps && i < b->nsteps; i++) {
    SAME(a->steps[i].gemm == b->steps[i].gemm && a->steps[i].index == b->steps[i].index &&
         a->steps[i].when == b->steps[i].when && a->steps[i].limit == b->steps[i].limit &&
         (a->steps[i].when != TGC_RT_WHEN_RANGE || a->steps[i].lo == b->steps[i].lo));
    same_poly(&a->steps[i].when_poly, &b->steps[i].when_poly);
  }
  for (uint32_t i = 0; i < a->nsources && i < b->nsources; i++)
    SAME(strcmp(a->sources[i].key, b->sources[i].key) == 0 && str_eq(a->sources[i].text, b->sources[i].text));
  for (uint32_t i = 0; i < a->nimages && i < b->nimages; i++) {
    const tgc_rt_pimage *x = &a->images[i], *y = &b->images[i];
    SAME(x->source == y->source && str_eq(x->arch, y->arch) && x->size == y->size);
    SAME(x->size == y->size && (!x->size || memcmp(x->data, y->data, x->size) == 0));
  }
  SAME(!a->output_buffers == !b->output_buffers);
  for (uint32_t i = 0; a->output_buffers && b->output_buffers && i < a->plan->noutputs; i++)
    SAME(a->output_buffers[i] == b->output_buffers[i]);
  SAME(a->memplan_len == b->memplan_len && (!a->memplan) == (!b->memplan));
  SAME(!a->memplan || !b->memplan || memcmp(a->memplan, b->memplan, a->memplan_len) == 0);
}

/* Stores P as sections, reads them back and compares; returns the copy (the caller frees it) or NULL. */
static tgc_rt_program *round_trip(const tgc_rt_program *p, const char *name) {
  tgc_rt_sections s;
  tgc_rt_err err;
  int rc = tgc_rt_program_sections(p, &s, &err);
  CHECK(rc == 0);
  if (rc) {
    fprintf(stderr, "%s: %s\n", name, err.msg);
    return NULL;
  }
  tgc_rt_program *q = NULL;
  rc = tgc_rt_program_read(s.v, s.n, name, &q, &err);
  CHECK(rc == 0 && q);
  if (rc)
    fprintf(stderr, "%s: %s\n", name, err.msg);
  tgc_rt_sections_free(&s);
  if (q) {
    diffs = 0;
    same_program(p, q);
    CHECK(diffs == 0);
    if (diffs)
      fprintf(stderr, "%s: %d differences after a round trip\n", name, diffs);
  }
  return q;
}

/* A hand-made image, so that stored images are compared too without NVRTC. */
static void add_fake_images(tgc_rt_program *p) {
  tgc_rt_pimage *ims = tgc_arena_alloc(&p->arena, sizeof *ims * (2 * p->nsources + 1));
  for (uint32_t i = 0; i < p->nsources; i++) {
    unsigned char *d = tgc_arena_alloc(&p->arena, 8);
    for (int j = 0; j < 8; j++)
      d[j] = (unsigned char)(i * 31 + (uint32_t)j);
    ims[2 * i] = (tgc_rt_pimage){i, "sm_90", d, 8};
    ims[2 * i + 1] = (tgc_rt_pimage){i, "", d, i % 3}; /* an empty PTX too */
  }
  p->images = ims;
  p->nimages = 2 * p->nsources;
}

static const char memplan_text[] = "tgc-memplan 1\nalign 256\ndims\narena -\nbuffers 0\n";

static void test_round_trip_files(void) {
  static const char *const files[] = {
      "examples/mlp.tir",
      "examples/transformer_block.tir",
      "test/codegen/gemm-padded-rows.tir",
      "test/codegen/float-literals.tir",
      "test/codegen/host-literals-constant.tir",
      "test/codegen/host-literals-pad-clamp.tir",
      "test/codegen/host-rows-layernorm.tir",
      "test/codegen/host-rotate-half.tir",
      "test/codegen/constant-results.tir",
      "test/codegen/rank-16.tir",
      "test/codegen/untyped-values.tir",
      "test/codegen/gemm-quantized-fp8.tir",
      "test/codegen/gemm-quantized-int8.tir",
      "test/codegen/gemm-int4w.tir",
  };
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++)
    for (int level = 0; level <= 2; level += 2) {
      tgc_rt_program *p = build_file(files[f], level, NULL);
      CHECK(p != NULL);
      if (!p)
        continue;
      tgc_rt_err err;
      int rc = tgc_rt_program_check(p, &err);
      CHECK(rc == 0);
      if (rc)
        fprintf(stderr, "%s -O%d: %s\n", files[f], level, err.msg);
      if (level == 2)
        CHECK(p->has_cuda || strstr(files[f], "untyped") || strstr(files[f], "constant"));
      if (level == 2 && strstr(files[f], "int4w")) {
        /* wq1 (read by three launches, packed once) and wq2; not wq5 (K 64) */
        uint32_t packed = 0, le = 0, range = 0, gt = 0;
        for (uint32_t i = 0; i < p->nbuffers; i++)
          packed += p->buffers[i].pack_w4;
        for (uint32_t i = 0; i < p->nsteps; i++) {
          le += p->steps[i].when == TGC_RT_WHEN_LE && p->steps[i].limit == 16;
          range += p->steps[i].when == TGC_RT_WHEN_RANGE && p->steps[i].lo == 16 && p->steps[i].limit == 128;
          gt += p->steps[i].when == TGC_RT_WHEN_GT && p->steps[i].limit == 128;
        }
        CHECK(packed == 2);
        /* up to 16 rows and 17..128: 4 w4gemm + 1 epilogue each; above: 4 w4dequant + 4 GEMMs + 1 epilogue */
        CHECK(le == 5 && range == 5 && gt == 9);
      }
      add_fake_images(p);
      if (f == 0) {
        p->memplan = memplan_text;
        p->memplan_len = strlen(memplan_text);
      }
      tgc_rt_program *q = round_trip(p, files[f]);
      /* what was read back stores the same again */
      if (q) {
        tgc_rt_program *r = round_trip(q, files[f]);
        tgc_rt_program_free(r);
      }
      tgc_rt_program_free(q);
      tgc_rt_program_free(p);
    }
}

/* Attributes of every kind, extreme values included: the JSON keeps them exactly. */
static void test_round_trip_values(void) {
  static const char src[] =
      "module @v {\n"
      "  func @main(%x: f32[B, 4]) -> (f32[B, 4], f32[B, 4], i64[3], f32[B, 4]) {\n"
      "    %a = clamp(%x) {min = -inf, max = 3.4028234663852886e+38} : f32[B, 4]\n"
      "    %b = clamp(%x) {min = -0.0, max = 1e-300} : f32[B, 4]\n"
      "    %c = constant() {value = [9223372036854775807, -9223372036854775808, 9007199254740993]} : i64[3]\n"
      "    %d = pad(%x) {low = [0, 0], high = [0, 0], value = nan} : f32[B, 4]\n"
      "    return %a, %b, %c, %d\n"
      "  }\n"
      "}\n";
  tgc_module *m = parse("v.tir", src, 0);
  CHECK(m != NULL);
  if (!m)
    return;
  tgc_program_opts o = {false, false};
  tgc_rt_program *p = tgc_program_build(m, NULL, &o);
  tgc_module_destroy(m);
  CHECK(p && p->plan->nsteps == 4);
  if (!p)
    return;
  const tgc_rt_attr *big = tgc_rt_step_attr(&p->plan->steps[2], "value");
  CHECK(big && big->kind == TGC_RT_ATTR_LIST && big->n == 3);
  tgc_rt_program *q = round_trip(p, "v.tgc");
  if (q) {
    const tgc_rt_attr *v = tgc_rt_step_attr(&q->plan->steps[2], "value");
    CHECK(v && v->n == 3 && v->items[0].i == INT64_MAX && v->items[1].i == INT64_MIN &&
          v->items[2].i == 9007199254740993LL);
    CHECK(isinf(tgc_rt_step_float(&q->plan->steps[0], "min", 0)) && tgc_rt_step_float(&q->plan->steps[0], "min", 0) < 0);
    CHECK(signbit(tgc_rt_step_float(&q->plan->steps[1], "min", 1)));
    CHECK(tgc_rt_step_float(&q->plan->steps[1], "max", 0) == 1e-300);
    CHECK(isnan(tgc_rt_step_float(&q->plan->steps[3], "value", 0)));
    CHECK(!q->has_cuda && q->nbuffers == 0 && q->output_buffers == NULL);
  }
  tgc_rt_program_free(q);
  tgc_rt_program_free(p);
}

/* tgc_rt_pbuffer_bytes is tgc_cuda_buffer_bytes on the program's own buffers, padded rows included. */
static void test_buffer_bytes(void) {
  static const char *const files[] = {"examples/transformer_block.tir", "test/codegen/gemm-padded-rows.tir"};
  for (size_t f = 0; f < 2; f++) {
    tgc_module *m = NULL;
    tgc_rt_program *p = build_file(files[f], 2, &m);
    CHECK(p && m && p->has_cuda);
    if (!p || !m)
      continue;
    tgc_cuda_module cm;
    tgc_cuda_generate(m, NULL, &cm);
    uint32_t nb;
    tgc_cuda_buffer *cb = tgc_cuda_buffers(&cm, &nb);
    CHECK(nb == p->nbuffers);
    int64_t syms[8];
    const char *names[8];
    uint32_t ns = p->plan->nsyms < 8 ? p->plan->nsyms : 8;
    bool padded = false;
    for (int trial = 0; trial < 3; trial++) {
      for (uint32_t s = 0; s < ns; s++) {
        names[s] = p->plan->sym_names[s];
        syms[s] = trial == 0 ? 0 : trial == 1 ? 3 + s : 1000 + 7 * s;
      }
      for (uint32_t i = 0; i < nb && i < p->nbuffers; i++) {
        uint64_t x = 1, y = 2;
        bool ox = tgc_rt_pbuffer_bytes(&p->buffers[i], syms, &x);
        bool oy = tgc_cuda_buffer_bytes(&cb[i], names, syms, ns, &y);
        CHECK(ox == oy && x == y);
        padded = padded || p->buffers[i].pitch;
      }
    }
    if (f == 1)
      CHECK(padded);
    /* overflow: a dim beyond 2^62 bytes */
    for (uint32_t s = 0; s < ns; s++)
      syms[s] = (int64_t)1 << 40;
    bool any_over = false;
    for (uint32_t i = 0; i < p->nbuffers; i++) {
      uint64_t x;
      bool ok = tgc_rt_pbuffer_bytes(&p->buffers[i], syms, &x);
      bool sym = false;
      for (uint32_t d = 0; d < p->buffers[i].type.rank; d++)
        for (uint32_t t = 0; t < p->buffers[i].type.dims[d].nterms; t++)
          sym = sym || p->buffers[i].type.dims[d].terms[t].nsyms;
      uint64_t y;
      CHECK(ok == tgc_cuda_buffer_bytes(&cb[i], names, syms, ns, &y));
      any_over = any_over || (!ok && sym);
    }
    if (f == 0)
      CHECK(any_over);
    free(cb);
    tgc_module_destroy(m);
    tgc_rt_program_free(p);
  }
  /* a rank-0 buffer is one element; a negative dim counts 0 */
  tgc_rt_term neg = {-5, 0, NULL};
  tgc_rt_poly dims[2] = {{1, &neg}, {0, NULL}};
  tgc_rt_pbuffer b;
  memset(&b, 0, sizeof b);
  b.type = (tgc_rt_type){true, TGC_DT_F16, 0, dims};
  uint64_t x = 0;
  CHECK(tgc_rt_pbuffer_bytes(&b, NULL, &x) && x == 2);
  b.type.rank = 1;
  CHECK(tgc_rt_pbuffer_bytes(&b, NULL, &x) && x == 0);
}

/* ---- the check ---- */

static tgc_rt_program *mlp_program(void) { return build_file("examples/mlp.tir", 2, NULL); }

static void expect_check_at(int line, tgc_rt_program *p, const char *want) {
  tgc_rt_err err;
  int rc = tgc_rt_program_check(p, &err);
  CHECK(rc != 0);
  if (!rc)
    fprintf(stderr, "  (the check at line %d passed)\n", line);
  if (rc)
    CHECK_HAS(err.msg, want);
}
#define expect_check(p, want) expect_check_at(__LINE__, p, want)

static void test_check(void) {
  tgc_rt_program *p = mlp_program();
  CHECK(p && p->has_cuda && p->nkernels >= 1 && p->ngemms >= 1 && p->nsteps >= 2);
  if (!p)
    return;
  tgc_rt_err err;
  CHECK(tgc_rt_program_check(p, &err) == 0);
  tgc_rt_pkernel *k = (tgc_rt_pkernel *)&p->kernels[0];
  tgc_rt_pgemm *g = (tgc_rt_pgemm *)&p->gemms[0];
  tgc_rt_pstep *s = (tgc_rt_pstep *)p->steps;
  tgc_rt_pbuffer *b = (tgc_rt_pbuffer *)p->buffers;
  uint32_t *args = (uint32_t *)k->args;

  uint32_t a0 = args[0];
  args[0] = 99;
  char want[128];
  snprintf(want, sizeof want, "kernels[0].args[0]: buffer 99 out of range (%u buffers)", p->nbuffers);
  expect_check(p, want);
  args[0] = a0;

  uint32_t na = k->nargs;
  k->nargs = 0;
  expect_check(p, "kernels[0]: no arguments");
  k->nargs = na;

  uint32_t src = k->source;
  k->source = p->nsources;
  expect_check(p, "kernels[0]: source");
  k->source = src;

  int code = k->code;
  k->code = 0;
  expect_check(p, "kernels[0]: error code 0 out of range");
  k->code = code;

  uint32_t bias = g->bias;
  g->bias = p->nbuffers;
  expect_check(p, "gemms[0].bias: buffer");
  g->bias = TGC_RT_NONE; /* an absent bias is fine */
  CHECK(tgc_rt_program_check(p, &err) == 0);
  g->bias = bias;

  /* a step's condition: a known kind over the plan's symbols */
  s[0].when = (tgc_rt_when)7;
  expect_check(p, "steps[0]: condition 7 is not a condition");
  s[0].when = TGC_RT_WHEN_GT;
  static const uint32_t bad_sym[1] = {9};
  static const tgc_rt_term bad_term[1] = {{1, 1, bad_sym}};
  s[0].when_poly = (tgc_rt_poly){1, bad_term};
  expect_check(p, "steps[0].when.dim");
  s[0].when_poly = (tgc_rt_poly){0, NULL};
  s[0].when = TGC_RT_WHEN_RANGE; /* lo < dim <= limit: empty when lo >= limit */
  s[0].lo = 128;
  s[0].limit = 16;
  expect_check(p, "steps[0]: condition 128 < dim <= 16 holds for no size");
  s[0].lo = 16;
  s[0].limit = 128;
  CHECK(tgc_rt_program_check(p, &err) == 0);
  s[0].lo = s[0].limit = 0;
  s[0].when = TGC_RT_ALWAYS;
  s[0].when_poly = (tgc_rt_poly){0, NULL};

  /* a per-column scale: only an fp8 GEMM's with an f16/bf16 result, an f32 vector */
  g->scale = 0;
  expect_check(p, "gemms[0]: a per-column scale is an fp8 GEMM's");
  g->scale = p->nbuffers;
  expect_check(p, "gemms[0].scale: buffer");
  g->scale = TGC_RT_NONE;

  /* pack_w4: only an i4 param [N, K] of constant dims (N % 8, K % 128) */
  b[0].pack_w4 = true;
  expect_check(p, "buffers[0]: packed for the w4 GEMM but not an i4 param [N, K]");
  b[0].pack_w4 = false;

  int epi = g->epilogue;
  g->epilogue = 17;
  expect_check(p, "gemms[0]: epilogue 17");
  g->epilogue = epi;

  /* quantized GEMMs: only i8 -> i32 and f8e4m3 -> float, only TN, without a cuBLASLt epilogue */
  tgc_dtype dt = g->dtype, abt = g->ab_dtype;
  bool ta = g->trans_a, tb = g->trans_b;
  uint32_t gc = g->c;
  g->ab_dtype = TGC_DT_I8;
  expect_check(p, "gemms[0]: operands of i8 and a result of f32: not a GEMM cuBLASLt computes");
  g->dtype = TGC_DT_I32;
  g->trans_a = false;
  g->trans_b = false;
  expect_check(p, "gemms[0]: a quantized GEMM is \"TN\" (trans_b, not trans_a), without a residual (i8: nor bias or epilogue)");
  g->trans_b = true;
  g->epilogue = 0; /* none */
  g->bias = g->c = TGC_RT_NONE;
  CHECK(tgc_rt_program_check(p, &err) == 0);
  g->dtype = dt;
  g->ab_dtype = abt;
  g->trans_a = ta;
  g->trans_b = tb;
  g->epilogue = epi;
  g->bias = bias;
  g->c = gc;

  /* a kernel run twice, and then one run by no step */
  tgc_rt_pstep s0 = s[0], s1 = s[1];
  s[1] = s[0];
  expect_check(p, "steps[1]:");
  s[1] = s1;
  s[0].index = s[0].gemm ? p->ngemms : p->nkernels;
  expect_check(p, "steps[0]:");
  s[0] = s0;
  p->nsteps--;
  expect_check(p, "not run by any step");
  p->nsteps++;

  /* a temporary's live range beyond the steps */
  uint32_t t = 0;
  while (t < p->nbuffers && b[t].kind != TGC_RT_BUF_TEMP)
    t++;
  CHECK(t < p->nbuffers);
  if (t < p->nbuffers) {
    int last = b[t].last;
    b[t].last = (int)p->nsteps + 1;
    expect_check(p, "live range");
    b[t].last = last;
    int first = b[t].first;
    b[t].first = -1;
    expect_check(p, "live range");
    b[t].first = first;
  }
  b[0].kind = TGC_RT_BUF_INPUT;
  uint32_t idx = b[0].index;
  b[0].index = 7;
  expect_check(p, "buffers[0]: input 7 out of range");
  b[0].index = idx;

  /* a poly symbol beyond the plan's */
  tgc_rt_term bad = {1, 1, (const uint32_t[]){5}};
  tgc_rt_poly old = k->count;
  k->count = (tgc_rt_poly){1, &bad};
  expect_check(p, "kernels[0].count[0]: symbol 5 out of range (1 symbols)");
  k->count = old;

  uint32_t *outs = (uint32_t *)p->output_buffers;
  uint32_t o0 = outs[0];
  outs[0] = 1000;
  expect_check(p, "output_buffers[0]: buffer 1000");
  outs[0] = o0;

  tgc_rt_psource *ps = (tgc_rt_psource *)p->sources;
  ps[0].key[0] = ps[0].key[0] == '0' ? '1' : '0';
  expect_check(p, "sources[0]: key");
  tgc_rt_kernel_key(ps[0].text, ps[0].key);

  /* the plan: ranks, slots, arity, regions */
  tgc_rt_plan *plan = (tgc_rt_plan *)p->plan;
  tgc_rt_step *st = (tgc_rt_step *)plan->steps;
  uint32_t u = 0; /* a step with an operand */
  while (u < plan->nsteps && st[u].nin == 0)
    u++;
  CHECK(u < plan->nsteps);
  if (u < plan->nsteps) {
    uint32_t *in = (uint32_t *)st[u].in;
    uint32_t in0 = in[0];
    in[0] = st[u].out[0]; /* its own result */
    snprintf(want, sizeof want, "plan.steps[%u].in[0]: slot %u is not defined before the step", u, in[0]);
    expect_check(p, want);
    in[0] = in0;
  }
  CHECK(st[0].op == TGC_OP_PARAM);
  st[0].nout = 2; /* the count is checked before the array is read */
  expect_check(p, "plan.steps[0]: 'param' with 2 results");
  st[0].nout = 1;
  st[0].nin = 1;
  expect_check(p, "plan.steps[0]: 'param' with 1 operands");
  st[0].nin = 0;
  tgc_rt_type *ot = (tgc_rt_type *)st[0].out_types;
  uint32_t rank = ot[0].rank;
  ot[0].rank = TGC_RT_MAX_RANK + 1;
  expect_check(p, "plan.steps[0].types[0]: rank 17 is above the maximum rank 16");
  ot[0].rank = rank;
  tgc_opcode op = st[0].op;
  st[0].op = TGC_OP_FUSION;
  expect_check(p, "plan.steps[0]:");
  st[0].op = TGC_OP_RETURN;
  expect_check(p, "terminator");
  st[0].op = op;
  plan->nslots++;
  expect_check(p, "plan: ");
  plan->nslots--;
  CHECK(tgc_rt_program_check(p, &err) == 0);
  tgc_rt_program_free(p);

  /* a fusion region is checked like the plan */
  p = build_file("examples/transformer_block.tir", 2, NULL);
  CHECK(p != NULL);
  if (!p)
    return;
  plan = (tgc_rt_plan *)p->plan;
  st = NULL;
  for (uint32_t i = 0; i < plan->nsteps && !st; i++)
    if (plan->steps[i].region)
      st = (tgc_rt_step *)&plan->steps[i];
  CHECK(st != NULL);
  if (st) {
    tgc_rt_plan *rg = (tgc_rt_plan *)st->region;
    tgc_rt_step *rs = (tgc_rt_step *)rg->steps;
    tgc_rt_type *rt = (tgc_rt_type *)rs[0].out_types;
    tgc_rt_poly *dims = (tgc_rt_poly *)rt[0].dims;
    tgc_rt_poly keep = dims[0];
    dims[0] = (tgc_rt_poly){1, &bad};
    expect_check(p, ".region.steps[0].types[0].dims[0][0]: symbol 5 out of range");
    dims[0] = keep;
    uint32_t ni = rg->ninputs;
    rg->ninputs = ni + 1;
    expect_check(p, ".region: ");
    rg->ninputs = ni;
    CHECK(tgc_rt_program_check(p, &err) == 0);
  }
  tgc_rt_program_free(p);
}

/* ---- the loader's messages ---- */

/* Sections of P with the "program" JSON replaced by the text made of it by replacing FROM with TO (the first
 * occurrence after AFTER), then read: returns the read's status and the message in ERR. */
static int read_edited(const tgc_rt_program *p, const char *after, const char *from, const char *to, tgc_rt_err *err) {
  tgc_rt_sections s;
  CHECK(tgc_rt_program_sections(p, &s, err) == 0);
  const char *json = s.v[0].data;
  const char *start = after ? strstr(json, after) : json;
  const char *at = start ? strstr(start, from) : NULL;
  CHECK(at != NULL);
  if (!at) {
    fprintf(stderr, "no '%s' after '%s' in the program\n", from, after ? after : "");
    tgc_rt_sections_free(&s);
    return 0;
  }
  size_t n = s.v[0].size, fl = strlen(from), tl = strlen(to);
  char *edited = malloc(n - fl + tl + 1);
  size_t pre = (size_t)(at - json);
  memcpy(edited, json, pre);
  memcpy(edited + pre, to, tl);
  memcpy(edited + pre + tl, at + fl, n - pre - fl);
  s.v[0].data = edited;
  s.v[0].size = n - fl + tl;
  tgc_rt_program *q = NULL;
  int rc = tgc_rt_program_read(s.v, s.n, "m.tgc", &q, err);
  tgc_rt_program_free(q);
  free(edited);
  tgc_rt_sections_free(&s);
  return rc;
}

static void expect_read(const tgc_rt_program *p, const char *after, const char *from, const char *to,
                        const char *want) {
  tgc_rt_err err;
  int rc = read_edited(p, after, from, to, &err);
  CHECK(rc != 0);
  if (rc)
    CHECK_HAS(err.msg, want);
}

static void test_load_errors(void) {
  tgc_rt_program *p = mlp_program();
  CHECK(p != NULL);
  if (!p)
    return;
  char want[160];
  snprintf(want, sizeof want, "m.tgc: program: kernels[0].args[0]: buffer 99 out of range (%u buffers)",
           p->nbuffers);
  expect_read(p, "\"kernels\":", "\"args\":[", "\"args\":[99,", want);
  expect_read(p, "\"kernels\":", "\"args\":[", "\"args\":[-1,", "m.tgc: program: kernels[0].args[0]: -1 out of range");
  expect_read(p, "\"kernels\":", "\"args\":[", "\"args\":[1.5,", "kernels[0].args[0]: expected an integer, not 1.5");
  expect_read(p, NULL, "\"plan\":{", "\"plan\":{\"extra\":1,", "m.tgc: program: plan: unknown key 'extra'");
  expect_read(p, NULL, "\"plan\":{\"name\":", "\"plan\":{\"name\":\"x\",\"name\":", "plan: key 'name' given twice");
  expect_read(p, NULL, "\"op\":\"", "\"op\":\"bogus_", "m.tgc: program: plan.steps[0].op: unknown op 'bogus_");
  expect_read(p, NULL, "\"dtype\":\"f32\"", "\"dtype\":\"f33\"", "unknown dtype 'f33'");
  expect_read(p, NULL, "\"grid\":\"", "\"grid\":\"x", "kernels[0].grid: expected one of 'elements'..'attention'");
  expect_read(p, NULL, ",\"loc\":", ",\"lo\":", "m.tgc: program: plan.steps[0]: unknown key 'lo'");
  expect_read(p, NULL, "\"mesh_size\":0,", "", "m.tgc: program: plan.steps[0]: missing key 'mesh_size'");
  expect_read(p, NULL, "\"has_cuda\":true", "\"has_cuda\":1", "has_cuda: expected true or false");
  expect_read(p, NULL, "\"sources\":[\"", "\"sources\":[\"0", "sources[0]: expected a kernel key");
  expect_read(p, NULL, "\"nslots\":", "\"nslots\":1", "m.tgc: program: plan: ");
  expect_read(p, NULL, "{", "[", "m.tgc: program: not valid JSON");
  /* a step of a kernel in range but already run */
  expect_read(p, "\"steps\":[{\"", "{\"kernel\":", "{\"gemm\":0},{\"kernel\":", "m.tgc: program: ");

  /* missing sections: the program, a kernel source */
  tgc_rt_sections s;
  tgc_rt_err err;
  CHECK(tgc_rt_program_sections(p, &s, &err) == 0);
  tgc_rt_program *q = NULL;
  CHECK(tgc_rt_program_read(s.v + 1, s.n - 1, "m.tgc", &q, &err) != 0 && !q);
  CHECK_HAS(err.msg, "m.tgc: has no program section");
  CHECK(s.n >= 2 && strncmp(s.v[1].name, "kernel/", 7) == 0);
  s.v[1].name = "kernel/renamed.cu";
  CHECK(tgc_rt_program_read(s.v, s.n, "m.tgc", &q, &err) != 0);
  CHECK_HAS(err.msg, "m.tgc: program: sources[0]: no section 'kernel/");
  tgc_rt_sections_free(&s);

  /* a source whose text is not the one its key names */
  CHECK(tgc_rt_program_sections(p, &s, &err) == 0);
  char *text = strdup(s.v[1].data);
  text[0] = text[0] == '#' ? '/' : '#';
  s.v[1].data = text;
  CHECK(tgc_rt_program_read(s.v, s.n, "m.tgc", &q, &err) != 0);
  CHECK_HAS(err.msg, "m.tgc: program: sources[0]: key");
  free(text);
  tgc_rt_sections_free(&s);
  tgc_rt_program_free(p);
}

/* ---- damage: every byte region of a stored program ---- */

static unsigned loaded, refused;

/* Reads the sections with section I's bytes replaced by DATA (LEN bytes): a failure must say where; a success must
 * be a program that passes the check and stores again. */
static void read_damaged(tgc_rt_sections *s, size_t i, const void *data, size_t len) {
  tgc_rt_section keep = s->v[i];
  s->v[i].data = data;
  s->v[i].size = len;
  tgc_rt_program *q = NULL;
  tgc_rt_err err;
  err.msg[0] = 0;
  if (tgc_rt_program_read(s->v, s->n, "d.tgc", &q, &err) == 0) {
    loaded++;
    tgc_rt_err e2;
    if (tgc_rt_program_check(q, &e2) != 0) {
      CHECK(!"a loaded program fails the check");
      fprintf(stderr, "  %s\n", e2.msg);
    }
    tgc_rt_sections t;
    if (tgc_rt_program_sections(q, &t, &e2) == 0)
      tgc_rt_sections_free(&t);
    else
      CHECK(!"a loaded program does not store again");
    tgc_rt_program_free(q);
  } else {
    refused++;
    if (strncmp(err.msg, "d.tgc: ", 7) != 0) {
      CHECK(!"a load error does not name the file");
      fprintf(stderr, "  %s\n", err.msg);
    }
    CHECK(q == NULL);
  }
  s->v[i] = keep;
}

static void damage(const tgc_rt_program *p, size_t stride, bool numbers) {
  tgc_rt_sections s;
  tgc_rt_err err;
  CHECK(tgc_rt_program_sections(p, &s, &err) == 0);
  for (size_t i = 0; i < s.n; i++) {
    size_t n = s.v[i].size;
    unsigned char *buf = malloc(n + 16);
    size_t step = strcmp(s.v[i].name, "program") == 0 ? stride : stride * 8 + 1;
    for (size_t at = 0; at < n; at += step) {
      /* truncated there */
      memcpy(buf, s.v[i].data, n);
      read_damaged(&s, i, buf, at);
      /* one byte flipped, or replaced by a character that changes JSON's structure */
      static const unsigned char subs[] = {0x01, 0x80, '9', '"', '}', ']', '-', 0};
      for (size_t k = 0; k < sizeof subs; k++) {
        memcpy(buf, s.v[i].data, n);
        buf[at] = k < 2 ? (unsigned char)(buf[at] ^ subs[k]) : subs[k];
        read_damaged(&s, i, buf, n);
      }
    }
    free(buf);
  }
  /* every number of the JSON renumbered: indices out of range, negative, huge, fractional */
  if (!numbers) {
    tgc_rt_sections_free(&s);
    return;
  }
  const char *json = s.v[0].data;
  size_t n = s.v[0].size;
  static const char *const nums[] = {"0", "1", "-1", "99", "4294967295", "4294967296", "1e300", "0.5", "\"7\""};
  char *buf = malloc(n + 32);
  for (size_t at = 0; at < n; at++) {
    bool digit = json[at] >= '0' && json[at] <= '9';
    if (!digit || (at && ((json[at - 1] >= '0' && json[at - 1] <= '9') || json[at - 1] == '-')))
      continue;
    bool in_string = false; /* a digit inside a string (a location, a key) is not a number */
    for (size_t q = at; q > 0 && json[q - 1] != ',' && json[q - 1] != '[' && json[q - 1] != ':'; q--)
      in_string = true;
    if (in_string)
      continue;
    size_t end = at;
    while (end < n && ((json[end] >= '0' && json[end] <= '9') || json[end] == '.' || json[end] == 'e'))
      end++;
    for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
      size_t l = strlen(nums[k]);
      memcpy(buf, json, at);
      memcpy(buf + at, nums[k], l);
      memcpy(buf + at + l, json + end, n - end);
      read_damaged(&s, 0, buf, at + l + n - end);
    }
  }
  free(buf);
  tgc_rt_sections_free(&s);
}

static void test_damage(void) {
  tgc_rt_program *p = mlp_program();
  CHECK(p != NULL);
  if (!p)
    return;
  add_fake_images(p);
  p->memplan = memplan_text;
  p->memplan_len = strlen(memplan_text);
  damage(p, 1, true);
  tgc_rt_program_free(p);
  p = build_file("examples/transformer_block.tir", 2, NULL);
  CHECK(p != NULL);
  if (p) {
    damage(p, 61, false);
    tgc_rt_program_free(p);
  }
  /* both outcomes happen: damage that keeps the program consistent loads (a location's digit), the rest not */
  CHECK(loaded > 0 && refused > 0);
  printf("damaged programs: %u loaded consistent, %u refused\n", loaded, refused);
}

/* ---- an artifact on disk ---- */

static void test_artifact_file(void) {
  tgc_rt_program *p = mlp_program();
  CHECK(p != NULL);
  if (!p)
    return;
  add_fake_images(p);
  char dir[] = "/tmp/tgc-test-program-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[256];
  snprintf(path, sizeof path, "%s/m.tgc", dir);
  tgc_rt_sections s;
  tgc_rt_err err;
  CHECK(tgc_rt_program_sections(p, &s, &err) == 0);
  CHECK(tgc_rt_artifact_write(path, s.v, s.n, &err) == 0);
  tgc_rt_sections_free(&s);
  tgc_rt_program *q = NULL;
  int rc = tgc_rt_program_load(path, &q, &err);
  CHECK(rc == 0 && q);
  if (rc)
    fprintf(stderr, "%s\n", err.msg);
  if (q) {
    diffs = 0;
    same_program(p, q);
    CHECK(diffs == 0);
  }
  tgc_rt_program_free(q);
  /* an artifact without a program section: made by the compiler before programs were stored */
  tgc_rt_section only = {"ir", "module @m {}", 12};
  CHECK(tgc_rt_artifact_write(path, &only, 1, &err) == 0);
  CHECK(tgc_rt_program_load(path, &q, &err) != 0 && !q);
  CHECK_HAS(err.msg, "has no program section");
  unlink(path);
  CHECK(tgc_rt_program_load(path, &q, &err) != 0);
  rmdir(dir);
  tgc_rt_program_free(p);
}

/* ---- compiling ---- */

static bool has_text(const void *data, size_t n, const char *s) {
  size_t l = strlen(s);
  for (size_t i = 0; i + l <= n; i++)
    if (memcmp((const char *)data + i, s, l) == 0)
      return true;
  return false;
}

static void test_compile(void) {
  tgc_rt_err err;
  tgc_rt_nvrtc *nv = tgc_rt_nvrtc_open(&err);
  if (!nv) {
    printf("test_compile skipped: %s\n", err.msg);
    return;
  }
  char dir[] = "/tmp/tgc-test-kcache-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  setenv("TGC_CACHE_DIR", dir, 1);
  tgc_rt_program *p = mlp_program();
  CHECK(p && p->nsources >= 1);
  if (!p) {
    tgc_rt_nvrtc_close(nv);
    return;
  }
  tgc_rt_kcache_stats st = {0, 0, 0, 0};
  int rc = tgc_rt_program_compile(p, nv, "sm_90", &st, &err);
  CHECK(rc == 0);
  if (rc)
    fprintf(stderr, "%s\n", err.msg);
  CHECK(p->nimages == 2 * p->nsources && st.misses == 2 * p->nsources);
  for (uint32_t i = 0; i < p->nimages; i++) {
    const tgc_rt_pimage *im = &p->images[i];
    CHECK(im->source == i / 2 && im->size > 0);
    if (i % 2 == 0)
      CHECK_STR(im->arch, "sm_90");
    else
      CHECK(im->arch[0] == 0 && has_text(im->data, im->size, ".target sm_90")); /* PTX text */
  }
  /* compiling again adds nothing; a PTX-only architecture adds nothing either (each source has its PTX) */
  CHECK(tgc_rt_program_compile(p, nv, "sm_90", NULL, &err) == 0 && p->nimages == 2 * p->nsources);
  CHECK(tgc_rt_program_compile(p, nv, "compute_80", NULL, &err) == 0 && p->nimages == 2 * p->nsources);
  CHECK(tgc_rt_program_compile(p, nv, "gfx90a", NULL, &err) != 0);
  CHECK_HAS(err.msg, "'gfx90a' is not an architecture");
  tgc_rt_program *q = round_trip(p, "compiled.tgc");
  tgc_rt_program_free(q);
  /* a source NVRTC refuses: the message names the kernel */
  tgc_rt_program *bad = mlp_program();
  if (bad) {
    tgc_rt_psource *ps = (tgc_rt_psource *)bad->sources;
    ps[0].text = "this is not CUDA";
    tgc_rt_kernel_key(ps[0].text, ps[0].key);
    CHECK(tgc_rt_program_compile(bad, nv, "sm_90", NULL, &err) != 0);
    char want[96];
    snprintf(want, sizeof want, "kernel %s: ", bad->kernels[0].name);
    CHECK_HAS(err.msg, want);
    tgc_rt_program_free(bad);
  }
  tgc_rt_program_free(p);
  tgc_rt_nvrtc_close(nv);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
}

/* Runs the loaded program's plan and the plan of the module in its "ir" section on the CPU backend with the same
 * random inputs (every symbol 3) and the same weights: the outputs must be identical, byte for byte. */
static int run_against_ir(const tgc_rt_program *p, const char *path) {
  tgc_module *m = p->ir ? parse("ir", p->ir, 0) : NULL;
  tgc_program_opts o = {false, false};
  tgc_rt_program *ref = m ? tgc_program_build(m, NULL, &o) : NULL;
  tgc_module_destroy(m);
  if (!ref) {
    printf("cpu run: the ir section does not build\n");
    return 1;
  }
  char wpath[1024] = "";
  if (p->weights) {
    const char *slash = strrchr(path, '/');
    if (p->weights[0] == '/' || !slash)
      snprintf(wpath, sizeof wpath, "%s", p->weights);
    else
      snprintf(wpath, sizeof wpath, "%.*s/%s", (int)(slash - path), path, p->weights);
  }
  tgc_rt_err err;
  tgc_rt_weights *st = NULL;
  if (wpath[0] && tgc_rt_weights_open(wpath, &st, &err)) {
    printf("cpu run: %s\n", err.msg);
    tgc_rt_program_free(ref);
    return 1;
  }
  const tgc_rt_plan *plan = p->plan;
  int64_t syms[64];
  for (uint32_t i = 0; i < 64; i++)
    syms[i] = 3;
  tgc_rt_tensor *in = calloc(plan->ninputs + 1, sizeof *in);
  tgc_rt_tensor *out[2] = {calloc(plan->noutputs + 1, sizeof **out), calloc(plan->noutputs + 1, sizeof **out)};
  uint64_t rng = 1;
  int rc = 0;
  for (uint32_t i = 0; i < plan->ninputs && !rc; i++) {
    const tgc_rt_type *t = &plan->input_types[i];
    int64_t shape[TGC_RT_MAX_RANK];
    for (uint32_t d = 0; d < t->rank; d++)
      tgc_rt_poly_eval(&t->dims[d], syms, &shape[d]);
    rc = tgc_rt_tensor_alloc(&in[i], t->dtype, t->rank, shape, &err);
    if (!rc)
      tgc_rt_fill_random(&in[i], &rng);
  }
  tgc_rt_cpu_opts co = {st, wpath, NULL};
  const tgc_rt_plan *plans[2] = {p->plan, ref->plan};
  for (int k = 0; k < 2 && !rc; k++)
    rc = tgc_rt_cpu_run(plans[k], in, out[k], &co, &err);
  uint32_t same = 0;
  for (uint32_t i = 0; i < plan->noutputs && !rc; i++) {
    const tgc_rt_tensor *a = &out[0][i], *b = &out[1][i];
    same += a->dtype == b->dtype && a->rank == b->rank && tgc_rt_tensor_nbytes(a) == tgc_rt_tensor_nbytes(b) &&
            memcmp(a->data, b->data, tgc_rt_tensor_nbytes(a)) == 0;
  }
  if (rc)
    printf("cpu run: %s\n", err.msg);
  else
    printf("cpu run: %u of %u outputs identical to the ir section's\n", same, plan->noutputs);
  rc = rc || same != plan->noutputs;
  for (uint32_t i = 0; i < plan->ninputs; i++)
    tgc_rt_tensor_free(&in[i]);
  for (int k = 0; k < 2; k++) {
    for (uint32_t i = 0; i < plan->noutputs; i++)
      tgc_rt_tensor_free(&out[k][i]);
    free(out[k]);
  }
  free(in);
  tgc_rt_weights_release(st);
  tgc_rt_program_free(ref);
  return rc;
}

/* test_rt_program --load FILE.tgc: the program of an artifact tgc wrote, summarized, stored and read back equal,
 * and run against the module of its "ir" section (for lit tests of the driver's artifacts: artifact.test,
 * test/export/program.test). */
static int load_main(const char *path) {
  tgc_rt_program *p;
  tgc_rt_err err;
  if (tgc_rt_program_load(path, &p, &err)) {
    printf("error: %s\n", err.msg);
    return 1;
  }
  unsigned cubins = 0, ptxs = 0, temps = 0;
  for (uint32_t i = 0; i < p->nimages; i++) {
    cubins += p->images[i].arch[0] != 0;
    ptxs += p->images[i].arch[0] == 0;
  }
  for (uint32_t i = 0; i < p->nbuffers; i++)
    temps += p->buffers[i].kind == TGC_RT_BUF_TEMP;
  printf("program @%s: %u inputs, %u outputs, %u plan steps, %u symbols\n", p->plan->name, p->plan->ninputs,
         p->plan->noutputs, p->plan->nsteps, p->plan->nsyms);
  printf("cuda: %u steps, %u kernels, %u sources, %u gemms, %u buffers (%u temporaries)\n", p->nsteps, p->nkernels,
         p->nsources, p->ngemms, p->nbuffers, temps);
  printf("images: %u CUBIN (%s), %u PTX\n", cubins, cubins ? p->images[0].arch : "-", ptxs);
  printf("memory plan: %zu bytes; ir: %zu bytes; weights %s\n", p->memplan_len, p->ir ? strlen(p->ir) : 0,
         p->weights ? p->weights : "(none)");
  tgc_rt_program *q = round_trip(p, path);
  printf("round trip: %s\n", q && diffs == 0 ? "equal" : "DIFFERENT");
  int rc = q && diffs == 0 && failed == 0 ? 0 : 1;
  rc = run_against_ir(p, path) || rc;
  tgc_rt_program_free(q);
  tgc_rt_program_free(p);
  return rc;
}

/* test_rt_program --write-seeds DIR: the fuzz_program seeds (test/fuzz/fuzz_program.c's format) of the programs
 * of the round-trip files, run from the source root. */
static int seeds_main(const char *dir) {
  static const char *const files[] = {"examples/mlp.tir", "examples/transformer_block.tir",
                                      "test/codegen/gemm-padded-rows.tir", "test/codegen/float-literals.tir",
                                      "test/codegen/host-literals-pad-clamp.tir"};
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
    tgc_rt_program *p = build_file(files[f], 2, NULL);
    if (!p)
      return 1;
    p->memplan = memplan_text;
    p->memplan_len = strlen(memplan_text);
    tgc_rt_sections s;
    tgc_rt_err err;
    if (tgc_rt_program_sections(p, &s, &err)) {
      fprintf(stderr, "%s: %s\n", files[f], err.msg);
      return 1;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/program-%zu.seed", dir, f);
    FILE *out = fopen(path, "wb");
    if (!out)
      return 1;
    for (size_t i = 0; i < s.n; i++) {
      if (strcmp(s.v[i].name, "ir") == 0)
        continue;
      fprintf(out, "%s%s\n", i ? "\n\x1e" : "", s.v[i].name);
      fwrite(s.v[i].data, 1, s.v[i].size, out);
    }
    fclose(out);
    tgc_rt_sections_free(&s);
    tgc_rt_program_free(p);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--load") == 0)
    return load_main(argv[2]);
  if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
    return seeds_main(argv[2]);
  test_round_trip_files();
  test_round_trip_values();
  test_buffer_bytes();
  test_check();
  test_load_errors();
  test_artifact_file();
  test_compile();
  test_damage();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

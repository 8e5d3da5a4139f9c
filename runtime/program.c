/* Programs (program.h): creation, the consistency check every loaded or built program passes, the one size rule
 * of a buffer, and the kernel error codes. The check is what lets the runtime run a program read from a file
 * without trusting it: after it, every index a backend follows is in range. */
#include "program.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "cublaslt.h"

tgc_rt_program *tgc_rt_program_new(void) {
  tgc_rt_program *p = tgc_xcalloc(1, sizeof *p);
  tgc_arena_init(&p->arena);
  return p;
}

void tgc_rt_program_free(tgc_rt_program *p) {
  if (!p)
    return;
  tgc_arena_free(&p->arena);
  free(p);
}

/* ---- the check ---- */

/* Messages name the place by the JSON path of program_io.c's schema ("kernels[3].args[1]"), so that an error in
 * a loaded program points at the field of the "program" section. */

static int check_poly(const tgc_rt_poly *p, uint32_t nsyms, const char *at, tgc_rt_err *err) {
  if (p->nterms && !p->terms)
    return tgc_rt_errorf(err, "%s: %u terms but no term array", at, p->nterms);
  for (uint32_t i = 0; i < p->nterms; i++) {
    const tgc_rt_term *t = &p->terms[i];
    if (t->nsyms && !t->syms)
      return tgc_rt_errorf(err, "%s[%u]: %u symbols but no symbol array", at, i, t->nsyms);
    for (uint32_t j = 0; j < t->nsyms; j++)
      if (t->syms[j] >= nsyms)
        return tgc_rt_errorf(err, "%s[%u]: symbol %u out of range (%u symbols)", at, i, t->syms[j], nsyms);
  }
  return 0;
}

static int check_dtype(tgc_dtype dt, const char *at, tgc_rt_err *err) {
  if ((unsigned)dt >= TGC_DT_COUNT)
    return tgc_rt_errorf(err, "%s: dtype %u is not a dtype", at, (unsigned)dt);
  return 0;
}

/* A type; KNOWN_ONLY: it must be known (a buffer's). */
/* P's value when it has no symbols (0 terms is 0). */
static bool poly_const(const tgc_rt_poly *p, int64_t *out) {
  *out = 0;
  for (uint32_t t = 0; t < p->nterms; t++) {
    if (p->terms[t].nsyms)
      return false;
    *out += p->terms[t].coeff;
  }
  return true;
}

static int check_type(const tgc_rt_type *t, uint32_t nsyms, bool known_only, const char *at, tgc_rt_err *err) {
  if (!t->known) {
    if (known_only)
      return tgc_rt_errorf(err, "%s: the type is unknown", at);
    return 0;
  }
  if (check_dtype(t->dtype, at, err))
    return -1;
  if (t->rank > TGC_RT_MAX_RANK)
    return tgc_rt_errorf(err, "%s: rank %u is above the maximum rank %d", at, t->rank, TGC_RT_MAX_RANK);
  if (t->rank && !t->dims)
    return tgc_rt_errorf(err, "%s: rank %u but no dims", at, t->rank);
  char sub[512];
  for (uint32_t d = 0; d < t->rank; d++) {
    snprintf(sub, sizeof sub, "%s.dims[%u]", at, d);
    if (check_poly(&t->dims[d], nsyms, sub, err))
      return -1;
  }
  return 0;
}

static int check_attr(const tgc_rt_attr *a, bool top, const char *at, tgc_rt_err *err) {
  if (top && !a->name)
    return tgc_rt_errorf(err, "%s: an attribute without a name", at);
  if (!top && a->name)
    return tgc_rt_errorf(err, "%s: a list item with a name", at);
  switch (a->kind) {
  case TGC_RT_ATTR_INT:
  case TGC_RT_ATTR_FLOAT:
    return 0;
  case TGC_RT_ATTR_BOOL:
    if (a->i != 0 && a->i != 1)
      return tgc_rt_errorf(err, "%s: a bool of value %lld", at, (long long)a->i);
    return 0;
  case TGC_RT_ATTR_DTYPE:
    if (a->i < 0 || a->i >= TGC_DT_COUNT)
      return tgc_rt_errorf(err, "%s: dtype %lld is not a dtype", at, (long long)a->i);
    return 0;
  case TGC_RT_ATTR_STR:
  case TGC_RT_ATTR_SYM:
    if (!a->s)
      return tgc_rt_errorf(err, "%s: a string attribute without its string", at);
    return 0;
  case TGC_RT_ATTR_LIST: {
    if (a->n && !a->items)
      return tgc_rt_errorf(err, "%s: %u items but no item array", at, a->n);
    char sub[512];
    for (uint32_t i = 0; i < a->n; i++) {
      snprintf(sub, sizeof sub, "%s[%u]", at, i);
      if (check_attr(&a->items[i], false, sub, err))
        return -1;
    }
    return 0;
  }
  }
  return tgc_rt_errorf(err, "%s: attribute kind %d is not a kind", at, (int)a->kind);
}

/* The structure of PLAN (a function's, or a fusion region's when REGION): slots numbered as codegen/lower.c
 * numbers them (the inputs 0..n-1, then each step's results in order), so that every operand is defined before
 * the step that reads it; every op's arity as ops.def has it; types over the NSYMS symbols of the top plan. */
static int check_plan(const tgc_rt_plan *plan, uint32_t nsyms, bool region, const char *at, tgc_rt_err *err) {
  char sub[512];
  if (!plan->name)
    return tgc_rt_errorf(err, "%s: no name", at);
  if (region && plan->nsyms)
    return tgc_rt_errorf(err, "%s: a fusion region has symbols of its own", at);
  if (!region && plan->nsyms && !plan->sym_names)
    return tgc_rt_errorf(err, "%s: %u symbols but no names", at, plan->nsyms);
  for (uint32_t i = 0; !region && i < plan->nsyms; i++)
    if (!plan->sym_names[i])
      return tgc_rt_errorf(err, "%s.syms[%u]: no name", at, i);
  if ((plan->ninputs && (!plan->input_slots || !plan->input_names || !plan->input_types)) ||
      (plan->noutputs && (!plan->output_slots || !plan->output_names || !plan->output_types)) ||
      (plan->nsteps && !plan->steps))
    return tgc_rt_errorf(err, "%s: a count without its array", at);
  uint32_t defined = 0;
  for (uint32_t i = 0; i < plan->ninputs; i++) {
    snprintf(sub, sizeof sub, "%s.inputs[%u]", at, i);
    if (plan->input_slots[i] != defined)
      return tgc_rt_errorf(err, "%s: slot %u, not %u (inputs take the first slots)", sub, plan->input_slots[i],
                           defined);
    defined++;
    if (!plan->input_names[i])
      return tgc_rt_errorf(err, "%s: no name", sub);
    if (check_type(&plan->input_types[i], nsyms, false, sub, err))
      return -1;
  }
  for (uint32_t k = 0; k < plan->nsteps; k++) {
    const tgc_rt_step *s = &plan->steps[k];
    snprintf(sub, sizeof sub, "%s.steps[%u]", at, k);
    if ((unsigned)s->op >= TGC_OP_COUNT)
      return tgc_rt_errorf(err, "%s: op %u is not an op", sub, (unsigned)s->op);
    const tgc_op_info *info = tgc_op_info_of(s->op);
    if (info->flags & TGC_OPF_TERMINATOR)
      return tgc_rt_errorf(err, "%s: '%s' is a terminator, not a step", sub, info->name);
    if ((int64_t)s->nin < info->min_operands || (info->max_operands >= 0 && (int64_t)s->nin > info->max_operands))
      return tgc_rt_errorf(err, "%s: '%s' with %u operands", sub, info->name, s->nin);
    if (info->nresults >= 0 ? s->nout != (uint32_t)info->nresults : s->nout < 1)
      return tgc_rt_errorf(err, "%s: '%s' with %u results", sub, info->name, s->nout);
    if ((s->nin && !s->in) || (s->nout && (!s->out || !s->out_types)) || (s->nattrs && !s->attrs))
      return tgc_rt_errorf(err, "%s: a count without its array", sub);
    if (!s->loc)
      return tgc_rt_errorf(err, "%s: no location", sub);
    for (uint32_t i = 0; i < s->nin; i++)
      if (s->in[i] >= defined)
        return tgc_rt_errorf(err, "%s.in[%u]: slot %u is not defined before the step (%u slots are)", sub, i,
                             s->in[i], defined);
    for (uint32_t i = 0; i < s->nout; i++) {
      if (s->out[i] != defined)
        return tgc_rt_errorf(err, "%s.out[%u]: slot %u, not the next slot %u", sub, i, s->out[i], defined);
      defined++;
      char t[600];
      snprintf(t, sizeof t, "%s.types[%u]", sub, i);
      if (check_type(&s->out_types[i], nsyms, false, t, err))
        return -1;
    }
    for (uint32_t i = 0; i < s->nattrs; i++) {
      char t[600];
      snprintf(t, sizeof t, "%s.attrs[%u]", sub, i);
      if (check_attr(&s->attrs[i], true, t, err))
        return -1;
    }
    if (s->mesh_size < 0)
      return tgc_rt_errorf(err, "%s: mesh size %lld", sub, (long long)s->mesh_size);
    bool wants_region = (info->flags & TGC_OPF_REGION) != 0;
    if (wants_region != (s->region != NULL))
      return tgc_rt_errorf(err, "%s: '%s' %s", sub, info->name, wants_region ? "without its region" : "with a region");
    if (s->region) {
      char t[600];
      snprintf(t, sizeof t, "%s.region", sub);
      if (s->region->ninputs != s->nin || s->region->noutputs != s->nout)
        return tgc_rt_errorf(err, "%s: %u inputs and %u results for a fusion of %u operands and %u results", t,
                             s->region->ninputs, s->region->noutputs, s->nin, s->nout);
      if (check_plan(s->region, nsyms, true, t, err))
        return -1;
    }
  }
  if (plan->nslots != defined)
    return tgc_rt_errorf(err, "%s: %u slots, but its inputs and steps define %u", at, plan->nslots, defined);
  for (uint32_t i = 0; i < plan->noutputs; i++) {
    snprintf(sub, sizeof sub, "%s.outputs[%u]", at, i);
    if (plan->output_slots[i] >= plan->nslots)
      return tgc_rt_errorf(err, "%s: slot %u out of range (%u slots)", sub, plan->output_slots[i], plan->nslots);
    if (!plan->output_names[i])
      return tgc_rt_errorf(err, "%s: no name", sub);
    if (check_type(&plan->output_types[i], nsyms, false, sub, err))
      return -1;
  }
  return 0;
}

static int check_buffer_index(uint32_t b, uint32_t nbuffers, bool optional, const char *at, tgc_rt_err *err) {
  if (optional && b == TGC_RT_NONE)
    return 0;
  if (b >= nbuffers)
    return tgc_rt_errorf(err, "%s: buffer %u out of range (%u buffers)", at, b, nbuffers);
  return 0;
}

static int check_cuda(const tgc_rt_program *p, tgc_rt_err *err) {
  const tgc_rt_plan *plan = p->plan;
  uint32_t nsyms = plan->nsyms;
  char at[256];
  if ((p->nbuffers && !p->buffers) || (p->nkernels && !p->kernels) || (p->ngemms && !p->gemms) ||
      (p->nsteps && !p->steps) || (p->nsources && !p->sources) || (p->nimages && !p->images))
    return tgc_rt_errorf(err, "a count without its array");
  if (p->nsteps > INT_MAX)
    return tgc_rt_errorf(err, "%u steps", p->nsteps);
  /* every kernel and GEMM is one step's */
  uint32_t nused = p->nkernels + p->ngemms;
  unsigned char *used = tgc_xcalloc(nused + 1, 1);
  int rc = 0;
  for (uint32_t i = 0; i < p->nsteps && !rc; i++) {
    const tgc_rt_pstep *s = &p->steps[i];
    uint32_t n = s->gemm ? p->ngemms : p->nkernels;
    if (s->index >= n)
      rc = tgc_rt_errorf(err, "steps[%u]: %s %u out of range (%u %s)", i, s->gemm ? "gemm" : "kernel", s->index, n,
                         s->gemm ? "gemms" : "kernels");
    else if (s->when != TGC_RT_ALWAYS && s->when != TGC_RT_WHEN_LE && s->when != TGC_RT_WHEN_GT &&
             s->when != TGC_RT_WHEN_RANGE)
      rc = tgc_rt_errorf(err, "steps[%u]: condition %d is not a condition", i, (int)s->when);
    else if (s->when == TGC_RT_WHEN_RANGE && s->lo >= s->limit)
      rc = tgc_rt_errorf(err, "steps[%u]: condition %lld < dim <= %lld holds for no size", i, (long long)s->lo,
                         (long long)s->limit);
    else if (s->when != TGC_RT_ALWAYS && (snprintf(at, sizeof at, "steps[%u].when.dim", i), 0) == 0 &&
             check_poly(&s->when_poly, nsyms, at, err))
      rc = -1;
    else if (used[(s->gemm ? p->nkernels : 0) + s->index]++)
      rc = tgc_rt_errorf(err, "steps[%u]: %s %u is already step %s", i, s->gemm ? "gemm" : "kernel", s->index,
                         "of an earlier step");
  }
  for (uint32_t i = 0; i < nused && !rc; i++)
    if (!used[i])
      rc = tgc_rt_errorf(err, "%s[%u]: not run by any step", i < p->nkernels ? "kernels" : "gemms",
                         i < p->nkernels ? i : i - p->nkernels);
  free(used);
  if (rc)
    return -1;
  for (uint32_t i = 0; i < p->nbuffers; i++) {
    const tgc_rt_pbuffer *b = &p->buffers[i];
    snprintf(at, sizeof at, "buffers[%u]", i);
    switch (b->kind) {
    case TGC_RT_BUF_INPUT:
      if (b->index >= plan->ninputs)
        return tgc_rt_errorf(err, "%s: input %u out of range (%u inputs)", at, b->index, plan->ninputs);
      break;
    case TGC_RT_BUF_PARAM:
      if (!b->name || !b->name[0])
        return tgc_rt_errorf(err, "%s: a param without its weight's name", at);
      break;
    case TGC_RT_BUF_TEMP:
      break;
    default:
      return tgc_rt_errorf(err, "%s: kind %d is not a buffer kind", at, (int)b->kind);
    }
    if (!b->name || !b->loc || !b->op)
      return tgc_rt_errorf(err, "%s: a name, location or op missing", at);
    char t[300];
    snprintf(t, sizeof t, "%s.type", at);
    if (check_type(&b->type, nsyms, true, t, err))
      return -1;
    if (b->first < 0 || b->first > b->last || b->last > (int)p->nsteps)
      return tgc_rt_errorf(err, "%s: live range [%d, %d] outside the %u steps", at, b->first, b->last, p->nsteps);
    if (b->pitch < 0 || b->tail < 0)
      return tgc_rt_errorf(err, "%s: pitch %lld, tail %lld", at, (long long)b->pitch, (long long)b->tail);
    if (b->pack_w4) {
      const tgc_rt_type *bt = &b->type;
      int64_t n = 0, k = 0;
      bool dims = bt->rank == 2 && poly_const(&bt->dims[0], &n) && poly_const(&bt->dims[1], &k);
      if (b->kind != TGC_RT_BUF_PARAM || bt->dtype != TGC_DT_I4 || !dims || n <= 0 || k <= 0 || b->pitch ||
          b->tail || n % TGC_RT_W4_NTILE || k % TGC_RT_W4_KSPAN)
        return tgc_rt_errorf(err, "%s: packed for the w4 GEMM but not an i4 param [N, K] of constant dims, N a multiple "
                             "of %d and K of %d, without padding", at, TGC_RT_W4_NTILE, TGC_RT_W4_KSPAN);
    }
  }
  for (uint32_t i = 0; i < p->nkernels; i++) {
    const tgc_rt_pkernel *k = &p->kernels[i];
    snprintf(at, sizeof at, "kernels[%u]", i);
    if (!k->name || !k->kind || !k->loc || !k->op)
      return tgc_rt_errorf(err, "%s: a name, kind, location or op missing", at);
    if (k->source >= p->nsources)
      return tgc_rt_errorf(err, "%s: source %u out of range (%u sources)", at, k->source, p->nsources);
    if (k->nargs < 1)
      return tgc_rt_errorf(err, "%s: no arguments (a kernel writes its last)", at);
    if (!k->args || (k->nsyms && !k->syms))
      return tgc_rt_errorf(err, "%s: a count without its array", at);
    for (uint32_t j = 0; j < k->nargs; j++) {
      char t[300];
      snprintf(t, sizeof t, "%s.args[%u]", at, j);
      if (check_buffer_index(k->args[j], p->nbuffers, false, t, err))
        return -1;
    }
    for (uint32_t j = 0; j < k->nsyms; j++)
      if (k->syms[j] >= nsyms)
        return tgc_rt_errorf(err, "%s.syms[%u]: symbol %u out of range (%u symbols)", at, j, k->syms[j], nsyms);
    switch (k->grid) {
    case TGC_RT_GRID_ELEMENTS:
    case TGC_RT_GRID_ROWS:
    case TGC_RT_GRID_ATTENTION:
      break;
    default:
      return tgc_rt_errorf(err, "%s: grid %d is not a grid", at, (int)k->grid);
    }
    const tgc_rt_poly *polys[3] = {&k->count, &k->gy, &k->gz};
    static const char *const pn[3] = {"count", "gy", "gz"};
    for (int j = 0; j < 3; j++) {
      char t[300];
      snprintf(t, sizeof t, "%s.%s", at, pn[j]);
      if (check_poly(polys[j], nsyms, t, err))
        return -1;
    }
    if (k->block < 1 || k->block > 1024 || (k->grid != TGC_RT_GRID_ROWS && k->per_block < 1))
      return tgc_rt_errorf(err, "%s: block %u, per_block %u", at, k->block, k->per_block);
    /* the values written to *err, -(4 * code + 2) the largest, must fit an int */
    if (k->code < 1 || k->code > (INT_MAX - 2) / 4)
      return tgc_rt_errorf(err, "%s: error code %d out of range", at, k->code);
  }
  for (uint32_t i = 0; i < p->ngemms; i++) {
    const tgc_rt_pgemm *g = &p->gemms[i];
    snprintf(at, sizeof at, "gemms[%u]", i);
    const uint32_t idx[5] = {g->a, g->b, g->c, g->bias, g->d};
    static const char *const names[5] = {"a", "b", "c", "bias", "d"};
    for (int j = 0; j < 5; j++) {
      char t[300];
      snprintf(t, sizeof t, "%s.%s", at, names[j]);
      if (check_buffer_index(idx[j], p->nbuffers, j == 2 || j == 3, t, err))
        return -1;
    }
    const tgc_rt_poly *polys[4] = {&g->batch, &g->m, &g->n, &g->k};
    static const char *const pn[4] = {"batch", "m", "n", "k"};
    for (int j = 0; j < 4; j++) {
      char t[300];
      snprintf(t, sizeof t, "%s.%s", at, pn[j]);
      if (check_poly(polys[j], nsyms, t, err))
        return -1;
    }
    if (g->epilogue < TGC_RT_EPI_NONE || g->epilogue > TGC_RT_EPI_RELU)
      return tgc_rt_errorf(err, "%s: epilogue %d is not an epilogue", at, g->epilogue);
    if (check_dtype(g->dtype, at, err))
      return -1;
    bool i8 = g->ab_dtype == TGC_DT_I8 && g->dtype == TGC_DT_I32,
         f8 = g->ab_dtype == TGC_DT_F8E4M3 && (g->dtype == TGC_DT_F32 || g->dtype == TGC_DT_F16 || g->dtype == TGC_DT_BF16);
    if (g->ab_dtype != g->dtype && !i8 && !f8)
      return tgc_rt_errorf(err, "%s: operands of %s and a result of %s: not a GEMM cuBLASLt computes", at,
                           tgc_dtype_name(g->ab_dtype), tgc_dtype_name(g->dtype));
    if ((i8 || f8) && (!g->trans_b || g->trans_a || g->c != TGC_RT_NONE || (i8 && (g->bias != TGC_RT_NONE || g->epilogue))))
      return tgc_rt_errorf(err, "%s: a quantized GEMM is \"TN\" (trans_b, not trans_a), without a residual (i8: nor bias or epilogue)", at);
    if (!isfinite(g->alpha) || (g->alpha != 1 && !f8))
      return tgc_rt_errorf(err, "%s: alpha %g (only an fp8 GEMM scales its product)", at, g->alpha);
    if (g->scale != TGC_RT_NONE) {
      char t[300];
      snprintf(t, sizeof t, "%s.scale", at);
      if (check_buffer_index(g->scale, p->nbuffers, false, t, err))
        return -1;
      const tgc_rt_type *st = &p->buffers[g->scale].type;
      if (!f8 || g->dtype == TGC_DT_F32 || g->alpha == 0 || st->dtype != TGC_DT_F32 || st->rank != 1)
        return tgc_rt_errorf(err, "%s: a per-column scale is an fp8 GEMM's with an f16 or bf16 result and a nonzero "
                             "alpha, an f32 vector", at);
    }
    if (g->ldd < 0)
      return tgc_rt_errorf(err, "%s: ldd %lld", at, (long long)g->ldd);
    if (!g->loc)
      return tgc_rt_errorf(err, "%s: no location", at);
  }
  for (uint32_t i = 0; i < p->nsources; i++) {
    const tgc_rt_psource *s = &p->sources[i];
    if (!s->text)
      return tgc_rt_errorf(err, "sources[%u]: no text", i);
    char key[17];
    tgc_rt_kernel_key(s->text, key);
    if (memcmp(key, s->key, sizeof key) != 0)
      return tgc_rt_errorf(err, "sources[%u]: key '%.16s' is not its text's (%s)", i, s->key, key);
    for (uint32_t j = 0; j < i; j++)
      if (strcmp(p->sources[j].key, s->key) == 0)
        return tgc_rt_errorf(err, "sources[%u]: the same text as sources[%u]", i, j);
  }
  for (uint32_t i = 0; i < p->nimages; i++) {
    const tgc_rt_pimage *im = &p->images[i];
    if (im->source >= p->nsources)
      return tgc_rt_errorf(err, "images[%u]: source %u out of range (%u sources)", i, im->source, p->nsources);
    if (!im->arch || (im->size && !im->data))
      return tgc_rt_errorf(err, "images[%u]: no architecture or no data", i);
    for (uint32_t j = 0; j < i; j++)
      if (p->images[j].source == im->source && (strcmp(p->images[j].arch, im->arch) == 0 ||
                                                (im->arch[0] && p->images[j].arch[0]))) /* one CUBIN per source */
        return tgc_rt_errorf(err, "images[%u]: a second %s of source %u", i, im->arch[0] ? "CUBIN" : "PTX",
                             im->source);
  }
  if (p->has_cuda && plan->noutputs && !p->output_buffers)
    return tgc_rt_errorf(err, "no output buffers");
  for (uint32_t i = 0; p->output_buffers && i < plan->noutputs; i++) {
    snprintf(at, sizeof at, "output_buffers[%u]", i);
    if (check_buffer_index(p->output_buffers[i], p->nbuffers, false, at, err))
      return -1;
  }
  if (!p->has_cuda && !p->cuda_why)
    return tgc_rt_errorf(err, "no CUDA program and no reason why");
  if (p->memplan && !p->memplan_len)
    return tgc_rt_errorf(err, "an empty memory plan");
  return 0;
}

int tgc_rt_program_check(const tgc_rt_program *p, tgc_rt_err *err) {
  if (!p->plan)
    return tgc_rt_errorf(err, "plan: none");
  if (check_plan(p->plan, p->plan->nsyms, false, "plan", err))
    return -1;
  if (tgc_rt_plan_check(p->plan, err))
    return -1;
  return check_cuda(p, err);
}

/* ---- sizes ---- */

bool tgc_rt_pbuffer_bytes(const tgc_rt_pbuffer *b, const int64_t *syms, uint64_t *bytes) {
  const tgc_rt_type *t = &b->type;
  uint64_t r = (uint64_t)((tgc_dtype_bits(t->dtype) + 7) / 8);
  bool over = false;
  for (uint32_t d = 0; d < t->rank && !over; d++) {
    int64_t sum = 0;
    over = !tgc_rt_poly_eval(&t->dims[d], syms, &sum);
    if (d == t->rank - 1 && b->pitch && sum > 0) /* padded rows */
      sum = b->pitch;
    over = over || __builtin_mul_overflow(r, (uint64_t)(sum > 0 ? sum : 0), &r);
  }
  *bytes = r;
  return !over && r <= ((uint64_t)1 << 62);
}

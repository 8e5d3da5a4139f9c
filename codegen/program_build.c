/* tgc_program_build: the plan of the entry function (lowered into the program's arena) and its CUDA program
 * converted to the runtime's plain data. IR values become buffer indices, dims become polynomials over the
 * plan's symbols, ops become "file:line:col" strings and names; nothing of the module is referenced after. */
#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "cuda_codegen.h"
#include "lower.h"
#include "program_build.h"

typedef struct {
  tgc_rt_program *p;
  tgc_arena *a;
  tgc_strmap bufs;    /* value pointer bytes -> buffer index + 1 (the buffers' owning values) */
  tgc_strmap sources; /* canonical source -> source index + 1 */
  tgc_rt_psource *src;
  uint32_t nsrc, src_cap;
} builder;

static const char *dup(builder *b, const char *s) { return tgc_arena_strndup(b->a, s ? s : "", s ? strlen(s) : 0); }

static const char *loc_str(builder *b, tgc_loc loc) {
  tgc_strbuf sb;
  tgc_sb_init(&sb);
  tgc_sb_printf(&sb, "%s:%u:%u", loc.file ? loc.file : "<unknown>", loc.line, loc.col);
  const char *s = dup(b, sb.data);
  tgc_sb_free(&sb);
  return s;
}

/* An op's name in messages: a fusion by its kind ('layer_norm'), else its op name. */
static const char *op_label(const tgc_op *op) {
  return op->opcode == TGC_OP_FUSION ? tgc_op_attr_str(op, "kind", "fusion") : tgc_op_name(op->opcode);
}

static uint32_t sym_index(const tgc_rt_plan *plan, const tgc_sym *s) {
  for (uint32_t i = 0; i < plan->nsyms; i++)
    if (strcmp(plan->sym_names[i], s->name) == 0)
      return i;
  /* the plan's symbols are every symbol of the function's types, and a launch's dims come from those types */
  tgc_fatal(__FILE__, __LINE__, "symbol '%s' of the CUDA program is not a symbol of the plan", s->name);
}

static tgc_rt_poly poly_of(builder *b, const tgc_dim *d) {
  tgc_rt_poly r = {0, NULL};
  if (!d)
    return r;
  tgc_rt_term *terms = tgc_arena_alloc(b->a, sizeof *terms * (d->nterms + 1));
  for (uint32_t j = 0; j < d->nterms; j++) {
    uint32_t *syms = tgc_arena_alloc(b->a, sizeof *syms * (d->terms[j].nsyms + 1));
    for (uint32_t k = 0; k < d->terms[j].nsyms; k++)
      syms[k] = sym_index(b->p->plan, d->terms[j].syms[k]);
    terms[j] = (tgc_rt_term){d->terms[j].coeff, d->terms[j].nsyms, syms};
  }
  r.nterms = d->nterms;
  r.terms = terms;
  return r;
}

static tgc_rt_type type_of(builder *b, const tgc_type *t) {
  tgc_rt_type r;
  memset(&r, 0, sizeof r);
  r.known = true;
  r.dtype = t->dtype;
  r.rank = t->rank;
  tgc_rt_poly *dims = tgc_arena_alloc(b->a, sizeof *dims * (t->rank + 1));
  for (uint32_t i = 0; i < t->rank; i++)
    dims[i] = poly_of(b, t->dims[i]);
  r.dims = dims;
  return r;
}

/* The buffer holding V (tgc_cuda_buffers lists the owning values: tgc_value_storage). */
static uint32_t buffer_of(builder *b, const tgc_value *v) {
  const tgc_value *w = tgc_value_storage(v);
  uintptr_t i = (uintptr_t)tgc_strmap_get(&b->bufs, (const char *)&w, sizeof w);
  if (!i)
    tgc_fatal(__FILE__, __LINE__, "a value the CUDA program reads is in none of its buffers");
  return (uint32_t)(i - 1);
}

static uint32_t source_of(builder *b, const tgc_cuda_kernel *k) {
  char *canon = tgc_cuda_canonical_source(k);
  size_t n = strlen(canon);
  uintptr_t i = (uintptr_t)tgc_strmap_get(&b->sources, canon, n);
  if (i) {
    free(canon);
    return (uint32_t)(i - 1);
  }
  if (b->nsrc == b->src_cap) {
    uint32_t cap = b->src_cap ? 2 * b->src_cap : 16;
    b->src = tgc_arena_grow(b->a, b->src, b->src_cap, cap, sizeof *b->src);
    b->src_cap = cap;
  }
  tgc_rt_psource *s = &b->src[b->nsrc];
  s->text = tgc_arena_strndup(b->a, canon, n);
  tgc_rt_kernel_key(s->text, s->key);
  tgc_strmap_put(&b->sources, s->text, n, (void *)(uintptr_t)(b->nsrc + 1));
  free(canon);
  return b->nsrc++;
}

static void convert_cuda(builder *b, const tgc_cuda_module *cm) {
  tgc_rt_program *p = b->p;
  const tgc_func *f = cm->func;
  uint32_t nb;
  tgc_cuda_buffer *cb = tgc_cuda_buffers(cm, &nb);
  tgc_rt_pbuffer *bufs = tgc_arena_alloc(b->a, sizeof *bufs * (nb + 1));
  for (uint32_t i = 0; i < nb; i++) {
    const tgc_value *v = cb[i].v;
    tgc_rt_pbuffer *o = &bufs[i];
    tgc_strmap_put(&b->bufs, (const char *)&v, sizeof v, (void *)(uintptr_t)(i + 1));
    o->kind = cb[i].kind == TGC_CUDA_BUF_INPUT ? TGC_RT_BUF_INPUT
              : cb[i].kind == TGC_CUDA_BUF_PARAM ? TGC_RT_BUF_PARAM
                                                 : TGC_RT_BUF_TEMP;
    o->name = "";
    if (o->kind == TGC_RT_BUF_INPUT) {
      uint32_t a = 0;
      while (a < f->body->nargs && f->body->args[a] != v)
        a++;
      TGC_ASSERT(a < f->body->nargs); /* an input buffer is an argument of the entry function */
      o->index = a;
    } else if (o->kind == TGC_RT_BUF_PARAM) {
      o->name = dup(b, tgc_op_attr_str(v->def, "name", ""));
    }
    o->type = type_of(b, v->type);
    o->first = cb[i].first;
    o->last = cb[i].last;
    o->pitch = cb[i].pitch;
    o->tail = cb[i].tail;
    o->pack_w4 = cb[i].pack_w4;
    o->loc = v->def ? loc_str(b, v->def->loc) : "";
    o->op = v->def ? dup(b, op_label(v->def)) : "";
  }
  free(cb);
  p->nbuffers = nb;
  p->buffers = bufs;

  tgc_rt_pkernel *ks = tgc_arena_alloc(b->a, sizeof *ks * (cm->nkernels + 1));
  for (uint32_t i = 0; i < cm->nkernels; i++) {
    const tgc_cuda_kernel *k = &cm->kernels[i];
    tgc_rt_pkernel *o = &ks[i];
    o->name = dup(b, k->name);
    o->kind = dup(b, k->kind);
    o->source = source_of(b, k);
    uint32_t *args = tgc_arena_alloc(b->a, sizeof *args * (k->nargs + 1));
    for (uint32_t j = 0; j < k->nargs; j++)
      args[j] = buffer_of(b, k->args[j]);
    o->nargs = k->nargs;
    o->args = args;
    uint32_t *syms = tgc_arena_alloc(b->a, sizeof *syms * (k->nsyms + 1));
    for (uint32_t j = 0; j < k->nsyms; j++) {
      tgc_sym s = {k->sym_names[j]};
      syms[j] = sym_index(p->plan, &s);
    }
    o->nsyms = k->nsyms;
    o->syms = syms;
    switch (k->grid) {
    case TGC_CUDA_GRID_ELEMENTS: o->grid = TGC_RT_GRID_ELEMENTS; break;
    case TGC_CUDA_GRID_ROWS: o->grid = TGC_RT_GRID_ROWS; break;
    case TGC_CUDA_GRID_ATTENTION: o->grid = TGC_RT_GRID_ATTENTION; break;
    }
    o->count = poly_of(b, k->count);
    o->gy = poly_of(b, k->gy);
    o->gz = poly_of(b, k->gz);
    o->block = k->block;
    o->per_block = k->per_block;
    o->code = k->code;
    o->loc = loc_str(b, k->op->loc);
    o->op = dup(b, op_label(k->op));
  }
  p->nkernels = cm->nkernels;
  p->kernels = ks;

  tgc_rt_pgemm *gs = tgc_arena_alloc(b->a, sizeof *gs * (cm->ngemms + 1));
  for (uint32_t i = 0; i < cm->ngemms; i++) {
    const tgc_cuda_gemm *g = &cm->gemms[i];
    tgc_rt_pgemm *o = &gs[i];
    o->a = buffer_of(b, g->a);
    o->b = buffer_of(b, g->b);
    o->c = g->c ? buffer_of(b, g->c) : TGC_RT_NONE;
    o->bias = g->bias ? buffer_of(b, g->bias) : TGC_RT_NONE;
    o->d = buffer_of(b, g->d);
    o->trans_a = g->trans_a;
    o->trans_b = g->trans_b;
    o->batch_a = g->batch_a;
    o->batch_b = g->batch_b;
    o->batch = poly_of(b, g->batch);
    o->m = poly_of(b, g->m);
    o->n = poly_of(b, g->n);
    o->k = poly_of(b, g->k);
    o->epilogue = (int)g->epilogue;
    o->dtype = g->dtype;
    o->ab_dtype = g->ab_dtype;
    o->alpha = g->alpha;
    o->scale = g->scale ? buffer_of(b, g->scale) : TGC_RT_NONE;
    o->ldd = g->ldd;
    o->loc = loc_str(b, g->op->loc);
  }
  p->ngemms = cm->ngemms;
  p->gemms = gs;

  tgc_rt_pstep *steps = tgc_arena_alloc(b->a, sizeof *steps * (cm->nsteps + 1));
  for (uint32_t i = 0; i < cm->nsteps; i++) {
    steps[i] = (tgc_rt_pstep){cm->steps[i].gemm, cm->steps[i].index, (tgc_rt_when)cm->steps[i].when, {0, NULL},
                              cm->steps[i].limit, cm->steps[i].lo};
    if (cm->steps[i].when != TGC_CUDA_ALWAYS)
      steps[i].when_poly = poly_of(b, cm->steps[i].when_dim);
  }
  p->nsteps = cm->nsteps;
  p->steps = steps;

  const tgc_op *ret = f->body->last;
  uint32_t *outs = tgc_arena_alloc(b->a, sizeof *outs * (ret->noperands + 1));
  for (uint32_t i = 0; i < ret->noperands; i++)
    outs[i] = buffer_of(b, ret->operands[i].value);
  p->output_buffers = outs;
  p->nsources = b->nsrc;
  p->sources = b->src;
  p->has_cuda = true;
}

tgc_rt_program *tgc_program_build(tgc_module *m, const char *entry, const tgc_program_opts *o) {
  const tgc_func *f = entry ? tgc_module_find_func(m, entry) : tgc_module_find_func(m, "main");
  if (!f && !entry)
    f = m->funcs;
  if (!f)
    return NULL;
  tgc_rt_program *p = tgc_rt_program_new();
  builder b;
  memset(&b, 0, sizeof b);
  b.p = p;
  b.a = &p->arena;
  tgc_strmap_init(&b.bufs, &m->arena);
  tgc_strmap_init(&b.sources, &m->arena);
  p->plan = tgc_lower_func_into(b.a, m, f);
  const tgc_attr *w = tgc_attrs_get(&m->attrs, "weights");
  p->weights = w && w->kind == TGC_ATTR_STR ? dup(&b, w->u.s) : NULL;
  if (o && o->keep_ir) {
    tgc_strbuf text;
    tgc_sb_init(&text);
    tgc_print_module(m, &text);
    p->ir = dup(&b, text.data);
    tgc_sb_free(&text);
  }
  p->cuda_why = "the program was built without its CUDA part";
  p->cuda_why_loc = p->cuda_why_op = "";
  if (o && o->cuda) {
    const tgc_op *untyped = tgc_cuda_first_untyped(m, f->name);
    if (untyped) {
      p->cuda_why = TGC_CUDA_NEEDS_TYPES;
      p->cuda_why_loc = loc_str(&b, untyped->loc);
      p->cuda_why_op = dup(&b, op_label(untyped));
    } else {
      tgc_cuda_module cm;
      tgc_cuda_generate(m, f->name, &cm);
      TGC_ASSERT(cm.func == f);
      if (cm.npending) {
        p->cuda_why = dup(&b, cm.why);
        p->cuda_why_loc = loc_str(&b, cm.pending[0]->loc);
        p->cuda_why_op = dup(&b, op_label(cm.pending[0]));
      } else {
        convert_cuda(&b, &cm);
        p->cuda_why = p->cuda_why_loc = p->cuda_why_op = NULL;
      }
    }
  }
  tgc_strmap_free(&b.bufs);
  tgc_strmap_free(&b.sources);
  return p;
}

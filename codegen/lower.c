/* Lowering of a verified IR function to an execution plan (runtime/plan.h): values become slots, types
 * become polynomials over the function's symbols, attributes are copied, fusion regions become sub-plans.
 * The plan lives in an arena of the caller's choice: the module's, or a program's (then every string is copied
 * too, so that the plan outlives the module). */
#include <stdio.h>
#include <string.h>

#include "lower.h"

typedef struct {
  tgc_module *m;
  tgc_arena *a;
  tgc_strmap syms;  /* tgc_sym* (pointer bytes) -> index + 1 */
  const char **sym_names;
  uint32_t nsyms, sym_cap;
} lowerer;

/* S as the plan keeps it: copied unless the plan lives in the module's arena with S. */
static const char *keep(lowerer *l, const char *s) {
  if (!s || l->a == &l->m->arena)
    return s;
  return tgc_arena_strndup(l->a, s, strlen(s));
}

static uint32_t sym_index(lowerer *l, const tgc_sym *s) {
  uintptr_t v = (uintptr_t)tgc_strmap_get(&l->syms, (const char *)&s, sizeof s);
  if (v)
    return (uint32_t)(v - 1);
  if (l->nsyms == l->sym_cap) {
    uint32_t cap = l->sym_cap ? l->sym_cap * 2 : 8;
    l->sym_names = tgc_arena_grow(l->a, l->sym_names, l->sym_cap, cap, sizeof *l->sym_names);
    l->sym_cap = cap;
  }
  l->sym_names[l->nsyms] = keep(l, s->name);
  tgc_strmap_put(&l->syms, (const char *)&s, sizeof s, (void *)(uintptr_t)(l->nsyms + 1));
  return l->nsyms++;
}

static tgc_rt_type lower_type(lowerer *l, const tgc_type *t) {
  tgc_rt_type r;
  memset(&r, 0, sizeof r);
  if (!t)
    return r;
  r.known = true;
  r.dtype = t->dtype;
  r.rank = t->rank;
  tgc_rt_poly *dims = tgc_arena_alloc(l->a, sizeof *dims * (t->rank + 1));
  for (uint32_t i = 0; i < t->rank; i++) {
    const tgc_dim *d = t->dims[i];
    tgc_rt_term *terms = tgc_arena_alloc(l->a, sizeof *terms * (d->nterms + 1));
    for (uint32_t j = 0; j < d->nterms; j++) {
      uint32_t *syms = tgc_arena_alloc(l->a, sizeof *syms * (d->terms[j].nsyms + 1));
      for (uint32_t k = 0; k < d->terms[j].nsyms; k++)
        syms[k] = sym_index(l, d->terms[j].syms[k]);
      terms[j].coeff = d->terms[j].coeff;
      terms[j].nsyms = d->terms[j].nsyms;
      terms[j].syms = syms;
    }
    dims[i].nterms = d->nterms;
    dims[i].terms = terms;
  }
  r.dims = dims;
  return r;
}

static void lower_attr(lowerer *l, const tgc_attr *a, tgc_rt_attr *out) {
  memset(out, 0, sizeof *out);
  switch (a->kind) {
  case TGC_ATTR_INT:
    out->kind = TGC_RT_ATTR_INT;
    out->i = a->u.i;
    out->f = (double)a->u.i;
    return;
  case TGC_ATTR_FLOAT:
    out->kind = TGC_RT_ATTR_FLOAT;
    out->f = a->u.f;
    return;
  case TGC_ATTR_STR:
    out->kind = TGC_RT_ATTR_STR;
    out->s = keep(l, a->u.s);
    return;
  case TGC_ATTR_BOOL:
    out->kind = TGC_RT_ATTR_BOOL;
    out->i = a->u.b;
    return;
  case TGC_ATTR_DTYPE:
    out->kind = TGC_RT_ATTR_DTYPE;
    out->i = a->u.dt;
    return;
  case TGC_ATTR_SYM:
    out->kind = TGC_RT_ATTR_SYM;
    out->s = keep(l, a->u.s);
    return;
  case TGC_ATTR_LIST: {
    out->kind = TGC_RT_ATTR_LIST;
    out->n = a->u.list.n;
    tgc_rt_attr *items = tgc_arena_alloc(l->a, sizeof *items * (a->u.list.n + 1));
    for (uint32_t i = 0; i < a->u.list.n; i++)
      lower_attr(l, a->u.list.items[i], &items[i]);
    out->items = items;
    return;
  }
  }
  tgc_unreachable();
}

/* Slots are numbered per plan: block arguments first, then op results in order. */
static const tgc_rt_plan *lower_block(lowerer *l, const tgc_block *b, const char *name, const tgc_type *const *rtypes,
                                      uint32_t nres);

static uint32_t slot_of(tgc_strmap *slots, const tgc_value *v) {
  uintptr_t s = (uintptr_t)tgc_strmap_get(slots, (const char *)&v, sizeof v);
  TGC_ASSERT(s != 0); /* the verifier guarantees every operand is defined in its block */
  return (uint32_t)(s - 1);
}

static const tgc_rt_plan *lower_block(lowerer *l, const tgc_block *b, const char *name, const tgc_type *const *rtypes,
                                      uint32_t nres) {
  tgc_rt_plan *p = tgc_arena_alloc(l->a, sizeof *p);
  tgc_strmap slots;
  tgc_strmap_init(&slots, &l->m->arena); /* scratch: the module's arena */
  uint32_t nslots = 0, nsteps = 0;
  p->name = keep(l, name);
  p->ninputs = b->nargs;
  uint32_t *in_slots = tgc_arena_alloc(l->a, sizeof *in_slots * (b->nargs + 1));
  const char **in_names = tgc_arena_alloc(l->a, sizeof *in_names * (b->nargs + 1));
  tgc_rt_type *in_types = tgc_arena_alloc(l->a, sizeof *in_types * (b->nargs + 1));
  for (uint32_t i = 0; i < b->nargs; i++) {
    const tgc_value *v = b->args[i];
    in_slots[i] = nslots;
    tgc_strmap_put(&slots, (const char *)&v, sizeof v, (void *)(uintptr_t)(++nslots));
    in_names[i] = v->name ? keep(l, v->name) : "";
    in_types[i] = lower_type(l, v->type);
  }
  p->input_slots = in_slots;
  p->input_names = in_names;
  p->input_types = in_types;
  for (const tgc_op *o = b->first; o; o = o->next)
    if (!(tgc_op_info_of(o->opcode)->flags & TGC_OPF_TERMINATOR))
      nsteps++;
  tgc_rt_step *steps = tgc_arena_alloc(l->a, sizeof *steps * (nsteps + 1));
  uint32_t k = 0;
  for (const tgc_op *o = b->first; o; o = o->next) {
    if (tgc_op_info_of(o->opcode)->flags & TGC_OPF_TERMINATOR) {
      p->noutputs = o->noperands;
      uint32_t *outs = tgc_arena_alloc(l->a, sizeof *outs * (o->noperands + 1));
      tgc_rt_type *otypes = tgc_arena_alloc(l->a, sizeof *otypes * (o->noperands + 1));
      const char **onames = tgc_arena_alloc(l->a, sizeof *onames * (o->noperands + 1));
      for (uint32_t i = 0; i < o->noperands; i++) {
        outs[i] = slot_of(&slots, o->operands[i].value);
        onames[i] = o->operands[i].value->name ? keep(l, o->operands[i].value->name) : "";
        otypes[i] = lower_type(l, i < nres && rtypes ? rtypes[i] : o->operands[i].value->type);
      }
      p->output_slots = outs;
      p->output_names = onames;
      p->output_types = otypes;
      continue;
    }
    tgc_rt_step *s = &steps[k++];
    s->op = o->opcode;
    s->nin = o->noperands;
    s->nout = o->nresults;
    uint32_t *in = tgc_arena_alloc(l->a, sizeof *in * (o->noperands + 1));
    for (uint32_t i = 0; i < o->noperands; i++)
      in[i] = slot_of(&slots, o->operands[i].value);
    uint32_t *out = tgc_arena_alloc(l->a, sizeof *out * (o->nresults + 1));
    tgc_rt_type *ot = tgc_arena_alloc(l->a, sizeof *ot * (o->nresults + 1));
    for (uint32_t i = 0; i < o->nresults; i++) {
      const tgc_value *r = &o->results[i];
      out[i] = nslots;
      tgc_strmap_put(&slots, (const char *)&r, sizeof r, (void *)(uintptr_t)(++nslots));
      ot[i] = lower_type(l, r->type);
    }
    s->in = in;
    s->out = out;
    s->out_types = ot;
    s->nattrs = o->attrs.n;
    tgc_rt_attr *attrs = tgc_arena_alloc(l->a, sizeof *attrs * (o->attrs.n + 1));
    for (uint32_t i = 0; i < o->attrs.n; i++) {
      lower_attr(l, o->attrs.items[i].value, &attrs[i]);
      attrs[i].name = keep(l, o->attrs.items[i].name);
    }
    s->attrs = attrs;
    char loc[512];
    snprintf(loc, sizeof loc, "%s:%u:%u", o->loc.file ? o->loc.file : "<unknown>", o->loc.line, o->loc.col);
    s->loc = tgc_arena_strndup(l->a, loc, strlen(loc));
    if (o->region) {
      const tgc_type **yt = tgc_arena_alloc(l->a, sizeof *yt * (o->nresults + 1));
      for (uint32_t i = 0; i < o->nresults; i++)
        yt[i] = o->results[i].type;
      s->region = lower_block(l, o->region, tgc_op_attr_str(o, "kind", "fusion"), yt, o->nresults);
    }
    if (tgc_op_info_of(o->opcode)->flags & TGC_OPF_COLLECTIVE) {
      const tgc_attr *ma = tgc_op_attr(o, "mesh"), *axes = tgc_op_attr(o, "axes");
      const tgc_mesh *mesh = ma ? tgc_module_find_mesh(l->m, ma->u.s) : NULL;
      uint32_t bad;
      int64_t size = mesh ? tgc_mesh_group_size(mesh, axes, &bad) : 0;
      s->mesh_size = size > 0 ? size : 0; /* 0: no valid group (the verifier reports why) */
    }
  }
  p->nsteps = nsteps;
  p->steps = steps;
  p->nslots = nslots;
  tgc_strmap_free(&slots);
  return p;
}

const tgc_rt_plan *tgc_lower_func(tgc_module *m, const tgc_func *f) { return tgc_lower_func_into(&m->arena, m, f); }

const tgc_rt_plan *tgc_lower_func_into(tgc_arena *a, tgc_module *m, const tgc_func *f) {
  lowerer l;
  memset(&l, 0, sizeof l);
  l.m = m;
  l.a = a;
  tgc_strmap_init(&l.syms, &m->arena);
  /* argument symbols first, so that their indices follow the signature */
  for (uint32_t i = 0; i < f->body->nargs; i++)
    lower_type(&l, f->body->args[i]->type);
  const tgc_rt_plan *p = lower_block(&l, f->body, f->name, f->result_types, f->nresults);
  tgc_rt_plan *mp = (tgc_rt_plan *)p;
  mp->nsyms = l.nsyms;
  mp->sym_names = l.sym_names;
  tgc_strmap_free(&l.syms);
  return p;
}

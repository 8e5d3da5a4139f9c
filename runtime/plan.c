/* Execution plans (plan.h) apart from any backend: attribute lookup, polynomial evaluation and the plan's rank
 * check, shared by the CPU backend and the programs of program.c (libtgc_rt, without the CPU backend). */
#include <string.h>

#include "plan.h"

const tgc_rt_attr *tgc_rt_step_attr(const tgc_rt_step *s, const char *name) {
  for (uint32_t i = 0; i < s->nattrs; i++)
    if (strcmp(s->attrs[i].name, name) == 0)
      return &s->attrs[i];
  return NULL;
}

int64_t tgc_rt_step_int(const tgc_rt_step *s, const char *name, int64_t dflt) {
  const tgc_rt_attr *a = tgc_rt_step_attr(s, name);
  return a && a->kind == TGC_RT_ATTR_INT ? a->i : dflt;
}

double tgc_rt_step_float(const tgc_rt_step *s, const char *name, double dflt) {
  const tgc_rt_attr *a = tgc_rt_step_attr(s, name);
  return a && (a->kind == TGC_RT_ATTR_FLOAT || a->kind == TGC_RT_ATTR_INT) ? a->f : dflt;
}

bool tgc_rt_step_bool(const tgc_rt_step *s, const char *name, bool dflt) {
  const tgc_rt_attr *a = tgc_rt_step_attr(s, name);
  return a && a->kind == TGC_RT_ATTR_BOOL ? a->i != 0 : dflt;
}

const char *tgc_rt_step_str(const tgc_rt_step *s, const char *name, const char *dflt) {
  const tgc_rt_attr *a = tgc_rt_step_attr(s, name);
  return a && a->kind == TGC_RT_ATTR_STR ? a->s : dflt;
}

bool tgc_rt_poly_eval(const tgc_rt_poly *p, const int64_t *syms, int64_t *out) {
  int64_t sum = 0;
  for (uint32_t i = 0; i < p->nterms; i++) {
    int64_t t = p->terms[i].coeff;
    for (uint32_t j = 0; j < p->terms[i].nsyms; j++)
      if (__builtin_mul_overflow(t, syms[p->terms[i].syms[j]], &t))
        return false;
    if (__builtin_add_overflow(sum, t, &sum))
      return false;
  }
  *out = sum;
  return true;
}

int tgc_rt_plan_check(const tgc_rt_plan *p, tgc_rt_err *err) {
  for (uint32_t i = 0; i < p->ninputs; i++)
    if (p->input_types[i].rank > TGC_RT_MAX_RANK)
      return tgc_rt_errorf(err, "error: input '%%%s' of '@%s' has rank %u, above the maximum rank %d",
                           p->input_names[i], p->name, p->input_types[i].rank, TGC_RT_MAX_RANK);
  for (uint32_t i = 0; i < p->noutputs; i++)
    if (p->output_types[i].rank > TGC_RT_MAX_RANK)
      return tgc_rt_errorf(err, "error: result #%u of '@%s' has rank %u, above the maximum rank %d", i, p->name,
                           p->output_types[i].rank, TGC_RT_MAX_RANK);
  for (uint32_t k = 0; k < p->nsteps; k++) {
    const tgc_rt_step *s = &p->steps[k];
    for (uint32_t i = 0; i < s->nout; i++)
      if (s->out_types[i].rank > TGC_RT_MAX_RANK)
        return tgc_rt_errorf(err, "%s: error: result #%u of '%s' has rank %u, above the maximum rank %d", s->loc, i,
                             tgc_op_name(s->op), s->out_types[i].rank, TGC_RT_MAX_RANK);
    if (s->region && tgc_rt_plan_check(s->region, err))
      return 1;
  }
  return 0;
}


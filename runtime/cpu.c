/* The CPU reference backend: an interpreter of execution plans. Floating-point math is done in double and
 * rounded once into the result's storage dtype (RNE for f16/bf16/fp8), integer math is exact in int64,
 * matmul goes through OpenBLAS (sgemm for f32 and narrower floats, dgemm for f64). Every kernel computes its
 * result shape from its operands and checks it against the declared type; symbolic dims are bound from the
 * input shapes. This backend is the reference other backends are checked against: clarity first.
 * This file is the interpreter and the helpers every kernel shares; the kernels are in cpu_ops.c (math)
 * and cpu_layout.c (data movement and sources). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

/* The plan's helpers (tgc_rt_step_attr, tgc_rt_poly_eval, tgc_rt_plan_check) are in plan.c. */

bool tgc_rt_cpu_supports(tgc_opcode op, tgc_dtype dt) {
  (void)op;
  (void)dt;
  return true;
}

/* ---- errors ---- */

int tgc_rt_cpu_step_error(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return tgc_rt_errorf(c->err, "%s: error: '%s': %s", s->loc, tgc_op_name(s->op), msg);
}

void tgc_rt_cpu_type_str(const tgc_rt_cpu_ctx *c, const tgc_rt_type *t, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%s[", tgc_dtype_name(t->dtype));
  for (uint32_t i = 0; i < t->rank && k < n; i++) {
    int64_t v;
    if (tgc_rt_poly_eval(&t->dims[i], c->syms, &v))
      k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)v);
    else
      k += (size_t)snprintf(buf + k, n - k, "%s?", i ? ", " : "");
  }
  if (k < n)
    snprintf(buf + k, n - k, "]");
}

void tgc_rt_cpu_tensor_type_str(const tgc_rt_tensor *t, char *buf, size_t n) {
  char shape[256];
  tgc_rt_shape_str(t->rank, t->shape, shape, sizeof shape);
  snprintf(buf, n, "%s%s", tgc_dtype_name(t->dtype), shape);
}

/* Evaluates a declared type's shape with the bound symbols. */
int tgc_rt_cpu_eval_shape(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_type *t, int64_t *shape) {
  TGC_ASSERT(t->rank <= TGC_RT_MAX_RANK); /* tgc_rt_plan_check */
  for (uint32_t i = 0; i < t->rank; i++) {
    if (!tgc_rt_poly_eval(&t->dims[i], c->syms, &shape[i]))
      return tgc_rt_cpu_step_error(c, s, "dim %u of the declared type overflows 64-bit integers", i);
    if (shape[i] < 0)
      return tgc_rt_cpu_step_error(c, s, "dim %u of the declared type evaluates to %lld", i, (long long)shape[i]);
  }
  return 0;
}

/* ---- tensors ---- */

int tgc_rt_cpu_alloc_out(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *t, tgc_dtype dt, uint32_t rank,
                         const int64_t *shape) {
  if (tgc_rt_tensor_alloc(t, dt, rank, shape, c->err) != 0) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", c->err->msg);
    return tgc_rt_cpu_step_error(c, s, "%s", msg);
  }
  return 0;
}

/* Row-major strides in elements. */
void tgc_rt_cpu_strides_of(uint32_t rank, const int64_t *shape, int64_t *st) {
  int64_t acc = 1;
  for (uint32_t i = rank; i-- > 0;) {
    st[i] = acc;
    acc *= shape[i];
  }
}

int tgc_rt_cpu_norm_axis(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, int64_t axis, uint32_t rank, const char *what) {
  if (axis < -(int64_t)rank || axis >= (int64_t)rank || (rank == 0 && axis != 0 && axis != -1)) {
    tgc_rt_cpu_step_error(c, s, "%s %lld is out of range for rank %u", what, (long long)axis, rank);
    return -1;
  }
  return (int)(axis < 0 ? axis + rank : axis);
}

/* ---- the interpreter ---- */

static int run_plan(tgc_rt_cpu_ctx *c, const tgc_rt_plan *p, const tgc_rt_tensor *inputs, tgc_rt_tensor *outputs);

static int check_result(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, uint32_t i, const tgc_rt_tensor *t) {
  const tgc_rt_type *d = &s->out_types[i];
  if (!d->known)
    return 0;
  int64_t shape[TGC_RT_MAX_RANK];
  if (tgc_rt_cpu_eval_shape(c, s, d, shape))
    return -1;
  bool ok = d->dtype == t->dtype && d->rank == t->rank;
  for (uint32_t k = 0; ok && k < d->rank; k++)
    ok = shape[k] == t->shape[k];
  if (ok)
    return 0;
  char got[256], want[256];
  tgc_rt_cpu_tensor_type_str(t, got, sizeof got);
  tgc_rt_cpu_type_str(c, d, want, sizeof want);
  return tgc_rt_cpu_step_error(c, s, "result #%u is %s, but its declared type is %s", i, got, want);
}

static int run_step(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *vals) {
  const tgc_rt_tensor *in[64];
  const tgc_rt_tensor **inp = s->nin <= 64 ? in : tgc_xmalloc(sizeof *inp * s->nin);
  for (uint32_t i = 0; i < s->nin; i++)
    inp[i] = &vals[s->in[i]];
  tgc_rt_tensor *out = &vals[s->out[0 < s->nout ? 0 : 0]];
  int rc = 0;
  switch (s->op) {
  case TGC_OP_NEG:
  case TGC_OP_ABS:
  case TGC_OP_EXP:
  case TGC_OP_LOG:
  case TGC_OP_SQRT:
  case TGC_OP_RSQRT:
  case TGC_OP_TANH:
  case TGC_OP_ERF:
  case TGC_OP_SIGMOID:
  case TGC_OP_RELU:
  case TGC_OP_SILU:
  case TGC_OP_SIN:
  case TGC_OP_COS:
  case TGC_OP_NOT:
  case TGC_OP_GELU:
  case TGC_OP_CAST:
  case TGC_OP_CLAMP:
  case TGC_OP_ADD:
  case TGC_OP_SUB:
  case TGC_OP_MUL:
  case TGC_OP_DIV:
  case TGC_OP_POW:
  case TGC_OP_MAXIMUM:
  case TGC_OP_MINIMUM:
  case TGC_OP_EQ:
  case TGC_OP_NE:
  case TGC_OP_LT:
  case TGC_OP_LE:
  case TGC_OP_GT:
  case TGC_OP_GE:
  case TGC_OP_AND:
  case TGC_OP_OR:
  case TGC_OP_WHERE:
    rc = tgc_rt_cpu_elementwise(c, s, inp, out);
    break;
  case TGC_OP_REDUCE_SUM:
  case TGC_OP_REDUCE_MEAN:
  case TGC_OP_REDUCE_MAX:
  case TGC_OP_REDUCE_MIN:
  case TGC_OP_ARGMAX:
    rc = tgc_rt_cpu_reduce(c, s, inp[0], out);
    break;
  case TGC_OP_CUMSUM:
    rc = tgc_rt_cpu_cumsum(c, s, inp[0], out);
    break;
  case TGC_OP_SOFTMAX:
  case TGC_OP_LOG_SOFTMAX:
    rc = tgc_rt_cpu_softmax(c, s, inp[0], out);
    break;
  case TGC_OP_LAYER_NORM:
  case TGC_OP_RMS_NORM:
    rc = tgc_rt_cpu_norm(c, s, inp, out);
    break;
  case TGC_OP_MATMUL:
    rc = tgc_rt_cpu_matmul(c, s, inp[0], inp[1], out);
    break;
  case TGC_OP_ATTENTION:
    rc = tgc_rt_cpu_attention(c, s, inp, out);
    break;
  case TGC_OP_RESHAPE:
    rc = tgc_rt_cpu_reshape(c, s, inp[0], out);
    break;
  case TGC_OP_TRANSPOSE:
    rc = tgc_rt_cpu_transpose(c, s, inp[0], out);
    break;
  case TGC_OP_BROADCAST_TO:
    rc = tgc_rt_cpu_broadcast_to(c, s, inp[0], out);
    break;
  case TGC_OP_SLICE:
    rc = tgc_rt_cpu_slice(c, s, inp[0], out);
    break;
  case TGC_OP_CONCAT:
    rc = tgc_rt_cpu_concat(c, s, inp, out);
    break;
  case TGC_OP_SPLIT: {
    /* results are consecutive slots: lowering numbers an op's results in order */
    rc = tgc_rt_cpu_split(c, s, inp[0], &vals[s->out[0]]);
    break;
  }
  case TGC_OP_GATHER:
    rc = tgc_rt_cpu_gather(c, s, inp[0], inp[1], out);
    break;
  case TGC_OP_EMBEDDING:
    rc = tgc_rt_cpu_embedding(c, s, inp[0], inp[1], out);
    break;
  case TGC_OP_IOTA:
    rc = tgc_rt_cpu_iota(c, s, out);
    break;
  case TGC_OP_PAD:
    rc = tgc_rt_cpu_pad(c, s, inp[0], out);
    break;
  case TGC_OP_PARAM:
    rc = tgc_rt_cpu_param(c, s, out);
    break;
  case TGC_OP_CONSTANT:
    rc = tgc_rt_cpu_constant(c, s, out);
    break;
  case TGC_OP_FUSION: {
    tgc_rt_tensor *args = tgc_xcalloc(s->nin + 1, sizeof *args);
    for (uint32_t i = 0; i < s->nin; i++)
      args[i] = *inp[i]; /* borrowed: the region reads, never frees, its arguments */
    rc = run_plan(c, s->region, args, &vals[s->out[0]]);
    free(args);
    break;
  }
  case TGC_OP_YIELD:
  case TGC_OP_RETURN:
    tgc_unreachable(); /* terminators are not steps */
  case TGC_OP_QUANTIZE:
  case TGC_OP_DEQUANTIZE:
    rc = tgc_rt_cpu_quant(c, s, inp, out);
    break;
  case TGC_OP_ALL_REDUCE:
  case TGC_OP_ALL_GATHER:
  case TGC_OP_REDUCE_SCATTER:
    if (s->mesh_size < 1) {
      rc = tgc_rt_cpu_step_error(c, s,
                                 "no valid device group (a mesh axis it names is missing, or the group is too large)");
      break;
    }
    if (s->mesh_size != 1) {
      rc = tgc_rt_cpu_step_error(c, s, "the CPU backend runs one device; a group of %lld devices needs the "
                                 "sharding simulation", (long long)s->mesh_size);
      break;
    }
    rc = tgc_rt_cpu_alloc_out(c, s, out, inp[0]->dtype, inp[0]->rank, inp[0]->shape);
    for (size_t e = 0; rc == 0 && e < tgc_rt_cpu_numel(out); e++)
      tgc_rt_cpu_copy_elem(out, e, inp[0], e);
    break;
  case TGC_OP_COUNT:
    tgc_unreachable();
  }
  if (inp != in)
    free(inp);
  for (uint32_t i = 0; rc == 0 && i < s->nout; i++)
    rc = check_result(c, s, i, &vals[s->out[i]]);
  return rc;
}

/* Runs P; OUTPUTS receive owned tensors (copies of the returned values). */
static int run_plan(tgc_rt_cpu_ctx *c, const tgc_rt_plan *p, const tgc_rt_tensor *inputs, tgc_rt_tensor *outputs) {
  tgc_rt_tensor *vals = tgc_xcalloc(p->nslots + 1, sizeof *vals);
  for (uint32_t i = 0; i < p->ninputs; i++) {
    vals[p->input_slots[i]] = inputs[i];
    vals[p->input_slots[i]].owned = false;
  }
  int rc = 0;
  for (uint32_t i = 0; rc == 0 && i < p->nsteps; i++) {
    if (c->err)
      c->err->msg[0] = 0;
    rc = run_step(c, &p->steps[i], vals);
    /* the observer sees the run's own plan only (a fusion's region is one step of it); a step's results are
     * consecutive slots (lowering numbers them in order) */
    const tgc_rt_observer *ob = c->opts ? c->opts->observer : NULL;
    if (rc == 0 && ob && ob->fn && p == c->plan && p->steps[i].nout) {
      if (c->err)
        c->err->msg[0] = 0;
      tgc_rt_err scratch;
      rc = ob->fn(ob->user, p, i, &vals[p->steps[i].out[0]], c->err ? c->err : &scratch);
      if (rc != 0 && c->err && !c->err->msg[0])
        tgc_rt_cpu_step_error(c, &p->steps[i], "the run's observer stopped it (step %u)", i);
    }
    if (rc != 0 && c->err && !c->err->msg[0]) {
      /* every failing path must say why; an empty message is a bug of this backend (fatal in debug builds) */
#ifndef NDEBUG
      tgc_fatal(__FILE__, __LINE__, "step %u ('%s' at %s) failed without a message", i,
                tgc_op_name(p->steps[i].op), p->steps[i].loc);
#endif
      tgc_rt_cpu_step_error(c, &p->steps[i], "failed without a message (step %u; a bug in tgc's CPU backend)", i);
    }
  }
  for (uint32_t i = 0; i < p->noutputs; i++) {
    if (rc != 0) {
      memset(&outputs[i], 0, sizeof outputs[i]);
      continue;
    }
    const tgc_rt_tensor *v = &vals[p->output_slots[i]];
    tgc_rt_err e;
    if (tgc_rt_tensor_alloc(&outputs[i], v->dtype, v->rank, v->shape, &e) != 0) {
      rc = tgc_rt_errorf(c->err, "%s", e.msg);
      continue;
    }
    memcpy(outputs[i].data, v->data, tgc_rt_tensor_nbytes(v));
  }
  for (uint32_t i = 0; i < p->nslots; i++)
    tgc_rt_tensor_free(&vals[i]);
  free(vals);
  if (rc != 0)
    for (uint32_t i = 0; i < p->noutputs; i++)
      tgc_rt_tensor_free(&outputs[i]);
  return rc;
}

/* The shapes of PLAN's values at the bound symbols, without computing them: every declared type evaluated (no
 * overflow, no negative dim), and the ops whose sizes a backend cannot check from types alone computed by the
 * CPU backend's own shape rules (reshape keeps the element count, pad's sums fit in int64). A slot whose shape
 * is unknown here (an untyped result of another op) is skipped: the CPU backend checks it as it runs. */
static int check_sizes(tgc_rt_cpu_ctx *c, const tgc_rt_plan *p) {
  tgc_rt_tensor *vals = tgc_xcalloc(p->nslots + 1, sizeof *vals); /* shapes only: data stays NULL */
  bool *known = tgc_xcalloc(p->nslots + 1, sizeof *known);
  int rc = 0;
  for (uint32_t i = 0; i < p->ninputs; i++) {
    const tgc_rt_type *t = &p->input_types[i];
    tgc_rt_tensor *v = &vals[p->input_slots[i]];
    bool ok = t->known;
    for (uint32_t d = 0; ok && d < t->rank; d++)
      ok = tgc_rt_poly_eval(&t->dims[d], c->syms, &v->shape[d]);
    v->dtype = t->dtype;
    v->rank = t->rank;
    known[p->input_slots[i]] = ok;
  }
  for (uint32_t k = 0; rc == 0 && k < p->nsteps; k++) {
    const tgc_rt_step *s = &p->steps[k];
    for (uint32_t i = 0; rc == 0 && i < s->nout; i++) {
      const tgc_rt_type *t = &s->out_types[i];
      tgc_rt_tensor *v = &vals[s->out[i]];
      const tgc_rt_tensor *x = s->nin && known[s->in[0]] ? &vals[s->in[0]] : NULL;
      size_t n;
      if (i == 0 && x && s->op == TGC_OP_RESHAPE && t->known) {
        rc = tgc_rt_cpu_reshape_shape(c, s, x, v->shape, &n);
        v->dtype = x->dtype;
        v->rank = t->rank;
      } else if (i == 0 && x && s->op == TGC_OP_PAD) {
        rc = tgc_rt_cpu_pad_shape(c, s, x, v->shape);
        v->dtype = x->dtype;
        v->rank = x->rank;
        rc = rc || check_result(c, s, 0, v);
      } else if (t->known) {
        rc = tgc_rt_cpu_eval_shape(c, s, t, v->shape);
        v->dtype = t->dtype;
        v->rank = t->rank;
      } else {
        continue;
      }
      known[s->out[i]] = rc == 0;
    }
  }
  free(vals);
  free(known);
  return rc;
}

int tgc_rt_plan_check_sizes(const tgc_rt_plan *plan, const int64_t *syms, tgc_rt_err *err) {
  tgc_rt_cpu_ctx c;
  memset(&c, 0, sizeof c);
  c.err = err;
  c.nsyms = plan->nsyms;
  c.syms = tgc_xcalloc(plan->nsyms + 1, sizeof *c.syms);
  if (plan->nsyms)
    memcpy(c.syms, syms, plan->nsyms * sizeof *c.syms);
  int rc = tgc_rt_plan_check(plan, err);
  if (rc == 0)
    rc = check_sizes(&c, plan);
  free(c.syms);
  return rc ? 1 : 0;
}

/* Binds the plan's symbols from the input shapes: first every dim that is a bare symbol, then every other
 * dim is checked against its evaluated expression. */
static int bind_inputs(tgc_rt_cpu_ctx *c, const tgc_rt_plan *p, const tgc_rt_tensor *inputs) {
  for (int pass = 0; pass < 2; pass++) {
    for (uint32_t i = 0; i < p->ninputs; i++) {
      const tgc_rt_type *t = &p->input_types[i];
      const tgc_rt_tensor *x = &inputs[i];
      const char *name = p->input_names[i];
      if (!t->known)
        continue;
      if (pass == 0 && (x->rank != t->rank || x->dtype != t->dtype)) {
        char got[256];
        tgc_rt_cpu_tensor_type_str(x, got, sizeof got);
        return tgc_rt_errorf(c->err, "error: input '%%%s' is %s, but '@%s' declares %s of rank %u", name, got, p->name,
                             tgc_dtype_name(t->dtype), t->rank);
      }
      for (uint32_t d = 0; d < t->rank; d++) {
        const tgc_rt_poly *dim = &t->dims[d];
        bool bare = dim->nterms == 1 && dim->terms[0].coeff == 1 && dim->terms[0].nsyms == 1;
        if (pass == 0 && bare) {
          uint32_t sym = dim->terms[0].syms[0];
          if (!c->bound[sym]) {
            c->bound[sym] = true;
            c->syms[sym] = x->shape[d];
          } else if (c->syms[sym] != x->shape[d]) {
            return tgc_rt_errorf(c->err, "error: input '%%%s' dim %u is %lld, but %s is already %lld from an earlier dim",
                                 name, d, (long long)x->shape[d], p->sym_names[sym], (long long)c->syms[sym]);
          }
        } else if (pass == 1 && !bare) {
          int64_t v;
          if (!tgc_rt_poly_eval(dim, c->syms, &v) || v != x->shape[d])
            return tgc_rt_errorf(c->err, "error: input '%%%s' dim %u is %lld, but its declared size evaluates to %lld",
                                 name, d, (long long)x->shape[d], (long long)v);
        }
      }
    }
  }
  return 0;
}

int tgc_rt_bind_symbols(const tgc_rt_plan *plan, const tgc_rt_tensor *inputs, int64_t *syms, tgc_rt_err *err) {
  tgc_rt_cpu_ctx c;
  memset(&c, 0, sizeof c);
  c.err = err;
  c.nsyms = plan->nsyms;
  c.syms = syms;
  c.bound = tgc_xcalloc(plan->nsyms + 1, sizeof *c.bound);
  int rc = bind_inputs(&c, plan, inputs);
  free(c.bound);
  return rc;
}

int tgc_rt_cpu_run(const tgc_rt_plan *plan, const tgc_rt_tensor *inputs, tgc_rt_tensor *outputs,
                   const tgc_rt_cpu_opts *opts, tgc_rt_err *err) {
  tgc_rt_cpu_ctx c;
  memset(&c, 0, sizeof c);
  c.opts = opts;
  c.err = err;
  c.plan = plan;
  if (err)
    err->msg[0] = 0;
  c.nsyms = plan->nsyms;
  c.syms = tgc_xcalloc(plan->nsyms + 1, sizeof *c.syms);
  c.bound = tgc_xcalloc(plan->nsyms + 1, sizeof *c.bound);
  int rc = tgc_rt_plan_check(plan, err);
  if (rc == 0)
    rc = bind_inputs(&c, plan, inputs);
  if (rc == 0) /* the sizes first, as every backend checks them (tgc_rt_plan_check_sizes) */
    rc = check_sizes(&c, plan);
  if (rc == 0)
    rc = run_plan(&c, plan, inputs, outputs);
  for (uint32_t i = 0; rc == 0 && i < plan->noutputs; i++) {
    const tgc_rt_type *t = &plan->output_types[i];
    if (!t->known)
      continue;
    bool ok = t->dtype == outputs[i].dtype && t->rank == outputs[i].rank;
    for (uint32_t d = 0; ok && d < t->rank; d++) {
      int64_t v;
      ok = tgc_rt_poly_eval(&t->dims[d], c.syms, &v) && v == outputs[i].shape[d];
    }
    if (!ok) {
      char got[256], want[256];
      tgc_rt_cpu_tensor_type_str(&outputs[i], got, sizeof got);
      tgc_rt_cpu_type_str(&c, t, want, sizeof want);
      rc = tgc_rt_errorf(err, "error: result #%u of '@%s' is %s, but the function declares %s", i, plan->name, got,
                         want);
      for (uint32_t k = 0; k < plan->noutputs; k++)
        tgc_rt_tensor_free(&outputs[k]);
    }
  }
  free(c.syms);
  free(c.bound);
  return rc;
}

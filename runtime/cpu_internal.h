/* What the CPU backend's interpreter (runtime/cpu.c) shares with its kernels (cpu_ops.c, cpu_layout.c): the
 * context of a run, the shared helpers and one entry point per kernel. Not part of the runtime's API (plan.h). */
#ifndef TGC_RT_CPU_INTERNAL_H
#define TGC_RT_CPU_INTERNAL_H

#include "arena.h"
#include "plan.h"
#include "session.h"

typedef struct tgc_rt_cpu_ctx {
  const tgc_rt_cpu_opts *opts;
  tgc_rt_err *err;
  int64_t *syms;
  bool *bound;
  uint32_t nsyms;
  const tgc_rt_plan *plan; /* the plan tgc_rt_cpu_run was given (the one its observer sees) */
} tgc_rt_cpu_ctx;

/* ---- helpers (cpu.c unless named) ---- */

int tgc_rt_cpu_step_error(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const char *fmt, ...) TGC_RT_PRINTF(3, 4);
void tgc_rt_cpu_type_str(const tgc_rt_cpu_ctx *c, const tgc_rt_type *t, char *buf, size_t n);
void tgc_rt_cpu_tensor_type_str(const tgc_rt_tensor *t, char *buf, size_t n);
int tgc_rt_cpu_eval_shape(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_type *t, int64_t *shape);
int tgc_rt_cpu_alloc_out(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *t, tgc_dtype dt, uint32_t rank,
                         const int64_t *shape);
void tgc_rt_cpu_strides_of(uint32_t rank, const int64_t *shape, int64_t *st);
int tgc_rt_cpu_norm_axis(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, int64_t axis, uint32_t rank, const char *what);

static inline bool tgc_rt_cpu_is_float(tgc_dtype d) { return tgc_dtype_kind_of(d) == TGC_DTK_FLOAT; }
static inline size_t tgc_rt_cpu_numel(const tgc_rt_tensor *t) { return tgc_rt_tensor_numel(t); }

/* cpu_ops.c */
void tgc_rt_cpu_bcast_strides(const tgc_rt_tensor *t, uint32_t r, const int64_t *shape, int64_t *st);
void tgc_rt_cpu_split3(const tgc_rt_tensor *t, uint32_t a0, uint32_t a1, size_t *outer, size_t *mid,
                       size_t *inner);

/* cpu_layout.c */
void tgc_rt_cpu_copy_elem(tgc_rt_tensor *dst, size_t di, const tgc_rt_tensor *src, size_t si);
int tgc_rt_cpu_reshape_shape(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, int64_t *shape,
                             size_t *n);
int tgc_rt_cpu_pad_shape(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, int64_t *shape);

/* ---- kernels: each computes step S's results from its operands: 0, or nonzero with C->err set ---- */

/* cpu_ops.c */
int tgc_rt_cpu_elementwise(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *in,
                           tgc_rt_tensor *out);
int tgc_rt_cpu_reduce(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out);
int tgc_rt_cpu_cumsum(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out);
int tgc_rt_cpu_softmax(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out);
int tgc_rt_cpu_norm(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *in, tgc_rt_tensor *out);
int tgc_rt_cpu_matmul(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *a, const tgc_rt_tensor *b,
                      tgc_rt_tensor *out);
int tgc_rt_cpu_attention(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *in,
                         tgc_rt_tensor *out);
int tgc_rt_cpu_quant(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *in, tgc_rt_tensor *out);

/* cpu_layout.c */
int tgc_rt_cpu_reshape(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out);
int tgc_rt_cpu_transpose(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out);
int tgc_rt_cpu_broadcast_to(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out);
int tgc_rt_cpu_slice(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out);
int tgc_rt_cpu_concat(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *const *in, tgc_rt_tensor *out);
int tgc_rt_cpu_split(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *outs);
int tgc_rt_cpu_gather(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, const tgc_rt_tensor *idx,
                      tgc_rt_tensor *out);
int tgc_rt_cpu_embedding(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *table,
                         const tgc_rt_tensor *ids, tgc_rt_tensor *out);
int tgc_rt_cpu_iota(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *out);
int tgc_rt_cpu_pad(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, const tgc_rt_tensor *x, tgc_rt_tensor *out);
int tgc_rt_cpu_param(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *out);
int tgc_rt_cpu_constant(tgc_rt_cpu_ctx *c, const tgc_rt_step *s, tgc_rt_tensor *out);

#endif

/* What the files of the CUDA emitter share (codegen/cuda_*.c; the interface is cuda_codegen.h). Every launch of
 * the optimized entry function becomes one or more steps of a CUDA program:
 *  - a *pointwise* kernel computes one output element per thread: it turns the linear index into the output's
 *    multi-index and evaluates the launch's ops as an expression tree, each value at the multi-index its
 *    consumer needs (cuda_eval.c, cuda_pointwise.c). Reductions, cumsum and matmul inside such a kernel are
 *    serial loops in the thread: always correct, fast only when they are short.
 *  - a *rows* kernel runs one block per row when every reduction of the launch is along the output's last dim
 *    (layer_norm, rms_norm, softmax, reduce over the last axis, with pointwise prologues and epilogues): each
 *    row statistic is a block-strided loop and a warp-shuffle block reduction, then one loop writes the row.
 *  - an *attention* kernel (cuda_attention.c, its body the template kernels/attention.cuh) reads q, k, v and
 *    the mask as strided views of their buffers (cuda_views.c); what is not a view is computed first by an
 *    operand kernel.
 *  - a GEMM is a cuBLASLt call (cuda_gemm.c), with bias, tanh-GELU, ReLU and a residual folded into it when the
 *    launch is exactly that; otherwise the product goes to a temporary and an epilogue kernel does the rest.
 * cuda_emit.c holds the emitter's core (dims, index math, literals), cuda_program.c the program: launches to
 * steps, buffers, printing. Symbolic dims are kernel parameters, so a new batch size does not recompile. Math is
 * fp32 (double for f64, exact 64-bit integers for integer values); storage is the tensor's dtype. */
#ifndef TGC_CUDA_INTERNAL_H
#define TGC_CUDA_INTERNAL_H

#include "cuda_codegen.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rt.h"

/* ---- the emitter: one place that handles indentation ---- */

typedef struct {
  uint32_t rank;
  const char *ix[TGC_RT_MAX_RANK];
} index_vec;

typedef struct {
  tgc_strbuf *out;
  int indent;
  int next; /* fresh variable numbers */
  tgc_module *m;
  const tgc_sym **syms; /* the symbols a kernel takes as parameters */
  uint32_t nsyms, symcap;
  bool failed;
  char why[256];
  int code; /* written to *err when an index is out of range: the launch's number + 1 */
  /* rows mode: the row's index variables, and the row statistics computed before the output loop */
  bool rows;
  uint32_t nrow;
  const char *rowix[TGC_RT_MAX_RANK];
  const tgc_op *stat_op[32];
  const char *stat_a[32], *stat_b[32];
  uint32_t nstats;
  /* vector mode (pointwise kernels): inputs read at the output's own index come from VEC-element vectors
   * loaded before the lane loop (vin<j>[u]); VLOADED marks them */
  bool vec;
  const tgc_type *root_t;
  index_vec root_I;
  bool *vloaded;
  bool ipow; /* the kernel needs IPOW */
  bool idiv; /* the kernel needs IDIV */
  bool f8;   /* the kernel needs FP8 */
  bool f2i;  /* the kernel needs F2I */
  bool qint; /* the kernel needs QINT */
  /* a value computed before the emitted code (the attention kernel's element, before its epilogue): its
   * expression at whatever index it is read, or NULL */
  const tgc_value *reg_v;
  const char *reg_x;
  /* the root's value at an index, while the second result is evaluated there: its expression is reused */
  const tgc_value *memo_v;
  index_vec memo_I;
  const char *memo_x;
  /* the index vectors tgc_cuda_delinearize made and the linear index each came from: tgc_cuda_linearize of
   * such a vector in the same dims gives that index back instead of recomposing it (a chain of reshapes that
   * maps an element to itself costs no division) */
  struct {
    index_vec I;
    const tgc_dim *dims[TGC_RT_MAX_RANK]; /* copied: the type may be a caller's temporary */
    const char *lin;
  } lins[32];
  uint32_t nlins;
} emitter;

static inline void line(emitter *e, const char *fmt, ...) TGC_PRINTF(2, 3);
static inline void line(emitter *e, const char *fmt, ...) {
  for (int i = 0; i < e->indent; i++)
    tgc_sb_puts(e->out, "  ");
  va_list ap;
  va_start(ap, fmt);
  tgc_sb_vprintf(e->out, fmt, ap);
  va_end(ap);
  tgc_sb_putc(e->out, '\n');
}

static inline void fail(emitter *e, const char *fmt, ...) TGC_PRINTF(2, 3);
static inline void fail(emitter *e, const char *fmt, ...) {
  if (e->failed)
    return;
  e->failed = true;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->why, sizeof e->why, fmt, ap);
  va_end(ap);
}

static inline bool dim_is(const tgc_dim *d, int64_t v) {
  int64_t x;
  return tgc_dim_is_const(d, &x) && x == v;
}

static inline uint32_t norm_axis(int64_t axis, uint32_t rank) {
  return (uint32_t)(axis < 0 ? axis + (int64_t)rank : axis);
}

/* The arguments of tgc_f8_bits and tgc_f8_value that name DT's format (see FP8). */
static inline const char *fp8_fmt(tgc_dtype dt) { return dt == TGC_DT_F8E4M3 ? "4, 3, 1" : "5, 2, 0"; }

/* What a kernel computes its values from. */
typedef struct {
  tgc_value *const *inputs; /* kernel inputs: region arguments or outside values */
  uint32_t ninputs;
  /* inputs fed by a constant outside: inlined (a literal, or an array indexed by the linear index) */
  const tgc_value *const *const_args;
  const tgc_op *const *const_defs;
  uint32_t nconst;
  /* a second result computed at the same index as the root, stored to out2 (a fusion with two results), or
   * NULL */
  const tgc_value *root2;
} kernel_src;

/* The generation of one CUDA program: the launch being generated and where its kernels go. */
typedef struct {
  tgc_module *m;
  tgc_cuda_module *cm;
  int n;                /* the launch's number */
  const tgc_op *launch; /* the launch being generated */
  char where[400];      /* "kind at file:line:col" */
  const tgc_value **consts; /* constants already given a buffer */
  uint32_t nconsts;
  char why[256];
} gen;

/* A strided view: element IX of the value is BUF[OFF + sum of IX[d] * ST[d]] (cuda_views.c). */
typedef struct {
  const tgc_value *buf; /* the buffer (a value at the kernel's level) */
  const tgc_dim *off;
  uint32_t rank;
  const tgc_dim *st[TGC_RT_MAX_RANK];
} view;

/* V's position among INS, else -1. */
static inline int in_index(tgc_value *const *ins, uint32_t nin, const tgc_value *v) {
  for (uint32_t i = 0; i < nin; i++)
    if (ins[i] == v)
      return (int)i;
  return -1;
}

/* ---- cuda_emit.c: the emitter core ---- */

const char *tgc_cuda_storage_type(tgc_dtype dt);
const char *tgc_cuda_compute_type(tgc_dtype dt);
void tgc_cuda_dim_c(emitter *e, const tgc_dim *d, tgc_strbuf *b);
const char *tgc_cuda_fresh(emitter *e, const char *prefix);
const char *tgc_cuda_linearize(emitter *e, const index_vec *I, const tgc_type *t);
index_vec tgc_cuda_delinearize(emitter *e, const char *lin, const tgc_type *t);
const char *tgc_cuda_dim_str(emitter *e, const tgc_dim *d);
const tgc_dim *tgc_cuda_numel_dim(tgc_arena *a, const tgc_type *t, uint32_t from, uint32_t to);
void tgc_cuda_value_literal(tgc_strbuf *b, tgc_dtype dt, double v, bool from_int, int64_t iv);
void tgc_cuda_const_literal(tgc_strbuf *b, const tgc_attr *a, tgc_dtype dt);
const char *tgc_cuda_float_attr(emitter *e, const tgc_op *op, const char *name, double dflt, bool dbl);

/* A kernel template's bindings (codegen/kernels/NAME.cuh): a flag for its `//@ if NAME` lines, a value for its
 * @NAME@ substitution points. */
typedef struct {
  const char *name;
  bool on;
} tgc_cuda_tflag;
typedef struct {
  const char *name;
  const char *value;
} tgc_cuda_tvar;
/* Appends template TMPL to OUT: the lines between `//@ if FLAG` and its `//@ else` (or `//@ end`) when FLAG is on,
 * those between `//@ else` and `//@ end` when it is off, every other `//@` line dropped (the template's comments),
 * each @NAME@ replaced by its value. A flag or name without a binding is an internal error. */
void tgc_cuda_expand(tgc_strbuf *out, const char *tmpl, const tgc_cuda_tflag *flags, uint32_t nflags,
                     const tgc_cuda_tvar *vars, uint32_t nvars);

/* ---- cuda_eval.c: expressions ---- */

const char *tgc_cuda_eval(emitter *e, const kernel_src *k, const tgc_value *v, const index_vec *I);
void tgc_cuda_collect_stats(emitter *e, const kernel_src *k, const tgc_value *v);
const tgc_type *tgc_cuda_row_space(const kernel_src *k, const tgc_value *root, bool *reduce_root);
bool tgc_cuda_rows_ok(const kernel_src *k, const tgc_type *space, const tgc_value *v, bool *any);

/* ---- cuda_pointwise.c: pointwise and rows kernels ---- */

extern const char *const tgc_cuda_kernel_headers; /* the includes and macros every kernel opens with */
const tgc_op *tgc_cuda_constant_def(const tgc_value *v);
bool tgc_cuda_value_kernel(gen *g, const char *kind, const tgc_value *root, tgc_value *const *ins,
                           const tgc_value *const *outer, uint32_t nin, const tgc_value *out);
/* The same with a second result ROOT2 of ROOT's dims, computed at the same index into OUT2. */
bool tgc_cuda_value_kernel2(gen *g, const char *kind, const tgc_value *root, tgc_value *const *ins,
                            const tgc_value *const *outer, uint32_t nin, const tgc_value *out,
                            const tgc_value *root2, const tgc_value *out2);
bool tgc_cuda_ensure_buffer(gen *g, const tgc_value *v);
/* A kernel's inputs from a launch's inputs INS (buffers OUTER; those KEEP marks, all when NULL): constants
 * inlined, the others kernel inputs in0.. whose buffers go to ARGS (ninputs of them). */
kernel_src tgc_cuda_kernel_inputs(tgc_arena *a, tgc_value *const *ins, const tgc_value *const *outer, uint32_t nin,
                                  const bool *keep, const tgc_value **args);
/* Stores X, a value of dtype DT in its compute type, to DST (the CPU backend's rounding). */
void tgc_cuda_store_at(emitter *e, const char *dst, const char *x, tgc_dtype dt);
/* The device helpers the emitted code of E calls (integer pow and division, fp8, casts, quantize). */
void tgc_cuda_put_helpers(tgc_strbuf *src, const emitter *e);
bool tgc_cuda_epilogue_kernel(gen *g, const tgc_value *product, const tgc_value *root, tgc_value *const *ins,
                              const tgc_value *const *outer, uint32_t nin, const tgc_value *result);

/* ---- cuda_views.c: strided views ---- */

bool tgc_cuda_contiguous_view(tgc_arena *a, const tgc_value *buf, const tgc_type *t, view *out);
bool tgc_cuda_reshape_view(tgc_arena *a, const view *v, const tgc_type *od, const tgc_type *nd, view *out);
bool tgc_cuda_view_of(tgc_arena *a, const tgc_value *v, tgc_value *const *ins, const tgc_value *const *outer,
                      uint32_t nin, view *out);

/* ---- cuda_gemm.c: GEMMs ---- */

bool tgc_cuda_gen_gemm(gen *g, const tgc_op *mm, const tgc_value *root, tgc_value *const *ins,
                       const tgc_value *const *outer, uint32_t nin, const tgc_value *result);

/* ---- cuda_w4.c: the int4 weight-only GEMM ---- */

/* MM (in the launch being generated) as the w4 GEMM kernel when it has that form: 1 when generated, 0 when it
 * does not apply (the caller's general path runs), -1 on an error (g->why). The kernel is for small m (it reads
 * the weight once per 64 rows): when m is a constant above TGC_CUDA_W4_MAX_ROWS it does not apply, and when m is
 * symbolic *ROWS is set to its dim: the caller emits the general path too and runs one of the two by m. */
#define TGC_CUDA_W4_MAX_ROWS 128
int tgc_cuda_try_w4(gen *g, const tgc_op *mm, const tgc_value *root, tgc_value *const *ins,
                    const tgc_value *const *outer, uint32_t nin, const tgc_value *result, const tgc_dim **rows);
/* When MM's weight is a packed w4 weight (every use of it is, so its buffer holds the packed order): a w4dequant
 * kernel writing the f16 weight to the temporary of MM's operand, stored transposed ([N][K], for cuBLASLt's "TN"),
 * which it returns; NULL when MM's weight is not packed. */
const tgc_value *tgc_cuda_w4_dequant(gen *g, const tgc_op *mm, tgc_value *const *ins, const tgc_value *const *outer,
                                     uint32_t nin);
/* The template codegen/kernels/w4gemm.cuh, embedded at build time. */
extern const char tgc_cuda_w4gemm_cuh[];

/* ---- cuda_attention.c: attention ---- */

bool tgc_cuda_gen_attention(gen *g, const tgc_op *at, const tgc_value *root, tgc_value *const *ins,
                            const tgc_value *const *outer, uint32_t nin, const tgc_value *result);

/* The attention kernel's template, codegen/kernels/attention.cuh, embedded at build time (cmake/embed.cmake). */
extern const char tgc_cuda_attention_cuh[];

/* ---- cuda_program.c: the program ---- */

tgc_cuda_kernel *tgc_cuda_add_kernel(gen *g, const char *kind, const char *source, const char *name,
                                     const tgc_value *const *args, uint32_t nargs, const emitter *e);
void tgc_cuda_kernel_name(gen *g, char *buf, size_t n, const char *what);

#endif

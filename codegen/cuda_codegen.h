/* CUDA code generation: the optimized module's entry function becomes a *CUDA program*, an ordered list of
 * steps, each either a generated kernel (one readable CUDA C translation unit for NVRTC) or a cuBLASLt GEMM.
 * Steps name the buffers they read and write by IR value: the function's arguments, params, the results of
 * top-level launches, and the temporaries a launch needs between its steps (a GEMM's product before its
 * epilogue kernel, an attention operand that is not a strided view of a buffer). Symbolic dims are kernel
 * parameters, so a new batch size or sequence length does not recompile anything. */
#ifndef TGC_CUDA_CODEGEN_H
#define TGC_CUDA_CODEGEN_H

#include "ir.h"

typedef enum {
  TGC_CUDA_GRID_ELEMENTS,  /* `per_block` elements of `count` per block of `block` threads */
  TGC_CUDA_GRID_ROWS,      /* one block of `block` threads per row; `count` rows */
  TGC_CUDA_GRID_ATTENTION, /* grid (ceil(count / per_block), gy, gz), blocks of `block` threads */
} tgc_cuda_grid;

typedef struct tgc_cuda_kernel {
  const char *name;   /* the kernel's symbol: k12_layer_norm, k3_gemm_epilogue_add */
  const char *source; /* a complete translation unit for NVRTC */
  const char *kind;   /* "pointwise", "rows", "attention", "epilogue", "operand" */
  const tgc_op *op;   /* the launch it belongs to (a fusion, or one op) */
  /* the kernel's parameters: one pointer per buffer in ARGS (inputs in order, the output last), then one
   * `long long` per symbol in SYM_NAMES, then `int *err` (set when an index is out of range) */
  const tgc_value *const *args;
  uint32_t nargs;
  const char *const *sym_names;
  uint32_t nsyms;
  tgc_cuda_grid grid;
  const tgc_dim *count, *gy, *gz;
  uint32_t block, per_block;
  int code; /* its launch's number + 1: the kernel writes CODE to *err for an index out of range, and
            * tgc_rt_kerr_value(CODE, kind) for an arithmetic error (runtime/program.h) */
} tgc_cuda_kernel;

typedef enum {
  TGC_CUDA_EPI_NONE,
  TGC_CUDA_EPI_BIAS,      /* + bias[n] */
  TGC_CUDA_EPI_GELU_BIAS, /* gelu_tanh(x + bias[n]) */
  TGC_CUDA_EPI_RELU_BIAS, /* relu(x + bias[n]) */
  TGC_CUDA_EPI_GELU,      /* gelu_tanh(x) */
  TGC_CUDA_EPI_RELU,      /* relu(x) */
} tgc_cuda_epilogue;

/* Row-major, per batch entry: D[m][n] = epilogue(op(A)[m][k] * op(B)[k][n] + bias[n]) + C[m][n], where op(A) is A
 * stored [m][k] (or [k][m] when trans_a) and op(B) is B stored [k][n] (or [n][k] when trans_b). An operand with
 * batch_x false is shared by every batch entry. C (a residual) is NULL or a buffer shaped like D. */
typedef struct tgc_cuda_gemm {
  const tgc_op *op;
  const tgc_value *a, *b, *c, *bias, *d;
  bool trans_a, trans_b, batch_a, batch_b;
  const tgc_dim *batch, *m, *n, *k;
  tgc_cuda_epilogue epilogue;
  tgc_dtype dtype;    /* D's, C's and the bias's */
  double alpha;       /* D = alpha op(A) op(B) ...: 1, or an fp8 GEMM's per-tensor rescale */
  const tgc_value *scale; /* or D[m][n] = alpha scale[n] (op(A) op(B))[m][n] ...: an fp8 GEMM's per-column rescale
                           * (f32[n]) through cuBLASLt's outer-vector scales; NULL when none */
  tgc_dtype ab_dtype; /* A's and B's (always set): dtype, or i8 (D i32, exact) or f8e4m3 (D f32, f16 or bf16) -- a quantized
                       * contraction, which cuBLASLt computes as a "TN" GEMM only: trans_b, not trans_a */
  /* D's row pitch in elements when it is padded, else 0 (rows of n). A GEMM whose n is not a multiple of 16
   * bytes (GPT-2's 50257 logits) runs 6.7x slower in cuBLASLt than one padded to it (measured on an H200,
   * 4096 x 50257 x 768 f16: 3.08 ms against 0.46), and padding D's rows alone does not help. So when only the
   * function returns D and B is a weight stored [n][k] with no bias, the GEMM computes ldd columns: the weight's
   * buffer gets ldd - n rows of zeros (see tgc_cuda_buffer.tail), D rows of ldd, and the runtime drops the
   * padding when it copies the result out. */
  int64_t ldd;
} tgc_cuda_gemm;

typedef enum {
  TGC_CUDA_ALWAYS,
  TGC_CUDA_WHEN_LE, /* the step runs when WHEN <= LIMIT at the bound sizes */
  TGC_CUDA_WHEN_GT, /* ... when WHEN > LIMIT: the other of two alternatives */
  TGC_CUDA_WHEN_RANGE, /* ... when LO < WHEN <= LIMIT: one of three or more */
} tgc_cuda_when;

typedef struct tgc_cuda_step {
  bool gemm;
  uint32_t index; /* into kernels or gemms */
  tgc_cuda_when when;
  const tgc_dim *when_dim; /* WHEN's dim (a polynomial over the symbols) */
  int64_t limit, lo;
} tgc_cuda_step;

typedef struct tgc_cuda_module {
  const tgc_func *func; /* the entry function */
  tgc_cuda_kernel *kernels;
  uint32_t nkernels;
  tgc_cuda_gemm *gemms;
  uint32_t ngemms;
  tgc_cuda_step *steps; /* in execution order */
  uint32_t nsteps;
  /* launches that cannot be generated (collectives, quantization...), each with its reason; WHY is the first's */
  const tgc_op **pending;
  const char **pending_why;
  uint32_t npending;
  const char *why;
} tgc_cuda_module;

/* Generates the CUDA program of M's entry function (the one named ENTRY; when ENTRY is NULL "main", else the
 * first) into M's arena. Every value must
 * have a type (shape-infer): when one has none, nothing is generated and its op is the one pending launch, with
 * the reason TGC_CUDA_NEEDS_TYPES. */
void tgc_cuda_generate(tgc_module *m, const char *entry, tgc_cuda_module *out);
#define TGC_CUDA_NEEDS_TYPES "the CUDA backend needs every value's type: run shape-infer (-O1 or --passes=shape-infer)"
/* The first op of M's entry function (ENTRY as for tgc_cuda_generate; regions included) with a result that has no type, or NULL. */
const tgc_op *tgc_cuda_first_untyped(const tgc_module *m, const char *entry);
/* Prints the program: the steps in order, every kernel's source (each headed by a comment naming its launch and
 * location) and each GEMM's description, then the launches not generated. */
void tgc_cuda_print(const tgc_cuda_module *cm, tgc_strbuf *out);
const char *tgc_cuda_epilogue_name(tgc_cuda_epilogue e);
/* Appends V as a CUDA C literal, the one spelling of every float the generated code holds: for f64 a double
 * (1.0, 1e-300), for the other float dtypes a float of V rounded to DT (1.0f, 3.40282347e+38f; f16, bf16 and
 * fp8 values are computed in float), for integer dtypes an f32 literal. The shortest digits that read back to the
 * same value; negative values parenthesized ((-0.0f)); non-finite values through the kernel preamble's macros:
 * INFINITY, (-INFINITY), NAN, and (double)INFINITY, (-(double)INFINITY), (double)NAN for f64. */
void tgc_cuda_float_literal(tgc_strbuf *out, double v, tgc_dtype dt);
/* K's source without its heading comment and with its name replaced by "tgc_kernel": kernels that differ only
 * in name (one per layer) have the same canonical source, compile once and share an artifact entry. The caller
 * frees the result. */
char *tgc_cuda_canonical_source(const tgc_cuda_kernel *k);

typedef enum { TGC_CUDA_BUF_INPUT, TGC_CUDA_BUF_PARAM, TGC_CUDA_BUF_TEMP } tgc_cuda_buf_kind;

/* A buffer of the program: the value owning the storage (top-level reshapes share their operand's), its kind,
 * and for temporaries the step that writes it first and the last step that reads it (the function's results
 * are read at step NSTEPS). */
typedef struct tgc_cuda_buffer {
  const tgc_value *v;
  tgc_cuda_buf_kind kind;
  int first, last;
  int64_t pitch; /* elements per row in memory when the rows are padded (a GEMM's D, see ldd), else 0 */
  int64_t tail;  /* elements of zeros after the value (a weight padded for a GEMM, see ldd) */
  bool pack_w4;  /* an i4 weight the w4 kernels read (kind "w4gemm", its second argument, or "w4dequant", its
                  * first), uploaded in their order (tgc_rt_pack_w4); no other kernel reads it */
} tgc_cuda_buffer;

/* The buffers the program's steps and results touch, in order of first use (*N of them; the caller frees the
 * array). This order and these live ranges are what the memory plan is made of. */
tgc_cuda_buffer *tgc_cuda_buffers(const tgc_cuda_module *cm, uint32_t *n);
/* B's size in bytes (padded rows included, the zero tail not) with the symbols NAMES[i] of size SIZES[i] (an
 * unbound symbol is an error, like an overflow: tgc_dim_eval); false when it overflows 2^62. */
bool tgc_cuda_buffer_bytes(const tgc_cuda_buffer *b, const char *const *names, const int64_t *sizes, uint32_t n,
                           uint64_t *bytes);

#endif

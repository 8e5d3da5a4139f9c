/* cuBLASLt through dlopen: row-major GEMMs with fused bias / GELU / ReLU epilogues and a residual. */
#ifndef TGC_RT_CUBLASLT_H
#define TGC_RT_CUBLASLT_H

#include "cuda_driver.h"
#include "tgc/dtype.h"

typedef struct tgc_rt_blas tgc_rt_blas;

typedef enum {
  TGC_RT_EPI_NONE,
  TGC_RT_EPI_BIAS,
  TGC_RT_EPI_GELU_BIAS,
  TGC_RT_EPI_RELU_BIAS,
  TGC_RT_EPI_GELU,
  TGC_RT_EPI_RELU,
} tgc_rt_epilogue;

/* Row-major, for each of BATCH entries: D[m][n] = epi(alpha op(A)[m][k] op(B)[k][n] + bias[n]) + C[m][n]. A is stored
 * [m][k] ([k][m] when trans_a), B [k][n] ([n][k] when trans_b); an operand with batch_x false is shared by all
 * entries. C and bias may be 0. */
typedef struct tgc_rt_gemm {
  tgc_dtype dtype; /* f16, bf16, f32 or f64, for A, B, C, D and the bias */
  /* A's and B's dtype: dtype, or i8 (D and C i32, accumulated exactly by IMMA tensor cores) or f8e4m3 (D and C
   * f32, f16 or bf16, fp32 accumulation). cuBLASLt computes these "TN" only: trans_b and not trans_a, with k and
   * n multiples of 16 (checked by codegen), no epilogue. */
  tgc_dtype ab_dtype;
  double alpha; /* D = alpha op(A) op(B) + ...: 1, or an fp8 GEMM's rescale (i8 GEMMs: 1 only) */
  /* or, fp8 with an f16/bf16 D: D[m][n] = epi(rows[m] scale[n] (op(A) op(B))[m][n] + bias[n]), f32 vectors on the
   * device (cuBLASLt's outer-vector scale mode; the session fills ROWS with alpha); 0: none */
  tgc_rt_devptr scale, rows;
  bool trans_a, trans_b, batch_a, batch_b;
  int64_t batch, m, n, k;
  tgc_rt_epilogue epilogue;
  int64_t ldd; /* D's (and C's) row pitch in elements; 0: n */
  tgc_rt_devptr a, b, c, bias, d;
} tgc_rt_gemm;

/* Loads libcublasLt (TGC_CUBLASLT_LIBRARY, then the usual names) and creates a handle and a workspace on C's
 * device; NULL with a clear message when it cannot. */
tgc_rt_blas *tgc_rt_blas_open(tgc_rt_cuda *c, tgc_rt_err *err);
void tgc_rt_blas_close(tgc_rt_blas *b);
/* Queues G on C's stream (capturable into a CUDA graph). Descriptors and the algorithm are made once per shape:
 * the fastest of cuBLASLt's (up to 8) candidates, timed on the first call. */
int tgc_rt_blas_gemm(tgc_rt_blas *b, const tgc_rt_gemm *g, tgc_rt_err *err);
/* Tells the handle that the stream is being captured (new shapes then take cuBLASLt's first choice untimed). */
void tgc_rt_blas_capturing(tgc_rt_blas *b, bool on);

#endif

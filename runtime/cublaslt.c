/* cuBLASLt through dlopen (see cublaslt.h). The row-major product D = A B is computed as the column-major
 * D^T = B^T A^T: cuBLASLt's first matrix is our B, its second our A, and a bias per row of its D^T is a bias
 * per column of our D. Types and enum values below are those of cublasLt.h (CUDA 12 and 13). */
#define _POSIX_C_SOURCE 200809L
#include "cublaslt.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "rt_internal.h"

typedef int cublasStatus_t;
typedef struct cublasLtContext *cublasLtHandle_t;
typedef struct cublasLtMatmulDescOpaque *cublasLtMatmulDesc_t;
typedef struct cublasLtMatrixLayoutOpaque *cublasLtMatrixLayout_t;
typedef struct cublasLtMatmulPreferenceOpaque *cublasLtMatmulPreference_t;
typedef struct {
  uint64_t data[8];
} cublasLtMatmulAlgo_t;
typedef struct {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
} cublasLtMatmulHeuristicResult_t;

enum {
  R_16F = 2, R_16BF = 14, R_32F = 0, R_64F = 1,           /* cudaDataType */
  R_8I = 3, R_32I = 10, R_8F_E4M3 = 28,
  COMPUTE_32F = 68, COMPUTE_64F = 70, COMPUTE_32I = 72,   /* cublasComputeType_t */
  OP_N = 0, OP_T = 1,                                     /* cublasOperation_t */
  DESC_TRANSA = 3, DESC_TRANSB = 4, DESC_EPILOGUE = 7, DESC_BIAS_POINTER = 8, DESC_BIAS_DATA_TYPE = 26,
  DESC_A_SCALE_POINTER = 17, DESC_B_SCALE_POINTER = 18, DESC_A_SCALE_MODE = 31, DESC_B_SCALE_MODE = 32,
  SCALE_OUTER_VEC_32F = 3,                                /* cublasLtMatmulMatrixScale_t */
  LAYOUT_BATCH_COUNT = 5, LAYOUT_STRIDED_BATCH_OFFSET = 6,
  PREF_MAX_WORKSPACE_BYTES = 1,
  EPI_DEFAULT = 1, EPI_RELU = 2, EPI_BIAS = 4, EPI_GELU = 32,
};

#define WORKSPACE_BYTES ((size_t)32 << 20)
#define MAX_PLANS 256

typedef struct {
  tgc_rt_gemm key; /* pointers zeroed */
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t la, lb, lc;
  cublasLtMatmulAlgo_t algo[8]; /* cuBLASLt's candidates, best first once tuned */
  int nalgo;
  bool tuned;
} plan;

struct tgc_rt_blas {
  void *lib;
  tgc_rt_cuda *cuda;
  cublasLtHandle_t h;
  tgc_rt_devptr ws;
  plan plans[MAX_PLANS];
  int nplans;
  bool capturing; /* no tuning while a CUDA graph is being captured */
  cublasStatus_t (*create)(cublasLtHandle_t *);
  cublasStatus_t (*destroy)(cublasLtHandle_t);
  cublasStatus_t (*desc_create)(cublasLtMatmulDesc_t *, int, int);
  cublasStatus_t (*desc_destroy)(cublasLtMatmulDesc_t);
  cublasStatus_t (*desc_set)(cublasLtMatmulDesc_t, int, const void *, size_t);
  cublasStatus_t (*layout_create)(cublasLtMatrixLayout_t *, int, uint64_t, uint64_t, int64_t);
  cublasStatus_t (*layout_destroy)(cublasLtMatrixLayout_t);
  cublasStatus_t (*layout_set)(cublasLtMatrixLayout_t, int, const void *, size_t);
  cublasStatus_t (*pref_create)(cublasLtMatmulPreference_t *);
  cublasStatus_t (*pref_destroy)(cublasLtMatmulPreference_t);
  cublasStatus_t (*pref_set)(cublasLtMatmulPreference_t, int, const void *, size_t);
  cublasStatus_t (*heuristic)(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                              cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int,
                              cublasLtMatmulHeuristicResult_t *, int *);
  cublasStatus_t (*matmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void *, const void *, cublasLtMatrixLayout_t,
                           const void *, cublasLtMatrixLayout_t, const void *, const void *, cublasLtMatrixLayout_t,
                           void *, cublasLtMatrixLayout_t, const cublasLtMatmulAlgo_t *, void *, size_t, void *);
  const char *(*status_string)(cublasStatus_t);
};

static int blas_error(tgc_rt_blas *b, tgc_rt_err *err, const char *call, cublasStatus_t s) {
  const char *str = b && b->status_string ? b->status_string(s) : NULL;
  return tgc_rt_errorf(err, "cuBLASLt: %s failed: %s (status %d)", call, str ? str : "error", s);
}

tgc_rt_blas *tgc_rt_blas_open(tgc_rt_cuda *c, tgc_rt_err *err) {
  static const char *const names[] = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so",
                                      "/usr/local/cuda/lib64/libcublasLt.so.13",
                                      "/usr/local/cuda/lib64/libcublasLt.so.12"};
  void *lib = tgc_rt_dlopen_first("TGC_CUBLASLT_LIBRARY", names, sizeof names / sizeof names[0]);
  if (!lib) {
    tgc_rt_errorf(err, "cuBLASLt is not available: cannot load libcublasLt (install the CUDA toolkit's cuBLAS, or set "
                       "TGC_CUBLASLT_LIBRARY to its path)");
    return NULL;
  }
  tgc_rt_blas *b = tgc_xcalloc(1, sizeof *b);
  b->lib = lib;
  b->cuda = c;
  const tgc_rt_dlsym syms[] = {
      {(void **)&b->create, "cublasLtCreate"},
      {(void **)&b->destroy, "cublasLtDestroy"},
      {(void **)&b->desc_create, "cublasLtMatmulDescCreate"},
      {(void **)&b->desc_destroy, "cublasLtMatmulDescDestroy"},
      {(void **)&b->desc_set, "cublasLtMatmulDescSetAttribute"},
      {(void **)&b->layout_create, "cublasLtMatrixLayoutCreate"},
      {(void **)&b->layout_destroy, "cublasLtMatrixLayoutDestroy"},
      {(void **)&b->layout_set, "cublasLtMatrixLayoutSetAttribute"},
      {(void **)&b->pref_create, "cublasLtMatmulPreferenceCreate"},
      {(void **)&b->pref_destroy, "cublasLtMatmulPreferenceDestroy"},
      {(void **)&b->pref_set, "cublasLtMatmulPreferenceSetAttribute"},
      {(void **)&b->heuristic, "cublasLtMatmulAlgoGetHeuristic"},
      {(void **)&b->matmul, "cublasLtMatmul"},
      {(void **)&b->status_string, "cublasLtGetStatusString"},
  };
  if (tgc_rt_dlsym_all(lib, syms, sizeof syms / sizeof syms[0], "libcublasLt", err)) {
    dlclose(lib);
    free(b);
    return NULL;
  }
  cublasStatus_t s = b->create(&b->h);
  if (s) {
    blas_error(b, err, "cublasLtCreate", s);
    free(b);
    return NULL;
  }
  if (tgc_rt_cuda_alloc(c, WORKSPACE_BYTES, &b->ws, err)) {
    b->destroy(b->h);
    free(b);
    return NULL;
  }
  return b;
}

void tgc_rt_blas_close(tgc_rt_blas *b) {
  if (!b)
    return;
  for (int i = 0; i < b->nplans; i++) {
    plan *p = &b->plans[i];
    b->layout_destroy(p->la);
    b->layout_destroy(p->lb);
    b->layout_destroy(p->lc);
    b->desc_destroy(p->desc);
  }
  tgc_rt_cuda_free(b->cuda, b->ws);
  b->destroy(b->h);
  free(b);
}

static int cuda_type(tgc_dtype dt) {
  switch (dt) {
  case TGC_DT_F16: return R_16F;
  case TGC_DT_BF16: return R_16BF;
  case TGC_DT_F64: return R_64F;
  case TGC_DT_I8: return R_8I;
  case TGC_DT_I32: return R_32I;
  case TGC_DT_F8E4M3: return R_8F_E4M3;
  default: return R_32F;
  }
}

static bool same_shape(const tgc_rt_gemm *x, const tgc_rt_gemm *y) {
  return x->dtype == y->dtype && x->ab_dtype == y->ab_dtype && x->trans_a == y->trans_a && x->trans_b == y->trans_b && x->batch_a == y->batch_a &&
         x->batch_b == y->batch_b && x->batch == y->batch && x->m == y->m && x->n == y->n && x->k == y->k &&
         x->epilogue == y->epilogue && (x->c != 0) == (y->c != 0) && x->ldd == y->ldd && (x->scale != 0) == (y->scale != 0);
}

/* A column-major ROWS x COLS layout with leading dimension LD (0: ROWS). */
static int layout(tgc_rt_blas *b, cublasLtMatrixLayout_t *l, int type, int64_t rows, int64_t cols, int64_t ld,
                  int64_t batch, int64_t stride, tgc_rt_err *err) {
  if (!ld)
    ld = rows > 0 ? rows : 1;
  cublasStatus_t s = b->layout_create(l, type, (uint64_t)rows, (uint64_t)cols, ld);
  if (!s && batch > 1) {
    int32_t n = (int32_t)batch;
    s = b->layout_set(*l, LAYOUT_BATCH_COUNT, &n, sizeof n);
    if (!s)
      s = b->layout_set(*l, LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride);
  }
  return s ? blas_error(b, err, "cublasLtMatrixLayoutCreate", s) : 0;
}

static int make_plan(tgc_rt_blas *b, const tgc_rt_gemm *g, plan *p, tgc_rt_err *err) {
  memset(p, 0, sizeof *p);
  p->key = *g;
  p->key.a = p->key.b = p->key.bias = p->key.d = p->key.rows = 0;
  p->key.scale = g->scale ? 1 : 0;
  p->key.c = g->c ? 1 : 0;
  int type = cuda_type(g->dtype), abtype = cuda_type(g->ab_dtype);
  bool dbl = g->dtype == TGC_DT_F64, i32 = g->dtype == TGC_DT_I32;
  /* i8 x i8 -> i32: integer compute and scale (alpha 1, beta 0 as int32); fp8 and floats: fp32 (f64: f64) */
  cublasStatus_t s = b->desc_create(&p->desc, dbl ? COMPUTE_64F : i32 ? COMPUTE_32I : COMPUTE_32F,
                                    dbl ? R_64F : i32 ? R_32I : R_32F);
  if (s)
    return blas_error(b, err, "cublasLtMatmulDescCreate", s);
  /* cuBLASLt's first matrix is our B (n x k after op), its second our A (k x m after op) */
  int32_t ta = g->trans_b ? OP_T : OP_N, tb = g->trans_a ? OP_T : OP_N;
  uint32_t epi = EPI_DEFAULT;
  switch (g->epilogue) {
  case TGC_RT_EPI_NONE: epi = EPI_DEFAULT; break;
  case TGC_RT_EPI_BIAS: epi = EPI_BIAS; break;
  case TGC_RT_EPI_GELU_BIAS: epi = EPI_GELU | EPI_BIAS; break;
  case TGC_RT_EPI_RELU_BIAS: epi = EPI_RELU | EPI_BIAS; break;
  case TGC_RT_EPI_GELU: epi = EPI_GELU; break;
  case TGC_RT_EPI_RELU: epi = EPI_RELU; break;
  }
  int32_t btype = type;
  if ((s = b->desc_set(p->desc, DESC_TRANSA, &ta, sizeof ta)) || (s = b->desc_set(p->desc, DESC_TRANSB, &tb, sizeof tb)) ||
      (s = b->desc_set(p->desc, DESC_EPILOGUE, &epi, sizeof epi)) ||
      (g->epilogue == TGC_RT_EPI_BIAS || g->epilogue == TGC_RT_EPI_GELU_BIAS || g->epilogue == TGC_RT_EPI_RELU_BIAS
           ? (s = b->desc_set(p->desc, DESC_BIAS_DATA_TYPE, &btype, sizeof btype))
           : 0))
    return blas_error(b, err, "cublasLtMatmulDescSetAttribute", s);
  /* a per-column scale: cuBLASLt's outer-vector mode, its first matrix (our B: n) scaled by SCALE, the second (our
   * A: m) by ROWS */
  int32_t outer = SCALE_OUTER_VEC_32F;
  /* the heuristic wants the vectors too (status 7 without them; measured on an H100): the first call's, reset at
   * every call */
  if (g->scale && ((s = b->desc_set(p->desc, DESC_A_SCALE_MODE, &outer, sizeof outer)) ||
                   (s = b->desc_set(p->desc, DESC_B_SCALE_MODE, &outer, sizeof outer)) ||
                   (s = b->desc_set(p->desc, DESC_A_SCALE_POINTER, &g->scale, sizeof g->scale)) ||
                   (s = b->desc_set(p->desc, DESC_B_SCALE_POINTER, &g->rows, sizeof g->rows))))
    return blas_error(b, err, "cublasLtMatmulDescSetAttribute(outer-vector scale mode)", s);
  int64_t ldd = g->ldd ? g->ldd : g->n;
  if (layout(b, &p->la, abtype, g->trans_b ? g->k : g->n, g->trans_b ? g->n : g->k, 0, g->batch,
             g->batch_b ? g->k * g->n : 0, err) ||
      layout(b, &p->lb, abtype, g->trans_a ? g->m : g->k, g->trans_a ? g->k : g->m, 0, g->batch,
             g->batch_a ? g->m * g->k : 0, err) ||
      layout(b, &p->lc, type, g->n, g->m, ldd, g->batch, g->m * ldd, err))
    return -1;
  cublasLtMatmulPreference_t pref;
  if ((s = b->pref_create(&pref)))
    return blas_error(b, err, "cublasLtMatmulPreferenceCreate", s);
  size_t ws = WORKSPACE_BYTES;
  b->pref_set(pref, PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  cublasLtMatmulHeuristicResult_t res[8];
  int found = 0;
  s = b->heuristic(b->h, p->desc, p->la, p->lb, p->lc, p->lc, pref, 8, res, &found);
  b->pref_destroy(pref);
  if (s || found == 0)
    return s ? blas_error(b, err, "cublasLtMatmulAlgoGetHeuristic", s)
             : tgc_rt_errorf(err, "cuBLASLt has no algorithm for a %s x %s -> %s GEMM [%lld x %lld x %lld] with epilogue %d",
                             tgc_dtype_name(g->ab_dtype), tgc_dtype_name(g->ab_dtype), tgc_dtype_name(g->dtype), (long long)g->m, (long long)g->n, (long long)g->k, g->epilogue);
  for (int i = 0; i < found; i++)
    p->algo[i] = res[i].algo;
  p->nalgo = found;
  return 0;
}

static cublasStatus_t run(tgc_rt_blas *b, const plan *p, const cublasLtMatmulAlgo_t *algo, const tgc_rt_gemm *g) {
  float one = 1, zero = 0, af = g->scale ? 1.0f : (float)g->alpha; /* with outer-vector scales: in ROWS */
  double oned = 1, zerod = 0, ad = g->alpha;
  int32_t onei = 1, zeroi = 0;
  bool dbl = g->dtype == TGC_DT_F64, i32 = g->dtype == TGC_DT_I32;
  const void *alpha = dbl ? (const void *)&ad : i32 ? (const void *)&onei : (const void *)&af;
  const void *beta = g->c ? (dbl ? (const void *)&oned : i32 ? (const void *)&onei : (const void *)&one)
                          : dbl ? (const void *)&zerod : i32 ? (const void *)&zeroi : (const void *)&zero;
  tgc_rt_devptr c = g->c ? g->c : g->d;
  return b->matmul(b->h, p->desc, alpha, (const void *)(uintptr_t)g->b, p->la, (const void *)(uintptr_t)g->a, p->lb,
                   beta, (const void *)(uintptr_t)c, p->lc, (void *)(uintptr_t)g->d, p->lc, algo,
                   (void *)(uintptr_t)b->ws, WORKSPACE_BYTES, tgc_rt_cuda_stream(b->cuda));
}

/* The first call of a shape times cuBLASLt's candidate algorithms on the real operands (a warm-up and three
 * runs each, CUDA events) and keeps the fastest; every run computes the same D, so the result is unaffected. */
static int tune(tgc_rt_blas *b, plan *p, const tgc_rt_gemm *g, tgc_rt_err *err) {
  p->tuned = true;
  if (p->nalgo < 2)
    return 0;
  void *e0 = NULL, *e1 = NULL;
  if (tgc_rt_cuda_event(b->cuda, &e0, err) || tgc_rt_cuda_event(b->cuda, &e1, err))
    return -1;
  int best = 0;
  float best_ms = 0;
  for (int i = 0; i < p->nalgo; i++) {
    float ms = 0;
    bool ok = run(b, p, &p->algo[i], g) == 0 && tgc_rt_cuda_record(b->cuda, e0, err) == 0;
    for (int r = 0; r < 3 && ok; r++)
      ok = run(b, p, &p->algo[i], g) == 0;
    ok = ok && tgc_rt_cuda_record(b->cuda, e1, err) == 0 && tgc_rt_cuda_elapsed(b->cuda, e0, e1, &ms, err) == 0;
    if (ok && (i == 0 || ms < best_ms)) {
      best = i;
      best_ms = ms;
    }
  }
  tgc_rt_cuda_event_destroy(b->cuda, e0);
  tgc_rt_cuda_event_destroy(b->cuda, e1);
  cublasLtMatmulAlgo_t t = p->algo[0];
  p->algo[0] = p->algo[best];
  p->algo[best] = t;
  return 0;
}

int tgc_rt_blas_gemm(tgc_rt_blas *b, const tgc_rt_gemm *g, tgc_rt_err *err) {
  if (g->m == 0 || g->n == 0 || g->batch == 0)
    return 0;
  plan *p = NULL;
  for (int i = 0; i < b->nplans && !p; i++)
    if (same_shape(&b->plans[i].key, g))
      p = &b->plans[i];
  if (!p) {
    if (b->nplans == MAX_PLANS)
      return tgc_rt_errorf(err, "cuBLASLt: more than %d GEMM shapes in one run", MAX_PLANS);
    if (make_plan(b, g, &b->plans[b->nplans], err))
      return -1;
    p = &b->plans[b->nplans++];
  }
  if (g->bias) {
    cublasStatus_t s = b->desc_set(p->desc, DESC_BIAS_POINTER, &g->bias, sizeof g->bias);
    if (s)
      return blas_error(b, err, "cublasLtMatmulDescSetAttribute(bias)", s);
  }
  if (g->scale) {
    cublasStatus_t s = b->desc_set(p->desc, DESC_A_SCALE_POINTER, &g->scale, sizeof g->scale);
    if (!s)
      s = b->desc_set(p->desc, DESC_B_SCALE_POINTER, &g->rows, sizeof g->rows);
    if (s)
      return blas_error(b, err, "cublasLtMatmulDescSetAttribute(scale pointers)", s);
  }
  if (!p->tuned && !b->capturing && tune(b, p, g, err))
    return -1;
  cublasStatus_t s = run(b, p, &p->algo[0], g);
  return s ? blas_error(b, err, "cublasLtMatmul", s) : 0;
}

void tgc_rt_blas_capturing(tgc_rt_blas *b, bool on) { b->capturing = on; }

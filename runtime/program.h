/* A program: what the compiler hands the runtime, as plain data (no IR). It holds the CPU backend's execution
 * plan of the optimized entry function (runtime/plan.h) and, when the CUDA backend can run it, the CUDA program
 * made of it: kernels (canonical CUDA C source, and CUBIN/PTX images per architecture), launches whose grids
 * are polynomials over the plan's symbols, cuBLASLt GEMM descriptors, the buffer table with its aliasing
 * resolved, the steps in execution order and optionally a stored memory plan. Codegen builds one from a module
 * (codegen/program.c); an artifact (model.tgc) stores one (tgc_rt_program_sections) and libtgc_rt loads it back
 * (tgc_rt_program_load) without the parser, the passes or codegen.
 *
 * Every polynomial's symbol indices refer to PLAN->sym_names, so that the sizes bound from the inputs by
 * tgc_rt_bind_symbols size every buffer and grid. A program is immutable once built and may be shared by any
 * number of sessions and threads. */
#ifndef TGC_RT_PROGRAM_H
#define TGC_RT_PROGRAM_H

#include "arena.h"
#include "artifact.h"
#include "plan.h"
#include "rt.h"

#define TGC_RT_NONE UINT32_MAX /* an absent buffer index (a GEMM without bias or residual) */

typedef enum {
  TGC_RT_BUF_INPUT, /* argument INDEX of the entry function (a plan input) */
  TGC_RT_BUF_PARAM, /* the weight NAME */
  TGC_RT_BUF_TEMP,  /* an intermediate, placed in the session's arena by the memory plan */
} tgc_rt_buf_kind;

/* A buffer: the storage of one value and of every view of it that shares it (top-level reshapes). */
typedef struct tgc_rt_pbuffer {
  tgc_rt_buf_kind kind;
  uint32_t index;    /* INPUT: the plan input's index; otherwise 0 */
  const char *name;  /* PARAM: the weight's name; otherwise "" */
  tgc_rt_type type;  /* the owning value's type (known) */
  int first, last;   /* TEMP: the step that writes it first and the last step that reads it (results: NSTEPS) */
  int64_t pitch;     /* elements per row in memory when the rows are padded (a GEMM's D with ldd), else 0 */
  int64_t tail;      /* elements of zeros after the value (a weight padded for a GEMM's ldd), else 0 */
  bool pack_w4;      /* PARAM: an i4 [N, K] weight uploaded in the w4 GEMM kernel's order (tgc_rt_pack_w4), which
                      * every kernel reading this buffer expects (N * K / 2 bytes) */
  const char *loc;   /* "file:line:col" of the op that defines it ("" for an argument) */
  const char *op;    /* that op's name, a fusion by its kind ("" for an argument) */
} tgc_rt_pbuffer;

typedef enum {
  TGC_RT_GRID_ELEMENTS,  /* ceil(count / per_block) blocks of `block` threads */
  TGC_RT_GRID_ROWS,      /* `count` blocks (one per row) of `block` threads */
  TGC_RT_GRID_ATTENTION, /* grid (ceil(count / per_block), gy, gz) of `block` threads */
} tgc_rt_grid;

/* One launch of a generated kernel. Its parameters: a pointer per buffer of ARGS (inputs in order, the output
 * last), a `long long` per symbol of SYMS, then `int *err` (see tgc_rt_kerr). */
typedef struct tgc_rt_pkernel {
  const char *name;   /* k12_layer_norm: the kernel as printed by --emit=cuda */
  const char *kind;   /* "pointwise", "rows", "attention", "epilogue", "operand", "constant" */
  uint32_t source;    /* index into the program's sources (kernels that differ only in name share one) */
  uint32_t nargs;
  const uint32_t *args; /* buffer indices */
  uint32_t nsyms;
  const uint32_t *syms; /* plan symbol indices */
  tgc_rt_grid grid;
  tgc_rt_poly count, gy, gz;
  uint32_t block, per_block;
  int code;        /* what the kernel writes to *err (see tgc_rt_kerr_decode) */
  const char *loc; /* "file:line:col" of the launch (a fusion or one op) */
  const char *op;  /* the launch's name: the op's, a fusion by its kind */
} tgc_rt_pkernel;

/* Row-major, per batch entry: D = epilogue(op(A) op(B) + bias) + C, as tgc_rt_gemm (runtime/cublaslt.h). */
typedef struct tgc_rt_pgemm {
  uint32_t a, b, c, bias, d; /* buffer indices; c and bias may be TGC_RT_NONE */
  bool trans_a, trans_b, batch_a, batch_b;
  tgc_rt_poly batch, m, n, k;
  int epilogue;    /* a tgc_rt_epilogue */
  tgc_dtype dtype;
  tgc_dtype ab_dtype; /* A's and B's dtype: dtype, or i8 / f8e4m3 (a quantized contraction; see tgc_rt_gemm) */
  double alpha;       /* the product's factor: 1, or an fp8 GEMM's per-tensor rescale */
  uint32_t scale;     /* or TGC_RT_NONE; an fp8 GEMM's per-column rescale: the product times alpha scale[n], scale
                       * f32[n] (cuBLASLt's outer-vector scales) */
  int64_t ldd;     /* D's padded row pitch in elements, else 0 (then n is computed as ldd: see codegen/cuda_codegen.h) */
  const char *loc; /* "file:line:col" of the matmul (or its fusion) */
} tgc_rt_pgemm;

typedef enum {
  TGC_RT_ALWAYS,
  TGC_RT_WHEN_LE, /* the step runs when WHEN <= LIMIT at the bound sizes */
  TGC_RT_WHEN_GT, /* ... when WHEN > LIMIT (two alternatives, by the number of rows: the w4 GEMM) */
  TGC_RT_WHEN_RANGE, /* ... when LO < WHEN <= LIMIT (one of three or more) */
} tgc_rt_when;

typedef struct tgc_rt_pstep {
  bool gemm;
  uint32_t index; /* into kernels or gemms */
  tgc_rt_when when;
  tgc_rt_poly when_poly;
  int64_t limit;
  int64_t lo; /* TGC_RT_WHEN_RANGE's lower bound (exclusive) */
} tgc_rt_pstep;

/* A distinct kernel source: complete CUDA C for NVRTC whose kernel is named "tgc_kernel". */
typedef struct tgc_rt_psource {
  char key[17];     /* tgc_rt_kernel_key of TEXT: its name in artifacts ("kernel/<key>.cubin") */
  const char *text;
} tgc_rt_psource;

/* A compiled kernel image. */
typedef struct tgc_rt_pimage {
  uint32_t source; /* index into sources */
  const char *arch; /* "sm_90" for a CUBIN; "" for PTX (any architecture the driver can compile it for) */
  const void *data;
  size_t size;
} tgc_rt_pimage;

typedef struct tgc_rt_program {
  tgc_arena arena;           /* owns everything below */
  const tgc_rt_plan *plan;   /* the CPU backend's plan of the optimized entry function */
  const char *weights;       /* the module's weights file as written in it (relative to the program's file), or NULL */
  const char *ir;            /* the optimized IR text, for inspection only (may be NULL) */

  /* the CUDA program; when the CUDA backend cannot run the function, HAS_CUDA is false and CUDA_WHY says why
   * (at CUDA_WHY_LOC, the first launch it cannot generate, for op CUDA_WHY_OP) */
  bool has_cuda;
  const char *cuda_why, *cuda_why_loc, *cuda_why_op;
  uint32_t nbuffers;
  const tgc_rt_pbuffer *buffers; /* in order of first use */
  uint32_t nkernels;
  const tgc_rt_pkernel *kernels;
  uint32_t ngemms;
  const tgc_rt_pgemm *gemms;
  uint32_t nsteps;
  const tgc_rt_pstep *steps;
  uint32_t nsources;
  const tgc_rt_psource *sources;
  const uint32_t *output_buffers; /* plan->noutputs entries: the buffer holding each result */
  uint32_t nimages;
  const tgc_rt_pimage *images;
  const char *memplan;      /* a stored memory plan's text (runtime/memplan.h), or NULL */
  size_t memplan_len;
} tgc_rt_program;

/* An empty program whose arena the builder fills (the caller sets every field). */
tgc_rt_program *tgc_rt_program_new(void);
void tgc_rt_program_free(tgc_rt_program *p);

/* Checks that P is internally consistent (every index in range, every poly's symbols in the plan, every kernel's
 * argument count and code, steps covering each kernel and GEMM once, temporaries' live ranges inside the steps,
 * the plan itself with tgc_rt_plan_check); the loader runs it on every program it reads, the builder in debug
 * builds. The message names the first inconsistency. */
int tgc_rt_program_check(const tgc_rt_program *p, tgc_rt_err *err);

/* Buffer B's size in bytes at the symbol values SYMS (padded rows included, the zero tail not); false when it
 * overflows 2^62. The one size rule of a buffer, for the memory plan and the sessions. */
bool tgc_rt_pbuffer_bytes(const tgc_rt_pbuffer *b, const int64_t *syms, uint64_t *bytes);

/* The errors a kernel reports through *err (the last one written wins; 0 is none). */
typedef enum {
  TGC_RT_KERR_INDEX,        /* an index is out of range: *err = code */
  TGC_RT_KERR_NEG_EXPONENT, /* an integer pow with a negative exponent: *err = -(4 * code + 1) */
  TGC_RT_KERR_DIV_ZERO,     /* an integer division by zero: *err = -(4 * code + 2) */
} tgc_rt_kerr;
int tgc_rt_kerr_value(int code, tgc_rt_kerr kind);
/* Splits a nonzero *err into the kernel's code and the error's kind. */
void tgc_rt_kerr_decode(int value, int *code, tgc_rt_kerr *kind);
/* The error's message as the CPU backend words it, after the op's name: "integer division by zero". */
const char *tgc_rt_kerr_message(tgc_rt_kerr kind);

/* ---- storing a program ------------------------------------------------------------------------- */

/* The artifact sections of P (runtime/artifact.h): "program" (the plan, the CUDA program and the weights
 * reference, as JSON), "kernel/<key>.cu" per source, "kernel/<key>.cubin" or ".ptx" per image, "plan" (the
 * memory plan, when stored), "ir" (when set). The sections point into P and into OUT's arena (freed with
 * tgc_rt_sections_free). */
typedef struct tgc_rt_sections {
  tgc_arena arena;
  struct tgc_rt_section *v;
  size_t n;
} tgc_rt_sections;
int tgc_rt_program_sections(const tgc_rt_program *p, tgc_rt_sections *out, tgc_rt_err *err);
void tgc_rt_sections_free(tgc_rt_sections *s);

/* Loads the program of the artifact file PATH: every section validated (a malformed or inconsistent one is an
 * error naming the section and what is wrong), images copied, nothing trusted. */
int tgc_rt_program_load(const char *path, tgc_rt_program **out, tgc_rt_err *err);
/* The same from N sections in memory (as tgc_rt_program_sections makes them, or an artifact's); FILE names them
 * in messages ("FILE: program: kernels[3].args[1]: buffer 99 out of range (57 buffers)"). Nothing of S is
 * referenced by the program. */
int tgc_rt_program_read(const struct tgc_rt_section *s, size_t n, const char *file, tgc_rt_program **out,
                        tgc_rt_err *err);

/* ---- compiling a program's kernels -------------------------------------------------------------- */

struct tgc_rt_nvrtc;
struct tgc_rt_kcache_stats;
/* Adds to P (before it is shared) an image of every source for ARCH through NV and the kernel cache: for "sm_XX"
 * a CUBIN for sm_XX and a PTX for compute_XX, for "compute_XX" a PTX alone. Sources that already have an image
 * of that kind are skipped. A failure names the first kernel of the source ("kernel k3_add: <NVRTC's log>").
 * STATS (may be NULL) counts the cache's hits and misses. */
int tgc_rt_program_compile(tgc_rt_program *p, struct tgc_rt_nvrtc *nv, const char *arch,
                           struct tgc_rt_kcache_stats *stats, tgc_rt_err *err);

#endif

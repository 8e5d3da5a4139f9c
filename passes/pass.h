/* The pass interface: a pass is a function over a module, registered in passes.def with its name, summary,
 * options and contract (the IR properties it requires and preserves). The pass manager (pass_manager.c)
 * parses textual pipelines, runs passes with instrumentation (IR dumps, timing, verification) and checks
 * contracts between passes. */
#ifndef TGC_PASS_H
#define TGC_PASS_H

#include "ir.h"

/* IR properties a pass can require or preserve. The pass manager checks a pass's requirements before it runs,
 * and under --verify-each that every property it claims to preserve, and that held before it, still holds
 * after it (the checks are in pass_manager.c, one per property). */
enum {
  TGC_PROP_TYPED = 1u << 0,   /* every value has a type (shape-infer establishes it) */
  TGC_PROP_UNFUSED = 1u << 1, /* no fusion op (fuse breaks it) */
};

/* One option of a pass instance, as written in the pipeline: `fuse{max-ops=32}`. */
typedef struct tgc_pass_option {
  const char *key, *value;
} tgc_pass_option;

typedef struct tgc_pass_ctx {
  tgc_module *module;
  tgc_diag *diag;
  tgc_arena *scratch; /* freed when the pass returns */
  const tgc_pass_option *options;
  uint32_t noptions;
  bool changed; /* set by a pass that changed the IR */
  /* remarks (-Rpass=NAME): non-NULL when the user asked for this pass's remarks */
  const char *remark_pass;
  /* -Rpass-missed=NAME: non-NULL when the user asked for the missed-optimization remarks of a pass */
  const char *remark_missed;
  /* The module's weights file (its 'weights' attribute resolved, or --weights=), or NULL: passes that read weight
   * values (quantize) open it; weights a pass creates go to the module (tgc_module_add_weight). */
  const char *weights_path;
  /* The relative L2 error this pass's rewrite is expected to introduce, set by a pass that changes the numbers on
   * purpose (quantize): --verify-each=numerics judges the pass by it instead of the dtype's tolerance. 0: exact
   * rewrite, judged by the dtype's tolerance. */
  double numerics_tol;
} tgc_pass_ctx;

/* A pass returns 0, or nonzero after reporting its errors through ctx->diag. */
typedef int (*tgc_pass_fn)(tgc_pass_ctx *ctx);

/* Option accessors: a malformed value is reported (with the pass and key) and *bad set. */
int64_t tgc_pass_opt_int(tgc_pass_ctx *ctx, const char *key, int64_t dflt, bool *bad);
bool tgc_pass_opt_bool(tgc_pass_ctx *ctx, const char *key, bool dflt, bool *bad);
double tgc_pass_opt_float(tgc_pass_ctx *ctx, const char *key, double dflt, bool *bad);
/* The value of option KEY as written, or NULL when the pipeline does not give it. */
const char *tgc_pass_opt_str(tgc_pass_ctx *ctx, const char *key);

struct tgc_rt_weights;
struct tgc_rt_err;
/* The weights a run of module M binds: those of the file PATH (may be NULL) and the weights passes added to M
 * (views of M's memory: M must outlive the set). 0 with *OUT set (release it), or -1 with ERR set. */
int tgc_module_weights_open(const tgc_module *m, const char *path, struct tgc_rt_weights **out,
                            struct tgc_rt_err *err);

#define TGC_PASS(id, name, summary, options, requires, preserves, fn) int fn(tgc_pass_ctx *ctx);
#include "passes.def"
#undef TGC_PASS

/* Appends a summary of the kernels the entry function would launch (one per computing top-level op; views,
 * params and constants launch nothing): "launches: N in @main: 48 fusion:gemm_epilogue, 25 layer_norm, ...". */
void tgc_print_launches(const tgc_module *m, tgc_strbuf *out);

/* ---- helpers shared by passes ---- */

/* A remark at OP's location, "MESSAGE [-Rpass=NAME]" (or [-Rpass-missed=NAME] when MISSED), printed when the user
 * asked for this pass's remarks of that kind (ctx->remark_pass or ctx->remark_missed). */
void tgc_pass_remark(tgc_pass_ctx *ctx, bool missed, const tgc_op *op, const char *fmt, ...) TGC_PRINTF(4, 5);

/* Erases OP when none of its results is used; returns true when it did. */
bool tgc_pass_erase_if_dead(tgc_op *op);
/* True when OP may be removed or reordered freely (no collective, no terminator). */
bool tgc_op_is_pure(const tgc_op *op);

#endif

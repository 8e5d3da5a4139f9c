/* An execution plan: the IR-free form of one function that a backend runs. The compiler lowers a verified
 * function into a plan (codegen/lower.c); the plan names value slots instead of SSA values, keeps every
 * declared result type as polynomials over the function's symbols, and keeps each step's attributes and
 * source location so that a backend can report errors at the op that failed. */
#ifndef TGC_RT_PLAN_H
#define TGC_RT_PLAN_H

#include "rt.h"
#include "tgc/opcode.h"

/* coeff * prod(symbols[syms[i]]) */
typedef struct tgc_rt_term {
  int64_t coeff;
  uint32_t nsyms;
  const uint32_t *syms;
} tgc_rt_term;

typedef struct tgc_rt_poly {
  uint32_t nterms;
  const tgc_rt_term *terms;
} tgc_rt_poly;

/* A declared tensor type; known is false when the IR left the type to inference. */
typedef struct tgc_rt_type {
  bool known;
  tgc_dtype dtype;
  uint32_t rank;
  const tgc_rt_poly *dims;
} tgc_rt_type;

typedef enum {
  TGC_RT_ATTR_INT,
  TGC_RT_ATTR_FLOAT,
  TGC_RT_ATTR_STR,
  TGC_RT_ATTR_BOOL,
  TGC_RT_ATTR_DTYPE,
  TGC_RT_ATTR_SYM,
  TGC_RT_ATTR_LIST,
} tgc_rt_attr_kind;

typedef struct tgc_rt_attr tgc_rt_attr;
struct tgc_rt_attr {
  const char *name; /* set on a step's top-level attributes; NULL for list items */
  tgc_rt_attr_kind kind;
  int64_t i;     /* INT, BOOL, DTYPE */
  double f;      /* FLOAT (and INT, converted) */
  const char *s; /* STR, SYM */
  uint32_t n;    /* LIST */
  const tgc_rt_attr *items;
};

typedef struct tgc_rt_plan tgc_rt_plan;

typedef struct tgc_rt_step {
  tgc_opcode op;
  uint32_t nin, nout;
  const uint32_t *in, *out;     /* slots */
  const tgc_rt_type *out_types; /* nout declared types */
  uint32_t nattrs;
  const tgc_rt_attr *attrs;
  const tgc_rt_plan *region; /* a fusion's body: its inputs are the step's operands, its outputs the yield */
  int64_t mesh_size;         /* collectives: devices in the group (product of the named mesh axes) */
  const char *loc;           /* "file:line:col" of the op */
} tgc_rt_step;

struct tgc_rt_plan {
  const char *name;
  uint32_t nsyms;
  const char *const *sym_names;
  uint32_t nslots;
  uint32_t ninputs;
  const uint32_t *input_slots;
  const char *const *input_names;
  const tgc_rt_type *input_types;
  uint32_t noutputs;
  const uint32_t *output_slots;
  const char *const *output_names; /* the returned values' names ("" when unnamed) */
  const tgc_rt_type *output_types;
  uint32_t nsteps;
  const tgc_rt_step *steps;
};

const tgc_rt_attr *tgc_rt_step_attr(const tgc_rt_step *s, const char *name);
int64_t tgc_rt_step_int(const tgc_rt_step *s, const char *name, int64_t dflt);
double tgc_rt_step_float(const tgc_rt_step *s, const char *name, double dflt);
bool tgc_rt_step_bool(const tgc_rt_step *s, const char *name, bool dflt);
const char *tgc_rt_step_str(const tgc_rt_step *s, const char *name, const char *dflt);

/* Checks that every type of PLAN (inputs, outputs, every step's results, fusion regions included) has a
 * rank of at most TGC_RT_MAX_RANK, so that backends may keep shapes in fixed arrays: a plan built from IR
 * the verifier accepted always passes; the runtime checks anyway rather than trust its input. */
int tgc_rt_plan_check(const tgc_rt_plan *plan, tgc_rt_err *err);

/* Evaluates P with the symbol values SYMS; false on int64 overflow. */
bool tgc_rt_poly_eval(const tgc_rt_poly *p, const int64_t *syms, int64_t *out);

/* Checks PLAN's sizes at the symbol values SYMS (bound by tgc_rt_bind_symbols) before anything runs: every
 * declared type evaluates without overflow to non-negative dims, every reshape keeps its operand's element
 * count, every pad's result dims fit in int64; each error at the op, with the message the CPU backend gives
 * when it runs the step. The CUDA backend calls it before it sizes its buffers. */
int tgc_rt_plan_check_sizes(const tgc_rt_plan *plan, const int64_t *syms, tgc_rt_err *err);

/* ---- the CPU reference backend ----------------------------------------------------------------- */

typedef struct tgc_rt_weights tgc_rt_weights; /* a weights set (runtime/session.h) */

/* An observer of a CPU run, for tools that need intermediate values (tgc calibrate). FN is called after each step
 * of the run's plan (not of fusion regions) has computed and checked its results: STEP is its index in
 * plan->steps and OUTS its S->nout results, borrowed for the call. Lowering (codegen/lower.c) makes step k the
 * k-th op of the function body (the terminator excluded) and numbers slots by the function's arguments, then the
 * ops' results in order, so the compiler side maps a step back to its IR op without the runtime knowing IR.
 * A nonzero return stops the run; FN then sets ERR's message. */
typedef struct tgc_rt_observer {
  int (*fn)(void *user, const tgc_rt_plan *plan, uint32_t step, const tgc_rt_tensor *outs, tgc_rt_err *err);
  void *user;
} tgc_rt_observer;

typedef struct tgc_rt_cpu_opts {
  const tgc_rt_weights *weights;    /* may be NULL when the plan has no params */
  const char *weights_name;         /* for messages (NULL: the set's label) */
  const tgc_rt_observer *observer; /* NULL: none */
} tgc_rt_cpu_opts;

/* Runs PLAN on INPUTS (plan->ninputs tensors, in order). On success OUTPUTS (plan->noutputs, caller's array)
 * receive owned tensors the caller frees. Symbols are bound from the input shapes; any mismatch (an input's
 * rank, dtype or dim against its declared type, a result against its declared type, a parameter against the
 * weights) is an error naming the input or the op's location. */
int tgc_rt_cpu_run(const tgc_rt_plan *plan, const tgc_rt_tensor *inputs, tgc_rt_tensor *outputs,
                   const tgc_rt_cpu_opts *opts, tgc_rt_err *err);

/* Binds the plan's symbols (SYMS, plan->nsyms entries) from the input shapes, as tgc_rt_cpu_run does; every
 * backend binds the same way. */
int tgc_rt_bind_symbols(const tgc_rt_plan *plan, const tgc_rt_tensor *inputs, int64_t *syms, tgc_rt_err *err);

/* The weight of the param step S (TGC_OP_PARAM, its 'name' attribute) in OPTS->weights, into W (borrowed from
 * the weights): an error at the op when there are no weights, the weights lack it, or its dtype or shape differs
 * from the declared type evaluated at SYMS. The one check of a weight, for every backend. */
int tgc_rt_param_weight(const tgc_rt_step *s, const int64_t *syms, const tgc_rt_cpu_opts *opts, tgc_rt_tensor *w,
                        tgc_rt_err *err);

/* What the CPU backend can run: every op of ops.def, on every dtype. */
bool tgc_rt_cpu_supports(tgc_opcode op, tgc_dtype dt);

#endif

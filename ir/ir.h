/* The tgc IR: modules, functions, blocks, ops, SSA values, typed attributes, tensor types with symbolic
 * dims, and the builder. Every object of a module lives in the module's arena and dies with it. */
#ifndef TGC_IR_H
#define TGC_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"

#include "tgc/dtype.h"
#include "tgc/limits.h"
#include "tgc/opcode.h"

/* ---- symbolic dims ----------------------------------------------------------------------------- */

/* A dim is a polynomial over named symbols with integer coefficients, kept canonical: terms sorted
 * (higher degree first, then by symbol names), symbols inside a term sorted by name, no zero terms,
 * the constant term last. Two dims are equal iff their canonical forms are equal, so `S*B` == `B*S`.
 * Dims are immutable and arena-allocated; the constant 0 has no terms. */
typedef struct tgc_sym {
  const char *name;
} tgc_sym;

typedef struct tgc_term {
  int64_t coeff;
  uint32_t nsyms;           /* degree; repeated symbols for powers */
  const tgc_sym *const *syms; /* sorted by name */
} tgc_term;

typedef struct tgc_dim {
  uint32_t nterms;
  const tgc_term *terms;
} tgc_dim;

typedef enum {
  TGC_DIM_OK,
  TGC_DIM_OVERFLOW, /* a coefficient left the int64 range */
  TGC_DIM_TOO_BIG,  /* too many terms or too high a degree to be a sensible shape */
  TGC_DIM_UNBOUND,  /* tgc_dim_eval: a symbol without a size */
} tgc_dim_status;

const tgc_dim *tgc_dim_const(tgc_arena *a, int64_t v);
const tgc_dim *tgc_dim_sym(tgc_arena *a, const tgc_sym *s);
tgc_dim_status tgc_dim_add(tgc_arena *a, const tgc_dim *x, const tgc_dim *y, const tgc_dim **out);
tgc_dim_status tgc_dim_sub(tgc_arena *a, const tgc_dim *x, const tgc_dim *y, const tgc_dim **out);
tgc_dim_status tgc_dim_mul(tgc_arena *a, const tgc_dim *x, const tgc_dim *y, const tgc_dim **out);
bool tgc_dim_equal(const tgc_dim *x, const tgc_dim *y);
bool tgc_dim_is_const(const tgc_dim *d, int64_t *value);
/* Appends the canonical spelling (`B*S + 1`, `2*S`, `-B + 4`) to BUF. */
void tgc_dim_print(const tgc_dim *d, struct tgc_strbuf *buf);

/* The value of D when symbol NAMES[i] has size SIZES[i] (i < N): the compiler's one evaluation of a dim (the
 * runtime's is tgc_rt_poly_eval, over a plan's symbol indices). TGC_DIM_OK with *OUT set; TGC_DIM_OVERFLOW when a
 * product or the sum leaves the int64 range; TGC_DIM_UNBOUND when a symbol of D is not in NAMES, *UNBOUND (when
 * non-NULL) naming it. */
tgc_dim_status tgc_dim_eval(const tgc_dim *d, const char *const *names, const int64_t *sizes, uint32_t n,
                            int64_t *out, const char **unbound);

/* Sizes of symbols, as the command line and pass options spell them: `B=8,S=512`. The one parser of such lists
 * (tgc --plan-dims, tgc run --dim, plan-memory{dims=...}). Items are SYM=N, SYM a .tir identifier and N a decimal
 * integer from 0 to INT64_MAX, separated by ',' or ';' (the same rule everywhere; inside a pass's options, where
 * ',' separates the options, only ';' can be written). A symbol given twice is an error. */
typedef struct tgc_sym_sizes {
  uint32_t n, cap;
  const char **names; /* owned: tgc_sym_sizes_free */
  int64_t *sizes;
} tgc_sym_sizes;

/* Appends the items of TEXT to S (a zeroed or previously filled list). False on the first bad item, with the
 * reason, naming the item, appended to WHY ("item 'S=x' is not SYM=N with N an integer from 0 to ..."); S then
 * holds the items before it. */
bool tgc_sym_sizes_parse(tgc_sym_sizes *s, const char *text, struct tgc_strbuf *why);
/* The index of NAME in S, or -1. */
int tgc_sym_sizes_find(const tgc_sym_sizes *s, const char *name);
void tgc_sym_sizes_free(tgc_sym_sizes *s);

/* ---- types ------------------------------------------------------------------------------------- */

/* A ranked tensor type; rank 0 is a scalar (`f32[]`). */
typedef struct tgc_type {
  tgc_dtype dtype;
  uint32_t rank;
  const tgc_dim *const *dims;
} tgc_type;

bool tgc_type_equal(const tgc_type *a, const tgc_type *b);
/* Whether A and B have the same dims (any dtypes); false when either is NULL. */
bool tgc_type_same_shape(const tgc_type *a, const tgc_type *b);
void tgc_type_print(const tgc_type *t, struct tgc_strbuf *buf);

/* ---- attributes -------------------------------------------------------------------------------- */

typedef enum {
  TGC_ATTR_INT,
  TGC_ATTR_FLOAT,
  TGC_ATTR_STR,
  TGC_ATTR_BOOL,
  TGC_ATTR_DTYPE,
  TGC_ATTR_SYM, /* @name: a reference to a module-level symbol such as a mesh */
  TGC_ATTR_LIST,
} tgc_attr_kind;

typedef struct tgc_attr tgc_attr;
struct tgc_attr {
  tgc_attr_kind kind;
  union {
    int64_t i;
    double f;
    const char *s; /* STR and SYM; NUL-terminated, STR may hold embedded NULs: see len */
    bool b;
    tgc_dtype dt;
    struct {
      uint32_t n;
      const tgc_attr *const *items;
    } list;
  } u;
  size_t len; /* byte length of a STR */
};

typedef struct tgc_named_attr {
  const char *name;
  const tgc_attr *value;
  tgc_loc loc;
} tgc_named_attr;

/* A small, ordered attribute dictionary (source order is kept and printed). */
typedef struct tgc_attrs {
  uint32_t n, cap;
  tgc_named_attr *items;
} tgc_attrs;

const tgc_attr *tgc_attrs_get(const tgc_attrs *d, const char *name);
/* Appends NAME, which the caller knows is not present yet. */
void tgc_attrs_append(tgc_arena *a, tgc_attrs *d, const char *name, const tgc_attr *v, tgc_loc loc);
/* Sets or replaces NAME. */
void tgc_attrs_set(tgc_arena *a, tgc_attrs *d, const char *name, const tgc_attr *v, tgc_loc loc);
bool tgc_attr_equal(const tgc_attr *x, const tgc_attr *y);
void tgc_attr_print(const tgc_attr *v, struct tgc_strbuf *buf);

const tgc_attr *tgc_attr_int(tgc_arena *a, int64_t v);
const tgc_attr *tgc_attr_float(tgc_arena *a, double v);
const tgc_attr *tgc_attr_str(tgc_arena *a, const char *s, size_t len);
const tgc_attr *tgc_attr_bool(tgc_arena *a, bool v);
const tgc_attr *tgc_attr_dtype(tgc_arena *a, tgc_dtype v);
const tgc_attr *tgc_attr_symref(tgc_arena *a, const char *name);
const tgc_attr *tgc_attr_list(tgc_arena *a, const tgc_attr *const *items, uint32_t n);
const tgc_attr *tgc_attr_ints(tgc_arena *a, const int64_t *v, uint32_t n);

/* ---- values, ops, blocks, functions, modules --------------------------------------------------- */

typedef struct tgc_value tgc_value;
typedef struct tgc_op tgc_op;
typedef struct tgc_block tgc_block;
typedef struct tgc_func tgc_func;
typedef struct tgc_module tgc_module;
typedef struct tgc_use tgc_use;

/* One operand slot of an op; threaded on its value's use list. */
struct tgc_use {
  tgc_value *value;
  tgc_op *user;
  tgc_use *next;
  tgc_use **prevp;
};

struct tgc_value {
  const char *name;    /* name hint from the source or the creator; may be NULL */
  const tgc_type *type; /* NULL until known (types are optional on ops before shape inference) */
  tgc_op *def;         /* defining op, or NULL for a block argument */
  tgc_block *block;    /* for a block argument: its block */
  uint32_t index;      /* result number or argument number */
  tgc_use *uses;
  tgc_loc loc;
};

struct tgc_op {
  tgc_opcode opcode;
  uint32_t noperands;
  tgc_use *operands;
  uint32_t nresults;
  tgc_value *results;
  tgc_attrs attrs;
  tgc_block *region; /* the isolated region of a TGC_OPF_REGION op */
  tgc_block *parent;
  tgc_op *prev, *next;
  tgc_loc loc;
};

/* A single-block region (function body or op region): arguments and an op list ending in a terminator. */
struct tgc_block {
  uint32_t nargs;
  tgc_value **args;
  tgc_op *first, *last;
  tgc_op *parent_op;     /* the op owning this region, or NULL for a function body */
  tgc_func *parent_func; /* the function this block is (or is nested in) */
  tgc_loc loc;
};

struct tgc_func {
  const char *name;
  tgc_block *body; /* arguments are the function's parameters */
  uint32_t nresults;
  const tgc_type **result_types;
  tgc_attrs attrs;
  tgc_func *next;
  tgc_module *module;
  tgc_loc loc;
};

typedef struct tgc_mesh {
  const char *name;
  uint32_t naxes;
  const char **axis_names;
  int64_t *axis_sizes;
  struct tgc_mesh *next;
  tgc_loc loc;
} tgc_mesh;

/* A weight a pass created (a quantized tensor, its scales): a named host tensor owned by the module, laid out as the
 * runtime lays tensors out (row-major, one byte per i4 or bool element). Params name it like any weight; numeric
 * verification binds it, and the driver writes it into the safetensors file beside its output (`-o OUT.tir` writes
 * OUT.safetensors). */
typedef struct tgc_module_weight {
  const char *name;
  tgc_dtype dtype;
  uint32_t rank;
  int64_t shape[TGC_MAX_RANK];
  void *data;        /* in the module's arena: freed with the module */
  size_t nbytes;
  struct tgc_module_weight *next;
} tgc_module_weight;

struct tgc_module {
  tgc_arena arena;
  const char *name;
  tgc_attrs attrs;
  tgc_func *funcs, *last_func;
  tgc_mesh *meshes, *last_mesh;
  tgc_module_weight *weights, *last_weight; /* created by passes, in creation order */
  tgc_strmap syms; /* interned dim symbols by name */
  tgc_loc loc;
};

tgc_module *tgc_module_create(const char *name);
void tgc_module_destroy(tgc_module *m);
/* The interned symbol NAME (LEN bytes) of module M. */
const tgc_sym *tgc_module_sym(tgc_module *m, const char *name, size_t len);
const char *tgc_module_strdup(tgc_module *m, const char *s, size_t len);
tgc_mesh *tgc_module_add_mesh(tgc_module *m, const char *name, uint32_t naxes, const char *const *axis_names,
                              const int64_t *sizes, tgc_loc loc);
tgc_mesh *tgc_module_find_mesh(const tgc_module *m, const char *name);
/* Adds a zero-filled weight NAME of the given type to M and returns it for the caller to fill; NULL when M already
 * has a weight of that name, or when RANK exceeds TGC_MAX_RANK or the size overflows. */
tgc_module_weight *tgc_module_add_weight(tgc_module *m, const char *name, tgc_dtype dt, uint32_t rank,
                                         const int64_t *shape);
const tgc_module_weight *tgc_module_find_weight(const tgc_module *m, const char *name);
/* The most devices a mesh axis or a collective's group may have. */
enum { TGC_MAX_GROUP = 2147483647 };
/* The devices in a collective's group: the product of the sizes of the axes of MESH named by AXES (a list of
 * strings). 0 when item *BAD of AXES names no axis of MESH; -1 when the product exceeds TGC_MAX_GROUP
 * (computed without overflow). */
int64_t tgc_mesh_group_size(const tgc_mesh *mesh, const tgc_attr *axes, uint32_t *bad);
tgc_func *tgc_module_find_func(const tgc_module *m, const char *name);

/* Creates a function with the given argument and result types, an empty body, appended to M. */
tgc_func *tgc_func_create(tgc_module *m, const char *name, const tgc_type *const *arg_types,
                          const char *const *arg_names, uint32_t nargs, const tgc_type *const *result_types,
                          uint32_t nresults, tgc_loc loc);

const tgc_type *tgc_type_create(tgc_arena *a, tgc_dtype dt, uint32_t rank, const tgc_dim *const *dims);

/* Creates a detached op. RESULT_TYPES may be NULL or hold NULL entries (type unknown). Operands are
 * registered on their values' use lists. For region ops, an empty region with NREGION_ARGS arguments of
 * the operand types is created. */
tgc_op *tgc_op_create(tgc_module *m, tgc_opcode opcode, tgc_value *const *operands, uint32_t noperands,
                      const tgc_type *const *result_types, uint32_t nresults, tgc_loc loc);
void tgc_op_set_operand(tgc_op *op, uint32_t i, tgc_value *v);
/* Unlinks OP from its block and drops its operand uses; its results must have no uses left. */
void tgc_op_erase(tgc_op *op);
/* Detaches OP from its block, keeping its operands and the uses of its results (to move it elsewhere). */
void tgc_op_unlink(tgc_op *op);
void tgc_value_replace_all_uses(tgc_value *from, tgc_value *to);
/* The value whose buffer V lives in, for every memory plan and buffer table of the compiler: a reshape in a
 * function body (a top-level reshape) shares its operand's storage, transitively (a reshape of a reshape of %a is
 * %a); every other value is its own storage, a reshape inside a fusion region included (the region's values are
 * a kernel's registers, and its arguments stand for the fusion's operands, not for buffers of their own). */
const tgc_value *tgc_value_storage(const tgc_value *v);
size_t tgc_value_num_uses(const tgc_value *v);
void tgc_block_append(tgc_block *b, tgc_op *op);
void tgc_block_insert_before(tgc_block *b, tgc_op *before, tgc_op *op);
tgc_block *tgc_block_create(tgc_module *m, const tgc_type *const *arg_types, const char *const *arg_names,
                            uint32_t nargs, tgc_loc loc);

/* Typed attribute accessors on ops, with defaults for optional attributes. */
void tgc_op_set_attr(tgc_module *m, tgc_op *op, const char *name, const tgc_attr *v);
/* Reductions that reduce rows and keep or drop the reduced dims: reduce_*, softmax, log_softmax, layer_norm,
 * rms_norm (the ops fusion groups as reduction roots and codegen computes as row statistics; not argmax). */
static inline bool tgc_op_is_row_reduction(const tgc_op *op) {
  return (tgc_op_info_of(op->opcode)->flags & TGC_OPF_REDUCTION) && op->opcode != TGC_OP_ARGMAX;
}
const tgc_attr *tgc_op_attr(const tgc_op *op, const char *name);
int64_t tgc_op_attr_int(const tgc_op *op, const char *name, int64_t dflt);
double tgc_op_attr_float(const tgc_op *op, const char *name, double dflt);
bool tgc_op_attr_bool(const tgc_op *op, const char *name, bool dflt);
const char *tgc_op_attr_str(const tgc_op *op, const char *name, const char *dflt);

/* The kinds of fusion groups (passes/fuse.c), the one table of their names: a fusion op's `kind` attribute stays a
 * string in the textual IR, the verifier rejects any other, and code that decides by kind switches on the enum. */
#define TGC_FUSION_KINDS(X)                                                                                    \
  X(ELEMENTWISE, "elementwise")     /* connected elementwise ops */                                            \
  X(REDUCTION, "reduction")         /* a row reduction with its elementwise producers and consumers */         \
  X(GEMM_EPILOGUE, "gemm_epilogue") /* a matmul and the elementwise chain that consumes it */                  \
  X(ATTENTION, "attention")         /* an attention op with the layout ops around it */
typedef enum {
#define TGC_FUSION_KIND_ENUM(e, name) TGC_FUSION_##e,
  TGC_FUSION_KINDS(TGC_FUSION_KIND_ENUM)
#undef TGC_FUSION_KIND_ENUM
  TGC_FUSION_KIND_COUNT /* not a kind: what tgc_fusion_kind_of says of a missing or unknown one */
} tgc_fusion_kind;
/* The kind of fusion op OP (from its `kind` attribute); TGC_FUSION_KIND_COUNT when it has none or an unknown one,
 * which the verifier rejects. */
tgc_fusion_kind tgc_fusion_kind_of(const tgc_op *op);
/* The kind named NAME (LEN bytes), or TGC_FUSION_KIND_COUNT. */
tgc_fusion_kind tgc_fusion_kind_parse(const char *name, size_t len);
/* K's name as the textual IR spells it: "gemm_epilogue". */
const char *tgc_fusion_kind_name(tgc_fusion_kind k);

/* ---- the builder ------------------------------------------------------------------------------- */

/* Inserts new ops at the end of a block (or before a given op), with a current location. */
typedef struct tgc_builder {
  tgc_module *module;
  tgc_block *block;
  tgc_op *before; /* NULL: append */
  tgc_loc loc;
} tgc_builder;

tgc_builder tgc_builder_at_end(tgc_module *m, tgc_block *b);
tgc_op *tgc_build(tgc_builder *b, tgc_opcode opcode, tgc_value *const *operands, uint32_t noperands,
                  const tgc_type *result_type);
/* Shorthands returning the single result. */
tgc_value *tgc_build_unary(tgc_builder *b, tgc_opcode opcode, tgc_value *x, const tgc_type *t);
tgc_value *tgc_build_binary(tgc_builder *b, tgc_opcode opcode, tgc_value *x, tgc_value *y, const tgc_type *t);
tgc_value *tgc_build_param(tgc_builder *b, const char *name, const tgc_type *t);
tgc_op *tgc_build_return(tgc_builder *b, tgc_value *const *values, uint32_t n);

/* ---- printing and verification ----------------------------------------------------------------- */

/* Appends the textual form of M, which parses back to an equal module. */
void tgc_print_module(const tgc_module *m, tgc_strbuf *out);
/* Checks the module's structural invariants; reports each problem through DIAG and returns the number
 * of errors found. */
int tgc_verify_module(const tgc_module *m, tgc_diag *diag);

#endif

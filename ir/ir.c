/* IR objects: attributes, types, modules,
 * functions, blocks, ops, use lists and the builder. */
#include "ir.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- types ---- */

const tgc_type *tgc_type_create(tgc_arena *a, tgc_dtype dt, uint32_t rank, const tgc_dim *const *dims) {
  tgc_type *t = tgc_arena_alloc(a, sizeof *t);
  const tgc_dim **d = tgc_arena_alloc(a, sizeof *d * (rank + 1));
  for (uint32_t i = 0; i < rank; i++)
    d[i] = dims[i];
  t->dtype = dt;
  t->rank = rank;
  t->dims = d;
  return t;
}

bool tgc_type_same_shape(const tgc_type *a, const tgc_type *b) {
  if (!a || !b || a->rank != b->rank)
    return false;
  for (uint32_t i = 0; i < a->rank; i++)
    if (!tgc_dim_equal(a->dims[i], b->dims[i]))
      return false;
  return true;
}

bool tgc_type_equal(const tgc_type *a, const tgc_type *b) {
  return a == b || (a && b && a->dtype == b->dtype && tgc_type_same_shape(a, b));
}

void tgc_type_print(const tgc_type *t, tgc_strbuf *buf) {
  tgc_sb_puts(buf, tgc_dtype_name(t->dtype));
  tgc_sb_putc(buf, '[');
  for (uint32_t i = 0; i < t->rank; i++) {
    if (i)
      tgc_sb_puts(buf, ", ");
    tgc_dim_print(t->dims[i], buf);
  }
  tgc_sb_putc(buf, ']');
}

/* ---- attributes ---- */

static tgc_attr *new_attr(tgc_arena *a, tgc_attr_kind k) {
  tgc_attr *v = tgc_arena_alloc(a, sizeof *v);
  v->kind = k;
  return v;
}

const tgc_attr *tgc_attr_int(tgc_arena *a, int64_t x) {
  tgc_attr *v = new_attr(a, TGC_ATTR_INT);
  v->u.i = x;
  return v;
}

const tgc_attr *tgc_attr_float(tgc_arena *a, double x) {
  tgc_attr *v = new_attr(a, TGC_ATTR_FLOAT);
  v->u.f = x;
  return v;
}

const tgc_attr *tgc_attr_str(tgc_arena *a, const char *s, size_t len) {
  tgc_attr *v = new_attr(a, TGC_ATTR_STR);
  v->u.s = tgc_arena_strndup(a, s, len);
  v->len = len;
  return v;
}

const tgc_attr *tgc_attr_bool(tgc_arena *a, bool x) {
  tgc_attr *v = new_attr(a, TGC_ATTR_BOOL);
  v->u.b = x;
  return v;
}

const tgc_attr *tgc_attr_dtype(tgc_arena *a, tgc_dtype x) {
  tgc_attr *v = new_attr(a, TGC_ATTR_DTYPE);
  v->u.dt = x;
  return v;
}

const tgc_attr *tgc_attr_symref(tgc_arena *a, const char *name) {
  tgc_attr *v = new_attr(a, TGC_ATTR_SYM);
  v->u.s = tgc_arena_strndup(a, name, strlen(name));
  v->len = strlen(name);
  return v;
}

const tgc_attr *tgc_attr_list(tgc_arena *a, const tgc_attr *const *items, uint32_t n) {
  tgc_attr *v = new_attr(a, TGC_ATTR_LIST);
  const tgc_attr **copy = tgc_arena_alloc(a, sizeof *copy * (n + 1));
  for (uint32_t i = 0; i < n; i++)
    copy[i] = items[i];
  v->u.list.n = n;
  v->u.list.items = copy;
  return v;
}

const tgc_attr *tgc_attr_ints(tgc_arena *a, const int64_t *xs, uint32_t n) {
  const tgc_attr **items = tgc_arena_alloc(a, sizeof *items * (n + 1));
  for (uint32_t i = 0; i < n; i++)
    items[i] = tgc_attr_int(a, xs[i]);
  return tgc_attr_list(a, items, n);
}

bool tgc_attr_equal(const tgc_attr *x, const tgc_attr *y) {
  if (x == y)
    return true;
  if (x->kind != y->kind)
    return false;
  switch (x->kind) {
  case TGC_ATTR_INT:
    return x->u.i == y->u.i;
  case TGC_ATTR_FLOAT:
    /* structural: nan equals nan, and 0.0 differs from -0.0 (they print and divide differently) */
    if (isnan(x->u.f) || isnan(y->u.f))
      return isnan(x->u.f) && isnan(y->u.f);
    return x->u.f == y->u.f && signbit(x->u.f) == signbit(y->u.f);
  case TGC_ATTR_STR:
  case TGC_ATTR_SYM:
    return x->len == y->len && memcmp(x->u.s, y->u.s, x->len) == 0;
  case TGC_ATTR_BOOL:
    return x->u.b == y->u.b;
  case TGC_ATTR_DTYPE:
    return x->u.dt == y->u.dt;
  case TGC_ATTR_LIST:
    if (x->u.list.n != y->u.list.n)
      return false;
    for (uint32_t i = 0; i < x->u.list.n; i++)
      if (!tgc_attr_equal(x->u.list.items[i], y->u.list.items[i]))
        return false;
    return true;
  }
  tgc_unreachable();
}

const tgc_attr *tgc_attrs_get(const tgc_attrs *d, const char *name) {
  for (uint32_t i = 0; i < d->n; i++)
    if (strcmp(d->items[i].name, name) == 0)
      return d->items[i].value;
  return NULL;
}

void tgc_attrs_set(tgc_arena *a, tgc_attrs *d, const char *name, const tgc_attr *v, tgc_loc loc) {
  for (uint32_t i = 0; i < d->n; i++) {
    if (strcmp(d->items[i].name, name) == 0) {
      d->items[i].value = v;
      d->items[i].loc = loc;
      return;
    }
  }
  tgc_attrs_append(a, d, name, v, loc);
}

void tgc_attrs_append(tgc_arena *a, tgc_attrs *d, const char *name, const tgc_attr *v, tgc_loc loc) {
  if (d->n == d->cap) {
    uint32_t cap = d->cap ? d->cap * 2 : 4;
    d->items = tgc_arena_grow(a, d->items, d->cap, cap, sizeof *d->items);
    d->cap = cap;
  }
  d->items[d->n].name = tgc_arena_strndup(a, name, strlen(name));
  d->items[d->n].value = v;
  d->items[d->n].loc = loc;
  d->n++;
}

/* ---- module ---- */

tgc_module *tgc_module_create(const char *name) {
  tgc_module *m = tgc_xcalloc(1, sizeof *m);
  tgc_arena_init(&m->arena);
  tgc_strmap_init(&m->syms, &m->arena);
  m->name = tgc_arena_strndup(&m->arena, name ? name : "module", strlen(name ? name : "module"));
  return m;
}

void tgc_module_destroy(tgc_module *m) {
  if (!m)
    return;
  tgc_strmap_free(&m->syms);
  tgc_arena_free(&m->arena);
  free(m);
}

tgc_module_weight *tgc_module_add_weight(tgc_module *m, const char *name, tgc_dtype dt, uint32_t rank,
                                         const int64_t *shape) {
  if (rank > TGC_MAX_RANK || tgc_module_find_weight(m, name))
    return NULL;
  int bits = tgc_dtype_bits(dt);
  size_t n = bits < 8 ? 1 : (size_t)bits / 8; /* i4 and bool take a byte, as in the runtime */
  for (uint32_t d = 0; d < rank; d++) {
    if (shape[d] < 0 || (shape[d] > 0 && n > SIZE_MAX / (size_t)shape[d]))
      return NULL;
    n *= (size_t)shape[d];
  }
  tgc_module_weight *w = tgc_arena_alloc(&m->arena, sizeof *w);
  w->name = tgc_arena_strndup(&m->arena, name, strlen(name));
  w->dtype = dt;
  w->rank = rank;
  memcpy(w->shape, shape, sizeof(int64_t) * rank);
  w->data = tgc_arena_alloc(&m->arena, n);
  w->nbytes = n;
  if (m->last_weight)
    m->last_weight->next = w;
  else
    m->weights = w;
  m->last_weight = w;
  return w;
}

const tgc_module_weight *tgc_module_find_weight(const tgc_module *m, const char *name) {
  for (const tgc_module_weight *w = m->weights; w; w = w->next)
    if (strcmp(w->name, name) == 0)
      return w;
  return NULL;
}

const tgc_sym *tgc_module_sym(tgc_module *m, const char *name, size_t len) {
  tgc_sym *s = tgc_strmap_get(&m->syms, name, len);
  if (s)
    return s;
  s = tgc_arena_alloc(&m->arena, sizeof *s);
  s->name = tgc_strmap_put(&m->syms, name, len, s);
  return s;
}

const char *tgc_module_strdup(tgc_module *m, const char *s, size_t len) {
  return tgc_arena_strndup(&m->arena, s, len);
}

tgc_mesh *tgc_module_add_mesh(tgc_module *m, const char *name, uint32_t naxes, const char *const *axis_names,
                              const int64_t *sizes, tgc_loc loc) {
  tgc_mesh *mesh = tgc_arena_alloc(&m->arena, sizeof *mesh);
  mesh->name = tgc_module_strdup(m, name, strlen(name));
  mesh->naxes = naxes;
  mesh->axis_names = tgc_arena_alloc(&m->arena, sizeof *mesh->axis_names * (naxes + 1));
  mesh->axis_sizes = tgc_arena_alloc(&m->arena, sizeof *mesh->axis_sizes * (naxes + 1));
  for (uint32_t i = 0; i < naxes; i++) {
    mesh->axis_names[i] = tgc_module_strdup(m, axis_names[i], strlen(axis_names[i]));
    mesh->axis_sizes[i] = sizes[i];
  }
  mesh->loc = loc;
  if (m->last_mesh)
    m->last_mesh->next = mesh;
  else
    m->meshes = mesh;
  m->last_mesh = mesh;
  return mesh;
}

tgc_mesh *tgc_module_find_mesh(const tgc_module *m, const char *name) {
  for (tgc_mesh *x = m->meshes; x; x = x->next)
    if (strcmp(x->name, name) == 0)
      return x;
  return NULL;
}

int64_t tgc_mesh_group_size(const tgc_mesh *mesh, const tgc_attr *axes, uint32_t *bad) {
  int64_t n = 1;
  for (uint32_t i = 0; axes && axes->kind == TGC_ATTR_LIST && i < axes->u.list.n; i++) {
    const tgc_attr *x = axes->u.list.items[i];
    uint32_t j = 0;
    while (x->kind == TGC_ATTR_STR && j < mesh->naxes && strcmp(mesh->axis_names[j], x->u.s) != 0)
      j++;
    if (x->kind != TGC_ATTR_STR || j == mesh->naxes) {
      *bad = i;
      return 0;
    }
    if (__builtin_mul_overflow(n, mesh->axis_sizes[j], &n) || n > TGC_MAX_GROUP)
      return -1;
  }
  return n;
}

tgc_func *tgc_module_find_func(const tgc_module *m, const char *name) {
  for (tgc_func *f = m->funcs; f; f = f->next)
    if (strcmp(f->name, name) == 0)
      return f;
  return NULL;
}

/* ---- blocks and functions ---- */

tgc_block *tgc_block_create(tgc_module *m, const tgc_type *const *arg_types, const char *const *arg_names,
                            uint32_t nargs, tgc_loc loc) {
  tgc_block *b = tgc_arena_alloc(&m->arena, sizeof *b);
  b->nargs = nargs;
  b->args = tgc_arena_alloc(&m->arena, sizeof *b->args * (nargs + 1));
  for (uint32_t i = 0; i < nargs; i++) {
    tgc_value *v = tgc_arena_alloc(&m->arena, sizeof *v);
    v->type = arg_types ? arg_types[i] : NULL;
    v->name = arg_names && arg_names[i] ? tgc_module_strdup(m, arg_names[i], strlen(arg_names[i])) : NULL;
    v->block = b;
    v->index = i;
    v->loc = loc;
    b->args[i] = v;
  }
  b->loc = loc;
  return b;
}

tgc_func *tgc_func_create(tgc_module *m, const char *name, const tgc_type *const *arg_types,
                          const char *const *arg_names, uint32_t nargs, const tgc_type *const *result_types,
                          uint32_t nresults, tgc_loc loc) {
  tgc_func *f = tgc_arena_alloc(&m->arena, sizeof *f);
  f->name = tgc_module_strdup(m, name, strlen(name));
  f->body = tgc_block_create(m, arg_types, arg_names, nargs, loc);
  f->body->parent_func = f;
  f->nresults = nresults;
  f->result_types = tgc_arena_alloc(&m->arena, sizeof *f->result_types * (nresults + 1));
  for (uint32_t i = 0; i < nresults; i++)
    f->result_types[i] = result_types[i];
  f->module = m;
  f->loc = loc;
  if (m->last_func)
    m->last_func->next = f;
  else
    m->funcs = f;
  m->last_func = f;
  return f;
}

/* ---- ops and uses ---- */

static void use_link(tgc_use *u, tgc_value *v) {
  u->value = v;
  u->prevp = &v->uses;
  u->next = v->uses;
  if (v->uses)
    v->uses->prevp = &u->next;
  v->uses = u;
}

static void use_unlink(tgc_use *u) {
  if (!u->value)
    return;
  *u->prevp = u->next;
  if (u->next)
    u->next->prevp = u->prevp;
  u->value = NULL;
  u->next = NULL;
  u->prevp = NULL;
}

tgc_op *tgc_op_create(tgc_module *m, tgc_opcode opcode, tgc_value *const *operands, uint32_t noperands,
                      const tgc_type *const *result_types, uint32_t nresults, tgc_loc loc) {
  tgc_op *op = tgc_arena_alloc(&m->arena, sizeof *op);
  op->opcode = opcode;
  op->loc = loc;
  op->noperands = noperands;
  op->operands = tgc_arena_alloc(&m->arena, sizeof *op->operands * (noperands + 1));
  for (uint32_t i = 0; i < noperands; i++) {
    op->operands[i].user = op;
    if (operands[i])
      use_link(&op->operands[i], operands[i]);
  }
  op->nresults = nresults;
  op->results = tgc_arena_alloc(&m->arena, sizeof *op->results * (nresults + 1));
  for (uint32_t i = 0; i < nresults; i++) {
    op->results[i].def = op;
    op->results[i].index = i;
    op->results[i].type = result_types ? result_types[i] : NULL;
    op->results[i].loc = loc;
  }
  if (tgc_op_info_of(opcode)->flags & TGC_OPF_REGION) {
    const tgc_type **types = tgc_arena_alloc(&m->arena, sizeof *types * (noperands + 1));
    for (uint32_t i = 0; i < noperands; i++)
      types[i] = operands[i] ? operands[i]->type : NULL;
    op->region = tgc_block_create(m, types, NULL, noperands, loc);
    op->region->parent_op = op;
  }
  return op;
}

void tgc_op_set_operand(tgc_op *op, uint32_t i, tgc_value *v) {
  TGC_ASSERT(i < op->noperands);
  use_unlink(&op->operands[i]);
  if (v)
    use_link(&op->operands[i], v);
}

static void set_parent_func(tgc_block *b, tgc_func *f) {
  b->parent_func = f;
  for (tgc_op *o = b->first; o; o = o->next)
    if (o->region)
      set_parent_func(o->region, f);
}

static void link_op(tgc_block *b, tgc_op *before, tgc_op *op) {
  TGC_ASSERT(!op->parent);
  op->parent = b;
  if (op->region)
    set_parent_func(op->region, b->parent_func);
  if (!before) {
    op->prev = b->last;
    op->next = NULL;
    if (b->last)
      b->last->next = op;
    else
      b->first = op;
    b->last = op;
    return;
  }
  TGC_ASSERT(before->parent == b);
  op->next = before;
  op->prev = before->prev;
  if (before->prev)
    before->prev->next = op;
  else
    b->first = op;
  before->prev = op;
}

void tgc_block_append(tgc_block *b, tgc_op *op) { link_op(b, NULL, op); }
void tgc_block_insert_before(tgc_block *b, tgc_op *before, tgc_op *op) { link_op(b, before, op); }

void tgc_op_erase(tgc_op *op) {
  for (uint32_t i = 0; i < op->nresults; i++)
    TGC_ASSERT(op->results[i].uses == NULL);
  for (uint32_t i = 0; i < op->noperands; i++)
    use_unlink(&op->operands[i]);
  tgc_op_unlink(op);
}

void tgc_op_unlink(tgc_op *op) {
  tgc_block *b = op->parent;
  if (b) {
    if (op->prev)
      op->prev->next = op->next;
    else
      b->first = op->next;
    if (op->next)
      op->next->prev = op->prev;
    else
      b->last = op->prev;
  }
  op->parent = NULL;
  op->prev = op->next = NULL;
}

void tgc_value_replace_all_uses(tgc_value *from, tgc_value *to) {
  if (from == to)
    return;
  while (from->uses) {
    tgc_use *u = from->uses;
    use_unlink(u);
    use_link(u, to);
  }
}

const tgc_value *tgc_value_storage(const tgc_value *v) {
  while (v->def && v->def->opcode == TGC_OP_RESHAPE && v->def->parent && v->def->parent->parent_op == NULL)
    v = v->def->operands[0].value;
  return v;
}

size_t tgc_value_num_uses(const tgc_value *v) {
  size_t n = 0;
  for (const tgc_use *u = v->uses; u; u = u->next)
    n++;
  return n;
}

/* ---- op attributes ---- */

void tgc_op_set_attr(tgc_module *m, tgc_op *op, const char *name, const tgc_attr *v) {
  tgc_attrs_set(&m->arena, &op->attrs, name, v, op->loc);
}

const tgc_attr *tgc_op_attr(const tgc_op *op, const char *name) { return tgc_attrs_get(&op->attrs, name); }

int64_t tgc_op_attr_int(const tgc_op *op, const char *name, int64_t dflt) {
  const tgc_attr *a = tgc_op_attr(op, name);
  return a && a->kind == TGC_ATTR_INT ? a->u.i : dflt;
}

double tgc_op_attr_float(const tgc_op *op, const char *name, double dflt) {
  const tgc_attr *a = tgc_op_attr(op, name);
  if (!a)
    return dflt;
  if (a->kind == TGC_ATTR_FLOAT)
    return a->u.f;
  if (a->kind == TGC_ATTR_INT)
    return (double)a->u.i;
  return dflt;
}

bool tgc_op_attr_bool(const tgc_op *op, const char *name, bool dflt) {
  const tgc_attr *a = tgc_op_attr(op, name);
  return a && a->kind == TGC_ATTR_BOOL ? a->u.b : dflt;
}

const char *tgc_op_attr_str(const tgc_op *op, const char *name, const char *dflt) {
  const tgc_attr *a = tgc_op_attr(op, name);
  return a && a->kind == TGC_ATTR_STR ? a->u.s : dflt;
}

static const char *const fusion_kind_names[] = {
#define TGC_FUSION_KIND_NAME(e, name) name,
    TGC_FUSION_KINDS(TGC_FUSION_KIND_NAME)
#undef TGC_FUSION_KIND_NAME
};

tgc_fusion_kind tgc_fusion_kind_parse(const char *name, size_t len) {
  for (int k = 0; k < TGC_FUSION_KIND_COUNT; k++)
    if (strlen(fusion_kind_names[k]) == len && memcmp(fusion_kind_names[k], name, len) == 0)
      return (tgc_fusion_kind)k;
  return TGC_FUSION_KIND_COUNT;
}

tgc_fusion_kind tgc_fusion_kind_of(const tgc_op *op) {
  const tgc_attr *a = op->opcode == TGC_OP_FUSION ? tgc_op_attr(op, "kind") : NULL;
  return a && a->kind == TGC_ATTR_STR ? tgc_fusion_kind_parse(a->u.s, a->len) : TGC_FUSION_KIND_COUNT;
}

const char *tgc_fusion_kind_name(tgc_fusion_kind k) {
  TGC_ASSERT(k < TGC_FUSION_KIND_COUNT);
  return fusion_kind_names[k];
}

/* ---- builder ---- */

tgc_builder tgc_builder_at_end(tgc_module *m, tgc_block *b) {
  tgc_builder bld = {m, b, NULL, b->loc};
  return bld;
}

tgc_op *tgc_build(tgc_builder *b, tgc_opcode opcode, tgc_value *const *operands, uint32_t noperands,
                  const tgc_type *result_type) {
  int nres = tgc_op_info_of(opcode)->nresults;
  uint32_t n = nres < 0 ? 1 : (uint32_t)nres;
  const tgc_type *types[1] = {result_type};
  tgc_op *op = tgc_op_create(b->module, opcode, operands, noperands, n ? types : NULL, n, b->loc);
  link_op(b->block, b->before, op);
  return op;
}

tgc_value *tgc_build_unary(tgc_builder *b, tgc_opcode opcode, tgc_value *x, const tgc_type *t) {
  return &tgc_build(b, opcode, &x, 1, t)->results[0];
}

tgc_value *tgc_build_binary(tgc_builder *b, tgc_opcode opcode, tgc_value *x, tgc_value *y, const tgc_type *t) {
  tgc_value *ops[2] = {x, y};
  return &tgc_build(b, opcode, ops, 2, t)->results[0];
}

tgc_value *tgc_build_param(tgc_builder *b, const char *name, const tgc_type *t) {
  tgc_op *op = tgc_build(b, TGC_OP_PARAM, NULL, 0, t);
  tgc_op_set_attr(b->module, op, "name", tgc_attr_str(&b->module->arena, name, strlen(name)));
  return &op->results[0];
}

tgc_op *tgc_build_return(tgc_builder *b, tgc_value *const *values, uint32_t n) {
  return tgc_build(b, TGC_OP_RETURN, values, n, NULL);
}

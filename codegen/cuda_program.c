/* The CUDA program of the entry function (cuda_codegen.h): every launch becomes its steps (tgc_cuda_generate),
 * GEMM results only the function returns get padded rows, and the program's buffers, their live ranges and its
 * printed form are derived from the steps. */
#include "cuda_internal.h"

/* ---- the program ---- */

tgc_cuda_kernel *tgc_cuda_add_kernel(gen *g, const char *kind, const char *source, const char *name,
                                     const tgc_value *const *args, uint32_t nargs, const emitter *e) {
  tgc_cuda_module *cm = g->cm;
  cm->kernels = tgc_arena_grow(&g->m->arena, cm->kernels, cm->nkernels, cm->nkernels + 1, sizeof *cm->kernels);
  tgc_cuda_kernel *k = &cm->kernels[cm->nkernels];
  memset(k, 0, sizeof *k);
  k->name = tgc_arena_strndup(&g->m->arena, name, strlen(name));
  k->source = source;
  k->kind = kind;
  k->op = g->launch;
  k->args = args;
  k->nargs = nargs;
  const char **names = tgc_arena_alloc(&g->m->arena, sizeof *names * (e->nsyms + 1));
  for (uint32_t i = 0; i < e->nsyms; i++)
    names[i] = e->syms[i]->name;
  k->sym_names = names;
  k->nsyms = e->nsyms;
  k->code = g->n + 1;
  cm->steps = tgc_arena_grow(&g->m->arena, cm->steps, cm->nsteps, cm->nsteps + 1, sizeof *cm->steps);
  cm->steps[cm->nsteps++] = (tgc_cuda_step){false, cm->nkernels, TGC_CUDA_ALWAYS, NULL, 0, 0};
  return &cm->kernels[cm->nkernels++];
}

void tgc_cuda_kernel_name(gen *g, char *buf, size_t n, const char *what) {
  snprintf(buf, n, "k%u_%s", g->cm->nkernels, what);
  for (char *p = buf; *p; p++)
    if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
      *p = '_';
}

static void add_pending(tgc_cuda_module *cm, tgc_module *m, const tgc_op *op, const char *why) {
  const char *w = tgc_arena_strndup(&m->arena, why, strlen(why));
  if (!cm->npending)
    cm->why = w;
  cm->pending = tgc_arena_grow(&m->arena, cm->pending, cm->npending, cm->npending + 1, sizeof *cm->pending);
  cm->pending_why =
      tgc_arena_grow(&m->arena, cm->pending_why, cm->npending, cm->npending + 1, sizeof *cm->pending_why);
  cm->pending_why[cm->npending] = w;
  cm->pending[cm->npending++] = op;
}

static const tgc_op *find_op(const tgc_block *r, tgc_opcode code, uint32_t *count) {
  const tgc_op *found = NULL;
  *count = 0;
  for (const tgc_op *o = r->first; o; o = o->next)
    if (o->opcode == code) {
      found = o;
      (*count)++;
    }
  return found;
}

/* One launch: its steps, or false (and the program unchanged) when some op cannot be generated. */
static bool gen_launch(gen *g, const tgc_op *op) {
  tgc_arena *ar = &g->m->arena;
  if (op->opcode == TGC_OP_FUSION) {
    const tgc_block *r = op->region;
    if (!r || !r->last || r->last->opcode != TGC_OP_YIELD || !op->results[0].type || op->nresults > 2) {
      snprintf(g->why, sizeof g->why, "a fusion with more than two results");
      return false;
    }
    const tgc_value *root = r->last->operands[0].value;
    const tgc_value **outer = tgc_arena_alloc(ar, sizeof *outer * (r->nargs + 1));
    for (uint32_t j = 0; j < r->nargs; j++)
      outer[j] = op->operands[j].value;
    if (op->nresults == 2) {
      /* a second result (fuse's side output): computed by the same pointwise or rows kernel at the same index */
      tgc_fusion_kind fk = tgc_fusion_kind_of(op);
      if (!tgc_type_same_shape(op->results[0].type, op->results[1].type) || fk == TGC_FUSION_GEMM_EPILOGUE ||
          fk == TGC_FUSION_ATTENTION) {
        snprintf(g->why, sizeof g->why, "a fusion whose two results differ in shape (or a GEMM's or attention's)");
        return false;
      }
      return tgc_cuda_value_kernel2(g, "pointwise", root, r->args, outer, r->nargs, &op->results[0],
                                    r->last->operands[1].value, &op->results[1]);
    }
    uint32_t n;
    switch (tgc_fusion_kind_of(op)) {
    case TGC_FUSION_GEMM_EPILOGUE: {
      const tgc_op *mm = find_op(r, TGC_OP_MATMUL, &n);
      if (n == 1 && tgc_cuda_gen_gemm(g, mm, root, r->args, outer, r->nargs, &op->results[0]))
        return true;
      break;
    }
    case TGC_FUSION_ATTENTION: {
      const tgc_op *at = find_op(r, TGC_OP_ATTENTION, &n);
      if (n == 1)
        return tgc_cuda_gen_attention(g, at, root, r->args, outer, r->nargs, &op->results[0]);
      break;
    }
    case TGC_FUSION_ELEMENTWISE:
    case TGC_FUSION_REDUCTION:
    case TGC_FUSION_KIND_COUNT: /* unverified IR: computed as any other group */
      break;
    }
    return tgc_cuda_value_kernel(g, "pointwise", root, r->args, outer, r->nargs, &op->results[0]);
  }
  tgc_value **ins = tgc_arena_alloc(ar, sizeof *ins * (op->noperands + 1));
  for (uint32_t j = 0; j < op->noperands; j++)
    ins[j] = op->operands[j].value;
  if (op->opcode == TGC_OP_MATMUL && tgc_cuda_gen_gemm(g, op, &op->results[0], ins, (const tgc_value *const *)ins,
                                              op->noperands, &op->results[0]))
    return true;
  if (op->opcode == TGC_OP_ATTENTION)
    return tgc_cuda_gen_attention(g, op, &op->results[0], ins, (const tgc_value *const *)ins, op->noperands, &op->results[0]);
  for (uint32_t r = 0; r < op->nresults; r++)
    if (!tgc_cuda_value_kernel(g, "pointwise", &op->results[r], ins, (const tgc_value *const *)ins, op->noperands,
                      &op->results[r]))
      return false;
  return true;
}

/* ---- padded GEMM results ---- */

/* Whether V's storage is read by a step other than writing gemm GI, or by the function's result through a
 * reshape that changes its last dim. */
static bool read_in_program(const tgc_cuda_module *cm, const tgc_value *v, uint32_t gi) {
  for (uint32_t s = 0; s < cm->nsteps; s++) {
    const tgc_cuda_step *st = &cm->steps[s];
    if (st->gemm) {
      const tgc_cuda_gemm *g = &cm->gemms[st->index];
      const tgc_value *vs[6] = {g->a, g->b, g->c, g->bias, g->scale, st->index == gi ? NULL : g->d};
      for (int j = 0; j < 6; j++)
        if (vs[j] && tgc_value_storage(vs[j]) == v)
          return true;
    } else {
      const tgc_cuda_kernel *k = &cm->kernels[st->index];
      for (uint32_t j = 0; j < k->nargs; j++)
        if (tgc_value_storage(k->args[j]) == v)
          return true;
    }
  }
  return false;
}

/* Pads the rows of every GEMM result that only the function returns to 16 bytes, when they are not already a
 * multiple of it (see tgc_cuda_gemm.ldd). */
static void pad_gemm_rows(tgc_cuda_module *cm) {
  const tgc_op *ret = cm->func ? cm->func->body->last : NULL;
  if (!ret || ret->opcode != TGC_OP_RETURN)
    return;
  for (uint32_t gi = 0; gi < cm->ngemms; gi++) {
    tgc_cuda_gemm *g = &cm->gemms[gi];
    int64_t n;
    uint32_t es = (uint32_t)(tgc_dtype_bits(g->dtype) / 8);
    int64_t k;
    const tgc_value *w = tgc_value_storage(g->b);
    if (g->c || g->bias || !g->trans_b || g->batch_b || g->ab_dtype != g->dtype || !w->def || w->def->opcode != TGC_OP_PARAM || !es ||
        !tgc_dim_is_const(g->n, &n) || n <= 0 || (n * es) % 16 == 0 || !tgc_dim_is_const(g->k, &k))
      continue;
    const tgc_value *v = tgc_value_storage(g->d);
    bool returned = false, plain = true;
    for (uint32_t i = 0; i < ret->noperands; i++) {
      const tgc_value *r = ret->operands[i].value;
      if (tgc_value_storage(r) != v)
        continue;
      returned = true;
      int64_t last;
      plain = plain && r->type->rank > 0 && tgc_dim_is_const(r->type->dims[r->type->rank - 1], &last) && last == n;
    }
    if (returned && plain && !read_in_program(cm, v, gi))
      g->ldd = (n + 16 / es - 1) / (16 / es) * (16 / es);
  }
}

/* The function the program is made of: @main, else the first. */
static const tgc_func *entry_func(const tgc_module *m, const char *entry) {
  if (entry)
    return tgc_module_find_func(m, entry);
  const tgc_func *f = tgc_module_find_func(m, "main");
  return f ? f : m->funcs;
}

static const tgc_op *first_untyped(const tgc_block *b) {
  for (const tgc_op *o = b->first; o; o = o->next) {
    for (uint32_t i = 0; i < o->nresults; i++)
      if (!o->results[i].type)
        return o;
    const tgc_op *r = o->region ? first_untyped(o->region) : NULL;
    if (r)
      return r;
  }
  return NULL;
}

const tgc_op *tgc_cuda_first_untyped(const tgc_module *m, const char *entry) {
  const tgc_func *f = entry_func(m, entry);
  return f ? first_untyped(f->body) : NULL;
}

void tgc_cuda_generate(tgc_module *m, const char *entry, tgc_cuda_module *cm) {
  memset(cm, 0, sizeof *cm);
  const tgc_func *f = entry_func(m, entry);
  if (!f)
    return;
  cm->func = f;
  /* every kernel is sized and typed from the values' types: without them nothing is generated */
  const tgc_op *untyped = first_untyped(f->body);
  if (untyped) {
    add_pending(cm, m, untyped, TGC_CUDA_NEEDS_TYPES);
    return;
  }
  gen g;
  memset(&g, 0, sizeof g);
  g.m = m;
  g.cm = cm;
  for (const tgc_op *op = f->body->first; op; op = op->next) {
    if (tgc_op_info_of(op->opcode)->flags & (TGC_OPF_SOURCE | TGC_OPF_VIEW)) /* params, constants, reshapes */
      continue;
    if (op->opcode == TGC_OP_RETURN) {
      /* a returned constant (written, or what folding left) is computed into its buffer by a kernel */
      for (uint32_t j = 0; j < op->noperands; j++) {
        uint32_t nk = cm->nkernels, ns = cm->nsteps;
        g.why[0] = 0;
        if (!tgc_cuda_ensure_buffer(&g, op->operands[j].value)) {
          cm->nkernels = nk;
          cm->nsteps = ns;
          add_pending(cm, m, tgc_cuda_constant_def(op->operands[j].value), g.why[0] ? g.why : "not generated");
        }
      }
      continue;
    }
    g.launch = op;
    snprintf(g.where, sizeof g.where, "%s at %s:%u:%u",
             op->opcode == TGC_OP_FUSION ? tgc_op_attr_str(op, "kind", "fusion") : tgc_op_name(op->opcode),
             op->loc.file ? op->loc.file : "?", op->loc.line, op->loc.col);
    uint32_t nk = cm->nkernels, ng = cm->ngemms, ns = cm->nsteps;
    g.why[0] = 0;
    bool ok;
    if (tgc_op_info_of(op->opcode)->flags & TGC_OPF_COLLECTIVE) {
      snprintf(g.why, sizeof g.why, "collectives run through NCCL (not yet)");
      ok = false;
    } else {
      ok = gen_launch(&g, op);
    }
    if (!ok) {
      cm->nkernels = nk;
      cm->ngemms = ng;
      cm->nsteps = ns;
      add_pending(cm, m, op, g.why[0] ? g.why : "not generated");
    }
    g.n++;
  }
  pad_gemm_rows(cm);
}

char *tgc_cuda_canonical_source(const tgc_cuda_kernel *k) {
  const char *src = k->source;
  if (strncmp(src, "//", 2) == 0 && strchr(src, '\n'))
    src = strchr(src, '\n') + 1;
  size_t nl = strlen(k->name), cap = strlen(src) + 64, len = 0;
  char *out = tgc_xmalloc(cap);
  for (const char *s = src; *s;) {
    const char *hit = strstr(s, k->name);
    if (!hit) {
      size_t r = strlen(s);
      memcpy(out + len, s, r);
      len += r;
      break;
    }
    memcpy(out + len, s, (size_t)(hit - s));
    len += (size_t)(hit - s);
    memcpy(out + len, "tgc_kernel", 10);
    len += 10;
    s = hit + nl;
  }
  out[len] = 0;
  return out;
}

static void print_dim(tgc_strbuf *out, const tgc_dim *d) {
  if (d)
    tgc_dim_print(d, out);
  else
    tgc_sb_puts(out, "?");
}

static void print_value(tgc_strbuf *out, const tgc_value *v) {
  if (v->name)
    tgc_sb_printf(out, "%%%s", v->name);
  else
    tgc_sb_puts(out, "%<unnamed>");
}

/* ", when M <= 128": a step that runs at some sizes only. */
static void print_when(tgc_strbuf *out, const tgc_cuda_step *st) {
  if (st->when == TGC_CUDA_ALWAYS)
    return;
  tgc_sb_puts(out, ", when ");
  if (st->when == TGC_CUDA_WHEN_RANGE)
    tgc_sb_printf(out, "%lld < ", (long long)st->lo);
  print_dim(out, st->when_dim);
  tgc_sb_printf(out, " %s %lld", st->when == TGC_CUDA_WHEN_GT ? ">" : "<=", (long long)st->limit);
}

void tgc_cuda_print(const tgc_cuda_module *cm, tgc_strbuf *out) {
  tgc_sb_printf(out, "// CUDA program: %u steps (%u kernels, %u cuBLASLt GEMMs)\n", cm->nsteps, cm->nkernels, cm->ngemms);
  for (uint32_t s = 0; s < cm->nsteps; s++) {
    const tgc_cuda_step *st = &cm->steps[s];
    if (st->gemm) {
      const tgc_cuda_gemm *gm = &cm->gemms[st->index];
      if (gm->ab_dtype != gm->dtype)
        tgc_sb_printf(out, "// ===== gemm %u: cuBLASLt, %s x %s -> %s", st->index, tgc_dtype_name(gm->ab_dtype),
                      tgc_dtype_name(gm->ab_dtype), tgc_dtype_name(gm->dtype));
      else
        tgc_sb_printf(out, "// ===== gemm %u: cuBLASLt, %s", st->index, tgc_dtype_name(gm->dtype));
      print_when(out, st);
      tgc_sb_puts(out, " =====\n// D = ");
      print_value(out, gm->d);
      tgc_sb_puts(out, " [batch ");
      print_dim(out, gm->batch);
      tgc_sb_puts(out, "] [m ");
      print_dim(out, gm->m);
      tgc_sb_puts(out, ", n ");
      print_dim(out, gm->n);
      tgc_sb_puts(out, ", k ");
      print_dim(out, gm->k);
      tgc_sb_puts(out, "], A = ");
      print_value(out, gm->a);
      bool one = dim_is(gm->batch, 1);
      tgc_sb_printf(out, "%s%s, B = ", gm->trans_a ? "^T" : "", gm->batch_a || one ? "" : " (shared)");
      print_value(out, gm->b);
      tgc_sb_printf(out, "%s%s, epilogue %s", gm->trans_b ? "^T" : "", gm->batch_b || one ? "" : " (shared)",
                    tgc_cuda_epilogue_name(gm->epilogue));
      if (gm->alpha != 1)
        tgc_sb_printf(out, ", alpha %.9g", gm->alpha);
      if (gm->scale) {
        tgc_sb_puts(out, ", scale = ");
        print_value(out, gm->scale);
      }
      if (gm->ldd)
        tgc_sb_printf(out, ", padded to n %lld (16-byte rows; B gets zero rows)", (long long)gm->ldd);
      if (gm->bias) {
        tgc_sb_puts(out, ", bias = ");
        print_value(out, gm->bias);
      }
      if (gm->c) {
        tgc_sb_puts(out, ", C = ");
        print_value(out, gm->c);
      }
      const tgc_op *op = gm->op;
      tgc_sb_printf(out, "\n// (%s at %s:%u:%u)\n\n",
                    op->opcode == TGC_OP_FUSION ? tgc_op_attr_str(op, "kind", "fusion") : tgc_op_name(op->opcode),
                    op->loc.file ? op->loc.file : "?", op->loc.line, op->loc.col);
      continue;
    }
    const tgc_cuda_kernel *k = &cm->kernels[st->index];
    tgc_sb_printf(out, "// ===== kernel %s (%s)", k->name, k->kind);
    print_when(out, st);
    tgc_sb_puts(out, " =====\n");
    tgc_sb_puts(out, k->source);
    tgc_sb_putc(out, '\n');
  }
  if (cm->npending) {
    tgc_sb_printf(out, "// ===== %u launches not generated (%s) =====\n", cm->npending, cm->why);
    for (uint32_t i = 0; i < cm->npending; i++) {
      const tgc_op *op = cm->pending[i];
      tgc_sb_printf(out, "//   %s at %s:%u:%u: %s\n",
                    op->opcode == TGC_OP_FUSION ? tgc_op_attr_str(op, "kind", "fusion") : tgc_op_name(op->opcode),
                    op->loc.file ? op->loc.file : "?", op->loc.line, op->loc.col, cm->pending_why[i]);
    }
  }
}

/* ---- the program's buffers ---- */

static void use_buffer(tgc_cuda_buffer **bs, uint32_t *n, uint32_t *cap, const tgc_value *v, int step) {
  v = tgc_value_storage(v);
  uint32_t i = 0;
  while (i < *n && (*bs)[i].v != v)
    i++;
  if (i == *n) {
    if (*n == *cap) {
      *cap = *cap ? *cap * 2 : 64;
      *bs = tgc_xrealloc(*bs, sizeof **bs * *cap);
    }
    tgc_cuda_buf_kind kind = !v->def ? TGC_CUDA_BUF_INPUT
                             : v->def->opcode == TGC_OP_PARAM ? TGC_CUDA_BUF_PARAM
                                                              : TGC_CUDA_BUF_TEMP;
    (*bs)[(*n)++] = (tgc_cuda_buffer){v, kind, step, step, 0, 0, false};
  }
  if (step > (*bs)[i].last)
    (*bs)[i].last = step;
}

tgc_cuda_buffer *tgc_cuda_buffers(const tgc_cuda_module *cm, uint32_t *n) {
  tgc_cuda_buffer *bs = NULL;
  uint32_t cap = 0;
  *n = 0;
  for (uint32_t s = 0; s < cm->nsteps; s++) {
    const tgc_cuda_step *st = &cm->steps[s];
    if (st->gemm) {
      const tgc_cuda_gemm *g = &cm->gemms[st->index];
      const tgc_value *vs[6] = {g->a, g->b, g->c, g->bias, g->scale, g->d};
      for (int j = 0; j < 6; j++)
        if (vs[j])
          use_buffer(&bs, n, &cap, vs[j], (int)s);
      int64_t gn, gk;
      if (g->ldd && tgc_dim_is_const(g->n, &gn) && tgc_dim_is_const(g->k, &gk))
        for (uint32_t i = 0; i < *n; i++) {
          if (bs[i].v == tgc_value_storage(g->d))
            bs[i].pitch = g->ldd;
          if (bs[i].v == tgc_value_storage(g->b) && (g->ldd - gn) * gk > bs[i].tail)
            bs[i].tail = (g->ldd - gn) * gk;
        }
    } else {
      const tgc_cuda_kernel *k = &cm->kernels[st->index];
      for (uint32_t j = 0; j < k->nargs; j++)
        use_buffer(&bs, n, &cap, k->args[j], (int)s);
      bool w4 = strcmp(k->kind, "w4gemm") == 0, w4d = strcmp(k->kind, "w4dequant") == 0;
      for (uint32_t i = 0; (w4 || w4d) && i < *n; i++)
        if (bs[i].v == tgc_value_storage(k->args[w4 ? 1 : 0]))
          bs[i].pack_w4 = true;
    }
  }
  const tgc_op *ret = cm->func ? cm->func->body->last : NULL;
  for (uint32_t i = 0; ret && i < ret->noperands; i++)
    use_buffer(&bs, n, &cap, ret->operands[i].value, (int)cm->nsteps);
  if (!bs)
    bs = tgc_xcalloc(1, sizeof *bs);
  return bs;
}

bool tgc_cuda_buffer_bytes(const tgc_cuda_buffer *b, const char *const *names, const int64_t *sizes, uint32_t n,
                           uint64_t *bytes) {
  const tgc_type *t = b->v->type;
  uint64_t r = (uint64_t)((tgc_dtype_bits(t->dtype) + 7) / 8);
  bool over = false;
  for (uint32_t d = 0; d < t->rank && !over; d++) {
    int64_t sum = 0;
    over = tgc_dim_eval(t->dims[d], names, sizes, n, &sum, NULL) != TGC_DIM_OK;
    if (d == t->rank - 1 && b->pitch && sum > 0) /* padded rows */
      sum = b->pitch;
    over = over || __builtin_mul_overflow(r, (uint64_t)(sum > 0 ? sum : 0), &r);
  }
  *bytes = r;
  return !over && r <= ((uint64_t)1 << 62);
}

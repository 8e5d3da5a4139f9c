/* Unit tests of the IR API (ir/ir.h): the builder, the printer's exact output and naming, use lists
 * and their mutation, the verifier on IR that only the API can build, attribute accessors and
 * equality, the op and dtype tables, print/parse round trips, and the diagnostics engine. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frontend.h"
#include "ir.h"
#include "check.h"




/* ---- helpers
 * ---------------------------------------------------------------------------------------- */

/* A diagnostics engine writing to a temporary file, so that its output can be read back. */
typedef struct {
  tgc_diag d;
  FILE *f;
  char *text;
} capture;

static void cap_init(capture *c) {
  c->f = tmpfile();
  c->text = NULL;
  if (!c->f) {
    fprintf(stderr, "tmpfile() failed; diagnostics go to stderr\n");
    failed++;
  }
  tgc_diag_init(&c->d, c->f ? c->f : stderr);
}

/* Everything written so far (owned by C, valid until the next call or cap_free). */
static const char *cap_text(capture *c) {
  free(c->text);
  c->text = NULL;
  if (!c->f)
    return "";
  fflush(c->f);
  long n = ftell(c->f);
  if (n < 0)
    n = 0;
  c->text = calloc((size_t)n + 1, 1);
  rewind(c->f);
  size_t got = fread(c->text, 1, (size_t)n, c->f);
  c->text[got] = 0;
  fseek(c->f, 0, SEEK_END);
  return c->text;
}

static void cap_free(capture *c) {
  tgc_diag_free(&c->d);
  if (c->f)
    fclose(c->f);
  free(c->text);
}

/* The printed form of M (heap string, caller frees). */
static char *print_module(const tgc_module *m) {
  tgc_strbuf b;
  tgc_sb_init(&b);
  tgc_print_module(m, &b);
  char *s = malloc(b.len + 1);
  memcpy(s, b.data ? b.data : "", b.len);
  s[b.len] = 0;
  tgc_sb_free(&b);
  return s;
}

static tgc_module *parse(const char *file, const char *text, capture *c) {
  return tgc_parse_module(file, text, strlen(text), &c->d);
}

/* Verifies M and returns the diagnostics text (owned by C) and the error count in *NERR. */
static const char *verify(const tgc_module *m, capture *c, int *nerr) {
  *nerr = tgc_verify_module(m, &c->d);
  return cap_text(c);
}

static tgc_loc L(const char *file, uint32_t line, uint32_t col) {
  tgc_loc l = {file, line, col};
  return l;
}

static const tgc_type *vec(tgc_module *m, tgc_dtype dt, int64_t n) {
  const tgc_dim *d = tgc_dim_const(&m->arena, n);
  return tgc_type_create(&m->arena, dt, 1, &d);
}

static const tgc_dim *sym(tgc_module *m, const char *name) {
  return tgc_dim_sym(&m->arena, tgc_module_sym(m, name, strlen(name)));
}

/* A function @NAME(%x: f32[4] ...) -> f32[4] with NARGS arguments named x, y, z. */
static tgc_func *simple_func(tgc_module *m, const char *name, uint32_t nargs, tgc_loc loc) {
  const tgc_type *t = vec(m, TGC_DT_F32, 4);
  const tgc_type *args[3] = {t, t, t};
  const char *names[3] = {"x", "y", "z"};
  return tgc_func_create(m, name, args, names, nargs, &t, 1, loc);
}

/* ---- the builder and the printer
 * -------------------------------------------------------------------- */

static void test_builder(void) {
  tgc_module *m = tgc_module_create("built");
  tgc_arena *a = &m->arena;
  const tgc_dim *dims[] = {sym(m, "B"), tgc_dim_const(a, 4)};
  const tgc_type *t = tgc_type_create(a, TGC_DT_F32, 2, dims);
  const tgc_type *t4 = vec(m, TGC_DT_F32, 4);
  const tgc_type *args[] = {t, t};
  const char *names[] = {"x", "y"};
  tgc_func *f = tgc_func_create(m, "main", args, names, 2, &t, 1, L("built.tir", 1, 1));
  CHECK(f->body->nargs == 2 && f->body->parent_func == f && f->module == m);
  CHECK(tgc_module_find_func(m, "main") == f);
  CHECK(tgc_module_find_func(m, "other") == NULL);
  tgc_builder b = tgc_builder_at_end(m, f->body);
  tgc_value *x = f->body->args[0], *y = f->body->args[1];
  CHECK_STR(x->name, "x");
  CHECK(x->def == NULL && x->block == f->body && y->index == 1);
  tgc_value *w = tgc_build_param(&b, "fc.weight", t4);
  tgc_value *sum = tgc_build_binary(&b, TGC_OP_ADD, x, w, t);
  sum->name = "sum";
  tgc_value *prod = tgc_build_binary(&b, TGC_OP_MUL, sum, y, t);
  tgc_value *n = tgc_build_unary(&b, TGC_OP_NEG, prod, t);
  tgc_op *ret = tgc_build_return(&b, &n, 1);
  CHECK(ret->opcode == TGC_OP_RETURN && ret->nresults == 0 && ret->noperands == 1);
  CHECK(f->body->last == ret && f->body->first == w->def);
  CHECK(sum->def->opcode == TGC_OP_ADD && sum->def->parent == f->body && sum->index == 0);
  CHECK(sum->def->prev == w->def && sum->def->next == prod->def);
  CHECK_STR(tgc_op_attr_str(w->def, "name", NULL), "fc.weight");
  CHECK(w->name == NULL); /* the param's name is an attribute, not a value name */

  char *text = print_module(m);
  CHECK_STR(text, "module @built {\n"
                  "  func @main(%x: f32[B, 4], %y: f32[B, 4]) -> f32[B, 4] {\n"
                  "    %0 = param() {name = \"fc.weight\"} : f32[4]\n"
                  "    %sum = add(%x, %0) : f32[B, 4]\n"
                  "    %1 = mul(%sum, %y) : f32[B, 4]\n"
                  "    %2 = neg(%1) : f32[B, 4]\n"
                  "    return %2\n"
                  "  }\n"
                  "}\n");
  capture c;
  cap_init(&c);
  int nerr = -1;
  CHECK_STR(verify(m, &c, &nerr), "");
  CHECK(nerr == 0 && c.d.nerrors == 0);

  /* the text parses back to a module that verifies and prints the same */
  tgc_module *m2 = parse("built.tir", text, &c);
  CHECK(m2 != NULL);
  if (m2) {
    CHECK(tgc_verify_module(m2, &c.d) == 0);
    char *text2 = print_module(m2);
    CHECK_STR(text2, text);
    free(text2);
  }
  CHECK_STR(cap_text(&c), "");
  tgc_module_destroy(m2);
  cap_free(&c);
  free(text);

  /* the builder inserts before a given op */
  b.before = ret;
  tgc_value *e = tgc_build_unary(&b, TGC_OP_EXP, n, t);
  CHECK(e->def->next == ret && ret->prev == e->def && n->def->next == e->def);
  CHECK(f->body->last == ret);
  /* a builder-made region op gets a region with one argument per operand, of the operands' types */
  tgc_op *fu = tgc_build(&b, TGC_OP_FUSION, &e, 1, t);
  CHECK(fu->region != NULL && fu->region->nargs == 1 && fu->region->parent_op == fu);
  CHECK(fu->region && tgc_type_equal(fu->region->args[0]->type, t));
  CHECK(fu->region && fu->region->parent_func == f);
  CHECK(fu->nresults == 1); /* "one or more" results: the builder makes one */
  tgc_op *sp = tgc_build(&b, TGC_OP_SPLIT, &e, 1, t);
  CHECK(sp->nresults == 1);
  tgc_module_destroy(m);
}

/* Functions and ops without name hints are numbered; arguments first, in order. */
static void test_printer_numbering(void) {
  tgc_module *m = tgc_module_create("nums");
  const tgc_type *t = vec(m, TGC_DT_I32, 3);
  const tgc_type *args[] = {t, t};
  const tgc_type *res[] = {t, t};
  tgc_func *f = tgc_func_create(m, "anon", args, NULL, 2, res, 2, L(NULL, 0, 0));
  tgc_builder b = tgc_builder_at_end(m, f->body);
  tgc_value *s = tgc_build_binary(&b, TGC_OP_SUB, f->body->args[1], f->body->args[0], t);
  tgc_value *k = tgc_build_unary(&b, TGC_OP_ABS, s, t);
  tgc_value *rv[] = {k, s};
  tgc_build_return(&b, rv, 2);
  /* an empty function with no results, and module attributes and meshes */
  tgc_func *g = tgc_func_create(m, "empty", NULL, NULL, 0, NULL, 0, L(NULL, 0, 0));
  tgc_builder bg = tgc_builder_at_end(m, g->body);
  tgc_build_return(&bg, NULL, 0);
  tgc_attrs_set(&m->arena, &m->attrs, "weights", tgc_attr_str(&m->arena, "w.safetensors", 13),
                L(NULL, 0, 0));
  const char *axes[] = {"dp", "tp"};
  const int64_t sizes[] = {2, 4};
  tgc_mesh *mesh = tgc_module_add_mesh(m, "grid", 2, axes, sizes, L(NULL, 0, 0));
  CHECK(tgc_module_find_mesh(m, "grid") == mesh && tgc_module_find_mesh(m, "gri") == NULL);
  char *text = print_module(m);
  CHECK_STR(text, "module @nums {weights = \"w.safetensors\"} {\n"
                  "  mesh @grid = [dp = 2, tp = 4]\n"
                  "\n"
                  "  func @anon(%0: i32[3], %1: i32[3]) -> (i32[3], i32[3]) {\n"
                  "    %2 = sub(%1, %0) : i32[3]\n"
                  "    %3 = abs(%2) : i32[3]\n"
                  "    return %3, %2\n"
                  "  }\n"
                  "\n"
                  "  func @empty() -> () {\n"
                  "    return\n"
                  "  }\n"
                  "}\n");
  capture c;
  cap_init(&c);
  int nerr = -1;
  CHECK_STR(verify(m, &c, &nerr), "");
  CHECK(nerr == 0);
  cap_free(&c);
  free(text);
  tgc_module_destroy(m);
}

/* Name hints that repeat, collide with the printer's suffixes or numbers, or hold characters that
 * cannot be spelled are made unique, and the result parses back and prints the same. */
static void test_printer_unique_names(void) {
  tgc_module *m = tgc_module_create("dup");
  tgc_func *f = simple_func(m, "f", 1, L(NULL, 0, 0));
  const tgc_type *t = f->result_types[0];
  tgc_builder b = tgc_builder_at_end(m, f->body);
  tgc_value *v1 = tgc_build_unary(&b, TGC_OP_NEG, f->body->args[0], t);
  tgc_value *v2 = tgc_build_unary(&b, TGC_OP_EXP, v1, t);
  tgc_value *v3 = tgc_build_unary(&b, TGC_OP_TANH, v2, t);
  tgc_value *v4 = tgc_build_unary(&b, TGC_OP_SQRT, v3, t);
  tgc_value *v5 = tgc_build_unary(&b, TGC_OP_ABS, v4, t);
  tgc_value *v6 = tgc_build_unary(&b, TGC_OP_RELU, v5, t);
  tgc_value *v7 = tgc_build_unary(&b, TGC_OP_SIN, v6, t);
  tgc_value *v8 = tgc_build_binary(&b, TGC_OP_ADD, v7, v1, t);
  v1->name = "t";
  v2->name = "t"; /* duplicate hint */
  /* v3 unnamed */
  v4->name = "t_1";   /* the suffix the printer would give the second "t" */
  v5->name = "a-b c"; /* characters that cannot appear in a name */
  v6->name = "x";     /* same as the argument */
  v7->name = "";      /* empty: numbered */
  v8->name = "0";     /* a number: the unnamed values skip it */
  tgc_build_return(&b, &v8, 1);
  char *text = print_module(m);
  CHECK_STR(text, "module @dup {\n"
                  "  func @f(%x: f32[4]) -> f32[4] {\n"
                  "    %t = neg(%x) : f32[4]\n"
                  "    %t_2 = exp(%t) : f32[4]\n"
                  "    %1 = tanh(%t_2) : f32[4]\n"
                  "    %t_1 = sqrt(%1) : f32[4]\n"
                  "    %a_b_c = abs(%t_1) : f32[4]\n"
                  "    %x_1 = relu(%a_b_c) : f32[4]\n"
                  "    %2 = sin(%x_1) : f32[4]\n"
                  "    %0 = add(%2, %t) : f32[4]\n"
                  "    return %0\n"
                  "  }\n"
                  "}\n");
  capture c;
  cap_init(&c);
  tgc_module *m2 = parse("dup.tir", text, &c);
  CHECK(m2 != NULL);
  CHECK_STR(cap_text(&c), "");
  if (m2) {
    CHECK(tgc_verify_module(m2, &c.d) == 0);
    char *text2 = print_module(m2);
    CHECK_STR(text2, text);
    free(text2);
  }
  tgc_module_destroy(m2);
  cap_free(&c);
  free(text);
  tgc_module_destroy(m);
}

/* parse -> print -> parse -> print is a fixed point for a module with a region, numbered names
 * (which the printer renumbers) and names reused in the isolated region. */
static void test_round_trip(void) {
  static const char src[] =
      "module @idem {weights = \"w.safetensors\", version = 2} {\n"
      "  mesh @grid = [dp = 2, tp = 4]\n"
      "  func @main(%7: f32[B, 8], %x: f32[B*S, 8], %s: f32[S]) -> (f32[B, 8], f32[B, 8]) {\n"
      "    %1 = add(%7, %7) : f32[B, 8]\n"
      "    %c = constant() {value = [[1, 2.5], [-3, nan]]} : f32[2, 2]\n"
      "    (%2, %3) = fusion(%1, %7, %c) {kind = \"loop\", shard = [@grid, \"dp\"]} : (f32[B, 8], "
      "f32[B, 8]) {\n"
      "    ^(%7: f32[B, 8], %x, %c2: f32[2, 2]):\n"
      "      %2 = mul(%7, %x) : f32[B, 8]\n"
      "      %u = tanh(%2)\n"
      "      %5 = fusion(%u) {kind = \"inner\"} : f32[B, 8] {\n"
      "      ^(%q):\n"
      "        yield %q\n"
      "      }\n"
      "      yield %2, %5\n"
      "    }\n"
      "    %r = all_reduce(%2) {mesh = @grid, axes = [\"tp\"], reduce = \"sum\"} : f32[B, 8]\n"
      "    return %r, %3\n"
      "  }\n"
      "  func @second(%x: f32[4]) -> f32[4] {\n"
      "    %g = gelu(%x) {approximate = \"tanh\"} : f32[4]\n"
      "    return %g\n"
      "  }\n"
      "}\n";
  capture c;
  cap_init(&c);
  tgc_module *m1 = parse("rt.tir", src, &c);
  CHECK(m1 != NULL);
  CHECK_STR(cap_text(&c), "");
  if (!m1) {
    cap_free(&c);
    return;
  }
  CHECK(tgc_verify_module(m1, &c.d) == 0);
  char *p1 = print_module(m1);
  CHECK_STR(
      p1, "module @idem {weights = \"w.safetensors\", version = 2} {\n"
          "  mesh @grid = [dp = 2, tp = 4]\n"
          "\n"
          "  func @main(%7: f32[B, 8], %x: f32[B*S, 8], %s: f32[S]) -> (f32[B, 8], f32[B, 8]) {\n"
          "    %1 = add(%7, %7) : f32[B, 8]\n"
          "    %c = constant() {value = [[1, 2.5], [-3, nan]]} : f32[2, 2]\n"
          "    (%2, %3) = fusion(%1, %7, %c) {kind = \"loop\", shard = [@grid, \"dp\"]} : (f32[B, "
          "8], f32[B, 8]) {\n"
          "    ^(%7: f32[B, 8], %x, %c2: f32[2, 2]):\n"
          "      %2 = mul(%7, %x) : f32[B, 8]\n"
          "      %u = tanh(%2)\n"
          "      %5 = fusion(%u) {kind = \"inner\"} : f32[B, 8] {\n"
          "      ^(%q):\n"
          "        yield %q\n"
          "      }\n"
          "      yield %2, %5\n"
          "    }\n"
          "    %r = all_reduce(%2) {mesh = @grid, axes = [\"tp\"], reduce = \"sum\"} : f32[B, 8]\n"
          "    return %r, %3\n"
          "  }\n"
          "\n"
          "  func @second(%x: f32[4]) -> f32[4] {\n"
          "    %g = gelu(%x) {approximate = \"tanh\"} : f32[4]\n"
          "    return %g\n"
          "  }\n"
          "}\n");
  tgc_module *m2 = parse("rt1.tir", p1, &c);
  CHECK(m2 != NULL);
  if (m2) {
    CHECK(tgc_verify_module(m2, &c.d) == 0);
    char *p2 = print_module(m2);
    CHECK_STR(p2, p1);
    free(p2);
  }
  CHECK_STR(cap_text(&c), "");
  tgc_module_destroy(m2);
  tgc_module_destroy(m1);
  free(p1);
  cap_free(&c);
}

/* The examples parse, verify, and print to a fixed point. */
static void test_examples(void) {
  static const char *const names[] = {"mlp.tir", "transformer_block.tir"};
  /* __FILE__ is .../test/unit/test_ir.c; the examples are in .../examples */
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", __FILE__);
  for (int up = 0; up < 3; up++) {
    char *slash = strrchr(dir, '/');
    if (slash)
      *slash = 0;
  }
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/examples/%s", dir, names[i]);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f) {
      fprintf(stderr, "  cannot open %s\n", path);
      continue;
    }
    char *src = calloc(1 << 20, 1);
    size_t n = fread(src, 1, (1 << 20) - 1, f);
    fclose(f);
    src[n] = 0;
    capture c;
    cap_init(&c);
    tgc_module *m1 = parse(path, src, &c);
    CHECK(m1 != NULL);
    if (m1) {
      CHECK(tgc_verify_module(m1, &c.d) == 0);
      char *p1 = print_module(m1);
      tgc_module *m2 = parse("printed.tir", p1, &c);
      CHECK(m2 != NULL);
      if (m2) {
        char *p2 = print_module(m2);
        CHECK_STR(p2, p1);
        free(p2);
      }
      tgc_module_destroy(m2);
      free(p1);
    }
    CHECK_STR(cap_text(&c), "");
    tgc_module_destroy(m1);
    cap_free(&c);
    free(src);
  }
}

/* ---- use lists
 * ---------------------------------------------------------------------------------------- */

static int count_uses_by(const tgc_value *v, const tgc_op *user) {
  int n = 0;
  for (const tgc_use *u = v->uses; u; u = u->next)
    if (u->user == user)
      n++;
  return n;
}

/* Every use on V's list points back at V and is one of its user's operand slots. */
static bool uses_consistent(const tgc_value *v) {
  for (const tgc_use *u = v->uses; u; u = u->next) {
    if (u->value != v || !u->user)
      return false;
    if (u < u->user->operands || u >= u->user->operands + u->user->noperands)
      return false;
    if (*u->prevp != u)
      return false;
  }
  return true;
}

static void test_use_lists(void) {
  tgc_module *m = tgc_module_create("uses");
  tgc_func *f = simple_func(m, "f", 2, L(NULL, 0, 0));
  const tgc_type *t = f->result_types[0];
  tgc_value *x = f->body->args[0], *y = f->body->args[1];
  tgc_builder b = tgc_builder_at_end(m, f->body);
  tgc_value *a = tgc_build_binary(&b, TGC_OP_ADD, x, x, t);
  a->name = "a";
  tgc_value *p = tgc_build_binary(&b, TGC_OP_MUL, a, y, t);
  p->name = "p";
  tgc_value *d = tgc_build_unary(&b, TGC_OP_EXP, x, t);
  d->name = "dead";
  tgc_op *ret = tgc_build_return(&b, &p, 1);
  tgc_op *aop = a->def, *pop = p->def, *dop = d->def;

  CHECK(tgc_value_num_uses(x) == 3);
  CHECK(tgc_value_num_uses(y) == 1);
  CHECK(tgc_value_num_uses(a) == 1);
  CHECK(tgc_value_num_uses(p) == 1);
  CHECK(tgc_value_num_uses(d) == 0);
  CHECK(count_uses_by(x, aop) == 2 && count_uses_by(x, dop) == 1);
  CHECK(count_uses_by(p, ret) == 1);
  CHECK(uses_consistent(x) && uses_consistent(y) && uses_consistent(a));

  /* set_operand moves one use */
  tgc_op_set_operand(aop, 1, y);
  CHECK(tgc_value_num_uses(x) == 2 && tgc_value_num_uses(y) == 2);
  CHECK(aop->operands[0].value == x && aop->operands[1].value == y);
  tgc_op_set_operand(aop, 1, y); /* the same value again: nothing changes */
  CHECK(tgc_value_num_uses(x) == 2 && tgc_value_num_uses(y) == 2);
  CHECK(uses_consistent(x) && uses_consistent(y));

  /* replace_all_uses moves every use */
  tgc_value_replace_all_uses(x, y);
  CHECK(tgc_value_num_uses(x) == 0 && x->uses == NULL);
  CHECK(tgc_value_num_uses(y) == 4);
  CHECK(aop->operands[0].value == y && dop->operands[0].value == y && pop->operands[1].value == y);
  CHECK(count_uses_by(y, aop) == 2 && count_uses_by(y, pop) == 1 && count_uses_by(y, dop) == 1);
  CHECK(uses_consistent(y));
  tgc_value_replace_all_uses(x, a); /* no uses: nothing happens */
  CHECK(tgc_value_num_uses(a) == 1);

  /* erase the dead op in the middle */
  tgc_op_erase(dop);
  CHECK(tgc_value_num_uses(y) == 3 && count_uses_by(y, dop) == 0);
  CHECK(dop->parent == NULL && dop->prev == NULL && dop->next == NULL);
  CHECK(pop->next == ret && ret->prev == pop);
  CHECK(uses_consistent(y));

  /* erase an op at the head of the block */
  b.before = aop;
  tgc_value *h = tgc_build_unary(&b, TGC_OP_SQRT, y, t);
  CHECK(f->body->first == h->def && aop->prev == h->def);
  CHECK(tgc_value_num_uses(y) == 4);
  tgc_op_erase(h->def);
  CHECK(f->body->first == aop && aop->prev == NULL);
  CHECK(tgc_value_num_uses(y) == 3);

  char *text = print_module(m);
  CHECK_STR(text, "module @uses {\n"
                  "  func @f(%x: f32[4], %y: f32[4]) -> f32[4] {\n"
                  "    %a = add(%y, %y) : f32[4]\n"
                  "    %p = mul(%a, %y) : f32[4]\n"
                  "    return %p\n"
                  "  }\n"
                  "}\n");
  free(text);
  capture c;
  cap_init(&c);
  int nerr = -1;
  CHECK_STR(verify(m, &c, &nerr), "");
  CHECK(nerr == 0);

  /* erase the op at the tail (the return): the verifier reports the missing return at the last op
   */
  ret->loc = L("uses.tir", 5, 5);
  pop->loc = L("uses.tir", 4, 10);
  tgc_op_erase(ret);
  CHECK(tgc_value_num_uses(p) == 0);
  CHECK(f->body->last == pop && pop->next == NULL);
  CHECK_STR(verify(m, &c, &nerr), "uses.tir:4:10: error: function '@f' must end with 'return'\n");
  CHECK(nerr == 1);

  /* an erased op can be inserted again */
  tgc_block_append(f->body, ret);
  tgc_op_set_operand(ret, 0, p);
  CHECK(f->body->last == ret && ret->parent == f->body && tgc_value_num_uses(p) == 1);
  CHECK(tgc_verify_module(m, &c.d) == 0);

  /* an operand set to NULL is reported as missing */
  aop->loc = L("uses.tir", 3, 10);
  tgc_op_set_operand(aop, 0, NULL);
  CHECK(tgc_value_num_uses(y) == 2);
  cap_free(&c);
  cap_init(&c);
  CHECK_STR(verify(m, &c, &nerr), "uses.tir:3:10: error: operand #0 of 'add' is missing\n");
  CHECK(nerr == 1);
  cap_free(&c);
  tgc_module_destroy(m);
}

/* Replacing the uses of a value by the value itself is a no-op (a pass may well do it, e.g. when a
 * fold returns its operand). Run in a child process with an alarm, so that a hang fails the check
 * instead of the whole test. */
static void test_replace_with_itself(void) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    CHECK(!"fork failed");
    return;
  }
  if (pid == 0) {
    alarm(2);
    tgc_module *m = tgc_module_create("self");
    tgc_func *f = simple_func(m, "f", 1, L(NULL, 0, 0));
    tgc_builder b = tgc_builder_at_end(m, f->body);
    tgc_value *x = f->body->args[0];
    tgc_value *n = tgc_build_binary(&b, TGC_OP_ADD, x, x, f->result_types[0]);
    tgc_build_return(&b, &n, 1);
    tgc_value_replace_all_uses(x, x);
    int ok = tgc_value_num_uses(x) == 2 && n->def->operands[0].value == x &&
             n->def->operands[1].value == x;
    tgc_module_destroy(m);
    _exit(ok ? 0 : 2);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  bool hung = WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM;
  if (hung)
    fprintf(stderr, "tgc_value_replace_all_uses(v, v) did not return within 2 s\n");
  CHECK(!hung);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ---- the verifier on IR built through the API
 * --------------------------------------------------------- */

static void test_verify_use_before_def(void) {
  tgc_module *m = tgc_module_create("ub");
  tgc_func *f = simple_func(m, "f", 1, L("ub.tir", 1, 1));
  const tgc_type *t = f->result_types[0];
  tgc_builder b = tgc_builder_at_end(m, f->body);
  b.loc = L("ub.tir", 2, 10);
  tgc_value *a = tgc_build_unary(&b, TGC_OP_EXP, f->body->args[0], t);
  a->name = "a";
  b.loc = L("ub.tir", 3, 10);
  tgc_value *u = tgc_build_unary(&b, TGC_OP_SIN, f->body->args[0], t); /* unnamed */
  b.loc = L("ub.tir", 4, 5);
  tgc_value *rv[] = {a};
  tgc_build_return(&b, rv, 1);
  capture c;
  cap_init(&c);
  int nerr = -1;
  CHECK_STR(verify(m, &c, &nerr), "");
  CHECK(nerr == 0);

  /* %n = neg(%a) inserted before the definition of %a */
  tgc_op *use = tgc_op_create(m, TGC_OP_NEG, &a, 1, &t, 1, L("ub.tir", 9, 7));
  tgc_block_insert_before(f->body, a->def, use);
  CHECK(f->body->first == use && use->next == a->def);
  CHECK(tgc_value_num_uses(a) == 2);
  /* and an op using the unnamed %u, before it */
  tgc_op *use2 = tgc_op_create(m, TGC_OP_COS, &u, 1, &t, 1, L("ub.tir", 10, 7));
  tgc_block_insert_before(f->body, u->def, use2);
  CHECK_STR(verify(m, &c, &nerr),
            "ub.tir:9:7: error: operand #0 of 'neg' '%a' is used before its definition\n"
            "ub.tir:10:7: error: operand #0 of 'cos' is used before its definition\n");
  CHECK(nerr == 2);
  cap_free(&c);

  /* an op that uses its own result */
  tgc_op_erase(use2);
  tgc_op_set_operand(use, 0, NULL);
  tgc_op_erase(use);
  tgc_op *self = tgc_op_create(m, TGC_OP_NEG, &a, 1, &t, 1, L("ub.tir", 11, 7));
  tgc_block_insert_before(f->body, u->def, self);
  tgc_op_set_operand(self, 0, &self->results[0]);
  self->results[0].name = "s";
  cap_init(&c);
  CHECK_STR(verify(m, &c, &nerr),
            "ub.tir:11:7: error: operand #0 of 'neg' '%s' is used before its definition\n");
  CHECK(nerr == 1);
  cap_free(&c);
  tgc_module_destroy(m);
}

static void test_verify_isolation(void) {
  tgc_module *m = tgc_module_create("iso");
  tgc_func *g = simple_func(m, "g", 1, L("iso.tir", 1, 1));
  tgc_builder bg = tgc_builder_at_end(m, g->body);
  tgc_build_return(&bg, &g->body->args[0], 1);
  tgc_func *f = simple_func(m, "f", 1, L("iso.tir", 5, 1));
  const tgc_type *t = f->result_types[0];
  tgc_value *x = f->body->args[0];
  tgc_builder b = tgc_builder_at_end(m, f->body);
  b.loc = L("iso.tir", 6, 10);
  tgc_op *fu = tgc_build(&b, TGC_OP_FUSION, &x, 1, t);
  tgc_op_set_attr(m, fu, "kind", tgc_attr_str(&m->arena, "loop", 4));
  tgc_value *fres = &fu->results[0];
  tgc_build_return(&b, &fres, 1);
  tgc_builder br = tgc_builder_at_end(m, fu->region);
  br.loc = L("iso.tir", 7, 12);
  tgc_value *in = tgc_build_unary(&br, TGC_OP_NEG, x, t); /* the function's %x, not the region's */
  br.loc = L("iso.tir", 8, 12);
  tgc_value *other =
      tgc_build_unary(&br, TGC_OP_EXP, g->body->args[0], t); /* another function's %x */
  tgc_value *ys[] = {in};
  br.loc = L("iso.tir", 9, 7);
  tgc_build(&br, TGC_OP_YIELD, ys, 1, NULL);
  (void)other;
  capture c;
  cap_init(&c);
  int nerr = -1;
  CHECK_STR(verify(m, &c, &nerr), "iso.tir:7:12: error: operand #0 of 'neg' '%x' is not defined in "
                                  "this region (regions are isolated)\n"
                                  "iso.tir:8:12: error: operand #0 of 'exp' '%x' is not defined in "
                                  "this region (regions are isolated)\n");
  CHECK(nerr == 2);
  cap_free(&c);

  /* a value of another function, used in a function body */
  tgc_op_set_operand(in->def, 0, fu->region->args[0]);
  tgc_op_set_operand(other->def, 0, fu->region->args[0]);
  tgc_op *bad = tgc_op_create(m, TGC_OP_ABS, &g->body->args[0], 1, &t, 1, L("iso.tir", 10, 10));
  tgc_block_insert_before(f->body, fu, bad);
  cap_init(&c);
  CHECK_STR(verify(m, &c, &nerr),
            "iso.tir:10:10: error: operand #0 of 'abs' '%x' is not defined in this function\n");
  CHECK(nerr == 1);
  cap_free(&c);
  tgc_module_destroy(m);
}

/* Structural errors that the parser cannot produce. */
static void test_verify_api_only(void) {
  capture c;
  int nerr = -1;

  /* a function body without 'return', and an empty one */
  tgc_module *m = tgc_module_create("noret");
  tgc_func *f = simple_func(m, "f", 1, L("nr.tir", 2, 8));
  tgc_builder b = tgc_builder_at_end(m, f->body);
  b.loc = L("nr.tir", 3, 10);
  tgc_build_unary(&b, TGC_OP_NEG, f->body->args[0], f->result_types[0]);
  simple_func(m, "empty", 0, L("nr.tir", 6, 8));
  cap_init(&c);
  CHECK_STR(verify(m, &c, &nerr), "nr.tir:3:10: error: function '@f' must end with 'return'\n"
                                  "nr.tir:6:8: error: function '@empty' must end with 'return'\n");
  CHECK(nerr == 2);
  cap_free(&c);
  tgc_module_destroy(m);

  /* result-count errors: split and fusion must produce at least one result, add exactly one */
  m = tgc_module_create("results");
  f = simple_func(m, "f", 1, L("r.tir", 1, 1));
  tgc_value *x = f->body->args[0];
  const tgc_type *t = f->result_types[0];
  tgc_op *sp = tgc_op_create(m, TGC_OP_SPLIT, &x, 1, NULL, 0, L("r.tir", 2, 5));
  int64_t sizes[] = {4};
  tgc_op_set_attr(m, sp, "axis", tgc_attr_int(&m->arena, 0));
  tgc_op_set_attr(m, sp, "sizes", tgc_attr_ints(&m->arena, sizes, 1));
  tgc_block_append(f->body, sp);
  tgc_op *fu = tgc_op_create(m, TGC_OP_FUSION, &x, 1, NULL, 0, L("r.tir", 3, 5));
  tgc_op_set_attr(m, fu, "kind", tgc_attr_str(&m->arena, "loop", 4));
  tgc_block_append(f->body, fu);
  tgc_op *y = tgc_op_create(m, TGC_OP_YIELD, NULL, 0, NULL, 0, L("r.tir", 4, 7));
  tgc_block_append(fu->region, y);
  const tgc_type *tt[] = {t, t, t};
  tgc_op *add3 = tgc_op_create(m, TGC_OP_ADD, (tgc_value *[]){x, x}, 2, tt, 3, L("r.tir", 5, 5));
  tgc_block_append(f->body, add3);
  tgc_op *ret = tgc_op_create(m, TGC_OP_RETURN, &x, 1, NULL, 0, L("r.tir", 6, 5));
  tgc_block_append(f->body, ret);
  cap_init(&c);
  CHECK_STR(verify(m, &c, &nerr), "r.tir:2:5: error: 'split' must produce at least one result\n"
                                  "r.tir:2:5: error: 'split' has 1 size, but 0 results are bound\n"
                                  "r.tir:3:5: error: 'fusion' must produce at least one result\n"
                                  "r.tir:5:5: error: 'add' produces 1 result, but 3 are bound\n");
  CHECK(nerr == 4);
  cap_free(&c);

  /* a terminator with results */
  tgc_op *ret2 = tgc_op_create(m, TGC_OP_RETURN, &x, 1, &t, 1, L("r.tir", 7, 5));
  tgc_op_erase(sp);
  tgc_op_erase(fu);
  tgc_op_erase(add3);
  tgc_op_erase(ret);
  tgc_block_append(f->body, ret2);
  cap_init(&c);
  CHECK_STR(verify(m, &c, &nerr),
            "r.tir:7:5: error: 'return' produces 0 results, but 1 is bound\n");
  CHECK(nerr == 1);
  cap_free(&c);
  tgc_module_destroy(m);

  /* a region on an op that takes none, and a region op without its region */
  m = tgc_module_create("regions");
  f = simple_func(m, "f", 1, L("g.tir", 1, 1));
  x = f->body->args[0];
  t = f->result_types[0];
  b = tgc_builder_at_end(m, f->body);
  b.loc = L("g.tir", 2, 10);
  tgc_value *n = tgc_build_unary(&b, TGC_OP_NEG, x, t);
  n->def->region = tgc_block_create(m, NULL, NULL, 0, L("g.tir", 2, 20));
  n->def->region->parent_op = n->def;
  b.loc = L("g.tir", 3, 10);
  fu = tgc_build(&b, TGC_OP_FUSION, &x, 1, t);
  tgc_op_set_attr(m, fu, "kind", tgc_attr_str(&m->arena, "loop", 4));
  fu->region = NULL;
  b.loc = L("g.tir", 4, 5);
  tgc_build_return(&b, &n, 1);
  cap_init(&c);
  CHECK_STR(verify(m, &c, &nerr), "g.tir:2:10: error: 'neg' does not take a region\n"
                                  "g.tir:3:10: error: 'fusion' requires a region\n");
  CHECK(nerr == 2);
  cap_free(&c);
  tgc_module_destroy(m);

  /* a function argument without a type */
  m = tgc_module_create("untyped");
  const tgc_type *none[] = {NULL};
  f = tgc_func_create(m, "f", none, NULL, 1, NULL, 0, L("u.tir", 2, 11));
  b = tgc_builder_at_end(m, f->body);
  tgc_build_return(&b, NULL, 0);
  cap_init(&c);
  CHECK_STR(verify(m, &c, &nerr), "u.tir:2:11: error: argument #0 of '@f' has no type\n");
  CHECK(nerr == 1);
  cap_free(&c);
  tgc_module_destroy(m);

  /* the module 'weights' attribute, set through the API without a location */
  m = tgc_module_create("w");
  tgc_attrs_set(&m->arena, &m->attrs, "weights", tgc_attr_bool(&m->arena, true), L(NULL, 0, 0));
  cap_init(&c);
  CHECK_STR(verify(m, &c, &nerr),
            "tgc: error: module attribute 'weights' must be a string (a .safetensors path)\n");
  CHECK(nerr == 1);
  cap_free(&c);
  tgc_module_destroy(m);
}

/* ---- attributes
 * ------------------------------------------------------------------------------------- */

static void test_attr_accessors(void) {
  tgc_module *m = tgc_module_create("attrs");
  tgc_arena *a = &m->arena;
  tgc_op *op = tgc_op_create(m, TGC_OP_PARAM, NULL, 0, NULL, 1, L(NULL, 0, 0));
  tgc_op_set_attr(m, op, "i", tgc_attr_int(a, -5));
  tgc_op_set_attr(m, op, "f", tgc_attr_float(a, 2.5));
  tgc_op_set_attr(m, op, "fi", tgc_attr_int(a, 3));
  tgc_op_set_attr(m, op, "b", tgc_attr_bool(a, true));
  tgc_op_set_attr(m, op, "s", tgc_attr_str(a, "hello", 5));
  int64_t xs[] = {1, 2};
  tgc_op_set_attr(m, op, "l", tgc_attr_ints(a, xs, 2));
  CHECK(op->attrs.n == 6);

  CHECK(tgc_op_attr_int(op, "i", 99) == -5);
  CHECK(tgc_op_attr_int(op, "missing", 99) == 99);
  CHECK(tgc_op_attr_int(op, "f", 99) == 99); /* a float is not an int */
  CHECK(tgc_op_attr_int(op, "s", 99) == 99);
  CHECK(tgc_op_attr_float(op, "f", 0.5) == 2.5);
  CHECK(tgc_op_attr_float(op, "fi", 0.5) == 3.0); /* an int reads as a float */
  CHECK(tgc_op_attr_float(op, "missing", 0.5) == 0.5);
  CHECK(tgc_op_attr_float(op, "b", 0.5) == 0.5);
  CHECK(tgc_op_attr_bool(op, "b", false) == true);
  CHECK(tgc_op_attr_bool(op, "missing", true) == true);
  CHECK(tgc_op_attr_bool(op, "missing", false) == false);
  CHECK(tgc_op_attr_bool(op, "i", false) == false); /* an int is not a bool */
  CHECK_STR(tgc_op_attr_str(op, "s", "dflt"), "hello");
  CHECK_STR(tgc_op_attr_str(op, "missing", "dflt"), "dflt");
  CHECK(tgc_op_attr_str(op, "missing", NULL) == NULL);
  CHECK_STR(tgc_op_attr_str(op, "i", "dflt"), "dflt");
  CHECK(tgc_op_attr(op, "l") && tgc_op_attr(op, "l")->kind == TGC_ATTR_LIST &&
        tgc_op_attr(op, "l")->u.list.n == 2);
  CHECK(tgc_op_attr(op, "nope") == NULL);
  CHECK(tgc_op_attr(op, "") == NULL);

  /* setting an existing name replaces it in place */
  tgc_op_set_attr(m, op, "i", tgc_attr_int(a, 9));
  CHECK(op->attrs.n == 6);
  CHECK(tgc_op_attr_int(op, "i", 0) == 9);
  CHECK_STR(op->attrs.items[0].name, "i");
  /* many attributes: the dictionary grows and keeps its order */
  char name[16];
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof name, "k%d", i);
    tgc_op_set_attr(m, op, name, tgc_attr_int(a, i * 10));
  }
  CHECK(op->attrs.n == 46);
  bool all = true;
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof name, "k%d", i);
    all = all && tgc_op_attr_int(op, name, -1) == i * 10 &&
          strcmp(op->attrs.items[6 + i].name, name) == 0;
  }
  CHECK(all);
  CHECK_STR(tgc_op_attr_str(op, "s", NULL), "hello");
  /* the attribute name is copied */
  char buf[8] = "tmp";
  tgc_op_set_attr(m, op, buf, tgc_attr_int(a, 1));
  buf[0] = 'X';
  CHECK(tgc_op_attr_int(op, "tmp", 0) == 1);
  tgc_module_destroy(m);
}

static const tgc_attr *list2(tgc_arena *a, const tgc_attr *x, const tgc_attr *y) {
  const tgc_attr *items[] = {x, y};
  return tgc_attr_list(a, items, 2);
}

static void test_attr_equal(void) {
  tgc_module *m = tgc_module_create("eq");
  tgc_arena *a = &m->arena;
  int64_t v123[] = {1, 2, 3}, v124[] = {1, 2, 4};
  const tgc_attr *l123 = tgc_attr_ints(a, v123, 3);
  CHECK(tgc_attr_equal(l123, tgc_attr_ints(a, v123, 3)));
  CHECK(!tgc_attr_equal(l123, tgc_attr_ints(a, v124, 3)));
  CHECK(!tgc_attr_equal(l123, tgc_attr_ints(a, v123, 2)));
  CHECK(!tgc_attr_equal(tgc_attr_ints(a, v123, 2), l123));
  CHECK(tgc_attr_equal(tgc_attr_list(a, NULL, 0), tgc_attr_ints(a, NULL, 0)));
  CHECK(!tgc_attr_equal(tgc_attr_list(a, NULL, 0), tgc_attr_int(a, 0)));

  /* nested lists: [[1, 2, 3], ["x", [2.5]]] */
  const tgc_attr *inner = tgc_attr_list(a, (const tgc_attr *[]){tgc_attr_float(a, 2.5)}, 1);
  const tgc_attr *n1 = list2(a, l123, list2(a, tgc_attr_str(a, "x", 1), inner));
  const tgc_attr *inner2 = tgc_attr_list(a, (const tgc_attr *[]){tgc_attr_float(a, 2.5)}, 1);
  const tgc_attr *n2 =
      list2(a, tgc_attr_ints(a, v123, 3), list2(a, tgc_attr_str(a, "x", 1), inner2));
  CHECK(tgc_attr_equal(n1, n2));
  const tgc_attr *inner3 = tgc_attr_list(a, (const tgc_attr *[]){tgc_attr_float(a, 2.75)}, 1);
  const tgc_attr *n3 = list2(a, l123, list2(a, tgc_attr_str(a, "x", 1), inner3));
  CHECK(!tgc_attr_equal(n1, n3));
  const tgc_attr *n4 = list2(a, l123, list2(a, tgc_attr_str(a, "x", 1), tgc_attr_float(a, 2.5)));
  CHECK(!tgc_attr_equal(n1, n4)); /* [2.5] vs 2.5 */

  /* floats: nan equals nan (structural equality), also inside lists */
  const tgc_attr *nan1 = tgc_attr_float(a, NAN), *nan2 = tgc_attr_float(a, -NAN);
  CHECK(tgc_attr_equal(nan1, nan2));
  CHECK(tgc_attr_equal(nan1, nan1));
  CHECK(!tgc_attr_equal(nan1, tgc_attr_float(a, 1.0)));
  CHECK(!tgc_attr_equal(tgc_attr_float(a, 1.0), nan1));
  CHECK(!tgc_attr_equal(nan1, tgc_attr_float(a, INFINITY)));
  CHECK(tgc_attr_equal(list2(a, nan1, tgc_attr_int(a, 1)), list2(a, nan2, tgc_attr_int(a, 1))));
  CHECK(tgc_attr_equal(tgc_attr_float(a, INFINITY), tgc_attr_float(a, INFINITY)));
  CHECK(!tgc_attr_equal(tgc_attr_float(a, INFINITY), tgc_attr_float(a, -INFINITY)));
  /* With the same structural equality, 0.0 and -0.0 differ: they print differently and behave
   * differently (1/x), so folding or CSE must not merge them. */
  CHECK(!tgc_attr_equal(tgc_attr_float(a, 0.0), tgc_attr_float(a, -0.0)));
  /* kinds matter: 1 is not 1.0, "dp" is not @dp, true is not 1 */
  CHECK(!tgc_attr_equal(tgc_attr_int(a, 1), tgc_attr_float(a, 1.0)));
  CHECK(!tgc_attr_equal(tgc_attr_str(a, "dp", 2), tgc_attr_symref(a, "dp")));
  CHECK(tgc_attr_equal(tgc_attr_symref(a, "dp"), tgc_attr_symref(a, "dp")));
  CHECK(!tgc_attr_equal(tgc_attr_symref(a, "dp"), tgc_attr_symref(a, "tp")));
  CHECK(!tgc_attr_equal(tgc_attr_bool(a, true), tgc_attr_int(a, 1)));
  CHECK(tgc_attr_equal(tgc_attr_bool(a, false), tgc_attr_bool(a, false)));
  CHECK(tgc_attr_equal(tgc_attr_dtype(a, TGC_DT_BF16), tgc_attr_dtype(a, TGC_DT_BF16)));
  CHECK(!tgc_attr_equal(tgc_attr_dtype(a, TGC_DT_BF16), tgc_attr_dtype(a, TGC_DT_F16)));
  /* strings compare by length and bytes, embedded NULs included */
  CHECK(tgc_attr_equal(tgc_attr_str(a, "a\0b", 3), tgc_attr_str(a, "a\0b", 3)));
  CHECK(!tgc_attr_equal(tgc_attr_str(a, "a\0b", 3), tgc_attr_str(a, "a\0c", 3)));
  CHECK(!tgc_attr_equal(tgc_attr_str(a, "a\0b", 3), tgc_attr_str(a, "a", 1)));
  CHECK(!tgc_attr_equal(tgc_attr_str(a, "ab", 2), tgc_attr_str(a, "abc", 3)));
  CHECK(tgc_attr_equal(tgc_attr_str(a, "", 0), tgc_attr_str(a, "", 0)));
  CHECK(tgc_attr_equal(tgc_attr_int(a, INT64_MIN), tgc_attr_int(a, INT64_MIN)));

  /* printing */
  tgc_strbuf b;
  tgc_sb_init(&b);
  const tgc_attr *items[] = {tgc_attr_int(a, -7),
                             tgc_attr_float(a, 1.0),
                             tgc_attr_float(a, 1e-5),
                             tgc_attr_float(a, 0.1),
                             tgc_attr_float(a, -0.0),
                             tgc_attr_float(a, NAN),
                             tgc_attr_float(a, -INFINITY),
                             tgc_attr_float(a, 1e20),
                             tgc_attr_str(a, "q\"\\\n\x01", 5),
                             tgc_attr_bool(a, true),
                             tgc_attr_dtype(a, TGC_DT_F8E4M3),
                             tgc_attr_symref(a, "grid"),
                             n1};
  tgc_attr_print(tgc_attr_list(a, items, sizeof items / sizeof items[0]), &b);
  CHECK_STR(b.data, "[-7, 1.0, 1.0e-05, 0.1, -0.0, nan, -inf, 1.0e+20, \"q\\\"\\\\\\n\\x01\", "
                    "true, f8e4m3, @grid, "
                    "[[1, 2, 3], [\"x\", [2.5]]]]");
  tgc_sb_free(&b);
  tgc_module_destroy(m);
}

/* ---- the op and dtype tables
 * ------------------------------------------------------------------------ */

static void test_op_table(void) {
  bool roundtrip = true, unique = true, sane = true;
  for (int i = 0; i < TGC_OP_COUNT; i++) {
    const char *name = tgc_op_name((tgc_opcode)i);
    const tgc_op_info *info = tgc_op_info_of((tgc_opcode)i);
    tgc_opcode back = TGC_OP_COUNT;
    if (!name || !name[0] || !tgc_op_lookup(name, strlen(name), &back) || back != (tgc_opcode)i) {
      roundtrip = false;
      fprintf(stderr, "  op #%d '%s' does not round-trip through tgc_op_lookup\n", i,
              name ? name : "(null)");
    }
    if (info->name != name)
      roundtrip = false;
    for (int j = 0; j < i; j++)
      if (strcmp(tgc_op_name((tgc_opcode)j), name) == 0)
        unique = false;
    /* table invariants */
    if (info->max_operands >= 0 && info->max_operands < info->min_operands)
      sane = false;
    if ((info->flags & TGC_OPF_TERMINATOR) && info->nresults != 0)
      sane = false;
    if ((info->flags & TGC_OPF_COMPARE) && !(info->flags & TGC_OPF_ELEMWISE))
      sane = false;
    if ((info->flags & TGC_OPF_COMMUTATIVE) && (info->min_operands != 2 || info->max_operands != 2))
      sane = false;
    if (!info->attr_schema)
      sane = false;
    /* the op classes of ops.def */
    if ((info->flags & TGC_OPF_FLOAT_ONLY) && !(info->flags & (TGC_OPF_ELEMWISE | TGC_OPF_REDUCTION)))
      sane = false;
    if ((info->flags & TGC_OPF_LOGICAL) && !(info->flags & TGC_OPF_ELEMWISE))
      sane = false;
    if ((info->flags & TGC_OPF_INDEX_MAP) && (info->flags & (TGC_OPF_ELEMWISE | TGC_OPF_REGION | TGC_OPF_REDUCTION)))
      sane = false;
    if ((info->flags & TGC_OPF_VIEW) && (!(info->flags & TGC_OPF_INDEX_MAP) || info->max_operands != 1))
      sane = false;
    if ((info->flags & TGC_OPF_SOURCE) && (info->max_operands != 0 || !(info->flags & TGC_OPF_NEEDS_TYPE)))
      sane = false;
  }
  CHECK(roundtrip);
  CHECK(unique);
  CHECK(sane);
  tgc_opcode op = TGC_OP_COUNT;
  CHECK(tgc_op_lookup("matmul", 6, &op) && op == TGC_OP_MATMUL);
  CHECK(tgc_op_lookup("addx", 3, &op) && op == TGC_OP_ADD); /* LEN bytes, not NUL-terminated */
  CHECK(tgc_op_lookup("reduce_scatter", 14, &op) && op == TGC_OP_REDUCE_SCATTER);
  CHECK(!tgc_op_lookup("matmull", 7, &op));
  CHECK(!tgc_op_lookup("matmu", 5, &op));
  CHECK(!tgc_op_lookup("", 0, &op));
  CHECK(!tgc_op_lookup("ADD", 3, &op));
  CHECK_STR(tgc_op_name(TGC_OP_LAYER_NORM), "layer_norm");
  CHECK_STR(tgc_op_suggest("matmull"), "matmul");
  CHECK_STR(tgc_op_suggest("softmx"), "softmax");
  CHECK_STR(tgc_op_suggest("reduce_sun"), "reduce_sum");
  CHECK_STR(tgc_op_suggest("layernorm"), "layer_norm");
  CHECK_STR(tgc_op_suggest("allreduce"), "all_reduce");
  CHECK(tgc_op_suggest("xyzzyq") == NULL);
  CHECK(tgc_op_suggest("convolution") == NULL);
  const tgc_op_info *ln = tgc_op_info_of(TGC_OP_LAYER_NORM);
  CHECK(ln->min_operands == 1 && ln->max_operands == 3 && ln->nresults == 1 &&
        (ln->flags & TGC_OPF_REDUCTION));
  const tgc_op_info *cc = tgc_op_info_of(TGC_OP_CONCAT);
  CHECK(cc->min_operands == 1 && cc->max_operands == -1);
  CHECK(tgc_op_info_of(TGC_OP_SPLIT)->nresults == -1 &&
        tgc_op_info_of(TGC_OP_FUSION)->nresults == -1);
  CHECK(tgc_op_info_of(TGC_OP_FUSION)->flags & TGC_OPF_REGION);
  CHECK((tgc_op_info_of(TGC_OP_RETURN)->flags & TGC_OPF_TERMINATOR) &&
        (tgc_op_info_of(TGC_OP_YIELD)->flags & TGC_OPF_TERMINATOR));
  CHECK(tgc_op_info_of(TGC_OP_ALL_GATHER)->flags & TGC_OPF_COLLECTIVE);
  CHECK(tgc_op_info_of(TGC_OP_LT)->flags & TGC_OPF_COMPARE);
  CHECK(!(tgc_op_info_of(TGC_OP_SUB)->flags & TGC_OPF_COMMUTATIVE));
  CHECK(tgc_op_info_of(TGC_OP_MUL)->flags & TGC_OPF_COMMUTATIVE);
  int region_ops = 0, needs_type = 0;
  for (int i = 0; i < TGC_OP_COUNT; i++) {
    region_ops += (tgc_op_info_of((tgc_opcode)i)->flags & TGC_OPF_REGION) != 0;
    needs_type += (tgc_op_info_of((tgc_opcode)i)->flags & TGC_OPF_NEEDS_TYPE) != 0;
  }
  CHECK(region_ops >= 1 && needs_type >= 8);
  static const tgc_opcode typed[] = {TGC_OP_CAST,     TGC_OP_RESHAPE,   TGC_OP_BROADCAST_TO,
                                     TGC_OP_IOTA,     TGC_OP_PARAM,     TGC_OP_CONSTANT,
                                     TGC_OP_QUANTIZE, TGC_OP_DEQUANTIZE};
  bool all_typed = true;
  for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++)
    all_typed = all_typed && (tgc_op_info_of(typed[i])->flags & TGC_OPF_NEEDS_TYPE);
  CHECK(all_typed);
  CHECK(!(tgc_op_info_of(TGC_OP_ADD)->flags & TGC_OPF_NEEDS_TYPE));
  /* class memberships the passes and backends rely on */
  CHECK((tgc_op_info_of(TGC_OP_EXP)->flags & TGC_OPF_FLOAT_ONLY) &&
        (tgc_op_info_of(TGC_OP_SOFTMAX)->flags & TGC_OPF_FLOAT_ONLY) &&
        !(tgc_op_info_of(TGC_OP_NEG)->flags & TGC_OPF_FLOAT_ONLY) &&
        !(tgc_op_info_of(TGC_OP_CUMSUM)->flags & TGC_OPF_FLOAT_ONLY));
  CHECK((tgc_op_info_of(TGC_OP_NOT)->flags & TGC_OPF_LOGICAL) && !(tgc_op_info_of(TGC_OP_ADD)->flags & TGC_OPF_LOGICAL));
  CHECK((tgc_op_info_of(TGC_OP_TRANSPOSE)->flags & TGC_OPF_INDEX_MAP) &&
        !(tgc_op_info_of(TGC_OP_GATHER)->flags & TGC_OPF_INDEX_MAP) &&
        !(tgc_op_info_of(TGC_OP_SPLIT)->flags & TGC_OPF_INDEX_MAP));
  int views = 0, sources = 0;
  for (int i = 0; i < TGC_OP_COUNT; i++) {
    views += (tgc_op_info_of((tgc_opcode)i)->flags & TGC_OPF_VIEW) != 0;
    sources += (tgc_op_info_of((tgc_opcode)i)->flags & TGC_OPF_SOURCE) != 0;
  }
  CHECK(views == 1 && (tgc_op_info_of(TGC_OP_RESHAPE)->flags & TGC_OPF_VIEW));
  CHECK(sources == 2 && (tgc_op_info_of(TGC_OP_PARAM)->flags & TGC_OPF_SOURCE) &&
        (tgc_op_info_of(TGC_OP_CONSTANT)->flags & TGC_OPF_SOURCE));
}

static void test_dtypes(void) {
  bool roundtrip = true;
  for (int i = 0; i < TGC_DT_COUNT; i++) {
    const char *name = tgc_dtype_name((tgc_dtype)i);
    tgc_dtype back = TGC_DT_COUNT;
    if (!tgc_dtype_lookup(name, strlen(name), &back) || back != (tgc_dtype)i)
      roundtrip = false;
  }
  CHECK(roundtrip);
  tgc_dtype dt = TGC_DT_COUNT;
  CHECK(tgc_dtype_lookup("f32", 3, &dt) && dt == TGC_DT_F32);
  CHECK(tgc_dtype_lookup("bf16", 4, &dt) && dt == TGC_DT_BF16);
  CHECK(tgc_dtype_lookup("f32x", 3, &dt) && dt == TGC_DT_F32);
  CHECK(tgc_dtype_lookup("bool", 4, &dt) && dt == TGC_DT_BOOL);
  CHECK(!tgc_dtype_lookup("f33", 3, &dt));
  CHECK(!tgc_dtype_lookup("bf", 2, &dt));
  CHECK(!tgc_dtype_lookup("F32", 3, &dt));
  CHECK(!tgc_dtype_lookup("", 0, &dt));
  CHECK(tgc_dtype_bits(TGC_DT_F32) == 32 && tgc_dtype_bits(TGC_DT_BF16) == 16 &&
        tgc_dtype_bits(TGC_DT_I4) == 4);
  CHECK(tgc_dtype_bits(TGC_DT_F8E5M2) == 8 && tgc_dtype_bits(TGC_DT_F64) == 64 &&
        tgc_dtype_bits(TGC_DT_BOOL) == 8);
  CHECK(tgc_dtype_kind_of(TGC_DT_F16) == TGC_DTK_FLOAT &&
        tgc_dtype_kind_of(TGC_DT_F8E4M3) == TGC_DTK_FLOAT);
  CHECK(tgc_dtype_kind_of(TGC_DT_I8) == TGC_DTK_SINT &&
        tgc_dtype_kind_of(TGC_DT_I4) == TGC_DTK_SINT);
  CHECK(tgc_dtype_kind_of(TGC_DT_U8) == TGC_DTK_UINT &&
        tgc_dtype_kind_of(TGC_DT_BOOL) == TGC_DTK_BOOL);
  CHECK_STR(tgc_dtype_name(TGC_DT_F8E4M3), "f8e4m3");
  CHECK_STR(tgc_dtype_name(TGC_DT_U8), "u8");
}

/* ---- diagnostics
 * -------------------------------------------------------------------------------------- */

static void test_diag(void) {
  static const char src[] = "line one\n  bad token here\n\tx = 1\nlast";
  capture c;
  cap_init(&c);
  tgc_diag_add_source(&c.d, "in.tir", src, strlen(src));
  tgc_error(&c.d, L("in.tir", 2, 3), "something %s", "wrong");
  CHECK_STR(cap_text(&c), "in.tir:2:3: error: something wrong\n"
                          "  bad token here\n"
                          "  ^\n");
  CHECK(c.d.nerrors == 1 && c.d.nwarnings == 0);
  cap_free(&c);

  cap_init(&c);
  tgc_diag_add_source(&c.d, "in.tir", src, strlen(src));
  tgc_warning(&c.d, L("in.tir", 1, 6), "careful");
  tgc_note(&c.d, L("in.tir", 0, 0), "see the whole file");
  tgc_error(&c.d, L(NULL, 0, 0), "no location");
  tgc_diag_report(&c.d, TGC_DIAG_REMARK, L("other.tir", 3, 4),
                  "a remark");                         /* no source registered: no line */
  tgc_error(&c.d, L("in.tir", 3, 2), "after a tab");   /* the caret line keeps the tab */
  tgc_error(&c.d, L("in.tir", 4, 99), "past the end"); /* the caret stops at the end */
  tgc_error(&c.d, L("in.tir", 4, 1), "last line without newline");
  tgc_error(&c.d, L("in.tir", 9, 1), "line past the end of the file");
  CHECK_STR(cap_text(&c), "in.tir:1:6: warning: careful\n"
                          "line one\n"
                          "     ^\n"
                          "in.tir: note: see the whole file\n"
                          "tgc: error: no location\n"
                          "other.tir:3:4: remark: a remark\n"
                          "in.tir:3:2: error: after a tab\n"
                          "\tx = 1\n"
                          "\t^\n"
                          "in.tir:4:99: error: past the end\n"
                          "last\n"
                          "    ^\n"
                          "in.tir:4:1: error: last line without newline\n"
                          "last\n"
                          "^\n"
                          "in.tir:9:1: error: line past the end of the file\n");
  CHECK(c.d.nerrors == 5 && c.d.nwarnings == 1);
  cap_free(&c);

  /* the error limit: the note is printed once, later errors are counted but not shown, notes are
   * dropped */
  cap_init(&c);
  c.d.max_errors = 2;
  tgc_error(&c.d, L(NULL, 0, 0), "one");
  CHECK(!tgc_diag_should_stop(&c.d));
  tgc_error(&c.d, L(NULL, 0, 0), "two");
  CHECK(tgc_diag_should_stop(&c.d));
  tgc_error(&c.d, L(NULL, 0, 0), "three");
  tgc_note(&c.d, L(NULL, 0, 0), "a note about three");
  tgc_error(&c.d, L(NULL, 0, 0), "four");
  CHECK_STR(cap_text(&c), "tgc: error: one\n"
                          "tgc: error: two\n"
                          "tgc: fatal error: too many errors emitted, stopping now\n");
  CHECK(c.d.nerrors == 4 && c.d.limit_reached);
  cap_free(&c);

  /* a parse error, with the source line registered by the parser */
  static const char bad[] = "module @m {\n"
                            "  func @f() -> () {\n"
                            "    %a = matmull()\n"
                            "    return\n"
                            "  }\n"
                            "}\n";
  cap_init(&c);
  tgc_module *m = parse("bad.tir", bad, &c);
  CHECK(m == NULL);
  CHECK_STR(cap_text(&c), "bad.tir:3:10: error: unknown op 'matmull'; did you mean 'matmul'?\n"
                          "    %a = matmull()\n"
                          "         ^\n");
  CHECK(c.d.nerrors == 1);
  cap_free(&c);

  /* a verifier error on a parsed module shows the source line too */
  static const char src2[] = "module @m {\n"
                             "  func @f(%x: f32[4]) -> f32[4] {\n"
                             "    %y = add(%x) : f32[4]\n"
                             "    %e = eq(%y, %x) {bogus = 1} : f32[4]\n"
                             "    return %y\n"
                             "  }\n"
                             "}\n";
  cap_init(&c);
  m = parse("v.tir", src2, &c);
  CHECK(m != NULL);
  if (m) {
    int nerr = -1;
    CHECK_STR(verify(m, &c, &nerr),
              "v.tir:3:10: error: 'add' expects 2 operands, but has 1\n"
              "    %y = add(%x) : f32[4]\n"
              "         ^\n"
              "v.tir:4:22: error: 'eq' has no attribute 'bogus'\n"
              "    %e = eq(%y, %x) {bogus = 1} : f32[4]\n"
              "                     ^\n"
              "v.tir:4:10: error: 'eq' is a comparison: its result dtype must be bool, not f32\n"
              "    %e = eq(%y, %x) {bogus = 1} : f32[4]\n"
              "         ^\n");
    CHECK(nerr == 3 && c.d.nerrors == 3);
  }
  tgc_module_destroy(m);
  cap_free(&c);
}

/* tgc_value_storage: top-level reshapes share their operand's storage transitively; a reshape inside a fusion
 * region is its own value (plan-memory's copy followed reshapes at any depth, codegen's only top-level ones). */
static const tgc_op *find_op(const tgc_block *b, const char *result_name) {
  for (const tgc_op *op = b->first; op; op = op->next) {
    if (op->nresults && op->results[0].name && strcmp(op->results[0].name, result_name) == 0)
      return op;
    const tgc_op *in = op->region ? find_op(op->region, result_name) : NULL;
    if (in)
      return in;
  }
  return NULL;
}

static void test_value_storage(void) {
  const char *src = "module @m {\n"
                    "  func @main(%x: f32[4, N]) -> f32[N, 4] {\n"
                    "    %rx = reshape(%x) : f32[N, 4]\n"
                    "    %a = exp(%rx) : f32[N, 4]\n"
                    "    %r1 = reshape(%a) : f32[4, N]\n"
                    "    %r2 = reshape(%r1) : f32[N, 4]\n"
                    "    %f = fusion(%r2) {kind = \"elementwise\"} : f32[N, 4] {\n"
                    "    ^(%p: f32[N, 4]):\n"
                    "      %q1 = reshape(%p) : f32[4, N]\n"
                    "      %q2 = reshape(%q1) : f32[N, 4]\n"
                    "      %e = exp(%q2) : f32[N, 4]\n"
                    "      yield %e\n"
                    "    }\n"
                    "    %r3 = reshape(%f) : f32[N, 4]\n"
                    "    return %r3\n"
                    "  }\n"
                    "}\n";
  capture c;
  cap_init(&c);
  tgc_module *m = parse("storage.tir", src, &c);
  CHECK(m != NULL);
  if (!m) {
    cap_free(&c);
    return;
  }
  const tgc_block *body = m->funcs->body;
  const tgc_value *x = body->args[0];
  const tgc_value *a = &find_op(body, "a")->results[0], *f = &find_op(body, "f")->results[0];
  const tgc_value *r1 = &find_op(body, "r1")->results[0], *r2 = &find_op(body, "r2")->results[0];
  const tgc_value *q1 = &find_op(body, "q1")->results[0], *q2 = &find_op(body, "q2")->results[0];
  CHECK(tgc_value_storage(&find_op(body, "rx")->results[0]) == x); /* a reshape of an argument */
  CHECK(tgc_value_storage(x) == x);
  CHECK(tgc_value_storage(a) == a);
  CHECK(tgc_value_storage(r1) == a);
  CHECK(tgc_value_storage(r2) == a); /* a reshape of a reshape */
  CHECK(tgc_value_storage(&find_op(body, "r3")->results[0]) == f);
  /* inside the region: no buffers, so no aliasing through the region's reshapes or its argument */
  CHECK(tgc_value_storage(q1) == q1);
  CHECK(tgc_value_storage(q2) == q2);
  CHECK(tgc_value_storage(find_op(body, "f")->region->args[0]) == find_op(body, "f")->region->args[0]);
  tgc_module_destroy(m);
  cap_free(&c);
}

int main(void) {
  test_builder();
  test_printer_numbering();
  test_printer_unique_names();
  test_round_trip();
  test_examples();
  test_use_lists();
  test_replace_with_itself();
  test_verify_use_before_def();
  test_verify_isolation();
  test_verify_api_only();
  test_attr_accessors();
  test_attr_equal();
  test_op_table();
  test_dtypes();
  test_diag();
  test_value_storage();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

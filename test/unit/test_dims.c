/* Unit tests of symbolic dims (ir/dim.c) through the API of ir/ir.h: canonical form, printing,
 * equality, tgc_dim_is_const, overflow detection and the size limits (TGC_DIM_TOO_BIG), evaluation at symbol
 * sizes (tgc_dim_eval: overflow, unbound symbols) and the parser of symbol-size lists (tgc_sym_sizes_parse). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ir.h"
#include "check.h"




static tgc_module *mod;
static tgc_arena *A;

static const tgc_dim *C(int64_t v) {
  return tgc_dim_const(A, v);
}
static const tgc_dim *S(const char *name) {
  return tgc_dim_sym(A, tgc_module_sym(mod, name, strlen(name)));
}

/* The arithmetic helpers record a failure (with the caller's line) when the operation does not
 * succeed and then return the constant 0 so that the test can go on. */
static const tgc_dim *arith(char op, const tgc_dim *x, const tgc_dim *y, int line) {
  const tgc_dim *r = NULL;
  tgc_dim_status st = op == '+'   ? tgc_dim_add(A, x, y, &r)
                      : op == '-' ? tgc_dim_sub(A, x, y, &r)
                                  : tgc_dim_mul(A, x, y, &r);
  if (st != TGC_DIM_OK || !r) {
    failed++;
    fprintf(stderr, "%s:%d: check failed: dim '%c' returned status %d, expected TGC_DIM_OK\n",
            __FILE__, line, op, (int)st);
    return tgc_dim_const(A, 0);
  }
  passed++;
  return r;
}
#define ADD(x, y) arith('+', (x), (y), __LINE__)
#define SUB(x, y) arith('-', (x), (y), __LINE__)
#define MUL(x, y) arith('*', (x), (y), __LINE__)

/* The canonical spelling of D (a rotating set of buffers, so that several may be used in one
 * check). */
static const char *str(const tgc_dim *d) {
  static char bufs[8][512];
  static int next;
  char *out = bufs[next++ % 8];
  tgc_strbuf b;
  tgc_sb_init(&b);
  tgc_dim_print(d, &b);
  snprintf(out, 512, "%s", b.data ? b.data : "");
  tgc_sb_free(&b);
  return out;
}

/* ---- canonical form and printing ---- */

static void test_constants(void) {
  CHECK_STR(str(C(0)), "0");
  CHECK_STR(str(C(7)), "7");
  CHECK_STR(str(C(-3)), "-3");
  CHECK_STR(str(C(INT64_MAX)), "9223372036854775807");
  CHECK_STR(str(C(INT64_MIN)), "(-9223372036854775807 - 1)");
  CHECK(C(0)->nterms == 0);
  CHECK(C(5)->nterms == 1);
  CHECK_STR(str(ADD(C(2), C(3))), "5");
  CHECK_STR(str(SUB(C(2), C(3))), "-1");
  CHECK_STR(str(MUL(C(6), C(7))), "42");
  CHECK_STR(str(MUL(C(-6), C(7))), "-42");
  CHECK_STR(str(SUB(C(5), C(5))), "0");
  CHECK(SUB(C(5), C(5))->nterms == 0);
  CHECK(tgc_dim_equal(ADD(C(2), C(3)), C(5)));
}

static void test_commutative_product(void) {
  const tgc_dim *bs = MUL(S("B"), S("S")), *sb = MUL(S("S"), S("B"));
  CHECK(tgc_dim_equal(bs, sb));
  CHECK(tgc_dim_equal(sb, bs));
  CHECK_STR(str(bs), "B*S");
  CHECK_STR(str(sb), "B*S");
  /* associativity of longer products */
  const tgc_dim *x = MUL(MUL(S("S"), S("H")), S("B")), *y = MUL(S("B"), MUL(S("H"), S("S")));
  CHECK(tgc_dim_equal(x, y));
  CHECK_STR(str(x), "B*H*S");
  /* symbols in a term are sorted by name (strcmp), not by length or first use */
  CHECK_STR(str(MUL(S("seq"), S("batch"))), "batch*seq");
  CHECK_STR(str(MUL(S("b"), S("B"))), "B*b");
  /* powers are repeated symbols */
  CHECK_STR(str(MUL(MUL(S("B"), S("B")), S("B"))), "B*B*B");
}

static void test_expand(void) {
  /* (B+1)*(B-1) == B*B - 1 */
  const tgc_dim *lhs = MUL(ADD(S("B"), C(1)), SUB(S("B"), C(1)));
  const tgc_dim *rhs = SUB(MUL(S("B"), S("B")), C(1));
  CHECK(tgc_dim_equal(lhs, rhs));
  CHECK_STR(str(lhs), "B*B - 1");
  /* (B+S)*(B-S) == B*B - S*S: the cross terms cancel */
  const tgc_dim *d = MUL(ADD(S("B"), S("S")), SUB(S("B"), S("S")));
  CHECK_STR(str(d), "B*B - S*S");
  CHECK(d->nterms == 2);
  /* distributivity */
  const tgc_dim *x = S("X"), *y = S("Y"), *z = S("Z");
  CHECK(tgc_dim_equal(MUL(x, ADD(y, z)), ADD(MUL(x, y), MUL(x, z))));
  CHECK_STR(str(MUL(ADD(x, C(2)), ADD(y, C(3)))), "X*Y + 3*X + 2*Y + 6");
  /* multiplying by 1 and 0 */
  CHECK(tgc_dim_equal(MUL(x, C(1)), x));
  CHECK_STR(str(MUL(ADD(x, y), C(0))), "0");
  CHECK(MUL(ADD(x, y), C(0))->nterms == 0);
}

static void test_combine_like_terms(void) {
  const tgc_dim *s = S("S");
  const tgc_dim *two_s = MUL(C(2), s);
  CHECK_STR(str(two_s), "2*S");
  const tgc_dim *sum = ADD(two_s, s);
  CHECK(tgc_dim_equal(sum, MUL(C(3), s)));
  CHECK_STR(str(sum), "3*S");
  CHECK(sum->nterms == 1);
  /* B - B == 0 prints "0" */
  const tgc_dim *zero = SUB(S("B"), S("B"));
  CHECK_STR(str(zero), "0");
  CHECK(zero->nterms == 0);
  CHECK(tgc_dim_equal(zero, C(0)));
  /* terms that cancel in the middle of a sum disappear */
  const tgc_dim *d = SUB(ADD(ADD(S("A"), S("B")), S("C")), S("B"));
  CHECK_STR(str(d), "A + C");
  CHECK(d->nterms == 2);
}

static void test_printing(void) {
  const tgc_dim *b = S("B"), *s = S("S");
  CHECK_STR(str(SUB(C(4), b)), "-B + 4");
  /* S*B + 1 + B*S */
  CHECK_STR(str(ADD(ADD(MUL(s, b), C(1)), MUL(b, s))), "2*B*S + 1");
  CHECK_STR(str(b), "B");
  CHECK_STR(str(SUB(C(0), b)), "-B");
  CHECK_STR(str(SUB(b, s)), "B - S");
  CHECK_STR(str(SUB(SUB(C(0), MUL(C(2), b)), C(3))), "-2*B - 3");
  CHECK_STR(str(ADD(MUL(C(-1), MUL(b, s)), s)), "-B*S + S");
  /* higher degree first, then by names, the constant last */
  const tgc_dim *d = ADD(ADD(ADD(C(12), s), b), ADD(MUL(b, s), MUL(MUL(b, b), s)));
  CHECK_STR(str(d), "B*B*S + B*S + B + S + 12");
  CHECK_STR(str(ADD(S("Z"), S("A"))), "A + Z");
  /* large coefficients print exactly */
  CHECK_STR(str(MUL(C(INT64_MIN), b)), "(-9223372036854775807 - 1)*B");
  CHECK_STR(str(ADD(MUL(C(INT64_MAX), b), C(INT64_MIN))),
            "9223372036854775807*B + (-9223372036854775807 - 1)");
}

static void test_equality(void) {
  const tgc_dim *b = S("B"), *s = S("S");
  CHECK(tgc_dim_equal(b, S("B"))); /* two dims of the same interned symbol */
  CHECK(!tgc_dim_equal(b, s));
  CHECK(!tgc_dim_equal(b, MUL(C(2), b)));
  CHECK(!tgc_dim_equal(b, ADD(b, C(1))));
  CHECK(!tgc_dim_equal(ADD(b, C(1)), ADD(b, C(2))));
  CHECK(!tgc_dim_equal(b, MUL(b, b)));
  CHECK(!tgc_dim_equal(MUL(b, s), ADD(b, s)));
  CHECK(!tgc_dim_equal(MUL(b, b), MUL(b, s)));
  CHECK(!tgc_dim_equal(C(3), C(4)));
  CHECK(!tgc_dim_equal(C(0), C(1)));
  CHECK(!tgc_dim_equal(C(1), b));
  CHECK(tgc_dim_equal(C(-9), SUB(C(1), C(10))));
  /* equality does not depend on how the dim was built */
  const tgc_dim *x = ADD(ADD(MUL(b, s), b), C(1));
  const tgc_dim *y = ADD(C(1), ADD(b, MUL(s, b)));
  CHECK(tgc_dim_equal(x, y));
  CHECK(tgc_dim_equal(SUB(b, s), ADD(b, MUL(C(-1), s))));
  /* symbols are compared by name: two modules agree on B*S */
  tgc_module *other = tgc_module_create("other");
  const tgc_dim *ob = tgc_dim_sym(&other->arena, tgc_module_sym(other, "B", 1));
  const tgc_dim *os = tgc_dim_sym(&other->arena, tgc_module_sym(other, "S", 1));
  const tgc_dim *obs = NULL;
  CHECK(tgc_dim_mul(&other->arena, os, ob, &obs) == TGC_DIM_OK);
  CHECK(obs && tgc_dim_equal(obs, MUL(b, s)));
  tgc_module_destroy(other);
  /* symbols are interned per module */
  CHECK(tgc_module_sym(mod, "B", 1) == tgc_module_sym(mod, "B", 1));
  CHECK(tgc_module_sym(mod, "Bx", 1) == tgc_module_sym(mod, "B", 1));
  CHECK(tgc_module_sym(mod, "B", 1) != tgc_module_sym(mod, "S", 1));
  CHECK_STR(tgc_module_sym(mod, "seq_len", 7)->name, "seq_len");
}

static void test_is_const(void) {
  int64_t v = -1;
  CHECK(tgc_dim_is_const(C(5), &v) && v == 5);
  v = -1;
  CHECK(tgc_dim_is_const(C(0), &v) && v == 0);
  v = 0;
  CHECK(tgc_dim_is_const(C(INT64_MIN), &v) && v == INT64_MIN);
  CHECK(tgc_dim_is_const(C(9), NULL));
  v = 77;
  CHECK(!tgc_dim_is_const(S("B"), &v));
  CHECK(v == 77); /* untouched when not constant */
  CHECK(!tgc_dim_is_const(ADD(S("B"), C(1)), NULL));
  CHECK(!tgc_dim_is_const(MUL(C(3), S("B")), NULL));
  v = -1;
  CHECK(tgc_dim_is_const(SUB(S("B"), S("B")), &v) && v == 0);
  v = -1;
  CHECK(tgc_dim_is_const(SUB(ADD(S("B"), C(3)), S("B")), &v) && v == 3);
  v = -1;
  CHECK(tgc_dim_is_const(SUB(MUL(ADD(S("B"), C(1)), ADD(S("B"), C(1))),
                             ADD(MUL(S("B"), S("B")), MUL(C(2), S("B")))),
                         &v) &&
        v == 1);
}

/* ---- overflow ---- */

static void test_overflow(void) {
  const tgc_dim *r = NULL;
  CHECK(tgc_dim_add(A, C(INT64_MAX), C(1), &r) == TGC_DIM_OVERFLOW);
  CHECK(tgc_dim_add(A, C(1), C(INT64_MAX), &r) == TGC_DIM_OVERFLOW);
  CHECK(tgc_dim_sub(A, C(INT64_MIN), C(1), &r) == TGC_DIM_OVERFLOW);
  CHECK(tgc_dim_add(A, C(INT64_MIN), C(-1), &r) == TGC_DIM_OVERFLOW);
  CHECK(tgc_dim_mul(A, C(INT64_MAX), C(2), &r) == TGC_DIM_OVERFLOW);
  CHECK(tgc_dim_mul(A, C(INT64_MIN), C(-1), &r) == TGC_DIM_OVERFLOW);
  CHECK(tgc_dim_mul(A, C(INT64_MAX / 2 + 1), C(2), &r) == TGC_DIM_OVERFLOW);
  CHECK(tgc_dim_sub(A, C(0), C(INT64_MIN), &r) == TGC_DIM_OVERFLOW); /* -INT64_MIN */
  CHECK(tgc_dim_sub(A, C(INT64_MAX), C(-1), &r) == TGC_DIM_OVERFLOW);
  /* coefficients of symbolic terms overflow the same way */
  const tgc_dim *big_b = MUL(C(INT64_MAX), S("B"));
  CHECK(tgc_dim_add(A, big_b, S("B"), &r) == TGC_DIM_OVERFLOW);
  CHECK(tgc_dim_mul(A, big_b, C(2), &r) == TGC_DIM_OVERFLOW);
  CHECK(tgc_dim_mul(A, ADD(big_b, C(1)), ADD(S("S"), C(3)), &r) == TGC_DIM_OVERFLOW);
  /* products whose monomials merge: (B+1)*(B + INT64_MAX) has B with coefficient INT64_MAX + 1 */
  CHECK(tgc_dim_mul(A, ADD(S("B"), C(1)), ADD(S("B"), C(INT64_MAX)), &r) == TGC_DIM_OVERFLOW);
}

static void test_no_false_overflow(void) {
  /* the extremes themselves are fine */
  CHECK_STR(str(ADD(C(INT64_MAX - 1), C(1))), "9223372036854775807");
  CHECK_STR(str(ADD(C(INT64_MIN + 1), C(-1))), "(-9223372036854775807 - 1)");
  CHECK_STR(str(ADD(C(INT64_MAX), C(INT64_MIN))), "-1");
  CHECK_STR(str(MUL(C(INT64_MAX), C(-1))), "-9223372036854775807");
  CHECK_STR(str(MUL(C(INT64_MIN / 2), C(2))), "(-9223372036854775807 - 1)");
  CHECK_STR(str(SUB(C(INT64_MAX), C(INT64_MAX))), "0");
  CHECK_STR(str(SUB(C(INT64_MIN), C(-1))), "-9223372036854775807");
  /* x - y must not negate y first: -1 - INT64_MIN == INT64_MAX fits, and so does
   * INT64_MIN*B - INT64_MIN*B == 0 */
  CHECK_STR(str(SUB(C(-1), C(INT64_MIN))), "9223372036854775807");
  const tgc_dim *min_b = MUL(C(INT64_MIN), S("B"));
  CHECK_STR(str(SUB(min_b, min_b)), "0");
  CHECK_STR(str(SUB(ADD(min_b, C(1)), min_b)), "1");
  /* Partial products that cancel must not report an overflow that the result does not have, and the
   * result must not depend on the order of the factors: (A + B + 1) * (-A*B + A + MAX*B) = -A*A*B -
   * A*B*B + A*A + (MAX + 1 - 1)*A*B + MAX*B*B + A + MAX*B */
  const tgc_dim *x = ADD(ADD(S("A"), S("B")), C(1));
  const tgc_dim *y = ADD(ADD(MUL(C(-1), MUL(S("A"), S("B"))), S("A")), MUL(C(INT64_MAX), S("B")));
  const char *want =
      "-A*A*B - A*B*B + A*A + 9223372036854775807*A*B + 9223372036854775807*B*B + A + "
      "9223372036854775807*B";
  const tgc_dim *xy = MUL(x, y), *yx = MUL(y, x);
  CHECK_STR(str(xy), want);
  CHECK_STR(str(yx), want);
  CHECK(tgc_dim_equal(xy, yx));
}

/* ---- limits ---- */

static void test_too_big(void) {
  const tgc_dim *r = NULL;
  /* degree: at most 16 */
  const tgc_dim *p = S("B");
  for (int i = 1; i < 16; i++)
    p = MUL(p, S("B"));
  CHECK(p->nterms == 1 && p->terms[0].nsyms == 16);
  CHECK(tgc_dim_mul(A, p, S("B"), &r) == TGC_DIM_TOO_BIG);
  CHECK(tgc_dim_mul(A, p, S("S"), &r) == TGC_DIM_TOO_BIG);
  CHECK(tgc_dim_mul(A, p, C(3), &r) == TGC_DIM_OK); /* constants do not raise the degree */
  const tgc_dim *b8 = S("B");
  for (int i = 1; i < 8; i++)
    b8 = MUL(b8, S("B"));
  const tgc_dim *b9 = MUL(b8, S("B"));
  CHECK(tgc_dim_mul(A, b8, b8, &r) == TGC_DIM_OK);
  CHECK(tgc_dim_mul(A, b8, b9, &r) == TGC_DIM_TOO_BIG);

  /* terms: a sum of 64 symbols is fine, 65 is too big */
  const tgc_dim *sum = C(0);
  char name[16];
  for (int i = 0; i < 64; i++) {
    snprintf(name, sizeof name, "s%02d", i);
    sum = ADD(sum, S(name));
  }
  CHECK(sum->nterms == 64);
  CHECK(tgc_dim_add(A, sum, S("t"), &r) == TGC_DIM_TOO_BIG);
  CHECK(tgc_dim_add(A, sum, C(1), &r) == TGC_DIM_TOO_BIG); /* the constant is a term too */
  CHECK(tgc_dim_add(A, sum, S("s00"), &r) == TGC_DIM_OK);  /* merges into an existing term */
  CHECK(tgc_dim_sub(A, sum, S("s00"), &r) == TGC_DIM_OK && r->nterms == 63);

  /* huge products: (s0 + ... + s11)^2 has 78 distinct terms, (s0 + ... + s16)^2 has 289 partial
   * products */
  const tgc_dim *s12 = C(0), *s17 = C(0), *s10 = C(0);
  for (int i = 0; i < 17; i++) {
    snprintf(name, sizeof name, "s%02d", i);
    if (i < 10)
      s10 = ADD(s10, S(name));
    if (i < 12)
      s12 = ADD(s12, S(name));
    s17 = ADD(s17, S(name));
  }
  CHECK(tgc_dim_mul(A, s12, s12, &r) == TGC_DIM_TOO_BIG);
  CHECK(tgc_dim_mul(A, s17, s17, &r) == TGC_DIM_TOO_BIG);
  CHECK(tgc_dim_mul(A, sum, sum, &r) == TGC_DIM_TOO_BIG);
  /* (s0 + ... + s9)^2 has 55 terms: fine */
  CHECK(tgc_dim_mul(A, s10, s10, &r) == TGC_DIM_OK && r->nterms == 55);
  /* a product of many terms that collapses is fine: (B+1)*(B-1) with 4 partial products */
  CHECK(tgc_dim_mul(A, ADD(S("B"), C(1)), SUB(S("B"), C(1)), &r) == TGC_DIM_OK && r->nterms == 2);
}

/* ---- types built from dims ---- */

static void test_types(void) {
  const tgc_dim *d1[] = {MUL(S("S"), S("B")), C(64)};
  const tgc_dim *d2[] = {MUL(S("B"), S("S")), ADD(C(60), C(4))};
  const tgc_type *t1 = tgc_type_create(A, TGC_DT_F32, 2, d1),
                 *t2 = tgc_type_create(A, TGC_DT_F32, 2, d2);
  const tgc_type *t3 = tgc_type_create(A, TGC_DT_F16, 2, d2),
                 *t4 = tgc_type_create(A, TGC_DT_F32, 1, d2);
  const tgc_type *scalar = tgc_type_create(A, TGC_DT_BOOL, 0, NULL);
  CHECK(tgc_type_equal(t1, t2));
  CHECK(!tgc_type_equal(t1, t3));
  CHECK(!tgc_type_equal(t1, t4));
  CHECK(!tgc_type_equal(t1, NULL));
  CHECK(tgc_type_equal(scalar, tgc_type_create(A, TGC_DT_BOOL, 0, NULL)));
  tgc_strbuf b;
  tgc_sb_init(&b);
  tgc_type_print(t1, &b);
  tgc_sb_puts(&b, " ");
  tgc_type_print(scalar, &b);
  CHECK_STR(b.data, "f32[B*S, 64] bool[]");
  tgc_sb_free(&b);
}


/* tgc_dim_eval: the value at given sizes, every overflow caught (whatever the order of the terms), an unbound
 * symbol named. */
static void test_eval(void) {
  const char *names[] = {"B", "S"};
  int64_t sizes[] = {3, 5}, v = -1;
  const char *unbound = NULL;
  /* 2*B*S + S - 4 at B=3, S=5: 30 + 5 - 4 */
  const tgc_dim *d = ADD(ADD(MUL(C(2), MUL(S("B"), S("S"))), S("S")), C(-4));
  CHECK(tgc_dim_eval(d, names, sizes, 2, &v, &unbound) == TGC_DIM_OK && v == 31);
  CHECK(tgc_dim_eval(C(0), names, sizes, 0, &v, NULL) == TGC_DIM_OK && v == 0);
  CHECK(tgc_dim_eval(C(-7), NULL, NULL, 0, &v, NULL) == TGC_DIM_OK && v == -7);
  /* the names' order does not matter */
  const char *rnames[] = {"S", "B"};
  int64_t rsizes[] = {5, 3};
  CHECK(tgc_dim_eval(d, rnames, rsizes, 2, &v, NULL) == TGC_DIM_OK && v == 31);
  /* an unbound symbol is named, not taken as 0 or 1 */
  v = 123;
  CHECK(tgc_dim_eval(d, names, sizes, 1, &v, &unbound) == TGC_DIM_UNBOUND && v == 123);
  CHECK_STR(unbound, "S");
  CHECK(tgc_dim_eval(S("T"), names, sizes, 2, &v, NULL) == TGC_DIM_UNBOUND);
  /* a product that leaves int64: B*S at 2^32 each, 4*B at 2^62 */
  int64_t big[] = {(int64_t)1 << 32, (int64_t)1 << 32};
  CHECK(tgc_dim_eval(MUL(S("B"), S("S")), names, big, 2, &v, NULL) == TGC_DIM_OVERFLOW);
  int64_t huge[] = {(int64_t)1 << 62, 1};
  CHECK(tgc_dim_eval(MUL(C(4), S("B")), names, huge, 2, &v, NULL) == TGC_DIM_OVERFLOW);
  CHECK(tgc_dim_eval(MUL(C(-2), S("B")), names, huge, 2, &v, NULL) == TGC_DIM_OK && v == INT64_MIN);
  /* a sum that leaves int64: B + S at INT64_MAX and 1 */
  int64_t edge[] = {INT64_MAX, 1};
  CHECK(tgc_dim_eval(ADD(S("B"), S("S")), names, edge, 2, &v, NULL) == TGC_DIM_OVERFLOW);
  CHECK(tgc_dim_eval(ADD(S("B"), C(1)), names, edge, 2, &v, NULL) == TGC_DIM_OVERFLOW);
  /* a term that overflows is caught even when the rest would bring the sum back: 2*B - S - 2 at 2^62 each */
  int64_t half[] = {(int64_t)1 << 62, (int64_t)1 << 62};
  CHECK(tgc_dim_eval(SUB(ADD(MUL(C(2), S("B")), C(-2)), S("S")), names, half, 2, &v, NULL) == TGC_DIM_OVERFLOW);
  int64_t near[] = {INT64_MAX, INT64_MAX};
  CHECK(tgc_dim_eval(ADD(S("B"), S("S")), names, near, 2, &v, NULL) == TGC_DIM_OVERFLOW);
  CHECK(tgc_dim_eval(SUB(S("B"), S("S")), names, near, 2, &v, NULL) == TGC_DIM_OK && v == 0);
  /* terms whose running sum leaves int64 but whose total fits are not an overflow (summed in 128 bits, so the
   * order of the terms does not matter): B + S - T at INT64_MAX, 1, 1 */
  const char *n3[] = {"B", "S", "T"};
  int64_t s3[] = {INT64_MAX, 1, 1};
  CHECK(tgc_dim_eval(SUB(ADD(S("B"), S("S")), S("T")), n3, s3, 3, &v, NULL) == TGC_DIM_OK && v == INT64_MAX);
}

/* tgc_sym_sizes_parse: one rule (SYM=N items separated by ',' or ';'), errors naming the bad item. */
static bool parse_fails(const char *text, const char *why_want) {
  tgc_sym_sizes s = {0};
  tgc_strbuf why;
  tgc_sb_init(&why);
  bool ok = tgc_sym_sizes_parse(&s, text, &why);
  bool match = !ok && why.data && strcmp(why.data, why_want) == 0;
  if (!match)
    fprintf(stderr, "parse of '%s': ok=%d why='%s', expected '%s'\n", text, ok, why.data ? why.data : "",
            why_want);
  tgc_sb_free(&why);
  tgc_sym_sizes_free(&s);
  return match;
}

static void test_sym_sizes(void) {
  tgc_sym_sizes s = {0};
  tgc_strbuf why;
  tgc_sb_init(&why);
  CHECK(tgc_sym_sizes_parse(&s, "B=8,S=512;T_2=0", &why));
  CHECK(s.n == 3);

  CHECK_STR(s.names[0], "B");
  CHECK_STR(s.names[1], "S");
  CHECK_STR(s.names[2], "T_2");
  CHECK(s.sizes[0] == 8 && s.sizes[1] == 512 && s.sizes[2] == 0);
  CHECK(tgc_sym_sizes_find(&s, "S") == 1 && tgc_sym_sizes_find(&s, "Q") == -1);
  /* appending: a second list adds to the first, and a repeat across them is an error */
  CHECK(tgc_sym_sizes_parse(&s, "Q=9223372036854775807;seq.len=7", &why)); /* '.' in a name, as the lexer has it */
  CHECK(s.n == 5 && s.sizes[3] == INT64_MAX && s.sizes[4] == 7);
  CHECK_STR(s.names[4], "seq.len");
  CHECK(!tgc_sym_sizes_parse(&s, "R=1,B=2", &why));
  CHECK_STR(why.data, "symbol 'B' is given twice");
  CHECK(s.n == 6); /* R=1, the item before the bad one, is kept */
  /* evaluation straight from the parsed list */
  int64_t v = 0;
  CHECK(tgc_dim_eval(MUL(S("B"), S("S")), s.names, s.sizes, s.n, &v, NULL) == TGC_DIM_OK && v == 4096);
  tgc_sb_free(&why);
  tgc_sym_sizes_free(&s);
  CHECK(s.n == 0 && s.names == NULL);
  const char *range = " is not SYM=N with N an integer from 0 to 9223372036854775807";
  char want[256];
  const char *bad[] = {"B=-1", "B=x", "B", "=3", "B=", "B=+3", "B= 3", "2B=3", "B=9223372036854775808",
                       "B=99999999999999999999", "B=1=2", "B-1=2", ".B=1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    snprintf(want, sizeof want, "item '%s'%s", bad[i], range);
    CHECK(parse_fails(bad[i], want));
  }
  /* the bad item is named, not the whole list */
  snprintf(want, sizeof want, "item 'S=x'%s", range);
  CHECK(parse_fails("B=1,S=x;T=2", want));
  CHECK(parse_fails("B=1;B=2", "symbol 'B' is given twice"));
  const char *empty = "an empty item (items are SYM=N, separated by ',' or ';')";
  CHECK(parse_fails("", empty));
  CHECK(parse_fails("B=1,", empty));
  CHECK(parse_fails(",B=1", empty));
  CHECK(parse_fails("B=1;;S=2", empty));
}

int main(void) {
  mod = tgc_module_create("dims");
  A = &mod->arena;
  test_constants();
  test_commutative_product();
  test_expand();
  test_combine_like_terms();
  test_printing();
  test_equality();
  test_is_const();
  test_overflow();
  test_no_false_overflow();
  test_too_big();
  test_types();
  test_eval();
  test_sym_sizes();
  tgc_module_destroy(mod);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

/* Unit tests of ir/calib.c: tgc_calib_get finds a value's statistics where tgc calibrate puts them (its op, or its
 * function for an argument) after a print and parse round trip; tgc_calib_set refuses values that cannot carry
 * them; the methods' parser; the histogram's bins against their edges; thresholds on small histograms worked
 * out by hand. */
#include <math.h>
#include <stdlib.h>

#include "../../frontend/frontend.h"
#include "../../ir/calib.h"
#include "check.h"

static const char *src = "module @m {\n"
                         "  func @f(%x: f32[B, 3], %y: f32[B, 3]) -> f32[B, 3] {\n"
                         "    %a = add(%x, %y) : f32[B, 3]\n"
                         "    (%s, %t) = split(%a) {axis = 1, sizes = [1, 2]} : (f32[B, 1], f32[B, 2])\n"
                         "    return %a\n"
                         "  }\n"
                         "}\n";

static tgc_module *parse(const char *text, tgc_diag *d) {
  tgc_module *m = tgc_parse_module("t.tir", text, strlen(text), d);
  CHECK(m && tgc_verify_module(m, d) == 0);
  return m;
}

static void test_get_set(void) {
  tgc_diag d;
  tgc_diag_init(&d, stderr);
  tgc_module *m = parse(src, &d);
  tgc_func *f = m->funcs;
  tgc_value *x = f->body->args[0], *y = f->body->args[1], *a = &f->body->first->results[0];
  tgc_value *s = &f->body->first->next->results[0];
  tgc_calib c;
  CHECK(!tgc_calib_get(a, &c) && !c.present && isnan(c.amax));
  double ch[3] = {0.5, 1.25, 3.0};
  tgc_calib in = {2.5, 3.0, -3.0, 1.5, 0.125, ch, 3, true};
  CHECK(tgc_calib_set(m, a, &in));
  tgc_calib in_y = {0.75, 1.0, -1.0, 0.1, 0.0, ch, 2, true};
  CHECK(tgc_calib_set(m, y, &in_y));
  CHECK(!tgc_calib_set(m, s, &in)); /* a result of split: nowhere to put them */
  tgc_calib_set_run(m, "percentile:99.9", 500, NULL, 7);
  CHECK(tgc_verify_module(m, &d) == 0);

  /* printed and parsed back, the statistics read the same */
  tgc_strbuf b;
  tgc_sb_init(&b);
  tgc_print_module(m, &b);
  CHECK(strstr(b.data, "{calib.arg1.amax = 0.75, calib.arg1.absmax = 1.0, calib.arg1.min = -1.0") != NULL);
  CHECK(strstr(b.data, "calib.method = \"percentile:99.9\", calib.samples = 500, calib.seed = 7") != NULL);
  tgc_module *m2 = parse(b.data, &d);
  tgc_func *f2 = m2->funcs;
  CHECK(tgc_calib_get(&f2->body->first->results[0], &c) && c.present);
  CHECK(c.amax == 2.5 && c.absmax == 3.0 && c.min == -3.0 && c.max == 1.5 && c.clip == 0.125);
  CHECK(c.nch == 3 && c.chmax && c.chmax[0] == 0.5 && c.chmax[1] == 1.25 && c.chmax[2] == 3.0);
  CHECK(tgc_calib_get(f2->body->args[1], &c) && c.amax == 0.75 && c.max == 0.1 && c.nch == 2 && c.chmax[1] == 1.25);
  CHECK(!tgc_calib_get(f2->body->args[0], &c) && !c.present); /* %x has none */
  (void)x;

  /* clearing removes every calib.* attribute */
  tgc_calib_clear(m2);
  tgc_strbuf b2;
  tgc_sb_init(&b2);
  tgc_print_module(m2, &b2);
  CHECK(strstr(b2.data, "calib.") == NULL);
  tgc_sb_free(&b);
  tgc_sb_free(&b2);
  tgc_module_destroy(m);
  tgc_module_destroy(m2);
  tgc_diag_free(&d);
}

static void test_methods(void) {
  tgc_calib_method m;
  tgc_strbuf why;
  tgc_sb_init(&why);
  CHECK(tgc_calib_method_parse("minmax", &m, &why) && m.kind == TGC_CALIB_MINMAX && !tgc_calib_method_needs_hist(&m));
  CHECK(tgc_calib_method_parse("percentile:99.99", &m, &why) && m.kind == TGC_CALIB_PERCENTILE &&
        m.percentile == 99.99);
  CHECK(tgc_calib_method_parse("percentile:100", &m, &why) && m.percentile == 100);
  CHECK(tgc_calib_method_parse("entropy", &m, &why) && m.kind == TGC_CALIB_ENTROPY);
  CHECK(tgc_calib_method_parse("mse", &m, &why) && m.kind == TGC_CALIB_MSE && tgc_calib_method_needs_hist(&m));
  const char *bad[] = {"percentile:0", "percentile:abc", "percentile:", "percentile:-1", "percentile:1e2",
                       "percentile:100.01", "percentile: 5", "percentile:nan", "foo", "", "MINMAX"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK(!tgc_calib_method_parse(bad[i], &m, &why));
  tgc_sb_free(&why);

  /* bins: edge(k) < a <= edge(k + 1), 0 in bin 0, absmax in the last */
  double absmax = 3.7;
  CHECK(tgc_calib_bin(0, absmax) == 0);
  CHECK(tgc_calib_bin(absmax, absmax) == TGC_CALIB_BINS - 1);
  for (uint32_t k = 1; k < TGC_CALIB_BINS; k++) {
    double e = tgc_calib_edge(k, absmax);
    CHECK(tgc_calib_bin(e, absmax) == k - 1);
    CHECK(tgc_calib_bin(nextafter(e, INFINITY), absmax) == k);
  }

  /* thresholds on histograms worked out by hand */
  uint64_t *h = calloc(TGC_CALIB_BINS, sizeof *h);
  h[0] = 90;
  h[9] = 9;
  h[2047] = 1; /* one outlier at absmax */
  m.kind = TGC_CALIB_PERCENTILE;
  m.percentile = 90;
  CHECK(tgc_calib_threshold(&m, h) == 1);
  m.percentile = 99;
  CHECK(tgc_calib_threshold(&m, h) == 10);
  m.percentile = 99.5;
  CHECK(tgc_calib_threshold(&m, h) == 2048);
  m.kind = TGC_CALIB_MINMAX;
  CHECK(tgc_calib_threshold(&m, h) == 2048);
  m.kind = TGC_CALIB_ENTROPY;
  uint32_t e = tgc_calib_threshold(&m, h);
  CHECK(e >= 128 && e <= 2048);
  /* a single spike: any i keeps it alone in its level (KL 0 everywhere), and ties go to the largest i */
  memset(h, 0, sizeof *h * TGC_CALIB_BINS);
  h[5] = 100;
  CHECK(tgc_calib_threshold(&m, h) == 2048);
  /* mse: a spike at bin 5's centre (5.5/2048 of absmax): the edge whose int8 grid puts a level nearest to it,
   * found here by brute force over the same formula */
  m.kind = TGC_CALIB_MSE;
  uint32_t i = tgc_calib_threshold(&m, h);
  double c = 5.5 / 2048, best = INFINITY;
  uint32_t want = 0;
  for (uint32_t j = 1; j <= 2048; j++) { /* the brute force, directly */
    double s = j / 2048.0 / 127.0, q = fmin(rint(c / s), 127) * s, err = (c - q) * (c - q);
    if (err <= best) {
      best = err;
      want = j;
    }
  }
  CHECK(i == want);
  free(h);
}

int main(void) {
  test_get_set();
  test_methods();
  return CHECK_EXIT();
}

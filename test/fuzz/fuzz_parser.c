/* libFuzzer target for the .tir frontend: parse arbitrary bytes; when they parse and verify, the printed
 * form must parse again and print identically (the round-trip property). Any crash, sanitizer report, leak
 * or round-trip mismatch is a bug. Build with -DTGC_FUZZ=ON and clang; run with scripts/fuzz-parser. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  static FILE *sink;
  if (!sink)
    sink = fopen("/dev/null", "w");
  tgc_diag diag;
  tgc_diag_init(&diag, sink);
  tgc_module *m = tgc_parse_module("fuzz.tir", (const char *)data, size, &diag);
  if (m && tgc_verify_module(m, &diag) == 0) {
    tgc_strbuf a, b;
    tgc_sb_init(&a);
    tgc_sb_init(&b);
    tgc_print_module(m, &a);
    tgc_diag d2;
    tgc_diag_init(&d2, stderr);
    tgc_module *m2 = tgc_parse_module("printed.tir", a.data, a.len, &d2);
    if (!m2) {
      fprintf(stderr, "printed module does not parse:\n%s\n", a.data);
      abort();
    }
    tgc_print_module(m2, &b);
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
      fprintf(stderr, "printing is not idempotent:\n--- first\n%s\n--- second\n%s\n", a.data, b.data);
      abort();
    }
    tgc_module_destroy(m2);
    tgc_diag_free(&d2);
    tgc_sb_free(&a);
    tgc_sb_free(&b);
  }
  tgc_module_destroy(m);
  tgc_diag_free(&diag);
  return 0;
}

/* libFuzzer target for the program loader (runtime/program_io.c): arbitrary bytes as artifact sections, each
 * record "NAME\n" then its bytes, records separated by "\n\x1e" (the seeds: `test_rt_program --write-seeds DIR`,
 * programs of the examples with their "program", "kernel/<key>.cu" and "plan" sections). A load must fail with a
 * message that starts with the file's name, or give a program that passes tgc_rt_program_check, stores again
 * and reads back to the same "program" section. Any crash, sanitizer report, leak or broken property is a bug.
 * Build with -DTGC_FUZZ=ON and clang; run with scripts/fuzz-program. */
#define _POSIX_C_SOURCE 200809L /* strndup */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "program.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_program: %s: %s\n", what, detail);
  abort();
}

enum { MAX_SECTIONS = 64 };

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  tgc_rt_section s[MAX_SECTIONS];
  char *names[MAX_SECTIONS];
  size_t n = 0;
  const unsigned char *p = data, *end = data + size;
  while (p < end && n < MAX_SECTIONS) {
    const unsigned char *rec_end = p;
    while (rec_end + 1 < end && !(rec_end[0] == '\n' && rec_end[1] == 0x1e))
      rec_end++;
    if (rec_end + 1 >= end)
      rec_end = end;
    const unsigned char *nl = memchr(p, '\n', (size_t)(rec_end - p));
    if (nl) {
      names[n] = strndup((const char *)p, (size_t)(nl - p));
      s[n] = (tgc_rt_section){names[n], nl + 1, (size_t)(rec_end - nl - 1)};
      n++;
    }
    p = rec_end + 2;
  }
  tgc_rt_program *prog = NULL;
  tgc_rt_err err;
  if (tgc_rt_program_read(s, n, "fuzz.tgc", &prog, &err) == 0) {
    if (!prog)
      fail("a load succeeded without a program", "");
    if (tgc_rt_program_check(prog, &err) != 0)
      fail("a loaded program fails the check", err.msg);
    tgc_rt_sections out;
    if (tgc_rt_program_sections(prog, &out, &err) != 0)
      fail("a loaded program does not store again", err.msg);
    tgc_rt_program *again = NULL;
    if (tgc_rt_program_read(out.v, out.n, "fuzz.tgc", &again, &err) != 0)
      fail("a stored program does not read back", err.msg);
    tgc_rt_sections out2;
    if (tgc_rt_program_sections(again, &out2, &err) != 0)
      fail("a program read back does not store again", err.msg);
    if (out.v[0].size != out2.v[0].size || memcmp(out.v[0].data, out2.v[0].data, out.v[0].size) != 0)
      fail("a program changes in a second round trip", "");
    tgc_rt_sections_free(&out2);
    tgc_rt_sections_free(&out);
    tgc_rt_program_free(again);
    tgc_rt_program_free(prog);
  } else if (strncmp(err.msg, "fuzz.tgc: ", 10) != 0) {
    fail("an error message does not start with the file name", err.msg);
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  return 0;
}

/* The unit tests' assertion macros: each check counts as passed or failed and a failure prints its file:line
 * and expression; a test program ends with CHECK_EXIT(), which prints "N passed, N failed". */
#ifndef TGC_TEST_CHECK_H
#define TGC_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (cond) {                                                                                    \
      passed++;                                                                                    \
    } else {                                                                                       \
      failed++;                                                                                    \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                     \
    }                                                                                              \
  } while (0)

/* Compares two strings and prints both on a mismatch. */
#define CHECK_STR(actual, expected)                                                                \
  do {                                                                                             \
    const char *a_ = (actual), *e_ = (expected);                                                   \
    if (a_ && e_ && strcmp(a_, e_) == 0) {                                                         \
      passed++;                                                                                    \
    } else {                                                                                       \
      failed++;                                                                                    \
      fprintf(stderr, "%s:%d: check failed: %s == %s\n  actual:\n\"%s\"\n  expected:\n\"%s\"\n",   \
              __FILE__, __LINE__, #actual, #expected, a_ ? a_ : "(null)", e_ ? e_ : "(null)");     \
    }                                                                                              \
  } while (0)

/* Checks that a message contains a substring, printing the message when it does not. */
#define CHECK_HAS(msg, sub)                                                                        \
  do {                                                                                             \
    const char *m_ = (msg), *s_ = (sub);                                                           \
    if (strstr(m_, s_)) {                                                                          \
      passed++;                                                                                    \
    } else {                                                                                       \
      failed++;                                                                                    \
      fprintf(stderr, "%s:%d: check failed: message lacks \"%s\"\n  message: \"%s\"\n", __FILE__,  \
              __LINE__, s_, m_);                                                                   \
    }                                                                                              \
  } while (0)

#define CHECK_EXIT()                                                                               \
  (printf("%d passed, %d failed\n", passed, failed), failed ? 1 : 0)

#endif

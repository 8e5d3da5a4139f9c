/* Unit tests of the memory planner's stored form and its reuse (runtime/memplan.c): best-fit placement of a
 * small program, the text round trip, every malformed plan rejected with its line, and the rule that a stored
 * plan is reused exactly when the program is the same and no buffer outgrew its slot. Brute force checks that a
 * reused plan never lets two live buffers share a byte, over random sizes no larger than planned. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "memplan.h"

/* Whether no two buffers live at the same time overlap (sizes rounded up to ALIGN, 0 bytes taking none). */
static bool disjoint(const tgc_rt_live *b, size_t n, size_t align, size_t arena) {
  for (size_t i = 0; i < n; i++) {
    size_t si = (b[i].bytes + align - 1) & ~(align - 1);
    if (b[i].offset + si > arena)
      return false;
    for (size_t j = i + 1; j < n; j++) {
      size_t sj = (b[j].bytes + align - 1) & ~(align - 1);
      bool live = b[i].first <= b[j].last && b[j].first <= b[i].last;
      if (live && si && sj && b[i].offset < b[j].offset + sj && b[j].offset < b[i].offset + si)
        return false;
    }
  }
  return true;
}

static void test_round_trip(void) {
  /* a chain a -> b -> c -> d where b also feeds d: b lives over steps 1..3 */
  tgc_rt_live b[4] = {{1000, 0, 1, 0}, {300, 1, 3, 0}, {500, 2, 3, 0}, {200, 3, 4, 0}};
  size_t arena = tgc_rt_plan_memory(b, 4, 4, 256);
  CHECK(disjoint(b, 4, 256, arena));
  CHECK(arena == 1024 + 512);
  tgc_rt_memplan p = {0};
  p.nsyms = 2;
  p.sym_names[0] = strdup("B");
  p.sym_sizes[0] = 8;
  p.sym_names[1] = strdup("S");
  p.sym_sizes[1] = 512;
  p.placed = true;
  p.align = 256;
  p.arena = arena;
  p.n = 4;
  p.b = malloc(sizeof b);
  memcpy(p.b, b, sizeof b);
  tgc_strbuf t;
  tgc_sb_init(&t);
  tgc_rt_memplan_format(&p, &t);
  char why[256] = "";
  tgc_rt_memplan q;
  CHECK(tgc_rt_memplan_parse(t.data, t.len, &q, why, sizeof why) == 0);
  CHECK(q.placed && q.nsyms == 2 && strcmp(q.sym_names[1], "S") == 0 && q.sym_sizes[1] == 512);
  CHECK(q.n == 4 && q.arena == arena && q.align == 256);
  for (size_t i = 0; i < 4; i++)
    CHECK(q.b[i].first == b[i].first && q.b[i].last == b[i].last && q.b[i].bytes == b[i].bytes &&
          q.b[i].offset == b[i].offset);
  tgc_strbuf t2;
  tgc_sb_init(&t2);
  tgc_rt_memplan_format(&q, &t2);
  CHECK_STR(t2.data, t.data);

  /* reuse: the same sizes give the stored offsets and arena */
  tgc_rt_live now[4];
  memcpy(now, b, sizeof b);
  for (size_t i = 0; i < 4; i++)
    now[i].offset = 12345;
  size_t top = 0;
  CHECK(tgc_rt_memplan_reuse(&q, now, 4, &top, why, sizeof why) == 0);
  CHECK(top == arena);
  for (size_t i = 0; i < 4; i++)
    CHECK(now[i].offset == b[i].offset);
  /* smaller sizes: same offsets, a smaller arena when the top buffer shrank */
  now[2].bytes = 10;
  now[1].bytes = 0;
  CHECK(tgc_rt_memplan_reuse(&q, now, 4, &top, why, sizeof why) == 0);
  CHECK(top <= arena && disjoint(now, 4, 256, top));
  /* one byte more than planned: refused, naming the buffer */
  now[2].bytes = 501;
  CHECK(tgc_rt_memplan_reuse(&q, now, 4, &top, why, sizeof why) != 0);
  CHECK_HAS(why, "buffer 2 needs 501 bytes, more than the 500");
  now[2].bytes = 500;
  /* another program: a different live range or count */
  now[3].first = 2;
  CHECK(tgc_rt_memplan_reuse(&q, now, 4, &top, why, sizeof why) != 0);
  CHECK_HAS(why, "buffer 3 lives over steps 3..4 in it, 2..4 in the program");
  now[3].first = 3;
  CHECK(tgc_rt_memplan_reuse(&q, now, 3, &top, why, sizeof why) != 0);
  CHECK_HAS(why, "it has 4 buffers, the program 3");
  tgc_rt_memplan_free(&q);

  /* not placed: live ranges only, never reused */
  p.placed = false;
  tgc_sb_free(&t);
  tgc_sb_init(&t);
  tgc_rt_memplan_format(&p, &t);
  CHECK_HAS(t.data, "arena -\nbuffers 4\n0 1 - -\n");
  CHECK(tgc_rt_memplan_parse(t.data, t.len, &q, why, sizeof why) == 0);
  CHECK(!q.placed && q.n == 4 && q.b[1].last == 3);
  CHECK(tgc_rt_memplan_reuse(&q, now, 4, &top, why, sizeof why) != 0);
  CHECK_HAS(why, "without sizes");
  tgc_rt_memplan_free(&q);
  tgc_rt_memplan_free(&p);
  tgc_sb_free(&t);
  tgc_sb_free(&t2);
}

static void expect_bad(const char *text, const char *msg) {
  tgc_rt_memplan q;
  char why[256] = "";
  int rc = tgc_rt_memplan_parse(text, strlen(text), &q, why, sizeof why);
  CHECK(rc != 0);
  CHECK_HAS(why, msg);
  CHECK(q.b == NULL && q.nsyms == 0); /* nothing left to free */
}

static void test_malformed(void) {
  const char *head = "tgc-memplan 1\nalign 256\ndims B=2\narena 1024\nbuffers 2\n";
  char buf[512];
  expect_bad("", "line 1: expected 'tgc-memplan 1'");
  expect_bad("tgc-memplan 2\n", "line 1");
  expect_bad("tgc-memplan 1\nalign 100\n", "line 2: expected 'align N' with N a power of two");
  expect_bad("tgc-memplan 1\nalign 256\ndimsB=2\n", "line 3");
  expect_bad("tgc-memplan 1\nalign 256\ndims B=-2\n", "line 3: bad symbol size 'B=-2'");
  expect_bad("tgc-memplan 1\nalign 256\ndims =2\n", "line 3: bad symbol size '=2'");
  expect_bad("tgc-memplan 1\nalign 256\ndims B=2\narena x\n", "line 4: bad arena size 'x'");
  expect_bad("tgc-memplan 1\nalign 256\ndims B=2\narena 1024\nbuffers\n", "line 5: expected 'buffers N'");
  expect_bad("tgc-memplan 1\nalign 256\ndims B=2\narena 1024\nbuffers 99999999999999\n", "line 5");
  snprintf(buf, sizeof buf, "%s0 1 256 0\n", head);
  expect_bad(buf, "line 7: the plan ends after 1 of its 2 buffers");
  snprintf(buf, sizeof buf, "%s0 1 256 0\n1 0 256 256\n", head);
  expect_bad(buf, "line 7: bad live range 1..0");
  snprintf(buf, sizeof buf, "%s0 1 256 0\n1 2 256 1024\n", head);
  expect_bad(buf, "line 7: the buffer does not lie inside the arena of 1024 bytes");
  snprintf(buf, sizeof buf, "%s0 1 256 0\n1 2 256 100\n", head);
  expect_bad(buf, "line 7: the buffer does not lie inside the arena");
  snprintf(buf, sizeof buf, "%s0 1 256 0\n1 2 - -\n", head);
  expect_bad(buf, "line 7: bytes and offset are '-' exactly when the arena is");
  snprintf(buf, sizeof buf, "%s0 1 256 0\n1 2 256 256 9\n", head);
  expect_bad(buf, "line 7: expected 'FIRST LAST BYTES OFFSET'");
  snprintf(buf, sizeof buf, "%s0 1 256 0\n1 2 256 256\nextra\n", head);
  expect_bad(buf, "line 8: text after the last buffer");
  snprintf(buf, sizeof buf, "%s0 1 256 0\n1 2 +5 256\n", head);
  expect_bad(buf, "line 7: bad number '+5'");
  /* the well-formed version of the same plan parses */
  snprintf(buf, sizeof buf, "%s0 1 256 0\n1 2 256 256\n", head);
  tgc_rt_memplan q;
  char why[256];
  CHECK(tgc_rt_memplan_parse(buf, strlen(buf), &q, why, sizeof why) == 0);
  tgc_rt_memplan_free(&q);
}

/* Random programs planned at their largest sizes, then run at random smaller sizes through the stored plan:
 * live buffers never overlap, and any buffer grown past its slot is refused. */
static void test_reuse_random(void) {
  srand(7);
  int bad = 0, refused = 0;
  for (int trial = 0; trial < 500; trial++) {
    size_t n = 1 + (size_t)(rand() % 12);
    int nsteps = 1 + rand() % 10;
    tgc_rt_live big[12], now[12];
    for (size_t i = 0; i < n; i++) {
      int a = rand() % (nsteps + 1), b = rand() % (nsteps + 1);
      big[i] = (tgc_rt_live){(size_t)(rand() % 5000), a < b ? a : b, a < b ? b : a, 0};
    }
    tgc_rt_memplan p = {0};
    p.placed = true;
    p.align = 256;
    p.n = n;
    p.b = big;
    p.arena = tgc_rt_plan_memory(big, n, nsteps, 256);
    bad += !disjoint(big, n, 256, p.arena);
    for (size_t i = 0; i < n; i++)
      now[i] = (tgc_rt_live){big[i].bytes ? (size_t)rand() % (big[i].bytes + 1) : 0, big[i].first, big[i].last, 0};
    size_t top;
    char why[256];
    if (tgc_rt_memplan_reuse(&p, now, n, &top, why, sizeof why) != 0 || !disjoint(now, n, 256, top) ||
        top > p.arena)
      bad++;
    now[0].bytes = big[0].bytes + 1;
    refused += tgc_rt_memplan_reuse(&p, now, n, &top, why, sizeof why) != 0;
  }
  CHECK(bad == 0);
  CHECK(refused == 500);
}

int main(void) {
  test_round_trip();
  test_malformed();
  test_reuse_random();
  return CHECK_EXIT();
}

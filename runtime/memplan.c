/* Best-fit arena placement (see memplan.h). */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "memplan.h"

typedef struct {
  size_t off, size;
} hole;

size_t tgc_rt_plan_memory(tgc_rt_live *b, size_t n, int nsteps, size_t align) {
  hole *holes = tgc_xcalloc(n * 2 + 2, sizeof *holes);
  size_t nh = 0, top = 0;
  for (int s = 0; s <= nsteps; s++) {
    /* the buffers written at this step take the smallest hole they fit in, else grow the arena */
    for (size_t i = 0; i < n; i++) {
      if (b[i].first != s)
        continue;
      size_t need = (b[i].bytes + align - 1) & ~(align - 1);
      if (!need)
        need = align;
      size_t best = nh;
      for (size_t h = 0; h < nh; h++)
        if (holes[h].size >= need && (best == nh || holes[h].size < holes[best].size))
          best = h;
      if (best < nh) {
        b[i].offset = holes[best].off;
        holes[best].off += need;
        holes[best].size -= need;
      } else {
        b[i].offset = top;
        top += need;
      }
    }
    /* then the buffers last read at this step are freed (not before: a step may not write over its inputs),
     * merging neighbouring holes so that freed space can hold larger buffers later */
    for (size_t i = 0; i < n; i++) {
      if (b[i].last != s)
        continue;
      size_t size = (b[i].bytes + align - 1) & ~(align - 1);
      holes[nh++] = (hole){b[i].offset, size ? size : align};
      for (int merged = 1; merged;) {
        merged = 0;
        for (size_t x = 0; x < nh && !merged; x++)
          for (size_t y = 0; y < nh && !merged; y++)
            if (x != y && holes[x].off + holes[x].size == holes[y].off) {
              holes[x].size += holes[y].size;
              holes[y] = holes[--nh];
              merged = 1;
            }
      }
    }
  }
  free(holes);
  return top;
}

/* ---- the stored form ---- */

void tgc_rt_memplan_format(const tgc_rt_memplan *p, tgc_strbuf *out) {
  tgc_sb_printf(out, "tgc-memplan 1\nalign %zu\ndims", p->align);
  for (uint32_t i = 0; i < p->nsyms; i++)
    tgc_sb_printf(out, " %s=%lld", p->sym_names[i], (long long)p->sym_sizes[i]);
  if (p->placed)
    tgc_sb_printf(out, "\narena %zu\nbuffers %zu\n", p->arena, p->n);
  else
    tgc_sb_printf(out, "\narena -\nbuffers %zu\n", p->n);
  for (size_t i = 0; i < p->n; i++) {
    if (p->placed)
      tgc_sb_printf(out, "%d %d %zu %zu\n", p->b[i].first, p->b[i].last, p->b[i].bytes, p->b[i].offset);
    else
      tgc_sb_printf(out, "%d %d - -\n", p->b[i].first, p->b[i].last);
  }
}

void tgc_rt_memplan_free(tgc_rt_memplan *p) {
  for (uint32_t i = 0; i < p->nsyms; i++)
    free(p->sym_names[i]);
  free(p->b);
  memset(p, 0, sizeof *p);
}

/* A line of the plan as a NUL-terminated copy (at most 4095 bytes); NULL at the end. */
static const char *next_line(const char **s, const char *end, char *buf, size_t cap) {
  if (*s >= end)
    return NULL;
  const char *nl = memchr(*s, '\n', (size_t)(end - *s));
  size_t n = (size_t)((nl ? nl : end) - *s);
  if (n >= cap)
    n = cap - 1;
  memcpy(buf, *s, n);
  buf[n] = 0;
  *s = nl ? nl + 1 : end;
  return buf;
}

/* An unsigned decimal number filling all of S (no sign, no spaces). */
static bool parse_size(const char *s, unsigned long long *v) {
  if (!isdigit((unsigned char)*s))
    return false;
  char *end;
  errno = 0;
  *v = strtoull(s, &end, 10);
  return errno == 0 && *end == 0;
}

int tgc_rt_memplan_parse(const char *text, size_t len, tgc_rt_memplan *p, char *why, size_t why_len) {
  memset(p, 0, sizeof *p);
  const char *s = text, *end = text + len;
  char buf[4096];
  int lineno = 0;
  unsigned long long v;
  const char *l;
#define BAD(...)                                                                                                 \
  do {                                                                                                           \
    snprintf(why, why_len, __VA_ARGS__);                                                                         \
    tgc_rt_memplan_free(p);                                                                                      \
    return -1;                                                                                                   \
  } while (0)
  lineno++;
  if (!(l = next_line(&s, end, buf, sizeof buf)) || strcmp(l, "tgc-memplan 1") != 0)
    BAD("line 1: expected 'tgc-memplan 1'");
  lineno++;
  if (!(l = next_line(&s, end, buf, sizeof buf)) || strncmp(l, "align ", 6) != 0 || !parse_size(l + 6, &v) || !v ||
      (v & (v - 1)))
    BAD("line 2: expected 'align N' with N a power of two");
  p->align = (size_t)v;
  lineno++;
  if (!(l = next_line(&s, end, buf, sizeof buf)) || strncmp(l, "dims", 4) != 0 || (l[4] && l[4] != ' '))
    BAD("line 3: expected 'dims SYM=N ...'");
  for (char *tok = strtok(buf + 4, " "); tok; tok = strtok(NULL, " ")) {
    char *eq = strchr(tok, '=');
    if (!eq || eq == tok || !parse_size(eq + 1, &v) || v > INT64_MAX || p->nsyms == TGC_RT_MEMPLAN_MAX_SYMS)
      BAD("line 3: bad symbol size '%s' (expected SYM=N)", tok);
    p->sym_names[p->nsyms] = strndup(tok, (size_t)(eq - tok));
    p->sym_sizes[p->nsyms++] = (int64_t)v;
  }
  lineno++;
  if (!(l = next_line(&s, end, buf, sizeof buf)) || strncmp(l, "arena ", 6) != 0)
    BAD("line 4: expected 'arena N' or 'arena -'");
  p->placed = strcmp(l + 6, "-") != 0;
  if (p->placed) {
    if (!parse_size(l + 6, &v))
      BAD("line 4: bad arena size '%s'", l + 6);
    p->arena = (size_t)v;
  }
  lineno++;
  if (!(l = next_line(&s, end, buf, sizeof buf)) || strncmp(l, "buffers ", 8) != 0 || !parse_size(l + 8, &v) ||
      v > len)
    BAD("line 5: expected 'buffers N'");
  p->n = (size_t)v;
  p->b = tgc_xcalloc(p->n + 1, sizeof *p->b);
  for (size_t i = 0; i < p->n; i++) {
    lineno++;
    if (!(l = next_line(&s, end, buf, sizeof buf)))
      BAD("line %d: the plan ends after %zu of its %zu buffers", lineno, i, p->n);
    char f[4][32];
    char extra;
    if (sscanf(l, "%31s %31s %31s %31s %c", f[0], f[1], f[2], f[3], &extra) != 4)
      BAD("line %d: expected 'FIRST LAST BYTES OFFSET'", lineno);
    unsigned long long x[4] = {0, 0, 0, 0};
    for (int j = 0; j < 4; j++) {
      bool dash = strcmp(f[j], "-") == 0;
      if (j >= 2 && dash != !p->placed)
        BAD("line %d: bytes and offset are '-' exactly when the arena is", lineno);
      if (!dash && !parse_size(f[j], &x[j]))
        BAD("line %d: bad number '%s'", lineno, f[j]);
    }
    if (x[0] > INT32_MAX || x[1] > INT32_MAX || x[0] > x[1])
      BAD("line %d: bad live range %s..%s", lineno, f[0], f[1]);
    if (p->placed && (x[2] > p->arena || x[3] > p->arena - x[2] || x[3] % p->align))
      BAD("line %d: the buffer does not lie inside the arena of %zu bytes at an aligned offset", lineno, p->arena);
    p->b[i] = (tgc_rt_live){(size_t)x[2], (int)x[0], (int)x[1], (size_t)x[3]};
  }
  if (s < end)
    BAD("line %d: text after the last buffer", lineno + 1);
#undef BAD
  return 0;
}

int tgc_rt_memplan_reuse(const tgc_rt_memplan *p, tgc_rt_live *b, size_t n, size_t *arena, char *why,
                         size_t why_len) {
  if (!p->placed) {
    snprintf(why, why_len, "it was made without sizes for the symbols");
    return -1;
  }
  if (p->n != n) {
    snprintf(why, why_len, "it has %zu buffers, the program %zu", p->n, n);
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if (p->b[i].first != b[i].first || p->b[i].last != b[i].last) {
      snprintf(why, why_len, "buffer %zu lives over steps %d..%d in it, %d..%d in the program", i, p->b[i].first,
               p->b[i].last, b[i].first, b[i].last);
      return -1;
    }
  size_t top = 0;
  for (size_t i = 0; i < n; i++) {
    if (b[i].bytes > p->b[i].bytes) {
      snprintf(why, why_len, "buffer %zu needs %zu bytes, more than the %zu it was planned for", i, b[i].bytes,
               p->b[i].bytes);
      return -1;
    }
    size_t need = (b[i].bytes + p->align - 1) & ~(p->align - 1);
    if (p->b[i].offset + need > top)
      top = p->b[i].offset + need;
  }
  for (size_t i = 0; i < n; i++)
    b[i].offset = p->b[i].offset;
  *arena = top;
  return 0;
}

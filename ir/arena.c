/* The checked allocator, the bump arena, string buffers, the string map and edit distance. */
#include "arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tgc_fatal(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "tgc: internal error at %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  abort();
}

static TGC_NORETURN void oom(size_t n) {
  fprintf(stderr, "tgc: fatal: out of memory allocating %zu bytes\n", n);
  abort();
}

void *tgc_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p)
    oom(n);
  return p;
}

void *tgc_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p)
    oom(n * size);
  return p;
}

void *tgc_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q)
    oom(n);
  return q;
}

/* ---- arena ---- */

struct tgc_arena_chunk {
  tgc_arena_chunk *next;
  size_t size;
  _Alignas(16) char data[];
};

enum { ARENA_CHUNK = 64 * 1024 };

void tgc_arena_init(tgc_arena *a) { memset(a, 0, sizeof *a); }

void tgc_arena_free(tgc_arena *a) {
  tgc_arena_chunk *c = a->chunks;
  while (c) {
    tgc_arena_chunk *next = c->next;
    free(c);
    c = next;
  }
  memset(a, 0, sizeof *a);
}

void *tgc_arena_alloc(tgc_arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (n == 0)
    n = 16;
  if ((size_t)(a->end - a->cur) < n || !a->cur) {
    size_t size = n > ARENA_CHUNK / 4 ? n : ARENA_CHUNK;
    tgc_arena_chunk *c = tgc_xmalloc(sizeof *c + size);
    c->size = size;
    if (size == n && a->chunks) {
      /* A big allocation gets its own chunk behind the current one, keeping the current free space. */
      c->next = a->chunks->next;
      a->chunks->next = c;
      a->total += size;
      memset(c->data, 0, n);
      return c->data;
    }
    c->next = a->chunks;
    a->chunks = c;
    a->cur = c->data;
    a->end = c->data + size;
    a->total += size;
  }
  void *p = a->cur;
  a->cur += n;
  memset(p, 0, n);
  return p;
}

char *tgc_arena_strndup(tgc_arena *a, const char *s, size_t n) {
  char *p = tgc_arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

void *tgc_arena_grow(tgc_arena *a, void *old, size_t old_cap, size_t new_cap, size_t elem) {
  void *p = tgc_arena_alloc(a, new_cap * elem);
  if (old && old_cap)
    memcpy(p, old, old_cap * elem);
  return p;
}

/* ---- string buffer ---- */

void tgc_sb_init(tgc_strbuf *b) { memset(b, 0, sizeof *b); }

void tgc_sb_free(tgc_strbuf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

static void sb_reserve(tgc_strbuf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1)
    cap *= 2;
  b->data = tgc_xrealloc(b->data, cap);
  b->cap = cap;
}

void tgc_sb_putn(tgc_strbuf *b, const char *s, size_t n) {
  sb_reserve(b, n);
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = 0;
}

void tgc_sb_puts(tgc_strbuf *b, const char *s) { tgc_sb_putn(b, s, strlen(s)); }

void tgc_sb_putc(tgc_strbuf *b, char c) {
  sb_reserve(b, 1);
  b->data[b->len++] = c;
  b->data[b->len] = 0;
}

void tgc_sb_vprintf(tgc_strbuf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return;
  sb_reserve(b, (size_t)n);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void tgc_sb_printf(tgc_strbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tgc_sb_vprintf(b, fmt, ap);
  va_end(ap);
}

/* ---- string map (FNV-1a, linear probing) ---- */

struct tgc_strmap_slot {
  const char *key;
  size_t len;
  uint64_t hash;
  void *value;
};

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ull;
  }
  return h;
}

void tgc_strmap_init(tgc_strmap *m, tgc_arena *arena) {
  memset(m, 0, sizeof *m);
  m->arena = arena;
}

void tgc_strmap_free(tgc_strmap *m) {
  free(m->slots);
  m->slots = NULL;
  m->cap = m->count = 0;
}

static struct tgc_strmap_slot *find_slot(struct tgc_strmap_slot *slots, size_t cap, const char *key, size_t len,
                                         uint64_t h) {
  size_t i = h & (cap - 1);
  for (;;) {
    struct tgc_strmap_slot *s = &slots[i];
    if (!s->key || (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0))
      return s;
    i = (i + 1) & (cap - 1);
  }
}

void *tgc_strmap_get(const tgc_strmap *m, const char *key, size_t len) {
  if (!m->cap)
    return NULL;
  struct tgc_strmap_slot *s = find_slot(m->slots, m->cap, key, len, hash_bytes(key, len));
  return s->key ? s->value : NULL;
}

const char *tgc_strmap_put(tgc_strmap *m, const char *key, size_t len, void *value) {
  if ((m->count + 1) * 2 > m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 16;
    struct tgc_strmap_slot *slots = tgc_xcalloc(cap, sizeof *slots);
    for (size_t i = 0; i < m->cap; i++)
      if (m->slots[i].key)
        *find_slot(slots, cap, m->slots[i].key, m->slots[i].len, m->slots[i].hash) = m->slots[i];
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
  }
  uint64_t h = hash_bytes(key, len);
  struct tgc_strmap_slot *s = find_slot(m->slots, m->cap, key, len, h);
  if (!s->key) {
    s->key = tgc_arena_strndup(m->arena, key, len);
    s->len = len;
    s->hash = h;
    m->count++;
  }
  s->value = value;
  return s->key;
}

size_t tgc_edit_distance(const char *a, const char *b, size_t max) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > lb + max || lb > la + max)
    return max + 1;
  if (lb > 64)
    return max + 1;
  size_t row[65];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0], best = i;
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      size_t v = diag + cost;
      if (up + 1 < v)
        v = up + 1;
      if (row[j - 1] + 1 < v)
        v = row[j - 1] + 1;
      row[j] = v;
      diag = up;
      if (v < best)
        best = v;
    }
    if (best > max)
      return max + 1;
  }
  return row[lb] > max ? max + 1 : row[lb];
}

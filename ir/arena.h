/* Memory and small containers shared by all of tgc: the checked allocator, the bump arena that owns a
 * module's objects, a growable string buffer and a string-keyed hash map. */
#ifndef TGC_ARENA_H
#define TGC_ARENA_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define TGC_NORETURN __attribute__((noreturn))
#define TGC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TGC_NORETURN
#define TGC_PRINTF(f, a)
#endif

/* Internal invariant violations (bugs in tgc, never user errors). */
TGC_NORETURN void tgc_fatal(const char *file, int line, const char *fmt, ...) TGC_PRINTF(3, 4);
#define TGC_ASSERT(c)                                                                                        \
  do {                                                                                                       \
    if (!(c))                                                                                                \
      tgc_fatal(__FILE__, __LINE__, "assertion failed: %s", #c);                                             \
  } while (0)
#define tgc_unreachable() tgc_fatal(__FILE__, __LINE__, "unreachable")

/* The checked allocator: out of memory is fatal. */
void *tgc_xmalloc(size_t n);
void *tgc_xcalloc(size_t n, size_t size);
void *tgc_xrealloc(void *p, size_t n);

/* A bump arena: allocations are freed all at once by tgc_arena_free. */
typedef struct tgc_arena_chunk tgc_arena_chunk;
typedef struct tgc_arena {
  tgc_arena_chunk *chunks;
  char *cur, *end;
  size_t total;
} tgc_arena;

void tgc_arena_init(tgc_arena *a);
void tgc_arena_free(tgc_arena *a);
void *tgc_arena_alloc(tgc_arena *a, size_t n);  /* zeroed, 16-byte aligned */
char *tgc_arena_strndup(tgc_arena *a, const char *s, size_t n);
/* Grows an arena array: returns a copy with room for NEW_CAP elements. */
void *tgc_arena_grow(tgc_arena *a, void *old, size_t old_cap, size_t new_cap, size_t elem);

/* A growable, NUL-terminated byte buffer on the heap. */
typedef struct tgc_strbuf {
  char *data;
  size_t len, cap;
} tgc_strbuf;

void tgc_sb_init(tgc_strbuf *b);
void tgc_sb_free(tgc_strbuf *b);
void tgc_sb_putn(tgc_strbuf *b, const char *s, size_t n);
void tgc_sb_puts(tgc_strbuf *b, const char *s);
void tgc_sb_putc(tgc_strbuf *b, char c);
void tgc_sb_printf(tgc_strbuf *b, const char *fmt, ...) TGC_PRINTF(2, 3);
void tgc_sb_vprintf(tgc_strbuf *b, const char *fmt, va_list ap);

/* An open-addressing map from byte strings to pointers; keys are copied into ARENA. */
typedef struct tgc_strmap {
  struct tgc_strmap_slot *slots;
  size_t cap, count;
  tgc_arena *arena;
} tgc_strmap;

void tgc_strmap_init(tgc_strmap *m, tgc_arena *arena);
void tgc_strmap_free(tgc_strmap *m);
void *tgc_strmap_get(const tgc_strmap *m, const char *key, size_t len);
/* Inserts or replaces; returns the arena copy of the key. */
const char *tgc_strmap_put(tgc_strmap *m, const char *key, size_t len, void *value);

/* Levenshtein distance, capped at MAX+1 (for "did you mean" suggestions). */
size_t tgc_edit_distance(const char *a, const char *b, size_t max);

#endif

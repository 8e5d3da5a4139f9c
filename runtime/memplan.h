/* Liveness-based memory planning: buffers with sizes and live ranges (in step order) placed in one arena by
 * greedy best fit; a buffer's space is reused once its last reader has run. Shared by the CUDA executor, the
 * artifact writer and the plan-memory pass.
 *
 * A plan can be stored (the artifact's "plan" section) as text:
 *
 *   tgc-memplan 1
 *   align 256
 *   dims B=8 S=512          the symbol sizes it was made at ("dims" alone: none, a static module)
 *   arena 4718592           the arena's size at those sizes ("arena -": offsets not planned)
 *   buffers 3
 *   0 2 1048576 0           per temporary, in the program's order: first step, last step, bytes, offset
 *   1 3 2097152 1048576     (bytes and offset are '-' when not planned)
 *   ...
 *
 * Offsets planned at some sizes stay valid at any sizes where every buffer is no larger than it was planned:
 * buffers live at the same time keep disjoint slots. tgc_rt_memplan_reuse checks exactly that. */
#ifndef TGC_RT_MEMPLAN_H
#define TGC_RT_MEMPLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

typedef struct tgc_rt_live {
  size_t bytes;
  int first, last; /* the step that writes it, the last step that reads it (first <= last) */
  size_t offset;   /* out: its place in the arena */
} tgc_rt_live;

/* Places the N buffers (sizes rounded up to ALIGN, a power of two) and returns the arena's size; steps run
 * from 0 to NSTEPS. */
size_t tgc_rt_plan_memory(tgc_rt_live *b, size_t n, int nsteps, size_t align);

#define TGC_RT_MEMPLAN_MAX_SYMS 64

typedef struct tgc_rt_memplan {
  uint32_t nsyms;
  char *sym_names[TGC_RT_MEMPLAN_MAX_SYMS];
  int64_t sym_sizes[TGC_RT_MEMPLAN_MAX_SYMS];
  bool placed; /* bytes, offsets and arena are known */
  size_t align, arena;
  size_t n;
  tgc_rt_live *b;
} tgc_rt_memplan;

/* Appends P's text form to OUT. */
void tgc_rt_memplan_format(const tgc_rt_memplan *p, tgc_strbuf *out);
/* Parses LEN bytes of text into *P (the caller frees it with tgc_rt_memplan_free); on a malformed plan returns
 * -1 with a message naming the line in WHY (WHY_LEN bytes). */
int tgc_rt_memplan_parse(const char *text, size_t len, tgc_rt_memplan *p, char *why, size_t why_len);
void tgc_rt_memplan_free(tgc_rt_memplan *p);
/* Whether stored plan P can place the N buffers of B (the same program: the same live ranges; their sizes now
 * in B[i].bytes): when it can, copies its offsets into B, sets *ARENA to the arena's size for the current sizes
 * and returns 0; otherwise returns -1 and says why in WHY (not planned, made for another program, or the first
 * buffer larger than its slot). */
int tgc_rt_memplan_reuse(const tgc_rt_memplan *p, tgc_rt_live *b, size_t n, size_t *arena, char *why,
                         size_t why_len);

#endif

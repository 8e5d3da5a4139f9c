/* Liveness-based memory planning: buffers with sizes and live ranges (in step order) placed in one arena by
 * greedy best fit; a buffer's space is reused once its last reader has run. Shared by the CUDA executor and
 * the plan-memory pass. */
#ifndef TGC_RT_MEMPLAN_H
#define TGC_RT_MEMPLAN_H

#include <stddef.h>

typedef struct tgc_rt_live {
  size_t bytes;
  int first, last; /* the step that writes it, the last step that reads it (first <= last) */
  size_t offset;   /* out: its place in the arena */
} tgc_rt_live;

/* Places the N buffers (sizes rounded up to ALIGN, a power of two) and returns the arena's size; steps run
 * from 0 to NSTEPS. */
size_t tgc_rt_plan_memory(tgc_rt_live *b, size_t n, int nsteps, size_t align);

#endif

/* Python's slice of one dim, shared by the type rules, the passes, the CPU backend and the CUDA emitter
 * (plain data: no IR here), so that they agree on every bound, the int64 extremes included. */
#ifndef TGC_SLICE_H
#define TGC_SLICE_H

#include <stdint.h>

/* x[start:end:step] along a dim of size DIM >= 0, STEP >= 1: negative bounds count from the end, both clamp
 * to [0, DIM]. Sets *FIRST to the first index taken (0..DIM) and *LEN to the number of elements. No
 * intermediate overflows: a start of INT64_MIN, an end of INT64_MAX and a step of INT64_MAX are exact. */
static inline void tgc_slice_range(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *first,
                                   int64_t *len) {
  start = start < 0 ? (start < -dim ? 0 : start + dim) : (start > dim ? dim : start);
  end = end < 0 ? (end < -dim ? 0 : end + dim) : (end > dim ? dim : end);
  *first = start;
  /* end - start is in [1, DIM] when positive, so (span - 1) / step + 1 never overflows */
  *len = end > start ? (end - start - 1) / step + 1 : 0;
}

#endif

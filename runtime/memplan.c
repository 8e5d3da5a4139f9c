/* Best-fit arena placement (see memplan.h). */
#include "memplan.h"

#include <stdlib.h>

#include "arena.h"

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

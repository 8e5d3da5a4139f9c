/* A parallel loop for the compiler's own CPU work (a pass's search over independent blocks). */
#ifndef TGC_PARALLEL_H
#define TGC_PARALLEL_H

#include <stdint.h>

/* FN(CTX, i) for every i in [0, N), on up to tgc_threads() threads (the caller's among them) that take CHUNK
 * indices at a time. FN must write only what index i owns; combining the results in index order afterwards makes
 * them independent of the threads and of their number. */
void tgc_parallel_for(uint64_t n, uint64_t chunk, void (*fn)(void *ctx, uint64_t i), void *ctx);

/* The threads tgc_parallel_for uses: TGC_THREADS from the environment when it is a number from 1 to 256 (1: the
 * calling thread alone), else the online CPUs, at most 64. */
int tgc_threads(void);

#endif

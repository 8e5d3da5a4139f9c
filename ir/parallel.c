/* tgc_parallel_for: pthreads taking chunks of the index range from an atomic counter. */
#define _POSIX_C_SOURCE 200809L
#include "parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

int tgc_threads(void) {
  const char *env = getenv("TGC_THREADS");
  if (env && *env) {
    char *end;
    long v = strtol(env, &end, 10);
    if (!*end && v >= 1 && v <= 256)
      return (int)v;
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  return cpus < 1 ? 1 : cpus > 64 ? 64 : (int)cpus;
}

typedef struct {
  atomic_uint_fast64_t next;
  uint64_t n, chunk;
  void (*fn)(void *ctx, uint64_t i);
  void *ctx;
} loop;

static void *worker(void *arg) {
  loop *l = arg;
  for (;;) {
    uint64_t i0 = atomic_fetch_add(&l->next, l->chunk);
    if (i0 >= l->n)
      return NULL;
    uint64_t i1 = l->n - i0 < l->chunk ? l->n : i0 + l->chunk;
    for (uint64_t i = i0; i < i1; i++)
      l->fn(l->ctx, i);
  }
}

void tgc_parallel_for(uint64_t n, uint64_t chunk, void (*fn)(void *ctx, uint64_t i), void *ctx) {
  loop l;
  atomic_init(&l.next, 0);
  l.n = n;
  l.chunk = chunk ? chunk : 1;
  l.fn = fn;
  l.ctx = ctx;
  uint64_t chunks = (n + l.chunk - 1) / l.chunk;
  int want = tgc_threads();
  uint64_t extra = chunks < (uint64_t)want ? chunks : (uint64_t)want; /* threads besides the caller: extra - 1 */
  pthread_t th[255];
  int started = 0;
  while ((uint64_t)started + 1 < extra && pthread_create(&th[started], NULL, worker, &l) == 0)
    started++;
  worker(&l); /* the caller works too; if no thread could start, it does everything */
  for (int t = 0; t < started; t++)
    pthread_join(th[t], NULL);
}

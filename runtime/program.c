/* Programs (runtime/program.h): their memory. */
#include <stdlib.h>

#include "program.h"

tgc_rt_program *tgc_rt_program_new(void) {
  tgc_rt_program *p = tgc_xcalloc(1, sizeof *p);
  tgc_arena_init(&p->arena);
  return p;
}

void tgc_rt_program_free(tgc_rt_program *p) {
  if (!p)
    return;
  tgc_arena_free(&p->arena);
  free(p);
}

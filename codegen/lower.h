/* Lowering of IR functions to runtime execution plans. */
#ifndef TGC_LOWER_H
#define TGC_LOWER_H

#include "ir.h"
#include "plan.h"

/* Lowers verified function F of module M; the plan is allocated in M's arena and lives as long as M. */
const tgc_rt_plan *tgc_lower_func(tgc_module *m, const tgc_func *f);
/* The same into arena A; every string the plan holds is copied into A, so the plan outlives M. */
const tgc_rt_plan *tgc_lower_func_into(tgc_arena *a, tgc_module *m, const tgc_func *f);

#endif

/* Lowering of IR functions to runtime execution plans. */
#ifndef TGC_LOWER_H
#define TGC_LOWER_H

#include "ir.h"
#include "plan.h"

/* Lowers verified function F of module M; the plan is allocated in M's arena and lives as long as M. */
const tgc_rt_plan *tgc_lower_func(tgc_module *m, const tgc_func *f);

#endif

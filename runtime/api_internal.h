/* What the two halves of the public C API (include/tgc/tgc.h) share: runtime/api.c (libtgc_rt) makes error
 * objects and program handles; codegen/compile.c (libtgc) hands it the programs it compiles. */
#ifndef TGC_RT_API_INTERNAL_H
#define TGC_RT_API_INTERNAL_H

#include "program.h"
#include "tgc/tgc.h"

/* Stores a new error with MSG (the whole message; its location is parsed from the first "FILE:LINE:COL: error:"
 * line) in *ERR when ERR is not NULL; returns -1. */
int tgc_rt_api_error(tgc_error **err, const char *msg);
int tgc_rt_api_errorf(tgc_error **err, const char *fmt, ...) TGC_RT_PRINTF(2, 3);

/* A program handle that owns RT (freed with it, also on failure). ORIGIN is the file the program was compiled
 * from or loaded from: its weights reference is resolved against ORIGIN's directory. */
int tgc_rt_api_program_new(tgc_rt_program *rt, const char *origin, tgc_program **out, tgc_error **err);

#endif

/* The .tir frontend: parse a module from text. */
#ifndef TGC_FRONTEND_H
#define TGC_FRONTEND_H

#include "../ir/ir.h"

/* Parses TEXT (LEN bytes, need not be NUL-terminated) as the contents of FILE. Reports every problem through
 * DIAG and returns NULL when there was any error; otherwise the caller owns the returned module
 * (tgc_module_destroy). Never aborts on bad input. */
tgc_module *tgc_parse_module(const char *file, const char *text, size_t len, tgc_diag *diag);

#endif

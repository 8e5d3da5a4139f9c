/* The diagnostics engine: counts errors and prints clang-style `file:line:col: error: message` with the
 * source line and a caret. Library code reports user errors only through it. */
#ifndef TGC_DIAG_H
#define TGC_DIAG_H

#include <stdint.h>
#include <stdio.h>

#include "arena.h"

/* A source location; file is a stable string owned by the diag engine or a module. line/col are 1-based;
 * line 0 means "no location". */
typedef struct tgc_loc {
  const char *file;
  uint32_t line, col;
} tgc_loc;

typedef enum { TGC_DIAG_ERROR, TGC_DIAG_WARNING, TGC_DIAG_NOTE, TGC_DIAG_REMARK } tgc_diag_level;

typedef struct tgc_diag_source {
  const char *file;
  const char *text;
  size_t len;
  struct tgc_diag_source *next;
} tgc_diag_source;

typedef struct tgc_diag {
  FILE *out;
  int nerrors, nwarnings;
  int max_errors;      /* stop reporting (and ask callers to stop) after this many; 0 = no limit */
  int limit_reached;   /* the "too many errors" note was printed */
  tgc_diag_source *sources; /* registered buffers, for printing source lines */
} tgc_diag;

void tgc_diag_init(tgc_diag *d, FILE *out);
void tgc_diag_free(tgc_diag *d);
/* Registers TEXT (not copied; must outlive D) as the contents of FILE for source-line display. */
void tgc_diag_add_source(tgc_diag *d, const char *file, const char *text, size_t len);
void tgc_diag_report(tgc_diag *d, tgc_diag_level level, tgc_loc loc, const char *fmt, ...) TGC_PRINTF(4, 5);
void tgc_diag_vreport(tgc_diag *d, tgc_diag_level level, tgc_loc loc, const char *fmt, va_list ap);
#define tgc_error(d, loc, ...) tgc_diag_report((d), TGC_DIAG_ERROR, (loc), __VA_ARGS__)
#define tgc_note(d, loc, ...) tgc_diag_report((d), TGC_DIAG_NOTE, (loc), __VA_ARGS__)
#define tgc_warning(d, loc, ...) tgc_diag_report((d), TGC_DIAG_WARNING, (loc), __VA_ARGS__)
/* True once the error limit was hit: callers should stop early. */
int tgc_diag_should_stop(const tgc_diag *d);

#endif

/* Clang-style diagnostics: location, level, message, then the source line and a caret under the column. */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void tgc_diag_init(tgc_diag *d, FILE *out) {
  memset(d, 0, sizeof *d);
  d->out = out;
  d->max_errors = 20;
}

void tgc_diag_free(tgc_diag *d) {
  tgc_diag_source *s = d->sources;
  while (s) {
    tgc_diag_source *n = s->next;
    free((char *)s->file);
    free(s);
    s = n;
  }
  d->sources = NULL;
}

void tgc_diag_add_source(tgc_diag *d, const char *file, const char *text, size_t len) {
  tgc_diag_source *s = tgc_xmalloc(sizeof *s);
  size_t n = strlen(file);
  char *copy = tgc_xmalloc(n + 1);
  memcpy(copy, file, n + 1);
  s->file = copy;
  s->text = text;
  s->len = len;
  s->next = d->sources;
  d->sources = s;
}

int tgc_diag_should_stop(const tgc_diag *d) { return d->max_errors > 0 && d->nerrors >= d->max_errors; }

static const tgc_diag_source *find_source(const tgc_diag *d, const char *file) {
  for (const tgc_diag_source *s = d->sources; s; s = s->next)
    if (file && strcmp(s->file, file) == 0)
      return s;
  return NULL;
}

/* Prints the source line of LOC and a caret. Very long lines are shown as a window around the column so a
 * 10 MB line does not flood the terminal; non-printable bytes are shown as spaces so the caret lines up. */
static void print_source_line(const tgc_diag *d, tgc_loc loc) {
  const tgc_diag_source *s = find_source(d, loc.file);
  if (!s || loc.line == 0)
    return;
  const char *p = s->text, *end = s->text + s->len;
  for (uint32_t line = 1; line < loc.line && p < end; line++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
      return;
    p = nl + 1;
  }
  const char *eol = memchr(p, '\n', (size_t)(end - p));
  if (!eol)
    eol = end;
  size_t linelen = (size_t)(eol - p);
  size_t col = loc.col ? loc.col - 1 : 0;
  if (col > linelen)
    col = linelen;
  enum { WINDOW = 100 };
  size_t from = 0, to = linelen;
  if (linelen > WINDOW) {
    from = col > WINDOW / 2 ? col - WINDOW / 2 : 0;
    to = from + WINDOW < linelen ? from + WINDOW : linelen;
  }
  tgc_strbuf b;
  tgc_sb_init(&b);
  if (from > 0)
    tgc_sb_puts(&b, "...");
  for (size_t i = from; i < to; i++) {
    unsigned char c = (unsigned char)p[i];
    tgc_sb_putc(&b, (c == '\t' || (c >= 32 && c < 127)) ? (char)c : ' ');
  }
  if (to < linelen)
    tgc_sb_puts(&b, "...");
  tgc_sb_putc(&b, '\n');
  if (from > 0)
    tgc_sb_puts(&b, "   ");
  for (size_t i = from; i < col; i++)
    tgc_sb_putc(&b, p[i] == '\t' ? '\t' : ' ');
  tgc_sb_puts(&b, "^\n");
  fputs(b.data, d->out);
  tgc_sb_free(&b);
}

void tgc_diag_vreport(tgc_diag *d, tgc_diag_level level, tgc_loc loc, const char *fmt, va_list ap) {
  static const char *const names[] = {"error", "warning", "note", "remark"};
  if (level == TGC_DIAG_ERROR) {
    if (tgc_diag_should_stop(d)) {
      d->nerrors++;
      return;
    }
    d->nerrors++;
  } else if (level == TGC_DIAG_WARNING) {
    d->nwarnings++;
  } else if (level == TGC_DIAG_NOTE && d->limit_reached) {
    return;
  }
  tgc_strbuf b;
  tgc_sb_init(&b);
  if (loc.file && loc.line)
    tgc_sb_printf(&b, "%s:%u:%u: ", loc.file, loc.line, loc.col);
  else if (loc.file)
    tgc_sb_printf(&b, "%s: ", loc.file);
  else
    tgc_sb_puts(&b, "tgc: ");
  tgc_sb_printf(&b, "%s: ", names[level]);
  tgc_sb_vprintf(&b, fmt, ap);
  tgc_sb_putc(&b, '\n');
  fputs(b.data, d->out);
  tgc_sb_free(&b);
  if (loc.file && loc.line)
    print_source_line(d, loc);
  /* Callers stop at the limit (tgc_diag_should_stop), so say so as soon as it is reached. */
  if (level == TGC_DIAG_ERROR && tgc_diag_should_stop(d) && !d->limit_reached) {
    d->limit_reached = 1;
    fprintf(d->out, "tgc: fatal error: too many errors emitted, stopping now\n");
  }
}

void tgc_diag_report(tgc_diag *d, tgc_diag_level level, tgc_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tgc_diag_vreport(d, level, loc, fmt, ap);
  va_end(ap);
}

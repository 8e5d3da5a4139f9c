/* State shared by the .tir lexer and parser (one per parse; no globals). */
#ifndef TGC_PARSE_CTX_H
#define TGC_PARSE_CTX_H

#include "../ir/ir.h"

typedef struct tgc_scope tgc_scope;

typedef struct tgc_parse_ctx {
  tgc_module *module;
  tgc_arena *arena; /* the module's arena: parse-time lists live as long as the module */
  tgc_diag *diag;
  const char *file;
  void *scanner;
  uint32_t line, col;
  int in_bad_run;
  tgc_strbuf strbuf; /* string literal being scanned */
  struct {
    int first_line, first_column, last_line, last_column;
  } str_start;

  /* name scopes: the innermost is the block being filled */
  tgc_scope *scope;
  tgc_func *func;

  /* the last token returned, for messages and error recovery */
  int last_tok, prev_tok;
  uint32_t last_line, last_col, prev_end_line, prev_end_col, last_end_line, last_end_col;
  char last_text[48];
  int depth, depth_before_last;
  /* error recovery: skip tokens until a new line at or above this brace depth */
  bool skipping, skip_to_close;
  int region_header_depth; /* brace depth inside a region whose header is being parsed; 0 otherwise */
  tgc_block error_region;  /* stands for a region whose header had a syntax error */
  uint32_t skip_line;
  int skip_depth;
  int syntax_errors;
  /* indexes that keep huge inputs linear: functions and meshes by name, and (dictionary, name) pairs of
   * attribute dictionaries with more than a few entries */
  tgc_strmap funcs, meshes, attr_index;
} tgc_parse_ctx;

void tgc_parse_error(tgc_parse_ctx *ctx, tgc_loc loc, const char *fmt, ...) TGC_PRINTF(3, 4);
int tgc_lex_keyword(const char *s, size_t len, tgc_dtype *dt);
int tgc_lex_init(tgc_parse_ctx *ctx, const char *text, size_t len);
void tgc_lex_destroy(tgc_parse_ctx *ctx);

#endif

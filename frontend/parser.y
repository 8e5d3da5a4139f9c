/* The .tir parser: a pure, reentrant bison grammar that builds the IR directly. Names are resolved as they
 * are parsed (SSA: a value is defined before it is used); syntax errors are reported with the expected tokens
 * and parsing resumes at the next line of the same nesting depth, so one run reports several errors.
 * The grammar is documented in docs/ir.md. */
%code requires {
#include "parse_ctx.h"

typedef struct tgc_plist {
  uint32_t n, cap;
  void **items;
  tgc_loc *locs;
} tgc_plist;

typedef struct tgc_parg {
  const char *name;
  const tgc_type *type;
  tgc_loc loc;
} tgc_parg;
}

%code provides {
int tgc_lex_raw(TGC_YYSTYPE *lval, TGC_YYLTYPE *lloc, void *scanner);
void tgc_lex_advance(tgc_parse_ctx *ctx, TGC_YYLTYPE *l, const char *text, size_t len);
}

%code {
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

#define YYMAXDEPTH 3000

struct tgc_scope {
  tgc_strmap names; /* value name -> tgc_value* */
  tgc_block *block;
  tgc_scope *parent;
};

static int tgc_yylex(TGC_YYSTYPE *lval, TGC_YYLTYPE *lloc, tgc_parse_ctx *ctx);
static void tgc_yyerror(TGC_YYLTYPE *lloc, tgc_parse_ctx *ctx, const char *msg);

#define LOC(l) mkloc(ctx, &(l))
static tgc_loc mkloc(tgc_parse_ctx *ctx, const TGC_YYLTYPE *l) {
  tgc_loc loc = {ctx->file, (uint32_t)l->first_line, (uint32_t)l->first_column};
  return loc;
}

static tgc_plist *plist_new(tgc_parse_ctx *ctx) { return tgc_arena_alloc(ctx->arena, sizeof(tgc_plist)); }
static tgc_plist *plist_push(tgc_parse_ctx *ctx, tgc_plist *l, void *item, tgc_loc loc) {
  if (!l)
    l = plist_new(ctx);
  if (l->n == l->cap) {
    uint32_t cap = l->cap ? l->cap * 2 : 4;
    l->items = tgc_arena_grow(ctx->arena, l->items, l->cap, cap, sizeof *l->items);
    l->locs = tgc_arena_grow(ctx->arena, l->locs, l->cap, cap, sizeof *l->locs);
    l->cap = cap;
  }
  l->items[l->n] = item;
  l->locs[l->n] = loc;
  l->n++;
  return l;
}

static void scope_push(tgc_parse_ctx *ctx, tgc_block *b);
static void scope_pop(tgc_parse_ctx *ctx);
static void define_value(tgc_parse_ctx *ctx, const char *name, tgc_value *v, tgc_loc loc);
static tgc_value *use_value(tgc_parse_ctx *ctx, const char *name, tgc_loc loc);
static const tgc_dim *dim_arith(tgc_parse_ctx *ctx, char op, const tgc_dim *a, const tgc_dim *b, tgc_loc loc);
static tgc_plist *attr_add(tgc_parse_ctx *ctx, tgc_plist *l, const char *name, const tgc_attr *v, tgc_loc loc);
static void attrs_fill(tgc_parse_ctx *ctx, tgc_attrs *d, const tgc_plist *l);
static void begin_func(tgc_parse_ctx *ctx, const char *name, tgc_loc loc, tgc_plist *args, tgc_plist *results);
static void end_func(tgc_parse_ctx *ctx);
static tgc_block *begin_region(tgc_parse_ctx *ctx, tgc_plist *args, tgc_loc loc);
static void finish_op(tgc_parse_ctx *ctx, tgc_plist *results, const char *opname, tgc_loc oploc,
                      tgc_plist *operands, tgc_plist *attrs, tgc_plist *types, tgc_loc typesloc,
                      tgc_block *region, tgc_loc regionloc);
static void finish_terminator(tgc_parse_ctx *ctx, tgc_opcode opc, tgc_plist *operands, tgc_loc loc);
static void add_mesh(tgc_parse_ctx *ctx, const char *name, tgc_loc loc, tgc_plist *axes);
static const tgc_attr *int_attr(tgc_parse_ctx *ctx, uint64_t u, bool neg, tgc_loc loc);
static const char *clip(char buf[80], const char *s);
}

%define api.pure full
%define api.prefix {tgc_yy}
%define api.token.prefix {TOK_}
%define parse.error custom
%define parse.lac full
%locations
%param {tgc_parse_ctx *ctx}
%expect 2 /* "return %a" vs a statement starting "%a =" after a bare "return": shifting is right */

%union {
  struct { const char *s; size_t len; } str;
  uint64_t u;
  double f;
  tgc_dtype dt;
  const tgc_dim *dim;
  const tgc_type *type;
  const tgc_attr *attr;
  tgc_plist *list;
  tgc_parg *arg;
  tgc_block *block;
}

%token END 0 "end of file"
%token MODULE "'module'" FUNC "'func'" MESH "'mesh'" RETURN "'return'" YIELD "'yield'"
%token TRUE "'true'" FALSE "'false'" ARROW "'->'" REGION_OPEN "'{ ^'"
%token <str> ID "identifier" VALUE_ID "value name" SYM_ID "symbol name" STRING "string"
%token <u> INT "integer"
%token <f> FLOAT "number"
%token <dt> DTYPE "dtype"

%type <dim> sum prod atom dim
%type <type> type
%type <list> dim_list type_list types types_opt result_types func_args func_args_opt
%type <list> operands operands_opt results value_names attr_list op_attr_list attrs_opt value_list
%type <list> mesh_axes region_args region_args_opt
%type <arg> func_arg region_arg mesh_axis
%type <attr> value
%type <str> attr_name
%type <block> region region_opt

%%

/* file := module */
file
  : module
  ;

/* module := 'module' '@'ID attrs? '{' (mesh | func)* '}' */
module
  : MODULE SYM_ID '{' { ctx->module->name = tgc_module_strdup(ctx->module, $2.s, $2.len);
                        ctx->module->loc = LOC(@1); } module_rest
  ;

module_rest
  : attr_list '}' '{' module_items '}'  { attrs_fill(ctx, &ctx->module->attrs, $1); }
  | module_items '}'
  ;

module_items
  : %empty
  | module_items mesh
  | module_items func
  | module_items error
  ;

/* mesh := 'mesh' '@'ID '=' '[' ID '=' INT (',' ID '=' INT)* ']' */
mesh
  : MESH SYM_ID '=' '[' mesh_axes ']'   { add_mesh(ctx, tgc_module_strdup(ctx->module, $2.s, $2.len), LOC(@2), $5); }
  ;

mesh_axes
  : mesh_axis                 { $$ = plist_push(ctx, NULL, $1, $1->loc); }
  | mesh_axes ',' mesh_axis   { $$ = plist_push(ctx, $1, $3, $3->loc); }
  ;

mesh_axis
  : ID '=' INT  {
      $$ = tgc_arena_alloc(ctx->arena, sizeof *$$);
      $$->name = $1.s;
      $$->loc = LOC(@1);
      if ($3 == 0 || $3 > INT32_MAX) {
        char cb[80];
        tgc_parse_error(ctx, LOC(@3), "mesh axis '%s' must have a size between 1 and %d", clip(cb, $1.s), INT32_MAX);
        $$->type = (const tgc_type *)(uintptr_t)1;
      } else {
        $$->type = (const tgc_type *)(uintptr_t)$3; /* the size rides in the type slot */
      }
    }
  ;

/* func := 'func' '@'ID '(' (arg (',' arg)*)? ')' '->' types attrs? '{' stmt* '}' */
func
  : FUNC SYM_ID '(' func_args_opt ')' ARROW result_types '{'
        { begin_func(ctx, tgc_module_strdup(ctx->module, $2.s, $2.len), LOC(@2), $4, $7); }
    func_rest
  ;

func_rest
  : attr_list '}' '{' stmts '}'  { if (ctx->func) attrs_fill(ctx, &ctx->func->attrs, $1); end_func(ctx); }
  | stmts '}'                    { end_func(ctx); }
  ;

func_args_opt
  : %empty     { $$ = NULL; }
  | func_args
  ;

func_args
  : func_arg                { $$ = plist_push(ctx, NULL, $1, $1->loc); }
  | func_args ',' func_arg  { $$ = plist_push(ctx, $1, $3, $3->loc); }
  ;

func_arg
  : VALUE_ID ':' type  {
      $$ = tgc_arena_alloc(ctx->arena, sizeof *$$);
      $$->name = $1.s; $$->type = $3; $$->loc = LOC(@1);
    }
  ;

result_types
  : type                { $$ = plist_push(ctx, NULL, (void *)$1, LOC(@1)); }
  | '(' ')'             { $$ = NULL; }
  | '(' type_list ')'   { $$ = $2; }
  ;

stmts
  : %empty
  | stmts stmt
  | stmts error
  ;

/* stmt := results '=' ID '(' operands? ')' attrs? (':' types)? region? | 'return' operands | 'yield' operands */
stmt
  : results '=' ID '(' operands_opt ')' attrs_opt types_opt region_opt  {
      finish_op(ctx, $1, $3.s, LOC(@3), $5, $7, $8, LOC(@8), $9, LOC(@9));
    }
  | RETURN operands_opt  { finish_terminator(ctx, TGC_OP_RETURN, $2, LOC(@1)); }
  | YIELD operands_opt   { finish_terminator(ctx, TGC_OP_YIELD, $2, LOC(@1)); }
  ;

/* results := '%'ID | '(' '%'ID (',' '%'ID)* ')' */
results
  : VALUE_ID              { $$ = plist_push(ctx, NULL, (void *)$1.s, LOC(@1)); }
  | '(' value_names ')'   { $$ = $2; }
  ;

value_names
  : VALUE_ID                  { $$ = plist_push(ctx, NULL, (void *)$1.s, LOC(@1)); }
  | value_names ',' VALUE_ID  { $$ = plist_push(ctx, $1, (void *)$3.s, LOC(@3)); }
  ;

operands_opt
  : %empty    { $$ = NULL; }
  | operands
  ;

operands
  : VALUE_ID               { $$ = plist_push(ctx, NULL, use_value(ctx, $1.s, LOC(@1)), LOC(@1)); }
  | operands ',' VALUE_ID  { $$ = plist_push(ctx, $1, use_value(ctx, $3.s, LOC(@3)), LOC(@3)); }
  ;

attrs_opt
  : %empty             { $$ = NULL; }
  | '{' '}'            { $$ = NULL; }
  | '{' op_attr_list '}'  { $$ = $2; }
  ;

/* attrs := '{' (ID '=' value (',' ID '=' value)*)? '}' */
attr_list
  : ID '=' value                 { $$ = attr_add(ctx, NULL, $1.s, $3, LOC(@1)); }
  | attr_list ',' ID '=' value   { $$ = attr_add(ctx, $1, $3.s, $5, LOC(@3)); }
  ;

/* An op's attributes may also be named by keywords ({mesh = @m}); a module's or function's may not, since
 * there a keyword starts the body. */
op_attr_list
  : attr_name '=' value                    { $$ = attr_add(ctx, NULL, $1.s, $3, LOC(@1)); }
  | op_attr_list ',' attr_name '=' value   { $$ = attr_add(ctx, $1, $3.s, $5, LOC(@3)); }
  ;

attr_name
  : ID
  | MESH    { $$.s = "mesh"; $$.len = 4; }
  | FUNC    { $$.s = "func"; $$.len = 4; }
  | MODULE  { $$.s = "module"; $$.len = 6; }
  | RETURN  { $$.s = "return"; $$.len = 6; }
  | YIELD   { $$.s = "yield"; $$.len = 5; }
  ;

/* value := INT | FLOAT | STRING | 'true' | 'false' | DTYPE | '@'ID | '[' (value (',' value)*)? ']' */
value
  : INT           { $$ = int_attr(ctx, $1, false, LOC(@1)); }
  | '-' INT       { $$ = int_attr(ctx, $2, true, LOC(@1)); }
  | FLOAT         { $$ = tgc_attr_float(ctx->arena, $1); }
  | '-' FLOAT     { $$ = tgc_attr_float(ctx->arena, -$2); }
  | ID            {
      if (strcmp($1.s, "inf") == 0)
        $$ = tgc_attr_float(ctx->arena, INFINITY);
      else if (strcmp($1.s, "nan") == 0)
        $$ = tgc_attr_float(ctx->arena, NAN);
      else {
        char cb[80];
        tgc_parse_error(ctx, LOC(@1), "unexpected identifier '%s' in an attribute value; strings are quoted",
                        clip(cb, $1.s));
        $$ = tgc_attr_int(ctx->arena, 0);
      }
    }
  | '-' ID        {
      if (strcmp($2.s, "inf") != 0)
        tgc_parse_error(ctx, LOC(@2), "expected a number after '-'");
      $$ = tgc_attr_float(ctx->arena, -INFINITY);
    }
  | STRING        { $$ = tgc_attr_str(ctx->arena, $1.s, $1.len); }
  | TRUE          { $$ = tgc_attr_bool(ctx->arena, true); }
  | FALSE         { $$ = tgc_attr_bool(ctx->arena, false); }
  | DTYPE         { $$ = tgc_attr_dtype(ctx->arena, $1); }
  | SYM_ID        { $$ = tgc_attr_symref(ctx->arena, $1.s); }
  | '[' ']'       { $$ = tgc_attr_list(ctx->arena, NULL, 0); }
  | '[' value_list ']'  { $$ = tgc_attr_list(ctx->arena, (const tgc_attr *const *)$2->items, $2->n); }
  ;

value_list
  : value                 { $$ = plist_push(ctx, NULL, (void *)$1, LOC(@1)); }
  | value_list ',' value  { $$ = plist_push(ctx, $1, (void *)$3, LOC(@3)); }
  ;

types_opt
  : %empty     { $$ = NULL; }
  | ':' types  { $$ = $2; }
  ;

/* types := type | '(' type (',' type)* ')' */
types
  : type               { $$ = plist_push(ctx, NULL, (void *)$1, LOC(@1)); }
  | '(' type_list ')'  { $$ = $2; }
  ;

type_list
  : type                { $$ = plist_push(ctx, NULL, (void *)$1, LOC(@1)); }
  | type_list ',' type  { $$ = plist_push(ctx, $1, (void *)$3, LOC(@3)); }
  ;

/* type := DTYPE '[' (dim (',' dim)*)? ']' */
type
  : DTYPE '[' ']'           { $$ = tgc_type_create(ctx->arena, $1, 0, NULL); }
  | DTYPE '[' dim_list ']'  { $$ = tgc_type_create(ctx->arena, $1, $3->n, (const tgc_dim *const *)$3->items); }
  ;

dim_list
  : dim               { $$ = plist_push(ctx, NULL, (void *)$1, LOC(@1)); }
  | dim_list ',' dim  { $$ = plist_push(ctx, $1, (void *)$3, LOC(@3)); }
  ;

dim
  : sum  {
      int64_t v;
      $$ = $1;
      if (tgc_dim_is_const($1, &v) && v < 0) {
        tgc_parse_error(ctx, LOC(@1), "dimension evaluates to %lld; dimensions must not be negative", (long long)v);
        $$ = tgc_dim_const(ctx->arena, 0);
      }
    }
  ;

/* dim := sum;  sum := prod (('+'|'-') prod)*;  prod := atom ('*' atom)*;  atom := INT | ID | '(' sum ')' */
sum
  : prod
  | '-' prod      { $$ = dim_arith(ctx, '-', tgc_dim_const(ctx->arena, 0), $2, LOC(@1)); }
  | sum '+' prod  { $$ = dim_arith(ctx, '+', $1, $3, LOC(@2)); }
  | sum '-' prod  { $$ = dim_arith(ctx, '-', $1, $3, LOC(@2)); }
  ;

prod
  : atom
  | prod '*' atom  { $$ = dim_arith(ctx, '*', $1, $3, LOC(@2)); }
  ;

atom
  : INT  {
      if ($1 > INT64_MAX) {
        tgc_parse_error(ctx, LOC(@1), "dimension %llu does not fit in 64 bits", (unsigned long long)$1);
        $$ = tgc_dim_const(ctx->arena, 0);
      } else {
        $$ = tgc_dim_const(ctx->arena, (int64_t)$1);
      }
    }
  | ID          { $$ = tgc_dim_sym(ctx->arena, tgc_module_sym(ctx->module, $1.s, $1.len)); }
  | '(' sum ')' { $$ = $2; }
  ;

region_opt
  : %empty  { $$ = NULL; }
  | region
  ;

/* region := '{' '^' '(' (arg (',' arg)*)? ')' ':' stmt* '}'   (the last stmt is 'yield') */
region
  : REGION_OPEN '(' region_args_opt ')' ':'  { $<block>$ = begin_region(ctx, $3, LOC(@1)); }
    stmts '}'  { $$ = $<block>6; scope_pop(ctx); }
  | REGION_OPEN error '}'  { $$ = &ctx->error_region; }
  ;

region_args_opt
  : %empty  { $$ = NULL; }
  | region_args
  ;

region_args
  : region_arg                  { $$ = plist_push(ctx, NULL, $1, $1->loc); }
  | region_args ',' region_arg  { $$ = plist_push(ctx, $1, $3, $3->loc); }
  ;

region_arg
  : VALUE_ID           {
      $$ = tgc_arena_alloc(ctx->arena, sizeof *$$);
      $$->name = $1.s; $$->loc = LOC(@1);
    }
  | VALUE_ID ':' type  {
      $$ = tgc_arena_alloc(ctx->arena, sizeof *$$);
      $$->name = $1.s; $$->type = $3; $$->loc = LOC(@1);
    }
  ;

%%

/* ---- diagnostics ---- */

void tgc_parse_error(tgc_parse_ctx *ctx, tgc_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tgc_diag_vreport(ctx->diag, TGC_DIAG_ERROR, loc, fmt, ap);
  va_end(ap);
}

static void tgc_yyerror(TGC_YYLTYPE *lloc, tgc_parse_ctx *ctx, const char *msg) {
  /* Bison reports only stack exhaustion here; syntax errors go through yyreport_syntax_error. */
  if (strstr(msg, "exhausted"))
    tgc_parse_error(ctx, mkloc(ctx, lloc), "input is nested too deeply");
  else
    tgc_parse_error(ctx, mkloc(ctx, lloc), "%s", msg);
}

/* A token's name for messages: bison's quoted aliases lose their double quotes. */
static void sym_name(tgc_strbuf *b, yysymbol_kind_t k) {
  const char *n = yysymbol_name(k);
  size_t len = strlen(n);
  if (len >= 2 && n[0] == '"' && n[len - 1] == '"')
    tgc_sb_putn(b, n + 1, len - 2);
  else
    tgc_sb_puts(b, n);
}

static int yyreport_syntax_error(const yypcontext_t *yctx, tgc_parse_ctx *ctx) {
  enum { MAXEXP = 5 };
  yysymbol_kind_t expected[MAXEXP];
  int n = yypcontext_expected_tokens(yctx, expected, MAXEXP);
  yysymbol_kind_t tok = yypcontext_token(yctx);
  const TGC_YYLTYPE *l = yypcontext_location(yctx);
  tgc_loc loc = mkloc(ctx, l);
  ctx->syntax_errors++;

  tgc_strbuf msg;
  tgc_sb_init(&msg);
  tgc_strbuf found;
  tgc_sb_init(&found);
  if (tok == YYSYMBOL_YYEOF)
    tgc_sb_puts(&found, "end of file");
  else
    tgc_sb_printf(&found, "'%s'", ctx->last_text);

  /* An "expected" error whose offending token starts a later line belongs at the end of the previous token,
   * the way clang points at a missing ';'. */
  uint32_t err_line = loc.line;
  if (n > 0 && ctx->prev_tok && (uint32_t)l->first_line > ctx->prev_end_line) {
    loc.line = ctx->prev_end_line;
    loc.col = ctx->prev_end_col;
    err_line = loc.line;
  }
  if (n > 0) {
    tgc_sb_puts(&msg, "expected ");
    for (int i = 0; i < n; i++) {
      if (i)
        tgc_sb_puts(&msg, i == n - 1 ? " or " : ", ");
      sym_name(&msg, expected[i]);
    }
    tgc_sb_printf(&msg, ", found %s", found.data);
  } else {
    tgc_sb_printf(&msg, "unexpected %s", found.data);
    /* name the kind of a token whose text does not say it (an identifier, a number...) */
    if (tok == YYSYMBOL_ID || tok == YYSYMBOL_INT || tok == YYSYMBOL_FLOAT || tok == YYSYMBOL_DTYPE) {
      tgc_sb_puts(&msg, " (");
      sym_name(&msg, tok);
      tgc_sb_puts(&msg, ")");
    }
  }
  tgc_parse_error(ctx, loc, "%s", msg.data);
  tgc_sb_free(&msg);
  tgc_sb_free(&found);

  /* Recovery. In a region header, the grammar resumes at the region's closing brace: skip to it. Elsewhere,
   * skip the rest of the offending line and whatever it opened. */
  ctx->skipping = true;
  if (ctx->region_header_depth > 0) {
    ctx->skip_to_close = true;
    ctx->skip_depth = ctx->region_header_depth - 1;
    ctx->region_header_depth = 0;
    if (tok == YYSYMBOL_YYEOF || (ctx->last_tok == '}' && ctx->depth == ctx->skip_depth))
      ctx->skipping = ctx->skip_to_close = false; /* the offending token already closes it */
  } else {
    ctx->skip_to_close = false;
    ctx->skip_line = err_line;
    ctx->skip_depth = ctx->depth_before_last;
  }
  return 0;
}

/* ---- the token stream seen by the parser ---- */

int tgc_lex_keyword(const char *s, size_t len, tgc_dtype *dt) {
  static const struct {
    const char *kw;
    int tok;
  } kws[] = {{"module", TOK_MODULE}, {"func", TOK_FUNC}, {"mesh", TOK_MESH},   {"return", TOK_RETURN},
             {"yield", TOK_YIELD},   {"true", TOK_TRUE}, {"false", TOK_FALSE}};
  for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++)
    if (strlen(kws[i].kw) == len && memcmp(kws[i].kw, s, len) == 0)
      return kws[i].tok;
  if (tgc_dtype_lookup(s, len, dt))
    return TOK_DTYPE;
  return 0;
}

static int tgc_yylex(TGC_YYSTYPE *lval, TGC_YYLTYPE *lloc, tgc_parse_ctx *ctx) {
  for (;;) {
    if (tgc_diag_should_stop(ctx->diag))
      return TOK_END;
    int tok = tgc_lex_raw(lval, lloc, ctx->scanner);
    int before = ctx->depth;
    if (tok == '{' || tok == TOK_REGION_OPEN)
      ctx->depth++;
    else if (tok == '}')
      ctx->depth--;
    if (tok == TOK_REGION_OPEN)
      ctx->region_header_depth = ctx->depth;
    if (ctx->skipping && ctx->skip_to_close) {
      if (tok != TOK_END && !(tok == '}' && ctx->depth == ctx->skip_depth))
        continue;
      ctx->skipping = ctx->skip_to_close = false;
    } else if (ctx->skipping) {
      if (tok != TOK_END && ((uint32_t)lloc->first_line <= ctx->skip_line || before > ctx->skip_depth))
        continue;
      ctx->skipping = false;
    }
    ctx->prev_tok = ctx->last_tok;
    ctx->prev_end_line = ctx->last_end_line;
    ctx->prev_end_col = ctx->last_end_col;
    ctx->last_tok = tok;
    ctx->last_end_line = (uint32_t)lloc->last_line;
    ctx->last_end_col = (uint32_t)lloc->last_column;
    ctx->depth_before_last = before;
    /* A short, printable copy of the token for messages. */
    const char *text = NULL;
    size_t len = 0;
    char buf[2] = {(char)tok, 0};
    switch (tok) {
    case TOK_ID: text = lval->str.s; len = lval->str.len; break;
    case TOK_VALUE_ID: text = "%"; len = 1; break;
    case TOK_SYM_ID: text = "@"; len = 1; break;
    case TOK_STRING: text = "\""; len = 1; break;
    default: break;
    }
    if (tok == TOK_VALUE_ID || tok == TOK_SYM_ID) {
      snprintf(ctx->last_text, sizeof ctx->last_text, "%s%.*s%s", text, lval->str.len > 32 ? 32 : (int)lval->str.len,
               lval->str.s, lval->str.len > 32 ? "..." : "");
    } else if (tok == TOK_STRING) {
      snprintf(ctx->last_text, sizeof ctx->last_text, "\"%.*s%s\"", lval->str.len > 24 ? 24 : (int)lval->str.len,
               lval->str.s, lval->str.len > 24 ? "..." : "");
      for (char *c = ctx->last_text; *c; c++)
        if ((unsigned char)*c < 32 || (unsigned char)*c >= 127)
          *c = '?';
    } else if (text) {
      snprintf(ctx->last_text, sizeof ctx->last_text, "%.*s%s", len > 32 ? 32 : (int)len, text, len > 32 ? "..." : "");
    } else if (tok == TOK_INT) {
      snprintf(ctx->last_text, sizeof ctx->last_text, "%llu", (unsigned long long)lval->u);
    } else if (tok == TOK_FLOAT) {
      snprintf(ctx->last_text, sizeof ctx->last_text, "%g", lval->f);
    } else if (tok == TOK_DTYPE) {
      snprintf(ctx->last_text, sizeof ctx->last_text, "%s", tgc_dtype_name(lval->dt));
    } else if (tok < 256) {
      snprintf(ctx->last_text, sizeof ctx->last_text, "%s", buf);
    } else {
      static const struct {
        int tok;
        const char *s;
      } kw[] = {{TOK_MODULE, "module"}, {TOK_FUNC, "func"}, {TOK_MESH, "mesh"}, {TOK_RETURN, "return"},
                {TOK_YIELD, "yield"},   {TOK_TRUE, "true"}, {TOK_FALSE, "false"}, {TOK_ARROW, "->"},
                {TOK_REGION_OPEN, "{ ^"}};
      ctx->last_text[0] = 0;
      for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (kw[i].tok == tok)
          snprintf(ctx->last_text, sizeof ctx->last_text, "%s", kw[i].s);
    }
    return tok;
  }
}

/* ---- scopes and names ---- */

static void scope_push(tgc_parse_ctx *ctx, tgc_block *b) {
  tgc_scope *s = tgc_arena_alloc(ctx->arena, sizeof *s);
  tgc_strmap_init(&s->names, ctx->arena);
  s->block = b;
  s->parent = ctx->scope;
  ctx->scope = s;
}

static void scope_pop(tgc_parse_ctx *ctx) {
  tgc_scope *s = ctx->scope;
  if (!s)
    return;
  tgc_strmap_free(&s->names);
  ctx->scope = s->parent;
}

/* A user-written name for a message: long names are cut to 64 bytes and marked with "...". */
static const char *clip(char buf[80], const char *s) {
  size_t n = strlen(s);
  if (n <= 64)
    return s;
  snprintf(buf, 80, "%.64s...", s);
  return buf;
}

/* A stand-in for a value whose definition failed, so that its uses do not cascade into more errors. */
static tgc_value *poison_value(tgc_parse_ctx *ctx, const char *name, tgc_loc loc) {
  tgc_value *v = tgc_arena_alloc(ctx->arena, sizeof *v);
  v->name = name;
  v->loc = loc;
  return v;
}

static void define_value(tgc_parse_ctx *ctx, const char *name, tgc_value *v, tgc_loc loc) {
  if (!ctx->scope)
    return;
  tgc_value *prev = tgc_strmap_get(&ctx->scope->names, name, strlen(name));
  if (prev) {
    char cb[80];
    tgc_parse_error(ctx, loc, "redefinition of value '%%%s'", clip(cb, name));
    if (prev->loc.line)
      tgc_note(ctx->diag, prev->loc, "previous definition is here");
    return;
  }
  v->name = name;
  v->loc = loc;
  tgc_strmap_put(&ctx->scope->names, name, strlen(name), v);
}

static tgc_value *use_value(tgc_parse_ctx *ctx, const char *name, tgc_loc loc) {
  if (!ctx->scope)
    return poison_value(ctx, name, loc);
  tgc_value *v = tgc_strmap_get(&ctx->scope->names, name, strlen(name));
  if (v)
    return v;
  char cb[80];
  v = poison_value(ctx, name, loc);
  /* After a syntax error in this body, an undefined name is most likely the error's echo; a name the lexer
   * could not read ("<error>") was reported there. */
  if (!ctx->syntax_errors && name[0] != '<') {
    tgc_value *outer = NULL;
    for (tgc_scope *s = ctx->scope->parent; s && !outer; s = s->parent)
      outer = tgc_strmap_get(&s->names, name, strlen(name));
    if (outer) {
      tgc_parse_error(ctx, loc, "value '%%%s' is defined outside this region; regions are isolated, so pass it "
                      "as an operand", clip(cb, name));
      tgc_note(ctx->diag, outer->loc, "'%%%s' is defined here", clip(cb, name));
    } else {
      tgc_parse_error(ctx, loc, "use of undefined value '%%%s'", clip(cb, name));
    }
  }
  tgc_strmap_put(&ctx->scope->names, name, strlen(name), v);
  return v;
}

/* ---- dims and attributes ---- */

static const tgc_dim *dim_arith(tgc_parse_ctx *ctx, char op, const tgc_dim *a, const tgc_dim *b, tgc_loc loc) {
  const tgc_dim *r = NULL;
  tgc_dim_status st = op == '+'   ? tgc_dim_add(ctx->arena, a, b, &r)
                      : op == '-' ? tgc_dim_sub(ctx->arena, a, b, &r)
                                  : tgc_dim_mul(ctx->arena, a, b, &r);
  if (st == TGC_DIM_OVERFLOW) {
    tgc_parse_error(ctx, loc, "dimension expression overflows 64-bit integers");
    return tgc_dim_const(ctx->arena, 0);
  }
  if (st == TGC_DIM_TOO_BIG) {
    tgc_parse_error(ctx, loc, "dimension expression is too large (more than 64 terms or degree 16)");
    return tgc_dim_const(ctx->arena, 0);
  }
  return r;
}

static const tgc_attr *int_attr(tgc_parse_ctx *ctx, uint64_t u, bool neg, tgc_loc loc) {
  if ((!neg && u > (uint64_t)INT64_MAX) || (neg && u > (uint64_t)INT64_MAX + 1)) {
    tgc_parse_error(ctx, loc, "integer %s%llu does not fit in 64 bits", neg ? "-" : "", (unsigned long long)u);
    return tgc_attr_int(ctx->arena, 0);
  }
  int64_t v = neg ? (int64_t)(0 - u) : (int64_t)u;
  return tgc_attr_int(ctx->arena, v);
}

/* Small dictionaries are searched linearly; from ATTR_INDEX_MIN entries on, (list, name) goes in a map. */
enum { ATTR_INDEX_MIN = 8 };

static void attr_index_put(tgc_parse_ctx *ctx, tgc_plist *l, const char *name, void *a) {
  tgc_strbuf key;
  tgc_sb_init(&key);
  tgc_sb_putn(&key, (const char *)&l, sizeof l);
  tgc_sb_puts(&key, name);
  tgc_strmap_put(&ctx->attr_index, key.data, key.len, a);
  tgc_sb_free(&key);
}

static tgc_named_attr *attr_find(tgc_parse_ctx *ctx, tgc_plist *l, const char *name) {
  if (!l)
    return NULL;
  if (l->n < ATTR_INDEX_MIN) {
    for (uint32_t i = 0; i < l->n; i++)
      if (strcmp(((tgc_named_attr *)l->items[i])->name, name) == 0)
        return l->items[i];
    return NULL;
  }
  tgc_strbuf key;
  tgc_sb_init(&key);
  tgc_sb_putn(&key, (const char *)&l, sizeof l);
  tgc_sb_puts(&key, name);
  tgc_named_attr *a = tgc_strmap_get(&ctx->attr_index, key.data, key.len);
  tgc_sb_free(&key);
  return a;
}

static tgc_plist *attr_add(tgc_parse_ctx *ctx, tgc_plist *l, const char *name, const tgc_attr *v, tgc_loc loc) {
  tgc_named_attr *prev = attr_find(ctx, l, name);
  if (prev) {
    char cb[80];
    tgc_parse_error(ctx, loc, "duplicate attribute '%s'", clip(cb, name));
    tgc_note(ctx->diag, prev->loc, "first given here");
    return l;
  }
  tgc_named_attr *a = tgc_arena_alloc(ctx->arena, sizeof *a);
  a->name = name;
  a->value = v;
  a->loc = loc;
  l = plist_push(ctx, l, a, loc);
  if (l->n == ATTR_INDEX_MIN) {
    for (uint32_t i = 0; i < l->n; i++)
      attr_index_put(ctx, l, ((tgc_named_attr *)l->items[i])->name, l->items[i]);
  } else if (l->n > ATTR_INDEX_MIN) {
    attr_index_put(ctx, l, name, a);
  }
  return l;
}

static void attrs_fill(tgc_parse_ctx *ctx, tgc_attrs *d, const tgc_plist *l) {
  for (uint32_t i = 0; l && i < l->n; i++) {
    tgc_named_attr *a = l->items[i];
    tgc_attrs_append(ctx->arena, d, a->name, a->value, a->loc); /* duplicates were rejected by attr_add */
  }
}

/* ---- structure ---- */

static void add_mesh(tgc_parse_ctx *ctx, const char *name, tgc_loc loc, tgc_plist *axes) {
  tgc_mesh *prev = tgc_strmap_get(&ctx->meshes, name, strlen(name));
  if (prev) {
    char cb[80];
    tgc_parse_error(ctx, loc, "redefinition of mesh '@%s'", clip(cb, name));
    tgc_note(ctx->diag, prev->loc, "previous definition is here");
    return;
  }
  const char **names = tgc_arena_alloc(ctx->arena, sizeof *names * axes->n);
  int64_t *sizes = tgc_arena_alloc(ctx->arena, sizeof *sizes * axes->n);
  tgc_strmap seen;
  tgc_strmap_init(&seen, ctx->arena);
  for (uint32_t i = 0; i < axes->n; i++) {
    tgc_parg *a = axes->items[i];
    if (tgc_strmap_get(&seen, a->name, strlen(a->name))) {
      char cb[80], cb2[80];
      tgc_parse_error(ctx, a->loc, "duplicate axis '%s' in mesh '@%s'", clip(cb, a->name), clip(cb2, name));
      tgc_strmap_free(&seen);
      return;
    }
    tgc_strmap_put(&seen, a->name, strlen(a->name), a);
    names[i] = a->name;
    sizes[i] = (int64_t)(uintptr_t)a->type;
  }
  tgc_strmap_free(&seen);
  tgc_mesh *mesh = tgc_module_add_mesh(ctx->module, name, axes->n, names, sizes, loc);
  tgc_strmap_put(&ctx->meshes, name, strlen(name), mesh);
}

static void begin_func(tgc_parse_ctx *ctx, const char *name, tgc_loc loc, tgc_plist *args, tgc_plist *results) {
  tgc_func *prev = tgc_strmap_get(&ctx->funcs, name, strlen(name));
  if (prev) {
    char cb[80];
    tgc_parse_error(ctx, loc, "redefinition of function '@%s'", clip(cb, name));
    tgc_note(ctx->diag, prev->loc, "previous definition is here");
  }
  uint32_t nargs = args ? args->n : 0, nres = results ? results->n : 0;
  const tgc_type **types = tgc_arena_alloc(ctx->arena, sizeof *types * (nargs + 1));
  for (uint32_t i = 0; i < nargs; i++)
    types[i] = ((tgc_parg *)args->items[i])->type;
  tgc_func *f = tgc_func_create(ctx->module, name, types, NULL, nargs,
                                results ? (const tgc_type *const *)results->items : NULL, nres, loc);
  if (!prev)
    tgc_strmap_put(&ctx->funcs, name, strlen(name), f);
  ctx->func = f;
  ctx->syntax_errors = 0;
  scope_push(ctx, f->body);
  for (uint32_t i = 0; i < nargs; i++) {
    tgc_parg *a = args->items[i];
    define_value(ctx, a->name, f->body->args[i], a->loc);
  }
}

static void end_func(tgc_parse_ctx *ctx) {
  while (ctx->scope)
    scope_pop(ctx);
  ctx->func = NULL;
}

static tgc_block *begin_region(tgc_parse_ctx *ctx, tgc_plist *args, tgc_loc loc) {
  ctx->region_header_depth = 0;
  uint32_t n = args ? args->n : 0;
  const tgc_type **types = tgc_arena_alloc(ctx->arena, sizeof *types * (n + 1));
  for (uint32_t i = 0; i < n; i++)
    types[i] = ((tgc_parg *)args->items[i])->type;
  tgc_block *b = tgc_block_create(ctx->module, types, NULL, n, loc);
  b->parent_func = ctx->func;
  scope_push(ctx, b);
  for (uint32_t i = 0; i < n; i++) {
    tgc_parg *a = args->items[i];
    define_value(ctx, a->name, b->args[i], a->loc);
  }
  return b;
}

static void define_results(tgc_parse_ctx *ctx, tgc_plist *results, tgc_op *op) {
  for (uint32_t i = 0; i < results->n; i++) {
    tgc_value *v = op ? &op->results[i] : poison_value(ctx, results->items[i], results->locs[i]);
    define_value(ctx, results->items[i], v, results->locs[i]);
  }
}

static void finish_op(tgc_parse_ctx *ctx, tgc_plist *results, const char *opname, tgc_loc oploc,
                      tgc_plist *operands, tgc_plist *attrs, tgc_plist *types, tgc_loc typesloc,
                      tgc_block *region, tgc_loc regionloc) {
  tgc_opcode opc;
  if (!ctx->scope || !tgc_op_lookup(opname, strlen(opname), &opc)) {
    if (ctx->scope) {
      char cb[80];
      const char *s = tgc_op_suggest(opname);
      if (s)
        tgc_parse_error(ctx, oploc, "unknown op '%s'; did you mean '%s'?", clip(cb, opname), s);
      else
        tgc_parse_error(ctx, oploc, "unknown op '%s'", clip(cb, opname));
    }
    define_results(ctx, results, NULL);
    return;
  }
  const tgc_op_info *info = tgc_op_info_of(opc);
  if (region == &ctx->error_region) { /* its header had a syntax error, already reported */
    define_results(ctx, results, NULL);
    return;
  }
  if (types && types->n != results->n) {
    tgc_parse_error(ctx, typesloc, "%u type%s given for %u result%s", types->n, types->n == 1 ? "" : "s",
                    results->n, results->n == 1 ? "" : "s");
    define_results(ctx, results, NULL);
    return;
  }
  if (region && !(info->flags & TGC_OPF_REGION)) {
    tgc_parse_error(ctx, regionloc, "op '%s' does not take a region", opname);
    define_results(ctx, results, NULL);
    return;
  }
  if (!region && (info->flags & TGC_OPF_REGION)) {
    tgc_parse_error(ctx, oploc, "op '%s' requires a region: '{ ^(%%args): ... yield ... }'", opname);
    define_results(ctx, results, NULL);
    return;
  }
  uint32_t nops = operands ? operands->n : 0;
  tgc_op *op = tgc_op_create(ctx->module, opc, (tgc_value *const *)(operands ? operands->items : NULL), nops,
                             types ? (const tgc_type *const *)types->items : NULL, results->n, oploc);
  if (region) {
    op->region = region;
    region->parent_op = op;
  }
  attrs_fill(ctx, &op->attrs, attrs);
  tgc_block_append(ctx->scope->block, op);
  define_results(ctx, results, op);
}

static void finish_terminator(tgc_parse_ctx *ctx, tgc_opcode opc, tgc_plist *operands, tgc_loc loc) {
  if (!ctx->scope)
    return;
  uint32_t nops = operands ? operands->n : 0;
  tgc_op *op = tgc_op_create(ctx->module, opc, (tgc_value *const *)(operands ? operands->items : NULL), nops,
                             NULL, 0, loc);
  tgc_block_append(ctx->scope->block, op);
}

/* ---- entry point ---- */

tgc_module *tgc_parse_module(const char *file, const char *text, size_t len, tgc_diag *diag) {
  if (len > (size_t)INT32_MAX) {
    tgc_loc loc = {file, 0, 0};
    tgc_error(diag, loc, "input is too large (%zu bytes; the limit is 2 GiB)", len);
    return NULL;
  }
  tgc_parse_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.module = tgc_module_create("module");
  ctx.arena = &ctx.module->arena;
  ctx.diag = diag;
  ctx.file = tgc_module_strdup(ctx.module, file, strlen(file));
  tgc_strmap_init(&ctx.funcs, ctx.arena);
  tgc_strmap_init(&ctx.meshes, ctx.arena);
  tgc_strmap_init(&ctx.attr_index, ctx.arena);
  int errors_before = diag->nerrors;
  tgc_diag_add_source(diag, ctx.file, text, len);
  if (tgc_lex_init(&ctx, text, len) != 0)
    tgc_fatal(__FILE__, __LINE__, "cannot create the lexer");
  int rc = tgc_yyparse(&ctx);
  tgc_lex_destroy(&ctx);
  end_func(&ctx);
  tgc_strmap_free(&ctx.funcs);
  tgc_strmap_free(&ctx.meshes);
  tgc_strmap_free(&ctx.attr_index);
  if (rc != 0 && diag->nerrors == errors_before) {
    tgc_loc loc = {ctx.file, ctx.line, ctx.col};
    tgc_error(diag, loc, "cannot parse the module");
  }
  if (diag->nerrors != errors_before) {
    tgc_module_destroy(ctx.module);
    return NULL;
  }
  return ctx.module;
}

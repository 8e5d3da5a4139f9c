/* The .tir printer. Its output parses back to an equal module, and printing is idempotent:
 * print(parse(print(m))) == print(m). Value names are kept where they are unique within their scope (a
 * function body or an isolated region); other values get fresh numbers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct {
  tgc_strbuf *out;
  tgc_arena scratch;
} printer;

/* One naming scope: hint names reserved up front, then every value gets a unique printed name. */
typedef struct {
  tgc_strmap taken;    /* printed names in use */
  tgc_strmap reserved; /* hint names of this scope */
  tgc_strmap names;    /* value pointer -> printed name */
  unsigned next_num;
} scope;

static bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
}

static void reserve_block(scope *s, const tgc_block *b) {
  for (uint32_t i = 0; i < b->nargs; i++)
    if (b->args[i]->name)
      tgc_strmap_put(&s->reserved, b->args[i]->name, strlen(b->args[i]->name), (void *)1);
  for (const tgc_op *o = b->first; o; o = o->next)
    for (uint32_t i = 0; i < o->nresults; i++)
      if (o->results[i].name)
        tgc_strmap_put(&s->reserved, o->results[i].name, strlen(o->results[i].name), (void *)1);
}

static void scope_init(printer *p, scope *s, const tgc_block *b) {
  tgc_strmap_init(&s->taken, &p->scratch);
  tgc_strmap_init(&s->reserved, &p->scratch);
  tgc_strmap_init(&s->names, &p->scratch);
  s->next_num = 0;
  reserve_block(s, b);
}

static void scope_free(scope *s) {
  tgc_strmap_free(&s->taken);
  tgc_strmap_free(&s->reserved);
  tgc_strmap_free(&s->names);
}

static const char *assign_name(scope *s, const tgc_value *v) {
  char buf[64];
  tgc_strbuf name;
  tgc_sb_init(&name);
  if (v->name && v->name[0]) {
    for (const char *c = v->name; *c; c++)
      tgc_sb_putc(&name, is_name_char(*c) ? *c : '_');
    if (tgc_strmap_get(&s->taken, name.data, name.len)) {
      size_t base = name.len;
      for (unsigned k = 1;; k++) {
        name.len = base;
        snprintf(buf, sizeof buf, "_%u", k);
        tgc_sb_puts(&name, buf);
        if (!tgc_strmap_get(&s->taken, name.data, name.len) && !tgc_strmap_get(&s->reserved, name.data, name.len))
          break;
      }
    }
  } else {
    for (;;) {
      snprintf(buf, sizeof buf, "%u", s->next_num++);
      if (!tgc_strmap_get(&s->taken, buf, strlen(buf)) && !tgc_strmap_get(&s->reserved, buf, strlen(buf)))
        break;
    }
    tgc_sb_puts(&name, buf);
  }
  const char *key = tgc_strmap_put(&s->taken, name.data, name.len, (void *)1);
  tgc_strmap_put(&s->names, (const char *)&v, sizeof v, (void *)key);
  tgc_sb_free(&name);
  return key;
}

static void print_value(printer *p, scope *s, const tgc_value *v) {
  const char *n = v ? tgc_strmap_get(&s->names, (const char *)&v, sizeof v) : NULL;
  tgc_sb_putc(p->out, '%');
  /* A value from outside the scope cannot be named; the verifier reports it. */
  tgc_sb_puts(p->out, n ? n : "<<invalid>>");
}

static void print_float(tgc_strbuf *out, double f) {
  if (isnan(f)) {
    tgc_sb_puts(out, "nan");
    return;
  }
  if (isinf(f)) {
    tgc_sb_puts(out, f < 0 ? "-inf" : "inf");
    return;
  }
  char buf[40];
  if (f == floor(f) && fabs(f) < 1e15 && (fabs(f) >= 1e-4 || f == 0)) {
    snprintf(buf, sizeof buf, "%.1f", f); /* 100.0 rather than 1.0e+02 */
    tgc_sb_puts(out, buf);
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, f);
    if (strtod(buf, NULL) == f)
      break;
  }
  /* Always look like a float: 1.0, 1.0e-05. */
  char *e = strchr(buf, 'e');
  if (strchr(buf, '.') || strchr(buf, 'n')) {
    tgc_sb_puts(out, buf);
  } else if (e) {
    tgc_sb_putn(out, buf, (size_t)(e - buf));
    tgc_sb_puts(out, ".0");
    tgc_sb_puts(out, e);
  } else {
    tgc_sb_puts(out, buf);
    tgc_sb_puts(out, ".0");
  }
}

static void print_string(tgc_strbuf *out, const char *s, size_t len) {
  tgc_sb_putc(out, '"');
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      tgc_sb_putc(out, '\\');
      tgc_sb_putc(out, (char)c);
    } else if (c == '\n') {
      tgc_sb_puts(out, "\\n");
    } else if (c == '\t') {
      tgc_sb_puts(out, "\\t");
    } else if (c < 32 || c >= 127) {
      tgc_sb_printf(out, "\\x%02x", c);
    } else {
      tgc_sb_putc(out, (char)c);
    }
  }
  tgc_sb_putc(out, '"');
}

void tgc_attr_print(const tgc_attr *v, tgc_strbuf *out) {
  switch (v->kind) {
  case TGC_ATTR_INT:
    tgc_sb_printf(out, "%lld", (long long)v->u.i);
    return;
  case TGC_ATTR_FLOAT:
    print_float(out, v->u.f);
    return;
  case TGC_ATTR_STR:
    print_string(out, v->u.s, v->len);
    return;
  case TGC_ATTR_BOOL:
    tgc_sb_puts(out, v->u.b ? "true" : "false");
    return;
  case TGC_ATTR_DTYPE:
    tgc_sb_puts(out, tgc_dtype_name(v->u.dt));
    return;
  case TGC_ATTR_SYM:
    tgc_sb_putc(out, '@');
    tgc_sb_puts(out, v->u.s);
    return;
  case TGC_ATTR_LIST:
    tgc_sb_putc(out, '[');
    for (uint32_t i = 0; i < v->u.list.n; i++) {
      if (i)
        tgc_sb_puts(out, ", ");
      tgc_attr_print(v->u.list.items[i], out);
    }
    tgc_sb_putc(out, ']');
    return;
  }
  tgc_unreachable();
}

static void print_attrs(tgc_strbuf *out, const tgc_attrs *a) {
  if (!a->n)
    return;
  tgc_sb_puts(out, " {");
  for (uint32_t i = 0; i < a->n; i++) {
    if (i)
      tgc_sb_puts(out, ", ");
    tgc_sb_puts(out, a->items[i].name);
    tgc_sb_puts(out, " = ");
    tgc_attr_print(a->items[i].value, out);
  }
  tgc_sb_putc(out, '}');
}

static void indent(tgc_strbuf *out, int n) {
  for (int i = 0; i < n; i++)
    tgc_sb_puts(out, "  ");
}

static void print_block_body(printer *p, const tgc_block *b, int depth, scope *s);

static void print_region(printer *p, const tgc_block *b, int depth) {
  scope s;
  scope_init(p, &s, b);
  tgc_sb_puts(p->out, " {\n");
  indent(p->out, depth);
  tgc_sb_puts(p->out, "^(");
  for (uint32_t i = 0; i < b->nargs; i++) {
    if (i)
      tgc_sb_puts(p->out, ", ");
    assign_name(&s, b->args[i]);
    print_value(p, &s, b->args[i]);
    if (b->args[i]->type) {
      tgc_sb_puts(p->out, ": ");
      tgc_type_print(b->args[i]->type, p->out);
    }
  }
  tgc_sb_puts(p->out, "):\n");
  print_block_body(p, b, depth + 1, &s);
  indent(p->out, depth);
  tgc_sb_putc(p->out, '}');
  scope_free(&s);
}

static void print_op(printer *p, const tgc_op *o, int depth, scope *s) {
  tgc_strbuf *out = p->out;
  indent(out, depth);
  if (o->opcode == TGC_OP_RETURN || o->opcode == TGC_OP_YIELD) {
    tgc_sb_puts(out, tgc_op_name(o->opcode));
    for (uint32_t i = 0; i < o->noperands; i++) {
      tgc_sb_puts(out, i ? ", " : " ");
      print_value(p, s, o->operands[i].value);
    }
    tgc_sb_putc(out, '\n');
    return;
  }
  if (o->nresults != 1)
    tgc_sb_putc(out, '(');
  for (uint32_t i = 0; i < o->nresults; i++) {
    if (i)
      tgc_sb_puts(out, ", ");
    assign_name(s, &o->results[i]);
    print_value(p, s, &o->results[i]);
  }
  if (o->nresults != 1)
    tgc_sb_putc(out, ')');
  tgc_sb_puts(out, " = ");
  tgc_sb_puts(out, tgc_op_name(o->opcode));
  tgc_sb_putc(out, '(');
  for (uint32_t i = 0; i < o->noperands; i++) {
    if (i)
      tgc_sb_puts(out, ", ");
    print_value(p, s, o->operands[i].value);
  }
  tgc_sb_putc(out, ')');
  print_attrs(out, &o->attrs);
  bool all_typed = o->nresults > 0;
  for (uint32_t i = 0; i < o->nresults; i++)
    all_typed = all_typed && o->results[i].type;
  if (all_typed) {
    tgc_sb_puts(out, " : ");
    if (o->nresults != 1)
      tgc_sb_putc(out, '(');
    for (uint32_t i = 0; i < o->nresults; i++) {
      if (i)
        tgc_sb_puts(out, ", ");
      tgc_type_print(o->results[i].type, out);
    }
    if (o->nresults != 1)
      tgc_sb_putc(out, ')');
  }
  if (o->region)
    print_region(p, o->region, depth);
  tgc_sb_putc(out, '\n');
}

static void print_block_body(printer *p, const tgc_block *b, int depth, scope *s) {
  for (const tgc_op *o = b->first; o; o = o->next)
    print_op(p, o, depth, s);
}

static void print_func(printer *p, const tgc_func *f) {
  tgc_strbuf *out = p->out;
  scope s;
  scope_init(p, &s, f->body);
  tgc_sb_printf(out, "  func @%s(", f->name);
  for (uint32_t i = 0; i < f->body->nargs; i++) {
    const tgc_value *a = f->body->args[i];
    if (i)
      tgc_sb_puts(out, ", ");
    assign_name(&s, a);
    print_value(p, &s, a);
    tgc_sb_puts(out, ": ");
    if (a->type)
      tgc_type_print(a->type, out);
    else
      tgc_sb_puts(out, "<<untyped>>");
  }
  tgc_sb_puts(out, ") -> ");
  if (f->nresults != 1)
    tgc_sb_putc(out, '(');
  for (uint32_t i = 0; i < f->nresults; i++) {
    if (i)
      tgc_sb_puts(out, ", ");
    tgc_type_print(f->result_types[i], out);
  }
  if (f->nresults != 1)
    tgc_sb_putc(out, ')');
  print_attrs(out, &f->attrs);
  tgc_sb_puts(out, " {\n");
  print_block_body(p, f->body, 2, &s);
  tgc_sb_puts(out, "  }\n");
  scope_free(&s);
}

void tgc_print_module(const tgc_module *m, tgc_strbuf *out) {
  printer p = {out, {0}};
  tgc_arena_init(&p.scratch);
  tgc_sb_printf(out, "module @%s", m->name);
  print_attrs(out, &m->attrs);
  tgc_sb_puts(out, " {\n");
  for (const tgc_mesh *x = m->meshes; x; x = x->next) {
    tgc_sb_printf(out, "  mesh @%s = [", x->name);
    for (uint32_t i = 0; i < x->naxes; i++)
      tgc_sb_printf(out, "%s%s = %lld", i ? ", " : "", x->axis_names[i], (long long)x->axis_sizes[i]);
    tgc_sb_puts(out, "]\n");
  }
  for (const tgc_func *f = m->funcs; f; f = f->next) {
    if (f != m->funcs || m->meshes)
      tgc_sb_putc(out, '\n');
    print_func(&p, f);
  }
  tgc_sb_puts(out, "}\n");
  tgc_arena_free(&p.scratch);
}

/* Graphviz DOT emitter (--emit=dot): nodes for ops, clusters for fusion regions, edges for values. */
#include <string.h>

#include "dot.h"

typedef struct {
  tgc_strbuf *out;
  tgc_strbuf edges; /* written after the nodes: an edge inside a cluster would pull its nodes into it */
  tgc_arena arena;
  tgc_strmap ids; /* value pointer -> node id of the op that produces it (or the region's producer) */
  int next;
} dot;

static bool hidden(const tgc_op *op) {
  return (tgc_op_info_of(op->opcode)->flags & TGC_OPF_SOURCE) || op->opcode == TGC_OP_YIELD;
}

/* Labels hold value names, op names and types, and the "\n" line breaks DOT reads: only quotes need escaping. */
static void put_escaped(tgc_strbuf *out, const char *s) {
  for (; *s; s++) {
    if (*s == '"')
      tgc_sb_putc(out, '\\');
    tgc_sb_putc(out, *s);
  }
}

static void set_id(dot *d, const tgc_value *v, int id) {
  tgc_strmap_put(&d->ids, (const char *)&v, sizeof v, (void *)(intptr_t)(id + 1));
}

static int get_id(dot *d, const tgc_value *v) {
  return (int)(intptr_t)tgc_strmap_get(&d->ids, (const char *)&v, sizeof v) - 1;
}

static void node(dot *d, int id, const tgc_op *op, int depth) {
  tgc_strbuf label;
  tgc_sb_init(&label);
  if (op->nresults && op->results[0].name)
    tgc_sb_printf(&label, "%%%s = ", op->results[0].name);
  tgc_sb_puts(&label, tgc_op_name(op->opcode));
  if (op->nresults && op->results[0].type) {
    tgc_sb_puts(&label, "\\n");
    tgc_type_print(op->results[0].type, &label);
  }
  for (int i = 0; i < depth; i++)
    tgc_sb_puts(d->out, "  ");
  unsigned flags = tgc_op_info_of(op->opcode)->flags;
  const char *style = (flags & TGC_OPF_CONTRACTION) ? ", style=filled, fillcolor=\"#f4d6a0\""
                      : (flags & TGC_OPF_REDUCTION) ? ", style=filled, fillcolor=\"#c9e4f6\""
                      : (flags & TGC_OPF_COLLECTIVE) ? ", style=filled, fillcolor=\"#f6c9c9\""
                                                     : "";
  tgc_sb_printf(d->out, "  n%d [label=\"", id);
  put_escaped(d->out, label.data);
  tgc_sb_printf(d->out, "\"%s];\n", style);
  tgc_sb_free(&label);
}

static void edges_in(dot *d, const tgc_op *op, int id) {
  for (uint32_t k = 0; k < op->noperands; k++) {
    int from = get_id(d, op->operands[k].value);
    if (from >= 0) /* params and constants have no node */
      tgc_sb_printf(&d->edges, "  n%d -> n%d;\n", from, id);
  }
}

static void block(dot *d, const tgc_block *b, int depth);

static void op_out(dot *d, const tgc_op *op, int depth) {
  if (hidden(op))
    return;
  if (op->opcode == TGC_OP_FUSION && op->region) {
    int cluster = d->next++;
    for (int i = 0; i < depth; i++)
      tgc_sb_puts(d->out, "  ");
    tgc_sb_printf(d->out, "  subgraph cluster_%d {\n", cluster);
    for (int i = 0; i < depth; i++)
      tgc_sb_puts(d->out, "  ");
    tgc_sb_printf(d->out, "    label=\"%s\"; style=rounded; color=\"#3b7dd8\";\n",
                  tgc_op_attr_str(op, "kind", "fusion"));
    /* region arguments stand for the fusion's operands */
    for (uint32_t i = 0; i < op->region->nargs && i < op->noperands; i++) {
      int from = get_id(d, op->operands[i].value);
      if (from >= 0)
        set_id(d, op->region->args[i], from);
    }
    block(d, op->region, depth + 1);
    for (int i = 0; i < depth; i++)
      tgc_sb_puts(d->out, "  ");
    tgc_sb_puts(d->out, "  }\n");
    const tgc_op *y = op->region->last;
    for (uint32_t i = 0; y && y->opcode == TGC_OP_YIELD && i < y->noperands && i < op->nresults; i++)
      set_id(d, &op->results[i], get_id(d, y->operands[i].value));
    return;
  }
  if (op->opcode == TGC_OP_RETURN) {
    int id = d->next++;
    tgc_sb_printf(d->out, "  n%d [label=\"return\", shape=invhouse];\n", id);
    edges_in(d, op, id);
    return;
  }
  int id = d->next++;
  node(d, id, op, depth);
  edges_in(d, op, id);
  for (uint32_t i = 0; i < op->nresults; i++)
    set_id(d, &op->results[i], id);
}

static void block(dot *d, const tgc_block *b, int depth) {
  for (const tgc_op *op = b->first; op; op = op->next)
    op_out(d, op, depth);
}

void tgc_emit_dot(const tgc_module *m, tgc_strbuf *out) {
  const tgc_func *f = tgc_module_find_func(m, "main");
  if (!f)
    f = m->funcs;
  dot d = {out, {0}, {0}, {0}, 0};
  tgc_sb_init(&d.edges);
  tgc_arena_init(&d.arena);
  tgc_strmap_init(&d.ids, &d.arena);
  tgc_sb_printf(out, "digraph \"%s\" {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n",
                m->name);
  if (f) {
    for (uint32_t i = 0; i < f->body->nargs; i++) {
      const tgc_value *a = f->body->args[i];
      int id = d.next++;
      tgc_strbuf t;
      tgc_sb_init(&t);
      tgc_type_print(a->type, &t);
      tgc_sb_printf(out, "  n%d [label=\"%%%s\\n%s\", shape=house];\n", id, a->name ? a->name : "arg", t.data);
      tgc_sb_free(&t);
      set_id(&d, a, id);
    }
    block(&d, f->body, 0);
  }
  if (d.edges.len)
    tgc_sb_puts(out, d.edges.data);
  tgc_sb_puts(out, "}\n");
  tgc_sb_free(&d.edges);
  tgc_strmap_free(&d.ids);
  tgc_arena_free(&d.arena);
}

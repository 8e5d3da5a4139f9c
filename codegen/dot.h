/* Graphviz output of a module: a picture of its data flow, with fusion groups drawn as clusters. */
#ifndef TGC_DOT_H
#define TGC_DOT_H

#include "ir.h"

/* Appends the entry function of M (@main, else the first) as a DOT digraph. Params and constants are left out
 * (they would crowd the picture); every other op is a node labelled with its result name, op and type, a
 * fusion is a cluster labelled with its kind holding its region's ops, and edges follow the values. */
void tgc_emit_dot(const tgc_module *m, tgc_strbuf *out);

#endif

/* Launch counting: how many kernels (or library calls) a module's entry function would launch, one per
 * top-level op that computes. Views (reshape), params, constants and terminators launch nothing. */
#include <string.h>

#include "pass.h"

void tgc_print_launches(const tgc_module *m, tgc_strbuf *out) {
  const tgc_func *f = tgc_module_find_func(m, "main");
  if (!f)
    f = m->funcs;
  if (!f)
    return;
  /* counts per op name, and per fusion kind */
  const char *names[128];
  int counts[128], n = 0, total = 0;
  for (const tgc_op *o = f->body->first; o; o = o->next) {
    if (tgc_op_info_of(o->opcode)->flags & (TGC_OPF_VIEW | TGC_OPF_SOURCE | TGC_OPF_TERMINATOR))
      continue;
    char key[96];
    if (o->opcode == TGC_OP_FUSION)
      snprintf(key, sizeof key, "fusion:%s", tgc_op_attr_str(o, "kind", "?"));
    else
      snprintf(key, sizeof key, "%s", tgc_op_name(o->opcode));
    int i = 0;
    while (i < n && strcmp(names[i], key) != 0)
      i++;
    if (i == n && n < 128) {
      names[n] = tgc_arena_strndup((tgc_arena *)&m->arena, key, strlen(key));
      counts[n++] = 0;
    }
    if (i < n)
      counts[i]++;
    total++;
  }
  /* largest first */
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && counts[j - 1] < counts[j]; j--) {
      int c = counts[j];
      counts[j] = counts[j - 1];
      counts[j - 1] = c;
      const char *s = names[j];
      names[j] = names[j - 1];
      names[j - 1] = s;
    }
  tgc_sb_printf(out, "launches: %d in @%s:", total, f->name);
  for (int i = 0; i < n; i++)
    tgc_sb_printf(out, "%s %d %s", i ? "," : "", counts[i], names[i]);
  tgc_sb_putc(out, '\n');
}

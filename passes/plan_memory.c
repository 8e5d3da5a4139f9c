/* plan-memory: the memory plan of each function at given sizes of its symbols. Every value a top-level op
 * defines (a launch's result; reshapes share their operand's storage) lives from the op that writes it to the
 * last op that reads it (the function's results to the end); the planner (runtime/memplan.c, the one the CUDA
 * executor uses) places them in one arena by best fit. Arguments, params (weights: their own buffers) and
 * constants are not planned. The pass reports, per function, the arena's size against the sum of the values;
 * with -Rpass=plan-memory, every value's size and offset. It does not change the IR.
 *
 * Option: dims=SYM=N;SYM=N (every symbol of the function needs a size; the list is tgc_sym_sizes_parse's, and
 * inside the pass's options its items are separated by ';'). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memplan.h"
#include "pass.h"

int tgc_pass_plan_memory(tgc_pass_ctx *ctx) {
  tgc_module *m = ctx->module;
  tgc_loc noloc = {NULL, 0, 0};
  /* dims=B=1;S=128 */
  tgc_sym_sizes b = {0};
  const char *dims = NULL;
  for (uint32_t i = 0; i < ctx->noptions; i++)
    if (strcmp(ctx->options[i].key, "dims") == 0)
      dims = ctx->options[i].value;
  tgc_strbuf why;
  tgc_sb_init(&why);
  if (dims && !tgc_sym_sizes_parse(&b, dims, &why)) {
    tgc_error(ctx->diag, noloc, "plan-memory: bad dims '%s': %s", dims, why.data);
    tgc_sb_free(&why);
    tgc_sym_sizes_free(&b);
    return 1;
  }
  tgc_sb_free(&why);
  uint32_t nb = b.n;
  int rc = 0;
  for (tgc_func *f = m->funcs; f && !rc; f = f->next) {
    const tgc_block *body = f->body;
    uint32_t nsteps = 0, cap = 64, n = 0;
    for (const tgc_op *op = body->first; op; op = op->next)
      nsteps++;
    const tgc_value **vals = tgc_xcalloc(cap, sizeof *vals);
    tgc_rt_live *lv = tgc_xcalloc(cap, sizeof *lv);
    size_t weights = 0, naive = 0;
    int step = 0;
    for (const tgc_op *op = body->first; op && !rc; op = op->next, step++) {
      /* every operand's storage is read at this step */
      for (uint32_t j = 0; j < op->noperands; j++) {
        const tgc_value *s = tgc_value_storage(op->operands[j].value);
        for (uint32_t i = 0; i < n; i++)
          if (vals[i] == s)
            lv[i].last = op->opcode == TGC_OP_RETURN ? (int)nsteps : step;
      }
      if (op->opcode == TGC_OP_RESHAPE || op->opcode == TGC_OP_CONSTANT || op->opcode == TGC_OP_RETURN)
        continue;
      for (uint32_t r = 0; r < op->nresults; r++) {
        const tgc_value *v = &op->results[r];
        if (!v->type) {
          tgc_error(ctx->diag, op->loc, "plan-memory: a result without a type (run shape-infer first)");
          rc = 1;
          break;
        }
        uint64_t bytes = (uint64_t)((tgc_dtype_bits(v->type->dtype) + 7) / 8);
        bool over = false;
        for (uint32_t d = 0; d < v->type->rank && !rc; d++) {
          int64_t x = 0;
          const char *missing = NULL;
          tgc_dim_status st = tgc_dim_eval(v->type->dims[d], b.names, b.sizes, b.n, &x, &missing);
          if (st == TGC_DIM_UNBOUND) {
            tgc_error(ctx->diag, op->loc, "plan-memory: no size for symbol '%s' (give it: plan-memory{dims=%s=N;...})",
                      missing, missing);
            rc = 1;
          }
          over = over || st == TGC_DIM_OVERFLOW || __builtin_mul_overflow(bytes, (uint64_t)(x > 0 ? x : 0), &bytes);
        }
        if (!rc && (over || bytes > ((uint64_t)1 << 62))) {
          tgc_error(ctx->diag, op->loc, "plan-memory: at these dims %%%s would need more than 2^62 bytes",
                    v->name ? v->name : "?");
          rc = 1;
        }
        if (rc)
          break;
        if (op->opcode == TGC_OP_PARAM) {
          weights += bytes;
          continue;
        }
        if (n == cap) {
          cap *= 2;
          vals = tgc_xrealloc(vals, cap * sizeof *vals);
          lv = tgc_xrealloc(lv, cap * sizeof *lv);
        }
        vals[n] = v;
        lv[n++] = (tgc_rt_live){bytes, step, step, 0};
        naive += (bytes + 255) & ~(size_t)255;
      }
    }
    if (!rc) {
      size_t peak = tgc_rt_plan_memory(lv, n, (int)nsteps, 256);
      tgc_strbuf at;
      tgc_sb_init(&at);
      for (uint32_t k = 0; k < nb; k++)
        tgc_sb_printf(&at, "%s%s=%lld", k ? ", " : "", b.names[k], (long long)b.sizes[k]);
      tgc_diag_report(ctx->diag, TGC_DIAG_NOTE, body->loc,
                      "plan-memory: @%s%s%s: %u intermediates, peak %zu bytes (%.2f MiB) in one arena, %zu bytes "
                      "(%.2f MiB) without reuse; weights %zu bytes (%.2f MiB) in their own buffers",
                      f->name, nb ? " at " : "", at.data ? at.data : "", n, peak, peak / 1048576.0, naive,
                      naive / 1048576.0, weights, weights / 1048576.0);
      tgc_sb_free(&at);
      if (ctx->remark_pass)
        for (uint32_t i = 0; i < n; i++)
          tgc_diag_report(ctx->diag, TGC_DIAG_REMARK, vals[i]->def->loc, "%%%s: %zu bytes at offset %zu, live %d..%d "
                          "[-Rpass=plan-memory]", vals[i]->name ? vals[i]->name : "?", lv[i].bytes, lv[i].offset,
                          lv[i].first, lv[i].last);
    }
    free(vals);
    free(lv);
  }
  tgc_sym_sizes_free(&b);
  return rc;
}

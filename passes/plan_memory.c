/* plan-memory: the memory plan of each function at given sizes of its symbols. Every value a top-level op
 * defines (a launch's result; reshapes share their operand's storage) lives from the op that writes it to the
 * last op that reads it (the function's results to the end); the planner (runtime/memplan.c, the one the CUDA
 * executor uses) places them in one arena by best fit. Arguments, params (weights: their own buffers) and
 * constants are not planned. The pass reports, per function, the arena's size against the sum of the values;
 * with -Rpass=plan-memory, every value's size and offset. It does not change the IR.
 *
 * Option: dims=SYM=N;SYM=N (every symbol of the function needs a size). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memplan.h"
#include "pass.h"

typedef struct {
  const char *name;
  int64_t value;
} binding;

static bool eval_dim(const tgc_dim *d, const binding *b, uint32_t nb, int64_t *out, const char **missing) {
  int64_t sum = 0;
  for (uint32_t i = 0; i < d->nterms; i++) {
    int64_t t = d->terms[i].coeff;
    for (uint32_t j = 0; j < d->terms[i].nsyms; j++) {
      uint32_t k = 0;
      while (k < nb && strcmp(b[k].name, d->terms[i].syms[j]->name) != 0)
        k++;
      if (k == nb) {
        *missing = d->terms[i].syms[j]->name;
        return false;
      }
      t *= b[k].value;
    }
    sum += t;
  }
  *out = sum;
  return true;
}

static const tgc_value *storage_of(const tgc_value *v) {
  while (v->def && v->def->opcode == TGC_OP_RESHAPE)
    v = v->def->operands[0].value;
  return v;
}

int tgc_pass_plan_memory(tgc_pass_ctx *ctx) {
  tgc_module *m = ctx->module;
  tgc_loc noloc = {NULL, 0, 0};
  /* dims=B=1;S=128 */
  binding b[64];
  uint32_t nb = 0;
  const char *dims = NULL;
  for (uint32_t i = 0; i < ctx->noptions; i++)
    if (strcmp(ctx->options[i].key, "dims") == 0)
      dims = ctx->options[i].value;
  for (const char *p = dims; p && *p;) {
    const char *eq = strchr(p, '='), *end = strchr(p, ';');
    if (!end)
      end = p + strlen(p);
    char *num_end;
    long long v = eq && eq < end ? strtoll(eq + 1, &num_end, 10) : -1;
    if (!eq || eq > end || eq == p || num_end != end || v < 0 || nb == 64) {
      tgc_error(ctx->diag, noloc, "plan-memory: bad dims '%s' (expected SYM=N;SYM=N, sizes non-negative)", dims);
      return 1;
    }
    b[nb].name = tgc_arena_strndup(ctx->scratch, p, (size_t)(eq - p));
    b[nb++].value = v;
    p = *end ? end + 1 : end;
  }
  for (tgc_func *f = m->funcs; f; f = f->next) {
    const tgc_block *body = f->body;
    uint32_t nsteps = 0, cap = 64, n = 0;
    for (const tgc_op *op = body->first; op; op = op->next)
      nsteps++;
    const tgc_value **vals = tgc_xcalloc(cap, sizeof *vals);
    tgc_rt_live *lv = tgc_xcalloc(cap, sizeof *lv);
    size_t weights = 0, naive = 0;
    int step = 0, rc = 0;
    for (const tgc_op *op = body->first; op && !rc; op = op->next, step++) {
      /* every operand's storage is read at this step */
      for (uint32_t j = 0; j < op->noperands; j++) {
        const tgc_value *s = storage_of(op->operands[j].value);
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
        int64_t numel = 1;
        for (uint32_t d = 0; d < v->type->rank; d++) {
          int64_t x;
          const char *missing = NULL;
          if (!eval_dim(v->type->dims[d], b, nb, &x, &missing)) {
            tgc_error(ctx->diag, op->loc, "plan-memory: no size for symbol '%s' (give it: plan-memory{dims=%s=N;...})",
                      missing, missing);
            rc = 1;
            break;
          }
          numel *= x;
        }
        if (rc)
          break;
        size_t bytes = (size_t)numel * (size_t)((tgc_dtype_bits(v->type->dtype) + 7) / 8);
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
        tgc_sb_printf(&at, "%s%s=%lld", k ? ", " : "", b[k].name, (long long)b[k].value);
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
    if (rc)
      return 1;
  }
  return 0;
}

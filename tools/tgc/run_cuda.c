/* `tgc run --device=cuda`: runs a module whose launches are all generated pointwise kernels (the CUDA backend's
 * first slice): compiles each kernel with NVRTC for the GPU's architecture, keeps one device buffer per value
 * (reshapes alias their operand), launches the kernels in order and downloads the results. Modules with other
 * launches are refused with the first one named. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../codegen/cuda.h"
#include "../../passes/pass_manager.h"
#include "../../runtime/plan.h"
#include "../../runtime/cuda.h"
#include "../../runtime/kcache.h"
#include "../../runtime/nvrtc.h"
#include "driver.h"

typedef struct {
  const tgc_value *v;
  tgc_rt_devptr p;
  bool owned;
} devbuf;

static tgc_rt_devptr lookup(devbuf *bufs, size_t n, const tgc_value *v) {
  for (size_t i = 0; i < n; i++)
    if (bufs[i].v == v)
      return bufs[i].p;
  return 0;
}

static int64_t eval_dim(const tgc_dim *d, const tgc_rt_plan *p, const int64_t *syms) {
  int64_t sum = 0;
  for (uint32_t i = 0; i < d->nterms; i++) {
    int64_t t = d->terms[i].coeff;
    for (uint32_t j = 0; j < d->terms[i].nsyms; j++)
      for (uint32_t s = 0; s < p->nsyms; s++)
        if (strcmp(p->sym_names[s], d->terms[i].syms[j]->name) == 0)
          t *= syms[s];
    sum += t;
  }
  return sum;
}

static size_t type_numel(const tgc_type *t, const tgc_rt_plan *p, const int64_t *syms, int64_t *shape) {
  size_t n = 1;
  for (uint32_t d = 0; d < t->rank; d++) {
    shape[d] = eval_dim(t->dims[d], p, syms);
    n *= (size_t)shape[d];
  }
  return n;
}

int tgc_run_cuda(tgc_module *m, const tgc_func *f, const tgc_rt_plan *p, const tgc_rt_tensor *inputs,
                 tgc_rt_tensor *outputs, const tgc_rt_safetensors *weights, double *ms) {
  (void)ms;
  tgc_rt_err err;
  /* the GPU runs the optimized module: types inferred and launches fused, as -O2 does */
  tgc_diag diag;
  tgc_diag_init(&diag, stderr);
  tgc_pipeline *pl = tgc_pipeline_parse(tgc_pipeline_for_level(2), &diag);
  tgc_pm_options pmo;
  memset(&pmo, 0, sizeof pmo);
  pmo.dump = stderr;
  int prc = pl ? tgc_pipeline_run(pl, m, &diag, &pmo) : 1;
  tgc_pipeline_destroy(pl);
  tgc_diag_free(&diag);
  if (prc)
    return 1;
  tgc_cuda_module cm;
  tgc_cuda_generate(m, &cm);
  /* a GEMM epilogue's kernel needs the GEMM's result (input 0, no value outside): the cuBLASLt call that
   * produces it is not part of this slice */
  const tgc_op *unsupported = cm.npending ? cm.pending[0] : NULL;
  for (uint32_t k = 0; k < cm.nkernels && !unsupported; k++)
    for (uint32_t j = 0; j < cm.kernels[k].ninputs; j++)
      if (!cm.kernels[k].inputs[j])
        unsupported = cm.kernels[k].op;
  if (unsupported) {
    const tgc_op *op = unsupported;
    fprintf(stderr, "%s:%u:%u: error: the CUDA backend cannot run '%s' yet (this milestone generates pointwise "
            "kernels only); use --device=cpu\n", op->loc.file ? op->loc.file : "?", op->loc.line, op->loc.col,
            op->opcode == TGC_OP_FUSION ? tgc_op_attr_str(op, "kind", "fusion") : tgc_op_name(op->opcode));
    return 1;
  }
  tgc_rt_cuda *cuda = tgc_rt_cuda_open(&err);
  if (!cuda) {
    fprintf(stderr, "tgc: error: %s\n", err.msg);
    return 1;
  }
  tgc_rt_nvrtc *nv = tgc_rt_nvrtc_open(&err);
  tgc_rt_kcache_stats kst = {0, 0, 0, 0};
  int rc = 1;
  int64_t *syms = tgc_xcalloc(p->nsyms + 1, sizeof *syms);
  size_t nbufs = 0, cap = 64;
  devbuf *bufs = tgc_xcalloc(cap, sizeof *bufs);
  if (!nv) {
    fprintf(stderr, "tgc: error: %s\n", err.msg);
    goto done;
  }
  if (tgc_rt_bind_symbols(p, inputs, syms, &err)) {
    fprintf(stderr, "tgc: %s\n", err.msg);
    goto done;
  }
  /* inputs, params and the values every op defines */
  for (const tgc_op *op = f->body->first; op; op = op->next) {
    if (nbufs + 2 > cap) {
      cap *= 2;
      bufs = tgc_xrealloc(bufs, cap * sizeof *bufs);
    }
    if (op->opcode == TGC_OP_RETURN || op->opcode == TGC_OP_CONSTANT)
      continue;
    const tgc_value *v = &op->results[0];
    if (op->opcode == TGC_OP_RESHAPE) {
      bufs[nbufs++] = (devbuf){v, lookup(bufs, nbufs, op->operands[0].value), false};
      continue;
    }
    int64_t shape[TGC_RT_MAX_RANK];
    size_t bytes = type_numel(v->type, p, syms, shape) * tgc_rt_dtype_size(v->type->dtype);
    tgc_rt_devptr d;
    if (tgc_rt_cuda_alloc(cuda, bytes, &d, &err)) {
      fprintf(stderr, "tgc: error: %s\n", err.msg);
      goto done;
    }
    bufs[nbufs++] = (devbuf){v, d, true};
    if (op->opcode == TGC_OP_PARAM) {
      tgc_rt_tensor w;
      const char *name = tgc_op_attr_str(op, "name", "");
      if (!weights || tgc_rt_st_get(weights, name, &w, &err) != 0 || w.dtype != v->type->dtype ||
          tgc_rt_tensor_nbytes(&w) != bytes) {
        fprintf(stderr, "tgc: error: parameter '%s' is missing from the weights or does not match its type\n", name);
        goto done;
      }
      if (tgc_rt_cuda_upload(cuda, d, w.data, bytes, &err)) {
        fprintf(stderr, "tgc: error: %s\n", err.msg);
        goto done;
      }
    }
  }
  for (uint32_t i = 0; i < f->body->nargs; i++) {
    tgc_rt_devptr d;
    size_t bytes = tgc_rt_tensor_nbytes(&inputs[i]);
    if (tgc_rt_cuda_alloc(cuda, bytes, &d, &err) || tgc_rt_cuda_upload(cuda, d, inputs[i].data, bytes, &err)) {
      fprintf(stderr, "tgc: error: %s\n", err.msg);
      goto done;
    }
    if (nbufs + 1 > cap) {
      cap *= 2;
      bufs = tgc_xrealloc(bufs, cap * sizeof *bufs);
    }
    bufs[nbufs++] = (devbuf){f->body->args[i], d, true};
  }
  /* reshapes of arguments were resolved before the arguments existed: resolve them again, in order */
  for (size_t i = 0; i < nbufs; i++)
    if (!bufs[i].owned && bufs[i].v->def && bufs[i].v->def->opcode == TGC_OP_RESHAPE)
      bufs[i].p = lookup(bufs, nbufs, bufs[i].v->def->operands[0].value);
  for (uint32_t k = 0; k < cm.nkernels; k++) {
    const tgc_cuda_kernel *kern = &cm.kernels[k];
    void *fn, *image = NULL;
    size_t size;
    if (tgc_rt_kcache_compile(nv, kern->source, kern->name, tgc_rt_cuda_arch(cuda), &kst, &image, &size, &err) ||
        tgc_rt_cuda_load(cuda, image, kern->name, &fn, &err)) {
      fprintf(stderr, "tgc: error: %s\n", err.msg);
      free(image);
      goto done;
    }
    free(image);
    tgc_rt_devptr ptrs[64];
    long long symv[16];
    void *params[96];
    uint32_t np = 0;
    for (uint32_t j = 0; j < kern->ninputs && j < 60; j++) {
      ptrs[j] = lookup(bufs, nbufs, kern->inputs[j]);
      params[np++] = &ptrs[j];
    }
    const tgc_value *res = &kern->op->results[0];
    tgc_rt_devptr outp = lookup(bufs, nbufs, res);
    params[np++] = &outp;
    for (uint32_t s = 0; s < kern->nsyms && s < 16; s++) {
      symv[s] = 0;
      for (uint32_t q = 0; q < p->nsyms; q++)
        if (strcmp(p->sym_names[q], kern->sym_names[s]) == 0)
          symv[s] = syms[q];
      params[np++] = &symv[s];
    }
    int64_t shape[TGC_RT_MAX_RANK];
    long long n = (long long)type_numel(res->type, p, syms, shape);
    if (tgc_rt_cuda_launch(cuda, fn, n, params, &err)) {
      fprintf(stderr, "tgc: error: kernel %s: %s\n", kern->name, err.msg);
      goto done;
    }
  }
  const tgc_op *ret = f->body->last;
  for (uint32_t i = 0; i < ret->noperands; i++) {
    const tgc_value *v = ret->operands[i].value;
    int64_t shape[TGC_RT_MAX_RANK];
    type_numel(v->type, p, syms, shape);
    if (tgc_rt_tensor_alloc(&outputs[i], v->type->dtype, v->type->rank, shape, &err) ||
        tgc_rt_cuda_download(cuda, outputs[i].data, lookup(bufs, nbufs, v), tgc_rt_tensor_nbytes(&outputs[i]),
                             &err)) {
      fprintf(stderr, "tgc: error: %s\n", err.msg);
      goto done;
    }
  }
  fprintf(stderr, "cuda: %u kernels on %s (%s); kernel cache: %u hits, %u misses\n", cm.nkernels,
          tgc_rt_cuda_device_name(cuda), tgc_rt_cuda_arch(cuda), kst.hits, kst.misses);
  rc = 0;
done:
  for (size_t i = 0; i < nbufs; i++)
    if (bufs[i].owned)
      tgc_rt_cuda_free(cuda, bufs[i].p);
  free(bufs);
  free(syms);
  tgc_rt_nvrtc_close(nv);
  tgc_rt_cuda_close(cuda);
  return rc;
}

/* The CUDA backend of sessions (runtime/session.h): a program's CUDA part run on one GPU. At create, every
 * distinct kernel source is loaded once (the program's image for this GPU's architecture, else its PTX, else
 * NVRTC through the on-disk kernel cache, on parallel threads); at bind, the weights are uploaded once (with
 * the zero tail a padded GEMM reads); per set of symbol sizes an "instance" holds the arena of the
 * temporaries (the program's stored memory plan when it fits, else one planned here), the input buffers, the
 * launches and GEMMs with their arguments bound and, from the second run at those sizes on, the CUDA graph
 * captured from the same steps. An index out of range or an integer error in a kernel sets a flag that is
 * checked after every run and reported at the launch's location. Nothing here prints. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cublaslt.h"
#include "cuda_driver.h"
#include "kcache.h"
#include "memplan.h"
#include "session_internal.h"

typedef struct {
  void *fn;
  unsigned grid[3], block;
  void **params;
  tgc_rt_devptr *ptrs;
  long long *symv;
} launch;

/* Everything that depends on the symbol sizes: one per set of sizes run at. */
typedef struct instance {
  struct instance *next;
  int64_t *syms;
  uint64_t *bytes;     /* per buffer, at SYMS */
  tgc_rt_devptr *ptr;  /* per buffer */
  tgc_rt_devptr arena; /* the temporaries */
  tgc_rt_devptr *own;  /* what this instance allocated (inputs, params with symbols), NOWN of them */
  uint32_t nown;
  unsigned weights_gen; /* the weights set whose symbolic params are uploaded here */
  launch *ls;
  tgc_rt_gemm *gs;
  bool *skip; /* per step: its condition (tgc_rt_pstep.when) is false at SYMS */
  void *graph;  /* captured at the second run */
  bool checked; /* its first run was queued step by step and succeeded */
  const char *plan_from;
  size_t arena_bytes, naive_bytes;
  size_t sym_weight_bytes; /* the params with symbols, uploaded here */
} instance;

typedef struct {
  tgc_rt_cuda *cuda;
  tgc_rt_blas *blas;
  void **fns; /* per source */
  uint32_t from_program;
  tgc_rt_kcache_stats kst;
  tgc_rt_devptr *wptr; /* per buffer: the uploaded weight of a param without symbols */
  size_t weight_bytes;
  unsigned weights_gen; /* bumped at every bind */
  tgc_rt_devptr errflag;
  instance *insts, *cur; /* most recently used first; at most TGC_RT_SESSION_MAX_INSTANCES */
  uint32_t evicted;      /* instances freed to keep that bound */
  tgc_strbuf notes;
} cuda_impl;

#define IMPL(s) ((cuda_impl *)(s)->impl)

static bool type_has_syms(const tgc_rt_type *t) {
  for (uint32_t d = 0; d < t->rank; d++)
    for (uint32_t k = 0; k < t->dims[d].nterms; k++)
      if (t->dims[d].terms[k].nsyms)
        return true;
  return false;
}

static void note(cuda_impl *c, const char *fmt, ...) TGC_RT_PRINTF(2, 3);
static void note(cuda_impl *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tgc_sb_vprintf(&c->notes, fmt, ap);
  va_end(ap);
  tgc_sb_putc(&c->notes, '\n');
}

/* ---- kernels: the program's images, else NVRTC on parallel threads ---------------------------- */

typedef struct {
  const char *text;
  void *image; /* owned when compiled here */
  const void *given;
  size_t size;
  int rc;
  tgc_rt_err err;
} unique_kernel;

typedef struct {
  tgc_rt_nvrtc *nv;
  const char *arch;
  unique_kernel *u;
  uint32_t n, next;
  pthread_mutex_t lock;
  tgc_rt_kcache_stats st;
} compile_pool;

static void *compile_worker(void *arg) {
  compile_pool *pool = arg;
  for (;;) {
    pthread_mutex_lock(&pool->lock);
    uint32_t i = pool->next++;
    pthread_mutex_unlock(&pool->lock);
    if (i >= pool->n)
      return NULL;
    unique_kernel *u = &pool->u[i];
    if (u->given)
      continue;
    tgc_rt_kcache_stats st = {0, 0, 0, 0};
    u->rc = tgc_rt_kcache_compile(pool->nv, u->text, "tgc_kernel", pool->arch, &st, &u->image, &u->size, &u->err);
    pthread_mutex_lock(&pool->lock);
    pool->st.hits += st.hits;
    pool->st.misses += st.misses;
    pool->st.corrupt += st.corrupt;
    pool->st.write_errors += st.write_errors;
    pthread_mutex_unlock(&pool->lock);
  }
}

/* The name of a kernel of source U, for messages. */
static const char *source_kernel_name(const tgc_rt_program *p, uint32_t u) {
  for (uint32_t k = 0; k < p->nkernels; k++)
    if (p->kernels[k].source == u)
      return p->kernels[k].name;
  return "?";
}

static int load_kernels(tgc_rt_session *s, tgc_rt_err *err) {
  cuda_impl *c = IMPL(s);
  const tgc_rt_program *p = s->p;
  const char *arch = tgc_rt_cuda_arch(c->cuda);
  unique_kernel *uk = tgc_xcalloc(p->nsources + 1, sizeof *uk);
  uint32_t need = 0;
  int rc = -1;
  tgc_rt_nvrtc *nv = NULL;
  /* a CUBIN built for this GPU's architecture, else PTX (the driver compiles it for the GPU) */
  for (uint32_t u = 0; u < p->nsources; u++) {
    uk[u].text = p->sources[u].text;
    const tgc_rt_pimage *ptx = NULL, *cubin = NULL;
    for (uint32_t i = 0; i < p->nimages; i++) {
      const tgc_rt_pimage *im = &p->images[i];
      if (im->source != u || !im->size)
        continue;
      if (strcmp(im->arch, arch) == 0)
        cubin = im;
      else if (!im->arch[0] && ((const char *)im->data)[im->size - 1] == 0)
        ptx = im;
    }
    const tgc_rt_pimage *im = cubin ? cubin : ptx;
    if (im) {
      uk[u].given = im->data;
      uk[u].size = im->size;
      c->from_program++;
    } else {
      need++;
    }
  }
  if (need && !(nv = tgc_rt_nvrtc_open(err)))
    goto out;
  if (p->nimages && need)
    note(c, "%u kernels are not in the artifact for %s; compiling them with NVRTC", need, arch);
  compile_pool pool = {nv, arch, uk, p->nsources, 0, PTHREAD_MUTEX_INITIALIZER, {0, 0, 0, 0}};
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  uint32_t nthreads = ncpu < 1 ? 1 : ncpu > 16 ? 16 : (uint32_t)ncpu;
  if (nthreads > need)
    nthreads = need;
  pthread_t th[16];
  uint32_t started = 0;
  while (started < nthreads && pthread_create(&th[started], NULL, compile_worker, &pool) == 0)
    started++;
  if (started == 0) /* no thread could start: compile on this one */
    compile_worker(&pool);
  for (uint32_t t = 0; t < started; t++)
    pthread_join(th[t], NULL);
  c->kst = pool.st;
  c->fns = tgc_xcalloc(p->nsources + 1, sizeof *c->fns);
  for (uint32_t u = 0; u < p->nsources; u++)
    if (uk[u].rc || tgc_rt_cuda_load(c->cuda, uk[u].given ? uk[u].given : uk[u].image, "tgc_kernel", &c->fns[u],
                                     &uk[u].err)) {
      tgc_rt_errorf(err, "error: kernel %s: %s", source_kernel_name(p, u), uk[u].err.msg);
      goto out;
    }
  rc = 0;
out:
  for (uint32_t u = 0; u < p->nsources; u++)
    free(uk[u].image);
  free(uk);
  tgc_rt_nvrtc_close(nv);
  return rc;
}

/* ---- create, bind ---------------------------------------------------------------------------- */

static void destroy_instance(cuda_impl *c, instance *in, uint32_t nkernels) {
  tgc_rt_cuda_graph_destroy(c->cuda, in->graph);
  for (uint32_t k = 0; in->ls && k < nkernels; k++) {
    free(in->ls[k].ptrs);
    free(in->ls[k].symv);
    free(in->ls[k].params);
  }
  free(in->ls);
  free(in->gs);
  free(in->skip);
  for (uint32_t i = 0; i < in->nown; i++)
    tgc_rt_cuda_free(c->cuda, in->own[i]);
  free(in->own);
  tgc_rt_cuda_free(c->cuda, in->arena);
  free(in->ptr);
  free(in->bytes);
  free(in->syms);
  free(in);
}

static void cuda_destroy(tgc_rt_session *s) {
  cuda_impl *c = IMPL(s);
  if (!c)
    return;
  while (c->insts) {
    instance *n = c->insts->next;
    destroy_instance(c, c->insts, s->p->nkernels);
    c->insts = n;
  }
  for (uint32_t b = 0; c->wptr && b < s->p->nbuffers; b++)
    tgc_rt_cuda_free(c->cuda, c->wptr[b]);
  free(c->wptr);
  free(c->fns);
  tgc_rt_cuda_free(c->cuda, c->errflag);
  tgc_rt_blas_close(c->blas);
  tgc_rt_cuda_close(c->cuda);
  tgc_sb_free(&c->notes);
  free(c);
  s->impl = NULL;
}

static int cuda_create(tgc_rt_session *s, const tgc_rt_session_opts *o, tgc_rt_err *err) {
  cuda_impl *c = tgc_xcalloc(1, sizeof *c);
  s->impl = c;
  tgc_sb_init(&c->notes);
  tgc_sb_puts(&c->notes, "");
  /* the device first: without one there is nothing to compile for */
  if (!(c->cuda = tgc_rt_cuda_open_device(o ? o->gpu : 0, o ? o->stream : NULL, err)))
    return -1;
  if (s->p->ngemms && !(c->blas = tgc_rt_blas_open(c->cuda, err)))
    return -1;
  c->wptr = tgc_xcalloc(s->p->nbuffers + 1, sizeof *c->wptr);
  if (tgc_rt_cuda_alloc(c->cuda, 4, &c->errflag, err))
    return -1;
  return load_kernels(s, err);
}

/* Uploads the weight of param buffer B (BYTES long at the current sizes) to DST, with its zero tail. */
static int upload_weight(tgc_rt_session *s, const tgc_rt_pbuffer *b, uint64_t bytes, tgc_rt_devptr dst,
                         tgc_rt_err *err) {
  cuda_impl *c = IMPL(s);
  tgc_rt_tensor w;
  if (!s->w || tgc_rt_weights_get(s->w, b->name, &w) || tgc_rt_tensor_nbytes(&w) != bytes)
    return tgc_rt_errorf(err, "error: internal: parameter '%s' of the CUDA program is %s the plan of '@%s'",
                         b->name, s->w && tgc_rt_weights_get(s->w, b->name, &w) == 0 ? "of another size than in"
                                                                                   : "not in",
                         s->p->plan->name);
  if (b->pack_w4) {
    /* the w4 GEMM's order, half the bytes (checked by tgc_rt_program_check: i4 [N, K], no tail) */
    /* i4 values, one a byte: the file's i4 (packed there, unpacked by the loader) or i8 within -8..7 */
    if ((w.dtype != TGC_DT_I4 && w.dtype != TGC_DT_I8) || w.rank != 2)
      return tgc_rt_errorf(err, "error: parameter '%s' is packed for the w4 GEMM but the weight is a %s tensor of rank %u, "
                           "not an i4 matrix", b->name, tgc_dtype_name(w.dtype), w.rank);
    const int8_t *v = (const int8_t *)w.data;
    for (uint64_t i = 0; i < bytes; i++)
      if (v[i] < -8 || v[i] > 7)
        return tgc_rt_errorf(err, "error: parameter '%s': element %llu is %d, outside i4's range -8..7", b->name,
                             (unsigned long long)i, v[i]);
    uint8_t *packed = malloc((size_t)bytes / 2);
    if (!packed)
      return tgc_rt_errorf(err, "out of host memory for %llu bytes of packed weight '%s'",
                           (unsigned long long)bytes / 2, b->name);
    tgc_rt_pack_w4((const int8_t *)w.data, w.shape[0], w.shape[1], packed);
    int rc = tgc_rt_cuda_upload_async(c->cuda, dst, packed, (size_t)bytes / 2, err) || tgc_rt_cuda_sync(c->cuda, err);
    free(packed);
    return rc ? -1 : 0;
  }
  size_t tail = (size_t)b->tail * tgc_rt_dtype_size(b->type.dtype);
  void *zeros = tail ? calloc(1, tail) : NULL; /* the zero rows a padded GEMM reads (see tgc_rt_pgemm.ldd) */
  if (tail && !zeros)
    return tgc_rt_errorf(err, "out of host memory for %zu bytes of padding", tail);
  /* W's data is borrowed and ZEROS freed here: the copies are done before this returns */
  int rc = tgc_rt_cuda_upload_async(c->cuda, dst, w.data, (size_t)bytes, err) ||
           (tail && tgc_rt_cuda_upload_async(c->cuda, dst + bytes, zeros, tail, err)) || tgc_rt_cuda_sync(c->cuda, err);
  free(zeros);
  return rc ? -1 : 0;
}

static int cuda_bind(tgc_rt_session *s, tgc_rt_err *err) {
  cuda_impl *c = IMPL(s);
  const tgc_rt_program *p = s->p;
  c->weight_bytes = 0;
  c->weights_gen++;
  for (uint32_t i = 0; i < p->nbuffers; i++) {
    const tgc_rt_pbuffer *b = &p->buffers[i];
    if (b->kind != TGC_RT_BUF_PARAM || type_has_syms(&b->type))
      continue;
    uint64_t bytes;
    if (!tgc_rt_pbuffer_bytes(b, s->syms, &bytes))
      return tgc_rt_errorf(err, "error: parameter '%s' would need more than 2^62 bytes", b->name);
    size_t tail = (size_t)b->tail * tgc_rt_dtype_size(b->type.dtype);
    /* a new set has the same shapes (checked by the common part): the first set's memory is reused, so that the
     * instances' bound launches and graphs stay valid */
    if (!c->wptr[i] && tgc_rt_cuda_alloc(c->cuda, (size_t)bytes + tail, &c->wptr[i], err))
      return -1;
    if (upload_weight(s, b, bytes, c->wptr[i], err))
      return -1;
    c->weight_bytes += (size_t)bytes + tail;
  }
  return 0;
}

/* ---- instances -------------------------------------------------------------------------------- */

/* The temporaries' places in the arena: the program's stored plan when it holds for these sizes, else a plan
 * made now (runtime/memplan.c); the arena's size, and in IN->plan_from where the plan came from. */
static size_t plan_memory(cuda_impl *c, const tgc_rt_program *p, instance *in, size_t *offsets) {
  tgc_rt_live *lv = tgc_xcalloc(p->nbuffers + 1, sizeof *lv);
  size_t n = 0, top = 0;
  for (uint32_t i = 0; i < p->nbuffers; i++)
    if (p->buffers[i].kind == TGC_RT_BUF_TEMP)
      lv[n++] = (tgc_rt_live){(size_t)in->bytes[i], p->buffers[i].first, p->buffers[i].last, 0};
  char why[256];
  tgc_rt_memplan stored;
  bool reused = false;
  in->plan_from = "planned at load";
  if (p->memplan && tgc_rt_memplan_parse(p->memplan, p->memplan_len, &stored, why, sizeof why) == 0) {
    if (tgc_rt_memplan_reuse(&stored, lv, n, &top, why, sizeof why) == 0) {
      reused = true;
      in->plan_from = "the artifact's";
    } else if (stored.placed) {
      tgc_strbuf dims;
      tgc_sb_init(&dims);
      for (uint32_t i = 0; i < stored.nsyms; i++)
        tgc_sb_printf(&dims, "%s%s=%lld", i ? "," : "", stored.sym_names[i], (long long)stored.sym_sizes[i]);
      note(c, "the artifact's memory plan (made at %s) does not fit this run: %s; planning at load",
           dims.data ? dims.data : "static sizes", why);
      tgc_sb_free(&dims);
    }
    tgc_rt_memplan_free(&stored);
  } else if (p->memplan) {
    note(c, "the artifact's memory plan is malformed (%s); planning at load", why);
  }
  if (!reused)
    top = tgc_rt_plan_memory(lv, n, (int)p->nsteps, 256);
  n = 0;
  for (uint32_t i = 0; i < p->nbuffers; i++)
    if (p->buffers[i].kind == TGC_RT_BUF_TEMP)
      offsets[i] = lv[n++].offset;
  free(lv);
  return top;
}

static int poly(const tgc_rt_poly *q, const int64_t *syms, int64_t *v) { return tgc_rt_poly_eval(q, syms, v) ? 0 : -1; }

/* The launches and GEMMs of IN with their arguments bound. */
static int bind_steps(tgc_rt_session *s, instance *in, tgc_rt_err *err) {
  cuda_impl *c = IMPL(s);
  const tgc_rt_program *p = s->p;
  in->ls = tgc_xcalloc(p->nkernels + 1, sizeof *in->ls);
  in->gs = tgc_xcalloc(p->ngemms + 1, sizeof *in->gs);
  in->skip = tgc_xcalloc(p->nsteps + 1, sizeof *in->skip);
  for (uint32_t k = 0; k < p->nsteps; k++) {
    const tgc_rt_pstep *st = &p->steps[k];
    int64_t v;
    if (st->when == TGC_RT_ALWAYS)
      continue;
    if (poly(&st->when_poly, in->syms, &v))
      return tgc_rt_errorf(err, "error: step %u's condition overflows int64 at these sizes", k);
    in->skip[k] = st->when == TGC_RT_WHEN_LE   ? v > st->limit
                  : st->when == TGC_RT_WHEN_GT ? v <= st->limit
                                               : v <= st->lo || v > st->limit;
  }
  for (uint32_t k = 0; k < p->nkernels; k++) {
    const tgc_rt_pkernel *kk = &p->kernels[k];
    launch *l = &in->ls[k];
    l->fn = c->fns[kk->source];
    l->ptrs = tgc_xcalloc(kk->nargs + 2, sizeof *l->ptrs);
    l->symv = tgc_xcalloc(kk->nsyms + 1, sizeof *l->symv);
    l->params = tgc_xcalloc(kk->nargs + kk->nsyms + 2, sizeof *l->params);
    uint32_t np = 0;
    for (uint32_t j = 0; j < kk->nargs; j++) {
      l->ptrs[j] = in->ptr[kk->args[j]];
      l->params[np++] = &l->ptrs[j];
    }
    for (uint32_t j = 0; j < kk->nsyms; j++) {
      l->symv[j] = in->syms[kk->syms[j]];
      l->params[np++] = &l->symv[j];
    }
    l->ptrs[kk->nargs] = c->errflag;
    l->params[np++] = &l->ptrs[kk->nargs];
    int64_t count = 0, blocks = -1, gy = 1, gz = 1;
    l->block = kk->block;
    if (poly(&kk->count, in->syms, &count) == 0) {
      switch (kk->grid) {
      case TGC_RT_GRID_ELEMENTS: blocks = count / kk->per_block + (count % kk->per_block != 0); break;
      case TGC_RT_GRID_ROWS: blocks = count; break;
      case TGC_RT_GRID_ATTENTION:
        blocks = count / kk->per_block + (count % kk->per_block != 0);
        if (poly(&kk->gy, in->syms, &gy) || poly(&kk->gz, in->syms, &gz) || gy < 0 || gy > 65535 || gz < 0 ||
            gz > 65535)
          blocks = -1;
        break;
      }
    }
    if (blocks < 0 || blocks > 2147483647LL)
      return tgc_rt_errorf(err, "error: kernel %s needs %lld blocks, more than one launch can have", kk->name,
                           (long long)blocks);
    l->grid[0] = (unsigned)blocks;
    l->grid[1] = (unsigned)gy;
    l->grid[2] = (unsigned)gz;
  }
  for (uint32_t g = 0; g < p->ngemms; g++) {
    const tgc_rt_pgemm *pg = &p->gemms[g];
    tgc_rt_gemm *r = &in->gs[g];
    r->dtype = pg->dtype;
    r->ab_dtype = pg->ab_dtype;
    r->alpha = pg->alpha;
    r->trans_a = pg->trans_a;
    r->trans_b = pg->trans_b;
    r->batch_a = pg->batch_a;
    r->batch_b = pg->batch_b;
    if (poly(&pg->batch, in->syms, &r->batch) || poly(&pg->m, in->syms, &r->m) || poly(&pg->n, in->syms, &r->n) ||
        poly(&pg->k, in->syms, &r->k))
      return tgc_rt_errorf(err, "%s: error: 'matmul': its sizes overflow int64 at these sizes", pg->loc);
    r->epilogue = (tgc_rt_epilogue)pg->epilogue;
    r->ldd = pg->ldd;
    if (pg->ldd) /* the weight has zero rows up to ldd: compute them (see tgc_rt_pgemm.ldd) */
      r->n = pg->ldd;
    r->a = in->ptr[pg->a];
    r->b = in->ptr[pg->b];
    r->c = pg->c == TGC_RT_NONE ? 0 : in->ptr[pg->c];
    r->bias = pg->bias == TGC_RT_NONE ? 0 : in->ptr[pg->bias];
    r->d = in->ptr[pg->d];
    r->scale = pg->scale == TGC_RT_NONE ? 0 : in->ptr[pg->scale];
  }
  /* the rows' scale of cuBLASLt's outer-vector mode: m copies of alpha, a vector per such GEMM */
  for (uint32_t g = 0; g < p->ngemms; g++) {
    tgc_rt_gemm *r = &in->gs[g];
    if (!r->scale || r->m <= 0)
      continue;
    if (r->m > ((int64_t)1 << 40))
      return tgc_rt_errorf(err, "%s: error: 'matmul': %lld rows, too many", p->gemms[g].loc, (long long)r->m);
    float *host = malloc((size_t)r->m * sizeof *host);
    if (!host)
      return tgc_rt_errorf(err, "out of host memory for %lld floats", (long long)r->m);
    for (int64_t i = 0; i < r->m; i++)
      host[i] = (float)r->alpha;
    int rc = tgc_rt_cuda_alloc(c->cuda, (size_t)r->m * sizeof *host, &r->rows, err);
    if (rc == 0) {
      in->own[in->nown++] = r->rows;
      rc = tgc_rt_cuda_upload_async(c->cuda, r->rows, host, (size_t)r->m * sizeof *host, err) ||
           tgc_rt_cuda_sync(c->cuda, err);
    }
    free(host);
    if (rc)
      return -1;
  }
  return 0;
}

static int new_instance(tgc_rt_session *s, instance **out, tgc_rt_err *err) {
  cuda_impl *c = IMPL(s);
  const tgc_rt_program *p = s->p;
  const tgc_rt_plan *pl = p->plan;
  instance *in = tgc_xcalloc(1, sizeof *in);
  in->syms = tgc_xcalloc(pl->nsyms + 1, sizeof *in->syms);
  memcpy(in->syms, s->syms, sizeof *in->syms * pl->nsyms);
  in->bytes = tgc_xcalloc(p->nbuffers + 1, sizeof *in->bytes);
  in->ptr = tgc_xcalloc(p->nbuffers + 1, sizeof *in->ptr);
  in->own = tgc_xcalloc(p->nbuffers + p->ngemms + 1, sizeof *in->own); /* + outer-vector row scales (bind_steps) */
  size_t *offsets = tgc_xcalloc(p->nbuffers + 1, sizeof *offsets);
  int rc = -1;
  for (uint32_t i = 0; i < p->nbuffers; i++) {
    const tgc_rt_pbuffer *b = &p->buffers[i];
    if (!tgc_rt_pbuffer_bytes(b, in->syms, &in->bytes[i])) {
      if (b->loc && b->loc[0])
        tgc_rt_errorf(err, "%s: error: '%s': its result would need more than 2^62 bytes at these sizes", b->loc,
                      b->op);
      else
        tgc_rt_errorf(err, "error: an argument's buffer would need more than 2^62 bytes at these sizes");
      goto out;
    }
  }
  in->arena_bytes = plan_memory(c, p, in, offsets);
  for (uint32_t i = 0; i < p->nbuffers; i++)
    if (p->buffers[i].kind == TGC_RT_BUF_TEMP)
      in->naive_bytes += ((size_t)in->bytes[i] + 255) & ~(size_t)255;
  if (tgc_rt_cuda_alloc(c->cuda, in->arena_bytes, &in->arena, err))
    goto out;
  for (uint32_t i = 0; i < p->nbuffers; i++) {
    const tgc_rt_pbuffer *b = &p->buffers[i];
    size_t tail = (size_t)b->tail * tgc_rt_dtype_size(b->type.dtype);
    if (b->kind == TGC_RT_BUF_TEMP) {
      in->ptr[i] = in->arena + offsets[i];
    } else if (b->kind == TGC_RT_BUF_PARAM && !type_has_syms(&b->type)) {
      in->ptr[i] = c->wptr[i];
    } else {
      if (tgc_rt_cuda_alloc(c->cuda, (size_t)in->bytes[i] + tail, &in->ptr[i], err))
        goto out;
      in->own[in->nown++] = in->ptr[i];
      if (b->kind == TGC_RT_BUF_PARAM)
        in->sym_weight_bytes += (size_t)in->bytes[i] + tail;
    }
  }
  if (bind_steps(s, in, err))
    goto out;
  rc = 0;
out:
  free(offsets);
  if (rc) {
    destroy_instance(c, in, p->nkernels);
    return -1;
  }
  in->next = c->insts;
  c->insts = in;
  *out = in;
  return 0;
}

/* ---- running ---------------------------------------------------------------------------------- */

static int enqueue(tgc_rt_session *s, const instance *in, tgc_rt_err *err) {
  cuda_impl *c = IMPL(s);
  const tgc_rt_program *p = s->p;
  if (tgc_rt_cuda_memset32(c->cuda, c->errflag, 0, 1, err))
    return -1;
  for (uint32_t k = 0; k < p->nsteps; k++) {
    const tgc_rt_pstep *st = &p->steps[k];
    if (in->skip[k])
      continue;
    if (st->gemm) {
      if (tgc_rt_blas_gemm(c->blas, &in->gs[st->index], err))
        return -1;
    } else {
      const launch *l = &in->ls[st->index];
      if (tgc_rt_cuda_launch(c->cuda, l->fn, l->grid, l->block, l->params, err)) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, " (kernel %s failed to launch)", p->kernels[st->index].name);
        return -1;
      }
    }
  }
  return 0;
}

/* Waits for the work queued and reads the kernels' error flag: an error at the launch that set it, worded as
 * the CPU backend words it ("'div': integer division by zero (in add, on the GPU)"). */
static int check_flag(tgc_rt_session *s, tgc_rt_err *err) {
  cuda_impl *c = IMPL(s);
  const tgc_rt_program *p = s->p;
  int code = 0;
  if (tgc_rt_cuda_sync(c->cuda, err) || tgc_rt_cuda_download(c->cuda, &code, c->errflag, sizeof code, err))
    return -1;
  if (!code)
    return 0;
  int kcode;
  tgc_rt_kerr kind;
  tgc_rt_kerr_decode(code, &kcode, &kind);
  /* an arithmetic error is named by its op, as the CPU backend does: 'div': integer division by zero */
  const char *opname = kind == TGC_RT_KERR_DIV_ZERO ? "'div': " : kind == TGC_RT_KERR_NEG_EXPONENT ? "'pow': " : "";
  for (uint32_t k = 0; k < p->nkernels; k++)
    if (p->kernels[k].code == kcode)
      return tgc_rt_errorf(err, "%s: error: %s%s (in %s, on the GPU)", p->kernels[k].loc[0] ? p->kernels[k].loc : "?",
                           opname, tgc_rt_kerr_message(kind), p->kernels[k].op);
  return tgc_rt_errorf(err, "error: %s%s (on the GPU)", opname, tgc_rt_kerr_message(kind));
}

static int capture(tgc_rt_session *s, instance *in, tgc_rt_err *err) {
  cuda_impl *c = IMPL(s);
  if (c->blas)
    tgc_rt_blas_capturing(c->blas, true);
  int rc = tgc_rt_cuda_capture_begin(c->cuda, err);
  if (rc == 0 && enqueue(s, in, err)) {
    void *g = NULL; /* end the capture so the stream is usable again; what was captured is dropped */
    tgc_rt_err ignored;
    if (tgc_rt_cuda_capture_end(c->cuda, &g, &ignored) == 0)
      tgc_rt_cuda_graph_destroy(c->cuda, g);
    rc = -1;
  }
  if (rc == 0)
    rc = tgc_rt_cuda_capture_end(c->cuda, &in->graph, err);
  if (c->blas)
    tgc_rt_blas_capturing(c->blas, false);
  return rc;
}

/* The inputs into IN's buffers (from the host, or device to device), and the params with symbols when the
 * weights bound are not those uploaded there yet. */
static int upload_inputs(tgc_rt_session *s, instance *in, tgc_rt_err *err) {
  cuda_impl *c = IMPL(s);
  const tgc_rt_program *p = s->p;
  const tgc_rt_plan *pl = p->plan;
  for (uint32_t i = 0; i < p->nbuffers; i++) {
    const tgc_rt_pbuffer *b = &p->buffers[i];
    if (b->kind == TGC_RT_BUF_PARAM && type_has_syms(&b->type) && in->weights_gen != c->weights_gen) {
      if (upload_weight(s, b, in->bytes[i], in->ptr[i], err))
        return -1;
      continue;
    }
    if (b->kind != TGC_RT_BUF_INPUT)
      continue;
    uint32_t a = b->index;
    const char *bad = NULL;
    if (a >= pl->ninputs)
      bad = "the CUDA program reads a value that is not an argument of the entry function";
    else if (tgc_rt_tensor_nbytes(&s->in[a]) != in->bytes[i])
      bad = "its size differs from the CUDA buffer's";
    else if (s->in_dev[a] ? tgc_rt_cuda_copy_async(c->cuda, in->ptr[i], (tgc_rt_devptr)(uintptr_t)s->in[a].data,
                                                   (size_t)in->bytes[i], err)
                          : tgc_rt_cuda_upload_async(c->cuda, in->ptr[i], s->in[a].data, (size_t)in->bytes[i], err))
      bad = err->msg;
    if (bad) {
      char why[sizeof err->msg];
      snprintf(why, sizeof why, "%s", bad);
      return tgc_rt_errorf(err, "error: input %u ('%%%s' of '@%s') cannot be uploaded: %s", a,
                           a < pl->ninputs ? pl->input_names[a] : "?", pl->name, why);
    }
  }
  in->weights_gen = c->weights_gen;
  return 0;
}

static instance *find_instance(cuda_impl *c, const int64_t *syms, uint32_t nsyms) {
  for (instance *in = c->insts; in; in = in->next)
    if (!nsyms || memcmp(in->syms, syms, sizeof *syms * nsyms) == 0)
      return in;
  return NULL;
}

/* Makes IN the most recently used instance (the list's head) and frees the least recently used ones beyond
 * TGC_RT_SESSION_MAX_INSTANCES: a caller that runs at ever new sizes (a growing sequence) keeps a bounded number
 * of arenas and graphs on the device; sizes seen again after an eviction get a new instance. */
static void touch_instance(tgc_rt_session *s, instance *in) {
  cuda_impl *c = IMPL(s);
  instance **pp = &c->insts;
  while (*pp && *pp != in)
    pp = &(*pp)->next;
  if (*pp) {
    *pp = in->next;
    in->next = c->insts;
    c->insts = in;
  }
  uint32_t n = 0;
  for (instance **q = &c->insts; *q;) {
    if (++n <= TGC_RT_SESSION_MAX_INSTANCES) {
      q = &(*q)->next;
      continue;
    }
    instance *old = *q;
    *q = old->next;
    destroy_instance(c, old, s->p->nkernels);
    c->evicted++;
  }
}

static int cuda_run(tgc_rt_session *s, tgc_rt_err *err) {
  cuda_impl *c = IMPL(s);
  instance *in = find_instance(c, s->syms, s->p->plan->nsyms);
  c->cur = NULL;
  if (!in && new_instance(s, &in, err))
    return -1;
  touch_instance(s, in);
  if (upload_inputs(s, in, err))
    return -1;
  /* the first run at these sizes step by step and checked; from the second on, one graph of the same steps */
  if (in->checked && !in->graph && capture(s, in, err))
    return -1;
  if (in->graph ? tgc_rt_cuda_graph_launch(c->cuda, in->graph, err) : enqueue(s, in, err))
    return -1;
  if (check_flag(s, err))
    return -1;
  in->checked = true;
  c->cur = in;
  return 0;
}

/* Copies output I of the current instance to host memory DST (LEN dense bytes), dropping the rows' padding. */
static int download_output(tgc_rt_session *s, uint32_t i, void *dst, size_t len, tgc_rt_err *err) {
  cuda_impl *c = IMPL(s);
  const tgc_rt_program *p = s->p;
  uint32_t bi = p->output_buffers[i];
  const tgc_rt_pbuffer *b = &p->buffers[bi];
  const instance *in = c->cur;
  if (!b->pitch || !len)
    return len > in->bytes[bi] ? tgc_rt_errorf(err, "error: internal: output %u is larger than its buffer", i)
                               : tgc_rt_cuda_download(c->cuda, dst, in->ptr[bi], len, err);
  size_t es = tgc_rt_dtype_size(b->type.dtype), pitch = (size_t)b->pitch * es, all = (size_t)in->bytes[bi];
  size_t rows = all / pitch, row = rows ? len / rows : 0;
  char *tmp = malloc(all ? all : 1);
  if (!tmp)
    return tgc_rt_errorf(err, "out of host memory for a %zu-byte result", all);
  int rc = tgc_rt_cuda_download(c->cuda, tmp, in->ptr[bi], all, err);
  for (size_t r = 0; !rc && r < rows; r++)
    memcpy((char *)dst + r * row, tmp + r * pitch, row);
  free(tmp);
  return rc;
}

static int cuda_fetch(tgc_rt_session *s, uint32_t i, tgc_rt_err *err) {
  int64_t shape[TGC_RT_MAX_RANK];
  const tgc_rt_type *t = &s->p->plan->output_types[i];
  if (tgc_rt_session_output_shape(s, i, shape, err) || tgc_rt_tensor_alloc(&s->out[i], t->dtype, t->rank, shape, err))
    return -1;
  if (download_output(s, i, s->out[i].data, tgc_rt_tensor_nbytes(&s->out[i]), err)) {
    tgc_rt_tensor_free(&s->out[i]);
    return -1;
  }
  return 0;
}

static int cuda_copy_to_device(tgc_rt_session *s, uint32_t i, void *dst, size_t bytes, tgc_rt_err *err) {
  cuda_impl *c = IMPL(s);
  const tgc_rt_program *p = s->p;
  uint32_t bi = p->output_buffers[i];
  if (!p->buffers[bi].pitch) /* dense already: on the GPU */
    return tgc_rt_cuda_copy_async(c->cuda, (tgc_rt_devptr)(uintptr_t)dst, c->cur->ptr[bi], bytes, err) ||
                   tgc_rt_cuda_sync(c->cuda, err)
               ? -1
               : 0;
  /* padded rows (a GEMM's logits): through the host, rare enough */
  const tgc_rt_tensor *h;
  if (tgc_rt_session_output(s, i, &h, err) ||
      tgc_rt_cuda_upload_async(c->cuda, (tgc_rt_devptr)(uintptr_t)dst, h->data, bytes, err) ||
      tgc_rt_cuda_sync(c->cuda, err))
    return -1;
  return 0;
}

static void cuda_stats(const tgc_rt_session *s, tgc_rt_session_stats *st) {
  const cuda_impl *c = IMPL(s);
  const tgc_rt_program *p = s->p;
  st->nsteps = p->nsteps;
  st->nkernels = p->nkernels;
  st->ndistinct = p->nsources;
  st->ngemms = p->ngemms;
  st->from_program = c->from_program;
  st->cache_hits = c->kst.hits;
  st->cache_misses = c->kst.misses;
  st->device_name = tgc_rt_cuda_device_name(c->cuda);
  st->arch = tgc_rt_cuda_arch(c->cuda);
  st->weight_bytes = c->weight_bytes + (c->cur ? c->cur->sym_weight_bytes : 0);
  if (c->cur) {
    st->arena_bytes = c->cur->arena_bytes;
    st->naive_bytes = c->cur->naive_bytes;
    st->plan_from = c->cur->plan_from;
  }
  st->notes = c->notes.data ? c->notes.data : "";
  st->instances = 0;
  for (const instance *in = c->insts; in; in = in->next)
    st->instances++;
  st->evicted = c->evicted;
}

static void drop_outputs(tgc_rt_session *s) {
  for (uint32_t i = 0; i < s->p->plan->noutputs; i++)
    tgc_rt_tensor_free(&s->out[i]); /* the next tgc_rt_session_output downloads them again */
}

static int cuda_time_replays(tgc_rt_session *s, int n, float *ms, tgc_rt_err *err) {
  cuda_impl *c = IMPL(s);
  instance *in = c->cur;
  void *ev0 = NULL, *ev1 = NULL;
  int rc = -1;
  drop_outputs(s);
  if (!in->graph && capture(s, in, err))
    return -1;
  if (tgc_rt_cuda_event(c->cuda, &ev0, err) || tgc_rt_cuda_event(c->cuda, &ev1, err))
    goto out;
  for (int r = 0; r < n; r++)
    if (tgc_rt_cuda_record(c->cuda, ev0, err) || tgc_rt_cuda_graph_launch(c->cuda, in->graph, err) ||
        tgc_rt_cuda_record(c->cuda, ev1, err) || tgc_rt_cuda_elapsed(c->cuda, ev0, ev1, &ms[r], err))
      goto out;
  rc = check_flag(s, err);
out:
  tgc_rt_cuda_event_destroy(c->cuda, ev0);
  tgc_rt_cuda_event_destroy(c->cuda, ev1);
  if (rc)
    s->ran = false; /* what the buffers hold is not a run's result */
  return rc;
}

static int cuda_profile(tgc_rt_session *s, float *ms, int64_t *gemm_mnkb, unsigned *grid, tgc_rt_err *err) {
  cuda_impl *c = IMPL(s);
  const tgc_rt_program *p = s->p;
  const instance *in = c->cur;
  uint32_t n = p->nsteps;
  void **ev = tgc_xcalloc(n + 1, sizeof *ev);
  int rc = -1;
  drop_outputs(s);
  for (uint32_t k = 0; k <= n; k++)
    if (tgc_rt_cuda_event(c->cuda, &ev[k], err))
      goto out;
  if (tgc_rt_cuda_memset32(c->cuda, c->errflag, 0, 1, err) || tgc_rt_cuda_record(c->cuda, ev[0], err))
    goto out;
  for (uint32_t k = 0; k < n; k++) {
    const tgc_rt_pstep *st = &p->steps[k];
    const launch *l = st->gemm ? NULL : &in->ls[st->index];
    if ((!in->skip[k] && (l ? tgc_rt_cuda_launch(c->cuda, l->fn, l->grid, l->block, l->params, err)
                            : tgc_rt_blas_gemm(c->blas, &in->gs[st->index], err))) ||
        tgc_rt_cuda_record(c->cuda, ev[k + 1], err))
      goto out;
  }
  for (uint32_t k = 0; k < n; k++) {
    const tgc_rt_pstep *st = &p->steps[k];
    if (tgc_rt_cuda_elapsed(c->cuda, ev[k], ev[k + 1], &ms[k], err))
      goto out;
    const tgc_rt_gemm *g = st->gemm && !in->skip[k] ? &in->gs[st->index] : NULL;
    const launch *l = st->gemm || in->skip[k] ? NULL : &in->ls[st->index];
    for (int j = 0; j < 4; j++)
      gemm_mnkb[4 * k + j] = g ? (j == 0 ? g->m : j == 1 ? g->n : j == 2 ? g->k : g->batch) : 0;
    for (int j = 0; j < 3; j++)
      grid[3 * k + j] = l ? l->grid[j] : 0;
  }
  rc = check_flag(s, err);
out:
  for (uint32_t k = 0; k <= n; k++)
    tgc_rt_cuda_event_destroy(c->cuda, ev[k]);
  free(ev);
  if (rc)
    s->ran = false;
  return rc;
}

const tgc_rt_backend tgc_rt_cuda_backend = {cuda_create,         cuda_destroy,      cuda_bind,   cuda_run,
                                            cuda_fetch,          cuda_copy_to_device, cuda_stats,
                                            cuda_time_replays,   cuda_profile};

/* `tgc run --device=cuda`: the CUDA backend's executor. The module is optimized (-O2) and turned into a CUDA
 * program (codegen/cuda_codegen.h); its kernels are compiled with NVRTC (identical kernels once, in parallel, through
 * the on-disk kernel cache); weights are uploaded once; every intermediate is placed in one arena by a
 * liveness-based best-fit plan; the first run is queued step by step and later runs (--repeat) replay a CUDA
 * graph captured from the same steps. An index out of range in a gather sets a flag that is checked after each
 * run and reported at the launch's location. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../codegen/cuda_codegen.h"
#include "../../passes/pass_manager.h"
#include "../../runtime/artifact.h"
#include "../../runtime/cublaslt.h"
#include "../../runtime/cuda_driver.h"
#include "../../runtime/kcache.h"
#include "../../runtime/memplan.h"
#include "../../runtime/nvrtc.h"
#include "../../runtime/plan.h"
#include "../../runtime/program.h"
#include "driver.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- buffers ---- */

typedef struct {
  const tgc_value *v; /* the value owning the storage (aliases resolved) */
  tgc_cuda_buf_kind kind;
  size_t bytes;
  int first, last; /* steps that write it first and read it last (temporaries) */
  size_t offset;   /* in the arena (temporaries) */
  int64_t pitch;   /* elements per row in memory when rows are padded (a GEMM's D), else 0 */
  size_t tail;     /* bytes of zeros after the value (a weight padded for a GEMM) */
  tgc_rt_devptr p;
} buffer;

typedef struct {
  buffer *b;
  uint32_t n;
} buffers;

/* Top-level reshapes share their operand's storage. */
static const tgc_value *storage_of(const tgc_value *v) {
  while (v->def && v->def->opcode == TGC_OP_RESHAPE && v->def->parent && v->def->parent->parent_op == NULL)
    v = v->def->operands[0].value;
  return v;
}

int tgc_driver_cuda_generate(struct tgc_module *m, const char *entry, struct tgc_diag *diag,
                             struct tgc_cuda_module *cm) {
  const tgc_op *untyped = tgc_cuda_first_untyped(m, entry);
  if (untyped) {
    tgc_note(diag, untyped->loc, "the CUDA backend needs every value's type: running shape-infer first (add it to "
             "the pipeline, e.g. -O1 or --passes=shape-infer, to make this explicit)");
    tgc_pipeline *pl = tgc_pipeline_parse("shape-infer", diag);
    tgc_pm_options o;
    memset(&o, 0, sizeof o);
    o.dump = stderr;
    int rc = pl ? tgc_pipeline_run(pl, m, diag, &o) : 1;
    tgc_pipeline_destroy(pl);
    if (rc)
      return 1;
  }
  tgc_cuda_generate(m, entry, cm);
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

static size_t value_bytes(const tgc_value *v, const tgc_rt_plan *p, const int64_t *syms, int64_t *shape) {
  size_t n = 1;
  for (uint32_t d = 0; d < v->type->rank; d++) {
    int64_t s = eval_dim(v->type->dims[d], p, syms);
    if (shape)
      shape[d] = s;
    n *= (size_t)(s > 0 ? s : 0);
  }
  return n * tgc_rt_dtype_size(v->type->dtype);
}

static buffer *find_buf(buffers *bs, const tgc_value *v) {
  v = storage_of(v);
  for (uint32_t i = 0; i < bs->n; i++)
    if (bs->b[i].v == v)
      return &bs->b[i];
  return NULL;
}

/* Copies the LEN bytes of value V (stored in B) to host memory DST, dropping padding at the rows' ends. */
static int download(tgc_rt_cuda *cuda, const buffer *b, const tgc_value *v, void *dst, size_t len, tgc_rt_err *err) {
  if (!b->pitch || !len)
    return tgc_rt_cuda_download(cuda, dst, b->p, len, err);
  size_t es = tgc_rt_dtype_size(v->type->dtype), pitch = (size_t)b->pitch * es;
  size_t rows = b->bytes / pitch, row = len / rows;
  char *tmp = malloc(b->bytes);
  if (!tmp)
    return tgc_rt_errorf(err, "out of host memory for a %zu-byte result", b->bytes);
  int rc = tgc_rt_cuda_download(cuda, tmp, b->p, b->bytes, err);
  for (size_t r = 0; !rc && r < rows; r++)
    memcpy((char *)dst + r * row, tmp + r * pitch, row);
  free(tmp);
  return rc;
}

/* The temporaries' places in one arena: the artifact's stored plan when it holds for these sizes, else a plan
 * made now (runtime/memplan.c); returns the arena's size and says in *FROM where the plan came from. */
static size_t plan_memory(buffers *bs, int nsteps, const tgc_rt_artifact *art, const char **from) {
  tgc_rt_live *lv = tgc_xcalloc(bs->n + 1, sizeof *lv);
  size_t n = 0, top = 0;
  for (uint32_t i = 0; i < bs->n; i++)
    if (bs->b[i].kind == TGC_CUDA_BUF_TEMP)
      lv[n++] = (tgc_rt_live){bs->b[i].bytes, bs->b[i].first, bs->b[i].last, 0};
  size_t sz;
  const char *text = art ? tgc_rt_artifact_find(art, "plan", &sz) : NULL;
  char why[256];
  tgc_rt_memplan stored;
  bool reused = false;
  *from = "planned at load";
  if (text && tgc_rt_memplan_parse(text, sz, &stored, why, sizeof why) == 0) {
    if (tgc_rt_memplan_reuse(&stored, lv, n, &top, why, sizeof why) == 0) {
      reused = true;
      *from = "the artifact's";
    } else if (stored.placed) {
      tgc_strbuf dims;
      tgc_sb_init(&dims);
      for (uint32_t i = 0; i < stored.nsyms; i++)
        tgc_sb_printf(&dims, "%s%s=%lld", i ? "," : "", stored.sym_names[i], (long long)stored.sym_sizes[i]);
      fprintf(stderr, "tgc: note: the artifact's memory plan (made at %s) does not fit this run: %s; planning at "
              "load\n", dims.data ? dims.data : "static sizes", why);
      tgc_sb_free(&dims);
    }
    tgc_rt_memplan_free(&stored);
  } else if (text) {
    fprintf(stderr, "tgc: note: the artifact's memory plan is malformed (%s); planning at load\n", why);
  }
  if (!reused)
    top = tgc_rt_plan_memory(lv, n, nsteps, 256);
  n = 0;
  for (uint32_t i = 0; i < bs->n; i++)
    if (bs->b[i].kind == TGC_CUDA_BUF_TEMP)
      bs->b[i].offset = lv[n++].offset;
  free(lv);
  return top;
}

/* ---- kernels: identical sources (up to the kernel's name and heading comment) compile once ---- */

typedef struct {
  char *canon; /* the source with the name replaced by tgc_kernel and the heading comment dropped */
  bool from_artifact;
  void *image;
  size_t size;
  int rc;
  tgc_rt_err err;
  bool hit;
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
    if (u->from_artifact)
      continue;
    tgc_rt_kcache_stats st = {0, 0, 0, 0};
    u->rc = tgc_rt_kcache_compile(pool->nv, u->canon, "tgc_kernel", pool->arch, &st, &u->image, &u->size, &u->err);
    pthread_mutex_lock(&pool->lock);
    pool->st.hits += st.hits;
    pool->st.misses += st.misses;
    pool->st.corrupt += st.corrupt;
    pool->st.write_errors += st.write_errors;
    pthread_mutex_unlock(&pool->lock);
  }
}

/* ---- the run ---- */

typedef struct {
  void *fn;
  unsigned grid[3], block;
  void **params;
  tgc_rt_devptr *ptrs;
  long long *symv;
} launch;

static int enqueue(tgc_rt_cuda *cuda, tgc_rt_blas *blas, const tgc_cuda_module *cm, launch *ls, tgc_rt_gemm *gs,
                   tgc_rt_devptr errflag, tgc_rt_err *err) {
  if (tgc_rt_cuda_memset32(cuda, errflag, 0, 1, err))
    return -1;
  for (uint32_t s = 0; s < cm->nsteps; s++) {
    const tgc_cuda_step *st = &cm->steps[s];
    if (st->gemm) {
      if (tgc_rt_blas_gemm(blas, &gs[st->index], err))
        return -1;
    } else {
      launch *l = &ls[st->index];
      if (tgc_rt_cuda_launch(cuda, l->fn, l->grid, l->block, l->params, err)) {
        fprintf(stderr, "tgc: kernel %s failed to launch\n", cm->kernels[st->index].name);
        return -1;
      }
    }
  }
  return 0;
}

static int check_flag(tgc_rt_cuda *cuda, const tgc_cuda_module *cm, tgc_rt_devptr errflag) {
  tgc_rt_err err;
  int code = 0;
  if (tgc_rt_cuda_sync(cuda, &err) || tgc_rt_cuda_download(cuda, &code, errflag, sizeof code, &err)) {
    tgc_driver_rt_error("the CUDA backend", &err);
    return 1;
  }
  if (!code)
    return 0;
  int kcode;
  tgc_rt_kerr kind;
  tgc_rt_kerr_decode(code, &kcode, &kind);
  /* an arithmetic error is named by its op, as the CPU backend does: 'div': integer division by zero */
  const char *opname = kind == TGC_RT_KERR_DIV_ZERO ? "'div': " : kind == TGC_RT_KERR_NEG_EXPONENT ? "'pow': " : "";
  for (uint32_t k = 0; k < cm->nkernels; k++)
    if (cm->kernels[k].code == kcode) {
      const tgc_op *op = cm->kernels[k].op;
      fprintf(stderr, "%s:%u:%u: error: %s%s (in %s, on the GPU)\n", op->loc.file ? op->loc.file : "?", op->loc.line,
              op->loc.col, opname, tgc_rt_kerr_message(kind),
              op->opcode == TGC_OP_FUSION ? tgc_op_attr_str(op, "kind", "fusion") : tgc_op_name(op->opcode));
      return 1;
    }
  fprintf(stderr, "tgc: error: %s%s (on the GPU)\n", opname, tgc_rt_kerr_message(kind));
  return 1;
}

/* --profile: one more run with an event around every step; the steps' times by launch kind, the slowest
 * steps, and the sum against the run's own time. */
static int profile_steps(tgc_rt_cuda *cuda, tgc_rt_blas *blas, const tgc_cuda_module *cm, launch *ls, tgc_rt_gemm *gs,
                         tgc_rt_devptr errflag) {
  tgc_rt_err err;
  uint32_t n = cm->nsteps;
  void **ev = tgc_xcalloc(n + 1, sizeof *ev);
  float *ms = tgc_xcalloc(n + 1, sizeof *ms);
  int rc = 1;
  for (uint32_t s = 0; s <= n; s++)
    if (tgc_rt_cuda_event(cuda, &ev[s], &err))
      goto out;
  if (tgc_rt_cuda_memset32(cuda, errflag, 0, 1, &err) || tgc_rt_cuda_record(cuda, ev[0], &err))
    goto out;
  for (uint32_t s = 0; s < n; s++) {
    const tgc_cuda_step *st = &cm->steps[s];
    if ((st->gemm ? tgc_rt_blas_gemm(blas, &gs[st->index], &err)
                  : tgc_rt_cuda_launch(cuda, ls[st->index].fn, ls[st->index].grid, ls[st->index].block,
                                       ls[st->index].params, &err)) ||
        tgc_rt_cuda_record(cuda, ev[s + 1], &err))
      goto out;
  }
  for (uint32_t s = 0; s < n; s++)
    if (tgc_rt_cuda_elapsed(cuda, ev[s], ev[s + 1], &ms[s], &err))
      goto out;
  {
    const char *kinds[] = {"gemm", "attention", "rows", "pointwise", "epilogue", "operand", "constant"};
    double tot[8] = {0}, all = 0;
    unsigned cnt[8] = {0};
    for (uint32_t s = 0; s < n; s++) {
      const char *k = cm->steps[s].gemm ? "gemm" : cm->kernels[cm->steps[s].index].kind;
      uint32_t j = 0;
      while (j < 7 && strcmp(kinds[j], k) != 0)
        j++;
      tot[j] += ms[s];
      cnt[j]++;
      all += ms[s];
    }
    printf("profile: %u steps, %.4f ms in all (events between steps, so launch gaps count)\n", n, all);
    for (uint32_t j = 0; j < 8; j++)
      if (cnt[j])
        printf("profile:   %-10s %4u steps %9.4f ms %5.1f%%\n", j < 7 ? kinds[j] : "other", cnt[j], tot[j],
               100 * tot[j] / (all > 0 ? all : 1));
    for (int top = 0; top < 8; top++) {
      uint32_t best = n;
      for (uint32_t s = 0; s < n; s++)
        if (ms[s] >= 0 && (best == n || ms[s] > ms[best]))
          best = s;
      if (best == n)
        break;
      const tgc_cuda_step *st = &cm->steps[best];
      const tgc_op *op = st->gemm ? cm->gemms[st->index].op : cm->kernels[st->index].op;
      if (st->gemm)
        printf("profile:   step %3u %8.4f ms gemm [%lld x %lld x %lld, batch %lld] at line %u\n", best, ms[best],
               (long long)gs[st->index].m, (long long)gs[st->index].n, (long long)gs[st->index].k,
               (long long)gs[st->index].batch, op->loc.line);
      else
        printf("profile:   step %3u %8.4f ms %s (grid %u x %u x %u, block %u) at line %u\n", best, ms[best],
               cm->kernels[st->index].name, ls[st->index].grid[0], ls[st->index].grid[1], ls[st->index].grid[2],
               ls[st->index].block, op->loc.line);
      ms[best] = -1;
    }
  }
  rc = 0;
out:
  if (rc)
    tgc_driver_rt_error("the CUDA backend", &err);
  for (uint32_t s = 0; s <= n; s++)
    tgc_rt_cuda_event_destroy(cuda, ev[s]);
  free(ev);
  free(ms);
  return rc;
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x < y ? -1 : x > y;
}

/* The param step of P named NAME (the CUDA program's params are the plan's, by name), or NULL. */
static const tgc_rt_step *param_step(const tgc_rt_plan *p, const char *name) {
  for (uint32_t k = 0; k < p->nsteps; k++)
    if (p->steps[k].op == TGC_OP_PARAM && strcmp(tgc_rt_step_str(&p->steps[k], "name", ""), name) == 0)
      return &p->steps[k];
  return NULL;
}

int tgc_run_cuda(tgc_module *m, const tgc_func *f, const tgc_rt_plan *p, const tgc_rt_tensor *inputs,
                 tgc_rt_tensor *outputs, const tgc_rt_cpu_opts *wopts, const tgc_cuda_run_opts *ro) {
  tgc_rt_err err;
  int rc = 1;
  /* the device first: without one there is nothing to compile for */
  tgc_rt_cuda *cuda = tgc_rt_cuda_open(&err);
  if (!cuda) {
    tgc_driver_rt_error("the CUDA backend", &err);
    return 1;
  }
  double c0 = now_ms();
  /* the GPU runs the optimized module, as -O2 makes it (an artifact's module already is) */
  const tgc_rt_artifact *art = ro ? ro->artifact : NULL;
  tgc_diag diag;
  tgc_diag_init(&diag, stderr);
  tgc_pipeline *pl = tgc_pipeline_parse(tgc_pipeline_for_level(2), &diag);
  tgc_pm_options pmo;
  memset(&pmo, 0, sizeof pmo);
  pmo.dump = stderr;
  int prc = art ? 0 : pl ? tgc_pipeline_run(pl, m, &diag, &pmo) : 1;
  tgc_pipeline_destroy(pl);
  tgc_cuda_module cm;
  /* the function tgc run lowered into P, not the module's default entry: INPUTS are its arguments */
  const char *entry = f->name;
  prc = prc || tgc_driver_cuda_generate(m, entry, &diag, &cm);
  tgc_diag_free(&diag);
  if (prc) {
    tgc_rt_cuda_close(cuda);
    return 1;
  }
  f = cm.func;
  if (!f) {
    fprintf(stderr, "tgc: error: the optimized module has no function '@%s' for the CUDA backend\n", entry);
    tgc_rt_cuda_close(cuda);
    return 1;
  }
  if (cm.npending) {
    const tgc_op *op = cm.pending[0];
    bool fb = ro && ro->fallback;
    fprintf(stderr, "%s:%u:%u: %s: the CUDA backend cannot run this %s: %s; %s\n",
            op->loc.file ? op->loc.file : "?", op->loc.line, op->loc.col, fb ? "note" : "error",
            op->opcode == TGC_OP_FUSION ? tgc_op_attr_str(op, "kind", "fusion") : tgc_op_name(op->opcode), cm.why,
            fb ? "running on the CPU backend" : "use --device=cpu");
    tgc_rt_cuda_close(cuda);
    return fb ? 2 : 1;
  }
  tgc_rt_nvrtc *nv = NULL;
  tgc_rt_blas *blas = NULL;
  int64_t *syms = tgc_xcalloc(p->nsyms + 1, sizeof *syms);
  buffers bs = {NULL, 0};
  unique_kernel *uk = tgc_xcalloc(cm.nkernels + 1, sizeof *uk);
  uint32_t nuk = 0;
  uint32_t *kmap = tgc_xcalloc(cm.nkernels + 1, sizeof *kmap);
  launch *ls = tgc_xcalloc(cm.nkernels + 1, sizeof *ls);
  tgc_rt_gemm *gs = tgc_xcalloc(cm.ngemms + 1, sizeof *gs);
  tgc_rt_devptr arena = 0, errflag = 0;
  void *graph = NULL, *ev0 = NULL, *ev1 = NULL;
  float *times = NULL;
  if (cm.ngemms && !(blas = tgc_rt_blas_open(cuda, &err))) {
    tgc_driver_rt_error("the CUDA backend", &err);
    goto done;
  }
  /* the sizes at these inputs, checked before any buffer is sized: the CPU backend's rules and located errors
   * (a reshape of another element count, a pad past int64...), which the kernels would not notice */
  if (tgc_rt_bind_symbols(p, inputs, syms, &err) || tgc_rt_plan_check_sizes(p, syms, &err)) {
    tgc_driver_rt_error("checking the sizes", &err);
    goto done;
  }

  /* compile: each distinct kernel once, on as many threads as the machine has */
  for (uint32_t k = 0; k < cm.nkernels; k++) {
    char *canon = tgc_cuda_canonical_source(&cm.kernels[k]);
    uint32_t u = 0;
    while (u < nuk && strcmp(uk[u].canon, canon) != 0)
      u++;
    if (u == nuk)
      uk[nuk++].canon = canon;
    else
      free(canon);
    kmap[k] = u;
  }
  /* an artifact's kernels: CUBIN when it was built for this GPU's architecture, else its PTX (the driver
   * compiles PTX for the GPU); kernels it lacks are compiled with NVRTC */
  uint32_t from_art = 0, need = 0;
  size_t asz;
  const char *atarget = art ? tgc_rt_artifact_find(art, "target", &asz) : NULL;
  bool same_arch = atarget && asz == strlen(tgc_rt_cuda_arch(cuda)) && memcmp(atarget, tgc_rt_cuda_arch(cuda), asz) == 0;
  for (uint32_t u = 0; u < nuk; u++) {
    char key[17], nm[64];
    tgc_rt_kernel_key(uk[u].canon, key);
    snprintf(nm, sizeof nm, "kernel/%s.%s", key, same_arch ? "cubin" : "ptx");
    const void *img = art ? tgc_rt_artifact_find(art, nm, &asz) : NULL;
    if (img && (same_arch || (asz > 0 && ((const char *)img)[asz - 1] == 0))) {
      uk[u].image = tgc_xmalloc(asz);
      memcpy(uk[u].image, img, asz);
      uk[u].size = asz;
      uk[u].from_artifact = true;
      from_art++;
    } else {
      need++;
    }
  }
  if (need && !(nv = tgc_rt_nvrtc_open(&err))) {
    tgc_driver_rt_error("the CUDA backend", &err);
    goto done;
  }
  if (art && need)
    fprintf(stderr, "tgc: note: %u kernels are not in the artifact for %s; compiling them with NVRTC\n", need,
            tgc_rt_cuda_arch(cuda));
  compile_pool pool = {nv, tgc_rt_cuda_arch(cuda), uk, nuk, 0, PTHREAD_MUTEX_INITIALIZER, {0, 0, 0, 0}};
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  uint32_t nthreads = ncpu < 1 ? 1 : ncpu > 16 ? 16 : (uint32_t)ncpu;
  if (nthreads > nuk)
    nthreads = nuk ? nuk : 1;
  pthread_t th[16];
  for (uint32_t t = 0; t < nthreads; t++)
    pthread_create(&th[t], NULL, compile_worker, &pool);
  for (uint32_t t = 0; t < nthreads; t++)
    pthread_join(th[t], NULL);
  void **fns = tgc_xcalloc(nuk + 1, sizeof *fns);
  for (uint32_t u = 0; u < nuk; u++) {
    if (uk[u].rc || tgc_rt_cuda_load(cuda, uk[u].image, "tgc_kernel", &fns[u], &uk[u].err)) {
      for (uint32_t k = 0; k < cm.nkernels; k++)
        if (kmap[k] == u) {
          fprintf(stderr, "tgc: error: kernel %s: %s\n", cm.kernels[k].name, uk[u].err.msg);
          break;
        }
      free(fns);
      goto done;
    }
  }
  double c1 = now_ms();

  /* buffers: what every step reads and writes, then the function's results */
  {
    uint32_t nb;
    tgc_cuda_buffer *cb = tgc_cuda_buffers(&cm, &nb);
    bs.b = tgc_xcalloc(nb + 1, sizeof *bs.b);
    for (uint32_t i = 0; i < nb; i++) {
      uint64_t bytes;
      if (!tgc_cuda_buffer_bytes(&cb[i], p->sym_names, syms, p->nsyms, &bytes)) {
        const tgc_op *def = cb[i].v->def; /* the value whose buffer it is: at its op, else an argument */
        if (def && def->loc.file)
          fprintf(stderr, "%s:%u:%u: error: '%s': its result would need more than 2^62 bytes at these sizes\n",
                  def->loc.file, def->loc.line, def->loc.col,
                  def->opcode == TGC_OP_FUSION ? tgc_op_attr_str(def, "kind", "fusion") : tgc_op_name(def->opcode));
        else
          fprintf(stderr, "tgc: error: an argument's buffer would need more than 2^62 bytes at these sizes\n");
        free(cb);
        free(fns);
        goto done;
      }
      bs.b[i] = (buffer){cb[i].v, cb[i].kind, (size_t)bytes, cb[i].first, cb[i].last, 0, cb[i].pitch,
                         (size_t)cb[i].tail * tgc_rt_dtype_size(cb[i].v->type->dtype), 0};
    }
    bs.n = nb;
    free(cb);
  }
  const tgc_op *ret = f->body->last;
  const char *plan_from;
  size_t arena_bytes = plan_memory(&bs, (int)cm.nsteps, art, &plan_from), param_bytes = 0, naive = 0;
  for (uint32_t i = 0; i < bs.n; i++)
    if (bs.b[i].kind == TGC_CUDA_BUF_TEMP)
      naive += (bs.b[i].bytes + 255) & ~(size_t)255;
  if (tgc_rt_cuda_alloc(cuda, arena_bytes, &arena, &err) || tgc_rt_cuda_alloc(cuda, 4, &errflag, &err)) {
    tgc_driver_rt_error("the CUDA backend", &err);
    free(fns);
    goto done;
  }
  for (uint32_t i = 0; i < bs.n; i++) {
    buffer *b = &bs.b[i];
    if (b->kind == TGC_CUDA_BUF_TEMP) {
      b->p = arena + b->offset;
      continue;
    }
    if (tgc_rt_cuda_alloc(cuda, b->bytes + b->tail, &b->p, &err)) {
      tgc_driver_rt_error("the CUDA backend", &err);
      free(fns);
      goto done;
    }
    if (b->kind == TGC_CUDA_BUF_PARAM) {
      tgc_rt_tensor w;
      const char *name = tgc_op_attr_str(b->v->def, "name", "");
      const tgc_rt_step *ps = param_step(p, name);
      /* the one check of a weight, the CPU backend's, at the param of P (located, naming the weights file) */
      if (ps && tgc_rt_param_weight(ps, syms, wopts, &w, &err)) {
        tgc_driver_rt_error("binding the weights", &err);
        free(fns);
        goto done;
      }
      if (!ps || tgc_rt_tensor_nbytes(&w) != b->bytes) {
        fprintf(stderr, "tgc: error: internal: parameter '%s' of the CUDA program is %s the plan of '@%s'\n", name,
                ps ? "of another size than in" : "not in", f->name);
        free(fns);
        goto done;
      }
      param_bytes += b->bytes + b->tail;
      void *zeros = b->tail ? calloc(1, b->tail) : NULL;
      int bad = tgc_rt_cuda_upload(cuda, b->p, w.data, b->bytes, &err) ||
                (b->tail && !zeros && tgc_rt_errorf(&err, "out of host memory for %zu bytes of padding", b->tail)) ||
                (b->tail && tgc_rt_cuda_upload(cuda, b->p + b->bytes, zeros, b->tail, &err));
      free(zeros);
      if (bad) {
        tgc_driver_rt_error("the CUDA backend", &err);
        free(fns);
        goto done;
      }
    } else {
      uint32_t a = 0;
      while (a < f->body->nargs && f->body->args[a] != b->v)
        a++;
      /* the plan's inputs are the entry's arguments, in order (tgc_rt_bind_symbols checked their shapes) */
      const char *bad = a == f->body->nargs || a >= p->ninputs ? "the CUDA program reads a value that is not an "
                                                                 "argument of the entry function"
                        : tgc_rt_tensor_nbytes(&inputs[a]) != b->bytes ? "its size differs from the CUDA buffer's"
                        : tgc_rt_cuda_upload(cuda, b->p, inputs[a].data, b->bytes, &err) ? err.msg
                                                                                          : NULL;
      if (bad) {
        fprintf(stderr, "tgc: error: input %u ('%%%s' of '@%s') cannot be uploaded: %s\n", a,
                a < p->ninputs ? p->input_names[a] : "?", f->name, bad);
        free(fns);
        goto done;
      }
    }
  }

  /* kernel launches and GEMMs with their arguments bound */
  for (uint32_t k = 0; k < cm.nkernels; k++) {
    const tgc_cuda_kernel *kk = &cm.kernels[k];
    launch *l = &ls[k];
    l->fn = fns[kmap[k]];
    l->ptrs = tgc_xcalloc(kk->nargs + 2, sizeof *l->ptrs);
    l->symv = tgc_xcalloc(kk->nsyms + 1, sizeof *l->symv);
    l->params = tgc_xcalloc(kk->nargs + kk->nsyms + 2, sizeof *l->params);
    uint32_t np = 0;
    for (uint32_t j = 0; j < kk->nargs; j++) {
      l->ptrs[j] = find_buf(&bs, kk->args[j])->p;
      l->params[np++] = &l->ptrs[j];
    }
    for (uint32_t s = 0; s < kk->nsyms; s++) {
      for (uint32_t q = 0; q < p->nsyms; q++)
        if (strcmp(p->sym_names[q], kk->sym_names[s]) == 0)
          l->symv[s] = syms[q];
      l->params[np++] = &l->symv[s];
    }
    l->ptrs[kk->nargs] = errflag;
    l->params[np++] = &l->ptrs[kk->nargs];
    int64_t count = eval_dim(kk->count, p, syms), blocks = 0;
    l->block = kk->block;
    l->grid[1] = l->grid[2] = 1;
    switch (kk->grid) {
    case TGC_CUDA_GRID_ELEMENTS: blocks = (count + kk->per_block - 1) / kk->per_block; break;
    case TGC_CUDA_GRID_ROWS: blocks = count; break;
    case TGC_CUDA_GRID_ATTENTION:
      blocks = (count + kk->per_block - 1) / kk->per_block;
      l->grid[1] = (unsigned)eval_dim(kk->gy, p, syms);
      l->grid[2] = (unsigned)eval_dim(kk->gz, p, syms);
      break;
    }
    if (blocks < 0 || blocks > 2147483647LL) {
      fprintf(stderr, "tgc: error: kernel %s needs %lld blocks, more than one launch can have\n", kk->name,
              (long long)blocks);
      free(fns);
      goto done;
    }
    l->grid[0] = (unsigned)blocks;
  }
  free(fns);
  for (uint32_t g = 0; g < cm.ngemms; g++) {
    const tgc_cuda_gemm *cg = &cm.gemms[g];
    tgc_rt_gemm *r = &gs[g];
    r->dtype = cg->dtype;
    r->trans_a = cg->trans_a;
    r->trans_b = cg->trans_b;
    r->batch_a = cg->batch_a;
    r->batch_b = cg->batch_b;
    r->batch = eval_dim(cg->batch, p, syms);
    r->m = eval_dim(cg->m, p, syms);
    r->n = eval_dim(cg->n, p, syms);
    r->k = eval_dim(cg->k, p, syms);
    r->epilogue = (tgc_rt_epilogue)cg->epilogue;
    r->ldd = cg->ldd;
    if (cg->ldd) /* the weight has zero rows up to ldd: compute them (see tgc_cuda_gemm.ldd) */
      r->n = cg->ldd;
    r->a = find_buf(&bs, cg->a)->p;
    r->b = find_buf(&bs, cg->b)->p;
    r->c = cg->c ? find_buf(&bs, cg->c)->p : 0;
    r->bias = cg->bias ? find_buf(&bs, cg->bias)->p : 0;
    r->d = find_buf(&bs, cg->d)->p;
  }

  /* run 1: queued step by step */
  double r0 = now_ms();
  if (enqueue(cuda, blas, &cm, ls, gs, errflag, &err)) {
    tgc_driver_rt_error("the CUDA backend", &err);
    goto done;
  }
  if (check_flag(cuda, &cm, errflag))
    goto done;
  double r1 = now_ms();
  for (uint32_t i = 0; i < ret->noperands; i++) {
    const tgc_value *v = ret->operands[i].value;
    int64_t shape[TGC_RT_MAX_RANK];
    value_bytes(v, p, syms, shape);
    if (tgc_rt_tensor_alloc(&outputs[i], v->type->dtype, v->type->rank, shape, &err) ||
        download(cuda, find_buf(&bs, v), v, outputs[i].data, tgc_rt_tensor_nbytes(&outputs[i]), &err)) {
      tgc_driver_rt_error("the CUDA backend", &err);
      goto done;
    }
  }
  if (ro && ro->profile && profile_steps(cuda, blas, &cm, ls, gs, errflag))
    goto done;
  /* runs 2..N: one CUDA graph, captured from the same steps, replayed */
  int repeat = ro && ro->repeat > 1 ? ro->repeat : 1;
  if (repeat > 1) {
    times = tgc_xcalloc((size_t)repeat, sizeof *times);
    if (blas)
      tgc_rt_blas_capturing(blas, true);
    int cap = tgc_rt_cuda_capture_begin(cuda, &err) || enqueue(cuda, blas, &cm, ls, gs, errflag, &err) ||
              tgc_rt_cuda_capture_end(cuda, &graph, &err);
    if (blas)
      tgc_rt_blas_capturing(blas, false);
    if (cap || tgc_rt_cuda_event(cuda, &ev0, &err) ||
        tgc_rt_cuda_event(cuda, &ev1, &err)) {
      tgc_driver_rt_error("the CUDA backend", &err);
      goto done;
    }
    for (int r = 0; r < repeat - 1 + 3; r++) { /* three warm-up replays */
      if (tgc_rt_cuda_record(cuda, ev0, &err) || tgc_rt_cuda_graph_launch(cuda, graph, &err) ||
          tgc_rt_cuda_record(cuda, ev1, &err) || (r >= 3 && tgc_rt_cuda_elapsed(cuda, ev0, ev1, &times[r - 3], &err))) {
        tgc_driver_rt_error("the CUDA backend", &err);
        goto done;
      }
    }
    if (check_flag(cuda, &cm, errflag))
      goto done;
    /* the replayed graph must give what the first run gave, bit for bit */
    for (uint32_t i = 0; i < ret->noperands; i++) {
      size_t nb = tgc_rt_tensor_nbytes(&outputs[i]);
      void *again = tgc_xmalloc(nb ? nb : 1);
      int bad = download(cuda, find_buf(&bs, ret->operands[i].value), ret->operands[i].value, again, nb, &err) ||
                memcmp(again, outputs[i].data, nb) != 0;
      free(again);
      if (bad) {
        fprintf(stderr, "tgc: error: output %u of the CUDA graph replay differs from the first run\n", i);
        goto done;
      }
    }
  }
  tgc_rt_kcache_stats kst = pool.st;
  fprintf(stderr, "cuda: %u steps (%u kernels, %u distinct, %u cuBLASLt GEMMs) on %s (%s); kernel cache: %u hits, %u "
          "misses; from the artifact: %u\n", cm.nsteps, cm.nkernels, nuk, cm.ngemms, tgc_rt_cuda_device_name(cuda),
          tgc_rt_cuda_arch(cuda), kst.hits, kst.misses, from_art);
  fprintf(stderr, "cuda: memory: weights %.2f MiB, intermediates %.2f MiB in one arena (%.2f MiB without reuse; "
          "plan: %s)\n", param_bytes / 1048576.0, arena_bytes / 1048576.0, naive / 1048576.0, plan_from);
  if (ro && ro->time) {
    printf("time: compile %.1f ms (optimize, generate, NVRTC or cache), first run %.3f ms\n", c1 - c0, r1 - r0);
    if (repeat > 1) {
      qsort(times, (size_t)repeat - 1, sizeof *times, cmp_float);
      printf("time: CUDA graph replay median %.4f ms, min %.4f ms over %d runs\n", times[(repeat - 1) / 2], times[0],
             repeat - 1);
    }
  }
  rc = 0;
done:
  free(times);
  tgc_rt_cuda_event_destroy(cuda, ev0);
  tgc_rt_cuda_event_destroy(cuda, ev1);
  tgc_rt_cuda_graph_destroy(cuda, graph);
  for (uint32_t k = 0; k < cm.nkernels; k++) {
    free(ls[k].ptrs);
    free(ls[k].symv);
    free(ls[k].params);
  }
  free(ls);
  free(gs);
  for (uint32_t u = 0; u < nuk; u++) {
    free(uk[u].canon);
    free(uk[u].image);
  }
  free(uk);
  free(kmap);
  for (uint32_t i = 0; i < bs.n; i++)
    if (bs.b[i].kind != TGC_CUDA_BUF_TEMP)
      tgc_rt_cuda_free(cuda, bs.b[i].p);
  free(bs.b);
  tgc_rt_cuda_free(cuda, arena);
  tgc_rt_cuda_free(cuda, errflag);
  free(syms);
  tgc_rt_blas_close(blas);
  tgc_rt_nvrtc_close(nv);
  tgc_rt_cuda_close(cuda);
  return rc;
}

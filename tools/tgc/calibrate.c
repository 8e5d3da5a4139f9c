/* `tgc calibrate`: runs a module on the CPU backend over calibration data (.npy files of samples, or seeded random
 * inputs) and writes it back with the statistics of every activation a matmul or attention reads, as calib.*
 * attributes (ir/calib.h) that the quantize pass reads. The module is otherwise as parsed, verified and
 * shape-inferred. Values are observed through the CPU backend's observer (runtime/plan.h). */
#define _XOPEN_SOURCE 700 /* clock_gettime, opendir, realpath */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../codegen/program_build.h"
#include "../../frontend/frontend.h"
#include "../../ir/calib.h"
#include "../../passes/pass_manager.h"
#include "../../runtime/session.h"
#include "driver.h"

typedef struct {
  const char *input, *output, *data, *weights, *method_text;
  tgc_calib_method method;
  tgc_sym_sizes dims;
  uint64_t nrandom, batch, seed;
  bool random_given, batch_given, seed_given, output_given;
} cal_opts;

static void calibrate_usage(FILE *out) {
  fputs("USAGE: tgc calibrate [options] FILE.tir (--data DIR | --random-inputs N) -o OUT.tir\n"
        "\n"
        "Runs the entry function (@main, else the first) on the CPU backend and writes the module with the\n"
        "statistics of every value a matmul or attention reads (calib.* attributes; see docs/cli.md).\n"
        "\n"
        "OPTIONS:\n"
        "  --data DIR               one NAME.npy per argument %NAME, samples stacked along dim 0\n"
        "  --random-inputs N        N runs on seeded random inputs instead (sizes from --dim)\n"
        "  --batch-size N           with --data: samples per run (default 32; the last run may have fewer)\n"
        "  --dim SYM=N[,SYM=N...]   sizes of symbols for --random-inputs (default 2; repeatable)\n"
        "  --method M               minmax, percentile:P (0 < P <= 100), entropy or mse (default minmax)\n"
        "  --seed N                 with --random-inputs: the seed (default 0)\n"
        "  --weights FILE           .safetensors weights (default: the module's 'weights' attribute)\n"
        "  -o FILE                  where to write the calibrated module (required; '-' is standard output)\n",
        out);
}

/* 0, 1 after an error (printed), -1 when --help was printed. */
static int parse_args(int argc, char **argv, cal_opts *o) {
  memset(o, 0, sizeof *o);
  o->batch = 32;
  o->method_text = "minmax"; /* the best of the four on the exported transformers (docs/quantization.md) */
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v;
    bool bad = false;
    unsigned long long u;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      calibrate_usage(stdout);
      return -1;
    } else if (strcmp(a, "-o") == 0 || (strncmp(a, "-o", 2) == 0 && a[2])) {
      if (a[2]) {
        o->output = a + 2;
      } else if (i + 1 < argc) {
        o->output = argv[++i];
      } else {
        fprintf(stderr, "tgc: error: '-o' needs a file name\n");
        return 1;
      }
      o->output_given = true;
    } else if ((v = tgc_driver_opt_value(argc, argv, &i, "--data", &bad))) {
      if (bad)
        return 1;
      o->data = v;
    } else if ((v = tgc_driver_opt_value(argc, argv, &i, "--random-inputs", &bad))) {
      if (bad || !tgc_driver_parse_uint("--random-inputs", v, 1, 1000000000, &u))
        return 1;
      o->nrandom = u;
      o->random_given = true;
    } else if ((v = tgc_driver_opt_value(argc, argv, &i, "--batch-size", &bad))) {
      if (bad || !tgc_driver_parse_uint("--batch-size", v, 1, 1000000000, &u))
        return 1;
      o->batch = u;
      o->batch_given = true;
    } else if ((v = tgc_driver_opt_value(argc, argv, &i, "--seed", &bad))) {
      /* up to INT64_MAX: the seed is kept as the module's calib.seed, an integer attribute */
      if (bad || !tgc_driver_parse_uint("--seed", v, 0, INT64_MAX, &u))
        return 1;
      o->seed = u;
      o->seed_given = true;
    } else if ((v = tgc_driver_opt_value(argc, argv, &i, "--method", &bad))) {
      if (bad)
        return 1;
      o->method_text = v;
    } else if ((v = tgc_driver_opt_value(argc, argv, &i, "--weights", &bad))) {
      if (bad)
        return 1;
      o->weights = v;
    } else if ((v = tgc_driver_opt_value(argc, argv, &i, "--dim", &bad))) {
      if (bad || tgc_driver_parse_dims(v, &o->dims))
        return 1;
    } else if (tgc_driver_positional("calibrate", a, &o->input)) {
      return 1;
    }
  }
  tgc_strbuf why;
  tgc_sb_init(&why);
  bool ok = tgc_calib_method_parse(o->method_text, &o->method, &why);
  if (!ok)
    fprintf(stderr, "tgc: error: bad '--method %s': %s\n", o->method_text, why.data);
  tgc_sb_free(&why);
  if (!ok)
    return 1;
  const char *err = !o->input                   ? "no input file (try 'tgc calibrate --help')"
                    : !o->output_given          ? "'tgc calibrate' needs -o FILE, the calibrated module's path"
                    : !o->data && !o->random_given ? "'tgc calibrate' needs calibration data: --data DIR or "
                                                     "--random-inputs N"
                    : o->data && o->random_given ? "--data and --random-inputs exclude each other"
                    : o->random_given && o->batch_given ? "--batch-size applies to --data (with --random-inputs, "
                                                          "--dim sets the sizes of each run)"
                    : o->data && o->seed_given   ? "--seed applies to --random-inputs, not to --data"
                                                 : NULL;
  if (err) {
    fprintf(stderr, "tgc: error: %s\n", err);
    return 1;
  }
  return 0;
}

/* ---- statistics ---- */

/* What is gathered of one observed value across every run. */
typedef struct {
  tgc_value *v;
  char label[160];          /* "%name (FILE:LINE:COL)" for messages */
  double absmax, min, max;  /* over the finite elements */
  uint64_t count, nonfinite;
  double *chmax;            /* per index of the last dim */
  int64_t nch;
  uint64_t *hist;           /* TGC_CALIB_BINS counts (pass 2) */
} vstat;

typedef struct {
  vstat *stats;
  uint32_t nstats;
  int32_t *step_stat; /* per plan step: index into STATS, or -1 */
  int pass;           /* 1: absmax, min, max, chmax; 2: the histogram */
} observed;

static int accumulate(vstat *s, const tgc_rt_tensor *t, int pass, tgc_rt_err *err) {
  size_t n = tgc_rt_tensor_numel(t);
  if (pass == 2) {
    if (!(s->absmax > 0))
      return 0;
    for (size_t e = 0; e < n; e++) {
      double x = tgc_rt_get(t, e);
      if (isfinite(x))
        s->hist[tgc_calib_bin(fabs(x), s->absmax)]++;
    }
    return 0;
  }
  int64_t nch = t->rank ? t->shape[t->rank - 1] : 1;
  if (nch > s->nch) { /* the last dim may be a symbol: grow to the largest size seen */
    if (nch > ((int64_t)1 << 40))
      return tgc_rt_errorf(err, "error: %s: its last dim (%lld) is too large for per-channel statistics", s->label,
                           (long long)nch);
    s->chmax = tgc_xrealloc(s->chmax, sizeof *s->chmax * (size_t)nch);
    for (int64_t c = s->nch; c < nch; c++)
      s->chmax[c] = 0;
    s->nch = nch;
  }
  for (size_t e = 0; e < n; e++) {
    double x = tgc_rt_get(t, e);
    if (!isfinite(x)) {
      s->nonfinite++;
      continue;
    }
    double a = fabs(x);
    size_t c = nch > 0 ? e % (size_t)nch : 0;
    if (s->count == 0) {
      s->min = s->max = x;
    } else {
      s->min = x < s->min ? x : s->min;
      s->max = x > s->max ? x : s->max;
    }
    s->absmax = a > s->absmax ? a : s->absmax;
    s->chmax[c] = a > s->chmax[c] ? a : s->chmax[c];
    s->count++;
  }
  return 0;
}

static int observe(void *user, const tgc_rt_plan *plan, uint32_t step, const tgc_rt_tensor *outs, tgc_rt_err *err) {
  (void)plan;
  observed *ob = user;
  int32_t k = ob->step_stat[step];
  return k < 0 ? 0 : accumulate(&ob->stats[k], &outs[0], ob->pass, err);
}

/* ---- progress ---- */

typedef struct {
  bool tty;
  double t0, last;
  uint64_t done, total; /* samples over every pass */
  uint64_t per_pass;
  int npasses;
} progress;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress_show(progress *p, bool final) {
  if (!p->tty)
    return;
  double t = now_s();
  if (!final && t - p->last < 0.1)
    return;
  p->last = t;
  uint64_t in_pass = p->done % p->per_pass ? p->done % p->per_pass : p->done ? p->per_pass : 0;
  int pass = p->done == 0 ? 1 : (int)((p->done - 1) / p->per_pass) + 1;
  char head[64] = "";
  if (p->npasses > 1)
    snprintf(head, sizeof head, "pass %d/%d, ", pass, p->npasses);
  if (final) {
    fprintf(stderr, "\rcalibrate: %llu/%llu samples, done in %.1f s\033[K\n", (unsigned long long)in_pass,
            (unsigned long long)p->per_pass, t - p->t0);
  } else if (p->done == 0) {
    fprintf(stderr, "\rcalibrate: %s0/%llu samples\033[K", head, (unsigned long long)p->per_pass);
  } else {
    double left = (t - p->t0) / (double)p->done * (double)(p->total - p->done);
    fprintf(stderr, "\rcalibrate: %s%llu/%llu samples, %.1f s left\033[K", head, (unsigned long long)in_pass,
            (unsigned long long)p->per_pass, left);
  }
  fflush(stderr);
}

/* ---- calibration data ---- */

typedef struct {
  const tgc_rt_plan *p;
  const cal_opts *o;
  tgc_rt_tensor *full; /* --data: every input's samples */
  uint64_t nsamples;   /* --data: rows; --random-inputs: runs */
  int64_t *syms;       /* --random-inputs: the sizes of every run */
} dataset;

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Reads DIR/NAME.npy for every input and checks them against the plan: every file there, no other .npy file,
 * each of the declared dtype and rank, dim 0 the function's batch symbol, one sample count. 1 after an error. */
static int load_data(dataset *d) {
  const tgc_rt_plan *p = d->p;
  const char *dir = d->o->data;
  d->full = tgc_xcalloc(p->ninputs + 1, sizeof *d->full);
  DIR *dh = opendir(dir);
  if (!dh) {
    fprintf(stderr, "tgc: error: cannot open the --data directory '%s'\n", dir);
    return 1;
  }
  int rc = 0;
  for (struct dirent *e; !rc && (e = readdir(dh));) {
    if (!ends_with(e->d_name, ".npy") || e->d_name[0] == '.')
      continue;
    size_t n = strlen(e->d_name) - 4;
    uint32_t i = 0;
    while (i < p->ninputs && !(strlen(p->input_names[i]) == n && strncmp(p->input_names[i], e->d_name, n) == 0))
      i++;
    if (i == p->ninputs) {
      fprintf(stderr, "tgc: error: '%s/%s' matches no argument of '@%s' (its arguments are:", dir, e->d_name,
              p->name);
      for (uint32_t j = 0; j < p->ninputs; j++)
        fprintf(stderr, " %%%s", p->input_names[j]);
      fprintf(stderr, ")\n");
      rc = 1;
    }
  }
  closedir(dh);
  if (rc)
    return 1;
  int64_t batch_sym = -1;
  for (uint32_t i = 0; i < p->ninputs; i++) {
    const tgc_rt_type *ty = &p->input_types[i];
    size_t plen = strlen(dir) + strlen(p->input_names[i]) + 8;
    char *path = tgc_xmalloc(plen);
    snprintf(path, plen, "%s/%s.npy", dir, p->input_names[i]);
    tgc_rt_err err = {""};
    rc = 1;
    const tgc_rt_poly *d0 = ty->rank ? &ty->dims[0] : NULL;
    bool bare = d0 && d0->nterms == 1 && d0->terms[0].coeff == 1 && d0->terms[0].nsyms == 1;
    if (access(path, F_OK) != 0) {
      fprintf(stderr, "tgc: error: missing '%s': --data needs one NAME.npy for every argument %%NAME of '@%s'\n",
              path, p->name);
    } else if (tgc_rt_npy_read(path, &d->full[i], &err)) {
      tgc_driver_rt_error("reading --data", &err);
    } else if (d->full[i].dtype != ty->dtype || d->full[i].rank != ty->rank) {
      char got[64];
      tgc_rt_shape_str(d->full[i].rank, d->full[i].shape, got, sizeof got);
      fprintf(stderr, "tgc: error: '%s' is %s%s, but argument %%%s is %s of rank %u\n", path,
              tgc_dtype_name(d->full[i].dtype), got, p->input_names[i], tgc_dtype_name(ty->dtype), ty->rank);
    } else if (!bare || (batch_sym >= 0 && d0->terms[0].syms[0] != (uint32_t)batch_sym)) {
      fprintf(stderr, "tgc: error: argument %%%s: --data splits samples along dim 0, which must be the batch symbol "
              "of every argument (%s)\n", p->input_names[i],
              batch_sym >= 0 ? p->sym_names[batch_sym] : "a symbol such as B");
    } else if (i > 0 && (uint64_t)d->full[i].shape[0] != d->nsamples) {
      fprintf(stderr, "tgc: error: '%s' has %lld samples (dim 0), but '%s/%s.npy' has %llu\n", path,
              (long long)d->full[i].shape[0], dir, p->input_names[0], (unsigned long long)d->nsamples);
    } else {
      batch_sym = d0->terms[0].syms[0];
      d->nsamples = (uint64_t)d->full[i].shape[0];
      rc = 0;
    }
    free(path);
    if (rc)
      return 1;
  }
  if (p->ninputs == 0) {
    fprintf(stderr, "tgc: error: '@%s' has no arguments to calibrate with --data\n", p->name);
    return 1;
  }
  if (d->nsamples == 0) {
    fprintf(stderr, "tgc: error: the .npy files of '%s' hold no samples\n", dir);
    return 1;
  }
  /* --dim with --data: a check of the sizes the files give */
  for (uint32_t k = 0; k < d->o->dims.n; k++) {
    uint32_t s = 0;
    while (s < p->nsyms && strcmp(p->sym_names[s], d->o->dims.names[k]) != 0)
      s++;
    if (s == p->nsyms) {
      fprintf(stderr, "tgc: error: '--dim %s=%lld': no such symbol in the entry function\n", d->o->dims.names[k],
              (long long)d->o->dims.sizes[k]);
      return 1;
    }
    if ((int64_t)s == batch_sym) {
      fprintf(stderr, "tgc: error: '--dim %s=%lld': with --data, the batch symbol %s is set by --batch-size\n",
              d->o->dims.names[k], (long long)d->o->dims.sizes[k], p->sym_names[s]);
      return 1;
    }
  }
  if (d->o->dims.n) {
    int64_t *syms = tgc_xcalloc(p->nsyms + 1, sizeof *syms);
    tgc_rt_err err = {""};
    rc = tgc_rt_bind_symbols(p, d->full, syms, &err);
    if (rc)
      tgc_driver_rt_error("binding the sizes of --data", &err);
    for (uint32_t k = 0; !rc && k < d->o->dims.n; k++) {
      uint32_t s = 0;
      while (strcmp(p->sym_names[s], d->o->dims.names[k]) != 0)
        s++;
      if (syms[s] != d->o->dims.sizes[k]) {
        fprintf(stderr, "tgc: error: '--dim %s=%lld', but the files of '%s' make %s %lld\n", d->o->dims.names[k],
                (long long)d->o->dims.sizes[k], d->o->data, p->sym_names[s], (long long)syms[s]);
        rc = 1;
      }
    }
    free(syms);
  }
  return rc;
}

/* The inputs of run R (a batch of --data, as views into the files' data, or fresh random values from *RNG) into
 * IN; SAMPLES receives how many samples the run counts for. 1 after an error. */
static int make_inputs(const dataset *d, uint64_t r, uint64_t *rng, tgc_rt_tensor *in, uint64_t *samples) {
  const tgc_rt_plan *p = d->p;
  if (!d->o->data) {
    *samples = 1;
    for (uint32_t i = 0; i < p->ninputs; i++)
      if (tgc_driver_random_input(p, i, d->syms, rng, &in[i]))
        return 1;
    return 0;
  }
  uint64_t b0 = r * d->o->batch, n = d->nsamples - b0 < d->o->batch ? d->nsamples - b0 : d->o->batch;
  *samples = n;
  for (uint32_t i = 0; i < p->ninputs; i++) {
    const tgc_rt_tensor *f = &d->full[i];
    size_t row = f->shape[0] ? tgc_rt_tensor_nbytes(f) / (size_t)f->shape[0] : 0;
    in[i] = *f;
    in[i].owned = false;
    in[i].shape[0] = (int64_t)n;
    in[i].data = (char *)f->data + row * b0;
  }
  return 0;
}

/* ---- which values ---- */

/* The values to observe: every operand of a top-level matmul or attention that depends on an argument of F. Each
 * becomes a vstat (arguments and single-result ops); a value of a multi-result op gets a note and is skipped. */
static void select_values(const tgc_func *f, tgc_diag *diag, vstat **out, uint32_t *nout, tgc_strmap *dep,
                          tgc_strmap *chosen) {
  const tgc_block *b = f->body;
  for (uint32_t i = 0; i < b->nargs; i++) {
    const tgc_value *v = b->args[i];
    tgc_strmap_put(dep, (const char *)&v, sizeof v, (void *)1);
  }
  uint32_t n = 0, cap = 0;
  vstat *st = NULL;
  for (const tgc_op *o = b->first; o; o = o->next) {
    bool d = false;
    for (uint32_t i = 0; i < o->noperands; i++) {
      const tgc_value *x = o->operands[i].value;
      d = d || tgc_strmap_get(dep, (const char *)&x, sizeof x) != NULL;
    }
    for (uint32_t r = 0; d && r < o->nresults; r++) {
      const tgc_value *v = &o->results[r];
      tgc_strmap_put(dep, (const char *)&v, sizeof v, (void *)1);
    }
    if (o->opcode != TGC_OP_MATMUL && o->opcode != TGC_OP_ATTENTION)
      continue;
    for (uint32_t i = 0; i < o->noperands; i++) {
      tgc_value *x = o->operands[i].value;
      if (!tgc_strmap_get(dep, (const char *)&x, sizeof x) || tgc_strmap_get(chosen, (const char *)&x, sizeof x))
        continue;
      tgc_strmap_put(chosen, (const char *)&x, sizeof x, (void *)1);
      if (x->def && x->def->nresults != 1) {
        tgc_note(diag, x->def->loc, "'%%%s', result #%u of '%s', feeds '%s' but gets no calibration statistics: "
                 "those of a multi-result op have no place to go", x->name ? x->name : "?", x->index,
                 tgc_op_name(x->def->opcode), tgc_op_name(o->opcode));
        continue;
      }
      if (n == cap) {
        cap = cap ? 2 * cap : 16;
        st = tgc_xrealloc(st, sizeof *st * cap);
      }
      vstat *s = &st[n++];
      memset(s, 0, sizeof *s);
      s->v = x;
      tgc_loc loc = x->def ? x->def->loc : x->loc;
      snprintf(s->label, sizeof s->label, "%%%s (%s:%u:%u)", x->name ? x->name : "?", loc.file ? loc.file : "?",
               loc.line, loc.col);
    }
  }
  *out = st;
  *nout = n;
}

/* ---- the command ---- */

/* One pass over the data: every run observed with OB->pass set. 1 after an error. */
static int run_pass(const dataset *d, const tgc_rt_cpu_opts *co, observed *ob, int32_t *arg_stat, progress *pr) {
  const tgc_rt_plan *p = d->p;
  uint64_t runs = d->o->data ? (d->nsamples + d->o->batch - 1) / d->o->batch : d->o->nrandom;
  uint64_t rng = d->o->seed; /* every pass sees the same inputs */
  tgc_rt_tensor *in = tgc_xcalloc(p->ninputs + 1, sizeof *in);
  tgc_rt_tensor *out = tgc_xcalloc(p->noutputs + 1, sizeof *out);
  int rc = 0;
  for (uint64_t r = 0; !rc && r < runs; r++) {
    uint64_t samples = 0;
    tgc_rt_err err = {""};
    rc = make_inputs(d, r, &rng, in, &samples);
    for (uint32_t i = 0; !rc && i < p->ninputs; i++)
      if (arg_stat[i] >= 0)
        rc = accumulate(&ob->stats[arg_stat[i]], &in[i], ob->pass, &err);
    if (!rc && tgc_rt_cpu_run(p, in, out, co, &err) == 0) {
      for (uint32_t i = 0; i < p->noutputs; i++)
        tgc_rt_tensor_free(&out[i]);
    } else if (!rc) {
      rc = 1;
    }
    if (rc && err.msg[0]) {
      char what[64];
      snprintf(what, sizeof what, "calibration run %llu", (unsigned long long)r + 1);
      tgc_driver_rt_error(what, &err);
    }
    for (uint32_t i = 0; i < p->ninputs; i++)
      tgc_rt_tensor_free(&in[i]); /* views of --data are not owned: nothing freed */
    pr->done += samples;
    progress_show(pr, false);
  }
  free(in);
  free(out);
  return rc;
}

int tgc_driver_calibrate(int argc, char **argv) {
  cal_opts o;
  tgc_diag diag;
  tgc_diag_init(&diag, stderr);
  char *text = NULL, *wpath = NULL;
  tgc_module *m = NULL;
  tgc_pipeline *pipe = NULL;
  tgc_rt_program *prog = NULL;
  tgc_rt_weights *weights = NULL;
  vstat *stats = NULL;
  uint32_t nstats = 0;
  int32_t *step_stat = NULL, *arg_stat = NULL;
  dataset d;
  memset(&d, 0, sizeof d);
  tgc_strmap dep, chosen;
  bool maps = false;
  int rc = parse_args(argc, argv, &o);
  if (rc) {
    rc = rc < 0 ? 0 : 1;
    goto done;
  }
  rc = 1;
  size_t len = 0;
  text = tgc_read_input(o.input, &len, NULL);
  if (!text)
    goto done;
  m = tgc_parse_module(strcmp(o.input, "-") == 0 ? "<stdin>" : o.input, text, len, &diag);
  if (!m || tgc_verify_module(m, &diag) != 0)
    goto done;
  tgc_calib_clear(m); /* a calibrated module is calibrated afresh */
  pipe = tgc_pipeline_parse("shape-infer", &diag);
  tgc_pm_options pm;
  memset(&pm, 0, sizeof pm);
  pm.dump = stderr;
  if (!pipe || tgc_pipeline_run(pipe, m, &diag, &pm) != 0)
    goto done;
  tgc_func *f = tgc_module_find_func(m, "main");
  f = f ? f : m->funcs;
  if (!f) {
    fprintf(stderr, "tgc: error: %s has no function to calibrate\n", o.input);
    goto done;
  }

  /* the values, and the plan steps that compute them: step k is the k-th op of the body (runtime/plan.h) */
  tgc_strmap_init(&dep, &m->arena);
  tgc_strmap_init(&chosen, &m->arena);
  maps = true;
  select_values(f, &diag, &stats, &nstats, &dep, &chosen);
  const tgc_program_opts po = {false, false};
  prog = tgc_program_build(m, f->name, &po);
  const tgc_rt_plan *p = prog->plan;
  step_stat = tgc_xmalloc(sizeof *step_stat * (p->nsteps + 1));
  arg_stat = tgc_xmalloc(sizeof *arg_stat * (p->ninputs + 1));
  for (uint32_t k = 0; k < p->nsteps; k++)
    step_stat[k] = -1;
  for (uint32_t i = 0; i < p->ninputs; i++)
    arg_stat[i] = -1;
  uint32_t k = 0;
  for (const tgc_op *op = f->body->first; op; op = op->next) {
    if (tgc_op_info_of(op->opcode)->flags & TGC_OPF_TERMINATOR)
      continue;
    TGC_ASSERT(k < p->nsteps && p->steps[k].op == op->opcode);
    for (uint32_t s = 0; s < nstats; s++)
      if (stats[s].v->def == op)
        step_stat[k] = (int32_t)s;
    k++;
  }
  TGC_ASSERT(k == p->nsteps);
  for (uint32_t s = 0; s < nstats; s++)
    if (!stats[s].v->def)
      arg_stat[stats[s].v->index] = (int32_t)s;

  /* data and weights */
  d.p = p;
  d.o = &o;
  if (o.data) {
    if (load_data(&d))
      goto done;
  } else {
    d.nsamples = o.nrandom;
    d.syms = tgc_xcalloc(p->nsyms + 1, sizeof *d.syms);
    if (tgc_driver_random_sizes(p, &o.dims, d.syms))
      goto done;
  }
  wpath = tgc_weights_path(o.input, o.weights, m);
  if (tgc_driver_open_weights(p, wpath, &weights))
    goto done;

  /* pass 1: ranges; pass 2 (every method but minmax): the histograms on [0, absmax] */
  observed ob = {stats, nstats, step_stat, 1};
  tgc_rt_observer observer = {observe, &ob};
  tgc_rt_cpu_opts co = {weights, NULL, &observer};
  bool hist = tgc_calib_method_needs_hist(&o.method);
  progress pr = {isatty(STDERR_FILENO) != 0, now_s(), 0, 0, 0, d.nsamples, hist ? 2 : 1};
  pr.total = pr.per_pass * (uint64_t)pr.npasses;
  progress_show(&pr, false);
  if (run_pass(&d, &co, &ob, arg_stat, &pr))
    goto done;
  if (hist) {
    for (uint32_t s = 0; s < nstats; s++)
      stats[s].hist = tgc_xcalloc(TGC_CALIB_BINS, sizeof *stats[s].hist);
    ob.pass = 2;
    if (run_pass(&d, &co, &ob, arg_stat, &pr))
      goto done;
  }
  progress_show(&pr, true);

  /* the statistics into the module */
  for (uint32_t s = 0; s < nstats; s++) {
    vstat *v = &stats[s];
    tgc_calib c;
    memset(&c, 0, sizeof c);
    c.absmax = v->absmax;
    c.min = v->count ? v->min : 0;
    c.max = v->count ? v->max : 0;
    c.amax = v->absmax;
    c.chmax = v->chmax;
    c.nch = (uint32_t)v->nch;
    if (hist && v->absmax > 0) {
      uint32_t i = tgc_calib_threshold(&o.method, v->hist);
      uint64_t above = 0;
      for (uint32_t b = i; b < TGC_CALIB_BINS; b++)
        above += v->hist[b];
      c.amax = tgc_calib_edge(i, v->absmax);
      c.clip = (double)above / (double)v->count;
    }
    if (v->nonfinite)
      fprintf(stderr, "tgc: warning: %s had %llu NaN or infinite elements, left out of its statistics\n", v->label,
              (unsigned long long)v->nonfinite);
    bool set = tgc_calib_set(m, v->v, &c);
    TGC_ASSERT(set); /* select_values keeps only values that can carry them */
  }
  tgc_driver_point_weights(m, wpath, o.output); /* before the calib.* attributes: the same order every time */
  /* the data's absolute path: quantize{accuracy=cos:X} re-reads it from wherever it runs */
  char *data_abs = o.data ? realpath(o.data, NULL) : NULL;
  tgc_calib_set_run(m, o.method_text, (int64_t)d.nsamples, data_abs ? data_abs : o.data, (int64_t)o.seed);
  free(data_abs);
  if (tgc_verify_module(m, &diag) != 0)
    goto done;
  tgc_strbuf out;
  tgc_sb_init(&out);
  tgc_print_module(m, &out);
  rc = tgc_driver_write_output(o.output, out.data ? out.data : "", out.len);
  tgc_sb_free(&out);

done:
  for (uint32_t s = 0; s < nstats; s++) {
    free(stats[s].chmax);
    free(stats[s].hist);
  }
  free(stats);
  free(step_stat);
  free(arg_stat);
  if (d.full && d.p)
    for (uint32_t i = 0; i < d.p->ninputs; i++)
      tgc_rt_tensor_free(&d.full[i]);
  free(d.full);
  free(d.syms);
  if (maps) {
    tgc_strmap_free(&dep);
    tgc_strmap_free(&chosen);
  }
  tgc_rt_weights_release(weights);
  free(wpath);
  tgc_rt_program_free(prog);
  tgc_pipeline_destroy(pipe);
  tgc_module_destroy(m);
  tgc_sym_sizes_free(&o.dims);
  tgc_diag_free(&diag);
  free(text);
  return rc;
}

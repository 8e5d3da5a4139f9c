/* `tgc run`: parse, verify and lower a module, bind its inputs (from .npy files or random values), load its
 * weights, run it on a backend and print (and optionally save) its outputs. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../codegen/lower.h"
#include "../../frontend/frontend.h"
#include "../../runtime/artifact.h"
#include "../../runtime/cuda.h"
#include "driver.h"

typedef struct {
  const char *name, *path;
  char *alloc; /* owns name */
} name_path;

typedef struct {
  const char *input;
  const char *weights;
  const char *entry;
  const char *device;
  name_path inputs[256], outputs[256], dims[64];
  int ninputs, noutputs, ndims;
  bool random_inputs, time, check, profile;
  uint64_t seed;
  int repeat;
} run_opts;

static void run_usage(FILE *out) {
  fputs("USAGE: tgc run [options] FILE.tir|FILE.tgc\n"
        "\n"
        "OPTIONS:\n"
        "  --input NAME=FILE.npy    bind argument %NAME of the entry function (repeatable)\n"
        "  --random-inputs          bind every argument not given by --input to random values\n"
        "  --seed N                 seed of the random inputs (default 0)\n"
        "  --dim SYM=N              size of symbolic dim SYM for random inputs (default 2)\n"
        "  --weights FILE           .safetensors weights (default: the module's 'weights' attribute, relative to\n"
        "                           the .tir file)\n"
        "  --output NAME=FILE.npy   save a result: NAME is its index or the returned value's name (repeatable)\n"
        "  --entry NAME             the function to run (default @main, else the first)\n"
        "  --device cpu|cuda|auto   the backend (default auto: cuda when a GPU and its driver are present, else cpu)\n"
        "  --check                  with --device=cuda: also run the CPU backend and compare every output\n"
        "  --repeat N               with --device=cuda: run N times, the runs after the first replaying one CUDA\n"
        "                           graph (timed with --time)\n"
        "  --time                   print the time of the run (cuda: compile, first run, graph replays)\n"
        "  --profile                with --device=cuda: time every step once and print where the time goes\n",
        out);
}

/* Accepts "--opt value" and "--opt=value". */
static const char *opt_value(int argc, char **argv, int *i, const char *opt) {
  size_t n = strlen(opt);
  const char *a = argv[*i];
  if (strncmp(a, opt, n) != 0)
    return NULL;
  if (a[n] == '=')
    return a + n + 1;
  if (a[n] != 0)
    return NULL;
  if (*i + 1 >= argc) {
    fprintf(stderr, "tgc: error: '%s' needs a value\n", opt);
    return "";
  }
  return argv[++*i];
}

static int split_pair(const char *opt, const char *v, name_path *out) {
  const char *eq = strchr(v, '=');
  if (!eq || eq == v || !eq[1]) {
    fprintf(stderr, "tgc: error: '%s' expects NAME=VALUE, not '%s'\n", opt, v);
    return 1;
  }
  char *name = tgc_xmalloc((size_t)(eq - v) + 1);
  memcpy(name, v, (size_t)(eq - v));
  name[eq - v] = 0;
  out->alloc = name;
  out->name = name[0] == '%' ? name + 1 : name;
  out->path = eq + 1;
  return 0;
}

static int parse_run_args(int argc, char **argv, run_opts *o) {
  memset(o, 0, sizeof *o);
  o->device = "auto";
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      run_usage(stdout);
      return -1;
    } else if ((v = opt_value(argc, argv, &i, "--input"))) {
      if (!*v || o->ninputs == 256 || split_pair("--input", v, &o->inputs[o->ninputs++]))
        return 1;
    } else if ((v = opt_value(argc, argv, &i, "--output"))) {
      if (!*v || o->noutputs == 256 || split_pair("--output", v, &o->outputs[o->noutputs++]))
        return 1;
    } else if ((v = opt_value(argc, argv, &i, "--dim"))) {
      if (!*v || o->ndims == 64 || split_pair("--dim", v, &o->dims[o->ndims++]))
        return 1;
    } else if ((v = opt_value(argc, argv, &i, "--weights"))) {
      if (!*v)
        return 1;
      o->weights = v;
    } else if ((v = opt_value(argc, argv, &i, "--entry"))) {
      if (!*v)
        return 1;
      o->entry = v[0] == '@' ? v + 1 : v;
    } else if ((v = opt_value(argc, argv, &i, "--device"))) {
      if (!*v)
        return 1;
      if (strcmp(v, "cpu") && strcmp(v, "cuda") && strcmp(v, "auto")) {
        fprintf(stderr, "tgc: error: unknown device '%s' (use cpu, cuda or auto)\n", v);
        return 1;
      }
      o->device = v;
    } else if ((v = opt_value(argc, argv, &i, "--seed"))) {
      char *end;
      errno = 0;
      unsigned long long s = strtoull(v, &end, 10);
      if (!*v || *end || errno) {
        fprintf(stderr, "tgc: error: '--seed' expects a non-negative integer, not '%s'\n", v);
        return 1;
      }
      o->seed = s;
    } else if (strcmp(a, "--random-inputs") == 0) {
      o->random_inputs = true;
    } else if (strcmp(a, "--check") == 0) {
      o->check = true;
    } else if (strcmp(a, "--time") == 0) {
      o->time = true;
    } else if (strcmp(a, "--profile") == 0) {
      o->profile = true;
    } else if ((v = opt_value(argc, argv, &i, "--repeat"))) {
      char *end;
      long n = strtol(v, &end, 10);
      if (*end || n < 1 || n > 1000000) {
        fprintf(stderr, "tgc: error: '--repeat %s': give a number of runs from 1 to 1000000\n", v);
        return 1;
      }
      o->repeat = (int)n;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "tgc: error: unknown argument '%s' for 'tgc run' (try 'tgc run --help')\n", a);
      return 1;
    } else {
      if (o->input) {
        fprintf(stderr, "tgc: error: more than one input file ('%s' and '%s')\n", o->input, a);
        return 1;
      }
      o->input = a;
    }
  }
  if (!o->input) {
    fprintf(stderr, "tgc: error: no input file (try 'tgc run --help')\n");
    return 1;
  }
  return 0;
}

static int random_input(const tgc_rt_plan *p, uint32_t i, const int64_t *syms, uint64_t *rng, tgc_rt_tensor *t) {
  const tgc_rt_type *ty = &p->input_types[i];
  int64_t shape[TGC_RT_MAX_RANK];
  TGC_ASSERT(ty->rank <= TGC_RT_MAX_RANK); /* tgc_rt_plan_check */
  for (uint32_t d = 0; d < ty->rank; d++) {
    if (!tgc_rt_poly_eval(&ty->dims[d], syms, &shape[d]) || shape[d] < 0) {
      fprintf(stderr, "tgc: error: dim %u of input '%%%s' is not a valid size with the given --dim values\n", d,
              p->input_names[i]);
      return 1;
    }
  }
  tgc_rt_err err;
  if (tgc_rt_tensor_alloc(t, ty->dtype, ty->rank, shape, &err)) {
    fprintf(stderr, "tgc: error: input '%%%s': %s\n", p->input_names[i], err.msg);
    return 1;
  }
  tgc_rt_fill_random(t, rng);
  return 0;
}

static void summarize(const char *label, const tgc_rt_tensor *t) {
  size_t n = tgc_rt_tensor_numel(t), nans = 0;
  double mn = INFINITY, mx = -INFINITY, sum = 0, sumsq = 0;
  for (size_t e = 0; e < n; e++) {
    double v = tgc_rt_get(t, e);
    if (isnan(v)) {
      nans++;
      continue;
    }
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
    sum += v;
    sumsq += v * v;
  }
  char shape[256];
  tgc_rt_shape_str(t->rank, t->shape, shape, sizeof shape);
  printf("%s: %s%s", label, tgc_dtype_name(t->dtype), shape);
  if (n > nans)
    printf("  min %.6g  max %.6g  mean %.6g  sum %.9g  l2 %.9g", mn, mx, sum / (double)(n - nans), sum, sqrt(sumsq));
  if (nans)
    printf("  nan %zu", nans);
  printf("\n");
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool block_has_params(const tgc_block *b) {
  for (const tgc_op *o = b->first; o; o = o->next)
    if (o->opcode == TGC_OP_PARAM || (o->region && block_has_params(o->region)))
      return true;
  return false;
}

char *tgc_weights_path(const char *input, const char *override, const tgc_module *m) {
  if (override)
    return strcpy(tgc_xmalloc(strlen(override) + 1), override);
  const tgc_attr *w = tgc_attrs_get(&m->attrs, "weights");
  if (!w || w->kind != TGC_ATTR_STR)
    return NULL;
  const char *slash = strrchr(input, '/');
  size_t dir = w->u.s[0] == '/' || !slash || strcmp(input, "-") == 0 ? 0 : (size_t)(slash - input) + 1;
  char *p = tgc_xmalloc(dir + strlen(w->u.s) + 1);
  memcpy(p, input, dir);
  strcpy(p + dir, w->u.s);
  return p;
}

/* --check: the CPU reference backend on the same inputs; every output within its dtype's tolerance. */
static int check_against_cpu(const tgc_rt_plan *p, const tgc_rt_tensor *inputs, const tgc_rt_tensor *got,
                             const tgc_rt_cpu_opts *copts) {
  tgc_rt_tensor *ref = tgc_xcalloc(p->noutputs + 1, sizeof *ref);
  tgc_rt_err err;
  int rc = 0;
  if (tgc_rt_cpu_run(p, inputs, ref, copts, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    free(ref);
    return 1;
  }
  for (uint32_t i = 0; i < p->noutputs; i++) {
    size_t n = tgc_rt_tensor_numel(&ref[i]);
    double num = 0, den = 0;
    bool nan = false;
    for (size_t e = 0; e < n; e++) {
      double a = tgc_rt_get(&got[i], e), b = tgc_rt_get(&ref[i], e);
      nan = nan || (isnan(a) != isnan(b));
      if (!isnan(a) && !isnan(b)) {
        num += (a - b) * (a - b);
        den += b * b;
      }
    }
    double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    tgc_dtype dt = ref[i].dtype;
    double tol = dt == TGC_DT_F32 || dt == TGC_DT_F64 ? 1e-5 : tgc_dtype_kind_of(dt) == TGC_DTK_FLOAT ? 1e-2 : 0;
    bool ok = !nan && rel <= tol;
    printf("check: output %u: relative error %.3g vs the CPU backend (tolerance %g) %s\n", i, rel, tol,
           ok ? "ok" : "FAIL");
    if (!ok) {
      fprintf(stderr, "tgc: error: output %u differs from the CPU backend\n", i);
      rc = 1;
    }
    tgc_rt_tensor_free(&ref[i]);
  }
  free(ref);
  return rc;
}

int tgc_driver_run(int argc, char **argv) {
  run_opts o;
  int rc = parse_run_args(argc, argv, &o);
  if (rc) {
    for (int k = 0; k < o.ninputs; k++)
      free(o.inputs[k].alloc);
    for (int k = 0; k < o.noutputs; k++)
      free(o.outputs[k].alloc);
    for (int k = 0; k < o.ndims; k++)
      free(o.dims[k].alloc);
    return rc < 0 ? 0 : 1;
  }
  size_t len = 0;
  tgc_rt_artifact *art = NULL;
  char *text = tgc_read_input(o.input, &len, &art);
  if (!text)
    return 1;
  tgc_diag diag;
  tgc_diag_init(&diag, stderr);
  rc = 1;
  tgc_module *m = tgc_parse_module(strcmp(o.input, "-") == 0 ? "<stdin>" : o.input, text, len, &diag);
  tgc_rt_safetensors *weights = NULL;
  tgc_rt_tensor *inputs = NULL, *outputs = NULL;
  const tgc_rt_plan *p = NULL;
  char *wpath = NULL;
  if (!m || tgc_verify_module(m, &diag) != 0)
    goto done;
  const tgc_func *f = o.entry ? tgc_module_find_func(m, o.entry) : tgc_module_find_func(m, "main");
  if (!f && !o.entry)
    f = m->funcs;
  if (!f) {
    fprintf(stderr, "tgc: error: %s has no function '@%s'\n", o.input, o.entry ? o.entry : "main");
    goto done;
  }
  p = tgc_lower_func(m, f);
  {
    tgc_rt_err perr;
    if (tgc_rt_plan_check(p, &perr)) {
      fprintf(stderr, "%s%s\n", strncmp(perr.msg, "error: ", 7) == 0 ? "tgc: " : "", perr.msg);
      goto done;
    }
  }

  /* inputs */
  inputs = tgc_xcalloc(p->ninputs + 1, sizeof *inputs);
  outputs = tgc_xcalloc(p->noutputs + 1, sizeof *outputs);
  for (int k = 0; k < o.ninputs; k++) {
    uint32_t i = 0;
    while (i < p->ninputs && strcmp(p->input_names[i], o.inputs[k].name) != 0)
      i++;
    if (i == p->ninputs) {
      fprintf(stderr, "tgc: error: '@%s' has no argument '%%%s'; its arguments are:", f->name, o.inputs[k].name);
      for (uint32_t j = 0; j < p->ninputs; j++)
        fprintf(stderr, " %%%s", p->input_names[j]);
      fprintf(stderr, "\n");
      goto done;
    }
    if (inputs[i].data) {
      fprintf(stderr, "tgc: error: input '%%%s' is given twice\n", o.inputs[k].name);
      goto done;
    }
    tgc_rt_err err;
    if (tgc_rt_npy_read(o.inputs[k].path, &inputs[i], &err)) {
      fprintf(stderr, "tgc: error: %s\n", err.msg);
      goto done;
    }
  }
  int64_t *syms = tgc_xcalloc(p->nsyms + 1, sizeof *syms);
  for (uint32_t s = 0; s < p->nsyms; s++)
    syms[s] = 2;
  for (int k = 0; k < o.ndims; k++) {
    uint32_t s = 0;
    while (s < p->nsyms && strcmp(p->sym_names[s], o.dims[k].name) != 0)
      s++;
    char *end;
    long long v = strtoll(o.dims[k].path, &end, 10);
    if (s == p->nsyms || *end || v < 0) {
      fprintf(stderr, "tgc: error: '--dim %s=%s': %s\n", o.dims[k].name, o.dims[k].path,
              s == p->nsyms ? "no such symbol in the entry function" : "the size must be a non-negative integer");
      free(syms);
      goto done;
    }
    syms[s] = v;
  }
  uint64_t rng = o.seed;
  for (uint32_t i = 0; i < p->ninputs; i++) {
    if (inputs[i].data)
      continue;
    if (!o.random_inputs) {
      fprintf(stderr, "tgc: error: no value for input '%%%s' (use --input %s=FILE.npy or --random-inputs)\n",
              p->input_names[i], p->input_names[i]);
      free(syms);
      goto done;
    }
    if (random_input(p, i, syms, &rng, &inputs[i])) {
      free(syms);
      goto done;
    }
  }
  free(syms);

  /* outputs to save */
  int save_index[256];
  for (int k = 0; k < o.noutputs; k++) {
    char *end;
    long idx = strtol(o.outputs[k].name, &end, 10);
    save_index[k] = -1;
    if (!*end && idx >= 0 && idx < (long)p->noutputs)
      save_index[k] = (int)idx;
    for (uint32_t j = 0; save_index[k] < 0 && j < p->noutputs; j++)
      if (strcmp(p->output_names[j], o.outputs[k].name) == 0)
        save_index[k] = (int)j;
    if (save_index[k] < 0) {
      fprintf(stderr, "tgc: error: '@%s' has no result '%s' (give an index 0..%u or a returned value's name)\n",
              f->name, o.outputs[k].name, p->noutputs ? p->noutputs - 1 : 0);
      goto done;
    }
  }

  /* weights */
  wpath = tgc_weights_path(o.input, o.weights, m);
  if (block_has_params(f->body)) {
    tgc_rt_err err;
    if (!wpath) {
      fprintf(stderr, "tgc: error: '@%s' has parameters, but no weights were given (--weights FILE.safetensors or "
              "a 'weights' module attribute)\n", f->name);
      goto done;
    }
    if (tgc_rt_st_open(wpath, &weights, &err)) {
      fprintf(stderr, "tgc: error: %s\n", err.msg);
      goto done;
    }
  }

  tgc_rt_cpu_opts copts = {weights, wpath};
  tgc_rt_err err;
  double t0 = now_ms();
  bool on_gpu = strcmp(o.device, "cuda") == 0 || (strcmp(o.device, "auto") == 0 && tgc_rt_cuda_available());
  if (on_gpu) {
    tgc_cuda_run_opts ro = {o.repeat, o.time, o.profile, strcmp(o.device, "auto") == 0, art};
    int crc = tgc_run_cuda(m, f, p, inputs, outputs, weights, &ro);
    if (crc == 1)
      goto done;
    on_gpu = crc == 0;
  }
  if (on_gpu) {
    if (o.check && check_against_cpu(p, inputs, outputs, &copts) != 0)
      goto done;
  } else if (tgc_rt_cpu_run(p, inputs, outputs, &copts, &err)) {
    /* op errors carry "file:line:col: error: "; the others "error: " and get the tool's name */
    fprintf(stderr, "%s%s\n", strncmp(err.msg, "error: ", 7) == 0 ? "tgc: " : "", err.msg);
    goto done;
  }
  double t1 = now_ms();
  for (uint32_t j = 0; j < p->noutputs; j++) {
    char label[128];
    snprintf(label, sizeof label, "output %u%s%s", j, p->output_names[j][0] ? " %" : "", p->output_names[j]);
    summarize(label, &outputs[j]);
  }
  if (o.time && !on_gpu)
    printf("time: %.3f ms (cpu)\n", t1 - t0);
  rc = 0;
  for (int k = 0; k < o.noutputs && rc == 0; k++) {
    if (tgc_rt_npy_write(o.outputs[k].path, &outputs[save_index[k]], &err)) {
      fprintf(stderr, "tgc: error: %s\n", err.msg);
      rc = 1;
    }
  }

done:
  if (p) {
    for (uint32_t i = 0; inputs && i < p->ninputs; i++)
      tgc_rt_tensor_free(&inputs[i]);
    for (uint32_t i = 0; outputs && i < p->noutputs; i++)
      tgc_rt_tensor_free(&outputs[i]);
  }
  free(inputs);
  free(outputs);
  free(wpath);
  if (weights)
    tgc_rt_st_close(weights);
  for (int k = 0; k < o.ninputs; k++)
    free(o.inputs[k].alloc);
  for (int k = 0; k < o.noutputs; k++)
    free(o.outputs[k].alloc);
  for (int k = 0; k < o.ndims; k++)
    free(o.dims[k].alloc);
  tgc_module_destroy(m);
  tgc_diag_free(&diag);
  free(text);
  tgc_rt_artifact_close(art);
  return rc;
}

/* `tgc run`: argument parsing and printing around sessions (runtime/session.h). A .tir is parsed, verified and
 * built into a program as given (the CPU backend runs it so; run_cuda.c optimizes it for the GPU); a model.tgc's
 * program is loaded without the parser. Inputs come from .npy files or random values, weights from a
 * safetensors file; the outputs are printed and optionally saved. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../../codegen/program_build.h"
#include "../../frontend/frontend.h"
#include "../../runtime/artifact.h"
#include "../../runtime/cuda_driver.h"
#include "../../runtime/session.h"
#include "driver.h"

typedef struct {
  const char *name, *path;
  char *alloc; /* owns name */
} name_path;

/* A growable list of NAME=VALUE options (no fixed limit on how many --input, --output or --dim are given). */
typedef struct {
  name_path *v;
  int n, cap;
} name_paths;

typedef struct {
  const char *input;
  const char *weights;
  const char *entry;
  const char *device;
  name_paths inputs, outputs;
  tgc_sym_sizes dims; /* every --dim's items (tgc_sym_sizes_parse) */
  bool random_inputs, time, check, profile, repeat_given;
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
        "  --dim SYM=N[,SYM=N...]   sizes of symbolic dims for random inputs (default 2; repeatable)\n"
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

/* Accepts "--opt value" and "--opt=value": the value, or NULL when ARGV[*I] is not OPT. A missing or empty value
 * is an error naming OPT (*BAD set). */
const char *tgc_driver_opt_value(int argc, char **argv, int *i, const char *opt, bool *bad) {
  size_t n = strlen(opt);
  const char *a = argv[*i], *v;
  if (strncmp(a, opt, n) != 0)
    return NULL;
  if (a[n] == '=') {
    v = a + n + 1;
  } else if (a[n] != 0) {
    return NULL;
  } else if (*i + 1 >= argc) {
    fprintf(stderr, "tgc: error: '%s' needs a value\n", opt);
    *bad = true;
    return "";
  } else {
    v = argv[++*i];
  }
  if (!*v) {
    fprintf(stderr, "tgc: error: '%s' needs a value, not an empty string\n", opt);
    *bad = true;
  }
  return v;
}

/* A decimal integer from LO to HI for OPT ("--seed"); no sign, spaces or trailing bytes. */
bool tgc_driver_parse_uint(const char *opt, const char *v, unsigned long long lo, unsigned long long hi,
                       unsigned long long *out) {
  char *end;
  errno = 0;
  unsigned long long x = v[0] >= '0' && v[0] <= '9' ? strtoull(v, &end, 10) : 0;
  if (v[0] < '0' || v[0] > '9' || *end || errno || x < lo || x > hi) {
    fprintf(stderr, "tgc: error: '%s' expects an integer from %llu to %llu, not '%s'\n", opt, lo, hi, v);
    return false;
  }
  *out = x;
  return true;
}

/* Appends NAME=VALUE to L; an error naming OPT when V is not of that form. */
static int split_pair(const char *opt, const char *v, name_paths *l) {
  const char *eq = strchr(v, '=');
  if (!eq || eq == v || !eq[1] || (eq == v + 1 && v[0] == '%')) {
    fprintf(stderr, "tgc: error: '%s' expects NAME=VALUE, not '%s'\n", opt, v);
    return 1;
  }
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 8;
    l->v = tgc_xrealloc(l->v, sizeof *l->v * (size_t)l->cap);
  }
  name_path *out = &l->v[l->n++];
  char *name = tgc_xmalloc((size_t)(eq - v) + 1);
  memcpy(name, v, (size_t)(eq - v));
  name[eq - v] = 0;
  out->alloc = name;
  out->name = name[0] == '%' ? name + 1 : name;
  out->path = eq + 1;
  return 0;
}

static void name_paths_free(name_paths *l) {
  for (int k = 0; k < l->n; k++)
    free(l->v[k].alloc);
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* Everything run_opts owns; the one cleanup of every exit of tgc run. */
static void run_opts_free(run_opts *o) {
  name_paths_free(&o->inputs);
  name_paths_free(&o->outputs);
  tgc_sym_sizes_free(&o->dims);
}

/* 0, 1 after an error (printed), -1 when --help was printed. O is filled (and owns memory) in every case. */
static int parse_run_args(int argc, char **argv, run_opts *o) {
  memset(o, 0, sizeof *o);
  o->device = "auto";
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v;
    bool bad = false;
    unsigned long long u;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      run_usage(stdout);
      return -1;
    } else if ((v = tgc_driver_opt_value(argc, argv, &i, "--input", &bad))) {
      if (bad || split_pair("--input", v, &o->inputs))
        return 1;
    } else if ((v = tgc_driver_opt_value(argc, argv, &i, "--output", &bad))) {
      if (bad || split_pair("--output", v, &o->outputs))
        return 1;
    } else if ((v = tgc_driver_opt_value(argc, argv, &i, "--dim", &bad))) {
      if (bad || tgc_driver_parse_dims(v, &o->dims))
        return 1;
    } else if ((v = tgc_driver_opt_value(argc, argv, &i, "--weights", &bad))) {
      if (bad)
        return 1;
      o->weights = v;
    } else if ((v = tgc_driver_opt_value(argc, argv, &i, "--entry", &bad))) {
      if (bad)
        return 1;
      o->entry = v[0] == '@' ? v + 1 : v;
      if (!*o->entry) {
        fprintf(stderr, "tgc: error: '--entry' needs a function name, not '%s'\n", v);
        return 1;
      }
    } else if ((v = tgc_driver_opt_value(argc, argv, &i, "--device", &bad))) {
      if (bad)
        return 1;
      if (strcmp(v, "cpu") && strcmp(v, "cuda") && strcmp(v, "auto")) {
        fprintf(stderr, "tgc: error: unknown device '%s' (use cpu, cuda or auto)\n", v);
        return 1;
      }
      o->device = v;
    } else if ((v = tgc_driver_opt_value(argc, argv, &i, "--seed", &bad))) {
      if (bad || !tgc_driver_parse_uint("--seed", v, 0, UINT64_MAX, &u))
        return 1;
      o->seed = u;
    } else if (strcmp(a, "--random-inputs") == 0) {
      o->random_inputs = true;
    } else if (strcmp(a, "--check") == 0) {
      o->check = true;
    } else if (strcmp(a, "--time") == 0) {
      o->time = true;
    } else if (strcmp(a, "--profile") == 0) {
      o->profile = true;
    } else if ((v = tgc_driver_opt_value(argc, argv, &i, "--repeat", &bad))) {
      if (bad || !tgc_driver_parse_uint("--repeat", v, 1, 1000000, &u))
        return 1;
      o->repeat = (int)u;
      o->repeat_given = true;
    } else if (tgc_driver_positional("run", a, &o->input)) {
      return 1;
    }
  }
  if (!o->input) {
    fprintf(stderr, "tgc: error: no input file (try 'tgc run --help')\n");
    return 1;
  }
  return 0;
}

int tgc_driver_parse_dims(const char *v, tgc_sym_sizes *dims) {
  tgc_strbuf why;
  tgc_sb_init(&why);
  bool ok = tgc_sym_sizes_parse(dims, v, &why);
  if (!ok)
    fprintf(stderr, "tgc: error: bad '--dim %s': %s\n", v, why.data);
  tgc_sb_free(&why);
  return ok ? 0 : 1;
}

int tgc_driver_random_sizes(const tgc_rt_plan *p, const tgc_sym_sizes *dims, int64_t *syms) {
  for (uint32_t s = 0; s < p->nsyms; s++)
    syms[s] = 2;
  for (uint32_t k = 0; k < dims->n; k++) {
    uint32_t s = 0;
    while (s < p->nsyms && strcmp(p->sym_names[s], dims->names[k]) != 0)
      s++;
    if (s == p->nsyms) {
      fprintf(stderr, "tgc: error: '--dim %s=%lld': no such symbol in the entry function\n", dims->names[k],
              (long long)dims->sizes[k]);
      return 1;
    }
    syms[s] = dims->sizes[k];
  }
  return 0;
}

/* Prints a runtime error: located messages ("file:line:col: error: ...") as they are, the others as "tgc: error:
 * ...". An empty message is a bug of the runtime (every failing path must set one): fatal in debug builds, else
 * a message naming STEP, so that the user never sees an exit 1 with nothing, or garbage, printed. */
void tgc_driver_rt_error(const char *step, const tgc_rt_err *err) {
  const char *msg = err->msg;
  if (!msg[0]) {
#ifndef NDEBUG
    tgc_fatal(__FILE__, __LINE__, "%s failed without an error message", step);
#endif
    fprintf(stderr, "tgc: error: %s failed without an error message (a bug in tgc)\n", step);
  } else if (strstr(msg, ": error: ")) {
    fprintf(stderr, "%s\n", msg);
  } else {
    fprintf(stderr, "tgc: %s%s\n", strncmp(msg, "error: ", 7) == 0 ? "" : "error: ", msg);
  }
}

int tgc_driver_random_input(const tgc_rt_plan *p, uint32_t i, const int64_t *syms, uint64_t *rng, tgc_rt_tensor *t) {
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
  tgc_rt_err err = {""};
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

bool tgc_driver_plan_has_params(const tgc_rt_plan *p) {
  for (uint32_t k = 0; k < p->nsteps; k++)
    if (p->steps[k].op == TGC_OP_PARAM || (p->steps[k].region && tgc_driver_plan_has_params(p->steps[k].region)))
      return true;
  return false;
}

/* OVERRIDE if given, else the weights file ATTR (a module's 'weights' attribute, a program's weights) resolved
 * against the directory of INPUT (tgc_rt_weights_resolve); NULL when there is none. */
static char *resolve_weights(const char *input, const char *override, const char *attr) {
  if (override)
    return strcpy(tgc_xmalloc(strlen(override) + 1), override);
  return attr ? tgc_rt_weights_resolve(input, attr) : NULL;
}

char *tgc_weights_path(const char *input, const char *override, const tgc_module *m) {
  const tgc_attr *w = tgc_attrs_get(&m->attrs, "weights");
  return resolve_weights(input, override, w && w->kind == TGC_ATTR_STR ? w->u.s : NULL);
}

int tgc_driver_positional(const char *cmd, const char *a, const char **input) {
  if (a[0] == '-' && a[1]) {
    fprintf(stderr, "tgc: error: unknown argument '%s' for 'tgc %s' (try 'tgc %s --help')\n", a, cmd, cmd);
    return 1;
  }
  if (*input) {
    fprintf(stderr, "tgc: error: more than one input file ('%s' and '%s')\n", *input, a);
    return 1;
  }
  *input = a;
  return 0;
}

int tgc_driver_open_weights(const tgc_rt_plan *p, const char *wpath, tgc_rt_weights **out) {
  *out = NULL;
  if (!tgc_driver_plan_has_params(p))
    return 0;
  tgc_rt_err err = {""};
  if (!wpath) {
    fprintf(stderr, "tgc: error: '@%s' has parameters, but no weights were given (--weights FILE.safetensors or "
            "a 'weights' module attribute)\n", p->name);
    return 1;
  }
  if (tgc_rt_weights_open(wpath, out, &err)) {
    tgc_driver_rt_error("opening the weights", &err);
    return 1;
  }
  return 0;
}

int tgc_driver_cpu_run(const tgc_rt_program *prog, const tgc_rt_tensor *inputs, tgc_rt_weights *w,
                       tgc_rt_tensor *outputs, tgc_rt_session **out, tgc_rt_err *err) {
  const tgc_rt_session_opts so = {TGC_RT_DEVICE_CPU, 0, NULL};
  tgc_rt_session *s = NULL;
  int rc = tgc_rt_session_create(prog, &so, &s, err) || (w && tgc_rt_session_bind_weights(s, w, err));
  for (uint32_t i = 0; !rc && i < prog->plan->ninputs; i++)
    rc = tgc_rt_session_set_input(s, i, &inputs[i], false, err);
  rc = rc || tgc_rt_session_run(s, err);
  for (uint32_t i = 0; !rc && i < prog->plan->noutputs; i++) {
    const tgc_rt_tensor *t;
    rc = tgc_rt_session_output(s, i, &t, err);
    if (!rc) {
      outputs[i] = *t;
      outputs[i].owned = false; /* the session's, until it ends */
    }
  }
  if (rc) {
    tgc_rt_session_destroy(s);
    return -1;
  }
  *out = s;
  return 0;
}

/* --check: the CPU reference backend on the same inputs; every output within its dtype's tolerance (an f32 or
 * f64 output of a program with fp8 GEMMs within TGC_RT_FP8_SUM_TOL: the tensor cores' fp8 sums). */
static int check_against_cpu(const tgc_rt_program *prog, const tgc_rt_tensor *inputs, const tgc_rt_tensor *got,
                             tgc_rt_weights *w, bool fp8) {
  const tgc_rt_plan *p = prog->plan;
  tgc_rt_tensor *ref = tgc_xcalloc(p->noutputs + 1, sizeof *ref);
  tgc_rt_err err = {""};
  tgc_rt_session *s;
  int rc = 0;
  if (tgc_driver_cpu_run(prog, inputs, w, ref, &s, &err)) {
    tgc_driver_rt_error("the CPU reference run of --check", &err);
    free(ref);
    return 1;
  }
  for (uint32_t i = 0; i < p->noutputs; i++) {
    tgc_rt_compare_result c;
    tgc_rt_compare(&got[i], &ref[i], &c);
    bool wide = fp8 && (ref[i].dtype == TGC_DT_F32 || ref[i].dtype == TGC_DT_F64) && c.tol < TGC_RT_FP8_SUM_TOL;
    if (wide) {
      c.tol = TGC_RT_FP8_SUM_TOL;
      c.ok = c.mismatches == 0 && c.rel <= c.tol;
    }
    bool ok = c.ok;
    printf("check: output %u: relative error %.3g vs the CPU backend (tolerance %g%s)", i, c.rel, c.tol,
           wide ? ": fp8 tensor-core sums" : "");
    if (c.mismatches)
      printf("; %zu %s", c.mismatches,
             tgc_dtype_kind_of(ref[i].dtype) == TGC_DTK_FLOAT ? "NaN or infinite values where the CPU backend differs"
                                                              : "elements differ");
    printf(" %s\n", ok ? "ok" : "FAIL");
    if (!ok) {
      fprintf(stderr, "tgc: error: output %u differs from the CPU backend\n", i);
      rc = 1;
    }
  }
  tgc_rt_session_destroy(s);
  free(ref);
  return rc;
}

/* The options that only the CUDA backend acts on: given to a run on the CPU, each is named in a warning rather
 * than silently ignored (a warning, not an error: with --device=auto the same command runs on machines with and
 * without a GPU). */
static void warn_gpu_only(const run_opts *o) {
  const char *gpu_only[3] = {o->check ? "--check" : NULL, o->profile ? "--profile" : NULL,
                             o->repeat_given ? "--repeat" : NULL};
  bool cpu = strcmp(o->device, "cpu") == 0;
  for (int k = 0; k < 3; k++)
    if (gpu_only[k])
      fprintf(stderr, "tgc: warning: %s has no effect with %s\n", gpu_only[k],
              cpu ? "--device=cpu" : "the CPU backend (--device=auto chose it: no GPU, or a module the CUDA "
                                     "backend cannot run)");
}

/* Whether PATH is a model.tgc (a regular file the artifact reader accepts): its program is loaded without the
 * parser, and one without a "program" section is an error of the loader's, never run from its IR. An artifact of
 * an older format is refused by tgc_read_input, which says so. */
static bool has_program(const char *path) {
  tgc_rt_artifact *a;
  tgc_rt_err err;
  struct stat st;
  /* quietly, and regular files only (a FIFO is read once, by tgc_read_input, which reports what is wrong) */
  if (strcmp(path, "-") == 0 || stat(path, &st) != 0 || !S_ISREG(st.st_mode) || tgc_rt_artifact_open(path, &a, &err))
    return false;
  tgc_rt_artifact_close(a);
  return true;
}

int tgc_driver_run(int argc, char **argv) {
  /* every exit after this point goes through 'done', which frees what is set here */
  run_opts o;
  tgc_diag diag;
  tgc_diag_init(&diag, stderr);
  char *text = NULL;
  tgc_module *m = NULL;
  tgc_rt_program *prog = NULL; /* the loaded program, or the module's as given (the CPU backend runs it) */
  tgc_rt_weights *weights = NULL;
  tgc_rt_session *cpu = NULL;
  tgc_rt_tensor *inputs = NULL, *outputs = NULL;
  const tgc_rt_plan *p = NULL;
  char *wpath = NULL;
  int64_t *syms = NULL;
  int *save_index = NULL;
  bool loaded = false;    /* PROG came from a model.tgc */
  bool optimized = false; /* M is already optimized (the IR of an older model.tgc) */
  int rc = parse_run_args(argc, argv, &o);
  if (rc) {
    rc = rc < 0 ? 0 : 1;
    goto done;
  }
  rc = 1;
  if (has_program(o.input)) {
    tgc_rt_err err = {""};
    if (tgc_rt_program_load(o.input, &prog, &err)) {
      tgc_driver_rt_error("loading the program", &err);
      goto done;
    }
    loaded = true;
    if (o.entry && strcmp(o.entry, prog->plan->name) != 0) {
      fprintf(stderr, "tgc: error: %s has no function '@%s'\n", o.input, o.entry);
      goto done;
    }
    wpath = resolve_weights(o.input, o.weights, prog->weights);
  } else {
    size_t len = 0;
    tgc_rt_artifact *art = NULL;
    text = tgc_read_input(o.input, &len, &art);
    optimized = art != NULL; /* an older artifact: its IR is optimized already */
    tgc_rt_artifact_close(art);
    if (!text)
      goto done;
    m = tgc_parse_module(strcmp(o.input, "-") == 0 ? "<stdin>" : o.input, text, len, &diag);
    if (!m || tgc_verify_module(m, &diag) != 0)
      goto done;
    const tgc_func *f = o.entry ? tgc_module_find_func(m, o.entry) : tgc_module_find_func(m, "main");
    if (!f && !o.entry)
      f = m->funcs;
    if (!f) {
      fprintf(stderr, "tgc: error: %s has no function '@%s'\n", o.input, o.entry ? o.entry : "main");
      goto done;
    }
    const tgc_program_opts po = {false, false};
    prog = tgc_program_build(m, f->name, &po);
    wpath = tgc_weights_path(o.input, o.weights, m);
  }
  p = prog->plan;
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
  for (int k = 0; k < o.inputs.n; k++) {
    uint32_t i = 0;
    while (i < p->ninputs && strcmp(p->input_names[i], o.inputs.v[k].name) != 0)
      i++;
    if (i == p->ninputs) {
      fprintf(stderr, "tgc: error: '@%s' has no argument '%%%s'; its arguments are:", p->name, o.inputs.v[k].name);
      for (uint32_t j = 0; j < p->ninputs; j++)
        fprintf(stderr, " %%%s", p->input_names[j]);
      fprintf(stderr, "\n");
      goto done;
    }
    if (inputs[i].data) {
      fprintf(stderr, "tgc: error: input '%%%s' is given twice\n", o.inputs.v[k].name);
      goto done;
    }
    tgc_rt_err err = {""};
    if (tgc_rt_npy_read(o.inputs.v[k].path, &inputs[i], &err)) {
      tgc_driver_rt_error("reading an --input", &err);
      goto done;
    }
  }
  syms = tgc_xcalloc(p->nsyms + 1, sizeof *syms);
  if (tgc_driver_random_sizes(p, &o.dims, syms))
    goto done;
  uint64_t rng = o.seed;
  for (uint32_t i = 0; i < p->ninputs; i++) {
    if (inputs[i].data)
      continue;
    if (!o.random_inputs) {
      fprintf(stderr, "tgc: error: no value for input '%%%s' (use --input %s=FILE.npy or --random-inputs)\n",
              p->input_names[i], p->input_names[i]);
      goto done;
    }
    if (tgc_driver_random_input(p, i, syms, &rng, &inputs[i]))
      goto done;
  }

  /* outputs to save */
  save_index = tgc_xcalloc((size_t)o.outputs.n + 1, sizeof *save_index);
  for (int k = 0; k < o.outputs.n; k++) {
    char *end;
    long idx = strtol(o.outputs.v[k].name, &end, 10);
    save_index[k] = -1;
    if (!*end && idx >= 0 && idx < (long)p->noutputs)
      save_index[k] = (int)idx;
    for (uint32_t j = 0; save_index[k] < 0 && j < p->noutputs; j++)
      if (strcmp(p->output_names[j], o.outputs.v[k].name) == 0)
        save_index[k] = (int)j;
    if (save_index[k] < 0) {
      fprintf(stderr, "tgc: error: '@%s' has no result '%s' (give an index 0..%u or a returned value's name)\n",
              p->name, o.outputs.v[k].name, p->noutputs ? p->noutputs - 1 : 0);
      goto done;
    }
  }

  /* weights */
  if (tgc_driver_open_weights(p, wpath, &weights))
    goto done;

  tgc_rt_err err = {""};
  double t0 = now_ms();
  bool on_gpu = strcmp(o.device, "cuda") == 0 || (strcmp(o.device, "auto") == 0 && tgc_rt_cuda_available());
  bool fp8 = false; /* the CUDA program that ran has fp8 GEMMs */
  if (on_gpu) {
    tgc_cuda_run_opts ro = {o.repeat, o.time, o.profile, strcmp(o.device, "auto") == 0, &fp8};
    int crc = loaded ? tgc_run_cuda(NULL, false, prog, inputs, outputs, weights, &ro)
                     : tgc_run_cuda(m, !optimized, prog, inputs, outputs, weights, &ro);
    if (crc == 1)
      goto done;
    on_gpu = crc == 0;
  }
  if (on_gpu) {
    if (o.check && check_against_cpu(prog, inputs, outputs, weights, fp8) != 0)
      goto done;
  } else {
    warn_gpu_only(&o);
    if (tgc_driver_cpu_run(prog, inputs, weights, outputs, &cpu, &err)) {
      tgc_driver_rt_error("the CPU backend's run", &err);
      goto done;
    }
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
  for (int k = 0; k < o.outputs.n && rc == 0; k++) {
    if (tgc_rt_npy_write(o.outputs.v[k].path, &outputs[save_index[k]], &err)) {
      tgc_driver_rt_error("writing an --output", &err);
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
  tgc_rt_session_destroy(cpu);
  free(wpath);
  tgc_rt_weights_release(weights);
  free(syms);
  free(save_index);
  run_opts_free(&o);
  tgc_rt_program_free(prog);
  tgc_module_destroy(m);
  tgc_diag_free(&diag);
  free(text);
  return rc;
}

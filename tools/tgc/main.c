/* tgc: the compiler driver. Parses a .tir module, verifies it, runs the pipeline chosen by -O or --passes,
 * and emits the result. Conventions follow clang and opt: diagnostics on stderr, exit 1 on a user error. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../frontend/frontend.h"
#include "../../ir/ir.h"
#include "../../codegen/cuda_codegen.h"
#include "../../codegen/dot.h"
#include "../../codegen/program_build.h"
#include "../../runtime/artifact.h"
#include "../../runtime/kcache.h"
#include "../../runtime/memplan.h"
#include "../../runtime/session.h"
#include "../../runtime/nvrtc.h"
#include "../../passes/pass_manager.h"
#include "driver.h"

#ifndef TGC_VERSION
#define TGC_VERSION "0.0.0"
#endif

typedef enum { EMIT_TIR, EMIT_DOT, EMIT_CUDA, EMIT_ARTIFACT } emit_kind;

typedef struct {
  const char *input;
  const char *output;
  emit_kind emit;
  int opt_level;
  bool verify;
  const char *passes; /* --passes=...; overrides -O */
  bool print_pipeline, list_passes;
  tgc_pm_options pm;
  const char *weights;
  bool print_launches;
  const char *target;
  bool nvrtc_check;
  const char *plan_dims; /* --plan-dims=B=8,S=512: the sizes an artifact's memory plan is made at */
} options;

static const char *const known_flags[] = {
    "--emit=", "-o", "-O0", "-O1", "-O2", "-O3", "--verify", "--no-verify", "--version", "--help", "--passes=",
    "--print-pipeline", "--list-passes", "--print-ir-after-all", "--print-ir-before-all", "--print-ir-after=",
    "--print-ir-before=", "--time-passes", "--verify-each", "--verify-each=numerics", "--weights=", "-Rpass=",
    "-Rpass-missed=", "--print-launches", "--target=", "--nvrtc-check", "--plan-dims="};

static void usage(FILE *out) {
  fputs("OVERVIEW: tgc, a tensor-graph compiler\n"
        "\n"
        "USAGE: tgc [options] FILE.tir      (FILE '-' reads standard input)\n"
        "       tgc run [options] FILE.tir  (run it: see 'tgc run --help')\n"
        "       tgc calibrate [options] FILE.tir -o OUT.tir\n"
        "                                   (calibration statistics: see 'tgc calibrate --help')\n"
        "\n"
        "OPTIONS:\n"
        "  -o FILE          write the output to FILE (default: standard output)\n"
        "  --emit=KIND      what to emit: tir (the module as text), dot (Graphviz; fusion groups as clusters),\n"
        "                   cuda (the generated CUDA program), artifact (a model.tgc: the optimized IR and every\n"
        "                   kernel compiled; the default when -o names a .tgc file)\n"
        "  --target=sm_XX   the GPU architecture kernels are compiled for (default sm_90)\n"
        "  --nvrtc-check    with --emit=cuda: compile every kernel with NVRTC and report (no GPU needed)\n"
        "  --plan-dims=B=8,S=512\n"
        "                   with an artifact: the largest sizes of the symbols it will run at; its memory plan is\n"
        "                   made there and holds for every smaller size (static modules need none)\n"
        "  -O0 -O1 -O2 -O3  optimization level (default -O0)\n"
        "  --verify         run the IR verifier after parsing (default)\n"
        "  --no-verify      skip the IR verifier\n"
        "\n"
        "PASSES:\n"
        "  --passes=PIPELINE        run PIPELINE instead of the -O level's: 'shape-infer,canonicalize{max-iterations=4}'\n"
        "  --list-passes            list the registered passes and their options\n"
        "  --print-pipeline         print the pipeline that would run, then exit\n"
        "  --print-ir-after-all     dump the IR after every pass (to stderr)\n"
        "  --print-ir-before-all    dump the IR before every pass\n"
        "  --print-ir-after=P,Q     dump the IR after passes P and Q\n"
        "  --print-ir-before=P,Q    dump the IR before passes P and Q\n"
        "  --time-passes            print a table of wall time per pass\n"
        "  --verify-each            run the IR verifier after every pass\n"
        "  --verify-each=numerics   also run the module on the CPU backend before and after every pass and stop\n"
        "                           when an output diverges beyond its dtype's tolerance\n"
        "  --weights=FILE           weights for numeric verification (default: the module's 'weights' attribute)\n"
        "  -Rpass=REGEX             print remarks (what they did) of the passes whose name matches REGEX\n"
        "  -Rpass-missed=REGEX      print what the passes matching REGEX could not do, and why\n"
        "  --print-launches         print how many kernels the optimized entry function launches, by kind\n"
        "  --version        print the version and exit\n"
        "  --help           print this help and exit\n",
        out);
}

static int arg_error(const char *arg) {
  const char *best = NULL;
  size_t best_d = 4;
  for (size_t i = 0; i < sizeof known_flags / sizeof known_flags[0]; i++) {
    char flag[32];
    snprintf(flag, sizeof flag, "%s", known_flags[i]);
    size_t n = strlen(flag);
    /* compare "--emit=" against the part of ARG before its value */
    char head[64];
    snprintf(head, sizeof head, "%.*s", flag[n - 1] == '=' ? (int)n : 63, arg);
    size_t d = tgc_edit_distance(head, flag, 3);
    if (d < best_d) {
      best_d = d;
      best = known_flags[i];
    }
  }
  if (best)
    fprintf(stderr, "tgc: error: unknown argument '%s'; did you mean '%s'?\n", arg, best);
  else
    fprintf(stderr, "tgc: error: unknown argument '%s'\n", arg);
  return 1;
}

/* The value of "--opt=VALUE" (A, with the option's length N), or NULL after an error naming the option when it is
 * empty: an empty value is never meaningful here (--passes= is the one exception, the empty pipeline of -O0). */
static const char *flag_value(const char *a, size_t n) {
  if (!a[n]) {
    fprintf(stderr, "tgc: error: '%.*s' needs a value, not an empty string\n", (int)n, a);
    return NULL;
  }
  return a + n;
}

/* sm_XX or compute_XX, XX being digits (sm_90a and the like allowed: digits then letters) */
static bool valid_target(const char *t) {
  const char *d = strncmp(t, "sm_", 3) == 0 ? t + 3 : strncmp(t, "compute_", 8) == 0 ? t + 8 : NULL;
  if (!d || *d < '0' || *d > '9')
    return false;
  while (*d >= '0' && *d <= '9')
    d++;
  while ((*d >= 'a' && *d <= 'z'))
    d++;
  return !*d;
}

static int parse_args(int argc, char **argv, options *o, int *exit_now) {
  *exit_now = -1;
  memset(o, 0, sizeof *o);
  o->verify = true;
  o->pm.dump = stderr;
  o->target = "sm_90";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      *exit_now = 0;
      return 0;
    } else if (strcmp(a, "--version") == 0) {
      printf("tgc %s\n", TGC_VERSION);
      *exit_now = 0;
      return 0;
    } else if (strcmp(a, "-o") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "tgc: error: '-o' needs a file name\n");
        return 1;
      }
      o->output = argv[++i];
    } else if (strncmp(a, "-o", 2) == 0 && a[2]) {
      o->output = a + 2;
    } else if (strncmp(a, "--emit=", 7) == 0) {
      if (strcmp(a + 7, "tir") == 0) {
        o->emit = EMIT_TIR;
      } else if (strcmp(a + 7, "dot") == 0) {
        o->emit = EMIT_DOT;
      } else if (strcmp(a + 7, "cuda") == 0) {
        o->emit = EMIT_CUDA;
      } else if (strcmp(a + 7, "artifact") == 0) {
        o->emit = EMIT_ARTIFACT;
      } else {
        fprintf(stderr, "tgc: error: unknown emit kind '%s' in '%s' (supported: tir, dot, cuda, artifact)\n", a + 7, a);
        return 1;
      }
    } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
      o->opt_level = a[2] - '0';
    } else if (a[0] == '-' && a[1] == 'O') {
      fprintf(stderr, "tgc: error: invalid optimization level '%s' (use -O0, -O1, -O2 or -O3)\n", a);
      return 1;
    } else if (strncmp(a, "--passes=", 9) == 0) {
      o->passes = a + 9;
    } else if (strcmp(a, "--print-pipeline") == 0) {
      o->print_pipeline = true;
    } else if (strcmp(a, "--list-passes") == 0) {
      tgc_passes_list(stdout);
      *exit_now = 0;
      return 0;
    } else if (strcmp(a, "--print-ir-after-all") == 0) {
      o->pm.print_after_all = true;
    } else if (strcmp(a, "--print-ir-before-all") == 0) {
      o->pm.print_before_all = true;
    } else if (strncmp(a, "--print-ir-after=", 17) == 0 || strncmp(a, "--print-ir-before=", 18) == 0) {
      bool after = a[11] == 'a';
      const char *list = flag_value(a, after ? 17 : 18);
      if (!list)
        return 1;
      /* every name must be a pass: a typo would otherwise silently print nothing */
      char name[64];
      for (const char *q = list; *q;) {
        const char *comma = strchr(q, ',');
        size_t len = comma ? (size_t)(comma - q) : strlen(q);
        snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), q);
        if (!tgc_pass_exists(name)) {
          fprintf(stderr, "tgc: error: '%s': unknown pass '%s' (see --list-passes)\n", a, name);
          return 1;
        }
        q = comma ? comma + 1 : q + len;
      }
      if (after)
        o->pm.print_after = list;
      else
        o->pm.print_before = list;
    } else if (strcmp(a, "--time-passes") == 0) {
      o->pm.time_passes = true;
    } else if (strcmp(a, "--verify-each") == 0) {
      o->pm.verify_each = true;
    } else if (strcmp(a, "--verify-each=numerics") == 0) {
      o->pm.verify_each = true; /* lowering for the CPU backend needs valid IR */
      o->pm.verify_numerics = true;
    } else if (strncmp(a, "--verify-each=", 14) == 0) {
      fprintf(stderr, "tgc: error: unknown value in '%s' (use --verify-each or --verify-each=numerics)\n", a);
      return 1;
    } else if (strncmp(a, "--weights=", 10) == 0) {
      if (!(o->weights = flag_value(a, 10)))
        return 1;
    } else if (strncmp(a, "-Rpass=", 7) == 0 || strncmp(a, "-Rpass-missed=", 14) == 0) {
      bool missed = a[6] == '-';
      const char *re = a + (missed ? 14 : 7);
      tgc_strbuf msg;
      tgc_sb_init(&msg);
      if (!tgc_pass_remark_regex_check(missed ? "-Rpass-missed=" : "-Rpass=", re, &msg)) {
        fprintf(stderr, "tgc: error: %s\n", msg.data);
        tgc_sb_free(&msg);
        return 1;
      }
      tgc_sb_free(&msg);
      if (missed)
        o->pm.remark_missed = re;
      else
        o->pm.remark_pass = re;
    } else if (strncmp(a, "--plan-dims=", 12) == 0) {
      if (!(o->plan_dims = flag_value(a, 12)))
        return 1;
    } else if (strncmp(a, "--target=", 9) == 0) {
      o->target = a + 9;
      if (!valid_target(o->target)) {
        fprintf(stderr, "tgc: error: invalid target '%s' (use sm_XX, e.g. sm_90, or compute_XX for PTX only)\n",
                o->target);
        return 1;
      }
    } else if (strcmp(a, "--nvrtc-check") == 0) {
      o->nvrtc_check = true;
    } else if (strcmp(a, "--print-launches") == 0) {
      o->print_launches = true;
    } else if (strcmp(a, "--verify") == 0) {
      o->verify = true;
    } else if (strcmp(a, "--no-verify") == 0) {
      o->verify = false;
    } else if (a[0] == '-' && a[1]) {
      return arg_error(a);
    } else {
      if (o->input) {
        fprintf(stderr, "tgc: error: more than one input file ('%s' and '%s')\n", o->input, a);
        return 1;
      }
      o->input = a;
    }
  }
  if (!o->input && !o->print_pipeline) {
    fprintf(stderr, "tgc: error: no input file (try 'tgc --help')\n");
    return 1;
  }
  return 0;
}

char *tgc_read_file(const char *path, size_t *len) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "tgc: error: cannot open '%s': %s\n", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = tgc_xmalloc(cap);
  for (;;) {
    if (n == cap) {
      if (cap >= ((size_t)1 << 31)) {
        fprintf(stderr, "tgc: error: '%s' is too large (the limit is 2 GiB)\n", path);
        free(buf);
        if (f != stdin)
          fclose(f);
        return NULL;
      }
      cap *= 2;
      buf = tgc_xrealloc(buf, cap);
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0)
      break;
  }
  int err = ferror(f);
  if (f != stdin)
    fclose(f);
  if (err) {
    fprintf(stderr, "tgc: error: cannot read '%s'\n", path);
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

/* driver.h */
int tgc_driver_write_output(const char *path, const char *data, size_t len) {
  tgc_rt_chunk chunk = {data, len};
  tgc_rt_err err;
  if (tgc_rt_write_file(path ? path : "-", &chunk, 1, 0, &err)) {
    fprintf(stderr, "tgc: error: %s\n", err.msg);
    return 1;
  }
  return 0;
}

char *tgc_read_input(const char *path, size_t *len, tgc_rt_artifact **art) {
  char *text = tgc_read_file(path, len);
  if (!text || !tgc_rt_artifact_magic(text, *len))
    return text;
  free(text);
  tgc_rt_err err;
  tgc_rt_artifact *a;
  if (tgc_rt_artifact_open(path, &a, &err)) {
    fprintf(stderr, "tgc: error: %s\n", err.msg);
    return NULL;
  }
  size_t n;
  const char *ir = tgc_rt_artifact_find(a, "ir", &n);
  if (!ir) {
    fprintf(stderr, "tgc: error: '%s' has no IR section\n", path);
    tgc_rt_artifact_close(a);
    return NULL;
  }
  text = tgc_xmalloc(n + 1);
  memcpy(text, ir, n);
  text[n] = 0;
  *len = n;
  if (art)
    *art = a;
  else
    tgc_rt_artifact_close(a);
  return text;
}

/* The artifact's memory plan: the program's temporaries in order with their live ranges and, when every symbol
 * has a size (DIMS, "B=8,S=512"; none needed by a static module), their sizes and offsets there
 * (tgc_rt_pbuffer_bytes, the sessions' size rule). Appends the plan's text to OUT and a summary to SUMMARY; 1
 * after an error. */
static int artifact_plan(const tgc_rt_program *prog, const char *dims, tgc_strbuf *out, tgc_strbuf *summary) {
  const tgc_rt_plan *fp = prog->plan;
  /* the symbols the program's buffers use, in order of first use */
  const char *used[TGC_RT_MEMPLAN_MAX_SYMS];
  uint32_t nused = 0;
  for (uint32_t i = 0; i < prog->nbuffers; i++) {
    const tgc_rt_type *t = &prog->buffers[i].type;
    for (uint32_t d = 0; d < t->rank; d++)
      for (uint32_t q = 0; q < t->dims[d].nterms; q++)
        for (uint32_t j = 0; j < t->dims[d].terms[q].nsyms; j++) {
          const char *nm = fp->sym_names[t->dims[d].terms[q].syms[j]];
          uint32_t k = 0;
          while (k < nused && strcmp(used[k], nm) != 0)
            k++;
          if (k == nused && nused < TGC_RT_MEMPLAN_MAX_SYMS)
            used[nused++] = nm;
        }
  }
  tgc_rt_memplan p;
  memset(&p, 0, sizeof p);
  p.align = 256;
  int rc = 1;
  int64_t *syms = tgc_xcalloc(fp->nsyms + 1, sizeof *syms); /* by plan symbol; one not given counts 0 */
  /* --plan-dims: every name a symbol of the program, every symbol given */
  tgc_sym_sizes given = {0};
  tgc_strbuf why;
  tgc_sb_init(&why);
  bool parsed = !dims || tgc_sym_sizes_parse(&given, dims, &why);
  if (parsed && given.n > TGC_RT_MEMPLAN_MAX_SYMS)
    tgc_sb_printf(&why, "more than %d symbols", TGC_RT_MEMPLAN_MAX_SYMS);
  if (!parsed || given.n > TGC_RT_MEMPLAN_MAX_SYMS) {
    fprintf(stderr, "tgc: error: bad --plan-dims '%s': %s\n", dims, why.data);
    tgc_sb_free(&why);
    tgc_sym_sizes_free(&given);
    goto done;
  }
  tgc_sb_free(&why);
  for (uint32_t i = 0; i < given.n; i++) {
    const char *name = given.names[i];
    uint32_t k = 0;
    while (k < nused && strcmp(used[k], name) != 0)
      k++;
    if (k == nused) {
      fprintf(stderr, "tgc: error: --plan-dims names a symbol the program does not use, '%s'; the program's symbols are:",
              name);
      for (uint32_t j = 0; j < nused; j++)
        fprintf(stderr, " %s", used[j]);
      fprintf(stderr, "%s\n", nused ? "" : " (none: the module is static)");
      tgc_sym_sizes_free(&given);
      goto done;
    }
    for (uint32_t j = 0; j < fp->nsyms; j++)
      if (strcmp(fp->sym_names[j], name) == 0)
        syms[j] = given.sizes[i];
    p.sym_names[p.nsyms] = strdup(name);
    p.sym_sizes[p.nsyms++] = given.sizes[i];
  }
  tgc_sym_sizes_free(&given);
  for (uint32_t k = 0; dims && k < nused; k++) {
    uint32_t j = 0;
    while (j < p.nsyms && strcmp(p.sym_names[j], used[k]) != 0)
      j++;
    if (j == p.nsyms) {
      fprintf(stderr, "tgc: error: --plan-dims gives no size for the symbol '%s'\n", used[k]);
      goto done;
    }
  }
  p.placed = dims || nused == 0;
  p.b = tgc_xcalloc(prog->nbuffers + 1, sizeof *p.b);
  size_t naive = 0;
  for (uint32_t i = 0; i < prog->nbuffers; i++) {
    const tgc_rt_pbuffer *b = &prog->buffers[i];
    if (b->kind != TGC_RT_BUF_TEMP)
      continue;
    tgc_rt_live *l = &p.b[p.n++];
    l->first = b->first;
    l->last = b->last;
    if (!p.placed)
      continue;
    uint64_t bytes;
    if (!tgc_rt_pbuffer_bytes(b, syms, &bytes)) {
      fprintf(stderr, "tgc: error: at --plan-dims %s a buffer of the program would need more than 2^62 bytes\n",
              dims);
      goto done;
    }
    l->bytes = (size_t)bytes;
    naive += (l->bytes + p.align - 1) & ~(p.align - 1);
  }
  if (p.placed)
    p.arena = tgc_rt_plan_memory(p.b, p.n, (int)prog->nsteps, p.align);
  tgc_rt_memplan_format(&p, out);
  if (!p.placed) {
    tgc_sb_printf(summary, "memory plan: live ranges of %zu buffers, offsets made at load (give --plan-dims=", p.n);
    for (uint32_t k = 0; k < nused; k++)
      tgc_sb_printf(summary, "%s%s=N", k ? "," : "", used[k]);
    tgc_sb_puts(summary, " to plan for every size up to those)");
  } else {
    tgc_sb_printf(summary, "memory plan: %zu buffers in an arena of %zu bytes (%zu without reuse)", p.n, p.arena,
                  naive);
    if (p.nsyms) {
      tgc_sb_puts(summary, " for sizes up to ");
      for (uint32_t k = 0; k < p.nsyms; k++)
        tgc_sb_printf(summary, "%s%s=%lld", k ? "," : "", p.sym_names[k], (long long)p.sym_sizes[k]);
    }
  }
  rc = 0;
done:
  tgc_rt_memplan_free(&p);
  free(syms);
  return rc;
}

/* -o model.tgc: the program of the optimized module (tgc_program_build: its weights reference made relative to
 * the artifact when they share a directory, absolute otherwise) with every distinct kernel compiled as CUBIN for
 * TARGET and PTX, its memory plan, and the optimized IR, stored with tgc_rt_program_sections. */
static int write_artifact(tgc_module *m, tgc_diag *diag, const char *wpath, const char *out, const char *target,
                          const char *plan_dims) {
  tgc_rt_err err;
  if (!out || strcmp(out, "-") == 0) {
    fprintf(stderr, "tgc: error: an artifact is written to a file: give -o FILE.tgc\n");
    return 1;
  }
  if (wpath) {
    char *ref;
    if (tgc_rt_weights_reference(wpath, out, &ref, &err)) {
      tgc_driver_rt_error("writing the artifact", &err);
      return 1;
    }
    tgc_attrs_set(&m->arena, &m->attrs, "weights", tgc_attr_str(&m->arena, ref, strlen(ref)), m->loc);
    free(ref);
  }
  /* the driver's CUDA generation first: it runs shape-infer (with a note) on a module with untyped values */
  tgc_cuda_module cm;
  if (tgc_driver_cuda_generate(m, NULL, diag, &cm))
    return 1;
  tgc_program_opts po = {true, true};
  tgc_rt_program *prog = tgc_program_build(m, NULL, &po);
  if (!prog) {
    fprintf(stderr, "tgc: error: the module has no function to store in an artifact\n");
    return 1;
  }
  if (!prog->has_cuda) {
    fprintf(stderr, "%s: error: the CUDA backend cannot generate this %s (%s), so it cannot be in an artifact\n",
            prog->cuda_why_loc, prog->cuda_why_op, prog->cuda_why);
    tgc_rt_program_free(prog);
    return 1;
  }
  int rc = 1;
  tgc_rt_nvrtc *nv = NULL;
  tgc_rt_sections secs = {0};
  tgc_rt_section *all = NULL;
  tgc_strbuf plan, plan_summary;
  tgc_sb_init(&plan);
  tgc_sb_init(&plan_summary);
  if (artifact_plan(prog, plan_dims, &plan, &plan_summary))
    goto done;
  prog->memplan = tgc_arena_strndup(&prog->arena, plan.data, plan.len);
  prog->memplan_len = plan.len;
  nv = tgc_rt_nvrtc_open(&err);
  if (!nv) {
    fprintf(stderr, "tgc: error: %s (an artifact holds compiled kernels)\n", err.msg);
    goto done;
  }
  tgc_rt_kcache_stats st = {0, 0, 0, 0};
  if (tgc_rt_program_compile(prog, nv, target, &st, &err) || tgc_rt_program_sections(prog, &secs, &err)) {
    fprintf(stderr, "tgc: error: %s\n", err.msg);
    goto done;
  }
  int major, minor;
  tgc_rt_nvrtc_version(nv, &major, &minor);
  char nvv[32];
  snprintf(nvv, sizeof nvv, "%d.%d", major, minor);
  all = tgc_xcalloc(secs.n + 2, sizeof *all);
  memcpy(all, secs.v, secs.n * sizeof *all);
  all[secs.n] = (tgc_rt_section){"target", target, strlen(target)};
  all[secs.n + 1] = (tgc_rt_section){"nvrtc", nvv, strlen(nvv)};
  if (tgc_rt_artifact_write(out, all, secs.n + 2, &err)) {
    fprintf(stderr, "tgc: error: %s\n", err.msg);
    goto done;
  }
  size_t bytes = 0;
  for (uint32_t i = 0; i < prog->nimages; i++)
    bytes += prog->images[i].size;
  char also[48] = "";
  if (strncmp(target, "sm_", 3) == 0)
    snprintf(also, sizeof also, " CUBIN + compute_%s", target + 3);
  fprintf(stderr, "tgc: wrote %s: optimized IR (%zu bytes), %u kernels (%u distinct) as %s%s (%zu bytes), "
          "%u cuBLASLt GEMMs, weights %s\n", out, strlen(prog->ir), prog->nkernels, prog->nsources, target, also,
          bytes, prog->ngemms, prog->weights ? prog->weights : "(none)");
  fprintf(stderr, "tgc: %s\n", plan_summary.data);
  rc = 0;
done:
  free(all);
  tgc_rt_sections_free(&secs);
  tgc_sb_free(&plan);
  tgc_sb_free(&plan_summary);
  tgc_rt_nvrtc_close(nv);
  tgc_rt_program_free(prog);
  return rc;
}

/* --nvrtc-check: compiles every generated kernel with NVRTC for TARGET and reports; 1 on any failure. */
static int check_kernels(const tgc_cuda_module *cm, const char *target) {
  tgc_rt_err err;
  tgc_rt_nvrtc *nv = tgc_rt_nvrtc_open(&err);
  if (!nv) {
    fprintf(stderr, "tgc: error: %s\n", err.msg);
    return 1;
  }
  int failed = 0;
  size_t bytes = 0;
  tgc_rt_kcache_stats st = {0, 0, 0, 0};
  for (uint32_t i = 0; i < cm->nkernels; i++) {
    void *image;
    size_t size;
    if (tgc_rt_kcache_compile(nv, cm->kernels[i].source, cm->kernels[i].name, target, &st, &image, &size, &err)) {
      fprintf(stderr, "tgc: error: kernel %s: %s\n", cm->kernels[i].name, err.msg);
      failed++;
      continue;
    }
    bytes += size;
    free(image);
  }
  int major, minor;
  tgc_rt_nvrtc_version(nv, &major, &minor);
  fprintf(stderr, "nvrtc %d.%d: %u kernels compiled for %s (%zu bytes of %s), %d failed; %u launches not generated yet\n",
          major, minor, cm->nkernels - (uint32_t)failed, target, bytes, strncmp(target, "sm_", 3) == 0 ? "CUBIN" : "PTX",
          failed, cm->npending);
  fprintf(stderr, "kernel cache: %u hits, %u misses, %u corrupt entries recompiled, %u write errors\n", st.hits,
          st.misses, st.corrupt, st.write_errors);
  tgc_rt_nvrtc_close(nv);
  return failed ? 1 : 0;
}

static int compile_main(int argc, char **argv);

/* Every mode prints through stdout; a write that failed (a full disk) must not exit 0 with the output lost, so
 * the buffered output is flushed and its error state checked once, here, for all of them. */
int main(int argc, char **argv) {
  int rc = argc > 1 && strcmp(argv[1], "run") == 0         ? tgc_driver_run(argc - 2, argv + 2)
           : argc > 1 && strcmp(argv[1], "calibrate") == 0 ? tgc_driver_calibrate(argc - 2, argv + 2)
                                                           : compile_main(argc, argv);
  errno = 0;
  if (fflush(stdout) != 0 || ferror(stdout)) {
    if (errno)
      fprintf(stderr, "tgc: error: cannot write to standard output: %s\n", strerror(errno));
    else
      fprintf(stderr, "tgc: error: cannot write to standard output\n");
    rc = 1;
  }
  return rc;
}

static int compile_main(int argc, char **argv) {
  options o;
  int exit_now;
  if (parse_args(argc, argv, &o, &exit_now))
    return 1;
  if (exit_now >= 0)
    return exit_now;

  tgc_diag diag;
  tgc_diag_init(&diag, stderr);
  const char *pipeline_text = o.passes ? o.passes : tgc_pipeline_for_level(o.opt_level);
  tgc_pipeline *pipeline = tgc_pipeline_parse(pipeline_text, &diag);
  if (!pipeline) {
    tgc_diag_free(&diag);
    return 1;
  }
  if (o.print_pipeline) {
    tgc_strbuf b;
    tgc_sb_init(&b);
    tgc_pipeline_print(pipeline, &b);
    printf("%s\n", b.data ? b.data : "");
    tgc_sb_free(&b);
    tgc_pipeline_destroy(pipeline);
    tgc_diag_free(&diag);
    return 0;
  }

  size_t len = 0;
  char *text = tgc_read_input(o.input, &len, NULL);
  if (!text) {
    tgc_pipeline_destroy(pipeline);
    tgc_diag_free(&diag);
    return 1;
  }
  const char *name = strcmp(o.input, "-") == 0 ? "<stdin>" : o.input;
  int rc = 1;
  char *wpath = NULL;
  tgc_module *m = tgc_parse_module(name, text, len, &diag);
  if (m && (!o.verify || tgc_verify_module(m, &diag) == 0)) {
    wpath = tgc_weights_path(o.input, o.weights, m);
    o.pm.weights_path = wpath;
    if (tgc_pipeline_run(pipeline, m, &diag, &o.pm) == 0) {
      if (o.print_launches) {
        tgc_strbuf l;
        tgc_sb_init(&l);
        tgc_print_launches(m, &l);
        fputs(l.data ? l.data : "", stderr);
        tgc_sb_free(&l);
      }
      size_t olen = o.output ? strlen(o.output) : 0;
      char *new_wpath = NULL;
      bool writes_module = o.emit == EMIT_ARTIFACT || o.emit == EMIT_TIR;
      if (writes_module && tgc_driver_write_weights(m, wpath, o.output, &new_wpath))
        goto done;
      if (new_wpath) {
        free(wpath);
        wpath = new_wpath;
      } else if (o.emit == EMIT_TIR) {
        tgc_driver_point_weights(m, wpath, o.output);
      }
      if (o.emit == EMIT_ARTIFACT || (o.emit == EMIT_TIR && olen > 4 && strcmp(o.output + olen - 4, ".tgc") == 0)) {
        rc = write_artifact(m, &diag, wpath, o.output, o.target, o.plan_dims);
        goto done;
      }
      tgc_strbuf out;
      tgc_sb_init(&out);
      switch (o.emit) {
      case EMIT_ARTIFACT:
      case EMIT_TIR:
        tgc_print_module(m, &out);
        break;
      case EMIT_DOT:
        tgc_emit_dot(m, &out);
        break;
      case EMIT_CUDA: {
        tgc_cuda_module cm;
        if (tgc_driver_cuda_generate(m, NULL, &diag, &cm)) {
          tgc_sb_free(&out);
          goto done;
        }
        tgc_sb_printf(&out, "// CUDA C generated by tgc for %s\n", o.target);
        tgc_cuda_print(&cm, &out);
        if (o.nvrtc_check && check_kernels(&cm, o.target) != 0) {
          tgc_sb_free(&out);
          goto done;
        }
        break;
      }
      }
      rc = tgc_driver_write_output(o.output, out.data ? out.data : "", out.len);
      tgc_sb_free(&out);
    }
  }
done:
  free(wpath);
  tgc_module_destroy(m);
  tgc_pipeline_destroy(pipeline);
  tgc_diag_free(&diag);
  free(text);
  return rc;
}

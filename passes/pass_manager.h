/* The pass manager: textual pipelines (`shape-infer,canonicalize,fuse{max-ops=32}`), the -O pipelines, and a
 * run loop with instrumentation: IR dumps before/after passes, a timing table, the verifier after every pass
 * and numeric verification on the CPU backend. */
#ifndef TGC_PASS_MANAGER_H
#define TGC_PASS_MANAGER_H

#include <stdio.h>

#include "pass.h"

typedef struct tgc_pipeline tgc_pipeline;

/* Parses TEXT; errors point at the offending character (reported as file "<pipeline>"). NULL on error. */
tgc_pipeline *tgc_pipeline_parse(const char *text, tgc_diag *diag);
void tgc_pipeline_destroy(tgc_pipeline *p);
/* The pipeline text of -O0..-O3. */
const char *tgc_pipeline_for_level(int level);
void tgc_pipeline_print(const tgc_pipeline *p, tgc_strbuf *out);
void tgc_passes_list(FILE *out);
/* True when NAME is a registered pass (for validating --print-ir-after=NAME). */
bool tgc_pass_exists(const char *name);

/* Checks the regex RE of FLAG ("-Rpass="): true when it compiles (POSIX extended) and matches some registered
 * pass name; else false with the reason in MSG (regerror's text, or the registered passes and the nearest name). */
bool tgc_pass_remark_regex_check(const char *flag, const char *re, tgc_strbuf *msg);

typedef struct tgc_pm_options {
  FILE *dump;               /* where IR dumps and the timing table go (stderr) */
  bool print_after_all, print_before_all;
  const char *print_after;  /* comma-separated pass names, or NULL */
  const char *print_before;
  bool time_passes;
  bool verify_each;         /* the IR verifier after every pass */
  bool verify_numerics;     /* the CPU backend before and after every pass */
  const char *weights_path; /* weights for numeric verification (may be NULL) */
  uint64_t numerics_seed;
  const char *remark_pass;  /* -Rpass=REGEX: remarks of the passes whose name it matches */
  const char *remark_missed; /* -Rpass-missed=REGEX */
} tgc_pm_options;

/* Runs P on M. Returns 0, or nonzero after reporting the failure (a pass error, a verifier error after a named
 * pass, a numeric divergence naming the pass and the output, a broken contract). */
int tgc_pipeline_run(const tgc_pipeline *p, tgc_module *m, tgc_diag *diag, const tgc_pm_options *o);

#endif

/* Calibration statistics: the calib.* attributes that `tgc calibrate` writes on a module's ops and functions and
 * the quantize pass reads (docs/ir.md, "Calibration statistics"), and the methods that turn a histogram of |x|
 * into a clipping threshold (docs/cli.md, `tgc calibrate`). The one home of their names, kinds and meaning. */
#ifndef TGC_IR_CALIB_H
#define TGC_IR_CALIB_H

#include "ir.h"

/* The statistics of one value. Every field is read from its attribute; a missing one is NaN (chmax: NULL, nch 0).
 * PRESENT is whether the value has statistics at all (a calib.amax). */
typedef struct tgc_calib {
  double amax;         /* the method's clipping threshold for symmetric quantization */
  double absmax;       /* max |x| observed */
  double min, max;     /* the smallest and largest x observed */
  double clip;         /* the fraction of the observed elements with |x| > amax */
  const double *chmax; /* max |x| per index of the last dim (nch entries; in the module's arena) */
  uint32_t nch;
  bool present;
} tgc_calib;

/* The statistics of V: on its defining op (an op with one result), or on its function for an argument of a
 * function body (calib.argN.*). False, with OUT->present false, when V has none (a value of a multi-result op or
 * of a fusion region never has). */
bool tgc_calib_get(const tgc_value *v, tgc_calib *out);
/* Writes C as V's statistics (every field; chmax as a list), replacing those it had. False, writing nothing, for a
 * value that cannot carry them: a result of an op with several results, or an argument of a region. */
bool tgc_calib_set(tgc_module *m, tgc_value *v, const tgc_calib *c);
/* The module attributes that say how the statistics were made: calib.method (as given), calib.samples, and
 * calib.data = DATA when DATA is not NULL, else calib.seed = SEED. */
void tgc_calib_set_run(tgc_module *m, const char *method, int64_t samples, const char *data, int64_t seed);
/* Removes every calib.* attribute of M (its module, functions and ops, regions included). */
void tgc_calib_clear(tgc_module *m);

/* ---- attribute names and kinds (the verifier's rules) ---- */

typedef enum { TGC_CALIB_ON_OP, TGC_CALIB_ON_FUNC, TGC_CALIB_ON_MODULE } tgc_calib_site;
/* Whether NAME is in the calib namespace (starts with "calib."). */
bool tgc_calib_is_attr(const char *name);
/* Checks the calib.* attribute NAME = A where SITE says: its name is one of the site's, its kind is right. N is the
 * op's result count (ON_OP: statistics need exactly one) or the function's argument count (ON_FUNC: the N of
 * calib.argN.*). False with the reason appended to WHY. */
bool tgc_calib_check_attr(tgc_calib_site site, const char *name, const tgc_attr *a, uint32_t n, tgc_strbuf *why);

/* ---- methods ---- */

enum {
  TGC_CALIB_BINS = 2048,  /* the histogram of |x|: bins of width absmax / 2048 on [0, absmax] */
  TGC_CALIB_LEVELS = 128, /* entropy: the quantized levels of int8's positive half */
};

typedef enum { TGC_CALIB_MINMAX, TGC_CALIB_PERCENTILE, TGC_CALIB_ENTROPY, TGC_CALIB_MSE } tgc_calib_method_kind;

typedef struct tgc_calib_method {
  tgc_calib_method_kind kind;
  double percentile; /* PERCENTILE: P, 0 < P <= 100 */
} tgc_calib_method;

/* Parses "minmax", "percentile:P", "entropy" or "mse". False with the reason appended to WHY (not naming S). */
bool tgc_calib_method_parse(const char *s, tgc_calib_method *m, tgc_strbuf *why);
/* Whether M needs the histogram (every method but minmax). */
bool tgc_calib_method_needs_hist(const tgc_calib_method *m);

/* Edge I (0..TGC_CALIB_BINS) of the histogram on [0, ABSMAX]: I * (ABSMAX / 2048), the one formula. */
double tgc_calib_edge(uint32_t i, double absmax);
/* The bin of A = |x| (0 <= A <= ABSMAX, ABSMAX > 0): the K with edge(K) < A <= edge(K + 1), 0 for A = 0. */
uint32_t tgc_calib_bin(double a, double absmax);
/* The threshold M picks from HIST (TGC_CALIB_BINS counts, not all zero), as an edge index I in 1..2048 (amax =
 * edge(I)); minmax gives 2048. The exact definitions are in docs/cli.md. */
uint32_t tgc_calib_threshold(const tgc_calib_method *m, const uint64_t *hist);

#endif

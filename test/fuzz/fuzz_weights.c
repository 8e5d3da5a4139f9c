/* libFuzzer target for the weight readers: arbitrary bytes as a safetensors image
 * (tgc_rt_st_open_mem) and as a .npy image (tgc_rt_npy_parse). When they open, every tensor is
 * fetched and every element read; a view must lie inside the input, every element must store back
 * exactly into its own dtype, and every error message must start with the file name. Any crash,
 * sanitizer report, leak or broken property is a bug. Build with -DTGC_FUZZ=ON and clang; run with
 * scripts/fuzz-weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_weights: %s: %s\n", what, detail);
  abort();
}

/* Reads every element and stores it back into a one-element tensor of the same dtype. */
static void touch(const tgc_rt_tensor *t) {
  unsigned char cell[8];
  tgc_rt_tensor one;
  memset(&one, 0, sizeof one);
  one.dtype = t->dtype;
  one.data = cell;
  bool is_float = tgc_dtype_kind_of(t->dtype) == TGC_DTK_FLOAT;
  size_t n = tgc_rt_tensor_numel(t);
  for (size_t i = 0; i < n; i++) {
    double v = tgc_rt_get(t, i);
    tgc_rt_set(&one, 0, v);
    double w = tgc_rt_get(&one, 0);
    /* Not for i64: beyond 2^53 the double is rounded (INT64_MAX to 2^63, which then wraps). */
    if (t->dtype != TGC_DT_I64 && !(w == v || (isnan(v) && isnan(w))))
      fail("an element does not store back into its dtype", tgc_dtype_name(t->dtype));
    if (!is_float) {
      int64_t x = tgc_rt_get_i64(t, i);
      tgc_rt_set_i64(&one, 0, x);
      if (tgc_rt_get_i64(&one, 0) != x)
        fail("an integer does not store back into its dtype", tgc_dtype_name(t->dtype));
    }
  }
}

static void check_message(const tgc_rt_err *err, const char *name) {
  size_t n = strlen(name);
  if (strncmp(err->msg, name, n) != 0 || strncmp(err->msg + n, ": ", 2) != 0)
    fail("an error message does not start with the file name", err->msg);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  tgc_rt_err err;
  tgc_rt_safetensors *st = NULL;
  if (tgc_rt_st_open_mem(data, size, "fuzz.safetensors", &st, &err) == 0) {
    for (size_t i = 0; i < tgc_rt_st_count(st); i++) {
      const char *name = tgc_rt_st_name(st, i);
      tgc_rt_tensor v;
      if (tgc_rt_st_get(st, name, &v, &err) != 0)
        fail("a listed tensor cannot be fetched", name);
      const unsigned char *p = v.data;
      size_t nbytes = tgc_rt_tensor_nbytes(&v);
      if (v.owned || p < data || p > data + size || nbytes > (size_t)(data + size - p))
        fail("a view lies outside the input", name);
      touch(&v);
    }
    tgc_rt_st_close(st);
  } else {
    check_message(&err, "fuzz.safetensors");
  }

  tgc_rt_tensor t;
  if (tgc_rt_npy_parse(data, size, "fuzz.npy", &t, &err) == 0) {
    if (!t.owned || !t.data)
      fail("a parsed .npy tensor does not own its data", "");
    touch(&t);
    tgc_rt_tensor_free(&t);
  } else {
    check_message(&err, "fuzz.npy");
  }
  return 0;
}

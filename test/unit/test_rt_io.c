/* Unit tests of runtime tensors and weight I/O (runtime/tensor.c, npy.c, safetensors.c): element
 * counts and allocation failures, .npy and safetensors write->read round trips in every dtype each
 * format holds, headers in the spellings numpy and other writers use, and one hand-built file for
 * every error the readers report, each checked for the words of its message. Files go to a mkdtemp
 * directory that must be empty at the end (so a leftover temporary from an atomic write is caught
 * too), and the one output writer tgc_rt_write_file on regular files, symlinks and FIFOs. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt.h"
#include "check.h"

/* The out-of-memory test asks for 2^60 bytes; under ASan, malloc must return NULL rather than
 * abort. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
/* visible: the build hides every symbol by default (CMAKE_C_VISIBILITY_PRESET), and ASan looks this one up */
__attribute__((visibility("default"))) const char *__asan_default_options(void);
__attribute__((visibility("default"))) const char *__asan_default_options(void) {
  return "allocator_may_return_null=1";
}
#endif





static char tmpdir[64];

static const char *tmp_path(const char *name) {
  static char buf[4][256];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
  return p;
}

typedef struct bytes {
  unsigned char *data;
  size_t len;
} bytes;

static void put(bytes *b, const void *p, size_t n) {
  b->data = realloc(b->data, b->len + n + 1);
  if (!b->data)
    abort();
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
}

static bytes read_file(const char *path) {
  bytes b = {NULL, 0};
  FILE *f = fopen(path, "rb");
  if (!f)
    return b;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    put(&b, chunk, n);
  fclose(f);
  return b;
}

/* Fills T with values that exercise its dtype (negatives, fractions, large magnitudes). */
static void fill(tgc_rt_tensor *t, int seed) {
  size_t n = tgc_rt_tensor_numel(t);
  for (size_t i = 0; i < n; i++) {
    double v = ((double)((i * 7 + (size_t)seed) % 23) - 11.0) * 0.375;
    if (tgc_dtype_kind_of(t->dtype) == TGC_DTK_FLOAT)
      tgc_rt_set(t, i, i % 5 == 4 ? v * 1000 : v);
    else
      tgc_rt_set_i64(t, i, (int64_t)(i * 2654435761u) + seed);
  }
}

static bool same_tensor(const tgc_rt_tensor *a, const tgc_rt_tensor *b) {
  if (a->dtype != b->dtype || a->rank != b->rank)
    return false;
  for (uint32_t i = 0; i < a->rank; i++)
    if (a->shape[i] != b->shape[i])
      return false;
  size_t n = tgc_rt_tensor_nbytes(a);
  return n == 0 || memcmp(a->data, b->data, n) == 0;
}

/* ---- tensors --------------------------------------------------------------------------------- */

static void test_tensors(void) {
  size_t n = 99;
  int64_t s23[] = {2, 3}, neg[] = {2, -1}, big[] = {INT64_C(1) << 32, INT64_C(1) << 32},
          zbig[] = {0, INT64_C(1) << 40, INT64_C(1) << 40};
  CHECK(tgc_rt_numel(2, s23, &n) && n == 6);
  CHECK(tgc_rt_numel(0, NULL, &n) && n == 1);
  CHECK(!tgc_rt_numel(2, neg, &n));
  CHECK(!tgc_rt_numel(2, big, &n));
  CHECK(!tgc_rt_numel(3, zbig, &n)); /* empty, but its strides would overflow */
  int64_t z[] = {3, 0, 5};
  CHECK(tgc_rt_numel(3, z, &n) && n == 0);
  int64_t ones[TGC_RT_MAX_RANK + 1];
  for (int i = 0; i <= TGC_RT_MAX_RANK; i++)
    ones[i] = 1;
  CHECK(tgc_rt_numel(TGC_RT_MAX_RANK, ones, &n) && n == 1);
  CHECK(!tgc_rt_numel(TGC_RT_MAX_RANK + 1, ones, &n));
  CHECK(tgc_rt_dtype_size(TGC_DT_F64) == 8 && tgc_rt_dtype_size(TGC_DT_BF16) == 2);
  CHECK(tgc_rt_dtype_size(TGC_DT_I4) == 1 && tgc_rt_dtype_size(TGC_DT_BOOL) == 1);

  char buf[64];
  tgc_rt_shape_str(2, s23, buf, sizeof buf);
  CHECK_STR(buf, "[2, 3]");
  tgc_rt_shape_str(0, NULL, buf, sizeof buf);
  CHECK_STR(buf, "[]");
  tgc_rt_shape_str(1, neg + 1, buf, sizeof buf);
  CHECK_STR(buf, "[-1]");
  tgc_rt_shape_str(2, s23, buf, 4);
  CHECK_STR(buf, "[2,");

  tgc_rt_tensor t;
  tgc_rt_err err;
  CHECK(tgc_rt_tensor_alloc(&t, TGC_DT_F32, 2, s23, &err) == 0);
  CHECK(t.owned && t.data && tgc_rt_tensor_numel(&t) == 6 && tgc_rt_tensor_nbytes(&t) == 24);
  CHECK(tgc_rt_get(&t, 5) == 0.0); /* zeroed */
  tgc_rt_tensor_free(&t);
  CHECK(!t.data && !t.owned);
  CHECK(tgc_rt_tensor_alloc(&t, TGC_DT_I8, 3, z, &err) == 0 && t.data != NULL &&
        tgc_rt_tensor_nbytes(&t) == 0);
  tgc_rt_tensor_free(&t);
  CHECK(tgc_rt_tensor_alloc(&t, TGC_DT_F32, 2, neg, &err) == -1 && !t.data);
  CHECK_HAS(err.msg, "negative dim -1");
  CHECK(tgc_rt_tensor_alloc(&t, TGC_DT_F32, 2, big, &err) == -1);
  CHECK_HAS(err.msg, "[4294967296, 4294967296]");
  CHECK(tgc_rt_tensor_alloc(&t, TGC_DT_F32, TGC_RT_MAX_RANK + 1, ones, &err) == -1);
  CHECK_HAS(err.msg, "rank 17");
  int64_t huge[] = {INT64_C(1) << 57}; /* 2^60 bytes of f64: no machine has them */
  CHECK(tgc_rt_tensor_alloc(&t, TGC_DT_F64, 1, huge, &err) == -1 && !t.data && !t.owned);
  CHECK_HAS(err.msg, "out of memory allocating 1152921504606846976 bytes");
  tgc_rt_tensor_free(&t); /* harmless after a failure */

  CHECK(tgc_rt_errorf(&err, "x %d", 5) == -1);
  CHECK_STR(err.msg, "x 5");
  CHECK(tgc_rt_errorf(NULL, "ignored") == -1);
}

/* ---- .npy ------------------------------------------------------------------------------------ */

static const tgc_dtype npy_dtypes[] = {TGC_DT_F64, TGC_DT_F32, TGC_DT_F16, TGC_DT_I64, TGC_DT_I32,
                                       TGC_DT_I16, TGC_DT_I8,  TGC_DT_U8,  TGC_DT_BOOL};

static void test_npy_round_trip(void) {
  static const struct {
    uint32_t rank;
    int64_t shape[4];
    const char *spelled; /* as numpy writes the tuple */
  } shapes[] = {
      {0, {0}, "()"},
      {1, {0}, "(0,)"},
      {1, {5}, "(5,)"},
      {2, {2, 3}, "(2, 3)"},
      {3, {2, 0, 4}, "(2, 0, 4)"},
      {4, {1, 1, 1, 7}, "(1, 1, 1, 7)"},
  };
  const char *path = tmp_path("rt.npy");
  int round_trips = 0, layouts = 0;
  for (size_t d = 0; d < sizeof npy_dtypes / sizeof npy_dtypes[0]; d++) {
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      tgc_rt_tensor t, r;
      tgc_rt_err err;
      if (tgc_rt_tensor_alloc(&t, npy_dtypes[d], shapes[s].rank, shapes[s].shape, &err)) {
        CHECK(!"alloc");
        continue;
      }
      fill(&t, (int)(d * 10 + s));
      if (tgc_rt_npy_write(path, &t, &err) != 0) {
        fprintf(stderr, "npy write: %s\n", err.msg);
        CHECK(!"npy write");
      } else if (tgc_rt_npy_read(path, &r, &err) != 0) {
        fprintf(stderr, "npy read: %s\n", err.msg);
        CHECK(!"npy read");
      } else {
        round_trips += same_tensor(&t, &r) && r.owned;
        tgc_rt_tensor_free(&r);
        /* numpy's layout: version 1.0, data at a multiple of 64, header ending in '\n', its exact
         * dict. */
        bytes b = read_file(path);
        size_t hlen = b.len >= 10 ? (size_t)b.data[8] | (size_t)b.data[9] << 8 : 0;
        char want[128];
        snprintf(want, sizeof want, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                 npy_dtypes[d] == TGC_DT_I8     ? "|i1"
                 : npy_dtypes[d] == TGC_DT_U8   ? "|u1"
                 : npy_dtypes[d] == TGC_DT_BOOL ? "|b1"
                 : npy_dtypes[d] == TGC_DT_F64  ? "<f8"
                 : npy_dtypes[d] == TGC_DT_F32  ? "<f4"
                 : npy_dtypes[d] == TGC_DT_F16  ? "<f2"
                 : npy_dtypes[d] == TGC_DT_I64  ? "<i8"
                 : npy_dtypes[d] == TGC_DT_I32  ? "<i4"
                                                : "<i2",
                 shapes[s].spelled);
        bool ok = b.len >= 10 && b.data[6] == 1 && b.data[7] == 0 && (10 + hlen) % 64 == 0 &&
                  10 + hlen + tgc_rt_tensor_nbytes(&t) == b.len && b.data[10 + hlen - 1] == '\n' &&
                  memcmp(b.data + 10, want, strlen(want)) == 0;
        for (size_t i = 10 + strlen(want); ok && i < 10 + hlen - 1; i++)
          ok = b.data[i] == ' ';
        layouts += ok;
        free(b.data);
      }
      tgc_rt_tensor_free(&t);
    }
  }
  CHECK(round_trips == 9 * 6);
  CHECK(layouts == 9 * 6);
  remove(path);
}

/* A .npy image: magic, version MAJOR.0, the header length, HEADER as given, then DATA. */
static bytes npy_image(int major, const char *header, const void *data, size_t dlen) {
  bytes b = {NULL, 0};
  size_t h = strlen(header);
  unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
  for (int i = 0; i < (major == 1 ? 2 : 4); i++)
    pre[8 + i] = (unsigned char)(h >> (8 * i));
  put(&b, pre, major == 1 ? 10 : 12);
  put(&b, header, h);
  put(&b, data, dlen);
  return b;
}

/* Parses an image that must be accepted and returns the tensor. */
static bool npy_ok(bytes b, tgc_rt_tensor *t) {
  tgc_rt_err err;
  int rc = tgc_rt_npy_parse(b.data, b.len, "ok.npy", t, &err);
  if (rc)
    fprintf(stderr, "unexpected npy error: %s\n", err.msg);
  free(b.data);
  return rc == 0;
}

/* Parses an image that must be rejected with a message that starts with the name and contains WANT.
 */
static void npy_bad(bytes b, const char *want, int line) {
  tgc_rt_tensor t;
  tgc_rt_err err;
  strcpy(err.msg, "(no message)");
  int rc = tgc_rt_npy_parse(b.data, b.len, "bad.npy", &t, &err);
  free(b.data);
  if (rc == -1 && strncmp(err.msg, "bad.npy: ", 9) == 0 && strstr(err.msg, want) && !t.data) {
    passed++;
    return;
  }
  failed++;
  fprintf(stderr, "%s:%d: npy error check failed (rc %d): want \"%s\"\n  message: \"%s\"\n",
          __FILE__, line, rc, want, err.msg);
  if (rc == 0)
    tgc_rt_tensor_free(&t);
}
#define NPY_BAD(b, want) npy_bad((b), (want), __LINE__)

static void test_npy_spellings(void) {
  float f6[6] = {1, 2, 3, 4, 5, 6};
  tgc_rt_tensor t;
  /* numpy's own header for np.zeros((2, 3), np.float32), padded to 64. */
  const char *numpy_hdr =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }                     "
      "                                                                              \n";
  CHECK(npy_ok(npy_image(1, numpy_hdr, f6, 24), &t) && t.dtype == TGC_DT_F32 && t.rank == 2 &&
        t.shape[1] == 3 && tgc_rt_get(&t, 5) == 6.0);
  tgc_rt_tensor_free(&t);
  CHECK(
      npy_ok(npy_image(1, "{'shape': (3,), 'fortran_order': False, 'descr': '<i4'}", f6, 12), &t) &&
      t.dtype == TGC_DT_I32 && t.rank == 1 && t.shape[0] == 3);
  tgc_rt_tensor_free(&t);
  CHECK(
      npy_ok(npy_image(1, "  { 'descr' : '|u1' ,'fortran_order':False,\"shape\":( 2 , 2 ) , }   \n",
                       f6, 4),
             &t) &&
      t.dtype == TGC_DT_U8 && t.rank == 2);
  tgc_rt_tensor_free(&t);
  CHECK(npy_ok(npy_image(1, "{'descr': '<u1', 'fortran_order': False, 'shape': (4,), }\n", f6, 4),
               &t) &&
        t.dtype == TGC_DT_U8);
  tgc_rt_tensor_free(&t);
  CHECK(npy_ok(npy_image(1, "{'descr': '=f4', 'fortran_order': False, 'shape': (), }\n", f6, 4),
               &t) &&
        t.dtype == TGC_DT_F32 && t.rank == 0 && tgc_rt_get(&t, 0) == 1.0);
  tgc_rt_tensor_free(&t);
  CHECK(npy_ok(npy_image(1, "{'descr': 'f8', 'fortran_order': False, 'shape': (1,), }\n", f6, 8),
               &t) &&
        t.dtype == TGC_DT_F64);
  tgc_rt_tensor_free(&t);
  CHECK(
      npy_ok(npy_image(1, "{'descr': '>i1', 'fortran_order': False, 'shape': (2L, 3L), }\n", f6, 6),
             &t) &&
      t.dtype == TGC_DT_I8 && t.shape[0] == 2 && t.shape[1] == 3);
  tgc_rt_tensor_free(&t);
  unsigned char bools[3] = {0, 2, 1};
  CHECK(
      npy_ok(npy_image(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }\n", bools, 3),
             &t) &&
      t.dtype == TGC_DT_BOOL && ((unsigned char *)t.data)[1] == 1 &&
      ((unsigned char *)t.data)[0] == 0);
  tgc_rt_tensor_free(&t);
  CHECK(npy_ok(npy_image(2, "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }\n", f6, 6),
               &t) &&
        t.dtype == TGC_DT_F16);
  tgc_rt_tensor_free(&t);
  CHECK(
      npy_ok(npy_image(3, "{'descr': '<i2', 'fortran_order': False, 'shape': (0, 9), }\n", NULL, 0),
             &t) &&
      t.dtype == TGC_DT_I16 && t.shape[0] == 0 && t.shape[1] == 9);
  tgc_rt_tensor_free(&t);
  CHECK(npy_ok(npy_image(1,
                         "{'descr': '<i8', 'fortran_order': False, 'shape': "
                         "(1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1), }",
                         f6, 8),
               &t) &&
        t.rank == 16);
  tgc_rt_tensor_free(&t);
}

static void test_npy_errors(void) {
  float f6[6] = {0};
  const char *h23 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
  bytes b = npy_image(1, h23, f6, 24);
  b.data[5] = 'X';
  NPY_BAD(b, "bad magic");
  NPY_BAD(((bytes){(unsigned char *)strdup("PK\x03\x04"), 4}), "bad magic");
  NPY_BAD(((bytes){(unsigned char *)strdup(""), 0}), "bad magic");
  NPY_BAD(((bytes){(unsigned char *)strdup("\x93NUM"), 4}), "truncated .npy header");
  NPY_BAD(((bytes){(unsigned char *)strdup("\x93NUMPY\x01"), 7}), "truncated .npy header");
  b = npy_image(1, h23, NULL, 0);
  b.len = 40; /* the header is cut */
  NPY_BAD(b, "truncated .npy header");
  b = npy_image(2, h23, NULL, 0);
  b.len = 11;
  NPY_BAD(b, "truncated .npy header");
  b = npy_image(1, h23, f6, 24);
  b.data[6] = 4;
  NPY_BAD(b, "unsupported .npy format version 4.0");
  NPY_BAD(npy_image(1, "['descr', '<f4']\n", NULL, 0), "header is not a dict");
  NPY_BAD(npy_image(1, "", NULL, 0), "header is not a dict");
  NPY_BAD(npy_image(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", f6, 8),
          "unsupported dtype descr '<c8'");
  NPY_BAD(npy_image(1, "{'descr': '<U10', 'fortran_order': False, 'shape': (1,), }", f6, 8),
          "unsupported dtype descr '<U10'");
  NPY_BAD(npy_image(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", f6, 24),
          "big-endian arrays are not supported");
  NPY_BAD(npy_image(1, "{'descr': '|f4', 'fortran_order': False, 'shape': (2, 3), }", f6, 24),
          "byte order");
  NPY_BAD(npy_image(1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", f6, 16),
          "object arrays are not supported");
  NPY_BAD(npy_image(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", f6, 8),
          "structured arrays are not supported");
  NPY_BAD(npy_image(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f6, 24),
          "Fortran-ordered arrays are not supported; save with np.ascontiguousarray");
  NPY_BAD(npy_image(1, h23, f6, 20),
          "the data is 20 bytes but shape [2, 3] of '<f4' needs 24 bytes (truncated");
  bytes longer = npy_image(1, h23, f6, 24);
  put(&longer, "abcd", 4);
  NPY_BAD(longer, "the data is 28 bytes but shape [2, 3] of '<f4' needs 24 bytes (trailing bytes)");
  NPY_BAD(npy_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }", f6, 24),
          "negative dim -1");
  NPY_BAD(npy_image(1,
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
                    f6, 24),
          "dim overflows a 64-bit integer");
  NPY_BAD(npy_image(1,
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
                    f6, 24),
          "overflows the address space");
  NPY_BAD(npy_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", f6, 8),
          "is not a tuple");
  NPY_BAD(npy_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", f6, 8),
          "expected '('");
  NPY_BAD(npy_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", f6, 24),
          "expected ','");
  NPY_BAD(npy_image(1,
                    "{'descr': '<f4', 'fortran_order': False, 'shape': "
                    "(1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1), }",
                    f6, 4),
          "more than 16 dims");
  NPY_BAD(npy_image(1, "{'descr': '<f4', 'shape': (2, 3), }", f6, 24), "no 'fortran_order' key");
  NPY_BAD(npy_image(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
                    f6, 24),
          "key 'descr' appears twice");
  NPY_BAD(npy_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", f6, 24),
          "unexpected key 'x'");
  NPY_BAD(npy_image(1, "{'descr': '<f4', 'fortran_order': maybe, 'shape': (2, 3)}", f6, 24),
          "expected True or False");
  NPY_BAD(npy_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} x", f6, 24),
          "unexpected text after the dict");
  NPY_BAD(npy_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", f6, 24),
          "expected ',' or '}'");
  NPY_BAD(npy_image(1, "{'descr: '<f4'}", f6, 24), "expected ':'");
  NPY_BAD(npy_image(1, "{'descr': '<f4\\n'}", f6, 24), "escape sequences are not supported");

  /* The file reader reports the path, and a missing file. */
  tgc_rt_tensor t;
  tgc_rt_err err;
  const char *missing = tmp_path("missing.npy");
  CHECK(tgc_rt_npy_read(missing, &t, &err) == -1 && !t.data);
  CHECK_HAS(err.msg, missing);
  CHECK_HAS(err.msg, "cannot open");
  const char *empty = tmp_path("empty.npy");
  FILE *f = fopen(empty, "wb");
  if (f)
    fclose(f);
  CHECK(tgc_rt_npy_read(empty, &t, &err) == -1);
  CHECK(strncmp(err.msg, empty, strlen(empty)) == 0);
  CHECK_HAS(err.msg, "bad magic");
  remove(empty);
  CHECK(tgc_rt_npy_read(tmpdir, &t, &err) == -1);
  CHECK_HAS(err.msg, "not a regular file");

  /* numpy has no bf16, fp8 or i4; a failed write leaves nothing behind. */
  int64_t two = 2;
  tgc_rt_tensor bf;
  if (tgc_rt_tensor_alloc(&bf, TGC_DT_BF16, 1, &two, &err) == 0) {
    const char *p = tmp_path("bf16.npy");
    CHECK(tgc_rt_npy_write(p, &bf, &err) == -1);
    CHECK_HAS(err.msg, "numpy has no bf16 dtype");
    CHECK(access(p, F_OK) != 0);
    bf.dtype = TGC_DT_I4;
    CHECK(tgc_rt_npy_write(p, &bf, &err) == -1);
    CHECK_HAS(err.msg, "numpy has no i4 dtype");
    bf.dtype = TGC_DT_I8;
    CHECK(tgc_rt_npy_write(tmp_path("no-such-dir/x.npy"), &bf, &err) == -1);
    CHECK_HAS(err.msg, "no-such-dir/x.npy' for writing");
    tgc_rt_tensor_free(&bf);
  }
}

/* ---- safetensors ----------------------------------------------------------------------------- */

static bytes st_image(const char *json, size_t data_len);

static void test_st_round_trip(void) {
  static const struct {
    const char *name;
    tgc_dtype dt;
    uint32_t rank;
    int64_t shape[3];
  } specs[] = {
      /* u8[3] first, so that the tensors after it sit at odd offsets: views need no alignment. */
      {"emb.u8", TGC_DT_U8, 1, {3}},
      {"layer.0.weight", TGC_DT_F32, 2, {2, 3}},
      {"layer.0.bias", TGC_DT_BF16, 1, {4}},
      {"q.e4m3", TGC_DT_F8E4M3, 2, {2, 2}},
      {"q.e5m2", TGC_DT_F8E5M2, 1, {3}},
      {"ids", TGC_DT_I64, 1, {2}},
      {"mask", TGC_DT_BOOL, 1, {5}},
      {"empty", TGC_DT_F32, 2, {0, 4}},
      {"scalar", TGC_DT_F16, 0, {0}},
      {"f64", TGC_DT_F64, 3, {1, 1, 2}},
      {"i32", TGC_DT_I32, 1, {3}},
      {"i16", TGC_DT_I16, 1, {3}},
      {"i8", TGC_DT_I8, 1, {3}},
      {"empty2", TGC_DT_I8, 1, {0}},
  };
  enum { N = sizeof specs / sizeof specs[0] };
  tgc_rt_tensor ts[N];
  const tgc_rt_tensor *tp[N];
  const char *names[N];
  tgc_rt_err err;
  size_t total = 0;
  for (int i = 0; i < N; i++) {
    if (tgc_rt_tensor_alloc(&ts[i], specs[i].dt, specs[i].rank, specs[i].shape, &err))
      abort();
    fill(&ts[i], i);
    tp[i] = &ts[i];
    names[i] = specs[i].name;
    total += tgc_rt_tensor_nbytes(&ts[i]);
  }
  const char *meta[] = {"format", "pt", "producer", "tgc \"test\""};
  const char *path = tmp_path("rt.safetensors");
  int rc = tgc_rt_st_write(path, names, tp, N, meta, 2, &err);
  CHECK(rc == 0);
  if (rc)
    fprintf(stderr, "st write: %s\n", err.msg);

  /* Layout: the header is padded to 8 bytes, the keys are in the given order, metadata first. */
  bytes b = read_file(path);
  uint64_t hlen = 0;
  for (int i = 0; i < 8 && b.len >= 8; i++)
    hlen |= (uint64_t)b.data[i] << (8 * i);
  CHECK(hlen % 8 == 0 && b.len == 8 + hlen + total);
  if (b.len >= 8 + hlen) {
    char *json = malloc(hlen + 1);
    memcpy(json, b.data + 8, hlen);
    json[hlen] = '\0';
    const char *meta_json =
        "{\"__metadata__\":{\"format\":\"pt\",\"producer\":\"tgc \\\"test\\\"\"},";
    CHECK(strncmp(json, meta_json, strlen(meta_json)) == 0);
    CHECK_HAS(json, "\"emb.u8\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}");
    CHECK_HAS(json,
              "\"layer.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[3,27]}");
    CHECK_HAS(json, "\"scalar\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\"");
    CHECK_HAS(json, "\"q.e4m3\":{\"dtype\":\"F8_E4M3\"");
    CHECK_HAS(json, "\"mask\":{\"dtype\":\"BOOL\"");
    const char *prev = json;
    bool ordered = true;
    for (int i = 0; i < N; i++) {
      char key[64];
      snprintf(key, sizeof key, "\"%s\":", names[i]);
      const char *at = strstr(json, key);
      ordered = ordered && at && at > prev;
      prev = at ? at : prev;
    }
    CHECK(ordered);
    free(json);
  }

  for (int pass = 0; pass < 2; pass++) {
    tgc_rt_safetensors *st = NULL;
    rc = pass == 0 ? tgc_rt_st_open(path, &st, &err)
                   : tgc_rt_st_open_mem(b.data, b.len, "mem", &st, &err);
    CHECK(rc == 0 && st);
    if (rc) {
      fprintf(stderr, "st open: %s\n", err.msg);
      continue;
    }
    CHECK(tgc_rt_st_count(st) == N);
    bool sorted = true;
    for (size_t i = 1; i < tgc_rt_st_count(st); i++)
      sorted = sorted && strcmp(tgc_rt_st_name(st, i - 1), tgc_rt_st_name(st, i)) < 0;
    CHECK(sorted);
    int same = 0;
    for (int i = 0; i < N; i++) {
      tgc_rt_tensor v;
      if (tgc_rt_st_get(st, names[i], &v, &err) == 0 && !v.owned && same_tensor(&v, &ts[i])) {
        /* element access through the (possibly unaligned) view agrees with the original */
        bool eq = true;
        for (size_t k = 0; k < tgc_rt_tensor_numel(&v); k++)
          eq = eq && tgc_rt_get_i64(&v, k) == tgc_rt_get_i64(&ts[i], k) &&
               (tgc_rt_get(&v, k) == tgc_rt_get(&ts[i], k) ||
                tgc_rt_get(&v, k) != tgc_rt_get(&v, k));
        same += eq;
      }
    }
    CHECK(same == N);
    tgc_rt_tensor v;
    strcpy(err.msg, "untouched");
    CHECK(tgc_rt_st_get(st, "no.such.tensor", &v, &err) == 1);
    CHECK_STR(err.msg, "untouched");
    CHECK(tgc_rt_st_get(st, "", &v, &err) == 1);
    tgc_rt_st_close(st);
  }
  free(b.data);

  /* No tensors at all: a header of {} and an empty data section. */
  const char *empty = tmp_path("empty.safetensors");
  CHECK(tgc_rt_st_write(empty, NULL, NULL, 0, NULL, 0, &err) == 0);
  tgc_rt_safetensors *st = NULL;
  CHECK(tgc_rt_st_open(empty, &st, &err) == 0 && st && tgc_rt_st_count(st) == 0);
  tgc_rt_st_close(st);
  remove(empty);

  /* i4: packed two per byte into a U8 tensor (element 2j in the low nibble of byte j), its shape in the metadata,
   * and unpacked again when read */
  const char *i4path = tmp_path("i4.safetensors");
  int8_t i4v[3] = {-8, 7, -1};
  tgc_rt_tensor i4 = {.dtype = TGC_DT_I4, .rank = 2, .shape = {1, 3}, .data = i4v};
  const tgc_rt_tensor *i4p[1] = {&i4};
  const char *i4names[1] = {"w.q4"};
  CHECK(tgc_rt_st_write(i4path, i4names, i4p, 1, NULL, 0, &err) == 0);
  bytes file = read_file(i4path);
  size_t flen = file.len;
  unsigned char *raw = file.data;
  uint64_t hl = 0;
  for (int i = 0; raw && i < 8; i++)
    hl |= (uint64_t)raw[i] << (8 * i);
  CHECK(raw && flen == 8 + hl + 2 && raw[8 + hl] == 0x78 && raw[8 + hl + 1] == 0x0F);
  char header[512] = "";
  if (raw && hl < sizeof header)
    memcpy(header, raw + 8, hl);
  CHECK(strstr(header, "\"tgc.i4.w.q4\":\"1,3\"") != NULL);
  CHECK(strstr(header, "\"dtype\":\"U8\",\"shape\":[2]") != NULL);
  free(raw);
  tgc_rt_safetensors *st4 = NULL;
  CHECK(tgc_rt_st_open(i4path, &st4, &err) == 0);
  tgc_rt_tensor back;
  CHECK(st4 && tgc_rt_st_get(st4, "w.q4", &back, &err) == 0 && back.dtype == TGC_DT_I4 && back.rank == 2 &&
        back.shape[0] == 1 && back.shape[1] == 3 && tgc_rt_get_i64(&back, 0) == -8 && tgc_rt_get_i64(&back, 1) == 7 &&
        tgc_rt_get_i64(&back, 2) == -1);
  tgc_rt_st_close(st4);
  remove(i4path);
  /* the metadata must name a U8 tensor of the packed size */
  bytes bad4 = st_image("{\"__metadata__\":{\"tgc.i4.w\":\"5\"},\"w\":{\"dtype\":\"U8\",\"shape\":[2],"
                        "\"data_offsets\":[0,2]}}", 2);
  CHECK(tgc_rt_st_open_mem(bad4.data, bad4.len, "bad4", &st4, &err) == -1);
  CHECK_HAS(err.msg, "bad4: tensor 'w': an i4 tensor of 5 elements is stored as U8[3], not U8 of 2 bytes");
  free(bad4.data);
  bad4 = st_image("{\"__metadata__\":{\"tgc.i4.v\":\"2\"},\"w\":{\"dtype\":\"U8\",\"shape\":[1],"
                  "\"data_offsets\":[0,1]}}", 1);
  CHECK(tgc_rt_st_open_mem(bad4.data, bad4.len, "bad4", &st4, &err) == -1);
  CHECK_HAS(err.msg, "bad4: metadata 'tgc.i4.v' names no tensor");
  free(bad4.data);

  /* Writer errors: duplicate names, the reserved key; nothing is left behind. */
  const char *bad = tmp_path("bad.safetensors");
  const char *dup[] = {"a", "b", "a"};
  CHECK(tgc_rt_st_write(bad, dup, tp, 3, NULL, 0, &err) == -1);
  CHECK_HAS(err.msg, "tensor 'a' is given twice");
  const char *reserved[] = {"__metadata__"};
  CHECK(tgc_rt_st_write(bad, reserved, tp, 1, NULL, 0, &err) == -1);
  CHECK_HAS(err.msg, "'__metadata__' cannot name a tensor");
  CHECK(access(bad, F_OK) != 0);

  for (int i = 0; i < N; i++)
    tgc_rt_tensor_free(&ts[i]);
  remove(path);
}

/* A safetensors image: the header length, JSON, then DATA_LEN bytes of data. */
static bytes st_image(const char *json, size_t data_len) {
  bytes b = {NULL, 0};
  uint64_t n = strlen(json);
  unsigned char len[8];
  for (int i = 0; i < 8; i++)
    len[i] = (unsigned char)(n >> (8 * i));
  put(&b, len, 8);
  put(&b, json, n);
  for (size_t i = 0; i < data_len; i++) {
    unsigned char c = (unsigned char)i;
    put(&b, &c, 1);
  }
  return b;
}

static void st_bad(bytes b, const char *want1, const char *want2, int line) {
  tgc_rt_safetensors *st = NULL;
  tgc_rt_err err;
  strcpy(err.msg, "(no message)");
  int rc = tgc_rt_st_open_mem(b.data, b.len, "bad.safetensors", &st, &err);
  free(b.data);
  if (rc == -1 && !st && strncmp(err.msg, "bad.safetensors: ", 17) == 0 && strstr(err.msg, want1) &&
      (!want2 || strstr(err.msg, want2))) {
    passed++;
    return;
  }
  failed++;
  fprintf(stderr,
          "%s:%d: safetensors error check failed (rc %d): want \"%s\"%s%s%s\n  message: \"%s\"\n",
          __FILE__, line, rc, want1, want2 ? " and \"" : "", want2 ? want2 : "", want2 ? "\"" : "",
          err.msg);
  tgc_rt_st_close(st);
}
#define ST_BAD(b, w1, w2) st_bad((b), (w1), (w2), __LINE__)

static bool st_ok(bytes b, size_t count) {
  tgc_rt_safetensors *st = NULL;
  tgc_rt_err err;
  int rc = tgc_rt_st_open_mem(b.data, b.len, "ok.safetensors", &st, &err);
  if (rc)
    fprintf(stderr, "unexpected safetensors error: %s\n", err.msg);
  bool ok = rc == 0 && tgc_rt_st_count(st) == count;
  tgc_rt_st_close(st);
  free(b.data);
  return ok;
}

static void test_st_errors(void) {
  bytes b = st_image("{}", 0);
  b.len = 5;
  ST_BAD(b, "truncated file", "5 bytes");
  b = st_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
  b.data[0] = 0xE8; /* N = 1000 */
  b.data[1] = 0x03;
  ST_BAD(b, "header length 1000 exceeds", "truncated");
  b = st_image("{}", 0);
  memset(b.data, 0xFF, 8); /* N = 2^64 - 1 */
  ST_BAD(b, "header length 18446744073709551615 exceeds", NULL);
  ST_BAD(st_image("[1, 2]", 0), "the header is not a JSON object", NULL);
  ST_BAD(st_image("\"str\"", 0), "the header is not a JSON object", NULL);
  ST_BAD(st_image("{\"a\": {\"dtype\": }", 0), "JSON syntax error", "byte 24 of the file");
  ST_BAD(st_image("", 0), "JSON syntax error", NULL);
  ST_BAD(st_image("{} x", 0), "unexpected bytes after the JSON header at byte 11", NULL);
  ST_BAD(st_image("{\"w\":{\"dtype\":\"F9\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
         "tensor 'w'", "unknown dtype 'F9'");
  ST_BAD(st_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4),
         "tensor 'w'", "end beyond the data section (4 bytes)");
  ST_BAD(st_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                  12),
         "tensors 'a' and 'b' overlap", "[0, 8] and [4, 12]");
  ST_BAD(st_image("{\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                  "\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}",
                  8),
         "tensors 'b' and 'a' overlap", NULL);
  ST_BAD(st_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
         "tensor 'w'", "shape [3] of F32 needs 12 bytes but data offsets [0, 8] hold 8");
  ST_BAD(st_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4),
         "tensor 'w'", "shape entry 0 (-1) is negative");
  ST_BAD(st_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,4]}}", 4),
         "tensor 'w'", "is not an integer");
  ST_BAD(st_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,4]}}", 4),
         "tensor 'w'", "shape entry 0 is not an integer");
  ST_BAD(st_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4),
         "is too large", NULL);
  ST_BAD(
      st_image(
          "{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4),
      "tensor 'w'", "overflows the address space");
  ST_BAD(st_image("{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],\"data_"
                  "offsets\":[0,1]}}",
                  1),
         "rank 17 exceeds", NULL);
  ST_BAD(st_image("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[3,1]}}", 4),
         "begin after they end", NULL);
  ST_BAD(st_image("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 4),
         "data offset begin (-1)", "negative");
  ST_BAD(st_image("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 4),
         "\"data_offsets\" is not", NULL);
  ST_BAD(st_image("{\"w\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 4),
         "tensor 'w': missing \"dtype\"", NULL);
  ST_BAD(st_image("{\"w\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 4), "missing \"shape\"",
         NULL);
  ST_BAD(st_image("{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", 4), "missing \"data_offsets\"", NULL);
  ST_BAD(st_image("{\"w\":{\"dtype\":8,\"shape\":[1],\"data_offsets\":[0,1]}}", 4),
         "\"dtype\" is not a string", NULL);
  ST_BAD(st_image("{\"w\":{\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]}}", 4),
         "\"shape\" is not an array", NULL);
  ST_BAD(st_image("{\"w\":[1]}", 4), "tensor 'w': entry is not a JSON object", NULL);
  ST_BAD(st_image("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                  "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                  4),
         "tensor 'w' appears twice", NULL);
  ST_BAD(st_image("{\"__metadata__\":{\"a\":1}}", 0),
         "\"__metadata__\" is not an object of strings", NULL);

  /* Accepted: metadata, empty tensors anywhere (even inside another's range), gaps, padding, any
   * key order. */
  CHECK(st_ok(
      st_image("{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"data_offsets\":[0,4],\"shape\":[],"
               "\"dtype\":\"F32\"}}        ",
               4),
      1));
  CHECK(st_ok(st_image("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                       "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
                       "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[12,12]},"
                       "\"c\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[10,12]}}",
                       12),
              4));
  CHECK(st_ok(st_image("{}", 0), 0));

  /* The file reader names the path. */
  tgc_rt_safetensors *st = NULL;
  tgc_rt_err err;
  const char *missing = tmp_path("missing.safetensors");
  CHECK(tgc_rt_st_open(missing, &st, &err) == -1 && !st);
  CHECK_HAS(err.msg, "missing.safetensors: cannot open");
  const char *empty = tmp_path("empty.safetensors");
  FILE *f = fopen(empty, "wb");
  if (f)
    fclose(f);
  CHECK(tgc_rt_st_open(empty, &st, &err) == -1 && !st);
  CHECK_HAS(err.msg, "empty.safetensors: truncated file: 0 bytes");
  remove(empty);
}

/* tgc_rt_write_file: a regular file is replaced (its mode kept), a symlink written through (the link kept), a
 * FIFO replaced only with TGC_RT_WRITE_REPLACE (a FIFO nobody reads is never opened, so nothing blocks). */
static void test_write_file(void) {
  tgc_rt_err err;
  tgc_rt_chunk c[2] = {{"ab", 2}, {"cd", 2}};
  const char *reg = tmp_path("w-reg");
  FILE *f = fopen(reg, "wb");
  CHECK(f != NULL);
  fclose(f);
  CHECK(chmod(reg, 0640) == 0);
  CHECK(tgc_rt_write_file(reg, c, 2, 0, &err) == 0);
  bytes b = read_file(reg);
  CHECK(b.len == 4 && memcmp(b.data, "abcd", 4) == 0);
  free(b.data);
  struct stat st;
  CHECK(stat(reg, &st) == 0 && (st.st_mode & 07777) == 0640);
  const char *link = tmp_path("w-link");
  CHECK(symlink("w-reg", link) == 0);
  CHECK(tgc_rt_write_file(link, c + 1, 1, 0, &err) == 0);
  CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
  b = read_file(reg);
  CHECK(b.len == 2 && memcmp(b.data, "cd", 2) == 0);
  free(b.data);
  const char *fifo = tmp_path("w-fifo");
  CHECK(mkfifo(fifo, 0644) == 0);
  CHECK(tgc_rt_write_file(fifo, c, 1, TGC_RT_WRITE_REPLACE, &err) == 0);
  CHECK(lstat(fifo, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 2);
  CHECK(tgc_rt_write_file(tmpdir, c, 1, 0, &err) == -1);
  CHECK_HAS(err.msg, "it is a directory");
  unlink(link);
  unlink(reg);
  unlink(fifo);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "%s", "/tmp/tgc-test-rt-io-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_tensors();
  test_npy_round_trip();
  test_npy_spellings();
  test_npy_errors();
  test_st_round_trip();
  test_st_errors();
  test_write_file();
  /* Every test removed its files; rmdir fails if a temporary of an atomic write was left behind. */
  int rc = rmdir(tmpdir);
  CHECK(rc == 0);
  if (rc)
    fprintf(stderr, "%s is not empty\n", tmpdir);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

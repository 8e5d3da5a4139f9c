/* libtgc_rt: tensors, errors, dtype conversion, .npy and safetensors I/O. The runtime includes no IR
 * headers: it shares only the plain-data dtype and op tables (include/tgc/). */
#ifndef TGC_RT_H
#define TGC_RT_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tgc/dtype.h"
#include "tgc/limits.h"

#if defined(__GNUC__)
#define TGC_RT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TGC_RT_PRINTF(f, a)
#endif

/* ---- errors ------------------------------------------------------------------------------------ */

/* Runtime functions return 0 on success and -1 on failure, with a message (no trailing newline) in ERR,
 * which names the file, tensor, byte offset or dim concerned. */
typedef struct tgc_rt_err {
  char msg[1024];
} tgc_rt_err;

int tgc_rt_errorf(tgc_rt_err *err, const char *fmt, ...) TGC_RT_PRINTF(2, 3);

/* ---- tensors ----------------------------------------------------------------------------------- */

/* The rank limit shared with the compiler (TGC_MAX_RANK); tensors above it are rejected where they enter. */
enum { TGC_RT_MAX_RANK = TGC_MAX_RANK };

/* A dense, C-ordered tensor. Elements are stored in their dtype's format: IEEE f64/f32/f16, bf16 (the top
 * 16 bits of an f32), f8e4m3 (OCP E4M3FN: no infinities, one NaN encoding per sign), f8e5m2, little-endian
 * integers, bool as one byte 0/1, and i4 unpacked as one sign-extended int8 per element. */
typedef struct tgc_rt_tensor {
  tgc_dtype dtype;
  uint32_t rank;
  int64_t shape[TGC_RT_MAX_RANK];
  void *data;
  bool owned; /* data was allocated by tgc_rt_tensor_alloc and is freed by tgc_rt_tensor_free */
} tgc_rt_tensor;

/* Bytes per element in memory (i4 and bool take one byte). */
size_t tgc_rt_dtype_size(tgc_dtype dt);
/* Element count; false when it overflows size_t or a dim is negative. */
bool tgc_rt_numel(uint32_t rank, const int64_t *shape, size_t *out);
/* Allocates zeroed storage for the given shape; fails cleanly on overflow or out of memory. */
int tgc_rt_tensor_alloc(tgc_rt_tensor *t, tgc_dtype dt, uint32_t rank, const int64_t *shape, tgc_rt_err *err);
void tgc_rt_tensor_free(tgc_rt_tensor *t);
size_t tgc_rt_tensor_numel(const tgc_rt_tensor *t);
size_t tgc_rt_tensor_nbytes(const tgc_rt_tensor *t);
/* Formats the shape as "[2, 3]" into BUF. */
void tgc_rt_shape_str(uint32_t rank, const int64_t *shape, char *buf, size_t n);

/* ---- dtype conversion (round to nearest, ties to even) ----------------------------------------- */

uint16_t tgc_rt_f32_to_f16(float x);
float tgc_rt_f16_to_f32(uint16_t h);
uint16_t tgc_rt_f32_to_bf16(float x);
float tgc_rt_bf16_to_f32(uint16_t h);
/* E4M3FN saturates nothing: values beyond 448 (after rounding) become NaN, as torch's cast does. */
uint8_t tgc_rt_f32_to_f8e4m3(float x);
float tgc_rt_f8e4m3_to_f32(uint8_t v);
/* E5M2 has infinities: values beyond 57344 (after rounding) become +-inf. */
uint8_t tgc_rt_f32_to_f8e5m2(float x);
float tgc_rt_f8e5m2_to_f32(uint8_t v);

/* Element I of T as a double (integers exactly up to 2^53; i64 beyond that rounds). */
double tgc_rt_get(const tgc_rt_tensor *t, size_t i);
/* Stores X into element I of T, rounding to T's dtype: floats with RNE (f32 first rounds the double to
 * float); integers truncate toward zero and wrap modulo 2^bits like a C cast of an in-range value (NaN -> 0);
 * bool is X != 0. */
void tgc_rt_set(tgc_rt_tensor *t, size_t i, double x);
/* Exact integer access for integer and bool dtypes. */
int64_t tgc_rt_get_i64(const tgc_rt_tensor *t, size_t i);
void tgc_rt_set_i64(tgc_rt_tensor *t, size_t i, int64_t x);

/* ---- quantization arithmetic (runtime/quant.c) ------------------------------------------------- */

/* The largest magnitude a symmetric scheme maps to in STORAGE: 127 (i8), 7 (i4), 255 (u8), 448 (f8e4m3), 57344
 * (f8e5m2). */
double tgc_rt_quant_qmax(tgc_dtype storage);
/* The scale for a clipping threshold AMAX: amax / QMAX as SCALE_DTYPE stores it (f32 or f16), or 1 when AMAX is 0,
 * not finite, or the scale would round to 0 there. */
double tgc_rt_quant_scale(double amax, double qmax, tgc_dtype scale_dtype);
/* What `quantize` stores for X (docs/ir.md 8.9), before the conversion to STORAGE: integers round(x / scale) +
 * zero_point (ties to even) clamped to the dtype's range, NaN -> 0; fp8 x / scale saturated to +-qmax (NaN stays
 * NaN), which tgc_rt_set then rounds to the format. */
double tgc_rt_quant_store(double x, double scale, double zero_point, tgc_dtype storage);
/* tgc_rt_quant_store's integer case for storage of range [LO, HI], inline: for searches that round every weight
 * many times (the quantize pass's int4 clipping). */
static inline double tgc_rt_quant_int(double x, double scale, double zero_point, double lo, double hi) {
  double r = nearbyint(x / scale) + zero_point; /* the default rounding mode: ties to even */
  return isnan(r) ? 0 : r < lo ? lo : r > hi ? hi : r;
}
/* Packs Q, an i4 weight [N, K] (one value -8..7 per byte, row-major; N a multiple of 8, K of 128), into OUT (N * K
 * / 2 bytes) in the order the w4 GEMM kernel reads (codegen/kernels/w4gemm.cuh): 512-byte blocks, one per 8 rows
 * and 128 columns, each lane's tensor-core fragments in 16 contiguous bytes. */
#define TGC_RT_W4_KSPAN 128 /* K's multiple */
#define TGC_RT_W4_NTILE 8   /* N's multiple */
void tgc_rt_pack_w4(const int8_t *q, int64_t n, int64_t k, uint8_t *out);

/* ---- comparing results ------------------------------------------------------------------------- */

/* The relative L2 error a result of dtype DT may have against its reference: 1e-5 for f32 and f64 (the fp32
 * policy of docs/codegen.md), 1e-2 for f16 and bf16, 1e-1 for f8e4m3 and f8e5m2 (half an ulp of a 3- or 2-bit
 * mantissa is 6-12%: one element rounded the other way is within it), 0 for integers and bool (exact). The one
 * table of tolerances: `tgc run --check` and --verify-each=numerics judge by it through tgc_rt_compare. */
double tgc_rt_tolerance(tgc_dtype dt);

/* The relative error an f32 or f64 result of fp8 tensor-core GEMMs may have against the exact sums (the CPU
 * backend's): Hopper's fp8 MMA adds its products with about 14 significant bits (an f32 product with k = 64 came
 * within 5.8e-5 of the exact sum on an H100, ~2^-14), so 2^-12 where the fp32 policy's 1e-5 cannot hold. */
#define TGC_RT_FP8_SUM_TOL 2.44140625e-4

/* How GOT differs from the reference REF (same dtype and shape), as `tgc run --check` and
 * --verify-each=numerics judge it (test/runtime/Inputs/optest.py, the numpy side, judges the same way). Floats:
 * MISMATCHES counts the elements where a NaN or an infinity is not matched (NaN where REF has NaN, the same
 * infinity where REF has one, nothing non-finite elsewhere) and REL is the relative L2 error over the elements
 * finite in both; integers and bool: MISMATCHES counts the elements that differ (compared exactly, as int64) and
 * REL is 0. A dtype or element count other than REF's is all mismatches. OK: no mismatch and REL <= TOL, TOL
 * being tgc_rt_tolerance(REF's dtype). */
typedef struct tgc_rt_compare_result {
  double rel, tol;
  size_t mismatches;
  bool ok;
} tgc_rt_compare_result;
void tgc_rt_compare(const tgc_rt_tensor *got, const tgc_rt_tensor *ref, tgc_rt_compare_result *r);

/* ---- random tensors ---------------------------------------------------------------------------- */

/* splitmix64: small, well mixed, the same on every platform, so that a seed reproduces inputs. */
uint64_t tgc_rt_rand_next(uint64_t *state);
/* Fills T with test data: floats uniform in [-1, 1), integers uniform in [0, 4), bools 0/1. */
void tgc_rt_fill_random(tgc_rt_tensor *t, uint64_t *state);

/* ---- writing files ----------------------------------------------------------------------------- */

/* The one way tgc writes an output file: the concatenation of N chunks to PATH.
 * - a regular file, or a name that does not exist yet: atomically, into PATH.tmp.PID beside it, flushed to disk,
 *   then renamed over it (the replaced file's permissions kept), so PATH is either untouched or complete;
 * - a symlink: the same for the file it names, the link kept (a dangling link creates its target);
 * - a device, a FIFO or "-" (standard output): written in place, never replaced by a regular file;
 * - a directory: an error.
 * With TGC_RT_WRITE_REPLACE, PATH is always replaced by a new regular file whatever it is (for files tgc owns,
 * such as kernel cache entries). */
typedef struct tgc_rt_chunk {
  const void *data;
  size_t len;
} tgc_rt_chunk;
enum { TGC_RT_WRITE_REPLACE = 1 };
int tgc_rt_write_file(const char *path, const tgc_rt_chunk *chunks, size_t n, unsigned flags, tgc_rt_err *err);

/* ---- .npy (format versions 1.0, 2.0, 3.0; little-endian, C order) ------------------------------ */

int tgc_rt_npy_read(const char *path, tgc_rt_tensor *out, tgc_rt_err *err);
/* Parses an in-memory .npy image; NAME is used in messages. */
int tgc_rt_npy_parse(const void *data, size_t len, const char *name, tgc_rt_tensor *out, tgc_rt_err *err);
/* Writes T with tgc_rt_write_file. f64 f32 f16 i64 i32 i16 i8 u8 bool only: numpy has no
 * bf16, fp8 or i4 dtype, which are an error. */
int tgc_rt_npy_write(const char *path, const tgc_rt_tensor *t, tgc_rt_err *err);

/* ---- safetensors -------------------------------------------------------------------------------- */

typedef struct tgc_rt_safetensors tgc_rt_safetensors;

/* Opens a .safetensors file: the header is parsed and checked (every dtype known, every shape consistent
 * with its byte range, every range inside the data section, no two ranges overlapping); the data is
 * memory-mapped, not copied. */
int tgc_rt_st_open(const char *path, tgc_rt_safetensors **out, tgc_rt_err *err);
/* The same over a caller-owned buffer that must outlive the handle (used by tests and the fuzzer). */
int tgc_rt_st_open_mem(const void *data, size_t len, const char *name, tgc_rt_safetensors **out, tgc_rt_err *err);
void tgc_rt_st_close(tgc_rt_safetensors *st);
size_t tgc_rt_st_count(const tgc_rt_safetensors *st);
const char *tgc_rt_st_name(const tgc_rt_safetensors *st, size_t i);
/* Finds NAME and fills *VIEW with a tensor whose data points into the mapping (not owned, read-only).
 * Returns 0 when found, 1 when there is no such tensor (ERR untouched), -1 on error. */
int tgc_rt_st_get(const tgc_rt_safetensors *st, const char *name, tgc_rt_tensor *view, tgc_rt_err *err);
/* Writes N named tensors with tgc_rt_write_file, in the given order, with an optional __metadata__ of string pairs
 * (META holds NMETA key/value pairs, may be NULL). safetensors has no 4-bit dtype: an i4 tensor is stored as a U8
 * tensor of its elements packed two per byte (element 2j in the low nibble of byte j), with the metadata entry
 * "tgc.i4.NAME": "D0,D1,..." giving its shape, and tgc_rt_st_open unpacks it again. */
int tgc_rt_st_write(const char *path, const char *const *names, const tgc_rt_tensor *const *tensors, size_t n,
                    const char *const *meta, size_t nmeta, tgc_rt_err *err);

#endif

/* Pointwise and rows kernels. A *pointwise* kernel computes VEC consecutive output elements per thread (16-byte
 * vector loads and stores of what it reads at the output's own index, a scalar loop for the tail). A *rows*
 * kernel runs one block per row when every reduction of the launch is along the output's last dim (layer_norm,
 * rms_norm, softmax, reduce over the last axis, with pointwise prologues and epilogues). Also here: the kernel
 * preamble and the device helpers kernels include when they need them (integer pow and division, fp8, float to
 * integer casts, block reductions), constants that need a buffer, and epilogue kernels. */
#include "cuda_internal.h"

void tgc_cuda_store_at(emitter *e, const char *dst, const char *x, tgc_dtype dt) {
  switch (dt) {
  case TGC_DT_F16: line(e, "%s = __float2half_rn(%s);", dst, x); break;
  case TGC_DT_BF16: line(e, "%s = __float2bfloat16_rn(%s);", dst, x); break;
  case TGC_DT_F8E4M3:
  case TGC_DT_F8E5M2: /* not __nv_fp8_e4m3(x), which saturates: the CPU backend's rounding, overflow included */
    e->f8 = true;
    line(e, "%s.__x = (__nv_fp8_storage_t)tgc_f8_store(%s, %s);", dst, x, fp8_fmt(dt));
    break;
  default: line(e, "%s = (%s)%s;", dst, tgc_cuda_storage_type(dt), x); break;
  }
}

static void store(emitter *e, const char *x, tgc_dtype dt) { tgc_cuda_store_at(e, "out[i]", x, dt); }

/* An integer type of BYTES bytes (1 to 16) for vector loads and stores. */
static const char *vector_type(uint32_t bytes) {
  return bytes >= 16 ? "uint4" : bytes == 8 ? "uint2" : bytes == 4 ? "unsigned" : bytes == 2 ? "unsigned short"
                                                                                        : "unsigned char";
}

const char *const tgc_cuda_kernel_headers = "#include <cuda_fp16.h>\n#include <cuda_bf16.h>\n#include <cuda_fp8.h>\n"
                                            "#ifndef INFINITY\n#define INFINITY __int_as_float(0x7f800000)\n#endif\n"
                                            "#ifndef NAN\n#define NAN __int_as_float(0x7fffffff)\n#endif\n";

/* Integer power by squaring, wrapping modulo 2^64 as the CPU backend's; a negative exponent is an error, which
 * the kernel reports as VALUE in *err (tgc_rt_kerr_value; the runtime names it at the launch). */
static const char *const IPOW =
    "__device__ long long tgc_ipow(long long b, long long e, int *err, int value) {\n"
    "  if (e < 0) {\n"
    "    atomicExch(err, value);\n"
    "    return 0;\n"
    "  }\n"
    "  unsigned long long r = 1, x = (unsigned long long)b;\n"
    "  for (; e > 0; e >>= 1, x *= x)\n"
    "    if (e & 1)\n"
    "      r *= x;\n"
    "  return (long long)r;\n"
    "}\n";

/* Integer division as the CPU backend's: by zero an error, which the kernel reports as VALUE in *err;
 * INT64_MIN / -1 wraps to INT64_MIN. */
static const char *const IDIV =
    "__device__ long long tgc_idiv(long long a, long long b, int *err, int value) {\n"
    "  if (b == 0) {\n"
    "    atomicExch(err, value);\n"
    "    return 0;\n"
    "  }\n"
    "  return b == -1 ? (long long)(0ULL - (unsigned long long)a) : a / b;\n"
    "}\n";

/* rint(X / SCALE) as the CPU backend's integer quantize (in double) without the double division: y = X * INV
 * (INV as in tgc_f8_quant_bits; |y - X / SCALE| <= |y| 2^-22.4) rounds the same way unless the quotient may lie
 * on the other side of a half-integer: y within |y| 2^-21 of one (y - rintf(y) is exact below 2^22), |y| >= 2^20
 * (beyond every integer dtype's clamp but i32's), NaN or infinite -- then the double division decides. */
static const char *const QINT =
    "__device__ double tgc_quant_rint(float x, float inv, double scale) {\n"
    "  const float y = x * inv, r = rintf(y);\n"
    "  if (fabsf(y) < 1048576.0f && 0.5f - fabsf(y - r) > fabsf(y) * 4.76837158203125e-07f)\n"
    "    return (double)r;\n"
    "  return rint((double)x / scale);\n"
    "}\n";

/* A float to an integer as the CPU backend's cast (runtime/tensor.c, wrap_double): NaN and infinities give 0,
 * other values are truncated and wrap modulo 2^64 (then to the dtype's bits when stored). */
static const char *const F2I =
    "__device__ long long tgc_f2i(double x) {\n"
    "  if (x > -9223372036854775808.0 && x < 9223372036854775808.0)\n"
    "    return (long long)x; /* in range: the C cast truncates */\n"
    "  if (x != x || x - x != 0.0)\n"
    "    return 0;\n"
    "  const double r = fmod(trunc(x), 18446744073709551616.0);\n"
    "  const unsigned long long mag = (unsigned long long)fabs(r);\n"
    "  return (long long)(r < 0 ? 0ULL - mag : mag);\n"
    "}\n";

/* OCP fp8 (E4M3FN: EB 4, MB 3, FN 1; E5M2: 5, 2, 0) exactly as runtime/convert.c: round to nearest even on
 * the bits of a double (so an f64 is rounded once), overflow to infinity, or to NaN for E4M3FN, which has no
 * infinity; and back to float. CUDA's __nv_fp8_e4m3(x) saturates instead. */
static const char *const FP8 =
    "__device__ unsigned tgc_f8_bits(double x, int eb, int mb, int fn) {\n"
    "  const unsigned long long b = (unsigned long long)__double_as_longlong(x);\n"
    "  const unsigned s = (b >> 63) ? 1u << (eb + mb) : 0u, ones = ((1u << eb) - 1) << mb;\n"
    "  const unsigned nan = s | ones | (fn ? (1u << mb) - 1 : 1u << (mb - 1)), inf = fn ? nan : s | ones;\n"
    "  const int be = (int)((b >> 52) & 0x7FF);\n"
    "  const unsigned long long frac = b & ((1ULL << 52) - 1);\n"
    "  if (be == 0x7FF)\n"
    "    return frac ? nan : inf;\n"
    "  const unsigned long long sig = be ? frac | (1ULL << 52) : frac;\n"
    "  const int exp = be ? be - 1075 : -1074;\n"
    "  if (sig == 0)\n"
    "    return s;\n"
    "  const int bias = (1 << (eb - 1)) - 1, emin = 1 - bias;\n"
    "  const int e = exp + (63 - __clzll((long long)sig));\n"
    "  const int shift = (e >= emin ? e : emin) - mb - exp;\n"
    "  unsigned long long m;\n"
    "  if (shift <= 0) {\n"
    "    m = sig << -shift;\n"
    "  } else if (shift >= 64) {\n"
    "    m = 0; /* sig < 2^53: below half a quantum */\n"
    "  } else {\n"
    "    m = sig >> shift;\n"
    "    const unsigned long long rem = sig & ((1ULL << shift) - 1), half = 1ULL << (shift - 1);\n"
    "    if (rem > half || (rem == half && (m & 1)))\n"
    "      m++;\n"
    "  }\n"
    "  const unsigned long long bits = e < emin ? m : ((unsigned long long)(e + bias) << mb) + (m - (1ULL << mb));\n"
    "  if (fn ? bits >= (ones | ((1u << mb) - 1)) : bits >= ones)\n"
    "    return inf;\n"
    "  return s | (unsigned)bits;\n"
    "}\n"
    "__device__ float tgc_f8_value(unsigned v, int eb, int mb, int fn) {\n"
    "  const int bias = (1 << (eb - 1)) - 1;\n"
    "  const unsigned ef = (v >> mb) & ((1u << eb) - 1), mf = v & ((1u << mb) - 1);\n"
    "  const float sign = (v >> (eb + mb)) & 1 ? -1.0f : 1.0f;\n"
    "  if (ef == (1u << eb) - 1 && (!fn || mf == (1u << mb) - 1))\n"
    "    return mf ? NAN : sign * INFINITY;\n"
    "  /* exact in float: at most 4 significant bits, exponents within float's normals */\n"
    "  const float mant = ef ? (float)((1u << mb) | mf) : (float)mf;\n"
    "  return sign * ldexpf(mant, (ef ? (int)ef : 1) - bias - mb);\n"
    "}\n"
    /* The hardware's converter (cvt to e4m3x2/e5m2x2, sm_89 and later) where it gives the bits above: a quantize
     * through tgc_f8_bits twice was ~150 instructions an element, ten times its memory time. */
    /* X, saturated to the format's finite range (a quantize), rounded to nearest even: the hardware's rounding of
     * (float)X, unless that float is a tie of two fp8 neighbours -- rounding X to float may have moved it onto
     * the tie, and X's own bits decide -- or NaN (its sign): then tgc_f8_bits. Any other float is on X's side of
     * every tie (ties are floats), so rounding twice changes nothing. */
    "__device__ unsigned tgc_f8_sat_bits(double x, int eb, int mb, int fn) {\n"
    "  const float f = (float)x;\n"
    "  if (f == 0.0f) /* |x| below float's subnormals rounds to a signed zero in fp8 too */\n"
    "    return __float_as_uint(f) >> 31 ? 1u << (eb + mb) : 0u;\n"
    "  const unsigned h = __nv_cvt_float_to_fp8(f, __NV_SATFINITE, eb == 4 ? __NV_E4M3 : __NV_E5M2);\n"
    "  const float v = tgc_f8_value(h, eb, mb, fn);\n"
    "  if (f == v)\n"
    "    return h;\n"
    "  if (f != f)\n"
    "    return tgc_f8_bits(x, eb, mb, fn);\n"
    "  const float n = tgc_f8_value(fabsf(f) > fabsf(v) ? h + 1 : h - 1, eb, mb, fn); /* the neighbour on f's side */\n"
    "  return 2.0f * f == v + n ? tgc_f8_bits(x, eb, mb, fn) : h;\n"
    "}\n"
    /* An fp8 value's bits (what every fp8-typed expression holds), by the hardware when it gives them back
     * exactly, bit for bit (signed zeros); NaN, E5M2's infinities and anything else by tgc_f8_bits. Satfinite: PTX
     * has no f32 to e4m3x2/e5m2x2 conversion without it (__NV_NOSAT is emulated in software). */
    /* A quantize to fp8 without the double division: X * INV (INV the float nearest 1 / SCALE, or 1.0f / (float)
     * SCALE; within 3 roundings, |f - X / SCALE| <= |f| 2^-22.4) rounded by the hardware is the exact quotient's
     * rounding unless f lies within |f| 2^-20 of a midpoint of two fp8 neighbours (2 f - (v + n) is exact but
     * for one more rounding, |f| 2^-23) -- or f is zero, NaN or past the largest finite value: then the exact
     * path, X / SCALE in double as the CPU backend. (The double division made quantizing kernels DP-bound.) */
    "__device__ unsigned tgc_f8_quant_bits(float x, float inv, double scale, int eb, int mb, int fn) {\n"
    "  const float f = x * inv;\n"
    "  const unsigned h = __nv_cvt_float_to_fp8(f, __NV_SATFINITE, eb == 4 ? __NV_E4M3 : __NV_E5M2);\n"
    "  const float v = tgc_f8_value(h, eb, mb, fn);\n"
    "  const float n = tgc_f8_value(fabsf(f) > fabsf(v) ? h + 1 : h - 1, eb, mb, fn);\n"
    "  if (f != 0.0f && fabsf(2.0f * f - (v + n)) > fabsf(f) * 9.5367431640625e-07f)\n"
    "    return h;\n"
    "  const double big = eb == 4 ? 448.0 : 57344.0;\n"
    "  double d = (double)x / scale;\n"
    "  d = d > big ? big : d < -big ? -big : d; /* saturate; NaN stays NaN */\n"
    "  return tgc_f8_sat_bits(d, eb, mb, fn);\n"
    "}\n"
    "__device__ unsigned tgc_f8_store(float v, int eb, int mb, int fn) {\n"
    "  const unsigned h = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, eb == 4 ? __NV_E4M3 : __NV_E5M2);\n"
    "  const bool same = __float_as_uint(tgc_f8_value(h, eb, mb, fn)) == __float_as_uint(v);\n"
    "  return same ? h : tgc_f8_bits((double)v, eb, mb, fn);\n"
    "}\n";

/* Block-wide reductions for rows kernels: a butterfly in each warp, then every thread combines the warps'
 * partials (at most 32), so all threads get the result. */
static const char *const BLOCK_REDUCE =
    "template <typename T> struct tgc_sum_op {\n"
    "  __device__ T operator()(T a, T b) const { return a + b; }\n"
    "};\n"
    "template <> struct tgc_sum_op<long long> { /* wrapping, as the CPU backend */\n"
    "  __device__ long long operator()(long long a, long long b) const {\n"
    "    return (long long)((unsigned long long)a + (unsigned long long)b);\n"
    "  }\n"
    "};\n"
    "template <typename T> struct tgc_max_op {\n"
    "  __device__ T operator()(T a, T b) const { return (a > b || a != a) ? a : b; }\n"
    "};\n"
    "template <typename T> struct tgc_min_op {\n"
    "  __device__ T operator()(T a, T b) const { return (a < b || a != a) ? a : b; }\n"
    "};\n"
    "template <typename T, typename Op> __device__ T tgc_block_reduce(T v, Op op) {\n"
    "  __shared__ T part[32];\n"
    "  for (int o = 16; o > 0; o >>= 1)\n"
    "    v = op(v, __shfl_xor_sync(0xffffffffu, v, o));\n"
    "  __syncthreads(); /* the previous reduction's readers are done with part[] */\n"
    "  if ((threadIdx.x & 31) == 0)\n"
    "    part[threadIdx.x >> 5] = v;\n"
    "  __syncthreads();\n"
    "  T r = part[0];\n"
    "  for (int w = 1; w < (int)(blockDim.x >> 5); w++)\n"
    "    r = op(r, part[w]);\n"
    "  return r;\n"
    "}\n";

/* The kernel's signature: inputs, the output, the symbols, the error flag. */
static void signature(tgc_strbuf *src, const char *name, tgc_value *const *ins, uint32_t nin, tgc_dtype out,
                      const tgc_value *root2, const emitter *e) {
  tgc_sb_printf(src, "extern \"C\" __global__ void %s(", name);
  for (uint32_t j = 0; j < nin; j++)
    tgc_sb_printf(src, "const %s *__restrict__ in%u, ", tgc_cuda_storage_type(ins[j]->type->dtype), j);
  tgc_sb_printf(src, "%s *__restrict__ out", tgc_cuda_storage_type(out));
  if (root2)
    tgc_sb_printf(src, ", %s *__restrict__ out2", tgc_cuda_storage_type(root2->type->dtype));
  for (uint32_t s = 0; s < e->nsyms; s++)
    tgc_sb_printf(src, ", long long s_%s", e->syms[s]->name);
  tgc_sb_puts(src, ", int *__restrict__ err) {\n");
}

static uint32_t row_block(const tgc_dim *n) {
  int64_t c;
  if (!tgc_dim_is_const(n, &c))
    return 256;
  return c >= 4096 ? 512 : c >= 512 ? 256 : c >= 128 ? 128 : c > 32 ? 64 : 32;
}

/* The second result at the index I where the root's value is X: stored to DST. */
static void store_root2(emitter *e, const kernel_src *k, const tgc_value *root, const char *x, const index_vec *I,
                        const char *dst) {
  if (!k->root2 || e->failed)
    return;
  e->memo_v = root;
  e->memo_I = *I;
  e->memo_x = x;
  const char *x2 = tgc_cuda_eval(e, k, k->root2, I);
  e->memo_v = NULL;
  if (!e->failed)
    tgc_cuda_store_at(e, dst, x2, k->root2->type->dtype);
}

void tgc_cuda_put_helpers(tgc_strbuf *src, const emitter *e) {
  if (e->ipow)
    tgc_sb_puts(src, IPOW);
  if (e->idiv)
    tgc_sb_puts(src, IDIV);
  if (e->f8)
    tgc_sb_puts(src, FP8);
  if (e->f2i)
    tgc_sb_puts(src, F2I);
  if (e->qint)
    tgc_sb_puts(src, QINT);
}

/* One attempt at a kernel computing ROOT over its type (rows mode or one thread per element). */
static const char *value_kernel_src(gen *g, const char *name, const tgc_value *root, const kernel_src *k,
                                    bool rows, bool reduce_root, const tgc_type *space, emitter *e,
                                    uint32_t *vec_out) {
  tgc_module *m = g->m;
  tgc_strbuf body, src, tail;
  tgc_sb_init(&body);
  tgc_sb_init(&src);
  tgc_sb_init(&tail);
  memset(e, 0, sizeof *e);
  e->out = &body;
  e->indent = 1;
  e->m = m;
  e->code = g->n + 1;
  e->rows = rows;
  const tgc_type *t = rows ? space : root->type;
  if (rows) {
    tgc_type rt = {t->dtype, t->rank - 1, t->dims};
    line(e, "const long long row = blockIdx.x;");
    line(e, "const long long n = %s;", tgc_cuda_dim_str(e, t->dims[t->rank - 1]));
    index_vec R = tgc_cuda_delinearize(e, "row", &rt);
    e->nrow = R.rank;
    for (uint32_t d = 0; d < R.rank; d++)
      e->rowix[d] = R.ix[d];
    tgc_cuda_collect_stats(e, k, root);
    if (k->root2)
      tgc_cuda_collect_stats(e, k, k->root2);
    index_vec I;
    for (uint32_t d = 0; d < R.rank; d++)
      I.ix[d] = R.ix[d];
    if (reduce_root) {
      /* the launch's result is the row's statistic: one thread writes it */
      I.rank = root->type->rank;
      if (I.rank == t->rank)
        I.ix[t->rank - 1] = "0LL"; /* keepdim */
      line(e, "if (threadIdx.x == 0) {");
      e->indent++;
      line(e, "const long long i = row;");
      const char *x = tgc_cuda_eval(e, k, root, &I);
      if (!e->failed)
        store(e, x, root->type->dtype);
      store_root2(e, k, root, x, &I, "out2[i]");
    } else {
      line(e, "#pragma unroll 4");
      line(e, "for (long long j = threadIdx.x; j < n; j += BLOCK) {");
      e->indent++;
      line(e, "const long long i = row * n + j;");
      I.rank = t->rank;
      I.ix[t->rank - 1] = "j";
      const char *x = tgc_cuda_eval(e, k, root, &I);
      if (!e->failed)
        store(e, x, t->dtype);
      store_root2(e, k, root, x, &I, "out2[i]");
    }
    e->indent--;
    line(e, "}");
  } else {
    /* the vector body (lane u of VEC consecutive elements; inputs read at the element's own index come from
     * vectors loaded before the lane loop), then the scalar body for the tail */
    e->vec = true;
    e->root_t = t;
    e->vloaded = tgc_arena_alloc(&m->arena, sizeof *e->vloaded * (k->ninputs + 1));
    e->indent = 2;
    index_vec I = tgc_cuda_delinearize(e, "i", t);
    e->root_I = I;
    const char *x = tgc_cuda_eval(e, k, root, &I);
    if (!e->failed)
      tgc_cuda_store_at(e, "ov[u]", x, t->dtype);
    store_root2(e, k, root, x, &I, "ov2[u]");
    e->vec = false;
    tgc_sb_init(&tail);
    e->out = &tail;
    e->indent = 2;
    I = tgc_cuda_delinearize(e, "i", t);
    x = tgc_cuda_eval(e, k, root, &I);
    if (!e->failed)
      store(e, x, t->dtype);
    store_root2(e, k, root, x, &I, "out2[i]");
    e->out = &body;
  }
  if (e->failed) {
    tgc_sb_free(&body);
    tgc_sb_free(&tail);
    tgc_sb_free(&src);
    return NULL;
  }
  tgc_strbuf count;
  tgc_sb_init(&count);
  if (t->rank == 0)
    tgc_sb_puts(&count, "1LL");
  for (uint32_t d = 0; d < t->rank; d++) {
    if (d)
      tgc_sb_puts(&count, " * ");
    tgc_cuda_dim_c(e, t->dims[d], &count);
  }
  tgc_sb_printf(&src, "// %s\n", g->where);
  tgc_sb_puts(&src, tgc_cuda_kernel_headers);
  tgc_cuda_put_helpers(&src, e);
  if (rows) {
    tgc_sb_printf(&src, "#define BLOCK %u /* threads per block: one block per row */\n", row_block(t->dims[t->rank - 1]));
    tgc_sb_puts(&src, BLOCK_REDUCE);
  }
  uint32_t vec = 1;
  if (!rows) {
    uint32_t widest = (uint32_t)(tgc_dtype_bits(t->dtype) + 7) / 8;
    if (k->root2 && (uint32_t)(tgc_dtype_bits(k->root2->type->dtype) + 7) / 8 > widest)
      widest = (uint32_t)(tgc_dtype_bits(k->root2->type->dtype) + 7) / 8;
    for (uint32_t j = 0; j < k->ninputs; j++)
      if (e->vloaded[j]) {
        uint32_t sz = (uint32_t)(tgc_dtype_bits(k->inputs[j]->type->dtype) + 7) / 8;
        widest = sz > widest ? sz : widest;
      }
    vec = 16 / (widest ? widest : 1);
    *vec_out = vec;
    tgc_sb_printf(&src, "#define VEC %u /* elements per thread: 16 bytes of the widest vector access */\n", vec);
  }
  tgc_sb_putc(&src, '\n');
  signature(&src, name, k->inputs, k->ninputs, root->type->dtype, k->root2, e);
  if (!rows) {
    /* VEC consecutive elements per thread: inputs read at the elements' own index and the output move as one
     * 16-byte access (buffers are 256-byte aligned and FIRST is a multiple of VEC) */
    tgc_sb_printf(&src, "  const long long count = %s;\n", count.data);
    tgc_sb_puts(&src, "  const long long first = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * VEC;\n");
    tgc_sb_puts(&src, "  if (first + VEC <= count) {\n");
    for (uint32_t j = 0; j < k->ninputs; j++)
      if (e->vloaded[j]) {
        tgc_dtype dj = k->inputs[j]->type->dtype;
        uint32_t sz = (uint32_t)(tgc_dtype_bits(dj) + 7) / 8;
        const char *vt = vector_type(sz * vec);
        tgc_sb_printf(&src, "    __align__(16) %s vin%u[VEC];\n", tgc_cuda_storage_type(dj), j);
        tgc_sb_printf(&src, "    *(%s *)vin%u = *(const %s *)&in%u[first];\n", vt, j, vt, j);
      }
    tgc_sb_printf(&src, "    __align__(16) %s ov[VEC];\n", tgc_cuda_storage_type(t->dtype));
    if (k->root2)
      tgc_sb_printf(&src, "    __align__(16) %s ov2[VEC];\n", tgc_cuda_storage_type(k->root2->type->dtype));
    tgc_sb_puts(&src, "#pragma unroll\n    for (int u = 0; u < VEC; u++) {\n");
    tgc_sb_puts(&src, "      const long long i = first + u;\n");
    /* the body was emitted two levels deep; the lane loop is three */
    for (const char *l = body.data ? body.data : ""; *l;) {
      const char *nl = strchr(l, '\n');
      size_t len = nl ? (size_t)(nl - l) : strlen(l);
      tgc_sb_puts(&src, "  ");
      tgc_sb_putn(&src, l, len);
      tgc_sb_putc(&src, '\n');
      l += len + (nl ? 1 : 0);
    }
    const char *ot = vector_type(((uint32_t)(tgc_dtype_bits(t->dtype) + 7) / 8) * vec);
    tgc_sb_puts(&src, "    }\n");
    tgc_sb_printf(&src, "    *(%s *)&out[first] = *(const %s *)ov;\n", ot, ot);
    if (k->root2) {
      const char *ot2 = vector_type(((uint32_t)(tgc_dtype_bits(k->root2->type->dtype) + 7) / 8) * vec);
      tgc_sb_printf(&src, "    *(%s *)&out2[first] = *(const %s *)ov2;\n", ot2, ot2);
    }
    tgc_sb_puts(&src, "    return;\n  }\n");
    tgc_sb_puts(&src, "  for (long long i = first; i < count; i++) {\n");
    tgc_sb_puts(&src, tail.data ? tail.data : "");
    tgc_sb_puts(&src, "  }\n}\n");
  } else {
    tgc_sb_puts(&src, body.data ? body.data : "");
    tgc_sb_puts(&src, "}\n");
  }
  const char *r = tgc_arena_strndup(&m->arena, src.data, src.len);
  tgc_sb_free(&count);
  tgc_sb_free(&body);
  tgc_sb_free(&tail);
  tgc_sb_free(&src);
  return r;
}

/* The constant op whose storage V is (V itself, or a top-level reshape of it), else NULL. */
const tgc_op *tgc_cuda_constant_def(const tgc_value *v) {
  const tgc_value *s = v ? tgc_value_storage(v) : NULL;
  return s && s->def && s->def->opcode == TGC_OP_CONSTANT ? s->def : NULL;
}

/* Adds a kernel computing ROOT into buffer OUT (ROOT's own value unless given), reading INS whose buffers are
 * OUTER (constants among them are inlined). Rows mode when every reduction allows it. False with g->why set
 * when some op cannot be generated. */
bool tgc_cuda_value_kernel(gen *g, const char *kind, const tgc_value *root, tgc_value *const *ins,
                           const tgc_value *const *outer, uint32_t nin, const tgc_value *out) {
  return tgc_cuda_value_kernel2(g, kind, root, ins, outer, nin, out, NULL, NULL);
}

kernel_src tgc_cuda_kernel_inputs(tgc_arena *a, tgc_value *const *ins, const tgc_value *const *outer, uint32_t nin,
                                  const bool *keep, const tgc_value **args) {
  tgc_value **kin = tgc_arena_alloc(a, sizeof *kin * (nin + 1));
  const tgc_value **cargs = tgc_arena_alloc(a, sizeof *cargs * (nin + 1));
  const tgc_op **cdefs = tgc_arena_alloc(a, sizeof *cdefs * (nin + 1));
  uint32_t n = 0, nconst = 0;
  for (uint32_t j = 0; j < nin; j++) {
    if (keep && !keep[j])
      continue;
    const tgc_op *cdef = tgc_cuda_constant_def(outer[j]);
    if (cdef) { /* a reshape keeps the linear order, so the constant is read at the input's linear index */
      cargs[nconst] = ins[j];
      cdefs[nconst++] = cdef;
    } else {
      args[n] = outer[j];
      kin[n++] = ins[j];
    }
  }
  return (kernel_src){kin, n, cargs, cdefs, nconst, NULL};
}

bool tgc_cuda_value_kernel2(gen *g, const char *kind, const tgc_value *root, tgc_value *const *ins,
                            const tgc_value *const *outer, uint32_t nin, const tgc_value *out,
                            const tgc_value *root2, const tgc_value *out2) {
  tgc_module *m = g->m;
  const tgc_value **args = tgc_arena_alloc(&m->arena, sizeof *args * (nin + 3));
  kernel_src k = tgc_cuda_kernel_inputs(&m->arena, ins, outer, nin, NULL, args);
  uint32_t n = k.ninputs;
  args[n] = out ? out : root;
  if (root2)
    args[n + 1] = out2 ? out2 : root2;
  k.root2 = root2;
  char name[96];
  const tgc_op *rd = root->def;
  tgc_cuda_kernel_name(g, name, sizeof name,
              g->launch->opcode == TGC_OP_FUSION && strcmp(kind, "operand") != 0
                  ? tgc_op_attr_str(g->launch, "kind", "fusion")
                  : rd ? tgc_op_name(rd->opcode) : "copy");
  if (strcmp(kind, "epilogue") == 0)
    tgc_cuda_kernel_name(g, name, sizeof name, "gemm_epilogue");
  emitter e;
  bool any = false;
  const char *src = NULL;
  bool reduce_root;
  uint32_t vec = 1;
  const tgc_type *space = tgc_cuda_row_space(&k, root, &reduce_root);
  bool rows = space->rank > 0 && tgc_cuda_rows_ok(&k, space, root, &any) && any;
  if (rows)
    src = value_kernel_src(g, name, root, &k, true, reduce_root, space, &e, &vec);
  if (!src) {
    rows = false;
    src = value_kernel_src(g, name, root, &k, false, false, root->type, &e, &vec);
  }
  if (!src) {
    snprintf(g->why, sizeof g->why, "%s", e.why);
    return false;
  }
  tgc_cuda_kernel *kk = tgc_cuda_add_kernel(g, rows ? "rows" : kind, src, name, args, n + (root2 ? 2 : 1), &e);
  const tgc_type *t = rows ? space : root->type;
  if (rows) {
    kk->grid = TGC_CUDA_GRID_ROWS;
    kk->count = tgc_cuda_numel_dim(&m->arena, t, 0, t->rank - 1);
    kk->block = row_block(t->dims[t->rank - 1]);
  } else {
    kk->grid = TGC_CUDA_GRID_ELEMENTS;
    kk->count = tgc_cuda_numel_dim(&m->arena, t, 0, t->rank);
    kk->block = 256;
    kk->per_block = 256 * vec; /* VEC elements per thread */
  }
  return true;
}

/* A constant that a library call reads or the function returns (directly or through top-level reshapes, which
 * share its storage) needs a buffer: a kernel of its own writes it once per run. The kernel belongs to the
 * constant op (its name, location and error code), not to the launch being generated, if any. False with g->why
 * set when the kernel cannot be generated. */
bool tgc_cuda_ensure_buffer(gen *g, const tgc_value *v) {
  const tgc_op *c = tgc_cuda_constant_def(v);
  if (!c)
    return true;
  v = &c->results[0];
  for (uint32_t i = 0; i < g->nconsts; i++)
    if (g->consts[i] == v)
      return true;
  g->consts = tgc_arena_grow(&g->m->arena, g->consts, g->nconsts, g->nconsts + 1, sizeof *g->consts);
  g->consts[g->nconsts++] = v;
  const tgc_op *launch = g->launch;
  char where[sizeof g->where];
  memcpy(where, g->where, sizeof where);
  g->launch = c;
  snprintf(g->where, sizeof g->where, "constant at %s:%u:%u", c->loc.file ? c->loc.file : "?", c->loc.line,
           c->loc.col);
  bool ok = tgc_cuda_value_kernel(g, "constant", v, NULL, NULL, 0, v);
  g->launch = launch;
  memcpy(g->where, where, sizeof where);
  if (!ok)
    g->nconsts--;
  return ok;
}

/* The kernel that computes a launch's ROOT from a library call's or attention's result PRODUCT (a temporary,
 * the kernel's input 0) and the launch's inputs, into RESULT. */
bool tgc_cuda_epilogue_kernel(gen *g, const tgc_value *product, const tgc_value *root, tgc_value *const *ins,
                              const tgc_value *const *outer, uint32_t nin, const tgc_value *result) {
  tgc_arena *ar = &g->m->arena;
  tgc_value **eins = tgc_arena_alloc(ar, sizeof *eins * (nin + 2));
  const tgc_value **eout = tgc_arena_alloc(ar, sizeof *eout * (nin + 2));
  eins[0] = (tgc_value *)product;
  eout[0] = product;
  for (uint32_t j = 0; j < nin; j++) {
    eins[j + 1] = ins[j];
    eout[j + 1] = outer[j];
  }
  return tgc_cuda_value_kernel(g, "epilogue", root, eins, eout, nin + 1, result);
}

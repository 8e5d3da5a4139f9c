/* Attention kernels, flash style: online softmax over key tiles in shared memory, fp32 accumulators; tensor
 * cores (mma.sync) for f16/bf16 head dims up to 64, CUDA cores otherwise. q, k, v and the mask are read as
 * strided views of their buffers, so the split/reshape/transpose around attention costs nothing; what is not a
 * view is computed first by an operand kernel. */
#include "cuda_internal.h"

#include <math.h>
#include <stdlib.h>

static bool coeffs_divisible(const tgc_dim *d, int64_t k) {
  for (uint32_t i = 0; i < d->nterms; i++)
    if (d->terms[i].coeff % k)
      return false;
  return true;
}

/* Whether a [B, H, S, HD] view can be read VEC elements at a time: the head dim contiguous and every offset a
 * multiple of VEC for all values of the symbols (buffers themselves are 256-byte aligned). */
static bool vec_ok(const view *v, int64_t hd, uint32_t vec) {
  if (v->rank != 4 || !dim_is(v->st[3], 1) || hd % vec || !coeffs_divisible(v->off, vec))
    return false;
  for (uint32_t d = 0; d < 3; d++)
    if (!coeffs_divisible(v->st[d], vec))
      return false;
  return true;
}

static void view_index(emitter *e, tgc_strbuf *b, const view *v, const char *const *ix) {
  tgc_sb_puts(b, "(");
  tgc_cuda_dim_c(e, v->off, b);
  for (uint32_t d = 0; d < v->rank; d++) {
    if (dim_is(v->st[d], 0))
      continue;
    tgc_sb_printf(b, " + %s * ", ix[d]);
    tgc_cuda_dim_c(e, v->st[d], b);
  }
  tgc_sb_puts(b, ")");
}

static const char *const ATTN_HELPERS =
    "__device__ __forceinline__ float tgc_ld(float x) { return x; }\n"
    "__device__ __forceinline__ float tgc_ld(double x) { return (float)x; }\n"
    "__device__ __forceinline__ float tgc_ld(__half x) { return __half2float(x); }\n"
    "__device__ __forceinline__ float tgc_ld(__nv_bfloat16 x) { return __bfloat162float(x); }\n"
    "__device__ __forceinline__ void tgc_st(float *p, float x) { *p = x; }\n"
    "__device__ __forceinline__ void tgc_st(double *p, float x) { *p = x; }\n"
    "__device__ __forceinline__ void tgc_st(__half *p, float x) { *p = __float2half_rn(x); }\n"
    "__device__ __forceinline__ void tgc_st(__nv_bfloat16 *p, float x) { *p = __float2bfloat16_rn(x); }\n"
    "/* 16 bytes from P (aligned) to VEC floats at OUT */\n"
    "__device__ __forceinline__ void tgc_ld_vec(const float *p, float *out) {\n"
    "  const float4 v = *(const float4 *)p;\n"
    "  out[0] = v.x; out[1] = v.y; out[2] = v.z; out[3] = v.w;\n"
    "}\n"
    "__device__ __forceinline__ void tgc_ld_vec(const __half *p, float *out) {\n"
    "  const uint4 v = *(const uint4 *)p;\n"
    "  const unsigned w[4] = {v.x, v.y, v.z, v.w};\n"
    "  for (int i = 0; i < 4; i++) {\n"
    "    const float2 f = __half22float2(*(const __half2 *)&w[i]);\n"
    "    out[2 * i] = f.x; out[2 * i + 1] = f.y;\n"
    "  }\n"
    "}\n"
    "__device__ __forceinline__ void tgc_ld_vec(const __nv_bfloat16 *p, float *out) {\n"
    "  const uint4 v = *(const uint4 *)p;\n"
    "  const unsigned w[4] = {v.x, v.y, v.z, v.w};\n"
    "  for (int i = 0; i < 4; i++) {\n"
    "    const float2 f = __bfloat1622float2(*(const __nv_bfloat162 *)&w[i]);\n"
    "    out[2 * i] = f.x; out[2 * i + 1] = f.y;\n"
    "  }\n"
    "}\n";

/* mma.sync m16n8k16 with fp32 accumulators (sm_80 and later), and packing two values into one register */
/* Tensor-core kernels' shared-memory helpers (sm_80 and later, as mma.sync m16n8k16 is): 16-byte asynchronous
 * copies from global memory (zero-filled when the source is out of range) and ldmatrix. */
static const char *const MMA_COMMON =
    "__device__ __forceinline__ void tgc_cp16(void *smem, const void *gmem, bool in_range) {\n"
    "  const unsigned d = (unsigned)__cvta_generic_to_shared(smem);\n"
    "  asm volatile(\"cp.async.cg.shared.global [%0], [%1], 16, %2;\\n\" :: \"r\"(d), \"l\"(gmem), \"r\"(in_range ? 16 : 0));\n"
    "}\n"
    "__device__ __forceinline__ void tgc_cp_wait() {\n"
    "  asm volatile(\"cp.async.commit_group;\\ncp.async.wait_group 0;\\n\" ::: \"memory\");\n"
    "}\n"
    "/* two 8x8 b16 matrices, transposed: rows R0..R0+15 of a row-major tile at columns C..C+7 as an mma B fragment */\n"
    "__device__ __forceinline__ void tgc_ldmatrix_t2(unsigned *r, const void *row) {\n"
    "  const unsigned a = (unsigned)__cvta_generic_to_shared(row);\n"
    "  asm volatile(\"ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\\n\" : \"=r\"(r[0]), \"=r\"(r[1]) : \"r\"(a));\n"
    "}\n";

static const char *const MMA_F16 =
    "__device__ __forceinline__ __half tgc_zero() { return __float2half_rn(0.0f); }\n"
    "__device__ __forceinline__ unsigned tgc_pack(__half lo, __half hi) {\n"
    "  __half2 h = __halves2half2(lo, hi);\n"
    "  return *(unsigned *)&h;\n"
    "}\n"
    "__device__ __forceinline__ unsigned tgc_pack2(float lo, float hi) {\n"
    "  __half2 h = __floats2half2_rn(lo, hi);\n"
    "  return *(unsigned *)&h;\n"
    "}\n"
    "__device__ __forceinline__ void tgc_mma(float *c, const unsigned *a, const unsigned *b) {\n"
    "  asm volatile(\"mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, \"\n"
    "               \"{%8, %9}, {%0, %1, %2, %3};\\n\"\n"
    "               : \"+f\"(c[0]), \"+f\"(c[1]), \"+f\"(c[2]), \"+f\"(c[3])\n"
    "               : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b[0]), \"r\"(b[1]));\n"
    "}\n";

static const char *const MMA_BF16 =
    "__device__ __forceinline__ __nv_bfloat16 tgc_zero() { return __float2bfloat16_rn(0.0f); }\n"
    "__device__ __forceinline__ unsigned tgc_pack(__nv_bfloat16 lo, __nv_bfloat16 hi) {\n"
    "  __nv_bfloat162 h = __halves2bfloat162(lo, hi);\n"
    "  return *(unsigned *)&h;\n"
    "}\n"
    "__device__ __forceinline__ unsigned tgc_pack2(float lo, float hi) {\n"
    "  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);\n"
    "  return *(unsigned *)&h;\n"
    "}\n"
    "__device__ __forceinline__ void tgc_mma(float *c, const unsigned *a, const unsigned *b) {\n"
    "  asm volatile(\"mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, \"\n"
    "               \"{%8, %9}, {%0, %1, %2, %3};\\n\"\n"
    "               : \"+f\"(c[0]), \"+f\"(c[1]), \"+f\"(c[2]), \"+f\"(c[3])\n"
    "               : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b[0]), \"r\"(b[1]));\n"
    "}\n";

/* The attention op AT of a launch: q, k, v and the mask read as strided views (or computed into temporaries
 * first), the result written through a view of the launch's result (or to a temporary an epilogue reads). */
bool tgc_cuda_gen_attention(gen *g, const tgc_op *at, const tgc_value *root, tgc_value *const *ins,
                            const tgc_value *const *outer, uint32_t nin, const tgc_value *result) {
  tgc_arena *ar = &g->m->arena;
  const tgc_value *av = &at->results[0];
  const tgc_type *qt = at->operands[0].value->type, *kt = at->operands[1].value->type,
                 *vt = at->operands[2].value->type;
  int64_t H, Hk, D, Dv;
  if (qt->rank != 4 || kt->rank != 4 || vt->rank != 4 || !tgc_dim_is_const(qt->dims[1], &H) ||
      !tgc_dim_is_const(kt->dims[1], &Hk) || !tgc_dim_is_const(qt->dims[3], &D) ||
      !tgc_dim_is_const(vt->dims[3], &Dv) || Hk <= 0 || H % Hk || D > 128 || Dv > 128 || D <= 0 || Dv <= 0) {
    snprintf(g->why, sizeof g->why, "attention needs rank-4 q/k/v with constant heads and head dims up to 128");
    return false;
  }
  tgc_dtype dt = qt->dtype;
  if ((dt != TGC_DT_F16 && dt != TGC_DT_BF16 && dt != TGC_DT_F32) || kt->dtype != dt || vt->dtype != dt) {
    snprintf(g->why, sizeof g->why, "attention on %s", tgc_dtype_name(dt));
    return false;
  }
  /* operands: views, else temporaries */
  view vw[4];
  uint32_t nops = at->noperands;
  for (uint32_t j = 0; j < nops; j++) {
    const tgc_value *x = at->operands[j].value;
    if (tgc_cuda_view_of(ar, x, ins, outer, nin, &vw[j]))
      continue;
    if (!tgc_cuda_value_kernel(g, "operand", x, ins, outer, nin, x) || !tgc_cuda_contiguous_view(ar, x, x->type, &vw[j]))
      return false;
  }
  if (nops == 4 && vw[3].rank > 4)
    return false;
  /* the result: a view of the launch's result, else a temporary */
  view ov;
  bool direct = tgc_cuda_contiguous_view(ar, result, root->type, &ov);
  for (const tgc_value *y = root; direct && y != av;) {
    const tgc_op *op = y->def;
    if (in_index(ins, nin, y) >= 0 || !op)
      direct = false;
    else if (op->opcode == TGC_OP_RESHAPE) {
      direct = tgc_cuda_reshape_view(ar, &ov, y->type, op->operands[0].value->type, &ov);
      y = op->operands[0].value;
    } else if (op->opcode == TGC_OP_TRANSPOSE) {
      const tgc_attr *perm = tgc_op_attr(op, "perm");
      view x = ov;
      for (uint32_t d = 0; d < y->type->rank; d++)
        x.st[perm->u.list.items[d]->u.i] = ov.st[d];
      ov = x;
      y = op->operands[0].value;
    } else
      direct = false;
  }
  if (!direct && !tgc_cuda_contiguous_view(ar, av, av->type, &ov))
    return false;
  /* the kernel */
  /* TPQ threads share a query row (its dot products end in a shuffle butterfly): more warps in flight than
   * one thread per row, which matters when there are few rows (batch 1, short sequences) */
  uint32_t tpq = (D % 8 == 0 && Dv % 8 == 0) ? 8 : (D % 4 == 0 && Dv % 4 == 0) ? 4 : 1, qpb = 8, tk = 32;
  uint32_t vec = 128 / (uint32_t)tgc_dtype_bits(dt);
  tgc_strbuf body, src;
  tgc_sb_init(&body);
  tgc_sb_init(&src);
  emitter e;
  memset(&e, 0, sizeof e);
  e.out = &body;
  e.indent = 1;
  e.m = g->m;
  const char *qix[4] = {"b", "h", "qi", "d"}, *kix[4] = {"b", "hk", "j", "d"}, *oix[4] = {"b", "h", "qi", "d"};
  const char *mix[4] = {"b", "h", "qi", "j"};
  tgc_strbuf qo, ko, vo, oo, mo;
  tgc_sb_init(&qo);
  tgc_sb_init(&ko);
  tgc_sb_init(&vo);
  tgc_sb_init(&oo);
  tgc_sb_init(&mo);
  view_index(&e, &qo, &vw[0], qix);
  view_index(&e, &ko, &vw[1], kix);
  view_index(&e, &vo, &vw[2], kix);
  view_index(&e, &oo, &ov, oix);
  bool bool_mask = false;
  if (nops == 4) {
    /* the mask broadcasts to [B, H, Sq, Sk]: align its dims at the right, size-1 dims read index 0 */
    view m = vw[3];
    view full;
    full.buf = m.buf;
    full.off = m.off;
    full.rank = 4;
    const tgc_type *mt = at->operands[3].value->type;
    for (uint32_t d = 0; d < 4; d++) {
      int64_t md = (int64_t)d - (int64_t)(4 - m.rank);
      full.st[d] = md < 0 || dim_is(mt->dims[md], 1) ? tgc_dim_const(ar, 0) : m.st[md];
    }
    view_index(&e, &mo, &full, mix);
    bool_mask = mt->dtype == TGC_DT_BOOL;
  }
  const char *scale = tgc_cuda_float_attr(&e, at, "scale", 1.0 / sqrt((double)D), false);
  bool causal = tgc_op_attr_bool(at, "causal", false);
  const char *sq = tgc_cuda_dim_str(&e, qt->dims[2]), *sk = tgc_cuda_dim_str(&e, kt->dims[2]);
  const char *T = tgc_cuda_storage_type(dt);
  /* tensor cores: f16/bf16, equal head dims up to 64 that are multiples of 16 */
  const char *force = getenv("TGC_ATTENTION"); /* "scalar": the CUDA-core kernel everywhere (for comparisons) */
  bool use_mma = (dt == TGC_DT_F16 || dt == TGC_DT_BF16) && D == Dv && D % 16 == 0 && D <= 64 &&
                 !(force && strcmp(force, "scalar") == 0);
  if (use_mma) {
    /* 16 query rows per block; its 4 warps split the keys (warp w takes every 4th tile of 32 keys), each with
     * its own online softmax, and the 4 partial states are merged at the end: short sequences get 4x the
     * warps in flight of one warp per row block */
    line(&e, "const long long b = blockIdx.z, h = blockIdx.y, hk = h / %lldLL;", (long long)(H / Hk));
    line(&e, "const long long sq = %s, sk = %s;", sq, sk);
    line(&e, "const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tg = lane & 3;");
    line(&e, "const long long q0 = (long long)blockIdx.x * BM;");
    line(&e, "__shared__ __align__(16) %s kv[NW][2][BN][KP]; /* per warp: its key tile and value tile */", T);
    line(&e, "__shared__ float wm[NW][BM], wl[NW][BM];        /* per warp: row max and row sum, for the merge */");
    line(&e, "%s(*ks)[KP] = kv[warp][0], (*vs)[KP] = kv[warp][1];", T);
    line(&e, "/* the block's 16 query rows as mma A fragments: register i holds row g (+8 if i is odd), columns");
    line(&e, " * 2 tg, 2 tg + 1 (+8 if i >= 2) of each 16-column chunk */");
    line(&e, "unsigned qf[D / 16][4];");
    line(&e, "#pragma unroll");
    line(&e, "for (int c = 0; c < D / 16; c++)");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int i = 0; i < 4; i++) {");
    line(&e, "    const long long qi = q0 + g + ((i & 1) ? 8 : 0);");
    line(&e, "    const int col = c * 16 + tg * 2 + ((i & 2) ? 8 : 0);");
    line(&e, "    %s lo = tgc_zero(), hi = tgc_zero();", T);
    line(&e, "    if (qi < sq) {");
    line(&e, "      long long d = col;");
    line(&e, "      lo = q[%s];", qo.data);
    line(&e, "      d = col + 1;");
    line(&e, "      hi = q[%s];", qo.data);
    line(&e, "    }");
    line(&e, "    qf[c][i] = tgc_pack(lo, hi);");
    line(&e, "  }");
    line(&e, "float o[DV / 8][4];");
    line(&e, "#pragma unroll");
    line(&e, "for (int t = 0; t < DV / 8; t++)");
    line(&e, "  o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;");
    line(&e, "float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.0f, 0.0f};");
    if (causal)
      line(&e, "const long long kend = min(sk, q0 + BM); /* later keys are masked for every row of the block */");
    else
      line(&e, "const long long kend = sk;");
    line(&e, "for (long long k0 = (long long)warp * BN; k0 < kend; k0 += NW * BN) {");
    line(&e, "  /* the mask of the lane's 16 scores (rows g, g + 8; keys 2 tg, 2 tg + 1 of each 8-key group): 0 where");
    line(&e, "   * a key is attended, -inf where not (bounds, causal, a bool mask), or the additive mask's value. A");
    line(&e, "   * tile that no row attends is skipped before its keys and values are read */");
    line(&e, "  float mk[BN / 8][4];");
    line(&e, "  bool any = false;");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int nt = 0; nt < BN / 8; nt++)");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int i = 0; i < 4; i++) {");
    line(&e, "      const long long qi = q0 + g + (i >> 1) * 8, j = k0 + nt * 8 + tg * 2 + (i & 1);");
    line(&e, "      bool keep = qi < sq && j < sk;");
    if (causal)
      line(&e, "      keep = keep && j <= qi;");
    if (nops == 4 && bool_mask)
      line(&e, "      keep = keep && mask[%s];", mo.data);
    if (nops == 4 && !bool_mask)
      line(&e, "      mk[nt][i] = keep ? tgc_ld(mask[%s]) : -INFINITY;", mo.data);
    else
      line(&e, "      mk[nt][i] = keep ? 0.0f : -INFINITY;");
    line(&e, "      any = any || keep;");
    line(&e, "    }");
    line(&e, "  if (!__any_sync(0xffffffffu, any))");
    line(&e, "    continue;");
    line(&e, "  __syncwarp(); /* the previous tile's fragments are read */");
    bool async = vec_ok(&vw[1], D, vec) && vec_ok(&vw[2], D, vec);
    for (int w = 0; w < 2; w++) {
      const char *tile = w ? "vs" : "ks", *ptr = w ? "v" : "k", *ix = w ? vo.data : ko.data;
      if (async) {
        /* asynchronous 16-byte copies: no registers held while they fly */
        line(&e, "  for (int x = lane; x < BN * D / VEC; x += 32) {");
        line(&e, "    const int jj = x / (D / VEC);");
        line(&e, "    const long long j = k0 + jj, d = (x %% (D / VEC)) * VEC;");
        line(&e, "    tgc_cp16(&%s[jj][d], &%s[j < sk ? %s : 0], j < sk);", tile, ptr, ix);
        line(&e, "  }");
      } else {
        line(&e, "  #pragma unroll");
        line(&e, "  for (int x = lane; x < BN * D; x += 32) {");
        line(&e, "    const int jj = x / D;");
        line(&e, "    const long long j = k0 + jj, d = x %% D;");
        line(&e, "    %s[jj][d] = j < sk ? %s[%s] : tgc_zero();", tile, ptr, ix);
        line(&e, "  }");
      }
    }
    if (async)
      line(&e, "  tgc_cp_wait();");
    line(&e, "  __syncwarp();");
    line(&e, "  /* S = Q K^T: 16 rows x BN keys, accumulators in the mma C layout (rows g, g + 8; columns 2 tg,");
    line(&e, "   * 2 tg + 1 of each 8-key tile) */");
    line(&e, "  float s[BN / 8][4];");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int nt = 0; nt < BN / 8; nt++) {");
    line(&e, "    s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int c = 0; c < D / 16; c++) {");
    line(&e, "      unsigned kb[2];");
    line(&e, "      kb[0] = *(const unsigned *)&ks[nt * 8 + g][c * 16 + tg * 2];");
    line(&e, "      kb[1] = *(const unsigned *)&ks[nt * 8 + g][c * 16 + tg * 2 + 8];");
    line(&e, "      tgc_mma(s[nt], qf[c], kb);");
    line(&e, "    }");
    line(&e, "  }");
    line(&e, "  float mx[2] = {mrow[0], mrow[1]};");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int nt = 0; nt < BN / 8; nt++)");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int i = 0; i < 4; i++) {");
    line(&e, "      s[nt][i] = s[nt][i] * %s + mk[nt][i];", scale);
    line(&e, "      mx[i >> 1] = fmaxf(mx[i >> 1], s[nt][i]);");
    line(&e, "    }");
    line(&e, "  float ref[2], corr[2];");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int r = 0; r < 2; r++) {");
    line(&e, "    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));");
    line(&e, "    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));");
    line(&e, "    ref[r] = mx[r] == -INFINITY ? 0.0f : mx[r]; /* nothing attended yet: exponentials are 0 */");
    line(&e, "    corr[r] = expf(mrow[r] - ref[r]);");
    line(&e, "    mrow[r] = mx[r];");
    line(&e, "    lrow[r] *= corr[r];");
    line(&e, "  }");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int nt = 0; nt < BN / 8; nt++)");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int i = 0; i < 4; i++) {");
    line(&e, "      s[nt][i] = expf(s[nt][i] - ref[i >> 1]);");
    line(&e, "      lrow[i >> 1] += s[nt][i];");
    line(&e, "    }");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int t = 0; t < DV / 8; t++) {");
    line(&e, "    o[t][0] *= corr[0];");
    line(&e, "    o[t][1] *= corr[0];");
    line(&e, "    o[t][2] *= corr[1];");
    line(&e, "    o[t][3] *= corr[1];");
    line(&e, "  }");
    line(&e, "  /* O += P V: P's accumulators are already in the A layout, two 8-key tiles per 16-key chunk */");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int c = 0; c < BN / 16; c++) {");
    line(&e, "    unsigned pa[4];");
    line(&e, "    pa[0] = tgc_pack2(s[2 * c][0], s[2 * c][1]);");
    line(&e, "    pa[1] = tgc_pack2(s[2 * c][2], s[2 * c][3]);");
    line(&e, "    pa[2] = tgc_pack2(s[2 * c + 1][0], s[2 * c + 1][1]);");
    line(&e, "    pa[3] = tgc_pack2(s[2 * c + 1][2], s[2 * c + 1][3]);");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int t = 0; t < DV / 8; t++) {");
    line(&e, "      unsigned vb[2];");
    line(&e, "      tgc_ldmatrix_t2(vb, &vs[c * 16 + (lane & 15)][t * 8]);");
    line(&e, "      tgc_mma(o[t], pa, vb);");
    line(&e, "    }");
    line(&e, "  }");
    line(&e, "}");
    line(&e, "/* merge the warps' states: M = max of the row maxima, each warp's sum and output scaled by");
    line(&e, " * exp(m_w - M); the key/value tiles' memory holds the partial outputs */");
    line(&e, "#pragma unroll");
    line(&e, "for (int r = 0; r < 2; r++) {");
    line(&e, "  lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 1);");
    line(&e, "  lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 2);");
    line(&e, "}");
    line(&e, "__syncthreads(); /* every warp is done with its tiles */");
    line(&e, "float (*wo)[BM][DV] = (float (*)[BM][DV])&kv[0][0][0][0];");
    line(&e, "if (tg == 0) {");
    line(&e, "  wm[warp][g] = mrow[0];");
    line(&e, "  wm[warp][g + 8] = mrow[1];");
    line(&e, "  wl[warp][g] = lrow[0];");
    line(&e, "  wl[warp][g + 8] = lrow[1];");
    line(&e, "}");
    line(&e, "#pragma unroll");
    line(&e, "for (int t = 0; t < DV / 8; t++)");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int i = 0; i < 4; i++)");
    line(&e, "    wo[warp][g + (i >> 1) * 8][t * 8 + tg * 2 + (i & 1)] = o[t][i];");
    line(&e, "__syncthreads();");
    line(&e, "for (int x = threadIdx.x; x < BM * DV; x += NT) {");
    line(&e, "  const int row = x / DV;");
    line(&e, "  const long long qi = q0 + row, d = x %% DV;");
    line(&e, "  if (qi >= sq)");
    line(&e, "    continue;");
    line(&e, "  float M = -INFINITY, L = 0.0f, O = 0.0f;");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int w = 0; w < NW; w++)");
    line(&e, "    M = fmaxf(M, wm[w][row]);");
    line(&e, "  const float ref = M == -INFINITY ? 0.0f : M;");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int w = 0; w < NW; w++) {");
    line(&e, "    const float f = expf(wm[w][row] - ref);");
    line(&e, "    L += f * wl[w][row];");
    line(&e, "    O += f * wo[w][row][d];");
    line(&e, "  }");
    line(&e, "  tgc_st(&out[%s], L > 0.0f ? O / L : NAN); /* a fully masked row is NaN, as in torch */", oo.data);
    line(&e, "}");
  } else {
    line(&e, "const long long b = blockIdx.z, h = blockIdx.y, hk = h / %lldLL;", (long long)(H / Hk));
    line(&e, "const long long sq = %s, sk = %s;", sq, sk);
    line(&e, "const int part = threadIdx.x %% TPQ;");
    line(&e, "const long long qi = (long long)blockIdx.x * QPB + threadIdx.x / TPQ;");
    line(&e, "const bool active = qi < sq;");
    line(&e, "float qv[D / TPQ], acc[DV / TPQ];");
    line(&e, "#pragma unroll");
    line(&e, "for (int t = 0; t < D / TPQ; t++) {");
    line(&e, "  const long long d = t * TPQ + part;");
    line(&e, "  qv[t] = active ? tgc_ld(q[%s]) * %s : 0.0f;", qo.data, scale);
    line(&e, "}");
    line(&e, "#pragma unroll");
    line(&e, "for (int t = 0; t < DV / TPQ; t++)");
    line(&e, "  acc[t] = 0.0f;");
    line(&e, "float mx = -INFINITY, l = 0.0f;");
    line(&e, "__shared__ float ks[TK][D + 1], vs[TK][DV + 1];");
    if (nops == 4)
      line(&e, "__shared__ float mt[QPB][TK];");
    if (causal)
      line(&e, "const long long kend = min(sk, (long long)(blockIdx.x + 1) * QPB); /* later keys are masked */");
    else
      line(&e, "const long long kend = sk;");
    line(&e, "for (long long k0 = 0; k0 < kend; k0 += TK) {");
    line(&e, "  __syncthreads();");
    /* the tiles: constant trip counts, unrolled, so that all of a thread's loads are in flight together; 16-byte
     * loads where the view's head dim is contiguous and every offset is a multiple of the vector */
    for (int w = 0; w < 2; w++) {
      const char *tile = w ? "vs" : "ks", *ptr = w ? "v" : "k", *dd = w ? "DV" : "D";
      const char *ix = w ? vo.data : ko.data;
      if (vec_ok(&vw[w + 1], w ? Dv : D, vec)) {
        line(&e, "#pragma unroll");
        line(&e, "  for (int x = threadIdx.x; x < TK * %s / VEC; x += NT) {", dd);
        line(&e, "    const long long j = k0 + x / (%s / VEC), d = (x %% (%s / VEC)) * VEC;", dd, dd);
        line(&e, "    if (j < sk)");
        line(&e, "      tgc_ld_vec(&%s[%s], &%s[x / (%s / VEC)][d]);", ptr, ix, tile, dd);
        line(&e, "    else");
        line(&e, "      for (int u = 0; u < VEC; u++)");
        line(&e, "        %s[x / (%s / VEC)][d + u] = 0.0f;", tile, dd);
        line(&e, "  }");
      } else {
        line(&e, "#pragma unroll");
        line(&e, "  for (int x = threadIdx.x; x < TK * %s; x += NT) {", dd);
        line(&e, "    const long long j = k0 + x / %s, d = x %% %s;", dd, dd);
        line(&e, "    %s[x / %s][d] = j < sk ? tgc_ld(%s[%s]) : 0.0f;", tile, dd, ptr, ix);
        line(&e, "  }");
      }
    }
    if (nops == 4) {
      /* the mask tile of the block's query rows, as 0 / -inf (bool) or the additive value, in shared memory */
      line(&e, "#pragma unroll");
      line(&e, "  for (int x = threadIdx.x; x < QPB * TK; x += NT) {");
      line(&e, "    const long long qi = (long long)blockIdx.x * QPB + x / TK, j = k0 + x %% TK;");
      if (bool_mask)
        line(&e, "    mt[x / TK][x %% TK] = qi < sq && j < sk && mask[%s] ? 0.0f : -INFINITY;", mo.data);
      else
        line(&e, "    mt[x / TK][x %% TK] = qi < sq && j < sk ? tgc_ld(mask[%s]) : -INFINITY;", mo.data);
      line(&e, "  }");
    }
    line(&e, "  __syncthreads();");
    line(&e, "  const int nk = (int)min((long long)TK, kend - k0);");
    /* KU keys at a time: their dot products, shuffles and exponentials are independent, so their latencies
     * overlap; one rescale of the accumulators per group */
    line(&e, "  for (int jj = 0; jj < nk; jj += KU) {");
    line(&e, "    float s[KU];");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int u = 0; u < KU; u++) {");
    line(&e, "      s[u] = 0.0f;");
    line(&e, "      #pragma unroll");
    line(&e, "      for (int t = 0; t < D / TPQ; t++)");
    line(&e, "        s[u] += qv[t] * ks[jj + u][t * TPQ + part];");
    line(&e, "    }");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int o = TPQ / 2; o > 0; o >>= 1)");
    line(&e, "      #pragma unroll");
    line(&e, "      for (int u = 0; u < KU; u++)");
    line(&e, "        s[u] += __shfl_xor_sync(0xffffffffu, s[u], o);");
    line(&e, "    float mn = mx;");
    line(&e, "    #pragma unroll");
    line(&e, "    for (int u = 0; u < KU; u++) {");
    line(&e, "      const long long j = k0 + jj + u;");
    line(&e, "      bool keep = active && jj + u < nk;");
    if (causal)
      line(&e, "      keep = keep && j <= qi;");
    else
      line(&e, "      (void)j;");
    if (nops == 4)
      line(&e, "      s[u] += mt[threadIdx.x / TPQ][jj + u]; /* -inf where masked */");
    line(&e, "      s[u] = keep ? s[u] : -INFINITY;");
    line(&e, "      mn = fmaxf(mn, s[u]);");
    line(&e, "    }");
    line(&e, "    if (mn > -INFINITY) {");
    line(&e, "      const float corr = expf(mx - mn); /* 0 while nothing was kept yet */");
    line(&e, "      float p[KU];");
    line(&e, "      #pragma unroll");
    line(&e, "      for (int u = 0; u < KU; u++) {");
    line(&e, "        p[u] = expf(s[u] - mn);");
    line(&e, "        l = (u == 0 ? l * corr : l) + p[u];");
    line(&e, "      }");
    line(&e, "      #pragma unroll");
    line(&e, "      for (int t = 0; t < DV / TPQ; t++) {");
    line(&e, "        float a = acc[t] * corr;");
    line(&e, "        #pragma unroll");
    line(&e, "        for (int u = 0; u < KU; u++)");
    line(&e, "          a += p[u] * vs[jj + u][t * TPQ + part];");
    line(&e, "        acc[t] = a;");
    line(&e, "      }");
    line(&e, "      mx = mn;");
    line(&e, "    }");
    line(&e, "  }");
    line(&e, "}");
    line(&e, "if (active)");
    line(&e, "  #pragma unroll");
    line(&e, "  for (int t = 0; t < DV / TPQ; t++) {");
    line(&e, "    const long long d = t * TPQ + part;");
    line(&e, "    tgc_st(&out[%s], l > 0.0f ? acc[t] / l : NAN); /* a fully masked row is NaN, as in torch */", oo.data);
    line(&e, "  }");
  }
  char name[96];
  tgc_cuda_kernel_name(g, name, sizeof name, "attention");
  tgc_sb_printf(&src, "// %s\n", g->where);
  tgc_sb_puts(&src, tgc_cuda_kernel_headers);
  if (use_mma) {
    tgc_sb_printf(&src, "#define D %lld\n#define DV %lld\n#define BM 16 /* query rows per block */\n"
                        "#define BN 32 /* keys per tile */\n#define NW 4 /* warps per block, splitting the keys */\n"
                        "#define NT (32 * NW) /* threads per block */\n"
                        "#define KP (D + 8) /* padded tile row: conflict-free fragment loads */\n"
                        "#define VEC %u /* elements per 16-byte load */\n", (long long)D, (long long)Dv, vec);
    tgc_sb_puts(&src, ATTN_HELPERS);
    tgc_sb_puts(&src, dt == TGC_DT_F16 ? MMA_F16 : MMA_BF16);
    tgc_sb_puts(&src, MMA_COMMON);
  } else {
    tgc_sb_printf(&src, "#define D %lld\n#define DV %lld\n#define TPQ %u /* threads per query row */\n"
                        "#define QPB %u /* query rows per block */\n#define NT (QPB * TPQ) /* threads per block */\n"
                        "#define TK %u /* keys per shared-memory tile */\n#define KU 4 /* keys per step of the online softmax */\n"
                        "#define VEC %u /* elements per 16-byte load */\n",
                  (long long)D, (long long)Dv, tpq, qpb, tk, vec);
    tgc_sb_puts(&src, ATTN_HELPERS);
  }
  tgc_sb_printf(&src, "\nextern \"C\" __global__ void %s(const %s *__restrict__ q, const %s *__restrict__ k, "
                      "const %s *__restrict__ v, ", name, T, T, T);
  if (nops == 4)
    tgc_sb_printf(&src, "const %s *__restrict__ mask, ", tgc_cuda_storage_type(at->operands[3].value->type->dtype));
  tgc_sb_printf(&src, "%s *__restrict__ out", T);
  for (uint32_t s = 0; s < e.nsyms; s++)
    tgc_sb_printf(&src, ", long long s_%s", e.syms[s]->name);
  tgc_sb_puts(&src, ", int *__restrict__ err) {\n");
  tgc_sb_puts(&src, body.data);
  tgc_sb_puts(&src, "}\n");
  const tgc_value **args = tgc_arena_alloc(ar, sizeof *args * 5);
  uint32_t na = 0;
  for (uint32_t j = 0; j < nops; j++)
    args[na++] = vw[j].buf;
  args[na++] = direct ? result : av;
  tgc_cuda_kernel *kk = tgc_cuda_add_kernel(g, "attention", tgc_arena_strndup(ar, src.data, src.len), name, args, na, &e);
  kk->grid = TGC_CUDA_GRID_ATTENTION;
  kk->count = qt->dims[2];
  kk->gy = qt->dims[1];
  kk->gz = qt->dims[0];
  kk->block = use_mma ? 128 : qpb * tpq;
  kk->per_block = use_mma ? 16 : qpb;
  tgc_sb_free(&qo);
  tgc_sb_free(&ko);
  tgc_sb_free(&vo);
  tgc_sb_free(&oo);
  tgc_sb_free(&mo);
  tgc_sb_free(&body);
  tgc_sb_free(&src);
  if (direct)
    return true;
  return tgc_cuda_epilogue_kernel(g, av, root, ins, outer, nin, result);
}

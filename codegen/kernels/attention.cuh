//@ The attention kernel, flash style (online softmax over key tiles in shared memory, fp32 accumulators), as a
//@ template: codegen/cuda_attention.c expands it with tgc_cuda_expand (codegen/cuda_emit.c) after the kernel's
//@ heading comment and tgc_cuda_kernel_headers, and CMake embeds this file into the emitter (cmake/embed.cmake).
//@ Lines that start with //@ are the template's own: `//@ if FLAG`, `//@ else` and `//@ end` keep or drop the
//@ lines between them, any other is a comment like this one. @NAME@ is a substitution point:
//@   NAME, T         the kernel's symbol; the storage type of q, k, v (float, __half, __nv_bfloat16)
//@   OT              the storage type of out: T, or the epilogue's result type
//@   MASK_PARAM      "const <type> *__restrict__ mask, " when there is a mask, else nothing
//@   EPI_PARAMS      ", const <type> *__restrict__ in<j>" for each input of the epilogue, else nothing
//@   SYM_PARAMS      ", long long s_<symbol>" for each symbol the index expressions use
//@   STORE           statements that store the element tgc_v (a float) at offset tgc_o of out: tgc_st, or the
//@                   launch's pointwise epilogue (a quantize of the result) computed there
//@   D, DV, VEC      the head dims of q and k, and of v; elements per 16-byte load
//@   TPQ, QPB, TK    (CUDA cores) threads per query row, query rows per block, keys per shared-memory tile
//@   HPK             query heads per key/value head (grouped-query attention)
//@   SQ, SK          the query and key sequence lengths, as C expressions over the symbols
//@   Q, K, V, O, M   element offsets into q, k, v, out and mask: expressions in b, h (hk for k and v), qi, j
//@                   and d over the strided views of their buffers (cuda_views.c)
//@   SCALE           the softmax scale, a float literal
//@ The flags:
//@   mma             tensor cores (mma.sync m16n8k16: f16 or bf16, D == DV a multiple of 16 up to 64), else
//@                   CUDA cores; f16 picks the f16 mma over the bf16 one
//@   causal          keys after the query's position are masked
//@   mask            there is a mask: bool_mask (true = may attend) or float_mask (added to the scores)
//@   async           (mma) k and v tiles are filled by cp.async 16-byte copies (their views allow it)
//@   vec_k, vec_v    (CUDA cores) k, v are read 16 bytes at a time (their views allow it)
//@ if mma
#define D @D@
#define DV @DV@
#define BM 16 /* query rows per block */
#define BN 32 /* keys per tile */
#define NW 4 /* warps per block, splitting the keys */
#define NT (32 * NW) /* threads per block */
#define KP (D + 8) /* padded tile row: conflict-free fragment loads */
#define VEC @VEC@ /* elements per 16-byte load */
//@ else
#define D @D@
#define DV @DV@
#define TPQ @TPQ@ /* threads per query row */
#define QPB @QPB@ /* query rows per block */
#define NT (QPB * TPQ) /* threads per block */
#define TK @TK@ /* keys per shared-memory tile */
#define KU 4 /* keys per step of the online softmax */
#define VEC @VEC@ /* elements per 16-byte load */
//@ end
//@ loads and stores of every storage type through float, and 16 bytes at a time
__device__ __forceinline__ float tgc_ld(float x) { return x; }
__device__ __forceinline__ float tgc_ld(double x) { return (float)x; }
__device__ __forceinline__ float tgc_ld(__half x) { return __half2float(x); }
__device__ __forceinline__ float tgc_ld(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ void tgc_st(float *p, float x) { *p = x; }
__device__ __forceinline__ void tgc_st(double *p, float x) { *p = x; }
__device__ __forceinline__ void tgc_st(__half *p, float x) { *p = __float2half_rn(x); }
__device__ __forceinline__ void tgc_st(__nv_bfloat16 *p, float x) { *p = __float2bfloat16_rn(x); }
/* 16 bytes from P (aligned) to VEC floats at OUT */
__device__ __forceinline__ void tgc_ld_vec(const float *p, float *out) {
  const float4 v = *(const float4 *)p;
  out[0] = v.x; out[1] = v.y; out[2] = v.z; out[3] = v.w;
}
__device__ __forceinline__ void tgc_ld_vec(const __half *p, float *out) {
  const uint4 v = *(const uint4 *)p;
  const unsigned w[4] = {v.x, v.y, v.z, v.w};
  for (int i = 0; i < 4; i++) {
    const float2 f = __half22float2(*(const __half2 *)&w[i]);
    out[2 * i] = f.x; out[2 * i + 1] = f.y;
  }
}
__device__ __forceinline__ void tgc_ld_vec(const __nv_bfloat16 *p, float *out) {
  const uint4 v = *(const uint4 *)p;
  const unsigned w[4] = {v.x, v.y, v.z, v.w};
  for (int i = 0; i < 4; i++) {
    const float2 f = __bfloat1622float2(*(const __nv_bfloat162 *)&w[i]);
    out[2 * i] = f.x; out[2 * i + 1] = f.y;
  }
}
//@ if mma
//@ mma.sync m16n8k16 with fp32 accumulators (sm_80 and later), and packing two values into one register
//@ if f16
__device__ __forceinline__ __half tgc_zero() { return __float2half_rn(0.0f); }
__device__ __forceinline__ unsigned tgc_pack(__half lo, __half hi) {
  __half2 h = __halves2half2(lo, hi);
  return *(unsigned *)&h;
}
__device__ __forceinline__ unsigned tgc_pack2(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *(unsigned *)&h;
}
__device__ __forceinline__ void tgc_mma(float *c, const unsigned *a, const unsigned *b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
               "{%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
//@ else
__device__ __forceinline__ __nv_bfloat16 tgc_zero() { return __float2bfloat16_rn(0.0f); }
__device__ __forceinline__ unsigned tgc_pack(__nv_bfloat16 lo, __nv_bfloat16 hi) {
  __nv_bfloat162 h = __halves2bfloat162(lo, hi);
  return *(unsigned *)&h;
}
__device__ __forceinline__ unsigned tgc_pack2(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *(unsigned *)&h;
}
__device__ __forceinline__ void tgc_mma(float *c, const unsigned *a, const unsigned *b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
               "{%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
//@ end
//@ the tensor-core kernel's shared-memory helpers: 16-byte asynchronous copies from global memory
//@ (zero-filled when the source is out of range) and ldmatrix
__device__ __forceinline__ void tgc_cp16(void *smem, const void *gmem, bool in_range) {
  const unsigned d = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(d), "l"(gmem), "r"(in_range ? 16 : 0));
}
__device__ __forceinline__ void tgc_cp_wait() {
  asm volatile("cp.async.commit_group;\ncp.async.wait_group 0;\n" ::: "memory");
}
/* two 8x8 b16 matrices, transposed: rows R0..R0+15 of a row-major tile at columns C..C+7 as an mma B fragment */
__device__ __forceinline__ void tgc_ldmatrix_t2(unsigned *r, const void *row) {
  const unsigned a = (unsigned)__cvta_generic_to_shared(row);
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
}
//@ end

extern "C" __global__ void @NAME@(const @T@ *__restrict__ q, const @T@ *__restrict__ k, const @T@ *__restrict__ v, @MASK_PARAM@@OT@ *__restrict__ out@EPI_PARAMS@@SYM_PARAMS@, int *__restrict__ err) {
//@ if mma
//@ 16 query rows per block; its 4 warps split the keys (warp w takes every 4th tile of 32 keys), each
//@ with its own online softmax, and the 4 partial states are merged at the end: short sequences get 4x
//@ the warps in flight of one warp per row block
  const long long b = blockIdx.z, h = blockIdx.y, hk = h / @HPK@LL;
  const long long sq = @SQ@, sk = @SK@;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tg = lane & 3;
  const long long q0 = (long long)blockIdx.x * BM;
  __shared__ __align__(16) @T@ kv[NW][2][BN][KP]; /* per warp: its key tile and value tile */
  __shared__ float wm[NW][BM], wl[NW][BM];        /* per warp: row max and row sum, for the merge */
  @T@(*ks)[KP] = kv[warp][0], (*vs)[KP] = kv[warp][1];
  /* the block's 16 query rows as mma A fragments: register i holds row g (+8 if i is odd), columns
   * 2 tg, 2 tg + 1 (+8 if i >= 2) of each 16-column chunk */
  unsigned qf[D / 16][4];
  #pragma unroll
  for (int c = 0; c < D / 16; c++)
    #pragma unroll
    for (int i = 0; i < 4; i++) {
      const long long qi = q0 + g + ((i & 1) ? 8 : 0);
      const int col = c * 16 + tg * 2 + ((i & 2) ? 8 : 0);
      @T@ lo = tgc_zero(), hi = tgc_zero();
      if (qi < sq) {
        long long d = col;
        lo = q[@Q@];
        d = col + 1;
        hi = q[@Q@];
      }
      qf[c][i] = tgc_pack(lo, hi);
    }
  float o[DV / 8][4];
  #pragma unroll
  for (int t = 0; t < DV / 8; t++)
    o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.0f, 0.0f};
//@ if causal
  const long long kend = min(sk, q0 + BM); /* later keys are masked for every row of the block */
//@ else
  const long long kend = sk;
//@ end
  for (long long k0 = (long long)warp * BN; k0 < kend; k0 += NW * BN) {
    /* the mask of the lane's 16 scores (rows g, g + 8; keys 2 tg, 2 tg + 1 of each 8-key group): 0 where
     * a key is attended, -inf where not (bounds, causal, a bool mask), or the additive mask's value. A
     * tile that no row attends is skipped before its keys and values are read */
    float mk[BN / 8][4];
    bool any = false;
    #pragma unroll
    for (int nt = 0; nt < BN / 8; nt++)
      #pragma unroll
      for (int i = 0; i < 4; i++) {
        const long long qi = q0 + g + (i >> 1) * 8, j = k0 + nt * 8 + tg * 2 + (i & 1);
        bool keep = qi < sq && j < sk;
//@ if causal
        keep = keep && j <= qi;
//@ end
//@ if bool_mask
        keep = keep && mask[@M@];
//@ end
//@ if float_mask
        mk[nt][i] = keep ? tgc_ld(mask[@M@]) : -INFINITY;
//@ else
        mk[nt][i] = keep ? 0.0f : -INFINITY;
//@ end
        any = any || keep;
      }
    if (!__any_sync(0xffffffffu, any))
      continue;
    __syncwarp(); /* the previous tile's fragments are read */
//@ if async
//@ asynchronous 16-byte copies: no registers held while they fly
    for (int x = lane; x < BN * D / VEC; x += 32) {
      const int jj = x / (D / VEC);
      const long long j = k0 + jj, d = (x % (D / VEC)) * VEC;
      tgc_cp16(&ks[jj][d], &k[j < sk ? @K@ : 0], j < sk);
    }
    for (int x = lane; x < BN * D / VEC; x += 32) {
      const int jj = x / (D / VEC);
      const long long j = k0 + jj, d = (x % (D / VEC)) * VEC;
      tgc_cp16(&vs[jj][d], &v[j < sk ? @V@ : 0], j < sk);
    }
//@ else
    #pragma unroll
    for (int x = lane; x < BN * D; x += 32) {
      const int jj = x / D;
      const long long j = k0 + jj, d = x % D;
      ks[jj][d] = j < sk ? k[@K@] : tgc_zero();
    }
    #pragma unroll
    for (int x = lane; x < BN * D; x += 32) {
      const int jj = x / D;
      const long long j = k0 + jj, d = x % D;
      vs[jj][d] = j < sk ? v[@V@] : tgc_zero();
    }
//@ end
//@ if async
    tgc_cp_wait();
//@ end
    __syncwarp();
    /* S = Q K^T: 16 rows x BN keys, accumulators in the mma C layout (rows g, g + 8; columns 2 tg,
     * 2 tg + 1 of each 8-key tile) */
    float s[BN / 8][4];
    #pragma unroll
    for (int nt = 0; nt < BN / 8; nt++) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
      #pragma unroll
      for (int c = 0; c < D / 16; c++) {
        unsigned kb[2];
        kb[0] = *(const unsigned *)&ks[nt * 8 + g][c * 16 + tg * 2];
        kb[1] = *(const unsigned *)&ks[nt * 8 + g][c * 16 + tg * 2 + 8];
        tgc_mma(s[nt], qf[c], kb);
      }
    }
    float mx[2] = {mrow[0], mrow[1]};
    #pragma unroll
    for (int nt = 0; nt < BN / 8; nt++)
      #pragma unroll
      for (int i = 0; i < 4; i++) {
        s[nt][i] = s[nt][i] * @SCALE@ + mk[nt][i];
        mx[i >> 1] = fmaxf(mx[i >> 1], s[nt][i]);
      }
    float ref[2], corr[2];
    #pragma unroll
    for (int r = 0; r < 2; r++) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      ref[r] = mx[r] == -INFINITY ? 0.0f : mx[r]; /* nothing attended yet: exponentials are 0 */
      corr[r] = expf(mrow[r] - ref[r]);
      mrow[r] = mx[r];
      lrow[r] *= corr[r];
    }
    #pragma unroll
    for (int nt = 0; nt < BN / 8; nt++)
      #pragma unroll
      for (int i = 0; i < 4; i++) {
        s[nt][i] = expf(s[nt][i] - ref[i >> 1]);
        lrow[i >> 1] += s[nt][i];
      }
    #pragma unroll
    for (int t = 0; t < DV / 8; t++) {
      o[t][0] *= corr[0];
      o[t][1] *= corr[0];
      o[t][2] *= corr[1];
      o[t][3] *= corr[1];
    }
    /* O += P V: P's accumulators are already in the A layout, two 8-key tiles per 16-key chunk */
    #pragma unroll
    for (int c = 0; c < BN / 16; c++) {
      unsigned pa[4];
      pa[0] = tgc_pack2(s[2 * c][0], s[2 * c][1]);
      pa[1] = tgc_pack2(s[2 * c][2], s[2 * c][3]);
      pa[2] = tgc_pack2(s[2 * c + 1][0], s[2 * c + 1][1]);
      pa[3] = tgc_pack2(s[2 * c + 1][2], s[2 * c + 1][3]);
      #pragma unroll
      for (int t = 0; t < DV / 8; t++) {
        unsigned vb[2];
        tgc_ldmatrix_t2(vb, &vs[c * 16 + (lane & 15)][t * 8]);
        tgc_mma(o[t], pa, vb);
      }
    }
  }
  /* merge the warps' states: M = max of the row maxima, each warp's sum and output scaled by
   * exp(m_w - M); the key/value tiles' memory holds the partial outputs */
  #pragma unroll
  for (int r = 0; r < 2; r++) {
    lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 1);
    lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 2);
  }
  __syncthreads(); /* every warp is done with its tiles */
  float (*wo)[BM][DV] = (float (*)[BM][DV])&kv[0][0][0][0];
  if (tg == 0) {
    wm[warp][g] = mrow[0];
    wm[warp][g + 8] = mrow[1];
    wl[warp][g] = lrow[0];
    wl[warp][g + 8] = lrow[1];
  }
  #pragma unroll
  for (int t = 0; t < DV / 8; t++)
    #pragma unroll
    for (int i = 0; i < 4; i++)
      wo[warp][g + (i >> 1) * 8][t * 8 + tg * 2 + (i & 1)] = o[t][i];
  __syncthreads();
  for (int x = threadIdx.x; x < BM * DV; x += NT) {
    const int row = x / DV;
    const long long qi = q0 + row, d = x % DV;
    if (qi >= sq)
      continue;
    float M = -INFINITY, L = 0.0f, O = 0.0f;
    #pragma unroll
    for (int w = 0; w < NW; w++)
      M = fmaxf(M, wm[w][row]);
    const float ref = M == -INFINITY ? 0.0f : M;
    #pragma unroll
    for (int w = 0; w < NW; w++) {
      const float f = expf(wm[w][row] - ref);
      L += f * wl[w][row];
      O += f * wo[w][row][d];
    }
    { /* a fully masked row is NaN, as in torch */
      const float tgc_v = L > 0.0f ? O / L : NAN;
      const long long tgc_o = @O@;
      @STORE@
    }
  }
//@ else
  const long long b = blockIdx.z, h = blockIdx.y, hk = h / @HPK@LL;
  const long long sq = @SQ@, sk = @SK@;
  const int part = threadIdx.x % TPQ;
  const long long qi = (long long)blockIdx.x * QPB + threadIdx.x / TPQ;
  const bool active = qi < sq;
  float qv[D / TPQ], acc[DV / TPQ];
  #pragma unroll
  for (int t = 0; t < D / TPQ; t++) {
    const long long d = t * TPQ + part;
    qv[t] = active ? tgc_ld(q[@Q@]) * @SCALE@ : 0.0f;
  }
  #pragma unroll
  for (int t = 0; t < DV / TPQ; t++)
    acc[t] = 0.0f;
  float mx = -INFINITY, l = 0.0f;
  __shared__ float ks[TK][D + 1], vs[TK][DV + 1];
//@ if mask
  __shared__ float mt[QPB][TK];
//@ end
//@ if causal
  const long long kend = min(sk, (long long)(blockIdx.x + 1) * QPB); /* later keys are masked */
//@ else
  const long long kend = sk;
//@ end
  for (long long k0 = 0; k0 < kend; k0 += TK) {
    __syncthreads();
//@ the tiles: constant trip counts, unrolled, so that all of a thread's loads are in flight together;
//@ 16-byte loads where the view's head dim is contiguous and every offset is a multiple of the vector
//@ if vec_k
  #pragma unroll
    for (int x = threadIdx.x; x < TK * D / VEC; x += NT) {
      const long long j = k0 + x / (D / VEC), d = (x % (D / VEC)) * VEC;
      if (j < sk)
        tgc_ld_vec(&k[@K@], &ks[x / (D / VEC)][d]);
      else
        for (int u = 0; u < VEC; u++)
          ks[x / (D / VEC)][d + u] = 0.0f;
    }
//@ else
  #pragma unroll
    for (int x = threadIdx.x; x < TK * D; x += NT) {
      const long long j = k0 + x / D, d = x % D;
      ks[x / D][d] = j < sk ? tgc_ld(k[@K@]) : 0.0f;
    }
//@ end
//@ if vec_v
  #pragma unroll
    for (int x = threadIdx.x; x < TK * DV / VEC; x += NT) {
      const long long j = k0 + x / (DV / VEC), d = (x % (DV / VEC)) * VEC;
      if (j < sk)
        tgc_ld_vec(&v[@V@], &vs[x / (DV / VEC)][d]);
      else
        for (int u = 0; u < VEC; u++)
          vs[x / (DV / VEC)][d + u] = 0.0f;
    }
//@ else
  #pragma unroll
    for (int x = threadIdx.x; x < TK * DV; x += NT) {
      const long long j = k0 + x / DV, d = x % DV;
      vs[x / DV][d] = j < sk ? tgc_ld(v[@V@]) : 0.0f;
    }
//@ end
//@ if mask
//@ the mask tile of the block's query rows, as 0 / -inf (bool) or the additive value, in shared memory
  #pragma unroll
    for (int x = threadIdx.x; x < QPB * TK; x += NT) {
      const long long qi = (long long)blockIdx.x * QPB + x / TK, j = k0 + x % TK;
//@ if bool_mask
      mt[x / TK][x % TK] = qi < sq && j < sk && mask[@M@] ? 0.0f : -INFINITY;
//@ else
      mt[x / TK][x % TK] = qi < sq && j < sk ? tgc_ld(mask[@M@]) : -INFINITY;
//@ end
    }
//@ end
    __syncthreads();
    const int nk = (int)min((long long)TK, kend - k0);
//@ KU keys at a time: their dot products, shuffles and exponentials are independent, so their
//@ latencies overlap; one rescale of the accumulators per group
    for (int jj = 0; jj < nk; jj += KU) {
      float s[KU];
      #pragma unroll
      for (int u = 0; u < KU; u++) {
        s[u] = 0.0f;
        #pragma unroll
        for (int t = 0; t < D / TPQ; t++)
          s[u] += qv[t] * ks[jj + u][t * TPQ + part];
      }
      #pragma unroll
      for (int o = TPQ / 2; o > 0; o >>= 1)
        #pragma unroll
        for (int u = 0; u < KU; u++)
          s[u] += __shfl_xor_sync(0xffffffffu, s[u], o);
      float mn = mx;
      #pragma unroll
      for (int u = 0; u < KU; u++) {
        const long long j = k0 + jj + u;
        bool keep = active && jj + u < nk;
//@ if causal
        keep = keep && j <= qi;
//@ else
        (void)j;
//@ end
//@ if mask
        s[u] += mt[threadIdx.x / TPQ][jj + u]; /* -inf where masked */
//@ end
        s[u] = keep ? s[u] : -INFINITY;
        mn = fmaxf(mn, s[u]);
      }
      if (mn > -INFINITY) {
        const float corr = expf(mx - mn); /* 0 while nothing was kept yet */
        float p[KU];
        #pragma unroll
        for (int u = 0; u < KU; u++) {
          p[u] = expf(s[u] - mn);
          l = (u == 0 ? l * corr : l) + p[u];
        }
        #pragma unroll
        for (int t = 0; t < DV / TPQ; t++) {
          float a = acc[t] * corr;
          #pragma unroll
          for (int u = 0; u < KU; u++)
            a += p[u] * vs[jj + u][t * TPQ + part];
          acc[t] = a;
        }
        mx = mn;
      }
    }
  }
  if (active)
    #pragma unroll
    for (int t = 0; t < DV / TPQ; t++) {
      const long long d = t * TPQ + part;
      const float tgc_v = l > 0.0f ? acc[t] / l : NAN; /* a fully masked row is NaN, as in torch */
      const long long tgc_o = @O@;
      @STORE@
    }
//@ end
}

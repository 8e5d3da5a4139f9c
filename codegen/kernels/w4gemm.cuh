//@ The int4 weight-only GEMM: y[m][n] = sum_k x[m][k] * (q[n][k] * s[k / GROUP][n]) (+ bias[n]), x and y f16, q
//@ an i4 weight packed by tgc_rt_pack_w4 (runtime/quant.c), s f16 group scales -- the matmul that the quantize
//@ pass's int4w mode leaves, matmul(x, dequantize(transpose(q), s) {axis = 0, group = GROUP}). A template:
//@ codegen/cuda_w4.c expands it with tgc_cuda_expand after the kernel's heading comment and the kernel headers.
//@
//@ Work: a block computes MT m-tiles of 16 rows by NT n-tiles of 8 columns; its NW warps split K in spans of 128
//@ (warp w takes spans w, w + NW, ...) and add their partial sums in shared memory, one warp after another. Per span a warp loads NT x 16
//@ bytes per lane (one 512-byte block of packed weights per n-tile, coalesced), SPB spans' loads (and their group
//@ scales) issued together before any is used: a GEMV is bound by the bytes in flight, not by the arithmetic;
//@ each 16 x 8 tensor-core B fragment is made from 4 nibbles in registers: (nibbles | 0x6400) is the f16 1024 + u
//@ for u = q + 8, so one subtraction of 1032 gives q exactly and one multiplication by the group's scale rounds
//@ q * s to f16, as the reference's dequantize does. The x fragments come from global memory (L1): rows past M
//@ read as 0 and m-tiles past M are skipped. Bytes: N K / 2 of weights (+ N K / GROUP * 2 of scales) once per
//@ MT * 16 rows: a GEMV and small m stream the weights at a quarter of fp16's bytes; x (MT * 16 rows x K, 2 bytes
//@ each) is read by every block, once per NT * 8 columns, from L2 -- the traffic that wider blocks (NT) cut.
//@ Substitution points:
//@   NAME, SYM_PARAMS   the kernel's symbol; ", long long s_<symbol>" for each symbol M uses
//@   M, N, K, GROUP     x's rows (a C expression over the symbols) and the constant dims and group size
//@   MT, NT, SPB        m-tiles and n-tiles per block, spans a warp loads at once
//@ The flag `bias` adds bias[n] (f16) before the f16 store. The flag `dequant` makes the other kernel of the
//@ family instead: the weight dequantized to f16 [N][K] (q * s rounded to f16, as above) for a cuBLASLt GEMM
//@ that reads it transposed -- the path for many rows, where a tensor-core GEMM with tiles in shared memory
//@ beats reading the weight once per 64 rows. One thread per 16 bytes of packed weight.
#define MT @MT@
#define NT @NT@
#define SPB @SPB@ /* spans a warp loads at once */
#define NW 8 /* warps per block, splitting K */
#define KDIM @K@
#define NDIM @N@
#define GROUP @GROUP@
#define SPANS (KDIM / 128)

#ifdef __CUDA_ARCH__
/* c += a (16 x 16, row-major fragment) * b (16 x 8, column fragment), f16 in, f32 accumulate */
__device__ __forceinline__ void tgc_mma16816(float *c, const unsigned *a, const unsigned *b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
               "{%0, %1, %2, %3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif

/* A lane's registers of the A fragment (16 x 16, row-major) of x at columns K0..K0+15: R0 is its first row (the
 * tile's first row + the lane's g), TQ its position in its quad; rows past M read as 0. */
__device__ __forceinline__ void tgc_w4_afrag(unsigned *a, const __half *__restrict__ x, long long r0, int k0,
                                             long long M, int tq) {
  const long long r1 = r0 + 8;
  const unsigned *x0 = reinterpret_cast<const unsigned *>(x + r0 * KDIM + k0 + tq * 2);
  const unsigned *x1 = reinterpret_cast<const unsigned *>(x + r1 * KDIM + k0 + tq * 2);
  a[0] = r0 < M ? x0[0] : 0u;
  a[1] = r1 < M ? x1[0] : 0u;
  a[2] = r0 < M ? x0[4] : 0u;
  a[3] = r1 < M ? x1[4] : 0u;
}

/* Two offset-binary nibbles (bits 0..3 and 16..19 of W) times the scale pair S, as a half2 in a register. */
__device__ __forceinline__ unsigned tgc_w4_pair(unsigned w, __half2 s) {
  unsigned h = (w & 0x000f000fu) | 0x64006400u; /* 1024 + u, two halves */
  __half2 v = *reinterpret_cast<__half2 *>(&h);
  v = __hmul2(__hsub2(v, __half2half2(__ushort_as_half((unsigned short)0x6408u))), s); /* (u - 8) * s */
  return *reinterpret_cast<unsigned *>(&v);
}

//@ if dequant
extern "C" __global__ void __launch_bounds__(256) @NAME@(const uint4 *__restrict__ w, const __half *__restrict__ sc,
    __half *__restrict__ out, int *__restrict__ err) {
  const long long t = (long long)blockIdx.x * 256 + threadIdx.x;
  if (t >= (long long)(NDIM / 8) * SPANS * 32)
    return;
  const int lane = (int)(t & 31);
  const long long blk = t >> 5;
  const int sp = (int)(blk % SPANS), n = (int)(blk / SPANS) * 8 + lane / 4;
  const uint4 v = w[t];
#pragma unroll
  for (int kt = 0; kt < 8; kt++) {
    const unsigned word = (&v.x)[kt >> 1] >> ((kt & 1) * 8);
    const int k0 = sp * 128 + kt * 16;
    const __half2 s = __half2half2(sc[(long long)(k0 / GROUP) * NDIM + n]);
    __half *row = out + (long long)n * KDIM + k0 + 2 * (lane & 3);
    *reinterpret_cast<unsigned *>(row) = tgc_w4_pair(word, s);
    *reinterpret_cast<unsigned *>(row + 8) = tgc_w4_pair(word >> 4, s);
  }
}
//@ else
extern "C" __global__ void __launch_bounds__(NW * 32) @NAME@(const __half *__restrict__ x, const uint4 *__restrict__ w,
    const __half *__restrict__ sc,
//@ if bias
    const __half *__restrict__ bias,
//@ end
    __half *__restrict__ out@SYM_PARAMS@, int *__restrict__ err) {
  const long long M = @M@;
  __shared__ float red[MT * 16 * NT * 8]; /* the warps' partial sums, added one warp after another (deterministic) */
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, tq = lane & 3;
  const long long m0 = (long long)blockIdx.x * (MT * 16);
  const int nt0 = blockIdx.y * NT;
  const long long left = (M - m0 + 15) / 16;
  const int mtiles = left < MT ? (int)left : MT;
  float acc[MT][NT][4];
#pragma unroll
  for (int mt = 0; mt < MT; mt++)
#pragma unroll
    for (int t = 0; t < NT; t++)
      acc[mt][t][0] = acc[mt][t][1] = acc[mt][t][2] = acc[mt][t][3] = 0.f;
  /* The warp's spans sp = warp + NW i, i < cnt, SPB at a time: the weights and scales of SPB spans are loaded (their
   * loads all in flight) before any is used. */
  const int cnt = warp < SPANS ? (SPANS - warp + NW - 1) / NW : 0;
  for (int i0 = 0; i0 < cnt; i0 += SPB) {
    uint4 wv[SPB][NT];
    __half2 s128[SPB][NT]; /* a group of 128 or more: one scale per n-tile for the whole span */
#pragma unroll
    for (int u = 0; u < SPB; u++)
      if (i0 + u < cnt) {
        const int sp = warp + NW * (i0 + u);
#pragma unroll
        for (int t = 0; t < NT; t++) {
          wv[u][t] = w[((long long)(nt0 + t) * SPANS + sp) * 32 + lane];
          if (GROUP % 128 == 0)
            s128[u][t] = __half2half2(sc[(long long)(sp * 128 / GROUP) * NDIM + (nt0 + t) * 8 + g]);
        }
      }
#pragma unroll
    for (int u = 0; u < SPB; u++)
      if (i0 + u < cnt) {
        const int sp = warp + NW * (i0 + u);
#if MT == 1
        /* one m-tile: the span's x fragments (8 k-steps, 4 registers each) loaded before the mma, not one k-step's
         * before each (eight dependent round trips a span: ncu on an H100 at m = 1 counted ~6000 cycles a span;
         * ptxas issues the first half up front and the rest between the first mma, two round trips) */
        unsigned xf[8][4];
#pragma unroll
        for (int kt = 0; kt < 8; kt++)
          tgc_w4_afrag(xf[kt], x, m0 + g, sp * 128 + kt * 16, M, tq);
#endif
#pragma unroll
        for (int kt = 0; kt < 8; kt++) {
          const int k0 = sp * 128 + kt * 16;
          unsigned b[NT][2];
#pragma unroll
          for (int t = 0; t < NT; t++) {
            const unsigned word = (&wv[u][t].x)[kt >> 1] >> ((kt & 1) * 8);
            const __half2 s = GROUP % 128 == 0 ? s128[u][t]
                                               : __half2half2(sc[(long long)(k0 / GROUP) * NDIM + (nt0 + t) * 8 + g]);
            b[t][0] = tgc_w4_pair(word, s);
            b[t][1] = tgc_w4_pair(word >> 4, s);
          }
#if MT == 1
#pragma unroll
          for (int t = 0; t < NT; t++)
            tgc_mma16816(acc[0][t], xf[kt], b[t]);
#else
#pragma unroll
          for (int mt = 0; mt < MT; mt++) {
            if (mt < mtiles) {
              unsigned a[4];
              tgc_w4_afrag(a, x, m0 + mt * 16 + g, k0, M, tq);
#pragma unroll
              for (int t = 0; t < NT; t++)
                tgc_mma16816(acc[mt][t], a, b[t]);
            }
          }
#endif
        }
      }
  }
  /* warp 0 writes its sums, then warps 1, 2, ... add theirs in turn: the order of the sums is fixed */
  for (int w = 0; w < NW; w++) {
    if (warp == w) {
#pragma unroll
      for (int mt = 0; mt < MT; mt++)
        if (mt < mtiles) {
#pragma unroll
          for (int t = 0; t < NT; t++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
              float *r = &red[(mt * 16 + g + (i >> 1) * 8) * (NT * 8) + t * 8 + tq * 2 + (i & 1)];
              *r = w == 0 ? acc[mt][t][i] : *r + acc[mt][t][i];
            }
        }
    }
    __syncthreads();
  }
  for (int i = threadIdx.x; i < mtiles * 16 * NT * 8; i += NW * 32) {
    const long long m = m0 + i / (NT * 8);
    const int n = nt0 * 8 + i % (NT * 8);
    if (m < M) {
      float v = red[i];
//@ if bias
      v += __half2float(bias[n]);
//@ end
      out[m * NDIM + n] = __float2half(v);
    }
  }
}
//@ end

/* The arithmetic of symmetric quantization, in one home: what `quantize` stores (the CPU backend's op), how the
 * quantize pass picks scales and quantizes weights, and what calibration's error model assumes. */
#include <math.h>

#include "rt.h"

double tgc_rt_quant_qmax(tgc_dtype storage) {
  switch (storage) {
  case TGC_DT_F8E4M3:
    return 448;
  case TGC_DT_F8E5M2:
    return 57344;
  default:
    break;
  }
  int bits = tgc_dtype_bits(storage);
  return tgc_dtype_kind_of(storage) == TGC_DTK_SINT ? ldexp(1.0, bits - 1) - 1 : ldexp(1.0, bits) - 1;
}

double tgc_rt_quant_scale(double amax, double qmax, tgc_dtype scale_dtype) {
  if (!(amax > 0) || !isfinite(amax))
    return 1;
  double s = amax / qmax;
  tgc_rt_tensor t = {.dtype = scale_dtype, .rank = 0};
  unsigned char buf[8];
  t.data = buf;
  tgc_rt_set(&t, 0, s);
  double r = tgc_rt_get(&t, 0);
  return r > 0 && isfinite(r) ? r : 1; /* a scale below the dtype's range would divide by zero */
}

double tgc_rt_quant_store(double x, double scale, double zero_point, tgc_dtype storage) {
  if (tgc_dtype_kind_of(storage) == TGC_DTK_FLOAT) {
    double r = x / scale;
    /* fp8 saturates: a clipped activation is the format's largest value, never NaN or inf */
    double hi = tgc_rt_quant_qmax(storage);
    return isnan(r) ? r : r > hi ? hi : r < -hi ? -hi : r;
  }
  int bits = tgc_dtype_bits(storage);
  bool sgn = tgc_dtype_kind_of(storage) == TGC_DTK_SINT;
  /* 2^(bits-1) and 2^bits exactly (ldexp was half this function's time in the int4 clipping search) */
  double half = bits <= 62 ? (double)(1ULL << (bits - 1)) : ldexp(1.0, bits - 1);
  return tgc_rt_quant_int(x, scale, zero_point, sgn ? -half : 0, sgn ? half - 1 : 2 * half - 1);
}

/* The w4 GEMM kernel's weight order (codegen/kernels/w4gemm.cuh): for each tile of 8 rows n (a tensor-core B
 * fragment's columns) and span of 128 along k, 512 bytes: 16 per lane of a warp, 4 words, word j holding the 4
 * values lane L reads of each of the k-tiles 2j and 2j+1 (16 k each): n = 8 tile + L / 4 and k = 16 ktile +
 * 2 (L % 4) + {0, 1, 8, 9} (v = 0..3), at the nibble h * 2 + v / 2 + (v % 2) * 4 of the word (h = the ktile's
 * parity), so that (word >> 8h) & 0x000f000f and (word >> (8h + 4)) & 0x000f000f are the fragment's two half2s
 * as offset-binary nibbles (q + 8). */
void tgc_rt_pack_w4(const int8_t *q, int64_t n, int64_t k, uint8_t *out) {
  int64_t spans = k / 128;
  for (int64_t nt = 0; nt < n / 8; nt++)
    for (int64_t sp = 0; sp < spans; sp++) {
      uint32_t *blk = (uint32_t *)(out + (nt * spans + sp) * 512);
      for (int lane = 0; lane < 32; lane++)
        for (int j = 0; j < 4; j++) {
          uint32_t word = 0;
          for (int h = 0; h < 2; h++)
            for (int v = 0; v < 4; v++) {
              int64_t row = nt * 8 + lane / 4;
              int64_t col = sp * 128 + (2 * j + h) * 16 + 2 * (lane % 4) + (v & 1) + (v >> 1) * 8;
              uint32_t u = (uint32_t)(q[row * k + col] + 8) & 15u;
              word |= u << (4 * (h * 2 + v / 2 + (v % 2) * 4));
            }
          blk[lane * 4 + j] = word;
        }
    }
}

/* Seeded random test data for `tgc run --random-inputs` and numeric verification of passes. */
#include "rt.h"

uint64_t tgc_rt_rand_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void tgc_rt_fill_random(tgc_rt_tensor *t, uint64_t *state) {
  size_t n = tgc_rt_tensor_numel(t);
  for (size_t e = 0; e < n; e++) {
    uint64_t r = tgc_rt_rand_next(state);
    switch (tgc_dtype_kind_of(t->dtype)) {
    case TGC_DTK_FLOAT:
      tgc_rt_set(t, e, (double)(r >> 11) * 0x1.0p-52 - 1.0);
      break;
    case TGC_DTK_BOOL:
      tgc_rt_set_i64(t, e, (int64_t)(r & 1));
      break;
    case TGC_DTK_SINT:
    case TGC_DTK_UINT:
      tgc_rt_set_i64(t, e, (int64_t)(r % 4));
      break;
    }
  }
}

/* Calibration statistics on the IR: what `tgc calibrate` records about a value (calib.* attributes on its defining
 * op, or on its function for an argument) and the quantize pass reads. */
#ifndef TGC_CALIB_H
#define TGC_CALIB_H

#include "ir.h"

typedef struct tgc_calib {
  double amax, absmax, min, max, clip;
  const double *chmax; /* max |x| per index of the last dim (arena-owned), or NULL */
  uint32_t nch;
  bool present;
} tgc_calib;

/* The statistics of V; false (OUT->present false) when it has none. */
bool tgc_calib_get(const tgc_value *v, tgc_calib *out);

#endif

/* canonicalize: (being written) */
#include "pass.h"

int tgc_pass_canonicalize(tgc_pass_ctx *ctx) {
  (void)ctx;
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// One element at a time. No over-read.
#include <assert.h>

#include "kernels/ukernels.h"

void anomalens_f32_vmulc_ukernel__scalar(size_t rows, size_t channels, const float* x,
                                         const float* scale, float* y) {
  assert(rows != 0);
  assert(channels != 0);
  do {
    for (size_t c = 0; c < channels; c++) {
      y[c] = x[c] * scale[c];
    }
    x += channels;
    y += channels;
  } while (--rows != 0);
}

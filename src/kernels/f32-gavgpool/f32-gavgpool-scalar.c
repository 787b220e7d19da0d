// SPDX-License-Identifier: Apache-2.0
// One channel at a time. No over-read.
#include <assert.h>

#include "kernels/ukernels.h"

void anomalens_f32_gavgpool_ukernel__scalar(size_t rows, size_t channels, const float* x,
                                            float* y, float scale) {
  assert(rows != 0);
  assert(channels != 0);
  for (size_t c = 0; c < channels; c++) {
    float sum = 0.0f;
    for (size_t r = 0; r < rows; r++) {
      sum += x[r * channels + c];
    }
    y[c] = sum * scale;
  }
}

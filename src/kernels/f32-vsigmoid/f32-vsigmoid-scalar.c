// SPDX-License-Identifier: Apache-2.0
// y = 1 / (1 + exp(-x)), one element at a time, via expf. No over-read.
#include <assert.h>
#include <math.h>

#include "kernels/ukernels.h"

void anomalens_f32_vsigmoid_ukernel__scalar(size_t n_bytes, const float* x, float* y) {
  assert(n_bytes != 0);
  assert(n_bytes % sizeof(float) == 0);
  for (size_t i = 0; i < n_bytes / sizeof(float); i++) {
    const float vx = x[i];
    // exp of a non-positive argument never overflows; sigmoid(x) = 1 - sigmoid(-x).
    const float e = expf(-fabsf(vx));
    const float f = e / (1.0f + e);
    y[i] = vx > 0.0f ? 1.0f - f : f;
  }
}

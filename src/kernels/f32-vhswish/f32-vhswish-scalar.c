// SPDX-License-Identifier: Apache-2.0
// y = x * relu6(x + 3) / 6, one element at a time. No over-read.
#include <assert.h>

#include "kernels/ukernels.h"

void anomalens_f32_vhswish_ukernel__scalar(size_t n_bytes, const float* x, float* y) {
  assert(n_bytes != 0);
  assert(n_bytes % sizeof(float) == 0);
  const float sixth = 1.0f / 6.0f;
  for (size_t i = 0; i < n_bytes / sizeof(float); i++) {
    const float vx = x[i];
    float r = vx + 3.0f;
    r = r < 0.0f ? 0.0f : r;
    r = r > 6.0f ? 6.0f : r;
    y[i] = vx * sixth * r;
  }
}

// SPDX-License-Identifier: Apache-2.0
// One element at a time. No over-read.
#include <assert.h>

#include "kernels/ukernels.h"

void anomalens_f32_vadd_minmax_ukernel__scalar(size_t n_bytes, const float* a, const float* b,
                                               float* y,
                                               const struct anomalens_f32_minmax_params* params) {
  assert(n_bytes != 0);
  assert(n_bytes % sizeof(float) == 0);
  const float vmin = params->min;
  const float vmax = params->max;
  for (size_t i = 0; i < n_bytes / sizeof(float); i++) {
    float v = a[i] + b[i];
    v = v < vmin ? vmin : v;
    v = v > vmax ? vmax : v;
    y[i] = v;
  }
}

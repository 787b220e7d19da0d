// SPDX-License-Identifier: Apache-2.0
// Tile 4x8. Reads exactly kc bytes of each A row; no over-read.
#include <assert.h>
#include <stdint.h>

#include "kernels/ukernels.h"

void anomalens_f32_gemm_minmax_ukernel_4x8__scalar(
    size_t mr, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w, float* c,
    size_t cm_stride, size_t cn_stride, const struct anomalens_f32_minmax_params* params) {
  assert(mr != 0 && mr <= 4);
  assert(nc != 0);
  assert(kc != 0 && kc % sizeof(float) == 0);

  // Rows past mr alias row mr-1: computed but never stored.
  const float* ar[4];
  float* cr[4];
  for (size_t i = 0; i < 4; i++) {
    const size_t row = i < mr ? i : mr - 1;
    ar[i] = (const float*)((uintptr_t)a + row * a_stride);
    cr[i] = (float*)((uintptr_t)c + row * cm_stride);
  }
  const float vmin = params->min;
  const float vmax = params->max;
  const size_t k_count = kc / sizeof(float);
  do {
    float acc[4][8];
    for (size_t j = 0; j < 8; j++) {
      acc[0][j] = acc[1][j] = acc[2][j] = acc[3][j] = w[j];
    }
    w += 8;
    for (size_t k = 0; k < k_count; k++) {
      const float va0 = ar[0][k];
      const float va1 = ar[1][k];
      const float va2 = ar[2][k];
      const float va3 = ar[3][k];
      for (size_t j = 0; j < 8; j++) {
        const float vb = w[j];
        acc[0][j] += va0 * vb;
        acc[1][j] += va1 * vb;
        acc[2][j] += va2 * vb;
        acc[3][j] += va3 * vb;
      }
      w += 8;
    }
    const size_t n = nc < 8 ? nc : 8;
    for (size_t i = 0; i < mr; i++) {
      for (size_t j = 0; j < n; j++) {
        float v = acc[i][j];
        v = v < vmin ? vmin : v;
        v = v > vmax ? vmax : v;
        cr[i][j] = v;
      }
      cr[i] = (float*)((uintptr_t)cr[i] + cn_stride);
    }
    nc -= n;
  } while (nc != 0);
}

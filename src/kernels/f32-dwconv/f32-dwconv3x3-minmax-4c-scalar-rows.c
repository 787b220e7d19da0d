// SPDX-License-Identifier: Apache-2.0
// Depthwise 3x3, one output row, stride 1 or 2, channel tile 4 (packed weights as dwconv 4c).
#include <assert.h>
#include <stddef.h>

#include "kernels/ukernels.h"

void anomalens_f32_dwconv3x3_minmax_ukernel_4c__scalar_rows(
    size_t channels, size_t output_width, size_t input_width, size_t stride, size_t pad_left,
    const float* const* rows, const float* weights, float* output,
    const struct anomalens_f32_minmax_params* params) {
  assert(channels != 0);
  assert(output_width != 0);
  assert(stride == 1 || stride == 2);
  const float vmin = params->min, vmax = params->max;
  for (size_t c = 0; c < channels; c += 4, weights += 40) {
    const size_t lanes = channels - c < 4 ? channels - c : 4;
    for (size_t l = 0; l < lanes; ++l) {
      float* o = output + c + l;
      ptrdiff_t ix0 = -(ptrdiff_t)pad_left;
      for (size_t ox = 0; ox < output_width; ++ox, ix0 += (ptrdiff_t)stride, o += channels) {
        float acc = weights[l];
        for (size_t ky = 0; ky < 3; ++ky) {
          for (size_t kx = 0; kx < 3; ++kx) {
            const ptrdiff_t ix = ix0 + (ptrdiff_t)kx;
            if ((size_t)ix >= input_width) continue;
            acc += rows[ky][(size_t)ix * channels + c + l] * weights[4 + (ky * 3 + kx) * 4 + l];
          }
        }
        acc = acc < vmin ? vmin : acc;
        acc = acc > vmax ? vmax : acc;
        *o = acc;
      }
    }
  }
}

// SPDX-License-Identifier: Apache-2.0
// Channel tile 4 (same packed layout as the wasmsimd kernel), any kernel_size. Reads exactly
// `channels` floats per input pixel; no over-read.
#include <assert.h>
#include <stdint.h>

#include "kernels/ukernels.h"

void anomalens_f32_dwconv_minmax_ukernel_4c__scalar(
    size_t channels, size_t output_pixels, size_t kernel_size, const float** input,
    const float* weights, float* output, size_t input_stride, size_t output_increment,
    size_t input_offset, const float* zero, const struct anomalens_f32_minmax_params* params) {
  assert(channels != 0);
  assert(output_pixels != 0);
  assert(kernel_size != 0);

  const float vmin = params->min;
  const float vmax = params->max;
  do {
    const float* w = weights;
    for (size_t c = 0; c < channels; c += 4) {
      const size_t n = channels - c < 4 ? channels - c : 4;
      float acc[4] = {w[0], w[1], w[2], w[3]};
      w += 4;
      for (size_t t = 0; t < kernel_size; t++) {
        const float* i = input[t];
        if (i != zero) {
          i = (const float*)((uintptr_t)i + input_offset);
        }
        i += c;
        for (size_t j = 0; j < n; j++) {
          acc[j] += i[j] * w[j];
        }
        w += 4;
      }
      for (size_t j = 0; j < n; j++) {
        float v = acc[j];
        v = v < vmin ? vmin : v;
        v = v > vmax ? vmax : v;
        output[j] = v;
      }
      output += n;
    }
    input = (const float**)((uintptr_t)input + input_stride);
    output = (float*)((uintptr_t)output + output_increment);
  } while (--output_pixels != 0);
}

// SPDX-License-Identifier: Apache-2.0
// One channel at a time, any kernel_size. No over-read.
#include <assert.h>
#include <stdint.h>

#include "kernels/ukernels.h"

void anomalens_f32_avgpool_ukernel__scalar(size_t output_pixels, size_t kernel_size,
                                           size_t channels, const float** input, float* output,
                                           size_t input_stride, const float* multiplier) {
  assert(output_pixels != 0);
  assert(kernel_size != 0);
  assert(channels != 0);
  do {
    const float scale = *multiplier++;
    for (size_t c = 0; c < channels; c++) {
      float sum = 0.0f;
      for (size_t t = 0; t < kernel_size; t++) {
        sum += input[t][c];
      }
      *output++ = sum * scale;
    }
    input = (const float**)((uintptr_t)input + input_stride);
  } while (--output_pixels != 0);
}

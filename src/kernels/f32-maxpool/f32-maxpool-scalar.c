// SPDX-License-Identifier: Apache-2.0
// One channel at a time, any kernel_size. No over-read.
#include <assert.h>
#include <stdint.h>

#include "kernels/ukernels.h"

void anomalens_f32_maxpool_ukernel__scalar(size_t output_pixels, size_t kernel_size,
                                           size_t channels, const float** input, float* output,
                                           size_t input_stride) {
  assert(output_pixels != 0);
  assert(kernel_size != 0);
  assert(channels != 0);
  do {
    for (size_t c = 0; c < channels; c++) {
      float v = input[0][c];
      for (size_t t = 1; t < kernel_size; t++) {
        const float x = input[t][c];
        v = x > v ? x : v;
      }
      *output++ = v;
    }
    input = (const float**)((uintptr_t)input + input_stride);
  } while (--output_pixels != 0);
}

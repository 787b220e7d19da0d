// SPDX-License-Identifier: Apache-2.0
// Channel tile 4, any kernel_size. For a last partial group, reads up to 12 bytes past the
// `channels` floats of each input pixel (including the caller's -INFINITY padding buffer).
#include <assert.h>
#include <stdint.h>
#include <wasm_simd128.h>

#include "kernels/ukernels.h"

void anomalens_f32_maxpool_ukernel__wasmsimd(size_t output_pixels, size_t kernel_size,
                                             size_t channels, const float** input, float* output,
                                             size_t input_stride) {
  assert(output_pixels != 0);
  assert(kernel_size != 0);
  assert(channels != 0);
  do {
    for (size_t c = 0; c < channels; c += 4) {
      v128_t vmax = wasm_v128_load(input[0] + c);
      for (size_t t = 1; t < kernel_size; t++) {
        vmax = wasm_f32x4_pmax(vmax, wasm_v128_load(input[t] + c));
      }
      const size_t n = channels - c;
      if (n >= 4) {
        wasm_v128_store(output, vmax);
        output += 4;
      } else {
        if (n & 2) {
          wasm_v128_store64_lane(output, vmax, 0);
          vmax = wasm_i64x2_shuffle(vmax, vmax, 1, 1);
          output += 2;
        }
        if (n & 1) {
          wasm_v128_store32_lane(output, vmax, 0);
          output += 1;
        }
      }
    }
    input = (const float**)((uintptr_t)input + input_stride);
  } while (--output_pixels != 0);
}

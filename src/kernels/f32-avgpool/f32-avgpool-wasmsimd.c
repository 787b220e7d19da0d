// SPDX-License-Identifier: Apache-2.0
// Channel tile 4, any kernel_size. For a last partial group, reads up to 12 bytes past the
// `channels` floats of each input pixel (including the caller's zero padding buffer).
#include <assert.h>
#include <stdint.h>
#include <wasm_simd128.h>

#include "kernels/ukernels.h"

void anomalens_f32_avgpool_ukernel__wasmsimd(size_t output_pixels, size_t kernel_size,
                                             size_t channels, const float** input, float* output,
                                             size_t input_stride, const float* multiplier) {
  assert(output_pixels != 0);
  assert(kernel_size != 0);
  assert(channels != 0);
  do {
    const v128_t vscale = wasm_v128_load32_splat(multiplier);
    multiplier += 1;
    for (size_t c = 0; c < channels; c += 4) {
      v128_t vsum = wasm_v128_load(input[0] + c);
      for (size_t t = 1; t < kernel_size; t++) {
        vsum = wasm_f32x4_add(vsum, wasm_v128_load(input[t] + c));
      }
      v128_t vy = wasm_f32x4_mul(vsum, vscale);
      const size_t n = channels - c;
      if (n >= 4) {
        wasm_v128_store(output, vy);
        output += 4;
      } else {
        if (n & 2) {
          wasm_v128_store64_lane(output, vy, 0);
          vy = wasm_i64x2_shuffle(vy, vy, 1, 1);
          output += 2;
        }
        if (n & 1) {
          wasm_v128_store32_lane(output, vy, 0);
          output += 1;
        }
      }
    }
    input = (const float**)((uintptr_t)input + input_stride);
  } while (--output_pixels != 0);
}

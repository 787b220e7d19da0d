// SPDX-License-Identifier: Apache-2.0
// Channel tile 4. For a last partial group, reads up to 12 bytes past the end of each row.
#include <assert.h>
#include <wasm_simd128.h>

#include "kernels/ukernels.h"

void anomalens_f32_gavgpool_ukernel__wasmsimd(size_t rows, size_t channels, const float* x,
                                              float* y, float scale) {
  assert(rows != 0);
  assert(channels != 0);
  const v128_t vscale = wasm_f32x4_splat(scale);
  for (size_t c = 0; c < channels; c += 4) {
    // Two partial sums break the add dependency chain.
    v128_t vsum0 = wasm_v128_load(x + c);
    v128_t vsum1 = wasm_f32x4_const_splat(0.0f);
    size_t r = 1;
    for (; r + 2 <= rows; r += 2) {
      vsum0 = wasm_f32x4_add(vsum0, wasm_v128_load(x + r * channels + c));
      vsum1 = wasm_f32x4_add(vsum1, wasm_v128_load(x + (r + 1) * channels + c));
    }
    if (r < rows) {
      vsum0 = wasm_f32x4_add(vsum0, wasm_v128_load(x + r * channels + c));
    }
    v128_t vy = wasm_f32x4_mul(wasm_f32x4_add(vsum0, vsum1), vscale);
    const size_t n = channels - c;
    if (n >= 4) {
      wasm_v128_store(y + c, vy);
    } else {
      float* o = y + c;
      if (n & 2) {
        wasm_v128_store64_lane(o, vy, 0);
        vy = wasm_i64x2_shuffle(vy, vy, 1, 1);
        o += 2;
      }
      if (n & 1) {
        wasm_v128_store32_lane(o, vy, 0);
      }
    }
  }
}

// SPDX-License-Identifier: Apache-2.0
// Channel tile 4. For a last partial group, reads up to 12 bytes past the end of each x row
// and of `scale`.
#include <assert.h>
#include <wasm_simd128.h>

#include "kernels/ukernels.h"

void anomalens_f32_vmulc_ukernel__wasmsimd(size_t rows, size_t channels, const float* x,
                                           const float* scale, float* y) {
  assert(rows != 0);
  assert(channels != 0);
  do {
    size_t c = 0;
    for (; c + 4 <= channels; c += 4) {
      wasm_v128_store(y + c, wasm_f32x4_mul(wasm_v128_load(x + c), wasm_v128_load(scale + c)));
    }
    if (c != channels) {
      v128_t vy = wasm_f32x4_mul(wasm_v128_load(x + c), wasm_v128_load(scale + c));
      float* o = y + c;
      if ((channels - c) & 2) {
        wasm_v128_store64_lane(o, vy, 0);
        vy = wasm_i64x2_shuffle(vy, vy, 1, 1);
        o += 2;
      }
      if ((channels - c) & 1) {
        wasm_v128_store32_lane(o, vy, 0);
      }
    }
    x += channels;
    y += channels;
  } while (--rows != 0);
}

// SPDX-License-Identifier: Apache-2.0
// y = x * relu6(x + 3) / 6, 8 elements per iteration. For a tail of 1-3 elements, reads up to
// 12 bytes past x.
#include <assert.h>
#include <wasm_simd128.h>

#include "kernels/ukernels.h"

static inline v128_t hswish(v128_t vx) {
  const v128_t vsixth = wasm_f32x4_const_splat(1.0f / 6.0f);
  const v128_t vthree = wasm_f32x4_const_splat(3.0f);
  const v128_t vsix = wasm_f32x4_const_splat(6.0f);
  const v128_t vzero = wasm_f32x4_const_splat(0.0f);
  v128_t vr = wasm_f32x4_add(vx, vthree);
  vr = wasm_f32x4_pmin(vsix, wasm_f32x4_pmax(vzero, vr));
  return wasm_f32x4_mul(wasm_f32x4_mul(vx, vsixth), vr);
}

void anomalens_f32_vhswish_ukernel__wasmsimd_x8(size_t n_bytes, const float* x, float* y) {
  assert(n_bytes != 0);
  assert(n_bytes % sizeof(float) == 0);
  for (; n_bytes >= 8 * sizeof(float); n_bytes -= 8 * sizeof(float)) {
    const v128_t vy0 = hswish(wasm_v128_load(x));
    const v128_t vy1 = hswish(wasm_v128_load(x + 4));
    x += 8;
    wasm_v128_store(y, vy0);
    wasm_v128_store(y + 4, vy1);
    y += 8;
  }
  if (n_bytes >= 4 * sizeof(float)) {
    wasm_v128_store(y, hswish(wasm_v128_load(x)));
    x += 4;
    y += 4;
    n_bytes -= 4 * sizeof(float);
  }
  if (n_bytes != 0) {
    v128_t vy = hswish(wasm_v128_load(x));
    if (n_bytes & (2 * sizeof(float))) {
      wasm_v128_store64_lane(y, vy, 0);
      vy = wasm_i64x2_shuffle(vy, vy, 1, 1);
      y += 2;
    }
    if (n_bytes & sizeof(float)) {
      wasm_v128_store32_lane(y, vy, 0);
    }
  }
}

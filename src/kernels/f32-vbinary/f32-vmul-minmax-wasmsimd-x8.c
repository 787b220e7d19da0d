// SPDX-License-Identifier: Apache-2.0
// 8 elements per iteration. For a tail of 1-3 elements, reads up to 12 bytes past a and b.
#include <assert.h>
#include <wasm_simd128.h>

#include "kernels/ukernels.h"

void anomalens_f32_vmul_minmax_ukernel__wasmsimd_x8(
    size_t n_bytes, const float* a, const float* b, float* y,
    const struct anomalens_f32_minmax_params* params) {
  assert(n_bytes != 0);
  assert(n_bytes % sizeof(float) == 0);
  const v128_t vmin = wasm_v128_load32_splat(&params->min);
  const v128_t vmax = wasm_v128_load32_splat(&params->max);
  for (; n_bytes >= 8 * sizeof(float); n_bytes -= 8 * sizeof(float)) {
    v128_t vy0 = wasm_f32x4_mul(wasm_v128_load(a), wasm_v128_load(b));
    v128_t vy1 = wasm_f32x4_mul(wasm_v128_load(a + 4), wasm_v128_load(b + 4));
    a += 8;
    b += 8;
    vy0 = wasm_f32x4_pmin(vmax, wasm_f32x4_pmax(vmin, vy0));
    vy1 = wasm_f32x4_pmin(vmax, wasm_f32x4_pmax(vmin, vy1));
    wasm_v128_store(y, vy0);
    wasm_v128_store(y + 4, vy1);
    y += 8;
  }
  if (n_bytes >= 4 * sizeof(float)) {
    v128_t vy = wasm_f32x4_mul(wasm_v128_load(a), wasm_v128_load(b));
    a += 4;
    b += 4;
    vy = wasm_f32x4_pmin(vmax, wasm_f32x4_pmax(vmin, vy));
    wasm_v128_store(y, vy);
    y += 4;
    n_bytes -= 4 * sizeof(float);
  }
  if (n_bytes != 0) {
    v128_t vy = wasm_f32x4_mul(wasm_v128_load(a), wasm_v128_load(b));
    vy = wasm_f32x4_pmin(vmax, wasm_f32x4_pmax(vmin, vy));
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

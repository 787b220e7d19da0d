// SPDX-License-Identifier: Apache-2.0
// y = 1 / (1 + exp(-x)), 8 elements per iteration. For a tail of 1-3 elements, reads up to
// 12 bytes past x.
#include <assert.h>
#include <wasm_simd128.h>

#include "kernels/ukernels.h"

// exp(z) for z = -|x| <= 0: z = n*ln2 + r with n = round(z/ln2), |r| <= ln2/2 (Cody-Waite split
// of ln2), exp(r) by its Taylor series to degree 6 (truncation < 2e-7 relative), then scaled by
// 2^n built in the exponent bits. Below z = -86 sigmoid is < 5e-38 and is flushed to 0, which
// also keeps 2^n a normal float.
static inline v128_t sigmoid(v128_t vx) {
  const v128_t vcutoff = wasm_f32x4_const_splat(-86.0f);
  const v128_t vlog2e = wasm_f32x4_const_splat(1.44269504088896341f);
  const v128_t vln2_hi = wasm_f32x4_const_splat(0.693145751953125f);
  const v128_t vln2_lo = wasm_f32x4_const_splat(1.42860682030941723e-6f);
  const v128_t vone = wasm_f32x4_const_splat(1.0f);
  const v128_t vc2 = wasm_f32x4_const_splat(1.0f / 2.0f);
  const v128_t vc3 = wasm_f32x4_const_splat(1.0f / 6.0f);
  const v128_t vc4 = wasm_f32x4_const_splat(1.0f / 24.0f);
  const v128_t vc5 = wasm_f32x4_const_splat(1.0f / 120.0f);
  const v128_t vc6 = wasm_f32x4_const_splat(1.0f / 720.0f);

  const v128_t vz = wasm_f32x4_neg(wasm_f32x4_abs(vx));
  const v128_t vzc = wasm_f32x4_pmax(vcutoff, vz);
  const v128_t vn = wasm_f32x4_nearest(wasm_f32x4_mul(vzc, vlog2e));
  v128_t vr = wasm_f32x4_sub(vzc, wasm_f32x4_mul(vn, vln2_hi));
  vr = wasm_f32x4_sub(vr, wasm_f32x4_mul(vn, vln2_lo));
  v128_t vp = wasm_f32x4_add(vc5, wasm_f32x4_mul(vr, vc6));
  vp = wasm_f32x4_add(vc4, wasm_f32x4_mul(vr, vp));
  vp = wasm_f32x4_add(vc3, wasm_f32x4_mul(vr, vp));
  vp = wasm_f32x4_add(vc2, wasm_f32x4_mul(vr, vp));
  vp = wasm_f32x4_add(vone, wasm_f32x4_mul(vr, vp));
  vp = wasm_f32x4_add(vone, wasm_f32x4_mul(vr, vp));
  const v128_t vs = wasm_i32x4_shl(
      wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(vn), wasm_i32x4_const_splat(127)), 23);
  const v128_t ve = wasm_f32x4_mul(vp, vs);
  v128_t vf = wasm_f32x4_div(ve, wasm_f32x4_add(vone, ve));
  vf = wasm_v128_andnot(vf, wasm_f32x4_lt(vz, vcutoff));
  const v128_t vpositive = wasm_f32x4_gt(vx, wasm_f32x4_const_splat(0.0f));
  return wasm_v128_bitselect(wasm_f32x4_sub(vone, vf), vf, vpositive);
}

void anomalens_f32_vsigmoid_ukernel__wasmsimd_x8(size_t n_bytes, const float* x, float* y) {
  assert(n_bytes != 0);
  assert(n_bytes % sizeof(float) == 0);
  for (; n_bytes >= 8 * sizeof(float); n_bytes -= 8 * sizeof(float)) {
    const v128_t vy0 = sigmoid(wasm_v128_load(x));
    const v128_t vy1 = sigmoid(wasm_v128_load(x + 4));
    x += 8;
    wasm_v128_store(y, vy0);
    wasm_v128_store(y + 4, vy1);
    y += 8;
  }
  if (n_bytes >= 4 * sizeof(float)) {
    wasm_v128_store(y, sigmoid(wasm_v128_load(x)));
    x += 4;
    y += 4;
    n_bytes -= 4 * sizeof(float);
  }
  if (n_bytes != 0) {
    v128_t vy = sigmoid(wasm_v128_load(x));
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

// SPDX-License-Identifier: Apache-2.0
// Depthwise 3x3, one output row, stride 1 or 2, channel tile 4. Per channel tile the 9 weights
// stay in registers and a window of input columns (3 rows each) slides along the row: each
// output loads only the columns it does not share with the previous one (3 vectors at stride 1,
// 6 at stride 2) instead of 9. For a last partial tile, reads up to 12 bytes past a pixel's
// `channels` floats (within ANOMALENS_EXTRA_BYTES at the row end).
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <wasm_simd128.h>

#include "kernels/ukernels.h"

static inline float* store_partial(float* o, v128_t v, size_t n) {
  if (n & 2) {
    wasm_v128_store64_lane(o, v, 0);
    v = wasm_i64x2_shuffle(v, v, 1, 1);
    o += 2;
  }
  if (n & 1) wasm_v128_store32_lane(o, v, 0);
  return o;
}

void anomalens_f32_dwconv3x3_minmax_ukernel_4c__wasmsimd_rows(
    size_t channels, size_t output_width, size_t input_width, size_t stride, size_t pad_left,
    const float* const* rows, const float* weights, float* output,
    const struct anomalens_f32_minmax_params* params) {
  assert(channels != 0);
  assert(output_width != 0);
  assert(stride == 1 || stride == 2);

  const v128_t vmin = wasm_v128_load32_splat(&params->min);
  const v128_t vmax = wasm_v128_load32_splat(&params->max);
  const v128_t vzero = wasm_f32x4_const_splat(0.0f);
  const float* r0 = rows[0];
  const float* r1 = rows[1];
  const float* r2 = rows[2];
  for (size_t c = 0; c < channels; c += 4, weights += 40) {
    const v128_t vb = wasm_v128_load(weights);
    const v128_t vw0 = wasm_v128_load(weights + 4), vw1 = wasm_v128_load(weights + 8);
    const v128_t vw2 = wasm_v128_load(weights + 12), vw3 = wasm_v128_load(weights + 16);
    const v128_t vw4 = wasm_v128_load(weights + 20), vw5 = wasm_v128_load(weights + 24);
    const v128_t vw6 = wasm_v128_load(weights + 28), vw7 = wasm_v128_load(weights + 32);
    const v128_t vw8 = wasm_v128_load(weights + 36);
    const size_t lanes = channels - c < 4 ? channels - c : 4;

    // Column ix of the 3 rows, zero outside the image.
#define LOAD_COLUMN(ix, x0, x1, x2)                                   \
  if ((size_t)(ix) < input_width) {                                   \
    const size_t at = (size_t)(ix) * channels + c;                    \
    x0 = wasm_v128_load(r0 + at);                                     \
    x1 = wasm_v128_load(r1 + at);                                     \
    x2 = wasm_v128_load(r2 + at);                                     \
  } else {                                                            \
    x0 = vzero;                                                       \
    x1 = vzero;                                                       \
    x2 = vzero;                                                       \
  }

    ptrdiff_t ix = -(ptrdiff_t)pad_left;
    v128_t a0, a1, a2, b0, b1, b2, n0, n1, n2;
    LOAD_COLUMN(ix, a0, a1, a2);
    LOAD_COLUMN(ix + 1, b0, b1, b2);
    float* o = output + c;
    for (size_t ox = 0; ox < output_width; ++ox) {
      LOAD_COLUMN(ix + 2, n0, n1, n2);
      v128_t vacc = wasm_f32x4_add(vb, wasm_f32x4_mul(a0, vw0));
      v128_t vacc2 = wasm_f32x4_mul(b0, vw1);
      vacc = wasm_f32x4_add(vacc, wasm_f32x4_mul(n0, vw2));
      vacc2 = wasm_f32x4_add(vacc2, wasm_f32x4_mul(a1, vw3));
      vacc = wasm_f32x4_add(vacc, wasm_f32x4_mul(b1, vw4));
      vacc2 = wasm_f32x4_add(vacc2, wasm_f32x4_mul(n1, vw5));
      vacc = wasm_f32x4_add(vacc, wasm_f32x4_mul(a2, vw6));
      vacc2 = wasm_f32x4_add(vacc2, wasm_f32x4_mul(b2, vw7));
      vacc = wasm_f32x4_add(vacc, wasm_f32x4_mul(n2, vw8));
      vacc = wasm_f32x4_add(vacc, vacc2);
      vacc = wasm_f32x4_pmax(vmin, vacc);
      vacc = wasm_f32x4_pmin(vmax, vacc);
      if (lanes == 4) {
        wasm_v128_store(o, vacc);
      } else {
        store_partial(o, vacc, lanes);
      }
      o += channels;
      if (stride == 1) {
        a0 = b0; a1 = b1; a2 = b2;
        b0 = n0; b1 = n1; b2 = n2;
        ix += 1;
      } else {
        a0 = n0; a1 = n1; a2 = n2;
        LOAD_COLUMN(ix + 3, b0, b1, b2);
        ix += 2;
      }
    }
#undef LOAD_COLUMN
  }
}

// SPDX-License-Identifier: Apache-2.0
// Channel tile 4, any kernel_size (9 taps specialised). For a last partial group of channels,
// reads up to 3 floats (12 bytes) past the `channels` floats of each input pixel (including the
// zero buffer), within ANOMALENS_EXTRA_BYTES.
#include <assert.h>
#include <stdint.h>
#include <wasm_simd128.h>

#include "kernels/ukernels.h"

static inline const float* adjust(const float* p, const float* zero, size_t offset) {
  return p != zero ? (const float*)((uintptr_t)p + offset) : p;
}

static inline float* store_partial(float* o, v128_t v, size_t n) {
  if (n & 2) {
    wasm_v128_store64_lane(o, v, 0);
    v = wasm_i64x2_shuffle(v, v, 1, 1);
    o += 2;
  }
  if (n & 1) {
    wasm_v128_store32_lane(o, v, 0);
    o += 1;
  }
  return o;
}

void anomalens_f32_dwconv_minmax_ukernel_4c__wasmsimd(
    size_t channels, size_t output_pixels, size_t kernel_size, const float** input,
    const float* weights, float* output, size_t input_stride, size_t output_increment,
    size_t input_offset, const float* zero, const struct anomalens_f32_minmax_params* params) {
  assert(channels != 0);
  assert(output_pixels != 0);
  assert(kernel_size != 0);

  const v128_t vmin = wasm_v128_load32_splat(&params->min);
  const v128_t vmax = wasm_v128_load32_splat(&params->max);
  if (kernel_size == 9) {
    do {
      const float* i0 = adjust(input[0], zero, input_offset);
      const float* i1 = adjust(input[1], zero, input_offset);
      const float* i2 = adjust(input[2], zero, input_offset);
      const float* i3 = adjust(input[3], zero, input_offset);
      const float* i4 = adjust(input[4], zero, input_offset);
      const float* i5 = adjust(input[5], zero, input_offset);
      const float* i6 = adjust(input[6], zero, input_offset);
      const float* i7 = adjust(input[7], zero, input_offset);
      const float* i8 = adjust(input[8], zero, input_offset);
      input = (const float**)((uintptr_t)input + input_stride);

      const float* w = weights;
      size_t c = channels;
      for (;;) {
        v128_t vacc = wasm_v128_load(w);
        v128_t vacc2 = wasm_f32x4_mul(wasm_v128_load(i0), wasm_v128_load(w + 4));
        vacc = wasm_f32x4_add(vacc, wasm_f32x4_mul(wasm_v128_load(i1), wasm_v128_load(w + 8)));
        vacc2 = wasm_f32x4_add(vacc2, wasm_f32x4_mul(wasm_v128_load(i2), wasm_v128_load(w + 12)));
        vacc = wasm_f32x4_add(vacc, wasm_f32x4_mul(wasm_v128_load(i3), wasm_v128_load(w + 16)));
        vacc2 = wasm_f32x4_add(vacc2, wasm_f32x4_mul(wasm_v128_load(i4), wasm_v128_load(w + 20)));
        vacc = wasm_f32x4_add(vacc, wasm_f32x4_mul(wasm_v128_load(i5), wasm_v128_load(w + 24)));
        vacc2 = wasm_f32x4_add(vacc2, wasm_f32x4_mul(wasm_v128_load(i6), wasm_v128_load(w + 28)));
        vacc = wasm_f32x4_add(vacc, wasm_f32x4_mul(wasm_v128_load(i7), wasm_v128_load(w + 32)));
        vacc2 = wasm_f32x4_add(vacc2, wasm_f32x4_mul(wasm_v128_load(i8), wasm_v128_load(w + 36)));
        w += 40;
        vacc = wasm_f32x4_add(vacc, vacc2);
        vacc = wasm_f32x4_pmax(vmin, vacc);
        vacc = wasm_f32x4_pmin(vmax, vacc);
        if (c >= 4) {
          wasm_v128_store(output, vacc);
          output += 4;
          c -= 4;
          if (c == 0) break;
          i0 += 4; i1 += 4; i2 += 4; i3 += 4; i4 += 4; i5 += 4; i6 += 4; i7 += 4; i8 += 4;
        } else {
          output = store_partial(output, vacc, c);
          break;
        }
      }
      output = (float*)((uintptr_t)output + output_increment);
    } while (--output_pixels != 0);
    return;
  }

  do {
    const float* w = weights;
    for (size_t c = 0; c < channels; c += 4) {
      v128_t vacc = wasm_v128_load(w);
      w += 4;
      for (size_t t = 0; t < kernel_size; t++) {
        const float* i = adjust(input[t], zero, input_offset) + c;
        vacc = wasm_f32x4_add(vacc, wasm_f32x4_mul(wasm_v128_load(i), wasm_v128_load(w)));
        w += 4;
      }
      vacc = wasm_f32x4_pmax(vmin, vacc);
      vacc = wasm_f32x4_pmin(vmax, vacc);
      if (channels - c >= 4) {
        wasm_v128_store(output, vacc);
        output += 4;
      } else {
        output = store_partial(output, vacc, channels - c);
      }
    }
    input = (const float**)((uintptr_t)input + input_stride);
    output = (float*)((uintptr_t)output + output_increment);
  } while (--output_pixels != 0);
}

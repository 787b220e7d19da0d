// SPDX-License-Identifier: Apache-2.0
// Kept out of line, in its own function with two callers, for the browser's cold start: the
// loop runs once per weight (700,000 times for the default model). Inlined into the model
// parser, it made the whole parser hot, and V8 recompiled all of it with its optimising tier
// while the first image was classified (docs/BENCHMARKS.md, cold start). binaryen inlines a
// function with one caller whatever clang's `noinline` says, hence the two callers.
#include "model/float_array.h"

#include <cmath>
#include <cstring>

namespace anomalens {
float half_to_float(uint16_t h) {
  // Bit arithmetic, no ldexp: this runs once per stored value when a model loads (6.8 million
  // times for a fitted two-backbone model).
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    const float f = static_cast<float>(mant) * 5.9604644775390625e-8f;  // zero or subnormal: mant * 2^-24, exact
    std::memcpy(&bits, &f, 4);
  } else if (exp == 31) {
    bits = 0x7f800000u | mant << 13;  // infinity, or NaN with its payload
  } else {
    bits = (exp + (127 - 15)) << 23 | mant << 13;  // rebias the exponent
  }
  bits |= sign;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float read_le_f32(const uint8_t* p) {
  const uint32_t bits = uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return sign | 0x7e00u;  // NaN (quiet)
  if (magnitude >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 (or infinite): infinity
  if (magnitude < 0x38800000u) {
    // Below 2^-14: a subnormal half, in units of 2^-24. With the float's 24-bit significand m
    // and biased exponent e, the value is m * 2^(e - 150), i.e. m >> (126 - e) units.
    if (magnitude < 0x33000000u) return sign;  // below 2^-25: rounds to zero
    const uint32_t exponent = magnitude >> 23;
    const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exponent;  // 14..24
    uint32_t units = significand >> shift;
    const uint32_t rest = significand & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (units & 1))) ++units;  // may become the smallest normal
    return static_cast<uint16_t>(sign | units);
  }
  // Normal: rebias the exponent (127 -> 15) and keep the top 10 mantissa bits, rounding the 13
  // dropped ones to nearest even; a carry correctly moves into the exponent.
  uint32_t h = (magnitude >> 13) - ((127u - 15u) << 10);
  const uint32_t rest = magnitude & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

int64_t read_finite_floats(const uint8_t* src, FloatStorage storage, size_t count, float* dst) {
  for (size_t k = 0; k < count; ++k) {
    const float value = storage == FloatStorage::kF32
        ? read_le_f32(src + 4 * k)
        : half_to_float(static_cast<uint16_t>(src[2 * k] | src[2 * k + 1] << 8));
    dst[k] = value;
    if (!std::isfinite(value)) return static_cast<int64_t>(k);
  }
  return -1;
}

}  // namespace anomalens

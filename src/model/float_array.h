// SPDX-License-Identifier: Apache-2.0
// Little-endian IEEE float arrays as .alm sections store them: the weights and the one-class
// section (each f32 or f16). Both readers widen through this one function; the one-class writer
// narrows through float_to_half.
//
//   const int64_t bad = read_finite_floats(bytes, FloatStorage::kF32, n, out.data());
//   if (bad >= 0) return invalid("value " + std::to_string(bad) + " is not finite");
#pragma once

#include <cstddef>
#include <cstdint>

namespace anomalens {

enum class FloatStorage { kF32, kF16 };

// Bytes per stored value.
constexpr size_t stored_bytes(FloatStorage storage) { return storage == FloatStorage::kF32 ? 4 : 2; }

// One little-endian f32 at p (any alignment).
float read_le_f32(const uint8_t* p);

// Widens `count` values at `src` (4 or 2 bytes each) into `dst`. Returns the index of the
// first value that is not finite (stored in dst[index], for the caller's message), or -1.
int64_t read_finite_floats(const uint8_t* src, FloatStorage storage, size_t count, float* dst);

// The float equal to the IEEE half `h` (exact; NaN stays NaN).
float half_to_float(uint16_t h);

// The IEEE half nearest to `value` (ties to even): beyond +-65504 (from 65520 on) it is an
// infinity, below 2^-14 a subnormal or zero; NaN stays NaN.
uint16_t float_to_half(float value);

// Largest finite half, and the smallest magnitude float_to_half rounds to an infinity.
constexpr float kHalfMax = 65504.f;
constexpr float kHalfOverflow = 65520.f;

}  // namespace anomalens

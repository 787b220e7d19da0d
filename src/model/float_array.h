// SPDX-License-Identifier: Apache-2.0
// Little-endian IEEE float arrays as .alm sections store them: the weights (f32 or f16) and the
// one-class section (f32). Both readers widen through this one function.
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

}  // namespace anomalens

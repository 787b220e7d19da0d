// SPDX-License-Identifier: Apache-2.0
// Scalar activation semantics shared by the reference engine and the builtin engine's fallbacks.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "model/model.h"

namespace anomalens {

// Clamp bounds an activation folds into (relu, relu6, clip); +-inf otherwise.
inline void activation_bounds(const Layer& layer, float* lo, float* hi) {
  *lo = -std::numeric_limits<float>::infinity();
  *hi = std::numeric_limits<float>::infinity();
  switch (layer.act) {
    case Activation::kRelu: *lo = 0; break;
    case Activation::kRelu6: *lo = 0; *hi = 6; break;
    case Activation::kClip: *lo = layer.clip_min; *hi = layer.clip_max; break;
    default: break;
  }
}

inline float apply_activation(const Layer& layer, float x) {
  switch (layer.act) {
    case Activation::kNone: return x;
    case Activation::kRelu: return std::max(x, 0.f);
    case Activation::kRelu6: return std::min(std::max(x, 0.f), 6.f);
    case Activation::kClip: return std::min(std::max(x, layer.clip_min), layer.clip_max);
    // x * (relu6(x + 3) / 6): the factor is at most 1, so a finite x never overflows.
    case Activation::kHardSwish: return x * (std::min(std::max(x + 3.f, 0.f), 6.f) / 6.f);
    case Activation::kSigmoid: return 1.f / (1.f + std::exp(-x));
  }
  return x;
}

}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
// Backend factories behind create_engine(); include only from src/nn (and tests).
#pragma once

#include <memory>

#include "nn/engine.h"

namespace anomalens {

Result<std::unique_ptr<Engine>> create_reference_engine(const Graph& graph);
Result<std::unique_ptr<Engine>> create_builtin_engine(const Graph& graph, int threads);

// How many 1x1 expansions the builtin engine runs fused with the depthwise 3x3 convolution
// that follows them (for tests: the fused path must be the one they exercise).
int builtin_fused_expansions(const Graph& graph);

}  // namespace anomalens

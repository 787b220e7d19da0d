// SPDX-License-Identifier: Apache-2.0
// Backend factories behind create_engine(); include only from src/nn (and tests).
#pragma once

#include <memory>

#include "nn/engine.h"

namespace anomalens {

// With bound_errors, the reference engine also bounds, for each output element, how far any
// float32 evaluation of the graph from the same input may lie from its output: any summation
// order, FMA or not, the kernels' approximations of sigmoid and hardswish. The bound is +inf
// where a float partial sum could overflow or a value is not finite. For tests (it doubles the
// reference's work).
Result<std::unique_ptr<Engine>> create_reference_engine(const Graph& graph, bool bound_errors = false);
// The output's error bounds (output_size() of them) after run(); null unless `engine` is a
// reference engine created with bound_errors.
const double* reference_error_bounds(const Engine& engine);
Result<std::unique_ptr<Engine>> create_builtin_engine(const Graph& graph, int threads);

// How many 1x1 expansions the builtin engine runs fused with the depthwise 3x3 convolution
// that follows them (for tests: the fused path must be the one they exercise).
int builtin_fused_expansions(const Graph& graph);

}  // namespace anomalens

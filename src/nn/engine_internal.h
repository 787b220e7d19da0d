// SPDX-License-Identifier: Apache-2.0
// Backend factories behind create_engine(); include only from src/nn.
#pragma once

#include <memory>

#include "nn/engine.h"

namespace anomalens {

Result<std::unique_ptr<Engine>> create_reference_engine(const Graph& graph);
Result<std::unique_ptr<Engine>> create_builtin_engine(const Graph& graph, int threads);

}  // namespace anomalens

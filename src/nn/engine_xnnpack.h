// SPDX-License-Identifier: Apache-2.0
// XNNPACK backend (native builds only): maps a validated Graph onto one XNNPACK subgraph and
// runs it on the calling thread, or on a pthreadpool of `threads` threads (the caller included).
//
//   Result<std::unique_ptr<Engine>> e = create_xnnpack_engine(model.graph);
//   if (!e.ok()) return e.status();
//   Status s = e.value()->run(input_hwc);   // HWC floats of the input blob
//   const float* y = e.value()->output();   // HWC order, output_size() floats
//
// Values live NHWC ([1, H, W, C]). Weights are re-laid out once at creation (OIHW -> OHWI for
// convolutions, [1, kh, kw, C*m] for depthwise, Gemm columns from NCHW to HWC order when the
// Gemm's input has H*W > 1) and owned by the engine, which XNNPACK requires because it keeps
// pointers to static tensor data. The graph need not outlive the engine.
#pragma once

#include <memory>

#include "model/model.h"
#include "nn/engine.h"
#include "util/status.h"

namespace anomalens {

// Builds the XNNPACK runtime for `graph` (batch 1, fixed input shape). Fails with kUnsupported
// naming the layer when a layer cannot be expressed in XNNPACK's subgraph API (or XNNPACK
// rejects its parameters), kOutOfMemory when XNNPACK cannot allocate, and kInvalidModel when a
// weight tensor does not have the size the layer needs. Every message carries XNNPACK's status
// name when XNNPACK reported the failure. Never aborts.
Result<std::unique_ptr<Engine>> create_xnnpack_engine(const Graph& graph, int threads = 1);

}  // namespace anomalens

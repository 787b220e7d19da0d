// SPDX-License-Identifier: Apache-2.0
// Engine: runs a validated Graph for a fixed input shape. Three backends share this interface:
//   kReference  naive loops, the yardstick for tests (slow, obviously correct);
//   kBuiltin    the project's kernels (scalar, WASM SIMD128): weights packed once at creation,
//               buffers planned once, no allocation per run;
//   kXnnpack    native builds only: the graph mapped onto XNNPACK's subgraph API.
//
//   Result<std::unique_ptr<Engine>> e = create_engine(model.graph, Backend::kBuiltin);
//   if (!e.ok()) return e.status();
//   e.value()->run(input_hwc);               // input: Shape of graph.input_blob, HWC floats
//   const float* y = e.value()->output();    // output blob, HWC order, output_size() floats
//   create_engine(model.graph, Backend::kBuiltin, EngineOptions{2});   // ops split over 2 threads
#pragma once

#include <cstddef>
#include <memory>

#include "model/model.h"
#include "util/status.h"

namespace anomalens {

enum class Backend { kReference, kBuiltin, kXnnpack };
const char* backend_name(Backend backend);
bool backend_available(Backend backend);  // kXnnpack only in native builds with XNNPACK

class Engine {
 public:
  virtual ~Engine() = default;
  // Runs one inference. `input_hwc` holds graph.blobs[input_blob].shape.elements() floats in
  // HWC order; it is only read during the call. The result stays valid until the next run.
  virtual Status run(const float* input_hwc) = 0;
  virtual const float* output() const = 0;  // HWC order
  virtual size_t output_size() const = 0;
  virtual Backend backend() const = 0;
};

struct EngineOptions {
  // kBuiltin and kXnnpack: threads that run each op (the caller counts as one; 0 = the machine's
  // core count, at most 64). Builtin results do not depend on it. Builds without thread support
  // (the single-threaded wasm bundle) run on the calling thread whatever the value. kReference
  // ignores it.
  int threads = 1;
};

// The graph must outlive the engine only for kReference (which reads weights in place);
// kBuiltin and kXnnpack copy what they need. Fails with kUnsupported when the backend cannot run
// a layer (naming it), kOutOfMemory when buffers cannot be had and kInvalidArgument for
// options.threads outside [0, 64].
Result<std::unique_ptr<Engine>> create_engine(const Graph& graph, Backend backend,
                                              const EngineOptions& options = EngineOptions());

}  // namespace anomalens

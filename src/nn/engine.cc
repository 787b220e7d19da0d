// SPDX-License-Identifier: Apache-2.0
#include "nn/engine.h"

#include <algorithm>
#include <string>
#include <thread>

#include "nn/engine_internal.h"
#ifdef ANOMALENS_HAVE_XNNPACK
#include "nn/engine_xnnpack.h"
#endif

namespace anomalens {

const char* backend_name(Backend backend) {
  switch (backend) {
    case Backend::kReference: return "reference";
    case Backend::kBuiltin: return "builtin";
    case Backend::kXnnpack: return "xnnpack";
  }
  return "?";
}

bool backend_available(Backend backend) {
#ifdef ANOMALENS_HAVE_XNNPACK
  (void)backend;
  return true;
#else
  return backend != Backend::kXnnpack;
#endif
}

Result<std::unique_ptr<Engine>> create_engine(const Graph& graph, Backend backend,
                                              const EngineOptions& options) {
  int threads = options.threads;
  if (threads < 0 || threads > 64) {
    return Status(StatusCode::kInvalidArgument,
                  "engine threads " + std::to_string(threads) + ": must be 0 (all cores) to 64");
  }
  if (threads == 0) threads = static_cast<int>(std::min(64u, std::max(1u, std::thread::hardware_concurrency())));
  switch (backend) {
    case Backend::kReference: return create_reference_engine(graph);
    case Backend::kBuiltin: return create_builtin_engine(graph, threads);
    case Backend::kXnnpack:
#ifdef ANOMALENS_HAVE_XNNPACK
      return create_xnnpack_engine(graph, threads);
#else
      return Status(StatusCode::kUnsupported, "this build has no XNNPACK backend");
#endif
  }
  return Status(StatusCode::kInvalidArgument, "unknown backend");
}

}  // namespace anomalens

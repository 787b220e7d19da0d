// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: .alm bytes -> load_model -> (if valid and small) builtin and reference
// engines -> one inference on a fixed input; the two engines must agree.
// Properties: no sanitizer report, no abort; failures are kInvalidModel / kUnsupported with a
// message; a model that loads runs, and its output is what the reference engine computes, within
// the reference's bound on float32 rounding error.
#include <cmath>
#include <vector>

#include "fuzz_common.h"
#include "model/model.h"
#include "nn/engine.h"
#include "nn/engine_internal.h"

using namespace anomalens;

namespace {

// Models larger than this are valid but too slow or big to run thousands of times a second;
// they are still loaded (the validation is what is fuzzed) but not run.
constexpr int64_t kMaxRunElements = int64_t{1} << 20;
constexpr int64_t kMaxRunMacs = int64_t{20} * 1000 * 1000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Result<Model> r = load_model(data, size);
  if (!r.ok()) {
    fuzz::check_failure(r.status());
    const StatusCode c = r.status().code();
    if (c != StatusCode::kInvalidModel && c != StatusCode::kUnsupported) {
      fuzz::violated("load_model failed with an unexpected code", status_code_name(c));
    }
    return 0;
  }
  const Model& model = r.value();
  const Graph& g = model.graph;
  int64_t elements = 0;
  for (const Blob& b : g.blobs) elements += b.shape.elements();
  if (elements > kMaxRunElements || g.macs() > kMaxRunMacs) return 0;

  Result<std::unique_ptr<Engine>> builtin = create_engine(g, Backend::kBuiltin);
  // The reference also bounds each output's rounding error, so models that are
  // ill-conditioned in float32 (huge weights that cancel) are told apart from kernel bugs.
  Result<std::unique_ptr<Engine>> reference = create_reference_engine(g, /*bound_errors=*/true);
  if (!builtin.ok()) { fuzz::check_failure(builtin.status()); return 0; }
  if (!reference.ok()) { fuzz::check_failure(reference.status()); return 0; }
  const Shape in = g.blobs[g.input_blob].shape;
  std::vector<float> input(static_cast<size_t>(in.elements()));
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<float>(static_cast<int>(i % 17) - 8) * 0.125f;
  Status sb = builtin.value()->run(input.data());
  Status sr = reference.value()->run(input.data());
  if (!sb.ok() || !sr.ok()) {
    if (!sb.ok()) fuzz::check_failure(sb);
    if (!sr.ok()) fuzz::check_failure(sr);
    return 0;
  }
  const size_t n = builtin.value()->output_size();
  if (n != reference.value()->output_size()) fuzz::violated("engines disagree on output size", "");
  if (static_cast<int64_t>(n) != g.blobs[g.output_blob].shape.elements()) {
    fuzz::violated("output size differs from the output blob's shape", "");
  }
  const float* yb = builtin.value()->output();
  const float* yr = reference.value()->output();
  const double* bound = reference_error_bounds(*reference.value());
  for (size_t i = 0; i < n; ++i) {
    if (yb[i] == yr[i] || std::isinf(bound[i])) continue;
    // Twice the first-order bound: room for the second-order terms it leaves out.
    if (!(std::fabs(double{yb[i]} - double{yr[i]}) <= 2 * bound[i])) {
      char msg[128];
      std::snprintf(msg, sizeof msg, "output %zu: builtin %g vs reference %g, error bound %g", i, yb[i], yr[i],
                    bound[i]);
      fuzz::violated("builtin engine disagrees with the reference engine", msg);
    }
  }
  return 0;
}

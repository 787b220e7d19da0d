// SPDX-License-Identifier: Apache-2.0
// Bench-only wasm entry points (built by scripts/bench.sh against the same libanomalens_core.a
// and libanomalens_kernels.a as the browser bundle): raw HWC float tensors in, raw outputs out,
// so the benchmark times exactly the network, as it does for tfjs and onnxruntime-web.
// With -DANOMALENS_ENGINE_PROFILE (and src/nn/engine_builtin.cc compiled with it) it also
// reports per-op milliseconds.
#include <emscripten/emscripten.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "nn/engine.h"

namespace anomalens {
#ifdef ANOMALENS_ENGINE_PROFILE
std::vector<std::pair<std::string, double>>& builtin_engine_profile();
#endif
}  // namespace anomalens

namespace {

struct Session {
  anomalens::Model model;
  std::unique_ptr<anomalens::Engine> engine;
  std::vector<float> input;
};

std::string g_error;
std::string g_text;

}  // namespace

extern "C" {

// Returns a session handle, or null with bench_error() set. `threads`: engine threads (more
// than one only in the pthread build, bench_core_mt).
EMSCRIPTEN_KEEPALIVE void* bench_load_threads(const uint8_t* data, size_t size, int threads) {
  anomalens::Result<anomalens::Model> m = anomalens::load_model(data, size);
  if (!m.ok()) {
    g_error = m.status().message();
    return nullptr;
  }
  auto s = std::make_unique<Session>();
  s->model = std::move(m).value();
  anomalens::EngineOptions options;
  options.threads = threads;
  auto e = anomalens::create_engine(s->model.graph, anomalens::Backend::kBuiltin, options);
  if (!e.ok()) {
    g_error = e.status().message();
    return nullptr;
  }
  s->engine = std::move(e).value();
  const anomalens::Shape& is = s->model.graph.blobs[s->model.graph.input_blob].shape;
  s->input.assign(static_cast<size_t>(is.elements()), 0.f);
  return s.release();
}

EMSCRIPTEN_KEEPALIVE void* bench_load(const uint8_t* data, size_t size) {
  return bench_load_threads(data, size, 1);
}

EMSCRIPTEN_KEEPALIVE const char* bench_error() { return g_error.c_str(); }
EMSCRIPTEN_KEEPALIVE float* bench_input(void* s) { return static_cast<Session*>(s)->input.data(); }
EMSCRIPTEN_KEEPALIVE size_t bench_input_size(void* s) { return static_cast<Session*>(s)->input.size(); }
EMSCRIPTEN_KEEPALIVE const float* bench_output(void* s) { return static_cast<Session*>(s)->engine->output(); }
EMSCRIPTEN_KEEPALIVE size_t bench_output_size(void* s) { return static_cast<Session*>(s)->engine->output_size(); }

// Runs `n` inferences on the session's input; returns 0 on success.
EMSCRIPTEN_KEEPALIVE int bench_run(void* sp, int n) {
  Session* s = static_cast<Session*>(sp);
  for (int i = 0; i < n; ++i) {
    anomalens::Status st = s->engine->run(s->input.data());
    if (!st.ok()) {
      g_error = st.message();
      return 1;
    }
  }
  return 0;
}

EMSCRIPTEN_KEEPALIVE void bench_free(void* s) { delete static_cast<Session*>(s); }

// Per-op profile of the last built engine as "ms\tlabel\n" lines (empty without the macro).
EMSCRIPTEN_KEEPALIVE const char* bench_profile() {
  g_text.clear();
#ifdef ANOMALENS_ENGINE_PROFILE
  for (const auto& p : anomalens::builtin_engine_profile()) {
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.4f", p.second);
    g_text += std::string(ms) + "\t" + p.first + "\n";
  }
#endif
  return g_text.c_str();
}

}  // extern "C"

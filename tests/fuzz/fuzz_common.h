// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the libFuzzer targets (tests/fuzz/run_fuzzers.sh builds them).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "classifier/classifier.h"

namespace anomalens {
namespace fuzz {

// A property the core promises was broken: report it the way a sanitizer would (abort), so
// libFuzzer saves the input as a crash.
[[noreturn]] inline void violated(const char* what, const char* detail) {
  std::fprintf(stderr, "fuzz property violated: %s (%s)\n", what, detail);
  std::abort();
}

// Seed for choices the harness makes (which preprocessing, which API) derived from the bytes
// without consuming them, so seed files stay plain images / models.
inline uint32_t choice_hash(const uint8_t* data, size_t size) {
  uint32_t h = 2166136261u ^ static_cast<uint32_t>(size);
  const size_t n = size < 64 ? size : 64;
  for (size_t i = 0; i < n; ++i) h = (h ^ data[i]) * 16777619u;
  if (size > 64) h = (h ^ data[size - 1]) * 16777619u;
  return h;
}

// Checks the Verdict contract of classifier.h: probabilities in [0, 1], label one of the two.
inline void check_verdict(const Verdict& v, const Model& model) {
  if (!(v.score >= 0.f && v.score <= 1.f)) violated("score outside [0, 1] or NaN", v.label.c_str());
  for (float s : v.scores) {
    if (!(s >= 0.f && s <= 1.f)) violated("scores[] outside [0, 1] or NaN", v.label.c_str());
  }
  if (v.abnormal != (v.score >= v.threshold)) violated("abnormal disagrees with score >= threshold", "");
  if (v.label != model.meta.labels[v.abnormal ? 1 : 0]) violated("label is not labels[abnormal]", v.label.c_str());
}

// Status messages must say something (the CLI and JS print them) and codes must be errors.
inline void check_failure(const Status& s) {
  if (s.ok()) violated("failed Result holds an ok Status", "");
  if (s.message().empty()) violated("failure without a message", status_code_name(s.code()));
}

// Fills a stretch of stack below the caller with `byte`. Called with different bytes before two
// runs of the same input, it makes a read of uninitialised stack memory (stb_image's BMP
// palette, for one) give different results, which the determinism checks then catch.
__attribute__((noinline)) inline void scribble_stack(uint8_t byte) {
  volatile uint8_t area[64 * 1024];
  for (size_t i = 0; i < sizeof area; ++i) area[i] = byte;
}

}  // namespace fuzz
}  // namespace anomalens

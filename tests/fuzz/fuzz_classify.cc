// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the whole Classifier, as the CLI and the wasm bindings call it, on one valid
// model (build/fixtures/allops.alm, every layer type; ANOMALENS_FUZZ_MODEL overrides it).
// A hash of the bytes picks the call: classify_encoded, classify_rgba (size from the bytes),
// a changed threshold or max_pixels. Every call is followed by a fixed good image, which must
// give the same verdict as before the bad one (a failure never poisons the next call), and the
// fuzzed input is classified twice (same result: no state leaks between calls).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "fuzz_common.h"

using namespace anomalens;

namespace {

std::unique_ptr<Classifier> g_clf;
std::vector<uint8_t> g_good_rgba;  // 7 x 5 gradient
float g_good_score = -1.f;

float good_score() {
  Result<Verdict> v = g_clf->classify_rgba(g_good_rgba.data(), g_good_rgba.size(), 7, 5);
  if (!v.ok()) fuzz::violated("fixed good image failed", v.status().to_string().c_str());
  return v.value().score;
}

bool same(const Result<Verdict>& a, const Result<Verdict>& b) {
  if (a.ok() != b.ok()) return false;
  if (!a.ok()) return a.status().code() == b.status().code() && a.status().message() == b.status().message();
  return a.value().score == b.value().score && a.value().label == b.value().label;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* path = std::getenv("ANOMALENS_FUZZ_MODEL");
  if (!path) path = ANOMALENS_FUZZ_DEFAULT_MODEL;
  Result<std::unique_ptr<Classifier>> c = Classifier::create_from_file(path);
  if (!c.ok()) {
    std::fprintf(stderr, "fuzz_classify: cannot load %s: %s\n", path, c.status().to_string().c_str());
    std::exit(2);
  }
  g_clf = std::move(c).value();
  for (int y = 0; y < 5; ++y) {
    for (int x = 0; x < 7; ++x) {
      g_good_rgba.insert(g_good_rgba.end(), {uint8_t(30 * x), uint8_t(50 * y), uint8_t(200 - 20 * x), 255});
    }
  }
  g_good_score = good_score();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint32_t h = fuzz::choice_hash(data, size);
  Classifier& clf = *g_clf;
  clf.decode_options() = DecodeOptions{};
  clf.decode_options().max_pixels = 2000000;
  Result<Verdict> first = Status(StatusCode::kInvalidArgument, "unset");
  Result<Verdict> second = first;
  fuzz::scribble_stack(0x00);  // the two calls of each case below see different stale stacks
  switch (h % 8) {
    case 0: {  // raw RGBA; width and height from the first bytes, the rest as pixels
      if (size < 4) return 0;
      const int w = data[0] | (data[1] & 0x0f) << 8;  // 0..4095
      const int ht = data[2] | (data[3] & 0x0f) << 8;
      first = clf.classify_rgba(data + 4, size - 4, w, ht);
      fuzz::scribble_stack(0xA5);
      second = clf.classify_rgba(data + 4, size - 4, w, ht);
      if (first.ok() && static_cast<size_t>(w) * ht * 4 != size - 4) fuzz::violated("classify_rgba accepted a wrong size", "");
      break;
    }
    case 1: {  // a custom threshold, possibly invalid
      float t;
      if (size < 4) return 0;
      std::memcpy(&t, data, 4);
      Status s = clf.set_threshold(t);
      if (s.ok() != (t >= 0.f && t <= 1.f)) fuzz::violated("set_threshold accepted/refused wrongly", "");
      first = clf.classify_encoded(data + 4, size - 4);
      fuzz::scribble_stack(0xA5);
      second = clf.classify_encoded(data + 4, size - 4);
      clf.set_threshold(clf.model().meta.threshold);
      break;
    }
    case 2:  // a tight pixel limit
      clf.decode_options().max_pixels = 1 + (h >> 8) % 4096;
      first = clf.classify_encoded(data, size);
      fuzz::scribble_stack(0xA5);
      second = clf.classify_encoded(data, size);
      break;
    default:
      first = clf.classify_encoded(data, size);
      fuzz::scribble_stack(0xA5);
      second = clf.classify_encoded(data, size);
      break;
  }
  if (first.ok()) fuzz::check_verdict(first.value(), clf.model());
  else fuzz::check_failure(first.status());
  if (!same(first, second)) fuzz::violated("same input, different result", "");
  clf.decode_options() = DecodeOptions{};
  if (good_score() != g_good_score) fuzz::violated("a call changed the next call's result", "");
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the core test suites: paths, file reading, and an in-memory .alm writer so
// tests can build graphs of any shape and still go through the real loader.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace anomalens {
namespace testing_util {

inline std::string fixture(const std::string& name) { return std::string(ANOMALENS_FIXTURE_DIR) + "/" + name; }
inline std::string shared_data(const std::string& rel) { return std::string(ANOMALENS_SHARED_DATA) + "/" + rel; }
inline std::string source(const std::string& rel) { return std::string(ANOMALENS_SOURCE_DIR) + "/" + rel; }

inline bool read_bytes(const std::string& path, std::vector<uint8_t>* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

// Builds an .alm file in memory (docs/FORMAT.md), f32 weights.
class AlmBuilder {
 public:
  AlmBuilder& meta(const std::string& key, const std::string& value) {
    meta_ += key + "=" + value + "\n";
    return *this;
  }
  // Standard meta for a classifier of the given input.
  AlmBuilder& classifier_meta(int w, int h, const std::string& channels, const std::string& output = "softmax") {
    const bool gray = channels == "gray";
    return meta("name", "test").meta("labels", "normal,abnormal")
        .meta("input_size", std::to_string(w) + "x" + std::to_string(h)).meta("channels", channels)
        .meta("scale", "255").meta("mean", gray ? "0.5" : "0.5,0.4,0.3")
        .meta("std", gray ? "0.25" : "0.25,0.2,0.3").meta("resize", "stretch")
        .meta("output", output).meta("threshold", "0.5");
  }
  AlmBuilder& layer(const std::string& line) {
    graph_ += line + "\n";
    return *this;
  }
  AlmBuilder& tensor(const std::string& name, const std::vector<int>& dims, const std::vector<float>& data) {
    while (weights_.size() % 64) weights_.push_back(0);
    std::string d;
    for (int x : dims) d += (d.empty() ? "" : ",") + std::to_string(x);
    tensors_ += name + " f32 " + d + " " + std::to_string(weights_.size()) + "\n";
    const size_t at = weights_.size();
    weights_.resize(at + data.size() * 4);
    std::memcpy(weights_.data() + at, data.data(), data.size() * 4);
    return *this;
  }
  // Random tensor in [-scale, scale].
  AlmBuilder& random_tensor(const std::string& name, const std::vector<int>& dims, std::mt19937* rng,
                            float scale = 0.5f) {
    size_t n = 1;
    for (int x : dims) n *= x;
    std::uniform_real_distribution<float> dist(-scale, scale);
    std::vector<float> data(n);
    for (float& v : data) v = dist(*rng);
    return tensor(name, dims, data);
  }
  std::vector<uint8_t> bytes() const {
    const std::vector<std::pair<std::string, std::string>> sections = {
        {"meta", meta_}, {"graph", graph_}, {"tensors", tensors_},
        {"weights", std::string(weights_.begin(), weights_.end())}};
    std::vector<uint8_t> out(16 + 32 * sections.size(), 0);
    std::memcpy(out.data(), "ALM1", 4);
    put32(&out, 4, 1);
    put32(&out, 8, static_cast<uint32_t>(sections.size()));
    for (size_t i = 0; i < sections.size(); ++i) {
      while (out.size() % 64) out.push_back(0);
      const size_t e = 16 + 32 * i;
      std::memcpy(out.data() + e, sections[i].first.data(), sections[i].first.size());
      put64(&out, e + 16, out.size());
      put64(&out, e + 24, sections[i].second.size());
      out.insert(out.end(), sections[i].second.begin(), sections[i].second.end());
    }
    return out;
  }

 private:
  static void put32(std::vector<uint8_t>* b, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) (*b)[at + i] = static_cast<uint8_t>(v >> (8 * i));
  }
  static void put64(std::vector<uint8_t>* b, size_t at, uint64_t v) {
    for (int i = 0; i < 8; ++i) (*b)[at + i] = static_cast<uint8_t>(v >> (8 * i));
  }
  std::string meta_, graph_, tensors_;
  std::vector<uint8_t> weights_;
};

// Inverted-residual blocks with expanded maps large enough (over 512 KB) for the builtin engine
// to compute each 1x1 expansion fused with its depthwise 3x3 and 1x1 projection, row by row:
// stride 1 and 2, odd sizes, TF-style asymmetric padding, channels not a multiple of 4. The
// third expansion's output also feeds a pool, so it must stay unfused. Returns the .alm bytes.
inline std::vector<uint8_t> fused_blocks_alm(int c, std::mt19937* rng) {
  const std::string e = std::to_string(c);
  AlmBuilder b;
  b.classifier_meta(53, 67, "rgb")
      .layer("Input in 0 1 x c=3 h=67 w=53")
      .layer("Conv e1 1 1 x x1 cout=" + e + " k=1,1 w=e1w b=e1b act=relu6")
      .random_tensor("e1w", {c, 3, 1, 1}, rng).random_tensor("e1b", {c}, rng)
      .layer("Conv d1 1 1 x1 y1 cout=" + e + " k=3,3 p=1,1,1,1 g=" + e + " w=d1w b=d1b act=relu6")
      .random_tensor("d1w", {c, 1, 3, 3}, rng).random_tensor("d1b", {c}, rng)
      .layer("Conv p1 1 1 y1 z1 cout=8 k=1,1 w=p1w act=none")
      .random_tensor("p1w", {8, c, 1, 1}, rng)
      .layer("Conv e2 1 1 z1 x2 cout=" + e + " k=1,1 w=e2w b=e2b act=relu")
      .random_tensor("e2w", {c, 8, 1, 1}, rng).random_tensor("e2b", {c}, rng)
      .layer("Conv d2 1 1 x2 y2 cout=" + e + " k=3,3 s=2,2 p=0,0,1,1 g=" + e + " w=d2w b=d2b act=relu6")
      .random_tensor("d2w", {c, 1, 3, 3}, rng).random_tensor("d2b", {c}, rng)
      .layer("Conv p2 1 1 y2 z2 cout=8 k=1,1 w=p2w act=none")
      .random_tensor("p2w", {8, c, 1, 1}, rng)
      .layer("Conv u2 1 1 z2 u cout=8 k=3,3 s=1,1 p=1,1,1,1 w=uw act=relu")
      .random_tensor("uw", {8, 8, 3, 3}, rng)
      .layer("Conv e3 1 1 z1 x3 cout=" + e + " k=1,1 w=e3w act=none")
      .random_tensor("e3w", {c, 8, 1, 1}, rng)
      .layer("Conv d3 1 1 x3 y3 cout=" + e + " k=3,3 s=2,2 p=1,1,1,1 g=" + e + " w=d3w act=relu")
      .random_tensor("d3w", {c, 1, 3, 3}, rng)
      .layer("MaxPool m3 1 1 x3 m k=3,3 s=2,2 p=1,1,1,1")
      .layer("Add a3 2 1 y3 m s3 act=none")
      .layer("GlobalAvgPool g1 1 1 u g1")
      .layer("GlobalAvgPool g3 1 1 s3 g3")
      .layer("Concat cat 2 1 g1 g3 cat")
      .layer("Gemm fc 1 1 cat out n=2 w=fw b=fb")
      .random_tensor("fw", {2, 8 + c}, rng).random_tensor("fb", {2}, rng);
  return b.bytes();
}

}  // namespace testing_util
}  // namespace anomalens

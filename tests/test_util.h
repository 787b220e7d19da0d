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

}  // namespace testing_util
}  // namespace anomalens

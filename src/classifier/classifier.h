// SPDX-License-Identifier: Apache-2.0
// Classifier: the app-facing API. Decode -> preprocess -> run the network -> verdict.
// The CLI and the Embind bindings are thin adapters over this class.
//
//   Result<std::unique_ptr<Classifier>> c = Classifier::create_from_file("models/default.alm");
//   if (!c.ok()) { fprintf(stderr, "%s\n", c.status().to_string().c_str()); return 1; }
//   Result<Verdict> v = c.value()->classify_encoded(bytes.data(), bytes.size());
//   if (v.ok()) printf("%s %.3f\n", v.value().label.c_str(), v.value().score);
//
// A Classifier is not thread-safe (it reuses its buffers); use one per thread. A failed call
// leaves it fully usable for the next one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "image/image.h"
#include "image/preprocess.h"
#include "model/model.h"
#include "nn/engine.h"
#include "oneclass/oneclass.h"

namespace anomalens {

struct Verdict {
  std::string label;           // meta.labels[0] (normal) or meta.labels[1] (abnormal)
  bool abnormal = false;
  float score = 0;             // P(abnormal) in [0, 1] (the mean over the model's test-time flips)
  float scores[2] = {0, 0};    // {P(normal), P(abnormal)}
  float threshold = 0;
  double decode_ms = 0, preprocess_ms = 0, infer_ms = 0;

  // One-class models (meta output=oneclass) only.
  float distance = 0;                  // raw anomaly distance (score is monotone in it)
  int map_width = 0, map_height = 0;   // feature grid
  std::vector<float> anomaly_map;      // per-location scores in [0, 1], row-major, 0.5 = threshold
  int heatmap_width = 0, heatmap_height = 0;
  std::vector<float> heatmap;          // set_heatmap(true): anomaly_map upsampled to the image
};

class Classifier {
 public:
  // Takes the model; builds the engine for `backend` (options: e.g. threads, see engine.h).
  // Fails with the engine's status.
  static Result<std::unique_ptr<Classifier>> create(Model model, Backend backend = Backend::kBuiltin,
                                                    const EngineOptions& options = EngineOptions());
  // Validates the bytes as an .alm file first (kInvalidModel / kUnsupported).
  static Result<std::unique_ptr<Classifier>> create_from_bytes(const uint8_t* data, size_t size,
                                                               Backend backend = Backend::kBuiltin,
                                                               const EngineOptions& options = EngineOptions());
  static Result<std::unique_ptr<Classifier>> create_from_file(const std::string& path,
                                                              Backend backend = Backend::kBuiltin);

  // Encoded image file bytes (PNG, JPEG, BMP, GIF, TGA).
  Result<Verdict> classify_encoded(const uint8_t* data, size_t size);
  // Raw RGBA pixels, width * height * 4 bytes.
  Result<Verdict> classify_rgba(const uint8_t* rgba, size_t size, int width, int height);
  Result<Verdict> classify_image(const Image& image);

  const Model& model() const { return model_; }
  Backend backend() const { return engine_->backend(); }
  // Overrides the model's decision threshold (P(abnormal) at or above it is abnormal).
  Status set_threshold(float threshold);
  DecodeOptions& decode_options() { return decode_options_; }
  // One-class models: also fill Verdict::heatmap at the input image's size (default off).
  void set_heatmap(bool on) { heatmap_ = on; }
  bool is_oneclass() const { return oneclass_ != nullptr; }

  // Runs only the network, once, on an already preprocessed HWC tensor (benchmarks, golden
  // tests): no test-time flips.
  Status infer(const float* input_hwc, std::vector<float>* raw_output);

 private:
  Classifier(Model model, std::unique_ptr<Engine> engine);
  // Runs the network on input_ (once per test-time flip) and makes the verdict.
  Result<Verdict> run_network();
  // {P(normal), P(abnormal)} from the engine's output of a supervised model.
  void supervised_scores(float scores[2]) const;

  Model model_;
  std::unique_ptr<Engine> engine_;
  Preprocessor preprocessor_;
  std::vector<float> input_;
  std::vector<float> flipped_input_;  // only for models with test-time flips
  DecodeOptions decode_options_;
  float threshold_;
  std::unique_ptr<OneClassParams> oneclass_;  // parsed "oneclass" section
  std::vector<float> scratch_;
  bool heatmap_ = false;
};

}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
#include "classifier/classifier.h"

#include <chrono>
#include <cmath>
#include <fstream>

namespace anomalens {
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Classifier::Classifier(Model model, std::unique_ptr<Engine> engine)
    : model_(std::move(model)), engine_(std::move(engine)), threshold_(model_.meta.threshold) {
  input_.resize(static_cast<size_t>(model_.meta.input_width) * model_.meta.input_height *
                model_.meta.channel_count());
}

Result<std::unique_ptr<Classifier>> Classifier::create(Model model, Backend backend,
                                                       const EngineOptions& options) {
  // The reference engine reads weights in place, so the engine is built on the graph the
  // Classifier will own (moved into place first, then the engine created from it).
  std::unique_ptr<Classifier> c(new Classifier(std::move(model), nullptr));
  if (c->model_.meta.output == OutputKind::kOneClass) {
    if (c->model_.oneclass_section.empty()) {
      return Status(StatusCode::kInvalidModel, "one-class model \"" + c->model_.meta.name +
                                                   "\" is not fitted (no \"oneclass\" section): run anomalens fit");
    }
    Result<OneClassParams> p = parse_oneclass_section(c->model_.oneclass_section.data(), c->model_.oneclass_section.size(),
                                                      c->model_.graph.blobs[c->model_.graph.output_blob].shape);
    if (!p.ok()) return p.status();
    c->oneclass_.reset(new OneClassParams(std::move(p).value()));
  }
  Result<std::unique_ptr<Engine>> engine = create_engine(c->model_.graph, backend, options);
  if (!engine.ok()) return engine.status();
  c->engine_ = std::move(engine).value();
  return c;
}

Result<std::unique_ptr<Classifier>> Classifier::create_from_bytes(const uint8_t* data, size_t size,
                                                                  Backend backend,
                                                                  const EngineOptions& options) {
  Result<Model> model = load_model(data, size);
  if (!model.ok()) return model.status();
  return create(std::move(model).value(), backend, options);
}

Result<std::unique_ptr<Classifier>> Classifier::create_from_file(const std::string& path, Backend backend) {
  Result<Model> model = load_model_file(path);
  if (!model.ok()) return model.status();
  return create(std::move(model).value(), backend);
}

Status Classifier::set_threshold(float threshold) {
  if (!(threshold >= 0.f && threshold <= 1.f)) {
    return Status(StatusCode::kInvalidArgument, "threshold " + std::to_string(threshold) + " must be in [0, 1]");
  }
  threshold_ = threshold;
  return Status::Ok();
}

Status Classifier::infer(const float* input_hwc, std::vector<float>* raw_output) {
  ANOMALENS_RETURN_IF_ERROR(engine_->run(input_hwc));
  raw_output->assign(engine_->output(), engine_->output() + engine_->output_size());
  return Status::Ok();
}

Verdict Classifier::verdict_from_output() {
  const float* y = engine_->output();
  Verdict v;
  switch (model_.meta.output) {
    case OutputKind::kOneClass: {
      const OneClassParams& p = *oneclass_;
      v.map_width = p.grid_w;
      v.map_height = p.grid_h;
      v.anomaly_map.resize(p.locations());
      v.distance = oneclass_distance_map(p, y, v.anomaly_map.data(), &scratch_);
      for (float& m : v.anomaly_map) m = p.score(m);
      v.scores[1] = p.score(v.distance);
      v.scores[0] = 1.f - v.scores[1];
      break;
    }
    case OutputKind::kSoftmax: {
      const float m = std::max(y[0], y[1]);
      const float e0 = std::exp(y[0] - m), e1 = std::exp(y[1] - m);
      v.scores[0] = e0 / (e0 + e1);
      v.scores[1] = e1 / (e0 + e1);
      break;
    }
    case OutputKind::kProbabilities:
      v.scores[0] = y[0];
      v.scores[1] = y[1];
      break;
    case OutputKind::kSigmoid:
      v.scores[1] = 1.f / (1.f + std::exp(-y[0]));
      v.scores[0] = 1.f - v.scores[1];
      break;
  }
  v.score = v.scores[1];
  if (!std::isfinite(v.score)) v.score = 1.f;  // a broken activation reads as abnormal, never NaN
  v.threshold = threshold_;
  v.abnormal = v.score >= threshold_;
  v.label = model_.meta.labels[v.abnormal ? 1 : 0];
  return v;
}

Result<Verdict> Classifier::classify_image(const Image& image) {
  auto t0 = std::chrono::steady_clock::now();
  preprocessor_.run(image, model_.meta, input_.data());
  const double pre_ms = ms_since(t0);
  t0 = std::chrono::steady_clock::now();
  ANOMALENS_RETURN_IF_ERROR(engine_->run(input_.data()));
  Verdict v = verdict_from_output();
  if (heatmap_ && oneclass_) {
    upsample_anomaly_map(v.anomaly_map.data(), v.map_width, v.map_height, model_.meta, image.width, image.height,
                         &v.heatmap);
    v.heatmap_width = image.width;
    v.heatmap_height = image.height;
  }
  v.infer_ms = ms_since(t0);
  v.preprocess_ms = pre_ms;
  return v;
}

Result<Verdict> Classifier::classify_encoded(const uint8_t* data, size_t size) {
  const auto t0 = std::chrono::steady_clock::now();
  Result<Image> image = decode_image(data, size, decode_options_);
  if (!image.ok()) return image.status();
  const double decode_ms = ms_since(t0);
  Result<Verdict> v = classify_image(image.value());
  if (v.ok()) v.value().decode_ms = decode_ms;
  return v;
}

Result<Verdict> Classifier::classify_rgba(const uint8_t* rgba, size_t size, int width, int height) {
  const auto t0 = std::chrono::steady_clock::now();
  Result<Image> image = image_from_rgba(rgba, size, width, height, decode_options_);
  if (!image.ok()) return image.status();
  const double decode_ms = ms_since(t0);
  Result<Verdict> v = classify_image(image.value());
  if (v.ok()) v.value().decode_ms = decode_ms;
  return v;
}

}  // namespace anomalens

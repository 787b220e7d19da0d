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
  for (Flip f : model_.meta.test_time_flips) {
    if (f != Flip::kNone) flipped_input_.resize(input_.size());
  }
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

void Classifier::supervised_scores(float scores[2]) const {
  const float* y = engine_->output();
  switch (model_.meta.output) {
    case OutputKind::kSoftmax: {
      const float m = std::max(y[0], y[1]);
      const float e0 = std::exp(y[0] - m), e1 = std::exp(y[1] - m);
      scores[0] = e0 / (e0 + e1);
      scores[1] = e1 / (e0 + e1);
      break;
    }
    case OutputKind::kProbabilities:
      scores[0] = y[0];
      scores[1] = y[1];
      break;
    case OutputKind::kSigmoid:
      scores[1] = 1.f / (1.f + std::exp(-y[0]));
      scores[0] = 1.f - scores[1];
      break;
    case OutputKind::kOneClass:  // scored by run_network from the feature map
      scores[0] = scores[1] = 0.f;
      break;
  }
}

Result<Verdict> Classifier::run_network() {
  Verdict v;
  if (oneclass_) {
    ANOMALENS_RETURN_IF_ERROR(engine_->run(input_.data()));
    const OneClassParams& p = *oneclass_;
    v.map_width = p.grid_w;
    v.map_height = p.grid_h;
    v.anomaly_map.resize(p.locations());
    v.distance = oneclass_distance_map(p, engine_->output(), v.anomaly_map.data(), &scratch_);
    for (float& m : v.anomaly_map) m = p.score(m);
    v.scores[1] = p.score(v.distance);
    v.scores[0] = 1.f - v.scores[1];
  } else {
    // One run per test-time flip; the verdict scores their mean. A model that lists only
    // "none" runs once and gets exactly the network's scores (0 + s * 1 == s).
    const std::vector<Flip>& flips = model_.meta.test_time_flips;
    const float share = 1.f / static_cast<float>(flips.size());
    for (Flip f : flips) {
      const float* x = input_.data();
      if (f != Flip::kNone) {
        flipped_input_ = input_;  // same size: no allocation
        flip_hwc(flipped_input_.data(), model_.meta.input_width, model_.meta.input_height, model_.meta.channel_count(),
                 f == Flip::kHorizontal || f == Flip::kBoth, f == Flip::kVertical || f == Flip::kBoth);
        x = flipped_input_.data();
      }
      ANOMALENS_RETURN_IF_ERROR(engine_->run(x));
      float s[2];
      supervised_scores(s);
      v.scores[0] += s[0] * share;
      v.scores[1] += s[1] * share;
    }
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
  Result<Verdict> ran = run_network();
  if (!ran.ok()) return ran.status();
  Verdict v = std::move(ran).value();
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

// SPDX-License-Identifier: Apache-2.0
// Embind glue only: bytes and numbers in, plain objects out. Every call returns
// {ok: true, ...} or {ok: false, code, message}; web/ turns failures into thrown errors.
// Nothing here keeps a view into JS memory: byte inputs (Uint8Array) are copied in once.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <memory>
#include <string>
#include <vector>

#include "classifier/classifier.h"
#include "oneclass/oneclass.h"

namespace anomalens {
namespace {

using emscripten::val;

val error_object(const Status& s) {
  val o = val::object();
  o.set("ok", false);
  o.set("code", std::string(status_code_name(s.code())));
  o.set("message", s.message());
  return o;
}

val verdict_object(const Verdict& v) {
  val o = val::object();
  o.set("ok", true);
  o.set("label", v.label);
  o.set("abnormal", v.abnormal);
  o.set("score", v.score);
  val scores = val::object();
  scores.set("normal", v.scores[0]);
  scores.set("abnormal", v.scores[1]);
  o.set("scores", scores);
  o.set("threshold", v.threshold);
  val timings = val::object();
  timings.set("decode", v.decode_ms);
  timings.set("preprocess", v.preprocess_ms);
  timings.set("infer", v.infer_ms);
  o.set("timings", timings);
  if (!v.anomaly_map.empty()) {
    // One-class models: raw distance and per-location scores (0.5 = threshold), copied out of
    // the wasm heap (slice) so no view into it escapes.
    o.set("distance", v.distance);
    val map = val::object();
    map.set("width", v.map_width);
    map.set("height", v.map_height);
    map.set("data", val(emscripten::typed_memory_view(v.anomaly_map.size(), v.anomaly_map.data())).call<val>("slice"));
    o.set("anomalyMap", map);
  }
  if (!v.heatmap.empty()) {
    val map = val::object();
    map.set("width", v.heatmap_width);
    map.set("height", v.heatmap_height);
    map.set("data", val(emscripten::typed_memory_view(v.heatmap.size(), v.heatmap.data())).call<val>("slice"));
    o.set("heatmap", map);
  }
  return o;
}

// A JS Uint8Array (or Uint8ClampedArray, or a Node Buffer) copied into wasm memory by one
// TypedArray.prototype.set, i.e. a memcpy. Not Embind's std::string conversion: that copies
// byte by byte in JS, and in the pthread build every byte also goes through a heap-growth check
// (a 640x480 webcam frame took ~100 ms that way).
Result<std::vector<uint8_t>> bytes_from_js(const val& array, const char* what) {
  if (!array.instanceof(val::global("Uint8Array")) && !array.instanceof(val::global("Uint8ClampedArray"))) {
    return Status(StatusCode::kInvalidArgument, std::string(what) + " must be a Uint8Array");
  }
  const size_t n = array["length"].as<size_t>();
  std::vector<uint8_t> out(n);
  if (n > 0) val(emscripten::typed_memory_view(n, out.data())).call<void>("set", array);
  return out;
}

const char* channel_name(ChannelOrder c) {
  switch (c) {
    case ChannelOrder::kRgb: return "rgb";
    case ChannelOrder::kBgr: return "bgr";
    case ChannelOrder::kGray: return "gray";
  }
  return "?";
}

class JsClassifier {
 public:
  explicit JsClassifier(std::unique_ptr<Classifier> c) : c_(std::move(c)) {}

  val classify_encoded(const val& encoded) {
    Result<std::vector<uint8_t>> bytes = bytes_from_js(encoded, "image bytes");
    if (!bytes.ok()) return error_object(bytes.status());
    Result<Verdict> v = c_->classify_encoded(bytes.value().data(), bytes.value().size());
    return v.ok() ? verdict_object(v.value()) : error_object(v.status());
  }

  val classify_rgba(const val& pixels, int width, int height) {
    Result<std::vector<uint8_t>> rgba = bytes_from_js(pixels, "RGBA pixels");
    if (!rgba.ok()) return error_object(rgba.status());
    Result<Verdict> v = c_->classify_rgba(rgba.value().data(), rgba.value().size(), width, height);
    return v.ok() ? verdict_object(v.value()) : error_object(v.status());
  }

  val set_threshold(double t) {
    Status s = c_->set_threshold(static_cast<float>(t));
    if (!s.ok()) return error_object(s);
    val o = val::object();
    o.set("ok", true);
    return o;
  }

  // One-class models: also return `heatmap` (per-pixel scores at the image's size).
  void set_heatmap(bool on) { c_->set_heatmap(on); }

  void set_max_pixels(double n) {
    if (n >= 1) c_->decode_options().max_pixels = static_cast<int64_t>(n);
  }

  val info() const {
    const Model& m = c_->model();
    val o = val::object();
    o.set("name", m.meta.name);
    val labels = val::array();
    for (const std::string& l : m.meta.labels) labels.call<void>("push", l);
    o.set("labels", labels);
    o.set("inputWidth", m.meta.input_width);
    o.set("inputHeight", m.meta.input_height);
    o.set("channels", std::string(channel_name(m.meta.channels)));
    o.set("threshold", m.meta.threshold);
    o.set("oneclass", c_->is_oneclass());
    o.set("parameters", static_cast<double>(m.graph.parameter_count()));
    o.set("macs", static_cast<double>(m.graph.macs()));
    o.set("layers", static_cast<int>(m.graph.layers.size()));
    o.set("backend", std::string(backend_name(c_->backend())));
    val meta = val::object();
    for (const auto& kv : m.meta.entries) meta.set(kv.first, kv.second);
    o.set("meta", meta);
    return o;
  }

 private:
  std::unique_ptr<Classifier> c_;
};

// `threads`: engine threads (0 = all cores, at most the pthread pool + 1); only the pthread
// bundle (anomalens_core_mt) runs more than one.
val create_classifier_with_threads(const val& model, int threads) {
  Result<std::vector<uint8_t>> model_bytes = bytes_from_js(model, "the model");
  if (!model_bytes.ok()) return error_object(model_bytes.status());
  Result<Model> parsed = load_model(model_bytes.value().data(), model_bytes.value().size());
  if (!parsed.ok()) return error_object(parsed.status());
  // Free the file copy before the engine allocates: its packed weights then reuse these pages.
  // On a first load, touching fresh pages is a large part of the time (a page fault each).
  std::vector<uint8_t>().swap(model_bytes.value());
  EngineOptions options;
  options.threads = threads;
  Result<std::unique_ptr<Classifier>> c =
      Classifier::create(std::move(parsed).value(), Backend::kBuiltin, options);
  if (!c.ok()) return error_object(c.status());
  val o = val::object();
  o.set("ok", true);
  o.set("classifier", std::make_shared<JsClassifier>(std::move(c).value()));
  return o;
}

val create_classifier(const val& model) { return create_classifier_with_threads(model, 1); }


val ok_object() {
  val o = val::object();
  o.set("ok", true);
  return o;
}

double number_option(const val& options, const char* key, double fallback) {
  if (options.isUndefined() || options.isNull()) return fallback;
  const val v = options[key];
  return v.isNumber() ? v.as<double>() : fallback;
}

// One-class fitting in the browser: createFitter(baseModelBytes, {fpr, dim, holdoutEvery, threads,
// pool: 'max'|'avg', smooth, shrinkage, ridge, storage: 'f16'|'f32', augment: 'none'|'hflip'|'flips'|
// comma list}) (as `fit`)
// -> {ok, fitter}; add normal (and optionally abnormal) images as encoded bytes or RGBA, then
// finish() -> {ok, modelBytes, threshold, summary}. The base is a classifier .alm, a backbone
// (scripts/oneclass_backbone.py) or a fitted one-class model (refitted from scratch).
class JsFitter {
 public:
  explicit JsFitter(std::unique_ptr<OneClassFitter> f) : f_(std::move(f)) {}

  val add_normal_encoded(const val& bytes) { return add_encoded(bytes, false); }
  val add_abnormal_encoded(const val& bytes) { return add_encoded(bytes, true); }
  val add_normal_rgba(const val& rgba, int width, int height) { return add_rgba(rgba, width, height, false); }
  val add_abnormal_rgba(const val& rgba, int width, int height) { return add_rgba(rgba, width, height, true); }

  val finish() {
    if (finished_) return error_object(Status(StatusCode::kInvalidArgument, "finish() was already called on this fitter"));
    Result<FitSummary> r = f_->finish();
    if (!r.ok()) return error_object(r.status());
    finished_ = true;
    const FitSummary& s = r.value();
    const std::vector<uint8_t> bytes = f_->model_bytes();
    val o = ok_object();
    o.set("modelBytes", val(emscripten::typed_memory_view(bytes.size(), bytes.data())).call<val>("slice"));
    o.set("threshold", s.threshold);
    val sum = val::object();
    sum.set("fitImages", s.fit_images);
    sum.set("holdoutImages", s.holdout_images);
    sum.set("abnormalImages", s.abnormal_images);
    sum.set("threshold", s.threshold);
    sum.set("scale", s.scale);
    sum.set("holdoutFpr", s.holdout_fpr);
    sum.set("abnormalRecall", s.abnormal_recall);
    sum.set("f1", s.f1);
    sum.set("rocAuc", s.roc_auc);
    sum.set("refinedByF1", s.refined_by_f1);
    sum.set("thresholdExtrapolated", s.threshold_extrapolated);
    sum.set("storage", std::string(s.storage == FloatStorage::kF16 ? "f16" : "f32"));
    sum.set("modelBytes", static_cast<double>(s.model_bytes));
    sum.set("peakFitBytes", static_cast<double>(s.peak_fit_bytes));
    o.set("summary", sum);
    return o;
  }

  int normal_count() const { return f_->normal_count(); }
  int abnormal_count() const { return abnormal_; }

 private:
  val add_image(Result<Image> image, bool abnormal) {
    if (finished_) return error_object(Status(StatusCode::kInvalidArgument, "images cannot be added after finish()"));
    if (!image.ok()) return error_object(image.status());
    Status s = abnormal ? f_->add_abnormal(image.value()) : f_->add_normal(image.value());
    if (!s.ok()) return error_object(s);
    if (abnormal) ++abnormal_;
    return ok_object();
  }
  val add_encoded(const val& encoded, bool abnormal) {
    Result<std::vector<uint8_t>> bytes = bytes_from_js(encoded, "image bytes");
    if (!bytes.ok()) return error_object(bytes.status());
    return add_image(decode_image(bytes.value().data(), bytes.value().size(), DecodeOptions{}), abnormal);
  }
  val add_rgba(const val& pixels, int width, int height, bool abnormal) {
    Result<std::vector<uint8_t>> rgba = bytes_from_js(pixels, "RGBA pixels");
    if (!rgba.ok()) return error_object(rgba.status());
    return add_image(image_from_rgba(rgba.value().data(), rgba.value().size(), width, height, DecodeOptions{}), abnormal);
  }

  std::unique_ptr<OneClassFitter> f_;
  bool finished_ = false;
  int abnormal_ = 0;
};

val create_fitter(const val& base_model, val options) {
  Result<std::vector<uint8_t>> base_bytes = bytes_from_js(base_model, "the base model");
  if (!base_bytes.ok()) return error_object(base_bytes.status());
  Result<Model> base = load_model(base_bytes.value().data(), base_bytes.value().size());
  if (!base.ok()) return error_object(base.status());
  FitOptions fit;
  fit.fpr = number_option(options, "fpr", fit.fpr);
  if (!(fit.fpr >= 0 && fit.fpr < 1)) {
    return error_object(Status(StatusCode::kInvalidArgument, "fpr " + std::to_string(fit.fpr) + ": must be in [0, 1)"));
  }
  fit.holdout_every = static_cast<int>(number_option(options, "holdoutEvery", fit.holdout_every));
  if (fit.holdout_every < 2) {
    return error_object(Status(StatusCode::kInvalidArgument, "holdoutEvery " + std::to_string(fit.holdout_every) + ": must be >= 2"));
  }
  const double threads = number_option(options, "threads", 1);
  if (!(threads >= 0 && threads <= 64)) {
    return error_object(Status(StatusCode::kInvalidArgument, "threads " + std::to_string(threads) + ": must be in [0, 64]"));
  }
  fit.threads = static_cast<int>(threads);
  fit.smooth = static_cast<float>(number_option(options, "smooth", fit.smooth));
  if (!(fit.smooth >= 0 && fit.smooth <= kMaxSmooth)) {
    return error_object(Status(StatusCode::kInvalidArgument, "smooth " + std::to_string(fit.smooth) + ": must be in [0, 8]"));
  }
  fit.ridge = number_option(options, "ridge", fit.ridge);
  if (!(fit.ridge >= 0 && fit.ridge <= kMaxShrinkage)) {
    return error_object(Status(StatusCode::kInvalidArgument, "ridge " + std::to_string(fit.ridge) + ": must be in [0, 100]"));
  }
  fit.shrinkage = number_option(options, "shrinkage", fit.shrinkage);
  if (!(fit.shrinkage >= 0 && fit.shrinkage <= kMaxShrinkage)) {
    return error_object(Status(StatusCode::kInvalidArgument, "shrinkage " + std::to_string(fit.shrinkage) + ": must be in [0, 100]"));
  }
  FeatureSpec spec;
  if (!options.isUndefined() && !options.isNull()) {
    const val augment = options["augment"];
    if (augment.isString() && !parse_oneclass_augment(augment.as<std::string>(), &fit.augment)) {
      return error_object(Status(StatusCode::kInvalidArgument, "augment \"" + augment.as<std::string>() +
                                                                 "\": expected none, hflip, vflip, rot180, flips or a comma list"));
    }
    const val storage = options["storage"];
    if (!storage.isUndefined()) {
      const std::string name = storage.isString() ? storage.as<std::string>() : "(not a string)";
      if (name != "f16" && name != "f32") {
        return error_object(Status(StatusCode::kInvalidArgument, "storage \"" + name + "\": expected f16 or f32"));
      }
      fit.storage = name == "f16" ? FloatStorage::kF16 : FloatStorage::kF32;
    }
    const val pool = options["pool"];
    if (pool.isString()) {
      const std::string p = pool.as<std::string>();
      if (p != "max" && p != "avg") {
        return error_object(Status(StatusCode::kInvalidArgument, "pool \"" + p + "\": expected max or avg"));
      }
      spec.max_pool = p == "max";
    }
    // Absent: the base's own projection size (features.projection), else the default. Present,
    // it must be a number in range: no value of it means "the default".
    const val dim_value = options["dim"];
    if (!dim_value.isUndefined()) {
      const double dim = dim_value.isNumber() ? dim_value.as<double>() : -1;
      if (!(dim >= 0 && dim <= kMaxProjection)) {
        return error_object(Status(StatusCode::kInvalidArgument,
                                   "dim " + (dim_value.isNumber() ? std::to_string(dim) : std::string("(not a number)")) +
                                       ": must be in [0, 4096]"));
      }
      spec.projection = static_cast<int>(dim);
    }
  }
  Result<Model> features = make_feature_model(base.value(), spec);
  if (!features.ok()) return error_object(features.status());
  auto fitter = std::make_unique<OneClassFitter>(std::move(features).value(), fit, Backend::kBuiltin);
  Status init = fitter->init();
  if (!init.ok()) return error_object(init);
  val o = ok_object();
  o.set("fitter", std::make_shared<JsFitter>(std::move(fitter)));
  return o;
}

}  // namespace
}  // namespace anomalens

EMSCRIPTEN_BINDINGS(anomalens) {
  using anomalens::JsClassifier;
  emscripten::class_<JsClassifier>("Classifier")
      .smart_ptr<std::shared_ptr<JsClassifier>>("ClassifierHandle")
      .function("classifyEncoded", &JsClassifier::classify_encoded)
      .function("classifyRgba", &JsClassifier::classify_rgba)
      .function("setThreshold", &JsClassifier::set_threshold)
      .function("setMaxPixels", &JsClassifier::set_max_pixels)
      .function("setHeatmap", &JsClassifier::set_heatmap)
      .function("info", &JsClassifier::info);
  emscripten::class_<anomalens::JsFitter>("Fitter")
      .smart_ptr<std::shared_ptr<anomalens::JsFitter>>("FitterHandle")
      .function("addNormalEncoded", &anomalens::JsFitter::add_normal_encoded)
      .function("addNormalRgba", &anomalens::JsFitter::add_normal_rgba)
      .function("addAbnormalEncoded", &anomalens::JsFitter::add_abnormal_encoded)
      .function("addAbnormalRgba", &anomalens::JsFitter::add_abnormal_rgba)
      .function("finish", &anomalens::JsFitter::finish)
      .function("normalCount", &anomalens::JsFitter::normal_count)
      .function("abnormalCount", &anomalens::JsFitter::abnormal_count);
  emscripten::function("createFitter", &anomalens::create_fitter);
  emscripten::function("createClassifier", &anomalens::create_classifier);
  emscripten::function("createClassifierWithThreads", &anomalens::create_classifier_with_threads);
}

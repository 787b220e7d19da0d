// SPDX-License-Identifier: Apache-2.0
// Embind glue only: bytes and numbers in, plain objects out. Every call returns
// {ok: true, ...} or {ok: false, code, message}; web/ turns failures into thrown errors.
// Nothing here keeps a view into JS memory: inputs are copied once by Embind.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <memory>
#include <string>

#include "classifier/classifier.h"

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

  val classify_encoded(const std::string& bytes) {
    Result<Verdict> v = c_->classify_encoded(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    return v.ok() ? verdict_object(v.value()) : error_object(v.status());
  }

  val classify_rgba(const std::string& rgba, int width, int height) {
    Result<Verdict> v =
        c_->classify_rgba(reinterpret_cast<const uint8_t*>(rgba.data()), rgba.size(), width, height);
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

val create_classifier(const std::string& model_bytes) {
  Result<std::unique_ptr<Classifier>> c =
      Classifier::create_from_bytes(reinterpret_cast<const uint8_t*>(model_bytes.data()), model_bytes.size());
  if (!c.ok()) return error_object(c.status());
  val o = val::object();
  o.set("ok", true);
  o.set("classifier", std::make_shared<JsClassifier>(std::move(c).value()));
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
  emscripten::function("createClassifier", &anomalens::create_classifier);
}

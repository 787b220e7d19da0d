// SPDX-License-Identifier: Apache-2.0
#include "nn/engine_xnnpack.h"

#include <pthreadpool.h>
#include <xnnpack.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace anomalens {
namespace {

constexpr uint32_t kInputExternalId = 0;
constexpr uint32_t kOutputExternalId = 1;
constexpr float kInf = std::numeric_limits<float>::infinity();

const char* xnn_status_name(xnn_status status) {
  switch (status) {
    case xnn_status_success: return "xnn_status_success";
    case xnn_status_uninitialized: return "xnn_status_uninitialized";
    case xnn_status_invalid_parameter: return "xnn_status_invalid_parameter";
    case xnn_status_invalid_state: return "xnn_status_invalid_state";
    case xnn_status_unsupported_parameter: return "xnn_status_unsupported_parameter";
    case xnn_status_unsupported_hardware: return "xnn_status_unsupported_hardware";
    case xnn_status_out_of_memory: return "xnn_status_out_of_memory";
  }
  return "unknown xnn_status";
}

std::string layer_ref(const Layer& layer) {
  return "layer \"" + layer.name + "\" (line " + std::to_string(layer.line) + ")";
}

Status xnn_failure(const std::string& where, const char* what, xnn_status status) {
  StatusCode code =
      status == xnn_status_out_of_memory ? StatusCode::kOutOfMemory : StatusCode::kUnsupported;
  return Status(code, where + ": XNNPACK " + what + " failed (" + xnn_status_name(status) + ")");
}

Status unsupported(const Layer& layer, const std::string& why) {
  return Status(StatusCode::kUnsupported, layer_ref(layer) + ": XNNPACK backend: " + why);
}

Status xnn_init_once() {
  // xnn_initialize is idempotent, but a function-local static also makes the first call
  // thread-safe and keeps the library initialised for the process lifetime.
  static const xnn_status status = xnn_initialize(nullptr);
  if (status != xnn_status_success) {
    return xnn_failure("XNNPACK backend", "xnn_initialize", status);
  }
  return Status::Ok();
}

// Element order of a (K,1,1) blob that came from flattening a (C,H,W) blob with H*W > 1:
// XNNPACK holds it in HWC order of `source`, the model means NCHW order. Gemm layers fold the
// permutation into their weights; the graph output is reordered on the host after each run.
struct BlobValue {
  uint32_t id = XNN_INVALID_VALUE_ID;
  bool permuted = false;
  Shape source;
};

class XnnpackEngine final : public Engine {
 public:
  ~XnnpackEngine() override {
    if (runtime_ != nullptr) xnn_delete_runtime(runtime_);
    if (threadpool_ != nullptr) pthreadpool_destroy(threadpool_);  // after the runtime using it
  }

  // Before the runtime is built: it binds the pool at creation.
  Status start_threads(int threads) {
    if (threads <= 1) return Status::Ok();
    // pthreadpool counts the caller among its threads, as our own ThreadPool does.
    threadpool_ = pthreadpool_create(static_cast<size_t>(threads));
    if (threadpool_ == nullptr) {
      return Status(StatusCode::kOutOfMemory,
                    "XNNPACK backend: pthreadpool_create(" + std::to_string(threads) + ") failed");
    }
    return Status::Ok();
  }

  Status run(const float* input_hwc) override {
    if (input_hwc == nullptr) {
      return Status(StatusCode::kInvalidArgument, "XNNPACK engine: input pointer is null");
    }
    std::memcpy(input_.data(), input_hwc, input_elements_ * sizeof(float));
    xnn_status status = xnn_invoke_runtime(runtime_);
    if (status != xnn_status_success) {
      return xnn_failure("XNNPACK engine", "xnn_invoke_runtime", status);
    }
    if (!output_order_.empty()) {
      for (size_t i = 0; i < output_order_.size(); ++i) output_[output_order_[i]] = staging_[i];
    }
    return Status::Ok();
  }

  const float* output() const override {
    return output_order_.empty() ? staging_.data() : output_.data();
  }
  size_t output_size() const override { return output_elements_; }
  Backend backend() const override { return Backend::kXnnpack; }

 private:
  friend class SubgraphBuilder;

  xnn_runtime_t runtime_ = nullptr;
  pthreadpool_t threadpool_ = nullptr;  // null: XNNPACK runs every op on the calling thread
  // Static tensor data handed to XNNPACK; a deque never moves its elements, and moving a vector
  // into it keeps the heap buffer, so the pointers stay valid for the engine's lifetime.
  std::deque<std::vector<float>> static_data_;
  size_t input_elements_ = 0;
  size_t output_elements_ = 0;
  std::vector<float> input_;    // external input, XNN_EXTRA_BYTES of slack for over-reads
  std::vector<float> staging_;  // external output as XNNPACK writes it
  std::vector<float> output_;   // NCHW-ordered output when the output blob is permuted
  std::vector<size_t> output_order_;  // staging index -> output index, empty if identity
};

struct SubgraphDeleter {
  void operator()(xnn_subgraph* subgraph) const { xnn_delete_subgraph(subgraph); }
};

class SubgraphBuilder {
 public:
  SubgraphBuilder(const Graph& graph, XnnpackEngine* engine) : graph_(graph), engine_(engine) {}

  Status build() {
    if (graph_.input_blob < 0 || graph_.output_blob < 0 ||
        graph_.input_blob >= static_cast<int>(graph_.blobs.size()) ||
        graph_.output_blob >= static_cast<int>(graph_.blobs.size())) {
      return Status(StatusCode::kInvalidModel, "XNNPACK backend: graph has no input or output blob");
    }
    xnn_subgraph_t raw = nullptr;
    xnn_status status = xnn_create_subgraph(/*external_value_ids=*/2, 0, &raw);
    if (status != xnn_status_success) {
      return xnn_failure("XNNPACK backend", "xnn_create_subgraph", status);
    }
    subgraph_.reset(raw);
    values_.assign(graph_.blobs.size(), BlobValue{});

    // XNNPACK allocates no memory for a value no node reads, and its runtime setup then
    // asserts; so every layer's output must be read by a later layer or be the graph output.
    std::vector<bool> read(graph_.blobs.size(), false);
    for (const Layer& layer : graph_.layers) {
      for (int b : layer.inputs) {
        if (b >= 0 && b < static_cast<int>(read.size())) read[b] = true;
      }
    }
    for (const Layer& layer : graph_.layers) {
      for (int b : layer.outputs) {
        if (b >= 0 && b < static_cast<int>(read.size()) && !read[b] && b != graph_.output_blob) {
          return Status(StatusCode::kInvalidModel,
                        layer_ref(layer) + ": output blob \"" + graph_.blobs[b].name +
                            "\" is read by no layer and is not the graph output");
        }
      }
    }
    for (const Layer& layer : graph_.layers) {
      ANOMALENS_RETURN_IF_ERROR(check_arity(layer));
      ANOMALENS_RETURN_IF_ERROR(define_layer(layer));
    }
    const BlobValue& out = values_[graph_.output_blob];
    if (out.id != kOutputExternalId) {
      return Status(StatusCode::kInvalidModel,
                    "XNNPACK backend: output blob \"" + graph_.blobs[graph_.output_blob].name +
                        "\" is not produced by any layer");
    }

    status = xnn_create_runtime_v2(subgraph_.get(), engine_->threadpool_, 0, &engine_->runtime_);
    if (status != xnn_status_success) {
      engine_->runtime_ = nullptr;
      return xnn_failure("XNNPACK backend", "xnn_create_runtime_v2 (operator creation)", status);
    }
    subgraph_.reset();  // the runtime is independent of the subgraph

    const Shape& in_shape = graph_.blobs[graph_.input_blob].shape;
    const Shape& out_shape = graph_.blobs[graph_.output_blob].shape;
    engine_->input_elements_ = static_cast<size_t>(in_shape.elements());
    engine_->output_elements_ = static_cast<size_t>(out_shape.elements());
    const size_t slack = XNN_EXTRA_BYTES / sizeof(float) + 1;
    engine_->input_.assign(engine_->input_elements_ + slack, 0.f);
    engine_->staging_.assign(engine_->output_elements_ + slack, 0.f);
    if (out.permuted) {
      const Shape& s = out.source;
      engine_->output_.assign(engine_->output_elements_, 0.f);
      engine_->output_order_.resize(engine_->output_elements_);
      for (int h = 0; h < s.h; ++h) {
        for (int w = 0; w < s.w; ++w) {
          for (int c = 0; c < s.c; ++c) {
            size_t hwc = (static_cast<size_t>(h) * s.w + w) * s.c + c;
            engine_->output_order_[hwc] = (static_cast<size_t>(c) * s.h + h) * s.w + w;
          }
        }
      }
    }

    xnn_external_value externals[2] = {{kInputExternalId, engine_->input_.data()},
                                       {kOutputExternalId, engine_->staging_.data()}};
    status = xnn_setup_runtime(engine_->runtime_, 2, externals);
    if (status != xnn_status_success) {
      return xnn_failure("XNNPACK backend", "xnn_setup_runtime", status);
    }
    return Status::Ok();
  }

 private:
  struct ActPlan {
    float min = -kInf, max = kInf;
    Activation post = Activation::kNone;  // kHardSwish or kSigmoid: a separate node
    bool clamps() const { return min > -kInf || max < kInf; }
  };

  static ActPlan plan_activation(const Layer& layer) {
    ActPlan plan;
    switch (layer.act) {
      case Activation::kNone: break;
      case Activation::kRelu: plan.min = 0.f; break;
      case Activation::kRelu6: plan.min = 0.f; plan.max = 6.f; break;
      case Activation::kClip: plan.min = layer.clip_min; plan.max = layer.clip_max; break;
      case Activation::kHardSwish:
      case Activation::kSigmoid: plan.post = layer.act; break;
    }
    return plan;
  }

  static std::vector<size_t> nhwc_dims(const Shape& s) {
    return {1, static_cast<size_t>(s.h), static_cast<size_t>(s.w), static_cast<size_t>(s.c)};
  }

  Status check_arity(const Layer& layer) const {
    size_t want_in = 1;
    switch (layer.type) {
      case LayerType::kInput: want_in = 0; break;
      case LayerType::kAdd:
      case LayerType::kMul: want_in = 2; break;
      case LayerType::kConcat: want_in = layer.inputs.empty() ? 1 : layer.inputs.size(); break;
      default: break;
    }
    if (layer.inputs.size() != want_in || layer.outputs.size() != 1) {
      return Status(StatusCode::kInvalidModel,
                    layer_ref(layer) + ": " + layer_type_name(layer.type) + " has " +
                        std::to_string(layer.inputs.size()) + " inputs and " +
                        std::to_string(layer.outputs.size()) + " outputs");
    }
    const int blob_count = static_cast<int>(graph_.blobs.size());
    for (int b : layer.inputs) {
      if (b < 0 || b >= blob_count || values_[b].id == XNN_INVALID_VALUE_ID) {
        return Status(StatusCode::kInvalidModel,
                      layer_ref(layer) + ": input blob " + std::to_string(b) +
                          " is not produced by an earlier layer");
      }
    }
    int out = layer.outputs[0];
    if (out < 0 || out >= blob_count || values_[out].id != XNN_INVALID_VALUE_ID) {
      return Status(StatusCode::kInvalidModel,
                    layer_ref(layer) + ": output blob " + std::to_string(out) +
                        " is out of range or produced twice");
    }
    return Status::Ok();
  }

  Result<uint32_t> internal_value(const Layer& layer, const std::vector<size_t>& dims) {
    uint32_t id = XNN_INVALID_VALUE_ID;
    xnn_status status = xnn_define_tensor_value(subgraph_.get(), xnn_datatype_fp32, dims.size(),
                                                dims.data(), nullptr, XNN_INVALID_VALUE_ID, 0, &id);
    if (status != xnn_status_success) {
      return xnn_failure(layer_ref(layer), "xnn_define_tensor_value", status);
    }
    return id;
  }

  Result<uint32_t> static_value(const Layer& layer, const std::vector<size_t>& dims,
                                std::vector<float> data) {
    engine_->static_data_.push_back(std::move(data));
    uint32_t id = XNN_INVALID_VALUE_ID;
    xnn_status status = xnn_define_tensor_value(
        subgraph_.get(), xnn_datatype_fp32, dims.size(), dims.data(),
        engine_->static_data_.back().data(), XNN_INVALID_VALUE_ID, 0, &id);
    if (status != xnn_status_success) {
      return xnn_failure(layer_ref(layer), "xnn_define_tensor_value (weights)", status);
    }
    return id;
  }

  // Defines the value of a layer's output blob: the external output for the graph output,
  // an internal value otherwise.
  Status define_blob(const Layer& layer, int blob, const std::vector<size_t>& dims) {
    const bool is_output = blob == graph_.output_blob;
    uint32_t id = XNN_INVALID_VALUE_ID;
    xnn_status status = xnn_define_tensor_value(
        subgraph_.get(), xnn_datatype_fp32, dims.size(), dims.data(), nullptr,
        is_output ? kOutputExternalId : XNN_INVALID_VALUE_ID,
        is_output ? XNN_VALUE_FLAG_EXTERNAL_OUTPUT : 0, &id);
    if (status != xnn_status_success) {
      return xnn_failure(layer_ref(layer), "xnn_define_tensor_value", status);
    }
    values_[blob].id = id;
    return Status::Ok();
  }

  Status define_blob(const Layer& layer, int blob) {
    return define_blob(layer, blob, nhwc_dims(graph_.blobs[blob].shape));
  }

  // Weight tensor `index` must exist and hold `count` floats.
  Result<const WeightTensor*> weight(const Layer& layer, int index, int64_t count,
                                     const char* role) const {
    if (index < 0 || index >= static_cast<int>(graph_.tensors.size())) {
      return Status(StatusCode::kInvalidModel,
                    layer_ref(layer) + ": " + role + " tensor index " + std::to_string(index) +
                        " is out of range");
    }
    const WeightTensor& t = graph_.tensors[index];
    if (static_cast<int64_t>(t.data.size()) != count) {
      return Status(StatusCode::kInvalidModel,
                    layer_ref(layer) + ": " + role + " tensor \"" + t.name + "\" has " +
                        std::to_string(t.data.size()) + " values, the layer needs " +
                        std::to_string(count));
    }
    return &t;
  }

  Result<uint32_t> bias_value(const Layer& layer, int n) {
    std::vector<float> bias(static_cast<size_t>(n), 0.f);
    if (layer.bias >= 0) {
      Result<const WeightTensor*> b = weight(layer, layer.bias, n, "bias");
      if (!b.ok()) return b.status();
      bias = b.value()->data;
    }
    return static_value(layer, {static_cast<size_t>(n)}, std::move(bias));
  }

  // Defines a node writing the layer's output blob (already defined) with the layer's
  // activation: clamps are fused when the node takes output_min/max, otherwise (and for
  // hardswish/sigmoid) the node writes a temporary and a second node applies the activation.
  template <typename DefineNode>
  Status emit(const Layer& layer, const char* op_name, bool fuses_clamp, DefineNode define_node) {
    const int out_blob = layer.outputs[0];
    const uint32_t out_id = values_[out_blob].id;
    const ActPlan plan = plan_activation(layer);
    const bool separate_clamp = plan.clamps() && !fuses_clamp;
    const bool need_tmp = plan.post != Activation::kNone || separate_clamp;
    uint32_t target = out_id;
    if (need_tmp) {
      Result<uint32_t> tmp = internal_value(layer, nhwc_dims(graph_.blobs[out_blob].shape));
      if (!tmp.ok()) return tmp.status();
      target = tmp.value();
    }
    xnn_status status = define_node(target, fuses_clamp ? plan.min : -kInf,
                                    fuses_clamp ? plan.max : kInf);
    if (status != xnn_status_success) return xnn_failure(layer_ref(layer), op_name, status);
    if (!need_tmp) return Status::Ok();
    if (separate_clamp) {
      status = xnn_define_clamp(subgraph_.get(), plan.min, plan.max, target, out_id, 0);
      if (status != xnn_status_success) {
        return xnn_failure(layer_ref(layer), "xnn_define_clamp", status);
      }
    } else if (plan.post == Activation::kHardSwish) {
      status = xnn_define_hardswish(subgraph_.get(), target, out_id, 0);
      if (status != xnn_status_success) {
        return xnn_failure(layer_ref(layer), "xnn_define_hardswish", status);
      }
    } else {
      status = xnn_define_sigmoid(subgraph_.get(), target, out_id, 0);
      if (status != xnn_status_success) {
        return xnn_failure(layer_ref(layer), "xnn_define_sigmoid", status);
      }
    }
    return Status::Ok();
  }

  // Output blob holds the same data as input blob `in`: shares its value, or copies it when
  // the output is the graph output (which must be its own external value).
  Status alias_or_copy(const Layer& layer, int in) {
    const int out = layer.outputs[0];
    if (out != graph_.output_blob) {
      values_[out] = values_[in];
      return Status::Ok();
    }
    std::vector<size_t> dims = nhwc_dims(graph_.blobs[out].shape);
    ANOMALENS_RETURN_IF_ERROR(define_blob(layer, out, dims));
    values_[out].permuted = values_[in].permuted;
    values_[out].source = values_[in].source;
    xnn_status status = xnn_define_static_reshape(subgraph_.get(), dims.size(), dims.data(),
                                                  values_[in].id, values_[out].id, 0);
    if (status != xnn_status_success) {
      return xnn_failure(layer_ref(layer), "xnn_define_static_reshape (copy)", status);
    }
    return Status::Ok();
  }

  // XNNPACK derives output sizes itself with unsigned arithmetic and would run off its
  // buffers if a window did not fit, so the blob shapes are checked against the formula.
  Status check_window(const Layer& layer, int dilation_h, int dilation_w) const {
    const Shape& is = graph_.blobs[layer.inputs[0]].shape;
    const Shape& os = graph_.blobs[layer.outputs[0]].shape;
    auto expected = [](int in, int pa, int pb, int d, int k, int s) -> int64_t {
      const int64_t span = int64_t{in} + pa + pb - int64_t{d} * (k - 1) - 1;
      return span < 0 || s < 1 ? -1 : span / s + 1;
    };
    const int64_t oh = expected(is.h, layer.pad_top, layer.pad_bottom, dilation_h,
                                layer.kernel_h, layer.stride_h);
    const int64_t ow = expected(is.w, layer.pad_left, layer.pad_right, dilation_w,
                                layer.kernel_w, layer.stride_w);
    if (layer.kernel_h < 1 || layer.kernel_w < 1 || dilation_h < 1 || dilation_w < 1 ||
        layer.pad_top < 0 || layer.pad_left < 0 || layer.pad_bottom < 0 || layer.pad_right < 0 ||
        oh != os.h || ow != os.w) {
      return Status(StatusCode::kInvalidModel,
                    layer_ref(layer) + ": output " + std::to_string(os.h) + "x" +
                        std::to_string(os.w) + " does not follow from input " +
                        std::to_string(is.h) + "x" + std::to_string(is.w) +
                        ", kernel, stride, dilation and padding (expected " +
                        std::to_string(oh) + "x" + std::to_string(ow) + ")");
    }
    return Status::Ok();
  }

  // XNNPACK checks few shapes when nodes are defined and sizes copies from its inputs, so a
  // blob whose declared shape disagrees with the layer would be over- or under-written.
  Status expect_shape(const Layer& layer, int blob, const Shape& want) const {
    const Shape& got = graph_.blobs[blob].shape;
    if (got == want) return Status::Ok();
    auto str = [](const Shape& s) {
      return "(" + std::to_string(s.c) + "," + std::to_string(s.h) + "," + std::to_string(s.w) + ")";
    };
    return Status(StatusCode::kInvalidModel,
                  layer_ref(layer) + ": blob \"" + graph_.blobs[blob].name + "\" has shape " +
                      str(got) + ", the layer needs " + str(want));
  }

  Status require_plain(const Layer& layer, int blob) const {
    if (!values_[blob].permuted) return Status::Ok();
    return unsupported(layer, "input \"" + graph_.blobs[blob].name +
                                  "\" is a flattened (C,H,W) blob with H*W > 1, which this "
                                  "backend only feeds to Gemm, activations, Softmax or the output");
  }

  Status define_layer(const Layer& layer) {
    switch (layer.type) {
      case LayerType::kInput: return define_input(layer);
      case LayerType::kConv: return define_conv(layer);
      case LayerType::kGemm: return define_gemm(layer);
      case LayerType::kAdd:
      case LayerType::kMul: return define_binary(layer);
      case LayerType::kConcat: return define_concat(layer);
      case LayerType::kMaxPool:
      case LayerType::kAvgPool: return define_pool(layer);
      case LayerType::kGlobalAvgPool: return define_global_avg_pool(layer);
      case LayerType::kFlatten: return define_flatten(layer);
      case LayerType::kActivation: return define_activation(layer);
      case LayerType::kSoftmax: return define_softmax(layer);
    }
    return unsupported(layer, std::string("layer type ") + layer_type_name(layer.type));
  }

  Status define_input(const Layer& layer) {
    const int blob = layer.outputs[0];
    if (blob != graph_.input_blob) {
      return Status(StatusCode::kInvalidModel,
                    layer_ref(layer) + ": Input layer does not produce the graph input blob");
    }
    std::vector<size_t> dims = nhwc_dims(graph_.blobs[blob].shape);
    uint32_t id = XNN_INVALID_VALUE_ID;
    xnn_status status =
        xnn_define_tensor_value(subgraph_.get(), xnn_datatype_fp32, dims.size(), dims.data(),
                                nullptr, kInputExternalId, XNN_VALUE_FLAG_EXTERNAL_INPUT, &id);
    if (status != xnn_status_success) {
      return xnn_failure(layer_ref(layer), "xnn_define_tensor_value (input)", status);
    }
    if (blob != graph_.output_blob) {
      values_[blob].id = id;
      return Status::Ok();
    }
    // A graph that is only its input: the output still needs its own external value.
    uint32_t out = XNN_INVALID_VALUE_ID;
    status = xnn_define_tensor_value(subgraph_.get(), xnn_datatype_fp32, dims.size(), dims.data(),
                                     nullptr, kOutputExternalId, XNN_VALUE_FLAG_EXTERNAL_OUTPUT,
                                     &out);
    if (status == xnn_status_success) {
      status = xnn_define_static_reshape(subgraph_.get(), dims.size(), dims.data(), id, out, 0);
    }
    if (status != xnn_status_success) {
      return xnn_failure(layer_ref(layer), "copy of the input", status);
    }
    values_[blob].id = out;
    return Status::Ok();
  }

  Status define_conv(const Layer& layer) {
    const int in = layer.inputs[0];
    const int out = layer.outputs[0];
    ANOMALENS_RETURN_IF_ERROR(require_plain(layer, in));
    const Shape& is = graph_.blobs[in].shape;
    const int cin = is.c, cout = layer.out_channels, g = layer.groups;
    const int kh = layer.kernel_h, kw = layer.kernel_w;
    if (g < 1 || cin % g != 0 || cout % g != 0 || graph_.blobs[out].shape.c != cout) {
      return Status(StatusCode::kInvalidModel,
                    layer_ref(layer) + ": groups " + std::to_string(g) + " must divide input " +
                        std::to_string(cin) + " and output " + std::to_string(cout) +
                        " channels");
    }
    ANOMALENS_RETURN_IF_ERROR(check_window(layer, layer.dilation_h, layer.dilation_w));
    const int gin = cin / g, gout = cout / g;
    Result<const WeightTensor*> w =
        weight(layer, layer.weight, int64_t{cout} * gin * kh * kw, "weight");
    if (!w.ok()) return w.status();
    const std::vector<float>& oihw = w.value()->data;
    Result<uint32_t> bias = bias_value(layer, cout);
    if (!bias.ok()) return bias.status();

    const bool depthwise = g > 1 && g == cin;
    std::vector<float> packed(oihw.size());
    std::vector<size_t> filter_dims;
    if (depthwise) {
      // [1, kh, kw, cin * multiplier]; output channel o = c * multiplier + m in both layouts.
      for (int o = 0; o < cout; ++o)
        for (int y = 0; y < kh; ++y)
          for (int x = 0; x < kw; ++x)
            packed[(static_cast<size_t>(y) * kw + x) * cout + o] =
                oihw[(static_cast<size_t>(o) * kh + y) * kw + x];
      filter_dims = {1, static_cast<size_t>(kh), static_cast<size_t>(kw),
                     static_cast<size_t>(cout)};
    } else {
      // OIHW -> OHWI, [groups * group_output_channels, kh, kw, group_input_channels].
      for (int o = 0; o < cout; ++o)
        for (int i = 0; i < gin; ++i)
          for (int y = 0; y < kh; ++y)
            for (int x = 0; x < kw; ++x)
              packed[((static_cast<size_t>(o) * kh + y) * kw + x) * gin + i] =
                  oihw[((static_cast<size_t>(o) * gin + i) * kh + y) * kw + x];
      filter_dims = {static_cast<size_t>(cout), static_cast<size_t>(kh),
                     static_cast<size_t>(kw), static_cast<size_t>(gin)};
    }
    Result<uint32_t> filter = static_value(layer, filter_dims, std::move(packed));
    if (!filter.ok()) return filter.status();
    ANOMALENS_RETURN_IF_ERROR(define_blob(layer, out));

    const uint32_t in_id = values_[in].id;
    const uint32_t filter_id = filter.value(), bias_id = bias.value();
    if (depthwise) {
      return emit(layer, "xnn_define_depthwise_convolution_2d", true,
                  [&](uint32_t target, float lo, float hi) {
                    return xnn_define_depthwise_convolution_2d(
                        subgraph_.get(), layer.pad_top, layer.pad_right, layer.pad_bottom,
                        layer.pad_left, kh, kw, layer.stride_h, layer.stride_w,
                        layer.dilation_h, layer.dilation_w, cout / cin, cin, lo, hi, in_id,
                        filter_id, bias_id, target, 0);
                  });
    }
    return emit(layer, "xnn_define_convolution_2d", true,
                [&](uint32_t target, float lo, float hi) {
                  return xnn_define_convolution_2d(
                      subgraph_.get(), layer.pad_top, layer.pad_right, layer.pad_bottom,
                      layer.pad_left, kh, kw, layer.stride_h, layer.stride_w, layer.dilation_h,
                      layer.dilation_w, g, gin, gout, lo, hi, in_id, filter_id, bias_id, target,
                      0);
                });
  }

  Status define_gemm(const Layer& layer) {
    const int in = layer.inputs[0];
    const int out = layer.outputs[0];
    const Shape& is = graph_.blobs[in].shape;
    const int64_t k = is.elements();
    const int n = layer.gemm_outputs;
    ANOMALENS_RETURN_IF_ERROR(expect_shape(layer, out, Shape{n, 1, 1}));
    Result<const WeightTensor*> w = weight(layer, layer.weight, int64_t{n} * k, "weight");
    if (!w.ok()) return w.status();
    Result<uint32_t> bias = bias_value(layer, n);
    if (!bias.ok()) return bias.status();

    // The model's k index runs over the NCHW flattening of `src`; XNNPACK's over its HWC order.
    Shape src{0, 1, 1};
    if (values_[in].permuted) {
      src = values_[in].source;
    } else if (int64_t{is.h} * is.w > 1) {
      src = is;
    }
    const std::vector<float>& nk = w.value()->data;
    std::vector<float> packed;
    if (int64_t{src.h} * src.w > 1) {
      packed.resize(nk.size());
      const size_t hw = static_cast<size_t>(src.h) * src.w;
      for (int j = 0; j < n; ++j) {
        const float* row = nk.data() + static_cast<size_t>(j) * k;
        float* dst = packed.data() + static_cast<size_t>(j) * k;
        for (int c = 0; c < src.c; ++c)
          for (size_t p = 0; p < hw; ++p) dst[p * src.c + c] = row[c * hw + p];
      }
    } else {
      packed = nk;
    }
    Result<uint32_t> filter = static_value(
        layer, {static_cast<size_t>(n), static_cast<size_t>(k)}, std::move(packed));
    if (!filter.ok()) return filter.status();

    uint32_t in_id = values_[in].id;
    const std::vector<size_t> row_dims = {1, 1, 1, static_cast<size_t>(k)};
    if (int64_t{is.h} * is.w > 1) {
      Result<uint32_t> flat = internal_value(layer, row_dims);
      if (!flat.ok()) return flat.status();
      xnn_status status = xnn_define_static_reshape(subgraph_.get(), row_dims.size(),
                                                    row_dims.data(), in_id, flat.value(), 0);
      if (status != xnn_status_success) {
        return xnn_failure(layer_ref(layer), "xnn_define_static_reshape", status);
      }
      in_id = flat.value();
    }
    ANOMALENS_RETURN_IF_ERROR(define_blob(layer, out));
    const uint32_t filter_id = filter.value(), bias_id = bias.value();
    return emit(layer, "xnn_define_fully_connected", true,
                [&](uint32_t target, float lo, float hi) {
                  return xnn_define_fully_connected(subgraph_.get(), lo, hi, in_id, filter_id,
                                                    bias_id, target, 0);
                });
  }

  Status define_binary(const Layer& layer) {
    const int a = layer.inputs[0], b = layer.inputs[1];
    const int out = layer.outputs[0];
    const Shape& as = graph_.blobs[a].shape;
    ANOMALENS_RETURN_IF_ERROR(expect_shape(layer, out, as));
    if (layer.type == LayerType::kAdd || graph_.blobs[b].shape != Shape{as.c, 1, 1}) {
      ANOMALENS_RETURN_IF_ERROR(expect_shape(layer, b, as));
    }
    const BlobValue& va = values_[a];
    const BlobValue& vb = values_[b];
    if (va.permuted != vb.permuted || (va.permuted && va.source != vb.source)) {
      return unsupported(layer, "inputs \"" + graph_.blobs[a].name + "\" and \"" +
                                    graph_.blobs[b].name +
                                    "\" are held in different element orders (one is a "
                                    "flattened (C,H,W) blob with H*W > 1)");
    }
    ANOMALENS_RETURN_IF_ERROR(define_blob(layer, out));
    values_[out].permuted = va.permuted;
    values_[out].source = va.source;
    const uint32_t a_id = va.id, b_id = vb.id;
    // A (C,1,1) second input is [1,1,1,C] and broadcasts over H and W.
    if (layer.type == LayerType::kAdd) {
      return emit(layer, "xnn_define_add2", true, [&](uint32_t target, float lo, float hi) {
        return xnn_define_add2(subgraph_.get(), lo, hi, a_id, b_id, target, 0);
      });
    }
    return emit(layer, "xnn_define_multiply2", true, [&](uint32_t target, float lo, float hi) {
      return xnn_define_multiply2(subgraph_.get(), lo, hi, a_id, b_id, target, 0);
    });
  }

  // This XNNPACK has no concatenate node. Each input is zero-padded along channels to its slot
  // of the output and the padded tensors are summed: x + 0 == x exactly, so the result is a
  // bit-exact concatenation (up to the sign of zero).
  Status define_concat(const Layer& layer) {
    const int out = layer.outputs[0];
    for (int in : layer.inputs) ANOMALENS_RETURN_IF_ERROR(require_plain(layer, in));
    if (layer.inputs.size() == 1) return alias_or_copy(layer, layer.inputs[0]);
    const Shape& os = graph_.blobs[out].shape;
    const std::vector<size_t> out_dims = nhwc_dims(os);
    std::vector<uint32_t> padded;
    int offset = 0;
    for (int in : layer.inputs) {
      const Shape& s = graph_.blobs[in].shape;
      if (s.h != os.h || s.w != os.w || offset + s.c > os.c) {
        return Status(StatusCode::kInvalidModel,
                      layer_ref(layer) + ": input \"" + graph_.blobs[in].name +
                          "\" does not fit the output shape");
      }
      Result<uint32_t> tmp = internal_value(layer, out_dims);
      if (!tmp.ok()) return tmp.status();
      const size_t pre[4] = {0, 0, 0, static_cast<size_t>(offset)};
      const size_t post[4] = {0, 0, 0, static_cast<size_t>(os.c - offset - s.c)};
      xnn_status status = xnn_define_static_constant_pad(subgraph_.get(), pre, post, 0.f,
                                                         values_[in].id, tmp.value(), 0);
      if (status != xnn_status_success) {
        return xnn_failure(layer_ref(layer), "xnn_define_static_constant_pad (concat)", status);
      }
      padded.push_back(tmp.value());
      offset += s.c;
    }
    if (offset != os.c) {
      return Status(StatusCode::kInvalidModel,
                    layer_ref(layer) + ": input channels sum to " + std::to_string(offset) +
                        ", output has " + std::to_string(os.c));
    }
    uint32_t acc = padded[0];
    for (size_t i = 1; i + 1 < padded.size(); ++i) {
      Result<uint32_t> sum = internal_value(layer, out_dims);
      if (!sum.ok()) return sum.status();
      xnn_status status =
          xnn_define_add2(subgraph_.get(), -kInf, kInf, acc, padded[i], sum.value(), 0);
      if (status != xnn_status_success) {
        return xnn_failure(layer_ref(layer), "xnn_define_add2 (concat)", status);
      }
      acc = sum.value();
    }
    ANOMALENS_RETURN_IF_ERROR(define_blob(layer, out));
    const uint32_t last = padded.back();
    return emit(layer, "xnn_define_add2 (concat)", true, [&](uint32_t target, float lo, float hi) {
      return xnn_define_add2(subgraph_.get(), lo, hi, acc, last, target, 0);
    });
  }

  Status define_pool(const Layer& layer) {
    const int in = layer.inputs[0];
    const int out = layer.outputs[0];
    ANOMALENS_RETURN_IF_ERROR(require_plain(layer, in));
    const Shape& is = graph_.blobs[in].shape;
    const bool padded =
        layer.pad_top > 0 || layer.pad_left > 0 || layer.pad_bottom > 0 || layer.pad_right > 0;
    const bool is_max = layer.type == LayerType::kMaxPool;
    ANOMALENS_RETURN_IF_ERROR(check_window(layer, 1, 1));
    if (graph_.blobs[out].shape.c != is.c) {
      return Status(StatusCode::kInvalidModel,
                    layer_ref(layer) + ": pooling changes the channel count");
    }
    uint32_t in_id = values_[in].id;

    if (layer.kernel_h * layer.kernel_w == 1) {
      // XNNPACK rejects 1x1 pooling; without padding it is a strided subsampling, done as a
      // depthwise 1x1 convolution with unit weights (exact). With padding a 1x1 window can lie
      // wholly in the padding, where max pooling has no defined value.
      if (padded && (is_max || !layer.count_pad)) {
        return unsupported(layer, "1x1 pooling window with padding");
      }
      Result<uint32_t> filter = static_value(layer, {1, 1, 1, static_cast<size_t>(is.c)},
                                             std::vector<float>(is.c, 1.f));
      if (!filter.ok()) return filter.status();
      Result<uint32_t> bias =
          static_value(layer, {static_cast<size_t>(is.c)}, std::vector<float>(is.c, 0.f));
      if (!bias.ok()) return bias.status();
      ANOMALENS_RETURN_IF_ERROR(define_blob(layer, out));
      const uint32_t filter_id = filter.value(), bias_id = bias.value();
      return emit(layer, "xnn_define_depthwise_convolution_2d (1x1 pool)", true,
                  [&](uint32_t target, float lo, float hi) {
                    return xnn_define_depthwise_convolution_2d(
                        subgraph_.get(), layer.pad_top, layer.pad_right, layer.pad_bottom,
                        layer.pad_left, 1, 1, layer.stride_h, layer.stride_w, 1, 1, 1, is.c, lo,
                        hi, in_id, filter_id, bias_id, target, 0);
                  });
    }

    uint32_t pad_t = layer.pad_top, pad_l = layer.pad_left;
    uint32_t pad_b = layer.pad_bottom, pad_r = layer.pad_right;
    if (!is_max && layer.count_pad && padded) {
      // XNNPACK's average pooling divides by the number of input pixels in the window
      // (padding excluded). Padding with explicit zeros first makes every window full, so the
      // divisor becomes kh*kw as count_pad=1 requires (windows never pass the padded edge).
      const std::vector<size_t> dims = {1, static_cast<size_t>(is.h) + pad_t + pad_b,
                                        static_cast<size_t>(is.w) + pad_l + pad_r,
                                        static_cast<size_t>(is.c)};
      Result<uint32_t> tmp = internal_value(layer, dims);
      if (!tmp.ok()) return tmp.status();
      const size_t pre[4] = {0, pad_t, pad_l, 0};
      const size_t post[4] = {0, pad_b, pad_r, 0};
      xnn_status status =
          xnn_define_static_constant_pad(subgraph_.get(), pre, post, 0.f, in_id, tmp.value(), 0);
      if (status != xnn_status_success) {
        return xnn_failure(layer_ref(layer), "xnn_define_static_constant_pad (count_pad)",
                           status);
      }
      in_id = tmp.value();
      pad_t = pad_l = pad_b = pad_r = 0;
    }
    ANOMALENS_RETURN_IF_ERROR(define_blob(layer, out));
    if (is_max) {
      return emit(layer, "xnn_define_max_pooling_2d", true,
                  [&](uint32_t target, float lo, float hi) {
                    return xnn_define_max_pooling_2d(
                        subgraph_.get(), pad_t, pad_r, pad_b, pad_l, layer.kernel_h,
                        layer.kernel_w, layer.stride_h, layer.stride_w, 1, 1, lo, hi, in_id,
                        target, 0);
                  });
    }
    return emit(layer, "xnn_define_average_pooling_2d", true,
                [&](uint32_t target, float lo, float hi) {
                  return xnn_define_average_pooling_2d(
                      subgraph_.get(), pad_t, pad_r, pad_b, pad_l, layer.kernel_h,
                      layer.kernel_w, layer.stride_h, layer.stride_w, lo, hi, in_id, target, 0);
                });
  }

  Status define_global_avg_pool(const Layer& layer) {
    const int in = layer.inputs[0];
    const int out = layer.outputs[0];
    const Shape& is = graph_.blobs[in].shape;
    ANOMALENS_RETURN_IF_ERROR(expect_shape(layer, out, Shape{is.c, 1, 1}));
    if (is.h == 1 && is.w == 1 && layer.act == Activation::kNone) {
      return alias_or_copy(layer, in);  // averaging one pixel; keeps a flattened blob's order
    }
    ANOMALENS_RETURN_IF_ERROR(define_blob(layer, out));
    values_[out].permuted = values_[in].permuted;
    values_[out].source = values_[in].source;
    const uint32_t in_id = values_[in].id;
    return emit(layer, "xnn_define_global_average_pooling_2d", true,
                [&](uint32_t target, float lo, float hi) {
                  return xnn_define_global_average_pooling_2d(subgraph_.get(), lo, hi, in_id,
                                                              target, 0);
                });
  }

  Status define_flatten(const Layer& layer) {
    const int in = layer.inputs[0];
    const int out = layer.outputs[0];
    const Shape& is = graph_.blobs[in].shape;
    ANOMALENS_RETURN_IF_ERROR(
        expect_shape(layer, out, Shape{static_cast<int>(is.elements()), 1, 1}));
    if (int64_t{is.h} * is.w == 1) return alias_or_copy(layer, in);
    // HWC data reshaped to a row: the element order stays HWC (see BlobValue).
    ANOMALENS_RETURN_IF_ERROR(define_blob(layer, out));
    values_[out].permuted = true;
    values_[out].source = is;
    std::vector<size_t> dims = nhwc_dims(graph_.blobs[out].shape);
    xnn_status status = xnn_define_static_reshape(subgraph_.get(), dims.size(), dims.data(),
                                                  values_[in].id, values_[out].id, 0);
    if (status != xnn_status_success) {
      return xnn_failure(layer_ref(layer), "xnn_define_static_reshape (flatten)", status);
    }
    return Status::Ok();
  }

  // Elementwise activations and Softmax over a (C,1,1) blob commute with any reordering of the
  // elements, so a flattened blob keeps its order through them.
  Status define_activation(const Layer& layer) {
    const int in = layer.inputs[0];
    const int out = layer.outputs[0];
    ANOMALENS_RETURN_IF_ERROR(expect_shape(layer, out, graph_.blobs[in].shape));
    if (layer.act == Activation::kNone) return alias_or_copy(layer, in);
    ANOMALENS_RETURN_IF_ERROR(define_blob(layer, out));
    values_[out].permuted = values_[in].permuted;
    values_[out].source = values_[in].source;
    const uint32_t in_id = values_[in].id;
    const uint32_t out_id = values_[out].id;
    xnn_status status;
    const char* op_name;
    if (layer.act == Activation::kHardSwish) {
      op_name = "xnn_define_hardswish";
      status = xnn_define_hardswish(subgraph_.get(), in_id, out_id, 0);
    } else if (layer.act == Activation::kSigmoid) {
      op_name = "xnn_define_sigmoid";
      status = xnn_define_sigmoid(subgraph_.get(), in_id, out_id, 0);
    } else {
      const ActPlan plan = plan_activation(layer);
      op_name = "xnn_define_clamp";
      status = xnn_define_clamp(subgraph_.get(), plan.min, plan.max, in_id, out_id, 0);
    }
    if (status != xnn_status_success) return xnn_failure(layer_ref(layer), op_name, status);
    return Status::Ok();
  }

  Status define_softmax(const Layer& layer) {
    const int in = layer.inputs[0];
    const int out = layer.outputs[0];
    ANOMALENS_RETURN_IF_ERROR(expect_shape(layer, out, graph_.blobs[in].shape));
    ANOMALENS_RETURN_IF_ERROR(define_blob(layer, out));
    values_[out].permuted = values_[in].permuted;
    values_[out].source = values_[in].source;
    const uint32_t in_id = values_[in].id;
    // XNNPACK's softmax normalises over the last (channel) dimension of each pixel.
    return emit(layer, "xnn_define_softmax", false, [&](uint32_t target, float, float) {
      return xnn_define_softmax(subgraph_.get(), in_id, target, 0);
    });
  }

  const Graph& graph_;
  XnnpackEngine* engine_;
  std::unique_ptr<xnn_subgraph, SubgraphDeleter> subgraph_;
  std::vector<BlobValue> values_;  // per blob
};

}  // namespace

Result<std::unique_ptr<Engine>> create_xnnpack_engine(const Graph& graph, int threads) {
  ANOMALENS_RETURN_IF_ERROR(xnn_init_once());
  auto engine = std::make_unique<XnnpackEngine>();
  ANOMALENS_RETURN_IF_ERROR(engine->start_threads(threads));
  SubgraphBuilder builder(graph, engine.get());
  ANOMALENS_RETURN_IF_ERROR(builder.build());
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace anomalens

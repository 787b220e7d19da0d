// SPDX-License-Identifier: Apache-2.0
#include "model/model.h"

namespace anomalens {

const char* layer_type_name(LayerType type) {
  switch (type) {
    case LayerType::kInput: return "Input";
    case LayerType::kConv: return "Conv";
    case LayerType::kGemm: return "Gemm";
    case LayerType::kAdd: return "Add";
    case LayerType::kMul: return "Mul";
    case LayerType::kConcat: return "Concat";
    case LayerType::kMaxPool: return "MaxPool";
    case LayerType::kAvgPool: return "AvgPool";
    case LayerType::kGlobalAvgPool: return "GlobalAvgPool";
    case LayerType::kFlatten: return "Flatten";
    case LayerType::kActivation: return "Activation";
    case LayerType::kSoftmax: return "Softmax";
  }
  return "?";
}

const char* activation_name(Activation act) {
  switch (act) {
    case Activation::kNone: return "none";
    case Activation::kRelu: return "relu";
    case Activation::kRelu6: return "relu6";
    case Activation::kClip: return "clip";
    case Activation::kHardSwish: return "hardswish";
    case Activation::kSigmoid: return "sigmoid";
  }
  return "?";
}

int Graph::find_blob(const std::string& name) const {
  for (size_t i = 0; i < blobs.size(); ++i) {
    if (blobs[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int64_t Graph::parameter_count() const {
  int64_t n = 0;
  for (const WeightTensor& t : tensors) n += static_cast<int64_t>(t.data.size());
  return n;
}

int64_t Graph::macs() const {
  int64_t total = 0;
  for (const Layer& layer : layers) {
    if (layer.outputs.empty()) continue;
    const Shape& out = blobs[layer.outputs[0]].shape;
    switch (layer.type) {
      case LayerType::kConv: {
        const Shape& in = blobs[layer.inputs[0]].shape;
        total += out.elements() * (in.c / layer.groups) * layer.kernel_h * layer.kernel_w;
        break;
      }
      case LayerType::kGemm:
        total += int64_t{layer.gemm_outputs} * blobs[layer.inputs[0]].shape.elements();
        break;
      default:
        break;
    }
  }
  return total;
}

const std::string* ModelMeta::find(const std::string& key) const {
  for (const auto& kv : entries) {
    if (kv.first == key) return &kv.second;
  }
  return nullptr;
}

}  // namespace anomalens

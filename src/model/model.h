// SPDX-License-Identifier: Apache-2.0
// The in-memory model: metadata (preprocessing, labels, threshold, provenance) and the graph
// (layers, blobs, weights), exactly as validated from an .alm file (docs/FORMAT.md).
//
//   Result<Model> r = load_model_file("models/default.alm");
//   if (!r.ok()) return r.status();
//   const Model& m = r.value();
//   printf("%s: %dx%d\n", m.meta.name.c_str(), m.meta.input_width, m.meta.input_height);
//
// Everything here is checked at load (sizes, shapes, offsets, counts) before anything is
// allocated from a size read from the file; a loaded Model is internally consistent, so the
// engines need not re-validate it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "util/status.h"

namespace anomalens {

enum class LayerType {
  kInput, kConv, kGemm, kAdd, kMul, kConcat, kMaxPool, kAvgPool, kGlobalAvgPool, kFlatten,
  kActivation, kSoftmax,
};
const char* layer_type_name(LayerType type);

enum class Activation { kNone, kRelu, kRelu6, kClip, kHardSwish, kSigmoid };
const char* activation_name(Activation act);

// Blob shape, batch 1. Values live NHWC (h, w, c) inside the engines; NCHW only at the edges
// (Flatten and Gemm weights follow PyTorch's NCHW flattening order).
struct Shape {
  int c = 0, h = 0, w = 0;
  int64_t elements() const { return int64_t{c} * h * w; }
  bool operator==(const Shape& o) const { return c == o.c && h == o.h && w == o.w; }
  bool operator!=(const Shape& o) const { return !(*this == o); }
};

struct WeightTensor {
  std::string name;
  std::vector<int> dims;
  std::vector<float> data;  // f16 storage is widened at load
};

struct Layer {
  LayerType type = LayerType::kInput;
  std::string name;
  int line = 0;              // 1-based line in the graph section, for messages
  std::vector<int> inputs;   // blob indices
  std::vector<int> outputs;  // blob indices (always exactly one today)

  // Conv and pools. pad order: top, left, bottom, right.
  int out_channels = 0;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int dilation_h = 1, dilation_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int groups = 1;
  bool count_pad = false;  // AvgPool: padding counts in the divisor

  int gemm_outputs = 0;    // Gemm: n

  Activation act = Activation::kNone;
  float clip_min = 0.f, clip_max = 0.f;  // kClip only

  int weight = -1;  // index into Graph::tensors, or -1
  int bias = -1;
};

struct Blob {
  std::string name;
  Shape shape;
  int producer = -1;           // layer index
  std::vector<int> consumers;  // layer indices
};

struct Graph {
  std::vector<Layer> layers;  // topological order: every input is produced by an earlier layer
  std::vector<Blob> blobs;
  std::vector<WeightTensor> tensors;
  int input_blob = -1;
  int output_blob = -1;

  int find_blob(const std::string& name) const;  // -1 if absent
  int64_t parameter_count() const;
  int64_t macs() const;  // multiply-accumulates of one inference
};

enum class ChannelOrder { kRgb, kBgr, kGray };
enum class ResizePolicy { kStretch, kCenterCrop };
// kOneClass: the graph outputs a feature map scored by the "oneclass" section (src/oneclass/).
enum class OutputKind { kSoftmax, kProbabilities, kSigmoid, kOneClass };
// A mirror of the network input (meta test_time_flips): kHorizontal reverses columns,
// kVertical rows, kBoth both (a 180-degree rotation).
enum class Flip { kNone, kHorizontal, kVertical, kBoth };

struct ModelMeta {
  std::string name;
  std::vector<std::string> labels;  // {"normal", "abnormal"}
  int input_width = 0, input_height = 0;
  ChannelOrder channels = ChannelOrder::kRgb;
  float scale = 255.f;
  std::array<float, 3> mean{{0.f, 0.f, 0.f}};
  std::array<float, 3> std{{1.f, 1.f, 1.f}};
  ResizePolicy resize = ResizePolicy::kStretch;
  OutputKind output = OutputKind::kSoftmax;
  float threshold = 0.5f;
  // Supervised models: the score is the mean P(abnormal) over these flips of the input (one
  // network run each); the threshold was chosen for that mean. Default: the input as is.
  std::vector<Flip> test_time_flips{Flip::kNone};
  // Every key=value of the meta section in file order (including the ones parsed above).
  std::vector<std::pair<std::string, std::string>> entries;

  int channel_count() const { return channels == ChannelOrder::kGray ? 1 : 3; }
  const std::string* find(const std::string& key) const;  // nullptr if absent
};

struct Model {
  ModelMeta meta;
  Graph graph;
  // output=oneclass: the raw "oneclass" section, validated at load (parse_oneclass_section);
  // empty for an unfitted feature model (fit it before classifying).
  std::vector<uint8_t> oneclass_section;
};

// Parses and validates an .alm image held in memory. The bytes are not kept.
// Fails with kInvalidModel (malformed, inconsistent) or kUnsupported (unknown layer type or
// activation, newer version), naming the section/line/layer and the rule.
Result<Model> load_model(const uint8_t* data, size_t size);
// Reads a file and calls load_model; fails with kIoError if it cannot be read. Messages
// start with the path.
Result<Model> load_model_file(const std::string& path);

}  // namespace anomalens

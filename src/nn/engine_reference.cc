// SPDX-License-Identifier: Apache-2.0
// Reference engine: one naive loop nest per layer, double accumulation, no packing, no buffer
// reuse. It is the yardstick the other backends are tested against, so clarity beats speed.
#include <cmath>
#include <limits>
#include <vector>

#include "nn/activation.h"
#include "nn/engine.h"
#include "nn/engine_internal.h"

namespace anomalens {
namespace {

class ReferenceEngine : public Engine {
 public:
  explicit ReferenceEngine(const Graph& g) : g_(g), values_(g.blobs.size()) {
    for (size_t b = 0; b < g.blobs.size(); ++b) values_[b].resize(g.blobs[b].shape.elements());
  }

  Status run(const float* input) override {
    std::vector<float>& in = values_[g_.input_blob];
    std::copy(input, input + in.size(), in.begin());
    for (const Layer& l : g_.layers) {
      if (l.type != LayerType::kInput) run_layer(l);
    }
    return Status::Ok();
  }
  const float* output() const override { return values_[g_.output_blob].data(); }
  size_t output_size() const override { return values_[g_.output_blob].size(); }
  Backend backend() const override { return Backend::kReference; }

 private:
  // HWC index.
  static size_t at(const Shape& s, int y, int x, int c) {
    return (static_cast<size_t>(y) * s.w + x) * s.c + c;
  }

  void run_layer(const Layer& l) {
    const Shape& os = g_.blobs[l.outputs[0]].shape;
    std::vector<float>& out = values_[l.outputs[0]];
    const Shape& is = g_.blobs[l.inputs[0]].shape;
    const std::vector<float>& in = values_[l.inputs[0]];
    switch (l.type) {
      case LayerType::kConv: {
        const std::vector<float>& w = g_.tensors[l.weight].data;
        const int cin_g = is.c / l.groups, cout_g = os.c / l.groups;
        for (int oy = 0; oy < os.h; ++oy)
          for (int ox = 0; ox < os.w; ++ox)
            for (int oc = 0; oc < os.c; ++oc) {
              const int g = oc / cout_g;
              double acc = l.bias >= 0 ? g_.tensors[l.bias].data[oc] : 0.0;
              for (int ky = 0; ky < l.kernel_h; ++ky) {
                const int iy = oy * l.stride_h - l.pad_top + ky * l.dilation_h;
                if (iy < 0 || iy >= is.h) continue;
                for (int kx = 0; kx < l.kernel_w; ++kx) {
                  const int ix = ox * l.stride_w - l.pad_left + kx * l.dilation_w;
                  if (ix < 0 || ix >= is.w) continue;
                  for (int ic = 0; ic < cin_g; ++ic) {
                    const float wv = w[((static_cast<size_t>(oc) * cin_g + ic) * l.kernel_h + ky) * l.kernel_w + kx];
                    acc += double{wv} * in[at(is, iy, ix, g * cin_g + ic)];
                  }
                }
              }
              out[at(os, oy, ox, oc)] = apply_activation(l, static_cast<float>(acc));
            }
        break;
      }
      case LayerType::kGemm: {
        const std::vector<float>& w = g_.tensors[l.weight].data;
        const std::vector<float> x = to_chw(is, in);
        for (int n = 0; n < l.gemm_outputs; ++n) {
          double acc = l.bias >= 0 ? g_.tensors[l.bias].data[n] : 0.0;
          for (size_t k = 0; k < x.size(); ++k) acc += double{w[n * x.size() + k]} * x[k];
          out[n] = apply_activation(l, static_cast<float>(acc));
        }
        break;
      }
      case LayerType::kAdd: {
        const std::vector<float>& b = values_[l.inputs[1]];
        for (size_t i = 0; i < out.size(); ++i) out[i] = apply_activation(l, in[i] + b[i]);
        break;
      }
      case LayerType::kMul: {
        const std::vector<float>& b = values_[l.inputs[1]];
        const bool per_channel = b.size() != in.size();
        for (size_t i = 0; i < out.size(); ++i) out[i] = in[i] * b[per_channel ? i % is.c : i];
        break;
      }
      case LayerType::kConcat: {
        int c0 = 0;
        for (int b : l.inputs) {
          const Shape& s = g_.blobs[b].shape;
          for (int y = 0; y < s.h; ++y)
            for (int x = 0; x < s.w; ++x)
              for (int c = 0; c < s.c; ++c) out[at(os, y, x, c0 + c)] = values_[b][at(s, y, x, c)];
          c0 += s.c;
        }
        break;
      }
      case LayerType::kMaxPool:
      case LayerType::kAvgPool: {
        const bool is_max = l.type == LayerType::kMaxPool;
        for (int oy = 0; oy < os.h; ++oy)
          for (int ox = 0; ox < os.w; ++ox)
            for (int c = 0; c < os.c; ++c) {
              double acc = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
              int count = 0;
              for (int ky = 0; ky < l.kernel_h; ++ky)
                for (int kx = 0; kx < l.kernel_w; ++kx) {
                  const int iy = oy * l.stride_h - l.pad_top + ky;
                  const int ix = ox * l.stride_w - l.pad_left + kx;
                  // With count_pad the divisor counts taps inside the padded extent.
                  const bool in_padded = iy >= -l.pad_top && iy < is.h + l.pad_bottom &&
                                         ix >= -l.pad_left && ix < is.w + l.pad_right;
                  if (iy < 0 || iy >= is.h || ix < 0 || ix >= is.w) {
                    if (l.count_pad && in_padded) ++count;
                    continue;
                  }
                  const float v = in[at(is, iy, ix, c)];
                  if (is_max) acc = std::max(acc, double{v});
                  else acc += v;
                  ++count;
                }
              out[at(os, oy, ox, c)] = static_cast<float>(is_max ? acc : acc / count);
            }
        break;
      }
      case LayerType::kGlobalAvgPool: {
        for (int c = 0; c < is.c; ++c) {
          double acc = 0;
          for (int p = 0; p < is.h * is.w; ++p) acc += in[static_cast<size_t>(p) * is.c + c];
          out[c] = static_cast<float>(acc / (is.h * is.w));
        }
        break;
      }
      case LayerType::kFlatten:
        out = to_chw(is, in);
        break;
      case LayerType::kActivation:
        for (size_t i = 0; i < out.size(); ++i) out[i] = apply_activation(l, in[i]);
        break;
      case LayerType::kSoftmax:
        for (int p = 0; p < is.h * is.w; ++p) {
          const float* x = &in[static_cast<size_t>(p) * is.c];
          float* y = &out[static_cast<size_t>(p) * is.c];
          double mx = x[0], sum = 0;
          for (int c = 1; c < is.c; ++c) mx = std::max(mx, double{x[c]});
          for (int c = 0; c < is.c; ++c) sum += std::exp(x[c] - mx);
          for (int c = 0; c < is.c; ++c) y[c] = static_cast<float>(std::exp(x[c] - mx) / sum);
        }
        break;
      case LayerType::kInput:
        break;
    }
  }

  // HWC values in PyTorch's CHW flattening order.
  static std::vector<float> to_chw(const Shape& s, const std::vector<float>& hwc) {
    std::vector<float> chw(hwc.size());
    for (int c = 0; c < s.c; ++c)
      for (int y = 0; y < s.h; ++y)
        for (int x = 0; x < s.w; ++x) chw[(static_cast<size_t>(c) * s.h + y) * s.w + x] = hwc[at(s, y, x, c)];
    return chw;
  }

  const Graph& g_;
  std::vector<std::vector<float>> values_;
};

}  // namespace

Result<std::unique_ptr<Engine>> create_reference_engine(const Graph& graph) {
  return std::unique_ptr<Engine>(new ReferenceEngine(graph));
}

}  // namespace anomalens

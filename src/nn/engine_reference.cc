// SPDX-License-Identifier: Apache-2.0
// Reference engine: one naive loop nest per layer, double accumulation, no packing, no buffer
// reuse. It is the yardstick the other backends are tested against, so clarity beats speed.
//
// Optionally (create_reference_engine(graph, true)) it also carries, next to every value, a
// bound on how far a float32 engine's value may lie from it: a running error analysis in the
// style of Higham's "Accuracy and Stability of Numerical Algorithms". A layer's bound is what its
// inputs' bounds become through it (|w| times them for a convolution, Lipschitz constants for
// activations) plus the rounding a float32 evaluation adds: gamma_n = n*u / (1 - n*u) times the
// sum of |terms| for a sum of n products in any order, FMA or not. Where a float partial sum
// could overflow, or a value is not finite, the bound is +inf: engines may then legitimately
// differ (a float sum overflows to inf where the double sum cancels to 0). Tests compare an
// engine against the reference within these bounds, so an ill-conditioned model (weights of
// 1e38 that cancel) is not mistaken for a kernel bug, and a well-conditioned one is held to a
// tolerance that starts near float precision and grows with depth (worst case: about 1e-6
// after one small layer, 6e-3 at the output of the 25-layer allops fixture).
#include <cmath>
#include <limits>
#include <vector>

#include "nn/activation.h"
#include "nn/engine.h"
#include "nn/engine_internal.h"

namespace anomalens {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kUnit = 0x1p-24;  // float32 unit roundoff
// Largest float, and the smallest normal one: a kernel may flush subnormal results to zero.
constexpr double kFloatMax = std::numeric_limits<float>::max();
constexpr double kFloatMin = std::numeric_limits<float>::min();

// gamma_n: relative bound on the rounding of a float sum of n products, whatever the order.
double gamma(double n) {
  const double nu = n * kUnit;
  return nu < 0.5 ? nu / (1 - nu) : kInf;
}

// Bound on the rounding error of a float sum of n products whose |terms| sum to abs_sum,
// inputs off by prop (= sum |w| * input bound); +inf where a partial sum could overflow.
double sum_bound(double n, double abs_sum, double prop, double result) {
  if (!(abs_sum + prop < kFloatMax)) return kInf;
  return prop + gamma(n + 1) * (abs_sum + prop) + kUnit * std::fabs(result) + n * kFloatMin;
}

// How far an activation's float output can lie from the reference's when its argument lies
// within e of the reference's; y is the reference's output. Clamps are exact and 1-Lipschitz;
// sigmoid's slope is at most 1/4 and hardswish's 3/2, and their kernels approximate them to
// 1e-6 relative (tests/kernels), counted twice over.
double activation_bound(Activation act, double y, double e) {
  switch (act) {
    case Activation::kNone:
    case Activation::kRelu:
    case Activation::kRelu6:
    case Activation::kClip: return e;
    case Activation::kSigmoid: return 0.25 * e + 2e-6 * (std::fabs(y) + 0.25 * e) + kFloatMin;
    case Activation::kHardSwish: return 1.5 * e + 2e-6 * (std::fabs(y) + 1.5 * e) + 2e-7;
  }
  return kInf;
}

class ReferenceEngine : public Engine {
 public:
  ReferenceEngine(const Graph& g, bool bound_errors)
      : g_(g), values_(g.blobs.size()), bounds_(bound_errors ? g.blobs.size() : 0) {
    for (size_t b = 0; b < g.blobs.size(); ++b) values_[b].resize(g.blobs[b].shape.elements());
    for (size_t b = 0; b < bounds_.size(); ++b) bounds_[b].resize(g.blobs[b].shape.elements());
  }

  Status run(const float* input) override {
    std::vector<float>& in = values_[g_.input_blob];
    std::copy(input, input + in.size(), in.begin());
    if (tracking()) {
      for (size_t i = 0; i < in.size(); ++i) bounds_[g_.input_blob][i] = std::isfinite(in[i]) ? 0.0 : kInf;
    }
    for (const Layer& l : g_.layers) {
      if (l.type == LayerType::kInput) continue;
      run_layer(l);
      if (tracking()) bound_layer(l);
    }
    return Status::Ok();
  }
  const float* output() const override { return values_[g_.output_blob].data(); }
  size_t output_size() const override { return values_[g_.output_blob].size(); }
  Backend backend() const override { return Backend::kReference; }
  const double* error_bounds() const { return tracking() ? bounds_[g_.output_blob].data() : nullptr; }

 private:
  bool tracking() const { return !bounds_.empty(); }

  // HWC index.
  static size_t at(const Shape& s, int y, int x, int c) {
    return (static_cast<size_t>(y) * s.w + x) * s.c + c;
  }

  // Calls f(input index, weight index) for every term of conv output (oy, ox, oc).
  template <class F>
  void for_each_conv_term(const Layer& l, const Shape& is, const Shape& os, int oy, int ox, int oc,
                          const F& f) const {
    const int cin_g = is.c / l.groups, cout_g = os.c / l.groups;
    const int g = oc / cout_g;
    for (int ky = 0; ky < l.kernel_h; ++ky) {
      const int iy = oy * l.stride_h - l.pad_top + ky * l.dilation_h;
      if (iy < 0 || iy >= is.h) continue;
      for (int kx = 0; kx < l.kernel_w; ++kx) {
        const int ix = ox * l.stride_w - l.pad_left + kx * l.dilation_w;
        if (ix < 0 || ix >= is.w) continue;
        for (int ic = 0; ic < cin_g; ++ic) {
          f(at(is, iy, ix, g * cin_g + ic), ((static_cast<size_t>(oc) * cin_g + ic) * l.kernel_h + ky) * l.kernel_w + kx);
        }
      }
    }
  }

  // Calls f(input index) for every tap of pool output (oy, ox, c) inside the input; returns
  // the divisor (with count_pad, taps in the padding count too).
  template <class F>
  static int for_each_pool_tap(const Layer& l, const Shape& is, int oy, int ox, int c, const F& f) {
    int count = 0;
    for (int ky = 0; ky < l.kernel_h; ++ky)
      for (int kx = 0; kx < l.kernel_w; ++kx) {
        const int iy = oy * l.stride_h - l.pad_top + ky;
        const int ix = ox * l.stride_w - l.pad_left + kx;
        const bool in_padded = iy >= -l.pad_top && iy < is.h + l.pad_bottom && ix >= -l.pad_left &&
                               ix < is.w + l.pad_right;
        if (iy < 0 || iy >= is.h || ix < 0 || ix >= is.w) {
          if (l.count_pad && in_padded) ++count;
          continue;
        }
        f(at(is, iy, ix, c));
        ++count;
      }
    return count;
  }

  void run_layer(const Layer& l) {
    const Shape& os = g_.blobs[l.outputs[0]].shape;
    std::vector<float>& out = values_[l.outputs[0]];
    const Shape& is = g_.blobs[l.inputs[0]].shape;
    const std::vector<float>& in = values_[l.inputs[0]];
    switch (l.type) {
      case LayerType::kConv: {
        const std::vector<float>& w = g_.tensors[l.weight].data;
        for (int oy = 0; oy < os.h; ++oy)
          for (int ox = 0; ox < os.w; ++ox)
            for (int oc = 0; oc < os.c; ++oc) {
              double acc = l.bias >= 0 ? g_.tensors[l.bias].data[oc] : 0.0;
              for_each_conv_term(l, is, os, oy, ox, oc, [&](size_t xi, size_t wi) { acc += double{w[wi]} * in[xi]; });
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
      case LayerType::kConcat:
        concat(l, values_);
        break;
      case LayerType::kMaxPool:
      case LayerType::kAvgPool: {
        const bool is_max = l.type == LayerType::kMaxPool;
        for (int oy = 0; oy < os.h; ++oy)
          for (int ox = 0; ox < os.w; ++ox)
            for (int c = 0; c < os.c; ++c) {
              double acc = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
              const int count = for_each_pool_tap(l, is, oy, ox, c, [&](size_t xi) {
                if (is_max) acc = std::max(acc, double{in[xi]});
                else acc += in[xi];
              });
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

  // The error bounds of layer l's output, from its inputs' values and bounds and its output's
  // values (run_layer has run). Same loops as run_layer.
  void bound_layer(const Layer& l) {
    const Shape& os = g_.blobs[l.outputs[0]].shape;
    const std::vector<float>& y = values_[l.outputs[0]];
    std::vector<double>& ey = bounds_[l.outputs[0]];
    const Shape& is = g_.blobs[l.inputs[0]].shape;
    const std::vector<float>& x = values_[l.inputs[0]];
    const std::vector<double>& ex = bounds_[l.inputs[0]];
    // A non-finite reference value: engines may differ arbitrarily from here on.
    // A NaN bound (0 * an infinite bound) means the same: a float engine may compute 0 * inf.
    // So does a bound that reaches past the largest float: the engine's value may be inf.
    auto finish = [&](size_t i, double bound) {
      ey[i] = std::fabs(double{y[i]}) + bound < kFloatMax ? bound : kInf;
    };
    switch (l.type) {
      case LayerType::kConv: {
        const std::vector<float>& w = g_.tensors[l.weight].data;
        for (int oy = 0; oy < os.h; ++oy)
          for (int ox = 0; ox < os.w; ++ox)
            for (int oc = 0; oc < os.c; ++oc) {
              const double bias = l.bias >= 0 ? g_.tensors[l.bias].data[oc] : 0.0;
              double acc = bias, abs_sum = std::fabs(bias), prop = 0, n = 0;
              for_each_conv_term(l, is, os, oy, ox, oc, [&](size_t xi, size_t wi) {
                acc += double{w[wi]} * x[xi];
                abs_sum += std::fabs(double{w[wi]} * x[xi]);
                prop += std::fabs(double{w[wi]}) * ex[xi];
                n += 1;
              });
              const size_t i = at(os, oy, ox, oc);
              finish(i, activation_bound(l.act, y[i], sum_bound(n, abs_sum, prop, acc)));
            }
        break;
      }
      case LayerType::kGemm: {
        const std::vector<float>& w = g_.tensors[l.weight].data;
        const std::vector<float> xc = to_chw(is, x);
        const std::vector<double> exc = to_chw(is, ex);
        for (int o = 0; o < l.gemm_outputs; ++o) {
          const double bias = l.bias >= 0 ? g_.tensors[l.bias].data[o] : 0.0;
          double acc = bias, abs_sum = std::fabs(bias), prop = 0;
          for (size_t k = 0; k < xc.size(); ++k) {
            const double wk = w[o * xc.size() + k];
            acc += wk * xc[k];
            abs_sum += std::fabs(wk * xc[k]);
            prop += std::fabs(wk) * exc[k];
          }
          finish(o, activation_bound(l.act, y[o], sum_bound(static_cast<double>(xc.size()), abs_sum, prop, acc)));
        }
        break;
      }
      case LayerType::kAdd: {
        // Both engines round a + b once; inputs off by ea and eb.
        const std::vector<float>& b = values_[l.inputs[1]];
        const std::vector<double>& eb = bounds_[l.inputs[1]];
        for (size_t i = 0; i < y.size(); ++i) {
          const double e = ex[i] + eb[i];
          const double mag = std::fabs(double{x[i]}) + std::fabs(double{b[i]}) + e;
          finish(i, activation_bound(l.act, y[i], e + 2 * kUnit * mag + kFloatMin));
        }
        break;
      }
      case LayerType::kMul: {
        const std::vector<float>& b = values_[l.inputs[1]];
        const std::vector<double>& eb = bounds_[l.inputs[1]];
        const bool per_channel = b.size() != x.size();
        for (size_t i = 0; i < y.size(); ++i) {
          const size_t j = per_channel ? i % is.c : i;
          const double ax = std::fabs(double{x[i]}), ab = std::fabs(double{b[j]});
          const double e = ax * eb[j] + ab * ex[i] + ex[i] * eb[j];
          finish(i, e + 2 * kUnit * (ax + ex[i]) * (ab + eb[j]) + kFloatMin);
        }
        break;
      }
      case LayerType::kConcat:
        concat(l, bounds_);
        break;
      case LayerType::kMaxPool:
      case LayerType::kAvgPool: {
        // max is 1-Lipschitz in each tap; an average adds the rounding of its sum and divide.
        const bool is_max = l.type == LayerType::kMaxPool;
        for (int oy = 0; oy < os.h; ++oy)
          for (int ox = 0; ox < os.w; ++ox)
            for (int c = 0; c < os.c; ++c) {
              double worst = 0, prop = 0, abs_sum = 0;
              const int count = for_each_pool_tap(l, is, oy, ox, c, [&](size_t xi) {
                worst = std::max(worst, ex[xi]);
                prop += ex[xi];
                abs_sum += std::fabs(double{x[xi]});
              });
              const size_t i = at(os, oy, ox, c);
              if (is_max) {
                finish(i, worst);
              } else {
                finish(i, (sum_bound(count, abs_sum, prop, 0) + kUnit * abs_sum) / count + kUnit * std::fabs(y[i]));
              }
            }
        break;
      }
      case LayerType::kGlobalAvgPool: {
        const int pixels = is.h * is.w;
        for (int c = 0; c < is.c; ++c) {
          double prop = 0, abs_sum = 0;
          for (int p = 0; p < pixels; ++p) {
            prop += ex[static_cast<size_t>(p) * is.c + c];
            abs_sum += std::fabs(double{x[static_cast<size_t>(p) * is.c + c]});
          }
          finish(c, (sum_bound(pixels, abs_sum, prop, 0) + kUnit * abs_sum) / pixels + kUnit * std::fabs(y[c]));
        }
        break;
      }
      case LayerType::kFlatten:
        ey = to_chw(is, ex);
        break;
      case LayerType::kActivation:
        for (size_t i = 0; i < y.size(); ++i) finish(i, activation_bound(l.act, y[i], ex[i]));
        break;
      case LayerType::kSoftmax:
        // Softmax is 1/2-Lipschitz in the max norm (each row of its Jacobian sums to at most
        // 2 y (1 - y)); a float evaluation (exp, a sum of C terms, a divide) adds at most about
        // (1.4 C + 6) u to an output in [0, 1]. With finite inputs a float softmax stays in
        // [0, 1], so 1 bounds it; an input that may be inf may make it NaN (inf - inf).
        for (int p = 0; p < is.h * is.w; ++p) {
          double worst = 0;
          for (int c = 0; c < is.c; ++c) worst = std::max(worst, ex[static_cast<size_t>(p) * is.c + c]);
          for (int c = 0; c < is.c; ++c) {
            const size_t i = static_cast<size_t>(p) * is.c + c;
            finish(i, worst == kInf ? kInf : std::min(1.0, 0.5 * worst + (2.0 * is.c + 10) * kUnit));
          }
        }
        break;
      case LayerType::kInput:
        break;
    }
  }

  // Concatenates l's inputs along channels, from `blobs` (values or bounds).
  template <class T>
  void concat(const Layer& l, std::vector<std::vector<T>>& blobs) const {
    const Shape& os = g_.blobs[l.outputs[0]].shape;
    std::vector<T>& out = blobs[l.outputs[0]];
    int c0 = 0;
    for (int b : l.inputs) {
      const Shape& s = g_.blobs[b].shape;
      for (int y = 0; y < s.h; ++y)
        for (int x = 0; x < s.w; ++x)
          for (int c = 0; c < s.c; ++c) out[at(os, y, x, c0 + c)] = blobs[b][at(s, y, x, c)];
      c0 += s.c;
    }
  }

  // HWC values in PyTorch's CHW flattening order.
  template <class T>
  static std::vector<T> to_chw(const Shape& s, const std::vector<T>& hwc) {
    std::vector<T> chw(hwc.size());
    for (int c = 0; c < s.c; ++c)
      for (int y = 0; y < s.h; ++y)
        for (int x = 0; x < s.w; ++x) chw[(static_cast<size_t>(c) * s.h + y) * s.w + x] = hwc[at(s, y, x, c)];
    return chw;
  }

  const Graph& g_;
  std::vector<std::vector<float>> values_;
  std::vector<std::vector<double>> bounds_;  // empty unless bounding errors
};

}  // namespace

Result<std::unique_ptr<Engine>> create_reference_engine(const Graph& graph, bool bound_errors) {
  return std::unique_ptr<Engine>(new ReferenceEngine(graph, bound_errors));
}

const double* reference_error_bounds(const Engine& engine) {
  if (engine.backend() != Backend::kReference) return nullptr;
  return static_cast<const ReferenceEngine&>(engine).error_bounds();
}

}  // namespace anomalens

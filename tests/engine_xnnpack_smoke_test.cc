// SPDX-License-Identifier: Apache-2.0
// Smoke tests of the XNNPACK engine against a naive NCHW reference written here: small
// hand-built graphs with random weights (fixed seeds) covering every layer type, the layout
// conversions (OIHW -> OHWI, depthwise, Gemm columns NCHW -> HWC) and the error paths.
//
// Standalone build, from the repository root (G=/usr/src/googletest/googletest):
//   g++ -std=c++17 -O2 -Isrc -I$G/include -I$G tests/engine_xnnpack_smoke_test.cc
//       src/nn/engine_xnnpack.cc src/model/model.cc src/util/status.cc
//       $G/src/gtest-all.cc $G/src/gtest_main.cc -lXNNPACK -lpthreadpool -lpthread
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "model/model.h"
#include "nn/engine.h"
#include "nn/engine_xnnpack.h"


namespace anomalens {
namespace {

// ---- Graph construction -------------------------------------------------------------------

struct ConvParams {
  int cout = 1, kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int pt = 0, pl = 0, pb = 0, pr = 0;
  int groups = 1;
  bool bias = true;
  Activation act = Activation::kNone;
  float clip_min = 0.f, clip_max = 0.f;
};

struct PoolParams {
  int kh = 2, kw = 2, sh = 2, sw = 2;
  int pt = 0, pl = 0, pb = 0, pr = 0;
  bool count_pad = false;
};

int out_dim(int in, int pa, int pb, int d, int k, int s) {
  return (in + pa + pb - d * (k - 1) - 1) / s + 1;
}

class GraphMaker {
 public:
  explicit GraphMaker(uint32_t seed) : rng_(seed) {}

  int input(int c, int h, int w) {
    Layer l;
    l.type = LayerType::kInput;
    int b = blob(Shape{c, h, w});
    g_.input_blob = b;
    return add(std::move(l), {}, b);
  }

  int conv(int in, const ConvParams& p) {
    const Shape& s = g_.blobs[in].shape;
    Layer l;
    l.type = LayerType::kConv;
    l.out_channels = p.cout;
    l.kernel_h = p.kh, l.kernel_w = p.kw, l.stride_h = p.sh, l.stride_w = p.sw;
    l.dilation_h = p.dh, l.dilation_w = p.dw;
    l.pad_top = p.pt, l.pad_left = p.pl, l.pad_bottom = p.pb, l.pad_right = p.pr;
    l.groups = p.groups;
    l.act = p.act, l.clip_min = p.clip_min, l.clip_max = p.clip_max;
    l.weight = tensor({p.cout, s.c / p.groups, p.kh, p.kw});
    if (p.bias) l.bias = tensor({p.cout});
    Shape o{p.cout, out_dim(s.h, p.pt, p.pb, p.dh, p.kh, p.sh),
            out_dim(s.w, p.pl, p.pr, p.dw, p.kw, p.sw)};
    return add(std::move(l), {in}, blob(o));
  }

  int gemm(int in, int n, Activation act = Activation::kNone, bool bias = true) {
    Layer l;
    l.type = LayerType::kGemm;
    l.gemm_outputs = n;
    l.act = act;
    l.weight = tensor({n, static_cast<int>(g_.blobs[in].shape.elements())});
    if (bias) l.bias = tensor({n});
    return add(std::move(l), {in}, blob(Shape{n, 1, 1}));
  }

  int binary(LayerType type, int a, int b, Activation act = Activation::kNone) {
    Layer l;
    l.type = type;
    l.act = act;
    return add(std::move(l), {a, b}, blob(g_.blobs[a].shape));
  }

  int concat(const std::vector<int>& ins) {
    Layer l;
    l.type = LayerType::kConcat;
    Shape o = g_.blobs[ins[0]].shape;
    o.c = 0;
    for (int in : ins) o.c += g_.blobs[in].shape.c;
    return add(std::move(l), ins, blob(o));
  }

  int pool(LayerType type, int in, const PoolParams& p) {
    const Shape& s = g_.blobs[in].shape;
    Layer l;
    l.type = type;
    l.kernel_h = p.kh, l.kernel_w = p.kw, l.stride_h = p.sh, l.stride_w = p.sw;
    l.pad_top = p.pt, l.pad_left = p.pl, l.pad_bottom = p.pb, l.pad_right = p.pr;
    l.count_pad = p.count_pad;
    Shape o{s.c, out_dim(s.h, p.pt, p.pb, 1, p.kh, p.sh), out_dim(s.w, p.pl, p.pr, 1, p.kw, p.sw)};
    return add(std::move(l), {in}, blob(o));
  }

  int global_avg_pool(int in) {
    Layer l;
    l.type = LayerType::kGlobalAvgPool;
    return add(std::move(l), {in}, blob(Shape{g_.blobs[in].shape.c, 1, 1}));
  }

  int flatten(int in) {
    Layer l;
    l.type = LayerType::kFlatten;
    return add(std::move(l), {in}, blob(Shape{static_cast<int>(g_.blobs[in].shape.elements()), 1, 1}));
  }

  int activation(int in, Activation act, float lo = 0.f, float hi = 0.f) {
    Layer l;
    l.type = LayerType::kActivation;
    l.act = act;
    l.clip_min = lo, l.clip_max = hi;
    return add(std::move(l), {in}, blob(g_.blobs[in].shape));
  }

  int softmax(int in) {
    Layer l;
    l.type = LayerType::kSoftmax;
    return add(std::move(l), {in}, blob(g_.blobs[in].shape));
  }

  Graph finish(int output) {
    g_.output_blob = output;
    return g_;
  }

  std::vector<float> random_input() {
    std::vector<float> v(static_cast<size_t>(g_.blobs[g_.input_blob].shape.elements()));
    for (float& x : v) x = dist_(rng_) * 2.f;
    return v;
  }

  Graph& graph() { return g_; }

 private:
  int blob(Shape s) {
    Blob b;
    b.name = "b" + std::to_string(g_.blobs.size());
    b.shape = s;
    g_.blobs.push_back(b);
    return static_cast<int>(g_.blobs.size()) - 1;
  }

  int tensor(const std::vector<int>& dims) {
    WeightTensor t;
    t.name = "t" + std::to_string(g_.tensors.size());
    t.dims = dims;
    int64_t n = 1;
    for (int d : dims) n *= d;
    t.data.resize(static_cast<size_t>(n));
    for (float& x : t.data) x = dist_(rng_);
    g_.tensors.push_back(std::move(t));
    return static_cast<int>(g_.tensors.size()) - 1;
  }

  int add(Layer l, std::vector<int> ins, int out) {
    const int index = static_cast<int>(g_.layers.size());
    l.name = std::string(layer_type_name(l.type)) + std::to_string(index);
    l.line = index + 1;
    l.inputs = std::move(ins);
    l.outputs = {out};
    for (int in : l.inputs) g_.blobs[in].consumers.push_back(index);
    g_.blobs[out].producer = index;
    g_.layers.push_back(std::move(l));
    return out;
  }

  Graph g_;
  std::mt19937 rng_;
  std::uniform_real_distribution<float> dist_{-1.f, 1.f};
};

// ---- Naive NCHW reference -----------------------------------------------------------------

float activate(float x, const Layer& l) {
  switch (l.act) {
    case Activation::kNone: return x;
    case Activation::kRelu: return std::max(x, 0.f);
    case Activation::kRelu6: return std::min(std::max(x, 0.f), 6.f);
    case Activation::kClip: return std::min(std::max(x, l.clip_min), l.clip_max);
    case Activation::kHardSwish: return x * std::min(std::max(x + 3.f, 0.f), 6.f) / 6.f;
    case Activation::kSigmoid: return 1.f / (1.f + std::exp(-x));
  }
  return x;
}

// Blobs are CHW vectors; Flatten is then a no-op, which makes the reference independent of
// the engine's HWC bookkeeping.
std::vector<float> reference_run(const Graph& g, const std::vector<float>& input_hwc) {
  std::vector<std::vector<double>> v(g.blobs.size());
  auto at = [](const std::vector<double>& t, const Shape& s, int c, int y, int x) {
    return t[(static_cast<size_t>(c) * s.h + y) * s.w + x];
  };
  for (const Layer& l : g.layers) {
    const int out = l.outputs[0];
    const Shape& os = g.blobs[out].shape;
    std::vector<double>& o = v[out];
    o.assign(static_cast<size_t>(os.elements()), 0.0);
    const Shape* is = l.inputs.empty() ? nullptr : &g.blobs[l.inputs[0]].shape;
    const std::vector<double>* in = l.inputs.empty() ? nullptr : &v[l.inputs[0]];
    switch (l.type) {
      case LayerType::kInput:
        for (int y = 0; y < os.h; ++y)
          for (int x = 0; x < os.w; ++x)
            for (int c = 0; c < os.c; ++c)
              o[(static_cast<size_t>(c) * os.h + y) * os.w + x] =
                  input_hwc[(static_cast<size_t>(y) * os.w + x) * os.c + c];
        break;
      case LayerType::kConv: {
        const int gin = is->c / l.groups, gout = os.c / l.groups;
        const std::vector<float>& w = g.tensors[l.weight].data;
        for (int oc = 0; oc < os.c; ++oc) {
          const int grp = oc / gout;
          for (int oy = 0; oy < os.h; ++oy)
            for (int ox = 0; ox < os.w; ++ox) {
              double acc = l.bias >= 0 ? g.tensors[l.bias].data[oc] : 0.0;
              for (int i = 0; i < gin; ++i)
                for (int ky = 0; ky < l.kernel_h; ++ky)
                  for (int kx = 0; kx < l.kernel_w; ++kx) {
                    const int iy = oy * l.stride_h - l.pad_top + ky * l.dilation_h;
                    const int ix = ox * l.stride_w - l.pad_left + kx * l.dilation_w;
                    if (iy < 0 || iy >= is->h || ix < 0 || ix >= is->w) continue;
                    acc += at(*in, *is, grp * gin + i, iy, ix) *
                           w[((static_cast<size_t>(oc) * gin + i) * l.kernel_h + ky) *
                                 l.kernel_w + kx];
                  }
              o[(static_cast<size_t>(oc) * os.h + oy) * os.w + ox] = acc;
            }
        }
        break;
      }
      case LayerType::kGemm: {
        const size_t k = in->size();
        const std::vector<float>& w = g.tensors[l.weight].data;
        for (int j = 0; j < os.c; ++j) {
          double acc = l.bias >= 0 ? g.tensors[l.bias].data[j] : 0.0;
          for (size_t i = 0; i < k; ++i) acc += w[j * k + i] * (*in)[i];
          o[j] = acc;
        }
        break;
      }
      case LayerType::kAdd:
      case LayerType::kMul: {
        const std::vector<double>& b = v[l.inputs[1]];
        const Shape& bs = g.blobs[l.inputs[1]].shape;
        const size_t hw = static_cast<size_t>(os.h) * os.w;
        for (size_t i = 0; i < o.size(); ++i) {
          const double rhs = bs == os ? b[i] : b[i / hw];
          o[i] = l.type == LayerType::kAdd ? (*in)[i] + rhs : (*in)[i] * rhs;
        }
        break;
      }
      case LayerType::kConcat: {
        size_t pos = 0;
        for (int b : l.inputs)
          for (double x : v[b]) o[pos++] = x;
        break;
      }
      case LayerType::kMaxPool:
      case LayerType::kAvgPool:
        for (int c = 0; c < os.c; ++c)
          for (int oy = 0; oy < os.h; ++oy)
            for (int ox = 0; ox < os.w; ++ox) {
              double best = -INFINITY, sum = 0.0;
              int valid = 0;
              for (int ky = 0; ky < l.kernel_h; ++ky)
                for (int kx = 0; kx < l.kernel_w; ++kx) {
                  const int iy = oy * l.stride_h - l.pad_top + ky;
                  const int ix = ox * l.stride_w - l.pad_left + kx;
                  if (iy < 0 || iy >= is->h || ix < 0 || ix >= is->w) continue;
                  const double x = at(*in, *is, c, iy, ix);
                  best = std::max(best, x);
                  sum += x;
                  ++valid;
                }
              const int divisor = l.count_pad ? l.kernel_h * l.kernel_w : valid;
              o[(static_cast<size_t>(c) * os.h + oy) * os.w + ox] =
                  l.type == LayerType::kMaxPool ? best : sum / divisor;
            }
        break;
      case LayerType::kGlobalAvgPool: {
        const size_t hw = static_cast<size_t>(is->h) * is->w;
        for (int c = 0; c < os.c; ++c) {
          double sum = 0.0;
          for (size_t p = 0; p < hw; ++p) sum += (*in)[c * hw + p];
          o[c] = sum / hw;
        }
        break;
      }
      case LayerType::kFlatten:
      case LayerType::kActivation: o = *in; break;
      case LayerType::kSoftmax: {
        double mx = -INFINITY, sum = 0.0;
        for (double x : *in) mx = std::max(mx, x);
        for (size_t i = 0; i < o.size(); ++i) sum += (o[i] = std::exp((*in)[i] - mx));
        for (double& x : o) x /= sum;
        break;
      }
    }
    if (l.type != LayerType::kInput && l.type != LayerType::kSoftmax) {
      for (double& x : o) x = activate(static_cast<float>(x), l);
    }
  }
  // CHW -> HWC, the engine's output order.
  const Shape& s = g.blobs[g.output_blob].shape;
  const std::vector<double>& r = v[g.output_blob];
  std::vector<float> hwc(r.size());
  for (int c = 0; c < s.c; ++c)
    for (int y = 0; y < s.h; ++y)
      for (int x = 0; x < s.w; ++x)
        hwc[(static_cast<size_t>(y) * s.w + x) * s.c + c] =
            static_cast<float>(r[(static_cast<size_t>(c) * s.h + y) * s.w + x]);
  return hwc;
}

// Builds the engine, runs two different inputs (buffers are reused between runs) and compares
// each against the reference within 1e-4 relative (absolute below magnitude 1).
void expect_matches_reference(GraphMaker& maker, const Graph& graph, int threads = 1) {
  Result<std::unique_ptr<Engine>> engine = create_xnnpack_engine(graph, threads);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  EXPECT_EQ(engine.value()->backend(), Backend::kXnnpack);
  for (int round = 0; round < 2; ++round) {
    std::vector<float> input = maker.random_input();
    std::vector<float> want = reference_run(graph, input);
    Status s = engine.value()->run(input.data());
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_EQ(engine.value()->output_size(), want.size());
    const float* got = engine.value()->output();
    int bad = 0;
    for (size_t i = 0; i < want.size() && bad < 5; ++i) {
      const float tol = 1e-4f * std::max(1.f, std::fabs(want[i]));
      if (!(std::fabs(got[i] - want[i]) <= tol)) {
        ++bad;
        ADD_FAILURE() << "round " << round << " element " << i << ": xnnpack " << got[i]
                      << ", reference " << want[i];
      }
    }
  }
}

// ---- Tests --------------------------------------------------------------------------------

TEST(XnnpackEngine, GroupedDilatedConvWithAsymmetricPadding) {
  GraphMaker m(1);
  int x = m.input(4, 13, 11);
  ConvParams p;
  p.cout = 6, p.kh = 3, p.kw = 2, p.sh = 2, p.sw = 1, p.dh = 2, p.dw = 3;
  p.pt = 1, p.pl = 0, p.pb = 2, p.pr = 1, p.groups = 2, p.act = Activation::kRelu6;
  int y = m.conv(x, p);
  ConvParams q;  // plain 3x3, no bias, clip
  q.cout = 7, q.kh = 3, q.kw = 3, q.pt = q.pl = q.pb = q.pr = 1, q.bias = false;
  q.act = Activation::kClip, q.clip_min = -0.5f, q.clip_max = 0.75f;
  int z = m.conv(y, q);
  Graph g = m.finish(z);
  expect_matches_reference(m, g);
}

// A pthreadpool splits each op over threads; the result still matches the reference.
TEST(XnnpackEngine, ThreeThreadsMatchReference) {
  GraphMaker m(7);
  int x = m.input(8, 31, 29);
  ConvParams p;
  p.cout = 24, p.kh = 3, p.kw = 3, p.sh = 2, p.sw = 2, p.pt = p.pl = p.pb = p.pr = 1;
  p.act = Activation::kRelu6;
  int y = m.conv(x, p);
  ConvParams d;  // depthwise
  d.cout = 24, d.kh = 3, d.kw = 3, d.pt = d.pl = d.pb = d.pr = 1, d.groups = 24;
  int z = m.conv(y, d);
  Graph g = m.finish(z);
  expect_matches_reference(m, g, /*threads=*/3);
}

TEST(XnnpackEngine, DepthwiseConvWithMultiplierAndHardSwish) {
  GraphMaker m(2);
  int x = m.input(5, 9, 10);
  ConvParams p;
  p.cout = 10, p.kh = 3, p.kw = 3, p.sh = 2, p.sw = 2, p.pt = 1, p.pl = 1, p.pb = 0, p.pr = 1;
  p.groups = 5, p.act = Activation::kHardSwish;
  int y = m.conv(x, p);
  ConvParams q;  // multiplier 1, dilated, no bias, sigmoid
  q.cout = 10, q.kh = 3, q.kw = 3, q.dh = 2, q.dw = 2, q.pt = q.pl = q.pb = q.pr = 2;
  q.groups = 10, q.bias = false, q.act = Activation::kSigmoid;
  int z = m.conv(y, q);
  Graph g = m.finish(z);
  expect_matches_reference(m, g);
}

TEST(XnnpackEngine, GemmAfterFlattenUsesNchwOrder) {
  GraphMaker m(3);
  int x = m.input(3, 5, 4);
  ConvParams p;
  p.cout = 6, p.kh = 3, p.kw = 3, p.pt = p.pl = p.pb = p.pr = 1, p.act = Activation::kRelu;
  int y = m.conv(x, p);
  int f = m.flatten(y);
  int a = m.activation(f, Activation::kRelu6);  // order-preserving between Flatten and Gemm
  int h = m.gemm(a, 9, Activation::kSigmoid);
  int o = m.gemm(h, 3, Activation::kNone, /*bias=*/false);
  Graph g = m.finish(o);
  expect_matches_reference(m, g);
}

TEST(XnnpackEngine, GemmDirectlyOnSpatialBlob) {
  GraphMaker m(4);
  int x = m.input(2, 3, 7);
  int o = m.gemm(x, 5);
  Graph g = m.finish(o);
  expect_matches_reference(m, g);
}

TEST(XnnpackEngine, FlattenAsGraphOutputIsNchwOrdered) {
  GraphMaker m(5);
  int x = m.input(3, 4, 5);
  ConvParams p;
  p.cout = 4, p.kh = 1, p.kw = 1;
  int y = m.conv(x, p);
  int f = m.flatten(y);
  int o = m.activation(f, Activation::kHardSwish);
  Graph g = m.finish(o);
  expect_matches_reference(m, g);
}

TEST(XnnpackEngine, AddChannelwiseMulAndConcat) {
  GraphMaker m(6);
  int x = m.input(4, 6, 7);
  ConvParams p;
  p.cout = 3, p.kh = 3, p.kw = 3, p.pt = p.pl = p.pb = p.pr = 1;
  int a = m.conv(x, p);
  int b = m.conv(x, p);
  int s = m.binary(LayerType::kAdd, a, b, Activation::kRelu);
  int gap = m.global_avg_pool(s);
  int scale = m.activation(gap, Activation::kSigmoid);
  int mul = m.binary(LayerType::kMul, a, scale);       // (C,H,W) * (C,1,1)
  int mul2 = m.binary(LayerType::kMul, mul, b);        // same shapes
  int cat = m.concat({mul2, x, b});
  int cat3 = m.concat({cat, a});                       // two inputs
  Graph g = m.finish(cat3);
  expect_matches_reference(m, g);
}

TEST(XnnpackEngine, MaxPoolPaddingNeverWins) {
  GraphMaker m(7);
  int x = m.input(3, 9, 8);
  // Shift everything negative so that a zero from padding would win the max.
  int neg = m.activation(x, Activation::kClip, -5.f, -0.1f);
  PoolParams p;
  p.kh = 3, p.kw = 3, p.sh = 2, p.sw = 2, p.pt = 1, p.pl = 1, p.pb = 1, p.pr = 0;
  int y = m.pool(LayerType::kMaxPool, neg, p);
  Graph g = m.finish(y);
  expect_matches_reference(m, g);
}

TEST(XnnpackEngine, AvgPoolExcludingPadding) {
  GraphMaker m(8);
  int x = m.input(3, 9, 8);
  PoolParams p;
  p.kh = 3, p.kw = 2, p.sh = 2, p.sw = 1, p.pt = 1, p.pl = 1, p.pb = 0, p.pr = 1;
  p.count_pad = false;
  int y = m.pool(LayerType::kAvgPool, x, p);
  Graph g = m.finish(y);
  expect_matches_reference(m, g);
}

TEST(XnnpackEngine, AvgPoolCountingPadding) {
  GraphMaker m(9);
  int x = m.input(3, 9, 8);
  PoolParams p;
  p.kh = 3, p.kw = 3, p.sh = 2, p.sw = 2, p.pt = 1, p.pl = 0, p.pb = 1, p.pr = 1;
  p.count_pad = true;
  int y = m.pool(LayerType::kAvgPool, x, p);
  Graph g = m.finish(y);
  expect_matches_reference(m, g);
}

TEST(XnnpackEngine, PoolsWithStrideAboveKernelAndOneByOne) {
  GraphMaker m(10);
  int x = m.input(2, 11, 10);
  PoolParams a;
  a.kh = 2, a.kw = 2, a.sh = 3, a.sw = 3;
  int y = m.pool(LayerType::kAvgPool, x, a);
  PoolParams b;
  b.kh = 1, b.kw = 1, b.sh = 2, b.sw = 1;
  int z = m.pool(LayerType::kMaxPool, x, b);
  PoolParams c;
  c.kh = 2, c.kw = 2, c.sh = 3, c.sw = 3;
  int w = m.pool(LayerType::kMaxPool, z, c);
  int gy = m.global_avg_pool(y);
  int gw = m.global_avg_pool(w);
  int o = m.concat({gy, gw});
  Graph g = m.finish(o);
  expect_matches_reference(m, g);
}

TEST(XnnpackEngine, ClassifierWithSoftmax) {
  GraphMaker m(11);
  int x = m.input(3, 16, 16);
  ConvParams p;
  p.cout = 8, p.kh = 3, p.kw = 3, p.sh = 2, p.sw = 2, p.pt = p.pl = p.pb = p.pr = 1;
  p.act = Activation::kRelu;
  int y = m.conv(x, p);
  int gap = m.global_avg_pool(y);
  int f = m.flatten(gap);  // (C,1,1): a no-op
  int logits = m.gemm(f, 2);
  int prob = m.softmax(logits);
  Graph g = m.finish(prob);
  expect_matches_reference(m, g);
}

TEST(XnnpackEngine, InputOnlyGraphCopiesInput) {
  GraphMaker m(12);
  int x = m.input(3, 2, 5);
  Graph g = m.finish(x);
  expect_matches_reference(m, g);
}

TEST(XnnpackEngine, MixedElementOrdersAreUnsupported) {
  GraphMaker m(13);
  int x = m.input(2, 2, 2);
  int f = m.flatten(x);       // 8 elements in HWC order inside the engine
  int h = m.gemm(x, 8);       // 8 elements in model order
  int s = m.binary(LayerType::kAdd, f, h);
  Graph g = m.finish(s);
  Result<std::unique_ptr<Engine>> engine = create_xnnpack_engine(g);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(engine.status().message().find("Add3"), std::string::npos)
      << engine.status().message();
}

TEST(XnnpackEngine, WrongWeightSizeIsInvalidModel) {
  GraphMaker m(14);
  int x = m.input(3, 4, 4);
  ConvParams p;
  p.cout = 4, p.kh = 3, p.kw = 3;
  int y = m.conv(x, p);
  Graph g = m.finish(y);
  g.tensors[g.layers[1].weight].data.pop_back();
  Result<std::unique_ptr<Engine>> engine = create_xnnpack_engine(g);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kInvalidModel);
  EXPECT_NE(engine.status().message().find("Conv1"), std::string::npos)
      << engine.status().message();
}

TEST(XnnpackEngine, DanglingLayerIsInvalidModelNotAnAbort) {
  GraphMaker m(17);
  int x = m.input(3, 4, 4);
  int y = m.activation(x, Activation::kRelu);
  m.gemm(y, 2);  // read by nobody, and not the output
  Graph g = m.finish(y);
  Result<std::unique_ptr<Engine>> engine = create_xnnpack_engine(g);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kInvalidModel);
  EXPECT_NE(engine.status().message().find("Gemm2"), std::string::npos)
      << engine.status().message();
}

TEST(XnnpackEngine, WindowLargerThanPaddedInputIsInvalidModel) {
  GraphMaker m(18);
  int x = m.input(2, 1, 5);
  PoolParams p;
  p.kh = 3, p.kw = 3, p.sh = 2, p.sw = 2, p.pt = 1, p.pr = 1;
  int y = m.pool(LayerType::kMaxPool, x, p);  // padded height 2 < kernel 3
  Graph g = m.finish(y);
  Result<std::unique_ptr<Engine>> engine = create_xnnpack_engine(g);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kInvalidModel);
  EXPECT_NE(engine.status().message().find("MaxPool1"), std::string::npos)
      << engine.status().message();
}

TEST(XnnpackEngine, NullInputIsInvalidArgument) {
  GraphMaker m(15);
  int x = m.input(1, 2, 2);
  int y = m.activation(x, Activation::kRelu);
  Graph g = m.finish(y);
  Result<std::unique_ptr<Engine>> engine = create_xnnpack_engine(g);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  EXPECT_EQ(engine.value()->run(nullptr).code(), StatusCode::kInvalidArgument);
}

TEST(XnnpackEngine, EngineOutlivesGraph) {
  GraphMaker m(16);
  int x = m.input(3, 6, 6);
  ConvParams p;
  p.cout = 5, p.kh = 3, p.kw = 3, p.groups = 1;
  int y = m.conv(x, p);
  int o = m.gemm(y, 4);
  Graph g = m.finish(o);
  std::vector<float> input = m.random_input();
  std::vector<float> want = reference_run(g, input);
  std::unique_ptr<Engine> engine;
  {
    Graph copy = g;
    Result<std::unique_ptr<Engine>> r = create_xnnpack_engine(copy);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    engine = std::move(r).value();
    for (WeightTensor& t : copy.tensors) std::fill(t.data.begin(), t.data.end(), 1e9f);
  }
  ASSERT_TRUE(engine->run(input.data()).ok());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(engine->output()[i], want[i], 1e-4f * std::max(1.f, std::fabs(want[i])));
  }
}

}  // namespace
}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
// Backend agreement: the builtin kernels and XNNPACK (native builds) against the reference
// engine, on random single layers with awkward sizes and on whole fixture networks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "model/model.h"
#include "nn/engine.h"
#include "nn/engine_internal.h"
#include "test_util.h"

namespace anomalens {
namespace {

using testing_util::AlmBuilder;
using testing_util::fixture;

std::vector<Backend> backends_under_test() {
  std::vector<Backend> b = {Backend::kBuiltin};
  if (backend_available(Backend::kXnnpack)) b.push_back(Backend::kXnnpack);
  return b;
}

// Relative error within `tol` of the output's scale: |a - b| <= tol * max(1, max|ref|).
void expect_agree(const Graph& g, const std::vector<float>& input, const std::string& what, float tol = 1e-4f) {
  Result<std::unique_ptr<Engine>> ref = create_engine(g, Backend::kReference);
  ASSERT_TRUE(ref.ok());
  ASSERT_TRUE(ref.value()->run(input.data()).ok());
  const float* r = ref.value()->output();
  const size_t n = ref.value()->output_size();
  float scale = 1.f;
  for (size_t i = 0; i < n; ++i) scale = std::max(scale, std::fabs(r[i]));
  for (Backend backend : backends_under_test()) {
    Result<std::unique_ptr<Engine>> e = create_engine(g, backend);
    ASSERT_TRUE(e.ok()) << what << " on " << backend_name(backend) << ": " << e.status().to_string();
    ASSERT_EQ(e.value()->output_size(), n);
    for (int rep = 0; rep < 2; ++rep) {  // a second run must give the same (no stale state)
      ASSERT_TRUE(e.value()->run(input.data()).ok());
      const float* y = e.value()->output();
      for (size_t i = 0; i < n; ++i) {
        ASSERT_NEAR(y[i], r[i], tol * scale) << what << " on " << backend_name(backend) << ", output " << i;
      }
    }
  }
}

std::vector<float> random_input(const Graph& g, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> x(static_cast<size_t>(g.blobs[g.input_blob].shape.elements()));
  for (float& v : x) v = d(rng);
  return x;
}

TEST(Engine, FixturesAgreeAcrossBackends) {
  for (const char* name : {"tiny.alm", "allops.alm", "allops_f16.alm"}) {
    Result<Model> m = load_model_file(fixture(name));
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    for (uint32_t seed = 0; seed < 3; ++seed) expect_agree(m.value().graph, random_input(m.value().graph, seed), name);
  }
}

// Reference outputs written by scripts/make_fixtures.py (numpy) for its fixed input.
TEST(Engine, FixtureMatchesNumpyReference) {
  for (const char* name : {"tiny", "allops"}) {
    Result<Model> m = load_model_file(fixture(std::string(name) + ".alm"));
    ASSERT_TRUE(m.ok());
    std::vector<uint8_t> raw;
    ASSERT_TRUE(testing_util::read_bytes(fixture(std::string(name) + ".input.f32"), &raw));
    std::vector<float> input(raw.size() / 4);
    std::memcpy(input.data(), raw.data(), raw.size());
    ASSERT_EQ(input.size(), static_cast<size_t>(m.value().graph.blobs[0].shape.elements()));
    std::ifstream f(fixture(std::string(name) + ".output.txt"));
    std::vector<float> expected;
    for (float v; f >> v;) expected.push_back(v);
    for (Backend b : {Backend::kReference, Backend::kBuiltin}) {
      Result<std::unique_ptr<Engine>> e = create_engine(m.value().graph, b);
      ASSERT_TRUE(e.ok());
      ASSERT_TRUE(e.value()->run(input.data()).ok());
      ASSERT_EQ(e.value()->output_size(), expected.size());
      for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_NEAR(e.value()->output()[i], expected[i], 1e-4f * std::max(1.f, std::fabs(expected[i])))
            << name << " " << backend_name(b) << " output " << i;
      }
    }
  }
}

struct ConvCase {
  int c, h, w, cout, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups;
  const char* act;
};

// One conv (plus a head so the graph ends in 2 values) on awkward sizes.
Graph conv_graph(const ConvCase& k, uint32_t seed, std::vector<uint8_t>* storage) {
  std::mt19937 rng(seed);
  AlmBuilder b;
  b.classifier_meta(k.w, k.h, k.c == 1 ? "gray" : "rgb");
  std::ostringstream conv;
  conv << "Conv conv 1 1 x y cout=" << k.cout << " k=" << k.kh << "," << k.kw << " s=" << k.sh << "," << k.sw
       << " d=" << k.dh << "," << k.dw << " p=" << k.pt << "," << k.pl << "," << k.pb << "," << k.pr
       << " g=" << k.groups << " w=cw b=cb act=" << k.act;
  if (std::string(k.act) == "clip") conv << " clip=-0.3,0.4";
  b.layer("Input in 0 1 x c=" + std::to_string(k.c) + " h=" + std::to_string(k.h) + " w=" + std::to_string(k.w))
      .layer(conv.str())
      .random_tensor("cw", {k.cout, k.c / k.groups, k.kh, k.kw}, &rng)
      .random_tensor("cb", {k.cout}, &rng);
  // Flatten keeps every conv output in play for the comparison (Gemm mixes them).
  b.layer("Flatten f 1 1 y z").layer("Gemm fc 1 1 z out n=2 w=fw b=fb");
  const int oh = (k.h + k.pt + k.pb - k.dh * (k.kh - 1) - 1) / k.sh + 1;
  const int ow = (k.w + k.pl + k.pr - k.dw * (k.kw - 1) - 1) / k.sw + 1;
  b.random_tensor("fw", {2, k.cout * oh * ow}, &rng).random_tensor("fb", {2}, &rng);
  *storage = b.bytes();
  Result<Model> m = load_model(storage->data(), storage->size());
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  return m.ok() ? m.value().graph : Graph();
}

TEST(Engine, RandomConvolutionsAgree) {
  // The input channel count must be 1 or 3 for the meta, so awkward channel counts come from a
  // first conv... instead, input is small and convs cover many channel counts via cout/groups.
  const ConvCase cases[] = {
      {3, 7, 13, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, "relu"},
      {3, 13, 7, 13, 3, 3, 2, 2, 1, 1, 0, 1, 1, 0, 1, "relu6"},
      {3, 1, 1, 127, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, "none"},
      {3, 9, 11, 9, 5, 3, 2, 1, 1, 2, 2, 1, 2, 3, 3, "clip"},  // grouped 3->9, dilated
      {3, 8, 8, 3, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 3, "none"},   // depthwise, dilation 2
      {3, 15, 15, 6, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 3, "relu6"}, // depthwise x2, stride 2, asym pad
      {1, 12, 10, 8, 7, 7, 3, 3, 1, 1, 3, 3, 3, 3, 1, "hardswish"},
      {1, 6, 6, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, "sigmoid"},
      {3, 16, 16, 16, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1, "none"},  // strided 1x1
  };
  uint32_t seed = 100;
  for (const ConvCase& k : cases) {
    std::vector<uint8_t> storage;
    Graph g = conv_graph(k, seed, &storage);
    ASSERT_FALSE(g.layers.empty());
    std::ostringstream what;
    what << "conv c=" << k.c << " " << k.h << "x" << k.w << " cout=" << k.cout << " k=" << k.kh << "x" << k.kw
         << " s=" << k.sh << " d=" << k.dh << " g=" << k.groups << " act=" << k.act;
    expect_agree(g, random_input(g, seed++), what.str());
  }
}

// A wider random network: 1x1 convs to 7/13/127 channels, depthwise on them, pools, concat,
// channel-wise mul and residual adds, i.e. the MobileNet/ResNet building blocks.
TEST(Engine, RandomBlocksAgree) {
  for (int channels : {1, 7, 13, 127}) {
    std::mt19937 rng(static_cast<uint32_t>(channels));
    AlmBuilder b;
    const int c = channels;
    b.classifier_meta(13, 11, "rgb")
        .layer("Input in 0 1 x c=3 h=11 w=13")
        .layer("Conv expand 1 1 x e cout=" + std::to_string(c) + " k=1,1 w=ew b=eb act=relu6")
        .random_tensor("ew", {c, 3, 1, 1}, &rng).random_tensor("eb", {c}, &rng)
        .layer("Conv dw 1 1 e d cout=" + std::to_string(c) + " k=3,3 s=2,2 p=0,0,1,1 g=" + std::to_string(c) +
               " w=dw b=db act=relu")
        .random_tensor("dw", {c, 1, 3, 3}, &rng).random_tensor("db", {c}, &rng)
        .layer("GlobalAvgPool gap 1 1 d s")
        .layer("Conv se 1 1 s se cout=" + std::to_string(c) + " k=1,1 w=sw b=sb act=sigmoid")
        .random_tensor("sw", {c, c, 1, 1}, &rng).random_tensor("sb", {c}, &rng)
        .layer("Mul scale 2 1 d se m")
        .layer("Conv proj 1 1 m p cout=" + std::to_string(c) + " k=1,1 w=pw act=none")
        .random_tensor("pw", {c, c, 1, 1}, &rng)
        .layer("Add res 2 1 p d r act=relu")
        .layer("MaxPool mp 1 1 r mp k=2,2 s=1,1 p=1,1,0,0")
        .layer("AvgPool ap 1 1 r ap k=2,2 s=1,1 p=0,0,1,1 count_pad=1")
        .layer("Concat cat 2 1 mp ap cat")
        .layer("Activation hs 1 1 cat hs act=hardswish")
        .layer("GlobalAvgPool g2 1 1 hs g2")
        .layer("Gemm fc 1 1 g2 out n=2 w=fw b=fb")
        .random_tensor("fw", {2, 2 * c}, &rng).random_tensor("fb", {2}, &rng);
    const std::vector<uint8_t> bytes = b.bytes();
    Result<Model> m = load_model(bytes.data(), bytes.size());
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    expect_agree(m.value().graph, random_input(m.value().graph, 9), "blocks c=" + std::to_string(c));
  }
}

TEST(Engine, FusedExpansionsAgree) {
  for (int c : {45, 48}) {
    std::mt19937 rng(static_cast<uint32_t>(c));
    const std::vector<uint8_t> bytes = testing_util::fused_blocks_alm(c, &rng);
    Result<Model> m = load_model(bytes.data(), bytes.size());
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    const Graph& g = m.value().graph;
    EXPECT_EQ(builtin_fused_expansions(g), 2) << "c=" << c;
    expect_agree(g, random_input(g, 5), "fused blocks c=" + std::to_string(c));
  }
}

// The reference engine's error bounds (used by the fuzz target to tell float32 rounding from
// kernel bugs): every backend lies within them, they are below a layout bug's effect on
// well-conditioned models, and +inf only where a float sum can overflow.
Result<std::unique_ptr<Engine>> bounded_reference(const Graph& g, const std::vector<float>& input) {
  Result<std::unique_ptr<Engine>> ref = create_reference_engine(g, /*bound_errors=*/true);
  if (ref.ok()) EXPECT_TRUE(ref.value()->run(input.data()).ok());
  return ref;
}

TEST(ReferenceBounds, HoldForEveryBackendAndCatchALayoutBug) {
  std::mt19937 rng(45);
  const std::vector<uint8_t> fused = testing_util::fused_blocks_alm(45, &rng);
  for (const char* name : {"tiny.alm", "allops.alm", "fused"}) {
    Result<Model> m = std::string(name) == "fused" ? load_model(fused.data(), fused.size())
                                                   : load_model_file(fixture(name));
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    const Graph& g = m.value().graph;
    const std::vector<float> input = random_input(g, 3);
    Result<std::unique_ptr<Engine>> ref = bounded_reference(g, input);
    ASSERT_TRUE(ref.ok());
    const float* r = ref.value()->output();
    const double* bound = reference_error_bounds(*ref.value());
    ASSERT_NE(bound, nullptr);
    const size_t n = ref.value()->output_size();
    for (Backend backend : backends_under_test()) {
      Result<std::unique_ptr<Engine>> e = create_engine(g, backend);
      ASSERT_TRUE(e.ok());
      ASSERT_TRUE(e.value()->run(input.data()).ok());
      for (size_t i = 0; i < n; ++i) {
        EXPECT_LE(std::fabs(double{e.value()->output()[i]} - r[i]), bound[i])
            << name << " on " << backend_name(backend) << ", output " << i;
      }
    }
    // A layout bug (the first layer's weights in reverse order) moves some output by more
    // than twice its bound: the bounds are loose (worst case over every summation order), but
    // not so loose that a kernel bug hides in them.
    Graph changed = g;
    for (const Layer& l : changed.layers) {
      if (l.weight < 0) continue;
      std::vector<float>& w = changed.tensors[l.weight].data;
      std::reverse(w.begin(), w.end());
      break;
    }
    Result<std::unique_ptr<Engine>> e = create_engine(changed, Backend::kBuiltin);
    ASSERT_TRUE(e.ok());
    ASSERT_TRUE(e.value()->run(input.data()).ok());
    double worst = 0;
    for (size_t i = 0; i < n; ++i) {
      EXPECT_TRUE(std::isfinite(bound[i])) << name << " output " << i;
      worst = std::max(worst, std::fabs(double{e.value()->output()[i]} - r[i]) / bound[i]);
    }
    EXPECT_GT(worst, 2.0) << name << ": reversed weights stay within twice the error bound";
  }
}

// Weights near FLT_MAX that cancel exactly: the double sum is 0 (sigmoid 0.5), a float sum
// overflows to inf (sigmoid 1). Both are right for their arithmetic; the bound says so.
// Logits whose float sum overflows where the double sum cancels; then a sigmoid on the Gemm,
// or a Softmax layer after it.
std::vector<uint8_t> overflow_alm(bool softmax) {
  AlmBuilder b;
  b.meta("name", "overflow").meta("labels", "normal,abnormal").meta("input_size", "8x1")
      .meta("channels", "gray").meta("scale", "255").meta("mean", "0").meta("std", "1")
      .meta("resize", "stretch").meta("output", softmax ? "probabilities" : "softmax").meta("threshold", "0.5")
      .layer("Input in 0 1 x c=1 h=1 w=8")
      .tensor("fw", {2, 8}, {-3e38f, -3e38f, 3e38f, 3e38f, 3e38f, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1});
  if (softmax) {
    b.layer("Gemm fc 1 1 x logits n=2 w=fw").layer("Softmax sm 1 1 logits out");
  } else {
    b.layer("Gemm fc 1 1 x out n=2 w=fw act=sigmoid");
  }
  return b.bytes();
}

// Inputs -1, -0.875, -0.75, -0.625, -0.5: the terms are 3e38 * (1 + 0.875 - 0.75 - 0.625 - 0.5) = 0.
const std::vector<float> kOverflowInput = {-1.f, -0.875f, -0.75f, -0.625f, -0.5f, 0.f, 0.25f, 0.5f};

TEST(ReferenceBounds, InfiniteWhereAFloatSumCanOverflow) {
  const std::vector<uint8_t> bytes = overflow_alm(false);
  Result<Model> m = load_model(bytes.data(), bytes.size());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const std::vector<float>& input = kOverflowInput;
  Result<std::unique_ptr<Engine>> ref = bounded_reference(m.value().graph, input);
  ASSERT_TRUE(ref.ok());
  EXPECT_FLOAT_EQ(ref.value()->output()[0], 0.5f);
  const double* bound = reference_error_bounds(*ref.value());
  EXPECT_TRUE(std::isinf(bound[0]));
  EXPECT_LT(bound[1], 1e-5);
  Result<std::unique_ptr<Engine>> e = create_engine(m.value().graph, Backend::kBuiltin);
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(e.value()->run(input.data()).ok());
  EXPECT_LE(std::fabs(double{e.value()->output()[1]} - ref.value()->output()[1]), bound[1]);
  // Without bound_errors there are none.
  Result<std::unique_ptr<Engine>> plain = create_engine(m.value().graph, Backend::kReference);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(reference_error_bounds(*plain.value()), nullptr);
}

// The same logits into a Softmax: a float engine's inf logit makes it NaN (inf - inf), so
// every output's bound is +inf, not the [0, 1] range a softmax of finite logits keeps to.
TEST(ReferenceBounds, SoftmaxOfLogitsThatMayOverflowIsUnbounded) {
  const std::vector<uint8_t> bytes = overflow_alm(true);
  Result<Model> m = load_model(bytes.data(), bytes.size());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  Result<std::unique_ptr<Engine>> ref = bounded_reference(m.value().graph, kOverflowInput);
  ASSERT_TRUE(ref.ok());
  EXPECT_TRUE(std::isfinite(ref.value()->output()[0]));
  const double* bound = reference_error_bounds(*ref.value());
  EXPECT_TRUE(std::isinf(bound[0]));
  EXPECT_TRUE(std::isinf(bound[1]));
}

}  // namespace
}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
// The loader accepts well-formed models and rejects every malformed one with the right code,
// without crashing or allocating from unchecked sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "model/float_array.h"
#include "model/model.h"
#include "test_util.h"

namespace anomalens {
namespace {

using testing_util::AlmBuilder;
using testing_util::fixture;
using testing_util::read_bytes;

TEST(ModelLoader, LoadsFixtures) {
  for (const char* name : {"tiny.alm", "allops.alm", "allops_f16.alm"}) {
    Result<Model> m = load_model_file(fixture(name));
    ASSERT_TRUE(m.ok()) << name << ": " << m.status().to_string();
    EXPECT_EQ(m.value().meta.labels.size(), 2u);
    EXPECT_GT(m.value().graph.layers.size(), 2u);
    EXPECT_GT(m.value().graph.parameter_count(), 0);
  }
}

TEST(ModelLoader, F16StorageMatchesF32WithinHalfPrecision) {
  Result<Model> a = load_model_file(fixture("allops.alm"));
  Result<Model> b = load_model_file(fixture("allops_f16.alm"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a.value().graph.tensors.size(), b.value().graph.tensors.size());
  for (size_t t = 0; t < a.value().graph.tensors.size(); ++t) {
    const auto& x = a.value().graph.tensors[t].data;
    const auto& y = b.value().graph.tensors[t].data;
    ASSERT_EQ(x.size(), y.size());
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], y[i], 1e-3f * std::max(1.f, std::fabs(x[i])));
  }
}

// The widening both section readers share: exact f32 and f16 values (normal, subnormal,
// signed zero), and the index of the first value that is not finite.
TEST(ModelLoader, ReadFiniteFloatsWidensAndFindsTheFirstNonFinite) {
  const float f32[] = {1.5f, -0.f, 3.0e-39f, -65504.f};
  uint8_t bytes[sizeof f32];
  for (size_t i = 0; i < 4; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &f32[i], 4);
    for (int k = 0; k < 4; ++k) bytes[4 * i + k] = static_cast<uint8_t>(bits >> (8 * k));
  }
  float out[4];
  EXPECT_EQ(read_finite_floats(bytes, FloatStorage::kF32, 4, out), -1);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(std::memcmp(&out[i], &f32[i], 4), 0) << i;

  // f16: 1.0, -2.0, the smallest subnormal (2^-24), 65504, then +Inf and NaN.
  const uint16_t f16[] = {0x3c00, 0xc000, 0x0001, 0x7bff, 0x7c00, 0x7e00};
  uint8_t half_bytes[12];
  for (size_t i = 0; i < 6; ++i) {
    half_bytes[2 * i] = static_cast<uint8_t>(f16[i]);
    half_bytes[2 * i + 1] = static_cast<uint8_t>(f16[i] >> 8);
  }
  float wide[6];
  EXPECT_EQ(read_finite_floats(half_bytes, FloatStorage::kF16, 4, wide), -1);
  EXPECT_EQ(wide[0], 1.f);
  EXPECT_EQ(wide[1], -2.f);
  EXPECT_EQ(wide[2], std::ldexp(1.f, -24));
  EXPECT_EQ(wide[3], 65504.f);
  EXPECT_EQ(read_finite_floats(half_bytes, FloatStorage::kF16, 6, wide), 4);
  EXPECT_TRUE(std::isinf(wide[4]));
  EXPECT_EQ(read_finite_floats(half_bytes + 10, FloatStorage::kF16, 1, wide), 0);
  EXPECT_TRUE(std::isnan(wide[0]));
}

// float_to_half (the one-class writer's narrowing) is the inverse of the reader's widening on
// every half, and rounds to nearest, ties to even, everywhere else.
TEST(ModelLoader, FloatToHalfInvertsTheReaderAndRoundsToNearestEven) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint8_t bytes[2] = {static_cast<uint8_t>(h), static_cast<uint8_t>(h >> 8)};
    float wide;
    read_finite_floats(bytes, FloatStorage::kF16, 1, &wide);
    if (std::isnan(wide)) {
      const uint16_t back = float_to_half(wide);
      EXPECT_TRUE((back & 0x7c00) == 0x7c00 && (back & 0x3ff) != 0) << std::hex << h;
    } else {
      ASSERT_EQ(float_to_half(wide), h) << std::hex << h;
    }
  }
  const float ulp1 = std::ldexp(1.f, -10);  // half spacing in [1, 2)
  EXPECT_EQ(float_to_half(1.f + ulp1 / 2), 0x3c00);          // tie: to even (down)
  EXPECT_EQ(float_to_half(1.f + 3 * ulp1 / 2), 0x3c02);      // tie: to even (up)
  EXPECT_EQ(float_to_half(1.f + ulp1 * 0.51f), 0x3c01);      // above the tie
  EXPECT_EQ(float_to_half(-1.f - ulp1 * 0.49f), 0xbc00);     // below the tie, negative
  EXPECT_EQ(float_to_half(65519.f), 0x7bff);                 // rounds down to the largest half
  EXPECT_EQ(float_to_half(kHalfOverflow), 0x7c00);           // the tie above it: infinity
  EXPECT_EQ(float_to_half(-1e9f), 0xfc00);
  EXPECT_EQ(float_to_half(std::ldexp(1.f, -25)), 0x0000);    // tie between 0 and 2^-24: 0
  EXPECT_EQ(float_to_half(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(float_to_half(std::ldexp(3.f, -25)), 0x0002);    // tie between 1 and 2 units: 2
  EXPECT_EQ(float_to_half(std::ldexp(1.f, -14) - std::ldexp(1.f, -25)), 0x0400);  // to the smallest normal
  EXPECT_EQ(float_to_half(1e-30f), 0x0000);
  EXPECT_EQ(float_to_half(-1e-30f), 0x8000);
}

// Every file in bad/manifest.txt fails with the code it names.
TEST(ModelLoader, RejectsMalformedFixturesWithTheRightCode) {
  std::ifstream manifest(fixture("bad/manifest.txt"));
  ASSERT_TRUE(manifest.good()) << "run scripts/make_fixtures.py first";
  std::string line;
  int checked = 0;
  while (std::getline(manifest, line)) {
    std::istringstream in(line);
    std::string file, code;
    if (!(in >> file >> code)) continue;
    Result<Model> m = load_model_file(fixture("bad/" + file));
    ASSERT_FALSE(m.ok()) << file << " loaded but should fail with " << code;
    EXPECT_EQ(status_code_name(m.status().code()), code) << file << ": " << m.status().to_string();
    EXPECT_NE(m.status().message().find("bad/" + file), std::string::npos) << "message names the file";
    ++checked;
  }
  EXPECT_GE(checked, 15);
}

// Cutting a valid file anywhere must fail cleanly (never crash, never succeed).
TEST(ModelLoader, EveryTruncationFails) {
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(read_bytes(fixture("tiny.alm"), &bytes));
  for (size_t len = 0; len < bytes.size(); ++len) {
    Result<Model> m = load_model(bytes.data(), len);
    // Trailing weight padding can be cut without loss only if no section extends there.
    EXPECT_FALSE(m.ok()) << "truncated to " << len << " of " << bytes.size() << " bytes";
    if (!m.ok()) EXPECT_EQ(m.status().code(), StatusCode::kInvalidModel);
  }
}

TEST(ModelLoader, MessagesNameLayerLineAndRule) {
  std::mt19937 rng(1);
  AlmBuilder b;
  b.classifier_meta(8, 8, "gray")
      .layer("Input in 0 1 x c=1 h=8 w=8")
      .layer("Conv c1 1 1 x y cout=2 k=0,3 w=w1")
      .random_tensor("w1", {2, 1, 3, 3}, &rng);
  const std::vector<uint8_t> bytes = b.bytes();
  Result<Model> m = load_model(bytes.data(), bytes.size());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidModel);
  EXPECT_NE(m.status().message().find("layer \"c1\" (line 2)"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("k=0,3"), std::string::npos) << m.status().message();
}

// meta test_time_flips: parsed in file order; bad lists are rejected with the key named.
TEST(ModelLoader, TestTimeFlips) {
  auto load = [](const std::string& flips, const std::string& output) {
    std::mt19937 rng(3);
    AlmBuilder b;
    b.classifier_meta(4, 4, "gray", output);
    if (!flips.empty()) b.meta("test_time_flips", flips);
    b.layer("Input in 0 1 x c=1 h=4 w=4").layer("Conv c1 1 1 x y cout=2 k=4,4 w=w1").random_tensor("w1", {2, 1, 4, 4}, &rng);
    const std::vector<uint8_t> bytes = b.bytes();
    return load_model(bytes.data(), bytes.size());
  };
  Result<Model> absent = load("", "softmax");
  ASSERT_TRUE(absent.ok()) << absent.status().to_string();
  EXPECT_EQ(absent.value().meta.test_time_flips, std::vector<Flip>{Flip::kNone});
  Result<Model> four = load("none,h,v,hv", "softmax");
  ASSERT_TRUE(four.ok()) << four.status().to_string();
  EXPECT_EQ(four.value().meta.test_time_flips,
            (std::vector<Flip>{Flip::kNone, Flip::kHorizontal, Flip::kVertical, Flip::kBoth}));
  for (const char* bad : {"none,h,h", "x", "none,", "", "H", "none h"}) {
    AlmBuilder b;
    std::mt19937 rng(3);
    b.classifier_meta(4, 4, "gray").meta("test_time_flips", bad)
        .layer("Input in 0 1 x c=1 h=4 w=4").layer("Conv c1 1 1 x y cout=2 k=4,4 w=w1").random_tensor("w1", {2, 1, 4, 4}, &rng);
    const std::vector<uint8_t> bytes = b.bytes();
    Result<Model> m = load_model(bytes.data(), bytes.size());
    ASSERT_FALSE(m.ok()) << "test_time_flips=" << bad;
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidModel);
    EXPECT_NE(m.status().message().find("test_time_flips"), std::string::npos) << m.status().message();
  }
}

TEST(ModelLoader, UnknownLayerIsUnsupported) {
  AlmBuilder b;
  b.classifier_meta(4, 4, "gray").layer("Input in 0 1 x c=1 h=4 w=4").layer("Warp w 1 1 x y");
  const std::vector<uint8_t> bytes = b.bytes();
  Result<Model> m = load_model(bytes.data(), bytes.size());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(m.status().message().find("\"Warp\""), std::string::npos);
}

TEST(ModelLoader, RandomByteFlipsNeverCrash) {
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(read_bytes(fixture("allops.alm"), &bytes));
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> b = bytes;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    Result<Model> m = load_model(b.data(), b.size());  // may succeed (e.g. a weight bit): must not crash
    if (!m.ok()) EXPECT_FALSE(m.status().message().empty());
  }
}

}  // namespace
}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
// The app-facing API: verdicts on real images, failures that leave the classifier usable, and
// RGBA input agreeing with encoded input.
#include <gtest/gtest.h>

#include "stb_image_write.h"

#include "classifier/classifier.h"
#include "test_util.h"

namespace anomalens {
namespace {

using testing_util::fixture;
using testing_util::read_bytes;

TEST(Classifier, ClassifiesRealImagesAndSurvivesBadOnes) {
  Result<std::unique_ptr<Classifier>> c = Classifier::create_from_file(fixture("allops.alm"));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  std::vector<uint8_t> good;
  ASSERT_TRUE(read_bytes(testing_util::shared_data("elpv/abnormal/cell0001.png"), &good));
  Result<Verdict> first = c.value()->classify_encoded(good.data(), good.size());
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  const Verdict& v = first.value();
  EXPECT_NEAR(v.scores[0] + v.scores[1], 1.f, 1e-5f);
  EXPECT_EQ(v.score, v.scores[1]);
  EXPECT_EQ(v.label, v.score >= v.threshold ? "abnormal" : "normal");

  const std::string junk = "\x89PNG\r\n\x1a\n but then nothing that decodes";
  Result<Verdict> bad = c.value()->classify_encoded(reinterpret_cast<const uint8_t*>(junk.data()), junk.size());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDecodeFailed);

  Result<Verdict> again = c.value()->classify_encoded(good.data(), good.size());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value().score, v.score) << "a failure must not change later results";
}

TEST(Classifier, ThresholdOverride) {
  Result<std::unique_ptr<Classifier>> c = Classifier::create_from_file(fixture("tiny.alm"));
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c.value()->set_threshold(1.5f).ok());
  EXPECT_FALSE(c.value()->set_threshold(std::nanf("")).ok());
  std::vector<uint8_t> img;
  ASSERT_TRUE(read_bytes(testing_util::shared_data("elpv/abnormal/cell0001.png"), &img));
  ASSERT_TRUE(c.value()->set_threshold(0.f).ok());
  EXPECT_EQ(c.value()->classify_encoded(img.data(), img.size()).value().label, "abnormal");
  ASSERT_TRUE(c.value()->set_threshold(1.f).ok());
  Result<Verdict> v = c.value()->classify_encoded(img.data(), img.size());
  EXPECT_EQ(v.value().label, v.value().score >= 1.f ? "abnormal" : "normal");
}

void append(void* ctx, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(ctx);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

TEST(Classifier, RgbaAndEncodedInputsAgree) {
  Result<std::unique_ptr<Classifier>> c = Classifier::create_from_file(fixture("allops.alm"));
  ASSERT_TRUE(c.ok());
  std::vector<uint8_t> rgba(31 * 17 * 4);
  for (size_t i = 0; i < rgba.size(); ++i) rgba[i] = static_cast<uint8_t>((i * 37) % 251);
  for (size_t i = 3; i < rgba.size(); i += 4) rgba[i] = 255;
  std::vector<uint8_t> png;
  stbi_write_png_to_func(append, &png, 31, 17, 4, rgba.data(), 31 * 4);
  Result<Verdict> a = c.value()->classify_rgba(rgba.data(), rgba.size(), 31, 17);
  Result<Verdict> b = c.value()->classify_encoded(png.data(), png.size());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FLOAT_EQ(a.value().score, b.value().score);
  EXPECT_FALSE(c.value()->classify_rgba(rgba.data(), rgba.size() - 1, 31, 17).ok());
}

// A model with test_time_flips=none,h,v,hv scores the mean of what the plain network scores on
// the image mirrored left-right, top-bottom and both (flipped here with the EXIF orientation
// code, independently of the classifier's own flip of the input tensor).
TEST(Classifier, TestTimeFlipsScoreTheMeanOverMirroredImages) {
  Result<Model> plain_model = load_model_file(fixture("allops.alm"));
  Result<Model> flips_model = load_model_file(fixture("allops.alm"));
  ASSERT_TRUE(plain_model.ok() && flips_model.ok());
  flips_model.value().meta.test_time_flips = {Flip::kNone, Flip::kHorizontal, Flip::kVertical, Flip::kBoth};
  Result<std::unique_ptr<Classifier>> plain = Classifier::create(std::move(plain_model).value());
  Result<std::unique_ptr<Classifier>> flips = Classifier::create(std::move(flips_model).value());
  ASSERT_TRUE(plain.ok() && flips.ok());

  std::vector<uint8_t> bytes;
  ASSERT_TRUE(read_bytes(testing_util::shared_data("elpv/abnormal/cell0001.png"), &bytes));
  Result<Image> image = decode_image(bytes.data(), bytes.size(), DecodeOptions());
  ASSERT_TRUE(image.ok());
  float mean[2] = {0, 0};
  float single[4];
  int k = 0;
  for (int orientation : {1, 2, 4, 3}) {  // EXIF: as is, mirror x, mirror y, rotate 180
    Image mirrored = image.value();
    apply_orientation(&mirrored, orientation);
    Result<Verdict> v = plain.value()->classify_image(mirrored);
    ASSERT_TRUE(v.ok());
    single[k++] = v.value().score;
    mean[0] += v.value().scores[0] / 4;
    mean[1] += v.value().scores[1] / 4;
  }
  // The mirrored images must score differently, or this test could not catch ignored flips.
  EXPECT_GT(std::max({single[0], single[1], single[2], single[3]}) - std::min({single[0], single[1], single[2], single[3]}),
            1e-3f);
  Result<Verdict> averaged = flips.value()->classify_image(image.value());
  ASSERT_TRUE(averaged.ok());
  EXPECT_NEAR(averaged.value().scores[0], mean[0], 2e-6f);
  EXPECT_NEAR(averaged.value().scores[1], mean[1], 2e-6f);
  EXPECT_EQ(averaged.value().score, averaged.value().scores[1]);
  EXPECT_EQ(averaged.value().abnormal, averaged.value().score >= averaged.value().threshold);
}

TEST(Classifier, BadModelIsRejectedBeforeUse) {
  const uint8_t junk[] = {'A', 'L', 'M', '1', 1, 0, 0, 0};
  Result<std::unique_ptr<Classifier>> c = Classifier::create_from_bytes(junk, sizeof junk);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidModel);
  Result<std::unique_ptr<Classifier>> missing = Classifier::create_from_file("/nonexistent/model.alm");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  EXPECT_NE(missing.status().message().find("/nonexistent/model.alm"), std::string::npos);
}

}  // namespace
}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
// Golden test: PyTorch outputs for fixed images (scripts/make_golden.py: torchvision models ->
// ONNX -> onnx_to_alm.py -> .alm) must match the C++ preprocessing and every backend.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "classifier/classifier.h"
#include "image/preprocess.h"
#include "test_util.h"

namespace anomalens {
namespace {

using testing_util::fixture;
using testing_util::read_bytes;

struct GoldenCase {
  std::string model, image;
  std::vector<float> outputs;
};

TEST(Golden, PyTorchOutputsMatch) {
  std::ifstream f(fixture("golden.txt"));
  ASSERT_TRUE(f.good()) << "run scripts/make_golden.py first";
  std::vector<GoldenCase> cases;
  std::vector<std::array<std::string, 3>> inputs;  // model, image, f32 path
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string first;
    if (!(in >> first)) continue;
    if (first == "input") {
      std::array<std::string, 3> rec;
      in >> rec[0] >> rec[1] >> rec[2];
      inputs.push_back(rec);
      continue;
    }
    GoldenCase c;
    c.model = first;
    size_t n = 0;
    in >> c.image >> n;
    c.outputs.resize(n);
    for (float& v : c.outputs) in >> v;
    ASSERT_TRUE(in) << "malformed golden line: " << line;
    cases.push_back(c);
  }
  ASSERT_GE(cases.size(), 6u);

  std::map<std::string, Model> models;
  for (const GoldenCase& c : cases) {
    if (!models.count(c.model)) {
      Result<Model> m = load_model_file(fixture(c.model));
      ASSERT_TRUE(m.ok()) << m.status().to_string();
      models.emplace(c.model, std::move(m).value());
    }
  }

  // Preprocessing alone against almtools.preprocess.
  Preprocessor pre;
  for (const auto& rec : inputs) {
    const Model& m = models.at(rec[0]);
    std::vector<uint8_t> bytes, raw;
    ASSERT_TRUE(read_bytes(rec[1], &bytes)) << rec[1];
    ASSERT_TRUE(read_bytes(rec[2].find('/') == 0 ? rec[2] : fixture(rec[2]), &raw)) << rec[2];
    Result<Image> img = decode_image(bytes.data(), bytes.size(), DecodeOptions{});
    ASSERT_TRUE(img.ok());
    std::vector<float> mine(static_cast<size_t>(m.meta.input_width) * m.meta.input_height * m.meta.channel_count());
    ASSERT_EQ(raw.size(), mine.size() * 4) << rec[2];
    pre.run(img.value(), m.meta, mine.data());
    std::vector<float> theirs(mine.size());
    std::memcpy(theirs.data(), raw.data(), raw.size());
    float worst = 0;
    for (size_t i = 0; i < mine.size(); ++i) worst = std::max(worst, std::fabs(mine[i] - theirs[i]));
    EXPECT_LT(worst, 1e-4f) << "preprocessing of " << rec[1] << " for " << rec[0];
  }

  std::vector<Backend> backends = {Backend::kBuiltin, Backend::kReference};
  if (backend_available(Backend::kXnnpack)) backends.push_back(Backend::kXnnpack);
  for (Backend backend : backends) {
    for (const GoldenCase& c : cases) {
      Result<std::unique_ptr<Classifier>> clf = Classifier::create(models.at(c.model), backend);
      ASSERT_TRUE(clf.ok()) << clf.status().to_string();
      std::vector<uint8_t> bytes;
      ASSERT_TRUE(read_bytes(c.image, &bytes));
      Result<Image> img = decode_image(bytes.data(), bytes.size(), DecodeOptions{});
      ASSERT_TRUE(img.ok());
      const ModelMeta& meta = clf.value()->model().meta;
      std::vector<float> input(static_cast<size_t>(meta.input_width) * meta.input_height * meta.channel_count());
      pre.run(img.value(), meta, input.data());
      std::vector<float> out;
      ASSERT_TRUE(clf.value()->infer(input.data(), &out).ok());
      ASSERT_EQ(out.size(), c.outputs.size());
      for (size_t i = 0; i < out.size(); ++i) {
        EXPECT_NEAR(out[i], c.outputs[i], 1e-4f * std::max(1.f, std::fabs(c.outputs[i])))
            << c.model << " on " << c.image << " (" << backend_name(backend) << ") output " << i;
      }
    }
  }
}

}  // namespace
}  // namespace anomalens

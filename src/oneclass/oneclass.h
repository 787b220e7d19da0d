// SPDX-License-Identifier: Apache-2.0
// One-class anomaly detection: fit from normal images only (PaDiM-style per-location Gaussians
// on a backbone's multi-scale feature map), score images, and make per-pixel anomaly maps.
//
// A one-class .alm is a feature graph (its single output blob is an (D, H, W) feature map) with
// meta `output=oneclass` and a section "oneclass" holding, per grid location, the mean and a
// whitening matrix of the normal features (docs/FORMAT.md, "One-class models").
//
//   Result<Model> base = load_model_file("models/default.alm");
//   Result<Model> feat = make_feature_model(base.value(), FeatureSpec{});
//   OneClassFitter fitter(std::move(feat).value(), FitOptions{});  // threshold at 1% FPR
//   ANOMALENS_RETURN_IF_ERROR(fitter.init());
//   for (const Image& img : normal_images) ANOMALENS_RETURN_IF_ERROR(fitter.add_normal(img));
//   Result<FitSummary> s = fitter.finish();
//   std::vector<uint8_t> alm = fitter.model_bytes();        // load with Classifier as usual
//
// Memory is bounded whatever the number of images: the Gaussians are accumulated as running
// sums (H*W*D*(D+1)/2 doubles), and at most FitOptions::max_kept held-out normal and abnormal
// feature maps are kept (reservoir sampling beyond that) to choose the threshold.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "image/image.h"
#include "image/preprocess.h"
#include "model/float_array.h"
#include "model/model.h"
#include "nn/engine.h"
#include "util/status.h"

namespace anomalens {

// How the image distance is made from the per-location distances.
enum class OneClassReduce : uint32_t { kMax = 0, kTopMean = 1 };

// The parsed "oneclass" section.
struct OneClassParams {
  uint32_t method = 1;  // 1: per-location Gaussian (Mahalanobis distance)
  int grid_h = 0, grid_w = 0, dim = 0;
  OneClassReduce reduce = OneClassReduce::kMax;
  float threshold = 1.f;  // raw distance where the score is 0.5
  float scale = 1.f;      // logistic scale: score = 1 / (1 + exp(-(d - threshold) / scale))
  uint32_t fit_images = 0;
  float smooth = 0;       // Gaussian smoothing of the distance map, sigma in grid cells (0: none)
  // How the file stores mean and whitening (header field at offset 40: 0 = f32, 1 = f16). In
  // memory they are always floats; f16 files hold values already rounded to halves.
  FloatStorage storage = FloatStorage::kF32;
  std::vector<float> mean;    // grid_h * grid_w * dim
  std::vector<float> whiten;  // per location, packed lower triangle (row i: i + 1 values)

  size_t locations() const { return static_cast<size_t>(grid_h) * grid_w; }
  size_t tri() const { return static_cast<size_t>(dim) * (dim + 1) / 2; }
  // Score in [0, 1], monotone in the distance; >= 0.5 exactly when distance >= threshold.
  float score(float distance) const;
};

// Parses and validates a "oneclass" section against the feature graph's output shape.
// kInvalidModel naming the field and the rule; kUnsupported for an unknown method.
Result<OneClassParams> parse_oneclass_section(const uint8_t* data, size_t size, const Shape& features);
// Writes params.storage; with kF16 every value must be below kHalfOverflow in magnitude (the
// fitter checks, and stores f32 otherwise).
std::vector<uint8_t> serialize_oneclass_section(const OneClassParams& params);

// Per-location Mahalanobis distances of one feature map (HWC, as engines output it) into
// `map` (grid_h * grid_w), smoothed per params.smooth; returns the image distance (per
// params.reduce).
float oneclass_distance_map(const OneClassParams& params, const float* features_hwc, float* map,
                            std::vector<float>* scratch);

// Separable Gaussian blur of a w x h map in place (radius max(1, round(3 sigma)), edges
// replicated, weights summing to 1); sigma <= 0: unchanged.
void smooth_map(float* map, int w, int h, float sigma);

// Bilinear upsampling of a grid map laid over a network input of net_w x net_h to the pixels of
// an image of width x height, following the model's resize policy (center_crop: pixels outside
// the crop window take the nearest window value). `out` gets width * height values.
void upsample_anomaly_map(const float* grid, int grid_w, int grid_h, const ModelMeta& meta, int width,
                          int height, std::vector<float>* out);

// ---- building and saving models -----------------------------------------------------------

constexpr int kDefaultProjection = 128;
constexpr int kMaxProjection = 4096;

struct FeatureSpec {
  // Blob names of the base graph to use; empty: the base's meta `features.layers` if it has
  // one, else automatic (the last blob at each of the resolutions input/4, input/8 and
  // input/16, i.e. the end of those stages).
  std::vector<std::string> layers;
  // Fixed random 1x1 projection to this many channels; 0: none; -1: the base's meta
  // `features.projection` if it has one, else kDefaultProjection.
  int projection = -1;
  // How finer maps are reduced onto the coarsest grid: false = average, true = maximum (keeps
  // thin defects such as cracks that an average dilutes; docs/ONECLASS.md).
  bool max_pool = true;
  uint32_t seed = 1;     // of the projection weights
};

// Builds the feature graph from a classifier (or backbone) model: the layers the chosen blobs
// need, each blob smoothed by a 3x3 average and average-pooled to the coarsest grid, a Concat
// and the optional projection. Meta: the base's preprocessing, `output=oneclass`,
// `threshold=0.5`, the base's metric.* keys dropped. A feature model made by this function
// (meta `oneclass.layers`) is returned as is, its fitted section dropped; a plain backbone
// (`output=oneclass` without it, scripts/oneclass_backbone.py) gets features built. kInvalidArgument names an unknown blob.
Result<Model> make_feature_model(const Model& base, const FeatureSpec& spec);

// Serialises a model to .alm bytes (f32 weights), with extra sections appended (name, bytes).
std::vector<uint8_t> write_alm(const Model& model,
                               const std::vector<std::pair<std::string, std::vector<uint8_t>>>& extra);

// Sets (or adds) a meta key, keeping the order of the others.
void set_meta(ModelMeta* meta, const std::string& key, const std::string& value);

// ---- fitting ------------------------------------------------------------------------------

// Fit-time augmentation: extra copies of each fitting image (not of held-out or abnormal ones)
// added to the Gaussians. Bit flags; the flip is applied to the preprocessed network input.
enum OneClassAugment : uint32_t { kAugmentHFlip = 1, kAugmentVFlip = 2, kAugmentRot180 = 4 };
// "none", "hflip", "flips" (all three) or a comma list of hflip, vflip, rot180; false if unknown.
bool parse_oneclass_augment(const std::string& text, uint32_t* flags);
std::string oneclass_augment_name(uint32_t flags);  // "none" or a comma list

// Accepted ranges of the fit options below (the CLI, the browser binding and the .alm reader
// all check against these).
constexpr float kMaxSmooth = 8;          // sigma, grid cells
constexpr double kMaxShrinkage = 100;    // also the most ridge
constexpr double kDefaultRidge = 0.1;

struct FitOptions {
  double fpr = 0.01;              // target false-positive rate on held-out normal images
  int holdout_every = 5;          // every 5th normal image is held out for the threshold
  int max_kept = 100;             // held-out normal / abnormal feature maps kept (each)
  double shrinkage = 0.01;        // covariance += shrinkage * trace/D * I, in [0, kMaxShrinkage]
  // covariance += ridge * g * I, g = trace/D averaged over all locations: the same amount
  // everywhere, so where normal images hardly vary (plain background) a tiny change does not
  // give a huge distance. In [0, kMaxShrinkage]; docs/ONECLASS.md, "Global ridge".
  double ridge = kDefaultRidge;
  float smooth = 0;               // Gaussian smoothing of the distance map (grid cells; 0: none),
                                  // in [0, kMaxSmooth]
  OneClassReduce reduce = OneClassReduce::kMax;
  int threads = 1;                // engine threads for the backbone (EngineOptions::threads)
  uint32_t augment = 0;           // OneClassAugment flags: each adds one backbone pass per fitting image
  // Storage of the fitted statistics: f16 halves the file (a 14x14 grid with D=256: 32 -> 16 MB)
  // and moved distances by at most 5e-4 (relative) on 1,483 magnetic-tile and ELPV images, with
  // the same ROC AUC (docs/ONECLASS.md). The threshold is chosen with the rounded values. A
  // value beyond the half range (|v| >= 65520) makes the fit store f32 instead.
  FloatStorage storage = FloatStorage::kF16;
};

// The distance threshold for a target false-positive rate `fpr` on unseen normal images, from
// the distances of held-out normal ones (any order; at least one).
// - Enough held-out images ((n + 1) * fpr >= 1): the conformal rule. Just above the k-th
//   largest, with k the largest such that k / (n + 1) <= fpr: an unseen normal image from the
//   same source then reaches it with probability at most fpr.
// - Too few (the usual case: 1% needs 99): the largest would be flagged about 1 / (n + 1) of
//   the time (11% with 8), so the threshold is extrapolated instead: a one-sided prediction
//   bound (Student's t) of a normal fitted to d^(2/3), never below the largest.
// - fpr == 0, or a single held-out image: just above the largest.
struct FprThreshold {
  float distance = 0;
  bool extrapolated = false;  // the prediction bound was used
};
FprThreshold choose_fpr_threshold(std::vector<float> normal_distances, double fpr);

struct FitSummary {
  int fit_images = 0, holdout_images = 0, abnormal_images = 0;
  float threshold = 0;        // raw distance
  float scale = 0;
  double holdout_fpr = 0;     // fraction of held-out normal images at or above the threshold
  double abnormal_recall = -1, f1 = -1, roc_auc = -1;  // -1 without abnormal examples
  bool refined_by_f1 = false;
  bool threshold_extrapolated = false;  // the FPR threshold came from the prediction bound
  FloatStorage storage = FloatStorage::kF32;  // as stored (f32 when f16 was asked but out of range)
  size_t model_bytes = 0;
  size_t peak_fit_bytes = 0;  // accumulators + kept feature maps
};

class OneClassFitter {
 public:
  // `features`: a feature model (make_feature_model), output (D, H, W).
  OneClassFitter(Model features, const FitOptions& options, Backend backend = Backend::kBuiltin);
  Status init();  // creates the engine; call once before adding images
  Status add_normal(const Image& image);
  Status add_abnormal(const Image& image);
  // Estimates the Gaussians, picks the threshold, stores the section into the model.
  Result<FitSummary> finish();
  const Model& model() const { return model_; }
  std::vector<uint8_t> model_bytes() const;  // valid after finish()
  int normal_count() const { return normal_seen_; }

 private:
  Status features_of(const Image& image, const float** out);
  void keep(std::vector<std::vector<float>>* kept, int* seen, const float* f, int max_kept);
  void accumulate(const float* f);

  Model model_;
  Backend backend_;
  std::unique_ptr<Engine> engine_;
  Preprocessor pre_;
  std::vector<float> input_;
  int grid_h_ = 0, grid_w_ = 0, dim_ = 0;
  std::vector<double> sum_, sum_sq_;  // per location: D, and packed D*(D+1)/2
  int fit_count_ = 0, fit_samples_ = 0, normal_seen_ = 0, holdout_seen_ = 0, abnormal_seen_ = 0;
  std::vector<std::vector<float>> holdout_, abnormal_;
  std::mt19937 rng_{12345};
  FitOptions options_;
  bool finished_ = false;
  std::vector<uint8_t> section_;
};

}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
// anomalens fit: a one-class model from normal images (and optionally a few abnormal ones),
// on the feature maps of a backbone .alm. See docs/ONECLASS.md.
#include <chrono>
#include <cstdio>
#include <fstream>

#include <unistd.h>

#include "cli/cli_util.h"
#include "image/image.h"
#include "oneclass/oneclass.h"

namespace anomalens {

namespace {
const char kHelp[] =
    "usage: anomalens fit --normal DIR [options] -o OUT.alm\n"
    "Fits a one-class model from normal images only: a Gaussian of the backbone's multi-scale\n"
    "features per location; every 5th normal image is held out to set the threshold.\n"
    "  --normal DIR       normal images (searched recursively); at least 2\n"
    "  --abnormal DIR     optional abnormal examples: the threshold becomes the best F1\n"
    "  --base MODEL       backbone .alm: a classifier (default models/default.alm) or a\n"
    "                     feature model (output=oneclass, e.g. from scripts/oneclass_backbone.py)\n"
    "  --fpr F            target false-positive rate on held-out normal images (default 0.01)\n"
    "  --layers A,B,C     blob names of the base graph to use (default: the base's\n"
    "                     features.layers, else the last blob at 1/4, 1/8 and 1/16 of the input)\n"
    "  --dim N            random projection of the features to N channels (default: the base's\n"
    "                     features.projection, else 128; 0: none)\n"
    "  --pool max|avg     how finer feature maps are reduced onto the coarsest grid (default max)\n"
    "  --reduce max|top   image distance: max over locations (default) or mean of the top 1%\n"
    "  --smooth S         Gaussian smoothing of the anomaly map, sigma in grid cells (default\n"
    "                     0: none); stored in the model, applied when classifying\n"
    "  --shrinkage E      covariance += E * trace/D * I (default 0.01)\n"
    "  --ridge R          covariance += R * g * I, g = trace/D averaged over all locations\n"
    "                     (default 0.1)\n"
    "  --storage f16|f32  how the model stores its statistics (default f16: half the size;\n"
    "                     f32 if a value is beyond the half range)\n"
    "  --augment A        fit-time augmentation: none (default), hflip, flips (hflip,vflip,\n"
    "                     rot180) or a comma list; each adds one backbone pass per image\n"
    "  --backend B        xnnpack (default where built in), builtin (the web app's kernels:\n"
    "                     its exact scores; scalar natively, so slower) or reference\n"
    "  --threads N        threads that run the backbone (default: the machine's cores, at most\n"
    "                     8); with the builtin backend the fitted model is the same for any N\n"
    "  -o, --output FILE  where to write the fitted .alm\n"
    "  --quiet            no progress bar\n";

void progress(const char* what, size_t done, size_t total, double seconds, bool quiet) {
  // Redrawn at most every 0.1 s on a terminal; elsewhere (logs) only the final line.
  static double last = -1;
  if (quiet || (done != total && (!isatty(2) || seconds - last < 0.1))) return;
  last = seconds;
  const int width = 30;
  const int filled = total ? static_cast<int>(width * done / total) : width;
  std::fprintf(stderr, "\r%-8s [%.*s%*s] %zu/%zu  %.1fs", what, filled, "##############################",
               width - filled, "", done, total, seconds);
  if (done == total) std::fputc('\n', stderr);
  std::fflush(stderr);
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace

int cmd_fit(int argc, char** argv) {
  Result<cli::Args> parsed = cli::parse_args(argc - 1, argv + 1,
      {"--normal", "--abnormal", "--base", "--fpr", "--layers", "--dim", "--reduce", "--augment", "--pool", "--smooth", "--shrinkage", "--ridge", "--storage", "--backend", "--threads", "-o",
       "--output"},
      {"--quiet", "--help", "-h"});
  if (!parsed.ok()) return cli::fail(parsed.status());
  const cli::Args& args = parsed.value();
  if (args.has("--help") || args.has("-h")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const std::string* normal_dir = args.get("--normal");
  const std::string* out = args.get("-o") ? args.get("-o") : args.get("--output");
  if (!normal_dir || !out || !args.positionals.empty()) {
    std::fputs(kHelp, stderr);
    return 2;
  }
  if (!cli::is_directory(*normal_dir)) {
    return cli::fail(Status(StatusCode::kInvalidArgument, "--normal " + *normal_dir + ": not a directory"));
  }
  const std::string* abnormal_dir = args.get("--abnormal");
  if (abnormal_dir && !cli::is_directory(*abnormal_dir)) {
    return cli::fail(Status(StatusCode::kInvalidArgument, "--abnormal " + *abnormal_dir + ": not a directory"));
  }
  FitOptions options;
  if (const std::string* f = args.get("--fpr")) {
    Result<double> v = cli::parse_number("--fpr", *f, 0, 0.5);
    if (!v.ok()) return cli::fail(v.status());
    options.fpr = v.value();
  }
  if (const std::string* r = args.get("--reduce")) {
    if (*r == "max") options.reduce = OneClassReduce::kMax;
    else if (*r == "top") options.reduce = OneClassReduce::kTopMean;
    else return cli::fail(Status(StatusCode::kInvalidArgument, "--reduce " + *r + ": expected max or top"));
  }
  if (const std::string* v = args.get("--smooth")) {
    Result<double> x = cli::parse_number("--smooth", *v, 0, kMaxSmooth);
    if (!x.ok()) return cli::fail(x.status());
    options.smooth = static_cast<float>(x.value());
  }
  if (const std::string* v = args.get("--ridge")) {
    Result<double> x = cli::parse_number("--ridge", *v, 0, kMaxShrinkage);
    if (!x.ok()) return cli::fail(x.status());
    options.ridge = x.value();
  }
  if (const std::string* v = args.get("--shrinkage")) {
    Result<double> x = cli::parse_number("--shrinkage", *v, 0, kMaxShrinkage);
    if (!x.ok()) return cli::fail(x.status());
    options.shrinkage = x.value();
  }
  if (const std::string* v = args.get("--storage")) {
    if (*v != "f16" && *v != "f32") {
      return cli::fail(Status(StatusCode::kInvalidArgument, "--storage " + *v + ": expected f16 or f32"));
    }
    options.storage = *v == "f16" ? FloatStorage::kF16 : FloatStorage::kF32;
  }
  if (const std::string* a = args.get("--augment")) {
    if (!parse_oneclass_augment(*a, &options.augment)) {
      return cli::fail(Status(StatusCode::kInvalidArgument,
                              "--augment " + *a + ": expected none, hflip, flips or a comma list of hflip, vflip, rot180"));
    }
  }
  FeatureSpec spec;
  if (const std::string* d = args.get("--dim")) {
    Result<double> v = cli::parse_number("--dim", *d, 0, kMaxProjection);
    if (!v.ok()) return cli::fail(v.status());
    spec.projection = static_cast<int>(v.value());
  }
  if (const std::string* l = args.get("--layers")) spec.layers = split_commas(*l);
  if (const std::string* p = args.get("--pool")) {
    if (*p == "max") spec.max_pool = true;
    else if (*p == "avg") spec.max_pool = false;
    else return cli::fail(Status(StatusCode::kInvalidArgument, "--pool " + *p + ": expected max or avg"));
  }
  Result<Backend> backend = cli::parse_backend(args.get("--backend"));
  if (!backend.ok()) return cli::fail(backend.status());
  Result<int> threads = cli::parse_threads(args.get("--threads"));
  if (!threads.ok()) return cli::fail(threads.status());
  options.threads = threads.value();
  const bool quiet = args.has("--quiet");

  cli::Args base_args;
  if (const std::string* b = args.get("--base")) base_args.options["--model"] = *b;
  const std::string base_path = cli::model_path(base_args, argv[0]);
  Result<Model> base = load_model_file(base_path);
  if (!base.ok()) {
    cli::fail(base.status());
    std::fprintf(stderr,
                 "anomalens: --base needs a backbone .alm: models/default.alm, any classifier .alm, or the\n"
                 "  pretrained nsfwjs MobileNetV2 as a feature model:\n"
                 "  /usr/bin/python3 scripts/oneclass_backbone.py build/backbone.alm\n");
    return 2;
  }
  Result<Model> features = make_feature_model(base.value(), spec);
  if (!features.ok()) return cli::fail(features.status());
  const Shape fs = features.value().graph.blobs[features.value().graph.output_blob].shape;
  OneClassFitter fitter(std::move(features).value(), options, backend.value());
  Status init = fitter.init();
  if (!init.ok()) return cli::fail(init);
  if (!quiet) {
    std::fprintf(stderr, "base %s, features %d x %dx%d (%s)\n", base_path.c_str(), fs.c, fs.w, fs.h,
                 fitter.model().meta.find("oneclass.layers") ? fitter.model().meta.find("oneclass.layers")->c_str() : "");
  }

  int failures = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto run = [&](const std::string& dir, bool abnormal) {
    const std::vector<std::string> files = cli::list_files(dir);
    for (size_t i = 0; i < files.size(); ++i) {
      Result<std::vector<uint8_t>> bytes = cli::read_file(files[i]);
      Status s = bytes.status();
      if (bytes.ok()) {
        Result<Image> image = decode_image(bytes.value().data(), bytes.value().size(), DecodeOptions{});
        s = !image.ok() ? image.status()
                        : abnormal ? fitter.add_abnormal(image.value()) : fitter.add_normal(image.value());
      }
      if (!s.ok()) {
        ++failures;
        if (!quiet) std::fputc('\n', stderr);
        std::fprintf(stderr, "%s: skipped: %s\n", files[i].c_str(), s.to_string().c_str());
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      progress(abnormal ? "abnormal" : "normal", i + 1, files.size(), secs, quiet);
    }
    return files.size();
  };
  run(*normal_dir, false);
  if (abnormal_dir) run(*abnormal_dir, true);

  Result<FitSummary> fitted = fitter.finish();
  if (!fitted.ok()) return cli::fail(fitted.status());
  const FitSummary& s = fitted.value();
  const std::vector<uint8_t> bytes = fitter.model_bytes();
  std::ofstream f(*out, std::ios::binary);
  if (!f || !f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()))) {
    return cli::fail(Status(StatusCode::kIoError, *out + ": cannot write"));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("fitted on %d normal image(s), %d held out for the threshold", s.fit_images, s.holdout_images);
  if (s.abnormal_images) std::printf(", %d abnormal example(s)", s.abnormal_images);
  std::printf(" in %.1f s\n", secs);
  std::printf("threshold: distance %.4g (score 0.5), chosen %s\n", s.threshold,
              s.refined_by_f1 ? "by best F1 on held-out normal + abnormal examples"
                              : ("at target false-positive rate " + cli::json_number(options.fpr)).c_str());
  if (s.threshold_extrapolated) {
    std::printf("extrapolated: %d held-out image(s) are too few to measure that rate directly, so it is "
                "a prediction bound fitted to their distances\n", s.holdout_images);
  }
  std::printf("held-out normal images at or above it: %.1f%%\n", 100 * s.holdout_fpr);
  if (s.roc_auc >= 0) {
    std::printf("abnormal examples detected: %.1f%%, F1 %.3f, ROC AUC (held-out normal vs abnormal) %.3f\n",
                100 * s.abnormal_recall, s.f1, s.roc_auc);
  }
  std::printf("model: %s (%.1f MB, statistics in %s), fitting memory %.1f MB\n", out->c_str(), s.model_bytes / 1e6,
              s.storage == FloatStorage::kF16 ? "f16" : "f32", s.peak_fit_bytes / 1e6);
  if (options.storage == FloatStorage::kF16 && s.storage == FloatStorage::kF32) {
    std::printf("stored as f32: a value is beyond the half range\n");
  }
  return failures > 0 ? 1 : 0;
}

}  // namespace anomalens

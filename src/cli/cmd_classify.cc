// SPDX-License-Identifier: Apache-2.0
// anomalens classify: one verdict per image; a file that fails is reported and skipped.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "classifier/classifier.h"
#include "cli/batch.h"
#include "cli/cli_util.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO_UNUSED
#include <stb/stb_image_write.h>

namespace anomalens {

namespace {
const char kHelp[] =
    "usage: anomalens classify [options] IMAGE|DIR...\n"
    "  --model FILE       .alm model (default models/default.alm)\n"
    "  --json             one JSON object per line: file, label, score, threshold\n"
    "                     (or file, error, code for an image that failed)\n"
    "  --threshold T      override the model's decision threshold (0..1)\n"
    "  --backend B        xnnpack (default where built in), builtin (the web app's kernels:\n"
    "                     its exact scores; scalar natively, so slower) or reference\n"
    "  --max-pixels N     refuse images declaring more pixels (default 64000000)\n"
    "  --heatmap DIR      one-class models: write DIR/<name>.heatmap.png, the image with its\n"
    "                     anomaly map overlaid (red = above the threshold)\n"
    "  --threads N        images classified in parallel, one classifier each (default: the\n"
    "                     machine's cores, at most 8); the output is the same for any N\n"
    "Directories are searched recursively. Exit status: 0 all classified, 1 some failed,\n"
    "2 bad usage or model.\n";
// Gray version of the image blended with a colour ramp of the per-pixel scores: below 0.5
// (normal) fades from transparent to yellow, at or above 0.5 from orange to red, opaque.
bool write_overlay(const std::string& path, const Image& image, const Verdict& v) {
  const int w = image.width, h = image.height;
  std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
  for (int i = 0; i < w * h; ++i) {
    float g = 0;
    for (int c = 0; c < std::min(image.channels, 3); ++c) {
      g += image.bits == 16 ? image.pixels16[i * image.channels + c] / 257.f : image.pixels8[i * image.channels + c];
    }
    g /= std::min(image.channels, 3);
    const float s = std::min(1.f, std::max(0.f, v.heatmap[i]));
    float r, gr, b, a;
    if (s < 0.5f) {
      r = 255, gr = 230, b = 0, a = 0.6f * s;  // up to 30% yellow
    } else {
      r = 255, gr = 160 * (1 - s) * 2, b = 0, a = 0.35f + 0.5f * (s - 0.5f) * 2;
    }
    rgb[3 * i + 0] = static_cast<uint8_t>(g * (1 - a) + r * a);
    rgb[3 * i + 1] = static_cast<uint8_t>(g * (1 - a) + gr * a);
    rgb[3 * i + 2] = static_cast<uint8_t>(g * (1 - a) + b * a);
  }
  return stbi_write_png(path.c_str(), w, h, 3, rgb.data(), w * 3) != 0;
}

std::string heatmap_path(const std::string& dir, const std::string& file) {
  std::string base = file.substr(file.find_last_of('/') == std::string::npos ? 0 : file.find_last_of('/') + 1);
  const size_t dot = base.find_last_of('.');
  if (dot != std::string::npos && dot > 0) base = base.substr(0, dot);
  return dir + "/" + base + ".heatmap.png";
}

// What one image prints: its line for stdout, any message for stderr, and whether it failed.
struct ImageOutcome {
  std::string out, err;
  bool failed = false;
};

ImageOutcome classify_one(Classifier& clf, const std::string& file, bool json, const std::string* heatmap_dir) {
  ImageOutcome o;
  Result<std::vector<uint8_t>> bytes = cli::read_file(file);
  Result<Verdict> v = bytes.ok() ? clf.classify_encoded(bytes.value().data(), bytes.value().size())
                                 : Result<Verdict>(bytes.status());
  if (!v.ok()) {
    o.failed = true;
    if (json) {
      o.out = "{\"file\":" + cli::json_string(file) + ",\"error\":" + cli::json_string(v.status().message()) +
              ",\"code\":\"" + status_code_name(v.status().code()) + "\"}\n";
    } else {
      o.err = file + ": error: " + v.status().to_string() + "\n";
    }
    return o;
  }
  const Verdict& r = v.value();
  std::string overlay;
  if (heatmap_dir) {
    Result<Image> image = decode_image(bytes.value().data(), bytes.value().size(), clf.decode_options());
    overlay = heatmap_path(*heatmap_dir, file);
    if (!image.ok() || image.value().width != r.heatmap_width || image.value().height != r.heatmap_height ||
        !write_overlay(overlay, image.value(), r)) {
      o.err = file + ": error: cannot write heatmap " + overlay + "\n";
      overlay.clear();
      o.failed = true;
    }
  }
  if (json) {
    std::string extra;
    if (clf.is_oneclass()) extra += ",\"distance\":" + cli::json_number(r.distance);
    if (!overlay.empty()) extra += ",\"heatmap\":" + cli::json_string(overlay);
    o.out = "{\"file\":" + cli::json_string(file) + ",\"label\":" + cli::json_string(r.label) +
            ",\"score\":" + cli::json_number(r.score) + ",\"threshold\":" + cli::json_number(r.threshold) + extra +
            "}\n";
  } else {
    char score[32];
    std::snprintf(score, sizeof score, "%.4f", r.score);
    o.out = file + "\t" + r.label + "\t" + score + "\n";
  }
  return o;
}

}  // namespace

int cmd_classify(int argc, char** argv) {
  Result<cli::Args> parsed = cli::parse_args(argc - 1, argv + 1,
      {"--model", "--threshold", "--backend", "--max-pixels", "--heatmap", "--threads"}, {"--json", "--help", "-h"});
  if (!parsed.ok()) return cli::fail(parsed.status());
  const cli::Args& args = parsed.value();
  if (args.has("--help") || args.has("-h")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (args.positionals.empty()) {
    std::fputs(kHelp, stderr);
    return 2;
  }
  Result<Backend> backend = cli::parse_backend(args.get("--backend"));
  if (!backend.ok()) return cli::fail(backend.status());
  Result<int> threads = cli::parse_threads(args.get("--threads"));
  if (!threads.ok()) return cli::fail(threads.status());
  float threshold = -1;
  if (const std::string* t = args.get("--threshold")) {
    Result<double> v = cli::parse_number("--threshold", *t, 0, 1);
    if (!v.ok()) return cli::fail(v.status());
    threshold = static_cast<float>(v.value());
  }
  int64_t max_pixels = -1;
  if (const std::string* m = args.get("--max-pixels")) {
    Result<double> v = cli::parse_number("--max-pixels", *m, 1, 4e12);
    if (!v.ok()) return cli::fail(v.status());
    max_pixels = static_cast<int64_t>(v.value());
  }
  const bool json = args.has("--json");
  const std::string* heatmap_dir = args.get("--heatmap");

  std::vector<std::string> files;
  for (const std::string& p : args.positionals) {
    if (cli::is_directory(p)) {
      for (const std::string& f : cli::list_files(p)) files.push_back(f);
    } else {
      files.push_back(p);
    }
  }
  Result<std::vector<std::unique_ptr<Classifier>>> made = cli::batch_classifiers(
      cli::model_path(args, argv[0]), backend.value(), threads.value(), files.size(), [&](Classifier& clf) {
        if (threshold >= 0) ANOMALENS_RETURN_IF_ERROR(clf.set_threshold(threshold));
        if (max_pixels > 0) clf.decode_options().max_pixels = max_pixels;
        if (heatmap_dir) {
          if (!clf.is_oneclass()) {
            return Status(StatusCode::kInvalidArgument,
                          "--heatmap needs a one-class model (output=oneclass, made by anomalens fit)");
          }
          clf.set_heatmap(true);
        }
        return Status::Ok();
      });
  if (!made.ok()) return cli::fail(made.status());
  const std::vector<std::unique_ptr<Classifier>>& classifiers = made.value();
  if (heatmap_dir) {
    mkdir(heatmap_dir->c_str(), 0777);
    if (!cli::is_directory(*heatmap_dir)) {
      return cli::fail(Status(StatusCode::kIoError, "--heatmap " + *heatmap_dir + ": cannot create the directory"));
    }
  }

  int failures = 0;
  cli::ordered_parallel_for<ImageOutcome>(
      files.size(), static_cast<int>(classifiers.size()),
      [&](int worker, size_t i) { return classify_one(*classifiers[worker], files[i], json, heatmap_dir); },
      [&](size_t, ImageOutcome& o) {
        if (o.failed) ++failures;
        std::fputs(o.err.c_str(), stderr);
        std::fputs(o.out.c_str(), stdout);
        std::fflush(stdout);
      });
  if (failures > 0 && !json) {
    std::fprintf(stderr, "%d of %zu image(s) failed\n", failures, files.size());
  }
  return failures > 0 ? 1 : 0;
}

}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
// anomalens classify: one verdict per image; a file that fails is reported and skipped.
#include <cstdio>

#include "classifier/classifier.h"
#include "cli/cli_util.h"

namespace anomalens {

namespace {
const char kHelp[] =
    "usage: anomalens classify [options] IMAGE|DIR...\n"
    "  --model FILE       .alm model (default models/default.alm)\n"
    "  --json             one JSON object per line: file, label, score, threshold\n"
    "                     (or file, error, code for an image that failed)\n"
    "  --threshold T      override the model's decision threshold (0..1)\n"
    "  --backend B        builtin (default), xnnpack (native) or reference\n"
    "  --max-pixels N     refuse images declaring more pixels (default 64000000)\n"
    "Directories are searched recursively. Exit status: 0 all classified, 1 some failed,\n"
    "2 bad usage or model.\n";
}  // namespace

int cmd_classify(int argc, char** argv) {
  Result<cli::Args> parsed = cli::parse_args(argc - 1, argv + 1,
      {"--model", "--threshold", "--backend", "--max-pixels"}, {"--json", "--help", "-h"});
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
  Result<std::unique_ptr<Classifier>> created =
      Classifier::create_from_file(cli::model_path(args, argv[0]), backend.value());
  if (!created.ok()) return cli::fail(created.status());
  Classifier& clf = *created.value();
  if (const std::string* t = args.get("--threshold")) {
    Result<double> v = cli::parse_number("--threshold", *t, 0, 1);
    if (!v.ok()) return cli::fail(v.status());
    clf.set_threshold(static_cast<float>(v.value()));
  }
  if (const std::string* m = args.get("--max-pixels")) {
    Result<double> v = cli::parse_number("--max-pixels", *m, 1, 4e12);
    if (!v.ok()) return cli::fail(v.status());
    clf.decode_options().max_pixels = static_cast<int64_t>(v.value());
  }
  const bool json = args.has("--json");

  std::vector<std::string> files;
  for (const std::string& p : args.positionals) {
    if (cli::is_directory(p)) {
      for (const std::string& f : cli::list_files(p)) files.push_back(f);
    } else {
      files.push_back(p);
    }
  }
  int failures = 0;
  for (const std::string& file : files) {
    Result<std::vector<uint8_t>> bytes = cli::read_file(file);
    Result<Verdict> v = bytes.ok() ? clf.classify_encoded(bytes.value().data(), bytes.value().size())
                                   : Result<Verdict>(bytes.status());
    if (!v.ok()) {
      ++failures;
      if (json) {
        std::printf("{\"file\":%s,\"error\":%s,\"code\":\"%s\"}\n", cli::json_string(file).c_str(),
                    cli::json_string(v.status().message()).c_str(), status_code_name(v.status().code()));
      } else {
        std::fprintf(stderr, "%s: error: %s\n", file.c_str(), v.status().to_string().c_str());
      }
      continue;
    }
    const Verdict& r = v.value();
    if (json) {
      std::printf("{\"file\":%s,\"label\":%s,\"score\":%s,\"threshold\":%s}\n",
                  cli::json_string(file).c_str(), cli::json_string(r.label).c_str(),
                  cli::json_number(r.score).c_str(), cli::json_number(r.threshold).c_str());
    } else {
      std::printf("%s\t%s\t%.4f\n", file.c_str(), r.label.c_str(), r.score);
    }
    std::fflush(stdout);
  }
  if (failures > 0 && !json) {
    std::fprintf(stderr, "%d of %zu image(s) failed\n", failures, files.size());
  }
  return failures > 0 ? 1 : 0;
}

}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
// anomalens bench: network latency on a fixed pseudo-random input (decode and resize excluded).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "classifier/classifier.h"
#include "cli/cli_util.h"

namespace anomalens {

int cmd_bench(int argc, char** argv) {
  Result<cli::Args> parsed = cli::parse_args(argc - 1, argv + 1,
      {"--model", "--backend", "--runs", "--warmup", "--threads"}, {"--json", "--help", "-h"});
  if (!parsed.ok()) return cli::fail(parsed.status());
  const cli::Args& args = parsed.value();
  if (args.has("--help") || args.has("-h") || !args.positionals.empty()) {
    std::fputs("usage: anomalens bench [--model FILE] [--backend builtin (default)|xnnpack|reference]\n"
               "                       [--runs N (50)] [--warmup N (5)] [--threads N (1)] [--json]\n",
               args.positionals.empty() ? stdout : stderr);
    return args.positionals.empty() ? 0 : 2;
  }
  // The kernel benchmark: measures the builtin kernels unless told otherwise.
  const std::string builtin = "builtin";
  Result<Backend> backend = cli::parse_backend(args.get("--backend") ? args.get("--backend") : &builtin);
  if (!backend.ok()) return cli::fail(backend.status());
  int runs = 50, warmup = 5;
  if (const std::string* r = args.get("--runs")) {
    Result<double> v = cli::parse_number("--runs", *r, 1, 1e6);
    if (!v.ok()) return cli::fail(v.status());
    runs = static_cast<int>(v.value());
  }
  if (const std::string* w = args.get("--warmup")) {
    Result<double> v = cli::parse_number("--warmup", *w, 0, 1e6);
    if (!v.ok()) return cli::fail(v.status());
    warmup = static_cast<int>(v.value());
  }
  EngineOptions options;
  if (const std::string* t = args.get("--threads")) {
    Result<double> v = cli::parse_number("--threads", *t, 1, 64);
    if (!v.ok()) return cli::fail(v.status());
    options.threads = static_cast<int>(v.value());
  }
  const std::string path = cli::model_path(args, argv[0]);
  Result<Model> model = load_model_file(path);
  if (!model.ok()) return cli::fail(model.status());
  Result<std::unique_ptr<Classifier>> created = Classifier::create(std::move(model).value(), backend.value(), options);
  if (!created.ok()) return cli::fail(created.status());
  Classifier& clf = *created.value();
  const ModelMeta& meta = clf.model().meta;
  std::vector<float> input(static_cast<size_t>(meta.input_width) * meta.input_height * meta.channel_count());
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(-2.f, 2.f);
  for (float& v : input) v = dist(rng);
  std::vector<float> out;
  for (int i = 0; i < warmup; ++i) clf.infer(input.data(), &out);
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    clf.infer(input.data(), &out);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  const double p90 = ms[std::min(ms.size() - 1, ms.size() * 9 / 10)];
  const double gmacs = clf.model().graph.macs() / 1e9;
  if (args.has("--json")) {
    std::printf("{\"model\":%s,\"runtime\":\"anomalens-native-%s\",\"threads\":%d,\"runs\":%d,"
                "\"median_ms\":%s,\"p90_ms\":%s,\"min_ms\":%s,\"gflops\":%s}\n",
                cli::json_string(path).c_str(), backend_name(backend.value()), options.threads, runs,
                cli::json_number(median).c_str(), cli::json_number(p90).c_str(),
                cli::json_number(ms.front()).c_str(), cli::json_number(2 * gmacs / (median / 1e3)).c_str());
  } else {
    std::printf("%s (%s backend, %d thread(s), %d runs after %d warm-up): median %.3f ms, p90 %.3f ms, "
                "min %.3f ms, %.1f GFLOP/s\n", path.c_str(), backend_name(backend.value()), options.threads, runs,
                warmup, median, p90,
                ms.front(), 2 * gmacs / (median / 1e3));
  }
  return 0;
}

}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
// anomalens eval: metrics of a model on a labelled folder (DIR/normal, DIR/abnormal), the
// images it gets most confidently wrong, files that failed, and an optional HTML report.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "classifier/classifier.h"
#include "classifier/metrics.h"
#include "cli/batch.h"
#include "cli/cli_util.h"

namespace anomalens {

namespace {

const char kHelp[] =
    "usage: anomalens eval [options] DIR\n"
    "DIR holds normal/ and abnormal/ (searched recursively).\n"
    "  --model FILE       .alm model (default models/default.alm)\n"
    "  --json             print the metrics as one JSON object\n"
    "  --threshold T      override the model's decision threshold (0..1)\n"
    "  --backend B        xnnpack (default where built in), builtin (the web app's kernels:\n"
    "                     its exact scores; scalar natively, so slower) or reference\n"
    "  --worst N          list the N most confidently wrong images (default 10)\n"
    "  --report FILE      write an HTML report (ROC curve, confusion matrix, worst images)\n"
    "  --threads N        images classified in parallel, one classifier each (default: the\n"
    "                     machine's cores, at most 8); the metrics are the same for any N\n";

struct Scored {
  std::string file;
  int label;  // 1 abnormal
  float score;
};

void write_report(const std::string& path, const std::string& model, const BinaryMetrics& m,
                  const std::vector<Scored>& scored, const std::vector<Scored>& worst) {
  // ROC points from sorted scores (each distinct score is a threshold).
  std::vector<Scored> s = scored;
  std::sort(s.begin(), s.end(), [](const Scored& a, const Scored& b) { return a.score > b.score; });
  const double pos = static_cast<double>(m.tp + m.fn), neg = static_cast<double>(m.tn + m.fp);
  std::string points = "0,300";
  double tp = 0, fp = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    (s[i].label ? tp : fp) += 1;
    if (i + 1 < s.size() && s[i + 1].score == s[i].score) continue;
    char buf[64];
    std::snprintf(buf, sizeof buf, " %.1f,%.1f", 300 * fp / neg, 300 - 300 * tp / pos);
    points += buf;
  }
  std::ofstream f(path);
  f << "<!doctype html><meta charset=utf-8><title>Anomalens evaluation</title>"
       "<style>body{font:15px system-ui;margin:2em;max-width:60em}td,th{border:1px solid #ccc;"
       "padding:.3em .7em}table{border-collapse:collapse}</style>"
    << "<h1>Evaluation of " << model << "</h1>"
    << "<p>n=" << m.n << ", threshold " << m.threshold << "</p><table>"
    << "<tr><th>accuracy</th><td>" << m.accuracy << "</td></tr><tr><th>precision</th><td>" << m.precision
    << "</td></tr><tr><th>recall</th><td>" << m.recall << "</td></tr><tr><th>F1</th><td>" << m.f1
    << "</td></tr><tr><th>ROC AUC</th><td>" << m.roc_auc << "</td></tr></table>"
    << "<h2>Confusion matrix</h2><table><tr><th></th><th>predicted normal</th><th>predicted abnormal</th></tr>"
    << "<tr><th>normal</th><td>" << m.tn << "</td><td>" << m.fp << "</td></tr><tr><th>abnormal</th><td>"
    << m.fn << "</td><td>" << m.tp << "</td></tr></table>"
    << "<h2>ROC curve</h2><svg width=320 height=320 viewBox='-10 -10 320 320'>"
       "<rect width=300 height=300 fill=none stroke=#999 />"
       "<line x1=0 y1=300 x2=300 y2=0 stroke=#ccc stroke-dasharray=4 />"
    << "<polyline fill=none stroke=#c0392b stroke-width=2 points='" << points << "' /></svg>"
    << "<p>x: false-positive rate, y: true-positive rate</p><h2>Most confidently wrong</h2><ol>";
  for (const Scored& w : worst) {
    f << "<li>" << w.file << ": labelled " << (w.label ? "abnormal" : "normal") << ", score " << w.score << "</li>";
  }
  f << "</ol>";
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  Result<cli::Args> parsed = cli::parse_args(argc - 1, argv + 1,
      {"--model", "--threshold", "--backend", "--worst", "--report", "--threads"}, {"--json", "--help", "-h"});
  if (!parsed.ok()) return cli::fail(parsed.status());
  const cli::Args& args = parsed.value();
  if (args.has("--help") || args.has("-h")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (args.positionals.size() != 1) {
    std::fputs(kHelp, stderr);
    return 2;
  }
  const std::string dir = args.positionals[0];
  if (!cli::is_directory(dir + "/normal") || !cli::is_directory(dir + "/abnormal")) {
    return cli::fail(Status(StatusCode::kInvalidArgument, dir + ": needs subfolders normal/ and abnormal/"));
  }
  Result<Backend> backend = cli::parse_backend(args.get("--backend"));
  if (!backend.ok()) return cli::fail(backend.status());
  Result<int> threads = cli::parse_threads(args.get("--threads"));
  if (!threads.ok()) return cli::fail(threads.status());
  float threshold_override = -1;
  if (const std::string* t = args.get("--threshold")) {
    Result<double> v = cli::parse_number("--threshold", *t, 0, 1);
    if (!v.ok()) return cli::fail(v.status());
    threshold_override = static_cast<float>(v.value());
  }
  size_t worst_n = 10;
  if (const std::string* w = args.get("--worst")) {
    Result<double> v = cli::parse_number("--worst", *w, 0, 1e6);
    if (!v.ok()) return cli::fail(v.status());
    worst_n = static_cast<size_t>(v.value());
  }
  const bool json = args.has("--json");

  std::vector<Scored> inputs;  // every file with its label, normal ones first
  for (int label = 0; label < 2; ++label) {
    for (const std::string& file : cli::list_files(dir + (label ? "/abnormal" : "/normal"))) {
      inputs.push_back({file, label, 0});
    }
  }
  const std::string model_file = cli::model_path(args, argv[0]);
  Result<std::vector<std::unique_ptr<Classifier>>> made = cli::batch_classifiers(
      model_file, backend.value(), threads.value(), inputs.size(), [&](Classifier& clf) {
        if (threshold_override >= 0) ANOMALENS_RETURN_IF_ERROR(clf.set_threshold(threshold_override));
        return Status::Ok();
      });
  if (!made.ok()) return cli::fail(made.status());
  const std::vector<std::unique_ptr<Classifier>>& classifiers = made.value();

  std::vector<Scored> scored;
  std::vector<std::pair<std::string, std::string>> failed;
  float threshold = 0;
  cli::ordered_parallel_for<Result<Verdict>>(
      inputs.size(), static_cast<int>(classifiers.size()),
      [&](int worker, size_t i) {
        Result<std::vector<uint8_t>> bytes = cli::read_file(inputs[i].file);
        return bytes.ok() ? classifiers[worker]->classify_encoded(bytes.value().data(), bytes.value().size())
                          : Result<Verdict>(bytes.status());
      },
      [&](size_t i, Result<Verdict>& v) {
        if (!v.ok()) {
          failed.emplace_back(inputs[i].file, v.status().to_string());
          return;
        }
        threshold = v.value().threshold;
        scored.push_back({inputs[i].file, inputs[i].label, v.value().score});
      });
  std::vector<float> scores;
  std::vector<int> labels;
  for (const Scored& s : scored) {
    scores.push_back(s.score);
    labels.push_back(s.label);
  }
  Result<BinaryMetrics> metrics = compute_metrics(scores, labels, threshold);
  if (!metrics.ok()) {
    for (const auto& f : failed) std::fprintf(stderr, "%s: error: %s\n", f.first.c_str(), f.second.c_str());
    return cli::fail(Status(metrics.status().code(), dir + ": " + metrics.status().message()));
  }
  const BinaryMetrics& m = metrics.value();

  // Most confidently wrong: misclassified, ordered by distance from the threshold.
  std::vector<Scored> worst;
  for (const Scored& s : scored) {
    if ((s.score >= threshold) != (s.label == 1)) worst.push_back(s);
  }
  std::sort(worst.begin(), worst.end(), [&](const Scored& a, const Scored& b) {
    return std::fabs(a.score - threshold) > std::fabs(b.score - threshold);
  });
  if (worst.size() > worst_n) worst.resize(worst_n);

  if (json) {
    std::printf("{\"model\":%s,\"n\":%lld,\"threshold\":%s,\"accuracy\":%s,\"precision\":%s,\"recall\":%s,"
                "\"f1\":%s,\"roc_auc\":%s,\"confusion\":{\"tp\":%lld,\"fp\":%lld,\"tn\":%lld,\"fn\":%lld},",
                cli::json_string(model_file).c_str(), static_cast<long long>(m.n), cli::json_number(m.threshold).c_str(),
                cli::json_number(m.accuracy).c_str(), cli::json_number(m.precision).c_str(),
                cli::json_number(m.recall).c_str(), cli::json_number(m.f1).c_str(),
                cli::json_number(m.roc_auc).c_str(), static_cast<long long>(m.tp), static_cast<long long>(m.fp),
                static_cast<long long>(m.tn), static_cast<long long>(m.fn));
    std::printf("\"worst\":[");
    for (size_t i = 0; i < worst.size(); ++i) {
      std::printf("%s{\"file\":%s,\"label\":\"%s\",\"score\":%s}", i ? "," : "", cli::json_string(worst[i].file).c_str(),
                  worst[i].label ? "abnormal" : "normal", cli::json_number(worst[i].score).c_str());
    }
    std::printf("],\"failed\":[");
    for (size_t i = 0; i < failed.size(); ++i) {
      std::printf("%s{\"file\":%s,\"error\":%s}", i ? "," : "", cli::json_string(failed[i].first).c_str(),
                  cli::json_string(failed[i].second).c_str());
    }
    std::printf("]}\n");
  } else {
    std::printf("model:      %s\nimages:     %lld (%lld normal, %lld abnormal)\nthreshold:  %.4f\n",
                model_file.c_str(), static_cast<long long>(m.n), static_cast<long long>(m.tn + m.fp),
                static_cast<long long>(m.tp + m.fn), m.threshold);
    std::printf("accuracy:   %.4f\nprecision:  %.4f\nrecall:     %.4f\nF1:         %.4f\nROC AUC:    %.4f\n",
                m.accuracy, m.precision, m.recall, m.f1, m.roc_auc);
    std::printf("\nconfusion matrix   predicted normal  predicted abnormal\n");
    std::printf("  actual normal    %16lld  %18lld\n", static_cast<long long>(m.tn), static_cast<long long>(m.fp));
    std::printf("  actual abnormal  %16lld  %18lld\n", static_cast<long long>(m.fn), static_cast<long long>(m.tp));
    if (!worst.empty()) {
      std::printf("\nmost confidently wrong (check labels, or hard cases):\n");
      for (const Scored& w : worst) {
        std::printf("  %.4f  labelled %-8s  %s\n", w.score, w.label ? "abnormal" : "normal", w.file.c_str());
      }
    }
    if (!failed.empty()) {
      std::printf("\nfailed to classify (%zu):\n", failed.size());
      for (const auto& f : failed) std::printf("  %s: %s\n", f.first.c_str(), f.second.c_str());
    }
  }
  if (const std::string* report = args.get("--report")) {
    write_report(*report, model_file, m, scored, worst);
    if (!json) std::printf("\nreport: %s\n", report->c_str());
  }
  return failed.empty() ? 0 : 1;
}

}  // namespace anomalens

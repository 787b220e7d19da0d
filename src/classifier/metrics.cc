// SPDX-License-Identifier: Apache-2.0
#include "classifier/metrics.h"

#include <algorithm>
#include <numeric>
#include <string>

namespace anomalens {

Result<BinaryMetrics> compute_metrics(const std::vector<float>& scores, const std::vector<int>& labels,
                                      float threshold) {
  if (scores.size() != labels.size()) {
    return Status(StatusCode::kInvalidArgument, "scores and labels differ in length");
  }
  BinaryMetrics m;
  m.n = static_cast<int64_t>(scores.size());
  m.threshold = threshold;
  int64_t positives = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    const bool truth = labels[i] != 0, predicted = scores[i] >= threshold;
    positives += truth;
    if (truth && predicted) ++m.tp;
    else if (truth) ++m.fn;
    else if (predicted) ++m.fp;
    else ++m.tn;
  }
  const int64_t negatives = m.n - positives;
  if (positives == 0 || negatives == 0) {
    return Status(StatusCode::kInvalidArgument,
                  std::string("no ") + (positives == 0 ? "abnormal" : "normal") +
                      " examples: metrics such as ROC AUC need both classes");
  }
  m.accuracy = static_cast<double>(m.tp + m.tn) / m.n;
  m.precision = m.tp + m.fp > 0 ? static_cast<double>(m.tp) / (m.tp + m.fp) : 0.0;
  m.recall = static_cast<double>(m.tp) / positives;
  m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0.0;

  // Rank-sum AUC: sort scores, give tied runs their average rank.
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double positive_rank_sum = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double avg_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (size_t k = i; k < j; ++k) {
      if (labels[order[k]] != 0) positive_rank_sum += avg_rank;
    }
    i = j;
  }
  m.roc_auc = (positive_rank_sum - static_cast<double>(positives) * (positives + 1) / 2.0) /
              (static_cast<double>(positives) * negatives);
  return m;
}

}  // namespace anomalens

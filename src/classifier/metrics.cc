// SPDX-License-Identifier: Apache-2.0
#include "classifier/metrics.h"

#include <algorithm>
#include <cmath>
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

namespace {

// P(|T| <= t) for Student's t with integer df >= 1 (A&S 26.7.3 for odd df, 26.7.4 for even).
// sin and cos of theta = atan(t / sqrt(df)) are taken algebraically: std::sin and std::cos
// would add their argument reduction to the .wasm (about 5 KB; tests/js/bundle_size.test.mjs).
double student_t_central(double t, int df) {
  const double r = std::sqrt(t * t + df);
  const double theta = std::atan(t / std::sqrt(static_cast<double>(df)));
  const double c2 = df / (r * r), s = t / r;
  if (df % 2 == 0) {
    double term = 1, sum = 1;
    for (int k = 2; k <= df - 2; k += 2) {
      term *= c2 * (k - 1) / k;
      sum += term;
    }
    return s * sum;
  }
  double sum = 0;
  if (df > 1) {
    double term = std::sqrt(c2);
    sum = term;
    for (int k = 3; k <= df - 2; k += 2) {
      term *= c2 * (k - 1) / k;
      sum += term;
    }
  }
  return 2 / M_PI * (theta + s * sum);
}

}  // namespace

double student_t_upper_quantile(double tail, int df) {
  if (!(tail > 0) || tail > 0.5 || df < 1) return NAN;
  const double central = 1 - 2 * tail;
  double lo = 0, hi = 1;
  while (student_t_central(hi, df) < central && hi < 1e12) hi *= 2;
  for (int i = 0; i < 200 && hi - lo > 1e-12 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (student_t_central(mid, df) < central ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace anomalens

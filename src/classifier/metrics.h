// SPDX-License-Identifier: Apache-2.0
// Binary classification metrics for `anomalens eval` (positive class = abnormal).
//
//   Result<BinaryMetrics> m = compute_metrics({0.1f, 0.9f, 0.4f}, {0, 1, 1}, 0.5f);
//   // m.value().roc_auc == 1.0, m.value().recall == 0.5
#pragma once

#include <cstdint>
#include <vector>

#include "util/status.h"

namespace anomalens {

struct BinaryMetrics {
  int64_t n = 0, tp = 0, fp = 0, tn = 0, fn = 0;
  double accuracy = 0, precision = 0, recall = 0, f1 = 0, roc_auc = 0;
  float threshold = 0;
};

// scores: P(abnormal) per example; labels: 1 abnormal, 0 normal. Predicted abnormal when
// score >= threshold. ROC AUC is the Mann-Whitney statistic with ties counted as one half.
// Precision is 0 when nothing is predicted abnormal (no division by zero). Fails with
// kInvalidArgument when the sizes differ or either class has no examples (AUC undefined).
Result<BinaryMetrics> compute_metrics(const std::vector<float>& scores, const std::vector<int>& labels,
                                      float threshold);

// The t with P(T > t) = tail for Student's t with `df` degrees of freedom (df >= 1, tail in
// (0, 0.5]); exact for integer df (Abramowitz & Stegun 26.7.3-4), solved by bisection. Used
// for prediction bounds from a few samples, where the normal quantile would be too tight.
double student_t_upper_quantile(double tail, int df);

}  // namespace anomalens

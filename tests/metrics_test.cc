// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <cmath>

#include "classifier/metrics.h"

namespace anomalens {
namespace {

TEST(Metrics, HandComputed) {
  // labels:  1    1    1    0    0    0    0
  // scores: .9   .6   .3   .7   .2   .1   .05   threshold .5
  // predicted abnormal: .9 .6 .7 -> tp 2 (0.9, 0.6), fp 1 (0.7); fn 1 (0.3); tn 3.
  Result<BinaryMetrics> r = compute_metrics({.9f, .6f, .3f, .7f, .2f, .1f, .05f}, {1, 1, 1, 0, 0, 0, 0}, 0.5f);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const BinaryMetrics& m = r.value();
  EXPECT_EQ(m.tp, 2);
  EXPECT_EQ(m.fp, 1);
  EXPECT_EQ(m.tn, 3);
  EXPECT_EQ(m.fn, 1);
  EXPECT_EQ(m.n, 7);
  EXPECT_DOUBLE_EQ(m.accuracy, 5.0 / 7.0);
  EXPECT_DOUBLE_EQ(m.precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.recall, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.f1, 2.0 / 3.0);
  // Pairs (pos, neg) with pos > neg: .9 beats all 4, .6 beats 3 (not .7), .3 beats 3 -> 10 of 12.
  EXPECT_DOUBLE_EQ(m.roc_auc, 10.0 / 12.0);
}

TEST(Metrics, TiesCountHalf) {
  // One positive and one negative with equal scores: AUC 0.5. Threshold at the tie predicts
  // both abnormal (score >= threshold).
  Result<BinaryMetrics> r = compute_metrics({0.4f, 0.4f, 0.9f, 0.1f}, {1, 0, 1, 0}, 0.4f);
  ASSERT_TRUE(r.ok());
  // pairs: (0.4+,0.4-) tie .5, (0.4+,0.1-) 1, (0.9+,0.4-) 1, (0.9+,0.1-) 1 -> 3.5 / 4
  EXPECT_DOUBLE_EQ(r.value().roc_auc, 3.5 / 4.0);
  EXPECT_EQ(r.value().tp, 2);
  EXPECT_EQ(r.value().fp, 1);
  EXPECT_EQ(r.value().tn, 1);
}

TEST(Metrics, NothingPredictedAbnormalGivesZeroPrecision) {
  Result<BinaryMetrics> r = compute_metrics({0.1f, 0.2f}, {1, 0}, 0.9f);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().precision, 0.0);
  EXPECT_EQ(r.value().recall, 0.0);
  EXPECT_EQ(r.value().f1, 0.0);
  EXPECT_DOUBLE_EQ(r.value().roc_auc, 0.0);  // the positive scored below the negative
}

TEST(Metrics, MissingClassIsAClearError) {
  Result<BinaryMetrics> r = compute_metrics({0.1f, 0.9f}, {0, 0}, 0.5f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("no abnormal examples"), std::string::npos);
  Result<BinaryMetrics> r2 = compute_metrics({0.1f}, {1}, 0.5f);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("no normal examples"), std::string::npos);
  EXPECT_FALSE(compute_metrics({}, {}, 0.5f).ok());
  EXPECT_FALSE(compute_metrics({0.1f}, {1, 0}, 0.5f).ok());
}

TEST(Metrics, StudentTQuantileMatchesTables) {
  // One-sided upper quantiles from standard t tables (4 significant digits).
  EXPECT_NEAR(student_t_upper_quantile(0.025, 1), 12.706, 1e-3);
  EXPECT_NEAR(student_t_upper_quantile(0.01, 2), 6.965, 1e-3);
  EXPECT_NEAR(student_t_upper_quantile(0.01, 7), 2.998, 1e-3);
  EXPECT_NEAR(student_t_upper_quantile(0.05, 10), 1.812, 1e-3);
  EXPECT_NEAR(student_t_upper_quantile(0.005, 30), 2.750, 1e-3);
  EXPECT_NEAR(student_t_upper_quantile(0.01, 1000), 2.330, 2e-3);  // near the normal's 2.326
  EXPECT_NEAR(student_t_upper_quantile(0.5, 5), 0.0, 1e-9);
  EXPECT_TRUE(std::isnan(student_t_upper_quantile(0, 5)));
  EXPECT_TRUE(std::isnan(student_t_upper_quantile(0.6, 5)));
  EXPECT_TRUE(std::isnan(student_t_upper_quantile(0.01, 0)));
}

}  // namespace
}  // namespace anomalens

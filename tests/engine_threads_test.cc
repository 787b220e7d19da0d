// SPDX-License-Identifier: Apache-2.0
// The builtin engine with 1, 2 and 3 threads must give bit-identical outputs (each output element
// is computed by the same kernel call whichever thread runs it), and the pool must run every
// task exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <sstream>
#include <vector>

#include "model/model.h"
#include "nn/engine.h"
#include "nn/thread_pool.h"
#include "test_util.h"

namespace anomalens {
namespace {

using testing_util::AlmBuilder;
using testing_util::fixture;

std::vector<float> random_input(const Graph& g, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> x(static_cast<size_t>(g.blobs[g.input_blob].shape.elements()));
  for (float& v : x) v = d(rng);
  return x;
}

// Runs `g` with 1, 2 and 3 threads (several runs each, so jobs follow each other on a warm
// pool) and expects the same bytes from all.
void expect_thread_invariant(const Graph& g, const std::string& what) {
  std::vector<float> first;
  for (int threads : {1, 2, 3}) {
    Result<std::unique_ptr<Engine>> e = create_engine(g, Backend::kBuiltin, EngineOptions{threads});
    ASSERT_TRUE(e.ok()) << what << ": " << e.status().to_string();
    for (uint32_t seed = 0; seed < 3; ++seed) {
      const std::vector<float> x = random_input(g, seed);
      ASSERT_TRUE(e.value()->run(x.data()).ok());
      const float* y = e.value()->output();
      const size_t n = e.value()->output_size();
      if (threads == 1) {
        first.insert(first.end(), y, y + n);
        continue;
      }
      ASSERT_EQ(std::memcmp(y, first.data() + seed * n, n * sizeof(float)), 0)
          << what << ": " << threads << " threads differ from 1 thread (input seed " << seed << ")";
    }
  }
}

TEST(EngineThreads, FixturesIdenticalAcrossThreadCounts) {
  for (const char* name : {"allops.alm", "mobilenet_v2_035.alm"}) {
    Result<Model> m = load_model_file(fixture(name));
    ASSERT_TRUE(m.ok()) << name << ": " << m.status().to_string();
    expect_thread_invariant(m.value().graph, name);
  }
}

// MobileNet/ResNet-style blocks large enough that every op type is split over the threads
// (1x1 gemm, strided 3x3 igemm, depthwise, pools, element-wise, hardswish post-pass).
TEST(EngineThreads, RandomBlocksIdenticalAcrossThreadCounts) {
  for (int c : {1, 7, 13, 40}) {
    std::mt19937 rng(static_cast<uint32_t>(c) + 1000);
    const std::string cs = std::to_string(c);
    AlmBuilder b;
    b.classifier_meta(37, 41, "rgb")
        .layer("Input in 0 1 x c=3 h=41 w=37")
        .layer("Conv stem 1 1 x s cout=" + cs + " k=3,3 s=2,2 p=1,1,1,1 w=sw b=sb act=hardswish")
        .random_tensor("sw", {c, 3, 3, 3}, &rng).random_tensor("sb", {c}, &rng)
        .layer("Conv expand 1 1 s e cout=" + std::to_string(3 * c) + " k=1,1 w=ew b=eb act=relu6")
        .random_tensor("ew", {3 * c, c, 1, 1}, &rng).random_tensor("eb", {3 * c}, &rng)
        .layer("Conv dw 1 1 e d cout=" + std::to_string(3 * c) + " k=3,3 p=1,1,1,1 g=" + std::to_string(3 * c) +
               " w=dw b=db act=relu6")
        .random_tensor("dw", {3 * c, 1, 3, 3}, &rng).random_tensor("db", {3 * c}, &rng)
        .layer("Conv proj 1 1 d p cout=" + cs + " k=1,1 w=pw act=none")
        .random_tensor("pw", {c, 3 * c, 1, 1}, &rng)
        .layer("Add res 2 1 p s r act=none")
        .layer("MaxPool mp 1 1 r mp k=3,3 s=1,1 p=1,1,1,1")
        .layer("AvgPool ap 1 1 r ap k=3,3 s=1,1 p=1,1,1,1 count_pad=0")
        .layer("Concat cat 2 1 mp ap cat")
        .layer("Conv dw2 1 1 cat d2 cout=" + std::to_string(2 * c) + " k=3,3 s=2,2 p=0,0,1,1 g=" +
               std::to_string(2 * c) + " w=d2w b=d2b act=relu")
        .random_tensor("d2w", {2 * c, 1, 3, 3}, &rng).random_tensor("d2b", {2 * c}, &rng)
        .layer("GlobalAvgPool gap 1 1 d2 g")
        .layer("Gemm fc 1 1 g out n=2 w=fw b=fb")
        .random_tensor("fw", {2, 2 * c}, &rng).random_tensor("fb", {2}, &rng);
    const std::vector<uint8_t> bytes = b.bytes();
    Result<Model> m = load_model(bytes.data(), bytes.size());
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    expect_thread_invariant(m.value().graph, "blocks c=" + cs);
  }
}

// The fused block op keeps expanded rows in a ring per thread across its bands of rows; a band
// that does not continue the thread's previous one (its first, or a stolen one) starts over.
TEST(EngineThreads, FusedExpansionsIdenticalAcrossThreadCounts) {
  std::mt19937 rng(45);
  const std::vector<uint8_t> bytes = testing_util::fused_blocks_alm(45, &rng);
  Result<Model> m = load_model(bytes.data(), bytes.size());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  expect_thread_invariant(m.value().graph, "fused blocks");
}

TEST(EngineThreads, InvalidThreadCountFails) {
  Result<Model> m = load_model_file(fixture("allops.alm"));
  ASSERT_TRUE(m.ok());
  for (int threads : {-1, 65}) {
    Result<std::unique_ptr<Engine>> e = create_engine(m.value().graph, Backend::kBuiltin, EngineOptions{threads});
    ASSERT_FALSE(e.ok()) << threads;
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(e.status().message().find(std::to_string(threads)), std::string::npos) << e.status().message();
  }
  Result<std::unique_ptr<Engine>> all = create_engine(m.value().graph, Backend::kBuiltin, EngineOptions{0});
  EXPECT_TRUE(all.ok()) << all.status().to_string();
}

// parallel_for_slots: every task once, a slot below threads(), and never two tasks of one slot
// at the same time (a per-slot "busy" flag would see it).
TEST(ThreadPool, SlotsNameOneThreadAtATime) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> busy(static_cast<size_t>(pool.threads()));
    std::vector<std::atomic<int>> hits(500);
    std::atomic<int> bad_slot{0}, overlap{0};
    for (int job = 0; job < 100; ++job) {
      for (auto& h : hits) h.store(0);
      pool.parallel_for_slots(hits.size(), [&](size_t i, size_t slot) {
        if (slot >= busy.size()) {
          bad_slot.fetch_add(1);
          return;
        }
        if (busy[slot].exchange(1) != 0) overlap.fetch_add(1);
        for (volatile int spin = 0; spin < 200; spin = spin + 1) {
        }
        hits[i].fetch_add(1);
        busy[slot].store(0);
      });
      for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << "job " << job << " task " << i;
    }
    EXPECT_EQ(bad_slot.load(), 0) << threads << " threads";
    EXPECT_EQ(overlap.load(), 0) << threads << " threads";
  }
}

TEST(ThreadPool, RunsEveryTaskOnceOverManyJobs) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
    EXPECT_EQ(pool.threads(), 1);
#else
    EXPECT_EQ(pool.threads(), threads);
#endif
    std::vector<std::atomic<int>> hits(1000);
    for (int job = 0; job < 300; ++job) {
      const size_t tasks = static_cast<size_t>(job % 17) + 1 + (job % 50 == 0 ? 900 : 0);
      for (size_t i = 0; i < tasks; ++i) hits[i].store(0);
      pool.parallel_for(tasks, [&](size_t i) { hits[i].fetch_add(1); });
      for (size_t i = 0; i < tasks; ++i) ASSERT_EQ(hits[i].load(), 1) << "job " << job << " task " << i;
    }
  }
}

}  // namespace
}  // namespace anomalens

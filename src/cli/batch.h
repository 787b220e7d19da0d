// SPDX-License-Identifier: Apache-2.0
// Batch work over many images on several threads, with output in input order.
//
// The CLI's classify and eval give each thread its own Classifier (a Classifier reuses its
// buffers and is not thread-safe) and hand out images one at a time, so a slow image holds
// up only its own thread. Results are emitted on the calling thread strictly in index order,
// as soon as the next one is ready: what a batch prints does not depend on the thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "classifier/classifier.h"

namespace anomalens {
namespace cli {

// Runs work(worker, i) for every i in [0, n) on `threads` threads (worker in [0, threads)),
// and emit(i, outcome) on the calling thread in order of i. The calling thread is one of the
// workers, so threads == 1 runs everything inline.
template <typename Outcome>
void ordered_parallel_for(size_t n, int threads, const std::function<Outcome(int worker, size_t i)>& work,
                          const std::function<void(size_t i, Outcome& outcome)>& emit) {
  threads = std::max(1, std::min<int>(threads, static_cast<int>(std::max<size_t>(n, 1))));
  if (threads == 1) {
    for (size_t i = 0; i < n; ++i) {
      Outcome o = work(0, i);
      emit(i, o);
    }
    return;
  }
  std::vector<std::optional<Outcome>> outcomes(n);  // set when ready, reset once emitted
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable done_cv;
  auto run = [&](int worker) {
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      Outcome o = work(worker, i);
      std::lock_guard<std::mutex> lock(mu);
      outcomes[i] = std::move(o);
      done_cv.notify_one();
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < threads; ++w) pool.emplace_back(run, w);
  // The calling thread emits whatever is next in order, and works when nothing is.
  size_t emitted = 0;
  while (emitted < n) {
    bool have = false;
    {
      std::unique_lock<std::mutex> lock(mu);
      // Nothing left to take: wait for the next result in order.
      if (next.load() >= n) done_cv.wait(lock, [&] { return outcomes[emitted].has_value(); });
      have = outcomes[emitted].has_value();
    }
    if (have) {
      emit(emitted, *outcomes[emitted]);  // no lock needed: no worker writes a filled slot
      outcomes[emitted].reset();          // free what was printed
      ++emitted;
      continue;
    }
    const size_t i = next.fetch_add(1);
    if (i < n) {
      Outcome o = work(0, i);
      std::lock_guard<std::mutex> lock(mu);
      outcomes[i] = std::move(o);
    }
  }
  for (std::thread& t : pool) t.join();
}

// One classifier of `model_file` per batch thread (no more than there are items), each set up
// by `configure` (threshold, decode limits, ...). Fails with the first error.
inline Result<std::vector<std::unique_ptr<Classifier>>> batch_classifiers(
    const std::string& model_file, Backend backend, int threads, size_t items,
    const std::function<Status(Classifier&)>& configure) {
  const int count = std::max(1, std::min<int>(threads, static_cast<int>(std::min<size_t>(items, 64))));
  std::vector<std::unique_ptr<Classifier>> out;
  for (int i = 0; i < count; ++i) {
    Result<std::unique_ptr<Classifier>> created = Classifier::create_from_file(model_file, backend);
    if (!created.ok()) return created.status();
    Status s = configure(*created.value());
    if (!s.ok()) return s;
    out.push_back(std::move(created).value());
  }
  return out;
}

}  // namespace cli
}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
#include "nn/thread_pool.h"

#include <chrono>
#include <thread>

namespace anomalens {
namespace {

constexpr int kTaskBits = 22;
constexpr uint64_t kTaskMask = (uint64_t{1} << kTaskBits) - 1;
constexpr int kGenerationShift = 2 * kTaskBits;
constexpr uint64_t kGenerationMask = (uint64_t{1} << (64 - kGenerationShift)) - 1;

uint64_t generation_of(uint64_t range) { return range >> kGenerationShift; }
uint64_t end_of(uint64_t range) { return (range >> kTaskBits) & kTaskMask; }
uint64_t next_of(uint64_t range) { return range & kTaskMask; }
uint64_t make_range(uint64_t generation, uint64_t begin, uint64_t end) {
  return generation << kGenerationShift | end << kTaskBits | begin;
}

// Claims one task of job `generation` from `range`: the first one (the owner walks forward) or
// the last one (a thief walks backward, away from the owner). False when the range is empty or
// belongs to another job.
bool claim(std::atomic<uint64_t>& range, uint64_t generation, bool from_back, size_t* task) {
  uint64_t r = range.load(std::memory_order_acquire);
  for (;;) {
    if (generation_of(r) != generation || next_of(r) >= end_of(r)) return false;
    const uint64_t claimed = from_back ? r - (uint64_t{1} << kTaskBits) : r + 1;
    if (range.compare_exchange_weak(r, claimed, std::memory_order_acq_rel, std::memory_order_acquire)) {
      *task = static_cast<size_t>(from_back ? end_of(r) - 1 : next_of(r));
      return true;
    }
  }
}

// How long a worker keeps polling for the next job before it sleeps. Ops follow each other
// within microseconds during an inference, but the caller sometimes needs longer between two
// jobs (a serial op, or its own wake-up after it slept waiting for this worker's last task), and
// a worker that slept must then be woken too, which costs tens of microseconds on a VM. With
// 50 us, MobileNetV2-1.0 @224 in the pthread wasm build put the worker to sleep about 9 times per
// inference; with 2 ms, about once (between inferences). pthreadpool, which XNNPACK uses, also
// spins for a long while before it waits on a futex. The cost is at most 2 ms of one core
// polling after the last op of an inference.
constexpr std::chrono::microseconds kSpin(2000);
// How long the caller polls for workers still inside a task before it sleeps until the last one
// finishes. Usually they finish within one task's time (tens of microseconds on MobileNetV2,
// 8 tasks per op at 2 threads); a sleep costs a wake-up of about as much. But a worker the OS has preempted
// (a busy machine, more threads than free cores) may not run again for milliseconds, and a
// caller spinning all that time only keeps the core it may be waiting for. (In wasm,
// sched_yield does nothing, so sleeping is the only way to give the core away.)
constexpr std::chrono::microseconds kCallerSpin(200);

#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
constexpr bool kHaveThreads = false;  // wasm built without -pthread: the caller does all work
#else
constexpr bool kHaveThreads = true;
#endif

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (kHaveThreads && threads > 1) {
    worker_args_.reserve(static_cast<size_t>(threads - 1));
    for (int i = 1; i < threads; ++i) {
      worker_args_.push_back(Worker{this, static_cast<size_t>(i)});
      pthread_t t;
      if (pthread_create(&t, nullptr, &ThreadPool::worker_main, &worker_args_.back()) != 0) {
        worker_args_.pop_back();
        break;
      }
      workers_.push_back(t);
    }
  }
  // Workers started so far only read ranges_ once a job is published, after this.
  ranges_ = std::vector<Range>(workers_.size() + 1);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  for (pthread_t t : workers_) pthread_join(t, nullptr);
}

void* ThreadPool::worker_main(void* worker) {
  const Worker* w = static_cast<const Worker*>(worker);
  w->pool->worker_loop(w->slot);
  return nullptr;
}

void ThreadPool::worker_loop(size_t slot) {
  uint64_t seen = generation_.load();
  for (;;) {
    const auto spin_end = std::chrono::steady_clock::now() + kSpin;
    for (unsigned i = 1; generation_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed); ++i) {
      if (i % 64 != 0) continue;
      // On a busy machine this worker may share a core with the caller: let it run.
      std::this_thread::yield();
      if (std::chrono::steady_clock::now() > spin_end) {
        std::unique_lock<std::mutex> lock(mu_);
        // seq_cst on sleepers_ and generation_: either run() sees this sleeper and notifies, or the
        // predicate sees the new job.
        sleepers_.fetch_add(1);
        cv_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
        sleepers_.fetch_sub(1);
        break;
      }
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    const size_t n = work(slot, seen);
    if (n) {
      done_.fetch_add(n);  // seq_cst, paired with caller_sleeping_ (see run())
      if (caller_sleeping_.load()) {
        std::lock_guard<std::mutex> lock(done_mu_);
        done_cv_.notify_one();
      }
    }
  }
}

size_t ThreadPool::work(size_t slot, uint64_t generation) {
  size_t ran = 0;
  size_t task;
  // A claimed task keeps its job from completing, so fn_ and ctx_ are still this job's.
  while (claim(ranges_[slot].word, generation, /*from_back=*/false, &task)) {
    fn_(ctx_, task, slot);
    ++ran;
  }
  for (size_t d = 1; d < ranges_.size(); ++d) {
    std::atomic<uint64_t>& victim = ranges_[(slot + d) % ranges_.size()].word;
    while (claim(victim, generation, /*from_back=*/true, &task)) {
      fn_(ctx_, task, slot);
      ++ran;
    }
  }
  return ran;
}

void ThreadPool::run(size_t tasks, TaskFn fn, void* ctx) {
  if (tasks == 0) return;
  if (workers_.empty() || tasks == 1 || tasks > kMaxTasks) {
    for (size_t i = 0; i < tasks; ++i) fn(ctx, i, 0);  // all on the caller: slot 0
    return;
  }
  fn_ = fn;
  ctx_ = ctx;
  done_.store(0, std::memory_order_relaxed);
  const uint64_t generation = (generation_.load() + 1) & kGenerationMask;
  const size_t slots = ranges_.size();
  for (size_t k = 0; k < slots; ++k) {
    ranges_[k].word.store(make_range(generation, tasks * k / slots, tasks * (k + 1) / slots),
                          std::memory_order_relaxed);
  }
  generation_.store(generation);  // seq_cst: publishes the ranges (see sleepers_ below)
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mu_); }
    cv_.notify_all();
  }
  const size_t finished = work(0, generation);
  // Workers still inside a task of this job: poll briefly, then sleep until the last one is done.
  const auto all_done = [&] { return done_.load() + finished >= tasks; };
  const auto spin_end = std::chrono::steady_clock::now() + kCallerSpin;
  for (unsigned i = 1; !all_done(); ++i) {
    if (i % 64 != 0 || std::chrono::steady_clock::now() < spin_end) continue;
    std::unique_lock<std::mutex> lock(done_mu_);
    // seq_cst on caller_sleeping_ and done_: either a finishing worker sees this flag and
    // notifies (under done_mu_, so not between the predicate check and the sleep), or the
    // predicate sees its count.
    caller_sleeping_.store(true);
    done_cv_.wait(lock, all_done);
    caller_sleeping_.store(false);
    break;
  }
}

}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
#include "nn/thread_pool.h"

#include <chrono>
#include <thread>

namespace anomalens {
namespace {

constexpr int kTaskBits = 22;
constexpr uint64_t kTaskMask = (uint64_t{1} << kTaskBits) - 1;
constexpr int kGenerationShift = 2 * kTaskBits;

uint64_t generation_of(uint64_t job) { return job >> kGenerationShift; }
uint64_t tasks_of(uint64_t job) { return (job >> kTaskBits) & kTaskMask; }
uint64_t next_of(uint64_t job) { return job & kTaskMask; }

// How long a worker keeps polling for the next job before it sleeps. Ops follow each other
// within microseconds during an inference; a condition-variable wake-up costs tens of them.
constexpr std::chrono::microseconds kSpin(50);
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
  if (!kHaveThreads) return;
  for (int i = 1; i < threads; ++i) {
    pthread_t t;
    if (pthread_create(&t, nullptr, &ThreadPool::worker_main, this) != 0) break;
    workers_.push_back(t);
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  for (pthread_t t : workers_) pthread_join(t, nullptr);
}

void* ThreadPool::worker_main(void* self) {
  static_cast<ThreadPool*>(self)->worker_loop();
  return nullptr;
}

void ThreadPool::worker_loop() {
  uint64_t seen = generation_of(job_.load());
  for (;;) {
    const auto spin_end = std::chrono::steady_clock::now() + kSpin;
    for (unsigned i = 1; generation_of(job_.load(std::memory_order_acquire)) == seen && !stop_.load(std::memory_order_relaxed); ++i) {
      if (i % 64 != 0) continue;
      // On a busy machine this worker may share a core with the caller: let it run.
      std::this_thread::yield();
      if (std::chrono::steady_clock::now() > spin_end) {
        std::unique_lock<std::mutex> lock(mu_);
        // seq_cst on sleepers_ and job_: either run() sees this sleeper and notifies, or the
        // predicate sees the new job.
        sleepers_.fetch_add(1);
        cv_.wait(lock, [&] { return stop_.load() || generation_of(job_.load()) != seen; });
        sleepers_.fetch_sub(1);
        break;
      }
    }
    if (stop_.load()) return;
    seen = generation_of(job_.load(std::memory_order_acquire));
    const size_t n = work(seen);
    if (n) {
      done_.fetch_add(n);  // seq_cst, paired with caller_sleeping_ (see run())
      if (caller_sleeping_.load()) {
        std::lock_guard<std::mutex> lock(done_mu_);
        done_cv_.notify_one();
      }
    }
  }
}

size_t ThreadPool::work(uint64_t generation) {
  size_t ran = 0;
  uint64_t job = job_.load(std::memory_order_acquire);
  for (;;) {
    if (generation_of(job) != generation || next_of(job) >= tasks_of(job)) return ran;
    if (!job_.compare_exchange_weak(job, job + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    // A claimed task keeps its job from completing, so fn_ and ctx_ are still this job's.
    fn_(ctx_, static_cast<size_t>(next_of(job)));
    ++ran;
    job = job_.load(std::memory_order_acquire);
  }
}

void ThreadPool::run(size_t tasks, TaskFn fn, void* ctx) {
  if (tasks == 0) return;
  if (workers_.empty() || tasks == 1 || tasks > kMaxTasks) {
    for (size_t i = 0; i < tasks; ++i) fn(ctx, i);
    return;
  }
  fn_ = fn;
  ctx_ = ctx;
  done_.store(0, std::memory_order_relaxed);
  const uint64_t generation = (generation_of(job_.load()) + 1) & ((uint64_t{1} << (64 - kGenerationShift)) - 1);
  job_.store(generation << kGenerationShift | uint64_t{tasks} << kTaskBits);
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mu_); }
    cv_.notify_all();
  }
  const size_t finished = work(generation);
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

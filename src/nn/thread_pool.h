// SPDX-License-Identifier: Apache-2.0
// ThreadPool: a small persistent pool for the builtin engine. The calling thread takes part in
// every job; `threads - 1` workers are started once, spin briefly between jobs (an inference is
// a chain of short jobs, one per op) and then sleep on a condition variable. The caller, once
// its share is done, also spins only briefly before sleeping until the last task finishes, so
// a worker preempted mid-task (busy machine) gets a core back instead of a spinning caller.
//
//   ThreadPool pool(2);                      // one worker + the caller
//   pool.parallel_for(blocks, [&](size_t i) { compute_block(i); });   // returns when all done
//
// Tasks are split into one contiguous range per thread (the caller takes the first). A thread
// runs its own range front to back, then steals from the back of the others'. The fixed split
// keeps data in the cache of the core that wrote it: an op's output rows are mostly read, in
// the next op, by the thread that computed them (a shared counter handed rows out in turns and
// every op then read half its input from the other core's cache). Stealing means a worker that
// starts late (or never: a build without threads, a failed thread start) only makes the others
// do more. Which thread runs a task never changes what the task computes. parallel_for
// allocates nothing. Not reentrant: one job at a time, from one calling thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include <pthread.h>

namespace anomalens {

class ThreadPool {
 public:
  // `threads` counts the caller: 1 starts no worker. Workers that cannot be started (no thread
  // support in this build, or the system refuses) are left out; threads() tells how many run.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(ctx, i, slot) once for every i in [0, tasks); returns after all calls have
  // returned. `slot` (< threads()) names the thread that runs the task (0 = the caller): no two
  // tasks with the same slot ever run at the same time, and a thread runs its own range of
  // tasks in increasing order before it steals others' from their back.
  using TaskFn = void (*)(void* ctx, size_t task, size_t slot);
  void run(size_t tasks, TaskFn fn, void* ctx);

  template <class F>
  void parallel_for(size_t tasks, const F& f) {
    run(tasks, [](void* c, size_t i, size_t) { (*static_cast<const F*>(c))(i); },
        const_cast<void*>(static_cast<const void*>(&f)));
  }
  // f(task, slot): for tasks that keep per-thread scratch state between them.
  template <class F>
  void parallel_for_slots(size_t tasks, const F& f) {
    run(tasks, [](void* c, size_t i, size_t slot) { (*static_cast<const F*>(c))(i, slot); },
        const_cast<void*>(static_cast<const void*>(&f)));
  }

  // Largest task count one job may have.
  static constexpr size_t kMaxTasks = (size_t{1} << 22) - 1;

 private:
  struct Worker {
    ThreadPool* pool;
    size_t slot;  // its task range; the caller's is 0
  };
  static void* worker_main(void* worker);
  void worker_loop(size_t slot);
  // Runs tasks of job `generation`, its own range first, then stolen ones, until none is left;
  // returns how many it ran.
  size_t work(size_t slot, uint64_t generation);

  // One cache line per range so that claiming from one never slows the others. Word:
  // generation (20 bits) | end (22 bits) | next (22 bits). The generation lets a late worker
  // claim a task only from the job it saw published.
  struct alignas(64) Range {
    std::atomic<uint64_t> word{0};
  };
  std::vector<Range> ranges_;  // one per thread
  alignas(64) std::atomic<uint64_t> generation_{0};
  std::atomic<size_t> done_{0};
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;  // sleeping workers wait here for the next job
  std::mutex done_mu_;
  std::condition_variable done_cv_;  // the caller waits here for the last task of a job
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::vector<Worker> worker_args_;  // reserved up front: started threads hold pointers into it
  std::vector<pthread_t> workers_;  // joined in the destructor
};

}  // namespace anomalens

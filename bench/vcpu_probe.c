// SPDX-License-Identifier: Apache-2.0
// How steadily this machine's vCPUs run: one busy thread pinned to each of CPUs 0 and 1 counts
// fixed blocks of arithmetic per 10 ms window for 10 s, then reports how many windows ran below
// 70% (and 30%) of that CPU's fastest window, the longest such stretch, and whether slow windows
// hit both CPUs at once. Used to tell the host's noise from the thread pool's in the two-thread
// benchmark (docs/BENCHMARKS.md). Native, no dependencies:
//
//   gcc -O2 -pthread bench/vcpu_probe.c -o build/vcpu_probe && build/vcpu_probe [1]
//
// With the argument 1, only CPU 0 is kept busy (the other idles): a host that caps the VM's
// total CPU time slows CPU 0 only when both are busy.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { kCpus = 2, kWindows = 1000 };  // 1000 windows of 10 ms
static const double kWindowSeconds = 0.01;

static uint64_t counts[kCpus][kWindows];
static double start;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void* spin(void* arg) {
  const int cpu = (int)(intptr_t)arg;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  volatile double x = 1.0;
  for (;;) {
    const int w = (int)((now() - start) / kWindowSeconds);
    if (w >= kWindows) return NULL;
    for (int i = 0; i < 1000; i++) x = x * 1.0000001 + 1e-9;  // about 4 us of dependent work
    counts[cpu][w]++;
  }
}

int main(int argc, char** argv) {
  const int busy = argc > 1 && strcmp(argv[1], "1") == 0 ? 1 : kCpus;
  start = now();
  pthread_t threads[kCpus];
  for (int c = 0; c < busy; c++) pthread_create(&threads[c], NULL, spin, (void*)(intptr_t)c);
  for (int c = 0; c < busy; c++) pthread_join(threads[c], NULL);
  if (busy == 1) {  // report CPU 0 alone
    for (int w = 0; w < kWindows; w++) counts[1][w] = counts[0][w];
  }

  uint64_t best[kCpus] = {0};
  for (int c = 0; c < kCpus; c++)
    for (int w = 0; w < kWindows; w++) if (counts[c][w] > best[c]) best[c] = counts[c][w];
  int slow_both = 0, slow_one = 0;
  for (int w = 0; w < kWindows; w++) {
    const int s0 = counts[0][w] < best[0] * 0.7, s1 = counts[1][w] < best[1] * 0.7;
    slow_both += s0 && s1;
    slow_one += s0 != s1;
  }
  for (int c = 0; c < kCpus; c++) {
    int below70 = 0, below30 = 0, stretch = 0, longest = 0;
    double mean = 0;
    for (int w = 0; w < kWindows; w++) {
      const double speed = (double)counts[c][w] / (double)best[c];
      mean += speed / kWindows;
      below30 += speed < 0.3;
      if (speed < 0.7) {
        below70++;
        if (++stretch > longest) longest = stretch;
      } else {
        stretch = 0;
      }
    }
    printf("cpu%d: mean speed %.3f of its fastest window; windows below 70%%: %d, below 30%%: %d "
           "(of %d); longest stretch below 70%%: %d ms\n",
           c, mean, below70, below30, kWindows, longest * 10);
  }
  printf("windows below 70%% on both cpus: %d, on one only: %d\n", slow_both, slow_one);
  return 0;
}

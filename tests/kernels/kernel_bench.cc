// SPDX-License-Identifier: Apache-2.0
// Micro-benchmark of the gemm/igemm/dwconv kernels on MobileNet-like shapes; prints GFLOP/s
// (2 flops per multiply-add, best of several timed runs after a warm-up).
//
//   node --no-liftoff build/wasm/tests/kernels/kernel_bench.js
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <limits>
#include <random>
#include <vector>

#include "kernels/ukernels.h"

namespace {

constexpr size_t kExtra = ANOMALENS_EXTRA_BYTES / sizeof(float);

std::vector<float> Random(size_t n) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

template <typename F>
double BestSeconds(F&& run) {
  run();  // warm-up (and tier-up in V8)
  double best = std::numeric_limits<double>::infinity();
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < 50; r++) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
    if (r >= 3 && std::chrono::duration<double>(t1 - start).count() > 0.25) break;
  }
  return best;
}

struct GemmKernel {
  const char* name;
  anomalens_f32_gemm_minmax_ukernel_fn fn;
  size_t mr;
};
struct IgemmKernel {
  const char* name;
  anomalens_f32_igemm_minmax_ukernel_fn fn;
  size_t mr;
};

const anomalens_f32_minmax_params kParams = {-std::numeric_limits<float>::infinity(),
                                             std::numeric_limits<float>::infinity()};

// One benchmark case: buffers are built once; Run() returns GFLOP/s of one timing.
struct Case {
  std::string label;
  std::function<double()> run;
  std::vector<double> results;
};

// 1x1 conv 56x56x64 -> 64 as one gemm with M = 3136.
Case MakeGemm(const GemmKernel& kern) {
  const size_t h = 56, w = 56, k = 64, n = 64, nr = 8, m = h * w;
  auto a = std::make_shared<std::vector<float>>(Random(m * k + kExtra));
  std::vector<float> wt = Random(n * k), bias = Random(n);
  auto packed = std::make_shared<std::vector<float>>(
      anomalens_pack_f32_gemm_oi_w(1, n, k, nr, wt.data(), bias.data(), nullptr));
  anomalens_pack_f32_gemm_oi_w(1, n, k, nr, wt.data(), bias.data(), packed->data());
  auto c = std::make_shared<std::vector<float>>(m * n);
  return {std::string("gemm  1x1 56x56x64->64   ") + kern.name, [=] {
            const double s = BestSeconds([&] {
              for (size_t i = 0; i < m; i += kern.mr) {
                kern.fn(std::min(kern.mr, m - i), n, k * sizeof(float), a->data() + i * k,
                        k * sizeof(float), packed->data(), c->data() + i * n, n * sizeof(float),
                        nr * sizeof(float), &kParams);
              }
            });
            return 2.0 * m * n * k / s * 1e-9;
          }, {}};
}

// 3x3 conv, stride 1, pad 1, 56x56x64 -> 64 through an indirection buffer.
// With nblock_outer, each call covers one NR block of output channels and the M tiles run
// inside, so that block's packed weights stay in L1 (the other order streams all weights per
// M tile).
Case MakeIgemm(const IgemmKernel& kern, bool nblock_outer) {
  const size_t h = 56, w = 56, k = 64, n = 64, nr = 8, m = h * w, taps = 9;
  auto input = std::make_shared<std::vector<float>>(Random(m * k + kExtra));
  auto zero = std::make_shared<std::vector<float>>(k + kExtra, 0.0f);
  std::vector<float> wt = Random(n * k * taps), bias = Random(n);
  auto packed = std::make_shared<std::vector<float>>(
      anomalens_pack_f32_igemm_oihw_w(1, n, k, taps, nr, wt.data(), bias.data(), nullptr));
  anomalens_pack_f32_igemm_oihw_w(1, n, k, taps, nr, wt.data(), bias.data(), packed->data());
  const size_t tiles = (m + kern.mr - 1) / kern.mr;
  auto ind = std::make_shared<std::vector<const float*>>(tiles * taps * kern.mr);
  for (size_t tile = 0; tile < tiles; tile++) {
    for (size_t t = 0; t < taps; t++) {
      for (size_t i = 0; i < kern.mr; i++) {
        const size_t p = std::min(tile * kern.mr + i, m - 1);
        const long y = long(p / w) + long(t / 3) - 1, x = long(p % w) + long(t % 3) - 1;
        const bool inside = y >= 0 && y < long(h) && x >= 0 && x < long(w);
        (*ind)[(tile * taps + t) * kern.mr + i] =
            inside ? input->data() + (size_t(y) * w + size_t(x)) * k : zero->data();
      }
    }
  }
  auto c = std::make_shared<std::vector<float>>(m * n);
  // The indirection buffer points into `input`, which the lambda must keep alive.
  const size_t block_floats = nr + taps * k * nr;
  return {std::string(nblock_outer ? "igemm 3x3 56x56x64->64 N ": "igemm 3x3 56x56x64->64   ") + kern.name, [=, keep = input] {
            const double s = BestSeconds([&] {
              if (nblock_outer) {
                for (size_t n0 = 0; n0 < n; n0 += nr) {
                  for (size_t tile = 0; tile < tiles; tile++) {
                    const size_t i = tile * kern.mr;
                    kern.fn(std::min(kern.mr, m - i), std::min(nr, n - n0), k * sizeof(float),
                            taps * kern.mr * sizeof(void*), ind->data() + tile * taps * kern.mr,
                            packed->data() + n0 / nr * block_floats, c->data() + i * n + n0,
                            n * sizeof(float), nr * sizeof(float), 0, zero->data(), &kParams);
                  }
                }
                return;
              }
              for (size_t tile = 0; tile < tiles; tile++) {
                const size_t i = tile * kern.mr;
                kern.fn(std::min(kern.mr, m - i), n, k * sizeof(float),
                        taps * kern.mr * sizeof(void*), ind->data() + tile * taps * kern.mr,
                        packed->data(), c->data() + i * n, n * sizeof(float), nr * sizeof(float),
                        0, zero->data(), &kParams);
              }
            });
            return 2.0 * m * n * k * taps / s * 1e-9;
          }, {}};
}

// Depthwise 3x3, stride 1, pad 1, 112x112x32, one kernel call per output row.
Case MakeDwconv(const char* name, anomalens_f32_dwconv_minmax_ukernel_fn fn, size_t ct) {
  const size_t h = 112, w = 112, ch = 32, taps = 9;
  auto input = std::make_shared<std::vector<float>>(Random(h * w * ch + kExtra));
  auto zero = std::make_shared<std::vector<float>>(ch + kExtra, 0.0f);
  std::vector<float> wt = Random(ch * taps), bias = Random(ch);
  auto packed = std::make_shared<std::vector<float>>(
      anomalens_pack_f32_dwconv_oihw_w(ch, taps, ct, wt.data(), bias.data(), nullptr));
  anomalens_pack_f32_dwconv_oihw_w(ch, taps, ct, wt.data(), bias.data(), packed->data());
  auto ind = std::make_shared<std::vector<const float*>>(h * w * taps);
  for (size_t p = 0; p < h * w; p++) {
    for (size_t t = 0; t < taps; t++) {
      const long y = long(p / w) + long(t / 3) - 1, x = long(p % w) + long(t % 3) - 1;
      const bool inside = y >= 0 && y < long(h) && x >= 0 && x < long(w);
      (*ind)[p * taps + t] =
          inside ? input->data() + (size_t(y) * w + size_t(x)) * ch : zero->data();
    }
  }
  auto out = std::make_shared<std::vector<float>>(h * w * ch);
  return {std::string("dwconv 3x3 112x112x32    ") + name, [=, keep = input] {
            const double s = BestSeconds([&] {
              for (size_t y = 0; y < h; y++) {
                fn(ch, w, taps, ind->data() + y * w * taps, packed->data(),
                   out->data() + y * w * ch, taps * sizeof(void*), 0, 0, zero->data(), &kParams);
              }
            });
            return 2.0 * h * w * ch * taps / s * 1e-9;
          }, {}};
}

}  // namespace

int main(int argc, char** argv) {
  // Rounds interleave the kernels so that load from other processes hits all of them alike.
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  const anomalens_kernel_config* cfg = anomalens_kernel_config_get();
  std::printf("selected config: %s (gemm %zux%zu, igemm %zux%zu, dwconv ct %zu)\n", cfg->isa,
              cfg->gemm_mr, cfg->gemm_nr, cfg->igemm_mr, cfg->igemm_nr, cfg->dwconv_ct);
  std::vector<GemmKernel> gemms = {
      {"4x8__scalar", anomalens_f32_gemm_minmax_ukernel_4x8__scalar, 4}};
  std::vector<IgemmKernel> igemms = {
      {"4x8__scalar", anomalens_f32_igemm_minmax_ukernel_4x8__scalar, 4}};
#if defined(__wasm_simd128__)
  gemms.push_back({"4x8__wasmsimd_splat", anomalens_f32_gemm_minmax_ukernel_4x8__wasmsimd_splat, 4});
  gemms.push_back({"5x8__wasmsimd_splat", anomalens_f32_gemm_minmax_ukernel_5x8__wasmsimd_splat, 5});
  gemms.push_back({"6x8__wasmsimd_splat", anomalens_f32_gemm_minmax_ukernel_6x8__wasmsimd_splat, 6});
  gemms.push_back(
      {"4x8__wasmsimd_loadsplat", anomalens_f32_gemm_minmax_ukernel_4x8__wasmsimd_loadsplat, 4});
  gemms.push_back(
      {"5x8__wasmsimd_loadsplat", anomalens_f32_gemm_minmax_ukernel_5x8__wasmsimd_loadsplat, 5});
  gemms.push_back(
      {"6x8__wasmsimd_loadsplat", anomalens_f32_gemm_minmax_ukernel_6x8__wasmsimd_loadsplat, 6});
  igemms.push_back(
      {"4x8__wasmsimd_splat", anomalens_f32_igemm_minmax_ukernel_4x8__wasmsimd_splat, 4});
  igemms.push_back(
      {"5x8__wasmsimd_splat", anomalens_f32_igemm_minmax_ukernel_5x8__wasmsimd_splat, 5});
  igemms.push_back(
      {"6x8__wasmsimd_splat", anomalens_f32_igemm_minmax_ukernel_6x8__wasmsimd_splat, 6});
  igemms.push_back(
      {"4x8__wasmsimd_loadsplat", anomalens_f32_igemm_minmax_ukernel_4x8__wasmsimd_loadsplat, 4});
  igemms.push_back(
      {"5x8__wasmsimd_loadsplat", anomalens_f32_igemm_minmax_ukernel_5x8__wasmsimd_loadsplat, 5});
  igemms.push_back(
      {"6x8__wasmsimd_loadsplat", anomalens_f32_igemm_minmax_ukernel_6x8__wasmsimd_loadsplat, 6});
#endif
  std::vector<Case> cases;
  for (const GemmKernel& g : gemms) cases.push_back(MakeGemm(g));
  for (const IgemmKernel& g : igemms) cases.push_back(MakeIgemm(g, false));
  for (const IgemmKernel& g : igemms) cases.push_back(MakeIgemm(g, true));
  cases.push_back(MakeDwconv("4c__scalar", anomalens_f32_dwconv_minmax_ukernel_4c__scalar, 4));
#if defined(__wasm_simd128__)
  cases.push_back(MakeDwconv("4c__wasmsimd", anomalens_f32_dwconv_minmax_ukernel_4c__wasmsimd, 4));
#endif
  // An optional second argument keeps only the cases whose label contains it.
  if (argc > 2) {
    cases.erase(std::remove_if(cases.begin(), cases.end(),
                               [&](const Case& c) { return c.label.find(argv[2]) == std::string::npos; }),
                cases.end());
  }
  for (int r = 0; r < rounds; r++) {
    for (Case& c : cases) c.results.push_back(c.run());
  }
  std::printf("%-50s %10s %10s  (GFLOP/s over %d rounds)\n", "case", "best", "median", rounds);
  for (Case& c : cases) {
    std::sort(c.results.begin(), c.results.end());
    std::printf("%-50s %10.2f %10.2f\n", c.label.c_str(), c.results.back(),
                c.results[c.results.size() / 2]);
  }
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// Micro-kernel tests: every kernel of the scalar config always, the wasmsimd kernels when built
// with -msimd128 (run under node), plus the packing functions and the configs.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "testers.h"
#include "kernels/ukernels.h"

using anomalens_test::BinaryOp;
using anomalens_test::Dwconv3x3Tester;
using anomalens_test::DwconvTester;
using anomalens_test::GemmTester;
using anomalens_test::IgemmTester;
using anomalens_test::PoolTester;
using anomalens_test::UnaryOp;

// ---- GEMM / IGEMM: one suite per kernel. ----

#define ANOMALENS_GEMM_TESTS(SUITE, FN, MR, NR)                                           \
  TEST(SUITE, k_eq_4) { GemmTester().mr(MR).n(NR).k(4).Test(FN, MR, NR); }               \
  TEST(SUITE, k_lt_4) {                                                                   \
    for (size_t k = 1; k < 4; k++) GemmTester().mr(MR).n(NR).k(k).Test(FN, MR, NR);       \
  }                                                                                       \
  TEST(SUITE, k_gt_4) {                                                                   \
    for (size_t k = 5; k < 8; k++) GemmTester().mr(MR).n(NR).k(k).Test(FN, MR, NR);       \
  }                                                                                       \
  TEST(SUITE, k_div_4) {                                                                  \
    for (size_t k = 8; k <= 40; k += 4) GemmTester().mr(MR).n(NR).k(k).Test(FN, MR, NR);  \
  }                                                                                       \
  TEST(SUITE, n_lt_nr) {                                                                  \
    for (size_t n = 1; n < NR; n++)                                                       \
      for (size_t k = 1; k <= 9; k += 2) GemmTester().mr(MR).n(n).k(k).Test(FN, MR, NR);  \
  }                                                                                       \
  TEST(SUITE, n_gt_nr) {                                                                  \
    for (size_t n = NR + 1; n < 3 * NR; n++)                                              \
      for (size_t k = 1; k <= 9; k += 4) GemmTester().mr(MR).n(n).k(k).Test(FN, MR, NR);  \
  }                                                                                       \
  TEST(SUITE, subtile_mr) {                                                               \
    for (size_t m = 1; m <= MR; m++)                                                      \
      for (size_t n : {1, 7, 8, 13, 16})                                                  \
        for (size_t k : {1, 4, 7, 13}) GemmTester().mr(m).n(n).k(k).Test(FN, MR, NR);     \
  }                                                                                       \
  TEST(SUITE, strided_a) {                                                                \
    for (size_t k : {1, 5, 13}) GemmTester().mr(MR).n(13).k(k).a_stride(k + 3).Test(FN, MR, NR); \
  }                                                                                       \
  TEST(SUITE, strided_c) {                                                                \
    for (size_t m = 1; m <= MR; m++)                                                      \
      GemmTester().mr(m).n(11).k(7).cm_stride(17).Test(FN, MR, NR);                       \
  }                                                                                       \
  TEST(SUITE, qmin) { GemmTester().mr(MR).n(13).k(9).qmin(128).Test(FN, MR, NR); }        \
  TEST(SUITE, qmax) { GemmTester().mr(MR).n(13).k(9).qmax(128).Test(FN, MR, NR); }        \
  TEST(SUITE, large) {                                                                    \
    GemmTester().mr(MR).n(127).k(127).Test(FN, MR, NR);                                   \
    GemmTester().mr(1).n(64).k(576).Test(FN, MR, NR);                                     \
  }

#define ANOMALENS_IGEMM_TESTS(SUITE, FN, MR, NR)                                          \
  TEST(SUITE, k_eq_4) { IgemmTester().mr(MR).n(NR).k(4).Test(FN, MR, NR); }              \
  TEST(SUITE, k_lt_4) {                                                                   \
    for (size_t k = 1; k < 4; k++) IgemmTester().mr(MR).n(NR).k(k).taps(3).Test(FN, MR, NR); \
  }                                                                                       \
  TEST(SUITE, k_gt_4) {                                                                   \
    for (size_t k = 5; k < 8; k++) IgemmTester().mr(MR).n(NR).k(k).taps(3).Test(FN, MR, NR); \
  }                                                                                       \
  TEST(SUITE, k_div_4) {                                                                  \
    for (size_t k = 8; k <= 40; k += 8) IgemmTester().mr(MR).n(NR).k(k).taps(2).Test(FN, MR, NR); \
  }                                                                                       \
  TEST(SUITE, n_lt_nr) {                                                                  \
    for (size_t n = 1; n < NR; n++)                                                       \
      for (size_t k = 1; k <= 9; k += 4)                                                  \
        IgemmTester().mr(MR).n(n).k(k).taps(2).Test(FN, MR, NR);                          \
  }                                                                                       \
  TEST(SUITE, n_gt_nr) {                                                                  \
    for (size_t n = NR + 1; n < 3 * NR; n++)                                              \
      IgemmTester().mr(MR).n(n).k(5).taps(2).Test(FN, MR, NR);                            \
  }                                                                                       \
  TEST(SUITE, subtile_mr) {                                                               \
    for (size_t m = 1; m <= MR; m++)                                                      \
      for (size_t n : {1, 7, 13, 16})                                                     \
        for (size_t k : {1, 4, 7}) IgemmTester().mr(m).n(n).k(k).taps(3).Test(FN, MR, NR); \
  }                                                                                       \
  TEST(SUITE, taps) {                                                                     \
    for (size_t t : {1, 2, 9, 25}) IgemmTester().mr(MR).n(13).k(3).taps(t).Test(FN, MR, NR); \
  }                                                                                       \
  TEST(SUITE, a_offset) {                                                                 \
    for (size_t m = 1; m <= MR; m++)                                                      \
      IgemmTester().mr(m).n(13).k(7).taps(3).a_offset(37).Test(FN, MR, NR);               \
  }                                                                                       \
  TEST(SUITE, zero) {                                                                     \
    for (size_t every : {1, 2, 3})                                                        \
      for (size_t m = 1; m <= MR; m++)                                                    \
        IgemmTester().mr(m).n(13).k(7).taps(9).a_offset(19).zero_every(every).Test(FN, MR, NR); \
  }                                                                                       \
  TEST(SUITE, strided_c) { IgemmTester().mr(MR).n(11).k(5).taps(3).cm_stride(19).Test(FN, MR, NR); } \
  TEST(SUITE, qmin) { IgemmTester().mr(MR).n(13).k(5).taps(9).qmin(128).Test(FN, MR, NR); } \
  TEST(SUITE, qmax) { IgemmTester().mr(MR).n(13).k(5).taps(9).qmax(128).Test(FN, MR, NR); } \
  TEST(SUITE, large) { IgemmTester().mr(MR).n(64).k(64).taps(9).Test(FN, MR, NR); }

#define ANOMALENS_DWCONV_TESTS(SUITE, FN, CT)                                             \
  TEST(SUITE, kernel_size_9) {                                                            \
    for (size_t c : {1, 2, 3, 4, 5, 7, 8, 13, 32, 127})                                   \
      DwconvTester().channels(c).kernel_size(9).width(3).Test(FN, CT);                    \
  }                                                                                       \
  TEST(SUITE, kernel_size_any) {                                                          \
    for (size_t ks : {1, 2, 4, 25})                                                       \
      for (size_t c : {1, 3, 4, 7, 13})                                                   \
        DwconvTester().channels(c).kernel_size(ks).width(2).Test(FN, CT);                 \
  }                                                                                       \
  TEST(SUITE, width_and_step) {                                                           \
    for (size_t ks : {9, 25})                                                             \
      for (size_t step : {1, 3, 9})                                                       \
        DwconvTester().channels(7).kernel_size(ks).width(5).step(step).Test(FN, CT);      \
  }                                                                                       \
  TEST(SUITE, output_gap) {                                                               \
    for (size_t ks : {9, 4})                                                              \
      DwconvTester().channels(13).kernel_size(ks).width(4).output_gap(5).Test(FN, CT);    \
  }                                                                                       \
  TEST(SUITE, input_offset_and_zero) {                                                    \
    for (size_t ks : {9, 3, 25})                                                          \
      for (size_t c : {1, 6, 16})                                                         \
        DwconvTester().channels(c).kernel_size(ks).width(3).input_offset(23).zero_every(2).Test(FN, CT); \
  }                                                                                       \
  TEST(SUITE, qmin) { DwconvTester().channels(13).kernel_size(9).width(3).qmin(128).Test(FN, CT); } \
  TEST(SUITE, qmax) { DwconvTester().channels(13).kernel_size(9).width(3).qmax(128).Test(FN, CT); }

#define ANOMALENS_DWCONV3X3_TESTS(SUITE, FN, CT)                                          \
  TEST(SUITE, stride1) {                                                                  \
    for (size_t c : {1, 3, 4, 5, 8, 13, 32})                                              \
      for (size_t w : {1, 2, 3, 7, 16})                                                   \
        Dwconv3x3Tester().channels(c).input_width(w).stride(1).Test(FN, CT);              \
  }                                                                                       \
  TEST(SUITE, stride2) {                                                                  \
    for (size_t c : {1, 4, 7, 16})                                                        \
      for (size_t w : {1, 2, 3, 6, 9, 14})                                                \
        for (size_t pr : {0, 1})                                                          \
          if (w + 1 + pr >= 3)                                                            \
          Dwconv3x3Tester().channels(c).input_width(w).stride(2).pad_right(pr).Test(FN, CT); \
  }                                                                                       \
  TEST(SUITE, no_padding) {                                                               \
    for (size_t s : {1, 2})                                                               \
      for (size_t w : {3, 4, 11})                                                         \
        Dwconv3x3Tester().channels(6).input_width(w).stride(s).pad_left(0).pad_right(0).Test(FN, CT); \
  }                                                                                       \
  TEST(SUITE, zero_rows) {                                                                \
    for (int r : {0, 1, 2})                                                               \
      Dwconv3x3Tester().channels(9).input_width(8).zero_row(r).Test(FN, CT);              \
  }                                                                                       \
  TEST(SUITE, qmin) { Dwconv3x3Tester().channels(13).input_width(7).qmin(128).Test(FN, CT); } \
  TEST(SUITE, qmax) { Dwconv3x3Tester().channels(13).input_width(7).qmax(128).Test(FN, CT); }

#define ANOMALENS_POOL_TESTS(SUITE, MAXFN, AVGFN)                                         \
  TEST(SUITE, maxpool) {                                                                  \
    for (size_t ks : {1, 2, 4, 9})                                                        \
      for (size_t c : {1, 2, 3, 4, 5, 8, 13, 127})                                        \
        for (size_t step : {size_t{1}, ks})                                                       \
          PoolTester().channels(c).kernel_size(ks).width(3).step(step).zero_every(3).TestMax(MAXFN); \
  }                                                                                       \
  TEST(SUITE, avgpool) {                                                                  \
    for (size_t ks : {1, 2, 4, 9})                                                        \
      for (size_t c : {1, 2, 3, 4, 5, 8, 13, 127})                                        \
        for (size_t step : {size_t{1}, ks})                                                       \
          PoolTester().channels(c).kernel_size(ks).width(3).step(step).zero_every(3).TestAvg(AVGFN); \
  }

#define ANOMALENS_ELEMENTWISE_TESTS(SUITE, GAVG, VADD, VMUL, VMULC, HSWISH, SIGMOID)          \
  TEST(SUITE, gavgpool) {                                                                 \
    for (size_t rows : {1, 2, 3, 7, 49})                                                  \
      for (size_t c : {1, 2, 3, 4, 5, 8, 13, 127}) anomalens_test::TestGavgpool(GAVG, rows, c); \
  }                                                                                       \
  TEST(SUITE, vadd) {                                                                     \
    for (size_t n : {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 127}) {                              \
      anomalens_test::TestVbinary(VADD, BinaryOp::kAdd, n);                               \
      anomalens_test::TestVbinary(VADD, BinaryOp::kAdd, n, 0, 255, true);                 \
    }                                                                                     \
    anomalens_test::TestVbinary(VADD, BinaryOp::kAdd, 127, 100, 255);                     \
    anomalens_test::TestVbinary(VADD, BinaryOp::kAdd, 127, 0, 150);                       \
  }                                                                                       \
  TEST(SUITE, vmul) {                                                                     \
    for (size_t n : {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 127}) {                              \
      anomalens_test::TestVbinary(VMUL, BinaryOp::kMul, n);                               \
      anomalens_test::TestVbinary(VMUL, BinaryOp::kMul, n, 0, 255, true);                 \
    }                                                                                     \
    anomalens_test::TestVbinary(VMUL, BinaryOp::kMul, 127, 100, 255);                     \
    anomalens_test::TestVbinary(VMUL, BinaryOp::kMul, 127, 0, 150);                       \
  }                                                                                       \
  TEST(SUITE, vmulc) {                                                                    \
    for (size_t rows : {1, 3, 7})                                                         \
      for (size_t c : {1, 2, 3, 4, 5, 8, 13, 127}) anomalens_test::TestVmulc(VMULC, rows, c); \
  }                                                                                       \
  TEST(SUITE, hswish) {                                                                   \
    for (size_t n : {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 127, 1000})                          \
      anomalens_test::TestVunary(HSWISH, UnaryOp::kHswish, n, -8.0f, 8.0f);               \
  }                                                                                       \
  TEST(SUITE, sigmoid) {                                                                  \
    for (size_t n : {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 127}) {                              \
      anomalens_test::TestVunary(SIGMOID, UnaryOp::kSigmoid, n, -10.0f, 10.0f);           \
    }                                                                                     \
    anomalens_test::TestVunary(SIGMOID, UnaryOp::kSigmoid, 10000, -100.0f, 100.0f);       \
    anomalens_test::TestVunary(SIGMOID, UnaryOp::kSigmoid, 10000, -1.0f, 1.0f);           \
  }

ANOMALENS_GEMM_TESTS(F32_GEMM_MINMAX_4X8__SCALAR, anomalens_f32_gemm_minmax_ukernel_4x8__scalar,
                     4, 8)
ANOMALENS_IGEMM_TESTS(F32_IGEMM_MINMAX_4X8__SCALAR,
                      anomalens_f32_igemm_minmax_ukernel_4x8__scalar, 4, 8)
ANOMALENS_DWCONV_TESTS(F32_DWCONV_MINMAX_4C__SCALAR,
                       anomalens_f32_dwconv_minmax_ukernel_4c__scalar, 4)
ANOMALENS_DWCONV3X3_TESTS(F32_DWCONV3X3_MINMAX_4C__SCALAR_ROWS,
                          anomalens_f32_dwconv3x3_minmax_ukernel_4c__scalar_rows, 4)
ANOMALENS_POOL_TESTS(F32_POOL__SCALAR, anomalens_f32_maxpool_ukernel__scalar,
                     anomalens_f32_avgpool_ukernel__scalar)
ANOMALENS_ELEMENTWISE_TESTS(F32_ELEMENTWISE__SCALAR, anomalens_f32_gavgpool_ukernel__scalar,
                            anomalens_f32_vadd_minmax_ukernel__scalar,
                            anomalens_f32_vmul_minmax_ukernel__scalar,
                            anomalens_f32_vmulc_ukernel__scalar,
                            anomalens_f32_vhswish_ukernel__scalar,
                            anomalens_f32_vsigmoid_ukernel__scalar)

#if defined(__wasm_simd128__)
ANOMALENS_GEMM_TESTS(F32_GEMM_MINMAX_4X8__WASMSIMD_SPLAT,
                     anomalens_f32_gemm_minmax_ukernel_4x8__wasmsimd_splat, 4, 8)
ANOMALENS_GEMM_TESTS(F32_GEMM_MINMAX_5X8__WASMSIMD_SPLAT,
                     anomalens_f32_gemm_minmax_ukernel_5x8__wasmsimd_splat, 5, 8)
ANOMALENS_GEMM_TESTS(F32_GEMM_MINMAX_6X8__WASMSIMD_SPLAT,
                     anomalens_f32_gemm_minmax_ukernel_6x8__wasmsimd_splat, 6, 8)
ANOMALENS_GEMM_TESTS(F32_GEMM_MINMAX_4X8__WASMSIMD_LOADSPLAT,
                     anomalens_f32_gemm_minmax_ukernel_4x8__wasmsimd_loadsplat, 4, 8)
ANOMALENS_GEMM_TESTS(F32_GEMM_MINMAX_5X8__WASMSIMD_LOADSPLAT,
                     anomalens_f32_gemm_minmax_ukernel_5x8__wasmsimd_loadsplat, 5, 8)
ANOMALENS_GEMM_TESTS(F32_GEMM_MINMAX_6X8__WASMSIMD_LOADSPLAT,
                     anomalens_f32_gemm_minmax_ukernel_6x8__wasmsimd_loadsplat, 6, 8)
ANOMALENS_IGEMM_TESTS(F32_IGEMM_MINMAX_4X8__WASMSIMD_SPLAT,
                      anomalens_f32_igemm_minmax_ukernel_4x8__wasmsimd_splat, 4, 8)
ANOMALENS_IGEMM_TESTS(F32_IGEMM_MINMAX_5X8__WASMSIMD_SPLAT,
                      anomalens_f32_igemm_minmax_ukernel_5x8__wasmsimd_splat, 5, 8)
ANOMALENS_IGEMM_TESTS(F32_IGEMM_MINMAX_6X8__WASMSIMD_SPLAT,
                      anomalens_f32_igemm_minmax_ukernel_6x8__wasmsimd_splat, 6, 8)
ANOMALENS_IGEMM_TESTS(F32_IGEMM_MINMAX_4X8__WASMSIMD_LOADSPLAT,
                      anomalens_f32_igemm_minmax_ukernel_4x8__wasmsimd_loadsplat, 4, 8)
ANOMALENS_IGEMM_TESTS(F32_IGEMM_MINMAX_5X8__WASMSIMD_LOADSPLAT,
                      anomalens_f32_igemm_minmax_ukernel_5x8__wasmsimd_loadsplat, 5, 8)
ANOMALENS_IGEMM_TESTS(F32_IGEMM_MINMAX_6X8__WASMSIMD_LOADSPLAT,
                      anomalens_f32_igemm_minmax_ukernel_6x8__wasmsimd_loadsplat, 6, 8)
ANOMALENS_DWCONV_TESTS(F32_DWCONV_MINMAX_4C__WASMSIMD,
                       anomalens_f32_dwconv_minmax_ukernel_4c__wasmsimd, 4)
ANOMALENS_DWCONV3X3_TESTS(F32_DWCONV3X3_MINMAX_4C__WASMSIMD_ROWS,
                          anomalens_f32_dwconv3x3_minmax_ukernel_4c__wasmsimd_rows, 4)
ANOMALENS_POOL_TESTS(F32_POOL__WASMSIMD, anomalens_f32_maxpool_ukernel__wasmsimd,
                     anomalens_f32_avgpool_ukernel__wasmsimd)
ANOMALENS_ELEMENTWISE_TESTS(F32_ELEMENTWISE__WASMSIMD, anomalens_f32_gavgpool_ukernel__wasmsimd,
                            anomalens_f32_vadd_minmax_ukernel__wasmsimd_x8,
                            anomalens_f32_vmul_minmax_ukernel__wasmsimd_x8,
                            anomalens_f32_vmulc_ukernel__wasmsimd,
                            anomalens_f32_vhswish_ukernel__wasmsimd_x8,
                            anomalens_f32_vsigmoid_ukernel__wasmsimd_x8)
#endif

// ---- The configs: whatever they select passes the family tests with their own tile sizes. ----

namespace {

void CheckConfig(const anomalens_kernel_config* cfg) {
  ASSERT_NE(cfg, nullptr);
  ASSERT_TRUE(cfg->gemm && cfg->igemm && cfg->dwconv && cfg->dwconv3x3 && cfg->maxpool && cfg->avgpool &&
              cfg->gavgpool && cfg->vadd && cfg->vmul && cfg->vmulc && cfg->hswish &&
              cfg->sigmoid);
  for (size_t m = 1; m <= cfg->gemm_mr; m++) {
    GemmTester().mr(m).n(2 * cfg->gemm_nr + 3).k(13).Test(cfg->gemm, cfg->gemm_mr, cfg->gemm_nr);
  }
  for (size_t m = 1; m <= cfg->igemm_mr; m++) {
    IgemmTester().mr(m).n(2 * cfg->igemm_nr + 3).k(5).taps(9).zero_every(4).a_offset(3).Test(
        cfg->igemm, cfg->igemm_mr, cfg->igemm_nr);
  }
  DwconvTester().channels(2 * cfg->dwconv_ct + 1).kernel_size(9).width(3).Test(cfg->dwconv,
                                                                               cfg->dwconv_ct);
  PoolTester().channels(13).kernel_size(4).width(3).TestMax(cfg->maxpool);
  PoolTester().channels(13).kernel_size(4).width(3).TestAvg(cfg->avgpool);
  anomalens_test::TestGavgpool(cfg->gavgpool, 7, 13);
  anomalens_test::TestVbinary(cfg->vadd, BinaryOp::kAdd, 13);
  anomalens_test::TestVbinary(cfg->vmul, BinaryOp::kMul, 13);
  anomalens_test::TestVmulc(cfg->vmulc, 3, 13);
  anomalens_test::TestVunary(cfg->hswish, UnaryOp::kHswish, 13, -8.0f, 8.0f);
  anomalens_test::TestVunary(cfg->sigmoid, UnaryOp::kSigmoid, 13, -10.0f, 10.0f);
}

}  // namespace

TEST(KERNEL_CONFIG, scalar) {
  const anomalens_kernel_config* cfg = anomalens_kernel_config_scalar();
  EXPECT_STREQ(cfg->isa, "scalar");
  CheckConfig(cfg);
}

TEST(KERNEL_CONFIG, selected) {
  const anomalens_kernel_config* cfg = anomalens_kernel_config_get();
#if defined(__wasm_simd128__)
  EXPECT_STREQ(cfg->isa, "wasmsimd");
#else
  EXPECT_STREQ(cfg->isa, "scalar");
#endif
  CheckConfig(cfg);
}

// ---- Packing, against layouts written out by hand. ----

TEST(PACK_F32_GEMM_OI_W, layout_with_padding_and_groups) {
  // 2 groups, nc = 3, kc = 2, nr = 2: per group blocks {n0,n1} and {n2,pad}.
  const float w[] = {1, 2, 3, 4, 5, 6,         // group 0: rows n=0..2, 2 inputs each
                     11, 12, 13, 14, 15, 16};  // group 1
  const float bias[] = {-1, -2, -3, -11, -12, -13};
  const std::vector<float> expected = {
      -1, -2, 1, 3, 2, 4,       -3, 0, 5, 0, 6, 0,  // group 0
      -11, -12, 11, 13, 12, 14, -13, 0, 15, 0, 16, 0,  // group 1
  };
  ASSERT_EQ(anomalens_pack_f32_gemm_oi_w(2, 3, 2, 2, w, bias, nullptr), expected.size());
  std::vector<float> packed(expected.size() + 1, -99.0f);
  EXPECT_EQ(anomalens_pack_f32_gemm_oi_w(2, 3, 2, 2, w, bias, packed.data()), expected.size());
  for (size_t i = 0; i < expected.size(); i++) EXPECT_EQ(packed[i], expected[i]) << i;
  EXPECT_EQ(packed.back(), -99.0f) << "packing wrote past the returned count";
}

TEST(PACK_F32_GEMM_OI_W, null_bias_is_zero) {
  const float w[] = {1, 2, 3};  // nc = 3, kc = 1, nr = 4
  std::vector<float> packed(anomalens_pack_f32_gemm_oi_w(1, 3, 1, 4, w, nullptr, nullptr));
  anomalens_pack_f32_gemm_oi_w(1, 3, 1, 4, w, nullptr, packed.data());
  const std::vector<float> expected = {0, 0, 0, 0, 1, 2, 3, 0};
  EXPECT_EQ(packed, expected);
}

TEST(PACK_F32_IGEMM_OIHW_W, tap_major_layout) {
  // nc = 3, kc = 2, taps = 2, nr = 2. w[n][k][t] = 100n + 10k + t.
  std::vector<float> w;
  for (int n = 0; n < 3; n++)
    for (int k = 0; k < 2; k++)
      for (int t = 0; t < 2; t++) w.push_back(100.0f * n + 10.0f * k + t);
  const float bias[] = {7, 8, 9};
  const std::vector<float> expected = {
      7, 8,                                   // block 0 biases
      0, 100, 10, 110, 1, 101, 11, 111,       // tap 0: k0, k1; tap 1: k0, k1
      9, 0,                                   // block 1 biases
      200, 0, 210, 0, 201, 0, 211, 0,
  };
  ASSERT_EQ(anomalens_pack_f32_igemm_oihw_w(1, 3, 2, 2, 2, w.data(), bias, nullptr),
            expected.size());
  std::vector<float> packed(expected.size());
  anomalens_pack_f32_igemm_oihw_w(1, 3, 2, 2, 2, w.data(), bias, packed.data());
  EXPECT_EQ(packed, expected);
}

TEST(PACK_F32_DWCONV_OIHW_W, channel_tiles) {
  // channels = 3, taps = 2, ct = 2. w[c][t] = 10c + t.
  const float w[] = {0, 1, 10, 11, 20, 21};
  const float bias[] = {-1, -2, -3};
  const std::vector<float> expected = {-1, -2, 0, 10, 1, 11, -3, 0, 20, 0, 21, 0};
  ASSERT_EQ(anomalens_pack_f32_dwconv_oihw_w(3, 2, 2, w, bias, nullptr), expected.size());
  std::vector<float> packed(expected.size());
  anomalens_pack_f32_dwconv_oihw_w(3, 2, 2, w, bias, packed.data());
  EXPECT_EQ(packed, expected);
}

// SPDX-License-Identifier: Apache-2.0
// Declarations of every micro-kernel in src/kernels, for config.c, tests and benchmarks. The
// engine should use anomalens_kernel_config_get() instead of naming kernels.
//
//   anomalens_f32_gemm_minmax_ukernel_4x8__scalar(mr, nc, kc, a, a_stride, w, c, ...);
#pragma once

#include "kernels/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ANOMALENS_DECLARE_F32_GEMM(fn)                                                         \
  void fn(size_t mr, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w,    \
          float* c, size_t cm_stride, size_t cn_stride,                                        \
          const struct anomalens_f32_minmax_params* params);
#define ANOMALENS_DECLARE_F32_IGEMM(fn)                                                        \
  void fn(size_t mr, size_t nc, size_t kc, size_t ks, const float** a, const float* w,         \
          float* c, size_t cm_stride, size_t cn_stride, size_t a_offset, const float* zero,    \
          const struct anomalens_f32_minmax_params* params);
#define ANOMALENS_DECLARE_F32_DWCONV(fn)                                                       \
  void fn(size_t channels, size_t output_pixels, size_t kernel_size, const float** input,      \
          const float* weights, float* output, size_t input_stride, size_t output_increment,   \
          size_t input_offset, const float* zero,                                              \
          const struct anomalens_f32_minmax_params* params);
#define ANOMALENS_DECLARE_F32_DWCONV3X3(fn)                                                    \
  void fn(size_t channels, size_t output_width, size_t input_width, size_t stride,             \
          size_t pad_left, const float* const* rows, const float* weights, float* output,      \
          const struct anomalens_f32_minmax_params* params);
#define ANOMALENS_DECLARE_F32_MAXPOOL(fn)                                                      \
  void fn(size_t output_pixels, size_t kernel_size, size_t channels, const float** input,      \
          float* output, size_t input_stride);
#define ANOMALENS_DECLARE_F32_AVGPOOL(fn)                                                      \
  void fn(size_t output_pixels, size_t kernel_size, size_t channels, const float** input,      \
          float* output, size_t input_stride, const float* multiplier);
#define ANOMALENS_DECLARE_F32_GAVGPOOL(fn) \
  void fn(size_t rows, size_t channels, const float* x, float* y, float scale);
#define ANOMALENS_DECLARE_F32_VBINARY(fn)                                \
  void fn(size_t n_bytes, const float* a, const float* b, float* y, \
          const struct anomalens_f32_minmax_params* params);
#define ANOMALENS_DECLARE_F32_VMULC(fn) \
  void fn(size_t rows, size_t channels, const float* x, const float* scale, float* y);
#define ANOMALENS_DECLARE_F32_VUNARY(fn) void fn(size_t n_bytes, const float* x, float* y);

ANOMALENS_DECLARE_F32_GEMM(anomalens_f32_gemm_minmax_ukernel_4x8__scalar)
ANOMALENS_DECLARE_F32_IGEMM(anomalens_f32_igemm_minmax_ukernel_4x8__scalar)
ANOMALENS_DECLARE_F32_DWCONV(anomalens_f32_dwconv_minmax_ukernel_4c__scalar)
ANOMALENS_DECLARE_F32_DWCONV3X3(anomalens_f32_dwconv3x3_minmax_ukernel_4c__scalar_rows)
ANOMALENS_DECLARE_F32_MAXPOOL(anomalens_f32_maxpool_ukernel__scalar)
ANOMALENS_DECLARE_F32_AVGPOOL(anomalens_f32_avgpool_ukernel__scalar)
ANOMALENS_DECLARE_F32_GAVGPOOL(anomalens_f32_gavgpool_ukernel__scalar)
ANOMALENS_DECLARE_F32_VBINARY(anomalens_f32_vadd_minmax_ukernel__scalar)
ANOMALENS_DECLARE_F32_VBINARY(anomalens_f32_vmul_minmax_ukernel__scalar)
ANOMALENS_DECLARE_F32_VMULC(anomalens_f32_vmulc_ukernel__scalar)
ANOMALENS_DECLARE_F32_VUNARY(anomalens_f32_vhswish_ukernel__scalar)
ANOMALENS_DECLARE_F32_VUNARY(anomalens_f32_vsigmoid_ukernel__scalar)

#if defined(__wasm_simd128__)
ANOMALENS_DECLARE_F32_GEMM(anomalens_f32_gemm_minmax_ukernel_4x8__wasmsimd_splat)
ANOMALENS_DECLARE_F32_GEMM(anomalens_f32_gemm_minmax_ukernel_5x8__wasmsimd_splat)
ANOMALENS_DECLARE_F32_GEMM(anomalens_f32_gemm_minmax_ukernel_6x8__wasmsimd_splat)
ANOMALENS_DECLARE_F32_GEMM(anomalens_f32_gemm_minmax_ukernel_4x8__wasmsimd_loadsplat)
ANOMALENS_DECLARE_F32_GEMM(anomalens_f32_gemm_minmax_ukernel_5x8__wasmsimd_loadsplat)
ANOMALENS_DECLARE_F32_GEMM(anomalens_f32_gemm_minmax_ukernel_6x8__wasmsimd_loadsplat)
ANOMALENS_DECLARE_F32_IGEMM(anomalens_f32_igemm_minmax_ukernel_4x8__wasmsimd_splat)
ANOMALENS_DECLARE_F32_IGEMM(anomalens_f32_igemm_minmax_ukernel_5x8__wasmsimd_splat)
ANOMALENS_DECLARE_F32_IGEMM(anomalens_f32_igemm_minmax_ukernel_6x8__wasmsimd_splat)
ANOMALENS_DECLARE_F32_IGEMM(anomalens_f32_igemm_minmax_ukernel_4x8__wasmsimd_loadsplat)
ANOMALENS_DECLARE_F32_IGEMM(anomalens_f32_igemm_minmax_ukernel_5x8__wasmsimd_loadsplat)
ANOMALENS_DECLARE_F32_IGEMM(anomalens_f32_igemm_minmax_ukernel_6x8__wasmsimd_loadsplat)
ANOMALENS_DECLARE_F32_DWCONV(anomalens_f32_dwconv_minmax_ukernel_4c__wasmsimd)
ANOMALENS_DECLARE_F32_DWCONV3X3(anomalens_f32_dwconv3x3_minmax_ukernel_4c__wasmsimd_rows)
ANOMALENS_DECLARE_F32_MAXPOOL(anomalens_f32_maxpool_ukernel__wasmsimd)
ANOMALENS_DECLARE_F32_AVGPOOL(anomalens_f32_avgpool_ukernel__wasmsimd)
ANOMALENS_DECLARE_F32_GAVGPOOL(anomalens_f32_gavgpool_ukernel__wasmsimd)
ANOMALENS_DECLARE_F32_VBINARY(anomalens_f32_vadd_minmax_ukernel__wasmsimd_x8)
ANOMALENS_DECLARE_F32_VBINARY(anomalens_f32_vmul_minmax_ukernel__wasmsimd_x8)
ANOMALENS_DECLARE_F32_VMULC(anomalens_f32_vmulc_ukernel__wasmsimd)
ANOMALENS_DECLARE_F32_VUNARY(anomalens_f32_vhswish_ukernel__wasmsimd_x8)
ANOMALENS_DECLARE_F32_VUNARY(anomalens_f32_vsigmoid_ukernel__wasmsimd_x8)
#endif

#ifdef __cplusplus
}  // extern "C"
#endif

// SPDX-License-Identifier: Apache-2.0
// Micro-kernel contract (XNNPACK-style). Kernels include nothing from the project, never
// allocate, never do I/O; preconditions are asserts. Every SIMD kernel has a `scalar` sibling
// with the same signature and the same packed-weight layout, so tests compare them directly.
//
//   const anomalens_kernel_config* cfg = anomalens_kernel_config_get();
//   anomalens_pack_f32_gemm_oi_w(1, n, k, cfg->gemm_nr, w_oi, bias, packed);   // once, at load
//   cfg->gemm(mr, n, k * sizeof(float), a, a_stride, packed, c, cm_stride, cn_stride, &params);
//
// Conventions:
// - Sizes named `*_bytes`/`kc`/`ks`/strides are in bytes; `mr`, `nc`, `channels`,
//   `output_pixels`, `kernel_size` are counts.
// - Every kernel may read up to ANOMALENS_EXTRA_BYTES past the end of any input row; callers
//   pad their buffers for it (including the `zero`/padding buffers of igemm, dwconv and
//   pooling, which need channels * 4 + ANOMALENS_EXTRA_BYTES bytes). Kernels never write
//   outside their outputs.
// - All data is NHWC f32.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ANOMALENS_EXTRA_BYTES 16

struct anomalens_f32_minmax_params {
  float min;  // -INFINITY for no lower clamp
  float max;  // +INFINITY for no upper clamp
};

// GEMM: C[mr x nc] = clamp(A[mr x k] * B[k x nc] + bias), tile MR x NR, 1 <= mr <= MR.
// `w` holds, per block of NR output columns, NR biases then k rows of NR weights (zero past nc),
// as written by anomalens_pack_f32_gemm_oi_w. Rows of A are `a_stride` bytes apart, rows of C
// `cm_stride` bytes apart; the kernel walks all nc columns in NR blocks (the last may be
// partial), advancing C by `cn_stride` bytes per block. kc = k * sizeof(float).
typedef void (*anomalens_f32_gemm_minmax_ukernel_fn)(
    size_t mr, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w, float* c,
    size_t cm_stride, size_t cn_stride, const struct anomalens_f32_minmax_params* params);

// Indirect GEMM (convolution): `a` holds (ks / sizeof(void*)) pointers: for each kernel tap t,
// MR pointers a[t*MR + i] to the kc bytes of input channels of output row i at that tap. A
// pointer equal to `zero` is used as is (padding); any other gets `a_offset` bytes added.
// ks = kernel_taps * MR * sizeof(void*). `w` per NR block: NR biases, then for each tap,
// k rows of NR weights (anomalens_pack_f32_igemm_oihw_w). Rows mr..MR-1 of `a` may repeat row
// mr-1's pointers; they are read but their results are not stored.
typedef void (*anomalens_f32_igemm_minmax_ukernel_fn)(
    size_t mr, size_t nc, size_t kc, size_t ks, const float** a, const float* w, float* c,
    size_t cm_stride, size_t cn_stride, size_t a_offset, const float* zero,
    const struct anomalens_f32_minmax_params* params);

// Depthwise convolution along one output row: for each of `output_pixels` outputs, `input`
// holds kernel_size pointers to input pixels (each `channels` floats; `zero` is used as is,
// others get `input_offset` bytes added). After each output pixel `input` advances by
// `input_stride` bytes and `output` by channels*4 + output_increment bytes. `weights` per block
// of CT channels: CT biases then kernel_size x CT weights (anomalens_pack_f32_dwconv_oihw_w).
typedef void (*anomalens_f32_dwconv_minmax_ukernel_fn)(
    size_t channels, size_t output_pixels, size_t kernel_size, const float** input,
    const float* weights, float* output, size_t input_stride, size_t output_increment,
    size_t input_offset, const float* zero, const struct anomalens_f32_minmax_params* params);

// Depthwise 3x3 convolution, dilation 1, stride 1 or 2, one output row: rows[ky] points at the
// input row that output row's tap row ky reads, `input_width` pixels of `channels` consecutive
// floats, or at a zero row (input_width * channels floats) when that row is padding. Output
// pixel ox reads input columns ox * stride - pad_left + kx, kx = 0..2; columns outside
// [0, input_width) count as zero. `weights`: dwconv's packed layout with CT = dwconv_ct. Writes
// output_width pixels of `channels` consecutive floats.
typedef void (*anomalens_f32_dwconv3x3_minmax_ukernel_fn)(
    size_t channels, size_t output_width, size_t input_width, size_t stride, size_t pad_left,
    const float* const* rows, const float* weights, float* output,
    const struct anomalens_f32_minmax_params* params);

// Max pooling: like dwconv's pointer layout (kernel_size pointers per output pixel, advancing
// by `input_stride` bytes; padding taps point at a buffer of -INFINITY that the caller owns).
// Output rows are `channels` floats, consecutive.
typedef void (*anomalens_f32_maxpool_ukernel_fn)(
    size_t output_pixels, size_t kernel_size, size_t channels, const float** input,
    float* output, size_t input_stride);

// Average pooling: sum of the kernel_size taps times multiplier[p] for output pixel p (padding
// taps point at a zero buffer; the multiplier is 1/count with or without padding counted).
typedef void (*anomalens_f32_avgpool_ukernel_fn)(
    size_t output_pixels, size_t kernel_size, size_t channels, const float** input,
    float* output, size_t input_stride, const float* multiplier);

// Global average pooling: y[c] = scale * sum over `rows` pixels of x[row][c].
typedef void (*anomalens_f32_gavgpool_ukernel_fn)(
    size_t rows, size_t channels, const float* x, float* y, float scale);

// Element-wise y = clamp(a op b), n_bytes = count * 4 (a multiple of 4).
typedef void (*anomalens_f32_vbinary_minmax_ukernel_fn)(
    size_t n_bytes, const float* a, const float* b, float* y,
    const struct anomalens_f32_minmax_params* params);

// Channel-wise scale: y[p][c] = x[p][c] * scale[c] for `rows` pixels of `channels`.
typedef void (*anomalens_f32_vmulc_ukernel_fn)(
    size_t rows, size_t channels, const float* x, const float* scale, float* y);

// Element-wise unary y = f(x), n_bytes = count * 4. Used for hardswish and sigmoid.
typedef void (*anomalens_f32_vunary_ukernel_fn)(size_t n_bytes, const float* x, float* y);

// ---- Packing: done once at load; layouts above. `packed` must have room for the returned
// float count (call with packed == NULL to get it). Bias may be NULL (zeros); with groups it
// is [groups][nc]. Group g's packed weights start at g * (returned count / groups). ----

// Weights [groups][nc][kc] (OI per group; 1x1 conv or fully connected) for gemm.
size_t anomalens_pack_f32_gemm_oi_w(size_t groups, size_t nc, size_t kc, size_t nr,
                                    const float* w, const float* bias, float* packed);
// Conv weights OIHW [groups][nc][kc][kh*kw] for igemm (tap-major inside each NR block).
size_t anomalens_pack_f32_igemm_oihw_w(size_t groups, size_t nc, size_t kc, size_t kernel_taps,
                                       size_t nr, const float* w, const float* bias,
                                       float* packed);
// Depthwise weights [channels][1][kh*kw] for dwconv with channel tile ct.
size_t anomalens_pack_f32_dwconv_oihw_w(size_t channels, size_t kernel_taps, size_t ct,
                                        const float* w, const float* bias, float* packed);

// ---- Kernel selection. ----
struct anomalens_kernel_config {
  const char* isa;  // "scalar" or "wasmsimd"
  anomalens_f32_gemm_minmax_ukernel_fn gemm;
  size_t gemm_mr, gemm_nr;
  anomalens_f32_igemm_minmax_ukernel_fn igemm;
  size_t igemm_mr, igemm_nr;
  anomalens_f32_dwconv_minmax_ukernel_fn dwconv;
  size_t dwconv_ct;  // channel tile of the packed weights
  anomalens_f32_dwconv3x3_minmax_ukernel_fn dwconv3x3;  // same packed weights as dwconv
  anomalens_f32_maxpool_ukernel_fn maxpool;
  anomalens_f32_avgpool_ukernel_fn avgpool;
  anomalens_f32_gavgpool_ukernel_fn gavgpool;
  anomalens_f32_vbinary_minmax_ukernel_fn vadd;
  anomalens_f32_vbinary_minmax_ukernel_fn vmul;
  anomalens_f32_vmulc_ukernel_fn vmulc;
  anomalens_f32_vunary_ukernel_fn hswish;
  anomalens_f32_vunary_ukernel_fn sigmoid;
};

// The best kernels this build has (wasmsimd when compiled with -msimd128, else scalar).
const struct anomalens_kernel_config* anomalens_kernel_config_get(void);
// The portable scalar set, always available (tests compare against it).
const struct anomalens_kernel_config* anomalens_kernel_config_scalar(void);

#ifdef __cplusplus
}  // extern "C"
#endif

// SPDX-License-Identifier: Apache-2.0
// Kernel selection at compile time: a -msimd128 build gets the wasmsimd set.
#include "kernels/ukernels.h"

static const struct anomalens_kernel_config kScalarConfig = {
    .isa = "scalar",
    .gemm = anomalens_f32_gemm_minmax_ukernel_4x8__scalar,
    .gemm_mr = 4,
    .gemm_nr = 8,
    .igemm = anomalens_f32_igemm_minmax_ukernel_4x8__scalar,
    .igemm_mr = 4,
    .igemm_nr = 8,
    .dwconv = anomalens_f32_dwconv_minmax_ukernel_4c__scalar,
    .dwconv_ct = 4,
    .dwconv3x3 = anomalens_f32_dwconv3x3_minmax_ukernel_4c__scalar_rows,
    .maxpool = anomalens_f32_maxpool_ukernel__scalar,
    .avgpool = anomalens_f32_avgpool_ukernel__scalar,
    .gavgpool = anomalens_f32_gavgpool_ukernel__scalar,
    .vadd = anomalens_f32_vadd_minmax_ukernel__scalar,
    .vmul = anomalens_f32_vmul_minmax_ukernel__scalar,
    .vmulc = anomalens_f32_vmulc_ukernel__scalar,
    .hswish = anomalens_f32_vhswish_ukernel__scalar,
    .sigmoid = anomalens_f32_vsigmoid_ukernel__scalar,
};

#if defined(__wasm_simd128__)
static const struct anomalens_kernel_config kWasmSimdConfig = {
    .isa = "wasmsimd",
    .gemm = anomalens_f32_gemm_minmax_ukernel_4x8__wasmsimd_loadsplat,
    .gemm_mr = 4,
    .gemm_nr = 8,
    .igemm = anomalens_f32_igemm_minmax_ukernel_4x8__wasmsimd_loadsplat,
    .igemm_mr = 4,
    .igemm_nr = 8,
    .dwconv = anomalens_f32_dwconv_minmax_ukernel_4c__wasmsimd,
    .dwconv_ct = 4,
    .dwconv3x3 = anomalens_f32_dwconv3x3_minmax_ukernel_4c__wasmsimd_rows,
    .maxpool = anomalens_f32_maxpool_ukernel__wasmsimd,
    .avgpool = anomalens_f32_avgpool_ukernel__wasmsimd,
    .gavgpool = anomalens_f32_gavgpool_ukernel__wasmsimd,
    .vadd = anomalens_f32_vadd_minmax_ukernel__wasmsimd_x8,
    .vmul = anomalens_f32_vmul_minmax_ukernel__wasmsimd_x8,
    .vmulc = anomalens_f32_vmulc_ukernel__wasmsimd,
    .hswish = anomalens_f32_vhswish_ukernel__wasmsimd_x8,
    .sigmoid = anomalens_f32_vsigmoid_ukernel__wasmsimd_x8,
};
#endif

const struct anomalens_kernel_config* anomalens_kernel_config_scalar(void) {
  return &kScalarConfig;
}

const struct anomalens_kernel_config* anomalens_kernel_config_get(void) {
#if defined(__wasm_simd128__)
  return &kWasmSimdConfig;
#else
  return &kScalarConfig;
#endif
}

// SPDX-License-Identifier: Apache-2.0
// Weight packing into the tile layouts documented in kernels.h. Each call returns the packed
// float count; with packed == NULL it only returns the count.
#include <assert.h>
#include <stddef.h>

#include "kernels/kernels.h"

static size_t round_up(size_t n, size_t q) { return (n + q - 1) / q * q; }

size_t anomalens_pack_f32_gemm_oi_w(size_t groups, size_t nc, size_t kc, size_t nr,
                                    const float* w, const float* bias, float* packed) {
  // A gemm is an igemm with one tap; the layouts coincide.
  return anomalens_pack_f32_igemm_oihw_w(groups, nc, kc, 1, nr, w, bias, packed);
}

size_t anomalens_pack_f32_igemm_oihw_w(size_t groups, size_t nc, size_t kc, size_t kernel_taps,
                                       size_t nr, const float* w, const float* bias,
                                       float* packed) {
  assert(nr != 0);
  const size_t count = groups * round_up(nc, nr) * (1 + kernel_taps * kc);
  if (packed == NULL) {
    return count;
  }
  for (size_t g = 0; g < groups; g++) {
    const float* wg = w + g * nc * kc * kernel_taps;
    const float* bg = bias != NULL ? bias + g * nc : NULL;
    for (size_t n0 = 0; n0 < nc; n0 += nr) {
      for (size_t j = 0; j < nr; j++) {
        *packed++ = (bg != NULL && n0 + j < nc) ? bg[n0 + j] : 0.0f;
      }
      for (size_t t = 0; t < kernel_taps; t++) {
        for (size_t k = 0; k < kc; k++) {
          for (size_t j = 0; j < nr; j++) {
            const size_t n = n0 + j;
            *packed++ = n < nc ? wg[(n * kc + k) * kernel_taps + t] : 0.0f;
          }
        }
      }
    }
  }
  return count;
}

size_t anomalens_pack_f32_dwconv_oihw_w(size_t channels, size_t kernel_taps, size_t ct,
                                        const float* w, const float* bias, float* packed) {
  assert(ct != 0);
  const size_t count = round_up(channels, ct) * (1 + kernel_taps);
  if (packed == NULL) {
    return count;
  }
  for (size_t c0 = 0; c0 < channels; c0 += ct) {
    for (size_t j = 0; j < ct; j++) {
      *packed++ = (bias != NULL && c0 + j < channels) ? bias[c0 + j] : 0.0f;
    }
    for (size_t t = 0; t < kernel_taps; t++) {
      for (size_t j = 0; j < ct; j++) {
        const size_t c = c0 + j;
        *packed++ = c < channels ? w[c * kernel_taps + t] : 0.0f;
      }
    }
  }
  return count;
}

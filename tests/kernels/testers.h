// SPDX-License-Identifier: Apache-2.0
// Builder-style testers for the micro-kernels: each builds random inputs with a fixed seed,
// packs weights with the production packing functions, runs the kernel on NaN-filled outputs
// and compares against a naive double-precision reference. Cells the kernel must not write
// (stride gaps, tails) are checked to still hold NaN.
//
//   GemmTester().mr(3).n(13).k(7).Test(anomalens_f32_gemm_minmax_ukernel_4x8__scalar, 4, 8);
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "kernels/ukernels.h"

namespace anomalens_test {

constexpr size_t kExtraFloats = ANOMALENS_EXTRA_BYTES / sizeof(float);
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

inline std::vector<float> RandomVector(std::mt19937& rng, size_t n, float lo = -1.0f,
                                       float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Clamp bounds: qmin/qmax in [0, 255] select a fraction of the reference output range, as
// XNNPACK's testers do; 0 and 255 mean no clamping.
struct ClampRange {
  float min = -std::numeric_limits<float>::infinity();
  float max = std::numeric_limits<float>::infinity();
};

inline ClampRange MakeClamp(const std::vector<double>& ref, uint8_t qmin, uint8_t qmax) {
  ClampRange r;
  if (ref.empty()) return r;
  const double lo = *std::min_element(ref.begin(), ref.end());
  const double hi = *std::max_element(ref.begin(), ref.end());
  if (qmin != 0) r.min = static_cast<float>(lo + (hi - lo) * qmin / 255.0);
  if (qmax != 255) r.max = static_cast<float>(lo + (hi - lo) * qmax / 255.0);
  return r;
}

inline double Clamp(double v, const ClampRange& r) {
  return std::min<double>(std::max<double>(v, r.min), r.max);
}

class GemmTester {
 public:
  GemmTester& mr(size_t v) { mr_ = v; return *this; }
  GemmTester& n(size_t v) { n_ = v; return *this; }
  GemmTester& k(size_t v) { k_ = v; return *this; }
  GemmTester& a_stride(size_t v) { a_stride_ = v; return *this; }
  GemmTester& cm_stride(size_t v) { cm_stride_ = v; return *this; }
  GemmTester& qmin(uint8_t v) { qmin_ = v; return *this; }
  GemmTester& qmax(uint8_t v) { qmax_ = v; return *this; }

  void Test(anomalens_f32_gemm_minmax_ukernel_fn fn, size_t tile_mr, size_t nr) const {
    ASSERT_LE(mr_, tile_mr);
    std::mt19937 rng(mr_ * 1000003 + n_ * 1009 + k_);
    const size_t a_stride = a_stride_ ? a_stride_ : k_;
    const size_t cm_stride = cm_stride_ ? cm_stride_ : n_;
    std::vector<float> a = RandomVector(rng, (mr_ - 1) * a_stride + k_ + kExtraFloats);
    std::vector<float> w = RandomVector(rng, n_ * k_);
    std::vector<float> bias = RandomVector(rng, n_);
    std::vector<float> packed(anomalens_pack_f32_gemm_oi_w(1, n_, k_, nr, w.data(),
                                                           bias.data(), nullptr));
    anomalens_pack_f32_gemm_oi_w(1, n_, k_, nr, w.data(), bias.data(), packed.data());

    std::vector<double> ref(mr_ * n_), tol(mr_ * n_);
    for (size_t i = 0; i < mr_; i++) {
      for (size_t j = 0; j < n_; j++) {
        double s = bias[j], abs_sum = std::fabs(bias[j]);
        for (size_t kk = 0; kk < k_; kk++) {
          const double p = double(a[i * a_stride + kk]) * double(w[j * k_ + kk]);
          s += p;
          abs_sum += std::fabs(p);
        }
        ref[i * n_ + j] = s;
        tol[i * n_ + j] = 1e-6 + 4e-7 * abs_sum;
      }
    }
    const ClampRange clamp = MakeClamp(ref, qmin_, qmax_);
    const anomalens_f32_minmax_params params = {clamp.min, clamp.max};

    std::vector<float> c((mr_ - 1) * cm_stride + n_ + kExtraFloats, kNaN);
    fn(mr_, n_, k_ * sizeof(float), a.data(), a_stride * sizeof(float), packed.data(), c.data(),
       cm_stride * sizeof(float), nr * sizeof(float), &params);

    for (size_t idx = 0; idx < c.size(); idx++) {
      const size_t i = idx / cm_stride, j = idx % cm_stride;
      if (i < mr_ && j < n_) {
        const double expected = Clamp(ref[i * n_ + j], clamp);
        ASSERT_NEAR(c[idx], expected, tol[i * n_ + j])
            << "row " << i << " col " << j << " (mr=" << mr_ << " n=" << n_ << " k=" << k_
            << ")";
      } else {
        ASSERT_TRUE(std::isnan(c[idx])) << "kernel wrote outside the output at float " << idx;
      }
    }
  }

 private:
  size_t mr_ = 1, n_ = 1, k_ = 1, a_stride_ = 0, cm_stride_ = 0;
  uint8_t qmin_ = 0, qmax_ = 255;
};

class IgemmTester {
 public:
  IgemmTester& mr(size_t v) { mr_ = v; return *this; }
  IgemmTester& n(size_t v) { n_ = v; return *this; }
  IgemmTester& k(size_t v) { k_ = v; return *this; }
  IgemmTester& taps(size_t v) { taps_ = v; return *this; }
  IgemmTester& cm_stride(size_t v) { cm_stride_ = v; return *this; }
  IgemmTester& a_offset(size_t floats) { a_offset_ = floats; return *this; }
  // Every `zero_every`-th pointer (counting from 0) is the zero buffer; 0 disables.
  IgemmTester& zero_every(size_t v) { zero_every_ = v; return *this; }
  IgemmTester& qmin(uint8_t v) { qmin_ = v; return *this; }
  IgemmTester& qmax(uint8_t v) { qmax_ = v; return *this; }

  void Test(anomalens_f32_igemm_minmax_ukernel_fn fn, size_t tile_mr, size_t nr) const {
    ASSERT_LE(mr_, tile_mr);
    std::mt19937 rng(mr_ * 7919 + n_ * 104729 + k_ * 13 + taps_);
    const size_t pix_stride = k_ + 3;  // odd gap between pixels
    const size_t pixels = mr_ * taps_;
    std::vector<float> input =
        RandomVector(rng, a_offset_ + pixels * pix_stride + kExtraFloats);
    // The zero buffer is used as is; NaN past k catches a kernel that offsets it anyway.
    std::vector<float> zero(k_ + a_offset_ + kExtraFloats, kNaN);
    std::fill(zero.begin(), zero.begin() + k_ + kExtraFloats, 0.0f);

    std::vector<const float*> ptrs(taps_ * tile_mr);
    std::vector<const float*> data(taps_ * mr_);  // what each (tap, row) really reads
    std::vector<size_t> perm(pixels);
    for (size_t p = 0; p < pixels; p++) perm[p] = p;
    std::shuffle(perm.begin(), perm.end(), rng);
    size_t counter = 0;
    for (size_t t = 0; t < taps_; t++) {
      for (size_t i = 0; i < tile_mr; i++) {
        const size_t row = std::min(i, mr_ - 1);
        if (i < mr_) {
          if (zero_every_ != 0 && counter++ % zero_every_ == 0) {
            data[t * mr_ + i] = zero.data();
            ptrs[t * tile_mr + i] = zero.data();
          } else {
            const size_t pix = perm[t * mr_ + i] * pix_stride;
            data[t * mr_ + i] = input.data() + a_offset_ + pix;
            ptrs[t * tile_mr + i] = input.data() + pix;
          }
        } else {
          ptrs[t * tile_mr + i] = ptrs[t * tile_mr + row];
        }
      }
    }

    std::vector<float> w = RandomVector(rng, n_ * k_ * taps_);
    std::vector<float> bias = RandomVector(rng, n_);
    std::vector<float> packed(anomalens_pack_f32_igemm_oihw_w(1, n_, k_, taps_, nr, w.data(),
                                                              bias.data(), nullptr));
    anomalens_pack_f32_igemm_oihw_w(1, n_, k_, taps_, nr, w.data(), bias.data(), packed.data());

    std::vector<double> ref(mr_ * n_), tol(mr_ * n_);
    for (size_t i = 0; i < mr_; i++) {
      for (size_t j = 0; j < n_; j++) {
        double s = bias[j], abs_sum = std::fabs(bias[j]);
        for (size_t t = 0; t < taps_; t++) {
          const float* x = data[t * mr_ + i];
          for (size_t kk = 0; kk < k_; kk++) {
            const double p = double(x[kk]) * double(w[(j * k_ + kk) * taps_ + t]);
            s += p;
            abs_sum += std::fabs(p);
          }
        }
        ref[i * n_ + j] = s;
        tol[i * n_ + j] = 1e-6 + 4e-7 * abs_sum;
      }
    }
    const ClampRange clamp = MakeClamp(ref, qmin_, qmax_);
    const anomalens_f32_minmax_params params = {clamp.min, clamp.max};
    const size_t cm_stride = cm_stride_ ? cm_stride_ : n_;
    std::vector<float> c((mr_ - 1) * cm_stride + n_ + kExtraFloats, kNaN);
    fn(mr_, n_, k_ * sizeof(float), taps_ * tile_mr * sizeof(void*), ptrs.data(), packed.data(),
       c.data(), cm_stride * sizeof(float), nr * sizeof(float), a_offset_ * sizeof(float),
       zero.data(), &params);

    for (size_t idx = 0; idx < c.size(); idx++) {
      const size_t i = idx / cm_stride, j = idx % cm_stride;
      if (i < mr_ && j < n_) {
        ASSERT_NEAR(c[idx], Clamp(ref[i * n_ + j], clamp), tol[i * n_ + j])
            << "row " << i << " col " << j << " (mr=" << mr_ << " n=" << n_ << " k=" << k_
            << " taps=" << taps_ << ")";
      } else {
        ASSERT_TRUE(std::isnan(c[idx])) << "kernel wrote outside the output at float " << idx;
      }
    }
  }

 private:
  size_t mr_ = 1, n_ = 1, k_ = 1, taps_ = 1, cm_stride_ = 0, a_offset_ = 0, zero_every_ = 0;
  uint8_t qmin_ = 0, qmax_ = 255;
};

// Shared indirection set-up for dwconv and pooling: `pixels` outputs, each reading
// `kernel_size` pointers starting `step` pointers after the previous pixel's.
struct Indirection {
  std::vector<float> input;      // source pixels (channels floats, odd stride)
  std::vector<float> zero;       // the padding buffer
  std::vector<const float*> ptrs;  // what the kernel is given
  std::vector<const float*> data;  // what each pointer really reads (after offset)
};

inline Indirection MakeIndirection(std::mt19937& rng, size_t pixels, size_t kernel_size,
                                   size_t step, size_t channels, size_t offset, size_t zero_every,
                                   float pad_value) {
  Indirection ind;
  const size_t pix_stride = channels + 1;
  const size_t n_src = 3 + pixels * step + kernel_size;
  ind.input = RandomVector(rng, offset + n_src * pix_stride + kExtraFloats);
  ind.zero.assign(channels + offset + kExtraFloats, kNaN);
  std::fill(ind.zero.begin(), ind.zero.begin() + channels + kExtraFloats, pad_value);
  const size_t n_ptrs = (pixels - 1) * step + kernel_size;
  std::uniform_int_distribution<size_t> pick(0, n_src - 1);
  for (size_t p = 0; p < n_ptrs; p++) {
    if (zero_every != 0 && p % zero_every == 1) {
      ind.ptrs.push_back(ind.zero.data());
      ind.data.push_back(ind.zero.data());
    } else {
      const size_t pix = pick(rng) * pix_stride;
      ind.ptrs.push_back(ind.input.data() + pix);
      ind.data.push_back(ind.input.data() + offset + pix);
    }
  }
  return ind;
}

// Depthwise 3x3 row kernels: one output row from 3 input rows (any of them the zero row),
// stride 1 or 2, left padding 0 or 1, right padding implied by output_width.
class Dwconv3x3Tester {
 public:
  Dwconv3x3Tester& channels(size_t v) { channels_ = v; return *this; }
  Dwconv3x3Tester& input_width(size_t v) { input_width_ = v; return *this; }
  Dwconv3x3Tester& stride(size_t v) { stride_ = v; return *this; }
  Dwconv3x3Tester& pad_left(size_t v) { pad_left_ = v; return *this; }
  Dwconv3x3Tester& pad_right(size_t v) { pad_right_ = v; return *this; }
  Dwconv3x3Tester& zero_row(int v) { zero_row_ = v; return *this; }
  Dwconv3x3Tester& qmin(uint8_t v) { qmin_ = v; return *this; }
  Dwconv3x3Tester& qmax(uint8_t v) { qmax_ = v; return *this; }

  void Test(anomalens_f32_dwconv3x3_minmax_ukernel_fn fn, size_t ct) const {
    ASSERT_GE(input_width_ + pad_left_ + pad_right_, 3u) << "padded input narrower than the kernel";
    std::mt19937 rng(channels_ * 131 + input_width_ * 7 + stride_ * 3 + pad_left_);
    const size_t row_floats = input_width_ * channels_;
    std::vector<std::vector<float>> rows(3);
    for (auto& r : rows) r = RandomVector(rng, row_floats + kExtraFloats);
    std::vector<float> zero(row_floats + kExtraFloats, 0.0f);
    const float* row_ptrs[3];
    for (int r = 0; r < 3; r++) row_ptrs[r] = r == zero_row_ ? zero.data() : rows[r].data();
    const size_t output_width = (input_width_ + pad_left_ + pad_right_ - 3) / stride_ + 1;
    std::vector<float> w = RandomVector(rng, channels_ * 9);
    std::vector<float> bias = RandomVector(rng, channels_);
    std::vector<float> packed(anomalens_pack_f32_dwconv_oihw_w(channels_, 9, ct, w.data(),
                                                               bias.data(), nullptr));
    anomalens_pack_f32_dwconv_oihw_w(channels_, 9, ct, w.data(), bias.data(), packed.data());
    std::vector<double> ref(output_width * channels_);
    for (size_t ox = 0; ox < output_width; ox++) {
      for (size_t c = 0; c < channels_; c++) {
        double s = bias[c];
        for (size_t ky = 0; ky < 3; ky++) {
          for (size_t kx = 0; kx < 3; kx++) {
            const ptrdiff_t ix = ptrdiff_t(ox * stride_ + kx) - ptrdiff_t(pad_left_);
            if (ix < 0 || ix >= ptrdiff_t(input_width_)) continue;
            s += double(row_ptrs[ky][size_t(ix) * channels_ + c]) * double(w[c * 9 + ky * 3 + kx]);
          }
        }
        ref[ox * channels_ + c] = s;
      }
    }
    const ClampRange clamp = MakeClamp(ref, qmin_, qmax_);
    const anomalens_f32_minmax_params params = {clamp.min, clamp.max};
    std::vector<float> out(output_width * channels_ + kExtraFloats, kNaN);
    fn(channels_, output_width, input_width_, stride_, pad_left_, row_ptrs, packed.data(),
       out.data(), &params);
    for (size_t idx = 0; idx < out.size(); idx++) {
      if (idx < ref.size()) {
        ASSERT_NEAR(out[idx], Clamp(ref[idx], clamp), 1e-4)
            << "pixel " << idx / channels_ << " channel " << idx % channels_ << " (channels="
            << channels_ << " input_width=" << input_width_ << " stride=" << stride_
            << " pad_left=" << pad_left_ << " zero_row=" << zero_row_ << ")";
      } else {
        ASSERT_TRUE(std::isnan(out[idx])) << "kernel wrote outside the output at float " << idx;
      }
    }
  }

 private:
  size_t channels_ = 1, input_width_ = 3, stride_ = 1, pad_left_ = 1, pad_right_ = 1;
  int zero_row_ = -1;
  uint8_t qmin_ = 0, qmax_ = 255;
};

class DwconvTester {
 public:
  DwconvTester& channels(size_t v) { channels_ = v; return *this; }
  DwconvTester& kernel_size(size_t v) { kernel_size_ = v; return *this; }
  DwconvTester& width(size_t v) { width_ = v; return *this; }
  DwconvTester& step(size_t v) { step_ = v; return *this; }
  DwconvTester& output_gap(size_t floats) { output_gap_ = floats; return *this; }
  DwconvTester& input_offset(size_t floats) { input_offset_ = floats; return *this; }
  DwconvTester& zero_every(size_t v) { zero_every_ = v; return *this; }
  DwconvTester& qmin(uint8_t v) { qmin_ = v; return *this; }
  DwconvTester& qmax(uint8_t v) { qmax_ = v; return *this; }

  void Test(anomalens_f32_dwconv_minmax_ukernel_fn fn, size_t ct) const {
    std::mt19937 rng(channels_ * 31 + kernel_size_ * 7 + width_);
    const size_t step = step_ ? step_ : kernel_size_;
    Indirection ind = MakeIndirection(rng, width_, kernel_size_, step, channels_, input_offset_,
                                      zero_every_, 0.0f);
    std::vector<float> w = RandomVector(rng, channels_ * kernel_size_);
    std::vector<float> bias = RandomVector(rng, channels_);
    std::vector<float> packed(anomalens_pack_f32_dwconv_oihw_w(channels_, kernel_size_, ct,
                                                               w.data(), bias.data(), nullptr));
    anomalens_pack_f32_dwconv_oihw_w(channels_, kernel_size_, ct, w.data(), bias.data(),
                                     packed.data());
    std::vector<double> ref(width_ * channels_);
    for (size_t x = 0; x < width_; x++) {
      for (size_t c = 0; c < channels_; c++) {
        double s = bias[c];
        for (size_t t = 0; t < kernel_size_; t++) {
          s += double(ind.data[x * step + t][c]) * double(w[c * kernel_size_ + t]);
        }
        ref[x * channels_ + c] = s;
      }
    }
    const ClampRange clamp = MakeClamp(ref, qmin_, qmax_);
    const anomalens_f32_minmax_params params = {clamp.min, clamp.max};
    const size_t out_stride = channels_ + output_gap_;
    std::vector<float> out((width_ - 1) * out_stride + channels_ + kExtraFloats, kNaN);
    fn(channels_, width_, kernel_size_, ind.ptrs.data(), packed.data(), out.data(),
       step * sizeof(void*), output_gap_ * sizeof(float), input_offset_ * sizeof(float),
       ind.zero.data(), &params);
    for (size_t idx = 0; idx < out.size(); idx++) {
      const size_t x = idx / out_stride, c = idx % out_stride;
      if (x < width_ && c < channels_) {
        ASSERT_NEAR(out[idx], Clamp(ref[x * channels_ + c], clamp),
                    1e-5 * (1.0 + kernel_size_))
            << "pixel " << x << " channel " << c << " (channels=" << channels_
            << " kernel_size=" << kernel_size_ << ")";
      } else {
        ASSERT_TRUE(std::isnan(out[idx])) << "kernel wrote outside the output at float " << idx;
      }
    }
  }

 private:
  size_t channels_ = 1, kernel_size_ = 9, width_ = 1, step_ = 0, output_gap_ = 0;
  size_t input_offset_ = 0, zero_every_ = 0;
  uint8_t qmin_ = 0, qmax_ = 255;
};

class PoolTester {
 public:
  PoolTester& channels(size_t v) { channels_ = v; return *this; }
  PoolTester& kernel_size(size_t v) { kernel_size_ = v; return *this; }
  PoolTester& width(size_t v) { width_ = v; return *this; }
  PoolTester& step(size_t v) { step_ = v; return *this; }
  PoolTester& zero_every(size_t v) { zero_every_ = v; return *this; }

  void TestMax(anomalens_f32_maxpool_ukernel_fn fn) const {
    std::mt19937 rng(channels_ * 5 + kernel_size_ * 3 + width_);
    const size_t step = step_ ? step_ : kernel_size_;
    Indirection ind = MakeIndirection(rng, width_, kernel_size_, step, channels_, 0, zero_every_,
                                      -std::numeric_limits<float>::infinity());
    std::vector<float> out(width_ * channels_ + kExtraFloats, kNaN);
    fn(width_, kernel_size_, channels_, ind.ptrs.data(), out.data(), step * sizeof(void*));
    for (size_t idx = 0; idx < out.size(); idx++) {
      const size_t x = idx / channels_, c = idx % channels_;
      if (x < width_) {
        float m = -std::numeric_limits<float>::infinity();
        for (size_t t = 0; t < kernel_size_; t++) m = std::max(m, ind.data[x * step + t][c]);
        ASSERT_EQ(out[idx], m) << "pixel " << x << " channel " << c;
      } else {
        ASSERT_TRUE(std::isnan(out[idx])) << "kernel wrote outside the output at float " << idx;
      }
    }
  }

  void TestAvg(anomalens_f32_avgpool_ukernel_fn fn) const {
    std::mt19937 rng(channels_ * 5 + kernel_size_ * 3 + width_ + 1);
    const size_t step = step_ ? step_ : kernel_size_;
    Indirection ind =
        MakeIndirection(rng, width_, kernel_size_, step, channels_, 0, zero_every_, 0.0f);
    std::vector<float> multiplier = RandomVector(rng, width_, 0.01f, 1.0f);
    std::vector<float> out(width_ * channels_ + kExtraFloats, kNaN);
    fn(width_, kernel_size_, channels_, ind.ptrs.data(), out.data(), step * sizeof(void*),
       multiplier.data());
    for (size_t idx = 0; idx < out.size(); idx++) {
      const size_t x = idx / channels_, c = idx % channels_;
      if (x < width_) {
        double s = 0;
        for (size_t t = 0; t < kernel_size_; t++) s += ind.data[x * step + t][c];
        ASSERT_NEAR(out[idx], s * multiplier[x], 1e-6 * (1.0 + kernel_size_))
            << "pixel " << x << " channel " << c;
      } else {
        ASSERT_TRUE(std::isnan(out[idx])) << "kernel wrote outside the output at float " << idx;
      }
    }
  }

 private:
  size_t channels_ = 1, kernel_size_ = 9, width_ = 1, step_ = 0, zero_every_ = 0;
};

inline void TestGavgpool(anomalens_f32_gavgpool_ukernel_fn fn, size_t rows, size_t channels) {
  std::mt19937 rng(rows * 17 + channels);
  std::vector<float> x = RandomVector(rng, rows * channels + kExtraFloats);
  const float scale = 1.0f / static_cast<float>(rows);
  std::vector<float> y(channels + kExtraFloats, kNaN);
  fn(rows, channels, x.data(), y.data(), scale);
  for (size_t c = 0; c < y.size(); c++) {
    if (c < channels) {
      double s = 0;
      for (size_t r = 0; r < rows; r++) s += x[r * channels + c];
      ASSERT_NEAR(y[c], s * scale, 1e-6 * (1.0 + rows) * scale + 1e-6)
          << "channel " << c << " rows " << rows;
    } else {
      ASSERT_TRUE(std::isnan(y[c])) << "kernel wrote past channel " << channels;
    }
  }
}

enum class BinaryOp { kAdd, kMul };

inline void TestVbinary(anomalens_f32_vbinary_minmax_ukernel_fn fn, BinaryOp op, size_t n,
                        uint8_t qmin = 0, uint8_t qmax = 255, bool in_place = false) {
  std::mt19937 rng(n * 3 + qmin + qmax * 7);
  std::vector<float> a = RandomVector(rng, n + kExtraFloats);
  std::vector<float> b = RandomVector(rng, n + kExtraFloats);
  std::vector<double> ref(n);
  for (size_t i = 0; i < n; i++) {
    ref[i] = op == BinaryOp::kAdd ? double(a[i]) + b[i] : double(a[i]) * b[i];
  }
  const ClampRange clamp = MakeClamp(ref, qmin, qmax);
  const anomalens_f32_minmax_params params = {clamp.min, clamp.max};
  std::vector<float> y(n + kExtraFloats, kNaN);
  float* out = in_place ? a.data() : y.data();
  fn(n * sizeof(float), a.data(), b.data(), out, &params);
  for (size_t i = 0; i < n; i++) {
    ASSERT_NEAR(out[i], Clamp(ref[i], clamp), 1e-6) << "element " << i << " of " << n;
  }
  if (!in_place) {
    for (size_t i = n; i < y.size(); i++) {
      ASSERT_TRUE(std::isnan(y[i])) << "kernel wrote past element " << n;
    }
  }
}

inline void TestVmulc(anomalens_f32_vmulc_ukernel_fn fn, size_t rows, size_t channels) {
  std::mt19937 rng(rows * 11 + channels);
  std::vector<float> x = RandomVector(rng, rows * channels + kExtraFloats);
  std::vector<float> scale = RandomVector(rng, channels + kExtraFloats);
  std::vector<float> y(rows * channels + kExtraFloats, kNaN);
  fn(rows, channels, x.data(), scale.data(), y.data());
  for (size_t i = 0; i < y.size(); i++) {
    if (i < rows * channels) {
      ASSERT_NEAR(y[i], double(x[i]) * scale[i % channels], 1e-6) << "element " << i;
    } else {
      ASSERT_TRUE(std::isnan(y[i])) << "kernel wrote past element " << rows * channels;
    }
  }
}

enum class UnaryOp { kHswish, kSigmoid };

inline void TestVunary(anomalens_f32_vunary_ukernel_fn fn, UnaryOp op, size_t n, float lo,
                       float hi) {
  std::mt19937 rng(n * 13 + static_cast<int>(op));
  std::vector<float> x = RandomVector(rng, n + kExtraFloats, lo, hi);
  // Exact break points and extremes go first when there is room.
  const float specials[] = {0.0f, -3.0f, 3.0f, -0.0f, 1e-8f, -1e-8f, 88.0f, -88.0f, -87.0f,
                            -86.5f, 20.0f, -20.0f};
  for (size_t i = 0; i < n && i < sizeof(specials) / sizeof(specials[0]); i++) x[i] = specials[i];
  std::vector<float> y(n + kExtraFloats, kNaN);
  fn(n * sizeof(float), x.data(), y.data());
  for (size_t i = 0; i < y.size(); i++) {
    if (i >= n) {
      ASSERT_TRUE(std::isnan(y[i])) << "kernel wrote past element " << n;
      continue;
    }
    const double v = x[i];
    double ref;
    double tol;
    if (op == UnaryOp::kHswish) {
      ref = v * std::min(std::max(v + 3.0, 0.0), 6.0) / 6.0;
      tol = 1e-6 * std::fabs(ref) + 1e-7;
    } else {
      ref = 1.0 / (1.0 + std::exp(-v));
      // ~1e-6 relative; values below 1e-37 may flush to zero.
      tol = 1e-6 * std::fabs(ref) + 1e-37;
    }
    ASSERT_NEAR(y[i], ref, tol) << "x = " << x[i];
  }
}

}  // namespace anomalens_test

// SPDX-License-Identifier: Apache-2.0
#include "image/preprocess.h"

#include <algorithm>
#include <cmath>

namespace anomalens {

// Triangle filter whose support widens with the shrink factor, so downscaling averages every
// source pixel (antialiasing) instead of sampling a few (as PIL's BILINEAR does).
void Preprocessor::make_taps(int src, float window_start, float window, int dst, Taps* taps) {
  const double scale = static_cast<double>(window) / dst;
  const double support = std::max(scale, 1.0);
  taps->first.resize(dst);
  taps->count.resize(dst);
  taps->offset.resize(dst);
  taps->weights.clear();
  for (int i = 0; i < dst; ++i) {
    const double center = window_start + (i + 0.5) * scale;
    const int lo = std::max(static_cast<int>(std::floor(center - support + 0.5)), 0);
    const int hi = std::min(static_cast<int>(std::floor(center + support + 0.5)), src);
    taps->first[i] = lo;
    taps->offset[i] = static_cast<int>(taps->weights.size());
    double sum = 0;
    const size_t start = taps->weights.size();
    for (int j = lo; j < hi; ++j) {
      const double w = std::max(0.0, 1.0 - std::fabs((j + 0.5 - center) / support));
      taps->weights.push_back(static_cast<float>(w));
      sum += w;
    }
    taps->count[i] = hi - lo;
    if (sum > 0) {
      for (size_t k = start; k < taps->weights.size(); ++k) {
        taps->weights[k] = static_cast<float>(taps->weights[k] / sum);
      }
    }
  }
}

namespace {

template <typename T>
void convert_row(const T* px, int width, int src_c, float unit, ChannelOrder order, float* out) {
  // unit maps the sample range onto 0..255 (1 for 8-bit, 1/257 for 16-bit).
  for (int x = 0; x < width; ++x, px += src_c) {
    if (order == ChannelOrder::kGray) {
      out[x] = src_c >= 3 ? (0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2]) * unit : px[0] * unit;
      continue;
    }
    float r, g, b;
    if (src_c >= 3) {
      r = px[0] * unit; g = px[1] * unit; b = px[2] * unit;
    } else {
      r = g = b = px[0] * unit;
    }
    float* o = out + 3 * x;
    if (order == ChannelOrder::kRgb) {
      o[0] = r; o[1] = g; o[2] = b;
    } else {
      o[0] = b; o[1] = g; o[2] = r;
    }
  }
}

}  // namespace

void Preprocessor::run(const Image& image, const ModelMeta& meta, float* out) {
  const int sw = image.width, sh = image.height;
  const int dw = meta.input_width, dh = meta.input_height;
  const int c = meta.channel_count();

  float x0 = 0, win_w = static_cast<float>(sw), y0 = 0, win_h = static_cast<float>(sh);
  if (meta.resize == ResizePolicy::kCenterCrop) {
    if (int64_t{sw} * dh > int64_t{sh} * dw) {
      win_w = static_cast<float>(static_cast<double>(sh) * dw / dh);
      x0 = (sw - win_w) / 2;
    } else {
      win_h = static_cast<float>(static_cast<double>(sw) * dh / dw);
      y0 = (sh - win_h) / 2;
    }
  }
  make_taps(sw, x0, win_w, dw, &x_taps_);
  make_taps(sh, y0, win_h, dh, &y_taps_);

  // Only source rows some vertical tap touches are converted and resized horizontally.
  const int row_lo = y_taps_.first[0];
  const int row_hi = y_taps_.first[dh - 1] + y_taps_.count[dh - 1];
  row_.resize(static_cast<size_t>(sw) * c);
  temp_.resize(static_cast<size_t>(row_hi - row_lo) * dw * c);
  const float unit = image.bits == 16 ? 1.f / 257.f : 1.f;
  for (int y = row_lo; y < row_hi; ++y) {
    const size_t src_off = static_cast<size_t>(y) * sw * image.channels;
    if (image.bits == 16) {
      convert_row(image.pixels16.data() + src_off, sw, image.channels, unit, meta.channels, row_.data());
    } else {
      convert_row(image.pixels8.data() + src_off, sw, image.channels, unit, meta.channels, row_.data());
    }
    float* t = &temp_[static_cast<size_t>(y - row_lo) * dw * c];
    for (int x = 0; x < dw; ++x) {
      const float* w = &x_taps_.weights[x_taps_.offset[x]];
      const float* s = &row_[static_cast<size_t>(x_taps_.first[x]) * c];
      for (int k = 0; k < c; ++k) {
        float acc = 0;
        for (int j = 0; j < x_taps_.count[x]; ++j) acc += w[j] * s[j * c + k];
        t[x * c + k] = acc;
      }
    }
  }

  float mul[3], add[3];
  for (int k = 0; k < c; ++k) {
    mul[k] = 1.f / (meta.scale * meta.std[k]);
    add[k] = -meta.mean[k] / meta.std[k];
  }
  const size_t row_floats = static_cast<size_t>(dw) * c;
  for (int y = 0; y < dh; ++y) {
    const float* w = &y_taps_.weights[y_taps_.offset[y]];
    const float* t = &temp_[static_cast<size_t>(y_taps_.first[y] - row_lo) * row_floats];
    float* o = out + static_cast<size_t>(y) * row_floats;
    for (size_t i = 0; i < row_floats; ++i) {
      float acc = 0;
      for (int j = 0; j < y_taps_.count[y]; ++j) acc += w[j] * t[j * row_floats + i];
      const int k = static_cast<int>(i % c);
      o[i] = acc * mul[k] + add[k];
    }
  }
}

void flip_hwc(float* data, int width, int height, int channels, bool horizontal, bool vertical) {
  const size_t row = static_cast<size_t>(width) * channels;
  if (vertical) {
    for (int y = 0; y < height / 2; ++y) {
      std::swap_ranges(data + y * row, data + (y + 1) * row, data + (height - 1 - y) * row);
    }
  }
  if (horizontal) {
    for (int y = 0; y < height; ++y) {
      float* r = data + y * row;
      for (int x = 0; x < width / 2; ++x) {
        std::swap_ranges(r + x * channels, r + (x + 1) * channels, r + (width - 1 - x) * channels);
      }
    }
  }
}

}  // namespace anomalens

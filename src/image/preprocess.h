// SPDX-License-Identifier: Apache-2.0
// Image -> network input tensor, driven by the model's meta (docs/FORMAT.md, "Preprocessing").
// scripts/almtools/preprocess.py mirrors this step for step, so PyTorch and C++ see the same
// tensor.
//
//   Preprocessor pre;                               // keeps scratch buffers between calls
//   std::vector<float> input(meta.input_width * meta.input_height * meta.channel_count());
//   pre.run(image, meta, input.data());             // HWC floats, normalised
#pragma once

#include <vector>

#include "image/image.h"
#include "model/model.h"

namespace anomalens {

// Mirrors an HWC tensor in place: left-right, top-bottom or both (a 180-degree rotation). Used
// for test-time flips (classifier) and fit-time flips (one-class fitting).
void flip_hwc(float* data, int width, int height, int channels, bool horizontal, bool vertical);

class Preprocessor {
 public:
  // Writes input_height * input_width * channel_count floats (HWC) to `out`. The image must be
  // valid (as decode_image makes them). Allocates only when an image needs more scratch than
  // any before it.
  void run(const Image& image, const ModelMeta& meta, float* out);

 private:
  struct Taps {
    std::vector<int> first, count;  // per output index
    std::vector<float> weights;     // count[i] weights per output index, concatenated
    std::vector<int> offset;        // start of output i's weights in `weights`
  };
  static void make_taps(int src, float window_start, float window, int dst, Taps* taps);

  Taps x_taps_, y_taps_;
  std::vector<float> row_;   // one source row converted to network channels
  std::vector<float> temp_;  // horizontally resized rows: src_h x dst_w x C
};

}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: image bytes -> decode_image -> Preprocessor::run, with a model meta picked
// from a hash of the bytes (channels rgb/bgr/gray, stretch/center_crop, 1..48 x 1..48 input).
// Properties: no sanitizer report, no abort; a decoded image is consistent (sizes, channels,
// bits, buffer length); decoding is deterministic (a second decode over a differently scribbled
// stack gives the same pixels or the same error); the preprocessed tensor is finite; failures
// carry a message.
#include <cmath>
#include <vector>

#include "fuzz_common.h"
#include "image/image.h"
#include "image/preprocess.h"

using namespace anomalens;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint32_t h = fuzz::choice_hash(data, size);
  DecodeOptions options;
  // Keeps each run small and fast; the limit logic itself is exercised by bombs in the corpus.
  options.max_pixels = (h & 1) ? 4000000 : 250000;
  options.apply_exif_orientation = (h & 2) == 0;
  fuzz::scribble_stack(0x00);
  Result<Image> r = decode_image(data, size, options);
  fuzz::scribble_stack(0xA5);
  Result<Image> again = decode_image(data, size, options);
  if (r.ok() != again.ok()) fuzz::violated("decoding the same bytes twice succeeded once", "");
  if (r.ok() && (r.value().pixels8 != again.value().pixels8 || r.value().pixels16 != again.value().pixels16)) {
    fuzz::violated("decoding the same bytes twice gave different pixels", "");
  }
  if (!r.ok()) {
    fuzz::check_failure(r.status());
    const StatusCode c = r.status().code();
    if (c != StatusCode::kDecodeFailed && c != StatusCode::kOutOfMemory) {
      fuzz::violated("decode_image failed with an unexpected code", status_code_name(c));
    }
    return 0;
  }
  const Image& img = r.value();
  if (img.width < 1 || img.height < 1 || img.channels < 1 || img.channels > 4) {
    fuzz::violated("decoded image has impossible dimensions", "");
  }
  if (int64_t{img.width} * img.height > options.max_pixels) fuzz::violated("decoded past max_pixels", "");
  const size_t want = static_cast<size_t>(img.width) * img.height * img.channels;
  if (img.bits == 8 ? (img.pixels8.size() != want || !img.pixels16.empty())
                    : (img.bits != 16 || img.pixels16.size() != want || !img.pixels8.empty())) {
    fuzz::violated("pixel buffer does not match width x height x channels", "");
  }

  ModelMeta meta;
  meta.channels = static_cast<ChannelOrder>((h >> 2) % 3);
  meta.resize = ((h >> 4) & 1) ? ResizePolicy::kCenterCrop : ResizePolicy::kStretch;
  meta.input_width = 1 + static_cast<int>((h >> 5) % 48);
  meta.input_height = 1 + static_cast<int>((h >> 11) % 48);
  meta.scale = 255.f;
  meta.mean = {{0.485f, 0.456f, 0.406f}};
  meta.std = {{0.229f, 0.224f, 0.225f}};
  std::vector<float> out(static_cast<size_t>(meta.input_width) * meta.input_height * meta.channel_count());
  Preprocessor pre;
  pre.run(img, meta, out.data());
  for (float v : out) {
    // Inputs are 0..255 samples: (x/255 - mean)/std lies within about [-2.2, 2.7].
    if (!std::isfinite(v) || v < -2.5f || v > 3.f) fuzz::violated("preprocessed value out of range", "");
  }
  return 0;
}

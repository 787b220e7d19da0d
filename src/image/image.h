// SPDX-License-Identifier: Apache-2.0
// Decoded images and how they are made from bytes or raw RGBA.
//
//   Result<Image> img = decode_image(bytes, size, DecodeOptions{});
//   if (!img.ok()) return img.status();          // kDecodeFailed / kOutOfMemory, with the reason
//   printf("%dx%d, %d channel(s)\n", img.value().width, img.value().height, img.value().channels);
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "util/status.h"

namespace anomalens {

// Interleaved pixels, 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels, 8 or 16 bits.
// Exactly one of pixels8 / pixels16 is filled, per `bits`.
struct Image {
  int width = 0, height = 0, channels = 0;
  int bits = 8;
  std::vector<uint8_t> pixels8;
  std::vector<uint16_t> pixels16;
};

struct DecodeOptions {
  // Images whose header declares more pixels than this are refused before decoding
  // (decompression bombs). 64 Mpx by default; the CLI's --max-pixels and the JS option change it.
  int64_t max_pixels = int64_t{64} * 1000 * 1000;
  bool apply_exif_orientation = true;
};

// Decodes PNG, JPEG (baseline and progressive), BMP, GIF (first frame) and TGA. Fails with
// kDecodeFailed naming the reason (e.g. "not a recognised image format", "corrupt JPEG") or
// kOutOfMemory when the declared size exceeds options.max_pixels.
Result<Image> decode_image(const uint8_t* data, size_t size, const DecodeOptions& options);

// Copies raw RGBA pixels (canvas, webcam frames). Fails with kInvalidArgument when the size
// does not match width * height * 4 or a dimension is zero, kOutOfMemory above max_pixels.
Result<Image> image_from_rgba(const uint8_t* rgba, size_t size, int width, int height,
                              const DecodeOptions& options);

// JPEG EXIF orientation (1..8), or 1 when absent or unreadable. Never reads out of bounds.
int jpeg_exif_orientation(const uint8_t* data, size_t size);

// Applies an EXIF orientation (2..8 transform the image; 1 and others leave it).
void apply_orientation(Image* image, int orientation);

}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
#include <algorithm>
#include <utility>

#include "image/image.h"

namespace anomalens {

Result<Image> image_from_rgba(const uint8_t* rgba, size_t size, int width, int height,
                              const DecodeOptions& options) {
  if (width < 1 || height < 1) {
    return Status(StatusCode::kInvalidArgument,
                  "RGBA image " + std::to_string(width) + "x" + std::to_string(height) +
                      ": width and height must be at least 1");
  }
  const int64_t pixels = int64_t{width} * height;
  if (pixels > options.max_pixels) {
    return Status(StatusCode::kOutOfMemory, "RGBA image of " + std::to_string(pixels) +
                                                " pixels exceeds the limit of " +
                                                std::to_string(options.max_pixels));
  }
  if (rgba == nullptr || static_cast<uint64_t>(size) != static_cast<uint64_t>(pixels) * 4) {
    return Status(StatusCode::kInvalidArgument,
                  "RGBA buffer of " + std::to_string(size) + " bytes, expected " +
                      std::to_string(pixels * 4) + " for " + std::to_string(width) + "x" +
                      std::to_string(height));
  }
  Image img;
  img.width = width;
  img.height = height;
  img.channels = 4;
  img.pixels8.assign(rgba, rgba + size);
  return img;
}

namespace {

template <typename T>
std::vector<T> reorient(const std::vector<T>& src, int w, int h, int c, int orientation,
                        int* out_w, int* out_h) {
  const bool swap = orientation >= 5;
  const int nw = swap ? h : w, nh = swap ? w : h;
  std::vector<T> dst(src.size());
  for (int y = 0; y < nh; ++y) {
    for (int x = 0; x < nw; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2: sx = w - 1 - x; sy = y; break;
        case 3: sx = w - 1 - x; sy = h - 1 - y; break;
        case 4: sx = x; sy = h - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = h - 1 - x; break;
        case 7: sx = w - 1 - y; sy = h - 1 - x; break;
        case 8: sx = w - 1 - y; sy = x; break;
        default: break;
      }
      const T* s = &src[(static_cast<size_t>(sy) * w + sx) * c];
      T* d = &dst[(static_cast<size_t>(y) * nw + x) * c];
      for (int k = 0; k < c; ++k) d[k] = s[k];
    }
  }
  *out_w = nw;
  *out_h = nh;
  return dst;
}

uint16_t rd16(const uint8_t* p, bool le) { return le ? uint16_t(p[0] | p[1] << 8) : uint16_t(p[0] << 8 | p[1]); }
uint32_t rd32(const uint8_t* p, bool le) {
  return le ? uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24
            : uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// Orientation tag from a TIFF block (the payload of an APP1 "Exif\0\0" segment).
int tiff_orientation(const uint8_t* t, size_t n) {
  if (n < 8) return 1;
  bool le;
  if (t[0] == 'I' && t[1] == 'I') le = true;
  else if (t[0] == 'M' && t[1] == 'M') le = false;
  else return 1;
  if (rd16(t + 2, le) != 42) return 1;
  const uint32_t ifd = rd32(t + 4, le);
  if (ifd > n || n - ifd < 2) return 1;
  const uint16_t entries = rd16(t + ifd, le);
  for (uint32_t i = 0; i < entries; ++i) {
    const uint64_t e = uint64_t{ifd} + 2 + 12 * uint64_t{i};
    if (e + 12 > n) return 1;
    if (rd16(t + e, le) == 0x0112 && rd16(t + e + 2, le) == 3 /* SHORT */) {
      const int v = rd16(t + e + 8, le);
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

}  // namespace

int jpeg_exif_orientation(const uint8_t* data, size_t size) {
  if (size < 4 || data[0] != 0xFF || data[1] != 0xD8) return 1;
  size_t pos = 2;
  while (pos + 4 <= size) {
    if (data[pos] != 0xFF) return 1;
    const uint8_t marker = data[pos + 1];
    if (marker == 0xFF) { ++pos; continue; }               // fill byte
    if (marker == 0xDA || marker == 0xD9) return 1;        // start of scan / end: no EXIF
    const size_t len = size_t{data[pos + 2]} << 8 | data[pos + 3];
    if (len < 2 || pos + 2 + len > size) return 1;
    if (marker == 0xE1 && len >= 8 && std::equal(data + pos + 4, data + pos + 10, "Exif\0\0")) {
      return tiff_orientation(data + pos + 10, len - 8);
    }
    pos += 2 + len;
  }
  return 1;
}

void apply_orientation(Image* image, int orientation) {
  if (orientation < 2 || orientation > 8) return;
  int w = image->width, h = image->height;
  if (image->bits == 16) {
    image->pixels16 = reorient(image->pixels16, w, h, image->channels, orientation, &image->width, &image->height);
  } else {
    image->pixels8 = reorient(image->pixels8, w, h, image->channels, orientation, &image->width, &image->height);
  }
}

}  // namespace anomalens

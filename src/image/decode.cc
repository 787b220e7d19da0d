// SPDX-License-Identifier: Apache-2.0
// The only place stb_image is compiled. Only the formats Anomalens promises are enabled, which
// also keeps stb's less-hardened decoders (PSD, PIC, PNM, HDR) away from untrusted input.
#include <cstring>
#include <string>

#include "image/image.h"

#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_TGA
#define STBI_MAX_DIMENSIONS 65536
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include "stb_image.h"
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace anomalens {
namespace {

const char* sniff_format(const uint8_t* d, size_t n) {
  if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return "PNG";
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return "JPEG";
  if (n >= 4 && std::memcmp(d, "GIF8", 4) == 0) return "GIF";
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') return "BMP";
  return nullptr;  // TGA has no signature; stb tries it last
}

Status decode_error(const uint8_t* data, size_t size, const char* reason) {
  const char* fmt = sniff_format(data, size);
  if (fmt == nullptr) {
    if (size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0) {
      return Status(StatusCode::kDecodeFailed, "WebP is not decoded by the core (PNG, JPEG, BMP, GIF, TGA are)");
    }
    return Status(StatusCode::kDecodeFailed,
                  "not a recognised image format (PNG, JPEG, BMP, GIF, TGA)");
  }
  return Status(StatusCode::kDecodeFailed, std::string("corrupt or unsupported ") + fmt + " (" +
                                               (reason ? reason : "unknown reason") + ")");
}

}  // namespace

Result<Image> decode_image(const uint8_t* data, size_t size, const DecodeOptions& options) {
  if (data == nullptr || size == 0) return Status(StatusCode::kDecodeFailed, "empty file");
  if (size > size_t{0x7fffffff}) return Status(StatusCode::kDecodeFailed, "file larger than 2 GiB");
  const int len = static_cast<int>(size);
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &comp)) {
    return decode_error(data, size, stbi_failure_reason());
  }
  const int64_t pixels = int64_t{w} * h;
  if (w < 1 || h < 1) return decode_error(data, size, "zero width or height");
  if (pixels > options.max_pixels) {
    return Status(StatusCode::kOutOfMemory,
                  "image declares " + std::to_string(w) + "x" + std::to_string(h) + " = " +
                      std::to_string(pixels) + " pixels, above the limit of " +
                      std::to_string(options.max_pixels) + " (raise max_pixels to allow it)");
  }
  Image img;
  int dw = 0, dh = 0, dc = 0;
  if (stbi_is_16_bit_from_memory(data, len)) {
    stbi_us* p = stbi_load_16_from_memory(data, len, &dw, &dh, &dc, 0);
    if (!p) return decode_error(data, size, stbi_failure_reason());
    img.bits = 16;
    img.pixels16.assign(p, p + static_cast<size_t>(dw) * dh * dc);
    stbi_image_free(p);
  } else {
    stbi_uc* p = stbi_load_from_memory(data, len, &dw, &dh, &dc, 0);
    if (!p) return decode_error(data, size, stbi_failure_reason());
    img.bits = 8;
    img.pixels8.assign(p, p + static_cast<size_t>(dw) * dh * dc);
    stbi_image_free(p);
  }
  if (dc < 1 || dc > 4 || dw != w || dh != h) {
    return decode_error(data, size, "decoded size differs from the header");
  }
  img.width = dw;
  img.height = dh;
  img.channels = dc;
  if (options.apply_exif_orientation) apply_orientation(&img, jpeg_exif_orientation(data, size));
  return img;
}

}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
// The only place stb_image is compiled. Only the formats Anomalens promises are enabled, which
// also keeps stb's less-hardened decoders (PSD, PIC, PNM, HDR) away from untrusted input.
#include <algorithm>
#include <cctype>
#include <cstdlib>
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
// stb_image 2.27 can leave parts of its buffers unwritten on corrupt JPEGs and then reads
// them: zeroed allocations keep the result deterministic (and never expose old heap bytes).
#define STBI_MALLOC(size) std::calloc(1, size)
#define STBI_REALLOC(p, size) std::realloc(p, size)
#define STBI_FREE(p) std::free(p)
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

// Where stb_image would start reading JPEG segments, or 0 if it would not take the data for a
// JPEG. Like stb, any number of 0xFF fill bytes may precede the SOI marker's D8 (so a check
// keyed to "FF D8" at offset 0 alone would let "FF FF D8 ..." past it: found by fuzz_decode).
size_t jpeg_segments_start(const uint8_t* d, size_t n) {
  if (n < 2 || d[0] != 0xFF) return 0;
  size_t i = 1;
  while (i < n && d[i] == 0xFF) ++i;
  return i < n && d[i] == 0xD8 ? i + 1 : 0;
}

bool is_png(const uint8_t* d, size_t n) { return n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0; }

const char* sniff_format(const uint8_t* d, size_t n) {
  if (is_png(d, n)) return "PNG";
  if (jpeg_segments_start(d, n) != 0) return "JPEG";
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
                                               (reason && *reason ? reason : "unknown reason") + ")");
}

uint32_t be16(const uint8_t* p) { return uint32_t{p[0]} << 8 | p[1]; }
uint32_t le16(const uint8_t* p) { return uint32_t{p[0]} | uint32_t{p[1]} << 8; }
uint32_t be32(const uint8_t* p) { return be16(p) << 16 | be16(p + 2); }
uint32_t le32(const uint8_t* p) { return le16(p) | le16(p + 2) << 16; }

// Width x height as the file's header declares them, read without decoding anything, so a
// decompression bomb is refused before a pixel is allocated. Returns false when unknown.
bool declared_size(const uint8_t* d, size_t n, int64_t* w, int64_t* h) {
  const char* fmt = sniff_format(d, n);
  if (!fmt) return false;
  const std::string f = fmt;
  if (f == "PNG" && n >= 24 && std::memcmp(d + 12, "IHDR", 4) == 0) {
    *w = be32(d + 16);
    *h = be32(d + 20);
    return true;
  }
  if (f == "GIF" && n >= 10) {
    *w = le16(d + 6);
    *h = le16(d + 8);
    return true;
  }
  if (f == "BMP" && n >= 26) {
    *w = static_cast<int32_t>(le32(d + 18));
    *h = static_cast<int32_t>(le32(d + 22));
    if (*h < 0) *h = -*h;  // top-down bitmaps store a negative height
    return true;
  }
  if (f == "JPEG") {
    for (size_t pos = jpeg_segments_start(d, n); pos + 9 <= n;) {
      if (d[pos] != 0xFF) return false;
      const uint8_t m = d[pos + 1];
      if (m == 0xFF) { ++pos; continue; }
      const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
      if (sof) {
        *h = be16(d + pos + 5);
        *w = be16(d + pos + 7);
        return true;
      }
      if (m == 0xDA || m == 0xD9) return false;
      pos += 2 + be16(d + pos + 2);
    }
  }
  return false;
}

// stb_image 2.27 (Debian) trusts a JPEG Huffman table's code counts: more than 256 codes
// overflow its tables. Every DHT segment (also those between progressive scans) is checked
// here first, from `pos` (after SOI). Returns an empty string when the stream is acceptable,
// else the reason.
std::string check_jpeg_huffman_tables(const uint8_t* d, size_t n, size_t pos) {
  while (pos + 4 <= n) {
    if (d[pos] != 0xFF) {  // inside entropy-coded data: find the next marker
      ++pos;
      continue;
    }
    const uint8_t m = d[pos + 1];
    if (m == 0xFF || m == 0x00 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) {
      pos += (m == 0xFF) ? 1 : 2;  // fill byte, stuffed zero, restart marker, TEM
      continue;
    }
    if (m == 0xD9) return "";  // end of image
    const size_t len = be16(d + pos + 2);
    if (len < 2) return "";  // stb reports a bad length
    if (m == 0xC4) {
      // A segment cut short by the end of the file is still checked: stb parses it first.
      size_t t = pos + 4;
      const size_t end = std::min(pos + 2 + len, n);
      while (t < end) {
        if (end - t < 17) return "Huffman table segment too short";
        const int table_class = d[t] >> 4, table_id = d[t] & 15;
        if (table_class > 1 || table_id > 3) return "Huffman table class/id out of range";
        size_t codes = 0;
        for (int i = 1; i <= 16; ++i) codes += d[t + i];
        if (codes > 256) return "Huffman table declares " + std::to_string(codes) + " codes, at most 256";
        if (end - t - 17 < codes) return "Huffman table values run past the segment";
        t += 17 + codes;
      }
    }
    if (pos + 2 + len > n) return "";  // truncated elsewhere: stb reports it
    pos += 2 + len;
  }
  return "";
}

// stb_image 2.27 keeps a palettized BMP's palette in an uninitialised stack array and never
// checks a pixel's index against the palette's length, nor a palette length that the header's
// data offset makes zero or negative: such a file decodes to whatever the stack held, a
// different image on each call (found by fuzz_classify). The indices are checked here first,
// with stb's own layout rules: palette length from the data offset, rows padded to 4 bytes,
// bytes past the end of the file read as 0. Returns an empty string when the file is
// acceptable (or not a palettized BMP), else the reason.
std::string check_bmp_palette(const uint8_t* d, size_t n) {
  if (n < 30 || d[0] != 'B' || d[1] != 'M') return "";
  const int64_t offset = static_cast<int32_t>(le32(d + 10));
  const int64_t header_size = static_cast<int32_t>(le32(d + 14));
  const bool core_header = header_size == 12;  // OS/2 BITMAPCOREHEADER: 16-bit sizes, RGB triples
  const int64_t w = core_header ? le16(d + 18) : static_cast<int32_t>(le32(d + 18));
  int64_t h = core_header ? le16(d + 20) : static_cast<int32_t>(le32(d + 22));
  const int bpp = static_cast<int>(core_header ? le16(d + 24) : le16(d + 28));
  const bool bottom_up = h > 0;  // the usual layout: the file's first row is the image's last
  if (h < 0) h = -h;
  if (offset < 0 || (bpp != 1 && bpp != 4 && bpp != 8) || w <= 0 || h <= 0) return "";  // stb decides
  const int64_t entries = core_header ? (offset - 14 - 24) / 3 : (offset - 14 - header_size) >> 2;
  if (entries <= 0) return "the data offset leaves no room for the colour palette";
  if (entries >= (int64_t{1} << bpp)) return "";  // every index a pixel can hold is defined
  const int64_t row_bytes = bpp == 1 ? (w + 7) / 8 : bpp == 4 ? (w + 1) / 2 : w;
  const int64_t stride = row_bytes + (-row_bytes & 3);
  for (int64_t y = 0; y < h; ++y) {
    const int64_t row = offset + y * stride;
    if (row >= static_cast<int64_t>(n)) break;  // the rest reads as index 0
    for (int64_t x = 0; x < w; ++x) {
      const int64_t byte = row + x * bpp / 8;
      if (byte >= static_cast<int64_t>(n)) break;
      const int shift = 8 - bpp - static_cast<int>(x * bpp % 8);
      const int index = (d[byte] >> shift) & ((1 << bpp) - 1);
      if (index >= entries) {
        return "pixel (" + std::to_string(x) + ", " + std::to_string(bottom_up ? h - 1 - y : y) + ") uses colour " +
               std::to_string(index) + " of a " + std::to_string(entries) + "-colour palette";
      }
    }
  }
  return "";
}

// stb_image 2.27 grows its buffer for a PNG's image data to each IDAT chunk's declared length
// before it reads the chunk, so a 200-byte file declaring a 4 GB chunk made it allocate 2 GB
// (found by fuzz_decode) and a browser tab grow its memory to match. A chunk before IEND whose
// declared length runs past the end of the file makes stb fail anyway (out of data), so such a
// file is refused here first, before anything is allocated. Returns an empty string when the
// file is acceptable (or not a PNG), else the reason.
std::string check_png_chunk_lengths(const uint8_t* d, size_t n) {
  if (!is_png(d, n)) return "";
  for (size_t pos = 8; pos + 8 <= n;) {
    const uint32_t length = be32(d + pos);
    const uint8_t* type = d + pos + 4;
    if (std::memcmp(type, "IEND", 4) == 0) return "";  // stb reads nothing after it
    const size_t left = n - pos - 8;
    if (length > left) {
      const bool printable = std::all_of(type, type + 4, [](uint8_t c) { return std::isalpha(c) != 0; });
      return "chunk " + (printable ? std::string(reinterpret_cast<const char*>(type), 4) + " " : std::string()) +
             "at byte " + std::to_string(pos) + " declares " + std::to_string(length) + " bytes; " +
             std::to_string(left) + " follow";
    }
    pos += 12 + size_t{length};  // length, type, data, CRC
  }
  return "";
}

}  // namespace

Result<Image> decode_image(const uint8_t* data, size_t size, const DecodeOptions& options) {
  if (data == nullptr || size == 0) return Status(StatusCode::kDecodeFailed, "empty file");
  if (size > size_t{0x7fffffff}) return Status(StatusCode::kDecodeFailed, "file larger than 2 GiB");
  const int len = static_cast<int>(size);
  int64_t declared_w = 0, declared_h = 0;
  // Division form: the header's 32-bit dimensions multiplied could overflow.
  if (declared_size(data, size, &declared_w, &declared_h) && declared_w > 0 && declared_h > 0 &&
      declared_h > options.max_pixels / declared_w) {
    return Status(StatusCode::kOutOfMemory,
                  "image declares " + std::to_string(declared_w) + "x" + std::to_string(declared_h) + " = " +
                      // Both are below 2^32 (header fields), so the product fits in 64 unsigned bits.
                      std::to_string(static_cast<uint64_t>(declared_w) * static_cast<uint64_t>(declared_h)) +
                      " pixels, above the limit of " +
                      std::to_string(options.max_pixels) + " (raise max_pixels to allow it)");
  }
  if (const size_t segments = jpeg_segments_start(data, size)) {
    const std::string bad = check_jpeg_huffman_tables(data, size, segments);
    if (!bad.empty()) return decode_error(data, size, bad.c_str());
  }
  const std::string bad_palette = check_bmp_palette(data, size);
  if (!bad_palette.empty()) return decode_error(data, size, bad_palette.c_str());
  const std::string bad_chunk = check_png_chunk_lengths(data, size);
  if (!bad_chunk.empty()) return decode_error(data, size, bad_chunk.c_str());
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &comp)) {
    return decode_error(data, size, stbi_failure_reason());
  }
  if (h < 0 && h > -STBI_MAX_DIMENSIONS) h = -h;  // stb reports top-down BMP heights negative
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

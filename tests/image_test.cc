// SPDX-License-Identifier: Apache-2.0
// Decoding every promised format and layout, EXIF orientation, clear failures, pixel limits,
// and the resize arithmetic of docs/FORMAT.md.
#include <gtest/gtest.h>

#include <cstring>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include "stb_image_write.h"

#include "image/image.h"
#include "image/preprocess.h"
#include "test_util.h"

namespace anomalens {
namespace {

using testing_util::read_bytes;

void append(void* ctx, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(ctx);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

// A w x h test pattern with `c` channels: value depends on position and channel.
std::vector<uint8_t> pattern(int w, int h, int c) {
  std::vector<uint8_t> p(static_cast<size_t>(w) * h * c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) p[(static_cast<size_t>(y) * w + x) * c + k] = static_cast<uint8_t>((x * 40 + y * 7 + k * 60) % 256);
  return p;
}

enum class Fmt { kPng, kBmp, kTga, kJpg };

std::vector<uint8_t> encode(Fmt f, int w, int h, int c, const std::vector<uint8_t>& px) {
  std::vector<uint8_t> out;
  switch (f) {
    case Fmt::kPng: stbi_write_png_to_func(append, &out, w, h, c, px.data(), w * c); break;
    case Fmt::kBmp: stbi_write_bmp_to_func(append, &out, w, h, c, px.data()); break;
    case Fmt::kTga: stbi_write_tga_to_func(append, &out, w, h, c, px.data()); break;
    case Fmt::kJpg: stbi_write_jpg_to_func(append, &out, w, h, c, px.data(), 95); break;
  }
  return out;
}

TEST(Decode, LosslessFormatsRoundTripEveryLayout) {
  for (Fmt f : {Fmt::kPng, Fmt::kBmp, Fmt::kTga}) {
    for (int c = 1; c <= 4; ++c) {
      const std::vector<uint8_t> px = pattern(7, 5, c);
      const std::vector<uint8_t> bytes = encode(f, 7, 5, c, px);
      Result<Image> img = decode_image(bytes.data(), bytes.size(), DecodeOptions{});
      ASSERT_TRUE(img.ok()) << "format " << static_cast<int>(f) << " c=" << c << ": " << img.status().to_string();
      EXPECT_EQ(img.value().width, 7);
      EXPECT_EQ(img.value().height, 5);
      EXPECT_EQ(img.value().bits, 8);
      // BMP stores gray as RGB and gray+alpha as RGBA; compare the gray channel then.
      const Image& im = img.value();
      for (int y = 0; y < 5; ++y)
        for (int x = 0; x < 7; ++x) {
          const size_t i = static_cast<size_t>(y) * 7 + x;
          EXPECT_EQ(im.pixels8[i * im.channels], px[i * c]) << "pixel " << x << "," << y;
        }
    }
  }
}

TEST(Decode, JpegAndGif) {
  const std::vector<uint8_t> jpg = encode(Fmt::kJpg, 16, 8, 3, pattern(16, 8, 3));
  Result<Image> img = decode_image(jpg.data(), jpg.size(), DecodeOptions{});
  ASSERT_TRUE(img.ok()) << img.status().to_string();
  EXPECT_EQ(img.value().width, 16);
  EXPECT_EQ(img.value().channels, 3);
  // 2x1 GIF89a, global palette {black, white}, pixels white, black (LZW min code size 2).
  const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 2, 0, 1, 0, 0x80, 0, 0,
                         0, 0, 0, 255, 255, 255,
                         0x2C, 0, 0, 0, 0, 2, 0, 1, 0, 0,
                         2, 2, 0x4C, 0x01, 0, 0x3B};
  Result<Image> g = decode_image(gif, sizeof gif, DecodeOptions{});
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(g.value().width, 2);
  EXPECT_EQ(g.value().height, 1);
}

TEST(Decode, SixteenBitAndGrayAlphaFixtures) {
  for (const char* name : {"golden_gray16.png", "golden_rgb16.png", "golden_graya.png", "golden_rgb.png"}) {
    std::vector<uint8_t> bytes;
    ASSERT_TRUE(read_bytes(testing_util::source(std::string("tests/data/") + name), &bytes)) << name;
    Result<Image> img = decode_image(bytes.data(), bytes.size(), DecodeOptions{});
    ASSERT_TRUE(img.ok()) << name << ": " << img.status().to_string();
    if (std::string(name).find("16") != std::string::npos) EXPECT_EQ(img.value().bits, 16) << name;
    if (std::string(name).find("graya") != std::string::npos) EXPECT_EQ(img.value().channels, 2) << name;
  }
}

TEST(Decode, RealElpvImage) {
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(read_bytes(testing_util::shared_data("elpv/normal/cell0004.png"), &bytes) ||
              read_bytes(testing_util::shared_data("elpv/abnormal/cell0001.png"), &bytes));
  Result<Image> img = decode_image(bytes.data(), bytes.size(), DecodeOptions{});
  ASSERT_TRUE(img.ok()) << img.status().to_string();
  EXPECT_EQ(img.value().width, 300);
  EXPECT_EQ(img.value().height, 300);
}

TEST(Decode, FailuresAreClear) {
  const std::string text = "this is a text file, not an image\n";
  Result<Image> t = decode_image(reinterpret_cast<const uint8_t*>(text.data()), text.size(), DecodeOptions{});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kDecodeFailed);
  EXPECT_NE(t.status().message().find("not a recognised image format"), std::string::npos);

  Result<Image> empty = decode_image(nullptr, 0, DecodeOptions{});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty"), std::string::npos);

  std::vector<uint8_t> png = encode(Fmt::kPng, 9, 9, 3, pattern(9, 9, 3));
  for (size_t cut : {png.size() / 2, size_t{20}, size_t{9}}) {
    Result<Image> r = decode_image(png.data(), cut, DecodeOptions{});
    ASSERT_FALSE(r.ok()) << "cut at " << cut;
    EXPECT_EQ(r.status().code(), StatusCode::kDecodeFailed);
    EXPECT_NE(r.status().message().find("PNG"), std::string::npos) << r.status().message();
  }
}

TEST(Decode, RefusesDecompressionBombsBeforeDecoding) {
  // A PNG header (signature + IHDR) declaring 60000 x 60000 RGB pixels, nothing else.
  std::vector<uint8_t> png = encode(Fmt::kPng, 1, 1, 3, pattern(1, 1, 3));
  auto put32be = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) png[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
  };
  put32be(16, 60000);
  put32be(20, 60000);
  Result<Image> r = decode_image(png.data(), png.size(), DecodeOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(r.status().message().find("60000x60000"), std::string::npos) << r.status().message();

  DecodeOptions small;
  small.max_pixels = 10;
  std::vector<uint8_t> ok = encode(Fmt::kPng, 4, 4, 1, pattern(4, 4, 1));
  EXPECT_EQ(decode_image(ok.data(), ok.size(), small).status().code(), StatusCode::kOutOfMemory);
}

// An 8-bit palettized BMP (BITMAPINFOHEADER) of w x h pixels with `colours` palette entries
// (entry i is grey level 40 * i) and the given pixel indices, rows bottom-up and padded.
std::vector<uint8_t> palette_bmp(int w, int h, int colours, const std::vector<uint8_t>& indices) {
  const int stride = (w + 3) & ~3;
  const uint32_t offset = 14 + 40 + 4 * colours;
  std::vector<uint8_t> b(offset + static_cast<size_t>(stride) * h, 0);
  auto put = [&](size_t at, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  b[0] = 'B';
  b[1] = 'M';
  put(2, static_cast<uint32_t>(b.size()), 4);
  put(10, offset, 4);
  put(14, 40, 4);
  put(18, w, 4);
  put(22, h, 4);
  put(26, 1, 2);   // planes
  put(28, 8, 2);   // bits per pixel
  put(46, colours, 4);
  for (int i = 0; i < colours; ++i) put(54 + 4 * i, 0x010101u * (40 * i), 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) b[offset + static_cast<size_t>(h - 1 - y) * stride + x] = indices[y * w + x];
  return b;
}

// stb_image reads an undefined palette entry from uninitialised stack memory: a file whose
// pixels point past its palette (or whose data offset leaves no palette) is refused, so the
// same bytes can never decode to different images (found by fuzz_classify).
TEST(Decode, PalettizedBmpIndicesAreChecked) {
  const std::vector<uint8_t> valid = {0, 1, 2, 3, 2, 1};
  std::vector<uint8_t> good = palette_bmp(3, 2, 4, valid);  // a short palette is legal
  Result<Image> r = decode_image(good.data(), good.size(), DecodeOptions{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r.value().width, 3);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(r.value().pixels8[static_cast<size_t>(i) * r.value().channels], 40 * valid[i]);

  std::vector<uint8_t> past = palette_bmp(3, 2, 4, {0, 1, 2, 3, 9, 1});  // image pixel (1, 1)
  Result<Image> bad = decode_image(past.data(), past.size(), DecodeOptions{});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDecodeFailed);
  EXPECT_NE(bad.status().message().find("BMP"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("pixel (1, 1) uses colour 9 of a 4-colour palette"), std::string::npos) << bad.status().message();

  std::vector<uint8_t> no_palette = good;
  for (int i = 10; i < 14; ++i) no_palette[i] = 0;  // data offset 0
  Result<Image> none = decode_image(no_palette.data(), no_palette.size(), DecodeOptions{});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no room for the colour palette"), std::string::npos) << none.status().message();
}

// Byte offset of the first PNG chunk of the given type (its length field).
size_t png_chunk_at(const std::vector<uint8_t>& png, const char* type) {
  for (size_t pos = 8; pos + 8 <= png.size();) {
    if (std::memcmp(png.data() + pos + 4, type, 4) == 0) return pos;
    pos += 12 + (size_t{png[pos]} << 24 | size_t{png[pos + 1]} << 16 | size_t{png[pos + 2]} << 8 | png[pos + 3]);
  }
  return 0;
}

void put_be32(std::vector<uint8_t>* b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*b)[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

// stb grows its IDAT buffer to a chunk's declared length before reading it: a small file
// declaring a 4 GB chunk made it allocate 2 GB. Such chunks are refused first.
TEST(Decode, PngChunkLengthsAreCheckedBeforeAllocating) {
  const std::vector<uint8_t> good = encode(Fmt::kPng, 9, 7, 1, pattern(9, 7, 1));
  const size_t idat = png_chunk_at(good, "IDAT");
  ASSERT_GT(idat, 0u);
  std::vector<uint8_t> huge = good;
  put_be32(&huge, idat, 0xF9970D49u);
  Result<Image> r = decode_image(huge.data(), huge.size(), DecodeOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDecodeFailed);
  const std::string expected = "chunk IDAT at byte " + std::to_string(idat) + " declares " + std::to_string(0xF9970D49u) + " bytes; " +
                               std::to_string(good.size() - idat - 8) + " follow";
  EXPECT_NE(r.status().message().find(expected), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("PNG"), std::string::npos) << r.status().message();

  // One byte too many is refused too; the exact length decodes.
  std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(png_chunk_at(good, "IEND")));
  const uint32_t idat_len = static_cast<uint32_t>(cut.size() - idat - 8);  // data and CRC: the file's rest
  put_be32(&cut, idat, idat_len + 1);
  EXPECT_FALSE(decode_image(cut.data(), cut.size(), DecodeOptions{}).ok());

  // Nothing after IEND is read: a bogus IEND length or trailing bytes still decode, as in stb.
  std::vector<uint8_t> trailing = good;
  put_be32(&trailing, png_chunk_at(trailing, "IEND"), 0xFFFFFFFFu);
  trailing.insert(trailing.end(), {'j', 'u', 'n', 'k'});
  Result<Image> ok = decode_image(trailing.data(), trailing.size(), DecodeOptions{});
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok.value().width, 9);
}

// Inserts an APP1 Exif segment with the given orientation right after SOI.
std::vector<uint8_t> with_orientation(const std::vector<uint8_t>& jpg, int orientation) {
  const uint8_t tiff[] = {'I', 'I', 42, 0, 8, 0, 0, 0,      // little-endian TIFF, IFD at 8
                          1, 0,                              // one entry
                          0x12, 0x01, 3, 0, 1, 0, 0, 0,      // tag 0x0112 SHORT count 1
                          static_cast<uint8_t>(orientation), 0, 0, 0,
                          0, 0, 0, 0};                       // no next IFD
  std::vector<uint8_t> seg = {0xFF, 0xE1, 0, 0, 'E', 'x', 'i', 'f', 0, 0};
  seg.insert(seg.end(), tiff, tiff + sizeof tiff);
  const size_t len = seg.size() - 2;
  seg[2] = static_cast<uint8_t>(len >> 8);
  seg[3] = static_cast<uint8_t>(len & 0xFF);
  std::vector<uint8_t> out(jpg.begin(), jpg.begin() + 2);
  out.insert(out.end(), seg.begin(), seg.end());
  out.insert(out.end(), jpg.begin() + 2, jpg.end());
  return out;
}

TEST(Decode, ExifOrientationIsApplied) {
  // 16x8 image, left half black, right half white.
  std::vector<uint8_t> px(16 * 8, 0);
  for (int y = 0; y < 8; ++y)
    for (int x = 8; x < 16; ++x) px[y * 16 + x] = 255;
  const std::vector<uint8_t> jpg = encode(Fmt::kJpg, 16, 8, 1, px);
  EXPECT_EQ(jpeg_exif_orientation(jpg.data(), jpg.size()), 1);
  // 6 = rotate 90 degrees clockwise: 8 wide, 16 tall, the white half ends up at the bottom.
  const std::vector<uint8_t> rotated = with_orientation(jpg, 6);
  EXPECT_EQ(jpeg_exif_orientation(rotated.data(), rotated.size()), 6);
  Result<Image> img = decode_image(rotated.data(), rotated.size(), DecodeOptions{});
  ASSERT_TRUE(img.ok()) << img.status().to_string();
  ASSERT_EQ(img.value().width, 8);
  ASSERT_EQ(img.value().height, 16);
  const int c = img.value().channels;  // stb writes gray JPEGs as YCbCr: 3 channels back
  EXPECT_LT(img.value().pixels8[(2 * 8 + 4) * c], 40);    // top: black
  EXPECT_GT(img.value().pixels8[(13 * 8 + 4) * c], 215);  // bottom: white
  // 3 = rotate 180: white on the left.
  const std::vector<uint8_t> flipped = with_orientation(jpg, 3);
  Result<Image> f = decode_image(flipped.data(), flipped.size(), DecodeOptions{});
  ASSERT_TRUE(f.ok());
  EXPECT_GT(f.value().pixels8[(4 * 16 + 2) * c], 215);
  EXPECT_LT(f.value().pixels8[(4 * 16 + 13) * c], 40);
  // A broken EXIF block is ignored, never read past.
  std::vector<uint8_t> broken = with_orientation(jpg, 6);
  broken[4 + 10 + 4] = 0xFF;  // IFD offset points far outside
  EXPECT_EQ(jpeg_exif_orientation(broken.data(), broken.size()), 1);
}

TEST(Decode, RgbaInputIsChecked) {
  std::vector<uint8_t> px(4 * 3 * 2, 7);
  EXPECT_TRUE(image_from_rgba(px.data(), px.size(), 3, 2, DecodeOptions{}).ok());
  EXPECT_EQ(image_from_rgba(px.data(), px.size(), 4, 2, DecodeOptions{}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(image_from_rgba(px.data(), px.size(), 0, 2, DecodeOptions{}).status().code(), StatusCode::kInvalidArgument);
}

ModelMeta gray_meta(int w, int h) {
  ModelMeta m;
  m.input_width = w;
  m.input_height = h;
  m.channels = ChannelOrder::kGray;
  m.scale = 1;
  m.mean = {0, 0, 0};
  m.std = {1, 1, 1};
  return m;
}

TEST(Preprocess, ShrinkAveragesWithTriangleFilter) {
  // 4x1 -> 2x1: scale 2, support 2. Output 0: center 1, taps j=0..2 (floor(1-2+.5)=-1 -> 0,
  // floor(1+2+.5)=3): weights 1-|j+.5-1|/2 = .75, .75, .25 -> normalised /1.75.
  Image img;
  img.width = 4; img.height = 1; img.channels = 1;
  img.pixels8 = {10, 20, 30, 40};
  float out[2];
  Preprocessor p;
  p.run(img, gray_meta(2, 1), out);
  EXPECT_NEAR(out[0], (.75f * 10 + .75f * 20 + .25f * 30) / 1.75f, 1e-4f);
  // Output 1: center 3, taps j=2..3 (hi = min(5, 4)): weights .75 (j=2: |2.5-3|/2=.25), .75 (j=3), and j=1: 1-|1.5-3|/2=.25
  // lo = floor(3-2+.5) = 1 -> taps 1,2,3 with .25, .75, .75.
  EXPECT_NEAR(out[1], (.25f * 20 + .75f * 30 + .75f * 40) / 1.75f, 1e-4f);
}

TEST(Preprocess, EnlargeInterpolatesLinearly) {
  // 2x1 -> 4x1: scale .5, support 1. Output 1: center .75, taps 0..1 with weights .75, .25.
  Image img;
  img.width = 2; img.height = 1; img.channels = 1;
  img.pixels8 = {0, 100};
  float out[4];
  Preprocessor p;
  p.run(img, gray_meta(4, 1), out);
  EXPECT_NEAR(out[0], 0.f, 1e-5f);   // center .25: taps j=0 weight .75 and j=... only j=0 (lo=0, hi=floor(1.75)=1)
  EXPECT_NEAR(out[1], 25.f, 1e-4f);
  EXPECT_NEAR(out[2], 75.f, 1e-4f);
  EXPECT_NEAR(out[3], 100.f, 1e-4f);
}

TEST(Preprocess, NormalisesAndConvertsChannels) {
  Image img;
  img.width = 1; img.height = 1; img.channels = 3;
  img.pixels8 = {255, 0, 51};
  ModelMeta m;
  m.input_width = 1; m.input_height = 1;
  m.channels = ChannelOrder::kBgr;
  m.scale = 255;
  m.mean = {0.5f, 0.5f, 0.5f};
  m.std = {0.5f, 0.25f, 1.f};
  float out[3];
  Preprocessor p;
  p.run(img, m, out);
  EXPECT_NEAR(out[0], (0.2f - 0.5f) / 0.5f, 1e-5f);  // B
  EXPECT_NEAR(out[1], (0.f - 0.5f) / 0.25f, 1e-5f);  // G
  EXPECT_NEAR(out[2], (1.f - 0.5f) / 1.f, 1e-5f);    // R
  m.channels = ChannelOrder::kGray;
  m.mean = {0, 0, 0};
  m.std = {1, 1, 1};
  p.run(img, m, out);
  EXPECT_NEAR(out[0], (0.299f * 255 + 0.114f * 51) / 255, 1e-5f);
}

}  // namespace
}  // namespace anomalens

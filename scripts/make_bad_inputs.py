#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes a corpus of hostile images and models, and what each should do (PIL + NumPy only).

    /usr/bin/python3 scripts/make_bad_inputs.py OUTDIR

OUTDIR/images/*  empty, truncated and corrupt PNG/JPEG/GIF/BMP/TGA, wrong extensions, text and
                 binary non-images, 1x1, 1x5000, 5000x1, 16-bit, CMYK JPEG, gray+alpha, palette,
                 interlaced, progressive, EXIF, animated GIF, and decompression bombs (small
                 files whose headers declare up to 100000x100000 pixels)
OUTDIR/models/*  truncated, wrong magic/version, sections/offsets past the end, absurd sizes,
                 NaN/Inf weights, unknown ops, shapes that do not chain, and valid-but-hostile
                 models (unbounded "probabilities", overflowing logits, huge input)
OUTDIR/manifest.json  [{"file": "images/x.png", "kind": "image"|"model",
                        "expect": "ok"|"fail"|"any", "code": "decode_failed"|..., "why": "..."}]

"expect" is what every surface (CLI, wasm, JS) must do with the file: "ok" classifies (images:
with build/fixtures/allops.alm) or loads (models), "fail" reports `code`, "any" may do either
(e.g. a JPEG truncated inside its scan data, which decoders conventionally show partly) but
must not crash, and a failure must carry a code and a message; "score_in_range" (models) may
load or not, but if it loads every verdict must keep score and scores[] finite in [0, 1].
A missing "code" on "fail" means any error code. "slow": true marks files that take long
with the current core (tests run them only where a timeout can stop them). Deterministic: the same bytes on every run.
"""

import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from almtools import alm  # noqa: E402

RNG = np.random.default_rng(1234)
ENTRIES = []


def add(out, rel, data, expect, code=None, why="", kind=None, slow=False):
    path = os.path.join(out, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    kind = kind or ("model" if rel.startswith("models/") else "image")
    entry = {"file": rel, "kind": kind, "expect": expect, "why": why}
    if code:
        entry["code"] = code
    if slow:
        entry["slow"] = True
    ENTRIES.append(entry)


# ---- image helpers ---------------------------------------------------------------------------

def pil_bytes(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(w, h, mode="RGB"):
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    r = np.broadcast_to(x, (h, w))
    g = np.broadcast_to(y, (h, w))
    b = (r + g) / 2
    rgb = np.stack([r, g, b], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb, "RGB").convert(mode)


def png_chunk(kind, payload):
    return (struct.pack(">I", len(payload)) + kind + payload +
            struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def png_raw(w, h, bit_depth, color_type, rows=None, idat=None):
    """A PNG from raw filtered rows (filter byte 0 each) or a given IDAT payload."""
    sig = b"\x89PNG\r\n\x1a\n"
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(b"".join(b"\0" + r for r in rows), 9)
    return sig + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png16(w, h, channels):
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    a = (np.arange(w * h * channels, dtype=np.uint32) * 2731 % 65536).astype(">u2")
    a = a.reshape(h, w * channels)
    return png_raw(w, h, 16, color_type, rows=[a[i].tobytes() for i in range(h)])


def bmp_header(w, h, bpp=24, pixel_bytes=0, compression=0):
    header_size = 14 + 40
    file_size = header_size + pixel_bytes
    return (b"BM" + struct.pack("<IHHI", file_size, 0, 0, header_size) +
            struct.pack("<IiiHHIIiiII", 40, w, h, 1, bpp, compression, pixel_bytes, 2835, 2835, 0, 0))


def gif_header(w, h):
    # Logical screen w x h, no global colour table, then an image descriptor of the same size
    # and a tiny LZW stream.
    screen = b"GIF89a" + struct.pack("<HHBBB", w, h, 0x00, 0, 0)
    desc = b"," + struct.pack("<HHHHB", 0, 0, w, h, 0x80)  # local colour table, 2 entries
    lct = b"\x00\x00\x00\xff\xff\xff"
    data = b"\x02\x02\x44\x01\x00"  # min code size 2, one sub-block
    return screen + desc + lct + data + b";"


def jpeg_with_size(w, h):
    """A real 8x8 baseline JPEG whose SOF0 height and width are rewritten to h x w."""
    data = bytearray(pil_bytes(gradient(8, 8), "JPEG", quality=90))
    pos = 2
    while pos + 9 <= len(data):
        marker = data[pos + 1]
        seg = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[pos + 5:pos + 9] = struct.pack(">HH", h, w)
            return bytes(data)
        pos += 2 + seg
    raise RuntimeError("no SOF marker in PIL's JPEG")


def jpeg_sof_offset(data):
    pos = 2
    while pos + 4 <= len(data):
        marker = data[pos + 1]
        if marker == 0xDA:
            return pos
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    raise RuntimeError("no SOS marker")


def tga_header(w, h, bpp=24, image_type=2):
    return struct.pack("<BBBHHBHHHHBB", 0, 0, image_type, 0, 0, 0, 0, 0, w, h, bpp, 0)


def exif_jpeg(orientation_bytes):
    """8x6 JPEG with a hand-made APP1 Exif segment (little-endian TIFF) spliced after SOI."""
    base = pil_bytes(gradient(8, 6), "JPEG", quality=90)
    app1 = b"Exif\0\0" + orientation_bytes
    return base[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + base[2:]


def images(out):
    I = "images/"
    ok_png = pil_bytes(gradient(40, 30), "PNG")
    ok_jpg = pil_bytes(gradient(40, 30), "JPEG", quality=90)
    ok_gif = pil_bytes(gradient(40, 30).convert("P"), "GIF")
    ok_bmp = pil_bytes(gradient(40, 30), "BMP")

    # Good ones: every surface must classify these.
    add(out, I + "ok_rgb.png", ok_png, "ok", why="plain RGB PNG")
    add(out, I + "ok_rgb.jpg", ok_jpg, "ok", why="baseline JPEG")
    add(out, I + "ok_palette.gif", ok_gif, "ok", why="GIF")
    add(out, I + "ok_rgb.bmp", ok_bmp, "ok", why="24-bit BMP")
    add(out, I + "ok_rgba.png", pil_bytes(gradient(33, 17, "RGBA"), "PNG"), "ok", why="RGBA PNG")
    add(out, I + "ok_gray.png", pil_bytes(gradient(33, 17, "L"), "PNG"), "ok", why="8-bit gray")
    add(out, I + "ok_gray_alpha.png", pil_bytes(gradient(33, 17, "LA"), "PNG"), "ok", why="gray+alpha")
    pal = gradient(33, 17).convert("P")
    add(out, I + "ok_palette_trns.png", pil_bytes(pal, "PNG", transparency=0), "ok",
        why="palette PNG with tRNS")
    add(out, I + "ok_1bit.png", pil_bytes(gradient(33, 17, "1"), "PNG"), "ok", why="1-bit PNG")
    add(out, I + "ok_raw_gray.png", png_raw(9, 7, 8, 0, rows=[bytes(range(i, i + 9)) for i in range(7)]),
        "ok", why="hand-written 8-bit gray PNG")
    add(out, I + "ok_16bit_gray.png", png16(21, 13, 1), "ok", why="16-bit gray")
    add(out, I + "ok_16bit_rgb.png", png16(21, 13, 3), "ok", why="16-bit RGB")
    add(out, I + "ok_16bit_rgba.png", png16(21, 13, 4), "ok", why="16-bit RGBA")
    add(out, I + "ok_16bit_gray_alpha.png", png16(21, 13, 2), "ok", why="16-bit gray+alpha")
    add(out, I + "ok_1x1.png", pil_bytes(gradient(1, 1), "PNG"), "ok", why="1x1 pixel")
    add(out, I + "ok_1x1.jpg", pil_bytes(gradient(1, 1), "JPEG"), "ok", why="1x1 JPEG")
    add(out, I + "ok_1x5000.png", pil_bytes(gradient(1, 5000), "PNG"), "ok", why="1 wide, 5000 high")
    add(out, I + "ok_5000x1.png", pil_bytes(gradient(5000, 1), "PNG"), "ok", why="5000 wide, 1 high")
    add(out, I + "ok_5000x1.jpg", pil_bytes(gradient(5000, 1), "JPEG"), "ok", why="5000x1 JPEG")
    add(out, I + "ok_cmyk.jpg", pil_bytes(gradient(24, 16, "CMYK"), "JPEG", quality=90), "ok",
        why="CMYK JPEG (Adobe, 4 components)")
    add(out, I + "ok_gray.jpg", pil_bytes(gradient(24, 16, "L"), "JPEG"), "ok", why="gray JPEG")
    add(out, I + "ok_progressive.jpg", pil_bytes(gradient(40, 30), "JPEG", progressive=True), "ok",
        why="progressive JPEG")
    add(out, I + "ok_subsampled_odd.jpg", pil_bytes(gradient(37, 23), "JPEG", subsampling=2), "ok",
        why="4:2:0 JPEG with odd size")
    frames = [gradient(20, 12).convert("P"), gradient(20, 12).rotate(180).convert("P")]
    add(out, I + "ok_animated.gif", pil_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:],
                                              duration=100, loop=0), "ok", why="animated GIF: first frame")
    add(out, I + "ok_bmp_8bit.bmp", pil_bytes(gradient(33, 17).convert("P"), "BMP"), "ok", why="8-bit palette BMP")
    add(out, I + "ok_bmp_32bit.bmp", pil_bytes(gradient(33, 17, "RGBA"), "BMP"), "ok", why="32-bit BMP")
    top_down = bytearray(pil_bytes(gradient(8, 6), "BMP"))
    top_down[22:26] = struct.pack("<i", -6)
    add(out, I + "ok_bmp_top_down.bmp", bytes(top_down), "ok", why="top-down BMP (negative height)")
    add(out, I + "ok_tga.tga", pil_bytes(gradient(12, 9), "TGA"), "ok", why="TGA")
    add(out, I + "ok_png_named.jpg", ok_png, "ok", why="wrong extension: PNG bytes named .jpg")
    add(out, I + "ok_jpeg_named.png", ok_jpg, "ok", why="wrong extension: JPEG bytes named .png")
    add(out, I + "ok_no_extension", ok_gif, "ok", why="no extension")
    # EXIF: a valid orientation 6, then offsets pointing far outside the segment.
    tiff_ok = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1) + \
        struct.pack("<HHII", 0x0112, 3, 1, 6) + struct.pack("<I", 0)
    add(out, I + "ok_exif_rotate6.jpg", exif_jpeg(tiff_ok), "ok", why="EXIF orientation 6")
    tiff_bad = b"II*\0" + struct.pack("<I", 0xFFFFFFF0)
    add(out, I + "ok_exif_bad_offset.jpg", exif_jpeg(tiff_bad), "ok", why="EXIF IFD offset past the end")
    tiff_many = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 0xFFFF)
    add(out, I + "ok_exif_huge_count.jpg", exif_jpeg(tiff_many), "ok", why="EXIF entry count 65535")
    add(out, I + "ok_big_4000x4000.png", pil_bytes(Image.new("L", (4000, 4000), 7), "PNG"), "ok",
        why="16 Mpx gray, under the limit (compresses to a few KB)")

    # Not images at all.
    add(out, I + "empty.png", b"", "fail", "decode_failed", "empty file")
    add(out, I + "empty.jpg", b"", "fail", "decode_failed", "empty file")
    add(out, I + "text.txt", b"hello, this is not an image\n" * 4, "fail", "decode_failed", "text")
    add(out, I + "text_named.png", b"This file only pretends to be a PNG.\n", "fail", "decode_failed",
        "text with a .png name")
    add(out, I + "html.jpg", b"<!doctype html><html><body>404</body></html>", "fail", "decode_failed",
        "an HTML error page saved as .jpg")
    add(out, I + "random.bin", RNG.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "fail",
        "decode_failed", "random bytes")
    add(out, I + "zeros.png", b"\0" * 1024, "fail", "decode_failed", "zero bytes")
    add(out, I + "one_byte.gif", b"G", "fail", "decode_failed", "one byte")
    add(out, I + "webp.webp", b"RIFF\x24\0\0\0WEBPVP8 " + b"\0" * 28, "fail", "decode_failed",
        "WebP (not decoded by the core)")
    add(out, I + "psd.psd", b"8BPS\0\x01" + b"\0" * 6 + struct.pack(">HIIHH", 3, 4, 4, 8, 3) + b"\0" * 64,
        "fail", "decode_failed", "PSD (decoder not compiled in)")
    add(out, I + "hdr.hdr", b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 4 +X 4\n" + b"\0" * 64, "fail",
        "decode_failed", "Radiance HDR (decoder not compiled in)")
    add(out, I + "model_as_image.png", alm_ok_bytes(), "fail", "decode_failed", "a model file given as image")

    # Truncated and corrupt.
    add(out, I + "trunc_png_signature.png", ok_png[:6], "fail", "decode_failed", "PNG cut in the signature")
    add(out, I + "trunc_png_ihdr.png", ok_png[:20], "fail", "decode_failed", "PNG cut in IHDR")
    add(out, I + "trunc_png_half.png", ok_png[:len(ok_png) // 2], "fail", "decode_failed", "PNG cut in IDAT")
    add(out, I + "trunc_png_no_iend.png", ok_png[:-12], "any", None, "PNG without IEND")
    bad_zlib = bytearray(ok_png)
    idat = bad_zlib.find(b"IDAT")
    bad_zlib[idat + 4:idat + 6] = b"\xff\xff"
    add(out, I + "corrupt_png_zlib.png", bytes(bad_zlib), "fail", "decode_failed", "PNG with a bad zlib header")
    add(out, I + "corrupt_png_ihdr_zero.png", png_raw(0, 5, 8, 0, idat=zlib.compress(b"")), "fail",
        "decode_failed", "PNG width 0")
    add(out, I + "corrupt_png_bitdepth.png", png_raw(4, 4, 7, 0, rows=[b"\0" * 4] * 4), "fail",
        "decode_failed", "PNG bit depth 7")
    add(out, I + "corrupt_png_short_rows.png", png_raw(64, 64, 8, 2, rows=[b"\0" * 10] * 3), "fail",
        "decode_failed", "PNG whose IDAT holds fewer rows than IHDR declares")
    idat_4gb = bytearray(ok_png)
    at = ok_png.index(b"IDAT") - 4
    idat_4gb[at:at + 4] = struct.pack(">I", 0xF9970D49)
    add(out, I + "corrupt_png_idat_length_4gb.png", bytes(idat_4gb), "fail", "decode_failed",
        "PNG whose IDAT declares 4 GB (stb 2.27 allocated 2 GB for it before reading)")
    add(out, I + "trunc_jpeg_soi.jpg", ok_jpg[:3], "fail", "decode_failed", "JPEG: SOI only")
    sos = jpeg_sof_offset(ok_jpg)
    add(out, I + "trunc_jpeg_headers.jpg", ok_jpg[:sos - 10], "fail", "decode_failed",
        "JPEG cut before the scan")
    add(out, I + "trunc_jpeg_scan.jpg", ok_jpg[:sos + (len(ok_jpg) - sos) // 2], "any", None,
        "JPEG cut inside the scan (decoders show what they have)")
    corrupt_jpg = bytearray(ok_jpg)
    dqt = corrupt_jpg.find(b"\xff\xdb")
    corrupt_jpg[dqt + 2:dqt + 4] = b"\xff\xff"
    add(out, I + "corrupt_jpeg_dqt_length.jpg", bytes(corrupt_jpg), "fail", "decode_failed",
        "JPEG DQT segment length 65535")
    noise_jpg = bytearray(ok_jpg)
    for i in range(sos + 20, len(noise_jpg) - 2, 7):
        noise_jpg[i] ^= 0x5A
    add(out, I + "corrupt_jpeg_scan_noise.jpg", bytes(noise_jpg), "any", None, "JPEG scan data scrambled")
    dht = bytearray(ok_jpg)
    at = dht.find(b"\xff\xc4")
    dht[at + 5:at + 21] = b"\xff" * 16  # 16 code lengths x 255 codes: 4080 > 256 symbols
    add(out, I + "corrupt_jpeg_dht_overflow.jpg", bytes(dht), "fail", "decode_failed",
        "JPEG DHT declaring 4080 codes: stb_image 2.27 writes past its 257-entry size table")
    # stb skips 0xFF fill bytes before SOI's D8: the same overflow behind "FF FF D8" (fuzz_decode).
    add(out, I + "corrupt_jpeg_fill_byte_dht_overflow.jpg", b"\xff" + bytes(dht), "fail", "decode_failed",
        "fill byte before SOI, then the DHT overflow: the table check must see this JPEG too")
    add(out, I + "ok_jpeg_fill_byte_before_soi.jpg", b"\xff" + bytes(ok_jpg), "ok", None,
        "a fill byte before SOI is valid JPEG syntax: stb decodes it, and so must Anomalens")
    add(out, I + "corrupt_jpeg_zero_height.jpg", jpeg_with_size(8, 0), "fail", "decode_failed",
        "JPEG SOF height 0")
    add(out, I + "trunc_gif_header.gif", ok_gif[:8], "fail", "decode_failed", "GIF cut in the header")
    add(out, I + "trunc_gif_half.gif", ok_gif[:len(ok_gif) // 2], "any", None, "GIF cut in the image data")
    add(out, I + "corrupt_gif_lzw.gif", gif_header(4, 4).replace(b"\x02\x02\x44\x01", b"\x0c\x02\xff\xff"),
        "fail", "decode_failed", "GIF LZW code size 12")
    add(out, I + "trunc_bmp_header.bmp", ok_bmp[:20], "fail", "decode_failed", "BMP cut in the header")
    add(out, I + "trunc_bmp_pixels.bmp", ok_bmp[:len(ok_bmp) // 2], "any", None, "BMP missing half its pixels")
    add(out, I + "corrupt_bmp_bpp.bmp", bmp_header(4, 4, bpp=7, pixel_bytes=64) + b"\0" * 64, "fail",
        "decode_failed", "BMP 7 bits per pixel")
    # 8-bit BMPs whose pixels name palette entries the file does not have: stb_image would read
    # them from uninitialised stack memory (a different image on each call).
    short_palette = bytearray(bmp_header(4, 4, bpp=8, pixel_bytes=16 + 16))
    short_palette[10:14] = struct.pack("<I", 14 + 40 + 16)  # data after a 4-colour palette
    add(out, I + "corrupt_bmp_palette_index.bmp",
        bytes(short_palette) + bytes(range(16)) + bytes([0, 1, 2, 3] * 3 + [200, 3, 2, 1]), "fail",
        "decode_failed", "8-bit BMP pixel uses colour 200 of a 4-colour palette")
    no_palette = bytearray(bmp_header(4, 4, bpp=8, pixel_bytes=16))
    no_palette[10:14] = struct.pack("<I", 0)
    add(out, I + "corrupt_bmp_offset_zero.bmp", bytes(no_palette) + bytes([7] * 16), "fail",
        "decode_failed", "8-bit BMP whose data offset 0 leaves no palette")
    add(out, I + "corrupt_bmp_zero_width.bmp", bmp_header(0, 4, pixel_bytes=0), "fail", "decode_failed",
        "BMP width 0")
    add(out, I + "corrupt_bmp_int_min.bmp", bmp_header(4, -2 ** 31, pixel_bytes=48) + b"\0" * 48, "fail",
        None, "BMP height INT_MIN (negating it overflows 32 bits)")
    add(out, I + "corrupt_tga_type.tga", tga_header(4, 4, 24, image_type=99) + b"\0" * 48, "fail",
        "decode_failed", "TGA image type 99")

    # Decompression bombs: tiny files declaring huge sizes. Refused before decoding, by pixel
    # count (code out_of_memory: a configured limit was exceeded).
    add(out, I + "bomb_png_100000x100000.png", png_raw(100000, 100000, 8, 0, idat=zlib.compress(b"\0" * 1000)),
        "fail", "out_of_memory", "PNG IHDR 100000x100000")
    add(out, I + "bomb_png_20000x20000.png", png_raw(20000, 20000, 8, 2, idat=zlib.compress(b"\0" * 1000)),
        "fail", "out_of_memory", "PNG 20000x20000 RGB = 400 Mpx")
    add(out, I + "bomb_png_1x100000000.png", png_raw(1, 100000000, 8, 0, idat=zlib.compress(b"\0" * 1000)),
        "fail", None, "PNG 1 x 100 million: above the limit and stb's per-side maximum")
    add(out, I + "bomb_gif_65535x65535.gif", gif_header(65535, 65535), "fail", "out_of_memory",
        "GIF 65535x65535 (GIF's maximum)")
    add(out, I + "bomb_bmp_100000x100000.bmp", bmp_header(100000, 100000, pixel_bytes=0) + b"\0" * 64,
        "fail", "out_of_memory", "BMP 100000x100000")
    add(out, I + "bomb_bmp_top_down.bmp", bmp_header(100000, -100000, pixel_bytes=0) + b"\0" * 64,
        "fail", "out_of_memory", "BMP 100000x-100000 (top-down)")
    add(out, I + "bomb_jpeg_65535x65535.jpg", jpeg_with_size(65535, 65535), "fail", "out_of_memory",
        "JPEG SOF 65535x65535 (JPEG's maximum)")
    add(out, I + "bomb_tga_65535x65535.tga", tga_header(65535, 65535) + b"\0" * 64, "fail", "out_of_memory",
        "TGA 65535x65535 (TGA has no signature: caught by stb's header read)")
    # 10000 x 10000 = 100 Mpx in a few hundred bytes of real zlib data.
    rows = zlib.compressobj(9)
    z = b"".join(rows.compress(b"\0" * 10001) for _ in range(10000)) + rows.flush()
    add(out, I + "bomb_png_real_10000x10000.png", png_raw(10000, 10000, 8, 0, idat=z), "fail", "out_of_memory",
        "real deflate bomb: 100 Mpx gray in %d bytes" % len(z))


# ---- models ----------------------------------------------------------------------------------

def base_meta(**extra):
    meta = {"name": "hostile", "labels": "normal,abnormal", "input_size": "8x6", "channels": "rgb",
            "scale": "255", "mean": "0.5,0.5,0.5", "std": "0.25,0.25,0.25", "resize": "stretch",
            "output": "softmax", "threshold": "0.5"}
    meta.update(extra)
    return meta


def small_graph(gemm_weight=None, bias=None, c=3, h=6, w=8, gemm_extra=""):
    k = c
    wt = gemm_weight if gemm_weight is not None else RNG.normal(0, 0.5, (2, k)).astype(np.float32)
    bs = bias if bias is not None else np.zeros(2, np.float32)
    lines = [f"Input input 0 1 data c={c} h={h} w={w}",
             "GlobalAvgPool gap 1 1 data gap",
             f"Gemm fc 1 1 gap logits n=2 w=fc.w b=fc.b{gemm_extra}"]
    return lines, {"fc.w": wt, "fc.b": bs}


def alm_ok_bytes():
    lines, tensors = small_graph(gemm_weight=np.array([[0.5, -0.25, 0.1], [-0.3, 0.2, 0.4]], np.float32))
    return alm.alm_bytes(base_meta(), lines, tensors)


def section_table(data):
    count = struct.unpack("<I", data[8:12])[0]
    out = {}
    for i in range(count):
        e = 16 + 32 * i
        name = data[e:e + 16].rstrip(b"\0").decode()
        off, size = struct.unpack("<QQ", data[e + 16:e + 32])
        out[name] = (e, off, size)
    return out


def models(out):
    M = "models/"
    good = alm_ok_bytes()
    add(out, M + "ok_small.alm", good, "ok", why="valid: Input -> GlobalAvgPool -> Gemm")
    lines, tensors = small_graph()
    add(out, M + "ok_f16.alm", alm.alm_bytes(base_meta(), lines, tensors, dtype="f16"), "ok", why="f16 weights")

    add(out, M + "empty.alm", b"", "fail", "invalid_model", "empty file")
    add(out, M + "text.alm", b"this is not a model\n", "fail", "invalid_model", "text")
    add(out, M + "png_as_model.alm", pil_bytes(gradient(8, 8), "PNG"), "fail", "invalid_model", "an image")
    add(out, M + "magic_only.alm", b"ALM1", "fail", "invalid_model", "magic only")
    for cut in (8, 16, 40, len(good) // 3, len(good) // 2, len(good) - 1):
        add(out, M + f"truncated_{cut}.alm", good[:cut], "fail", "invalid_model", f"cut at byte {cut}")
    add(out, M + "bad_magic.alm", b"ALM2" + good[4:], "fail", "invalid_model", "magic ALM2")
    add(out, M + "version_2.alm", good[:4] + struct.pack("<I", 2) + good[8:], "fail", "unsupported", "version 2")
    add(out, M + "version_0.alm", good[:4] + struct.pack("<I", 0) + good[8:], "fail", None, "version 0")
    add(out, M + "section_count_huge.alm", good[:8] + struct.pack("<I", 0xFFFFFFFF) + good[12:], "fail",
        "invalid_model", "section count 2^32-1")
    table = section_table(good)
    for name in ("meta", "graph", "tensors", "weights"):
        e, off, size = table[name]
        past = bytearray(good)
        past[e + 16:e + 24] = struct.pack("<Q", len(good) + 16)
        add(out, M + f"{name}_offset_past_end.alm", bytes(past), "fail", "invalid_model",
            f"{name} section offset past the end")
        wrap = bytearray(good)
        wrap[e + 24:e + 32] = struct.pack("<Q", 2 ** 64 - 8)
        add(out, M + f"{name}_size_wraps.alm", bytes(wrap), "fail", "invalid_model",
            f"{name} section size 2^64-8 (offset + size wraps)")
    nan = np.array([[np.nan, 0, 0], [0, 0, 0]], np.float32)
    lines, tensors = small_graph(gemm_weight=nan)
    add(out, M + "nan_weight.alm", alm.alm_bytes(base_meta(), lines, tensors), "fail", "invalid_model", "NaN weight")
    lines, tensors = small_graph(bias=np.array([np.inf, 0], np.float32))
    add(out, M + "inf_bias.alm", alm.alm_bytes(base_meta(), lines, tensors), "fail", "invalid_model", "Inf bias")
    lines, tensors = small_graph(bias=np.array([np.inf, 0], np.float32))
    add(out, M + "inf_f16.alm", alm.alm_bytes(base_meta(), lines, tensors, dtype="f16"), "fail", "invalid_model",
        "f16 Inf")
    lines, tensors = small_graph()
    lines.insert(2, "Swish sw 1 1 gap gap2")
    lines[3] = lines[3].replace(" gap logits", " gap2 logits")
    add(out, M + "unknown_op.alm", alm.alm_bytes(base_meta(), lines, tensors), "fail", "unsupported",
        "unknown layer type Swish")
    lines, tensors = small_graph(gemm_extra=" act=gelu")
    add(out, M + "unknown_activation.alm", alm.alm_bytes(base_meta(), lines, tensors), "fail", "unsupported",
        "unknown activation gelu")
    lines, tensors = small_graph(gemm_weight=RNG.normal(0, 1, (2, 5)).astype(np.float32))
    add(out, M + "shapes_do_not_chain.alm", alm.alm_bytes(base_meta(), lines, tensors), "fail", "invalid_model",
        "Gemm weight [2,5] after a 3-channel pool")
    lines, tensors = small_graph()
    add(out, M + "input_size_absurd.alm", alm.alm_bytes(base_meta(input_size="100000x100000"), lines, tensors),
        "fail", "invalid_model", "meta input_size 100000x100000")
    lines, tensors = small_graph(c=3, h=65536, w=65536)
    add(out, M + "blob_absurd.alm", alm.alm_bytes(base_meta(input_size="65536x65536"), lines, tensors),
        "fail", "invalid_model", "input blob 3x65536x65536 (2^33.6 elements)")
    lines, tensors = small_graph()
    bad_dims = alm.alm_bytes(base_meta(), lines, tensors).replace(b"fc.w f32 2,3 ", b"fc.w f32 2,9999999999999 ")
    add(out, M + "tensor_dims_absurd.alm", bad_dims, "fail", "invalid_model", "tensor dims 2 x 10^13")
    lines, tensors = small_graph()
    neg = alm.alm_bytes(base_meta(), lines, tensors).replace(b"fc.w f32 2,3 0", b"fc.w f32 2,3 -16")
    add(out, M + "tensor_offset_negative.alm", neg, "fail", "invalid_model", "tensor offset -16")
    lines, tensors = small_graph()
    path_like = base_meta(name="../../../../etc/passwd", description="/etc/shadow")
    add(out, M + "ok_path_in_meta.alm", alm.alm_bytes(path_like, lines, tensors), "ok",
        why="meta values that look like paths are only text")
    lines, tensors = small_graph()
    add(out, M + "meta_not_utf8.alm", alm.alm_bytes(base_meta(), lines, tensors).replace(b"name=hostile", b"name=\xff\xfe\x00\x01abc"),
        "any", None, "meta name with invalid UTF-8 and a NUL")
    lines, tensors = small_graph()
    lines[0] += " " + " ".join(f"k{i}={i}" for i in range(2000))
    add(out, M + "many_params.alm", alm.alm_bytes(base_meta(), lines, tensors), "any", None,
        "2000 unknown key=value params on one line")
    deep = ["Input input 0 1 b0 c=3 h=6 w=8"] + [f"Activation a{i} 1 1 b{i} b{i + 1} act=relu" for i in range(5000)]
    add(out, M + "too_many_layers.alm", alm.alm_bytes(base_meta(), deep, {"unused": np.zeros(1, np.float32)}),
        "fail", "invalid_model", "5001 layers (limit 4096)")

    # Valid by the format, hostile in what they compute. What each surface must do is keep the
    # Verdict contract: score = P(abnormal) in [0, 1], scores finite, or refuse the model.
    lines, tensors = small_graph(gemm_weight=np.array([[40, 40, 40], [-40, -40, -40]], np.float32),
                                 bias=np.array([3, -2], np.float32))
    add(out, M + "probabilities_unbounded.alm", alm.alm_bytes(base_meta(output="probabilities"), lines, tensors),
        "score_in_range", None, "output=probabilities but the graph ends in a Gemm: values like 43 and -42")
    big = np.full((2, 3), 3e38, np.float32)
    lines, tensors = small_graph(gemm_weight=big, bias=np.zeros(2, np.float32))
    add(out, M + "overflowing_logits.alm", alm.alm_bytes(base_meta(), lines, tensors),
        "score_in_range", None, "finite weights 3e38: logits overflow to +inf, softmax of (inf, inf)")
    lines, tensors = small_graph(c=3, h=8192, w=8192)
    add(out, M + "huge_input.alm", alm.alm_bytes(base_meta(input_size="8192x8192"), lines, tensors),
        "fail", None, "3x8192x8192 input (201 M floats = 805 MB per buffer) from a 2 KB file: must be "
        "refused by a memory budget at load, not allocated (slow: CLI only, with a timeout)", slow=True)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    images(out)
    models(out)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(ENTRIES, f, indent=1)
        f.write("\n")
    n_img = sum(e["kind"] == "image" for e in ENTRIES)
    print(f"make_bad_inputs: {n_img} images, {len(ENTRIES) - n_img} models -> {out}")


if __name__ == "__main__":
    main()

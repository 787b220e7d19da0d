# SPDX-License-Identifier: Apache-2.0
"""Preprocessing against values worked out by hand from docs/FORMAT.md."""
import os
import struct
import tempfile
import unittest
import zlib

import numpy as np
from PIL import Image

import _paths  # noqa: F401
from almtools import preprocess


def meta(w, h, channels="gray", resize="stretch", scale="1", mean=None, std=None):
    n = 1 if channels == "gray" else 3
    return {"input_size": f"{w}x{h}", "channels": channels, "scale": scale,
            "mean": mean or ",".join(["0"] * n), "std": std or ",".join(["1"] * n),
            "resize": resize}


def png16_with_filters(path, array):
    """16-bit PNG writer that uses every filter type (row y uses filter y % 5)."""
    h, w, c = array.shape
    color = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    bpp = 2 * c
    raw = [np.frombuffer(array[y].astype(">u2").tobytes(), np.uint8).astype(int)
           for y in range(h)]
    out = bytearray()
    prev = np.zeros(w * bpp, int)
    for y, line in enumerate(raw):
        f = y % 5
        a = np.concatenate([np.zeros(bpp, int), line[:-bpp]])
        cc = np.concatenate([np.zeros(bpp, int), prev[:-bpp]])
        if f == 0:
            enc = line
        elif f == 1:
            enc = line - a
        elif f == 2:
            enc = line - prev
        elif f == 3:
            enc = line - (a + prev) // 2
        else:
            p = a + prev - cc
            pa, pb, pc = abs(p - a), abs(p - prev), abs(p - cc)
            pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, prev, cc))
            enc = line - pred
        out.append(f)
        out.extend((enc & 255).astype(np.uint8).tobytes())
        prev = line

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color,
                                                                     0, 0, 0))
                 + chunk(b"IDAT", zlib.compress(bytes(out))) + chunk(b"IEND", b""))


class ResizeTest(unittest.TestCase):
    def test_shrink_4_to_2(self):
        # scale 2, support 2. Output 0: centre 1, taps 0..2 weights .75 .75 .25 (sum 1.75).
        # Output 1: centre 3, taps 1..3 weights .25 .75 .75.
        src = np.array([10.0, 20.0, 30.0, 40.0]).reshape(1, 4, 1)
        out = preprocess.preprocess_pixels(src, meta(2, 1))
        expect = [(0.75 * 10 + 0.75 * 20 + 0.25 * 30) / 1.75,
                  (0.25 * 20 + 0.75 * 30 + 0.75 * 40) / 1.75]
        np.testing.assert_allclose(out.reshape(-1), expect, rtol=1e-6)
        self.assertAlmostEqual(expect[0], 120 / 7)

    def test_enlarge_2_to_4(self):
        # scale .5, support 1. Centres .25 .75 1.25 1.75; output 0 sees only pixel 0 (taps
        # start at max(floor(-.25), 0) = 0 and end at floor(1.75) = 1), output 3 only pixel 1.
        src = np.array([0.0, 100.0]).reshape(1, 2, 1)
        out = preprocess.preprocess_pixels(src, meta(4, 1))
        np.testing.assert_allclose(out.reshape(-1), [0, 25, 75, 100], atol=1e-5)

    def test_vertical_and_separable(self):
        src = np.array([0.0, 100.0]).reshape(2, 1, 1)
        out = preprocess.preprocess_pixels(src, meta(1, 4))
        np.testing.assert_allclose(out.reshape(-1), [0, 25, 75, 100], atol=1e-5)
        img = np.arange(12.0).reshape(3, 4, 1) ** 2
        out = preprocess.preprocess_pixels(img, meta(2, 2))
        wx = preprocess.resize_weights(4, 0, 4, 2)
        wy = preprocess.resize_weights(3, 0, 3, 2)
        np.testing.assert_allclose(out[:, :, 0], wy @ img[:, :, 0] @ wx.T, rtol=1e-6)

    def test_center_crop_window(self):
        # 6x2 source to 2x2: window 2 wide starting at x0 = 2, scale 1: exact pixels 2 and 3.
        src = np.tile(np.arange(6.0) * 10, (2, 1))[:, :, None]
        out = preprocess.preprocess_pixels(src, meta(2, 2, resize="center_crop"))
        np.testing.assert_allclose(out[:, :, 0], [[20, 30], [20, 30]], atol=1e-5)
        # Tall source: window full width, rows cropped.
        self.assertEqual(preprocess.source_window(4, 10, 2, 1, "center_crop"),
                         (0.0, 4.0, 4.0, 2.0))
        self.assertEqual(preprocess.source_window(4, 10, 2, 1, "stretch"),
                         (0.0, 4.0, 0.0, 10.0))

    def test_channels_and_normalise(self):
        src = np.array([[[200.0, 100.0, 50.0, 7.0]]])  # RGBA, alpha dropped
        gray = preprocess.preprocess_pixels(src, meta(1, 1, "gray", scale="255", mean="0.5",
                                                      std="0.25"))
        luma = 0.299 * 200 + 0.587 * 100 + 0.114 * 50
        self.assertAlmostEqual(float(gray[0, 0, 0]), (luma / 255 - 0.5) / 0.25, places=5)
        bgr = preprocess.preprocess_pixels(src, meta(1, 1, "bgr", mean="1,2,3", std="2,4,5"))
        np.testing.assert_allclose(bgr.reshape(-1), [(50 - 1) / 2, (100 - 2) / 4,
                                                     (200 - 3) / 5], rtol=1e-6)
        rgb = preprocess.preprocess_pixels(np.array([[[9.0, 99.0]]]), meta(1, 1, "rgb"))
        np.testing.assert_allclose(rgb.reshape(-1), [9, 9, 9])


class DecodeTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def test_png_modes(self):
        p = os.path.join(self.dir.name, "g16.png")
        v = np.array([[0, 257, 65535]], np.uint16)
        Image.fromarray(v, "I;16").save(p)
        np.testing.assert_allclose(preprocess.decode_file(p)[:, :, 0], [[0, 1, 255]])
        p = os.path.join(self.dir.name, "la.png")
        Image.fromarray(np.array([[[3, 9], [4, 0]]], np.uint8), "LA").save(p)
        d = preprocess.decode_file(p)
        self.assertEqual(d.shape, (1, 2, 2))
        np.testing.assert_array_equal(d[:, :, 0], [[3, 4]])
        p = os.path.join(self.dir.name, "pal.png")
        Image.fromarray(np.array([[0, 1]], np.uint8), "P").save(p)  # default palette
        self.assertEqual(preprocess.decode_file(p).shape, (1, 2, 3))

    def test_png16_rgb_all_filters(self):
        rng = np.random.default_rng(5)
        for c in (1, 2, 3, 4):
            a = rng.integers(0, 65536, (7, 5, c)).astype(np.uint16)
            p = os.path.join(self.dir.name, f"c{c}.png")
            png16_with_filters(p, a)
            np.testing.assert_allclose(preprocess.decode_file(p), a / 257.0, rtol=1e-12)

    def test_jpeg_exif_orientation(self):
        p = os.path.join(self.dir.name, "o.jpg")
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees clockwise on display
        Image.new("RGB", (8, 2), (120, 60, 30)).save(p, exif=exif.tobytes())
        self.assertEqual(preprocess.decode_file(p).shape, (8, 2, 3))

    def test_undecodable(self):
        p = os.path.join(self.dir.name, "x.png")
        with open(p, "wb") as f:
            f.write(b"not an image")
        with self.assertRaises(preprocess.PreprocessError):
            preprocess.decode_file(p)


if __name__ == "__main__":
    unittest.main()

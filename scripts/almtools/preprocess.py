# SPDX-License-Identifier: Apache-2.0
"""NumPy mirror of the .alm preprocessing spec (docs/FORMAT.md, "Preprocessing").

    meta, _, _ = read_alm("model.alm")
    x = preprocess_file("cell.png", meta)   # float32 array (H, W, C), HWC like the C++ core

Decoding uses PIL (plus a small PNG reader for 16-bit colour PNGs, which PIL truncates to 8
bits). PNG decoding is exact, so PNG inputs match the C++ (stb_image) path to float rounding;
JPEG decoders differ slightly between libjpeg and stb_image, so JPEG inputs do not.
"""

import struct
import zlib

import numpy as np
from PIL import Image, ImageOps


class PreprocessError(ValueError):
    pass


def parse_meta(meta):
    """Returns the preprocessing parameters from a meta dict of strings."""
    try:
        w_s, h_s = meta["input_size"].lower().split("x")
        width, height = int(w_s), int(h_s)
        channels = meta["channels"]
        scale = float(meta["scale"])
        mean = [float(v) for v in meta["mean"].split(",")]
        std = [float(v) for v in meta["std"].split(",")]
        resize = meta["resize"]
    except (KeyError, ValueError) as e:
        raise PreprocessError(f"meta: missing or malformed preprocessing key ({e})") from e
    if channels not in ("rgb", "bgr", "gray"):
        raise PreprocessError(f"meta channels={channels!r}: must be rgb, bgr or gray")
    if resize not in ("stretch", "center_crop"):
        raise PreprocessError(f"meta resize={resize!r}: must be stretch or center_crop")
    nc = 1 if channels == "gray" else 3
    if len(mean) != nc or len(std) != nc:
        raise PreprocessError(f"meta mean/std: need {nc} values for channels={channels}")
    return dict(width=width, height=height, channels=channels, scale=scale,
                mean=np.array(mean), std=np.array(std), resize=resize)


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _read_png16(path):
    """Decodes a non-interlaced 16-bit PNG to a uint16 array (H, W, C)."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 8
    idat = bytearray()
    ihdr = None
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", chunk)
        elif ctype == b"IDAT":
            idat.extend(chunk)
        elif ctype == b"IEND":
            break
        pos += 12 + length
    width, height, depth, color, _, _, interlace = ihdr
    nc = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 16 or nc is None or interlace:
        raise PreprocessError(f"{path}: 16-bit PNG reader supports only non-interlaced 16-bit")
    raw = zlib.decompress(bytes(idat))
    bpp = 2 * nc
    stride = width * bpp
    out = bytearray(height * stride)
    prev = bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 255
            elif ftype == 2:
                line[x] = (line[x] + b) & 255
            elif ftype == 3:
                line[x] = (line[x] + ((a + b) >> 1)) & 255
            elif ftype == 4:
                line[x] = (line[x] + _paeth(a, b, c)) & 255
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return np.frombuffer(bytes(out), dtype=">u2").reshape(height, width, nc).astype(np.uint16)


def _png_bit_depth(path):
    with open(path, "rb") as f:
        head = f.read(33)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def decode_file(path):
    """Decodes an image file to float64 samples 0..255, shape (H, W, C) with C in 1..4
    (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA), as stb_image would report them."""
    png = _png_bit_depth(path)
    if png is not None and png[0] == 16 and png[1] != 0:
        return _read_png16(path).astype(np.float64) / 257.0
    try:
        img = Image.open(path)
        if img.format == "JPEG":
            img = ImageOps.exif_transpose(img)
        img.load()
    except Exception as e:  # PIL raises many types
        raise PreprocessError(f"{path}: cannot decode image ({e})") from e
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N") or (mode == "I" and png is not None):
        a = np.array(img).astype(np.float64)
        return (a / 257.0)[:, :, None]
    if mode == "1":
        img = img.convert("L")
    elif mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGB")
    a = np.array(img).astype(np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
    return a


def convert_channels(src, channels):
    """src: (H, W, C) with C in 1..4; alpha is dropped, not composited."""
    nc = src.shape[2]
    if nc in (1, 2):
        gray = src[:, :, 0:1]
        return gray if channels == "gray" else np.repeat(gray, 3, axis=2)
    rgb = src[:, :, 0:3]
    if channels == "gray":
        return (0.299 * rgb[:, :, 0] + 0.587 * rgb[:, :, 1] + 0.114 * rgb[:, :, 2])[:, :, None]
    if channels == "bgr":
        return rgb[:, :, ::-1]
    return rgb


def resize_weights(src_size, win_start, win_size, dst_size):
    """(dst, src) matrix of the antialiased triangle filter for one axis."""
    scale = win_size / dst_size
    support = max(scale, 1.0)
    m = np.zeros((dst_size, src_size), dtype=np.float64)
    for i in range(dst_size):
        center = win_start + (i + 0.5) * scale
        lo = max(int(np.floor(center - support + 0.5)), 0)
        hi = min(int(np.floor(center + support + 0.5)), src_size)
        for j in range(lo, hi):
            m[i, j] = max(0.0, 1.0 - abs((j + 0.5 - center) / support))
        total = m[i].sum()
        if total > 0:
            m[i] /= total
    return m


def source_window(src_w, src_h, dst_w, dst_h, resize):
    """Returns (x0, win_w, y0, win_h) in float source pixels."""
    if resize == "stretch":
        return 0.0, float(src_w), 0.0, float(src_h)
    if src_w * dst_h > src_h * dst_w:
        win_w = src_h * dst_w / dst_h
        return (src_w - win_w) / 2.0, win_w, 0.0, float(src_h)
    win_h = src_w * dst_h / dst_w
    return 0.0, float(src_w), (src_h - win_h) / 2.0, win_h


def resize(img, dst_w, dst_h, window=None, dtype=np.float64):
    """img: (H, W, C) float. Horizontal pass first, then vertical, no rounding between."""
    src_h, src_w = img.shape[:2]
    if window is None:
        window = (0.0, float(src_w), 0.0, float(src_h))
    x0, win_w, y0, win_h = window
    wx = resize_weights(src_w, x0, win_w, dst_w).astype(dtype)
    wy = resize_weights(src_h, y0, win_h, dst_h).astype(dtype)
    a = img.astype(dtype)
    tmp = np.einsum("xj,hjc->hxc", wx, a)
    return np.einsum("yh,hxc->yxc", wy, tmp)


def preprocess_pixels(src, meta, dtype=np.float64):
    """src: decoded samples (H, W, C) float 0..255, C in 1..4. Returns float32 (H, W, C)."""
    p = parse_meta(meta) if "input_size" in meta else meta
    chan = convert_channels(np.asarray(src, dtype=np.float64), p["channels"])
    src_h, src_w = chan.shape[:2]
    window = source_window(src_w, src_h, p["width"], p["height"], p["resize"])
    out = resize(chan, p["width"], p["height"], window, dtype).astype(np.float64)
    out = (out / p["scale"] - p["mean"]) / p["std"]
    return out.astype(np.float32)


def preprocess_rgba(rgba, meta):
    """Raw RGBA uint8 pixels (H, W, 4), as from a canvas: no decoding."""
    return preprocess_pixels(np.asarray(rgba, dtype=np.float64), meta)


def preprocess_file(path, meta, dtype=np.float64):
    return preprocess_pixels(decode_file(path), meta, dtype)


# Test-time flips (meta `test_time_flips`, docs/FORMAT.md): the verdict's score is the mean
# P(abnormal) over these flips of the preprocessed input. Name -> HWC axes to reverse.
TEST_TIME_FLIPS = {"none": (), "h": (1,), "v": (0,), "hv": (0, 1)}


def parse_test_time_flips(meta):
    """The meta's flips as a list of names (["none"] when the key is absent)."""
    text = meta.get("test_time_flips", "none")
    names = text.split(",")
    if any(n not in TEST_TIME_FLIPS for n in names) or len(set(names)) != len(names):
        raise PreprocessError(f"meta test_time_flips={text!r}: must list distinct entries of "
                              "none, h, v, hv")
    return names


def flip_hwc(x, name):
    """Flip an (H, W, C) input as the C++ core does for one test-time flip."""
    axes = TEST_TIME_FLIPS[name]
    return np.flip(x, axes) if axes else x

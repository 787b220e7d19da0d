#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Golden outputs from PyTorch for the C++/wasm engines.

    /usr/bin/python3 scripts/make_golden.py OUTDIR

Builds three seeded, randomly initialised models (BatchNorm running statistics calibrated on
random data, then perturbed, so BN folding matters), exports them to ONNX (opset 13, BN kept),
converts them with onnx_to_alm, preprocesses fixed images with almtools.preprocess and runs
PyTorch on the result. Writes OUTDIR/<model>.alm and OUTDIR/golden.txt:

    <alm basename> <image abs path> <n> <v1> ... <vn>     raw graph outputs (logits), %.9g
    input <alm basename> <image abs path> <f32 path>     preprocessed HWC float32 input

and OUTDIR/<model>_0.input.f32 for the first image of each model. Also creates the committed
test images tests/data/golden_*.png if missing. Each converted model is re-run with the NumPy
reference interpreter and must agree with PyTorch.
"""

import os
import struct
import sys
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from almtools import alm  # noqa: E402
from almtools.preprocess import preprocess_file  # noqa: E402
from almtools.reference import run_graph  # noqa: E402

ELPV = "/work/shared/data/elpv"
TEST_DATA = os.path.join(ROOT, "tests", "data")
IMAGENET = dict(scale="255", mean="0.485,0.456,0.406", std="0.229,0.224,0.225")


def _png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def write_png16_rgb(path, array):
    """Minimal 16-bit RGB PNG writer (PIL cannot write 16-bit colour)."""
    h, w, _ = array.shape
    rows = b"".join(b"\0" + array[y].astype(">u2").tobytes() for y in range(h))
    data = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(rows, 9)) + _png_chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)


def make_test_images():
    """Deterministic small images covering RGB, 16-bit gray, 16-bit RGB and gray+alpha."""
    from PIL import Image
    os.makedirs(TEST_DATA, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = {}
    p = os.path.join(TEST_DATA, "golden_rgb.png")
    if not os.path.exists(p):
        y, x = np.mgrid[0:30, 0:40]
        rgb = np.stack([x * 6, y * 8, (x * y) % 256], axis=2) + rng.integers(0, 16, (30, 40, 3))
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").save(p)
    paths["rgb"] = p
    p = os.path.join(TEST_DATA, "golden_gray16.png")
    if not os.path.exists(p):
        y, x = np.mgrid[0:23, 0:37]
        v = (x * 1700 + y * 900 + rng.integers(0, 600, (23, 37))).astype(np.uint16)
        Image.fromarray(v, "I;16").save(p)
    paths["gray16"] = p
    p = os.path.join(TEST_DATA, "golden_rgb16.png")
    if not os.path.exists(p):
        write_png16_rgb(p, rng.integers(0, 65536, (11, 13, 3)).astype(np.uint16))
    paths["rgb16"] = p
    p = os.path.join(TEST_DATA, "golden_graya.png")
    if not os.path.exists(p):
        y, x = np.mgrid[0:29, 0:21]
        la = np.stack([(x * 12 + y * 3) % 256, (y * 9) % 256], axis=2).astype(np.uint8)
        Image.fromarray(la, "LA").save(p)
    paths["graya"] = p
    return [paths[k] for k in ("rgb", "gray16", "rgb16", "graya")]


def elpv_images():
    out = []
    for cls in ("normal", "abnormal"):
        d = os.path.join(ELPV, cls)
        out += [os.path.join(d, n) for n in sorted(os.listdir(d)) if n.endswith(".png")][:3]
    return out


def small_cnn():
    import torch
    from torch import nn

    class SmallCnn(nn.Module):
        """Gray input; hardswish, sigmoid gate, avg pooling, flatten of a 2-D map."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, stride=2, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.conv2 = nn.Conv2d(8, 12, 3, padding=1, groups=4)
            self.bn2 = nn.BatchNorm2d(12)
            self.pool = nn.AvgPool2d(2)
            self.gate = nn.Conv2d(12, 12, 1)
            self.conv3 = nn.Conv2d(12, 16, 3, padding=(1, 0))
            self.pool2 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True)
            self.fc = nn.Linear(16 * 5 * 5, 2)

        def forward(self, x):
            x = nn.functional.hardswish(self.bn1(self.conv1(x)))    # 8 x 20 x 24
            x = self.pool(nn.functional.relu(self.bn2(self.conv2(x))))  # 12 x 10 x 12
            x = x * torch.sigmoid(self.gate(x))
            x = self.pool2(nn.functional.hardswish(self.conv3(x)))  # 16 x 5 x 5
            return self.fc(torch.flatten(x, 1))

    return SmallCnn()


def randomise_bn(torch, model, shape, gen):
    """Calibrates BN running statistics on random inputs, then perturbs them."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn((4,) + shape, generator=gen))
        for bn in bns:
            c = bn.num_features
            bn.running_mean += 0.2 * torch.randn(c, generator=gen) * bn.running_var.sqrt()
            bn.running_var *= 0.6 + 0.8 * torch.rand(c, generator=gen)
            bn.weight.copy_(0.6 + 0.8 * torch.rand(c, generator=gen))
            bn.bias.copy_(0.2 * torch.randn(c, generator=gen))
    model.eval()


def main(argv):
    if len(argv) != 2:
        print("usage: make_golden.py OUTDIR", file=sys.stderr)
        return 2
    outdir = os.path.abspath(argv[1])
    os.makedirs(outdir, exist_ok=True)
    import torch
    import torchvision
    import onnx_to_alm
    torch.manual_seed(0)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(1234)
    t0 = time.time()

    specs = [
        ("mobilenet_v2_035", lambda: torchvision.models.mobilenet_v2(width_mult=0.35,
                                                                      num_classes=2),
         (3, 96, 96), dict(IMAGENET, resize="stretch", architecture="mobilenet_v2 0.35")),
        ("resnet18", lambda: torchvision.models.resnet18(num_classes=2), (3, 64, 64),
         dict(IMAGENET, resize="center_crop", architecture="resnet18")),
        ("small_cnn", small_cnn, (1, 40, 48),
         dict(scale="255", mean="0.5", std="0.25", resize="center_crop",
              architecture="small cnn")),
    ]
    images = elpv_images() + make_test_images()
    lines = []
    worst = 0.0
    for name, build, shape, meta in specs:
        model = build()
        randomise_bn(torch, model, shape, gen)
        onnx_path = os.path.join(outdir, f"{name}.onnx")
        alm_path = os.path.join(outdir, f"{name}.alm")
        with torch.no_grad():
            torch.onnx.export(model, torch.zeros((1,) + shape), onnx_path, opset_version=13,
                              input_names=["input"], output_names=["logits"],
                              training=torch.onnx.TrainingMode.PRESERVE)
        full_meta, graph = onnx_to_alm.convert(
            onnx_path, alm_path, dict(meta, name=name, seed="0",
                                      description="golden test model, random weights"))
        os.remove(onnx_path)
        _, glines, gtensors = alm.read_alm(alm_path)
        base = os.path.basename(alm_path)
        for i, img in enumerate(images):
            x = preprocess_file(img, full_meta)
            with torch.no_grad():
                y = model(torch.from_numpy(x).permute(2, 0, 1)[None]).numpy().reshape(-1)
            # The slow NumPy check runs on two images per model to keep the script fast.
            err = 0.0
            if i in (0, len(images) - 4):
                ref = run_graph(glines, gtensors, x)
                err = float(np.max(np.abs(ref - y)) / max(1.0, float(np.max(np.abs(y)))))
                worst = max(worst, err)
            if err > 1e-4:
                raise SystemExit(f"{name} on {img}: NumPy reference of the .alm differs from "
                                 f"PyTorch by {err:.3g} (relative), must be <= 1e-4")
            if i == 0:
                f32 = os.path.join(outdir, f"{name}_{i}.input.f32")
                with open(f32, "wb") as f:
                    f.write(x.astype("<f4").tobytes())
                lines.append(f"input {base} {os.path.abspath(img)} {f32}")
            lines.append(f"{base} {os.path.abspath(img)} {len(y)} " +
                         " ".join(f"{v:.9g}" for v in y))
        print(f"{name}: {len(graph)} layers, {len(images)} images")
    with open(os.path.join(outdir, "golden.txt"), "w") as f:
        f.write("".join(l + "\n" for l in lines))
    print(f"wrote {outdir}/golden.txt ({len(lines)} lines); .alm vs PyTorch worst relative "
          f"difference {worst:.3g}; {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

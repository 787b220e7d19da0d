#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Exports the benchmark models: torchvision MobileNetV2-1.0 @224 and MobileNetV2-0.35 @96 with
fixed seeded weights and random (seeded) BatchNorm statistics and a 2-class head (an .alm model
has exactly two labels; the 1000-class head would add 1.3 M MACs, 0.4% of MobileNetV2-1.0), as ONNX (for onnxruntime-web) and
.alm (scripts/onnx_to_alm.py, for Anomalens; bench/alm_tfjs.mjs builds the tfjs network from
the same .alm weights). Also writes one seeded input (NCHW and HWC float32) per model and the
PyTorch output for it, so every runtime is checked against the same reference.

    /usr/bin/python3 bench/export_models.py [--out build/bench]

Idempotent: models already present are kept (delete build/bench/*.onnx to re-export).
"""

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

MODELS = {
    # name: (width multiplier, input size)
    "mobilenet_v2_1.0_224": (1.0, 224),
    "mobilenet_v2_0.35_96": (0.35, 96),
}
SEED = 20240601


def build(width, size, seed):
    import torch
    import torchvision
    torch.manual_seed(seed)
    net = torchvision.models.mobilenet_v2(width_mult=width, num_classes=2)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(0.1 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
            elif isinstance(m, torch.nn.Linear):
                m.weight.copy_(0.5 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.01 * torch.randn(m.bias.shape, generator=g))
    net.eval()
    return net


def export(name, width, size, out_dir):
    import torch
    from onnx_to_alm import convert
    torch.set_num_threads(1)
    onnx_path = os.path.join(out_dir, name + ".onnx")
    alm_path = os.path.join(out_dir, name + ".alm")
    if os.path.exists(onnx_path) and os.path.exists(alm_path):
        print(f"{name}: kept {onnx_path}")
        return
    net = build(width, size, SEED)
    x = torch.from_numpy(np.random.default_rng(SEED).uniform(-2, 2, (1, 3, size, size))
                         .astype(np.float32))
    with torch.no_grad():
        y = net(x).numpy().reshape(-1)
    torch.onnx.export(net, x, onnx_path, opset_version=13, input_names=["input"],
                      output_names=["logits"])
    convert(onnx_path, alm_path, {"name": name,
                                  "mean": "0.485,0.456,0.406", "std": "0.229,0.224,0.225",
                                  "description": "benchmark model: seeded random weights"})
    x.numpy().tofile(os.path.join(out_dir, name + ".input_nchw.f32"))
    x.numpy()[0].transpose(1, 2, 0).copy().tofile(os.path.join(out_dir, name + ".input_hwc.f32"))
    y.astype(np.float32).tofile(os.path.join(out_dir, name + ".torch_output.f32"))
    print(f"{name}: {onnx_path}, {alm_path}; torch logits range "
          f"[{y.min():.3f}, {y.max():.3f}]")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, (width, size) in MODELS.items():
        export(name, width, size, args.out)


if __name__ == "__main__":
    main()

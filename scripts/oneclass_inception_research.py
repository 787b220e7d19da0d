#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One-class research: PaDiM on the Inception V3 of npm nsfwjs instead of its MobileNetV2.

A larger, differently built ImageNet-derived backbone is the obvious next thing to try for the
magnetic tiles (docs/ONECLASS.md). Features: Inception V3 at 299x299 (x/255, as nsfwjs feeds
it), the outputs of mixed0/2 (35x35) and mixed4/7 (17x17), each smoothed by a 3x3 average and
max-pooled onto the 17x17 grid (adaptive: 35 is not a multiple of 17, which `anomalens fit`
needs, so the C++ CLI can only take the 17x17 pair), concatenated, projected by the C++ fit's
+-1/sqrt(P) random projection, then PaDiM under the two settings of the other research scripts.
Splits as scripts/oneclass_research.py (magnetic tiles by physical tile). Features are cached
in --cache (about 1.3 GB for the magnetic tiles; extraction about 11 minutes on one core).

    /usr/bin/python3 scripts/oneclass_inception_research.py --dataset mt \\
        --subsets mixed0,mixed2,mixed4,mixed7 --subsets mixed2,mixed4 --dims 128
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from oneclass_research import DATA, cached_rows, common_args, list_dir, load_image, splits  # noqa: E402
from oneclass_aug_research import format_results, projection, score_settings  # noqa: E402
import tfjs_import  # noqa: E402

LAYERS = ["mixed0", "mixed2", "mixed4", "mixed7"]
INCEPTION_DIR = os.path.join(os.path.dirname(tfjs_import.NSFWJS_DIR), "inception_v3")


def main():
    ap = common_args(__doc__)
    ap.set_defaults(size=299)
    ap.add_argument("--grid", type=int, default=17)
    ap.add_argument("--subsets", action="append",
                    help="comma-separated layers of " + ",".join(LAYERS) + " (repeatable)")
    ap.add_argument("--dims", default="128", help="projection sizes, comma-separated (0: none)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if not os.path.isdir(INCEPTION_DIR):
        sys.exit(f"oneclass_inception_research.py: {INCEPTION_DIR} not found: run `npm install`")
    topo, weights = tfjs_import.load_tfjs(INCEPTION_DIR)
    net = tfjs_import.KerasGraph(topo, weights, outputs=LAYERS).eval()
    with torch.no_grad():
        widths = [o.shape[1] for o in net(torch.zeros(1, 3, a.size, a.size))]
    offsets = np.cumsum([0] + widths)

    def features(path):
        x = torch.from_numpy(load_image(path, a.size)).permute(2, 0, 1)[None]
        with torch.no_grad():
            maps = [F.avg_pool2d(m, 3, 1, 1, count_include_pad=False) for m in net(x)]
        maps = [m if m.shape[-1] == a.grid else F.adaptive_max_pool2d(m, a.grid) for m in maps]
        return torch.cat(maps, 1)[0].permute(1, 2, 0).numpy().astype(np.float16)

    for ds in a.dataset or ["mt"]:
        root = os.path.join(DATA, "magnetic_tile" if ds == "mt" else "elpv")
        normal, abnormal = list_dir(os.path.join(root, "normal")), list_dir(os.path.join(root, "abnormal"))
        tag = f"inception_{ds}_{a.size}_{a.grid}"
        feats = cached_rows(os.path.join(a.cache, tag + ".npy"), (a.grid, a.grid, offsets[-1]),
                            normal + abnormal, features, tag)
        feats = torch.from_numpy(np.asarray(feats, dtype=np.float32))
        seeds = [int(s) for s in a.seeds.split(",")]
        masks = splits(ds, len(normal), normal, seeds, a.fit_fraction)
        for subset in a.subsets or [",".join(LAYERS)]:
            names = subset.split(",")
            if any(n not in LAYERS for n in names):
                sys.exit(f"--subsets {subset}: layers must be among {','.join(LAYERS)}")
            idx = np.concatenate([np.arange(offsets[LAYERS.index(n)], offsets[LAYERS.index(n) + 1])
                                  for n in names])
            x_sub = feats[..., torch.from_numpy(idx)]
            for p in [int(d) for d in a.dims.split(",")]:
                x = (x_sub @ torch.from_numpy(projection(len(idx), p)).T if p else x_sub).double()
                res = {}
                for mask in masks:
                    m = torch.from_numpy(mask)
                    xn = x[:len(normal)]
                    score_settings([xn[m]], torch.cat([xn[~m], x[len(normal):]]), int((~m).sum()), res)
                print(f"{ds} {'+'.join(names)} P={p}: {format_results(res)}", flush=True)


if __name__ == "__main__":
    main()

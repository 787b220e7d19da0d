#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One-class research, part 4: how the 912 backbone channels are weighted before PaDiM.

`anomalens fit` projects the max-pooled block 3/6/13 expansion outputs (144 + 192 + 576
channels on the 14x14 grid) to 128 channels by a fixed random +-1/sqrt(128) matrix, so channels
count by their raw scale, and block 13's 576 channels dominate. Variants, each fitted on the
fitting split's features only (no test or abnormal image sets anything):

- base: the C++ projection (same bits);
- std / sqrtstd: each channel divided by its standard deviation (or its square root) first;
- layerbal: each block's channels scaled so the three blocks carry the same total variance;
- pca / npca / npca_skip: the 128 principal axes of the largest (pca) or smallest (npca;
  npca_skip leaves out numerically null ones) variance, instead of a random projection
  (Rippel et al., ICPR 2020, report NPCA best on ImageNet features); `--dim` sets their count.

Scored as PaDiM with the C++ defaults (shrinkage 0.01, no smoothing) and with
`--smooth 0.7 --shrinkage 0.1`; image score = max over locations. Splits as
scripts/oneclass_research.py (magnetic tiles by physical tile). Results: docs/ONECLASS.md.

    /usr/bin/python3 scripts/oneclass_proj_research.py --dataset mt
    /usr/bin/python3 scripts/oneclass_proj_research.py --dataset mt --variants pca --dim 200
"""

import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
torch.set_num_threads(2)
from oneclass_research import (DATA, EXPANDS, cached_rows, common_args, list_dir,  # noqa: E402
                               load_backbone, load_image, splits)
from oneclass_aug_research import format_results, pool_variant, projection, score_settings  # noqa: E402

CHANNELS = 912
BLOCKS = [slice(0, 144), slice(144, 336), slice(336, 912)]


def extract_raw(files, size, cache, tag):
    """N, g, g, 912 max-pooled features (float16), identity only, before any projection."""
    net = None  # loaded on the first image that is not cached
    grid = size // 16

    def features(f):
        nonlocal net
        net = net or load_backbone(EXPANDS)
        x = torch.from_numpy(load_image(f, size)).permute(2, 0, 1)[None]
        with torch.no_grad():
            e = pool_variant(list(net(x)), grid, "max")
        return e[0].permute(1, 2, 0).numpy()

    path = os.path.join(cache, f"ocraw_{tag}_{size}.npy")
    return cached_rows(path, (grid, grid, CHANNELS), files, features, tag)


def weights(variant, flat, dim):
    """flat: fitting features (rows of 912, float64) -> the 912 x P projection."""
    w = torch.from_numpy(projection(CHANNELS, 128)).double().T
    if variant == "base":
        return w
    if variant in ("std", "sqrtstd"):
        sd = flat.std(0) + 1e-6
        return w / (sd if variant == "std" else sd.sqrt())[:, None]
    if variant == "layerbal":
        s = torch.ones(CHANNELS, dtype=torch.float64)
        for b in BLOCKS:
            s[b] = 1.0 / (flat[:, b].var(0).sum().sqrt() + 1e-6)
        return w * s[:, None]
    if variant in ("pca", "npca", "npca_skip"):
        ev, vec = torch.linalg.eigh(torch.cov(flat[::7].T))  # ascending eigenvalues
        if variant == "pca":
            return vec[:, -dim:]
        skip = int((ev < 1e-6 * ev[-1]).sum()) if variant == "npca_skip" else 0
        return vec[:, skip:skip + dim]
    raise SystemExit(f"unknown variant {variant}")


def main():
    ap = common_args(__doc__)
    ap.add_argument("--variants", default="base,std,sqrtstd,layerbal,pca,npca,npca_skip")
    ap.add_argument("--dim", type=int, default=128, help="principal axes kept by pca / npca")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    for ds in a.dataset or ["mt", "elpv"]:
        root = os.path.join(DATA, "elpv" if ds == "elpv" else "magnetic_tile")
        normal, abnormal = list_dir(os.path.join(root, "normal")), list_dir(os.path.join(root, "abnormal"))
        raw = extract_raw(normal + abnormal, a.size, a.cache, ds)
        nn_ = len(normal)
        g = raw.shape[1]
        for v in a.variants.split(","):
            res = {}
            t0 = time.time()
            for fm in splits(ds, nn_, normal, seeds, a.fit_fraction):
                xf = torch.from_numpy(np.asarray(raw[:nn_][fm], np.float64)).reshape(-1, CHANNELS)
                p = weights(v, xf, a.dim)
                pf = (xf @ p).reshape(-1, g, g, p.shape[1])
                test = np.concatenate([raw[:nn_][~fm], raw[nn_:]])
                pt = (torch.from_numpy(np.asarray(test, np.float64)).reshape(-1, CHANNELS) @ p)
                pt = pt.reshape(-1, g, g, p.shape[1])
                nt = int((~fm).sum())
                score_settings([pf], pt, nt, res)
            print(f"{ds:4s} {v:10s} {format_results(res)}  ({time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    main()

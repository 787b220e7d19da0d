#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One-class research: PaDiM over K random projections of the same features, maps averaged.

The C++ fit projects the 912 max-pooled MobileNetV2 channels (blocks 3/6/13 expand) to 128 by
one random +-1 matrix. K independent projections (C++ seeds 1..K), one PaDiM each, combined as
the root mean square of their distance maps, test whether that one draw loses information
(docs/ONECLASS.md). Needs the raw 912-channel features that scripts/oneclass_proj_research.py
caches (`ocraw_mt_224.npy` in --cache); magnetic tiles split by tile, seeds 1, 2, 3.

    /usr/bin/python3 scripts/oneclass_proj_research.py --dataset mt   # writes the cache
    /usr/bin/python3 scripts/oneclass_ensemble_research.py --k 4
"""

import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from oneclass_research import DATA, auc, list_dir, splits  # noqa: E402
from oneclass_aug_research import SETTINGS, fit, projection, score_maps, smooth  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--k", type=int, default=4, help="number of projections (default 4)")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--cache", default="/tmp/oneclass_cache")
    a = ap.parse_args()
    torch.set_num_threads(1)
    path = os.path.join(a.cache, "ocraw_mt_224.npy")
    if not os.path.exists(path):
        sys.exit(f"oneclass_ensemble_research.py: {path} missing: run "
                 "scripts/oneclass_proj_research.py --dataset mt first")
    normal = list_dir(os.path.join(DATA, "magnetic_tile", "normal"))
    raw = torch.from_numpy(np.asarray(np.load(path, mmap_mode="r"), dtype=np.float32))
    projected = [(raw @ torch.from_numpy(projection(raw.shape[-1], a.dim, seed=s)).T).double()
                 for s in range(1, a.k + 1)]
    masks = splits("mt", len(normal), normal, [1, 2, 3], 0.7)
    for key, eps, sigma in SETTINGS:
        res = {}
        for mask in masks:
            m = torch.from_numpy(mask)
            n_test_normal = int((~m).sum())
            maps = []
            for x in projected:
                xn = x[:len(normal)]
                maps.append(score_maps(fit([xn[m]], 0, eps), torch.cat([xn[~m], x[len(normal):]])))
            for k in sorted({1, 2, a.k}):
                mp = smooth(torch.stack(maps[:k]).pow(2).mean(0).sqrt(), sigma)
                s = mp.reshape(len(mp), -1).max(1).values.numpy()
                res.setdefault(k, []).append(auc(s[:n_test_normal], s[n_test_normal:]))
        print(f"{key}: " + "  ".join(f"K={k}: {np.mean(r):.3f} ({', '.join(f'{v:.3f}' for v in r)})"
                                     for k, r in res.items()), flush=True)


if __name__ == "__main__":
    main()

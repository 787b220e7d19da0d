#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One-class research, part 5: photometric fit-time augmentation against unseen lightings.

Each magnetic tile is photographed under six lightings, and the test tiles are new tiles: much
of what a per-location Gaussian must tolerate is a change of brightness and contrast. This
script adds photometric copies of every fitting image to the Gaussians (the test images are
never transformed):

- gamma0.6 / gamma1.6: x ** 0.6 (brighter mid-tones) and x ** 1.6 (darker);
- contrast0.6: 0.5 + 0.6 * (x - 0.5);
- bright0.8 / bright1.2: x * 0.8 and min(1, x * 1.2).

Features as `anomalens fit`'s defaults (blocks 3/6/13 expand outputs, 3x3 average, max-pooled
to 14x14, the C++ +-1 projection to 128), scored as PaDiM with the C++ defaults and with
`--smooth 0.7 --shrinkage 0.1`; image score = max. Splits as scripts/oneclass_research.py
(magnetic tiles by physical tile). Results: docs/ONECLASS.md.

    /usr/bin/python3 scripts/oneclass_photometric_research.py --dataset mt
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

PHOTOMETRIC = {
    "id": lambda x: x,
    "gamma0.6": lambda x: x ** 0.6,
    "gamma1.6": lambda x: x ** 1.6,
    "contrast0.6": lambda x: 0.5 + 0.6 * (x - 0.5),
    "bright0.8": lambda x: x * 0.8,
    "bright1.2": lambda x: np.minimum(1.0, x * 1.2),
}


def extract(files, size, cache, tag, transforms):
    """N, T, 14, 14, 128 projected features (float16) for each photometric transform."""
    net = None  # loaded on the first image that is not cached
    grid = size // 16
    w = torch.from_numpy(projection(144 + 192 + 576, 128))

    def features(f):
        nonlocal net
        net = net or load_backbone(EXPANDS)
        x = load_image(f, size)
        xs = torch.stack([torch.from_numpy(np.ascontiguousarray(PHOTOMETRIC[t](x), np.float32)).permute(2, 0, 1)
                          for t in transforms])
        with torch.no_grad():
            e = pool_variant(list(net(xs)), grid, "max")
        return torch.einsum("tchw,pc->thwp", e, w).numpy()

    path = os.path.join(cache, f"ocphoto_{tag}_{size}_{'+'.join(transforms)}.npy")
    return cached_rows(path, (len(transforms), grid, grid, 128), files, features, tag)


def main():
    ap = common_args(__doc__)
    ap.add_argument("--variants", default="id,id+gamma0.6+gamma1.6,id+contrast0.6,id+bright0.8+bright1.2,"
                                          "id+gamma0.6+gamma1.6+contrast0.6+bright0.8+bright1.2")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    transforms = list(PHOTOMETRIC)
    for ds in a.dataset or ["mt", "elpv"]:
        root = os.path.join(DATA, "elpv" if ds == "elpv" else "magnetic_tile")
        normal, abnormal = list_dir(os.path.join(root, "normal")), list_dir(os.path.join(root, "abnormal"))
        nn_ = len(normal)
        # Only normal images are ever transformed; abnormal ones need the identity alone.
        feats_n = extract(normal, a.size, a.cache, ds + "_normal", transforms)
        feats_a = extract(abnormal, a.size, a.cache, ds + "_abnormal", ["id"])
        for v in a.variants.split(","):
            use = [transforms.index(t) for t in v.split("+")]
            res = {}
            t0 = time.time()
            for fm in splits(ds, nn_, normal, seeds, a.fit_fraction):
                xf = [torch.from_numpy(np.asarray(feats_n[fm][:, t], np.float64)) for t in use]
                test = torch.from_numpy(np.concatenate([feats_n[~fm][:, 0], feats_a[:, 0]]).astype(np.float64))
                nt = int((~fm).sum())
                score_settings(xf, test, nt, res)
            print(f"{ds:4s} {v:60s} {format_results(res)}  ({time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    main()

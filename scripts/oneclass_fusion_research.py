#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One-class research, part 3: PaDiM + image-level Gaussian score fusion, and letterbox resize.

Measures ROC AUC (normal-only fitting; splits as scripts/oneclass_research.py, magnetic tiles
grouped by physical tile) of:

- padim: the `anomalens fit` default (nsfwjs MobileNetV2 blocks 3/6/13 expand outputs, 3x3
  average then MAX pooling to the 14x14 grid, +-1/sqrt(128) projection, one Gaussian per
  location, image score = max of the (optionally smoothed) distance map);
- global: one Gaussian (covariance shrinkage eps * trace / D) over one vector per image:
  gavg / gmax = global average / max over the grid of the projected 128-d features, or
  pca-avg / pca-max = the unprojected 912 channels, PCA (fit on the normal fit images) to K dims;
- fusion: z(padim) + w * z(global). z() standardises a score with its mean / std on the NORMAL FIT
  images only: `cv` = out-of-fold scores (5 folds of the fit images, by tile for magnetic tiles),
  `in` = in-sample scores of the final models. No test or abnormal image sets anything.
- --resize stretch | pad-edge | pad-black: stretch to square (default) or letterbox first.

Features (identity view only) are cached in --cache; nothing is written to the repository.

    /usr/bin/python3 scripts/oneclass_fusion_research.py --dataset mt
    /usr/bin/python3 scripts/oneclass_fusion_research.py --dataset mt --resize pad-edge
    /usr/bin/python3 scripts/oneclass_fusion_research.py --dataset elpv
"""

import os
import sys
import time

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
torch.set_num_threads(1)
from oneclass_research import DATA, EXPANDS, auc, common_args, list_dir, load_backbone, mt_tiles, splits  # noqa: E402
from oneclass_aug_research import fit, pool_variant, projection, reduce, score_maps, smooth  # noqa: E402


def load_image(path, size, resize):
    im = Image.open(path).convert("RGB")
    if resize != "stretch":
        a = np.asarray(im)
        h, w = a.shape[:2]
        s = max(h, w)
        py, px = (s - h) // 2, (s - w) // 2
        pad = ((py, s - h - py), (px, s - w - px), (0, 0))
        a = np.pad(a, pad, mode="edge") if resize == "pad-edge" else np.pad(a, pad)
        im = Image.fromarray(a)
    im = im.resize((size, size), Image.BILINEAR)
    return np.asarray(im, dtype=np.float32) / 255.0


def extract(files, size, cache, tag, proj, resize):
    """grid: N, g, g, proj (float16, default features); raw_avg / raw_max: N, C global pools of
    the unprojected max-pooled grid."""
    path = os.path.join(cache, f"ocfusion_{tag}_{size}_p{proj}_{resize}.npz")
    if os.path.exists(path):
        z = np.load(path)
        return {k: z[k] for k in z.files}
    net = load_backbone(EXPANDS)
    grid = size // 16
    w = None
    grids, ravg, rmax = [], [], []
    t0 = time.time()
    for i, f in enumerate(files):
        x = torch.from_numpy(load_image(f, size, resize)).permute(2, 0, 1)[None]
        with torch.no_grad():
            e = pool_variant(list(net(x)), grid, "max")  # 1, C, g, g
        if w is None:
            w = torch.from_numpy(projection(e.shape[1], proj))
        grids.append(torch.einsum("tchw,pc->thwp", e, w)[0].numpy().astype(np.float16))
        ravg.append(e.mean((2, 3))[0].numpy())
        rmax.append(e.amax((2, 3))[0].numpy())
        if i % 200 == 0:
            print(f"  {tag} {resize}: {i}/{len(files)} {time.time() - t0:.0f}s", flush=True)
    res = {"grid": np.stack(grids), "raw_avg": np.stack(ravg), "raw_max": np.stack(rmax)}
    os.makedirs(cache, exist_ok=True)
    np.savez(path + ".part.npz", **res)
    os.rename(path + ".part.npz", path)
    return res


# ---- image-level Gaussian ------------------------------------------------------------------

def gfit(x, eps, pca=0):
    """x: N, D float64. Optional PCA to `pca` dims, then mean + shrunk inverse covariance."""
    mu0 = x.mean(0)
    P = None
    if pca:
        _, _, vt = np.linalg.svd(x - mu0, full_matrices=False)
        P = vt[:pca].T
        x = (x - mu0) @ P
    mu = x.mean(0)
    cov = np.cov(x, rowvar=False)
    d = cov.shape[0]
    cov = cov + (eps * np.trace(cov) / d + 1e-9) * np.eye(d)
    return mu0, P, mu, np.linalg.inv(cov)


def gscore(model, x):
    mu0, P, mu, icov = model
    if P is not None:
        x = (x - mu0) @ P
    xc = x - mu
    return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", xc, icov, xc), 0))


def global_vec(feats, kind):
    if kind == "gavg":
        return feats["grid"].astype(np.float64).mean((1, 2))
    if kind == "gmax":
        return feats["grid"].astype(np.float64).max((1, 2))
    if kind == "gavgmax":
        g = feats["grid"].astype(np.float64)
        return np.concatenate([g.mean((1, 2)), g.max((1, 2))], 1)
    return feats["raw_" + kind.split("-")[1]].astype(np.float64)  # pca-avg / pca-max


# ---- scores ----------------------------------------------------------------------------------

def padim_scores(grid_fit, grid_eval_list, eps, sigma):
    model = fit([torch.from_numpy(grid_fit)], 0, eps)
    return [reduce(smooth(score_maps(model, torch.from_numpy(g)), sigma), "max") for g in grid_eval_list]


def folds_of(ds, normal, fitmask, k, seed):
    """Fold index per fit image (by tile for magnetic tiles)."""
    idx = np.flatnonzero(fitmask)
    rng = np.random.default_rng(1000 + seed)
    if ds == "mt":
        tiles = mt_tiles(normal)[idx]
        ut = rng.permutation(np.unique(tiles))
        tf = {t: i % k for i, t in enumerate(ut)}
        return np.array([tf[t] for t in tiles])
    return rng.permutation(len(idx)) % k


def main():
    ap = common_args(__doc__)
    ap.add_argument("--proj", type=int, default=128)
    ap.add_argument("--resize", default="stretch", choices=["stretch", "pad-edge", "pad-black"])
    ap.add_argument("--padim", default="0:0.01,0.7:0.1", help="sigma:eps list for the PaDiM score")
    ap.add_argument("--globals", default="gavg:0.1,gmax:0.1,gavgmax:0.1,pca-avg:0.1:64,pca-max:0.1:64",
                    help="kind:eps[:pca dims] list")
    ap.add_argument("--weights", default="0.5,1")
    ap.add_argument("--folds", type=int, default=5)
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    weights = [float(w) for w in a.weights.split(",")]
    t_all = time.time()
    for ds in a.dataset or ["mt"]:
        root = os.path.join(DATA, "elpv" if ds == "elpv" else "magnetic_tile")
        normal, abnormal = list_dir(os.path.join(root, "normal")), list_dir(os.path.join(root, "abnormal"))
        feats = extract(normal + abnormal, a.size, a.cache, ds, a.proj, a.resize)
        nn_ = len(normal)
        fits = splits(ds, nn_, normal, seeds, a.fit_fraction)
        grid = feats["grid"].astype(np.float64)
        padims = [tuple(float(v) for v in p.split(":")) for p in a.padim.split(",")]
        gl = []
        for g in a.globals.split(","):
            p = g.split(":")
            gl.append((g, p[0], float(p[1]), int(p[2]) if len(p) > 2 else 0))
        gvecs = {kind: global_vec(feats, kind) for _, kind, _, _ in gl}
        res = {}  # name -> list of AUC per seed

        def add(name, s_test, nt):
            res.setdefault(name, []).append(auc(s_test[:nt], s_test[nt:]))

        for seed, fm in zip(seeds, fits):
            t0 = time.time()
            test_idx = np.concatenate([np.flatnonzero(~fm), np.arange(nn_, len(grid))])
            fit_idx = np.flatnonzero(fm)
            nt = int((~fm).sum())
            fo = folds_of(ds, normal, fm, a.folds, seed)
            # each score: (test scores, in-sample fit scores, out-of-fold fit scores)
            scores = {}
            for sigma, eps in padims:
                name = f"padim s{sigma:g} e{eps:g}"
                te, fi = padim_scores(grid[fit_idx], [grid[test_idx], grid[fit_idx]], eps, sigma)
                oof = np.empty(len(fit_idx))
                for k in range(a.folds):
                    tr, va = fit_idx[fo != k], fit_idx[fo == k]
                    oof[fo == k] = padim_scores(grid[tr], [grid[va]], eps, sigma)[0]
                scores[name] = (te, fi, oof)
            for gname, kind, eps, k_ in gl:
                x = gvecs[kind]
                m = gfit(x[fit_idx], eps, k_)
                oof = np.empty(len(fit_idx))
                for k in range(a.folds):
                    tr, va = fit_idx[fo != k], fit_idx[fo == k]
                    oof[fo == k] = gscore(gfit(x[tr], eps, k_), x[va])
                scores["global " + gname] = (gscore(m, x[test_idx]), gscore(m, x[fit_idx]), oof)
            for name, (te, _, _) in scores.items():
                add(name, te, nt)
            for pname in [n for n in scores if n.startswith("padim")]:
                for gname in [n for n in scores if n.startswith("global")]:
                    for norm, j in (("cv", 2), ("in", 1)):
                        zs = []
                        for n in (pname, gname):
                            ref = scores[n][j]
                            zs.append((scores[n][0] - ref.mean()) / (ref.std() + 1e-12))
                        for w in weights:
                            add(f"{pname} + {w:g}*{gname[7:]} [{norm}]", zs[0] + w * zs[1], nt)
            print(f"  seed {seed}: {time.time() - t0:.0f}s", flush=True)
        print(f"== {ds} resize={a.resize}: {nn_} normal, {len(abnormal)} abnormal, seeds {a.seeds}")
        for name, r in res.items():
            print(f"{ds:4s} {name:52s} {np.mean(r):.3f} ({', '.join(f'{x:.3f}' for x in r)})", flush=True)
    print(f"wall {time.time() - t_all:.0f}s")


if __name__ == "__main__":
    main()

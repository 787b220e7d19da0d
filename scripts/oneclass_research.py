#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One-class anomaly detection research: PaDiM vs PatchCore on pretrained MobileNetV2 features.

Features: the MobileNetV2 backbone shipped in npm nsfwjs (imported with scripts/tfjs_import.py),
input x/255 resized (stretch, PIL bilinear) to SIZE x SIZE. Feature maps of several blocks are
smoothed by a 3x3 average, average-pooled to the coarsest grid and concatenated: the same graph
`anomalens fit` builds in C++ (src/oneclass/). Fitting uses NORMAL images only; ROC AUC is
measured on held-out normal images and all abnormal ones.

Splits:
- ELPV (/work/shared/data/elpv): normal images shuffled (seed), FIT_FRACTION fit, rest test.
- magnetic tiles: grouped by physical tile (sorted `num_` ids, a gap > 100 starts a new tile,
  as ../shared/data/magnetic_tile/SOURCE.md describes); whole tiles go to fit or test.
  Abnormal tiles are only ever tested. Repeated over several seeds.

    /usr/bin/python3 scripts/oneclass_research.py --dataset elpv --dataset mt

Nothing is written to the repository (feature caches go to --cache, default /tmp).
"""

import argparse
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
torch.set_num_threads(1)

DATA = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data"))
ADDS = ["block_2_add", "block_5_add", "block_12_add"]                 # 24 + 32 + 96 = 152
EXPANDS = ["block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu"]  # 144+192+576


def load_backbone(layers):
    from tfjs_import import NSFWJS_DIR, KerasGraph, load_tfjs
    topo, weights = load_tfjs(NSFWJS_DIR)
    return KerasGraph(topo, weights, outputs=layers).eval()


def load_image(path, size):
    im = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    return np.asarray(im, dtype=np.float32) / 255.0


def pool_to_grid(maps, grid):
    """maps: list of N,C,H,W -> N,sumC,grid,grid (3x3 smoothing, then average pooling)."""
    out = []
    for m in maps:
        m = F.avg_pool2d(m, 3, 1, 1, count_include_pad=False)
        f = m.shape[-1] // grid
        if f > 1:
            m = F.avg_pool2d(m, f, f)
        out.append(m)
    return torch.cat(out, 1)


def cached_rows(path, row_shape, files, compute, tag):
    """A float16 array of len(files) rows of row_shape, row i = compute(files[i]), computed once
    and kept in `path` (.npy, memory-mapped). Written to a .part file renamed when complete, so an
    interrupted run leaves no truncated cache."""
    if os.path.exists(path):
        return np.load(path, mmap_mode="r")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    out = np.lib.format.open_memmap(path + ".part.npy", mode="w+", dtype=np.float16,
                                    shape=(len(files), *row_shape))
    t0 = time.time()
    for i, f in enumerate(files):
        out[i] = compute(f)
        if i % 200 == 0:
            print(f"  {tag}: {i}/{len(files)} {time.time() - t0:.0f}s", flush=True)
    out.flush()
    del out
    os.rename(path + ".part.npy", path)
    return np.load(path, mmap_mode="r")


def extract(files, size, cache, tag, flips):
    """Returns {variant: array N, T, H, W, C float16}, T = number of test-time transforms."""
    path = os.path.join(cache, f"oneclass_{tag}_{size}_{int(flips)}.npz")
    if os.path.exists(path):
        z = np.load(path)
        return {k: z[k] for k in z.files}
    net = load_backbone(ADDS + EXPANDS)
    grid = size // 16
    res = {"adds": [], "expands": []}
    t0 = time.time()
    for i, f in enumerate(files):
        x = torch.from_numpy(load_image(f, size)).permute(2, 0, 1)[None]
        xs = [x, torch.flip(x, [3]), torch.flip(x, [2])] if flips else [x]
        with torch.no_grad():
            outs = net(torch.cat(xs, 0))
        a = pool_to_grid(list(outs[:3]), grid)
        e = pool_to_grid(list(outs[3:]), grid)
        if flips:  # bring flipped maps back to the original orientation
            a[1], e[1] = torch.flip(a[1], [2]), torch.flip(e[1], [2])
            a[2], e[2] = torch.flip(a[2], [1]), torch.flip(e[2], [1])
        res["adds"].append(a.permute(0, 2, 3, 1).numpy().astype(np.float16))
        res["expands"].append(e.permute(0, 2, 3, 1).numpy().astype(np.float16))
        if i % 200 == 0:
            print(f"  {tag}: {i}/{len(files)} {time.time() - t0:.0f}s", flush=True)
    res = {k: np.stack(v) for k, v in res.items()}
    os.makedirs(cache, exist_ok=True)
    np.savez(path, **res)
    return res


# ---- detectors ---------------------------------------------------------------------------

def padim_fit(x, eps=0.01):
    """x: N, L, D (L locations). Per-location mean and inverse covariance."""
    n, L, d = x.shape
    mu = x.mean(0)
    xc = x - mu[None]
    cov = np.einsum("nld,nle->lde", xc, xc) / max(n - 1, 1)
    cov += eps * np.eye(d)[None] * np.trace(cov, axis1=1, axis2=2)[:, None, None] / d
    return mu, np.linalg.inv(cov)


def padim_score(model, x):
    mu, icov = model
    xc = x - mu[None]
    return np.sqrt(np.maximum(np.einsum("nld,lde,nle->nl", xc, icov, xc), 0))


def coreset(x, m, rng, proj_dim=64):
    """Greedy k-center coreset (PatchCore), distances in a random projection for speed."""
    n = len(x)
    if m >= n:
        return x
    p = rng.standard_normal((x.shape[1], proj_dim)).astype(np.float32) / np.sqrt(proj_dim)
    xp = x @ p
    sel = [int(rng.integers(n))]
    dmin = ((xp - xp[sel[0]]) ** 2).sum(1)
    for _ in range(m - 1):
        j = int(dmin.argmax())
        sel.append(j)
        dmin = np.minimum(dmin, ((xp - xp[j]) ** 2).sum(1))
    return x[np.array(sel)]


def patchcore_fit(x, m, rng, max_pool=60000):
    """x: N, L, D. Patches of all locations pooled (no position), subsampled, then coreset."""
    p = x.reshape(-1, x.shape[-1])
    if len(p) > max_pool:  # reservoir-like bound before the coreset
        p = p[rng.choice(len(p), max_pool, replace=False)]
    return coreset(p, m, rng)


def patchcore_score(bank, x, chunk=4096):
    n, L, d = x.shape
    q = x.reshape(-1, d)
    bb = (bank ** 2).sum(1)
    out = np.empty(len(q), np.float32)
    tb = torch.from_numpy(bank)
    for s in range(0, len(q), chunk):
        tq = torch.from_numpy(q[s:s + chunk])
        d2 = (tq ** 2).sum(1, keepdim=True) - 2 * tq @ tb.T + torch.from_numpy(bb)[None]
        out[s:s + chunk] = d2.min(1).values.clamp_min(0).sqrt().numpy()
    return out.reshape(n, L)


def auc(normal, abnormal):
    s = np.concatenate([normal, abnormal])
    order = s.argsort(kind="mergesort")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    # average ranks of ties
    _, inv, cnt = np.unique(s, return_inverse=True, return_counts=True)
    sums = np.zeros(len(cnt))
    np.add.at(sums, inv, ranks)
    ranks = (sums / cnt)[inv]
    r = ranks[len(normal):].sum()
    na, nn = len(abnormal), len(normal)
    return (r - na * (na + 1) / 2) / (na * nn)


# ---- data --------------------------------------------------------------------------------

def list_dir(d):
    return sorted(os.path.join(d, f) for f in os.listdir(d) if not f.startswith("."))


def mt_tiles(files):
    """Tile id per file: sorted num_ ids, a gap > 100 starts a new tile (SOURCE.md)."""
    ids = [int(re.search(r"num_(\d+)", os.path.basename(f)).group(1)) for f in files]
    order = np.argsort(ids, kind="mergesort")
    tile = np.empty(len(files), int)
    t, prev = -1, None
    for i in order:
        if prev is None or ids[i] - prev > 100:
            t += 1
        tile[i] = t
        prev = ids[i]
    return tile


def splits(dataset, n_normal, normal_files, seeds, fit_fraction):
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        if dataset == "mt":
            tiles = mt_tiles(normal_files)
            ut = rng.permutation(np.unique(tiles))
            fit_t = set(ut[:int(round(fit_fraction * len(ut)))].tolist())
            fit = np.array([t in fit_t for t in tiles])
        else:
            perm = rng.permutation(n_normal)
            fit = np.zeros(n_normal, bool)
            fit[perm[:int(round(fit_fraction * n_normal))]] = True
        out.append(fit)
    return out


def reduce_image(m, how):
    if how == "max":
        return m.max(1)
    k = max(1, m.shape[1] // 100)  # mean of the top 1% locations
    return np.sort(m, 1)[:, -k:].mean(1)


def common_args(doc):
    """The options every one-class research script shares (datasets, input size, cache, splits)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[1])
    ap.add_argument("--dataset", action="append", choices=["elpv", "mt"])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--cache", default="/tmp/oneclass_cache")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--fit-fraction", type=float, default=0.7)
    return ap


def main():
    ap = common_args(__doc__)
    ap.add_argument("--flips", action="store_true", help="also hflip/vflip test-time transforms")
    ap.add_argument("--bank", type=int, default=10000, help="PatchCore coreset size")
    ap.add_argument("--methods", default="padim,patchcore")
    ap.add_argument("--features", default="adds,expands,both,adds+proj,expands+proj")
    ap.add_argument("--proj", type=int, default=128)
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    for ds in a.dataset or ["elpv", "mt"]:
        root = os.path.join(DATA, "elpv" if ds == "elpv" else "magnetic_tile")
        normal, abnormal = list_dir(os.path.join(root, "normal")), list_dir(os.path.join(root, "abnormal"))
        feats = extract(normal + abnormal, a.size, a.cache, ds, a.flips)
        nn_ = len(normal)
        print(f"== {ds}: {nn_} normal, {len(abnormal)} abnormal, size {a.size}, flips {a.flips}")
        for fname in a.features.split(","):
            base = fname.split("+")[0]
            if base == "both":
                x = np.concatenate([feats["adds"], feats["expands"]], -1).astype(np.float32)
            else:
                x = feats[base].astype(np.float32)
            N, T, H, W, D = x.shape
            if fname.endswith("+proj"):
                r = np.random.default_rng(0).standard_normal((D, a.proj)).astype(np.float32)
                x = x @ (r / np.sqrt(a.proj))
                D = a.proj
            x = x.reshape(N, T, H * W, D)
            for method in a.methods.split(","):
                res = {"max": [], "top1%": []}
                t0 = time.time()
                for seed, fit in zip(seeds, splits(ds, nn_, normal, seeds, a.fit_fraction)):
                    xf = x[:nn_][fit][:, 0]  # fit on the untransformed view
                    if a.flips:  # fitting-time augmentation with the same flips
                        xf = x[:nn_][fit].reshape(-1, H * W, D)
                    test = np.concatenate([x[:nn_][~fit], x[nn_:]])
                    nt = int((~fit).sum())
                    if method == "padim":
                        model = padim_fit(xf)
                        maps = np.stack([padim_score(model, test[:, t]) for t in range(T)], 1)
                    else:
                        bank = patchcore_fit(xf, a.bank, np.random.default_rng(seed))
                        maps = np.stack([patchcore_score(bank, test[:, t]) for t in range(T)], 1)
                    m = maps.mean(1)  # average over test-time transforms
                    for how in res:
                        s = reduce_image(m, how)
                        res[how].append(auc(s[:nt], s[nt:]))
                dt = time.time() - t0
                line = "  ".join(f"{h} {np.mean(v):.3f}±{np.std(v):.3f}" for h, v in res.items())
                print(f"{ds:5s} {fname:14s} D={D:4d} {method:9s} {line}  ({dt:.0f}s)", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One-class research, part 2: augmentation and scoring variants of PaDiM (docs/ONECLASS.md).

Same features as `anomalens fit`'s default (nsfwjs MobileNetV2, blocks 3/6/13 expand outputs,
3x3 average, pooled to the 14x14 grid, +-1/sqrt(P) random projection to P=128), extracted for
the identity and the flips/rotation of each image, IN THE FLIPPED FRAME (nothing flipped back):

- fit-time augmentation: the flipped images are extra normal images for the Gaussians;
- test-time augmentation: the distance map of a flipped image, flipped back, is averaged with
  the plain one;
- fit-time shift pooling: the Gaussian of a location is fit on the features of its (2r+1)^2
  neighbourhood (translation jitter), which also gives each covariance 9x the samples;
- map smoothing and image-score reduction (max / top 1% mean).

Splits as scripts/oneclass_research.py (magnetic tiles by physical tile). Caches in --cache.

    /usr/bin/python3 scripts/oneclass_aug_research.py --dataset mt --variants base,shift1,flipfit
"""

import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
torch.set_num_threads(1)
from oneclass_research import (DATA, EXPANDS, auc, cached_rows, common_args, list_dir,  # noqa: E402
                               load_backbone, load_image, pool_to_grid, splits)

# Transforms of a CHW tensor (dims: 1 = H, 2 = W for a single image; +1 when batched).
TRANSFORMS = ["id", "hflip", "vflip", "rot180"]


def apply(x, t, hdim, wdim):
    if t == "id":
        return x
    if t == "hflip":
        return torch.flip(x, [wdim])
    if t == "vflip":
        return torch.flip(x, [hdim])
    return torch.flip(x, [hdim, wdim])


def projection(channels, p, seed=1):
    """The C++ projection: std::mt19937(seed) bits, +-1/sqrt(p), layout (p, channels)."""
    rs = np.random.RandomState(seed)  # init_genrand(seed): the same 32-bit stream as std::mt19937
    a = 1.0 / np.sqrt(p)
    bits = rs.randint(0, 2 ** 32, size=p * channels, dtype=np.uint32)
    w = np.where(bits & 1, a, -a).astype(np.float32).reshape(p, channels)
    return w


def extract(files, size, cache, tag, proj):
    """N, T, 14, 14, proj features (float16) for each of TRANSFORMS, in the transformed frame."""
    net = None  # loaded on the first image that is not cached
    grid = size // 16
    w = torch.from_numpy(projection(144 + 192 + 576, proj))

    def features(f):
        nonlocal net
        net = net or load_backbone(EXPANDS)
        x = torch.from_numpy(load_image(f, size)).permute(2, 0, 1)
        xs = torch.stack([apply(x, t, 1, 2) for t in TRANSFORMS])
        with torch.no_grad():
            e = pool_to_grid(list(net(xs)), grid)  # T, C, g, g
        return torch.einsum("tchw,pc->thwp", e, w).numpy()

    path = os.path.join(cache, f"ocaug_{tag}_{size}_p{proj}.npy")
    return cached_rows(path, (len(TRANSFORMS), grid, grid, proj), files, features, tag)


def pool_variant(maps, grid, how):
    """Like pool_to_grid, with the finer maps reduced to the grid by `how`: avg | max | avgmax
    (both, concatenated), or grid28 / grid28max (the 1/8 grid: the finer map average- or
    max-pooled, the coarsest map upsampled, nearest)."""
    out = []
    for m in maps:
        m = F.avg_pool2d(m, 3, 1, 1, count_include_pad=False)
        g = grid * 2 if how.startswith("grid28") else grid
        f = m.shape[-1] // g
        if f > 1:
            if how in ("avg", "grid28"):
                out.append(F.avg_pool2d(m, f, f))
            elif how in ("max", "grid28max"):
                out.append(F.max_pool2d(m, f, f))
            else:
                out += [F.avg_pool2d(m, f, f), F.max_pool2d(m, f, f)]
        elif m.shape[-1] < g:
            out.append(F.interpolate(m, scale_factor=g // m.shape[-1], mode="nearest"))
        else:
            out.append(m)
    return torch.cat(out, 1)


def extract_pool(files, size, cache, tag, proj, how):
    """Identity and hflip only, pooled per `how`."""
    net = None  # loaded on the first image that is not cached
    grid = size // 16
    g = grid * 2 if how.startswith("grid28") else grid
    w = None  # projection of however many channels `how` gives (avgmax: the finer maps twice)

    def features(f):
        nonlocal net, w
        net = net or load_backbone(EXPANDS)
        x = torch.from_numpy(load_image(f, size)).permute(2, 0, 1)
        xs = torch.stack([apply(x, t, 1, 2) for t in TRANSFORMS[:2]])
        with torch.no_grad():
            e = pool_variant(list(net(xs)), grid, how)
        w = w if w is not None else torch.from_numpy(projection(e.shape[1], proj))
        return torch.einsum("tchw,pc->thwp", e, w).numpy()

    path = os.path.join(cache, f"ocpool_{tag}_{size}_p{proj}_{how}.npy")
    return cached_rows(path, (2, g, g, proj), files, features, f"{tag} {how}")


def shifted(x, dy, dx):
    """x: N, H, W, D; the value at (y, x) becomes x[y + dy, x + dx] (edges clamped)."""
    H, W = x.shape[1], x.shape[2]
    iy = torch.clamp(torch.arange(H) + dy, 0, H - 1)
    ix = torch.clamp(torch.arange(W) + dx, 0, W - 1)
    return x[:, iy][:, :, ix]


def fit(xs, shift=0, eps=0.01, shared_cov=False):
    """xs: list of N, H, W, D tensors (float64). Per-location mean and inverse covariance."""
    H, W, D = xs[0].shape[1:]
    s = torch.zeros(H, W, D, dtype=torch.float64)
    q = torch.zeros(H * W, D, D, dtype=torch.float64)
    n = 0
    for x in xs:
        for dy in range(-shift, shift + 1):
            for dx in range(-shift, shift + 1):
                xx = shifted(x, dy, dx) if (dy or dx) else x
                s += xx.sum(0)
                f = xx.reshape(len(xx), H * W, D).permute(1, 0, 2)  # L, N, D
                q += f.transpose(1, 2) @ f
                n += len(xx)
    mu = (s / n).reshape(H * W, D)
    cov = q / n - mu[:, :, None] * mu[:, None, :]
    if shared_cov:
        cov = cov.mean(0, keepdim=True).expand(H * W, D, D).clone()
    tr = cov.diagonal(dim1=1, dim2=2).sum(1)
    cov = cov + (eps * tr / D + 1e-6)[:, None, None] * torch.eye(D, dtype=torch.float64)[None]
    return mu, torch.linalg.inv(cov)


def score_maps(model, x):
    """x: N, H, W, D -> N, H, W distances."""
    mu, icov = model
    N, H, W, D = x.shape
    xc = x.reshape(N, H * W, D) - mu[None]
    d2 = torch.einsum("nld,lde,nle->nl", xc, icov, xc)
    return d2.clamp_min(0).sqrt().reshape(N, H, W)


def score_maps_nbr(model, x, r):
    """Distance of each location's feature to the nearest (in Mahalanobis distance) of the
    Gaussians within r locations: tolerance to misalignment."""
    best = None
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            # feature at (y, x) scored against the Gaussian at (y + dy, x + dx): shift the
            # features so that location (y + dy, x + dx) holds f(y, x), score, shift back.
            xs = shifted(x, -dy, -dx)
            m = score_maps(model, xs)
            m = shifted(m[..., None], dy, dx)[..., 0]
            # edges: clamped shifts repeat border values; fine for a min
            best = m if best is None else torch.minimum(best, m)
    return best


def unflip_map(m, t):
    return apply(m, t, 1, 2)  # flips are their own inverse (N, H, W: H = dim 1, W = dim 2)


def smooth(m, sigma):
    if sigma <= 0:
        return m
    r = max(1, int(round(3 * sigma)))
    k = torch.exp(-(torch.arange(-r, r + 1, dtype=m.dtype) ** 2) / (2 * sigma ** 2))
    k = k / k.sum()
    x = m[:, None]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return x[:, 0]


# The two PaDiM settings the later research scripts report: the C++ defaults, and the tiles' best
# (`--smooth 0.7 --shrinkage 0.1`): (name, shrinkage, smoothing sigma).
SETTINGS = (("defaults", 0.01, 0.0), ("smooth 0.7, shrinkage 0.1", 0.1, 0.7))


def score_settings(fit_feats, test, n_normal, res):
    """Fits PaDiM on fit_feats (list of N, H, W, D float64 tensors) under each of SETTINGS and
    appends the ROC AUC on `test` (normal images first, n_normal of them; image score = max of
    the map) to res[setting name]."""
    for key, eps, sigma in SETTINGS:
        m = smooth(score_maps(fit(fit_feats, 0, eps), test), sigma)
        s = m.reshape(len(m), -1).max(1).values.numpy()
        res.setdefault(key, []).append(auc(s[:n_normal], s[n_normal:]))


def format_results(res):
    return "  ".join(f"{k}: {np.mean(r):.3f} ({', '.join(f'{x:.3f}' for x in r)})" for k, r in res.items())


def reduce(m, how):
    m = m.reshape(len(m), -1)
    if how == "max":
        return m.max(1).values.numpy()
    k = max(1, m.shape[1] // 100) if how == "top1" else int(how[3:])
    return m.topk(k, 1).values.mean(1).numpy()


def normalise(x, how):
    """Per-image normalisation over locations: x N, H, W, D. center: subtract the image's mean
    feature; norm: also divide by the image's per-channel standard deviation."""
    if not how:
        return x
    m = x.mean((1, 2), keepdim=True)
    x = x - m
    if how == "norm":
        x = x / (x.std((1, 2), keepdim=True) + 1e-3)
    return x


def parse_variant(v):
    """base | shiftR | fit=T1+T2 | tta=T1+T2 | smoothS | cov=shared | eps=E, joined by ':'."""
    opt = {"shift": 0, "fit": ["id"], "tta": ["id"], "sigma": 0.0, "shared": False, "eps": 0.01, "center": None, "nbr": 0}
    for part in v.split(":"):
        if part == "base":
            continue
        if part.startswith("shift"):
            opt["shift"] = int(part[5:])
        elif part.startswith("fit="):
            opt["fit"] = part[4:].split("+")
        elif part.startswith("tta="):
            opt["tta"] = part[4:].split("+")
        elif part.startswith("smooth"):
            opt["sigma"] = float(part[6:])
        elif part == "cov=shared":
            opt["shared"] = True
        elif part.startswith("nbr"):
            opt["nbr"] = int(part[3:])
        elif part in ("center", "norm"):
            opt["center"] = part
        elif part.startswith("eps="):
            opt["eps"] = float(part[4:])
        else:
            raise SystemExit(f"unknown variant part {part}")
    return opt


def main():
    ap = common_args(__doc__)
    ap.add_argument("--proj", type=int, default=128)
    ap.add_argument("--variants", default="base")
    ap.add_argument("--reduce", default="max,top1")
    ap.add_argument("--pool", default="", help="avg|max|avgmax|grid28|grid28max: identity+hflip features pooled so")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    for ds in a.dataset or ["mt", "elpv"]:
        root = os.path.join(DATA, "elpv" if ds == "elpv" else "magnetic_tile")
        normal, abnormal = list_dir(os.path.join(root, "normal")), list_dir(os.path.join(root, "abnormal"))
        if a.pool:
            feats = extract_pool(normal + abnormal, a.size, a.cache, ds, a.proj, a.pool)
        else:
            feats = extract(normal + abnormal, a.size, a.cache, ds, a.proj)
        nn_ = len(normal)
        fits = splits(ds, nn_, normal, seeds, a.fit_fraction)
        for v in a.variants.split(","):
            o = parse_variant(v)
            res = {h: [] for h in a.reduce.split(",")}
            t0 = time.time()
            for fitmask in fits:
                normal_f = feats[:nn_]
                xf = [torch.from_numpy(np.asarray(normal_f[fitmask][:, TRANSFORMS.index(t)], np.float64))
                      for t in o["fit"]]
                xf = [normalise(x, o["center"]) for x in xf]
                model = fit(xf, o["shift"], o["eps"], o["shared"])
                test = np.concatenate([normal_f[~fitmask], feats[nn_:]])
                nt = int((~fitmask).sum())
                maps = 0
                for t in o["tta"]:
                    xt = torch.from_numpy(np.asarray(test[:, TRANSFORMS.index(t)], np.float64))
                    xt = normalise(xt, o["center"])
                    sm = score_maps_nbr(model, xt, o["nbr"]) if o["nbr"] else score_maps(model, xt)
                    maps = maps + unflip_map(sm, t)
                maps = smooth(maps / len(o["tta"]), o["sigma"])
                for h in res:
                    s = reduce(maps, h)
                    res[h].append(auc(s[:nt], s[nt:]))
            line = "  ".join(f"{h} {np.mean(r):.3f} ({', '.join(f'{x:.3f}' for x in r)})" for h, r in res.items())
            print(f"{ds:4s} {v:32s} {line}  ({time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    main()

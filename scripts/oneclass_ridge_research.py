#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One-class research: a global ridge on PaDiM's covariances (docs/ONECLASS.md, "Global ridge").

cov += (eps * trace_l / D + ridge * g) * I at every grid location l, g = trace_l / D averaged
over all locations (the C++ `--ridge`), for ridge 0, 0.02, 0.05, 0.1, 0.2, under both PaDiM
settings of the other scripts (defaults; smoothing 0.7 + shrinkage 0.1). Features: the nsfwjs
MobileNetV2 alone (128-projection) and its concatenation with CenterNet's MobileNetV3 (256),
from the caches of scripts/oneclass_proj_research.py and scripts/oneclass_human_research.py
(see scripts/oneclass_twobackbone_research.py). Magnetic tiles split by tile, or ELPV.

    /usr/bin/python3 scripts/oneclass_ridge_research.py mt 1,2,3      # about 15 min
    /usr/bin/python3 scripts/oneclass_ridge_research.py elpv 1,2,3
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from oneclass_research import DATA, auc, list_dir, splits  # noqa: E402
from oneclass_aug_research import projection, reduce, score_maps, smooth  # noqa: E402
from oneclass_twobackbone_research import centernet_raw, project  # noqa: E402
from oneclass_proj_research import extract_raw  # noqa: E402

torch.set_num_threads(2)
ds = sys.argv[1] if len(sys.argv) > 1 else "mt"
if ds not in ("mt", "elpv"):
    sys.exit("usage: oneclass_ridge_research.py mt|elpv [SEEDS, e.g. 1,2,3]")
try:
    seeds = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "1,2,3").split(",")]
except ValueError:
    sys.exit("oneclass_ridge_research.py: SEEDS must be comma-separated integers")
cache = "/tmp/oneclass_cache"
root = os.path.join(DATA, "magnetic_tile" if ds == "mt" else "elpv")
normal, abnormal = list_dir(os.path.join(root, "normal")), list_dir(os.path.join(root, "abnormal"))
A = extract_raw(normal + abnormal, 224, cache, ds)
B = centernet_raw(cache, 224, ds)
w = projection(A.shape[-1] + B.shape[-1], 256)
cat = project(A, np.ascontiguousarray(w[:, :A.shape[-1]])) + project(B, np.ascontiguousarray(w[:, A.shape[-1]:]))
mn = project(A, projection(A.shape[-1], 128))


def fitr(x, eps, ridge):
    """Per-location mean and inverse covariance with the relative shrinkage and the global ridge."""
    n, H, W, D = x.shape
    f = x.reshape(n, H * W, D).permute(1, 0, 2)
    mu = f.mean(1)
    cov = f.transpose(1, 2) @ f / n - mu[:, :, None] * mu[:, None, :]
    tr = cov.diagonal(dim1=1, dim2=2).sum(1)
    g = (tr / D).mean()
    cov = cov + (eps * tr / D + ridge * g)[:, None, None] * torch.eye(D, dtype=torch.float64)[None]
    return mu.reshape(H * W, D), torch.linalg.inv(cov)


nn_ = len(normal)
res = {}
for seed, fm in zip(seeds, splits(ds, nn_, normal, seeds, 0.7)):
    fi = torch.from_numpy(np.flatnonzero(fm))
    ti = torch.from_numpy(np.concatenate([np.flatnonzero(~fm), np.arange(nn_, len(A))]))
    nt = int((~fm).sum())
    for name, x in (("mn128", mn), ("cat256", cat)):
        for eps, sigma in ((0.01, 0.0), (0.1, 0.7)):
            for ridge in (0, 0.02, 0.05, 0.1, 0.2):
                s = reduce(smooth(score_maps(fitr(x[fi], eps, ridge), x[ti]), sigma), "max")
                res.setdefault((name, eps, sigma, ridge), []).append(auc(s[:nt], s[nt:]))
    print("seed", seed, "done", flush=True)
for k, v in res.items():
    print(f"{ds} {k[0]:7s} eps {k[1]} sigma {k[2]} ridge {k[3]:<5}: {np.mean(v):.3f} ({', '.join(f'{a:.3f}' for a in v)})")

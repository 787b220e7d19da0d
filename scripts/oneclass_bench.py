#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Quality benchmark of `anomalens fit` with the real backbone (not part of the test suites).

For each dataset and seed: split the normal images (magnetic tiles: by physical tile, as
../shared/data/magnetic_tile/SOURCE.md explains; ELPV: by image), fit on the fit part with the
C++ CLI, then `anomalens eval --json` on held-out normal + all abnormal images. Splits are
symlink folders under --work (default /tmp/oneclass_bench); nothing is written to the repo.

    /usr/bin/python3 scripts/oneclass_backbone.py build/backbone.alm
    /usr/bin/python3 scripts/oneclass_bench.py --base build/backbone.alm --seeds 1,2,3 \\
        [--dataset mt --dataset elpv] [-- extra anomalens fit options, e.g. --dim 0]
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from oneclass_research import DATA, list_dir, mt_tiles  # noqa: E402


def make_split(ds, seed, work, fit_fraction):
    root = os.path.join(DATA, "magnetic_tile" if ds == "mt" else "elpv")
    normal, abnormal = list_dir(os.path.join(root, "normal")), list_dir(os.path.join(root, "abnormal"))
    rng = np.random.default_rng(seed)
    if ds == "mt":
        tiles = mt_tiles(normal)
        ut = rng.permutation(np.unique(tiles))
        fit_tiles = set(ut[:int(round(fit_fraction * len(ut)))].tolist())
        fit = np.array([t in fit_tiles for t in tiles])
    else:
        perm = rng.permutation(len(normal))
        fit = np.zeros(len(normal), bool)
        fit[perm[:int(round(fit_fraction * len(normal)))]] = True
    out = os.path.join(work, f"{ds}{seed}")
    for sub in ["fit/normal", "test/normal", "test/abnormal"]:
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    for f, is_fit in list(zip(normal, fit)) + [(f, None) for f in abnormal]:
        sub = "test/abnormal" if is_fit is None else ("fit/normal" if is_fit else "test/normal")
        link = os.path.join(out, sub, os.path.basename(f))
        if not os.path.lexists(link):
            os.symlink(f, link)
    return out


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--dataset", action="append", choices=["elpv", "mt"])
    ap.add_argument("--base", default=os.path.join(REPO, "build", "backbone.alm"))
    ap.add_argument("--cli", default=os.path.join(REPO, "build", "native", "anomalens"))
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--fit-fraction", type=float, default=0.7)
    ap.add_argument("--backend", default="xnnpack")
    ap.add_argument("--work", default="/tmp/oneclass_bench")
    a = ap.parse_args(argv)
    for ds in a.dataset or ["mt", "elpv"]:
        aucs, fprs = [], []
        for seed in [int(s) for s in a.seeds.split(",")]:
            d = make_split(ds, seed, a.work, a.fit_fraction)
            model = os.path.join(a.work, f"{ds}{seed}.alm")
            t0 = time.time()
            fit = subprocess.run([a.cli, "fit", "--quiet", "--backend", a.backend, "--base", a.base, "--normal",
                                  os.path.join(d, "fit", "normal"), "-o", model] + extra,
                                 capture_output=True, text=True)
            if fit.returncode != 0:
                sys.exit(f"fit failed: {fit.stderr}")
            fit_s = time.time() - t0
            ev = subprocess.run([a.cli, "eval", "--json", "--backend", a.backend, "--model", model,
                                 os.path.join(d, "test")], capture_output=True, text=True)
            m = json.loads(ev.stdout)
            c = m["confusion"]
            fpr = c["fp"] / max(1, c["fp"] + c["tn"])
            aucs.append(m["roc_auc"])
            fprs.append(fpr)
            print(f"{ds} seed {seed}: ROC AUC {m['roc_auc']:.4f}  test FPR at threshold {fpr:.3f}  "
                  f"recall {m['recall']:.3f}  fit {fit_s:.0f}s  ({fit.stdout.splitlines()[0]})", flush=True)
        print(f"{ds} {' '.join(extra) or '(defaults)'}: ROC AUC mean {np.mean(aucs):.4f} "
              f"(min {np.min(aucs):.4f}), test FPR mean {np.mean(fprs):.3f}", flush=True)


if __name__ == "__main__":
    main()

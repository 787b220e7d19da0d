#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One-class research: does the solar-cell default model add to the MobileNetV2 detector?

Per magnetic-tile split (by physical tile, scripts/oneclass_bench.py's splits), fits one
detector on the nsfwjs MobileNetV2 backbone and one on models/default.alm with the C++ CLI
(defaults), scores the held-out images with both, and reports the ROC AUC of each and of
log(d_mobilenet) + w * log(d_default) (docs/ONECLASS.md, "Other backbones").

    /usr/bin/python3 scripts/oneclass_backbone.py build/backbone.alm
    /usr/bin/python3 scripts/oneclass_base_fusion_research.py [--seeds 1,2,3] [--weights 0.25,0.5]
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from oneclass_bench import make_split  # noqa: E402
from oneclass_research import auc  # noqa: E402

CLI = os.path.join(REPO, "build", "native", "anomalens")
BASES = {"mobilenet": os.path.join(REPO, "build", "backbone.alm"),
         "default": os.path.join(REPO, "models", "default.alm")}


def run_cli(args):
    r = subprocess.run([CLI] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"anomalens {args[0]} failed: {r.stderr.strip()}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--weights", default="0.25,0.5", help="weights w of the default model's term")
    ap.add_argument("--work", default="/tmp/oneclass_fusion")
    a = ap.parse_args()
    for path in [CLI] + list(BASES.values()):
        if not os.path.exists(path):
            sys.exit(f"oneclass_base_fusion_research.py: {path} missing (see the usage above)")
    weights = [float(w) for w in a.weights.split(",")]
    res = {}
    for seed in [int(s) for s in a.seeds.split(",")]:
        d = make_split("mt", seed, a.work, 0.7)
        dist = {}
        for name, base in BASES.items():
            model = os.path.join(a.work, f"mt{seed}_{name}.alm")
            run_cli(["fit", "--quiet", "--base", base, "--normal", os.path.join(d, "fit", "normal"),
                     "-o", model])
            rows = [json.loads(l) for l in run_cli(["classify", "--json", "--model", model,
                                                     os.path.join(d, "test")]).splitlines()]
            dist[name] = {r["file"]: r["distance"] for r in rows}
        files = sorted(dist["mobilenet"])
        abnormal = np.array([os.sep + "abnormal" + os.sep in f for f in files])
        logd = {k: np.log([v[f] for f in files]) for k, v in dist.items()}
        scores = dict(logd, **{f"mobilenet + {w} x default": logd["mobilenet"] + w * logd["default"]
                               for w in weights})
        for k, s in scores.items():
            res.setdefault(k, []).append(auc(s[~abnormal], s[abnormal]))
    for k, r in res.items():
        print(f"{k}: ROC AUC {np.mean(r):.3f} ({', '.join(f'{v:.3f}' for v in r)})")


if __name__ == "__main__":
    main()

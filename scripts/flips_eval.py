#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Which test-time flips help a trained model? Scores a train.py run's validation and test
images with the C++ CLI for several `test_time_flips` settings of its .alm, picks each
setting's threshold on validation (best accuracy, as train.py does) and prints validation and
test accuracy and ROC AUC. Choose by the validation columns; the test columns are for the
report.

    /usr/bin/python3 scripts/flips_eval.py build/train/mt224_v8 [--flips none none,h none,h,v,hv]

Needs build/native/anomalens. Writes only a temporary copy of the model.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from almtools.alm import read_alm, write_alm  # noqa: E402
from almtools.preprocess import PreprocessError, parse_test_time_flips  # noqa: E402
from train import choose_threshold, metrics_at, roc_auc  # noqa: E402

CLI = os.path.join(REPO, "build", "native", "anomalens")


def scores_with_flips(meta, lines, tensors, flips, files, tmp):
    """P(abnormal) of each file from the CLI, the model's meta set to test_time_flips=flips."""
    m = dict(meta)
    m["test_time_flips"] = flips
    path = os.path.join(tmp, "model.alm")
    write_alm(path, m, lines, tensors)
    r = subprocess.run([CLI, "classify", "--json", "--model", path] + files,
                       capture_output=True, text=True, check=False)
    if r.returncode == 2:  # bad usage or model: nothing was classified
        raise SystemExit(f"anomalens classify failed: {r.stderr.strip()}")
    by_file = {}
    for line in r.stdout.splitlines():
        row = json.loads(line)
        if "error" in row:
            raise SystemExit(f"{row['file']}: {row['error']}")
        by_file[os.path.normpath(row["file"])] = row["score"]
    return np.array([by_file[os.path.normpath(f)] for f in files])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="train.py --out folder (model.alm, split.csv)")
    ap.add_argument("--flips", nargs="+", default=["none", "none,h", "none,v", "none,h,v,hv"])
    a = ap.parse_args()
    if not os.path.exists(CLI):
        raise SystemExit(f"{CLI} missing: ./scripts/build.sh native")
    for name in ("model.alm", "split.csv"):
        if not os.path.isfile(os.path.join(a.run, name)):
            raise SystemExit(f"{a.run}: no {name} (pass a scripts/train.py --out folder)")
    for flips in a.flips:
        try:
            parse_test_time_flips({"test_time_flips": flips})
        except PreprocessError as e:
            raise SystemExit(f"--flips: {e}")
    meta, lines, tensors = read_alm(os.path.join(a.run, "model.alm"))
    with open(os.path.join(a.run, "split.csv")) as f:
        rows = [r for r in csv.DictReader(f) if r["split"] in ("val", "test")]
    files = [r["file"] if os.path.isabs(r["file"]) else os.path.join(REPO, r["file"]) for r in rows]
    labels = np.array([r["label"] == "abnormal" for r in rows], dtype=int)
    parts = {p: np.array([r["split"] == p for r in rows]) for p in ("val", "test")}
    print(f"{'flips':14s} {'val acc':>8s} {'val AUC':>8s} {'threshold':>9s} {'test acc':>9s} {'test AUC':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        for flips in a.flips:
            s = scores_with_flips(meta, lines, tensors, flips, files, tmp)
            yv, sv = labels[parts["val"]], s[parts["val"]]
            yt, st = labels[parts["test"]], s[parts["test"]]
            t = choose_threshold(yv, sv)
            print(f"{flips:14s} {metrics_at(yv, sv, t)['accuracy']:8.4f} {roc_auc(yv, sv):8.4f} "
                  f"{t:9.3f} {metrics_at(yt, st, t)['accuracy']:9.4f} {roc_auc(yt, st):9.4f}")


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: Apache-2.0
"""scripts/train.py: metrics, splits, manifest errors, and a --smoke run end to end
(train -> ONNX -> .alm -> NumPy reference, and `anomalens eval` when the CLI is built).

    /usr/bin/python3 -m unittest discover -s tests/python -p 'test_train*.py'
"""
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

import _paths  # noqa: F401
import train

ELPV = os.path.join(os.path.dirname(_paths.ROOT), "shared", "data", "elpv")
NSFWJS = os.path.join(_paths.ROOT, "node_modules", "nsfwjs", "dist", "models", "mobilenet_v2")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


class MetricsTest(unittest.TestCase):
    def test_auc_hand_computed_with_ties(self):
        # pos scores {0.8, 0.5}, neg {0.5, 0.2}: pairs (0.8>0.5)=1, (0.8>0.2)=1,
        # (0.5=0.5)=0.5, (0.5>0.2)=1 -> 3.5 / 4.
        self.assertAlmostEqual(train.roc_auc([1, 1, 0, 0], [0.8, 0.5, 0.5, 0.2]), 0.875)
        self.assertAlmostEqual(train.roc_auc([1, 0], [0.1, 0.9]), 0.0)
        self.assertAlmostEqual(train.roc_auc([1, 0, 1, 0], [0.3] * 4), 0.5)

    def test_auc_one_class_is_nan(self):
        self.assertTrue(np.isnan(train.roc_auc([1, 1], [0.2, 0.3])))

    def test_metrics_at_threshold(self):
        m = train.metrics_at([1, 1, 0, 0, 0], [0.9, 0.4, 0.6, 0.1, 0.5], 0.5)
        # predicted abnormal: 0.9 (tp), 0.6 (fp), 0.5 (fp: >= threshold)
        self.assertEqual(m["confusion"], {"tp": 1, "fp": 2, "tn": 1, "fn": 1})
        self.assertAlmostEqual(m["accuracy"], 2 / 5)
        self.assertAlmostEqual(m["precision"], 1 / 3)
        self.assertAlmostEqual(m["recall"], 1 / 2)
        self.assertAlmostEqual(m["f1"], 2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))

    def test_threshold_maximises_accuracy(self):
        y = [0, 0, 0, 1, 1]
        s = [0.05, 0.1, 0.2, 0.3, 0.9]
        t = train.choose_threshold(y, s)
        self.assertTrue(0.2 < t <= 0.3)
        self.assertEqual(train.metrics_at(y, s, t)["accuracy"], 1.0)


class SplitTest(unittest.TestCase):
    def items(self):
        return [(f"n{i}.png", 0) for i in range(50)] + [(f"a{i}.png", 1) for i in range(20)]

    def test_stratified_disjoint_deterministic(self):
        a = train.stratified_split(self.items(), 0.2, 0.2, 7)
        b = train.stratified_split(self.items(), 0.2, 0.2, 7)
        c = train.stratified_split(self.items(), 0.2, 0.2, 8)
        self.assertEqual(a, b)
        self.assertNotEqual(a["test"], c["test"])
        sets = [set(a[p]) for p in ("train", "val", "test")]
        self.assertEqual(sum(len(s) for s in sets), 70)
        self.assertEqual(len(sets[0] | sets[1] | sets[2]), 70)
        for part, (nn, na) in [("test", (10, 4)), ("val", (10, 4)), ("train", (30, 12))]:
            self.assertEqual(sum(1 for _, l in a[part] if l == 0), nn, part)
            self.assertEqual(sum(1 for _, l in a[part] if l == 1), na, part)

    def test_csv_manifest_errors(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m.csv")
            with open(p, "w") as f:
                f.write("file,label\nx.png,broken\n")
            with self.assertRaisesRegex(train.TrainError, "line 2: label 'broken'"):
                train.list_csv(p)
            with open(p, "w") as f:
                f.write("name,label\nx.png,normal\n")
            with self.assertRaisesRegex(train.TrainError, "needs columns"):
                train.list_csv(p)
            with open(p, "w") as f:
                f.write("file,label\nmissing.png,normal\n")
            with self.assertRaisesRegex(train.TrainError, "does not exist"):
                train.list_csv(p)

    def test_folder_without_subfolders(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(train.TrainError, "missing subfolder normal/"):
                train.list_folder(d)


@unittest.skipUnless(os.path.isdir(ELPV) and os.path.isdir(NSFWJS),
                     "needs ../shared/data/elpv and node_modules/nsfwjs")
class SmokeRunTest(unittest.TestCase):
    def test_smoke_end_to_end(self):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.time()
            r = subprocess.run([PY, os.path.join(_paths.SCRIPTS, "train.py"), ELPV, "--out", out,
                                "--smoke", "--test-time-flips", "none,h,v,hv"],
                               capture_output=True, text=True, timeout=600)
            took = time.time() - t0
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            self.assertLess(took, 120, "smoke training must stay under 2 minutes")
            for f in ("model.onnx", "model.alm", "log.csv", "log.json", "curves_loss.png",
                      "curves_accuracy.png", "split.csv", "test_scores.csv"):
                self.assertTrue(os.path.getsize(os.path.join(out, f)) > 0, f)
            with open(os.path.join(out, "log.json")) as f:
                res = json.load(f)
            self.assertLess(res["reference_max_abs_dp"], 1e-4)
            meta = res["meta"]
            for k in ("labels", "threshold", "metric.accuracy", "metric.roc_auc", "license",
                      "training_data", "created", "seed", "command", "backbone"):
                self.assertIn(k, meta)
            self.assertEqual(meta["license"].split(" (")[0], "CC BY-NC-SA 4.0")
            from almtools import alm
            m2, _, _ = alm.read_alm(os.path.join(out, "model.alm"))
            self.assertEqual(m2["threshold"], meta["threshold"])
            # The default recipe's flips: recorded for the core, single-pass figures logged.
            self.assertEqual(m2["test_time_flips"], "none,h,v,hv")
            self.assertIn("accuracy", res["without_test_time_flips"]["test"])
            self.assertEqual(m2["channels"], "gray")
            with open(os.path.join(out, "split.csv")) as f:
                rows = list(csv.DictReader(f))
            test = {r["file"] for r in rows if r["split"] == "test"}
            fit = {r["file"] for r in rows if r["split"] != "test"}
            self.assertFalse(test & fit, "test images leaked into train/val")
            if res["cpp_eval"] is not None:  # the C++ CLI is built: same metrics
                self.assertNotIn("error", res["cpp_eval"])
                self.assertEqual(res["cpp_eval"]["n"], res["test"]["n"])
                self.assertAlmostEqual(res["cpp_eval"]["accuracy"], res["test"]["accuracy"],
                                       places=6)
                self.assertAlmostEqual(res["cpp_eval"]["roc_auc"], res["test"]["roc_auc"], places=4)
                # flips_eval.py re-scores the run through the CLI: its four-flip row is the
                # run's own validation and test figures.
                r = subprocess.run([PY, os.path.join(_paths.SCRIPTS, "flips_eval.py"), out,
                                    "--flips", "none,h,v,hv"], capture_output=True, text=True,
                                   timeout=600)
                self.assertEqual(r.returncode, 0, r.stderr[-2000:])
                row = r.stdout.strip().splitlines()[-1].split()
                self.assertEqual(row[0], "none,h,v,hv")
                self.assertAlmostEqual(float(row[1]), res["validation"]["accuracy"], places=3)
                self.assertAlmostEqual(float(row[4]), res["test"]["accuracy"], places=3)
                self.assertAlmostEqual(float(row[5]), res["test"]["roc_auc"], places=3)

    def test_pretrained_offline_fails_clearly(self):
        with tempfile.TemporaryDirectory() as out:
            env = dict(os.environ, TORCH_HOME=out)  # empty cache: forces a download
            r = subprocess.run([PY, os.path.join(_paths.SCRIPTS, "train.py"), ELPV, "--out", out,
                                "--smoke", "--arch", "resnet18", "--pretrained"],
                               capture_output=True, text=True, timeout=600, env=env)
            if r.returncode == 0:
                self.skipTest("online: torchvision weights were downloaded")
            self.assertEqual(r.returncode, 1)
            self.assertIn("--pretrained", r.stderr)
            self.assertIn("internet", r.stderr)
            self.assertNotIn("Traceback", r.stderr)


if __name__ == "__main__":
    unittest.main()

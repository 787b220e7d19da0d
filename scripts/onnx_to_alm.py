#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Converts a PyTorch ONNX export (opset 11-13, batch 1, static NCHW input) to an .alm model.

    onnx_to_alm.py model.onnx out.alm --meta name=cells --meta mean=0.485,0.456,0.406 \
        --meta std=0.229,0.224,0.225 --meta resize=center_crop [--meta-file meta.txt] [--f16]

BatchNormalization (and constant per-channel Mul/Add/Sub/Div) is folded into the preceding
Conv or Gemm, or becomes a depthwise 1x1 Conv; activations are fused into a single-consumer
Conv/Gemm/Add producer. Every unsupported op is named in one error message (exit code 1).
From Python: convert(onnx_path, out_path, meta, f16=False).
"""

import argparse
import math
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from almtools import alm  # noqa: E402
from almtools.reference import blob_shapes  # noqa: E402

SUPPORTED_OPS = {
    "Conv", "BatchNormalization", "Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid",
    "Add", "Sub", "Mul", "Div", "Concat", "MaxPool", "AveragePool", "GlobalAveragePool",
    "ReduceMean", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Gemm", "MatMul", "Softmax",
    "Constant", "Identity", "Dropout", "Shape", "Gather", "Cast", "Pad",
}
ACT_LAYERS = ("Conv", "Gemm", "Add")
FLOAT_MAX = 3.4028234663852886e38
MAX_DIM = 65536


class ConversionError(Exception):
    pass


def _attrs(node):
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _fmt(v):
    return repr(float(v))


class Converter:
    def __init__(self, model):
        import onnx
        from onnx import numpy_helper
        self.graph = model.graph
        self.opset = 13
        for imp in model.opset_import:
            if imp.domain in ("", "ai.onnx"):
                self.opset = imp.version
        self.consts = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        self.shapes = {}     # blob -> ONNX shape tuple (batch first)
        self.alias = {}      # ONNX tensor name -> blob name
        self.producer = {}   # blob -> IR layer dict
        self.layers = []
        self.errors = []
        self.poisoned = set()
        self.consumers = {}
        self.consumer_ops = {}
        for node in self.graph.node:
            for name in node.input:
                if name:
                    self.consumers[name] = self.consumers.get(name, 0) + 1
                    self.consumer_ops.setdefault(name, []).append(node.op_type)
        self.pending_pad = {}  # Pad output -> (input, (top, left, bottom, right)), zero fill
        self.graph_outputs = {o.name for o in self.graph.output}
        self.hardswish_muls = {}  # Mul output -> x of x * HardSigmoid(x)
        self.rank_override = {}  # ONNX name -> shape, for views that keep the blob
        self.onnx = onnx
        self.numpy_helper = numpy_helper

    # ---- helpers -------------------------------------------------------------------------
    def res(self, name):
        while name in self.alias:
            name = self.alias[name]
        return name

    def is_const(self, name):
        return self.res(name) in self.consts

    def const(self, name):
        return self.consts[self.res(name)]

    def fail(self, node, msg):
        self.errors.append(f"{node.op_type} node '{node.name or node.output[0]}': {msg}")
        for o in node.output:
            self.poisoned.add(o)

    @staticmethod
    def alm_shape(shape):
        if len(shape) == 4:
            return tuple(shape[1:])
        if len(shape) == 2:
            return (shape[1], 1, 1)
        raise ConversionError(f"blob of rank {len(shape)} (shape {list(shape)}): need 2 or 4")

    def add_layer(self, ltype, node, inputs, out_name, out_shape, **kw):
        layer = dict(type=ltype, name=node.name or out_name, inputs=[self.res(i) for i in inputs],
                     output=out_name, params=kw.pop("params", {}), w=kw.pop("w", None),
                     b=kw.pop("b", None), act="none", clip=None)
        self.layers.append(layer)
        self.producer[out_name] = layer
        self.shapes[out_name] = tuple(int(d) for d in out_shape)
        return layer

    def single_consumer(self, onnx_name, uses=1):
        return self.consumers.get(onnx_name, 0) == uses and onnx_name not in self.graph_outputs

    def fusable_producer(self, onnx_name, types, uses=1):
        blob = self.res(onnx_name)
        layer = self.producer.get(blob)
        if layer is None or layer["type"] not in types or layer["act"] != "none":
            return None
        if not self.single_consumer(onnx_name, uses):
            return None
        return layer

    # ---- per-channel affine (BN, const Mul/Add), folded when possible -----------------------
    def affine(self, node, x, scale, shift):
        shape = self.onnx_shape(x)
        c = shape[1]
        scale = np.broadcast_to(np.asarray(scale, np.float64).reshape(-1), (c,)).copy()
        shift = np.broadcast_to(np.asarray(shift, np.float64).reshape(-1), (c,)).copy()
        layer = self.fusable_producer(x, ("Conv", "Gemm"))
        out = node.output[0]
        if layer is not None:
            w = layer["w"]
            layer["w"] = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
            b = layer["b"] if layer["b"] is not None else np.zeros(c)
            layer["b"] = b * scale + shift
            self.alias[out] = self.res(x)
            return
        ac = self.alm_shape(shape)
        self.add_layer("Conv", node, [x], out, shape,
                       params=dict(cout=c, k=(1, 1), s=(1, 1), d=(1, 1), p=(0, 0, 0, 0), g=c),
                       w=scale.reshape(c, 1, 1, 1), b=shift)
        assert ac[0] == c

    def channel_const(self, node, value, shape):
        """Returns the constant as a per-channel vector if it broadcasts that way, else None."""
        v = np.asarray(value, np.float64)
        if v.size == 1:
            return v.reshape(1)
        c = shape[1]
        if v.size != c:
            return None
        full = [1] * len(shape)
        full[1] = c
        if v.ndim > len(shape):
            return None
        padded = (1,) * (len(shape) - v.ndim) + v.shape
        return v.reshape(-1) if tuple(padded) == tuple(full) else None

    # ---- activations ------------------------------------------------------------------------
    def activation(self, node, x, act, clip=None, uses=1):
        out = node.output[0]
        blob = self.res(x)
        prev = self.producer.get(blob)
        if (prev is not None and prev["act"] == "relu" and act in ("relu", "relu6")
                and self.single_consumer(x)):
            prev["act"] = act  # Relu then Clip(0,6), as PyTorch exports relu6
            self.alias[out] = blob
            return
        layer = self.fusable_producer(x, ACT_LAYERS, uses)
        if layer is not None:
            layer["act"], layer["clip"] = act, clip
            self.alias[out] = self.res(x)
            return
        l = self.add_layer("Activation", node, [x], out, self.onnx_shape(x))
        l["act"], l["clip"] = act, clip

    # ---- shape-only ops ---------------------------------------------------------------------
    def view(self, node, x, new_shape):
        old = self.onnx_shape(x)
        new_shape = tuple(int(d) for d in new_shape)
        if int(np.prod(new_shape)) != int(np.prod(old)):
            return self.fail(node, f"reshape {list(old)} -> {list(new_shape)} changes the size")
        if len(new_shape) not in (2, 4) or new_shape[0] != 1:
            return self.fail(node, f"result shape {list(new_shape)} is not [1,n] or [1,C,H,W]")
        if self.alm_shape(new_shape) == self.alm_shape(old):
            # Same data and (C,H,W): an alias whose ONNX rank is tracked apart.
            self.alias[node.output[0]] = self.res(x)
            self.rank_override[node.output[0]] = new_shape
            return
        if self.alm_shape(new_shape)[1:] == (1, 1):
            self.add_layer("Flatten", node, [x], node.output[0], new_shape)
            return
        self.fail(node, f"reshape {list(old)} -> {list(new_shape)} is not a flatten")

    def onnx_shape(self, name):
        while True:
            if name in self.rank_override:
                return self.rank_override[name]
            if name not in self.alias:
                return self.shapes[name]
            name = self.alias[name]

    # ---- main ----------------------------------------------------------------------------------
    def run(self):
        unsupported = [f"{n.op_type} (node '{n.name or n.output[0]}')" for n in self.graph.node
                       if n.domain not in ("", "ai.onnx") or n.op_type not in SUPPORTED_OPS]
        if unsupported:
            raise ConversionError("unsupported ONNX ops: " + ", ".join(unsupported))
        self.setup_input()
        self.scan_patterns()
        for node in self.graph.node:
            if any(i in self.poisoned for i in node.input):
                for o in node.output:
                    self.poisoned.add(o)
                continue
            try:
                self.convert_node(node)
            except ConversionError as e:
                self.fail(node, str(e))
        if self.errors:
            raise ConversionError("cannot convert:\n  " + "\n  ".join(self.errors))
        if len(self.graph.output) != 1:
            raise ConversionError(f"graph has {len(self.graph.output)} outputs: need exactly 1")
        out = self.res(self.graph.output[0].name)
        if out not in self.producer or self.producer[out]["type"] == "Input":
            raise ConversionError("graph output is a constant or the input itself")
        self.output_blob = out
        self.prune()

    def setup_input(self):
        inits = set(self.consts)
        inputs = [i for i in self.graph.input if i.name not in inits]
        if len(inputs) != 1:
            raise ConversionError(f"graph has {len(inputs)} inputs: need exactly 1")
        inp = inputs[0]
        dims = inp.type.tensor_type.shape.dim
        if len(dims) != 4:
            raise ConversionError(f"input '{inp.name}' has rank {len(dims)}: need NCHW")
        shape = []
        for i, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value > 0:
                shape.append(d.dim_value)
            elif i == 0:
                shape.append(1)  # dynamic batch: run with batch 1
            else:
                raise ConversionError(f"input '{inp.name}' dim {i} is not static")
        if shape[0] != 1:
            raise ConversionError(f"input '{inp.name}' batch {shape[0]}: need 1")
        self.add_layer("Input", type("N", (), {"name": "input"})(), [], inp.name, shape,
                       params=dict(c=shape[1], h=shape[2], w=shape[3]))

    def scan_patterns(self):
        by_output = {o: n for n in self.graph.node for o in n.output}
        self.skip = set()
        for n in self.graph.node:
            if n.op_type != "Mul" or len(n.input) != 2:
                continue
            for a, b in ((0, 1), (1, 0)):
                hs = by_output.get(n.input[a])
                if hs is None or hs.op_type != "HardSigmoid" or hs.input[0] != n.input[b]:
                    continue
                at = _attrs(hs)
                if (abs(at.get("alpha", 0.2) - 1 / 6) < 1e-6 and abs(at.get("beta", 0.5) - 0.5)
                        < 1e-6 and self.consumers.get(hs.output[0]) == 1
                        and hs.output[0] not in self.graph_outputs):
                    self.hardswish_muls[n.output[0]] = n.input[b]
                    self.skip.add(hs.output[0])
                    break

    def convert_node(self, node):
        op = node.op_type
        at = _attrs(node)
        ins = list(node.input)
        out = node.output[0] if node.output else None
        if out in self.skip:
            return
        if op == "Constant":
            for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
                if key in at:
                    v = at[key]
                    self.consts[out] = (self.numpy_helper.to_array(v) if key == "value"
                                        else np.array(v))
                    return
            raise ConversionError("Constant without a supported value attribute")
        if op in ("Identity", "Dropout"):
            if self.is_const(ins[0]):
                self.consts[out] = self.const(ins[0])
            else:
                self.alias[out] = self.res(ins[0])
            return
        if op == "Shape":
            self.consts[out] = np.array(self.onnx_shape(ins[0]), dtype=np.int64)
            return
        # Constant folding of shape arithmetic.
        if all(self.is_const(i) for i in ins if i) and op in (
                "Gather", "Cast", "Unsqueeze", "Squeeze", "Concat", "Mul", "Add", "Sub", "Div",
                "Reshape", "Flatten"):
            self.fold_const(node, op, at, ins, out)
            return
        if op in ("Gather", "Cast"):
            raise ConversionError(f"{op} on a non-constant tensor")
        for i in ins[:1]:
            if self.is_const(i):
                raise ConversionError("first input is a constant; expected an activation")
        x = ins[0]
        xs = self.onnx_shape(x)

        if op == "Pad":
            self.pad(node, at, ins, xs)
        elif op == "Conv":
            self.conv(node, at, ins, xs)
        elif op == "BatchNormalization":
            gamma, beta, mean, var = (self.const(i).astype(np.float64) for i in ins[1:5])
            scale = gamma / np.sqrt(var + at.get("epsilon", 1e-5))
            if len(xs) != 4 and len(xs) != 2:
                raise ConversionError(f"input rank {len(xs)}")
            self.affine(node, x, scale, beta - mean * scale)
        elif op == "Relu":
            self.activation(node, x, "relu")
        elif op == "Sigmoid":
            self.activation(node, x, "sigmoid")
        elif op == "HardSwish":
            self.activation(node, x, "hardswish")
        elif op == "Clip":
            if self.opset >= 11:
                lo = float(self.const(ins[1])) if len(ins) > 1 and ins[1] else -math.inf
                hi = float(self.const(ins[2])) if len(ins) > 2 and ins[2] else math.inf
            else:
                lo, hi = at.get("min", -math.inf), at.get("max", math.inf)
            if lo == 0 and hi == 6:
                self.activation(node, x, "relu6")
            elif lo == 0 and hi == math.inf:
                self.activation(node, x, "relu")
            else:
                self.activation(node, x, "clip", (max(lo, -FLOAT_MAX), min(hi, FLOAT_MAX)))
        elif op == "HardSigmoid":
            c = xs[1]
            alpha, beta = at.get("alpha", 0.2), at.get("beta", 0.5)
            self.add_layer("Conv", node, [x], out, xs,
                           params=dict(cout=c, k=(1, 1), s=(1, 1), d=(1, 1), p=(0, 0, 0, 0), g=c),
                           w=np.full((c, 1, 1, 1), alpha), b=np.full(c, beta))
            self.producer[out].update(act="clip", clip=(0.0, 1.0))
        elif op in ("Add", "Sub", "Mul", "Div"):
            self.binary(node, op, ins, xs)
        elif op == "Concat":
            axis = at.get("axis", 1)
            if axis < 0:
                axis += len(xs)
            if axis != 1:
                raise ConversionError(f"axis {at.get('axis')}: only channel concat is supported")
            shapes = [self.onnx_shape(i) for i in ins]
            if any(self.is_const(i) for i in ins):
                raise ConversionError("concat of a constant")
            if any(len(s) != len(xs) or s[2:] != xs[2:] for s in shapes):
                raise ConversionError(f"inputs {shapes} differ in H, W")
            oshape = (1, sum(s[1] for s in shapes)) + tuple(xs[2:])
            self.add_layer("Concat", node, ins, out, oshape)
        elif op in ("MaxPool", "AveragePool"):
            self.pool(node, op, at, x, xs)
        elif op == "GlobalAveragePool":
            self.add_layer("GlobalAvgPool", node, [x], out, (1, xs[1], 1, 1))
        elif op == "ReduceMean":
            axes = sorted(a % len(xs) for a in at.get("axes", []))
            if len(xs) != 4 or axes != [2, 3]:
                raise ConversionError(f"ReduceMean over axes {at.get('axes')}: need [2,3]")
            keep = at.get("keepdims", 1)
            self.add_layer("GlobalAvgPool", node, [x], out,
                           (1, xs[1], 1, 1) if keep else (1, xs[1]))
        elif op == "Flatten":
            axis = at.get("axis", 1)
            if axis not in (0, 1):
                raise ConversionError(f"axis {axis}: need 1")
            self.view(node, x, (1, int(np.prod(xs))))
        elif op == "Reshape":
            target = [int(v) for v in self.const(ins[1]).reshape(-1)]
            shape = [xs[i] if v == 0 else v for i, v in enumerate(target)]
            if shape.count(-1) == 1:
                known = int(np.prod([v for v in shape if v != -1]))
                shape[shape.index(-1)] = int(np.prod(xs)) // max(known, 1)
            self.view(node, x, shape)
        elif op in ("Squeeze", "Unsqueeze"):
            axes = at.get("axes")
            if axes is None and len(ins) > 1:
                axes = [int(v) for v in self.const(ins[1]).reshape(-1)]
            shape = list(xs)
            if op == "Squeeze":
                if axes is None:
                    axes = [i for i, d in enumerate(shape) if d == 1 and i != 0]
                axes = [a % len(shape) for a in axes]
                shape = [d for i, d in enumerate(shape) if i not in axes]
            else:
                for a in sorted(a % (len(shape) + len(axes)) for a in axes):
                    shape.insert(a, 1)
            self.view(node, x, shape)
        elif op == "Gemm":
            if at.get("transA", 0):
                raise ConversionError("transA=1")
            if not self.is_const(ins[1]):
                raise ConversionError("weight B is not a constant")
            w = self.const(ins[1]).astype(np.float64)
            if not at.get("transB", 0):
                w = w.T
            w = w * at.get("alpha", 1.0)
            b = None
            if len(ins) > 2 and ins[2]:
                b = np.broadcast_to(self.const(ins[2]).astype(np.float64).reshape(-1),
                                    (w.shape[0],)) * at.get("beta", 1.0)
            self.gemm(node, x, xs, w, b)
        elif op == "MatMul":
            if not self.is_const(ins[1]) or self.const(ins[1]).ndim != 2:
                raise ConversionError("second input is not a constant 2-D matrix")
            if len(xs) != 2:
                raise ConversionError(f"first input has rank {len(xs)}: need [1,k]")
            self.gemm(node, x, xs, self.const(ins[1]).astype(np.float64).T, None)
        elif op == "Softmax":
            axis = at.get("axis", -1 if self.opset >= 13 else 1)
            axis %= len(xs)
            ac = self.alm_shape(xs)
            if axis != 1 or ac[1:] != (1, 1):
                raise ConversionError(f"softmax axis {at.get('axis')} over shape {list(xs)}: "
                                      "need channels of a (C,1,1) blob")
            self.add_layer("Softmax", node, [x], out, xs)
        else:
            raise ConversionError("not handled")

    def fold_const(self, node, op, at, ins, out):
        v = [self.const(i) if i else None for i in ins]
        if op == "Gather":
            r = np.take(v[0], v[1].astype(np.int64), axis=at.get("axis", 0))
        elif op == "Cast":
            r = v[0]
        elif op == "Unsqueeze":
            axes = at.get("axes") or [int(a) for a in v[1].reshape(-1)]
            r = v[0]
            for a in sorted(a % (r.ndim + len(axes)) for a in axes):
                r = np.expand_dims(r, a)
        elif op == "Squeeze":
            axes = at.get("axes") or ([int(a) for a in v[1].reshape(-1)] if len(v) > 1 else None)
            r = np.squeeze(v[0], axis=tuple(axes) if axes else None)
        elif op == "Concat":
            r = np.concatenate(v, axis=at.get("axis", 0))
        elif op == "Reshape":
            r = v[0].reshape([d if d != 0 else v[0].shape[i]
                              for i, d in enumerate(v[1].astype(np.int64))])
        elif op == "Flatten":
            a = at.get("axis", 1)
            r = v[0].reshape(int(np.prod(v[0].shape[:a])), -1)
        else:
            f = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract}.get(op)
            if f is not None:
                r = f(v[0], v[1])
            elif np.issubdtype(v[0].dtype, np.integer):
                r = v[0] // v[1]
            else:
                r = v[0] / v[1]
        self.consts[out] = np.asarray(r)

    def pad(self, node, at, ins, xs):
        mode = at.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads = at.get("pads") if self.opset < 11 else [int(v) for v in self.const(ins[1])]
        value = (at.get("value", 0.0) if self.opset < 11 else
                 float(self.const(ins[2])) if len(ins) > 2 and ins[2] else 0.0)
        if mode != "constant" or value != 0.0:
            raise ConversionError(f"mode={mode} value={value}: only zero constant padding")
        if len(xs) != 4 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
            raise ConversionError(f"pads {pads}: only non-negative H/W padding of NCHW")
        if not any(pads):
            self.alias[node.output[0]] = self.res(ins[0])
            return
        users = self.consumer_ops.get(node.output[0], [])
        if users not in (["Conv"], ["AveragePool"]):
            raise ConversionError(f"zero padding consumed by {users}: must feed one Conv or "
                                  "AveragePool")
        self.pending_pad[node.output[0]] = (ins[0], (pads[2], pads[3], pads[6], pads[7]))
        # The shape seen by the consumer includes the padding.
        self.rank_override[node.output[0]] = (xs[0], xs[1], xs[2] + pads[2] + pads[6],
                                              xs[3] + pads[3] + pads[7])

    def take_pad(self, x, pads):
        """Folds a pending zero Pad feeding this layer into its pads."""
        if x not in self.pending_pad:
            return x, tuple(pads), False
        src, extra = self.pending_pad[x]
        return src, tuple(a + b for a, b in zip(pads, extra)), True

    def conv(self, node, at, ins, xs):
        if at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise ConversionError(f"auto_pad={at['auto_pad']}: re-export with explicit pads")
        if len(xs) != 4:
            raise ConversionError(f"input rank {len(xs)}: need 4")
        if not self.is_const(ins[1]):
            raise ConversionError("weight is not a constant")
        w = self.const(ins[1]).astype(np.float64)
        if w.ndim != 4:
            raise ConversionError(f"weight rank {w.ndim}: only 2-D convolution is supported")
        b = self.const(ins[2]).astype(np.float64) if len(ins) > 2 and ins[2] else None
        k = tuple(at.get("kernel_shape", w.shape[2:]))
        s = tuple(at.get("strides", (1, 1)))
        d = tuple(at.get("dilations", (1, 1)))
        x, pads, _ = self.take_pad(ins[0], at.get("pads", (0, 0, 0, 0)))
        xs = self.onnx_shape(x)
        g = at.get("group", 1)
        cout = w.shape[0]
        if xs[1] != w.shape[1] * g:
            raise ConversionError(f"input has {xs[1]} channels, weight expects {w.shape[1] * g}")
        ho = (xs[2] + pads[0] + pads[2] - d[0] * (k[0] - 1) - 1) // s[0] + 1
        wo = (xs[3] + pads[1] + pads[3] - d[1] * (k[1] - 1) - 1) // s[1] + 1
        if ho < 1 or wo < 1:
            raise ConversionError(f"output size {ho}x{wo} is empty")
        self.add_layer("Conv", node, [x], node.output[0], (1, cout, ho, wo),
                       params=dict(cout=cout, k=k, s=s, d=d, p=pads, g=g), w=w, b=b)

    def pool(self, node, op, at, x, xs):
        if at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise ConversionError(f"auto_pad={at['auto_pad']}: re-export with explicit pads")
        if len(xs) != 4:
            raise ConversionError(f"input rank {len(xs)}: need 4")
        k = tuple(at["kernel_shape"])
        s = tuple(at.get("strides", (1, 1)))
        x, p, padded = self.take_pad(x, at.get("pads", (0, 0, 0, 0)))
        p = list(p)
        xs = self.onnx_shape(x)
        count_pad = bool(at.get("count_include_pad", 0))
        if padded:
            if any(at.get("pads", (0, 0, 0, 0))) and not count_pad:
                raise ConversionError("explicit Pad plus pads with count_include_pad=0")
            count_pad = True  # the explicit zeros are real samples to ONNX
        if any(v != 1 for v in at.get("dilations", (1, 1))):
            raise ConversionError("dilated pooling")
        sizes = []
        for ax in (0, 1):
            n = xs[2 + ax] + p[ax] + p[ax + 2] - k[ax]
            o = n // s[ax] + 1
            if at.get("ceil_mode", 0):
                oc = -(-n // s[ax]) + 1
                # The last window must start inside the input or the leading padding.
                if (oc - 1) * s[ax] >= xs[2 + ax] + p[ax]:
                    oc -= 1
                if oc != o:
                    if op == "AveragePool":
                        raise ConversionError("ceil_mode=1 changes the output size")
                    p[ax + 2] += (oc - 1) * s[ax] + k[ax] - (xs[2 + ax] + p[ax] + p[ax + 2])
                    o = oc
            sizes.append(o)
        params = dict(k=k, s=s, p=tuple(p))
        if op == "AveragePool":
            params["count_pad"] = 1 if count_pad else 0
        self.add_layer("MaxPool" if op == "MaxPool" else "AvgPool", node, [x], node.output[0],
                       (1, xs[1], sizes[0], sizes[1]), params=params)

    def gemm(self, node, x, xs, w, b):
        k = int(np.prod(xs))
        if w.shape[1] != k:
            raise ConversionError(f"weight is [{w.shape[0]}, {w.shape[1]}], input has {k} values")
        self.add_layer("Gemm", node, [x], node.output[0], (1, w.shape[0]),
                       params=dict(n=w.shape[0]), w=w, b=None if b is None else np.array(b))

    def binary(self, node, op, ins, xs):
        out = node.output[0]
        if out in self.hardswish_muls:
            # x feeds both the HardSigmoid and this Mul.
            return self.activation(node, self.hardswish_muls[out], "hardswish", uses=2)
        a, b = ins
        if self.is_const(b):
            v = self.channel_const(node, self.const(b), xs)
            if v is None:
                raise ConversionError(f"constant operand of shape {list(self.const(b).shape)} "
                                      "is not per-channel")
            # A Gemm without bias followed by Add of a constant: MatMul + Add.
            if op == "Add" and len(xs) == 2:
                layer = self.fusable_producer(a, ("Gemm",))
                if layer is not None and layer["b"] is None:
                    layer["b"] = np.broadcast_to(v, (xs[1],)).astype(np.float64)
                    self.alias[out] = self.res(a)
                    return
            if op == "Add":
                return self.affine(node, a, 1.0, v)
            if op == "Sub":
                return self.affine(node, a, 1.0, -v)
            if op == "Mul":
                return self.affine(node, a, v, 0.0)
            return self.affine(node, a, 1.0 / v, 0.0)
        if op in ("Sub", "Div"):
            raise ConversionError(f"{op} of two activations")
        bs = self.onnx_shape(b)
        if op == "Add":
            if self.alm_shape(bs) != self.alm_shape(xs) or len(bs) != len(xs):
                raise ConversionError(f"shapes {list(xs)} and {list(bs)} differ")
            self.add_layer("Add", node, [a, b], out, xs)
            return
        if self.alm_shape(xs) != self.alm_shape(bs):
            if len(xs) == 4 and tuple(xs[2:]) == (1, 1) and len(bs) == 4 and bs[1] == xs[1]:
                a, b, xs, bs = b, a, bs, xs
        if self.alm_shape(bs) == self.alm_shape(xs) or (
                len(bs) == 4 and bs[1] == xs[1] and tuple(bs[2:]) == (1, 1)):
            self.add_layer("Mul", node, [a, b], out, xs)
            return
        raise ConversionError(f"shapes {list(xs)} and {list(bs)}: need equal or (C,1,1)")

    def prune(self):
        needed = {self.output_blob}
        keep = []
        for layer in reversed(self.layers):
            if layer["output"] in needed or layer["type"] == "Input":
                keep.append(layer)
                needed.update(layer["inputs"])
        self.layers = list(reversed(keep))

    # ---- emit ------------------------------------------------------------------------------
    def emit(self):
        blob_names, used = {}, set()

        def unique(raw, used_set, fallback):
            base = re.sub(r"[^A-Za-z0-9_.:/\-]", "_", raw).lstrip("/") or fallback
            name, i = base, 1
            while name in used_set:
                i += 1
                name = f"{base}_{i}"
            used_set.add(name)
            return name

        for layer in self.layers:
            blob_names[layer["output"]] = unique(layer["output"], used, "blob")
        layer_used = set()
        lines, tensors = [], {}
        shapes = {}
        for layer in self.layers:
            lname = unique(layer["name"], layer_used, layer["type"].lower())
            ins = [blob_names[i] for i in layer["inputs"]]
            out = blob_names[layer["output"]]
            shapes[out] = self.alm_shape(self.shapes[layer["output"]])
            kv = []
            p = layer["params"]
            for key, val in p.items():
                kv.append(f"{key}=" + (",".join(str(int(v)) for v in val)
                                       if isinstance(val, tuple) else str(int(val))))
            if layer["w"] is not None:
                tensors[f"{lname}.weight"] = layer["w"]
                kv.append(f"w={lname}.weight")
            if layer["b"] is not None:
                tensors[f"{lname}.bias"] = np.asarray(layer["b"])
                kv.append(f"b={lname}.bias")
            if layer["act"] != "none":
                kv.append(f"act={layer['act']}")
                if layer["act"] == "clip":
                    kv.append("clip=" + ",".join(_fmt(v) for v in layer["clip"]))
            lines.append(" ".join([layer["type"], lname, str(len(ins)), "1"] + ins + [out] + kv))
        return lines, tensors, shapes, blob_names[self.output_blob]


REQUIRED_META = ("name", "labels", "input_size", "channels", "scale", "mean", "std", "resize",
                 "output", "threshold")


def build_meta(user_meta, input_shape, out_shape, ends_softmax, default_name):
    c, h, w = input_shape
    meta = dict(user_meta)
    defaults = {
        "name": default_name,
        "labels": "normal,abnormal",
        "input_size": f"{w}x{h}",
        "channels": "gray" if c == 1 else "rgb",
        "scale": "255",
        "mean": ",".join(["0"] * c),
        "std": ",".join(["1"] * c),
        "resize": "stretch",
        "output": "probabilities" if ends_softmax else ("sigmoid" if out_shape[0] == 1
                                                        else "softmax"),
        "threshold": "0.5",
    }
    ordered = {k: str(meta.pop(k, defaults[k])) for k in REQUIRED_META}
    ordered.update({k: str(v) for k, v in meta.items()})
    if ordered["input_size"] != f"{w}x{h}":
        raise ConversionError(f"meta input_size={ordered['input_size']} but the graph input is "
                              f"{w}x{h} (WxH)")
    if (ordered["channels"] == "gray") != (c == 1) or c not in (1, 3):
        raise ConversionError(f"meta channels={ordered['channels']} but the input has {c} "
                              "channels")
    for key in ("mean", "std"):
        if len(ordered[key].split(",")) != c:
            raise ConversionError(f"meta {key}={ordered[key]}: need {c} values")
    n_labels = len(ordered["labels"].split(","))
    n_out = out_shape[0] * out_shape[1] * out_shape[2]
    expect = 1 if ordered["output"] == "sigmoid" else n_labels
    if n_out != expect:
        raise ConversionError(f"graph outputs {n_out} values but output={ordered['output']} with "
                              f"{n_labels} labels needs {expect}")
    return ordered


def convert(onnx_path, out_path, meta=None, f16=False):
    """Converts onnx_path to out_path. Returns (meta, graph_lines). Raises ConversionError."""
    import onnx
    model = onnx.load(onnx_path)
    conv = Converter(model)
    conv.run()
    lines, tensors, shapes, out_blob = conv.emit()
    check = blob_shapes(lines)
    for blob, shape in shapes.items():
        if check[blob] != shape:
            raise ConversionError(f"internal: blob {blob} shape {check[blob]} != {shape}")
        if any(not 1 <= d <= MAX_DIM for d in shape):
            raise ConversionError(f"blob {blob} shape {shape}: dimensions must be 1..{MAX_DIM}")
    for name, t in tensors.items():
        if not np.all(np.isfinite(t)):
            raise ConversionError(f"tensor {name} has NaN or Inf values")
    input_shape = shapes[lines[0].split()[4]]
    ends_softmax = conv.layers[-1]["type"] == "Softmax"
    name = os.path.splitext(os.path.basename(onnx_path))[0]
    full_meta = build_meta(meta or {}, input_shape, shapes[out_blob], ends_softmax, name)
    alm.write_alm(out_path, full_meta, lines, tensors, "f16" if f16 else "f32")
    return full_meta, lines


def _parse_meta_args(pairs, meta_file):
    meta = {}
    if meta_file:
        with open(meta_file, encoding="utf-8") as f:
            meta.update(alm.parse_meta(f.read()))
    for pair in pairs or []:
        if "=" not in pair:
            raise ConversionError(f"--meta {pair!r}: must be key=value")
        k, v = pair.split("=", 1)
        meta[k] = v
    return meta


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("onnx")
    ap.add_argument("out")
    ap.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--meta-file")
    ap.add_argument("--f16", action="store_true", help="store weights as IEEE half")
    args = ap.parse_args(argv)
    try:
        meta = _parse_meta_args(args.meta, args.meta_file)
        full_meta, lines = convert(args.onnx, args.out, meta, args.f16)
    except (ConversionError, alm.AlmError, OSError) as e:
        print(f"onnx_to_alm: {args.onnx}: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {len(lines)} layers, input {full_meta['input_size']} "
          f"{full_meta['channels']}, output={full_meta['output']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

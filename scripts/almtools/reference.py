# SPDX-License-Identifier: Apache-2.0
"""Slow, obvious NumPy forward pass of an .alm graph, used to check converters and fixtures.

    meta, graph, tensors = read_alm("m.alm")
    y = run_graph(graph, tensors, x_hwc)    # 1-D float64 array: the output blob, NCHW order
    p = p_abnormal(meta, graph, tensors, x_hwc)  # the verdict's score, as the C++ Classifier
"""

import numpy as np

from .alm import parse_layer
from .preprocess import flip_hwc, parse_test_time_flips


def _ints(s, n, default):
    if s is None:
        return list(default)
    v = [int(x) for x in s.split(",")]
    if len(v) == 1 and n > 1:
        v = v * n
    if len(v) != n:
        raise ValueError(f"expected {n} values, got {s!r}")
    return v


def activation(x, params):
    act = params.get("act", "none")
    if act == "none":
        return x
    if act == "relu":
        return np.maximum(x, 0)
    if act == "relu6":
        return np.clip(x, 0, 6)
    if act == "clip":
        lo, hi = (float(v) for v in params["clip"].split(","))
        return np.clip(x, lo, hi)
    if act == "hardswish":
        return x * np.clip(x + 3, 0, 6) / 6
    if act == "sigmoid":
        return 1 / (1 + np.exp(-x))
    raise ValueError(f"unknown act {act!r}")


def _pad(x, p, value):
    t, l, b, r = p
    return np.pad(x, ((0, 0), (t, b), (l, r)), constant_values=value)


def conv(x, w, b, k, s, d, p, g):
    c, _, _ = x.shape
    cout = w.shape[0]
    xp = _pad(x, p, 0.0)
    hp, wp = xp.shape[1:]
    ho = (hp - d[0] * (k[0] - 1) - 1) // s[0] + 1
    wo = (wp - d[1] * (k[1] - 1) - 1) // s[1] + 1
    cin_g, cout_g = c // g, cout // g
    out = np.zeros((cout, ho, wo))
    for gi in range(g):
        xg = xp[gi * cin_g:(gi + 1) * cin_g]
        wg = w[gi * cout_g:(gi + 1) * cout_g].astype(np.float64)
        for ky in range(k[0]):
            for kx in range(k[1]):
                ys, xs = ky * d[0], kx * d[1]
                patch = xg[:, ys:ys + s[0] * (ho - 1) + 1:s[0], xs:xs + s[1] * (wo - 1) + 1:s[1]]
                out[gi * cout_g:(gi + 1) * cout_g] += np.einsum("oi,ihw->ohw", wg[:, :, ky, kx],
                                                                patch)
    if b is not None:
        out += b[:, None, None]
    return out


def pool(x, k, s, p, kind, count_pad=False):
    c, h, w = x.shape
    ho = (h + p[0] + p[2] - k[0]) // s[0] + 1
    wo = (w + p[1] + p[3] - k[1]) // s[1] + 1
    out = np.zeros((c, ho, wo))
    for oy in range(ho):
        for ox in range(wo):
            y0, x0 = oy * s[0] - p[0], ox * s[1] - p[1]
            y1, x1 = y0 + k[0], x0 + k[1]
            cy0, cx0, cy1, cx1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
            win = x[:, cy0:cy1, cx0:cx1]
            if kind == "max":
                out[:, oy, ox] = win.max(axis=(1, 2))
            else:
                if count_pad:
                    # Padding counts, but never beyond the padded extent.
                    py1, px1 = min(y1, h + p[2]), min(x1, w + p[3])
                    n = (py1 - y0) * (px1 - x0)
                else:
                    n = (cy1 - cy0) * (cx1 - cx0)
                out[:, oy, ox] = win.sum(axis=(1, 2)) / n
    return out


def run_graph(graph_lines, tensors, x_hwc):
    """x_hwc: (H, W, C) input. Returns the single unconsumed blob, flattened NCHW, float64."""
    blobs = {}
    consumed = set()
    produced = []
    for line in graph_lines:
        ltype, name, ins, outs, prm = parse_layer(line)
        xs = [blobs[i] for i in ins]
        consumed.update(ins)
        has_w = ltype in ("Conv", "Gemm")
        w = tensors[prm["w"]].astype(np.float64) if has_w and "w" in prm else None
        b = tensors[prm["b"]].astype(np.float64) if has_w and "b" in prm else None
        if ltype == "Input":
            y = np.transpose(np.asarray(x_hwc, dtype=np.float64), (2, 0, 1))
            assert y.shape == (int(prm["c"]), int(prm["h"]), int(prm["w"])), y.shape
        elif ltype == "Conv":
            y = conv(xs[0], w, b, _ints(prm.get("k"), 2, (1, 1)), _ints(prm.get("s"), 2, (1, 1)),
                     _ints(prm.get("d"), 2, (1, 1)), _ints(prm.get("p"), 4, (0, 0, 0, 0)),
                     int(prm.get("g", 1)))
            y = activation(y, prm)
        elif ltype == "Gemm":
            y = w @ xs[0].reshape(-1)
            if b is not None:
                y = y + b
            y = activation(y, prm).reshape(-1, 1, 1)
        elif ltype == "Add":
            y = activation(xs[0] + xs[1], prm)
        elif ltype == "Mul":
            y = xs[0] * xs[1]
        elif ltype == "Concat":
            y = np.concatenate(xs, axis=0)
        elif ltype in ("MaxPool", "AvgPool"):
            k = _ints(prm.get("k"), 2, None)
            s = _ints(prm.get("s"), 2, k)
            p = _ints(prm.get("p"), 4, (0, 0, 0, 0))
            y = pool(xs[0], k, s, p, "max" if ltype == "MaxPool" else "avg",
                     prm.get("count_pad", "0") == "1")
        elif ltype == "GlobalAvgPool":
            y = xs[0].mean(axis=(1, 2), keepdims=True)
        elif ltype == "Flatten":
            y = xs[0].reshape(-1, 1, 1)
        elif ltype == "Activation":
            y = activation(xs[0], prm)
        elif ltype == "Softmax":
            v = xs[0].reshape(-1)
            e = np.exp(v - v.max())
            y = (e / e.sum()).reshape(-1, 1, 1)
        else:
            raise ValueError(f"layer {name}: unknown type {ltype}")
        blobs[outs[0]] = y
        produced.append(outs[0])
    outputs = [b for b in produced if b not in consumed]
    if len(outputs) != 1:
        raise ValueError(f"graph has {len(outputs)} unconsumed blobs: {outputs}")
    return blobs[outputs[0]].reshape(-1)


def score_from_output(meta, out):
    """P(abnormal) from the graph output, per meta `output` (softmax, probabilities, sigmoid)."""
    kind = meta.get("output", "softmax")
    if kind == "softmax":
        e = np.exp(out - out.max())
        return float((e / e.sum())[1])
    if kind == "probabilities":
        return float(out[1])
    if kind == "sigmoid":
        return float(1 / (1 + np.exp(-out[0])))
    raise ValueError(f"meta output={kind!r}: no supervised score")


def p_abnormal(meta, graph_lines, tensors, x_hwc):
    """The Classifier's score: mean P(abnormal) over the meta's test-time flips of x_hwc."""
    flips = parse_test_time_flips(meta)
    return float(np.mean([score_from_output(meta, run_graph(graph_lines, tensors,
                                                              np.ascontiguousarray(flip_hwc(x_hwc, f))))
                          for f in flips]))


def blob_shapes(graph_lines, tensors=None):
    """Returns {blob: (C, H, W)} by running shape rules only."""
    shapes = {}
    for line in graph_lines:
        ltype, name, ins, outs, prm = parse_layer(line)
        s = [shapes[i] for i in ins]
        if ltype == "Input":
            o = (int(prm["c"]), int(prm["h"]), int(prm["w"]))
        elif ltype in ("Conv", "MaxPool", "AvgPool"):
            k = _ints(prm.get("k"), 2, (1, 1))
            st = _ints(prm.get("s"), 2, (1, 1) if ltype == "Conv" else k)
            d = _ints(prm.get("d"), 2, (1, 1))
            p = _ints(prm.get("p"), 4, (0, 0, 0, 0))
            c = int(prm["cout"]) if ltype == "Conv" else s[0][0]
            o = (c, (s[0][1] + p[0] + p[2] - d[0] * (k[0] - 1) - 1) // st[0] + 1,
                 (s[0][2] + p[1] + p[3] - d[1] * (k[1] - 1) - 1) // st[1] + 1)
        elif ltype == "Gemm":
            o = (int(prm["n"]), 1, 1)
        elif ltype in ("Add", "Mul", "Activation", "Softmax"):
            o = s[0]
        elif ltype == "Concat":
            o = (sum(x[0] for x in s), s[0][1], s[0][2])
        elif ltype == "GlobalAvgPool":
            o = (s[0][0], 1, 1)
        elif ltype == "Flatten":
            o = (s[0][0] * s[0][1] * s[0][2], 1, 1)
        else:
            raise ValueError(f"layer {name}: unknown type {ltype}")
        shapes[outs[0]] = o
    return shapes

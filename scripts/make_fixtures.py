#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes small deterministic .alm fixtures for the C++/JS loaders and engines (NumPy only).

    make_fixtures.py OUTDIR

OUTDIR/tiny.alm, allops.alm, allops_f16.alm: valid models. For each, <name>.input.f32 (raw
little-endian HWC float32 input) and <name>.output.txt (the graph output computed by the NumPy
reference in almtools/reference.py, 9 significant digits, one value per line).
OUTDIR/bad/*.alm with OUTDIR/bad/manifest.txt lines `file expected_code`.
"""

import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from almtools import alm  # noqa: E402
from almtools.reference import blob_shapes, run_graph  # noqa: E402


def base_meta(name, w, h, channels, **extra):
    nc = 1 if channels == "gray" else 3
    meta = {
        "name": name, "labels": "normal,abnormal", "input_size": f"{w}x{h}",
        "channels": channels, "scale": "255",
        "mean": ",".join(["0.5"] * nc) if nc == 1 else "0.485,0.456,0.406",
        "std": "0.25" if nc == 1 else "0.229,0.224,0.225",
        "resize": "stretch", "output": "softmax", "threshold": "0.5",
    }
    meta.update(extra)
    return meta


class Builder:
    """Accumulates graph lines and tensors with seeded random weights."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.lines = []
        self.tensors = {}

    def add(self, ltype, name, ins, out, **params):
        kv = [f"{k}={v}" for k, v in params.items()]
        self.lines.append(" ".join([ltype, name, str(len(ins)), "1"] + list(ins) + [out] + kv))
        return out

    def weights(self, name, shape, fan_in, bias=True, gain=1.0):
        w = self.rng.normal(0, gain * np.sqrt(2.0 / fan_in), shape).astype(np.float32)
        self.tensors[f"{name}.weight"] = w
        params = {"w": f"{name}.weight"}
        if bias:
            self.tensors[f"{name}.bias"] = self.rng.normal(0, 0.1, shape[0]).astype(np.float32)
            params["b"] = f"{name}.bias"
        return params

    def conv(self, name, x, cin, cout, k, s=(1, 1), d=(1, 1), p=(0, 0, 0, 0), g=1, bias=True,
             **act):
        params = dict(cout=cout, k=f"{k[0]},{k[1]}", s=f"{s[0]},{s[1]}", d=f"{d[0]},{d[1]}",
                      p=",".join(map(str, p)), g=g)
        params.update(self.weights(name, (cout, cin // g, k[0], k[1]), cin // g * k[0] * k[1],
                                   bias))
        params.update(act)
        return self.add("Conv", name, [x], name, **params)

    def gemm(self, name, x, k, n, bias=True, gain=1.0, **act):
        params = dict(n=n)
        params.update(self.weights(name, (n, k), k, bias, gain))
        params.update(act)
        return self.add("Gemm", name, [x], name, **params)


def tiny():
    b = Builder(1)
    b.add("Input", "input", [], "data", c=1, h=16, w=16)
    b.conv("conv1", "data", 1, 4, (3, 3), s=(2, 2), p=(1, 1, 1, 1), act="relu")   # 4x8x8
    b.add("MaxPool", "pool1", ["conv1"], "pool1", k="2,2", s="2,2")                # 4x4x4
    b.conv("conv2", "pool1", 4, 6, (3, 3), p=(1, 1, 1, 1), act="relu")            # 6x4x4
    b.add("GlobalAvgPool", "gap", ["conv2"], "gap")
    b.gemm("fc", "gap", 6, 2)
    return base_meta("tiny", 16, 16, "gray"), b.lines, b.tensors


def allops():
    b = Builder(2)
    b.add("Input", "input", [], "data", c=3, h=19, w=23)
    # Stride 2, asymmetric padding, no bias: 8x10x11.
    b.conv("stem", "data", 3, 8, (3, 3), s=(2, 2), p=(1, 0, 1, 1), bias=False, act="relu")
    # Grouped (not depthwise) 3x3, hardswish.
    b.conv("group", "stem", 8, 8, (3, 3), p=(1, 1, 1, 1), g=2, act="hardswish")
    # Depthwise, dilation 2, relu6.
    b.conv("dw", "group", 8, 8, (3, 3), d=(2, 2), p=(2, 2, 2, 2), g=8, act="relu6")
    # Squeeze-excite: GlobalAvgPool -> 1x1 -> relu -> 1x1 -> sigmoid -> channel-wise Mul.
    b.add("GlobalAvgPool", "se_pool", ["dw"], "se_pool")
    b.conv("se_reduce", "se_pool", 8, 4, (1, 1), act="relu")
    b.conv("se_expand", "se_reduce", 4, 8, (1, 1), act="sigmoid")
    b.add("Mul", "se_scale", ["dw", "se_expand"], "se_scale")
    b.add("Add", "residual", ["se_scale", "group"], "residual", act="clip", clip="-1.5,3")
    # Non-square kernel: 6x10x11.
    b.conv("pw", "residual", 8, 6, (1, 3), p=(0, 1, 0, 1), act="none")
    b.add("Mul", "gate", ["pw", "pw"], "gate")                       # same-shape Mul
    b.add("Concat", "cat", ["residual", "gate", "pw"], "cat")        # 20x10x11
    b.add("Activation", "act_hs", ["cat"], "act_hs", act="hardswish")
    b.add("Activation", "act_sig", ["act_hs"], "act_sig", act="sigmoid")
    b.add("Activation", "act_clip", ["act_sig"], "act_clip", act="clip", clip="0.1,0.9")
    b.add("Activation", "act_relu6", ["act_clip"], "act_relu6", act="relu6")
    b.add("Activation", "act_relu", ["act_relu6"], "act_relu", act="relu")
    b.add("Activation", "act_none", ["cat"], "act_none", act="none")
    b.add("Add", "mix", ["act_relu", "act_none"], "mix")
    # Max pool with padding: 20x5x6.
    b.add("MaxPool", "maxpool", ["mix"], "maxpool", k="3,3", s="2,2", p="1,1,1,1")
    # Avg pool count_pad=0 with asymmetric padding: 20x5x6.
    b.add("AvgPool", "avgpool0", ["maxpool"], "avgpool0", k="2,2", s="1,1", p="0,0,1,1",
          count_pad=0)
    # Avg pool count_pad=1, stride != kernel: 20x3x3.
    b.add("AvgPool", "avgpool1", ["avgpool0"], "avgpool1", k="3,3", s="2,2", p="1,1,1,1",
          count_pad=1)
    b.add("Flatten", "flatten", ["avgpool1"], "flatten")             # 180x1x1
    b.gemm("fc1", "flatten", 180, 10, act="relu")
    b.gemm("fc2", "fc1", 10, 2, bias=False, gain=0.3)
    b.add("Softmax", "prob", ["fc2"], "prob")
    meta = base_meta("allops", 23, 19, "rgb", resize="center_crop", output="probabilities",
                     description="every layer type and activation, awkward sizes")
    return meta, b.lines, b.tensors


def write_valid(outdir, name, meta, lines, tensors, dtype, seed):
    path = os.path.join(outdir, f"{name}.alm")
    alm.write_alm(path, meta, lines, tensors, dtype)
    _, glines, gtensors = alm.read_alm(path)  # f16 storage: use the widened weights
    c, h, w = blob_shapes(glines)[lines[0].split()[4]]
    x = np.random.default_rng(seed).uniform(-2, 2, (h, w, c)).astype(np.float32)
    y = run_graph(glines, gtensors, x)
    with open(os.path.join(outdir, f"{name}.input.f32"), "wb") as f:
        f.write(x.astype("<f4").tobytes())
    with open(os.path.join(outdir, f"{name}.output.txt"), "w") as f:
        f.write("".join(f"{v:.9g}\n" for v in y))
    return path


def section_bytes(meta, lines, tensors_text, weights):
    return alm.pack_sections([
        ("meta", alm.meta_text(meta).encode()),
        ("graph", alm.graph_text(lines).encode()),
        ("tensors", tensors_text.encode()),
        ("weights", weights),
    ])


def bad_files():
    """Returns a list of (filename, bytes, expected_code)."""
    meta, lines, tensors = tiny()
    good = alm.alm_bytes(meta, lines, tensors)
    table, weights = alm.tensor_table(tensors)
    out = []

    def add(name, data, code="invalid_model"):
        out.append((name, bytes(data), code))

    def graph_variant(name, new_lines, new_tensors=None, code="invalid_model", new_meta=None):
        add(name, alm.alm_bytes(new_meta or meta, new_lines,
                                tensors if new_tensors is None else new_tensors), code)

    # Container.
    add("truncated_header.alm", good[:10])
    add("truncated_table.alm", good[:16 + 32 * 2 + 5])
    add("truncated_meta.alm", good[:16 + 32 * 4 + 20])
    add("truncated_weights.alm", good[:len(good) - 100])
    add("empty.alm", b"")
    add("bad_magic.alm", b"ALM2" + good[4:])
    add("version99.alm", good[:4] + struct.pack("<I", 99) + good[8:], "unsupported")
    add("flags_nonzero.alm", good[:12] + struct.pack("<I", 1) + good[16:])
    add("section_count_zero.alm", good[:8] + struct.pack("<I", 0) + good[12:])
    add("section_count_17.alm", good[:8] + struct.pack("<I", 17) + good[12:])

    def patch_entry(data, index, offset=None, size=None):
        d = bytearray(data)
        base = 16 + 32 * index + 16
        o, s = struct.unpack_from("<QQ", d, base)
        struct.pack_into("<QQ", d, base, o if offset is None else offset,
                         s if size is None else size)
        return d

    add("section_past_end.alm", patch_entry(good, 3, size=len(weights) + 64))
    add("section_offset_huge.alm", patch_entry(good, 3, offset=2 ** 63))
    add("section_size_wraps.alm", patch_entry(good, 3, size=2 ** 64 - 16))
    meta_off = struct.unpack_from("<Q", good, 16 + 16)[0]
    add("sections_overlap.alm", patch_entry(good, 1, offset=meta_off))
    add("section_over_header.alm", patch_entry(good, 0, offset=8))
    add("missing_graph_section.alm", alm.pack_sections([
        ("meta", alm.meta_text(meta).encode()), ("tensors", table.encode()),
        ("weights", weights)]))

    # Tensor table.
    first = table.split("\n")[0].split()
    rest = "\n".join(table.split("\n")[1:])
    add("tensor_offset_past_end.alm", section_bytes(
        meta, lines, f"{first[0]} {first[1]} {first[2]} {len(weights) + 64}\n" + rest, weights))
    add("tensor_overruns_section.alm", section_bytes(
        meta, lines, f"{first[0]} {first[1]} {first[2]} {len(weights) - 16}\n" + rest, weights))
    add("tensor_misaligned.alm", section_bytes(
        meta, lines, f"{first[0]} {first[1]} {first[2]} 8\n" + rest, weights))
    add("tensor_missing.alm", section_bytes(meta, lines, rest, weights))

    # Shapes and values.
    bad = dict(tensors)
    bad["conv1.weight"] = np.zeros((4, 1, 3, 2), np.float32)
    graph_variant("conv_weight_shape.alm", lines, bad)
    bad = dict(tensors)
    bad["fc.weight"] = np.zeros((2, 5), np.float32)
    graph_variant("gemm_k_mismatch.alm", lines, bad)
    bad = dict(tensors)
    bad["fc.bias"] = np.zeros(3, np.float32)
    graph_variant("bias_size.alm", lines, bad)
    add_lines = lines[:-1] + ["Add add 2 1 conv1 conv2 sum", "GlobalAvgPool gap2 1 1 sum gap2",
                              lines[-1].replace(" gap fc ", " gap2 fc ")]
    add_lines.remove(lines[4])
    graph_variant("add_shape_mismatch.alm", add_lines)
    cat_lines = [lines[0], lines[1], "Concat cat 2 1 data conv1 cat",
                 "GlobalAvgPool gap 1 1 cat gap", "Gemm fc 1 1 gap fc n=2 w=fc.weight"]
    graph_variant("concat_hw_mismatch.alm", cat_lines,
                  pick(tensors, "conv1", fc=np.zeros((2, 5), np.float32)))
    graph_variant("absurd_dimension.alm",
                  [lines[0].replace("h=16", "h=1000000")] + lines[1:],
                  new_meta=dict(meta, input_size="16x1000000"))
    graph_variant("input_meta_mismatch.alm", lines, new_meta=dict(meta, input_size="16x15"))
    graph_variant("input_channels_mismatch.alm", lines,
                  new_meta=dict(meta, channels="rgb", mean="0,0,0", std="1,1,1"))
    bad = dict(tensors)
    bad["conv2.weight"] = tensors["conv2.weight"].copy()
    bad["conv2.weight"][1, 2, 0, 1] = np.nan
    graph_variant("nan_weight.alm", lines, bad)
    bad = dict(tensors)
    bad["fc.bias"] = np.array([0.0, np.inf], np.float32)
    graph_variant("inf_weight.alm", lines, bad)
    graph_variant("zero_kernel.alm", [l.replace("k=2,2 s=2,2", "k=0,0 s=1,1") for l in lines])
    graph_variant("zero_stride.alm", [l.replace("s=2,2 d=", "s=0,2 d=") for l in lines])

    # Graph structure.
    graph_variant("unknown_layer.alm",
                  lines[:3] + ["Frobnicate frob 1 1 pool1 frob"] +
                  [lines[3].replace(" pool1 ", " frob ")] + lines[4:], code="unsupported")
    graph_variant("unknown_activation.alm", [l.replace("act=relu", "act=gelu", 1) if
                                             l.startswith("Conv conv2") else l for l in lines],
                  code="unsupported")
    for key in ("labels", "threshold", "input_size"):
        graph_variant(f"missing_meta_{key}.alm", lines,
                      new_meta={k: v for k, v in meta.items() if k != key})
    add("duplicate_meta_key.alm", section_bytes_raw_meta(
        alm.meta_text(meta) + "threshold=0.7\n", lines, table, weights))
    graph_variant("bad_threshold.alm", lines, new_meta=dict(meta, threshold="abc"))
    graph_variant("input_never_produced.alm",
                  [l.replace("Conv conv2 1 1 pool1", "Conv conv2 1 1 ghost") for l in lines])
    graph_variant("duplicate_blob.alm",
                  [l.replace("pool1 k=", "conv1 k=") if l.startswith("MaxPool") else
                   l.replace(" pool1 conv2 ", " conv1 conv2 ") for l in lines])
    graph_variant("two_outputs.alm",
                  lines + ["Activation side 1 1 conv2 side act=relu"])
    graph_variant("first_not_input.alm", lines[1:2] + lines[:1] + lines[2:])
    graph_variant("cycle.alm", [lines[0], "Add a 2 1 data b a", "Add b 2 1 a data b",
                                "GlobalAvgPool gap 1 1 b gap",
                                "Gemm fc 1 1 gap fc n=2 w=fc.weight"],
                  {"fc.weight": np.ones((2, 1), np.float32)})
    graph_variant("wrong_input_count.alm",
                  [l.replace("Conv conv2 1 1 pool1", "Conv conv2 2 1 pool1 conv1") for l in lines])
    graph_variant("bad_number.alm", [l.replace("cout=6", "cout=6x") for l in lines])
    graph_variant("missing_weight_tensor.alm",
                  [l.replace("w=conv2.weight", "w=nope.weight") for l in lines])
    graph_variant("softmax_not_vector.alm",
                  lines[:3] + ["Softmax sm 1 1 pool1 sm", lines[3].replace(" pool1 ", " sm ")] +
                  lines[4:])
    graph_variant("groups_not_dividing.alm",
                  [l.replace("cout=6", "cout=6").replace(" g=1 w=conv2", " g=3 w=conv2")
                   for l in lines])
    return out


def pick(tensors, *layers, **weights):
    """The tensors of the named layers plus name=weight overrides (as `<name>.weight`)."""
    out = {k: v for k, v in tensors.items() if k.split(".")[0] in layers}
    out.update({f"{k}.weight": v for k, v in weights.items()})
    return out


def section_bytes_raw_meta(meta_text, lines, table, weights):
    return alm.pack_sections([
        ("meta", meta_text.encode()), ("graph", alm.graph_text(lines).encode()),
        ("tensors", table.encode()), ("weights", weights)])


def main(argv):
    if len(argv) != 2:
        print("usage: make_fixtures.py OUTDIR", file=sys.stderr)
        return 2
    outdir = argv[1]
    os.makedirs(os.path.join(outdir, "bad"), exist_ok=True)
    write_valid(outdir, "tiny", *tiny(), "f32", 11)
    write_valid(outdir, "allops", *allops(), "f32", 12)
    write_valid(outdir, "allops_f16", *allops(), "f16", 12)
    manifest = []
    for name, data, code in bad_files():
        with open(os.path.join(outdir, "bad", name), "wb") as f:
            f.write(data)
        manifest.append(f"{name} {code}\n")
    with open(os.path.join(outdir, "bad", "manifest.txt"), "w") as f:
        f.writelines(manifest)
    print(f"wrote 3 models and {len(manifest)} bad files to {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

# SPDX-License-Identifier: Apache-2.0
"""Keras-exact torch building blocks, and a Keras MobileNetV2 backbone built from them.

Keras differs from torch in two places that change numbers:
- 'same' padding at stride 2 pads (for k=3) 0 on top/left and 1 on bottom/right, while torch
  pads symmetrically. Keras's own MobileNetV2 inserts explicit ZeroPadding2D((0,1),(0,1))
  layers for this; we keep them as `KerasSamePad` (an asymmetric nn.ZeroPad2d).
- BatchNormalization uses epsilon 1e-3 (torch default 1e-5).

`KerasMobileNetV2(last_block=13)` is the feature extractor used by train.py. Layer names
follow the Keras names (Conv1, bn_Conv1, block_3_expand, ...) so that weights imported from a
TF.js/Keras model by `tfjs_import.py` load with `load_state_dict` directly.

    net = KerasMobileNetV2(last_block=13)
    net.load_state_dict(tfjs_import.keras_state_dict("path/to/model"), strict=False)
    feats = net(x)            # x: N,3,H,W in [0,1]; returns the block_13 features
"""

import torch
from torch import nn

# (expansion t, output channels c, stride s) for block index 0..16 (0 = "expanded_conv").
MBV2_BLOCKS = [
    (1, 16, 1),
    (6, 24, 2), (6, 24, 1),
    (6, 32, 2), (6, 32, 1), (6, 32, 1),
    (6, 64, 2), (6, 64, 1), (6, 64, 1), (6, 64, 1),
    (6, 96, 1), (6, 96, 1), (6, 96, 1),
    (6, 160, 2), (6, 160, 1), (6, 160, 1),
    (6, 320, 1),
]
KERAS_BN_EPS = 1e-3


def same_pads(in_size, k, s, d=1):
    """TensorFlow 'same' padding (before, after) for one axis."""
    eff = (k - 1) * d + 1
    out = -(-in_size // s)
    total = max((out - 1) * s + eff - in_size, 0)
    return total // 2, total - total // 2


class _OnnxPad(torch.autograd.Function):
    """Zero padding that exports as one ONNX `Pad` with constant pads (torch 1.13 otherwise
    emits a ConstantOfShape/Slice/Transpose subgraph that converters cannot read)."""

    @staticmethod
    def forward(ctx, x, pads):
        return nn.functional.pad(x, pads)

    @staticmethod
    def symbolic(g, x, pads):
        l, r, t, b = pads
        p = g.op("Constant", value_t=torch.tensor([0, 0, t, l, 0, 0, b, r], dtype=torch.int64))
        return g.op("Pad", x, p, mode_s="constant")


class ZeroPad(nn.Module):
    """nn.ZeroPad2d((left, right, top, bottom)) with a clean ONNX export."""

    def __init__(self, pads):
        super().__init__()
        self.pads = (pads,) * 4 if isinstance(pads, int) else tuple(int(v) for v in pads)

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            return _OnnxPad.apply(x, self.pads)
        return nn.functional.pad(x, self.pads)


class KerasSamePad(nn.Module):
    """Pads like TensorFlow 'same' for a given kernel/stride, computed per input size."""

    def __init__(self, k, s, d=1):
        super().__init__()
        self.k, self.s, self.d = k, s, d

    def forward(self, x):
        # int(): fixed sizes, so an ONNX export holds constant pads.
        t, b = same_pads(int(x.shape[2]), self.k, self.s, self.d)
        l, r = same_pads(int(x.shape[3]), self.k, self.s, self.d)
        if t == b == l == r == 0:
            return x
        if torch.onnx.is_in_onnx_export():
            return _OnnxPad.apply(x, (l, r, t, b))
        return nn.functional.pad(x, (l, r, t, b))


def bn(c):
    # torch default momentum (0.1): Keras's 0.99 (= 0.01 here) makes the running statistics lag
    # far behind fine-tuned weights on small data sets.
    return nn.BatchNorm2d(c, eps=KERAS_BN_EPS, momentum=0.1)


class InvertedResidual(nn.Module):
    """Keras MobileNetV2 block (expand 1x1, [pad], depthwise 3x3, project 1x1, residual)."""

    def __init__(self, cin, t, cout, stride):
        super().__init__()
        hidden = cin * t
        self.has_expand = t != 1
        if self.has_expand:
            self.expand = nn.Conv2d(cin, hidden, 1, bias=False)
            self.expand_BN = bn(hidden)
        # Keras pads explicitly ((0,1),(0,1)) before stride-2 depthwise convs, then 'valid';
        # at stride 1 it uses 'same' (symmetric 1 for k=3).
        self.pad = ZeroPad((0, 1, 0, 1)) if stride == 2 else ZeroPad(1)
        self.depthwise = nn.Conv2d(hidden, hidden, 3, stride, 0, groups=hidden, bias=False)
        self.depthwise_BN = bn(hidden)
        self.project = nn.Conv2d(hidden, cout, 1, bias=False)
        self.project_BN = bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = x
        if self.has_expand:
            y = nn.functional.relu6(self.expand_BN(self.expand(y)))
        y = nn.functional.relu6(self.depthwise_BN(self.depthwise(self.pad(y))))
        y = self.project_BN(self.project(y))
        return x + y if self.residual else y


class KerasMobileNetV2(nn.Module):
    """MobileNetV2 (alpha 1.0) with Keras layer names, truncated after `last_block` (0..16).

    `last_block=16` plus `with_top_conv=True` gives the full feature extractor (Conv_1, 1280).
    Input: N,3,H,W. Output: the feature map of the last kept block.
    """

    def __init__(self, last_block=13, with_top_conv=False):
        super().__init__()
        if not 0 <= last_block <= 16:
            raise ValueError(f"last_block={last_block}: must be in 0..16")
        self.last_block = last_block
        self.Conv1_pad = ZeroPad((0, 1, 0, 1))
        self.Conv1 = nn.Conv2d(3, 32, 3, 2, 0, bias=False)
        self.bn_Conv1 = bn(32)
        self.blocks = nn.ModuleDict()
        cin = 32
        for i in range(last_block + 1):
            t, c, s = MBV2_BLOCKS[i]
            self.blocks[block_name(i)] = InvertedResidual(cin, t, c, s)
            cin = c
        self.with_top_conv = with_top_conv
        if with_top_conv:
            self.Conv_1 = nn.Conv2d(cin, 1280, 1, bias=False)
            self.Conv_1_bn = bn(1280)
            cin = 1280
        self.out_channels = cin

    def forward(self, x, taps=None):
        """Returns the last feature map, or with `taps` (block indices) a list of their
        outputs in the order given."""
        x = nn.functional.relu6(self.bn_Conv1(self.Conv1(self.Conv1_pad(x))))
        outs = {}
        for i, blk in enumerate(self.blocks.values()):
            x = blk(x)
            outs[i] = x
        if self.with_top_conv:
            x = nn.functional.relu6(self.Conv_1_bn(self.Conv_1(x)))
        if taps is None:
            return x
        return [outs[i] for i in taps]

    def to_gray_input(self):
        """Replace Conv1 (3 input channels) by its 1-channel equivalent for gray images
        replicated to RGB: the weights are summed over the input channels."""
        w = self.Conv1.weight.detach().sum(dim=1, keepdim=True)
        self.Conv1 = nn.Conv2d(1, w.shape[0], 3, 2, 0, bias=False)
        with torch.no_grad():
            self.Conv1.weight.copy_(w)
        return self


def block_name(i):
    return "expanded_conv" if i == 0 else f"block_{i}"


def keras_to_module_key(keras_name):
    """Map a Keras weight name to a KerasMobileNetV2 state_dict key, or None if not ours.

    Keras: 'block_3_expand_BN/moving_mean' -> 'blocks.block_3.expand_BN.running_mean'.
    """
    layer, _, var = keras_name.partition("/")
    var = {"kernel": "weight", "depthwise_kernel": "weight", "gamma": "weight",
           "beta": "bias", "moving_mean": "running_mean",
           "moving_variance": "running_var", "bias": "bias"}.get(var)
    if var is None:
        return None
    if layer in ("Conv1", "bn_Conv1", "Conv_1", "Conv_1_bn"):
        return f"{layer}.{var}"
    for prefix in ["expanded_conv"] + [f"block_{i}" for i in range(16, 0, -1)]:
        if layer.startswith(prefix + "_"):
            part = layer[len(prefix) + 1:]
            if part in ("expand", "expand_BN", "depthwise", "depthwise_BN", "project",
                        "project_BN"):
                return f"blocks.{prefix}.{part}.{var}"
    return None


def keras_weight_to_torch(keras_name, arr):
    """Keras layouts -> torch: conv HWIO -> OIHW, depthwise HWC1 -> C1HW, dense IO -> OI."""
    t = torch.from_numpy(arr.copy())
    if arr.ndim == 4:
        if keras_name.endswith("depthwise_kernel"):
            return t.permute(2, 3, 0, 1).contiguous()
        return t.permute(3, 2, 0, 1).contiguous()
    if arr.ndim == 2:
        return t.t().contiguous()
    return t


def load_keras_weights(module, weights, strict_backbone=True):
    """Copy Keras-named numpy weights into a KerasMobileNetV2; returns the keys loaded.

    With strict_backbone, every parameter/buffer of the module (except BN counters) must be
    found, else ValueError naming the missing ones.
    """
    sd = module.state_dict()
    loaded = set()
    for name, arr in weights.items():
        key = keras_to_module_key(name)
        if key is None or key not in sd:
            continue
        t = keras_weight_to_torch(name, arr)
        if tuple(t.shape) != tuple(sd[key].shape):
            raise ValueError(f"weight {name}: shape {tuple(arr.shape)} does not fit {key} "
                             f"{tuple(sd[key].shape)}")
        sd[key] = t.to(sd[key].dtype)
        loaded.add(key)
    missing = [k for k in sd if k not in loaded and not k.endswith("num_batches_tracked")]
    if strict_backbone and missing:
        raise ValueError(f"weights missing for {len(missing)} tensors, e.g. {missing[:5]}")
    module.load_state_dict(sd)
    return loaded


def _fold_bn(conv, bnm):
    """Conv + BatchNorm (eval statistics) -> one Conv with bias."""
    s = bnm.weight.detach() / torch.sqrt(bnm.running_var + bnm.eps)
    w = conv.weight.detach() * s[:, None, None, None]
    b = bnm.bias.detach() - bnm.running_mean * s
    if conv.bias is not None:
        b = b + conv.bias.detach() * s
    return w, b


class _FusedConv(nn.Module):
    def __init__(self, conv, bnm, pad, act):
        super().__init__()
        w, b = _fold_bn(conv, bnm)
        sym = pad is not None and len(set(pad.pads)) == 1
        self.pad = None if pad is None or sym else pad
        p = pad.pads[0] if sym else 0
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                              conv.stride, p, groups=conv.groups, bias=True)
        with torch.no_grad():
            self.conv.weight.copy_(w)
            self.conv.bias.copy_(b)
        self.act = act

    def forward(self, x):
        if self.pad is not None:
            x = self.pad(x)
        x = self.conv(x)
        return nn.functional.hardtanh_(x, 0.0, 6.0) if self.act else x


class FusedPrefix(nn.Module):
    """Inference-only copy of Conv1 and blocks 0..upto with BatchNorm folded into the convs,
    symmetric pads inside the convs and in-place ReLU6: the same function, several times
    faster on CPU. Used to precompute features of frozen layers. Returns (x, {i: block i
    output}) for the block indices in `keep`."""

    def __init__(self, net, upto):
        super().__init__()
        self.stem = _FusedConv(net.Conv1, net.bn_Conv1, net.Conv1_pad, True)
        self.blocks = nn.ModuleList()
        self.residual = []
        for i, blk in enumerate(net.blocks.values()):
            if i > upto:
                break
            ops = []
            if blk.has_expand:
                ops.append(_FusedConv(blk.expand, blk.expand_BN, None, True))
            ops.append(_FusedConv(blk.depthwise, blk.depthwise_BN, blk.pad, True))
            ops.append(_FusedConv(blk.project, blk.project_BN, None, False))
            self.blocks.append(nn.Sequential(*ops))
            self.residual.append(blk.residual)
        self.eval()

    def forward(self, x, keep=()):
        x = self.stem(x)
        outs = {}
        for i, (blk, res) in enumerate(zip(self.blocks, self.residual)):
            y = blk(x)
            x = x + y if res else y
            if i in keep:
                outs[i] = x
        return x, outs

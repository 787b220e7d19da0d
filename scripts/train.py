#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Train a normal/abnormal image classifier and export it as an Anomalens .alm model.

    scripts/train.py DATA --out build/train/elpv            # DATA: normal/ + abnormal/ or CSV
    scripts/train.py DATA --out DIR --smoke                 # CI: 1 epoch on a few dozen images

DATA is a folder with `normal/` and `abnormal/` subfolders, or a CSV manifest with columns
`file` (or `path`) and `label` (paths relative to the CSV's folder). The data are split
stratified by label into train/validation/test with a fixed seed (or --test-dir gives the test
set). The test split is used only for the final metrics: model selection (early stopping) and
the decision threshold use the validation split.

Evaluation inputs are made exactly as the C++ core makes them (scripts/almtools/preprocess.py,
docs/FORMAT.md); training-time augmentation (flips, small rotations/shifts/scales,
brightness/contrast) is applied on top of those tensors.

Outputs in --out: model.onnx, model.alm, log.csv, log.json (history + final metrics),
curves_loss.png, curves_accuracy.png, split.csv, test_scores.csv, and best.pt.
"""

import argparse
import copy
import csv
import datetime
import json
import math
import os
import shlex
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from almtools.preprocess import (TEST_TIME_FLIPS, PreprocessError,  # noqa: E402
                                 parse_test_time_flips)

CL = None  # torch.channels_last, set in run()
T_START = time.time()  # the --max-minutes budget counts from here
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".psd", ".pnm", ".pgm", ".ppm",
              ".hdr", ".pic")
LABELS = ("normal", "abnormal")
ARCHS = ("keras-mobilenetv2", "mobilenet_v2", "resnet18", "scratch")
NSFWJS_MODEL = os.path.join(REPO, "node_modules", "nsfwjs", "dist", "models", "mobilenet_v2")


class TrainError(Exception):
    """A user-facing error: the message names the file/value and the rule broken."""


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------------------------------------
# Data.

def list_folder(root):
    items = []
    for li, lab in enumerate(LABELS):
        d = os.path.join(root, lab)
        if not os.path.isdir(d):
            raise TrainError(f"{root}: missing subfolder {lab}/ (need normal/ and abnormal/)")
        files = sorted(f for f in os.listdir(d) if f.lower().endswith(IMAGE_EXTS))
        if not files:
            raise TrainError(f"{d}: no images (extensions {', '.join(IMAGE_EXTS)})")
        items += [(os.path.join(d, f), li) for f in files]
    return items


def list_csv(path):
    base = os.path.dirname(os.path.abspath(path))
    items = []
    with open(path, newline="", encoding="utf-8") as f:
        rd = csv.DictReader(f)
        cols = rd.fieldnames or []
        fcol = "file" if "file" in cols else ("path" if "path" in cols else None)
        if fcol is None or "label" not in cols:
            raise TrainError(f"{path}: CSV needs columns 'file' (or 'path') and 'label', "
                             f"has {cols}")
        for n, row in enumerate(rd, 2):
            lab = row["label"].strip().lower()
            if lab not in LABELS:
                raise TrainError(f"{path} line {n}: label {row['label']!r} must be normal or "
                                 f"abnormal")
            p = row[fcol]
            p = p if os.path.isabs(p) else os.path.join(base, p)
            if not os.path.exists(p):
                raise TrainError(f"{path} line {n}: file {p} does not exist")
            items.append((p, LABELS.index(lab)))
    if not items:
        raise TrainError(f"{path}: no rows")
    return items


def list_data(path):
    if os.path.isdir(path):
        return list_folder(path)
    if os.path.isfile(path) and path.lower().endswith(".csv"):
        return list_csv(path)
    raise TrainError(f"{path}: not a folder with normal/ and abnormal/, nor a .csv manifest")


def stratified_split(items, val_frac, test_frac, seed):
    """Per class: shuffle with the seed, take round(frac * n) for test, then for val."""
    rng = np.random.default_rng(seed)
    split = {"train": [], "val": [], "test": []}
    for li in range(len(LABELS)):
        cls = sorted(i for i in items if i[1] == li)
        order = rng.permutation(len(cls))
        n_test = int(round(test_frac * len(cls)))
        n_val = int(round(val_frac * len(cls)))
        for k, j in enumerate(order):
            part = "test" if k < n_test else ("val" if k < n_test + n_val else "train")
            split[part].append(cls[j])
    return split


def groups_by_number_gap(items, gap):
    """Group id per item: within a label, files sorted by the last number in their name; a
    jump of more than `gap` starts a new group (e.g. the photos of one physical tile taken in
    several sessions carry nearly the same number)."""
    import re
    gid = {}
    n = 0
    for li in range(len(LABELS)):
        keyed = []
        for it in items:
            if it[1] != li:
                continue
            nums = re.findall(r"\d+", os.path.basename(it[0]))
            if not nums:
                raise TrainError(f"--group-gap: file name {it[0]} has no number to group by")
            keyed.append((int(nums[-1]), it))
        keyed.sort()
        prev = None
        for num, it in keyed:
            if prev is None or num - prev > gap:
                n += 1
            gid[it] = n
            prev = num
    return gid


def grouped_split(items, gid, val_frac, test_frac, seed):
    """Like stratified_split, but whole groups go to one split (no near-duplicates across)."""
    rng = np.random.default_rng(seed)
    split = {"train": [], "val": [], "test": []}
    for li in range(len(LABELS)):
        groups = sorted({gid[i] for i in items if i[1] == li})
        order = rng.permutation(len(groups))
        n_test = int(round(test_frac * len(groups)))
        n_val = int(round(val_frac * len(groups)))
        part_of = {}
        for k, j in enumerate(order):
            part_of[groups[j]] = ("test" if k < n_test else
                                  "val" if k < n_test + n_val else "train")
        for it in sorted(i for i in items if i[1] == li):
            split[part_of[gid[it]]].append(it)
    return split


def subsample(items, per_class, seed):
    rng = np.random.default_rng(seed)
    out = []
    for li in range(len(LABELS)):
        cls = sorted(i for i in items if i[1] == li)
        idx = rng.permutation(len(cls))[:per_class]
        out += [cls[j] for j in sorted(idx)]
    return out


def detect_channels(items, n=8):
    from almtools.preprocess import decode_file
    for path, _ in items[:n] + items[-n:]:
        a = decode_file(path)
        if a.shape[2] >= 3 and not (np.allclose(a[..., 0], a[..., 1]) and
                                    np.allclose(a[..., 0], a[..., 2])):
            return "rgb"
    return "gray"


def load_tensors(items, meta, desc):
    """Preprocesses every image exactly as the core does. Returns float32 N,C,H,W."""
    from almtools.preprocess import PreprocessError, preprocess_file
    out = None
    t0 = time.time()
    for k, (path, _) in enumerate(items):
        try:
            x = preprocess_file(path, meta)
        except PreprocessError as e:
            raise TrainError(str(e))
        if out is None:
            out = np.empty((len(items), x.shape[2], x.shape[0], x.shape[1]), np.float32)
        out[k] = x.transpose(2, 0, 1)
        if (k + 1) % 200 == 0 or k + 1 == len(items):
            progress(desc, k + 1, len(items), t0)
    return out


# ---------------------------------------------------------------------------------------------
# Console progress bar (one per epoch / pass).

def progress(desc, done, total, t0, extra=""):
    width = 30
    frac = done / max(total, 1)
    bar = "#" * int(width * frac) + "." * (width - int(width * frac))
    el = time.time() - t0
    eta = el / frac - el if frac > 0 else 0
    end = "\n" if done >= total else ""
    sys.stderr.write(f"\r{desc:14s} [{bar}] {done}/{total} {el:5.0f}s eta {eta:4.0f}s {extra}"
                     + end)
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# Models.

def build_model(arch, channels, args):
    import torch
    from torch import nn
    cin = 1 if channels == "gray" else 3
    provenance = ""
    if arch == "keras-mobilenetv2":
        from keras_mobilenetv2 import KerasMobileNetV2, load_keras_weights
        taps = [int(t) for t in args.taps.split(",")]
        last = max(taps)
        bb = KerasMobileNetV2(last_block=last)
        if not args.from_scratch:
            import tfjs_import
            try:
                _, weights = tfjs_import.load_tfjs(args.backbone)
            except tfjs_import.ImportError_ as e:
                raise TrainError(f"--backbone: {e} (run `npm ci` to install nsfwjs, or pass "
                                 f"--from-scratch)")
            load_keras_weights(bb, weights)
            provenance = (f"Keras MobileNetV2 (alpha 1.0) blocks 0-{last}, weights imported "
                          f"from the TF.js layers model {os.path.relpath(args.backbone, REPO)} "
                          f"(nsfwjs 4.4.0, MIT; ImageNet-initialised, Conv1..block_10 kept "
                          f"frozen at ImageNet values by its authors)")
        else:
            provenance = "Keras-style MobileNetV2, random initialisation (--from-scratch)"
        if cin == 1:
            bb.to_gray_input()
        model = KerasHead(bb, taps, args.dropout)
        if not args.from_scratch:
            model.freeze_through(args.freeze_through)
        return model, provenance
    if arch in ("mobilenet_v2", "resnet18"):
        import torchvision
        ctor = getattr(torchvision.models, arch)
        if args.pretrained:
            try:
                net = ctor(weights="IMAGENET1K_V1")
            except Exception as e:
                raise TrainError(
                    f"--pretrained: could not load torchvision's ImageNet weights for {arch} "
                    f"({type(e).__name__}: {str(e)[:200]}). They are downloaded from "
                    f"download.pytorch.org on first use, so this needs internet access (or a "
                    f"copy in ~/.cache/torch/hub/checkpoints). Offline, use the default "
                    f"--arch keras-mobilenetv2 or drop --pretrained to train from scratch.")
            provenance = f"torchvision {arch}, ImageNet weights (IMAGENET1K_V1)"
        else:
            net = ctor(weights=None)
            provenance = f"torchvision {arch}, random initialisation"
        if arch == "resnet18":
            if cin == 1:
                w = net.conv1.weight.detach().sum(1, keepdim=True)
                net.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
                with torch.no_grad():
                    net.conv1.weight.copy_(w)
            net.fc = nn.Sequential(nn.Dropout(args.dropout), nn.Linear(512, 2))
        else:
            if cin == 1:
                c0 = net.features[0][0]
                w = c0.weight.detach().sum(1, keepdim=True)
                net.features[0][0] = nn.Conv2d(1, 32, 3, 2, 1, bias=False)
                with torch.no_grad():
                    net.features[0][0].weight.copy_(w)
            net.classifier = nn.Sequential(nn.Dropout(args.dropout), nn.Linear(1280, 2))
        return net, provenance
    if arch == "scratch":
        return ScratchCNN(cin, args.dropout), "small CNN, random initialisation"
    raise TrainError(f"--arch {arch!r}: must be one of {', '.join(ARCHS)}")


def _torch_modules():
    import torch
    from torch import nn

    class KerasHead_(nn.Module):
        """Backbone taps -> global average pools -> concat -> dropout -> linear (2 logits)."""

        def __init__(self, backbone, taps, dropout):
            super().__init__()
            self.backbone, self.taps = backbone, sorted(set(taps))
            chans = [self.backbone.blocks[list(self.backbone.blocks)[t]].project.out_channels
                     for t in self.taps]
            self.drop = nn.Dropout(dropout)
            self.fc = nn.Linear(sum(chans), 2)
            self.frozen = []

        def freeze_through(self, block):
            """Freeze Conv1 and blocks 0..block (weights and BN statistics)."""
            self.frozen = [self.backbone.Conv1, self.backbone.bn_Conv1]
            self.frozen += [b for i, b in enumerate(self.backbone.blocks.values()) if i <= block]
            for m in self.frozen:
                for p in m.parameters():
                    p.requires_grad = False

        def train(self, mode=True):
            super().train(mode)
            for m in self.frozen:
                m.eval()
            return self

        def forward(self, x):
            feats = self.backbone(x, taps=self.taps)
            pooled = [f.mean(dim=(2, 3)) for f in feats]
            z = pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=1)
            return self.fc(self.drop(z))

        def frozen_part(self, x, upto):
            """Conv1 and blocks 0..upto: (feature map, pooled taps <= upto)."""
            bb = self.backbone
            x = nn.functional.relu6(bb.bn_Conv1(bb.Conv1(bb.Conv1_pad(x))))
            low = []
            for i, blk in enumerate(bb.blocks.values()):
                if i > upto:
                    break
                x = blk(x)
                if i in self.taps:
                    low.append(x.mean(dim=(2, 3)))
            return x, low

        def forward_from(self, x, low, upto):
            """The rest of forward() given frozen_part's outputs."""
            pooled = list(low)
            for i, blk in enumerate(self.backbone.blocks.values()):
                if i <= upto:
                    continue
                x = blk(x)
                if i in self.taps:
                    pooled.append(x.mean(dim=(2, 3)))
            z = pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=1)
            return self.fc(self.drop(z))

    class ScratchCNN_(nn.Module):
        """4 x (conv3x3-BN-ReLU, conv3x3-BN-ReLU, maxpool 2) -> GAP -> linear."""

        def __init__(self, cin, dropout):
            super().__init__()
            layers, c = [], cin
            for co in (16, 32, 64, 128):
                layers += [nn.Conv2d(c, co, 3, 1, 1, bias=False), nn.BatchNorm2d(co),
                           nn.ReLU(inplace=True), nn.Conv2d(co, co, 3, 1, 1, bias=False),
                           nn.BatchNorm2d(co), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
                c = co
            self.features = nn.Sequential(*layers)
            self.drop = nn.Dropout(dropout)
            self.fc = nn.Linear(c, 2)

        def forward(self, x):
            return self.fc(self.drop(self.features(x).mean(dim=(2, 3))))

    return KerasHead_, ScratchCNN_


def KerasHead(*a):
    return _torch_modules()[0](*a)


def ScratchCNN(*a):
    return _torch_modules()[1](*a)


# ---------------------------------------------------------------------------------------------
# Augmentation (training only).

def augment(x, gen, cfg):
    """x: N,C,H,W in pixel/scale units (before mean/std). Random flips, affine, photometric."""
    import torch
    n = x.shape[0]
    r = lambda *s: torch.rand(*s, generator=gen)  # noqa: E731
    if cfg["hflip"]:
        m = r(n) < 0.5
        x = torch.where(m[:, None, None, None], x.flip(3), x)
    if cfg["vflip"]:
        m = r(n) < 0.5
        x = torch.where(m[:, None, None, None], x.flip(2), x)
    ang = (r(n) * 2 - 1) * math.radians(cfg["rotate"])
    sc = 1 + (r(n) * 2 - 1) * cfg["scale"]
    tx = (r(n) * 2 - 1) * cfg["shift"] * 2
    ty = (r(n) * 2 - 1) * cfg["shift"] * 2
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                                        align_corners=False)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    c = 1 + (r(n, 1, 1, 1) * 2 - 1) * cfg["contrast"]
    b = (r(n, 1, 1, 1) * 2 - 1) * cfg["brightness"]
    return (x - mean) * c + mean + b


# ---------------------------------------------------------------------------------------------
# Metrics.

def roc_auc(y, s):
    """Mann-Whitney AUC with average ranks for ties. y in {0,1}."""
    y = np.asarray(y)
    s = np.asarray(s, dtype=np.float64)
    npos, nneg = int(y.sum()), int((1 - y).sum())
    if npos == 0 or nneg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ss = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and ss[j + 1] == ss[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y == 1].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def metrics_at(y, s, thr):
    y = np.asarray(y)
    p = (np.asarray(s) >= thr).astype(int)
    tp = int(((p == 1) & (y == 1)).sum())
    fp = int(((p == 1) & (y == 0)).sum())
    tn = int(((p == 0) & (y == 0)).sum())
    fn = int(((p == 0) & (y == 1)).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"accuracy": (tp + tn) / len(y), "precision": prec, "recall": rec, "f1": f1,
            "roc_auc": roc_auc(y, s), "threshold": thr, "n": len(y),
            "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn}}


def choose_threshold(y, s):
    """Threshold maximising accuracy on (validation) scores; ties: the one nearest 0.5."""
    s = np.asarray(s, dtype=np.float64)
    u = np.unique(s)
    cands = np.concatenate([[0.5], (u[:-1] + u[1:]) / 2]) if len(u) > 1 else np.array([0.5])
    best = None
    for t in cands:
        acc = metrics_at(y, s, t)["accuracy"]
        key = (acc, -abs(t - 0.5))
        if best is None or key > best[0]:
            best = (key, t)
    return float(best[1])


# ---------------------------------------------------------------------------------------------
# Training.

def batches(n, bs, gen=None):
    import torch
    idx = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    for i in range(0, n, bs):
        yield idx[i:i + bs]


def predict(model, x, norm, bs, desc):
    """Returns P(abnormal) and mean CE loss for tensors x (N,C,H,W, pixel/scale units)."""
    import torch
    model.eval()
    probs, t0 = [], time.time()
    with torch.no_grad():
        for k, idx in enumerate(batches(len(x), bs)):
            logits = model(norm(x[idx]).contiguous(memory_format=CL))
            probs.append(torch.softmax(logits, 1)[:, 1])
            if desc:
                progress(desc, min((k + 1) * bs, len(x)), len(x), t0)
    return torch.cat(probs).numpy().astype(np.float64)


def predict_flips(model, x, norm, bs, desc, flips):
    """Mean P(abnormal) over test-time flips of x, as the C++ Classifier scores a model whose
    meta lists them. Returns (mean, {flip: P(abnormal)})."""
    import torch
    per_flip = {}
    for f in flips:
        dims = tuple(a + 2 for a in TEST_TIME_FLIPS[f])  # HWC axes -> NCHW dims
        xf = torch.flip(x, dims) if dims else x
        per_flip[f] = predict(model, xf, norm, bs, f"{desc} ({f})" if desc and len(flips) > 1 else desc)
    return np.mean([per_flip[f] for f in flips], axis=0), per_flip


def bce_from_probs(y, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    y = np.asarray(y)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def train(args, model, data, norm, out_dir):
    import torch
    from torch import nn
    xtr, ytr, xva, yva = data["xtr"], data["ytr"], data["xva"], data["yva"]
    gen = torch.Generator().manual_seed(args.seed)
    counts = np.bincount(ytr.numpy(), minlength=2)
    cw = torch.tensor(len(ytr) / (2.0 * np.maximum(counts, 1)), dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=cw if args.class_weights else None,
                                  label_smoothing=args.label_smoothing)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(xtr) / args.batch_size)
    total = steps_per_epoch * args.epochs
    warm = min(steps_per_epoch, total // 10 + 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else
        0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / max(1, total - warm)))))
    aug_cfg = {"hflip": args.hflip, "vflip": args.vflip, "rotate": args.rotate,
               "shift": args.shift, "scale": args.scale_jitter,
               "brightness": args.brightness, "contrast": args.contrast}
    history, best, best_state, bad = [], None, None, 0
    cache = None
    if args.cache_variants > 0 and hasattr(model, "frozen_part") and args.freeze_through >= 0 \
            and not args.from_scratch:
        cache = load_or_build_cache(args, model, xtr, xva, norm, gen, aug_cfg)
    swa_sum, swa_n = None, 0
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        model.train()
        tot_loss, tot_ok, seen = 0.0, 0, 0
        for k, idx in enumerate(batches(len(xtr), args.batch_size, gen)):
            yb = ytr[idx]
            mix = None
            if args.mixup > 0:
                lam = float(np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,),
                                                                    generator=gen)))
                            .beta(args.mixup, args.mixup))
                mix = (torch.randperm(len(idx), generator=gen), max(lam, 1 - lam))
            if cache is not None:
                v = torch.randint(0, cache["v"], (len(idx),), generator=gen)
                feat = cache["train"][v, idx]
                low = [t[v, idx] for t in cache["train_low"]]
                if mix is not None:  # mixup of the frozen layers' features
                    pm, lam = mix
                    feat = lam * feat + (1 - lam) * feat[pm]
                    low = [lam * t + (1 - lam) * t[pm] for t in low]
                logits = model.forward_from(feat.contiguous(memory_format=CL), low,
                                            args.freeze_through)
            else:
                xb = xtr[idx]
                if args.augment:
                    xb = augment(xb, gen, aug_cfg)
                if mix is not None:
                    pm, lam = mix
                    xb = lam * xb + (1 - lam) * xb[pm]
                logits = model(norm(xb).contiguous(memory_format=CL))
            if mix is not None:
                pm, lam = mix
                loss = lam * loss_fn(logits, yb) + (1 - lam) * loss_fn(logits, yb[pm])
            else:
                loss = loss_fn(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += float(loss) * len(idx)
            tot_ok += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
            progress(f"epoch {epoch}/{args.epochs}", seen, len(xtr), t0,
                     f"loss {tot_loss / seen:.4f} acc {tot_ok / seen:.3f}")
        if cache is not None:
            pva = predict_cached(model, cache, args.freeze_through, args.batch_size * 4)
        else:
            pva = predict(model, xva, norm, args.batch_size * 2, "  validation")
        vm = metrics_at(yva.numpy(), pva, 0.5)
        row = {"epoch": epoch, "train_loss": tot_loss / seen, "train_acc": tot_ok / seen,
               "val_loss": bce_from_probs(yva.numpy(), pva), "val_acc": vm["accuracy"],
               "val_auc": vm["roc_auc"], "val_f1": vm["f1"],
               "lr": opt.param_groups[0]["lr"], "seconds": time.time() - t0}
        history.append(row)
        log(f"epoch {epoch:3d}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}"
            f"  |  val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f} "
            f"auc {row['val_auc']:.4f} f1 {row['val_f1']:.4f}  ({row['seconds']:.0f}s)")
        write_log(out_dir, history)
        if args.swa_start and epoch >= args.swa_start:
            sd = model.state_dict()
            if swa_sum is None:
                swa_sum = {k: v.detach().clone().double() for k, v in sd.items()
                           if v.dtype.is_floating_point}
            else:
                for k in swa_sum:
                    swa_sum[k] += sd[k].double()
            swa_n += 1
        key = (np.nan_to_num(row["val_auc"]), -row["val_loss"])
        if best is None or key > best:
            best, best_state, bad = key, copy.deepcopy(model.state_dict()), 0
            row["best"] = True
        else:
            bad += 1
            if bad >= args.patience and not (args.swa_start and epoch >= args.swa_start):
                log(f"early stop: validation AUC did not improve for {args.patience} epochs")
                break
        elapsed = (time.time() - T_START) / 60
        if args.max_minutes and elapsed + row["seconds"] / 60 > args.max_minutes:
            log(f"stopping: time budget --max-minutes {args.max_minutes} would be exceeded")
            break
    if swa_n >= 2:
        # Stochastic weight averaging: mean of the weights at the end of epochs swa_start..,
        # then the BN statistics of the trained layers recomputed on the training data.
        sd = model.state_dict()
        avg = {k: (swa_sum[k] / swa_n).to(sd[k].dtype) if k in swa_sum else sd[k] for k in sd}
        model.load_state_dict(avg)
        recompute_bn(model, args, xtr, norm, cache, gen)
        if cache is not None:
            pva = predict_cached(model, cache, args.freeze_through, args.batch_size * 4)
        else:
            pva = predict(model, xva, norm, args.batch_size * 2, "  validation")
        vm = metrics_at(yva.numpy(), pva, 0.5)
        row = {"epoch": history[-1]["epoch"] + 1, "swa": swa_n, "train_loss": float("nan"),
               "train_acc": float("nan"), "val_loss": bce_from_probs(yva.numpy(), pva),
               "val_acc": vm["accuracy"], "val_auc": vm["roc_auc"], "val_f1": vm["f1"],
               "lr": float("nan"), "seconds": 0.0}
        log(f"SWA of {swa_n} epochs ({args.swa_start}..{history[-1]['epoch']}): val loss "
            f"{row['val_loss']:.4f} acc {row['val_acc']:.4f} auc {row['val_auc']:.4f} "
            f"f1 {row['val_f1']:.4f}")
        key = (np.nan_to_num(row["val_auc"]), -row["val_loss"])
        if args.swa_only or key >= best:
            row["best"] = True
            for h in history:
                h.pop("best", None)
            history.append(row)
            write_log(out_dir, history)
            log("keeping the SWA weights" + (" (--swa-only)" if args.swa_only else
                                             " (validation AUC >= best epoch's)"))
            return history
        history.append(row)
        write_log(out_dir, history)
        log("keeping the best epoch's weights (higher validation AUC than SWA)")
    model.load_state_dict(best_state)
    return history


def recompute_bn(model, args, xtr, norm, cache, gen):
    """Recomputes the running statistics of the trainable BatchNorm layers (cumulative average
    over one pass of the training data, a random cached variant per image), as SWA needs."""
    import torch
    from torch import nn
    frozen = set()
    for m in getattr(model, "frozen", []):
        frozen |= {id(x) for x in m.modules()}
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
           and id(m) not in frozen]
    if not bns:
        return
    moms = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for idx in batches(len(xtr), args.batch_size * 4, gen):
            if cache is not None:
                v = torch.randint(0, cache["v"], (len(idx),), generator=gen)
                model.forward_from(cache["train"][v, idx].contiguous(memory_format=CL),
                                   [t[v, idx] for t in cache["train_low"]], args.freeze_through)
            else:
                xb = xtr[idx]
                if args.augment:
                    xb = augment(xb, gen, {"hflip": args.hflip, "vflip": args.vflip,
                                           "rotate": args.rotate, "shift": args.shift,
                                           "scale": args.scale_jitter,
                                           "brightness": args.brightness,
                                           "contrast": args.contrast})
                model(norm(xb).contiguous(memory_format=CL))
    for m, mo in zip(bns, moms):
        m.momentum = mo
    model.eval()


def cache_key(args, n_train, n_val):
    """What the cached features depend on (a --feature-cache file must match all of it)."""
    keys = ("data", "backbone", "taps", "freeze_through", "cache_variants", "channels",
            "input_size", "augment", "hflip", "vflip", "rotate", "shift", "scale_jitter",
            "brightness", "contrast", "val_frac", "test_frac", "group_gap", "seed", "smoke",
            "test_dir")
    d = {k: getattr(args, k) for k in keys}
    d["data"] = os.path.abspath(d["data"])
    d["n"] = [n_train, n_val]
    return json.dumps(d, sort_keys=True)


def load_or_build_cache(args, model, xtr, xva, norm, gen, aug_cfg):
    """build_cache, or with --feature-cache FILE: load it if it was made with the same data
    and cache options (and restore the random generators to their state after caching, so
    that the run is the same as one that builds the cache), else build and save it."""
    import torch
    path = args.feature_cache
    key = cache_key(args, len(xtr), len(xva))
    if path and os.path.exists(path):
        saved = torch.load(path)
        if saved.get("key") == key and "torch_rng_state" in saved:
            gen.set_state(saved["gen_state"])
            # Building the cache also draws from torch's global generator (the fused copy's
            # layers are initialised before their weights are set; dropout uses it later).
            torch.set_rng_state(saved["torch_rng_state"])
            log(f"loaded cached frozen features from {path} (built in "
                f"{saved['seconds']:.0f}s)")
            return saved["cache"]
        log(f"{path}: made with other options; rebuilding it")
    t0 = time.time()
    cache = build_cache(args, model, xtr, xva, norm, gen, aug_cfg)
    if path:
        torch.save({"key": key, "gen_state": gen.get_state(),
                    "torch_rng_state": torch.get_rng_state(), "cache": cache,
                    "seconds": time.time() - t0}, path)
    return cache


def build_cache(args, model, xtr, xva, norm, gen, aug_cfg):
    """Features of the frozen layers (Conv1..block F, eval mode, fixed weights) for a fixed
    set of training variants: 0 = the image, 1-3 = flips, then random affine + photometric
    augmentations; and for the validation images. Training then runs only the layers after F
    (each step picks one variant per image): the frozen forward pass dominated the cost."""
    import torch
    from keras_mobilenetv2 import FusedPrefix
    F = args.freeze_through
    variants = args.cache_variants
    model.eval()
    fused = FusedPrefix(model.backbone, F).to(memory_format=CL)
    low_taps = [t for t in model.taps if t <= F]
    with torch.no_grad():  # the fused copy must compute the same function
        probe = norm(xva[:2]).contiguous(memory_format=CL)
        a, _ = model.frozen_part(probe, F)
        b, _ = fused(probe)
        err = float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))
    if err > 1e-4:
        raise TrainError(f"internal: fused frozen layers differ from the model (rel {err})")
    feats, lows = [], []
    t0 = time.time()
    total = variants * len(xtr) + len(xva)
    done = 0
    with torch.no_grad():
        for v in range(variants + 1):
            src = xva if v == variants else xtr
            out_f, out_l = [], []
            for idx in batches(len(src), 32):  # >= 16: oneDNN also for 1x1 convs
                xb = src[idx]
                if v == 1:
                    xb = xb.flip(3)
                elif v == 2:
                    xb = xb.flip(2)
                elif v == 3:
                    xb = xb.flip(2).flip(3)
                elif v >= 4 and v < variants:
                    xb = augment(xb, gen, aug_cfg)
                f, kept = fused(norm(xb).contiguous(memory_format=CL), low_taps)
                low = [kept[t].mean(dim=(2, 3)) for t in low_taps]
                out_f.append(f.contiguous())
                out_l.append(low)
                done += len(idx)
                progress("  cache", done, total, t0)
            feats.append(torch.cat(out_f))
            lows.append([torch.cat([l[j] for l in out_l]) for j in range(len(out_l[0]))]
                        if out_l[0] else [])
    n_low = len(lows[0])
    cache = {"v": variants, "train": torch.stack(feats[:variants]),
             "train_low": [torch.stack([lows[v][j] for v in range(variants)])
                           for j in range(n_low)],
             "val": feats[variants], "val_low": lows[variants]}
    log(f"cached frozen features (Conv1..block {F}) for {variants} variants of "
        f"{len(xtr)} training images and {len(xva)} validation images: "
        f"{cache['train'].numel() * 4 / 1e6:.0f} MB, {time.time() - t0:.0f}s")
    return cache


def predict_cached(model, cache, upto, bs):
    import torch
    model.eval()
    probs = []
    with torch.no_grad():
        for idx in batches(len(cache["val"]), bs):
            logits = model.forward_from(cache["val"][idx].contiguous(memory_format=CL),
                                        [t[idx] for t in cache["val_low"]], upto)
            probs.append(torch.softmax(logits, 1)[:, 1])
    return torch.cat(probs).numpy().astype(np.float64)


def write_log(out_dir, history):
    keys = list(history[0].keys())
    with open(os.path.join(out_dir, "log.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(history)


def plot_curves(out_dir, history):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ep = [h["epoch"] for h in history]
    for fname, keys, ylabel in [
            ("curves_loss.png", [("train_loss", "train"), ("val_loss", "validation")],
             "cross-entropy loss"),
            ("curves_accuracy.png", [("train_acc", "train acc"), ("val_acc", "validation acc"),
                                     ("val_auc", "validation ROC AUC")], "accuracy / AUC")]:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for k, lab in keys:
            ax.plot(ep, [h[k] for h in history], marker="o", label=lab)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, fname))
        plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Export.

def export(model, meta, channels, size, out_dir, f16):
    import torch
    import tfjs_import
    from onnx_to_alm import ConversionError, convert
    model.eval()
    cin = 1 if channels == "gray" else 3
    onnx_path = os.path.join(out_dir, "model.onnx")
    alm_path = os.path.join(out_dir, "model.alm")
    x = torch.zeros(1, cin, size, size)
    torch.onnx.export(model, x, onnx_path, opset_version=13, input_names=["input"],
                      output_names=["logits"], do_constant_folding=True)
    tfjs_import.fold_pads_into_convs(onnx_path)
    try:
        convert(onnx_path, alm_path, meta, f16=f16)
    except ConversionError as e:
        raise TrainError(f"{onnx_path}: conversion to .alm failed: {e}")
    return onnx_path, alm_path


def check_alm(alm_path, model, items, n=6):
    """Scores a few images with the .alm through the NumPy reference (test-time flips included)
    and with torch; returns max |dP(abnormal)|."""
    import torch
    from almtools.alm import read_alm
    from almtools.preprocess import preprocess_file
    from almtools.reference import p_abnormal
    meta, lines, tensors = read_alm(alm_path)
    flips = parse_test_time_flips(meta)
    worst = 0.0
    model.eval()
    for path, _ in items[:n]:
        x = preprocess_file(path, meta)
        p_ref = p_abnormal(meta, lines, tensors, x.astype(np.float64))
        xt = torch.from_numpy(x.transpose(2, 0, 1).copy())[None]
        # preprocess_file already applied the meta's mean/std: no second normalisation.
        p_t, _ = predict_flips(model, xt, lambda v: v, 1, "", flips)
        worst = max(worst, abs(p_ref - float(p_t[0])))
    return worst


def cpp_eval(alm_path, items, out_dir):
    """Runs `anomalens eval --json` on the test split (symlinked) if the CLI is built."""
    exe = os.path.join(REPO, "build", "native", "anomalens")
    if not os.path.exists(exe):
        return None
    d = os.path.join(out_dir, "test_split")
    for lab in LABELS:
        os.makedirs(os.path.join(d, lab), exist_ok=True)
        for f in os.listdir(os.path.join(d, lab)):
            os.remove(os.path.join(d, lab, f))
    for k, (path, li) in enumerate(items):
        os.symlink(os.path.abspath(path),
                   os.path.join(d, LABELS[li], f"{k:05d}_{os.path.basename(path)}"))
    try:
        r = subprocess.run([exe, "eval", "--model", alm_path, "--json", d],
                           capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": str(e)}
    if r.returncode != 0:
        return {"error": f"exit {r.returncode}: {r.stderr.strip()[:500]}"}
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError:
        return {"error": f"unparsable output: {r.stdout[:300]}"}


def write_golden(out_dir, test_items, p_test, thr, per_class=6):
    """golden.json: PyTorch P(abnormal) and verdict for the first test images of each class
    (for golden tests of the exported model)."""
    rows = []
    for li in range(len(LABELS)):
        picked = [(it, p) for it, p in zip(test_items, p_test) if it[1] == li][:per_class]
        for (path, _), p in picked:
            rows.append({"file": os.path.join(LABELS[li], os.path.basename(path)),
                         "label": LABELS[li], "p_abnormal": round(float(p), 6),
                         "verdict": LABELS[int(p >= thr)]})
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        json.dump({"threshold": thr, "images": rows}, f, indent=1)


def data_info(path):
    """(training_data, license) from a SOURCE.md / LICENSE next to the data, if present."""
    root = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    name = os.path.basename(os.path.normpath(root))
    src = os.path.join(root, "SOURCE.md")
    title, lic = name, ""
    if os.path.exists(src):
        with open(src, encoding="utf-8") as f:
            text = f.read()
        first = text.strip().splitlines()[0].lstrip("# ").strip() if text.strip() else ""
        title = f"{name}: {first}" if first else name
        if "CC BY-NC-SA 4.0" in text:
            lic = "CC BY-NC-SA 4.0"
        elif "License:** NONE" in text or "no LICENSE" in text:
            lic = "none (training data has no license: research/testing use only)"
    return title, lic


# ---------------------------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Train a normal/abnormal classifier and export it to .alm.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("data", help="folder with normal/ and abnormal/, or CSV manifest")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--test-dir", help="explicit test folder (normal/, abnormal/); then DATA "
                    "is split into train/validation only")
    ap.add_argument("--arch", default="keras-mobilenetv2", choices=ARCHS)
    ap.add_argument("--pretrained", action="store_true",
                    help="torchvision archs: load ImageNet weights (needs internet)")
    ap.add_argument("--from-scratch", action="store_true",
                    help="keras-mobilenetv2: random init instead of the imported backbone")
    ap.add_argument("--backbone", default=NSFWJS_MODEL,
                    help="TF.js layers model holding the Keras MobileNetV2 weights")
    ap.add_argument("--taps", default="13",
                    help="keras-mobilenetv2: blocks whose pooled features feed the classifier;"
                    " the backbone is cut after the last")
    ap.add_argument("--freeze-through", type=int, default=10,
                    help="keras-mobilenetv2: freeze Conv1 and blocks 0..N (-1: none)")
    ap.add_argument("--cache-variants", type=int, default=6,
                    help="keras-mobilenetv2 with frozen blocks: precompute the frozen layers' "
                    "features for N fixed variants per training image (image, 3 flips, N-4 "
                    "random augmentations) and train only the later layers; 0: augment every "
                    "step and run the whole network (slower)")
    ap.add_argument("--channels", default="auto", choices=("auto", "gray", "rgb"))
    ap.add_argument("--input-size", type=int, default=192)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--patience", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                    help="mixup with Beta(ALPHA, ALPHA) weights (0: off); with --cache-variants"
                    " it mixes the frozen layers' features")
    ap.add_argument("--swa-start", type=int, default=0, metavar="E",
                    help="stochastic weight averaging of the weights at the end of epochs E.. "
                    "(BN statistics recomputed); kept if its validation AUC is >= the best "
                    "epoch's (0: off; early stopping is off from epoch E)")
    ap.add_argument("--swa-only", action="store_true",
                    help="with --swa-start: always keep the SWA weights")
    ap.add_argument("--feature-cache", default=None, metavar="FILE",
                    help="save the cached frozen features to FILE, or load them from it if it "
                    "was made with the same data and options (experiments on the later "
                    "layers' training)")
    ap.add_argument("--no-class-weights", dest="class_weights", action="store_false")
    ap.add_argument("--no-augment", dest="augment", action="store_false")
    ap.add_argument("--hflip", type=int, default=1)
    ap.add_argument("--vflip", type=int, default=1)
    ap.add_argument("--rotate", type=float, default=5.0, help="max degrees")
    ap.add_argument("--shift", type=float, default=0.04, help="max fraction of the size")
    ap.add_argument("--scale-jitter", type=float, default=0.05)
    ap.add_argument("--brightness", type=float, default=0.08, help="max offset, pixel/scale")
    ap.add_argument("--contrast", type=float, default=0.2, help="max relative change")
    ap.add_argument("--val-frac", type=float, default=0.15)
    ap.add_argument("--test-frac", type=float, default=0.15)
    ap.add_argument("--group-gap", type=int, default=None, metavar="N",
                    help="split by groups instead of images: within a label, files sorted by "
                    "the last number in their name, a jump > N starts a new group (magnetic "
                    "tile: 100 groups the photos of one tile)")
    ap.add_argument("--seed", type=int, default=20240917)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-minutes", type=float, default=38.0,
                    help="stop before an epoch that would end later than this many minutes "
                    "after the start (preprocessing and caching included)")
    ap.add_argument("--test-time-flips", default="none", metavar="LIST",
                    help="score = mean P(abnormal) over these flips of the input (none, h, v, "
                    "hv; e.g. none,h,v,hv); the threshold and test metrics use that score and "
                    "the .alm records it, so classify, eval and the browser apply it too")
    ap.add_argument("--f16", action="store_true", help="store .alm weights as f16")
    ap.add_argument("--name", default=None, help="model name in the .alm meta")
    ap.add_argument("--smoke", action="store_true",
                    help="CI: 1 epoch on 24 images per class at 96x96")
    a = ap.parse_args(argv)
    if a.smoke:
        a.epochs, a.patience = 1, 1
        if a.input_size == 192:
            a.input_size = 96
    if not 0 <= a.val_frac < 1 or not 0 <= a.test_frac < 1 or a.val_frac + a.test_frac >= 1:
        ap.error(f"--val-frac {a.val_frac} + --test-frac {a.test_frac}: each in [0,1), sum < 1")
    if not 16 <= a.input_size <= 1024:
        ap.error(f"--input-size {a.input_size}: must be 16..1024")
    try:
        a.flips = parse_test_time_flips({"test_time_flips": a.test_time_flips})
    except PreprocessError as e:
        ap.error(f"--test-time-flips: {e}")
    return a


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        return run(args, argv)
    except TrainError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 1


def run(args, argv):
    import torch
    global CL
    CL = torch.channels_last
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    t_all = time.time()

    items = list_data(args.data)
    gid = groups_by_number_gap(items, args.group_gap) if args.group_gap is not None else None
    test_frac = 0.0 if args.test_dir else args.test_frac
    if gid is not None:
        split = grouped_split(items, gid, args.val_frac, test_frac, args.seed)
        log(f"grouped split: {len(set(gid.values()))} groups (--group-gap {args.group_gap})")
    else:
        split = stratified_split(items, args.val_frac, test_frac, args.seed)
    if args.test_dir:
        split["test"] = list_data(args.test_dir)
    if args.smoke:
        split = {"train": subsample(split["train"], 24, args.seed),
                 "val": subsample(split["val"], 8, args.seed),
                 "test": subsample(split["test"], 8, args.seed)}
    for part in ("train", "val", "test"):
        counts = np.bincount([li for _, li in split[part]], minlength=2)
        log(f"{part:5s}: {len(split[part])} images ({counts[0]} normal, {counts[1]} abnormal)")
        if part != "test" and min(counts) == 0:
            raise TrainError(f"{part} split has no {LABELS[int(np.argmin(counts))]} images; "
                             f"need both classes (lower --val-frac/--test-frac or add data)")
    if not split["test"]:
        raise TrainError("test split is empty (set --test-frac > 0 or --test-dir)")
    with open(os.path.join(args.out, "split.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "split"])
        for part in ("train", "val", "test"):
            for p, li in split[part]:
                w.writerow([os.path.relpath(p, REPO) if p.startswith(REPO) else p, LABELS[li],
                            part])

    channels = args.channels if args.channels != "auto" else detect_channels(items)
    cin = 1 if channels == "gray" else 3
    if args.arch == "keras-mobilenetv2" or (args.arch != "scratch" and not args.pretrained):
        mean, std = [0.0] * cin, [1.0] * cin  # nsfwjs feeds x/255
    else:
        mean, std = ([0.449], [0.226]) if cin == 1 else ([0.485, 0.456, 0.406],
                                                         [0.229, 0.224, 0.225])
    if args.arch == "scratch":
        mean, std = [0.5] * cin, [0.25] * cin
    # Built before the slow preprocessing so that model errors (--pretrained offline) come
    # first.
    model, provenance = build_model(args.arch, channels, args)
    # channels_last makes torch use oneDNN convolutions: ~50x faster on Debian's CPU build,
    # whose NCHW path runs im2col + a generic BLAS.
    model = model.to(memory_format=CL)
    size = args.input_size
    base_meta = {"input_size": f"{size}x{size}", "channels": channels, "scale": "255",
                 "mean": ",".join("0" for _ in range(cin)),
                 "std": ",".join("1" for _ in range(cin)), "resize": "stretch"}
    log(f"preprocessing {sum(len(v) for v in split.values())} images to {size}x{size} "
        f"{channels} (almtools.preprocess, as the C++ core)")
    xs = {p: torch.from_numpy(load_tensors(split[p], base_meta, f"  load {p}"))
          for p in ("train", "val", "test")}
    ys = {p: torch.tensor([li for _, li in split[p]], dtype=torch.long)
          for p in ("train", "val", "test")}
    mean_t = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
    std_t = torch.tensor(std, dtype=torch.float32)[None, :, None, None]
    identity_norm = all(m == 0 for m in mean) and all(s == 1 for s in std)

    def norm(x):
        return x if identity_norm else (x - mean_t) / std_t

    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"model {args.arch}: {n_params} parameters, {n_train} trainable; {provenance}")

    history = train(args, model,
                    {"xtr": xs["train"], "ytr": ys["train"], "xva": xs["val"], "yva": ys["val"]},
                    norm, args.out)
    train_minutes = (time.time() - t_all) / 60
    plot_curves(args.out, history)

    pva, pva_flips = predict_flips(model, xs["val"], norm, args.batch_size * 2, "  validation",
                                   args.flips)
    thr = choose_threshold(ys["val"].numpy(), pva)
    val_m = metrics_at(ys["val"].numpy(), pva, thr)
    pte, pte_flips = predict_flips(model, xs["test"], norm, args.batch_size * 2, "  test",
                                   args.flips)
    test_m = metrics_at(ys["test"].numpy(), pte, thr)
    test_m05 = metrics_at(ys["test"].numpy(), pte, 0.5)
    single_pass = None
    if args.flips != ["none"]:
        # The same network scored once per image (no flips), its threshold chosen the same way
        # on validation: what the flips add, for the log and the model card.
        # (Reused when "none" is among the flips; .get's default would run the pass anyway.)
        pva1 = pva_flips["none"] if "none" in pva_flips else predict(
            model, xs["val"], norm, args.batch_size * 2, "")
        pte1 = pte_flips["none"] if "none" in pte_flips else predict(
            model, xs["test"], norm, args.batch_size * 2, "")
        thr1 = choose_threshold(ys["val"].numpy(), pva1)
        single_pass = {"threshold": thr1, "validation": metrics_at(ys["val"].numpy(), pva1, thr1),
                       "test": metrics_at(ys["test"].numpy(), pte1, thr1)}
        log(f"without test-time flips: threshold {thr1:.4f}, validation accuracy "
            f"{single_pass['validation']['accuracy']:.4f} AUC {single_pass['validation']['roc_auc']:.4f}; "
            f"test accuracy {single_pass['test']['accuracy']:.4f} AUC "
            f"{single_pass['test']['roc_auc']:.4f}")
    log(f"threshold {thr:.4f} (max validation accuracy {val_m['accuracy']:.4f}"
        f"{'' if args.flips == ['none'] else ', test-time flips ' + ','.join(args.flips)})")
    log(f"TEST  n={test_m['n']} accuracy {test_m['accuracy']:.4f} roc_auc "
        f"{test_m['roc_auc']:.4f} precision {test_m['precision']:.4f} recall "
        f"{test_m['recall']:.4f} f1 {test_m['f1']:.4f} confusion {test_m['confusion']}")
    with open(os.path.join(args.out, "test_scores.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "p_abnormal"])
        for (p, li), s in zip(split["test"], pte):
            w.writerow([p, LABELS[li], f"{s:.6f}"])

    # Export with the normalisation folded into the metadata (the core applies it).
    training_data, lic = data_info(args.data)
    cmd = "scripts/train.py " + " ".join(shlex.quote(a) for a in argv)
    meta = {
        "name": args.name or f"{os.path.basename(os.path.normpath(args.data))}-{args.arch}",
        "labels": ",".join(LABELS), "input_size": f"{size}x{size}", "channels": channels,
        "scale": "255", "mean": ",".join(f"{m:g}" for m in mean),
        "std": ",".join(f"{s:g}" for s in std), "resize": "stretch", "output": "softmax",
        "threshold": f"{thr:.6f}",
        **({} if args.flips == ["none"] else {"test_time_flips": ",".join(args.flips)}),
        "description": "normal vs abnormal image classifier trained with scripts/train.py",
        "task": "binary anomaly classification (normal, abnormal)",
        "architecture": (f"{args.arch}" + (f", taps {args.taps}, GAP + linear"
                                           if args.arch == "keras-mobilenetv2" else "")),
        "backbone": provenance,
        "training_data": training_data,
        "license": (f"{lic} (weights trained on data under {lic})" if lic.startswith("CC")
                    else lic or "see the training data's license"),
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seed": str(args.seed),
        "command": cmd,
        "split": (f"stratified by label{' and grouped' if gid else ''}, seed {args.seed}: "
                  f"train {len(split['train'])}, "
                  f"val {len(split['val'])}, test {len(split['test'])}"
                  + (" (--smoke subsample)" if args.smoke else "")),
    }
    for k in ("accuracy", "roc_auc", "precision", "recall", "f1"):
        meta[f"metric.{k}"] = f"{test_m[k]:.4f}"
    meta["metric.n_test"] = str(test_m["n"])
    onnx_path, alm_path = export(model, meta, channels, size, args.out, args.f16)
    alm_bytes = os.path.getsize(alm_path)
    dp = check_alm(alm_path, model, split["test"])
    log(f"wrote {alm_path} ({alm_bytes / 1e6:.2f} MB); NumPy reference vs PyTorch on 6 test "
        f"images: max |dP(abnormal)| = {dp:.2e}")
    cpp = cpp_eval(alm_path, split["test"], args.out)
    if cpp is not None:
        log(f"anomalens eval (C++) on the test split: {json.dumps(cpp)}")
    write_golden(args.out, split["test"], pte, thr)
    torch.save(model.state_dict(), os.path.join(args.out, "best.pt"))
    result = {"args": vars(args), "command": cmd, "history": history,
              "threshold": thr, "validation": val_m, "test": test_m,
              "test_at_0.5": test_m05, "without_test_time_flips": single_pass, "alm": alm_path, "alm_bytes": alm_bytes,
              "onnx": onnx_path, "reference_max_abs_dp": dp, "cpp_eval": cpp,
              "train_minutes": train_minutes, "total_minutes": (time.time() - t_all) / 60,
              "params": n_params, "trainable_params": n_train, "backbone": provenance,
              "meta": meta}
    with open(os.path.join(args.out, "log.json"), "w") as f:
        json.dump(result, f, indent=1, default=str)
    log(f"done in {(time.time() - t_all) / 60:.1f} min; logs and plots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

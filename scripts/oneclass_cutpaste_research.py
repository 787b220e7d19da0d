#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One-class research: does CutPaste fine-tuning of the backbone raise PaDiM's ROC AUC on tiles?

CutPaste (Li et al., "CutPaste: Self-Supervised Learning for Anomaly Detection and Localization",
CVPR 2021) fine-tunes a pretrained network on NORMAL images only with a 3-way self-supervised
task; this script then feeds the fine-tuned backbone to the unchanged PaDiM feature path and
compares it with the original backbone.

Per seed (magnetic tiles, split by physical tile as scripts/oneclass_research.py `splits`,
fit fraction 0.7; held-out normal tiles and abnormal images are never trained on):

1. the fit split's normal images (224 x 224, x/255, as `load_image`) are preloaded once;
2. a fresh copy of nsfwjs' MobileNetV2 (`load_backbone`, outputs the three EXPANDS layers) gets
   a head: global average pool of block_13_expand_relu (576) -> linear -> 3 classes, and is
   trained on batches of --batch fit images, each in three versions:
   class 0: the image, randomly h/v flipped (the same flips feed the other two versions);
   class 1: CutPaste: a rectangle of 2-15 % of the image area, aspect 0.3-3.3 (log-uniform),
            copied from a random place of the same image, brightness/contrast jittered by
            +-10 % (one factor for the three channels: the tiles are grey), pasted elsewhere;
   class 2: CutPaste-scar: a 2-16 px x 10-25 px strip, rotated by -45..45 degrees, copied the
            same way.
   Adam, --lr for the trained backbone layers, 10x --lr for the head, cross entropy; the
   loss / accuracy of the last 50 steps is printed every 50 steps. Training stops after
   --minutes of wall-clock time (checked before each step) or --epochs epochs.
   BatchNorm: the port keeps Keras' BatchNormalization layers (nn.BatchNorm2d, not folded), so
   the whole network stays in eval mode: the pretrained moving statistics are used and never
   updated (batches of 24 on 2 cores would give noisy statistics); their affine parameters
   train with their block.
3. PaDiM features exactly as `anomalens fit`'s default and oneclass_aug_research.extract_pool
   "max": block 3/6/13 expand outputs, 3x3 average, max-pooled to 14 x 14, the C++ +-1/sqrt(128)
   projection of the 912 channels (`projection(912, 128)`, seed 1), stored as float16, for all
   normal and abnormal images, with the original backbone (once per run; compared against the
   extract_pool cache in --cache if there is one) and with each seed's fine-tuned backbone;
4. PaDiM under the two settings of `score_settings` ("defaults" and
   "smooth 0.7, shrinkage 0.1"), fit on the fit split, tested on the held-out normal tiles
   first and all abnormal images; one line per seed and backbone, then means.

--layers-to-train: "all" or "from:block_N" (blocks N..12 and block 13's expansion, the last
layers the PaDiM maps and the head use, train; the stem and blocks 0..N-1 are frozen). Default from:block_4: the stem and blocks 0-3 (112/56 px maps) are the costliest to
back-propagate through (a step trains about 4x faster without them, measured 2.1 s against
6-10 s for 24 images on 2 cores), so 10 minutes give some 250 steps instead of 60-100, and
their generic edge/texture filters, including the block_3_expand_relu map PaDiM uses, stay the
pretrained ones; blocks 4-13 (28 and 14 px maps) change both other PaDiM maps.

Runs are not bit-reproducible (the number of steps depends on the machine's speed).
Results are merged into --out (JSON, default build/oneclass_cutpaste.json): one entry per
configuration, seeds of several runs with the same configuration accumulate.

    /usr/bin/python3 scripts/oneclass_cutpaste_research.py --seeds 1 --minutes 10
    /usr/bin/python3 scripts/oneclass_cutpaste_research.py --seeds 2,3 --minutes 10
"""

import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from oneclass_research import DATA, EXPANDS, list_dir, load_backbone, load_image, splits  # noqa: E402
from oneclass_aug_research import format_results, pool_variant, projection, score_settings  # noqa: E402

torch.set_num_threads(2)  # after the imports: oneclass_research sets 1 when imported

SIZE = 224
GRID = SIZE // 16
CHANNELS = 144 + 192 + 576
PROJ = 128


# ---- data ----------------------------------------------------------------------------------

def preload(files):
    """N, 3, SIZE, SIZE uint8 (load_image's pixels: x/255 of these is exactly its output)."""
    out = torch.empty(len(files), 3, SIZE, SIZE, dtype=torch.uint8)
    for i, f in enumerate(files):
        x = np.rint(load_image(f, SIZE) * 255.0).astype(np.uint8)
        out[i] = torch.from_numpy(x).permute(2, 0, 1)
    return out


def as_input(u8):
    return (u8.float() / 255.0).contiguous(memory_format=torch.channels_last)


# ---- CutPaste ------------------------------------------------------------------------------

def jitter(patch, rng):
    """Brightness and contrast +-10 %, one factor for all channels (grey images stay grey)."""
    b, c = rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.1)
    m = patch.mean()
    return ((patch - m) * c + m) * b


def cutpaste(x, rng):
    """x: 3, H, W float in [0, 1]; a rectangle copied to another place."""
    _, H, W = x.shape
    area = rng.uniform(0.02, 0.15) * H * W
    aspect = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
    h = int(min(H - 1, max(2, round(math.sqrt(area / aspect)))))
    w = int(min(W - 1, max(2, round(math.sqrt(area * aspect)))))
    sy, sx = rng.integers(0, H - h + 1), rng.integers(0, W - w + 1)
    ty, tx = rng.integers(0, H - h + 1), rng.integers(0, W - w + 1)
    out = x.clone()
    out[:, ty:ty + h, tx:tx + w] = jitter(x[:, sy:sy + h, sx:sx + w], rng).clamp(0, 1)
    return out


def scar(x, rng):
    """x: 3, H, W; a thin strip (2-16 x 10-25 px, rotated -45..45 degrees) copied elsewhere."""
    _, H, W = x.shape
    sw, sl = rng.uniform(2, 16), rng.uniform(10, 25)
    th = math.radians(rng.uniform(-45, 45))
    r = int(math.ceil(0.5 * math.hypot(sw, sl))) + 1  # half the bounding box
    sy, sx = rng.integers(r, H - r), rng.integers(r, W - r)
    ty, tx = rng.integers(r, H - r), rng.integers(r, W - r)
    d = torch.arange(-r, r + 1, dtype=torch.float32)
    yy, xx = torch.meshgrid(d, d, indexing="ij")
    u = yy * math.cos(th) + xx * math.sin(th)    # along the strip
    v = -yy * math.sin(th) + xx * math.cos(th)   # across
    mask = ((u.abs() <= sl / 2) & (v.abs() <= sw / 2)).float()[None]
    src = jitter(x[:, sy - r:sy + r + 1, sx - r:sx + r + 1], rng).clamp(0, 1)
    out = x.clone()
    tgt = out[:, ty - r:ty + r + 1, tx - r:tx + r + 1]
    out[:, ty - r:ty + r + 1, tx - r:tx + r + 1] = mask * src + (1 - mask) * tgt
    return out


def make_batch(imgs_u8, idx, rng):
    """3 * len(idx) images (normal, cutpaste, scar of each) and their labels."""
    xs, ys = [], []
    for i in idx:
        x = imgs_u8[i].float() / 255.0
        if rng.random() < 0.5:
            x = torch.flip(x, [2])
        if rng.random() < 0.5:
            x = torch.flip(x, [1])
        xs += [x, cutpaste(x, rng), scar(x, rng)]
        ys += [0, 1, 2]
    return torch.stack(xs).contiguous(memory_format=torch.channels_last), torch.tensor(ys)


# ---- fine-tuning ---------------------------------------------------------------------------

def trainable(name, spec):
    if spec == "all":
        return True
    m = re.fullmatch(r"from:block_(\d+)", spec)
    if not m or int(m.group(1)) > 13:
        raise SystemExit(f"--layers-to-train: 'all' or 'from:block_N' (N <= 13), not {spec!r}")
    b = re.match(r"block_(\d+)_", name)
    return bool(b) and int(b.group(1)) >= int(m.group(1))


def finetune(imgs_u8, seed, a):
    """A fresh backbone fine-tuned with CutPaste on imgs_u8; returns (net, training summary)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(1000 + seed)
    net = load_backbone(EXPANDS).to(memory_format=torch.channels_last).eval()  # BN: eval, always
    names = []
    for name, m in net.layers.items():
        on = name in net.needed and trainable(name, a.layers_to_train)  # blocks 14-16 never run
        for p in m.parameters():
            p.requires_grad_(on)
        if on and any(True for _ in m.parameters()):
            names.append(name)
    head = nn.Linear(576, 3)
    params = [p for p in net.parameters() if p.requires_grad]
    print(f"  training {len(names)} layers ({names[0]} .. {names[-1]}), "
          f"{sum(p.numel() for p in params)} backbone parameters, {len(imgs_u8)} fit images", flush=True)
    opt = torch.optim.Adam([{"params": params, "lr": a.lr}, {"params": head.parameters(), "lr": a.lr * 10}])
    n = len(imgs_u8)
    steps_per_epoch = n // a.batch
    t0, step, hist, done = time.time(), 0, [], False
    for epoch in range(a.epochs):
        perm = rng.permutation(n)
        for s in range(steps_per_epoch):
            if time.time() - t0 >= a.minutes * 60:
                done = True
                break
            x, y = make_batch(imgs_u8, perm[s * a.batch:(s + 1) * a.batch], rng)
            logits = head(net(x)[2].mean((2, 3)))
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            hist.append((loss.item(), (logits.argmax(1) == y).float().mean().item()))
            if step % 50 == 0:
                h = np.array(hist[-50:])
                print(f"  step {step:4d} epoch {epoch + s / steps_per_epoch:5.2f} {time.time() - t0:5.0f}s "
                      f"loss {h[:, 0].mean():.3f} acc {h[:, 1].mean():.3f}", flush=True)
        if done:
            break
    secs = time.time() - t0
    h = np.array(hist[-50:]) if hist else np.zeros((1, 2))
    # The task's accuracy with the final weights, on fresh CutPaste samples of (up to 64) fit images.
    erng = np.random.default_rng(7)
    sel = erng.permutation(n)[:64]
    correct = 0
    with torch.no_grad():
        for s in range(0, len(sel), 16):
            x, y = make_batch(imgs_u8, sel[s:s + 16], erng)
            correct += int((head(net(x)[2].mean((2, 3))).argmax(1) == y).sum())
    summary = {"steps": step, "epochs": round(step / max(steps_per_epoch, 1), 2), "seconds": round(secs, 1),
               "last50_loss": round(float(h[:, 0].mean()), 4), "last50_acc": round(float(h[:, 1].mean()), 4),
               "final_acc_fit_samples": round(correct / (3 * len(sel)), 4)}
    print(f"  fine-tuned: {summary}", flush=True)
    for p in net.parameters():
        p.requires_grad_(False)
    return net, summary


# ---- features and PaDiM --------------------------------------------------------------------

def features(net, imgs_u8, tag, batch=16):
    """N, 14, 14, 128 float16: extract_pool's "max" identity features (see the docstring)."""
    w = torch.from_numpy(projection(CHANNELS, PROJ))
    out = np.empty((len(imgs_u8), GRID, GRID, PROJ), np.float16)
    t0 = time.time()
    with torch.no_grad():
        for s in range(0, len(imgs_u8), batch):
            e = pool_variant(list(net(as_input(imgs_u8[s:s + batch]))), GRID, "max")
            out[s:s + batch] = torch.einsum("nchw,pc->nhwp", e, w).numpy()
    print(f"  {tag} features: {len(imgs_u8)} images {time.time() - t0:.0f}s", flush=True)
    return out


def evaluate(feats, nn_, fit, res):
    f64 = lambda x: torch.from_numpy(np.asarray(x, np.float64))  # noqa: E731
    test = f64(np.concatenate([feats[:nn_][~fit], feats[nn_:]]))
    score_settings([f64(feats[:nn_][fit])], test, int((~fit).sum()), res)


def check_cache(base, cache):
    path = os.path.join(cache, f"ocpool_mt_{SIZE}_p{PROJ}_max.npy")
    if not os.path.exists(path):
        return None
    c = np.load(path, mmap_mode="r")
    if c.shape[0] != len(base):
        return None
    d = float(np.abs(np.asarray(c[:, 0], np.float32) - base.astype(np.float32)).max())
    print(f"  base features vs extract_pool cache {path}: max |diff| {d:.4g} "
          f"(feature scale {float(np.abs(base.astype(np.float32)).max()):.3g})", flush=True)
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--minutes", type=float, default=10.0, help="wall-clock fine-tuning budget per seed")
    ap.add_argument("--epochs", type=int, default=20, help="cap on fine-tuning epochs")
    ap.add_argument("--lr", type=float, default=1e-4, help="backbone learning rate (head: 10x)")
    ap.add_argument("--batch", type=int, default=8, help="fit images per step (x3 versions)")
    ap.add_argument("--layers-to-train", default="from:block_4", help="all | from:block_N")
    ap.add_argument("--fit-fraction", type=float, default=0.7)
    ap.add_argument("--cache", default="/tmp/oneclass_cache", help="extract_pool's cache, to check the base features")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "build", "oneclass_cutpaste.json"))
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    trainable("", a.layers_to_train)  # validates the option early
    if not (a.minutes > 0 and a.epochs >= 1 and a.lr > 0 and a.batch >= 1 and 0 < a.fit_fraction < 1):
        raise SystemExit("--minutes and --lr must be > 0, --epochs and --batch >= 1, --fit-fraction in (0, 1)")

    root = os.path.join(DATA, "magnetic_tile")
    normal, abnormal = list_dir(os.path.join(root, "normal")), list_dir(os.path.join(root, "abnormal"))
    nn_ = len(normal)
    t0 = time.time()
    imgs = preload(normal + abnormal)
    print(f"== mt: {nn_} normal, {len(abnormal)} abnormal, preloaded in {time.time() - t0:.0f}s; "
          f"torch threads {torch.get_num_threads()}", flush=True)
    base_net = load_backbone(EXPANDS).to(memory_format=torch.channels_last).eval()
    base = features(base_net, imgs, "base")
    del base_net
    cache_diff = check_cache(base, a.cache)

    config = {"minutes": a.minutes, "epochs_cap": a.epochs, "lr": a.lr, "head_lr": a.lr * 10, "batch": a.batch,
              "layers_to_train": a.layers_to_train, "fit_fraction": a.fit_fraction}
    key = json.dumps(config, sort_keys=True)
    runs = {}
    if os.path.exists(a.out):
        with open(a.out) as f:
            runs = json.load(f).get("runs", {})
    entry = runs.setdefault(key, {"config": config, "seeds": {}})
    totals = {"base": {}, "cutpaste": {}}
    for seed, fit in zip(seeds, splits("mt", nn_, normal, seeds, a.fit_fraction)):
        print(f"-- seed {seed}: {int(fit.sum())} fit normal images, {int((~fit).sum())} held-out normal, "
              f"{len(abnormal)} abnormal", flush=True)
        rb, rc = {}, {}
        evaluate(base, nn_, fit, rb)
        print(f"seed {seed} base      {format_results(rb)}", flush=True)
        net, summary = finetune(imgs[:nn_][torch.from_numpy(fit)], seed, a)
        evaluate(features(net, imgs, f"seed {seed} cutpaste"), nn_, fit, rc)
        del net
        print(f"seed {seed} base      {format_results(rb)}", flush=True)
        print(f"seed {seed} cutpaste  {format_results(rc)}", flush=True)
        for name, r in (("base", rb), ("cutpaste", rc)):
            for k, v in r.items():
                totals[name].setdefault(k, []).extend(v)
        entry["seeds"][str(seed)] = {"base": {k: v[0] for k, v in rb.items()},
                                     "cutpaste": {k: v[0] for k, v in rc.items()}, "training": summary,
                                     "base_vs_cache_max_abs_diff": cache_diff}
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump({"runs": runs}, f, indent=1)
    print(f"== means over seeds {a.seeds} (this run)")
    for name in ("base", "cutpaste"):
        print(f"{name:9s} {format_results(totals[name])}")
    stored = sorted(entry["seeds"], key=int)
    if len(stored) > len(seeds):
        print(f"== means over all stored seeds of this configuration ({','.join(stored)}), {a.out}")
    entry["means"] = {}
    for name in ("base", "cutpaste"):
        acc = {}
        for s in stored:
            for k, v in entry["seeds"][s][name].items():
                acc.setdefault(k, []).append(v)
        entry["means"][name] = {k: float(np.mean(v)) for k, v in acc.items()}
        if len(stored) > len(seeds):
            print(f"{name:9s} {format_results(acc)}")
    entry["means"]["seeds"] = [int(s) for s in stored]
    with open(a.out, "w") as f:
        json.dump({"runs": runs}, f, indent=1)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

// SPDX-License-Identifier: Apache-2.0
// Anomalens.fit() in node with the real wasm core (web/core/): fit a one-class model from
// synthetic normal scenes on a small random-weights backbone (tests/web/make_backbone.mjs),
// then scenes with an object added are flagged and fresh normal scenes are not; heatmaps peak
// on the object; the fitted bytes reload with create() and score the same; errors are clear.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import { InProcessWorker } from './in_process_worker.mjs';
import { allowFake, hasRealCore, realCorePath } from './harness.mjs';
import { makeBackboneAlm } from './make_backbone.mjs';

let Anomalens;
let heatmapToImageData;
const kW = 160;
const kH = 120;
const kBox = { x: 96, y: 24, w: 36, h: 36 };

// Node has no ImageData; the library only needs {data, width, height} of this class.
class FakeImageData {
  constructor(data, width, height) {
    this.data = data;
    this.width = width;
    this.height = height;
  }
}

before(async () => {
  globalThis.Worker = InProcessWorker;
  if (typeof globalThis.ImageData !== 'function') globalThis.ImageData = FakeImageData;
  ({ Anomalens, heatmapToImageData } = await import('../../web/anomalens.js'));
});

// A checkerboard "scene" with per-pixel noise from `seed`; `object` adds a bright square.
function scene(seed, object = false) {
  const d = new Uint8ClampedArray(kW * kH * 4);
  let x = seed >>> 0;
  for (let y = 0; y < kH; y++) {
    for (let i = 0; i < kW; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const v = ((Math.floor(i / 20) + Math.floor(y / 20)) % 2 ? 170 : 80) + ((x >>> 24) % 13) - 6;
      const p = (y * kW + i) * 4;
      const inBox = object && i >= kBox.x && i < kBox.x + kBox.w && y >= kBox.y && y < kBox.y + kBox.h;
      d[p] = inBox ? 240 : v;
      d[p + 1] = inBox ? 230 : v * 0.85;
      d[p + 2] = inBox ? 40 : v * 0.7;
      d[p + 3] = 255;
    }
  }
  return new ImageData(d, kW, kH);
}

function coreOptions() {
  return {
    coreUrl: pathToFileURL(realCorePath).href,
    wasmBinary: fs.readFileSync(realCorePath.replace(/\.js$/, '.wasm')),
  };
}

test('Anomalens.fit with the real core: flags the object, heatmap on it, reloads', async (t) => {
  if (!hasRealCore) {
    if (!allowFake) assert.fail(`needs ${realCorePath}: run ./scripts/build.sh`);
    t.skip('no real core');
    return;
  }
  const normal = Array.from({ length: 25 }, (_, i) => scene(i + 1));
  const progress = [];
  const clf = await Anomalens.fit({
    normal: [...normal, new Blob([new Uint8Array([1, 2, 3])])],
    base: makeBackboneAlm(),
    fpr: 0.05,
    onProgress: (p) => progress.push(p),
    ...coreOptions(),
  });
  const summary = clf.fitSummary();
  t.diagnostic(`fit: ${JSON.stringify(summary)}`);
  assert.equal(summary.fitImages + summary.holdoutImages, 25);
  assert.equal(summary.skipped.length, 1, 'the undecodable blob is skipped, not fatal');
  assert.equal(summary.skipped[0].code, 'decode_failed');
  assert.deepEqual(progress.map((p) => p.done), [...Array.from({ length: 26 }, (_, i) => i + 1), 26]);
  assert.equal(progress.at(-1).phase, 'finish');
  const info = clf.info();
  assert.equal(info.oneclass, true);
  assert.equal(info.meta.output, 'oneclass');

  const fresh = await Promise.all(Array.from({ length: 10 }, (_, i) => clf.classify(scene(1000 + i))));
  const withObject = await Promise.all(Array.from({ length: 10 }, (_, i) =>
    clf.classify(scene(2000 + i, true), { heatmap: true })));
  const flaggedFresh = fresh.filter((r) => r.label === 'abnormal').length;
  t.diagnostic(`fresh normal: ${flaggedFresh}/10 flagged, distances ${fresh.map((r) => r.distance.toFixed(1)).join(' ')}; ` +
    `with object: distances ${withObject.map((r) => r.distance.toFixed(1)).join(' ')}; threshold ${summary.threshold}`);
  assert.ok(flaggedFresh <= 2, `${flaggedFresh} of 10 fresh normal scenes flagged`);
  for (const r of withObject) assert.equal(r.label, 'abnormal');
  assert.ok(Math.min(...withObject.map((r) => r.distance)) > Math.max(...fresh.map((r) => r.distance)));

  // Heatmap: per-pixel, at the image's size, peaking on the object (one grid cell of slack).
  for (const r of withObject) {
    const h = r.heatmap;
    assert.equal(h.width, kW);
    assert.equal(h.height, kH);
    assert.ok(h.data instanceof Float32Array && h.data.length === kW * kH);
    // Scores saturate at 1 well past the threshold, so take the centroid of the hottest pixels.
    let peak = 0;
    for (const v of h.data) peak = Math.max(peak, v);
    let cx = 0;
    let cy = 0;
    let n = 0;
    h.data.forEach((v, i) => {
      if (v >= peak - 0.01) {
        cx += i % kW;
        cy += Math.floor(i / kW);
        n++;
      }
    });
    cx /= n;
    cy /= n;
    // Features come from a coarse grid whose receptive fields reach past the object: allow
    // one grid cell of slack around it.
    const sx = kW / r.anomalyMap.width;
    const sy = kH / r.anomalyMap.height;
    assert.ok(cx >= kBox.x - sx && cx < kBox.x + kBox.w + sx && cy >= kBox.y - sy &&
      cy < kBox.y + kBox.h + sy, `heatmap peak centred at (${cx}, ${cy}), outside the object (+- one cell)`);
    let inside = 0;
    let outside = 0;
    for (let y = 0; y < kH; y++) {
      for (let x = 0; x < kW; x++) {
        const inBox = x >= kBox.x && x < kBox.x + kBox.w && y >= kBox.y && y < kBox.y + kBox.h;
        if (inBox) inside += h.data[y * kW + x];
        else outside += h.data[y * kW + x];
      }
    }
    inside /= kBox.w * kBox.h;
    outside /= kW * kH - kBox.w * kBox.h;
    assert.ok(inside > 2 * outside, `heatmap mean ${inside} on the object vs ${outside} elsewhere`);
    assert.ok(r.anomalyMap.width > 0 && r.anomalyMap.data.length === r.anomalyMap.width * r.anomalyMap.height);
  }
  assert.equal(fresh[0].heatmap, undefined, 'no heatmap unless asked');
  const overlay = heatmapToImageData(withObject[0].heatmap);
  assert.equal(overlay.data.length, kW * kH * 4);
  const alphaAt = (x, y) => overlay.data[(y * kW + x) * 4 + 3];
  assert.ok(alphaAt(kBox.x + 18, kBox.y + 18) > alphaAt(10, 100), 'overlay is stronger on the object');

  // The bytes reload with create() (same model, same scores) and carry the threshold.
  const bytes = clf.modelBytes();
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), 'ALM1');
  const again = await Anomalens.create({ model: bytes, ...coreOptions() });
  const r1 = await again.classify(scene(2000, true));
  assert.equal(r1.score, withObject[0].score);
  assert.equal(r1.distance, withObject[0].distance);
  await again.close();

  // A fitted model is itself a valid base: refitting with a few abnormal examples.
  const refit = await Anomalens.fit({
    normal, abnormal: Array.from({ length: 3 }, (_, i) => scene(3000 + i, true)), base: bytes, ...coreOptions(),
  });
  assert.equal(refit.fitSummary().abnormalImages, 3);
  assert.equal((await refit.classify(scene(4000, true))).label, 'abnormal');
  await refit.close();
  await clf.close();
});

test('Anomalens.fit: clear errors for a bad base, too few images, a bad fpr', async (t) => {
  if (!hasRealCore) {
    t.skip('no real core');
    return;
  }
  const normal = Array.from({ length: 4 }, (_, i) => scene(i + 1));
  await assert.rejects(Anomalens.fit({ normal, base: new Uint8Array(64), ...coreOptions() }), (e) => {
    t.diagnostic(`bad base: ${e.code}: ${e.message}`);
    return e.code === 'invalid_model' && e.phase === 'base';
  });
  await assert.rejects(Anomalens.fit({ normal: normal.slice(0, 1), base: makeBackboneAlm(), ...coreOptions() }),
    { code: 'invalid_argument' });
  await assert.rejects(Anomalens.fit({ normal, base: makeBackboneAlm(), fpr: 2, ...coreOptions() }),
    { code: 'invalid_argument' });
  await assert.rejects(Anomalens.fit({ normal }), { code: 'invalid_argument' });
  // Every image unreadable: the fit fails and says why.
  await assert.rejects(Anomalens.fit({
    normal: [new Blob([new Uint8Array(9)]), new Blob([new Uint8Array(9)])], base: makeBackboneAlm(), ...coreOptions(),
  }), (e) => {
    t.diagnostic(`no readable images: ${e.code}: ${e.message}`);
    return /skipped/.test(e.message);
  });
});

test('Anomalens.fit passes the fit options to the core, and the core checks them', async (t) => {
  if (!hasRealCore) {
    if (!allowFake) assert.fail(`needs ${realCorePath}: run ./scripts/build.sh`);
    t.skip('no real core');
    return;
  }
  const normal = Array.from({ length: 12 }, (_, i) => scene(i + 100));
  const clf = await Anomalens.fit({ normal, base: makeBackboneAlm(), pool: 'avg', smooth: 0.7,
    shrinkage: 0.1, augment: 'flips', ...coreOptions() });
  const scored = await clf.classify(scene(500, true));
  assert.ok(Number.isFinite(scored.score));
  // Statistics stored as halves by default; 'f32' on request: the section doubles.
  const half = clf.fitSummary();
  assert.equal(half.storage, 'f16');
  await clf.close();
  const full = await Anomalens.fit({ normal, base: makeBackboneAlm(), pool: 'avg', smooth: 0.7,
    shrinkage: 0.1, augment: 'flips', storage: 'f32', ...coreOptions() });
  const fullSummary = full.fitSummary();
  assert.equal(fullSummary.storage, 'f32');
  const fullScored = await full.classify(scene(500, true));
  t.diagnostic(`model bytes f16 ${half.modelBytes}, f32 ${fullSummary.modelBytes}; score ${scored.score} vs ${fullScored.score}`);
  assert.ok(fullSummary.modelBytes > 1.8 * half.modelBytes && fullSummary.modelBytes < 2 * half.modelBytes,
    `${fullSummary.modelBytes} vs ${half.modelBytes}`);
  assert.ok(Math.abs(fullScored.distance - scored.distance) <= 3e-3 * fullScored.distance,
    `distance ${scored.distance} (f16) vs ${fullScored.distance} (f32)`);
  await full.close();
  for (const [bad, pattern] of [[{ augment: 'sideways' }, /augment "sideways"/], [{ pool: 'median' }, /pool "median"/],
    [{ smooth: -1 }, /smooth/], [{ shrinkage: 1000 }, /shrinkage/],
    [{ dim: -1 }, /dim -1.*\[0, 4096\]/], [{ dim: 5000 }, /dim 5000/], [{ dim: 'wide' }, /dim/],
    [{ storage: 'f8' }, /storage "f8": expected f16 or f32/]]) {
    await assert.rejects(Anomalens.fit({ normal, base: makeBackboneAlm(), ...bad, ...coreOptions() }),
      (e) => e.code === 'invalid_argument' && pattern.test(e.message), JSON.stringify(bad));
  }
});

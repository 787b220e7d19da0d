// SPDX-License-Identifier: Apache-2.0
// Webcam tests: Chromium's fake camera plays a y4m made from one known ELPV image. The
// snapshot verdict must equal the CLI verdict for that image, and watch mode must keep
// updating the overlay (and raise the alert when the frame is abnormal).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  allowFake, artifactsDir, cliClassify, defaultModelPath, foreignRequests, hasCli, hasRealCore,
  launch, listImages, makeY4m, openPage, screenshot, startServer, waitForResults,
} from './harness.mjs';

const modelPath = defaultModelPath();
let srv;
let browser;
let image;
let reference = null;  // CLI record for the image, when the CLI exists

before(async () => {
  assert.ok(modelPath, 'no model available');
  fs.mkdirSync(artifactsDir, { recursive: true });
  // Pick the image the model is most sure about, so camera colour conversion (YUV 4:2:0)
  // cannot flip the verdict; prefer an abnormal one to exercise the alert.
  const candidates = [...listImages('abnormal', 90).slice(30), ...listImages('normal', 40).slice(30)];
  if (hasCli && hasRealCore) {
    const cli = cliClassify(modelPath, candidates);
    const ranked = candidates.map((f) => cli.get(path.basename(f)))
      .filter((r) => r && !r.error)
      .sort((a, b) => Math.abs(b.score - b.threshold) - Math.abs(a.score - a.threshold));
    // The threshold slider (0..1) must be able to flip the verdict later: an abnormal frame
    // needs a score well below 1 (a threshold above it must still be <= 1).
    const flippable = ranked.filter((r) => r.label === 'normal' || r.score < 0.95);
    const abnormal = flippable.find((r) => r.label === 'abnormal' && Math.abs(r.score - r.threshold) > 0.2);
    reference = abnormal ?? flippable[0] ?? ranked[0];
    image = candidates.find((f) => path.basename(f) === path.basename(reference.file));
  } else {
    if (!allowFake) assert.fail('the wasm core or the CLI is missing: camera verdicts cannot be checked');
    image = candidates[0];
  }
  const y4m = makeY4m(image, path.join(artifactsDir, 'camera.y4m'));
  srv = await startServer(modelPath);
  browser = await launch({ camera: y4m });
});

after(async () => {
  await browser?.close().catch(() => {});
  await srv?.close();
});

test('snapshot and watch mode with a fake camera', async (t) => {
  const s = await openPage(browser, srv);
  const { page } = s;
  await page.waitForSelector('body[data-model-state="ready"]', { timeout: 60000 });
  await page.click('#cam-start-btn');
  await page.waitForSelector('#camera[data-state="on"]');
  await page.waitForFunction(() => document.getElementById('video').readyState >= 2);
  assert.match(await page.textContent('#cam-message'), /Camera on/);

  await page.click('#cam-snap-btn');
  const [snap] = await waitForResults(page, 1);
  assert.equal(snap.file, 'snapshot-1.png');
  assert.notEqual(snap.verdict, 'error', snap.text);
  t.diagnostic(`image ${path.basename(image)}: snapshot score ${snap.score.toFixed(4)}` +
    (reference ? `, CLI score ${reference.score.toFixed(4)} (${reference.label})` : ''));
  if (reference) {
    assert.equal(snap.verdict, reference.label);
    // The camera path goes through YUV 4:2:0, so scores agree only roughly.
    assert.ok(Math.abs(snap.score - reference.score) < 0.25, `snapshot ${snap.score} vs CLI ${reference.score}`);
  } else {
    t.diagnostic('SKIPPED CLI comparison: wasm core or CLI missing (ANOMALENS_WEB_ALLOW_FAKE=1)');
  }

  await page.click('#cam-watch-btn');
  assert.equal(await page.getAttribute('#cam-watch-btn', 'aria-pressed'), 'true');
  await page.waitForFunction(() => Number(document.getElementById('overlay').dataset.frames) >= 2, null, { timeout: 30000 });
  const t0 = Date.now();
  const f0 = Number(await page.getAttribute('#overlay', 'data-frames'));
  await page.waitForFunction((n) => Number(document.getElementById('overlay').dataset.frames) >= n + 4, f0, { timeout: 30000 });
  const fps = (Number(await page.getAttribute('#overlay', 'data-frames')) - f0) / ((Date.now() - t0) / 1000);
  t.diagnostic(`watch mode: ${fps.toFixed(1)} frames/s`);
  const overlayVerdict = await page.getAttribute('#overlay', 'data-verdict');
  // (The fake core scores encoded bytes, not pixels, so only the real core can be held to this.)
  if (reference) assert.equal(overlayVerdict, snap.verdict, 'watch verdict matches the snapshot of the same scene');
  assert.match(await page.textContent('#overlay'), overlayVerdict === 'abnormal' ? /ABNORMAL/ : /NORMAL/);
  const alertVisible = await page.isVisible('#cam-alert');
  assert.equal(alertVisible, overlayVerdict === 'abnormal', 'alert shown exactly when the frame is abnormal');
  if (alertVisible) assert.match(await page.textContent('#cam-alert'), /Abnormal frame/);
  await screenshot(page, 'camera-watch.png');

  // Moving the threshold past the frame's score flips the live verdict and the alert.
  const score = Number(await page.getAttribute('#overlay', 'data-score'));
  const flipped = overlayVerdict === 'abnormal' ? Math.min(1, Math.ceil(score * 100 + 1) / 100) : 0;
  await page.$eval('#threshold', (el, v) => {
    el.value = v;
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, String(flipped));
  await page.waitForFunction((v) => document.getElementById('overlay').dataset.verdict !== v, overlayVerdict);
  // The alert follows the live verdict: shown for abnormal frames, gone for normal ones.
  await page.waitForFunction((v) => document.getElementById('cam-alert').hidden === (v === 'abnormal'), overlayVerdict);
  if (overlayVerdict === 'normal') {
    assert.match(await page.textContent('#cam-alert'), /Abnormal frame/);
    await screenshot(page, 'camera-alert.png');
  }

  await page.click('#cam-watch-btn');
  await page.click('#cam-stop-btn');
  await page.waitForSelector('#camera[data-state="off"]');
  const foreign = foreignRequests(s.requests, srv);
  assert.deepEqual(foreign, []);
  await s.context.close();
});

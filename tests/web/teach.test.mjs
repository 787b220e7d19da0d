// SPDX-License-Identifier: Apache-2.0
// The Teach panel in Chromium: learn a scene from the fake webcam (a y4m made from an ELPV
// image with per-frame noise), fit in the worker, then a frame with an object added is flagged
// abnormal (dropped image and live camera) while the original scene is not; the heatmap toggle
// shows and hides the overlays; the taught model is downloadable and reloads from IndexedDB
// after a browser restart. Base: a small random-weights CNN (tests/web/make_backbone.mjs).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import {
  allowFake, artifactsDir, dropFiles, foreignRequests, hasRealCore, listImages, screenshot, startServer,
  waitForResults,
} from './harness.mjs';
import { writeBackboneAlm } from './make_backbone.mjs';

const kBox = { x: 110, y: 100, w: 80, h: 80 };  // the object, on a 300x300 ELPV cell
let srv;
let dir;
let userDataDir;
let files;

function ffmpeg(args) {
  const r = spawnSync('ffmpeg', ['-y', '-loglevel', 'error', ...args]);
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')} failed: ${r.stderr}`);
}

// 150 frames (5 s) of the image with temporal noise (seeded), optionally with a filled square:
// longer than the two presses of "Learn this scene" (about 4 s), so their frames rarely repeat
// (with 2 s they did; the app skips exact repeats, see the still-camera test).
function clip(image, out, seed, object) {
  const filters = [`noise=alls=6:allf=t+u:all_seed=${seed}`];
  if (object) filters.push(`drawbox=x=${kBox.x}:y=${kBox.y}:w=${kBox.w}:h=${kBox.h}:color=white@1:t=fill`);
  filters.push('format=yuv420p');
  ffmpeg(['-loop', '1', '-i', image, '-frames:v', '150', '-vf', filters.join(','), out]);
  return out;
}

// One frame of a clip as PNG (what a user would upload: same scene, unseen noise).
function frame(y4m, out) {
  ffmpeg(['-i', y4m, '-vf', 'select=eq(n\\,4)', '-frames:v', '1', out]);
  return out;
}

const kArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'];

// A persistent profile, so IndexedDB survives closing the browser.
async function launchWithCamera(y4m, profile = userDataDir) {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    args: [...kArgs, `--use-file-for-fake-video-capture=${y4m}`],
    viewport: { width: 1280, height: 1000 },
    acceptDownloads: true,
    serviceWorkers: 'block',
  });
  const requests = [];
  const problems = [];
  context.on('request', (req) => requests.push(req.url()));
  const page = context.pages()[0] ?? await context.newPage();
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  return { context, page, requests, problems };
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anomalens-teach-'));
  userDataDir = path.join(dir, 'profile');
  fs.mkdirSync(artifactsDir, { recursive: true });
  const image = listImages('normal', 3)[2];
  files = {
    base: writeBackboneAlm(path.join(dir, 'base.alm')),
    sceneCam: clip(image, path.join(dir, 'scene.y4m'), 1, false),
    objectCam: clip(image, path.join(dir, 'object.y4m'), 2, true),
    objectProbe: frame(clip(image, path.join(dir, 'object3.y4m'), 3, true), path.join(dir, 'object-probe.png')),
  };
  srv = await startServer(files.base);
});

after(async () => {
  await srv?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

// Watches n new camera frames; returns their {verdict, score}.
async function watchFrames(page, n) {
  const out = [];
  let seen = Number(await page.getAttribute('#overlay', 'data-frames'));
  while (out.length < n) {
    await page.waitForFunction((f) => Number(document.getElementById('overlay').dataset.frames) > f, seen, { timeout: 30000 });
    const o = await page.$eval('#overlay', (el) => ({ frames: Number(el.dataset.frames), verdict: el.dataset.verdict, score: Number(el.dataset.score) }));
    seen = o.frames;
    out.push(o);
  }
  return out;
}

async function heatmapCentroid(page, selector) {
  // Centroid of the most opaque overlay pixels, in the canvas's own pixels.
  return page.$eval(selector, (canvas) => {
    const { data, width, height } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    let peak = 0;
    for (let i = 3; i < data.length; i += 4) peak = Math.max(peak, data[i]);
    let x = 0;
    let y = 0;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) {
      if (data[i] >= peak - 2) {
        const p = (i - 3) / 4;
        x += p % width;
        y += Math.floor(p / width);
        n++;
      }
    }
    return { x: x / n, y: y / n, width, height, peak };
  });
}

test('teach a scene from the camera, flag an object, heatmaps, IndexedDB', async (t) => {
  if (!hasRealCore) {
    if (!allowFake) assert.fail('the wasm core is missing: run ./scripts/build.sh');
    t.skip('needs the real core');
    return;
  }
  let s = null;
  t.after(() => s?.context.close().catch(() => {}));
  // --- Browser 1: the camera shows the plain scene.
  s = await launchWithCamera(files.sceneCam);
  let { page } = s;
  await page.goto(`${srv.url}/`);
  await page.waitForSelector('body[data-model-state="ready"]', { timeout: 60000 });
  assert.equal(await page.getAttribute('body', 'data-oneclass'), 'false');
  assert.equal(await page.isDisabled('#teach-fit-btn'), true, 'nothing to fit yet');
  assert.match(await page.textContent('#teach-base'), /random-cnn/);

  await page.click('#cam-start-btn');
  await page.waitForSelector('#camera[data-state="on"]');
  await page.waitForFunction(() => document.getElementById('video').readyState >= 2);
  await page.click('#teach-cam-btn');
  await page.waitForSelector('#teach[data-normal="20"]', { timeout: 30000 });
  await page.waitForFunction(() => !document.getElementById('teach-cam-btn').disabled);
  await page.click('#teach-cam-btn');
  await page.waitForSelector('#teach[data-normal="40"]', { timeout: 30000 });
  assert.equal(await page.textContent('#teach-normal-count'), '40');
  // Exact repeats of earlier frames are skipped (repeats among the held-out frames tighten the
  // threshold); the fake camera loops every 5 s, so there should be few or none.
  t.diagnostic(`exact repeats skipped by the second press: ${await page.getAttribute('#teach', 'data-repeats')}`);

  await page.click('#teach-fit-btn');
  await page.waitForSelector('#teach[data-state="done"], #teach[data-state="error"]', { timeout: 120000 });
  const status = await page.textContent('#teach-status');
  t.diagnostic(`teach status: ${status}`);
  assert.equal(await page.getAttribute('#teach', 'data-state'), 'done', status);
  assert.match(status, /Fitted on 32 normal image\(s\), 8 held out/);
  assert.match(status, /Threshold: distance \d/);
  assert.match(status, /extrapolated from 8: too few to measure 1\.0% directly/);
  assert.match(status, /Saved in this browser/);
  assert.ok(Number(await page.getAttribute('#teach', 'data-threshold')) > 0);
  assert.equal(await page.getAttribute('#teach', 'data-progress'), '40');
  assert.equal(await page.getAttribute('body', 'data-model-origin'), 'taught');
  assert.equal(await page.getAttribute('body', 'data-oneclass'), 'true');
  const taughtName = await page.getAttribute('body', 'data-model');
  assert.match(await page.textContent('#model-status'), /taught/);
  assert.equal(await page.isEnabled('#heatmap-toggle'), true);

  // A snapshot of the scene (a camera frame as an image) and an uploaded picture of the scene
  // with the object drawn in (ffmpeg, other noise).
  // Three snapshots of the scene: none may be flagged. (With the threshold just above the
  // largest of the 8 held-out distances, as before, 1 in 9 unseen frames was; CI caught it.)
  for (let i = 1; i <= 3; i++) {
    await page.click('#cam-snap-btn');
    await waitForResults(page, i);
  }
  await dropFiles(page, '#dropzone', [files.objectProbe]);
  const results = await waitForResults(page, 4);
  const byName = Object.fromEntries(results.map((r) => [r.file, r]));
  const snaps = [1, 2, 3].map((i) => byName[`snapshot-${i}.png`]);
  t.diagnostic(`scene snapshots ${snaps.map((r) => r.score.toFixed(4)).join(' ')}, object picture ${byName['object-probe.png'].score}`);
  assert.deepEqual(snaps.map((r) => r.verdict), ['normal', 'normal', 'normal'], 'the original scene is not flagged');
  assert.equal(byName['object-probe.png'].verdict, 'abnormal', 'the scene with an object is flagged');

  // Heatmap overlays on the results: shown, centred on the object, hidden by the toggle.
  const objectHeat = '#gallery .result[data-file="object-probe.png"] canvas.heatmap';
  await page.waitForSelector(objectHeat);
  assert.equal(await page.isVisible(objectHeat), true);
  const c = await heatmapCentroid(page, objectHeat);
  t.diagnostic(`object heatmap centroid (${c.x.toFixed(0)}, ${c.y.toFixed(0)}) of ${c.width}x${c.height}`);
  assert.equal(c.width, 300);
  const cell = 300 / 8;  // the backbone's 1/16 grid at 128x128 input
  assert.ok(c.x > kBox.x - cell && c.x < kBox.x + kBox.w + cell && c.y > kBox.y - cell &&
    c.y < kBox.y + kBox.h + cell, `heatmap centred at (${c.x}, ${c.y}), not on the object`);
  await screenshot(page, 'teach-results.png');
  await page.click('#heatmap-toggle');
  assert.equal(await page.isVisible(objectHeat), false, 'toggle off hides the overlay');
  await page.click('#heatmap-toggle');
  assert.equal(await page.isVisible(objectHeat), true, 'toggle on shows it again');

  // Live camera on the original scene: normal, with the heatmap overlay.
  await page.click('#cam-watch-btn');
  // The threshold targets 1% false alarms (extrapolated from 8 held-out frames): at most one
  // of 12 frames of the original scene may be flagged.
  const sceneFrames = await watchFrames(page, 12);
  const flagged = sceneFrames.filter((f) => f.verdict === 'abnormal').length;
  t.diagnostic(`live scene: ${flagged}/12 flagged; scores ${sceneFrames.map((f) => f.score.toFixed(3)).join(' ')}`);
  assert.ok(flagged <= 1, `${flagged} of 12 frames of the original scene flagged`);
  await page.waitForSelector('#cam-heatmap:not([hidden])');
  await page.click('#heatmap-toggle');
  assert.equal(await page.isVisible('#cam-heatmap'), false);
  await page.click('#heatmap-toggle');
  await page.click('#cam-watch-btn');

  // Download the .alm.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#teach-download-btn')]);
  const saved = path.join(dir, await download.suggestedFilename());
  await download.saveAs(saved);
  assert.match(path.basename(saved), /\.alm$/);
  assert.equal(fs.readFileSync(saved).subarray(0, 4).toString('latin1'), 'ALM1');
  assert.deepEqual(foreignRequests(s.requests, srv), []);
  assert.deepEqual(s.problems, []);
  await s.context.close();
  s = null;

  // --- Browser 2 (same profile): the camera now shows the scene with the object.
  s = await launchWithCamera(files.objectCam);
  ({ page } = s);
  await page.goto(`${srv.url}/`);
  await page.waitForSelector('body[data-model-state="ready"]', { timeout: 60000 });
  assert.equal(await page.getAttribute('body', 'data-model-origin'), 'taught', 'reloaded from IndexedDB');
  assert.equal(await page.getAttribute('body', 'data-model'), taughtName);
  assert.equal(await page.getAttribute('body', 'data-oneclass'), 'true');
  await page.click('#cam-start-btn');
  await page.waitForSelector('#camera[data-state="on"]');
  await page.click('#cam-watch-btn');
  const objectFrames = await watchFrames(page, 4);
  t.diagnostic(`live object scores: ${objectFrames.map((f) => f.score.toFixed(3)).join(' ')}`);
  for (const f of objectFrames) assert.equal(f.verdict, 'abnormal', 'the object is flagged in every frame');
  await page.waitForSelector('#cam-heatmap:not([hidden])');
  const live = await heatmapCentroid(page, '#cam-heatmap');
  assert.ok(live.x > kBox.x - cell && live.x < kBox.x + kBox.w + cell && live.y > kBox.y - cell &&
    live.y < kBox.y + kBox.h + cell, `live heatmap centred at (${live.x}, ${live.y}), not on the object`);
  await screenshot(page, 'teach-camera.png');
  await page.click('#cam-watch-btn');

  // Forgetting the taught model goes back to the default one.
  await page.click('#teach-forget-btn');
  await page.waitForSelector('body[data-model-origin="default"][data-model-state="ready"]');
  assert.deepEqual(foreignRequests(s.requests, srv), []);
  assert.deepEqual(s.problems, []);
  await s.context.close();
});

test('teach refuses an unusable base with a clear message', async (t) => {
  if (!hasRealCore) {
    t.skip('needs the real core');
    return;
  }
  const s = await launchWithCamera(files.sceneCam, path.join(dir, 'profile-base'));
  t.after(() => s.context.close().catch(() => {}));
  const { page } = s;
  await page.goto(`${srv.url}/`);
  await page.waitForSelector('body[data-model-state="ready"]', { timeout: 60000 });
  await page.setInputFiles('#teach-base-input', { name: 'broken.alm', mimeType: 'application/octet-stream',
    buffer: Buffer.from('ALM1 not really a model') });
  assert.match(await page.textContent('#teach-base'), /broken\.alm/);
  await page.setInputFiles('#teach-normal-input', [files.objectProbe, files.objectProbe]);
  await page.waitForSelector('#teach[data-normal="2"]');
  await page.click('#teach-fit-btn');
  await page.waitForSelector('#teach[data-state="error"]', { timeout: 60000 });
  const msg = await page.textContent('#teach-status');
  t.diagnostic(msg);
  assert.match(msg, /"broken\.alm" cannot serve as a base for teaching: .+Choose a base \.alm/);
  assert.equal(await page.getAttribute('body', 'data-model-origin'), 'default', 'the model in use is unchanged');
});

test('"Learn this scene" takes only distinct frames; a camera whose picture never changes is reported', async (t) => {
  const still = path.join(dir, 'still.y4m');  // the same frame over and over: no noise
  ffmpeg(['-loop', '1', '-i', listImages('normal')[0], '-frames:v', '10', '-vf', 'format=yuv420p', still]);
  const s = await launchWithCamera(still, path.join(dir, 'profile-still'));
  try {
    const { page } = s;
    await page.goto(`${srv.url}/`);
    await page.waitForSelector('body[data-model-state="ready"]', { timeout: 60000 });
    await page.click('#cam-start-btn');
    await page.waitForSelector('#camera[data-state="on"]');
    await page.waitForFunction(() => document.getElementById('video').readyState >= 2);
    await page.click('#teach-cam-btn');
    await page.waitForSelector('#teach[data-repeats]', { timeout: 30000 });
    const msg = await page.textContent('#cam-message');
    t.diagnostic(msg);
    assert.equal(await page.textContent('#teach-normal-count'), '1', 'one frame taken, its repeats skipped');
    assert.equal(await page.getAttribute('#teach', 'data-repeats'), '80');
    assert.match(msg, /picture is not changing: 1 new frame\(s\) of 20 taken, 80 exact repeat\(s\) skipped/);
  } finally {
    await s.context.close();
  }
});

test('a saved taught model that no longer loads: the default model runs, downloaded once', async () => {
  const s = await launchWithCamera(files.sceneCam, path.join(dir, 'profile-broken'));
  try {
    const { page } = s;
    await page.goto(`${srv.url}/`);
    await page.waitForSelector('body[data-model-state="ready"]', { timeout: 60000 });
    // Bytes that are not a model under the app's taught key, as a damaged profile might hold.
    await page.evaluate(() => new Promise((resolve, reject) => {
      const open = indexedDB.open('anomalens', 1);
      open.onupgradeneeded = () => open.result.createObjectStore('models');
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const tx = open.result.transaction('models', 'readwrite');
        tx.objectStore('models').put({ name: 'broken', bytes: new TextEncoder().encode('ALM1 not a model').buffer },
          'taught');
        tx.oncomplete = () => { open.result.close(); resolve(); };
        tx.onerror = () => reject(tx.error);
      };
    }));
    const before = srv.requests.length;
    await page.reload();
    await page.waitForSelector('body[data-model-origin="default"][data-model-state="ready"]', { timeout: 60000 });
    const fetches = srv.requests.slice(before).filter((r) => r.path === '/models/default.alm').length;
    assert.equal(fetches, 1, 'the default model is downloaded once: the start-up download is reused');
    assert.match(await page.textContent('#model-status'), /^Model: /);
  } finally {
    await s.context.close();
  }
});

// SPDX-License-Identifier: Apache-2.0
// Browser tests of the web app, the embed example and the custom element, in Debian Chromium
// (playwright-core), against the native CLI as reference.
//
//   node --test --test-reporter=spec tests/web/
//
// Needs web/core/ (./scripts/build.sh), build/native/anomalens and a model (models/default.alm,
// else build/fixtures/allops.alm). Screenshots go to build/test-artifacts/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  allowFake, artifactsDir, cliClassify, cliPath, defaultModelPath, dropFiles, dropPaths, foreignRequests,
  hasCli, hasRealCore, launch, listImages, openPage, otherModelPath, readResults, screenshot,
  startServer, waitForResults,
} from './harness.mjs';

const modelPath = defaultModelPath();
const compare = hasCli && hasRealCore;
let srv;
let browser;
let tmp;
const openContexts = [];

function requireReference(t) {
  if (compare) return true;
  const why = !hasRealCore ? 'the wasm core (web/core/) is missing' : `the CLI ${cliPath} is missing`;
  if (!allowFake) assert.fail(`${why}: the browser verdicts cannot be checked against the CLI`);
  t.diagnostic(`SKIPPED CLI comparison: ${why} (ANOMALENS_WEB_ALLOW_FAKE=1)`);
  return false;
}

/** Asserts browser results equal CLI records (verdict; score within 1e-3). */
function assertMatchesCli(results, cli, threshold) {
  assert.ok(results.length > 0);
  for (const r of results) {
    const ref = cli.get(r.file);
    assert.ok(ref, `CLI has no record for ${r.file}`);
    if (ref.error) {
      assert.equal(r.verdict, 'error', `${r.file}: CLI failed (${ref.error}), browser said ${r.verdict}`);
      continue;
    }
    assert.notEqual(r.verdict, 'error', `${r.file}: browser failed: ${r.text}`);
    assert.ok(Math.abs(r.score - ref.score) < 1e-3, `${r.file}: browser score ${r.score}, CLI ${ref.score}`);
    const t = threshold ?? ref.threshold;
    if (Math.abs(ref.score - t) > 1e-3) {
      assert.equal(r.verdict, ref.label, `${r.file}: browser ${r.verdict} (score ${r.score}), CLI ${ref.label} (${ref.score})`);
    }
  }
}

async function newPage(t, options) {
  const session = await openPage(browser, srv, options);
  openContexts.push(session.context);
  t.after(() => session.context.close().catch(() => {}));
  await session.page.bringToFront();
  if (options?.path !== null) {
    await session.page.waitForSelector('body[data-model-state="ready"]', { timeout: 60000 });
  }
  return session;
}

async function assertClean(t, session) {
  const foreign = foreignRequests(session.requests, srv);
  assert.deepEqual(foreign, [], `requests outside the test server: ${foreign.join(', ')}`);
  const csp = await session.page.evaluate(() => window.__cspViolations ?? []).catch(() => []);
  assert.deepEqual(csp, [], `CSP violations: ${csp.join('; ')}`);
  const problems = session.problems.filter((p) => !/Failed to load resource/.test(p));
  assert.deepEqual(problems, [], `page errors: ${problems.join('; ')}`);
  t.diagnostic(`${session.requests.length} requests, all to ${srv.url}`);
}

before(async () => {
  assert.ok(modelPath, 'no model: train models/default.alm or run scripts/make_fixtures.py build/fixtures');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'anomalens-webtest-'));
  fs.mkdirSync(artifactsDir, { recursive: true });
  srv = await startServer(modelPath);
  browser = await launch();
});

after(async () => {
  for (const c of openContexts) await c.close().catch(() => {});
  await browser?.close().catch(() => {});
  await srv?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('dropped ELPV images and a chosen folder get the CLI verdicts', async (t) => {
  const s = await newPage(t);
  const dropped = [...listImages('normal', 6), ...listImages('abnormal', 6)];
  await dropFiles(s.page, '#dropzone', dropped);
  let results = await waitForResults(s.page, dropped.length);
  assert.equal(results.length, dropped.length);
  // The default model scores four mirrored passes; its card says so.
  assert.match(await s.page.textContent('#model-card'), /Scoring\s*mean of 4 passes \(mirrored: as is, left-right, top-bottom, both\)/);

  // Folders with a subfolder and a non-image file (ignored when it comes from a folder): one
  // dropped (walked with webkitGetAsEntry), one chosen with the folder picker.
  const makeFolder = (name, files) => {
    const folder = path.join(tmp, name);
    fs.mkdirSync(path.join(folder, 'sub'), { recursive: true });
    files.forEach((f, i) => fs.copyFileSync(f, path.join(folder, i % 2 ? 'sub' : '', path.basename(f))));
    fs.writeFileSync(path.join(folder, 'README.txt'), 'not an image\n');
    return folder;
  };
  const droppedDir = [...listImages('normal', 12).slice(9, 12), ...listImages('abnormal', 12).slice(9, 12)];
  await dropPaths(s.page, '#dropzone', [makeFolder('dropped', droppedDir)]);
  results = await waitForResults(s.page, dropped.length + droppedDir.length);
  const pickedDir = [...listImages('normal', 10).slice(6, 9), ...listImages('abnormal', 10).slice(6, 9)];
  await s.page.setInputFiles('#folder-input', makeFolder('batch', pickedDir));
  const folderFiles = [...droppedDir, ...pickedDir];
  results = await waitForResults(s.page, dropped.length + folderFiles.length);
  assert.equal(results.length, dropped.length + folderFiles.length, 'README.txt is skipped');
  for (const [dir, files] of [['dropped', droppedDir], ['batch', pickedDir]]) {
    assert.ok(results.some((r) => r.path === `${dir}/sub/${path.basename(files[1])}`),
      `${dir}: folder paths kept: ${results.map((r) => r.path).join(', ')}`);
  }

  const counts = await s.page.$$eval('#counts b', (bs) => bs.map((b) => Number(b.textContent)));
  const byVerdict = (v) => results.filter((r) => r.verdict === v).length;
  assert.deepEqual(counts, [byVerdict('normal'), byVerdict('abnormal'), byVerdict('error'), results.length]);
  for (const r of results) {
    assert.match(r.text, r.verdict === 'abnormal' ? /Abnormal/i : /Normal/i, 'badge text, not just colour');
  }
  await screenshot(s.page, 'app-laptop.png');
  await s.page.setViewportSize({ width: 390, height: 844 });
  await screenshot(s.page, 'app-phone.png', { fullPage: false });
  await s.page.evaluate(() => window.scrollTo(0, document.getElementById('results-heading').getBoundingClientRect().top + window.scrollY - 8));
  await screenshot(s.page, 'app-phone-results.png', { fullPage: false });
  const overflow = await s.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling on a phone (overflow ${overflow}px)`);

  if (requireReference(t)) assertMatchesCli(results, cliClassify(modelPath, [...dropped, ...folderFiles]));
  await assertClean(t, s);
});

test('a corrupt file fails inline while the rest (PNG, BMP, TGA, WebP) classify', async (t) => {
  const s = await newPage(t);
  const [a, b] = listImages('abnormal', 12).slice(10);
  const corrupt = path.join(tmp, 'corrupt.png');
  fs.writeFileSync(corrupt, Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), Buffer.alloc(200, 7)]));
  const truncated = path.join(tmp, 'truncated.png');
  fs.writeFileSync(truncated, fs.readFileSync(a).subarray(0, 300));
  const garbage = path.join(tmp, 'notes.jpg');
  fs.writeFileSync(garbage, 'this is not an image at all');
  const conv = (ext, extra = []) => {
    const out = path.join(tmp, `${path.basename(b, '.png')}.${ext}`);
    const r = spawnSync('ffmpeg', ['-y', '-loglevel', 'error', '-i', b, ...extra, out]);
    assert.equal(r.status, 0, `ffmpeg ${ext}: ${r.stderr}`);
    return out;
  };
  const bmp = conv('bmp');
  const tga = conv('tga');
  const webp = conv('webp', ['-lossless', '1']);
  const files = [a, corrupt, bmp, truncated, tga, garbage, webp, b];
  await dropFiles(s.page, '#dropzone', files);
  const results = await waitForResults(s.page, files.length);
  const by = Object.fromEntries(results.map((r) => [r.file, r]));
  for (const bad of ['corrupt.png', 'truncated.png', 'notes.jpg']) {
    assert.equal(by[bad].verdict, 'error', `${bad}: ${by[bad].text}`);
    assert.match(by[bad].text, new RegExp(`Could not decode ${bad.replace('.', '\\.')}`));
  }
  for (const good of [a, bmp, tga, webp, b].map((f) => path.basename(f))) {
    assert.notEqual(by[good].verdict, 'error', `${good}: ${by[good].text}`);
  }
  assert.equal(await s.page.textContent('#count-error'), '3');
  await s.page.click('#filter label:has(input[value="error"])');
  assert.equal(await s.page.locator('#gallery .result:visible').count(), 3);
  await screenshot(s.page, 'app-errors.png');

  if (requireReference(t)) {
    // BMP and TGA go to the core as bytes, like the CLI; lossless WebP is decoded by the
    // browser and must score like the PNG it came from.
    const cli = cliClassify(modelPath, [a, corrupt, bmp, truncated, tga, garbage, b]);
    assertMatchesCli(results.filter((r) => !r.file.endsWith('.webp')), cli);
    const fromPng = cli.get(path.basename(b));
    const w = by[path.basename(webp)];
    assert.ok(Math.abs(w.score - fromPng.score) < 1e-3, `webp ${w.score} vs png ${fromPng.score}`);
  }
  await assertClean(t, s);
});

test('threshold slider relabels all results; filter; CSV export', async (t) => {
  const s = await newPage(t);
  const files = [...listImages('normal', 16).slice(12), ...listImages('abnormal', 16).slice(12)];
  await dropFiles(s.page, '#dropzone', files);
  await waitForResults(s.page, files.length);
  const initial = Number(await s.page.inputValue('#threshold'));

  const check = async (expected) => {
    const t2 = Number(await s.page.inputValue('#threshold'));
    assert.ok(Math.abs(t2 - expected) < 1e-9, `slider at ${t2}, expected ${expected}`);
    assert.ok(Math.abs(Number(await s.page.textContent('#threshold-value')) - expected) < 0.0005);
    const results = await readResults(s.page);
    for (const r of results) assert.equal(r.verdict, r.score >= expected ? 'abnormal' : 'normal', r.file);
    const abnormal = results.filter((r) => r.verdict === 'abnormal').length;
    assert.equal(Number(await s.page.textContent('#count-abnormal')), abnormal);
    return results;
  };
  await s.page.focus('#threshold');
  await s.page.keyboard.press('Home');
  const atZero = await check(0);
  assert.equal(atZero.filter((r) => r.verdict === 'abnormal').length, files.length);
  await s.page.keyboard.press('End');
  await check(1);
  // A threshold between two of the scores.
  const scores = atZero.map((r) => r.score).sort((x, y) => x - y);
  const mid = Math.round(((scores[1] + scores[2]) / 2) * 100) / 100;
  await s.page.$eval('#threshold', (el, v) => {
    el.value = v;
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, String(mid));
  const atMid = await check(mid);

  await s.page.click('#filter label:has(input[value="abnormal"])');
  const visible = await s.page.$$eval('#gallery .result', (els) => els.filter((e) => e.offsetParent)
    .map((e) => e.dataset.verdict));
  assert.deepEqual(visible, atMid.filter((r) => r.verdict === 'abnormal').map(() => 'abnormal'));
  await screenshot(s.page, 'app-threshold-filter.png');
  await s.page.click('#filter label:has(input[value="all"])');

  const [download] = await Promise.all([s.page.waitForEvent('download'), s.page.click('#export-btn')]);
  assert.match(download.suggestedFilename(), /^anomalens-results-.*\.csv$/);
  const csvPath = path.join(artifactsDir, 'results.csv');
  await download.saveAs(csvPath);
  const lines = fs.readFileSync(csvPath, 'utf8').trim().split(/\r\n/);
  assert.equal(lines[0], 'file,path,verdict,score,threshold,model,error');
  assert.equal(lines.length, files.length + 1);
  for (const line of lines.slice(1)) {
    const [file, , verdict, score, thr] = line.split(',');
    const r = atMid.find((x) => x.file === file);
    assert.ok(r, `CSV row for unknown file ${file}`);
    assert.equal(verdict, r.verdict);
    assert.ok(Math.abs(Number(score) - r.score) < 1e-6);
    assert.equal(Number(thr), mid);
  }
  // Back to the model's threshold.
  await s.page.$eval('#threshold', (el, v) => {
    el.value = v;
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, String(initial));
  await check(initial);
  await assertClean(t, s);
});

test('load another model from disk; a bad model is refused and the old one kept', async (t) => {
  const other = otherModelPath();
  assert.ok(other, 'no second model (run scripts/make_fixtures.py build/fixtures)');
  const s = await newPage(t);
  const before = await s.page.textContent('#model-name');
  const files = listImages('normal', 3);
  await dropFiles(s.page, '#dropzone', files);
  await waitForResults(s.page, files.length);

  const bad = path.join(tmp, 'bad.alm');
  fs.writeFileSync(bad, 'ALM0 not a model');
  await s.page.setInputFiles('#model-input', bad);
  await s.page.waitForFunction(() => /Could not load "bad\.alm"/.test(document.getElementById('model-status').textContent));
  assert.equal(await s.page.getAttribute('body', 'data-model-state'), 'ready');
  assert.equal(await s.page.textContent('#model-name'), before);
  assert.match(await s.page.textContent('#model-status'), /Still using/);

  await s.page.setInputFiles('#model-input', other);
  await s.page.waitForFunction(() => /^Model: /.test(document.getElementById('model-status').textContent));
  const card = await s.page.textContent('#model-card');
  assert.match(card, /Labels/);
  assert.match(card, /Input/);
  const results = await waitForResults(s.page, files.length);
  await screenshot(s.page, 'app-model-switch.png');
  if (requireReference(t)) assertMatchesCli(results, cliClassify(other, files));
  await assertClean(t, s);
});

test('embed example (library) and the custom element', async (t) => {
  const s = await newPage(t, { path: null });
  await s.page.goto(`${srv.url}/examples/embed.html`);
  await s.page.waitForFunction(() => /^Ready/.test(document.getElementById('out').value), null, { timeout: 60000 });
  const image = listImages('abnormal', 20)[19];
  await s.page.setInputFiles('#pick', image);
  await s.page.waitForSelector('#out[data-verdict]');
  const libVerdict = await s.page.getAttribute('#out', 'data-verdict');

  const el = s.page.locator('anomalens-classifier');
  await s.page.waitForFunction(() => document.querySelector('anomalens-classifier').classifier !== null);
  const corrupt = path.join(tmp, 'broken.gif');
  fs.writeFileSync(corrupt, 'GIF89a garbage');
  await el.locator('input[type=file]').setInputFiles(corrupt);
  await s.page.waitForFunction(() => document.querySelector('anomalens-classifier').dataset.verdict === 'error');
  assert.match(await el.locator('.status').textContent(), /broken\.gif/);
  await el.locator('input[type=file]').setInputFiles(image);
  await s.page.waitForFunction(() => ['normal', 'abnormal'].includes(document.querySelector('anomalens-classifier').dataset.verdict));
  const elVerdict = await el.getAttribute('data-verdict');
  const elScore = Number(await el.getAttribute('data-score'));
  assert.equal(elVerdict, libVerdict);
  // Scripted use of the element, plus an event.
  const scripted = await s.page.evaluate(async () => {
    const node = document.querySelector('anomalens-classifier');
    const canvas = document.createElement('canvas');
    canvas.width = 32;
    canvas.height = 32;
    canvas.getContext('2d').fillRect(0, 0, 32, 32);
    const seen = new Promise((r) => node.addEventListener('result', (e) => r(e.detail), { once: true }));
    const direct = await node.classify(canvas);
    return { direct, event: await seen };
  });
  assert.equal(scripted.direct.label, scripted.event.label);
  assert.ok(['normal', 'abnormal'].includes(scripted.direct.label));
  await screenshot(s.page, 'embed.png');
  if (requireReference(t)) {
    const ref = cliClassify(modelPath, [image]).get(path.basename(image));
    assert.equal(elVerdict, ref.label);
    assert.ok(Math.abs(elScore - ref.score) < 1e-3, `element ${elScore} vs CLI ${ref.score}`);
  }
  await assertClean(t, s);
});

test('works offline after one visit (service worker)', async (t) => {
  const s = await newPage(t, { serviceWorkers: 'allow' });
  await s.page.waitForSelector('body[data-offline-ready="true"]', { timeout: 30000 });
  await s.page.waitForSelector('body[data-engine]', { timeout: 60000 });
  const online = await s.page.evaluate(() => document.body.dataset.engine);
  // Let the first classification also come from the network once, then go offline.
  await s.context.setOffline(true);
  await s.page.reload();
  await s.page.waitForSelector('body[data-model-state="ready"]', { timeout: 60000 });
  // The same build runs offline (the pthread build on this cross-origin isolated page).
  await s.page.waitForSelector('body[data-engine]', { timeout: 60000 });
  assert.equal(await s.page.evaluate(() => document.body.dataset.engine), online);
  const files = listImages('abnormal', 23).slice(20);
  await dropFiles(s.page, '#dropzone', files);
  const results = await waitForResults(s.page, files.length);
  assert.ok(results.every((r) => r.verdict !== 'error'), JSON.stringify(results));
  await screenshot(s.page, 'app-offline.png');
  if (requireReference(t)) assertMatchesCli(results, cliClassify(modelPath, files));
  await s.context.setOffline(false);
  await assertClean(t, s);
});

test('hundreds of files: progress shown, page stays responsive', async (t) => {
  const s = await newPage(t);
  const folder = path.join(tmp, 'many');
  fs.mkdirSync(folder);
  const files = [...listImages('normal', 150), ...listImages('abnormal', 100)];
  for (const f of files) fs.copyFileSync(f, path.join(folder, path.basename(f)));
  const t0 = Date.now();
  await s.page.setInputFiles('#folder-input', folder);
  await s.page.waitForFunction(() => /Classifying \d+ of 250/.test(document.getElementById('progress-text').textContent));
  await screenshot(s.page, 'app-progress.png', { fullPage: false });
  // Record every progress text the page renders while the batch runs (a frozen page would
  // render only the last), and the longest main-thread gap as a diagnostic, not a pass mark.
  await s.page.evaluate(() => {
    window.__progressSeen = new Set();
    const el = document.getElementById('progress-text');
    window.__observer = new MutationObserver(() => window.__progressSeen.add(el.textContent));
    window.__observer.observe(el, { childList: true, characterData: true, subtree: true });
    window.__maxGap = 0;
    let last = performance.now();
    window.__ticker = setInterval(() => {
      const now = performance.now();
      window.__maxGap = Math.max(window.__maxGap, now - last);
      last = now;
    }, 16);
  });
  const results = await waitForResults(s.page, files.length, 300000);
  const elapsed = Date.now() - t0;
  const { maxGap, progressSeen } = await s.page.evaluate(() => {
    clearInterval(window.__ticker);
    window.__observer.disconnect();
    return { maxGap: window.__maxGap, progressSeen: window.__progressSeen.size };
  });
  assert.equal(results.length, files.length);
  assert.match(await s.page.textContent('#progress-text'), /Classified 250 images/);
  t.diagnostic(`250 files in ${elapsed} ms (${(elapsed / 250).toFixed(1)} ms/file), longest main-thread gap ${maxGap.toFixed(0)} ms, ${progressSeen} progress states`);
  assert.ok(progressSeen >= 5, `progress rendered only ${progressSeen} distinct states during the batch`);
  await assertClean(t, s);
});

test('keyboard: everything reachable with Tab, drop zone opens the picker with Enter', async (t) => {
  const s = await newPage(t);
  // Listen first: Playwright turns on file-chooser interception asynchronously.
  const chooserP = s.page.waitForEvent('filechooser', { timeout: 15000 });
  const seen = [];
  for (let i = 0; i < 25; i++) {
    await s.page.keyboard.press('Tab');
    seen.push(await s.page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName));
  }
  for (const id of ['load-model-btn', 'dropzone', 'pick-files-btn', 'pick-folder-btn', 'cam-start-btn', 'threshold']) {
    assert.ok(seen.includes(id), `${id} not reachable by Tab (got ${seen.join(' ')})`);
  }
  await s.page.focus('#dropzone');
  await s.page.keyboard.press('Enter');
  const chooser = await chooserP;
  assert.ok(chooser.isMultiple());
});

test('camera without a device or permission gives a clear message', async (t) => {
  const s = await newPage(t);
  await s.page.click('#cam-start-btn');
  await s.page.waitForSelector('#cam-message[data-kind="error"]');
  const msg = await s.page.textContent('#cam-message');
  t.diagnostic(`headless Chromium without a camera: ${msg}`);
  assert.match(msg, /No camera was found|permission was denied/);
  assert.equal(await s.page.isDisabled('#cam-snap-btn'), true);

  // Each getUserMedia failure maps to its own message (stubbed: real denial needs a prompt).
  const cases = [['NotAllowedError', /permission was denied/], ['NotFoundError', /No camera was found/],
    ['NotReadableError', /busy or unavailable/], ['AbortError', /could not start: stub AbortError/]];
  for (const [name, expected] of cases) {
    await s.page.evaluate((n) => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException(`stub ${n}`, n));
    }, name);
    await s.page.click('#cam-start-btn');
    await s.page.waitForFunction((n) => !/Starting/.test(document.getElementById('cam-message').textContent), name);
    assert.match(await s.page.textContent('#cam-message'), expected, name);
    assert.equal(await s.page.getAttribute('#camera', 'data-state'), 'off');
  }
  await screenshot(s.page, 'camera-denied.png', { fullPage: false });
});

test('library in the page: every input type, SVG via the browser, paste into the app', async (t) => {
  const s = await newPage(t);
  const png = fs.readFileSync(listImages('abnormal', 30)[29]).toString('base64');
  const r = await s.page.evaluate(async (b64) => {
    const { Anomalens } = await import('/anomalens.js');
    const clf = await Anomalens.create({ model: '/models/default.alm' });
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const blob = new Blob([bytes], { type: 'image/png' });
    const out = {};
    out.blob = (await clf.classify(blob)).score;
    out.bytes = (await clf.classify(bytes.buffer)).score;
    const bitmap = await createImageBitmap(blob);
    out.bitmap = (await clf.classify(bitmap)).score;
    const canvas = document.createElement('canvas');
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    out.canvas = (await clf.classify(canvas)).score;
    out.imageData = (await clf.classify(ctx.getImageData(0, 0, canvas.width, canvas.height))).score;
    const img = new Image();
    img.src = URL.createObjectURL(blob);
    await img.decode();
    out.img = (await clf.classify(img)).score;
    // SVG is rasterised by the browser; it must score like the same pixels drawn on a canvas.
    const svg = new Blob(['<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30">' +
      '<rect width="40" height="30" fill="#6a6a6a"/></svg>'], { type: 'image/svg+xml' });
    out.svg = (await clf.classify(svg)).score;
    const flat = document.createElement('canvas');
    flat.width = 40;
    flat.height = 30;
    const fctx = flat.getContext('2d');
    fctx.fillStyle = '#6a6a6a';
    fctx.fillRect(0, 0, 40, 30);
    out.flat = (await clf.classify(flat)).score;
    out.errors = [];
    for (const bad of [new Blob(['nope']), 17, document.createElement('video')]) {
      try {
        await clf.classify(bad);
        out.errors.push('resolved');
      } catch (e) {
        out.errors.push(`${e.name}:${e.code}`);
      }
    }
    out.after = (await clf.classify(blob)).score;
    for (const opts of [{ workerUrl: '/missing-worker.js' }, { coreUrl: '/missing-core.js' },
      { model: '/models/missing.alm' }]) {
      try {
        await Anomalens.create({ model: '/models/default.alm', ...opts });
        out.errors.push('created');
      } catch (e) {
        out.errors.push(`${e.name}:${e.code}`);
      }
    }
    await clf.close();
    try {
      await clf.classify(blob);
    } catch (e) {
      out.errors.push(`${e.name}:${e.code}`);
    }
    return out;
  }, png);
  t.diagnostic(JSON.stringify(r));
  assert.deepEqual(r.errors, ['AnomalensError:decode_failed', 'AnomalensError:invalid_argument',
    'AnomalensError:invalid_argument', 'AnomalensError:worker_failed',
    'AnomalensError:core_load_failed', 'AnomalensError:network', 'AnomalensError:closed']);
  const near = (a, b, what) => assert.ok(Math.abs(a - b) < 1e-3, `${what}: ${a} vs ${b}`);
  near(r.blob, r.bytes, 'Blob vs ArrayBuffer');
  near(r.blob, r.after, 'same call after errors');
  for (const k of ['canvas', 'imageData', 'img']) near(r[k], r.bitmap, `${k} vs ImageBitmap`);
  near(r.svg, r.flat, 'SVG vs canvas');
  // Gray PNG decoded by the core vs decoded by the browser: same pixels, same score.
  if (hasRealCore) near(r.blob, r.bitmap, 'encoded bytes vs browser pixels');

  // Paste into the app.
  await s.page.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], 'image.png', { type: 'image/png' }));
    document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true }));
  }, png);
  const [pasted] = await waitForResults(s.page, 1);
  assert.match(pasted.file, /^pasted-\d+-1\.png$/);
  assert.notEqual(pasted.verdict, 'error');
  near(pasted.score, r.blob, 'pasted vs library');
  await assertClean(t, s);
});

test('no default model: clear message, images wait, a model from disk runs them', async (t) => {
  const bare = await startServer(null);
  const context = await browser.newContext();
  openContexts.push(context);
  try {
    const page = await context.newPage();
    await page.goto(`${bare.url}/`);
    await page.waitForSelector('body[data-model-state="error"]');
    assert.match(await page.textContent('#model-status'), /Could not load the default model: .*HTTP 404.*Load a \.alm model from disk/);
    const files = listImages('normal', 42).slice(40);
    await dropFiles(page, '#dropzone', files);
    await page.waitForFunction(() => /Waiting for a model \(2 queued\)/.test(document.getElementById('progress-text').textContent));
    await screenshot(page, 'app-no-model.png');
    await page.setInputFiles('#model-input', modelPath);
    const results = await waitForResults(page, 2);
    assert.ok(results.every((r) => r.verdict === 'normal' || r.verdict === 'abnormal'), JSON.stringify(results));
    if (requireReference(t)) assertMatchesCli(results, cliClassify(modelPath, files));
  } finally {
    await context.close();
    await bare.close();
  }
});

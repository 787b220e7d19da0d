// SPDX-License-Identifier: Apache-2.0
// Browser-side reliability of the JS library (web/anomalens.js + web/worker.js) with the real
// wasm core in headless Debian Chromium (playwright-core), served by scripts/serve.mjs:
//
//   1. watch mode for an hour-equivalent of webcam frames, accelerated: Chromium's fake camera
//      plays a y4m of an ELPV image and classify(<video>) runs back to back; every call must
//      resolve, the wasm heap must not grow after warm-up, and neither must the page's or the
//      worker's JS heap (beyond a generous bound, after a forced GC);
//   2. close() while calls are pending (documented: close() waits for queued calls, later calls
//      reject with 'closed'); no unhandled rejection;
//   3. 200 concurrent calls, good and corrupt files mixed: all settle, each exactly as the same
//      file classified alone, errors only for the corrupt ones;
//   4. a worker that dies (an uncaught error in the worker) and a core that traps (a genuine
//      wasm trap in the real module): pending calls reject with a code, nothing hangs, and
//      the classifier is either usable again (trap) or clearly closed (dead worker);
//   5. the Content-Security-Policy: served on every response, no unsafe-eval/unsafe-inline,
//      'wasm-unsafe-eval' only; the app and the library run under it without a violation, and
//      injected inline script / eval are blocked.
//
// The model is ANOMALENS_WEB_MODEL, else models/default.alm, else build/fixtures/allops.alm
// (as tests/web), served scored in one pass per call (singlePassModel in corpus.mjs). No test
// depends on timing: waits are liveness bounds, generous for a busy box. ANOMALENS_WATCH_FRAMES sets the watch-mode frame count (default 10800: an hour at 3 frames/s).
//
//   node --test --test-reporter=spec tests/hostile/browser_robustness.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { start, kContentSecurityPolicy } from '../../scripts/serve.mjs';
import { ensureCorpus, root, singlePassModel } from './corpus.mjs';

// An hour of watch mode at 3 frames per second.
const kFrames = Number(process.env.ANOMALENS_WATCH_FRAMES ?? 10800);
const kWarmupFrames = 300;
const kChunk = 300;
// Generous: a per-frame leak of one 300x300 RGBA copy would be 1.3 GB over 3,600 frames.
const kJsHeapSlack = 24 << 20;
const kLiveness = 120000;  // ms: only to turn a hang into a failure, never a performance bound

const elpv = '/work/shared/data/elpv';

function modelPath() {
  if (process.env.ANOMALENS_WEB_MODEL) return path.resolve(process.env.ANOMALENS_WEB_MODEL);
  return [path.join(root, 'models/default.alm'), path.join(root, 'build/fixtures/allops.alm')]
    .find((p) => fs.existsSync(p)) ?? null;
}

const kChromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync',
  // performance.measureUserAgentSpecificMemory() answers at once (it otherwise waits for a GC).
  '--enable-blink-features=ForceEagerMeasureMemory'];

let srv;
let browser;
let modelsRoot;
let model;
let files;        // [{name, b64, expect: 'ok'|'fail', code}]
let cameraImage;

before(async () => {
  model = modelPath();
  assert.ok(model, 'no model: neither models/default.alm nor build/fixtures/allops.alm exists');
  for (const f of ['web/core/anomalens_core.js', 'web/core/anomalens_core.wasm']) {
    assert.ok(fs.existsSync(path.join(root, f)), `${f} is missing: run ./scripts/build.sh first`);
  }
  const entries = ensureCorpus();
  const pick = ['images/ok_rgb.png', 'images/ok_rgb.jpg', 'images/ok_rgb.bmp', 'images/ok_tga.tga',
    'images/ok_animated.gif', 'images/ok_gray.png', 'images/empty.png', 'images/text.txt',
    'images/random.bin', 'images/trunc_png_half.png', 'images/corrupt_png_zlib.png',
    'images/corrupt_gif_lzw.gif', 'images/bomb_png_100000x100000.png'];
  files = pick.map((name) => {
    const e = entries.find((x) => x.file === name);
    assert.ok(e, `${name} is not in the hostile corpus manifest`);
    return { name, b64: fs.readFileSync(e.path).toString('base64'), expect: e.expect, code: e.code };
  });
  const elpvFiles = ['normal', 'abnormal'].flatMap((sub) => fs.readdirSync(path.join(elpv, sub))
    .filter((f) => f.endsWith('.png')).sort().slice(0, 3).map((f) => path.join(elpv, sub, f)));
  for (const p of elpvFiles) {
    files.push({ name: `elpv/${path.basename(path.dirname(p))}/${path.basename(p)}`,
      b64: fs.readFileSync(p).toString('base64'), expect: 'ok' });
  }
  cameraImage = elpvFiles[3];

  const outDir = path.join(root, 'build/test-artifacts');
  fs.mkdirSync(outDir, { recursive: true });
  const y4m = path.join(outDir, 'robustness-camera.y4m');
  const ff = spawnSync('ffmpeg', ['-y', '-loglevel', 'error', '-loop', '1', '-i', cameraImage,
    '-frames:v', '10', '-pix_fmt', 'yuv420p', y4m], { encoding: 'utf8' });
  assert.equal(ff.status, 0, `ffmpeg could not make ${y4m} from ${cameraImage}: ${ff.stderr ?? ff.error}`);

  modelsRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'anomalens-robust-models-'));
  fs.writeFileSync(path.join(modelsRoot, 'default.alm'), singlePassModel(fs.readFileSync(model)));
  const here = path.join(root, 'tests/hostile');
  srv = await start({ port: 0, modelsRoot, overrides: {
    '/hostile/blank.html': path.join(here, 'browser_blank.html'),
    '/hostile/fault_worker.js': path.join(here, 'browser_fault_worker.mjs'),
    '/hostile/fault_patch.js': path.join(here, 'browser_fault_patch.mjs'),
    '/core/trap_core.js': path.join(here, 'browser_trap_core.mjs'),
    '/hostile/csp_probe.js': path.join(here, 'browser_csp_probe.js'),
  } });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [...kChromiumArgs,
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    `--use-file-for-fake-video-capture=${y4m}`] });
});

after(async () => {
  await browser?.close().catch(() => {});
  await srv?.close();
  if (modelsRoot) fs.rmSync(modelsRoot, { recursive: true, force: true });
});

/** New context + page recording requests, page errors, CSP violations and unhandled rejections. */
async function openPage(urlPath = '/hostile/blank.html') {
  const context = await browser.newContext({ serviceWorkers: 'block' });
  const requests = [];
  const problems = [];
  context.on('request', (req) => requests.push(req.url()));
  await context.addInitScript(() => {
    window.__violations = [];
    window.__unhandled = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample ?? ''}`.trim());
    });
    window.addEventListener('unhandledrejection', (e) => {
      window.__unhandled.push(String(e.reason?.code ?? '') + ' ' + String(e.reason?.message ?? e.reason));
    });
  });
  const page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  if (urlPath !== null) await page.goto(srv.url + urlPath);
  return { context, page, requests, problems };
}

/** Imports the library, decodes the test files into window.__files, creates window.clf. */
async function setUp(page, options = {}) {
  await page.evaluate(async ({ files, options }) => {
    const lib = await import('/anomalens.js');
    window.lib = lib;
    window.__files = files.map((f) => {
      const bin = atob(f.b64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      return { name: f.name, bytes, expect: f.expect, code: f.code };
    });
    // One key per outcome: the exact verdict or the exact error.
    window.__key = (r) => (r.status === 'fulfilled'
      ? `ok ${r.value.label} ${r.value.score} ${r.value.scores.normal} ${r.value.scores.abnormal}`
      : `err ${r.reason?.code} ${r.reason?.message}`);
    window.clf = await lib.Anomalens.create({ model: '/models/default.alm', ...options });
  }, { files, options });
}

async function pageState(page) {
  return page.evaluate(() => ({ violations: window.__violations, unhandled: window.__unhandled }));
}

function assertClean(s, state, where) {
  assert.deepEqual(state.unhandled, [], `${where}: unhandled rejections in the page`);
  assert.deepEqual(state.violations, [], `${where}: CSP violations`);
  assert.deepEqual(s.problems, [], `${where}: page errors`);
  const foreign = s.requests.filter((u) => !u.startsWith(srv.url + '/') && !u.startsWith('blob:') && !u.startsWith('data:'));
  assert.deepEqual(foreign, [], `${where}: requests outside the test server`);
}

/**
 * JS heap of the page (after a full GC, CDP) and, with `worker`, of the dedicated workers
 * (measureUserAgentSpecificMemory). That call waits for every worker's event loop, and the
 * pthread build's workers sleep inside wasm between jobs, so it only returns at its 60 s
 * timeout there: the test measures workers at the start and the end of the run only.
 */
async function jsHeaps(page, cdp, { worker: withWorker = false } = {}) {
  await cdp.send('HeapProfiler.collectGarbage');
  await cdp.send('HeapProfiler.collectGarbage');
  const { usedSize } = await cdp.send('Runtime.getHeapUsage');
  if (!withWorker) return { page: usedSize, worker: null };
  const worker = await page.evaluate(async () => {
    if (!crossOriginIsolated || typeof performance.measureUserAgentSpecificMemory !== 'function') return null;
    const m = await performance.measureUserAgentSpecificMemory();
    let bytes = 0;
    let seen = false;
    for (const b of m.breakdown) {
      if (b.attribution.some((a) => a.scope === 'DedicatedWorkerGlobalScope')) {
        bytes += b.bytes;
        seen = true;
      }
    }
    return seen ? bytes : null;
  });
  return { page: usedSize, worker };
}

const MiB = (n) => `${(n / 1048576).toFixed(2)} MiB`;

test(`watch mode: ${kFrames} webcam frames back to back, no dropped verdict, memory flat after warm-up`,
  { timeout: 30 * 60000 }, async (t) => {
    const s = await openPage();
    const { page } = s;
    await setUp(page);
    const cdp = await page.context().newCDPSession(page);
    await page.evaluate(async () => {
      const stream = await navigator.mediaDevices.getUserMedia({ video: true });
      const video = document.createElement('video');
      video.muted = true;
      video.playsInline = true;
      video.srcObject = stream;
      document.body.append(video);
      await video.play();
      while (video.readyState < 2) await new Promise((r) => setTimeout(r, 50));
      window.video = video;
      window.__verdicts = { calls: 0, resolved: 0, labels: {}, failures: [], min: Infinity, max: -Infinity };
    });
    // Runs n classify(video) calls one after the other ("as fast as possible").
    const runFrames = (n) => page.evaluate(async (count) => {
      const v = window.__verdicts;
      for (let i = 0; i < count; i++) {
        v.calls++;
        try {
          const r = await window.clf.classify(window.video);
          if (!['normal', 'abnormal'].includes(r.label) || !Number.isFinite(r.score)) {
            throw new Error(`malformed verdict ${JSON.stringify(r)}`);
          }
          v.resolved++;
          v.labels[r.label] = (v.labels[r.label] ?? 0) + 1;
          v.min = Math.min(v.min, r.score);
          v.max = Math.max(v.max, r.score);
        } catch (err) {
          if (v.failures.length < 5) v.failures.push(`${err.code ?? ''} ${err.message}`);
        }
      }
      return { ...v };
    }, n);

    const t0 = Date.now();
    await runFrames(Math.min(kWarmupFrames, kFrames));
    const rt0 = await page.evaluate(() => window.clf.runtime());
    const wasm0 = rt0.wasmMemoryBytes;
    t.diagnostic(`core: ${rt0.build}, ${rt0.threads} thread(s)`);
    const heap0 = await jsHeaps(page, cdp, { worker: true });
    const samples = [{ frames: Math.min(kWarmupFrames, kFrames), wasm: wasm0, ...heap0 }];
    let done = samples[0].frames;
    while (done < kFrames) {
      const n = Math.min(kChunk, kFrames - done);
      await runFrames(n);
      done += n;
      const wasm = (await page.evaluate(() => window.clf.runtime())).wasmMemoryBytes;
      samples.push({ frames: done, wasm, ...(await jsHeaps(page, cdp, { worker: done >= kFrames })) });
    }
    const seconds = (Date.now() - t0) / 1000;
    const v = await page.evaluate(() => window.__verdicts);
    const last = samples.at(-1);
    t.diagnostic(`${v.calls} frames in ${seconds.toFixed(1)} s (${(v.calls / seconds).toFixed(1)} frames/s; ` +
      `at 3 frames/s that is ${(v.calls / 3 / 60).toFixed(0)} min of watching); labels ${JSON.stringify(v.labels)}, ` +
      `score ${v.min}..${v.max}`);
    t.diagnostic(`wasm heap ${MiB(wasm0)} after ${samples[0].frames} warm-up frames -> ${MiB(last.wasm)}; ` +
      `page JS heap ${MiB(heap0.page)} -> ${MiB(last.page)}; worker JS heap ` +
      (heap0.worker === null ? 'not measurable' : `${MiB(heap0.worker)} -> ${MiB(last.worker)}`));
    t.diagnostic(`samples (frames: page/worker MiB): ${samples.map((x) => `${x.frames}: ${(x.page / 1048576).toFixed(1)}/` +
      `${x.worker === null ? '-' : (x.worker / 1048576).toFixed(1)}`).join(', ')}`);

    assert.deepEqual(v.failures, [], 'classify(video) rejected');
    assert.equal(v.calls, kFrames);
    assert.equal(v.resolved, kFrames, 'every frame must give a verdict');
    // The fake camera replays one still image: one verdict throughout.
    assert.equal(Object.keys(v.labels).length, 1, `the same scene flipped verdicts: ${JSON.stringify(v.labels)}`);
    for (const x of samples) assert.equal(x.wasm, wasm0, `wasm memory grew to ${x.wasm} by frame ${x.frames}`);
    for (const x of samples) {
      assert.ok(x.page <= heap0.page + kJsHeapSlack,
        `page JS heap grew ${MiB(heap0.page)} -> ${MiB(x.page)} by frame ${x.frames}`);
      if (heap0.worker !== null && x.worker !== null) {
        assert.ok(x.worker <= heap0.worker + kJsHeapSlack,
          `worker JS heap grew ${MiB(heap0.worker)} -> ${MiB(x.worker)} by frame ${x.frames}`);
      }
    }
    await page.evaluate(async () => {
      window.video.srcObject.getTracks().forEach((tr) => tr.stop());
      await window.clf.close();
    });
    assertClean(s, await pageState(page), 'watch mode');
    await s.context.close();
  });

test('close() while calls are pending: they settle as documented, later calls reject with "closed"',
  { timeout: 10 * 60000 }, async () => {
    const s = await openPage();
    const { page } = s;
    await setUp(page);
    const out = await page.evaluate(async (liveness) => {
      const clf = window.clf;
      const good = window.__files.filter((f) => f.expect === 'ok').slice(0, 4);
      const bad = window.__files.find((f) => f.name === 'images/trunc_png_half.png');
      const inputs = [...good, bad, good[0]];
      // Reference: the same inputs one at a time on a second classifier.
      const ref = await window.lib.Anomalens.create({ model: '/models/default.alm' });
      const expected = [];
      for (const f of inputs) expected.push(window.__key((await Promise.allSettled([ref.classify(f.bytes)]))[0]));
      await ref.close();

      const pending = inputs.map((f) => clf.classify(f.bytes));
      const order = [];
      pending.forEach((p, i) => p.then(() => order.push(i), () => order.push(i)));
      const closing = clf.close();
      const closingAgain = clf.close();
      const afterClose = await Promise.allSettled([clf.classify(good[0].bytes), clf.runtime()]);
      const timeout = new Promise((r) => setTimeout(() => r('timeout'), liveness));
      const settled = await Promise.race([Promise.allSettled(pending), timeout]);
      const closed = await Promise.race([Promise.all([closing, closingAgain]).then(() => 'closed'), timeout]);
      const later = await Promise.allSettled([clf.classify(good[1].bytes), clf.close().then(() => 'ok')]);
      return {
        expected,
        got: settled === 'timeout' ? 'timeout' : settled.map(window.__key),
        closed,
        order,
        afterClose: afterClose.map((r) => `${r.status} ${r.reason?.name} ${r.reason?.code}`),
        later: later.map((r) => `${r.status} ${r.reason?.code ?? r.value}`),
      };
    }, kLiveness);
    assert.notEqual(out.got, 'timeout', 'calls pending at close() never settled');
    assert.equal(out.closed, 'closed', 'close() never resolved');
    // Documented (docs/WEB.md): close() waits for queued calls, so each settles exactly as the
    // same input does on a classifier that stays open (verdict or that input's own error).
    assert.deepEqual(out.got, out.expected);
    assert.deepEqual(out.order, out.got.map((_, i) => i), 'calls settle in call order');
    assert.deepEqual(out.afterClose, ['rejected AnomalensError closed', 'rejected AnomalensError closed']);
    assert.deepEqual(out.later, ['rejected closed', 'fulfilled ok']);
    // Playwright learns of a terminated worker asynchronously: wait (liveness bound only).
    for (const deadline = Date.now() + kLiveness; page.workers().length > 0 && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(page.workers().length, 0, 'the worker is terminated after close()');
    assertClean(s, await pageState(page), 'close');
    await s.context.close();
  });

test('200 concurrent calls, good and corrupt files mixed: all settle, each as when classified alone',
  { timeout: 15 * 60000 }, async (t) => {
    const s = await openPage();
    const { page } = s;
    await setUp(page);
    const out = await page.evaluate(async (liveness) => {
      const clf = window.clf;
      const list = window.__files;
      const alone = [];
      for (const f of list) alone.push(window.__key((await Promise.allSettled([clf.classify(f.bytes)]))[0]));
      // 200 calls at once, each file ~15 times, in an interleaved order; inputs of every kind
      // the library takes for bytes (Uint8Array, ArrayBuffer, Blob, File).
      const calls = [];
      for (let i = 0; i < 200; i++) {
        const k = (i * 7) % list.length;
        const f = list[k];
        const input = [f.bytes, f.bytes.buffer, new Blob([f.bytes]), new File([f.bytes], f.name)][i % 4];
        calls.push({ k, p: clf.classify(input) });
      }
      const timeout = new Promise((r) => setTimeout(() => r('timeout'), liveness * 3));
      const settled = await Promise.race([Promise.allSettled(calls.map((c) => c.p)), timeout]);
      if (settled === 'timeout') return { timeout: true };
      const wasm = (await clf.runtime()).wasmMemoryBytes;
      await clf.close();
      return {
        names: list.map((f) => f.name),
        expect: list.map((f) => [f.expect, f.code ?? null]),
        alone,
        got: settled.map((r, i) => ({ k: calls[i].k, key: window.__key(r), file: r.reason?.file ?? null })),
        wasm,
      };
    }, kLiveness);
    assert.ok(!out.timeout, '200 concurrent calls did not all settle');
    // Alone: good files give verdicts, corrupt ones their manifest code.
    out.alone.forEach((key, k) => {
      const [expect, code] = out.expect[k];
      if (expect === 'ok') assert.match(key, /^ok (normal|abnormal) /, `${out.names[k]} alone: ${key}`);
      else assert.match(key, new RegExp(`^err ${code} `), `${out.names[k]} alone: ${key}`);
    });
    const mismatches = out.got.filter((g) => g.key !== out.alone[g.k])
      .map((g) => `${out.names[g.k]}: ${g.key} vs alone ${out.alone[g.k]}`);
    assert.deepEqual(mismatches, [], 'concurrent results differ from sequential ones');
    const errors = out.got.filter((g) => g.key.startsWith('err ')).length;
    const corrupt = out.got.filter((g) => out.expect[g.k][0] !== 'ok').length;
    assert.equal(errors, corrupt, 'errors exactly for the corrupt files');
    t.diagnostic(`200 calls: ${200 - errors} verdicts, ${errors} errors (all for corrupt files); wasm heap ${MiB(out.wasm)}`);
    assertClean(s, await pageState(page), 'concurrent');
    await s.context.close();
  });

test('a worker that dies: the pending and queued calls reject (worker_failed/closed), later ones with closed, close() resolves',
  { timeout: 10 * 60000 }, async () => {
    const s = await openPage();
    const { page } = s;
    await setUp(page, { workerUrl: '/hostile/fault_worker.js' });
    const out = await page.evaluate(async (liveness) => {
      const clf = window.clf;
      const good = window.__files.find((f) => f.name === 'images/ok_rgb.png').bytes;
      const before = window.__key((await Promise.allSettled([clf.classify(good)]))[0]);
      const crash = new TextEncoder().encode('CRASH-WORKER please');
      // One call in flight when the worker dies, three queued behind it.
      const pending = [clf.classify(crash), clf.classify(good), clf.classify(good), clf.classify(good)];
      const status = pending.map(() => 'pending');
      pending.forEach((p, i) => p.then(() => { status[i] = 'fulfilled'; },
        (e) => { status[i] = `rejected ${e?.code}`; }));
      const timeout = new Promise((r) => setTimeout(() => r('timeout'), liveness));
      await Promise.race([Promise.allSettled(pending), timeout]);
      const settledKeys = [...status];
      const later = await Promise.race([Promise.allSettled([clf.classify(good)]), timeout]);
      const closed = await Promise.race([clf.close().then(() => 'closed', (e) => `close rejected ${e.code}`), timeout]);
      return { before, settled: settledKeys, later: later === 'timeout' ? 'timeout' : later.map((r) => `${r.status} ${r.reason?.code}`), closed };
    }, kLiveness / 2);
    assert.match(out.before, /^ok /, 'the classifier works before the crash');
    assert.ok(!out.settled.includes('pending'), `calls still pending after the worker died: ${out.settled} ` +
      '(web/anomalens.js: _failAll() terminates the worker but leaves this._worker set, so a call ' +
      'queued behind the failed one passes _request()\'s "!this._worker" check, posts to the dead ' +
      'worker and waits forever; close() then waits on that call too)');
    // The call in flight fails with worker_failed; the ones queued behind it with worker_failed
    // or closed (either names what happened), never a verdict from a dead worker.
    assert.equal(out.settled[0], 'rejected worker_failed');
    for (const [i, st] of out.settled.entries()) {
      assert.ok(['rejected worker_failed', 'rejected closed'].includes(st), `queued call ${i}: ${st}`);
    }
    assert.deepEqual(out.later, ['rejected closed']);
    assert.equal(out.closed, 'closed', 'close() after the worker died must resolve');
    const state = await pageState(page);
    assert.deepEqual(state.unhandled, [], 'unhandled rejections in the page');
    await s.context.close();
  });

test('a core that traps: that call rejects with internal, the next call gets a fresh core and the same verdict',
  { timeout: 10 * 60000 }, async () => {
    const s = await openPage();
    const { page } = s;
    await setUp(page, { coreUrl: '/core/trap_core.js' });
    const wasmFetches = () => srv.requests.filter((r) => r.path === '/core/anomalens_core.wasm').length;
    const fetchesBefore = wasmFetches();
    const out = await page.evaluate(async () => {
      const clf = window.clf;
      const good = window.__files.filter((f) => f.expect === 'ok').slice(0, 3).map((f) => f.bytes);
      const key = async (input) => window.__key((await Promise.allSettled([clf.classify(input)]))[0]);
      const before = [];
      for (const g of good) before.push(await key(g));
      const trap = new TextEncoder().encode('TRAP-CORE now');
      // A trap with calls queued behind it, then the same inputs again.
      const all = await Promise.allSettled([clf.classify(trap), ...good.map((g) => clf.classify(g)),
        clf.classify(trap), clf.classify(trap), clf.classify(good[0])]);
      const info = clf.info();
      const runtime = await clf.runtime();
      await clf.close();
      return { before, all: all.map(window.__key), labels: info.labels, runtime };
    });
    const [trap1, ...rest] = out.all;
    assert.match(trap1, /^err internal the wasm core failed: .*(table|bounds|RuntimeError|unreachable)/i,
      `a trap is reported with code internal and the trap's message: ${trap1}`);
    assert.deepEqual(rest.slice(0, 3), out.before, 'after a trap the same inputs give the same verdicts');
    assert.match(rest[3], /^err internal /);
    assert.match(rest[4], /^err internal /);
    assert.equal(rest[5], out.before[0]);
    // Each trap drops the module instance; the next call instantiates the core again (fetching
    // its .wasm): trap, reload, trap, reload, trap, reload = 3 new instances after create().
    assert.equal(wasmFetches() - fetchesBefore, 3, 'one new core instance after each trap');
    const state = await pageState(page);
    assert.deepEqual(state.unhandled, []);
    assert.deepEqual(s.problems, []);
    await s.context.close();
  });

test('Content-Security-Policy: strict, on every response, the app runs under it, inline script and eval blocked',
  { timeout: 10 * 60000 }, async (t) => {
    // The header, as served, for the pages, scripts, the core and a model.
    for (const p of ['/', '/index.html', '/app.js', '/anomalens.js', '/worker.js', '/core/anomalens_core.js',
      '/core/anomalens_core.wasm', '/models/default.alm', '/no-such-file']) {
      const res = await fetch(srv.url + p, { method: 'HEAD' });
      const csp = res.headers.get('content-security-policy');
      assert.ok(csp, `${p}: no Content-Security-Policy header`);
      assert.equal(csp, kContentSecurityPolicy, p);
      const directives = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/))
        .map(([name, ...values]) => [name, values]));
      const scriptSrc = directives['script-src'] ?? directives['default-src'];
      assert.ok(scriptSrc.includes("'wasm-unsafe-eval'"), `${p}: script-src lacks 'wasm-unsafe-eval'`);
      for (const bad of ["'unsafe-eval'", "'unsafe-inline'", 'data:', 'blob:', '*', 'http:', 'https:']) {
        assert.ok(!scriptSrc.includes(bad), `${p}: script-src allows ${bad}`);
      }
      for (const d of ['default-src', 'worker-src', 'connect-src']) {
        assert.deepEqual(directives[d], ["'self'"], `${p}: ${d}`);
      }
      assert.ok(!(directives['style-src'] ?? []).includes("'unsafe-inline'"), `${p}: style-src allows unsafe-inline`);
      assert.deepEqual(directives['object-src'], ["'none'"]);
    }

    // The app under the policy: model loads, a dropped image gets a verdict, no violation.
    const s = await openPage('/');
    const { page } = s;
    await page.waitForSelector('body[data-model-state="ready"]', { timeout: kLiveness });
    const png = files.find((f) => f.name.startsWith('elpv/normal/'));
    const dt = await page.evaluateHandle(({ b64, name }) => {
      const bin = atob(b64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], name, { type: 'image/png' }));
      return transfer;
    }, { b64: png.b64, name: path.basename(png.name) });
    const zone = await page.$('#dropzone') ? '#dropzone' : 'body';
    for (const type of ['dragenter', 'dragover', 'drop']) await page.dispatchEvent(zone, type, { dataTransfer: dt });
    await page.waitForFunction(() => {
      const el = document.querySelector('#gallery .result');
      return el && el.dataset.verdict && el.dataset.verdict !== 'pending';
    }, null, { timeout: kLiveness });
    const verdict = await page.$eval('#gallery .result', (el) => el.dataset.verdict);
    assert.ok(['normal', 'abnormal'].includes(verdict), `the dropped image got "${verdict}"`);
    assertClean(s, await pageState(page), 'app under CSP');

    // Injected inline script, inline event handler, eval and new Function are all refused.
    const blocked = await page.evaluate(async () => {
      window.__ran = [];
      const el = document.createElement('script');
      el.textContent = 'window.__ran.push("inline")';
      document.body.append(el);
      const img = document.createElement('img');
      img.setAttribute('onerror', 'window.__ran.push("handler")');
      img.src = 'data:,not-an-image';
      document.body.append(img);
      const js = document.createElement('script');
      js.src = 'data:text/javascript,window.__ran.push("data-url")';
      document.body.append(js);
      const probe = document.createElement('script');
      probe.src = '/hostile/csp_probe.js';
      const loaded = new Promise((resolve, reject) => {
        probe.onload = resolve;
        probe.onerror = () => reject(new Error('/hostile/csp_probe.js did not load'));
      });
      document.body.append(probe);
      await loaded;
      const evalResult = document.body.dataset.eval;
      const fnResult = document.body.dataset.function;
      await new Promise((r) => setTimeout(r, 500));
      return { ran: window.__ran, evalResult, fnResult, violations: window.__violations };
    });
    t.diagnostic(`violations reported for the injected code: ${blocked.violations.join(' | ')}`);
    assert.deepEqual(blocked.ran, [], 'injected script ran');
    assert.equal(blocked.evalResult, 'EvalError');
    assert.equal(blocked.fnResult, 'EvalError');
    assert.ok(blocked.violations.some((v) => v.startsWith('script-src-elem') && / inline/.test(v)),
      `no violation for the inline script: ${blocked.violations}`);
    assert.ok(blocked.violations.some((v) => v.startsWith('script-src-attr')),
      `no violation for the inline handler: ${blocked.violations}`);
    assert.ok(blocked.violations.some((v) => v.startsWith('script-src') && / eval/.test(v)),
      `no violation for eval: ${blocked.violations}`);
    await s.context.close();
  });

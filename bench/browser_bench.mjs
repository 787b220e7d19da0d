#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Browser measurements of the Anomalens web app in Debian's headless Chromium (playwright-core):
//
//   (a) cold start: a fresh browser context (empty HTTP cache, no service worker) loads the app
//       and one 300x300 ELPV PNG is dropped as soon as the page can take it; timed from
//       navigation start (performance.timeOrigin) to the first verdict in the DOM, with the model
//       ready time and the frame after the verdict; then a repeat visit (reload, same context);
//   (b) warm end to end: the app is loaded, one PNG is dropped at a time, timed from the drop
//       event to its verdict in the DOM (and the next frame);
//   (c) library only: Anomalens.classify() on the same bytes (no UI), and the wasm heap size
//       (Anomalens#runtime(); wasm memory only grows, so its size is the peak), for the pthread
//       build (threads 'auto'; the page is cross-origin isolated), the SIMD build on one thread
//       and the non-SIMD core (web/core/anomalens_core_nosimd.*);
//   (d) .wasm and glue .js sizes, raw, gzip -9 and brotli.
//
//   node bench/browser_bench.mjs [--cold 5] [--warm 20] [--model FILE] [--image FILE] [--out FILE]
//                                [--cold-only] [--no-isolate]
//
// --cold-only: (a) only. --no-isolate: serve without COOP/COEP, as a host that cannot set them
// would (the app then runs the single-threaded SIMD build); only with --cold-only, since (c)
// measures the pthread build.
//
// Model: --model, else models/default.alm, else build/fixtures/allops.alm. One JSON object per
// metric on stdout, then a table; everything goes to build/bench/browser.json. Numbers only;
// nothing here passes or fails on time.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { start } from '../scripts/serve.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const opts = { cold: 5, warm: 20, model: null, image: null, coldOnly: false, isolate: true,
    out: path.join(repoRoot, 'build/bench/browser.json') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--cold' || a === '--warm') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) throw new Error(`${a} must be a positive integer`);
      opts[a.slice(2)] = n;
    } else if (a === '--model') opts.model = path.resolve(value());
    else if (a === '--image') opts.image = path.resolve(value());
    else if (a === '--out') opts.out = path.resolve(value());
    else if (a === '--cold-only') opts.coldOnly = true;
    else if (a === '--no-isolate') opts.isolate = false;
    else if (a === '-h' || a === '--help') {
      console.log('usage: node bench/browser_bench.mjs [--cold N] [--warm N] [--model FILE] ' +
        '[--image FILE] [--out FILE] [--cold-only] [--no-isolate]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a} (see --help)`);
  }
  if (!opts.isolate && !opts.coldOnly) throw new Error('--no-isolate needs --cold-only');
  return opts;
}

function pickModel(explicit) {
  if (explicit) {
    if (!fs.existsSync(explicit)) throw new Error(`model ${explicit} does not exist`);
    return explicit;
  }
  const candidates = ['models/default.alm', 'build/fixtures/allops.alm'].map((p) => path.join(repoRoot, p));
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) {
    throw new Error('no model: models/default.alm and build/fixtures/allops.alm are both missing ' +
      '(/usr/bin/python3 scripts/make_fixtures.py build/fixtures)');
  }
  return found;
}

function pickImage(explicit) {
  if (explicit) return explicit;
  const dir = '/work/shared/data/elpv/normal';
  const first = fs.existsSync(dir) && fs.readdirSync(dir).filter((f) => f.endsWith('.png')).sort()[0];
  if (!first) throw new Error(`no ELPV PNG in ${dir}; pass --image FILE`);
  return path.join(dir, first);
}

function pngSize(bytes) {
  if (bytes.length < 24 || bytes.toString('latin1', 1, 4) !== 'PNG') return null;
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

// The non-SIMD core, if built: the copy in web/core/, else the CMake output.
function noSimdCore() {
  for (const [dir, base] of [['web/core', 'anomalens_core_nosimd'], ['build/wasm-nosimd', 'anomalens_core']]) {
    const js = path.join(repoRoot, dir, `${base}.js`);
    const wasm = path.join(repoRoot, dir, `${base}.wasm`);
    if (fs.existsSync(js) && fs.existsSync(wasm)) return { js, wasm };
  }
  return null;
}

function stats(values) {
  const v = [...values].sort((a, b) => a - b);
  const q = (p) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(p * v.length) - 1))];
  const median = v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  return { n: v.length, median, p90: q(0.9), min: v[0], max: v.at(-1) };
}

const round = (x, d = 2) => (x === null || x === undefined ? x : Number(x.toFixed(d)));

const kChromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync'];

// Runs in the page before any of its scripts: records when the model is ready and when the first
// verdict appears, and drops the file as soon as the app's handlers exist (module scripts run
// before DOMContentLoaded).
function coldInitScript({ b64, name }) {
  const t = (window.__bench = { modelReady: null, verdict: null, painted: null, dropped: null, label: null });
  const check = () => {
    const body = document.body;
    if (body && t.modelReady === null && body.dataset.modelState === 'ready') t.modelReady = performance.now();
    const el = document.querySelector('#gallery .result');
    if (el && t.verdict === null && el.dataset.verdict && el.dataset.verdict !== 'pending') {
      t.verdict = performance.now();
      t.label = el.dataset.verdict;
      requestAnimationFrame(() => { t.painted = performance.now(); });
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true,
    attributeFilter: ['data-verdict', 'data-model-state'] });
  document.addEventListener('DOMContentLoaded', () => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, { type: 'image/png' }));
    const zone = document.getElementById('dropzone');
    t.dropped = performance.now();
    for (const type of ['dragenter', 'dragover', 'drop']) {
      zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  });
}

async function readColdTimes(page) {
  await page.waitForFunction(() => window.__bench?.painted !== null && window.__bench?.painted !== undefined,
    null, { timeout: 120000 });
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    return { ...window.__bench, domContentLoaded: nav?.domContentLoadedEventEnd ?? null,
      engine: document.body.dataset.engine ?? null };
  });
}

async function coldStarts(browser, srv, image, runs) {
  const first = [];
  const repeat = [];
  for (let i = 0; i < runs; i++) {
    // A fresh context is a first visit: empty HTTP cache and storage, no service worker yet.
    const context = await browser.newContext({ serviceWorkers: 'allow' });
    await context.addInitScript(coldInitScript, image);
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${srv.url}/`);
    first.push(await readColdTimes(page));
    // The service worker caches in the background; let it finish before the repeat visit.
    await page.waitForFunction(() => document.body.dataset.offlineReady === 'true', null,
      { timeout: 60000 }).catch(() => {});
    await page.reload();
    repeat.push(await readColdTimes(page));
    if (errors.length) throw new Error(`page errors during cold start: ${errors.join('; ')}`);
    await context.close();
  }
  return { first, repeat, engine: first[0]?.engine ?? null };
}

async function warmDrops(browser, srv, image, runs, warmup = 3) {
  const context = await browser.newContext({ serviceWorkers: 'block' });
  const page = await context.newPage();
  await page.goto(`${srv.url}/`);
  await page.waitForFunction(() => document.body.dataset.modelState === 'ready', null, { timeout: 120000 });
  const out = [];
  for (let i = 0; i < warmup + runs; i++) {
    const name = `drop-${i}.png`;
    const t = await page.evaluate(({ b64, name }) => new Promise((resolve, reject) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], name, { type: 'image/png' }));
      const zone = document.getElementById('dropzone');
      const gallery = document.getElementById('gallery');
      let t0;
      const done = () => {
        const el = gallery.querySelector(`.result[data-file="${name}"]`);
        if (!el || !el.dataset.verdict || el.dataset.verdict === 'pending') return false;
        const dom = performance.now() - t0;
        requestAnimationFrame(() => resolve({ dom, painted: performance.now() - t0, verdict: el.dataset.verdict }));
        return true;
      };
      const obs = new MutationObserver(() => {
        if (done()) obs.disconnect();
      });
      obs.observe(gallery, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-verdict'] });
      setTimeout(() => reject(new Error(`no verdict for ${name} after 60 s`)), 60000);
      t0 = performance.now();
      for (const type of ['dragenter', 'dragover', 'drop']) {
        zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
      }
    }), { b64: image.b64, name });
    if (i >= warmup) out.push(t);
  }
  await context.close();
  return out;
}

// Library only (no UI), in a blank same-origin page: classify() latency and the wasm heap.
async function libraryRuns(browser, srv, image, runs, workerUrl, threads) {
  const context = await browser.newContext({ serviceWorkers: 'block' });
  const page = await context.newPage();
  await page.goto(`${srv.url}/blank.html`);
  const r = await page.evaluate(async ({ b64, runs, workerUrl, threads }) => {
    const { Anomalens } = await import('/anomalens.js');
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const t0 = performance.now();
    const clf = await Anomalens.create({ model: '/models/default.alm', workerUrl, threads });
    const createMs = performance.now() - t0;
    const afterLoad = await clf.runtime();
    const times = [];
    const infer = [];
    const decode = [];
    const preprocess = [];
    const worker = [];
    let score = null;
    for (let i = 0; i < runs + 3; i++) {
      const s = performance.now();
      const res = await clf.classify(bytes);
      if (i >= 3) {
        times.push(performance.now() - s);
        infer.push(res.timings.infer);
        decode.push(res.timings.decode);
        preprocess.push(res.timings.preprocess);
        worker.push(res.elapsedMs);
      }
      score = res.score;
    }
    const after = await clf.runtime();
    await clf.close();
    return { createMs, afterLoad, after, times, infer, decode, preprocess, worker, score };
  }, { b64: image.b64, runs, workerUrl, threads });
  await context.close();
  return r;
}

function sizes(label, jsFile, wasmFile) {
  const wasm = fs.readFileSync(wasmFile);
  const js = fs.readFileSync(jsFile);
  const gz = (b) => zlib.gzipSync(b, { level: 9 }).length;
  const br = (b) => zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
  return { build: label, wasm_raw: wasm.length, wasm_gzip: gz(wasm), wasm_brotli: br(wasm),
    js_raw: js.length, js_gzip: gz(js) };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const coreJs = path.join(repoRoot, 'web/core/anomalens_core.js');
  const coreWasm = path.join(repoRoot, 'web/core/anomalens_core.wasm');
  if (!fs.existsSync(coreJs) || !fs.existsSync(coreWasm)) {
    throw new Error(`the wasm core is missing (${coreWasm}): run ./scripts/build.sh first`);
  }
  const modelPath = pickModel(opts.model);
  const imagePath = pickImage(opts.image);
  const imageBytes = fs.readFileSync(imagePath);
  const dims = pngSize(imageBytes);
  const image = { b64: imageBytes.toString('base64'), name: path.basename(imagePath) };
  const nosimd = noSimdCore();

  const modelsRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'anomalens-bench-models-'));
  fs.copyFileSync(modelPath, path.join(modelsRoot, 'default.alm'));
  const overrides = { '/blank.html': path.join(repoRoot, 'tests/web/blank.html') };
  if (nosimd) {
    overrides['/core/anomalens_core_nosimd.js'] = nosimd.js;
    overrides['/core/anomalens_core_nosimd.wasm'] = nosimd.wasm;
  }
  const srv = await start({ port: 0, modelsRoot, overrides, isolate: opts.isolate });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: kChromiumArgs });
  const common = {
    model: path.relative(repoRoot, modelPath), model_bytes: fs.statSync(modelPath).size,
    image: imagePath, image_size: dims ? `${dims.width}x${dims.height}` : 'unknown',
  };
  const metrics = [];
  const emit = (m) => {
    const rec = { ...m, ...common };
    metrics.push(rec);
    console.log(JSON.stringify(rec));
  };
  const emitStats = (metric, values, extra = {}) => {
    const s = stats(values);
    emit({ metric, unit: 'ms', n: s.n, median: round(s.median), p90: round(s.p90), min: round(s.min),
      max: round(s.max), ...extra });
  };

  try {
    console.error(`browser_bench: model ${common.model}, image ${image.name} (${common.image_size}), ` +
      `Chromium ${browser.version()}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);

    const cold = await coldStarts(browser, srv, image, opts.cold);
    common.cold_start_build = cold.engine;
    for (const [kind, runs] of [['cold', cold.first], ['repeat_visit', cold.repeat]]) {
      emitStats(`${kind}_to_first_verdict`, runs.map((r) => r.verdict),
        { from: 'navigation start', to: 'first verdict in the DOM', fresh_context: kind === 'cold' });
      emitStats(`${kind}_to_first_verdict_painted`, runs.map((r) => r.painted),
        { from: 'navigation start', to: 'animation frame after the verdict' });
      emitStats(`${kind}_model_ready`, runs.map((r) => r.modelReady),
        { from: 'navigation start', to: 'body[data-model-state=ready]' });
      emitStats(`${kind}_dom_content_loaded`, runs.map((r) => r.domContentLoaded),
        { from: 'navigation start', to: 'DOMContentLoaded end' });
    }

    if (!opts.coldOnly) {
      const warm = await warmDrops(browser, srv, image, opts.warm);
      emitStats('warm_drop_to_verdict', warm.map((r) => r.dom), { from: 'drop event', to: 'verdict in the DOM' });
      emitStats('warm_drop_to_verdict_painted', warm.map((r) => r.painted),
        { from: 'drop event', to: 'animation frame after the verdict' });

      // The page is cross-origin isolated (serve.mjs), so threads 'auto' runs the pthread build.
      const builds = [['simd-mt', '/worker.js', 'auto'], ['simd', '/worker.js', 1]];
      if (nosimd) builds.push(['nosimd', '/worker.js?simd=0', 1]);
      const scores = {};
      for (const [build, workerUrl, threads] of builds) {
        const lib = await libraryRuns(browser, srv, image, opts.warm, workerUrl, threads);
        if (lib.after.build !== build) {
          throw new Error(`expected the ${build} core, the worker ran ${lib.after.build} (${lib.after.coreUrl})`);
        }
        scores[build] = lib.score;
        emitStats(`library_classify_${build}`, lib.times, { to: 'Anomalens.classify() resolved (PNG bytes)' });
        emitStats(`library_worker_${build}`, lib.worker, { to: 'time inside the worker (decode to result)' });
        emitStats(`library_decode_${build}`, lib.decode, { to: 'core timings.decode (PNG decode in wasm)' });
        emitStats(`library_preprocess_${build}`, lib.preprocess, { to: 'core timings.preprocess' });
        emitStats(`library_infer_${build}`, lib.infer, { to: 'core timings.infer' });
        emit({ metric: `library_create_${build}`, unit: 'ms', value: round(lib.createMs),
          to: 'Anomalens.create() resolved (worker, core, model)', threads: lib.after.threads });
        emit({ metric: `wasm_memory_after_load_${build}`, unit: 'bytes', value: lib.afterLoad.wasmMemoryBytes });
        emit({ metric: `wasm_memory_peak_${build}`, unit: 'bytes', value: lib.after.wasmMemoryBytes,
          note: `wasm memory only grows: size after ${opts.warm + 3} classifications (INITIAL_MEMORY 16 MB)` });
      }
      if (scores.nosimd !== undefined) {
        emit({ metric: 'nosimd_vs_simd_score_abs_diff', unit: '', value: Math.abs(scores.nosimd - scores.simd) });
      }
      emit({ metric: 'mt_vs_simd_score_abs_diff', unit: '', value: Math.abs(scores['simd-mt'] - scores.simd) });

      const mt = ['js', 'wasm'].map((e) => path.join(repoRoot, `web/core/anomalens_core_mt.${e}`));
      for (const s of [sizes('simd', coreJs, coreWasm), ...(fs.existsSync(mt[1]) ? [sizes('simd-mt', ...mt)] : []),
        ...(nosimd ? [sizes('nosimd', nosimd.js, nosimd.wasm)] : [])]) {
        for (const [k, v] of Object.entries(s)) {
          if (k !== 'build') emit({ metric: `${k}_${s.build}`, unit: 'bytes', value: v });
        }
      }
    }
  } finally {
    await browser.close();
    await srv.close();
    fs.rmSync(modelsRoot, { recursive: true, force: true });
  }

  const report = {
    command: `node bench/browser_bench.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    date: new Date().toISOString(),
    chromium: '/usr/bin/chromium (headless, playwright-core)',
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? 'unknown',
    load_average: os.loadavg(),
    ...common,
    nosimd_core: nosimd ? path.relative(repoRoot, nosimd.wasm) : null,
    metrics,
  };
  fs.mkdirSync(path.dirname(opts.out), { recursive: true });
  fs.writeFileSync(opts.out, JSON.stringify(report, null, 2) + '\n');

  const rows = metrics.map((m) => [m.metric,
    m.median !== undefined ? `${m.median} ms (p90 ${m.p90}, n=${m.n})`
      : m.unit === 'bytes' ? `${m.value} B (${(m.value / 1024).toFixed(1)} KiB)` : `${m.value} ${m.unit}`]);
  const w = Math.max(...rows.map((r) => r[0].length));
  console.log('');
  console.log(`${'metric'.padEnd(w)}  value`);
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
  console.log(`\nmodel ${common.model}; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; ` +
    `written to ${opts.out}`);
}

main().catch((err) => {
  console.error(`browser_bench: ${err.message}`);
  process.exit(1);
});

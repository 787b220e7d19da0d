// SPDX-License-Identifier: Apache-2.0
// Shared setup for the browser tests: test server, Debian Chromium through playwright-core,
// request auditing, the native CLI as the reference, and a fake webcam.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { start } from '../../scripts/serve.mjs';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const artifactsDir = path.join(repoRoot, 'build/test-artifacts');
export const elpvDir = '/work/shared/data/elpv';
export const cliPath = path.join(repoRoot, 'build/native/anomalens');
export const realCorePath = path.join(repoRoot, 'web/core/anomalens_core.js');
export const fakeCorePath = path.join(repoRoot, 'tests/web/fake_core.mjs');

export const hasRealCore = fs.existsSync(realCorePath) &&
  fs.existsSync(path.join(repoRoot, 'web/core/anomalens_core.wasm'));
export const hasCli = fs.existsSync(cliPath);

// The browser tests compare against the native CLI. Set ANOMALENS_WEB_ALLOW_FAKE=1 only to
// develop the UI before the wasm core and the CLI exist: the comparisons are then skipped.
export const allowFake = process.env.ANOMALENS_WEB_ALLOW_FAKE === '1';

/**
 * Picks the default model the app will load (and the CLI compares with): ANOMALENS_WEB_MODEL,
 * else models/default.alm, else the allops test fixture.
 */
export function defaultModelPath() {
  if (process.env.ANOMALENS_WEB_MODEL) return path.resolve(process.env.ANOMALENS_WEB_MODEL);
  const candidates = [
    path.join(repoRoot, 'models/default.alm'),
    path.join(repoRoot, 'build/fixtures/allops.alm'),
  ];
  return candidates.find((p) => fs.existsSync(p)) ?? null;
}

/** A second, different model for the model-switch test. */
export function otherModelPath() {
  const candidates = [
    path.join(repoRoot, 'build/fixtures/tiny.alm'),
    path.join(repoRoot, 'build/fixtures/allops_f16.alm'),
  ];
  return candidates.find((p) => fs.existsSync(p)) ?? null;
}

export function listImages(sub, n) {
  const dir = path.join(elpvDir, sub);
  return fs.readdirSync(dir).filter((f) => f.endsWith('.png')).sort().slice(0, n)
    .map((f) => path.join(dir, f));
}

/** Runs `anomalens classify --json --model M files...`; returns Map basename -> record. */
export function cliClassify(modelPath, files) {
  // Exit status 1 means some files failed; their records are in the output like the others.
  let run;
  for (let attempt = 0; attempt < 5; attempt++) {
    run = spawnSync(cliPath, ['classify', '--json', '--model', modelPath, ...files],
      { encoding: 'utf8', maxBuffer: 64 << 20 });
    // EACCES/ETXTBSY/ENOENT: the binary is being relinked by a concurrent build; wait for it.
    if (!['EACCES', 'ETXTBSY', 'ENOENT'].includes(run.error?.code)) break;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000);
  }
  if (run.error || (run.status !== 0 && run.status !== 1) || !run.stdout.trim()) {
    throw new Error(`${cliPath} classify failed (status ${run.status}): ${run.error?.message ?? run.stderr}`);
  }
  const out = run.stdout;
  const map = new Map();
  for (const line of out.split('\n')) {
    if (!line.trim()) continue;
    const rec = JSON.parse(line);
    map.set(path.basename(rec.file), rec);
  }
  return map;
}

/** A 4:2:0 y4m of one image for Chromium's fake camera. */
export function makeY4m(imagePath, outPath) {
  const r = spawnSync('ffmpeg', ['-y', '-loglevel', 'error', '-loop', '1', '-i', imagePath,
    '-frames:v', '10', '-pix_fmt', 'yuv420p', outPath]);
  if (r.status !== 0) throw new Error(`ffmpeg failed for ${imagePath}: ${r.stderr}`);
  return outPath;
}

const kChromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync'];

export async function launch({ camera = null } = {}) {
  const args = [...kChromiumArgs];
  if (camera) {
    args.push('--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-video-capture=${camera}`);
  }
  return chromium.launch({ executablePath: '/usr/bin/chromium', args });
}

/**
 * Starts the test server over a models/ dir holding default.alm (a copy of modelPath). Uses the
 * fake core only when allowed and the real one is missing.
 */
export async function startServer(modelPath) {
  const modelsRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'anomalens-models-'));
  if (modelPath) fs.copyFileSync(modelPath, path.join(modelsRoot, 'default.alm'));
  const overrides = {};
  if (!hasRealCore) {
    if (!allowFake) {
      throw new Error(`the wasm core is missing (${realCorePath}): run ./scripts/build.sh first ` +
        '(or set ANOMALENS_WEB_ALLOW_FAKE=1 to test the UI with a fake core)');
    }
    overrides['/core/anomalens_core.js'] = fakeCorePath;
  }
  const srv = await start({ port: 0, modelsRoot, overrides });
  const close = srv.close;
  srv.close = async () => {
    await close();
    fs.rmSync(modelsRoot, { recursive: true, force: true });
  };
  return srv;
}

/**
 * New context + page; records every request URL (pages, workers, service worker) and every
 * console error / CSP violation, so tests can assert nothing left the test server.
 */
export async function openPage(browser, srv, { path: urlPath = '/', viewport, serviceWorkers = 'block' } = {}) {
  const context = await browser.newContext({ viewport: viewport ?? { width: 1280, height: 900 },
    serviceWorkers, acceptDownloads: true });
  const requests = [];
  const problems = [];
  context.on('request', (req) => requests.push(req.url()));
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations = window.__cspViolations ?? [];
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  if (urlPath !== null) await page.goto(srv.url + urlPath);
  return { context, page, requests, problems };
}

/** Every request must go to the test server (blob:/data: are in-page). */
export function foreignRequests(requests, srv) {
  return requests.filter((u) => !u.startsWith(srv.url + '/') && !u.startsWith('blob:') &&
    !u.startsWith('data:'));
}

export async function screenshot(page, name, { fullPage = true } = {}) {
  fs.mkdirSync(artifactsDir, { recursive: true });
  const file = path.join(artifactsDir, name);
  await page.screenshot({ path: file, fullPage });
  return file;
}

/** Drops real files on a selector, as a user dragging from the file manager. */
export async function dropFiles(page, selector, files) {
  const payload = files.map((f) => ({
    name: typeof f === 'string' ? path.basename(f) : f.name,
    type: typeof f === 'string' ? 'image/png' : (f.type ?? ''),
    b64: (typeof f === 'string' ? fs.readFileSync(f) : Buffer.from(f.bytes)).toString('base64'),
  }));
  const dt = await page.evaluateHandle((items) => {
    const transfer = new DataTransfer();
    for (const { name, type, b64 } of items) {
      const bin = atob(b64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      transfer.items.add(new File([bytes], name, { type }));
    }
    return transfer;
  }, payload);
  for (const type of ['dragenter', 'dragover', 'drop']) {
    await page.dispatchEvent(selector, type, { dataTransfer: dt });
  }
}

/** Reads every result card's data attributes. */
export async function readResults(page) {
  return page.$$eval('#gallery .result', (els) => els.map((el) => ({
    file: el.dataset.file, path: el.dataset.path, verdict: el.dataset.verdict,
    score: el.dataset.score === '' ? null : Number(el.dataset.score),
    text: el.innerText,
  })));
}

/** Waits until n results exist and none is pending. */
export async function waitForResults(page, n, timeout = 60000) {
  await page.waitForFunction((count) => {
    const els = document.querySelectorAll('#gallery .result');
    return els.length >= count && [...els].every((e) => e.dataset.verdict !== 'pending') &&
      !document.body.dataset.busy;
  }, n, { timeout });
  return readResults(page);
}

/**
 * Drops real paths (files or whole folders) from disk through Chromium's own drag and drop
 * (CDP Input.dispatchDragEvent), so the page sees genuine directory entries.
 */
export async function dropPaths(page, selector, paths) {
  const box = await page.locator(selector).boundingBox();
  const cdp = await page.context().newCDPSession(page);
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  const data = { items: [], files: paths, dragOperationsMask: 1 };
  for (const type of ['dragEnter', 'dragOver', 'drop']) {
    await cdp.send('Input.dispatchDragEvent', { type, x, y, data });
  }
  await cdp.detach();
}

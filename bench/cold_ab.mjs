#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// A/B comparison of the app's cold start: two copies of web/ (e.g. before and after a change)
// served side by side, loaded in alternating fresh Chromium contexts (empty cache, no service
// worker; a 300x300 ELPV PNG dropped at DOMContentLoaded), so that both see the same phases
// of a noisy machine. Prints the median and every run of: navigation -> first verdict in the
// DOM, -> model ready, and the repeat visit (reload: HTTP cache and service worker).
//
//   cp -r web /tmp/web-before   # ...then change web/
//   node bench/cold_ab.mjs /tmp/web-before web [RUNS=6] [noiso]
//
// noiso serves without COOP/COEP (the single-threaded build runs). MODELS_A / MODELS_B (env)
// serve another models/ folder to that side, to compare two default models with one web/:
//   MODELS_A=/tmp/models-plain node bench/cold_ab.mjs web web 7
// Numbers only.
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { start } from '../scripts/serve.mjs';
if (process.argv.length < 4) {
  console.error('usage: node bench/cold_ab.mjs WEB_ROOT_A WEB_ROOT_B [RUNS] [noiso]');
  process.exit(2);
}
const [rootA, rootB] = [process.argv[2], process.argv[3]];
const runs = Number(process.argv[4] ?? 6);
const isolate = process.argv[5] !== 'noiso';
const srvs = [await start({ port: 0, webRoot: rootA, isolate, modelsRoot: process.env.MODELS_A }),
  await start({ port: 0, webRoot: rootB, isolate, modelsRoot: process.env.MODELS_B })];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
const image = new URL('../../shared/data/elpv/normal/cell0004.png', import.meta.url);
const b64 = fs.readFileSync(image).toString('base64');
const res = [{ cold: [], ready: [], repeat: [] }, { cold: [], ready: [], repeat: [] }];
function init({ b64 }) {
  const t = (window.__bench = { verdict: null, ready: null });
  new MutationObserver(() => {
    if (t.ready === null && document.body?.dataset.modelState === 'ready') t.ready = performance.now();
    const el = document.querySelector('#gallery .result');
    if (el && t.verdict === null && el.dataset.verdict && el.dataset.verdict !== 'pending') t.verdict = performance.now();
  }).observe(document, { subtree: true, childList: true, attributes: true });
  document.addEventListener('DOMContentLoaded', () => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], 'a.png', { type: 'image/png' }));
    const zone = document.getElementById('dropzone');
    for (const type of ['dragenter', 'dragover', 'drop']) zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
}
for (let r = 0; r < runs; r++) {
  for (const k of (r % 2 ? [1, 0] : [0, 1])) {
    const context = await browser.newContext({ serviceWorkers: 'allow' });
    await context.addInitScript(init, { b64 });
    const page = await context.newPage();
    await page.goto(srvs[k].url + '/');
    await page.waitForFunction(() => window.__bench?.verdict, null, { timeout: 60000 });
    const t = await page.evaluate(() => window.__bench);
    res[k].cold.push(t.verdict); res[k].ready.push(t.ready);
    await page.waitForFunction(() => document.body.dataset.offlineReady === 'true', null, { timeout: 60000 }).catch(() => {});
    await page.reload();
    await page.waitForFunction(() => window.__bench?.verdict, null, { timeout: 60000 });
    res[k].repeat.push(await page.evaluate(() => window.__bench.verdict));
    await context.close();
  }
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
for (const k of [0, 1]) {
  const name = k ? rootB : rootA;
  console.log(`${name.padEnd(20)} cold ${med(res[k].cold).toFixed(0)} [${res[k].cold.map((x) => x.toFixed(0)).join(' ')}]  ready ${med(res[k].ready).toFixed(0)}  repeat ${med(res[k].repeat).toFixed(0)} [${res[k].repeat.map((x) => x.toFixed(0)).join(' ')}]`);
}
await browser.close(); for (const s of srvs) await s.close();

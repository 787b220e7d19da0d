// SPDX-License-Identifier: Apache-2.0
// The floor under the cold-start figure: how long this browser on this machine takes, in a
// fresh context, to run a page's first module script and to hear back from a module worker,
// for a page that does nothing else. Same server (scripts/serve.mjs, COOP/COEP on), browser
// flags and protocol as the cold start in bench/browser_bench.mjs, so the difference between
// the two is what the app itself costs.
//
//   node bench/cold_floor.mjs [RUNS (9)]
//
// Prints one JSON line per run and a summary (median, min, max) of: responseEnd of the HTML,
// the module script's first statement, DOMContentLoaded, and the worker's first message, all
// in ms from navigation start.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { start } from '../scripts/serve.mjs';

const runs = Number(process.argv[2] ?? 9);
if (!Number.isInteger(runs) || runs < 1) throw new Error('usage: node bench/cold_floor.mjs [RUNS]');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anomalens-cold-floor-'));
fs.writeFileSync(path.join(dir, 'index.html'),
  '<!doctype html><html><head><meta charset="utf-8"><script type="module" src="page.js"></script>' +
  '</head><body>floor</body></html>\n');
fs.writeFileSync(path.join(dir, 'page.js'),
  'window.__floor = { module: performance.now(), worker: null };\n' +
  "const w = new Worker(new URL('worker.js', import.meta.url), { type: 'module' });\n" +
  'w.onmessage = () => { window.__floor.worker = performance.now(); };\n');
fs.writeFileSync(path.join(dir, 'worker.js'), "postMessage('up');\n");

const kChromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync'];

const srv = await start({ port: 0, webRoot: dir });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: kChromiumArgs });
const rows = [];
try {
  console.error(`cold_floor: Chromium ${browser.version()}, load average ` +
    os.loadavg().map((x) => x.toFixed(1)).join(' '));
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${srv.url}/`);
    await page.waitForFunction(() => window.__floor?.worker !== null && window.__floor?.worker !== undefined);
    const r = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      return { html_response_end: nav.responseEnd, module_runs: window.__floor.module,
        dom_content_loaded: nav.domContentLoadedEventEnd, worker_first_message: window.__floor.worker };
    });
    rows.push(r);
    console.log(JSON.stringify({ run: i + 1, ...Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Math.round(v)])) }));
    await context.close();
  }
} finally {
  await browser.close();
  await srv.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
const summary = {};
for (const key of Object.keys(rows[0])) {
  const v = rows.map((r) => r[key]).sort((a, b) => a - b);
  const median = v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  summary[key] = { median: Math.round(median), min: Math.round(v[0]), max: Math.round(v.at(-1)) };
}
console.log(JSON.stringify({ metric: 'cold_floor', unit: 'ms', from: 'navigation start', runs, ...summary }));

// SPDX-License-Identifier: Apache-2.0
// One-class fitting and heatmap cost in Chromium (issue 7's speed targets), with the real wasm
// core served by scripts/serve.mjs:
//   (a) Anomalens.fit() on N normal ELPV images (default 200) from the default model as the
//       base, one thread and (on this cross-origin isolated page) all cores: wall time from the
//       call to the returned classifier, images already in memory as Blobs (no network);
//   (b) classify() with the fitted model, with and without { heatmap: true }, rounds
//       interleaved, and the default classifier on the same images: median per call.
// Numbers only; no test depends on them.
//
//   node bench/fit_bench.mjs [--images 200] [--rounds 20] [--base FILE.alm] [--out build/bench/fit_browser.json]
// --base: the backbone to fit (default models/default.alm), e.g. the two-backbone one of
// scripts/oneclass_backbone.py --centernet.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { start } from '../scripts/serve.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const elpv = path.resolve(repoRoot, '../shared/data/elpv');

function parseArgs(argv) {
  const opts = { images: 200, rounds: 20, base: path.join(repoRoot, 'models/default.alm'),
    out: path.join(repoRoot, 'build/bench/fit_browser.json') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--images') opts.images = Number(value());
    else if (a === '--rounds') opts.rounds = Number(value());
    else if (a === '--out') opts.out = path.resolve(value());
    else if (a === '--base') opts.base = path.resolve(value());
    else throw new Error(`unknown argument ${a} (usage: node bench/fit_bench.mjs [--images N] [--rounds N] [--base FILE] [--out FILE])`);
  }
  if (!(opts.images >= 2 && opts.rounds >= 1)) throw new Error('--images >= 2 and --rounds >= 1');
  return opts;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null;
};
const round = (x, d = 2) => Number(x.toFixed(d));

// Runs in the page: fetches the images once, fits with `threads`, then times classify calls.
async function pageRun({ fitUrls, testUrls, threads, rounds }) {
  const { Anomalens } = await import('/anomalens.js');
  const blobs = async (urls) => Promise.all(urls.map(async (u) => {
    const r = await fetch(u);
    if (!r.ok) throw new Error(`${u}: HTTP ${r.status}`);
    return new Blob([await r.arrayBuffer()], { type: 'image/png' });
  }));
  const normal = await blobs(fitUrls);
  const test = await Promise.all((await blobs(testUrls)).map((b) => b.arrayBuffer()));
  const t0 = performance.now();
  const det = await Anomalens.fit({ normal, base: '/models/base.alm', threads });
  const fitMs = performance.now() - t0;
  const summary = det.fitSummary();
  const runtime = await det.runtime();
  const clf = await Anomalens.create({ model: '/models/default.alm', threads });
  const times = { heatmap: [], plain: [], classifier: [] };
  const call = async (key, fn) => {
    const s = performance.now();
    await fn();
    times[key].push(performance.now() - s);
  };
  for (const bytes of test.slice(0, 3)) {  // warm-up
    await det.classify(bytes.slice(0), { heatmap: true });
    await det.classify(bytes.slice(0));
    await clf.classify(bytes.slice(0));
  }
  for (let r = 0; r < rounds; r++) {
    const bytes = test[r % test.length];
    await call('heatmap', () => det.classify(bytes.slice(0), { heatmap: true }));
    await call('plain', () => det.classify(bytes.slice(0)));
    await call('classifier', () => clf.classify(bytes.slice(0)));
  }
  await det.close();
  await clf.close();
  return { fitMs, summary, runtime, times };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const normals = fs.readdirSync(path.join(elpv, 'normal')).filter((f) => f.endsWith('.png')).sort();
  const abnormals = fs.readdirSync(path.join(elpv, 'abnormal')).filter((f) => f.endsWith('.png')).sort();
  if (normals.length < opts.images + 10) throw new Error(`need ${opts.images + 10} normal images in ${elpv}`);
  // Served from a temp models/ root: the default model and links to the images.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'anomalens-fit-bench-'));
  fs.copyFileSync(path.join(repoRoot, 'models/default.alm'), path.join(root, 'default.alm'));
  if (!fs.existsSync(opts.base)) throw new Error(`--base ${opts.base}: not found`);
  fs.copyFileSync(opts.base, path.join(root, 'base.alm'));
  fs.mkdirSync(path.join(root, 'img'));
  const link = (sub, f) => {
    fs.symlinkSync(path.join(elpv, sub, f), path.join(root, 'img', `${sub}_${f}`));
    return `/models/img/${sub}_${f}`;
  };
  const fitUrls = normals.slice(0, opts.images).map((f) => link('normal', f));
  const testUrls = normals.slice(opts.images, opts.images + 5).map((f) => link('normal', f))
    .concat(abnormals.slice(0, 5).map((f) => link('abnormal', f)));
  const srv = await start({ port: 0, modelsRoot: root,
    overrides: { '/blank.html': path.join(repoRoot, 'tests/web/blank.html') } });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  const results = [];
  try {
    console.error(`fit_bench: ${opts.images} normal ELPV images, base ${path.basename(opts.base)}, Chromium ${browser.version()}, ` +
      `load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    for (const threads of [1, 'auto']) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${srv.url}/blank.html`);
      const r = await page.evaluate(pageRun, { fitUrls, testUrls, threads, rounds: opts.rounds });
      await context.close();
      const heat = median(r.times.heatmap);
      const plain = median(r.times.plain);
      const rec = {
        threads: r.runtime.threads, build: r.runtime.build, images: opts.images, base: path.basename(opts.base),
        fit_ms: round(r.fitMs), fit_ms_per_image: round(r.fitMs / opts.images),
        classify_heatmap_median_ms: round(heat), classify_oneclass_median_ms: round(plain),
        classify_default_model_median_ms: round(median(r.times.classifier)),
        heatmap_over_plain: round(heat / plain, 3),
        heatmap_over_default_model: round(heat / median(r.times.classifier), 3),
        rounds: opts.rounds, fit_summary: r.summary,
      };
      results.push(rec);
      console.log(JSON.stringify(rec));
    }
  } finally {
    await browser.close();
    await srv.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
  fs.mkdirSync(path.dirname(opts.out), { recursive: true });
  fs.writeFileSync(opts.out, JSON.stringify({ date: new Date().toISOString(),
    command: `node bench/fit_bench.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    load_average: os.loadavg(), results }, null, 1) + '\n');
  console.error(`results: ${opts.out}`);
}

main().catch((err) => {
  console.error(`fit_bench: ${err.stack ?? err}`);
  process.exit(1);
});

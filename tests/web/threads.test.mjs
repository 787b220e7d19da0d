// SPDX-License-Identifier: Apache-2.0
// The worker's choice of the pthread build:
//   - node: resolveThreads/chooseCore rules, and the worker handler (with the fake core) loading
//     core/anomalens_core_mt.js on isolated pages, falling back to the single-threaded core when
//     that build cannot load, and staying single-threaded elsewhere;
//   - Chromium: a cross-origin isolated page (scripts/serve.mjs's COOP/COEP) runs the real
//     pthread build with one thread per core and scores exactly like one thread; the same app
//     served without COOP/COEP runs the single-threaded core and never fetches the _mt files.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveThreads, chooseCore, mtUrlFor, createWorkerHandler, preloadFromUrl } from '../../web/worker.js';
import { start } from '../../scripts/serve.mjs';
import { repoRoot, hasRealCore, launch, openPage, defaultModelPath, listImages,
  foreignRequests } from './harness.mjs';

const fakeCoreUrl = new URL('./fake_core.mjs', import.meta.url).href;
const model = () => new TextEncoder().encode('ALM1 fake model bytes').buffer;
const kCoreUrl = 'https://app.example/core/anomalens_core.js';
const kMtUrl = 'https://app.example/core/anomalens_core_mt.js';

test('thread count: one unless isolated with SIMD; auto = cores, capped at 4', () => {
  assert.equal(resolveThreads({ requested: 'auto', isolated: true, simd: true, cores: 2 }), 2);
  assert.equal(resolveThreads({ requested: undefined, isolated: true, simd: true, cores: 16 }), 4);
  assert.equal(resolveThreads({ requested: 3, isolated: true, simd: true, cores: 2 }), 3);
  assert.equal(resolveThreads({ requested: 1, isolated: true, simd: true, cores: 8 }), 1);
  assert.equal(resolveThreads({ requested: 'auto', isolated: false, simd: true, cores: 8 }), 1);
  assert.equal(resolveThreads({ requested: 4, isolated: true, simd: false, cores: 8 }), 1);
  assert.equal(resolveThreads({ requested: 'auto', isolated: true, simd: true, cores: undefined }), 1);
  assert.equal(resolveThreads({ requested: 0, isolated: true, simd: true, cores: 2 }), 1);
  assert.equal(resolveThreads({ requested: 'many', isolated: true, simd: true, cores: 2 }), 1);
});

test('chooseCore: threads pick the _mt sibling; wasmBinary or no SIMD never do', () => {
  assert.equal(mtUrlFor(kCoreUrl), kMtUrl);
  assert.deepEqual(chooseCore({ coreUrl: kCoreUrl, simd: true, threads: 2 }),
    { url: kMtUrl, build: 'simd-mt', wasmName: null, threads: 2 });
  assert.deepEqual(chooseCore({ coreUrl: kCoreUrl, mtCoreUrl: 'https://cdn.example/t.js', simd: true, threads: 4 }),
    { url: 'https://cdn.example/t.js', build: 'simd-mt', wasmName: null, threads: 4 });
  assert.deepEqual(chooseCore({ coreUrl: kCoreUrl, simd: true, threads: 1 }),
    { url: kCoreUrl, build: 'simd', wasmName: null, threads: 1 });
  assert.equal(chooseCore({ coreUrl: kCoreUrl, simd: false, threads: 2 }).build, 'nosimd');
  assert.equal(chooseCore({ coreUrl: kCoreUrl, simd: true, threads: 2, haveWasmBinary: true }).build, 'given');
});

// importModule stand-in that serves the fake core under any URL but those in `missing`.
function importer(missing = []) {
  const imported = [];
  const importModule = async (url) => {
    imported.push(url);
    if (missing.includes(url)) throw new TypeError(`Failed to fetch dynamically imported module: ${url}`);
    return import(fakeCoreUrl);
  };
  return { imported, importModule };
}

test('isolated worker loads the pthread build and asks it for one thread per core', async () => {
  const { stats } = await import(fakeCoreUrl);
  const before = stats.threads.length;
  const { imported, importModule } = importer();
  const handle = createWorkerHandler({ simd: true, isolated: true, cores: 2, importModule });
  const init = await handle({ type: 'init', coreUrl: kCoreUrl, model: model(), threads: 'auto' });
  assert.equal(init.ok, true, init.message);
  assert.deepEqual(imported, [kMtUrl]);
  assert.deepEqual(stats.threads.slice(before), [2]);
  const rt = (await handle({ type: 'runtime' })).runtime;
  assert.equal(rt.build, 'simd-mt');
  assert.equal(rt.threads, 2);
  assert.equal(rt.fallback, undefined);
});

test('isolated worker without the pthread build falls back to one thread and says why', async () => {
  const { imported, importModule } = importer([kMtUrl]);
  const handle = createWorkerHandler({ simd: true, isolated: true, cores: 4, importModule });
  const init = await handle({ type: 'init', coreUrl: kCoreUrl, model: model() });
  assert.equal(init.ok, true, init.message);
  assert.deepEqual(imported, [kMtUrl, kCoreUrl]);
  const rt = (await handle({ type: 'runtime' })).runtime;
  assert.equal(rt.build, 'simd');
  assert.equal(rt.threads, 1);
  assert.match(rt.fallback, /anomalens_core_mt\.js/);
  const png = new Uint8Array(64).fill(200);
  png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  png.set([0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82], 56);
  const r = await handle({ type: 'classify', kind: 'bytes', bytes: png.buffer });
  assert.equal(r.ok, true, r.message);
});

test('without isolation, or with threads: 1, the single-threaded core runs', async () => {
  for (const [isolated, threads] of [[false, 'auto'], [false, 4], [true, 1]]) {
    const { imported, importModule } = importer();
    const handle = createWorkerHandler({ simd: true, isolated, cores: 4, importModule });
    assert.equal((await handle({ type: 'init', coreUrl: kCoreUrl, model: model(), threads })).ok, true);
    assert.deepEqual(imported, [kCoreUrl], `isolated ${isolated}, threads ${threads}`);
    const rt = (await handle({ type: 'runtime' })).runtime;
    assert.deepEqual([rt.build, rt.threads], ['simd', 1]);
  }
});

test('a core named at worker start loads before the first request and serves it', async () => {
  const { imported, importModule } = importer();
  const handle = createWorkerHandler({ simd: true, isolated: true, cores: 2, importModule,
    preload: { coreUrl: kCoreUrl, threads: 'auto' } });
  assert.deepEqual(imported, [kMtUrl], 'the import starts before any request');
  const load = await handle({ type: 'load', coreUrl: kCoreUrl, threads: 'auto' });
  assert.equal(load.ok, true, load.message);
  assert.equal((await handle({ type: 'init', model: model() })).ok, true);
  assert.deepEqual(imported, [kMtUrl], 'the preloaded core is used, not loaded again');
  const rt = (await handle({ type: 'runtime' })).runtime;
  assert.deepEqual([rt.build, rt.threads], ['simd-mt', 2]);
});

test('a first request naming another core than the preloaded one gets its own', async () => {
  for (const request of [{ threads: 1 }, { coreUrl: 'https://app.example/other/core.js' }]) {
    const { imported, importModule } = importer();
    const handle = createWorkerHandler({ simd: true, isolated: true, cores: 2, importModule,
      preload: { coreUrl: kCoreUrl, threads: 'auto' } });
    const msg = { type: 'init', coreUrl: kCoreUrl, threads: 'auto', model: model(), ...request };
    assert.equal((await handle(msg)).ok, true);
    const rt = (await handle({ type: 'runtime' })).runtime;
    assert.equal(imported.length, 2, JSON.stringify(imported));
    assert.equal(rt.coreUrl, imported[1]);
    assert.equal(rt.threads, request.threads ?? 2);
  }
  // A failed preload of the core the request names reports that failure, as a load would.
  const { importModule } = importer([kCoreUrl]);
  const handle = createWorkerHandler({ simd: true, isolated: false, cores: 2, importModule,
    preload: { coreUrl: kCoreUrl, threads: 'auto' } });
  const load = await handle({ type: 'load', coreUrl: kCoreUrl, threads: 'auto' });
  assert.equal(load.ok, false);
  assert.equal(load.code, 'core_load_failed');
});

test('the library names the core in the worker URL (no preload with wasmBinary)', async () => {
  const { InProcessWorker, withInProcessWorker } = await import('./in_process_worker.mjs');
  await withInProcessWorker(async () => {
    const { Anomalens } = await import('../../web/anomalens.js');
    const clf = await Anomalens.create({ model: model(), coreUrl: fakeCoreUrl, threads: 1 });
    const url = new URL(InProcessWorker.instances.at(-1).url);
    assert.deepEqual(JSON.parse(decodeURIComponent(url.hash.slice(1))), { coreUrl: fakeCoreUrl, threads: 1 });
    await clf.close();
    const withBinary = await Anomalens.create({ model: model(), coreUrl: fakeCoreUrl, wasmBinary: new Uint8Array(8) });
    assert.equal(new URL(InProcessWorker.instances.at(-1).url).hash, '');
    await withBinary.close();
  });
});

test('a worker URL fragment that names no usable core preloads nothing', async () => {
  for (const href of ['https://app.example/worker.js#not-json', 'https://app.example/worker.js#%7B',
    'https://app.example/worker.js']) {
    assert.equal(preloadFromUrl(href), undefined, href);
  }
  // A preload whose coreUrl is not a URL must not break the worker: the first request chooses.
  const { imported, importModule } = importer();
  const handle = createWorkerHandler({ simd: true, isolated: true, cores: 2, importModule,
    preload: { coreUrl: 'not a url', threads: 'auto' } });
  assert.deepEqual(imported, []);
  assert.equal((await handle({ type: 'init', coreUrl: kCoreUrl, model: model(), threads: 'auto' })).ok, true);
  assert.deepEqual(imported, [kMtUrl]);
});

test('the library checks options.threads and passes it to the worker', async () => {
  const { withInProcessWorker } = await import('./in_process_worker.mjs');
  await withInProcessWorker(async () => {
    const { Anomalens } = await import('../../web/anomalens.js');
    for (const threads of [0, 1.5, -2, '2', 'all']) {
      await assert.rejects(Anomalens.create({ model: model(), coreUrl: fakeCoreUrl, threads }),
        (e) => e.code === 'invalid_argument' && /options\.threads/.test(e.message), String(threads));
    }
    const clf = await Anomalens.create({ model: model(), coreUrl: fakeCoreUrl, threads: 1 });
    assert.equal((await clf.runtime()).threads, 1);
    await clf.close();
  });
});

test('Chromium: isolated pages run the pthread build, others one thread; same scores',
  { skip: !hasRealCore && 'the wasm core is not built (./scripts/build.sh)' }, async () => {
    for (const f of ['anomalens_core_mt.js', 'anomalens_core_mt.wasm', 'anomalens_core_mt.worker.js']) {
      const file = path.join(repoRoot, 'web/core', f);
      assert.ok(fs.existsSync(file), `${file} is missing: ./scripts/build.sh wasm builds it`);
    }
    const files = listImages('normal', 2).concat(listImages('abnormal', 2));
    const images = files.map((f) => fs.readFileSync(f).toString('base64'));
    const modelsRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'anomalens-threads-models-'));
    fs.copyFileSync(defaultModelPath(), path.join(modelsRoot, 'default.alm'));
    const browser = await launch();
    const run = async (isolate) => {
      const served = await start({ port: 0, modelsRoot, isolate,
        overrides: { '/blank.html': path.join(repoRoot, 'tests/web/blank.html') } });
      try {
        const { page, requests, problems, context } = await openPage(browser, served, { path: '/blank.html' });
        const out = await page.evaluate(async (b64s) => {
          const { Anomalens } = await import('/anomalens.js');
          const bytes = b64s.map((b) => Uint8Array.from(atob(b), (c) => c.charCodeAt(0)));
          const classifyAll = async (options) => {
            const clf = await Anomalens.create({ model: '/models/default.alm', ...options });
            const scores = [];
            for (const b of bytes) scores.push((await clf.classify(b.slice())).score);
            const rt = await clf.runtime();
            await clf.close();
            return { scores, rt };
          };
          return {
            isolated: globalThis.crossOriginIsolated === true,
            cores: navigator.hardwareConcurrency,
            auto: await classifyAll({}),
            one: await classifyAll({ threads: 1 }),
          };
        }, images);
        // The app says in its model card what it runs on.
        await page.goto(`${served.url}/`);
        await page.waitForSelector('body[data-engine]', { timeout: 120000 });
        const engine = await page.evaluate(() => ({ data: document.body.dataset.engine,
          text: document.getElementById('model-engine')?.textContent }));
        assert.deepEqual(foreignRequests(requests, served), []);
        assert.deepEqual(problems, []);
        await context.close();
        return { ...out, engine, paths: served.requests.map((r) => r.path) };
      } finally {
        await served.close();
      }
    };
    try {
      const iso = await run(true);
      assert.equal(iso.isolated, true, 'serve.mjs sends COOP/COEP');
      const want = Math.min(4, iso.cores);
      assert.ok(want >= 2, `this test needs at least 2 cores (navigator.hardwareConcurrency ${iso.cores})`);
      assert.equal(iso.auto.rt.build, 'simd-mt', JSON.stringify(iso.auto.rt));
      assert.equal(iso.auto.rt.threads, want);
      assert.equal(iso.auto.rt.fallback, undefined);
      assert.ok(iso.auto.rt.coreUrl.endsWith('/core/anomalens_core_mt.js'), iso.auto.rt.coreUrl);
      assert.ok(iso.paths.includes('/core/anomalens_core_mt.worker.js'), iso.paths.join(' '));
      assert.deepEqual([iso.one.rt.build, iso.one.rt.threads], ['simd', 1]);
      // Which thread computes a block never changes the arithmetic: identical scores.
      assert.deepEqual(iso.auto.scores, iso.one.scores);
      assert.equal(iso.engine.data, `simd-mt/${want}`);
      assert.equal(iso.engine.text, `WebAssembly SIMD, ${want} threads`);

      const plain = await run(false);
      assert.equal(plain.isolated, false);
      assert.deepEqual([plain.auto.rt.build, plain.auto.rt.threads], ['simd', 1]);
      assert.equal(plain.paths.filter((p) => p.includes('_mt')).length, 0, plain.paths.join(' '));
      assert.deepEqual(plain.auto.scores, iso.one.scores);
      assert.equal(plain.engine.data, 'simd/1');
      assert.equal(plain.engine.text, 'WebAssembly SIMD, 1 thread');
      for (let i = 0; i < files.length; i++) {
        assert.ok(Number.isFinite(iso.auto.scores[i]), `${path.basename(files[i])}: ${iso.auto.scores[i]}`);
      }
    } finally {
      await browser.close();
      fs.rmSync(modelsRoot, { recursive: true, force: true });
    }
  });

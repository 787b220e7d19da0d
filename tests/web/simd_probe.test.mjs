// SPDX-License-Identifier: Apache-2.0
// The worker's choice between the SIMD core and the non-SIMD fallback:
//   - node: the SIMD probe module, supportsWasmSimd() against real and stand-in engines, the
//     URL and .wasm naming rules, and the worker handler's choice (with the fake core);
//   - Chromium: worker.js?simd=0 loads core/anomalens_core_nosimd.{js,wasm} (the real non-SIMD
//     build when it exists) and scores like the SIMD core.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import {
  kSimdProbe, supportsWasmSimd, noSimdUrlFor, chooseCore, createWorkerHandler,
} from '../../web/worker.js';
import { start } from '../../scripts/serve.mjs';
import { repoRoot, hasRealCore, launch, openPage, defaultModelPath, listImages,
  foreignRequests } from './harness.mjs';

const fakeCoreUrl = new URL('./fake_core.mjs', import.meta.url).href;
const model = () => new TextEncoder().encode('ALM1 fake model bytes').buffer;

test('the probe is a valid module that needs SIMD128', () => {
  assert.equal(WebAssembly.validate(kSimdProbe), true, 'node 20 has SIMD: the probe must validate');
  assert.equal(supportsWasmSimd(), true);
  // The same module returning i32 without the SIMD instruction is valid everywhere: the probe's
  // only non-MVP part is the v128 type and i8x16.splat.
  const mvp = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, 0x03, 0x02, 0x01, 0x00,
    0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x00, 0x0b]);
  assert.equal(WebAssembly.validate(mvp), true);
  const simdOps = kSimdProbe.filter((b, i) => b === 0xfd && kSimdProbe[i + 1] === 0x0f).length;
  assert.equal(simdOps, 1, 'the probe uses i8x16.splat (0xfd 0x0f)');
  // Validation really looks at the SIMD part: an unassigned SIMD opcode is refused.
  const bad = kSimdProbe.slice();
  bad[bad.indexOf(0xfd) + 1] = 0x7f;
  assert.equal(WebAssembly.validate(bad), false);
});

test('supportsWasmSimd is false for engines without SIMD, broken or missing WebAssembly', () => {
  // An engine that does not know the v128 type (0x7b) refuses the probe, like a pre-SIMD browser.
  const noSimdEngine = { validate: (bytes) => !bytes.includes(0x7b) && WebAssembly.validate(bytes) };
  assert.equal(supportsWasmSimd(noSimdEngine), false);
  assert.equal(supportsWasmSimd({ validate: () => { throw new TypeError('boom'); } }), false);
  assert.equal(supportsWasmSimd({ validate: () => 'yes' }), false, 'only a real true counts');
  assert.equal(supportsWasmSimd({}), false);
  assert.equal(supportsWasmSimd(null), false);
  assert.equal(supportsWasmSimd(WebAssembly), true);
});

test('non-SIMD core URL and .wasm naming', () => {
  assert.equal(noSimdUrlFor('https://a.example/app/core/anomalens_core.js'),
    'https://a.example/app/core/anomalens_core_nosimd.js');
  assert.equal(noSimdUrlFor('https://a.example/c/core.mjs?v=3'), 'https://a.example/c/core_nosimd.mjs?v=3');
  assert.equal(noSimdUrlFor('https://a.example/c/core'), 'https://a.example/c/core_nosimd.js');

  const coreUrl = 'https://a.example/core/anomalens_core.js';
  assert.deepEqual(chooseCore({ coreUrl, simd: true }), { url: coreUrl, build: 'simd', wasmName: null, threads: 1 });
  // Without SIMD: the sibling _nosimd build, whose .wasm is found by the JS file's own name
  // (a renamed copy of the emitted JS still asks for anomalens_core.wasm).
  assert.deepEqual(chooseCore({ coreUrl, simd: false }), {
    url: 'https://a.example/core/anomalens_core_nosimd.js', build: 'nosimd',
    wasmName: 'anomalens_core_nosimd.wasm', threads: 1,
  });
  assert.deepEqual(chooseCore({ coreUrl, noSimdCoreUrl: 'https://b.example/x/plain.js', simd: false }),
    { url: 'https://b.example/x/plain.js', build: 'nosimd', wasmName: 'plain.wasm', threads: 1 });
  // wasmBinary given: the caller chose the build; nothing is swapped.
  assert.deepEqual(chooseCore({ coreUrl, simd: false, haveWasmBinary: true }),
    { url: coreUrl, build: 'given', wasmName: null, threads: 1 });
});

// importModule stand-in: records the URLs imported and the args the core factory gets; URLs in
// `missing` fail like a 404.
function recordingImporter(missing = []) {
  const log = { imported: [], args: [] };
  const importModule = async (url) => {
    log.imported.push(url);
    if (missing.includes(url)) throw new TypeError(`Failed to fetch dynamically imported module: ${url}`);
    const fake = await import(fakeCoreUrl);
    return { default: (args) => { log.args.push(args); return fake.default(args); } };
  };
  return { log, importModule };
}

const kCoreUrl = 'https://app.example/core/anomalens_core.js';
const kNoSimdUrl = 'https://app.example/core/anomalens_core_nosimd.js';

test('worker without SIMD loads the _nosimd core and its own .wasm', async () => {
  const { log, importModule } = recordingImporter();
  const handle = createWorkerHandler({ simd: false, importModule });
  const init = await handle({ type: 'init', coreUrl: kCoreUrl, model: model() });
  assert.equal(init.ok, true, init.message);
  assert.deepEqual(log.imported, [kNoSimdUrl]);
  const { locateFile } = log.args[0];
  assert.equal(locateFile('anomalens_core.wasm'), 'https://app.example/core/anomalens_core_nosimd.wasm');
  assert.equal(locateFile('anomalens_core_nosimd.wasm'),
    'https://app.example/core/anomalens_core_nosimd.wasm');
  const rt = await handle({ type: 'runtime' });
  assert.deepEqual(rt, { ok: true, runtime: { coreUrl: kNoSimdUrl, build: 'nosimd', simd: false,
    threads: 1, wasmMemoryBytes: null } });
  const png = new Uint8Array(64).fill(200);
  png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  png.set([0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82], 56);
  const r = await handle({ type: 'classify', kind: 'bytes', bytes: png.buffer });
  assert.equal(r.ok, true, r.message);
});

test('worker with SIMD loads coreUrl and leaves .wasm names alone', async () => {
  const { log, importModule } = recordingImporter();
  const handle = createWorkerHandler({ simd: true, importModule });
  assert.equal((await handle({ type: 'init', coreUrl: kCoreUrl, model: model() })).ok, true);
  assert.deepEqual(log.imported, [kCoreUrl]);
  assert.equal(log.args[0].locateFile('anomalens_core.wasm'), 'https://app.example/core/anomalens_core.wasm');
  assert.equal((await handle({ type: 'runtime' })).runtime.build, 'simd');
});

test('without SIMD and without a _nosimd core, init fails with a clear unsupported error', async () => {
  const { log, importModule } = recordingImporter([kNoSimdUrl]);
  const handle = createWorkerHandler({ simd: false, importModule });
  const init = await handle({ type: 'init', coreUrl: kCoreUrl, model: model() });
  assert.equal(init.ok, false);
  assert.equal(init.code, 'unsupported');
  assert.match(init.message, /no WebAssembly SIMD/);
  assert.ok(init.message.includes(kNoSimdUrl), init.message);
  assert.deepEqual(log.imported, [kNoSimdUrl], 'the SIMD core is not tried (it cannot compile)');
  // The worker stays usable: a later init with wasmBinary (the caller's build) works.
  const again = await handle({ type: 'init', coreUrl: kCoreUrl, model: model(),
    wasmBinary: new Uint8Array([0, 97, 115, 109]).buffer });
  assert.equal(again.ok, true, again.message);
  assert.equal((await handle({ type: 'runtime' })).runtime.build, 'given');
  assert.equal(log.imported.at(-1), kCoreUrl);
});

test('the library reports the runtime; noSimdCoreUrl reaches the worker', async () => {
  const { withInProcessWorker } = await import('./in_process_worker.mjs');
  await withInProcessWorker(async () => {
    const { Anomalens } = await import('../../web/anomalens.js');
    const clf = await Anomalens.create({ model: model(), coreUrl: fakeCoreUrl,
      noSimdCoreUrl: pathToFileURL('/nonexistent/plain.js').href });
    const rt = await clf.runtime();
    // node has SIMD, so the given coreUrl runs and the fallback URL is never fetched.
    assert.deepEqual(rt, { coreUrl: fakeCoreUrl, build: 'simd', simd: true, threads: 1,
      wasmMemoryBytes: null });
    await clf.close();
    await assert.rejects(clf.runtime(), (e) => e.code === 'closed');
  });
});

// The non-SIMD core that ./scripts/build.sh copies to web/core/ (built in build/wasm-nosimd).
function noSimdBuild() {
  return { js: path.join(repoRoot, 'web/core/anomalens_core_nosimd.js'),
    wasm: path.join(repoRoot, 'web/core/anomalens_core_nosimd.wasm') };
}

function usesSimd(wasmFile) {
  // binaryen (emscripten's dependency) validates with SIMD disabled: fails iff the module uses it.
  const r = spawnSync('wasm-opt', ['--all-features', '--disable-simd', wasmFile, '-o', '/dev/null'],
    { encoding: 'utf8' });
  if (r.error) return null;
  return r.status !== 0;
}

test('Chromium: worker.js?simd=0 runs the non-SIMD core and scores like the SIMD core',
  { skip: !hasRealCore && 'the wasm core is not built (./scripts/build.sh)' }, async () => {
    const build = noSimdBuild();
    for (const f of [build.js, build.wasm]) {
      assert.ok(fs.existsSync(f), `${f} is missing: ./scripts/build.sh wasm builds it`);
    }
    const simdUse = usesSimd(build.wasm);
    if (simdUse !== null) assert.equal(simdUse, false, `${build.wasm} must not use SIMD instructions`);
    const browser = await launch();
    try {
      const modelsRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'anomalens-simd-models-'));
      fs.copyFileSync(defaultModelPath(), path.join(modelsRoot, 'default.alm'));
      const served = await start({ port: 0, modelsRoot, overrides: {
        '/blank.html': path.join(repoRoot, 'tests/web/blank.html'),
      } });
      try {
        const { page, requests, problems, context } = await openPage(browser, served, { path: '/blank.html' });
        const files = listImages('normal', 2).concat(listImages('abnormal', 2));
        const images = files.map((f) => fs.readFileSync(f).toString('base64'));
        const out = await page.evaluate(async (b64s) => {
          const { Anomalens } = await import('/anomalens.js');
          const bytes = b64s.map((b) => Uint8Array.from(atob(b), (c) => c.charCodeAt(0)));
          const run = async (workerUrl) => {
            // One thread: this compares the SIMD and scalar kernels (threads.test.mjs covers _mt).
            const clf = await Anomalens.create({ model: '/models/default.alm', workerUrl, threads: 1 });
            const scores = [];
            for (const b of bytes) scores.push((await clf.classify(b)).score);
            const rt = await clf.runtime();
            await clf.close();
            return { scores, rt };
          };
          return { simd: await run('/worker.js'), nosimd: await run('/worker.js?simd=0') };
        }, images);
        assert.equal(out.simd.rt.build, 'simd');
        assert.equal(out.simd.rt.simd, true);
        assert.equal(out.nosimd.rt.build, 'nosimd');
        assert.ok(out.nosimd.rt.coreUrl.endsWith('/core/anomalens_core_nosimd.js'), out.nosimd.rt.coreUrl);
        assert.ok(out.nosimd.rt.wasmMemoryBytes >= 16 << 20, `heap ${out.nosimd.rt.wasmMemoryBytes}`);
        const paths = served.requests.map((r) => r.path);
        assert.ok(paths.includes('/core/anomalens_core_nosimd.wasm'), paths.join(' '));
        assert.equal(paths.filter((p) => p === '/core/anomalens_core.wasm').length, 1,
          'only the SIMD classifier fetched the SIMD .wasm');
        for (let i = 0; i < files.length; i++) {
          assert.ok(Math.abs(out.simd.scores[i] - out.nosimd.scores[i]) <= 1e-4,
            `${path.basename(files[i])}: SIMD ${out.simd.scores[i]} vs non-SIMD ${out.nosimd.scores[i]}`);
        }
        assert.deepEqual(foreignRequests(requests, served), []);
        assert.deepEqual(problems, []);
        await context.close();
      } finally {
        await served.close();
        fs.rmSync(modelsRoot, { recursive: true, force: true });
      }
    } finally {
      await browser.close();
    }
  });

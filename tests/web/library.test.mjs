// SPDX-License-Identifier: Apache-2.0
// Unit test of web/anomalens.js + web/worker.js against a fake core, in node (no browser).
// An in-process Worker stand-in (in_process_worker.mjs) runs the real worker handler.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

const fakeCoreUrl = new URL('./fake_core.mjs', import.meta.url).href;
const { stats } = await import(fakeCoreUrl);
const { InProcessWorker: FakeWorker } = await import('./in_process_worker.mjs');


let Anomalens;
let AnomalensError;
let sniffFormat;
before(async () => {
  globalThis.Worker = FakeWorker;
  ({ Anomalens, AnomalensError, sniffFormat } = await import('../../web/anomalens.js'));
});

const model = () => new TextEncoder().encode('ALM1 fake model bytes').buffer;
const png = (fill) => {
  const b = new Uint8Array(64).fill(fill);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  b.set([0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82], 56);  // IEND chunk
  return b;
};
const create = (extra = {}) => Anomalens.create({ model: model(), coreUrl: fakeCoreUrl, ...extra });

test('sniffFormat routes formats to the core or the browser', () => {
  const bytes = (s, pad = 16) => {
    const b = new Uint8Array(Math.max(pad, s.length));
    for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
    return b;
  };
  assert.deepEqual(sniffFormat(png(0)), { format: 'png', route: 'core' });
  assert.deepEqual(sniffFormat(bytes('\xff\xd8\xff\xe0')), { format: 'jpeg', route: 'core' });
  assert.deepEqual(sniffFormat(bytes('GIF89a')), { format: 'gif', route: 'core' });
  assert.deepEqual(sniffFormat(bytes('BM')), { format: 'bmp', route: 'core' });
  assert.deepEqual(sniffFormat(bytes('RIFF\0\0\0\0WEBPVP8 ')), { format: 'webp', route: 'browser' });
  assert.deepEqual(sniffFormat(bytes('\0\0\0\x1cftypavif')), { format: 'avif', route: 'browser' });
  assert.deepEqual(sniffFormat(bytes('<?xml version="1.0"?>\n<svg xmlns="x">')).route, 'svg');
  // TGA has no magic: it goes to the core like any unknown bytes.
  assert.deepEqual(sniffFormat(new Uint8Array([0, 0, 2, 0, 0, 0, 0, 0])), { format: 'unknown', route: 'core' });
});

test('create, classify bytes/Blob/ImageData, info, close', async () => {
  const clf = await create();
  const info = clf.info();
  assert.equal(info.name, 'fake');
  assert.deepEqual(info.labels, ['normal', 'abnormal']);
  assert.equal(info.meta.license, 'Apache-2.0');
  info.name = 'mutated';
  assert.equal(clf.info().name, 'fake', 'info() returns a copy');

  const dark = await clf.classify(new Blob([png(10)], { type: 'image/png' }));
  const bright = await clf.classify(png(250));
  assert.ok(dark.score < bright.score, `dark ${dark.score} < bright ${bright.score}`);
  assert.equal(dark.label, dark.score >= dark.threshold ? 'abnormal' : 'normal');
  assert.equal(bright.label, 'abnormal');
  assert.ok(Math.abs(dark.scores.normal + dark.scores.abnormal - 1) < 1e-9);
  assert.ok(dark.elapsedMs >= 0);

  if (typeof ImageData === 'function') {
    const img = new ImageData(new Uint8ClampedArray(4 * 4 * 4).fill(255), 4, 4);
    assert.equal((await clf.classify(img)).label, 'abnormal');
  }
  await clf.close();
  await assert.rejects(clf.classify(png(1)), (e) => e instanceof AnomalensError && e.code === 'closed');
  await clf.close();  // idempotent
});

test('errors carry a code and a bad file never breaks the next call', async () => {
  const clf = await create();
  const file = new File([new Uint8Array([1, 2, 3, 4])], 'broken.png');
  await assert.rejects(clf.classify(file), (e) => {
    assert.ok(e instanceof AnomalensError);
    assert.equal(e.code, 'decode_failed');
    assert.equal(e.file, 'broken.png');
    assert.match(e.message, /unknown image type/);
    return true;
  });
  assert.equal((await clf.classify(png(200))).label, 'abnormal');

  // A trap inside wasm: that call fails, the worker reloads the core for the next one.
  const before = stats.instances;
  await assert.rejects(clf.classify(new TextEncoder().encode('CRASH!!!')), { code: 'internal' });
  assert.equal((await clf.classify(png(20))).label, 'normal');
  assert.equal(stats.instances, before + 1, 'core re-instantiated after the trap');

  await assert.rejects(clf.classify(42), { code: 'invalid_argument' });
  await assert.rejects(clf.classify(null), { code: 'invalid_argument' });
  assert.equal((await clf.classify(png(20))).label, 'normal');
  await clf.close();
});

test('concurrent calls queue and resolve in order with their own results', async () => {
  const clf = await create();
  const fills = [0, 255, 30, 200, 128, 5, 250, 90];
  const inputs = fills.map((f, i) => (i === 3 ? new Uint8Array([9, 9, 9]) : png(f)));
  const settled = await Promise.allSettled(inputs.map((x) => clf.classify(x)));
  settled.forEach((s, i) => {
    if (i === 3) {
      assert.equal(s.status, 'rejected');
      assert.equal(s.reason.code, 'decode_failed');
    } else {
      assert.equal(s.status, 'fulfilled');
      const expected = png(fills[i]).reduce((a, v) => a + v, 0) / 64 / 255;
      assert.ok(Math.abs(s.value.score - expected) < 1e-9, `call ${i}: ${s.value.score} vs ${expected}`);
    }
  });
  // close() waits for queued calls instead of failing them.
  const late = clf.classify(png(1));
  const closing = clf.close();
  assert.equal((await late).label, 'normal');
  await closing;
});

test('model errors reject create() with the core code and free the worker', async () => {
  const n = FakeWorker.instances.length;
  await assert.rejects(Anomalens.create({ model: new TextEncoder().encode('NOPE'), coreUrl: fakeCoreUrl }),
    (e) => e instanceof AnomalensError && e.code === 'invalid_model' && /ALM1/.test(e.message));
  assert.equal(FakeWorker.instances.length, n + 1);
  assert.ok(FakeWorker.instances.at(-1).terminated, 'worker terminated after a failed create');
  await assert.rejects(Anomalens.create({ model: new TextEncoder().encode('ALM1-unsupported'),
    coreUrl: fakeCoreUrl }), { code: 'unsupported' });
  await assert.rejects(Anomalens.create({}), { code: 'invalid_argument' });
  await assert.rejects(Anomalens.create({ model: model(), coreUrl: 'file:///nonexistent/core.js' }),
    { code: 'core_load_failed' });
  await assert.rejects(Anomalens.create({ model: 12 }), { code: 'invalid_argument' });
});

test('model URL is fetched; HTTP errors are code network', async () => {
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (url) => (String(url).endsWith('ok.alm')
    ? new Response(model()) : new Response('nope', { status: 404 }));
  try {
    const clf = await Anomalens.create({ model: 'http://127.0.0.1:1/ok.alm', coreUrl: fakeCoreUrl });
    assert.equal(clf.info().name, 'fake');
    await clf.close();
    await assert.rejects(Anomalens.create({ model: 'http://127.0.0.1:1/missing.alm', coreUrl: fakeCoreUrl }),
      (e) => e.code === 'network' && /404/.test(e.message) && /missing\.alm/.test(e.message));
  } finally {
    globalThis.fetch = realFetch;
  }
});

test('every created classifier is deleted on close', async () => {
  const created = stats.created;
  const deleted = stats.deleted;
  const clf = await create();
  await clf.classify(png(3));
  await clf.close();
  assert.equal(stats.created - created, stats.deleted - deleted);
  assert.ok(fileURLToPath(fakeCoreUrl).endsWith('fake_core.mjs'));
});

// SPDX-License-Identifier: Apache-2.0
// The library (anomalens.js + worker.js) in node with the real wasm core (web/core/), checked
// against the native CLI on real images. No browser: the worker runs in-process.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { InProcessWorker } from './in_process_worker.mjs';
import {
  allowFake, cliClassify, defaultModelPath, hasCli, hasRealCore, listImages, realCorePath,
} from './harness.mjs';

const modelPath = defaultModelPath();
let Anomalens;

before(async () => {
  globalThis.Worker = InProcessWorker;
  ({ Anomalens } = await import('../../web/anomalens.js'));
});

test('real core in node: same verdicts and scores as the CLI; errors recover', async (t) => {
  if (!hasRealCore || !hasCli || !modelPath) {
    const why = `needs ${realCorePath}, build/native/anomalens and a model`;
    if (!allowFake) assert.fail(why);
    t.skip(why);
    return;
  }
  const clf = await Anomalens.create({
    model: fs.readFileSync(modelPath),
    coreUrl: pathToFileURL(realCorePath).href,
    // Node's fetch cannot read file: URLs, so hand the core its wasm directly.
    wasmBinary: fs.readFileSync(realCorePath.replace(/\.js$/, '.wasm')),
  });
  const info = clf.info();
  assert.deepEqual(info.labels, ['normal', 'abnormal']);
  assert.ok(info.inputWidth > 0 && info.inputHeight > 0);

  const files = [...listImages('normal', 5), ...listImages('abnormal', 5)];
  const cli = cliClassify(modelPath, files);
  const results = await Promise.all(files.map((f) => clf.classify(new Blob([fs.readFileSync(f)]))));
  results.forEach((r, i) => {
    const ref = cli.get(path.basename(files[i]));
    assert.ok(Math.abs(r.score - ref.score) < 1e-3, `${files[i]}: ${r.score} vs CLI ${ref.score}`);
    assert.equal(r.label, ref.label);
    assert.ok(Math.abs(r.threshold - ref.threshold) < 1e-6, `threshold ${r.threshold} vs CLI ${ref.threshold}`);
    assert.ok(r.elapsedMs >= 0 && r.timings.infer >= 0);
  });

  await assert.rejects(clf.classify(new Uint8Array([1, 2, 3])), { code: 'decode_failed' });
  await assert.rejects(clf.classify(fs.readFileSync(files[0]).subarray(0, 200)), { code: 'decode_failed' });
  const again = await clf.classify(fs.readFileSync(files[0]));
  assert.equal(again.score, results[0].score, 'same input, same score after failures');

  // Raw RGBA: a uniform gray image of the model's input size.
  const w = info.inputWidth;
  const h = info.inputHeight;
  const rgba = new Uint8ClampedArray(w * h * 4).fill(128);
  const gray = await clf.classify({ constructor: { name: 'x' } }).catch((e) => e);
  assert.equal(gray.code, 'invalid_argument');
  if (typeof ImageData === 'function') {
    const r = await clf.classify(new ImageData(rgba, w, h));
    assert.ok(r.score >= 0 && r.score <= 1);
  }
  await clf.close();

  // A model cut short is refused with invalid_model and a message, and frees its worker.
  const n = InProcessWorker.instances.length;
  await assert.rejects(Anomalens.create({
    model: fs.readFileSync(modelPath).subarray(0, 100),
    coreUrl: pathToFileURL(realCorePath).href,
    wasmBinary: fs.readFileSync(realCorePath.replace(/\.js$/, '.wasm')),
  }), (e) => {
    t.diagnostic(`truncated model: ${e.code}: ${e.message}`);
    return e.code === 'invalid_model' && e.message.length > 0;
  });
  assert.ok(InProcessWorker.instances[n].terminated);
});

test('real core in node: maxPixels refuses larger images before decoding', async (t) => {
  if (!hasRealCore || !modelPath) {
    const why = `needs ${realCorePath} and a model`;
    if (!allowFake) assert.fail(why);
    t.skip(why);
    return;
  }
  const options = {
    model: fs.readFileSync(modelPath),
    coreUrl: pathToFileURL(realCorePath).href,
    wasmBinary: fs.readFileSync(realCorePath.replace(/\.js$/, '.wasm')),
  };
  await assert.rejects(Anomalens.create({ ...options, maxPixels: 0 }), { code: 'invalid_argument' });
  const clf = await Anomalens.create({ ...options, maxPixels: 300 * 300 - 1 });
  const file = listImages('normal', 1)[0];  // ELPV cells are 300x300
  await assert.rejects(clf.classify(fs.readFileSync(file)), (e) => e.code === 'out_of_memory' && /300x300/.test(e.message));
  await clf.close();
  const roomy = await Anomalens.create({ ...options, maxPixels: 300 * 300 });
  assert.ok((await roomy.classify(fs.readFileSync(file))).score >= 0);
  await roomy.close();
});

test('real core in node: the model may be a promise (the core loads before it settles)', async (t) => {
  if (!hasRealCore || !modelPath) {
    const why = `needs ${realCorePath} and a model`;
    if (!allowFake) assert.fail(why);
    t.skip(why);
    return;
  }
  const core = {
    coreUrl: pathToFileURL(realCorePath).href,
    wasmBinary: fs.readFileSync(realCorePath.replace(/\.js$/, '.wasm')),
  };
  let settle;
  const model = new Promise((resolve) => { settle = resolve; });
  const creating = Anomalens.create({ ...core, model });
  await new Promise((resolve) => setTimeout(resolve, 50));
  settle(fs.readFileSync(modelPath));
  const clf = await creating;
  const file = listImages('abnormal', 1)[0];
  const direct = await Anomalens.create({ ...core, model: fs.readFileSync(modelPath) });
  assert.equal((await clf.classify(fs.readFileSync(file))).score, (await direct.classify(fs.readFileSync(file))).score);
  await clf.close();
  await direct.close();
  // A promise that rejects fails create() with its reason, and leaves no worker behind.
  await assert.rejects(Anomalens.create({ ...core, model: Promise.reject(new Error('no model here')) }),
    /no model here/);
});

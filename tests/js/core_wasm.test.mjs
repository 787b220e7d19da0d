// SPDX-License-Identifier: Apache-2.0
// The real wasm build (web/core/anomalens_core.{js,wasm}, made by ./scripts/build.sh) under
// node: load a model, classify real images from ../shared/data, and check that failures come
// back as {ok:false, code, message} without breaking the next call.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const shared = path.resolve(root, '../shared/data');
const cli = path.join(root, 'build/native/anomalens');
const fixtureModel = path.join(root, 'build/fixtures/allops.alm');

let core;
before(async () => {
  const { default: createAnomalensCore } = await import(path.join(root, 'web/core/anomalens_core.js'));
  core = await createAnomalensCore({ wasmBinary: readFileSync(path.join(root, 'web/core/anomalens_core.wasm')) });
});

function create(modelPath) {
  const r = core.createClassifier(readFileSync(modelPath));
  assert.equal(r.ok, true, r.message);
  return r.classifier;
}

test('classifies real ELPV images like the native CLI', () => {
  const clf = create(fixtureModel);
  const files = ['elpv/normal/cell0004.png', 'elpv/abnormal/cell0001.png', 'elpv/abnormal/cell0002.png']
    .map((f) => path.join(shared, f)).filter(existsSync);
  assert.ok(files.length >= 2, 'needs images from ../shared/data/elpv');
  const native = execFileSync(cli, ['classify', '--json', '--model', fixtureModel, ...files], { encoding: 'utf8' })
    .trim().split('\n').map((l) => JSON.parse(l));
  files.forEach((file, i) => {
    const r = clf.classifyEncoded(readFileSync(file));
    assert.equal(r.ok, true, r.message);
    assert.ok(r.score >= 0 && r.score <= 1);
    assert.ok(Math.abs(r.scores.normal + r.scores.abnormal - 1) < 1e-5);
    assert.equal(r.label, native[i].label);
    assert.ok(Math.abs(r.score - native[i].score) < 1e-4, `${file}: wasm ${r.score} vs native ${native[i].score}`);
    for (const k of ['decode', 'preprocess', 'infer']) assert.equal(typeof r.timings[k], 'number');
  });
  clf.delete();
});

test('bad image fails alone and the next call works', () => {
  const clf = create(fixtureModel);
  const bad = clf.classifyEncoded(new TextEncoder().encode('definitely not an image'));
  assert.equal(bad.ok, false);
  assert.equal(bad.code, 'decode_failed');
  assert.match(bad.message, /not a recognised image format/);
  const good = clf.classifyEncoded(readFileSync(path.join(shared, 'elpv/abnormal/cell0001.png')));
  assert.equal(good.ok, true);
  const wrongSize = clf.classifyRgba(new Uint8Array(10), 3, 3);
  assert.equal(wrongSize.ok, false);
  assert.equal(wrongSize.code, 'invalid_argument');
  const rgba = new Uint8Array(8 * 6 * 4).fill(128);
  assert.equal(clf.classifyRgba(rgba, 8, 6).ok, true);
  clf.delete();
});

test('bad model is rejected with a code', () => {
  const r = core.createClassifier(new TextEncoder().encode('ALM1 not really'));
  assert.equal(r.ok, false);
  assert.equal(r.code, 'invalid_model');
  assert.ok(r.message.length > 0);
});

test('info() exposes the model card', () => {
  const clf = create(fixtureModel);
  const info = clf.info();
  assert.deepEqual(info.labels, ['normal', 'abnormal']);
  assert.equal(info.inputWidth, 23);
  assert.equal(info.inputHeight, 19);
  assert.equal(info.meta.name, 'allops');
  assert.ok(info.parameters > 0);
  clf.delete();
});

test('byte inputs must be Uint8Arrays: anything else is a clear invalid_argument, not a trap', () => {
  const clf = create(fixtureModel);
  for (const bad of ['not bytes', 42, null, new ArrayBuffer(8), [1, 2, 3], new Float32Array(4)]) {
    const r = clf.classifyEncoded(bad);
    assert.equal(r.ok, false);
    assert.equal(r.code, 'invalid_argument', String(bad));
    assert.match(r.message, /Uint8Array/);
    const q = clf.classifyRgba(bad, 1, 1);
    assert.equal(q.code, 'invalid_argument');
  }
  const m = core.createClassifier(new ArrayBuffer(16));
  assert.equal(m.ok, false);
  assert.equal(m.code, 'invalid_argument');
  // A Uint8ClampedArray (canvas ImageData) is accepted as RGBA.
  const px = new Uint8ClampedArray(4 * 4 * 4).fill(128);
  assert.equal(clf.classifyRgba(px, 4, 4).ok, true);
  clf.delete();
});

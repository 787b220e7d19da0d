// SPDX-License-Identifier: Apache-2.0
// Long run in the real wasm build under node: 10,000 classifications (encoded PNG/JPEG/GIF,
// raw RGBA frames, and failing inputs interleaved) with models/default.alm when it exists
// (scored in one pass: singlePassModel in corpus.mjs), else build/fixtures/allops.alm. After
// warm-up the wasm memory must not grow, the top of the malloc heap must not creep up (a leak
// inside the existing memory), Embind must not pile up handles, and every input must give
// exactly the verdict it gave the first time.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { ensureCorpus, loadCore, fixtureModel, root, singlePassModel } from './corpus.mjs';

const TOTAL = 10000;
const WARMUP = 500;

let entries;
let core;
before(async () => {
  entries = ensureCorpus();
  core = await loadCore();
});

// Address a fresh 1 MiB block gets: with a leak, the allocator's top keeps moving up.
function heapTop() {
  const p = core._malloc(1 << 20);
  core._free(p);
  return p;
}

function key(r) {
  return r.ok ? `${r.label} ${r.score} ${r.scores.normal} ${r.scores.abnormal}` : `${r.code} ${r.message}`;
}

test(`${TOTAL} classifications: memory stable after warm-up, identical results`, () => {
  const defaultModel = path.join(root, 'models/default.alm');
  const modelPath = existsSync(defaultModel) ? defaultModel : fixtureModel;
  const created = core.createClassifier(singlePassModel(readFileSync(modelPath)));
  assert.equal(created.ok, true, created.message);
  const clf = created.classifier;
  const frame = new Uint8Array(160 * 120 * 4).map((_, i) => (i * 31 + (i >> 9)) & 255);
  const inputs = [
    ['png', () => clf.classifyEncoded(file('images/ok_rgb.png'))],
    ['jpeg', () => clf.classifyEncoded(file('images/ok_progressive.jpg'))],
    ['gif', () => clf.classifyEncoded(file('images/ok_animated.gif'))],
    ['png16', () => clf.classifyEncoded(file('images/ok_16bit_rgba.png'))],
    ['rgba', () => clf.classifyRgba(frame, 160, 120)],
    ['bad', () => clf.classifyEncoded(file('images/trunc_png_half.png'))],
    ['bomb', () => clf.classifyEncoded(file('images/bomb_png_100000x100000.png'))],
  ];
  // Read the files once: the loop measures the core, not fs.
  const cache = new Map();
  const file = (name) => {
    if (!cache.has(name)) cache.set(name, readFileSync(entries.find((e) => e.file === name).path));
    return cache.get(name);
  };
  const run = (i) => inputs[i % inputs.length][1]();
  const first = new Map();
  let heapAfterWarmup = 0;
  let topAfterWarmup = 0;
  let handlesAfterWarmup = 0;
  const t0 = Date.now();
  const mismatches = [];
  for (let i = 0; i < TOTAL; ++i) {
    const r = run(i);
    const name = inputs[i % inputs.length][0];
    const k = key(r);
    if (!first.has(name)) first.set(name, k);
    else if (first.get(name) !== k && mismatches.length < 5) mismatches.push(`call ${i} (${name}): ${k} vs ${first.get(name)}`);
    if (i === WARMUP - 1) {
      // The probe first: its own 1 MiB block may grow a heap that the model fits tightly
      // (the default model's needs fit the initial 16 MiB), and that growth is not the loop's.
      topAfterWarmup = heapTop();
      heapAfterWarmup = core.HEAP8.length;
      handlesAfterWarmup = core.count_emval_handles();
    }
  }
  const seconds = (Date.now() - t0) / 1000;
  const heapEnd = core.HEAP8.length;
  const topEnd = heapTop();
  const handlesEnd = core.count_emval_handles();
  console.log(`longrun: ${TOTAL} calls in ${seconds.toFixed(1)} s with ${path.relative(root, modelPath)}; ` +
              `heap ${heapAfterWarmup} -> ${heapEnd} bytes, malloc top ${topAfterWarmup} -> ${topEnd}, ` +
              `emval handles ${handlesAfterWarmup} -> ${handlesEnd}`);
  assert.deepEqual(mismatches, [], 'same input, different result');
  assert.equal(first.get('png').startsWith('normal') || first.get('png').startsWith('abnormal'), true, first.get('png'));
  assert.match(first.get('bad'), /^decode_failed /);
  assert.match(first.get('bomb'), /^out_of_memory /);
  assert.equal(heapEnd, heapAfterWarmup, 'wasm memory grew after warm-up');
  assert.ok(topEnd <= topAfterWarmup + (256 << 10), `malloc top moved up by ${topEnd - topAfterWarmup} bytes`);
  assert.ok(handlesEnd <= handlesAfterWarmup, `Embind handles grew ${handlesAfterWarmup} -> ${handlesEnd}`);
  clf.delete();
});

test('creating and deleting 300 classifiers does not grow memory', () => {
  const model = readFileSync(fixtureModel);
  const bad = readFileSync(entries.find((e) => e.file === 'models/nan_weight.alm').path);
  const image = readFileSync(entries.find((e) => e.file === 'images/ok_rgb.png').path);
  let heap = 0;
  let top = 0;
  for (let i = 0; i < 300; ++i) {
    const r = core.createClassifier(model);
    assert.equal(r.ok, true);
    assert.equal(r.classifier.classifyEncoded(image).ok, true);
    r.classifier.delete();
    assert.equal(core.createClassifier(bad).ok, false);
    if (i === 49) {
      heap = core.HEAP8.length;
      top = heapTop();
    }
  }
  assert.equal(core.HEAP8.length, heap, 'wasm memory grew');
  assert.ok(heapTop() <= top + (256 << 10), `malloc top moved up by ${heapTop() - top} bytes`);
});

// SPDX-License-Identifier: Apache-2.0
// Checks scripts/tfjs_import.py against TensorFlow.js running the original nsfwjs MobileNetV2
// and Inception V3 (wasm backend). Python writes a fixed input and its PyTorch outputs; tfjs runs
// the same input through the original model; final and intermediate outputs must agree.
//
//   node --test tests/js/tfjs_import.test.mjs
// Env: PYTHON (default /usr/bin/python3).

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const modelsDir = path.join(repo, 'node_modules', 'nsfwjs', 'dist', 'models');
const python = process.env.PYTHON || '/usr/bin/python3';
// Relative tolerance: max |torch - tfjs| / max |tfjs| per tensor. Both compute in f32 with
// different summation orders; 1e-4 leaves room for that, a layout or padding bug gives ~1.
const kRelTol = 1e-4;

let tf;

function readF32(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

async function loadOriginalModel(modelDir) {
  // model.min.js / group1-shardKofN.min.js are UMD modules: the model.json object and the
  // base64 weight shards.
  const modelJson = require(path.join(modelDir, 'model.min.js'));
  const shard = Buffer.concat(modelJson.weightsManifest.flatMap((g) => g.paths).map(
      (p) => Buffer.from(require(path.join(modelDir, `${p}.min.js`)), 'base64')));
  const weightSpecs = modelJson.weightsManifest.flatMap((g) => g.weights);
  const weightData = shard.buffer.slice(shard.byteOffset, shard.byteOffset + shard.byteLength);
  return tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs, weightData }));
}

before(async () => {
  tf = await import('@tensorflow/tfjs');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(
      path.join(repo, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + path.sep);
  assert.ok(await tf.setBackend('wasm'), 'tfjs wasm backend failed to initialise');
  await tf.ready();
});

// Runs the PyTorch port (tfjs_import.py --selftest-dump) and the original model in tfjs on the
// same input; every probed output must agree.
async function compareWithTfjs(modelName, probes) {
  const modelDir = path.join(modelsDir, modelName);
  const dumpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-import-'));
  const args = [path.join(repo, 'scripts', 'tfjs_import.py'), modelDir, '--selftest-dump', dumpDir];
  if (probes) args.push('--probe', probes);
  try {
    execFileSync(python, args, { stdio: 'inherit' });
    const spec = JSON.parse(fs.readFileSync(path.join(dumpDir, 'selftest.json'), 'utf8'));
    assert.equal(tf.getBackend(), 'wasm');
    const model = await loadOriginalModel(modelDir);
    const names = Object.keys(spec.outputs);
    const probe = tf.model({
      inputs: model.inputs,
      outputs: names.map((n) => model.getLayer(n).output),
    });
    const input = tf.tensor(readF32(path.join(dumpDir, 'input.bin')), spec.input_shape);
    const outs = probe.predict(input);
    const results = {};
    for (let i = 0; i < names.length; ++i) {
      const name = names[i];
      const ref = await outs[i].data();
      assert.deepEqual(outs[i].shape, spec.outputs[name].shape, `${name}: shape`);
      const got = readF32(path.join(dumpDir, spec.outputs[name].file));
      assert.equal(got.length, ref.length, `${name}: element count`);
      let maxAbs = 0;
      let maxRef = 0;
      for (let j = 0; j < ref.length; ++j) {
        maxAbs = Math.max(maxAbs, Math.abs(got[j] - ref[j]));
        maxRef = Math.max(maxRef, Math.abs(ref[j]));
      }
      results[name] = { maxAbsDiff: maxAbs, maxAbsRef: maxRef, rel: maxAbs / maxRef };
    }
    console.log(JSON.stringify(results, null, 1));
    for (const [name, r] of Object.entries(results)) {
      assert.ok(r.maxAbsRef > 0, `${name}: reference is all zeros, test would be vacuous`);
      assert.ok(r.rel <= kRelTol,
          `${name}: max abs diff ${r.maxAbsDiff} vs max |ref| ${r.maxAbsRef} ` +
          `(relative ${r.rel} > ${kRelTol})`);
    }
    tf.dispose([input, ...outs]);
  } finally {
    fs.rmSync(dumpDir, { recursive: true, force: true });
  }
}

test('PyTorch port of the nsfwjs MobileNetV2 matches tfjs (wasm) on final and inner outputs',
    () => compareWithTfjs('mobilenet_v2'));

// Inception V3 adds what MobileNetV2 lacks: 1x7/7x1 convolutions, 'valid' stems, branch
// concatenations and 'same' average pooling that divides by the taps inside the image.
test('PyTorch port of the nsfwjs Inception V3 matches tfjs (wasm) on final and inner outputs',
    () => compareWithTfjs('inception_v3', 'mixed0,mixed2,mixed4,mixed7'));

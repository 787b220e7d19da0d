// SPDX-License-Identifier: Apache-2.0
// Checks scripts/tfjs_import.py against TensorFlow.js running the original nsfwjs MobileNetV2
// (wasm backend). Python writes a fixed input and its PyTorch outputs; tfjs runs the same input
// through the original model; final and intermediate outputs must agree.
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
const modelDir = path.join(repo, 'node_modules', 'nsfwjs', 'dist', 'models', 'mobilenet_v2');
const python = process.env.PYTHON || '/usr/bin/python3';
// Relative tolerance: max |torch - tfjs| / max |tfjs| per tensor. Both compute in f32 with
// different summation orders; 1e-4 leaves room for that, a layout or padding bug gives ~1.
const kRelTol = 1e-4;

let tf;
let dumpDir;
let spec;

function readF32(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

async function loadOriginalModel() {
  // model.min.js / group1-shard1of1.min.js are UMD modules: the model.json object and the
  // base64 weight shard.
  const modelJson = require(path.join(modelDir, 'model.min.js'));
  const shard = Buffer.from(require(path.join(modelDir, 'group1-shard1of1.min.js')), 'base64');
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
  dumpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-import-'));
  execFileSync(python, [path.join(repo, 'scripts', 'tfjs_import.py'), modelDir,
    '--selftest-dump', dumpDir], { stdio: 'inherit' });
  spec = JSON.parse(fs.readFileSync(path.join(dumpDir, 'selftest.json'), 'utf8'));
});

test('PyTorch port of the nsfwjs MobileNetV2 matches tfjs (wasm) on final and inner outputs',
    async () => {
      assert.equal(tf.getBackend(), 'wasm');
      const model = await loadOriginalModel();
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
      fs.rmSync(dumpDir, { recursive: true, force: true });
    });

// SPDX-License-Identifier: Apache-2.0
// Shared by the hostile-input tests: generates the corpus (scripts/make_bad_inputs.py ->
// build/hostile) when missing or older than the script, reads its manifest, loads the real wasm
// module (web/core, made by ./scripts/build.sh) and names the fixture model.
import { readFileSync, existsSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const corpusDir = path.join(root, 'build/hostile');
export const cli = path.join(root, 'build/native/anomalens');
const fixtures = path.join(root, 'build/fixtures');
const py = '/usr/bin/python3';

function newer(a, b) {
  return statSync(a).mtimeMs > statSync(b).mtimeMs;
}

export function ensureCorpus() {
  const manifest = path.join(corpusDir, 'manifest.json');
  const script = path.join(root, 'scripts/make_bad_inputs.py');
  if (!existsSync(manifest) || newer(script, manifest)) {
    execFileSync(py, [script, corpusDir], { stdio: 'pipe' });
  }
  if (!existsSync(path.join(fixtures, 'allops.alm'))) {
    execFileSync(py, [path.join(root, 'scripts/make_fixtures.py'), fixtures], { stdio: 'pipe' });
  }
  return JSON.parse(readFileSync(manifest, 'utf8')).map((e) => ({ ...e, path: path.join(corpusDir, e.file) }));
}

// The model images are classified with: every layer type, 23x19 RGB input.
export const fixtureModel = path.join(fixtures, 'allops.alm');

export async function loadCore() {
  const dir = path.join(root, 'web/core');
  const { default: createAnomalensCore } = await import(path.join(dir, 'anomalens_core.js'));
  return createAnomalensCore({ wasmBinary: readFileSync(path.join(dir, 'anomalens_core.wasm')) });
}

export const CODES = ['invalid_model', 'unsupported', 'decode_failed', 'invalid_argument', 'out_of_memory', 'io_error'];

// The long runs check memory and verdicts per classify call over thousands of calls. The
// default model scores four mirrored passes per call (meta test_time_flips), which made the two
// long runs 10 minutes of CI longer; they run the same file with that meta line commented out
// (same length, so no section moves): the same network, once per call, as many calls, the same
// assertions. The flips are covered by tests/classifier_test.cc and the default model's golden
// test. Returns the bytes unchanged if the model lists no flips.
export function singlePassModel(bytes) {
  const out = Buffer.from(bytes);
  if (out.toString('latin1', 0, 4) !== 'ALM1') return out;
  const count = out.readUInt32LE(8);
  for (let i = 0; i < count; i++) {
    const e = 16 + 32 * i;
    if (out.toString('latin1', e, e + 16).replace(/\0+$/, '') !== 'meta') continue;
    const start = Number(out.readBigUInt64LE(e + 16));
    const text = out.toString('latin1', start, start + Number(out.readBigUInt64LE(e + 24)));
    const line = /(^|\n)test_time_flips=/.exec(text);
    if (line) out[start + line.index + line[1].length] = '#'.charCodeAt(0);
  }
  return out;
}

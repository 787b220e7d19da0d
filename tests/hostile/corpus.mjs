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

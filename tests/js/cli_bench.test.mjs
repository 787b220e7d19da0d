// SPDX-License-Identifier: Apache-2.0
// `anomalens bench` (native CLI): the JSON line bench.sh reads, --threads, bad arguments.
// Checks fields and errors only, never a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(root, 'build/native/anomalens');
const model = path.join(root, 'build/fixtures/allops.alm');

const run = (...args) => spawnSync(cli, ['bench', '--model', model, ...args], { encoding: 'utf8' });

test('bench --json reports the thread count it ran with', () => {
  assert.ok(existsSync(cli) && existsSync(model), 'needs ./scripts/build.sh and the fixtures');
  for (const threads of [1, 2]) {
    const r = run('--json', '--runs', '3', '--warmup', '1', '--threads', String(threads));
    assert.equal(r.status, 0, r.stderr);
    const o = JSON.parse(r.stdout);
    assert.equal(o.threads, threads);
    assert.equal(o.runtime, 'anomalens-native-builtin');
    assert.equal(o.runs, 3);
    for (const k of ['median_ms', 'p90_ms', 'min_ms']) assert.ok(o[k] >= 0 && Number.isFinite(o[k]), k);
  }
});

test('bench rejects a bad --threads with a clear message', () => {
  for (const bad of ['0', '65', 'two', '-1']) {
    const r = run('--threads', bad);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--threads .*expected a number in \[1, 64\]/, bad);
  }
});

// SPDX-License-Identifier: Apache-2.0
// Batch work in the native CLI on several threads (`--threads N`: one classifier per thread,
// output in input order): classify, eval and fit give the same output for 1 and 3 threads,
// a corrupt file still fails alone with its name and reason, and bad --threads values are
// refused. Real ELPV images from ../shared/data; checks output only, never a time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(root, 'build/native/anomalens');
const model = path.join(root, 'models/default.alm');
const elpv = path.resolve(root, '../shared/data/elpv');

let dir;
before(() => {
  assert.ok(existsSync(cli), 'needs ./scripts/build.sh');
  assert.ok(existsSync(path.join(elpv, 'normal')), 'needs ../shared/data/elpv');
  // DIR/normal: 14 images and a corrupt one in the middle; DIR/abnormal: 8 images.
  dir = mkdtempSync(path.join(tmpdir(), 'anomalens-batch-'));
  for (const [sub, n] of [['normal', 14], ['abnormal', 8]]) {
    mkdirSync(path.join(dir, sub));
    for (const f of readdirSync(path.join(elpv, sub)).filter((x) => x.endsWith('.png')).sort().slice(0, n)) {
      symlinkSync(path.join(elpv, sub, f), path.join(dir, sub, f));
    }
  }
  writeFileSync(path.join(dir, 'normal', 'cell0010_corrupt.png'), Buffer.from('\x89PNG\r\n\x1a\n not really'));
});
after(() => dir && rmSync(dir, { recursive: true, force: true }));

const run = (...args) => spawnSync(cli, args, { encoding: 'utf8', cwd: root, maxBuffer: 1 << 26 });

test('classify: the same lines in the same order for 1 and 3 threads; the corrupt file fails alone', () => {
  for (const json of [true, false]) {
    const flags = json ? ['--json'] : [];
    const one = run('classify', ...flags, '--model', model, '--threads', '1', dir);
    const three = run('classify', ...flags, '--model', model, '--threads', '3', dir);
    assert.equal(one.status, 1, one.stderr);
    assert.equal(three.status, 1, three.stderr);
    assert.equal(three.stdout, one.stdout);
    assert.equal(three.stderr, one.stderr);
    const lines = one.stdout.trim().split('\n');
    assert.equal(lines.length, json ? 23 : 22, 'one line per image (json: the failure too)');
    if (json) {
      const recs = lines.map((l) => JSON.parse(l));
      const bad = recs.filter((r) => 'error' in r);
      assert.equal(bad.length, 1);
      assert.match(bad[0].file, /cell0010_corrupt\.png$/);
      assert.equal(bad[0].code, 'decode_failed');
      // Input order: sorted paths, abnormal/ before normal/.
      assert.deepEqual(recs.map((r) => r.file), [...recs.map((r) => r.file)].sort());
    } else {
      assert.match(one.stderr, /cell0010_corrupt\.png: error: decode_failed: /);
      assert.match(one.stderr, /1 of 23 image\(s\) failed/);
    }
  }
});

test('eval: the same metrics for 1 and 3 threads, the corrupt file listed as failed', () => {
  const one = run('eval', '--json', '--model', model, '--threads', '1', dir);
  const three = run('eval', '--json', '--model', model, '--threads', '3', dir);
  assert.equal(one.status, 1, one.stderr);
  assert.equal(three.stdout, one.stdout);
  const m = JSON.parse(one.stdout);
  assert.equal(m.n, 22);
  assert.equal(m.confusion.tp + m.confusion.fn, 8);
  assert.equal(m.failed.length, 1);
  assert.match(m.failed[0].file, /cell0010_corrupt\.png$/);
});

test('fit: the same model for 1 and 2 engine threads (builtin backend)', () => {
  const outs = [1, 2].map((t) => {
    const out = path.join(dir, `fit${t}.alm`);
    const r = run('fit', '--quiet', '--backend', 'builtin', '--threads', String(t), '--normal', path.join(dir, 'normal'), '-o', out);
    assert.equal(r.status, 1, `one image is corrupt: ${r.stderr}`);
    assert.match(r.stderr, /cell0010_corrupt\.png: skipped: decode_failed/);
    return readFileSync(out);
  });
  assert.ok(outs[0].equals(outs[1]), 'fitted .alm differs between 1 and 2 threads');
});

test('--threads must be a whole number in [1, 64]', () => {
  for (const cmd of [['classify', dir], ['eval', dir], ['fit', '--normal', dir, '-o', path.join(dir, 'x.alm')]]) {
    for (const bad of ['0', '65', 'two', '1.5']) {
      const r = run(cmd[0], '--threads', bad, ...cmd.slice(1));
      assert.equal(r.status, 2, `${cmd[0]} --threads ${bad}`);
      assert.match(r.stderr, /--threads /);
    }
  }
});

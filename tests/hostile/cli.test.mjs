// SPDX-License-Identifier: Apache-2.0
// The hostile corpus (scripts/make_bad_inputs.py) through the native CLI:
// `classify --json` over every image reports each bad file with file, error and code, still
// classifies the good ones, and exits 1; every hostile model is refused (exit 2, code and
// message on stderr) or loads, as the manifest says.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ensureCorpus, cli, fixtureModel, corpusDir, CODES } from './corpus.mjs';

let entries;
before(() => {
  entries = ensureCorpus();
});

function run(args, timeoutMs = 60000) {
  const r = spawnSync(cli, args, { cwd: corpusDir, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 26 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, error: r.error };
}

test('classify --json over every hostile image: one line each, bad ones with code, exit 1', () => {
  const images = entries.filter((e) => e.kind === 'image');
  const r = run(['classify', '--json', '--model', fixtureModel, ...images.map((e) => e.file)]);
  assert.equal(r.signal, null, `CLI killed by ${r.signal}: ${r.stderr}`);
  assert.equal(r.status, 1, `exit status ${r.status}; stderr: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, images.length, 'one JSON line per file');
  const problems = [];
  images.forEach((e, i) => {
    const got = lines[i];
    if (got.file !== e.file) problems.push(`line ${i}: file ${got.file}, expected ${e.file}`);
    const ok = 'label' in got;
    if (!ok) {
      if (!CODES.includes(got.code)) problems.push(`${e.file}: unknown code ${got.code}`);
      if (typeof got.error !== 'string' || got.error.length < 5) problems.push(`${e.file}: no error message`);
      else if (got.error.includes('()')) problems.push(`${e.file}: message with an empty reason: ${got.error}`);
    } else if (!(got.score >= 0 && got.score <= 1) || !['normal', 'abnormal'].includes(got.label)) {
      problems.push(`${e.file}: bad verdict ${JSON.stringify(got)}`);
    }
    if (e.expect === 'ok' && !ok) problems.push(`${e.file} (${e.why}): failed with ${got.code}: ${got.error}`);
    if (e.expect === 'fail' && ok) problems.push(`${e.file} (${e.why}): classified, expected ${e.code || 'an error'}`);
    if (e.expect === 'fail' && !ok && e.code && got.code !== e.code) {
      problems.push(`${e.file} (${e.why}): code ${got.code}, expected ${e.code}: ${got.error}`);
    }
  });
  assert.deepEqual(problems, []);
});

test('without --json a bad file goes to stderr with its name and reason, the rest to stdout', () => {
  const r = run(['classify', '--model', fixtureModel, 'images/text.txt', 'images/ok_rgb.png', 'images/bomb_png_100000x100000.png']);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /^images\/ok_rgb\.png\t(normal|abnormal)\t[0-9.]+\n$/);
  assert.match(r.stderr, /images\/text\.txt: error: decode_failed: not a recognised image format/);
  assert.match(r.stderr, /images\/bomb_png_100000x100000\.png: error: out_of_memory: .*100000x100000.*limit/);
  assert.match(r.stderr, /2 of 3 image\(s\) failed/);
});

test('only good images: exit 0; a directory of hostile images is walked without stopping', () => {
  const good = entries.filter((e) => e.kind === 'image' && e.expect === 'ok').map((e) => e.file);
  const r = run(['classify', '--json', '--model', fixtureModel, ...good]);
  assert.equal(r.status, 0, r.stderr + r.stdout.split('\n').filter((l) => l.includes('"error"')).join('\n'));
  const dir = run(['classify', '--json', '--model', fixtureModel, 'images']);
  assert.equal(dir.status, 1);
  assert.equal(dir.stdout.trim().split('\n').length, entries.filter((e) => e.kind === 'image').length);
});

test('--max-pixels is enforced before decoding and can be raised', () => {
  const low = run(['classify', '--json', '--max-pixels', '100', '--model', fixtureModel, 'images/ok_rgb.png']);
  assert.equal(low.status, 1);
  assert.equal(JSON.parse(low.stdout).code, 'out_of_memory');
  assert.match(JSON.parse(low.stdout).error, /40x30 = 1200 pixels, above the limit of 100/);
  const high = run(['classify', '--json', '--max-pixels', '17000000', '--model', fixtureModel, 'images/ok_big_4000x4000.png']);
  assert.equal(high.status, 0, high.stdout);
});

test('every hostile model is refused with a code and a message, or loads', () => {
  const problems = [];
  for (const e of entries.filter((x) => x.kind === 'model')) {
    // A slow model may hang the core; 15 s stops it and counts as a failure to refuse it.
    const r = run(['classify', '--json', '--model', e.file, 'images/ok_rgb.png'], e.slow ? 15000 : 60000);
    if (r.signal) {
      problems.push(`${e.file} (${e.why}): killed by ${r.signal} after ${e.slow ? 15 : 60} s`);
      continue;
    }
    if (r.status === 2) {
      const m = /^anomalens: ([a-z_]+): (.+)$/m.exec(r.stderr);
      if (!m) problems.push(`${e.file}: exit 2 without "anomalens: code: message": ${r.stderr}`);
      else {
        if (!m[2].includes(e.file)) problems.push(`${e.file}: message does not name the file: ${m[2]}`);
        if (e.expect === 'ok') problems.push(`${e.file} (${e.why}): refused: ${m[1]}: ${m[2]}`);
        if (e.code && m[1] !== e.code) problems.push(`${e.file} (${e.why}): code ${m[1]}, expected ${e.code}: ${m[2]}`);
      }
    } else if (r.status === 0) {
      const v = JSON.parse(r.stdout);
      if (e.expect === 'fail') problems.push(`${e.file} (${e.why}): loaded, expected ${e.code || 'an error'}`);
      if (!(v.score >= 0 && v.score <= 1)) problems.push(`${e.file} (${e.why}): score ${v.score} outside [0, 1]`);
    } else {
      problems.push(`${e.file}: exit status ${r.status}: ${r.stderr}`);
    }
  }
  assert.deepEqual(problems, []);
});

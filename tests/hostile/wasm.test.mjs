// SPDX-License-Identifier: Apache-2.0
// The hostile corpus through the real wasm module in node (web/core, ./scripts/build.sh):
// each bad image gives {ok:false, code, message} and the next good call still gives the very
// same verdict; each hostile model is refused with {ok:false, code, message} or loads, and a
// loaded one keeps the verdict contract; raw RGBA with wrong sizes is refused.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ensureCorpus, loadCore, fixtureModel, CODES } from './corpus.mjs';

let entries;
let core;
before(async () => {
  entries = ensureCorpus();
  core = await loadCore();
});

function create(bytes) {
  const r = core.createClassifier(bytes);
  assert.equal(r.ok, true, r.message);
  return r.classifier;
}

function checkVerdict(v, where) {
  assert.equal(v.ok, true, `${where}: ${v.code}: ${v.message}`);
  for (const [k, x] of [['score', v.score], ['scores.normal', v.scores.normal], ['scores.abnormal', v.scores.abnormal]]) {
    assert.ok(Number.isFinite(x) && x >= 0 && x <= 1, `${where}: ${k} = ${x}, must be in [0, 1]`);
  }
  assert.equal(v.abnormal, v.score >= v.threshold, where);
}

test('every hostile image: {ok:false, code, message} or a verdict; the next good call is unchanged', () => {
  const clf = create(readFileSync(fixtureModel));
  const good = readFileSync(entries.find((e) => e.file === 'images/ok_rgb.png').path);
  const baseline = clf.classifyEncoded(good);
  checkVerdict(baseline, 'baseline');
  const problems = [];
  for (const e of entries.filter((x) => x.kind === 'image')) {
    let r;
    try {
      r = clf.classifyEncoded(readFileSync(e.path));
    } catch (err) {
      problems.push(`${e.file}: threw ${err}`);
      continue;
    }
    if (r.ok) {
      try { checkVerdict(r, e.file); } catch (err) { problems.push(err.message); }
      if (e.expect === 'fail') problems.push(`${e.file} (${e.why}): classified, expected ${e.code || 'an error'}`);
    } else {
      if (!CODES.includes(r.code)) problems.push(`${e.file}: unknown code ${r.code}`);
      if (typeof r.message !== 'string' || r.message.length < 5) problems.push(`${e.file}: no message`);
      else if (r.message.includes('()')) problems.push(`${e.file}: message with an empty reason: ${r.message}`);
      if (Object.keys(r).sort().join() !== 'code,message,ok') problems.push(`${e.file}: extra fields ${Object.keys(r)}`);
      if (e.expect === 'ok') problems.push(`${e.file} (${e.why}): ${r.code}: ${r.message}`);
      if (e.expect === 'fail' && e.code && r.code !== e.code) problems.push(`${e.file} (${e.why}): code ${r.code}, expected ${e.code}`);
    }
    const after = clf.classifyEncoded(good);
    if (!after.ok || after.score !== baseline.score || after.label !== baseline.label) {
      problems.push(`${e.file}: the next good call changed: ${JSON.stringify(after)} vs ${baseline.score}`);
    }
  }
  clf.delete();
  assert.deepEqual(problems, []);
});

test('the same hostile image twice gives the same answer (no state carried between calls)', () => {
  const clf = create(readFileSync(fixtureModel));
  for (const e of entries.filter((x) => x.kind === 'image' && x.expect !== 'ok')) {
    const bytes = readFileSync(e.path);
    const a = clf.classifyEncoded(bytes);
    const b = clf.classifyEncoded(bytes);
    assert.deepEqual({ ...b, timings: undefined }, { ...a, timings: undefined }, e.file);
  }
  clf.delete();
});

test('setMaxPixels refuses by pixel count before decoding and can be raised', () => {
  const clf = create(readFileSync(fixtureModel));
  const ok = readFileSync(entries.find((e) => e.file === 'images/ok_rgb.png').path);
  clf.setMaxPixels(100);
  const low = clf.classifyEncoded(ok);
  assert.equal(low.ok, false);
  assert.equal(low.code, 'out_of_memory');
  assert.match(low.message, /1200 pixels, above the limit of 100/);
  clf.setMaxPixels(17e6);
  checkVerdict(clf.classifyEncoded(readFileSync(entries.find((e) => e.file === 'images/ok_big_4000x4000.png').path)), 'big');
  clf.delete();
});

test('raw RGBA: wrong sizes, zero and huge dimensions are refused; then a good frame works', () => {
  const clf = create(readFileSync(fixtureModel));
  const cases = [
    [new Uint8Array(0), 0, 0], [new Uint8Array(12), 1, 1], [new Uint8Array(15), 2, 2], [new Uint8Array(20), 2, 2],
    [new Uint8Array(4), -1, -1], [new Uint8Array(4), 1, -4], [new Uint8Array(64), 4, 0],
    [new Uint8Array(64), 65536, 65536], [new Uint8Array(64), 2147483647, 2],
  ];
  for (const [buf, w, h] of cases) {
    const r = clf.classifyRgba(buf, w, h);
    assert.equal(r.ok, false, `${buf.length} bytes as ${w}x${h} accepted`);
    assert.ok(['invalid_argument', 'out_of_memory'].includes(r.code), `${w}x${h}: ${r.code}`);
    assert.ok(r.message.length > 5);
  }
  const frame = new Uint8Array(64 * 48 * 4).map((_, i) => (i * 7) & 255);
  const a = clf.classifyRgba(frame, 64, 48);
  checkVerdict(a, 'frame');
  assert.equal(clf.classifyRgba(frame, 64, 48).score, a.score);
  clf.delete();
});

test('every hostile model: {ok:false, code, message} or a classifier that keeps the contract', () => {
  const image = readFileSync(entries.find((e) => e.file === 'images/ok_rgb.png').path);
  const problems = [];
  for (const e of entries.filter((x) => x.kind === 'model')) {
    if (e.slow) continue;  // allocates ~1.6 GB and takes over a minute here: CLI test covers it
    let r;
    try {
      r = core.createClassifier(readFileSync(e.path));
    } catch (err) {
      problems.push(`${e.file}: threw ${err}`);
      continue;
    }
    if (!r.ok) {
      if (!CODES.includes(r.code) || !(r.message.length > 5)) problems.push(`${e.file}: bad error ${JSON.stringify(r)}`);
      if (e.expect === 'ok') problems.push(`${e.file} (${e.why}): ${r.code}: ${r.message}`);
      if (e.code && r.code !== e.code) problems.push(`${e.file} (${e.why}): code ${r.code}, expected ${e.code}: ${r.message}`);
      continue;
    }
    if (e.expect === 'fail') problems.push(`${e.file} (${e.why}): loaded, expected ${e.code || 'an error'}`);
    const v = r.classifier.classifyEncoded(image);
    if (v.ok) {
      try { checkVerdict(v, `${e.file} (${e.why})`); } catch (err) { problems.push(err.message); }
    }
    r.classifier.delete();
  }
  // A failed load leaves the module usable.
  const clf = create(readFileSync(fixtureModel));
  checkVerdict(clf.classifyEncoded(image), 'after hostile models');
  clf.delete();
  assert.deepEqual(problems, []);
});

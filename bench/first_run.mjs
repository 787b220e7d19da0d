#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// First-run cost of the wasm core in node (same V8 tiers as Chromium): each run is a fresh
// process that instantiates the core, creates the default classifier and classifies one
// 300x300 ELPV PNG four times. The first classify runs baseline (Liftoff) code while the
// optimising compiler (TurboFan) works in the background; the gap between it and the later
// calls is what a cold start pays. With --trace, also lists the functions TurboFan compiled,
// longest first (names need a build linked with --profiling-funcs; otherwise indices).
//
//   node bench/first_run.mjs [--core web/core/anomalens_core] [--runs 5] [--trace]
//
// Used for the cold-start notes in docs/BENCHMARKS.md. Numbers only; no assertion.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);

if (argv[0] === '--child') {
  // One run: argv[1] is the core's path without extension.
  const t0 = performance.now();
  const { default: create } = await import(pathToFileURL(argv[1] + '.js').href);
  const core = await create({ wasmBinary: readFileSync(argv[1] + '.wasm') });
  const t1 = performance.now();
  const created = core.createClassifier(readFileSync(path.join(root, 'models/default.alm')));
  if (!created.ok) throw new Error(`createClassifier: ${created.message}`);
  const t2 = performance.now();
  const png = readFileSync(path.join(root, '../shared/data/elpv/normal/cell0004.png'));
  const classify = [];
  for (let i = 0; i < 4; i++) {
    const a = performance.now();
    const r = created.classifier.classifyEncoded(png);
    if (!r.ok) throw new Error(`classify: ${r.message}`);
    classify.push(performance.now() - a);
  }
  console.log(JSON.stringify({ instantiate_ms: t1 - t0, create_ms: t2 - t1, classify_ms: classify }));
} else {
  const core = path.resolve(opt('--core', path.join(root, 'web/core/anomalens_core')));
  const runs = Number(opt('--runs', 5));
  if (!Number.isInteger(runs) || runs < 1) {
    console.error('usage: node bench/first_run.mjs [--core PATH_WITHOUT_EXTENSION] [--runs N>=1] [--trace]');
    process.exit(2);
  }
  for (const ext of ['.js', '.wasm']) {
    if (!existsSync(core + ext)) {
      console.error(`first_run: ${core + ext} not found (build it: ./scripts/build.sh wasm)`);
      process.exit(2);
    }
  }
  const self = fileURLToPath(import.meta.url);
  const rows = [];
  for (let i = 0; i < runs; i++) {
    rows.push(JSON.parse(execFileSync(process.execPath, [self, '--child', core], { encoding: 'utf8' })));
  }
  const median = (v) => [...v].sort((a, b) => a - b)[(v.length - 1) >> 1];
  const fmt = (v) => v.toFixed(1);
  for (const r of rows) {
    console.log(`instantiate ${fmt(r.instantiate_ms)}  create ${fmt(r.create_ms)}  classify ` +
      r.classify_ms.map(fmt).join(' '));
  }
  console.log(`median of ${runs}: instantiate ${fmt(median(rows.map((r) => r.instantiate_ms)))}  create ` +
    `${fmt(median(rows.map((r) => r.create_ms)))}  first classify ${fmt(median(rows.map((r) => r.classify_ms[0])))}` +
    `  fourth ${fmt(median(rows.map((r) => r.classify_ms[3])))} ms`);
  if (argv.includes('--trace')) {
    const log = execFileSync(process.execPath, ['--trace-wasm-compilation-times', self, '--child', core],
      { encoding: 'utf8' });
    const compiled = [];
    for (const line of log.split('\n')) {
      const m = line.match(/using TurboFan, took (\d+) ms.*bodysize (\d+).*name (.*)$/);
      if (m) compiled.push({ ms: Number(m[1]), body: Number(m[2]), name: m[3] });
    }
    compiled.sort((a, b) => b.ms - a.ms);
    console.log(`TurboFan: ${compiled.length} functions, ${compiled.reduce((s, c) => s + c.ms, 0)} ms in all; longest:`);
    for (const c of compiled.slice(0, 8)) console.log(`  ${String(c.ms).padStart(4)} ms  ${String(c.body).padStart(6)} bytes  ${c.name}`);
  }
}

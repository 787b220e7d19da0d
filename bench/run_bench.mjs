// SPDX-License-Identifier: Apache-2.0
// Side-by-side latency of Anomalens (wasm, the bench module linked from build/wasm's libraries)
// against @tensorflow/tfjs-backend-wasm and onnxruntime-web, one thread, SIMD, in node, on the
// same models, weights and input. Rounds are interleaved (one inference per runtime per round,
// order rotated) after a warm-up; median and p90 per runtime. Run through scripts/bench.sh.
//
//   node --no-liftoff bench/run_bench.mjs [--json] [--rounds N] [--models a,b] [--profile NAME]
//   node --no-liftoff bench/run_bench.mjs --threads 2 [--json] [--rounds N]   threaded runs:
//     Anomalens pthread build with N and 1 threads and the single-threaded build, interleaved;
//     then onnxruntime-web with numThreads=N in a child process of its own (--ort-only; --no-ort
//     skips it), on MobileNetV2-1.0 @224 unless --models says otherwise.
import { readFileSync, writeFileSync, existsSync, readdirSync, mkdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { readAlm } from './alm.mjs';
import { buildTfjs } from './alm_tfjs.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'build/bench');
const require = createRequire(import.meta.url);

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const json = argv.includes('--json');
const log = (...a) => { if (!json) console.log(...a); else console.error(...a); };

// ---- models ----
function findDefaultOnnx(almPath) {
  const beside = almPath.replace(/\.alm$/, '.onnx');
  if (existsSync(beside)) return beside;
  // A training run directory holding a byte-identical model.alm next to its model.onnx.
  const bytes = readFileSync(almPath);
  for (const d of readdirSync(path.join(root, 'build'))) {
    if (!d.startsWith('train')) continue;
    const stack = [path.join(root, 'build', d)];
    while (stack.length) {
      const dir = stack.pop();
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) stack.push(p);
        else if (e.name.endsWith('.alm') && existsSync(p.replace(/\.alm$/, '.onnx')) &&
                 readFileSync(p).equals(bytes)) return p.replace(/\.alm$/, '.onnx');
      }
    }
  }
  return null;
}

function models() {
  const list = [];
  for (const name of ['mobilenet_v2_1.0_224', 'mobilenet_v2_0.35_96']) {
    const base = path.join(out, name);
    list.push({ name, alm: base + '.alm', onnx: base + '.onnx', inputHwc: base + '.input_hwc.f32', ref: base + '.torch_output.f32' });
  }
  const def = path.join(root, 'models/default.alm');
  if (existsSync(def)) list.push({ name: 'default', alm: def, onnx: findDefaultOnnx(def) });
  const only = opt('--models');
  return only ? list.filter((m) => only.split(',').includes(m.name)) : list;
}

function seededInput(n, seed = 42) {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = (s / 2 ** 32) * 4 - 2;
  }
  return x;
}

// A copy: small files share node's Buffer pool, so .buffer alone is not the file.
const readF32 = (p) => { const b = readFileSync(p); return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)); };

const maxAbsDiff = (a, b) => {
  if (!a || !b) return null;
  if (a.length !== b.length) throw new Error(`output sizes differ: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

const median = (v) => { const s = [...v].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const p90 = (v) => { const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * 0.9))]; };

// ---- runtimes ----
async function loadAnomalens(profile = false) {
  const base = opt('--module') ? path.resolve(opt('--module')).replace(/\.js$/, '')
    : path.join(out, profile ? 'bench_core_profile' : 'bench_core');
  const { default: create } = await import(base + '.js');
  return create({ wasmBinary: readFileSync(base + '.wasm') });
}

// The pthread build's memory is shared and may grow: views made from its current buffer.
const heapU8 = (core) => (core.wasmMemory ? new Uint8Array(core.wasmMemory.buffer) : core.HEAPU8);
const heapF32 = (core) => (core.wasmMemory ? new Float32Array(core.wasmMemory.buffer) : core.HEAPF32);

async function loadAnomalensMt() {
  const js = path.join(out, 'mt/bench_core_mt.js');
  if (!existsSync(js)) throw new Error(`${js} missing: ./scripts/build.sh wasm-mt, then scripts/bench.sh`);
  const create = require(js);
  return create({ wasmBinary: readFileSync(js.replace(/\.js$/, '.wasm')) });
}

function anomalensSession(core, m, inputHwc, threads = 1) {
  const bytes = readFileSync(m.alm);
  const p = core._malloc(bytes.length);
  heapU8(core).set(bytes, p);
  const h = core._bench_load_threads(p, bytes.length, threads);
  core._free(p);
  if (!h) throw new Error(`anomalens: ${m.alm}: ${core.UTF8ToString(core._bench_error())}`);
  const n = core._bench_input_size(h);
  if (n !== inputHwc.length) throw new Error(`anomalens: input has ${n} floats, expected ${inputHwc.length}`);
  heapF32(core).set(inputHwc, core._bench_input(h) >> 2);
  const run = () => {
    if (core._bench_run(h, 1) !== 0) throw new Error(core.UTF8ToString(core._bench_error()));
  };
  const output = () => {
    const o = core._bench_output(h) >> 2;
    return heapF32(core).slice(o, o + core._bench_output_size(h));
  };
  return { run, output, free: () => core._bench_free(h) };
}

async function loadTfjs() {
  const tf = await import('@tensorflow/tfjs');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'));
  wasm.setWasmPaths(dist + '/');
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: wasm backend failed to initialise');
  await tf.ready();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  if (!simd) throw new Error('tfjs: wasm SIMD not available');
  return tf;
}

function tfjsSession(tf, alm, inputHwc) {
  const inl = alm.layers[0].params;
  const net = buildTfjs(tf, alm);
  const x = tf.tensor4d(inputHwc, [1, +inl.h, +inl.w, +inl.c]);
  let last = null;
  const run = () => {
    const y = net.predict(x);
    last = y.dataSync();
    y.dispose();
  };
  return { run, output: () => Float32Array.from(last), free: () => { x.dispose(); net.dispose(); } };
}

async function loadOrt(threads = 1) {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.simd = true;
  return ort;
}

async function ortSession(ort, onnxPath, inputHwc, c, h, w) {
  const s = await ort.InferenceSession.create(readFileSync(onnxPath), {
    executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const nchw = new Float32Array(c * h * w);
  for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) for (let ch = 0; ch < c; ch++)
    nchw[(ch * h + y) * w + xx] = inputHwc[(y * w + xx) * c + ch];
  const feeds = { [s.inputNames[0]]: new ort.Tensor('float32', nchw, [1, c, h, w]) };
  let last = null;
  const run = async () => {
    const r = await s.run(feeds);
    last = r[s.outputNames[0]].data;
  };
  return { run, output: () => Float32Array.from(last), free: () => s.release() };
}

// Peak memory of the real browser bundle (web/core) after loading the model and classifying
// one 300x300 image: the wasm heap only grows, so its size after the run is the peak.
async function webCoreMemory(almPath) {
  const js = path.join(root, 'web/core/anomalens_core.js');
  const { default: create } = await import(js + `?m=${Math.random()}`);
  const core = await create({ wasmBinary: readFileSync(path.join(root, 'web/core/anomalens_core.wasm')) });
  const r = core.createClassifier(readFileSync(almPath));
  if (!r.ok) throw new Error(`web core: ${almPath}: ${r.message}`);
  const rgba = new Uint8Array(300 * 300 * 4).map((_, i) => (i * 37) & 255);
  const v = r.classifier.classifyRgba(rgba, 300, 300);
  if (!v.ok) throw new Error(`web core: classify: ${v.message}`);
  const infer = [];
  for (let i = 0; i < 5; i++) infer.push(r.classifier.classifyRgba(rgba, 300, 300).timings.infer);
  const bytes = core.HEAP8.length;
  r.classifier.delete();
  return { heap_bytes: bytes, web_core_infer_ms: median(infer) };
}

async function profile(name) {
  const m = models().find((x) => x.name === name);
  if (!m) throw new Error(`--profile ${name}: no such model`);
  const core = await loadAnomalens(true);
  const alm = readAlm(m.alm);
  const inl = alm.layers[0].params;
  const input = m.inputHwc ? readF32(m.inputHwc) : seededInput(inl.c * inl.h * inl.w);
  const s = anomalensSession(core, m, input);
  for (let i = 0; i < 10; i++) s.run();
  const snap = () => core.UTF8ToString(core._bench_profile()).trim().split('\n').map((l) => {
    const [ms, label] = l.split('\t');
    return { ms: +ms, label };
  });
  // Per op, the median over runs of its time (the box is shared: medians resist preemption).
  const runs = +opt('--rounds', 30);
  const per = [];
  let prev = snap();
  for (let i = 0; i < runs; i++) {
    s.run();
    const cur = snap();
    per.push(cur.map((r, j) => r.ms - prev[j].ms));
    prev = cur;
  }
  const rows = prev.map((r, j) => ({ label: r.label, ms: median(per.map((p) => p[j])) }));
  const total = rows.reduce((a, r) => a + r.ms, 0);
  const byType = {};
  for (const r of rows) {
    const t = r.label.split(' ')[0] + (r.label.includes(' k3 ') ? ' 3x3' : r.label.includes(' k1 ') ? ' 1x1' : '');
    const key = t + (r.label.includes(' k3 ') && r.label.match(/ g(\d+) /)[1] !== '1' ? ' dw' : '');
    byType[key] = (byType[key] || 0) + r.ms;
  }
  console.log(`${name}: ${total.toFixed(3)} ms per run (sum of per-op medians over ${runs} runs)`);
  for (const [k, v] of Object.entries(byType).sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(16)} ${v.toFixed(3)} ms  ${(100 * v / total).toFixed(1)}%`);
  for (const r of rows) {
    const m = r.label.match(/ k(\d+) s\d+ g(\d+) (\d+)->(\d+)x(\d+)x(\d+)$/);
    const macs = m && r.label.startsWith('Conv') ? m[4] * m[5] * m[6] * (m[3] / m[2]) * m[1] * m[1] : 0;
    const gf = macs && r.ms > 0 ? (2 * macs / (r.ms * 1e6)).toFixed(1).padStart(5) + ' GFLOP/s' : ''.padStart(13);
    console.log(`${r.ms.toFixed(4).padStart(9)} ${gf}  ${r.label}`);
  }
}

// Rounds interleaved across runtimes (order rotated) after a warm-up; returns ms per runtime.
async function timeInterleaved(rts, rounds) {
  const warm = Math.max(10, Math.floor(rounds / 5));
  for (const r of rts) { for (let i = 0; i < warm; i++) await r.s.run(); r.ms = []; }
  for (let i = 0; i < rounds; i++) {
    for (let j = 0; j < rts.length; j++) {
      const r = rts[(i + j) % rts.length];
      const t0 = performance.now();
      await r.s.run();
      r.ms.push(performance.now() - t0);
    }
  }
}

// onnxruntime-web with `threads` threads, alone in this process (--ort-only): its idle pool
// threads keep spinning after each run and would take the cores Anomalens' threads need (and
// Anomalens' short spins would tax it), so the threaded comparison runs the two in separate
// processes, one after the other, each on an otherwise idle machine.
async function ortOnlyMain(threads) {
  const ort = await loadOrt(threads);
  const list = opt('--models') ? models() : models().filter((m) => m.name === 'mobilenet_v2_1.0_224');
  for (const m of list) {
    if (!m.onnx) continue;
    const alm = readAlm(m.alm);
    const inl = alm.layers[0].params;
    const [c, h, w] = [+inl.c, +inl.h, +inl.w];
    const input = m.inputHwc ? readF32(m.inputHwc) : seededInput(c * h * w);
    const r = { runtime: 'onnxruntime-web', threads, s: await ortSession(ort, m.onnx, input, c, h, w) };
    const rounds = +opt('--rounds', h * w >= 150 * 150 ? 60 : 300);
    await timeInterleaved([r], rounds);
    const o = r.s.output();
    console.log(JSON.stringify({ model: m.name, runtime: r.runtime, threads, rounds,
      median_ms: +median(r.ms).toFixed(3), p90_ms: +p90(r.ms).toFixed(3), min_ms: +Math.min(...r.ms).toFixed(3),
      output: Array.from(o) }));
    r.s.free();
  }
  process.exit(0);
}

async function threadsMain(threads) {
  if (argv.includes('--ort-only')) return ortOnlyMain(threads);
  mkdirSync(out, { recursive: true });
  const results = [];
  const emit = (r) => { results.push(r); if (json) console.log(JSON.stringify(r)); };
  const core = await loadAnomalens();
  const mt = await loadAnomalensMt();
  const list = opt('--models') ? models() : models().filter((m) => m.name === 'mobilenet_v2_1.0_224');
  for (const m of list) {
    const alm = readAlm(m.alm);
    const inl = alm.layers[0].params;
    const [c, h, w] = [+inl.c, +inl.h, +inl.w];
    const input = m.inputHwc ? readF32(m.inputHwc) : seededInput(c * h * w);
    const ref = m.ref && existsSync(m.ref) ? readF32(m.ref) : null;
    const rts = [
      { runtime: `anomalens-wasm-mt`, threads, s: anomalensSession(mt, m, input, threads) },
      { runtime: 'anomalens-wasm-mt', threads: 1, s: anomalensSession(mt, m, input, 1) },
      { runtime: 'anomalens-wasm', threads: 1, s: anomalensSession(core, m, input, 1) },
    ];
    const rounds = +opt('--rounds', h * w >= 150 * 150 ? 60 : 300);
    await timeInterleaved(rts, rounds);
    const outs = rts.map((r) => r.s.output());
    // onnxruntime-web in a process of its own, after ours (see ortOnlyMain); --no-ort skips it.
    if (m.onnx && !argv.includes('--no-ort')) {
      const child = execFileSync(process.execPath, ['--no-liftoff', fileURLToPath(import.meta.url),
        '--threads', String(threads), '--ort-only', '--rounds', String(rounds), '--models', m.name],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      for (const line of child.split('\n').filter((l) => l.startsWith('{'))) {
        const o = JSON.parse(line);
        const ms = { median: o.median_ms, p90: o.p90_ms, min: o.min_ms };
        rts.push({ runtime: o.runtime, threads: o.threads, fixed: ms, s: { free() {} } });
        outs.push(Float32Array.from(o.output));
      }
    }
    const base = median(rts[0].ms);
    rts.forEach((r, i) => {
      const med = r.fixed ? r.fixed.median : median(r.ms);
      emit({
        model: m.name, runtime: r.runtime, threads: r.threads, rounds,
        median_ms: +med.toFixed(3), p90_ms: +(r.fixed ? r.fixed.p90 : p90(r.ms)).toFixed(3),
        min_ms: +(r.fixed ? r.fixed.min : Math.min(...r.ms)).toFixed(3),
        // Relative to Anomalens with `threads` threads (the first row).
        ratio_to_anomalens: +(med / base).toFixed(3),
        max_abs_diff: i === 0 ? maxAbsDiff(outs[0], ref || null) : maxAbsDiff(outs[i], outs[0]),
      });
      r.s.free();
    });
    const one = median(rts[1].ms);
    log(`${m.name}: ` + rts.map((r) => `${r.runtime}/${r.threads}t ${(r.fixed ? r.fixed.median : median(r.ms)).toFixed(2)} ms`).join(', ') +
        `; speed-up ${threads} threads vs 1: ${(one / base).toFixed(2)}x (median), ` +
        `${(Math.min(...rts[1].ms) / Math.min(...rts[0].ms)).toFixed(2)}x (min)`);
  }
  const file = path.join(out, `results_threads${threads}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 1) + '\n');
  if (!json) {
    console.log(`\n| model | runtime | threads | median ms | p90 ms | min ms | ratio to Anomalens ${threads}t | max abs diff |`);
    console.log('|---|---|---|---|---|---|---|---|');
    for (const r of results) {
      console.log(`| ${r.model} | ${r.runtime} | ${r.threads} | ${r.median_ms} | ${r.p90_ms} | ${r.min_ms} | ${r.ratio_to_anomalens} | ${r.max_abs_diff === null ? '' : r.max_abs_diff.toExponential(2)} |`);
    }
    console.log(`results: ${file}`);
  }
  // Pool workers (ours and onnxruntime's) keep node alive.
  process.exit(0);
}

async function main() {
  if (opt('--profile')) return profile(opt('--profile'));
  if (opt('--threads')) return threadsMain(+opt('--threads'));
  mkdirSync(out, { recursive: true });
  const results = [];
  const emit = (r) => { results.push(r); if (json) console.log(JSON.stringify(r)); };
  const core = await loadAnomalens();
  const tf = await loadTfjs();
  const ort = await loadOrt();
  for (const m of models()) {
    const alm = readAlm(m.alm);
    const inl = alm.layers[0].params;
    const [c, h, w] = [+inl.c, +inl.h, +inl.w];
    const input = m.inputHwc ? readF32(m.inputHwc) : seededInput(c * h * w);
    const ref = m.ref && existsSync(m.ref) ? readF32(m.ref) : null;
    const rts = [
      { runtime: 'anomalens-wasm', s: anomalensSession(core, m, input) },
      { runtime: 'tfjs-backend-wasm', s: tfjsSession(tf, alm, input) },
    ];
    if (m.onnx) rts.push({ runtime: 'onnxruntime-web', s: await ortSession(ort, m.onnx, input, c, h, w) });
    else log(`${m.name}: no ONNX found for onnxruntime-web (looked beside the .alm and in build/train*/)`);
    const rounds = +opt('--rounds', h * w >= 150 * 150 ? 60 : 300);
    const warm = Math.max(10, Math.floor(rounds / 5));
    for (const r of rts) { for (let i = 0; i < warm; i++) await r.s.run(); r.ms = []; }
    for (let i = 0; i < rounds; i++) {
      for (let j = 0; j < rts.length; j++) {
        const r = rts[(i + j) % rts.length];
        const t0 = performance.now();
        await r.s.run();
        r.ms.push(performance.now() - t0);
      }
    }
    const outs = rts.map((r) => r.s.output());
    const mem = await webCoreMemory(m.alm);
    const base = median(rts[0].ms);
    for (let i = 0; i < rts.length; i++) {
      const r = rts[i];
      emit({
        model: m.name, runtime: r.runtime, threads: 1, rounds,
        median_ms: +median(r.ms).toFixed(3), p90_ms: +p90(r.ms).toFixed(3), min_ms: +Math.min(...r.ms).toFixed(3),
        ratio_to_anomalens: +(median(r.ms) / base).toFixed(3),
        // Anomalens row: against the PyTorch output (or onnxruntime-web's when there is none);
        // peers: against Anomalens.
        max_abs_diff: i === 0 ? maxAbsDiff(outs[0], ref || outs[2] || null) : maxAbsDiff(outs[i], outs[0]),
        max_abs_diff_vs_torch: ref ? maxAbsDiff(outs[i], ref) : null,
        ...(i === 0 ? { peak_wasm_heap_bytes: mem.heap_bytes, web_core_infer_ms: +mem.web_core_infer_ms.toFixed(3) } : {}),
      });
      r.s.free();
    }
    log(`${m.name}: ` + rts.map((r) => `${r.runtime} ${median(r.ms).toFixed(2)} ms`).join(', '));
    // Native, after the wasm rounds (same model, same process order every time).
    const cli = path.join(root, 'build/native/anomalens');
    if (existsSync(cli) && !argv.includes('--no-native')) {
      for (const backend of ['builtin', 'xnnpack']) {
        try {
          const o = execFileSync(cli, ['bench', '--json', '--backend', backend, '--model', m.alm, '--runs', String(Math.min(rounds, 100))], { encoding: 'utf8' });
          const j = JSON.parse(o.trim().split('\n').pop());
          emit({ model: m.name, runtime: `anomalens-native-${backend}`, threads: 1, rounds: j.runs,
            median_ms: j.median_ms, p90_ms: j.p90_ms, ratio_to_anomalens: null, max_abs_diff: null });
        } catch (e) {
          log(`${m.name}: native ${backend}: ${String(e.stderr || e.message).trim()}`);
        }
      }
    }
  }
  const wasmPath = path.join(root, 'web/core/anomalens_core.wasm');
  const wasmBytes = readFileSync(wasmPath);
  const size = { model: null, runtime: 'anomalens-wasm', kind: 'size', wasm_bytes: wasmBytes.length,
    wasm_gzip_bytes: gzipSync(wasmBytes, { level: 9 }).length,
    js_bytes: readFileSync(wasmPath.replace(/\.wasm$/, '.js')).length };
  emit(size);
  const file = path.join(out, 'results.json');
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 1) + '\n');
  if (!json) {
    console.log(`\n| model | runtime | median ms | p90 ms | ratio to Anomalens | max abs diff |`);
    console.log('|---|---|---|---|---|---|');
    for (const r of results.filter((x) => x.kind !== 'size')) {
      console.log(`| ${r.model} | ${r.runtime} | ${r.median_ms} | ${r.p90_ms} | ${r.ratio_to_anomalens ?? ''} | ${r.max_abs_diff === null ? '' : r.max_abs_diff.toExponential(2)} |`);
    }
    console.log(`\nanomalens_core.wasm: ${size.wasm_bytes} bytes, ${size.wasm_gzip_bytes} gzipped`);
    for (const r of results.filter((x) => x.peak_wasm_heap_bytes)) console.log(`peak wasm heap, ${r.model}: ${(r.peak_wasm_heap_bytes / 2 ** 20).toFixed(1)} MiB`);
    console.log(`results: ${file}`);
  }
}

main().catch((e) => { console.error(`bench: ${e.stack || e.message}`); process.exit(1); });

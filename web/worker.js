// SPDX-License-Identifier: Apache-2.0
// Module Web Worker that owns the wasm core and one C++ Classifier.
//
// Protocol (one request at a time, answered in order; see anomalens.js):
//   {id, type: 'load', coreUrl, wasmBinary?, threads?, noSimdCoreUrl?, mtCoreUrl?} -> {id, ok}
//     (chooses and starts the core; the page sends it first and fetches the model meanwhile)
//   {id, type: 'init', model: ArrayBuffer, maxPixels?} -> {id, ok, info}  (after 'load'; or with
//     the 'load' fields itself, which then chooses and starts the core)
//   {id, type: 'classify', kind: 'bytes', bytes: ArrayBuffer}   -> {id, ok, result}
//   {id, type: 'classify', kind: 'rgba', data, width, height}
//   {id, type: 'classify', kind: 'blob', blob}                  (decoded by the browser here)
//   {id, type: 'info'} -> {id, ok, info};  {id, type: 'close'} -> {id, ok}
//   {id, type: 'runtime'} -> {id, ok, runtime: {coreUrl, build, simd, threads, wasmMemoryBytes,
//     fallback?}}
//   classify takes heatmap: true|false; one-class models then answer result.distance,
//   result.anomalyMap and (heatmap: true) result.heatmap {width, height, data: Float32Array}.
// One-class fitting (Anomalens.fit), in the same worker, which then serves the fitted model:
//   {id, type: 'fitStart', coreUrl, base: ArrayBuffer, options: {fpr, dim}, wasmBinary?} -> {id, ok}
//   {id, type: 'fitAdd', abnormal: bool, kind: 'bytes'|'rgba'|'blob', ...} -> {id, ok, normal, abnormal}
//   {id, type: 'fitFinish'} -> {id, ok, modelBytes: ArrayBuffer, threshold, summary, info}
//
// Preload: the page names the core's fields ({coreUrl, noSimdCoreUrl?, mtCoreUrl?, threads}, as
// JSON) in the worker URL's fragment (anomalens.js does), and the worker starts that core while
// its first message is still on its way: at page load, messages reached a new worker 0.15-0.25 s
// after its module ran. A first request that names the same core uses it; another drops it.
//
// Core choice: browsers with WebAssembly SIMD (probed with WebAssembly.validate on a 30-byte
// module) load coreUrl (the SIMD build); others load noSimdCoreUrl (default: coreUrl with
// "_nosimd" before ".js", i.e. core/anomalens_core_nosimd.js). With wasmBinary the caller has
// chosen the build, so coreUrl is used as given.
// Threads: on a cross-origin isolated page (SharedArrayBuffer available) with SIMD, `threads`
// ('auto' = one per core, at most 4, or a number) above 1 loads the pthread build instead
// (mtCoreUrl, default coreUrl with "_mt" before ".js"). If that build cannot start, the worker
// falls back to the single-threaded core and runtime() says why (fallback).
// Failures answer {id, ok: false, code, message}; nothing is ever thrown across the boundary.
//
// createWorkerHandler() is exported so node tests can drive the same code with a fake core.

// The smallest module that needs SIMD128: (func (result v128) (i8x16.splat (i32.const 0))).
// A browser without SIMD fails to validate it (v128 is an unknown value type there).
export const kSimdProbe = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,  // magic, version 1
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b,        // type section: () -> v128
  0x03, 0x02, 0x01, 0x00,                          // function section: one function of type 0
  0x0a, 0x08, 0x01, 0x06, 0x00,                    // code section: one body, 6 bytes, no locals
  0x41, 0x00, 0xfd, 0x0f, 0x0b,                    // i32.const 0; i8x16.splat; end
]);

/** True when this engine accepts WebAssembly SIMD128 (never throws). */
export function supportsWasmSimd(wasm = globalThis.WebAssembly) {
  try {
    return typeof wasm?.validate === 'function' && wasm.validate(kSimdProbe) === true;
  } catch {
    return false;
  }
}

/** URL of a sibling build of a core: .../name.js -> .../name_<suffix>.js. */
function siblingUrl(coreUrl, suffix) {
  const url = new URL(coreUrl);
  url.pathname = url.pathname.replace(/(\.m?js)?$/, (ext) => `_${suffix}${ext || '.js'}`);
  return url.href;
}

/** URL of the non-SIMD build next to a core: .../name.js -> .../name_nosimd.js. */
export function noSimdUrlFor(coreUrl) {
  return siblingUrl(coreUrl, 'nosimd');
}

/** URL of the pthread build next to a core: .../name.js -> .../name_mt.js. */
export function mtUrlFor(coreUrl) {
  return siblingUrl(coreUrl, 'mt');
}

// The pthread bundle starts one worker per core besides this thread, at most 3 (CMakeLists.txt:
// PTHREAD_POOL_SIZE): with the calling thread, at most 4 threads.
const kMaxThreads = 4;

/**
 * Engine threads to run: 1 unless the page can share wasm memory (cross-origin isolated) and has
 * SIMD (the pthread bundle needs both); then `requested` ('auto' or undefined: one per core) capped
 * at kMaxThreads.
 */
export function resolveThreads({ requested, isolated, simd, cores }) {
  if (!isolated || !simd) return 1;
  const want = requested === undefined || requested === 'auto' ? Number(cores) || 1 : Number(requested);
  if (!Number.isFinite(want) || want < 1) return 1;
  return Math.min(kMaxThreads, Math.floor(want));
}

/**
 * Picks the core build to load: {url, build, wasmName, threads}; build is 'simd', 'simd-mt'
 * (threads > 1), 'nosimd' or 'given' (the caller passed wasmBinary and so chose the build).
 * wasmName, when set, is the .wasm file that belongs to url (the non-SIMD core may be a renamed
 * copy whose JS still asks for anomalens_core.wasm, so its .wasm is looked up by the JS file's
 * own name). `threads` comes from resolveThreads().
 */
export function chooseCore({ coreUrl, noSimdCoreUrl, mtCoreUrl, simd, threads = 1, haveWasmBinary }) {
  if (haveWasmBinary) return { url: coreUrl, build: 'given', wasmName: null, threads: 1 };
  if (simd && threads > 1) {
    return { url: mtCoreUrl ?? mtUrlFor(coreUrl), build: 'simd-mt', wasmName: null, threads };
  }
  if (simd) return { url: coreUrl, build: 'simd', wasmName: null, threads: 1 };
  const url = noSimdCoreUrl ?? noSimdUrlFor(coreUrl);
  const base = new URL(url).pathname.split('/').pop().replace(/\.m?js$/, '');
  return { url, build: 'nosimd', wasmName: `${base}.wasm`, threads: 1 };
}

function failure(code, message) {
  return { ok: false, code, message };
}

function now() {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

function isFiniteNumber(x) {
  return typeof x === 'number' && Number.isFinite(x);
}

// Copies the core's answer into a plain object and checks it, so callers never see a partially
// valid result.
function checkedResult(raw) {
  if (!raw || typeof raw !== 'object') return failure('internal', 'core returned no result');
  if (raw.ok !== true) {
    return failure(typeof raw.code === 'string' ? raw.code : 'internal',
      typeof raw.message === 'string' ? raw.message : 'classification failed');
  }
  const scores = raw.scores ?? {};
  const result = {
    label: raw.label,
    score: raw.score,
    scores: { normal: scores.normal, abnormal: scores.abnormal },
    threshold: raw.threshold,
    timings: {
      decode: raw.timings?.decode ?? 0,
      preprocess: raw.timings?.preprocess ?? 0,
      infer: raw.timings?.infer ?? 0,
    },
  };
  const numbersOk = [result.score, result.scores.normal, result.scores.abnormal, result.threshold]
    .every(isFiniteNumber);
  if (typeof result.label !== 'string' || !numbersOk) {
    return failure('internal', `core returned a malformed result (label ${String(raw.label)}, ` +
      `score ${String(raw.score)})`);
  }
  if (isFiniteNumber(raw.distance)) result.distance = raw.distance;
  for (const key of ['anomalyMap', 'heatmap']) {
    const map = raw[key];
    if (!map) continue;
    const data = map.data instanceof Float32Array ? map.data : new Float32Array(map.data ?? []);
    if (!(map.width > 0 && map.height > 0) || data.length !== map.width * map.height) {
      return failure('internal', `core returned a malformed ${key} (${map.width}x${map.height}, ` +
        `${data.length} values)`);
    }
    result[key] = { width: map.width, height: map.height, data };
  }
  return { ok: true, result };
}

function plainInfo(raw) {
  const meta = {};
  if (raw.meta && typeof raw.meta === 'object') {
    for (const [k, v] of Object.entries(raw.meta)) meta[k] = String(v);
  }
  return {
    name: String(raw.name ?? ''),
    labels: Array.from(raw.labels ?? [], String),
    inputWidth: Number(raw.inputWidth),
    inputHeight: Number(raw.inputHeight),
    channels: String(raw.channels ?? ''),
    threshold: Number(raw.threshold),
    parameters: Number(raw.parameters ?? 0),
    macs: Number(raw.macs ?? 0),
    oneclass: raw.oneclass === true,
    meta,
  };
}

async function decodeWithBrowser(blob) {
  if (typeof createImageBitmap !== 'function' || typeof OffscreenCanvas !== 'function') {
    throw new Error('this environment cannot decode images (no createImageBitmap)');
  }
  const bitmap = await createImageBitmap(blob);
  try {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    const image = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
    return { data: new Uint8Array(image.data.buffer), width: image.width, height: image.height };
  } finally {
    bitmap.close();
  }
}

/**
 * Returns handle(message) -> Promise<reply>; replies are plain, structured-cloneable objects.
 * options (for tests): simd (boolean, default: probed), importModule (url -> module namespace),
 * isolated (boolean, default: crossOriginIsolated with SharedArrayBuffer), cores (default:
 * navigator.hardwareConcurrency); preload: core fields to start loading at once (see above).
 */
export function createWorkerHandler(options = {}) {
  const simd = options.simd ?? supportsWasmSimd();
  const isolated = options.isolated ??
    (globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function');
  const cores = options.cores ?? globalThis.navigator?.hardwareConcurrency ?? 1;
  const importModule = options.importModule ?? ((url) => import(url));
  let core = null;
  let classifier = null;
  let chosen = null;  // {url, build, wasmName, threads} from chooseCore
  let fallback = null;  // why the pthread build was not used, when it was chosen but failed
  let singleCoreUrl = null;  // the single-threaded core to fall back to (the message's coreUrl)
  let wasmBinary = null;
  let modelBytes = null;
  let broken = false;
  let fitter = null;  // the C++ OneClassFitter between fitStart and fitFinish
  let maxPixels = 0;  // decode limit from create({maxPixels}); 0 keeps the core's default

  // Imports and starts the core `chosen` names; {ok} or a failure.
  async function startCore() {
    const coreUrl = chosen.url;
    let factory;
    try {
      factory = (await importModule(coreUrl)).default;
    } catch (err) {
      if (chosen.build === 'nosimd') {
        return failure('unsupported', 'this browser has no WebAssembly SIMD and the non-SIMD ' +
          `core could not be loaded from ${coreUrl}: ${err.message}`);
      }
      return failure('core_load_failed', `cannot load the wasm core from ${coreUrl}: ${err.message}`);
    }
    try {
      const wasmName = chosen.wasmName;
      const locateFile = (file) =>
        new URL(wasmName && file.endsWith('.wasm') ? wasmName : file, coreUrl).href;
      const args = { locateFile };
      if (wasmBinary) args.wasmBinary = wasmBinary;
      core = await factory(args);
    } catch (err) {
      return failure('core_load_failed', `cannot start the wasm core: ${err.message ?? err}`);
    }
    return { ok: true };
  }

  // Chooses the build for an init/fitStart message and starts it (unless one already runs).
  function choose(msg) {
    const threads = resolveThreads({ requested: msg.threads, isolated, simd, cores });
    chosen = chooseCore({ coreUrl: msg.coreUrl, noSimdCoreUrl: msg.noSimdCoreUrl,
      mtCoreUrl: msg.mtCoreUrl, simd, threads, haveWasmBinary: wasmBinary !== null });
    fallback = null;
    singleCoreUrl = msg.coreUrl;
  }

  async function loadCore() {
    if (core) return { ok: true };
    const started = await startCore();
    if (started.ok || chosen.build !== 'simd-mt') return started;
    // The pthread build is an optimisation: without it (not deployed, blocked worker-src, no
    // memory for the pool) the single-threaded core still answers.
    fallback = started.message;
    chosen = { url: singleCoreUrl, build: 'simd', wasmName: null, threads: 1 };
    return startCore();
  }

  // The core a request names; a preloaded core serves a request only if the two are equal.
  const coreKey = (msg) =>
    JSON.stringify([msg.coreUrl, msg.noSimdCoreUrl ?? null, msg.mtCoreUrl ?? null, msg.threads ?? 'auto']);
  let preloaded = null;  // {key, done: Promise<{ok}>} while a preloaded core waits for its request

  // Chooses and starts the core a load, init or fitStart request names.
  async function startRequestedCore(msg) {
    if (preloaded) {
      const { key, done } = preloaded;
      preloaded = null;
      const started = await done;
      if (key === coreKey(msg) && !msg.wasmBinary) return started;
      dropCore();  // the request wants another core (or brings its own .wasm)
    }
    wasmBinary = msg.wasmBinary ? new Uint8Array(msg.wasmBinary) : null;
    choose(msg);
    return loadCore();
  }

  async function load() {
    const loadedCore = await loadCore();
    if (!loadedCore.ok) return loadedCore;
    const created = chosen.threads > 1
      ? core.createClassifierWithThreads(modelBytes, chosen.threads) : core.createClassifier(modelBytes);
    if (!created || created.ok !== true) {
      return failure(created?.code ?? 'invalid_model', created?.message ?? 'model rejected');
    }
    classifier = created.classifier;
    if (maxPixels > 0) classifier.setMaxPixels(maxPixels);
    broken = false;
    return { ok: true };
  }

  // A trap inside wasm (e.g. abort) leaves the module unusable: drop it and start a fresh one on
  // the next call, so one bad input never breaks the calls after it.
  function markBroken() {
    try {
      classifier?.delete();
    } catch { /* the module is already dead */ }
    classifier = null;
    try {
      fitter?.delete();
    } catch { /* the module is already dead */ }
    fitter = null;
    dropCore();
    broken = true;
  }

  function dropCore() {
    try {
      core?.PThread?.terminateAllThreads();  // the pthread build's workers die with the module
    } catch { /* already gone */ }
    core = null;
  }

  async function classify(msg) {
    if (!modelBytes) return failure('not_ready', 'no model loaded');
    if (broken || !classifier) {
      const loaded = await load();
      if (!loaded.ok) return loaded;
    }
    const t0 = now();
    let raw;
    let browserDecodeMs = 0;
    try {
      classifier.setHeatmap?.(msg.heatmap === true);
      if (msg.kind === 'bytes') {
        raw = classifier.classifyEncoded(new Uint8Array(msg.bytes));
      } else if (msg.kind === 'rgba') {
        if (!(msg.width > 0 && msg.height > 0) || msg.data.byteLength !== msg.width * msg.height * 4) {
          return failure('invalid_argument', `RGBA input of ${msg.data.byteLength} bytes does not ` +
            `match ${msg.width}x${msg.height}x4`);
        }
        raw = classifier.classifyRgba(new Uint8Array(msg.data), msg.width, msg.height);
      } else if (msg.kind === 'blob') {
        let pixels;
        try {
          pixels = await decodeWithBrowser(msg.blob);
        } catch (err) {
          return failure('decode_failed', `the browser could not decode this ${msg.blob.type || 'image'}` +
            ` (${err.message ?? err})`);
        }
        browserDecodeMs = now() - t0;
        raw = classifier.classifyRgba(pixels.data, pixels.width, pixels.height);
      } else {
        return failure('invalid_argument', `unknown input kind "${msg.kind}"`);
      }
    } catch (err) {
      markBroken();
      return failure('internal', `the wasm core failed: ${err?.message ?? err}`);
    }
    const checked = checkedResult(raw);
    if (checked.ok) {
      checked.result.timings.decode += browserDecodeMs;
      checked.result.elapsedMs = now() - t0;
    }
    return checked;
  }

  function checkedStatus(raw, what) {
    if (raw && raw.ok === true) return { ok: true };
    return failure(typeof raw?.code === 'string' ? raw.code : 'internal',
      typeof raw?.message === 'string' ? raw.message : `${what} failed`);
  }

  async function fitStart(msg) {
    const loaded = await startRequestedCore(msg);
    if (!loaded.ok) return loaded;
    if (typeof core.createFitter !== 'function') {
      return failure('unsupported', 'this wasm core has no one-class fitter (rebuild web/core)');
    }
    try {
      fitter?.delete();
    } catch { /* gone */ }
    fitter = null;
    const created = core.createFitter(new Uint8Array(msg.base),
      { ...(msg.options ?? {}), threads: chosen.threads });
    if (!created || created.ok !== true) return checkedStatus(created, 'creating the fitter');
    fitter = created.fitter;
    return { ok: true };
  }

  async function fitAdd(msg) {
    if (!fitter) return failure('not_ready', 'no fit in progress (fitStart first)');
    const abnormal = msg.abnormal === true;
    let raw;
    try {
      if (msg.kind === 'bytes') {
        const bytes = new Uint8Array(msg.bytes);
        raw = abnormal ? fitter.addAbnormalEncoded(bytes) : fitter.addNormalEncoded(bytes);
      } else if (msg.kind === 'rgba' || msg.kind === 'blob') {
        let pixels = { data: new Uint8Array(msg.data ?? 0), width: msg.width, height: msg.height };
        if (msg.kind === 'blob') {
          try {
            pixels = await decodeWithBrowser(msg.blob);
          } catch (err) {
            return failure('decode_failed', `the browser could not decode this ${msg.blob.type || 'image'}` +
              ` (${err.message ?? err})`);
          }
        } else if (!(msg.width > 0 && msg.height > 0) || pixels.data.length !== msg.width * msg.height * 4) {
          return failure('invalid_argument', `RGBA input of ${pixels.data.length} bytes does not ` +
            `match ${msg.width}x${msg.height}x4`);
        }
        raw = abnormal ? fitter.addAbnormalRgba(pixels.data, pixels.width, pixels.height)
          : fitter.addNormalRgba(pixels.data, pixels.width, pixels.height);
      } else {
        return failure('invalid_argument', `unknown input kind "${msg.kind}"`);
      }
    } catch (err) {
      markBroken();
      return failure('internal', `the wasm core failed: ${err?.message ?? err}`);
    }
    const status = checkedStatus(raw, 'adding the image');
    if (!status.ok) return status;
    return { ok: true, normal: fitter.normalCount(), abnormal: fitter.abnormalCount() };
  }

  async function fitFinish() {
    if (!fitter) return failure('not_ready', 'no fit in progress (fitStart first)');
    let raw;
    try {
      raw = fitter.finish();
    } catch (err) {
      markBroken();
      return failure('internal', `the wasm core failed: ${err?.message ?? err}`);
    }
    if (!raw || raw.ok !== true) return checkedStatus(raw, 'fitting');
    try {
      fitter.delete();
    } catch { /* gone */ }
    fitter = null;
    const bytes = raw.modelBytes instanceof Uint8Array ? raw.modelBytes : new Uint8Array(raw.modelBytes);
    try {
      classifier?.delete();
    } catch { /* gone */ }
    classifier = null;
    modelBytes = bytes;
    const loaded = await load();
    if (!loaded.ok) {
      modelBytes = null;
      return failure(loaded.code, `the fitted model does not load: ${loaded.message}`);
    }
    const summary = {};
    for (const [k, v] of Object.entries(raw.summary ?? {})) summary[k] = v;
    return {
      ok: true,
      modelBytes: bytes.slice().buffer,
      threshold: Number(raw.threshold),
      summary,
      info: plainInfo(classifier.info()),
    };
  }

  if (typeof options.preload?.coreUrl === 'string') {
    try {
      choose(options.preload);
      preloaded = { key: coreKey(options.preload), done: loadCore() };
    } catch {
      chosen = null;  // e.g. not a URL: nothing preloads, the first request chooses the core
    }
  }

  return async function handle(msg) {
    try {
      switch (msg.type) {
        case 'load':  // the first request of a worker
          return await startRequestedCore(msg);
        case 'init': {
          if (msg.coreUrl) {
            const started = await startRequestedCore(msg);
            if (!started.ok) return started;
          } else if (!chosen) {
            return failure('invalid_argument', 'init without coreUrl needs a load request first');
          }
          modelBytes = new Uint8Array(msg.model);
          maxPixels = Number.isFinite(msg.maxPixels) && msg.maxPixels >= 1 ? msg.maxPixels : 0;
          const loaded = await load();
          if (!loaded.ok) {
            modelBytes = null;
            return loaded;
          }
          return { ok: true, info: plainInfo(classifier.info()) };
        }
        case 'classify':
          return await classify(msg);
        case 'fitStart':
          return await fitStart(msg);
        case 'fitAdd':
          return await fitAdd(msg);
        case 'fitFinish':
          return await fitFinish();
        case 'info':
          if (!classifier) return failure('not_ready', 'no model loaded');
          return { ok: true, info: plainInfo(classifier.info()) };
        case 'runtime': {
          // Wasm memory only grows, so its current size is the peak since the core started.
          const heap = core?.HEAP8 ?? core?.HEAPU8;
          const runtime = {
            coreUrl: chosen?.url ?? null,
            build: chosen?.build ?? null,
            simd,
            threads: chosen?.threads ?? 1,
            wasmMemoryBytes: heap ? heap.length : null,
          };
          if (fallback) runtime.fallback = fallback;
          return { ok: true, runtime };
        }
        case 'close':
          try {
            classifier?.delete();
          } catch { /* already gone */ }
          classifier = null;
          modelBytes = null;
          return { ok: true };
        default:
          return failure('invalid_argument', `unknown request "${msg.type}"`);
      }
    } catch (err) {
      markBroken();
      return failure('internal', `worker error: ${err?.message ?? err}`);
    }
  };
}

/** The core fields a worker URL's fragment names (see Preload above), or undefined. */
export function preloadFromUrl(href) {
  try {
    const hash = new URL(href).hash;
    return hash.length > 1 ? JSON.parse(decodeURIComponent(hash.slice(1))) : undefined;
  } catch {
    return undefined;  // not a preload fragment: the first request chooses the core
  }
}

const inWorker = typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope;
if (inWorker) {
  // worker.js?simd=0 forces the non-SIMD core (tests and benchmarks of the fallback).
  const options = new URL(self.location.href).searchParams.get('simd') === '0' ? { simd: false } : {};
  options.preload = preloadFromUrl(self.location.href);
  const handle = createWorkerHandler(options);
  let chain = Promise.resolve();
  self.addEventListener('message', (event) => {
    const msg = event.data;
    chain = chain.then(async () => {
      const reply = await handle(msg);
      // Big buffers (heatmaps, fitted models) move instead of being copied.
      const transfer = [reply.modelBytes, reply.result?.heatmap?.data?.buffer,
        reply.result?.anomalyMap?.data?.buffer].filter((b) => b instanceof ArrayBuffer);
      self.postMessage({ id: msg.id, ...reply }, transfer);
    });
  });
}

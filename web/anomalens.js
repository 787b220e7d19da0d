// SPDX-License-Identifier: Apache-2.0
// Anomalens: offline image anomaly classification in the browser.
//
//   import { Anomalens } from './anomalens.js';
//   const clf = await Anomalens.create({ model: '/models/default.alm' });
//   const { label, score } = await clf.classify(fileOrCanvasOrVideo);
//   clf.close();
//
//   // One-class: fit from normal images only (optionally a few abnormal ones), then heatmaps.
//   const det = await Anomalens.fit({ normal: files, base: '/models/backbone.alm', fpr: 0.01,
//     onProgress: ({ done, total }) => {} });
//   const r = await det.classify(frame, { heatmap: true });   // r.heatmap: {width, height, data}
//   const alm = det.modelBytes();                              // save it; create() loads it
//
// The wasm core runs in a module Web Worker (worker.js), so the page never freezes. Encoded
// files the core decodes itself (PNG, JPEG, GIF, BMP, TGA and anything unrecognised) go in as
// bytes, exactly as the native CLI sees them; formats only the browser can read (WebP, AVIF,
// SVG, ICO, ...) are decoded by the browser and go in as RGBA pixels.

const kDefaultCoreUrl = new URL('./core/anomalens_core.js', import.meta.url).href;
const kDefaultWorkerUrl = new URL('./worker.js', import.meta.url).href;

/** Error with a machine-readable code (invalid_model, decode_failed, invalid_argument, ...). */
export class AnomalensError extends Error {
  constructor(code, message, details = {}) {
    super(message);
    this.name = 'AnomalensError';
    this.code = code;
    if (details.file !== undefined) this.file = details.file;
  }
}

function startsWith(bytes, magic, offset = 0) {
  if (bytes.length < offset + magic.length) return false;
  for (let i = 0; i < magic.length; i++) {
    if (magic[i] !== null && bytes[offset + i] !== magic[i]) return false;
  }
  return true;
}

function ascii(text) {
  return Array.from(text, (c) => c.charCodeAt(0));
}

/**
 * Classifies the first bytes of a file: 'core' (the wasm core decodes it: PNG, JPEG, GIF, BMP,
 * and anything unrecognised such as TGA, which has no magic) or 'browser' (WebP, AVIF/HEIF, SVG,
 * ICO: decoded by the browser and passed as pixels).
 */
export function sniffFormat(head, mimeType = '') {
  const b = head instanceof Uint8Array ? head : new Uint8Array(head);
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { format: 'png', route: 'core' };
  if (startsWith(b, [0xff, 0xd8, 0xff])) return { format: 'jpeg', route: 'core' };
  if (startsWith(b, ascii('GIF87a')) || startsWith(b, ascii('GIF89a'))) return { format: 'gif', route: 'core' };
  if (startsWith(b, ascii('BM'))) return { format: 'bmp', route: 'core' };
  if (startsWith(b, ascii('RIFF')) && startsWith(b, ascii('WEBP'), 8)) return { format: 'webp', route: 'browser' };
  if (startsWith(b, ascii('ftyp'), 4)) {
    const brand = String.fromCharCode(...b.subarray(8, 12));
    if (['avif', 'avis', 'heic', 'heix', 'mif1', 'msf1'].includes(brand)) {
      return { format: brand.startsWith('avi') ? 'avif' : 'heif', route: 'browser' };
    }
  }
  if (startsWith(b, [0x00, 0x00, 0x01, 0x00])) return { format: 'ico', route: 'browser' };
  // SVG is text: look for an <svg tag near the start (after an optional XML prolog / BOM).
  const text = String.fromCharCode(...b.subarray(0, Math.min(b.length, 512))).trimStart();
  if (mimeType === 'image/svg+xml' || (text.startsWith('<') && /<svg[\s>]/i.test(text))) {
    return { format: 'svg', route: 'svg' };
  }
  return { format: 'unknown', route: 'core' };
}

function canvas2d(width, height) {
  if (typeof OffscreenCanvas === 'function') {
    const canvas = new OffscreenCanvas(width, height);
    return canvas.getContext('2d', { willReadFrequently: true });
  }
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  return canvas.getContext('2d', { willReadFrequently: true });
}

function pixelsOf(source, width, height) {
  if (!(width > 0 && height > 0)) {
    throw new AnomalensError('invalid_argument', `image has no pixels yet (${width}x${height})`);
  }
  const ctx = canvas2d(width, height);
  ctx.drawImage(source, 0, 0, width, height);
  const image = ctx.getImageData(0, 0, width, height);
  return { kind: 'rgba', data: image.data.buffer, width, height };
}

// SVG cannot be rasterised by createImageBitmap inside a worker; use an <img> here.
async function rasteriseSvg(blob) {
  const url = URL.createObjectURL(blob);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    const w = img.naturalWidth || 300;
    const h = img.naturalHeight || 150;
    return pixelsOf(img, w, h);
  } catch (err) {
    if (err instanceof AnomalensError) throw err;
    throw new AnomalensError('decode_failed', `the browser could not decode this SVG (${err.message})`);
  } finally {
    URL.revokeObjectURL(url);
  }
}

const has = (name) => typeof globalThis[name] === 'function';

// Turns any supported input into one worker request (plus transferables).
async function toRequest(input) {
  if (has('Blob') && input instanceof Blob) {
    const bytes = new Uint8Array(await input.arrayBuffer());
    const { route } = sniffFormat(bytes.subarray(0, 512), input.type);
    if (route === 'browser') return { msg: { kind: 'blob', blob: input }, transfer: [] };
    if (route === 'svg') {
      const req = await rasteriseSvg(input);
      return { msg: req, transfer: [req.data] };
    }
    return { msg: { kind: 'bytes', bytes: bytes.buffer }, transfer: [bytes.buffer] };
  }
  if (input instanceof ArrayBuffer || ArrayBuffer.isView(input)) {
    const view = input instanceof ArrayBuffer ? new Uint8Array(input)
      : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    const copy = view.slice();
    return { msg: { kind: 'bytes', bytes: copy.buffer }, transfer: [copy.buffer] };
  }
  if (has('ImageData') && input instanceof ImageData) {
    const copy = new Uint8Array(input.data).buffer;
    return { msg: { kind: 'rgba', data: copy, width: input.width, height: input.height }, transfer: [copy] };
  }
  let req = null;
  if (has('ImageBitmap') && input instanceof ImageBitmap) {
    req = pixelsOf(input, input.width, input.height);
  } else if (has('HTMLVideoElement') && input instanceof HTMLVideoElement) {
    if (input.readyState < 2) {
      throw new AnomalensError('invalid_argument', 'the video has no current frame yet (readyState < 2)');
    }
    req = pixelsOf(input, input.videoWidth, input.videoHeight);
  } else if (has('HTMLImageElement') && input instanceof HTMLImageElement) {
    if (!input.complete || input.naturalWidth === 0) {
      throw new AnomalensError('invalid_argument', `the image ${input.src} is not loaded (or is broken)`);
    }
    req = pixelsOf(input, input.naturalWidth, input.naturalHeight);
  } else if ((has('HTMLCanvasElement') && input instanceof HTMLCanvasElement) ||
             (has('OffscreenCanvas') && input instanceof OffscreenCanvas)) {
    req = pixelsOf(input, input.width, input.height);
  }
  if (!req) {
    const kind = input === null ? 'null' : (input?.constructor?.name ?? typeof input);
    throw new AnomalensError('invalid_argument', `cannot classify a ${kind}: pass a Blob/File, ` +
      'ImageData, ImageBitmap, canvas, <img> or <video>');
  }
  return { msg: req, transfer: [req.data] };
}

/**
 * Colours a heatmap ({width, height, data: per-pixel scores, 0.5 = the model's threshold}) as an
 * ImageData overlay: transparent to yellow below the threshold, orange to red at or above it
 * (the CLI's classify --heatmap colours). Draw it over the image, or createImageBitmap() it.
 */
export function heatmapToImageData(heatmap, { opacity = 0.75 } = {}) {
  const { width, height, data } = heatmap ?? {};
  if (!(width > 0 && height > 0) || !data || data.length !== width * height) {
    throw new AnomalensError('invalid_argument', `heatmapToImageData needs {width, height, data} ` +
      `with width*height values (got ${width}x${height}, ${data?.length} values)`);
  }
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < data.length; i++) {
    const s = Math.min(1, Math.max(0, Number.isFinite(data[i]) ? data[i] : 1));
    let r; let g; let a;
    if (s < 0.5) {
      // Below the threshold: faint yellow that grows towards it.
      const t = s / 0.5;
      r = 255; g = 230; a = t * t * 0.45;
    } else {
      // At or above: orange (s = 0.5) to red (s = 1).
      const t = (s - 0.5) / 0.5;
      r = 255; g = Math.round(150 * (1 - t)); a = 0.6 + 0.4 * t;
    }
    rgba[i * 4] = r;
    rgba[i * 4 + 1] = g;
    rgba[i * 4 + 2] = 0;
    rgba[i * 4 + 3] = Math.round(255 * a * opacity);
  }
  return typeof ImageData === 'function' ? new ImageData(rgba, width, height) : { data: rgba, width, height };
}

async function loadModelBytes(model) {
  // A promise of a model lets the worker start its core before the caller knows which model.
  if (typeof model?.then === 'function') model = await model;
  if (model instanceof ArrayBuffer) return model.slice(0);
  if (ArrayBuffer.isView(model)) {
    return model.buffer.slice(model.byteOffset, model.byteOffset + model.byteLength);
  }
  if (has('Blob') && model instanceof Blob) return model.arrayBuffer();
  if (typeof model === 'string' || model instanceof URL) {
    let response;
    try {
      response = await fetch(model);
    } catch (err) {
      throw new AnomalensError('network', `cannot fetch the model ${model}: ${err.message}`);
    }
    if (!response.ok) {
      throw new AnomalensError('network', `cannot fetch the model ${model}: HTTP ${response.status}`);
    }
    return response.arrayBuffer();
  }
  throw new AnomalensError('invalid_argument',
    'options.model must be a URL string, URL, ArrayBuffer, typed array or Blob');
}

/** One classifier (one model) running in its own worker. Create with Anomalens.create(). */
export class Anomalens {
  /**
   * options.model: URL | ArrayBuffer | Uint8Array | Blob, or a Promise of one (required; the
   *   worker starts loading the core at once, before the promise settles).
   * options.coreUrl: URL of anomalens_core.js (default: ./core/ next to this file).
   * options.noSimdCoreUrl: the non-SIMD build, loaded instead of coreUrl when the browser has no
   *   WebAssembly SIMD (default: coreUrl with "_nosimd" before ".js").
   * options.workerUrl: URL of worker.js (default: next to this file).
   * options.wasmBinary: the core's .wasm bytes, if the app already has them (skips its fetch).
   * options.threads: 'auto' (default: one per core, at most 4) or a number. More than one runs
   *   the pthread build, which needs a cross-origin isolated page (COOP/COEP headers, as
   *   scripts/serve.mjs sends); elsewhere, or if that build fails to start, one thread runs.
   *   runtime() tells which.
   * options.mtCoreUrl: the pthread build (default: coreUrl with "_mt" before ".js").
   * options.maxPixels: refuse images whose header declares more pixels than this, before
   *   decoding (default 64,000,000; code 'out_of_memory').
   */
  /**
   * Fits a one-class model in a new worker and resolves to a classifier of it (same API as
   * create(), plus modelBytes() and fitSummary()).
   * options.normal: array of normal images (any classify() input; at least 2 are needed).
   * options.abnormal: optional array of abnormal examples (they refine the threshold by F1).
   * options.base: the backbone, URL | ArrayBuffer | Uint8Array | Blob: a classifier .alm, a
   *   backbone from scripts/oneclass_backbone.py, or a fitted one-class model (refitted).
   * options.fpr: target false-positive rate on held-out normal images (default 0.01).
   * options.dim: feature projection size, 0..4096 (0 keeps all channels; default: the base's
   *   own, else 128).
   * options.pool, smooth, shrinkage, ridge, storage ('f16', the default, or 'f32'), augment: as
   *   `anomalens fit` (docs/ONECLASS.md).
   * options.onProgress({phase: 'normal'|'abnormal'|'finish', done, total}).
   * coreUrl, noSimdCoreUrl, mtCoreUrl, threads, workerUrl, wasmBinary: as for create().
   * Images the core cannot read are skipped and listed in fitSummary().skipped; fitting fails
   * (AnomalensError) when too few remain.
   */
  static async fit(options = {}) {
    if (!options || options.base === undefined || options.base === null) {
      throw new AnomalensError('invalid_argument', 'Anomalens.fit needs options.base (a backbone or classifier .alm: URL or ArrayBuffer)');
    }
    const normal = Array.from(options.normal ?? []);
    const abnormal = Array.from(options.abnormal ?? []);
    if (normal.length < 2) {
      throw new AnomalensError('invalid_argument', `Anomalens.fit needs at least 2 normal images (got ${normal.length})`);
    }
    const fitOptions = {};
    if (options.fpr !== undefined) {
      if (!(typeof options.fpr === 'number' && options.fpr >= 0 && options.fpr < 1)) {
        throw new AnomalensError('invalid_argument', `options.fpr ${options.fpr}: must be a number in [0, 1)`);
      }
      fitOptions.fpr = options.fpr;
    }
    if (options.dim !== undefined) fitOptions.dim = Number(options.dim);
    // As `anomalens fit`: pool 'max'|'avg', smooth (sigma, grid cells), shrinkage, ridge, augment
    // ('none'|'hflip'|'flips'|...); the core checks them.
    for (const key of ['pool', 'augment', 'storage']) if (options[key] !== undefined) fitOptions[key] = String(options[key]);
    for (const key of ['smooth', 'shrinkage', 'ridge']) if (options[key] !== undefined) fitOptions[key] = Number(options[key]);
    const onProgress = typeof options.onProgress === 'function' ? options.onProgress : () => {};
    const base = await loadModelBytes(options.base);
    const fields = Anomalens._coreFields(options);
    const clf = Anomalens._spawn(options, fields);
    const skipped = [];
    try {
      const start = { type: 'fitStart', ...fields, base, options: fitOptions };
      try {
        await clf._request(start, [base, ...(start.wasmBinary ? [start.wasmBinary] : [])]);
      } catch (err) {
        // Marks failures of the base itself (not a backbone, no feature maps, corrupt file).
        if (err instanceof AnomalensError) err.phase = 'base';
        throw err;
      }
      const total = normal.length + abnormal.length;
      let done = 0;
      for (const [phase, list] of [['normal', normal], ['abnormal', abnormal]]) {
        for (const input of list) {
          const file = typeof input?.name === 'string' ? input.name : undefined;
          try {
            const { msg, transfer } = await toRequest(input);
            await clf._request({ type: 'fitAdd', abnormal: phase === 'abnormal', ...msg }, transfer);
          } catch (err) {
            if (err?.code === 'worker_failed' || err?.code === 'closed' || err?.code === 'internal') throw err;
            skipped.push({ index: done, phase, file, code: err?.code ?? 'invalid_argument', message: String(err?.message ?? err) });
          }
          done++;
          onProgress({ phase, done, total });
        }
      }
      onProgress({ phase: 'finish', done, total });
      const reply = await clf._request({ type: 'fitFinish' });
      clf._info = reply.info;
      clf._modelBytes = new Uint8Array(reply.modelBytes);
      clf._fitSummary = { ...reply.summary, threshold: reply.threshold, skipped };
    } catch (err) {
      clf._terminate();
      if (err instanceof AnomalensError && skipped.length) {
        err.message += ` (${skipped.length} image(s) skipped: ${skipped[0].file ?? `#${skipped[0].index}`}: ${skipped[0].message})`;
      }
      throw err;
    }
    return clf;
  }

  // `fields`: the core the first request will name (_coreFields); the worker URL's fragment
  // carries them so that the worker starts loading that core at once (see worker.js).
  static _spawn(options, fields) {
    const url = new URL(options.workerUrl ?? kDefaultWorkerUrl, globalThis.location?.href);
    if (!fields.wasmBinary) {
      const { coreUrl, noSimdCoreUrl, mtCoreUrl, threads } = fields;
      url.hash = encodeURIComponent(JSON.stringify({ coreUrl, noSimdCoreUrl, mtCoreUrl, threads }));
    }
    const workerUrl = url.href;
    if (typeof Worker !== 'function') {
      throw new AnomalensError('unsupported', 'this environment has no Web Workers');
    }
    try {
      return new Anomalens(new Worker(workerUrl, { type: 'module', name: 'anomalens' }));
    } catch (err) {
      throw new AnomalensError('worker_failed', `cannot start the worker ${workerUrl}: ${err.message}`);
    }
  }

  // The message fields that choose and locate the core (see worker.js).
  static _coreFields(options) {
    const fields = { coreUrl: new URL(options.coreUrl ?? kDefaultCoreUrl, globalThis.location?.href).href };
    for (const key of ['noSimdCoreUrl', 'mtCoreUrl']) {
      if (options[key]) fields[key] = new URL(options[key], globalThis.location?.href).href;
    }
    const threads = options.threads ?? 'auto';
    if (threads !== 'auto' && !(Number.isInteger(threads) && threads >= 1)) {
      throw new AnomalensError('invalid_argument', `options.threads ${threads}: expected 'auto' or an integer >= 1`);
    }
    fields.threads = threads;
    if (options.wasmBinary) {
      const w = options.wasmBinary;
      fields.wasmBinary = w instanceof ArrayBuffer ? w.slice(0)
        : new Uint8Array(w.buffer, w.byteOffset, w.byteLength).slice().buffer;
    }
    return fields;
  }

  static async create(options = {}) {
    if (!options || options.model === undefined || options.model === null) {
      throw new AnomalensError('invalid_argument', 'Anomalens.create needs options.model (a URL or ArrayBuffer)');
    }
    if (options.maxPixels !== undefined && !(Number.isFinite(options.maxPixels) && options.maxPixels >= 1)) {
      throw new AnomalensError('invalid_argument', `options.maxPixels ${options.maxPixels}: expected a number >= 1`);
    }
    const fields = Anomalens._coreFields(options);
    // Cold start: the worker fetches and compiles the core while this thread fetches the model.
    const clf = Anomalens._spawn(options, fields);
    const coreLoaded = clf._request({ type: 'load', ...fields }, fields.wasmBinary ? [fields.wasmBinary] : []);
    coreLoaded.catch(() => {});  // awaited below, after the model (whichever fails first is reported)
    try {
      const modelBytes = await loadModelBytes(options.model);
      await coreLoaded;
      const init = { type: 'init', model: modelBytes, maxPixels: options.maxPixels };
      const reply = await clf._request(init, [modelBytes]);
      clf._info = reply.info;
    } catch (err) {
      clf._terminate();
      throw err;
    }
    return clf;
  }

  constructor(worker) {
    this._worker = worker;
    this._nextId = 1;
    this._pending = new Map();
    this._tail = Promise.resolve();
    this._closed = false;
    this._info = null;
    this._modelBytes = null;
    this._fitSummary = null;
    worker.addEventListener('message', (event) => {
      const reply = event.data;
      const pending = this._pending.get(reply.id);
      if (!pending) return;
      this._pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply);
      else pending.reject(new AnomalensError(reply.code ?? 'internal', reply.message ?? 'failed'));
    });
    worker.addEventListener('error', (event) => {
      event.preventDefault?.();
      const message = `the classifier worker failed: ${event.message ?? 'unknown error'}`;
      this._failAll(new AnomalensError('worker_failed', message));
    });
  }

  // The worker died: reject what it was doing; calls still queued find no worker and reject
  // with 'closed' (they must not be posted to the dead worker, where they would never settle).
  _failAll(error) {
    for (const pending of this._pending.values()) pending.reject(error);
    this._pending.clear();
    this._terminate();
  }

  _terminate() {
    this._closed = true;
    this._worker?.terminate();
    this._worker = null;
  }

  _request(msg, transfer = []) {
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      if (!this._worker) {
        reject(new AnomalensError('closed', 'this classifier is closed'));
        return;
      }
      this._pending.set(id, { resolve, reject });
      this._worker.postMessage({ ...msg, id }, transfer);
    });
  }

  // Runs fn after every earlier call has settled: calls never overlap and finish in order.
  _enqueue(fn) {
    const run = this._tail.then(fn);
    this._tail = run.catch(() => {});
    return run;
  }

  /**
   * Classifies one image. Resolves to {label, score, scores: {normal, abnormal}, threshold,
   * elapsedMs, timings}; rejects with an AnomalensError (e.g. code 'decode_failed').
   */
  classify(input, options = {}) {
    const heatmap = options?.heatmap === true;
    if (this._closed) {
      return Promise.reject(new AnomalensError('closed', 'this classifier is closed'));
    }
    const file = typeof input?.name === 'string' ? input.name : undefined;
    return this._enqueue(async () => {
      const start = performance.now();
      try {
        const { msg, transfer } = await toRequest(input);
        const reply = await this._request({ type: 'classify', heatmap, ...msg }, transfer);
        const r = reply.result;
        const out = {
          label: r.label,
          score: r.score,
          scores: r.scores,
          threshold: r.threshold,
          elapsedMs: performance.now() - start,
          timings: { ...r.timings, worker: r.elapsedMs },
        };
        // One-class models: raw distance, grid map, and (heatmap: true) per-pixel scores.
        if (r.distance !== undefined) out.distance = r.distance;
        if (r.anomalyMap) out.anomalyMap = r.anomalyMap;
        if (heatmap) out.heatmap = r.heatmap ?? null;
        return out;
      } catch (err) {
        const e = err instanceof AnomalensError ? err
          : new AnomalensError('invalid_argument', String(err?.message ?? err));
        if (file !== undefined) e.file = file;
        throw e;
      }
    });
  }

  /** The fitted model's .alm bytes (a copy) after Anomalens.fit(); null for create(). */
  modelBytes() {
    return this._modelBytes ? this._modelBytes.slice() : null;
  }

  /**
   * After Anomalens.fit(): {fitImages, holdoutImages, abnormalImages, threshold (raw distance),
   * holdoutFpr, abnormalRecall, f1, rocAuc (-1 without abnormal examples), refinedByF1,
   * thresholdExtrapolated (too few held out to measure the rate: a prediction bound), storage
   * ('f16' | 'f32'), modelBytes, peakFitBytes, skipped: [{index, phase, file, code, message}]}; else null.
   */
  fitSummary() {
    return this._fitSummary ? structuredClone(this._fitSummary) : null;
  }

  /** The model card: {name, labels, inputWidth, inputHeight, channels, threshold, oneclass, parameters, macs, meta}. */
  info() {
    if (!this._info) return null;
    return structuredClone(this._info);
  }

  /**
   * Which core runs and how much memory it holds: {coreUrl, build: 'simd'|'simd-mt'|'nosimd'|
   * 'given', simd (the browser supports WebAssembly SIMD), threads (engine threads),
   * wasmMemoryBytes (the wasm heap; it only grows, so this is its peak so far), fallback (only
   * when the pthread build was chosen but could not start: why)}.
   */
  runtime() {
    if (this._closed) {
      return Promise.reject(new AnomalensError('closed', 'this classifier is closed'));
    }
    return this._enqueue(async () => (await this._request({ type: 'runtime' })).runtime);
  }

  /** Frees the C++ classifier and the worker after queued calls finish. Safe to call twice. */
  close() {
    if (this._closed) return this._tail;
    this._closed = true;
    return this._enqueue(async () => {
      try {
        await this._request({ type: 'close' });
      } catch { /* closing anyway */ }
      this._terminate();
    });
  }
}

export default Anomalens;

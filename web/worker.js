// SPDX-License-Identifier: Apache-2.0
// Module Web Worker that owns the wasm core and one C++ Classifier.
//
// Protocol (one request at a time, answered in order; see anomalens.js):
//   {id, type: 'init', coreUrl, model: ArrayBuffer, wasmBinary?} -> {id, ok, info}
//   {id, type: 'classify', kind: 'bytes', bytes: ArrayBuffer}   -> {id, ok, result}
//   {id, type: 'classify', kind: 'rgba', data, width, height}
//   {id, type: 'classify', kind: 'blob', blob}                  (decoded by the browser here)
//   {id, type: 'info'} -> {id, ok, info};  {id, type: 'close'} -> {id, ok}
// Failures answer {id, ok: false, code, message}; nothing is ever thrown across the boundary.
//
// createWorkerHandler() is exported so node tests can drive the same code with a fake core.

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

/** Returns handle(message) -> Promise<reply>; replies are plain, structured-cloneable objects. */
export function createWorkerHandler() {
  let core = null;
  let classifier = null;
  let coreUrl = null;
  let wasmBinary = null;
  let modelBytes = null;
  let broken = false;

  async function load() {
    if (!core) {
      let factory;
      try {
        factory = (await import(coreUrl)).default;
      } catch (err) {
        return failure('core_load_failed', `cannot load the wasm core from ${coreUrl}: ${err.message}`);
      }
      try {
        const args = { locateFile: (file) => new URL(file, coreUrl).href };
        if (wasmBinary) args.wasmBinary = wasmBinary;
        core = await factory(args);
      } catch (err) {
        return failure('core_load_failed', `cannot start the wasm core: ${err.message ?? err}`);
      }
    }
    const created = core.createClassifier(modelBytes);
    if (!created || created.ok !== true) {
      return failure(created?.code ?? 'invalid_model', created?.message ?? 'model rejected');
    }
    classifier = created.classifier;
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
    core = null;
    broken = true;
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

  return async function handle(msg) {
    try {
      switch (msg.type) {
        case 'init': {
          coreUrl = msg.coreUrl;
          wasmBinary = msg.wasmBinary ? new Uint8Array(msg.wasmBinary) : null;
          modelBytes = new Uint8Array(msg.model);
          const loaded = await load();
          if (!loaded.ok) {
            modelBytes = null;
            return loaded;
          }
          return { ok: true, info: plainInfo(classifier.info()) };
        }
        case 'classify':
          return await classify(msg);
        case 'info':
          if (!classifier) return failure('not_ready', 'no model loaded');
          return { ok: true, info: plainInfo(classifier.info()) };
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

const inWorker = typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope;
if (inWorker) {
  const handle = createWorkerHandler();
  let chain = Promise.resolve();
  self.addEventListener('message', (event) => {
    const msg = event.data;
    chain = chain.then(async () => {
      const reply = await handle(msg);
      self.postMessage({ id: msg.id, ...reply });
    });
  });
}

// SPDX-License-Identifier: Apache-2.0
// A fake of the wasm core's Embind API (same contract as web/core/anomalens_core.js) for unit
// tests of the JS library. Deterministic: score = mean sample value / 255.
//   - encoded input must look like a whole PNG/JPEG/GIF/BMP/TGA file, else decode_failed;
//   - encoded input starting with "CRASH" throws, like a trap inside wasm;
//   - a model must start with "ALM1"; "ALM1-unsupported" gives code unsupported.

export const stats = { instances: 0, created: 0, deleted: 0, threads: [] };

function mean(bytes, stride = 1, channels = 1) {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < bytes.length; i += stride) {
    for (let c = 0; c < channels; c++) {
      sum += bytes[i + c];
      n++;
    }
  }
  return n ? sum / n / 255 : 0;
}

function verdict(score, threshold, ms) {
  return {
    ok: true, label: score >= threshold ? 'abnormal' : 'normal', score,
    scores: { normal: 1 - score, abnormal: score }, threshold,
    timings: { decode: ms, preprocess: 0, infer: 0 },
  };
}

export default async function createAnomalensCore(moduleArgs = {}) {
  stats.instances++;
  if (typeof moduleArgs.locateFile !== 'function' && !moduleArgs.wasmBinary) {
    throw new Error('fake core: locateFile or wasmBinary expected');
  }
  return {
    createClassifier(modelBytes) {
      const head = String.fromCharCode(...new Uint8Array(modelBytes).subarray(0, 16));
      if (!head.startsWith('ALM1')) {
        return { ok: false, code: 'invalid_model', message: `bad magic "${head.slice(0, 4)}", expected "ALM1"` };
      }
      if (head.startsWith('ALM1-unsupported')) {
        return { ok: false, code: 'unsupported', message: 'layer "x" (line 3): unknown type "Foo"' };
      }
      const threshold = 0.5;
      stats.created++;
      let alive = true;
      const check = () => {
        if (!alive) throw new Error('BindingError: instance already deleted');
      };
      return {
        ok: true,
        classifier: {
          classifyEncoded(bytes) {
            check();
            const b = new Uint8Array(bytes);
            const s = String.fromCharCode(...b.subarray(0, 8));
            if (s.startsWith('CRASH')) throw new Error('RuntimeError: unreachable');
            const tail = String.fromCharCode(...b.subarray(Math.max(0, b.length - 12)));
            const known = (s.startsWith('\x89PNG') && tail.includes('IEND')) ||
              (b[0] === 0xff && b[1] === 0xd8 && b.at(-2) === 0xff && b.at(-1) === 0xd9) ||
              (s.startsWith('GIF8') && b.at(-1) === 0x3b) || (s.startsWith('BM') && b.length > 54) ||
              (b.length > 18 && [2, 3, 10, 11].includes(b[2]) && b[1] === 0);  // TGA-like
            if (!known) return { ok: false, code: 'decode_failed', message: 'unknown image type' };
            return verdict(mean(b), threshold, 1);
          },
          classifyRgba(rgba, width, height) {
            check();
            if (rgba.length !== width * height * 4) {
              return { ok: false, code: 'invalid_argument', message: 'size mismatch' };
            }
            return verdict(mean(rgba, 4, 3), threshold, 0);
          },
          info() {
            check();
            return {
              name: 'fake', labels: ['normal', 'abnormal'], inputWidth: 64, inputHeight: 64,
              channels: 'gray', threshold, parameters: 123, macs: 4567,
              meta: { description: 'fake model for tests', license: 'Apache-2.0', 'metric.accuracy': '0.5' },
            };
          },
          delete() {
            check();
            alive = false;
            stats.deleted++;
          },
        },
      };
    },
    // The pthread bundle's entry point; the fake runs everything on one thread and records the
    // count it was asked for.
    createClassifierWithThreads(modelBytes, threads) {
      stats.threads.push(threads);
      return this.createClassifier(modelBytes);
    },
  };
}

// SPDX-License-Identifier: Apache-2.0
// Test-only core for tests/hostile/browser_robustness.test.mjs, served at /core/trap_core.js:
// the real wasm core (web/core/anomalens_core.js) with one change. classifyEncoded() on bytes
// starting with "TRAP-CORE" makes the real wasm module trap (free() of a pointer near 4 GiB: the
// allocator reads that chunk's header far outside the heap, a genuine WebAssembly.RuntimeError
// "memory access out of bounds" from inside the module), exactly what a bug in the core would do. Counts module instances in globalThis.__anomalensCoreInstances.
import createRealCore from '/core/anomalens_core.js';

const kMagic = Array.from('TRAP-CORE', (c) => c.charCodeAt(0));

function isTrapRequest(bytes) {
  return bytes instanceof Uint8Array && bytes.length >= kMagic.length && kMagic.every((c, i) => bytes[i] === c);
}

function trapInside(core) {
  if (typeof core._free !== 'function') throw new Error('trap_core: the core exports no _free to trap through');
  core._free(0xfffffff0);
  throw new Error('trap_core: free() of an out-of-heap pointer did not trap');
}

export default async function createTrapCore(args) {
  const core = await createRealCore(args);
  globalThis.__anomalensCoreInstances = (globalThis.__anomalensCoreInstances ?? 0) + 1;
  const realCreate = core.createClassifier.bind(core);
  core.createClassifier = (modelBytes) => {
    const created = realCreate(modelBytes);
    if (!created || created.ok !== true) return created;
    const real = created.classifier;
    const wrapped = new Proxy(real, {
      get(target, prop) {
        if (prop === 'classifyEncoded') {
          return (bytes) => (isTrapRequest(bytes) ? trapInside(core) : target.classifyEncoded(bytes));
        }
        const value = target[prop];
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    return { ok: true, classifier: wrapped };
  };
  return core;
}

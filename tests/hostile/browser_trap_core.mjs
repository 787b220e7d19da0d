// SPDX-License-Identifier: Apache-2.0
// Test-only core for tests/hostile/browser_robustness.test.mjs, served at /core/trap_core.js:
// the real wasm core (web/core/anomalens_core.js) with one change. classifyEncoded() on bytes
// starting with "TRAP-CORE" makes the real wasm module trap (an indirect call through a table
// index far out of bounds: a genuine WebAssembly.RuntimeError from inside the module), exactly
// what a bug in the core would do. Counts module instances in globalThis.__anomalensCoreInstances.
import createRealCore from '/core/anomalens_core.js';

const kMagic = Array.from('TRAP-CORE', (c) => c.charCodeAt(0));

function isTrapRequest(bytes) {
  return bytes instanceof Uint8Array && bytes.length >= kMagic.length && kMagic.every((c, i) => bytes[i] === c);
}

function trapInside(core) {
  const call = core.dynCall_viijii ?? core.dynCall_iiiiij;
  if (typeof call !== 'function') throw new Error('trap_core: the core exports no dynCall_* to trap through');
  call(0x7ffffff0, 0, 0, 0, 0, 0, 0);
  throw new Error('trap_core: the out-of-bounds indirect call did not trap');
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

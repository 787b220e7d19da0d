// SPDX-License-Identifier: Apache-2.0
// Test-only worker for tests/hostile/browser_robustness.test.mjs, served at
// /hostile/fault_worker.js: the real web/worker.js, plus a crash on demand. A classify request
// whose bytes start with "CRASH-WORKER" throws out of the worker's message handler (an uncaught
// error, as a bug in the worker script would give) before web/worker.js sees it, so the page's
// Worker object gets an 'error' event and the library must fail the pending calls.
import { held, restore } from '/hostile/fault_patch.js';
import '/worker.js';

restore();
const kMagic = Array.from('CRASH-WORKER', (c) => c.charCodeAt(0));

function isCrashRequest(msg) {
  if (!msg || msg.type !== 'classify' || msg.kind !== 'bytes' || !(msg.bytes instanceof ArrayBuffer)) return false;
  const b = new Uint8Array(msg.bytes);
  return b.length >= kMagic.length && kMagic.every((c, i) => b[i] === c);
}

if (held.length !== 1) throw new Error(`fault_worker: expected web/worker.js to add one message listener, got ${held.length}`);
self.addEventListener('message', (event) => {
  if (isCrashRequest(event.data)) {
    throw new Error('simulated worker crash (tests/hostile/browser_fault_worker.mjs)');
  }
  held[0](event);
});

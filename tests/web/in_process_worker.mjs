// SPDX-License-Identifier: Apache-2.0
// A stand-in for the browser's Worker for node tests: runs web/worker.js's handler in-process.
// Messages are structured-cloned with their transfer lists and answered asynchronously, as a
// real worker would.

import assert from 'node:assert/strict';

export class InProcessWorker extends EventTarget {
  constructor(url, options) {
    super();
    assert.equal(options?.type, 'module', 'the worker must be a module worker');
    this.terminated = false;
    this.url = String(url);
    // As worker.js does: a fragment names the core to preload.
    this._ready = import(url).then((m) => m.createWorkerHandler({ preload: m.preloadFromUrl(this.url) }));
    this._chain = Promise.resolve();
    InProcessWorker.instances.push(this);
  }

  postMessage(msg, transfer = []) {
    if (this.terminated) return;
    const cloned = structuredClone(msg, { transfer });
    this._chain = this._chain.then(async () => {
      const handle = await this._ready;
      const reply = await handle(cloned);
      if (this.terminated) return;
      const event = new Event('message');
      event.data = structuredClone({ id: cloned.id, ...reply });
      this.dispatchEvent(event);
    });
  }

  terminate() {
    this.terminated = true;
  }
}
InProcessWorker.instances = [];

// Runs fn with InProcessWorker standing in for the global Worker, then puts the old one back.
export async function withInProcessWorker(fn) {
  const saved = globalThis.Worker;
  globalThis.Worker = InProcessWorker;
  try {
    return await fn();
  } finally {
    globalThis.Worker = saved;
  }
}

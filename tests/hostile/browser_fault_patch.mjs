// SPDX-License-Identifier: Apache-2.0
// Test-only, imported first by browser_fault_worker.mjs (served at /hostile/fault_patch.js):
// holds back the 'message' listener web/worker.js registers, so the fault worker decides, per
// message, whether the real handler sees it at all.
export const held = [];
const realAdd = self.addEventListener.bind(self);
self.addEventListener = (type, listener, options) => {
  if (type === 'message') held.push(listener);
  else realAdd(type, listener, options);
};
export function restore() {
  self.addEventListener = realAdd;
}

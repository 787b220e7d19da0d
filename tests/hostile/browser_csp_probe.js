// SPDX-License-Identifier: Apache-2.0
// Test-only same-origin script for tests/hostile/browser_robustness.test.mjs, served at
// /hostile/csp_probe.js: tries eval and new Function from a page script (code evaluated by the
// test driver itself is exempt from CSP, so the attempt has to come from the page's own script)
// and records what happened on <body data-eval data-function>.
function attempt(fn) {
  try {
    return `ran: ${fn()}`;
  } catch (err) {
    return err.name;
  }
}
document.body.dataset.eval = attempt(() => eval('1 + 1'));
document.body.dataset.function = attempt(() => new Function('return 2')());

// SPDX-License-Identifier: Apache-2.0
// scripts/serve.mjs: roots, MIME types, security headers, path traversal, closing.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { start } from '../../scripts/serve.mjs';

let srv;
let modelsRoot;

before(async () => {
  modelsRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'anomalens-serve-'));
  fs.writeFileSync(path.join(modelsRoot, 'm.alm'), 'ALM1');
  fs.writeFileSync(path.join(modelsRoot, '..', `${path.basename(modelsRoot)}-private.txt`), 'TOPSECRET');
  srv = await start({ port: 0, modelsRoot });
});

after(async () => {
  await srv.close();
  fs.rmSync(modelsRoot, { recursive: true, force: true });
  fs.rmSync(path.join(modelsRoot, '..', `${path.basename(modelsRoot)}-private.txt`), { force: true });
});

// Raw GET without URL normalisation (fetch would resolve "..").
function get(urlPath, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, path: urlPath, method }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('serves web/ at / with strict security headers', async () => {
  assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const r = await get('/');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/html/);
  assert.match(r.body, /<title>Anomalens/);
  const csp = r.headers['content-security-policy'];
  assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'/);
  assert.match(csp, /worker-src 'self'/);
  assert.doesNotMatch(csp, /'unsafe-eval'|'unsafe-inline'/);
  assert.equal(r.headers['cross-origin-opener-policy'], 'same-origin');
  assert.equal(r.headers['cross-origin-embedder-policy'], 'require-corp');
  assert.match((await get('/app.js')).headers['content-type'], /^text\/javascript/);
  assert.match((await get('/app.css')).headers['content-type'], /^text\/css/);
  assert.match((await get('/examples/embed.html')).body, /embedding example/);
  assert.equal((await get('/examples')).status, 301);
});

test('serves models/ at /models/, wasm as application/wasm', async () => {
  const m = await get('/models/m.alm');
  assert.equal(m.status, 200);
  assert.equal(m.body, 'ALM1');
  assert.equal(m.headers['content-type'], 'application/octet-stream');
  assert.ok(m.headers['content-security-policy']);
  if (fs.existsSync(new URL('../../web/core/anomalens_core.wasm', import.meta.url))) {
    assert.equal((await get('/core/anomalens_core.wasm')).headers['content-type'], 'application/wasm');
  }
  const head = await get('/models/m.alm', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], '4');
  assert.equal(head.body, '');
});

test('never serves outside the roots; 404 and 405 are plain', async () => {
  for (const p of ['/../package.json', '/models/../../package.json', '/%2e%2e/package.json',
    `/models/..%2f${path.basename(modelsRoot)}-private.txt`, '/models/%2e%2e/package.json', '/%00']) {
    // ".." either fails or stays inside the root ("/../package.json" is web/package.json).
    const r = await get(p);
    assert.ok([200, 400, 404].includes(r.status), `${p}: status ${r.status}`);
    assert.doesNotMatch(r.body, /anomalens-dev|TOPSECRET/, `${p} escaped the root`);
  }
  assert.equal((await get('/nope.js')).status, 404);
  assert.equal((await get('/', 'POST')).status, 405);
  assert.ok(srv.requests.length > 5);
});

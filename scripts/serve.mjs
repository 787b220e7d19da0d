// SPDX-License-Identifier: Apache-2.0
// Dependency-free static server for the Anomalens web app.
//
//   node scripts/serve.mjs              # http://127.0.0.1:8080/ (PORT overrides)
//   import { start } from './serve.mjs';
//   const srv = await start({ port: 0 }); srv.url; await srv.close();
//
// Serves web/ at / and the repository's models/ at /models/. Every response carries a strict
// Content-Security-Policy (no eval, no inline script or style; wasm compilation allowed) and
// the COOP/COEP pair, so the page is cross-origin isolated and the worker runs the pthread build
// (core/anomalens_core_mt.*) with one thread per core.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const kMimeTypes = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.alm': 'application/octet-stream',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.tga': 'application/octet-stream',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

export const kContentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "media-src 'self' blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'self'",
].join('; ');

// isolate: the COOP/COEP pair that makes the page cross-origin isolated (SharedArrayBuffer).
function securityHeaders(isolate = true) {
  const headers = {
    'Content-Security-Policy': kContentSecurityPolicy,
    'Cross-Origin-Resource-Policy': 'same-origin',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  };
  if (isolate) {
    headers['Cross-Origin-Opener-Policy'] = 'same-origin';
    headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
  }
  return headers;
}

// Maps a URL path to a file under one of the two roots, or null if it escapes them.
function resolvePath(urlPath, roots) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  let root = roots.web;
  let rel = decoded;
  if (decoded === '/models' || decoded.startsWith('/models/')) {
    root = roots.models;
    rel = decoded.slice('/models'.length);
  }
  const full = path.resolve(root, '.' + path.posix.normalize('/' + rel));
  if (full !== root && !full.startsWith(root + path.sep)) return null;
  return full;
}

function send(res, status, body, headers = {}, isolate = true) {
  res.writeHead(status, { ...securityHeaders(isolate), 'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-store', ...headers });
  res.end(body);
}

/**
 * Starts the server. Options: port (0 = any free port; default PORT env or 8080), host
 * (default 127.0.0.1), webRoot, modelsRoot, overrides ({'/url/path': '/file/path'}), log (function
 * receiving one line per request), isolate (default true; false leaves out COOP/COEP, as a host
 * that cannot set them would: the app then runs single-threaded).
 * Resolves to { url, port, server, requests, close() }; requests records every path asked for.
 */
export function start(options = {}) {
  const port = options.port ?? Number(process.env.PORT ?? 8080);
  const host = options.host ?? '127.0.0.1';
  const roots = {
    web: path.resolve(options.webRoot ?? path.join(repoRoot, 'web')),
    models: path.resolve(options.modelsRoot ?? path.join(repoRoot, 'models')),
  };
  const log = options.log ?? (() => {});
  const isolate = options.isolate ?? true;
  // Exact URL path -> file, checked first (tests use it to stand in a fake core).
  const overrides = options.overrides ?? {};
  const requests = [];

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    requests.push({ method: req.method, path: url.pathname, host: req.headers.host });
    log(`${req.method} ${url.pathname}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' }, isolate);
      return;
    }
    let file = overrides[url.pathname] ?? resolvePath(url.pathname, roots);
    if (!file) {
      send(res, 400, 'bad path\n', {}, isolate);
      return;
    }
    fs.stat(file, (err, st) => {
      if (!err && st.isDirectory()) {
        if (!url.pathname.endsWith('/')) {
          send(res, 301, '', { Location: url.pathname + '/' + url.search }, isolate);
          return;
        }
        file = path.join(file, 'index.html');
        st = fs.existsSync(file) ? fs.statSync(file) : null;
        err = st ? null : new Error('no index');
      }
      if (err || !st || !st.isFile()) {
        send(res, 404, `not found: ${url.pathname}\n`, {}, isolate);
        return;
      }
      const type = kMimeTypes[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
      res.writeHead(200, {
        ...securityHeaders(isolate),
        'Content-Type': type,
        'Content-Length': st.size,
        // Always revalidate: the service worker handles offline use, the server stays simple.
        'Cache-Control': 'no-cache',
      });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      const stream = fs.createReadStream(file);
      stream.on('error', () => res.destroy());
      stream.pipe(res);
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const actual = server.address().port;
      resolve({
        url: `http://${host}:${actual}`,
        port: actual,
        server,
        requests,
        close: () => new Promise((done) => {
          server.close(() => done());
          server.closeAllConnections();
        }),
      });
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  start({ log: (line) => console.log(line) }).then(
    (srv) => console.log(`Anomalens web app: ${srv.url}/  (Ctrl+C to stop)`),
    (err) => {
      console.error(`serve.mjs: cannot listen: ${err.message}`);
      process.exit(1);
    });
}

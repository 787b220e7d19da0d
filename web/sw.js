// SPDX-License-Identifier: Apache-2.0
// Service worker: after one visit the app, the wasm core and the default model work offline.
// Same-origin GETs are answered network-first (so updates show up at once) and fall back to the
// cache; every successful same-origin response is stored. Other origins are never touched.

const kCache = 'anomalens-v1';
const kPrecache = [
  './',
  'index.html',
  'app.js',
  'app.css',
  'anomalens.js',
  'anomalens-element.js',
  'worker.js',
  'icon.svg',
  'manifest.webmanifest',
  'core/anomalens_core.js',
  'core/anomalens_core.wasm',
  // The pthread build, which cross-origin isolated pages run (without it they fall back to one
  // thread offline). The non-SIMD build is left out: browsers without SIMD are rare, and it is
  // cached by the fetch handler below once such a browser has used it online.
  'core/anomalens_core_mt.js',
  'core/anomalens_core_mt.wasm',
  'core/anomalens_core_mt.worker.js',
  'models/default.alm',
];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(kCache);
    // One missing file (e.g. no default model yet) must not stop the rest from being cached.
    await Promise.all(kPrecache.map(async (path) => {
      try {
        const response = await fetch(new Request(path, { cache: 'no-cache' }));
        if (response.ok) await cache.put(path, response);
      } catch { /* offline during install: cached on a later visit */ }
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name !== kCache && name.startsWith('anomalens-')) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(kCache);
    try {
      const response = await fetch(request);
      if (response.ok && response.type === 'basic') cache.put(request, response.clone());
      return response;
    } catch (err) {
      const cached = await cache.match(request, { ignoreSearch: true }) ??
        (request.mode === 'navigate' ? await cache.match('index.html') : undefined);
      if (cached) return cached;
      throw err;
    }
  })());
});

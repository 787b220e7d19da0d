// SPDX-License-Identifier: Apache-2.0
// The Anomalens web app: UI only. All classification goes through the public library
// (anomalens.js); this file never touches the wasm module.

import { Anomalens, heatmapToImageData } from './anomalens.js';

const kDefaultModelUrl = new URL('models/default.alm', document.baseURI).href;
const kWatchIntervalMs = 250;  // about 4 frames per second at most
const kSceneFrames = 20;       // frames "Learn this scene" captures per press
const kSceneFrameGapMs = 100;  // between them, so the camera's noise and small motions are seen
const kRepeatRetryMs = 30;     // after a repeated frame: about the next frame of a 30 fps camera
const kMaxRepeatsPerFrame = 4; // repeats tolerated per wanted frame before the capture gives up
const kDbName = 'anomalens';
const kTaughtKey = 'taught';
const kImageExtensions = /\.(png|jpe?g|jfif|gif|bmp|dib|tga|tpic|webp|avif|heic|heif|svg|ico|pnm|ppm|pgm|psd|hdr|pic)$/i;

const $ = (id) => document.getElementById(id);

const state = {
  clf: null,
  modelName: '',
  threshold: 0.5,
  results: [],       // {id, name, path, source, thumbUrl, score, scores, error, el}
  queue: [],         // results waiting to be classified
  running: false,
  done: 0,
  batchTotal: 0,
  nextId: 1,
  snapshots: 0,
  stream: null,
  watching: false,
  watchFrames: 0,
  modelSource: null,    // what the current model was loaded from (the default base for teaching)
  oneclass: false,      // the current model is one-class (it has heatmaps)
  heatmapOn: true,
  teach: { normal: [], abnormal: [], base: null, baseName: '', fitting: false, bytes: null, name: '',
    // Keys of the camera frames taken as examples (frameKey), per kind: see captureScene.
    frameKeys: { normal: new Set(), abnormal: new Set() } },
  idleWaiters: [],      // resolved when the queue next runs empty (see whenQueueIdle)
};

// ---------------------------------------------------------------------------------------------
// Model

function formatCount(n) {
  if (!Number.isFinite(n) || n <= 0) return 'n/a';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

function renderModelCard(info) {
  const card = $('model-card');
  card.replaceChildren();
  const title = document.createElement('p');
  title.className = 'card-title';
  title.id = 'model-name';
  title.textContent = info.name || '(unnamed model)';
  card.append(title);
  const meta = info.meta ?? {};
  if (meta.description) {
    const p = document.createElement('p');
    p.className = 'card-desc';
    p.textContent = meta.description;
    card.append(p);
  }
  const dl = document.createElement('dl');
  const row = (key, value) => {
    if (value === undefined || value === null || value === '') return;
    const dt = document.createElement('dt');
    dt.textContent = key;
    const dd = document.createElement('dd');
    dd.textContent = value;
    dl.append(dt, dd);
  };
  row('Detects', meta.task);
  row('Labels', info.labels.join(', '));
  row('Input', `${info.inputWidth} x ${info.inputHeight}, ${info.channels}`);
  row('Threshold', Number(info.threshold).toFixed(3));
  // test_time_flips (docs/FORMAT.md): the core scores the mean over mirrored copies.
  const flips = (meta.test_time_flips ?? 'none').split(',');
  if (flips.length > 1) {
    const names = { none: 'as is', h: 'left-right', v: 'top-bottom', hv: 'both' };
    row('Scoring', `mean of ${flips.length} passes (mirrored: ${flips.map((f) => names[f] ?? f).join(', ')})`);
  }
  row('Architecture', meta.architecture);
  row('Parameters', formatCount(info.parameters));
  row('MACs', formatCount(info.macs));
  for (const [k, v] of Object.entries(meta)) {
    if (k.startsWith('metric.')) row(k.slice(7).replace(/_/g, ' '), v);
  }
  row('Training data', meta.training_data);
  row('License', meta.license);
  row('Created', meta.created);
  card.append(dl);
}

// "Runs on" row of the model card: which core build the worker chose (clf.runtime()).
function renderEngine(rt) {
  const dl = $('model-card').querySelector('dl');
  if (!dl) return;
  const build = { simd: 'WebAssembly SIMD', 'simd-mt': 'WebAssembly SIMD', nosimd: 'WebAssembly (no SIMD)',
    given: 'WebAssembly' }[rt.build] ?? 'WebAssembly';
  const dt = document.createElement('dt');
  dt.textContent = 'Runs on';
  const dd = document.createElement('dd');
  dd.id = 'model-engine';
  dd.textContent = `${build}, ${rt.threads} thread${rt.threads === 1 ? '' : 's'}` +
    (rt.fallback ? ' (threaded build unavailable)' : '');
  dl.append(dt, dd);
  document.body.dataset.engine = `${rt.build}/${rt.threads}`;
}

function setModelStatus(text, kind) {
  const el = $('model-status');
  el.textContent = text;
  el.dataset.kind = kind;
}

// `pending`: an Anomalens.create() already under way for `model` (see loadStartModel).
async function loadModel(model, label, origin = 'file', pending = null) {
  document.body.dataset.modelState = 'loading';
  setModelStatus(`Loading ${label}...`, 'busy');
  let clf;
  try {
    clf = await (pending ?? Anomalens.create({ model }));
  } catch (err) {
    document.body.dataset.modelState = state.clf ? 'ready' : 'error';
    const keep = state.clf ? ` Still using "${state.modelName}".` : ' Load a .alm model from disk.';
    setModelStatus(`Could not load ${label}: ${err.message}.${keep}`, 'error');
    return false;
  }
  useClassifier(clf, model, origin);
  return true;
}

// Switches the app to a loaded classifier (from a file, the default URL, or teaching).
function useClassifier(clf, source, origin) {
  const old = state.clf;
  state.clf = clf;
  old?.close();
  const info = clf.info();
  state.modelName = info.name;
  state.modelSource = source;
  state.oneclass = info.oneclass === true;
  renderModelCard(info);
  clf.runtime().then((rt) => { if (state.clf === clf) renderEngine(rt); }, () => {});
  setThreshold(info.threshold);
  $('threshold').disabled = false;
  $('heatmap-toggle').disabled = !state.oneclass;
  const suffix = origin === 'taught' ? ' (taught, saved in this browser)' : '';
  setModelStatus(`Model: ${info.name}${suffix}`, 'ok');
  document.body.dataset.modelState = 'ready';
  document.body.dataset.model = info.name;
  document.body.dataset.modelOrigin = origin;
  document.body.dataset.oneclass = String(state.oneclass);
  $('teach-forget-btn').hidden = origin !== 'taught';
  updateTeachBase();
  // Results from the previous model are re-classified with the new one.
  if (old) {
    for (const r of state.results) {
      if (r.source) enqueue(r);
    }
  }
  pump();
}

// ---------------------------------------------------------------------------------------------
// Results

function verdictOf(r) {
  if (r.error) return 'error';
  if (r.score === null) return 'pending';
  return r.score >= state.threshold ? 'abnormal' : 'normal';
}

function updateResultEl(r) {
  const el = r.el;
  const verdict = verdictOf(r);
  el.dataset.verdict = verdict;
  el.dataset.score = r.score === null ? '' : String(r.score);
  const badge = el.querySelector('.badge');
  const detail = el.querySelector('.detail');
  const meter = el.querySelector('.meter > span');
  badge.className = `badge badge-${verdict}`;
  if (verdict === 'pending') {
    badge.textContent = 'Waiting';
    detail.textContent = '';
  } else if (verdict === 'error') {
    badge.textContent = '\u2715 Error';
    detail.textContent = r.error.code === 'decode_failed'
      ? `Could not decode ${r.name}: ${r.error.message}` : `${r.name}: ${r.error.message}`;
  } else {
    badge.textContent = verdict === 'abnormal' ? '\u26A0 Abnormal' : '\u2713 Normal';
    // The model's confidence is P(abnormal) itself; the threshold is the user's choice.
    detail.textContent = `P(abnormal) ${(r.score * 100).toFixed(1)}%`;
    detail.title = `score ${r.score.toFixed(4)}, threshold ${state.threshold.toFixed(3)}`;
  }
  meter.parentElement.hidden = verdict === 'pending' || verdict === 'error';
  if (r.score !== null) meter.style.width = `${(r.score * 100).toFixed(1)}%`;
  el.setAttribute('aria-label', `${r.name}: ${badge.textContent}${detail.textContent ? `, ${detail.textContent}` : ''}`);
}

// Draws (or removes) the result's heatmap over its thumbnail.
function drawResultHeatmap(r) {
  const thumb = r.el?.querySelector('.thumb');
  if (!thumb) return;
  thumb.querySelector('canvas.heatmap')?.remove();
  if (!r.heatmap) return;
  const canvas = document.createElement('canvas');
  canvas.className = 'heatmap';
  canvas.width = r.heatmap.width;
  canvas.height = r.heatmap.height;
  canvas.setAttribute('aria-hidden', 'true');
  canvas.getContext('2d').putImageData(heatmapToImageData(r.heatmap), 0, 0);
  thumb.append(canvas);
}

function createResultEl(r) {
  const li = document.createElement('li');
  li.className = 'result';
  li.dataset.file = r.name;
  li.dataset.path = r.path;
  li.tabIndex = 0;
  const thumb = document.createElement('div');
  thumb.className = 'thumb';
  if (r.thumbUrl) {
    const img = document.createElement('img');
    img.alt = '';
    img.loading = 'lazy';
    img.decoding = 'async';
    img.src = r.thumbUrl;
    img.addEventListener('error', () => {
      img.remove();
      thumb.classList.add('no-preview');
      thumb.textContent = 'no preview';
    }, { once: true });
    thumb.append(img);
  }
  const body = document.createElement('div');
  body.className = 'result-body';
  const name = document.createElement('p');
  name.className = 'name';
  name.textContent = r.name;
  name.title = r.path;
  const badge = document.createElement('span');
  const meter = document.createElement('div');
  meter.className = 'meter';
  meter.setAttribute('aria-hidden', 'true');
  meter.append(document.createElement('span'));
  const detail = document.createElement('p');
  detail.className = 'detail';
  body.append(name, badge, meter, detail);
  badge.className = 'badge';
  li.append(thumb, body);
  r.el = li;
  updateResultEl(r);
  return li;
}

// Counting walks every result: coalesce to once per frame during big batches.
let countsFrame = 0;
function scheduleCounts() {
  if (!countsFrame) {
    countsFrame = requestAnimationFrame(() => {
      countsFrame = 0;
      updateCounts();
    });
  }
}

function updateCounts() {
  const counts = { normal: 0, abnormal: 0, error: 0 };
  for (const r of state.results) {
    const v = verdictOf(r);
    if (v in counts) counts[v]++;
  }
  $('count-normal').textContent = counts.normal;
  $('count-abnormal').textContent = counts.abnormal;
  $('count-error').textContent = counts.error;
  $('count-total').textContent = state.results.length;
  const any = state.results.length > 0;
  $('empty').hidden = any;
  $('export-btn').disabled = !any;
  $('clear-btn').disabled = !any;
}

function setThreshold(t) {
  state.threshold = t;
  $('threshold').value = String(t);
  $('gallery').style.setProperty('--threshold', `${(t * 100).toFixed(2)}%`);
  // The slider moves in steps of 0.01; a model's own threshold may be finer.
  $('threshold-value').textContent = Math.abs(t * 100 - Math.round(t * 100)) < 1e-6 ? t.toFixed(2) : t.toFixed(3);
  relabelAll();
}

function relabelAll() {
  for (const r of state.results) {
    if (r.el && r.score !== null) updateResultEl(r);
  }
  updateCounts();
  if (state.lastFrame) showFrameVerdict(state.lastFrame);
}

// Adds files to the gallery (placeholders) and the classification queue.
function addSources(items) {
  if (items.length === 0) return;
  const fragment = document.createDocumentFragment();
  for (const { source, name, path, thumbUrl } of items) {
    const r = {
      id: state.nextId++, name, path: path ?? name, source,
      thumbUrl: thumbUrl ?? URL.createObjectURL(source),
      score: null, scores: null, error: null, el: null,
    };
    state.results.push(r);
    fragment.append(createResultEl(r));
    enqueue(r);
  }
  $('gallery').prepend(fragment);
  updateCounts();
  pump();
}

function enqueue(r) {
  if (!state.queue.includes(r)) {
    state.queue.push(r);
    state.batchTotal++;
  }
}

function showProgress() {
  const wrap = $('progress-wrap');
  if (state.batchTotal === 0) {
    wrap.hidden = true;
    return;
  }
  wrap.hidden = false;
  $('progress').max = state.batchTotal;
  $('progress').value = state.done;
  $('progress-text').textContent = !state.clf
    ? `Waiting for a model (${state.queue.length} queued)...`
    : state.done >= state.batchTotal
    ? `Classified ${state.done} image${state.done === 1 ? '' : 's'}.`
    : `Classifying ${state.done + 1} of ${state.batchTotal}...`;
}

// Classifies queued results one at a time; the worker keeps the page responsive, and DOM
// updates happen per result.
async function pump() {
  if (state.running || !state.clf) {
    showProgress();
    return;
  }
  state.running = true;
  document.body.dataset.busy = 'true';
  try {
    while (state.queue.length && state.clf) {
      showProgress();
      const r = state.queue.shift();
      if (!state.results.includes(r)) {
        state.done++;
        continue;
      }
      try {
        const result = await state.clf.classify(r.source, { heatmap: state.oneclass });
        r.heatmap = result.heatmap ?? null;
        r.score = result.score;
        r.scores = result.scores;
        r.elapsedMs = result.elapsedMs;
        r.error = null;
      } catch (err) {
        r.score = null;
        r.heatmap = null;
        r.error = { code: err.code ?? 'internal', message: err.message };
      }
      state.done++;
      updateResultEl(r);
      drawResultHeatmap(r);
      scheduleCounts();
    }
  } finally {
    state.running = false;
    updateCounts();
    showProgress();
    if (!state.queue.length) {
      state.done = 0;
      state.batchTotal = 0;
      delete document.body.dataset.busy;
      for (const resolve of state.idleWaiters.splice(0)) resolve();
    }
  }
}

// Resolves once nothing is queued or being classified.
function whenQueueIdle() {
  if (!state.running && !state.queue.length) return Promise.resolve();
  return new Promise((resolve) => state.idleWaiters.push(resolve));
}

function csvField(v) {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function exportCsv() {
  const lines = [['file', 'path', 'verdict', 'score', 'threshold', 'model', 'error'].join(',')];
  for (const r of state.results) {
    const v = verdictOf(r);
    lines.push([r.name, r.path, v, r.score === null ? '' : r.score.toFixed(6), state.threshold.toFixed(2),
      state.modelName, r.error ? `${r.error.code}: ${r.error.message}` : ''].map(csvField).join(','));
  }
  const blob = new Blob([lines.join('\r\n') + '\r\n'], { type: 'text/csv' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `anomalens-results-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function clearResults() {
  for (const r of state.results) {
    if (r.thumbUrl?.startsWith('blob:')) URL.revokeObjectURL(r.thumbUrl);
  }
  state.results = [];
  state.queue = [];
  $('gallery').replaceChildren();
  updateCounts();
}

// ---------------------------------------------------------------------------------------------
// Input: drop (files and folders), pickers, paste

function looksLikeImage(file) {
  return file.type.startsWith('image/') || kImageExtensions.test(file.name);
}

function fromFiles(files) {
  return Array.from(files, (f) => ({ source: f, name: f.name, path: f.webkitRelativePath || f.name }));
}

function readAllEntries(dirEntry) {
  const reader = dirEntry.createReader();
  const all = [];
  return new Promise((resolve, reject) => {
    // readEntries returns at most ~100 entries per call: repeat until it returns none.
    const next = () => reader.readEntries((batch) => {
      if (batch.length === 0) resolve(all);
      else {
        all.push(...batch);
        next();
      }
    }, reject);
    next();
  });
}

async function walkEntry(entry, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ source: file, name: file.name, path: entry.fullPath.replace(/^\//, '') });
  } else if (entry.isDirectory) {
    const children = await readAllEntries(entry);
    children.sort((a, b) => a.name.localeCompare(b.name));
    for (const child of children) await walkEntry(child, out);
  }
}

async function collectDrop(dataTransfer) {
  const items = Array.from(dataTransfer.items ?? []).filter((i) => i.kind === 'file');
  const out = [];
  const entries = items.map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  if (entries.length && entries.every(Boolean)) {
    for (const entry of entries) {
      try {
        await walkEntry(entry, out);
      } catch (err) {
        setModelStatus(`Could not read ${entry.fullPath}: ${err.message}`, 'error');
      }
    }
  } else {
    out.push(...fromFiles(dataTransfer.files));
  }
  // From folders keep images only; files dropped one by one are all tried (and fail inline).
  return out.filter((x) => x.path === x.name || looksLikeImage(x.source));
}

async function handleDrop(dataTransfer) {
  addSources(await collectDrop(dataTransfer));
}

function setupInputs() {
  const drop = $('dropzone');
  const fileInput = $('file-input');
  const folderInput = $('folder-input');
  drop.addEventListener('click', () => fileInput.click());
  drop.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      fileInput.click();
    }
  });
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
  }
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    handleDrop(e.dataTransfer);
  });
  // A drop anywhere else must not navigate away from the app.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());

  $('pick-files-btn').addEventListener('click', () => fileInput.click());
  $('pick-folder-btn').addEventListener('click', () => folderInput.click());
  fileInput.addEventListener('change', () => {
    addSources(fromFiles(fileInput.files));
    fileInput.value = '';
  });
  folderInput.addEventListener('change', () => {
    const files = Array.from(folderInput.files).filter(looksLikeImage)
      .sort((a, b) => a.webkitRelativePath.localeCompare(b.webkitRelativePath));
    addSources(fromFiles(files));
    folderInput.value = '';
  });
  document.addEventListener('paste', (e) => {
    const files = Array.from(e.clipboardData?.files ?? []);
    if (files.length === 0) return;
    e.preventDefault();
    addSources(files.map((f, i) => {
      const name = f.name && f.name !== 'image.png' ? f.name : `pasted-${Date.now()}-${i + 1}.png`;
      return { source: f, name, path: name };
    }));
  });

  $('threshold').addEventListener('input', (e) => setThreshold(Number(e.target.value)));
  $('filter').addEventListener('change', (e) => {
    $('gallery').dataset.filter = e.target.value;
  });
  $('export-btn').addEventListener('click', exportCsv);
  $('clear-btn').addEventListener('click', clearResults);

  const modelInput = $('model-input');
  $('load-model-btn').addEventListener('click', () => modelInput.click());
  modelInput.addEventListener('change', async () => {
    const file = modelInput.files[0];
    modelInput.value = '';
    if (file) await loadModel(file, `"${file.name}"`);
  });
  $('heatmap-toggle').addEventListener('change', (e) => setHeatmapOn(e.target.checked));
}

function setHeatmapOn(on) {
  state.heatmapOn = on;
  $('gallery').dataset.heatmap = on ? 'on' : 'off';
  if (!on) $('cam-heatmap').hidden = true;
}

// ---------------------------------------------------------------------------------------------
// Camera

function camMessage(text, kind = 'info') {
  const el = $('cam-message');
  el.textContent = text;
  el.dataset.kind = kind;
}

function setCamButtons(on) {
  $('camera').dataset.state = on ? 'on' : 'off';
  $('cam-start-btn').disabled = on;
  $('cam-snap-btn').disabled = !on;
  $('cam-watch-btn').disabled = !on;
  $('cam-stop-btn').disabled = !on;
  $('teach-cam-btn').disabled = !on;
  $('teach-cam-abnormal-btn').disabled = !on;
}

function explainCameraError(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera permission was denied. Allow camera access for this site in the browser settings, then press Start camera again.';
    case 'NotFoundError':
    case 'OverconstrainedError':
    case 'DevicesNotFoundError':
      return 'No camera was found. Connect a camera and press Start camera again.';
    case 'NotReadableError':
    case 'TrackStartError':
      return 'The camera is busy or unavailable (another application may be using it).';
    default:
      return `The camera could not start: ${err?.message ?? err}`;
  }
}

async function startCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    camMessage('This browser offers no camera access here (a camera needs https or localhost).', 'error');
    return;
  }
  camMessage('Starting camera...');
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    state.stream = stream;
    const video = $('video');
    video.srcObject = stream;
    await video.play();
    setCamButtons(true);
    camMessage(`Camera on (${video.videoWidth} x ${video.videoHeight}).`, 'ok');
  } catch (err) {
    camMessage(explainCameraError(err), 'error');
    stopCamera(false);
  }
}

function stopCamera(resetMessage = true) {
  stopWatch();
  state.stream?.getTracks().forEach((t) => t.stop());
  state.stream = null;
  $('video').srcObject = null;
  setCamButtons(false);
  const overlay = $('overlay');
  overlay.dataset.verdict = 'none';
  overlay.textContent = '';
  $('cam-heatmap').hidden = true;
  state.lastFrame = null;
  if (resetMessage) camMessage('Camera is off.');
}

async function snapshot() {
  const video = $('video');
  if (video.readyState < 2) {
    camMessage('The camera has no frame yet; try again in a moment.', 'error');
    return;
  }
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
  state.snapshots++;
  const name = `snapshot-${state.snapshots}.png`;
  const file = new File([blob], name, { type: 'image/png' });
  addSources([{ source: file, name, path: name }]);
}

function showFrameVerdict(frame) {
  const overlay = $('overlay');
  const verdict = frame.score >= state.threshold ? 'abnormal' : 'normal';
  overlay.dataset.verdict = verdict;
  overlay.dataset.score = String(frame.score);
  overlay.dataset.frames = String(state.watchFrames);
  overlay.textContent = `${verdict === 'abnormal' ? '\u26A0 ABNORMAL' : '\u2713 NORMAL'}  ` +
    `P(abnormal) ${(frame.score * 100).toFixed(1)}%`;
  const alert = $('cam-alert');
  if (verdict === 'abnormal' && state.watching) {
    alert.hidden = false;
    alert.textContent = `Abnormal frame at ${new Date().toLocaleTimeString()} ` +
      `(P(abnormal) ${(frame.score * 100).toFixed(1)}%).`;
  } else if (verdict === 'normal') {
    alert.hidden = true;
  }
}

function drawCameraHeatmap(heatmap) {
  const canvas = $('cam-heatmap');
  if (!heatmap) {
    canvas.hidden = true;
    return;
  }
  if (canvas.width !== heatmap.width || canvas.height !== heatmap.height) {
    canvas.width = heatmap.width;
    canvas.height = heatmap.height;
  }
  canvas.getContext('2d').putImageData(heatmapToImageData(heatmap), 0, 0);
  canvas.dataset.frames = String(state.watchFrames);
  canvas.hidden = false;
}

async function watchLoop() {
  const video = $('video');
  while (state.watching && state.clf) {
    const t0 = performance.now();
    try {
      if (video.readyState >= 2) {
        const wantHeatmap = state.oneclass && state.heatmapOn;
        const result = await state.clf.classify(video, { heatmap: wantHeatmap });
        if (!state.watching) break;
        state.watchFrames++;
        state.lastFrame = result;
        showFrameVerdict(result);
        drawCameraHeatmap(wantHeatmap && state.heatmapOn ? result.heatmap : null);
      }
    } catch (err) {
      camMessage(`Frame not classified: ${err.message}`, 'error');
    }
    const wait = kWatchIntervalMs - (performance.now() - t0);
    await new Promise((r) => setTimeout(r, Math.max(20, wait)));
  }
}

function startWatch() {
  if (state.watching) return;
  state.watching = true;
  $('cam-watch-btn').setAttribute('aria-pressed', 'true');
  $('cam-watch-btn').textContent = 'Stop watching';
  $('camera').classList.add('watching');
  watchLoop();
}

function stopWatch() {
  state.watching = false;
  $('cam-watch-btn').setAttribute('aria-pressed', 'false');
  $('cam-watch-btn').textContent = 'Watch';
  $('camera').classList.remove('watching');
  $('cam-alert').hidden = true;
}

function setupCamera() {
  $('cam-start-btn').addEventListener('click', startCamera);
  $('cam-stop-btn').addEventListener('click', () => stopCamera());
  $('cam-snap-btn').addEventListener('click', snapshot);
  $('cam-watch-btn').addEventListener('click', () => (state.watching ? stopWatch() : startWatch()));
}

// ---------------------------------------------------------------------------------------------
// Teach: one-class fitting from normal examples (Anomalens.fit, in a worker)

function teachStatus(text, kind) {
  $('teach-status').textContent = text;
  if (kind) $('teach').dataset.state = kind;
}

function updateTeachCounts() {
  const { normal, abnormal, fitting } = state.teach;
  $('teach-normal-count').textContent = normal.length;
  $('teach-abnormal-count').textContent = abnormal.length;
  $('teach').dataset.normal = String(normal.length);
  $('teach').dataset.abnormal = String(abnormal.length);
  $('teach-fit-btn').disabled = fitting || normal.length < 2;
  $('teach-clear-btn').disabled = fitting || normal.length + abnormal.length === 0;
  if (!fitting && $('teach').dataset.state !== 'done' && $('teach').dataset.state !== 'error') {
    teachStatus(normal.length < 2 ? 'Add at least 2 normal examples (20 or more work better).'
      : `Ready to fit on ${normal.length} normal and ${abnormal.length} abnormal example(s).`);
  }
}

function updateTeachBase() {
  const t = state.teach;
  $('teach-base').textContent = t.base ? `Base: "${t.baseName}" (chosen).`
    : state.modelName ? `Base: the current model, "${state.modelName}".` : 'Base: the current model.';
}

function addTeachExamples(kind, items) {
  if (items.length === 0) return;
  state.teach[kind].push(...items);
  if ($('teach').dataset.state !== 'fitting') $('teach').dataset.state = 'idle';
  updateTeachCounts();
}

function grabFrame(video) {
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(video, 0, 0);
  return ctx.getImageData(0, 0, canvas.width, canvas.height);
}

// FNV-1a over the pixels: equal for exact repeats of a frame (different frames colliding is
// harmless: one is skipped).
function frameKey(image) {
  const words = new Uint32Array(image.data.buffer, image.data.byteOffset, image.data.byteLength >> 2);
  let h = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i], 0x01000193);
  return `${image.width}x${image.height}:${h >>> 0}`;
}

// Captures `count` frames from the live camera as teaching examples. A frame that exactly
// repeats one already taken (a frozen camera, a looping video source) is skipped: repeats also
// land among the held-out frames, whose distances are then zero, and the threshold comes out
// far too tight (a CI run fitted on a looping fake camera flagged 9 of 12 live frames).
async function captureScene(kind, count) {
  const video = $('video');
  if (video.readyState < 2) {
    camMessage('The camera has no frame yet; try again in a moment.', 'error');
    return;
  }
  const buttons = [$('teach-cam-btn'), $('teach-cam-abnormal-btn')];
  buttons.forEach((b) => { b.disabled = true; });
  const keys = state.teach.frameKeys[kind];
  let taken = 0;
  let repeats = 0;
  let wait = 0;  // ms before the next grab: a full gap after a frame taken, less after a repeat
  try {
    while (taken < count && repeats < kMaxRepeatsPerFrame * count) {
      if (wait) await new Promise((r) => setTimeout(r, wait));
      if (video.readyState < 2) break;
      const image = grabFrame(video);
      const key = frameKey(image);
      if (keys.has(key)) {
        repeats++;
        wait = kRepeatRetryMs;
        continue;
      }
      wait = kSceneFrameGapMs;
      keys.add(key);
      taken++;
      const n = state.teach[kind].length + 1;
      addTeachExamples(kind, [{ source: image, name: `camera-${kind}-${n}` }]);
    }
    $('teach').dataset.repeats = String(repeats);
    if (repeats >= kMaxRepeatsPerFrame * count) {
      camMessage(`The camera's picture is not changing: ${taken} new frame(s) of ${count} taken, ` +
        `${repeats} exact repeat(s) skipped. Teaching needs varied frames of the scene.`, 'error');
    } else if (repeats) {
      camMessage(`Took ${taken} frame(s); skipped ${repeats} exact repeat(s) of earlier ones.`);
    }
  } finally {
    const on = Boolean(state.stream);
    buttons.forEach((b) => { b.disabled = !on; });
  }
}

function describeFit(summary, fpr) {
  const parts = [`Fitted on ${summary.fitImages} normal image(s), ${summary.holdoutImages} held out for the threshold`];
  if (summary.abnormalImages) parts.push(`${summary.abnormalImages} abnormal example(s)`);
  let text = `${parts.join(', ')}. Threshold: distance ${summary.threshold.toPrecision(4)}, chosen `;
  text += summary.refinedByF1 ? `by the best F1 on the examples (F1 ${summary.f1.toFixed(3)}).`
    : `for ${(fpr * 100).toFixed(1)}% false alarms on held-out normal images ` +
      (summary.thresholdExtrapolated
        ? `(extrapolated from ${summary.holdoutImages}: too few to measure ${(fpr * 100).toFixed(1)}% directly; ` +
          `measured on them: ${(summary.holdoutFpr * 100).toFixed(1)}%).`
        : `(measured: ${(summary.holdoutFpr * 100).toFixed(1)}%).`);
  if (summary.skipped?.length) {
    text += ` Skipped ${summary.skipped.length} unreadable image(s), e.g. ${summary.skipped[0].file ?? 'a camera frame'}: ${summary.skipped[0].message}.`;
  }
  return text;
}

async function fitTaught() {
  const t = state.teach;
  if (t.fitting || t.normal.length < 2) return;
  const fpr = Number($('teach-fpr').value) / 100;
  if (!(fpr >= 0 && fpr < 0.5)) {
    teachStatus(`The false-alarm rate must be between 0 and 50% (got ${$('teach-fpr').value}).`, 'error');
    return;
  }
  const base = t.base ?? state.modelSource;
  const baseName = t.base ? t.baseName : state.modelName;
  if (!base) {
    teachStatus('No base model yet: wait for the model to load, or choose a base .alm.', 'error');
    return;
  }
  t.fitting = true;
  updateTeachCounts();
  teachStatus('Starting...', 'fitting');
  const total = t.normal.length + t.abnormal.length;
  const wrap = $('teach-progress-wrap');
  wrap.hidden = false;
  $('teach-progress').max = total + 1;
  $('teach-progress').value = 0;
  let clf;
  try {
    clf = await Anomalens.fit({
      normal: t.normal.map((x) => x.source),
      abnormal: t.abnormal.map((x) => x.source),
      base,
      fpr,
      onProgress: ({ phase, done }) => {
        $('teach-progress').value = done;
        $('teach').dataset.progress = String(done);
        teachStatus(phase === 'finish' ? 'Estimating the model and choosing the threshold...'
          : `Learning ${phase} example ${done} of ${total}...`);
      },
    });
  } catch (err) {
    t.fitting = false;
    wrap.hidden = true;
    const msg = err.phase === 'base'
      ? `"${baseName}" cannot serve as a base for teaching: ${err.message}. Choose a base .alm: ` +
        'a classifier .alm, or a backbone made by scripts/oneclass_backbone.py.'
      : `Fitting failed: ${err.message}`;
    teachStatus(msg, 'error');
    updateTeachCounts();
    return;
  }
  $('teach-progress').value = total + 1;
  const summary = clf.fitSummary();
  const bytes = clf.modelBytes();
  const info = clf.info();
  t.bytes = bytes;
  t.name = info.name;
  $('teach').dataset.threshold = String(summary.threshold);
  let saved = '';
  try {
    await saveTaught({ name: info.name, bytes: bytes.buffer, savedAt: new Date().toISOString(), summary });
    saved = ' Saved in this browser: it loads again on your next visit.';
  } catch (err) {
    saved = ` Could not keep it in this browser (${err.message}); download it to keep it.`;
  }
  t.fitting = false;
  useClassifier(clf, bytes.buffer.slice(0), 'taught');
  teachStatus(`${describeFit(summary, fpr)}${saved} Now in use.`, 'done');
  $('teach-download-btn').hidden = false;
  wrap.hidden = true;
  updateTeachCounts();
}

function downloadTaught() {
  const t = state.teach;
  if (!t.bytes) return;
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([t.bytes], { type: 'application/octet-stream' }));
  a.download = `${(t.name || 'taught').replace(/[^\w.-]+/g, '_')}.alm`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// IndexedDB: one store, the last taught model under one key.
function openDb() {
  return new Promise((resolve, reject) => {
    if (!globalThis.indexedDB) {
      reject(new Error('this browser has no IndexedDB'));
      return;
    }
    const req = indexedDB.open(kDbName, 1);
    req.onupgradeneeded = () => req.result.createObjectStore('models');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB open failed'));
  });
}

async function dbRequest(mode, fn) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction('models', mode);
      const req = fn(tx.objectStore('models'));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  } finally {
    db.close();
  }
}

const saveTaught = (record) => dbRequest('readwrite', (store) => store.put(record, kTaughtKey));
const loadTaught = () => dbRequest('readonly', (store) => store.get(kTaughtKey));
const forgetTaught = () => dbRequest('readwrite', (store) => store.delete(kTaughtKey));

function setupTeach() {
  for (const kind of ['normal', 'abnormal']) {
    const drop = $(`teach-${kind}-drop`);
    const input = $(`teach-${kind}-input`);
    drop.addEventListener('click', () => input.click());
    drop.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        input.click();
      }
    });
    for (const type of ['dragenter', 'dragover']) {
      drop.addEventListener(type, (e) => {
        e.preventDefault();
        e.stopPropagation();
        drop.classList.add('over');
      });
    }
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', async (e) => {
      e.preventDefault();
      e.stopPropagation();
      drop.classList.remove('over');
      addTeachExamples(kind, await collectDrop(e.dataTransfer));
    });
    input.addEventListener('change', () => {
      addTeachExamples(kind, fromFiles(input.files));
      input.value = '';
    });
  }
  $('teach-cam-btn').addEventListener('click', () => captureScene('normal', kSceneFrames));
  $('teach-cam-abnormal-btn').addEventListener('click', () => captureScene('abnormal', 1));
  $('teach-clear-btn').addEventListener('click', () => {
    state.teach.normal = [];
    state.teach.abnormal = [];
    state.teach.frameKeys = { normal: new Set(), abnormal: new Set() };
    $('teach').dataset.state = 'idle';
    updateTeachCounts();
  });
  $('teach-fit-btn').addEventListener('click', fitTaught);
  $('teach-download-btn').addEventListener('click', downloadTaught);
  const baseInput = $('teach-base-input');
  $('teach-base-btn').addEventListener('click', () => baseInput.click());
  baseInput.addEventListener('change', () => {
    const file = baseInput.files[0];
    baseInput.value = '';
    if (!file) return;
    state.teach.base = file;
    state.teach.baseName = file.name;
    updateTeachBase();
  });
  $('teach-forget-btn').addEventListener('click', async () => {
    try {
      await forgetTaught();
    } catch { /* nothing stored */ }
    $('teach-download-btn').hidden = true;
    state.teach.bytes = null;
    await loadModel(kDefaultModelUrl, 'the default model', 'default');
  });
  updateTeachCounts();
  updateTeachBase();
}

// The last taught model (IndexedDB) if there is one, else the default model.
async function loadStartModel() {
  // Opening IndexedDB can take hundreds of milliseconds on a first visit; meanwhile the worker
  // starts its core: Anomalens.create takes the model as a promise, settled once we know whether
  // a taught model is saved. (A <link rel=preload> of the default model was measured too: the
  // first verdict came no sooner and DOMContentLoaded about 0.1 s later, so there is none.)
  const saved = loadTaught().then((found) => (found?.bytes ? found : null), (err) => {
    console.warn(`Saved models unavailable: ${err.message}`);
    return null;
  });
  // Most visits use the default model, so its download starts beside that lookup rather than
  // after it (wasted only when a taught model is saved). On failure the URL goes to create(),
  // which fetches it again and reports the error as for any model URL.
  const defaultModel = fetch(kDefaultModelUrl).then(
    (response) => (response.ok ? response.arrayBuffer() : kDefaultModelUrl), () => kDefaultModelUrl);
  const pending = Anomalens.create({ model: saved.then((found) => found?.bytes ?? defaultModel) });
  pending.catch(() => {});  // reported by loadModel
  const found = await saved;
  if (!found) {
    await loadModel(kDefaultModelUrl, 'the default model', 'default', pending);
    return;
  }
  state.teach.bytes = new Uint8Array(found.bytes);
  state.teach.name = found.name;
  $('teach-download-btn').hidden = false;
  if (await loadModel(found.bytes, `the taught model "${found.name}"`, 'taught', pending)) return;
  // The saved model no longer loads: the default model, from the download started above (the
  // library copies the bytes, so they stay usable as the teaching base).
  await loadModel(await defaultModel, 'the default model', 'default');
}

// ---------------------------------------------------------------------------------------------
// Offline

async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  try {
    await navigator.serviceWorker.register('sw.js', { scope: './' });
    await navigator.serviceWorker.ready;
    document.body.dataset.offlineReady = 'true';
  } catch (err) {
    console.warn(`Offline mode unavailable: ${err.message}`);
  }
}

setupInputs();
setupCamera();
setupTeach();
updateCounts();
// The service worker's install fetches the core and the model once more to cache them, and its
// registration competes for the CPU with the first verdicts (measured in docs/BENCHMARKS.md: the
// first verdict of an image dropped at page load came 0.3 s later). So it waits for the first
// model and for the images already dropped, at most kServiceWorkerDelayMs after the model.
const kServiceWorkerDelayMs = 10000;
loadStartModel().finally(() => {
  const timeout = new Promise((resolve) => setTimeout(resolve, kServiceWorkerDelayMs));
  return Promise.race([whenQueueIdle(), timeout]).then(registerServiceWorker);
});

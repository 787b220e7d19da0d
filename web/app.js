// SPDX-License-Identifier: Apache-2.0
// The Anomalens web app: UI only. All classification goes through the public library
// (anomalens.js); this file never touches the wasm module.

import { Anomalens } from './anomalens.js';

const kDefaultModelUrl = new URL('models/default.alm', document.baseURI).href;
const kWatchIntervalMs = 250;  // about 4 frames per second at most
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

function setModelStatus(text, kind) {
  const el = $('model-status');
  el.textContent = text;
  el.dataset.kind = kind;
}

async function loadModel(model, label) {
  document.body.dataset.modelState = 'loading';
  setModelStatus(`Loading ${label}...`, 'busy');
  let clf;
  try {
    clf = await Anomalens.create({ model });
  } catch (err) {
    document.body.dataset.modelState = state.clf ? 'ready' : 'error';
    const keep = state.clf ? ` Still using "${state.modelName}".` : ' Load a .alm model from disk.';
    setModelStatus(`Could not load ${label}: ${err.message}.${keep}`, 'error');
    return false;
  }
  const old = state.clf;
  state.clf = clf;
  old?.close();
  const info = clf.info();
  state.modelName = info.name;
  renderModelCard(info);
  setThreshold(info.threshold);
  $('threshold').disabled = false;
  setModelStatus(`Model: ${info.name}`, 'ok');
  document.body.dataset.modelState = 'ready';
  document.body.dataset.model = info.name;
  // Results from the previous model are re-classified with the new one.
  if (old) {
    for (const r of state.results) {
      if (r.source) enqueue(r);
    }
  }
  pump();
  return true;
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
        const result = await state.clf.classify(r.source);
        r.score = result.score;
        r.scores = result.scores;
        r.elapsedMs = result.elapsedMs;
        r.error = null;
      } catch (err) {
        r.score = null;
        r.error = { code: err.code ?? 'internal', message: err.message };
      }
      state.done++;
      updateResultEl(r);
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
    }
  }
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

async function handleDrop(dataTransfer) {
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
  addSources(out.filter((x) => x.path === x.name || looksLikeImage(x.source)));
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

async function watchLoop() {
  const video = $('video');
  while (state.watching && state.clf) {
    const t0 = performance.now();
    try {
      if (video.readyState >= 2) {
        const result = await state.clf.classify(video);
        if (!state.watching) break;
        state.watchFrames++;
        state.lastFrame = result;
        showFrameVerdict(result);
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
updateCounts();
registerServiceWorker();
loadModel(kDefaultModelUrl, 'the default model');

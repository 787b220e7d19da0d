// SPDX-License-Identifier: Apache-2.0
// <anomalens-classifier model="/models/default.alm"> : no-code embedding.
//
//   <script type="module" src="anomalens-element.js"></script>
//   <anomalens-classifier model="/models/default.alm"></anomalens-classifier>
//
// Shows a drop area and a file button, classifies what the user gives it and displays the
// verdict. Events: 'ready' (detail: model info), 'result' (detail: result + file), 'error'
// (detail: {code, message, file}). Method: classify(input) for scripted use. Attributes:
// model (required), core-url (optional). Styles use a constructed stylesheet, so a strict CSP
// without 'unsafe-inline' is fine.

import { Anomalens, AnomalensError } from './anomalens.js';

const kCss = `
:host { display: block; font: 14px/1.4 system-ui, sans-serif; color: #1d2430; max-width: 28rem; }
.box { border: 2px dashed #8a94a6; border-radius: 10px; padding: 1rem; text-align: center;
  background: #f7f9fc; }
.box.over { border-color: #2563eb; background: #eaf1ff; }
button { font: inherit; padding: .45rem .9rem; border-radius: 6px; border: 1px solid #2563eb;
  background: #2563eb; color: #fff; cursor: pointer; }
button:focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
button:disabled { opacity: .5; cursor: default; }
.status { margin: .6rem 0 0; min-height: 1.4em; }
.verdict { display: inline-block; font-weight: 700; padding: .1rem .5rem; border-radius: 4px; }
.verdict.normal { background: #dcfce7; color: #14532d; }
.verdict.abnormal { background: #fee2e2; color: #7f1d1d; }
.error { color: #991b1b; }
`;

let sheet = null;
function styleSheet() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(kCss);
  }
  return sheet;
}

export class AnomalensClassifierElement extends HTMLElement {
  static get observedAttributes() {
    return ['model'];
  }

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.adoptedStyleSheets = [styleSheet()];
    const box = document.createElement('div');
    box.className = 'box';
    box.part = 'box';
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = 'Choose an image';
    button.disabled = true;
    const input = document.createElement('input');
    input.type = 'file';
    input.accept = 'image/*,.tga';
    input.hidden = true;
    const hint = document.createElement('div');
    hint.textContent = 'or drop one here';
    const status = document.createElement('p');
    status.className = 'status';
    status.setAttribute('role', 'status');
    status.setAttribute('aria-live', 'polite');
    status.textContent = 'Loading model...';
    box.append(button, input, hint, status);
    root.append(box);

    this._status = status;
    this._button = button;
    this._clf = null;
    this._loading = null;
    this.ready = new Promise((resolve, reject) => {
      this._readyResolve = resolve;
      this._readyReject = reject;
    });
    this.ready.catch(() => {});

    button.addEventListener('click', () => input.click());
    input.addEventListener('change', () => {
      if (input.files[0]) this._run(input.files[0]);
      input.value = '';
    });
    box.addEventListener('dragover', (e) => {
      e.preventDefault();
      box.classList.add('over');
    });
    box.addEventListener('dragleave', () => box.classList.remove('over'));
    box.addEventListener('drop', (e) => {
      e.preventDefault();
      box.classList.remove('over');
      const file = e.dataTransfer?.files?.[0];
      if (file) this._run(file);
    });
  }

  attributeChangedCallback() {
    if (this.isConnected) this._load();
  }

  connectedCallback() {
    if (!this._clf && !this._loading) this._load();
  }

  disconnectedCallback() {
    this._clf?.close();
    this._clf = null;
    this._loading = null;
  }

  /** The underlying Anomalens instance (null until ready). */
  get classifier() {
    return this._clf;
  }

  async _load() {
    const model = this.getAttribute('model');
    if (!model) {
      this._showError(new AnomalensError('invalid_argument', 'set the model attribute to a .alm URL'));
      return;
    }
    const old = this._clf;
    this._clf = null;
    old?.close();
    this._button.disabled = true;
    this._status.textContent = 'Loading model...';
    const loading = Anomalens.create({ model, coreUrl: this.getAttribute('core-url') ?? undefined });
    this._loading = loading;
    try {
      const clf = await loading;
      if (this._loading !== loading) {
        clf.close();
        return;
      }
      this._clf = clf;
      this._button.disabled = false;
      const info = clf.info();
      this._status.textContent = `Ready: ${info.name}`;
      this._readyResolve(info);
      this.dispatchEvent(new CustomEvent('ready', { detail: info }));
    } catch (err) {
      if (this._loading !== loading) return;
      this._readyReject(err);
      this._showError(err);
    }
  }

  _showError(err, file) {
    this._status.replaceChildren();
    const span = document.createElement('span');
    span.className = 'error';
    span.textContent = `${file ? `${file}: ` : ''}${err.message}`;
    this._status.append(span);
    this.setAttribute('data-verdict', 'error');
    this.dispatchEvent(new CustomEvent('error', {
      detail: { code: err.code ?? 'internal', message: err.message, file } }));
  }

  async _run(input) {
    try {
      await this.classify(input);
    } catch { /* shown and dispatched already */ }
  }

  /** Classifies input, shows the verdict and dispatches 'result'; rejects like Anomalens.classify. */
  async classify(input) {
    await this.ready;
    const file = input?.name;
    this._status.textContent = `Classifying${file ? ` ${file}` : ''}...`;
    try {
      const result = await this._clf.classify(input);
      this._status.replaceChildren();
      const badge = document.createElement('span');
      badge.className = `verdict ${result.label}`;
      badge.textContent = result.label.toUpperCase();
      const text = document.createTextNode(
        ` ${file ? `${file}: ` : ''}P(abnormal) ${(result.score * 100).toFixed(1)}%`);
      this._status.append(badge, text);
      this.setAttribute('data-verdict', result.label);
      this.setAttribute('data-score', String(result.score));
      this.dispatchEvent(new CustomEvent('result', { detail: { ...result, file } }));
      return result;
    } catch (err) {
      this._showError(err, file);
      throw err;
    }
  }
}

if (!customElements.get('anomalens-classifier')) {
  customElements.define('anomalens-classifier', AnomalensClassifierElement);
}

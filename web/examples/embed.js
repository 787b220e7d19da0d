// SPDX-License-Identifier: Apache-2.0
import { Anomalens } from '../anomalens.js';

const out = document.getElementById('out');
const pick = document.getElementById('pick');
const clf = await Anomalens.create({ model: '../models/default.alm' }).catch((e) => { out.value = e.message; throw e; });
out.value = `Ready: ${clf.info().name}. Choose an image.`;
pick.disabled = false;
pick.addEventListener('change', async () => {
  const r = await clf.classify(pick.files[0]).catch((e) => ({ error: e }));
  out.value = r.error ? `${r.error.code}: ${r.error.message}` : `${r.label} (P(abnormal) = ${r.score.toFixed(3)})`;
  out.dataset.verdict = r.error ? 'error' : r.label;
});

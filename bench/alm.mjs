// SPDX-License-Identifier: Apache-2.0
// Minimal .alm reader for the benchmark (docs/FORMAT.md): meta, graph lines, f32/f16 tensors.
import { readFileSync } from 'node:fs';

function f16ToF32(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, f = h & 1023;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

export function readAlm(path) {
  const buf = readFileSync(path);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.toString('latin1', 0, 4) !== 'ALM1') throw new Error(`${path}: not an .alm file (magic)`);
  const count = dv.getUint32(8, true);
  const sections = {};
  for (let i = 0; i < count; i++) {
    const e = 16 + 32 * i;
    const name = buf.toString('latin1', e, e + 16).replace(/\0+$/, '');
    sections[name] = buf.subarray(Number(dv.getBigUint64(e + 16, true)),
      Number(dv.getBigUint64(e + 16, true)) + Number(dv.getBigUint64(e + 24, true)));
  }
  for (const s of ['meta', 'graph', 'tensors', 'weights']) {
    if (!sections[s]) throw new Error(`${path}: missing section ${s}`);
  }
  const meta = {};
  for (const line of sections.meta.toString('utf8').split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const i = line.indexOf('=');
    meta[line.slice(0, i)] = line.slice(i + 1);
  }
  const layers = sections.graph.toString('utf8').split('\n').filter((l) => l.trim()).map((line) => {
    const p = line.trim().split(/\s+/);
    const nIn = +p[2], nOut = +p[3];
    const params = {};
    for (const kv of p.slice(4 + nIn + nOut)) {
      const i = kv.indexOf('=');
      params[kv.slice(0, i)] = kv.slice(i + 1);
    }
    return { type: p[0], name: p[1], inputs: p.slice(4, 4 + nIn), outputs: p.slice(4 + nIn, 4 + nIn + nOut), params };
  });
  const w = sections.weights;
  const tensors = {};
  for (const line of sections.tensors.toString('utf8').split('\n')) {
    if (!line.trim()) continue;
    const [name, dtype, dimsS, offS] = line.trim().split(/\s+/);
    const dims = dimsS.split(',').map(Number);
    const n = dims.reduce((a, b) => a * b, 1);
    const off = w.byteOffset + Number(offS);
    let data;
    if (dtype === 'f32') {
      data = new Float32Array(w.buffer.slice(off, off + 4 * n));
    } else {
      const h = new Uint16Array(w.buffer.slice(off, off + 2 * n));
      data = Float32Array.from(h, f16ToF32);
    }
    tensors[name] = { dims, data };
  }
  return { meta, layers, tensors };
}

export const ints = (s, n, dflt) => {
  if (s === undefined) return Array(n).fill(dflt);
  const v = s.split(',').map(Number);
  return v.length === 1 ? Array(n).fill(v[0]) : v;
};

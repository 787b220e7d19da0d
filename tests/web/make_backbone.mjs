// SPDX-License-Identifier: Apache-2.0
// Writes a small random-weights classifier .alm (docs/FORMAT.md) for the one-class tests: a
// 4-conv CNN, 128x128 rgb (by default), stride 2 per conv, so it has feature maps at 1/4, 1/8 and 1/16 of the
// input (what OneClassFitter's automatic feature choice looks for), then a 2-way head.
// Random features are enough to tell a synthetic scene from the same scene with an object.

import fs from 'node:fs';

// Deterministic uniform(-a, a) from a 32-bit LCG seed.
function randomTensor(n, scale, seed) {
  const out = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = ((x / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

export function makeBackboneAlm({ size = 128, name = 'random-cnn', seed = 7 } = {}) {
  const chans = [3, 8, 16, 16, 16];
  const layers = [`Input in 0 1 x c=3 h=${size} w=${size}`];
  const tensors = [];
  let blob = 'x';
  for (let i = 1; i < chans.length; i++) {
    const cin = chans[i - 1];
    const cout = chans[i];
    const w = `conv${i}.weight`;
    const b = `conv${i}.bias`;
    // He-like scale keeps activations from vanishing through 4 random layers.
    tensors.push({ name: w, dims: [cout, cin, 3, 3], data: randomTensor(cout * cin * 9, Math.sqrt(6 / (cin * 9)), seed + i) });
    tensors.push({ name: b, dims: [cout], data: randomTensor(cout, 0.05, seed + 100 + i) });
    layers.push(`Conv conv${i} 1 1 ${blob} c${i} cout=${cout} k=3,3 s=2,2 p=1,1,1,1 w=${w} b=${b} act=relu`);
    blob = `c${i}`;
  }
  layers.push(`GlobalAvgPool gap 1 1 ${blob} g`);
  tensors.push({ name: 'fc.weight', dims: [2, 16], data: randomTensor(32, 0.3, seed + 200) });
  tensors.push({ name: 'fc.bias', dims: [2], data: new Float32Array(2) });
  layers.push('Flatten flat 1 1 g f');
  layers.push('Gemm fc 1 1 f logits n=2 w=fc.weight b=fc.bias');
  layers.push('Softmax prob 1 1 logits prob');
  const meta = [`name=${name}`, 'labels=normal,abnormal', `input_size=${size}x${size}`, 'channels=rgb',
    'scale=255', 'mean=0.5,0.5,0.5', 'std=0.25,0.25,0.25', 'resize=stretch', 'output=probabilities',
    'threshold=0.5', 'description=random-weights CNN for tests (tests/web/make_backbone.mjs)'].join('\n') + '\n';

  let offset = 0;
  const lines = [];
  for (const t of tensors) {
    t.offset = offset;
    lines.push(`${t.name} f32 ${t.dims.join(',')} ${offset}`);
    offset += Math.ceil(t.data.byteLength / 64) * 64;
  }
  const weights = new Uint8Array(offset);
  for (const t of tensors) weights.set(new Uint8Array(t.data.buffer), t.offset);
  const enc = new TextEncoder();
  const sections = [['meta', enc.encode(meta)], ['graph', enc.encode(layers.join('\n') + '\n')],
    ['tensors', enc.encode(lines.join('\n') + '\n')], ['weights', weights]];
  const headerBytes = 16 + 32 * sections.length;
  let pos = headerBytes;
  const placed = sections.map(([n, bytes]) => {
    pos = Math.ceil(pos / 64) * 64;
    const at = pos;
    pos += bytes.length;
    return { n, bytes, at };
  });
  const out = new Uint8Array(Math.ceil(pos / 64) * 64);
  const view = new DataView(out.buffer);
  out.set(enc.encode('ALM1'), 0);
  view.setUint32(4, 1, true);
  view.setUint32(8, sections.length, true);
  view.setUint32(12, 0, true);
  placed.forEach(({ n, bytes, at }, i) => {
    const e = 16 + 32 * i;
    out.set(enc.encode(n), e);
    view.setBigUint64(e + 16, BigInt(at), true);
    view.setBigUint64(e + 24, BigInt(bytes.length), true);
    out.set(bytes, at);
  });
  return out;
}

export function writeBackboneAlm(file, options) {
  fs.writeFileSync(file, makeBackboneAlm(options));
  return file;
}

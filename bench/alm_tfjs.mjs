// SPDX-License-Identifier: Apache-2.0
// Builds the network of an .alm file with TensorFlow.js ops (NHWC), from the same (BatchNorm
// folded) weights Anomalens runs. Convolutions use tf.fused.* with bias and activation, which
// the wasm backend runs as fused XNNPACK operators; pads are explicit (never 'same', whose
// stride-2 split differs from PyTorch's).
import { ints } from './alm.mjs';

function act(tf, x, a, clip) {
  switch (a) {
    case undefined: case 'none': return x;
    case 'relu': return tf.relu(x);
    case 'relu6': return tf.relu6(x);
    case 'clip': return tf.clipByValue(x, clip[0], clip[1]);
    case 'sigmoid': return tf.sigmoid(x);
    case 'hardswish': return tf.mul(x, tf.div(tf.relu6(tf.add(x, 3)), 6));
    default: throw new Error(`tfjs: activation ${a} not supported`);
  }
}

// Activation tfjs can fuse into conv/matMul, or null.
function fusedAct(a, clip) {
  if (a === undefined || a === 'none') return 'linear';
  if (a === 'relu' || a === 'relu6' || a === 'sigmoid') return a;
  if (a === 'clip' && clip[0] === 0 && clip[1] === 6) return 'relu6';
  return null;
}

// Returns { predict(x NHWC tensor) -> output tensor, dispose() }.
export function buildTfjs(tf, alm) {
  const weights = [];  // tensors to dispose
  const keep = (t) => { weights.push(t); return t; };
  const shapes = {};
  const steps = [];
  for (const l of alm.layers) {
    const p = l.params;
    const clip = p.clip ? p.clip.split(',').map(Number) : null;
    const fa = fusedAct(p.act, clip);
    switch (l.type) {
      case 'Input':
        shapes[l.outputs[0]] = [+p.h, +p.w, +p.c];
        steps.push(null);
        break;
      case 'Conv': {
        const [h, w, cin] = shapes[l.inputs[0]];
        const cout = +p.cout, [kh, kw] = ints(p.k, 2), [sh, sw] = ints(p.s, 2, 1);
        const [dh, dw] = ints(p.d, 2, 1), [pt, pl, pb, pr] = ints(p.p, 4, 0), g = +(p.g || 1);
        const W = alm.tensors[p.w].data, B = p.b ? alm.tensors[p.b].data : new Float32Array(cout);
        const pad = [[0, 0], [pt, pb], [pl, pr], [0, 0]];
        const bias = keep(tf.tensor1d(B));
        const kk = kh * kw;
        let filter, depthwise = false;
        if (g === cin && g === cout && g > 1) {
          depthwise = true;
          const f = new Float32Array(kk * cin);  // [kh][kw][cin][1]
          for (let c = 0; c < cin; c++) for (let t = 0; t < kk; t++) f[t * cin + c] = W[c * kk + t];
          filter = keep(tf.tensor4d(f, [kh, kw, cin, 1]));
        } else if (g === 1) {
          const f = new Float32Array(kk * cin * cout);  // HWIO
          for (let o = 0; o < cout; o++) for (let i = 0; i < cin; i++)
            for (let t = 0; t < kk; t++) f[(t * cin + i) * cout + o] = W[(o * cin + i) * kk + t];
          filter = keep(tf.tensor4d(f, [kh, kw, cin, cout]));
        } else {
          throw new Error(`tfjs: grouped conv ${l.name} (g=${g}) not supported by the bench builder`);
        }
        const oh = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
        const ow = Math.floor((w + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
        shapes[l.outputs[0]] = [oh, ow, cout];
        steps.push((x) => {
          const args = { x, filter, strides: [sh, sw], pad, dilations: [dh, dw], bias,
            activation: fa || 'linear' };
          const y = depthwise ? tf.fused.depthwiseConv2d(args) : tf.fused.conv2d(args);
          return fa ? y : act(tf, y, p.act, clip);
        });
        break;
      }
      case 'Gemm': {
        const [h, w, c] = shapes[l.inputs[0]];
        const n = +p.n, k = h * w * c;
        const W = alm.tensors[p.w].data;
        const wt = new Float32Array(k * n);  // [k][n], transposed here (see TOOLCHAIN.md)
        for (let r = 0; r < n; r++) for (let i = 0; i < k; i++) wt[i * n + r] = W[r * k + i];
        const b = keep(tf.tensor2d(wt, [k, n]));
        const bias = keep(tf.tensor1d(p.b ? alm.tensors[p.b].data : new Float32Array(n)));
        shapes[l.outputs[0]] = [1, 1, n];
        steps.push((x) => {
          const a = h * w === 1 ? tf.reshape(x, [1, k]) : tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [1, k]);
          const y = tf.fused.matMul({ a, b, bias, activation: fa || 'linear' });
          return tf.reshape(fa ? y : act(tf, y, p.act, clip), [1, 1, 1, n]);
        });
        break;
      }
      case 'Add': case 'Mul':
        shapes[l.outputs[0]] = shapes[l.inputs[0]];
        steps.push((a, b) => act(tf, l.type === 'Add' ? tf.add(a, b) : tf.mul(a, b), p.act, clip));
        break;
      case 'Concat': {
        const s0 = shapes[l.inputs[0]];
        shapes[l.outputs[0]] = [s0[0], s0[1], l.inputs.reduce((a, b) => a + shapes[b][2], 0)];
        steps.push((...xs) => tf.concat(xs, 3));
        break;
      }
      case 'MaxPool': case 'AvgPool': {
        const [h, w, c] = shapes[l.inputs[0]];
        const [kh, kw] = ints(p.k, 2), [sh, sw] = ints(p.s, 2, kh), [pt, pl, pb, pr] = ints(p.p, 4, 0);
        const padded = pt || pl || pb || pr;
        if (padded && l.type === 'AvgPool' && p.count_pad !== '1') {
          throw new Error(`tfjs: AvgPool ${l.name} with padding and count_pad=0 not supported`);
        }
        shapes[l.outputs[0]] = [Math.floor((h + pt + pb - kh) / sh) + 1, Math.floor((w + pl + pr - kw) / sw) + 1, c];
        steps.push((x) => {
          if (padded) x = tf.pad(x, [[0, 0], [pt, pb], [pl, pr], [0, 0]], l.type === 'MaxPool' ? -3.4e38 : 0);
          return l.type === 'MaxPool' ? tf.maxPool(x, [kh, kw], [sh, sw], 'valid') : tf.avgPool(x, [kh, kw], [sh, sw], 'valid');
        });
        break;
      }
      case 'GlobalAvgPool':
        shapes[l.outputs[0]] = [1, 1, shapes[l.inputs[0]][2]];
        steps.push((x) => tf.mean(x, [1, 2], true));
        break;
      case 'Flatten': {
        const [h, w, c] = shapes[l.inputs[0]];
        shapes[l.outputs[0]] = [1, 1, h * w * c];
        steps.push((x) => tf.reshape(h * w === 1 ? x : tf.transpose(x, [0, 3, 1, 2]), [1, 1, 1, h * w * c]));
        break;
      }
      case 'Activation':
        shapes[l.outputs[0]] = shapes[l.inputs[0]];
        steps.push((x) => act(tf, x, p.act, clip));
        break;
      case 'Softmax':
        shapes[l.outputs[0]] = shapes[l.inputs[0]];
        steps.push((x) => tf.softmax(x, -1));
        break;
      default:
        throw new Error(`tfjs: layer type ${l.type} (${l.name}) not supported by the bench builder`);
    }
  }
  const consumed = new Set(alm.layers.flatMap((l) => l.inputs));
  const outBlob = alm.layers.flatMap((l) => l.outputs).find((b) => !consumed.has(b));
  return {
    predict(x) {
      return tf.tidy(() => {
        const blobs = {};
        alm.layers.forEach((l, i) => {
          blobs[l.outputs[0]] = l.type === 'Input' ? x : steps[i](...l.inputs.map((b) => blobs[b]));
        });
        return blobs[outBlob];
      });
    },
    dispose() { weights.forEach((t) => t.dispose()); },
  };
}

// SPDX-License-Identifier: Apache-2.0
// Builtin engine: the project's micro-kernels (src/kernels) driven XNNPACK-style.
// Everything that depends only on the graph happens once, in create_builtin_engine():
//  - a memory plan places every blob in one arena, reusing space of blobs no longer needed;
//  - weights are packed into the selected kernels' tile layouts (bias first, NR/CT blocks);
//  - convolutions and pools get indirection buffers: for each output pixel and kernel tap, a
//    pointer to the input pixel or to a shared zero (or -inf) row for padding.
//  - a 1x1 expansion whose large output only feeds a 3x3 depthwise convolution runs fused
//    with it and the 1x1 projection after it, row by row (FusedBlockOp), so that neither the
//    expanded map nor the depthwise output is ever stored whole;
// run() then only copies the input in and calls kernels: no allocation, no shape logic.
// With threads > 1, the heavy ops split their work over a ThreadPool (one barrier per op):
// gemm/igemm by blocks of MR output rows, dwconv/pools by output pixels, element-wise passes by
// 64-float chunks. Every output element is computed by the same kernel call as with one thread,
// so results are bit-identical whatever the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>
#ifdef ANOMALENS_ENGINE_PROFILE
#include <chrono>
#include <string>
#include <utility>
#endif

#include "kernels/kernels.h"
#include "nn/activation.h"
#include "nn/engine.h"
#include "nn/engine_internal.h"
#include "nn/thread_pool.h"

namespace anomalens {

#ifdef ANOMALENS_ENGINE_PROFILE
// Bench-only build (scripts/bench.sh compiles this file again with the macro): milliseconds
// spent in each op of the most recently built engine, summed over runs, labelled "Type name".
std::vector<std::pair<std::string, double>>& builtin_engine_profile() {
  static std::vector<std::pair<std::string, double>> profile;
  return profile;
}
#endif

namespace {

constexpr size_t kAlignFloats = 16;  // 64-byte alignment of every blob
constexpr size_t kExtraFloats = ANOMALENS_EXTRA_BYTES / sizeof(float);
#ifndef ANOMALENS_GEMM_COLUMN_BLOCK_BYTES
#define ANOMALENS_GEMM_COLUMN_BLOCK_BYTES (16 * 1024)  // L1-sized; measured on MobileNetV2
#endif

size_t round_up(size_t n, size_t q) { return (n + q - 1) / q * q; }

// One executable step; pointers into the arena are fixed at creation.
struct Op {
  virtual ~Op() = default;
  virtual void run(ThreadPool& pool) = 0;
};

// Tasks for `units` independent units of work: one per thread is enough when every task costs
// the same; more let a thread that starts late (or was preempted) hand over part of its share.
// 8 per thread measured 2-3% faster than 4 on MobileNetV2 with 2 threads (and 2 about as fast
// as 8): the pool's fixed split keeps each thread on the same rows whatever the count.
size_t task_count(size_t units, const ThreadPool& pool) {
  if (pool.threads() == 1) return 1;
  return std::min(units, static_cast<size_t>(pool.threads()) * 8);
}
// Units [first, last) of task t out of `tasks`.
inline size_t task_begin(size_t t, size_t tasks, size_t units) { return t * units / tasks; }

// Splits an element-wise pass over `count` floats into 64-float-aligned chunks, so SIMD kernels
// see the same full vectors and the same tail as in one call.
template <class F>
void parallel_elementwise(ThreadPool& pool, size_t count, const F& f) {
  constexpr size_t kChunk = 64;
  const size_t chunks = (count + kChunk - 1) / kChunk;
  const size_t tasks = count < 4096 ? 1 : task_count(chunks, pool);
  pool.parallel_for(tasks, [&](size_t t) {
    const size_t b = task_begin(t, tasks, chunks) * kChunk;
    const size_t e = std::min(count, task_begin(t + 1, tasks, chunks) * kChunk);
    if (e > b) f(b, e - b);
  });
}

anomalens_f32_minmax_params minmax_of(const Layer& l) {
  anomalens_f32_minmax_params p;
  activation_bounds(l, &p.min, &p.max);
  return p;
}

// hardswish / sigmoid are not clamps, so they run as a pass over the output.
struct PostActivation {
  anomalens_f32_vunary_ukernel_fn fn = nullptr;
  float* data = nullptr;
  size_t count = 0;
  void init(const Layer& l, const anomalens_kernel_config* cfg, float* out, size_t n) {
    if (l.act == Activation::kHardSwish) fn = cfg->hswish;
    if (l.act == Activation::kSigmoid) fn = cfg->sigmoid;
    data = out;
    count = n;
  }
  void run(ThreadPool& pool) const {
    if (!fn) return;
    parallel_elementwise(pool, count, [&](size_t b, size_t n) { fn(n * sizeof(float), data + b, data + b); });
  }
};

// Output columns per pass over the rows: the weights of one pass (k floats per column) stay in
// cache while every MR-row block of A streams past them, instead of all weights streaming once
// per MR rows. A whole multiple of NR.
size_t column_block(size_t n, size_t k, size_t nr) {
  const size_t budget_floats = ANOMALENS_GEMM_COLUMN_BLOCK_BYTES / sizeof(float);
  const size_t cols = std::max<size_t>(1, budget_floats / (k * nr)) * nr;
  return std::min(cols, round_up(n, nr));
}

// Rows [i0, i1) x columns [j0, j1) of C (row stride n) = A (row stride k) x the packed
// weights, bias and clamp included; j0 a multiple of NR.
void gemm_tile(const anomalens_kernel_config* cfg, const float* packed, const float* a, float* c,
               size_t n, size_t k, size_t i0, size_t i1, size_t j0, size_t j1,
               const anomalens_f32_minmax_params& params) {
  const size_t mr = cfg->gemm_mr, nr = cfg->gemm_nr;
  const size_t nb = column_block(n, k, nr);
  for (size_t j = j0; j < j1; j += nb) {
    const float* w = packed + j / nr * (nr + k * nr);
    const size_t nc = std::min(nb, j1 - j);
    for (size_t i = i0; i < i1; i += mr) {
      cfg->gemm(std::min(mr, i1 - i), nc, k * sizeof(float), a + i * k, k * sizeof(float), w,
                c + i * n + j, n * sizeof(float), nr * sizeof(float), &params);
    }
  }
}

struct GemmOp : Op {
  const anomalens_kernel_config* cfg;
  std::vector<float> packed;
  const float* a;
  float* c;
  size_t m, n, k;
  anomalens_f32_minmax_params params;
  PostActivation post;
  void run(ThreadPool& pool) override {
    const size_t mr = cfg->gemm_mr;
    if (pool.threads() > 1 && n > m) {
      // More weights (k x n) than input (m x k), as in the last layers of a CNN: split the
      // columns, so that each thread streams only its share of the weights (and, with the
      // pool's fixed split, finds it still in its own cache at the next inference). Every
      // thread reads all the input rows, which are the smaller part. Units of 16 columns keep
      // two threads' outputs off one 64-byte cache line.
      const size_t unit = round_up(16, cfg->gemm_nr);
      const size_t units = (n + unit - 1) / unit;
      const size_t tasks = task_count(units, pool);
      pool.parallel_for(tasks, [&](size_t t) {
        tile(0, m, task_begin(t, tasks, units) * unit, std::min(n, task_begin(t + 1, tasks, units) * unit));
      });
    } else {
      const size_t blocks = (m + mr - 1) / mr;
      const size_t tasks = task_count(blocks, pool);
      pool.parallel_for(tasks, [&](size_t t) {
        tile(task_begin(t, tasks, blocks) * mr, std::min(m, task_begin(t + 1, tasks, blocks) * mr), 0, n);
      });
    }
    post.run(pool);
  }
  void tile(size_t i0, size_t i1, size_t j0, size_t j1) const {
    gemm_tile(cfg, packed.data(), a, c, n, k, i0, i1, j0, j1, params);
  }
};

struct IgemmOp : Op {
  const anomalens_kernel_config* cfg;
  std::vector<float> packed;  // all groups, one after another
  size_t packed_group_floats;
  std::vector<const float*> indirection;  // per MR block: taps x MR pointers
  const float* zero;
  float* c;
  size_t pixels, taps, groups, cin_g, cout_g, cout;
  anomalens_f32_minmax_params params;
  PostActivation post;
  void run(ThreadPool& pool) override {
    const size_t mr = cfg->igemm_mr;
    const size_t blocks = (pixels + mr - 1) / mr;
    const size_t tasks = task_count(blocks, pool);
    pool.parallel_for(tasks, [&](size_t t) {
      row_blocks(task_begin(t, tasks, blocks), task_begin(t + 1, tasks, blocks));
    });
    post.run(pool);
  }
  void row_blocks(size_t b0, size_t b1) {
    const size_t mr = cfg->igemm_mr, nr = cfg->igemm_nr;
    const size_t ks = taps * mr * sizeof(void*);
    const size_t nb = column_block(cout_g, taps * cin_g, nr);
    for (size_t g = 0; g < groups; ++g) {
      for (size_t j = 0; j < cout_g; j += nb) {
        const float* w = packed.data() + g * packed_group_floats + j / nr * (nr + taps * cin_g * nr);
        const size_t nc = std::min(nb, cout_g - j);
        for (size_t block = b0, i = b0 * mr; block < b1; i += mr, ++block) {
          cfg->igemm(std::min(mr, pixels - i), nc, cin_g * sizeof(float), ks,
                     indirection.data() + block * taps * mr, w, c + i * cout + g * cout_g + j,
                     cout * sizeof(float), nr * sizeof(float), g * cin_g * sizeof(float), zero,
                     &params);
        }
      }
    }
  }
};

struct DwconvOp : Op {
  const anomalens_kernel_config* cfg;
  std::vector<float> packed;
  std::vector<const float*> indirection;  // per output pixel: taps pointers
  const float* zero;
  float* out;
  size_t channels, pixels, taps;
  anomalens_f32_minmax_params params;
  PostActivation post;
  void run(ThreadPool& pool) override {
    const size_t tasks = pixels * channels * taps < 16384 ? 1 : task_count(pixels, pool);
    pool.parallel_for(tasks, [&](size_t t) {
      const size_t p0 = task_begin(t, tasks, pixels), p1 = task_begin(t + 1, tasks, pixels);
      if (p1 > p0) {
        cfg->dwconv(channels, p1 - p0, taps, indirection.data() + p0 * taps, packed.data(),
                    out + p0 * channels, taps * sizeof(void*), 0, 0, zero, &params);
      }
    });
    post.run(pool);
  }
};

// Depthwise 3x3 (dilation 1, stride 1 or 2) by output rows: the row kernel slides a window of
// input columns along each row instead of gathering 9 taps per output pixel.
struct Dwconv3x3Op : Op {
  const anomalens_kernel_config* cfg;
  std::vector<float> packed;
  std::vector<const float*> rows;  // per output row: the 3 input rows (or the zero row)
  float* out;
  size_t channels, out_h, out_w, in_w, stride, pad_left;
  anomalens_f32_minmax_params params;
  PostActivation post;
  void run(ThreadPool& pool) override {
    const size_t tasks = out_h * out_w * channels * 9 < 16384 ? 1 : task_count(out_h, pool);
    pool.parallel_for(tasks, [&](size_t t) {
      for (size_t oy = task_begin(t, tasks, out_h); oy < task_begin(t + 1, tasks, out_h); ++oy) {
        cfg->dwconv3x3(channels, out_w, in_w, stride, pad_left, rows.data() + oy * 3, packed.data(),
                       out + oy * out_w * channels, &params);
      }
    });
    post.run(pool);
  }
};

// A 1x1 expansion, the 3x3 depthwise convolution reading it and, usually, the 1x1 projection
// reading that (MobileNetV2's inverted residual), computed together a row at a time, so that
// the expanded map (6x the block's channels: 4.8 MB at 112x112x96) and the depthwise output
// never go through memory. Each thread keeps the last three expanded rows in a ring of its
// own: running a band of output rows front to back, it expands each input row once, and the
// next band of its range starts where the last one stopped; only a band it steals (or its
// range's first) expands again the one or two rows above it. The same kernels sum in the same
// order as the separate ops, so the results are bit-identical.
struct FusedBlockOp : Op {
  const anomalens_kernel_config* cfg;
  std::vector<float> expand_packed, dw_packed;
  anomalens_f32_minmax_params expand_params, dw_params;
  const float* in;        // in_h x in_w x cin
  const float* zero_row;  // in_w x cexp zeros (+ kernel over-read)
  float* out;             // out_h x out_w x (cout, or cexp without a projection)
  size_t cin, cexp, in_h, in_w, out_h, out_w, stride, pad_top, pad_left;
  size_t ring_row_floats;
  // With a fused 1x1 projection (project_packed not empty), each depthwise output row goes to
  // the thread's row buffer, and the projection writes `out`.
  std::vector<float> project_packed;
  anomalens_f32_minmax_params project_params;
  size_t cout = 0;
  // Per thread: 3 expanded rows, one depthwise row, and which input rows the ring holds.
  struct Scratch {
    std::vector<float> ring, dw_row;
    ptrdiff_t lo = 0, hi = 0;  // rows [lo, hi) are in the ring, row r in slot r % 3
  };
  std::vector<Scratch> scratch;
  PostActivation post;  // the last fused layer's
  void run(ThreadPool& pool) override {
    for (Scratch& t : scratch) t.lo = t.hi = 0;
    const size_t tasks = task_count(out_h, pool);
    pool.parallel_for_slots(tasks, [&](size_t band, size_t slot) {
      Scratch& t = scratch[slot];
      for (size_t oy = task_begin(band, tasks, out_h); oy < task_begin(band + 1, tasks, out_h); ++oy) row(oy, &t);
    });
    post.run(pool);
  }
  void row(size_t oy, Scratch* t) const {
    const ptrdiff_t top = static_cast<ptrdiff_t>(oy * stride) - static_cast<ptrdiff_t>(pad_top);
    const ptrdiff_t first = std::max(top, ptrdiff_t{0});
    const ptrdiff_t last = std::min(top + 2, static_cast<ptrdiff_t>(in_h) - 1);
    if (first < t->lo || first > t->hi) t->lo = t->hi = first;  // not a continuation: start over
    for (; t->hi <= last; ++t->hi) {
      gemm_tile(cfg, expand_packed.data(), in + static_cast<size_t>(t->hi) * in_w * cin,
                t->ring.data() + static_cast<size_t>(t->hi % 3) * ring_row_floats, cexp, cin, 0, in_w, 0,
                cexp, expand_params);
    }
    t->lo = std::max(t->lo, t->hi - 3);
    const float* rows[3];
    for (ptrdiff_t ky = 0; ky < 3; ++ky) {
      const ptrdiff_t iy = top + ky;
      rows[ky] = iy >= 0 && iy < static_cast<ptrdiff_t>(in_h)
                     ? t->ring.data() + static_cast<size_t>(iy % 3) * ring_row_floats
                     : zero_row;
    }
    if (project_packed.empty()) {
      cfg->dwconv3x3(cexp, out_w, in_w, stride, pad_left, rows, dw_packed.data(), out + oy * out_w * cexp,
                     &dw_params);
      return;
    }
    float* dw_row = t->dw_row.data();
    cfg->dwconv3x3(cexp, out_w, in_w, stride, pad_left, rows, dw_packed.data(), dw_row, &dw_params);
    gemm_tile(cfg, project_packed.data(), dw_row, out + oy * out_w * cout, cout, cexp, 0, out_w, 0, cout,
              project_params);
  }
};

struct PoolOp : Op {
  const anomalens_kernel_config* cfg;
  bool is_max;
  std::vector<const float*> indirection;
  std::vector<float> multiplier;
  float* out;
  size_t channels, pixels, taps;
  void run(ThreadPool& pool) override {
    const size_t tasks = pixels * channels * taps < 16384 ? 1 : task_count(pixels, pool);
    pool.parallel_for(tasks, [&](size_t t) {
      const size_t p0 = task_begin(t, tasks, pixels), p1 = task_begin(t + 1, tasks, pixels);
      if (p1 == p0) return;
      const float** ind = indirection.data() + p0 * taps;
      if (is_max) {
        cfg->maxpool(p1 - p0, taps, channels, ind, out + p0 * channels, taps * sizeof(void*));
      } else {
        cfg->avgpool(p1 - p0, taps, channels, ind, out + p0 * channels, taps * sizeof(void*),
                     multiplier.data() + p0);
      }
    });
  }
};

struct GlobalAvgPoolOp : Op {
  const anomalens_kernel_config* cfg;
  const float* in;
  float* out;
  size_t rows, channels;
  void run(ThreadPool&) override { cfg->gavgpool(rows, channels, in, out, 1.f / static_cast<float>(rows)); }
};

struct BinaryOp : Op {
  anomalens_f32_vbinary_minmax_ukernel_fn fn;
  const float *a, *b;
  float* y;
  size_t count;
  anomalens_f32_minmax_params params;
  PostActivation post;
  void run(ThreadPool& pool) override {
    parallel_elementwise(pool, count, [&](size_t i, size_t n) { fn(n * sizeof(float), a + i, b + i, y + i, &params); });
    post.run(pool);
  }
};

struct ChannelScaleOp : Op {
  anomalens_f32_vmulc_ukernel_fn fn;
  const float *x, *scale;
  float* y;
  size_t rows, channels;
  void run(ThreadPool&) override { fn(rows, channels, x, scale, y); }
};

struct ConcatOp : Op {
  struct Part { const float* src; size_t channels; };
  std::vector<Part> parts;
  float* out;
  size_t pixels, out_channels;
  void run(ThreadPool&) override {
    size_t c0 = 0;
    for (const Part& p : parts) {
      for (size_t i = 0; i < pixels; ++i) {
        std::memcpy(out + i * out_channels + c0, p.src + i * p.channels, p.channels * sizeof(float));
      }
      c0 += p.channels;
    }
  }
};

struct FlattenOp : Op {  // HWC -> CHW order (PyTorch's flatten); a copy when H*W == 1
  const float* in;
  float* out;
  size_t pixels, channels;
  void run(ThreadPool&) override {
    for (size_t p = 0; p < pixels; ++p)
      for (size_t c = 0; c < channels; ++c) out[c * pixels + p] = in[p * channels + c];
  }
};

struct ActivationOp : Op {
  const float* in;
  float* out;
  size_t count;
  anomalens_f32_minmax_params params;
  anomalens_f32_vunary_ukernel_fn fn = nullptr;
  void run(ThreadPool&) override {
    if (fn) {
      fn(count * sizeof(float), in, out);
      return;
    }
    for (size_t i = 0; i < count; ++i) out[i] = std::min(std::max(in[i], params.min), params.max);
  }
};

struct SoftmaxOp : Op {
  const float* in;
  float* out;
  size_t pixels, channels;
  void run(ThreadPool&) override {
    for (size_t p = 0; p < pixels; ++p) {
      const float* x = in + p * channels;
      float* y = out + p * channels;
      float mx = x[0];
      for (size_t c = 1; c < channels; ++c) mx = std::max(mx, x[c]);
      float sum = 0;
      for (size_t c = 0; c < channels; ++c) sum += (y[c] = std::exp(x[c] - mx));
      for (size_t c = 0; c < channels; ++c) y[c] /= sum;
    }
  }
};

// Weights packed once into the selected kernels' layouts (anomalens_pack_*: size query, then
// fill). `bias` may be null.
std::vector<float> pack_gemm(const anomalens_kernel_config* cfg, size_t n, size_t k, const float* w,
                             const float* bias) {
  std::vector<float> packed(anomalens_pack_f32_gemm_oi_w(1, n, k, cfg->gemm_nr, w, bias, nullptr));
  anomalens_pack_f32_gemm_oi_w(1, n, k, cfg->gemm_nr, w, bias, packed.data());
  return packed;
}
std::vector<float> pack_dwconv(const anomalens_kernel_config* cfg, size_t channels, size_t taps,
                               const float* w, const float* bias) {
  std::vector<float> packed(anomalens_pack_f32_dwconv_oihw_w(channels, taps, cfg->dwconv_ct, w, bias, nullptr));
  anomalens_pack_f32_dwconv_oihw_w(channels, taps, cfg->dwconv_ct, w, bias, packed.data());
  return packed;
}
const float* weights_of(const Graph& g, const Layer& l) { return g.tensors[l.weight].data.data(); }
const float* bias_of(const Graph& g, const Layer& l) {
  return l.bias >= 0 ? g.tensors[l.bias].data.data() : nullptr;
}

// 1x1, stride 1, no padding, one group: the input blob already is the GEMM's A matrix.
bool is_pointwise(const Layer& l) {
  return l.type == LayerType::kConv && l.kernel_h == 1 && l.kernel_w == 1 && l.stride_h == 1 &&
         l.stride_w == 1 && l.pad_top == 0 && l.pad_left == 0 && l.pad_bottom == 0 && l.pad_right == 0 &&
         l.groups == 1;
}

// Depthwise 3x3, dilation 1, stride 1 or 2 (in both directions): the row kernel's case.
bool is_dwconv3x3(const Layer& l, const Shape& is, const Shape& os, const anomalens_kernel_config* cfg) {
  return l.type == LayerType::kConv && cfg->dwconv3x3 && l.groups == is.c && is.c == os.c &&
         l.kernel_h == 3 && l.kernel_w == 3 && l.dilation_h == 1 && l.dilation_w == 1 &&
         l.stride_h == l.stride_w && (l.stride_h == 1 || l.stride_h == 2);
}

// Expanded maps from this size on are computed row by row inside FusedBlockOp. Smaller
// ones stay in a core's cache anyway, and their expansion as one GEMM reuses each block of
// weights over more rows than a row at a time would (measured: see docs/BENCHMARKS.md).
constexpr size_t kFuseMinExpandedBytes = 512 * 1024;

// A 1x1 expansion, the 3x3 depthwise convolution that is the only reader of its output, and
// optionally the 1x1 projection that is the only reader of the depthwise output: run as one
// FusedBlockOp at the last of them.
struct FusedBlock {
  size_t expand, dw;
  int project;  // -1: not fused
  size_t last() const { return project >= 0 ? static_cast<size_t>(project) : dw; }
};

// Whether layer `next` is the only reader of layer `i`'s output (and that is not the graph's).
bool only_reader(const Graph& g, size_t i, size_t next) {
  const int x = g.layers[i].outputs[0];
  const Blob& xb = g.blobs[x];
  return next < g.layers.size() && x != g.output_blob && xb.consumers.size() == 1 &&
         xb.consumers[0] == static_cast<int>(next) && g.layers[next].inputs[0] == x;
}

bool clamp_only(const Layer& l) { return l.act != Activation::kHardSwish && l.act != Activation::kSigmoid; }

std::vector<FusedBlock> blocks_to_fuse(const Graph& g, const anomalens_kernel_config* cfg) {
  std::vector<FusedBlock> blocks;
  for (size_t i = 0; i + 1 < g.layers.size(); ++i) {
    const Layer& e = g.layers[i];
    const Layer& d = g.layers[i + 1];
    if (!is_pointwise(e) || !clamp_only(e) || !only_reader(g, i, i + 1)) continue;
    const Shape& xs = g.blobs[e.outputs[0]].shape;
    if (!is_dwconv3x3(d, xs, g.blobs[d.outputs[0]].shape, cfg)) continue;
    if (static_cast<size_t>(xs.elements()) * sizeof(float) < kFuseMinExpandedBytes) continue;
    FusedBlock b{i, i + 1, -1};
    if (clamp_only(d) && only_reader(g, i + 1, i + 2) && is_pointwise(g.layers[i + 2])) b.project = static_cast<int>(i + 2);
    blocks.push_back(b);
    i = b.last();
  }
  return blocks;
}

class BuiltinEngine : public Engine {
 public:
  explicit BuiltinEngine(int threads) : pool_(threads) {}
  Status build(const Graph& g);
  Status run(const float* input) override {
    std::memcpy(input_, input, input_count_ * sizeof(float));
#ifdef ANOMALENS_ENGINE_PROFILE
    auto& profile = builtin_engine_profile();
    for (size_t i = 0; i < ops_.size(); ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      ops_[i]->run(pool_);
      profile[i].second +=
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
#else
    for (auto& op : ops_) op->run(pool_);
#endif
    return Status::Ok();
  }
  const float* output() const override { return output_; }
  size_t output_size() const override { return output_count_; }
  Backend backend() const override { return Backend::kBuiltin; }

 private:
  Status plan_memory(const Graph& g, const std::vector<FusedBlock>& fused);
  std::unique_ptr<Op> make_conv(const Graph& g, const Layer& l);
  std::unique_ptr<Op> make_fused_block(const Graph& g, const FusedBlock& block);
  std::unique_ptr<Op> make_pool(const Graph& g, const Layer& l);
  // Pointers to every kernel tap's input pixel for each output pixel, `pad` for taps in the
  // padding. mr == 1: pixel by pixel (row-major), taps in row-major order. mr > 1 (the IGEMM
  // layout): blocks of mr pixels, within a block tap by tap, mr rows per tap; rows past the
  // last pixel repeat it (read, never stored).
  std::vector<const float*> tap_pointers(const Shape& is, const Shape& os, const Layer& l,
                                         const float* in, const float* pad, size_t mr = 1) const;
  float* blob(int b) { return arena_ + offsets_[b]; }

  ThreadPool pool_;
  const anomalens_kernel_config* cfg_ = anomalens_kernel_config_get();
  std::vector<float> storage_;
  float* arena_ = nullptr;
  std::vector<size_t> offsets_;
  std::vector<float> zeros_, neg_inf_;
  std::vector<std::unique_ptr<Op>> ops_;
  float* input_ = nullptr;
  size_t input_count_ = 0;
  const float* output_ = nullptr;
  size_t output_count_ = 0;
};

// First-fit placement by lifetime: a blob lives from its producer to its last consumer (the
// output lives to the end). Blobs whose lifetimes overlap never share bytes. Blobs inside a
// fused block take no space, and the block's input lives on to the block's last layer.
Status BuiltinEngine::plan_memory(const Graph& g, const std::vector<FusedBlock>& fused) {
  const size_t nb = g.blobs.size();
  std::vector<int> last_use(nb);
  for (size_t b = 0; b < nb; ++b) {
    last_use[b] = g.blobs[b].producer;
    for (int c : g.blobs[b].consumers) last_use[b] = std::max(last_use[b], c);
  }
  std::vector<char> unplaced(nb, 0);
  for (const FusedBlock& f : fused) {
    for (size_t i = f.expand; i < f.last(); ++i) unplaced[g.layers[i].outputs[0]] = 1;
    const int in = g.layers[f.expand].inputs[0];
    last_use[in] = std::max(last_use[in], static_cast<int>(f.last()));
  }
  last_use[g.output_blob] = static_cast<int>(g.layers.size());
  offsets_.assign(nb, 0);
  struct Placed { size_t offset, size; int last; };
  std::vector<Placed> live;
  size_t total = 0;
  for (size_t b = 0; b < nb; ++b) {
    if (unplaced[b]) continue;
    const int born = g.blobs[b].producer;
    live.erase(std::remove_if(live.begin(), live.end(), [&](const Placed& p) { return p.last < born; }),
               live.end());
    std::sort(live.begin(), live.end(), [](const Placed& x, const Placed& y) { return x.offset < y.offset; });
    const size_t size = round_up(static_cast<size_t>(g.blobs[b].shape.elements()) + kExtraFloats, kAlignFloats);
    size_t offset = 0;
    for (const Placed& p : live) {
      if (offset + size <= p.offset) break;
      offset = std::max(offset, p.offset + p.size);
    }
    offsets_[b] = offset;
    live.push_back({offset, size, last_use[b]});
    total = std::max(total, offset + size);
  }
  if (total > (size_t{1} << 29)) {
    return Status(StatusCode::kOutOfMemory, "activations need " + std::to_string(total * 4 >> 20) + " MiB");
  }
  storage_.assign(total + kAlignFloats, 0.f);
  arena_ = reinterpret_cast<float*>(round_up(reinterpret_cast<uintptr_t>(storage_.data()), kAlignFloats * 4));
  return Status::Ok();
}

// One loop for every layout on purpose: tap_pointers has several callers, so binaryen keeps it
// out of line and the engine builder stays small (a per-pixel loop inlined into it made V8
// recompile the whole builder during the browser's first classify; docs/BENCHMARKS.md).
std::vector<const float*> BuiltinEngine::tap_pointers(const Shape& is, const Shape& os, const Layer& l,
                                                      const float* in, const float* pad, size_t mr) const {
  const size_t taps = static_cast<size_t>(l.kernel_h) * l.kernel_w;
  const size_t pixels = static_cast<size_t>(os.h) * os.w;
  const size_t blocks = (pixels + mr - 1) / mr;
  std::vector<const float*> ptrs(blocks * taps * mr);
  size_t k = 0;
  for (size_t b = 0; b < blocks; ++b)
    for (size_t t = 0; t < taps; ++t)
      for (size_t i = 0; i < mr; ++i) {
        const size_t p = std::min(b * mr + i, pixels - 1);
        const int oy = static_cast<int>(p / os.w), ox = static_cast<int>(p % os.w);
        const int ky = static_cast<int>(t / l.kernel_w), kx = static_cast<int>(t % l.kernel_w);
        const int iy = oy * l.stride_h - l.pad_top + ky * l.dilation_h;
        const int ix = ox * l.stride_w - l.pad_left + kx * l.dilation_w;
        const bool inside = iy >= 0 && iy < is.h && ix >= 0 && ix < is.w;
        ptrs[k++] = inside ? in + (static_cast<size_t>(iy) * is.w + ix) * is.c : pad;
      }
  return ptrs;
}

std::unique_ptr<Op> BuiltinEngine::make_conv(const Graph& g, const Layer& l) {
  const Shape& is = g.blobs[l.inputs[0]].shape;
  const Shape& os = g.blobs[l.outputs[0]].shape;
  const float* w = weights_of(g, l);
  const float* bias = bias_of(g, l);
  const size_t taps = static_cast<size_t>(l.kernel_h) * l.kernel_w;
  const size_t pixels = static_cast<size_t>(os.h) * os.w;
  const size_t cin_g = is.c / l.groups, cout_g = os.c / l.groups;
  const float* in = blob(l.inputs[0]);
  float* out = blob(l.outputs[0]);

  if (is_dwconv3x3(l, is, os, cfg_)) {
    auto op = std::make_unique<Dwconv3x3Op>();
    op->cfg = cfg_;
    op->packed = pack_dwconv(cfg_, os.c, taps, w, bias);
    op->rows.resize(static_cast<size_t>(os.h) * 3);
    for (int oy = 0; oy < os.h; ++oy)
      for (int ky = 0; ky < 3; ++ky) {
        const int iy = oy * l.stride_h - l.pad_top + ky;
        // zeros_ holds at least one zero row of the widest blob (see build()).
        op->rows[static_cast<size_t>(oy) * 3 + ky] =
            iy >= 0 && iy < is.h ? in + static_cast<size_t>(iy) * is.w * is.c : zeros_.data();
      }
    op->out = out;
    op->channels = os.c;
    op->out_h = os.h;
    op->out_w = os.w;
    op->in_w = is.w;
    op->stride = l.stride_w;
    op->pad_left = l.pad_left;
    op->params = minmax_of(l);
    op->post.init(l, cfg_, out, os.elements());
    return op;
  }
  if (cin_g == 1 && cout_g == 1) {  // depthwise
    auto op = std::make_unique<DwconvOp>();
    op->cfg = cfg_;
    op->packed = pack_dwconv(cfg_, os.c, taps, w, bias);
    op->indirection = tap_pointers(is, os, l, in, zeros_.data());
    op->zero = zeros_.data();
    op->out = out;
    op->channels = os.c;
    op->pixels = pixels;
    op->taps = taps;
    op->params = minmax_of(l);
    op->post.init(l, cfg_, out, os.elements());
    return op;
  }
  if (is_pointwise(l)) {
    auto op = std::make_unique<GemmOp>();
    op->cfg = cfg_;
    op->packed = pack_gemm(cfg_, os.c, is.c, w, bias);
    op->a = in;
    op->c = out;
    op->m = pixels;
    op->n = os.c;
    op->k = is.c;
    op->params = minmax_of(l);
    op->post.init(l, cfg_, out, os.elements());
    return op;
  }
  auto op = std::make_unique<IgemmOp>();
  op->cfg = cfg_;
  op->packed_group_floats =
      anomalens_pack_f32_igemm_oihw_w(1, cout_g, cin_g, taps, cfg_->igemm_nr, w, bias, nullptr);
  op->packed.resize(op->packed_group_floats * l.groups);
  for (int gi = 0; gi < l.groups; ++gi) {
    anomalens_pack_f32_igemm_oihw_w(1, cout_g, cin_g, taps, cfg_->igemm_nr,
                                    w + static_cast<size_t>(gi) * cout_g * cin_g * taps,
                                    bias ? bias + gi * cout_g : nullptr,
                                    op->packed.data() + gi * op->packed_group_floats);
  }
  op->indirection = tap_pointers(is, os, l, in, zeros_.data(), cfg_->igemm_mr);
  op->zero = zeros_.data();
  op->c = out;
  op->pixels = pixels;
  op->taps = taps;
  op->groups = l.groups;
  op->cin_g = cin_g;
  op->cout_g = cout_g;
  op->cout = os.c;
  op->params = minmax_of(l);
  op->post.init(l, cfg_, out, os.elements());
  return op;
}

std::unique_ptr<Op> BuiltinEngine::make_fused_block(const Graph& g, const FusedBlock& block) {
  const Layer& e = g.layers[block.expand];
  const Layer& d = g.layers[block.dw];
  const Shape& is = g.blobs[e.inputs[0]].shape;
  const Shape& xs = g.blobs[e.outputs[0]].shape;
  const Shape& os = g.blobs[d.outputs[0]].shape;
  auto op = std::make_unique<FusedBlockOp>();
  op->cfg = cfg_;
  op->expand_packed = pack_gemm(cfg_, xs.c, is.c, weights_of(g, e), bias_of(g, e));
  op->dw_packed = pack_dwconv(cfg_, os.c, 9, weights_of(g, d), bias_of(g, d));
  op->expand_params = minmax_of(e);
  op->dw_params = minmax_of(d);
  op->in = blob(e.inputs[0]);
  op->zero_row = zeros_.data();  // at least one zero row of the widest blob (see build())
  const Layer& last = g.layers[block.last()];
  op->out = blob(last.outputs[0]);
  op->cin = is.c;
  op->cexp = xs.c;
  op->in_h = xs.h;
  op->in_w = xs.w;
  op->out_h = os.h;
  op->out_w = os.w;
  op->stride = d.stride_h;
  op->pad_top = d.pad_top;
  op->pad_left = d.pad_left;
  // The depthwise kernel reads up to kExtraFloats past a row's last pixel.
  op->ring_row_floats = round_up(static_cast<size_t>(xs.w) * xs.c + kExtraFloats, kAlignFloats);
  op->scratch.resize(static_cast<size_t>(pool_.threads()));
  for (auto& t : op->scratch) t.ring.assign(3 * op->ring_row_floats, 0.f);
  if (block.project >= 0) {
    const Layer& p = last;
    op->cout = static_cast<size_t>(g.blobs[p.outputs[0]].shape.c);
    op->project_packed = pack_gemm(cfg_, op->cout, os.c, weights_of(g, p), bias_of(g, p));
    op->project_params = minmax_of(p);
    for (auto& t : op->scratch) t.dw_row.assign(static_cast<size_t>(os.w) * os.c + kExtraFloats, 0.f);
  }
  op->post.init(last, cfg_, op->out, g.blobs[last.outputs[0]].shape.elements());
  return op;
}

std::unique_ptr<Op> BuiltinEngine::make_pool(const Graph& g, const Layer& l) {
  const Shape& is = g.blobs[l.inputs[0]].shape;
  const Shape& os = g.blobs[l.outputs[0]].shape;
  auto op = std::make_unique<PoolOp>();
  op->cfg = cfg_;
  op->is_max = l.type == LayerType::kMaxPool;
  op->indirection = tap_pointers(is, os, l, blob(l.inputs[0]), op->is_max ? neg_inf_.data() : zeros_.data());
  op->out = blob(l.outputs[0]);
  op->channels = is.c;
  op->pixels = static_cast<size_t>(os.h) * os.w;
  op->taps = static_cast<size_t>(l.kernel_h) * l.kernel_w;
  if (!op->is_max) {
    op->multiplier.resize(op->pixels);
    for (int oy = 0; oy < os.h; ++oy)
      for (int ox = 0; ox < os.w; ++ox) {
        // Divisor: taps inside the image, or inside the padded extent with count_pad.
        const int lo_y = l.count_pad ? -l.pad_top : 0, hi_y = l.count_pad ? is.h + l.pad_bottom : is.h;
        const int lo_x = l.count_pad ? -l.pad_left : 0, hi_x = l.count_pad ? is.w + l.pad_right : is.w;
        const int y0 = oy * l.stride_h - l.pad_top, x0 = ox * l.stride_w - l.pad_left;
        const int ny = std::min(y0 + l.kernel_h, hi_y) - std::max(y0, lo_y);
        const int nx = std::min(x0 + l.kernel_w, hi_x) - std::max(x0, lo_x);
        op->multiplier[static_cast<size_t>(oy) * os.w + ox] = 1.f / static_cast<float>(std::max(ny * nx, 1));
      }
  }
  return op;
}

Status BuiltinEngine::build(const Graph& g) {
  const std::vector<FusedBlock> fused = blocks_to_fuse(g, cfg_);
  ANOMALENS_RETURN_IF_ERROR(plan_memory(g, fused));
  // Per layer: the fused block it ends (-1: none), and whether a later layer's op computes it.
  std::vector<int> ends_block(g.layers.size(), -1);
  std::vector<char> inside_block(g.layers.size(), 0);
  for (size_t f = 0; f < fused.size(); ++f) {
    ends_block[fused[f].last()] = static_cast<int>(f);
    for (size_t i = fused[f].expand; i < fused[f].last(); ++i) inside_block[i] = 1;
  }
  size_t widest = 0, widest_row = 0;
  for (const Blob& b : g.blobs) {
    widest = std::max(widest, static_cast<size_t>(b.shape.c));
    widest_row = std::max(widest_row, static_cast<size_t>(b.shape.w) * b.shape.c);
  }
  zeros_.assign(widest_row + kExtraFloats, 0.f);
  neg_inf_.assign(widest + kExtraFloats, -std::numeric_limits<float>::infinity());

  for (size_t li = 0; li < g.layers.size(); ++li) {
    const Layer& l = g.layers[li];
    if (l.type == LayerType::kInput) continue;
    if (inside_block[li]) continue;  // the block's op, at its last layer, computes it
    const bool ends_fused_block = ends_block[li] >= 0;
    const Shape& is = g.blobs[l.inputs[0]].shape;
    const Shape& os = g.blobs[l.outputs[0]].shape;
    const float* in = blob(l.inputs[0]);
    float* out = blob(l.outputs[0]);
    const size_t pixels = static_cast<size_t>(is.h) * is.w;
    std::unique_ptr<Op> op;
    switch (l.type) {
      case LayerType::kConv:
        op = ends_fused_block ? make_fused_block(g, fused[ends_block[li]]) : make_conv(g, l);
        break;
      case LayerType::kGemm: {
        // Weights are [n][k] in CHW order; the blob is HWC, so permute the columns once here.
        const std::vector<float>& w = g.tensors[l.weight].data;
        const size_t k = static_cast<size_t>(is.elements()), n = l.gemm_outputs;
        std::vector<float> w_hwc(w.size());
        for (size_t r = 0; r < n; ++r)
          for (size_t c = 0; c < static_cast<size_t>(is.c); ++c)
            for (size_t p = 0; p < pixels; ++p) w_hwc[r * k + p * is.c + c] = w[r * k + c * pixels + p];
        auto gemm = std::make_unique<GemmOp>();
        gemm->cfg = cfg_;
        gemm->packed = pack_gemm(cfg_, n, k, w_hwc.data(), bias_of(g, l));
        gemm->a = in;
        gemm->c = out;
        gemm->m = 1;
        gemm->n = n;
        gemm->k = k;
        gemm->params = minmax_of(l);
        gemm->post.init(l, cfg_, out, n);
        op = std::move(gemm);
        break;
      }
      case LayerType::kAdd:
      case LayerType::kMul: {
        const Shape& bs = g.blobs[l.inputs[1]].shape;
        if (l.type == LayerType::kMul && bs != is) {
          auto m = std::make_unique<ChannelScaleOp>();
          m->fn = cfg_->vmulc;
          m->x = in;
          m->scale = blob(l.inputs[1]);
          m->y = out;
          m->rows = pixels;
          m->channels = is.c;
          op = std::move(m);
          break;
        }
        auto b = std::make_unique<BinaryOp>();
        b->fn = l.type == LayerType::kAdd ? cfg_->vadd : cfg_->vmul;
        b->a = in;
        b->b = blob(l.inputs[1]);
        b->y = out;
        b->count = static_cast<size_t>(os.elements());
        b->params = minmax_of(l);
        b->post.init(l, cfg_, out, b->count);
        op = std::move(b);
        break;
      }
      case LayerType::kConcat: {
        auto c = std::make_unique<ConcatOp>();
        for (int b : l.inputs) c->parts.push_back({blob(b), static_cast<size_t>(g.blobs[b].shape.c)});
        c->out = out;
        c->pixels = pixels;
        c->out_channels = os.c;
        op = std::move(c);
        break;
      }
      case LayerType::kMaxPool:
      case LayerType::kAvgPool:
        op = make_pool(g, l);
        break;
      case LayerType::kGlobalAvgPool: {
        auto p = std::make_unique<GlobalAvgPoolOp>();
        p->cfg = cfg_;
        p->in = in;
        p->out = out;
        p->rows = pixels;
        p->channels = is.c;
        op = std::move(p);
        break;
      }
      case LayerType::kFlatten: {
        auto f = std::make_unique<FlattenOp>();
        f->in = in;
        f->out = out;
        f->pixels = pixels;
        f->channels = is.c;
        op = std::move(f);
        break;
      }
      case LayerType::kActivation: {
        auto a = std::make_unique<ActivationOp>();
        a->in = in;
        a->out = out;
        a->count = static_cast<size_t>(os.elements());
        a->params = minmax_of(l);
        if (l.act == Activation::kHardSwish) a->fn = cfg_->hswish;
        if (l.act == Activation::kSigmoid) a->fn = cfg_->sigmoid;
        op = std::move(a);
        break;
      }
      case LayerType::kSoftmax: {
        auto s = std::make_unique<SoftmaxOp>();
        s->in = in;
        s->out = out;
        s->pixels = pixels;
        s->channels = is.c;
        op = std::move(s);
        break;
      }
      case LayerType::kInput:
        break;
    }
    ops_.push_back(std::move(op));
#ifdef ANOMALENS_ENGINE_PROFILE
    if (ops_.size() == 1) builtin_engine_profile().clear();
    const Shape& ps = g.blobs[l.outputs[0]].shape;
    builtin_engine_profile().emplace_back(
        std::string(ends_fused_block ? "fused block ending in " : "") + layer_type_name(l.type) + " " + l.name + " k" + std::to_string(l.kernel_h) +
            " s" + std::to_string(l.stride_h) + " g" + std::to_string(l.groups) + " " +
            std::to_string(g.blobs[l.inputs[0]].shape.c) + "->" + std::to_string(ps.h) + "x" +
            std::to_string(ps.w) + "x" + std::to_string(ps.c),
        0.0);
#endif
  }
  input_ = blob(g.input_blob);
  input_count_ = static_cast<size_t>(g.blobs[g.input_blob].shape.elements());
  output_ = blob(g.output_blob);
  output_count_ = static_cast<size_t>(g.blobs[g.output_blob].shape.elements());
  return Status::Ok();
}

}  // namespace

int builtin_fused_expansions(const Graph& graph) {
  return static_cast<int>(blocks_to_fuse(graph, anomalens_kernel_config_get()).size());
}

Result<std::unique_ptr<Engine>> create_builtin_engine(const Graph& graph, int threads) {
  auto engine = std::make_unique<BuiltinEngine>(threads);
  ANOMALENS_RETURN_IF_ERROR(engine->build(graph));
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace anomalens

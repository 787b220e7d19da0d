// SPDX-License-Identifier: Apache-2.0
#include "oneclass/oneclass.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "classifier/metrics.h"
#include "model/float_array.h"

// Code that runs once per model (building, saving, parsing it) is compiled for size: it is
// about a tenth of the .wasm (tests/js/bundle_size.test.mjs), and no loop in it is hot.
#if defined(__clang__)
#define ANOMALENS_COLD __attribute__((minsize))
#else
#define ANOMALENS_COLD
#endif

namespace anomalens {
namespace {

constexpr char kMagic[4] = {'O', 'C', 'S', '1'};
constexpr size_t kHeaderBytes = 64;
// Running sums of the fit (doubles) may use at most this much memory.
constexpr size_t kMaxAccumulatorBytes = size_t{256} << 20;

Status invalid(const std::string& msg) { return Status(StatusCode::kInvalidModel, "oneclass section: " + msg); }

uint32_t get_u32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
void put_u64_at(std::vector<uint8_t>* b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) (*b)[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// Comma-separated fields of a meta value ("" gives none).
ANOMALENS_COLD std::vector<std::string> comma_fields(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (!text.empty() && at <= text.size()) {
    const size_t end = std::min(text.find(',', at), text.size());
    out.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

std::string ints(std::initializer_list<int> v) {
  std::string s;
  for (int x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

// One graph line (docs/FORMAT.md) for a validated layer; blob and tensor names from `g`.
ANOMALENS_COLD std::string graph_line(const Graph& g, const Layer& l) {
  std::string s = std::string(layer_type_name(l.type)) + " " + l.name + " " + std::to_string(l.inputs.size()) +
                  " " + std::to_string(l.outputs.size());
  for (int b : l.inputs) s += " " + g.blobs[b].name;
  for (int b : l.outputs) s += " " + g.blobs[b].name;
  auto act = [&]() {
    if (l.act == Activation::kNone) return;
    s += std::string(" act=") + activation_name(l.act);
    if (l.act == Activation::kClip) s += " clip=" + fmt(l.clip_min) + "," + fmt(l.clip_max);
  };
  switch (l.type) {
    case LayerType::kInput: {
      const Shape& o = g.blobs[l.outputs[0]].shape;
      s += " c=" + std::to_string(o.c) + " h=" + std::to_string(o.h) + " w=" + std::to_string(o.w);
      break;
    }
    case LayerType::kConv:
      s += " cout=" + std::to_string(l.out_channels) + " k=" + ints({l.kernel_h, l.kernel_w}) +
           " s=" + ints({l.stride_h, l.stride_w}) + " d=" + ints({l.dilation_h, l.dilation_w}) +
           " p=" + ints({l.pad_top, l.pad_left, l.pad_bottom, l.pad_right}) + " g=" + std::to_string(l.groups) +
           " w=" + g.tensors[l.weight].name;
      if (l.bias >= 0) s += " b=" + g.tensors[l.bias].name;
      act();
      break;
    case LayerType::kGemm:
      s += " n=" + std::to_string(l.gemm_outputs) + " w=" + g.tensors[l.weight].name;
      if (l.bias >= 0) s += " b=" + g.tensors[l.bias].name;
      act();
      break;
    case LayerType::kAdd:
    case LayerType::kActivation:
      act();
      break;
    case LayerType::kMaxPool:
    case LayerType::kAvgPool:
      s += " k=" + ints({l.kernel_h, l.kernel_w}) + " s=" + ints({l.stride_h, l.stride_w}) +
           " p=" + ints({l.pad_top, l.pad_left, l.pad_bottom, l.pad_right});
      if (l.type == LayerType::kAvgPool) s += std::string(" count_pad=") + (l.count_pad ? "1" : "0");
      break;
    default:
      break;
  }
  return s;
}

struct TensorOut {
  std::string name;
  std::vector<int> dims;
  const float* data;
  size_t count;
};

ANOMALENS_COLD std::vector<uint8_t> pack_alm(const std::string& meta, const std::string& graph, const std::vector<TensorOut>& tensors,
                              const std::vector<std::pair<std::string, std::vector<uint8_t>>>& extra) {
  std::string table;
  std::vector<uint8_t> weights;
  for (const TensorOut& t : tensors) {
    while (weights.size() % 64) weights.push_back(0);
    std::string d;
    for (int x : t.dims) d += (d.empty() ? "" : ",") + std::to_string(x);
    table += t.name + " f32 " + d + " " + std::to_string(weights.size()) + "\n";
    const size_t at = weights.size();
    weights.resize(at + t.count * 4);
    for (size_t i = 0; i < t.count; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &t.data[i], 4);
      for (int k = 0; k < 4; ++k) weights[at + 4 * i + k] = static_cast<uint8_t>(bits >> (8 * k));
    }
  }
  std::vector<std::pair<std::string, const std::vector<uint8_t>*>> sections;
  const std::vector<uint8_t> meta_b(meta.begin(), meta.end()), graph_b(graph.begin(), graph.end()),
      table_b(table.begin(), table.end());
  sections.push_back({"meta", &meta_b});
  sections.push_back({"graph", &graph_b});
  sections.push_back({"tensors", &table_b});
  sections.push_back({"weights", &weights});
  for (const auto& e : extra) sections.push_back({e.first, &e.second});
  std::vector<uint8_t> out(16 + 32 * sections.size(), 0);
  std::memcpy(out.data(), "ALM1", 4);
  out[4] = 1;
  out[8] = static_cast<uint8_t>(sections.size());
  for (size_t i = 0; i < sections.size(); ++i) {
    while (out.size() % 64) out.push_back(0);
    const size_t e = 16 + 32 * i;
    std::memcpy(out.data() + e, sections[i].first.data(), std::min<size_t>(16, sections[i].first.size()));
    put_u64_at(&out, e + 16, out.size());
    put_u64_at(&out, e + 24, sections[i].second->size());
    out.insert(out.end(), sections[i].second->begin(), sections[i].second->end());
  }
  return out;
}

ANOMALENS_COLD std::string meta_text(const ModelMeta& meta) {
  std::string s;
  for (const auto& kv : meta.entries) s += kv.first + "=" + kv.second + "\n";
  return s;
}

float reduce_map(const float* map, size_t n, OneClassReduce how, std::vector<float>* scratch) {
  if (how == OneClassReduce::kMax || n == 0) {
    float m = 0;
    for (size_t i = 0; i < n; ++i) m = std::max(m, map[i]);
    return m;
  }
  const size_t k = std::max<size_t>(1, n / 100);
  scratch->assign(map, map + n);
  std::nth_element(scratch->begin(), scratch->begin() + (n - k), scratch->end());
  double s = 0;
  for (size_t i = n - k; i < n; ++i) s += (*scratch)[i];
  return static_cast<float>(s / k);
}

}  // namespace

// ---- section ------------------------------------------------------------------------------

float OneClassParams::score(float distance) const {
  // Logistic in log-distance: score = 1 / (1 + (threshold / d)^(1/scale)). Saturates
  // polynomially, so far-apart distances keep distinct scores (ROC AUC survives in floats).
  if (!(distance > 0)) return distance != distance ? 1.f : 0.f;
  const double z = (std::log(static_cast<double>(distance)) - std::log(static_cast<double>(threshold))) / scale;
  return static_cast<float>(1.0 / (1.0 + std::exp(-z)));
}

ANOMALENS_COLD Result<OneClassParams> parse_oneclass_section(const uint8_t* data, size_t size, const Shape& features) {
  if (size < kHeaderBytes) return invalid(std::to_string(size) + " bytes, shorter than its 64-byte header");
  if (std::memcmp(data, kMagic, 4) != 0) return invalid("bad magic, expected \"OCS1\"");
  OneClassParams p;
  p.method = get_u32(data + 4);
  if (p.method != 1) {
    return Status(StatusCode::kUnsupported, "oneclass section: method " + std::to_string(p.method) +
                                                " unknown (this build knows 1, per-location Gaussian)");
  }
  const uint32_t gh = get_u32(data + 8), gw = get_u32(data + 12), dim = get_u32(data + 16);
  if (gh != static_cast<uint32_t>(features.h) || gw != static_cast<uint32_t>(features.w) ||
      dim != static_cast<uint32_t>(features.c)) {
    return invalid("grid " + std::to_string(gw) + "x" + std::to_string(gh) + " with " + std::to_string(dim) +
                   " features does not match the graph output (" + std::to_string(features.c) + "," +
                   std::to_string(features.h) + "," + std::to_string(features.w) + ")");
  }
  p.grid_h = features.h;
  p.grid_w = features.w;
  p.dim = features.c;
  const uint32_t reduce = get_u32(data + 20);
  if (reduce > 1) return invalid("reduce " + std::to_string(reduce) + " must be 0 (max) or 1 (top 1% mean)");
  p.reduce = static_cast<OneClassReduce>(reduce);
  p.threshold = read_le_f32(data + 24);
  p.scale = read_le_f32(data + 28);
  if (!std::isfinite(p.threshold) || !(p.threshold > 0)) return invalid("threshold must be a positive number");
  if (!std::isfinite(p.scale) || !(p.scale > 0)) return invalid("scale must be a positive number");
  p.fit_images = get_u32(data + 32);
  p.smooth = read_le_f32(data + 36);  // zero in files written before it existed
  if (!std::isfinite(p.smooth) || p.smooth < 0 || p.smooth > kMaxSmooth) {
    return invalid("smoothing sigma must be in [0, 8] grid cells");
  }
  const uint32_t storage = get_u32(data + 40);  // zero in files written before it existed: f32
  if (storage > 1) return invalid("storage " + std::to_string(storage) + " must be 0 (f32) or 1 (f16)");
  p.storage = storage == 1 ? FloatStorage::kF16 : FloatStorage::kF32;
  const size_t width = stored_bytes(p.storage);
  const uint64_t values = uint64_t{p.locations()} * (uint64_t{static_cast<uint32_t>(p.dim)} + p.tri());
  if (values > (uint64_t{1} << 28) || (size - kHeaderBytes) / width != values || (size - kHeaderBytes) % width != 0) {
    return invalid(std::to_string(size) + " bytes, expected 64 + " + std::to_string(width) + " x " +
                   std::to_string(values) + " (mean and whitening per location)");
  }
  p.mean.resize(p.locations() * p.dim);
  p.whiten.resize(p.locations() * p.tri());
  const uint8_t* q = data + kHeaderBytes;
  size_t index = 0;  // of the first value in dst, for the message
  for (std::vector<float>* dst : {&p.mean, &p.whiten}) {
    const int64_t bad = read_finite_floats(q, p.storage, dst->size(), dst->data());
    if (bad >= 0) return invalid("value " + std::to_string(index + static_cast<size_t>(bad)) + " is not finite");
    q += width * dst->size();
    index += dst->size();
  }
  return p;
}

ANOMALENS_COLD std::vector<uint8_t> serialize_oneclass_section(const OneClassParams& p) {
  const size_t width = stored_bytes(p.storage);
  std::vector<uint8_t> b(kHeaderBytes + width * (p.mean.size() + p.whiten.size()), 0);
  uint8_t* q = b.data();
  auto u32 = [&q](uint32_t v) {
    for (int i = 0; i < 4; ++i) *q++ = static_cast<uint8_t>(v >> (8 * i));
  };
  auto f32 = [&u32](float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    u32(bits);
  };
  for (char c : kMagic) *q++ = static_cast<uint8_t>(c);
  u32(p.method);
  u32(static_cast<uint32_t>(p.grid_h));
  u32(static_cast<uint32_t>(p.grid_w));
  u32(static_cast<uint32_t>(p.dim));
  u32(static_cast<uint32_t>(p.reduce));
  f32(p.threshold);
  f32(p.scale);
  u32(p.fit_images);
  f32(p.smooth);
  u32(p.storage == FloatStorage::kF16 ? 1 : 0);
  q = b.data() + kHeaderBytes;
  for (const std::vector<float>* values : {&p.mean, &p.whiten}) {
    for (float v : *values) {
      if (p.storage == FloatStorage::kF32) {
        f32(v);
      } else {
        const uint16_t h = float_to_half(v);
        *q++ = static_cast<uint8_t>(h);
        *q++ = static_cast<uint8_t>(h >> 8);
      }
    }
  }
  return b;
}

float oneclass_distance_map(const OneClassParams& p, const float* x, float* map, std::vector<float>* scratch) {
  const int d = p.dim;
  scratch->resize(static_cast<size_t>(d));
  float* v = scratch->data();
  for (size_t l = 0; l < p.locations(); ++l) {
    const float* mu = &p.mean[l * d];
    const float* f = x + l * d;
    for (int i = 0; i < d; ++i) v[i] = f[i] - mu[i];
    const float* w = &p.whiten[l * p.tri()];
    double sq = 0;
    for (int i = 0; i < d; ++i) {
      float z = 0;
      for (int j = 0; j <= i; ++j) z += w[j] * v[j];
      w += i + 1;
      sq += double{z} * z;
    }
    map[l] = static_cast<float>(std::sqrt(sq));
  }
  smooth_map(map, p.grid_w, p.grid_h, p.smooth);
  std::vector<float> tmp;
  return reduce_map(map, p.locations(), p.reduce, &tmp);
}

void smooth_map(float* map, int w, int h, float sigma) {
  if (!(sigma > 0) || w < 1 || h < 1) return;
  const int r = std::max(1, static_cast<int>(std::lround(3.0 * sigma)));
  std::vector<float> k(2 * r + 1);
  double total = 0;
  for (int i = -r; i <= r; ++i) total += k[i + r] = static_cast<float>(std::exp(-0.5 * i * i / (double{sigma} * sigma)));
  for (float& v : k) v = static_cast<float>(v / total);
  std::vector<float> tmp(static_cast<size_t>(w) * h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      double a = 0;
      for (int i = -r; i <= r; ++i) a += k[i + r] * map[y * w + std::min(std::max(x + i, 0), w - 1)];
      tmp[y * w + x] = static_cast<float>(a);
    }
  }
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      double a = 0;
      for (int i = -r; i <= r; ++i) a += k[i + r] * tmp[std::min(std::max(y + i, 0), h - 1) * w + x];
      map[y * w + x] = static_cast<float>(a);
    }
  }
}

void upsample_anomaly_map(const float* grid, int gw, int gh, const ModelMeta& meta, int width, int height,
                          std::vector<float>* out) {
  out->assign(static_cast<size_t>(width) * height, 0.f);
  if (gw < 1 || gh < 1 || width < 1 || height < 1) return;
  // Source window of the image the network saw (docs/FORMAT.md, preprocessing step 3).
  double x0 = 0, y0 = 0, win_w = width, win_h = height;
  if (meta.resize == ResizePolicy::kCenterCrop) {
    const double dw = meta.input_width, dh = meta.input_height;
    if (double{1} * width * dh > double{1} * height * dw) {
      win_w = height * dw / dh;
      x0 = (width - win_w) / 2;
    } else {
      win_h = width * dh / dw;
      y0 = (height - win_h) / 2;
    }
  }
  // Grid cell i covers [i, i+1) / g of the window; its value sits at its centre.
  std::vector<int> xi0(width), xi1(width);
  std::vector<float> xf(width);
  for (int x = 0; x < width; ++x) {
    double u = (x + 0.5 - x0) / win_w * gw - 0.5;
    u = std::min(std::max(u, 0.0), gw - 1.0);
    xi0[x] = static_cast<int>(u);
    xi1[x] = std::min(xi0[x] + 1, gw - 1);
    xf[x] = static_cast<float>(u - xi0[x]);
  }
  for (int y = 0; y < height; ++y) {
    double v = (y + 0.5 - y0) / win_h * gh - 0.5;
    v = std::min(std::max(v, 0.0), gh - 1.0);
    const int r0 = static_cast<int>(v), r1 = std::min(r0 + 1, gh - 1);
    const float fy = static_cast<float>(v - r0);
    const float* a = grid + static_cast<size_t>(r0) * gw;
    const float* b = grid + static_cast<size_t>(r1) * gw;
    float* o = out->data() + static_cast<size_t>(y) * width;
    for (int x = 0; x < width; ++x) {
      const float top = a[xi0[x]] + (a[xi1[x]] - a[xi0[x]]) * xf[x];
      const float bot = b[xi0[x]] + (b[xi1[x]] - b[xi0[x]]) * xf[x];
      o[x] = top + (bot - top) * fy;
    }
  }
}

// ---- models -------------------------------------------------------------------------------

void set_meta(ModelMeta* meta, const std::string& key, const std::string& value) {
  for (auto& kv : meta->entries) {
    if (kv.first == key) {
      kv.second = value;
      return;
    }
  }
  meta->entries.emplace_back(key, value);
}

ANOMALENS_COLD std::vector<uint8_t> write_alm(const Model& model,
                               const std::vector<std::pair<std::string, std::vector<uint8_t>>>& extra) {
  const Graph& g = model.graph;
  std::string graph;
  std::vector<bool> used(g.tensors.size(), false);
  for (const Layer& l : g.layers) {
    graph += graph_line(g, l) + "\n";
    if (l.weight >= 0) used[l.weight] = true;
    if (l.bias >= 0) used[l.bias] = true;
  }
  std::vector<TensorOut> tensors;
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    if (used[i]) tensors.push_back({g.tensors[i].name, g.tensors[i].dims, g.tensors[i].data.data(), g.tensors[i].data.size()});
  }
  return pack_alm(meta_text(model.meta), graph, tensors, extra);
}

ANOMALENS_COLD Result<Model> make_feature_model(const Model& base, const FeatureSpec& spec) {
  if (base.meta.output == OutputKind::kOneClass && base.meta.find("oneclass.layers")) {
    Model m = base;
    m.oneclass_section.clear();
    return m;
  }
  const Graph& g = base.graph;
  const Shape in = g.blobs[g.input_blob].shape;
  // A backbone may name its feature maps and a projection size (features.layers /
  // features.projection, scripts/oneclass_backbone.py).
  std::vector<std::string> layers = spec.layers;
  int projection_size = spec.projection;
  if (const std::string* v = base.meta.find("features.layers"); v && layers.empty()) layers = comma_fields(*v);
  if (projection_size < 0) {
    projection_size = kDefaultProjection;
    if (const std::string* v = base.meta.find("features.projection")) {
      char* end = nullptr;
      const long d = std::strtol(v->c_str(), &end, 10);
      if (v->empty() || *end != '\0' || d < 0 || d > kMaxProjection) {
        return Status(StatusCode::kInvalidModel, "meta features.projection=" + *v + ": expected 0.." +
                                                     std::to_string(kMaxProjection));
      }
      projection_size = static_cast<int>(d);
    }
  }
  std::vector<int> picked;
  if (!layers.empty()) {
    for (const std::string& name : layers) {
      const int b = g.find_blob(name);
      if (b < 0) {
        // Imported graphs name a layer and its output differently (ONNX: "mixed2/Concat" writes
        // "mixed2/Concat_output_0"): point at the blob the user most likely meant.
        std::string hint = "; `anomalens inspect` lists the layers";
        for (const Layer& l : g.layers) {
          if (l.name == name && !l.outputs.empty()) {
            hint = "; layer \"" + name + "\" writes blob \"" + g.blobs[l.outputs[0]].name + "\"";
            break;
          }
        }
        return Status(StatusCode::kInvalidArgument,
                      "feature layer \"" + name + "\" is not a blob of the base graph" + hint);
      }
      if (g.blobs[b].shape.h < 2 && g.blobs[b].shape.w < 2) {
        return Status(StatusCode::kInvalidArgument, "feature layer \"" + name + "\" is not a spatial feature map");
      }
      picked.push_back(b);
    }
  } else {
    for (int stride : {4, 8, 16}) {
      const int want_h = (in.h + stride - 1) / stride, want_w = (in.w + stride - 1) / stride;
      int last = -1;
      for (size_t b = 1; b < g.blobs.size(); ++b) {
        if (g.blobs[b].shape.h == want_h && g.blobs[b].shape.w == want_w) last = static_cast<int>(b);
      }
      if (last >= 0) picked.push_back(last);
    }
    if (picked.empty()) {
      return Status(StatusCode::kInvalidArgument, "no feature map at 1/4, 1/8 or 1/16 of the input found in \"" +
                                                      base.meta.name + "\"; name blobs with --layers");
    }
  }
  // The coarsest grid; finer maps are average-pooled onto it by an integer factor.
  int grid_h = 1 << 30, grid_w = 1 << 30;
  for (int b : picked) {
    grid_h = std::min(grid_h, g.blobs[b].shape.h);
    grid_w = std::min(grid_w, g.blobs[b].shape.w);
  }
  // Layers the picked blobs depend on.
  std::vector<bool> need(g.layers.size(), false);
  std::vector<int> todo;
  for (int b : picked) todo.push_back(g.blobs[b].producer);
  while (!todo.empty()) {
    const int li = todo.back();
    todo.pop_back();
    if (li < 0 || need[li]) continue;
    need[li] = true;
    for (int b : g.layers[li].inputs) todo.push_back(g.blobs[b].producer);
  }
  std::string graph;
  std::vector<TensorOut> tensors;
  std::set<int> tensor_done;
  for (size_t i = 0; i < g.layers.size(); ++i) {
    if (!need[i]) continue;
    const Layer& l = g.layers[i];
    graph += graph_line(g, l) + "\n";
    for (int t : {l.weight, l.bias}) {
      if (t >= 0 && tensor_done.insert(t).second) {
        tensors.push_back({g.tensors[t].name, g.tensors[t].dims, g.tensors[t].data.data(), g.tensors[t].data.size()});
      }
    }
  }
  std::string concat_inputs;
  int channels = 0;
  for (size_t k = 0; k < picked.size(); ++k) {
    const Blob& b = g.blobs[picked[k]];
    const std::string tag = "oneclass_f" + std::to_string(k);
    // 3x3 neighbourhood average (padding not counted), then pooling to the grid.
    graph += "AvgPool " + tag + "_smooth 1 1 " + b.name + " " + tag + "_smooth k=3,3 s=1,1 p=1,1,1,1 count_pad=0\n";
    std::string out = tag + "_smooth";
    const int fh = b.shape.h / grid_h, fw = b.shape.w / grid_w;
    if (b.shape.h != fh * grid_h || b.shape.w != fw * grid_w) {
      return Status(StatusCode::kInvalidArgument, "feature layer \"" + b.name + "\" (" + std::to_string(b.shape.w) + "x" +
                                                      std::to_string(b.shape.h) + ") is not a whole multiple of the " +
                                                      std::to_string(grid_w) + "x" + std::to_string(grid_h) + " grid");
    }
    if (fh > 64 || fw > 64) return Status(StatusCode::kInvalidArgument, "feature layer \"" + b.name + "\" is too fine for the grid");
    if (fh > 1 || fw > 1) {
      graph += std::string(spec.max_pool ? "MaxPool " : "AvgPool ") + tag + "_pool 1 1 " + out + " " + tag +
               "_pool k=" + ints({fh, fw}) + " s=" + ints({fh, fw}) + "\n";
      out = tag + "_pool";
    }
    concat_inputs += " " + out;
    channels += b.shape.c;
  }
  std::string features = concat_inputs.substr(1);
  if (picked.size() > 1) {
    graph += "Concat oneclass_concat " + std::to_string(picked.size()) + " 1" + concat_inputs + " oneclass_concat\n";
    features = "oneclass_concat";
  }
  std::vector<float> projection;
  if (projection_size > 0 && projection_size < channels) {
    // Fixed random projection, +-1/sqrt(P) (Achlioptas): portable (mt19937 bits only).
    std::mt19937 rng(spec.seed);
    const float a = 1.f / std::sqrt(static_cast<float>(projection_size));
    projection.resize(static_cast<size_t>(projection_size) * channels);
    for (float& w : projection) w = (rng() & 1u) ? a : -a;
    tensors.push_back({"oneclass_projection.weight", {projection_size, channels, 1, 1}, projection.data(), projection.size()});
    graph += "Conv oneclass_projection 1 1 " + features + " oneclass_features cout=" + std::to_string(projection_size) +
             " k=1,1 w=oneclass_projection.weight\n";
  }
  ModelMeta meta = base.meta;
  std::vector<std::pair<std::string, std::string>> kept;
  for (const auto& kv : meta.entries) {
    // The base's scores, metrics and test-time flips belong to its own head, not to features.
    if (kv.first.rfind("metric.", 0) == 0 || kv.first.rfind("oneclass.", 0) == 0 || kv.first == "test_time_flips") {
      continue;
    }
    kept.push_back(kv);
  }
  meta.entries = kept;
  std::string layer_names;
  for (int b : picked) layer_names += (layer_names.empty() ? "" : ",") + g.blobs[b].name;
  set_meta(&meta, "labels", "normal,abnormal");
  set_meta(&meta, "output", "oneclass");
  set_meta(&meta, "threshold", "0.5");
  set_meta(&meta, "task", "one-class anomaly detection");
  set_meta(&meta, "backbone", base.meta.name);
  set_meta(&meta, "oneclass.layers", layer_names);
  set_meta(&meta, "oneclass.projection", std::to_string(projection.empty() ? 0 : projection_size));
  set_meta(&meta, "oneclass.pool", spec.max_pool ? "max" : "avg");
  const std::vector<uint8_t> bytes = pack_alm(meta_text(meta), graph, tensors, {});
  Result<Model> m = load_model(bytes.data(), bytes.size());
  if (!m.ok()) return Status(m.status().code(), "building the feature graph: " + m.status().message());
  return m;
}

// ---- fitting ------------------------------------------------------------------------------

bool parse_oneclass_augment(const std::string& text, uint32_t* flags) {
  uint32_t f = 0;
  if (text == "none") {
    *flags = 0;
    return true;
  }
  if (text == "flips") {
    *flags = kAugmentHFlip | kAugmentVFlip | kAugmentRot180;
    return true;
  }
  size_t at = 0;
  while (at <= text.size()) {
    const size_t end = std::min(text.find(',', at), text.size());
    const std::string w = text.substr(at, end - at);
    if (w == "hflip") f |= kAugmentHFlip;
    else if (w == "vflip") f |= kAugmentVFlip;
    else if (w == "rot180") f |= kAugmentRot180;
    else return false;
    at = end + 1;
  }
  *flags = f;
  return true;
}

std::string oneclass_augment_name(uint32_t flags) {
  std::string s;
  if (flags & kAugmentHFlip) s += "hflip";
  if (flags & kAugmentVFlip) s += std::string(s.empty() ? "" : ",") + "vflip";
  if (flags & kAugmentRot180) s += std::string(s.empty() ? "" : ",") + "rot180";
  return s.empty() ? "none" : s;
}

OneClassFitter::OneClassFitter(Model features, const FitOptions& options, Backend backend)
    : model_(std::move(features)), backend_(backend), options_(options) {}

Status OneClassFitter::init() {
  if (model_.meta.output != OutputKind::kOneClass) {
    return Status(StatusCode::kInvalidArgument, "fitting needs a feature model (output=oneclass), got \"" + model_.meta.name + "\"");
  }
  if (options_.augment & ~uint32_t{kAugmentHFlip | kAugmentVFlip | kAugmentRot180}) {
    return Status(StatusCode::kInvalidArgument, "unknown augmentation flags " + std::to_string(options_.augment));
  }
  if (!(options_.smooth >= 0 && options_.smooth <= 8)) {
    return Status(StatusCode::kInvalidArgument, "map smoothing sigma " + fmt(options_.smooth) + " must be in [0, 8]");
  }
  if (!(options_.shrinkage >= 0 && options_.shrinkage <= 100)) {
    return Status(StatusCode::kInvalidArgument, "shrinkage " + fmt(options_.shrinkage) + " must be in [0, 100]");
  }
  if (!(options_.ridge >= 0 && options_.ridge <= kMaxShrinkage)) {
    return Status(StatusCode::kInvalidArgument, "ridge " + fmt(options_.ridge) + " must be in [0, 100]");
  }
  if (!(options_.fpr >= 0 && options_.fpr < 1)) {
    return Status(StatusCode::kInvalidArgument, "target false-positive rate " + fmt(options_.fpr) + " must be in [0, 1)");
  }
  const Shape& out = model_.graph.blobs[model_.graph.output_blob].shape;
  grid_h_ = out.h;
  grid_w_ = out.w;
  dim_ = out.c;
  const size_t locations = static_cast<size_t>(grid_h_) * grid_w_;
  const size_t tri = static_cast<size_t>(dim_) * (dim_ + 1) / 2;
  if (locations * (tri + dim_) * sizeof(double) > kMaxAccumulatorBytes) {
    return Status(StatusCode::kOutOfMemory, "feature map (" + std::to_string(dim_) + "," + std::to_string(grid_h_) + "," +
                                                std::to_string(grid_w_) + ") needs more than 256 MiB of Gaussian "
                                                "statistics; use fewer features (a projection)");
  }
  EngineOptions engine_options;
  engine_options.threads = options_.threads;
  Result<std::unique_ptr<Engine>> e = create_engine(model_.graph, backend_, engine_options);
  if (!e.ok()) return e.status();
  engine_ = std::move(e).value();
  input_.resize(static_cast<size_t>(model_.meta.input_width) * model_.meta.input_height * model_.meta.channel_count());
  sum_.assign(locations * dim_, 0.0);
  sum_sq_.assign(locations * tri, 0.0);
  return Status::Ok();
}

Status OneClassFitter::features_of(const Image& image, const float** out) {
  if (!engine_) return Status(StatusCode::kInvalidArgument, "OneClassFitter::init() was not called");
  if (finished_) return Status(StatusCode::kInvalidArgument, "the fit is finished; start a new fitter");
  pre_.run(image, model_.meta, input_.data());
  ANOMALENS_RETURN_IF_ERROR(engine_->run(input_.data()));
  *out = engine_->output();
  return Status::Ok();
}

void OneClassFitter::keep(std::vector<std::vector<float>>* kept, int* seen, const float* f, int max_kept) {
  const size_t n = static_cast<size_t>(grid_h_) * grid_w_ * dim_;
  ++*seen;
  if (max_kept <= 0) return;
  if (static_cast<int>(kept->size()) < max_kept) {
    kept->emplace_back(f, f + n);
    return;
  }
  const int r = static_cast<int>(rng_() % static_cast<uint32_t>(*seen));  // reservoir sampling
  if (r < max_kept) (*kept)[r].assign(f, f + n);
}

Status OneClassFitter::add_normal(const Image& image) {
  const float* f = nullptr;
  ANOMALENS_RETURN_IF_ERROR(features_of(image, &f));
  const int index = normal_seen_++;
  // Images 1, 1 + k, 1 + 2k, ... are held out: two images already give one of each.
  const int k = std::max(options_.holdout_every, 0);
  if (k > 0 && index % k == 1 % k && !(k == 1 && index == 0)) {
    keep(&holdout_, &holdout_seen_, f, options_.max_kept);
    return Status::Ok();
  }
  accumulate(f);
  ++fit_count_;
  // Fit-time augmentation: the flipped input is another normal image (features in its frame).
  const int w = model_.meta.input_width, h = model_.meta.input_height, c = model_.meta.channel_count();
  uint32_t applied = 0;  // flips currently applied to input_ (h = 1, v = 2)
  for (uint32_t a : {uint32_t{kAugmentHFlip}, uint32_t{kAugmentVFlip}, uint32_t{kAugmentRot180}}) {
    if (!(options_.augment & a)) continue;
    const uint32_t want = a == kAugmentHFlip ? 1u : a == kAugmentVFlip ? 2u : 3u;
    const uint32_t change = want ^ applied;
    flip_hwc(input_.data(), w, h, c, change & 1u, change & 2u);
    applied = want;
    ANOMALENS_RETURN_IF_ERROR(engine_->run(input_.data()));
    accumulate(engine_->output());
  }
  return Status::Ok();
}

void OneClassFitter::accumulate(const float* f) {
  const size_t tri = static_cast<size_t>(dim_) * (dim_ + 1) / 2;
  for (size_t l = 0; l < static_cast<size_t>(grid_h_) * grid_w_; ++l) {
    const float* x = f + l * dim_;
    double* s = &sum_[l * dim_];
    double* q = &sum_sq_[l * tri];
    for (int i = 0; i < dim_; ++i) {
      s[i] += x[i];
      const double xi = x[i];
      for (int j = 0; j <= i; ++j) *q++ += xi * x[j];
    }
  }
  ++fit_samples_;
}

Status OneClassFitter::add_abnormal(const Image& image) {
  const float* f = nullptr;
  ANOMALENS_RETURN_IF_ERROR(features_of(image, &f));
  keep(&abnormal_, &abnormal_seen_, f, options_.max_kept);
  return Status::Ok();
}

ANOMALENS_COLD FprThreshold choose_fpr_threshold(std::vector<float> d, double fpr) {
  FprThreshold out;
  if (d.empty()) return out;
  std::sort(d.begin(), d.end());
  const size_t n = d.size();
  const auto just_above = [](float v) { return std::nextafter(v * 1.0001f + 1e-12f, INFINITY); };
  // Conformal: just above the k-th largest, an exchangeable unseen normal image is flagged only
  // when it ranks among the top k of the n + 1, with probability k / (n + 1) <= fpr.
  const double k_allowed = std::floor(fpr * static_cast<double>(n + 1) + 1e-9);
  if (k_allowed >= 1) {
    out.distance = just_above(d[n - std::min(n, static_cast<size_t>(k_allowed))]);
    return out;
  }
  out.distance = just_above(d[n - 1]);
  if (!(fpr > 0) || n < 2) return out;
  // Prediction bound of a normal fitted to d^(2/3): mean + t(1 - fpr, n - 1) * sd * sqrt(1 + 1/n).
  // A squared Mahalanobis distance is roughly chi-square, whose cube root is close to normal
  // (Wilson-Hilferty): so d^(2/3). Measured on ELPV (docs/ONECLASS.md): a log-normal was
  // far too cautious (left-skewed in log space), d itself a little lax.
  const auto transformed = [](float v) { return std::cbrt(static_cast<double>(v) * v); };
  double mean = 0, var = 0;
  for (float v : d) mean += transformed(v);
  mean /= static_cast<double>(n);
  for (float v : d) var += (transformed(v) - mean) * (transformed(v) - mean);
  var /= static_cast<double>(n - 1);
  const double q = student_t_upper_quantile(std::min(fpr, 0.5), static_cast<int>(n - 1));
  const double y = mean + q * std::sqrt(var * (1 + 1.0 / static_cast<double>(n)));
  const double bound = y * std::sqrt(y);  // y^1.5 (std::pow would add about 5 KB to the .wasm)
  if (std::isfinite(bound) && bound > out.distance && bound < 3.0e38) out.distance = static_cast<float>(bound);
  out.extrapolated = true;
  return out;
}

Result<FitSummary> OneClassFitter::finish() {
  if (!engine_) return Status(StatusCode::kInvalidArgument, "OneClassFitter::init() was not called");
  if (finished_) return Status(StatusCode::kInvalidArgument, "finish() was already called");
  if (fit_count_ < 1 || holdout_.empty()) {
    return Status(StatusCode::kInvalidArgument, "need at least 2 normal images (got " + std::to_string(normal_seen_) + ")");
  }
  OneClassParams p;
  p.grid_h = grid_h_;
  p.grid_w = grid_w_;
  p.dim = dim_;
  p.reduce = options_.reduce;
  p.smooth = options_.smooth;
  p.fit_images = static_cast<uint32_t>(fit_count_);
  const size_t L = p.locations(), D = static_cast<size_t>(dim_), tri = p.tri();
  p.mean.resize(L * D);
  p.whiten.resize(L * tri);
  std::vector<double> cov(D * D), chol(D * D), inv(D * D);
  const double n = fit_samples_;
  // The global ridge's unit: trace/D averaged over all locations.
  double mean_variance = 0;
  for (size_t l = 0; l < L; ++l) {
    const double* s = &sum_[l * D];
    const double* q = &sum_sq_[l * tri];
    for (size_t i = 0; i < D; ++i) mean_variance += q[(i + 1) * (i + 2) / 2 - 1] / n - (s[i] / n) * (s[i] / n);
  }
  mean_variance = std::max(mean_variance, 0.0) / static_cast<double>(L * D);
  for (size_t l = 0; l < L; ++l) {
    const double* s = &sum_[l * D];
    const double* q = &sum_sq_[l * tri];
    double trace = 0;
    for (size_t i = 0, t = 0; i < D; ++i) {
      for (size_t j = 0; j <= i; ++j, ++t) {
        const double c = q[t] / n - (s[i] / n) * (s[j] / n);
        cov[i * D + j] = cov[j * D + i] = c;
      }
      trace += cov[i * D + i];
    }
    const double reg = options_.shrinkage * std::max(trace, 0.0) / D + options_.ridge * mean_variance + 1e-6;
    for (size_t i = 0; i < D; ++i) cov[i * D + i] += reg;
    // Cholesky cov = C C^T (lower C); then whitening W = C^-1: d^2 = |W (x - mean)|^2.
    std::fill(chol.begin(), chol.end(), 0.0);
    for (size_t i = 0; i < D; ++i) {
      for (size_t j = 0; j <= i; ++j) {
        double v = cov[i * D + j];
        for (size_t k = 0; k < j; ++k) v -= chol[i * D + k] * chol[j * D + k];
        if (i == j) {
          chol[i * D + i] = std::sqrt(std::max(v, reg * 1e-3));
        } else {
          chol[i * D + j] = v / chol[j * D + j];
        }
      }
    }
    std::fill(inv.begin(), inv.end(), 0.0);
    for (size_t i = 0; i < D; ++i) {
      inv[i * D + i] = 1.0 / chol[i * D + i];
      for (size_t j = 0; j < i; ++j) {
        double v = 0;
        for (size_t k = j; k < i; ++k) v += chol[i * D + k] * inv[k * D + j];
        inv[i * D + j] = -v / chol[i * D + i];
      }
    }
    for (size_t i = 0; i < D; ++i) p.mean[l * D + i] = static_cast<float>(s[i] / n);
    float* w = &p.whiten[l * tri];
    for (size_t i = 0; i < D; ++i) {
      for (size_t j = 0; j <= i; ++j) *w++ = static_cast<float>(inv[i * D + j]);
    }
  }
  // Stored as halves if asked and every value fits; then the threshold below is chosen with the
  // rounded values, exactly as the saved model will score.
  p.storage = FloatStorage::kF32;
  if (options_.storage == FloatStorage::kF16) {
    const auto fits = [](const std::vector<float>& v) {
      return std::all_of(v.begin(), v.end(), [](float x) { return std::fabs(x) < kHalfOverflow; });
    };
    if (fits(p.mean) && fits(p.whiten)) {
      p.storage = FloatStorage::kF16;
      for (std::vector<float>* values : {&p.mean, &p.whiten}) {
        for (float& v : *values) v = half_to_float(float_to_half(v));
      }
    }
  }
  // Distances of the kept held-out normal and abnormal images.
  std::vector<float> map(L), scratch, normal_d, abnormal_d;
  for (const auto& f : holdout_) normal_d.push_back(oneclass_distance_map(p, f.data(), map.data(), &scratch));
  for (const auto& f : abnormal_) abnormal_d.push_back(oneclass_distance_map(p, f.data(), map.data(), &scratch));
  std::vector<float> sorted = normal_d;
  std::sort(sorted.begin(), sorted.end());
  const size_t nh = sorted.size();
  const FprThreshold fpr_threshold = choose_fpr_threshold(normal_d, options_.fpr);
  float t = fpr_threshold.distance;
  FitSummary sum;
  sum.threshold_extrapolated = fpr_threshold.extrapolated;
  if (!abnormal_d.empty()) {
    // Best F1 over candidate thresholds (each observed distance, and the FPR one).
    std::vector<float> cand = abnormal_d;
    cand.insert(cand.end(), normal_d.begin(), normal_d.end());
    cand.push_back(t);
    const auto f1_at = [&](float c) {
      size_t tp = 0, fp = 0;
      for (float a : abnormal_d) tp += a >= c;
      for (float v : normal_d) fp += v >= c;
      // Held-out normals stand for all normal images: weigh them by their share.
      const double fp_w = fp * (static_cast<double>(normal_seen_) / std::max<size_t>(nh, 1));
      const double tp_w = tp * (static_cast<double>(abnormal_seen_) / abnormal_d.size());
      const double fn_w = static_cast<double>(abnormal_seen_) - tp_w;
      return tp_w > 0 ? 2 * tp_w / (2 * tp_w + fp_w + fn_w) : 0.0;
    };
    double best = -1;
    float lo = t, hi = t;  // smallest and largest candidate reaching the best F1
    for (float c : cand) {
      const double f1 = f1_at(c);
      if (f1 > best + 1e-12) {
        best = f1;
        lo = hi = c;
      } else if (std::fabs(f1 - best) <= 1e-12) {
        lo = std::min(lo, c);
        hi = std::max(hi, c);
      }
    }
    // Every threshold in [lo, hi] may score the same on these few examples; the edges sit on an
    // example (an abnormal image just below `hi` would be missed). Take the middle of the range
    // (geometric: distances grow multiplicatively), if it scores as well; else the top.
    float best_t = hi;
    if (lo > 0 && hi > lo) {
      const float mid = static_cast<float>(std::sqrt(static_cast<double>(lo) * hi));
      if (std::fabs(f1_at(mid) - best) <= 1e-12) best_t = mid;
    }
    sum.refined_by_f1 = best_t != t;
    if (sum.refined_by_f1) sum.threshold_extrapolated = false;
    t = best_t;
    size_t tp = 0, pairs_gt = 0, pairs_eq = 0;
    for (float a : abnormal_d) {
      tp += a >= t;
      for (float v : normal_d) {
        pairs_gt += a > v;
        pairs_eq += a == v;
      }
    }
    sum.abnormal_recall = static_cast<double>(tp) / abnormal_d.size();
    sum.f1 = best;
    sum.roc_auc = (pairs_gt + 0.5 * pairs_eq) / (static_cast<double>(abnormal_d.size()) * nh);
  }
  if (!(t > 0)) t = 1e-6f;
  p.threshold = t;
  // Scale: the median held-out normal distance scores 0.1 (log-logistic), so scores spread.
  const float median = sorted[nh / 2];
  double scale = median > 0 && median < t ? (std::log(double{t}) - std::log(double{median})) / std::log(9.0) : 0.1;
  if (!(scale > 1e-4)) scale = 1e-4;
  p.scale = static_cast<float>(scale);
  size_t fp = 0;
  for (float v : normal_d) fp += v >= t;

  section_ = serialize_oneclass_section(p);
  model_.oneclass_section = section_;
  set_meta(&model_.meta, "output", "oneclass");
  set_meta(&model_.meta, "threshold", "0.5");
  set_meta(&model_.meta, "oneclass.method", "gaussian");
  set_meta(&model_.meta, "oneclass.fit_images", std::to_string(fit_count_));
  set_meta(&model_.meta, "oneclass.augment", oneclass_augment_name(options_.augment));
  set_meta(&model_.meta, "oneclass.shrinkage", fmt(options_.shrinkage));
  set_meta(&model_.meta, "oneclass.ridge", fmt(options_.ridge));
  set_meta(&model_.meta, "oneclass.storage", p.storage == FloatStorage::kF16 ? "f16" : "f32");
  char sigma[32];
  std::snprintf(sigma, sizeof sigma, "%g", static_cast<double>(options_.smooth));  // float: 0.7, not 0.699999988
  set_meta(&model_.meta, "oneclass.smooth", sigma);
  set_meta(&model_.meta, "oneclass.holdout_images", std::to_string(holdout_seen_));
  set_meta(&model_.meta, "oneclass.abnormal_images", std::to_string(abnormal_seen_));
  set_meta(&model_.meta, "oneclass.target_fpr", fmt(options_.fpr));
  set_meta(&model_.meta, "oneclass.threshold_distance", fmt(t));
  finished_ = true;

  sum.fit_images = fit_count_;
  sum.holdout_images = holdout_seen_;
  sum.abnormal_images = abnormal_seen_;
  sum.threshold = t;
  sum.scale = p.scale;
  sum.holdout_fpr = static_cast<double>(fp) / nh;
  sum.storage = p.storage;
  sum.model_bytes = model_bytes().size();
  const size_t kept_floats = (holdout_.size() + abnormal_.size()) * L * D;
  sum.peak_fit_bytes = (sum_.size() + sum_sq_.size()) * sizeof(double) + kept_floats * sizeof(float) +
                       3 * D * D * sizeof(double) + section_.size();
  return sum;
}

std::vector<uint8_t> OneClassFitter::model_bytes() const {
  if (!finished_) return {};
  return write_alm(model_, {{"oneclass", section_}});
}

}  // namespace anomalens

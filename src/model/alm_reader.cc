// SPDX-License-Identifier: Apache-2.0
// .alm reader: parses and validates every byte before anything is sized from the file.
// Format: docs/FORMAT.md. Order of checks: header -> section table -> meta -> tensors (table,
// bounds, values) -> graph (syntax, references, shapes) -> meta/graph agreement.
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "model/float_array.h"
#include "model/model.h"
#include "oneclass/oneclass.h"

namespace anomalens {
namespace {

constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxSections = 16;
constexpr int kMaxDim = 65536;
constexpr int64_t kMaxBlobElements = int64_t{1} << 28;
constexpr int64_t kMaxWeightBytes = int64_t{512} << 20;
constexpr size_t kMaxLayers = 4096;
constexpr size_t kMaxTensors = 65536;
constexpr int kMaxKernel = 64;
// All blobs together (an upper bound of the engines' activation memory): 256 MiB of floats.
constexpr int64_t kMaxTotalBlobElements = int64_t{1} << 26;

Status invalid(const std::string& msg) { return Status(StatusCode::kInvalidModel, msg); }

uint32_t read_u32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
uint64_t read_u64(const uint8_t* p) { return uint64_t{read_u32(p)} | uint64_t{read_u32(p + 4)} << 32; }

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(ch);
    }
  }
  out.push_back(cur);
  return out;
}

// Tokens separated by runs of C-locale whitespace. (Not std::istringstream: iostreams pull the
// locale machinery into the wasm bundle, about 50 KB.)
std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    const size_t start = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i > start) out.emplace_back(s, start, i - start);
  }
  return out;
}

// Text lines with '\r' stripped; blank lines and '#' comments are kept as empty strings so
// that line numbers stay true.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines = split(text, '\n');
  for (std::string& l : lines) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    if (!l.empty() && l[0] == '#') l.clear();
  }
  return lines;
}

bool parse_int(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

bool parse_float(const std::string& s, float* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || *end != '\0' || !std::isfinite(v)) return false;
  *out = static_cast<float>(v);
  return std::isfinite(*out);
}

bool parse_floats(const std::string& s, std::vector<float>* out) {
  out->clear();
  for (const std::string& part : split(s, ',')) {
    float v;
    if (!parse_float(part, &v)) return false;
    out->push_back(v);
  }
  return true;
}

struct Section {
  uint64_t offset = 0, size = 0;
};

// ---- meta -------------------------------------------------------------------------------

Status parse_meta(const std::string& text, ModelMeta* meta) {
  std::set<std::string> seen;
  std::vector<std::string> lines = lines_of(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos || eq == 0) {
      return invalid("meta line " + std::to_string(i + 1) + ": expected key=value, got \"" +
                     line.substr(0, 60) + "\"");
    }
    std::string key = line.substr(0, eq);
    if (!seen.insert(key).second) {
      return invalid("meta line " + std::to_string(i + 1) + ": key \"" + key + "\" repeated");
    }
    meta->entries.emplace_back(key, line.substr(eq + 1));
  }

  auto require = [&](const char* key, const std::string** value) -> Status {
    *value = meta->find(key);
    if (!*value) return invalid(std::string("meta: required key \"") + key + "\" missing");
    return Status::Ok();
  };
  auto bad = [](const char* key, const std::string& value, const char* rule) {
    return invalid(std::string("meta: ") + key + "=" + value.substr(0, 60) + ": " + rule);
  };
  const std::string* v = nullptr;

  ANOMALENS_RETURN_IF_ERROR(require("name", &v));
  meta->name = *v;

  ANOMALENS_RETURN_IF_ERROR(require("labels", &v));
  meta->labels = split(*v, ',');
  if (meta->labels.size() != 2 || meta->labels[0].empty() || meta->labels[1].empty()) {
    return bad("labels", *v, "must be two non-empty names, normal class first");
  }

  ANOMALENS_RETURN_IF_ERROR(require("input_size", &v));
  {
    std::vector<std::string> wh = split(*v, 'x');
    int64_t w = 0, h = 0;
    if (wh.size() != 2 || !parse_int(wh[0], &w) || !parse_int(wh[1], &h) || w < 1 || h < 1 ||
        w > kMaxDim || h > kMaxDim) {
      return bad("input_size", *v, "must be WxH with 1 <= W, H <= 65536");
    }
    meta->input_width = static_cast<int>(w);
    meta->input_height = static_cast<int>(h);
  }

  ANOMALENS_RETURN_IF_ERROR(require("channels", &v));
  if (*v == "rgb") meta->channels = ChannelOrder::kRgb;
  else if (*v == "bgr") meta->channels = ChannelOrder::kBgr;
  else if (*v == "gray") meta->channels = ChannelOrder::kGray;
  else return bad("channels", *v, "must be rgb, bgr or gray");

  ANOMALENS_RETURN_IF_ERROR(require("scale", &v));
  if (!parse_float(*v, &meta->scale) || !(meta->scale > 0)) {
    return bad("scale", *v, "must be a positive number");
  }

  const size_t nc = static_cast<size_t>(meta->channel_count());
  std::vector<float> values;
  ANOMALENS_RETURN_IF_ERROR(require("mean", &v));
  if (!parse_floats(*v, &values) || values.size() != nc) {
    return bad("mean", *v, "must list one number per network channel");
  }
  for (size_t c = 0; c < nc; ++c) meta->mean[c] = values[c];
  ANOMALENS_RETURN_IF_ERROR(require("std", &v));
  if (!parse_floats(*v, &values) || values.size() != nc) {
    return bad("std", *v, "must list one number per network channel");
  }
  for (size_t c = 0; c < nc; ++c) {
    if (!(std::fabs(values[c]) > 1e-12f)) return bad("std", *v, "must not be zero");
    meta->std[c] = values[c];
  }

  ANOMALENS_RETURN_IF_ERROR(require("resize", &v));
  if (*v == "stretch") meta->resize = ResizePolicy::kStretch;
  else if (*v == "center_crop") meta->resize = ResizePolicy::kCenterCrop;
  else return bad("resize", *v, "must be stretch or center_crop");

  ANOMALENS_RETURN_IF_ERROR(require("output", &v));
  if (*v == "softmax") meta->output = OutputKind::kSoftmax;
  else if (*v == "probabilities") meta->output = OutputKind::kProbabilities;
  else if (*v == "sigmoid") meta->output = OutputKind::kSigmoid;
  else if (*v == "oneclass") meta->output = OutputKind::kOneClass;
  else return bad("output", *v, "must be softmax, probabilities, sigmoid or oneclass");

  ANOMALENS_RETURN_IF_ERROR(require("threshold", &v));
  if (!parse_float(*v, &meta->threshold) || meta->threshold < 0 || meta->threshold > 1) {
    return bad("threshold", *v, "must be a number in [0, 1]");
  }

  if ((v = meta->find("test_time_flips"))) {
    meta->test_time_flips.clear();
    for (const std::string& name : split(*v, ',')) {
      Flip f;
      if (name == "none") f = Flip::kNone;
      else if (name == "h") f = Flip::kHorizontal;
      else if (name == "v") f = Flip::kVertical;
      else if (name == "hv") f = Flip::kBoth;
      else return bad("test_time_flips", *v, "entries must be none, h, v or hv");
      for (Flip seen_flip : meta->test_time_flips) {
        if (seen_flip == f) return bad("test_time_flips", *v, "an entry is repeated");
      }
      meta->test_time_flips.push_back(f);
    }
    // The flips average a supervised P(abnormal); a one-class score is a maximum distance
    // with its own threshold and map, which the flips would not keep aligned.
    if (meta->output == OutputKind::kOneClass &&
        (meta->test_time_flips.size() != 1 || meta->test_time_flips[0] != Flip::kNone)) {
      return bad("test_time_flips", *v, "only supervised models (not output=oneclass) average flips");
    }
  }
  return Status::Ok();
}

// ---- tensors ------------------------------------------------------------------------------

Status parse_tensors(const std::string& text, const uint8_t* weights, uint64_t weights_size,
                     std::vector<WeightTensor>* tensors) {
  std::set<std::string> names;
  int64_t total_bytes = 0;
  std::vector<std::string> lines = lines_of(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const std::string where = "tensors line " + std::to_string(i + 1);
    std::vector<std::string> tok = split_ws(lines[i]);
    if (tok.size() != 4) return invalid(where + ": expected \"name dtype dims offset\"");
    if (tensors->size() >= kMaxTensors) return invalid(where + ": more than 65536 tensors");
    const std::string& name = tok[0];
    if (!names.insert(name).second) return invalid(where + ": tensor \"" + name + "\" repeated");
    FloatStorage storage;
    if (tok[1] == "f32") storage = FloatStorage::kF32;
    else if (tok[1] == "f16") storage = FloatStorage::kF16;
    else return Status(StatusCode::kUnsupported, where + ": dtype \"" + tok[1] + "\" (known: f32, f16)");

    WeightTensor t;
    t.name = name;
    int64_t count = 1;
    for (const std::string& d : split(tok[2], ',')) {
      int64_t dim;
      if (!parse_int(d, &dim) || dim < 1 || dim > kMaxBlobElements) {
        return invalid(where + ": tensor \"" + name + "\" dimension \"" + d +
                       "\" must be an integer in 1..2^28");
      }
      count *= dim;
      if (count > kMaxBlobElements) return invalid(where + ": tensor \"" + name + "\" has more than 2^28 elements");
      t.dims.push_back(static_cast<int>(dim));
    }
    if (t.dims.size() > 4) return invalid(where + ": tensor \"" + name + "\" has more than 4 dims");
    int64_t offset;
    if (!parse_int(tok[3], &offset) || offset < 0) {
      return invalid(where + ": offset \"" + tok[3] + "\" must be a non-negative integer");
    }
    if (offset % 16 != 0) {
      return invalid(where + ": tensor \"" + name + "\" offset " + tok[3] + " is not a multiple of 16");
    }
    const int64_t bytes = count * static_cast<int64_t>(stored_bytes(storage));
    if (static_cast<uint64_t>(offset) > weights_size ||
        static_cast<uint64_t>(bytes) > weights_size - static_cast<uint64_t>(offset)) {
      return invalid(where + ": tensor \"" + name + "\" [" + tok[3] + ", +" + std::to_string(bytes) +
                     ") lies outside the weights section of " + std::to_string(weights_size) + " bytes");
    }
    total_bytes += count * 4;
    if (total_bytes > kMaxWeightBytes) return invalid(where + ": weights exceed 512 MiB");

    t.data.resize(static_cast<size_t>(count));
    const int64_t bad = read_finite_floats(weights + offset, storage, t.data.size(), t.data.data());
    if (bad >= 0) {
      return invalid(where + ": tensor \"" + name + "\" element " + std::to_string(bad) + " is " +
                     (std::isnan(t.data[static_cast<size_t>(bad)]) ? "NaN" : "infinite") +
                     ", weights must be finite");
    }
    tensors->push_back(std::move(t));
  }
  return Status::Ok();
}

// ---- graph --------------------------------------------------------------------------------

struct LayerParser {
  Graph* graph;
  std::map<std::string, int> tensor_index;
  std::map<std::string, int> blob_index;

  std::string where;  // "layer "name" (line N)"

  Status fail(const std::string& msg) const { return invalid(where + ": " + msg); }

  Status int_list(const std::map<std::string, std::string>& kv, const char* key, size_t n,
                  int lo, int hi, int* out, const int* defaults) {
    auto it = kv.find(key);
    if (it == kv.end()) {
      for (size_t i = 0; i < n; ++i) out[i] = defaults[i];
      return Status::Ok();
    }
    std::vector<std::string> parts = split(it->second, ',');
    if (parts.size() != n) {
      return fail(std::string(key) + "=" + it->second + ": expected " + std::to_string(n) + " integers");
    }
    for (size_t i = 0; i < n; ++i) {
      int64_t v;
      if (!parse_int(parts[i], &v) || v < lo || v > hi) {
        return fail(std::string(key) + "=" + it->second + ": each value must be in " +
                    std::to_string(lo) + ".." + std::to_string(hi));
      }
      out[i] = static_cast<int>(v);
    }
    return Status::Ok();
  }

  Status tensor(const std::map<std::string, std::string>& kv, const char* key, bool required,
                const std::vector<int>& expected_dims, int* out) {
    auto it = kv.find(key);
    if (it == kv.end()) {
      if (required) return fail(std::string("missing ") + key + "= tensor");
      *out = -1;
      return Status::Ok();
    }
    auto t = tensor_index.find(it->second);
    if (t == tensor_index.end()) return fail("tensor \"" + it->second + "\" not in the tensors section");
    const WeightTensor& w = graph->tensors[t->second];
    int64_t have = 1, want = 1;
    for (int d : w.dims) have *= d;
    for (int d : expected_dims) want *= d;
    // Trailing/leading 1s may be dropped by writers (e.g. bias [C] vs [C,1,1]); compare counts
    // and, when ranks match, every dimension.
    bool same = have == want;
    if (same && w.dims.size() == expected_dims.size()) {
      for (size_t i = 0; i < w.dims.size(); ++i) same = same && w.dims[i] == expected_dims[i];
    }
    if (!same) {
      std::string want_s, have_s;
      for (int d : expected_dims) want_s += (want_s.empty() ? "" : ",") + std::to_string(d);
      for (int d : w.dims) have_s += (have_s.empty() ? "" : ",") + std::to_string(d);
      return fail(std::string(key) + "=" + it->second + " has shape [" + have_s + "], expected [" + want_s + "]");
    }
    *out = t->second;
    return Status::Ok();
  }

  Status activation(const std::map<std::string, std::string>& kv, Layer* layer) {
    auto it = kv.find("act");
    if (it == kv.end()) return Status::Ok();
    const std::string& a = it->second;
    if (a == "none") layer->act = Activation::kNone;
    else if (a == "relu") layer->act = Activation::kRelu;
    else if (a == "relu6") layer->act = Activation::kRelu6;
    else if (a == "hardswish") layer->act = Activation::kHardSwish;
    else if (a == "sigmoid") layer->act = Activation::kSigmoid;
    else if (a == "clip") layer->act = Activation::kClip;
    else return Status(StatusCode::kUnsupported, where + ": unknown activation \"" + a + "\"");
    if (layer->act == Activation::kClip) {
      auto c = kv.find("clip");
      std::vector<float> lohi;
      if (c == kv.end() || !parse_floats(c->second, &lohi) || lohi.size() != 2 || !(lohi[0] < lohi[1])) {
        return fail("act=clip needs clip=lo,hi with lo < hi");
      }
      layer->clip_min = lohi[0];
      layer->clip_max = lohi[1];
    }
    return Status::Ok();
  }

  // Output extent of a sliding window; fails when no window fits.
  Status window_out(int in, int pad_a, int pad_b, int k, int s, int d, const char* axis, int* out) {
    const int64_t span = int64_t{in} + pad_a + pad_b - int64_t{d} * (k - 1) - 1;
    if (span < 0) {
      return fail(std::string("kernel does not fit the ") + axis + " extent " + std::to_string(in) +
                  " (with padding " + std::to_string(pad_a) + "+" + std::to_string(pad_b) + ")");
    }
    *out = static_cast<int>(span / s + 1);
    return Status::Ok();
  }

  Status parse(const std::vector<std::string>& tok, int line_no, Layer* layer, Shape* out_shape) {
    // Type name n_in n_out inputs... outputs... key=value...
    if (tok.size() < 4) return invalid("graph line " + std::to_string(line_no) + ": expected \"Type name n_in n_out ...\"");
    layer->name = tok[1];
    layer->line = line_no;
    where = "layer \"" + layer->name + "\" (line " + std::to_string(line_no) + ")";
    const std::string& type = tok[0];
    static const std::map<std::string, LayerType> kTypes = {
        {"Input", LayerType::kInput}, {"Conv", LayerType::kConv}, {"Gemm", LayerType::kGemm},
        {"Add", LayerType::kAdd}, {"Mul", LayerType::kMul}, {"Concat", LayerType::kConcat},
        {"MaxPool", LayerType::kMaxPool}, {"AvgPool", LayerType::kAvgPool},
        {"GlobalAvgPool", LayerType::kGlobalAvgPool}, {"Flatten", LayerType::kFlatten},
        {"Activation", LayerType::kActivation}, {"Softmax", LayerType::kSoftmax}};
    auto ty = kTypes.find(type);
    if (ty == kTypes.end()) {
      return Status(StatusCode::kUnsupported, where + ": unknown layer type \"" + type + "\"");
    }
    layer->type = ty->second;
    int64_t n_in, n_out;
    if (!parse_int(tok[2], &n_in) || !parse_int(tok[3], &n_out) || n_in < 0 || n_in > 64 || n_out != 1) {
      return fail("input count must be 0..64 and output count 1");
    }
    if (tok.size() < 4 + static_cast<size_t>(n_in + n_out)) return fail("fewer blob names than counts");
    std::vector<Shape> in_shapes;
    for (int64_t i = 0; i < n_in; ++i) {
      const std::string& b = tok[4 + i];
      auto it = blob_index.find(b);
      if (it == blob_index.end()) return fail("input blob \"" + b + "\" is not produced by an earlier layer");
      layer->inputs.push_back(it->second);
      in_shapes.push_back(graph->blobs[it->second].shape);
    }
    const std::string& out_name = tok[4 + n_in];
    if (blob_index.count(out_name)) return fail("output blob \"" + out_name + "\" already exists");

    std::map<std::string, std::string> kv;
    for (size_t i = 4 + static_cast<size_t>(n_in + n_out); i < tok.size(); ++i) {
      size_t eq = tok[i].find('=');
      if (eq == std::string::npos || eq == 0) return fail("expected key=value, got \"" + tok[i] + "\"");
      if (!kv.emplace(tok[i].substr(0, eq), tok[i].substr(eq + 1)).second) {
        return fail("parameter \"" + tok[i].substr(0, eq) + "\" repeated");
      }
    }
    static const std::map<LayerType, std::set<std::string>> kKeys = {
        {LayerType::kInput, {"c", "h", "w"}},
        {LayerType::kConv, {"cout", "k", "s", "d", "p", "g", "w", "b", "act", "clip"}},
        {LayerType::kGemm, {"n", "w", "b", "act", "clip"}},
        {LayerType::kAdd, {"act", "clip"}},
        {LayerType::kMul, {}},
        {LayerType::kConcat, {}},
        {LayerType::kMaxPool, {"k", "s", "p"}},
        {LayerType::kAvgPool, {"k", "s", "p", "count_pad"}},
        {LayerType::kGlobalAvgPool, {}},
        {LayerType::kFlatten, {}},
        {LayerType::kActivation, {"act", "clip"}},
        {LayerType::kSoftmax, {}}};
    for (const auto& p : kv) {
      if (!kKeys.at(layer->type).count(p.first)) {
        return fail("unknown parameter \"" + p.first + "\" for " + type);
      }
    }
    static const std::map<LayerType, int> kInputs = {
        {LayerType::kInput, 0}, {LayerType::kConv, 1}, {LayerType::kGemm, 1}, {LayerType::kAdd, 2},
        {LayerType::kMul, 2}, {LayerType::kConcat, -1}, {LayerType::kMaxPool, 1},
        {LayerType::kAvgPool, 1}, {LayerType::kGlobalAvgPool, 1}, {LayerType::kFlatten, 1},
        {LayerType::kActivation, 1}, {LayerType::kSoftmax, 1}};
    const int want_in = kInputs.at(layer->type);
    if (want_in >= 0 && n_in != want_in) {
      return fail(type + " takes " + std::to_string(want_in) + " input(s), got " + std::to_string(n_in));
    }
    if (want_in < 0 && n_in < 2) return fail("Concat takes at least 2 inputs");

    ANOMALENS_RETURN_IF_ERROR(activation(kv, layer));
    if (layer->act != Activation::kNone && layer->type != LayerType::kConv &&
        layer->type != LayerType::kGemm && layer->type != LayerType::kAdd &&
        layer->type != LayerType::kActivation) {
      return fail("act= is not allowed on " + type);
    }

    Shape out;
    switch (layer->type) {
      case LayerType::kInput: {
        int chw[3];
        for (const char* key : {"c", "h", "w"}) {
          if (!kv.count(key)) return fail(std::string("missing ") + key + "=");
        }
        const int one = 1;
        ANOMALENS_RETURN_IF_ERROR(int_list(kv, "c", 1, 1, kMaxDim, &chw[0], &one));
        ANOMALENS_RETURN_IF_ERROR(int_list(kv, "h", 1, 1, kMaxDim, &chw[1], &one));
        ANOMALENS_RETURN_IF_ERROR(int_list(kv, "w", 1, 1, kMaxDim, &chw[2], &one));
        out = Shape{chw[0], chw[1], chw[2]};
        break;
      }
      case LayerType::kConv: {
        const Shape& in = in_shapes[0];
        const int one = 1, ones[2] = {1, 1}, zeros[4] = {0, 0, 0, 0};
        if (!kv.count("cout") || !kv.count("k")) return fail("Conv needs cout= and k=");
        ANOMALENS_RETURN_IF_ERROR(int_list(kv, "cout", 1, 1, kMaxDim, &layer->out_channels, &one));
        int k[2], s[2], d[2], p[4];
        ANOMALENS_RETURN_IF_ERROR(int_list(kv, "k", 2, 1, kMaxKernel, k, ones));
        ANOMALENS_RETURN_IF_ERROR(int_list(kv, "s", 2, 1, kMaxKernel, s, ones));
        ANOMALENS_RETURN_IF_ERROR(int_list(kv, "d", 2, 1, kMaxKernel, d, ones));
        ANOMALENS_RETURN_IF_ERROR(int_list(kv, "p", 4, 0, 1024, p, zeros));
        ANOMALENS_RETURN_IF_ERROR(int_list(kv, "g", 1, 1, kMaxDim, &layer->groups, &one));
        layer->kernel_h = k[0]; layer->kernel_w = k[1];
        layer->stride_h = s[0]; layer->stride_w = s[1];
        layer->dilation_h = d[0]; layer->dilation_w = d[1];
        layer->pad_top = p[0]; layer->pad_left = p[1]; layer->pad_bottom = p[2]; layer->pad_right = p[3];
        if (in.c % layer->groups != 0 || layer->out_channels % layer->groups != 0) {
          return fail("groups " + std::to_string(layer->groups) + " must divide input channels " +
                      std::to_string(in.c) + " and cout " + std::to_string(layer->out_channels));
        }
        ANOMALENS_RETURN_IF_ERROR(tensor(kv, "w", true,
            {layer->out_channels, in.c / layer->groups, k[0], k[1]}, &layer->weight));
        ANOMALENS_RETURN_IF_ERROR(tensor(kv, "b", false, {layer->out_channels}, &layer->bias));
        out.c = layer->out_channels;
        ANOMALENS_RETURN_IF_ERROR(window_out(in.h, p[0], p[2], k[0], s[0], d[0], "height", &out.h));
        ANOMALENS_RETURN_IF_ERROR(window_out(in.w, p[1], p[3], k[1], s[1], d[1], "width", &out.w));
        break;
      }
      case LayerType::kGemm: {
        const int one = 1;
        if (!kv.count("n")) return fail("Gemm needs n=");
        ANOMALENS_RETURN_IF_ERROR(int_list(kv, "n", 1, 1, kMaxDim, &layer->gemm_outputs, &one));
        const int64_t k = in_shapes[0].elements();
        if (k > kMaxDim * 64) return fail("Gemm input of " + std::to_string(k) + " elements is too large");
        ANOMALENS_RETURN_IF_ERROR(tensor(kv, "w", true, {layer->gemm_outputs, static_cast<int>(k)}, &layer->weight));
        ANOMALENS_RETURN_IF_ERROR(tensor(kv, "b", false, {layer->gemm_outputs}, &layer->bias));
        out = Shape{layer->gemm_outputs, 1, 1};
        break;
      }
      case LayerType::kAdd:
        if (in_shapes[0] != in_shapes[1]) return fail("Add inputs have different shapes");
        out = in_shapes[0];
        break;
      case LayerType::kMul: {
        const Shape& a = in_shapes[0];
        const Shape& b = in_shapes[1];
        if (a != b && !(b.c == a.c && b.h == 1 && b.w == 1)) {
          return fail("Mul's second input must have the first's shape or (C,1,1)");
        }
        out = a;
        break;
      }
      case LayerType::kConcat: {
        out = in_shapes[0];
        out.c = 0;
        for (const Shape& s : in_shapes) {
          if (s.h != in_shapes[0].h || s.w != in_shapes[0].w) return fail("Concat inputs differ in height or width");
          out.c += s.c;
        }
        if (out.c > kMaxDim) return fail("Concat output has more than 65536 channels");
        break;
      }
      case LayerType::kMaxPool:
      case LayerType::kAvgPool: {
        const Shape& in = in_shapes[0];
        const int zeros[4] = {0, 0, 0, 0}, ones[2] = {1, 1};
        if (!kv.count("k")) return fail("pooling needs k=");
        int k[2], s[2], p[4];
        ANOMALENS_RETURN_IF_ERROR(int_list(kv, "k", 2, 1, kMaxKernel, k, ones));
        ANOMALENS_RETURN_IF_ERROR(int_list(kv, "s", 2, 1, kMaxKernel, s, k));
        ANOMALENS_RETURN_IF_ERROR(int_list(kv, "p", 4, 0, kMaxKernel - 1, p, zeros));
        if (p[0] >= k[0] || p[2] >= k[0] || p[1] >= k[1] || p[3] >= k[1]) {
          return fail("pooling padding must be smaller than the kernel");
        }
        layer->kernel_h = k[0]; layer->kernel_w = k[1];
        layer->stride_h = s[0]; layer->stride_w = s[1];
        layer->pad_top = p[0]; layer->pad_left = p[1]; layer->pad_bottom = p[2]; layer->pad_right = p[3];
        if (kv.count("count_pad")) {
          int cp;
          const int zero = 0;
          ANOMALENS_RETURN_IF_ERROR(int_list(kv, "count_pad", 1, 0, 1, &cp, &zero));
          layer->count_pad = cp == 1;
        }
        out.c = in.c;
        ANOMALENS_RETURN_IF_ERROR(window_out(in.h, p[0], p[2], k[0], s[0], 1, "height", &out.h));
        ANOMALENS_RETURN_IF_ERROR(window_out(in.w, p[1], p[3], k[1], s[1], 1, "width", &out.w));
        break;
      }
      case LayerType::kGlobalAvgPool:
        out = Shape{in_shapes[0].c, 1, 1};
        break;
      case LayerType::kFlatten:
        if (in_shapes[0].elements() > kMaxDim * 64) return fail("Flatten output too large");
        out = Shape{static_cast<int>(in_shapes[0].elements()), 1, 1};
        break;
      case LayerType::kActivation:
        if (!kv.count("act")) return fail("Activation needs act=");
        out = in_shapes[0];
        break;
      case LayerType::kSoftmax:
        if (in_shapes[0].h != 1 || in_shapes[0].w != 1) return fail("Softmax needs a (C,1,1) input");
        out = in_shapes[0];
        break;
    }
    if (out.elements() > kMaxBlobElements) {
      return fail("output blob \"" + out_name + "\" would hold " + std::to_string(out.elements()) +
                  " values, more than 2^28");
    }
    *out_shape = out;
    return Status::Ok();
  }
};

Status parse_graph(const std::string& text, Graph* graph) {
  LayerParser parser;
  parser.graph = graph;
  for (size_t i = 0; i < graph->tensors.size(); ++i) parser.tensor_index[graph->tensors[i].name] = static_cast<int>(i);

  std::vector<std::string> lines = lines_of(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<std::string> tok = split_ws(lines[i]);
    if (tok.empty()) continue;
    if (graph->layers.size() >= kMaxLayers) return invalid("graph: more than 4096 layers");
    Layer layer;
    Shape shape;
    ANOMALENS_RETURN_IF_ERROR(parser.parse(tok, static_cast<int>(i + 1), &layer, &shape));
    const bool is_input = layer.type == LayerType::kInput;
    if (is_input != graph->layers.empty()) {
      return invalid(parser.where + ": the first layer, and only it, must be Input");
    }
    const int layer_index = static_cast<int>(graph->layers.size());
    for (int b : layer.inputs) graph->blobs[b].consumers.push_back(layer_index);
    Blob blob;
    blob.name = tok[4 + layer.inputs.size()];
    blob.shape = shape;
    blob.producer = layer_index;
    const int blob_index = static_cast<int>(graph->blobs.size());
    parser.blob_index[blob.name] = blob_index;
    graph->blobs.push_back(blob);
    layer.outputs.push_back(blob_index);
    graph->layers.push_back(std::move(layer));
  }
  if (graph->layers.size() < 2) return invalid("graph: needs an Input layer and at least one more");
  int64_t total = 0;
  for (const Blob& b : graph->blobs) total += b.shape.elements();
  if (total > kMaxTotalBlobElements) {
    return invalid("graph: activations total " + std::to_string(total) + " values (" +
                   std::to_string(total * 4 >> 20) + " MiB), above the budget of 2^26 values (256 MiB)");
  }
  graph->input_blob = 0;
  std::vector<std::string> unconsumed;
  for (size_t b = 0; b < graph->blobs.size(); ++b) {
    if (graph->blobs[b].consumers.empty()) {
      unconsumed.push_back(graph->blobs[b].name);
      graph->output_blob = static_cast<int>(b);
    }
  }
  if (unconsumed.size() != 1) {
    std::string names;
    for (const std::string& n : unconsumed) names += " \"" + n + "\"";
    return invalid("graph: exactly one blob may be left unconsumed (the output), found" + names);
  }
  return Status::Ok();
}

}  // namespace

Result<Model> load_model(const uint8_t* data, size_t size) {
  if (data == nullptr || size < 16) {
    return invalid("file is " + std::to_string(size) + " bytes, shorter than the 16-byte header");
  }
  if (std::memcmp(data, "ALM1", 4) != 0) return invalid("bad magic: not an .alm model file");
  const uint32_t version = read_u32(data + 4);
  if (version != kVersion) {
    return Status(version > kVersion ? StatusCode::kUnsupported : StatusCode::kInvalidModel,
                  "format version " + std::to_string(version) + ", this build reads version 1");
  }
  const uint32_t count = read_u32(data + 8);
  if (count < 1 || count > kMaxSections) {
    return invalid("section count " + std::to_string(count) + ", must be 1..16");
  }
  if (read_u32(data + 12) != 0) return invalid("header flags must be 0");
  const uint64_t table_end = 16 + uint64_t{32} * count;
  if (size < table_end) return invalid("file truncated inside the section table");

  std::map<std::string, Section> sections;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t* e = data + 16 + 32 * i;
    size_t len = 0;
    while (len < 16 && e[len] != 0) ++len;
    for (size_t k = len; k < 16; ++k) {
      if (e[k] != 0) return invalid("section " + std::to_string(i) + ": name is not NUL-padded");
    }
    std::string name(reinterpret_cast<const char*>(e), len);
    Section s{read_u64(e + 16), read_u64(e + 24)};
    if (s.offset < table_end || s.offset > size || s.size > size - s.offset) {
      return invalid("section \"" + name + "\" [" + std::to_string(s.offset) + ", +" +
                     std::to_string(s.size) + ") lies outside the file of " + std::to_string(size) +
                     " bytes (truncated?)");
    }
    for (const auto& r : ranges) {
      if (s.size > 0 && r.second > 0 && s.offset < r.first + r.second && r.first < s.offset + s.size) {
        return invalid("section \"" + name + "\" overlaps another section");
      }
    }
    ranges.emplace_back(s.offset, s.size);
    if (!sections.emplace(name, s).second) return invalid("section \"" + name + "\" appears twice");
  }
  for (const char* required : {"meta", "graph", "tensors", "weights"}) {
    if (!sections.count(required)) return invalid(std::string("required section \"") + required + "\" missing");
  }
  auto text = [&](const char* name) {
    const Section& s = sections[name];
    return std::string(reinterpret_cast<const char*>(data + s.offset), s.size);
  };
  for (const char* name : {"meta", "graph", "tensors"}) {
    if (text(name).find('\0') != std::string::npos) {
      return invalid(std::string("section \"") + name + "\" contains a NUL byte");
    }
  }

  Model model;
  ANOMALENS_RETURN_IF_ERROR(parse_meta(text("meta"), &model.meta));
  const Section& w = sections["weights"];
  ANOMALENS_RETURN_IF_ERROR(parse_tensors(text("tensors"), data + w.offset, w.size, &model.graph.tensors));
  ANOMALENS_RETURN_IF_ERROR(parse_graph(text("graph"), &model.graph));

  const Shape& in = model.graph.blobs[model.graph.input_blob].shape;
  const ModelMeta& meta = model.meta;
  if (in.c != meta.channel_count() || in.h != meta.input_height || in.w != meta.input_width) {
    return invalid("Input layer is (" + std::to_string(in.c) + "," + std::to_string(in.h) + "," +
                   std::to_string(in.w) + ") but meta says input_size=" + std::to_string(meta.input_width) +
                   "x" + std::to_string(meta.input_height) + " with " +
                   std::to_string(meta.channel_count()) + " channel(s)");
  }
  if (meta.output == OutputKind::kOneClass) {
    if (sections.count("oneclass")) {
      const Section& s = sections["oneclass"];
      Result<OneClassParams> p = parse_oneclass_section(data + s.offset, static_cast<size_t>(s.size),
                                                        model.graph.blobs[model.graph.output_blob].shape);
      if (!p.ok()) return p.status();
      model.oneclass_section.assign(data + s.offset, data + s.offset + s.size);
    }
    return model;
  }
  const Blob& out_blob = model.graph.blobs[model.graph.output_blob];
  if (meta.output == OutputKind::kProbabilities &&
      model.graph.layers[out_blob.producer].type != LayerType::kSoftmax) {
    return invalid("meta output=probabilities but the graph output \"" + out_blob.name +
                   "\" is not produced by a Softmax layer");
  }
  const int64_t outputs = model.graph.blobs[model.graph.output_blob].shape.elements();
  const int64_t want = meta.output == OutputKind::kSigmoid ? 1 : 2;
  if (outputs != want) {
    return invalid("graph output \"" + model.graph.blobs[model.graph.output_blob].name + "\" has " +
                   std::to_string(outputs) + " values, output=" +
                   (meta.output == OutputKind::kSigmoid ? "sigmoid needs 1" : "softmax/probabilities need 2"));
  }
  return model;
}

Result<Model> load_model_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status(StatusCode::kIoError, path + ": cannot open model file");
  f.seekg(0, std::ios::end);
  const std::streamoff len = f.tellg();
  if (len < 0) return Status(StatusCode::kIoError, path + ": cannot read model file");
  if (len > (int64_t{1} << 30)) return Status(StatusCode::kInvalidModel, path + ": model file larger than 1 GiB");
  std::vector<uint8_t> bytes(static_cast<size_t>(len));
  f.seekg(0);
  if (len > 0 && !f.read(reinterpret_cast<char*>(bytes.data()), len)) {
    return Status(StatusCode::kIoError, path + ": read failed");
  }
  Result<Model> r = load_model(bytes.data(), bytes.size());
  if (!r.ok()) return Status(r.status().code(), path + ": " + r.status().message());
  return r;
}

}  // namespace anomalens

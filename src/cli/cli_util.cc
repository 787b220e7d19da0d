// SPDX-License-Identifier: Apache-2.0
#include "cli/cli_util.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace anomalens {
namespace cli {

bool Args::has(const std::string& s) const {
  return std::find(switches.begin(), switches.end(), s) != switches.end();
}

const std::string* Args::get(const std::string& key) const {
  auto it = options.find(key);
  return it == options.end() ? nullptr : &it->second;
}

Result<Args> parse_args(int argc, char** argv, const std::vector<std::string>& value_flags,
                        const std::vector<std::string>& switch_flags) {
  Args args;
  bool only_positionals = false;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (only_positionals || a.size() < 2 || a[0] != '-') {
      args.positionals.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positionals = true;
      continue;
    }
    std::string value;
    const size_t eq = a.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    if (std::find(value_flags.begin(), value_flags.end(), a) != value_flags.end()) {
      if (!inline_value) {
        if (i + 1 >= argc) return Status(StatusCode::kInvalidArgument, a + " needs a value");
        value = argv[++i];
      }
      args.options[a] = value;
    } else if (std::find(switch_flags.begin(), switch_flags.end(), a) != switch_flags.end() && !inline_value) {
      args.switches.push_back(a);
    } else {
      return Status(StatusCode::kInvalidArgument, "unknown option " + a + " (see --help)");
    }
  }
  return args;
}

Result<std::vector<uint8_t>> read_file(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Status(StatusCode::kIoError, "no such file");
  if (S_ISDIR(st.st_mode)) return Status(StatusCode::kIoError, "is a directory");
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status(StatusCode::kIoError, "cannot open (permission?)");
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  if (!bytes.empty() && !f.read(reinterpret_cast<char*>(bytes.data()), st.st_size)) {
    return Status(StatusCode::kIoError, "read failed");
  }
  return bytes;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> list_files(const std::string& dir) {
  std::vector<std::string> out;
  std::vector<std::string> pending = {dir};
  while (!pending.empty()) {
    const std::string d = pending.back();
    pending.pop_back();
    DIR* h = opendir(d.c_str());
    if (!h) continue;
    while (dirent* e = readdir(h)) {
      const std::string name = e->d_name;
      if (name.empty() || name[0] == '.') continue;
      const std::string path = d + (d.back() == '/' ? "" : "/") + name;
      if (is_directory(path)) pending.push_back(path);
      else out.push_back(path);
    }
    closedir(h);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string model_path(const Args& args, const char* argv0) {
  if (const std::string* m = args.get("--model")) return *m;
  const std::string local = "models/default.alm";
  if (std::ifstream(local).good()) return local;
  // build/native/anomalens -> ../../models/default.alm
  std::string exe = argv0 ? argv0 : "";
  const size_t slash = exe.rfind('/');
  if (slash != std::string::npos) {
    const std::string beside = exe.substr(0, slash) + "/../../models/default.alm";
    if (std::ifstream(beside).good()) return beside;
  }
  return local;
}

Result<Backend> parse_backend(const std::string* name) {
  // Natively the builtin kernels are the wasm build's scalar fallback (their SIMD128 versions
  // exist only in wasm), about 20x slower than XNNPACK on the default model; so batch work
  // defaults to XNNPACK where this build has it. Scores agree to about 1e-6.
  if (!name) return backend_available(Backend::kXnnpack) ? Backend::kXnnpack : Backend::kBuiltin;
  if (*name == "builtin") return Backend::kBuiltin;
  if (*name == "xnnpack") {
    if (!backend_available(Backend::kXnnpack)) {
      return Status(StatusCode::kUnsupported, "this build has no XNNPACK backend");
    }
    return Backend::kXnnpack;
  }
  if (*name == "reference") return Backend::kReference;
  return Status(StatusCode::kInvalidArgument, "--backend " + *name + ": expected builtin, xnnpack or reference");
}

Result<double> parse_number(const std::string& flag, const std::string& text, double lo, double hi) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v) || v < lo || v > hi) {
    return Status(StatusCode::kInvalidArgument, flag + " " + text + ": expected a number in [" +
                                                    json_number(lo) + ", " + json_number(hi) + "]");
  }
  return v;
}

Result<int> parse_threads(const std::string* text) {
  if (!text) {
    const unsigned cores = std::thread::hardware_concurrency();
    return std::max(1, std::min(kDefaultMaxThreads, static_cast<int>(cores)));
  }
  Result<double> v = parse_number("--threads", *text, 1, 64);
  if (!v.ok()) return v.status();
  if (v.value() != static_cast<int>(v.value())) {
    return Status(StatusCode::kInvalidArgument, "--threads " + *text + ": expected a whole number");
  }
  return static_cast<int>(v.value());
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

int fail(const Status& status) {
  std::fprintf(stderr, "anomalens: %s\n", status.to_string().c_str());
  return 2;
}

}  // namespace cli
}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
// Small helpers shared by the CLI commands: argument parsing, files, JSON output.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nn/engine.h"
#include "util/status.h"

namespace anomalens {
namespace cli {

// Parsed command line: `--flag value` options, bare `--switch`es, positionals in order.
struct Args {
  std::map<std::string, std::string> options;
  std::vector<std::string> switches;
  std::vector<std::string> positionals;
  bool has(const std::string& s) const;
  const std::string* get(const std::string& key) const;
};

// `value_flags` take a value; `switch_flags` do not. Unknown flags fail with their name.
Result<Args> parse_args(int argc, char** argv, const std::vector<std::string>& value_flags,
                        const std::vector<std::string>& switch_flags);

Result<std::vector<uint8_t>> read_file(const std::string& path);
bool is_directory(const std::string& path);
// Regular files under `dir`, recursively, sorted by path; hidden files skipped.
std::vector<std::string> list_files(const std::string& dir);

// --model, or models/default.alm (relative to the working directory, then to the binary).
std::string model_path(const Args& args, const char* argv0);
// --backend NAME; absent: xnnpack where the build has it, else builtin.
Result<Backend> parse_backend(const std::string* name);
Result<double> parse_number(const std::string& flag, const std::string& text, double lo, double hi);
// --threads N in [1, 64]; absent: the machine's core count, at most kDefaultMaxThreads (each
// thread holds a classifier and a decoded image, so the default stays modest on big machines).
constexpr int kDefaultMaxThreads = 8;
Result<int> parse_threads(const std::string* text);

std::string json_string(const std::string& s);
std::string json_number(double v);

int fail(const Status& status);  // prints "anomalens: <message>" to stderr, returns 2

}  // namespace cli

int cmd_classify(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_fit(int argc, char** argv);

}  // namespace anomalens

// SPDX-License-Identifier: Apache-2.0
// anomalens: the native command line. Each command lives in its own cmd_*.cc.
#include <cstdio>
#include <cstring>

#include "cli/cli_util.h"

namespace {

const char kUsage[] =
    "usage: anomalens <command> [options]\n"
    "\n"
    "commands:\n"
    "  classify [--model FILE] [--json] IMAGE|DIR...   normal/abnormal verdict per image\n"
    "  eval     [--model FILE] [--json] DIR            metrics on DIR/normal and DIR/abnormal\n"
    "  inspect  MODEL                                  metadata, layers, shapes, parameters, MACs\n"
    "  bench    [--model FILE] [--backend B]           per-inference latency\n"
    "  fit      --normal DIR [--abnormal DIR] -o OUT   one-class model from normal images\n"
    "\n"
    "Run `anomalens <command> --help` for a command's options.\n"
    "The default model is models/default.alm.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char* cmd = argv[1];
  // Commands see argv[0] (for locating the default model) and their own arguments.
  argv[1] = argv[0];
  if (!std::strcmp(cmd, "classify")) return anomalens::cmd_classify(argc - 1, argv + 1);
  if (!std::strcmp(cmd, "eval")) return anomalens::cmd_eval(argc - 1, argv + 1);
  if (!std::strcmp(cmd, "inspect")) return anomalens::cmd_inspect(argc - 1, argv + 1);
  if (!std::strcmp(cmd, "bench")) return anomalens::cmd_bench(argc - 1, argv + 1);
  if (!std::strcmp(cmd, "fit")) return anomalens::cmd_fit(argc - 1, argv + 1);
  std::fprintf(stderr, "anomalens: unknown command \"%s\"\n\n%s", cmd, kUsage);
  return 2;
}

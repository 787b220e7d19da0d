// SPDX-License-Identifier: Apache-2.0
// anomalens inspect: what a model file holds, after full validation.
#include <cstdio>

#include "cli/cli_util.h"
#include "model/model.h"

namespace anomalens {

int cmd_inspect(int argc, char** argv) {
  Result<cli::Args> parsed = cli::parse_args(argc - 1, argv + 1, {}, {"--help", "-h"});
  if (!parsed.ok()) return cli::fail(parsed.status());
  const cli::Args& args = parsed.value();
  if (args.has("--help") || args.has("-h") || args.positionals.size() != 1) {
    std::fputs("usage: anomalens inspect MODEL.alm\n"
               "Prints metadata, every layer with its output shape, parameter count and MACs.\n",
               args.positionals.size() == 1 ? stdout : stderr);
    return args.positionals.size() == 1 ? 0 : 2;
  }
  Result<Model> loaded = load_model_file(args.positionals[0]);
  if (!loaded.ok()) return cli::fail(loaded.status());
  const Model& m = loaded.value();
  std::printf("model: %s\n", args.positionals[0].c_str());
  for (const auto& kv : m.meta.entries) std::printf("  %s = %s\n", kv.first.c_str(), kv.second.c_str());
  std::printf("\nlayers (%zu):\n", m.graph.layers.size());
  for (const Layer& l : m.graph.layers) {
    const Shape& s = m.graph.blobs[l.outputs[0]].shape;
    std::string detail;
    if (l.type == LayerType::kConv) {
      detail = " k=" + std::to_string(l.kernel_h) + "x" + std::to_string(l.kernel_w) +
               " s=" + std::to_string(l.stride_h) + " g=" + std::to_string(l.groups);
    }
    if (l.act != Activation::kNone) detail += std::string(" act=") + activation_name(l.act);
    std::printf("  %-14s %-28s -> %dx%dx%d%s\n", layer_type_name(l.type), l.name.c_str(), s.c, s.h, s.w,
                detail.c_str());
  }
  std::printf("\nparameters: %lld\nMACs: %lld (%.1f M)\n", static_cast<long long>(m.graph.parameter_count()),
              static_cast<long long>(m.graph.macs()), m.graph.macs() / 1e6);
  return 0;
}

}  // namespace anomalens

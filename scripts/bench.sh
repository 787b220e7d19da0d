#!/usr/bin/env bash
# Benchmark, in one go: Anomalens (wasm, in node) vs @tensorflow/tfjs-backend-wasm vs
# onnxruntime-web, one thread, SIMD, same models, weights and input, rounds interleaved; then the
# native CLI (builtin kernels vs XNNPACK); then the threaded runs. Writes build/bench/results.json
# and build/bench/results_threads2.json.
#   ./scripts/bench.sh                 table on stdout
#   ./scripts/bench.sh --json          one JSON object per model and runtime per line
#   ./scripts/bench.sh --rounds 100 --models mobilenet_v2_0.35_96
#   ./scripts/bench.sh --profile mobilenet_v2_1.0_224    per-op times of the builtin engine
#   ./scripts/bench.sh --threads 2     only the threaded runs (Anomalens pthread build, 2 vs 1
#                                      thread, vs onnxruntime-web numThreads=2); --no-threads
#                                      skips them
# Needs: ./scripts/build.sh (native + wasm), /usr/bin/python3 with torch/torchvision/onnx (for
# the first model export), npm deps installed (node_modules).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { if [[ " $* " == *" --json "* ]]; then cat >&2; else cat; fi; }
[ -f build/wasm/libanomalens_core.a ] && [ -f web/core/anomalens_core.wasm ] ||
  { echo "bench: no wasm build: run ./scripts/build.sh first" >&2; exit 1; }
[ -d node_modules/@tensorflow/tfjs-backend-wasm ] && [ -d node_modules/onnxruntime-web ] ||
  { echo "bench: npm deps missing: run npm install" >&2; exit 1; }
/usr/bin/python3 bench/export_models.py 2>&1 | log "$@"
bench/build_bench_wasm.sh 2>&1 | log "$@"
# --no-liftoff: V8 compiles every wasm function with its optimising tier up front, so the
# timed rounds see steady-state code for all three runtimes (there is a warm-up as well).
if [[ " $* " == *" --threads "* || " $* " == *" --profile "* || " $* " == *" --no-threads "* ]]; then
  exec node --no-liftoff bench/run_bench.mjs "$@"
fi
node --no-liftoff bench/run_bench.mjs "$@"
# Threaded runs (pthread build, built by ./scripts/build.sh into build/wasm-mt) against
# onnxruntime-web with as many threads, in a second process (onnxruntime-web fixes its thread
# count when it first initialises).
if [ -f build/bench/mt/bench_core_mt.js ]; then
  node --no-liftoff bench/run_bench.mjs --threads 2 "$@"
fi

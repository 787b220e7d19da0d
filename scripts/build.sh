#!/usr/bin/env bash
# Builds both targets: the native CLI + tests (build/native) and the browser bundle
# (build/wasm, copied to web/core/ where the web app loads it). Incremental.
#   ./scripts/build.sh            both
#   ./scripts/build.sh native     native only
#   ./scripts/build.sh wasm       wasm only
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
jobs="${JOBS:-2}"
# Debian's emscripten runs its JS optimizer with node and needs acorn from here.
export NODE_PATH="${NODE_PATH:-/usr/share/nodejs}"

if [ "$what" = all ] || [ "$what" = native ]; then
  cmake -S . -B build/native -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/dev/null
  cmake --build build/native -j "$jobs"
fi
if [ "$what" = all ] || [ "$what" = wasm ]; then
  emcmake cmake -S . -B build/wasm -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/wasm -j "$jobs"
  mkdir -p web/core
  cp build/wasm/anomalens_core.js build/wasm/anomalens_core.wasm web/core/
fi
echo "build: ok ($what)"

#!/usr/bin/env bash
# Builds both targets: the native CLI + tests (build/native) and the browser bundles
# (build/wasm; the pthread bundle build/wasm-mt; the scalar bundle for browsers without SIMD
# build/wasm-nosimd), copied to web/core/ where the web app loads them. Incremental.
#   ./scripts/build.sh            both
#   ./scripts/build.sh native     native only
#   ./scripts/build.sh wasm       wasm only (SIMD, pthread and non-SIMD bundles)
#   ./scripts/build.sh wasm-mt    the pthread bundle only (build/wasm-mt)
#   ./scripts/build.sh wasm-nosimd  the non-SIMD bundle only (build/wasm-nosimd)
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
# The pthread bundle (anomalens_core_mt.{js,wasm,worker.js}) for cross-origin isolated pages,
# plus core_tests built with threads (ctest --test-dir build/wasm-mt -R core_tests).
if [ "$what" = all ] || [ "$what" = wasm ] || [ "$what" = wasm-mt ]; then
  emcmake cmake -S . -B build/wasm-mt -DCMAKE_BUILD_TYPE=Release -DANOMALENS_WASM_THREADS=ON >/dev/null
  cmake --build build/wasm-mt -j "$jobs" --target anomalens_core_js core_tests
  mkdir -p web/core
  cp build/wasm-mt/anomalens_core_mt.js build/wasm-mt/anomalens_core_mt.wasm \
     build/wasm-mt/anomalens_core_mt.worker.js web/core/
fi
# The scalar bundle (anomalens_core_nosimd.{js,wasm}), loaded by the worker where
# WebAssembly.validate refuses SIMD128. Only the bundle: its kernels are the scalar ones the
# native tests cover.
if [ "$what" = all ] || [ "$what" = wasm ] || [ "$what" = wasm-nosimd ]; then
  emcmake cmake -S . -B build/wasm-nosimd -DCMAKE_BUILD_TYPE=Release -DANOMALENS_WASM_SIMD=OFF \
    -DANOMALENS_BUILD_TESTS=OFF >/dev/null
  cmake --build build/wasm-nosimd -j "$jobs" --target anomalens_core_js
  mkdir -p web/core
  cp build/wasm-nosimd/anomalens_core_nosimd.js build/wasm-nosimd/anomalens_core_nosimd.wasm web/core/
fi
echo "build: ok ($what)"

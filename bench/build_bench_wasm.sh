#!/usr/bin/env bash
# Links the bench-only wasm modules against the libraries of the real wasm build (build/wasm):
#   build/bench/bench_core.{js,wasm}          the library objects as shipped (timing)
#   build/bench/bench_core_profile.{js,wasm}  engine_builtin.cc recompiled with per-op timers
#   build/bench/mt/bench_core_mt.{js,wasm}    the pthread build (build/wasm-mt), for node
# Same compile and link flags as the browser bundle (-O3 -msimd128, ES module, memory growth).
set -euo pipefail
cd "$(dirname "$0")/.."
export NODE_PATH="${NODE_PATH:-/usr/share/nodejs}"
out=build/bench
mkdir -p "$out"
libs=(build/wasm/libanomalens_core.a build/wasm/src/kernels/libanomalens_kernels.a)
for l in "${libs[@]}"; do
  [ -f "$l" ] || { echo "bench: $l missing: run ./scripts/build.sh wasm first" >&2; exit 1; }
done
flags=(-O3 -DNDEBUG -msimd128 -std=c++17 -Isrc)
link=(-sMODULARIZE=1 -sEXPORT_ES6=1 -sEXPORT_NAME=createBenchCore -sENVIRONMENT=web,worker
      -sALLOW_MEMORY_GROWTH=1 -sINITIAL_MEMORY=16MB -sMAXIMUM_MEMORY=2GB -sFILESYSTEM=0
      "-sEXPORTED_RUNTIME_METHODS=['UTF8ToString']" "-sEXPORTED_FUNCTIONS=['_malloc','_free']")
newer() { [ ! -f "$1" ] || [ -n "$(find "${@:2}" -newer "$1" 2>/dev/null | head -1)" ]; }
if newer "$out/bench_core.wasm" bench/bench_core.cc "${libs[@]}"; then
  em++ "${flags[@]}" bench/bench_core.cc "${libs[@]}" "${link[@]}" -o "$out/bench_core.js"
fi
if newer "$out/bench_core_profile.wasm" bench/bench_core.cc src/nn/engine_builtin.cc "${libs[@]}"; then
  em++ "${flags[@]}" -DANOMALENS_ENGINE_PROFILE bench/bench_core.cc src/nn/engine_builtin.cc \
    "${libs[@]}" "${link[@]}" -o "$out/bench_core_profile.js"
fi
# The pthread variant, from build/wasm-mt's libraries, for node: CommonJS (the emscripten 3.1.6
# pthread worker loads its main script with require()), so it lives in a directory of its own
# whose package.json overrides the repository's "type": "module".
mt_libs=(build/wasm-mt/libanomalens_core.a build/wasm-mt/src/kernels/libanomalens_kernels.a)
if [ -f "${mt_libs[0]}" ] && [ -f "${mt_libs[1]}" ]; then
  mkdir -p "$out/mt"
  echo '{"type": "commonjs"}' > "$out/mt/package.json"
  if newer "$out/mt/bench_core_mt.wasm" bench/bench_core.cc "${mt_libs[@]}"; then
    em++ "${flags[@]}" -pthread bench/bench_core.cc "${mt_libs[@]}" -pthread -sPTHREAD_POOL_SIZE=4 \
      -sPTHREAD_POOL_SIZE_STRICT=2 -sMODULARIZE=1 -sEXPORT_NAME=createBenchCoreMt \
      -sENVIRONMENT=node -sALLOW_MEMORY_GROWTH=1 -sINITIAL_MEMORY=64MB -sMAXIMUM_MEMORY=2GB \
      "-sEXPORTED_RUNTIME_METHODS=['UTF8ToString']" "-sEXPORTED_FUNCTIONS=['_malloc','_free']" \
      -o "$out/mt/bench_core_mt.js"
  fi
else
  echo "bench: no build/wasm-mt libraries (./scripts/build.sh wasm-mt): threaded runs skipped" >&2
fi
echo "bench: wasm modules in $out"

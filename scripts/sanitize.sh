#!/usr/bin/env bash
# Native test suite under AddressSanitizer + UndefinedBehaviorSanitizer (build/asan, -O2 -g).
#   ./scripts/sanitize.sh            configure, build, generate missing fixtures, run ctest
#   JOBS=1 ./scripts/sanitize.sh     fewer parallel compile jobs (default 2)
# Any ASan/UBSan report aborts the test binary (-fno-sanitize-recover=all), so ctest fails.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${JOBS:-2}"
py=/usr/bin/python3
start=$(date +%s)

cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANOMALENS_SANITIZE=ON ${CMAKE_ARGS:-} >/dev/null
cmake --build build/asan -j "$jobs"

# The native tests read generated fixtures from build/fixtures (models, golden outputs).
if [ ! -f build/fixtures/allops.alm ] || [ ! -f build/fixtures/bad/manifest.txt ]; then
  "$py" scripts/make_fixtures.py build/fixtures
fi
if [ ! -f build/fixtures/golden.txt ]; then
  "$py" scripts/make_golden.py build/fixtures
fi

# detect_leaks: the core must not leak either. halt_on_error: first report fails the test.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
ctest --test-dir build/asan --output-on-failure -j "$jobs"
echo "sanitize: ok ($(( $(date +%s) - start )) s)"

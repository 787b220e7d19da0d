#!/usr/bin/env bash
# Every test: set up, build both targets, generate fixtures, then run the native and wasm
# GoogleTest suites, the Python tests, the node/Chromium tests and the hostile-input corpus,
# the native suites again under ASan + UBSan, and each libFuzzer target on a fixed set of inputs. Each suite runs even if an
# earlier one failed; the exit status is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || exit 1
./scripts/build.sh || exit 1

py=/usr/bin/python3
passed=0
failed=0
failed_names=()
suite() {  # suite NAME COMMAND...
  local name="$1"
  shift
  echo
  echo "=== $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_names+=("$name")
  fi
}

suite "fixtures" bash -c "$py scripts/make_fixtures.py build/fixtures && $py scripts/make_golden.py build/fixtures"
suite "native (ctest)" ctest --test-dir build/native --output-on-failure
suite "wasm under node (ctest)" ctest --test-dir build/wasm --output-on-failure
suite "wasm with pthreads under node" ctest --test-dir build/wasm-mt -R core_tests --output-on-failure
suite "python" $py -m unittest discover -s tests/python
suite "node, browser and hostile input" node --test --test-reporter=spec tests/js/ tests/web/ tests/hostile/
suite "sanitizers (ASan + UBSan)" ./scripts/sanitize.sh
suite "fuzzers (a fixed set of inputs each)" tests/fuzz/run_fuzzers.sh

echo
if [ "$failed" -gt 0 ]; then echo "failed suites: ${failed_names[*]}"; fi
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

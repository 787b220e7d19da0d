#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build/fuzz) and runs each one after the other,
# starting from the committed seed corpora in tests/fuzz/corpus/<target>/.
#   tests/fuzz/run_fuzzers.sh                  the test suite's run: a fixed number of inputs per
#                                              target, seed 1, a fresh corpus each time
#   tests/fuzz/run_fuzzers.sh SECONDS          exploration: each target for SECONDS
#   FUZZ_TARGETS="fuzz_model" tests/fuzz/run_fuzzers.sh 600     one target, longer
#   FUZZ_SEED=0 tests/fuzz/run_fuzzers.sh 600                     a random seed
# The suite's run counts inputs, not seconds, and starts from an empty working corpus, so every
# machine does the same amount of fuzzing whatever its speed (a time budget let a faster CI
# machine go further than any local run). The inputs themselves still differ from run to run,
# even here with the same seed (libFuzzer's feedback is not reproducible), so CI can find what
# local runs did not: explore with other seeds and longer runs before a submission; fix what
# they find and add the input to the regressions. A finding's input reproduces anywhere.
# Exploration keeps new interesting inputs in build/fuzz/corpus/<target>/ (not committed). A
# crash, leak, timeout or out-of-memory leaves build/fuzz/artifacts/<target>/crash-* (or leak-*,
# timeout-*, oom-*) and makes the script exit non-zero. Reproduce one with:
#   build/fuzz/fuzz_model build/fuzz/artifacts/fuzz_model/crash-...
# Once fixed, copy the input into tests/fuzz/regressions/<target>/: it is replayed first on
# every run.
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-}"
# Inputs per target in the suite's run: about a minute each on this 2-core machine.
suite_runs() {
  case "$1" in
    fuzz_decode) echo 40000 ;;
    fuzz_model) echo 150000 ;;
    fuzz_classify) echo 15000 ;;
  esac
}
targets="${FUZZ_TARGETS:-fuzz_decode fuzz_model fuzz_classify}"
cc="${FUZZ_CC:-clang-14}"
cxx="${FUZZ_CXX:-clang++-14}"
jobs="${JOBS:-2}"
seed="${FUZZ_SEED:-1}"
command -v "$cxx" >/dev/null || { echo "run_fuzzers: $cxx not found (apt-get install clang)" >&2; exit 2; }

# fuzz_classify loads the all-layer-types fixture model.
if [ ! -f build/fixtures/allops.alm ]; then
  /usr/bin/python3 scripts/make_fixtures.py build/fixtures >/dev/null || exit 2
fi

t0=$(date +%s)
CC="$cc" CXX="$cxx" cmake -S tests/fuzz -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 2
cmake --build build/fuzz -j "$jobs" --target $targets || exit 2
echo "run_fuzzers: built in $(( $(date +%s) - t0 )) s"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for t in $targets; do
  if [ -n "$seconds" ]; then
    corpus="build/fuzz/corpus/$t"
    budget=(-max_total_time="$seconds")
  else
    corpus="build/fuzz/suite-corpus/$t"
    rm -rf "$corpus"
    # The time cap only guards against a machine far slower than this one.
    budget=(-runs="$(suite_runs "$t")" -max_total_time=600)
  fi
  mkdir -p "$corpus" "build/fuzz/artifacts/$t"
  seeds=("tests/fuzz/corpus/$t")
  # The end-to-end target starts from the images too.
  [ "$t" = fuzz_classify ] && seeds+=("tests/fuzz/corpus/fuzz_decode")
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  # Known crashers first: each must now pass.
  if [ -d "tests/fuzz/regressions/$t" ] && [ -n "$(ls -A "tests/fuzz/regressions/$t")" ]; then
    if ! "build/fuzz/$t" -rss_limit_mb=2048 -timeout=10 "tests/fuzz/regressions/$t"/* \
         >"build/fuzz/$t.regressions.log" 2>&1; then
      echo "run_fuzzers: $t: a regression input fails again (build/fuzz/$t.regressions.log)"
      tail -30 "build/fuzz/$t.regressions.log"
      failed+=("$t(regression)")
    fi
  fi
  s=$(date +%s)
  "build/fuzz/$t" "$corpus" "${seeds[@]}" "${dict[@]}" \
      "${budget[@]}" -seed="$seed" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="build/fuzz/artifacts/$t/" -print_final_stats=1 \
      >"build/fuzz/$t.log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "build/fuzz/$t.log" | grep -o '[0-9]*$' || true)
  cov=$(grep -o 'cov: [0-9]*' "build/fuzz/$t.log" | tail -1 || true)
  echo "run_fuzzers: $t: exit $rc, ${runs:-?} runs, ${cov:-cov ?}, $(( $(date +%s) - s )) s"
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    grep -B2 -A40 -m1 'ERROR\|fuzz property violated\|runtime error' "build/fuzz/$t.log" | head -60
    ls "build/fuzz/artifacts/$t"
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "run_fuzzers: FAILED: ${failed[*]} (logs in build/fuzz/*.log)"
  exit 1
fi
echo "run_fuzzers: ok ($(( $(date +%s) - t0 )) s)"

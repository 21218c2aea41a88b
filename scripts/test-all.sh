#!/usr/bin/env bash
# Runs every test stage of `make test` in order, keeps going after a failing stage, and ends with
# the sum of the stages' counts as one "N passed, N failed" line. Exit status is non-zero if any
# stage failed. Stages: format and include checks, unit tests, the same under ASan/UBSan, fuzz
# corpus replay, integration tests against the real binary, interop tests with real clients, the UI
# in a real browser.
set -u
cd "$(dirname "$0")/.."
total_pass=0; total_fail=0; failed_stages=()
log=$(mktemp -d)

stage() {
  local name=$1; shift
  echo "=== $name"
  local start=$SECONDS
  "$@" 2>&1 | tee "$log/$name.out"
  local rc=${PIPESTATUS[0]}
  local line p f
  line=$(grep -oE '[0-9]+ passed, [0-9]+ failed' "$log/$name.out" | tail -1)
  p=$(awk '{print $1}' <<<"$line")
  f=$(awk '{print $3}' <<<"$line")
  p=${p:-0}; f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  [ "$rc" -ne 0 ] && failed_stages+=("$name")
  echo "=== $name: rc=$rc ($((SECONDS - start))s)"
}

stage format-check make --no-print-directory format-check-counted
stage check-includes scripts/check-includes.sh
stage unit build/release/test_unit
stage asan make --no-print-directory -j"$(nproc)" asan
stage fuzz-replay make --no-print-directory -j"$(nproc)" fuzz-replay
# The Prometheus PromQL conformance suite (../shared/specs/promql-tests), plain and under ASan.
stage promql tests/promql/run.sh
stage promql-asan env ASAN=1 tests/promql/run.sh
# Loki's LogQL conformance corpus (../shared/specs/loki/logqltest), plain and under ASan.
stage logql tests/logql/run.sh
stage logql-asan env ASAN=1 tests/logql/run.sh
stage integ tests/integ/run.sh
stage interop tests/interop/run.sh
# The UI in Debian's chromium, driven by playwright-core.
stage ui tests/ui/run.sh
# The same integration suites against the ASan/UBSan build of the server: memory errors and leaks
# on the request paths fail the run (the server exits non-zero on a leak at shutdown).
stage integ-asan env SKILLSCOPE_BIN=build/asan/skillscope ASAN_OPTIONS=detect_leaks=1 tests/integ/run.sh

rm -rf "$log"
[ ${#failed_stages[@]} -gt 0 ] && echo "failed stages: ${failed_stages[*]}"
echo "$total_pass passed, $total_fail failed"
[ ${#failed_stages[@]} -eq 0 ]

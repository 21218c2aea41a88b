#!/usr/bin/env bash
# Interop tests: the OpenTelemetry JS SDK exporters (http/json and http/protobuf) against the real
# ./skillscope (built by make; nothing is built here). Installs node_modules from package-lock.json
# when missing, runs the node:test suite, prints "N passed, N failed" and exits non-zero on failure.
# Env: SKILLSCOPE_BIN (default ./skillscope), INTEROP_KEEP=1 keeps the server's temp dir.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export SKILLSCOPE_BIN=${SKILLSCOPE_BIN:-$root/skillscope}
if [ ! -x "$SKILLSCOPE_BIN" ]; then
  echo "FAIL setup: binary $SKILLSCOPE_BIN not found (run make first)"
  echo "0 passed, 1 failed"
  exit 1
fi
if [ ! -d "$here/node_modules/@opentelemetry/sdk-metrics" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || {
    echo "FAIL setup: npm ci failed"; echo "0 passed, 1 failed"; exit 1; }
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skillscope-interop.XXXXXX")
export SKILLSCOPE_INTEROP_TMP=$tmp SKILLSCOPE_INTEROP_PIDS=$tmp/pids
: >"$SKILLSCOPE_INTEROP_PIDS"
cleanup() {
  local pid
  while read -r pid; do
    [ -n "$pid" ] || continue
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q skillscope; then
      kill -9 "$pid" 2>/dev/null
    fi
  done <"$SKILLSCOPE_INTEROP_PIDS"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$here"
node --test --test-concurrency=1 --test-reporter=tap otel_sdk.test.js | tee "$tmp/out.tap"
rc=${PIPESTATUS[0]}
pass=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$tmp/out.tap" | tail -1)
fail=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$tmp/out.tap" | tail -1)
pass=${pass:-0}; fail=${fail:-0}
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
echo "$pass passed, $fail failed"
[ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]

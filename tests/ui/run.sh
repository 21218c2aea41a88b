#!/usr/bin/env bash
# Browser tests of the UI: Debian's chromium (installed with apt-get when missing) driven by
# playwright-core (npm, from package-lock.json) against the real ./skillscope. Prints
# "N passed, N failed" and exits non-zero on failure.
# Env: SKILLSCOPE_BIN (default ./skillscope), CHROMIUM_BIN (default /usr/bin/chromium),
# SKILLSCOPE_UI_SHOTS (directory for screenshots; default a temp dir).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export SKILLSCOPE_BIN=${SKILLSCOPE_BIN:-$root/skillscope}
case $SKILLSCOPE_BIN in /*) ;; *) SKILLSCOPE_BIN=$PWD/$SKILLSCOPE_BIN ;; esac  # the tests run from their own directory
if [ ! -x "$SKILLSCOPE_BIN" ]; then
  echo "FAIL setup: binary $SKILLSCOPE_BIN not found (run make first)"; echo "0 passed, 1 failed"; exit 1
fi
if [ -z "${CHROMIUM_BIN:-}" ] && [ ! -x /usr/bin/chromium ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "chromium not found: running '$sudo apt-get install -y chromium'"
  $sudo apt-get install -y -qq chromium >/dev/null || {
    echo "FAIL setup: apt-get install -y chromium failed"; echo "0 passed, 1 failed"; exit 1; }
fi
lock_sum=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$here/node_modules/.skillscope-lock" 2>/dev/null)" != "$lock_sum" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || {
    echo "FAIL setup: npm ci failed"; echo "0 passed, 1 failed"; exit 1; }
  echo "$lock_sum" >"$here/node_modules/.skillscope-lock"
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skillscope-uitest.XXXXXX")
export SKILLSCOPE_INTEROP_PIDS=$tmp/pids
: >"$SKILLSCOPE_INTEROP_PIDS"
cleanup() {
  local pid
  while read -r pid; do
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q skillscope &&
      kill -9 "$pid" 2>/dev/null
  done <"$SKILLSCOPE_INTEROP_PIDS"
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$here"
node --test --test-concurrency=1 --test-reporter=tap ./*.test.js | tee "$tmp/out.tap"
rc=${PIPESTATUS[0]}
pass=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$tmp/out.tap" | tail -1)
fail=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$tmp/out.tap" | tail -1)
pass=${pass:-0}; fail=${fail:-0}
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
echo "$pass passed, $fail failed"
[ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]

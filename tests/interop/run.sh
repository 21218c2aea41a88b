#!/usr/bin/env bash
# Interop tests against the real ./skillscope (built by make; nothing is built here):
#   otel_sdk.test.js   the OpenTelemetry JS SDK exporters (http/json and http/protobuf);
#   prom_diff.test.js  PromQL answers compared with the real Prometheus (Debian package `prometheus`)
#                      over the same remote-written data;
#   and every other *.test.js here. Each file lists the Debian packages of its peers (see below).
# Installs node_modules from package-lock.json when missing, runs the node:test suites, prints
# "N passed, N failed" and exits non-zero on failure.
# Env: SKILLSCOPE_BIN (default ./skillscope), PROMETHEUS_BIN (default prometheus from PATH),
# INTEROP_KEEP=1 keeps the servers' temp dirs, INTEROP_TESTS="file.test.js ..." runs only those.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export SKILLSCOPE_BIN=${SKILLSCOPE_BIN:-$root/skillscope}
case $SKILLSCOPE_BIN in /*) ;; *) SKILLSCOPE_BIN=$PWD/$SKILLSCOPE_BIN ;; esac  # the tests run from their own directory
if [ ! -x "$SKILLSCOPE_BIN" ]; then
  echo "FAIL setup: binary $SKILLSCOPE_BIN not found (run make first)"
  echo "0 passed, 1 failed"
  exit 1
fi
# node_modules is (re)installed whenever package-lock.json changed since the last install.
lock_sum=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$here/node_modules/.skillscope-lock" 2>/dev/null)" != "$lock_sum" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || {
    echo "FAIL setup: npm ci failed"; echo "0 passed, 1 failed"; exit 1; }
  echo "$lock_sum" >"$here/node_modules/.skillscope-lock"
fi
tests=${INTEROP_TESTS:-$(cd "$here" && ls ./*.test.js | sed 's|^\./||' | tr '\n' ' ')}
# A test file names the Debian packages of the real peers it runs in a line
#   // needs-deb: prometheus prometheus-node-exporter
# and those missing are installed here (on a host with systemd their postinst may also start the
# packaged service on its default port; each test starts its own instance on a free port).
need=()
for t in $tests; do
  for p in $(sed -nE 's|^// needs-deb: (.*)$|\1|p' "$here/$t"); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
  done
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing the peers' Debian packages: ${need[*]}"
  $sudo apt-get install -y -qq "${need[@]}" >/dev/null || {
    echo "FAIL setup: apt-get install -y ${need[*]} failed"; echo "0 passed, 1 failed"; exit 1; }
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skillscope-interop.XXXXXX")
export SKILLSCOPE_INTEROP_TMP=$tmp SKILLSCOPE_INTEROP_PIDS=$tmp/pids
: >"$SKILLSCOPE_INTEROP_PIDS"
cleanup() {
  local pid
  while read -r pid; do
    [ -n "$pid" ] || continue
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -Eq 'skillscope|prometheus|node_exporter|victoria'; then
      kill -9 "$pid" 2>/dev/null
    fi
  done <"$SKILLSCOPE_INTEROP_PIDS"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$here"
# shellcheck disable=SC2086 # $tests is a list of file names
node --test --test-concurrency=1 --test-reporter=tap $tests | tee "$tmp/out.tap"
rc=${PIPESTATUS[0]}
pass=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$tmp/out.tap" | tail -1)
fail=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$tmp/out.tap" | tail -1)
pass=${pass:-0}; fail=${fail:-0}
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
echo "$pass passed, $fail failed"
[ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]

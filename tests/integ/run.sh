#!/usr/bin/env bash
# Integration tests: start the real ./skillscope (built by make; nothing is built here) on free
# loopback ports with temporary data dirs and check its behaviour over sockets.
#   tests/integ/run.sh [suite ...]      suites: cli ingest_read claude_code bad_input crash
# Env: SKILLSCOPE_BIN (default ./skillscope), INTEG_VERBOSE=1 (print passing checks too),
#      INTEG_KEEP=1 (keep the temp dir with server logs and data).
# Every server PID the suites start is recorded; the EXIT trap kills any that are still alive,
# so a failing or interrupted run never leaves a server behind.
set -u
cd "$(dirname "$0")/../.."
export SKILLSCOPE_BIN=${SKILLSCOPE_BIN:-$PWD/skillscope}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skillscope-integ.XXXXXX")
export SKILLSCOPE_INTEG_TMP=$tmp SKILLSCOPE_INTEG_PIDS=$tmp/pids
: >"$SKILLSCOPE_INTEG_PIDS"

cleanup() {
  local pid
  while read -r pid; do
    [ -n "$pid" ] || continue
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q skillscope; then
      kill -9 "$pid" 2>/dev/null
    fi
  done <"$SKILLSCOPE_INTEG_PIDS"
  if [ "${INTEG_KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PYTHONDONTWRITEBYTECODE=1 python3 tests/integ/main.py "$@"

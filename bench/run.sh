#!/usr/bin/env bash
# Runs the ingest/storage benchmark and prints the figures for docs/BENCHMARKS.md.
# Usage: make bench            (full: 10k series x 360 samples, 200k spans, 400k log lines)
#        bench/run.sh --quick  (a tenth of that)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/bench.py "$@"

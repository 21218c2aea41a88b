#!/bin/sh
# query_bench.sh - runs bench/query_bench.js: PromQL dashboard-query latency and remote_write ingest,
# Skillscope against Prometheus and VictoriaMetrics on the same data in one run (issue 3).
#
# Installs the Debian packages prometheus and victoria-metrics when missing, builds ./skillscope,
# starts the three servers on free 127.0.0.1 ports with temp dirs, runs the Node driver (which stops
# Skillscope itself with SIGTERM to count its blocks) and stops the other servers by PID at the end.
# Environment: SERIES (default 10000), STEP_S (sample spacing, default 60), HOURS (default 24),
# RUNS (timed runs per query, default 5), KEEP=1 keeps the temp dir, SKILLSCOPE_BIN (a server binary
# built elsewhere, e.g. build/<dir>/skillscope; default: `make skillscope` and ./skillscope).
# Usage: sh bench/query_bench.sh > report.md
set -eu
cd "$(dirname "$0")/.."

need=""
command -v prometheus >/dev/null 2>&1 || need="$need prometheus"
command -v victoria-metrics >/dev/null 2>&1 || need="$need victoria-metrics"
if [ -n "$need" ]; then
	echo "installing$need" >&2
	apt-get install -y $need >&2
fi
if [ -z "${SKILLSCOPE_BIN:-}" ]; then
	make skillscope >&2
	SKILLSCOPE_BIN=./skillscope
fi

TMP=$(mktemp -d /tmp/query_bench.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT INT TERM

free_port() {
	node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();})'
}

wait_ready() { # name url pid
	i=0
	while ! curl -sf -o /dev/null "$2"; do
		kill -0 "$3" 2>/dev/null || { echo "$1 exited; log:" >&2; tail -20 "$TMP/$1.log" >&2; exit 1; }
		i=$((i + 1))
		[ $i -lt 300 ] || { echo "$1 not ready after 30 s" >&2; exit 1; }
		sleep 0.1
	done
}

SS_PORT=$(free_port); PROM_PORT=$(free_port); VM_PORT=$(free_port)
OTLP_HTTP=$(free_port); OTLP_GRPC=$(free_port)
mkdir -p "$TMP/ss" "$TMP/prom" "$TMP/vm"
printf 'global:\n  scrape_interval: 1h\n' > "$TMP/prometheus.yml"

"$SKILLSCOPE_BIN" serve --data-dir "$TMP/ss" --listen 127.0.0.1 --http-port "$SS_PORT" \
	--otlp-http-port "$OTLP_HTTP" --otlp-grpc-port "$OTLP_GRPC" > "$TMP/skillscope.log" 2>&1 &
SS_PID=$!; PIDS="$PIDS $SS_PID"
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom" \
	--web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-remote-write-receiver > "$TMP/prometheus.log" 2>&1 &
PROM_PID=$!; PIDS="$PIDS $PROM_PID"
# -search.disableCache: VM would otherwise answer the repeated runs from its rollup-result cache.
victoria-metrics -storageDataPath="$TMP/vm" -httpListenAddr="127.0.0.1:$VM_PORT" \
	-retentionPeriod=1y -search.disableCache > "$TMP/victoria-metrics.log" 2>&1 &
VM_PID=$!; PIDS="$PIDS $VM_PID"

wait_ready skillscope "http://127.0.0.1:$SS_PORT/-/ready" "$SS_PID"
wait_ready prometheus "http://127.0.0.1:$PROM_PORT/-/ready" "$PROM_PID"
wait_ready victoria-metrics "http://127.0.0.1:$VM_PORT/health" "$VM_PID"
echo "skillscope :$SS_PORT pid $SS_PID, prometheus :$PROM_PORT pid $PROM_PID, victoria-metrics :$VM_PORT pid $VM_PID" >&2

SS_PORT=$SS_PORT PROM_PORT=$PROM_PORT VM_PORT=$VM_PORT SS_PID=$SS_PID PROM_PID=$PROM_PID VM_PID=$VM_PID \
	SS_DIR="$TMP/ss" PROM_DIR="$TMP/prom" VM_DIR="$TMP/vm" \
	node --max-old-space-size=4096 bench/query_bench.js
echo "versions: $(prometheus --version 2>&1 | head -1); victoria-metrics $(dpkg-query -W -f="\${Version}" victoria-metrics 2>/dev/null)" >&2

#!/usr/bin/env bash
# bench/watch.sh: the watcher's own cost. Runs
#   snapdiag watch --every 1s --check tcp://127.0.0.1:PORT --history 10m
# against a local listener (bench/sockhold with no pairs), with the 10-minute
# history filled at start-up by back-to-back samples (the hidden --fill-history
# flag), then measures, over --duration seconds of steady watching, its CPU
# time (utime+stime from /proc/PID/stat) and its memory (VmRSS, VmHWM from
# /proc/PID/status, sampled every 5 s).
#
# Usage: bench/watch.sh [--duration 90] [--every 1s] [--history 10m] [--snapdiag PATH] [--upload URL]
# (--upload: the watch runs with --upload URL, the store taken from the AWS_*
# environment; bench/upload.sh compares the two.)
# Targets (issue 5): under 1% of one core, under 50 MiB.
# Everything it starts is ended on exit, error or ^C.
set -Eeuo pipefail

DURATION=90
EVERY=1s
HISTORY=10m
SNAPDIAG=""
UPLOAD=""

while [ $# -gt 0 ]; do
	case "$1" in
	--duration) DURATION=$2; shift 2 ;;
	--every) EVERY=$2; shift 2 ;;
	--history) HISTORY=$2; shift 2 ;;
	--snapdiag) SNAPDIAG=$2; shift 2 ;;
	--upload) UPLOAD=$2; shift 2 ;;
	-h|--help) sed -n '2,15p' "$0"; exit 0 ;;
	*) echo "bench/watch.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/snapdiag-watch-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "$SNAPDIAG" ]; then
	CGO_ENABLED=0 go build -o "$WORK/snapdiag" ./cmd/snapdiag
	SNAPDIAG=$WORK/snapdiag
fi
CGO_ENABLED=0 go build -o "$WORK/sockhold" ./bench/sockhold

# The service: a listener that accepts and holds what connects.
"$WORK/sockhold" --pairs 0 --hold "$((DURATION + 120))s" >"$WORK/sockhold.out" &
PIDS+=($!)
for _ in $(seq 100); do
	grep -q '^ready' "$WORK/sockhold.out" && break
	sleep 0.1
done
PORT=$(awk '/^ready/ {print $2}' "$WORK/sockhold.out")
[ -n "$PORT" ] || { echo "bench/watch.sh: listener did not start" >&2; exit 1; }

mkdir "$WORK/out"
"$SNAPDIAG" watch --every "$EVERY" --check "tcp://127.0.0.1:$PORT" --history "$HISTORY" \
	--fill-history --out "$WORK/out" --log-format json ${UPLOAD:+--upload "$UPLOAD"} 2>"$WORK/watch.log" &
WPID=$!
PIDS+=("$WPID")

# Wait for the history to be full, then start measuring.
for _ in $(seq 600); do
	grep -q '"history filled"' "$WORK/watch.log" && break
	kill -0 "$WPID" 2>/dev/null || { cat "$WORK/watch.log" >&2; exit 1; }
	sleep 0.1
done
grep '"history filled"' "$WORK/watch.log" >&2 || { echo "bench/watch.sh: history not filled" >&2; exit 1; }

TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$WPID/stat"; } # utime + stime
status_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$WPID/status"; }

t0=$(date +%s.%N)
c0=$(cpu_ticks)
rss_max=0
end=$(( $(date +%s) + DURATION ))
while [ "$(date +%s)" -lt "$end" ]; do
	sleep 5
	kill -0 "$WPID" 2>/dev/null || { echo "bench/watch.sh: watch exited" >&2; cat "$WORK/watch.log" >&2; exit 1; }
	r=$(status_kb VmRSS)
	[ "$r" -gt "$rss_max" ] && rss_max=$r
done
c1=$(cpu_ticks)
t1=$(date +%s.%N)
rss=$(status_kb VmRSS)
hwm=$(status_kb VmHWM)
bundles=$(find "$WORK/out" -name 'snapdiag-*.tar.zst' | wc -l)
failed=$(grep -c '"check failed"' "$WORK/watch.log" || true)

awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v tck="$TCK" -v rss="$rss" -v rssmax="$rss_max" \
	-v hwm="$hwm" -v every="$EVERY" -v hist="$HISTORY" -v dur="$DURATION" -v b="$bundles" -v f="$failed" 'BEGIN {
	wall = t1 - t0; cpu = (c1 - c0) / tck
	printf "snapdiag watch --every %s --history %s, history full, %.0f s measured\n", every, hist, wall
	printf "  cpu      %.2f s in %.0f s = %.3f%% of one core   (target < 1%%)\n", cpu, wall, 100 * cpu / wall
	printf "  rss      %.1f MiB now, %.1f MiB max sampled, %.1f MiB peak (VmHWM, includes the fill)   (target < 50 MiB)\n", rss / 1024, rssmax / 1024, hwm / 1024
	printf "  checks   %d failed; bundles written: %d (want 0 and 0)\n", f, b
}'

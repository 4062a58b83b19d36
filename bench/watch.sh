#!/usr/bin/env bash
# bench/watch.sh: the watcher's own cost. Runs
#   snapdiag watch --every 1s --check tcp://127.0.0.1:PORT --history 10m
# against a local listener (bench/sockhold with no pairs), with the 10-minute
# history filled at start-up by back-to-back samples (the hidden --fill-history
# flag), then measures, over --duration seconds of steady watching, its CPU
# time (utime+stime from /proc/PID/stat) and its memory (VmRSS, VmHWM from
# /proc/PID/status, sampled every 5 s).
#
# With --metrics it runs, in the same window, a second watch with the same
# flags plus --metrics 127.0.0.1:PORT, scraped every second (a Prometheus at
# its tightest interval), and prints both and their ratio: what serving the
# metrics costs, measured beside what it adds to.
#
# Usage: bench/watch.sh [--duration 90] [--every 1s] [--history 10m] [--metrics] [--snapdiag PATH] [--upload URL]
# (--upload: the watches run with --upload URL, the store taken from the AWS_*
# environment; bench/upload.sh compares the two.)
# Targets (issues 5 and 16): under 1% of one core, under 50 MiB, with or
# without --metrics.
# Everything it starts is ended on exit, error or ^C.
set -Eeuo pipefail

DURATION=90
EVERY=1s
HISTORY=10m
SNAPDIAG=""
UPLOAD=""
METRICS=0

while [ $# -gt 0 ]; do
	case "$1" in
	--duration) DURATION=$2; shift 2 ;;
	--every) EVERY=$2; shift 2 ;;
	--history) HISTORY=$2; shift 2 ;;
	--snapdiag) SNAPDIAG=$2; shift 2 ;;
	--upload) UPLOAD=$2; shift 2 ;;
	--metrics) METRICS=1; shift ;;
	-h|--help) sed -n '2,22p' "$0"; exit 0 ;;
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

# start_watch NAME [FLAGS...]: a watch writing into $WORK/NAME, its log in
# $WORK/NAME.log; its pid is appended to WPIDS.
WPIDS=()
NAMES=()
start_watch() {
	local name=$1; shift
	mkdir "$WORK/$name"
	"$SNAPDIAG" watch --every "$EVERY" --check "tcp://127.0.0.1:$PORT" --history "$HISTORY" \
		--fill-history --out "$WORK/$name" --log-format json ${UPLOAD:+--upload "$UPLOAD"} "$@" 2>"$WORK/$name.log" &
	WPIDS+=($!)
	PIDS+=($!)
	NAMES+=("$name")
}
start_watch plain
if [ "$METRICS" = 1 ]; then
	MPORT=$((20000 + RANDOM % 20000))
	start_watch metrics --metrics "127.0.0.1:$MPORT"
fi

# Wait for the histories to be full, then start measuring.
for i in "${!WPIDS[@]}"; do
	log="$WORK/${NAMES[$i]}.log"
	for _ in $(seq 600); do
		grep -q '"history filled"' "$log" && break
		kill -0 "${WPIDS[$i]}" 2>/dev/null || { cat "$log" >&2; exit 1; }
		sleep 0.1
	done
	grep '"history filled"' "$log" >&2 || { echo "bench/watch.sh: history not filled" >&2; exit 1; }
done
if [ "$METRICS" = 1 ]; then
	curl -fsS "http://127.0.0.1:$MPORT/metrics" >"$WORK/page.txt" || { echo "bench/watch.sh: no metrics page" >&2; exit 1; }
	( while :; do curl -fsS -o /dev/null "http://127.0.0.1:$MPORT/metrics" || true; sleep 1; done ) &
	PIDS+=($!)
fi

TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

t0=$(date +%s.%N)
declare -A c0 rss_max
for p in "${WPIDS[@]}"; do c0[$p]=$(cpu_ticks "$p"); rss_max[$p]=0; done
end=$(( $(date +%s) + DURATION ))
while [ "$(date +%s)" -lt "$end" ]; do
	sleep 5
	for i in "${!WPIDS[@]}"; do
		p=${WPIDS[$i]}
		kill -0 "$p" 2>/dev/null || { echo "bench/watch.sh: watch exited" >&2; cat "$WORK/${NAMES[$i]}.log" >&2; exit 1; }
		r=$(status_kb "$p" VmRSS)
		[ "$r" -gt "${rss_max[$p]}" ] && rss_max[$p]=$r
	done
done
t1=$(date +%s.%N)
results=()
for i in "${!WPIDS[@]}"; do
	p=${WPIDS[$i]}
	name=${NAMES[$i]}
	c1=$(cpu_ticks "$p")
	rss=$(status_kb "$p" VmRSS)
	hwm=$(status_kb "$p" VmHWM)
	bundles=$(find "$WORK/$name" -name 'snapdiag-*.tar.zst' | wc -l)
	failed=$(grep -c '"check failed"' "$WORK/$name.log" || true)
	flags=""
	[ "$name" = metrics ] && flags=" --metrics (scraped every 1 s, $(grep -c '^snapdiag_' "$WORK/page.txt") series)"
	awk -v c0="${c0[$p]}" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v tck="$TCK" -v rss="$rss" -v rssmax="${rss_max[$p]}" \
		-v hwm="$hwm" -v every="$EVERY" -v hist="$HISTORY" -v flags="$flags" -v b="$bundles" -v f="$failed" 'BEGIN {
		wall = t1 - t0; cpu = (c1 - c0) / tck
		printf "snapdiag watch --every %s --history %s%s, history full, %.0f s measured\n", every, hist, flags, wall
		printf "  cpu      %.2f s in %.0f s = %.3f%% of one core   (target < 1%%)\n", cpu, wall, 100 * cpu / wall
		printf "  rss      %.1f MiB now, %.1f MiB max sampled, %.1f MiB peak (VmHWM, includes the fill)   (target < 50 MiB)\n", rss / 1024, rssmax / 1024, hwm / 1024
		printf "  checks   %d failed; bundles written: %d (want 0 and 0)\n", f, b
	}'
	results+=("$((c1 - ${c0[$p]})) ${rss_max[$p]}")
done
if [ "$METRICS" = 1 ]; then
	read -r cp rp <<<"${results[0]}"
	read -r cm rm <<<"${results[1]}"
	awk -v cp="$cp" -v cm="$cm" -v rp="$rp" -v rm="$rm" 'BEGIN {
		printf "with --metrics / without: cpu %.2fx, rss %.2fx\n", (cp > 0 ? cm / cp : 0), (rp > 0 ? rm / rp : 0)
	}'
fi

#!/usr/bin/env bash
# bench/flood.sh: the packet sample's CPU cost under a 50,000 SYN/s flood, against tcpdump.
#
# Runs BenchmarkLabFloodCaptureCPU (cmd/snapdiag/flood_bench_test.go): in lab network
# namespaces, the lab's own sender floods a listener (SYN cookies on) with 50,000 forged
# SYNs a second, and, taking turns in one run (order rotated each round), it measures the
# CPU time (user + system, the child's rusage) per second of packet window W of
#   snapdiag      snapdiag capture --samples 1 --sample W   (the work tree)
#   snapdiag-nosample  the same with --sample 0: the rest of the capture (sample = the difference)
#   tcpdump       tcpdump -i any -w FILE -s SNAPLEN FILTER  (the capture manifest's filter)
#   snapdiag-old  the same capture built from --old REV (default d6075de: before the
#                 kernel took all of the flow sampling)
# for W = 2s (capture's default --sample; fixed costs weigh most) and 10s (spread as over a
# user's window), or the windows of --windows. For each W it reports the medians and the
# ratios to tcpdump of the whole capture (snapdiag/tcpdump) and of the sample alone
# (sample/tcpdump), target <= 1, says which meet it, and snapdiag/old; each figure with the
# 1-minute load average.
#
# Each W is measured twice: as a host bills it, and pinned (--pin 1 or 0 keeps one). This
# kernel has no IRQ time accounting, so the flood's receive path (softirq: SYN handling,
# SYN-ACKs, every capturer's filter and ring copy) is billed to whatever task is on the
# CPU; pinned, the sender runs on CPU 1 and the capturer on CPU 0, and each capturer is
# billed its own work only. Writes bench/results/flood-<UTC time>.txt.
#
# Usage: sudo bench/flood.sh [--rounds 3] [--windows 2s,10s] [--pin both|0|1] [--old REV | --no-old] [--perf]
# --perf: after the measured rounds, one more capture per window under `perf record -g`,
# whose CPU time by phase and hottest paths are written beside the results (.perf.txt).
# The namespaces, the sender and every process started are removed on exit (lab cleanup).
set -Eeuo pipefail

ROUNDS=3
WINDOWS=2s,10s
PIN=
OLD=d6075de
PERF=0
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--windows) WINDOWS=$2; shift 2 ;;
	--pin) case $2 in both) PIN= ;; 0|1) PIN=$2 ;; *) echo "flood.sh: --pin both, 0 or 1" >&2; exit 2 ;; esac; shift 2 ;;
	--old) OLD=$2; shift 2 ;;
	--no-old) OLD=""; shift ;;
	--perf) PERF=1; shift ;;
	-h|--help) sed -n '2,28p' "$0"; exit 0 ;;
	*) echo "flood.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "flood.sh: needs root (network namespaces)" >&2; exit 1; }
command -v tcpdump >/dev/null || { echo "flood.sh: needs tcpdump" >&2; exit 1; }
[ "$PERF" = 0 ] || command -v perf >/dev/null || { echo "flood.sh: --perf needs perf (linux-perf)" >&2; exit 1; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/sdflood.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
OLDBIN=""
if [ -n "$OLD" ]; then
	COMMIT=$(git -C "$REPO" rev-parse --short "$OLD")
	mkdir "$WORK/src"
	git -C "$REPO" archive "$COMMIT" | tar -x -C "$WORK/src"
	(cd "$WORK/src" && CGO_ENABLED=0 go build -o "$WORK/snapdiag-old" ./cmd/snapdiag)
	OLDBIN=$WORK/snapdiag-old
fi
mkdir -p "$REPO/bench/results"
OUT=$REPO/bench/results/flood-$(date -u +%Y%m%dT%H%M%SZ).txt
{
	echo "# bench/flood.sh $(date -u +%FT%TZ) on $(uname -r), $(nproc) CPUs"
	echo "# work tree $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" status --porcelain -- . ':!bench/results' | grep -q . && echo ' (dirty)'), old ${OLD:-none}, $ROUNDS rounds, windows $WINDOWS, pin ${PIN:-both}, load $(cut -d' ' -f1-3 /proc/loadavg)"
	PERFDIR=""
	if [ "$PERF" = 1 ]; then PERFDIR=$WORK/perf; mkdir -p "$PERFDIR"; fi
	cd "$REPO" && SNAPDIAG_OLD=$OLDBIN FLOOD_ROUNDS=$ROUNDS FLOOD_WINDOWS=$WINDOWS FLOOD_PIN=$PIN FLOOD_PERF=$PERFDIR \
		go test -timeout 30m -run '^$' -bench BenchmarkLabFloodCaptureCPU -benchtime 1x -v ./cmd/snapdiag/ 2>&1
} | tee "$OUT"
echo "wrote $OUT"
if [ "$PERF" = 1 ]; then
	for data in "$WORK"/perf/*.perf.data; do
		[ -e "$data" ] || continue
		base=${OUT%.txt}-$(basename "$data" .perf.data)
		{
			echo "# perf record -F 9999 -g: one snapdiag capture under the flood, after the measured rounds"
			echo
			echo "## CPU time by phase (bench/perf-phases.awk)"
			perf script -i "$data" --comm snapdiag -F ip,sym 2>/dev/null | awk -v hz=9999 -f "$REPO/bench/perf-phases.awk" || true
			echo
			echo "## hottest call paths (children: including callees)"
			perf report -i "$data" --comm snapdiag --stdio --children --sort sym --percent-limit 3 -g none 2>/dev/null | grep -E '^ +[0-9]' || true
		} >"$base.perf.txt"
		echo "wrote $base.perf.txt"
	done
fi

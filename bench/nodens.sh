#!/usr/bin/env bash
# bench/nodens.sh: a pod's capture on a node with many interfaces.
#
# Builds two network namespaces: sdnode-<pid>, standing for a node, with --pairs veth
# pairs (twice as many interfaces, as a node has one per pod), and sdpod-<pid>, standing
# for a pod. From inside the node namespace, in one run, taking turns --runs times, it
# times (wall and CPU, bench/timeit):
#   snapdiag  snapdiag capture --netns POD --samples 1 --sample 0   (the work tree)
#   baseline  the same, built from --baseline REV (default ee36186: before the host's
#             sysctl walk went only where the pod has directories)
#   sysctl    ip netns exec POD sysctl -a   (what one would run by hand for the sysctls)
# and prints the medians, also to bench/results/nodens-<UTC time>.txt. A capture of a
# namespace other than its own also reads the global net.* keys from its own (the
# node's) /proc/sys/net, where every interface has conf and neigh directories.
#
# Usage: sudo bench/nodens.sh [--pairs 100] [--runs 9] [--baseline REV]
# Both namespaces (and so every veth) are removed on exit.
set -Eeuo pipefail

PAIRS=100
RUNS=9
BASELINE=ee36186
while [ $# -gt 0 ]; do
	case $1 in
	--pairs) PAIRS=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--baseline) BASELINE=$2; shift 2 ;;
	-h | --help) sed -n '2,17p' "$0"; exit 0 ;;
	*) echo "nodens.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[[ $PAIRS =~ ^[0-9]+$ && $PAIRS -ge 1 && $PAIRS -le 2000 ]] || { echo "--pairs must be 1..2000" >&2; exit 2; }
[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 ]] || { echo "--runs must be a positive integer" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "nodens.sh: needs root (network namespaces)" >&2; exit 1; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
NODE=sdnode-$$ POD=sdpod-$$
WORK=$(mktemp -d /tmp/sdnodens.XXXXXX)
cleanup() {
	ip netns del "$NODE" 2>/dev/null || true
	ip netns del "$POD" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$REPO" && CGO_ENABLED=0 go build -o "$WORK/snapdiag" ./cmd/snapdiag)
(cd "$REPO" && CGO_ENABLED=0 go build -o "$WORK/timeit" ./bench/timeit)
COMMIT=$(git -C "$REPO" rev-parse --short "$BASELINE")
mkdir "$WORK/src"
git -C "$REPO" archive "$COMMIT" | tar -x -C "$WORK/src"
(cd "$WORK/src" && CGO_ENABLED=0 go build -o "$WORK/baseline" ./cmd/snapdiag)

ip netns add "$NODE"
ip netns add "$POD"
ip -n "$NODE" link set lo up
ip -n "$POD" link set lo up
for ((i = 0; i < PAIRS; i++)); do
	ip -n "$NODE" link add "va$i" type veth peer name "vb$i"
done
echo "node namespace $NODE: $(ip netns exec "$NODE" ls /proc/sys/net/ipv4/conf | wc -l) entries in net/ipv4/conf; pod namespace $POD" >&2

# run TOOL: one timed run from inside the node namespace; prints "TOOL wall cpu".
run() {
	local tool=$1 out=$WORK/out.$1 tf=$WORK/time.$1
	rm -rf "$out"; mkdir -p "$out"
	case $tool in
	snapdiag | baseline)
		ip netns exec "$NODE" "$WORK/timeit" -o "$tf" -- "$WORK/$tool" capture --netns "$POD" \
			--samples 1 --sample 0 --out "$out" -q >/dev/null ;;
	sysctl)
		ip netns exec "$NODE" "$WORK/timeit" -o "$tf" -- ip netns exec "$POD" sysctl -a >"$out/sysctl" 2>/dev/null ;;
	esac
	awk -v t="$tool" '{printf "%s %.4f %.4f\n", t, $1, $3 + $4}' "$tf"
}

TOOLS=(snapdiag baseline sysctl)
for tool in "${TOOLS[@]}"; do run "$tool" >/dev/null; done # warm-up
for ((r = 0; r < RUNS; r++)); do
	for ((k = 0; k < ${#TOOLS[@]}; k++)); do
		run "${TOOLS[(r + k) % ${#TOOLS[@]}]}"
	done
done >"$WORK/runs"

mkdir -p "$REPO/bench/results"
OUT=$REPO/bench/results/nodens-$(date -u +%Y%m%dT%H%M%SZ).txt
{
echo "# bench/nodens.sh --pairs $PAIRS --runs $RUNS --baseline $COMMIT, $(date -u +%FT%TZ), $(uname -r), $(nproc) CPUs, work tree $(git -C "$REPO" rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# medians of $RUNS runs from inside the node namespace ($((2 * PAIRS)) veth interfaces)"
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
for tool in "${TOOLS[@]}"; do
	wall=$(awk -v t="$tool" '$1 == t {print $2}' "$WORK/runs" | median)
	cpu=$(awk -v t="$tool" '$1 == t {print $3}' "$WORK/runs" | median)
	awk -v t="$tool" -v w="$wall" -v c="$cpu" 'BEGIN {printf "%-9s wall %6.1f ms  cpu %6.1f ms\n", t, w * 1000, c * 1000}'
done
} | tee "$OUT"
echo "wrote $OUT" >&2

#!/usr/bin/env bash
# bench/allns.sh: time `snapdiag capture --all-netns` against what a user runs instead.
#
# For each size in --sizes, makes that many network namespaces (bench/manyns: each with
# loopback up and one TCP listener, bind-mounted under /run/netns), then times with GNU
# time (wall, peak RSS), alternated in the same rounds:
#   one      snapdiag capture --all-netns --samples 1 --sample 0
#   default  snapdiag capture --all-netns                (3 samples 1 s apart, 2 s packets)
#   loop     for each namespace: ip netns exec NS ss -ltni; ip netns exec NS nstat -az
#            (fresh NSTAT_HISTORY each), into one file
# one warm-up, then --runs rounds; prints medians and the ratio one/loop, and writes
# bench/results/allns-<UTC time>.md. snapdiag runs with --priority normal, so every
# command competes for the CPUs alike. Peak RSS of the loop is its largest process.
#
# Usage: sudo bench/allns.sh [--sizes "200 500"] [--runs 3] [--snapdiag PATH]
# Everything it starts (namespaces, temp dirs) is removed on exit, error or ^C.
set -Eeuo pipefail

SIZES="200 500"
RUNS=3
SNAPDIAG=""
RESULTS_DIR=""
while (($#)); do
	case $1 in
	--sizes) SIZES=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--snapdiag) SNAPDIAG=$2; shift 2 ;;
	--results) RESULTS_DIR=$2; shift 2 ;;
	-h | --help) sed -n '2,16p' "$0"; exit 0 ;;
	*) echo "allns.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
done
[[ $(id -u) == 0 ]] || { echo "allns.sh: needs root (network namespaces)" >&2; exit 1; }
for tool in /usr/bin/time ip ss nstat; do
	command -v "$tool" >/dev/null || { echo "allns.sh: needs $tool (apt-get install time iproute2)" >&2; exit 1; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
WORK=$(mktemp -d /tmp/allns-bench.XXXXXX)
# shellcheck source=bench/manyns.sh
source "$ROOT/bench/manyns.sh"
cleanup() {
	manyns_stop
	rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z $SNAPDIAG ]]; then
	(cd "$ROOT" && go build -o "$WORK/snapdiag" ./cmd/snapdiag)
	SNAPDIAG=$WORK/snapdiag
fi
(cd "$ROOT" && go build -o "$WORK/manyns" ./bench/manyns)

# timed NAME CMD...: runs CMD under GNU time, appends "NAME wall_s rss_kib" to $WORK/times.
timed() {
	local name=$1; shift
	/usr/bin/time -f "%e %M" -o "$WORK/t" "$@" >/dev/null 2>"$WORK/err" || {
		echo "allns.sh: $name failed:" >&2; tail -5 "$WORK/err" >&2; return 1; }
	echo "$name $(cat "$WORK/t")" >>"$WORK/times"
}

loop() {
	local out=$WORK/loop.out
	: >"$out"
	while read -r ns; do
		ip netns exec "$ns" ss -ltni >>"$out"
		NSTAT_HISTORY=$WORK/nstat.hist ip netns exec "$ns" nstat -az >>"$out"
		rm -f "$WORK/nstat.hist"
	done <"$WORK/names"
}
export -f loop
export WORK

fresh() { rm -rf "$WORK/out"; mkdir -p "$WORK/out"; }

stamp=$(date -u +%Y%m%dT%H%M%SZ)
report=$RESULTS_DIR/allns-$stamp.md
{
	echo "# capture --all-netns against a per-namespace loop ($stamp)"
	echo
	echo "Host: $(uname -r), $(nproc) CPUs. Command: bench/allns.sh --sizes \"$SIZES\" --runs $RUNS"
	echo "Medians of $RUNS rounds after one warm-up, alternated in each round."
	echo
	echo "| namespaces | command | wall s | peak RSS MiB | namespaces in bundle | wall vs loop |"
	echo "| --- | --- | --- | --- | --- | --- |"
} >"$WORK/report"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

for n in $SIZES; do
	manyns_start "$n"
	: >"$WORK/times"
	for round in $(seq 0 "$RUNS"); do
		fresh
		timed one "$SNAPDIAG" capture --all-netns --priority normal -q --out "$WORK/out" --samples 1 --sample 0
		found=$(zstd -dc "$WORK"/out/*.tar.zst | tar -xO manifest.json | jq '.namespaces.entries | length')
		fresh
		timed default "$SNAPDIAG" capture --all-netns --priority normal -q --out "$WORK/out"
		timed loop bash -c loop
		if ((round == 0)); then : >"$WORK/times"; fi # the warm-up
	done
	loopwall=$(awk '$1=="loop" {print $2}' "$WORK/times" | median)
	for name in one default loop; do
		wall=$(awk -v n=$name '$1==n {print $2}' "$WORK/times" | median)
		rss=$(awk -v n=$name '$1==n {print $3}' "$WORK/times" | median)
		ratio=$(awk -v a="$wall" -v b="$loopwall" 'BEGIN {printf "%.3f", a/b}')
		inb=$([[ $name == loop ]] && echo "-" || echo "$found")
		printf '| %s | %s | %.2f | %.1f | %s | %sx |\n' "$n" "$name" "$wall" "$(awk -v r="$rss" 'BEGIN {print r/1024}')" "$inb" "$ratio" >>"$WORK/report"
	done
	manyns_stop
done
{
	echo
	echo "one: \`snapdiag capture --all-netns --samples 1 --sample 0\`; default: \`snapdiag capture --all-netns\`"
	echo "(3 samples 1 s apart, 2 s packet window: its wall time is mostly the sampling interval);"
	echo "loop: \`ip netns exec NS ss -ltni; ip netns exec NS nstat -az\` for each namespace."
	echo "Targets at 500 namespaces: default under its 10 s deadline, peak RSS under 150 MiB."
} >>"$WORK/report"
mkdir -p "$RESULTS_DIR"
cp "$WORK/report" "$report"
cat "$report"
echo "wrote $report" >&2

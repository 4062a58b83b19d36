#!/usr/bin/env bash
# bench/agent.sh: the node agent's own cost, `snapdiag watch --all-netns`, against
# what a user would script instead.
#
# For each size in --sizes, makes that many idle network namespaces (bench/manyns:
# each with loopback up and one TCP listener, bind-mounted under /run/netns), then,
# one after the other in the same run:
#   agent  snapdiag watch --all-netns --every EVERY, for --duration seconds after a
#          5 s warm-up (the first discovery); CPU is utime+stime from
#          /proc/PID/stat over the window, memory VmRSS at its end and VmHWM
#   loop   for each namespace: ip netns exec NS ss -ltn, a round every EVERY (back
#          to back when a round takes longer), for --duration seconds under GNU
#          time (user+sys of the whole loop)
# and prints CPU per round (per --every for the agent) and the ratio agent/loop, and
# writes bench/results/agent-<UTC time>.md.
#
# Usage: sudo bench/agent.sh [--sizes "200 500"] [--duration 60] [--every 1s] [--snapdiag PATH]
# Everything it starts (namespaces, processes, temp dirs) is ended on exit, error or ^C.
set -Eeuo pipefail

SIZES="200 500"
DURATION=60
EVERY=1s
SNAPDIAG=""
RESULTS_DIR=""
while (($#)); do
	case $1 in
	--sizes) SIZES=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--every) EVERY=$2; shift 2 ;;
	--snapdiag) SNAPDIAG=$2; shift 2 ;;
	--results) RESULTS_DIR=$2; shift 2 ;;
	-h | --help) sed -n '2,19p' "$0"; exit 0 ;;
	*) echo "agent.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
done
[[ $(id -u) == 0 ]] || { echo "agent.sh: needs root (network namespaces)" >&2; exit 1; }
for tool in /usr/bin/time ip ss; do
	command -v "$tool" >/dev/null || { echo "agent.sh: needs $tool (apt-get install time iproute2)" >&2; exit 1; }
done
EVERY_S=$(awk -v e="$EVERY" 'BEGIN { if (e ~ /ms$/) print substr(e, 1, length(e)-2)/1000; else print substr(e, 1, length(e)-1) }')

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
WORK=$(mktemp -d /tmp/agent-bench.XXXXXX)
AGENT_PID=""
# shellcheck source=bench/manyns.sh
source "$ROOT/bench/manyns.sh"
cleanup() {
	if [[ -n $AGENT_PID ]]; then
		kill "$AGENT_PID" 2>/dev/null || true
		wait "$AGENT_PID" 2>/dev/null || true
	fi
	manyns_stop
	rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z $SNAPDIAG ]]; then
	(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/snapdiag" ./cmd/snapdiag)
	SNAPDIAG=$WORK/snapdiag
fi
(cd "$ROOT" && go build -o "$WORK/manyns" ./bench/manyns)
TICK=$(getconf CLK_TCK)

# cpu PID: utime+stime of PID in seconds.
cpu() { awk -v t="$TICK" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat"; }
# status PID FIELD: a /proc/PID/status field in MiB.
status() { awk -v f="$2:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

loop() {
	local end=$((SECONDS + DURATION)) rounds=0 start
	while ((SECONDS < end)); do
		start=$(date +%s.%N)
		while read -r ns; do
			ip netns exec "$ns" ss -ltn >/dev/null
		done <"$WORK/names"
		rounds=$((rounds + 1))
		left=$(awk -v s="$start" -v n="$(date +%s.%N)" -v e="$EVERY_S" 'BEGIN { l = e - (n - s); print (l > 0 ? l : 0) }')
		sleep "$left"
	done
	echo "$rounds" >"$WORK/rounds"
}
export -f loop
export WORK DURATION EVERY_S

stamp=$(date -u +%Y%m%dT%H%M%SZ)
report=$RESULTS_DIR/agent-$stamp.md
{
	echo "# watch --all-netns against a per-namespace ss loop ($stamp)"
	echo
	echo "Host: $(uname -r), $(nproc) CPUs (shared). Command: bench/agent.sh --sizes \"$SIZES\" --duration $DURATION --every $EVERY"
	echo "Idle namespaces, one listener each; agent and loop run one after the other in the same run."
	echo
	echo "| namespaces | command | rounds | CPU s | CPU s per round | % of a core | RSS MiB (peak) | CPU per round vs loop |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
} >"$WORK/report"

for n in $SIZES; do
	manyns_start "$n"

	rm -rf "$WORK/out"; mkdir -p "$WORK/out"
	"$SNAPDIAG" watch --all-netns --every "$EVERY" --out "$WORK/out" --log-format json 2>"$WORK/agent.log" &
	AGENT_PID=$!
	sleep 5
	grep -q '"namespaces discovered"' "$WORK/agent.log" || { echo "agent.sh: the agent did not discover:" >&2; tail -5 "$WORK/agent.log" >&2; exit 1; }
	watched=$(grep '"namespaces discovered"' "$WORK/agent.log" | tail -1 | sed 's/.*"watched":\([0-9]*\).*/\1/')
	c0=$(cpu "$AGENT_PID")
	sleep "$DURATION"
	c1=$(cpu "$AGENT_PID")
	rss=$(status "$AGENT_PID" VmRSS)
	hwm=$(status "$AGENT_PID" VmHWM)
	kill "$AGENT_PID"; wait "$AGENT_PID" || true; AGENT_PID=""
	bundles=$(find "$WORK/out" -name '*.tar.zst' | wc -l)
	arounds=$(awk -v d="$DURATION" -v e="$EVERY_S" 'BEGIN { print int(d / e) }')
	acpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')

	/usr/bin/time -f "%U %S %M" -o "$WORK/t" bash -c loop
	read -r lu ls lm <"$WORK/t"
	lrounds=$(cat "$WORK/rounds")
	lcpu=$(awk -v u="$lu" -v s="$ls" 'BEGIN { printf "%.2f", u + s }')

	aper=$(awk -v c="$acpu" -v r="$arounds" 'BEGIN { printf "%.4f", c / r }')
	lper=$(awk -v c="$lcpu" -v r="$lrounds" 'BEGIN { printf "%.4f", c / r }')
	ratio=$(awk -v a="$aper" -v l="$lper" 'BEGIN { printf "%.4f", a / l }')
	printf '| %s (%s watched) | agent | %s | %s | %s | %.2f | %s (%s) | %sx |\n' "$n" "$watched" "$arounds" "$acpu" "$aper" \
		"$(awk -v c="$acpu" -v d="$DURATION" 'BEGIN { print 100 * c / d }')" "$rss" "$hwm" "$ratio" >>"$WORK/report"
	printf '| %s | loop | %s | %s | %s | %.2f | %s (largest process) | 1x |\n' "$n" "$lrounds" "$lcpu" "$lper" \
		"$(awk -v c="$lcpu" -v d="$DURATION" 'BEGIN { print 100 * c / d }')" "$(awk -v m="$lm" 'BEGIN { printf "%.1f", m / 1024 }')" >>"$WORK/report"
	echo "agent bundles written at $n idle namespaces: $bundles" >>"$WORK/notes"

	manyns_stop
done
{
	echo
	echo "agent: \`snapdiag watch --all-netns --every $EVERY\` (a LISTEN dump and a netstat read per namespace"
	echo "per round, discovery every 10 s); loop: \`ip netns exec NS ss -ltn\` for each namespace, a round"
	echo "every $EVERY or back to back when a round takes longer. The loop sees only the listeners; the agent"
	echo "also reads each namespace's listen-path counters."
	cat "$WORK/notes"
} >>"$WORK/report"
mkdir -p "$RESULTS_DIR"
cp "$WORK/report" "$report"
cat "$report"
echo "wrote $report" >&2

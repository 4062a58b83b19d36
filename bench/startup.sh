#!/usr/bin/env bash
# bench/startup.sh: the fixed cost of starting snapdiag, which every capture pays
# before it reads anything, against starting what a user runs instead (ss, nstat
# and sysctl: one process each) and against an empty Go program (the floor of any
# Go binary on this machine).
#
# Each round runs `perf stat -r RUNS -e task-clock,page-faults` on, in turn:
#   snapdiag   snapdiag version      (./cmd/snapdiag built as CI builds it, static)
#   baseline   the same, built from --baseline REV (only with --baseline)
#   go-empty   a Go main that returns at once, built the same way
#   ss, nstat, sysctl   ss -V, nstat -V, sysctl --version
# and prints each one's task-clock, page faults and wall (perf's means of RUNS);
# then the medians over the rounds and the ratios snapdiag/pipeline (pipeline: the
# three tools' sum), snapdiag/go-empty and snapdiag/baseline, and writes
# bench/results/startup-<UTC time>.md. Page faults matter as much as CPU here: on a
# paravirtualised VM one costs 13-25 us.
#
# Usage: bench/startup.sh [--runs 40] [--rounds 3] [--snapdiag PATH] [--baseline REV]
set -Eeuo pipefail

RUNS=40
ROUNDS=3
SNAPDIAG=""
BASELINE=""
RESULTS_DIR=""
while (($#)); do
	case $1 in
	--runs) RUNS=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--snapdiag) SNAPDIAG=$2; shift 2 ;;
	--baseline) BASELINE=$2; shift 2 ;;
	--results) RESULTS_DIR=$2; shift 2 ;;
	-h | --help) sed -n '2,19p' "$0"; exit 0 ;;
	*) echo "startup.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
done
[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 && $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] ||
	{ echo "startup.sh: --runs and --rounds take a positive integer" >&2; exit 2; }
for tool in perf go ss nstat sysctl; do
	command -v "$tool" >/dev/null || { echo "startup.sh: needs $tool (apt-get install linux-perf iproute2 procps)" >&2; exit 1; }
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS_DIR=${RESULTS_DIR:-$REPO/bench/results}
WORK=$(mktemp -d /tmp/sdstartup-$$.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

build() { # build OUT DIR PKG: a static build as .ci/package.sh makes it
	(cd "$2" && CGO_ENABLED=0 go build -trimpath -o "$1" "$3")
}
if [[ -z $SNAPDIAG ]]; then
	SNAPDIAG=$WORK/snapdiag
	build "$SNAPDIAG" "$REPO" ./cmd/snapdiag
fi
mkdir "$WORK/empty" "$WORK/base"
printf 'module empty\n\ngo 1.26\n' >"$WORK/empty/go.mod"
printf 'package main\n\nfunc main() {}\n' >"$WORK/empty/main.go"
build "$WORK/go-empty" "$WORK/empty" .

names=(snapdiag)
cmds=("$SNAPDIAG version")
if [[ -n $BASELINE ]]; then
	git -C "$REPO" archive "$BASELINE" | tar -x -C "$WORK/base"
	build "$WORK/baseline" "$WORK/base" ./cmd/snapdiag
	names+=(baseline)
	cmds+=("$WORK/baseline version")
fi
names+=(go-empty ss nstat sysctl)
cmds+=("$WORK/go-empty" "$(command -v ss) -V" "$(command -v nstat) -V" "$(command -v sysctl) --version")

load() { cut -d' ' -f1-3 /proc/loadavg; }
{
	echo "# snapdiag start-up, $(date -u +%FT%TZ)"
	echo
	echo "perf stat -r $RUNS -e task-clock,page-faults, $ROUNDS rounds, the commands alternated;"
	echo "$(nproc) CPUs, load average at the start $(load). snapdiag: $SNAPDIAG${BASELINE:+, baseline: $BASELINE}"
	echo
	echo "| round | command | task-clock ms | page faults | wall ms |"
	echo "| --- | --- | --- | --- | --- |"
	for r in $(seq "$ROUNDS"); do
		for i in "${!names[@]}"; do
			# shellcheck disable=SC2086 # cmds[i] is a command line
			perf stat -r "$RUNS" -e task-clock,page-faults -o "$WORK/stat" ${cmds[i]} >/dev/null 2>&1
			awk -v r="$r" -v n="${names[i]}" '
				/task-clock/ { tc = $1 } /page-faults/ { pf = $1 } /time elapsed/ { w = $1 * 1000 }
				END { printf "| %d | %s | %.2f | %d | %.2f |\n", r, n, tc, pf, w }' "$WORK/stat"
		done
	done
} | tee "$WORK/table.md"

# Medians over the rounds, and the ratios.
summary=$(awk -F' *[|] *' '
	$3 ~ /^[a-z]/ && $2 ~ /^[0-9]+$/ { n = $3; k = ++cnt[n]; tc[n, k] = $4; pf[n, k] = $5; w[n, k] = $6 }
	function median(a, n, c,   i, j, t, v) {
		for (i = 1; i <= c; i++) v[i] = a[n, i]
		for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return c % 2 ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2
	}
	END {
		print "\n| command | task-clock ms | page faults | wall ms |\n| --- | --- | --- | --- |"
		for (n in cnt) { mt[n] = median(tc, n, cnt[n]); mp[n] = median(pf, n, cnt[n]); mw[n] = median(w, n, cnt[n]) }
		split("snapdiag baseline go-empty ss nstat sysctl", order, " ")
		for (i = 1; i <= 6; i++) if (order[i] in cnt) printf "| %s | %.2f | %d | %.2f |\n", order[i], mt[order[i]], mp[order[i]], mw[order[i]]
		pt = mt["ss"] + mt["nstat"] + mt["sysctl"]; pp = mp["ss"] + mp["nstat"] + mp["sysctl"]; pw = mw["ss"] + mw["nstat"] + mw["sysctl"]
		printf "| pipeline (ss+nstat+sysctl) | %.2f | %d | %.2f |\n\n", pt, pp, pw
		printf "snapdiag/pipeline: task-clock %.2fx, page faults %.2fx, wall %.2fx\n", mt["snapdiag"] / pt, mp["snapdiag"] / pp, mw["snapdiag"] / pw
		printf "snapdiag/go-empty: task-clock %.2fx, page faults %.2fx, wall %.2fx\n", mt["snapdiag"] / mt["go-empty"], mp["snapdiag"] / mp["go-empty"], mw["snapdiag"] / mw["go-empty"]
		if ("baseline" in cnt)
			printf "snapdiag/baseline: task-clock %.2fx, page faults %.2fx, wall %.2fx\n", mt["snapdiag"] / mt["baseline"], mp["snapdiag"] / mp["baseline"], mw["snapdiag"] / mw["baseline"]
	}' "$WORK/table.md")
echo "$summary"
mkdir -p "$RESULTS_DIR"
out=$RESULTS_DIR/startup-$(date -u +%Y%m%dT%H%M%SZ).md
{ cat "$WORK/table.md"; echo "$summary"; echo; echo "Load average at the end: $(load)."; } >"$out"
echo "wrote $out"

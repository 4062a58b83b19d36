#!/usr/bin/env bash
# bench/terminal-query.sh: wall time of `snapdiag capture --sample 0 --samples 1` on a
# pseudo-terminal that never answers (script(1) with nothing typed), for the work tree
# and for a git revision, alternated in one run. Before issue 18 every command first
# asked the terminal for its background colour and waited 5 s for an answer.
#
# Usage: bench/terminal-query.sh [--rev REV] [--runs N]     (default: --rev cd87738 --runs 5)
set -Eeuo pipefail
REV=cd87738
RUNS=5
while [ $# -gt 0 ]; do
	case "$1" in
	--rev) REV=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	*) echo "usage: $0 [--rev REV] [--runs N]" >&2; exit 2 ;;
	esac
done
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -o "$tmp/new" ./cmd/snapdiag
mkdir "$tmp/src"
git archive "$REV" | tar -x -C "$tmp/src"
(cd "$tmp/src" && CGO_ENABLED=0 go build -o "$tmp/old" ./cmd/snapdiag)
for _ in $(seq "$RUNS"); do
	for v in old new; do
		rm -rf "$tmp/out" && mkdir "$tmp/out"
		s=$(date +%s%N)
		script -qc "$tmp/$v capture --sample 0 --samples 1 --out $tmp/out -q" /dev/null >/dev/null
		e=$(date +%s%N)
		echo "$v $(((e - s) / 1000000))"
	done
done >"$tmp/times"
median() { grep "^$1 " "$tmp/times" | cut -d' ' -f2 | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
old=$(median old)
new=$(median new)
echo "$REV (old): $(grep '^old ' "$tmp/times" | cut -d' ' -f2 | tr '\n' ' ')ms, median $old ms"
echo "work tree (new): $(grep '^new ' "$tmp/times" | cut -d' ' -f2 | tr '\n' ' ')ms, median $new ms"
awk -v o="$old" -v n="$new" 'BEGIN { printf "old/new: %.1fx\n", o / n }'

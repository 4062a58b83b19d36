#!/usr/bin/env bash
# bench/fleet.sh: snapdiag fleet over N bundles, cold (empty cache) and warm
# (every summary cached), against what a user would run instead: a loop of
# snapdiag analyze --format json over the same bundles.
#
# The fleet is N copies of four real lab captures (fixtures/) under N/4
# hosts, laid out as push --to file:///DIR writes them (DIR/fleet/HOST/NAME).
# Each copy ends with its own zstd skippable frame (which every zstd
# decoder passes over), so every bundle has its own SHA-256 and the cold run
# really analyzes N bundles. With --s3, the fleet is pushed to versitygw on
# loopback as well and read back through s3://.
#
# Prints wall time and peak RSS (GNU time) of each run and writes
# bench/results/fleet-<UTC time>.md. Targets (issue 15): cold <= 20 s,
# warm <= 1 s, < 256 MiB.
#
# Usage: bench/fleet.sh [--n 1000] [--s3] [--loop] [--snapdiag PATH]
set -Eeuo pipefail
cd "$(dirname "$0")/.."

N=1000
S3=0
LOOP=0
SNAPDIAG=""
while (($#)); do
	case $1 in
	--n) N=$2; shift 2 ;;
	--s3) S3=1; shift ;;
	--loop) LOOP=1; shift ;;
	--snapdiag) SNAPDIAG=$2; shift 2 ;;
	*) echo "bench/fleet.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

work=$(mktemp -d)
vgw_pid=""
cleanup() {
	[ -n "$vgw_pid" ] && kill "$vgw_pid" 2>/dev/null && wait "$vgw_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

if [ -z "$SNAPDIAG" ]; then
	SNAPDIAG=$work/snapdiag
	go build -o "$SNAPDIAG" ./cmd/snapdiag
fi

fixtures=(synflood-cookies-off-v4 accept-queue-never-accepts healthy-busy synflood-cookies-on-v6)
dir=$work/store
for ((i = 0; i < N; i++)); do
	host=host$((i / 4))
	f=${fixtures[i % 4]}
	mkdir -p "$dir/fleet/$host"
	out=$dir/fleet/$host/snapdiag-$host-$f.tar.zst
	cp "fixtures/$f/bundle.tar.zst" "$out"
	# A skippable frame (magic 0x184D2A50, 4-byte length, payload): the
	# bundle's index makes its bytes, and so its checksum, its own.
	printf '\x50\x2a\x4d\x18\x08\x00\x00\x00%08d' "$i" >>"$out"
done

measure() { # name cache source...
	local name=$1 cache=$2
	shift 2
	local t0 t1 rss
	t0=$(date +%s.%N)
	/usr/bin/time -f '%M' -o "$work/rss" env XDG_CACHE_HOME="$cache" "$SNAPDIAG" fleet --stats --format json "$@" >/dev/null 2>"$work/stderr" || true
	t1=$(date +%s.%N)
	rss=$(tail -1 "$work/rss")
	printf '| %s | %.2f s | %d MiB | %s |\n' "$name" "$(echo "$t1 - $t0" | bc)" $((rss / 1024)) "$(grep 'fleet:' "$work/stderr" | sed 's/snapdiag: fleet: //')"
}

{
	echo "# snapdiag fleet, $N bundles ($(date -u +%FT%TZ), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
	echo
	echo "| run | wall | peak RSS | counts |"
	echo "| --- | --- | --- | --- |"
	measure "file cold" "$work/cache-file" "$dir"
	measure "file warm" "$work/cache-file" "$dir"
	if ((S3)); then
		VGW=$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")
		port=$((20000 + RANDOM % 20000))
		mkdir -p "$work/s3root/diag" "$work/s3meta"
		"$VGW" --access benchkey --secret benchsecret --port "127.0.0.1:$port" --quiet posix --sidecar "$work/s3meta" "$work/s3root" >/dev/null 2>&1 &
		vgw_pid=$!
		export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1 \
			AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
		for ((k = 0; k < 50; k++)); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
		for hd in "$dir"/fleet/*; do
			"$SNAPDIAG" push --to s3://diag/fleet "$hd"/*.tar.zst >/dev/null
		done
		measure "s3 cold" "$work/cache-s3" s3://diag/fleet
		measure "s3 warm" "$work/cache-s3" s3://diag/fleet
	fi
	if ((LOOP)); then
		t0=$(date +%s.%N)
		find "$dir" -name '*.tar.zst' -print0 | xargs -0 -n1 "$SNAPDIAG" analyze --format json >/dev/null 2>&1 || true
		t1=$(date +%s.%N)
		printf '| analyze loop (the alternative) | %.2f s | | one process per bundle |\n' "$(echo "$t1 - $t0" | bc)"
	fi
} >"$work/result.md"
cat "$work/result.md"
mkdir -p bench/results
cp "$work/result.md" "bench/results/fleet-$(date -u +%Y%m%dT%H%M%SZ).md"

#!/usr/bin/env bash
# bench/upload.sh: what shipping costs. Starts versitygw (the store the tests
# use) on 127.0.0.1 with a temporary root, then, taking turns in one run:
#   1. the watch's own cost without and with --upload s3://bench/w
#      (bench/watch.sh, --duration each), as a ratio;
#   2. push throughput: snapdiag push --to s3://bench/p of a --size MiB bundle
#      against `aws s3 cp` of the same file to the same store (when the aws
#      CLI is installed), --runs rounds each, medians, as a ratio.
#
# Usage: bench/upload.sh [--duration 30] [--size 256] [--runs 3]
# Needs versitygw (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0).
set -Eeuo pipefail

DURATION=30
SIZE=256
RUNS=3
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) DURATION=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	-h|--help) sed -n '2,12p' "$0"; exit 0 ;;
	*) echo "bench/upload.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

cd "$(dirname "$0")/.."
VGW=$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")
[ -x "$VGW" ] || { echo "bench/upload.sh: versitygw not installed" >&2; exit 1; }
WORK=$(mktemp -d /tmp/snapdiag-upload-bench.XXXXXX)
VPID=""
cleanup() {
	[ -n "$VPID" ] && { kill "$VPID" 2>/dev/null || true; wait "$VPID" 2>/dev/null || true; }
	rm -rf "$WORK"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -o "$WORK/snapdiag" ./cmd/snapdiag
mkdir -p "$WORK/root/bench" "$WORK/meta" "$WORK/spool"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VGW" --access benchkey --secret benchsecret123 --port "127.0.0.1:$PORT" --quiet \
	posix --sidecar "$WORK/meta" "$WORK/root" &
VPID=$!
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	sleep 0.1
done
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret123 AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

cpu_pct() { awk '/^  cpu/ {gsub("%", "", $8); print $8}'; }
rss_mib() { awk '/^  rss/ {print $2}'; }
echo "== the watch's own cost, --duration $DURATION s each, alternated"
for round in 1 2; do
	for mode in plain upload; do
		args=(--duration "$DURATION" --snapdiag "$WORK/snapdiag")
		[ "$mode" = upload ] && args+=(--upload s3://bench/w)
		out=$(bench/watch.sh "${args[@]}")
		printf '%s round %d: cpu %s%% of one core, rss %s MiB\n' "$mode" "$round" \
			"$(cpu_pct <<<"$out")" "$(rss_mib <<<"$out")" | tee -a "$WORK/watch.txt"
	done
done
awk '/^plain/ {pc += $5; pr += $10} /^upload/ {uc += $5; ur += $10}
	END {printf "upload/plain: cpu %.2fx, rss %.2fx\n", uc / pc, ur / pr}' "$WORK/watch.txt"

echo "== push throughput, $SIZE MiB, $RUNS runs each, alternated"
head -c "$((SIZE << 20))" /dev/urandom >"$WORK/spool/snapdiag-bench-20260101T000000Z.tar.zst"
f=$WORK/spool/snapdiag-bench-20260101T000000Z.tar.zst
# A manifest is what push reads the host from: the bundle is a random file
# here, so it goes through a pending sidecar naming its key instead.
pending() {
	printf '{"format":"snapdiag.pending/v1","bundle":"%s","target":"s3://bench/p","key":"p/bench/%s-%s","created":"2026-01-01T00:00:00Z","attempts":0}\n' \
		"$(basename "$f")" "$1" "$(basename "$f")" >"$f.pending"
}
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for i in $(seq "$RUNS"); do
	pending "run$i"
	# The key names the bundle: the sidecar's key must end in the bundle's name.
	s=$(date +%s.%N); "$WORK/snapdiag" push --pending "$WORK/spool" >/dev/null; e=$(date +%s.%N)
	echo "$s $e" | awk '{print $2 - $1}' >>"$WORK/snapdiag.t"
	if command -v aws >/dev/null; then
		s=$(date +%s.%N); aws s3 cp --only-show-errors "$f" "s3://bench/aws/run$i" --endpoint-url "$AWS_ENDPOINT_URL"; e=$(date +%s.%N)
		echo "$s $e" | awk '{print $2 - $1}' >>"$WORK/aws.t"
	fi
done
sd=$(median <"$WORK/snapdiag.t")
printf 'snapdiag push: median %.2f s = %.0f MiB/s\n' "$sd" "$(awk -v s="$SIZE" -v t="$sd" 'BEGIN {print s / t}')"
if [ -f "$WORK/aws.t" ]; then
	ad=$(median <"$WORK/aws.t")
	printf 'aws s3 cp:     median %.2f s = %.0f MiB/s\n' "$ad" "$(awk -v s="$SIZE" -v t="$ad" 'BEGIN {print s / t}')"
	awk -v a="$ad" -v s="$sd" 'BEGIN {printf "snapdiag/aws time ratio: %.2f\n", s / a}'
else
	echo "aws CLI not installed: no comparison"
fi

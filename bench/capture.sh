#!/usr/bin/env bash
# bench/capture.sh: time `snapdiag capture` against the tools it replaces.
#
# Builds a network namespace (sdbench-<pid>) holding --sockets TCP sockets (listeners and
# established pairs over the namespace's own loopback, held by bench/sockhold helpers),
# then, in one run and inside that namespace, times with bench/timeit (wall, peak RSS, CPU, to the microsecond):
#   snapdiag  snapdiag capture --samples 1 --sample 0 --out DIR
#   pipeline  ss -tanoi > f1; nstat -az > f2; sysctl -a > f3   (fresh NSTAT_HISTORY)
#   sos       sos report -o networking --batch --tmp-dir DIR
#   floor     sockdump: one bare sock_diag dump of the same table, discarded (bench/sockdump)
# one warm-up each, then --runs rounds (order rotated each round); prints medians and
# ratios and writes bench/results/capture-<UTC time>.{json,md}.
#
# Usage: sudo bench/capture.sh [--sockets 50000] [--runs 5] [options]   (--help for all)
# Everything it starts (namespace, helpers, temp dirs) is removed on exit, error or ^C.
set -Eeuo pipefail

SOCKETS=50000
RUNS=5
HOLD=900s          # helpers exit by themselves after this long, whatever happens
SNAPDIAG=""        # prebuilt binary; default: go build ./cmd/snapdiag
REV=""             # build snapdiag from this git revision instead of the work tree
WITH_SOS=1
RUN_TIMEOUT=600    # seconds, per timed command
PAIRS_PER_PROC=9000
RESULTS_DIR=""
KEEP=0
PERF=0
LOW_PRIORITY=0     # run snapdiag at its default --priority low (see --low-priority)
BASELINE=""        # also time snapdiag built from this revision, in the same rounds
# sos checks /proc/modules for the sock_diag modules before running `ss -peaonmi`; on a
# kernel with them built in (no modules at all here) it skips the socket table unless
# --allow-system-changes is given. With no loadable modules, the flag changes nothing else.
SOS_EXTRA=(--allow-system-changes)

usage() {
	cat <<'EOF'
usage: sudo bench/capture.sh [--sockets N] [--runs N] [options]

  --sockets N       TCP sockets to hold in the namespace (default 50000)
  --runs N          timed rounds after one warm-up (default 5; medians are reported)
  --snapdiag PATH   use this snapdiag binary instead of building ./cmd/snapdiag
  --rev REV         build snapdiag from git revision REV (a clean export), not the work tree
  --no-sos          skip `sos report` (it is installed with apt-get when missing)
  --hold DUR        lifetime of the socket-holding helpers (default 900s, max 30m)
  --timeout SECS    kill any one timed command after this long (default 600)
  --results DIR     where to write capture-<time>.json/.md (default bench/results)
  --sos-strict      run sos exactly as `sos report -o networking --batch` (without
                    --allow-system-changes, sos may skip `ss` when the diag modules are built in)
  --perf            after the timed runs, profile one more snapdiag capture with
                    `perf record -g` and write the hottest call paths beside the results
  --baseline REV    also time snapdiag built from git revision REV ("baseline"), alternated
                    with the others in the same rounds, and report snapdiag/baseline
  --low-priority    run snapdiag at its default --priority low (nice 10); by default the
                    benchmark passes --priority normal, when the binary knows it, so that
                    every command competes for the CPUs at the same priority
  --keep            keep the work directory (outputs of the last round) for inspection
EOF
}

ARGV="$*"
while (($#)); do
	case $1 in
	--sockets) SOCKETS=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--snapdiag) SNAPDIAG=$2; shift 2 ;;
	--rev) REV=$2; shift 2 ;;
	--no-sos) WITH_SOS=0; shift ;;
	--hold) HOLD=$2; shift 2 ;;
	--timeout) RUN_TIMEOUT=$2; shift 2 ;;
	--results) RESULTS_DIR=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--perf) PERF=1; shift ;;
	--low-priority) LOW_PRIORITY=1; shift ;;
	--baseline) BASELINE=$2; shift 2 ;;
	--sos-strict) SOS_EXTRA=(); shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "capture.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
done
[[ $SOCKETS =~ ^[0-9]+$ && $SOCKETS -ge 1 ]] || { echo "--sockets must be a positive integer" >&2; exit 2; }
[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 ]] || { echo "--runs must be a positive integer" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "capture.sh: needs root (network namespaces); run with sudo" >&2; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS_DIR=${RESULTS_DIR:-$REPO/bench/results}
NS="sdbench-$$"
WORK=$(mktemp -d /tmp/sdbench-$$.XXXXXX)
HELPER_PIDS=()

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	set +e
	# Our helpers first, by pid, then anything else still inside our own namespace
	# (a timed command cut short); the namespace only goes away with its last process.
	for pid in "${HELPER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	if ip netns list 2>/dev/null | grep -qw "^$NS"; then
		for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
		for _ in $(seq 50); do
			[[ -z $(ip netns pids "$NS" 2>/dev/null) ]] && break
			sleep 0.1
		done
		for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		ip netns del "$NS" 2>/dev/null || log "warning: could not delete namespace $NS"
	fi
	for pid in "${HELPER_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	if ((KEEP)); then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- tools -------------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
	command -v apt-get >/dev/null || die "$1 is missing and apt-get is not available"
	if ((!APT_UPDATED)); then apt-get update -qq >&2 || true; APT_UPDATED=1; fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}
command -v jq >/dev/null || apt_install jq
command -v zstd >/dev/null || apt_install zstd
command -v ss >/dev/null && command -v nstat >/dev/null && command -v ip >/dev/null || apt_install iproute2
command -v sysctl >/dev/null || apt_install procps
SOS_NOTE=""
if ((WITH_SOS)) && ! command -v sos >/dev/null; then
	apt_install sosreport || SOS_NOTE="apt-get install sosreport failed"
	command -v sos >/dev/null || { WITH_SOS=0; SOS_NOTE=${SOS_NOTE:-"sos not found after installing sosreport"}; }
fi
((WITH_SOS)) || SOS_NOTE=${SOS_NOTE:-"skipped (--no-sos)"}

log "building helpers in $WORK"
(cd "$REPO" && CGO_ENABLED=0 go build -o "$WORK/sockhold" ./bench/sockhold) || die "go build ./bench/sockhold failed"
(cd "$REPO" && CGO_ENABLED=0 go build -o "$WORK/sockdump" ./bench/sockdump) || die "go build ./bench/sockdump failed"
(cd "$REPO" && CGO_ENABLED=0 go build -o "$WORK/timeit" ./bench/timeit) || die "go build ./bench/timeit failed"
# build_rev COMMIT OUT: builds snapdiag from a clean git archive of COMMIT into OUT.
build_rev() {
	local src=$WORK/src-$1
	mkdir -p "$src"
	git -C "$REPO" archive "$1" | tar -x -C "$src"
	(cd "$src" && CGO_ENABLED=0 go build -ldflags "-X main.commit=$1" -o "$2" ./cmd/snapdiag) ||
		die "go build ./cmd/snapdiag at $1 failed"
}
DIRTY=unknown
if [[ -n $SNAPDIAG ]]; then
	SNAPDIAG=$(readlink -f "$SNAPDIAG") SNAPDIAG_DESC="prebuilt: $SNAPDIAG"
	COMMIT=$("$SNAPDIAG" version 2>/dev/null | awk '$1 == "commit" {print substr($2, 1, 12)}' || true)
elif [[ -n $REV ]]; then
	COMMIT=$(git -C "$REPO" rev-parse --short "$REV^{commit}") || die "unknown revision: $REV"
	build_rev "$COMMIT" "$WORK/snapdiag"
	SNAPDIAG=$WORK/snapdiag DIRTY=false SNAPDIAG_DESC="built from git archive $COMMIT"
else
	(cd "$REPO" && CGO_ENABLED=0 go build -o "$WORK/snapdiag" ./cmd/snapdiag) ||
		die "go build ./cmd/snapdiag failed (pass --snapdiag PATH to use a prebuilt binary)"
	SNAPDIAG=$WORK/snapdiag SNAPDIAG_DESC="built from the work tree"
	COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || true)
	DIRTY=$(git -C "$REPO" status --porcelain 2>/dev/null | grep -vq '^?? bench/' && echo true || echo false)
fi
[[ -x $SNAPDIAG ]] || die "snapdiag binary not executable: $SNAPDIAG"
BASELINE_COMMIT=""
if [[ -n $BASELINE ]]; then
	BASELINE_COMMIT=$(git -C "$REPO" rev-parse --short "$BASELINE^{commit}") || die "unknown revision: $BASELINE"
	build_rev "$BASELINE_COMMIT" "$WORK/snapdiag-baseline"
fi
COMMIT=${COMMIT:-unknown}
SNAPDIAG_VERSION=$("$SNAPDIAG" version 2>/dev/null | head -3 | tr '\n' ' ' | sed 's/ *$//' || true)
# Builds before --priority ran at the priority they were started with.
SNAPDIAG_EXTRA=()
# (The help is read whole first: grep -q would close the pipe early, and pipefail fail it.)
CAPTURE_HELP=$("$SNAPDIAG" capture --help 2>/dev/null || true)
if ((!LOW_PRIORITY)) && [[ $CAPTURE_HELP == *--priority* ]]; then
	SNAPDIAG_EXTRA=(--priority normal)
fi

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the namespace and its sockets -------------------------------------------------------
log "creating namespace $NS"
ip netns add "$NS"
nsx() { ip netns exec "$NS" "$@"; }
nsx ip link set lo up
# Plenty of ephemeral ports: every helper dials its own listener from 127.0.0.1.
nsx sysctl -qw net.ipv4.ip_local_port_range="10000 64999"

NOFILE_HARD=$(ulimit -Hn)
[[ $NOFILE_HARD == unlimited ]] && NOFILE_HARD=1048576
MAXP=$(((NOFILE_HARD - 100) / 2))
((PAIRS_PER_PROC > MAXP)) && PAIRS_PER_PROC=$MAXP
((PAIRS_PER_PROC >= 1)) || die "RLIMIT_NOFILE hard limit $NOFILE_HARD is too small"
# Each helper holds 2*pairs + 1 sockets (its listener).
PAIRS_TOTAL=$(((SOCKETS + 1) / 2))
NPROC=$(((PAIRS_TOTAL + PAIRS_PER_PROC - 1) / PAIRS_PER_PROC))
PAIRS_TOTAL=$(((SOCKETS - NPROC + 1) / 2))
((PAIRS_TOTAL < NPROC)) && PAIRS_TOTAL=$NPROC
log "holding $SOCKETS sockets: $NPROC helper(s), $PAIRS_TOTAL established pairs, RLIMIT_NOFILE hard=$NOFILE_HARD"
left=$PAIRS_TOTAL
for ((i = 0; i < NPROC; i++)); do
	n=$(((left + NPROC - i - 1) / (NPROC - i)))
	left=$((left - n))
	nsx "$WORK/sockhold" --pairs "$n" --hold "$HOLD" >"$WORK/hold.$i.out" 2>"$WORK/hold.$i.err" &
	HELPER_PIDS+=($!)
done
for i in "${!HELPER_PIDS[@]}"; do
	for ((t = 0; t < 1200; t++)); do
		grep -q '^ready' "$WORK/hold.$i.out" 2>/dev/null && break
		kill -0 "${HELPER_PIDS[$i]}" 2>/dev/null || die "helper $i exited: $(cat "$WORK/hold.$i.err")"
		sleep 0.1
	done
	grep -q '^ready' "$WORK/hold.$i.out" || die "helper $i not ready after 120s"
done
NS_SOCKETS=$(nsx ss -Htan | wc -l)
log "ss -Htan in $NS: $NS_SOCKETS TCP sockets"
((NS_SOCKETS >= SOCKETS)) || die "only $NS_SOCKETS sockets in the namespace, wanted $SOCKETS"
NS_STATES=$(nsx ss -Htan | awk '{c[$1]++} END {for (s in c) printf "%s=%d ", s, c[s]}' | sed 's/ $//')

# sockets_held: TCP sockets in the namespace that are not TIME_WAIT (sockstat's "inuse",
# per namespace), cheap enough to read between every two timed commands.
sockets_held() { nsx awk '$1 == "TCP:" {print $3}' /proc/net/sockstat; }
HELD_START=$(sockets_held)
# helpers_ok: every helper still runs and the namespace still holds its sockets. kill -0
# is not enough: HELPER_PIDS are our unreaped children, and a zombie answers kill -0.
helpers_ok() {
	local i held
	for i in "${!HELPER_PIDS[@]}"; do
		if [[ $(awk '{print $3}' "/proc/${HELPER_PIDS[$i]}/stat" 2>/dev/null) =~ ^(Z|X|)$ ]]; then
			log "helper $i (pid ${HELPER_PIDS[$i]}) has exited: $(tail -n2 "$WORK/hold.$i.err" | tr '\n' ' ')"
			return 1
		fi
	done
	held=$(sockets_held)
	if ((held < HELD_START)); then
		log "the namespace holds $held sockets, $HELD_START at the start: $(cat "$WORK"/hold.*.err | tr '\n' ' ')"
		return 1
	fi
}

# ---- the timed commands ------------------------------------------------------------------
CMD_snapdiag="snapdiag capture --samples 1 --sample 0 --out DIR${SNAPDIAG_EXTRA[*]:+ ${SNAPDIAG_EXTRA[*]}}"
CMD_baseline="snapdiag capture --samples 1 --sample 0 --out DIR, built from $BASELINE_COMMIT"
CMD_floor="sockdump (one sock_diag dump of every TCP socket with tcp_info, discarded)"
CMD_pipeline="ss -tanoi > f1; nstat -az > f2; sysctl -a > f3"
CMD_sos="sos report -o networking --batch ${SOS_EXTRA[*]:+${SOS_EXTRA[*]} }--tmp-dir DIR"
PIPELINE='ss -tanoi > "$1/f1"; nstat -az > "$1/f2"; sysctl -a > "$1/f3"'

RUNS_TSV=$WORK/runs.tsv     # tool round wall_s rss_kib exit out_bytes cpu_s
: >"$RUNS_TSV"
LAST_BUNDLE=""

# timed TOOL ROUND: runs one command in the namespace under bench/timeit, appends to runs.tsv.
timed() {
	local tool=$1 round=$2
	local dir=$WORK/out/$tool.$round tf rc bytes line
	rm -rf "$dir"; mkdir -p "$dir"
	tf=$dir.time
	set +e
	# Wall, peak RSS, and CPU (user + system, the command and its children),
	# to the microsecond (bench/timeit): GNU time's hundredths of a second
	# are 5% of a capture's 0.1 s.
	case $tool in
	snapdiag)
		nsx timeout -k 10 "$RUN_TIMEOUT" "$WORK/timeit" -o "$tf" -- \
			"$SNAPDIAG" capture --samples 1 --sample 0 --out "$dir" "${SNAPDIAG_EXTRA[@]}" >"$dir.stdout" 2>"$dir.stderr"
		;;
	pipeline)
		NSTAT_HISTORY=$dir/nstat.history nsx timeout -k 10 "$RUN_TIMEOUT" "$WORK/timeit" -o "$tf" -- \
			bash -c "$PIPELINE" pipeline "$dir" >"$dir.stdout" 2>"$dir.stderr"
		;;
	sos)
		nsx timeout -k 10 "$RUN_TIMEOUT" "$WORK/timeit" -o "$tf" -- \
			sos report -o networking --batch "${SOS_EXTRA[@]}" --tmp-dir "$dir" >"$dir.stdout" 2>"$dir.stderr"
		;;
	baseline)
		nsx timeout -k 10 "$RUN_TIMEOUT" "$WORK/timeit" -o "$tf" -- \
			"$WORK/snapdiag-baseline" capture --samples 1 --sample 0 --out "$dir" >"$dir.stdout" 2>"$dir.stderr"
		;;
	floor)
		nsx timeout -k 10 "$RUN_TIMEOUT" "$WORK/timeit" -o "$tf" -- \
			"$WORK/sockdump" >"$dir.stdout" 2>"$dir.stderr"
		;;
	esac
	rc=$?
	set -e
	line=$(tail -n1 "$tf" 2>/dev/null || true)
	local wall rss cpu
	if [[ $line =~ ^([0-9.]+)\ ([0-9]+)\ ([0-9.]+)\ ([0-9.]+)$ ]]; then
		wall=${BASH_REMATCH[1]} rss=${BASH_REMATCH[2]}
		cpu=$(awk -v u="${BASH_REMATCH[3]}" -v s="${BASH_REMATCH[4]}" 'BEGIN {printf "%.4f", u + s}')
	else
		wall=NaN rss=NaN cpu=NaN
	fi
	bytes=$(du -sb "$dir" | cut -f1)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$round" "$wall" "$rss" "$rc" "$bytes" "$cpu" >>"$RUNS_TSV"
	if [[ $tool == snapdiag ]]; then
		LAST_BUNDLE=$(tail -n1 "$dir.stdout" 2>/dev/null || true)
		[[ -f $LAST_BUNDLE ]] || LAST_BUNDLE=""
	fi
	log "$(printf '%-9s %-6s wall=%6ss cpu=%6ss rss=%8s KiB exit=%s out=%s bytes' "$tool" "$round" "$wall" "$cpu" "$rss" "$rc" "$bytes")"
	return "$rc"
}

TOOLS=(snapdiag pipeline floor)
[[ -n $BASELINE ]] && TOOLS+=(baseline)
((WITH_SOS)) && TOOLS+=(sos)

log "warm-up"
for tool in "${TOOLS[@]}"; do
	if ! timed "$tool" warmup; then
		case $tool in
		sos)
			SOS_NOTE="sos report failed in this environment (exit $(tail -n1 "$RUNS_TSV" | cut -f5)): $(tail -n5 "$WORK/out/sos.warmup.stderr" "$WORK/out/sos.warmup.stdout" 2>/dev/null | grep -v '^==>' | grep . | tail -n3 | tr '\n' ' ')"
			log "$SOS_NOTE; continuing without sos"
			TOOLS=(snapdiag pipeline floor)
			[[ -n $BASELINE ]] && TOOLS+=(baseline)
			;;
		snapdiag) die "snapdiag capture failed: $(tail -n5 "$WORK/out/snapdiag.warmup.stderr")" ;;
		pipeline) log "warning: the pipeline exited non-zero: $(tail -n3 "$WORK/out/pipeline.warmup.stderr")" ;;
		baseline) die "the baseline's capture failed: $(tail -n5 "$WORK/out/baseline.warmup.stderr")" ;;
		floor) die "sockdump failed: $(tail -n3 "$WORK/out/floor.warmup.stderr")" ;;
		esac
	fi
	[[ $tool == snapdiag ]] || rm -rf "$WORK/out/$tool.warmup"
done

for ((r = 1; r <= RUNS; r++)); do
	n=${#TOOLS[@]}
	for ((k = 0; k < n; k++)); do
		tool=${TOOLS[$(((k + r - 1) % n))]}
		helpers_ok || die "the namespace lost sockets before $tool round $r (a helper's --hold of $HOLD ran out, or it was killed)"
		timed "$tool" "$r" || true
		# Keep the newest bundle (for the checks below) and drop everything else.
		if [[ $tool != snapdiag || $r != "$RUNS" ]]; then ((KEEP && r == RUNS)) || rm -rf "$WORK/out/$tool.$r"; fi
	done
done
helpers_ok || die "the namespace lost sockets before the end of the run"
NS_SOCKETS_END=$(nsx ss -Htan | wc -l)

# ---- what the last bundle says about itself ----------------------------------------------
COLLECTORS='[]'
BUNDLE_COST=null
BUNDLE_TCP_ROWS=null
BUNDLE_BYTES=null
if [[ -n $LAST_BUNDLE ]]; then
	BUNDLE_BYTES=$(stat -c %s "$LAST_BUNDLE")
	COLLECTORS=$(tar --zstd -xOf "$LAST_BUNDLE" manifest.json 2>/dev/null |
		jq -c '[.collectors[]? | {name, status, duration_ms, error}]' 2>/dev/null || true)
	[[ $COLLECTORS == \[* ]] || COLLECTORS='[]'
	# What the capture says it cost itself (manifest "cost", absent before it was recorded).
	BUNDLE_COST=$(tar --zstd -xOf "$LAST_BUNDLE" manifest.json 2>/dev/null | jq -c '.cost // null' 2>/dev/null || true)
	[[ -n $BUNDLE_COST ]] || BUNDLE_COST=null
	BUNDLE_TCP_ROWS=$( (tar --zstd -xOf "$LAST_BUNDLE" sockets/tcp.jsonl 2>/dev/null || true) | wc -l)
	# The manifest's start..end is the collection phase; the rest of the wall time is
	# process start-up and writing the archive (tar + zstd + fsync + rename).
	read -r m_start m_end < <(tar --zstd -xOf "$LAST_BUNDLE" manifest.json 2>/dev/null |
		jq -r '"\(.start // "") \(.end // "")"' 2>/dev/null || true)
	if [[ -n ${m_start:-} && -n ${m_end:-} ]]; then
		COLLECT_MS=$(awk -v a="$(date -d "$m_start" +%s.%N)" -v b="$(date -d "$m_end" +%s.%N)" \
			'BEGIN {printf "%.1f", (b - a) * 1000}' 2>/dev/null || true)
	fi
fi
COLLECT_MS=${COLLECT_MS:-null}
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$RESULTS_DIR"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
PERF_TXT=""
if ((PERF)); then
	if command -v perf >/dev/null; then
		log "profiling one more capture with perf"
		mkdir -p "$WORK/out/perf"
		if nsx perf record -q -F 2999 -g -o "$WORK/perf.data" -- "$SNAPDIAG" capture --samples 1 --sample 0 \
			--out "$WORK/out/perf" -q "${SNAPDIAG_EXTRA[@]}" >/dev/null 2>"$WORK/perf.err"; then
			PERF_TXT=$RESULTS_DIR/capture-$STAMP.perf.txt
			{
				echo "# perf record -F 2999 -g: snapdiag capture --samples 1 --sample 0, $NS_SOCKETS sockets"
				echo "# (one run, after the timed ones; perf itself slows it down a little)"
				echo
				echo "## CPU time by phase (bench/perf-phases.awk)"
				perf script -i "$WORK/perf.data" -F ip,sym 2>/dev/null | awk -v hz=2999 -f "$REPO/bench/perf-phases.awk" || true
				echo
				echo "## hottest functions (self time)"
				perf report -i "$WORK/perf.data" --stdio --no-children --sort sym --percent-limit 1 -g none 2>/dev/null |
					awk '/^ +[0-9]/ && n++ < 30' || true
				echo
				echo "## hottest call paths (children: including callees)"
				perf report -i "$WORK/perf.data" --stdio --children --sort sym --percent-limit 3 -g none 2>/dev/null |
					awk '/^ +[0-9]/ && n++ < 50' || true
			} >"$PERF_TXT"
		else
			log "warning: perf record failed: $(tail -n2 "$WORK/perf.err")"
		fi
	else
		log "warning: --perf given but perf is not installed (apt-get install linux-perf)"
	fi
fi

# ---- results -----------------------------------------------------------------------------
JSON=$RESULTS_DIR/capture-$STAMP.json
MD=$RESULTS_DIR/capture-$STAMP.md

jq -n -R \
	--arg date "$(date -u +%FT%TZ)" --arg kernel "$(uname -r)" --argjson cpus "$(nproc)" \
	--argjson mem_kib "$(awk '/^MemTotal/ {print $2}' /proc/meminfo)" \
	--arg commit "$COMMIT" --arg dirty "$DIRTY" --arg version "$SNAPDIAG_VERSION" \
	--arg iproute "$(ss -V 2>&1 | head -1)" --arg sosver "$(dpkg-query -W -f '${Version}' sosreport 2>/dev/null || true)" \
	--argjson sockets_requested "$SOCKETS" --argjson sockets "$NS_SOCKETS" --argjson sockets_end "$NS_SOCKETS_END" \
	--arg states "$NS_STATES" --argjson helpers "$NPROC" --argjson runs "$RUNS" \
	--arg c1 "$CMD_snapdiag" --arg c2 "$CMD_pipeline" --arg c3 "$CMD_sos" --arg c4 "$CMD_floor" --arg c5 "$CMD_baseline" --arg sos_note "$SOS_NOTE" \
	--argjson collectors "$COLLECTORS" --argjson cost "$BUNDLE_COST" --argjson tcp_rows "$BUNDLE_TCP_ROWS" --argjson bundle_bytes "$BUNDLE_BYTES" \
	--arg load_start "$LOAD_START" --arg load_end "$LOAD_END" --argjson collect_ms "$COLLECT_MS" \
	--arg perf_txt "${PERF_TXT##*/}" \
	--arg argv "bench/capture.sh $ARGV" --arg binary "$SNAPDIAG_DESC" '
def median: sort | if length == 0 then null elif length % 2 == 1 then .[length/2|floor]
            else (.[length/2 - 1] + .[length/2]) / 2 end;
def num: if . == "NaN" then null else tonumber end;
def ratio(a; b): if a == null or b == null or b == 0 then null else ((a / b) * 1000 | round) / 1000 end;
# per_round(a; b): the wall time of a over that of b in each round both ran in (back to back, so a drift of
# the speed of the machine between rounds cancels out): median, min and max.
def per_round($rows; a; b): [$rows[] | select(.round != "warmup" and .exit == 0)] | group_by(.round)
  | map((map(select(.tool == a)) | .[0].wall_s) as $x | (map(select(.tool == b)) | .[0].wall_s) as $y
        | if $x == null or $y == null or $y == 0 then empty else $x / $y end)
  | if length == 0 then null
    else {median: (median * 1000 | round / 1000), min: (min * 1000 | round / 1000), max: (max * 1000 | round / 1000), rounds: length} end;
[inputs | split("\t") | {tool: .[0], round: .[1], wall_s: (.[2]|num), rss_kib: (.[3]|num),
                         exit: (.[4]|tonumber), out_bytes: (.[5]|tonumber), cpu_s: (.[6]|num)}] as $rows
| ($rows | map(select(.round != "warmup")) | group_by(.tool)
   | map({key: .[0].tool, value: {
       runs: length,
       failed_runs: (map(select(.exit != 0)) | length),
       median_wall_s: (map(select(.exit == 0) | .wall_s) | median),
       median_rss_kib: (map(select(.exit == 0) | .rss_kib) | median),
       max_rss_kib: (map(select(.exit == 0) | .rss_kib) | max),
       median_out_bytes: (map(select(.exit == 0) | .out_bytes) | median),
       median_cpu_s: (map(select(.exit == 0) | .cpu_s) | median),
       wall_s: map(.wall_s), cpu_s: map(.cpu_s), rss_kib: map(.rss_kib), exit: map(.exit)}}) | from_entries) as $s
| {
  schema: "snapdiag.bench.capture/1",
  date: $date, command: $argv,
  host: {kernel: $kernel, cpus: $cpus, mem_kib: $mem_kib, loadavg_start: $load_start, loadavg_end: $load_end, iproute2: $iproute, sosreport: $sosver},
  snapdiag: {commit: $commit, dirty_tree: $dirty, binary: $binary, version: $version},
  namespace: {sockets_requested: $sockets_requested, tcp_sockets: $sockets, tcp_sockets_at_end: $sockets_end,
              states: $states, helper_processes: $helpers},
  runs: $runs, warmup: 1,
  commands: {snapdiag: $c1, pipeline: $c2, sos: $c3, floor: $c4, baseline: $c5},
  results: $s,
  ratios: {
    wall_snapdiag_over_pipeline: ratio($s.snapdiag.median_wall_s; $s.pipeline.median_wall_s),
    rss_snapdiag_over_pipeline: ratio($s.snapdiag.median_rss_kib; $s.pipeline.median_rss_kib),
    wall_snapdiag_over_sos: ratio($s.snapdiag.median_wall_s; $s.sos.median_wall_s),
    rss_snapdiag_over_sos: ratio($s.snapdiag.median_rss_kib; $s.sos.median_rss_kib),
    wall_snapdiag_over_floor: ratio($s.snapdiag.median_wall_s; $s.floor.median_wall_s),
    cpu_snapdiag_over_pipeline: ratio($s.snapdiag.median_cpu_s; $s.pipeline.median_cpu_s),
    cpu_snapdiag_over_floor: ratio($s.snapdiag.median_cpu_s; $s.floor.median_cpu_s),
    wall_baseline_over_pipeline: ratio($s.baseline.median_wall_s; $s.pipeline.median_wall_s),
    wall_snapdiag_over_baseline: ratio($s.snapdiag.median_wall_s; $s.baseline.median_wall_s),
    cpu_snapdiag_over_baseline: ratio($s.snapdiag.median_cpu_s; $s.baseline.median_cpu_s)},
  per_round_wall: {
    snapdiag_over_pipeline: per_round($rows; "snapdiag"; "pipeline"),
    snapdiag_over_baseline: per_round($rows; "snapdiag"; "baseline"),
    baseline_over_pipeline: per_round($rows; "baseline"; "pipeline")},
  targets: {
    wall_ratio_max: 0.25, rss_max_mib: 100,
    wall_ok: ((ratio($s.snapdiag.median_wall_s; $s.pipeline.median_wall_s) // 99) <= 0.25),
    rss_ok: (($s.snapdiag.max_rss_kib // 1e12) < 102400)},
  sos_note: $sos_note,
  perf_report: (if $perf_txt == "" then null else $perf_txt end),
  last_bundle: {collect_phase_ms: $collect_ms, cost: $cost, bytes: $bundle_bytes, tcp_jsonl_rows: $tcp_rows, collectors: $collectors},
  raw: $rows
}' <"$RUNS_TSV" >"$JSON"

# The table and the markdown summary, from the JSON.
jq -r '
def f(x; d): if x == null then "n/a" else (x * d | round / d | tostring) end;
def mib(k): if k == null then "n/a" else f(k / 1024; 10) end;
"# snapdiag capture benchmark, \(.date)",
"",
"`\(.command)` on kernel \(.host.kernel), \(.host.cpus) CPUs; snapdiag \(.snapdiag.commit) (\(.snapdiag.binary))\(if .snapdiag.dirty_tree == "true" then " + uncommitted changes" elif .snapdiag.dirty_tree == "unknown" then " (prebuilt binary)" else "" end).",
"Namespace: \(.namespace.tcp_sockets) TCP sockets (\(.namespace.states)) held by \(.namespace.helper_processes) helper processes; \(.runs) runs after one warm-up, medians.",
"",
"| tool | command | wall (s) | CPU (s) | peak RSS (MiB) | max RSS (MiB) | output (MiB) | failed runs |",
"| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
(.commands as $c | .results | to_entries[] |
 "| \(.key) | `\($c[.key])` | \(f(.value.median_wall_s; 1000)) | \(f(.value.median_cpu_s; 1000)) | \(mib(.value.median_rss_kib)) | \(mib(.value.max_rss_kib)) | \(if .value.median_out_bytes == null then "n/a" else f(.value.median_out_bytes / 1048576; 10) end) | \(.value.failed_runs)/\(.value.runs) |"),
"",
"| ratio | wall | CPU | peak RSS |",
"| --- | ---: | ---: | ---: |",
"| snapdiag / pipeline | \(f(.ratios.wall_snapdiag_over_pipeline; 1000)) | \(f(.ratios.cpu_snapdiag_over_pipeline; 1000)) | \(f(.ratios.rss_snapdiag_over_pipeline; 1000)) |",
"| snapdiag / floor | \(f(.ratios.wall_snapdiag_over_floor; 1000)) | \(f(.ratios.cpu_snapdiag_over_floor; 1000)) | |",
"| snapdiag / sos | \(f(.ratios.wall_snapdiag_over_sos; 1000)) | | \(f(.ratios.rss_snapdiag_over_sos; 1000)) |",
(if .results.baseline then "| snapdiag / baseline | \(f(.ratios.wall_snapdiag_over_baseline; 1000)) | \(f(.ratios.cpu_snapdiag_over_baseline; 1000)) | |\n| baseline / pipeline | \(f(.ratios.wall_baseline_over_pipeline; 1000)) | | |" else empty end),
"",
(.per_round_wall.snapdiag_over_pipeline | if . == null then empty else "Per round (the tools back to back, rounds rotated), wall snapdiag / pipeline: median \(.median), \(.min) to \(.max) over \(.rounds) rounds." end),
(.per_round_wall.snapdiag_over_baseline | if . == null then empty else "Per round, wall snapdiag / baseline: median \(.median), \(.min) to \(.max)." end),
"",
"Targets: wall ratio vs pipeline <= 0.25: **\(if .targets.wall_ok then "met" else "NOT met" end)**; peak RSS < 100 MiB: **\(if .targets.rss_ok then "met" else "NOT met" end)** (max \(mib(.results.snapdiag.max_rss_kib)) MiB).",
"",
(.namespace.tcp_sockets as $n | .last_bundle as $b |
 ([$b.collectors[] | select(.status != "ok") | "\(.name)=\(.status)"] | join(", ")) as $bad |
 (if ($b.tcp_jsonl_rows // 0) < ([$n, 200000] | min) then "\n**Warning: the last bundle has \($b.tcp_jsonl_rows // 0) socket rows for \($n) sockets: snapdiag did not do the same work as the pipeline.**" else empty end),
 (if $bad != "" then "\n**Warning: collectors not ok in the last bundle: \($bad).**" else empty end)),
"",
"Last bundle: \(.last_bundle.bytes // "n/a") bytes, collection phase (manifest start..end) \(.last_bundle.collect_phase_ms // "n/a") ms, sockets/tcp.jsonl rows: \(.last_bundle.tcp_jsonl_rows // "n/a"); collectors: \(.last_bundle.collectors | map("\(.name)=\(.status) \(.duration_ms // "?")ms") | join(", "))",
(.last_bundle.cost | if . == null then empty else "Cost recorded in the last bundle: \(.cpu_user_ms + .cpu_system_ms | round) ms CPU (\(.cpu_user_ms | round) user, \(.cpu_system_ms | round) system), peak RSS \(.peak_rss_kib) KiB (\(.peak_rss_scope)), nice \(.priority.nice // "?"), io \(.priority.io_class // "?")/\(.priority.io_level // "?")." end),
(if .sos_note != "" then "\nsos: \(.sos_note)" else empty end),
"",
"Load average at start / end: \(.host.loadavg_start) / \(.host.loadavg_end) (2 CPUs: anything else running skews the figures).",
(if .perf_report then "CPU profile of one capture: \(.perf_report)" else empty end),
"",
"Peak RSS is wait4 ru_maxrss, as GNU time %M reports it: for the pipeline and sos, the largest single process among them and their children (not a sum)."
' "$JSON" >"$MD"

echo
cat "$MD"
echo
echo "results: $JSON"
echo "summary: $MD"
[[ -z $PERF_TXT ]] || echo "profile: $PERF_TXT"

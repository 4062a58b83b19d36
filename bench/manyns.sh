# bench/manyns.sh: sourced by the benchmarks that need many network namespaces
# (allns.sh, agent.sh). Needs $WORK (a temp dir) and $WORK/manyns (bench/manyns built).
#
#   manyns_start N   makes N namespaces (each with loopback up and one TCP listener on
#                    127.0.0.1:8080, bind-mounted under /run/netns), held by bench/manyns
#                    until manyns_stop; their names, one a line, go to $WORK/names
#   manyns_stop      removes them (bench/manyns removes them when its stdin closes)
# The caller's EXIT trap calls manyns_stop too, so ^C removes them.

MANYNS_PID=""

manyns_start() {
	mkfifo "$WORK/hold"
	"$WORK/manyns" -n "$1" -hold 20m <"$WORK/hold" >"$WORK/manyns.out" &
	MANYNS_PID=$!
	exec {MANYNS_FD}>"$WORK/hold"
	until grep -qx ready "$WORK/manyns.out" 2>/dev/null; do
		kill -0 "$MANYNS_PID" 2>/dev/null || { echo "manyns failed" >&2; return 1; }
		sleep 0.2
	done
	grep -v '^ready$' "$WORK/manyns.out" >"$WORK/names"
}

manyns_stop() {
	[[ -n $MANYNS_PID ]] || return 0
	exec {MANYNS_FD}>&- 2>/dev/null || true
	wait "$MANYNS_PID" 2>/dev/null || kill "$MANYNS_PID" 2>/dev/null || true
	MANYNS_PID=""
	rm -f "$WORK/hold"
}

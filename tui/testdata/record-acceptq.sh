#!/bin/sh
# Records testdata/acceptq.tar.zst: a real accept-queue overflow on the
# loopback of a private network namespace, captured by the real binary.
# A listener with backlog 8 never accepts; clients keep connecting while
# snapdiag captures; somaxconn is lowered to 64 in the namespace, as a
# hardened host might have it, so the report recommends a sysctl too.
#
#   go build -o /tmp/snapdiag ./cmd/snapdiag
#   unshare -n tui/testdata/record-acceptq.sh /tmp/snapdiag DIR
#
# (TestRecordFixtures -record does both.) Needs root for unshare.
set -e
bin=$1; out=$2
ip link set lo up
sysctl -qw net.core.somaxconn=64
python3 - <<'PY' &
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8143)); s.listen(8)
time.sleep(6)
PY
srv=$!
sleep 0.3
python3 - <<'PY' &
import socket, time
end = time.time() + 4
conns = []
while time.time() < end:
    c = socket.socket(); c.setblocking(False)
    try: c.connect(("127.0.0.1", 8143))
    except BlockingIOError: pass
    conns.append(c)
    time.sleep(0.01)
PY
cli=$!
sleep 0.5
"$bin" capture --out "$out" --reason "lab: accept queue overflow on 127.0.0.1:8143" --port 8143 \
	--samples 2 --interval 300ms --sample 1s | tail -1
kill $cli $srv 2>/dev/null || true
wait 2>/dev/null || true

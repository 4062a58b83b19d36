package tui

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// synthStates are the states of the synthetic socket table, weighted as on
// a busy server.
var synthStates = [...]string{"ESTAB", "ESTAB", "ESTAB", "ESTAB", "TIME-WAIT", "TIME-WAIT", "SYN-RECV", "CLOSE-WAIT", "FIN-WAIT-2", "LISTEN"}

// writeSocketBundle writes a bundle holding a manifest and n sockets in
// sockets/tcp.jsonl, generated from a fixed seed: a synthetic scale test of
// the sockets view, not a fixture. It returns the bundle's path and how
// many rows have state ESTAB and local port 443.
func writeSocketBundle(tb testing.TB, dir string, n int) (string, int) {
	tb.Helper()
	w, err := bundle.NewWriter(dir, 0)
	if err != nil {
		tb.Fatal(err)
	}
	f, err := w.Create(bundle.PathSocketsTCP)
	if err != nil {
		tb.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	var line []byte
	rng := rand.New(rand.NewPCG(1, 2))
	ports := []int{443, 80, 143, 8080}
	estab443 := 0
	for i := range n {
		st := synthStates[rng.IntN(len(synthStates))]
		lport := ports[rng.IntN(len(ports))]
		s := bundle.Socket{
			Family: "inet", State: st,
			Local:  fmt.Sprintf("10.0.0.1:%d", lport),
			Remote: fmt.Sprintf("10.%d.%d.%d:%d", rng.IntN(256), rng.IntN(256), rng.IntN(256), 1024+rng.IntN(60000)),
			RecvQ:  uint32(rng.IntN(4)), SendQ: uint32(rng.IntN(2000)),
			UID: 0, Inode: uint32(100000 + i), Cookie: uint64(i + 1),
		}
		if st == "LISTEN" {
			s.Remote = "0.0.0.0:*"
		}
		if st == "ESTAB" {
			s.Timer = "keepalive"
			s.Info = &bundle.TCPInfo{State: 1, RTT: uint32(200 + rng.IntN(90000)), SndCwnd: 10, SndMSS: 1448, RcvMSS: 536}
			if lport == 443 {
				estab443++
			}
		}
		line = bundle.AppendSocket(line[:0], &s)
		if _, err := bw.Write(line); err != nil {
			tb.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := &bundle.Manifest{
		Host:    bundle.Host{Hostname: "synthetic", KernelRelease: "6.18.44"},
		Start:   now,
		End:     now.Add(time.Second),
		Sockets: &bundle.SocketsInfo{Total: n, Written: n, Cap: n},
		Collectors: []bundle.CollectorStatus{
			{Name: "sockets", Status: bundle.StatusOK, Files: []string{bundle.PathSocketsTCP}},
		},
	}
	path, err := w.Commit(bundle.FileName("synthetic", now), m)
	if err != nil {
		tb.Fatal(err)
	}
	return path, estab443
}

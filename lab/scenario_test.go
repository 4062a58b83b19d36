package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// counterWant is a check on one counter's delta.
type counterWant struct {
	key string
	min int64 // delta ≥ min
	max int64 // delta ≤ max; -1 for no bound
}

func checkDeltas(t *testing.T, d Counters, wants []counterWant) {
	t.Helper()
	for _, w := range wants {
		got := d[w.key]
		if got < w.min || (w.max >= 0 && got > w.max) {
			t.Errorf("Δ%s = %d, want %d..%d", w.key, got, w.min, w.max)
		}
	}
}

// TestSYNFlood reproduces a SYN-queue exhaustion by black-holed clients on
// the running kernel: the SYN_RECV plateau, the counters that move, and what
// a good client sees.
func TestSYNFlood(t *testing.T) {
	t.Parallel()
	cap16, err := SynQueueCap(16)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    SYNFloodOpts
		plateau int
		probe   Outcome
		deltas  []counterWant
		// rising is the counter that must keep rising after the plateau,
		// as the bad client retransmits its dropped SYNs.
		rising string
	}{{
		name:    "cookies off",
		opts:    SYNFloodOpts{Backlog: 16, Syncookies: 0},
		plateau: cap16,
		probe:   TimedOut,
		deltas: []counterWant{
			{"TcpExt.TCPReqQFullDrop", int64(40 - cap16), -1},
			{"TcpExt.TCPReqQFullDoCookies", 0, 0},
			{"TcpExt.ListenOverflows", 0, 0},
		},
		rising: "TcpExt.TCPReqQFullDrop",
	}, {
		name:    "cookies on",
		opts:    SYNFloodOpts{Backlog: 16, Syncookies: 1},
		plateau: cap16,
		probe:   Connected,
		deltas: []counterWant{
			{"TcpExt.TCPReqQFullDoCookies", int64(40 - cap16), -1},
			{"TcpExt.TCPReqQFullDrop", 0, 0},
			{"TcpExt.ListenDrops", 0, 0},
		},
		rising: "TcpExt.TCPReqQFullDoCookies",
	}, {
		name:    "cookies off, IPv6",
		opts:    SYNFloodOpts{Backlog: 16, Syncookies: 0, IPv6: true},
		plateau: cap16,
		probe:   TimedOut,
		deltas: []counterWant{
			{"TcpExt.TCPReqQFullDrop", int64(40 - cap16), -1},
		},
		rising: "TcpExt.TCPReqQFullDrop",
	}, {
		// Branch F: the 3/4 rule of tcp_max_syn_backlog caps the queue at
		// ⌊0.75·16⌋+1 = 13, below the backlog, and counts only ListenDrops.
		name:    "cookies off, max_syn_backlog 16, backlog 64",
		opts:    SYNFloodOpts{Backlog: 64, Syncookies: 0, MaxSynBacklog: 16},
		plateau: 13,
		probe:   TimedOut,
		deltas: []counterWant{
			{"TcpExt.ListenDrops", 40 - 13, -1},
			{"TcpExt.TCPReqQFullDrop", 0, 0},
			{"TcpExt.ListenOverflows", 0, 0},
		},
		rising: "TcpExt.ListenDrops",
	}, {
		// Mode 2 sends cookies for every SYN: no request sockets at all.
		name:    "cookies always",
		opts:    SYNFloodOpts{Backlog: 16, Syncookies: 2, BadClients: 5},
		plateau: 0,
		probe:   Connected,
		deltas: []counterWant{
			{"TcpExt.TCPReqQFullDoCookies", 5, -1},
			{"TcpExt.SyncookiesSent", 5, -1},
			{"TcpExt.ListenDrops", 0, 0},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := New(t, Options{IPv6: tt.opts.IPv6})
			f, err := SYNFlood(l, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if f.SynRecv != tt.plateau {
				t.Errorf("SYN_RECV plateau = %d, want %d", f.SynRecv, tt.plateau)
			}
			atPlateau, err := l.Counters(l.Server)
			if err != nil {
				t.Fatal(err)
			}
			d := atPlateau.Sub(f.Before)
			t.Logf("plateau %d SYN_RECV; at plateau ΔTCPReqQFullDrop %d ΔTCPReqQFullDoCookies %d ΔSyncookiesSent %d ΔListenDrops %d ΔListenOverflows %d",
				f.SynRecv, d["TcpExt.TCPReqQFullDrop"], d["TcpExt.TCPReqQFullDoCookies"], d["TcpExt.SyncookiesSent"], d["TcpExt.ListenDrops"], d["TcpExt.ListenOverflows"])
			checkDeltas(t, d, tt.deltas)
			if tt.opts.Syncookies == 0 && tt.opts.MaxSynBacklog == 0 && d["TcpExt.ListenDrops"] != d["TcpExt.TCPReqQFullDrop"] {
				t.Errorf("ΔListenDrops %d != ΔTCPReqQFullDrop %d with cookies off", d["TcpExt.ListenDrops"], d["TcpExt.TCPReqQFullDrop"])
			}
			if tt.opts.Syncookies == 1 && d["TcpExt.SyncookiesSent"] != d["TcpExt.TCPReqQFullDoCookies"] {
				t.Errorf("ΔSyncookiesSent %d != ΔTCPReqQFullDoCookies %d in a plain flood", d["TcpExt.SyncookiesSent"], d["TcpExt.TCPReqQFullDoCookies"])
			}

			// ss agrees: the listener's accept queue is empty (it accepts),
			// its Send-Q is the backlog, and it counts the same SYN_RECV.
			ss, err := l.SS(context.Background(), l.Server)
			if err != nil {
				t.Fatal(err)
			}
			lst, ok := ss.Listener(int(f.Target.Port()))
			if !ok || lst.RecvQ != 0 || int(lst.SendQ) != tt.opts.Backlog || lst.Local != f.Target.String() {
				t.Errorf("ss listener = %+v (found %v), want %s Recv-Q 0 Send-Q %d", lst, ok, f.Target, tt.opts.Backlog)
			}
			if got := ss.SynRecv[int(f.Target.Port())]; got != f.SynRecv {
				t.Errorf("ss SYN-RECV = %d, /proc/net/tcp* = %d", got, f.SynRecv)
			}

			// A good client: the probe outlives one SYN retransmit (1 s).
			r, err := l.Probe(f.Good, f.Target, 1500*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if r.Outcome != tt.probe {
				t.Errorf("good client probe: %s, want %s", r, tt.probe)
			}
			// Under 1 s: the first SYN got in, not a retransmit.
			if tt.probe == Connected && r.Latency >= time.Second {
				t.Errorf("good client probe took %v", r.Latency)
			}
			if tt.rising != "" {
				after, err := l.Counters(l.Server)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("probe %s; %s %+d at plateau, %+d after the probe", r, tt.rising, d[tt.rising], after[tt.rising]-f.Before[tt.rising])
				if after[tt.rising] <= atPlateau[tt.rising] {
					t.Errorf("%s did not rise after the plateau: %d then %d", tt.rising, atPlateau[tt.rising], after[tt.rising])
				}
			}
			if tt.probe == Connected && tt.opts.Syncookies != 0 && tt.plateau > 0 {
				after, _ := l.Counters(l.Server)
				if after["TcpExt.SyncookiesRecv"] <= f.Before["TcpExt.SyncookiesRecv"] {
					t.Errorf("the good client got in without a cookie: ΔSyncookiesRecv = 0")
				}
			}
		})
	}
}

// TestSYNFloodSustained checks that a sustained flood opens one batch per
// second, no more, and that every SYN past the plateau is dropped.
func TestSYNFloodSustained(t *testing.T) {
	t.Parallel()
	l := New(t, Options{})
	f, err := SYNFlood(l, SYNFloodOpts{BadClients: 20, Sustain: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := SynQueueCap(16)
	if f.SynRecv != want {
		t.Errorf("plateau %d, want %d", f.SynRecv, want)
	}
	err = WaitFor(l.Done(), 5*time.Second, 50*time.Millisecond, "3 batches of bad clients", func() (bool, string, error) {
		n := f.Conns.Len()
		return n >= 60, fmt.Sprintf("%d sockets", n), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.Stop()
	if n := f.Conns.Len(); n != 60 {
		t.Errorf("%d bad sockets after the flood ended, want 60", n)
	}
	n, err := l.SynRecv(f.Target.Port())
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Errorf("SYN_RECV %d after the last batch, want %d", n, want)
	}
	c, err := l.Counters(l.Server)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Sub(f.Before)["TcpExt.TCPReqQFullDrop"]; d < int64(60-want) {
		t.Errorf("ΔTCPReqQFullDrop = %d, want ≥ %d", d, 60-want)
	}
}

func TestAcceptQueueFull(t *testing.T) {
	t.Parallel()
	l := New(t, Options{})
	a, err := AcceptQueueFull(l, AcceptQueueOpts{Backlog: 8, Clients: 12})
	if err != nil {
		t.Fatal(err)
	}
	if a.Queued != 9 || a.Overflowed != 3 {
		t.Errorf("queued %d, overflowed %d; want 9, 3", a.Queued, a.Overflowed)
	}
	ss, err := l.SS(context.Background(), l.Server)
	if err != nil {
		t.Fatal(err)
	}
	lst, ok := ss.Listener(int(a.Listener.Port()))
	if !ok || lst.RecvQ != 9 || lst.SendQ != 8 {
		t.Errorf("ss listener = %+v (found %v), want Recv-Q 9 Send-Q 8", lst, ok)
	}
	est, err := a.Conns.Count(StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if est != 9 {
		t.Errorf("%d client sockets established, want 9", est)
	}
	c, err := l.Counters(l.Server)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Sub(a.Before)
	checkDeltas(t, d, []counterWant{
		{"TcpExt.ListenOverflows", 3, -1},
		{"TcpExt.TCPReqQFullDrop", 0, 0},
		{"TcpExt.TCPReqQFullDoCookies", 0, 0},
		{"Tcp.PassiveOpens", 9, 9},
	})
	if d["TcpExt.ListenDrops"] != d["TcpExt.ListenOverflows"] {
		t.Errorf("ΔListenDrops %d != ΔListenOverflows %d", d["TcpExt.ListenDrops"], d["TcpExt.ListenOverflows"])
	}
	r, err := l.Probe(l.GoodIP, a.Listener.Addr, 1200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != TimedOut {
		t.Errorf("probe into a full accept queue: %s, want timeout", r)
	}
}

func TestTimeWaitOverflow(t *testing.T) {
	t.Parallel()
	l := New(t, Options{})
	tw, err := TimeWaitOverflow(l, TimeWaitOpts{Buckets: 5, Conns: 20})
	if err != nil {
		t.Fatal(err)
	}
	if tw.Completed != 20 {
		t.Errorf("%d of 20 connections completed", tw.Completed)
	}
	// Each connection past the 5 buckets finds no timewait socket.
	if tw.Overflows != 15 {
		t.Errorf("ΔTCPTimeWaitOverflow = %d, want 15", tw.Overflows)
	}
	out, err := l.Exec(context.Background(), l.Server, "cat", "/proc/net/sockstat")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("server sockstat after %d overflows:\n%s", tw.Overflows, out.Stdout)
}

func TestExhaustPorts(t *testing.T) {
	t.Parallel()
	l := New(t, Options{})
	before, err := l.Counters(l.Client)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ExhaustPorts(l, PortExhaustionOpts{Ports: 10})
	if err != nil {
		t.Fatal(err)
	}
	if p.Connected != 10 || !errors.Is(p.Err, unix.EADDRNOTAVAIL) {
		t.Errorf("%d connected, then %v; want 10, then EADDRNOTAVAIL", p.Connected, p.Err)
	}
	after, err := l.Counters(l.Client)
	if err != nil {
		t.Fatal(err)
	}
	// No kernel counter tells of it: the failure is the client's
	// connect() returning EADDRNOTAVAIL, counted nowhere.
	checkDeltas(t, after.Sub(before), []counterWant{{"TcpExt.TCPTimeWaitOverflow", 0, 0}, {"Tcp.AttemptFails", 0, 0}})
}

func TestHealthyBusy(t *testing.T) {
	t.Parallel()
	l := New(t, Options{IPv6: true})
	b, err := HealthyBusy(l, BusyOpts{Rate: 40, Window: 1500 * time.Millisecond, IPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	r := b.Wait()
	if r.Failed != 0 || r.Connected < 10 {
		t.Errorf("busy window: %+v, want ≥ 10 connected and none failed", r)
	}
	c, err := l.Counters(l.Server)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Sub(b.Before)
	checkDeltas(t, d, []counterWant{
		{"TcpExt.ListenDrops", 0, 0},
		{"TcpExt.ListenOverflows", 0, 0},
		{"TcpExt.TCPReqQFullDrop", 0, 0},
		{"TcpExt.TCPReqQFullDoCookies", 0, 0},
		{"Tcp.PassiveOpens", int64(r.Connected), int64(r.Connected)},
	})
}

// TestBlackhole checks the wrong-MAC trick both ways: a black-holed client
// cannot complete a handshake, the other client can, and Unblackhole lets
// the first one in again.
func TestBlackhole(t *testing.T) {
	t.Parallel()
	l := New(t, Options{IPv6: true})
	for _, v6 := range []bool{false, true} {
		server, bad, good, _ := l.IPs(v6)
		ln, err := l.Listen(netip.AddrPortFrom(server, 0), 16, AcceptClose)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Blackhole(bad); err != nil {
			t.Fatal(err)
		}
		probe := func(from netip.Addr, want Outcome) {
			t.Helper()
			r, err := l.Probe(from, ln.Addr, 1200*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if r.Outcome != want {
				t.Errorf("probe %s -> %s: %s, want %s", from, ln.Addr, r, want)
			}
		}
		probe(bad, TimedOut)
		probe(good, Connected)
		if err := l.Unblackhole(bad); err != nil {
			t.Fatal(err)
		}
		probe(bad, Connected)
	}
}

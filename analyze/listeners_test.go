package analyze

import (
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/bundle"
)

// drops is a reading of a listener's own drop counter.
func drops(n uint32) *uint32 { return &n }

// withDrops is l with its own drop counter at n.
func withDrops(l bundle.Listener, n *uint32) bundle.Listener {
	l.Drops = n
	return l
}

// socketAt is the lab-like listener on port with its own cookie and inode.
func socketAt(port int, cookie uint64, sendQ, recvQ uint32, synRecv int) bundle.Listener {
	l := listener(sendQ, recvQ, synRecv)
	l.Port, l.Local = port, "10.211.0.1:"+strconv.Itoa(port)
	l.Cookie, l.Inode, l.PID = cookie, uint32(1000+cookie), int(100+cookie)
	return l
}

func TestListenerOwnDrops(t *testing.T) {
	for _, tc := range []struct {
		name     string
		readings []*uint32 // one per sample; the listener is absent where the slice is shorter
		want     ListenerDrops
	}{
		{"rising", []*uint32{drops(10), drops(15), drops(22)}, ListenerDrops{Known: true, First: 10, Last: 22, Delta: 12}},
		{"still", []*uint32{drops(3), drops(3), drops(3)}, ListenerDrops{Known: true, First: 3, Last: 3}},
		{"wrapped", []*uint32{drops(1<<32 - 6), drops(5), drops(9)}, ListenerDrops{Known: true, First: 1<<32 - 6, Last: 9, Delta: 15, Wraps: 1}},
		{"unknown", []*uint32{nil, nil, nil}, ListenerDrops{}},
		{"known from the second sample", []*uint32{nil, drops(4), drops(6)}, ListenerDrops{Known: true, First: 4, Last: 6, Delta: 2}},
		{"one reading", []*uint32{drops(4)}, ListenerDrops{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := host(t).listeners(func(k int) []bundle.Listener {
				if k >= len(tc.readings) {
					return nil
				}
				return []bundle.Listener{withDrops(listener(16, 0, 0), tc.readings[k])}
			}).snapshot()
			ls := s.Listeners()
			if len(ls) != 1 {
				t.Fatalf("%d listeners", len(ls))
			}
			got := ls[0].Drops
			if got.Known && (got.Seconds <= 0 || got.PerSecond != float64(got.Delta)/got.Seconds) {
				t.Errorf("rate %v over %v s for %d drops", got.PerSecond, got.Seconds, got.Delta)
			}
			got.Seconds, got.PerSecond = 0, 0
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestReconcileListenDrops(t *testing.T) {
	a := func(d ...*uint32) func(k int) *bundle.Listener {
		return func(k int) *bundle.Listener {
			if k >= len(d) {
				return nil
			}
			l := withDrops(socketAt(8080, 1, 16, 0, 0), d[k])
			return &l
		}
	}
	b := func(k int) *bundle.Listener { l := withDrops(socketAt(8081, 2, 16, 0, 0), drops(7)); return &l }
	type want struct {
		Sum, Remainder, ListenDrops int64
		Causes                      []RemainderCause
		Moved                       []string
		PerSocket                   bool
	}
	for _, tc := range []struct {
		name      string
		listeners []func(k int) *bundle.Listener
		counters  func(f *fixture) *fixture
		want      want
	}{
		{"exact", []func(int) *bundle.Listener{a(drops(0), drops(10), drops(20)), b},
			func(f *fixture) *fixture { return f.ramp("TcpExt", "ListenDrops", 10) },
			want{Sum: 20, ListenDrops: 20, Moved: []string{"10.211.0.1:8080"}, PerSocket: true}},
		{"a listener closed between samples", []func(int) *bundle.Listener{a(drops(0), drops(10)), b},
			func(f *fixture) *fixture { return f.ramp("TcpExt", "ListenDrops", 10) },
			want{Sum: 10, Remainder: 10, ListenDrops: 20, Causes: []RemainderCause{CauseChurn}, Moved: []string{"10.211.0.1:8080"}, PerSocket: true}},
		{"a kernel without the counter", []func(int) *bundle.Listener{a(nil, nil, nil), b},
			func(f *fixture) *fixture { return f.ramp("TcpExt", "ListenDrops", 5) },
			want{ListenDrops: 10, Remainder: 10, Causes: []RemainderCause{CauseUnknownDrops}, PerSocket: true}},
		{"an old bundle", []func(int) *bundle.Listener{a(nil, nil, nil)},
			func(f *fixture) *fixture { return f.ramp("TcpExt", "ListenDrops", 5) },
			want{ListenDrops: 10, Remainder: 10, Causes: []RemainderCause{CauseUnknownDrops}}},
		{"TCP_DEFER_ACCEPT discards", []func(int) *bundle.Listener{a(drops(0), drops(3), drops(6)), b},
			func(f *fixture) *fixture {
				return f.flat("TcpExt", "ListenDrops").ramp("TcpExt", "TCPDeferAcceptDrop", 3)
			},
			want{Sum: 6, Remainder: -6, Causes: []RemainderCause{CauseDeferAccept}, Moved: []string{"10.211.0.1:8080"}, PerSocket: true}},
		{"unexplained", []func(int) *bundle.Listener{a(drops(0), drops(3), drops(6)), b},
			func(f *fixture) *fixture { return f.ramp("TcpExt", "ListenDrops", 5) },
			want{Sum: 6, Remainder: 4, ListenDrops: 10, Causes: []RemainderCause{CauseUnexplained}, Moved: []string{"10.211.0.1:8080"}, PerSocket: true}},
		{"half-open requests discard duplicate SYNs", []func(int) *bundle.Listener{func(k int) *bundle.Listener {
			l := withDrops(socketAt(8080, 1, 16, 0, 17), drops(uint32(10*k)))
			return &l
		}, b},
			func(f *fixture) *fixture { return f.ramp("TcpExt", "ListenDrops", 5) },
			want{Sum: 20, Remainder: -10, ListenDrops: 10, Causes: []RemainderCause{CauseRequestDiscards}, Moved: []string{"10.211.0.1:8080"}, PerSocket: true}},
		// 400 drops in about 1 s: 2*400*0.1 allows a remainder of 80.
		{"sample skew", []func(int) *bundle.Listener{a(drops(0), drops(190), drops(390)), b},
			func(f *fixture) *fixture { return f.ramp("TcpExt", "ListenDrops", 200) },
			want{Sum: 390, Remainder: 10, ListenDrops: 400, Causes: []RemainderCause{CauseSampleSkew}, Moved: []string{"10.211.0.1:8080"}, PerSocket: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := host(t).flat("TcpExt", "TCPDeferAcceptDrop").listeners(func(k int) []bundle.Listener {
				var out []bundle.Listener
				for _, l := range tc.listeners {
					if x := l(k); x != nil {
						out = append(out, *x)
					}
				}
				return out
			})
			r := tc.counters(f).snapshot().ReconcileListenDrops()
			if r == nil {
				t.Fatal("no reconciliation")
			}
			got := want{Sum: r.Sum, Remainder: r.Remainder, ListenDrops: r.ListenDrops.Delta, Causes: r.Causes, PerSocket: r.PerSocket()}
			for _, l := range r.Moved {
				got.Moved = append(got.Moved, l.Local)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			ev := r.Evidence()
			if r.PerSocket() != slices.ContainsFunc(ev, func(e Evidence) bool {
				return e.Metric == dropsReconciledMetric && e.Value == float64(r.Sum) && e.Delta == float64(r.Remainder)
			}) {
				t.Errorf("evidence %+v: want the sum and the remainder exactly when per-socket drops are known", ev)
			}
		})
	}
	if r := host(t).dropSamplesAfter(1).snapshot().ReconcileListenDrops(); r != nil {
		t.Errorf("one sample: reconciliation %+v, want none", r)
	}
}

// TestPerSocketAttribution: with per-socket drops, a queue finding names
// the socket whose own counter moved, even when its queue was below its cap
// at every sample, and never one whose counter stood still, full at an
// instant or not; in an SO_REUSEPORT group, the socket, not the group.
func TestPerSocketAttribution(t *testing.T) {
	t.Run("SYN queue", func(t *testing.T) {
		r := host(t).sysctl("net.ipv4.tcp_syncookies", "0").
			ramp("TcpExt", "TCPReqQFullDrop", 23).ramp("TcpExt", "ListenDrops", 23).
			listeners(func(k int) []bundle.Listener {
				return []bundle.Listener{
					// Below its cap at every sample, but dropping.
					withDrops(socketAt(8080, 1, 16, 0, 5), drops(uint32(100+23*k))),
					// At its cap at every sample, dropping nothing.
					withDrops(socketAt(8081, 2, 16, 0, 17), drops(9)),
				}
			}).report()
		f := findingByID(t, r, IDSynQueueOverflow)
		d := diagnosis[*SynQueueDrop](t, f)
		if f.Listener != "10.211.0.1:8080" || len(d.Listeners) != 1 || d.AtCap || d.Listeners[0].Drops.Delta != 46 {
			t.Errorf("finding on %q, diagnosis %+v: want 10.211.0.1:8080 alone, below its cap, 46 own drops", f.Listener, d)
		}
		if d.PerSocket.Remainder != 0 || d.PerSocket.Sum != 46 {
			t.Errorf("reconciliation %+v, want the 46 drops attributed", d.PerSocket)
		}
	})
	t.Run("accept queue, reuseport", func(t *testing.T) {
		r := host(t).ramp("TcpExt", "ListenOverflows", 5).ramp("TcpExt", "ListenDrops", 5).
			listeners(func(k int) []bundle.Listener {
				group := func(cookie uint64, recvQ uint32, n *uint32) bundle.Listener {
					l := withDrops(socketAt(8080, cookie, 8, recvQ, 0), n)
					l.ReusePort = true
					return l
				}
				full := uint32(0)
				if k == 1 {
					full = 8 // full at one instant, dropping nothing
				}
				return []bundle.Listener{
					group(1, 0, drops(uint32(5*k))), // never full at a sample, dropping
					group(2, full, drops(0)),
					group(3, 0, drops(0)),
				}
			}).report()
		var got []*AcceptQueueOverflow
		for _, f := range r.Findings {
			if f.ID == IDAcceptQueueOverflow {
				got = append(got, diagnosis[*AcceptQueueOverflow](t, f))
				if f.Process == nil || f.Process.PID != 101 {
					t.Errorf("the finding names %+v, want the socket's process, pid 101", f.Process)
				}
			}
		}
		if len(got) != 1 || got[0].Listener == nil || got[0].Listener.Inode != 1001 || got[0].Listener.Drops.Delta != 10 {
			t.Fatalf("accept-queue diagnoses %+v: want one, on socket inode 1001 with 10 drops", got)
		}
	})
}

// TestICMPAbortsNotBlamedOnThreeQuarterRule: with cookies off, requests
// aborted by ICMP unreachables count in ListenDrops and on the listener's own
// counter (tcp_req_err() calls tcp_listendrop()). A listener whose drops
// moved, with its SYN queue below the 3/4 mark, is not a 3/4-rule finding:
// the unreachable clients explain it.
func TestICMPAbortsNotBlamedOnThreeQuarterRule(t *testing.T) {
	r := host(t).sysctl("net.ipv4.tcp_syncookies", "0").sysctl("net.ipv4.tcp_max_syn_backlog", "128").
		ramp("TcpExt", "ListenDrops", 9).ramp("Icmp", "OutDestUnreachs", 47).ramp("Icmp", "InDestUnreachs", 47).
		listeners(func(k int) []bundle.Listener {
			return []bundle.Listener{withDrops(socketAt(8080, 1, 4096, 0, 3), drops(uint32(9*k)))}
		}).report()
	for _, f := range r.Findings {
		if _, ok := f.Diagnosis.(*ThreeQuarterDrop); ok {
			t.Errorf("3/4-rule finding on %q for drops the ICMP unreachables explain", f.Listener)
		}
	}
	findingByID(t, r, IDUnreachableClients)
}

// TestReusePortSocketSynRecv: the request sockets of an SO_REUSEPORT group
// are counted for the group; each socket's own SYN queue, which the kernel
// tests against its own backlog, holds its share. 20 requests over four
// sockets of backlog 16 fill none of them.
func TestReusePortSocketSynRecv(t *testing.T) {
	s := host(t).listeners(func(k int) []bundle.Listener {
		var out []bundle.Listener
		for c := range uint64(4) {
			l := socketAt(8080, c+1, 16, 0, 20)
			l.ReusePort = true
			out = append(out, l)
		}
		return append(out, socketAt(8081, 9, 16, 0, 17))
	}).snapshot()
	for _, l := range s.Listeners() {
		want, full := 5, false
		if l.Port == 8081 {
			want, full = 17, true
		}
		if got := l.SocketSynRecv(); got != want || s.synQueueFull(l) != full {
			t.Errorf("%s cookie %d: own SYN-RECV %d, full %v; want %d, %v", l.Local, l.Cookie, got, s.synQueueFull(l), want, full)
		}
	}
}

package collectors

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors/internal/sockdiag"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// halfOpenListeners opens a listener on 127.0.0.1 with 3 requests in its
// SYN queue and a wildcard one on another port with 2 (TCP_DEFER_ACCEPT
// keeps data-less handshakes as requests), and returns their ports.
func halfOpenListeners(t *testing.T) (bound, wildcard int) {
	t.Helper()
	lo := netip.MustParseAddr("127.0.0.1")
	_, bound = testutil.Listen(t, netip.AddrPortFrom(lo, 0), 16, testutil.DeferAccept(60))
	_, wildcard = testutil.Listen(t, netip.AddrPortFrom(netip.IPv4Unspecified(), 0), 16, testutil.DeferAccept(60))
	for range 3 {
		dialFrom(t, "127.0.0.2", bound)
	}
	for range 2 {
		dialFrom(t, "127.0.0.2", wildcard)
	}
	return bound, wildcard
}

// synRecvOf returns the SYN-RECV count of the listener on port in ls, or
// -1 when there is none.
func synRecvOf(ls []bundle.Listener, port int) int {
	for _, l := range ls {
		if l.Port == port {
			return l.SynRecv
		}
	}
	return -1
}

// TestFirstSnapshotSharesTableWalk: a capture's first listener sample takes
// its SYN-RECV counts from the socket table's dump, so the kernel's
// established hash is walked once for both, and the counts are those of a
// dump of its own: each listener has its own requests.
func TestFirstSnapshotSharesTableWalk(t *testing.T) {
	bound, wildcard := halfOpenListeners(t)
	waitRequests(t, bound, wildcard)
	h := Host{Shared: &Shared{}, Proc: "/proc"}
	h.Shared.table.wait = 10 * time.Second // the share, however loaded the machine
	res, err := Capture(context.Background(), Options{
		Dir: t.TempDir(), Samples: 1, Interval: time.Millisecond, Deadline: 20 * time.Second, Host: h,
	})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := bundle.DecodeListeners(bytes.NewReader(testutil.ReadMember(t, res.Path, bundle.SampleFile(0, bundle.SampleListeners))))
	if err != nil {
		t.Fatal(err)
	}
	// The socket table's dump and nothing else walked the hash; the
	// LISTEN-only dump of the snapshot does not.
	if got := h.Shared.HashWalks(); got != 1 {
		t.Errorf("established-hash walks = %d, want 1 (the socket table's)", got)
	}
	if got := h.Shared.DumpRequests(); got != 2 {
		t.Errorf("dump requests = %d, want 2 (the table, the listeners)", got)
	}
	if b, w := synRecvOf(ls, bound), synRecvOf(ls, wildcard); b != 3 || w != 2 {
		t.Errorf("SYN-RECV %d and %d, want 3 and 2", b, w)
	}
	for _, l := range ls {
		if (l.Port == bound || l.Port == wildcard) && l.PID != os.Getpid() {
			t.Errorf("listener %s: pid %d, want %d", l.Local, l.PID, os.Getpid())
		}
	}
}

// waitRequests waits until a dump of its own sees the requests
// halfOpenListeners made: the handshakes complete after connect() returns.
func waitRequests(t *testing.T, bound, wildcard int) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, "the listeners' requests", func() (bool, string) {
		ls, err := readListeners(context.Background(), Host{})
		if err != nil {
			t.Fatal(err)
		}
		b, w := synRecvOf(ls, bound), synRecvOf(ls, wildcard)
		return b == 3 && w == 2, "SYN-RECV " + strconv.Itoa(b) + " and " + strconv.Itoa(w) + ", want 3 and 2"
	})
}

// TestFirstSnapshotLargeTable: on a namespace whose table is too large for
// its dump to end within tableShareWait, the capture does not arm the
// share, and the first snapshot dumps its requests at once.
func TestFirstSnapshotLargeTable(t *testing.T) {
	for _, tc := range []struct {
		sockstat string
		n        int
		ok       bool
	}{
		{"sockets: used 10\nTCP: inuse 5 orphan 0 tw 2 alloc 9 mem 1\nUDP: inuse 1 mem 0\n", 7, true},
		{"TCP: inuse 80000 orphan 0 tw 1 alloc 9 mem 1\n", 80001, true},
		{"TCP: inuse 5 orphan 0 alloc 9 mem 1\n", 0, false},
		{"TCP: inuse x orphan 0 tw 2\n", 0, false},
		{"UDP: inuse 1 mem 0\n", 0, false},
		{"", 0, false},
	} {
		n, ok := sockstatTCP([]byte(tc.sockstat))
		if n != tc.n || ok != tc.ok {
			t.Errorf("sockstatTCP(%q) = %d, %v; want %d, %v", tc.sockstat, n, ok, tc.n, tc.ok)
		}
	}
	// This process's namespace holds far fewer than the bound; a proc
	// root whose sockstat says otherwise stands for a large host.
	if !(Host{Proc: "/proc"}).tableSmall() {
		t.Fatal("tableSmall on the test's namespace = false")
	}
	proc := t.TempDir()
	if err := os.MkdirAll(proc+"/net", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(proc+"/net/sockstat", []byte("TCP: inuse 90000 orphan 0 tw 0 alloc 90000 mem 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if (Host{Proc: proc}).tableSmall() {
		t.Error("tableSmall with 90,000 sockets = true")
	}
}

// TestListenSocketsDoNotWaitForTable: the collectors that need only the
// LISTEN sockets (processes, the packet sample's ports) get them from a
// LISTEN-only dump, without the SYN-RECV counts that wait for the socket
// table: with the table's dump still running, they walk nothing and count
// no requests; the full snapshot then has them.
func TestListenSocketsDoNotWaitForTable(t *testing.T) {
	bound, _ := halfOpenListeners(t)
	testutil.Eventually(t, 5*time.Second, "the listener's requests", func() (bool, string) {
		s := &Shared{}
		s.table.arm()
		_, publish := s.table.claim() // a table dump under way, never ending
		defer publish(false)
		h := Host{Shared: s, Proc: "/proc"}
		base, err := h.firstListenSockets(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := s.HashWalks(); got != 0 {
			t.Fatalf("established-hash walks for the LISTEN sockets = %d, want 0", got)
		}
		if n := synRecvOf(base, bound); n != 0 {
			t.Fatalf("LISTEN sockets: SYN-RECV %d, want 0 (not counted)", n)
		}
		ls, err := h.firstListeners(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n := synRecvOf(ls, bound)
		return n == 3, "SYN-RECV " + strconv.Itoa(n) + ", want 3"
	})
}

// TestFirstSnapshotWithoutTable: when the socket table's dump does not hand
// its counts over (it failed, or never came within tableShareWait), the
// first snapshot dumps the SYN-RECV sockets itself and counts them all the
// same; when it does, the snapshot uses its counts and walks nothing.
func TestFirstSnapshotWithoutTable(t *testing.T) {
	bound, wildcard := halfOpenListeners(t)
	for _, tc := range []struct {
		name  string
		table func(s *Shared)
		walks int64
	}{
		{"never claimed", func(s *Shared) {}, 1},
		{"dump failed", func(s *Shared) {
			reqs, publish := s.table.claim()
			// A failed dump's counts are never used.
			reqs[requestKey{sockdiag.FamilyInet, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(bound))}] = 99
			publish(false)
		}, 1},
		{"not armed", nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.Eventually(t, 5*time.Second, "the listeners' requests", func() (bool, string) {
				s := &Shared{}
				if tc.table != nil {
					s.table.arm()
					tc.table(s)
				}
				h := Host{Shared: s, Proc: "/proc"}
				ls, err := h.firstListeners(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if got := s.HashWalks(); got != tc.walks {
					t.Fatalf("established-hash walks = %d, want %d", got, tc.walks)
				}
				b, w := synRecvOf(ls, bound), synRecvOf(ls, wildcard)
				return b == 3 && w == 2, "SYN-RECV " + strconv.Itoa(b) + " and " + strconv.Itoa(w) + ", want 3 and 2"
			})
		})
	}

	// Counts handed over are used as they are, without a walk.
	s := &Shared{}
	s.table.arm()
	reqs, publish := s.table.claim()
	reqs[requestKey{family: sockdiag.FamilyInet, local: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(bound))}] = 7
	publish(true)
	h := Host{Shared: s, Proc: "/proc"}
	ls, err := h.firstListeners(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.HashWalks(); got != 0 {
		t.Errorf("established-hash walks = %d, want 0", got)
	}
	if b, w := synRecvOf(ls, bound), synRecvOf(ls, wildcard); b != 7 || w != 0 {
		t.Errorf("SYN-RECV %d and %d, want the table's 7 and 0", b, w)
	}
	// Only the first snapshot shares: a second claim gets nothing.
	if r, p := s.table.claim(); r != nil || p != nil {
		t.Error("the table share was claimed twice")
	}
}

// FuzzSockstatTCP: any sockstat gives a count and ok, or 0 and false,
// without a panic; a count is never negative.
func FuzzSockstatTCP(f *testing.F) {
	f.Add([]byte("sockets: used 10\nTCP: inuse 5 orphan 0 tw 2 alloc 9 mem 1\n"))
	f.Add([]byte("TCP: inuse 9223372036854775807 tw 9223372036854775807\n"))
	f.Add([]byte("TCP: tw\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, ok := sockstatTCP(data)
		if n < 0 || (!ok && n != 0) {
			t.Errorf("sockstatTCP(%q) = %d, %v", data, n, ok)
		}
	})
}

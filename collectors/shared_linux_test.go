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
	testutil.Eventually(t, 5*time.Second, "sample 0 with the listeners' requests", func() (bool, string) {
		h := Host{Shared: &Shared{}, Proc: "/proc"}
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
			t.Fatalf("established-hash walks = %d, want 1 (the socket table's)", got)
		}
		if got := h.Shared.DumpRequests(); got != 2 {
			t.Fatalf("dump requests = %d, want 2 (the table, the listeners)", got)
		}
		// The owners were looked up while the table was dumped.
		for _, l := range ls {
			if (l.Port == bound || l.Port == wildcard) && l.PID != os.Getpid() {
				t.Fatalf("listener %s: pid %d, want %d", l.Local, l.PID, os.Getpid())
			}
		}
		b, w := synRecvOf(ls, bound), synRecvOf(ls, wildcard)
		return b == 3 && w == 2, "SYN-RECV " + strconv.Itoa(b) + " and " + strconv.Itoa(w) + ", want 3 and 2"
	})
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
			reqs[requestKey{}] = 99 // a failed dump's counts are never used
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

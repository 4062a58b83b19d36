package collectors

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/snapdiag/snapdiag/internal/testutil"
)

// dialFrom connects from the loopback address from to 127.0.0.1:port,
// closed when the test ends.
func dialFrom(t *testing.T, from string, port int) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
}

// TestReadHalfOpen fills two SYN queues on loopback from several source
// addresses (TCP_DEFER_ACCEPT keeps data-less handshakes as requests) and
// checks that one listener's half-open sources are its own requests, by
// source, the most first, and that they add up to the SYN-RECV count Read
// gives the listener.
func TestReadHalfOpen(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	_, port := testutil.Listen(t, netip.AddrPortFrom(lo, 0), 16, testutil.DeferAccept(60))
	// A wildcard listener whose requests come from the same source: they
	// must not count for the bound one.
	_, other := testutil.Listen(t, netip.AddrPortFrom(netip.IPv4Unspecified(), 0), 16, testutil.DeferAccept(60))
	for range 3 {
		dialFrom(t, "127.0.0.2", port)
	}
	dialFrom(t, "127.0.0.3", port)
	for range 2 {
		dialFrom(t, "127.0.0.2", other)
	}
	local := "127.0.0.1:" + strconv.Itoa(port)
	want := HalfOpen{Total: 4, Sources: []HalfOpenSource{
		{Addr: netip.MustParseAddr("127.0.0.2"), Requests: 3},
		{Addr: netip.MustParseAddr("127.0.0.3"), Requests: 1},
	}}
	ignoreRetrans := cmp.Options{cmpopts.IgnoreFields(HalfOpenSource{}, "MaxRetrans"), cmpopts.EquateComparable(netip.Addr{})}
	var ln Listeners
	testutil.Eventually(t, 5*time.Second, "the half-open sources (-want +got)", func() (bool, string) {
		got, err := ReadHalfOpen(context.Background(), Host{Proc: "/proc"}, local, 10)
		if err != nil {
			t.Fatalf("ReadHalfOpen: %v", err)
		}
		diff := cmp.Diff(want, got, ignoreRetrans)
		return diff == "", diff
	})
	ls, err := ln.Read(context.Background(), Host{Proc: "/proc"})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	found := false
	for _, l := range ls {
		if l.Local == local {
			found = true
			if l.SynRecv != want.Total || l.PID != os.Getpid() {
				t.Errorf("Read: %s has SYN-RECV %d and pid %d, want %d and %d", local, l.SynRecv, l.PID, want.Total, os.Getpid())
			}
		}
	}
	if !found {
		t.Fatalf("Read: no listener %s", local)
	}

	// A limit keeps the busiest source and counts the others.
	got, err := ReadHalfOpen(context.Background(), Host{Proc: "/proc"}, local, 1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(HalfOpen{Total: 4, Sources: want.Sources[:1], Others: 1}, got, ignoreRetrans); diff != "" {
		t.Errorf("limit 1 (-want +got):\n%s", diff)
	}
}

// TestReadHalfOpenGone: a listener that closed is fs.ErrNotExist, which the
// view shows as gone rather than as a failure.
func TestReadHalfOpenGone(t *testing.T) {
	fd, port := testutil.Listen(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0), 4)
	local := "127.0.0.1:" + strconv.Itoa(port)
	if _, err := ReadHalfOpen(context.Background(), Host{Proc: "/proc"}, local, 10); err != nil {
		t.Fatalf("open listener: %v", err)
	}
	unix.Close(fd)
	_, err := ReadHalfOpen(context.Background(), Host{Proc: "/proc"}, local, 10)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("closed listener: err %v, want fs.ErrNotExist", err)
	}
}

package sockdiag

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
	"golang.org/x/sys/unix"
)

// fdIdentity is what the kernel says about a socket from its own side: the
// inode of its file and its cookie.
func fdIdentity(t testing.TB, fd int) (inode uint32, cookie uint64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatalf("fstat: %v", err)
	}
	c, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if err != nil {
		t.Fatalf("SO_COOKIE: %v", err)
	}
	return uint32(st.Ino), c
}

func connFD(t testing.TB, c *net.TCPConn, fn func(fd int)) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Control(func(fd uintptr) { fn(int(fd)) }); err != nil {
		t.Fatal(err)
	}
}

// dumpPort returns copies of the sockets of family with local or remote port
// port.
func dumpPort(t testing.TB, family uint8, states uint32, port int) []Msg {
	t.Helper()
	var out []Msg
	err := Dump(context.Background(), family, states, ExtInfo, func(m *Msg) error {
		if int(m.Src.Port()) == port || int(m.Dst.Port()) == port {
			out = append(out, *m)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	return out
}

func TestDumpListenerQueues(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	lfd, port := testutil.Listen(t, netip.AddrPortFrom(lo, 0), 7)
	clients := []*net.TCPConn{testutil.Dial(t, "tcp4", lo, port), testutil.Dial(t, "tcp4", lo, port)}

	var l Msg
	// On loopback the handshake's last ACK may still be in the softirq
	// backlog when connect() returns: the accept queue fills a moment later.
	testutil.Eventually(t, 5*time.Second, "two connections in the accept queue", func() (bool, string) {
		ls := dumpPort(t, FamilyInet, StatesListen, port)
		if len(ls) != 1 {
			t.Fatalf("dump reported %d listeners on port %d, want 1: %+v", len(ls), port, ls)
		}
		l = ls[0]
		return l.RQueue == 2, ""
	})
	inode, cookie := fdIdentity(t, lfd)
	if l.State != StateListen || l.WQueue != 7 || l.Inode != inode || l.Cookie != cookie ||
		l.UID != uint32(os.Getuid()) || l.Src != netip.AddrPortFrom(lo, uint16(port)) ||
		l.Dst != netip.AddrPortFrom(netip.IPv4Unspecified(), 0) || !l.HasShutdown || !l.HasInfo {
		t.Errorf("listener = %+v\nwant state %d, wqueue 7, inode %d, cookie %d, uid %d, src %v:%d",
			l, StateListen, inode, cookie, os.Getuid(), lo, port)
	}
	if l.Info.State != StateListen {
		t.Errorf("listener tcp_info state = %d, want %d", l.Info.State, StateListen)
	}

	all := dumpPort(t, FamilyInet, StatesAll, port)
	var children int
	byCookie := map[uint64]Msg{}
	for _, m := range all {
		switch {
		case m.State == StateListen:
		case m.State == StateEstablished && int(m.Src.Port()) == port:
			// Accepted by the kernel, not yet by the application: no file,
			// so no inode (sock_i_ino() of a socket without sk_socket).
			children++
			if m.Inode != 0 {
				t.Errorf("unaccepted child has inode %d", m.Inode)
			}
		case m.State == StateEstablished:
			byCookie[m.Cookie] = m
		default:
			t.Errorf("unexpected socket %+v", m)
		}
	}
	if children != 2 || len(byCookie) != 2 {
		t.Errorf("dump reported %d server and %d client ESTAB sockets, want 2 and 2", children, len(byCookie))
	}
	for _, c := range clients {
		connFD(t, c, func(fd int) {
			inode, cookie := fdIdentity(t, fd)
			m, ok := byCookie[cookie]
			if !ok {
				t.Fatalf("client with cookie %d not in the dump", cookie)
			}
			if m.Inode != inode || m.Src.String() != c.LocalAddr().String() || m.Dst.String() != c.RemoteAddr().String() {
				t.Errorf("client = %+v, want inode %d, %v -> %v", m, inode, c.LocalAddr(), c.RemoteAddr())
			}
			// The dump's tcp_info is the same struct getsockopt(TCP_INFO)
			// returns: the fields that do not move on an idle connection
			// must agree, which checks the offsets.
			ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
			if err != nil {
				t.Fatalf("TCP_INFO: %v", err)
			}
			got := m.Info
			if !m.HasInfo || got.State != ti.State || got.Options != ti.Options || got.SndMSS != ti.Snd_mss ||
				got.RcvMSS != ti.Rcv_mss || got.AdvMSS != ti.Advmss || got.PMTU != ti.Pmtu ||
				got.SndCwnd != ti.Snd_cwnd || got.RcvSpace != ti.Rcv_space {
				t.Errorf("dump tcp_info %+v\ndisagrees with getsockopt %+v", got, ti)
			}
		})
	}
}

// TestDumpWindowScale checks the tcpi_snd_wscale:4, tcpi_rcv_wscale:4 bit
// fields: a client with a tiny locked receive buffer announces a smaller
// window scale than the server, so its rcv_wscale is below its snd_wscale.
func TestDumpWindowScale(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	_, port := testutil.Listen(t, netip.AddrPortFrom(lo, 0), 4)
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp4", net.JoinHostPort(lo.String(), strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var client, child *Msg
	testutil.Eventually(t, 5*time.Second, "the client and the server side established", func() (bool, string) {
		client, child = nil, nil
		for _, m := range dumpPort(t, FamilyInet, 1<<StateEstablished, port) {
			if m.Src.String() == c.LocalAddr().String() {
				client = &m
			} else {
				child = &m
			}
		}
		return client != nil && child != nil, ""
	})
	if client.Info.Options&4 == 0 { // TCPI_OPT_WSCALE
		t.Skip("window scaling is off (net.ipv4.tcp_window_scaling=0)")
	}
	if !(client.Info.RcvWscale < client.Info.SndWscale) ||
		client.Info.RcvWscale != child.Info.SndWscale || client.Info.SndWscale != child.Info.RcvWscale {
		t.Errorf("wscale client snd %d rcv %d, server snd %d rcv %d: want client rcv < client snd, mirrored on the server",
			client.Info.SndWscale, client.Info.RcvWscale, child.Info.SndWscale, child.Info.RcvWscale)
	}
}

func TestDumpRequestSockets(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	_, port := testutil.Listen(t, netip.AddrPortFrom(lo, 0), 7, testutil.DeferAccept(60))
	for range 3 {
		testutil.Dial(t, "tcp4", lo, port)
	}
	var reqs []Msg
	testutil.Eventually(t, 5*time.Second, "three request sockets", func() (bool, string) {
		reqs = reqs[:0]
		for _, m := range dumpPort(t, FamilyInet, StatesSynRecv, port) {
			if int(m.Src.Port()) == port {
				reqs = append(reqs, m)
			}
		}
		return len(reqs) == 3, ""
	})
	for _, m := range reqs {
		if !m.Request() || m.State != StateSynRecv || m.Timer != 1 || m.Inode != 0 || m.RQueue != 0 || m.HasInfo {
			t.Errorf("request socket = %+v, want SYN_RECV, timer 1, inode 0, no attributes", m)
		}
	}
	ls := dumpPort(t, FamilyInet, StatesListen, port)
	if len(ls) != 1 || ls[0].RQueue != 0 {
		t.Errorf("listener = %+v, want an empty accept queue", ls)
	}
}

func TestDumpStopsOnCallbackError(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	testutil.Listen(t, netip.AddrPortFrom(lo, 0), 1)
	stop := errors.New("stop")
	n := 0
	err := Dump(context.Background(), FamilyInet, StatesAll, 0, func(*Msg) error {
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Errorf("Dump = %v after %d calls, want the callback's error after 1", err, n)
	}
}

func TestDumpHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Dump(ctx, FamilyInet, StatesAll, 0, func(*Msg) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Dump with a cancelled context = %v, want context.Canceled", err)
	}

	// Cancelled between datagrams: the next receive must not run.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	err := dumpRaw(ctx, FamilyInet, StatesAll, 0, func([]byte) (bool, error) {
		calls++
		cancel()
		return false, nil
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("dump cancelled in its callback = %v after %d datagrams, want context.Canceled after 1", err, calls)
	}

	// A deadline that passes while the receive waits cuts it: the kernel
	// answered everything, so a receive after NLMSG_DONE would block.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = dumpRaw(ctx, FamilyInet, StatesAll, 0, func([]byte) (bool, error) { return false, nil })
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("dump past its deadline = %v after %v, want context.DeadlineExceeded promptly", err, time.Since(start))
	}
}

// TestDumpListenerDrops overflows one listener's accept queue: the SYN that
// finds it full is dropped by tcp_conn_request(), and tcp_listendrop()
// counts it on that listener's own sk_drops, which INET_DIAG_SKMEMINFO
// reports. A second, idle listener must report none.
func TestDumpListenerDrops(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	_, full := testutil.Listen(t, netip.AddrPortFrom(lo, 0), 0)
	_, idle := testutil.Listen(t, netip.AddrPortFrom(lo, 0), 8)
	// Backlog 0 holds one connection: the accept queue is full when it
	// holds more than sk_max_ack_backlog (sk_acceptq_is_full()).
	testutil.Dial(t, "tcp4", lo, full)

	// The next client's SYN is dropped; a non-blocking connect leaves it
	// retrying (once a second) until the test ends.
	testutil.DialPending(t, lo, full)

	listener := func(port int) Msg {
		var out []Msg
		err := Dump(context.Background(), FamilyInet, StatesListen, ExtSkMemInfo, func(m *Msg) error {
			if int(m.Src.Port()) == port {
				out = append(out, *m)
			}
			return nil
		})
		if err != nil || len(out) != 1 {
			t.Fatalf("dump of the listener on port %d: %d rows, %v", port, len(out), err)
		}
		return out[0]
	}
	testutil.Eventually(t, 5*time.Second, "a drop on the full listener", func() (bool, string) {
		l := listener(full)
		return l.Drops > 0, fmt.Sprintf("%+v", l)
	})
	if l := listener(full); !l.HasDrops || l.RQueue != 1 || l.WQueue != 0 {
		t.Errorf("full listener = %+v, want drops reported, Recv-Q 1, Send-Q 0", l)
	}
	if l := listener(idle); !l.HasDrops || l.Drops != 0 {
		t.Errorf("idle listener = %+v, want drops reported and 0", l)
	}
}

// TestDumperBothFamilies checks that one request of the Dumper returns the
// sockets of both families that two SOCK_DIAG_BY_FAMILY dumps return, and
// that a Dumper that asks per family (as on a kernel that refuses the
// combined request) returns the same in two requests.
func TestDumperBothFamilies(t *testing.T) {
	v4, v6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	if !testutil.CanListen(v6) {
		t.Skip("no IPv6 loopback")
	}
	_, p4 := testutil.Listen(t, netip.AddrPortFrom(v4, 0), 8)
	_, p6 := testutil.Listen(t, netip.AddrPortFrom(v6, 0), 8)
	testutil.Dial(t, "tcp4", v4, p4)
	testutil.Dial(t, "tcp6", v6, p6)
	// The listeners and both ends of the connections to them; a
	// TIME_WAIT of another test's on the same port is not ours.
	ours := func(m *Msg) bool {
		for _, l := range []netip.AddrPort{netip.AddrPortFrom(v4, uint16(p4)), netip.AddrPortFrom(v6, uint16(p6))} {
			if m.State != StateTimeWait && (m.Src == l || m.Dst == l) {
				return true
			}
		}
		return false
	}
	type sock struct {
		Family, State uint8
		Src, Dst      string
		HasInfo       bool
	}
	collect := func(d *Dumper) map[uint64]sock {
		got := map[uint64]sock{}
		err := d.Dump(context.Background(), StatesAll, ExtInfo, func(m *Msg) error {
			if ours(m) {
				got[m.Cookie] = sock{m.Family, m.State, m.Src.String(), m.Dst.String(), m.HasInfo}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("dump: %v", err)
		}
		return got
	}
	want := map[uint64]sock{}
	for _, family := range []uint8{FamilyInet, FamilyInet6} {
		for _, p := range []int{p4, p6} {
			for _, m := range dumpPort(t, family, StatesAll, p) {
				if ours(&m) {
					want[m.Cookie] = sock{m.Family, m.State, m.Src.String(), m.Dst.String(), m.HasInfo}
				}
			}
		}
	}
	// Two listeners and two established pairs.
	if len(want) != 6 {
		t.Fatalf("per-family dumps found %d sockets, want 6: %+v", len(want), want)
	}

	var both Dumper
	if diff := cmp.Diff(want, collect(&both)); diff != "" {
		t.Errorf("one dump for both families (-want +got):\n%s", diff)
	}
	if n := both.Requests(); n != 1 {
		t.Errorf("dump requests = %d, want 1", n)
	}
	var each Dumper
	each.perFamily.Store(true)
	if diff := cmp.Diff(want, collect(&each)); diff != "" {
		t.Errorf("one dump per family (-want +got):\n%s", diff)
	}
	if n := each.Requests(); n != 2 {
		t.Errorf("dump requests per family = %d, want 2", n)
	}
}

// TestDumpSlowReader dumps a table of many datagrams to a reader that
// stalls at its first socket until the receiver has made every buffer it
// may and waits for one back: it makes no more than recvBuffers, and each
// socket is still delivered once. The table is 1,000 established pairs in
// a network namespace of the test's own (this thread's, which ends with
// the test).
func TestDumpSlowReader(t *testing.T) {
	testutil.NeedRoot(t, "a network namespace of its own")
	runtime.LockOSThread() // never unlocked: the thread, and its namespace, end with the test
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	if err := lab.LoopbackUp(); err != nil {
		t.Fatal(err)
	}

	const pairs = 1000 // 2,001 sockets with tcp_info: about 27 datagrams
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *net.TCPConn, pairs)
	go func() {
		for range pairs {
			c, err := ln.AcceptTCP()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for i := range pairs {
		c, err := net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer c.Close()
		s, ok := <-accepted
		if !ok {
			t.Fatalf("accept stopped after %d connections", i)
		}
		defer s.Close()
	}

	waiting := make(chan int, 1)
	testHookRecvWait = func(made int) {
		select {
		case waiting <- made:
		default:
		}
	}
	defer func() { testHookRecvWait = nil }()
	seen := map[uint64]int{}
	first := true
	err = Dump(context.Background(), FamilyInet, StatesAll, ExtInfo, func(m *Msg) error {
		if first {
			first = false
			select {
			case made := <-waiting:
				if made != recvBuffers {
					t.Errorf("the receiver waits with %d buffers made, want %d", made, recvBuffers)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("the receiver never waited for a buffer: it made more than %d, or the table fits in fewer", recvBuffers)
			}
		}
		seen[m.Cookie]++
		return nil
	})
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	if want := 2*pairs + 1; len(seen) != want {
		t.Errorf("dump delivered %d sockets, want %d", len(seen), want)
	}
	for cookie, n := range seen {
		if n != 1 {
			t.Errorf("socket %d delivered %d times", cookie, n)
		}
	}
}

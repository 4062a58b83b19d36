package collectors

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors/internal/sockdiag"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

func TestListenerAttribution(t *testing.T) {
	type L = sockdiag.Msg
	ap := netip.MustParseAddrPort
	listen := func(family uint8, src string, cookie uint64, mod ...func(*L)) L {
		m := L{Family: family, State: sockdiag.StateListen, Src: ap(src), Cookie: cookie, Inode: uint32(cookie) + 100,
			RQueue: 1, WQueue: 128, HasShutdown: true}
		if family == sockdiag.FamilyInet {
			m.Dst = ap("0.0.0.0:0")
		} else {
			m.Dst = ap("[::]:0")
		}
		for _, f := range mod {
			f(&m)
		}
		return m
	}
	v6only := func(m *L) { m.V6Only = true }
	withDrops := func(n uint32) func(*L) { return func(m *L) { m.HasDrops, m.Drops = true, n } }
	onEth0 := func(m *L) { m.IfIndex = 2 }
	listeners := []L{
		listen(sockdiag.FamilyInet, "0.0.0.0:80", 1, withDrops(5)),
		listen(sockdiag.FamilyInet, "127.0.0.1:80", 2, withDrops(0)),
		listen(sockdiag.FamilyInet6, "[::]:443", 3),
		listen(sockdiag.FamilyInet6, "[::]:8443", 4, v6only),
		listen(sockdiag.FamilyInet, "0.0.0.0:8443", 5),
		listen(sockdiag.FamilyInet, "10.0.0.1:25", 7),
		listen(sockdiag.FamilyInet, "10.0.0.1:25", 6),
		listen(sockdiag.FamilyInet6, "[fe80::1]:22", 8, onEth0),
		listen(sockdiag.FamilyInet6, "[::ffff:10.0.0.5]:993", 9),
	}
	req := func(family uint8, src string, n int) []L {
		var out []L
		for i := range n {
			out = append(out, L{Family: family, State: sockdiag.StateSynRecv, Timer: 1, Src: ap(src),
				Dst: netip.AddrPortFrom(ap(src).Addr(), uint16(30000+i))})
		}
		return out
	}
	var requests []L
	for _, r := range [][]L{
		req(sockdiag.FamilyInet, "10.0.0.1:80", 1),            // wildcard 0.0.0.0:80
		req(sockdiag.FamilyInet, "127.0.0.1:80", 2),           // the bound listener wins
		req(sockdiag.FamilyInet6, "[::ffff:10.0.0.1]:443", 1), // IPv4 client of [::] (6.x form)
		req(sockdiag.FamilyInet, "10.0.0.1:443", 1),           // the same, as older kernels report it
		req(sockdiag.FamilyInet6, "[2001:db8::1]:443", 1),
		req(sockdiag.FamilyInet, "10.0.0.1:8443", 4), // v6only [::] gets none of these
		req(sockdiag.FamilyInet6, "[::1]:8443", 1),   // ... but this one
		req(sockdiag.FamilyInet, "10.0.0.1:25", 3),   // SO_REUSEPORT group
		req(sockdiag.FamilyInet, "10.0.0.2:25", 5),   // no listener on 10.0.0.2
		req(sockdiag.FamilyInet6, "[fe80::1]:22", 1), // zone-less in the request
		req(sockdiag.FamilyInet, "10.0.0.5:993", 2),  // bound to the v4-mapped address
		req(sockdiag.FamilyInet, "10.0.0.1:9999", 1), // nobody listens
	} {
		requests = append(requests, r...)
	}
	// A TCP Fast Open child in SYN_RECV is a full socket, in the accept
	// queue already.
	tfo := req(sockdiag.FamilyInet, "10.0.0.1:80", 1)[0]
	tfo.HasShutdown = true
	requests = append(requests, tfo)

	tb := newListenerTable(testZoner())
	for i := range listeners {
		if err := tb.addListener(&listeners[i]); err != nil {
			t.Fatal(err)
		}
	}
	tb.index()
	for i := range requests {
		if err := tb.addRequest(&requests[i]); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(family, local, addr string, port int, cookie uint64, syn int, reuse bool) bundle.Listener {
		return bundle.Listener{Proto: "tcp", Family: family, Local: local, Addr: addr, Port: port,
			RecvQ: 1, SendQ: 128, SynRecv: syn, Inode: uint32(cookie) + 100, Cookie: cookie, ReusePort: reuse}
	}
	drops := func(l bundle.Listener, n uint32) bundle.Listener { l.Drops = &n; return l }
	// Listeners whose reply had no SK_MEMINFO_DROPS keep drops unknown.
	want := []bundle.Listener{
		rec("inet6", "[fe80::1%eth0]:22", "fe80::1%eth0", 22, 8, 1, false),
		rec("inet", "10.0.0.1:25", "10.0.0.1", 25, 6, 3, true),
		rec("inet", "10.0.0.1:25", "10.0.0.1", 25, 7, 3, true),
		drops(rec("inet", "0.0.0.0:80", "0.0.0.0", 80, 1, 1, false), 5),
		drops(rec("inet", "127.0.0.1:80", "127.0.0.1", 80, 2, 2, false), 0),
		rec("inet6", "[::]:443", "::", 443, 3, 3, false),
		rec("inet6", "[::ffff:10.0.0.5]:993", "::ffff:10.0.0.5", 993, 9, 2, false),
		rec("inet", "0.0.0.0:8443", "0.0.0.0", 8443, 5, 4, false),
		rec("inet6", "[::]:8443", "::", 8443, 4, 1, false),
	}
	if diff := cmp.Diff(want, tb.listeners()); diff != "" {
		t.Errorf("listeners (-want +got):\n%s", diff)
	}

	// A combined LISTEN and SYN_RECV dump: requests are counted as they
	// come, before or after their listeners, and attributed at the end.
	combined := newListenerTable(testZoner())
	for _, ms := range [][]L{requests, listeners} {
		for i := range ms {
			if err := combined.add(&ms[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	combined.attributePending()
	if diff := cmp.Diff(want, combined.listeners()); diff != "" {
		t.Errorf("listeners of a combined dump (-want +got):\n%s", diff)
	}
}

// fakeProc makes a /proc with processes holding the given descriptors:
// pid -> comm and fd -> link target.
func fakeProc(t *testing.T, procs map[int]struct {
	comm string
	fds  map[string]string
}) string {
	t.Helper()
	root := t.TempDir()
	for pid, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(filepath.Join(dir, "fd"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "comm"), []byte(p.comm+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for fd, target := range p.fds {
			if err := os.Symlink(target, filepath.Join(dir, "fd", fd)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Not processes: skipped.
	os.WriteFile(filepath.Join(root, "uptime"), []byte("1 1\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "sys"), 0o755)
	return root
}

func TestListenerOwners(t *testing.T) {
	type proc = struct {
		comm string
		fds  map[string]string
	}
	root := fakeProc(t, map[int]proc{
		100: {"nginx", map[string]string{"0": "/dev/null", "3": "socket:[111]", "4": "pipe:[5]"}},
		101: {"nginx", map[string]string{"3": "socket:[111]", "9": "socket:[999]"}},
		200: {"dovecot", map[string]string{"7": "socket:[222]", "8": "socket:[22]"}},
	})
	ls := func() []bundle.Listener {
		return []bundle.Listener{{Inode: 111, Cookie: 1}, {Inode: 222, Cookie: 2}, {Inode: 333, Cookie: 3}, {Cookie: 4}}
	}
	owners := func(ls []bundle.Listener) []string {
		var out []string
		for _, l := range ls {
			out = append(out, strconv.Itoa(l.PID)+" "+l.Comm)
		}
		return out
	}
	var l Listeners
	got := ls()
	l.setOwners(context.Background(), root, got)
	want := []string{"100 nginx", "200 dovecot", "0 ", "0 "}
	if diff := cmp.Diff(want, owners(got)); diff != "" {
		t.Errorf("owners (-want +got):\n%s", diff)
	}

	// The next sample finds its owners in the cache: with the processes
	// gone from proc, they are still known, and the owner of a new
	// listener is looked up.
	for _, pid := range []string{"100", "101", "200"} {
		os.RemoveAll(filepath.Join(root, pid))
	}
	fakeProc300 := filepath.Join(root, "300", "fd")
	os.MkdirAll(fakeProc300, 0o755)
	os.WriteFile(filepath.Join(root, "300", "comm"), []byte("sshd\n"), 0o644)
	os.Symlink("socket:[444]", filepath.Join(fakeProc300, "3"))
	got = append(ls(), bundle.Listener{Inode: 444, Cookie: 5})
	l.setOwners(context.Background(), root, got)
	want = append(want, "300 sshd")
	if diff := cmp.Diff(want, owners(got)); diff != "" {
		t.Errorf("owners from the cache (-want +got):\n%s", diff)
	}

	// Listeners that are gone leave the cache.
	l.setOwners(context.Background(), root, []bundle.Listener{{Inode: 444, Cookie: 5}})
	if len(l.owners) != 1 {
		t.Errorf("cache holds %d owners after all but one listener closed, want 1", len(l.owners))
	}
}

func TestSocketInode(t *testing.T) {
	for in, want := range map[string]uint32{
		"socket:[12345]": 12345, "socket:[0]": 0, "socket:[4294967295]": 4294967295,
	} {
		if got, ok := socketInode([]byte(in)); !ok || got != want {
			t.Errorf("socketInode(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "socket:[", "socket:[]", "socket:[12", "socket:[4294967296]", "pipe:[1]", "/socket:[1]", "socket:[-1]"} {
		if _, ok := socketInode([]byte(in)); ok {
			t.Errorf("socketInode(%q) accepted", in)
		}
	}
}

// TestListenersSample fills SYN queues on the live kernel and checks what a
// sample says about each listener.
func TestListenersSample(t *testing.T) {
	lo4 := netip.MustParseAddr("127.0.0.1")
	// A listener that accepts nothing: its accept queue fills.
	_, plain := testutil.Listen(t, netip.AddrPortFrom(lo4, 0), 7)
	// SYN queues: TCP_DEFER_ACCEPT keeps data-less handshakes as requests.
	_, bound := testutil.Listen(t, netip.AddrPortFrom(lo4, 0), 7, testutil.DeferAccept(60))
	_, reuse := testutil.Listen(t, netip.AddrPortFrom(lo4, 0), 16, testutil.DeferAccept(60), testutil.ReusePort)
	testutil.Listen(t, netip.AddrPortFrom(lo4, uint16(reuse)), 16, testutil.DeferAccept(60), testutil.ReusePort)
	for range 2 {
		testutil.Dial(t, "tcp4", lo4, plain)
		testutil.Dial(t, "tcp4", lo4, bound)
	}
	for range 3 {
		testutil.Dial(t, "tcp4", lo4, reuse)
	}
	dual := 0
	if testutil.CanListen(netip.IPv6Loopback()) {
		_, dual = testutil.Listen(t, netip.AddrPortFrom(netip.IPv6Unspecified(), 0), 9, testutil.DeferAccept(60))
		testutil.Dial(t, "tcp4", lo4, dual)
		testutil.Dial(t, "tcp6", netip.IPv6Loopback(), dual)
	} else {
		t.Log("no IPv6 loopback: dual-stack case skipped")
	}
	comm, _ := os.ReadFile("/proc/self/comm")
	me := bundle.Listener{PID: os.Getpid(), Comm: strings.TrimSpace(string(comm)), UID: uint32(os.Getuid()), Proto: "tcp"}
	want := map[string]bundle.Listener{}
	// Drops: no queue overflows, so the plain listener drops nothing (a
	// known 0). A TCP_DEFER_ACCEPT listener discards each data-less third
	// ACK (tcp_check_req() returns no child, and tcp_v4_rcv()'s
	// discard_and_relse counts it with sk_drops_add()): one drop per
	// client, which TcpExt.TCPDeferAcceptDrop counts and ListenDrops does
	// not. A reuseport group's drops are summed over its sockets.
	add := func(family, local string, port int, recvQ, sendQ uint32, syn int, reuse bool) {
		l := me
		l.Family, l.Local, l.Port, l.RecvQ, l.SendQ, l.SynRecv, l.ReusePort = family, local, port, recvQ, sendQ, syn, reuse
		d := uint32(syn)
		l.Drops = &d
		l.Addr = local[:strings.LastIndex(local, ":")]
		l.Addr = strings.Trim(l.Addr, "[]")
		want[local] = l
	}
	add("inet", "127.0.0.1:"+strconv.Itoa(plain), plain, 2, 7, 0, false)
	add("inet", "127.0.0.1:"+strconv.Itoa(bound), bound, 0, 7, 2, false)
	add("inet", "127.0.0.1:"+strconv.Itoa(reuse), reuse, 0, 16, 3, true)
	if dual != 0 {
		add("inet6", "[::]:"+strconv.Itoa(dual), dual, 0, 9, 2, false)
	}

	// The same Listeners for every sample, as in a capture.
	l := &Listeners{}
	// Handshakes on loopback finish in softirq context, possibly just after
	// connect() returns: sample until the queues settle.
	i := 0
	testutil.Eventually(t, 5*time.Second, "the listeners' queues to match (-want +got)", func() (bool, string) {
		defer func() { i++ }()
		w := bundle.NewMemWriter(0)
		if err := l.Sample(context.Background(), Host{Proc: "/proc"}, i, w.For("listeners")); err != nil {
			t.Fatalf("Sample: %v", err)
		}
		data := w.Take()[bundle.SampleFile(i, bundle.SampleListeners)]
		ls, err := bundle.DecodeListeners(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		got := map[string]bundle.Listener{}
		for _, x := range ls {
			if _, ours := want[x.Local]; ours {
				if x.Inode == 0 || x.Cookie == 0 {
					t.Errorf("%s: inode %d cookie %d", x.Local, x.Inode, x.Cookie)
				}
				x.Inode, x.Cookie = 0, 0
				if x.Drops == nil {
					t.Fatalf("%s: drops unknown on a kernel that reports them", x.Local)
				}
				if prev, dup := got[x.Local]; dup {
					if !cmp.Equal(prev, x, cmpopts.IgnoreFields(bundle.Listener{}, "Drops")) {
						t.Errorf("reuseport listeners %s differ: %+v and %+v", x.Local, prev, x)
					}
					sum := *prev.Drops + *x.Drops
					x.Drops = &sum
				}
				got[x.Local] = x
			}
		}
		diff := cmp.Diff(want, got)
		return diff == "", diff
	})
}

// TestHistorySampleListenerDrops: the watchdog's history samples come from
// the same sampler, so they carry each listener's own drop counter too. A
// listener whose accept queue is full drops the next client's SYN.
func TestHistorySampleListenerDrops(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	_, full := testutil.Listen(t, netip.AddrPortFrom(lo, 0), 0)
	testutil.Dial(t, "tcp4", lo, full) // backlog 0 queues one connection
	testutil.DialPending(t, lo, full)
	samplers := []Sampler{&Listeners{}}
	testutil.Eventually(t, 5*time.Second, "a history sample with the full listener's drop", func() (bool, string) {
		hs, err := TakeSample(context.Background(), Host{Proc: "/proc"}, samplers)
		if err != nil {
			t.Fatalf("TakeSample: %v", err)
		}
		ls, err := bundle.DecodeListeners(bytes.NewReader(hs.Files[bundle.SampleListeners]))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Port == full {
				return l.Drops != nil && *l.Drops > 0, fmt.Sprintf("%+v", l)
			}
		}
		return false, "no listener on the port"
	})
}

// TestFindSocketOwnersBudget checks that the owner lookup reads at most its
// budget of descriptors, and says when it stopped before it was complete.
func TestFindSocketOwnersBudget(t *testing.T) {
	type proc = struct {
		comm string
		fds  map[string]string
	}
	root := fakeProc(t, map[int]proc{
		100: {"busy", map[string]string{"0": "/dev/null", "1": "pipe:[5]", "2": "socket:[7]", "100": "socket:[8]"}},
		// Found in the second pass only: its descriptor is not below lowFDs.
		200: {"late", map[string]string{"100": "socket:[222]"}},
	})
	want := map[uint32]uint64{222: 2}
	for _, tc := range []struct {
		budget   int
		found    bool
		complete bool
	}{
		// The first pass reads 100's three low descriptors, the second all
		// four of 100's, then 200's one.
		{budget: 4, found: false, complete: false},
		{budget: 7, found: false, complete: false},
		{budget: 8, found: true, complete: true},
		{budget: maxOwnerLinks, found: true, complete: true},
	} {
		found, complete := findSocketOwners(context.Background(), root, want, tc.budget)
		_, ok := found[222]
		if ok != tc.found || complete != tc.complete {
			t.Errorf("budget %d: found %v complete %v, want found %v complete %v", tc.budget, ok, complete, tc.found, tc.complete)
		}
	}
	// A listener nobody holds: the lookup reads every descriptor, and is
	// complete when the budget covers them.
	if _, complete := findSocketOwners(context.Background(), root, map[uint32]uint64{999: 9}, 100); !complete {
		t.Error("lookup of an unheld socket within budget: not complete")
	}
	if _, complete := findSocketOwners(context.Background(), root, map[uint32]uint64{999: 9}, 4); complete {
		t.Error("lookup of an unheld socket past its budget: complete")
	}
}

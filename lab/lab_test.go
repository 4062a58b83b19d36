package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain checks, after every test has run and cleaned up, that no namespace
// of this process is left.
func TestMain(m *testing.M) {
	code := m.Run()
	if os.Geteuid() == 0 {
		names, err := Namespaces()
		if err != nil {
			fmt.Fprintln(os.Stderr, "lab: listing namespaces:", err)
			code = 1
		}
		mine := fmt.Sprintf("%s%d-", Prefix, os.Getpid())
		for _, n := range names {
			if strings.HasPrefix(n, mine) {
				fmt.Fprintln(os.Stderr, "lab: namespace left behind:", n)
				code = 1
			}
		}
	}
	os.Exit(code)
}

func ipNetnsList(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	return string(out)
}

func TestNewAndCleanup(t *testing.T) {
	t.Parallel()
	var server, client string
	t.Run("lab", func(t *testing.T) {
		l := New(t, Options{IPv6: true})
		server, client = l.Server, l.Client
		list := ipNetnsList(t)
		for _, ns := range []string{l.Server, l.Client} {
			if !strings.Contains(list, ns) {
				t.Errorf("ip netns list lacks %s:\n%s", ns, list)
			}
		}
		ctx := context.Background()
		out, err := l.Exec(ctx, l.Client, "ip", "-br", "addr", "show", "dev", ClientLink)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []netip.Addr{l.BadIP, l.GoodIP, l.BadIP6, l.GoodIP6} {
			if !strings.Contains(string(out.Stdout), a.String()+"/") {
				t.Errorf("client link lacks %s: %s", a, out.Stdout)
			}
		}
		if strings.Contains(string(out.Stdout), "tentative") {
			t.Errorf("client addresses are tentative (DAD ran): %s", out.Stdout)
		}
		// The recipe's bounds.
		for _, c := range []struct{ ns, key, want string }{
			{l.Client, "net.ipv4.tcp_syn_retries", "3"},
			{l.Server, "net.ipv4.tcp_synack_retries", "2"},
		} {
			out, err := l.Exec(ctx, c.ns, "sysctl", "-n", c.key)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(out.Stdout)); got != c.want {
				t.Errorf("%s in %s = %s, want %s", c.key, c.ns, got, c.want)
			}
		}
		for _, to := range []netip.Addr{l.ServerIP, l.ServerIP6} {
			ln, err := l.Listen(netip.AddrPortFrom(to, 0), 4, AcceptClose)
			if err != nil {
				t.Fatal(err)
			}
			for _, from := range []netip.Addr{l.GoodIP, l.BadIP, l.GoodIP6} {
				if from.Is4() != to.Is4() {
					continue
				}
				r, err := l.Probe(from, ln.Addr, 2*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if r.Outcome != Connected {
					t.Errorf("probe %s -> %s: %s", from, ln.Addr, r)
				}
			}
		}
		if got := l.Commands(); len(got) == 0 || !strings.HasPrefix(got[0], "ip netns add "+l.Server) {
			t.Errorf("Commands() starts with %q", got[:min(len(got), 1)])
		}
	})
	if server == "" {
		return // skipped
	}
	list := ipNetnsList(t)
	for _, ns := range []string{server, client} {
		if strings.Contains(list, ns) {
			t.Errorf("namespace %s left after cleanup:\n%s", ns, list)
		}
	}
}

func TestSysctlStaysInNamespace(t *testing.T) {
	t.Parallel()
	l := New(t, Options{})
	host, err := os.ReadFile("/proc/sys/net/ipv4/tcp_syncookies")
	if err != nil {
		t.Fatal(err)
	}
	want := "0"
	if strings.TrimSpace(string(host)) == "0" {
		want = "2"
	}
	if err := l.Sysctl(l.Server, "net.ipv4.tcp_syncookies", want); err != nil {
		t.Fatal(err)
	}
	// Read back by another route: a process inside the namespace.
	out, err := l.Exec(context.Background(), l.Server, "sysctl", "-n", "net.ipv4.tcp_syncookies")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out.Stdout)); got != want {
		t.Errorf("tcp_syncookies in %s = %s, want %s", l.Server, got, want)
	}
	if got, err := l.ReadSysctl(l.Client, "net.ipv4.tcp_syncookies"); err != nil || got != "1" {
		t.Errorf("tcp_syncookies in %s = %q, %v; want the fresh-netns default 1", l.Client, got, err)
	}
	after, err := os.ReadFile("/proc/sys/net/ipv4/tcp_syncookies")
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(host) {
		t.Errorf("host tcp_syncookies changed from %q to %q", host, after)
	}
	for _, bad := range []string{"kernel.pid_max", "net/../kernel/x", "net.ipv4..x"} {
		if err := l.Sysctl(l.Server, bad, "1"); err == nil {
			t.Errorf("Sysctl(%q) was allowed", bad)
		}
	}
}

func TestSafetyChecks(t *testing.T) {
	t.Parallel()
	l := New(t, Options{})
	outside := netip.MustParseAddrPort("192.0.2.1:80")
	if _, err := l.Connect(l.GoodIP, outside, 1); err == nil {
		t.Error("Connect to an address outside the lab was allowed")
	}
	if _, err := l.Probe(l.GoodIP, outside, time.Second); err == nil {
		t.Error("Probe to an address outside the lab was allowed")
	}
	if _, err := l.Connect(netip.MustParseAddr("10.0.0.9"), netip.AddrPortFrom(l.ServerIP, 80), 1); err == nil {
		t.Error("Connect from an address outside the lab was allowed")
	}
	if _, err := l.Listen(netip.MustParseAddrPort("192.0.2.1:80"), 1, NeverAccept); err == nil {
		t.Error("Listen outside the lab was allowed")
	}
	if err := l.Blackhole(netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Error("Blackhole outside the lab was allowed")
	}
	if _, err := l.Exec(context.Background(), "some-other-ns", "true"); err == nil {
		t.Error("Exec in a foreign namespace was allowed")
	}
	if err := l.Do("some-other-ns", func() error { return nil }); err == nil {
		t.Error("Do in a foreign namespace was allowed")
	}
	if _, err := l.Connect(l.GoodIP, netip.AddrPortFrom(l.ServerIP, 80), MaxConns+1); err == nil {
		t.Error("Connect beyond MaxConns was allowed")
	}
}

func TestDoRestoresNamespace(t *testing.T) {
	t.Parallel()
	l := New(t, Options{})
	host, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var inside string
	if err := l.Do(l.Server, func() error {
		inside, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inside == host {
		t.Fatalf("Do ran in the host namespace %s", host)
	}
	if err := l.Do(l.Server, func() error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Do with a panic: %v", err)
	}
	// Many calls must leave every thread of the process where it was.
	for range 50 {
		if err := l.Do(l.Client, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	cli, err := clientNS(l)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		ns, err := os.Readlink("/proc/self/task/" + e.Name() + "/ns/net")
		if err == nil && ns == cli {
			t.Errorf("thread %s is still in the client namespace %s", e.Name(), ns)
		}
	}
}

func clientNS(l *Lab) (string, error) {
	var ns string
	err := l.Do(l.Client, func() error {
		var err error
		ns, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	})
	return ns, err
}

func TestCleanStale(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip(SkipMessage)
	}
	t.Parallel()
	// pid_max is at most 2^22, so this pid never exists.
	dead := fmt.Sprintf("%s%d-1-srv", Prefix, 1<<22+1)
	alive := fmt.Sprintf("%s%d-999999-srv", Prefix, os.Getpid())
	for _, ns := range []string{dead, alive} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", alive).Run() })
	removed, err := CleanStale()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, dead) {
		t.Errorf("CleanStale removed %v, not %s", removed, dead)
	}
	if slices.Contains(removed, alive) {
		t.Errorf("CleanStale removed %s, a live process's namespace", alive)
	}
	names, err := Namespaces()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, dead) || !slices.Contains(names, alive) {
		t.Errorf("after CleanStale: %v", names)
	}
}

func TestExecTimeout(t *testing.T) {
	t.Parallel()
	l := New(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := l.Exec(ctx, l.Server, "sleep", "20")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Exec(sleep 20) with a 300ms deadline: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Exec took %v after its deadline", d)
	}
	out, err := l.Exec(context.Background(), l.Server, "sh", "-c", "echo out; echo err >&2; exit 3")
	if err == nil || string(out.Stdout) != "out\n" || !strings.Contains(err.Error(), "err") {
		t.Errorf("Exec(exit 3) = %q, %v", out.Stdout, err)
	}
}

// TestServiceInServerNamespace builds the stand-in service, runs it inside
// the server namespace, and checks what ss sees there: the way a capture
// test runs snapdiag against a lab.
func TestServiceInServerNamespace(t *testing.T) {
	t.Parallel()
	l := New(t, Options{})
	ctx := context.Background()
	addr := netip.AddrPortFrom(l.ServerIP, 9000)
	p, err := l.Service(ctx, addr, 7, NeverAccept)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := l.Probe(l.GoodIP, addr, 2*time.Second); err != nil || r.Outcome != Connected {
		t.Fatalf("probe: %v, %v", r, err)
	}
	ss, err := l.SS(ctx, l.Server)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ss.Listener(9000)
	if !ok || got.Local != addr.String() || got.SendQ != 7 || got.RecvQ != 1 {
		t.Errorf("ss listener on 9000 = %+v (found %v), want %s Recv-Q 1 Send-Q 7", got, ok, addr)
	}
	// The listener belongs to labsvc's pid, inside the namespace.
	out, err := l.Exec(ctx, l.Server, "ss", "-Hltnp", "sport = :9000")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("pid=%d,", p.Pid()); !strings.Contains(string(out.Stdout), want) {
		t.Errorf("ss -p does not show %s: %s", want, out.Stdout)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("labsvc after SIGTERM: %v; stderr: %s", err, p.Stderr())
	}
}

// TestRelisten: listen() again on a listening socket changes its backlog in
// force (Send-Q) and keeps it listening, and the new backlog is clamped by
// somaxconn as it is at that call: raising somaxconn takes effect only at a
// re-listen.
func TestRelisten(t *testing.T) {
	t.Parallel()
	l := New(t, Options{})
	ctx := context.Background()
	if err := l.Sysctl(l.Server, "net.core.somaxconn", "64"); err != nil {
		t.Fatal(err)
	}
	ln, err := l.Listen(netip.AddrPortFrom(l.ServerIP, 9001), 16, AcceptClose)
	if err != nil {
		t.Fatal(err)
	}
	sendQ := func() uint32 {
		t.Helper()
		ss, err := l.SS(ctx, l.Server)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := ss.Listener(9001)
		if !ok {
			t.Fatal("no listener on 9001 after re-listening")
		}
		return got.SendQ
	}
	if err := l.Relisten(ln, 1000); err != nil {
		t.Fatal(err)
	}
	if q := sendQ(); q != 64 {
		t.Errorf("re-listened with 1000 under somaxconn 64: Send-Q %d, want 64", q)
	}
	if err := l.Sysctl(l.Server, "net.core.somaxconn", "4096"); err != nil {
		t.Fatal(err)
	}
	if q := sendQ(); q != 64 {
		t.Errorf("somaxconn raised without a re-listen: Send-Q %d, want still 64", q)
	}
	if err := l.Relisten(ln, 1000); err != nil {
		t.Fatal(err)
	}
	if q := sendQ(); q != 1000 {
		t.Errorf("re-listened with 1000 under somaxconn 4096: Send-Q %d, want 1000", q)
	}
	if r, err := l.Probe(l.GoodIP, ln.Addr, 2*time.Second); err != nil || r.Outcome != Connected {
		t.Errorf("probe after re-listening: %v, %v", r, err)
	}
}

package analyze_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
)

// Per-listener drops on the real kernel: each listener's own sk_drops,
// recorded by the capture at every sample, names the socket that dropped,
// and the sum over listeners accounts for TcpExt.ListenDrops.

// loadAndAnalyze loads the bundle at path and runs every rule; the
// bundle's JSON members and the report must be valid against their schemas.
func loadAndAnalyze(t *testing.T, path string) (*analyze.Snapshot, *analyze.Report) {
	t.Helper()
	s, err := analyze.LoadPath(path)
	if err != nil {
		t.Fatal(err)
	}
	testutil.ValidateBundle(t, path)
	r := analyze.Analyze(s, path, analyze.Rules())
	var b bytes.Buffer
	if err := analyze.RenderJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	testutil.ValidateReport(t, b.Bytes())
	return s, r
}

// listenerAt returns the listeners of s on local (several for an
// SO_REUSEPORT group).
func listenerAt(s *analyze.Snapshot, local string) []*analyze.ListenerState {
	var out []*analyze.ListenerState
	for _, l := range s.Listeners() {
		if l.Local == local {
			out = append(out, l)
		}
	}
	return out
}

// logReport logs the text report when the test failed.
func logReport(t *testing.T, r *analyze.Report) {
	t.Helper()
	if t.Failed() {
		var b strings.Builder
		analyze.RenderText(&b, r, analyze.TextOptions{})
		t.Log(b.String())
	}
}

// captureAnalyzed captures the lab's server namespace (three samples, 1 s
// apart, --port port) and analyzes the bundle; the report is logged if the
// test fails.
func captureAnalyzed(t *testing.T, l *lab.Lab, bin, port, reason string) (*analyze.Snapshot, *analyze.Report) {
	t.Helper()
	path, err := captureIn(l, bin, t.TempDir(), port, 3, reason)
	if err != nil {
		t.Fatal(err)
	}
	s, r := loadAndAnalyze(t, path)
	t.Cleanup(func() { logReport(t, r) })
	return s, r
}

// TestLabDropsOnlyFloodedListener: two listeners, a SYN flood (cookies off)
// on one of them and healthy clients on the other. The SYN-queue finding
// names the flooded listener alone, with its own drops; the healthy one
// drops nothing and no finding names it.
func TestLabDropsOnlyFloodedListener(t *testing.T) {
	t.Parallel()
	l := lab.New(t, lab.Options{})
	bin := lab.Build(t, "github.com/snapdiag/snapdiag/cmd/snapdiag")
	quiet, err := l.Listen(netip.AddrPortFrom(l.ServerIP, 8082), 16, lab.AcceptClose)
	if err != nil {
		t.Fatal(err)
	}
	flood, err := lab.SYNFlood(l, lab.SYNFloodOpts{Port: 8080, Syncookies: 0, Sustain: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Connect(l.GoodIP, quiet.Addr, 8); err != nil {
		t.Fatal(err)
	}
	// The flood's sustaining loop ends at the lab's cleanup.
	s, r := captureAnalyzed(t, l, bin, "8080", "lab: two listeners, one flooded")

	f := only(t, r, analyze.IDSynQueueOverflow)
	d := diagnosis[*analyze.SynQueueDrop](t, f)
	if f.Listener != flood.Target.String() {
		t.Errorf("the finding names %q, want the flooded %s", f.Listener, flood.Target)
	}
	if len(d.Listeners) != 1 || d.Listeners[0].Local != flood.Target.String() {
		t.Fatalf("diagnosed listeners %v, want only %s", d.Listeners, flood.Target)
	}
	hot := d.Listeners[0]
	if !hot.Drops.Moved() || hot.Drops.PerSecond <= 0 {
		t.Errorf("the flooded listener's own drops %+v, want a rise and a rate", hot.Drops)
	}
	if !d.PerSocket.PerSocket() || d.PerSocket.Sum != hot.Drops.Delta || len(d.PerSocket.Moved) != 1 {
		t.Errorf("reconciliation %+v: want the flooded listener's %d drops as the only ones", d.PerSocket, hot.Drops.Delta)
	}
	// The flooded listener's counter also counts the duplicate SYNs its
	// half-open requests discard, which ListenDrops does not, and drops
	// never stop during this capture: the reconciliation must say which.
	rem, causes := d.PerSocket.Remainder, d.PerSocket.Causes
	if rem < 0 && !slices.Contains(causes, analyze.CauseRequestDiscards) || rem > 0 && !slices.Contains(causes, analyze.CauseSampleSkew) {
		t.Errorf("remainder %d against ListenDrops %d, causes %v: want none, the requests' discards or the sampling moment",
			rem, d.PerSocket.ListenDrops.Delta, causes)
	}
	t.Logf("flooded %s: own drops +%d (%.1f/s), TCPReqQFullDrop +%d, ListenDrops +%d, remainder %d %v",
		hot.Local, hot.Drops.Delta, hot.Drops.PerSecond, d.Drops.Delta, d.PerSocket.ListenDrops.Delta, rem, causes)
	qs := listenerAt(s, quiet.Addr.String())
	if len(qs) != 1 || !qs[0].Drops.Known || qs[0].Drops.Delta != 0 {
		t.Fatalf("the healthy listener %s: %+v, want its own drops known and 0", quiet.Addr, qs)
	}
	for _, f := range r.Findings {
		if f.Listener == quiet.Addr.String() {
			t.Errorf("%s names the healthy listener %s", f.ID, quiet.Addr)
		}
	}
}

// TestLabDropsReusePortSocket: an SO_REUSEPORT group of four sockets held
// by four processes, one of which never accepts. The kernel spreads the
// clients over the four; the stuck socket's accept queue fills and drops.
// The accept-queue finding names that socket and its process, not the
// group, and its three healthy siblings drop nothing. (A burst of 64
// clients at once would overflow the healthy sockets too, before their
// accept loops run: the clients come in paced batches.)
func TestLabDropsReusePortSocket(t *testing.T) {
	t.Parallel()
	l := lab.New(t, lab.Options{})
	bin := lab.Build(t, "github.com/snapdiag/snapdiag/cmd/snapdiag")
	ctx, cancel := context.WithTimeout(context.Background(), lab.MaxProcLifetime)
	defer cancel()
	addr := netip.AddrPortFrom(l.ServerIP, 8083)
	var stuck *lab.Proc
	var healthy []int
	for i, mode := range []lab.AcceptMode{lab.AcceptClose, lab.NeverAccept, lab.AcceptClose, lab.AcceptClose} {
		p, err := l.Service(ctx, addr, 8, mode, lab.ReusePort)
		if err != nil {
			t.Fatalf("service %d: %v", i, err)
		}
		if mode == lab.NeverAccept {
			stuck = p
		} else {
			healthy = append(healthy, p.Pid())
		}
	}
	// The clients come in batches of 16, each handled (a child created or
	// the SYN dropped) before the next, so a healthy socket (backlog 8)
	// never has more than a few waiting. The kernel hashes each client to
	// one of the four sockets; the stuck one queues 9 and drops the rest,
	// whose SYN retransmits keep dropping during the capture.
	for batch := range 8 {
		before, err := l.Counters(l.Server)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Connect(l.GoodIP, addr, 16); err != nil {
			t.Fatal(err)
		}
		err = lab.WaitFor(l.Done(), 5*time.Second, 0, fmt.Sprintf("batch %d handled", batch), func() (bool, string, error) {
			c, err := l.Counters(l.Server)
			if err != nil {
				return false, "", err
			}
			d := c.Sub(before)
			n := d["Tcp.PassiveOpens"] + d["TcpExt.ListenDrops"]
			return n >= 16, fmt.Sprintf("%d children or drops", n), nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := lab.WaitFor(l.Done(), 5*time.Second, 0, "the stuck socket's accept queue to fill", func() (bool, string, error) {
		n, err := l.ListenQueue(addr.Port())
		return n >= 9, fmt.Sprintf("%d queued", n), err
	})
	if err != nil {
		t.Fatal(err)
	}
	s, r := captureAnalyzed(t, l, bin, "8083", "lab: reuseport group with a stuck socket")

	group := listenerAt(s, addr.String())
	if len(group) != 4 {
		t.Fatalf("%d sockets on %s, want the group's 4", len(group), addr)
	}
	// The stuck socket's finding names it. A healthy sibling may drop a few
	// too on a loaded machine (its own queue full for a moment during a
	// burst): then it has a finding of its own, and only then.
	var f analyze.Finding
	var d *analyze.AcceptQueueOverflow
	named := map[uint32]bool{}
	for _, g := range r.Findings {
		if g.ID != analyze.IDAcceptQueueOverflow {
			continue
		}
		gd := diagnosis[*analyze.AcceptQueueOverflow](t, g)
		if gd.Listener == nil {
			t.Fatalf("an accept-queue finding names no socket: %q", g.Title)
		}
		named[gd.Listener.Inode] = true
		if gd.Listener.PID == stuck.Pid() {
			f, d = g, gd
		} else if !slices.Contains(healthy, gd.Listener.PID) || !gd.Listener.Drops.Moved() {
			t.Errorf("finding on socket inode %d pid %d whose own drops %+v did not move", gd.Listener.Inode, gd.Listener.PID, gd.Listener.Drops)
		}
	}
	if d == nil {
		t.Fatalf("no accept-queue finding names the stuck labsvc (pid %d)", stuck.Pid())
	}
	if f.Process == nil || f.Process.PID != stuck.Pid() || f.Process.Comm != "labsvc" {
		t.Errorf("the finding names process %+v, want the stuck labsvc (pid %d)", f.Process, stuck.Pid())
	}
	if d.State != analyze.AcceptStuck || d.Rates.OK {
		t.Errorf("stuck socket's state %v, rates %+v: want stuck, and no namespace rate given as this socket's", d.State, d.Rates)
	}
	if !d.Listener.ReusePort || d.Listener.Inode == 0 || !d.Listener.Drops.Moved() {
		t.Fatalf("diagnosed socket %+v, want the stuck process's socket of the group, its own drops risen", d.Listener)
	}
	if !strings.Contains(f.Title, fmt.Sprintf("inode %d", d.Listener.Inode)) {
		t.Errorf("the title does not name the socket: %q", f.Title)
	}
	var sum int64
	for _, g := range group {
		sum += g.Drops.Delta
		if g.Inode == d.Listener.Inode {
			continue
		}
		if !slices.Contains(healthy, g.PID) || !g.Drops.Known {
			t.Errorf("sibling socket inode %d pid %d: drops %+v, want a healthy process's socket with its drops known", g.Inode, g.PID, g.Drops)
		}
		if g.Drops.Moved() != named[g.Inode] {
			t.Errorf("sibling socket inode %d: own drops %+v, finding %v: a finding exactly when its counter moved", g.Inode, g.Drops, named[g.Inode])
		}
		if g.Drops.Delta >= d.Listener.Drops.Delta {
			t.Errorf("sibling socket inode %d dropped %d, the stuck one %d: want the stuck one worst", g.Inode, g.Drops.Delta, d.Listener.Drops.Delta)
		}
	}
	t.Logf("stuck socket inode %d pid %d: own drops +%d (%.1f/s); group +%d; ListenDrops +%d, remainder %d",
		d.Listener.Inode, d.Listener.PID, d.Listener.Drops.Delta, d.Listener.Drops.PerSecond, sum, d.PerSocket.ListenDrops.Delta, d.PerSocket.Remainder)
	if d.PerSocket.Sum != sum {
		t.Errorf("sum over listeners %d, want the group's %d", d.PerSocket.Sum, sum)
	}
}

// TestLabDropsDualStackIPv4Flood: a SYN flood from an IPv4 client on a
// dual-stack [::] listener (cookies off). Its requests are AF_INET6 with
// v4-mapped addresses; the finding and the half-open count go to [::]:PORT.
func TestLabDropsDualStackIPv4Flood(t *testing.T) {
	t.Parallel()
	l := lab.New(t, lab.Options{IPv6: true})
	bin := lab.Build(t, "github.com/snapdiag/snapdiag/cmd/snapdiag")
	if err := l.Sysctl(l.Server, "net.ipv4.tcp_syncookies", "0"); err != nil {
		t.Fatal(err)
	}
	ln, err := l.Listen(netip.AddrPortFrom(netip.IPv6Unspecified(), 8084), 16, lab.AcceptClose)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Blackhole(l.BadIP); err != nil {
		t.Fatal(err)
	}
	before, err := l.Counters(l.Server)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Connect(l.BadIP, netip.AddrPortFrom(l.ServerIP, 8084), 40); err != nil {
		t.Fatal(err)
	}
	if _, err := counterRise(l, before, "TcpExt.TCPReqQFullDrop", 1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	_, r := captureAnalyzed(t, l, bin, "8084", "lab: IPv4 flood on a dual-stack listener")

	want := fmt.Sprintf("[::]:%d", ln.Port())
	f := only(t, r, analyze.IDSynQueueOverflow)
	d := diagnosis[*analyze.SynQueueDrop](t, f)
	if f.Listener != want || len(d.Listeners) != 1 {
		t.Fatalf("the finding names %q (%d listeners), want %s alone", f.Listener, len(d.Listeners), want)
	}
	x := d.Listeners[0]
	if x.Family != "inet6" || !d.AtCap || x.MaxSynRecv() < int(x.SendQ) {
		t.Errorf("listener %s family %s: SYN-RECV max %d, Send-Q %d, at cap %v: want the IPv4 requests counted on the [::] listener",
			x.Local, x.Family, x.MaxSynRecv(), x.SendQ, d.AtCap)
	}
	t.Logf("%s: SYN-RECV max %d, own drops +%d, TCPReqQFullDrop +%d", x.Local, x.MaxSynRecv(), x.Drops.Delta, d.Drops.Delta)
	if !x.Drops.Moved() || d.PerSocket.Sum != x.Drops.Delta {
		t.Errorf("own drops %+v, sum over listeners %d: want the [::] listener's drops, and only those", x.Drops, d.PerSocket.Sum)
	}
}

// TestLabDropsMatchSS: two listeners whose full accept queues drop bursts
// of clients between the capture's two samples, and one idle listener.
// Each listener's drops in the bundle equal ss -ltme's "d" for its socket,
// and, nothing else dropping in the namespace, their sum equals the
// ListenDrops delta: the reconciliation leaves no remainder.
func TestLabDropsMatchSS(t *testing.T) {
	t.Parallel()
	l := lab.New(t, lab.Options{})
	bin := lab.Build(t, "github.com/snapdiag/snapdiag/cmd/snapdiag")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var full []*lab.Listener
	for _, port := range []uint16{8085, 8086} {
		ln, err := l.Listen(netip.AddrPortFrom(l.ServerIP, port), 1, lab.NeverAccept)
		if err != nil {
			t.Fatal(err)
		}
		// Backlog 1 queues two connections (sk_acceptq_is_full() is
		// Recv-Q > Send-Q); every later SYN is dropped.
		if err := prefill(l, ln, 2); err != nil {
			t.Fatal(err)
		}
		full = append(full, ln)
	}
	idle, err := l.Listen(netip.AddrPortFrom(l.ServerIP, 8087), 8, lab.AcceptClose)
	if err != nil {
		t.Fatal(err)
	}

	// The drops must fall between the two samples, not while one is
	// read (the counters and the listeners are read a moment apart): the
	// samples are 4 s apart, the bursts come 2 s after the capture starts,
	// and the samples' clocks in the bundle prove it afterwards.
	const interval = 4 * time.Second
	var path string
	var bursts []time.Time
	for attempt := 1; ; attempt++ {
		dir := t.TempDir()
		p, err := l.Start(ctx, l.Server, bin, "capture", "--out", dir, "--samples", "2", "--interval", interval.String(),
			"--sample", "0", "--reason", "lab: listener drops against ss")
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-time.After(2 * time.Second):
		case <-l.Done():
			t.Fatal("lab torn down")
		}
		start := time.Now()
		for i, ln := range full {
			if err := dropBurst(l, ln, 3+2*i); err != nil {
				t.Fatal(err)
			}
		}
		end := time.Now()
		if err := p.Wait(); err != nil {
			t.Fatalf("capture: %v: %s", err, p.Stderr())
		}
		lines := strings.Split(strings.TrimSpace(p.Stdout()), "\n")
		path = lines[len(lines)-1]
		if !filepath.IsAbs(path) {
			t.Fatalf("capture printed %q, want a bundle path", path)
		}
		s, err := analyze.LoadPath(path)
		if err != nil {
			t.Fatal(err)
		}
		if betweenSamples(s, start, end) {
			bursts = []time.Time{start, end}
			break
		}
		if attempt == 3 {
			t.Fatalf("three captures in a row sampled during the bursts (a loaded machine): nothing to compare")
		}
		t.Logf("attempt %d: a sample was taken during the bursts; capturing again", attempt)
	}
	ss, err := l.SSMem(ctx, l.Server)
	if err != nil {
		t.Fatal(err)
	}
	s, r := loadAndAnalyze(t, path)
	t.Cleanup(func() { logReport(t, r) })
	t.Logf("bursts from %s to %s", bursts[0].Format(time.StampMicro), bursts[1].Format(time.StampMicro))

	last := s.Samples[len(s.Samples)-1]
	if len(last.Listeners) != len(ss) {
		t.Errorf("%d listeners in the last sample, ss shows %d", len(last.Listeners), len(ss))
	}
	for _, m := range ss {
		i := slices.IndexFunc(last.Listeners, func(x bundle.Listener) bool { return x.Inode == m.Inode })
		if i < 0 {
			t.Errorf("ss listener %s (inode %d) is not in the bundle", m.Local, m.Inode)
			continue
		}
		got := last.Listeners[i].Drops
		if got == nil || *got != m.Drops {
			t.Errorf("listener %s inode %d: bundle drops %v, ss -ltme d%d", m.Local, m.Inode, got, m.Drops)
		}
	}
	rec := s.ReconcileListenDrops()
	if rec == nil || !rec.PerSocket() || !rec.ListenDrops.OK {
		t.Fatalf("reconciliation %+v: want per-socket drops and a ListenDrops delta", rec)
	}
	t.Logf("sum over listeners %d, ListenDrops +%d, remainder %d; ss -ltme: %+v", rec.Sum, rec.ListenDrops.Delta, rec.Remainder, ss)
	wantMoved := []string{full[1].Addr.String(), full[0].Addr.String()} // most drops first
	var moved []string
	for _, x := range rec.Moved {
		moved = append(moved, x.Local)
	}
	if !slices.Equal(moved, wantMoved) {
		t.Errorf("listeners whose drops moved %v, want %v", moved, wantMoved)
	}
	if rec.Sum != 3+5 || rec.ListenDrops.Delta != rec.Sum || rec.Remainder != 0 || len(rec.Causes) != 0 {
		t.Errorf("sum over listeners %d, ListenDrops delta %d, remainder %d %v: want 8, 8, 0 and no cause",
			rec.Sum, rec.ListenDrops.Delta, rec.Remainder, rec.Causes)
	}
	for i, ln := range full {
		x := listenerAt(s, ln.Addr.String())
		if len(x) != 1 || x[0].Drops.Delta != int64(3+2*i) {
			t.Errorf("%s: %+v, want %d drops", ln.Addr, x, 3+2*i)
		}
	}
	if x := listenerAt(s, idle.Addr.String()); len(x) != 1 || !x[0].Drops.Known || x[0].Drops.Delta != 0 {
		t.Errorf("idle %s: %+v, want 0 drops, known", idle.Addr, x)
	}
	// Both full listeners get their own accept-queue finding; the idle
	// one gets none.
	var named []string
	for _, f := range r.Findings {
		if f.ID == analyze.IDAcceptQueueOverflow {
			named = append(named, f.Listener)
		}
		if f.Listener == idle.Addr.String() {
			t.Errorf("%s names the idle listener", f.ID)
		}
	}
	slices.Sort(named)
	if want := []string{full[0].Addr.String(), full[1].Addr.String()}; !slices.Equal(named, want) {
		t.Errorf("accept-queue findings on %v, want %v", named, want)
	}
}

// dropBurst has the good client send n SYNs to ln, whose accept queue is
// full, waits until the server has dropped them all, and closes the
// clients, so no SYN is retransmitted (a SYN_SENT socket closed sends
// nothing).
func dropBurst(l *lab.Lab, ln *lab.Listener, n int) error {
	before, err := l.Counters(l.Server)
	if err != nil {
		return err
	}
	c, err := l.Connect(l.GoodIP, ln.Addr, n)
	if err != nil {
		return err
	}
	_, err = counterRise(l, before, "TcpExt.ListenDrops", int64(n), 5*time.Second)
	return errors.Join(err, c.Close())
}

// betweenSamples reports whether [start, end] lies between the first
// sample's reading (its time plus half a second, a margin for reading it)
// and the last sample's.
func betweenSamples(s *analyze.Snapshot, start, end time.Time) bool {
	if len(s.Samples) != 2 || s.Samples[0].Time == nil || s.Samples[1].Time == nil {
		return false
	}
	t0, err0 := time.Parse(time.RFC3339Nano, s.Samples[0].Time.Wall)
	t1, err1 := time.Parse(time.RFC3339Nano, s.Samples[1].Time.Wall)
	return err0 == nil && err1 == nil && start.After(t0.Add(500*time.Millisecond)) && end.Before(t1)
}

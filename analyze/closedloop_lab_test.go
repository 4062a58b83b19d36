package analyze_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
)

// The closed loop (issue 3): an incident on the real kernel, a capture by
// the real binary inside the server's namespace, the real binary's JSON
// report, and every sysctl it recommends applied inside that namespace,
// never on the host; then the incident again, and the clients it hurt must
// now be served. Every step is bounded by its own timeout (connects, probes,
// the capture's --deadline); the wall time is logged, not asserted: it
// depends on how busy the machine is, and a benchmark measures speed.

// probeTimeout is how long a good client waits for a connection: longer
// than a client's first SYN retransmit (1 s), so a dropped SYN is not
// mistaken for a lost race, and short enough to call a timeout an outage.
const probeTimeout = 2 * time.Second

func TestClosedLoopSYNFloodCookiesOff(t *testing.T) {
	t.Parallel()
	start := time.Now()
	l, bin := closedLoopLab(t)

	// docs/kernel-listen-path.md §6 (a), cookies off: half-open clients hold the SYN queue at its cap,
	// and keep coming (a new batch every second) for the whole test.
	flood, err := lab.SYNFlood(l, lab.SYNFloodOpts{Syncookies: 0, Sustain: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Stop()
	before, err := l.Probe(flood.Good, flood.Target, probeTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if before.Outcome == lab.Connected {
		t.Fatalf("before the fix the good client connected (%s): the flood does not lock it out", before)
	}

	_, f := floodFinding(t, l, bin, flood, "closed loop: SYN flood, cookies off")
	applied := applySysctls(t, l, f, analyze.PlanPrimary)
	// R-SYNQ-DROP: cookies on; nothing that does not size the queue.
	if applied["net.ipv4.tcp_syncookies"] != "1" {
		t.Errorf("applied %v: want net.ipv4.tcp_syncookies=1 among them", applied)
	}
	if _, ok := applied["net.ipv4.tcp_max_syn_backlog"]; ok {
		t.Errorf("applied %v: tcp_max_syn_backlog does not size the SYN queue on 4.4 and later", applied)
	}

	// The flood again: a fresh batch of bad clients against the same
	// listener, whose SYN queue is still full of the old ones.
	c0, err := l.Counters(l.Server)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Connect(flood.Bad, flood.Target, 40); err != nil {
		t.Fatal(err)
	}
	if _, err := counterRise(l, c0, "TcpExt.TCPReqQFullDoCookies", 40, 5*time.Second); err != nil {
		t.Fatalf("the replayed flood: %v", err)
	}
	synRecv, err := l.SynRecv(flood.Target.Port())
	if err != nil {
		t.Fatal(err)
	}
	after, err := l.Probe(flood.Good, flood.Target, probeTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := l.Counters(l.Server)
	if err != nil {
		t.Fatal(err)
	}
	d := c1.Sub(c0)
	t.Logf("before the fix: %s; applied %v; after, with %d requests in the SYN queue (plateau %d) and the flood replayed "+
		"(TCPReqQFullDoCookies +%d, TCPReqQFullDrop +%d): %s, SyncookiesRecv +%d",
		before, applied, synRecv, flood.SynRecv, d["TcpExt.TCPReqQFullDoCookies"], d["TcpExt.TCPReqQFullDrop"], after, d["TcpExt.SyncookiesRecv"])
	if after.Outcome != lab.Connected || after.Latency >= probeTimeout {
		t.Errorf("after the fix the good client still cannot connect: %s", after)
	}
	if synRecv < flood.SynRecv {
		t.Errorf("the SYN queue drained to %d (plateau %d): the probe proves nothing about the fix", synRecv, flood.SynRecv)
	}
	if d["TcpExt.SyncookiesRecv"] < 1 {
		t.Errorf("the good client did not come in through a cookie (SyncookiesRecv +%d)", d["TcpExt.SyncookiesRecv"])
	}
	t.Logf("the closed loop took %v", time.Since(start))
}

func TestClosedLoopAcceptQueueAbortOnOverflow(t *testing.T) {
	t.Parallel()
	start := time.Now()
	l, bin := closedLoopLab(t)

	// docs/kernel-listen-path.md §6 (b) phase B with tcp_abort_on_overflow=1: an application that
	// has fallen behind (5 connections waiting, backlog 8) and a burst of 9
	// whose third ACKs arrive together: those that do not fit are reset.
	if err := l.Sysctl(l.Server, "net.ipv4.tcp_abort_on_overflow", "1"); err != nil {
		t.Fatal(err)
	}
	ln, err := l.Listen(netip.AddrPortFrom(l.ServerIP, 8081), 8, lab.NeverAccept)
	if err != nil {
		t.Fatal(err)
	}
	if err := prefill(l, ln, 5); err != nil {
		t.Fatal(err)
	}
	before, err := ackTimeOverflow(l, ln, l.BadIP, 9)
	if err != nil {
		t.Fatal(err)
	}
	if before.Reset == 0 {
		t.Fatalf("before the fix no client was reset (%d established): the incident did not happen", before.Established)
	}

	path, err := captureIn(l, bin, t.TempDir(), "8081", 3, "closed loop: accept queue, abort_on_overflow=1")
	if err != nil {
		t.Fatal(err)
	}
	rep := analyzeJSON(t, bin, path, analyze.ExitCritical)
	f := only(t, rep, analyze.IDAcceptQueueOverflow)
	if f.Listener != ln.Addr.String() {
		t.Errorf("the finding names %q, want %s", f.Listener, ln.Addr)
	}
	// R-ACCEPTQ: the remedy is the application's; the only sysctl that
	// helps is abort_on_overflow back to 0. A SYN-queue knob would be wrong.
	for _, r := range f.Recommendations {
		if r.Action == "sysctl" && slices.Contains([]string{"net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies", "net.ipv4.tcp_synack_retries"}, r.Key) {
			t.Errorf("the accept-queue finding recommends %s, which has nothing to do with the accept queue", r.Key)
		}
		if r.Key == "net.ipv4.tcp_abort_on_overflow" && r.Current != "1" {
			t.Errorf("tcp_abort_on_overflow: current %q, want 1", r.Current)
		}
	}
	if !hasAction(f, "app") {
		t.Error("no application remedy")
	}
	applied := applySysctls(t, l, f, analyze.PlanPrimary)
	if applied["net.ipv4.tcp_abort_on_overflow"] != "0" {
		t.Fatalf("applied %v: want net.ipv4.tcp_abort_on_overflow=0", applied)
	}

	// The application catches up, falls behind the same way, and the same
	// burst comes again.
	drained := acceptSome(ln, 9, 2*time.Second)
	if err := prefill(l, ln, 5); err != nil {
		t.Fatal(err)
	}
	after, err := ackTimeOverflow(l, ln, l.BadIP, 9)
	if err != nil {
		t.Fatal(err)
	}
	// With 0 the overflowed requests wait for the application instead of
	// being reset: once it accepts, their next SYN-ACK retransmit (or the
	// client's ACK) completes them. All 5 + 9 get served.
	served := acceptSome(ln, 14, 8*time.Second)
	t.Logf("before the fix: burst of 9 -> %d reset (ECONNRESET), %d established, ListenOverflows +%d; applied %v; "+
		"after (queue drained of %d): %d reset, %d established, ListenOverflows +%d, then %d of 14 served once the application accepted",
		before.Reset, before.Established, before.Overflows, applied, drained, after.Reset, after.Established, after.Overflows, served)
	if after.Reset != 0 || after.Established != 9 {
		t.Errorf("after the fix %d clients of the burst were reset, %d established; want 0 and 9", after.Reset, after.Established)
	}
	if served != 14 {
		t.Errorf("after the fix the application got %d of the 14 waiting connections", served)
	}
	t.Logf("the closed loop took %v", time.Since(start))
}

// closedLoopLab is a closed loop's lab and the real binary.
func closedLoopLab(t *testing.T) (*lab.Lab, string) {
	t.Helper()
	return lab.New(t, lab.Options{}), lab.Build(t, "github.com/snapdiag/snapdiag/cmd/snapdiag")
}

// floodFinding captures the flooded listener with the real binary, and
// returns the bundle's path and its one syn-queue-overflow finding from
// the binary's JSON report, checking that it names the flooded listener.
func floodFinding(t *testing.T, l *lab.Lab, bin string, flood *lab.Flood, reason string) (string, analyze.Finding) {
	t.Helper()
	path, err := captureIn(l, bin, t.TempDir(), fmt.Sprint(flood.Target.Port()), 3, reason)
	if err != nil {
		t.Fatal(err)
	}
	f := only(t, analyzeJSON(t, bin, path, analyze.ExitCritical), analyze.IDSynQueueOverflow)
	if f.Listener != flood.Target.String() {
		t.Errorf("the finding names %q, want the flooded listener %s", f.Listener, flood.Target)
	}
	return path, f
}

// analyzeJSON runs `snapdiag analyze --format json` on path, checks its exit
// code, and returns the report.
func analyzeJSON(t *testing.T, bin, path string, wantExit int) *analyze.Report {
	t.Helper()
	run := testutil.Run(t, 20*time.Second, "", nil, bin, "analyze", "--format", "json", path)
	if run.Code != wantExit {
		t.Errorf("snapdiag analyze exited %d, want %d\n%s", run.Code, wantExit, run.Stderr)
	}
	testutil.ValidateBundle(t, path)
	testutil.ValidateReport(t, []byte(run.Stdout))
	var r analyze.Report
	if err := json.Unmarshal([]byte(run.Stdout), &r); err != nil {
		t.Fatalf("report: %v\n%s", err, run.Stdout)
	}
	if r.Schema != analyze.Schema {
		t.Fatalf("report schema %q, want %q", r.Schema, analyze.Schema)
	}
	return &r
}

// applySysctls runs every sysctl recommendation of f in plan (PlanPrimary
// also takes those that name no plan) inside the lab's server namespace,
// from its command as printed (`sysctl -w key=value`), and returns what it
// set. l.Sysctl writes only net.* keys, from a thread inside the namespace:
// the host is never touched.
func applySysctls(t *testing.T, l *lab.Lab, f analyze.Finding, plan string) map[string]string {
	t.Helper()
	applied := map[string]string{}
	for _, r := range f.Recommendations {
		if r.Action != "sysctl" || !inPlan(r, plan) {
			continue
		}
		for _, c := range r.Commands {
			m := sysctlCommand.FindStringSubmatch(c)
			if m == nil {
				t.Fatalf("%s: recommended command %q is not `sysctl -w key=value`", f.ID, c)
			}
			if err := l.Sysctl(l.Server, m[1], m[2]); err != nil {
				t.Fatalf("%s: applying %q in the lab: %v", f.ID, c, err)
			}
			applied[m[1]] = m[2]
		}
	}
	if len(applied) == 0 {
		t.Fatalf("%s recommends no sysctl: nothing to close the loop with", f.ID)
	}
	return applied
}

// inPlan reports whether r belongs to plan; a recommendation that names no
// plan is the primary one.
func inPlan(r analyze.Recommendation, plan string) bool {
	if r.Plan == "" {
		return plan == analyze.PlanPrimary
	}
	return r.Plan == plan
}

// goodAttempts is how many connects the good client makes on each side of
// a fix: enough that 50% and 90% are told apart by more than one connect.
const goodAttempts = 20

// goodConnects has the good client try goodAttempts connects to target at
// once, each bounded by probeTimeout, and returns how many connected.
func goodConnects(t *testing.T, l *lab.Lab, from netip.Addr, target netip.AddrPort) int {
	t.Helper()
	type result struct {
		r   lab.ProbeResult
		err error
	}
	results := make(chan result, goodAttempts)
	for range goodAttempts {
		go func() {
			r, err := l.Probe(from, target, probeTimeout)
			results <- result{r, err}
		}()
	}
	n := 0
	for range goodAttempts {
		res := <-results
		if res.err != nil {
			t.Fatal(res.err)
		}
		if res.r.Outcome == lab.Connected {
			n++
		}
	}
	return n
}

// TestClosedLoopSYNFloodWithoutCookies is the closed loop for operators who
// keep tcp_syncookies=0: the report's without-cookies plan (shorter
// tcp_synack_retries, a backlog sized by the SYN-queue model, somaxconn and
// tcp_max_syn_backlog to match) applied inside the lab, the listener
// re-listened with the recommended backlog, cookies still off, and the
// flood replayed: the good client must now get in.
func TestClosedLoopSYNFloodWithoutCookies(t *testing.T) {
	t.Parallel()
	start := time.Now()
	l, bin := closedLoopLab(t)

	// The headline incident: backlog 16, cookies off, a fresh batch of 40
	// half-open clients every second for the whole test, on a server with
	// the kernel's default tcp_synack_retries (the lab shortens it to 2).
	if err := l.Sysctl(l.Server, "net.ipv4.tcp_synack_retries", "5"); err != nil {
		t.Fatal(err)
	}
	flood, err := lab.SYNFlood(l, lab.SYNFloodOpts{Syncookies: 0, Sustain: lab.MaxSustain})
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Stop()
	before := goodConnects(t, l, flood.Good, flood.Target)
	if before*2 > goodAttempts {
		t.Fatalf("before the fix %d of %d good connects succeeded: the flood does not lock the good client out", before, goodAttempts)
	}

	path, f := floodFinding(t, l, bin, flood, "closed loop: SYN flood, cookies kept off")
	// The same bundle analyzed in-process gives the typed model the
	// report's numbers come from.
	s, err := analyze.LoadPath(path)
	if err != nil {
		t.Fatal(err)
	}
	d := diagnosis[*analyze.SynQueueDrop](t, only(t, analyze.Analyze(s, path, analyze.Rules()), analyze.IDSynQueueOverflow))
	m, p := d.Model, d.NoCookies
	if m == nil || m.Arrival <= 0 || m.Backlog != 16 || m.SynackRetries != 5 || !p.Holds {
		t.Fatalf("model %+v, plan %+v: want a positive arrival rate on the backlog-16 listener and a plan that holds", m, p)
	}
	if p.SynackRetries != 2 || p.Hold != 7 {
		t.Errorf("plan retries %d (hold %v s), want 2 (7 s)", p.SynackRetries, p.Hold)
	}
	if float64(p.Backlog) < m.Arrival*p.Hold {
		t.Errorf("plan backlog %d below arrival %.1f/s x hold %v s", p.Backlog, m.Arrival, p.Hold)
	}

	applied := applySysctls(t, l, f, analyze.PlanWithoutCookies)
	if _, ok := applied["net.ipv4.tcp_syncookies"]; ok {
		t.Errorf("the without-cookies plan sets tcp_syncookies: %v", applied)
	}
	if applied["net.ipv4.tcp_synack_retries"] != "2" {
		t.Errorf("applied %v: want net.ipv4.tcp_synack_retries=2", applied)
	}
	var backlog int
	for _, r := range f.Recommendations {
		if r.Plan == analyze.PlanWithoutCookies && r.Key == analyze.KeyListenBacklog {
			backlog = atoi(r.Value)
		}
	}
	if backlog != int(p.Backlog) {
		t.Fatalf("the report's listen.backlog is %d, the typed plan's %d", backlog, p.Backlog)
	}
	// Whatever is not recommended must already admit the backlog.
	if somax, err := l.ReadSysctl(l.Server, "net.core.somaxconn"); err != nil || atoi(somax) < backlog {
		t.Fatalf("somaxconn %s (%v) would clamp the recommended backlog %d, and the plan does not raise it", somax, err, backlog)
	}
	if tmsb, err := l.ReadSysctl(l.Server, "net.ipv4.tcp_max_syn_backlog"); err != nil || atoi(tmsb)-atoi(tmsb)/4 <= backlog {
		t.Fatalf("tcp_max_syn_backlog %s (%v): its 3/4 rule would cut the recommended backlog %d", tmsb, err, backlog)
	}
	if err := l.Relisten(flood.Listener, backlog); err != nil {
		t.Fatal(err)
	}

	// The flood again, cookies still off: a fresh batch on top of the
	// sustained one, and the queue must take it in rather than drop it.
	c0, err := l.Counters(l.Server)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Connect(flood.Bad, flood.Target, 40); err != nil {
		t.Fatal(err)
	}
	var synRecv int
	err = lab.WaitFor(nil, 5*time.Second, 0, "the replayed flood to be queued", func() (bool, string, error) {
		var err error
		synRecv, err = l.SynRecv(flood.Target.Port())
		return synRecv >= flood.SynRecv+40, fmt.Sprintf("%d SYN_RECV (plateau before %d)", synRecv, flood.SynRecv), err
	})
	if err != nil {
		t.Fatal(err)
	}
	after := goodConnects(t, l, flood.Good, flood.Target)
	c1, err := l.Counters(l.Server)
	if err != nil {
		t.Fatal(err)
	}
	dc := c1.Sub(c0)
	t.Logf("model: arrival %.1f/s (%s; turned away %.1f/s, admitted %.1f/s), retries %d in force (hold %v s), cap %d; "+
		"plan: retries %d (hold %v s), %.0f slots, backlog %d, somaxconn %d, tcp_max_syn_backlog %d; "+
		"good connects %d/%d before, %d/%d after with %d SYN_RECV queued (TCPReqQFullDrop +%d, ListenDrops +%d, SyncookiesSent +%d)",
		m.Arrival, m.From, m.Turned, m.Admitted, m.Retries, m.Hold, m.Cap,
		p.SynackRetries, p.Hold, p.Slots, p.Backlog, p.Somaxconn, p.MaxSynBacklog,
		before, goodAttempts, after, goodAttempts, synRecv, dc["TcpExt.TCPReqQFullDrop"], dc["TcpExt.ListenDrops"], dc["TcpExt.SyncookiesSent"])
	if after*10 < goodAttempts*9 {
		t.Errorf("after the without-cookies fix %d of %d good connects succeeded, want at least 90%%", after, goodAttempts)
	}
	if dc["TcpExt.SyncookiesSent"] != 0 {
		t.Errorf("cookies were sent (+%d): the loop did not keep them off", dc["TcpExt.SyncookiesSent"])
	}
	t.Logf("the closed loop took %v", time.Since(start))
}

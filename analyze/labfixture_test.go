package analyze_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/lab"
)

// -record re-records the lab fixtures under ../fixtures: a real incident in
// network namespaces, captured by the real snapdiag binary.
var (
	record     = flag.Bool("record", false, "re-record ../fixtures from lab incidents (needs root)")
	recordOnly = flag.String("record-only", "", "with -record, re-record only the fixture of this name")
)

// recorderComm is the process that owns the lab's listeners when the
// fixtures are recorded: the go test binary of this package, whose sockets
// lab.Listen opens on a thread inside the server namespace.
const recorderComm = "analyze.test"

// labFixture is one incident recorded with -record, and what its report
// must say. Every expectation follows what the kernel does, not what
// the rules happened to print.
type labFixture struct {
	name string
	// net is N of the lab's address plan (10.211.N.0/24, fd00:5d:N::/64),
	// fixed so that the listener a finding must name is known exactly.
	net  int
	ipv6 bool
	// port is the service: the capture's --port, and the listener the queue
	// findings must name; 0 means 8080.
	port uint16
	// samples is the capture's counter samples, 1 s apart; 0 means 3.
	samples int
	// run brings the incident about. A non-nil stop is called once the
	// capture has ended: the part of the incident that must be happening
	// while the counters are sampled.
	run func(t *testing.T, l *lab.Lab) (stop func() error, err error)
	// want maps finding ids to the worst severity among them. Ids not listed
	// must be absent, except bundle-incomplete (checked apart) and
	// listen-drops-history (history is at most info; checked where listed).
	want map[string]analyze.Severity
	// risky lists the keys the risky-sysctl findings must name, one each.
	risky []string
	check func(t *testing.T, fx labFixture, r *analyze.Report)
}

// queueFindings are the findings about one listener's queues: each must
// name the listener (ADDR:PORT) and its process.
var queueFindings = []string{analyze.IDSynQueueOverflow, analyze.IDSyncookiesActive, analyze.IDAcceptQueueOverflow, analyze.IDHalfOpenClients}

func (fx labFixture) servicePort() uint16 {
	if fx.port == 0 {
		return 8080
	}
	return fx.port
}

// listener is the service's ADDR:PORT as ss and listeners.json print it,
// from the lab's address plan.
func (fx labFixture) listener() string {
	if fx.ipv6 {
		return fmt.Sprintf("[fd00:5d:%x::1]:%d", fx.net, fx.servicePort())
	}
	return fmt.Sprintf("10.211.%d.1:%d", fx.net, fx.servicePort())
}

func synFlood(o lab.SYNFloodOpts) func(t *testing.T, l *lab.Lab) (func() error, error) {
	return func(t *testing.T, l *lab.Lab) (func() error, error) {
		o.Sustain = 6 * time.Second
		_, err := lab.SYNFlood(l, o)
		return nil, err
	}
}

var labFixtures = []labFixture{
	{
		// A SYN flood, cookies off: TCPReqQFullDrop = ListenDrops, SYN-RECV at
		// backlog+1, the good client times out. With cookies off, cookies on is
		// the fix; the audit flags tcp_syncookies=0.
		name: "synflood-cookies-off-v4", net: 11,
		run: synFlood(lab.SYNFloodOpts{Syncookies: 0}),
		want: map[string]analyze.Severity{analyze.IDSynQueueOverflow: analyze.Critical, analyze.IDRiskySysctl: analyze.Warning,
			analyze.IDHalfOpenClients: analyze.Warning},
		risky: []string{"net.ipv4.tcp_syncookies"},
		check: checkSynDrop,
	},
	{
		name: "synflood-cookies-off-v6", net: 12, ipv6: true,
		run: synFlood(lab.SYNFloodOpts{Syncookies: 0, IPv6: true}),
		want: map[string]analyze.Severity{analyze.IDSynQueueOverflow: analyze.Critical, analyze.IDRiskySysctl: analyze.Warning,
			analyze.IDHalfOpenClients: analyze.Warning},
		risky: []string{"net.ipv4.tcp_syncookies"},
		check: checkSynDrop,
	},
	{
		// A SYN flood, cookies on: the overflow goes to cookies and nothing
		// comes back from the black-holed client (SyncookiesRecv ≈ 0): a
		// flood, so the advice is to keep cookies, never raise
		// tcp_max_syn_backlog.
		name: "synflood-cookies-on-v4", net: 13,
		run:   synFlood(lab.SYNFloodOpts{Syncookies: 1}),
		want:  map[string]analyze.Severity{analyze.IDSyncookiesActive: analyze.Warning, analyze.IDHalfOpenClients: analyze.Warning},
		check: checkCookieFlood,
	},
	{
		name: "synflood-cookies-on-v6", net: 14, ipv6: true,
		run:   synFlood(lab.SYNFloodOpts{Syncookies: 1, IPv6: true}),
		want:  map[string]analyze.Severity{analyze.IDSyncookiesActive: analyze.Warning, analyze.IDHalfOpenClients: analyze.Warning},
		check: checkCookieFlood,
	},
	{
		// Branch F of tcp_conn_request(): backlog 64, tcp_max_syn_backlog 16, cookies off:
		// the queue plateaus at 13, below Send-Q, and only ListenDrops moves.
		// The remedy: enable cookies, or tcp_max_syn_backlog ≥ 4/3 × 64.
		name: "three-quarter-rule", net: 15,
		run: synFlood(lab.SYNFloodOpts{Syncookies: 0, Backlog: 64, MaxSynBacklog: 16}),
		want: map[string]analyze.Severity{analyze.IDSynQueueOverflow: analyze.Critical, analyze.IDRiskySysctl: analyze.Warning,
			analyze.IDHalfOpenClients: analyze.Warning},
		risky: []string{"net.ipv4.tcp_syncookies"},
		check: func(t *testing.T, fx labFixture, r *analyze.Report) {
			f := only(t, r, analyze.IDSynQueueOverflow)
			if f.Key != "net.ipv4.tcp_max_syn_backlog" {
				t.Errorf("key %q, want the 3/4 rule's net.ipv4.tcp_max_syn_backlog", f.Key)
			}
			if rec := sysctlRecs(f)["net.ipv4.tcp_syncookies"]; rec != "1" {
				t.Errorf("tcp_syncookies recommendation %q, want 1", rec)
			}
			if rec := sysctlRecs(f)["net.ipv4.tcp_max_syn_backlog"]; rec != "86" {
				t.Errorf("tcp_max_syn_backlog recommendation %q, want 86 (4/3 of the backlog 64)", rec)
			}
			if !hasEvidence(f, "TcpExt.ListenDrops", true) || hasEvidence(f, "TcpExt.TCPReqQFullDrop", true) {
				t.Errorf("want ListenDrops moving and TCPReqQFullDrop flat: %+v", f.Evidence)
			}
			if d := diagnosis[*analyze.ThreeQuarterDrop](t, f); d.Listener == nil || d.Plateau != 12 || d.Backlog != 64 {
				t.Errorf("want the listener at the plateau of 12 (3/4 of 16) below its backlog 64: %+v", d)
			}
		},
	},
	{
		// With tcp_syncookies=2 the cookie counters move for every SYN
		// and SYN-RECV stays 0: no queue finding, only the audit.
		name: "syncookies-2", net: 16,
		run:   synFlood(lab.SYNFloodOpts{Syncookies: 2, BadClients: 5}),
		want:  map[string]analyze.Severity{analyze.IDRiskySysctl: analyze.Warning, analyze.IDHalfOpenClients: analyze.Info},
		risky: []string{"net.ipv4.tcp_syncookies"},
	},
	{
		// An accept queue that is never drained: backlog 8, never accepts: Recv-Q 9 > Send-Q 8 in
		// every sample and no new children: "stuck". The remedy is the
		// application's; no sysctl fixes a listener that never accepts.
		name: "accept-queue-never-accepts", net: 17, port: 8081,
		run: func(t *testing.T, l *lab.Lab) (func() error, error) {
			_, err := lab.AcceptQueueFull(l, lab.AcceptQueueOpts{})
			return nil, err
		},
		want: map[string]analyze.Severity{analyze.IDAcceptQueueOverflow: analyze.Critical},
		check: func(t *testing.T, fx labFixture, r *analyze.Report) {
			f := only(t, r, analyze.IDAcceptQueueOverflow)
			if d := diagnosis[*analyze.AcceptQueueOverflow](t, f); d.State != analyze.AcceptStuck {
				t.Errorf("a listener that never accepts must read as stuck: %+v", d)
			}
			if recs := sysctlRecs(f); len(recs) != 0 {
				t.Errorf("a stuck application gets no sysctl remedy here (somaxconn is 4096, abort_on_overflow 0): %v", recs)
			}
			if !hasAction(f, "app") {
				t.Error("no application remedy")
			}
		},
	},
	{
		// An accept queue that overflows, slow rather than stuck: the application accepts 4
		// connections a second while 20 arrive, so Recv-Q sits at its cap,
		// ListenOverflows rises, and PassiveOpens rises with the accepts.
		name: "accept-queue-slow", net: 18, port: 8081,
		run: func(t *testing.T, l *lab.Lab) (func() error, error) {
			ln, err := l.Listen(netip.AddrPortFrom(l.ServerIP, 8081), 8, lab.NeverAccept)
			if err != nil {
				return nil, err
			}
			before, err := l.Counters(l.Server)
			if err != nil {
				return nil, err
			}
			stopAccept := background(l, slowAcceptor(ln, 250*time.Millisecond))
			stopClients := background(l, steadyClients(l, l.GoodIP, ln.Addr, 2, 100*time.Millisecond, 3*time.Second))
			stop := func() error { return errors.Join(stopClients(), stopAccept()) }
			if _, err := counterRise(l, before, "TcpExt.ListenOverflows", 10, 10*time.Second); err != nil {
				return nil, errors.Join(err, stop())
			}
			return stop, nil
		},
		want: map[string]analyze.Severity{analyze.IDAcceptQueueOverflow: analyze.Critical},
		check: func(t *testing.T, fx labFixture, r *analyze.Report) {
			f := only(t, r, analyze.IDAcceptQueueOverflow)
			if d := diagnosis[*analyze.AcceptQueueOverflow](t, f); d.State != analyze.AcceptSlow {
				t.Errorf("an application that accepts, slowly, must not read as stuck: %+v", d)
			}
			if !hasEvidence(f, "Tcp.PassiveOpens", true) || !hasEvidence(f, "TcpExt.ListenOverflows", true) {
				t.Errorf("want PassiveOpens and ListenOverflows moving: %+v", f.Evidence)
			}
			if recs := sysctlRecs(f); len(recs) != 0 {
				t.Errorf("no sysctl makes a slow acceptor faster: %v", recs)
			}
		},
	},
	{
		// A burst on a full accept queue with tcp_abort_on_overflow=1: the third ACKs that
		// find the queue full are answered with RSTs (EmbryonicRsts, OutRsts):
		// the clients get ECONNRESET. The remedy: tcp_abort_on_overflow=0.
		name: "accept-queue-abort-on-overflow", net: 19, port: 8081, samples: 4,
		run: func(t *testing.T, l *lab.Lab) (func() error, error) {
			if err := l.Sysctl(l.Server, "net.ipv4.tcp_abort_on_overflow", "1"); err != nil {
				return nil, err
			}
			ln, err := l.Listen(netip.AddrPortFrom(l.ServerIP, 8081), 8, lab.NeverAccept)
			if err != nil {
				return nil, err
			}
			if err := prefill(l, ln, 5); err != nil {
				return nil, err
			}
			// The burst starts once the capture has taken its first sample,
			// and its overflows come about 1.3 s later, inside the window.
			return background(l, func(stop <-chan struct{}) error {
				select {
				case <-stop:
					return errors.New("stopped before the burst")
				case <-time.After(500 * time.Millisecond):
				}
				b, err := ackTimeOverflow(l, ln, l.BadIP, 9)
				if err != nil {
					return err
				}
				if b.Reset == 0 {
					return fmt.Errorf("no client of the burst was reset: %d established", b.Established)
				}
				return nil
			}), nil
		},
		want:  map[string]analyze.Severity{analyze.IDAcceptQueueOverflow: analyze.Critical, analyze.IDRiskySysctl: analyze.Warning},
		risky: []string{"net.ipv4.tcp_abort_on_overflow"},
		check: func(t *testing.T, fx labFixture, r *analyze.Report) {
			f := only(t, r, analyze.IDAcceptQueueOverflow)
			if got := sysctlRecs(f); !maps.Equal(got, map[string]string{"net.ipv4.tcp_abort_on_overflow": "0"}) {
				t.Errorf("sysctl remedies %v, want only tcp_abort_on_overflow=0", got)
			}
			if d := diagnosis[*analyze.AcceptQueueOverflow](t, f); !hasEvidence(f, "TcpExt.EmbryonicRsts", true) || !d.AbortOnOverflow || !d.Resets {
				t.Errorf("want the clients reset, in the evidence and the diagnosis: %+v", d)
			}
		},
	},
	{
		// TIME_WAIT overflow: tcp_max_tw_buckets 5 and a server that closes first:
		// TCPTimeWaitOverflow rises. The remedy: raise it, never lower it.
		name: "time-wait-overflow", net: 20, port: 8082,
		run: func(t *testing.T, l *lab.Lab) (func() error, error) {
			tw, err := lab.TimeWaitOverflow(l, lab.TimeWaitOpts{})
			if err != nil {
				return nil, err
			}
			return background(l, serverClosesFirst(l, l.GoodIP, tw.Listener.Addr, 50*time.Millisecond)), nil
		},
		want:  map[string]analyze.Severity{analyze.IDTimeWaitOverflow: analyze.Warning, analyze.IDRiskySysctl: analyze.Warning},
		risky: []string{"net.ipv4.tcp_max_tw_buckets"},
		check: func(t *testing.T, fx labFixture, r *analyze.Report) {
			f := only(t, r, analyze.IDTimeWaitOverflow)
			if f.Key != "net.ipv4.tcp_max_tw_buckets" || !hasEvidence(f, "TcpExt.TCPTimeWaitOverflow", true) {
				t.Errorf("key %q evidence %+v", f.Key, f.Evidence)
			}
			v, ok := sysctlRecs(f)["net.ipv4.tcp_max_tw_buckets"]
			if !ok || atoi(v) <= 5 {
				t.Errorf("want tcp_max_tw_buckets raised above 5, got %q", v)
			}
			if _, ok := sysctlRecs(f)["net.ipv4.tcp_tw_recycle"]; ok {
				t.Error("never tcp_tw_recycle")
			}
		},
	},
	{
		// Folklore settings, set in the server's namespace, on a healthy busy
		// service that asks for a 4096 backlog (clamped to somaxconn 1024):
		// one risky-sysctl finding per key, and nothing else.
		name: "risky-sysctls", net: 21,
		run: func(t *testing.T, l *lab.Lab) (func() error, error) {
			for _, kv := range [][2]string{
				{"net.ipv4.tcp_timestamps", "0"}, {"net.ipv4.tcp_sack", "0"}, {"net.ipv4.tcp_abort_on_overflow", "1"},
				{"net.core.somaxconn", "1024"}, {"net.ipv4.tcp_max_tw_buckets", "4096"},
			} {
				if err := l.Sysctl(l.Server, kv[0], kv[1]); err != nil {
					return nil, err
				}
			}
			busy, err := lab.HealthyBusy(l, lab.BusyOpts{Port: 8080, Backlog: 4096, Window: 10 * time.Second})
			if err != nil {
				return nil, err
			}
			return busy.StopHealthy, nil
		},
		want: map[string]analyze.Severity{analyze.IDRiskySysctl: analyze.Warning},
		risky: []string{"net.core.somaxconn", "net.ipv4.tcp_abort_on_overflow", "net.ipv4.tcp_max_tw_buckets",
			"net.ipv4.tcp_sack", "net.ipv4.tcp_timestamps"},
		check: func(t *testing.T, fx labFixture, r *analyze.Report) {
			want := map[string]string{"net.ipv4.tcp_timestamps": "1", "net.ipv4.tcp_sack": "1",
				"net.ipv4.tcp_abort_on_overflow": "0", "net.core.somaxconn": "4096"}
			for _, f := range r.Findings {
				if f.ID != analyze.IDRiskySysctl {
					continue
				}
				if f.Severity != analyze.Warning {
					t.Errorf("%s: %v, want warning (somaxconn clamps the service's backlog to 1024)", f.Key, f.Severity)
				}
				recs := sysctlRecs(f)
				if w, ok := want[f.Key]; ok && recs[f.Key] != w {
					t.Errorf("%s: remedy %q, want %q", f.Key, recs[f.Key], w)
				}
				if f.Key == "net.ipv4.tcp_max_tw_buckets" && atoi(recs[f.Key]) <= 4096 {
					t.Errorf("%s: remedy %q, want it raised", f.Key, recs[f.Key])
				}
			}
		},
	},
	{
		// DESIGN: counters are history; a SYN flood that ended before the
		// capture (cookies since turned on, the queue drained, clients
		// served) leaves large totals that do not move: info only.
		name: "incident-earlier-healthy-now", net: 22,
		run: func(t *testing.T, l *lab.Lab) (func() error, error) {
			flood, err := lab.SYNFlood(l, lab.SYNFloodOpts{Syncookies: 0, Sustain: 10 * time.Second})
			if err != nil {
				return nil, err
			}
			if _, err := counterRise(l, flood.Before, "TcpExt.TCPReqQFullDrop", 300, 10*time.Second); err != nil {
				return nil, err
			}
			flood.Stop()
			if err := flood.Conns.Close(); err != nil {
				return nil, err
			}
			// Without client retransmits, the requests expire after their
			// SYN-ACK retries (tcp_synack_retries 2: about 7 s).
			err = lab.WaitFor(nil, 20*time.Second, 0, "the SYN queue to drain", func() (bool, string, error) {
				n, err := l.SynRecv(flood.Target.Port())
				return n == 0, fmt.Sprintf("%d SYN-RECV", n), err
			})
			if err != nil {
				return nil, err
			}
			if err := l.Sysctl(l.Server, "net.ipv4.tcp_syncookies", "1"); err != nil {
				return nil, err
			}
			return background(l, func(stop <-chan struct{}) error {
				for {
					select {
					case <-stop:
						return nil
					case <-time.After(200 * time.Millisecond):
					}
					p, err := l.Probe(flood.Good, flood.Target, 2*time.Second)
					if err != nil {
						return err
					}
					if p.Outcome != lab.Connected {
						return fmt.Errorf("probe after the incident: %s", p)
					}
				}
			}), nil
		},
		want: map[string]analyze.Severity{analyze.IDListenDropsHistory: analyze.Info},
		check: func(t *testing.T, fx labFixture, r *analyze.Report) {
			f := only(t, r, analyze.IDListenDropsHistory)
			var total float64
			for _, e := range f.Evidence {
				if e.Metric == "TcpExt.TCPReqQFullDrop" {
					if e.Delta != 0 {
						t.Errorf("TCPReqQFullDrop moved by %v during the capture", e.Delta)
					}
					total = e.Value
				}
			}
			if total < 100 {
				t.Errorf("want the flood's TCPReqQFullDrop total (hundreds) in the history, got %v: %+v", total, f.Evidence)
			}
			if !slices.ContainsFunc(f.Evidence, func(e analyze.Evidence) bool { return strings.Contains(e.Note, "Possible SYN flooding") }) {
				t.Errorf("want the kernel's SYN-flood line as history: %+v", f.Evidence)
			}
		},
	},
	{
		// The control: 50 short connections a second on a backlog of 511.
		name: "healthy-busy", net: 23, port: 8083,
		run: func(t *testing.T, l *lab.Lab) (func() error, error) {
			_, err := lab.HealthyBusy(l, lab.BusyOpts{Window: 10 * time.Second})
			return nil, err
		},
		want: map[string]analyze.Severity{},
	},
}

// prefill connects n clients from the good address to ln (a listener that
// does not accept) and waits until they are all in its accept queue.
func prefill(l *lab.Lab, ln *lab.Listener, n int) error {
	before, err := l.ListenQueue(ln.Port())
	if err != nil {
		return err
	}
	if _, err := l.Connect(l.GoodIP, ln.Addr, n); err != nil {
		return err
	}
	return lab.WaitFor(nil, 5*time.Second, 0, fmt.Sprintf("%d connections queued on %s", before+n, ln.Addr), func() (bool, string, error) {
		q, err := l.ListenQueue(ln.Port())
		return q >= before+n, fmt.Sprintf("Recv-Q %d", q), err
	})
}

// checkSynDrop: a full SYN queue's remedy with cookies off is tcp_syncookies=1, and on 4.4+
// never tcp_max_syn_backlog (the SYN queue's cap is the backlog).
func checkSynDrop(t *testing.T, fx labFixture, r *analyze.Report) {
	f := only(t, r, analyze.IDSynQueueOverflow)
	recs := sysctlRecs(f)
	if recs["net.ipv4.tcp_syncookies"] != "1" {
		t.Errorf("sysctl remedies %v, want tcp_syncookies=1", recs)
	}
	if !hasEvidence(f, "TcpExt.TCPReqQFullDrop", true) {
		t.Errorf("want TCPReqQFullDrop moving: %+v", f.Evidence)
	}
	if !hasAction(f, "app") {
		t.Error("no application remedy (the listen backlog)")
	}
}

// checkCookieFlood: cookies carry the overflow and nothing comes back, so
// the remedy is upstream; keep cookies on.
func checkCookieFlood(t *testing.T, fx labFixture, r *analyze.Report) {
	f := only(t, r, analyze.IDSyncookiesActive)
	if d := diagnosis[*analyze.CookieOverflow](t, f); d.Verdict != analyze.CookieFlood {
		t.Errorf("SyncookiesRecv ≈ 0 must read as a flood: %+v", d)
	}
	if v, ok := sysctlRecs(f)["net.ipv4.tcp_syncookies"]; ok && v != "1" {
		t.Errorf("cookies must stay on, got tcp_syncookies=%s", v)
	}
	if !hasEvidence(f, "TcpExt.TCPReqQFullDoCookies", true) {
		t.Errorf("want TCPReqQFullDoCookies moving: %+v", f.Evidence)
	}
}

func TestRecordLabFixtures(t *testing.T) {
	if !*record {
		t.Skip("run with -record (as root) to re-record ../fixtures from lab incidents")
	}
	bin := lab.Build(t, "github.com/snapdiag/snapdiag/cmd/snapdiag")
	for _, fx := range labFixtures {
		t.Run(fx.name, func(t *testing.T) {
			if *recordOnly != "" && *recordOnly != fx.name {
				t.Skip("not selected by -record-only")
			}
			l := lab.New(t, lab.Options{IPv6: fx.ipv6, Net: fx.net})
			stop, err := fx.run(t, l)
			if err != nil {
				t.Fatal(err)
			}
			samples := fx.samples
			if samples == 0 {
				samples = 3
			}
			path, err := captureIn(l, bin, t.TempDir(), fmt.Sprint(fx.servicePort()), samples, "lab: "+fx.name)
			if stop != nil {
				err = errors.Join(err, stop())
			}
			if err != nil {
				t.Fatal(err)
			}
			// A recording that does not show the incident is worth nothing:
			// check it before it replaces the old one.
			if !checkLabFixture(t, fx, path) {
				t.Fatalf("the new recording of %s fails its checks; ../fixtures left as it was", fx.name)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join("..", "fixtures", fx.name)
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, "bundle.tar.zst"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// captureIn runs `snapdiag capture` inside the lab's server namespace, with
// the counter samples 1 s apart and the packet sample over all of them, and
// returns the bundle's path.
func captureIn(l *lab.Lab, bin, out, port string, samples int, reason string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o, err := l.Exec(ctx, l.Server, bin, "capture", "--out", out, "--port", port,
		"--samples", fmt.Sprint(samples), "--interval", "1s", "--sample", fmt.Sprintf("%ds", samples-1), "--reason", reason)
	if err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimSpace(string(o.Stdout)), "\n")
	return lines[len(lines)-1], nil
}

// TestLabFixtures analyzes every recorded lab fixture and checks its
// findings.
func TestLabFixtures(t *testing.T) {
	for _, fx := range labFixtures {
		t.Run(fx.name, func(t *testing.T) {
			p := filepath.Join("..", "fixtures", fx.name, "bundle.tar.zst")
			if _, err := os.Stat(p); err != nil {
				t.Skipf("%s not recorded yet (go test ./analyze -run TestRecordLabFixtures -record -record-only %s)", p, fx.name)
			}
			checkLabFixture(t, fx, p)
		})
	}
}

// TestLabFixturesBeforeDrops analyzes lab recordings kept from before
// listeners.json had "drops" (testdata/before-drops/NAME.tar.zst, copies of
// ../fixtures/NAME as first recorded) with the fixture's checks: a bundle
// without per-socket drops is attributed by its queues' state, and still
// says what it said when it was recorded.
func TestLabFixturesBeforeDrops(t *testing.T) {
	n := 0
	for _, fx := range labFixtures {
		p := filepath.Join("testdata", "before-drops", fx.name+".tar.zst")
		if _, err := os.Stat(p); err != nil {
			continue
		}
		n++
		t.Run(fx.name, func(t *testing.T) {
			s, err := analyze.LoadPath(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, sm := range s.Samples {
				for _, l := range sm.Listeners {
					if l.Drops != nil {
						t.Fatalf("%s: sample %d has drops: not a recording from before them", p, sm.Index)
					}
				}
			}
			if r := s.ReconcileListenDrops(); r.PerSocket() {
				t.Errorf("reconciliation %+v claims per-socket drops", r)
			}
			checkLabFixture(t, fx, p)
		})
	}
	if n == 0 {
		t.Fatal("no recording from before per-socket drops under testdata/before-drops")
	}
}

// checkLabFixture analyzes the bundle at p and checks it against fx,
// reporting whether it passed.
func checkLabFixture(t *testing.T, fx labFixture, p string) bool {
	t.Helper()
	s, err := analyze.LoadPath(p)
	if err != nil {
		t.Fatal(err)
	}
	ok := t.Run("report", func(t *testing.T) {
		// The fixtures are complete captures: every sample has its
		// listeners, and nothing is missing.
		for _, sm := range s.Samples {
			if !sm.HasListeners {
				t.Errorf("sample %d has no listeners.json: re-record with a snapdiag that samples listeners", sm.Index)
			}
		}
		if s.Sockets == nil || s.Summary == nil {
			t.Error("no socket table: re-record with a snapdiag that collects sockets/")
		}
		r := analyze.Analyze(s, p, analyze.Rules())
		got := map[string]analyze.Severity{}
		for _, f := range r.Findings {
			if cur, ok := got[f.ID]; !ok || f.Severity > cur {
				got[f.ID] = f.Severity
			}
		}
		for id, sev := range fx.want {
			if cur, ok := got[id]; !ok || cur != sev {
				t.Errorf("%s: severity %v (present %v), want %v", id, cur, ok, sev)
			}
		}
		for id := range got {
			if _, ok := fx.want[id]; !ok && id != analyze.IDListenDropsHistory {
				t.Errorf("unexpected finding %s", id)
			}
		}
		var risky []string
		for _, f := range r.Findings {
			if f.ID == analyze.IDRiskySysctl {
				risky = append(risky, f.Key)
			}
		}
		slices.Sort(risky)
		if want := slices.Sorted(slices.Values(fx.risky)); !slices.Equal(risky, want) {
			t.Errorf("risky-sysctl keys %v, want %v (one finding per key)", risky, want)
		}
		for _, f := range r.Findings {
			checkAttribution(t, fx, f)
			checkRemedies(t, f)
		}
		if fx.check != nil {
			fx.check(t, fx, r)
		}
		if t.Failed() {
			var b strings.Builder
			analyze.RenderText(&b, r, analyze.TextOptions{})
			t.Log(b.String())
		}
	})
	return ok
}

// checkAttribution: a finding about a queue names the listener and the
// process that owns it (issue 3, "Attribution").
func checkAttribution(t *testing.T, fx labFixture, f analyze.Finding) {
	t.Helper()
	if !slices.Contains(queueFindings, f.ID) {
		return
	}
	if f.Listener != fx.listener() {
		t.Errorf("%s names listener %q, want %q", f.ID, f.Listener, fx.listener())
	}
	if f.Process == nil || f.Process.PID <= 0 || f.Process.Comm != recorderComm {
		t.Errorf("%s names process %+v, want the recorder (%s)", f.ID, f.Process, recorderComm)
	}
	if f.ID != analyze.IDHalfOpenClients && !strings.Contains(f.Title, fx.listener()) {
		t.Errorf("%s: the title does not name the listener: %q", f.ID, f.Title)
	}
}

var sysctlCommand = regexp.MustCompile(`^sysctl -w ([a-z0-9_.\-/]+)=(\S+)$`)

// checkRemedies holds for every finding of a 6.18 bundle: sysctl commands
// run as they stand and set what the recommendation says, and
// tcp_max_syn_backlog is never the primary remedy of a full SYN queue or
// accept queue (only the cookies-off 3/4 rule and the without-cookies plan
// may raise it).
func checkRemedies(t *testing.T, f analyze.Finding) {
	t.Helper()
	for _, rec := range f.Recommendations {
		if rec.Action != "sysctl" {
			continue
		}
		if len(rec.Commands) != 1 {
			t.Errorf("%s: %s: want one command, got %q", f.ID, rec.Key, rec.Commands)
			continue
		}
		m := sysctlCommand.FindStringSubmatch(rec.Commands[0])
		if m == nil || m[1] != rec.Key || m[2] != rec.Value {
			t.Errorf("%s: command %q does not set %s=%s", f.ID, rec.Commands[0], rec.Key, rec.Value)
		}
		// The without-cookies plan sizes tcp_max_syn_backlog for its 3/4
		// rule; the remedy snapdiag advises never raises it.
		if rec.Key == "net.ipv4.tcp_max_syn_backlog" && rec.Plan != analyze.PlanWithoutCookies && !(f.ID == analyze.IDSynQueueOverflow && f.Key == rec.Key) {
			t.Errorf("%s recommends tcp_max_syn_backlog, which does not size the SYN queue on 4.4 and later", f.ID)
		}
	}
}

// diagnosis is f's diagnosis as a D, or a fatal error.
func diagnosis[D analyze.Diagnosis](t *testing.T, f analyze.Finding) D {
	t.Helper()
	d, ok := f.Diagnosis.(D)
	if !ok {
		t.Fatalf("%s: diagnosis %T, want %T", f.ID, f.Diagnosis, d)
	}
	return d
}

// only returns the single finding with id.
func only(t *testing.T, r *analyze.Report, id string) analyze.Finding {
	t.Helper()
	var out []analyze.Finding
	for _, f := range r.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	if len(out) != 1 {
		t.Fatalf("want one %s finding, got %d", id, len(out))
	}
	return out[0]
}

// sysctlRecs maps the keys of a finding's sysctl recommendations to their
// values.
func sysctlRecs(f analyze.Finding) map[string]string {
	m := map[string]string{}
	for _, r := range f.Recommendations {
		if r.Action == "sysctl" {
			m[r.Key] = r.Value
		}
	}
	return m
}

func hasAction(f analyze.Finding, action string) bool {
	return slices.ContainsFunc(f.Recommendations, func(r analyze.Recommendation) bool { return r.Action == action })
}

// hasEvidence reports whether f cites metric, moving (delta > 0) when moved
// is true.
func hasEvidence(f analyze.Finding, metric string, moved bool) bool {
	return slices.ContainsFunc(f.Evidence, func(e analyze.Evidence) bool {
		return e.Metric == metric && (!moved || e.Delta > 0)
	})
}

// atoi is s as a number, or -1.
func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

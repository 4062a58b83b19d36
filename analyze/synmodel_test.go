package analyze

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

func TestSynHold(t *testing.T) {
	// 1 s, doubling, each interval capped at TCP_RTO_MAX (120 s).
	for retries, want := range map[int]float64{0: 1, 1: 3, 2: 7, 3: 15, 5: 63, 10: 127 + 4*120} {
		if got := SynHold(retries); got != want {
			t.Errorf("SynHold(%d) = %v, want %v", retries, got, want)
		}
	}
}

func TestPrunedRetries(t *testing.T) {
	for _, tt := range []struct {
		name                    string
		configured, qlen, young int
		backlog                 int64
		want                    int
	}{
		// At most half full (qlen*2 <= max(8, backlog)): no pruning.
		{"half full", 5, 8, 0, 16, 5},
		{"tiny queue below 8", 5, 4, 0, 2, 5},
		// Full, qlen/young = 17/2 (hold 15 s): down to the floor.
		{"flood at hold 15 s", 5, 17, 2, 16, 2},
		// qlen/young = 17/3 (hold 7 s): stops at 3.
		{"flood at hold 7 s", 5, 17, 3, 16, 3},
		// Mostly young requests: no pruning needed.
		{"young queue", 5, 17, 17, 16, 5},
		// The loop never raises and never goes below 2.
		{"configured 1", 1, 17, 0, 16, 1},
		{"configured 2", 2, 17, 0, 16, 2},
	} {
		if got := prunedRetries(tt.configured, tt.qlen, tt.young, tt.backlog); got != tt.want {
			t.Errorf("%s: prunedRetries(%d, %d, %d, %d) = %d, want %d", tt.name, tt.configured, tt.qlen, tt.young, tt.backlog, got, tt.want)
		}
	}
}

func TestSynQueueCap(t *testing.T) {
	k := func(rel string) KernelVersion {
		v, err := parseKernelRelease(rel)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tt := range []struct {
		kernel        string
		backlog, tmsb int64
		cookiesOff    bool
		want          int
	}{
		{"6.18.0", 16, 1024, false, 17}, // qlen > backlog since 6.13
		{"6.12.0", 16, 1024, false, 16}, // qlen >= backlog before
		{"5.4.0", 128, 128, false, 128}, // cookies on: tmsb plays no part
		{"6.18.0", 64, 16, true, 13},    // the 3/4 rule: 16 - 4 + 1
		{"6.18.0", 64, 16, false, 65},   // ... only with cookies off
		// Before 4.4: min(backlog, tmsb), at least 8, +1, rounded up to a
		// power of two.
		{"3.10.0", 128, 1024, false, 256},
		{"3.10.0", 128, 64, false, 128},
		{"3.10.0", 5, 1024, false, 16},
		{"4.3.0", 1000, 2048, false, 1024},
		// ... and the 3/4 rule with cookies off.
		{"3.10.0", 128, 128, true, 97},
	} {
		if got := SynQueueCap(k(tt.kernel), tt.backlog, tt.tmsb, tt.cookiesOff); got != tt.want {
			t.Errorf("SynQueueCap(%s, backlog %d, tmsb %d, cookies off %v) = %d, want %d",
				tt.kernel, tt.backlog, tt.tmsb, tt.cookiesOff, got, tt.want)
		}
	}
}

// synDropFixture is the headline incident: cookies off, backlog 16 at its
// cap (17 SYN-RECV on 6.18), TCPReqQFullDrop +46 over 1 s, with the
// sysctls the model reads set explicitly.
func synDropFixture(t *testing.T, kernel string, somaxconn, tmsb string) *fixture {
	return host(t).kernel(kernel).
		sysctl("net.ipv4.tcp_syncookies", "0").sysctl("net.ipv4.tcp_synack_retries", "5").
		sysctl("net.core.somaxconn", somaxconn).sysctl("net.ipv4.tcp_max_syn_backlog", tmsb).
		listeners(func(int) []bundle.Listener { return []bundle.Listener{listener(16, 0, 17)} }).
		ramp("TcpExt", "TCPReqQFullDrop", 23).ramp("TcpExt", "ListenDrops", 23).ramp("Tcp", "PassiveOpens", 1)
}

func TestSynModelFromBundle(t *testing.T) {
	r := synDropFixture(t, "6.18.44-fc-v657", "4096", "128").report()
	f := findingByID(t, r, IDSynQueueOverflow)
	d := diagnosis[*SynQueueDrop](t, f)
	m, p := d.Model, d.NoCookies
	if m == nil || m.Listener == nil || m.Listener.Local != "10.211.0.1:8080" {
		t.Fatalf("model %+v: want the flooded listener", m)
	}
	// The queue is full (17 > 16/2), so the kernel prunes: 17 requests,
	// young 17/15 -> 2 gives the floor, 2 retries, 7 s.
	if m.Cap != 17 || m.SynRecv != 17 || m.SynackRetries != 5 || m.Retries != 2 || !m.Pruned || m.Hold != 7 {
		t.Errorf("model cap %d syn-recv %d retries %d/%d pruned %v hold %v; want 17, 17, 2 of 5, pruned, 7 s",
			m.Cap, m.SynRecv, m.Retries, m.SynackRetries, m.Pruned, m.Hold)
	}
	// 46 dropped SYNs over the 1 s of the recorded samples (to within its
	// timestamps), plus 17 admitted per 7 s.
	if math.Abs(m.Turned-46) > 0.1 || math.Abs(m.Admitted-17.0/7) > 0.01 || m.From != RateCounters ||
		math.Abs(m.Arrival-(46+17.0/7)) > 0.1 || math.Abs(m.Needed-m.Arrival*7) > 0.01 {
		t.Errorf("model rates: turned %v admitted %v arrival %v (%s) needed %v", m.Turned, m.Admitted, m.Arrival, m.From, m.Needed)
	}
	// Plan: 2 retries (7 s); 48.43/s x 7 s = 339 slots, x2 = 678; somaxconn
	// 4096 admits it; tcp_max_syn_backlog 128 must go to 4/3 x 679.
	if p.SynackRetries != 2 || p.Hold != 7 || p.Backlog != 678 || p.Somaxconn != 0 || p.MaxSynBacklog != 906 || !p.Holds {
		t.Errorf("plan %+v; want retries 2, hold 7, backlog 678, somaxconn 0, tcp_max_syn_backlog 906", p)
	}
	want := map[string]string{
		"net.ipv4.tcp_synack_retries":  "2",
		"net.ipv4.tcp_max_syn_backlog": "906",
		KeyListenBacklog:               "678",
	}
	got := map[string]string{}
	for _, rec := range f.Recommendations {
		switch rec.Plan {
		case PlanWithoutCookies:
			got[rec.Key] = rec.Value
		case "":
			if rec.Key == "net.ipv4.tcp_max_syn_backlog" || rec.Key == "net.ipv4.tcp_synack_retries" {
				t.Errorf("the primary remedy sets %s", rec.Key)
			}
		default:
			t.Errorf("recommendation in unknown plan %q", rec.Plan)
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("without-cookies %s = %q, want %q (plan %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("without-cookies plan %v, want exactly %v", got, want)
	}
	if rec := recByKey(f, "net.ipv4.tcp_syncookies"); rec == nil || rec.Plan != "" {
		t.Errorf("cookies must stay the primary remedy: %+v", rec)
	}
}

func TestSynModelOldKernels(t *testing.T) {
	t.Run("4.19 with somaxconn 128", func(t *testing.T) {
		// Before 5.4 somaxconn defaulted to 128: the plan's backlog needs it
		// raised, and the primary advice says it is the old default.
		r := synDropFixture(t, "4.19.0-26-amd64", "128", "1024").report()
		d := diagnosis[*SynQueueDrop](t, findingByID(t, r, IDSynQueueOverflow))
		if d.Model.Cap != 16 {
			t.Errorf("cap %d on 4.19, want 16 (qlen >= backlog before 6.13)", d.Model.Cap)
		}
		if p := d.NoCookies; p.Somaxconn != p.Backlog || p.Backlog < 128 {
			t.Errorf("plan %+v: want somaxconn raised to the backlog", p)
		}
		if !d.Backlog.SomaxconnOldDefault || !d.Backlog.RaiseSomaxconn || d.Backlog.Limit != LimitApplication {
			t.Errorf("backlog advice %+v: want somaxconn 128 flagged as the old default, raised; the app's 16 the limit", d.Backlog)
		}
	})
	t.Run("3.10", func(t *testing.T) {
		// Before 4.4 the queue was min(backlog, tmsb), at least 8, +1,
		// rounded up: 32 for backlog 16; with cookies off the 3/4 rule of
		// tmsb 128 cuts at 97, above it.
		r := synDropFixture(t, "3.10.0-1160.el7.x86_64", "128", "128").report()
		d := diagnosis[*SynQueueDrop](t, findingByID(t, r, IDSynQueueOverflow))
		if d.Model.Cap != 32 {
			t.Errorf("cap %d on 3.10 with backlog 16, want 32", d.Model.Cap)
		}
		// tcp_max_syn_backlog sized the queue then: the plan raises it to
		// cover the backlog and its 3/4 rule.
		p := d.NoCookies
		if p.MaxSynBacklog < p.Backlog || p.MaxSynBacklog-p.MaxSynBacklog>>2 < p.Backlog+1 {
			t.Errorf("plan %+v: tcp_max_syn_backlog must cover the backlog and its 3/4 rule", p)
		}
		if !d.Backlog.RaiseMaxSynBacklog {
			t.Error("before 4.4 the primary advice must raise tcp_max_syn_backlog with the backlog")
		}
	})
}

func TestSynModelPacketRate(t *testing.T) {
	// One sample only: no counter deltas, so the rate rests on the queue
	// (a lower bound) unless the packet sample shows more.
	s := synDropFixture(t, "6.18.44-fc-v657", "4096", "1024").dropSamplesAfter(1).snapshot()
	m := modelSynQueue(s, s.Listeners()[0])
	if m.From != RateQueue || math.Abs(m.Arrival-17.0/7) > 0.01 {
		t.Errorf("one sample: arrival %v from %s, want 17/7 from the queue", m.Arrival, m.From)
	}
}

func TestBacklogInForce(t *testing.T) {
	for _, tt := range []struct {
		name           string
		somaxconn      string
		sendQ          uint32
		comm           string
		limit          BacklogLimit
		server         string
		raiseSomaxconn bool
	}{
		{"clamped by somaxconn", "4096", 4096, "mygoserver", LimitSomaxconn, "", true},
		{"clamped by an old somaxconn", "128", 128, "java", LimitSomaxconn, "Java", true},
		{"the application's own backlog", "4096", 16, "dovecot", LimitApplication, "dovecot", false},
		{"nginx's 511", "4096", 511, "nginx", LimitApplication, "nginx", false},
		{"python", "4096", 5, "python3.12", LimitApplication, "Python", false},
		{"postfix master", "4096", 100, "master", LimitApplication, "Postfix", false},
		{"somaxconn lowered after listen", "64", 511, "node", LimitSomaxconnLowered, "Node.js", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := listener(tt.sendQ, 0, int(tt.sendQ)+1)
			l.Comm = tt.comm
			s := host(t).kernel("6.18.44-fc-v657").sysctl("net.core.somaxconn", tt.somaxconn).
				listeners(func(int) []bundle.Listener { return []bundle.Listener{l} }).snapshot()
			a := adviseBacklog(s, s.Listeners()[0])
			server := ""
			if a.App != nil {
				server = a.App.Server
			}
			if a.Limit != tt.limit || server != tt.server || a.RaiseSomaxconn != tt.raiseSomaxconn {
				t.Errorf("limit %v server %q raise somaxconn %v; want %v %q %v", a.Limit, server, a.RaiseSomaxconn, tt.limit, tt.server, tt.raiseSomaxconn)
			}
			recs := a.recommendations(s, "")
			app := recs[len(recs)-1]
			if app.Action != "app" || app.Key != KeyListenBacklog || app.Value != "4096" && tt.sendQ < 1024 {
				t.Errorf("application recommendation %+v: want key %s and the target", app, KeyListenBacklog)
			}
			if got := recByKey(Finding{Recommendations: recs}, "net.core.somaxconn") != nil; got != tt.raiseSomaxconn {
				t.Errorf("somaxconn recommended %v, want %v", got, tt.raiseSomaxconn)
			}
		})
	}
}

func TestThreeQuarterOnlyWhenItBites(t *testing.T) {
	build := func(tmsb string, l bundle.Listener) *Snapshot {
		return host(t).kernel("6.18.44-fc-v657").sysctl("net.ipv4.tcp_syncookies", "0").
			sysctl("net.ipv4.tcp_max_syn_backlog", tmsb).
			listeners(func(int) []bundle.Listener { return []bundle.Listener{l} }).
			ramp("TcpExt", "ListenDrops", 27).ramp("Tcp", "PassiveOpens", 1).snapshot()
	}
	// tcp_max_syn_backlog 16 against backlog 64: the mark (12) is below the
	// backlog, the queue plateaus at 13: the 3/4 rule.
	if d := diagnoseThreeQuarter(build("16", listener(64, 0, 13))); d == nil || d.Listener == nil || d.Plateau != 12 {
		t.Errorf("tmsb 16, backlog 64: %+v, want the 3/4 rule at 12 on the listener", d)
	}
	// tcp_max_syn_backlog 1024 against backlog 16: its mark (768) is far
	// above the backlog, so it cannot be what drops.
	if d := diagnoseThreeQuarter(build("1024", listener(16, 0, 5))); d != nil {
		t.Errorf("tmsb 1024, backlog 16: the 3/4 rule blamed: %+v", d)
	}
}

// TestSynModelOwnDrops: with cookies off and per-socket drops known, each
// flooded listener's model is sized from its own drop counter, not from the
// namespace's TCPReqQFullDrop, which two flooded listeners share.
func TestSynModelOwnDrops(t *testing.T) {
	s := host(t).sysctl("net.ipv4.tcp_syncookies", "0").
		ramp("TcpExt", "TCPReqQFullDrop", 40).ramp("TcpExt", "ListenDrops", 40).
		listeners(func(k int) []bundle.Listener {
			return []bundle.Listener{
				withDrops(socketAt(8080, 1, 16, 0, 17), drops(uint32(30*k))),
				withDrops(socketAt(8081, 2, 16, 0, 17), drops(uint32(10*k))),
			}
		}).snapshot()
	r := Analyze(s, "fixture", Rules())
	f := findingByID(t, r, IDSynQueueOverflow)
	d := diagnosis[*SynQueueDrop](t, f)
	m := d.Model
	if m == nil || m.Listener == nil || m.From != RateSocket {
		t.Fatalf("model %+v: want one sized from the socket's own drops", m)
	}
	own := m.Listener.Drops.PerSecond
	if own <= 0 || math.Abs(m.Turned-own) > 1e-9 || math.Abs(m.Arrival-(own+m.Admitted)) > 1e-9 {
		t.Errorf("model of %s: turned %v arrival %v, want its own %v/s plus admitted %v", m.Listener.Local, m.Turned, m.Arrival, own, m.Admitted)
	}
	if ns := s.Delta(tcpExtTCPReqQFullDrop).PerSecond; own >= ns {
		t.Errorf("own rate %v not below the namespace's %v: the test proves nothing", own, ns)
	}
}

// TestPacketRateOnlyWhatNeverCompleted: handshakes whose end the sample
// cannot show (their port's ACKs not kept) are not arrivals of half-open
// requests; those it shows half-open, and SYNs never answered, are.
func TestPacketRateOnlyWhatNeverCompleted(t *testing.T) {
	start := time.Unix(1000, 0)
	srv := netip.MustParseAddrPort("10.0.0.1:143")
	flow := func(i int, sees bundle.Coverage, synackRetrans int, synRetrans int, synacks int) *Handshake {
		h := &Handshake{Client: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), uint16(40000+i)), Server: srv,
			SYNs: 1 + synRetrans, SYNRetrans: synRetrans, SYNACKs: synacks, SYNACKRetrans: synackRetrans, Sees: sees}
		h.firstSYNACK = start
		return h
	}
	pa := &PacketAnalysis{Start: start, End: start.Add(2 * time.Second)}
	for i := range 10 {
		pa.Flows = append(pa.Flows, flow(i, bundle.CoverageNo, 0, 0, 1)) // cannot tell
	}
	pa.Flows = append(pa.Flows,
		flow(20, bundle.CoverageNo, 1, 0, 2),  // SYN-ACK re-sent: half-open
		flow(21, bundle.CoverageYes, 0, 0, 1), // ACKs kept, none came: half-open
		flow(22, bundle.CoverageNo, 0, 1, 0))  // SYN re-sent, never answered
	if got := packetHalfOpenRate(pa, 143); got != 1.5 {
		t.Errorf("rate %v/s, want 3 handshakes in 2 s", got)
	}
}

package analyze

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/bundle"
)

// scenario is a fixture and the findings it must yield: finding id to the
// worst severity among that id's findings. Ids not listed must be absent,
// except bundle-incomplete.
type scenario struct {
	name  string
	build func(t testing.TB) *fixture
	want  map[string]Severity
	check func(t *testing.T, r *Report)
}

// The counter movements follow lab runs of these incidents on 6.18 (over
// 1 s here: two 500 ms intervals of the recorded host bundle); the
// listeners follow the queue states observed there.
func scenarios() []scenario {
	synFlood := func(cookies string) func(t testing.TB) *fixture {
		return func(t testing.TB) *fixture {
			f := host(t).sysctl("net.ipv4.tcp_syncookies", cookies).
				listeners(func(int) []bundle.Listener { return []bundle.Listener{listener(16, 0, 17)} })
			if cookies == "0" {
				f.ramp("TcpExt", "TCPReqQFullDrop", 23).ramp("TcpExt", "ListenDrops", 23).
					kmsg("4,900,5000000,-;TCP: request_sock_TCP: Possible SYN flooding on port 10.211.0.1:8080. Dropping request.  Check SNMP counters.")
			} else {
				f.ramp("TcpExt", "TCPReqQFullDoCookies", 23).ramp("TcpExt", "SyncookiesSent", 23).ramp("TcpExt", "SyncookiesRecv", 1).
					kmsg("4,900,5000000,-;TCP: request_sock_TCP: Possible SYN flooding on port 10.211.0.1:8080. Sending cookies.  Check SNMP counters.")
			}
			return f.ramp("TcpExt", "TCPSynRetrans", 17).ramp("Tcp", "PassiveOpens", 1)
		}
	}
	return []scenario{
		{
			name:  "healthy host",
			build: host,
			want:  map[string]Severity{},
		},
		{
			name:  "SYN flood, cookies off",
			build: synFlood("0"),
			want:  map[string]Severity{IDSynQueueOverflow: Critical, IDRiskySysctl: Warning},
			check: func(t *testing.T, r *Report) {
				f := findingByID(t, r, IDSynQueueOverflow)
				if f.Listener != "10.211.0.1:8080" || f.Process == nil || f.Process.Comm != "dovecot" {
					t.Errorf("attribution: listener %q process %+v", f.Listener, f.Process)
				}
				rec := recByKey(f, "net.ipv4.tcp_syncookies")
				if rec == nil || rec.Value != "1" || rec.Current != "0" ||
					!cmp.Equal(rec.Commands, []string{"sysctl -w net.ipv4.tcp_syncookies=1"}) ||
					rec.Persist != "net.ipv4.tcp_syncookies = 1  # /etc/sysctl.d/90-snapdiag.conf" {
					t.Errorf("syncookies recommendation = %+v", rec)
				}
				if !hasAction(f, "app") {
					t.Error("no app recommendation for the listen backlog")
				}
				d := diagnosis[*SynQueueDrop](t, f)
				if !d.AtCap || len(d.Listeners) != 1 || d.Listeners[0].Local != "10.211.0.1:8080" || d.Drops.Delta != 46 {
					t.Errorf("want 46 drops on the one listener at its cap: %+v", d)
				}
				if w, _ := r.Worst(); w != Critical || !strings.HasPrefix(r.Verdict, "CRITICAL: "+f.Title) {
					t.Errorf("the verdict must lead with the SYN-queue finding: %q", r.Verdict)
				}
			},
		},
		{
			name:  "SYN flood, cookies on",
			build: synFlood("1"),
			want:  map[string]Severity{IDSyncookiesActive: Warning},
			check: func(t *testing.T, r *Report) {
				d := diagnosis[*CookieOverflow](t, findingByID(t, r, IDSyncookiesActive))
				if d.Verdict != CookieFlood || d.ReturnRatio != 2.0/46 {
					t.Errorf("SyncookiesRecv/Sent = 2/46 must read as a flood: verdict %v, ratio %v", d.Verdict, d.ReturnRatio)
				}
			},
		},
		{
			name: "cookies on, legitimate load",
			build: func(t testing.TB) *fixture {
				return host(t).listeners(func(int) []bundle.Listener { return []bundle.Listener{listener(128, 3, 129)} }).
					ramp("TcpExt", "TCPReqQFullDoCookies", 50).ramp("TcpExt", "SyncookiesSent", 50).
					ramp("TcpExt", "SyncookiesRecv", 45).ramp("Tcp", "PassiveOpens", 400)
			},
			want: map[string]Severity{IDSyncookiesActive: Warning},
			check: func(t *testing.T, r *Report) {
				f := findingByID(t, r, IDSyncookiesActive)
				d := diagnosis[*CookieOverflow](t, f)
				if d.Verdict != CookieLegitimateLoad || d.Backlog == nil || d.Backlog.Target != 4096 || !hasAction(f, "app") {
					t.Errorf("legitimate load must recommend capacity: %+v", d)
				}
			},
		},
		{
			name: "3/4 rule of tcp_max_syn_backlog",
			build: func(t testing.TB) *fixture {
				return host(t).sysctl("net.ipv4.tcp_syncookies", "0").sysctl("net.ipv4.tcp_max_syn_backlog", "16").
					listeners(func(int) []bundle.Listener { return []bundle.Listener{listener(64, 0, 13)} }).
					ramp("TcpExt", "ListenDrops", 27)
			},
			want: map[string]Severity{IDSynQueueOverflow: Critical, IDRiskySysctl: Warning},
			check: func(t *testing.T, r *Report) {
				f := findingByID(t, r, IDSynQueueOverflow)
				if f.Key != "net.ipv4.tcp_max_syn_backlog" {
					t.Errorf("key %q", f.Key)
				}
				if rec := recByKey(f, "net.ipv4.tcp_max_syn_backlog"); rec == nil || rec.Value != "86" {
					t.Errorf("want tcp_max_syn_backlog 86 (4/3 of 64), got %+v", rec)
				}
				if recByKey(f, "net.ipv4.tcp_syncookies") == nil {
					t.Error("want syncookies=1 first")
				}
				d := diagnosis[*ThreeQuarterDrop](t, f)
				if d.Listener == nil || d.Plateau != 12 || d.Residual.Delta != 54 || d.RaiseMaxSynBacklogTo != 86 {
					t.Errorf("want the listener at the plateau of 12 with 54 residual drops: %+v", d)
				}
			},
		},
		{
			name: "syncookies=2",
			build: func(t testing.TB) *fixture {
				return host(t).sysctl("net.ipv4.tcp_syncookies", "2").
					listeners(func(int) []bundle.Listener { return []bundle.Listener{listener(16, 0, 0)} }).
					ramp("TcpExt", "TCPReqQFullDoCookies", 5).ramp("TcpExt", "SyncookiesSent", 5).ramp("TcpExt", "SyncookiesRecv", 1)
			},
			want: map[string]Severity{IDRiskySysctl: Warning},
			check: func(t *testing.T, r *Report) {
				d := diagnosis[*RiskySysctl](t, findingByID(t, r, IDRiskySysctl))
				if d.Key != "net.ipv4.tcp_syncookies" || d.Current != "2" || d.Safe != "1" || d.EveryCookie.Delta != 10 {
					t.Errorf("mode 2 counts a cookie for every SYN: %+v", d)
				}
			},
		},
		{
			// Section 1.5: with tcp_syncookies=2 the cookie counters rise
			// for every SYN, so their totals are no sign of earlier drops.
			name: "syncookies=2, cookie totals from before the capture",
			build: func(t testing.TB) *fixture {
				return host(t).sysctl("net.ipv4.tcp_syncookies", "2").
					total("TcpExt", "TCPReqQFullDoCookies", 5000).total("TcpExt", "SyncookiesSent", 5000)
			},
			want: map[string]Severity{IDRiskySysctl: Warning},
		},
		{
			// Section 4: stuck is Recv-Q pinned at Send-Q+1 and ΔPassiveOpens ≈ 0.
			name: "listener never accepts",
			build: func(t testing.TB) *fixture {
				return host(t).listeners(func(int) []bundle.Listener { return []bundle.Listener{listener(4, 5, 0)} }).
					ramp("TcpExt", "ListenOverflows", 3).ramp("TcpExt", "ListenDrops", 3).flat("Tcp", "PassiveOpens")
			},
			want: map[string]Severity{IDAcceptQueueOverflow: Critical},
			check: func(t *testing.T, r *Report) {
				f := findingByID(t, r, IDAcceptQueueOverflow)
				if d := diagnosis[*AcceptQueueOverflow](t, f); d.State != AcceptStuck || !d.Pinned || f.Listener != "10.211.0.1:8080" {
					t.Errorf("want a stuck application on the listener: %+v, %q", d, f.Listener)
				}
			},
		},
		{
			// The same pinned Recv-Q while the kernel completes connections:
			// the application accepts, too slowly; every slot it frees is
			// refilled before the next sample.
			name: "listener accepts too slowly, queue full at every sample",
			build: func(t testing.TB) *fixture {
				return host(t).listeners(func(int) []bundle.Listener { return []bundle.Listener{listener(4, 5, 0)} }).
					ramp("TcpExt", "ListenOverflows", 15).ramp("TcpExt", "ListenDrops", 15).ramp("Tcp", "PassiveOpens", 2)
			},
			want: map[string]Severity{IDAcceptQueueOverflow: Critical},
			check: func(t *testing.T, r *Report) {
				d := diagnosis[*AcceptQueueOverflow](t, findingByID(t, r, IDAcceptQueueOverflow))
				if d.State != AcceptSlow || !d.Pinned || !d.PassiveOpens.Moved() {
					t.Errorf("want a slow application with a pinned queue, not a stuck one: %+v", d)
				}
			},
		},
		{
			name: "accept queue overflow with abort_on_overflow=1",
			build: func(t testing.TB) *fixture {
				return host(t).sysctl("net.ipv4.tcp_abort_on_overflow", "1").
					listeners(func(k int) []bundle.Listener { return []bundle.Listener{listener(8, uint32(7+k), 5)} }).
					ramp("TcpExt", "ListenOverflows", 3).ramp("TcpExt", "ListenDrops", 3).
					ramp("TcpExt", "EmbryonicRsts", 3).ramp("Tcp", "OutRsts", 5).ramp("Tcp", "PassiveOpens", 2)
			},
			want: map[string]Severity{IDAcceptQueueOverflow: Critical, IDRiskySysctl: Warning},
			check: func(t *testing.T, r *Report) {
				f := findingByID(t, r, IDAcceptQueueOverflow)
				if rec := recByKey(f, "net.ipv4.tcp_abort_on_overflow"); rec == nil || rec.Value != "0" {
					t.Errorf("want abort_on_overflow=0, got %+v", rec)
				}
				if d := diagnosis[*AcceptQueueOverflow](t, f); !d.AbortOnOverflow || !d.Resets || d.EmbryonicRsts.Delta != 6 {
					t.Errorf("want the clients reset by tcp_abort_on_overflow: %+v", d)
				}
			},
		},
		{
			name: "unreachable clients, cookies on",
			build: func(t testing.TB) *fixture {
				return host(t).ramp("TcpExt", "ListenDrops", 9).ramp("Icmp", "OutDestUnreachs", 47).ramp("Icmp", "InDestUnreachs", 47)
			},
			want: map[string]Severity{IDUnreachableClients: Warning},
			check: func(t *testing.T, r *Report) {
				d := diagnosis[*UnreachableClients](t, findingByID(t, r, IDUnreachableClients))
				if d.Residual.Delta != 18 || d.ICMPOut.Delta != 94 || d.ICMPIn.Delta != 94 || d.NeighbourOverflow {
					t.Errorf("want 18 residual drops with ICMP unreachables both ways: %+v", d)
				}
			},
		},
		{
			name: "TIME_WAIT overflow",
			build: func(t testing.TB) *fixture {
				return host(t).sysctl("net.ipv4.tcp_max_tw_buckets", "5").ramp("TcpExt", "TCPTimeWaitOverflow", 10)
			},
			want: map[string]Severity{IDTimeWaitOverflow: Warning, IDRiskySysctl: Warning},
			check: func(t *testing.T, r *Report) {
				d := diagnosis[*TimeWaitOverflow](t, findingByID(t, r, IDTimeWaitOverflow))
				if d.Overflows.Delta != 20 || d.MaxBuckets != 5 || d.RaiseTo != 262144 {
					t.Errorf("want 20 overflows and tcp_max_tw_buckets raised from 5 to 262144: %+v", d)
				}
			},
		},
		{
			name: "incident earlier, healthy now",
			build: func(t testing.TB) *fixture {
				return host(t).total("TcpExt", "ListenOverflows", 120000).total("TcpExt", "ListenDrops", 180000).
					total("TcpExt", "TCPReqQFullDrop", 60000).
					kmsg("4,12,5000000,-;TCP: request_sock_TCP: Possible SYN flooding on port 0.0.0.0:143. Dropping request.  Check SNMP counters.").
					listeners(func(int) []bundle.Listener { return []bundle.Listener{listener(4096, 0, 2)} })
			},
			want: map[string]Severity{IDListenDropsHistory: Info},
			check: func(t *testing.T, r *Report) {
				d := diagnosis[*DropHistory](t, findingByID(t, r, IDListenDropsHistory))
				got := map[string]int64{}
				for _, x := range d.Totals {
					if x.Delta != 0 {
						t.Errorf("%s moved by %d", x.Counter, x.Delta)
					}
					got[x.Counter.String()] = x.Last
				}
				want := map[string]int64{"TcpExt.ListenOverflows": 120000, "TcpExt.ListenDrops": 180000, "TcpExt.TCPReqQFullDrop": 60000}
				for k, v := range want {
					if got[k] < v {
						t.Errorf("%s total %d, want at least %d", k, got[k], v)
					}
				}
			},
		},
		{
			name:  "softnet drops",
			build: func(t testing.TB) *fixture { return host(t).softnetDrop(40) },
			want:  map[string]Severity{IDSoftnetDrops: Warning},
			check: func(t *testing.T, r *Report) {
				d := diagnosis[*SoftnetDrops](t, findingByID(t, r, IDSoftnetDrops))
				if diff := cmp.Diff([]CPUDrops{{CPU: 0, Dropped: 80}}, d.PerCPU); diff != "" || d.Dropped.Delta != 80 {
					t.Errorf("want CPU 0's 80 drops (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:  "fd exhaustion",
			build: func(t testing.TB) *fixture { return host(t).sysctl("fs.file-nr", "99000\t0\t100000") },
			want:  map[string]Severity{IDFDExhaustion: Critical},
			check: func(t *testing.T, r *Report) {
				d := diagnosis[*FDExhaustion](t, findingByID(t, r, IDFDExhaustion))
				if d.Allocated != 99000 || d.Max != 100000 || !d.HaveFileNr {
					t.Errorf("want 99000 of 100000 files: %+v", d)
				}
			},
		},
		{
			name:  "tcp memory",
			build: func(t testing.TB) *fixture { return host(t).ramp("TcpExt", "TCPAbortOnMemory", 2) },
			want:  map[string]Severity{IDTCPMemoryPressure: Critical},
			check: func(t *testing.T, r *Report) {
				d := diagnosis[*TCPMemoryPressure](t, findingByID(t, r, IDTCPMemoryPressure))
				if d.AbortOnMemory.Delta != 4 || d.AtHardLimit || d.NearMaxOrphans {
					t.Errorf("want 4 connections aborted for memory, no limit reached: %+v", d)
				}
			},
		},
		{
			name: "risky sysctls",
			build: func(t testing.TB) *fixture {
				return host(t).sysctl("net.ipv4.tcp_timestamps", "0").sysctl("net.ipv4.tcp_sack", "0").
					sysctl("net.ipv4.tcp_window_scaling", "0").sysctl("net.core.somaxconn", "1024")
			},
			want: map[string]Severity{IDRiskySysctl: Warning},
			check: func(t *testing.T, r *Report) {
				keys := map[string]Severity{}
				for _, f := range r.Findings {
					if f.ID == IDRiskySysctl {
						keys[f.Key] = f.Severity
					}
				}
				want := map[string]Severity{"net.ipv4.tcp_timestamps": Warning, "net.ipv4.tcp_sack": Warning,
					"net.ipv4.tcp_window_scaling": Warning, "net.core.somaxconn": Info}
				if diff := cmp.Diff(want, keys); diff != "" {
					t.Errorf("one finding per key (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "old kernel 4.19: somaxconn 128 clamps the backlog",
			build: func(t testing.TB) *fixture {
				return synFlood("1")(t).kernel("4.19.0-26-amd64").sysctl("net.core.somaxconn", "128").
					listeners(func(int) []bundle.Listener { return []bundle.Listener{listener(128, 0, 128)} })
			},
			want: map[string]Severity{IDSyncookiesActive: Warning, IDRiskySysctl: Warning},
			check: func(t *testing.T, r *Report) {
				f := findingByID(t, r, IDSyncookiesActive)
				if rec := recByKey(f, "net.core.somaxconn"); rec == nil || rec.Value != "4096" {
					t.Errorf("want somaxconn 4096 for pre-5.4, got %+v", rec)
				}
				if b := diagnosis[*CookieOverflow](t, f).Backlog; b == nil || !b.RaiseSomaxconn || !b.SomaxconnOldDefault || b.Somaxconn != 128 {
					t.Errorf("want somaxconn raised from the pre-5.4 default 128: %+v", b)
				}
			},
		},
		{
			name: "kernel 3.10, cookies off: tcp_max_syn_backlog still caps the SYN queue",
			build: func(t testing.TB) *fixture {
				return synFlood("0")(t).kernel("3.10.0-1160.el7.x86_64").sysctl("net.ipv4.tcp_max_syn_backlog", "128")
			},
			want: map[string]Severity{IDSynQueueOverflow: Critical, IDRiskySysctl: Warning},
			check: func(t *testing.T, r *Report) {
				f := findingByID(t, r, IDSynQueueOverflow)
				if rec := recByKey(f, "net.ipv4.tcp_max_syn_backlog"); rec == nil || rec.Value != "4096" {
					t.Errorf("want tcp_max_syn_backlog for 3.10, got %+v", rec)
				}
				if d := diagnosis[*SynQueueDrop](t, f); !d.Backlog.RaiseMaxSynBacklog {
					t.Errorf("before 4.4 tcp_max_syn_backlog caps the SYN queue too: %+v", d.Backlog)
				}
			},
		},
		{
			name: "one sample, SYN queue full, cookies off",
			build: func(t testing.TB) *fixture {
				return synFlood("0")(t).dropSamplesAfter(1)
			},
			want: map[string]Severity{IDSynQueueOverflow: Warning, IDRiskySysctl: Warning, IDBundleIncomplete: Info},
		},
		{
			name: "half-open clients in the packet sample",
			build: func(t testing.TB) *fixture {
				f := host(t).listeners(func(int) []bundle.Listener { return []bundle.Listener{listener(1, 0, 1)} })
				f.set(bundle.PathPackets, string(testPcap(t, 113)))
				return f
			},
			want: map[string]Severity{IDHalfOpenClients: Warning},
			check: func(t *testing.T, r *Report) {
				f := findingByID(t, r, IDHalfOpenClients)
				d := diagnosis[*HalfOpenClients](t, f)
				// The synthetic sample's bad client: one half-open handshake
				// and one ACK-time overflow, three SYN-ACK retransmits; and
				// its IPv6 twin.
				want := []HalfOpenSource{{Addr: "10.211.0.2", HalfOpen: 1, Flows: 2, SYNACKRetrans: 3, Completed: 1, SYNRetrans: 1, TTL: 64, Window: 64240},
					{Addr: "fd00:5d::2", HalfOpen: 1, Flows: 1, SYNACKRetrans: 1, TTL: 64, Window: 64240}}
				if diff := cmp.Diff(want, d.Sources); diff != "" || !d.FromPackets || f.Listener != "10.211.0.1:8080" {
					t.Errorf("want the source and the listener %q (-want +got):\n%s", f.Listener, diff)
				}
			},
		},
		{
			name: "ephemeral ports",
			build: func(t testing.TB) *fixture {
				f := host(t).sysctl("net.ipv4.ip_local_port_range", "40000\t40009")
				var rows []string
				for p := 40000; p <= 40009; p++ {
					st := "TIME-WAIT"
					if p%2 == 0 {
						st = "ESTAB"
					}
					rows = append(rows, fmt.Sprintf(`{"family":"inet","state":%q,"local":"10.211.0.3:%d","remote":"10.211.0.1:8080"}`, st, p))
				}
				f.set(bundle.PathSocketsTCP, strings.Join(rows, "\n")+"\n")
				return f
			},
			want: map[string]Severity{IDEphemeralPorts: Critical},
			check: func(t *testing.T, r *Report) {
				d := diagnosis[*PortExhaustion](t, findingByID(t, r, IDEphemeralPorts))
				if len(d.Tuples) != 1 || d.Tuples[0].Sockets != 10 || d.Tuples[0].TimeWait != 5 || d.Size != 10 ||
					d.WidenTo != [2]int64{10000, 65000} {
					t.Errorf("want the 10 ports of 40000-40009 used to one destination, and the range widened: %+v", d)
				}
			},
		},
	}
}

func findingByID(t *testing.T, r *Report, id string) Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("no %s finding", id)
	return Finding{}
}

// diagnosis is f's diagnosis as a D, or a fatal error.
func diagnosis[D Diagnosis](t *testing.T, f Finding) D {
	t.Helper()
	d, ok := f.Diagnosis.(D)
	if !ok {
		t.Fatalf("%s: diagnosis %T, want %T", f.ID, f.Diagnosis, d)
	}
	return d
}

func recByKey(f Finding, key string) *Recommendation {
	for i := range f.Recommendations {
		if f.Recommendations[i].Key == key {
			return &f.Recommendations[i]
		}
	}
	return nil
}

func hasAction(f Finding, action string) bool {
	for _, r := range f.Recommendations {
		if r.Action == action {
			return true
		}
	}
	return false
}

func worstByID(r *Report) map[string]Severity {
	got := map[string]Severity{}
	for _, f := range r.Findings {
		if f.ID == IDBundleIncomplete {
			continue
		}
		if cur, ok := got[f.ID]; !ok || f.Severity > cur {
			got[f.ID] = f.Severity
		}
	}
	return got
}

func TestRules(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			r := sc.build(t).report()
			want := map[string]Severity{}
			for k, v := range sc.want {
				if k != IDBundleIncomplete {
					want[k] = v
				}
			}
			if diff := cmp.Diff(want, worstByID(r)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
				for _, f := range r.Findings {
					t.Logf("%s %s: %s", f.Severity, f.ID, f.Title)
				}
			}
			for _, f := range r.Findings {
				if f.Diagnosis == nil {
					t.Errorf("%s finding without a diagnosis", f.ID)
				}
			}
			if sc.check != nil {
				sc.check(t, r)
			}
			if r.Schema != Schema {
				t.Errorf("schema %q", r.Schema)
			}
		})
	}
}

// TestNeverTcpMaxSynBacklogWithCookies asserts a hard rule across every
// rule and scenario: on 4.4 and later with syncookies on, no
// recommendation raises tcp_max_syn_backlog (it does not size the SYN queue
// there: the listen backlog, clamped by somaxconn, does).
func TestNeverTcpMaxSynBacklogWithCookies(t *testing.T) {
	for _, sc := range scenarios() {
		for _, kernel := range []string{"4.4.0", "4.19.0-26-amd64", "5.4.0", "6.1.0", "6.18.44-fc-v657"} {
			for _, cookies := range []string{"1", "2"} {
				t.Run(fmt.Sprintf("%s/%s/cookies=%s", sc.name, kernel, cookies), func(t *testing.T) {
					r := sc.build(t).kernel(kernel).sysctl("net.ipv4.tcp_syncookies", cookies).report()
					for _, f := range r.Findings {
						for _, rec := range f.Recommendations {
							if rec.Key == "net.ipv4.tcp_max_syn_backlog" || strings.Contains(strings.Join(rec.Commands, " "), "tcp_max_syn_backlog") {
								t.Errorf("%s recommends %+v", f.ID, rec)
							}
						}
					}
				})
			}
		}
	}
}

// TestSysctlCommandsRunnable checks every sysctl recommendation's command
// is "sysctl -w key=value" for its own key and value.
func TestSysctlCommandsRunnable(t *testing.T) {
	for _, sc := range scenarios() {
		r := sc.build(t).report()
		for _, f := range r.Findings {
			for _, rec := range f.Recommendations {
				if rec.Action != "sysctl" {
					continue
				}
				val := rec.Value
				if strings.Contains(val, " ") {
					val = fmt.Sprintf("%q", val)
				}
				want := []string{"sysctl -w " + rec.Key + "=" + val}
				if !cmp.Equal(rec.Commands, want) || rec.Key == "" || rec.Persist == "" {
					t.Errorf("%s/%s: %+v", sc.name, f.ID, rec)
				}
			}
		}
	}
}

func TestExitCode(t *testing.T) {
	mk := func(sev ...Severity) *Report {
		r := &Report{}
		for _, s := range sev {
			r.Findings = append(r.Findings, Finding{Severity: s})
		}
		return r
	}
	for _, tt := range []struct {
		reps []*Report
		want int
	}{
		{[]*Report{mk()}, 0}, {[]*Report{mk(Info)}, 0}, {[]*Report{mk(Info, Warning)}, 3},
		{[]*Report{mk(Warning), mk(Critical)}, 4}, {[]*Report{mk(Critical), mk()}, 4},
	} {
		if got := ExitCode(tt.reps...); got != tt.want {
			t.Errorf("ExitCode = %d, want %d", got, tt.want)
		}
	}
}

// TestRulePanicBecomesFinding: a failing rule yields a finding, and the
// other rules still run.
func TestRulePanicBecomesFinding(t *testing.T) {
	s := host(t).snapshot()
	rules := append([]Rule{{ID: "boom", Check: func(*Snapshot) []Finding { panic("kaboom") }}}, Rules()...)
	rules = append(rules, Rule{ID: "after", Check: func(*Snapshot) []Finding { return []Finding{{ID: "after"}} }})
	fs := RunRules(s, rules)
	if len(fs) == 0 || fs[0].ID != IDRuleError || fs[0].Severity != Warning {
		t.Fatalf("got %+v", fs)
	}
	if d := diagnosis[*RuleFailure](t, fs[0]); d.Rule != "boom" || d.Panic != "kaboom" {
		t.Errorf("diagnosis %+v, want rule boom panicking with kaboom", d)
	}
	if fs[len(fs)-1].ID != "after" {
		t.Errorf("the rules after the failed one did not run: %+v", fs)
	}
}

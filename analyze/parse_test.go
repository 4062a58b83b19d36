package analyze

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/snapdiag/snapdiag/bundle"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("%v (record with go test -run TestRecord -update)", err)
	}
	return b
}

func TestParseNetstat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Counters
		wantErr bool
	}{
		{
			name: "two groups",
			in:   "TcpExt: SyncookiesSent ListenDrops\nTcpExt: 3 46\nIpExt: InNoRoutes\nIpExt: 0\n",
			want: Counters{"TcpExt": {"SyncookiesSent": 3, "ListenDrops": 46}, "IpExt": {"InNoRoutes": 0}},
		},
		{
			name: "negative MaxConn in snmp",
			in:   "Tcp: RtoAlgorithm MaxConn\nTcp: 1 -1\n",
			want: Counters{"Tcp": {"RtoAlgorithm": 1, "MaxConn": -1}},
		},
		{
			name: "unsigned long above MaxInt64 wraps",
			in:   "TcpExt: X\nTcpExt: 18446744073709551615\n",
			want: Counters{"TcpExt": {"X": -1}},
		},
		{name: "empty", in: "", want: Counters{}},
		{name: "header without values", in: "Tcp: A B\n", wantErr: true},
		{name: "count mismatch", in: "Tcp: A B\nTcp: 1\n", wantErr: true},
		{name: "group mismatch", in: "Tcp: A\nUdp: 1\n", wantErr: true},
		{name: "not a number", in: "Tcp: A\nTcp: x\n", wantErr: true},
		{name: "no prefix", in: "garbage\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNetstat(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseNetstat (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseRecordedProc reads the files recorded from this machine's /proc:
// the parsers must understand the live format whole.
func TestParseRecordedProc(t *testing.T) {
	ns, err := parseNetstat(bytes.NewReader(readTestdata(t, "proc/net/netstat")))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ListenDrops", "ListenOverflows", "TCPReqQFullDrop", "TCPReqQFullDoCookies", "SyncookiesSent", "TCPTimeWaitOverflow"} {
		if _, ok := ns["TcpExt"][k]; !ok {
			t.Errorf("netstat: TcpExt.%s missing", k)
		}
	}
	snmp, err := parseNetstat(bytes.NewReader(readTestdata(t, "proc/net/snmp")))
	if err != nil {
		t.Fatal(err)
	}
	if got := snmp["Tcp"]["MaxConn"]; got != -1 {
		t.Errorf("snmp Tcp.MaxConn = %d, want -1", got)
	}
	for _, g := range []string{"Ip", "Icmp", "IcmpMsg", "Tcp", "Udp"} {
		if _, ok := snmp[g]; !ok && g != "IcmpMsg" {
			t.Errorf("snmp: group %s missing", g)
		}
	}
	s6, err := parseSNMP6(bytes.NewReader(readTestdata(t, "proc/net/snmp6")))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s6["Ip6InReceives"]; !ok {
		t.Error("snmp6: Ip6InReceives missing")
	}
	ss, err := parseSockstat(bytes.NewReader(readTestdata(t, "proc/net/sockstat")))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ss["TCP"]["tw"]; !ok {
		t.Error("sockstat: TCP tw missing")
	}
	if _, err := parseSockstat(bytes.NewReader(readTestdata(t, "proc/net/sockstat6"))); err != nil {
		t.Error(err)
	}
	sn, err := parseSoftnet(bytes.NewReader(readTestdata(t, "proc/net/softnet_stat")))
	if err != nil {
		t.Fatal(err)
	}
	if len(sn) == 0 {
		t.Error("softnet: no CPUs")
	}
	dev, err := parseNetDev(bytes.NewReader(readTestdata(t, "proc/net/dev")))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := dev["lo"]; !ok {
		t.Error("dev: lo missing")
	}
	if b, err := os.ReadFile("testdata/proc/net/stat/nf_conntrack"); err == nil {
		ct, err := parseConntrackStat(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ct["drop"]; !ok {
			t.Error("nf_conntrack: drop missing")
		}
	}
	rel := strings.TrimSpace(string(readTestdata(t, "proc/sys/kernel/osrelease")))
	if k, err := parseKernelRelease(rel); err != nil || !k.Known() {
		t.Errorf("parseKernelRelease(%q) = %v, %v", rel, k, err)
	}
}

func TestParseSNMP6(t *testing.T) {
	got, err := parseSNMP6(strings.NewReader("Ip6InReceives   \t12\nIcmp6OutDestUnreachs 3\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int64{"Ip6InReceives": 12, "Icmp6OutDestUnreachs": 3}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := parseSNMP6(strings.NewReader("a b c\n")); err == nil {
		t.Error("three fields: want error")
	}
}

func TestParseSockstat(t *testing.T) {
	in := "sockets: used 14\nTCP: inuse 1 orphan 0 tw 10 alloc 1 mem 3\nFRAG: inuse 0 memory 0\n"
	got, err := parseSockstat(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Counters{
		"sockets": {"used": 14},
		"TCP":     {"inuse": 1, "orphan": 0, "tw": 10, "alloc": 1, "mem": 3},
		"FRAG":    {"inuse": 0, "memory": 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := parseSockstat(strings.NewReader("TCP: inuse\n")); err == nil {
		t.Error("odd fields: want error")
	}
}

func TestParseSoftnet(t *testing.T) {
	in := "0000000c 00000002 0000000a 00000000\n00002a63 00000000 00000001 00000000\n"
	got, err := parseSoftnet(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []SoftnetCPU{{Processed: 12, Dropped: 2, TimeSqueeze: 10}, {Processed: 0x2a63, TimeSqueeze: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"0000000c 00000002\n", "zz 0 0\n"} {
		if _, err := parseSoftnet(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: want error", bad)
		}
	}
}

func TestParseNetDev(t *testing.T) {
	in := "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
		"  eth0: 152110180   10834    1    7    2     0          0         0   865734    8014    0    0    0     0       0          0\n"
	got, err := parseNetDev(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]NetDev{"eth0": {RxBytes: 152110180, RxPackets: 10834, RxErrs: 1, RxDrop: 7, RxFifo: 2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseConntrackStat(t *testing.T) {
	in := "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n" +
		"00000010  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 0000000a 00000002 00000000  00000000 00000000 00000000 00000000\n" +
		"00000010  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000006 00000000 00000000  00000000 00000000 00000000 00000000\n"
	got, err := parseConntrackStat(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]uint64{"entries": 16, "drop": 16, "early_drop": 2, "insert_failed": 1} {
		if got[k] != want {
			t.Errorf("%s = %d, want %d", k, got[k], want)
		}
	}
	if _, err := parseConntrackStat(strings.NewReader("")); err == nil {
		t.Error("empty: want error")
	}
}

func TestParseKernelRelease(t *testing.T) {
	tests := []struct {
		in      string
		want    [3]int
		wantErr bool
	}{
		{"6.18.44-fc-v657", [3]int{6, 18, 44}, false},
		{"4.19.0-26-amd64", [3]int{4, 19, 0}, false},
		{"3.10.0-1160.el7.x86_64", [3]int{3, 10, 0}, false},
		{"5.4", [3]int{5, 4, 0}, false},
		{"6.13-rc1", [3]int{6, 13, 0}, false},
		{" 6.1.0\n", [3]int{6, 1, 0}, false},
		{"Linux", [3]int{}, true},
		{"6", [3]int{}, true},
		{"", [3]int{}, true},
	}
	for _, tt := range tests {
		k, err := parseKernelRelease(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err = %v", tt.in, err)
			continue
		}
		if got := [3]int{k.Major, k.Minor, k.Patch}; got != tt.want {
			t.Errorf("%q = %v, want %v", tt.in, got, tt.want)
		}
	}
	k, _ := parseKernelRelease("4.19.0-26-amd64")
	for _, c := range []struct {
		v    [3]int
		want bool
	}{{[3]int{4, 4, 0}, true}, {[3]int{4, 19, 0}, true}, {[3]int{4, 19, 1}, false}, {[3]int{5, 4, 0}, false}} {
		if got := k.AtLeast(c.v[0], c.v[1], c.v[2]); got != c.want {
			t.Errorf("4.19.0 AtLeast(%v) = %v", c.v, got)
		}
	}
	if !(KernelVersion{}).AtLeast(6, 13, 0) {
		t.Error("unknown version must take current semantics")
	}
}

func TestParseSysctlValue(t *testing.T) {
	for in, want := range map[string]string{"1\n": "1", "4096\t131072\t6291456\n": "4096 131072 6291456", "32768\t60999\n": "32768 60999", "": ""} {
		got, err := parseSysctlValue(strings.NewReader(in))
		if err != nil || got != want {
			t.Errorf("%q = %q, %v; want %q", in, got, err, want)
		}
	}
	s := Sysctls{"net.ipv4.tcp_mem": "287901 383868 575802", "x": "abc"}
	if v, ok := s.Ints("net.ipv4.tcp_mem"); !ok || len(v) != 3 || v[2] != 575802 {
		t.Errorf("Ints = %v, %v", v, ok)
	}
	if _, ok := s.Int("x"); ok {
		t.Error("Int of a word: want false")
	}
}

func TestParseKmsg(t *testing.T) {
	in := "6,1234,98765432,-;TCP: request_sock_TCP: Possible SYN flooding on port 10.211.0.1:8080. Dropping request.  Check SNMP counters.\n" +
		" SUBSYSTEM=net\n" +
		"[  123.456789] nf_conntrack: nf_conntrack: table full, dropping packet\n" +
		"<4>[    1.000000] plain with prio\n" +
		"just text; with a semicolon\n"
	got, err := parseKmsg(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []KmsgLine{
		{Priority: 6, Seq: 1234, Usec: 98765432, Message: "TCP: request_sock_TCP: Possible SYN flooding on port 10.211.0.1:8080. Dropping request.  Check SNMP counters."},
		{Priority: -1, Seq: -1, Usec: 123456789, Message: "nf_conntrack: nf_conntrack: table full, dropping packet"},
		{Priority: 4, Seq: -1, Usec: 1000000, Message: "plain with prio"},
		{Priority: -1, Seq: -1, Usec: -1, Message: "just text; with a semicolon"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseSocketsTCP(t *testing.T) {
	rows := []string{
		`{"family":"inet","state":"LISTEN","local":"0.0.0.0:143","remote":"0.0.0.0:*","recv_q":0,"send_q":16}`,
		`{"family":"inet","state":"SYN-RECV","local":"10.0.0.1:143","remote":"10.0.0.2:40000","timer":"on","retrans":2,"info":{"state":3,"rtt_us":1000}}`,
		`{"family":"inet","state":"SYN-RECV","local":"10.0.0.1:143","remote":"10.0.0.2:40001","retrans":0}`,
		`{"family":"inet6","state":"SYN-RECV","local":"[fd00::1]:143","remote":"[fd00::3]:40001","retrans":1}`,
		`{"family":"inet","state":"TIME-WAIT","local":"10.0.0.1:40002","remote":"10.0.0.9:80"}`,
		`{"family":"inet","state":"ESTAB","local":"10.0.0.1:40003","remote":"10.0.0.9:80","info":{"a":[1,{"b":"}"}]}}`,
		`{"family":"inet","state":"ESTAB","local":"10.0.0.1:22","remote":"10.0.0.9:50000"}`,
		`{"state":"ESTAB","local":"10.0.0.1:4\u0030004","remote":"10.0.0.9:80"}`,
		`not json`,
		``,
	}
	agg, err := parseSocketsTCP(strings.NewReader(strings.Join(rows, "\n")), 32768, 60999)
	if err != nil {
		t.Fatal(err)
	}
	if agg.Rows != 8 || agg.Invalid != 1 {
		t.Errorf("rows %d invalid %d, want 8 and 1", agg.Rows, agg.Invalid)
	}
	st := agg.SynRecv[143]
	if st == nil || st.Count != 3 || st.Retransmitted != 2 || st.MaxRetrans != 2 {
		t.Fatalf("SYN-RECV on 143 = %+v", st)
	}
	if diff := cmp.Diff(map[string]int{"10.0.0.2": 2, "fd00::3": 1}, st.Sources); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	var n, tw int
	for tu, c := range agg.Outgoing {
		if tu.Dst.String() == "10.0.0.9" && tu.DPort == 80 {
			n += c
			tw += agg.TimeWait[tu]
		}
	}
	if n != 3 || tw != 1 {
		t.Errorf("outgoing to 10.0.0.9:80 = %d (tw %d), want 3 (1)", n, tw)
	}
}

func TestSynFloodHostPort(t *testing.T) {
	for msg, want := range map[string]string{
		"TCP: request_sock_TCP: Possible SYN flooding on port 10.211.195.1:8080. Dropping request.  Check SNMP counters.": "10.211.195.1:8080",
		"TCP: request_sock_TCPv6: Possible SYN flooding on port [fd00:5d:1::1]:143. Sending cookies.":                     "[fd00:5d:1::1]:143",
		"something else": "",
	} {
		if got := synFloodHostPort(msg); got != want {
			t.Errorf("%q = %q, want %q", msg, got, want)
		}
	}
}

// TestSampleSourceOwnFile: a counter read from a file of its own names that
// file as its source, not its group's (Conntrack.count comes from
// nf_conntrack_count, the other Conntrack counters from stat/nf_conntrack).
func TestSampleSourceOwnFile(t *testing.T) {
	f := host(t)
	f.set(bundle.SampleFile(0, bundle.SampleCTCount), "1234\n")
	s, err := Load(f.fs)
	if err != nil {
		t.Fatal(err)
	}
	sm := &s.Samples[0]
	if v, ok := sm.Value(conntrackCount); !ok || v != 1234 {
		t.Fatalf("Conntrack.count = %d, %v; want 1234", v, ok)
	}
	if got, want := sm.Source(conntrackCount), bundle.SampleFile(0, bundle.SampleCTCount); got != want {
		t.Errorf("Source(Conntrack.count) = %q, want %q", got, want)
	}
}

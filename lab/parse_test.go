package lab

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseProcNetTCP(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []ProcSocket
	}{{
		name: "request socket row from the doc (get_openreq4)",
		in: "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
			"   1: 0100D30A:1F90 0200D30A:A80D 03 00000000:00000000 01:000000BB 00000001     0        0 0 0 00000000 0\n",
		want: []ProcSocket{{
			Local:  netip.MustParseAddrPort("10.211.0.1:8080"),
			Remote: netip.MustParseAddrPort("10.211.0.2:43021"),
			State:  StateSynRecv,
		}},
	}, {
		name: "listener with a full accept queue",
		in: "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
			"   0: 0101D30A:1F91 00000000:0000 0A 00000000:00000009 00:00000000 00000000  1000        0 43210 1 0000000000000000 100 0 0 10 0\n",
		want: []ProcSocket{{
			Local:   netip.MustParseAddrPort("10.211.1.1:8081"),
			Remote:  netip.MustParseAddrPort("0.0.0.0:0"),
			State:   StateListen,
			RxQueue: 9,
			UID:     1000,
			Inode:   43210,
		}},
	}, {
		name: "tcp6 row",
		in: "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
			"   0: 5D0000FD000001000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0\n",
		want: []ProcSocket{{
			Local:  netip.MustParseAddrPort("[fd00:5d:1::1]:8080"),
			Remote: netip.MustParseAddrPort("[::]:0"),
			State:  StateListen,
			Inode:  777,
		}},
	}, {
		name: "header only",
		in:   "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcNetTCP(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("parseProcNetTCP (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseProcNetTCPErrors(t *testing.T) {
	for _, in := range []string{
		"x\n   1: 0100D30A 0200D30A:A80D 03 00000000:00000000 01:000000BB 00000001 0 0 0 0\n",
		"x\n   1: 0100D30A:1F90 0200D30A:A80D 03 00000000 01:000000BB 00000001 0 0 0 0\n",
		"x\n   1: 0100D3:1F90 0200D30A:A80D 03 00000000:00000000 01:000000BB 00000001 0 0 0 0\n",
		"x\n   1: 0100D30A:1F90\n",
	} {
		if _, err := parseProcNetTCP(strings.NewReader(in)); err == nil {
			t.Errorf("parseProcNetTCP(%q): no error", in)
		}
	}
}

func TestParseCounters(t *testing.T) {
	in := "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPReqQFullDrop\n" +
		"TcpExt: 46 0 46 46\n" +
		"IpExt: InOctets\n" +
		"IpExt: 18446744073709551615\n" +
		"Tcp: RtoAlgorithm MaxConn\n" +
		"Tcp: 1 -1\n"
	got := Counters{}
	if err := parseCounters(strings.NewReader(in), got); err != nil {
		t.Fatal(err)
	}
	want := Counters{
		"TcpExt.SyncookiesSent": 46, "TcpExt.ListenOverflows": 0, "TcpExt.ListenDrops": 46, "TcpExt.TCPReqQFullDrop": 46,
		"IpExt.InOctets": -1, "Tcp.RtoAlgorithm": 1, "Tcp.MaxConn": -1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseCounters (-want +got):\n%s", diff)
	}
	d := Counters{"TcpExt.ListenDrops": 50, "TcpExt.New": 3}.Sub(got)
	if diff := cmp.Diff(Counters{"TcpExt.ListenDrops": 4, "TcpExt.New": 3}, d); diff != "" {
		t.Errorf("Sub (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"TcpExt: A B\nTcpExt: 1\n", "TcpExt: A\n", "TcpExt: A\nTcpExt: x\n", "no section\n"} {
		if err := parseCounters(strings.NewReader(bad), Counters{}); err == nil {
			t.Errorf("parseCounters(%q): no error", bad)
		}
	}
}

func TestParseSS(t *testing.T) {
	listen := "LISTEN 9      8         10.211.1.1:8081      0.0.0.0:*\n" +
		"LISTEN 0      4096           [::]:22           [::]:*\n" +
		"LISTEN 0      16     10.211.1.1%sdlab-s:8080 0.0.0.0:*\n"
	got, err := parseSSListeners(strings.NewReader(listen))
	if err != nil {
		t.Fatal(err)
	}
	want := []SSListener{
		{Local: "10.211.1.1:8081", Port: 8081, RecvQ: 9, SendQ: 8},
		{Local: "[::]:22", Port: 22, RecvQ: 0, SendQ: 4096},
		{Local: "10.211.1.1%sdlab-s:8080", Port: 8080, RecvQ: 0, SendQ: 16},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseSSListeners (-want +got):\n%s", diff)
	}
	r := &SSReport{Listeners: got}
	if l, ok := r.Listener(8081); !ok || l.RecvQ != 9 {
		t.Errorf("Listener(8081) = %+v, %v", l, ok)
	}
	if _, ok := r.Listener(1); ok {
		t.Error("Listener(1) found a listener")
	}

	// With one state filter ss leaves the State column out.
	synrecv := "0      0      10.211.1.1:8080   10.211.1.2:40000\n" +
		"0      0      10.211.1.1:8080   10.211.1.2:40001\n" +
		"\n" +
		"0      0      [fd00:5d:1::1]:9090   [fd00:5d:1::2]:40001\n"
	counts, err := parseSSSynRecv(strings.NewReader(synrecv))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[int]int{8080: 2, 9090: 1}, counts); diff != "" {
		t.Errorf("parseSSSynRecv (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"LISTEN 0 16\n", "LISTEN x 16 a:1 b:*\n", "LISTEN 0 16 nocolon b:*\n", "0 0 a:99999 b:1\n"} {
		if _, err := parseSSListeners(strings.NewReader(bad)); err == nil {
			t.Errorf("parseSSListeners(%q): no error", bad)
		}
	}
}

func TestParseKernelVersion(t *testing.T) {
	for in, want := range map[string][2]int{"6.18.44-fc-v657": {6, 18}, "4.4.0": {4, 4}, "6.13-rc1": {6, 13}, "5.10": {5, 10}} {
		ma, mi, err := parseKernelVersion(in)
		if err != nil || ma != want[0] || mi != want[1] {
			t.Errorf("parseKernelVersion(%q) = %d, %d, %v; want %v", in, ma, mi, err, want)
		}
	}
	for _, bad := range []string{"", "6", "x.1", "6.x"} {
		if _, _, err := parseKernelVersion(bad); err == nil {
			t.Errorf("parseKernelVersion(%q): no error", bad)
		}
	}
}

func TestAcceptModeRoundTrip(t *testing.T) {
	for _, m := range []AcceptMode{NeverAccept, AcceptClose, AcceptDrain, AcceptHold} {
		got, err := ParseAcceptMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseAcceptMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseAcceptMode("sometimes"); err == nil {
		t.Error("ParseAcceptMode(sometimes): no error")
	}
}

func FuzzParseProcNetTCP(f *testing.F) {
	f.Add("  sl  local_address rem_address   st\n   1: 0100D30A:1F90 0200D30A:A80D 03 00000000:00000000 01:000000BB 00000001 0 0 0 0\n")
	f.Add("   0: 5D0000FD000001000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 777 1\n")
	f.Fuzz(func(t *testing.T, in string) {
		socks, err := parseProcNetTCP(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, s := range socks {
			if !s.Local.IsValid() || !s.Remote.IsValid() {
				t.Fatalf("invalid address in %+v", s)
			}
		}
	})
}

func FuzzParseCounters(f *testing.F) {
	f.Add("TcpExt: A B\nTcpExt: 1 2\n")
	f.Add("Tcp: MaxConn\nTcp: -1\n")
	f.Fuzz(func(t *testing.T, in string) {
		parseCounters(strings.NewReader(in), Counters{})
	})
}

func FuzzParseSS(f *testing.F) {
	f.Add("LISTEN 9 8 10.211.1.1:8081 0.0.0.0:*\n")
	f.Add("0 0 [fd00:5d:1::1]:9090 [fd00:5d:1::2]:40001\n")
	f.Fuzz(func(t *testing.T, in string) {
		ls, err := parseSSListeners(strings.NewReader(in))
		if err == nil {
			for _, l := range ls {
				if l.Port < 0 || l.Port > 65535 {
					t.Fatalf("port %d", l.Port)
				}
			}
		}
		parseSSSynRecv(strings.NewReader(in))
	})
}

func TestParseSSMem(t *testing.T) {
	in := "LISTEN 0      16     10.211.1.1:8083 0.0.0.0:* ino:4242 sk:1002 cgroup:/ <->\n" +
		"\t skmem:(r0,rb131072,t0,tb16384,f0,w0,o0,bl0,d17)\n" +
		"LISTEN 0      16     10.211.1.1:8083 0.0.0.0:* ino:4243 sk:1003 cgroup:/ <->\n" +
		"\t skmem:(r0,rb131072,t0,tb16384,f0,w0,o0,bl0,d0)\n" +
		"LISTEN 5      4096   [::]:22 [::]:* ino:7 sk:5 <->\n" +
		"\t skmem:(r0,rb131072,t0,tb16384,f0,w0,o0,bl0,d4294967295)\n"
	got, err := parseSSMem(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []SSMem{
		{Local: "10.211.1.1:8083", Inode: 4242, Drops: 17},
		{Local: "10.211.1.1:8083", Inode: 4243, Drops: 0},
		{Local: "[::]:22", Inode: 7, Drops: 1<<32 - 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseSSMem (-want +got):\n%s", diff)
	}
	for _, bad := range []string{
		"\t skmem:(r0,d1)\n",
		"LISTEN 0 16 10.0.0.1:1 0.0.0.0:* ino:1\n\t skmem:(r0,rb1)\n",
		"LISTEN 0 16 10.0.0.1:1 0.0.0.0:* ino:x\n",
	} {
		if ms, err := parseSSMem(strings.NewReader(bad)); err == nil {
			t.Errorf("parseSSMem(%q) = %+v, want an error", bad, ms)
		}
	}
}

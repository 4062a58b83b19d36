package analyze

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/snapdiag/snapdiag/bundle"
)

// pkt is one TCP segment of a synthetic packet sample.
type pkt struct {
	at             time.Duration
	src, dst       string
	sport, dport   uint16
	seq, ack       uint32
	syn, ackf, rst bool
	payload        int
}

// testPcap builds a packet sample (link type 113 LINUX_SLL or 1 Ethernet)
// with the handshake timelines of each listen-path failure, as a 6.18
// kernel shows them: a pcap of a real incident is recorded by the lab
// fixtures; this one is synthetic so each signature is present exactly once.
func testPcap(tb testing.TB, linkType int) []byte {
	tb.Helper()
	srv, good, bad := "10.211.0.1", "10.211.0.3", "10.211.0.2"
	pkts := []pkt{
		// completed: SYN, SYN-ACK, ACK, data, server ACKs the data
		{0, good, srv, 50000, 8080, 1000, 0, true, false, false, 0},
		{1 * time.Millisecond, srv, good, 8080, 50000, 5000, 1001, true, true, false, 0},
		{2 * time.Millisecond, good, srv, 50000, 8080, 1001, 5001, false, true, false, 0},
		{3 * time.Millisecond, good, srv, 50000, 8080, 1001, 5001, false, true, false, 20},
		{4 * time.Millisecond, srv, good, 8080, 50000, 5001, 1021, false, true, false, 0},
		// half-open: SYN-ACK re-sent at 1 s and 3 s, the client re-sends its SYN
		{0, bad, srv, 40000, 8080, 7000, 0, true, false, false, 0},
		{1 * time.Millisecond, srv, bad, 8080, 40000, 9000, 7001, true, true, false, 0},
		{1 * time.Second, bad, srv, 40000, 8080, 7000, 0, true, false, false, 0},
		{1001 * time.Millisecond, srv, bad, 8080, 40000, 9000, 7001, true, true, false, 0},
		{3 * time.Second, srv, bad, 8080, 40000, 9000, 7001, true, true, false, 0},
		// ACK-time overflow: ACK and data, then the same SYN-ACK again
		{0, bad, srv, 40001, 8080, 11000, 0, true, false, false, 0},
		{1 * time.Millisecond, srv, bad, 8080, 40001, 13000, 11001, true, true, false, 0},
		{2 * time.Millisecond, bad, srv, 40001, 8080, 11001, 13001, false, true, false, 0},
		{3 * time.Millisecond, bad, srv, 40001, 8080, 11001, 13001, false, true, false, 30},
		{3 * time.Second, srv, bad, 8080, 40001, 13000, 11001, true, true, false, 0},
		// abort_on_overflow=1: RST right after the ACK
		{0, good, srv, 50001, 8080, 15000, 0, true, false, false, 0},
		{1 * time.Millisecond, srv, good, 8080, 50001, 17000, 15001, true, true, false, 0},
		{2 * time.Millisecond, good, srv, 50001, 8080, 15001, 17001, false, true, false, 0},
		{2500 * time.Microsecond, srv, good, 8080, 50001, 17001, 0, false, false, true, 0},
		// unanswered SYN: the same ISN three times, no SYN-ACK
		{0, good, srv, 50002, 8080, 19000, 0, true, false, false, 0},
		{1 * time.Second, good, srv, 50002, 8080, 19000, 0, true, false, false, 0},
		{2 * time.Second, good, srv, 50002, 8080, 19000, 0, true, false, false, 0},
		// IPv6 half-open
		{0, "fd00:5d::2", "fd00:5d::1", 40002, 8080, 21000, 0, true, false, false, 0},
		{1 * time.Millisecond, "fd00:5d::1", "fd00:5d::2", 8080, 40002, 23000, 21001, true, true, false, 0},
		{1 * time.Second, "fd00:5d::1", "fd00:5d::2", 8080, 40002, 23000, 21001, true, true, false, 0},
	}
	return pcapOf(tb, linkType, pkts)
}

// pcapOf writes pkts as a headers-only pcap of linkType.
func pcapOf(tb testing.TB, linkType int, pkts []pkt) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(128, layers.LinkType(linkType)); err != nil {
		tb.Fatal(err)
	}
	base := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	for _, p := range pkts {
		data := encodeSegment(tb, p, linkType)
		full := len(data) + p.payload
		capLen := min(len(data), 128)
		ci := gopacket.CaptureInfo{Timestamp: base.Add(p.at), CaptureLength: capLen, Length: full}
		if err := w.WritePacket(ci, data[:capLen]); err != nil {
			tb.Fatal(err)
		}
	}
	return buf.Bytes()
}

// encodeSegment serialises p's headers; the payload is left out, as in a
// headers-only sample, but counted in the IP length.
func encodeSegment(tb testing.TB, p pkt, linkType int) []byte {
	src, dst := net.ParseIP(p.src), net.ParseIP(p.dst)
	v6 := src.To4() == nil
	tcp := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), Seq: p.seq, Ack: p.ack,
		SYN: p.syn, ACK: p.ackf, RST: p.rst, PSH: p.payload > 0, Window: 64240, DataOffset: 5}
	var ip gopacket.SerializableLayer
	var ethType layers.EthernetType
	if v6 {
		ip6 := &layers.IPv6{Version: 6, SrcIP: src, DstIP: dst, NextHeader: layers.IPProtocolTCP, HopLimit: 64}
		_ = tcp.SetNetworkLayerForChecksum(ip6)
		ip, ethType = ip6, layers.EthernetTypeIPv6
	} else {
		ip4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.To4(), DstIP: dst.To4()}
		_ = tcp.SetNetworkLayerForChecksum(ip4)
		ip, ethType = ip4, layers.EthernetTypeIPv4
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	payload := gopacket.Payload(make([]byte, p.payload))
	if err := gopacket.SerializeLayers(buf, opts, ip, tcp, payload); err != nil {
		tb.Fatal(err)
	}
	l3 := buf.Bytes()
	var hdr []byte
	if linkType == int(layers.LinkTypeLinuxSLL) {
		hdr = make([]byte, 16)
		binary.BigEndian.PutUint16(hdr[0:], 0) // packet type: to us
		binary.BigEndian.PutUint16(hdr[2:], 1) // ARPHRD_ETHER
		binary.BigEndian.PutUint16(hdr[4:], 6)
		binary.BigEndian.PutUint16(hdr[14:], uint16(ethType))
	} else {
		hdr = make([]byte, 14)
		copy(hdr[0:6], []byte{2, 0, 0, 0, 0, 2})
		copy(hdr[6:12], []byte{2, 0, 0, 0, 0, 1})
		binary.BigEndian.PutUint16(hdr[12:], uint16(ethType))
	}
	// Drop the zero payload bytes: the IP length still counts them.
	return append(hdr, l3[:len(l3)-p.payload]...)
}

func TestParsePcap(t *testing.T) {
	for _, lt := range []int{int(layers.LinkTypeLinuxSLL), int(layers.LinkTypeEthernet)} {
		pa, err := parsePcap(bytes.NewReader(testPcap(t, lt)), nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{
			"packets": pa.Packets, "tcp": pa.TCPPackets, "flows": len(pa.Flows),
			"halfopen": pa.HalfOpen, "unanswered": pa.Unanswered, "acktime": pa.AckTimeOverflow,
			"abort": pa.AbortRSTs, "synretrans": pa.SYNRetrans, "synackretrans": pa.SYNACKRetrans,
		}
		want := map[string]int{
			"packets": 25, "tcp": 25, "flows": 6,
			"halfopen": 2, "unanswered": 1, "acktime": 1,
			"abort": 1, "synretrans": 3, "synackretrans": 4,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("link type %d (-want +got):\n%s", lt, diff)
		}
		if len(pa.Sources) == 0 || pa.Sources[0].Addr.String() != "10.211.0.2" || pa.Sources[0].HalfOpen != 1 {
			t.Errorf("top source = %+v, want 10.211.0.2 with 1 half-open", pa.Sources[0])
		}
	}
	if _, err := parsePcap(bytes.NewReader([]byte("not a pcap")), nil); !errors.Is(err, bundle.ErrNotPcap) {
		t.Errorf("garbage: %v, want ErrNotPcap", err)
	}
	// gopacket's reader inflates a gzip'd pcap without bound; ours refuses it.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(testPcap(t, 113))
	zw.Close()
	if pa, err := parsePcap(&gz, nil); !errors.Is(err, bundle.ErrNotPcap) || pa != nil {
		t.Errorf("gzip: %v, %v; want ErrNotPcap and no analysis", pa, err)
	}
	// A sample cut mid-record keeps what was read.
	b := testPcap(t, 113)
	pa, err := parsePcap(bytes.NewReader(b[:len(b)-10]), nil)
	if err != nil || pa.Packets != 24 {
		t.Errorf("truncated: %v packets, err %v", pa, err)
	}
}

// cookieFloodPcap is what a capture without --port sees of a SYN flood
// with cookies on: the flooder (black-holed, so it re-sends its SYN after
// the SYN-ACK) and a good client whose ACK and data follow at once, when
// the filter keeps them (withACKs).
func cookieFloodPcap(tb testing.TB, withACKs bool) []byte {
	srv, good, bad := "10.211.0.1", "10.211.0.3", "10.211.0.2"
	pkts := cookieFloodPkts()
	if withACKs {
		pkts = append(pkts,
			pkt{102 * time.Millisecond, good, srv, 50000, 8080, 1001, 5001, false, true, false, 0},
			pkt{103 * time.Millisecond, good, srv, 50000, 8080, 1001, 5001, false, true, false, 20})
	}
	pkts = append(pkts,
		pkt{1 * time.Second, bad, srv, 40000, 8080, 7000, 0, true, false, false, 0},
		pkt{1001 * time.Millisecond, srv, bad, 8080, 40000, 9100, 7001, true, true, false, 0},
		// The good client's FIN, which every filter keeps.
		pkt{2 * time.Second, good, srv, 50000, 8080, 1021, 5001, false, true, false, 0},
		pkt{3 * time.Second, srv, bad, 8080, 40001, 9200, 7001, true, true, false, 0},
	)
	if !withACKs {
		// Without the ACKs, the good client's FIN is all that shows it went
		// on; drop it so only the filter's gap is left.
		pkts = slices.DeleteFunc(pkts, func(p pkt) bool { return p.src == good && !p.syn })
	}
	return pcapOf(tb, 113, pkts)
}

// cookieFloodPkts are the first SYN and SYN-ACK of the flooder, then of
// the good client.
func cookieFloodPkts() []pkt {
	srv, good, bad := "10.211.0.1", "10.211.0.3", "10.211.0.2"
	return []pkt{
		{0, bad, srv, 40000, 8080, 7000, 0, true, false, false, 0},
		{1 * time.Millisecond, srv, bad, 8080, 40000, 9000, 7001, true, true, false, 0},
		{100 * time.Millisecond, good, srv, 50000, 8080, 1000, 0, true, false, false, 0},
		{101 * time.Millisecond, srv, good, 8080, 50000, 5000, 1001, true, true, false, 0},
	}
}

// TestParsePcapCannotTell: a handshake whose end the sample cannot show is
// never counted half-open, and the analysis says why, per port; with the
// clients' ACKs kept, the good client is completed and only the flooder is
// half-open.
func TestParsePcapCannotTell(t *testing.T) {
	const flags = "tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or (ip6[6] = 6 and ip6[53] & (tcp-syn|tcp-fin|tcp-rst) != 0)"
	listen := &bundle.PacketKeeps{Ports: []int{}, ListenPorts: []int{22, 8080}}
	type result struct {
		HalfOpen, Completed, Undetermined int
		CannotTell                        []PortCannotTell
		Class                             HalfOpenClass
		Top                               string
	}
	for _, tc := range []struct {
		name     string
		withACKs bool
		// cut, when not 0, keeps only the first cut packets.
		cut  int
		info *bundle.PacketsInfo
		want result
	}{
		{"old default filter", false, 0, &bundle.PacketsInfo{Filter: flags, StoppedBy: "window"},
			result{HalfOpen: 1, Undetermined: 1, Class: ClassBrokenClients, Top: "10.211.0.2",
				CannotTell: []PortCannotTell{{Port: 8080, Why: TellFilter, Flows: 1, Remedy: cannotTellRemedy(TellFilter, 8080)}}}},
		{"no manifest, no ACK in the sample", false, 0, nil,
			result{HalfOpen: 1, Undetermined: 1, Class: ClassBrokenClients, Top: "10.211.0.2",
				CannotTell: []PortCannotTell{{Port: 8080, Why: TellUnknownFilter, Flows: 1, Remedy: cannotTellRemedy(TellUnknownFilter, 8080)}}}},
		{"listening ports kept", true, 0, &bundle.PacketsInfo{Filter: flags + " or (tcp and (dst port 22 or dst port 8080))", Keeps: listen},
			result{HalfOpen: 1, Completed: 1, Class: ClassBrokenClients, Top: "10.211.0.2"}},
		{"listening ports kept, kernel drops", false, 0, &bundle.PacketsInfo{Filter: "x", Keeps: listen, KernelDrops: 3},
			result{HalfOpen: 1, Undetermined: 1, Class: ClassBrokenClients, Top: "10.211.0.2",
				CannotTell: []PortCannotTell{{Port: 8080, Why: TellKernelDrops, Flows: 1, Remedy: cannotTellRemedy(TellKernelDrops, 8080)}}}},
		// The good client's ACK is missing, and the filter kept ACKs to
		// 8080: it is half-open too, as the kernel saw it.
		{"listening ports kept, no ACK came", false, 0, &bundle.PacketsInfo{Filter: "x", Keeps: listen},
			result{HalfOpen: 2, Class: ClassBrokenClients, Top: "10.211.0.2"}},
		// The packet limit ended the sample 100 ms after the SYN-ACKs:
		// neither client had its second to answer.
		{"cut by the packet limit", false, 4, &bundle.PacketsInfo{Filter: "x", Keeps: listen, StoppedBy: "packet limit"},
			result{Undetermined: 2, Class: ClassCannotTell, Top: "10.211.0.2",
				CannotTell: []PortCannotTell{{Port: 8080, Why: TellCut, Flows: 2, Remedy: cannotTellRemedy(TellCut, 8080)}}}},
		{"ended by the window", false, 4, &bundle.PacketsInfo{Filter: "x", Keeps: listen, StoppedBy: "window"},
			result{Class: ClassNone, Top: "10.211.0.2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pcap := cookieFloodPcap(t, tc.withACKs)
			if tc.cut > 0 {
				pcap = pcapOf(t, 113, cookieFloodPkts()[:tc.cut])
			}
			pa, err := parsePcap(bytes.NewReader(pcap), tc.info)
			if err != nil {
				t.Fatal(err)
			}
			got := result{HalfOpen: pa.HalfOpen, Completed: pa.Completed, Undetermined: pa.Undetermined,
				CannotTell: pa.CannotTell, Class: pa.Class(), Top: pa.Sources[0].Addr.String()}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			for _, st := range pa.Sources {
				if st.Addr.String() == "10.211.0.3" && st.HalfOpen > 0 && tc.want.HalfOpen < 2 {
					t.Errorf("the good client is named half-open: %+v", st)
				}
			}
		})
	}
}

// TestHalfOpenClass: many sources, one SYN each, sharing one TTL and
// window, are a distributed (spoofed) flood; none half-open and none
// undetermined is class none.
func TestHalfOpenClass(t *testing.T) {
	var pkts []pkt
	for i := range 20 {
		src := fmt.Sprintf("198.51.100.%d", i+1)
		port := uint16(30000 + i)
		pkts = append(pkts,
			pkt{time.Duration(i) * time.Millisecond, src, "10.211.0.1", port, 443, uint32(i), 0, true, false, false, 0},
			pkt{time.Duration(i)*time.Millisecond + 100*time.Microsecond, "10.211.0.1", src, 443, port, 5000, uint32(i + 1), true, true, false, 0},
			pkt{time.Second + time.Duration(i)*time.Millisecond, "10.211.0.1", src, 443, port, 5000, uint32(i + 1), true, true, false, 0})
	}
	pa, err := parsePcap(bytes.NewReader(pcapOf(t, 113, pkts)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ttl, win, n, spoofed := pa.SharedPrint()
	if pa.Class() != ClassDistributedFlood || pa.HalfOpen != 20 || !spoofed || n != 20 || ttl != 64 || win != 64240 {
		t.Errorf("class %q, %d half-open; shared print TTL %d window %d by %d (spoofed %v); want a spoofed distributed flood of 20",
			pa.Class(), pa.HalfOpen, ttl, win, n, spoofed)
	}

	good := []pkt{
		{0, "10.211.0.3", "10.211.0.1", 50000, 8080, 1000, 0, true, false, false, 0},
		{time.Millisecond, "10.211.0.1", "10.211.0.3", 8080, 50000, 5000, 1001, true, true, false, 0},
		{2 * time.Millisecond, "10.211.0.3", "10.211.0.1", 50000, 8080, 1001, 5001, false, true, false, 0},
		{2 * time.Second, "10.211.0.3", "10.211.0.1", 50001, 8080, 3000, 0, true, false, false, 0},
	}
	pa, err = parsePcap(bytes.NewReader(pcapOf(t, 113, good)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pa.Class() != ClassNone || pa.Completed != 1 || pa.HalfOpen != 0 || pa.Undetermined != 0 {
		t.Errorf("class %q, %d completed, %d half-open, %d undetermined; want none, 1, 0, 0", pa.Class(), pa.Completed, pa.HalfOpen, pa.Undetermined)
	}
}

// TestHalfOpenRuleCannotTell runs the rule on a cookie flood captured
// without --port by a snapdiag whose filter kept SYN, FIN and RST only (the
// host fixture's manifest says so): the good client is never named; with
// the flooder in the sample it alone is, with the good client counted as
// undetermined; without it the finding is an info that the sample cannot
// tell.
func TestHalfOpenRuleCannotTell(t *testing.T) {
	flood := func(t testing.TB) *fixture {
		return host(t).sysctl("net.ipv4.tcp_syncookies", "1").
			listeners(func(int) []bundle.Listener { return []bundle.Listener{listener(16, 0, 0)} }).
			ramp("TcpExt", "TCPReqQFullDoCookies", 23).ramp("TcpExt", "SyncookiesSent", 23)
	}
	t.Run("flooder and good client", func(t *testing.T) {
		f := flood(t)
		f.set(bundle.PathPackets, string(cookieFloodPcap(t, false)))
		d := diagnosis[*HalfOpenClients](t, findingByID(t, f.report(), IDHalfOpenClients))
		want := []HalfOpenSource{{Addr: "10.211.0.2", HalfOpen: 1, Flows: 2, SYNRetrans: 1, TTL: 64, Window: 64240}}
		if diff := cmp.Diff(want, d.Sources); diff != "" {
			t.Errorf("sources (-want +got):\n%s", diff)
		}
		if d.Severity != Warning || d.Class != ClassBrokenClients || d.Undetermined != 1 ||
			len(d.CannotTell) != 1 || d.CannotTell[0].Port != 8080 || d.CannotTell[0].Why != TellFilter {
			t.Errorf("want a warning about one broken client, the good client's handshake undetermined by the filter: %+v", d)
		}
	})
	goodOnly := []pkt{
		{0, "10.211.0.3", "10.211.0.1", 50000, 8080, 1000, 0, true, false, false, 0},
		{time.Millisecond, "10.211.0.1", "10.211.0.3", 8080, 50000, 5000, 1001, true, true, false, 0},
		{2 * time.Second, "10.211.0.3", "10.211.0.1", 50001, 8080, 3000, 0, true, false, false, 0},
	}
	t.Run("good client only", func(t *testing.T) {
		f := flood(t)
		pkts := goodOnly
		f.set(bundle.PathPackets, string(pcapOf(t, 113, pkts)))
		fd := findingByID(t, f.report(), IDHalfOpenClients)
		d := diagnosis[*HalfOpenClients](t, fd)
		if fd.Severity != Info || d.Class != ClassCannotTell || d.HalfOpen != 0 || len(d.Sources) != 0 || d.Undetermined != 1 ||
			fd.Listener != "10.211.0.1:8080" || !hasAction(fd, "capture") {
			t.Errorf("want an info that the sample cannot tell, naming no source: %+v %+v", fd, d)
		}
	})
	t.Run("no overflow, nothing to say", func(t *testing.T) {
		f := host(t).listeners(func(int) []bundle.Listener { return []bundle.Listener{listener(16, 0, 0)} })
		f.set(bundle.PathPackets, string(pcapOf(t, 113, goodOnly)))
		s := f.snapshot()
		if s.Packets == nil || s.Packets.Undetermined != 1 {
			t.Fatalf("want one undetermined handshake in the sample: %+v", s.Packets)
		}
		for _, fd := range Analyze(s, "fixture", Rules()).Findings {
			if fd.ID == IDHalfOpenClients {
				t.Errorf("no SYN queue overflowed, yet: %+v", fd)
			}
		}
	})
}

// BenchmarkParsePcap reads the packet sample of a recorded SYN flood.
func BenchmarkParsePcap(b *testing.B) {
	bd, err := bundle.Open("../fixtures/synflood-cookies-off-v4/bundle.tar.zst", bundle.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	data, err := bd.ReadFile(bundle.PathPackets)
	bd.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := parsePcap(bytes.NewReader(data), nil); err != nil {
			b.Fatal(err)
		}
	}
}

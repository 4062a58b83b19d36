package analyze

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"net"
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
		pa, err := parsePcap(bytes.NewReader(testPcap(t, lt)))
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
	if _, err := parsePcap(bytes.NewReader([]byte("not a pcap"))); !errors.Is(err, bundle.ErrNotPcap) {
		t.Errorf("garbage: %v, want ErrNotPcap", err)
	}
	// gopacket's reader inflates a gzip'd pcap without bound; ours refuses it.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(testPcap(t, 113))
	zw.Close()
	if pa, err := parsePcap(&gz); !errors.Is(err, bundle.ErrNotPcap) || pa != nil {
		t.Errorf("gzip: %v, %v; want ErrNotPcap and no analysis", pa, err)
	}
	// A sample cut mid-record keeps what was read.
	b := testPcap(t, 113)
	pa, err := parsePcap(bytes.NewReader(b[:len(b)-10]))
	if err != nil || pa.Packets != 24 {
		t.Errorf("truncated: %v packets, err %v", pa, err)
	}
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
		if _, err := parsePcap(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

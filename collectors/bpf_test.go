package collectors

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/bits"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/snapdiag/snapdiag/bundle"
	"golang.org/x/net/bpf"
)

// filterMeta is what the kernel's ancillary loads would return for a packet.
type filterMeta struct {
	proto   uint16 // SKF_AD_PROTOCOL, host order
	pktType uint8  // SKF_AD_PKTTYPE
	haType  uint16 // SKF_AD_HATYPE
}

var (
	ipv4Host = filterMeta{proto: bundle.EtherTypeIPv4, haType: 1} // ARPHRD_ETHER, PACKET_HOST
	ipv6Host = filterMeta{proto: bundle.EtherTypeIPv6, haType: 1}
)

// runFilter runs prog in x/net/bpf's VM. The VM implements no ancillary
// loads but the packet length, so each one is replaced by the constant the
// kernel would load for meta: the same instruction count and the same
// register, so every jump still lands where it did.
func runFilter(t *testing.T, prog []bpf.Instruction, meta filterMeta, pkt []byte) int {
	t.Helper()
	ins := slices.Clone(prog)
	for i, in := range ins {
		le, ok := in.(bpf.LoadExtension)
		if !ok {
			continue
		}
		var v uint32
		switch le.Num {
		case bpf.ExtProto:
			v = uint32(meta.proto)
		case bpf.ExtType:
			v = uint32(meta.pktType)
		case bpf.ExtLinkLayerType:
			v = uint32(meta.haType)
		default:
			t.Fatalf("instruction %d: ancillary load %v not modelled", i, le.Num)
		}
		ins[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: v}
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	n, err := vm.Run(pkt)
	if err != nil {
		t.Fatalf("run filter: %v", err)
	}
	return n
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return bytes.Clone(buf.Bytes())
}

// tcpSeg is a TCP segment's ports and flags ("S", "SA", "A", "R", "FA", "PA").
type tcpSeg struct {
	src, dst uint16
	flags    string
	ack      uint32
	payload  []byte
}

func (s tcpSeg) layer() *layers.TCP {
	return &layers.TCP{
		SrcPort: layers.TCPPort(s.src), DstPort: layers.TCPPort(s.dst),
		Seq: 1000, Ack: s.ack, Window: 65535, DataOffset: 5,
		SYN: strings.Contains(s.flags, "S"), ACK: strings.Contains(s.flags, "A"),
		FIN: strings.Contains(s.flags, "F"), RST: strings.Contains(s.flags, "R"),
		PSH: strings.Contains(s.flags, "P"),
	}
}

func ip4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{
		Version: 4, IHL: 5, TTL: 64, Protocol: proto,
		SrcIP: net.IPv4(192, 0, 2, 1), DstIP: net.IPv4(192, 0, 2, 2),
	}
}

func ip6(next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{
		Version: 6, NextHeader: next, HopLimit: 64,
		SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2"),
	}
}

func tcp4(t testing.TB, s tcpSeg) []byte {
	ip := ip4(layers.IPProtocolTCP)
	tcp := s.layer()
	tcp.SetNetworkLayerForChecksum(ip)
	return serialize(t, ip, tcp, gopacket.Payload(s.payload))
}

func tcp6(t testing.TB, s tcpSeg) []byte {
	ip := ip6(layers.IPProtocolTCP)
	tcp := s.layer()
	tcp.SetNetworkLayerForChecksum(ip)
	return serialize(t, ip, tcp, gopacket.Payload(s.payload))
}

func udp4(t testing.TB, src, dst uint16) []byte {
	ip := ip4(layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: layers.UDPPort(src), DstPort: layers.UDPPort(dst)}
	udp.SetNetworkLayerForChecksum(ip)
	return serialize(t, ip, udp, gopacket.Payload("ping"))
}

func udp6(t testing.TB, src, dst uint16) []byte {
	ip := ip6(layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: layers.UDPPort(src), DstPort: layers.UDPPort(dst)}
	udp.SetNetworkLayerForChecksum(ip)
	return serialize(t, ip, udp, gopacket.Payload("ping"))
}

// tcp4Options is a TCP segment behind an IPv4 header with a 4-byte option
// (router alert), so the transport header starts at 24, not 20.
func tcp4Options(t testing.TB, s tcpSeg) []byte {
	ip := ip4(layers.IPProtocolTCP)
	ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
	tcp := s.layer()
	tcp.SetNetworkLayerForChecksum(ip)
	pkt := serialize(t, ip, tcp)
	if ihl := pkt[0] & 0xf; ihl != 6 {
		t.Fatalf("IHL %d, want 6", ihl)
	}
	return pkt
}

// fragment4 is an IPv4 fragment of a TCP datagram: offset 0 with MF set
// carries the TCP header; a later fragment carries only payload, here bytes
// that would read as a SYN to port 143 if taken for a TCP header.
func fragment4(t testing.TB, offset uint16) []byte {
	ip := ip4(layers.IPProtocolTCP)
	ip.FragOffset = offset
	var payload []byte
	if offset == 0 {
		ip.Flags = layers.IPv4MoreFragments
		tcp := tcpSeg{src: 40000, dst: 80, flags: "S"}.layer()
		tcp.SetNetworkLayerForChecksum(ip)
		return serialize(t, ip, tcp, gopacket.Payload(make([]byte, 16)))
	}
	payload = make([]byte, 24)
	payload[1], payload[3] = 143, 143
	payload[13] = bundle.TCPFlagSYN
	return serialize(t, ip, gopacket.Payload(payload))
}

// ipv6HopByHop inserts an empty hop-by-hop options header in front of the
// transport header of an IPv6 packet.
func ipv6HopByHop(pkt []byte) []byte {
	next := pkt[6]
	out := slices.Clone(pkt[:40])
	out[6] = 0 // hop-by-hop
	out[4], out[5] = byte((len(pkt)-40+8)>>8), byte(len(pkt)-40+8)
	out = append(out, next, 0, 1, 4, 0, 0, 0, 0) // PadN over the 6 option bytes
	return append(out, pkt[40:]...)
}

type filterCase struct {
	name string
	meta filterMeta
	pkt  []byte
	// want is whether the filter accepts the packet without focus ports
	// (noPorts), with focus port 143 (port143), and with no focus port
	// but the listening port 8080 (listen8080).
	noPorts, port143, listen8080 bool
}

func filterCases(t testing.TB) []filterCase {
	const focus, other = 143, 8080
	lo := filterMeta{proto: bundle.EtherTypeIPv4, haType: bundle.ARPHRDLoopback}
	return []filterCase{
		{"ipv4 SYN", ipv4Host, tcp4(t, tcpSeg{src: 50000, dst: other, flags: "S"}), true, true, true},
		{"ipv4 SYN-ACK", ipv4Host, tcp4(t, tcpSeg{src: other, dst: 50000, flags: "SA"}), true, true, true},
		{"ipv4 pure ACK", ipv4Host, tcp4(t, tcpSeg{src: 50000, dst: other, flags: "A"}), false, false, true},
		{"ipv4 data", ipv4Host, tcp4(t, tcpSeg{src: 50000, dst: other, flags: "PA", payload: []byte("x")}), false, false, true},
		{"ipv4 RST", ipv4Host, tcp4(t, tcpSeg{src: other, dst: 50000, flags: "R"}), true, true, true},
		{"ipv4 FIN", ipv4Host, tcp4(t, tcpSeg{src: 50000, dst: other, flags: "FA"}), true, true, true},
		{"ipv4 ACK to focus port", ipv4Host, tcp4(t, tcpSeg{src: 50000, dst: focus, flags: "A"}), false, true, false},
		{"ipv4 ACK from focus port", ipv4Host, tcp4(t, tcpSeg{src: focus, dst: 50000, flags: "A"}), false, true, false},
		{"ipv4 UDP to focus port", ipv4Host, udp4(t, 50000, focus), false, true, false},
		{"ipv4 UDP from focus port", ipv4Host, udp4(t, focus, 50000), false, true, false},
		{"ipv4 UDP elsewhere", ipv4Host, udp4(t, 50000, 53), false, false, false},
		{"ipv4 options SYN", ipv4Host, tcp4Options(t, tcpSeg{src: 50000, dst: other, flags: "S"}), true, true, true},
		// At offset 20+13 the ACK number's second byte has the SYN bit:
		// a filter that ignored IHL would take this for a SYN.
		{"ipv4 options ACK", ipv4Host, tcp4Options(t, tcpSeg{src: 50000, dst: other, flags: "A", ack: 0x02020202}), false, false, true},
		{"ipv4 first fragment SYN", ipv4Host, fragment4(t, 0), true, true, true},
		{"ipv4 later fragment", ipv4Host, fragment4(t, 185), false, false, false},
		{"ipv4 truncated", ipv4Host, tcp4(t, tcpSeg{src: 50000, dst: focus, flags: "S"})[:30], false, false, false},
		{"ipv6 SYN", ipv6Host, tcp6(t, tcpSeg{src: 50000, dst: other, flags: "S"}), true, true, true},
		{"ipv6 SYN-ACK", ipv6Host, tcp6(t, tcpSeg{src: other, dst: 50000, flags: "SA"}), true, true, true},
		{"ipv6 pure ACK", ipv6Host, tcp6(t, tcpSeg{src: 50000, dst: other, flags: "A"}), false, false, true},
		{"ipv6 RST", ipv6Host, tcp6(t, tcpSeg{src: other, dst: 50000, flags: "RA"}), true, true, true},
		{"ipv6 FIN", ipv6Host, tcp6(t, tcpSeg{src: 50000, dst: other, flags: "FA"}), true, true, true},
		{"ipv6 ACK to focus port", ipv6Host, tcp6(t, tcpSeg{src: 50000, dst: focus, flags: "A"}), false, true, false},
		{"ipv6 UDP to focus port", ipv6Host, udp6(t, 50000, focus), false, true, false},
		{"ipv6 UDP elsewhere", ipv6Host, udp6(t, 50000, 53), false, false, false},
		// Documented limit: extension headers are not walked.
		{"ipv6 hop-by-hop SYN", ipv6Host, ipv6HopByHop(tcp6(t, tcpSeg{src: 50000, dst: focus, flags: "S"})), false, false, false},
		{"ARP", filterMeta{proto: 0x0806, haType: 1}, make([]byte, 28), false, false, false},
		{"IPv4 ethertype on IPv6 bytes", ipv4Host, udp6(t, 50000, focus), false, false, false},
		{"loopback received SYN", lo, tcp4(t, tcpSeg{src: 50000, dst: focus, flags: "S"}), true, true, true},
		{"loopback outgoing copy", filterMeta{proto: bundle.EtherTypeIPv4, pktType: bundle.PacketOutgoing, haType: bundle.ARPHRDLoopback},
			tcp4(t, tcpSeg{src: 50000, dst: focus, flags: "S"}), false, false, false},
		{"ipv4 ACK from listening port", ipv4Host, tcp4(t, tcpSeg{src: other, dst: 50000, flags: "A"}), false, false, false},
		{"ipv4 UDP to listening port", ipv4Host, udp4(t, 50000, other), false, false, false},
		{"ipv6 data to listening port", ipv6Host, tcp6(t, tcpSeg{src: 50000, dst: other, flags: "PA", payload: []byte("x")}), false, false, true},
		{"ethernet outgoing SYN", filterMeta{proto: bundle.EtherTypeIPv4, pktType: bundle.PacketOutgoing, haType: 1},
			tcp4(t, tcpSeg{src: 50000, dst: other, flags: "S"}), true, true, true},
	}
}

func TestPacketFilter(t *testing.T) {
	for _, tc := range filterCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []struct {
				ports, listen []int
				snaplen       uint32
				want          bool
			}{
				{nil, nil, headerSnaplen, tc.noPorts},
				{[]int{143}, nil, headerSnaplen, tc.port143},
				{[]int{993, 143, 4190}, nil, payloadSnaplen, tc.port143},
				{nil, []int{8080}, headerSnaplen, tc.listen8080},
				{nil, []int{22, 8080, 9000}, headerSnaplen, tc.listen8080},
				// Focus and listening ports together: either keeps it.
				{[]int{143}, []int{8080}, headerSnaplen, tc.port143 || tc.listen8080},
			} {
				f, err := newPacketFilter(v.ports, v.listen, v.snaplen)
				if err != nil {
					t.Fatal(err)
				}
				got := runFilter(t, f.prog, tc.meta, tc.pkt)
				want := 0
				if v.want {
					want = int(v.snaplen)
				}
				if got != want {
					t.Errorf("ports %v, listening %v: filter returned %d, want %d", v.ports, v.listen, got, want)
				}
			}
		})
	}
}

// mostPorts is the most focus ports and listening ports a filter takes.
func mostPorts() (ports, listen []int) {
	ports = make([]int, maxFilterPorts)
	for i := range ports {
		ports[i] = 10000 + i
	}
	listen = make([]int, maxListenPorts)
	for i := range listen {
		listen[i] = 20000 + i
	}
	return ports, listen
}

func TestPacketFilterManyPorts(t *testing.T) {
	ports, listen := mostPorts()
	// The most of both: every jump must still reach "accept".
	f, err := newPacketFilter(ports, listen, headerSnaplen)
	if err != nil {
		t.Fatalf("%d ports, %d listening: %v", len(ports), len(listen), err)
	}
	if _, err := f.raw(); err != nil {
		t.Fatal(err)
	}
	for _, pkt := range [][]byte{
		tcp4(t, tcpSeg{src: 50000, dst: uint16(ports[len(ports)-1]), flags: "A"}),
		tcp4(t, tcpSeg{src: uint16(ports[0]), dst: 50000, flags: "A"}),
		tcp4(t, tcpSeg{src: 50000, dst: uint16(listen[0]), flags: "A"}),
		tcp4(t, tcpSeg{src: 50000, dst: uint16(listen[len(listen)-1]), flags: "A"}),
	} {
		if got := runFilter(t, f.prog, ipv4Host, pkt); got != headerSnaplen {
			t.Errorf("ACK %d → %d: filter returned %d, want %d", binary.BigEndian.Uint16(pkt[20:]), binary.BigEndian.Uint16(pkt[22:]), got, headerSnaplen)
		}
	}
	if got := runFilter(t, f.prog, ipv4Host, tcp4(t, tcpSeg{src: 50000, dst: 19999, flags: "A"})); got != 0 {
		t.Errorf("ACK to an unlisted port: filter returned %d, want 0", got)
	}
	if _, err := newPacketFilter(append(ports, 9), nil, headerSnaplen); err == nil {
		t.Errorf("%d ports: no error", len(ports)+1)
	}
	if _, err := newPacketFilter(nil, append(listen, 9), headerSnaplen); err == nil {
		t.Errorf("%d listening ports: no error", len(listen)+1)
	}
	for _, bad := range []int{0, -1, 65536} {
		if _, err := newPacketFilter([]int{bad}, nil, headerSnaplen); err == nil {
			t.Errorf("port %d: no error", bad)
		}
		if _, err := newPacketFilter(nil, []int{bad}, headerSnaplen); err == nil {
			t.Errorf("listening port %d: no error", bad)
		}
	}
}

func TestAsmJumpTooLong(t *testing.T) {
	var a asm
	a.jumpIf(bpf.JumpEqual, 1, "far", "")
	for range 256 {
		a.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: 0})
	}
	a.label("far")
	a.emit(bpf.RetConstant{Val: 0})
	if _, err := a.assemble(); err == nil {
		t.Error("a 256-instruction conditional jump assembled")
	}
}

func TestFilterExpr(t *testing.T) {
	const flags = "tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or (ip6[6] = 6 and ip6[53] & (tcp-syn|tcp-fin|tcp-rst) != 0)"
	for _, tc := range []struct {
		ports, listen []int
		want          string
	}{
		{nil, nil, flags},
		{[]int{143}, nil, flags + " or ((tcp or udp) and port 143)"},
		{[]int{993, 143, 993}, nil, flags + " or ((tcp or udp) and (port 143 or port 993))"},
		{nil, []int{8080}, flags + " or (tcp and dst port 8080)"},
		{nil, []int{8080, 22}, flags + " or (tcp and (dst port 22 or dst port 8080))"},
		{[]int{143}, []int{22}, flags + " or (tcp and dst port 22) or ((tcp or udp) and port 143)"},
	} {
		f, err := newPacketFilter(tc.ports, tc.listen, headerSnaplen)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, f.expr); diff != "" {
			t.Errorf("ports %v, listening %v (-want +got):\n%s", tc.ports, tc.listen, diff)
		}
		// The manifest's typed statement: sorted, unique, [] for none.
		want := bundle.PacketKeeps{Ports: []int{}, ListenPorts: []int{}}
		if tc.ports != nil {
			want.Ports = slices.Compact(slices.Sorted(slices.Values(tc.ports)))
		}
		if tc.listen != nil {
			want.ListenPorts = slices.Sorted(slices.Values(tc.listen))
		}
		if diff := cmp.Diff(want, f.keeps); diff != "" {
			t.Errorf("ports %v, listening %v: keeps (-want +got):\n%s", tc.ports, tc.listen, diff)
		}
	}
}

// TestFilterExprMatchesProgram checks that the manifest's description of the
// filter is true: tcpdump, applying the description to the test packets,
// keeps exactly those the program accepts. Loopback's outgoing copies are
// left out: dropping them is how the sample is taken, not what it selects.
func TestFilterExprMatchesProgram(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump not on PATH (CI installs it)")
	}
	var cases []filterCase
	for _, tc := range filterCases(t) {
		if tc.meta.pktType != bundle.PacketOutgoing || tc.meta.haType != bundle.ARPHRDLoopback {
			cases = append(cases, tc)
		}
	}
	// Each packet is numbered by its timestamp, which survives tcpdump -w.
	var in bytes.Buffer
	s, err := newPcapSample(&in, payloadSnaplen, len(cases), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Unix(1_700_000_000, 0)
	for i, tc := range cases {
		m := cookedMeta{PktType: tc.meta.pktType, HAType: tc.meta.haType, Protocol: tc.meta.proto}
		if _, err := s.add(&m, tc.pkt, base.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "cases.pcap")
	if err := os.WriteFile(file, in.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct{ ports, listen []int }{{nil, nil}, {[]int{143}, nil}, {nil, []int{8080}}, {nil, []int{22, 8080}}, {[]int{143}, []int{8080}}} {
		ports := v.ports
		f, err := newPacketFilter(ports, v.listen, headerSnaplen)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, tcpdump, "-r", file, "-w", "-", f.expr).Output()
		cancel()
		if err != nil {
			t.Fatalf("tcpdump %q: %v", f.expr, err)
		}
		kept := map[int]bool{}
		r, err := pcapgo.NewReader(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("read tcpdump's output: %v", err)
		}
		for {
			_, ci, err := r.ReadPacketData()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			kept[int(ci.Timestamp.Sub(base)/time.Second)] = true
		}
		for i, tc := range cases {
			want := runFilter(t, f.prog, tc.meta, tc.pkt) != 0
			if kept[i] != want {
				t.Errorf("%s, ports %v, listening %v: tcpdump %q keeps it: %v; the program accepts it: %v",
					tc.name, ports, v.listen, f.expr, kept[i], want)
			}
		}
	}
}

// TestFlowThinMatchesHash: the filter's flow sampling passes exactly the
// flows whose hash, computed here, has its top bits zero; both directions
// of a flow alike; the flows passed at more bits are a subset; and the
// sampler's hash of the same flow is 0 modulo 2^bits for exactly those.
func TestFlowThinMatchesHash(t *testing.T) {
	f, err := newPacketFilter(nil, []int{8080}, headerSnaplen)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const key = 0x5eed1234
	s := &flowSampler{key: key}
	passed := map[uint32]int{}
	for _, bits := range []uint32{1, 3, 6} {
		prog, err := f.program(bits, key)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 400 {
			src := uint16(1024 + rng.IntN(60000))
			var fwd, rev []byte
			var meta filterMeta
			if i%2 == 0 {
				a, b := rng.Uint32(), rng.Uint32()
				fwd = tcp4Addrs(t, a, b, tcpSeg{src: src, dst: 8080, flags: "S"})
				rev = tcp4Addrs(t, b, a, tcpSeg{src: 8080, dst: src, flags: "SA"})
				meta = ipv4Host
			} else {
				fwd = tcp6(t, tcpSeg{src: src, dst: 8080, flags: "A"})
				rev = tcp6Reverse(t, tcpSeg{src: 8080, dst: src, flags: "FA"})
				meta = ipv6Host
			}
			r, ok := rawTCP(fwd)
			if !ok {
				t.Fatalf("packet %d not read as TCP", i)
			}
			n := 4
			if r.v6 {
				n = 16
			}
			want := kernelFlowHash(r.a[:n], r.b[:n], r.aport, r.bport, key)>>(32-bits) == 0
			gotFwd := runFilter(t, prog, meta, fwd) != 0
			gotRev := runFilter(t, prog, meta, rev) != 0
			if gotFwd != want || gotRev != want {
				t.Fatalf("bits %d, packet %d: filter passed %v one way, %v the other; hash says %v", bits, i, gotFwd, gotRev, want)
			}
			if mod := s.hashRaw(&r)%(1<<bits) == 0; mod != want {
				t.Fatalf("bits %d, packet %d: sampler's hash is 0 mod 2^%d: %v, filter's %v", bits, i, bits, mod, want)
			}
			if want {
				passed[bits]++
			}
		}
	}
	// About 1 in 2^bits of 400 flows pass: far from none and from all.
	if passed[1] < 120 || passed[1] > 280 || passed[6] > 40 {
		t.Errorf("flows passed at 1, 3, 6 bits: %v", passed)
	}
	// Packets the filter does not select stay out whatever the sampling.
	prog, _ := f.program(1, key)
	if got := runFilter(t, prog, ipv4Host, tcp4(t, tcpSeg{src: 50000, dst: 9999, flags: "A"})); got != 0 {
		t.Errorf("an ACK to an unlisted port: filter returned %d", got)
	}
}

// TestFlowThinManyPorts: the longest filter still assembles with the flow
// sampling in it, at the largest divisor the sampler uses.
func TestFlowThinManyPorts(t *testing.T) {
	ports, listen := mostPorts()
	f, err := newPacketFilter(ports, listen, headerSnaplen)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.rawThinned(uint32(bits.TrailingZeros64(maxOneIn)), 1); err != nil {
		t.Fatal(err)
	}
	// UDP to a focus port is never sampled away.
	prog, _ := f.program(20, 1)
	if got := runFilter(t, prog, ipv4Host, udp4(t, 50000, uint16(ports[0]))); got != headerSnaplen {
		t.Errorf("UDP to a focus port under flow sampling: filter returned %d", got)
	}
}

// tcp4Addrs is an IPv4 TCP segment from address a to b.
func tcp4Addrs(t testing.TB, a, b uint32, s tcpSeg) []byte {
	ip := ip4(layers.IPProtocolTCP)
	ip.SrcIP = binary.BigEndian.AppendUint32(nil, a)
	ip.DstIP = binary.BigEndian.AppendUint32(nil, b)
	tcp := s.layer()
	tcp.SetNetworkLayerForChecksum(ip)
	return serialize(t, ip, tcp)
}

// tcp6Reverse is a segment like tcp6's, from its destination address to its
// source address: the other direction of tcp6's flows.
func tcp6Reverse(t testing.TB, s tcpSeg) []byte {
	ip := ip6(layers.IPProtocolTCP)
	ip.SrcIP, ip.DstIP = ip.DstIP, ip.SrcIP
	tcp := s.layer()
	tcp.SetNetworkLayerForChecksum(ip)
	return serialize(t, ip, tcp)
}

package redact

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/snapdiag/snapdiag/bundle"
)

// sll is a LINUX_SLL header for an Ethernet interface.
func sll(proto layers.EthernetType, mac string) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h[0:], 4) // sent by us
	binary.BigEndian.PutUint16(h[2:], bundle.ARPHRDEther)
	binary.BigEndian.PutUint16(h[4:], 6)
	hw, _ := net.ParseMAC(mac)
	copy(h[6:], hw)
	binary.BigEndian.PutUint16(h[14:], uint16(proto))
	return h
}

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ip4(src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

func ip6(src, dst string, nh layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: nh, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
}

// testPackets are frames (without the SLL header) with right checksums.
func testPackets(t *testing.T) map[string][]byte {
	payload := gopacket.Payload(bytes.Repeat([]byte("imap greeting from vm.example.com "), 8))
	tcp4 := ip4("10.211.80.2", "10.211.80.1", layers.IPProtocolTCP)
	th := &layers.TCP{SrcPort: 41000, DstPort: 8080, Seq: 7, SYN: true, Window: 64240,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}}
	th.SetNetworkLayerForChecksum(tcp4)
	tcp6 := ip6("fd00:5d:51::2", "fd00:5d:51::1", layers.IPProtocolTCP)
	th6 := &layers.TCP{SrcPort: 41000, DstPort: 8080, Seq: 9, ACK: true, Window: 500}
	th6.SetNetworkLayerForChecksum(tcp6)
	udp4 := ip4("192.168.7.9", "8.8.8.8", layers.IPProtocolUDP)
	uh := &layers.UDP{SrcPort: 5353, DstPort: 53}
	uh.SetNetworkLayerForChecksum(udp4)
	udp6 := ip6("2a00:1450:4001::5", "fd00:5d:51::1", layers.IPProtocolUDP)
	uh6 := &layers.UDP{SrcPort: 123, DstPort: 123}
	uh6.SetNetworkLayerForChecksum(udp6)

	// An ICMP error quoting the start of a TCP SYN.
	quotedIP := ip4("10.211.80.1", "10.211.90.7", layers.IPProtocolTCP)
	qt := &layers.TCP{SrcPort: 8080, DstPort: 41000, SYN: true, ACK: true, Window: 1}
	qt.SetNetworkLayerForChecksum(quotedIP)
	quoted := serialize(t, quotedIP, qt)
	icmp4 := serialize(t, ip4("10.211.80.254", "10.211.80.1", layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 1)}, gopacket.Payload(quoted))

	// A neighbour solicitation with its source link-layer address option.
	ns6 := ip6("fe80::1", "ff02::1:ff00:2", layers.IPProtocolICMPv6)
	icmp6 := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(135, 0)}
	icmp6.SetNetworkLayerForChecksum(ns6)
	hw, _ := net.ParseMAC("02:5d:56:00:00:01")
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: net.ParseIP("fd00:5d:51::2"),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: hw}}}

	return map[string][]byte{
		"tcp4":  serialize(t, tcp4, th, payload),
		"tcp6":  serialize(t, tcp6, th6, payload),
		"udp4":  serialize(t, udp4, uh, payload),
		"udp6":  serialize(t, udp6, uh6, payload),
		"icmp4": icmp4,
		"ns6":   serialize(t, ns6, icmp6, ns),
	}
}

// l4Sum verifies a transport checksum over a whole IP packet: the
// one's-complement sum of pseudo-header and segment must be 0xffff.
func l4Valid(pkt []byte) (bool, string) {
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.Default)
	if pkt[0]>>4 == 6 {
		p = gopacket.NewPacket(pkt, layers.LayerTypeIPv6, gopacket.Default)
	}
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		if fold(sum(pkt[:ip.IHL*4], 0)) != 0xffff {
			return false, "ipv4 header"
		}
		seg := ip.Payload
		ps := uint32(0)
		if ip.Protocol != layers.IPProtocolICMPv4 {
			ps = pseudo(ip.SrcIP.To4(), ip.DstIP.To4(), byte(ip.Protocol), len(seg))
		}
		return fold(sum(seg, ps)) == 0xffff, ip.Protocol.String()
	case *layers.IPv6:
		seg := ip.Payload
		return fold(sum(seg, pseudo(ip.SrcIP, ip.DstIP, byte(ip.NextHeader), len(seg)))) == 0xffff, ip.NextHeader.String()
	}
	return false, "not IP"
}

func writePcap(t *testing.T, frames [][]byte, caps []int) []byte {
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeLinuxSLL); err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: caps[i], Length: len(f)}
		if err := w.WritePacket(ci, f[:caps[i]]); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func readPcap(t *testing.T, data []byte) [][]byte {
	r, err := pcapgo.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		d, _, err := r.ReadPacketData()
		if err != nil {
			return out
		}
		out = append(out, d)
	}
}

// TestPcapChecksums rewrites each packet whole and cut by a snaplen, and
// checks: the whole one's checksums are right; the cut one, whose checksum
// could only be updated incrementally (RFC 1624), has the same checksum as
// the whole one; no original address or MAC is left; and the payload is cut.
func TestPcapChecksums(t *testing.T) {
	m := newMapper(testKey(t, "a"))
	for name, pkt := range testPackets(t) {
		if ok, what := l4Valid(pkt); !ok {
			t.Fatalf("%s: test packet's %s checksum is wrong", name, what)
		}
		for _, partial := range []bool{false, true} {
			pkt := append([]byte(nil), pkt...)
			if partial && name != "tcp4" && name != "tcp6" {
				continue
			}
			if partial {
				// What an offloading sender leaves: the pseudo-header sum.
				setPartial(t, pkt, len(pkt))
			}
			frame := append(sll(etherType(pkt), "02:5d:56:00:00:01"), pkt...)
			cut := min(len(frame), 16+len(pkt)-len(pkt)/4)
			out := new(bytes.Buffer)
			st, err := m.rewritePcap(bytes.NewReader(writePcap(t, [][]byte{frame, frame}, []int{len(frame), cut})), out)
			if err != nil {
				t.Fatal(err)
			}
			if st.Packets != 2 {
				t.Fatalf("%s: %d packets", name, st.Packets)
			}
			// Rewrite again without cutting the payload, to check the
			// whole packet's checksums.
			recs := readPcap(t, out.Bytes())
			whole := append([]byte(nil), frame...)
			p := &pcapRewriter{m: m, linkType: bundle.LinkLinuxSLL}
			p.packet(whole)
			if ok, what := l4Valid(whole[16:]); !ok {
				t.Errorf("%s (partial %v): rewritten %s checksum is wrong", name, partial, what)
			}
			for i, rec := range recs {
				want := whole[:len(rec)]
				if partial && i == 1 {
					// Cut, a partial checksum stays partial: the new
					// pseudo-header's sum.
					want = append([]byte(nil), want...)
					setPartial(t, want[16:], len(pkt))
				}
				// An ICMP message quotes bytes the snaplen cut, whose
				// pseudonyms its checksum would cover: only the whole
				// packet can be compared.
				icmpCut := i == 1 && (name == "icmp4" || name == "ns6")
				if !icmpCut && !bytes.Equal(rec, want) {
					t.Errorf("%s (partial %v): record %d differs from the whole rewritten packet", name, partial, i)
				}
				if len(rec) >= len(frame)-len(pkt)/4 && name != "ns6" && name != "icmp4" {
					t.Errorf("%s: record %d kept %d of %d bytes: the payload was not cut", name, i, len(rec), len(frame))
				}
				for _, orig := range []string{"10.211.80.2", "10.211.80.1", "10.211.90.7", "192.168.7.9", "8.8.8.8", "fd00:5d:51::2", "fd00:5d:51::1", "2a00:1450:4001::5"} {
					a := netip.MustParseAddr(orig)
					if bytes.Contains(rec, a.AsSlice()) {
						t.Errorf("%s: record %d still holds %s", name, i, orig)
					}
				}
				if bytes.Contains(rec, []byte{0x02, 0x5d, 0x56, 0, 0, 1}) {
					t.Errorf("%s: record %d still holds the MAC", name, i)
				}
				if bytes.Contains(rec, []byte("vm.example")) {
					t.Errorf("%s: record %d still holds the payload", name, i)
				}
			}
		}
	}
}

func etherType(pkt []byte) layers.EthernetType {
	if pkt[0]>>4 == 6 {
		return layers.EthernetTypeIPv6
	}
	return layers.EthernetTypeIPv4
}

// setPartial replaces a TCP checksum with the pseudo-header sum a sender
// leaves for the NIC (CHECKSUM_PARTIAL).
// pkt may be cut; size is the whole packet's.
func setPartial(t *testing.T, pkt []byte, size int) {
	var src, dst []byte
	var off, l4len int
	if pkt[0]>>4 == 6 {
		src, dst, off = pkt[8:24], pkt[24:40], 40
		l4len = size - 40
	} else {
		ihl := int(pkt[0]&0xf) * 4
		src, dst, off = pkt[12:16], pkt[16:20], ihl
		l4len = size - ihl
	}
	binary.BigEndian.PutUint16(pkt[off+16:], fold(pseudo(src, dst, 6, l4len)))
}

func FuzzPcap(f *testing.F) {
	f.Add(writePcap(&testing.T{}, [][]byte{append(sll(layers.EthernetTypeIPv4, "02:00:00:00:00:01"), 0x45, 0, 0, 20)}, []int{20}))
	m := newMapper(testKey(f, "fuzz"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		if _, err := m.rewritePcap(bytes.NewReader(data), &out); err != nil {
			return
		}
		if out.Len() > len(data) {
			t.Fatalf("output of %d bytes from %d", out.Len(), len(data))
		}
	})
}

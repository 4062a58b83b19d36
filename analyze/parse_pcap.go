package analyze

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Handshake is the timeline of one TCP connection attempt in the packet
// sample, seen from the server (the side that received the SYN).
type Handshake struct {
	Client, Server netip.AddrPort
	First, Last    time.Time

	SYNs int // SYN segments from the client
	// SYNRetrans counts SYNs that re-sent an ISN already seen: the client got
	// no SYN-ACK in time (section 4, pcap signature 1).
	SYNRetrans int
	SYNACKs    int // SYN-ACK segments from the server
	// SYNACKRetrans counts SYN-ACKs that re-sent the same server ISN.
	SYNACKRetrans int
	// ACKed is true once the client acknowledged the SYN-ACK.
	ACKed   bool
	AckTime time.Time
	// Data is true once the client sent payload; DataAcked once the server
	// acknowledged it (the connection really was accepted into the kernel).
	Data      bool
	DataAcked bool
	// SYNACKAfterACK is true when the server re-sent its SYN-ACK after the
	// client's ACK or data: the ACK was dropped because the accept queue was
	// full (tcp_check_req() listen_overflow, section 1.3).
	SYNACKAfterACK bool
	ServerRST      bool
	// RSTAfterACK is true when the server reset the connection right after the
	// client's ACK, before acknowledging any data: tcp_abort_on_overflow=1.
	RSTAfterACK bool
	ClientRST   bool

	clientISN, serverISN uint32
	haveClientISN        bool
	haveServerISN        bool
	firstSYNACK          time.Time
}

// HalfOpen reports whether the server answered but the client never
// completed the handshake, for at least a second or over a retransmit.
func (h *Handshake) HalfOpen(end time.Time) bool {
	if h.SYNACKs == 0 || h.ACKed || h.ClientRST || h.ServerRST {
		return false
	}
	return h.SYNACKRetrans > 0 || h.SYNRetrans > 0 || end.Sub(h.firstSYNACK) >= time.Second
}

// Unanswered reports whether the client re-sent its SYN and never got a
// SYN-ACK: the SYN was dropped somewhere (listen path, conntrack, softnet,
// NIC); the packets alone cannot say where.
func (h *Handshake) Unanswered() bool { return h.SYNs > 0 && h.SYNACKs == 0 && h.SYNRetrans > 0 }

// AckTimeOverflow reports the ACK-time accept-queue overflow signature: the
// same SYN-ACK re-sent after the client's ACK, and the client's data never
// acknowledged. A re-sent SYN-ACK after a bare ACK followed by acknowledged
// data is TCP_DEFER_ACCEPT, not an overflow.
func (h *Handshake) AckTimeOverflow() bool { return h.SYNACKAfterACK && !h.DataAcked }

// SourceStats counts one client address's handshakes in the packet sample.
type SourceStats struct {
	Addr          netip.Addr
	Flows         int
	HalfOpen      int
	Unanswered    int
	SYNs          int
	SYNRetrans    int
	SYNACKRetrans int
	Completed     int
	// Ports counts the flows per server port.
	Ports map[uint16]int
}

// PacketAnalysis is the packet sample reduced to handshakes.
type PacketAnalysis struct {
	LinkType   string
	Packets    int
	TCPPackets int
	Undecoded  int
	Start, End time.Time
	// Truncated is true when the flow table hit its bound.
	Truncated bool

	Flows   []*Handshake // in order of first packet
	Sources []*SourceStats

	HalfOpen        int
	Unanswered      int
	AckTimeOverflow int
	AbortRSTs       int
	SYNRetrans      int
	SYNACKRetrans   int
	Completed       int
}

// maxFlows bounds the handshake table of a packet sample.
const maxFlows = 200000

type flowKey struct{ client, server netip.AddrPort }

// parsePcap reads a pcap (LINUX_SLL, LINUX_SLL2, Ethernet or raw IP) into
// handshake timelines. It stops at the first damaged record and keeps what it
// read: a packet sample cut by the capture deadline ends mid-record.
func parsePcap(r io.Reader) (*PacketAnalysis, error) {
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("read pcap header: %w", err)
	}
	lt := pr.LinkType()
	pa := &PacketAnalysis{LinkType: lt.String()}
	flows := map[flowKey]*Handshake{}
	var readErr error
	for {
		data, ci, err := pr.ZeroCopyReadPacketData()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = fmt.Errorf("read packet %d: %w", pa.Packets+1, err)
			}
			break
		}
		pa.Packets++
		if pa.Start.IsZero() || ci.Timestamp.Before(pa.Start) {
			pa.Start = ci.Timestamp
		}
		if ci.Timestamp.After(pa.End) {
			pa.End = ci.Timestamp
		}
		seg, ok := decodeTCP(data, lt)
		if !ok {
			pa.Undecoded++
			continue
		}
		pa.TCPPackets++
		pa.observe(flows, seg, ci.Timestamp)
	}
	pa.finish(flows)
	if readErr != nil && pa.Packets == 0 {
		return nil, readErr
	}
	return pa, nil
}

type tcpSeg struct {
	src, dst  netip.AddrPort
	seq, ack  uint32
	syn, ackf bool
	rst, fin  bool
	payload   int
}

func decodeTCP(data []byte, lt layers.LinkType) (tcpSeg, bool) {
	var seg tcpSeg
	dec := lt
	switch lt {
	case layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2,
		layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, layers.LinkTypeLoop, layers.LinkTypeNull:
	default:
		return seg, false
	}
	if lt == layers.LinkTypeRaw {
		if len(data) == 0 {
			return seg, false
		}
		if data[0]>>4 == 6 {
			dec = layers.LinkTypeIPv6
		} else {
			dec = layers.LinkTypeIPv4
		}
	}
	p := gopacket.NewPacket(data, dec, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	tl, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if !ok || tl == nil {
		return seg, false
	}
	hdr := len(tl.Contents)
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		s, ok1 := netip.AddrFromSlice(ip.SrcIP.To4())
		d, ok2 := netip.AddrFromSlice(ip.DstIP.To4())
		if !ok1 || !ok2 {
			return seg, false
		}
		seg.src, seg.dst = netip.AddrPortFrom(s, uint16(tl.SrcPort)), netip.AddrPortFrom(d, uint16(tl.DstPort))
		// Headers-only samples truncate payload: use the IP length, not the
		// captured bytes.
		seg.payload = int(ip.Length) - int(ip.IHL)*4 - hdr
	case *layers.IPv6:
		s, ok1 := netip.AddrFromSlice(ip.SrcIP)
		d, ok2 := netip.AddrFromSlice(ip.DstIP)
		if !ok1 || !ok2 {
			return seg, false
		}
		seg.src, seg.dst = netip.AddrPortFrom(s.Unmap(), uint16(tl.SrcPort)), netip.AddrPortFrom(d.Unmap(), uint16(tl.DstPort))
		if ip.NextHeader == layers.IPProtocolTCP {
			seg.payload = int(ip.Length) - hdr
		} else {
			seg.payload = len(tl.Payload)
		}
	default:
		return seg, false
	}
	if seg.payload < 0 {
		seg.payload = 0
	}
	seg.seq, seg.ack = tl.Seq, tl.Ack
	seg.syn, seg.ackf, seg.rst, seg.fin = tl.SYN, tl.ACK, tl.RST, tl.FIN
	return seg, true
}

func (pa *PacketAnalysis) observe(flows map[flowKey]*Handshake, s tcpSeg, t time.Time) {
	fromClient := flowKey{client: s.src, server: s.dst}
	fromServer := flowKey{client: s.dst, server: s.src}
	h, isClient := flows[fromClient], true
	if h == nil {
		h, isClient = flows[fromServer], false
	}
	if h == nil {
		// Only a handshake packet starts a flow: a SYN makes its sender the
		// client, a SYN-ACK makes its sender the server.
		if !s.syn || s.rst {
			return
		}
		if len(flows) >= maxFlows {
			pa.Truncated = true
			return
		}
		h = &Handshake{First: t}
		if s.ackf {
			h.Client, h.Server, isClient = s.dst, s.src, false
			flows[fromServer] = h
		} else {
			h.Client, h.Server, isClient = s.src, s.dst, true
			flows[fromClient] = h
		}
		pa.Flows = append(pa.Flows, h)
	}
	h.Last = t
	switch {
	case isClient && s.syn && !s.ackf:
		h.SYNs++
		if h.haveClientISN && s.seq == h.clientISN {
			h.SYNRetrans++
		}
		h.clientISN, h.haveClientISN = s.seq, true
	case !isClient && s.syn && s.ackf:
		h.SYNACKs++
		if h.haveServerISN && s.seq == h.serverISN {
			h.SYNACKRetrans++
		} else if h.firstSYNACK.IsZero() {
			h.firstSYNACK = t
		}
		h.serverISN, h.haveServerISN = s.seq, true
		if h.ACKed || h.Data {
			h.SYNACKAfterACK = true
		}
	case isClient && s.rst:
		h.ClientRST = true
	case !isClient && s.rst:
		h.ServerRST = true
		if h.ACKed && !h.DataAcked {
			h.RSTAfterACK = true
		}
	case isClient && s.ackf:
		if h.haveServerISN && s.ack == h.serverISN+1 || !h.haveServerISN && h.SYNACKs > 0 {
			if !h.ACKed {
				h.AckTime = t
			}
			h.ACKed = true
		}
		if s.payload > 0 {
			h.Data = true
		}
	case !isClient && s.ackf:
		if h.Data && h.haveClientISN && int32(s.ack-(h.clientISN+1)) > 0 {
			h.DataAcked = true
		}
	}
}

func (pa *PacketAnalysis) finish(flows map[flowKey]*Handshake) {
	src := map[netip.Addr]*SourceStats{}
	for _, h := range pa.Flows {
		st := src[h.Client.Addr()]
		if st == nil {
			st = &SourceStats{Addr: h.Client.Addr(), Ports: map[uint16]int{}}
			src[h.Client.Addr()] = st
		}
		st.Flows++
		st.Ports[h.Server.Port()]++
		st.SYNs += h.SYNs
		st.SYNRetrans += h.SYNRetrans
		st.SYNACKRetrans += h.SYNACKRetrans
		pa.SYNRetrans += h.SYNRetrans
		pa.SYNACKRetrans += h.SYNACKRetrans
		switch {
		case h.HalfOpen(pa.End):
			st.HalfOpen++
			pa.HalfOpen++
		case h.Unanswered():
			st.Unanswered++
			pa.Unanswered++
		case h.ACKed:
			st.Completed++
			pa.Completed++
		}
		if h.AckTimeOverflow() {
			pa.AckTimeOverflow++
		}
		if h.RSTAfterACK {
			pa.AbortRSTs++
		}
	}
	for _, st := range src {
		pa.Sources = append(pa.Sources, st)
	}
	sort.Slice(pa.Sources, func(i, j int) bool {
		a, b := pa.Sources[i], pa.Sources[j]
		if a.HalfOpen != b.HalfOpen {
			return a.HalfOpen > b.HalfOpen
		}
		if a.Flows != b.Flows {
			return a.Flows > b.Flows
		}
		return a.Addr.Less(b.Addr)
	})
}

package analyze

import (
	"errors"
	"io"
	"net/netip"
	"sort"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// Handshake is the timeline of one TCP connection attempt in the packet
// sample, seen from the server (the side that received the SYN).
type Handshake struct {
	Client, Server netip.AddrPort
	First, Last    time.Time

	SYNs int // SYN segments from the client
	// SYNRetrans counts SYNs that re-sent an ISN already seen: the client got
	// no SYN-ACK in time (its SYN retransmit timer fired, after 1 s, then
	// 2 s, 4 s ...), the first sign in a sample of SYNs dropped on the way
	// in or in the listen path.
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
	// full (tcp_check_req() takes its listen_overflow path, keeps the
	// request socket, and the SYN-ACK timer re-sends the SYN-ACK).
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

// parsePcap reads a classic pcap (LINUX_SLL, LINUX_SLL2, Ethernet, raw IP
// or loopback) into handshake timelines, through the bundle's pcap reader
// and within its default limits. A file that is not classic pcap (gzip,
// pcapng) is refused before anything past its magic number is read. It
// stops at the first damaged record and keeps what it read: a packet sample
// cut by the capture deadline ends mid-record. A record that goes past the
// reader's limits also ends the reading, and the error (wrapping
// bundle.ErrLimit) is returned with the analysis of what was read.
func parsePcap(r io.Reader) (*PacketAnalysis, error) {
	pr, err := bundle.NewPcapReader(r, bundle.PcapLimits{})
	if err != nil {
		return nil, err
	}
	lt := pr.LinkType()
	pa := &PacketAnalysis{LinkType: lt.String()}
	flows := map[flowKey]*Handshake{}
	var readErr error
	for {
		rec, err := pr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
		pa.Packets++
		if pa.Start.IsZero() || rec.Time.Before(pa.Start) {
			pa.Start = rec.Time
		}
		if rec.Time.After(pa.End) {
			pa.End = rec.Time
		}
		seg, ok := bundle.DecodeTCP(lt, rec.Data)
		if !ok {
			pa.Undecoded++
			continue
		}
		pa.TCPPackets++
		pa.observe(flows, &seg, rec.Time)
	}
	pa.finish(flows)
	switch {
	case readErr != nil && pa.Packets == 0:
		return nil, readErr
	case errors.Is(readErr, bundle.ErrLimit):
		return pa, readErr
	}
	return pa, nil
}

func (pa *PacketAnalysis) observe(flows map[flowKey]*Handshake, seg *bundle.TCPSegment, t time.Time) {
	syn, ack, rst := seg.Has(bundle.TCPFlagSYN), seg.Has(bundle.TCPFlagACK), seg.Has(bundle.TCPFlagRST)
	fromClient := flowKey{client: seg.Src, server: seg.Dst}
	fromServer := flowKey{client: seg.Dst, server: seg.Src}
	h, isClient := flows[fromClient], true
	if h == nil {
		h, isClient = flows[fromServer], false
	}
	if h == nil {
		// Only a handshake packet starts a flow: a SYN makes its sender the
		// client, a SYN-ACK makes its sender the server.
		if !syn || rst {
			return
		}
		if len(flows) >= maxFlows {
			pa.Truncated = true
			return
		}
		h = &Handshake{First: t}
		if ack {
			h.Client, h.Server, isClient = seg.Dst, seg.Src, false
			flows[fromServer] = h
		} else {
			h.Client, h.Server, isClient = seg.Src, seg.Dst, true
			flows[fromClient] = h
		}
		pa.Flows = append(pa.Flows, h)
	}
	h.Last = t
	switch {
	case isClient && syn && !ack:
		h.SYNs++
		if h.haveClientISN && seg.Seq == h.clientISN {
			h.SYNRetrans++
		}
		h.clientISN, h.haveClientISN = seg.Seq, true
	case !isClient && syn && ack:
		h.SYNACKs++
		if h.haveServerISN && seg.Seq == h.serverISN {
			h.SYNACKRetrans++
		} else if h.firstSYNACK.IsZero() {
			h.firstSYNACK = t
		}
		h.serverISN, h.haveServerISN = seg.Seq, true
		if h.ACKed || h.Data {
			h.SYNACKAfterACK = true
		}
	case isClient && rst:
		h.ClientRST = true
	case !isClient && rst:
		h.ServerRST = true
		if h.ACKed && !h.DataAcked {
			h.RSTAfterACK = true
		}
	case isClient && ack:
		if h.haveServerISN && seg.Ack == h.serverISN+1 || !h.haveServerISN && h.SYNACKs > 0 {
			if !h.ACKed {
				h.AckTime = t
			}
			h.ACKed = true
		}
		if seg.Payload > 0 {
			h.Data = true
		}
	case !isClient && ack:
		if h.Data && h.haveClientISN && int32(seg.Ack-(h.clientISN+1)) > 0 {
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

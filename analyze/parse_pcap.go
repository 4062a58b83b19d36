package analyze

import (
	"errors"
	"fmt"
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
	// WentOn is true once the client sent anything after the server's
	// SYN-ACK other than its SYN again: an ACK, data, a FIN or a RST. Such
	// a handshake is never half-open.
	WentOn bool
	// SYNAfterSYNACK is true when the client re-sent its SYN after the
	// server's SYN-ACK: the client's own sign that it never got one.
	SYNAfterSYNACK bool
	// TTL and Window are the IP TTL (hop limit) and TCP window of the
	// client's first SYN.
	TTL    uint8
	Window uint16
	// Sees says whether the sample would show the client's ACK and data
	// (what the filter kept on the server's port), and CannotTell why not.
	Sees       bundle.Coverage
	CannotTell CannotTell

	// Weight is how many handshakes of the traffic this one stands for:
	// the packet-sampling scale of the second it started in (1 for a
	// sample that kept everything).
	Weight float64

	clientISN, serverISN uint32
	haveClientISN        bool
	haveServerISN        bool
	firstSYNACK          time.Time
	// serverSeen: the sample keeps the server's own ACKs on this port, so
	// DataAcked can be trusted.
	serverSeen bool
}

// CannotTell says why the packet sample cannot tell whether a handshake
// completed.
type CannotTell string

// Why a sample cannot tell.
const (
	// TellFilter: the capture's filter did not keep the clients' ACKs and
	// data on this port (a bundle captured without --port by a snapdiag
	// that kept SYN, FIN and RST only, a listener opened after the sample
	// started, or one past the filter's room).
	TellFilter CannotTell = "filter"
	// TellUnknownFilter: the bundle does not say what the filter kept, and
	// no client ACK on this port is in the sample.
	TellUnknownFilter CannotTell = "filter unknown"
	// TellKernelDrops: the capture socket lost packets (its receive buffer
	// was full), so a missing ACK proves nothing.
	TellKernelDrops CannotTell = "kernel drops"
	// TellCut: the sample was cut by its packet or byte limit less than a
	// second after the SYN-ACK, before the client's answer could be seen.
	TellCut CannotTell = "sample cut"
)

// weight is Weight, 1 for a handshake built without one.
func (h *Handshake) weight() float64 {
	if h.Weight <= 0 {
		return 1
	}
	return h.Weight
}

// retransmitted reports the signs of a handshake that never completed that
// do not depend on what the sample kept: the server re-sent its SYN-ACK
// (it never got the ACK), or the client re-sent its SYN after the SYN-ACK
// (it never got the SYN-ACK).
func (h *Handshake) retransmitted() bool { return h.SYNACKRetrans > 0 || h.SYNAfterSYNACK }

// open reports whether the server answered and, as far as the sample shows,
// the client went no further for at least a second (or over a retransmit).
func (h *Handshake) open(end time.Time) bool {
	if h.SYNACKs == 0 || h.WentOn || h.ACKed || h.ClientRST || h.ServerRST {
		return false
	}
	return h.retransmitted() || end.Sub(h.firstSYNACK) >= time.Second
}

// HalfOpen reports whether the server answered but the client never
// completed the handshake: the server re-sent its SYN-ACK or the client its
// SYN, or, where the sample keeps the client's ACKs (Sees), no ACK, data,
// FIN or RST came within a second.
func (h *Handshake) HalfOpen(end time.Time) bool {
	return h.open(end) && (h.retransmitted() || h.Sees == bundle.CoverageYes && h.CannotTell == "")
}

// Undetermined reports whether the handshake looks half-open only because
// the sample cannot show its end (CannotTell says why).
func (h *Handshake) Undetermined(end time.Time) bool {
	return h.open(end) && !h.HalfOpen(end) || h.CannotTell == TellCut && h.pending(end)
}

// pending reports whether the server answered less than a second before
// end and nothing has settled the handshake yet.
func (h *Handshake) pending(end time.Time) bool {
	return h.SYNACKs > 0 && !h.WentOn && !h.ACKed && !h.ClientRST && !h.ServerRST && !h.retransmitted() &&
		end.Sub(h.firstSYNACK) < time.Second
}

// Unanswered reports whether the client re-sent its SYN and never got a
// SYN-ACK: the SYN was dropped somewhere (listen path, conntrack, softnet,
// NIC); the packets alone cannot say where.
func (h *Handshake) Unanswered() bool { return h.SYNs > 0 && h.SYNACKs == 0 && h.SYNRetrans > 0 }

// AckTimeOverflow reports the ACK-time accept-queue overflow signature: the
// same SYN-ACK re-sent after the client's ACK, and the client's data never
// acknowledged. A re-sent SYN-ACK after a bare ACK followed by acknowledged
// data is TCP_DEFER_ACCEPT, not an overflow, so the signature needs a sample
// that keeps the server's ACKs on the port (a --port capture), not only the
// clients'.
func (h *Handshake) AckTimeOverflow() bool { return h.SYNACKAfterACK && !h.DataAcked && h.serverSeen }

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
	// Undetermined counts its handshakes the sample cannot judge.
	Undetermined int
	// TTL and Window are the most common IP TTL (hop limit) and TCP window
	// of its handshakes' SYNs; TTLs and Windows count the distinct values.
	// Many sources sharing one pair hint at one machine forging them.
	TTL     uint8
	Window  uint16
	TTLs    int
	Windows int
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
	// Undetermined counts the handshakes that look half-open only because
	// the sample cannot show their end; CannotTell says, per server port,
	// how many and why.
	Undetermined int
	CannotTell   []PortCannotTell
	// Sampled is true when the capture kept a share of the traffic
	// (bundle.PacketsInfo.Sampling): the counts above are of the sample,
	// and the Est fields scale them by each second's rate. Scale is the
	// whole sample's: one kept packet stands for Scale packets.
	Sampled bool
	Scale   float64
	// HalfOpenEst and UnansweredEst estimate HalfOpen and Unanswered in
	// the traffic: each handshake counts its Weight. They equal the
	// counts when not Sampled.
	HalfOpenEst, UnansweredEst float64
	// StoppedBy is why the capture ended the sample ("packet limit",
	// "byte limit", ...), from the manifest; "" when unknown. In a sample
	// cut by a limit, the handshakes answered in its last second are
	// undetermined (TellCut).
	StoppedBy string

	// clientAckPorts and serverAckPorts are the server ports on which the
	// sample holds a client's (server's) segment with none of SYN, FIN and
	// RST: the filter kept those on that port.
	clientAckPorts, serverAckPorts map[uint16]bool
}

// PortCannotTell is a server port whose handshakes the sample cannot
// judge.
type PortCannotTell struct {
	Port   uint16
	Why    CannotTell
	Flows  int
	Remedy string
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
//
// info is the manifest's account of the sample (nil when the bundle has
// none): what its filter kept, and whether the kernel dropped packets,
// decide which handshakes can be judged.
func parsePcap(r io.Reader, info *bundle.PacketsInfo) (*PacketAnalysis, error) {
	pr, err := bundle.NewPcapReader(r, bundle.PcapLimits{})
	if err != nil {
		return nil, err
	}
	lt := pr.LinkType()
	pa := &PacketAnalysis{LinkType: lt.String(), clientAckPorts: map[uint16]bool{}, serverAckPorts: map[uint16]bool{}}
	if info != nil {
		pa.StoppedBy = info.StoppedBy
	}
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
	pa.finish(info)
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
	plain := seg.Flags&(bundle.TCPFlagSYN|bundle.TCPFlagFIN|bundle.TCPFlagRST) == 0
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
	if plain {
		// Only a filter that kept such segments on this port lets them in.
		if isClient {
			pa.clientAckPorts[h.Server.Port()] = true
		} else {
			pa.serverAckPorts[h.Server.Port()] = true
		}
	}
	if isClient && !syn && h.SYNACKs > 0 {
		h.WentOn = true
	}
	switch {
	case isClient && syn && !ack:
		if h.SYNs == 0 {
			h.TTL, h.Window = seg.TTL, seg.Window
		}
		h.SYNs++
		if h.haveClientISN && seg.Seq == h.clientISN {
			h.SYNRetrans++
			if h.SYNACKs > 0 {
				h.SYNAfterSYNACK = true
			}
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

// sees says whether the sample shows the clients' segments on port, and
// if not why.
func (pa *PacketAnalysis) sees(info *bundle.PacketsInfo, port uint16) (bundle.Coverage, CannotTell) {
	c := info.ClientSegments(port)
	if pa.clientAckPorts[port] {
		// Every filter snapdiag wrote keeps all or none of a port's client
		// segments: one in the sample shows they were kept.
		c = bundle.CoverageYes
	}
	switch {
	case c == bundle.CoverageNo:
		return c, TellFilter
	case c == bundle.CoverageUnknown:
		return c, TellUnknownFilter
	case info != nil && info.KernelDrops > 0:
		return c, TellKernelDrops
	}
	return c, ""
}

func (pa *PacketAnalysis) finish(info *bundle.PacketsInfo) {
	src := map[netip.Addr]*SourceStats{}
	type fp struct {
		ttl    map[uint8]int
		window map[uint16]int
	}
	prints := map[netip.Addr]*fp{}
	cannot := map[uint16]*PortCannotTell{}
	// The collector's names for a sample its limits ended.
	cut := pa.StoppedBy == "packet limit" || pa.StoppedBy == "byte limit"
	fullPorts := map[uint16]bool{}
	if info != nil && info.Keeps != nil {
		for _, p := range info.Keeps.Ports {
			fullPorts[uint16(p)] = true
		}
	}
	pa.Sampled, pa.Scale = info.Sampled(), info.Scale()
	for _, h := range pa.Flows {
		port := h.Server.Port()
		h.Weight = info.ScaleAt(h.First)
		h.Sees, h.CannotTell = pa.sees(info, port)
		if h.CannotTell == "" && cut && h.pending(pa.End) {
			h.CannotTell = TellCut
		}
		h.serverSeen = pa.serverAckPorts[port] || fullPorts[port]
		st := src[h.Client.Addr()]
		if st == nil {
			st = &SourceStats{Addr: h.Client.Addr(), Ports: map[uint16]int{}}
			src[h.Client.Addr()] = st
			prints[st.Addr] = &fp{ttl: map[uint8]int{}, window: map[uint16]int{}}
		}
		st.Flows++
		st.Ports[port]++
		st.SYNs += h.SYNs
		st.SYNRetrans += h.SYNRetrans
		st.SYNACKRetrans += h.SYNACKRetrans
		if h.SYNs > 0 {
			prints[st.Addr].ttl[h.TTL]++
			prints[st.Addr].window[h.Window]++
		}
		pa.SYNRetrans += h.SYNRetrans
		pa.SYNACKRetrans += h.SYNACKRetrans
		switch {
		case h.HalfOpen(pa.End):
			st.HalfOpen++
			pa.HalfOpen++
			pa.HalfOpenEst += h.weight()
		case h.Undetermined(pa.End):
			st.Undetermined++
			pa.Undetermined++
			c := cannot[port]
			if c == nil {
				c = &PortCannotTell{Port: port, Why: h.CannotTell, Remedy: cannotTellRemedy(h.CannotTell, port)}
				cannot[port] = c
			}
			c.Flows++
		case h.Unanswered():
			st.Unanswered++
			pa.Unanswered++
			pa.UnansweredEst += h.weight()
		case h.ACKed || h.Data:
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
		p := prints[st.Addr]
		st.TTL, st.TTLs = mostCommon(p.ttl)
		st.Window, st.Windows = mostCommon(p.window)
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
	for _, c := range cannot {
		pa.CannotTell = append(pa.CannotTell, *c)
	}
	sort.Slice(pa.CannotTell, func(i, j int) bool { return pa.CannotTell[i].Port < pa.CannotTell[j].Port })
}

// cannotTellRemedy says how to capture a sample that can judge port.
func cannotTellRemedy(why CannotTell, port uint16) string {
	switch why {
	case TellKernelDrops:
		return fmt.Sprintf("capture again with a shorter --sample or --port %d: the capture socket lost packets", port)
	case TellCut:
		return fmt.Sprintf("capture again with a larger --max-packets, or --port %d to keep only that port's traffic", port)
	}
	return fmt.Sprintf("capture again with --port %d, or with a snapdiag that keeps the ACKs to every listening port", port)
}

// mostCommon returns the most frequent key of counts (the smallest among
// equals) and the number of distinct keys.
func mostCommon[K uint8 | uint16](counts map[K]int) (K, int) {
	var best K
	n := -1
	for k, c := range counts {
		if c > n || c == n && k < best {
			best, n = k, c
		}
	}
	return best, len(counts)
}

// HalfOpenClass is what the packet sample says about the half-open
// handshakes as a whole.
type HalfOpenClass string

// The classes of a packet sample's half-open handshakes.
const (
	// ClassNone: no handshake was left half-open, and the sample could
	// judge them all: clients complete their handshakes, so a queue that
	// overflows does so because the application does not accept.
	ClassNone HalfOpenClass = "none"
	// ClassBrokenClients: a few sources (at most fewSources), each leaving
	// handshakes half-open again and again: broken clients, or one host
	// flooding from its own address.
	ClassBrokenClients HalfOpenClass = "broken-clients"
	// ClassDistributedFlood: more than fewSources sources, typically
	// spoofed: a distributed SYN flood.
	ClassDistributedFlood HalfOpenClass = "distributed-flood"
	// ClassCannotTell: nothing was seen half-open, but some handshakes
	// could not be judged (PacketAnalysis.CannotTell says why).
	ClassCannotTell HalfOpenClass = "cannot-tell"
)

// fewSources is the most sources a "few broken clients" verdict allows.
const fewSources = 8

// spoofShare is the share of half-open sources that must send one TTL and
// window pair to hint at one machine forging them all.
const spoofShare = 0.8

// Class classifies the sample's half-open handshakes.
func (pa *PacketAnalysis) Class() HalfOpenClass {
	n := 0
	for _, st := range pa.Sources {
		if st.HalfOpen > 0 {
			n++
		}
	}
	switch {
	case n > fewSources:
		return ClassDistributedFlood
	case n > 0:
		return ClassBrokenClients
	case pa.Undetermined > 0:
		return ClassCannotTell
	}
	return ClassNone
}

// SharedPrint returns the TTL and window most of the half-open sources
// share, and how many of them do; ok is false unless more than fewSources
// sources are half-open and at least spoofShare of them share the pair.
func (pa *PacketAnalysis) SharedPrint() (ttl uint8, window uint16, sharing int, ok bool) {
	type pair struct {
		ttl    uint8
		window uint16
	}
	counts := map[pair]int{}
	n := 0
	for _, st := range pa.Sources {
		if st.HalfOpen > 0 {
			counts[pair{st.TTL, st.Window}]++
			n++
		}
	}
	var best pair
	for p, c := range counts {
		if c > sharing || c == sharing && (p.ttl < best.ttl || p.ttl == best.ttl && p.window < best.window) {
			best, sharing = p, c
		}
	}
	ok = n > fewSources && float64(sharing) >= spoofShare*float64(n)
	return best.ttl, best.window, sharing, ok
}

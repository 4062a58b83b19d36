package bundle

import (
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"
)

// PacketKeeps is what a packet filter keeps beyond the TCP segments with
// SYN, FIN or RST set, which it always keeps.
type PacketKeeps struct {
	// Ports are the ports whose every TCP and UDP packet, either way, the
	// filter kept (capture --port).
	Ports []int `json:"ports"`
	// ListenPorts are the local listening ports whose inbound TCP segments
	// (the clients' ACKs and data) the filter kept, so the sample shows
	// whether a handshake on them went on. Learnt from the listeners when
	// the sample started, when no Ports were given.
	ListenPorts []int `json:"listen_ports"`
	// ListenPortsLeftOut counts the listening ports the filter had no room
	// for; their handshakes' ends are not in the sample.
	ListenPortsLeftOut int `json:"listen_ports_left_out,omitempty"`
	// FirstSegments is true when, of the segments to ListenPorts that are
	// no SYN, FIN or RST, only a client's first two after a SYN-ACK in the
	// sample were written (its final ACK and first data), not the ACK
	// streams of established connections; LeftOut counts the others.
	// TableCleared counts the times the table of awaited handshakes filled
	// (a flood) and was cleared; every segment was written for 3 s after.
	FirstSegments bool `json:"first_segments,omitempty"`
	LeftOut       int  `json:"left_out,omitempty"`
	TableCleared  int  `json:"table_cleared,omitempty"`
}

// Coverage says whether a packet sample shows what a client sent after
// its SYN on some port.
type Coverage int

const (
	// CoverageUnknown: the bundle does not say what the filter kept.
	CoverageUnknown Coverage = iota
	// CoverageNo: the filter kept only SYN, FIN and RST on the port, so a
	// handshake's final ACK and data are not in the sample.
	CoverageNo
	// CoverageYes: the filter kept the client's ACKs and data on the port.
	CoverageYes
)

// String names c for reports.
func (c Coverage) String() string {
	switch c {
	case CoverageNo:
		return "no"
	case CoverageYes:
		return "yes"
	}
	return "unknown"
}

// legacyPortTerm finds the focus ports in the filter expression that
// snapdiag wrote before PacketKeeps: "... or ((tcp or udp) and port 143)",
// or "(port 143 or port 993)" for several. Compiled on first use, not at
// every start of snapdiag.
var legacyPortTerm = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`\bport ([0-9]{1,5})\b`)
})

// ClientSegments says whether the sample shows a client's segments to the
// local port: its ACKs, data, FIN and RST after the SYN. Bundles without
// Keeps are read from their Filter, whose two forms (SYN, FIN and RST only,
// or those and every packet of the --port ports) are known.
func (p *PacketsInfo) ClientSegments(port uint16) Coverage {
	if p == nil {
		return CoverageUnknown
	}
	if k := p.Keeps; k != nil {
		if slices.Contains(k.Ports, int(port)) || slices.Contains(k.ListenPorts, int(port)) {
			return CoverageYes
		}
		return CoverageNo
	}
	if p.Filter == "" {
		return CoverageUnknown
	}
	for _, m := range legacyPortTerm().FindAllStringSubmatch(p.Filter, 64) {
		if n, err := strconv.Atoi(m[1]); err == nil && n == int(port) {
			return CoverageYes
		}
	}
	return CoverageNo
}

// SamplingPerFlow is PacketSampling.Method for a sample that keeps or leaves
// out whole connections: a flow is kept when a keyed hash of its two
// endpoints is 0 modulo the second's OneIn. Part of that divisor may be
// applied in the kernel's filter (PacketSecond.KernelOneIn), so the flows
// left out there are never copied to snapdiag at all.
const SamplingPerFlow = "per-flow"

// PacketSampling is how a packet sample spread its packet and byte limits
// over its whole window: each second of the window gets an equal share
// (BudgetPerSecond), and when more packets come in a second than its share,
// whole flows are kept 1 in OneIn, so every second of the window is in the
// sample and each kept handshake has both its ends.
type PacketSampling struct {
	// Method is SamplingPerFlow.
	Method string `json:"method"`
	// Start is the wall-clock time second 0 of Seconds starts at; the
	// records' timestamps are on the same clock.
	Start time.Time `json:"start"`
	// BudgetPerSecond is the most packets one second may keep.
	BudgetPerSecond int `json:"budget_per_second"`
	// Read counts the packets read from the kernel in the window: they
	// matched the filter and were not among the kernel's drops
	// (PacketsInfo.KernelDrops). Read plus KernelDrops is what matched.
	Read int64 `json:"read"`
	// SamplingDrops counts the packets the sampling left out. The first
	// segments thinner's omissions (PacketKeeps.LeftOut) are not in it.
	SamplingDrops int64 `json:"sampling_drops"`
	// KernelFreezes counts the times the kernel found every ring block
	// full and froze the queue (PACKET_STATISTICS tp_freeze_q_cnt).
	KernelFreezes uint32 `json:"kernel_freezes"`
	// Seconds has one entry per second of the window, in order.
	Seconds []PacketSecond `json:"seconds"`
}

// PacketSecond is one second of a sampled packet sample.
type PacketSecond struct {
	// Offered counts the packets of this second the sampling decided on
	// (read, less those the first segments thinner left out); Kept those
	// written.
	Offered int64 `json:"offered"`
	Kept    int64 `json:"kept"`
	// OneIn is the largest flow-sampling divisor used in this second:
	// 1 means every flow was kept.
	OneIn int `json:"one_in"`
	// KernelOneIn is the largest part of OneIn the kernel's filter applied
	// in this second (absent or 1: none): only flows whose hash passes it
	// were copied to snapdiag, so a TCP packet read then stands for
	// KernelOneIn packets on the wire.
	KernelOneIn int `json:"kernel_one_in,omitempty"`
	// Estimated is the packets of this second on the wire that Offered
	// stands for: each packet read counted KernelOneIn times (the divisor
	// in force when it arrived). Absent when the kernel left nothing out,
	// and then equal to Offered.
	Estimated int64 `json:"estimated,omitempty"`
}

// Total is the packets this second was offered on the wire: Estimated when
// the kernel's filter sampled, else Offered.
func (s PacketSecond) Total() int64 {
	return max(s.Estimated, s.Offered)
}

// Scale is how many packets one kept packet of this second stands for:
// Total/Kept, 1 when everything was kept or nothing was.
func (s PacketSecond) Scale() float64 {
	if s.Kept <= 0 || s.Total() <= s.Kept {
		return 1
	}
	return float64(s.Total()) / float64(s.Kept)
}

// Sampled reports whether the sample left packets out by sampling, in
// snapdiag or in the kernel's filter, so its counts are estimates once
// scaled.
func (p *PacketsInfo) Sampled() bool {
	if p == nil || p.Sampling == nil {
		return false
	}
	if p.Sampling.SamplingDrops > 0 {
		return true
	}
	for _, s := range p.Sampling.Seconds {
		if s.KernelOneIn > 1 {
			return true
		}
	}
	return false
}

// ScaleAt is how many packets one kept packet at t stands for: the scale of
// t's second in Sampling, 1 for bundles that did not sample, and the whole
// sample's scale for a time outside the recorded seconds.
func (p *PacketsInfo) ScaleAt(t time.Time) float64 {
	if !p.Sampled() {
		return 1
	}
	s := p.Sampling
	d := t.Sub(s.Start)
	if i := int(d / time.Second); d >= 0 && i < len(s.Seconds) {
		return s.Seconds[i].Scale()
	}
	return p.Scale()
}

// Scale is how many packets one kept packet stands for over the whole
// sample: offered on the wire over kept, summed over the seconds; 1 when
// not sampled.
func (p *PacketsInfo) Scale() float64 {
	if !p.Sampled() {
		return 1
	}
	var all PacketSecond
	for _, s := range p.Sampling.Seconds {
		all.Offered += s.Offered
		all.Estimated += s.Total()
		all.Kept += s.Kept
	}
	return all.Scale()
}

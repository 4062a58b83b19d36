package analyze

import (
	"fmt"
	"math"
	"sort"

	"github.com/snapdiag/snapdiag/bundle"
)

// diagnoseHalfOpen names the sources whose handshakes never complete: from the
// packet sample (the server's SYN-ACK sent, perhaps re-sent, and never
// ACKed), else from the SYN-RECV request sockets whose SYN-ACK was re-sent
// (a request's retransmit count grows only while its client stays silent).
//
// A handshake the packet sample cannot judge (its filter did not keep the
// clients' ACKs on that port, or the capture socket lost packets) is never
// counted half-open: when nothing else is, and a SYN queue overflowed, the
// finding is an info that says the sample cannot tell, and why.
func diagnoseHalfOpen(s *Snapshot) *HalfOpenClients {
	pa := s.Packets
	if pa != nil && pa.HalfOpen > 0 {
		return halfOpenFromPackets(s, pa)
	}
	var d *HalfOpenClients
	if s.Sockets != nil {
		d = halfOpenFromSockets(s)
	}
	if pa == nil || pa.Undetermined == 0 {
		return d
	}
	if d == nil {
		if !synQueueOverflowed(s) {
			return nil
		}
		d = &HalfOpenClients{Severity: Info, FromPackets: true}
		d.Listener = busiestListener(s, pa.CannotTell)
	}
	d.Class, d.Undetermined, d.CannotTell, d.Completed = ClassCannotTell, pa.Undetermined, pa.CannotTell, pa.Completed
	return d
}

// synQueueOverflowed reports whether a SYN queue overflowed during the
// capture: SYNs dropped, or, with tcp_syncookies=1, answered with cookies.
// With tcp_syncookies=2 the cookie counters move for every SYN and the
// server keeps no request: that is no sign of a full queue.
func synQueueOverflowed(s *Snapshot) bool {
	cookies, _ := syncookies(s)
	return s.Delta(tcpExtTCPReqQFullDrop).Moved() || cookies == 1 && s.Delta(tcpExtTCPReqQFullDoCookies).Moved()
}

// busiestListener is the listener of the port with the most handshakes
// the sample cannot judge, nil when none is known.
func busiestListener(s *Snapshot, ports []PortCannotTell) *ListenerState {
	var best *ListenerState
	most := 0
	for _, c := range ports {
		if l := s.listenerByPort(c.Port); l != nil && c.Flows > most {
			best, most = l, c.Flows
		}
	}
	return best
}

// HalfOpenClients diagnoses half-open-clients: sources whose handshakes
// never complete.
type HalfOpenClients struct {
	// Severity is warning when the requests can fill the listener's SYN
	// queue, or a SYN queue did overflow.
	Severity Severity
	// Listener is the listener most of them were for; nil when unknown.
	Listener *ListenerState
	// FromPackets is true when the packet sample shows the handshakes;
	// false when the socket table's SYN-RECV requests do.
	FromPackets bool
	// HalfOpen is the number of handshakes answered with a SYN-ACK and
	// never completed (packets), or of SYN-RECV requests whose SYN-ACK was
	// re-sent (sockets).
	HalfOpen int
	// Sources are the clients, in the packet sample's order or most
	// requests first.
	Sources []HalfOpenSource
	// Port, SynRecv and MaxRetrans describe the socket table's worst port:
	// its SYN-RECV requests and the most SYN-ACK retransmits of one.
	Port       int
	SynRecv    int
	MaxRetrans int
	// QueueCap is the SYN-queue capacity of Listener that the half-open
	// count was weighed against (0 without a listener). It depends on the
	// kernel: the listen backlog from 4.4 on, the backlog capped by
	// tcp_max_syn_backlog and rounded up to a power of two before; with
	// cookies off, the 3/4 rule of tcp_max_syn_backlog on every kernel.
	// CapFromMaxSynBacklog is true when tcp_max_syn_backlog set it, so
	// raising that sysctl (or enabling cookies) makes room.
	QueueCap             int
	CapFromMaxSynBacklog bool

	// Class is the packet sample's verdict on the sources: a few recurring
	// broken clients, a distributed flood, or, when nothing is half-open,
	// cannot tell. Empty when the finding comes from the socket table alone.
	Class HalfOpenClass
	// Completed counts the sample's handshakes that completed.
	Completed int
	// Undetermined counts the handshakes the sample cannot judge, and
	// CannotTell says per port why; they are never counted half-open.
	Undetermined int
	CannotTell   []PortCannotTell
	// Spoofed is true when most half-open sources of a distributed flood
	// send SYNs with one TTL (SharedTTL) and window (SharedWindow), Sharing
	// of them: a hint that one machine forges them all.
	Spoofed      bool
	SharedTTL    uint8
	SharedWindow uint16
	Sharing      int
	// Sampled is true when the packet sample kept a share of the traffic:
	// HalfOpen and the sources' counts are the sample's, Estimated is
	// HalfOpen scaled by each second's sampling rate, and Scale the whole
	// sample's 1-in-N. Without sampling Estimated is HalfOpen and Scale 1.
	Sampled   bool
	Scale     float64
	Estimated int
}

// HalfOpenSource is one client whose handshakes never complete.
type HalfOpenSource struct {
	Addr string
	// HalfOpen is its handshakes never completed (or its SYN-RECV
	// requests); the other fields come from the packet sample.
	HalfOpen      int
	Flows         int
	SYNACKRetrans int
	// Completed and Undetermined count its handshakes that completed and
	// that the sample cannot judge; SYNRetrans its re-sent SYNs.
	Completed    int
	Undetermined int
	SYNRetrans   int
	// TTL and Window are its SYNs' most common IP TTL and TCP window.
	TTL    uint8
	Window uint16
}

func halfOpenFromPackets(s *Snapshot, pa *PacketAnalysis) *HalfOpenClients {
	d := &HalfOpenClients{Severity: Info, FromPackets: true, HalfOpen: pa.HalfOpen, Class: pa.Class(),
		Completed: pa.Completed, Undetermined: pa.Undetermined, CannotTell: pa.CannotTell}
	d.SharedTTL, d.SharedWindow, d.Sharing, d.Spoofed = pa.SharedPrint()
	d.Sampled, d.Scale, d.Estimated = pa.Sampled, max(pa.Scale, 1), max(int(math.Round(pa.HalfOpenEst)), pa.HalfOpen)
	ports := map[uint16]int{}
	for _, st := range pa.Sources {
		if st.HalfOpen == 0 {
			continue
		}
		d.Sources = append(d.Sources, HalfOpenSource{Addr: st.Addr.String(), HalfOpen: st.HalfOpen, Flows: st.Flows, SYNACKRetrans: st.SYNACKRetrans,
			Completed: st.Completed, Undetermined: st.Undetermined, SYNRetrans: st.SYNRetrans, TTL: st.TTL, Window: st.Window})
		for p, n := range st.Ports {
			ports[p] += n
		}
	}
	best := 0
	for p, n := range ports {
		if n > best || n == best && d.Listener != nil && int(p) < d.Listener.Port {
			if cand := s.listenerByPort(p); cand != nil {
				d.Listener, best = cand, n
			}
		}
	}
	// They matter when they can fill a SYN queue, or when the queue did fill.
	d.weigh(s)
	if d.Listener != nil && d.Estimated >= d.QueueCap || synQueueOverflowed(s) {
		d.Severity = Warning
	}
	return d
}

func halfOpenFromSockets(s *Snapshot) *HalfOpenClients {
	type portAgg struct {
		port int
		st   *SynRecvStats
	}
	var ps []portAgg
	for p, st := range s.Sockets.SynRecv {
		if st.Retransmitted > 0 {
			ps = append(ps, portAgg{p, st})
		}
	}
	if len(ps) == 0 {
		return nil
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].st.Retransmitted != ps[j].st.Retransmitted {
			return ps[i].st.Retransmitted > ps[j].st.Retransmitted
		}
		return ps[i].port < ps[j].port
	})
	top := ps[0]
	d := &HalfOpenClients{Severity: Info, Listener: s.listenerByPort(uint16(top.port)), HalfOpen: top.st.Retransmitted,
		Port: top.port, SynRecv: top.st.Count, MaxRetrans: top.st.MaxRetrans}
	for a, n := range top.st.Sources {
		d.Sources = append(d.Sources, HalfOpenSource{Addr: a, HalfOpen: n})
	}
	sort.Slice(d.Sources, func(i, j int) bool {
		if d.Sources[i].HalfOpen != d.Sources[j].HalfOpen {
			return d.Sources[i].HalfOpen > d.Sources[j].HalfOpen
		}
		return d.Sources[i].Addr < d.Sources[j].Addr
	})
	d.weigh(s)
	if d.Listener != nil && top.st.Count >= d.QueueCap {
		d.Severity = Warning
	}
	return d
}

// weigh sets QueueCap and CapFromMaxSynBacklog from d.Listener's SYN queue
// on the bundle's kernel.
func (d *HalfOpenClients) weigh(s *Snapshot) {
	if d.Listener == nil {
		return
	}
	d.QueueCap, d.CapFromMaxSynBacklog = s.synQueueCap(d.Listener)
}

func (d *HalfOpenClients) render(s *Snapshot) Finding {
	f := d.renderFinding(s)
	if d.HalfOpen > 0 {
		d.addCannotTell(&f)
	}
	return f
}

func (d *HalfOpenClients) renderFinding(s *Snapshot) Finding {
	l := d.Listener
	f := listenerFinding(IDHalfOpenClients, d.Severity, l)
	var srcs []string
	for _, x := range d.Sources {
		if d.FromPackets {
			srcs = append(srcs, fmt.Sprintf("%s (%d half-open, %d completed of %d; %d SYN and %d SYN-ACK retransmits; TTL %d, window %d)",
				x.Addr, x.HalfOpen, x.Completed, x.Flows, x.SYNRetrans, x.SYNACKRetrans, x.TTL, x.Window))
		} else {
			srcs = append(srcs, fmt.Sprintf("%s (%d)", x.Addr, x.HalfOpen))
		}
	}
	f.Recommendations = halfOpenRecs(s)
	defer d.addQueueCap(s, &f)
	if d.FromPackets && d.HalfOpen == 0 {
		d.renderCannotTell(&f)
		return f
	}
	if !d.FromPackets {
		f.Title = fmt.Sprintf("%d SYN-RECV requests on port %d are waiting on clients that do not answer", d.HalfOpen, d.Port)
		f.Evidence = append(f.Evidence,
			evValue(bundle.PathSocketsTCP, fmt.Sprintf("SYN-RECV on port %d", d.Port), float64(d.SynRecv),
				fmt.Sprintf("%d with SYN-ACK retransmits (max %d); by source: %s", d.HalfOpen, d.MaxRetrans, shortList(srcs, 10))))
		f.Summary = fmt.Sprintf("At capture time %d half-open requests on port %d had their SYN-ACK re-sent (up to %d times) without an answer. "+
			"Sources: %s. Clients that never complete hold SYN-queue slots until the retries expire.",
			d.HalfOpen, d.Port, d.MaxRetrans, shortList(srcs, 5))
		return f
	}
	pa := s.Packets
	f.Title = fmt.Sprintf("%s from %s%s", count(d.HalfOpen, "half-open handshake", "half-open handshakes"),
		count(len(d.Sources), "source", "sources"), titleListener(l))
	if d.Sampled {
		f.Title = fmt.Sprintf("About %d half-open handshakes (estimated from a 1-in-%.0f packet sample; %s in it)%s",
			d.Estimated, d.Scale, count(len(d.Sources), "source", "sources"), titleListener(l))
	}
	f.Evidence = append(f.Evidence, evSampled("half-open handshakes", d.HalfOpen, float64(d.Estimated), d.Scale,
		"by source: "+shortList(srcs, 10)))
	f.Evidence = append(f.Evidence, evValue(bundle.PathPackets, "completed handshakes", float64(pa.Completed), ""))
	if pa.SYNACKRetrans > 0 {
		f.Evidence = append(f.Evidence, evValue(bundle.PathPackets, "SYN-ACK retransmits", float64(pa.SYNACKRetrans),
			"a server-side capture also shows SYN-ACKs that never reached the client"))
	}
	if pa.SYNRetrans > 0 {
		f.Evidence = append(f.Evidence, evValue(bundle.PathPackets, "SYN retransmits", float64(pa.SYNRetrans), "same ISN re-sent by the client"))
	}
	if pa.Unanswered > 0 {
		f.Evidence = append(f.Evidence, evSampled("unanswered SYNs", pa.Unanswered, pa.UnansweredEst, d.Scale,
			"SYNs that got no SYN-ACK at all: dropped by a full queue, conntrack, softnet or the NIC; the counters say which"))
	}
	if pa.Truncated {
		f.Evidence = append(f.Evidence, evValue(bundle.PathPackets, "flows", float64(len(pa.Flows)), "flow table bound reached; later flows not counted"))
	}
	if d.Spoofed {
		f.Evidence = append(f.Evidence, evValue(bundle.PathPackets, "sources sharing one TTL and window", float64(d.Sharing),
			fmt.Sprintf("TTL %d, window %d: a hint, not proof, of one machine forging these addresses "+
				"(clients of one operating system at the same hop count look alike too)", d.SharedTTL, d.SharedWindow)))
	}
	f.Summary = fmt.Sprintf("In the packet sample the server answered %d handshakes with a SYN-ACK and never got the client's ACK. "+
		"Each such request holds a SYN-queue slot until its SYN-ACK retries expire (%s). "+
		"Sources: %s. %s",
		d.HalfOpen, requestLifetime(s), shortList(srcs, 5), d.classProse())
	if d.Sampled {
		f.Summary += fmt.Sprintf(" The capture kept whole handshakes 1 in %.0f under this load, so the traffic held about %d such handshakes; "+
			"the counts per source are the sample's.", d.Scale, d.Estimated)
	}
	return f
}

// addQueueCap explains, when it depends on the kernel or on
// tcp_max_syn_backlog, the SYN-queue capacity the half-open requests were
// weighed against: the severity rests on it.
func (d *HalfOpenClients) addQueueCap(s *Snapshot, f *Finding) {
	pre44 := !s.Kernel.AtLeast(4, 4, 0)
	if d.QueueCap == 0 || !d.CapFromMaxSynBacklog && !pre44 {
		return
	}
	var note string
	switch {
	case pre44 && d.CapFromMaxSynBacklog:
		note = fmt.Sprintf("kernel %s: before 4.4 tcp_max_syn_backlog also sizes the SYN queue, and with cookies off its 3/4 rule cuts unproven peers; "+
			"half-open requests fill this many slots, fewer than the listen backlog", s.Kernel)
	case pre44:
		note = fmt.Sprintf("kernel %s: before 4.4 the SYN queue is the listen backlog, at least 8, plus one, rounded up to a power of two", s.Kernel)
	default:
		note = "with cookies off, the 3/4 rule of tcp_max_syn_backlog drops SYNs of unproven peers beyond this many requests, below the listen backlog"
	}
	src := bundle.SysctlPath("net.ipv4.tcp_max_syn_backlog")
	if !d.CapFromMaxSynBacklog {
		src = bundle.DirSamples
	}
	f.Evidence = append(f.Evidence, evValue(src, "SYN queue capacity", float64(d.QueueCap), note))
}

// classProse says what the sources' pattern means.
func (d *HalfOpenClients) classProse() string {
	switch d.Class {
	case ClassDistributedFlood:
		p := fmt.Sprintf("%d sources leave handshakes half-open: a distributed SYN flood, likely spoofed; keep cookies on and filter upstream.", len(d.Sources))
		if d.Spoofed {
			p += fmt.Sprintf(" %d of them send the same TTL (%d) and window (%d), as one machine forging addresses would.", d.Sharing, d.SharedTTL, d.SharedWindow)
		}
		return p
	case ClassBrokenClients:
		return fmt.Sprintf("%d source(s) leave handshakes half-open again and again: broken clients, one host flooding from its own address, "+
			"or SYN-ACKs lost on the way back to them (a server-side capture cannot tell which).", len(d.Sources))
	}
	return ""
}

// addCannotTell adds what the sample could not judge to f.
func (d *HalfOpenClients) addCannotTell(f *Finding) {
	if d.Undetermined == 0 {
		return
	}
	var ports []string
	for _, c := range d.CannotTell {
		ports = append(ports, fmt.Sprintf("port %d: %d (%s)", c.Port, c.Flows, c.Why))
	}
	f.Evidence = append(f.Evidence, evValue(bundle.PathPackets, "handshakes the sample cannot judge", float64(d.Undetermined),
		"not counted half-open; "+shortList(ports, 5)))
	f.Summary += fmt.Sprintf(" The sample cannot tell whether %d more handshakes completed (%s); they are not counted.", d.Undetermined, shortList(ports, 3))
}

// renderCannotTell fills f when nothing is half-open but some handshakes
// could not be judged while a SYN queue overflowed.
func (d *HalfOpenClients) renderCannotTell(f *Finding) {
	var ports []string
	for _, c := range d.CannotTell {
		ports = append(ports, fmt.Sprintf("port %d: %d (%s)", c.Port, c.Flows, c.Why))
		f.Recommendations = append(f.Recommendations, note("capture", c.Remedy))
	}
	f.Title = fmt.Sprintf("The packet sample cannot tell which clients leave handshakes half-open%s", titleListener(d.Listener))
	f.Evidence = append(f.Evidence, evValue(bundle.PathPackets, "handshakes the sample cannot judge", float64(d.Undetermined), shortList(ports, 10)))
	f.Evidence = append(f.Evidence, evValue(bundle.PathPackets, "completed handshakes", float64(d.Completed), ""))
	f.Summary = fmt.Sprintf("A SYN queue overflowed, but the packet sample cannot show whether %d answered handshakes completed (%s): "+
		"its filter did not keep the clients' ACKs there, or the capture lost packets. No client is named half-open on this evidence.",
		d.Undetermined, shortList(ports, 5))
}

func halfOpenRecs(s *Snapshot) []Recommendation {
	var recs []Recommendation
	recs = append(recs, note("network",
		"find out why these sources never complete: broken client software, spoofed sources, or a return-path problem (asymmetric routing, a firewall eating SYN-ACKs); filter them upstream if they are hostile"))
	if c, _ := syncookies(s); c != 1 {
		recs = append(recs, sysctlRec(s, "net.ipv4.tcp_syncookies", "1",
			"cookies keep the service reachable whatever half-open requests hold the SYN queue"))
	}
	return recs
}

// requestLifetime says how long an unanswered request lives: its SYN-ACK is
// re-sent tcp_synack_retries times with a doubling timeout from 1 s
// (reqsk_timer_handler()), so it expires after 2^(n+1)-1 s;
// each duplicate SYN from a client that keeps retrying re-arms the timer.
func requestLifetime(s *Snapshot) string {
	n, ok := s.Sysctls.Int("net.ipv4.tcp_synack_retries")
	if !ok || n < 0 || n > 30 {
		return "about 63 s with the default tcp_synack_retries=5"
	}
	return fmt.Sprintf("about %d s with tcp_synack_retries=%d", int64(1)<<(n+1)-1, n)
}

// evSampled is the evidence of a count from the packet sample: sampled is
// the count in the sample, est its estimate in the traffic (equal when the
// sample kept everything), scale the sample's 1-in-N.
func evSampled(metric string, sampled int, est, scale float64, note string) Evidence {
	if scale <= 1 {
		return evValue(bundle.PathPackets, metric, float64(sampled), note)
	}
	e := evValue(bundle.PathPackets, metric, math.Round(est),
		fmt.Sprintf("estimated from a 1-in-%.0f packet sample (%d in the sample)", scale, sampled))
	if note != "" {
		e.Note += "; " + note
	}
	e.SampleScale = round2(scale)
	return e
}

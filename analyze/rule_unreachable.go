package analyze

import (
	"fmt"
	"strconv"
)

// UnreachableClients diagnoses unreachable-clients: connection requests
// dropped that neither queue explains.
type UnreachableClients struct {
	// Severity is warning above one residual drop a second, when ICMP
	// unreachables were sent, or when the neighbour table overflowed.
	Severity Severity
	// Residual is ListenDrops - ListenOverflows - TCPReqQFullDrop.
	Residual, ListenDrops Delta
	// ICMPOut and ICMPIn are Icmp's OutDestUnreachs and InDestUnreachs;
	// ICMP6Out is Snmp6's Icmp6OutDestUnreachs.
	ICMPOut, ICMPIn, ICMP6Out Delta
	// NeighbourOverflow is true when the kernel log reports "neighbor table
	// overflow"; RaiseGCThresh3To is then the gc_thresh3 to set (0 when
	// the bundle lacks it).
	NeighbourOverflow bool
	RaiseGCThresh3To  int64
}

// neighLog is the kernel's line when the neighbour table is full.
const neighLog = "neighbor table overflow"

// diagnoseUnreachable finds unreachable-clients: ListenDrops
// beyond ListenOverflows and TCPReqQFullDrop with cookies on are requests
// aborted by an ICMP error (tcp_req_err(): host or net unreachable, often
// the kernel's own after ARP fails for spoofed on-link sources), a route or
// memory failure. With cookies off the same residual is the 3/4 rule unless
// ICMP unreachables moved and no listener sits at the 3/4 plateau.
func diagnoseUnreachable(s *Snapshot) *UnreachableClients {
	cookies, _ := syncookies(s)
	drops := s.Delta(tcpExtListenDrops)
	if !drops.OK {
		return nil
	}
	res, ok := residualDrops(drops, s.Delta(tcpExtListenOverflows), s.Delta(tcpExtTCPReqQFullDrop))
	if !ok {
		return nil
	}
	if cookies == 0 && diagnoseThreeQuarter(s) != nil {
		return nil
	}
	d := &UnreachableClients{Severity: Info, Residual: res, ListenDrops: drops,
		ICMPOut: s.Delta(icmpOutDestUnreachs), ICMPIn: s.Delta(icmpInDestUnreachs), ICMP6Out: s.Delta(snmp6Icmp6OutDestUnreachs),
		NeighbourOverflow: len(s.KmsgMatching(neighLog)) > 0}
	if res.PerSecond > 1 || d.ICMPOut.Moved() || d.NeighbourOverflow {
		d.Severity = Warning
	}
	if d.NeighbourOverflow {
		if g3, ok := s.Sysctls.Int("net.ipv4.neigh.default.gc_thresh3"); ok {
			d.RaiseGCThresh3To = max(2*g3, 4096)
		}
	}
	return d
}

func (d *UnreachableClients) render(s *Snapshot) Finding {
	f := Finding{
		ID:       IDUnreachableClients,
		Severity: d.Severity,
		Title:    "Connection requests aborted because the clients cannot be reached",
	}
	f.Evidence = append(f.Evidence,
		evDelta(d.ListenDrops, ""),
		evValue(d.Residual.Source, residualMetric, float64(d.Residual.Delta), fmt.Sprintf("%.1f/s not explained by a full queue", d.Residual.PerSecond)))
	if d.ICMPOut.OK {
		f.Evidence = append(f.Evidence, evDelta(d.ICMPOut, "host/net unreachables sent, including the kernel's own when ARP fails"))
	}
	if d.ICMPIn.OK {
		f.Evidence = append(f.Evidence, evDelta(d.ICMPIn, "unreachables received: each one aborts a request (tcp_req_err())"))
	}
	if d.ICMP6Out.Moved() {
		f.Evidence = append(f.Evidence, evDelta(d.ICMP6Out, ""))
	}
	f.Evidence = append(f.Evidence, kmsgEvidence(s, neighLog, 3)...)
	f.Evidence = append(f.Evidence, packetEvidence(s)...)
	f.Summary = fmt.Sprintf("%s connection requests were dropped %s that neither a full SYN queue nor a full accept queue explains. ", perSecond(d.Residual), window(s))
	switch {
	case d.ICMPOut.Moved() || d.ICMPIn.Moved():
		f.Summary += "ICMP destination-unreachable messages moved at the same time: the clients' addresses cannot be reached (spoofed sources, " +
			"failed ARP/ND, a broken return route), and each ICMP error aborts a waiting request. "
	default:
		f.Summary += "Without ICMP unreachables, the likely causes are a missing route back to the clients or a memory allocation failure. "
	}
	if d.NeighbourOverflow {
		f.Summary += "The kernel log reports a neighbour table overflow. "
	}
	f.Summary += "This is not a backlog problem."
	f.Recommendations = append(f.Recommendations, note("network",
		"block spoofed sources upstream (BCP 38, rp_filter), and check the route back to the clients and the neighbour table (ip neigh show nud incomplete)",
		"ip -s neigh show nud incomplete"))
	if d.RaiseGCThresh3To > 0 {
		f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.neigh.default.gc_thresh3", strconv.FormatInt(d.RaiseGCThresh3To, 10),
			"the neighbour table overflowed; a larger table keeps entries for real clients"))
	}
	return f
}

package analyze

import (
	"fmt"
	"strconv"
)

// ruleUnreachable is R-LISTENDROP-RESIDUAL (section 7, rule 6): ListenDrops
// beyond ListenOverflows and TCPReqQFullDrop with cookies on are requests
// aborted by an ICMP error (tcp_req_err(): host or net unreachable, often
// the kernel's own after ARP fails for spoofed on-link sources), a route or
// memory failure. With cookies off the same residual is the 3/4 rule unless
// ICMP unreachables moved and no listener sits at the 3/4 plateau.
func ruleUnreachable(s *Snapshot) []Finding {
	cookies, _ := syncookies(s)
	drops := s.Delta(tcpExtListenDrops)
	if !drops.OK {
		return nil
	}
	overflows := s.Delta(tcpExtListenOverflows)
	reqDrop := s.Delta(tcpExtTCPReqQFullDrop)
	residual := drops.Delta - overflows.Delta - reqDrop.Delta
	if residual <= 0 {
		return nil
	}
	icmpOut := s.Delta(icmpOutDestUnreachs)
	icmpIn := s.Delta(icmpInDestUnreachs)
	icmp6Out := s.Delta(snmp6Icmp6OutDestUnreachs)
	neigh := s.KmsgMatching("neighbor table overflow")
	if cookies == 0 && diagnoseThreeQuarter(s) != nil {
		return nil
	}
	res := Delta{Delta: residual, Last: residual, OK: true,
		Seconds: drops.Seconds, Source: drops.Source}
	if drops.Seconds > 0 {
		res.PerSecond = float64(residual) / drops.Seconds
	}
	f := Finding{
		ID:       IDUnreachableClients,
		Severity: Info,
		Title:    "Connection requests aborted because the clients cannot be reached",
	}
	if res.PerSecond > 1 || icmpOut.Moved() || len(neigh) > 0 {
		f.Severity = Warning
	}
	f.Evidence = append(f.Evidence,
		evDelta(drops, ""),
		evValue(res.Source, residualMetric, float64(residual), fmt.Sprintf("%.1f/s not explained by a full queue", res.PerSecond)))
	if icmpOut.OK {
		f.Evidence = append(f.Evidence, evDelta(icmpOut, "host/net unreachables sent, including the kernel's own when ARP fails"))
	}
	if icmpIn.OK {
		f.Evidence = append(f.Evidence, evDelta(icmpIn, "unreachables received: each one aborts a request (tcp_req_err())"))
	}
	if icmp6Out.Moved() {
		f.Evidence = append(f.Evidence, evDelta(icmp6Out, ""))
	}
	f.Evidence = append(f.Evidence, kmsgEvidence(s, "neighbor table overflow", 3)...)
	f.Evidence = append(f.Evidence, packetEvidence(s)...)
	f.Summary = fmt.Sprintf("%s connection requests were dropped %s that neither a full SYN queue nor a full accept queue explains. ", perSecond(res), window(s))
	switch {
	case icmpOut.Moved() || icmpIn.Moved():
		f.Summary += "ICMP destination-unreachable messages moved at the same time: the clients' addresses cannot be reached (spoofed sources, " +
			"failed ARP/ND, a broken return route), and each ICMP error aborts a waiting request. "
	default:
		f.Summary += "Without ICMP unreachables, the likely causes are a missing route back to the clients or a memory allocation failure. "
	}
	if len(neigh) > 0 {
		f.Summary += "The kernel log reports a neighbour table overflow. "
	}
	f.Summary += "This is not a backlog problem."
	f.Recommendations = append(f.Recommendations, note("network",
		"block spoofed sources upstream (BCP 38, rp_filter), and check the route back to the clients and the neighbour table (ip neigh show nud incomplete)",
		"ip -s neigh show nud incomplete"))
	if len(neigh) > 0 {
		if g3, ok := s.Sysctls.Int("net.ipv4.neigh.default.gc_thresh3"); ok {
			f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.neigh.default.gc_thresh3", strconv.FormatInt(max(2*g3, 4096), 10),
				"the neighbour table overflowed; a larger table keeps entries for real clients"))
		}
	}
	return []Finding{f}
}

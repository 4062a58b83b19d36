package analyze

import (
	"fmt"
	"sort"

	"github.com/snapdiag/snapdiag/bundle"
)

// ruleHalfOpen names the sources whose handshakes never complete: from the
// packet sample (SYN-ACK sent, never ACKed; pcap signature 2 of section 4),
// else from the SYN-RECV request sockets whose SYN-ACK was re-sent (section
// 2.3: entries with many retransmits mean clients that never complete).
func ruleHalfOpen(s *Snapshot) []Finding {
	if pa := s.Packets; pa != nil && pa.HalfOpen > 0 {
		return []Finding{halfOpenFromPackets(s, pa)}
	}
	if s.Sockets != nil {
		if f, ok := halfOpenFromSockets(s); ok {
			return []Finding{f}
		}
	}
	return nil
}

func halfOpenFromPackets(s *Snapshot, pa *PacketAnalysis) Finding {
	ports := map[uint16]int{}
	var srcs []string
	nsrc := 0
	for _, st := range pa.Sources {
		if st.HalfOpen == 0 {
			continue
		}
		nsrc++
		srcs = append(srcs, fmt.Sprintf("%s (%d half-open of %d, %d SYN-ACK retransmits)", st.Addr, st.HalfOpen, st.Flows, st.SYNACKRetrans))
		for p, n := range st.Ports {
			ports[p] += n
		}
	}
	var l *ListenerState
	best := 0
	for p, n := range ports {
		if n > best || n == best && l != nil && int(p) < l.Port {
			if cand := s.listenerByPort(p); cand != nil {
				l, best = cand, n
			}
		}
	}
	f := Finding{
		ID:       IDHalfOpenClients,
		Severity: Info,
		Listener: l.name(),
		Process:  l.process(),
		Title:    fmt.Sprintf("%d half-open handshakes from %d sources%s", pa.HalfOpen, nsrc, titleListener(l)),
	}
	// They matter when they can fill a SYN queue, or when the queue did fill.
	// With tcp_syncookies=2 the cookie counters move for every SYN and the
	// server keeps no request: that is no sign of a full queue.
	cookies, _ := syncookies(s)
	cookieOverflow := cookies == 1 && s.Delta(tcpExtTCPReqQFullDoCookies).Moved()
	if l != nil && pa.HalfOpen >= s.synQueueCap(l) || s.Delta(tcpExtTCPReqQFullDrop).Moved() || cookieOverflow {
		f.Severity = Warning
	}
	f.Evidence = append(f.Evidence, evValue(bundle.PathPackets, "half-open handshakes", float64(pa.HalfOpen),
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
		f.Evidence = append(f.Evidence, evValue(bundle.PathPackets, "unanswered SYNs", float64(pa.Unanswered),
			"SYNs that got no SYN-ACK at all: dropped by a full queue, conntrack, softnet or the NIC; the counters say which"))
	}
	if pa.Truncated {
		f.Evidence = append(f.Evidence, evValue(bundle.PathPackets, "flows", float64(len(pa.Flows)), "flow table bound reached; later flows not counted"))
	}
	f.Summary = fmt.Sprintf("In the packet sample the server answered %d handshakes with a SYN-ACK and never got the client's ACK. "+
		"Each such request holds a SYN-queue slot until its SYN-ACK retries expire (%s). "+
		"Sources: %s. These are broken clients, spoofed SYNs, or SYN-ACKs lost on the way back (a server-side capture cannot tell).",
		pa.HalfOpen, requestLifetime(s), shortList(srcs, 5))
	f.Recommendations = halfOpenRecs(s)
	return f
}

func halfOpenFromSockets(s *Snapshot) (Finding, bool) {
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
		return Finding{}, false
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].st.Retransmitted != ps[j].st.Retransmitted {
			return ps[i].st.Retransmitted > ps[j].st.Retransmitted
		}
		return ps[i].port < ps[j].port
	})
	top := ps[0]
	l := s.listenerByPort(uint16(top.port))
	type src struct {
		addr string
		n    int
	}
	var srcs []src
	for a, n := range top.st.Sources {
		srcs = append(srcs, src{a, n})
	}
	sort.Slice(srcs, func(i, j int) bool {
		if srcs[i].n != srcs[j].n {
			return srcs[i].n > srcs[j].n
		}
		return srcs[i].addr < srcs[j].addr
	})
	var list []string
	for _, x := range srcs {
		list = append(list, fmt.Sprintf("%s (%d)", x.addr, x.n))
	}
	f := Finding{
		ID:       IDHalfOpenClients,
		Severity: Info,
		Listener: l.name(),
		Process:  l.process(),
		Title:    fmt.Sprintf("%d SYN-RECV requests on port %d are waiting on clients that do not answer", top.st.Retransmitted, top.port),
	}
	if l != nil && top.st.Count >= s.synQueueCap(l) {
		f.Severity = Warning
	}
	f.Evidence = append(f.Evidence,
		evValue(bundle.PathSocketsTCP, fmt.Sprintf("SYN-RECV on port %d", top.port), float64(top.st.Count),
			fmt.Sprintf("%d with SYN-ACK retransmits (max %d); by source: %s", top.st.Retransmitted, top.st.MaxRetrans, shortList(list, 10))))
	f.Summary = fmt.Sprintf("At capture time %d half-open requests on port %d had their SYN-ACK re-sent (up to %d times) without an answer. "+
		"Sources: %s. Clients that never complete hold SYN-queue slots until the retries expire.",
		top.st.Retransmitted, top.port, top.st.MaxRetrans, shortList(list, 5))
	f.Recommendations = halfOpenRecs(s)
	return f, true
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
// (reqsk_timer_handler(), section 1.4), so it expires after 2^(n+1)-1 s;
// each duplicate SYN from a client that keeps retrying re-arms the timer.
func requestLifetime(s *Snapshot) string {
	n, ok := s.Sysctls.Int("net.ipv4.tcp_synack_retries")
	if !ok || n < 0 || n > 30 {
		return "about 63 s with the default tcp_synack_retries=5"
	}
	return fmt.Sprintf("about %d s with tcp_synack_retries=%d", int64(1)<<(n+1)-1, n)
}

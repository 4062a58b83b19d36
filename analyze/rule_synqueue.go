package analyze

import (
	"fmt"
	"math"
	"strconv"

	"github.com/snapdiag/snapdiag/bundle"
)

// ruleSynQueue tells apart the SYN-queue look-alikes of the reference's
// rules R-SYNQ-DROP, R-34RULE and R-SYNQ-COOKIE (section 7, rules 1 to 3):
// a full SYN queue with cookies off (TCPReqQFullDrop), the cookies-off 3/4
// rule of tcp_max_syn_backlog (ListenDrops alone, SYN-RECV below Send-Q),
// and a full SYN queue with cookies on (TCPReqQFullDoCookies). Mode 2 is
// left to the sysctl audit: there the cookie counters move for every SYN.
func ruleSynQueue(s *Snapshot) []Finding {
	cookies, _ := syncookies(s)
	reqDrop := s.Delta(tcpExtTCPReqQFullDrop)
	doCookies := s.Delta(tcpExtTCPReqQFullDoCookies)
	drops := s.Delta(tcpExtListenDrops)
	overflows := s.Delta(tcpExtListenOverflows)
	passive := s.Delta(tcpPassiveOpens)
	culprits, full := s.synQueueCulprits()

	var out []Finding
	switch {
	case reqDrop.Moved():
		out = append(out, synDropFinding(s, reqDrop, drops, passive, culprits, full))
	case cookies == 0 && len(s.Samples) < 2 && full:
		// One sample: no deltas, but the queue is at its cap with cookies off,
		// so every further SYN is dropped.
		out = append(out, synDropFinding(s, reqDrop, drops, passive, culprits, full))
	}
	if f, ok := threeQuarterFinding(s, cookies, reqDrop, drops, overflows, passive); ok {
		out = append(out, f)
	}
	if cookies == 1 && (doCookies.Moved() || len(s.Samples) < 2 && full) {
		out = append(out, cookieFinding(s, doCookies, overflows, culprits, full))
	}
	return out
}

func synDropFinding(s *Snapshot, reqDrop, drops, passive Delta, culprits []*ListenerState, full bool) Finding {
	l := first(culprits)
	f := Finding{
		ID:       IDSynQueueOverflow,
		Severity: dropSeverity(reqDrop, passive, Warning),
		Title:    "SYN queue full" + titleListener(l) + ": new connections are being dropped",
		Listener: l.name(),
		Process:  l.process(),
	}
	if reqDrop.OK {
		f.Evidence = append(f.Evidence,
			evDelta(reqDrop, "SYNs dropped because the SYN queue was full and tcp_syncookies=0 (counts packets: every SYN retransmit is dropped again)"),
			evDelta(drops, "ListenDrops includes these drops"))
	}
	f.Evidence = append(f.Evidence, evValue(sysctlSource("net.ipv4.tcp_syncookies"), "net.ipv4.tcp_syncookies", 0, "cookies off: a full SYN queue drops SYNs"))
	where := "a listener"
	if l != nil {
		where = l.Local
		if len(culprits) > 1 {
			where = names(culprits)
		}
		for _, c := range culprits {
			note := "SYN queue at its cap (the listen backlog)"
			if !full {
				note = "the fullest SYN queue at capture time, below its cap"
			}
			f.Evidence = append(f.Evidence, listenerEvidence(c, note)...)
		}
	}
	f.Evidence = append(f.Evidence, retransEvidence(s)...)
	f.Evidence = append(f.Evidence, synFloodLog(s, 3)...)
	f.Evidence = append(f.Evidence, packetEvidence(s)...)
	if reqDrop.OK {
		f.Summary = fmt.Sprintf("The SYN queue of %s was full and tcp_syncookies is 0, so the kernel dropped %s SYNs %s "+
			"(TCPReqQFullDrop). Clients see connect delays of 1-3 s or more, or time out. ",
			where, perSecond(reqDrop), window(s))
	} else {
		f.Summary = fmt.Sprintf("At capture time the SYN queue of %s was at its cap and tcp_syncookies is 0, so every further SYN is dropped "+
			"(one sample only: no counter deltas). ", where)
	}
	f.Summary += "The daemon itself may be healthy: half-open requests from clients that never complete the handshake hold the queue " +
		"until their SYN-ACK retries expire. Turning SYN cookies on lets new clients in whatever the queue holds."
	if s.Packets != nil && s.Packets.HalfOpen > 0 {
		f.Summary += fmt.Sprintf(" The packet sample shows %d half-open handshakes (see half-open-clients).", s.Packets.HalfOpen)
	}
	f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.tcp_syncookies", "1",
		"with cookies on, a full SYN queue answers with a stateless SYN cookie instead of dropping the SYN, so legitimate clients get in during a flood of half-open requests"))
	f.Recommendations = append(f.Recommendations, backlogRecs(s, l,
		"A larger SYN queue absorbs bursts; on 4.4 and later its cap is this backlog (clamped by somaxconn), not tcp_max_syn_backlog.")...)
	return f
}

// threeQuarterFinding is R-34RULE: with cookies off, tcp_conn_request()
// drops SYNs of unproven peers once the SYN queue holds more than
// tcp_max_syn_backlog - tcp_max_syn_backlog/4 requests (branch F), counting
// only ListenDrops. The residual drops are told apart from ICMP-aborted
// requests (unreachable-clients) by a listener at that plateau below its
// Send-Q, or by ICMP unreachables not moving.
func threeQuarterFinding(s *Snapshot, cookies int64, reqDrop, drops, overflows, passive Delta) (Finding, bool) {
	if cookies != 0 || !drops.OK {
		return Finding{}, false
	}
	residual := drops.Delta - overflows.Delta - reqDrop.Delta
	if residual <= 0 {
		return Finding{}, false
	}
	tmsb, haveTmsb := s.Sysctls.Int("net.ipv4.tcp_max_syn_backlog")
	plateau := int(tmsb - tmsb>>2)
	var at *ListenerState
	for _, l := range s.Listeners() {
		if haveTmsb && l.MaxSynRecv() >= plateau && l.MaxSynRecv() < int(l.SendQ) {
			at = l
			break
		}
	}
	icmp := s.Delta(icmpOutDestUnreachs)
	if at == nil && icmp.Moved() {
		return Finding{}, false // unreachable-clients explains it
	}
	if at == nil && !s.Kernel.AtLeast(4, 4, 0) {
		return Finding{}, false
	}
	res := Delta{Delta: residual, OK: true,
		Seconds: drops.Seconds, Source: drops.Source, Last: residual}
	if drops.Seconds > 0 {
		res.PerSecond = float64(residual) / drops.Seconds
	}
	f := Finding{
		ID:       IDSynQueueOverflow,
		Severity: dropSeverity(res, passive, Warning),
		Title:    "SYNs dropped by the tcp_max_syn_backlog 3/4 rule" + titleListener(at) + " (syncookies off)",
		Listener: at.name(),
		Process:  at.process(),
		Key:      "net.ipv4.tcp_max_syn_backlog",
	}
	f.Evidence = append(f.Evidence,
		evDelta(drops, "ListenDrops rose"),
		evDelta(overflows, "not the accept queue"),
		evDelta(reqDrop, "not the listen backlog"),
		evValue(res.Source, residualMetric, float64(residual), fmt.Sprintf("%.1f/s dropped by branch F of tcp_conn_request(); no log line at the default level", res.PerSecond)),
		evValue(sysctlSource("net.ipv4.tcp_max_syn_backlog"), "net.ipv4.tcp_max_syn_backlog", float64(tmsb),
			fmt.Sprintf("with cookies off, unproven peers are dropped once the SYN queue holds more than %d", plateau)))
	if at != nil {
		f.Evidence = append(f.Evidence, listenerEvidence(at, fmt.Sprintf("plateau at the 3/4 mark (%d), below Send-Q", plateau+1))...)
	}
	f.Evidence = append(f.Evidence, packetEvidence(s)...)
	backlog := int64(0)
	for _, l := range s.Listeners() {
		backlog = max(backlog, int64(l.SendQ))
	}
	where := "a listener"
	if at != nil {
		where = at.Local
		backlog = int64(at.SendQ)
	}
	f.Summary = fmt.Sprintf("With tcp_syncookies=0 the kernel dropped %s SYNs %s on %s although its SYN queue was below its listen backlog: "+
		"once more than 3/4 of tcp_max_syn_backlog (%d) requests wait, SYNs from peers without a cached RTT are dropped. "+
		"Only ListenDrops counts them and nothing is logged, so this looks like a mystery drop.",
		perSecond(res), window(s), where, tmsb)
	f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.tcp_syncookies", "1",
		"the 3/4 rule applies only with cookies off; with cookies on a full queue sends cookies instead of dropping"))
	if backlog > 0 {
		want := int64(math.Ceil(float64(backlog) * 4 / 3))
		if want > tmsb {
			f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.tcp_max_syn_backlog", strconv.FormatInt(want, 10),
				fmt.Sprintf("only if cookies must stay off: at least 4/3 of the largest listen backlog (%d) keeps the 3/4 rule from dropping before the backlog is full", backlog)))
		}
	}
	return f, true
}

// cookieFinding is R-SYNQ-COOKIE: the SYN queue overflowed and cookies let
// clients in. SyncookiesRecv/SyncookiesSent tells legitimate load (real
// clients complete with their cookie) from a flood or unreachable clients
// (nothing comes back); 0.5 is the reference's heuristic.
func cookieFinding(s *Snapshot, doCookies, overflows Delta, culprits []*ListenerState, full bool) Finding {
	l := first(culprits)
	sent := s.Delta(tcpExtSyncookiesSent)
	recv := s.Delta(tcpExtSyncookiesRecv)
	failed := s.Delta(tcpExtSyncookiesFailed)
	f := Finding{
		ID:       IDSyncookiesActive,
		Severity: Warning,
		Title:    "SYN queue full" + titleListener(l) + ": SYN cookies are letting clients in",
		Listener: l.name(),
		Process:  l.process(),
	}
	if doCookies.OK {
		f.Evidence = append(f.Evidence, evDelta(doCookies, "SYNs that found the SYN queue full and were answered with a cookie"))
	}
	if sent.OK {
		f.Evidence = append(f.Evidence, evDelta(sent, ""), evDelta(recv, "valid cookies returned by clients that completed"))
	}
	if failed.Moved() {
		f.Evidence = append(f.Evidence, evDelta(failed, "ACKs with invalid cookies"))
	}
	for _, c := range culprits {
		note := "SYN queue at its cap; overflow goes to cookies"
		if !full {
			note = "the fullest SYN queue at capture time, below its cap"
		}
		f.Evidence = append(f.Evidence, listenerEvidence(c, note)...)
	}
	f.Evidence = append(f.Evidence, synFloodLog(s, 3)...)
	f.Evidence = append(f.Evidence, packetEvidence(s)...)

	where := "a listener"
	if l != nil {
		where = names(culprits)
	}
	legit := false
	ratio := -1.0
	if sent.Moved() {
		ratio = float64(recv.Delta) / float64(sent.Delta)
		legit = ratio >= 0.5
	}
	halfOpen := s.Packets != nil && s.Packets.HalfOpen > 0
	if doCookies.OK {
		f.Summary = fmt.Sprintf("The SYN queue of %s overflowed %s times %s and tcp_syncookies=1 answered the overflow with SYN cookies, "+
			"so new clients still connect. ", where, perSecond(doCookies), window(s))
	} else {
		f.Summary = fmt.Sprintf("At capture time the SYN queue of %s was at its cap; tcp_syncookies=1 answers the overflow with SYN cookies (one sample only: no counter deltas). ", where)
	}
	switch {
	case ratio >= 0 && legit && !halfOpen:
		f.Summary += fmt.Sprintf("%.0f%% of the cookies came back (SyncookiesRecv/SyncookiesSent): these are real clients, so this is a capacity problem: "+
			"cookies are a fallback, not meant to carry legitimate load, and clients without TCP timestamps lose window scaling and SACK.", ratio*100)
		f.Recommendations = append(f.Recommendations, backlogRecs(s, l,
			"Also add accept capacity (workers, SO_REUSEPORT). On 4.4 and later tcp_max_syn_backlog does not size the SYN queue.")...)
	default:
		if ratio >= 0 {
			f.Summary += fmt.Sprintf("Only %.0f%% of the cookies came back (SyncookiesRecv/SyncookiesSent): ", ratio*100)
		}
		f.Summary += "the requests holding the queue come from a flood or from clients that cannot complete the handshake. " +
			"Cookies are doing their job; keep them on and stop the bad clients upstream."
		if doCookies.Delta > sent.Delta && overflows.Moved() {
			f.Summary += " Some cookies were chosen and then dropped because the accept queue was full too (see accept-queue-overflow)."
		}
		f.Recommendations = append(f.Recommendations, note("network",
			"keep net.ipv4.tcp_syncookies=1; filter the half-open sources upstream (firewall, XDP, SYNPROXY) and check for spoofing; "+
				"do not raise tcp_max_syn_backlog: with cookies on it does not size the SYN queue"))
		if l != nil && l.SendQ < 1024 {
			f.Recommendations = append(f.Recommendations, backlogRecs(s, l, "A larger queue also lets more real clients hold state (window scaling, SACK) during a flood.")...)
		}
	}
	return f
}

// retransEvidence notes the SYN-ACK retransmit counters a SYN-queue flood
// inflates, so nobody reads them as data-path loss (section 1.5).
func retransEvidence(s *Snapshot) []Evidence {
	d := s.Delta(tcpExtTCPSynRetrans)
	if !d.Moved() {
		return nil
	}
	return []Evidence{evDelta(d, "SYN-ACK retransmits to clients that never answer; they also inflate Tcp RetransSegs and TCPTimeouts, which is not data-path loss")}
}

// residualMetric labels the ListenDrops that neither queue's own counter
// explains: ListenDrops - ListenOverflows - TCPReqQFullDrop.
const residualMetric = "TcpExt.ListenDrops - ListenOverflows - TCPReqQFullDrop"

// sysctlSource is a sysctl's member path.
func sysctlSource(name string) string { return bundle.SysctlPath(name) }

package analyze

import (
	"fmt"
	"strconv"
	"strings"
)

// ruleAcceptQueue is R-ACCEPTQ (section 7, rule 5): the application does not
// accept() fast enough. ListenOverflows counts SYNs dropped at SYN time (on
// 4.10 and later, sk_acceptq_is_full() in tcp_conn_request()) and third ACKs
// dropped at ACK time (tcp_v4_syn_recv_sock() exit_overflow); a listener
// with Recv-Q at Send-Q shows which. Stuck vs slow: Recv-Q pinned above
// Send-Q in every sample while PassiveOpens stands still.
func ruleAcceptQueue(s *Snapshot) []Finding {
	overflows := s.Delta(tcpExtListenOverflows)
	drops := s.Delta(tcpExtListenDrops)
	passive := s.Delta(tcpPassiveOpens)
	var fullLs []*ListenerState
	for _, l := range s.Listeners() {
		if acceptQueueFull(l) {
			fullLs = append(fullLs, l)
		}
	}
	if !overflows.Moved() && len(fullLs) == 0 {
		return nil
	}
	var out []Finding
	if len(fullLs) == 0 {
		out = append(out, acceptFinding(s, nil, overflows, drops, passive))
	}
	for _, l := range fullLs {
		out = append(out, acceptFinding(s, l, overflows, drops, passive))
	}
	return out
}

func acceptFinding(s *Snapshot, l *ListenerState, overflows, drops, passive Delta) Finding {
	f := Finding{
		ID:       IDAcceptQueueOverflow,
		Listener: l.name(),
		Process:  l.process(),
	}
	who := "the application"
	if l != nil && l.Comm != "" {
		who = fmt.Sprintf("%s (pid %d)", l.Comm, l.PID)
	}
	// Stuck (section 4): Recv-Q pinned at its maximum, unchanged, in every
	// sample, and ΔPassiveOpens ≈ 0. Since 4.10 a full accept queue drops
	// SYNs in tcp_conn_request(), so a listener creates a child only when an
	// accept() made room: PassiveOpens rising means some application took
	// connections. A slow one reads full at every sample too, because the
	// room it makes is refilled at once, so the pinned queue alone cannot
	// tell stuck from slow. PassiveOpens counts the whole namespace: when it
	// moved, this listener is called slow, never stuck, whoever accepted.
	pinned := false
	if l != nil && len(l.RecvQs) >= 2 {
		pinned = true
		for _, q := range l.RecvQs {
			if q <= l.SendQ || q != l.RecvQs[0] {
				pinned = false
			}
		}
	}
	accepted := passive.OK && (passive.PerSecond >= 1 || passive.Seconds == 0 && passive.Delta > 0)
	stuck := pinned && !accepted
	sev := Warning
	if overflows.Moved() {
		sev = dropSeverity(overflows, passive, Warning)
	}
	if pinned {
		sev = Critical
	}
	f.Severity = sev
	if stuck {
		f.Title = "Accept queue full" + titleListener(l) + ": " + who + " has stopped accepting connections"
	} else {
		f.Title = "Accept queue full" + titleListener(l) + ": " + who + " does not accept connections fast enough"
	}
	if overflows.OK {
		f.Evidence = append(f.Evidence,
			evDelta(overflows, "connections dropped because an accept queue was full (SYN-time and ACK-time; counts packets)"),
			evDelta(drops, "ListenDrops includes the overflows"))
	}
	if passive.OK {
		f.Evidence = append(f.Evidence, evDelta(passive, "connections the kernel completed into accept queues"))
	}
	if l != nil {
		f.Evidence = append(f.Evidence, listenerEvidence(l, "")...)
		f.Evidence = append(f.Evidence, evValue(l.Source, "listener "+l.Local+" recv_q by sample",
			float64(l.MaxRecvQ()), fmt.Sprintf("per sample %s (full above %d)", joinInts(l.RecvQs), l.SendQ)))
	}
	var sub []string
	if pa := s.Packets; pa != nil && pa.AckTimeOverflow > 0 {
		f.Evidence = append(f.Evidence, evValue("packets/sample.pcap", "ACK-time overflows", float64(pa.AckTimeOverflow),
			"the server re-sent its SYN-ACK after the client's ACK or data and never acknowledged the data"))
		sub = append(sub, fmt.Sprintf("The packet sample shows %d ACK-time overflows: the clients believe they are connected, "+
			"send their request and hang, because the server drops their ACK and keeps re-sending the SYN-ACK.", pa.AckTimeOverflow))
	}
	abort, _ := s.Sysctls.Int("net.ipv4.tcp_abort_on_overflow")
	embryonic := s.Delta(tcpExtEmbryonicRsts)
	if abort == 1 {
		f.Evidence = append(f.Evidence, evValue(sysctlSource("net.ipv4.tcp_abort_on_overflow"), "net.ipv4.tcp_abort_on_overflow", 1,
			"third ACKs that find the accept queue full are answered with a RST"))
		if embryonic.OK {
			f.Evidence = append(f.Evidence, evDelta(embryonic, "requests reset at ACK time"))
		}
		if outRsts := s.Delta(tcpOutRsts); outRsts.OK {
			f.Evidence = append(f.Evidence, evDelta(outRsts, ""))
		}
		if pa := s.Packets; pa != nil && pa.AbortRSTs > 0 {
			f.Evidence = append(f.Evidence, evValue("packets/sample.pcap", "RST right after the client's ACK", float64(pa.AbortRSTs), ""))
		}
		if embryonic.Moved() || s.Packets != nil && s.Packets.AbortRSTs > 0 {
			sub = append(sub, "tcp_abort_on_overflow=1 turns every overflow into a connection reset (ECONNRESET) for the client.")
		}
	}
	if cookies := s.Delta(tcpExtTCPReqQFullDoCookies); cookies.Moved() {
		if sent := s.Delta(tcpExtSyncookiesSent); sent.OK && cookies.Delta > sent.Delta {
			f.Evidence = append(f.Evidence, evValue(cookies.Source, "TcpExt.TCPReqQFullDoCookies - SyncookiesSent",
				float64(cookies.Delta-sent.Delta), "cookies chosen and then dropped because the accept queue was full: both queues were full"))
		}
	}
	if fdTight(s) {
		sub = append(sub, "The system is close to fs.file-max (see fd-exhaustion): accept() may be failing with ENFILE.")
	}
	if !s.Kernel.AtLeast(4, 10, 0) {
		sub = append(sub, fmt.Sprintf("On kernel %s (before 4.10) a SYN is dropped for a full accept queue only when young requests are waiting, "+
			"so most overflows show at ACK time.", s.Kernel))
	}
	where := "a listener"
	if l != nil {
		where = l.Local
	}
	switch {
	case stuck:
		f.Summary = fmt.Sprintf("The accept queue of %s stayed full (Recv-Q %s above Send-Q %d in every sample) while the kernel completed "+
			"almost no new connections: %s is not calling accept() at all (hung, deadlocked, or out of file descriptors). ",
			where, joinInts(l.RecvQs), l.SendQ, who)
	case overflows.OK:
		f.Summary = fmt.Sprintf("The kernel dropped %s connection attempts %s because the accept queue of %s was full (ListenOverflows). "+
			"The SYN queue is not the problem: %s takes connections off the queue too slowly. ", perSecond(overflows), window(s), where, who)
		if pinned {
			f.Summary += fmt.Sprintf("Its Recv-Q stayed at %d, above Send-Q %d, in every sample, but the kernel completed %s new connections "+
				"(PassiveOpens), which a full queue allows only after accept() made room: the application is alive, just slower than its clients. ",
				l.RecvQs[0], l.SendQ, perSecond(passive))
		}
	default:
		f.Summary = fmt.Sprintf("The accept queue of %s was full at capture time (Recv-Q %d, Send-Q %d): %s takes connections off the queue too slowly. ",
			where, l.MaxRecvQ(), l.SendQ, who)
	}
	for _, x := range sub {
		f.Summary += x + " "
	}
	f.Summary += "Restarting the service empties the queue, which is why a restart seems to fix it."
	f.Recommendations = append(f.Recommendations, note("app", fmt.Sprintf(
		"fix %s's accept loop: more workers or threads, never block in the acceptor, SO_REUSEPORT listeners, "+
			"and check for EMFILE (compare /proc/PID/limits with the count in /proc/PID/fd)", who)))
	if abort == 1 {
		f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.tcp_abort_on_overflow", "0",
			"with 0 the kernel drops the third ACK and retries with SYN-ACK retransmits, so a short burst costs the client a delay instead of a reset"))
	}
	f.Recommendations = append(f.Recommendations, backlogRecs(s, l,
		"A larger backlog only absorbs bursts and adds queueing latency; it does not make a slow acceptor faster.")...)
	return f
}

// joinInts spells a per-sample series for people: "9, 9, 9".
func joinInts[T ~int | ~uint32](xs []T) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatInt(int64(x), 10)
	}
	return strings.Join(parts, ", ")
}

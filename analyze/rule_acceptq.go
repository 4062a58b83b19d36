package analyze

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ruleAcceptQueue finds accept-queue-overflow: the application does not
// accept() fast enough. ListenOverflows counts SYNs dropped at SYN time (on
// 4.10 and later, sk_acceptq_is_full() in tcp_conn_request()) and third ACKs
// dropped at ACK time (tcp_v4_syn_recv_sock() exit_overflow); a listener
// with Recv-Q at Send-Q shows which. Stuck vs slow: Recv-Q pinned above
// Send-Q in every sample while PassiveOpens stands still.
//
// With per-socket drops (each listener's own sk_drops in two samples or
// more), the listeners named are those whose own counter moved, one finding
// per socket, so an SO_REUSEPORT group's socket that stopped accepting is
// named apart from its healthy siblings, and a queue that overflowed only
// between samples is still found; a listener whose counter did not move gets
// no finding unless its queue stayed over full in every sample (nothing
// was dropped only because no client came; the next one will be).
func ruleAcceptQueue(s *Snapshot) []Finding {
	overflows := s.Delta(tcpExtListenOverflows)
	per := s.ReconcileListenDrops()
	fullLs, perSocket := s.acceptDropCulprits(per)
	if perSocket && !overflows.Moved() {
		fullLs = nil
	}
	if perSocket {
		for _, l := range s.Listeners() {
			if acceptQueuePinned(l) && !slices.ContainsFunc(fullLs, l.sameSocket) {
				fullLs = append(fullLs, l)
			}
		}
	}
	if !perSocket {
		for _, l := range s.Listeners() {
			if acceptQueueFull(l) {
				fullLs = append(fullLs, l)
			}
		}
	}
	if !overflows.Moved() && len(fullLs) == 0 {
		return nil
	}
	if len(fullLs) == 0 {
		fullLs = []*ListenerState{nil}
	}
	var ds []*AcceptQueueOverflow
	for _, l := range fullLs {
		d := diagnoseAcceptQueue(s, l, overflows)
		d.PerSocket = per
		ds = append(ds, d)
	}
	return findings(s, ds...)
}

// AcceptState tells a listener that stopped accepting from one that
// accepts too slowly.
type AcceptState int

// Accept states.
const (
	// AcceptSlow: the application accepts, more slowly than clients come.
	AcceptSlow AcceptState = iota
	// AcceptStuck: Recv-Q pinned above Send-Q, unchanged, in every sample,
	// and the kernel completed almost no connection: nothing calls
	// accept().
	AcceptStuck
	// AcceptNoFiles: the owning process holds as many descriptors as its
	// RLIMIT_NOFILE allows, so accept() fails with EMFILE.
	AcceptNoFiles
)

// AcceptQueueOverflow diagnoses accept-queue-overflow: connections dropped
// (or reset) because an accept queue was full.
type AcceptQueueOverflow struct {
	Severity Severity
	// Listener is the listener whose accept queue was full; nil when only
	// the namespace's ListenOverflows moved.
	Listener                             *ListenerState
	Overflows, ListenDrops, PassiveOpens Delta
	// Pinned is Recv-Q above Send-Q and unchanged in every sample (two or
	// more); State says whether the application was accepting meanwhile.
	Pinned bool
	State  AcceptState
	// AckTimeOverflows is the packet sample's third ACKs dropped for a
	// full queue (the server re-sent its SYN-ACK after the client's ACK).
	AckTimeOverflows int
	// AbortOnOverflow is net.ipv4.tcp_abort_on_overflow=1; Resets is true
	// when clients were reset for it (EmbryonicRsts moved, or the packet
	// sample shows the RSTs).
	AbortOnOverflow bool
	Resets          bool
	EmbryonicRsts   Delta
	OutRsts         Delta
	AbortRSTs       int
	// BothQueuesFull counts cookies chosen and then dropped because the
	// accept queue was full (TCPReqQFullDoCookies - SyncookiesSent), 0 when
	// none.
	BothQueuesFull int64
	BothSource     string
	// FDTight is fs.file-nr at 90% of file-max: accept() may fail with
	// ENFILE.
	FDTight bool
	// Before410 is a kernel before 4.10, where a full accept queue drops a
	// SYN only when young requests wait, so most overflows show at ACK time.
	Before410 bool
	Backlog   BacklogAdvice
	// Process is the listener's process as the bundle's processes.json
	// and proc/PID files show it: threads, open files, RLIMIT_NOFILE; nil
	// when the bundle lacks it.
	Process *ProcessState
	// Rates compares what entered the accept queue with what left it.
	Rates AcceptRates
	// Waits groups the process's threads by state and wait channel.
	Waits []ThreadWait
	// PerSocket is the listeners' own drop counters against ListenDrops;
	// nil with fewer than two samples. Listener's own movement is
	// Listener.Drops.
	PerSocket *DropReconciliation
}

func diagnoseAcceptQueue(s *Snapshot, l *ListenerState, overflows Delta) *AcceptQueueOverflow {
	d := &AcceptQueueOverflow{Listener: l, Overflows: overflows,
		ListenDrops: s.Delta(tcpExtListenDrops), PassiveOpens: s.Delta(tcpPassiveOpens)}
	// Stuck: Recv-Q pinned at its maximum, unchanged, in every
	// sample, and ΔPassiveOpens ≈ 0. Since 4.10 a full accept queue drops
	// SYNs in tcp_conn_request(), so a listener creates a child only when an
	// accept() made room: PassiveOpens rising means some application took
	// connections. A slow one reads full at every sample too, because the
	// room it makes is refilled at once, so the pinned queue alone cannot
	// tell stuck from slow. PassiveOpens counts the whole namespace: when it
	// moved, this listener is called slow, never stuck, whoever accepted.
	if l != nil && len(l.RecvQs) >= 2 {
		d.Pinned = true
		for _, q := range l.RecvQs {
			if q <= l.SendQ || q != l.RecvQs[0] {
				d.Pinned = false
			}
		}
	}
	p := d.PassiveOpens
	accepted := p.OK && (p.PerSecond >= 1 || p.Seconds == 0 && p.Delta > 0)
	// The sockets of an SO_REUSEPORT group share the namespace's
	// PassiveOpens, and the group exists so that its siblings accept: their
	// children say nothing about this socket. Its own pinned queue is the
	// evidence there is.
	if l != nil && l.ReusePort {
		accepted = false
	}
	if d.Pinned && !accepted {
		d.State = AcceptStuck
	}
	d.Severity = Warning
	if overflows.Moved() {
		d.Severity = dropSeverity(overflows, d.PassiveOpens, Warning)
	}
	if d.Pinned {
		d.Severity = Critical
	}
	if pa := s.Packets; pa != nil {
		d.AckTimeOverflows = pa.AckTimeOverflow
	}
	abort, _ := s.Sysctls.Int("net.ipv4.tcp_abort_on_overflow")
	d.AbortOnOverflow = abort == 1
	if d.AbortOnOverflow {
		d.EmbryonicRsts, d.OutRsts = s.Delta(tcpExtEmbryonicRsts), s.Delta(tcpOutRsts)
		if s.Packets != nil {
			d.AbortRSTs = s.Packets.AbortRSTs
		}
		d.Resets = d.EmbryonicRsts.Moved() || d.AbortRSTs > 0
	}
	if cookies := s.Delta(tcpExtTCPReqQFullDoCookies); cookies.Moved() {
		if sent := s.Delta(tcpExtSyncookiesSent); sent.OK && cookies.Delta > sent.Delta {
			d.BothQueuesFull, d.BothSource = cookies.Delta-sent.Delta, cookies.Source
		}
	}
	d.FDTight = fdTight(s)
	d.Before410 = !s.Kernel.AtLeast(4, 10, 0)
	d.Backlog = adviseBacklog(s, l)
	d.explain(s)
	return d
}

func (d *AcceptQueueOverflow) render(s *Snapshot) Finding {
	l := d.Listener
	f := listenerFinding(IDAcceptQueueOverflow, d.Severity, l)
	who := "the application"
	if l != nil && l.Comm != "" {
		who = fmt.Sprintf("%s (pid %d)", l.Comm, l.PID)
	}
	stuck := d.State == AcceptStuck
	if d.State == AcceptNoFiles {
		f.Title = "Accept queue full" + titleListener(l) + ": " + who + " is out of file descriptors (accept() fails with EMFILE)"
	} else if stuck {
		f.Title = "Accept queue full" + titleListener(l) + ": " + who + " has stopped accepting connections"
	} else {
		f.Title = "Accept queue full" + titleListener(l) + ": " + who + " does not accept connections fast enough"
	}
	if d.Overflows.OK {
		f.Evidence = append(f.Evidence,
			evDelta(d.Overflows, "connections dropped because an accept queue was full (SYN-time and ACK-time; counts packets)"),
			evDelta(d.ListenDrops, "ListenDrops includes the overflows"))
	}
	if d.PassiveOpens.OK {
		f.Evidence = append(f.Evidence, evDelta(d.PassiveOpens, "connections the kernel completed into accept queues"))
	}
	f.Evidence = append(f.Evidence, d.PerSocket.Evidence()...)
	if l != nil {
		f.Evidence = append(f.Evidence, listenerEvidence(l, "")...)
		f.Evidence = append(f.Evidence, evValue(l.Source, "listener "+l.Local+" recv_q by sample",
			float64(l.MaxRecvQ()), fmt.Sprintf("per sample %s (full above %d)", joinInts(l.RecvQs), l.SendQ)))
	}
	f.Evidence = append(f.Evidence, d.whyEvidence()...)
	var sub []string
	if d.AckTimeOverflows > 0 {
		f.Evidence = append(f.Evidence, evValue("packets/sample.pcap", "ACK-time overflows", float64(d.AckTimeOverflows),
			"the server re-sent its SYN-ACK after the client's ACK or data and never acknowledged the data"))
		sub = append(sub, fmt.Sprintf("The packet sample shows %d ACK-time overflows: the clients believe they are connected, "+
			"send their request and hang, because the server drops their ACK and keeps re-sending the SYN-ACK.", d.AckTimeOverflows))
	}
	if d.AbortOnOverflow {
		f.Evidence = append(f.Evidence, evValue(sysctlSource("net.ipv4.tcp_abort_on_overflow"), "net.ipv4.tcp_abort_on_overflow", 1,
			"third ACKs that find the accept queue full are answered with a RST"))
		if d.EmbryonicRsts.OK {
			f.Evidence = append(f.Evidence, evDelta(d.EmbryonicRsts, "requests reset at ACK time"))
		}
		if d.OutRsts.OK {
			f.Evidence = append(f.Evidence, evDelta(d.OutRsts, ""))
		}
		if d.AbortRSTs > 0 {
			f.Evidence = append(f.Evidence, evValue("packets/sample.pcap", "RST right after the client's ACK", float64(d.AbortRSTs), ""))
		}
		if d.Resets {
			sub = append(sub, "tcp_abort_on_overflow=1 turns every overflow into a connection reset (ECONNRESET) for the client.")
		}
	}
	if d.BothQueuesFull > 0 {
		f.Evidence = append(f.Evidence, evValue(d.BothSource, "TcpExt.TCPReqQFullDoCookies - SyncookiesSent",
			float64(d.BothQueuesFull), "cookies chosen and then dropped because the accept queue was full: both queues were full"))
	}
	if d.FDTight {
		sub = append(sub, "The system is close to fs.file-max (see fd-exhaustion): accept() may be failing with ENFILE.")
	}
	if d.Before410 {
		sub = append(sub, fmt.Sprintf("On kernel %s (before 4.10) a SYN is dropped for a full accept queue only when young requests are waiting, "+
			"so most overflows show at ACK time.", s.Kernel))
	}
	where := "a listener"
	if l != nil {
		where = l.Local
	}
	switch {
	case d.State == AcceptNoFiles:
		f.Summary = fmt.Sprintf("The accept queue of %s was full (Recv-Q %s, Send-Q %d; %s attempts turned away %s), not because %s is slow: ",
			where, joinInts(l.RecvQs), l.SendQ, perSecond(d.Overflows), window(s), who)
	case stuck && l.ReusePort:
		f.Summary = fmt.Sprintf("The accept queue of %s stayed full (Recv-Q %s above Send-Q %d in every sample, unchanged). It is one socket "+
			"of an SO_REUSEPORT group: the kernel hashes each client to one socket of the group, and the connections hashed to this one "+
			"wait or are dropped while its siblings serve theirs, so %s is not calling accept() on it (hung, deadlocked, or out of file descriptors). ",
			where, joinInts(l.RecvQs), l.SendQ, who)
	case stuck:
		f.Summary = fmt.Sprintf("The accept queue of %s stayed full (Recv-Q %s above Send-Q %d in every sample) while the kernel completed "+
			"almost no new connections: %s is not calling accept() at all (hung, deadlocked, or out of file descriptors). ",
			where, joinInts(l.RecvQs), l.SendQ, who)
	case d.Overflows.OK:
		f.Summary = fmt.Sprintf("The kernel dropped %s connection attempts %s because the accept queue of %s was full (ListenOverflows). "+
			"The SYN queue is not the problem: %s takes connections off the queue too slowly. ", perSecond(d.Overflows), window(s), where, who)
		if d.Pinned {
			f.Summary += fmt.Sprintf("Its Recv-Q stayed at %d, above Send-Q %d, in every sample, but the kernel completed %s new connections "+
				"(PassiveOpens), which a full queue allows only after accept() made room: the application is alive, just slower than its clients. ",
				l.RecvQs[0], l.SendQ, perSecond(d.PassiveOpens))
		}
	default:
		f.Summary = fmt.Sprintf("The accept queue of %s was full at capture time (Recv-Q %d, Send-Q %d): %s takes connections off the queue too slowly. ",
			where, l.MaxRecvQ(), l.SendQ, who)
	}
	f.Summary += d.whySummary()
	for _, x := range sub {
		f.Summary += x + " "
	}
	f.Summary += "Restarting the service empties the queue, which is why a restart seems to fix it."
	f.Recommendations = append(f.Recommendations, d.whyRecommendations(s, who, note("app", fmt.Sprintf(
		"fix %s's accept loop: more workers or threads, never block in the acceptor, SO_REUSEPORT listeners, "+
			"and check for EMFILE (compare /proc/PID/limits with the count in /proc/PID/fd)", who)))...)
	if d.AbortOnOverflow {
		f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.tcp_abort_on_overflow", "0",
			"with 0 the kernel drops the third ACK and retries with SYN-ACK retransmits, so a short burst costs the client a delay instead of a reset"))
	}
	if d.State != AcceptNoFiles {
		// Out of descriptors, a larger queue only holds more connections
		// that accept() cannot take.
		f.Recommendations = append(f.Recommendations, d.Backlog.recommendations(s,
			"A larger backlog only absorbs bursts and adds queueing latency; it does not make a slow acceptor faster.")...)
	}
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

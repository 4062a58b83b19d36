package analyze

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/snapdiag/snapdiag/bundle"
)

// ruleSynQueue tells apart three SYN-queue look-alikes: a full SYN queue
// with cookies off (TCPReqQFullDrop), the cookies-off 3/4
// rule of tcp_max_syn_backlog (ListenDrops alone, SYN-RECV below Send-Q),
// and a full SYN queue with cookies on (TCPReqQFullDoCookies). Mode 2 is
// left to the sysctl audit: there the cookie counters move for every SYN.
func ruleSynQueue(s *Snapshot) []Finding {
	var ds []Diagnosis
	if d := diagnoseSynDrop(s); d != nil {
		ds = append(ds, d)
	}
	if d := diagnoseThreeQuarter(s); d != nil {
		ds = append(ds, d)
	}
	if d := diagnoseCookieOverflow(s); d != nil {
		ds = append(ds, d)
	}
	return findings(s, ds...)
}

// SynQueueDrop diagnoses syn-queue-overflow with cookies off: SYNs that
// found the SYN queue full were dropped (TCPReqQFullDrop), or, with one
// sample only, the queue was at its cap with cookies off.
type SynQueueDrop struct {
	Severity Severity
	// Listeners are the listeners whose SYN queue was at its cap (AtCap),
	// else the one with the fullest queue; empty when none had requests.
	Listeners []*ListenerState
	AtCap     bool
	// Drops is TCPReqQFullDrop; not OK when the bundle has one sample and
	// the finding rests on the queue's state alone.
	Drops        Delta
	ListenDrops  Delta
	PassiveOpens Delta
	// HalfOpen is the packet sample's half-open handshakes (0 without one);
	// HalfOpenEst scales it by the sample's sampling rate (equal to it when
	// the capture kept everything), and Sampled says it is an estimate.
	HalfOpen    int
	HalfOpenEst int
	Sampled     bool
	// Backlog is the listen-backlog remedy that goes with cookies on.
	Backlog BacklogAdvice
	// Model is the SYN queue of the (first) listener named; NoCookies the
	// remedy sized from it for operators who keep cookies off.
	Model     *SynModel
	NoCookies NoCookiesPlan
	// PerSocket is the listeners' own drop counters against ListenDrops;
	// nil with fewer than two samples. When it has per-socket drops,
	// Listeners are the sockets whose own counter moved.
	PerSocket *DropReconciliation
}

func diagnoseSynDrop(s *Snapshot) *SynQueueDrop {
	cookies, _ := syncookies(s)
	d := &SynQueueDrop{
		Drops:        s.Delta(tcpExtTCPReqQFullDrop),
		ListenDrops:  s.Delta(tcpExtListenDrops),
		PassiveOpens: s.Delta(tcpPassiveOpens),
	}
	// With one sample there are no deltas, but a queue at its cap with
	// cookies off drops every further SYN.
	oneSample := cookies == 0 && len(s.Samples) < 2
	if !d.Drops.Moved() && !oneSample {
		return nil
	}
	d.PerSocket = s.ReconcileListenDrops()
	var perSocket bool
	if d.Listeners, d.AtCap, perSocket = s.synDropCulprits(d.PerSocket); !perSocket {
		d.Listeners, d.AtCap = s.synQueueCulprits()
	}
	if !d.Drops.Moved() && !d.AtCap {
		return nil
	}
	d.Severity = dropSeverity(d.Drops, d.PassiveOpens, Warning)
	if s.Packets != nil {
		d.HalfOpen, d.Sampled = s.Packets.HalfOpen, s.Packets.Sampled
		d.HalfOpenEst = max(int(math.Round(s.Packets.HalfOpenEst)), d.HalfOpen)
	}
	d.Backlog = adviseBacklog(s, first(d.Listeners))
	d.Model = modelSynQueue(s, first(d.Listeners))
	d.NoCookies = planWithoutCookies(s, d.Model)
	return d
}

func (d *SynQueueDrop) render(s *Snapshot) Finding {
	l := first(d.Listeners)
	f := listenerFinding(IDSynQueueOverflow, d.Severity, l)
	f.Title = "SYN queue full" + titleListener(l) + ": new connections are being dropped"
	if d.Drops.OK {
		f.Evidence = append(f.Evidence,
			evDelta(d.Drops, "SYNs dropped because the SYN queue was full and tcp_syncookies=0 (counts packets: every SYN retransmit is dropped again)"),
			evDelta(d.ListenDrops, "ListenDrops includes these drops"))
	}
	f.Evidence = append(f.Evidence, evValue(sysctlSource("net.ipv4.tcp_syncookies"), "net.ipv4.tcp_syncookies", 0, "cookies off: a full SYN queue drops SYNs"))
	where := "a listener"
	if l != nil {
		where = l.Local
		if len(d.Listeners) > 1 {
			where = names(d.Listeners)
		}
		for _, c := range d.Listeners {
			f.Evidence = append(f.Evidence, listenerEvidence(c, culpritNote(s, c, d.AtCap, "SYN queue at its cap (the listen backlog)"))...)
		}
	}
	f.Evidence = append(f.Evidence, d.PerSocket.Evidence()...)
	f.Evidence = append(f.Evidence, retransEvidence(s)...)
	f.Evidence = append(f.Evidence, synFloodLog(s, 3)...)
	f.Evidence = append(f.Evidence, packetEvidence(s)...)
	if d.Drops.OK {
		f.Summary = fmt.Sprintf("The SYN queue of %s was full and tcp_syncookies is 0, so the kernel dropped %s SYNs %s "+
			"(TCPReqQFullDrop). Clients see connect delays of 1-3 s or more, or time out. ",
			where, perSecond(d.Drops), window(s))
	} else {
		f.Summary = fmt.Sprintf("At capture time the SYN queue of %s was at its cap and tcp_syncookies is 0, so every further SYN is dropped "+
			"(one sample only: no counter deltas). ", where)
	}
	f.Summary += "The daemon itself may be healthy: half-open requests from clients that never complete the handshake hold the queue " +
		"until their SYN-ACK retries expire. Turning SYN cookies on lets new clients in whatever the queue holds."
	switch {
	case d.HalfOpen > 0 && d.Sampled:
		f.Summary += fmt.Sprintf(" The packet sample shows %d half-open handshakes, about %d in the traffic it sampled (see half-open-clients).",
			d.HalfOpen, d.HalfOpenEst)
	case d.HalfOpen > 0:
		f.Summary += fmt.Sprintf(" The packet sample shows %d half-open handshakes (see half-open-clients).", d.HalfOpen)
	}
	cookiesWhy := "with cookies on, a full SYN queue answers with a stateless SYN cookie instead of dropping the SYN, so legitimate clients get in during a flood of half-open requests"
	if m := d.Model; m != nil && m.Arrival > 0 {
		cookiesWhy += fmt.Sprintf(": the SYN-queue model puts %.1f half-open requests/s (%s) on a queue of %d slots, each held %.0f s, "+
			"%.0f slots needed; cookies need none, whatever the rate", m.Arrival, m.From, m.Cap, m.Hold, m.Needed)
	}
	f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.tcp_syncookies", "1", cookiesWhy))
	f.Recommendations = append(f.Recommendations, d.Backlog.recommendations(s,
		"A larger SYN queue absorbs bursts; on 4.4 and later its cap is this backlog (clamped by somaxconn), not tcp_max_syn_backlog.")...)
	f.Recommendations = append(f.Recommendations, withoutCookies(s, d.Model, d.NoCookies)...)
	return f
}

// withoutCookies renders the remedy that holds with tcp_syncookies=0 kept,
// each recommendation with the model's figures that size it, all in plan
// "without-cookies". It has none when cookies are on in the bundle: nobody
// is keeping them off, and with cookies on tcp_max_syn_backlog must never be
// raised (on 4.4 and later it does not size the SYN queue).
func withoutCookies(s *Snapshot, m *SynModel, p NoCookiesPlan) []Recommendation {
	if m.Syncookies != 0 {
		return nil
	}
	basis := fmt.Sprintf("the SYN-queue model: %.1f half-open requests/s (%s) arrive", m.Arrival, m.From)
	var recs []Recommendation
	if p.SynackRetries < m.SynackRetries {
		recs = append(recs, sysctlRec(s, "net.ipv4.tcp_synack_retries", strconv.Itoa(p.SynackRetries), fmt.Sprintf(
			"only if cookies must stay off: with %d SYN-ACK retries an unanswered request holds its SYN-queue slot for %.0f s; "+
				"with %d, %.0f s (the kernel's own floor when it prunes a crowded queue), so %s hold %.0f slots instead of %.0f",
			m.SynackRetries, SynHold(m.SynackRetries), p.SynackRetries, p.Hold, basis, p.Slots, m.Arrival*SynHold(m.SynackRetries))))
	}
	backlog := strconv.FormatInt(p.Backlog, 10)
	sizing := fmt.Sprintf("%s and hold %.0f s each: %.0f slots, doubled so the queue stays at most half full "+
		"(where the kernel never prunes) gives a backlog of %s", basis, p.Hold, p.Slots, backlog)
	if p.Somaxconn > 0 {
		recs = append(recs, sysctlRec(s, "net.core.somaxconn", strconv.FormatInt(p.Somaxconn, 10),
			"only if cookies must stay off: somaxconn clamps the listen backlog at listen() time; "+sizing))
	}
	if p.MaxSynBacklog > 0 {
		recs = append(recs, sysctlRec(s, "net.ipv4.tcp_max_syn_backlog", strconv.FormatInt(p.MaxSynBacklog, 10), fmt.Sprintf(
			"only if cookies must stay off: with cookies off SYNs of unproven peers are dropped once more than 3/4 of "+
				"tcp_max_syn_backlog requests wait, so it must be at least 4/3 of the backlog (%s) for the queue to fill", backlog)))
	}
	a := adviseBacklogTo(s, m.Listener, p.Backlog)
	why := "Only if cookies must stay off: " + sizing + "."
	if !p.Holds {
		why += " Even one retry needs more than 65535 slots: no backlog holds this flood without cookies; filter it upstream."
	}
	recs = append(recs, a.appRecommendation(why))
	for i := range recs {
		recs[i].Plan = PlanWithoutCookies
	}
	return recs
}

// ThreeQuarterDrop diagnoses syn-queue-overflow by the 3/4 rule: with
// cookies off, tcp_conn_request() drops SYNs of unproven peers once the SYN
// queue holds more than tcp_max_syn_backlog - tcp_max_syn_backlog/4
// requests (branch F), counting only ListenDrops. The residual drops are
// told apart from ICMP-aborted requests (unreachable-clients) by a listener
// at that plateau below its Send-Q, or by ICMP unreachables not moving.
type ThreeQuarterDrop struct {
	Severity Severity
	// Listener sits at the plateau below its Send-Q; nil when none does
	// (the drops are then attributed by elimination).
	Listener *ListenerState
	// Residual is ListenDrops - ListenOverflows - TCPReqQFullDrop, per
	// second over the drops' interval.
	Residual                               Delta
	ListenDrops, ListenOverflows, ReqQDrop Delta
	// MaxSynBacklog is net.ipv4.tcp_max_syn_backlog; Plateau is the number
	// of waiting requests above which unproven peers are dropped.
	MaxSynBacklog int64
	Plateau       int
	// PerSocket is the listeners' own drop counters against ListenDrops
	// (nil with fewer than two samples); without a listener at the plateau,
	// Listener is the one whose own counter rose most.
	PerSocket *DropReconciliation
	// Backlog is the listen backlog the 3/4 mark must clear: the
	// plateau listener's, else the largest. RaiseMaxSynBacklogTo is 4/3 of
	// it when tcp_max_syn_backlog is below that, else 0.
	Backlog              int64
	RaiseMaxSynBacklogTo int64
}

func diagnoseThreeQuarter(s *Snapshot) *ThreeQuarterDrop {
	cookies, _ := syncookies(s)
	drops := s.Delta(tcpExtListenDrops)
	if cookies != 0 || !drops.OK {
		return nil
	}
	overflows, reqDrop := s.Delta(tcpExtListenOverflows), s.Delta(tcpExtTCPReqQFullDrop)
	res, ok := residualDrops(drops, overflows, reqDrop)
	if !ok {
		return nil
	}
	tmsb, haveTmsb := s.Sysctls.Int("net.ipv4.tcp_max_syn_backlog")
	d := &ThreeQuarterDrop{Residual: res, ListenDrops: drops, ListenOverflows: overflows, ReqQDrop: reqDrop,
		MaxSynBacklog: tmsb, Plateau: int(tmsb - tmsb>>2)}
	d.PerSocket = s.ReconcileListenDrops()
	listeners := s.Listeners()
	// The 3/4 rule can drop a SYN only when its mark lies below a
	// listener's backlog: otherwise the backlog fills first and the drops
	// are TCPReqQFullDrop, not this.
	bites := func(l *ListenerState) bool { return haveTmsb && int64(d.Plateau) < int64(l.SendQ) }
	for _, l := range listeners {
		if haveTmsb && l.SocketSynRecv() >= d.Plateau && l.SocketSynRecv() < int(l.SendQ) {
			if !d.PerSocket.PerSocket() || l.Drops.Moved() {
				d.Listener = l
				break
			}
		}
	}
	if len(listeners) > 0 && !slices.ContainsFunc(listeners, bites) {
		return nil
	}
	// ICMP-aborted requests count in ListenDrops and on the socket too
	// (tcp_req_err() calls tcp_listendrop()), so without a listener at the
	// plateau, moving unreachables explain the residual, not this rule.
	if d.Listener == nil && s.Delta(icmpOutDestUnreachs).Moved() {
		return nil // unreachable-clients explains it
	}
	// A socket whose own counter moved, but only one whose backlog lies
	// above the 3/4 mark: below it, the backlog fills first.
	if ls, _, ok := s.synDropCulprits(d.PerSocket); ok && d.Listener == nil {
		if i := slices.IndexFunc(ls, bites); i >= 0 {
			d.Listener = ls[i]
		}
	}
	if d.Listener == nil && !s.Kernel.AtLeast(4, 4, 0) {
		return nil
	}
	d.Severity = dropSeverity(res, s.Delta(tcpPassiveOpens), Warning)
	for _, l := range listeners {
		d.Backlog = max(d.Backlog, int64(l.SendQ))
	}
	if d.Listener != nil {
		d.Backlog = int64(d.Listener.SendQ)
	}
	if d.Backlog > 0 {
		if want := int64(math.Ceil(float64(d.Backlog) * 4 / 3)); want > tmsb {
			d.RaiseMaxSynBacklogTo = want
		}
	}
	return d
}

// residualDrops is ListenDrops less the drops the two queue counters
// explain, and whether any is left.
func residualDrops(drops, overflows, reqDrop Delta) (Delta, bool) {
	residual := drops.Delta - overflows.Delta - reqDrop.Delta
	if residual <= 0 {
		return Delta{}, false
	}
	res := Delta{Delta: residual, Last: residual, OK: true, Seconds: drops.Seconds, Source: drops.Source}
	if drops.Seconds > 0 {
		res.PerSecond = float64(residual) / drops.Seconds
	}
	return res, true
}

func (d *ThreeQuarterDrop) render(s *Snapshot) Finding {
	at := d.Listener
	f := listenerFinding(IDSynQueueOverflow, d.Severity, at)
	f.Title = "SYNs dropped by the tcp_max_syn_backlog 3/4 rule" + titleListener(at) + " (syncookies off)"
	f.Key = "net.ipv4.tcp_max_syn_backlog"
	f.Evidence = append(f.Evidence,
		evDelta(d.ListenDrops, "ListenDrops rose"),
		evDelta(d.ListenOverflows, "not the accept queue"),
		evDelta(d.ReqQDrop, "not the listen backlog"),
		evValue(d.Residual.Source, residualMetric, float64(d.Residual.Delta), fmt.Sprintf("%.1f/s dropped by branch F of tcp_conn_request(); no log line at the default level", d.Residual.PerSecond)),
		evValue(sysctlSource("net.ipv4.tcp_max_syn_backlog"), "net.ipv4.tcp_max_syn_backlog", float64(d.MaxSynBacklog),
			fmt.Sprintf("with cookies off, unproven peers are dropped once the SYN queue holds more than %d", d.Plateau)))
	if at != nil {
		f.Evidence = append(f.Evidence, listenerEvidence(at, fmt.Sprintf("plateau at the 3/4 mark (%d), below Send-Q", d.Plateau+1))...)
	}
	f.Evidence = append(f.Evidence, d.PerSocket.Evidence()...)
	f.Evidence = append(f.Evidence, packetEvidence(s)...)
	where := "a listener"
	if at != nil {
		where = at.Local
	}
	f.Summary = fmt.Sprintf("With tcp_syncookies=0 the kernel dropped %s SYNs %s on %s although its SYN queue was below its listen backlog: "+
		"once more than 3/4 of tcp_max_syn_backlog (%d) requests wait, SYNs from peers without a cached RTT are dropped. "+
		"Only ListenDrops counts them and nothing is logged, so this looks like a mystery drop.",
		perSecond(d.Residual), window(s), where, d.MaxSynBacklog)
	f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.tcp_syncookies", "1",
		"the 3/4 rule applies only with cookies off; with cookies on a full queue sends cookies instead of dropping"))
	if d.RaiseMaxSynBacklogTo > 0 {
		r := sysctlRec(s, "net.ipv4.tcp_max_syn_backlog", strconv.FormatInt(d.RaiseMaxSynBacklogTo, 10),
			fmt.Sprintf("only if cookies must stay off: at least 4/3 of the largest listen backlog (%d) keeps the 3/4 rule from dropping before the backlog is full", d.Backlog))
		r.Plan = PlanWithoutCookies
		f.Recommendations = append(f.Recommendations, r)
	}
	return f
}

// CookieVerdict says who the SYNs that overflowed into cookies came from.
type CookieVerdict int

// Cookie verdicts.
const (
	// CookieFlood: few cookies came back (SyncookiesRecv/SyncookiesSent
	// below 0.5: real clients return nearly every cookie, a flood of
	// spoofed or broken ones almost none), or the packet sample shows
	// half-open handshakes: a flood, or clients that cannot complete.
	CookieFlood CookieVerdict = iota
	// CookieLegitimateLoad: most cookies came back from clients that
	// completed: real load beyond the queue's capacity.
	CookieLegitimateLoad
)

// CookieOverflow diagnoses syncookies-active: the SYN
// queue overflowed and tcp_syncookies=1 let clients in with cookies.
type CookieOverflow struct {
	Severity Severity
	// Listeners and AtCap are as in SynQueueDrop.
	Listeners []*ListenerState
	AtCap     bool
	// DoCookies is TCPReqQFullDoCookies; not OK with one sample.
	DoCookies, Sent, Recv, Failed, ListenOverflows Delta
	// ReturnRatio is SyncookiesRecv/SyncookiesSent, -1 when no cookie was
	// sent during the capture.
	ReturnRatio float64
	Verdict     CookieVerdict
	// AcceptQueueFull is true when more cookies were chosen than sent and
	// the accept queue overflowed: both queues were full.
	AcceptQueueFull bool
	// Backlog is the listen-backlog remedy; nil when none is advised (a
	// flood on a listener whose backlog is already 1024 or more).
	Backlog *BacklogAdvice
	// PerSocket is the listeners' own drop counters against ListenDrops
	// (nil with fewer than two samples). A SYN answered with a cookie is
	// not a drop, so these counters do not name the listener here: the
	// queues at the samples do.
	PerSocket *DropReconciliation
}

func diagnoseCookieOverflow(s *Snapshot) *CookieOverflow {
	cookies, _ := syncookies(s)
	d := &CookieOverflow{Severity: Warning, DoCookies: s.Delta(tcpExtTCPReqQFullDoCookies), ReturnRatio: -1}
	if cookies != 1 || !d.DoCookies.Moved() && len(s.Samples) >= 2 {
		return nil
	}
	d.Listeners, d.AtCap = s.synQueueCulprits()
	if !d.DoCookies.Moved() && !d.AtCap {
		return nil // one sample, and no queue at its cap
	}
	d.PerSocket = s.ReconcileListenDrops()
	d.Sent, d.Recv, d.Failed = s.Delta(tcpExtSyncookiesSent), s.Delta(tcpExtSyncookiesRecv), s.Delta(tcpExtSyncookiesFailed)
	d.ListenOverflows = s.Delta(tcpExtListenOverflows)
	if d.Sent.Moved() {
		d.ReturnRatio = float64(d.Recv.Delta) / float64(d.Sent.Delta)
	}
	halfOpen := s.Packets != nil && s.Packets.HalfOpen > 0
	if d.ReturnRatio >= 0.5 && !halfOpen {
		d.Verdict = CookieLegitimateLoad
	}
	d.AcceptQueueFull = d.DoCookies.Delta > d.Sent.Delta && d.ListenOverflows.Moved()
	l := first(d.Listeners)
	if d.Verdict == CookieLegitimateLoad || l != nil && l.SendQ < 1024 {
		a := adviseBacklog(s, l)
		d.Backlog = &a
	}
	return d
}

func (d *CookieOverflow) render(s *Snapshot) Finding {
	l := first(d.Listeners)
	f := listenerFinding(IDSyncookiesActive, d.Severity, l)
	f.Title = "SYN queue full" + titleListener(l) + ": SYN cookies are letting clients in"
	if d.DoCookies.OK {
		f.Evidence = append(f.Evidence, evDelta(d.DoCookies, "SYNs that found the SYN queue full and were answered with a cookie"))
	}
	if d.Sent.OK {
		f.Evidence = append(f.Evidence, evDelta(d.Sent, ""), evDelta(d.Recv, "valid cookies returned by clients that completed"))
	}
	if d.Failed.Moved() {
		f.Evidence = append(f.Evidence, evDelta(d.Failed, "ACKs with invalid cookies"))
	}
	for _, c := range d.Listeners {
		note := "SYN queue at its cap; overflow goes to cookies"
		if !d.AtCap {
			note = "the fullest SYN queue at capture time, below its cap"
		}
		f.Evidence = append(f.Evidence, listenerEvidence(c, note)...)
	}
	f.Evidence = append(f.Evidence, d.PerSocket.Evidence()...)
	f.Evidence = append(f.Evidence, synFloodLog(s, 3)...)
	f.Evidence = append(f.Evidence, packetEvidence(s)...)

	where := "a listener"
	if l != nil {
		where = names(d.Listeners)
	}
	if d.DoCookies.OK {
		f.Summary = fmt.Sprintf("The SYN queue of %s overflowed %s times %s and tcp_syncookies=1 answered the overflow with SYN cookies, "+
			"so new clients still connect. ", where, perSecond(d.DoCookies), window(s))
	} else {
		f.Summary = fmt.Sprintf("At capture time the SYN queue of %s was at its cap; tcp_syncookies=1 answers the overflow with SYN cookies (one sample only: no counter deltas). ", where)
	}
	switch d.Verdict {
	case CookieLegitimateLoad:
		f.Summary += fmt.Sprintf("%.0f%% of the cookies came back (SyncookiesRecv/SyncookiesSent): these are real clients, so this is a capacity problem: "+
			"cookies are a fallback, not meant to carry legitimate load, and clients without TCP timestamps lose window scaling and SACK.", d.ReturnRatio*100)
		f.Recommendations = append(f.Recommendations, d.Backlog.recommendations(s,
			"Also add accept capacity (workers, SO_REUSEPORT). On 4.4 and later tcp_max_syn_backlog does not size the SYN queue.")...)
	default:
		if d.ReturnRatio >= 0 {
			f.Summary += fmt.Sprintf("Only %.0f%% of the cookies came back (SyncookiesRecv/SyncookiesSent): ", d.ReturnRatio*100)
		}
		f.Summary += "the requests holding the queue come from a flood or from clients that cannot complete the handshake. " +
			"Cookies are doing their job; keep them on and stop the bad clients upstream."
		if d.AcceptQueueFull {
			f.Summary += " Some cookies were chosen and then dropped because the accept queue was full too (see accept-queue-overflow)."
		}
		f.Recommendations = append(f.Recommendations, note("network",
			"keep net.ipv4.tcp_syncookies=1; filter the half-open sources upstream (firewall, XDP, SYNPROXY) and check for spoofing; "+
				"do not raise tcp_max_syn_backlog: with cookies on it does not size the SYN queue"))
		if d.Backlog != nil {
			f.Recommendations = append(f.Recommendations, d.Backlog.recommendations(s, "A larger queue also lets more real clients hold state (window scaling, SACK) during a flood.")...)
		}
	}
	return f
}

// retransEvidence notes the SYN-ACK retransmit counters a SYN-queue flood
// inflates, so nobody reads them as data-path loss: every SYN-ACK the
// request timer re-sends counts in TCPSynRetrans, RetransSegs and
// TCPTimeouts.
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

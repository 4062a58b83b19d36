package analyze

import (
	"math"
	"time"
)

// The SYN-queue model: how many half-open requests arrive per second, how
// long each holds a slot of the listener's SYN queue, and how many slots the
// queue has. Little's law (slots in use = arrival rate x hold time) then
// sizes the remedy that holds with cookies off.
//
// Kernel facts the model rests on, read in net/ipv4/inet_connection_sock.c
// and net/ipv4/tcp_input.c (6.12; the same arithmetic in 3.10's
// inet_csk_reqsk_queue_prune()):
//
//   - A request's timer first fires after tcp_timeout_init() = 1 s
//     (TCP_TIMEOUT_INIT) and doubles each time (reqsk_timeout(), capped at
//     TCP_RTO_MAX = 120 s). syn_ack_recalc() expires the request at the
//     expiry where num_timeout has reached the retry limit, so with r
//     retries a request that is never answered holds its slot for
//     1+2+...+2^r = 2^(r+1)-1 s: 63 s with the default of 5.
//   - The limit is the listener's TCP_SYNCNT if set, else
//     tcp_synack_retries; the bundle has the sysctl only, so a listener
//     with its own TCP_SYNCNT is modelled with the sysctl.
//   - reqsk_timer_handler() lowers that limit while the queue is more than
//     half full ((qlen << 1) > max(8, sk_max_ack_backlog)): it takes one
//     retry off while qlen >= young << k (young = requests whose timer has
//     not fired yet, k = 1, 2, ...), never below 2. The repository's
//     listen-path notes say it reduces old requests' retries "down to 2";
//     the source says the loop stops as soon as qlen < young << k, so the
//     limit lands anywhere from tcp_synack_retries down to 2, and it is
//     evaluated at every expiry of every request, not kept per request.
//     The kernel source wins: the model runs that loop.
//   - Under a flood at the cap, young is what arrived in the last second, so
//     qlen/young is the hold time in seconds: a hold of 7 s (2 retries) makes
//     the loop stop at 3, and 15 s (3 retries) makes it go to 2. The queue
//     alternates between the two; the model takes 2, the shorter hold, which
//     gives the larger (safer) arrival estimate.

// synTimeoutInit is TCP_TIMEOUT_INIT, the request timer's first interval.
const synTimeoutInit = 1.0

// synRTOMax is TCP_RTO_MAX, the longest interval of the request timer.
const synRTOMax = 120.0

// defaultSynackRetries is tcp_synack_retries's default (tcp_sk_init()).
const defaultSynackRetries = 5

// prunedRetriesFloor is the retry limit reqsk_timer_handler() never prunes
// below.
const prunedRetriesFloor = 2

// maxListenBacklog bounds a recommended backlog: sk_max_ack_backlog and
// somaxconn were 16-bit on older kernels.
const maxListenBacklog = 65535

// synHeadroom is the factor between the slots the model needs and the
// backlog it recommends: a queue at most half full is one where
// reqsk_timer_handler() never prunes, so the hold time stays the one the
// remedy computed, and it absorbs a flood twice as fast as the one seen.
const synHeadroom = 2.0

// SynHold is how long (seconds) an unanswered request holds its slot with
// retries SYN-ACK retransmits: 2^(retries+1)-1 at TCP_TIMEOUT_INIT = 1 s,
// each interval capped at TCP_RTO_MAX.
func SynHold(retries int) float64 {
	hold := 0.0
	for i := 0; i <= max(retries, 0); i++ {
		hold += math.Min(synTimeoutInit*math.Pow(2, float64(i)), synRTOMax)
	}
	return hold
}

// prunedRetries is reqsk_timer_handler()'s retry limit for a queue of qlen
// requests of which young have not yet timed out, from configured retries
// and a listen backlog.
func prunedRetries(configured, qlen, young int, backlog int64) int {
	r := configured
	if int64(qlen)<<1 <= max(8, backlog) {
		return r
	}
	y := young << 1
	for r > prunedRetriesFloor {
		if qlen < y {
			break
		}
		r--
		y <<= 1
	}
	return r
}

// RateSource says which reading gave a SynModel's arrival rate.
type RateSource string

// Arrival-rate sources.
const (
	// RateCounters: the SYNs the queue turned away (TCPReqQFullDrop,
	// TCPReqQFullDoCookies, the 3/4 rule's residual ListenDrops) plus the
	// requests it admitted (SYN-RECV / hold).
	RateCounters RateSource = "counters"
	// RatePackets: the packet sample's handshakes to the listener's port
	// that did not complete, per second of the sample.
	RatePackets RateSource = "packets"
	// RateQueue: one sample only, the queue's SYN-RECV over the hold time (a
	// lower bound).
	RateQueue RateSource = "queue"
	// RateSocket: with cookies off, the SYNs this socket turned away from its
	// own drop counter (sk_drops, which tcp_listendrop() bumps with
	// ListenDrops), plus the requests it admitted. Unlike the namespace's
	// counters it is this socket's share when several listeners, or the
	// sockets of an SO_REUSEPORT group, are flooded at once. It also counts
	// the duplicate SYNs its half-open requests discard, so it errs towards
	// a larger queue.
	RateSocket RateSource = "socket"
)

// SynModel is one listener's SYN queue as the bundle shows it.
type SynModel struct {
	// Listener is the modelled listener; nil when none was named (the model
	// then rests on the namespace's counters alone).
	Listener *ListenerState
	// Syncookies is net.ipv4.tcp_syncookies (1 when the bundle lacks it).
	Syncookies int64
	// Backlog is the listen backlog in force (Send-Q), Somaxconn and
	// MaxSynBacklog the sysctls (0 when absent).
	Backlog, Somaxconn, MaxSynBacklog int64
	// Cap is how many requests the queue holds before a SYN is dropped or
	// cookied: see SynQueueCap.
	Cap int
	// SynRecv is the largest SYN-RECV count the samples saw.
	SynRecv int
	// SynackRetries is the configured tcp_synack_retries; Retries the limit
	// in force (pruned when the queue was more than half full), Hold the
	// seconds an unanswered request holds a slot with it, Pruned whether
	// the kernel's pruning was engaged.
	SynackRetries, Retries int
	Hold                   float64
	Pruned                 bool
	// Turned is the rate (per second) of SYNs the queue turned away: dropped
	// (TCPReqQFullDrop and, cookies off, the 3/4 rule's residual) or
	// answered with a cookie (TCPReqQFullDoCookies). These count packets:
	// a client's SYN retransmits are counted again, so Turned is an upper
	// bound of the connections.
	Turned float64
	// Admitted is SynRecv/Hold: requests entering the queue per second.
	Admitted float64
	// PacketRate is the packet sample's rate of handshakes to the port that
	// did not complete; 0 without a sample.
	PacketRate float64
	// Arrival is the half-open arrival rate the remedy is sized for: the
	// larger of Turned+Admitted and PacketRate; From says which.
	Arrival float64
	From    RateSource
	// Needed is Arrival x Hold: the slots the queue needs with the retries in
	// force (Little's law).
	Needed float64
}

// SynQueueCap is how many requests a listener's SYN queue holds on kernel k
// with backlog (Send-Q) and tcp_max_syn_backlog tmsb (0: unknown), cookies
// on or off.
//
//   - 4.4 and later: the listen backlog (inet_csk_reqsk_queue_is_full():
//     qlen >= backlog, qlen > backlog from 6.13), and with cookies off the
//     3/4 rule of tcp_max_syn_backlog drops SYNs of unproven peers once
//     more than tmsb - tmsb/4 requests wait.
//   - before 4.4: reqsk_queue_alloc() sized the queue from
//     min(backlog, tcp_max_syn_backlog), at least 8, plus one, rounded up to
//     a power of two; it was full at that many (qlen >> max_qlen_log). The
//     3/4 rule applied there too.
func SynQueueCap(k KernelVersion, backlog, tmsb int64, cookiesOff bool) int {
	var limit int64
	switch {
	case !k.AtLeast(4, 4, 0):
		nr := backlog
		if tmsb > 0 {
			nr = min(nr, tmsb)
		}
		limit = roundUpPow2(max(nr, 8) + 1)
	case k.AtLeast(6, 13, 0):
		limit = backlog + 1
	default:
		limit = backlog
	}
	if cookiesOff && tmsb > 0 {
		limit = min(limit, tmsb-tmsb>>2+1)
	}
	return int(max(limit, 1))
}

// roundUpPow2 is the least power of two at least n (n >= 1).
func roundUpPow2(n int64) int64 {
	p := int64(1)
	for p < n {
		p <<= 1
	}
	return p
}

// modelSynQueue builds the model of l's SYN queue (l may be nil).
func modelSynQueue(s *Snapshot, l *ListenerState) *SynModel {
	m := &SynModel{Listener: l, Syncookies: 1, SynackRetries: defaultSynackRetries}
	if c, ok := syncookies(s); ok {
		m.Syncookies = c
	}
	m.Somaxconn, _ = s.Sysctls.Int("net.core.somaxconn")
	m.MaxSynBacklog, _ = s.Sysctls.Int("net.ipv4.tcp_max_syn_backlog")
	if r, ok := s.Sysctls.Int("net.ipv4.tcp_synack_retries"); ok && r >= 0 && r <= 255 {
		m.SynackRetries = int(r)
	}
	if l != nil {
		m.Backlog = int64(l.SendQ)
		m.SynRecv = l.SocketSynRecv()
	}
	m.Cap = SynQueueCap(s.Kernel, m.Backlog, m.MaxSynBacklog, m.Syncookies == 0)

	// The retries in force: the kernel's own loop, run for the two hold
	// times a flooded queue alternates between (young = the requests of the
	// last TCP_TIMEOUT_INIT, SynRecv/hold), and the smaller result taken:
	// see the comment at the top of this file.
	m.Retries = m.SynackRetries
	if m.SynRecv > 0 {
		for _, r := range []int{prunedRetriesFloor, prunedRetriesFloor + 1} {
			young := int(math.Ceil(float64(m.SynRecv) / SynHold(r)))
			m.Retries = min(m.Retries, prunedRetries(m.SynackRetries, m.SynRecv, young, m.Backlog))
		}
	}
	m.Pruned = m.Retries < m.SynackRetries
	m.Hold = SynHold(m.Retries)
	m.Admitted = float64(m.SynRecv) / m.Hold

	drops := s.Delta(tcpExtTCPReqQFullDrop)
	cookies := s.Delta(tcpExtTCPReqQFullDoCookies)
	m.Turned = drops.PerSecond + cookies.PerSecond
	if m.Syncookies == 0 {
		if res, ok := residualDrops(s.Delta(tcpExtListenDrops), s.Delta(tcpExtListenOverflows), drops); ok {
			m.Turned += res.PerSecond
		}
	}
	m.Arrival, m.From = m.Turned+m.Admitted, RateCounters
	if !drops.OK && !cookies.OK {
		m.From = RateQueue
	}
	// With cookies off every SYN the queue turns away is a drop on the
	// socket itself: its own counter is its own rate.
	if m.Syncookies == 0 && l != nil && l.Drops.Known && l.Drops.Seconds > 0 {
		m.Turned = l.Drops.PerSecond
		m.Arrival, m.From = m.Turned+m.Admitted, RateSocket
	}
	if l != nil && s.Packets != nil {
		m.PacketRate = packetHalfOpenRate(s.Packets, uint16(l.Port))
	}
	if m.PacketRate > m.Arrival {
		m.Arrival, m.From = m.PacketRate, RatePackets
	}
	m.Needed = m.Arrival * m.Hold
	return m
}

// packetHalfOpenRate is the rate of handshakes to port in the packet sample
// whose client never acknowledged the SYN-ACK (half-open, or SYNs never
// answered: a dropped client that will try again also wants a slot), per
// second of the sample, each counted by its weight (a sampled capture's
// handshakes stand for 1/rate of the traffic's); 0 when the sample spans no
// time.
func packetHalfOpenRate(pa *PacketAnalysis, port uint16) float64 {
	span := pa.End.Sub(pa.Start)
	if span < 100*time.Millisecond {
		return 0
	}
	n := 0.0
	for _, h := range pa.Flows {
		// Only what the sample shows never completed: a handshake it cannot
		// judge (its port's ACKs not kept) is not counted as half-open.
		if h.Server.Port() == port && (h.HalfOpen(pa.End) || h.Unanswered()) {
			n += h.weight()
		}
	}
	return n / span.Seconds()
}

// NoCookiesPlan is the remedy that holds with tcp_syncookies=0 kept: a
// shorter request lifetime and a SYN queue large enough for the arrival rate
// over that lifetime, with every limit in front of the queue raised to match.
type NoCookiesPlan struct {
	// SynackRetries is the tcp_synack_retries to set and Hold the seconds an
	// unanswered request then holds a slot.
	SynackRetries int
	Hold          float64
	// Slots is Arrival x Hold; Backlog the listen backlog to set (Slots x
	// synHeadroom, never below the current backlog, at most 65535).
	Slots   float64
	Backlog int64
	// Somaxconn is the net.core.somaxconn to set, 0 when the current one
	// already admits Backlog. MaxSynBacklog is the tcp_max_syn_backlog to
	// set, 0 when the current one already clears the 3/4 rule (and, before
	// 4.4, the queue's min(backlog, tcp_max_syn_backlog)).
	Somaxconn, MaxSynBacklog int64
	// Holds is false when even one retry needs a backlog above 65535: then
	// no queue size holds the flood and only cookies (or filtering) do.
	Holds bool
}

// planWithoutCookies sizes the cookies-off remedy from m.
//
// Retries: the kernel's own pruning floor, 2, unless the configured value is
// already lower: a real client whose SYN-ACK was lost still gets it again at
// 1 s and 3 s (and its own SYN retransmits each trigger another, via
// inet_rtx_syn_ack()), while a dead request is gone after 7 s instead of
// 63 s. One retry (3 s) is used only when 2 would need a backlog above
// 65535.
func planWithoutCookies(s *Snapshot, m *SynModel) NoCookiesPlan {
	var p NoCookiesPlan
	for _, r := range []int{min(m.SynackRetries, prunedRetriesFloor), min(m.SynackRetries, 1)} {
		p = NoCookiesPlan{SynackRetries: r, Hold: SynHold(r)}
		p.Slots = m.Arrival * p.Hold
		want := int64(math.Ceil(p.Slots * synHeadroom))
		p.Backlog = max(want, m.Backlog, 1)
		p.Holds = want <= maxListenBacklog
		if p.Holds {
			break
		}
	}
	p.Backlog = min(p.Backlog, maxListenBacklog)
	if m.Somaxconn > 0 && m.Somaxconn < p.Backlog || m.Somaxconn == 0 {
		p.Somaxconn = p.Backlog
	}
	// The 3/4 rule drops unproven peers once more than tmsb - tmsb/4
	// requests wait; the queue must fill to Backlog+1 (6.13) before that.
	need := int64(math.Ceil(float64(p.Backlog+1) * 4 / 3))
	if !s.Kernel.AtLeast(4, 4, 0) {
		need = max(need, p.Backlog)
	}
	if m.MaxSynBacklog == 0 || m.MaxSynBacklog-m.MaxSynBacklog>>2 < p.Backlog+1 {
		p.MaxSynBacklog = need
	}
	return p
}

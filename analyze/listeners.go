package analyze

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// ListenerState is one listener followed across the samples.
type ListenerState struct {
	// Listener is the listener as the last sample that has it shows it.
	bundle.Listener
	// RecvQs and SynRecvs are its readings, one per sample that has it;
	// SynRecvs leaves out the samples that did not count SYN-RECV
	// (Sample.NoSynRecv). For a socket of an SO_REUSEPORT group SynRecvs is
	// the group's count: request sockets do not say which socket of the
	// group holds them.
	RecvQs   []uint32
	SynRecvs []int
	// GroupSizes is how many sockets shared its address and port, per
	// SynRecvs reading: 1 but for SO_REUSEPORT groups.
	GroupSizes []int
	// DropReadings are its own drop counter (sk_drops), one per sample
	// that has it; nil where the sample did not report the counter (a
	// kernel before 4.7, a bundle written before snapdiag recorded it).
	DropReadings []*uint32
	// Drops is how its own drop counter moved between the samples.
	Drops ListenerDrops
	// InSamples is how many of the bundle's samples have this listener;
	// fewer than all when it closed or appeared between samples.
	InSamples int
	// Source is the listeners.json member of the last reading.
	Source string

	samples []int // indexes in Snapshot.Samples of the readings
}

// ListenerDrops is how a listener's own drop counter moved over the
// samples that have it. On a listener the kernel bumps sk_drops in
// tcp_listendrop(), with every TcpExt.ListenDrops it counts for that
// socket (a full SYN queue with cookies off, a full accept queue, the
// cookies-off 3/4 rule, a failed child), so a listener whose counter moved
// is one that dropped connections, whichever queue was full at the instant
// of a sample. It also counts the packets its request sockets discard
// (tcp_check_req() returns no child and tcp_v4_rcv() counts the packet on
// the listener at discard_and_relse): duplicate SYNs of waiting requests,
// which a half-open flood sends in numbers, and the data-less third ACKs
// of a TCP_DEFER_ACCEPT listener. ListenDrops counts none of those: in a
// half-open flood a listener's own counter runs ahead of its listen drops.
type ListenerDrops struct {
	// Known is true when two or more readings carried the counter; the
	// other fields are zero otherwise.
	Known bool
	// First and Last are the first and last readings that carried it.
	First, Last uint32
	// Delta is the drops between them. The counter is 32 bits wide and
	// wraps: a reading below the one before it is a wrap (the socket, told
	// by its cookie, is the same), counted modulo 2^32, once per interval.
	Delta int64
	// Wraps is how many intervals wrapped.
	Wraps int
	// Seconds is the time between the two readings, PerSecond the rate;
	// both 0 when the bundle has no clock.
	Seconds, PerSecond float64
}

// Moved reports whether the listener's own counter rose during the capture.
func (d ListenerDrops) Moved() bool { return d.Known && d.Delta > 0 }

// ownDrops computes a listener's drop movement from its readings.
func (s *Snapshot) ownDrops(l *ListenerState) ListenerDrops {
	var d ListenerDrops
	first, last := -1, -1
	var prev uint32
	for i, r := range l.DropReadings {
		if r == nil {
			continue
		}
		if first < 0 {
			first, d.First = i, *r
		} else {
			// uint32 arithmetic is modulo 2^32: a wrap still gives the
			// increment.
			d.Delta += int64(*r - prev)
			if *r < prev {
				d.Wraps++
			}
		}
		prev, last = *r, i
	}
	if first < 0 || first == last {
		return ListenerDrops{}
	}
	d.Known, d.Last = true, prev
	d.Seconds = s.seconds(l.samples[first], l.samples[last])
	if d.Seconds > 0 {
		d.PerSecond = float64(d.Delta) / d.Seconds
	}
	return d
}

// MaxRecvQ is the longest accept queue seen.
func (l *ListenerState) MaxRecvQ() uint32 {
	var m uint32
	for _, v := range l.RecvQs {
		m = max(m, v)
	}
	return m
}

// MaxSynRecv is the largest SYN-RECV count seen.
func (l *ListenerState) MaxSynRecv() int {
	m := 0
	for _, v := range l.SynRecvs {
		m = max(m, v)
	}
	return m
}

// SocketSynRecv is the largest SYN-RECV count of this socket's own SYN
// queue seen. The kernel keeps a queue per socket and tests each one
// against its own backlog (inet_csk_reqsk_queue_is_full(), and the pruning
// of reqsk_timer_handler()), but a group's requests cannot be told apart:
// for a socket of an SO_REUSEPORT group it is the group's count shared out
// evenly, as the group's 4-tuple hash spreads clients (an estimate), rounded
// up.
func (l *ListenerState) SocketSynRecv() int {
	m := 0
	for i, v := range l.SynRecvs {
		if i < len(l.GroupSizes) && l.GroupSizes[i] > 1 {
			v = (v + l.GroupSizes[i] - 1) / l.GroupSizes[i]
		}
		m = max(m, v)
	}
	return m
}

// process returns the listener's process, or nil when unknown.
func (l *ListenerState) process() *Process {
	if l == nil || (l.PID == 0 && l.Comm == "") {
		return nil
	}
	return &Process{PID: l.PID, Comm: l.Comm}
}

// name is the listener's ADDR:PORT, or "" for nil.
func (l *ListenerState) name() string {
	if l == nil {
		return ""
	}
	return l.Local
}

// Listeners follows every listener across the samples, in the order of
// their local address. A listener is the same across samples when its socket
// cookie is (or, without cookies, its local address and inode are).
func (s *Snapshot) Listeners() []*ListenerState {
	byKey := map[string]*ListenerState{}
	var out []*ListenerState
	for i := range s.Samples {
		sm := &s.Samples[i]
		group := map[string]int{}
		for _, l := range sm.Listeners {
			group[l.Family+" "+l.Local]++
		}
		for _, l := range sm.Listeners {
			key := "c" + strconv.FormatUint(l.Cookie, 10)
			if l.Cookie == 0 {
				key = fmt.Sprintf("l%s/%d", l.Local, l.Inode)
			}
			st := byKey[key]
			if st == nil {
				st = &ListenerState{}
				byKey[key] = st
				out = append(out, st)
			}
			st.Listener = l
			if st.Local == "" {
				st.Local = fmt.Sprintf("%s:%d", l.Addr, l.Port)
			}
			st.RecvQs = append(st.RecvQs, l.RecvQ)
			if !sm.NoSynRecv {
				st.SynRecvs = append(st.SynRecvs, l.SynRecv)
				st.GroupSizes = append(st.GroupSizes, group[l.Family+" "+l.Local])
			}
			st.DropReadings = append(st.DropReadings, l.Drops)
			st.samples = append(st.samples, i)
			st.InSamples++
			st.Source = bundle.SampleFile(sm.Index, bundle.SampleListeners)
		}
	}
	for _, st := range out {
		st.Drops = s.ownDrops(st)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Local < out[j].Local
	})
	return out
}

// synQueueFull reports whether a listener's SYN queue was at its cap in some
// sample. The cap is the listen backlog (Send-Q), not tcp_max_syn_backlog,
// since 4.4; inet_csk_reqsk_queue_is_full() uses qlen > backlog from 6.13
// (and the stable kernels patched in January 2025), qlen >= backlog before.
// A patched older kernel plateaus at Send-Q+1 and still passes this test.
func (s *Snapshot) synQueueFull(l *ListenerState) bool {
	limit := int(l.SendQ)
	if s.Kernel.AtLeast(6, 13, 0) {
		limit++
	}
	return l.SocketSynRecv() >= limit && l.SocketSynRecv() > 0
}

// synQueueCap is how many requests a listener's SYN queue holds before SYNs
// are cookied or dropped on the bundle's kernel (SynQueueCap: the listen
// backlog from 4.4, the backlog capped by tcp_max_syn_backlog before, and
// with cookies off the 3/4 rule of tcp_max_syn_backlog on every kernel), and
// whether tcp_max_syn_backlog set it.
func (s *Snapshot) synQueueCap(l *ListenerState) (int, bool) {
	c, _ := syncookies(s)
	tmsb, ok := s.Sysctls.Int("net.ipv4.tcp_max_syn_backlog")
	if !ok || tmsb <= 0 {
		tmsb = 0
	}
	limit := SynQueueCap(s.Kernel, int64(l.SendQ), tmsb, c == 0)
	return limit, tmsb > 0 && limit < SynQueueCap(s.Kernel, int64(l.SendQ), 0, false)
}

// acceptQueueFull reports whether a listener's accept queue reached its
// backlog in some sample. sk_acceptq_is_full() is Recv-Q > Send-Q, so the
// queue holds Send-Q+1; a sample is an instant, and a queue seen at Send-Q
// is one connection from dropping, so Recv-Q >= Send-Q counts as full.
func acceptQueueFull(l *ListenerState) bool {
	return l.MaxRecvQ() >= l.SendQ && l.MaxRecvQ() > 0
}

// synQueueCulprits returns the listeners whose SYN queue was full; when none
// was, the listener with the fullest SYN queue (nil if no listener had any
// SYN-RECV), and false.
func (s *Snapshot) synQueueCulprits() ([]*ListenerState, bool) {
	var full []*ListenerState
	var best *ListenerState
	bestRatio := 0.0
	for _, l := range s.Listeners() {
		if s.synQueueFull(l) {
			full = append(full, l)
			continue
		}
		if l.SocketSynRecv() == 0 {
			continue
		}
		r := float64(l.SocketSynRecv()) / float64(max(l.SendQ, 1))
		if r > bestRatio {
			best, bestRatio = l, r
		}
	}
	if len(full) > 0 {
		return full, true
	}
	if best != nil {
		return []*ListenerState{best}, false
	}
	return nil, false
}

// listenerEvidence is a listener's queues as evidence.
func listenerEvidence(l *ListenerState, note string) []Evidence {
	return []Evidence{
		evValue(l.Source, "listener "+l.Local+" syn_recv", float64(l.MaxSynRecv()),
			fmt.Sprintf("max over %s; Send-Q (backlog) %d. %s", count(len(l.SynRecvs), "sample", "samples"), l.SendQ, note)),
		evValue(l.Source, "listener "+l.Local+" recv_q", float64(l.MaxRecvQ()),
			fmt.Sprintf("accept queue, max over %s; full above Send-Q %d", count(len(l.RecvQs), "sample", "samples"), l.SendQ)),
	}
}

// listenerByPort returns the first listener on port, or nil.
func (s *Snapshot) listenerByPort(port uint16) *ListenerState {
	for _, l := range s.Listeners() {
		if l.Port == int(port) {
			return l
		}
	}
	return nil
}

// DropReconciliation compares the listeners' own drop counters with the
// namespace's TcpExt.ListenDrops over the capture: which socket dropped,
// and what the sum over sockets leaves unexplained.
type DropReconciliation struct {
	// ListenDrops is the namespace's counter.
	ListenDrops Delta
	// Moved are the listeners whose own counter rose, most drops first.
	Moved []*ListenerState
	// Sum is the sum of the listeners' own drop deltas (those Known).
	Sum int64
	// Remainder is ListenDrops.Delta - Sum: above 0, listen drops no
	// sampled socket accounts for; below 0, socket drops that are not
	// listen drops. Causes say what explains it.
	Remainder int64
	Causes    []RemainderCause
	// Churned are the listeners missing from some samples: they closed or
	// appeared between samples, and their drops outside their readings
	// are in ListenDrops only.
	Churned []*ListenerState
	// Unknown are the listeners whose readings lack the counter.
	Unknown []*ListenerState
	// Wrapped are the listeners whose 32-bit counter wrapped.
	Wrapped []*ListenerState
	// DeferAcceptDrops is TcpExt.TCPDeferAcceptDrop: counted by the
	// listeners' sk_drops, not by ListenDrops.
	DeferAcceptDrops Delta
	// HalfOpen is true when a listener held half-open requests in a sample
	// or TCPSynRetrans moved: its requests may have discarded packets that
	// its sk_drops counts (CauseRequestDiscards).
	HalfOpen bool

	known bool // some listener reported its counter in two samples
}

// RemainderCause is one explanation of a DropReconciliation's remainder.
type RemainderCause int

// Remainder causes.
const (
	// CauseChurn: a listener closed or appeared between samples.
	CauseChurn RemainderCause = iota + 1
	// CauseUnknownDrops: some listeners' readings lack the counter (a
	// kernel before 4.7, or an older snapdiag), so their drops are not in
	// the sum.
	CauseUnknownDrops
	// CauseWrap: a listener's 32-bit counter wrapped, or ListenDrops went
	// backwards (a 32-bit kernel's unsigned long, or the namespace was
	// re-created).
	CauseWrap
	// CauseDeferAccept: TCP_DEFER_ACCEPT listeners discarded data-less
	// third ACKs, which their sk_drops count and ListenDrops does not.
	CauseDeferAccept
	// CauseRequestDiscards: the listeners' requests discarded packets
	// (duplicate SYNs of half-open handshakes, above all), which sk_drops
	// counts and ListenDrops does not. No counter matches them one for one
	// (TCPSynRetrans counts the request timer's SYN-ACKs as well, and
	// measured on 6.18 it falls short of the duplicates in a flood), so a
	// negative remainder is put down to them whenever a listener held
	// half-open requests in a sample or SYN-ACKs were re-sent.
	CauseRequestDiscards
	// CauseSampleSkew: a sample reads the namespace's counters and then
	// dumps the listeners, a moment apart; drops in that moment at the
	// first or the last sample fall on one side only. A remainder no larger
	// than the drops of sampleSkew at the capture's rate, at both ends, is
	// put down to this.
	CauseSampleSkew
	// CauseUnexplained: none of the above accounts for the remainder.
	CauseUnexplained
)

// sampleSkew bounds the moment between a sample's counters and its
// listeners: a few files of /proc and two sock_diag dumps, milliseconds on
// an idle host, well under this on a loaded one.
const sampleSkew = 100 * time.Millisecond

// String names the cause in the report.
func (c RemainderCause) String() string {
	switch c {
	case CauseChurn:
		return "a listener closed or appeared between samples"
	case CauseUnknownDrops:
		return "some listeners do not report their own drops"
	case CauseWrap:
		return "a counter wrapped"
	case CauseDeferAccept:
		return "TCP_DEFER_ACCEPT discards (TCPDeferAcceptDrop), counted per socket but not in ListenDrops"
	case CauseRequestDiscards:
		return "packets discarded by half-open requests (duplicate SYNs), counted per socket but not in ListenDrops"
	case CauseSampleSkew:
		return "drops between reading the counters and the listeners within a sample"
	case CauseUnexplained:
		return "unexplained"
	}
	return "unknown cause"
}

// PerSocket reports whether the per-socket counters decide which listener
// dropped: some listener reported its own counter in two samples or more.
func (r *DropReconciliation) PerSocket() bool {
	return r != nil && r.known
}

// ReconcileListenDrops compares the listeners' own drop counters with
// TcpExt.ListenDrops. It returns nil when the bundle has fewer than two
// samples with listeners, so there are no deltas to compare.
func (s *Snapshot) ReconcileListenDrops() *DropReconciliation {
	withListeners := 0
	for i := range s.Samples {
		if s.Samples[i].HasListeners {
			withListeners++
		}
	}
	if withListeners < 2 {
		return nil
	}
	r := &DropReconciliation{ListenDrops: s.Delta(tcpExtListenDrops), DeferAcceptDrops: s.Delta(tcpExtTCPDeferAcceptDrop),
		HalfOpen: s.Delta(tcpExtTCPSynRetrans).Moved()}
	for _, l := range s.Listeners() {
		r.HalfOpen = r.HalfOpen || l.MaxSynRecv() > 0
		if l.InSamples < withListeners {
			r.Churned = append(r.Churned, l)
		}
		if !l.Drops.Known {
			r.Unknown = append(r.Unknown, l)
			continue
		}
		r.known = true
		r.Sum += l.Drops.Delta
		if l.Drops.Wraps > 0 {
			r.Wrapped = append(r.Wrapped, l)
		}
		if l.Drops.Moved() {
			r.Moved = append(r.Moved, l)
		}
	}
	slices.SortStableFunc(r.Moved, func(a, b *ListenerState) int { return cmp.Compare(b.Drops.Delta, a.Drops.Delta) })
	if !r.ListenDrops.OK {
		if r.ListenDrops.Samples >= 2 {
			r.Causes = append(r.Causes, CauseWrap)
		}
		return r
	}
	r.Remainder = r.ListenDrops.Delta - r.Sum
	if r.Remainder == 0 {
		return r
	}
	left := r.Remainder
	if left < 0 && r.DeferAcceptDrops.Moved() {
		r.Causes = append(r.Causes, CauseDeferAccept)
		left = min(left+r.DeferAcceptDrops.Delta, 0)
	}
	if left < 0 && r.HalfOpen {
		r.Causes = append(r.Causes, CauseRequestDiscards)
		left = 0
	}
	if left > 0 && len(r.Churned) > 0 {
		r.Causes = append(r.Causes, CauseChurn)
		left = 0
	}
	if left > 0 && len(r.Unknown) > 0 {
		r.Causes = append(r.Causes, CauseUnknownDrops)
		left = 0
	}
	if left != 0 && len(r.Wrapped) > 0 {
		r.Causes = append(r.Causes, CauseWrap)
		left = 0
	}
	if left != 0 && float64(abs(left)) <= math.Ceil(2*r.ListenDrops.PerSecond*sampleSkew.Seconds()) {
		r.Causes = append(r.Causes, CauseSampleSkew)
		left = 0
	}
	if left != 0 {
		r.Causes = append(r.Causes, CauseUnexplained)
	}
	return r
}

// Evidence is the reconciliation as evidence: each listener whose own
// counter moved (its socket: inode, pid, comm), and the sum against
// ListenDrops with its remainder explained.
func (r *DropReconciliation) Evidence() []Evidence {
	if !r.PerSocket() {
		return nil
	}
	var out []Evidence
	for _, l := range r.Moved {
		out = append(out, Evidence{Source: l.Source, Metric: "listener " + l.Local + " drops",
			Value: float64(l.Drops.Last), Delta: float64(l.Drops.Delta), PerSecond: round2(l.Drops.PerSecond),
			Note: "this socket's own drop counter (sk_drops, ss -m d): " + socketName(l)})
	}
	note := fmt.Sprintf("sum over listeners %d, TcpExt.ListenDrops %d: ", r.Sum, r.ListenDrops.Delta)
	switch {
	case !r.ListenDrops.OK:
		note = fmt.Sprintf("sum over listeners %d; TcpExt.ListenDrops has no delta", r.Sum)
	case r.Remainder == 0:
		note += "every listen drop is attributed to its socket"
	default:
		var cs []string
		for _, c := range r.Causes {
			cs = append(cs, c.String())
		}
		note += fmt.Sprintf("remainder %d: %s", r.Remainder, strings.Join(cs, "; "))
	}
	out = append(out, Evidence{Source: r.ListenDrops.Source, Metric: dropsReconciledMetric,
		Value: float64(r.Sum), Delta: float64(r.Remainder), Note: note})
	return out
}

// dropsReconciledMetric labels the reconciliation's evidence: its value is
// the sum over listeners, its delta the remainder.
const dropsReconciledMetric = "sum of listener drops vs TcpExt.ListenDrops"

// socketName names one socket of a listener for prose: its inode and its
// process, and its place in an SO_REUSEPORT group.
func socketName(l *ListenerState) string {
	s := fmt.Sprintf("socket inode %d", l.Inode)
	if l.PID != 0 || l.Comm != "" {
		s += fmt.Sprintf(", %s pid %d", l.Comm, l.PID)
	}
	if l.ReusePort {
		s += ", one socket of an SO_REUSEPORT group"
	}
	return s
}

// synDropCulprits returns the listeners whose own drop counter moved
// because of their SYN queue, and whether any was at its cap in a sample;
// ok is false when per-socket drops are unknown (then the queues' state at
// the samples is all there is: synQueueCulprits). A listener whose counter
// moved is named even when its queue was below its cap at every sample: it
// filled between them. When accept queues overflowed too (ListenOverflows
// moved), a listener whose accept queue was full and whose SYN queue never
// was is left to the accept-queue rule.
//
// A listener's counter also counts the duplicate SYNs its waiting requests
// discard, which a healthy listener with lossy clients sees too: when some
// moved listener's SYN queue was at its cap in a sample, only those are
// named.
func (s *Snapshot) synDropCulprits(r *DropReconciliation) (ls []*ListenerState, atCap, ok bool) {
	if !r.PerSocket() {
		return nil, false, false
	}
	acceptSide := s.Delta(tcpExtListenOverflows).Moved()
	var full []*ListenerState
	for _, l := range r.Moved {
		atCapHere := s.synQueueFull(l)
		if acceptSide && acceptQueueFull(l) && !atCapHere {
			continue
		}
		ls = append(ls, l)
		if atCapHere {
			full = append(full, l)
		}
	}
	if len(full) > 0 {
		return full, true, true
	}
	return ls, false, true
}

// acceptDropCulprits returns the listeners whose own drop counter moved
// because of their accept queue; ok is false when per-socket drops are
// unknown. When no SYN-queue counter moved (TCPReqQFullDrop, and the
// ListenDrops that neither queue counter explains), every moved listener
// is one, except those whose SYN queue was at its cap in a sample (a
// half-open flood with cookies on moves its listener's counter with the
// duplicate SYNs its requests discard); otherwise only those whose accept
// queue was full in a sample.
func (s *Snapshot) acceptDropCulprits(r *DropReconciliation) (ls []*ListenerState, ok bool) {
	if !r.PerSocket() {
		return nil, false
	}
	overflows := s.Delta(tcpExtListenOverflows)
	_, residual := residualDrops(r.ListenDrops, overflows, s.Delta(tcpExtTCPReqQFullDrop))
	synSide := s.Delta(tcpExtTCPReqQFullDrop).Moved() || residual
	for _, l := range r.Moved {
		if acceptQueueFull(l) || !synSide && !s.synQueueFull(l) {
			ls = append(ls, l)
		}
	}
	return ls, true
}

// culpritNote is the evidence note on a culprit listener's queues: atCap
// when its queue was at its cap in a sample, else why it is named.
func culpritNote(s *Snapshot, l *ListenerState, atCap bool, atCapNote string) string {
	switch {
	case atCap && s.synQueueFull(l):
		return atCapNote
	case l.Drops.Moved():
		return fmt.Sprintf("its own drop counter rose by %d although the queue was below its cap at every sample: it filled between samples", l.Drops.Delta)
	default:
		return "the fullest SYN queue at capture time, below its cap"
	}
}

// sameSocket reports whether o is the same socket as l: Listeners builds
// new states at every call, so states are compared by socket, not pointer.
func (l *ListenerState) sameSocket(o *ListenerState) bool {
	return o != nil && l.Cookie == o.Cookie && l.Inode == o.Inode && l.Local == o.Local
}

// acceptQueuePinned reports whether a listener's accept queue was over
// full (Recv-Q above Send-Q: sk_acceptq_is_full()) in every one of two or
// more samples: whatever its drop counter did, the next client is dropped.
func acceptQueuePinned(l *ListenerState) bool {
	if len(l.RecvQs) < 2 {
		return false
	}
	for _, q := range l.RecvQs {
		if q <= l.SendQ {
			return false
		}
	}
	return true
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

package analyze

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/snapdiag/snapdiag/bundle"
)

// ListenerState is one listener followed across the samples.
type ListenerState struct {
	// Listener is the listener as the last sample that has it shows it.
	bundle.Listener
	// RecvQs and SynRecvs are its readings, one per sample that has it.
	RecvQs   []uint32
	SynRecvs []int
	// Source is the listeners.json member of the last reading.
	Source string
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
			st.SynRecvs = append(st.SynRecvs, l.SynRecv)
			st.Source = bundle.SampleFile(sm.Index, bundle.SampleListeners)
		}
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
	return l.MaxSynRecv() >= limit && l.MaxSynRecv() > 0
}

// synQueueCap is how many requests a listener's SYN queue holds before SYNs
// are cookied or dropped: the listen backlog (Send-Q; Send-Q+1 from 6.13,
// see synQueueFull) and, with cookies off, the 3/4 rule of
// tcp_max_syn_backlog, which drops unproven peers once more than
// tcp_max_syn_backlog - tcp_max_syn_backlog/4 requests wait (branch F of
// tcp_conn_request(); docs/kernel-listen-path.md §1.2).
func (s *Snapshot) synQueueCap(l *ListenerState) int {
	limit := int(l.SendQ)
	if s.Kernel.AtLeast(6, 13, 0) {
		limit++
	}
	if c, _ := syncookies(s); c == 0 && s.Kernel.AtLeast(4, 4, 0) {
		if tmsb, ok := s.Sysctls.Int("net.ipv4.tcp_max_syn_backlog"); ok && tmsb > 0 {
			limit = min(limit, int(tmsb-tmsb>>2)+1)
		}
	}
	return max(limit, 1)
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
		if l.MaxSynRecv() == 0 {
			continue
		}
		r := float64(l.MaxSynRecv()) / float64(max(l.SendQ, 1))
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
			fmt.Sprintf("max over %d samples; Send-Q (backlog) %d. %s", len(l.SynRecvs), l.SendQ, note)),
		evValue(l.Source, "listener "+l.Local+" recv_q", float64(l.MaxRecvQ()),
			fmt.Sprintf("accept queue, max over %d samples; full above Send-Q %d", len(l.RecvQs), l.SendQ)),
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

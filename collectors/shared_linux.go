package collectors

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors/internal/sockdiag"
)

// Shared is what the collectors of one capture share, so that the kernel is
// asked each question once per capture: the sock_diag Dumper, which counts
// the dump requests, and the capture's first listener snapshot, which the
// listeners sampler records as its first sample and the processes (and
// packets) collectors read instead of dumping the listeners again. A Shared
// serves one capture; its zero value is ready.
type Shared struct {
	diag sockdiag.Dumper
	// bind sets diag's socket opener from the Host of the capture's first
	// dump: a Shared serves one capture, so one namespace.
	bind sync.Once

	mu sync.Mutex
	// base is the first LISTEN-only snapshot, once taken without error, and
	// firstTable the listener table it came from, which firstListeners
	// completes with the requests.
	base       []bundle.Listener
	baseSet    bool
	firstTable *listenerTable

	// fullMu guards first: the first listener snapshot with its SYN-RECV
	// counts, once taken without error.
	fullMu   sync.Mutex
	first    []bundle.Listener
	firstSet bool
	// samplerTook is set once the listeners sampler took first as its
	// sample: its later samples dump afresh.
	samplerTook bool

	// table hands the SYN_RECV requests the socket table's dump saw to the
	// first listener snapshot.
	table tableShare
}

// tableShareWait bounds how long the first listener snapshot waits for the
// socket table's dump to end before it walks the kernel's established hash
// itself. Every dump that asks for any state but LISTEN walks all of that
// hash's buckets (inet_diag_dump_icsk()): tcp_init() sizes it at a bucket
// per 128 KiB of memory, up to 524,288, and every network namespace's
// sockets share it, so the dump takes the lock of every bucket that holds a
// socket of any namespace. On a 2-core virtual machine with 262,144
// buckets, that walk costs about 1 ms of CPU on an idle host and 10-13 ms
// when the host holds 50,000 sockets, whichever namespace is dumped. The
// table's dump walks it anyway; a table of 50,000 sockets is dumped in
// about 100 ms. The wait holds back only the first sample's SYN-RECV counts.
const tableShareWait = 300 * time.Millisecond

// tableShareMaxSockets is the largest table (TCP sockets in use and in
// TIME_WAIT, from the namespace's sockstat) whose dump the first snapshot
// waits for: a larger one is unlikely to end within tableShareWait, and its
// own dump costs the snapshot less than the wait.
const tableShareMaxSockets = 80_000

// tableSmall reports whether the socket table of the namespace h reads is
// small enough for the first snapshot to share its dump: false when its
// size cannot be read.
func (h Host) tableSmall() bool {
	data, err := h.readNet("net/sockstat")
	if err != nil {
		return false
	}
	n, ok := sockstatTCP(data)
	return ok && n <= tableShareMaxSockets
}

// sockstatTCP returns the TCP sockets in use plus those in TIME_WAIT from a
// /proc/net/sockstat ("TCP: inuse 5 orphan 0 tw 2 alloc 9 mem 1").
func sockstatTCP(data []byte) (int, bool) {
	for line := range strings.Lines(string(data)) {
		rest, ok := strings.CutPrefix(line, "TCP:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		n, found := 0, 0
		for i := 0; i+1 < len(f); i += 2 {
			if f[i] != "inuse" && f[i] != "tw" {
				continue
			}
			v, err := strconv.Atoi(f[i+1])
			if err != nil || v < 0 {
				return 0, false
			}
			n = min(n, math.MaxInt-v) + v // saturates: no count wraps negative
			found++
		}
		if found != 2 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// tableShare is the socket table's dump as the first listener snapshot sees
// it. Capture arms it when a Sockets collector runs; that collector counts
// the request sockets of its dump (all states, so SYN_RECV ones too) by
// local endpoint, as listenerTable.add does, and ends it. Nothing else
// touches the counts, so they are read only after done is closed.
type tableShare struct {
	mu      sync.Mutex
	armed   bool
	claimed bool // a Sockets collector counts into requests
	taken   bool // the first snapshot has used (or given up on) the share
	done    chan struct{}
	ok      bool // the dump ended without error: the counts are whole
	// requests counts request sockets by family and unmapped local
	// endpoint, listenerTable.pending's key.
	requests map[requestKey]int
	// wait, when not 0, replaces tableShareWait: tests that count the
	// walks must not depend on how loaded the machine is.
	wait time.Duration
}

// arm makes the first listener snapshot wait for the socket table's dump.
func (t *tableShare) arm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.armed {
		t.armed, t.done, t.requests = true, make(chan struct{}), map[requestKey]int{}
	}
}

// claim returns the map the socket table's dump counts its request sockets
// into and the function that publishes them (ok: the dump ended without
// error), to be called once, when the dump ended; nil when the share is not
// armed or another dump already claimed it.
func (t *tableShare) claim() (map[requestKey]int, func(ok bool)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.armed || t.claimed {
		return nil, nil
	}
	t.claimed = true
	return t.requests, func(ok bool) {
		t.mu.Lock()
		t.ok = ok
		t.mu.Unlock()
		close(t.done)
	}
}

// giveUp marks the share taken without waiting for it.
func (t *tableShare) giveUp() {
	t.mu.Lock()
	t.taken = true
	t.mu.Unlock()
}

// take waits, at most tableShareWait (a quarter of the time ctx has left,
// if less) or until ctx ends, for the table's dump
// and returns its request counts; ok is false when the share is not armed,
// was taken before, or the dump failed or did not end in time. It gives the
// share up either way: only the first snapshot may use it.
func (t *tableShare) take(ctx context.Context) (map[requestKey]int, bool) {
	t.mu.Lock()
	if !t.armed || t.taken {
		t.mu.Unlock()
		return nil, false
	}
	t.taken = true
	done := t.done
	t.mu.Unlock()
	// A short deadline shortens the wait: the snapshot is the first
	// sample, and a sample that waits past the deadline is no sample.
	wait := cmp.Or(t.wait, tableShareWait)
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d)/4)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		return nil, false
	case <-ctx.Done():
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.requests, t.ok
}

// dumper returns the capture's sock_diag Dumper; outside a capture, nil
// (dumps not counted) or, to read another namespace, a Dumper of its own.
func (h Host) dumper() *sockdiag.Dumper {
	if h.Shared == nil {
		if h.NS == nil {
			return nil
		}
		return &sockdiag.Dumper{Open: h.opener()}
	}
	h.Shared.bind.Do(func() { h.Shared.diag.Open = h.opener() })
	return &h.Shared.diag
}

// HashWalks returns how many of the capture's sock_diag dump requests
// walked the kernel's established hash (sockdiag.Dumper.Walks).
func (s *Shared) HashWalks() int64 {
	if s == nil {
		return 0
	}
	return s.diag.Walks()
}

// DumpRequests returns how many sock_diag dump requests the collectors of
// the capture sent to the kernel.
func (s *Shared) DumpRequests() int64 {
	if s == nil {
		return 0
	}
	return s.diag.Requests()
}

// firstListenSockets returns the capture's first LISTEN sockets, with their
// queues but without owners and with SynRecv 0, taking them with a LISTEN-only dump
// (which walks only the kernel's listening hash) if no collector has yet.
// It never waits for the socket table: the collectors that need no SYN-RECV
// counts (the processes, the packet sample's ports) start from it at once.
// The caller owns the slice it gets. Outside a capture it dumps the
// listeners, SYN-RECV requests included, each time.
func (h Host) firstListenSockets(ctx context.Context) ([]bundle.Listener, error) {
	s := h.Shared
	if s == nil {
		return readListeners(ctx, h)
	}
	// The lock is held through the dump: a collector that asks while the
	// snapshot is being taken waits for it rather than dumping again. The
	// dump ends with ctx, so the wait does too.
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.baseSet {
		t := newListenerTable(h.zoner())
		if err := h.dumper().DumpOn(ctx, nil, sockdiag.StatesListen, sockdiag.ExtSkMemInfo, t.add); err != nil {
			return nil, fmt.Errorf("read tcp listeners: %w", err) // the next caller tries again
		}
		t.index()
		s.firstTable, s.base, s.baseSet = t, t.listeners(), true
	}
	return slices.Clone(s.base), nil
}

// firstListeners returns the capture's first listener snapshot: the
// listeners of firstListenSockets with the SYN-RECV requests of each
// attributed to it, taking them if no collector has yet. The requests come
// from the socket table's dump when it ends within tableShareWait
// (tableShare), else from a SYN-RECV dump of its own: the listeners and
// queues are read at the snapshot's time, the requests during the table's
// dump, and the kernel's established hash is walked once for both. The
// caller owns the slice it gets. Outside a capture it dumps the listeners
// each time.
func (h Host) firstListeners(ctx context.Context) ([]bundle.Listener, error) {
	s := h.Shared
	if s == nil {
		return readListeners(ctx, h)
	}
	// A lock of its own: firstListenSockets' callers do not wait for the
	// table's dump.
	s.fullMu.Lock()
	defer s.fullMu.Unlock()
	if s.firstSet {
		return slices.Clone(s.first), nil
	}
	if _, err := h.firstListenSockets(ctx); err != nil {
		s.table.giveUp() // a retry dumps the requests on its own
		return nil, err
	}
	t := s.firstTable // set once, with baseSet, and only read after
	if reqs, ok := s.table.take(ctx); ok {
		for k, n := range reqs {
			t.pending[k] += n
		}
	} else if err := h.dumper().DumpOn(ctx, nil, sockdiag.StatesSynRecv, 0, t.add); err != nil {
		clear(t.pending) // a retry counts them again
		return nil, fmt.Errorf("read tcp SYN-RECV sockets: %w", err)
	}
	t.attributePending()
	s.first, s.firstSet = t.listeners(), true
	return slices.Clone(s.first), nil
}

// firstSampleComing reports whether the listeners sampler has yet to take
// its first sample, the capture's first snapshot.
func (h Host) firstSampleComing() bool {
	s := h.Shared
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.samplerTook
}

// sampleListeners is the listeners sampler's sample: the capture's first
// snapshot the first time, a fresh dump after.
func (h Host) sampleListeners(ctx context.Context) ([]bundle.Listener, error) {
	s := h.Shared
	if s != nil {
		s.mu.Lock()
		took := s.samplerTook
		s.samplerTook = true
		s.mu.Unlock()
		if !took {
			return h.firstListeners(ctx)
		}
	}
	return readListeners(ctx, h)
}

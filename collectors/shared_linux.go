package collectors

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

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
	// first is the first listener snapshot, once taken without error.
	first    []bundle.Listener
	firstSet bool
	// samplerTook is set once the listeners sampler took first as its
	// sample: its later samples dump afresh.
	samplerTook bool

	// table, when not nil, is closed once the Sockets collector's dump of
	// the whole table has ended. That dump walks the established hash, where
	// the SYN-RECV requests are: the first listener snapshot takes its
	// requests from it (tableReqs, when tableOK) and dumps only the LISTEN
	// sockets itself, which walks the small listening hash alone, instead
	// of walking the established hash a second time. Set by expectTable
	// before any collector runs.
	table        chan struct{}
	tableClaimed atomic.Bool
	tableReqs    requestCounts
	tableOK      bool
}

// expectTable says that a collector of the capture (Sockets) will dump the
// whole socket table and hand its SYN-RECV requests to offerTable: the
// first listener snapshot waits for those instead of walking the
// established hash again. It must be called before the collectors start.
func (s *Shared) expectTable() {
	s.table = make(chan struct{})
}

// tableRequests returns the counts the whole-table dump fills with its
// SYN-RECV requests for the first snapshot, or nil when none are expected
// from it (outside a capture, or a second dump in the same capture).
func (h Host) tableRequests() requestCounts {
	s := h.Shared
	// Not s.mu: firstListeners holds it while it waits for the table.
	if s == nil || s.table == nil || !s.tableClaimed.CompareAndSwap(false, true) {
		return nil
	}
	return requestCounts{}
}

// offerTable ends the wait for the whole-table dump: reqs, counted by a
// dump that completed, are the first snapshot's requests; after a dump that
// failed or was cut short, the snapshot is taken by a combined dump of its
// own. It must be called once for each tableRequests that returned counts.
func (s *Shared) offerTable(reqs requestCounts, complete bool) {
	if complete {
		s.tableReqs, s.tableOK = reqs, true
	}
	close(s.table)
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

// DumpRequests returns how many sock_diag dump requests the collectors of
// the capture sent to the kernel.
func (s *Shared) DumpRequests() int64 {
	if s == nil {
		return 0
	}
	return s.diag.Requests()
}

// firstListeners returns the capture's first listener snapshot, taking it
// if no collector has yet. The caller owns the slice it gets. Outside a
// capture it dumps the listeners each time.
func (h Host) firstListeners(ctx context.Context) ([]bundle.Listener, error) {
	s := h.Shared
	if s == nil {
		return readListeners(ctx, h)
	}
	// The lock is held through the dump: a collector that asks while the
	// snapshot is being taken waits for it rather than dumping again. The
	// dump ends with ctx, so the wait does too.
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.firstSet && s.table != nil {
		ls, err := h.listenersWithTable(ctx)
		if err != nil {
			return nil, err
		}
		if ls != nil {
			s.first, s.firstSet = ls, true
		}
	}
	if !s.firstSet {
		ls, err := readListeners(ctx, h)
		if err != nil {
			return nil, err // the next caller tries again
		}
		s.first, s.firstSet = ls, true
	}
	return slices.Clone(s.first), nil
}

// listenersWithTable is the first snapshot of a capture whose Sockets
// collector dumps the whole table: the LISTEN sockets from a dump of their
// own, with their queues, backlogs and drops, and the SYN-RECV requests
// from the table, attributed to them. Nil, without an error, when the table
// dump did not complete. The listeners are read first, while the table
// dump runs, as the combined dump does (listening hash first, then the
// established one).
func (h Host) listenersWithTable(ctx context.Context) ([]bundle.Listener, error) {
	s := h.Shared
	t := newListenerTable(h.zoner())
	if err := h.dumper().Dump(ctx, sockdiag.StatesListen, sockdiag.ExtSkMemInfo, t.add); err != nil {
		return nil, fmt.Errorf("read tcp listeners: %w", err)
	}
	select {
	case <-s.table:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if !s.tableOK {
		return nil, nil
	}
	t.pending = s.tableReqs
	t.attributePending()
	return t.listeners(), nil
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

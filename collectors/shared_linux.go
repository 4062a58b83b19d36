package collectors

import (
	"context"
	"slices"
	"sync"

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
	if !s.firstSet {
		ls, err := readListeners(ctx, h)
		if err != nil {
			return nil, err // the next caller tries again
		}
		s.first, s.firstSet = ls, true
	}
	return slices.Clone(s.first), nil
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

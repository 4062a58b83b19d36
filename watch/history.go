package watch

import "github.com/snapdiag/snapdiag/collectors"

// History keeps the most recent counter and listener samples in memory, within
// a count and a byte bound, oldest dropped first. A watcher adds one sample per
// check interval; a capture writes them into the bundle as its first samples,
// so the report can say when the trouble began. A History is not safe for
// concurrent use: the watcher's loop owns it.
type History struct {
	maxSamples int
	maxBytes   int
	ring       []collectors.HistorySample
	head       int // index of the oldest sample in ring
	n          int
	bytes      int
}

// NewHistory returns a History holding at most maxSamples samples and
// maxBytes bytes of sample data.
func NewHistory(maxSamples, maxBytes int) *History {
	maxSamples = max(maxSamples, 0)
	return &History{maxSamples: maxSamples, maxBytes: maxBytes}
}

// Add appends s, dropping the oldest samples until both bounds hold. A sample
// larger than the byte bound on its own is not kept.
func (h *History) Add(s collectors.HistorySample) {
	if h.maxSamples == 0 {
		return
	}
	size := s.Size()
	if size > h.maxBytes {
		return
	}
	for h.n > 0 && (h.n >= h.maxSamples || h.bytes+size > h.maxBytes) {
		h.dropOldest()
	}
	// The ring grows on demand (a History sized for a day at 1 s costs
	// nothing until it fills); the loop above left n below maxSamples, so a
	// full ring may grow.
	switch {
	case h.n < len(h.ring):
		h.ring[(h.head+h.n)%len(h.ring)] = s
	case h.head == 0:
		h.ring = append(h.ring, s)
	default:
		h.ring = append(h.Samples(), s)
		h.head = 0
	}
	h.n++
	h.bytes += size
}

func (h *History) dropOldest() {
	old := &h.ring[h.head]
	h.bytes -= old.Size()
	*old = collectors.HistorySample{} // release its files now
	h.head = (h.head + 1) % len(h.ring)
	h.n--
	if h.n == 0 {
		h.head = 0
		h.ring = h.ring[:0]
	}
}

// Samples returns the samples, oldest first. The slice is new; the samples'
// file contents are shared and must not be modified.
func (h *History) Samples() []collectors.HistorySample {
	out := make([]collectors.HistorySample, 0, h.n)
	for i := range h.n {
		out = append(out, h.ring[(h.head+i)%len(h.ring)])
	}
	return out
}

// Len is the number of samples held.
func (h *History) Len() int { return h.n }

// Bytes is the sample data held, in bytes.
func (h *History) Bytes() int { return h.bytes }

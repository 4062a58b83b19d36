package collectors

import (
	"net/netip"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// Bounds of the first-segments thinning.
const (
	// maxAwaiting bounds the handshakes awaiting their client's answer.
	maxAwaiting = 1 << 16
	// awaitGrace is how long, once the table was full and cleared, every
	// segment to a listening port is written: the handshakes answered just
	// before the clear still get their ACK into the sample.
	awaitGrace = 3 * time.Second
	// firstSegments is how many client segments after a SYN-ACK are
	// written: the final ACK and the first data (or the data alone).
	firstSegments = 2
)

// flowKey names one connection by its client and server.
type flowKey struct{ client, server netip.AddrPort }

// firstSegmentThinner decides which of the segments the filter kept on the
// listening ports are written to the sample: the client's first segments
// after each SYN-ACK the sample holds (what tells a completed handshake from
// a half-open one), not the ACK stream of every established connection on
// the port, which would spend the packet limit in a second on a busy server.
// SYN, FIN and RST segments, and everything not to a listening port, are
// always written.
type firstSegmentThinner struct {
	listen map[uint16]bool
	// limit bounds awaiting (maxAwaiting).
	limit int
	// awaiting counts, per handshake answered with a SYN-ACK, the client
	// segments written since.
	awaiting map[flowKey]int
	// graceUntil: until then every segment to a listening port is written
	// (the table was full and was cleared).
	graceUntil time.Time
	// dropped counts the segments left out; cleared counts the times the
	// table filled.
	dropped, cleared int
}

func newFirstSegmentThinner(listen []int) *firstSegmentThinner {
	if len(listen) == 0 {
		return nil
	}
	t := &firstSegmentThinner{listen: map[uint16]bool{}, limit: maxAwaiting, awaiting: map[flowKey]int{}}
	for _, p := range listen {
		t.listen[uint16(p)] = true
	}
	return t
}

// keep reports whether the packet is written; seg is its TCP segment when
// ok.
func (t *firstSegmentThinner) keep(seg *bundle.TCPSegment, ok bool, now time.Time) bool {
	if !ok {
		return true
	}
	synAck := seg.Has(bundle.TCPFlagSYN | bundle.TCPFlagACK)
	switch {
	case synAck && t.listen[seg.Src.Port()]:
		k := flowKey{client: seg.Dst, server: seg.Src}
		if _, ok := t.awaiting[k]; !ok && len(t.awaiting) >= t.limit {
			// A flood of handshakes that never end fills the table:
			// start afresh, and write everything for a while so the
			// handshakes answered before the clear lose nothing.
			clear(t.awaiting)
			t.graceUntil, t.cleared = now.Add(awaitGrace), t.cleared+1
		}
		t.awaiting[k] = 0
		return true
	case !t.listen[seg.Dst.Port()] || seg.Flags&(bundle.TCPFlagSYN|bundle.TCPFlagFIN|bundle.TCPFlagRST) != 0:
		if seg.Flags&(bundle.TCPFlagFIN|bundle.TCPFlagRST) != 0 {
			delete(t.awaiting, flowKey{client: seg.Src, server: seg.Dst})
		}
		return true
	}
	k := flowKey{client: seg.Src, server: seg.Dst}
	n, ok := t.awaiting[k]
	switch {
	case ok:
		if n+1 >= firstSegments {
			delete(t.awaiting, k)
		} else {
			t.awaiting[k] = n + 1
		}
		return true
	case now.Before(t.graceUntil):
		return true
	}
	t.dropped++
	return false
}

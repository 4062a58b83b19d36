package collectors

import (
	"hash/maphash"
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

// awaitKey is a handshake's key in firstSegmentThinner.awaiting: flowKey
// hashed to 64 bits under a seed of the thinner's own.
//
// Why not flowKey itself: under a flood every SYN-ACK the sample keeps is
// awaited and never answered, thousands of them, and a table of 64-byte
// keys holding pointers (netip.Addr's zone) grew, was zeroed and faulted
// in page by page and scanned by the GC: over half of the sample's CPU in
// reading the ring (perf under the lab's 50,000 SYN/s flood). Two of
// at most maxAwaiting handshakes share a 64-bit hash about once in 10^10
// captures, and then only one extra client segment is written.
type awaitKey uint64

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
	awaiting map[awaitKey]uint8
	seed     maphash.Seed
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
	t := &firstSegmentThinner{listen: map[uint16]bool{}, limit: maxAwaiting, awaiting: map[awaitKey]uint8{},
		seed: maphash.MakeSeed()}
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
		k := t.key(seg.Dst, seg.Src)
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
			delete(t.awaiting, t.key(seg.Src, seg.Dst))
		}
		return true
	}
	k := t.key(seg.Src, seg.Dst)
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

// key is the awaiting table's key of the handshake between client and
// server.
func (t *firstSegmentThinner) key(client, server netip.AddrPort) awaitKey {
	return awaitKey(maphash.Comparable(t.seed, flowKey{client: client, server: server}))
}

package collectors

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// Bounds of the flow sampling.
const (
	// maxAdmitted bounds the flows whose handshake the sampling admitted
	// and follows, over two seconds; a second's table is cleared when it
	// holds half of them.
	maxAdmitted = 1 << 16
	// maxSampleSeconds bounds the per-second records of one sample.
	maxSampleSeconds = 3600
	// maxOneIn bounds the flow-sampling divisor.
	maxOneIn = 1 << 20
	// steerEvery is how often a second's divisor may change.
	steerEvery = time.Second / 16
)

// flowSampler spreads a packet sample's limits over its whole window.
//
// Why per flow, and why per second: under a flood the old sample kept the
// first 20,000 packets, a fraction of a second at 50,000 packets a second,
// and showed the window's first moment only. Splitting the limits into
// equal shares per second of the window (budget) makes every second
// present. Within a second, keeping 1 packet in k would cut handshakes in
// pieces (a SYN kept, its client's ACK left out, reads as half-open), so the
// sampling keeps whole flows instead: a flow is kept when a keyed hash of
// its two endpoints, the same for both directions, is 0 modulo oneIn. The
// key is random per capture, so a flooder cannot pick addresses that are
// always (or never) kept. oneIn is a power of two, so the flows kept at 2k
// are a subset of those kept at k. It is set at each second's start from
// the previous second's traffic, and doubled within a second whose kept
// packets run ahead of an even pace, so a second's share is spread over it
// rather than spent in its first milliseconds. A flow whose SYN or SYN-ACK
// was kept is followed (admitted) for a second or two even if oneIn grows, so a kept
// handshake keeps both its ends; the table of those is bounded. Packets that
// are not TCP are kept 1 in oneIn in arrival order.
//
// Each second records what it was offered and what it kept, so analyze can
// scale the sample's counts by offered/kept and say they are estimates.
type flowSampler struct {
	start      time.Time
	budget     int64 // packets a second may keep
	byteBudget int64 // pcap bytes a second may keep
	seed       maphash.Seed

	sec      int // index of the second cur describes
	cur      bundle.PacketSecond
	curBytes int64
	oneIn    uint64
	// nextSteer and steerKept are when steer looks again: at that time, or
	// once the second kept that many packets.
	nextSteer time.Time
	steerKept int64
	seconds   []bundle.PacketSecond
	// gens are the flows admitted in this second (0) and the last (1):
	// a handshake is followed for one to two seconds, long enough for a
	// client's answer to its SYN-ACK.
	gens  [2]admitGen
	drops int64
}

// newFlowSampler shares maxPackets and maxBytes between the seconds of a
// window that starts at start.
func newFlowSampler(start time.Time, window time.Duration, maxPackets int, maxBytes int64) *flowSampler {
	secs := int64((window + time.Second - 1) / time.Second)
	secs = min(max(secs, 1), maxSampleSeconds)
	return &flowSampler{
		start:      start,
		budget:     max(int64(maxPackets)/secs, 1),
		byteBudget: max(maxBytes/secs, 1),
		seed:       maphash.MakeSeed(),
		oneIn:      1,
		cur:        bundle.PacketSecond{OneIn: 1},
		gens:       [2]admitGen{{flows: map[uint64]struct{}{}}, {flows: map[uint64]struct{}{}}},
	}
}

// admit decides on one packet at ts of size pcap bytes: seg is its TCP
// segment when ok. A true answer must be followed by kept once the packet
// is written.
func (f *flowSampler) admit(seg *bundle.TCPSegment, ok bool, ts time.Time, size int64) bool {
	if !ok {
		return f.decideOther(ts) && f.fits(size)
	}
	return f.decide(f.flowHash(seg), seg.Flags, ts) && f.fits(size)
}

// offer counts a packet at ts as offered and says whether the second's
// share has room left.
func (f *flowSampler) offer(ts time.Time) bool {
	f.roll(ts)
	f.cur.Offered++
	if f.cur.Kept >= f.budget {
		f.drops++
		return false
	}
	f.steer(ts)
	return true
}

// decideOther decides on a packet that is not TCP: 1 in oneIn, in order.
func (f *flowSampler) decideOther(ts time.Time) bool {
	if !f.offer(ts) {
		return false
	}
	if uint64(f.cur.Offered)%f.oneIn == 0 {
		return true
	}
	f.drops++
	return false
}

// decide decides on a TCP segment at ts of the flow whose hash is h, with
// the TCP flags given.
func (f *flowSampler) decide(h uint64, flags uint8, ts time.Time) bool {
	if !f.offer(ts) {
		return false
	}
	end := flags&(bundle.TCPFlagFIN|bundle.TCPFlagRST) != 0
	switch {
	case h%f.oneIn == 0:
		if flags&bundle.TCPFlagSYN != 0 && !end {
			f.admit1(h)
		}
	case f.followed(h):
	default:
		f.drops++
		return false
	}
	if end {
		delete(f.gens[0].flows, h)
		delete(f.gens[1].flows, h)
	}
	return true
}

// fits says whether a packet of size pcap bytes that decide let in fits in
// the second's share of bytes; one that does not is a sampling drop.
func (f *flowSampler) fits(size int64) bool {
	if f.curBytes+size > f.byteBudget {
		f.drops++
		return false
	}
	return true
}

// admit1 follows the flow with hash h to its end.
func (f *flowSampler) admit1(h uint64) {
	g := &f.gens[0]
	if len(g.flows) >= maxAdmitted/2 {
		clear(g.flows)
	}
	g.flows[h] = struct{}{}
	if g.minOneIn == 0 || f.oneIn < g.minOneIn {
		g.minOneIn = f.oneIn
	}
}

// followed reports whether the flow with hash h was admitted in this
// second or the last. A generation is only looked up when h passes its
// smallest divisor: a flow admitted at k has h%k == 0, so under a steady
// flood most packets need no lookup at all.
func (f *flowSampler) followed(h uint64) bool {
	for i := range f.gens {
		g := &f.gens[i]
		if g.minOneIn != 0 && h%g.minOneIn == 0 {
			if _, ok := g.flows[h]; ok {
				return true
			}
		}
	}
	return false
}

// flowHash is the keyed hash of the segment's two endpoints, the same in
// both directions and the same as rawTCP's for the segment.
func (f *flowSampler) flowHash(seg *bundle.TCPSegment) uint64 {
	k := segKey(seg)
	return f.hash(&k)
}

// segKey is the flow key of a decoded segment.
func segKey(seg *bundle.TCPSegment) flowBytes {
	// Ordered by the 16-byte forms, as rawTCP orders them: an IPv6
	// packet's IPv4-mapped address decodes as IPv4, which Addr.Compare
	// would put first whatever its bytes.
	a16, b16 := seg.Src.Addr().As16(), seg.Dst.Addr().As16()
	ap, bp := seg.Src.Port(), seg.Dst.Port()
	if c := bytes.Compare(b16[:], a16[:]); c < 0 || c == 0 && bp < ap {
		a16, b16, ap, bp = b16, a16, bp, ap
	}
	var k flowBytes
	copy(k[0:16], a16[:])
	binary.BigEndian.PutUint16(k[16:], ap)
	copy(k[18:34], b16[:])
	binary.BigEndian.PutUint16(k[34:], bp)
	return k
}

// flowBytes is a flow's key: the lower endpoint (address as 16 bytes,
// IPv4 mapped into IPv6, then port), then the higher one, in network order.
type flowBytes [36]byte

// rawSegment is what the sampling needs of a TCP segment, read straight
// from the packet.
type rawSegment struct {
	key   flowBytes
	flags uint8
	dport uint16
}

// rawTCP reads a TCP segment's endpoints and flags from a packet's network
// header on, without decoding the rest: the sampling decides on most of a
// flood's packets with this alone. It reads IPv4 (not a later fragment)
// and IPv6 whose first next header is TCP; ok is false for anything else
// or anything too short, and the caller decodes the packet in full.
func rawTCP(pkt []byte) (r rawSegment, ok bool) {
	var src, dst [16]byte
	var tcp []byte
	switch {
	case len(pkt) >= 20 && pkt[0]>>4 == 4:
		ihl := int(pkt[0]&0x0f) * 4
		if ihl < 20 || pkt[9] != 6 || binary.BigEndian.Uint16(pkt[6:])&0x1fff != 0 || len(pkt) < ihl+14 {
			return r, false
		}
		src[10], src[11], dst[10], dst[11] = 0xff, 0xff, 0xff, 0xff
		copy(src[12:], pkt[12:16])
		copy(dst[12:], pkt[16:20])
		tcp = pkt[ihl:]
	case len(pkt) >= 40+14 && pkt[0]>>4 == 6 && pkt[6] == 6:
		copy(src[:], pkt[8:24])
		copy(dst[:], pkt[24:40])
		tcp = pkt[40:]
	default:
		return r, false
	}
	sport, dport := binary.BigEndian.Uint16(tcp[0:]), binary.BigEndian.Uint16(tcp[2:])
	r.flags, r.dport = tcp[13], dport
	if c := bytes.Compare(dst[:], src[:]); c < 0 || c == 0 && dport < sport {
		src, dst, sport, dport = dst, src, dport, sport
	}
	copy(r.key[0:16], src[:])
	binary.BigEndian.PutUint16(r.key[16:], sport)
	copy(r.key[18:34], dst[:])
	binary.BigEndian.PutUint16(r.key[34:], dport)
	return r, true
}

// hash is the keyed hash of a flow's key.
func (f *flowSampler) hash(k *flowBytes) uint64 { return maphash.Bytes(f.seed, k[:]) }

// steer sets the divisor for the rest of the second, every steerEvery or
// every sixteenth of the budget kept: the packets still to come at the
// rate offered so far, over what is left of seven eighths of the budget,
// rounded up to a power of two. The eighth kept back lets the flows already
// admitted finish, and the second's last flows keep both their ends.
func (f *flowSampler) steer(ts time.Time) {
	if ts.Before(f.nextSteer) && f.cur.Kept < f.steerKept {
		return
	}
	elapsed := ts.Sub(f.secondStart())
	if elapsed < steerEvery/4 {
		// Too early in the second to tell its rate: a burst of a few
		// packets in a millisecond is no flood.
		return
	}
	f.nextSteer, f.steerKept = ts.Add(steerEvery), f.cur.Kept+max(f.budget/16, 1)
	left := max(time.Second-elapsed, time.Millisecond)
	coming := float64(f.cur.Offered) * float64(left) / float64(elapsed)
	room := float64(f.budget*7/8 - f.cur.Kept)
	f.oneIn = 1
	for f.oneIn < maxOneIn && (room <= 0 || coming > room*float64(f.oneIn)) {
		f.oneIn *= 2
	}
	f.cur.OneIn = max(f.cur.OneIn, int(f.oneIn))
}

// admitGen is one second's admitted flows, by hash, and the smallest
// divisor any of them was admitted at (0 when none was).
type admitGen struct {
	flows    map[uint64]struct{}
	minOneIn uint64
}

// kept counts a packet admit let in, once written.
func (f *flowSampler) kept(size int64) {
	f.cur.Kept++
	f.curBytes += size
}

func (f *flowSampler) secondStart() time.Time {
	return f.start.Add(time.Duration(f.sec) * time.Second)
}

// roll moves to ts's second, recording the seconds before it, and sets the
// new second's divisor from the last one's traffic: the smallest power of
// two that brings what it was offered within the budget.
func (f *flowSampler) roll(ts time.Time) {
	d := ts.Sub(f.start)
	if d < 0 {
		// Queued just before the window's start was taken.
		d = 0
	}
	i := min(int(d/time.Second), maxSampleSeconds-1)
	if i <= f.sec {
		return
	}
	offered := f.cur.Offered
	f.gens[0], f.gens[1] = f.gens[1], f.gens[0]
	clear(f.gens[0].flows)
	f.gens[0].minOneIn = 0
	if i > f.sec+1 {
		// A quiet second in between: nothing to go by.
		offered = 0
	}
	for f.sec < i {
		f.seconds = append(f.seconds, f.cur)
		f.sec++
		f.cur = bundle.PacketSecond{OneIn: 1}
	}
	f.oneIn = 1
	for uint64(offered) > uint64(f.budget)*f.oneIn && f.oneIn < maxOneIn {
		f.oneIn *= 2
	}
	// The last second's divisor holds until steer has this second's own
	// rate to go by.
	f.curBytes = 0
	f.nextSteer, f.steerKept = f.secondStart().Add(steerEvery), max(f.budget/16, 1)
	f.cur.OneIn = int(f.oneIn)
}

// info is the sampling's record for the manifest, seconds up to end.
func (f *flowSampler) info(read int64, freezes uint32, end time.Time) *bundle.PacketSampling {
	f.roll(end.Add(-time.Nanosecond))
	return &bundle.PacketSampling{
		Method:          bundle.SamplingPerFlow,
		Start:           f.start,
		BudgetPerSecond: int(f.budget),
		Read:            read,
		SamplingDrops:   f.drops,
		KernelFreezes:   freezes,
		Seconds:         append(append([]bundle.PacketSecond(nil), f.seconds...), f.cur),
	}
}

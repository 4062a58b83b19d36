package collectors

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
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
	// maxKernelSwitches bounds the kernel divisors remembered to weigh the
	// packets still in the ring when the divisor changed: the ring holds
	// well under a second of traffic.
	maxKernelSwitches = 8
	// kernelFollow is how long a flow admitted at a divisor keeps the
	// kernel's divisor from rising past it: long enough for a client's
	// answer to a SYN-ACK over any path but a broken one.
	kernelFollow = 500 * time.Millisecond
	// minPreview is the fewest packets of a ring block whose rate steer
	// goes by before a second's own traffic tells it (preview), when they
	// span steerEvery/4; minPreviewBurst, when they span less.
	minPreview      = 64
	minPreviewBurst = 1024
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
//
// Why part of it in the kernel: every packet the filter passes is copied
// into the ring and read by snapdiag, only to be left out here, and under a
// 50,000/s flood that copying and reading is most of the sample's CPU. The
// flow hash is therefore one the filter can compute too (kernelFlowHash):
// once a second must keep 1 flow in oneIn, the filter is swapped for one
// that passes 1 in kernel of them (SO_ATTACH_FILTER replaces it
// atomically), all of oneIn (this side still raises its own divisor
// within the second; the kernel's follows), never more than the smallest
// divisor a flow was admitted at in the last kernelFollow, so a handshake
// admitted here does not lose its end in the kernel. (Half of oneIn, as
// first written, read twice what was kept for nothing.) Both test the same
// hash's top bits, so what the kernel passes at k contains
// what is kept at 2k. Each packet read then stands for kernel packets on
// the wire (Estimated), and the steering works on those estimates.
type flowSampler struct {
	start      time.Time
	budget     int64 // packets a second may keep
	byteBudget int64 // pcap bytes a second may keep
	key        uint32

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

	// kernelListen are the ports whose segments that are no SYN, FIN or
	// RST go through the filter's flow sampling (its listening ports). The
	// filter passes such segments of the focus ports (Host.Ports) without
	// sampling them, so each of those stands for one packet, whatever the
	// kernel's divisor.
	kernelListen map[uint16]bool
	// setKernel, when set, asks the kernel's filter to pass 1 flow in k
	// (a power of two) and returns when that took effect; nil leaves all
	// the sampling here.
	setKernel func(k uint64) (time.Time, error)
	// kernel is the kernel's divisor now; switches are the last changes,
	// newest last, to weigh packets by the divisor they met. The first
	// entry, from the zero time, holds the divisor before the oldest
	// change remembered.
	kernel   uint64
	switches []kernelSwitch
	// admittedAt is when a flow was last admitted at divisor 2^i.
	admittedAt [64]time.Time
	// blockRate is the packets a second on the wire that the ring block
	// being read shows (preview), 0 when it shows none.
	blockRate float64
	// kernelErr is the first failure to change the kernel's divisor; the
	// sampling goes on here alone.
	kernelErr error
}

// kernelSwitch is a change of the kernel's divisor to oneIn at since.
type kernelSwitch struct {
	since time.Time
	oneIn uint64
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
		key:        rand.Uint32(),
		oneIn:      1,
		kernel:     1,
		switches:   []kernelSwitch{{oneIn: 1}},
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
	return f.decide(f.flowHash(seg), seg.Flags, seg.Dst.Port(), ts) && f.fits(size)
}

// offer counts a packet at ts as offered, standing for weight packets on
// the wire, and says whether the second's share has room left.
func (f *flowSampler) offer(ts time.Time, weight uint64) bool {
	f.roll(ts)
	f.cur.Offered++
	f.cur.Estimated += int64(weight)
	if f.cur.Kept >= f.budget {
		f.drops++
		return false
	}
	f.steer(ts)
	return true
}

// decideOther decides on a packet that is not TCP: 1 in oneIn, in order.
func (f *flowSampler) decideOther(ts time.Time) bool {
	// The kernel samples TCP flows only.
	if !f.offer(ts, 1) {
		return false
	}
	if uint64(f.cur.Offered)%f.oneIn == 0 {
		return true
	}
	f.drops++
	return false
}

// decide decides on a TCP segment at ts to port dport of the flow whose
// hash is h, with the TCP flags given.
func (f *flowSampler) decide(h uint64, flags uint8, dport uint16, ts time.Time) bool {
	end := flags&(bundle.TCPFlagFIN|bundle.TCPFlagRST) != 0
	weight := f.kernelAt(ts)
	if flags&bundle.TCPFlagSYN == 0 && !end && !f.kernelListen[dport] {
		// The filter's focus-port test accepts it unsampled (program).
		weight = 1
	}
	if !f.offer(ts, weight) {
		return false
	}
	switch {
	case h%f.oneIn == 0:
		if flags&bundle.TCPFlagSYN != 0 && !end {
			f.admit1(h, ts)
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
func (f *flowSampler) admit1(h uint64, ts time.Time) {
	f.admittedAt[bits.TrailingZeros64(f.oneIn)] = ts
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

// flowHash is the flow hash of a decoded segment, the same in both
// directions and the same as hashRaw's for the packet.
func (f *flowSampler) flowHash(seg *bundle.TCPSegment) uint64 {
	var r rawSegment
	src, dst := seg.Src.Addr(), seg.Dst.Addr()
	if src.Is4() && dst.Is4() {
		a, b := src.As4(), dst.As4()
		copy(r.a[:], a[:])
		copy(r.b[:], b[:])
	} else {
		// An IPv4 address carried in an IPv6 packet decodes as IPv6 here
		// only when it is not IPv4-mapped; a mapped one is never on the
		// wire, and at worst its flow is sampled apart from the kernel's.
		r.a, r.b, r.v6 = src.As16(), dst.As16(), true
	}
	r.aport, r.bport = seg.Src.Port(), seg.Dst.Port()
	return f.hashRaw(&r)
}

// rawSegment is what the sampling needs of a TCP segment, read straight
// from the packet.
type rawSegment struct {
	// a and b are the source and destination addresses: 16 bytes for
	// IPv6, the first 4 for IPv4.
	a, b         [16]byte
	v6           bool
	aport, bport uint16
	flags        uint8
}

// rawTCP reads a TCP segment's endpoints and flags from a packet's network
// header on, without decoding the rest: the sampling decides on most of a
// flood's packets with this alone. It reads IPv4 (not a later fragment)
// and IPv6 whose first next header is TCP; ok is false for anything else
// or anything too short, and the caller decodes the packet in full.
func rawTCP(pkt []byte) (r rawSegment, ok bool) {
	be := binary.BigEndian
	var tcp []byte
	switch {
	case len(pkt) >= 20 && pkt[0]>>4 == 4:
		ihl := int(pkt[0]&0x0f) * 4
		if ihl < 20 || pkt[9] != 6 || be.Uint16(pkt[6:])&0x1fff != 0 || len(pkt) < ihl+14 {
			return r, false
		}
		copy(r.a[:4], pkt[12:16])
		copy(r.b[:4], pkt[16:20])
		tcp = pkt[ihl:]
	case len(pkt) >= 40+14 && pkt[0]>>4 == 6 && pkt[6] == 6:
		copy(r.a[:], pkt[8:24])
		copy(r.b[:], pkt[24:40])
		r.v6 = true
		tcp = pkt[40:]
	default:
		return r, false
	}
	r.aport, r.bport = be.Uint16(tcp[0:]), be.Uint16(tcp[2:])
	r.flags = tcp[13]
	return r, true
}

// hashRaw is the segment's flow hash: the kernel's (kernelFlowHash under
// the sampler's key), bit-reversed so that "the top n bits of the kernel's
// hash are zero", which the filter tests, reads here as "h is 0 modulo
// 2^n".
func (f *flowSampler) hashRaw(r *rawSegment) uint64 {
	n := 4
	if r.v6 {
		n = 16
	}
	return uint64(bits.Reverse32(kernelFlowHash(r.a[:n], r.b[:n], r.aport, r.bport, f.key)))
}

// kernelAt is the kernel's divisor a packet stamped ts met: the last switch
// at or before ts.
func (f *flowSampler) kernelAt(ts time.Time) uint64 {
	for i := len(f.switches) - 1; i >= 0; i-- {
		if !ts.Before(f.switches[i].since) {
			return f.switches[i].oneIn
		}
	}
	return f.kernel
}

// steerKernel moves as much of the divisor as it may into the kernel's
// filter at ts: all of oneIn, bounded by the smallest divisor a flow was
// admitted at in the last kernelFollow, so each of those still passes the
// filter. It changes the filter only when that bound moved.
func (f *flowSampler) steerKernel(ts time.Time) {
	if f.setKernel == nil || f.kernelErr != nil {
		return
	}
	k := f.oneIn
	for l := uint64(1); l < k; l *= 2 {
		if at := f.admittedAt[bits.TrailingZeros64(l)]; !at.IsZero() && ts.Sub(at) < kernelFollow {
			k = l
			break
		}
	}
	if k == f.kernel {
		return
	}
	since, err := f.setKernel(k)
	if err != nil {
		f.kernelErr = err
		return
	}
	if len(f.switches) > maxKernelSwitches {
		// The oldest change is forgotten: what came before the next one
		// met its divisor.
		f.switches[0].oneIn = f.switches[1].oneIn
		f.switches = append(f.switches[:1], f.switches[2:]...)
	}
	f.switches = append(f.switches, kernelSwitch{since: since, oneIn: k})
	f.kernel = k
	f.cur.KernelOneIn = max(f.cur.KernelOneIn, int(k))
}

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
	left := max(time.Second-elapsed, time.Millisecond)
	var coming float64
	switch {
	case elapsed >= steerEvery/4:
		coming = float64(f.cur.Estimated) * float64(left) / float64(elapsed)
	case f.blockRate > 0:
		// Too early in the second to tell its rate from what it was
		// offered, but the ring block being read says it (preview).
		coming = f.blockRate * left.Seconds()
	default:
		// Too early to tell: a burst of a few packets in a
		// millisecond is no flood.
		return
	}
	f.nextSteer, f.steerKept = ts.Add(steerEvery), f.cur.Kept+max(f.budget/16, 1)
	room := float64(f.budget*7/8 - f.cur.Kept)
	// The kernel already passes only 1 flow in f.kernel: this side can
	// divide further, not less.
	f.oneIn = f.kernel
	for f.oneIn < maxOneIn && (room <= 0 || coming > room*float64(f.oneIn)) {
		f.oneIn *= 2
	}
	f.cur.OneIn = max(f.cur.OneIn, int(f.oneIn))
	f.steerKernel(ts)
}

// preview tells the sampler that the packets it is about to be offered, n
// of them, were stamped from first to last (one ring block), so that steer
// can go by their rate before the second's own traffic tells it.
//
// Why: at the window's start the sampler knows no rate, and deciding the
// first packets at a divisor of 1 admits their flows, which keeps the
// kernel's divisor at 1 for kernelFollow (steerKernel): under a 50,000/s
// flood that was half a second of every packet copied to the ring and read
// (read four to five times what was kept over a 3 s window). A retired
// block holds up to thousands of packets, or what came within ringRetire,
// so its rate is known before its first packet is decided. A block tells
// a rate when its packets span as long as steer waits for its own
// (steerEvery/4), at least minPreview of them, or when they are a flood's
// burst, minPreviewBurst of them over at least a millisecond: a burst of a
// hundred packets in a few milliseconds (a handful of connections) is no
// flood, and must not set the second's divisor.
func (f *flowSampler) preview(n int, first, last time.Time) {
	f.blockRate = 0
	span := last.Sub(first)
	if span >= time.Millisecond && (n >= minPreview && span >= steerEvery/4 || n >= minPreviewBurst) {
		// Each packet read stands for the kernel's divisor on the wire.
		f.blockRate = float64(n-1) * float64(f.kernel) / span.Seconds()
	}
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
	offered := f.cur.Estimated
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
	if f.oneIn == 1 {
		// The last second was within its share: a flood that starts now
		// must be steered from its first block's rate (preview), not
		// after a sixteenth of the budget admitted at 1, which would hold
		// the kernel's divisor at 1 for kernelFollow.
		f.nextSteer = time.Time{}
	}
	f.steerKernel(ts)
	f.oneIn = max(f.oneIn, f.kernel)
	f.cur.OneIn = int(f.oneIn)
	f.cur.KernelOneIn = max(f.cur.KernelOneIn, int(f.kernel))
}

// info is the sampling's record for the manifest, seconds up to end.
func (f *flowSampler) info(read int64, freezes uint32, end time.Time) *bundle.PacketSampling {
	f.roll(end.Add(-time.Nanosecond))
	seconds := append(append([]bundle.PacketSecond(nil), f.seconds...), f.cur)
	for i := range seconds {
		// Only a second the kernel sampled in says so, and estimates.
		if seconds[i].KernelOneIn <= 1 {
			seconds[i].KernelOneIn, seconds[i].Estimated = 0, 0
		}
	}
	return &bundle.PacketSampling{
		Method:          bundle.SamplingPerFlow,
		Start:           f.start,
		BudgetPerSecond: int(f.budget),
		Read:            read,
		SamplingDrops:   f.drops,
		KernelFreezes:   freezes,
		Seconds:         seconds,
	}
}

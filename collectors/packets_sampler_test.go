package collectors

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// floodHandshake is the i-th handshake of the tests' flood to
// 10.0.0.1:8080: its client, its SYN and the server's SYN-ACK.
func floodHandshake(i int) (client netip.AddrPort, syn, synAck bundle.TCPSegment) {
	server := netip.MustParseAddrPort("10.0.0.1:8080")
	client = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), uint16(1024+i%60000))
	return client, bundle.TCPSegment{Src: client, Dst: server, Flags: bundle.TCPFlagSYN},
		bundle.TCPSegment{Src: server, Dst: client, Flags: bundle.TCPFlagSYN | bundle.TCPFlagACK}
}

// TestFlowSamplerSpreadsAFlood offers the sampler five seconds of a 50,000
// SYN/s flood, every SYN answered by a SYN-ACK, within a 20,000-packet
// limit: every second must keep packets, no second more than its share,
// the flow divisor must rise, every kept SYN must have its SYN-ACK kept
// (whole flows), and the seconds' offered counts must add up.
func TestFlowSamplerSpreadsAFlood(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	const (
		window = 5 * time.Second
		rate   = 50_000
		limit  = 20_000
	)
	f := newFlowSampler(start, window, limit, 1<<30)
	keptSYN := map[netip.AddrPort]bool{}
	keptPairs, offered := 0, 0
	for i := range rate * int(window/time.Second) {
		ts := start.Add(time.Duration(i) * time.Second / rate)
		client, syn, synAck := floodHandshake(i)
		offered += 2
		if f.admit(&syn, true, ts, 100) {
			f.kept(100)
			keptSYN[client] = true
		}
		if f.admit(&synAck, true, ts, 100) {
			f.kept(100)
			if !keptSYN[client] {
				t.Fatalf("flow %d: SYN-ACK kept without its SYN", i)
			}
			keptPairs++
		} else if keptSYN[client] {
			t.Fatalf("flow %d: SYN kept, its SYN-ACK left out", i)
		}
	}
	info := f.info(int64(offered), 0, start.Add(window))
	if len(info.Seconds) != 5 {
		t.Fatalf("%d seconds recorded, want 5", len(info.Seconds))
	}
	var sum, kept int64
	for i, s := range info.Seconds {
		if s.Kept == 0 || s.Kept > int64(info.BudgetPerSecond) {
			t.Errorf("second %d kept %d packets, want 1..%d", i, s.Kept, info.BudgetPerSecond)
		}
		if s.OneIn < 2 || s.Scale() <= 1 {
			t.Errorf("second %d: 1 in %d flows, scale %.2f; want sampling", i, s.OneIn, s.Scale())
		}
		sum += s.Offered
		kept += s.Kept
	}
	if sum != int64(offered) || kept+info.SamplingDrops != sum || kept != int64(2*keptPairs) {
		t.Errorf("offered %d (recorded %d), kept %d + dropped %d; %d whole flows kept", offered, sum, kept, info.SamplingDrops, keptPairs)
	}
	if kept > limit {
		t.Errorf("kept %d packets, limit %d", kept, limit)
	}
}

// TestFlowSamplerInKernel offers the same flood through a model of the
// kernel's filter, which passes a flow only when its hash's top bits are
// zero at the divisor the sampler last set, in blocks as the ring hands
// them over: the divisor must move into the kernel from the first second,
// little more than what is kept may reach the sampler, kept flows must
// stay whole, and the seconds' estimates must still add up to the flood;
// the same when the flood starts after a quiet second of the window.
func TestFlowSamplerInKernel(t *testing.T) {
	t.Run("from the start", func(t *testing.T) { flowSamplerInKernel(t, 0) })
	t.Run("after a quiet second", func(t *testing.T) { flowSamplerInKernel(t, 1) })
}

// flowSamplerInKernel runs TestFlowSamplerInKernel with a flood that
// starts quiet seconds into the window.
func flowSamplerInKernel(t *testing.T, quiet int) {
	start := time.Unix(1_700_000_000, 0)
	const (
		window = 4 * time.Second
		rate   = 50_000
		limit  = 20_000
	)
	f := newFlowSampler(start, window, limit, 1<<30)
	var now time.Time
	kernel, switches := uint64(1), 0
	f.setKernel = func(k uint64) (time.Time, error) {
		kernel = k
		switches++
		return now, nil
	}
	passes := func(seg *bundle.TCPSegment) bool {
		return kernel == 1 || f.flowHash(seg)%kernel == 0
	}
	keptSYN := map[netip.AddrPort]bool{}
	wire, read := 0, 0
	// The ring hands the sampler blocks of what passed the filter: 20 ms
	// of the flood here, about what fills a block at the kernel's
	// divisor of 1.
	const blockFlows = rate / 50
	at := func(i int) time.Time {
		return start.Add(time.Duration(quiet)*time.Second + time.Duration(i)*time.Second/rate)
	}
	for i := range rate * (int(window/time.Second) - quiet) {
		now = at(i)
		if i%blockFlows == 0 {
			var n, first, last int
			for j := i; j < i+blockFlows; j++ {
				if _, syn, _ := floodHandshake(j); passes(&syn) {
					if n == 0 {
						first = j
					}
					n, last = n+2, j
				}
			}
			f.preview(n, at(first), at(last))
		}
		client, syn, synAck := floodHandshake(i)
		wire += 2
		if !passes(&syn) {
			continue
		}
		read += 2
		if f.admit(&syn, true, now, 100) {
			f.kept(100)
			keptSYN[client] = true
		}
		if f.admit(&synAck, true, now, 100) {
			f.kept(100)
		} else if keptSYN[client] {
			t.Fatalf("flow %d: SYN kept, its SYN-ACK left out", i)
		}
	}
	info := f.info(int64(read), 0, start.Add(window))
	if f.kernelErr != nil || switches == 0 {
		t.Fatalf("kernel divisor never set (error %v)", f.kernelErr)
	}
	var total, kept int64
	for i, s := range info.Seconds {
		if i < quiet {
			continue
		}
		if i > quiet && s.KernelOneIn < 2 {
			t.Errorf("second %d: kernel divisor %d, want the flood sampled in the kernel", i, s.KernelOneIn)
		}
		if s.Kept == 0 || s.Kept > int64(info.BudgetPerSecond) {
			t.Errorf("second %d kept %d packets, want 1..%d", i, s.Kept, info.BudgetPerSecond)
		}
		total += s.Total()
		kept += s.Kept
	}
	if read > wire/2 {
		t.Errorf("%d of %d packets reached the sampler: the kernel should have left most out", read, wire)
	}
	// Every packet read and not kept was copied to the ring and walked
	// for nothing: with each block's rate known before it is decided
	// (preview), the flood's first second is sampled in the kernel too.
	if read > int(kept)*5/4 {
		t.Errorf("read %d packets to keep %d: the kernel should have passed little more than was kept", read, kept)
	}
	if d := float64(total)/float64(wire) - 1; d < -0.15 || d > 0.15 {
		t.Errorf("estimated %d packets on the wire, there were %d", total, wire)
	}
	if kept > limit {
		t.Errorf("kept %d packets, limit %d", kept, limit)
	}
	p := &bundle.PacketsInfo{Sampling: info}
	if !p.Sampled() || p.Scale() < float64(wire)/float64(kept)*0.85 {
		t.Errorf("sampled %v at 1 in %.1f; %d of %d kept", p.Sampled(), p.Scale(), kept, wire)
	}
}

// TestFlowSamplerBurstIsNoFlood checks that a ring block holding a burst
// of a hundred packets within a few milliseconds does not make the sampler
// sample: within the second's share they are all kept.
func TestFlowSamplerBurstIsNoFlood(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	f := newFlowSampler(start, time.Second, 200, 1<<30)
	// At the second's start, before its own traffic tells a rate.
	ts := start.Add(time.Millisecond)
	f.preview(100, ts, ts.Add(3*time.Millisecond))
	for i := range 100 {
		_, syn, _ := floodHandshake(i)
		at := ts.Add(time.Duration(i) * 30 * time.Microsecond)
		if !f.admit(&syn, true, at, 100) {
			t.Fatalf("packet %d of a 100-packet burst left out (1 in %d)", i+1, f.oneIn)
		}
		f.kept(100)
	}
}

// TestFlowSamplerKeepsAllWhenQuiet checks that traffic within the
// budget is all kept and reads as unsampled.
func TestFlowSamplerKeepsAllWhenQuiet(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	f := newFlowSampler(start, 3*time.Second, 20_000, 1<<30)
	for i := range 3000 {
		seg := bundle.TCPSegment{Src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 1000),
			Dst: netip.MustParseAddrPort("10.0.0.1:80"), Flags: bundle.TCPFlagSYN}
		if !f.admit(&seg, true, start.Add(time.Duration(i)*time.Millisecond), 100) {
			t.Fatalf("packet %d left out of a quiet sample", i)
		}
		f.kept(100)
	}
	info := &bundle.PacketsInfo{Sampling: f.info(3000, 0, start.Add(3*time.Second))}
	if info.Sampled() || info.Scale() != 1 {
		t.Errorf("sampled %v, scale %v; want all kept", info.Sampled(), info.Scale())
	}
}

// FuzzFlowSampler feeds the sampler arbitrary packets and times: no panic,
// and it never keeps more in a second than the second's budget.
func FuzzFlowSampler(f *testing.F) {
	f.Add([]byte{0x45}, int64(0), 0, int64(0))
	f.Add(seg4(f, tcpSeg{src: 50000, dst: 8080, flags: "S"}, true), int64(time.Second), 2000, int64(10*time.Millisecond))
	start := time.Unix(1_700_000_000, 0)
	s := newFlowSampler(start, 10*time.Second, 100, 1<<20)
	f.Fuzz(func(t *testing.T, pkt []byte, at int64, n int, span int64) {
		// A ring block's count and span, as blockSpan reads them from
		// the kernel's block (any values: the sampler must stay bounded).
		s.preview(n, start.Add(time.Duration(at)), start.Add(time.Duration(at)+time.Duration(span)))
		seg, ok := bundle.DecodeTCP(bundle.LinkRaw, pkt)
		if s.admit(&seg, ok, start.Add(time.Duration(at)), int64(len(pkt))) {
			s.kept(int64(len(pkt)))
		}
		if s.cur.Kept > s.budget || len(s.seconds) > maxSampleSeconds || len(s.gens[0].flows)+len(s.gens[1].flows) > maxAdmitted {
			t.Fatalf("kept %d of a %d budget; %d seconds, %d+%d flows", s.cur.Kept, s.budget, len(s.seconds), len(s.gens[0].flows), len(s.gens[1].flows))
		}
	})
}

// TestRawTCPMatchesDecode: the sampling's shortcut reads the same flow key
// and flags as the full decoding, both ways, IPv4 and IPv6, and leaves
// what it cannot read to the full decoding.
func TestRawTCPMatchesDecode(t *testing.T) {
	smp := &flowSampler{key: 0x5eed}
	pkts := map[string][]byte{
		"v4 to server":   seg4(t, tcpSeg{src: 50000, dst: 8080, flags: "S"}, true),
		"v4 from server": seg4(t, tcpSeg{src: 8080, dst: 50000, flags: "SA"}, false),
	}
	for name, pkt := range pkts {
		r, ok := rawTCP(pkt)
		seg, dok := bundle.DecodeTCP(bundle.LinkRaw, pkt)
		if !ok || !dok || smp.hashRaw(&r) != smp.flowHash(&seg) || r.flags != seg.Flags || r.bport != seg.Dst.Port() {
			t.Errorf("%s: raw %v %+v, decoded %v %+v", name, ok, r, dok, seg)
		}
	}
	a, _ := rawTCP(pkts["v4 to server"])
	b, _ := rawTCP(pkts["v4 from server"])
	if smp.hashRaw(&a) != smp.hashRaw(&b) {
		t.Errorf("the two directions have different flow hashes: %#x, %#x", smp.hashRaw(&a), smp.hashRaw(&b))
	}
	if _, ok := rawTCP(udp4(t, 50000, 8080)); ok {
		t.Error("a UDP packet read as TCP")
	}
}

// FuzzRawTCP: no panic on any bytes, and whenever both the shortcut and the
// full decoding read a packet, they read the same endpoints and flags, and
// hash alike unless the packet is IPv6 with IPv4-mapped addresses: those
// decode as IPv4, while the kernel's filter, and so rawTCP's hash, read
// all 16 bytes (which is why the sampler hashes from rawTCP whenever it
// reads a packet).
func FuzzRawTCP(f *testing.F) {
	f.Add(seg4(f, tcpSeg{src: 50000, dst: 8080, flags: "S"}, true))
	f.Add(seg4(f, tcpSeg{src: 8080, dst: 50000, flags: "SA"}, false))
	f.Add(append([]byte{0x60, 0, 0, 0, 0, 20, 6, 64}, make([]byte, 60)...))
	smp := &flowSampler{key: 0x5eed}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		r, ok := rawTCP(pkt)
		seg, dok := bundle.DecodeTCP(bundle.LinkRaw, pkt)
		if !ok || !dok {
			return
		}
		src, dst := seg.Src.Addr(), seg.Dst.Addr()
		same := func(raw [16]byte, a netip.Addr) bool {
			if r.v6 {
				return raw == a.As16()
			}
			a4 := a.As4()
			return a.Is4() && [4]byte(raw[:4]) == a4
		}
		if !same(r.a, src) || !same(r.b, dst) || r.aport != seg.Src.Port() || r.bport != seg.Dst.Port() || r.flags != seg.Flags {
			t.Fatalf("raw %+v, decoded %+v", r, seg)
		}
		mapped := r.v6 && (src.Is4() || dst.Is4())
		if !mapped && smp.hashRaw(&r) != smp.flowHash(&seg) {
			t.Fatalf("raw %+v hashes apart from decoded %+v", r, seg)
		}
	})
}

// TestFlowSamplerFocusPortWeights offers a SYN flood and an established
// connection's ACK stream on a --port port through the real filter, run at
// the divisor the sampler last set. The filter passes a focus port's
// segments that are no SYN, FIN or RST without sampling them, so each of
// those stands for one packet on the wire, not for the kernel's divisor:
// the seconds' estimates must still add up to what was on the wire.
func TestFlowSamplerFocusPortWeights(t *testing.T) {
	pf, err := newPacketFilter([]int{8080}, nil, headerSnaplen)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_700_000_000, 0)
	const (
		window = 3 * time.Second
		syns   = 6_000 // a second, each answered by a SYN-ACK
		acks   = 3_000 // a second, of one established connection
	)
	f := newFlowSampler(start, window, 3_000, 1<<30)
	prog := pf.prog
	f.setKernel = func(k uint64) (time.Time, error) {
		var err error
		prog, err = pf.program(uint32(bits.TrailingZeros64(k)), f.key)
		return time.Time{}, err
	}
	seg := func(a, b uint32, sport, dport uint16, flags uint8) []byte {
		p := make([]byte, 40)
		p[0], p[9] = 0x45, 6
		binary.BigEndian.PutUint16(p[2:], 40)
		binary.BigEndian.PutUint32(p[12:], a)
		binary.BigEndian.PutUint32(p[16:], b)
		binary.BigEndian.PutUint16(p[20:], sport)
		binary.BigEndian.PutUint16(p[22:], dport)
		p[32], p[33] = 0x50, flags
		return p
	}
	const server = 0x0a000001
	wire := 0
	offer := func(pkt []byte, ts time.Time) {
		wire++
		if runFilter(t, prog, ipv4Host, pkt) == 0 {
			return
		}
		r, ok := rawTCP(pkt)
		if !ok {
			t.Fatal("segment not read as TCP")
		}
		if f.decide(f.hashRaw(&r), r.flags, r.bport, ts) {
			f.kept(100)
		}
	}
	for s := range int(window / time.Second) {
		for i := range syns {
			ts := start.Add(time.Duration(s)*time.Second + time.Duration(i)*time.Second/syns)
			client := uint32(0xc6120000 + s*syns + i)
			offer(seg(client, server, uint16(1024+i), 8080, bundle.TCPFlagSYN), ts)
			offer(seg(server, client, 8080, uint16(1024+i), bundle.TCPFlagSYN|bundle.TCPFlagACK), ts)
			if i%2 == 0 {
				offer(seg(0xc0000201, server, 40000, 8080, bundle.TCPFlagACK), ts)
			}
		}
	}
	info := f.info(0, 0, start.Add(window))
	var total int64
	kernel := 0
	for _, s := range info.Seconds {
		total += s.Total()
		kernel = max(kernel, s.KernelOneIn)
	}
	if kernel < 2 {
		t.Fatalf("the kernel never sampled (divisors %+v): the test shows nothing", info.Seconds)
	}
	if d := float64(total)/float64(wire) - 1; d < -0.15 || d > 0.15 {
		t.Errorf("estimated %d packets on the wire, there were %d", total, wire)
	}
}

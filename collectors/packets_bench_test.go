package collectors

import (
	"io"
	"testing"
	"time"
)

// BenchmarkPcapSampleFlood offers the sample a 50,000 SYN/s flood's packets
// (each SYN from a new source, each answered by a SYN-ACK), through the
// first-segment thinner and the flow sampler with the default limits
// shared over 3 s, as the ring reader does; ns/op is per SYN and SYN-ACK.
func BenchmarkPcapSampleFlood(b *testing.B) {
	syn := seg4(b, tcpSeg{src: 50000, dst: 8080, flags: "S"}, true)
	synAck := seg4(b, tcpSeg{src: 8080, dst: 50000, flags: "SA"}, false)
	m := cookedMeta{HAType: 1, Protocol: 0x0800}
	start := time.Unix(1_700_000_000, 0)
	s, err := newPcapSample(io.Discard, headerSnaplen, 20_000, 16<<20)
	if err != nil {
		b.Fatal(err)
	}
	s.thin = newFirstSegmentThinner([]int{8080})
	// The capture's default limits over a 3 s window, per second.
	s.sampler = newFlowSampler(start, time.Hour, 20_000/3*3600, 16<<20/3*3600)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		// A new client address and port for every pair: 192.0.2.x.
		syn[12+2], syn[12+3], syn[20+1] = byte(i>>16), byte(i>>8), byte(i)
		synAck[16+2], synAck[16+3], synAck[20+3] = byte(i>>16), byte(i>>8), byte(i)
		// 50,000 pairs a second: 100,000 packets.
		ts := start.Add(time.Duration(i) * 20 * time.Microsecond)
		s.add(&m, syn, ts)
		s.add(&m, synAck, ts)
		if s.packets >= s.maxPackets-2 {
			s.packets, s.bytes = 0, 0
		}
	}
}

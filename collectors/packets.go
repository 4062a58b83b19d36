package collectors

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// Bounds of the packet sample when Host leaves them at zero. They match the
// capture's defaults, so a Host built by hand is bounded the same way.
const (
	packetLimitDefault = 20_000
	packetBytesDefault = 16 << 20
)

// Why a packet sample ended (bundle.PacketsInfo.StoppedBy).
const (
	stoppedByWindow      = "window"
	stoppedByPacketLimit = "packet limit"
	stoppedByByteLimit   = "byte limit"
	stoppedByDeadline    = "deadline"
	// stoppedByError is a sample that a socket or write error ended; the
	// collector's error in the manifest says which.
	stoppedByError = "error"
)

// Packets is the packet-sample collector: for Host.PacketWindow it captures,
// on every interface of the network namespace, the TCP handshakes and
// teardowns (SYN, FIN, RST) and all TCP and UDP traffic of Host.Ports, and
// writes them to bundle.PathPackets as a LINUX_SLL pcap. It needs CAP_NET_RAW.
// Without Host.Ports its filter also passes every TCP segment to the local
// listening ports (at most 96, learnt from a sock_diag dump when the sample
// starts), of which it writes the client's first two after each SYN-ACK in
// the sample: the final ACK and first data, without which a completed
// handshake looks half-open, and not the ACK streams of established
// connections. The manifest's Keeps says all of it.
//
// Each record keeps the first 128 bytes of the packet from its network
// header on (IPv4 or IPv6 and TCP headers with options, no payload), or 65535
// with Host.Payload; that is the manifest's Snaplen. The pcap header's snap
// length adds the 20 bytes a record can put in front (the LINUX_SLL header
// and a VLAN tag). The sample stops at Host.PacketWindow, Host.PacketLimit
// packets (default 20000) or Host.PacketBytes bytes of pcap (default 16 MiB),
// whichever comes first, or when its context ends. The limits are shared
// equally between the window's seconds: a second that brings more than its
// share keeps whole flows, 1 in k (flowSampler), so a flood's sample covers
// the whole window; the manifest's Sampling says what each second kept.
//
// A Packets value is for one capture: it keeps the sample's facts for the
// manifest (Info, Annotate). The zero value is ready to use. A capture whose
// PacketWindow is 0 should leave the collector out of its list, so the
// manifest has no entry that looks like an empty sample; if it is run anyway
// it returns nil at once and writes nothing.
type Packets struct {
	mu   sync.Mutex
	info *bundle.PacketsInfo

	// started, when set (tests), is called once the socket is filtered and
	// bound: matching packets sent after it are in the sample, within the
	// window and the limits.
	started func()
}

var (
	_ Collector = (*Packets)(nil)
	_ Annotator = (*Packets)(nil)
)

// Name implements Collector.
func (*Packets) Name() string { return "packets" }

// Info returns the facts of the sample Collect wrote, or nil when no pcap
// member is in the bundle (disabled, no permission, a write failed).
func (p *Packets) Info() *bundle.PacketsInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.info == nil {
		return nil
	}
	info := *p.info
	return &info
}

// Annotate implements Annotator: it sets m.Packets from Info.
func (p *Packets) Annotate(m *bundle.Manifest) {
	if info := p.Info(); info != nil {
		m.Packets = info
	}
}

func (p *Packets) setInfo(info *bundle.PacketsInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.info = info
}

// sampleConfig is a packet sample's settings, resolved from Host.
type sampleConfig struct {
	window     time.Duration
	maxPackets int
	maxBytes   int64
	filter     *packetFilter
}

// newSampleConfig resolves h's settings. listen are the local listening
// ports whose inbound segments the filter keeps beyond SYN, FIN and RST
// (at most maxListenPorts; see listenPorts), and leftOut how many more
// there were.
func newSampleConfig(h Host, listen []int, leftOut int) (sampleConfig, error) {
	snaplen := uint32(headerSnaplen)
	if h.Payload {
		snaplen = payloadSnaplen
	}
	f, err := newPacketFilter(h.Ports, listen, snaplen)
	if err != nil {
		return sampleConfig{}, err
	}
	f.keeps.ListenPortsLeftOut = leftOut
	c := sampleConfig{window: h.PacketWindow, maxPackets: h.PacketLimit, maxBytes: h.PacketBytes, filter: f}
	if c.maxPackets <= 0 {
		c.maxPackets = packetLimitDefault
	}
	if c.maxBytes <= 0 {
		c.maxBytes = packetBytesDefault
	}
	return c, nil
}

// info is the manifest entry for a sample that ran from start to end.
func (c *sampleConfig) info(s *pcapSample, start, end time.Time, stoppedBy string, drops uint32) *bundle.PacketsInfo {
	keeps := c.filter.keeps
	if t := s.thin; t != nil {
		keeps.FirstSegments, keeps.LeftOut, keeps.TableCleared = true, t.dropped, t.cleared
	}
	return &bundle.PacketsInfo{
		Filter:      c.filter.expr,
		Snaplen:     int(c.filter.snaplen),
		DurationMS:  float64(end.Sub(start).Microseconds()) / 1000,
		Packets:     s.packets,
		Bytes:       s.bytes,
		KernelDrops: drops,
		MaxPackets:  c.maxPackets,
		MaxBytes:    c.maxBytes,
		StoppedBy:   stoppedBy,
		Keeps:       &keeps,
	}
}

// pcapSample writes LINUX_SLL records into a pcap within the sample's packet
// and byte limits.
type pcapSample struct {
	// thin, when set, leaves out the listening ports' segments that do not
	// tell how a handshake ended.
	thin *firstSegmentThinner
	// sampler, when set, spreads the limits over the window's seconds.
	sampler    *flowSampler
	pw         *bundle.PcapWriter
	packets    int
	bytes      int64 // pcap bytes written, file header included
	maxPackets int
	maxBytes   int64
	buf        []byte
}

// newPcapSample writes the pcap file header to w. The header's snap length
// is the filter's plus the link header a record adds in front of the packet
// (LINUX_SLL and a VLAN tag put back), so no record is longer than it says.
func newPcapSample(w io.Writer, snaplen uint32, maxPackets int, maxBytes int64) (*pcapSample, error) {
	pw, err := bundle.NewPcapWriter(w, bundle.PcapHeader{Snaplen: snaplen + bundle.SLLHeaderMax, LinkType: bundle.LinkLinuxSLL})
	if err != nil {
		return nil, err
	}
	return &pcapSample{pw: pw, bytes: pw.Size(), maxPackets: maxPackets, maxBytes: maxBytes,
		buf: make([]byte, 0, bundle.SLLHeaderMax+int(snaplen))}, nil
}

// add writes one packet (data from the network header on, as the socket
// returned it) and says whether the sample must stop: "packet limit" once
// the limit is reached, "byte limit" when the record would take the pcap past
// its bound (the record is then not written), "" to go on.
func (s *pcapSample) add(m *cookedMeta, data []byte, ts time.Time) (string, error) {
	if s.packets >= s.maxPackets {
		return stoppedByPacketLimit, nil
	}
	// Most of a flood's packets are SYNs and SYN-ACKs that the sampling
	// leaves out: decide on those from their addresses, ports and flags
	// alone. A segment to a listening port that is no SYN, FIN or RST is
	// the thinner's to judge first, so it takes the full decoding.
	decided := false
	var r rawSegment
	rawOK := false
	if s.sampler != nil {
		r, rawOK = rawTCP(data)
		const ends = bundle.TCPFlagSYN | bundle.TCPFlagFIN | bundle.TCPFlagRST
		if rawOK && (s.thin == nil || r.flags&ends != 0 || !s.thin.listen[r.bport]) {
			if !s.sampler.decide(s.sampler.hashRaw(&r), r.flags, r.bport, ts) {
				return "", nil
			}
			decided = true
		}
	}
	seg, isTCP := bundle.DecodeTCP(bundle.LinkRaw, data)
	// The thinner writes every SYN-ACK and records its handshake as
	// awaited: asked after the sampler, it records only the handshakes
	// the sample keeps, not every one of a flood's.
	synAck := isTCP && seg.Has(bundle.TCPFlagSYN|bundle.TCPFlagACK)
	if s.thin != nil && !synAck && !s.thin.keep(&seg, isTCP, ts) {
		return "", nil
	}
	s.buf = bundle.AppendSLL(s.buf[:0], m.sll())
	hdr := len(s.buf)
	s.buf = append(s.buf, data...)
	size := bundle.RecordSize(len(s.buf))
	if s.bytes+size > s.maxBytes {
		return stoppedByByteLimit, nil
	}
	switch {
	case s.sampler == nil:
	case decided:
		if !s.sampler.fits(size) {
			return "", nil
		}
	case rawOK:
		// The flow hash from the packet as the kernel's filter reads it:
		// an IPv6 packet with IPv4-mapped addresses decodes as IPv4, but
		// the filter hashes all 16 bytes.
		if !s.sampler.decide(s.sampler.hashRaw(&r), r.flags, r.bport, ts) || !s.sampler.fits(size) {
			return "", nil
		}
	case !s.sampler.admit(&seg, isTCP, ts, size):
		return "", nil
	}
	if s.thin != nil && synAck {
		s.thin.keep(&seg, isTCP, ts)
	}
	err := s.pw.WriteRecord(ts, m.origLen(hdr, len(data)), s.buf)
	s.bytes = s.pw.Size()
	if err != nil {
		return "", fmt.Errorf("write packet %d: %w", s.packets+1, err)
	}
	if s.sampler != nil {
		s.sampler.kept(size)
	}
	s.packets++
	if s.packets >= s.maxPackets {
		return stoppedByPacketLimit, nil
	}
	return "", nil
}

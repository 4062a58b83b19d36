package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Bounds and defaults of a rate flood.
const (
	// DefaultFloodRate is RateFloodOpts.Rate when left at 0: a real flood's
	// order of magnitude, where one system call per packet no longer keeps
	// up.
	DefaultFloodRate = 50_000
	// MaxFloodRate bounds RateFloodOpts.Rate.
	MaxFloodRate = 1_000_000
	// floodBatch is how many frames one sendmmsg call sends.
	floodBatch = 64
	// floodFrameLen is an Ethernet header, a 20-byte IPv4 header and a TCP
	// header with one option (MSS): 14 + 20 + 24.
	floodFrameLen = 58
)

// FloodSources is the default range of the flood's forged source addresses:
// 198.18.0.0/15, set aside for benchmarking (RFC 2544), never routed.
var FloodSources = netip.MustParsePrefix("198.18.0.0/15")

// RateFloodOpts describe a SYN flood at a real rate: raw IPv4 SYNs with
// forged sources, built by hand and sent from the client namespace.
type RateFloodOpts struct {
	// Target is the server's address and port; its address must be the
	// lab's ServerIP.
	Target netip.AddrPort
	// Rate is SYNs per second; 0 means DefaultFloodRate.
	Rate int
	// Duration bounds the flood; 0 or more than MaxSustain means
	// MaxSustain.
	Duration time.Duration
	// Count, when positive, bounds the SYNs sent.
	Count int64
	// Sources is the range the forged sources are drawn from; the zero
	// value means FloodSources. It must be IPv4, and the lab's own
	// addresses must not be in it.
	Sources netip.Prefix
	// CPUs, when not empty, are the only CPUs the sender's thread runs
	// on. The receive path of what it sends (the server's SYN handling,
	// its SYN-ACKs, any capture's packet filter) runs in softirq on the
	// sending CPU and, on a kernel without IRQ time accounting, is billed
	// to whatever task is on that CPU: a benchmark pins the sender away
	// from the process it measures so that this process is billed only
	// its own work.
	CPUs []int
}

// RateFlood is a flood in progress.
type RateFlood struct {
	// Start is when the first batch went out.
	Start time.Time

	sent   atomic.Int64
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	err    error
}

// Sent is the number of SYNs handed to the kernel so far.
func (f *RateFlood) Sent() int64 { return f.sent.Load() }

// Done is closed once the flood ended (its Duration or Count reached, Stop,
// or the lab's cleanup).
func (f *RateFlood) Done() <-chan struct{} { return f.done }

// Stop ends the flood and waits for its sender, and returns the error that
// ended it early, if any.
func (f *RateFlood) Stop() error {
	f.once.Do(f.cancel)
	<-f.done
	return f.err
}

// FloodSYNs starts a SYN flood at o.Rate into o.Target, and returns once the
// sender runs. The SYNs go out of the client namespace's veth on an
// AF_PACKET socket (which sends frames as built: no routing, no source
// check in the client), their sources random in o.Sources, their source
// ports and sequence numbers random, in batches of floodBatch per
// sendmmsg, paced to the rate.
//
// The server's answers must not loop: the server routes o.Sources via a
// neighbour whose link-layer address is BlackholeMAC, so its SYN-ACKs reach
// the client's veth addressed to another host and are dropped there
// (PACKET_OTHERHOST in ip_rcv_core()) without an answer; the client
// namespace does not forward, and owns none of those addresses.
//
// The flood ends at o.Duration, o.Count, ctx's end, Stop, or the lab's
// cleanup, whichever comes first.
func (l *Lab) FloodSYNs(ctx context.Context, o RateFloodOpts) (*RateFlood, error) {
	if o.Rate == 0 {
		o.Rate = DefaultFloodRate
	}
	if o.Rate < 0 || o.Rate > MaxFloodRate {
		return nil, fmt.Errorf("rate flood: rate %d is outside 1..%d", o.Rate, MaxFloodRate)
	}
	if o.Duration <= 0 || o.Duration > MaxSustain {
		o.Duration = MaxSustain
	}
	if !o.Sources.IsValid() {
		o.Sources = FloodSources
	}
	o.Sources = o.Sources.Masked()
	if !o.Sources.Addr().Is4() || o.Sources.Bits() > 30 {
		return nil, fmt.Errorf("rate flood: sources %s: want an IPv4 prefix of /30 or wider", o.Sources)
	}
	for _, a := range []netip.Addr{l.ServerIP, l.BadIP, l.GoodIP} {
		if o.Sources.Contains(a) {
			return nil, fmt.Errorf("rate flood: sources %s hold the lab's address %s", o.Sources, a)
		}
	}
	for _, c := range o.CPUs {
		if c < 0 || c >= 8*int(unsafe.Sizeof(unix.CPUSet{})) {
			return nil, fmt.Errorf("rate flood: CPU %d is out of range", c)
		}
	}
	if o.Target.Addr() != l.ServerIP {
		return nil, fmt.Errorf("rate flood: target %s is not the lab's server %s", o.Target, l.ServerIP)
	}
	serverMAC, err := net.ParseMAC(l.ServerMAC)
	if err != nil {
		return nil, fmt.Errorf("rate flood: %w", err)
	}
	clientMAC, err := net.ParseMAC(l.ClientMAC)
	if err != nil {
		return nil, fmt.Errorf("rate flood: %w", err)
	}
	// The hole is .4 of the lab's /24, an address nobody holds.
	hole := l.ServerIP.As4()
	hole[3] = 4
	holeIP := netip.AddrFrom4(hole).String()
	for _, step := range [][]string{
		{"-n", l.Server, "neigh", "replace", holeIP, "lladdr", BlackholeMAC, "dev", ServerLink, "nud", "permanent"},
		{"-n", l.Server, "route", "replace", o.Sources.String(), "via", holeIP, "dev", ServerLink},
	} {
		if err := l.ip(step...); err != nil {
			return nil, fmt.Errorf("rate flood: %w", err)
		}
	}
	var fd int
	err = l.Do(l.Client, func() error {
		var err error
		fd, err = floodSocket(ClientLink)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rate flood: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	f := &RateFlood{cancel: cancel, done: make(chan struct{})}
	if !l.onCleanup(func() { f.Stop() }) {
		cancel()
		unix.Close(fd)
		return nil, fmt.Errorf("rate flood: the lab is shutting down")
	}
	gen := newSYNGen(o, [6]byte(serverMAC), [6]byte(clientMAC))
	pinned := make(chan error, 1)
	go func() {
		defer close(f.done)
		defer unix.Close(fd)
		defer cancel()
		if len(o.CPUs) > 0 {
			// Never unlocked: the thread, its affinity narrowed, ends
			// with the goroutine instead of going back to the runtime.
			runtime.LockOSThread()
			var set unix.CPUSet
			for _, c := range o.CPUs {
				set.Set(c)
			}
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				f.err = fmt.Errorf("rate flood: pin the sender to CPUs %v: %w", o.CPUs, err)
				pinned <- f.err
				return
			}
		}
		f.Start = time.Now()
		pinned <- nil
		f.err = f.run(ctx, fd, gen, o)
	}()
	if err := <-pinned; err != nil {
		<-f.done
		return nil, err
	}
	return f, nil
}

// floodSocket opens an AF_PACKET socket bound to link in the current
// network namespace, for sending only: protocol 0 registers no receive hook
// (packet_create()), so the socket queues nothing. PACKET_QDISC_BYPASS
// hands frames to the driver directly, as trafgen does.
func floodSocket(link string) (int, error) {
	ifi, err := net.InterfaceByName(link)
	if err != nil {
		return -1, fmt.Errorf("find %s: %w", link, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open packet socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("set PACKET_QDISC_BYPASS: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind packet socket to %s: %w", link, err)
	}
	return fd, nil
}

// run paces batches to the rate: before each batch it sends as many frames
// as are due since Start (at most a batch), and when none is due it waits
// for the next one.
func (f *RateFlood) run(ctx context.Context, fd int, gen *synGen, o RateFloodOpts) error {
	frames := make([][floodFrameLen]byte, floodBatch)
	iovs := make([]unix.Iovec, floodBatch)
	msgs := make([]unix.Mmsghdr, floodBatch)
	for i := range frames {
		iovs[i].Base = &frames[i][0]
		iovs[i].SetLen(floodFrameLen)
		msgs[i].Hdr.Iov = &iovs[i]
		msgs[i].Hdr.SetIovlen(1)
	}
	perFrame := time.Second / time.Duration(o.Rate)
	for {
		if ctx.Err() != nil {
			return nil
		}
		sent := f.sent.Load()
		if o.Count > 0 && sent >= o.Count {
			return nil
		}
		due := int64(time.Since(f.Start)/perFrame) + 1 - sent
		if o.Count > 0 {
			due = min(due, o.Count-sent)
		}
		if due <= 0 {
			t := time.NewTimer(time.Duration(-due+1) * perFrame)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		n := int(min(due, floodBatch))
		for i := range n {
			gen.next(&frames[i])
		}
		m, err := sendmmsg(fd, msgs[:n])
		switch {
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.EAGAIN):
			// The veth's peer backlog is full: that is the flood working.
			// Count what went, and go on at the pace.
		case err != nil:
			return fmt.Errorf("send flood: %w", err)
		}
		f.sent.Add(int64(m))
		if m == 0 {
			// Nothing went: do not spin, wait for the next frame's turn.
			t := time.NewTimer(perFrame)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
	}
}

// sendmmsg sends msgs on fd in one system call and returns how many went.
func sendmmsg(fd int, msgs []unix.Mmsghdr) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// synGen builds SYN frames with random sources in a prefix.
type synGen struct {
	rng      *rand.Rand
	base     uint32 // first address of the prefix
	span     uint32 // addresses in it, less the network and last ones
	dst      [4]byte
	dport    uint16
	template [floodFrameLen]byte
}

func newSYNGen(o RateFloodOpts, dstMAC, srcMAC [6]byte) *synGen {
	a := o.Sources.Addr().As4()
	g := &synGen{
		rng:   rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		base:  binary.BigEndian.Uint32(a[:]) + 1,
		span:  uint32(1)<<(32-o.Sources.Bits()) - 2,
		dst:   o.Target.Addr().As4(),
		dport: o.Target.Port(),
	}
	t := g.template[:]
	copy(t[0:6], dstMAC[:])
	copy(t[6:12], srcMAC[:])
	binary.BigEndian.PutUint16(t[12:], 0x0800)
	ip := t[14:34]
	ip[0] = 0x45                               // IPv4, 20-byte header
	binary.BigEndian.PutUint16(ip[2:], 44)     // total length
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // don't fragment
	ip[8], ip[9] = 64, unix.IPPROTO_TCP        // TTL, protocol
	copy(ip[16:20], g.dst[:])                  // destination
	tcp := t[34:58]
	binary.BigEndian.PutUint16(tcp[2:], g.dport) // destination port
	tcp[12] = 6 << 4                             // 24-byte header
	tcp[13] = 0x02                               // SYN
	binary.BigEndian.PutUint16(tcp[14:], 64240)  // window
	copy(tcp[20:24], []byte{2, 4, 0x05, 0xb4})   // MSS 1460
	return g
}

// next writes a fresh SYN into fr: a random source in the prefix, source
// port, IP id and sequence number, and both checksums.
func (g *synGen) next(fr *[floodFrameLen]byte) {
	*fr = g.template
	r := g.rng.Uint64()
	ip := fr[14:34]
	tcp := fr[34:58]
	binary.BigEndian.PutUint16(ip[4:], uint16(r))
	binary.BigEndian.PutUint32(ip[12:], g.base+uint32(r>>16)%g.span)
	binary.BigEndian.PutUint16(tcp[0:], uint16(1024+(r>>48)%64512))
	binary.BigEndian.PutUint32(tcp[4:], uint32(g.rng.Uint64()))
	binary.BigEndian.PutUint16(ip[10:], ^checksum(0, ip))
	// The TCP checksum covers a pseudo-header: source, destination,
	// protocol and TCP length.
	pseudo := uint32(checksum(0, ip[12:20])) + unix.IPPROTO_TCP + uint32(len(tcp))
	binary.BigEndian.PutUint16(tcp[16:], ^checksum(pseudo, tcp))
}

// checksum adds b to the one's complement sum sum and folds it to 16 bits.
func checksum(sum uint32, b []byte) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// FloodListener is the usual target of FloodSYNs: it sets the server's
// tcp_syncookies to 1 (a full SYN queue answers with cookies, as on most
// hosts) and listens on the server's port with backlog 128, accepting and
// closing whatever completes.
func (l *Lab) FloodListener(port uint16) (*Listener, error) {
	if err := l.Sysctl(l.Server, "net.ipv4.tcp_syncookies", "1"); err != nil {
		return nil, fmt.Errorf("flood listener: %w", err)
	}
	return l.Listen(netip.AddrPortFrom(l.ServerIP, port), 128, AcceptClose)
}

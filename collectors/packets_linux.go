//go:build linux

package collectors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/snapdiag/snapdiag/bundle"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Ring settings of the packet sample.
const (
	// ringBlockSize and ringBlocks size the TPACKET_V3 receive ring: 8
	// blocks of 512 KiB, 4 MiB of kernel memory mapped into snapdiag,
	// whatever the traffic. A packet takes its 48-byte tpacket3_hdr, the
	// sockaddr_ll and padding (96 bytes before the data in all) plus its
	// snap length, rounded to 16: 224 bytes with the default 128-byte
	// snap length, so the ring holds about 18,000 packets, over a third of
	// a second of a 50,000 packet/s flood while the collector writes, and
	// a block holds one 65535-byte packet of a --payload sample. A block
	// must be a multiple of the page size (packet_set_ring()).
	ringBlockSize = 512 << 10
	ringBlocks    = 8
	// ringFrameSize only has to divide the block: TPACKET_V3 packs
	// packets of any size into a block, but packet_set_ring() still checks
	// tp_frame_nr against the blocks' frames.
	ringFrameSize = 2048
	// ringRetire is tp_retire_blk_tov: a block that is not full is handed
	// to snapdiag at most this long after its packets came (the kernel's
	// retire timer fires this often while a block is open), so a quiet
	// sample is read within that time and a busy one a whole block at a
	// time. An empty block is never retired, so an idle socket costs no
	// wake-ups. Why not shorter: once the flood is sampled in the kernel,
	// few packets reach the ring and blocks retire by this timeout, each
	// retirement a wake-up of snapdiag; at 25 ms those 40 wake-ups a
	// second cost more CPU than reading the packets (perf under the lab's
	// 50,000 SYN/s flood). Nothing reads the sample before the window
	// ends, so only the wait for the last block (ringTail) grows.
	ringRetire = 250 * time.Millisecond
	// ringTail is how long after the window's end the sample waits for the
	// block that was being filled when the window ended to be retired: the
	// timeout, and room for the retire timer's rounding to jiffies and its
	// slack, and for snapdiag being scheduled late at nice 10.
	ringTail = ringRetire + ringRetire/2
)

// Collect implements Collector. It opens one AF_PACKET socket for the whole
// network namespace, captures for Host.PacketWindow or until a limit or ctx
// stops it, and writes bundle.PathPackets. When ctx ends the sample early the
// pcap is still closed cleanly, with what was captured, and the error wraps
// ctx.Err().
func (p *Packets) Collect(ctx context.Context, h Host, w *bundle.Writer) error {
	if h.PacketWindow <= 0 {
		return nil
	}
	var listen []int
	leftOut := 0
	if len(h.Ports) == 0 {
		var err error
		listen, leftOut, err = listenPorts(ctx, h)
		switch {
		case err != nil:
			// The sample is still worth taking: its handshakes' ends are
			// missing, and the manifest's Keeps says so.
			w.Note("listening ports not read (%v): the sample keeps SYN, FIN and RST only, so it cannot show which handshakes completed", err)
		case leftOut > 0:
			w.Note("%d listening ports, room for %d in the filter: the handshakes' ends on the other %d are not in the sample", len(listen)+leftOut, len(listen), leftOut)
		}
	}
	cfg, err := newSampleConfig(h, listen, leftOut)
	if err != nil {
		return err
	}
	sock, err := openPacketSocket(h, cfg.filter)
	if err != nil {
		return err
	}
	defer sock.close()

	f, err := w.Create(bundle.PathPackets)
	if err != nil {
		return err
	}
	s, err := newPcapSample(f, cfg.filter.snaplen, cfg.maxPackets, cfg.maxBytes)
	if err != nil {
		f.Close() // leaves the member out; the write error says why
		return fmt.Errorf("%s: %w", bundle.PathPackets, err)
	}
	s.thin = newFirstSegmentThinner(cfg.filter.keeps.ListenPorts)
	if p.started != nil {
		p.started()
	}
	start := time.Now()
	s.sampler = newFlowSampler(start, cfg.window, cfg.maxPackets, cfg.maxBytes-s.bytes)
	s.sampler.kernelListen = map[uint16]bool{}
	for _, p := range cfg.filter.keeps.ListenPorts {
		s.sampler.kernelListen[uint16(p)] = true
	}
	s.sampler.setKernel = func(k uint64) (time.Time, error) {
		return sock.setFlowSampling(cfg.filter, k, s.sampler.key)
	}
	stoppedBy, capErr := sock.capture(ctx, start.Add(cfg.window), s)
	end := time.Now()
	if w := start.Add(cfg.window); end.After(w) {
		// The wait for the last block (ringTail) is not the window's.
		end = w
	}
	stats, statsErr := sock.stats()
	if err := f.Close(); err != nil {
		if capErr != nil {
			return capErr
		}
		return fmt.Errorf("write %s: %w", bundle.PathPackets, err)
	}
	switch {
	case capErr != nil:
		stoppedBy = stoppedByError
	case stoppedBy == stoppedByDeadline && stopCause(ctx) != "deadline":
		// ctx ended by a stop signal (StopSignal), not by the deadline.
		stoppedBy = bundle.StoppedBySignal
	}
	info := cfg.info(s, start, end, stoppedBy, stats.Drops)
	info.Sampling = s.sampler.info(sock.read, stats.Freeze_q_cnt, end)
	if err := s.sampler.kernelErr; err != nil {
		w.Note("the packet sample's flow sampling stayed out of the kernel (%v): every matching packet was read to be sampled", err)
	}
	p.setInfo(info)
	switch {
	case capErr != nil:
		return capErr
	case stoppedBy == stoppedByDeadline || stoppedBy == bundle.StoppedBySignal:
		by := stopCause(ctx)
		if by == "deadline" {
			by = "the deadline"
		}
		return fmt.Errorf("packet sample cut by %s after %v of %v: %w", by,
			end.Sub(start).Round(time.Millisecond), cfg.window, ctx.Err())
	case statsErr != nil:
		return statsErr
	}
	return nil
}

// listenPorts reads the ports of the namespace's TCP listeners, both
// families, from the capture's shared listener snapshot (one sock_diag dump
// for every collector that asks): at most maxListenPorts of them, those with
// the most half-open requests first, then those with connections waiting in
// their accept queue (the listeners in trouble), then the lowest. leftOut
// counts the ports that did not fit.
func listenPorts(ctx context.Context, h Host) (ports []int, leftOut int, err error) {
	// The capture's LISTEN sockets, at once: the sample starts from them.
	// Only when there are more ports than the filter holds does the order
	// need the SYN-RECV counts, which wait for the socket table's dump.
	ls, err := h.firstListenSockets(ctx)
	if err == nil && distinctPorts(ls) > maxListenPorts {
		ls, err = h.firstListeners(ctx)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read tcp listeners: %w", err)
	}
	waiting := map[int]bool{}
	// Half-open requests per local port: a SYN-flooded port may have an
	// empty accept queue, and it is the port whose handshakes matter most.
	// The largest count of the port's listeners, not their sum: a wildcard
	// listener counts every request to its port, and the members of an
	// SO_REUSEPORT group each carry the group's.
	requests := map[int]int{}
	for _, l := range ls {
		if l.Port == 0 {
			continue
		}
		waiting[l.Port] = waiting[l.Port] || l.RecvQ > 0
		requests[l.Port] = max(requests[l.Port], l.SynRecv)
	}
	for p := range waiting {
		ports = append(ports, p)
	}
	slices.SortFunc(ports, func(a, b int) int {
		if requests[a] != requests[b] {
			return requests[b] - requests[a]
		}
		if waiting[a] != waiting[b] {
			if waiting[a] {
				return -1
			}
			return 1
		}
		return a - b
	})
	if len(ports) > maxListenPorts {
		leftOut = len(ports) - maxListenPorts
		ports = ports[:maxListenPorts]
	}
	return ports, leftOut, nil
}

// distinctPorts counts the local ports of ls.
func distinctPorts(ls []bundle.Listener) int {
	seen := map[int]bool{}
	for _, l := range ls {
		seen[l.Port] = true
	}
	return len(seen)
}

// packetRing is a SOCK_DGRAM AF_PACKET socket bound to every interface,
// with a TPACKET_V3 receive ring mapped into memory: the kernel writes
// packets into blocks shared with snapdiag, and a poll wakes snapdiag once
// per full (or timed-out) block rather than once per packet, so a flood
// costs a system call per few thousand packets, not one per packet.
type packetRing struct {
	fd int
	// file owns fd: closing it takes fd out of Go's network poller, where
	// capture waits, and closes it.
	file *os.File
	mem  []byte
	// cur is the next block to read: the kernel fills them in order.
	cur int
	// read counts the packets read from the ring in the window.
	read int64
}

// openPacketSocket opens the capture socket with the filter attached and
// its ring mapped.
//
// SOCK_DGRAM ("cooked") makes the kernel strip the link header and describe
// it in the sockaddr_ll instead, so Ethernet, loopback and tunnels with no
// link header (ipip, WireGuard) all arrive in one form, from the network
// header on, which is what LINUX_SLL records hold.
//
// The socket is opened with protocol 0, which registers no packet hook
// (packet_create() only calls register_prot_hook() for a non-zero protocol),
// so nothing is queued until bind(); the filter and the ring are set up
// before bind() sets the protocol to ETH_P_ALL. Every packet in the ring has
// therefore passed the filter, and there is nothing unfiltered to drain.
// Binding with ifindex 0 captures on all interfaces of the namespace the
// socket was created in (h's): packet_rcv() hooks belong to that namespace.
//
// TPACKET_V3 is in every kernel since 3.2 (2012), older than any snapdiag
// supports, so there is no per-packet recvmsg fallback: a kernel that
// refuses the ring fails the collector, and the manifest says why.
func openPacketSocket(h Host, f *packetFilter) (_ *packetRing, err error) {
	raw, err := f.raw()
	if err != nil {
		return nil, err
	}
	fd, err := h.socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	var notIn *notEnteredError
	switch {
	case errors.As(err, &notIn):
		return nil, fmt.Errorf("open packet socket: %w", err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		// packet_create(): !ns_capable(net->user_ns, CAP_NET_RAW).
		return nil, fmt.Errorf("packet capture needs CAP_NET_RAW (run as root): %w", err)
	case errors.Is(err, unix.EAFNOSUPPORT):
		// A kernel built without CONFIG_PACKET, or af_packet not loadable.
		return nil, fmt.Errorf("open packet socket: %w: %w", err, fs.ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("open packet socket: %w", err)
	}
	// fd is non-blocking, so os.NewFile registers it with the poller.
	r := &packetRing{fd: fd, file: os.NewFile(uintptr(fd), "packet socket")}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if err := attachFilter(fd, raw); err != nil {
		return nil, err
	}
	// Each packet's tpacket3_hdr gives what PACKET_AUXDATA and
	// SO_TIMESTAMPNS gave a recvmsg reader: tp_len, the length before the
	// filter cut it; tp_sec and tp_nsec, the kernel's receive time
	// (tpacket_get_timestamp(), else the time it was queued); and the VLAN
	// tag the kernel took out of the packet, in hv1.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, fmt.Errorf("set packet socket to TPACKET_V3: %w", err)
	}
	req := unix.TpacketReq3{
		Block_size:     ringBlockSize,
		Block_nr:       ringBlocks,
		Frame_size:     ringFrameSize,
		Frame_nr:       ringBlockSize / ringFrameSize * ringBlocks,
		Retire_blk_tov: uint32(ringRetire / time.Millisecond),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("set up the packet ring (%d blocks of %d bytes): %w", ringBlocks, ringBlockSize, err)
	}
	if r.mem, err = unix.Mmap(fd, 0, ringBlockSize*ringBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return nil, fmt.Errorf("map the packet ring: %w", err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: 0}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("bind packet socket: %w", err)
	}
	return r, nil
}

// setFlowSampling replaces the socket's filter with f sampling 1 TCP flow in
// k (a power of two) under key, and returns the time it took effect: the
// kernel swaps the program atomically (sk_attach_filter()), so packets
// stamped after that met the new one.
func (r *packetRing) setFlowSampling(f *packetFilter, k uint64, key uint32) (time.Time, error) {
	raw, err := f.rawThinned(uint32(bits.TrailingZeros64(k)), key)
	if err != nil {
		return time.Time{}, err
	}
	if err := attachFilter(r.fd, raw); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

// attachFilter attaches a classic BPF program to fd, replacing any.
func attachFilter(fd int, raw []bpf.RawInstruction) error {
	prog := make([]unix.SockFilter, len(raw))
	for i, x := range raw {
		prog[i] = unix.SockFilter{Code: x.Op, Jt: x.Jt, Jf: x.Jf, K: x.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attach packet filter: %w", err)
	}
	return nil
}

func (r *packetRing) close() {
	if r.mem != nil {
		unix.Munmap(r.mem)
	}
	r.file.Close()
}

// stats reads PACKET_STATISTICS: with TPACKET_V3, tp_drops counts the
// packets that passed the filter but found every block of the ring full,
// and tp_freeze_q_cnt the times that happened. Reading resets the counters.
func (r *packetRing) stats() (unix.TpacketStatsV3, error) {
	st, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return unix.TpacketStatsV3{}, fmt.Errorf("read PACKET_STATISTICS: %w", err)
	}
	return *st, nil
}

// blockStatus is the status word of block i. The kernel and snapdiag hand
// a block to each other through this word in shared memory: the kernel
// sets TP_STATUS_USER once it wrote the block (with a write barrier before,
// prb_close_block()), snapdiag writes TP_STATUS_KERNEL once done with it.
// Atomic loads and stores give the ordering the kernel's smp_rmb()/smp_wmb()
// pairs expect; they need a pointer into the mapping.
func (r *packetRing) blockStatus(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[i*ringBlockSize+blockStatusOff]))
}

// capture reads packets into out until end, a limit, or ctx. It says why it
// stopped; an error means the socket or the pcap failed. Packets stamped
// at or after end are not the window's: the first of them ends the sample;
// without one, the sample waits ringTail past end for the last block.
func (r *packetRing) capture(ctx context.Context, end time.Time, out *pcapSample) (string, error) {
	// The wait is in Go's network poller, not a blocking poll(2): a
	// goroutine parked there leaves every P idle, so the runtime's sysmon
	// thread sleeps too, where a thread blocked in poll(2) kept it waking
	// every 20 us to 10 ms to retake its P, some 250 wake-ups a second
	// (perf under the lab's flood: the sample's largest cost). The socket
	// is non-blocking; packet_poll() reports it readable once the block to
	// read is retired, and prb_close_block() wakes the poller then.
	f := r.file
	rc, err := f.SyscallConn()
	if err != nil {
		return "", fmt.Errorf("wait on packet socket: %w", err)
	}
	stop := end.Add(ringTail)
	if err := f.SetReadDeadline(stop); err != nil {
		return "", fmt.Errorf("wait on packet socket: %w", err)
	}
	// A cancelled context ends the wait at once.
	stopCancel := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stopCancel()
	ready := func() bool { return atomic.LoadUint32(r.blockStatus(r.cur))&tpStatusUser != 0 }
	for {
		for ready() {
			if ctx.Err() != nil {
				return stoppedByDeadline, nil
			}
			block := r.mem[r.cur*ringBlockSize : (r.cur+1)*ringBlockSize]
			why, err := r.readBlock(block, end, out)
			atomic.StoreUint32(r.blockStatus(r.cur), unix.TP_STATUS_KERNEL)
			r.cur = (r.cur + 1) % ringBlocks
			if err != nil || why != "" {
				return why, err
			}
		}
		if ctx.Err() != nil {
			return stoppedByDeadline, nil
		}
		if !time.Now().Before(stop) {
			return stoppedByWindow, nil
		}
		err := rc.Read(func(uintptr) bool { return ready() })
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The window's tail, or ctx: the loop tells which.
		default:
			return "", fmt.Errorf("wait on packet socket: %w", err)
		}
	}
}

// readBlock writes the window's packets of one retired block to out.
func (r *packetRing) readBlock(block []byte, end time.Time, out *pcapSample) (string, error) {
	var why string
	if out.sampler != nil {
		if n, first, last, ok := blockSpan(block); ok {
			out.sampler.preview(n, first, last)
		}
	}
	_, err := walkBlock(block, func(p *ringPacket) error {
		if !p.ts.Before(end) {
			why = stoppedByWindow
			return errStopWalk
		}
		if p.meta.PktType == bundle.PacketOutgoing && p.meta.HAType == bundle.ARPHRDLoopback {
			// The filter already drops loopback's outgoing copies
			// (see newPacketFilter); this keeps them out whatever
			// program is attached.
			return nil
		}
		r.read++
		stop, err := out.add(&p.meta, p.data, p.ts)
		if err != nil {
			return err
		}
		if stop != "" {
			why = stop
			return errStopWalk
		}
		return nil
	})
	if errors.Is(err, errStopWalk) {
		return why, nil
	}
	if err != nil {
		return "", fmt.Errorf("read packet ring: %w", err)
	}
	return "", nil
}

// errStopWalk ends a block walk early without an error.
var errStopWalk = errors.New("stop walk")

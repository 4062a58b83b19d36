//go:build linux

package collectors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors/internal/sockdiag"
	"golang.org/x/sys/unix"
)

// Socket settings of the packet sample.
const (
	// packetRcvbuf is the socket's receive buffer. The kernel doubles it and
	// charges each queued packet its whole skb truesize (a few KiB, whatever
	// the snap length), so 4 MiB holds a few thousand packets while the
	// collector is busy writing.
	packetRcvbuf = 4 << 20
	// pollSlice bounds each wait, so a cancelled context is noticed quickly
	// even without a deadline.
	pollSlice = 100 * time.Millisecond
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
		listen, leftOut, err = listenPorts(ctx)
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
	sock, err := openPacketSocket(cfg.filter)
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
	stoppedBy, capErr := sock.capture(ctx, start.Add(cfg.window), s)
	end := time.Now()
	drops, statsErr := sock.drops()
	if err := f.Close(); err != nil {
		if capErr != nil {
			return capErr
		}
		return fmt.Errorf("write %s: %w", bundle.PathPackets, err)
	}
	if capErr != nil {
		stoppedBy = stoppedByError
	}
	p.setInfo(cfg.info(s, start, end, stoppedBy, drops))
	switch {
	case capErr != nil:
		return capErr
	case stoppedBy == stoppedByDeadline:
		return fmt.Errorf("packet sample cut after %v of %v: %w",
			end.Sub(start).Round(time.Millisecond), cfg.window, ctx.Err())
	case statsErr != nil:
		return statsErr
	}
	return nil
}

// listenPorts reads the ports of the namespace's TCP listeners, both
// families, from a sock_diag dump: at most maxListenPorts of them, those
// with the most half-open requests first, then those with connections
// waiting in their accept queue (the listeners in trouble), then the
// lowest. leftOut counts the ports that did not fit.
func listenPorts(ctx context.Context) (ports []int, leftOut int, err error) {
	waiting := map[int]bool{}
	for _, family := range []uint8{sockdiag.FamilyInet, sockdiag.FamilyInet6} {
		err := sockdiag.Dump(ctx, family, sockdiag.StatesListen, 0, func(m *sockdiag.Msg) error {
			p := int(m.Src.Port())
			if p == 0 {
				return nil
			}
			// For a listener, idiag_rqueue is its accept queue's length
			// (inet_diag_msg_common_fill() via tcp_diag_get_info()).
			waiting[p] = waiting[p] || m.RQueue > 0
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("read tcp listeners (%s): %w", familyName(family), err)
		}
	}
	// Half-open requests per local port: a SYN-flooded port may have an
	// empty accept queue, and it is the port whose handshakes matter most.
	// Request sockets report their listener's port (inet_req_diag_fill()).
	requests := map[int]int{}
	for _, family := range []uint8{sockdiag.FamilyInet, sockdiag.FamilyInet6} {
		err := sockdiag.Dump(ctx, family, sockdiag.StatesSynRecv, 0, func(m *sockdiag.Msg) error {
			if p := int(m.Src.Port()); m.Request() {
				if _, ok := waiting[p]; ok {
					requests[p]++
				}
			}
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("read tcp SYN-RECV sockets (%s): %w", familyName(family), err)
		}
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

// packetSocket is a SOCK_DGRAM AF_PACKET socket bound to every interface.
type packetSocket struct {
	fd      int
	snaplen uint32
}

// openPacketSocket opens the capture socket with the filter attached.
//
// SOCK_DGRAM ("cooked") makes the kernel strip the link header and describe
// it in the sockaddr_ll instead, so Ethernet, loopback and tunnels with no
// link header (ipip, WireGuard) all arrive in one form, from the network
// header on, which is what LINUX_SLL records hold.
//
// The socket is opened with protocol 0, which registers no packet hook
// (packet_create() only calls register_prot_hook() for a non-zero protocol),
// so nothing is queued until bind(); the filter is attached before bind()
// sets the protocol to ETH_P_ALL. Every queued packet has therefore passed
// the filter, and there is nothing unfiltered to drain. Binding with ifindex
// 0 captures on all interfaces of the namespace.
func openPacketSocket(f *packetFilter) (_ *packetSocket, err error) {
	raw, err := f.raw()
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		// packet_create(): !ns_capable(net->user_ns, CAP_NET_RAW).
		return nil, fmt.Errorf("packet capture needs CAP_NET_RAW (run as root): %w", err)
	case errors.Is(err, unix.EAFNOSUPPORT):
		// A kernel built without CONFIG_PACKET, or af_packet not loadable.
		return nil, fmt.Errorf("open packet socket: %w: %w", err, fs.ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("open packet socket: %w", err)
	}
	s := &packetSocket{fd: fd, snaplen: f.snaplen}
	defer func() {
		if err != nil {
			s.close()
		}
	}()

	// SO_RCVBUFFORCE passes net.core.rmem_max but needs CAP_NET_ADMIN;
	// without it, SO_RCVBUF gets what rmem_max allows.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, packetRcvbuf) != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, packetRcvbuf); err != nil {
			return nil, fmt.Errorf("set packet socket receive buffer: %w", err)
		}
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return nil, fmt.Errorf("attach packet filter: %w", err)
	}
	// PACKET_AUXDATA gives each packet's length before the filter cut it
	// (tp_len, from PACKET_SKB_CB(skb)->sa.origlen in packet_rcv()) and the
	// VLAN tag the kernel took out of it.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		return nil, fmt.Errorf("enable PACKET_AUXDATA: %w", err)
	}
	// Kernel receive timestamps, not the time we got round to reading.
	// SO_TIMESTAMPNS_NEW (5.1+) is y2038-safe everywhere; older kernels
	// answer ENOPROTOOPT and get the old option.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_NEW, 1); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_OLD, 1); err != nil {
			return nil, fmt.Errorf("enable packet timestamps: %w", err)
		}
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: 0}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("bind packet socket: %w", err)
	}
	return s, nil
}

func (s *packetSocket) close() { unix.Close(s.fd) }

// drops reads PACKET_STATISTICS: tp_drops counts the packets that passed the
// filter but found the receive buffer full. Reading resets the counters.
func (s *packetSocket) drops() (uint32, error) {
	st, err := unix.GetsockoptTpacketStats(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, fmt.Errorf("read PACKET_STATISTICS: %w", err)
	}
	return st.Drops, nil
}

// capture reads packets into out until end, a limit, or ctx. It says why it
// stopped; an error means the socket or the pcap failed.
func (s *packetSocket) capture(ctx context.Context, end time.Time, out *pcapSample) (string, error) {
	buf := make([]byte, s.snaplen)
	oob := make([]byte, unix.CmsgSpace(auxdataLen)+unix.CmsgSpace(16)+64)
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
	for {
		if ctx.Err() != nil {
			return stoppedByDeadline, nil
		}
		wait := time.Until(end)
		if wait <= 0 {
			return stoppedByWindow, nil
		}
		if d, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(d))
		}
		// Round up, and wait at least 1 ms: a 0 ms timeout would spin until
		// the context notices its deadline, and a negative one (a deadline
		// passed since the check above) would block poll for good.
		timeout := max(int((min(wait, pollSlice)+time.Millisecond-1)/time.Millisecond), 1)
		_, err := unix.Poll(fds, timeout)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return "", fmt.Errorf("poll packet socket: %w", err)
		}
		if fds[0].Revents == 0 {
			continue
		}
		// Drain what is queued, minding the window and ctx between packets
		// so a busy host cannot hold the sample past either.
		for {
			if ctx.Err() != nil {
				return stoppedByDeadline, nil
			}
			if !time.Now().Before(end) {
				return stoppedByWindow, nil
			}
			n, oobn, _, from, err := unix.Recvmsg(s.fd, buf, oob, 0)
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return "", fmt.Errorf("read packet socket: %w", err)
			}
			m, ts, err := packetMeta(from, oob[:oobn])
			if err != nil {
				return "", err
			}
			if m.PktType == bundle.PacketOutgoing && m.HAType == bundle.ARPHRDLoopback {
				// The filter already drops loopback's outgoing copies
				// (see newPacketFilter); this keeps them out whatever
				// program is attached.
				continue
			}
			if ts.IsZero() {
				ts = time.Now()
			}
			stop, err := out.add(&m, buf[:n], ts)
			if err != nil {
				return "", err
			}
			if stop != "" {
				return stop, nil
			}
		}
	}
}

// packetMeta gathers what the kernel said about one packet: the sockaddr_ll
// of recvmsg and its control messages.
func packetMeta(from unix.Sockaddr, oob []byte) (cookedMeta, time.Time, error) {
	sll, ok := from.(*unix.SockaddrLinklayer)
	if !ok {
		return cookedMeta{}, time.Time{}, fmt.Errorf("read packet socket: address %T, want sockaddr_ll", from)
	}
	m := cookedMeta{
		PktType:  sll.Pkttype,
		HAType:   sll.Hatype,
		HALen:    sll.Halen,
		Addr:     sll.Addr,
		Protocol: htons(sll.Protocol), // sll_protocol is in network order
	}
	ctl, err := parseControl(oob)
	if err != nil {
		return cookedMeta{}, time.Time{}, fmt.Errorf("read packet socket: %w", err)
	}
	m.Aux, m.HaveAux = ctl.aux, ctl.haveAux
	return m, ctl.ts, nil
}

// packetControl is what the control messages of one packet carry.
type packetControl struct {
	aux     auxdata
	haveAux bool
	ts      time.Time // zero when absent
}

// parseControl decodes the control messages of a packet socket read:
// PACKET_AUXDATA and the SCM_TIMESTAMPNS timestamp (either variant). Others
// are ignored.
func parseControl(oob []byte) (packetControl, error) {
	var c packetControl
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return c, fmt.Errorf("control messages: %w", err)
	}
	for _, msg := range msgs {
		switch {
		case msg.Header.Level == unix.SOL_PACKET && msg.Header.Type == unix.PACKET_AUXDATA:
			if c.aux, err = parseAuxdata(msg.Data); err != nil {
				return c, err
			}
			c.haveAux = true
		case msg.Header.Level == unix.SOL_SOCKET &&
			(msg.Header.Type == unix.SO_TIMESTAMPNS_NEW || msg.Header.Type == unix.SO_TIMESTAMPNS_OLD):
			if c.ts, err = parseTimespec(msg.Data); err != nil {
				return c, err
			}
		}
	}
	return c, nil
}

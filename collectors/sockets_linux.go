package collectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors/internal/sockdiag"
)

// Sockets is the "sockets" Collector: every TCP socket of the capture's
// network namespace, in every state and both families, streamed from
// sock_diag into sockets/tcp.jsonl (one bundle.Socket per line, up to
// Host.SocketCap rows) and counted, never capped, into sockets/summary.json.
// After Collect, Info (or Annotate) gives the counts for the manifest. Use a
// fresh Sockets for each capture.
type Sockets struct {
	mu   sync.Mutex
	info *bundle.SocketsInfo
}

// Name implements Collector.
func (*Sockets) Name() string { return "sockets" }

// Info returns the counts of the table Collect wrote, or nil when Collect did
// not complete.
func (s *Sockets) Info() *bundle.SocketsInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.info == nil {
		return nil
	}
	info := *s.info
	return &info
}

// Annotate implements Annotator: it sets m.Sockets from Info.
func (s *Sockets) Annotate(m *bundle.Manifest) {
	if info := s.Info(); info != nil {
		m.Sockets = info
	}
}

// socketFlushAt is how much encoded JSON is gathered before it is written:
// one member write per 64 KiB, not one per row.
const socketFlushAt = 64 << 10

// Collect implements Collector.
func (s *Sockets) Collect(ctx context.Context, h Host, w *bundle.Writer) error {
	limit := h.SocketCap
	if limit <= 0 {
		limit = DefaultSocketCap
	}
	f, err := w.Create(bundle.PathSocketsTCP)
	if err != nil {
		return err
	}
	t := newSocketTable(f, limit, newZoner())
	for _, family := range []uint8{sockdiag.FamilyInet, sockdiag.FamilyInet6} {
		// An unclosed member is left out of the bundle: a table cut by the
		// deadline must not pass for the whole one.
		if err := sockdiag.Dump(ctx, family, sockdiag.StatesAll, sockdiag.ExtInfo, t.add); err != nil {
			return fmt.Errorf("read tcp sockets (%s): %w", familyName(family), err)
		}
	}
	// A table that could not be written (a full disk) is left out, but the
	// summary, counted in memory and small, is still written: it says what
	// the missing table held.
	tableErr := t.flush()
	if cerr := f.Close(); tableErr == nil {
		tableErr = cerr
	}
	if tableErr != nil {
		tableErr = fmt.Errorf("write %s: %w", bundle.PathSocketsTCP, tableErr)
	}
	sf, err := w.Create(bundle.PathSocketsSummary)
	if err != nil {
		return errors.Join(tableErr, err)
	}
	if err := t.writeSummary(sf); err != nil {
		sf.Close()
		return errors.Join(tableErr, fmt.Errorf("write %s: %w", bundle.PathSocketsSummary, err))
	}
	if err := sf.Close(); err != nil {
		return errors.Join(tableErr, fmt.Errorf("write %s: %w", bundle.PathSocketsSummary, err))
	}
	if tableErr != nil {
		return fmt.Errorf("%w (%s counts all %d sockets)", tableErr, bundle.PathSocketsSummary, t.total)
	}
	info := &bundle.SocketsInfo{Total: t.total, Written: t.written, Cap: limit, Truncated: t.written < t.total}
	if info.Truncated {
		w.Note("socket table cut at %d of %d sockets; the summary counts all of them", t.written, t.total)
	}
	s.mu.Lock()
	s.info = info
	s.mu.Unlock()
	return nil
}

// nStates is the number of state slots counted: the kernel's states
// TCP_ESTABLISHED..TCP_CLOSING, with slot 0 for anything unknown.
const nStates = int(sockdiag.StateClosing) + 1

// stateNames are ss's names for the kernel's TCP states (ss.c sstate_name),
// except TCP_CLOSE, which ss shows as UNCONN.
var stateNames = [nStates]string{
	0:                         "UNKNOWN",
	sockdiag.StateEstablished: "ESTAB",
	sockdiag.StateSynSent:     "SYN-SENT",
	sockdiag.StateSynRecv:     "SYN-RECV",
	sockdiag.StateFinWait1:    "FIN-WAIT-1",
	sockdiag.StateFinWait2:    "FIN-WAIT-2",
	sockdiag.StateTimeWait:    "TIME-WAIT",
	sockdiag.StateClose:       "CLOSE",
	sockdiag.StateCloseWait:   "CLOSE-WAIT",
	sockdiag.StateLastAck:     "LAST-ACK",
	sockdiag.StateListen:      "LISTEN",
	sockdiag.StateClosing:     "CLOSING",
}

// stateSlot maps a kernel state to its slot in stateNames.
func stateSlot(state uint8) int {
	switch {
	case int(state) < nStates:
		return int(state)
	case state == sockdiag.StateNewSynRecv:
		// inet_req_diag_fill() already reports request sockets as
		// TCP_SYN_RECV; should a kernel send the internal state, it is the
		// same thing.
		return int(sockdiag.StateSynRecv)
	default:
		return 0
	}
}

// timerName is ss's name for inet_diag's idiag_timer (ss.c tcp_timer_print):
// "" when no timer runs.
func timerName(timer uint8) string {
	switch timer {
	case 0:
		return ""
	case 1:
		return "on"
	case 2:
		return "keepalive"
	case 3:
		return "timewait"
	case 4:
		return "persist"
	default:
		return "unknown"
	}
}

func familyName(family uint8) string {
	if family == sockdiag.FamilyInet6 {
		return "inet6"
	}
	return "inet"
}

// stateCounts counts sockets by state slot.
type stateCounts [nStates]uint32

// socketTable encodes sockets as they stream in and counts them. Counts are
// kept by port and netip.Addr, not by name, so the per-socket path does not
// allocate and a table with 200,000 distinct peers stays within a few tens of
// MiB.
type socketTable struct {
	out     io.Writer
	buf     []byte
	limit   int
	total   int
	written int
	zones   *zoner
	werr    error // the first error writing rows to out

	byState  stateCounts
	byPort   []*stateCounts // indexed by local port
	byRemote map[netip.Addr]*stateCounts
}

func newSocketTable(out io.Writer, limit int, z *zoner) *socketTable {
	return &socketTable{
		out: out, limit: limit, zones: z,
		buf:      make([]byte, 0, socketFlushAt+4096),
		byPort:   make([]*stateCounts, 1<<16),
		byRemote: map[netip.Addr]*stateCounts{},
	}
}

// add is the sockdiag.Dump callback: it counts m and, below the cap, encodes
// it.
func (t *socketTable) add(m *sockdiag.Msg) error {
	t.total++
	slot := stateSlot(m.State)
	t.byState[slot]++
	c := t.byPort[m.Src.Port()]
	if c == nil {
		c = new(stateCounts)
		t.byPort[m.Src.Port()] = c
	}
	c[slot]++
	// IPv4 peers of dual-stack sockets appear as ::ffff:a.b.c.d; a client is
	// one client whichever socket family it reached.
	if r := m.Dst.Addr().Unmap(); !r.IsUnspecified() {
		c := t.byRemote[r]
		if c == nil {
			c = new(stateCounts)
			t.byRemote[r] = c
		}
		c[slot]++
	}
	if t.written >= t.limit || t.werr != nil {
		return nil
	}
	t.buf = appendSocket(t.buf, m, t.zones)
	t.written++
	if len(t.buf) >= socketFlushAt {
		// A write error stops the rows, not the dump: the counts of the
		// summary go on. flush reports it at the end.
		t.flush()
	}
	return nil
}

// flush writes the rows gathered; after a write error it writes nothing
// more and returns that error.
func (t *socketTable) flush() error {
	if len(t.buf) > 0 && t.werr == nil {
		_, t.werr = t.out.Write(t.buf)
	}
	t.buf = t.buf[:0]
	return t.werr
}

// writeSummary writes bundle.SocketSummary as JSON to out, streaming: ports
// in numeric order, peers in address order, one per line. Building the
// map[string]map[string]int of the record for encoding/json would cost
// hundreds of bytes per peer, and a SYN flood has many peers.
func (t *socketTable) writeSummary(out io.Writer) error {
	b := make([]byte, 0, socketFlushAt+4096)
	var err error
	flush := func() {
		if err == nil && len(b) > 0 {
			_, err = out.Write(b)
		}
		b = b[:0]
	}
	b = append(b, "{\n \"total\": "...)
	b = strconv.AppendInt(b, int64(t.total), 10)
	b = append(b, ",\n \"by_state\": "...)
	b = appendStateCounts(b, &t.byState)
	b = append(b, ",\n \"by_local_port\": {"...)
	first := true
	for port, c := range t.byPort {
		if c == nil {
			continue
		}
		b = appendSummaryKey(b, first)
		first = false
		b = strconv.AppendInt(b, int64(port), 10)
		b = append(b, "\": "...)
		b = appendStateCounts(b, c)
		if len(b) >= socketFlushAt {
			flush()
		}
	}
	b = appendSummaryEnd(b, first)
	b = append(b, ",\n \"by_remote_addr\": {"...)
	addrs := make([]netip.Addr, 0, len(t.byRemote))
	for a := range t.byRemote {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	for i, a := range addrs {
		b = appendSummaryKey(b, i == 0)
		b = a.AppendTo(b)
		b = append(b, "\": "...)
		b = appendStateCounts(b, t.byRemote[a])
		if len(b) >= socketFlushAt {
			flush()
		}
	}
	b = appendSummaryEnd(b, len(addrs) == 0)
	b = append(b, "\n}\n"...)
	flush()
	return err
}

// appendSummaryKey starts one entry of a summary object, up to its key's
// opening quote.
func appendSummaryKey(b []byte, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	return append(b, "\n  \""...)
}

func appendSummaryEnd(b []byte, empty bool) []byte {
	if !empty {
		b = append(b, "\n "...)
	}
	return append(b, '}')
}

// appendStateCounts appends {"ESTAB": 3, ...} with the states that occur, in
// the kernel's state order.
func appendStateCounts(b []byte, c *stateCounts) []byte {
	b = append(b, '{')
	first := true
	for slot, n := range c {
		if n == 0 {
			continue
		}
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = append(b, '"')
		b = append(b, stateNames[slot]...)
		b = append(b, "\": "...)
		b = strconv.AppendUint(b, uint64(n), 10)
	}
	return append(b, '}')
}

// appendSocket appends m as one JSON line of bundle.Socket, byte for byte
// what encoding/json writes for the same record, without reflection or
// allocation.
func appendSocket(b []byte, m *sockdiag.Msg, z *zoner) []byte {
	b = append(b, `{"family":"`...)
	b = append(b, familyName(m.Family)...)
	b = append(b, `","state":"`...)
	b = append(b, stateNames[stateSlot(m.State)]...)
	b = append(b, `","local":"`...)
	_, zone := z.zone(m.Src.Addr(), m.IfIndex)
	b = appendAddrPort(b, m.Src, zone)
	b = append(b, `","remote":"`...)
	_, zone = z.zone(m.Dst.Addr(), m.IfIndex)
	b = appendAddrPort(b, m.Dst, zone)
	b = append(b, `","recv_q":`...)
	b = strconv.AppendUint(b, uint64(m.RQueue), 10)
	b = append(b, `,"send_q":`...)
	b = strconv.AppendUint(b, uint64(m.WQueue), 10)
	b = append(b, `,"uid":`...)
	b = strconv.AppendUint(b, uint64(m.UID), 10)
	b = append(b, `,"inode":`...)
	b = strconv.AppendUint(b, uint64(m.Inode), 10)
	b = append(b, `,"cookie":`...)
	b = strconv.AppendUint(b, m.Cookie, 10)
	if name := timerName(m.Timer); name != "" {
		b = append(b, `,"timer":"`...)
		b = append(b, name...)
		b = append(b, '"')
	}
	b = appendUintField(b, `,"expires_ms":`, uint64(m.Expires), true)
	b = appendUintField(b, `,"retrans":`, uint64(m.Retrans), true)
	if m.HasInfo {
		b = append(b, `,"info":`...)
		b = appendTCPInfo(b, &m.Info)
	}
	return append(b, "}\n"...)
}

// appendUintField appends key and v, or nothing when omitEmpty and v is 0
// (encoding/json's omitempty).
func appendUintField(b []byte, key string, v uint64, omitEmpty bool) []byte {
	if omitEmpty && v == 0 {
		return b
	}
	b = append(b, key...)
	return strconv.AppendUint(b, v, 10)
}

func appendTCPInfo(b []byte, i *sockdiag.TCPInfo) []byte {
	b = appendUintField(b, `{"state":`, uint64(i.State), false)
	b = appendUintField(b, `,"ca_state":`, uint64(i.CAState), false)
	b = appendUintField(b, `,"retransmits":`, uint64(i.Retransmits), false)
	b = appendUintField(b, `,"probes":`, uint64(i.Probes), false)
	b = appendUintField(b, `,"backoff":`, uint64(i.Backoff), false)
	b = appendUintField(b, `,"options":`, uint64(i.Options), false)
	b = appendUintField(b, `,"snd_wscale":`, uint64(i.SndWscale), false)
	b = appendUintField(b, `,"rcv_wscale":`, uint64(i.RcvWscale), false)
	b = appendUintField(b, `,"rto_us":`, uint64(i.RTO), false)
	b = appendUintField(b, `,"ato_us":`, uint64(i.ATO), false)
	b = appendUintField(b, `,"snd_mss":`, uint64(i.SndMSS), false)
	b = appendUintField(b, `,"rcv_mss":`, uint64(i.RcvMSS), false)
	b = appendUintField(b, `,"unacked":`, uint64(i.Unacked), false)
	b = appendUintField(b, `,"sacked":`, uint64(i.Sacked), false)
	b = appendUintField(b, `,"lost":`, uint64(i.Lost), false)
	b = appendUintField(b, `,"retrans":`, uint64(i.Retrans), false)
	b = appendUintField(b, `,"last_data_sent_ms":`, uint64(i.LastDataSent), false)
	b = appendUintField(b, `,"last_data_recv_ms":`, uint64(i.LastDataRecv), false)
	b = appendUintField(b, `,"last_ack_recv_ms":`, uint64(i.LastAckRecv), false)
	b = appendUintField(b, `,"pmtu":`, uint64(i.PMTU), false)
	b = appendUintField(b, `,"rcv_ssthresh":`, uint64(i.RcvSsthresh), false)
	b = appendUintField(b, `,"rtt_us":`, uint64(i.RTT), false)
	b = appendUintField(b, `,"rttvar_us":`, uint64(i.RTTVar), false)
	b = appendUintField(b, `,"snd_ssthresh":`, uint64(i.SndSsthresh), false)
	b = appendUintField(b, `,"snd_cwnd":`, uint64(i.SndCwnd), false)
	b = appendUintField(b, `,"advmss":`, uint64(i.AdvMSS), false)
	b = appendUintField(b, `,"reordering":`, uint64(i.Reordering), false)
	b = appendUintField(b, `,"rcv_rtt_us":`, uint64(i.RcvRTT), false)
	b = appendUintField(b, `,"rcv_space":`, uint64(i.RcvSpace), false)
	b = appendUintField(b, `,"total_retrans":`, uint64(i.TotalRetrans), false)
	b = appendUintField(b, `,"pacing_rate":`, i.PacingRate, true)
	b = appendUintField(b, `,"bytes_acked":`, i.BytesAcked, true)
	b = appendUintField(b, `,"bytes_received":`, i.BytesReceived, true)
	b = appendUintField(b, `,"segs_out":`, uint64(i.SegsOut), true)
	b = appendUintField(b, `,"segs_in":`, uint64(i.SegsIn), true)
	b = appendUintField(b, `,"min_rtt_us":`, uint64(i.MinRTT), true)
	b = appendUintField(b, `,"delivery_rate":`, i.DeliveryRate, true)
	b = appendUintField(b, `,"busy_time_us":`, i.BusyTimeUS, true)
	b = appendUintField(b, `,"bytes_sent":`, i.BytesSent, true)
	b = appendUintField(b, `,"bytes_retrans":`, i.BytesRetrans, true)
	return append(b, '}')
}

// appendAddrPort appends ap as the bundle writes local and remote addresses:
// 10.0.0.1:143, [::]:143, [fe80::1%eth0]:22 (zone is the interface name, or
// empty), and, as ss does, * for port 0 (the remote side of a listener:
// 0.0.0.0:*).
func appendAddrPort(b []byte, ap netip.AddrPort, zone []byte) []byte {
	a := ap.Addr()
	if a.Is4() {
		b = a.AppendTo(b)
	} else {
		b = append(b, '[')
		b = a.AppendTo(b)
		if len(zone) > 0 {
			b = append(b, '%')
			b = append(b, zone...)
		}
		b = append(b, ']')
	}
	b = append(b, ':')
	if ap.Port() == 0 {
		return append(b, '*')
	}
	return strconv.AppendUint(b, uint64(ap.Port()), 10)
}

// zoner names the interfaces of IPv6 link-local addresses, which mean
// nothing without one, once each: the socket table has a few interfaces and
// many sockets. The index is idiag_if, sk_bound_dev_if, which a link-local
// socket is bound to (inet_diag_msg_common_fill()).
type zoner struct {
	lookup func(index int) (string, error)
	names  map[uint32]zoneName
}

type zoneName struct {
	raw string
	esc []byte // JSON-escaped, without quotes
}

func newZoner() *zoner {
	return &zoner{lookup: func(index int) (string, error) {
		ifi, err := net.InterfaceByIndex(index)
		if err != nil {
			return "", err
		}
		return ifi.Name, nil
	}}
}

// zone returns the zone of address a on interface ifindex: empty unless a is
// link-local; the interface's name, or its number when it has none (gone, or
// another namespace's). esc is the name escaped for a JSON string.
func (z *zoner) zone(a netip.Addr, ifindex uint32) (raw string, esc []byte) {
	if ifindex == 0 || !(a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) {
		return "", nil
	}
	if n, ok := z.names[ifindex]; ok {
		return n.raw, n.esc
	}
	if z.names == nil {
		z.names = map[uint32]zoneName{}
	}
	n := zoneName{raw: strconv.FormatUint(uint64(ifindex), 10)}
	if z.lookup != nil {
		if name, err := z.lookup(int(ifindex)); err == nil && name != "" {
			n.raw = name
		}
	}
	q, _ := json.Marshal(n.raw) // a string always encodes
	n.esc = q[1 : len(q)-1]
	z.names[ifindex] = n
	return n.raw, n.esc
}

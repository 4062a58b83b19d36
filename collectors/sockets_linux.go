package collectors

import (
	"context"
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

// socketFlushAt is how much encoded JSON is gathered before it is written,
// into a member that offers no staging buffer to encode into (a filtered
// or in-memory one): one member write per 64 KiB, not one per row.
const socketFlushAt = 64 << 10

// socketRowRoom is more than any row takes (some 1,800 bytes with every
// field at its widest and both zones escaped): the room a staging buffer
// must have left for the next row to be encoded into it.
const socketRowRoom = 4 << 10

// availableBufferer is a member that rows can be encoded into in place
// (bundle's staged members): see the bundle's AvailableBuffer.
type availableBufferer interface {
	AvailableBuffer(room int) []byte
}

// Collect implements Collector.
func (s *Sockets) Collect(ctx context.Context, h Host, w *bundle.Writer) error {
	limit := h.SocketCap
	if limit <= 0 {
		limit = DefaultSocketCap
	}
	// The capture's first listener snapshot takes its SYN_RECV counts
	// from this dump rather than walk the kernel's established hash again
	// (tableShare): they are counted here and handed over as soon as the
	// dump ends, whatever becomes of the rows; on any other way out, the
	// snapshot is told at once to dump them itself.
	var (
		requests map[requestKey]int
		publish  func(ok bool)
	)
	if h.Shared != nil {
		requests, publish = h.Shared.table.claim()
	}
	defer func() {
		if publish != nil {
			publish(false)
		}
	}()
	f, err := w.Create(bundle.PathSocketsTCP)
	if err != nil {
		return err
	}
	t := newSocketTable(f, limit, h.zoner())
	t.requests = requests
	// One dump for both families: one walk of the kernel's hash tables.
	// Rows are encoded as they arrive, while the dump's receiver has the
	// kernel fill the next datagram and f's compressor works on the rows
	// before: the three overlap.
	err = h.dumper().Dump(ctx, sockdiag.StatesAll, sockdiag.ExtInfo, t.add)
	if publish != nil {
		publish(err == nil)
		publish = nil
	}
	if err != nil {
		// A table cut by the deadline must not pass for the whole one:
		// it is left out, and its compressor and buffers freed now, not
		// at the process's exit (a watch captures again and again).
		bundle.Discard(f)
		return fmt.Errorf("read tcp sockets: %w", err)
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
const nStates = bundle.NumSocketStates

// stateSlot maps a kernel state to its slot in a bundle.StateCounts, which
// bundle.SocketStateName names.
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

func familyName(family uint8) string {
	if family == sockdiag.FamilyInet6 {
		return "inet6"
	}
	return "inet"
}

// socketTable encodes sockets as they stream in and counts them. Counts are
// kept by port and netip.Addr, not by name, so the per-socket path does not
// allocate and a table with 200,000 distinct peers stays within a few tens of
// MiB.
type socketTable struct {
	out io.Writer
	// stage, when out has one, gives buf: the room left in out's staging
	// buffer, so rows are encoded where they are compressed from and
	// written without a copy. Otherwise buf is the table's own.
	stage   availableBufferer
	buf     []byte
	limit   int
	total   int
	written int
	zones   *zoner
	werr    error // the first error writing rows to out

	byState  bundle.StateCounts
	byPort   portCounts
	byRemote map[netip.Addr]*bundle.StateCounts
	// requests, when not nil, counts the request sockets by family and
	// local endpoint for the first listener snapshot (tableShare).
	requests map[requestKey]int
}

func newSocketTable(out io.Writer, limit int, z *zoner) *socketTable {
	t := &socketTable{
		out: out, limit: limit, zones: z,
		byRemote: map[netip.Addr]*bundle.StateCounts{},
	}
	if s, ok := out.(availableBufferer); ok {
		t.stage = s
		t.buf = s.AvailableBuffer(socketRowRoom)
	}
	if t.buf == nil {
		t.stage = nil
		t.buf = make([]byte, 0, socketFlushAt+socketRowRoom)
	}
	return t
}

// portCounts counts sockets by local port, in pages of 256 ports made as
// ports show up: an empty namespace touches none of it, where a table of
// all 65,536 ports was half a MiB to fault in and scan. The counts are cut
// from slabs, one allocation per 256 ports in use.
type portCounts struct {
	pages [256]*[256]*bundle.StateCounts
	slab  []bundle.StateCounts
}

// at returns the counts of port, made zero the first time.
func (p *portCounts) at(port uint16) *bundle.StateCounts {
	page := p.pages[port>>8]
	if page == nil {
		page = new([256]*bundle.StateCounts)
		p.pages[port>>8] = page
	}
	c := page[port&0xff]
	if c == nil {
		if len(p.slab) == 0 {
			p.slab = make([]bundle.StateCounts, 256)
		}
		c, p.slab = &p.slab[0], p.slab[1:]
		page[port&0xff] = c
	}
	return c
}

// add is the sockdiag.Dump callback: it counts m and, below the cap, encodes
// it.
func (t *socketTable) add(m *sockdiag.Msg) error {
	t.total++
	slot := stateSlot(m.State)
	t.byState[slot]++
	t.byPort.at(m.Src.Port())[slot]++
	// IPv4 peers of dual-stack sockets appear as ::ffff:a.b.c.d; a client is
	// one client whichever socket family it reached.
	if r := m.Dst.Addr().Unmap(); !r.IsUnspecified() {
		c := t.byRemote[r]
		if c == nil {
			c = new(bundle.StateCounts)
			t.byRemote[r] = c
		}
		c[slot]++
	}
	if t.requests != nil && m.Request() {
		t.requests[requestKeyOf(m)]++
	}
	if t.written >= t.limit || t.werr != nil {
		return nil
	}
	raw := rawSocket(m, t.zones)
	t.buf = bundle.AppendRawSocket(t.buf, &raw)
	t.written++
	if len(t.buf) >= socketFlushAt || t.stage != nil && cap(t.buf)-len(t.buf) < socketRowRoom {
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
	switch {
	case t.stage == nil:
		t.buf = t.buf[:0]
	case t.werr == nil:
		// The rows just written are the member's now: the next go after
		// them, or in a fresh staging buffer.
		t.buf = t.stage.AvailableBuffer(socketRowRoom)
	default:
		t.buf = nil // no row is encoded after a write error
	}
	return t.werr
}

// writeSummary writes sockets/summary.json to out: ports in numeric order,
// peers in address order.
func (t *socketTable) writeSummary(out io.Writer) error {
	ports := func(yield func(uint16, *bundle.StateCounts) bool) {
		for hi, page := range t.byPort.pages {
			if page == nil {
				continue
			}
			for lo, c := range page {
				if c != nil && !yield(uint16(hi<<8|lo), c) {
					return
				}
			}
		}
	}
	addrs := make([]netip.Addr, 0, len(t.byRemote))
	for a := range t.byRemote {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	remotes := func(yield func(netip.Addr, *bundle.StateCounts) bool) {
		for _, a := range addrs {
			if !yield(a, t.byRemote[a]) {
				return
			}
		}
	}
	return bundle.WriteSocketSummary(out, t.total, &t.byState, ports, remotes)
}

// rawSocket is m as the bundle encodes a socket row. Its names are
// constants and its zones cached, so building it allocates nothing.
func rawSocket(m *sockdiag.Msg, z *zoner) bundle.RawSocket {
	s := bundle.RawSocket{
		Family:     familyName(m.Family),
		State:      bundle.SocketStateName(stateSlot(m.State)),
		Local:      m.Src,
		Remote:     m.Dst,
		LocalZone:  z.zone(m.Src.Addr(), m.IfIndex),
		RemoteZone: z.zone(m.Dst.Addr(), m.IfIndex),
		RecvQ:      m.RQueue,
		SendQ:      m.WQueue,
		UID:        m.UID,
		Inode:      m.Inode,
		Cookie:     m.Cookie,
		Timer:      bundle.SocketTimerName(int(m.Timer)),
		ExpiresMS:  m.Expires,
		Retrans:    m.Retrans,
	}
	if m.HasInfo {
		// sockdiag.TCPInfo is the kernel's struct tcp_info as far as ss
		// reads it, field for field the bundle's record.
		s.Info = (*bundle.TCPInfo)(&m.Info)
	}
	return s
}

// zoner names the interfaces of IPv6 link-local addresses, which mean
// nothing without one, once each: the socket table has a few interfaces and
// many sockets. The index is idiag_if, sk_bound_dev_if, which a link-local
// socket is bound to (inet_diag_msg_common_fill()).
type zoner struct {
	lookup func(index int) (string, error)
	names  map[uint32]string
}

// zoner returns a zoner naming the interfaces of the namespace h reads: the
// lookup asks rtnetlink, which answers for the namespace of the socket it
// asks through, so with a namespace it runs on the namespace's thread.
func (h Host) zoner() *zoner {
	byIndex := func(index int) (string, error) {
		ifi, err := net.InterfaceByIndex(index)
		if err != nil {
			return "", err
		}
		return ifi.Name, nil
	}
	if h.NS == nil {
		return &zoner{lookup: byIndex}
	}
	return &zoner{lookup: func(index int) (name string, err error) {
		if derr := h.NS.Do(func() { name, err = byIndex(index) }); derr != nil {
			return "", derr
		}
		return name, err
	}}
}

// zone returns the zone of address a on interface ifindex: empty unless a is
// link-local; the interface's name, or its number when it has none (gone, or
// another namespace's).
func (z *zoner) zone(a netip.Addr, ifindex uint32) string {
	if ifindex == 0 || !(a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) {
		return ""
	}
	if n, ok := z.names[ifindex]; ok {
		return n
	}
	if z.names == nil {
		z.names = map[uint32]string{}
	}
	n := strconv.FormatUint(uint64(ifindex), 10)
	if z.lookup != nil {
		if name, err := z.lookup(int(ifindex)); err == nil && name != "" {
			n = name
		}
	}
	z.names[ifindex] = n
	return n
}

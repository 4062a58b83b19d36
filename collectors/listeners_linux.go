package collectors

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors/internal/sockdiag"
	"golang.org/x/sys/unix"
)

// Listeners is the "listeners" Sampler: at every sample it writes
// samples/NNN/listeners.json, every TCP LISTEN socket of both families with
// its queues, the half-open requests in its SYN queue and the process that
// owns it. Owners are looked up once per listener and remembered across
// samples, so one Listeners value serves all the samples of a capture (or of
// a watchdog's history).
type Listeners struct {
	mu sync.Mutex
	// owners maps a listener's cookie, which the kernel never reuses, to its
	// process; pid 0 records a listener whose owner was looked for and not
	// found, so it is not looked for again.
	owners map[uint64]owner
	// last is the listeners of the last sample, for Last.
	last []bundle.Listener
}

// Last returns the listeners of the last sample taken, as written into it,
// so a live view (watch --metrics) shows them without decoding the member
// again. The slice must not be modified.
func (l *Listeners) Last() []bundle.Listener {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

type owner struct {
	pid  int
	comm string
}

// Name implements Sampler.
func (*Listeners) Name() string { return "listeners" }

// Sample implements Sampler. The first sample of a capture is the capture's
// listener snapshot (Host.firstListeners), whose LISTEN sockets the other
// collectors share (Host.firstListenSockets); later samples dump the
// listeners afresh.
func (l *Listeners) Sample(ctx context.Context, h Host, i int, w *bundle.Writer) error {
	proc := h.Proc
	if proc == "" {
		proc = "/proc"
	}
	// The first snapshot waits for the socket table's dump for its SYN-RECV
	// counts; its listeners' owners are looked up meanwhile, from the
	// LISTEN sockets that snapshot is made of, so that the slow part of
	// each (a dump of every socket, a readlink of every descriptor) runs
	// beside the other.
	var warmed chan bool
	if h.firstSampleComing() {
		warmed = make(chan bool, 1)
		go func() {
			// Off the sampler's goroutine, out of reach of its recover:
			// a panic here must not end the capture either.
			defer func() {
				if p := recover(); p != nil {
					warmed <- false
				}
			}()
			base, err := h.firstListenSockets(ctx)
			if err != nil {
				warmed <- false
				return
			}
			warmed <- l.setOwners(ctx, proc, base)
		}()
	}
	ls, err := h.sampleListeners(ctx)
	stopped := false
	if warmed != nil {
		stopped = <-warmed
	}
	if err != nil {
		return err
	}
	// The owners are cached by cookie: the first snapshot's are all known
	// by now, so this looks nothing up again.
	stopped = l.setOwners(ctx, proc, ls) || stopped
	switch {
	case stopped:
		w.Note("owner lookup stopped after reading %d descriptors: listeners whose owner was not found by then have pid 0", maxOwnerLinks)
	case ctx.Err() != nil:
		w.Note("owner lookup cut by the %s: some listeners have pid 0", stopCause(ctx))
	case unowned(ls) > 0:
		// Without CAP_SYS_PTRACE, proc_fd_access_allowed() hides other
		// users' /proc/PID/fd, and a process of another PID namespace is not
		// in this /proc at all: their listeners are found, their owners not.
		w.Note("owner not found for %d of %d listeners (pid 0): held by processes this capture cannot look into (another user's, without CAP_SYS_PTRACE, or another PID namespace's)", unowned(ls), len(ls))
	}
	l.mu.Lock()
	l.last = ls
	l.mu.Unlock()
	return w.WriteFile(bundle.SampleFile(i, bundle.SampleListeners), bundle.EncodeListeners(ls))
}

// readListeners dumps every TCP listener of both families of the namespace h
// reads, with its queues and the half-open requests attributed to it,
// through h's Dumper (the capture's, which counts its requests). One dump asks for LISTEN and
// SYN_RECV sockets together: the kernel walks its listening hash, then its
// established hash for the requests, and a second dump would walk both again.
func readListeners(ctx context.Context, h Host) ([]bundle.Listener, error) {
	return readListenersSized(ctx, h, 0)
}

// readListenersSized is readListeners with room made for about n listeners
// up front: a live view that reads the same listeners every second does not
// grow its table and maps again each time.
func readListenersSized(ctx context.Context, h Host, n int) ([]bundle.Listener, error) {
	return readListenersOn(ctx, h.dumper(), nil, sockdiag.StatesListen|sockdiag.StatesSynRecv, h.zoner(), n)
}

// readListenersOn is readListeners through d on the socket c (of another
// namespace; nil: a socket d opens), for the states given, with room for
// about n listeners: without StatesSynRecv the listeners' SynRecv stay 0.
func readListenersOn(ctx context.Context, d *sockdiag.Dumper, c *sockdiag.Conn, states uint32, z *zoner, n int) ([]bundle.Listener, error) {
	t := newListenerTable(z)
	t.reserve(n)
	// INET_DIAG_SKMEMINFO carries the listener's own drop counter; request
	// sockets get no attributes whatever is asked (inet_req_diag_fill()).
	if err := d.DumpOn(ctx, c, states, sockdiag.ExtSkMemInfo, t.add); err != nil {
		return nil, fmt.Errorf("read tcp listeners and SYN-RECV sockets: %w", err)
	}
	t.attributePending()
	return t.listeners(), nil
}

// unowned counts the listeners whose owning process was not found.
func unowned(ls []bundle.Listener) int {
	n := 0
	for _, l := range ls {
		if l.PID == 0 {
			n++
		}
	}
	return n
}

// listenerTable attributes SYN_RECV request sockets to listeners. The kernel
// does not say which listener a request belongs to: inet_req_diag_fill()
// reports it with inode 0 and no listener (rsk_listener is not exported), so
// requests are attributed the way the kernel's listener lookup
// (__inet_lookup_listener()) would have chosen, from the request's local
// address and port.
type listenerTable struct {
	zones   *zoner
	entries []listenerEntry
	// groups are listeners sharing family, address and port: SO_REUSEPORT
	// groups, whose requests cannot be told apart.
	groups   map[groupKey]int
	synRecv  []int // per group
	size     []int // per group
	exact    map[netip.AddrPort]int
	wildcard map[familyPort]int
	// dualStack holds [::] listeners without IPV6_V6ONLY, which take IPv4
	// connections too.
	dualStack map[uint16]int
	// pending counts the requests of a combined dump by family and local
	// endpoint, until every listener is known: the kernel sends a dump's
	// listeners first, but attribution should not rest on that order, and
	// a request of one family may belong to a listener of the other. A SYN
	// flood has many requests but few local endpoints.
	pending map[requestKey]int
	// indexed is set once index ran.
	indexed bool
}

type requestKey struct {
	family uint8
	local  netip.AddrPort // unmapped
}

// requestKeyOf is the key a request socket is counted under.
func requestKeyOf(m *sockdiag.Msg) requestKey {
	return requestKey{m.Family, netip.AddrPortFrom(m.Src.Addr().Unmap(), m.Src.Port())}
}

type listenerEntry struct {
	rec    bundle.Listener
	addr   netip.Addr // without zone
	v6only bool
	group  int
}

type groupKey struct {
	family uint8
	addr   netip.Addr
	port   uint16
}

type familyPort struct {
	family uint8
	port   uint16
}

func newListenerTable(z *zoner) *listenerTable {
	return &listenerTable{
		zones:     z,
		groups:    map[groupKey]int{},
		exact:     map[netip.AddrPort]int{},
		wildcard:  map[familyPort]int{},
		dualStack: map[uint16]int{},
		pending:   map[requestKey]int{},
	}
}

// reserve makes room for n listeners.
func (t *listenerTable) reserve(n int) {
	if n <= 0 {
		return
	}
	t.entries = make([]listenerEntry, 0, n)
	t.groups = make(map[groupKey]int, n)
	t.exact = make(map[netip.AddrPort]int, n)
}

// add is the sockdiag.Dump callback of a combined LISTEN and SYN_RECV dump:
// it adds listeners and counts requests for attributePending.
func (t *listenerTable) add(m *sockdiag.Msg) error {
	switch {
	case m.State == sockdiag.StateListen:
		return t.addListener(m)
	case m.Request():
		t.pending[requestKeyOf(m)]++
	}
	return nil
}

// attributePending indexes the listeners and attributes the requests add
// counted.
func (t *listenerTable) attributePending() {
	t.index()
	for k, n := range t.pending {
		if g, ok := t.lookup(k.family, k.local.Addr(), k.local.Port()); ok {
			t.synRecv[g] += n
		}
	}
	clear(t.pending)
}

// addListener is the sockdiag.Dump callback for LISTEN sockets.
func (t *listenerTable) addListener(m *sockdiag.Msg) error {
	if m.State != sockdiag.StateListen {
		return nil
	}
	addr := m.Src.Addr()
	zone := t.zones.zone(addr, m.IfIndex)
	rec := bundle.Listener{
		Proto:  "tcp",
		Family: familyName(m.Family),
		Local:  string(bundle.AppendAddrPort(nil, m.Src, zone)),
		Addr:   addr.WithZone(zone).String(),
		Port:   int(m.Src.Port()),
		// tcp_diag_get_info(): for a listener, idiag_rqueue is
		// sk_ack_backlog (the accept queue now) and idiag_wqueue is
		// sk_max_ack_backlog (the backlog, clamped by somaxconn at listen()).
		RecvQ:  m.RQueue,
		SendQ:  m.WQueue,
		UID:    m.UID,
		Inode:  m.Inode,
		Cookie: m.Cookie,
	}
	if m.HasDrops {
		// tcp_listendrop() bumps sk_drops with every ListenDrops of
		// this listener, whichever queue or rule dropped; a kernel before
		// 4.7 sends no SK_MEMINFO_DROPS and the field stays unknown.
		d := m.Drops
		rec.Drops = &d
	}
	t.entries = append(t.entries, listenerEntry{rec: rec, addr: addr, v6only: m.V6Only})
	return nil
}

// index groups the listeners and builds the lookups addRequest uses, once,
// after every listener was added; it does nothing when called again.
func (t *listenerTable) index() {
	if t.indexed {
		return
	}
	t.indexed = true
	for i := range t.entries {
		e := &t.entries[i]
		port := uint16(e.rec.Port)
		k := groupKey{family: familyOf(e.rec.Family), addr: e.addr, port: port}
		g, ok := t.groups[k]
		if !ok {
			g = len(t.size)
			t.groups[k] = g
			t.size = append(t.size, 0)
			t.synRecv = append(t.synRecv, 0)
		}
		t.size[g]++
		e.group = g
		switch {
		case !e.addr.IsUnspecified():
			// A v4-mapped bound address takes the same requests as the
			// IPv4 address.
			ap := netip.AddrPortFrom(e.addr.Unmap(), port)
			if _, dup := t.exact[ap]; !dup {
				t.exact[ap] = g
			}
		default:
			fp := familyPort{k.family, port}
			if _, dup := t.wildcard[fp]; !dup {
				t.wildcard[fp] = g
			}
			if k.family == sockdiag.FamilyInet6 && !e.v6only {
				if _, dup := t.dualStack[port]; !dup {
					t.dualStack[port] = g
				}
			}
		}
	}
}

// addRequest is the sockdiag.Dump callback for SYN_RECV sockets: it counts
// each request socket for the listener that holds it.
func (t *listenerTable) addRequest(m *sockdiag.Msg) error {
	// A full socket in SYN_RECV is a TCP Fast Open child, already in the
	// accept queue (Recv-Q): only request sockets are in the SYN queue.
	if !m.Request() {
		return nil
	}
	if g, ok := t.lookup(m.Family, m.Src.Addr().Unmap(), m.Src.Port()); ok {
		t.synRecv[g]++
	}
	return nil
}

// lookup returns the group of listeners that holds a request of family to
// the unmapped local address and port.
func (t *listenerTable) lookup(family uint8, local netip.Addr, port uint16) (int, bool) {
	// A request reports the concrete local address the SYN was sent to,
	// even for a wildcard listener. A listener bound to that address wins
	// over a wildcard one, as in __inet_lookup_listener(), which looks up
	// (daddr, port) before (INADDR_ANY, port).
	g, ok := t.exact[netip.AddrPortFrom(local, port)]
	switch {
	case ok:
	case !local.Is4():
		g, ok = t.wildcard[familyPort{sockdiag.FamilyInet6, port}]
	case family == sockdiag.FamilyInet6:
		// inet_reqsk_alloc() gives a request its listener's family
		// (ireq_family = sk_listener->sk_family): an IPv4 client of a [::]
		// listener is an AF_INET6 request with a v4-mapped address, and
		// only a dual-stack listener makes those.
		g, ok = t.dualStack[port]
	default:
		g, ok = t.wildcard[familyPort{sockdiag.FamilyInet, port}]
		if !ok {
			// An AF_INET request with no IPv4 listener on its port: the
			// docs/kernel-listen-path.md §2.3 describes IPv4 requests of a dual-stack
			// listener in the AF_INET table (tcp_v6_conn_request() hands
			// IPv4 SYNs to tcp_v4_conn_request()), so they belong to the
			// [::] listener.
			g, ok = t.dualStack[port]
		}
	}
	return g, ok
}

// listeners returns the listeners with their SYN_RECV counts, sorted by port,
// then local address, then cookie.
func (t *listenerTable) listeners() []bundle.Listener {
	out := make([]bundle.Listener, len(t.entries))
	for i, e := range t.entries {
		out[i] = e.rec
		// SO_REUSEPORT listeners share one address and port; the request
		// sockets do not say which of them holds them (docs/kernel-listen-path.md §2.3), so
		// each gets the group's total.
		out[i].SynRecv = t.synRecv[e.group]
		out[i].ReusePort = t.size[e.group] > 1
	}
	slices.SortFunc(out, func(a, b bundle.Listener) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Local, b.Local), cmp.Compare(a.Cookie, b.Cookie))
	})
	return out
}

func familyOf(name string) uint8 {
	if name == "inet6" {
		return sockdiag.FamilyInet6
	}
	return sockdiag.FamilyInet
}

// setOwners fills in PID and Comm. Only owners not known from an earlier
// sample are looked up, and cached entries of listeners that are gone are
// dropped, so the cache holds at most the current listeners. It reports
// whether the lookup stopped at its bound of maxOwnerLinks descriptors.
func (l *Listeners) setOwners(ctx context.Context, proc string, ls []bundle.Listener) (stopped bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.owners == nil {
		l.owners = map[uint64]owner{}
	}
	want := map[uint32]uint64{} // inode -> cookie
	live := make(map[uint64]bool, len(ls))
	for _, x := range ls {
		live[x.Cookie] = true
		if _, known := l.owners[x.Cookie]; !known && x.Inode != 0 {
			want[x.Inode] = x.Cookie
		}
	}
	for c := range l.owners {
		if !live[c] {
			delete(l.owners, c)
		}
	}
	if len(want) > 0 {
		found, complete := findSocketOwners(ctx, proc, want, maxOwnerLinks)
		stopped = !complete && ctx.Err() == nil
		if ctx.Err() == nil {
			// A scan cut short by the deadline proves nothing about the
			// inodes it did not reach: remember misses only after a scan
			// that ended on its own. One that reached its bound is
			// remembered too: the next sample's would read the same
			// descriptors.
			for _, cookie := range want {
				l.owners[cookie] = owner{}
			}
		}
		for inode, o := range found {
			l.owners[want[inode]] = o
		}
	}
	for i := range ls {
		o := l.owners[ls[i].Cookie]
		ls[i].PID, ls[i].Comm = o.pid, o.comm
	}
	return stopped
}

// findSocketOwners looks through proc/*/fd for the sockets whose inodes are
// keys of want, and returns the process that holds each one. Processes it
// may not look into (another user's, without CAP_SYS_PTRACE) are skipped:
// their listeners keep pid 0.
//
// Every descriptor costs a readlink(), and a busy server holds tens of
// thousands, nearly all connections. A listener is opened at start-up, so
// it has a low descriptor number: a first pass reads only descriptors below
// lowFDs of every process, and a second pass reads them all only if some
// listener was not found. Each pass stops as soon as every inode is found,
// and goes through processes in /proc's order, ascending pids, so a listener
// shared by a master and its workers is usually given to the master.
//
// A listener whose owner is out of sight (a process of another PID
// namespace, a kernel socket) makes the second pass read every descriptor of
// the host: at most budget of them are read, so that the cost stays bounded
// on a host holding hundreds of thousands of connections. complete is false
// when the lookup stopped, at the budget or with ctx, before finding every
// inode or reading every descriptor.
func findSocketOwners(ctx context.Context, proc string, want map[uint32]uint64, budget int) (found map[uint32]owner, complete bool) {
	found = map[uint32]owner{}
	pids := listPIDs(proc)
	link := make([]byte, 64)
	for _, below := range []int{lowFDs, math.MaxInt} {
		for _, pid := range pids {
			if len(found) == len(want) {
				return found, true
			}
			if ctx.Err() != nil || budget <= 0 {
				return found, false
			}
			scanProcessFDs(proc, pid, below, want, found, link, &budget)
		}
	}
	return found, len(found) == len(want) || budget > 0
}

// maxOwnerLinks bounds the descriptors one owner lookup reads: a few hundred
// milliseconds of readlink() at most.
const maxOwnerLinks = 1 << 15

// lowFDs bounds the descriptors of the first pass of findSocketOwners.
const lowFDs = 64

// listPIDs returns the processes in proc, in directory order.
func listPIDs(proc string) []int {
	d, err := os.Open(proc)
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	pids := make([]int, 0, len(names))
	for _, name := range names {
		if pid, err := strconv.Atoi(name); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// scanProcessFDs records in found the wanted sockets that process pid holds
// as descriptors below below, reading at most *budget of them, and takes
// what it read from *budget.
func scanProcessFDs(proc string, pid, below int, want map[uint32]uint64, found map[uint32]owner, link []byte, budget *int) {
	dir := filepath.Join(proc, strconv.Itoa(pid), "fd")
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	var comm string
	for {
		// proc_readfd_common() lists descriptors in ascending order, so a
		// batch that reaches below ends the listing (a copy of /proc in a
		// test may list in any order: it is read whole by the last pass).
		names, err := f.Readdirnames(256)
		past := false
		for _, name := range names {
			n, err := strconv.Atoi(name)
			if err != nil {
				continue
			}
			if n >= below {
				past = true
				continue
			}
			if *budget <= 0 {
				return
			}
			*budget--
			// readlinkat() on the open directory, into a reused buffer.
			l, err := unix.Readlinkat(fd, name, link)
			if err != nil {
				continue
			}
			inode, ok := socketInode(link[:l])
			if !ok {
				continue
			}
			if _, wanted := want[inode]; !wanted {
				continue
			}
			if _, done := found[inode]; done {
				continue
			}
			if comm == "" {
				comm = readComm(proc, pid)
			}
			found[inode] = owner{pid: pid, comm: comm}
		}
		if err != nil || past {
			return
		}
	}
}

// socketInode parses a socket descriptor's link target, "socket:[12345]".
func socketInode(target []byte) (uint32, bool) {
	s, ok := bytes.CutPrefix(target, []byte("socket:["))
	if !ok {
		return 0, false
	}
	s, ok = bytes.CutSuffix(s, []byte("]"))
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(string(s), 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}

// readComm returns the process's name from proc/PID/comm, "" if it is gone.
func readComm(proc string, pid int) string {
	data, err := readFile(filepath.Join(proc, strconv.Itoa(pid), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

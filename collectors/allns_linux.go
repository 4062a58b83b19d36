package collectors

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors/internal/sockdiag"
	"github.com/snapdiag/snapdiag/internal/netns"
	"golang.org/x/sys/unix"
)

// Bounds of capture --all-netns.
const (
	// DefaultMaxNetNS bounds the namespaces captured. Each holds
	// fdsPerNetNS descriptors for the whole capture.
	DefaultMaxNetNS = 2000
	// DefaultDetailNetNS bounds the namespaces given full detail (socket
	// table, net.* tree).
	DefaultDetailNetNS = 8
	// fdsPerNetNS: the sock_diag socket, /proc/net/netstat and
	// /proc/net/snmp.
	fdsPerNetNS = 3
	// fdReserve is left to the rest of the capture when the descriptor
	// limit bounds the namespaces.
	fdReserve = 512
	// nsWorkers read the namespaces at each sample.
	nsWorkers = 4
)

// AllNetNS is the "all-netns" Sampler of capture --all-netns: every network
// namespace of the host besides the capture's own, each in its folder
// bundle.NetNSDir(inode). At its first sample it finds the namespaces
// (netns.Scan) and visits them on one thread (netns.Visit), which opens in
// each a sock_diag socket and its /proc/net/netstat and snmp and reads its
// listen-path sysctls; at every sample it reads those counters and dumps the
// LISTEN sockets of every namespace, a few namespaces at a time; after the
// last sample it takes the socket table and the net.* sysctl tree of the
// namespaces where a listen-path problem showed (or that listen on a
// --port), at most DetailMax of them.
type AllNetNS struct {
	// Max and DetailMax bound the namespaces captured and those given full
	// detail; 0 means DefaultMaxNetNS and DefaultDetailNetNS.
	Max, DetailMax int
	// LastSample is the index of the capture's last sample, after which
	// the detail is taken.
	LastSample int

	mu      sync.Mutex
	started bool
	first   int
	nss     []*nsCapture
	info    bundle.NamespacesInfo
	chosen  int // namespaces chosen for detail
	owners  Listeners
	closed  bool
}

// nsCapture is one namespace being captured.
type nsCapture struct {
	entry   bundle.NamespaceEntry
	conn    *sockdiag.Conn
	netstat int // descriptor of its /proc/net/netstat, -1 when not open
	snmp    int
	// sysctls are its listen-path sysctls, read on the visit, written at
	// the end unless the whole tree is.
	sysctls map[string][]byte
	// prev is the counters of the previous sample; prevDrops the
	// listeners' drop counters by cookie.
	prev           listenCounts
	havePrev       bool
	prevDrops      map[uint64]uint32
	ls             []bundle.Listener       // this sample's
	err            error                   // this sample's
	counterProblem *bundle.ListenerProblem // this sample's
	chosen         bool
	// thread is in the namespace from when it was chosen for detail, for
	// the packet sample and the detail.
	thread *netns.Thread
	pkts   *Packets
	// pktDone gets the packet sample's outcome; nil when none was started.
	pktDone chan error
}

// Name implements Sampler.
func (*AllNetNS) Name() string { return "all-netns" }

// Annotate implements Annotator.
func (a *AllNetNS) Annotate(m *bundle.Manifest) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closeLocked()
	info := a.info
	info.Entries = make([]bundle.NamespaceEntry, len(a.nss))
	for i, n := range a.nss {
		info.Entries[i] = n.entry
	}
	m.Namespaces = &info
}

// Sample implements Sampler.
func (a *AllNetNS) Sample(ctx context.Context, h Host, i int, w *bundle.Writer) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	var setupErr error
	if !a.started {
		a.started, a.first = true, i
		setupErr = a.open(ctx, h, w)
	}
	a.sample(ctx, h, i, w)
	if i >= a.LastSample {
		a.detail(ctx, h, w)
		a.closeLocked()
	}
	return setupErr
}

// open finds the namespaces and visits each to open what the samples read.
// It returns one error when no namespace could be entered.
func (a *AllNetNS) open(ctx context.Context, h Host, w *bundle.Writer) error {
	limit := netNSLimit(a.Max, fdsPerNetNS)
	a.info.DetailCap = a.DetailMax
	if a.info.DetailCap <= 0 {
		a.info.DetailCap = DefaultDetailNetNS
	}
	var self unix.Stat_t
	if err := unix.Stat(filepath.Join(h.Proc, "thread-self/ns/net"), &self); err != nil {
		return fmt.Errorf("stat own network namespace: %w", err)
	}
	res := netns.Scan(h.Proc, netns.RunDir, self.Ino, limit)
	a.info.Count, a.info.Skipped = res.Count, res.Count-len(res.Found)
	if a.info.Skipped > 0 {
		w.Note("%d of %d network namespaces not captured: the cap is %d (descriptors: %d each)", a.info.Skipped, res.Count, limit, fdsPerNetNS)
	}
	if res.Denied > 0 {
		// ptrace_may_access() guards /proc/PID/ns: without CAP_SYS_PTRACE
		// another user's process does not say which namespace it is in.
		w.Note("the namespace of %d processes could not be looked at (another user's, without CAP_SYS_PTRACE): theirs may be missing", res.Denied)
	}
	paths := make([]string, len(res.Found))
	inos := make([]uint64, len(res.Found))
	a.nss = make([]*nsCapture, len(res.Found))
	for j, n := range res.Found {
		paths[j], inos[j] = n.Path, n.Inode
		a.nss[j] = &nsCapture{
			entry:   bundle.NamespaceEntry{NetNS: n, Dir: bundle.NetNSDir(n.Inode)},
			netstat: -1, snmp: -1,
		}
	}
	errs := netns.Visit(ctx, paths, inos, func(j int) error {
		return errors.Join(a.nss[j].openInside(h.Proc, true), a.nss[j].readSysctlsInside(h.Proc))
	})
	denied := 0
	for j, err := range errs {
		if err != nil {
			a.nss[j].entry.Errors = append(a.nss[j].entry.Errors, err.Error())
			if errors.Is(err, unix.EPERM) {
				denied++
			}
		}
	}
	if denied > 0 {
		// setns(2) needs CAP_SYS_ADMIN over the namespace's user namespace.
		return fmt.Errorf("could not enter %d of %d network namespaces: %w (run as root, or grant CAP_SYS_ADMIN); the capture's own namespace is in the bundle's top level", denied, len(errs), unix.EPERM)
	}
	return nil
}

// netNSLimit is how many namespaces may be held open at perNS descriptors
// each: max (0: DefaultMaxNetNS), and no more than the descriptor limit
// leaves after fdReserve.
func netNSLimit(most, perNS int) int {
	limit := most
	if limit <= 0 {
		limit = DefaultMaxNetNS
	}
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur != unix.RLIM_INFINITY {
		limit = min(limit, max(int(rl.Cur)-fdReserve, 0)/perNS)
	}
	return limit
}

// openInside runs on the visiting thread, inside the namespace: it opens
// the namespace's sock_diag socket and its /proc/net/netstat, and with
// snmp its /proc/net/snmp too.
func (n *nsCapture) openInside(proc string, snmp bool) error {
	var errs []error
	c, err := sockdiag.OpenConn()
	if err != nil {
		errs = append(errs, err)
	}
	n.conn = c
	// An open /proc/net file stays bound to the namespace it was opened in
	// (the seq file holds its struct net), and reading it again from
	// offset 0 regenerates it: the samples read these from any thread.
	for _, f := range []struct {
		fd   *int
		name string
	}{{&n.netstat, bundle.SampleNetstat}, {&n.snmp, bundle.SampleSNMP}} {
		if f.fd == &n.snmp && !snmp {
			continue
		}
		path := filepath.Join(proc, "thread-self", strings.TrimPrefix(f.name, "proc/"))
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errs = append(errs, fmt.Errorf("open %s: %w", path, err))
			continue
		}
		*f.fd = fd
	}
	return errors.Join(errs...)
}

// readSysctlsInside runs on the visiting thread, inside the namespace: it
// reads the namespace's listen-path sysctls.
func (n *nsCapture) readSysctlsInside(proc string) error {
	// /proc/sys/net resolves to the namespace of the thread that looks it
	// up (net_ctl_header_lookup() uses current's). Every namespace has its
	// own dentries for the same names under the same parent, which
	// proc_sys_compare() tells apart one by one: a lookup by full path
	// costs as many compares as there are namespaces. So each folder is
	// looked up once, and its files through the open folder
	// (/proc/self/fd/N/NAME), whose children are this namespace's alone.
	n.sysctls = map[string][]byte{}
	dirs := map[string]int{}
	defer func() {
		for _, fd := range dirs {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	for _, name := range bundle.ListenPathSysctls {
		rel := strings.ReplaceAll(name, ".", "/")
		dir, base := filepath.Split(rel)
		fd, ok := dirs[dir]
		if !ok {
			fd, _ = unix.Open(filepath.Join(proc, "sys", dir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			dirs[dir] = fd
		}
		if fd < 0 {
			continue
		}
		if data, err := readFile(filepath.Join(proc, "self/fd", strconv.Itoa(fd), base)); err == nil {
			n.sysctls[name] = data
		}
	}
	return nil
}

// sample reads every namespace's counters and listeners, then their
// listeners' owners in one look through /proc, then writes each
// namespace's sample and looks for listen-path problems.
func (a *AllNetNS) sample(ctx context.Context, h Host, i int, w *bundle.Writer) {
	jobs := make(chan *nsCapture)
	var wg sync.WaitGroup
	for range min(nsWorkers, len(a.nss)) {
		wg.Go(func() {
			for n := range jobs {
				n.readSample(ctx, h, i, i == a.LastSample && i == a.first, w.Under(n.entry.Dir))
			}
		})
	}
	for _, n := range a.nss {
		if n.conn == nil && n.netstat < 0 {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		jobs <- n
	}
	close(jobs)
	wg.Wait()
	var all []bundle.Listener
	for _, n := range a.nss {
		all = append(all, n.ls...)
	}
	// Socket inodes are the host's, not a namespace's: one look through
	// /proc finds the owners of every namespace's listeners.
	a.owners.setOwners(ctx, h.Proc, all)
	for _, n := range a.nss {
		k := len(n.ls)
		n.ls, all = all[:k:k], all[k:]
		if n.err != nil {
			n.entry.Errors = appendOnce(n.entry.Errors, n.err.Error())
		}
		if n.conn == nil || n.err != nil && n.ls == nil {
			continue
		}
		if err := w.Under(n.entry.Dir).WriteFile(bundle.SampleFile(i, bundle.SampleListeners), bundle.EncodeListeners(n.ls)); err != nil {
			n.entry.Errors = appendOnce(n.entry.Errors, err.Error())
		}
		n.entry.Listeners = len(n.ls)
		if p := n.problem(h.Ports); p != nil && n.entry.DetailReason == "" {
			n.entry.DetailReason = p.Detail
			if a.chosen < a.info.DetailCap {
				a.chosen++
				n.chosen = true
				n.startPackets(ctx, h, w.Under(n.entry.Dir))
			} else {
				n.entry.DetailReason += fmt.Sprintf("; not detailed: over the cap of %d namespaces", a.info.DetailCap)
			}
		}
	}
}

// readSample reads one namespace's counters and listeners for sample i,
// writing the counters through w (the namespace's folder).
func (n *nsCapture) readSample(ctx context.Context, h Host, i int, single bool, w *bundle.Writer) {
	n.ls, n.err = nil, nil
	var errs []error
	for _, f := range []struct {
		fd   int
		name string
	}{{n.netstat, bundle.SampleNetstat}, {n.snmp, bundle.SampleSNMP}} {
		if f.fd < 0 {
			continue
		}
		data, err := readAgain(f.fd)
		if err == nil {
			err = w.WriteFile(bundle.SampleFile(i, f.name), data)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sample %d: %s: %w", i, f.name, err))
			continue
		}
		if f.name == bundle.SampleNetstat {
			n.noteCounters(data, single)
		}
	}
	if n.conn != nil {
		states := sockdiag.StatesListen
		if n.chosen {
			// Counting the SYN-RECV requests walks the established hash,
			// which the kernel shares between namespaces: done only where
			// it is worth it.
			states |= sockdiag.StatesSynRecv
			if n.entry.SynRecvFrom == nil {
				n.entry.SynRecvFrom = &i
			}
		}
		// Interface names are the namespace's: the zone of a link-local
		// listener stays its number.
		ls, err := readListenersOn(ctx, h.dumper(), n.conn, states, &zoner{}, 0)
		if err != nil {
			errs = append(errs, fmt.Errorf("sample %d: %w", i, err))
		}
		n.ls = ls
	}
	n.err = errors.Join(errs...)
}

// readAgain reads a /proc file opened earlier, whole, from offset 0: a seq
// file regenerates its contents when read from the start again.
func readAgain(fd int) ([]byte, error) {
	data := make([]byte, 0, 8<<10)
	for {
		if len(data) == cap(data) {
			if len(data) > maxProcFile {
				return nil, fmt.Errorf("larger than %d bytes", maxProcFile)
			}
			data = append(data, 0)[:len(data)]
		}
		k, err := unix.Pread(fd, data[len(data):cap(data)], int64(len(data)))
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return nil, fmt.Errorf("read: %w", err)
		case k == 0:
			return data, nil
		}
		data = data[:len(data)+k]
	}
}

// listenCounts are the namespace counters of the listen path's drops.
type listenCounts [len(listenCounterNames)]uint64

// listenCounterNames are the TcpExt counters whose rise is a listen-path
// problem: overflowing accept queues, full SYN queues (dropped, or answered
// with cookies), and every listen drop.
var listenCounterNames = [...]string{"ListenOverflows", "ListenDrops", "TCPReqQFullDrop", "TCPReqQFullDoCookies"}

// parseListenCounts finds listenCounterNames in /proc/net/netstat, whose
// "TcpExt:" lines are a line of names and a line of values. A counter not
// found stays 0.
func parseListenCounts(netstat []byte) listenCounts {
	var c listenCounts
	var names []string
	for line := range strings.Lines(string(netstat)) {
		rest, ok := strings.CutPrefix(line, "TcpExt:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if names == nil {
			names = fields
			continue
		}
		for k, name := range names[:min(len(names), len(fields))] {
			if j := slices.Index(listenCounterNames[:], name); j >= 0 {
				fmt.Sscan(fields[k], &c[j])
			}
		}
		break
	}
	return c
}

// noteCounters keeps the sample's counters, and why they show a problem:
// a rise since the previous sample, or, in a capture of one sample, any
// count at all since the namespace began.
func (n *nsCapture) noteCounters(netstat []byte, single bool) {
	c := parseListenCounts(netstat)
	n.counterProblem = nil
	for j, name := range listenCounterNames {
		var detail string
		switch {
		case n.havePrev && c[j] > n.prev[j]:
			detail = fmt.Sprintf("TcpExt.%s rose by %d between samples", name, c[j]-n.prev[j])
		case single && c[j] > 0:
			detail = fmt.Sprintf("TcpExt.%s is %d since the namespace began (one sample: no rise to see)", name, c[j])
		default:
			continue
		}
		n.counterProblem = &bundle.ListenerProblem{Kind: bundle.ProblemCounter, Counter: "TcpExt." + name, Detail: detail}
		break
	}
	n.prev, n.havePrev = c, true
}

// problem says why the namespace's sample shows a listen-path problem, or
// that it listens on one of ports; nil when neither. It remembers the
// listeners' drop counters for the next sample. A listener's problem comes
// first; a counter's rise in a namespace of one listener names that
// listener.
func (n *nsCapture) problem(ports []int) *bundle.ListenerProblem {
	var p *bundle.ListenerProblem
	drops := make(map[uint64]uint32, len(n.ls))
	for _, l := range n.ls {
		if l.Drops != nil {
			drops[l.Cookie] = *l.Drops
		}
		if p != nil {
			continue
		}
		before, seen := n.prevDrops[l.Cookie]
		var kind, detail string
		switch {
		case l.RecvQ > l.SendQ:
			// sk_acceptq_is_full(): sk_ack_backlog > sk_max_ack_backlog,
			// which a listener's Recv-Q and Send-Q are.
			kind, detail = bundle.ProblemAcceptQueueFull, fmt.Sprintf("accept queue of %s full: Recv-Q %d over backlog %d", l.Local, l.RecvQ, l.SendQ)
		case l.Drops != nil && seen && *l.Drops != before:
			// sk_drops is 32 bits and wraps: any change is a drop.
			kind, detail = bundle.ProblemListenerDrops, fmt.Sprintf("listener %s dropped %d connection attempts between samples", l.Local, *l.Drops-before)
		case l.SynRecv > 0 && 4*l.SynRecv >= 3*int(l.SendQ):
			// inet_csk_reqsk_queue_is_full(): the SYN queue holds about
			// the backlog.
			kind, detail = bundle.ProblemSynQueueNearFull, fmt.Sprintf("SYN queue of %s near full: %d SYN-RECV, backlog %d", l.Local, l.SynRecv, l.SendQ)
		default:
			continue
		}
		p = &bundle.ListenerProblem{Kind: kind, Listener: l.Local, Port: l.Port, Detail: detail}
	}
	n.prevDrops = drops
	if p != nil {
		// A listener's own state names the listener: it comes before a
		// namespace counter.
		return p
	}
	if c := n.counterProblem; c != nil {
		if len(n.ls) == 1 {
			named := *c
			named.Listener, named.Port = n.ls[0].Local, n.ls[0].Port
			return &named
		}
		return c
	}
	for _, l := range n.ls {
		if slices.Contains(ports, l.Port) {
			return &bundle.ListenerProblem{Kind: bundle.ProblemPort, Listener: l.Local, Port: l.Port,
				Detail: fmt.Sprintf("listener %s on --port %d", l.Local, l.Port)}
		}
	}
	return nil
}

// appendOnce appends line unless it is there already: a failure repeated
// at every sample is one line.
func appendOnce(lines []string, line string) []string {
	if slices.Contains(lines, line) {
		return lines
	}
	return append(lines, line)
}

// detail takes the socket table and the whole net.* sysctl tree of the
// namespaces chosen, each on a thread that enters it, and writes the
// listen-path sysctls of the others.
func (a *AllNetNS) detail(ctx context.Context, h Host, w *bundle.Writer) {
	for _, n := range a.nss {
		nw := w.Under(n.entry.Dir)
		if n.chosen && ctx.Err() == nil {
			err := n.takeDetail(ctx, h, nw)
			if err == nil {
				n.entry.Detail = true
				continue
			}
			n.entry.Errors = append(n.entry.Errors, "detail: "+err.Error())
			if n.entry.Detail {
				continue // the sysctl tree was written; the socket table failed
			}
		}
		names := make([]string, 0, len(n.sysctls))
		for name := range n.sysctls {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if err := nw.WriteFile(bundle.SysctlPath(name), n.sysctls[name]); err != nil {
				n.entry.Errors = append(n.entry.Errors, err.Error())
				break
			}
		}
	}
}

// enter starts the namespace's thread, once.
func (n *nsCapture) enter() (*netns.Thread, error) {
	if n.thread != nil {
		return n.thread, nil
	}
	t, err := netns.Enter(n.entry.NetNS.Path)
	if err != nil {
		return nil, err
	}
	if t.Inode() != n.entry.NetNS.Inode {
		t.Close()
		return nil, fmt.Errorf("network namespace %d is gone: %s is now namespace %d", n.entry.NetNS.Inode, n.entry.NetNS.Path, t.Inode())
	}
	n.thread = t
	return t, nil
}

// startPackets starts the namespace's packet sample, from the sample
// that chose it for detail, for the capture's packet window (or until
// ctx ends); takeDetail waits for it.
func (n *nsCapture) startPackets(ctx context.Context, h Host, w *bundle.Writer) {
	if h.PacketWindow <= 0 {
		return
	}
	t, err := n.enter()
	if err != nil {
		n.entry.Errors = append(n.entry.Errors, "packets: "+err.Error())
		return
	}
	// The AF_PACKET socket and the listener dump that picks the ports to
	// follow are opened on the thread, in the namespace.
	hn := h
	hn.NS, hn.Shared = t, nil
	n.pkts, n.pktDone = &Packets{}, make(chan error, 1)
	go func() { n.pktDone <- n.pkts.Collect(ctx, hn, w) }()
}

// takeDetail runs the sockets and sysctls collectors inside the namespace,
// writing through w (its folder), and waits for its packet sample.
func (n *nsCapture) takeDetail(ctx context.Context, h Host, w *bundle.Writer) error {
	var pktErr error
	if n.pktDone != nil {
		// The sample ends at its window or with ctx.
		if err := <-n.pktDone; err != nil {
			pktErr = fmt.Errorf("packets: %w", err)
		}
		n.entry.Packets = n.pkts.Info()
	}
	t, err := n.enter()
	if err != nil {
		return errors.Join(pktErr, err)
	}
	defer t.Close()
	// A Host in the namespace: the socket the collectors dump on and the
	// /proc/sys/net they walk are the namespace's. It has no Shared: the
	// capture's shares the top level's listener snapshot and socket opener.
	hn := h
	hn.NS, hn.Shared = t, nil
	sysErr := (&Sysctls{}).Collect(ctx, hn, w)
	if sysErr == nil {
		n.entry.Detail = true
	}
	sockErr := (&Sockets{}).Collect(ctx, hn, w)
	return errors.Join(pktErr, sysErr, sockErr)
}

// closeLocked closes every namespace's descriptors. a.mu must be held.
func (a *AllNetNS) closeLocked() {
	if a.closed {
		return
	}
	a.closed = true
	for _, n := range a.nss {
		n.close()
	}
}

package collectors

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors/internal/sockdiag"
	"github.com/snapdiag/snapdiag/internal/netns"
	"golang.org/x/sys/unix"
)

// fdsPerWatchedNetNS: a watched namespace holds its sock_diag socket and
// its /proc/net/netstat.
const fdsPerWatchedNetNS = 2

// NetNSWatch keeps every network namespace of the host besides the
// caller's own open for a cheap look at its listen path, again and again
// (watch --all-netns): per namespace one sock_diag socket and its
// /proc/net/netstat, opened inside it on the one visiting thread of
// netns.Visit, as capture --all-netns does. Discover finds the namespaces
// and opens the new ones; Poll dumps the LISTEN sockets of each and reads
// its listen-path counters, and says which namespace shows a problem. Its
// methods must not be called concurrently.
type NetNSWatch struct {
	// Max bounds the namespaces held open; 0 means DefaultMaxNetNS. The
	// descriptor limit bounds them too, at fdsPerWatchedNetNS each.
	Max int

	self uint64
	nss  map[uint64]*nsCapture
}

// NetNSDiscovery is what one Discover found.
type NetNSDiscovery struct {
	// Count is how many namespaces there are; Held how many are open.
	Count, Held int
	// New and Gone are the namespaces opened and closed by this Discover.
	New, Gone []bundle.NetNS
	// Denied counts the processes whose namespace could not be looked at
	// (another user's, without CAP_SYS_PTRACE).
	Denied int
	// Failed are the namespaces that could not be entered or opened, with
	// why; they are tried again at the next Discover.
	Failed map[uint64]error
}

// NetNSStatus is one namespace's state at a Poll.
type NetNSStatus struct {
	NetNS bundle.NetNS
	// Listening are its LISTEN sockets (pid and comm not looked up).
	Listening []bundle.Listener
	// Problem is the listen-path problem it shows, or nil.
	Problem *bundle.ListenerProblem
	// Err says what could not be read.
	Err error
}

// Discover finds the host's network namespaces under h.Proc (netns.Scan),
// closes those gone and opens, inside each new one, what Poll reads. An
// error means nothing could be scanned.
func (s *NetNSWatch) Discover(ctx context.Context, h Host) (NetNSDiscovery, error) {
	var d NetNSDiscovery
	if s.nss == nil {
		var self unix.Stat_t
		if err := unix.Stat(filepath.Join(h.Proc, "thread-self/ns/net"), &self); err != nil {
			return d, fmt.Errorf("stat own network namespace: %w", err)
		}
		s.self, s.nss = self.Ino, map[uint64]*nsCapture{}
	}
	limit := netNSLimit(s.Max, fdsPerWatchedNetNS)
	res := netns.Scan(h.Proc, netns.RunDir, s.self, limit)
	d.Count, d.Denied = res.Count, res.Denied
	found := make(map[uint64]bool, len(res.Found))
	var fresh []*nsCapture
	for _, n := range res.Found {
		found[n.Inode] = true
		if c, ok := s.nss[n.Inode]; ok {
			// The same namespace, perhaps named by another process now.
			c.entry.NetNS = n
			continue
		}
		c := &nsCapture{entry: bundle.NamespaceEntry{NetNS: n}, netstat: -1, snmp: -1}
		fresh = append(fresh, c)
	}
	for ino, c := range s.nss {
		if !found[ino] {
			d.Gone = append(d.Gone, c.entry.NetNS)
			c.close()
			delete(s.nss, ino)
		}
	}
	paths := make([]string, len(fresh))
	inos := make([]uint64, len(fresh))
	for j, c := range fresh {
		paths[j], inos[j] = c.entry.NetNS.Path, c.entry.NetNS.Inode
	}
	errs := netns.Visit(ctx, paths, inos, func(j int) error { return fresh[j].openInside(h.Proc, false) })
	for j, c := range fresh {
		if errs[j] != nil {
			if d.Failed == nil {
				d.Failed = map[uint64]error{}
			}
			d.Failed[c.entry.NetNS.Inode] = errs[j]
		}
		if c.conn == nil {
			// Nothing to look at: not held, tried again next time.
			c.close()
			continue
		}
		s.nss[c.entry.NetNS.Inode] = c
		d.New = append(d.New, c.entry.NetNS)
	}
	d.Held = len(s.nss)
	return d, nil
}

// Poll reads every namespace held, a few at a time: its listen-path
// counters and a dump of its LISTEN sockets (only LISTEN: counting SYN-RECV
// requests would walk the established hash, which all namespaces share, once
// per namespace). Each namespace's problem is judged against its previous
// Poll (a counter or a listener's drops that moved).
func (s *NetNSWatch) Poll(ctx context.Context, h Host) []NetNSStatus {
	list := make([]*nsCapture, 0, len(s.nss))
	for _, c := range s.nss {
		list = append(list, c)
	}
	jobs := make(chan *nsCapture)
	var wg sync.WaitGroup
	for range min(nsWorkers, len(list)) {
		wg.Go(func() {
			for c := range jobs {
				c.poll(ctx, h)
			}
		})
	}
	for _, c := range list {
		if ctx.Err() != nil {
			break
		}
		jobs <- c
	}
	close(jobs)
	wg.Wait()
	out := make([]NetNSStatus, len(list))
	for i, c := range list {
		out[i] = NetNSStatus{NetNS: c.entry.NetNS, Listening: c.ls, Err: c.err}
		if c.err == nil || c.ls != nil {
			out[i].Problem = c.problem(nil)
		}
	}
	return out
}

// poll reads the namespace's counters and listeners.
func (n *nsCapture) poll(ctx context.Context, h Host) {
	n.ls, n.err = nil, nil
	var errs []error
	if n.netstat >= 0 {
		data, err := readAgain(n.netstat)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", bundle.SampleNetstat, err))
		} else {
			n.noteCounters(data, false)
		}
	}
	ls, err := readListenersOn(ctx, h.dumper(), n.conn, sockdiag.StatesListen, &zoner{}, 0)
	if err != nil {
		errs = append(errs, err)
	}
	n.ls = ls
	n.err = errors.Join(errs...)
}

// Close closes every namespace's descriptors.
func (s *NetNSWatch) Close() {
	for ino, c := range s.nss {
		c.close()
		delete(s.nss, ino)
	}
}

// close closes the namespace's descriptors.
func (n *nsCapture) close() {
	if n.thread != nil {
		n.thread.Close()
	}
	if n.conn != nil {
		n.conn.Close()
	}
	for _, fd := range []int{n.netstat, n.snmp} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	n.thread, n.conn, n.netstat, n.snmp = nil, nil, -1, -1
}

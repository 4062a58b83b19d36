package netns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/snapdiag/snapdiag/bundle"
	"golang.org/x/sys/unix"
)

// ScanResult is what Scan found.
type ScanResult struct {
	// Found are the namespaces, in inode order, at most the limit given.
	Found []bundle.NetNS
	// Count is how many there are, those beyond the limit included.
	Count int
	// Denied counts the processes whose namespace could not be looked at
	// (another user's, without CAP_SYS_PTRACE): their namespaces may be
	// missing.
	Denied int
}

// Scan finds every network namespace of the host besides skip (the
// capture's own, by inode): those of the processes under the proc root
// given, each named by its lowest pid with that process's command and by
// its owner (its first named container, as NamespaceOwner), and those named
// by a bind mount under dir (RunDir), which may hold no process at all. It
// keeps at most limit of them, the lowest inodes.
func Scan(proc, dir string, skip uint64, limit int) ScanResult {
	byIno := map[uint64]*bundle.NetNS{}
	in := map[uint64][]int{} // the processes of each namespace, ascending
	var res ScanResult
	for _, pid := range pids(proc) {
		path := filepath.Join(proc, strconv.Itoa(pid), "ns/net")
		// stat follows the magic link to the namespace's nsfs inode;
		// ptrace_may_access() guards it, so another user's process answers
		// EACCES without CAP_SYS_PTRACE.
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
				res.Denied++
			}
			continue
		}
		if st.Ino == skip {
			continue
		}
		in[st.Ino] = append(in[st.Ino], pid)
		if n, ok := byIno[st.Ino]; ok {
			if n.PID == 0 || pid < n.PID {
				n.PID, n.Path = pid, path
			}
			continue
		}
		byIno[st.Ino] = &bundle.NetNS{Inode: st.Ino, NamedBy: bundle.NamedByScan, PID: pid, Path: path}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		path := filepath.Join(dir, e.Name())
		ino, err := inode(path) // a file not bind-mounted is no namespace
		if err != nil || ino == skip {
			continue
		}
		n, ok := byIno[ino]
		if !ok {
			n = &bundle.NetNS{Inode: ino, NamedBy: bundle.NamedByScan}
			byIno[ino] = n
		}
		// The bind mount outlives any process: it is the path to enter.
		n.Name, n.Path = e.Name(), path
	}
	res.Count = len(byIno)
	all := make([]*bundle.NetNS, 0, len(byIno))
	for _, n := range byIno {
		all = append(all, n)
	}
	slices.SortFunc(all, func(a, b *bundle.NetNS) int { return cmp.Compare(a.Inode, b.Inode) })
	roots := HostRoots(proc)
	// One reader for the whole scan: containers/storage's list, megabytes
	// on a node of hundreds of pods, is read once, not per namespace.
	st := roots.newStateReader()
	for _, n := range all[:min(len(all), max(limit, 0))] {
		if n.PID != 0 {
			n.Comm = comm(proc, n.PID)
			// A pod's lowest pid is its sandbox (pause), which has no
			// name: the namespace's first named container names it.
			n.Owner = roots.namespaceOwner(in[n.Inode], st)
		}
		res.Found = append(res.Found, *n)
	}
	return res
}

// pids lists the processes under proc, in ascending order.
func pids(proc string) []int {
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil
	}
	out := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// Visit enters the namespaces in turn on one thread of its own, calling fn
// inside each: the namespace file paths[i], which must still be the
// namespace of inode inos[i], then fn(i). Entering costs one setns(2) per
// namespace, against a thread started per namespace with Enter. The thread
// is never handed back to the scheduler: it ends with Visit. fn must not
// start goroutines that expect to be in the namespace; sockets and files it
// opens keep the namespace. errs[i] says why namespace i was not visited, or
// what fn returned.
func Visit(ctx context.Context, paths []string, inos []uint64, fn func(i int) error) (errs []error) {
	errs = make([]error, len(paths))
	done := make(chan struct{})
	// goLocked: on a thread of its own, never the main thread, that ends
	// with Visit and so never runs other work in a namespace not the
	// process's.
	goLocked(func() {
		defer close(done)
		for i, path := range paths {
			if err := ctx.Err(); err != nil {
				errs[i] = fmt.Errorf("enter network namespace %s: %w", path, err)
				continue
			}
			errs[i] = visit(path, inos[i], func() error { return fn(i) })
		}
	})
	<-done
	return errs
}

// visit enters the namespace at path, checked to be inode ino, on the
// calling (locked) thread and calls fn there.
func visit(path string, ino uint64, fn func() error) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat network namespace %s: %w", path, err)
	}
	if st.Ino != ino {
		// The process that named it exited, and its pid went to another.
		return fmt.Errorf("network namespace %d is gone: %s is now namespace %d", ino, path, st.Ino)
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter network namespace %s: %w", path, err)
	}
	return fn()
}

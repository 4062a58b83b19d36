package collectors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
	"golang.org/x/sys/unix"
)

// extraSysctls are read besides the whole net.* tree: the file-descriptor
// limits behind fd exhaustion, which usually presents as accept-queue overflow.
var extraSysctls = []string{"fs/file-max", "fs/file-nr", "fs/nr_open"}

// Sysctls copies every readable sysctl under net.* (per-netns values as the
// namespace the capture reads sees them) plus extraSysctls, raw, at their
// /proc/sys paths. For a namespace other than the process's own, the net.*
// keys the namespace does not show are the kernel's global ones (net.core's
// netdev_max_backlog, net.ipv4's tcp_mem): they are read from the process's
// namespace, and the manifest names them.
type Sysctls struct {
	info bundle.SysctlsInfo
}

// Name implements Collector.
func (*Sysctls) Name() string { return "sysctls" }

// Annotate implements Annotator.
func (s *Sysctls) Annotate(m *bundle.Manifest) { info := s.info; m.Sysctls = &info }

// sysctlWalk stores the sysctls under one /proc/sys root and counts them.
type sysctlWalk struct {
	w          *bundle.Writer
	root       string
	read       int
	unreadable []string
	// dirs, when not nil, collects the directories walked (relative to
	// root): a namespace's, against which the host's keys are matched.
	dirs map[string]bool
	// keys, when not nil, collects the keys walked, readable or not.
	keys map[string]bool
	// within, when not nil, is the only directories (relative to root)
	// walked into: the host's walk for a namespace descends only where
	// the namespace's own walk went.
	within map[string]bool
	// buf is reused to read each key; the bundle keeps its own copy.
	buf []byte
	// procfs is set when root is a real /proc/sys, whose keys readKey
	// reads with fewer system calls than a copy's.
	procfs bool
}

// store copies the sysctl at rel (relative to the root) into the bundle.
func (s *sysctlWalk) store(rel string) error {
	return s.stored(rel, copyFile(s.w, filepath.Join(s.root, rel), s.member(rel)))
}

// member is the bundle member of the sysctl at rel.
func (s *sysctlWalk) member(rel string) string {
	return bundle.DirSysctl + "/" + filepath.ToSlash(rel)
}

// stored counts the sysctl at rel as read, or unreadable after err.
func (s *sysctlWalk) stored(rel string, err error) error {
	switch {
	case err == nil:
		s.read++
	case errors.Is(err, bundle.ErrClosed), errors.Is(err, bundle.ErrTooLarge):
		return err
	default:
		// Some files refuse reads by design (net.ipv4.route.flush is
		// write-only; stable_secret answers EIO until set).
		s.unreadable = append(s.unreadable, rel)
	}
	return nil
}

// sysctlKey is a regular file found by walk: name in the directory open at
// dir, rel its path relative to the root, member its bundle member.
type sysctlKey struct {
	dir    int
	name   string
	rel    string
	member string
}

// walk calls visit with every regular file under the root's net/, in
// lexical order, and records what it cannot walk. It opens each file's
// directory once and each file relative to it (openat), the way a walk by
// path would resolve every directory above each key again.
func (s *sysctlWalk) walk(ctx context.Context, visit func(k sysctlKey) error) error {
	top := filepath.Join(s.root, "net")
	fd, err := unix.Open(top, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("walk %s: %w", top, &fs.PathError{Op: "open", Path: top, Err: err})
	}
	var sfs unix.Statfs_t
	s.procfs = unix.Fstatfs(fd, &sfs) == nil && sfs.Type == unix.PROC_SUPER_MAGIC
	if s.dirs != nil {
		s.dirs["net"] = true
	}
	if err := s.walkDir(ctx, fd, "net", visit); err != nil {
		return fmt.Errorf("walk %s: %w", top, err)
	}
	return nil
}

// walkDir walks the directory open at fd, rel from the root, and closes fd.
func (s *sysctlWalk) walkDir(ctx context.Context, fd int, rel string, visit func(k sysctlKey) error) error {
	// A descriptor in blocking mode: os.NewFile does not register it with
	// the runtime's poller.
	dir := os.NewFile(uintptr(fd), rel)
	defer dir.Close()
	ents, err := dir.ReadDir(-1)
	if err != nil {
		if rel == "net" {
			return err
		}
		s.unreadable = append(s.unreadable, rel)
		return nil
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		// The key's member name holds its path from the root: one string
		// for both, for each of the thousand keys.
		member := bundle.DirSysctl + "/" + rel + "/" + e.Name()
		crel := member[len(bundle.DirSysctl)+1:]
		switch {
		case e.IsDir():
			if s.within != nil && !s.within[crel] {
				continue
			}
			if s.dirs != nil {
				s.dirs[crel] = true
			}
			sub, err := unix.Openat(fd, e.Name(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				s.unreadable = append(s.unreadable, crel)
				continue
			}
			if err := s.walkDir(ctx, sub, crel, visit); err != nil {
				return err
			}
		case !e.Type().IsRegular():
			if s.keys != nil {
				s.keys[crel] = true
			}
			// Never so in a real /proc/sys; in a copy, say so rather than
			// leave the key out silently.
			s.unreadable = append(s.unreadable, crel)
		default:
			if s.keys != nil {
				s.keys[crel] = true
			}
			if err := visit(sysctlKey{dir: fd, name: e.Name(), rel: crel, member: member}); err != nil {
				return err
			}
		}
	}
	return nil
}

// storeReadable stores the key k unless its mode says nobody may read it
// (a write-only key, such as net.ipv4.route.flush).
func (s *sysctlWalk) storeReadable(k sysctlKey) error {
	data, mode, err := s.readKey(k)
	if err != nil && (errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)) {
		// The open was refused: look at the mode only now, rather than
		// stat every key first.
		var st unix.Stat_t
		if unix.Fstatat(k.dir, k.name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			mode = st.Mode
		}
	}
	if mode != 0 && mode&0o444 == 0 {
		return nil
	}
	if err == nil {
		s.buf = data // the larger buffer, when a key outgrew it
		err = s.w.WriteFile(k.member, data)
	}
	return s.stored(k.rel, err)
}

// keyBuf is the size of the first read of a key in /proc/sys: a page, less
// the byte proc_sys_call_handler() adds to the buffer it allocates for the
// handler, the size of the read.
const keyBuf = 4<<10 - 1

// readKey reads the key k, with its mode when it had to stat it. In a real
// /proc/sys it takes three system calls, not readFileAt's five. The open
// applies the key's mode, root included (sysctl_perm(): a write-only key
// fails it with EACCES), so a key opened is readable and fstat has
// nothing to tell; the walk saw a regular file. And one read returns the
// whole value when it fits: proc_sys_call_handler() runs the key's handler
// once per read, so a read short of the buffer is the end. A value that
// fills the buffer is read again from offset 0 into a larger one, never
// continued: the integer and bitmap handlers (__do_proc_dointvec(),
// proc_do_large_bitmap()) return nothing at a nonzero offset, which cut
// net.ipv4.ip_local_reserved_ports at the first read's 512 bytes. A copy
// of /proc/sys is read like any file, its mode from fstat: root may read
// a copy's write-only key.
func (s *sysctlWalk) readKey(k sysctlKey) ([]byte, uint32, error) {
	if !s.procfs {
		return readFileAt(k.dir, k.name, filepath.Join(s.root, k.rel), s.buf)
	}
	fd, err := unix.Openat(k.dir, k.name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, 0, &fs.PathError{Op: "open", Path: filepath.Join(s.root, k.rel), Err: err}
	}
	defer unix.Close(fd)
	// Each key is read with keyBuf first, even after a long one grew the
	// buffer: the kernel allocates as much as is asked for each read.
	data, size := s.buf[:0], keyBuf
	for {
		if cap(data) < size {
			data = make([]byte, 0, size)
		}
		n, err := unix.Pread(fd, data[:size], 0)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return nil, 0, fmt.Errorf("read %s: %w", filepath.Join(s.root, k.rel), err)
		case n < size:
			return data[:n], 0, nil
		case n > maxProcFile:
			return nil, 0, fmt.Errorf("read %s: larger than %d bytes", filepath.Join(s.root, k.rel), maxProcFile)
		}
		size = min(4*size, maxProcFile+1)
	}
}

// Collect implements Collector.
func (s *Sysctls) Collect(ctx context.Context, h Host, w *bundle.Writer) error {
	sw := &sysctlWalk{w: w, root: filepath.Join(h.Proc, "sys")}
	var hostKeys []string
	var notIn error
	switch {
	case h.outside():
		// The fs.* keys below are still the host's and worth having.
		notIn = h.notEntered("net.* sysctls")
	case h.NS == nil:
		if err := sw.walk(ctx, sw.storeReadable); err != nil {
			return err
		}
	default:
		// /proc/sys/net is the opening thread's namespace's
		// (net_ctl_header_lookup() uses current's), so the namespace's
		// keys are walked and read on its thread.
		sw.dirs, sw.keys = map[string]bool{}, map[string]bool{}
		var err error
		if derr := h.NS.Do(func() { err = sw.walk(ctx, sw.storeReadable) }); derr != nil {
			err = derr
		}
		if err != nil {
			return err
		}
		if hostKeys, err = s.hostOnly(ctx, sw); err != nil {
			return err
		}
	}
	for _, rel := range extraSysctls {
		if _, err := os.Stat(filepath.Join(sw.root, rel)); err != nil {
			continue
		}
		if err := sw.store(rel); err != nil {
			return err
		}
	}
	unreadable := sw.unreadable
	s.info = bundle.SysctlsInfo{Read: sw.read, Unreadable: len(unreadable),
		UnreadableKeys: unreadable[:min(len(unreadable), bundle.MaxUnreadableKeys)]}
	if h.NS != nil {
		s.info.FromHost = len(hostKeys)
		s.info.FromHostKeys = hostKeys[:min(len(hostKeys), bundle.MaxFromHostKeys)]
	}
	if len(unreadable) > 0 {
		// Not an error: the values that matter were read. The note names
		// five; the manifest's unreadable_keys has more.
		list := strings.Join(unreadable[:min(len(unreadable), 5)], ", ")
		if more := len(unreadable) - 5; more > 0 {
			list += fmt.Sprintf(" and %d more", more)
		}
		w.Note("%d of %d sysctls unreadable: %s", len(unreadable), sw.read+len(unreadable), list)
	}
	if notIn != nil {
		return notIn
	}
	if len(hostKeys) > 0 {
		w.Note("%d net.* sysctls are global, not per namespace, and were read from the host (manifest sysctls.from_host_keys)", len(hostKeys))
	}
	return nil
}

// ReadSysctls reads the named sysctls (dotted: net.core.somaxconn) under h's
// proc root, for a live view that shows a few values at every sample rather
// than the whole tree; a sysctl the kernel lacks, or that cannot be read, is
// left out. Values are trimmed.
//
// With h.NS set, they are read on its thread: a net.* sysctl file resolves
// to the namespace of the thread that opens it.
func ReadSysctls(h Host, names []string) map[string]string {
	out := make(map[string]string, len(names))
	read := func() {
		for _, name := range names {
			data, err := readFile(filepath.Join(h.Proc, "sys", strings.ReplaceAll(name, ".", "/")))
			if err != nil {
				continue
			}
			out[name] = trimNL(data)
		}
	}
	switch {
	case h.outside():
		// Not entered: the files would show this process's own namespace.
	case h.NS == nil:
		read()
	default:
		_ = h.NS.Do(read) // closed: nothing read
	}
	return out
}

// hostOnly stores the keys of the process's own /proc/sys/net that the
// namespace walked in ns does not show but whose directory it does: the
// kernel registers its global net.* keys in the initial namespace only
// (net_core_table's netdev_max_backlog, ipv4_table's tcp_mem), and they
// hold for every namespace. A directory the namespace lacks altogether is
// another namespace's (net/ipv4/conf/eth0 of an interface it does not have)
// and is left out: not even listed. On a node, whose interfaces each have
// four such directories (net/ipv4/conf, net/ipv4/neigh and net/ipv6's),
// those are most of the host's tree. It returns the keys stored.
func (s *Sysctls) hostOnly(ctx context.Context, ns *sysctlWalk) ([]string, error) {
	host := &sysctlWalk{w: ns.w, root: ns.root, within: ns.dirs}
	var stored []string
	err := host.walk(ctx, func(k sysctlKey) error {
		if ns.keys[k.rel] {
			return nil
		}
		before := host.read
		if err := host.storeReadable(k); err != nil {
			return err
		}
		if host.read > before {
			stored = append(stored, k.rel)
		}
		return nil
	})
	ns.read += host.read
	return stored, err
}

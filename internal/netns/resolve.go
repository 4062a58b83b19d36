package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
	"golang.org/x/sys/unix"
)

// RunDir is where ip netns keeps its named namespaces' bind mounts.
const RunDir = "/run/netns"

// Spec is a namespace as the operator named it: at most one of its fields
// is set. The zero Spec is the capturing process's own namespace.
type Spec struct {
	NetNS     string // --netns: an ip netns name, or a path to a namespace file
	PID       int    // --pid
	Container string // --container: a container id, or a unique prefix of one
}

// IsZero reports whether no namespace was named.
func (s Spec) IsZero() bool { return s == Spec{} }

// Validate checks that at most one way of naming is used.
func (s Spec) Validate() error {
	n := 0
	for _, set := range []bool{s.NetNS != "", s.PID != 0, s.Container != ""} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return errors.New("--netns, --pid and --container name the same thing: give one")
	case s.PID < 0:
		return fmt.Errorf("--pid must be a process id, not %d", s.PID)
	}
	return nil
}

// nsfsMagic is the statfs f_type of a namespace file (NSFS_MAGIC).
const nsfsMagic = 0x6e736673

// Resolve finds the namespace file s names, under the proc root given
// ("/proc"), and what is known of its owner. It does not enter it. A
// process's namespace file that may not be opened (another user's) is an
// fs.ErrPermission, returned with the NetNS that names the process.
func Resolve(proc string, s Spec) (bundle.NetNS, error) {
	n, err := ResolveQuick(proc, s)
	if err == nil && n.PID == 0 && !n.HostNS {
		// A namespace named by its file says nothing of who runs in it:
		// its processes do (a pod's sandbox and containers).
		n.Owner = NamespaceOwner(proc, n.Inode)
	}
	return n, err
}

// ResolveQuick is Resolve without the search for the owner of a
// namespace named by its file, or the caller's own: that search looks at
// every process of the host (NamespaceOwner), where the rest takes a few
// opens.
func ResolveQuick(proc string, s Spec) (bundle.NetNS, error) {
	if err := s.Validate(); err != nil {
		return bundle.NetNS{}, err
	}
	var n bundle.NetNS
	switch {
	case s.NetNS != "":
		n.NamedBy, n.Name = bundle.NamedByNetNS, s.NetNS
		n.Path = s.NetNS
		if !strings.Contains(s.NetNS, "/") {
			if s.NetNS == "." || s.NetNS == ".." {
				return n, fmt.Errorf("--netns %q is not an ip netns name", s.NetNS)
			}
			n.Path = filepath.Join(RunDir, s.NetNS)
		}
	case s.PID != 0:
		n.NamedBy, n.Name, n.PID = bundle.NamedByPID, strconv.Itoa(s.PID), s.PID
		n.Path = filepath.Join(proc, strconv.Itoa(s.PID), "ns/net")
		if _, err := os.Stat(filepath.Join(proc, strconv.Itoa(s.PID))); err != nil {
			return n, fmt.Errorf("--pid %d: no such process: %w", s.PID, err)
		}
	case s.Container != "":
		n.NamedBy, n.Name = bundle.NamedByContainer, s.Container
		pid, err := FindContainer(proc, s.Container)
		if err != nil {
			return n, err
		}
		n.PID = pid
		n.Path = filepath.Join(proc, strconv.Itoa(pid), "ns/net")
	default:
		n.NamedBy = bundle.NamedBySelf
		n.Path = filepath.Join(proc, "thread-self/ns/net")
	}
	ino, err := inode(n.Path)
	if err != nil {
		if n.PID != 0 && errors.Is(err, fs.ErrPermission) {
			// Another user's process: ptrace_may_access() guards its
			// ns/ files (CAP_SYS_PTRACE), but not its /proc/PID/net,
			// which still shows the namespace. Its inode stays unknown.
			n.Comm = comm(proc, n.PID)
			n.Owner = OwnerOf(proc, n.PID)
		}
		return n, err
	}
	n.Inode = ino
	if host, err := inode(filepath.Join(proc, "1/ns/net")); err == nil {
		n.HostNS = host == ino
	}
	if n.PID != 0 {
		n.Comm = comm(proc, n.PID)
		n.Owner = OwnerOf(proc, n.PID)
	}
	return n, nil
}

// NamespaceOwner looks at every process under proc for those in the
// namespace of inode ino, and returns the container and pod they belong
// to, if any.
func NamespaceOwner(proc string, ino uint64) *bundle.Owner {
	return HostRoots(proc).NamespaceOwner(pidsIn(proc, ino))
}

// pidsIn lists the processes under proc whose network namespace is inode
// ino; those that cannot be looked at (another user's, without
// CAP_SYS_PTRACE) are left out.
func pidsIn(proc string, ino uint64) []int {
	var out []int
	link := make([]byte, 64)
	for _, pid := range pids(proc) {
		if n, ok := linkInode(filepath.Join(proc, strconv.Itoa(pid), "ns/net"), link); ok && n == ino {
			out = append(out, pid)
		}
	}
	return out
}

// linkInode returns the inode of the namespace a /proc/PID/ns/ link names,
// from its text ("net:[4026531840]", proc_ns_readlink()) rather than by
// following it: a node's every process is looked at, and the readlink costs
// about half the stat (4 against 8 us a process on the development VM, or
// with /proc's listing, 8-10 against 13 under load: BenchmarkPidsIn).
// Anything but that form is resolved by stat, as a copy of /proc would be.
func linkInode(path string, buf []byte) (uint64, bool) {
	if n, err := unix.Readlink(path, buf); err == nil && n < len(buf) {
		text := string(buf[:n])
		if i := strings.IndexByte(text, '['); i >= 0 && strings.HasSuffix(text, "]") {
			if ino, err := strconv.ParseUint(text[i+1:len(text)-1], 10, 64); err == nil {
				return ino, true
			}
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, false
	}
	return st.Ino, true
}

// inode checks that path is a network namespace file and returns the
// namespace's inode number.
func inode(path string) (uint64, error) {
	// O_NONBLOCK: a FIFO given for a namespace file, or left in /run/netns,
	// would otherwise block the open until a writer came, for ever.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return 0, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer unix.Close(fd)
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	if fs.Type != nsfsMagic {
		return 0, fmt.Errorf("%s is not a namespace file (ip netns add NAME makes one; /proc/PID/ns/net is one)", path)
	}
	// NS_GET_NSTYPE (Linux 4.11) says which kind of namespace it is.
	if t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE); err == nil && t != unix.CLONE_NEWNET {
		return 0, fmt.Errorf("%s is a namespace, but not a network namespace", path)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Ino, nil
}

// comm is the command name of process pid, "" when unreadable.
func comm(proc string, pid int) string {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

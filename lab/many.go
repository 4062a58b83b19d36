package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// MaxMany bounds ManyOpts.N.
const MaxMany = 2000

// ManyOpts describe a set of bare namespaces for capture --all-netns.
type ManyOpts struct {
	// N is how many namespaces, 1 to MaxMany.
	N int
	// Port is the TCP port each one listens on at 127.0.0.1; 0 means none.
	Port uint16
	// Backlog is the listeners' backlog; 0 means 16.
	Backlog int
}

// Many is a set of network namespaces, each with its loopback up and, when
// asked, one TCP listener held by this process, made without ip(8): `ip
// netns add` costs a process and a mount each, a minute at 500. One locked
// thread unshare(2)s a fresh namespace, bind-mounts its namespace file at
// /run/netns/NAME (as ip netns add does, so ip netns and snapdiag see it
// by name), sets lo up and listens, and goes on to the next; it is never
// handed back to the scheduler. Names are sdlab-<pid>-many-<i>, so
// CleanStale removes those of a killed run.
type Many struct {
	// Names are the namespaces' ip netns names, Paths their bind mounts.
	Names, Paths []string

	mu        sync.Mutex
	listeners []int
	closed    bool
}

// NewMany builds n namespaces for tb and registers their removal with
// tb.Cleanup; it skips tb when not run as root.
func NewMany(tb TB, o ManyOpts) *Many {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip(SkipMessage)
	}
	m, err := OpenMany(o)
	if m != nil {
		tb.Cleanup(func() {
			if err := m.Close(); err != nil {
				tb.Errorf("lab: %v", err)
			}
		})
	}
	if err != nil {
		tb.Fatalf("lab: %v", err)
	}
	return m
}

// OpenMany builds the namespaces. The caller must Close the result, which
// is non-nil whenever something was created, also with an error.
func OpenMany(o ManyOpts) (*Many, error) {
	if o.N < 1 || o.N > MaxMany {
		return nil, fmt.Errorf("ManyOpts.N %d is outside 1..%d", o.N, MaxMany)
	}
	if o.Backlog <= 0 {
		o.Backlog = 16
	}
	if os.Geteuid() != 0 {
		return nil, ErrNeedRoot
	}
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", NetnsDir, err)
	}
	seqMu.Lock()
	seq++
	id := seq
	seqMu.Unlock()
	m := &Many{}
	errc := make(chan error, 1)
	go func() {
		// Locked and never unlocked: the thread ends in the last namespace
		// it made, with the goroutine.
		runtime.LockOSThread()
		// Back to the process's namespace at the end: on the main thread,
		// which the runtime parks instead of ending, the last namespace
		// would otherwise become the one /proc/PID/ns/net shows.
		if orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			defer unix.Close(orig)
			defer unix.Setns(orig, unix.CLONE_NEWNET)
		}
		for i := range o.N {
			name := fmt.Sprintf("%s%d-%d-many-%d", Prefix, os.Getpid(), id, i)
			if err := m.makeOne(name, o); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return m, err
	}
	return m, nil
}

// makeOne makes namespace name on the calling locked thread.
func (m *Many) makeOne(name string, o ManyOpts) error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare a network namespace: %w", err)
	}
	path := filepath.Join(NetnsDir, name)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o444)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	unix.Close(fd)
	if err := unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return fmt.Errorf("bind-mount the namespace on %s: %w", path, err)
	}
	m.mu.Lock()
	m.Names, m.Paths = append(m.Names, name), append(m.Paths, path)
	m.mu.Unlock()
	if err := LoopbackUp(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if o.Port == 0 {
		return nil
	}
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: socket: %w", name, err)
	}
	m.mu.Lock()
	m.listeners = append(m.listeners, ln)
	m.mu.Unlock()
	if err := unix.Bind(ln, &unix.SockaddrInet4{Port: int(o.Port), Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fmt.Errorf("%s: bind 127.0.0.1:%d: %w", name, o.Port, err)
	}
	if err := unix.Listen(ln, o.Backlog); err != nil {
		return fmt.Errorf("%s: listen: %w", name, err)
	}
	return nil
}

// LoopbackUp sets lo up in the calling thread's namespace (SIOCSIFFLAGS):
// for a namespace made with unshare(CLONE_NEWNET) on a locked thread.
func LoopbackUp() error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for lo: %w", err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// Close closes the listeners and removes the namespaces' bind mounts, the
// last reference to each: the kernel then frees them.
func (m *Many) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	for _, fd := range m.listeners {
		unix.Close(fd)
	}
	var errs []error
	for _, path := range m.Paths {
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", path, err))
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", path, err))
		}
	}
	return errors.Join(errs...)
}

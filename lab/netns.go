package lab

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread that has joined the network namespace ns, one of
// the lab's. Sockets fn creates stay in ns after it returns, and /proc/sys/net
// and /proc/thread-self/net show ns while it runs. Other goroutines are not
// affected.
func (l *Lab) Do(ns string, fn func() error) error {
	if err := l.checkNS(ns); err != nil {
		return err
	}
	return InNetns(nsPath(ns), fn)
}

// InNetns runs fn on a fresh goroutine locked to its OS thread after setns
// into the network namespace file path (a /run/netns entry or
// /proc/PID/ns/net), then restores the thread's namespace. If restoring fails
// the thread stays locked, so the runtime terminates it with the goroutine
// and no goroutine ever runs in the wrong namespace. A panic in fn becomes an
// error.
func InNetns(path string, fn func() error) error {
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer unix.Close(target)

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// /proc/thread-self, not /proc/self: the thread's own namespace.
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		ferr := callSafely(fn)
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			errc <- fmt.Errorf("restore netns after %s: %w (fn: %v)", path, err, ferr)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func callSafely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in namespace: %v\n%s", r, debug.Stack())
		}
	}()
	return fn()
}

// sysctlPath maps a dotted net.* key to its /proc/sys file. Only net.* keys
// are accepted: they are the ones a network namespace owns, so writing one
// from inside a lab namespace cannot change the host.
func sysctlPath(key string) (string, error) {
	if !strings.HasPrefix(key, "net.") || strings.Contains(key, "..") || strings.ContainsAny(key, " \n") {
		return "", fmt.Errorf("sysctl %q: only net.* keys belong to a network namespace", key)
	}
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/"), nil
}

// Sysctl sets the net.* sysctl key to value inside ns and checks that it took.
// It writes /proc/sys from a thread inside ns: the sysctl net files resolve the
// namespace of the task that opens them (net_ctl_header_lookup()), so the
// host's value is never touched.
func (l *Lab) Sysctl(ns, key, value string) error {
	path, err := sysctlPath(key)
	if err != nil {
		return err
	}
	var got string
	err = l.Do(ns, func() error {
		if err := os.WriteFile(path, []byte(value+"\n"), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		got = string(b)
		return nil
	})
	l.record("sysctl -w %s=%q  # in %s: %s", key, value, ns, status(err))
	if err != nil {
		return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, ns, err)
	}
	if strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields(value), " ") {
		return fmt.Errorf("sysctl %s=%s in %s: reads back %q", key, value, ns, strings.TrimSpace(got))
	}
	return nil
}

// ReadSysctl returns the net.* sysctl key's value inside ns, trimmed.
func (l *Lab) ReadSysctl(ns, key string) (string, error) {
	path, err := sysctlPath(key)
	if err != nil {
		return "", err
	}
	var b []byte
	err = l.Do(ns, func() error {
		var err error
		b, err = os.ReadFile(path)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read %s in %s: %w", path, ns, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ReadNet returns /proc/net/name as ns sees it (netstat, snmp, tcp6,
// sockstat, ...). It reads /proc/thread-self/net from a thread inside ns:
// /proc/net is /proc/self/net, which follows the thread-group leader's
// namespace, not the calling thread's.
func (l *Lab) ReadNet(ns, name string) ([]byte, error) {
	if strings.Contains(name, "..") {
		return nil, fmt.Errorf("read /proc/net/%s: bad name", name)
	}
	path := "/proc/thread-self/net/" + name
	var b []byte
	err := l.Do(ns, func() error {
		var err error
		b, err = os.ReadFile(path)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", path, ns, err)
	}
	return b, nil
}

// Counters reads /proc/net/netstat and /proc/net/snmp inside ns, keyed
// "TcpExt.ListenDrops", "Tcp.PassiveOpens", "Icmp.OutDestUnreachs", ...
// Counters are per network namespace: each struct net has its own MIBs, so
// the server's and the client's counters never mix.
func (l *Lab) Counters(ns string) (Counters, error) {
	c := Counters{}
	for _, f := range []string{"netstat", "snmp"} {
		b, err := l.ReadNet(ns, f)
		if err != nil {
			return nil, err
		}
		if err := parseCounters(bytes.NewReader(b), c); err != nil {
			return nil, fmt.Errorf("parse /proc/net/%s in %s: %w", f, ns, err)
		}
	}
	return c, nil
}

// Sockets reads /proc/net/tcp and /proc/net/tcp6 inside ns. A missing tcp6
// (no IPv6 in the kernel) is not an error.
func (l *Lab) Sockets(ns string) ([]ProcSocket, error) {
	var all []ProcSocket
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := l.ReadNet(ns, f)
		if err != nil {
			if f == "tcp6" && isNotExist(err) {
				continue
			}
			return nil, err
		}
		socks, err := parseProcNetTCP(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("parse /proc/net/%s in %s: %w", f, ns, err)
		}
		all = append(all, socks...)
	}
	return all, nil
}

// SynRecv counts the request sockets (state SYN_RECV) on local port in the
// server namespace. Requests are attributed by local port, as snapdiag does:
// a request socket has no inode and no link to its listener in what the
// kernel reports. IPv4 clients of a dual-stack listener appear in
// /proc/net/tcp, which Sockets reads too.
func (l *Lab) SynRecv(port uint16) (int, error) {
	socks, err := l.Sockets(l.Server)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range socks {
		if s.State == StateSynRecv && s.Local.Port() == port {
			n++
		}
	}
	return n, nil
}

// ListenQueue returns the accept-queue length (sk_ack_backlog, /proc/net/tcp's
// rx_queue for a LISTEN row) of the listener on port in the server namespace,
// summed when several listeners share the port.
func (l *Lab) ListenQueue(port uint16) (int, error) {
	socks, err := l.Sockets(l.Server)
	if err != nil {
		return 0, err
	}
	n, found := 0, false
	for _, s := range socks {
		if s.State == StateListen && s.Local.Port() == port {
			n += int(s.RxQueue)
			found = true
		}
	}
	if !found {
		return 0, fmt.Errorf("no listener on port %d in %s", port, l.Server)
	}
	return n, nil
}

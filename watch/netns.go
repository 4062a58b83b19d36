package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/netns"
	"golang.org/x/sys/unix"
)

// nsRef is the namespace thread the checks run in, nil for the watcher's
// own namespace. The watcher swaps it between cycles when the target moves;
// the checks of one cycle, which run at once, only read it.
type nsRef struct{ th atomic.Pointer[netns.Thread] }

// thread is the current thread, nil on a nil ref.
func (r *nsRef) thread() *netns.Thread {
	if r == nil {
		return nil
	}
	return r.th.Load()
}

// dialIn connects over TCP to addr from a socket created inside the
// namespace th is in, so 127.0.0.1 is that namespace's loopback. Only the
// socket(2) runs on th's thread: a socket keeps the namespace it was made in
// (sock_net() is set at creation), and the connect is waited for by the
// runtime's poller like any other. A host name is resolved here, in the
// watcher's own namespace, with its resolver configuration.
func dialIn(ctx context.Context, th *netns.Thread, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", portStr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ips, lerr := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if lerr != nil {
			return nil, lerr
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("lookup %s: no addresses", host)
		}
		ip = ips[0]
	}
	ip = ip.Unmap()
	family := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Addr: ip.As16(), Port: int(port)}
	if ip.Is4() {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: ip.As4(), Port: int(port)}
	}
	fd, err := th.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, unix.IPPROTO_TCP)
	if err != nil {
		return nil, err
	}
	// A non-blocking descriptor in an os.File is registered with the
	// poller, so the wait for the connect ends with ctx.
	f := os.NewFile(uintptr(fd), "tcp check")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := f.SetWriteDeadline(dl); err != nil {
			return nil, err
		}
	}
	stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	// The connect is made inside Write's function, after Write has
	// cleared the descriptor's readiness (poll.FD.RawWrite resets it
	// before calling): an EPOLLOUT edge from a connect that completes at
	// once then wakes the wait below instead of being cleared with it. As
	// net's own connect, the socket being writable ends the wait, and
	// SO_ERROR says how the handshake ended.
	var cerr error
	connecting := false
	werr := rc.Write(func(fd uintptr) bool {
		if !connecting {
			connecting = true
			cerr = unix.Connect(int(fd), sa)
			return !errors.Is(cerr, unix.EINPROGRESS)
		}
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			cerr = err
		case v == int(unix.EINPROGRESS) || v == int(unix.EALREADY) || v == int(unix.EINTR):
			return false
		case v != 0:
			cerr = unix.Errno(v)
		default:
			if _, err := unix.Getpeername(int(fd)); errors.Is(err, unix.ENOTCONN) {
				return false
			}
			cerr = nil
		}
		return true
	})
	if werr != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, werr
	}
	if cerr != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))), Err: os.NewSyscallError("connect", cerr)}
	}
	// FileConn takes a copy of the descriptor; f's is closed on return.
	return net.FileConn(f)
}

// follower keeps the watcher in the namespace it was told to watch. A
// container restarted gets a new first process and a new namespace, and an
// ip netns name may be deleted and added again: before each cycle the
// follower checks that the namespace it holds is still the one named, and
// enters the new one when it is not.
type follower struct {
	proc string
	spec netns.Spec
	cur  *netns.Target
	ref  *nsRef
	log  *slog.Logger
	// lost is set once the named thing could not be found: the watcher
	// stays in the namespace it holds, and says so once.
	lost bool
}

// openFollower enters the namespace spec names. Not being able to enter it
// is an error: a check run from outside would test another namespace's
// loopback, and report on the wrong service.
func openFollower(proc string, spec netns.Spec, log *slog.Logger) (*follower, error) {
	t, err := netns.Open(proc, spec)
	if err != nil {
		return nil, err
	}
	if t.EnterErr != nil {
		return nil, fmt.Errorf("%w (watch runs its checks inside the namespace: run as root, or grant CAP_SYS_ADMIN)", t.EnterErr)
	}
	f := &follower{proc: proc, spec: spec, cur: t, ref: &nsRef{}, log: log}
	f.ref.th.Store(t.Thread)
	return f, nil
}

// netNS is the namespace held, for the manifest.
func (f *follower) netNS() *bundle.NetNS {
	n := f.cur.NetNS
	return &n
}

// current reports whether the namespace held is still the one named.
func (f *follower) current() bool {
	n := f.cur.NetNS
	path := n.Path
	if n.PID != 0 {
		path = filepath.Join(f.proc, strconv.Itoa(n.PID), "ns/net")
	}
	var st unix.Stat_t
	return unix.Stat(path, &st) == nil && st.Ino == n.Inode
}

// refresh enters the namespace named anew when the one held is no longer it,
// and reports whether it moved. A --pid whose process ended cannot be named
// again: the watcher stays in its namespace (held open by its thread).
func (f *follower) refresh() bool {
	if f.current() {
		f.lost = false
		return false
	}
	old := f.cur
	t, err := netns.Open(f.proc, f.spec)
	if err == nil && t.EnterErr != nil {
		err = t.EnterErr
	}
	if err != nil {
		if !f.lost {
			f.log.Warn("watched namespace not found: staying in the one held", "netns", old.NetNS.String(),
				"inode", old.NetNS.Inode, "error", err.Error())
			f.lost = true
		}
		return false
	}
	f.lost = false
	f.cur = t
	f.ref.th.Store(t.Thread)
	old.Close()
	if t.NetNS.Inode == old.NetNS.Inode {
		// Another process of the same namespace now stands for it.
		f.log.Debug("watched namespace has a new first process", "netns", t.NetNS.String(), "pid", t.NetNS.PID)
		return false
	}
	f.log.Warn("watched namespace moved", "from", old.NetNS.String(), "from_inode", old.NetNS.Inode,
		"to", t.NetNS.String(), "to_inode", t.NetNS.Inode, "pid", t.NetNS.PID)
	return true
}

// close leaves the namespace.
func (f *follower) close() {
	if f != nil {
		f.cur.Close()
	}
}

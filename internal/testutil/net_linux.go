package testutil

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// Listen opens a TCP listener on ap the way a server does (socket, bind,
// listen), so the test controls the backlog that inet_diag reports as Send-Q,
// and returns its fd, closed when the test ends, and its port. Each option
// is applied to the socket before bind (DeferAccept, ReusePort).
func Listen(t testing.TB, ap netip.AddrPort, backlog int, opts ...func(fd int) error) (fd, port int) {
	t.Helper()
	family := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
	if ap.Addr().Is4() {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	for _, o := range opts {
		if err := o(fd); err != nil {
			t.Fatalf("socket option: %v", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatalf("bind %v: %v", ap, err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatalf("listen: %v", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	switch s := got.(type) {
	case *unix.SockaddrInet4:
		port = s.Port
	case *unix.SockaddrInet6:
		port = s.Port
	}
	return fd, port
}

// DeferAccept is a Listen option setting TCP_DEFER_ACCEPT to secs: a
// handshake completed without data then stays a request socket in SYN_RECV,
// which is how an unprivileged test fills a SYN queue.
func DeferAccept(secs int) func(fd int) error {
	return func(fd int) error {
		return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, secs)
	}
}

// ReusePort is a Listen option setting SO_REUSEPORT, for a listener group.
func ReusePort(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) }

// Dial connects to addr:port over network ("tcp4", "tcp6"), closed when the
// test ends.
func Dial(t testing.TB, network string, addr netip.Addr, port int) *net.TCPConn {
	t.Helper()
	c, err := net.Dial(network, net.JoinHostPort(addr.String(), strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// CanListen reports whether this host has addr to listen on, to skip the
// IPv6 cases where IPv6 is off.
func CanListen(addr netip.Addr) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(addr.String(), "0"))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// DialPending starts a non-blocking IPv4 connect to addr:port and returns
// without waiting: against a listener whose queue is full the SYN is
// dropped and the socket stays in SYN_SENT, retrying, until the test ends
// and closes it.
func DialPending(t testing.TB, addr netip.Addr, port int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: addr.As4(), Port: port}); !errors.Is(err, unix.EINPROGRESS) {
		t.Fatalf("non-blocking connect = %v, want EINPROGRESS", err)
	}
}

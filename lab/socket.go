package lab

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// AcceptMode says what a Listener does with its accept queue.
type AcceptMode int

// Accept modes.
const (
	// NeverAccept leaves connections in the accept queue: a stuck application.
	NeverAccept AcceptMode = iota
	// AcceptClose accepts and closes at once, so the server closes first and
	// its side of each connection ends in TIME_WAIT.
	AcceptClose
	// AcceptDrain accepts, reads until the client closes (at most DrainLimit),
	// then closes: the client closes first and holds the TIME_WAIT.
	AcceptDrain
	// AcceptHold accepts and keeps connections open until the listener is
	// closed, up to MaxHeld; beyond that it closes them at once.
	AcceptHold
)

var modeNames = map[AcceptMode]string{NeverAccept: "never", AcceptClose: "close", AcceptDrain: "drain", AcceptHold: "hold"}

// String is the mode's flag spelling (never, close, drain, hold).
func (m AcceptMode) String() string {
	if n, ok := modeNames[m]; ok {
		return n
	}
	return fmt.Sprintf("AcceptMode(%d)", int(m))
}

// ParseAcceptMode is the inverse of AcceptMode.String.
func ParseAcceptMode(s string) (AcceptMode, error) {
	for m, n := range modeNames {
		if n == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("accept mode %q: want never, close, drain or hold", s)
}

// Bounds on what listeners and clients hold.
const (
	// MaxHeld bounds the connections an AcceptHold listener keeps.
	MaxHeld = 4096
	// DrainLimit bounds how long an AcceptDrain listener reads one connection.
	DrainLimit = 5 * time.Second
	// MaxConns bounds the sockets one Connect call opens.
	MaxConns = 4096
	// MaxProbeTimeout bounds a Probe.
	MaxProbeTimeout = 30 * time.Second
)

// Listener is a TCP listening socket with an exact listen() backlog.
type Listener struct {
	// Addr is the bound address, with the port the kernel chose for port 0.
	Addr netip.AddrPort
	// Backlog is the value passed to listen(); the kernel clamps it to
	// net.core.somaxconn (__sys_listen_socket()).
	Backlog int
	Mode    AcceptMode

	fd       int
	accepted atomic.Int64
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	closeErr error

	mu   sync.Mutex
	held []net.Conn
	wg   sync.WaitGroup // drain goroutines
}

// Listen opens a listener in the calling thread's network namespace: socket,
// SO_REUSEADDR, bind, listen(fd, backlog) as raw system calls, so the backlog
// is exactly the one given. Inside a lab use Lab.Listen; lab/cmd/labsvc uses
// this after `ip netns exec`.
func Listen(addr netip.AddrPort, backlog int, mode AcceptMode, opts ...ListenOption) (*Listener, error) {
	if _, ok := modeNames[mode]; !ok {
		return nil, fmt.Errorf("listen %s: unknown accept mode %d", addr, int(mode))
	}
	fd, err := socketFor(addr.Addr())
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	ln := &Listener{Backlog: backlog, Mode: mode, fd: fd, stop: make(chan struct{}), done: make(chan struct{})}
	if err := ln.open(addr, opts); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen %s backlog %d: %w", addr, backlog, err)
	}
	if mode == NeverAccept {
		close(ln.done)
	} else {
		go ln.acceptLoop()
	}
	return ln, nil
}

// ListenOption is a socket option Listen sets before bind, named as
// labsvc's flag that asks for it.
type ListenOption string

// ReusePort sets SO_REUSEPORT: several listeners, of one process or of
// several with the same user, share the address and port, and the kernel
// spreads new connections over them by a hash of the client's address.
const ReusePort ListenOption = "reuseport"

func (ln *Listener) open(addr netip.AddrPort, opts []ListenOption) error {
	if err := unix.SetsockoptInt(ln.fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("setsockopt SO_REUSEADDR: %w", err)
	}
	for _, o := range opts {
		if o != ReusePort {
			return fmt.Errorf("unknown listen option %q", o)
		}
		if err := unix.SetsockoptInt(ln.fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fmt.Errorf("setsockopt SO_REUSEPORT: %w", err)
		}
	}
	if err := unix.Bind(ln.fd, sockaddr(addr)); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(ln.fd, ln.Backlog); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	sa, err := unix.Getsockname(ln.fd)
	if err != nil {
		return fmt.Errorf("getsockname: %w", err)
	}
	ln.Addr = addrPortOf(sa)
	return nil
}

// Relisten calls listen() again on the listening socket with backlog, as a
// server's reload does to take a new backlog (nginx, for one, calls listen()
// on its inherited sockets when the backlog changed). On a socket already
// listening, __inet_listen_sk() only stores the new sk_max_ack_backlog,
// clamped by __sys_listen_socket() to net.core.somaxconn of the socket's own
// namespace as it is at this call; the bound port, the accept loop and the
// requests already queued stay. Backlog is updated; it must not be read
// concurrently.
func (ln *Listener) Relisten(backlog int) error {
	if err := unix.Listen(ln.fd, backlog); err != nil {
		return fmt.Errorf("listen %s again with backlog %d: %w", ln.Addr, backlog, err)
	}
	ln.Backlog = backlog
	return nil
}

// FD is the listening socket's descriptor, for getsockopt and the like. It
// stays valid until Close.
func (ln *Listener) FD() int { return ln.fd }

// Accepted counts the connections accepted so far.
func (ln *Listener) Accepted() int64 { return ln.accepted.Load() }

// Port is the listener's port.
func (ln *Listener) Port() uint16 { return ln.Addr.Port() }

// acceptPoll is how often the accept loop looks at its stop channel.
const acceptPoll = 50 * time.Millisecond

func (ln *Listener) acceptLoop() {
	defer close(ln.done)
	pfd := []unix.PollFd{{Fd: int32(ln.fd), Events: unix.POLLIN}}
	for {
		select {
		case <-ln.stop:
			return
		default:
		}
		n, err := unix.Poll(pfd, int(acceptPoll/time.Millisecond))
		if errors.Is(err, unix.EINTR) || n == 0 {
			continue
		}
		if err != nil {
			return
		}
		for {
			cfd, _, err := unix.Accept4(ln.fd, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
			if err != nil {
				break // EAGAIN: queue drained; anything else: poll again
			}
			ln.accepted.Add(1)
			ln.handle(cfd)
		}
	}
}

func (ln *Listener) handle(cfd int) {
	switch ln.Mode {
	case AcceptClose:
		unix.Close(cfd)
	case AcceptHold:
		c, err := fileConn(cfd)
		if err != nil {
			return
		}
		ln.mu.Lock()
		if len(ln.held) < MaxHeld {
			ln.held = append(ln.held, c)
			c = nil
		}
		ln.mu.Unlock()
		if c != nil {
			c.Close()
		}
	case AcceptDrain:
		c, err := fileConn(cfd)
		if err != nil {
			return
		}
		ln.mu.Lock()
		if len(ln.held) >= MaxHeld {
			ln.mu.Unlock()
			c.Close()
			return
		}
		ln.held = append(ln.held, c)
		ln.mu.Unlock()
		ln.wg.Add(1)
		go func() {
			defer ln.wg.Done()
			c.SetReadDeadline(time.Now().Add(DrainLimit))
			io.Copy(io.Discard, io.LimitReader(c, 1<<20))
			ln.mu.Lock()
			for i, h := range ln.held {
				if h == c {
					ln.held = append(ln.held[:i], ln.held[i+1:]...)
					break
				}
			}
			ln.mu.Unlock()
			c.Close()
		}()
	}
}

// fileConn turns an accepted descriptor into a net.Conn on the runtime's
// poller, closing the descriptor (net.FileConn works on a duplicate).
func fileConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "accepted")
	defer f.Close()
	return net.FileConn(f)
}

// Close stops accepting, closes the connections it holds and the listening
// socket. Connections still in the accept queue are reset by the kernel.
func (ln *Listener) Close() error {
	ln.once.Do(func() {
		close(ln.stop)
		<-ln.done
		ln.mu.Lock()
		held := ln.held
		ln.held = nil
		ln.mu.Unlock()
		for _, c := range held {
			c.Close() // wakes a drain goroutine, which closes it again harmlessly
		}
		ln.wg.Wait()
		if err := unix.Close(ln.fd); err != nil {
			ln.closeErr = fmt.Errorf("close listener %s: %w", ln.Addr, err)
		}
	})
	return ln.closeErr
}

// Listen opens a listener on addr (a server address of the lab, or the
// unspecified address for a wildcard listener; port 0 lets the kernel choose)
// inside the server namespace. The lab closes it at cleanup if the test has
// not.
func (l *Lab) Listen(addr netip.AddrPort, backlog int, mode AcceptMode, opts ...ListenOption) (*Listener, error) {
	if a := addr.Addr(); !a.IsUnspecified() && a != l.ServerIP && (!a.IsValid() || a != l.ServerIP6) {
		return nil, fmt.Errorf("listen %s: not a server address of this lab", addr)
	}
	var ln *Listener
	err := l.Do(l.Server, func() error {
		var err error
		ln, err = Listen(addr, backlog, mode, opts...)
		return err
	})
	l.record("listen %s backlog %d accept %s %v  # %s", addr, backlog, mode, opts, status(err))
	if err != nil {
		return nil, err
	}
	if !l.onCleanup(func() { ln.Close() }) {
		ln.Close()
		return nil, fmt.Errorf("listen %s: lab is shutting down", addr)
	}
	return ln, nil
}

// Relisten re-listens ln, one of the lab's listeners, with backlog (see
// Listener.Relisten), and records it.
func (l *Lab) Relisten(ln *Listener, backlog int) error {
	err := ln.Relisten(backlog)
	l.record("relisten %s backlog %d  # %s", ln.Addr, backlog, status(err))
	return err
}

func socketFor(a netip.Addr) (int, error) {
	family := unix.AF_INET
	if a.Is6() && !a.Is4In6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	return fd, nil
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	a := ap.Addr()
	if a.Is4() || a.Is4In6() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
}

func addrPortOf(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// Conns are client sockets opened by Connect, left to complete (or not) on
// their own. A handshake that never completes ends with the client's SYN
// retries, about 19 s in a lab (see ClientSynRetries), or when Close or the
// lab's cleanup closes the socket.
type Conns struct {
	From netip.Addr
	To   netip.AddrPort

	mu     sync.Mutex
	fds    []int
	closed bool
}

// Len is how many sockets were opened.
func (c *Conns) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.fds)
}

// States returns each socket's TCP state (TCP_INFO's tcpi_state), in the
// order they were opened.
func (c *Conns) States() ([]TCPState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("conns: closed")
	}
	out := make([]TCPState, len(c.fds))
	for i, fd := range c.fds {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return nil, fmt.Errorf("getsockopt TCP_INFO: %w", err)
		}
		out[i] = TCPState(info.State)
	}
	return out, nil
}

// Count returns how many sockets are in state s.
func (c *Conns) Count(s TCPState) (int, error) {
	states, err := c.States()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, st := range states {
		if st == s {
			n++
		}
	}
	return n, nil
}

// Close closes every socket. It is safe to call more than once.
func (c *Conns) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	for _, fd := range c.fds {
		if err := unix.Close(fd); err != nil {
			errs = append(errs, err)
		}
	}
	c.fds = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close conns %s->%s: %w", c.From, c.To, err)
	}
	return nil
}

// checkFlow reports an error unless from is a client address and to a server
// address of the lab: connections never leave it.
func (l *Lab) checkFlow(from netip.Addr, to netip.AddrPort) error {
	if from != l.BadIP && from != l.GoodIP && (!from.IsValid() || (from != l.BadIP6 && from != l.GoodIP6)) {
		return fmt.Errorf("connect from %s: not a client address of this lab", from)
	}
	if a := to.Addr(); a != l.ServerIP && (!a.IsValid() || a != l.ServerIP6) {
		return fmt.Errorf("connect to %s: not a server address of this lab", to)
	}
	if from.Is4() != to.Addr().Is4() {
		return fmt.Errorf("connect from %s to %s: families differ", from, to)
	}
	return nil
}

// dialOne opens a non-blocking socket bound to from (the port chosen at
// connect time, IP_BIND_ADDRESS_NO_PORT, so ports are unique per 4-tuple as
// for a plain connect) and starts connecting it to to. It runs inside the
// client namespace.
func dialOne(from netip.Addr, to netip.AddrPort) (int, error) {
	fd, err := socketFor(from)
	if err != nil {
		return -1, err
	}
	// SOL_IP options apply to IPv6 TCP sockets too (ipv6_setsockopt()).
	if err := unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("setsockopt IP_BIND_ADDRESS_NO_PORT: %w", err)
	}
	if err := unix.Bind(fd, sockaddr(netip.AddrPortFrom(from, 0))); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind %s: %w", from, err)
	}
	if err := unix.Connect(fd, sockaddr(to)); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(fd)
		return -1, fmt.Errorf("connect %s->%s: %w", from, to, err)
	}
	return fd, nil
}

// Connect starts n non-blocking connects (n ≤ MaxConns) from the client
// address from to the server address to, inside the client namespace, and
// returns at once with the sockets. It stops at the first socket that fails
// and returns the ones opened so far with the error. The test closes them, or
// the lab does at cleanup.
func (l *Lab) Connect(from netip.Addr, to netip.AddrPort, n int) (*Conns, error) {
	if err := l.checkFlow(from, to); err != nil {
		return nil, err
	}
	if n < 0 || n > MaxConns {
		return nil, fmt.Errorf("connect: %d sockets is outside 0..%d", n, MaxConns)
	}
	c := &Conns{From: from, To: to}
	if !l.onCleanup(func() { c.Close() }) {
		return nil, fmt.Errorf("connect %s->%s: lab is shutting down", from, to)
	}
	return c, l.connectMore(c, n)
}

// connectMore opens n more sockets into c, as Connect does.
func (l *Lab) connectMore(c *Conns, n int) error {
	if c.Len()+n > MaxConns {
		return fmt.Errorf("connect: %d sockets is more than %d", c.Len()+n, MaxConns)
	}
	var derr error
	opened := 0
	err := l.Do(l.Client, func() error {
		for range n {
			fd, err := dialOne(c.From, c.To)
			if err != nil {
				derr = err
				return nil
			}
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				unix.Close(fd)
				derr = errors.New("conns closed")
				return nil
			}
			c.fds = append(c.fds, fd)
			c.mu.Unlock()
			opened++
		}
		return nil
	})
	err = errors.Join(err, derr)
	l.record("connect %s->%s x%d  # opened %d: %s", c.From, c.To, n, opened, status(err))
	return err
}

// Outcome is how a probe's connect ended.
type Outcome int

// Probe outcomes.
const (
	// Connected: the handshake completed within the timeout.
	Connected Outcome = iota
	// TimedOut: no answer within the timeout (SYNs dropped, or SYN-ACKs lost).
	TimedOut
	// Failed: the connect failed with Err (refused, reset, no port, ...).
	Failed
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Connected:
		return "connected"
	case TimedOut:
		return "timeout"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// ProbeResult is one probe's outcome, with its latency (the time to connect,
// to fail, or the timeout) and the connect error for Failed.
type ProbeResult struct {
	Outcome Outcome
	Latency time.Duration
	Err     error
}

// String says how the probe ended: "timeout after 1.5s".
func (r ProbeResult) String() string {
	if r.Err != nil {
		return fmt.Sprintf("%s after %v: %v", r.Outcome, r.Latency.Round(time.Millisecond), r.Err)
	}
	return fmt.Sprintf("%s after %v", r.Outcome, r.Latency.Round(time.Millisecond))
}

// Probe is one blocking connect from the client address from to to, bounded by
// timeout (at most MaxProbeTimeout), as a user's client would try: it reports
// whether the handshake completed, timed out or failed, and how long that
// took. The socket is closed before Probe returns. The error is for a probe
// that could not be made at all.
func (l *Lab) Probe(from netip.Addr, to netip.AddrPort, timeout time.Duration) (ProbeResult, error) {
	if err := l.checkFlow(from, to); err != nil {
		return ProbeResult{}, err
	}
	if timeout <= 0 || timeout > MaxProbeTimeout {
		return ProbeResult{}, fmt.Errorf("probe timeout %v is outside (0, %v]", timeout, MaxProbeTimeout)
	}
	var fd int
	start := time.Now()
	var cerr error
	err := l.Do(l.Client, func() error {
		var err error
		fd, err = dialOne(from, to)
		if err != nil {
			if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENETUNREACH) {
				cerr = err
				return nil
			}
			return err
		}
		return nil
	})
	if err != nil {
		return ProbeResult{}, err
	}
	var r ProbeResult
	if cerr != nil {
		r = ProbeResult{Outcome: Failed, Latency: time.Since(start), Err: cerr}
	} else {
		r = waitConnect(fd, start, timeout)
		unix.Close(fd)
	}
	l.record("probe %s->%s timeout %v  # %s", from, to, timeout, r)
	return r, nil
}

// exchange makes one short connection from from to to, as a client of a
// healthy service would: connect within timeout, send payload, then either
// close at once (the client closes first) or, with waitEOF, wait (within
// timeout) for the server to close first and close after it.
func (l *Lab) exchange(from netip.Addr, to netip.AddrPort, timeout time.Duration, payload []byte, waitEOF bool) (ProbeResult, error) {
	var fd int
	start := time.Now()
	var cerr error
	err := l.Do(l.Client, func() error {
		var err error
		fd, err = dialOne(from, to)
		if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ECONNREFUSED) {
			cerr, err = err, nil
		}
		return err
	})
	if err != nil {
		return ProbeResult{}, err
	}
	if cerr != nil {
		return ProbeResult{Outcome: Failed, Latency: time.Since(start), Err: cerr}, nil
	}
	defer unix.Close(fd)
	r := waitConnect(fd, start, timeout)
	if r.Outcome != Connected {
		return r, nil
	}
	if len(payload) > 0 {
		if _, err := unix.Write(fd, payload); err != nil {
			return ProbeResult{Outcome: Failed, Latency: time.Since(start), Err: fmt.Errorf("write: %w", err)}, nil
		}
	}
	if waitEOF {
		if err := waitEOFOn(fd, start.Add(timeout)); err != nil {
			return ProbeResult{Outcome: Failed, Latency: time.Since(start), Err: err}, nil
		}
	}
	return r, nil
}

// waitEOFOn reads fd until the peer's FIN (read returns 0) or the deadline.
func waitEOFOn(fd int, deadline time.Time) error {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	buf := make([]byte, 4096)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return errors.New("no FIN from the server before the deadline")
		}
		n, err := unix.Poll(pfd, int(left/time.Millisecond)+1)
		if errors.Is(err, unix.EINTR) || n == 0 {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		m, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if m == 0 {
			return nil
		}
	}
}

// waitConnect polls a connecting socket until it is writable or timeout has
// passed since start, then reads SO_ERROR.
func waitConnect(fd int, start time.Time, timeout time.Duration) ProbeResult {
	deadline := start.Add(timeout)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return ProbeResult{Outcome: TimedOut, Latency: time.Since(start)}
		}
		n, err := unix.Poll(pfd, int(left/time.Millisecond)+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return ProbeResult{Outcome: Failed, Latency: time.Since(start), Err: fmt.Errorf("poll: %w", err)}
		}
		if n == 0 {
			continue
		}
		soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return ProbeResult{Outcome: Failed, Latency: time.Since(start), Err: fmt.Errorf("getsockopt SO_ERROR: %w", err)}
		}
		if soErr != 0 {
			return ProbeResult{Outcome: Failed, Latency: time.Since(start), Err: unix.Errno(soErr)}
		}
		return ProbeResult{Outcome: Connected, Latency: time.Since(start)}
	}
}

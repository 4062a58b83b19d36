package analyze_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/snapdiag/snapdiag/lab"
	"golang.org/x/sys/unix"
)

// Incidents the lab package has no scenario for, built from its public
// pieces (Listen, Connect, Blackhole, Do): the ACK-time accept-queue
// overflow of docs/kernel-listen-path.md §6 (b) phase B, an application that
// accepts too slowly, and clients of a server that closes first while its
// TIME_WAIT table is full. Every loop here is bounded in time and ends at the
// lab's cleanup.

// counterRise waits until the server's counter has risen by at least n
// since before, and returns the rise.
func counterRise(l *lab.Lab, before lab.Counters, name string, n int64, timeout time.Duration) (int64, error) {
	var d int64
	err := lab.WaitFor(nil, timeout, 0, fmt.Sprintf("%s to rise by %d", name, n), func() (bool, string, error) {
		c, err := l.Counters(l.Server)
		if err != nil {
			return false, "", err
		}
		d = c[name] - before[name]
		return d >= n, fmt.Sprintf("+%d", d), nil
	})
	return d, err
}

// ackBurst is the outcome of one ACK-time overflow: the clients of the
// burst, and how their sockets ended on the client side.
type ackBurst struct {
	Conns *lab.Conns
	// Established and Reset count the burst's client sockets in ESTABLISHED
	// and in CLOSE (reset by the server: ECONNRESET) once the third ACKs were
	// handled.
	Established, Reset int
	// Overflows is the rise of ListenOverflows during the burst.
	Overflows int64
}

// ackTimeOverflow is phase B of docs/kernel-listen-path.md §6 (b): the accept queue of ln (a listener
// that is not accepting) holds queued connections with room for fewer than
// n; n SYNs from the black-holed bad client all become requests, because the
// queue is not full when they arrive; then the bad client is let through, so
// the SYN-ACK retransmits reach it and its n third ACKs arrive together.
// Those that fit are queued, the rest overflow at ACK time: with
// tcp_abort_on_overflow=1 the server answers them with a RST, with 0 it
// drops the ACK and keeps the request, and the client believes it is
// connected. It returns once the server has counted the overflows.
func ackTimeOverflow(l *lab.Lab, ln *lab.Listener, bad netip.Addr, n int) (*ackBurst, error) {
	before, err := l.Counters(l.Server)
	if err != nil {
		return nil, err
	}
	queued, err := l.ListenQueue(ln.Port())
	if err != nil {
		return nil, err
	}
	room := ln.Backlog + 1 - queued // sk_acceptq_is_full() is Recv-Q > Send-Q
	if room >= n || room < 0 {
		return nil, fmt.Errorf("ack-time overflow: %d queued, backlog %d: %d clients would not overflow", queued, ln.Backlog, n)
	}
	if err := l.Blackhole(bad); err != nil {
		return nil, err
	}
	b := &ackBurst{}
	if b.Conns, err = l.Connect(bad, ln.Addr, n); err != nil {
		return nil, err
	}
	err = lab.WaitFor(nil, 5*time.Second, 0, fmt.Sprintf("%d requests on %s", n, ln.Addr), func() (bool, string, error) {
		got, err := l.SynRecv(ln.Port())
		return got >= n, fmt.Sprintf("%d SYN-RECV", got), err
	})
	if err != nil {
		return nil, err
	}
	if err := l.Unblackhole(bad); err != nil {
		return nil, err
	}
	// The first SYN-ACK retransmit (1 s) or the client's SYN retransmit
	// gets through now; each third ACK beyond the room overflows.
	if b.Overflows, err = counterRise(l, before, "TcpExt.ListenOverflows", int64(n-room), 6*time.Second); err != nil {
		return nil, err
	}
	err = lab.WaitFor(nil, 3*time.Second, 0, "the burst's client sockets to settle", func() (bool, string, error) {
		states, err := b.Conns.States()
		if err != nil {
			return false, "", err
		}
		b.Established, b.Reset = 0, 0
		for _, s := range states {
			switch s {
			case lab.StateEstablished:
				b.Established++
			case lab.StateClose:
				b.Reset++
			}
		}
		return b.Established+b.Reset == n, fmt.Sprintf("%v", states), nil
	})
	return b, err
}

// acceptSome takes up to n connections off ln's accept queue (ln must be a
// NeverAccept listener, whose descriptor the test drives) and closes them,
// waiting up to timeout for them to arrive; it returns how many it took.
func acceptSome(ln *lab.Listener, n int, timeout time.Duration) int {
	got := 0
	deadline := time.Now().Add(timeout)
	pfd := []unix.PollFd{{Fd: int32(ln.FD()), Events: unix.POLLIN}}
	for got < n {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		if _, err := unix.Poll(pfd, int(min(left, 50*time.Millisecond)/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
			break
		}
		for got < n {
			fd, _, err := unix.Accept4(ln.FD(), unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
			if err != nil {
				break
			}
			unix.Close(fd)
			got++
		}
	}
	return got
}

// background runs fn in a goroutine until stop is called or the lab is torn
// down; stop waits for it and returns its error.
func background(l *lab.Lab, fn func(stop <-chan struct{}) error) (stop func() error) {
	quit := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		s := make(chan struct{})
		go func() {
			select {
			case <-quit:
			case <-l.Done():
			}
			close(s)
		}()
		done <- fn(s)
	}()
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			close(quit)
			err = <-done
		})
		return err
	}
}

// slowAcceptor accepts one connection every period from ln (a NeverAccept
// listener) and closes it: an application that is alive but slower than its
// clients.
func slowAcceptor(ln *lab.Listener, period time.Duration) func(stop <-chan struct{}) error {
	return func(stop <-chan struct{}) error {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return nil
			case <-t.C:
				acceptSome(ln, 1, period/2)
			}
		}
	}
}

// steadyClients has the good client open batch connections to ln every
// period, left to complete or not: clients arriving faster than a slow
// application accepts. Each batch is closed after hold, as a client that
// gives up would, which bounds the sockets held at any time.
func steadyClients(l *lab.Lab, from netip.Addr, to netip.AddrPort, batch int, period, hold time.Duration) func(stop <-chan struct{}) error {
	return func(stop <-chan struct{}) error {
		t := time.NewTicker(period)
		defer t.Stop()
		var open []*lab.Conns
		var opened []time.Time
		defer func() {
			for _, c := range open {
				c.Close()
			}
		}()
		for {
			select {
			case <-stop:
				return nil
			case now := <-t.C:
				for len(open) > 0 && now.Sub(opened[0]) > hold {
					open[0].Close()
					open, opened = open[1:], opened[1:]
				}
				c, err := l.Connect(from, to, batch)
				if err != nil {
					return err
				}
				open, opened = append(open, c), append(opened, now)
			}
		}
	}
}

// serverClosesFirst connects from the client address from to to (a
// listener that accepts and closes at once) every period, waits for the
// server's FIN and closes: the server holds the TIME_WAIT, and once its
// tcp_max_tw_buckets is reached every such close counts
// TCPTimeWaitOverflow instead.
func serverClosesFirst(l *lab.Lab, from netip.Addr, to netip.AddrPort, period time.Duration) func(stop <-chan struct{}) error {
	return func(stop <-chan struct{}) error {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return nil
			case <-t.C:
			}
			var c net.Conn
			// The socket is made on a thread inside the client namespace;
			// it stays there after Do returns.
			err := l.Do(l.Client, func() error {
				d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), Timeout: 2 * time.Second}
				var err error
				c, err = d.Dial("tcp", to.String())
				return err
			})
			if err != nil {
				return fmt.Errorf("connect %s -> %s: %w", from, to, err)
			}
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err = io.Copy(io.Discard, c)
			c.Close()
			if err != nil {
				return fmt.Errorf("wait for the server's FIN on %s: %w", to, err)
			}
		}
	}
}

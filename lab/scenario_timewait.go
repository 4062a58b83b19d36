package lab

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// TimeWaitOpts describe a TIME_WAIT bucket overflow on the server: the
// server closes first, so each connection leaves a TIME_WAIT socket on its
// side, until tcp_max_tw_buckets is reached and TCPTimeWaitOverflow counts
// the ones not kept.
type TimeWaitOpts struct {
	// Port is the listener's port; 0 means 8082.
	Port uint16
	// Buckets is written to the server's tcp_max_tw_buckets; 0 means 5.
	Buckets int
	// Conns is how many short connections the good client makes; 0 means 20.
	Conns int
	// IPv6 uses the lab's IPv6 addresses.
	IPv6 bool
}

// TimeWait is the outcome of TimeWaitOverflow.
type TimeWait struct {
	// Listener accepts and closes at once, so the server closes first.
	Listener *Listener
	// Completed counts the connections that ran to the server's FIN.
	Completed int
	// Overflows is the rise of the server's TcpExt.TCPTimeWaitOverflow.
	Overflows int64
	// Before holds the server's counters before the first connection.
	Before Counters
}

// TimeWaitOverflow lowers the server's tcp_max_tw_buckets, then makes Conns
// sequential connections that the server closes first; each one beyond the
// limit cannot get a timewait socket, and tcp_time_wait() counts
// TCPTimeWaitOverflow instead. It returns once the counter has risen by at
// least Conns-Buckets-1 and stopped moving.
func TimeWaitOverflow(l *Lab, o TimeWaitOpts) (*TimeWait, error) {
	if o.Port == 0 {
		o.Port = 8082
	}
	if o.Buckets == 0 {
		o.Buckets = 5
	}
	if o.Conns == 0 {
		o.Conns = 20
	}
	if o.Conns > MaxConns {
		return nil, fmt.Errorf("time wait: %d connections is more than %d", o.Conns, MaxConns)
	}
	server, _, good, ok := l.IPs(o.IPv6)
	if !ok {
		return nil, fmt.Errorf("time wait: the lab has no IPv6 (Options.IPv6)")
	}
	if err := l.Sysctl(l.Server, "net.ipv4.tcp_max_tw_buckets", strconv.Itoa(o.Buckets)); err != nil {
		return nil, fmt.Errorf("time wait: %w", err)
	}
	ln, err := l.Listen(netip.AddrPortFrom(server, o.Port), 128, AcceptClose)
	if err != nil {
		return nil, fmt.Errorf("time wait: %w", err)
	}
	tw := &TimeWait{Listener: ln}
	if tw.Before, err = l.Counters(l.Server); err != nil {
		return nil, fmt.Errorf("time wait: %w", err)
	}
	for range o.Conns {
		r, err := l.exchange(good, ln.Addr, connectTimeout, nil, true)
		if err != nil {
			return nil, fmt.Errorf("time wait: %w", err)
		}
		if r.Outcome == Connected {
			tw.Completed++
		}
	}
	want := max(int64(o.Conns-o.Buckets-1), 1)
	overflows := func() (int, error) {
		c, err := l.Counters(l.Server)
		if err != nil {
			return 0, err
		}
		return int(c["TcpExt.TCPTimeWaitOverflow"] - tw.Before["TcpExt.TCPTimeWaitOverflow"]), nil
	}
	n, err := waitStable(l.Done(), stateTimeout, 100*time.Millisecond, pollEvery,
		fmt.Sprintf("TCPTimeWaitOverflow to rise by %d", want), overflows, func(n int) bool { return int64(n) >= want })
	if err != nil {
		return nil, fmt.Errorf("time wait: %w", err)
	}
	tw.Overflows = int64(n)
	l.record("time wait on %s: buckets %d conns %d: completed %d, overflows +%d", ln.Addr, o.Buckets, o.Conns, tw.Completed, n)
	return tw, nil
}

package lab

import (
	"fmt"
	"net/netip"
	"strconv"
)

// AcceptQueueOpts describe an accept-queue overflow at SYN time: a listener
// that does not accept, whose full accept queue makes tcp_conn_request()
// drop new SYNs (ListenOverflows and ListenDrops count them).
type AcceptQueueOpts struct {
	// Port is the listener's port; 0 means 8081.
	Port uint16
	// Backlog is the listen() backlog; 0 means 8.
	Backlog int
	// Clients is how many connections the good client opens; 0 means
	// Backlog+3. The first Backlog+1 fill the accept queue; the SYNs of the
	// rest are dropped (ListenOverflows, since 4.10).
	Clients int
	// AbortOnOverflow is written to the server's tcp_abort_on_overflow.
	AbortOnOverflow bool
	// IPv6 uses the lab's IPv6 addresses.
	IPv6 bool
}

// AcceptQueue is a listener whose accept queue is full.
type AcceptQueue struct {
	// Listener never accepts; nil in a lab with Options.ServiceListeners,
	// where Service is the process that does not accept.
	Listener *Listener
	Service  *Proc
	// Conns are the good client's sockets: the first Queued are established.
	Conns *Conns
	// Queued is the accept-queue length reached: Backlog+1 when full
	// (sk_acceptq_is_full() uses >).
	Queued int
	// Overflowed is how many clients came after the queue was full.
	Overflowed int
	// Before holds the server's counters before the first connect.
	Before Counters
}

// AcceptQueueFull listens with the given backlog and never accepts, then has
// the good client connect one at a time, each awaited in the listener's
// queue, until the queue is full (Recv-Q Backlog+1, Send-Q Backlog in ss) or
// Clients have connected; the clients left over connect at once and AcceptQueueFull
// waits until the server has counted a ListenOverflows drop for each.
func AcceptQueueFull(l *Lab, o AcceptQueueOpts) (*AcceptQueue, error) {
	if o.Port == 0 {
		o.Port = 8081
	}
	if o.Backlog == 0 {
		o.Backlog = 8
	}
	if o.Clients == 0 {
		o.Clients = o.Backlog + 3
	}
	if o.Clients > MaxConns {
		return nil, fmt.Errorf("accept queue: %d clients is more than %d", o.Clients, MaxConns)
	}
	server, _, good, ok := l.IPs(o.IPv6)
	if !ok {
		return nil, fmt.Errorf("accept queue: the lab has no IPv6 (Options.IPv6)")
	}
	abort := "0"
	if o.AbortOnOverflow {
		abort = "1"
	}
	if err := l.Sysctl(l.Server, "net.ipv4.tcp_abort_on_overflow", abort); err != nil {
		return nil, fmt.Errorf("accept queue: %w", err)
	}
	target := netip.AddrPortFrom(server, o.Port)
	ln, svc, err := l.scenarioListen(target, o.Backlog, NeverAccept)
	if err != nil {
		return nil, fmt.Errorf("accept queue: %w", err)
	}
	a := &AcceptQueue{Listener: ln, Service: svc}
	if a.Before, err = l.Counters(l.Server); err != nil {
		return nil, fmt.Errorf("accept queue: %w", err)
	}
	if a.Conns, err = l.Connect(good, target, 0); err != nil {
		return nil, fmt.Errorf("accept queue: %w", err)
	}
	// The effective backlog is clamped by somaxconn at listen() time.
	somax, err := l.ReadSysctl(l.Server, "net.core.somaxconn")
	if err != nil {
		return nil, fmt.Errorf("accept queue: %w", err)
	}
	limit := o.Backlog
	if s, err := strconv.Atoi(somax); err == nil && s < limit {
		limit = s
	}
	for a.Queued < limit+1 && a.Conns.Len() < o.Clients {
		if err := l.connectMore(a.Conns, 1); err != nil {
			return nil, fmt.Errorf("accept queue: %w", err)
		}
		want := a.Queued + 1
		err := WaitFor(l.Done(), stateTimeout, pollEvery/5, fmt.Sprintf("accept queue of %s to reach %d", target, want),
			func() (bool, string, error) {
				n, err := l.ListenQueue(o.Port)
				return n >= want, strconv.Itoa(n), err
			})
		if err != nil {
			return nil, fmt.Errorf("accept queue: %w", err)
		}
		a.Queued = want
	}
	a.Overflowed = o.Clients - a.Conns.Len()
	if a.Overflowed > 0 {
		if err := l.connectMore(a.Conns, a.Overflowed); err != nil {
			return nil, fmt.Errorf("accept queue: %w", err)
		}
		err := WaitFor(l.Done(), stateTimeout, pollEvery, fmt.Sprintf("%d ListenOverflows on %s", a.Overflowed, target),
			func() (bool, string, error) {
				c, err := l.Counters(l.Server)
				if err != nil {
					return false, "", err
				}
				d := c["TcpExt.ListenOverflows"] - a.Before["TcpExt.ListenOverflows"]
				return d >= int64(a.Overflowed), fmt.Sprintf("+%d", d), nil
			})
		if err != nil {
			return nil, fmt.Errorf("accept queue: %w", err)
		}
	}
	l.record("accept queue on %s: backlog %d clients %d: queued %d, overflowed %d", target, o.Backlog, o.Clients, a.Queued, a.Overflowed)
	return a, nil
}

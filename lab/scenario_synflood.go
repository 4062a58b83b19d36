package lab

import (
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Scenario timing: how often to look, how long a value must hold to count as
// a plateau, and how long to wait at most.
const (
	pollEvery     = 25 * time.Millisecond
	plateauSettle = 300 * time.Millisecond
	stateTimeout  = 5 * time.Second
	// connectTimeout bounds one short connection of a scenario's load: long
	// enough for a busy test machine, where a handshake on the veth is
	// instant but the goroutine that waits for it may not be.
	connectTimeout = 3 * time.Second
	// MaxSustain bounds SYNFloodOpts.Sustain and BusyOpts.Window.
	MaxSustain = 60 * time.Second
)

// SYNFloodOpts describe a SYN-queue exhaustion: clients whose handshakes never
// complete (their SYN-ACKs are black-holed) fill a listener's request queue
// until new SYNs are dropped or answered with cookies. The zero value is the
// headline incident: backlog 16, cookies off, 40 half-open connections, IPv4,
// port 8080.
type SYNFloodOpts struct {
	// Port is the listener's port; 0 means 8080.
	Port uint16
	// Backlog is the listen() backlog; 0 means 16.
	Backlog int
	// Syncookies is written to the server's net.ipv4.tcp_syncookies: 0 (the
	// zero value: overflow drops SYNs), 1 (cookies on overflow) or 2 (always).
	Syncookies int
	// MaxSynBacklog, when not 0, is written to tcp_max_syn_backlog: with
	// cookies off its 3/4 rule caps the queue below a larger backlog.
	MaxSynBacklog int
	// BadClients is how many half-open connections the black-holed client
	// opens at once; 0 means 40.
	BadClients int
	// IPv6 floods over the lab's IPv6 addresses.
	IPv6 bool
	// Sustain, when positive (at most MaxSustain), keeps fresh SYNs coming:
	// the bad client opens BadClients more connections every second,
	// Sustain/1s batches (rounded up), so the drop counters rise steadily.
	// Without it one burst keeps the queue full for about 19 s, while the bad
	// client retransmits (see ClientSynRetries), and its dropped SYNs come
	// back at 1, 2, 3, 4, 5, 7 and 11 s.
	Sustain time.Duration
}

// Flood is a SYN flood in progress, at its plateau.
type Flood struct {
	// Listener accepts (and closes) whatever completes; nil in a lab with
	// Options.ServiceListeners, where Service is the process that does.
	Listener *Listener
	Service  *Proc
	// Target is the listener's address; Bad sends the flood, Good is left for
	// probes.
	Target    netip.AddrPort
	Bad, Good netip.Addr
	// SynRecv is the plateau: the server's SYN_RECV count on the port once it
	// stopped changing.
	SynRecv int
	// Before holds the server's counters just before the flood.
	Before Counters
	// Conns are the bad client's sockets (every batch when sustained).
	Conns *Conns

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// SYNFlood black-holes the bad client, listens with the given backlog
// (accepting), sets the sysctls, has the bad client open BadClients
// connections whose handshakes can never complete, and returns once the
// server's SYN_RECV count on the port has reached a plateau. With cookies off
// and backlog 16 the plateau is 17 on 6.13+ (SynQueueCap) and every further
// SYN counts TcpExt.TCPReqQFullDrop; with cookies on the plateau is the same
// and the overflow goes to TCPReqQFullDoCookies; with cookies 2 it is 0.
func SYNFlood(l *Lab, o SYNFloodOpts) (*Flood, error) {
	if o.Port == 0 {
		o.Port = 8080
	}
	if o.Backlog == 0 {
		o.Backlog = 16
	}
	if o.BadClients == 0 {
		o.BadClients = 40
	}
	if o.Syncookies < 0 || o.Syncookies > 2 {
		return nil, fmt.Errorf("syn flood: syncookies %d is not 0, 1 or 2", o.Syncookies)
	}
	if o.Sustain < 0 || o.Sustain > MaxSustain {
		return nil, fmt.Errorf("syn flood: sustain %v is outside 0..%v", o.Sustain, MaxSustain)
	}
	server, bad, good, ok := l.IPs(o.IPv6)
	if !ok {
		return nil, fmt.Errorf("syn flood: the lab has no IPv6 (Options.IPv6)")
	}
	if err := l.Sysctl(l.Server, "net.ipv4.tcp_syncookies", strconv.Itoa(o.Syncookies)); err != nil {
		return nil, fmt.Errorf("syn flood: %w", err)
	}
	if o.MaxSynBacklog != 0 {
		if err := l.Sysctl(l.Server, "net.ipv4.tcp_max_syn_backlog", strconv.Itoa(o.MaxSynBacklog)); err != nil {
			return nil, fmt.Errorf("syn flood: %w", err)
		}
	}
	if err := l.Blackhole(bad); err != nil {
		return nil, fmt.Errorf("syn flood: %w", err)
	}
	target := netip.AddrPortFrom(server, o.Port)
	ln, svc, err := l.scenarioListen(target, o.Backlog, AcceptClose)
	if err != nil {
		return nil, fmt.Errorf("syn flood: %w", err)
	}
	f := &Flood{Listener: ln, Service: svc, Target: target, Bad: bad, Good: good, stop: make(chan struct{}), done: make(chan struct{})}
	if f.Before, err = l.Counters(l.Server); err != nil {
		return nil, fmt.Errorf("syn flood: %w", err)
	}
	if f.Conns, err = l.Connect(bad, target, o.BadClients); err != nil {
		return nil, fmt.Errorf("syn flood: %w", err)
	}
	// Each bad SYN either becomes a request socket, or is dropped (counted in
	// ListenDrops: TCPReqQFullDrop or the 3/4 rule), or is answered with a
	// cookie (TCPReqQFullDoCookies). Wait until the server has accounted for
	// all of them, which on a loaded machine can take a while (ARP, softirq
	// deferred to ksoftirqd), then until the SYN_RECV count holds.
	err = WaitFor(l.Done(), stateTimeout, pollEvery, fmt.Sprintf("the server to see %d SYNs on %s", o.BadClients, target),
		func() (bool, string, error) {
			n, err := l.SynRecv(o.Port)
			if err != nil {
				return false, "", err
			}
			c, err := l.Counters(l.Server)
			if err != nil {
				return false, "", err
			}
			d := c.Sub(f.Before)
			seen := int64(n) + d["TcpExt.ListenDrops"] + d["TcpExt.TCPReqQFullDoCookies"]
			return seen >= int64(o.BadClients), fmt.Sprintf("%d SYN_RECV, ΔListenDrops %d, ΔTCPReqQFullDoCookies %d",
				n, d["TcpExt.ListenDrops"], d["TcpExt.TCPReqQFullDoCookies"]), nil
		})
	if err != nil {
		return nil, fmt.Errorf("syn flood: %w", err)
	}
	f.SynRecv, err = waitStable(l.Done(), stateTimeout, plateauSettle, pollEvery,
		fmt.Sprintf("SYN_RECV on %s to plateau", target),
		func() (int, error) { return l.SynRecv(o.Port) }, func(int) bool { return true })
	if err != nil {
		return nil, fmt.Errorf("syn flood: %w", err)
	}
	l.record("syn flood on %s: backlog %d cookies %d max_syn_backlog %d bad %d: plateau %d SYN_RECV",
		target, o.Backlog, o.Syncookies, o.MaxSynBacklog, o.BadClients, f.SynRecv)
	if o.Sustain <= 0 {
		close(f.done)
	} else {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer close(f.done)
			f.sustain(l, o)
		}()
		l.onCleanup(f.Stop)
	}
	return f, nil
}

// sustain opens another batch of bad connections every second, until it has
// opened ceil(Sustain/1s) batches, Stop is called or the lab is torn down.
func (f *Flood) sustain(l *Lab, o SYNFloodOpts) {
	batches := int((o.Sustain + time.Second - 1) / time.Second)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for range batches {
		select {
		case <-f.stop:
			return
		case <-l.Done():
			return
		case <-t.C:
		}
		if err := l.connectMore(f.Conns, o.BadClients); err != nil {
			l.record("syn flood on %s: sustain: %v", f.Target, err)
			return
		}
	}
}

// Stop ends a sustained flood's new connections (the half-open ones age out
// on their own) and waits for its loop. It is safe to call more than once.
func (f *Flood) Stop() {
	f.once.Do(func() { close(f.stop) })
	<-f.done
}

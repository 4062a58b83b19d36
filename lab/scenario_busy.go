package lab

import (
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// BusyOpts describe a healthy, busy server: the control case, where nothing
// should be found.
type BusyOpts struct {
	// Port is the listener's port; 0 means 8083.
	Port uint16
	// Backlog is the listen() backlog; 0 means 511 (nginx's default).
	Backlog int
	// Rate is connections per second from the good client; 0 means 50.
	Rate int
	// Window is how long the load runs (at most MaxSustain); 0 means 3 s.
	Window time.Duration
	// IPv6 uses the lab's IPv6 addresses.
	IPv6 bool
}

// BusyResult counts what a busy window did.
type BusyResult struct {
	Attempts, Connected, Failed int
	// MaxLatency is the slowest connect.
	MaxLatency time.Duration
}

// Busy is a running load on a healthy listener.
type Busy struct {
	// Listener accepts, reads each connection to its end and closes; nil in
	// a lab with Options.ServiceListeners, where Service is the process that
	// does.
	Listener *Listener
	Service  *Proc
	// Before holds the server's counters before the load began.
	Before Counters

	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	result BusyResult
}

// HealthyBusy starts a listener that serves every connection and a load of
// short connections from the good client (connect, send a line, close) at
// Rate per second for Window, bounded to Rate×Window connections. It returns
// once the first connection has been served; Wait returns the counts.
func HealthyBusy(l *Lab, o BusyOpts) (*Busy, error) {
	if o.Port == 0 {
		o.Port = 8083
	}
	if o.Backlog == 0 {
		o.Backlog = 511
	}
	if o.Rate == 0 {
		o.Rate = 50
	}
	if o.Window == 0 {
		o.Window = 3 * time.Second
	}
	if o.Rate < 1 || o.Rate > 1000 {
		return nil, fmt.Errorf("busy: rate %d is outside 1..1000", o.Rate)
	}
	if o.Window < 0 || o.Window > MaxSustain {
		return nil, fmt.Errorf("busy: window %v is outside 0..%v", o.Window, MaxSustain)
	}
	server, _, good, ok := l.IPs(o.IPv6)
	if !ok {
		return nil, fmt.Errorf("busy: the lab has no IPv6 (Options.IPv6)")
	}
	target := netip.AddrPortFrom(server, o.Port)
	ln, svc, err := l.scenarioListen(target, o.Backlog, AcceptDrain)
	if err != nil {
		return nil, fmt.Errorf("busy: %w", err)
	}
	b := &Busy{Listener: ln, Service: svc, stop: make(chan struct{}), done: make(chan struct{})}
	if b.Before, err = l.Counters(l.Server); err != nil {
		return nil, fmt.Errorf("busy: %w", err)
	}
	first, err := l.exchange(good, target, connectTimeout, []byte("ping\n"), false)
	if err != nil {
		return nil, fmt.Errorf("busy: %w", err)
	}
	if first.Outcome != Connected {
		return nil, fmt.Errorf("busy: first connection to %s: %s", target, first)
	}
	b.result = BusyResult{Attempts: 1, Connected: 1, MaxLatency: first.Latency}
	limit := int(int64(o.Rate) * int64(o.Window) / int64(time.Second))
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(b.done)
		end := time.Now().Add(o.Window)
		t := time.NewTicker(time.Second / time.Duration(o.Rate))
		defer t.Stop()
		for b.result.Attempts < limit {
			select {
			case <-b.stop:
				return
			case <-l.Done():
				return
			case now := <-t.C:
				if now.After(end) {
					return
				}
			}
			r, err := l.exchange(good, target, connectTimeout, []byte("ping\n"), false)
			b.result.Attempts++
			if err != nil || r.Outcome != Connected {
				b.result.Failed++
				continue
			}
			b.result.Connected++
			b.result.MaxLatency = max(b.result.MaxLatency, r.Latency)
		}
	}()
	l.onCleanup(func() { b.Stop() })
	return b, nil
}

// Wait waits for the window to end and returns the counts.
func (b *Busy) Wait() BusyResult {
	<-b.done
	return b.result
}

// Stop ends the load early and returns the counts.
func (b *Busy) Stop() BusyResult {
	b.once.Do(func() { close(b.stop) })
	return b.Wait()
}

// StopHealthy ends the load like Stop, and returns an error when any of its
// connections failed: the server was not healthy, and a test or self-test
// that needed a healthy control must not count on it.
func (b *Busy) StopHealthy() error {
	if r := b.Stop(); r.Failed > 0 {
		return fmt.Errorf("busy: the healthy service failed %d of %d connections", r.Failed, r.Attempts)
	}
	return nil
}

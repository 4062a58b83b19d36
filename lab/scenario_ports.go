package lab

import (
	"errors"
	"fmt"
	"net/netip"
)

// PortExhaustionOpts describe ephemeral-port exhaustion on the client: every
// port of its ip_local_port_range held by a TIME_WAIT socket to the same
// listener, so connect() fails with EADDRNOTAVAIL.
type PortExhaustionOpts struct {
	// Port is the listener's port; 0 means 8084.
	Port uint16
	// Ports is the size of the client's ip_local_port_range, starting at
	// 40000; 0 means 10.
	Ports int
	// IPv6 uses the lab's IPv6 addresses.
	IPv6 bool
}

// PortExhaustion is the outcome of ExhaustPorts.
type PortExhaustion struct {
	// Listener drains each connection and closes after the client.
	Listener *Listener
	// Range is the client's ip_local_port_range.
	Range [2]int
	// Connected counts the connections made before the range ran out.
	Connected int
	// Err is the error of the first connect that failed: EADDRNOTAVAIL once
	// every port of the range holds a TIME_WAIT to the listener.
	Err error
}

// ExhaustPorts narrows the client's port range, then has the good client make
// short connections to one listener, closing first so each leaves a
// TIME_WAIT socket holding its port, until connect() fails (at most Ports+2
// attempts). No kernel counter moves; the client sees EADDRNOTAVAIL.
func ExhaustPorts(l *Lab, o PortExhaustionOpts) (*PortExhaustion, error) {
	if o.Port == 0 {
		o.Port = 8084
	}
	if o.Ports == 0 {
		o.Ports = 10
	}
	if o.Ports < 1 || o.Ports > 1000 {
		return nil, fmt.Errorf("port exhaustion: %d ports is outside 1..1000", o.Ports)
	}
	server, _, good, ok := l.IPs(o.IPv6)
	if !ok {
		return nil, fmt.Errorf("port exhaustion: the lab has no IPv6 (Options.IPv6)")
	}
	p := &PortExhaustion{Range: [2]int{40000, 40000 + o.Ports - 1}}
	// ip_local_port_range is per netns but shared by IPv4 and IPv6.
	if err := l.Sysctl(l.Client, "net.ipv4.ip_local_port_range", fmt.Sprintf("%d %d", p.Range[0], p.Range[1])); err != nil {
		return nil, fmt.Errorf("port exhaustion: %w", err)
	}
	ln, err := l.Listen(netip.AddrPortFrom(server, o.Port), 128, AcceptDrain)
	if err != nil {
		return nil, fmt.Errorf("port exhaustion: %w", err)
	}
	p.Listener = ln
	for range o.Ports + 2 {
		r, err := l.exchange(good, ln.Addr, connectTimeout, []byte("x"), false)
		if err != nil {
			return nil, fmt.Errorf("port exhaustion: %w", err)
		}
		if r.Outcome != Connected {
			p.Err = r.Err
			if p.Err == nil {
				p.Err = errors.New(r.String())
			}
			break
		}
		p.Connected++
	}
	l.record("port exhaustion to %s: range %v: %d connected, then %v", ln.Addr, p.Range, p.Connected, p.Err)
	if p.Err == nil {
		return p, fmt.Errorf("port exhaustion: %d connections and the range of %d ports is not exhausted", p.Connected, o.Ports)
	}
	return p, nil
}

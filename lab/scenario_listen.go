package lab

import (
	"context"
	"net/netip"
)

// scenarioListen opens a scenario's listener: in this process (Lab.Listen),
// or, in a lab opened with Options.ServiceListeners, in a service process
// (Lab.Service), which then owns the socket as a real service would. One of
// the returned Listener and Proc is nil.
func (l *Lab) scenarioListen(addr netip.AddrPort, backlog int, mode AcceptMode) (*Listener, *Proc, error) {
	if !l.inService {
		ln, err := l.Listen(addr, backlog, mode)
		return ln, nil, err
	}
	p, err := l.Service(context.Background(), addr, backlog, mode)
	return nil, p, err
}

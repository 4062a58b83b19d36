package analyze

import (
	"io"
	"net/netip"

	"github.com/snapdiag/snapdiag/bundle"
)

// SynRecvStats aggregates the SYN-RECV request sockets of one local port.
type SynRecvStats struct {
	Count int
	// Retransmitted counts requests whose SYN-ACK was re-sent at least once;
	// MaxRetrans is the highest retransmit count seen. Requests with many
	// retransmits belong to clients that never complete the handshake: the
	// kernel re-sends their SYN-ACK until tcp_synack_retries is spent.
	Retransmitted int
	MaxRetrans    int
	// Sources counts requests by remote address, at most maxSources addresses.
	Sources map[string]int
}

// Tuple is an outgoing connection's (source address, destination address,
// destination port): connect() needs a free local port per tuple.
type Tuple struct {
	Src, Dst netip.Addr
	DPort    uint16
}

// SocketAggregates is what the rules need from sockets/tcp.jsonl, kept while
// streaming it instead of holding every row.
type SocketAggregates struct {
	Rows    int
	Invalid int
	ByState map[string]int
	// SynRecv is keyed by local port.
	SynRecv map[int]*SynRecvStats
	// Outgoing counts non-LISTEN sockets whose local port lies in
	// ip_local_port_range, per tuple; TimeWait counts the TIME-WAIT ones.
	Outgoing map[Tuple]int
	TimeWait map[Tuple]int
}

// maxSources bounds the per-port source maps.
const maxSources = 4096

// parseSocketsTCP streams sockets/tcp.jsonl. portLo and portHi are
// ip_local_port_range (0, 0 when unknown: no tuple counts are kept). Rows
// that do not decode are counted in Invalid and skipped.
func parseSocketsTCP(r io.Reader, portLo, portHi int) (*SocketAggregates, error) {
	agg := &SocketAggregates{
		ByState:  map[string]int{},
		SynRecv:  map[int]*SynRecvStats{},
		Outgoing: map[Tuple]int{},
		TimeWait: map[Tuple]int{},
	}
	// The aggregates need no tcp_info: skipping it saves most of the
	// decoding of a large table.
	invalid, err := bundle.NewSocketReader(r).SkipInfo().ForEach(func(s *bundle.Socket) error {
		agg.add(s, portLo, portHi)
		return nil
	})
	agg.Invalid = invalid
	return agg, err
}

func (a *SocketAggregates) add(row *bundle.Socket, portLo, portHi int) {
	a.Rows++
	a.ByState[row.State]++
	switch row.State {
	case "LISTEN":
		return
	case "SYN-RECV":
		_, lport, ok := splitHostPort(row.Local)
		if !ok {
			return
		}
		st := a.SynRecv[lport]
		if st == nil {
			st = &SynRecvStats{Sources: map[string]int{}}
			a.SynRecv[lport] = st
		}
		st.Count++
		if row.Retrans > 0 {
			st.Retransmitted++
		}
		st.MaxRetrans = max(st.MaxRetrans, int(row.Retrans))
		if raddr, _, ok := splitHostPort(row.Remote); ok {
			if _, seen := st.Sources[raddr.String()]; seen || len(st.Sources) < maxSources {
				st.Sources[raddr.String()]++
			}
		}
		return
	}
	if portHi == 0 {
		return
	}
	laddr, lport, ok1 := splitHostPort(row.Local)
	raddr, rport, ok2 := splitHostPort(row.Remote)
	if !ok1 || !ok2 || lport < portLo || lport > portHi {
		return
	}
	t := Tuple{Src: laddr, Dst: raddr, DPort: uint16(rport)}
	a.Outgoing[t]++
	if row.State == "TIME-WAIT" {
		a.TimeWait[t]++
	}
}

// splitHostPort parses "10.0.0.1:143", "[::1]:143" or "[fe80::1%eth0]:22".
func splitHostPort(s string) (netip.Addr, int, bool) {
	host, p, ok := bundle.SplitAddrPort(s)
	if !ok {
		return netip.Addr{}, 0, false
	}
	if host == "*" {
		return netip.IPv4Unspecified(), int(p), true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	return a.Unmap(), int(p), true
}

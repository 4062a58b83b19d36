package analyze

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
)

// PortExhaustion diagnoses ephemeral-port-exhaustion: outgoing connections
// to one destination use up the local port range.
type PortExhaustion struct {
	// Severity is critical at 95% of the range, warning at 80%.
	Severity Severity
	// Tuples are the (source, destination, port) tuples at 80% of the
	// range or more, most sockets first.
	Tuples []PortTuple
	// RangeLow and RangeHigh are ip_local_port_range; Size the ports in it.
	RangeLow, RangeHigh, Size int64
	// Truncated is true when the socket table was capped at capture, so
	// the counts are low; Total is the real number of sockets then.
	Truncated bool
	Total     int
	// WidenTo is the wider range to set, [0, 0] when the range is already
	// 10000-65000 or wider; Reserve are listener ports inside the wider
	// range, to keep out of it.
	WidenTo [2]int64
	Reserve []string
	// TWReuse is true when tcp_tw_reuse should be 1: timestamps on, some
	// of the tuple's sockets in TIME_WAIT, and reuse off.
	TWReuse bool
}

// PortTuple is one outgoing tuple's sockets.
type PortTuple struct {
	Tuple
	Sockets, TimeWait int
}

// diagnosePorts finds ephemeral-port-exhaustion: connect() needs a free local
// port per (source, destination, destination port); no kernel counter moves
// when it fails with EADDRNOTAVAIL, so the evidence is the socket table:
// sockets per tuple against the size of ip_local_port_range.
func diagnosePorts(s *Snapshot) *PortExhaustion {
	if s.Sockets == nil || len(s.Sockets.Outgoing) == 0 {
		return nil
	}
	r, ok := s.Sysctls.Ints("net.ipv4.ip_local_port_range")
	if !ok || len(r) != 2 || r[1] < r[0] {
		return nil
	}
	d := &PortExhaustion{RangeLow: r[0], RangeHigh: r[1], Size: r[1] - r[0] + 1}
	for t, n := range s.Sockets.Outgoing {
		if float64(n) >= 0.8*float64(d.Size) {
			d.Tuples = append(d.Tuples, PortTuple{t, n, s.Sockets.TimeWait[t]})
		}
	}
	if len(d.Tuples) == 0 {
		return nil
	}
	sort.Slice(d.Tuples, func(i, j int) bool {
		if d.Tuples[i].Sockets != d.Tuples[j].Sockets {
			return d.Tuples[i].Sockets > d.Tuples[j].Sockets
		}
		return d.Tuples[i].Dst.Less(d.Tuples[j].Dst)
	})
	h := d.Tuples[0]
	d.Severity = Warning
	if float64(h.Sockets) >= 0.95*float64(d.Size) {
		d.Severity = Critical
	}
	if m := s.Manifest; m != nil && m.Sockets != nil && m.Sockets.Truncated {
		d.Truncated, d.Total = true, m.Sockets.Total
	}
	if d.RangeLow > 10000 || d.RangeHigh < 65000 {
		lo, hi := min(d.RangeLow, 10000), max(d.RangeHigh, 65000)
		d.WidenTo = [2]int64{lo, hi}
		var reserve []string
		for _, l := range s.Listeners() {
			if int64(l.Port) >= lo && int64(l.Port) <= hi {
				reserve = append(reserve, strconv.Itoa(l.Port))
			}
		}
		d.Reserve = uniq(reserve)
	}
	if ts, _ := s.Sysctls.Int("net.ipv4.tcp_timestamps"); ts != 0 && h.TimeWait > 0 {
		if reuse, ok := s.Sysctls.Int("net.ipv4.tcp_tw_reuse"); ok && reuse != 1 {
			d.TWReuse = true
		}
	}
	return d
}

func (d *PortExhaustion) render(s *Snapshot) Finding {
	h := d.Tuples[0]
	dst := fmt.Sprintf("%s:%d", h.Dst, h.DPort)
	if h.Dst.Is6() {
		dst = fmt.Sprintf("[%s]:%d", h.Dst, h.DPort)
	}
	f := Finding{
		ID:       IDEphemeralPorts,
		Severity: d.Severity,
		Key:      "net.ipv4.ip_local_port_range",
		Title:    fmt.Sprintf("Outgoing connections to %s are running out of local ports", dst),
	}
	var list []string
	for _, x := range d.Tuples {
		list = append(list, fmt.Sprintf("%s -> %s:%d: %d (%d TIME-WAIT)", x.Src, x.Dst, x.DPort, x.Sockets, x.TimeWait))
	}
	share := 100 * float64(h.Sockets) / float64(d.Size)
	f.Evidence = append(f.Evidence,
		evValue(bundle.PathSocketsTCP, "sockets from "+h.Src.String()+" to "+dst, float64(h.Sockets),
			fmt.Sprintf("%d of them TIME-WAIT; %.0f%% of the %d ports in ip_local_port_range %d-%d", h.TimeWait, share, d.Size, d.RangeLow, d.RangeHigh)))
	if len(d.Tuples) > 1 {
		f.Evidence = append(f.Evidence, evValue(bundle.PathSocketsTCP, "tuples near the limit", float64(len(d.Tuples)), shortList(list, 5)))
	}
	if d.Truncated {
		f.Evidence = append(f.Evidence, evValue(bundle.PathManifest, "sockets.total", float64(d.Total),
			"the socket table was capped: real counts are higher"))
	}
	f.Summary = fmt.Sprintf("%d sockets go from %s to %s, %.0f%% of the %d local ports available per destination. "+
		"When none is left, connect() fails with EADDRNOTAVAIL (\"Cannot assign requested address\") and no kernel counter moves.",
		h.Sockets, h.Src, dst, share, d.Size)
	f.Recommendations = append(f.Recommendations, note("app",
		"reuse connections to this destination (pooling, keep-alive), or spread them over more source or destination addresses; use IP_BIND_ADDRESS_NO_PORT when binding before connect()"))
	if d.WidenTo != [2]int64{} {
		f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.ip_local_port_range", fmt.Sprintf("%d %d", d.WidenTo[0], d.WidenTo[1]),
			"a wider range gives more ports per destination; keep the listeners' ports out of it with ip_local_reserved_ports"))
		if len(d.Reserve) > 0 {
			f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.ip_local_reserved_ports", strings.Join(d.Reserve, ","),
				"these listener ports fall inside the widened range"))
		}
	}
	if d.TWReuse {
		f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.tcp_tw_reuse", "1",
			"lets outgoing connect() reuse a TIME_WAIT port after 1 s when timestamps are on; it does not affect inbound connections"))
	}
	return f
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

package analyze

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
)

// rulePorts is R-PORTS (section 7, rule 10): connect() needs a free local
// port per (source, destination, destination port); no kernel counter moves
// when it fails with EADDRNOTAVAIL, so the evidence is the socket table:
// sockets per tuple against the size of ip_local_port_range.
func rulePorts(s *Snapshot) []Finding {
	if s.Sockets == nil || len(s.Sockets.Outgoing) == 0 {
		return nil
	}
	r, ok := s.Sysctls.Ints("net.ipv4.ip_local_port_range")
	if !ok || len(r) != 2 || r[1] < r[0] {
		return nil
	}
	size := r[1] - r[0] + 1
	type hot struct {
		t     Tuple
		n, tw int
	}
	var hots []hot
	for t, n := range s.Sockets.Outgoing {
		if float64(n) >= 0.8*float64(size) {
			hots = append(hots, hot{t, n, s.Sockets.TimeWait[t]})
		}
	}
	if len(hots) == 0 {
		return nil
	}
	sort.Slice(hots, func(i, j int) bool {
		if hots[i].n != hots[j].n {
			return hots[i].n > hots[j].n
		}
		return hots[i].t.Dst.Less(hots[j].t.Dst)
	})
	h := hots[0]
	sev := Warning
	if float64(h.n) >= 0.95*float64(size) {
		sev = Critical
	}
	dst := fmt.Sprintf("%s:%d", h.t.Dst, h.t.DPort)
	if h.t.Dst.Is6() {
		dst = fmt.Sprintf("[%s]:%d", h.t.Dst, h.t.DPort)
	}
	f := Finding{
		ID:       IDEphemeralPorts,
		Severity: sev,
		Key:      "net.ipv4.ip_local_port_range",
		Title:    fmt.Sprintf("Outgoing connections to %s are running out of local ports", dst),
	}
	var list []string
	for _, x := range hots {
		list = append(list, fmt.Sprintf("%s -> %s:%d: %d (%d TIME-WAIT)", x.t.Src, x.t.Dst, x.t.DPort, x.n, x.tw))
	}
	f.Evidence = append(f.Evidence,
		evValue(bundle.PathSocketsTCP, "sockets from "+h.t.Src.String()+" to "+dst, float64(h.n),
			fmt.Sprintf("%d of them TIME-WAIT; %.0f%% of the %d ports in ip_local_port_range %d-%d", h.tw, 100*float64(h.n)/float64(size), size, r[0], r[1])))
	if len(hots) > 1 {
		f.Evidence = append(f.Evidence, evValue(bundle.PathSocketsTCP, "tuples near the limit", float64(len(hots)), shortList(list, 5)))
	}
	if s.Manifest != nil && s.Manifest.Sockets != nil && s.Manifest.Sockets.Truncated {
		f.Evidence = append(f.Evidence, evValue(bundle.PathManifest, "sockets.total", float64(s.Manifest.Sockets.Total),
			"the socket table was capped: real counts are higher"))
	}
	f.Summary = fmt.Sprintf("%d sockets go from %s to %s, %.0f%% of the %d local ports available per destination. "+
		"When none is left, connect() fails with EADDRNOTAVAIL (\"Cannot assign requested address\") and no kernel counter moves.",
		h.n, h.t.Src, dst, 100*float64(h.n)/float64(size), size)
	f.Recommendations = append(f.Recommendations, note("app",
		"reuse connections to this destination (pooling, keep-alive), or spread them over more source or destination addresses; use IP_BIND_ADDRESS_NO_PORT when binding before connect()"))
	if r[0] > 10000 || r[1] < 65000 {
		lo, hi := min(r[0], 10000), max(r[1], 65000)
		f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.ip_local_port_range", fmt.Sprintf("%d %d", lo, hi),
			"a wider range gives more ports per destination; keep the listeners' ports out of it with ip_local_reserved_ports"))
		var reserve []string
		for _, l := range s.Listeners() {
			if int64(l.Port) >= lo && int64(l.Port) <= hi {
				reserve = append(reserve, strconv.Itoa(l.Port))
			}
		}
		if len(reserve) > 0 {
			reserve = uniq(reserve)
			f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.ip_local_reserved_ports", strings.Join(reserve, ","),
				"these listener ports fall inside the widened range"))
		}
	}
	if ts, _ := s.Sysctls.Int("net.ipv4.tcp_timestamps"); ts != 0 && h.tw > 0 {
		if reuse, ok := s.Sysctls.Int("net.ipv4.tcp_tw_reuse"); ok && reuse != 1 {
			f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.tcp_tw_reuse", "1",
				"lets outgoing connect() reuse a TIME_WAIT port after 1 s when timestamps are on; it does not affect inbound connections"))
		}
	}
	return []Finding{f}
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

package analyze

import (
	"fmt"
)

// ruleHistory reports listen-path drops that happened since boot but not
// during the capture. Cumulative counters are history: at most info, so a
// server that had an incident earlier and is healthy now gets no warning.
func ruleHistory(s *Snapshot) []Finding {
	metrics := []Counter{tcpExtListenOverflows, tcpExtListenDrops, tcpExtTCPReqQFullDrop, tcpExtTCPReqQFullDoCookies}
	if c, _ := syncookies(s); c == 2 {
		// Mode 2 counts TCPReqQFullDoCookies for every SYN, full queue or
		// not (section 1.5): neither its total nor its movement is a drop.
		metrics = metrics[:3]
	}
	var ev []Evidence
	moved := false
	for _, m := range metrics {
		d := s.Delta(m)
		if d.Moved() {
			moved = true
		}
		v, src, ok := s.Value(m)
		if ok && v > 0 {
			ev = append(ev, Evidence{Source: src, Metric: m.String(), Value: float64(v), Delta: float64(d.Delta), PerSecond: round2(d.PerSecond),
				Note: "total since boot"})
		}
	}
	if moved || len(ev) == 0 {
		return nil
	}
	f := Finding{
		ID:       IDListenDropsHistory,
		Severity: Info,
		Title:    "Listen-path drops happened earlier, not during this capture",
		Evidence: ev,
		Summary: fmt.Sprintf("These counters are totals since boot and did not move %s: whatever overflowed happened before the capture. "+
			"They say nothing about now; compare with a capture taken while the problem happens.", window(s)),
	}
	f.Evidence = append(f.Evidence, synFloodLog(s, 3)...)
	return []Finding{f}
}

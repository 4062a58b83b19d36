package analyze

import (
	"fmt"
)

// DropHistory diagnoses listen-drops-history: listen-path counters that are
// above zero since boot and did not move during the capture.
type DropHistory struct {
	// Totals are the counters above zero: Last is the total since boot,
	// Delta its (nil) movement during the capture.
	Totals []Delta
	// CookiesEverySYN is tcp_syncookies=2, under which
	// TCPReqQFullDoCookies counts every SYN and is left out.
	CookiesEverySYN bool
}

// diagnoseHistory reports listen-path drops that happened since boot but not
// during the capture. Cumulative counters are history: at most info, so a
// server that had an incident earlier and is healthy now gets no warning.
func diagnoseHistory(s *Snapshot) *DropHistory {
	d := &DropHistory{}
	counters := []Counter{tcpExtListenOverflows, tcpExtListenDrops, tcpExtTCPReqQFullDrop, tcpExtTCPReqQFullDoCookies}
	if c, _ := syncookies(s); c == 2 {
		// Mode 2 counts TCPReqQFullDoCookies for every SYN, full queue or
		// not (tcp_syn_flood_action() is asked for every SYN): neither its
		// total nor its movement is a drop.
		counters, d.CookiesEverySYN = counters[:3], true
	}
	for _, c := range counters {
		t := s.Delta(c)
		if t.Moved() {
			return nil // happening now: the other rules say what
		}
		if t.Samples > 0 && t.Last > 0 {
			d.Totals = append(d.Totals, t)
		}
	}
	if len(d.Totals) == 0 {
		return nil
	}
	return d
}

func (d *DropHistory) render(s *Snapshot) Finding {
	f := Finding{
		ID:       IDListenDropsHistory,
		Severity: Info,
		Title:    "Listen-path drops happened earlier, not during this capture",
		Summary: fmt.Sprintf("These counters are totals since boot and did not move %s: whatever overflowed happened before the capture. "+
			"They say nothing about now; compare with a capture taken while the problem happens.", window(s)),
	}
	for _, t := range d.Totals {
		f.Evidence = append(f.Evidence, evDelta(t, "total since boot"))
	}
	f.Evidence = append(f.Evidence, synFloodLog(s, 3)...)
	return f
}

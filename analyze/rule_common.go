package analyze

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
)

// syncookies returns net.ipv4.tcp_syncookies and whether the bundle had it;
// without it the kernel default, 1, is assumed.
func syncookies(s *Snapshot) (int64, bool) {
	v, ok := s.Sysctls.Int("net.ipv4.tcp_syncookies")
	if !ok {
		return 1, false
	}
	return v, true
}

// dropSeverity grades listen-path drops: warning above 1% of attempts
// (PassiveOpens + drops) or 1 drop per second, critical above 5% or 5 drops
// per second; a busy server loses a few SYNs to bursts, a sick one many.
// floor is the least it returns.
func dropSeverity(drops Delta, passive Delta, floor Severity) Severity {
	sev := floor
	attempts := float64(drops.Delta)
	if passive.OK {
		attempts += float64(passive.Delta)
	}
	ratio := 0.0
	if attempts > 0 {
		ratio = float64(drops.Delta) / attempts
	}
	switch {
	case ratio > 0.05 || drops.PerSecond > 5:
		sev = max(sev, Critical)
	case ratio > 0.01 || drops.PerSecond > 1:
		sev = max(sev, Warning)
	}
	return sev
}

// kmsgEvidence returns evidence for the kernel log lines containing substr,
// at most n of them (the newest).
func kmsgEvidence(s *Snapshot, substr string, n int) []Evidence {
	lines := s.KmsgMatching(substr)
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var out []Evidence
	for _, l := range lines {
		when := ""
		if l.Usec >= 0 {
			when = fmt.Sprintf(" (at %.1f s after boot)", float64(l.Usec)/1e6)
		}
		out = append(out, Evidence{Source: kmsgSource(s), Metric: "kernel log", Value: 1, Note: l.Message + when})
	}
	return out
}

func kmsgSource(s *Snapshot) string {
	if s.kmsgNet {
		return bundle.PathKmsgNet
	}
	return bundle.PathKmsg
}

// perSecond renders a rate for prose.
func perSecond(d Delta) string {
	if d.PerSecond > 0 {
		return fmt.Sprintf("%d (%.1f/s)", d.Delta, d.PerSecond)
	}
	return fmt.Sprintf("%d", d.Delta)
}

// count is n and noun, the noun plural unless n is one: "1 sample",
// "3 samples". plural is the noun's plural form.
func count(n int, noun, plural string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %s", n, plural)
}

// window renders the capture window for prose.
func window(s *Snapshot) string {
	w := s.Window()
	if w <= 0 {
		return "over " + count(len(s.Samples), "sample", "samples")
	}
	return fmt.Sprintf("in %.1f s", w)
}

// names renders listeners for prose.
func names(ls []*ListenerState) string {
	var n []string
	for _, l := range ls {
		s := l.Local
		switch {
		case l.ReusePort:
			s += fmt.Sprintf(" (socket inode %d, %s pid %d)", l.Inode, l.Comm, l.PID)
		case l.Comm != "":
			s += fmt.Sprintf(" (%s, pid %d)", l.Comm, l.PID)
		}
		n = append(n, s)
	}
	return shortList(n, 3)
}

// listenerFinding starts a finding about listener l (nil when none is
// named), attributed to its process.
func listenerFinding(id string, sev Severity, l *ListenerState) Finding {
	return Finding{ID: id, Severity: sev, Listener: l.name(), Process: l.process()}
}

// first returns ls[0] or nil.
func first(ls []*ListenerState) *ListenerState {
	if len(ls) == 0 {
		return nil
	}
	return ls[0]
}

// titleListener is " on ADDR:PORT" or "". For one socket of an
// SO_REUSEPORT group it names the socket too, since its siblings share the
// address: " on ADDR:PORT (socket inode N, pid P)".
func titleListener(l *ListenerState) string {
	if l == nil {
		return ""
	}
	if l.ReusePort {
		return fmt.Sprintf(" on %s (socket inode %d, pid %d)", l.Local, l.Inode, l.PID)
	}
	return " on " + l.Local
}

// packetEvidence summarises the packet sample's handshakes.
func packetEvidence(s *Snapshot) []Evidence {
	pa := s.Packets
	if pa == nil {
		return nil
	}
	var out []Evidence
	if pa.HalfOpen > 0 {
		var top []string
		for _, st := range pa.Sources {
			if st.HalfOpen > 0 {
				top = append(top, fmt.Sprintf("%s: %d", st.Addr, st.HalfOpen))
			}
		}
		out = append(out, evSampled("half-open handshakes", pa.HalfOpen, pa.HalfOpenEst, pa.Scale,
			"SYN-ACK sent, never ACKed; by source: "+shortList(top, 5)))
	}
	if pa.Unanswered > 0 {
		out = append(out, evSampled("unanswered SYNs", pa.Unanswered, pa.UnansweredEst, pa.Scale,
			"clients re-sent the same ISN and got no SYN-ACK: the SYN was dropped"))
	}
	if pa.SYNACKRetrans > 0 {
		out = append(out, evSampled("SYN-ACK retransmits", pa.SYNACKRetrans, float64(pa.SYNACKRetrans)*pa.Scale, pa.Scale,
			"the server re-sent SYN-ACKs that were never answered"))
	}
	return out
}

// synFloodLog returns evidence for the "Possible SYN flooding on port
// ADDR:PORT" lines about this bundle's listeners. The kernel log is shared
// by every network namespace, so when the bundle says which sockets matter
// (listeners, else the packet sample's servers), lines about others are left
// out: a wildcard listener matches its port, anything else its address too.
func synFloodLog(s *Snapshot, n int) []Evidence {
	ports := map[int]bool{}
	exact := map[netip.AddrPort]bool{}
	for _, l := range s.Listeners() {
		a, p, ok := splitHostPort(l.Local)
		if ok && !a.IsUnspecified() {
			exact[netip.AddrPortFrom(a, uint16(p))] = true
		} else {
			ports[l.Port] = true
		}
	}
	if len(ports) == 0 && len(exact) == 0 && s.Packets != nil {
		for _, h := range s.Packets.Flows {
			exact[h.Server] = true
		}
	}
	ev := kmsgEvidence(s, "Possible SYN flooding", 1000)
	if len(ports) > 0 || len(exact) > 0 {
		kept := ev[:0]
		for _, e := range ev {
			a, p, ok := splitHostPort(synFloodHostPort(e.Note))
			if !ok || ports[p] || exact[netip.AddrPortFrom(a, uint16(p))] {
				kept = append(kept, e)
			}
		}
		ev = kept
	}
	if len(ev) > n {
		ev = ev[len(ev)-n:]
	}
	return ev
}

// synFloodHostPort extracts ADDR:PORT from "... on port ADDR:PORT. ...".
func synFloodHostPort(msg string) string {
	_, rest, ok := strings.Cut(msg, " on port ")
	if !ok {
		return ""
	}
	end := strings.IndexByte(rest, ' ')
	if end < 0 {
		end = len(rest)
	}
	return strings.TrimSuffix(rest[:end], ".")
}

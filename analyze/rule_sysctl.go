package analyze

import (
	"fmt"
	"strconv"
)

// ruleSysctl is the sysctl audit (section 7, rule 13, and rule 4 for
// syncookies=2): one risky-sysctl finding per key, with the safe value.
// Section 3 gives the reasons.
func ruleSysctl(s *Snapshot) []Finding {
	var out []Finding
	add := func(key string, sev Severity, title, summary, value, why string) {
		cur, _ := s.Sysctls.Get(key)
		v, _ := strconv.ParseFloat(cur, 64)
		f := Finding{
			ID:       IDRiskySysctl,
			Severity: sev,
			Key:      key,
			Title:    title,
			Summary:  summary,
			Evidence: []Evidence{evValue(sysctlSource(key), key, v, "value "+strconv.Quote(cur))},
		}
		if value != "" {
			f.Recommendations = []Recommendation{sysctlRec(s, key, value, why)}
		}
		out = append(out, f)
	}
	is := func(key string, want int64) bool {
		v, ok := s.Sysctls.Int(key)
		return ok && v == want
	}
	if is("net.ipv4.tcp_timestamps", 0) {
		add("net.ipv4.tcp_timestamps", Warning, "tcp_timestamps=0 disables PAWS and hurts SYN-cookie connections",
			"Without timestamps there is no PAWS protection and no RTT measurement, tcp_tw_reuse cannot work, and connections made "+
				"through SYN cookies lose window scaling and SACK (tcp_conn_request() clears the options it cannot encode). "+
				"Since 4.10 timestamp offsets are random per connection, so the old uptime-leak argument no longer applies.",
			"1", "timestamps carry PAWS, RTT measurement and the options of SYN-cookie connections")
	}
	if is("net.ipv4.tcp_window_scaling", 0) {
		add("net.ipv4.tcp_window_scaling", Warning, "tcp_window_scaling=0 caps every connection's window at 64 KiB",
			"Without window scaling a connection's throughput is at most 64 KiB per round trip (about 5 Mbit/s at 100 ms).",
			"1", "window scaling lets the receive window grow past 64 KiB")
	}
	if is("net.ipv4.tcp_sack", 0) {
		add("net.ipv4.tcp_sack", Warning, "tcp_sack=0 cripples loss recovery",
			"RACK/TLP loss recovery depends on SACK; turning it off was a temporary mitigation for the 2019 SACK CVEs, which kernels have long fixed.",
			"1", "SACK is what modern loss recovery is built on")
	}
	if is("net.ipv4.tcp_abort_on_overflow", 1) {
		add("net.ipv4.tcp_abort_on_overflow", Warning, "tcp_abort_on_overflow=1 turns accept-queue bursts into connection resets",
			"With 1, a third ACK that finds the accept queue full is answered with a RST: the client gets ECONNRESET instead of a short delay. "+
				"The kernel documentation says to enable it only if the daemon really cannot be tuned.",
			"0", "with 0 the kernel retries through SYN-ACK retransmits and a burst only costs a delay")
	}
	if is("net.ipv4.tcp_syncookies", 0) {
		add("net.ipv4.tcp_syncookies", Warning, "tcp_syncookies=0: a full SYN queue drops new clients",
			"With cookies off, every SYN that finds the SYN queue full is dropped (TCPReqQFullDrop), and below that the 3/4 rule of "+
				"tcp_max_syn_backlog drops unproven peers; a few broken or hostile clients can lock everyone out.",
			"1", "cookies are used only when the SYN queue overflows and keep the service reachable")
	}
	if is("net.ipv4.tcp_syncookies", 2) {
		doc := s.Delta(tcpExtTCPReqQFullDoCookies)
		extra := ""
		if doc.Moved() {
			extra = fmt.Sprintf(" Here TCPReqQFullDoCookies rose by %d and SyncookiesSent with it: that is every SYN, not a full queue.", doc.Delta)
		}
		add("net.ipv4.tcp_syncookies", Warning, "tcp_syncookies=2 sends cookies for every SYN",
			"Mode 2 answers every SYN with a cookie even when the queue is empty: TCPReqQFullDoCookies and SyncookiesSent rise for every "+
				"connection and are no sign of overload, nothing is logged, and clients without TCP timestamps lose window scaling and SACK. "+
				"It is meant for testing."+extra,
			"1", "mode 1 uses cookies only when the SYN queue overflows")
	}
	if v, ok := s.Sysctls.Int("net.ipv4.tcp_max_tw_buckets"); ok && v < 16384 {
		add("net.ipv4.tcp_max_tw_buckets", Warning, fmt.Sprintf("tcp_max_tw_buckets lowered to %d", v),
			"The default is half the established hash size (tens of thousands or more); values this low are set by hand. "+
				"The kernel documentation says the limit must not be lowered artificially: connections beyond it skip TIME_WAIT.",
			"262144", "TIME_WAIT protects new connections from old segments; a minisocket costs a few hundred bytes")
	}
	if v, ok := s.Sysctls.Int("net.core.somaxconn"); ok {
		clamped := false
		for _, l := range s.Listeners() {
			if int64(l.SendQ) == v {
				clamped = true
			}
		}
		sev := Info
		if clamped {
			sev = Warning
		}
		switch {
		case s.Kernel.AtLeast(5, 4, 0) && v < 4096:
			add("net.core.somaxconn", sev, fmt.Sprintf("somaxconn lowered to %d (the default is 4096 since 5.4)", v),
				"somaxconn caps every listen() backlog, and with it both the SYN queue and the accept queue. Someone lowered it from the 4096 default"+
					clampNote(clamped)+".",
				"4096", "takes effect for a listener only when its application calls listen() again")
		case !s.Kernel.AtLeast(5, 4, 0) && v <= 128:
			add("net.core.somaxconn", sev, fmt.Sprintf("somaxconn is %d, too small for a busy server on kernel %s", v, s.Kernel),
				"Before 5.4 somaxconn defaults to 128, which caps every listen() backlog and with it both queues"+clampNote(clamped)+".",
				"4096", "takes effect for a listener only when its application calls listen() again")
		}
	}
	if v, ok := s.Sysctls.Int("net.ipv4.tcp_tw_recycle"); ok {
		if v != 0 {
			add("net.ipv4.tcp_tw_recycle", Warning, "tcp_tw_recycle=1 breaks clients behind NAT",
				"tw_recycle drops SYNs whose timestamps go backwards, which is normal for clients behind one NAT address. It was removed in 4.12.",
				"0", "recycling TIME_WAIT by timestamp rejects legitimate clients behind NAT")
		} else {
			add("net.ipv4.tcp_tw_recycle", Info, "tcp_tw_recycle exists on this kernel (removed in 4.12); keep it 0",
				"This kernel still has tcp_tw_recycle. It is off, which is right; never turn it on.", "", "")
		}
	}
	return out
}

func clampNote(clamped bool) string {
	if clamped {
		return ", and at least one listener's backlog is clamped to it"
	}
	return ""
}

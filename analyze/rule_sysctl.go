package analyze

import (
	"fmt"
	"slices"
	"strconv"
)

// ruleSysctl is the sysctl audit: one risky-sysctl finding per key that
// harms service (folklore settings, tcp_syncookies=2, a lowered somaxconn
// or tcp_max_tw_buckets), with the safe value and the reason.
func ruleSysctl(s *Snapshot) []Finding { return findings(s, diagnoseSysctls(s)...) }

// RiskySysctl diagnoses risky-sysctl: one setting that harms service.
type RiskySysctl struct {
	Severity Severity
	// Key is the sysctl, Current its value in the bundle, Safe the value to
	// set ("" when it is right as it is and only worth knowing about).
	Key     string
	Current string
	Safe    string
	// Clamped (net.core.somaxconn) is true when a listener's backlog equals
	// somaxconn: the setting is limiting a service now.
	Clamped bool
	// OldKernelDefault (net.core.somaxconn) is true on a kernel before 5.4,
	// where somaxconn defaults to 128; false means someone lowered it from
	// the 4096 of 5.4 and later.
	OldKernelDefault bool
	// EveryCookie (net.ipv4.tcp_syncookies=2) is TCPReqQFullDoCookies over
	// the capture: with mode 2 it counts every SYN, not overflows.
	EveryCookie Delta
}

func diagnoseSysctls(s *Snapshot) []*RiskySysctl {
	var out []*RiskySysctl
	add := func(key string, sev Severity, safe string) *RiskySysctl {
		cur, _ := s.Sysctls.Get(key)
		d := &RiskySysctl{Severity: sev, Key: key, Current: cur, Safe: safe}
		out = append(out, d)
		return d
	}
	is := func(key string, want int64) bool {
		v, ok := s.Sysctls.Int(key)
		return ok && v == want
	}
	for _, off := range []string{"net.ipv4.tcp_timestamps", "net.ipv4.tcp_window_scaling", "net.ipv4.tcp_sack"} {
		if is(off, 0) {
			add(off, Warning, "1")
		}
	}
	if is("net.ipv4.tcp_abort_on_overflow", 1) {
		add("net.ipv4.tcp_abort_on_overflow", Warning, "0")
	}
	if is("net.ipv4.tcp_syncookies", 0) {
		add("net.ipv4.tcp_syncookies", Warning, "1")
	}
	if is("net.ipv4.tcp_syncookies", 2) {
		add("net.ipv4.tcp_syncookies", Warning, "1").EveryCookie = s.Delta(tcpExtTCPReqQFullDoCookies)
	}
	if v, ok := s.Sysctls.Int("net.ipv4.tcp_max_tw_buckets"); ok && v < 16384 {
		add("net.ipv4.tcp_max_tw_buckets", Warning, "262144")
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
			add("net.core.somaxconn", sev, "4096").Clamped = clamped
		case !s.Kernel.AtLeast(5, 4, 0) && v <= 128:
			d := add("net.core.somaxconn", sev, "4096")
			d.Clamped, d.OldKernelDefault = clamped, true
		}
	}
	if v, ok := s.Sysctls.Int("net.ipv4.tcp_tw_recycle"); ok {
		if v != 0 {
			add("net.ipv4.tcp_tw_recycle", Warning, "0")
		} else {
			add("net.ipv4.tcp_tw_recycle", Info, "")
		}
	}
	// A namespace of a whole-node bundle is audited on its own sysctls
	// only: those it lacks are the host's, audited once at the top level.
	return slices.DeleteFunc(out, func(d *RiskySysctl) bool { return s.inheritedSysctl(d.Key) })
}

func (d *RiskySysctl) render(s *Snapshot) Finding {
	var title, summary, why string
	n, _ := strconv.ParseInt(d.Current, 10, 64) // the audited keys are integers
	switch d.Key {
	case "net.ipv4.tcp_timestamps":
		title = "tcp_timestamps=0 disables PAWS and hurts SYN-cookie connections"
		summary = "Without timestamps there is no PAWS protection and no RTT measurement, tcp_tw_reuse cannot work, and connections made " +
			"through SYN cookies lose window scaling and SACK (tcp_conn_request() clears the options it cannot encode). " +
			"Since 4.10 timestamp offsets are random per connection, so the old uptime-leak argument no longer applies."
		why = "timestamps carry PAWS, RTT measurement and the options of SYN-cookie connections"
	case "net.ipv4.tcp_window_scaling":
		title = "tcp_window_scaling=0 caps every connection's window at 64 KiB"
		summary = "Without window scaling a connection's throughput is at most 64 KiB per round trip (about 5 Mbit/s at 100 ms)."
		why = "window scaling lets the receive window grow past 64 KiB"
	case "net.ipv4.tcp_sack":
		title = "tcp_sack=0 cripples loss recovery"
		summary = "RACK/TLP loss recovery depends on SACK; turning it off was a temporary mitigation for the 2019 SACK CVEs, which kernels have long fixed."
		why = "SACK is what modern loss recovery is built on"
	case "net.ipv4.tcp_abort_on_overflow":
		title = "tcp_abort_on_overflow=1 turns accept-queue bursts into connection resets"
		summary = "With 1, a third ACK that finds the accept queue full is answered with a RST: the client gets ECONNRESET instead of a short delay. " +
			"The kernel documentation says to enable it only if the daemon really cannot be tuned."
		why = "with 0 the kernel retries through SYN-ACK retransmits and a burst only costs a delay"
	case "net.ipv4.tcp_syncookies":
		if d.Current == "0" {
			title = "tcp_syncookies=0: a full SYN queue drops new clients"
			summary = "With cookies off, every SYN that finds the SYN queue full is dropped (TCPReqQFullDrop), and below that the 3/4 rule of " +
				"tcp_max_syn_backlog drops unproven peers; a few broken or hostile clients can lock everyone out."
			why = "cookies are used only when the SYN queue overflows and keep the service reachable"
			break
		}
		extra := ""
		if d.EveryCookie.Moved() {
			extra = fmt.Sprintf(" Here TCPReqQFullDoCookies rose by %d and SyncookiesSent with it: that is every SYN, not a full queue.", d.EveryCookie.Delta)
		}
		title = "tcp_syncookies=2 sends cookies for every SYN"
		summary = "Mode 2 answers every SYN with a cookie even when the queue is empty: TCPReqQFullDoCookies and SyncookiesSent rise for every " +
			"connection and are no sign of overload, nothing is logged, and clients without TCP timestamps lose window scaling and SACK. " +
			"It is meant for testing." + extra
		why = "mode 1 uses cookies only when the SYN queue overflows"
	case "net.ipv4.tcp_max_tw_buckets":
		title = fmt.Sprintf("tcp_max_tw_buckets lowered to %d", n)
		summary = "The default is half the established hash size (tens of thousands or more); values this low are set by hand. " +
			"The kernel documentation says the limit must not be lowered artificially: connections beyond it skip TIME_WAIT."
		why = "TIME_WAIT protects new connections from old segments; a minisocket costs a few hundred bytes"
	case "net.core.somaxconn":
		if d.OldKernelDefault {
			title = fmt.Sprintf("somaxconn is %d, too small for a busy server on kernel %s", n, s.Kernel)
			summary = "Before 5.4 somaxconn defaults to 128, which caps every listen() backlog and with it both queues" + clampNote(d.Clamped) + "."
		} else {
			title = fmt.Sprintf("somaxconn lowered to %d (the default is 4096 since 5.4)", n)
			summary = "somaxconn caps every listen() backlog, and with it both the SYN queue and the accept queue. Someone lowered it from the 4096 default" +
				clampNote(d.Clamped) + "."
		}
		why = "takes effect for a listener only when its application calls listen() again"
	case "net.ipv4.tcp_tw_recycle":
		if d.Safe == "" {
			title = "tcp_tw_recycle exists on this kernel (removed in 4.12); keep it 0"
			summary = "This kernel still has tcp_tw_recycle. It is off, which is right; never turn it on."
			break
		}
		title = "tcp_tw_recycle=1 breaks clients behind NAT"
		summary = "tw_recycle drops SYNs whose timestamps go backwards, which is normal for clients behind one NAT address. It was removed in 4.12."
		why = "recycling TIME_WAIT by timestamp rejects legitimate clients behind NAT"
	}
	v, _ := strconv.ParseFloat(d.Current, 64)
	f := Finding{
		ID:       IDRiskySysctl,
		Severity: d.Severity,
		Key:      d.Key,
		Title:    title,
		Summary:  summary,
		Evidence: []Evidence{evValue(sysctlSource(d.Key), d.Key, v, "value "+strconv.Quote(d.Current))},
	}
	if d.Safe != "" {
		f.Recommendations = []Recommendation{sysctlRec(s, d.Key, d.Safe, why)}
	}
	return f
}

func clampNote(clamped bool) string {
	if clamped {
		return ", and at least one listener's backlog is clamped to it"
	}
	return ""
}

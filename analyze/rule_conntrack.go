package analyze

import (
	"fmt"
	"strconv"
)

// ruleConntrack is R-CONNTRACK (section 7, rule 7): netfilter drops SYNs
// before TCP sees them when the connection-tracking table is full, so the
// listen counters stay flat. Evidence: "table full, dropping packet" in the
// kernel log, the count near the (global) maximum, or drop/early_drop rising
// in /proc/net/stat/nf_conntrack.
func ruleConntrack(s *Snapshot) []Finding {
	ctMax, haveMax := s.Sysctls.Int("net.netfilter.nf_conntrack_max")
	count, countSrc, haveCount := s.Value(conntrackCount)
	if !haveCount {
		if c, ok := s.Sysctls.Int("net.netfilter.nf_conntrack_count"); ok {
			count, countSrc, haveCount = c, sysctlSource("net.netfilter.nf_conntrack_count"), true
		}
	}
	drop := s.Delta(conntrackDrop)
	early := s.Delta(conntrackEarlyDrop)
	insFail := s.Delta(conntrackInsertFailed)
	logs := kmsgEvidence(s, "table full, dropping packet", 3)
	ratio := 0.0
	if haveMax && haveCount && ctMax > 0 {
		ratio = float64(count) / float64(ctMax)
	}
	sev := Info
	switch {
	case drop.Moved():
		sev = Critical
	case ratio >= 0.9 || early.Moved():
		sev = Warning
	case len(logs) > 0:
		sev = Info // the log line alone may be old: history
	default:
		return nil
	}
	f := Finding{
		ID:       IDConntrackFull,
		Severity: sev,
		Key:      "net.netfilter.nf_conntrack_max",
		Title:    "Connection-tracking table full: packets are dropped before TCP sees them",
	}
	if sev < Warning {
		f.Title = "Connection-tracking table was full earlier (kernel log)"
	}
	if haveCount {
		f.Evidence = append(f.Evidence, evValue(countSrc, "nf_conntrack_count", float64(count), fmt.Sprintf("%.0f%% of nf_conntrack_max %d", ratio*100, ctMax)))
	}
	for _, d := range []Delta{drop, early, insFail} {
		if d.OK {
			f.Evidence = append(f.Evidence, evDelta(d, "summed over CPUs"))
		}
	}
	f.Evidence = append(f.Evidence, logs...)
	f.Summary = "Netfilter's connection-tracking table is full or nearly so. New connections' SYNs are dropped before TCP, so clients " +
		"retransmit SYNs that never get a SYN-ACK while every TCP listen counter stays flat. The count is per network namespace " +
		"but the maximum is global."
	if drop.Moved() {
		f.Summary = fmt.Sprintf("Netfilter dropped %s packets %s because the connection-tracking table was full. ", perSecond(drop), window(s)) + f.Summary
	}
	if haveMax {
		f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.netfilter.nf_conntrack_max", strconv.FormatInt(ctMax*2, 10),
			"a global limit, read-only inside a container's namespace: set it on the host; each entry costs about 300 bytes"))
		if b, ok := s.Sysctls.Int("net.netfilter.nf_conntrack_buckets"); ok && b < ctMax*2 {
			f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.netfilter.nf_conntrack_buckets", strconv.FormatInt(min(ctMax*2, 1<<22), 10),
				"raise the hash buckets with the maximum so lookups stay short"))
		}
	}
	f.Recommendations = append(f.Recommendations, note("network",
		"exempt high-rate server ports from tracking (nftables 'notrack' or iptables -t raw -j NOTRACK) and review the conntrack timeouts (nf_conntrack_tcp_timeout_established defaults to 5 days)"))
	return []Finding{f}
}

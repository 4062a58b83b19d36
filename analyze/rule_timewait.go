package analyze

import (
	"fmt"
	"strconv"
)

// ruleTimeWait is R-TW (section 7, rule 9): when the TIME_WAIT minisockets
// exceed tcp_max_tw_buckets, tcp_time_wait() skips TIME_WAIT and counts
// TCPTimeWaitOverflow (6.12 no longer logs it).
func ruleTimeWait(s *Snapshot) []Finding {
	d := s.Delta(tcpExtTCPTimeWaitOverflow)
	if !d.Moved() {
		return nil
	}
	f := Finding{
		ID:       IDTimeWaitOverflow,
		Severity: Warning,
		Key:      "net.ipv4.tcp_max_tw_buckets",
		Title:    "TIME_WAIT table overflow: closing connections skip TIME_WAIT",
	}
	f.Evidence = append(f.Evidence, evDelta(d, "connections closed without a TIME_WAIT socket"))
	tw, twSrc, haveTW := s.Value(sockstatTCPTW)
	if haveTW {
		f.Evidence = append(f.Evidence, evValue(twSrc, "Sockstat.TCP.tw", float64(tw), "TIME_WAIT and FIN_WAIT2 minisockets in this namespace"))
	}
	buckets, ok := s.Sysctls.Int("net.ipv4.tcp_max_tw_buckets")
	if ok {
		f.Evidence = append(f.Evidence, evValue(sysctlSource("net.ipv4.tcp_max_tw_buckets"), "net.ipv4.tcp_max_tw_buckets", float64(buckets), ""))
	}
	f.Evidence = append(f.Evidence, kmsgEvidence(s, "time wait bucket table overflow", 2)...)
	f.Summary = fmt.Sprintf("%s connections %s closed without a TIME_WAIT socket because tcp_max_tw_buckets was reached. "+
		"Without TIME_WAIT, delayed segments of an old connection can corrupt a new one on the same 4-tuple. "+
		"The limit must not be lowered artificially; tcp_tw_recycle is no fix (it broke clients behind NAT and was removed in 4.12).",
		perSecond(d), window(s))
	if ok {
		want := max(2*buckets, 262144)
		if haveTW {
			want = max(want, 2*tw)
		}
		f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.tcp_max_tw_buckets", strconv.FormatInt(want, 10),
			"a TIME_WAIT minisocket costs a few hundred bytes; the default is half the established hash size"))
	}
	f.Recommendations = append(f.Recommendations, note("app",
		"if this host opens many short outgoing connections, reuse them (pooling, keep-alive): the side that closes first holds the TIME_WAIT"))
	return []Finding{f}
}

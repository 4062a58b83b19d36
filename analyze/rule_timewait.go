package analyze

import (
	"fmt"
	"strconv"
)

// TimeWaitOverflow diagnoses time-wait-overflow: connections closed
// without a TIME_WAIT socket because tcp_max_tw_buckets was reached.
type TimeWaitOverflow struct {
	// Overflows is TCPTimeWaitOverflow.
	Overflows Delta
	// TimeWait is Sockstat's TCP tw (TIME_WAIT and FIN_WAIT2 minisockets)
	// in the last sample, read from TimeWaitSource; HaveTimeWait is false
	// without sockstat.
	TimeWait       int64
	TimeWaitSource string
	HaveTimeWait   bool
	// MaxBuckets is net.ipv4.tcp_max_tw_buckets (HaveMaxBuckets false
	// without it); RaiseTo is the value to set, 0 when unknown.
	MaxBuckets     int64
	HaveMaxBuckets bool
	RaiseTo        int64
}

// diagnoseTimeWait finds time-wait-overflow: when the TIME_WAIT minisockets
// exceed tcp_max_tw_buckets, tcp_time_wait() skips TIME_WAIT and counts
// TCPTimeWaitOverflow (6.12 no longer logs it).
func diagnoseTimeWait(s *Snapshot) *TimeWaitOverflow {
	d := &TimeWaitOverflow{Overflows: s.Delta(tcpExtTCPTimeWaitOverflow)}
	if !d.Overflows.Moved() {
		return nil
	}
	d.TimeWait, d.TimeWaitSource, d.HaveTimeWait = s.Value(sockstatTCPTW)
	d.MaxBuckets, d.HaveMaxBuckets = s.Sysctls.Int("net.ipv4.tcp_max_tw_buckets")
	if d.HaveMaxBuckets {
		d.RaiseTo = max(2*d.MaxBuckets, 262144)
		if d.HaveTimeWait {
			d.RaiseTo = max(d.RaiseTo, 2*d.TimeWait)
		}
	}
	return d
}

func (d *TimeWaitOverflow) render(s *Snapshot) Finding {
	f := Finding{
		ID:       IDTimeWaitOverflow,
		Severity: Warning,
		Key:      "net.ipv4.tcp_max_tw_buckets",
		Title:    "TIME_WAIT table overflow: closing connections skip TIME_WAIT",
	}
	f.Evidence = append(f.Evidence, evDelta(d.Overflows, "connections closed without a TIME_WAIT socket"))
	if d.HaveTimeWait {
		f.Evidence = append(f.Evidence, evValue(d.TimeWaitSource, sockstatTCPTW.String(), float64(d.TimeWait), "TIME_WAIT and FIN_WAIT2 minisockets in this namespace"))
	}
	if d.HaveMaxBuckets {
		f.Evidence = append(f.Evidence, evValue(sysctlSource("net.ipv4.tcp_max_tw_buckets"), "net.ipv4.tcp_max_tw_buckets", float64(d.MaxBuckets), ""))
	}
	f.Evidence = append(f.Evidence, kmsgEvidence(s, "time wait bucket table overflow", 2)...)
	f.Summary = fmt.Sprintf("%s connections %s closed without a TIME_WAIT socket because tcp_max_tw_buckets was reached. "+
		"Without TIME_WAIT, delayed segments of an old connection can corrupt a new one on the same 4-tuple. "+
		"The limit must not be lowered artificially; tcp_tw_recycle is no fix (it broke clients behind NAT and was removed in 4.12).",
		perSecond(d.Overflows), window(s))
	if d.HaveMaxBuckets {
		f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.ipv4.tcp_max_tw_buckets", strconv.FormatInt(d.RaiseTo, 10),
			"a TIME_WAIT minisocket costs a few hundred bytes; the default is half the established hash size"))
	}
	f.Recommendations = append(f.Recommendations, note("app",
		"if this host opens many short outgoing connections, reuse them (pooling, keep-alive): the side that closes first holds the TIME_WAIT"))
	return f
}

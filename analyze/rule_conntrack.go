package analyze

import (
	"fmt"
	"strconv"
)

// ConntrackFull diagnoses conntrack-full: the connection-tracking table is
// full or nearly so.
type ConntrackFull struct {
	// Severity is critical when packets were dropped, warning at 90% of the
	// maximum or when early_drop moved, info when only the kernel log (which
	// may be old) says so.
	Severity Severity
	// Count is the table's entries, read from CountSource (HaveCount false
	// when neither nf_conntrack_count file was captured); Max is
	// nf_conntrack_max (HaveMax false without it).
	Count       int64
	CountSource string
	HaveCount   bool
	Max         int64
	HaveMax     bool
	// Drop, EarlyDrop and InsertFailed are /proc/net/stat/nf_conntrack's
	// columns, summed over CPUs.
	Drop, EarlyDrop, InsertFailed Delta
	// Logged is true when the kernel log has "table full, dropping packet".
	Logged bool
	// RaiseBuckets is true when nf_conntrack_buckets is below twice the
	// maximum and should be raised with it.
	RaiseBuckets bool
}

// conntrackLog is nf_conntrack's line when the table is full.
const conntrackLog = "table full, dropping packet"

// diagnoseConntrack finds conntrack-full: netfilter drops SYNs
// before TCP sees them when the connection-tracking table is full, so the
// listen counters stay flat. Evidence: "table full, dropping packet" in the
// kernel log, the count near the (global) maximum, or drop/early_drop rising
// in /proc/net/stat/nf_conntrack.
func diagnoseConntrack(s *Snapshot) *ConntrackFull {
	d := &ConntrackFull{Drop: s.Delta(conntrackDrop), EarlyDrop: s.Delta(conntrackEarlyDrop),
		InsertFailed: s.Delta(conntrackInsertFailed), Logged: len(s.KmsgMatching(conntrackLog)) > 0}
	d.Max, d.HaveMax = s.Sysctls.Int("net.netfilter.nf_conntrack_max")
	d.Count, d.CountSource, d.HaveCount = s.Value(conntrackCount)
	if !d.HaveCount {
		if c, ok := s.Sysctls.Int("net.netfilter.nf_conntrack_count"); ok {
			d.Count, d.CountSource, d.HaveCount = c, sysctlSource("net.netfilter.nf_conntrack_count"), true
		}
	}
	switch {
	case d.Drop.Moved():
		d.Severity = Critical
	case d.ratio() >= 0.9 || d.EarlyDrop.Moved():
		d.Severity = Warning
	case d.Logged:
		d.Severity = Info // the log line alone may be old: history
	default:
		return nil
	}
	if b, ok := s.Sysctls.Int("net.netfilter.nf_conntrack_buckets"); ok && d.HaveMax && b < d.Max*2 {
		d.RaiseBuckets = true
	}
	return d
}

// ratio is Count/Max, 0 when either is unknown.
func (d *ConntrackFull) ratio() float64 {
	if !d.HaveMax || !d.HaveCount || d.Max <= 0 {
		return 0
	}
	return float64(d.Count) / float64(d.Max)
}

func (d *ConntrackFull) render(s *Snapshot) Finding {
	f := Finding{
		ID:       IDConntrackFull,
		Severity: d.Severity,
		Key:      "net.netfilter.nf_conntrack_max",
		Title:    "Connection-tracking table full: packets are dropped before TCP sees them",
	}
	if d.Severity < Warning {
		f.Title = "Connection-tracking table was full earlier (kernel log)"
	}
	if d.HaveCount {
		f.Evidence = append(f.Evidence, evValue(d.CountSource, "nf_conntrack_count", float64(d.Count), fmt.Sprintf("%.0f%% of nf_conntrack_max %d", d.ratio()*100, d.Max)))
	}
	for _, x := range []Delta{d.Drop, d.EarlyDrop, d.InsertFailed} {
		if x.OK {
			f.Evidence = append(f.Evidence, evDelta(x, "summed over CPUs"))
		}
	}
	f.Evidence = append(f.Evidence, kmsgEvidence(s, conntrackLog, 3)...)
	f.Summary = "Netfilter's connection-tracking table is full or nearly so. New connections' SYNs are dropped before TCP, so clients " +
		"retransmit SYNs that never get a SYN-ACK while every TCP listen counter stays flat. The count is per network namespace " +
		"but the maximum is global."
	if d.Drop.Moved() {
		f.Summary = fmt.Sprintf("Netfilter dropped %s packets %s because the connection-tracking table was full. ", perSecond(d.Drop), window(s)) + f.Summary
	}
	if d.HaveMax {
		f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.netfilter.nf_conntrack_max", strconv.FormatInt(d.Max*2, 10),
			"a global limit, read-only inside a container's namespace: set it on the host; each entry costs about 300 bytes"))
		if d.RaiseBuckets {
			f.Recommendations = append(f.Recommendations, sysctlRec(s, "net.netfilter.nf_conntrack_buckets", strconv.FormatInt(min(d.Max*2, 1<<22), 10),
				"raise the hash buckets with the maximum so lookups stay short"))
		}
	}
	f.Recommendations = append(f.Recommendations, note("network",
		"exempt high-rate server ports from tracking (nftables 'notrack' or iptables -t raw -j NOTRACK) and review the conntrack timeouts (nf_conntrack_tcp_timeout_established defaults to 5 days)"))
	return f
}

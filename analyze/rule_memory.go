package analyze

import (
	"fmt"
	"strings"
)

// TCPMemoryPressure diagnoses tcp-memory-pressure: TCP memory or orphan
// limits are hit.
type TCPMemoryPressure struct {
	Severity Severity
	// AbortOnMemory and Pressures are TCPAbortOnMemory and
	// TCPMemoryPressures.
	AbortOnMemory, Pressures Delta
	// Pages is Sockstat's TCP mem in the last sample, from PagesSource
	// (HavePages false without it); TCPMem is net.ipv4.tcp_mem (min,
	// pressure, max pages; nil without it).
	Pages       int64
	PagesSource string
	HavePages   bool
	TCPMem      []int64
	// AtHardLimit is Pages at tcp_mem's max, AbovePressure at its pressure
	// threshold (and below the max).
	AtHardLimit   bool
	AbovePressure bool
	// Orphans is Sockstat's TCP orphan, from OrphansSource (HaveOrphans
	// false without it); MaxOrphans is net.ipv4.tcp_max_orphans (0 when
	// unknown); NearMaxOrphans is Orphans at 90% of it.
	Orphans        int64
	OrphansSource  string
	HaveOrphans    bool
	MaxOrphans     int64
	NearMaxOrphans bool
	// Logged is true when the kernel log reports orphan or tcp_mem trouble,
	// possibly earlier than the capture.
	Logged bool
}

// The kernel's lines from tcp_check_oom().
const (
	orphanLog = "too many orphaned sockets"
	tcpMemLog = "consider tuning tcp_mem"
)

// diagnoseMemory finds tcp-memory-pressure: TCP memory accounting and
// the orphan count are global. tcp_check_oom() aborts connections and logs
// "too many orphaned sockets" or "out of memory -- consider tuning tcp_mem".
func diagnoseMemory(s *Snapshot) *TCPMemoryPressure {
	d := &TCPMemoryPressure{Severity: Info, AbortOnMemory: s.Delta(tcpExtTCPAbortOnMemory), Pressures: s.Delta(tcpExtTCPMemoryPressures),
		Logged: len(s.KmsgMatching(orphanLog))+len(s.KmsgMatching(tcpMemLog)) > 0}
	d.Pages, d.PagesSource, d.HavePages = s.Value(sockstatTCPMem)
	d.Orphans, d.OrphansSource, d.HaveOrphans = s.Value(sockstatTCPOrphan)
	tcpMem, haveTCPMem := s.Sysctls.Ints("net.ipv4.tcp_mem")
	if haveTCPMem {
		d.TCPMem = tcpMem
	}
	maxOrphans, haveMaxOrphans := s.Sysctls.Int("net.ipv4.tcp_max_orphans")
	d.MaxOrphans = maxOrphans
	if d.AbortOnMemory.Moved() {
		d.Severity = Critical
	}
	if d.Pressures.Moved() {
		d.Severity = max(d.Severity, Warning)
	}
	if d.HavePages && len(d.TCPMem) == 3 {
		switch {
		case d.Pages >= d.TCPMem[2]:
			d.Severity, d.AtHardLimit = Critical, true
		case d.Pages >= d.TCPMem[1]:
			d.Severity, d.AbovePressure = max(d.Severity, Warning), true
		}
	}
	if d.HaveOrphans && haveMaxOrphans && maxOrphans > 0 && float64(d.Orphans) >= 0.9*float64(maxOrphans) {
		d.Severity, d.NearMaxOrphans = max(d.Severity, Warning), true
	}
	if !d.AbortOnMemory.Moved() && !d.Pressures.Moved() && !d.AtHardLimit && !d.AbovePressure && !d.NearMaxOrphans && !d.Logged {
		return nil
	}
	return d
}

func (d *TCPMemoryPressure) render(s *Snapshot) Finding {
	var why []string
	if d.AbortOnMemory.Moved() {
		why = append(why, fmt.Sprintf("%s connections were aborted for lack of memory (TCPAbortOnMemory)", perSecond(d.AbortOnMemory)))
	}
	if d.Pressures.Moved() {
		why = append(why, fmt.Sprintf("TCP entered memory pressure %d times", d.Pressures.Delta))
	}
	if d.AtHardLimit {
		why = append(why, fmt.Sprintf("TCP uses %d pages, at tcp_mem's hard limit %d", d.Pages, d.TCPMem[2]))
	}
	if d.AbovePressure {
		why = append(why, fmt.Sprintf("TCP uses %d pages, above tcp_mem's pressure threshold %d", d.Pages, d.TCPMem[1]))
	}
	if d.NearMaxOrphans {
		why = append(why, fmt.Sprintf("%d orphaned sockets, near tcp_max_orphans %d", d.Orphans, d.MaxOrphans))
	}
	if len(why) == 0 {
		why = append(why, "the kernel log reports TCP memory or orphan trouble (possibly earlier than the capture)")
	}
	f := Finding{
		ID:       IDTCPMemoryPressure,
		Severity: d.Severity,
		Key:      "net.ipv4.tcp_mem",
		Title:    "TCP memory or orphan limits are being hit",
	}
	for _, x := range []Delta{d.AbortOnMemory, d.Pressures} {
		if x.OK {
			f.Evidence = append(f.Evidence, evDelta(x, ""))
		}
	}
	if d.HavePages {
		f.Evidence = append(f.Evidence, evValue(d.PagesSource, sockstatTCPMem.String(), float64(d.Pages), fmt.Sprintf("pages; tcp_mem %v", d.TCPMem)))
	}
	if d.HaveOrphans {
		f.Evidence = append(f.Evidence, evValue(d.OrphansSource, sockstatTCPOrphan.String(), float64(d.Orphans), fmt.Sprintf("tcp_max_orphans %d", d.MaxOrphans)))
	}
	f.Evidence = append(f.Evidence, kmsgEvidence(s, orphanLog, 2)...)
	f.Evidence = append(f.Evidence, kmsgEvidence(s, tcpMemLog, 2)...)
	f.Summary = capitalFirst(strings.Join(why, "; ")) + ". TCP memory and the orphan count are global to the host."
	f.Recommendations = append(f.Recommendations, note("app",
		"find the slow readers or leaking connections that hold the memory (ss -tm shows per-socket memory) before raising limits", "ss -tmn"))
	f.Recommendations = append(f.Recommendations, note("host",
		"raise net.ipv4.tcp_mem and tcp_max_orphans only when the host has the RAM for it; both are global"))
	return f
}

func capitalFirst(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-32) + s[1:]
	}
	return s
}

package analyze

import (
	"fmt"
)

// ruleMemory is R-MEM/ORPHAN (section 7, rule 11): TCP memory accounting and
// the orphan count are global. tcp_check_oom() aborts connections and logs
// "too many orphaned sockets" or "out of memory -- consider tuning tcp_mem".
func ruleMemory(s *Snapshot) []Finding {
	abort := s.Delta(tcpExtTCPAbortOnMemory)
	pressure := s.Delta(tcpExtTCPMemoryPressures)
	mem, memSrc, haveMem := s.Value(sockstatTCPMem)
	orphan, orphanSrc, haveOrphan := s.Value(sockstatTCPOrphan)
	tcpMem, haveTCPMem := s.Sysctls.Ints("net.ipv4.tcp_mem")
	maxOrphans, haveMaxOrphans := s.Sysctls.Int("net.ipv4.tcp_max_orphans")
	logs := append(kmsgEvidence(s, "too many orphaned sockets", 2), kmsgEvidence(s, "consider tuning tcp_mem", 2)...)

	sev := Info
	var why []string
	if abort.Moved() {
		sev = Critical
		why = append(why, fmt.Sprintf("%s connections were aborted for lack of memory (TCPAbortOnMemory)", perSecond(abort)))
	}
	if pressure.Moved() {
		sev = max(sev, Warning)
		why = append(why, fmt.Sprintf("TCP entered memory pressure %d times", pressure.Delta))
	}
	if haveMem && haveTCPMem && len(tcpMem) == 3 {
		switch {
		case mem >= tcpMem[2]:
			sev = Critical
			why = append(why, fmt.Sprintf("TCP uses %d pages, at tcp_mem's hard limit %d", mem, tcpMem[2]))
		case mem >= tcpMem[1]:
			sev = max(sev, Warning)
			why = append(why, fmt.Sprintf("TCP uses %d pages, above tcp_mem's pressure threshold %d", mem, tcpMem[1]))
		}
	}
	if haveOrphan && haveMaxOrphans && maxOrphans > 0 && float64(orphan) >= 0.9*float64(maxOrphans) {
		sev = max(sev, Warning)
		why = append(why, fmt.Sprintf("%d orphaned sockets, near tcp_max_orphans %d", orphan, maxOrphans))
	}
	if len(why) == 0 {
		if len(logs) == 0 {
			return nil
		}
		why = append(why, "the kernel log reports TCP memory or orphan trouble (possibly earlier than the capture)")
	}
	f := Finding{
		ID:       IDTCPMemoryPressure,
		Severity: sev,
		Key:      "net.ipv4.tcp_mem",
		Title:    "TCP memory or orphan limits are being hit",
	}
	for _, d := range []Delta{abort, pressure} {
		if d.OK {
			f.Evidence = append(f.Evidence, evDelta(d, ""))
		}
	}
	if haveMem {
		f.Evidence = append(f.Evidence, evValue(memSrc, "Sockstat.TCP.mem", float64(mem), fmt.Sprintf("pages; tcp_mem %v", tcpMem)))
	}
	if haveOrphan {
		f.Evidence = append(f.Evidence, evValue(orphanSrc, "Sockstat.TCP.orphan", float64(orphan), fmt.Sprintf("tcp_max_orphans %d", maxOrphans)))
	}
	f.Evidence = append(f.Evidence, logs...)
	f.Summary = capitalFirst(joinSentences(why)) + ". TCP memory and the orphan count are global to the host."
	f.Recommendations = append(f.Recommendations, note("app",
		"find the slow readers or leaking connections that hold the memory (ss -tm shows per-socket memory) before raising limits", "ss -tmn"))
	f.Recommendations = append(f.Recommendations, note("host",
		"raise net.ipv4.tcp_mem and tcp_max_orphans only when the host has the RAM for it; both are global"))
	return []Finding{f}
}

func joinSentences(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}

func capitalFirst(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-32) + s[1:]
	}
	return s
}

package analyze

import (
	"fmt"
	"strconv"
)

// fdTight reports whether fs.file-nr's allocated count is at 90% of its
// maximum (section 7, rule 12).
func fdTight(s *Snapshot) bool {
	return len(s.FileNr) == 3 && s.FileNr[2] > 0 && float64(s.FileNr[0]) >= 0.9*float64(s.FileNr[2])
}

// ruleFD is R-FD: the system is out of file descriptors (fs.file-nr near
// file-max, or "VFS: file-max limit" in fs/file_table.c). It usually shows
// up as an accept-queue overflow, since accept() fails. Per-process EMFILE
// does not show in file-nr.
func ruleFD(s *Snapshot) []Finding {
	logs := kmsgEvidence(s, "file-max limit", 2)
	if !fdTight(s) && len(logs) == 0 {
		return nil
	}
	f := Finding{
		ID:       IDFDExhaustion,
		Severity: Info,
		Key:      "fs.file-max",
		Title:    "The system is running out of file descriptors",
	}
	src := sysctlSource("fs.file-nr")
	if len(s.FileNr) == 3 {
		ratio := float64(s.FileNr[0]) / float64(max(s.FileNr[2], 1))
		f.Evidence = append(f.Evidence, evValue(src, "fs.file-nr allocated", float64(s.FileNr[0]), fmt.Sprintf("%.0f%% of file-max %d", ratio*100, s.FileNr[2])))
		switch {
		case ratio >= 0.98:
			f.Severity = Critical
		case ratio >= 0.9:
			f.Severity = Warning
		}
	}
	f.Evidence = append(f.Evidence, logs...)
	if f.Severity == Info {
		f.Title = "The system ran out of file descriptors earlier (kernel log)"
	}
	f.Summary = "Open files are at or near fs.file-max, so accept() and open() fail with ENFILE. A server that cannot accept() lets its accept queue fill " +
		"(see accept-queue-overflow). Per-process limits (EMFILE) are separate: compare /proc/PID/limits with the count in /proc/PID/fd."
	if len(s.FileNr) == 3 && s.FileNr[2] > 0 {
		f.Recommendations = append(f.Recommendations, sysctlRec(s, "fs.file-max", strconv.FormatInt(min(s.FileNr[2]*2, 1<<62), 10),
			"more room for open files; find the leak too, or the new limit only buys time"))
	}
	f.Recommendations = append(f.Recommendations, note("app", "find the process holding the descriptors and fix its leak; raise its RLIMIT_NOFILE (LimitNOFILE= in systemd) if it needs more"))
	return []Finding{f}
}

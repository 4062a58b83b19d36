package analyze

import (
	"fmt"
	"strconv"
)

// fdTight reports whether fs.file-nr's allocated count is at 90% of its
// maximum.
func fdTight(s *Snapshot) bool {
	return len(s.FileNr) == 3 && s.FileNr[2] > 0 && float64(s.FileNr[0]) >= 0.9*float64(s.FileNr[2])
}

// FDExhaustion diagnoses fd-exhaustion: open files at or near fs.file-max.
type FDExhaustion struct {
	// Severity is critical at 98% of file-max, warning at 90%, info when
	// only the kernel log says so (possibly earlier than the capture).
	Severity Severity
	// Allocated and Max are fs.file-nr's first and third fields;
	// HaveFileNr is false when the bundle lacks it.
	Allocated, Max int64
	HaveFileNr     bool
	// Logged is true when the kernel log has "file-max limit" lines.
	Logged bool
}

// fdLog is the kernel's line when file-max is reached (fs/file_table.c).
const fdLog = "file-max limit"

// diagnoseFD finds fd-exhaustion: the system is out of file descriptors
// (fs.file-nr near file-max, or "VFS: file-max limit" in fs/file_table.c).
// It usually shows up as an accept-queue overflow, since accept() fails. Per-process EMFILE
// does not show in file-nr.
func diagnoseFD(s *Snapshot) *FDExhaustion {
	d := &FDExhaustion{Severity: Info, Logged: len(s.KmsgMatching(fdLog)) > 0}
	if !fdTight(s) && !d.Logged {
		return nil
	}
	if len(s.FileNr) == 3 {
		d.Allocated, d.Max, d.HaveFileNr = s.FileNr[0], s.FileNr[2], true
		switch ratio := d.ratio(); {
		case ratio >= 0.98:
			d.Severity = Critical
		case ratio >= 0.9:
			d.Severity = Warning
		}
	}
	return d
}

// ratio is Allocated/Max.
func (d *FDExhaustion) ratio() float64 { return float64(d.Allocated) / float64(max(d.Max, 1)) }

func (d *FDExhaustion) render(s *Snapshot) Finding {
	f := Finding{
		ID:       IDFDExhaustion,
		Severity: d.Severity,
		Key:      "fs.file-max",
		Title:    "The system is running out of file descriptors",
	}
	if d.HaveFileNr {
		f.Evidence = append(f.Evidence, evValue(sysctlSource("fs.file-nr"), "fs.file-nr allocated", float64(d.Allocated),
			fmt.Sprintf("%.0f%% of file-max %d", d.ratio()*100, d.Max)))
	}
	f.Evidence = append(f.Evidence, kmsgEvidence(s, fdLog, 2)...)
	if d.Severity == Info {
		f.Title = "The system ran out of file descriptors earlier (kernel log)"
	}
	f.Summary = "Open files are at or near fs.file-max, so accept() and open() fail with ENFILE. A server that cannot accept() lets its accept queue fill " +
		"(see accept-queue-overflow). Per-process limits (EMFILE) are separate: compare /proc/PID/limits with the count in /proc/PID/fd."
	if d.HaveFileNr && d.Max > 0 {
		f.Recommendations = append(f.Recommendations, sysctlRec(s, "fs.file-max", strconv.FormatInt(min(d.Max*2, 1<<62), 10),
			"more room for open files; find the leak too, or the new limit only buys time"))
	}
	f.Recommendations = append(f.Recommendations, note("app", "find the process holding the descriptors and fix its leak; raise its RLIMIT_NOFILE (LimitNOFILE= in systemd) if it needs more"))
	return f
}

package analyze

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
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

// ruleFD finds fd-exhaustion of the system (fs.file-nr at file-max) and of
// each collected process (its open files at its RLIMIT_NOFILE).
func ruleFD(s *Snapshot) []Finding {
	var out []Finding
	if d := diagnoseFD(s); d != nil {
		out = findings(s, d)
	}
	return append(out, findings(s, diagnoseProcessFDs(s)...)...)
}

// ProcessFDExhaustion diagnoses fd-exhaustion of one process: its open files
// at or near its RLIMIT_NOFILE, which makes accept() fail with EMFILE (the
// connection stays in the accept queue, so the queue fills) and the
// application's accept loop spin or stop.
type ProcessFDExhaustion struct {
	// Severity is critical at the limit, warning from 90% of it.
	Severity Severity
	PID      int
	Comm     string
	// OpenFiles is the number of its descriptors, a lower bound when
	// Capped; Limit and HardLimit are its RLIMIT_NOFILE.
	OpenFiles        int
	Capped           bool
	Limit, HardLimit int64
	// Listeners are its listeners that were at or near their backlog.
	Listeners []string
	// Source is the bundle member with the limit.
	Source string
}

// diagnoseProcessFDs finds the collected processes at 90% or more of their
// RLIMIT_NOFILE.
func diagnoseProcessFDs(s *Snapshot) []*ProcessFDExhaustion {
	var out []*ProcessFDExhaustion
	for _, p := range s.Processes {
		if p.OpenFiles < 0 || p.NoFile <= 0 || float64(p.OpenFiles) < 0.9*float64(p.NoFile) {
			continue
		}
		d := &ProcessFDExhaustion{Severity: Warning, PID: p.PID, Comm: p.Comm, OpenFiles: p.OpenFiles, Capped: p.OpenFilesCapped,
			Limit: p.NoFile, HardLimit: p.NoFileHard, Listeners: p.Listeners, Source: bundle.ProcessFile(p.PID, bundle.ProcLimits)}
		if p.AtFileLimit() {
			d.Severity = Critical
		}
		out = append(out, d)
	}
	return out
}

func (d *ProcessFDExhaustion) render(s *Snapshot) Finding {
	f := Finding{ID: IDFDExhaustion, Severity: d.Severity, Process: &Process{PID: d.PID, Comm: d.Comm}}
	if len(d.Listeners) > 0 {
		f.Listener = d.Listeners[0]
	}
	f.Title = fmt.Sprintf("%s (pid %d) is out of file descriptors: %d open, RLIMIT_NOFILE %d", d.Comm, d.PID, d.OpenFiles, d.Limit)
	if d.Severity != Critical {
		f.Title = fmt.Sprintf("%s (pid %d) is near its open-file limit: %d open, RLIMIT_NOFILE %d", d.Comm, d.PID, d.OpenFiles, d.Limit)
	}
	f.Evidence = append(f.Evidence,
		evValue(bundle.PathProcesses, fmt.Sprintf("process %d open files", d.PID), float64(d.OpenFiles), "entries of /proc/PID/fd"),
		evValue(d.Source, "Max open files (soft)", float64(d.Limit), "hard "+limitString(d.HardLimit)))
	f.Summary = fmt.Sprintf("%s (pid %d) holds %d descriptors against its RLIMIT_NOFILE of %d. ", d.Comm, d.PID, d.OpenFiles, d.Limit)
	if len(d.Listeners) > 0 {
		f.Summary += fmt.Sprintf("Its listener %s has a full accept queue: ", strings.Join(d.Listeners, ", "))
	}
	f.Summary += "accept() needs a new descriptor and fails with EMFILE, leaving the connection queued, so the accept loop spins on the error or stops " +
		"and clients time out or are dropped (accept-queue-overflow)."
	f.Recommendations = nofileRemedies(s, &ProcessState{PID: d.PID, Comm: d.Comm, OpenFiles: d.OpenFiles, NoFile: d.Limit, NoFileHard: d.HardLimit})
	return f
}

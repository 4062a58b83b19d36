package analyze

import (
	"fmt"
	"sort"

	"github.com/snapdiag/snapdiag/bundle"
)

// BundleIncomplete diagnoses bundle-incomplete: evidence the rules needed
// is missing or unreadable.
type BundleIncomplete struct {
	// Collectors are the manifest's collectors that were not ok.
	Collectors []bundle.CollectorStatus
	// DeadlineHit is the manifest's: the capture deadline cut a collector.
	DeadlineHit bool
	// StoppedBy and Signal are the manifest's: bundle.StoppedBySignal and
	// the signal's name when a signal, not the deadline, cut the capture.
	StoppedBy string
	Signal    string
	// Gaps are the members missing or unreadable, by path; members merely
	// absent are left to the manifest's collector status when there is a
	// manifest.
	Gaps []Gap
	// Samples is the number of counter samples; below two there are no
	// deltas.
	Samples int
	// KernelUnknown is true when no kernel release could be read, so
	// current-kernel semantics were assumed.
	KernelUnknown bool
}

// diagnoseBundle says what evidence the bundle lacks, so a reader knows what
// the other rules could not see.
func diagnoseBundle(s *Snapshot) *BundleIncomplete {
	d := &BundleIncomplete{Samples: len(s.Samples), KernelUnknown: !s.Kernel.Known()}
	if s.Manifest != nil {
		for _, c := range s.Manifest.Collectors {
			if c.Status != bundle.StatusOK && c.Status != "" {
				d.Collectors = append(d.Collectors, c)
			}
		}
		d.DeadlineHit = s.Manifest.DeadlineHit
		d.StoppedBy, d.Signal = s.Manifest.StoppedBy, s.Manifest.Signal
	}
	gaps := append([]Gap(nil), s.Gaps...)
	sort.Slice(gaps, func(i, j int) bool { return gaps[i].Path < gaps[j].Path })
	for _, g := range gaps {
		if g.Err == "absent" && s.Manifest != nil {
			continue // the manifest's collector status says why
		}
		d.Gaps = append(d.Gaps, g)
	}
	if len(d.Collectors) == 0 && !d.DeadlineHit && d.StoppedBy == "" && len(d.Gaps) == 0 && d.Samples >= 2 && !d.KernelUnknown {
		return nil
	}
	return d
}

func (d *BundleIncomplete) render(*Snapshot) Finding {
	var ev []Evidence
	for _, c := range d.Collectors {
		ev = append(ev, evValue(bundle.PathManifest, "collector "+c.Name, 0, fmt.Sprintf("%s: %s", c.Status, c.Error)))
	}
	switch {
	case d.StoppedBy == bundle.StoppedBySignal:
		ev = append(ev, evValue(bundle.PathManifest, "stopped_by", 1, "the capture was stopped by "+d.Signal+" before it ran its course"))
	case d.DeadlineHit:
		ev = append(ev, evValue(bundle.PathManifest, "deadline_hit", 1, "the capture deadline cut at least one collector"))
	}
	for _, g := range d.Gaps {
		ev = append(ev, evValue(g.Path, "member", 0, g.Err))
	}
	if d.Samples < 2 {
		ev = append(ev, evValue(bundle.DirSamples, "samples", float64(d.Samples),
			"fewer than two counter samples: no deltas, so rules could judge only the state at capture time"))
	}
	if d.KernelUnknown {
		ev = append(ev, evValue(bundle.PathManifest, "kernel release", 0, "unknown: current-kernel semantics were assumed"))
	}
	return Finding{
		ID:       IDBundleIncomplete,
		Severity: Info,
		Title:    "Some evidence is missing from the bundle",
		Summary:  "The rules said less where evidence was missing or unreadable; findings below rest on what the bundle has.",
		Evidence: ev,
	}
}

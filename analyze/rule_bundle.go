package analyze

import (
	"fmt"
	"sort"

	"github.com/snapdiag/snapdiag/bundle"
)

// ruleBundle says what evidence the bundle lacks, so a reader knows what
// the other rules could not see.
func ruleBundle(s *Snapshot) []Finding {
	var ev []Evidence
	if s.Manifest != nil {
		for _, c := range s.Manifest.Collectors {
			if c.Status != bundle.StatusOK && c.Status != "" {
				ev = append(ev, evValue(bundle.PathManifest, "collector "+c.Name, 0, fmt.Sprintf("%s: %s", c.Status, c.Error)))
			}
		}
		if s.Manifest.DeadlineHit {
			ev = append(ev, evValue(bundle.PathManifest, "deadline_hit", 1, "the capture deadline cut at least one collector"))
		}
	}
	gaps := append([]Gap(nil), s.Gaps...)
	sort.Slice(gaps, func(i, j int) bool { return gaps[i].Path < gaps[j].Path })
	for _, g := range gaps {
		if g.Err == "absent" && s.Manifest != nil {
			continue // the manifest's collector status says why
		}
		ev = append(ev, evValue(g.Path, "member", 0, g.Err))
	}
	if len(s.Samples) < 2 {
		ev = append(ev, evValue(bundle.DirSamples, "samples", float64(len(s.Samples)),
			"fewer than two counter samples: no deltas, so rules could judge only the state at capture time"))
	}
	if !s.Kernel.Known() {
		ev = append(ev, evValue(bundle.PathManifest, "kernel release", 0, "unknown: current-kernel semantics were assumed"))
	}
	if len(ev) == 0 {
		return nil
	}
	return []Finding{{
		ID:       IDBundleIncomplete,
		Severity: Info,
		Title:    "Some evidence is missing from the bundle",
		Summary:  "The rules said less where evidence was missing or unreadable; findings below rest on what the bundle has.",
		Evidence: ev,
	}}
}

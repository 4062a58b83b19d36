package tui

import (
	"fmt"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
)

// missing says why a member a view shows is not in the bundle.
type missing int

const (
	missingNone        missing = iota
	missingNotCaptured         // the manifest has no entry for its collector
	missingOff                 // the collector was disabled (--sample 0)
	missingFailed              // the collector did not end ok: its error says why
	missingDamaged             // the bundle was cut short or is corrupt, and lost it
	missingUnknown             // the collector ran and the bundle is whole
)

func (m missing) String() string {
	return [...]string{"none", "not captured", "off", "failed", "damaged", "unknown"}[m]
}

// whyMissing says why member, written by collector, is not in the bundle
// of snap, and the line the view shows for it; notCaptured is the view's
// line for a bundle whose manifest has no entry for the collector.
func whyMissing(snap *analyze.Snapshot, member, collector, notCaptured string) (missing, string) {
	var st *bundle.CollectorStatus
	if snap != nil && snap.Manifest != nil {
		st = snap.Manifest.Collector(collector)
	}
	switch {
	case snap != nil && snap.Damage != nil && (st == nil || st.Status == bundle.StatusOK):
		return missingDamaged, fmt.Sprintf("No %s: the bundle is damaged and lost it (%v). The manifest view says what is left.", member, snap.Damage)
	case st != nil && st.Status != bundle.StatusOK:
		return missingFailed, fmt.Sprintf("No %s: the %s collector ended %s: %s", member, collector, st.Status, st.Error)
	case st != nil:
		return missingUnknown, fmt.Sprintf("No %s, though the %s collector ran: see the manifest.", member, collector)
	case collector == "packets" && snap != nil && snap.Manifest != nil && snap.Manifest.Options.SampleMS == 0:
		return missingOff, fmt.Sprintf("No %s in this bundle: the packet sample was off (--sample 0).", member)
	}
	return missingNotCaptured, notCaptured
}

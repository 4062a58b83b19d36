package tui

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
)

// truncatedFixture is a lab recording cut short right after its small
// members: the socket table and the packet sample, the last members, are
// lost, as in a bundle copied off a full disk or a transfer cut mid-way.
func truncatedFixture(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "fixtures", "synflood-cookies-off-v4", "bundle.tar.zst")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "truncated.tar.zst")
	// The longest cut that loses both large members but keeps the manifest.
	for n := len(data) - 1; n > 0; n -= 64 {
		if err := os.WriteFile(p, data[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := bundle.Open(p, bundle.Limits{Partial: true})
		if err != nil {
			continue
		}
		var names []string
		for _, m := range b.Members() {
			names = append(names, m.Name)
		}
		b.Close()
		if !slices.Contains(names, bundle.PathSocketsTCP) && !slices.Contains(names, bundle.PathPackets) &&
			slices.Contains(names, bundle.PathSocketsSummary) {
			return p
		}
	}
	t.Fatalf("no cut of %s loses the socket table and the packets but keeps the summary", src)
	return ""
}

// TestTruncatedBundle: on a bundle cut short, Findings holds the
// bundle-incomplete finding analyze reports, and the Sockets and Packets
// views say their member was lost to the damage, not that its collector
// was off.
func TestTruncatedBundle(t *testing.T) {
	p := truncatedFixture(t)
	m := started(newTestModel(t, p, nil), 100, 30)
	fv := m.views[ViewFindings].(*findingsView)
	found := false
	for _, i := range fv.order {
		found = found || m.ctx.Report.Findings[i].ID == analyze.IDBundleIncomplete
	}
	if !found {
		t.Errorf("the findings view lacks %s on a truncated bundle", analyze.IDBundleIncomplete)
	}
	press(m, "5")
	if sk := m.views[ViewSockets].(*socketsView); sk.missing != missingDamaged {
		t.Errorf("sockets view: %v, want %v", sk.missing, missingDamaged)
	}
	if pv := m.views[ViewPackets].(*packetsView); pv.missing != missingDamaged {
		t.Errorf("packets view: %v, want %v", pv.missing, missingDamaged)
	}
}

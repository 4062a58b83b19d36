package tui

import (
	"errors"
	"image/color"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/snapdiag/snapdiag/analyze"
)

// TestViewsShowGivenSnapshot gives the TUI a fixture's snapshot beside an
// empty bundle: the listener, counter and sysctl views must show the
// snapshot's rows, so they come from what the caller parsed, not from a
// second parse of the bundle, which here would find nothing.
func TestViewsShowGivenSnapshot(t *testing.T) {
	var (
		rep  *analyze.Report
		snap *analyze.Snapshot
	)
	for _, fx := range fixtures(t) {
		rep, snap, _ = openFixture(t, fx.path)
		if len(snap.Listeners()) > 0 && len(snap.Samples) > 0 && len(snap.Sysctls) > 0 {
			break
		}
		snap = nil
	}
	if snap == nil {
		t.Fatal("no fixture with listeners, samples and sysctls (the lab fixtures under fixtures/ have them)")
	}
	empty := fstest.MapFS{}
	m := started(New(rep, snap, empty, Options{}), 80, 24)

	lv := m.views[ViewListeners].(*listenersView)
	if got, want := len(lv.all), len(snap.Listeners()); got != want || want == 0 {
		t.Errorf("listeners view holds %d listeners, the snapshot %d (want the same, more than 0)", got, want)
	}
	cv := m.views[ViewCounters].(*countersView)
	if len(snap.Samples) == 0 || len(cv.all) < len(snap.Samples[0].Values) {
		t.Errorf("counters view holds %d counters, the snapshot's first sample %d", len(cv.all), len(snap.Samples[0].Values))
	}
	sv := m.views[ViewSysctls].(*sysctlsView)
	if len(snap.Sysctls) == 0 || len(sv.all) < len(snap.Sysctls) {
		t.Errorf("sysctls view holds %d sysctls, the snapshot %d", len(sv.all), len(snap.Sysctls))
	}
	// The socket table is still read from the bundle, when first shown.
	press(m, "5")
	sk := m.views[ViewSockets].(*socketsView)
	if sk.table != nil || !errors.Is(sk.err, fs.ErrNotExist) {
		t.Errorf("sockets view on an empty bundle: table %v, error %v; want none, fs.ErrNotExist", sk.table != nil, sk.err)
	}
}

// TestFilterLineKeys types a filter in the counters view and closes the
// filter line with each of its keys: enter keeps the filter, esc and
// ctrl+c clear it, and ctrl+c there does not quit.
func TestFilterLineKeys(t *testing.T) {
	fx := fixtures(t)[0]
	for _, tc := range []struct {
		key  string
		want string
	}{
		{"enter", "tcp"},
		{"esc", ""},
		{"ctrl+c", ""},
	} {
		t.Run(tc.key, func(t *testing.T) {
			m := started(newTestModel(t, fx.path, nil), 80, 24)
			press(m, "3", "/")
			typeText(m, "tcp")
			_, cmd := m.Update(keyMsg(tc.key))
			if cmd != nil {
				if _, quit := cmd().(tea.QuitMsg); quit {
					t.Fatalf("%s in the filter line quit the TUI", tc.key)
				}
			}
			if m.filtering {
				t.Errorf("%s left the filter line open", tc.key)
			}
			if got := m.views[ViewCounters].(*countersView).Filter(); got != tc.want {
				t.Errorf("after %s the counters filter is %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

// TestLightBackgroundRestyles: when the terminal answers that its
// background is light, the styles change, and the manifest view, which
// lays out styled lines once, lays them out again: same text, new colours.
func TestLightBackgroundRestyles(t *testing.T) {
	m := started(newTestModel(t, fixtures(t)[0].path, nil), 100, 30)
	mv := m.views[ViewManifest].(*manifestView)
	dark := strings.Join(mv.pager.lines, "\n")
	m.Update(tea.BackgroundColorMsg{Color: color.White})
	light := strings.Join(mv.pager.lines, "\n")
	if dark == light {
		t.Error("the manifest view kept its dark-background colours on a light terminal")
	}
	if ansi.Strip(dark) != ansi.Strip(light) {
		t.Error("restyling changed the manifest view's text")
	}
	if m.ctx.Styles.Critical.GetForeground() == NewStyles(true).Critical.GetForeground() {
		t.Error("the styles are still the dark background's")
	}
}

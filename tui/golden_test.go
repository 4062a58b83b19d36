package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/google/go-cmp/cmp"
)

// sizes are the window sizes every view is rendered at: the smallest the
// TUI is designed for, and a large one.
var goldenSizes = [][2]int{{80, 24}, {160, 48}}

// goldenScreens are the screens rendered for each fixture: each view by its
// number key, and the first finding opened.
func goldenScreens() []struct {
	name string
	keys []string
} {
	out := []struct {
		name string
		keys []string
	}{}
	for i := range numViews {
		out = append(out, struct {
			name string
			keys []string
		}{strings.ToLower(ViewID(i).String()), []string{fmt.Sprint(i + 1)}})
	}
	out = append(out, struct {
		name string
		keys []string
	}{"finding", []string{"1", "enter"}}, struct {
		name string
		keys []string
	}{"help", []string{"?"}})
	return out
}

// TestGolden renders every view of every fixture without colour at 80x24
// and 160x48 and compares with testdata/golden (-update rewrites them).
func TestGolden(t *testing.T) {
	for _, fx := range fixtures(t) {
		for _, sz := range goldenSizes {
			for _, sc := range goldenScreens() {
				name := fmt.Sprintf("%s/%s-%dx%d", fx.name, sc.name, sz[0], sz[1])
				t.Run(name, func(t *testing.T) {
					m := started(newTestModel(t, fx.path, nil), sz[0], sz[1])
					press(m, sc.keys...)
					got := screen(m)
					checkFits(t, got, sz[0], sz[1])
					path := filepath.Join("testdata", "golden", name+".golden")
					if !compareGolden(t, path, got, fx.own) {
						t.Skipf("no golden for the lab fixture %s yet: run go test ./tui -run TestGolden -update", fx.path)
					}
				})
			}
		}
	}
}

// checkFits fails when a render is not exactly h lines of at most w cells,
// or holds an escape sequence although it was rendered without colour.
func checkFits(t *testing.T, got string, w, h int) {
	t.Helper()
	lines := strings.Split(got, "\n")
	if len(lines) != h {
		t.Errorf("render has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Errorf("line %d is %d cells wide, want at most %d: %q", i+1, n, w, l)
		}
		if strings.Contains(l, "\x1b") {
			t.Errorf("line %d holds an escape sequence in a colourless render: %q", i+1, l)
		}
	}
}

// TestResize checks that every view fills the window exactly at sizes
// between the goldens' and after a resize.
func TestResize(t *testing.T) {
	fx := fixtures(t)[0]
	m := started(newTestModel(t, fx.path, nil), 80, 24)
	for _, sz := range [][2]int{{100, 30}, {81, 25}, {200, 60}, {80, 24}} {
		for i := range numViews {
			press(m, fmt.Sprint(i+1))
			m.Update(teaSize(sz[0], sz[1]))
			checkFits(t, screen(m), sz[0], sz[1])
		}
	}
}

// fitSizes are window sizes around the layout's breakpoints (columns that
// appear at 100 and 120), from the least the TUI supports up.
var fitSizes = [][2]int{{80, 24}, {81, 25}, {90, 30}, {99, 24}, {100, 30}, {119, 40}, {120, 40}, {159, 48}, {200, 60}}

// TestFitsEverySize renders every view, and every finding of every fixture
// opened, at each of fitSizes: no line may be wider than the window,
// whatever a finding names (a listener, a process, an IPv6 address). The
// whole page of a finding is checked, not only what shows on screen.
func TestFitsEverySize(t *testing.T) {
	for _, fx := range fixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			m := started(newTestModel(t, fx.path, nil), 80, 24)
			fv := m.views[ViewFindings].(*findingsView)
			for _, sz := range fitSizes {
				m.Update(teaSize(sz[0], sz[1]))
				for i := range numViews {
					press(m, fmt.Sprint(i+1))
					checkFits(t, screen(m), sz[0], sz[1])
				}
				press(m, "1")
				for row := range fv.order {
					fv.detail = nil
					fv.list.setCursor(row)
					fv.openSelected()
					checkFits(t, screen(m), sz[0], sz[1])
					for i, l := range fv.detail.lines {
						if n := ansi.StringWidth(l); n > sz[0] {
							t.Errorf("%s at %dx%d: page line %d is %d cells wide: %q",
								fv.detail.f.ID, sz[0], sz[1], i+1, n, l)
						}
					}
				}
				fv.detail = nil
				// A filter longer than the window.
				press(m, "/")
				typeText(m, strings.Repeat("x", sz[0]+10))
				checkFits(t, screen(m), sz[0], sz[1])
				press(m, "esc")
			}
		})
	}
}

// compareGolden compares got with the golden render at path, or writes it
// there under -update. A missing file fails the test when must is set, and
// otherwise makes compareGolden report false, for the caller to skip.
func compareGolden(t *testing.T, path, got string, must bool) bool {
	t.Helper()
	if updating() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return true
	}
	want, err := os.ReadFile(path)
	if os.IsNotExist(err) && !must {
		return false
	}
	if err != nil {
		t.Fatalf("%v (run with -update to record)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("render of %s differs (-want +got):\n%s", path, diff)
	}
	return true
}

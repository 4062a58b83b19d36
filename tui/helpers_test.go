package tui

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
)

// updating reports whether -update was given: rewrite the golden renders
// under testdata/golden. The flag is teatest's (its golden package defines
// it), so one -update serves both.
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// screen is m's screen without colour or any other escape sequence, as a
// plain terminal shows it.
func screen(m *Model) string { return ansi.Strip(m.Render()) }

// fixture is a recorded bundle the tests open.
type fixture struct {
	name string
	path string
	// own is true for the bundles of testdata/, whose goldens must exist.
	own bool
}

// fixtures lists the bundles of testdata/ and the lab recordings under the
// repository's fixtures/ (bundles or unpacked directories; the hostile
// bundles are not recordings).
func fixtures(t testing.TB) []fixture {
	t.Helper()
	var out []fixture
	own, _ := filepath.Glob("testdata/*.tar.zst")
	for _, p := range own {
		out = append(out, fixture{name: strings.TrimSuffix(filepath.Base(p), ".tar.zst"), path: p, own: true})
	}
	_ = filepath.WalkDir("../fixtures", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && d.Name() == "hostile" {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel("../fixtures", p)
		rel = strings.TrimSuffix(strings.TrimSuffix(rel, ".tar.zst"), "/bundle")
		name := strings.ReplaceAll(rel, "/", "-")
		switch {
		case !d.IsDir() && strings.HasSuffix(p, ".tar.zst"):
			out = append(out, fixture{name: "lab-" + name, path: p})
		case d.IsDir() && fileExists(filepath.Join(p, bundle.PathManifest)):
			out = append(out, fixture{name: "lab-" + name, path: p})
			return filepath.SkipDir
		}
		return nil
	})
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// openFixture opens a bundle, parses and analyses it as `snapdiag tui`
// does; the report names the bundle by its base name so renders do not
// depend on where the repository is.
func openFixture(t testing.TB, path string) (*analyze.Report, *analyze.Snapshot, fs.FS) {
	t.Helper()
	var fsys fs.FS
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		fsys = os.DirFS(path)
	} else {
		// Partial, as snapdiag tui opens it: a damaged bundle is browsed.
		b, err := bundle.Open(path, bundle.Limits{Partial: true})
		if err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		t.Cleanup(func() { b.Close() })
		fsys = b
	}
	snap, err := analyze.Load(fsys)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return analyze.Analyze(snap, filepath.Base(path), analyze.Rules()), snap, fsys
}

// newTestModel is the TUI on a fixture, without colour, with a clipboard
// that records what it is given.
func newTestModel(t testing.TB, path string, clip *[]string) *Model {
	rep, snap, fsys := openFixture(t, path)
	return New(rep, snap, fsys, Options{
		Clipboard: func(s string) error {
			if clip != nil {
				*clip = append(*clip, s)
			}
			return nil
		},
	})
}

// drive runs cmd and every command that follows from it synchronously,
// feeding each message back into m: the loads of the bundle finish before
// drive returns, so a render after it is deterministic.
func drive(m *Model, cmd tea.Cmd) {
	queue := []tea.Cmd{cmd}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		switch msg := c().(type) {
		case nil:
		case tea.BatchMsg:
			queue = append(queue, msg...)
		case tea.QuitMsg:
		default:
			_, next := m.Update(msg)
			queue = append(queue, next)
		}
	}
}

// keyMsg is the key press named as bubbletea names keys ("enter", "esc",
// "tab", "/", "j").
func keyMsg(k string) tea.KeyPressMsg {
	switch k {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	case " ":
		return tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	}
	r := []rune(k)
	return tea.KeyPressMsg{Code: r[0], Text: k}
}

// press sends keys to m and runs what follows from each.
func press(m *Model, keys ...string) {
	for _, k := range keys {
		_, cmd := m.Update(keyMsg(k))
		drive(m, cmd)
	}
}

// typeText sends each rune of s as a key press.
func typeText(m *Model, s string) {
	for _, r := range s {
		press(m, string(r))
	}
}

// started is m after Init and a window size, with its loads done.
func started(m *Model, w, h int) *Model {
	drive(m, m.Init())
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

func teaSize(w, h int) tea.WindowSizeMsg { return tea.WindowSizeMsg{Width: w, Height: h} }

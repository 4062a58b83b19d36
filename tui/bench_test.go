package tui

import (
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
)

// BenchmarkFirstScreen200k measures what `snapdiag tui` does from start to
// its first drawn screen on a bundle of 200,000 sockets: open the bundle,
// parse and analyse it, build the TUI on that snapshot, start its loads and
// draw the findings view at 80x24. Target: under 300 ms.
//
//	go test ./tui -run '^$' -bench FirstScreen200k -benchtime 5x
func BenchmarkFirstScreen200k(b *testing.B) {
	path, _ := writeSocketBundle(b, b.TempDir(), 200_000)
	b.ResetTimer()
	for b.Loop() {
		m, bd := startTUI(b, path)
		// The program starts Init's commands in goroutines and draws at
		// once; the first screen does not wait for them.
		_ = m.Init()
		firstScreen(b, m)
		bd.Close()
	}
}

// BenchmarkViewsReady200k measures the same start as
// BenchmarkFirstScreen200k, then runs Init's commands to their end: the
// time until every view but the sockets view (which loads when first shown)
// has its data.
func BenchmarkViewsReady200k(b *testing.B) {
	path, _ := writeSocketBundle(b, b.TempDir(), 200_000)
	b.ResetTimer()
	for b.Loop() {
		m, bd := startTUI(b, path)
		drive(m, m.Init())
		firstScreen(b, m)
		bd.Close()
	}
}

// startTUI does what `snapdiag tui` does before the program runs: open the
// bundle, parse and analyse it, and build the TUI on the snapshot.
func startTUI(b *testing.B, path string) (*Model, *bundle.Bundle) {
	bd, err := bundle.Open(path, bundle.Limits{Partial: true})
	if err != nil {
		b.Fatal(err)
	}
	snap, err := analyze.Load(bd)
	if err != nil {
		b.Fatal(err)
	}
	rep := analyze.Analyze(snap, path, analyze.Rules())
	return New(rep, snap, bd, Options{}), bd
}

// firstScreen sizes m to 80x24 and draws it.
func firstScreen(b *testing.B, m *Model) {
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	if len(screen(m)) == 0 {
		b.Fatal("empty first screen")
	}
}

// BenchmarkSocketsLoad200k measures the sockets view's background load of
// 200,000 rows (off the UI goroutine: the view shows "loading" meanwhile).
func BenchmarkSocketsLoad200k(b *testing.B) {
	path, _ := writeSocketBundle(b, b.TempDir(), 200_000)
	bd, err := bundle.Open(path, bundle.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	defer bd.Close()
	b.ResetTimer()
	for b.Loop() {
		if msg := loadSockets(bd)().(socketsMsg); msg.err != nil || len(msg.table.rows) != 200_000 {
			b.Fatalf("load: %v", msg.err)
		}
	}
}

// BenchmarkSocketsScroll200k measures one page down and redraw of the
// sockets view over 200,000 rows: the per-key cost a user feels.
func BenchmarkSocketsScroll200k(b *testing.B) {
	path, _ := writeSocketBundle(b, b.TempDir(), 200_000)
	m := newTestModel(b, path, nil)
	started(m, 160, 48)
	press(m, "5")
	b.ResetTimer()
	for b.Loop() {
		m.Update(keyMsg("pgdown"))
		_ = screen(m)
	}
}

// BenchmarkSocketsFilter200k measures filtering and sorting 200,000 rows
// (in a tea.Cmd, off the UI goroutine).
func BenchmarkSocketsFilter200k(b *testing.B) {
	path, _ := writeSocketBundle(b, b.TempDir(), 200_000)
	bd, err := bundle.Open(path, bundle.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	defer bd.Close()
	t := loadSockets(bd)().(socketsMsg).table
	b.ResetTimer()
	for b.Loop() {
		selectSockets(t, "state:estab port:443", sortRecvQ, true)
	}
}

package tui

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// synthTop is a TopSource of scripted readings: reading i is built from i,
// one second apart, so every render is the same on every run.
type synthTop struct {
	mu sync.Mutex
	n  int
	// halfOpen answers HalfOpen by listener.
	halfOpen map[string]TopHalfOpen
}

// topEpoch is the first synthetic reading's time.
var topEpoch = time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)

// synthReading is reading i of a host with four listeners: an IMAP server
// whose SYN queue fills, an application whose accept queue is full and
// dropping, a quiet web server and an idle database whose owner is unknown.
func synthReading(i int) TopReading {
	drops := func(n int) *uint32 { d := uint32(n); return &d }
	syn := min(20*(i+1), 100)
	return TopReading{
		At: topEpoch.Add(time.Duration(i) * time.Second),
		Listeners: []bundle.Listener{
			{Local: "[::]:443", Port: 443, SendQ: 511, RecvQ: uint32(i % 2), SynRecv: 1, PID: 1001, Comm: "nginx", Cookie: 3, Drops: drops(0)},
			{Local: "0.0.0.0:143", Port: 143, SendQ: 100, SynRecv: syn, PID: 812, Comm: "dovecot", Cookie: 1, Drops: drops(4 * i)},
			{Local: "10.211.7.1:8081", Port: 8081, SendQ: 8, RecvQ: 9, PID: 900, Comm: "app-server-with-a-long-name", Cookie: 2, Drops: drops(25 * i)},
			{Local: "127.0.0.1:5432", Port: 5432, SendQ: 244, Cookie: 4, Drops: drops(0)},
		},
		Counters: analyze.ListenPath{
			ListenDrops: int64(1000 + 29*i), ListenOverflows: int64(500 + 25*i), ReqQFullDrop: int64(4 * i),
		},
	}
}

func (s *synthTop) Read(context.Context) TopReading {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := synthReading(s.n)
	s.n++
	return r
}

func (s *synthTop) HalfOpen(_ context.Context, local string) (TopHalfOpen, error) {
	if h, ok := s.halfOpen[local]; ok {
		return h, nil
	}
	return TopHalfOpen{}, nil
}

func newSynthTop() *synthTop {
	return &synthTop{halfOpen: map[string]TopHalfOpen{
		"0.0.0.0:143": {Total: 100, Others: 4, Sources: []TopHalfOpenSource{
			{Addr: "203.0.113.9", Requests: 81, MaxRetrans: 2},
			{Addr: "2001:db8::77", Requests: 12, MaxRetrans: 1},
			{Addr: "198.51.100.4", Requests: 3},
		}},
	}}
}

// topScreen is the Top's screen without escape sequences.
func topScreen(m *Top) string { return ansi.Strip(m.Render()) }

// readTop gives m n readings from src, as the program would, and sizes it.
func readTop(m *Top, src TopSource, n, w, h int) {
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	for range n {
		m.Update(TopReadingMsg{src.Read(context.Background())})
	}
}

// topPress sends keys to m and feeds it the message of the command each
// one starts (a half-open read, a capture); ticks are not followed.
func topPress(m *Top, keys ...string) {
	for _, k := range keys {
		_, cmd := m.Update(keyMsg(k))
		if cmd == nil {
			continue
		}
		if msg := cmd(); msg != nil {
			m.Update(msg)
		}
	}
}

// TestTopGolden renders top's screens from synthetic readings without
// colour at 80x24 and 160x48 and compares them with
// testdata/golden/top (-update rewrites them).
func TestTopGolden(t *testing.T) {
	screens := []struct {
		name  string
		blind []string
		keys  []string
	}{
		{name: "listeners"},
		{name: "halfopen", keys: []string{"j", "enter"}},
		{name: "help", keys: []string{"?"}},
		{name: "filter", keys: []string{"/", "4", "4", "enter"}},
		{name: "nonroot", blind: []string{
			"the process of another user's listener (needs root or CAP_SYS_PTRACE)",
			"packets: a bundle from 'c' has no packet sample (needs CAP_NET_RAW)",
		}},
	}
	for _, sz := range goldenSizes {
		for _, sc := range screens {
			name := fmt.Sprintf("%s-%dx%d", sc.name, sz[0], sz[1])
			t.Run(name, func(t *testing.T) {
				src := newSynthTop()
				m := NewTop(src, TopOptions{Title: "imap1", Blind: sc.blind})
				readTop(m, src, 5, sz[0], sz[1])
				topPress(m, sc.keys...)
				got := topScreen(m)
				checkFits(t, got, sz[0], sz[1])
				checkGolden(t, filepath.Join("top", name), got, "")
			})
		}
	}
}

// TestTopWorstFirst: the rows are in worst-first order, and the cursor
// stays on its listener when the order changes under it.
func TestTopWorstFirst(t *testing.T) {
	src := newSynthTop()
	m := NewTop(src, TopOptions{})
	readTop(m, src, 1, 120, 30)
	var got []string
	for _, r := range m.list.rows {
		got = append(got, r.l.Local)
	}
	// 8081 at 112% (accept queue 9 of 8), 443 with its SYN-RECV 1 of 511
	// ahead of 143 at 20 of 100? No: 143 is at 20%, 443 at 0.2%.
	want := []string{"10.211.7.1:8081", "0.0.0.0:143", "[::]:443", "127.0.0.1:5432"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("order (-want +got):\n%s", diff)
	}
	topPress(m, "j", "j") // [::]:443
	readTop(m, src, 3, 120, 30)
	if l := m.Selected(); l == nil || l.Local != "[::]:443" {
		t.Errorf("cursor on %v after new readings, want [::]:443", l)
	}
	// Drops per second: 25 a reading, one second apart.
	if r := m.list.byKey["10.211.7.1:8081#2"]; r == nil || !r.dropsKnown || r.dropRate != 25 {
		t.Errorf("8081's drop rate: %+v, want 25/s", r)
	}
}

// runTop runs m as a program, sends keys, waits until the screen shows
// until, quits and returns the final model. The screen is asked of the
// running program (topProbe), as runKeys does for the browser.
func runTop(t *testing.T, m *Top, keys []tea.KeyPressMsg, until func(screen string) bool) *Top {
	t.Helper()
	tm := teatest.NewTestModel(t, topProbed{m}, teatest.WithInitialTermSize(120, 40))
	// Keys move among rows: send them once the first reading shows.
	waitTop(t, tm, contains("› 10.211.7.1:8081"))
	for _, k := range keys {
		tm.Send(k)
	}
	waitTop(t, tm, until)
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	return tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(topProbed).Top
}

// waitTop waits until the running program's screen passes ok.
func waitTop(t *testing.T, tm *teatest.TestModel, ok func(string) bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, "the screen", func() (bool, string) {
		ch := make(screenProbe, 1)
		tm.Send(ch)
		select {
		case screen := <-ch:
			return ok(screen), screen
		case <-time.After(time.Second):
			return false, "the program did not answer"
		}
	})
}

// topProbed is a Top that answers screenProbe.
type topProbed struct{ *Top }

func (p topProbed) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if ch, ok := msg.(screenProbe); ok {
		ch <- topScreen(p.Top)
		return p, nil
	}
	_, cmd := p.Top.Update(msg)
	return p, cmd
}

func contains(s string) func(string) bool {
	return func(screen string) bool { return strings.Contains(screen, s) }
}

// TestTopKeysHalfOpen: Enter on a listener shows its half-open sources,
// esc goes back to the list on the same listener.
func TestTopKeysHalfOpen(t *testing.T) {
	m := NewTop(newSynthTop(), TopOptions{Every: time.Hour})
	final := runTop(t, m, keys("j", "enter"), contains("203.0.113.9"))
	if d := final.Detail(); d == nil || d.Local != "0.0.0.0:143" {
		t.Fatalf("detail of %v, want 0.0.0.0:143", d)
	}
	if got := final.detail.h.Sources[0]; got.Addr != "203.0.113.9" || got.Requests != 81 {
		t.Errorf("first source %+v", got)
	}

	m = NewTop(newSynthTop(), TopOptions{Every: time.Hour})
	final = runTop(t, m, keys("j", "enter", "esc"), contains("› 0.0.0.0:143"))
	if final.Detail() != nil {
		t.Errorf("esc left the detail of %v open", final.Detail())
	}
}

// TestTopKeysFilterAndQuit: '/' narrows the rows, esc clears the filter,
// and q ends the program.
func TestTopKeysFilterAndQuit(t *testing.T) {
	m := NewTop(newSynthTop(), TopOptions{Every: time.Hour})
	final := runTop(t, m, keys("/", "5", "4", "3", "enter"), contains("/543"))
	if len(final.list.rows) != 1 || final.list.rows[0].l.Port != 5432 {
		t.Fatalf("filter 543 shows %d rows", len(final.list.rows))
	}

	m = NewTop(newSynthTop(), TopOptions{Every: time.Hour})
	tm := teatest.NewTestModel(t, topProbed{m}, teatest.WithInitialTermSize(120, 40))
	waitTop(t, tm, contains("› 10.211.7.1:8081"))
	tm.Send(keyMsg("q"))
	// The program ends on its own: FinalModel fails if it does not.
	tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second))
}

// TestTopCaptureStaysLive: 'c' runs the capture in the background: readings
// go on while it runs, and the footer then says where the bundle went.
func TestTopCaptureStaysLive(t *testing.T) {
	release := make(chan struct{})
	const path = "/var/lib/snapdiag/snapdiag-imap1-20261206T030005Z.tar.zst"
	capture := func(ctx context.Context) (string, error) {
		<-release
		return path, nil
	}
	m := NewTop(newSynthTop(), TopOptions{Every: 10 * time.Millisecond, Capture: capture})
	tm := teatest.NewTestModel(t, topProbed{m}, teatest.WithInitialTermSize(120, 40))
	waitTop(t, tm, contains("› 10.211.7.1:8081"))
	tm.Send(keyMsg("c"))
	var during time.Time
	waitTop(t, tm, func(screen string) bool {
		during = readingTime(screen)
		return strings.Contains(screen, "capturing a bundle")
	})
	// Readings still come while the capture runs: a later reading shows,
	// the capture still running.
	waitTop(t, tm, func(screen string) bool {
		return readingTime(screen).After(during) && strings.Contains(screen, "capturing a bundle")
	})
	close(release)
	waitTop(t, tm, contains("bundle written: "+path))
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	final := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(topProbed).Top
	if final.Captured() != path {
		t.Errorf("captured %q, want %q", final.Captured(), path)
	}
}

// readingTime is the time of the reading the header shows.
func readingTime(screen string) time.Time {
	header, _, _ := strings.Cut(screen, "\n")
	for _, f := range strings.Fields(header) {
		if t, err := time.Parse("15:04:05Z", f); err == nil {
			return t
		}
	}
	return time.Time{}
}

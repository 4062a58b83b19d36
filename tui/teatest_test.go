package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// runKeys runs m as a program, sends keys, waits until the screen shows
// until (when given), quits and returns the final model.
//
// The screen is asked of the running program (screenProbe), not read from
// its output: Bubble Tea v2's renderer rewrites only the cells that
// changed, so a line on screen need not appear whole in the byte stream.
func runKeys(t *testing.T, m *Model, keys []tea.KeyPressMsg, until string) *Model {
	t.Helper()
	tm := teatest.NewTestModel(t, probed{m}, teatest.WithInitialTermSize(120, 40))
	for _, k := range keys {
		tm.Send(k)
	}
	if until != "" {
		testutil.Eventually(t, 10*time.Second, fmt.Sprintf("the screen shows %q", until), func() (bool, string) {
			ch := make(screenProbe, 1)
			tm.Send(ch)
			select {
			case screen := <-ch:
				return strings.Contains(screen, until), screen
			case <-time.After(time.Second):
				return false, "the program did not answer"
			}
		})
	}
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	return tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(probed).Model
}

// screenProbe asks a running program for its screen as text; the program's
// own goroutine answers, so the model is read where it is changed.
type screenProbe chan string

// probed is a Model that answers screenProbe.
type probed struct{ *Model }

func (p probed) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if ch, ok := msg.(screenProbe); ok {
		ch <- ansi.Strip(p.Model.Render())
		return p, nil
	}
	_, cmd := p.Model.Update(msg)
	return p, cmd
}

func keys(ks ...string) []tea.KeyPressMsg {
	out := make([]tea.KeyPressMsg, len(ks))
	for i, k := range ks {
		out[i] = keyMsg(k)
	}
	return out
}

// findFixture is the first fixture whose report has a finding with the
// given id and evidence passing ok; ok may be nil.
func findFixture(t *testing.T, id string, ok func(analyze.Evidence) bool) (fixture, int, int) {
	for _, fx := range fixtures(t) {
		rep, snap, _ := openFixture(t, fx.path)
		m := New(rep, snap, nil, Options{})
		fv := m.views[ViewFindings].(*findingsView)
		for row := range fv.order {
			f := fv.finding(row)
			if f.ID != id {
				continue
			}
			if ok == nil {
				return fx, row, -1
			}
			for i, e := range f.Evidence {
				if ok(e) {
					return fx, row, i
				}
			}
		}
	}
	return fixture{}, -1, -1
}

// down is n presses of j.
func down(n int) []string { return slicesRepeat("j", n) }

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestOpenFindingJumpToCounter opens a finding and follows its first
// counter evidence to the counters view, filtered to that counter.
func TestOpenFindingJumpToCounter(t *testing.T) {
	fx, row, ev := findFixture(t, analyze.IDAcceptQueueOverflow, func(e analyze.Evidence) bool {
		return strings.HasPrefix(e.Metric, "TcpExt.")
	})
	if row < 0 {
		t.Fatal("no fixture with an accept-queue-overflow finding and counter evidence (testdata/acceptq.tar.zst has one)")
	}
	m := newTestModel(t, fx.path, nil)
	want := m.views[ViewFindings].(*findingsView).finding(row).Evidence[ev].Metric
	ks := append(down(row), "enter")
	ks = append(ks, down(ev)...)
	ks = append(ks, "enter")
	final := runKeys(t, m, keys(ks...), "/"+want)
	if final.Active() != ViewCounters {
		t.Fatalf("active view %v, want Counters", final.Active())
	}
	cv := final.views[ViewCounters].(*countersView)
	if cv.Filter() != want {
		t.Errorf("counters filter %q, want %q", cv.Filter(), want)
	}
	if len(cv.rows) == 0 || cv.all[cv.rows[cv.list.cursor]].name != want {
		t.Errorf("selected counter is not %s", want)
	}
}

// TestJumpToSysctlAndCopy opens a finding, follows its sysctl evidence to
// the sysctls view, comes back and copies the recommended command.
func TestJumpToSysctlAndCopy(t *testing.T) {
	fx, row, ev := findFixture(t, analyze.IDRiskySysctl, func(e analyze.Evidence) bool {
		return strings.HasPrefix(e.Source, "proc/sys/")
	})
	if row < 0 {
		t.Fatal("no fixture with a risky-sysctl finding (testdata/acceptq.tar.zst has one)")
	}
	var clip []string
	m := newTestModel(t, fx.path, &clip)
	f := m.views[ViewFindings].(*findingsView).finding(row)
	key := f.Evidence[ev].Metric
	ks := append(down(row), "enter")
	ks = append(ks, down(ev)...)
	ks = append(ks, "enter")
	final := runKeys(t, m, keys(ks...), "4 Sysctls]")
	if final.Active() != ViewSysctls {
		t.Fatalf("active view %v, want Sysctls", final.Active())
	}
	sv := final.views[ViewSysctls].(*sysctlsView)
	if got := sv.all[sv.rows[sv.list.cursor]].name; got != key {
		t.Errorf("selected sysctl %q, want %q", got, key)
	}

	// Back to the finding: 'c' copies its first command.
	m = newTestModel(t, fx.path, &clip)
	cmd := f.Recommendations[0].Commands[0]
	final = runKeys(t, m, keys(append(append(down(row), "enter"), "c")...), "copied: "+cmd)
	if final.Copied() != cmd {
		t.Errorf("copied %q, want %q", final.Copied(), cmd)
	}
	if len(clip) == 0 || clip[len(clip)-1] != cmd {
		t.Errorf("clipboard got %q, want %q", clip, cmd)
	}
}

// TestJumpToListener opens a finding with listener evidence and follows it
// to the listeners view, at that listener's row. The listeners view is
// first filtered to hide every row, so the jump has to clear the filter and
// select the row itself: a cursor left on row 0 of a one-listener fixture
// would otherwise pass by accident.
func TestJumpToListener(t *testing.T) {
	for _, id := range []string{analyze.IDSynQueueOverflow, analyze.IDAcceptQueueOverflow} {
		t.Run(id, func(t *testing.T) {
			fx, row, ev := findFixture(t, id, func(e analyze.Evidence) bool {
				return strings.HasPrefix(e.Metric, "listener ")
			})
			if row < 0 {
				t.Fatalf("no fixture has a %s finding with listener evidence: the lab fixtures under fixtures/ "+
					"hold samples/NNN/listeners.json and should", id)
			}
			m := newTestModel(t, fx.path, nil)
			e := m.views[ViewFindings].(*findingsView).finding(row).Evidence[ev]
			want, _, _ := strings.Cut(strings.TrimPrefix(e.Metric, "listener "), " ")
			ks := []string{"2", "/"}
			ks = append(ks, strings.Split("no-such-listener", "")...)
			ks = append(ks, "enter", "1")
			ks = append(ks, down(row)...)
			ks = append(ks, "enter")
			ks = append(ks, down(ev)...)
			ks = append(ks, "enter")
			final := runKeys(t, m, keys(ks...), "› "+want)
			if final.Active() != ViewListeners {
				t.Fatalf("active view %v, want Listeners", final.Active())
			}
			lv := final.views[ViewListeners].(*listenersView)
			if lv.Filter() != "" {
				t.Errorf("listeners filter %q left after the jump, want none", lv.Filter())
			}
			if l := lv.Selected(); l == nil || l.Local != want {
				t.Errorf("selected listener %v, want %s", l, want)
			}
		})
	}
}

// TestFilterSockets types a filter into the sockets view of a synthetic
// 20,000-socket bundle and checks the rows that pass.
func TestFilterSockets(t *testing.T) {
	path, want := writeSocketBundle(t, t.TempDir(), 20000)
	m := newTestModel(t, path, nil)
	ks := []string{"5", "/"}
	for _, r := range "state:estab lport:443" {
		ks = append(ks, string(r))
	}
	ks = append(ks, "enter")
	final := runKeys(t, m, keys(ks...), fmt.Sprintf("20000 sockets · %d match · sort", want))
	sv := final.views[ViewSockets].(*socketsView)
	if sv.Filter() != "state:estab lport:443" {
		t.Fatalf("filter %q", sv.Filter())
	}
	if got := sv.Rows(); got != want {
		t.Errorf("%d sockets pass state:estab lport:443, want %d", got, want)
	}
	for i := range min(sv.Rows(), 50) {
		r := sv.table.rows[sv.idx[i]]
		if sv.table.states[r.state] != "ESTAB" || r.lport != 443 {
			t.Errorf("row %d passed the filter: %+v", i, r)
		}
	}
}

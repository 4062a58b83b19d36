package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/internal/safetext"
)

// counterRow is one kernel counter over the capture.
type counterRow struct {
	name   string
	delta  analyze.Delta
	last   int64
	trend  []float64 // the increment of each interval
	source string
}

// countersView shows every counter's movement per second over the capture,
// the ones that moved first; '/' searches by name.
type countersView struct {
	ctx     *Context
	list    *table
	all     []counterRow
	rows    []int
	filter  string
	pending string
}

func newCountersView(ctx *Context) *countersView {
	v := &countersView{ctx: ctx}
	v.list = newTable(ctx, []column{
		{title: "COUNTER", width: 26, flex: 2},
		{title: "PER SEC", width: 10, right: true},
		{title: "DELTA", width: 10, right: true},
		{title: "VALUE", width: 13, right: true},
		{title: "PER INTERVAL", width: 12, flex: 1, minWindow: 96},
		{title: "SOURCE", width: 30, minWindow: 140},
	})
	v.list.cell = v.cell
	v.list.empty = "loading…"
	return v
}

func (v *countersView) cell(r, c int) string {
	row := &v.all[v.rows[r]]
	d := row.delta
	switch c {
	case 0:
		return row.name
	case 1:
		if !d.OK || d.Seconds == 0 {
			return "—"
		}
		return strconv.FormatFloat(d.PerSecond, 'f', 1, 64)
	case 2:
		if !d.OK {
			if d.Samples >= 2 {
				return "reset"
			}
			return "—"
		}
		return strconv.FormatInt(d.Delta, 10)
	case 3:
		return strconv.FormatInt(row.last, 10)
	case 4:
		return sparkline(row.trend, 0, 60)
	case 5:
		return row.source
	}
	return ""
}

func (v *countersView) Filter() string   { return v.filter }
func (v *countersView) SetSize(w, h int) { v.list.setSize(w, h) }
func (v *countersView) View() string     { return v.list.View() }

func (v *countersView) SetFilter(s string) tea.Cmd {
	v.filter = s
	v.refilter()
	return nil
}

func (v *countersView) refilter() {
	v.rows = v.rows[:0]
	q := strings.ToLower(v.filter)
	for i := range v.all {
		if q == "" || strings.Contains(strings.ToLower(v.all[i].name), q) {
			v.rows = append(v.rows, i)
		}
	}
	v.list.setRows(len(v.rows))
	if v.filter != "" && len(v.rows) == 0 && v.all != nil {
		v.list.empty = fmt.Sprintf("No counter matches %q.", v.filter)
	}
}

// Jump filters to the counter named t.Key and selects it.
func (v *countersView) Jump(t Target) tea.Cmd {
	v.filter = t.Filter
	v.pending = t.Key
	v.refilter()
	v.selectPending()
	return nil
}

func (v *countersView) selectPending() {
	if v.pending == "" || v.all == nil {
		return
	}
	for i, idx := range v.rows {
		if v.all[idx].name == v.pending {
			v.list.setCursor(i)
			break
		}
	}
	v.pending = ""
}

func (v *countersView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case snapshotMsg:
		v.load(msg.snap)
	case tea.KeyPressMsg:
		v.list.handleKey(msg)
	}
	return nil
}

func (v *countersView) load(s *analyze.Snapshot) {
	counters := s.Counters()
	v.all = make([]counterRow, 0, len(counters))
	for _, c := range counters {
		// A counter's name is the bundle's (its /proc/net files) and
		// unexported in analyze.Counter, so safetext.Strings did not reach
		// it: it is made safe here, as the report's keys that jump to it.
		row := counterRow{name: safetext.Line(c.String()), delta: s.Delta(c)}
		row.last, row.source, _ = s.Value(c)
		for _, x := range s.Intervals(c) {
			row.trend = append(row.trend, float64(max(x, 0)))
		}
		v.all = append(v.all, row)
	}
	// Moved first, fastest first; the rest by name.
	slices.SortStableFunc(v.all, func(a, b counterRow) int {
		am, bm := a.delta.Moved(), b.delta.Moved()
		switch {
		case am && !bm:
			return -1
		case bm && !am:
			return 1
		case am && bm:
			return cmp.Or(cmp.Compare(b.delta.PerSecond, a.delta.PerSecond), cmp.Compare(b.delta.Delta, a.delta.Delta))
		}
		return 0
	})
	v.list.empty = "No counters in this bundle's samples."
	if len(s.Samples) < 2 {
		v.list.empty = "Fewer than two samples: no deltas."
	}
	v.refilter()
	v.selectPending()
}

func (v *countersView) ShortHelp() []key.Binding {
	k := v.ctx.Keys
	return []key.Binding{k.Up, k.Down, k.PageDown, withHelp(k.Filter, "/", "search by name")}
}

func (v *countersView) FullHelp() [][]key.Binding {
	return [][]key.Binding{v.ctx.Keys.navHelp(), v.ShortHelp()}
}

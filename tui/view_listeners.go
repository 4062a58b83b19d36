package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/snapdiag/snapdiag/analyze"
)

// listenersView shows every listener's accept queue and SYN-RECV count
// against its backlog, each with a sparkline across the samples, the
// fullest first. Enter shows the listener's sockets.
type listenersView struct {
	ctx     *Context
	list    *table
	all     []*analyze.ListenerState
	rows    []*analyze.ListenerState
	filter  string
	pending string // a listener to select once loaded
	samples int
}

func newListenersView(ctx *Context) *listenersView {
	v := &listenersView{ctx: ctx}
	cols := []column{
		{title: "LISTENER", width: 21, flex: 2, addr: true},
		{title: "PROCESS", width: 18, minWindow: 100},
	}
	v.list = newTable(ctx, append(append(cols, queueColumns()...),
		// The socket's own drops during the capture (sk_drops): a queue
		// that filled between samples shows here, not in the counts.
		column{title: "DROPS", width: 7, right: true, minWindow: 100},
		// Both charts at every width: an accept-queue incident shows only
		// in the first, a SYN flood only in the second. The titles are the
		// count columns' with a sparkline, to fit both in 80 columns.
		column{title: "ACCEPTQ ▁▄█", width: 12, flex: 1},
		column{title: "SYN-RECV ▁▄█", width: 12, flex: 1},
	))
	v.list.cell = v.cell
	v.list.rowStyle = func(r int) (lipgloss.Style, bool) {
		switch f := fill(v.rows[r]); {
		case f >= 1:
			return ctx.Styles.Critical, true
		case f >= 0.5 || v.rows[r].Drops.Moved():
			return ctx.Styles.Warning, true
		}
		return lipgloss.Style{}, false
	}
	v.list.empty = "loading…"
	return v
}

// fill is how full the fuller of the listener's two queues got, as a share
// of its backlog (Send-Q).
func fill(l *analyze.ListenerState) float64 {
	worst := max(float64(l.MaxRecvQ()), float64(l.MaxSynRecv()))
	if l.SendQ == 0 {
		if worst > 0 {
			return 1
		}
		return 0
	}
	return worst / float64(l.SendQ)
}

func (v *listenersView) cell(r, c int) string {
	l := v.rows[r]
	switch c {
	case 0:
		s := l.Local
		if l.ReusePort {
			s += " (reuseport)"
		}
		return s
	case 1:
		return processCell(l.Comm, l.PID, v.list.widths()[1])
	case 2:
		return strconv.FormatUint(uint64(l.SendQ), 10)
	case 3:
		return strconv.FormatUint(uint64(l.MaxRecvQ()), 10)
	case 4:
		return strconv.Itoa(l.MaxSynRecv())
	case 5:
		return fmt.Sprintf("%.0f%%", fill(l)*100)
	case 6:
		if !l.Drops.Known {
			return "—"
		}
		return strconv.FormatInt(l.Drops.Delta, 10)
	case 7:
		vals := make([]float64, len(l.RecvQs))
		for i, x := range l.RecvQs {
			vals[i] = float64(x)
		}
		return sparkline(vals, float64(max(l.SendQ, 1)), 60)
	case 8:
		vals := make([]float64, len(l.SynRecvs))
		for i, x := range l.SynRecvs {
			vals[i] = float64(x)
		}
		return sparkline(vals, float64(max(l.SendQ, 1)), 60)
	}
	return ""
}

func (v *listenersView) Filter() string   { return v.filter }
func (v *listenersView) SetSize(w, h int) { v.list.setSize(w, h) }
func (v *listenersView) View() string     { return v.list.View() }

func (v *listenersView) SetFilter(s string) tea.Cmd {
	v.filter = s
	v.refilter()
	return nil
}

func (v *listenersView) refilter() {
	v.rows = v.rows[:0]
	q := strings.ToLower(v.filter)
	for _, l := range v.all {
		if q == "" || strings.Contains(strings.ToLower(l.Local+" "+l.Comm+" "+strconv.Itoa(l.Port)), q) {
			v.rows = append(v.rows, l)
		}
	}
	v.list.setRows(len(v.rows))
}

// Selected is the listener under the cursor, nil when there is none.
func (v *listenersView) Selected() *analyze.ListenerState {
	if len(v.rows) == 0 {
		return nil
	}
	return v.rows[v.list.cursor]
}

// Jump selects the listener whose ADDR:PORT is t.Key.
func (v *listenersView) Jump(t Target) tea.Cmd {
	v.pending = t.Key
	v.filter = ""
	v.refilter()
	v.selectPending()
	return nil
}

func (v *listenersView) selectPending() {
	if v.pending == "" || v.all == nil {
		return
	}
	for i, l := range v.rows {
		if l.Local == v.pending {
			v.list.setCursor(i)
			v.pending = ""
			return
		}
	}
}

func (v *listenersView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case snapshotMsg:
		v.load(msg.snap)
	case tea.KeyPressMsg:
		if v.list.handleKey(msg) {
			return nil
		}
		if key.Matches(msg, v.ctx.Keys.Open) {
			if l := v.Selected(); l != nil {
				t := Target{View: ViewSockets, Filter: "lport:" + strconv.Itoa(l.Port)}
				return func() tea.Msg { return JumpMsg{Target: t} }
			}
		}
	}
	return nil
}

func (v *listenersView) load(s *analyze.Snapshot) {
	v.list.empty = "No TCP listener in this bundle."
	if !hasListeners(s) {
		v.list.empty = "No listeners.json in this bundle's samples: it was captured without the socket collector."
	}
	v.all = s.Listeners()
	v.samples = len(s.Samples)
	// The fullest first: that is where connections are being lost.
	slices.SortStableFunc(v.all, func(a, b *analyze.ListenerState) int {
		return cmp.Or(cmp.Compare(fill(b), fill(a)), cmp.Compare(b.MaxSynRecv(), a.MaxSynRecv()),
			cmp.Compare(a.Port, b.Port))
	})
	v.refilter()
	v.selectPending()
}

func hasListeners(s *analyze.Snapshot) bool {
	for _, sm := range s.Samples {
		if sm.HasListeners {
			return true
		}
	}
	return false
}

func (v *listenersView) ShortHelp() []key.Binding {
	k := v.ctx.Keys
	return []key.Binding{k.Up, k.Down, withHelp(k.Open, "enter", "its sockets"), withHelp(k.Filter, "/", "filter")}
}

func (v *listenersView) FullHelp() [][]key.Binding {
	return [][]key.Binding{v.ctx.Keys.navHelp(), v.ShortHelp()}
}

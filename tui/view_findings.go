package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/snapdiag/snapdiag/analyze"
)

// findingsView lists the report's findings, most severe first, under the
// verdict; Enter opens one (findingDetail).
type findingsView struct {
	ctx    *Context
	list   *table
	order  []int // indexes into Report.Findings, filtered, in severity order
	filter string
	detail *findingDetail // nil while the list shows
	width  int
	height int
}

func newFindingsView(ctx *Context) *findingsView {
	v := &findingsView{ctx: ctx}
	v.list = newTable(ctx, []column{
		{title: "SEVERITY", width: 8},
		{title: "FINDING", width: 22, minWindow: 60},
		{title: "WHERE", width: 21, minWindow: 120, addr: true},
		{title: "TITLE", width: 20, flex: 1},
	})
	v.list.cell = v.cell
	v.list.rowStyle = func(r int) (lipgloss.Style, bool) {
		return ctx.Styles.Severity(v.finding(r).Severity), true
	}
	v.list.empty = "No findings: nothing in this bundle needs attention."
	v.refilter()
	return v
}

func (v *findingsView) finding(row int) *analyze.Finding {
	return &v.ctx.Report.Findings[v.order[row]]
}

func (v *findingsView) cell(row, col int) string {
	f := v.finding(row)
	switch col {
	case 0:
		return f.Severity.String()
	case 1:
		return f.ID
	case 2:
		return cmp.Or(f.Listener, f.Key)
	}
	if f.NetNS != nil && v.ctx.Focus == nil {
		// The whole node: which pod, before what.
		return f.NetNS.String() + ": " + f.Title
	}
	return f.Title
}

func (v *findingsView) refilter() {
	fs := v.ctx.Report.Findings
	q := strings.ToLower(v.filter)
	v.order = v.order[:0]
	for i := range fs {
		f := &fs[i]
		if !v.ctx.inFocus(f) {
			continue
		}
		hay := strings.ToLower(f.ID + " " + f.Severity.String() + " " + f.Title + " " + f.Listener + " " + f.Key + " " + f.NetNS.String())
		if q == "" || strings.Contains(hay, q) {
			v.order = append(v.order, i)
		}
	}
	slices.SortStableFunc(v.order, func(a, b int) int { return int(fs[b].Severity) - int(fs[a].Severity) })
	v.list.setRows(len(v.order))
}

func (v *findingsView) Filter() string { return v.filter }

func (v *findingsView) SetFilter(s string) tea.Cmd {
	v.filter = s
	v.refilter()
	return nil
}

func (v *findingsView) SetSize(w, h int) {
	v.width, v.height = w, h
	v.list.setSize(w, max(h-len(v.verdictLines()), 1))
	if v.detail != nil {
		v.detail.setSize(w, h)
	}
}

// verdictLines are the verdict and a blank line, above the list.
func (v *findingsView) verdictLines() []string {
	rep := v.ctx.Report
	text := rep.Verdict
	if text == "" {
		text = "No verdict in this report."
	}
	sev, worst := rep.Worst()
	if f := v.ctx.Focus; f != nil {
		// The verdict of the namespace in focus: the report's is the
		// node's.
		text = namespaceName(f) + ": no findings."
		worst = f.Findings > 0
		if worst {
			sev, _ = analyze.ParseSeverity(f.Worst)
			text = fmt.Sprintf("%s: %s, the worst %s.", namespaceName(f), countOf(f.Findings, "finding", "findings"), f.Worst)
		}
	}
	lines := wrap(text, max(v.width-2, 8))
	if len(lines) > 3 {
		lines = append(lines[:2], strings.TrimSpace(lines[2])+" …")
	}
	st := v.ctx.Styles.OK
	if worst && sev > analyze.Info {
		st = v.ctx.Styles.Severity(sev)
	}
	out := make([]string, 0, len(lines)+1)
	for _, l := range lines {
		out = append(out, st.Render(" "+l))
	}
	return append(out, "")
}

// Selected is the finding under the cursor, nil when there is none.
func (v *findingsView) Selected() *analyze.Finding {
	if len(v.order) == 0 {
		return nil
	}
	return v.finding(v.list.cursor)
}

func (v *findingsView) Update(msg tea.Msg) tea.Cmd {
	if _, ok := msg.(focusMsg); ok {
		// The root model has moved the focus: the list is the new
		// namespace's findings, from the top.
		v.detail = nil
		v.refilter()
		v.list.setCursor(0)
		v.SetSize(v.width, v.height)
		return nil
	}
	km, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil
	}
	if v.detail != nil {
		return v.detail.update(km)
	}
	if v.list.handleKey(km) {
		return nil
	}
	if key.Matches(km, v.ctx.Keys.Open) {
		v.openSelected()
	}
	return nil
}

// openSelected opens the finding under the cursor.
func (v *findingsView) openSelected() {
	if f := v.Selected(); f != nil {
		v.detail = newFindingDetail(v.ctx, f)
		v.detail.setSize(v.width, v.height)
	}
}

func (v *findingsView) Back() bool {
	if v.detail != nil {
		v.detail = nil
		return true
	}
	return false
}

// Jump selects a finding by id (the first one with that id).
func (v *findingsView) Jump(t Target) tea.Cmd {
	for i := range v.order {
		if v.finding(i).ID == t.Key {
			v.detail = nil
			v.list.setCursor(i)
			return nil
		}
	}
	return nil
}

func (v *findingsView) View() string {
	if v.detail != nil {
		return v.detail.view()
	}
	return strings.Join(v.verdictLines(), "\n") + "\n" + v.list.View()
}

func (v *findingsView) ShortHelp() []key.Binding {
	k := v.ctx.Keys
	if v.detail != nil {
		return v.detail.shortHelp()
	}
	return []key.Binding{k.Up, k.Down, withHelp(k.Open, "enter", "open finding"), k.NextTab}
}

func (v *findingsView) FullHelp() [][]key.Binding {
	k := v.ctx.Keys
	if v.detail != nil {
		return [][]key.Binding{k.navHelp(), v.detail.shortHelp()}
	}
	return [][]key.Binding{k.navHelp(), {withHelp(k.Open, "enter", "open finding"), withHelp(k.Filter, "/", "filter findings")}}
}

// withHelp is b with another help text.
func withHelp(b key.Binding, keys, desc string) key.Binding {
	b.SetHelp(keys, desc)
	return b
}

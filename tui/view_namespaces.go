package tui

import (
	"slices"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/snapdiag/snapdiag/analyze"
)

// namespacesView lists the network namespaces of a whole-node bundle
// (capture --all-netns), the worst first: who owns each, its listeners,
// its worst finding. Enter puts one in focus, so that the other views show
// that namespace alone; esc puts the whole node back.
type namespacesView struct {
	ctx    *Context
	list   *table
	order  []int // indexes into Report.Namespaces, filtered, worst first
	filter string
}

func newNamespacesView(ctx *Context) *namespacesView {
	v := &namespacesView{ctx: ctx}
	v.list = newTable(ctx, []column{
		{title: "WORST", width: 8},
		{title: "FINDINGS", width: 8, right: true},
		{title: "LISTENERS", width: 9, right: true},
		{title: "NAMESPACE", width: 20, flex: 1},
		{title: "INODE", width: 10, right: true, minWindow: 100},
	})
	v.list.cell = v.cell
	v.list.rowStyle = func(r int) (lipgloss.Style, bool) {
		ns := v.namespace(r)
		if ns.Findings == 0 {
			return lipgloss.Style{}, false
		}
		sev, _ := analyze.ParseSeverity(ns.Worst)
		return ctx.Styles.Severity(sev), true
	}
	v.list.empty = "This bundle holds one network namespace: capture --all-netns records every namespace of a node."
	v.refilter()
	return v
}

func (v *namespacesView) namespace(row int) *analyze.NamespaceSummary {
	return &v.ctx.Report.Namespaces[v.order[row]]
}

func (v *namespacesView) cell(row, col int) string {
	ns := v.namespace(row)
	switch col {
	case 0:
		if ns.Findings == 0 {
			return "-"
		}
		return ns.Worst
	case 1:
		return strconv.Itoa(ns.Findings)
	case 2:
		return strconv.Itoa(ns.Listeners)
	case 3:
		name := namespaceName(ns)
		if f := v.ctx.Focus; f != nil && f.NetNS.Inode == ns.NetNS.Inode && f.Dir == ns.Dir {
			name = "▸ " + name
		}
		return name
	}
	return strconv.FormatUint(ns.NetNS.Inode, 10)
}

// severityRank orders a summary's worst severity, no findings lowest.
func severityRank(ns *analyze.NamespaceSummary) int {
	if ns.Findings == 0 {
		return -1
	}
	s, _ := analyze.ParseSeverity(ns.Worst)
	return int(s)
}

func (v *namespacesView) refilter() {
	all := v.ctx.Report.Namespaces
	q := strings.ToLower(v.filter)
	v.order = v.order[:0]
	for i := range all {
		ns := &all[i]
		hay := strings.ToLower(namespaceName(ns) + " " + ns.Worst + " " + strconv.FormatUint(ns.NetNS.Inode, 10))
		if q == "" || strings.Contains(hay, q) {
			v.order = append(v.order, i)
		}
	}
	// Worst first, then the most findings; the report's order (the host
	// first, then the manifest's) among equals.
	slices.SortStableFunc(v.order, func(a, b int) int {
		if d := severityRank(&all[b]) - severityRank(&all[a]); d != 0 {
			return d
		}
		return all[b].Findings - all[a].Findings
	})
	v.list.setRows(len(v.order))
}

func (v *namespacesView) Filter() string   { return v.filter }
func (v *namespacesView) SetSize(w, h int) { v.list.setSize(w, h) }
func (v *namespacesView) View() string     { return v.list.View() }

func (v *namespacesView) SetFilter(s string) tea.Cmd {
	v.filter = s
	v.refilter()
	return nil
}

// Selected is the namespace under the cursor, nil when there is none.
func (v *namespacesView) Selected() *analyze.NamespaceSummary {
	if len(v.order) == 0 {
		return nil
	}
	return v.namespace(v.list.cursor)
}

func (v *namespacesView) Update(msg tea.Msg) tea.Cmd {
	msg2, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil
	}
	k := v.ctx.Keys
	switch {
	case v.list.handleKey(msg2):
	case key.Matches(msg2, k.Open):
		if ns := v.Selected(); ns != nil {
			return func() tea.Msg { return focusMsg{ns: ns} }
		}
	}
	return nil
}

// ShortHelp is the footer's keys.
func (v *namespacesView) ShortHelp() []key.Binding {
	k := v.ctx.Keys
	return []key.Binding{k.Up, k.Down, withHelp(k.Open, "enter", "focus on it"), withHelp(k.Back, "esc", "whole node"),
		withHelp(k.Filter, "/", "filter")}
}

// FullHelp is the keys '?' shows.
func (v *namespacesView) FullHelp() [][]key.Binding {
	return [][]key.Binding{v.ctx.Keys.navHelp(), v.ShortHelp()}
}

// namespaceName names a namespace for a person: its owner, or "host" for
// the bundle's top level.
func namespaceName(ns *analyze.NamespaceSummary) string {
	s := ns.NetNS.String()
	if ns.Dir == "" && !ns.NetNS.HostNS {
		return "host (" + s + ")"
	}
	return s
}

// countOf is n and noun, plural unless n is one: "1 finding", "3 findings".
func countOf(n int, noun, plural string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + plural
}

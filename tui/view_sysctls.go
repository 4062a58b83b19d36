package tui

import (
	"maps"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/snapdiag/snapdiag/analyze"
)

// sysctlRow is one sysctl with its default and what the findings say.
type sysctlRow struct {
	name, value string
	def         string
	hasDef      bool
	recommend   string // "1 (syn-queue-overflow)"
}

// sysctlsView lists the bundle's sysctls with the kernel default where it
// is known and the value a finding recommends: the recommended first, then
// the ones changed from their default, then the rest by name.
type sysctlsView struct {
	ctx     *Context
	list    *table
	all     []sysctlRow
	rows    []int
	filter  string
	pending string
}

func newSysctlsView(ctx *Context) *sysctlsView {
	v := &sysctlsView{ctx: ctx}
	v.list = newTable(ctx, []column{
		{title: "SYSCTL", width: 30, flex: 2},
		{title: "VALUE", width: 12, flex: 1},
		{title: "DEFAULT", width: 10, minWindow: 70},
		{title: "RECOMMENDED", width: 14, flex: 1, minWindow: 90},
	})
	v.list.cell = func(r, c int) string {
		row := &v.all[v.rows[r]]
		switch c {
		case 0:
			return row.name
		case 1:
			return row.value
		case 2:
			if !row.hasDef {
				return ""
			}
			return row.def
		}
		return row.recommend
	}
	v.list.rowStyle = func(r int) (lipgloss.Style, bool) {
		row := &v.all[v.rows[r]]
		switch {
		case row.recommend != "":
			return ctx.Styles.Warning, true
		case row.hasDef && row.def != row.value:
			return ctx.Styles.Info, true
		}
		return lipgloss.Style{}, false
	}
	v.list.empty = "loading…"
	return v
}

func (v *sysctlsView) Filter() string   { return v.filter }
func (v *sysctlsView) SetSize(w, h int) { v.list.setSize(w, h) }
func (v *sysctlsView) View() string     { return v.list.View() }

func (v *sysctlsView) SetFilter(s string) tea.Cmd {
	v.filter = s
	v.refilter()
	return nil
}

func (v *sysctlsView) refilter() {
	v.rows = v.rows[:0]
	q := strings.ToLower(v.filter)
	for i := range v.all {
		r := &v.all[i]
		if q == "" || strings.Contains(strings.ToLower(r.name+" "+r.value+" "+r.recommend), q) {
			v.rows = append(v.rows, i)
		}
	}
	v.list.setRows(len(v.rows))
}

// Jump selects the sysctl named t.Key.
func (v *sysctlsView) Jump(t Target) tea.Cmd {
	v.filter = ""
	v.refilter()
	v.pending = t.Key
	v.selectPending()
	return nil
}

func (v *sysctlsView) selectPending() {
	if v.pending == "" || v.all == nil {
		return
	}
	for i, idx := range v.rows {
		if v.all[idx].name == v.pending {
			v.list.setCursor(i)
			v.pending = ""
			return
		}
	}
	// Not in the bundle: show it anyway through the filter.
	v.filter = v.pending
	v.pending = ""
	v.refilter()
}

func (v *sysctlsView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case snapshotMsg:
		v.load(msg.snap)
	case tea.KeyPressMsg:
		v.list.handleKey(msg)
	}
	return nil
}

func (v *sysctlsView) load(s *analyze.Snapshot) {
	recs := map[string]string{}
	for _, f := range v.ctx.Report.Findings {
		for _, r := range f.Recommendations {
			if r.Key == "" || r.Action != "sysctl" {
				continue
			}
			if _, ok := recs[r.Key]; !ok {
				recs[r.Key] = r.Value + " (" + f.ID + ")"
			}
		}
	}
	names := s.Sysctls
	keys := slices.Sorted(maps.Keys(names))
	// Recommended keys the bundle lacks still get a row.
	for k := range recs {
		if _, ok := names[k]; !ok {
			keys = append(keys, k)
		}
	}
	v.all = make([]sysctlRow, 0, len(keys))
	for _, k := range keys {
		val, ok := names.Get(k)
		if !ok {
			val = "(not in bundle)"
		}
		def, hasDef := kernelDefault(k, s.Kernel)
		v.all = append(v.all, sysctlRow{name: k, value: val, def: def, hasDef: hasDef, recommend: recs[k]})
	}
	rank := func(r sysctlRow) int {
		switch {
		case r.recommend != "":
			return 0
		case r.hasDef && r.def != r.value:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(v.all, func(a, b sysctlRow) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a.name, b.name)
	})
	v.list.empty = "No sysctls in this bundle."
	v.refilter()
	v.selectPending()
}

func (v *sysctlsView) ShortHelp() []key.Binding {
	k := v.ctx.Keys
	return []key.Binding{k.Up, k.Down, k.PageDown, withHelp(k.Filter, "/", "filter")}
}

func (v *sysctlsView) FullHelp() [][]key.Binding {
	return [][]key.Binding{v.ctx.Keys.navHelp(), v.ShortHelp()}
}

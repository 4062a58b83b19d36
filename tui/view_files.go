package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/snapdiag/snapdiag/internal/safetext"
)

// filesView lists every member of the bundle; Enter reads one (in a
// tea.Cmd, within a bound) and pages through it.
type filesView struct {
	ctx     *Context
	list    *table
	all     []memberRow
	rows    []memberRow
	filter  string
	loaded  bool
	pending string // a member to open once the list is loaded

	open    string // the member shown, "" for the list
	loading bool
	file    fileMsg
	pager   *pager
	width   int
	height  int
}

func newFilesView(ctx *Context) *filesView {
	v := &filesView{ctx: ctx, pager: newPager(ctx)}
	v.list = newTable(ctx, []column{
		{title: "MEMBER", width: 20, flex: 1},
		{title: "SIZE", width: 10, right: true},
	})
	v.list.cell = func(r, c int) string {
		if c == 0 {
			return safetext.Line(v.rows[r].name) // a member name may hold anything
		}
		return humanBytes(v.rows[r].size)
	}
	v.list.empty = "loading the member list…"
	return v
}

func (v *filesView) Filter() string {
	if v.open != "" {
		return v.pager.filter
	}
	return v.filter
}

func (v *filesView) SetFilter(s string) tea.Cmd {
	if v.open != "" {
		v.pager.setFilter(s)
		return nil
	}
	v.filter = s
	v.refilter()
	return nil
}

func (v *filesView) refilter() {
	v.rows = v.rows[:0]
	q := strings.ToLower(v.filter)
	for _, m := range v.all {
		if q == "" || strings.Contains(strings.ToLower(m.name), q) {
			v.rows = append(v.rows, m)
		}
	}
	v.list.setRows(len(v.rows))
}

func (v *filesView) SetSize(w, h int) {
	v.width, v.height = w, h
	v.list.setSize(w, h)
	v.pager.setSize(w, max(h-1, 1))
}

func (v *filesView) Back() bool {
	if v.open != "" {
		v.open, v.loading = "", false
		v.pager.setFilter("")
		return true
	}
	return false
}

// Jump shows a member: the list at its row, and its content.
func (v *filesView) Jump(t Target) tea.Cmd {
	if t.Filter != "" {
		v.Back()
		v.filter = t.Filter
		v.refilter()
		return nil
	}
	if !v.loaded {
		v.pending = t.Key
		return nil
	}
	return v.openMember(t.Key)
}

// openMember selects name in the list and starts reading it.
func (v *filesView) openMember(name string) tea.Cmd {
	if name == "" {
		return nil
	}
	v.filter = ""
	v.refilter()
	for i, m := range v.rows {
		if m.name == name {
			v.list.setCursor(i)
		}
	}
	v.open, v.loading = name, true
	v.pager.setFilter("")
	v.pager.setLines(nil)
	return loadFile(v.ctx.FS, name)
}

func (v *filesView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case membersMsg:
		v.loaded, v.all = true, msg.members
		v.list.empty = "this bundle has no members"
		if msg.err != nil {
			v.list.empty = msg.err.Error()
		}
		v.refilter()
		if v.pending != "" {
			p := v.pending
			v.pending = ""
			return v.openMember(p)
		}
	case fileMsg:
		if msg.name != v.open {
			return nil
		}
		v.loading, v.file = false, msg
		lines := msg.lines
		if msg.err != nil {
			lines = []string{v.ctx.Styles.Error.Render(msg.err.Error())}
		}
		v.pager.setLines(lines)
	case tea.KeyPressMsg:
		if v.open != "" {
			v.pager.handleKey(msg)
			return nil
		}
		if v.list.handleKey(msg) {
			return nil
		}
		if key.Matches(msg, v.ctx.Keys.Open) && len(v.rows) > 0 {
			return v.openMember(v.rows[v.list.cursor].name)
		}
	}
	return nil
}

func (v *filesView) View() string {
	if v.open == "" {
		return v.list.View()
	}
	st := v.ctx.Styles
	info := v.pager.position()
	switch {
	case v.loading:
		info = "reading…"
	case v.file.binary:
		info += " · binary: hex dump"
	}
	if v.file.truncated && !v.loading {
		info += " · cut at the display bound"
	}
	head := st.Title.Render(" "+safetext.Line(v.open)) + st.Muted.Render("  "+info)
	return fit(head, v.width) + "\n" + v.pager.view()
}

func (v *filesView) ShortHelp() []key.Binding {
	k := v.ctx.Keys
	if v.open != "" {
		return []key.Binding{k.Up, k.Down, k.PageDown, withHelp(k.Filter, "/", "grep"), withHelp(k.Back, "esc", "members")}
	}
	return []key.Binding{k.Up, k.Down, withHelp(k.Open, "enter", "read member"), withHelp(k.Filter, "/", "filter names")}
}

func (v *filesView) FullHelp() [][]key.Binding {
	return [][]key.Binding{v.ctx.Keys.navHelp(), v.ShortHelp()}
}

// humanBytes is a size in B, KiB, MiB or GiB.
func humanBytes(n int64) string {
	switch {
	case n < 0:
		return "?"
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

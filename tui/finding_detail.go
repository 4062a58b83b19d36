package tui

import (
	"fmt"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/mattn/go-runewidth"

	"github.com/snapdiag/snapdiag/analyze"
)

// detailItem is a selectable part of a finding's page: a piece of evidence
// (Enter jumps to where it came from) or a command (c copies it).
type detailItem struct {
	first, last int // its lines in the page
	target      *Target
	command     string
}

// findingDetail is one finding's page: title, summary, evidence and
// recommendations. The cursor moves between evidence and commands; the page
// scrolls to keep it in view.
type findingDetail struct {
	ctx    *Context
	f      *analyze.Finding
	cursor int
	offset int
	width  int
	height int

	lines []string
	items []detailItem
}

func newFindingDetail(ctx *Context, f *analyze.Finding) *findingDetail {
	return &findingDetail{ctx: ctx, f: f}
}

func (d *findingDetail) setSize(w, h int) {
	d.width, d.height = w, h
	d.layout()
}

// Item is the selected evidence or command, nil when the page has none.
func (d *findingDetail) item() *detailItem {
	if d.cursor < 0 || d.cursor >= len(d.items) {
		return nil
	}
	return &d.items[d.cursor]
}

// layout builds the page's lines for the current width and cursor.
func (d *findingDetail) layout() {
	st := d.ctx.Styles
	f := d.f
	w := max(d.width-1, 20)
	d.lines, d.items = d.lines[:0], d.items[:0]
	add := func(s string) { d.lines = append(d.lines, s) }
	addWrapped := func(indent, text string, style func(...string) string) {
		for _, l := range wrap(text, w-len(indent)) {
			add(indent + style(l))
		}
	}
	plain := func(s ...string) string { return strings.Join(s, " ") }

	head := []string{st.Severity(f.Severity).Render(strings.ToUpper(f.Severity.String())), f.ID}
	if f.Listener != "" {
		head = append(head, "listener "+f.Listener)
	}
	if f.Process != nil {
		head = append(head, fmt.Sprintf("%s (pid %d)", f.Process.Comm, f.Process.PID))
	}
	if f.Key != "" {
		head = append(head, "key "+f.Key)
	}
	if f.NetNS != nil {
		head = append(head, "netns "+f.NetNS.String())
	}
	// A finding that names a listener and its process no longer fits one
	// line at 80 columns: break between the parts, never inside one.
	for _, l := range joinWrapped(head, " · ", w-1) {
		add(" " + l)
	}
	addWrapped(" ", f.Title, st.Title.Render)
	add("")
	if f.Summary != "" {
		addWrapped(" ", f.Summary, plain)
		add("")
	}
	if len(f.Evidence) > 0 {
		add(" " + st.TableHead.Render("Evidence") + st.Muted.Render("  (enter: go to where it came from)"))
		for _, e := range f.Evidence {
			it := detailItem{first: len(d.lines)}
			if t, ok := evidenceTarget(e); ok {
				it.target = &t
			}
			marker := d.marker(len(d.items))
			lines := wrap(evidenceText(e), w-4)
			if it.target != nil {
				// "→ Counters" stays whole: after the text when it fits,
				// else on a line of its own.
				arrow := "→ " + it.target.View.String()
				last := len(lines) - 1
				if runewidth.StringWidth(lines[last])+2+runewidth.StringWidth(arrow) <= w-4 {
					lines[last] += "  " + arrow
				} else {
					lines = append(lines, arrow)
				}
			}
			for i, l := range lines {
				if i == 0 {
					add(marker + l)
				} else {
					add("    " + l)
				}
			}
			if e.Note != "" {
				addWrapped("    ", e.Note, st.Muted.Render)
			}
			it.last = len(d.lines) - 1
			d.items = append(d.items, it)
		}
		add("")
	}
	if len(f.Recommendations) > 0 {
		help := ""
		if d.ctx.Clipboard != nil {
			help = "  (c: copy the command)"
		}
		add(" " + st.TableHead.Render("Recommendations") + st.Muted.Render(help))
		for i, r := range f.Recommendations {
			title := fmt.Sprintf("%d. %s", i+1, r.Action)
			if r.Key != "" {
				title += " " + r.Key
				if r.Current != "" || r.Value != "" {
					title += fmt.Sprintf(": %s → %s", cmpDash(r.Current), r.Value)
				}
			}
			if r.Plan == analyze.PlanWithoutCookies {
				title += "  (only if cookies stay off)"
			}
			addWrapped(" ", title, st.Title.Render)
			if r.Why != "" {
				addWrapped("    ", r.Why, plain)
			}
			for _, c := range r.Commands {
				it := detailItem{first: len(d.lines), command: c}
				marker := d.marker(len(d.items))
				for j, l := range wrap("$ "+c, w-4) {
					if j == 0 {
						add(marker + st.Command.Render(l))
					} else {
						add("    " + st.Command.Render(l))
					}
				}
				it.last = len(d.lines) - 1
				d.items = append(d.items, it)
			}
			if r.Persist != "" {
				addWrapped("    ", "persist: "+r.Persist, st.Muted.Render)
			}
		}
	}
}

// marker is the cursor mark for item i.
func (d *findingDetail) marker(i int) string {
	if i == d.cursor {
		return " › "
	}
	return "   "
}

func cmpDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// evidenceText is one line for a piece of evidence. A zero is shown as
// analyze's text report shows it: "net.ipv4.tcp_syncookies = 0" and a
// listener's "recv_q = 0" are the evidence, not an absence of it. Only the
// kernel log's count is left to its note.
func evidenceText(e analyze.Evidence) string {
	var b strings.Builder
	b.WriteString(e.Metric)
	if e.Metric != "kernel log" {
		b.WriteString(" = " + num(e.Value))
	}
	if e.Delta != 0 || e.PerSecond != 0 {
		fmt.Fprintf(&b, " (+%s", num(e.Delta))
		if e.PerSecond != 0 {
			fmt.Fprintf(&b, ", %s/s", num(e.PerSecond))
		}
		b.WriteString(")")
	}
	if e.Source != "" {
		b.WriteString("  [" + e.Source + "]")
	}
	return b.String()
}

// num formats a number without a needless fraction.
func num(f float64) string {
	if f == float64(int64(f)) && f < 1e15 && f > -1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', 2, 64)
}

func (d *findingDetail) update(km tea.KeyMsg) tea.Cmd {
	k := d.ctx.Keys
	switch {
	case key.Matches(km, k.Up):
		d.move(-1)
	case key.Matches(km, k.Down):
		d.move(1)
	case key.Matches(km, k.PageUp):
		d.offset -= d.height
		d.cursorToView()
	case key.Matches(km, k.PageDown):
		d.offset += d.height
		d.cursorToView()
	case key.Matches(km, k.Home):
		d.cursor, d.offset = 0, 0
		d.layout()
	case key.Matches(km, k.End):
		d.move(len(d.items))
	case key.Matches(km, k.Open):
		if it := d.item(); it != nil {
			if it.target != nil {
				t := *it.target
				return func() tea.Msg { return JumpMsg{Target: t} }
			}
			if it.command != "" {
				return copyCmd(d.ctx.Clipboard, it.command)
			}
		}
	case key.Matches(km, k.Copy):
		if it := d.item(); it != nil && it.command != "" {
			return copyCmd(d.ctx.Clipboard, it.command)
		}
		if c := d.firstCommand(); c != "" {
			return copyCmd(d.ctx.Clipboard, c)
		}
	}
	return nil
}

// firstCommand is the first recommended command, for 'c' when the cursor
// is on evidence.
func (d *findingDetail) firstCommand() string {
	for _, it := range d.items {
		if it.command != "" {
			return it.command
		}
	}
	return ""
}

// move moves the cursor by n items and scrolls it into view.
func (d *findingDetail) move(n int) {
	if len(d.items) == 0 {
		d.offset += n
		d.clampOffset()
		return
	}
	d.cursor = min(max(d.cursor+n, 0), len(d.items)-1)
	d.layout()
	it := d.items[d.cursor]
	if it.first < d.offset {
		d.offset = it.first
	}
	if it.last >= d.offset+d.height {
		d.offset = it.last - d.height + 1
	}
	if d.cursor == len(d.items)-1 {
		d.offset = max(d.offset, len(d.lines)-d.height)
	}
	if d.cursor == 0 {
		d.offset = 0
	}
	d.clampOffset()
}

// cursorToView puts the cursor on the first item on screen after a page
// scroll.
func (d *findingDetail) cursorToView() {
	d.clampOffset()
	for i, it := range d.items {
		if it.first >= d.offset && it.last < d.offset+d.height {
			d.cursor = i
			break
		}
	}
	d.layout()
}

func (d *findingDetail) clampOffset() {
	d.offset = min(max(d.offset, 0), max(len(d.lines)-d.height, 0))
}

func (d *findingDetail) view() string {
	d.clampOffset()
	end := min(d.offset+d.height, len(d.lines))
	lines := d.lines[d.offset:end]
	return block(lines, d.height)
}

func (d *findingDetail) shortHelp() []key.Binding {
	k := d.ctx.Keys
	out := []key.Binding{k.Up, k.Down}
	if it := d.item(); it != nil && it.target != nil {
		out = append(out, withHelp(k.Open, "enter", "go to "+strings.ToLower(it.target.View.String())))
	}
	if d.ctx.Clipboard != nil && d.firstCommand() != "" {
		out = append(out, k.Copy)
	}
	return append(out, withHelp(k.Back, "esc", "findings"))
}

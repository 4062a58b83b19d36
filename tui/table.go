package tui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/mattn/go-runewidth"
)

// column is one column of a table.
type column struct {
	title string
	// width is the column's width, or its least width when flex > 0.
	width int
	// flex is the column's share of the width left over; 0 is fixed.
	flex  int
	right bool
	// minWindow hides the column when the table is narrower than this.
	minWindow int
	// addr marks a column of ADDR:PORT: a cell too wide loses the middle
	// of its address, never its port.
	addr bool
}

// table is a virtualised table: it holds no rows, only their count and a
// function that formats one cell, and formats only the rows on screen. That
// is what lets the sockets view scroll 200,000 rows as fast as twenty.
type table struct {
	ctx  *Context
	cols []column
	rows int
	cell func(row, col int) string
	// rowStyle, when set, styles a whole row (a finding's severity).
	rowStyle func(row int) (lipgloss.Style, bool)
	// empty is shown instead of rows when there are none.
	empty string

	cursor, offset int
	width, height  int
}

func newTable(ctx *Context, cols []column) *table {
	return &table{ctx: ctx, cols: cols}
}

// setRows sets the row count, keeping the cursor in range.
func (t *table) setRows(n int) {
	t.rows = n
	t.clamp()
}

// setSize sets the table's size, header line included.
func (t *table) setSize(w, h int) {
	t.width, t.height = w, h
	t.clamp()
}

// pageRows is how many rows fit under the header.
func (t *table) pageRows() int { return max(t.height-1, 1) }

// setCursor moves the cursor to row i and scrolls it into view, a few rows
// below the top where possible so the rows before it stay visible.
func (t *table) setCursor(i int) {
	t.cursor = i
	t.clamp()
	if t.cursor < t.offset || t.cursor >= t.offset+t.pageRows() {
		t.offset = max(t.cursor-t.pageRows()/3, 0)
	}
	t.clamp()
}

func (t *table) clamp() {
	if t.rows == 0 {
		t.cursor, t.offset = 0, 0
		return
	}
	t.cursor = min(max(t.cursor, 0), t.rows-1)
	page := t.pageRows()
	if t.cursor < t.offset {
		t.offset = t.cursor
	}
	if t.cursor >= t.offset+page {
		t.offset = t.cursor - page + 1
	}
	t.offset = min(max(t.offset, 0), max(t.rows-page, 0))
}

// handleKey moves the cursor; it reports whether msg was a movement key.
func (t *table) handleKey(msg tea.KeyMsg) bool {
	k := t.ctx.Keys
	switch {
	case key.Matches(msg, k.Up):
		t.cursor--
	case key.Matches(msg, k.Down):
		t.cursor++
	case key.Matches(msg, k.PageUp):
		t.cursor -= t.pageRows()
		t.offset -= t.pageRows()
	case key.Matches(msg, k.PageDown):
		t.cursor += t.pageRows()
		t.offset += t.pageRows()
	case key.Matches(msg, k.Home):
		t.cursor = 0
	case key.Matches(msg, k.End):
		t.cursor = t.rows - 1
	default:
		return false
	}
	t.clamp()
	return true
}

// widths lays the columns out in the table's width: -1 for a hidden column.
func (t *table) widths() []int {
	ws := make([]int, len(t.cols))
	used, flex := 2, 0 // the cursor marker
	for i, c := range t.cols {
		if c.minWindow > t.width {
			ws[i] = -1
			continue
		}
		ws[i] = c.width
		used += c.width + 1
		flex += c.flex
	}
	spare := t.width - used + 1
	if flex > 0 && spare > 0 {
		left := spare
		last := -1
		for i, c := range t.cols {
			if ws[i] < 0 || c.flex == 0 {
				continue
			}
			add := spare * c.flex / flex
			ws[i] += add
			left -= add
			last = i
		}
		if last >= 0 {
			ws[last] += left
		}
	}
	return ws
}

// View draws the header and the visible rows, exactly height lines.
func (t *table) View() string {
	st := t.ctx.Styles
	ws := t.widths()
	var b strings.Builder
	var head []string
	for i, c := range t.cols {
		if ws[i] >= 0 {
			head = append(head, pad(c.title, ws[i], c.right))
		}
	}
	b.WriteString(st.TableHead.Render(fit("  "+strings.Join(head, " "), t.width)))
	lines := 1
	if t.rows == 0 && t.empty != "" {
		for _, l := range wrap(t.empty, t.width-2) {
			if lines >= t.height {
				break
			}
			b.WriteString("\n  " + st.Muted.Render(l))
			lines++
		}
	}
	cells := make([]string, 0, len(t.cols))
	for r := t.offset; r < t.rows && lines < t.height; r++ {
		cells = cells[:0]
		for i, c := range t.cols {
			if ws[i] >= 0 {
				s := t.cell(r, i)
				if c.addr {
					s = cutAddr(s, ws[i])
				}
				cells = append(cells, pad(s, ws[i], c.right))
			}
		}
		marker := "  "
		if r == t.cursor {
			marker = "› "
		}
		line := fit(marker+strings.Join(cells, " "), t.width)
		switch {
		case r == t.cursor:
			line = st.Selected.Render(line)
		case t.rowStyle != nil:
			if s, ok := t.rowStyle(r); ok {
				line = s.Render(line)
			}
		}
		b.WriteString("\n" + line)
		lines++
	}
	for ; lines < t.height; lines++ {
		b.WriteString("\n")
	}
	return b.String()
}

// pad fits s in exactly w cells, cut with an ellipsis, aligned left or right.
func pad(s string, w int, right bool) string {
	if w <= 0 {
		return ""
	}
	if runewidth.StringWidth(s) > w {
		s = runewidth.Truncate(s, w, "…")
	}
	if right {
		return runewidth.FillLeft(s, w)
	}
	return runewidth.FillRight(s, w)
}

// cutAddr fits "ADDR:PORT" (or "[ADDR]:PORT", or one followed by a note)
// in w cells by cutting the middle of the address, so the port, which is
// what a listener is known by, stays readable.
func cutAddr(s string, w int) string {
	if runewidth.StringWidth(s) <= w {
		return s
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s
	}
	tail := s[i:]
	if j := strings.IndexByte(tail, ' '); j >= 0 {
		tail = tail[:j] // the port, without a note such as "(reuseport)"
	}
	keep := w - runewidth.StringWidth(tail) - 1
	if keep < 4 {
		return s
	}
	head := runewidth.Truncate(s[:i], keep, "")
	return head + "…" + tail
}

// fit fits a line, which may hold styles, in exactly w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if ansi.StringWidth(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	if n := w - ansi.StringWidth(s); n > 0 {
		s += strings.Repeat(" ", n)
	}
	return s
}

// wrap breaks text into lines of at most w cells, at spaces where it can.
func wrap(text string, w int) []string {
	if w < 8 {
		w = 8
	}
	var out []string
	for _, para := range strings.Split(text, "\n") {
		words := strings.Fields(para)
		if len(words) == 0 {
			out = append(out, "")
			continue
		}
		line := ""
		for _, wd := range words {
			for runewidth.StringWidth(wd) > w {
				if line != "" {
					out = append(out, line)
					line = ""
				}
				head := runewidth.Truncate(wd, w, "")
				out = append(out, head)
				wd = wd[len(head):]
			}
			switch {
			case line == "":
				line = wd
			case runewidth.StringWidth(line)+1+runewidth.StringWidth(wd) <= w:
				line += " " + wd
			default:
				out = append(out, line)
				line = wd
			}
		}
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}

// block pads or cuts lines to exactly h lines.
func block(lines []string, h int) string {
	out := make([]string, h)
	copy(out, lines)
	return strings.Join(out, "\n")
}

// joinWrapped joins parts, which may hold styles, with sep into lines of at
// most w cells, breaking only between parts; a part wider than a line on
// its own is cut with an ellipsis.
func joinWrapped(parts []string, sep string, w int) []string {
	w = max(w, 8)
	var out []string
	line, lw := "", 0
	sw := ansi.StringWidth(sep)
	for _, p := range parts {
		if ansi.StringWidth(p) > w {
			p = ansi.Truncate(p, w, "…")
		}
		pw := ansi.StringWidth(p)
		switch {
		case line == "":
			line, lw = p, pw
		case lw+sw+pw <= w:
			line += sep + p
			lw += sw + pw
		default:
			out = append(out, line)
			line, lw = p, pw
		}
	}
	if line != "" {
		out = append(out, line)
	}
	return out
}

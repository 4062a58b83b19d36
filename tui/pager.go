package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// pager shows lines of text a screen at a time; a filter keeps only the
// lines that contain it. The files and manifest views use it.
type pager struct {
	ctx    *Context
	lines  []string
	shown  []int // indexes of the lines that pass the filter
	filter string
	offset int
	width  int
	height int
}

func newPager(ctx *Context) *pager { return &pager{ctx: ctx} }

func (p *pager) setLines(lines []string) {
	p.lines = lines
	p.refilter()
}

func (p *pager) setFilter(f string) {
	p.filter = f
	p.offset = 0
	p.refilter()
}

func (p *pager) refilter() {
	p.shown = p.shown[:0]
	q := strings.ToLower(p.filter)
	for i, l := range p.lines {
		if q == "" || strings.Contains(strings.ToLower(l), q) {
			p.shown = append(p.shown, i)
		}
	}
	p.clamp()
}

func (p *pager) setSize(w, h int) {
	p.width, p.height = w, h
	p.clamp()
}

func (p *pager) clamp() {
	p.offset = min(max(p.offset, 0), max(len(p.shown)-p.height, 0))
}

// handleKey scrolls; it reports whether msg was a movement key.
func (p *pager) handleKey(msg tea.KeyMsg) bool {
	k := p.ctx.Keys
	switch {
	case key.Matches(msg, k.Up):
		p.offset--
	case key.Matches(msg, k.Down):
		p.offset++
	case key.Matches(msg, k.PageUp):
		p.offset -= max(p.height-1, 1)
	case key.Matches(msg, k.PageDown):
		p.offset += max(p.height-1, 1)
	case key.Matches(msg, k.Home):
		p.offset = 0
	case key.Matches(msg, k.End):
		p.offset = len(p.shown)
	default:
		return false
	}
	p.clamp()
	return true
}

// position is "lines 1-20 of 300", for a status line.
func (p *pager) position() string {
	if len(p.shown) == 0 {
		if p.filter != "" {
			return "no line matches"
		}
		return "empty"
	}
	end := min(p.offset+p.height, len(p.shown))
	s := fmt.Sprintf("lines %d-%d of %d", p.offset+1, end, len(p.shown))
	if p.filter != "" {
		s += fmt.Sprintf(" matching (%d in all)", len(p.lines))
	}
	return s
}

func (p *pager) view() string {
	out := make([]string, 0, p.height)
	for i := p.offset; i < len(p.shown) && len(out) < p.height; i++ {
		out = append(out, fit(p.lines[p.shown[i]], p.width))
	}
	return block(out, p.height)
}

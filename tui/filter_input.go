package tui

import (
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"
	"github.com/mattn/go-runewidth"
)

// filterInput is the line typed after '/': runes, backspace, ctrl+u and
// ctrl+w. It is all a filter needs, without a clipboard dependency.
type filterInput struct {
	value string
}

// update applies a key press; it reports whether the value changed.
func (f *filterInput) update(msg tea.KeyPressMsg) bool {
	old := f.value
	k := msg.Key()
	switch {
	case k.Mod == tea.ModCtrl && k.Code == 'u':
		f.value = ""
	case k.Mod == tea.ModCtrl && k.Code == 'w':
		v := f.value
		for len(v) > 0 && v[len(v)-1] == ' ' {
			v = v[:len(v)-1]
		}
		for len(v) > 0 && v[len(v)-1] != ' ' {
			v = v[:len(v)-1]
		}
		f.value = v
	case k.Code == tea.KeyBackspace:
		if f.value != "" {
			_, n := utf8.DecodeLastRuneInString(f.value)
			f.value = f.value[:len(f.value)-n]
		}
	case k.Text != "" && k.Mod&^tea.ModShift == 0:
		// Printable text, space included; shift only changes which text.
		f.value += k.Text
	}
	return f.value != old
}

// view is the filter line with its cursor, in w cells: a value too long
// for them shows its end, where the typing is, after an ellipsis.
func (f *filterInput) view(ctx *Context, w int) string {
	v := f.value
	if room := w - 2; runewidth.StringWidth(v) > room {
		for runewidth.StringWidth(v) > room-1 && v != "" {
			_, n := utf8.DecodeRuneInString(v)
			v = v[n:]
		}
		v = "…" + v
	}
	return ctx.Styles.Status.Render("/") + v + "█"
}

package tui

import (
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/snapdiag/snapdiag/internal/safetext"
)

// The screen's chrome that the bundle browser (Model) and the live view
// (Top) share: the filter line, the footer and the alternate screen.

// altScreen is a rendered screen as a view on the alternate screen.
func altScreen(screen string) tea.View {
	v := tea.NewView(screen)
	v.AltScreen = true
	return v
}

// restyle sets the styles for a dark background or a light one, as the
// terminal answered.
func restyle(ctx *Context, h *help.Model, dark bool) {
	ctx.Styles = NewStyles(dark)
	h.Styles = ctx.Styles.Help
}

// closeHelp handles a key press while the keys' help shows: the quit key
// quits, any other closes the help.
func closeHelp(k KeyMap, msg tea.KeyPressMsg, showing *bool) tea.Cmd {
	*showing = false
	if key.Matches(msg, k.Quit) {
		return tea.Quit
	}
	return nil
}

// filterKey handles a key press while the filter line is open: enter keeps
// the filter, esc clears it, other keys edit it. closed reports that the
// line closed, changed that the filter's value changed.
func filterKey(k KeyMap, in *filterInput, msg tea.KeyPressMsg) (closed, changed bool) {
	switch {
	case key.Matches(msg, k.KeepFilter):
		return true, false
	case key.Matches(msg, k.ClearFilter):
		in.value = ""
		return true, true
	}
	return false, in.update(msg)
}

// filterLine is the line under the body: the filter being typed, or the
// filter kept, or "" when there is none.
func filterLine(ctx *Context, in *filterInput, typing bool, filter string) string {
	switch {
	case typing:
		return in.view(ctx, ctx.Width)
	case filter != "":
		return ctx.Styles.Status.Render("/"+filter) + ctx.Styles.Muted.Render("  (esc clears)")
	}
	return ""
}

// footer is the last line: the status when there is one, the filter's keys
// while it is typed, else the keys, the last ones dropped until the line
// fits ('?' and 'q' stay).
func footer(ctx *Context, h *help.Model, status string, statusErr, typing bool, keys []key.Binding) string {
	st := ctx.Styles
	w := ctx.Width
	if status != "" {
		s := st.Status
		if statusErr {
			s = st.Error
		}
		return s.Render(fit(status, w))
	}
	if typing {
		return st.Muted.Render(fit("enter keeps the filter · esc clears it", w))
	}
	for n := len(keys); ; n-- {
		line := h.ShortHelpView(append(keys[:n:n], ctx.Keys.Help, ctx.Keys.Quit))
		if lipgloss.Width(line) <= w || n == 0 {
			return fit(line, w)
		}
	}
}

// screenFrame lays a screen out: the header, the line under it (the tabs,
// the host's counters), a rule, the notes, the body, the filter line when
// there is one, and the footer; what comes from outside is made safe for
// the terminal last.
func screenFrame(ctx *Context, header, sub string, notes []string, body, filter, foot string) string {
	w, st := ctx.Width, ctx.Styles
	var b strings.Builder
	b.WriteString(st.Header.Render(fit(header, w)))
	b.WriteString("\n" + sub)
	b.WriteString("\n" + st.Rule.Render(strings.Repeat("─", w)))
	for _, n := range notes {
		b.WriteString("\n" + n)
	}
	b.WriteString("\n" + body)
	if filter != "" {
		// A long filter is cut, not wrapped: the body was sized for one line.
		b.WriteString("\n" + fit(filter, w))
	}
	b.WriteString("\n" + foot)
	return safetext.Terminal(b.String())
}

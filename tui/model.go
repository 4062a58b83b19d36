package tui

import (
	"fmt"
	"io/fs"
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/internal/safetext"
)

// Options are the TUI's settings beyond the report and the bundle.
type Options struct {
	// LightBackground styles the TUI for a light terminal background until
	// the terminal says which it has (the TUI asks when it starts; a
	// terminal that never answers keeps this guess).
	LightBackground bool
	// Clipboard receives the command copied with 'c'; nil disables copying.
	// OSC52Clipboard writes it to the terminal.
	Clipboard func(text string) error
}

// Model is the TUI's root model: the tab bar, the active view, the filter
// line, the key help and the footer. It routes key presses to the active
// view and data messages to every view.
type Model struct {
	ctx    *Context
	snap   *analyze.Snapshot
	views  [numViews]Component
	active ViewID

	filtering bool
	input     filterInput
	showHelp  bool
	help      help.Model

	status    string
	statusErr bool
	// copied is the last text that reached the clipboard.
	copied string
	// laidOut is the chrome the views were last sized for.
	laidOut int
}

// New makes the TUI for the bundle fsys (a *bundle.Bundle, or an unpacked
// bundle's directory as os.DirFS), given what the caller already read from
// it: snap, the bundle parsed by analyze.Load, and rep, its analysis. The
// TUI does not parse the bundle again; it reads from fsys only the member
// list, the members the files view opens, and the socket table, which the
// sockets view loads in the background the first time it shows.
func New(rep *analyze.Report, snap *analyze.Snapshot, fsys fs.FS, opts Options) *Model {
	if rep == nil {
		rep = &analyze.Report{}
	}
	if snap == nil {
		snap = &analyze.Snapshot{}
	}
	// Everything from a bundle is untrusted: its strings are shown with
	// their control characters made visible (safetext), so a reason or a
	// process name cannot retitle the terminal or clear the screen. The
	// TUI works on escaped copies; Render adds safetext.Terminal as the
	// last guard.
	rep = safetext.Strings(rep, safetext.Line)
	snap = safetext.Strings(snap, safetext.Line)
	ctx := newContext(rep, fsys, !opts.LightBackground)
	ctx.Clipboard = opts.Clipboard
	m := &Model{ctx: ctx, snap: snap}
	m.views = [numViews]Component{
		ViewFindings:   newFindingsView(ctx),
		ViewListeners:  newListenersView(ctx),
		ViewCounters:   newCountersView(ctx),
		ViewSysctls:    newSysctlsView(ctx),
		ViewSockets:    newSocketsView(ctx),
		ViewPackets:    newPacketsView(ctx),
		ViewFiles:      newFilesView(ctx),
		ViewManifest:   newManifestView(ctx),
		ViewNamespaces: newNamespacesView(ctx),
	}
	m.help = help.New()
	m.help.Styles = ctx.Styles.Help
	m.resize(80, 24)
	return m
}

// Init hands the snapshot to the views and starts listing the bundle's
// members. The snapshot goes as a message, not in New, so the first screen
// draws before the views build their rows from it.
func (m *Model) Init() tea.Cmd {
	snap := m.snap
	// The background colour is asked for here, once the program owns the
	// terminal, and the answer arrives as a message: nothing waits for it.
	return tea.Batch(func() tea.Msg { return snapshotMsg{snap: snap} }, loadMembers(m.ctx.FS),
		tea.RequestBackgroundColor)
}

// Active is the view on screen.
func (m *Model) Active() ViewID { return m.active }

// Copied is the last text copied to the clipboard, "" when none was.
func (m *Model) Copied() string { return m.copied }

// Update handles a message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	// A filter line that came or went changes the body's height.
	if c := m.chrome(); c != m.laidOut {
		m.resize(m.ctx.Width, m.ctx.Height)
	}
	return m, cmd
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
		return nil
	case tea.BackgroundColorMsg:
		restyle(m.ctx, &m.help, msg.IsDark())
		// The manifest view lays its lines out, styled, once: again with
		// the new styles.
		if v, ok := m.views[ViewManifest].(*manifestView); ok && v.pager.lines != nil {
			v.pager.setLines(manifestLines(m.ctx, m.snap))
		}
		return nil
	case tea.KeyPressMsg:
		return m.key(msg)
	case JumpMsg:
		return m.jump(msg.Target)
	case copiedMsg:
		if msg.err != nil {
			m.setStatus("copy failed: "+msg.err.Error(), true)
		} else {
			m.copied = msg.text
			m.setStatus("copied: "+msg.text, false)
		}
		return nil
	case statusMsg:
		m.setStatus(string(msg), false)
		return nil
	case focusMsg:
		return m.focus(msg)
	case snapshotMsg:
		// Init's snapshot may arrive after a namespace was put in focus:
		// the views get the one in focus.
		msg = snapshotMsg{snap: m.focusedSnap()}
		var cmds []tea.Cmd
		for _, v := range m.views {
			cmds = append(cmds, v.Update(msg))
		}
		return tea.Batch(cmds...)
	}
	// Data messages go to every view: each takes what it is waiting for.
	var cmds []tea.Cmd
	for _, v := range m.views {
		cmds = append(cmds, v.Update(msg))
	}
	return tea.Batch(cmds...)
}

func (m *Model) setStatus(s string, isErr bool) {
	m.status, m.statusErr = s, isErr
}

func (m *Model) view() Component { return m.views[m.active] }

// key handles a key press: the filter line takes every key while open, then
// the global keys, then the active view.
func (m *Model) key(msg tea.KeyPressMsg) tea.Cmd {
	k := m.ctx.Keys
	if m.filtering {
		closed, changed := filterKey(k, &m.input, msg)
		if closed {
			m.filtering = false
			m.resize(m.ctx.Width, m.ctx.Height)
		}
		if changed {
			return m.setFilter(m.input.value)
		}
		return nil
	}
	if m.showHelp {
		return closeHelp(k, msg, &m.showHelp)
	}
	m.status = ""
	switch {
	case key.Matches(msg, k.Quit):
		return tea.Quit
	case key.Matches(msg, k.Help):
		m.showHelp = true
		return nil
	case key.Matches(msg, k.Filter):
		if _, ok := m.view().(filterable); !ok {
			return nil
		}
		m.filtering = true
		m.input.value = m.filter()
		m.resize(m.ctx.Width, m.ctx.Height)
		return nil
	case key.Matches(msg, k.NextTab):
		return m.switchTo(m.nextTab(1))
	case key.Matches(msg, k.PrevTab):
		return m.switchTo(m.nextTab(-1))
	case key.Matches(msg, k.Back):
		if m.active == ViewNamespaces && m.ctx.Focus != nil && m.filter() == "" {
			return m.focus(focusMsg{})
		}
		if b, ok := m.view().(backer); ok && b.Back() {
			return nil
		}
		if m.filter() != "" {
			return m.setFilter("")
		}
		return nil
	}
	for i, b := range k.Views {
		if key.Matches(msg, b) {
			if !m.shows(ViewID(i)) {
				return nil
			}
			return m.switchTo(ViewID(i))
		}
	}
	return m.view().Update(msg)
}

// filter is the active view's filter, "" when it has none.
func (m *Model) filter() string {
	if f, ok := m.view().(filterable); ok {
		return f.Filter()
	}
	return ""
}

// setFilter applies text as the active view's filter, when it filters.
func (m *Model) setFilter(text string) tea.Cmd {
	if f, ok := m.view().(filterable); ok {
		return f.SetFilter(text)
	}
	return nil
}

func (m *Model) switchTo(v ViewID) tea.Cmd {
	m.active = v
	m.resize(m.ctx.Width, m.ctx.Height)
	if a, ok := m.view().(activator); ok {
		return a.Activate()
	}
	return nil
}

// jump shows the view and row a piece of evidence points at; a view that
// cannot jump to a row just shows.
func (m *Model) jump(t Target) tea.Cmd {
	var refocus tea.Cmd
	if t.Dir != "" && t.Dir != m.ctx.focusDir() {
		for i := range m.ctx.Report.Namespaces {
			if ns := &m.ctx.Report.Namespaces[i]; ns.Dir == t.Dir {
				refocus = m.setFocus(ns)
			}
		}
	}
	act := tea.Batch(refocus, m.switchTo(t.View))
	if j, ok := m.view().(jumper); ok {
		return tea.Batch(act, j.Jump(t))
	}
	return act
}

// chrome is the lines around the body: header, tabs, rule, footer and the
// filter line when it shows.
func (m *Model) chrome() int {
	n := 4
	if m.filterLine() != "" {
		n++
	}
	return n
}

func (m *Model) filterLine() string { return filterLine(m.ctx, &m.input, m.filtering, m.filter()) }

func (m *Model) resize(w, h int) {
	m.ctx.Width, m.ctx.Height = w, h
	m.help.SetWidth(w)
	m.laidOut = m.chrome()
	bh := max(h-m.chrome(), 1)
	for _, v := range m.views {
		v.SetSize(w, bh)
	}
}

// View draws the whole window.
// View implements tea.Model: the screen Render draws, on the alternate
// screen.
func (m *Model) View() tea.View { return altScreen(m.Render()) }

// Render draws the whole screen as styled text.
func (m *Model) Render() string {
	w, h := m.ctx.Width, m.ctx.Height
	if w < 20 || h < 6 {
		return "window too small"
	}
	// The body's size depends on whether a filter line shows.
	body := ""
	if m.showHelp {
		body = m.fullHelp(max(h-m.chrome(), 1))
	} else {
		body = m.view().View()
	}
	return screenFrame(m.ctx, m.headerText(), m.tabs(), nil, body, m.filterLine(), m.footer())
}

func (m *Model) headerText() string {
	bi := m.ctx.Report.Bundle
	parts := []string{"snapdiag"}
	if bi.Host != "" {
		parts = append(parts, bi.Host)
	}
	if bi.NamesNetNS() {
		parts = append(parts, bi.NetNS.String())
	}
	if bi.Kernel != "" {
		parts = append(parts, "kernel "+bi.Kernel)
	}
	if bi.CapturedAt != "" {
		parts = append(parts, bi.CapturedAt)
	}
	switch {
	case bi.Samples == 1:
		parts = append(parts, "1 sample")
	case bi.Samples > 1:
		parts = append(parts, fmt.Sprintf("%d samples over %gs", bi.Samples, bi.WindowSeconds))
	}
	if bi.Reason != "" {
		parts = append(parts, "reason: "+bi.Reason)
	}
	if n := len(m.ctx.Report.Namespaces); n > 0 {
		// The namespace in focus leads: it is what every view now shows.
		focus := fmt.Sprintf("node: all %d namespaces", n)
		if f := m.ctx.Focus; f != nil {
			focus = "netns: " + namespaceName(f)
		}
		parts = append([]string{parts[0], focus}, parts[1:]...)
	}
	return strings.Join(parts, " · ")
}

// tabs draws the tab bar, with short titles when the full ones do not fit.
func (m *Model) tabs() string {
	st := m.ctx.Styles
	for _, short := range []bool{false, true} {
		var parts []string
		width := 0
		for _, v := range m.shown() {
			title := v.String()
			if short {
				title = v.short()
			}
			t := fmt.Sprintf("%d %s", int(v)+1, title)
			width += lipgloss.Width(t) + 2
			if v == m.active {
				parts = append(parts, "["+st.ActiveTab.Render(t)+"]")
			} else {
				parts = append(parts, " "+st.Tab.Render(t)+" ")
			}
		}
		if width <= m.ctx.Width || short {
			line := strings.Join(parts, "")
			if lipgloss.Width(line) > m.ctx.Width {
				// Narrower than 80 columns: numbers only, the active title.
				parts = parts[:0]
				for _, v := range m.shown() {
					if v == m.active {
						parts = append(parts, fmt.Sprintf("[%d %s]", int(v)+1, v.short()))
					} else {
						parts = append(parts, fmt.Sprintf(" %d ", int(v)+1))
					}
				}
				line = strings.Join(parts, "")
			}
			return line
		}
	}
	return ""
}

func (m *Model) footer() string {
	return footer(m.ctx, &m.help, m.status, m.statusErr, m.filtering, m.view().ShortHelp())
}

func (m *Model) fullHelp(h int) string {
	groups := append(m.view().FullHelp(), m.ctx.Keys.globalHelp(len(m.shown())))
	title := m.ctx.Styles.Title.Render("Keys: " + m.active.String())
	lines := append([]string{title, ""}, strings.Split(m.help.FullHelpView(groups), "\n")...)
	lines = append(lines, "", m.ctx.Styles.Muted.Render("any key closes this help"))
	return block(lines, h)
}

// shows is true when view v has a tab: the namespaces view only for a
// whole-node bundle.
func (m *Model) shows(v ViewID) bool {
	return v != ViewNamespaces || len(m.ctx.Report.Namespaces) > 0
}

// shown are the views with a tab, in tab order.
func (m *Model) shown() []ViewID {
	out := make([]ViewID, 0, numViews)
	for i := range numViews {
		if m.shows(ViewID(i)) {
			out = append(out, ViewID(i))
		}
	}
	return out
}

// nextTab is the view step tabs after the active one, wrapping around.
func (m *Model) nextTab(step int) ViewID {
	vs := m.shown()
	i := 0
	for j, v := range vs {
		if v == m.active {
			i = j
		}
	}
	return vs[(i+step+len(vs))%len(vs)]
}

// focus puts a namespace of a whole-node bundle in focus (nil: the whole
// node): every view is handed the namespace's snapshot, the findings view
// keeps its findings, and the findings show.
func (m *Model) focus(msg focusMsg) tea.Cmd {
	cmd := m.setFocus(msg.ns)
	if m.ctx.Focus != msg.ns {
		return cmd // not in the bundle: the status says so
	}
	cmds := []tea.Cmd{cmd}
	if msg.ns != nil {
		cmds = append(cmds, m.switchTo(ViewFindings))
		m.setStatus("focus: "+namespaceName(msg.ns)+" (esc in the namespaces view shows the whole node)", false)
	} else {
		m.setStatus("focus: the whole node", false)
	}
	return tea.Batch(cmds...)
}

// setFocus puts ns in focus (nil: the whole node) and hands every view the
// snapshot it now shows.
func (m *Model) setFocus(ns *analyze.NamespaceSummary) tea.Cmd {
	if ns != nil && ns.Dir != "" && m.snap.Namespace(ns.NetNS.Inode) == nil {
		m.setStatus("namespace "+namespaceName(ns)+" is not in the bundle", true)
		return nil
	}
	m.ctx.Focus = ns
	snap := m.focusedSnap()
	msg := focusMsg{ns: ns}
	var cmds []tea.Cmd
	for _, v := range m.views {
		cmds = append(cmds, v.Update(msg), v.Update(snapshotMsg{snap: snap}))
	}
	m.resize(m.ctx.Width, m.ctx.Height)
	return tea.Batch(cmds...)
}

// focusedSnap is the snapshot of the namespace in focus: the bundle's top
// level for the whole node and the host's namespace.
func (m *Model) focusedSnap() *analyze.Snapshot {
	if f := m.ctx.Focus; f != nil && f.Dir != "" {
		if n := m.snap.Namespace(f.NetNS.Inode); n != nil {
			return n.Snap
		}
	}
	return m.snap
}

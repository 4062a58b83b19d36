package tui

import (
	"charm.land/bubbles/v2/help"
	tea "charm.land/bubbletea/v2"
)

// ViewID names one of the TUI's views; the number keys 1..9 select them in
// this order. ViewNamespaces shows only for a whole-node bundle (capture
// --all-netns), last so the other views keep their keys.
type ViewID int

// The views, in tab order.
const (
	ViewFindings ViewID = iota
	ViewListeners
	ViewCounters
	ViewSysctls
	ViewSockets
	ViewPackets
	ViewFiles
	ViewManifest
	ViewNamespaces
	numViews = int(ViewNamespaces) + 1
)

// String is the view's tab title.
func (v ViewID) String() string {
	switch v {
	case ViewFindings:
		return "Findings"
	case ViewListeners:
		return "Listeners"
	case ViewCounters:
		return "Counters"
	case ViewSysctls:
		return "Sysctls"
	case ViewSockets:
		return "Sockets"
	case ViewPackets:
		return "Packets"
	case ViewFiles:
		return "Files"
	case ViewManifest:
		return "Manifest"
	case ViewNamespaces:
		return "Namespaces"
	}
	return "?"
}

// short is the view's title where the full tab bar does not fit.
func (v ViewID) short() string {
	switch v {
	case ViewFindings:
		return "Find"
	case ViewListeners:
		return "Lstn"
	case ViewCounters:
		return "Ctrs"
	case ViewSysctls:
		return "Sysc"
	case ViewSockets:
		return "Sock"
	case ViewPackets:
		return "Pkts"
	case ViewFiles:
		return "File"
	case ViewManifest:
		return "Mani"
	case ViewNamespaces:
		return "NS"
	}
	return "?"
}

// Component is one view, as small as a view can be: a model that draws
// itself in the body's size, and the keys it answers to (help.KeyMap:
// ShortHelp for the footer, FullHelp for '?'). Components are pointers,
// changed in place by Update; the root model routes messages to them.
//
// A view that does more says so by implementing one of the optional
// interfaces below (filterable, backer, activator, jumper); the root model
// asks for them with a type assertion, so a view carries no empty stubs.
type Component interface {
	// Update handles a message; key presses reach only the active component.
	Update(msg tea.Msg) tea.Cmd
	// View draws the component in exactly its size.
	View() string
	// SetSize gives the component the body's size.
	SetSize(width, height int)
	help.KeyMap
}

// What each view does beyond Component. The root model finds these by type
// assertion, so a method whose signature drifts would silently turn the
// behaviour off; these lines make that a compile error instead.
var (
	_ filterable = (*findingsView)(nil)
	_ filterable = (*listenersView)(nil)
	_ filterable = (*countersView)(nil)
	_ filterable = (*sysctlsView)(nil)
	_ filterable = (*socketsView)(nil)
	_ filterable = (*packetsView)(nil)
	_ filterable = (*filesView)(nil)
	_ filterable = (*manifestView)(nil)
	_ filterable = (*namespacesView)(nil)

	_ backer = (*findingsView)(nil)
	_ backer = (*packetsView)(nil)
	_ backer = (*filesView)(nil)

	_ activator = (*socketsView)(nil)

	_ jumper = (*findingsView)(nil)
	_ jumper = (*listenersView)(nil)
	_ jumper = (*countersView)(nil)
	_ jumper = (*sysctlsView)(nil)
	_ jumper = (*socketsView)(nil)
	_ jumper = (*packetsView)(nil)
	_ jumper = (*filesView)(nil)
)

// filterable is a component that narrows what it shows to the text typed
// after '/'.
type filterable interface {
	// SetFilter applies the text typed after '/'; Filter returns it.
	SetFilter(text string) tea.Cmd
	Filter() string
}

// backer is a component with a detail level (a finding, a file, a source's
// handshakes) that Back leaves.
type backer interface {
	// Back leaves the detail level; false when the component is at its top
	// level already.
	Back() bool
}

// activator is a component that starts work when it becomes the visible
// view, such as a lazy load.
type activator interface {
	Activate() tea.Cmd
}

// jumper is a component that can show the row a piece of evidence names.
type jumper interface {
	Jump(target Target) tea.Cmd
}

package tui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// ViewID names one of the TUI's views; the number keys 1..8 select them in
// this order.
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
	numViews = int(ViewManifest) + 1
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
	}
	return "?"
}

// Component is one view: a model that draws itself in the body's size and
// tells which keys it answers to. Components are pointers, changed in place
// by Update; the root model routes messages to them.
type Component interface {
	// Init returns the commands that load what the component needs first.
	Init() tea.Cmd
	// Update handles a message; key presses reach only the active component.
	Update(msg tea.Msg) tea.Cmd
	// View draws the component in exactly its size.
	View() string
	// SetSize gives the component the body's size.
	SetSize(width, height int)
	// ShortHelp is the keys shown in the footer, FullHelp those under '?'.
	ShortHelp() []key.Binding
	FullHelp() [][]key.Binding
	// SetFilter applies the text typed after '/'; Filter returns it.
	SetFilter(text string) tea.Cmd
	Filter() string
	// Back leaves a detail level (a finding, a file); false when the
	// component is at its top level already.
	Back() bool
	// Activate is called when the component becomes the visible view, so
	// it can start loading lazily.
	Activate() tea.Cmd
	// Jump moves the component to the row a piece of evidence names.
	Jump(target Target) tea.Cmd
}

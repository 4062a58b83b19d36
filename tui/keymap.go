package tui

import (
	"fmt"

	"charm.land/bubbles/v2/key"
)

// KeyMap holds every key the TUI answers to. Components match key presses
// against these bindings, never against raw strings, and show them as their
// help.
type KeyMap struct {
	Up       key.Binding
	Down     key.Binding
	PageUp   key.Binding
	PageDown key.Binding
	Home     key.Binding
	End      key.Binding
	Open     key.Binding
	Back     key.Binding
	NextTab  key.Binding
	PrevTab  key.Binding
	// Views are the number keys 1..9, one per view in tab order.
	Views  []key.Binding
	Filter key.Binding
	Help   key.Binding
	Quit   key.Binding
	Copy   key.Binding
	// Capture writes a bundle now (snapdiag top).
	Capture key.Binding
	Sort    key.Binding
	Order   key.Binding

	// KeepFilter closes the filter line keeping what was typed;
	// ClearFilter closes it and clears the filter.
	KeepFilter  key.Binding
	ClearFilter key.Binding
}

// DefaultKeyMap returns the TUI's keys.
func DefaultKeyMap() KeyMap {
	k := KeyMap{
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", "ctrl+f", "space"), key.WithHelp("pgdn", "page down")),
		Home:     key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g", "top")),
		End:      key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G", "bottom")),
		Open:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open")),
		Back:     key.NewBinding(key.WithKeys("esc", "backspace", "left", "h"), key.WithHelp("esc", "back")),
		NextTab:  key.NewBinding(key.WithKeys("tab", "right", "l"), key.WithHelp("tab", "next view")),
		PrevTab:  key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous view")),
		Filter:   key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		Help:     key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "keys")),
		Quit:     key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
		Copy:     key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "copy command")),
		Capture:  key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "capture a bundle")),
		Sort:     key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "sort by next column")),
		Order:    key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "reverse order")),

		KeepFilter:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "keep the filter")),
		ClearFilter: key.NewBinding(key.WithKeys("esc", "ctrl+c"), key.WithHelp("esc", "clear the filter")),
	}
	for i := range numViews {
		n := string(rune('1' + i))
		k.Views = append(k.Views, key.NewBinding(key.WithKeys(n), key.WithHelp(n, "view "+n)))
	}
	return k
}

// navHelp is the movement keys, shown by every list.
func (k KeyMap) navHelp() []key.Binding {
	return []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.Home, k.End}
}

// globalHelp is the keys that work in every view, of a TUI showing n
// views.
func (k KeyMap) globalHelp(n int) []key.Binding {
	views := key.NewBinding(key.WithKeys("1"), key.WithHelp(fmt.Sprintf("1-%d", n), "go to view"))
	return []key.Binding{k.NextTab, k.PrevTab, views, k.Filter, k.Help, k.Quit}
}

package tui

import (
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/lipgloss"

	"github.com/snapdiag/snapdiag/analyze"
)

// Styles are the TUI's lipgloss styles, all made by one renderer so that
// the renderer's colour profile (true colour, 256, 16, or none under
// NO_COLOR and on a plain terminal) decides how they degrade. Nothing in the
// TUI relies on colour alone: the cursor row has a marker, severities are
// spelled out.
type Styles struct {
	Header    lipgloss.Style
	Tab       lipgloss.Style
	ActiveTab lipgloss.Style
	Rule      lipgloss.Style
	TableHead lipgloss.Style
	Selected  lipgloss.Style
	Muted     lipgloss.Style
	Title     lipgloss.Style
	Critical  lipgloss.Style
	Warning   lipgloss.Style
	Info      lipgloss.Style
	OK        lipgloss.Style
	Command   lipgloss.Style
	Status    lipgloss.Style
	Error     lipgloss.Style
	Help      help.Styles
}

// NewStyles makes the styles with renderer r.
func NewStyles(r *lipgloss.Renderer) Styles {
	accent := lipgloss.AdaptiveColor{Light: "#5A3FC0", Dark: "#B9A6FF"}
	muted := lipgloss.AdaptiveColor{Light: "#767676", Dark: "#8A8A8A"}
	s := Styles{
		Header:    r.NewStyle().Bold(true),
		Tab:       r.NewStyle().Foreground(muted),
		ActiveTab: r.NewStyle().Bold(true).Underline(true).Foreground(accent),
		Rule:      r.NewStyle().Foreground(muted),
		TableHead: r.NewStyle().Bold(true).Foreground(accent),
		Selected:  r.NewStyle().Reverse(true),
		Muted:     r.NewStyle().Foreground(muted),
		Title:     r.NewStyle().Bold(true),
		Critical:  r.NewStyle().Bold(true).Foreground(lipgloss.AdaptiveColor{Light: "#C0001A", Dark: "#FF5F6D"}),
		Warning:   r.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#A15C00", Dark: "#FFB454"}),
		Info:      r.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#0A6CA8", Dark: "#6CB6FF"}),
		OK:        r.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#1A7F37", Dark: "#57D47B"}),
		Command:   r.NewStyle().Foreground(accent),
		Status:    r.NewStyle().Foreground(accent),
		Error:     r.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#C0001A", Dark: "#FF5F6D"}),
	}
	s.Help = help.Styles{
		Ellipsis:       r.NewStyle().Foreground(muted),
		ShortKey:       r.NewStyle().Bold(true),
		ShortDesc:      r.NewStyle().Foreground(muted),
		ShortSeparator: r.NewStyle().Foreground(muted),
		FullKey:        r.NewStyle().Bold(true),
		FullDesc:       r.NewStyle().Foreground(muted),
		FullSeparator:  r.NewStyle().Foreground(muted),
	}
	return s
}

// Severity is the style of a finding's severity.
func (s Styles) Severity(sev analyze.Severity) lipgloss.Style {
	switch sev {
	case analyze.Critical:
		return s.Critical
	case analyze.Warning:
		return s.Warning
	default:
		return s.Info
	}
}

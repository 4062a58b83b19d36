package tui

import (
	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"

	"github.com/snapdiag/snapdiag/analyze"
)

// Styles are the TUI's lipgloss styles. They are written in true colour,
// for a dark or a light background; the program degrades them to what the
// terminal can show (256, 16, or no colour under NO_COLOR and on a plain
// terminal) as it draws. Nothing in the TUI relies on colour alone: the
// cursor row has a marker, severities are spelled out.
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

// NewStyles makes the styles for a dark background, or a light one.
func NewStyles(dark bool) Styles {
	c := lipgloss.LightDark(dark)
	accent := c(lipgloss.Color("#5A3FC0"), lipgloss.Color("#B9A6FF"))
	muted := c(lipgloss.Color("#767676"), lipgloss.Color("#8A8A8A"))
	red := c(lipgloss.Color("#C0001A"), lipgloss.Color("#FF5F6D"))
	r := lipgloss.NewStyle()
	s := Styles{
		Header:    r.Bold(true),
		Tab:       r.Foreground(muted),
		ActiveTab: r.Bold(true).Underline(true).Foreground(accent),
		Rule:      r.Foreground(muted),
		TableHead: r.Bold(true).Foreground(accent),
		Selected:  r.Reverse(true),
		Muted:     r.Foreground(muted),
		Title:     r.Bold(true),
		Critical:  r.Bold(true).Foreground(red),
		Warning:   r.Foreground(c(lipgloss.Color("#A15C00"), lipgloss.Color("#FFB454"))),
		Info:      r.Foreground(c(lipgloss.Color("#0A6CA8"), lipgloss.Color("#6CB6FF"))),
		OK:        r.Foreground(c(lipgloss.Color("#1A7F37"), lipgloss.Color("#57D47B"))),
		Command:   r.Foreground(accent),
		Status:    r.Foreground(accent),
		Error:     r.Foreground(red),
	}
	s.Help = help.Styles{
		Ellipsis:       r.Foreground(muted),
		ShortKey:       r.Bold(true),
		ShortDesc:      r.Foreground(muted),
		ShortSeparator: r.Foreground(muted),
		FullKey:        r.Bold(true),
		FullDesc:       r.Foreground(muted),
		FullSeparator:  r.Foreground(muted),
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

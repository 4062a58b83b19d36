package tui

import (
	"errors"
	"io"
	"strings"

	tea "charm.land/bubbletea/v2"
	osc52 "github.com/aymanbagabas/go-osc52/v2"
)

// OSC52Clipboard returns a clipboard that writes text to out as an OSC 52
// sequence, which the terminal (and ssh, and tmux or screen, wrapped as they
// need) puts on the system clipboard where it allows. getenv tells whether
// the TUI runs inside tmux or screen.
func OSC52Clipboard(out io.Writer, getenv func(string) string) func(string) error {
	return func(text string) error {
		seq := osc52.New(text)
		switch {
		case getenv("TMUX") != "":
			seq = seq.Tmux()
		case strings.HasPrefix(getenv("TERM"), "screen"):
			seq = seq.Screen()
		}
		_, err := seq.WriteTo(out)
		return err
	}
}

// copyCmd sends text to the clipboard off the UI goroutine.
func copyCmd(clip func(string) error, text string) tea.Cmd {
	return func() tea.Msg {
		if clip == nil {
			return copiedMsg{text: text, err: errors.New("no clipboard")}
		}
		return copiedMsg{text: text, err: clip(text)}
	}
}

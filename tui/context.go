package tui

import (
	"io/fs"

	"github.com/snapdiag/snapdiag/analyze"
)

// Context is what every component shares: the report and the bundle it
// browses, the styles and keys, and the size of the body the component may
// draw in. The root model owns it and is the only one that changes it.
type Context struct {
	Report *analyze.Report
	FS     fs.FS
	Styles Styles
	Keys   KeyMap
	// Clipboard receives copied commands; nil when there is none.
	Clipboard func(string) error
	// Width and Height are the whole window's size.
	Width, Height int
}

// newContext builds the shared context for a report and its bundle, styled
// for a dark background or a light one.
func newContext(rep *analyze.Report, fsys fs.FS, dark bool) *Context {
	return &Context{
		Report: rep,
		FS:     fsys,
		Styles: NewStyles(dark),
		Keys:   DefaultKeyMap(),
	}
}

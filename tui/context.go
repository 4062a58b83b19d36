package tui

import (
	"fmt"
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
	// Focus is the namespace of a whole-node bundle the views show (the
	// namespaces view's Enter); nil shows the whole node: every finding,
	// and the top level's members.
	Focus *analyze.NamespaceSummary
}

// focusDir is the folder of the namespace in focus, "" for the top level.
func (c *Context) focusDir() string {
	if c.Focus == nil {
		return ""
	}
	return c.Focus.Dir
}

// nsFS is the namespace in focus as a bundle of its own: its folder of FS,
// or FS itself for the host's namespace and the whole node.
func (c *Context) nsFS() fs.FS {
	dir := c.focusDir()
	if dir == "" || c.FS == nil {
		return c.FS
	}
	sub, err := fs.Sub(c.FS, dir)
	if err != nil {
		return errFS{fmt.Errorf("open namespace folder %s: %w", dir, err)}
	}
	return sub
}

// errFS is a file system that fails every Open with err.
type errFS struct{ err error }

func (e errFS) Open(string) (fs.File, error) { return nil, e.err }

// inFocus is true when f is about the namespace in focus, or nothing is.
func (c *Context) inFocus(f *analyze.Finding) bool {
	switch {
	case c.Focus == nil:
		return true
	case c.Focus.Dir == "":
		return f.NetNS == nil
	}
	return f.NetNS != nil && f.NetNS.Inode == c.Focus.NetNS.Inode
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

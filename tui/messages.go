package tui

import (
	"github.com/snapdiag/snapdiag/analyze"
)

// Target is where a piece of evidence points: a view, and in it a row (Key)
// or a filter.
type Target struct {
	View ViewID
	// Key names the row: a listener's ADDR:PORT, a counter, a sysctl, a
	// member path.
	Key string
	// Filter, when set, is applied to the view.
	Filter string
	// Dir is the folder of the namespace of a whole-node bundle the
	// evidence is of ("" for the top level's); the jump puts it in focus.
	Dir string
}

// JumpMsg asks the root model to show Target.
type JumpMsg struct{ Target Target }

// snapshotMsg hands the parsed bundle to the listener, counter, sysctl,
// packet and manifest views, which build their rows from it.
type snapshotMsg struct {
	snap *analyze.Snapshot
}

// focusMsg puts a namespace of a whole-node bundle in focus; nil puts the
// whole node back.
type focusMsg struct {
	ns *analyze.NamespaceSummary
}

// socketsMsg carries the socket table, parsed off the UI goroutine.
type socketsMsg struct {
	table *socketTable
	err   error
	// dir is the folder of the namespace the table is of ("" for the top
	// level): a table that arrives after the focus moved is dropped.
	dir string
}

// socketsViewMsg carries the rows of the socket table that pass a filter,
// in sort order. gen tells a stale result from the current one.
type socketsViewMsg struct {
	gen  int
	rows []int32
}

// membersMsg carries the list of the bundle's members.
type membersMsg struct {
	members []memberRow
	err     error
}

// fileMsg carries one member's content, read up to a bound.
type fileMsg struct {
	name      string
	lines     []string
	binary    bool
	truncated bool
	err       error
}

// copiedMsg says a command went to the clipboard (or why not).
type copiedMsg struct {
	text string
	err  error
}

// statusMsg is a one-line message for the footer.
type statusMsg string

package tui

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
)

// socketsView is the socket table: filter by state, port and address, sort
// by any column. It loads sockets/tcp.jsonl the first time it is shown,
// filters and sorts in tea.Cmds, and formats only the rows on screen, so a
// table of 200,000 sockets scrolls without lag.
type socketsView struct {
	ctx   *Context
	list  *table
	table *socketTable
	err   error
	// snap tells why the table is missing; missing is that reason.
	snap    *analyze.Snapshot
	missing missing

	started bool // the load was started
	gen     int  // the latest filter/sort request
	busy    bool // a filter/sort result is pending
	idx     []int32
	filter  string
	sort    sockSort
	desc    bool
	width   int
}

func newSocketsView(ctx *Context) *socketsView {
	v := &socketsView{ctx: ctx}
	v.list = newTable(ctx, []column{
		{title: "STATE", width: 11},
		{title: "LOCAL", width: 21, flex: 1, addr: true},
		{title: "REMOTE", width: 21, flex: 1, addr: true},
		{title: "RECV-Q", width: 7, right: true},
		{title: "SEND-Q", width: 7, right: true},
		{title: "RTT ms", width: 8, right: true, minWindow: 100},
		{title: "TIMER", width: 24, minWindow: 120},
	})
	v.list.cell = v.cell
	v.list.empty = "loading sockets/tcp.jsonl…"
	return v
}

func (v *socketsView) cell(r, c int) string {
	row := &v.table.rows[v.idx[r]]
	switch c {
	case 0:
		return v.table.states[row.state]
	case 1:
		return row.local
	case 2:
		return row.remote
	case 3:
		return strconv.FormatUint(uint64(row.recvQ), 10)
	case 4:
		return strconv.FormatUint(uint64(row.sendQ), 10)
	case 5:
		return rttMS(row.rttUS)
	case 6:
		return timerText(row.timer, row.expiresMS, row.retrans)
	}
	return ""
}

// rttMS is a smoothed RTT in milliseconds with the digits that matter: a
// LAN or loopback RTT of 24 µs is 0.024, not 0.0.
func rttMS(us uint32) string {
	ms := float64(us) / 1000
	switch {
	case us == 0:
		return ""
	case us < 1000:
		return strconv.FormatFloat(ms, 'f', 3, 64)
	case us < 10000:
		return strconv.FormatFloat(ms, 'f', 2, 64)
	}
	return strconv.FormatFloat(ms, 'f', 1, 64)
}

// timerText is a socket's running timer with the time left, as ss -o
// prints it but spelled out: ss's "on" (idiag_timer 1) is the retransmit
// timer. A SYN-RECV request sock reports it too: inet_req_diag_fill() sets
// idiag_timer = 1 and the time left before the SYN-ACK is re-sent
// (docs/kernel-listen-path.md 2.2).
func timerText(name string, expiresMS uint32, retrans uint8) string {
	if name == "" {
		return ""
	}
	if name == "on" {
		name = "retransmit"
	}
	s := name
	if expiresMS > 0 {
		s += " " + (time.Duration(expiresMS) * time.Millisecond).String()
	}
	if retrans > 0 {
		s += fmt.Sprintf(", %d retrans", retrans)
	}
	return s
}

// Filter is the filter typed after '/'.
func (v *socketsView) Filter() string { return v.filter }

// Activate starts loading the socket table the first time the view shows.
func (v *socketsView) Activate() tea.Cmd {
	if v.started {
		return nil
	}
	v.started = true
	dir, load := v.ctx.focusDir(), loadSockets(v.ctx.nsFS())
	return func() tea.Msg {
		msg, _ := load().(socketsMsg)
		msg.dir = dir
		return msg
	}
}

func (v *socketsView) SetSize(w, h int) {
	v.width = w
	v.list.setSize(w, max(h-1, 1))
}

func (v *socketsView) SetFilter(s string) tea.Cmd {
	v.filter = s
	return v.reselect()
}

// Jump applies the filter a piece of evidence names.
func (v *socketsView) Jump(t Target) tea.Cmd {
	v.filter = t.Filter
	return tea.Batch(v.Activate(), v.reselect())
}

// reselect asks for the rows that pass the filter, in sort order.
func (v *socketsView) reselect() tea.Cmd {
	if v.table == nil {
		return nil
	}
	v.gen++
	v.busy = true
	return selectSocketsCmd(v.table, v.gen, v.filter, v.sort, v.desc)
}

func (v *socketsView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case snapshotMsg:
		v.snap = msg.snap
	case focusMsg:
		// Another namespace's socket table: loaded again when the view
		// next shows (the root model sizes the new view).
		*v = *newSocketsView(v.ctx)
	case socketsMsg:
		if msg.dir != v.ctx.focusDir() {
			return nil // of the namespace that was in focus before
		}
		if msg.err != nil {
			v.err = msg.err
			v.list.empty = "could not read the socket table: " + msg.err.Error()
			if errors.Is(msg.err, fs.ErrNotExist) {
				v.missing, v.list.empty = whyMissing(v.snap, bundle.PathSocketsTCP, "sockets",
					"No sockets/tcp.jsonl in this bundle: it was captured without the socket collector.")
			} else if errors.Is(msg.err, bundle.ErrCorrupt) {
				// Cut inside the table: what was read is lost with it.
				v.missing = missingDamaged
			}
			return nil
		}
		v.table = msg.table
		v.list.empty = "No socket matches the filter."
		return v.reselect()
	case socketsViewMsg:
		if msg.gen != v.gen {
			return nil // a newer filter is on its way
		}
		v.busy = false
		v.idx = msg.rows
		v.list.setRows(len(v.idx))
	case tea.KeyPressMsg:
		k := v.ctx.Keys
		switch {
		case v.list.handleKey(msg):
		case key.Matches(msg, k.Sort):
			v.sort = (v.sort + 1) % numSockSorts
			return v.reselect()
		case key.Matches(msg, k.Order):
			v.desc = !v.desc
			return v.reselect()
		}
	}
	return nil
}

// Rows is how many sockets pass the filter (-1 until they are known).
func (v *socketsView) Rows() int {
	if v.table == nil || v.busy {
		return -1
	}
	return len(v.idx)
}

func (v *socketsView) status() string {
	if v.table == nil {
		if v.err != nil {
			return "socket table unavailable"
		}
		return "loading…"
	}
	s := fmt.Sprintf("%d sockets", len(v.table.rows))
	if v.filter != "" {
		s += fmt.Sprintf(" · %d match", len(v.idx))
	}
	if v.busy {
		s += " · filtering…"
	}
	s += " · sort: " + v.sort.String()
	if v.desc {
		s += " ↓"
	}
	if v.table.invalid > 0 {
		s += fmt.Sprintf(" · %d unreadable rows", v.table.invalid)
	}
	if sn, ok := v.ctx.FS.(interface{ Manifest() *bundle.Manifest }); ok {
		if m := sn.Manifest(); m != nil && m.Sockets != nil && m.Sockets.Truncated {
			s += fmt.Sprintf(" · capped: %d of %d captured", m.Sockets.Written, m.Sockets.Total)
		}
	}
	return s
}

func (v *socketsView) View() string {
	return v.ctx.Styles.Muted.Render(fit(" "+v.status(), v.width)) + "\n" + v.list.View()
}

func (v *socketsView) ShortHelp() []key.Binding {
	k := v.ctx.Keys
	return []key.Binding{k.Up, k.Down, withHelp(k.Filter, "/", "filter (state: port: addr:)"), k.Sort, k.Order}
}

func (v *socketsView) FullHelp() [][]key.Binding {
	k := v.ctx.Keys
	return [][]key.Binding{k.navHelp(), {
		withHelp(k.Filter, "/", "filter: state:estab port:143 lport: rport: addr:10.0.0.2, or any text"),
		k.Sort, k.Order,
	}}
}

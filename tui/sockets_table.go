package tui

import (
	"cmp"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/safetext"
)

// maxSocketsFile bounds sockets/tcp.jsonl as the TUI reads it.
const maxSocketsFile = 2 << 30

// sockRow is one socket, reduced to what the sockets view shows: about 88
// bytes, so a 200,000-row table costs some 16 MB.
type sockRow struct {
	local, remote string
	timer         string
	recvQ, sendQ  uint32
	rttUS         uint32
	expiresMS     uint32
	lport, rport  uint16
	state         uint8 // index into socketTable.states
	retrans       uint8
}

// socketTable is sockets/tcp.jsonl parsed: immutable once built, so the
// filter and sort commands read it from other goroutines.
type socketTable struct {
	rows    []sockRow
	states  []string
	invalid int
}

// loadSockets streams the socket table off the UI goroutine.
func loadSockets(fsys fs.FS) tea.Cmd {
	return func() tea.Msg {
		f, err := fsys.Open(bundle.PathSocketsTCP)
		if err != nil {
			return socketsMsg{err: err}
		}
		defer f.Close()
		t, err := readSocketTable(io.LimitReader(f, maxSocketsFile), rowsHint(fsys, f))
		if err != nil {
			return socketsMsg{err: err}
		}
		return socketsMsg{table: t}
	}
}

// minRowBytes is less than the shortest row the collector writes (a
// listener without tcp_info takes some 120 bytes).
const minRowBytes = 100

// rowsHint is how many rows to make room for: the count the manifest
// records, but never more than the member's size could hold, whatever a
// hostile manifest says.
func rowsHint(fsys fs.FS, f fs.File) int {
	b, ok := fsys.(interface{ Manifest() *bundle.Manifest })
	if !ok {
		return 0
	}
	m := b.Manifest()
	fi, err := f.Stat()
	if m == nil || m.Sockets == nil || err != nil {
		return 0
	}
	return int(max(min(int64(m.Sockets.Written), fi.Size()/minRowBytes), 0))
}

// readSocketTable reads the rows of sockets/tcp.jsonl through the bundle's
// reader, keeping what the view shows, in a table with room for hint rows.
// Rows the reader reports as malformed
// are counted, not shown.
func readSocketTable(r io.Reader, hint int) (*socketTable, error) {
	t := &socketTable{rows: make([]sockRow, 0, hint)}
	ids := map[string]uint8{}
	invalid, err := bundle.NewSocketReader(r).ForEach(func(s *bundle.Socket) error {
		// The table's strings come from the bundle: shown made safe.
		state := safetext.Line(s.State)
		id, ok := ids[state]
		if !ok {
			if len(t.states) >= 255 {
				t.invalid++
				return nil
			}
			id = uint8(len(t.states))
			ids[state] = id
			t.states = append(t.states, state)
		}
		row := sockRow{local: safetext.Line(s.Local), remote: safetext.Line(s.Remote), timer: safetext.Line(s.Timer), recvQ: s.RecvQ, sendQ: s.SendQ,
			lport: portOf(s.Local), rport: portOf(s.Remote), state: id, retrans: s.Retrans, expiresMS: s.ExpiresMS}
		if s.Info != nil {
			row.rttUS = s.Info.RTT
		}
		t.rows = append(t.rows, row)
		return nil
	})
	if err != nil {
		return nil, err
	}
	t.invalid += invalid
	return t, nil
}

// portOf is the port of "ADDR:PORT" or "[ADDR]:PORT", 0 when there is none.
func portOf(ap string) uint16 {
	_, p, _ := bundle.SplitAddrPort(ap)
	return p
}

// sockSort is a column of the sockets view to sort by.
type sockSort int

// The sort orders, in the order the sort key cycles through them.
const (
	sortFile sockSort = iota
	sortState
	sortLocal
	sortRemote
	sortRecvQ
	sortSendQ
	sortRTT
	numSockSorts
)

func (s sockSort) String() string {
	return [...]string{"file order", "state", "local", "remote", "recv-q", "send-q", "rtt"}[s]
}

// sockQuery is a parsed filter: every term must match. "state:estab",
// "port:143" (local or remote), "lport:", "rport:", "local:", "remote:" or
// "addr:" (a substring of either address); a bare word matches the state or
// either address.
type sockQuery struct {
	terms []sockTerm
}

type sockTerm struct {
	field string // "", "state", "port", "lport", "rport", "local", "remote", "addr"
	text  string
	port  uint16
}

// parseSockQuery reads a filter; a term it cannot read becomes a plain
// substring.
func parseSockQuery(q string) sockQuery {
	var out sockQuery
	for _, w := range strings.Fields(q) {
		field, text, ok := strings.Cut(w, ":")
		t := sockTerm{text: strings.ToLower(w)}
		if ok && text != "" {
			switch f := strings.ToLower(field); f {
			case "port", "lport", "rport", "sport", "dport":
				if p, err := strconv.ParseUint(text, 10, 16); err == nil {
					t = sockTerm{field: map[string]string{"sport": "lport", "dport": "rport"}[f], port: uint16(p)}
					if t.field == "" {
						t.field = f
					}
				}
			case "state", "local", "remote", "addr", "src", "dst":
				t = sockTerm{field: f, text: strings.ToLower(text)}
				if f == "src" {
					t.field = "remote"
				}
				if f == "dst" {
					t.field = "local"
				}
			}
		}
		out.terms = append(out.terms, t)
	}
	return out
}

// normState is a state name compared loosely: "syn_recv" matches "SYN-RECV".
func normState(s string) string {
	return strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(s))
}

// matcher returns a function that tells whether a row passes q.
func (t *socketTable) matcher(q sockQuery) func(r *sockRow) bool {
	if len(q.terms) == 0 {
		return func(*sockRow) bool { return true }
	}
	// Resolve state terms once: the set of state ids each allows.
	stateOK := make([][]bool, len(q.terms))
	for i, term := range q.terms {
		if term.field != "state" && term.field != "" {
			continue
		}
		ok := make([]bool, 256)
		for id, name := range t.states {
			n := normState(name)
			if term.field == "state" && strings.HasPrefix(n, normState(term.text)) ||
				term.field == "" && strings.Contains(n, normState(term.text)) {
				ok[id] = true
			}
		}
		stateOK[i] = ok
	}
	return func(r *sockRow) bool {
		for i, term := range q.terms {
			var m bool
			switch term.field {
			case "state":
				m = stateOK[i][r.state]
			case "port":
				m = r.lport == term.port || r.rport == term.port
			case "lport":
				m = r.lport == term.port
			case "rport":
				m = r.rport == term.port
			case "local":
				m = containsFold(r.local, term.text)
			case "remote":
				m = containsFold(r.remote, term.text)
			case "addr":
				m = containsFold(r.local, term.text) || containsFold(r.remote, term.text)
			default:
				m = stateOK[i][r.state] || containsFold(r.local, term.text) || containsFold(r.remote, term.text)
			}
			if !m {
				return false
			}
		}
		return true
	}
}

// containsFold is strings.Contains for a lower-case needle; addresses are
// lower-case already except for IPv6 hex digits written in capitals.
func containsFold(s, lowerNeedle string) bool {
	if strings.Contains(s, lowerNeedle) {
		return true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.Contains(strings.ToLower(s), lowerNeedle)
		}
	}
	return false
}

// selectSockets filters and sorts the table: the indexes of the rows that
// pass, in order.
func selectSockets(t *socketTable, query string, by sockSort, desc bool) []int32 {
	match := t.matcher(parseSockQuery(query))
	idx := make([]int32, 0, len(t.rows))
	for i := range t.rows {
		if match(&t.rows[i]) {
			idx = append(idx, int32(i))
		}
	}
	if by != sortFile {
		rows := t.rows
		var c func(a, b *sockRow) int
		switch by {
		case sortState:
			c = func(a, b *sockRow) int { return strings.Compare(t.states[a.state], t.states[b.state]) }
		case sortLocal:
			c = func(a, b *sockRow) int {
				return cmp.Or(cmp.Compare(a.lport, b.lport), strings.Compare(a.local, b.local))
			}
		case sortRemote:
			c = func(a, b *sockRow) int { return strings.Compare(a.remote, b.remote) }
		case sortRecvQ:
			c = func(a, b *sockRow) int { return cmp.Compare(a.recvQ, b.recvQ) }
		case sortSendQ:
			c = func(a, b *sockRow) int { return cmp.Compare(a.sendQ, b.sendQ) }
		case sortRTT:
			c = func(a, b *sockRow) int { return cmp.Compare(a.rttUS, b.rttUS) }
		}
		slices.SortStableFunc(idx, func(x, y int32) int {
			r := c(&rows[x], &rows[y])
			if desc {
				r = -r
			}
			return r
		})
	} else if desc {
		slices.Reverse(idx)
	}
	return idx
}

// selectSocketsCmd runs selectSockets off the UI goroutine.
func selectSocketsCmd(t *socketTable, gen int, query string, by sockSort, desc bool) tea.Cmd {
	return func() tea.Msg {
		return socketsViewMsg{gen: gen, rows: selectSockets(t, query, by, desc)}
	}
}

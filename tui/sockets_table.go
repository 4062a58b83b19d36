package tui

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/snapdiag/snapdiag/bundle"
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

// sockJSON is the part of a bundle.Socket row the view needs.
type sockJSON struct {
	State   string `json:"state"`
	Local   string `json:"local"`
	Remote  string `json:"remote"`
	RecvQ   uint32 `json:"recv_q"`
	SendQ   uint32 `json:"send_q"`
	Timer   string `json:"timer"`
	Expires uint32 `json:"expires_ms"`
	Retrans uint8  `json:"retrans"`
	Info    *struct {
		RTT uint32 `json:"rtt_us"`
	} `json:"info"`
}

// loadSockets reads and parses the socket table off the UI goroutine.
func loadSockets(fsys fs.FS) tea.Cmd {
	return func() tea.Msg {
		f, err := fsys.Open(bundle.PathSocketsTCP)
		if err != nil {
			return socketsMsg{err: err}
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxSocketsFile))
		if err != nil {
			return socketsMsg{err: fmt.Errorf("read %s: %w", bundle.PathSocketsTCP, err)}
		}
		return socketsMsg{table: parseSocketTable(data)}
	}
}

// parseSocketTable parses JSON lines in parallel, one chunk per CPU, and
// keeps the rows in file order.
func parseSocketTable(data []byte) *socketTable {
	n := max(runtime.GOMAXPROCS(0), 1)
	if len(data) < 1<<20 {
		n = 1
	}
	// Cut at line ends near equal sizes.
	var chunks [][]byte
	for rest := data; len(rest) > 0; {
		cut := len(rest)
		if left := n - len(chunks); left > 1 {
			cut = len(rest) / left
			if i := bytes.IndexByte(rest[cut:], '\n'); i >= 0 {
				cut += i + 1
			} else {
				cut = len(rest)
			}
		}
		chunks = append(chunks, rest[:cut])
		rest = rest[cut:]
	}
	type part struct {
		rows    []sockRow
		states  []string
		invalid int
	}
	parts := make([]part, len(chunks))
	var wg sync.WaitGroup
	for i, c := range chunks {
		wg.Go(func() {
			p := &parts[i]
			p.rows = make([]sockRow, 0, bytes.Count(c, []byte{'\n'})+1)
			ids := map[string]uint8{}
			for line := range bytes.Lines(c) {
				line = bytes.TrimSpace(line)
				if len(line) == 0 {
					continue
				}
				var s sockJSON
				if json.Unmarshal(line, &s) != nil {
					p.invalid++
					continue
				}
				id, ok := ids[s.State]
				if !ok {
					if len(p.states) >= 255 {
						p.invalid++
						continue
					}
					id = uint8(len(p.states))
					ids[s.State] = id
					p.states = append(p.states, s.State)
				}
				r := sockRow{local: s.Local, remote: s.Remote, timer: s.Timer, recvQ: s.RecvQ, sendQ: s.SendQ,
					lport: portOf(s.Local), rport: portOf(s.Remote), state: id, retrans: s.Retrans, expiresMS: s.Expires}
				if s.Info != nil {
					r.rttUS = s.Info.RTT
				}
				p.rows = append(p.rows, r)
			}
		})
	}
	wg.Wait()
	// Merge, renumbering each part's states into one list.
	t := &socketTable{}
	total := 0
	for _, p := range parts {
		total += len(p.rows)
	}
	t.rows = make([]sockRow, 0, total)
	ids := map[string]uint8{}
	for _, p := range parts {
		remap := make([]uint8, len(p.states))
		for i, s := range p.states {
			id, ok := ids[s]
			if !ok {
				id = uint8(min(len(t.states), 255))
				ids[s] = id
				t.states = append(t.states, s)
			}
			remap[i] = id
		}
		for _, r := range p.rows {
			r.state = remap[r.state]
			t.rows = append(t.rows, r)
		}
		t.invalid += p.invalid
	}
	return t
}

// portOf is the port of "ADDR:PORT" or "[ADDR]:PORT", 0 when there is none.
func portOf(ap string) uint16 {
	i := strings.LastIndexByte(ap, ':')
	if i < 0 {
		return 0
	}
	p, err := strconv.ParseUint(ap[i+1:], 10, 16)
	if err != nil {
		return 0
	}
	return uint16(p)
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

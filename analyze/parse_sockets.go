package analyze

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
)

// parseListeners reads a sample's listeners.json.
func parseListeners(r io.Reader) ([]bundle.Listener, error) {
	var ls []bundle.Listener
	dec := json.NewDecoder(io.LimitReader(r, 64<<20))
	if err := dec.Decode(&ls); err != nil {
		return nil, fmt.Errorf("decode listeners: %w", err)
	}
	return ls, nil
}

// parseSummary reads sockets/summary.json.
func parseSummary(r io.Reader) (*bundle.SocketSummary, error) {
	var s bundle.SocketSummary
	dec := json.NewDecoder(io.LimitReader(r, 256<<20))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode socket summary: %w", err)
	}
	return &s, nil
}

// SynRecvStats aggregates the SYN-RECV request sockets of one local port.
type SynRecvStats struct {
	Count int
	// Retransmitted counts requests whose SYN-ACK was re-sent at least once;
	// MaxRetrans is the highest retransmit count seen. Requests with many
	// retransmits belong to clients that never complete (section 2.3).
	Retransmitted int
	MaxRetrans    int
	// Sources counts requests by remote address, at most maxSources addresses.
	Sources map[string]int
}

// Tuple is an outgoing connection's (source address, destination address,
// destination port): connect() needs a free local port per tuple.
type Tuple struct {
	Src, Dst netip.Addr
	DPort    uint16
}

// SocketAggregates is what the rules need from sockets/tcp.jsonl, kept while
// streaming it instead of holding every row.
type SocketAggregates struct {
	Rows    int
	Invalid int
	ByState map[string]int
	// SynRecv is keyed by local port.
	SynRecv map[int]*SynRecvStats
	// Outgoing counts non-LISTEN sockets whose local port lies in
	// ip_local_port_range, per tuple; TimeWait counts the TIME-WAIT ones.
	Outgoing map[Tuple]int
	TimeWait map[Tuple]int
}

// maxSources bounds the per-port source maps.
const maxSources = 4096

// socketRow is the part of a bundle.Socket the aggregates use.
type socketRow struct {
	State   string
	Local   string
	Remote  string
	Retrans int
}

// parseSocketsTCP streams sockets/tcp.jsonl. portLo and portHi are
// ip_local_port_range (0, 0 when unknown: no tuple counts are kept).
func parseSocketsTCP(r io.Reader, portLo, portHi int) (*SocketAggregates, error) {
	agg := &SocketAggregates{
		ByState:  map[string]int{},
		SynRecv:  map[int]*SynRecvStats{},
		Outgoing: map[Tuple]int{},
		TimeWait: map[Tuple]int{},
	}
	br := bufio.NewReaderSize(r, 256<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// An overlong row: skip it whole.
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			agg.Invalid++
			if err == io.EOF {
				break
			}
			if err != nil {
				return agg, fmt.Errorf("read sockets: %w", err)
			}
			continue
		}
		if len(bytes.TrimSpace(line)) > 0 {
			row, ok := scanSocketRow(line)
			if !ok {
				var s bundle.Socket
				if json.Unmarshal(line, &s) != nil {
					agg.Invalid++
				} else {
					ok = true
					row = socketRow{State: s.State, Local: s.Local, Remote: s.Remote, Retrans: int(s.Retrans)}
				}
			}
			if ok {
				agg.add(row, portLo, portHi)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return agg, fmt.Errorf("read sockets: %w", err)
		}
	}
	return agg, nil
}

func (a *SocketAggregates) add(row socketRow, portLo, portHi int) {
	a.Rows++
	a.ByState[row.State]++
	switch row.State {
	case "LISTEN":
		return
	case "SYN-RECV":
		_, lport, ok := splitHostPort(row.Local)
		if !ok {
			return
		}
		st := a.SynRecv[lport]
		if st == nil {
			st = &SynRecvStats{Sources: map[string]int{}}
			a.SynRecv[lport] = st
		}
		st.Count++
		if row.Retrans > 0 {
			st.Retransmitted++
		}
		st.MaxRetrans = max(st.MaxRetrans, row.Retrans)
		if raddr, _, ok := splitHostPort(row.Remote); ok {
			if _, seen := st.Sources[raddr.String()]; seen || len(st.Sources) < maxSources {
				st.Sources[raddr.String()]++
			}
		}
		return
	}
	if portHi == 0 {
		return
	}
	laddr, lport, ok1 := splitHostPort(row.Local)
	raddr, rport, ok2 := splitHostPort(row.Remote)
	if !ok1 || !ok2 || lport < portLo || lport > portHi {
		return
	}
	t := Tuple{Src: laddr, Dst: raddr, DPort: uint16(rport)}
	a.Outgoing[t]++
	if row.State == "TIME-WAIT" {
		a.TimeWait[t]++
	}
}

// splitHostPort parses "10.0.0.1:143", "[::1]:143" or "[fe80::1%eth0]:22".
func splitHostPort(s string) (netip.Addr, int, bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.Addr{}, 0, false
	}
	host, port := s[:i], s[i+1:]
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return netip.Addr{}, 0, false
	}
	if host == "*" {
		return netip.IPv4Unspecified(), p, true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	return a.Unmap(), p, true
}

// scanSocketRow picks state, local, remote and retrans out of one JSON object
// without decoding the rest: a 200,000-row table with tcp_info is too large
// for encoding/json to read within the analyzer's time budget. It reports
// false on anything it does not fully understand (escapes in a wanted string,
// malformed JSON), and the caller falls back to encoding/json.
func scanSocketRow(b []byte) (socketRow, bool) {
	var row socketRow
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return row, false
	}
	i++
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return row, false
		}
		if b[i] == '}' {
			i = skipWS(b, i+1)
			return row, i == len(b)
		}
		if b[i] == ',' {
			i = skipWS(b, i+1)
		}
		key, j, ok := scanString(b, i)
		if !ok {
			return row, false
		}
		i = skipWS(b, j)
		if i >= len(b) || b[i] != ':' {
			return row, false
		}
		i = skipWS(b, i+1)
		switch key {
		case "state", "local", "remote":
			v, j, ok := scanString(b, i)
			if !ok {
				return row, false
			}
			switch key {
			case "state":
				row.State = v
			case "local":
				row.Local = v
			default:
				row.Remote = v
			}
			i = j
		case "retrans":
			j := i
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			n, err := strconv.Atoi(string(b[i:j]))
			if err != nil || n > 255 {
				return row, false
			}
			row.Retrans = n
			i = j
		default:
			j, ok := skipValue(b, i)
			if !ok {
				return row, false
			}
			i = j
		}
		i = skipWS(b, i)
		if i < len(b) && b[i] != ',' && b[i] != '}' {
			return row, false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads a JSON string of printable ASCII without escapes at b[i].
func scanString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch {
		case b[j] == '"':
			return string(b[i+1 : j]), j + 1, true
		case b[j] == '\\' || b[j] < 0x20 || b[j] >= 0x80:
			// Escapes and non-ASCII (encoding/json replaces invalid UTF-8)
			// go to the fallback decoder.
			return "", j, false
		}
	}
	return "", len(b), false
}

// skipValue skips one JSON value of any kind at b[i]. It checks nesting and
// strings but not the grammar of literals; the fallback decoder sees every
// row this scanner rejects, and fuzzing compares the two.
func skipValue(b []byte, i int) (int, bool) {
	start := i
	j, ok := skipValueAt(b, i)
	return j, ok && j > start
}

func skipValueAt(b []byte, i int) (int, bool) {
	depth := 0
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(b) {
				return i, false
			}
			i = j + 1
			if depth == 0 {
				return i, true
			}
			continue
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return i, true // end of the enclosing object: caller checks
			}
			depth--
			if depth == 0 {
				return i + 1, true
			}
		case c == ',' && depth == 0:
			return i, true
		case depth == 0 && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return i, true
		}
		i++
	}
	return i, depth == 0
}

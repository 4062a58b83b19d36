package bundle

import (
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/netip"
	"strconv"
)

// MaxSocketSummaryFile bounds sockets/summary.json as DecodeSocketSummary
// reads it: a SYN flood from a million sources writes some 50 MiB.
const MaxSocketSummaryFile = 256 << 20

// StateCounts counts sockets by the kernel's TCP state number, as
// SocketStateName names them.
type StateCounts [NumSocketStates]uint32

// summaryFlushAt is how much of the summary is gathered before it is
// written.
const summaryFlushAt = 64 << 10

// WriteSocketSummary writes sockets/summary.json (a SocketSummary) to w
// without building its maps: ports and remote addresses in the order the
// sequences give them, one per line, and in each count only the states that
// occur, in the kernel's state order. A SYN flood has many peers, and the
// map[string]map[string]int of the record would cost hundreds of bytes for
// each of them.
func WriteSocketSummary(w io.Writer, total int, byState *StateCounts, ports iter.Seq2[uint16, *StateCounts], remotes iter.Seq2[netip.Addr, *StateCounts]) error {
	b := make([]byte, 0, summaryFlushAt+4096)
	var err error
	flush := func() {
		if err == nil && len(b) > 0 {
			_, err = w.Write(b)
		}
		b = b[:0]
	}
	b = append(b, "{\n \"total\": "...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, ",\n \"by_state\": "...)
	b = appendStateCounts(b, byState)
	b = append(b, ",\n \"by_local_port\": {"...)
	first := true
	for port, c := range ports {
		b = appendSummaryKey(b, first)
		first = false
		b = strconv.AppendUint(b, uint64(port), 10)
		b = append(b, "\": "...)
		b = appendStateCounts(b, c)
		if len(b) >= summaryFlushAt {
			flush()
		}
	}
	b = appendSummaryEnd(b, first)
	b = append(b, ",\n \"by_remote_addr\": {"...)
	first = true
	for a, c := range remotes {
		b = appendSummaryKey(b, first)
		first = false
		if a.Zone() == "" {
			b = a.AppendTo(b)
		} else {
			b = appendJSONStringBody(b, a.String())
		}
		b = append(b, "\": "...)
		b = appendStateCounts(b, c)
		if len(b) >= summaryFlushAt {
			flush()
		}
	}
	b = appendSummaryEnd(b, first)
	b = append(b, "\n}\n"...)
	flush()
	return err
}

// appendSummaryKey starts one entry of a summary object, up to its key's
// opening quote.
func appendSummaryKey(b []byte, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	return append(b, "\n  \""...)
}

func appendSummaryEnd(b []byte, empty bool) []byte {
	if !empty {
		b = append(b, "\n "...)
	}
	return append(b, '}')
}

// appendStateCounts appends {"ESTAB": 3, ...} with the states that occur, in
// the kernel's state order.
func appendStateCounts(b []byte, c *StateCounts) []byte {
	b = append(b, '{')
	first := true
	for state, n := range c {
		if n == 0 {
			continue
		}
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = append(b, '"')
		b = append(b, SocketStateName(state)...)
		b = append(b, "\": "...)
		b = strconv.AppendUint(b, uint64(n), 10)
	}
	return append(b, '}')
}

// DecodeSocketSummary decodes sockets/summary.json, reading at most
// MaxSocketSummaryFile bytes of r.
func DecodeSocketSummary(r io.Reader) (*SocketSummary, error) {
	var s SocketSummary
	dec := json.NewDecoder(io.LimitReader(r, MaxSocketSummaryFile))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode %s: %w", PathSocketsSummary, err)
	}
	return &s, nil
}

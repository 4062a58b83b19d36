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
	sw := summaryWriter{w: w, b: make([]byte, 0, summaryFlushAt+4096)}
	sw.b = append(sw.b, "{\n \"total\": "...)
	sw.b = strconv.AppendInt(sw.b, int64(total), 10)
	sw.b = append(sw.b, ",\n \"by_state\": "...)
	sw.b = appendStateCounts(sw.b, byState)
	sw.b = append(sw.b, ",\n \"by_local_port\": "...)
	writeCounts(&sw, ports, func(b []byte, port uint16) []byte { return strconv.AppendUint(b, uint64(port), 10) })
	sw.b = append(sw.b, ",\n \"by_remote_addr\": "...)
	writeCounts(&sw, remotes, func(b []byte, a netip.Addr) []byte {
		if a.Zone() == "" {
			return a.AppendTo(b)
		}
		return appendJSONStringBody(b, a.String())
	})
	sw.b = append(sw.b, "\n}\n"...)
	sw.flush()
	return sw.err
}

// summaryWriter gathers the summary and writes it in large pieces; after a
// write error it writes nothing more.
type summaryWriter struct {
	w   io.Writer
	b   []byte
	err error
}

func (sw *summaryWriter) flush() {
	if sw.err == nil && len(sw.b) > 0 {
		_, sw.err = sw.w.Write(sw.b)
	}
	sw.b = sw.b[:0]
}

// writeCounts writes one object of counts by key, a key a line, each key
// written by appendKey (inside its quotes).
func writeCounts[K any](sw *summaryWriter, counts iter.Seq2[K, *StateCounts], appendKey func([]byte, K) []byte) {
	sw.b = append(sw.b, '{')
	first := true
	for k, c := range counts {
		if !first {
			sw.b = append(sw.b, ',')
		}
		first = false
		sw.b = append(sw.b, "\n  \""...)
		sw.b = appendKey(sw.b, k)
		sw.b = append(sw.b, "\": "...)
		sw.b = appendStateCounts(sw.b, c)
		if len(sw.b) >= summaryFlushAt {
			sw.flush()
		}
	}
	if !first {
		sw.b = append(sw.b, "\n "...)
	}
	sw.b = append(sw.b, '}')
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

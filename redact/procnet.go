package redact

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strconv"
)

// The /proc/net files that hold addresses in hex rather than text. Their
// fields are rewritten in place, with the same width and case, so the files
// parse as before.

// fieldSpans returns the [start, end) of each whitespace-separated field.
func fieldSpans(line []byte) [][2]int {
	var out [][2]int
	for i := 0; i < len(line); {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i >= len(line) {
			break
		}
		j := i
		for j < len(line) && !isSpace(line[j]) {
			j++
		}
		out = append(out, [2]int{i, j})
		i = j
	}
	return out
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// hexAddr maps the address written in hex in f, in place. hostOrder says
// the kernel printed it as host-order 32-bit words (/proc/net/tcp, route:
// "%08X" of a __be32), so on a little-endian machine each word's bytes are
// reversed; otherwise it is network order (%pi6: ipv6_route, if_inet6).
// bits, when not negative, is the prefix length of a network address whose
// pseudonym must stay a network address.
func (m *mapper) hexAddr(f []byte, hostOrder bool, order binary.ByteOrder, bits int) {
	if len(f) != 8 && len(f) != 32 {
		return
	}
	raw := make([]byte, len(f)/2)
	if _, err := hex.Decode(raw, f); err != nil {
		return
	}
	swap := func() {
		if hostOrder && order == binary.LittleEndian {
			for w := 0; w+4 <= len(raw); w += 4 {
				raw[w], raw[w+1], raw[w+2], raw[w+3] = raw[w+3], raw[w+2], raw[w+1], raw[w]
			}
		}
	}
	swap()
	a, _ := netip.AddrFromSlice(raw)
	p := m.Addr(a)
	if bits >= 0 {
		if pf, err := a.Prefix(bits); err == nil && pf.Addr() == a {
			if mp, err := p.Prefix(bits); err == nil {
				p = mp.Addr()
			}
		}
	}
	copy(raw, p.AsSlice())
	swap()
	out := hex.EncodeToString(raw)
	if bytes.ContainsAny(f, "ABCDEF") {
		out = string(bytes.ToUpper([]byte(out)))
	}
	copy(f, out)
}

// sockLine rewrites one line of /proc/net/tcp, tcp6, udp, udp6, raw, raw6,
// udplite: the local_address and rem_address fields, ADDR:PORT in hex.
func (m *mapper) sockLine(line []byte, order binary.ByteOrder) {
	fs := fieldSpans(line)
	for k := 1; k <= 2 && k < len(fs); k++ {
		f := line[fs[k][0]:fs[k][1]]
		if c := bytes.IndexByte(f, ':'); c > 0 {
			m.hexAddr(f[:c], true, order, -1)
		}
	}
}

// routeColumns finds the columns of /proc/net/route from its header.
func routeColumns(header []byte) (dst, gw, mask int) {
	dst, gw, mask = -1, -1, -1
	for k, sp := range fieldSpans(header) {
		switch string(header[sp[0]:sp[1]]) {
		case "Destination":
			dst = k
		case "Gateway":
			gw = k
		case "Mask":
			mask = k
		}
	}
	return dst, gw, mask
}

// routeLine rewrites one entry of /proc/net/route: the destination (a
// network, masked again after mapping) and the gateway.
func (m *mapper) routeLine(line []byte, dst, gw, mask int, order binary.ByteOrder) {
	fs := fieldSpans(line)
	field := func(k int) []byte {
		if k < 0 || k >= len(fs) {
			return nil
		}
		return line[fs[k][0]:fs[k][1]]
	}
	bits := -1
	if mk := field(mask); len(mk) == 8 {
		if v, err := strconv.ParseUint(string(mk), 16, 32); err == nil {
			var b [4]byte
			order.PutUint32(b[:], uint32(v))
			if pf, ok := maskBits(b[:]); ok {
				bits = pf
			}
		}
	}
	if f := field(dst); f != nil {
		m.hexAddr(f, true, order, bits)
	}
	if f := field(gw); f != nil {
		m.hexAddr(f, true, order, -1)
	}
}

// maskBits is the prefix length of a contiguous netmask.
func maskBits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		for bit := 7; bit >= 0 && c&(1<<bit) != 0; bit-- {
			n++
		}
		if c != 0xff {
			break
		}
	}
	return n, isMask(b, n)
}

func isMask(b []byte, n int) bool {
	for i := range b {
		var want byte
		switch {
		case n >= (i+1)*8:
			want = 0xff
		case n > i*8:
			want = byte(0xff << (8 - (n - i*8)))
		}
		if b[i] != want {
			return false
		}
	}
	return true
}

// ipv6RouteLine rewrites one line of /proc/net/ipv6_route: destination and
// source networks (each followed by its prefix length in hex) and the next
// hop.
func (m *mapper) ipv6RouteLine(line []byte) {
	fs := fieldSpans(line)
	if len(fs) < 5 {
		return
	}
	plen := func(k int) int {
		v, err := strconv.ParseUint(string(line[fs[k][0]:fs[k][1]]), 16, 8)
		if err != nil || v > 128 {
			return -1
		}
		return int(v)
	}
	m.hexAddr(line[fs[0][0]:fs[0][1]], false, nil, plen(1))
	m.hexAddr(line[fs[2][0]:fs[2][1]], false, nil, plen(3))
	m.hexAddr(line[fs[4][0]:fs[4][1]], false, nil, -1)
}

// firstHexLine rewrites the first field of a line as a network-order IPv6
// address: /proc/net/if_inet6, anycast6.
func (m *mapper) firstHexLine(line []byte) {
	fs := fieldSpans(line)
	if len(fs) > 0 {
		m.hexAddr(line[fs[0][0]:fs[0][1]], false, nil, -1)
	}
}

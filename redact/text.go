package redact

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// textScanner rewrites addresses, MAC addresses and the host's names in
// text. It works on bytes, one line (or chunk) at a time: no token it
// rewrites spans a newline.
type textScanner struct {
	m *mapper
	// names are the host's names to replace with their pseudonym, longest
	// first, lower case.
	names []string
	// found, when set, is told of every address and MAC the scanner
	// rewrote (the fuzz test checks none of them is left).
	found func(orig string)
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isAddrChar is a character an address, a MAC or a port in ADDR:PORT can
// hold.
func isAddrChar(c byte) bool { return isHex(c) || c == ':' || c == '.' }

// isNameChar is a character of a host name label.
func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// appendText appends src to dst with addresses (and, with names, the
// host's names) replaced.
func (t *textScanner) appendText(dst, src []byte, names bool) []byte {
	if names && len(t.names) > 0 {
		src = t.replaceNames(nil, src)
	}
	for i := 0; i < len(src); {
		if !isAddrChar(src[i]) {
			j := i + 1
			for j < len(src) && !isAddrChar(src[j]) {
				j++
			}
			dst = append(dst, src[i:j]...)
			i = j
			continue
		}
		j := i + 1
		for j < len(src) && isAddrChar(src[j]) {
			j++
		}
		dst = t.run(dst, src, i, j)
		i = j
	}
	return dst
}

// replaceNames replaces every word equal to one of the host's names (without
// case), together with the domain labels that follow it: vm, vm.example.com.
func (t *textScanner) replaceNames(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		if !isNameChar(src[i]) || i > 0 && isNameChar(src[i-1]) {
			dst = append(dst, src[i])
			i++
			continue
		}
		n := t.nameAt(src, i)
		if n < 0 {
			// Copy the whole word: a name must start at a word's start.
			j := i + 1
			for j < len(src) && isNameChar(src[j]) {
				j++
			}
			dst = append(dst, src[i:j]...)
			i = j
			continue
		}
		name := t.names[n]
		j := i + len(name)
		// A name followed by domain labels is the host's FQDN.
		for j+1 < len(src) && src[j] == '.' && isNameChar(src[j+1]) {
			j += 2
			for j < len(src) && isNameChar(src[j]) {
				j++
			}
		}
		dst = append(dst, t.m.Host(name)...)
		i = j
	}
	return dst
}

// nameAt returns the index of the name that src[i:] starts with as a whole
// word, or -1.
func (t *textScanner) nameAt(src []byte, i int) int {
next:
	for k, name := range t.names {
		if len(src)-i < len(name) {
			continue
		}
		for x := 0; x < len(name); x++ {
			if lower(src[i+x]) != name[x] {
				continue next
			}
		}
		if e := i + len(name); e < len(src) && isNameChar(src[e]) {
			continue
		}
		return k
	}
	return -1
}

// run rewrites one run of address characters src[s:e], bounded by other
// characters.
func (t *textScanner) run(dst, src []byte, s, e int) []byte {
	tok := src[s:e]
	// Trailing dots and colons end sentences and ADDR: labels; leading dots
	// are punctuation too.
	lead := 0
	for lead < len(tok) && tok[lead] == '.' {
		lead++
	}
	dst = append(dst, tok[:lead]...)
	tok = tok[lead:]
	for cut := 0; cut <= 2 && cut <= len(tok); cut++ {
		core := tok[:len(tok)-cut]
		if cut > 0 && !(tok[len(tok)-cut] == '.' || tok[len(tok)-cut] == ':') {
			break
		}
		if bytes.IndexByte(core, ':') < 0 {
			continue
		}
		if a, err := netip.ParseAddr(string(core)); err == nil && a.Is6() {
			dst = t.addr(dst, a, src, cut == 0, e)
			return append(dst, tok[len(core):]...)
		}
		// fd00::1.8080: an IPv6 address with a dotted port.
		if d := bytes.LastIndexByte(core, '.'); d > 0 && bytes.Count(core, []byte{':'}) >= 2 && allDigits(core[d+1:]) {
			if a, err := netip.ParseAddr(string(core[:d])); err == nil && a.Is6() {
				dst = t.addr(dst, a, nil, false, 0)
				return append(dst, tok[d:]...)
			}
		}
	}
	if out, ok := t.macs(dst, tok); ok {
		return out
	}
	// Dotted quads inside the run, bounded by anything but digits and dots:
	// 10.0.0.1:8080, but never 6.18.44 nor 1.2.3.4.5.
	for i := 0; i < len(tok); {
		if !(tok[i] >= '0' && tok[i] <= '9' || tok[i] == '.') {
			dst = append(dst, tok[i])
			i++
			continue
		}
		j := i + 1
		for j < len(tok) && (tok[j] >= '0' && tok[j] <= '9' || tok[j] == '.') {
			j++
		}
		sub := tok[i:j]
		k := 0
		for k < len(sub) && sub[k] == '.' {
			k++
		}
		end := len(sub)
		for end > k && sub[end-1] == '.' {
			end--
		}
		if a, ok := parseQuad(sub[k:end]); ok {
			dst = append(dst, sub[:k]...)
			atEnd := i+end == len(tok) && lead+len(tok) == e-s
			dst = t.addr(dst, a, src, atEnd, e)
			dst = append(dst, sub[end:]...)
		} else {
			dst = append(dst, sub...)
		}
		i = j
	}
	return dst
}

// addr appends the pseudonym of a. When the address ends the run and a
// prefix length follows (10.1.2.0/24) and a is that network's address, the
// pseudonym is masked too, so a network stays a network.
func (t *textScanner) addr(dst []byte, a netip.Addr, src []byte, atEnd bool, e int) []byte {
	p := t.m.Addr(a)
	if atEnd && e+1 < len(src) && src[e] == '/' {
		j := e + 1
		for j < len(src) && j < e+4 && src[j] >= '0' && src[j] <= '9' {
			j++
		}
		if bits, err := strconv.Atoi(string(src[e+1 : j])); err == nil && (j == len(src) || src[j] < '0' || src[j] > '9') {
			if pf, err := a.Prefix(bits); err == nil && pf.Addr() == a.WithZone("") {
				if mp, err := p.Prefix(bits); err == nil {
					p = mp.Addr().WithZone(p.Zone())
				}
			}
		}
	}
	if p != a && t.found != nil {
		t.found(a.WithZone("").String())
	}
	if a.Is4() {
		return p.AppendTo(dst)
	}
	return append(dst, p.WithZone("").String()...)
}

// macs rewrites a run that is a MAC address (six colon-separated hex pairs)
// or iptables's MAC= field (destination, source and ethertype: 14 pairs).
func (t *textScanner) macs(dst, tok []byte) ([]byte, bool) {
	trail := len(tok)
	for trail > 0 && tok[trail-1] == '.' {
		trail--
	}
	tok, rest := tok[:trail], tok[trail:]
	n := (len(tok) + 1) / 3
	if len(tok)%3 != 2 || (n != 6 && n != 14) {
		return dst, false
	}
	raw := make([]byte, n)
	for i := 0; i < n; i++ {
		p := tok[i*3:]
		if !isHex(p[0]) || !isHex(p[1]) || i < n-1 && p[2] != ':' {
			return dst, false
		}
		hex.Decode(raw[i:i+1], p[:2])
	}
	upper := bytes.ContainsAny(tok, "ABCDEF")
	for off := 0; off+6 <= n && off < 12; off += 6 {
		before := hwAddr(raw[off : off+6])
		t.m.MAC(raw[off : off+6])
		if hwAddr(raw[off:off+6]) != before && t.found != nil {
			t.found(before)
		}
	}
	s := hwAddr(raw[:6])
	for i := 6; i < n; i++ {
		s += ":" + hex.EncodeToString(raw[i:i+1])
	}
	if upper {
		s = string(bytes.ToUpper([]byte(s)))
	}
	return append(append(dst, s...), rest...), true
}

func allDigits(b []byte) bool {
	if len(b) == 0 || len(b) > 5 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseQuad parses exactly four decimal octets (leading zeros allowed, as
// some tools pad them).
func parseQuad(b []byte) (netip.Addr, bool) {
	var out [4]byte
	part, digits := 0, 0
	v := 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v*10 + int(c-'0')
			digits++
			if digits > 3 || v > 255 {
				return netip.Addr{}, false
			}
		case c == '.':
			if digits == 0 || part == 3 {
				return netip.Addr{}, false
			}
			out[part] = byte(v)
			part, digits, v = part+1, 0, 0
		default:
			return netip.Addr{}, false
		}
	}
	if part != 3 || digits == 0 {
		return netip.Addr{}, false
	}
	out[3] = byte(v)
	return netip.AddrFrom4(out), true
}

// hostNames lists the names to replace in text: each name and, for a fully
// qualified one, its first label. Names that identify nothing (localhost)
// or that are too short to tell from ordinary words are left out of the
// text (the manifest's hostname is replaced whatever it is).
func hostNames(names ...string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		n = strings.ToLower(strings.TrimSpace(n))
		if len(n) < 2 || n == "localhost" || n == "(none)" || n == "localhost.localdomain" || seen[n] {
			return
		}
		for i := 0; i < len(n); i++ {
			if !isNameChar(n[i]) && n[i] != '.' {
				return
			}
		}
		seen[n] = true
		out = append(out, n)
	}
	for _, n := range names {
		add(n)
		if first, _, ok := strings.Cut(n, "."); ok {
			add(first)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

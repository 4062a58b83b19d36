package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net"
	"net/netip"
	"strings"
)

// block is a reserved address range whose prefix a mapping keeps, so a
// pseudonym stays in the same class as its address (private, loopback,
// link-local, multicast): rules and people still see "private" vs "public".
// With keep, every address inside is left as it is (127.0.0.0/8, ::1).
type block struct {
	p    netip.Prefix
	keep bool
}

// Reserved blocks. A longer block inside a shorter one refines it: inside
// ff02::/16 (kept) the solicited-node block ff02::1:ff00:0/104 is mapped,
// because its low 24 bits are those of a unicast address.
var (
	blocks4 = mustBlocks(
		"0.0.0.0/8", "0.0.0.0/32=", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8=",
		"169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24",
		"192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "224.0.0.0/4", "224.0.0.0/24=", "240.0.0.0/4",
		"255.255.255.255/32=")
	blocks6 = mustBlocks(
		"::/128=", "::1/128=", "64:ff9b::/96", "100::/64", "2001:db8::/32", "2002::/16",
		"fc00::/8", "fd00::/8", "fe80::/10", "fe80::/64", "fec0::/10",
		"ff00::/8", "ff01::/16=", "ff02::/16=", "ff02::1:ff00:0/104")
)

func mustBlocks(specs ...string) []block {
	out := make([]block, len(specs))
	for i, s := range specs {
		keep := strings.HasSuffix(s, "=")
		out[i] = block{p: netip.MustParsePrefix(strings.TrimSuffix(s, "=")), keep: keep}
	}
	return out
}

// mapper holds the keyed pseudonym functions and their caches. It is not
// safe for concurrent use.
type mapper struct {
	v4, v6, mac, host, raw hash.Hash
	buf                    []byte
	memo                   map[string]bool // Crypto-PAn flip bits of short prefixes
	addrs                  map[netip.Addr]netip.Addr
}

func newMapper(k Key) *mapper {
	return &mapper{
		v4:    hmac.New(sha256.New, k.derive("ipv4")),
		v6:    hmac.New(sha256.New, k.derive("ipv6")),
		mac:   hmac.New(sha256.New, k.derive("mac")),
		host:  hmac.New(sha256.New, k.derive("host")),
		raw:   hmac.New(sha256.New, k.derive("bytes")),
		memo:  map[string]bool{},
		addrs: map[netip.Addr]netip.Addr{},
	}
}

func (m *mapper) sum(h hash.Hash, parts ...[]byte) []byte {
	h.Reset()
	for _, p := range parts {
		h.Write(p)
	}
	m.buf = h.Sum(m.buf[:0])
	return m.buf
}

// Addr maps an address to its pseudonym. The mapping is Crypto-PAn
// (Xu et al., "Prefix-preserving IP address anonymization") with HMAC-SHA256
// as the pseudo-random function: bit i of the pseudonym is bit i of the
// address flipped or not by a PRF of the address's first i bits, so two
// addresses sharing an n-bit prefix map to pseudonyms sharing exactly an
// n-bit prefix (same /24 stays the same /24), and the mapping is a
// bijection. The bits leading to a reserved block are never flipped, so
// each block maps onto itself and nothing else maps into it. An IPv4-mapped
// IPv6 address keeps its ::ffff:0:0/96 prefix and maps its IPv4 part; a zone
// is kept.
func (m *mapper) Addr(a netip.Addr) netip.Addr {
	if out, ok := m.addrs[a]; ok {
		return out
	}
	var out netip.Addr
	switch {
	case a.Is4():
		b := a.As4()
		m.cryptoPAn(b[:], blocks4, m.v4, 4)
		out = netip.AddrFrom4(b)
	case a.Is4In6():
		v4 := m.Addr(a.Unmap()).As4()
		out = netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]}).WithZone(a.Zone())
	case a.Is6():
		b := a.As16()
		m.cryptoPAn(b[:], blocks6, m.v6, 6)
		out = netip.AddrFrom16(b).WithZone(a.Zone())
	default:
		return a
	}
	m.addrs[a] = out
	return out
}

// cryptoPAn maps addr in place.
func (m *mapper) cryptoPAn(addr []byte, blocks []block, h hash.Hash, fam byte) {
	n := len(addr) * 8
	orig := append([]byte(nil), addr...)
	prefix := make([]byte, len(addr))
	// memoBits bounds the memo to the prefixes many addresses share (the
	// network part), so a 200,000-socket table costs HMACs, not memory.
	memoBits := n * 3 / 4
	for i := 0; i < n; i++ {
		if !m.mayFlip(orig, i, blocks) {
			continue
		}
		in := append([]byte{fam, byte(i)}, prefix...)
		var flip bool
		if i < memoBits {
			f, ok := m.memo[string(in)]
			if !ok {
				f = m.sum(h, in)[0]&0x80 != 0
				m.memo[string(in)] = f
			}
			flip = f
		} else {
			flip = m.sum(h, in)[0]&0x80 != 0
		}
		if flip {
			addr[i/8] ^= 0x80 >> (i % 8)
		}
		prefix[i/8] |= orig[i/8] & (0x80 >> (i % 8))
	}
}

// mayFlip says whether bit i of addr may be flipped: not when the first i
// bits lead to a reserved block (flipping would move the block), nor inside
// a block kept as it is.
func (m *mapper) mayFlip(addr []byte, i int, blocks []block) bool {
	best := -1
	for j, b := range blocks {
		bits := b.p.Bits()
		pa := b.p.Addr().AsSlice()
		if bits > i {
			if samePrefix(addr, pa, i) {
				return false
			}
			continue
		}
		if samePrefix(addr, pa, bits) && (best < 0 || bits > blocks[best].p.Bits()) {
			best = j
		}
	}
	return best < 0 || !blocks[best].keep
}

func samePrefix(a, b []byte, bits int) bool {
	for i := 0; i < bits/8; i++ {
		if a[i] != b[i] {
			return false
		}
	}
	if r := bits % 8; r != 0 {
		mask := byte(0xff << (8 - r))
		return a[bits/8]&mask == b[bits/8]&mask
	}
	return true
}

// addrBytes maps an address given as 4 or 16 bytes in network order, in place.
func (m *mapper) addrBytes(b []byte) {
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return
	}
	copy(b, m.Addr(a).AsSlice())
}

// MAC maps a 6-byte MAC address in place to a keyed pseudonym that keeps the
// group (multicast) and local bits. The all-zero and broadcast addresses and
// the IEEE reserved 01:80:c2:00:00:0X group stay; IP multicast MACs
// (01:00:5e:..., 33:33:...) carry the low bits of their group and map through
// the group's pseudonym, so they stay consistent with the IP header.
func (m *mapper) MAC(b []byte) {
	if len(b) != 6 {
		m.Bytes(b)
		return
	}
	switch {
	case string(b) == "\x00\x00\x00\x00\x00\x00", string(b) == "\xff\xff\xff\xff\xff\xff",
		b[0] == 0x01 && b[1] == 0x80 && b[2] == 0xc2 && b[3] == 0 && b[4] == 0 && b[5]&0xf0 == 0:
		return
	case b[0] == 0x01 && b[1] == 0x00 && b[2] == 0x5e:
		g := m.Addr(netip.AddrFrom4([4]byte{224, b[3] & 0x7f, b[4], b[5]})).As4()
		b[3], b[4], b[5] = b[3]&0x80|g[1]&0x7f, g[2], g[3]
		return
	case b[0] == 0x33 && b[1] == 0x33:
		g := [16]byte{0: 0xff, 1: 0x02, 12: b[2], 13: b[3], 14: b[4], 15: b[5]}
		if b[2] == 0xff {
			g[11] = 1
		}
		out := m.Addr(netip.AddrFrom16(g)).As16()
		copy(b[2:], out[12:])
		return
	}
	h := m.sum(m.mac, b)
	b0 := b[0]
	copy(b, h[:6])
	b[0] = b[0]&^0x03 | b0&0x03
}

// Bytes maps a link-layer address of another kind (not 6 bytes) in place.
func (m *mapper) Bytes(b []byte) {
	if len(b) == 0 || len(b) > 32 {
		return
	}
	if allZero(b) {
		return
	}
	copy(b, m.sum(m.raw, b))
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Host is the pseudonym of a host name: "host-" and 8 hex digits.
// Host names compare without case, so the pseudonym does too.
func (m *mapper) Host(name string) string {
	return "host-" + hex.EncodeToString(m.sum(m.host, []byte(strings.ToLower(name)))[:4])
}

// hwAddr formats a MAC the way /proc/net/arp and ip(8) do.
func hwAddr(b []byte) string { return net.HardwareAddr(b).String() }

package redact

import (
	"math/bits"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
)

func testKey(t testing.TB, seed string) Key {
	t.Helper()
	k, err := NewKey([]byte("snapdiag test key " + seed + " ................"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func commonPrefix(a, b netip.Addr) int {
	x, y := a.AsSlice(), b.AsSlice()
	n := 0
	for i := range x {
		d := x[i] ^ y[i]
		if d != 0 {
			return n + bits.LeadingZeros8(d)
		}
		n += 8
	}
	return n
}

// randomPair returns two addresses of the family of base that share exactly
// n leading bits, starting from base's first bits.
func randomPair(rng *rand.Rand, base netip.Addr, keep, n int) (netip.Addr, netip.Addr) {
	a := base.AsSlice()
	for i := keep; i < len(a)*8; i++ {
		if rng.IntN(2) == 1 {
			a[i/8] ^= 0x80 >> (i % 8)
		}
	}
	b := append([]byte(nil), a...)
	for i := n; i < len(b)*8; i++ {
		if i == n || rng.IntN(2) == 1 {
			b[i/8] ^= 0x80 >> (i % 8)
		}
	}
	x, _ := netip.AddrFromSlice(a)
	y, _ := netip.AddrFromSlice(b)
	return x, y
}

// TestPrefixPreserving checks the property the analysis and a reader rely
// on: two addresses share exactly as many leading bits after mapping as
// before (so the same /24 is the same /24, and different /24s stay
// different), for public and private addresses of both families.
func TestPrefixPreserving(t *testing.T) {
	m := newMapper(testKey(t, "a"))
	rng := rand.New(rand.NewPCG(1, 2))
	bases := []struct {
		base netip.Addr
		keep int // bits of base kept, the rest random
	}{
		{netip.MustParseAddr("10.211.0.0"), 16},
		{netip.MustParseAddr("10.0.0.0"), 8},
		{netip.MustParseAddr("192.168.0.0"), 16},
		{netip.MustParseAddr("8.0.0.0"), 1},
		{netip.MustParseAddr("fd00:5d::"), 32},
		{netip.MustParseAddr("2001:0db9::"), 3},
		{netip.MustParseAddr("fe80::"), 64},
	}
	for _, b := range bases {
		total := b.base.BitLen()
		for i := 0; i < 2000; i++ {
			n := b.keep + rng.IntN(total-b.keep)
			x, y := randomPair(rng, b.base, b.keep, n)
			if got := commonPrefix(m.Addr(x), m.Addr(y)); got != n {
				t.Fatalf("%s and %s share %d bits, their pseudonyms %s and %s share %d", x, y, n, m.Addr(x), m.Addr(y), got)
			}
		}
	}
	// The /24 statement itself, over a whole /16: 256 /24s stay 256 /24s.
	nets := map[[3]byte]map[[3]byte]bool{}
	for i := 0; i < 1<<16; i += 7 {
		a := netip.AddrFrom4([4]byte{10, 211, byte(i >> 8), byte(i)})
		p := m.Addr(a).As4()
		k := [3]byte{10, 211, byte(i >> 8)}
		if nets[k] == nil {
			nets[k] = map[[3]byte]bool{}
		}
		nets[k][[3]byte{p[0], p[1], p[2]}] = true
	}
	outs := map[[3]byte]bool{}
	for k, v := range nets {
		if len(v) != 1 {
			t.Fatalf("%v.0/24 maps to %d /24s", k, len(v))
		}
		for o := range v {
			if outs[o] {
				t.Fatalf("two /24s map to %v.0/24", o)
			}
			outs[o] = true
		}
	}
}

// TestAddressClass checks that pseudonyms stay in their reserved block (so
// private stays private, link-local stays link-local), that public
// addresses stay public, and that the kept addresses are unchanged.
func TestAddressClass(t *testing.T) {
	m := newMapper(testKey(t, "a"))
	rng := rand.New(rand.NewPCG(3, 4))
	kept := []string{"0.0.0.0", "127.0.0.1", "127.9.8.7", "255.255.255.255", "224.0.0.251", "::", "::1", "ff02::1", "ff02::2"}
	for _, s := range kept {
		if a := netip.MustParseAddr(s); m.Addr(a) != a {
			t.Errorf("%s mapped to %s, want it kept", a, m.Addr(a))
		}
	}
	in := func(a netip.Addr, bl []block) (netip.Prefix, bool) {
		best := netip.Prefix{}
		for _, b := range bl {
			if b.p.Contains(a) && b.p.Bits() >= best.Bits() {
				best = b.p
			}
		}
		return best, best.IsValid()
	}
	for _, fam := range []struct {
		bits   int
		blocks []block
	}{{32, blocks4}, {128, blocks6}} {
		for i := 0; i < 5000; i++ {
			raw := make([]byte, fam.bits/8)
			for j := range raw {
				raw[j] = byte(rng.IntN(256))
			}
			if i%2 == 0 { // half of them inside a block
				b := fam.blocks[rng.IntN(len(fam.blocks))].p
				pa := b.Addr().AsSlice()
				for j := 0; j < b.Bits(); j++ {
					mask := byte(0x80 >> (j % 8))
					raw[j/8] = raw[j/8]&^mask | pa[j/8]&mask
				}
			}
			a, _ := netip.AddrFromSlice(raw)
			if a.Is4In6() {
				continue
			}
			p := m.Addr(a)
			ba, okA := in(a, fam.blocks)
			bp, okP := in(p, fam.blocks)
			if okA != okP || ba != bp {
				t.Fatalf("%s (block %v) mapped to %s (block %v)", a, ba, p, bp)
			}
			if a.IsPrivate() != p.IsPrivate() || a.IsLinkLocalUnicast() != p.IsLinkLocalUnicast() ||
				a.IsMulticast() != p.IsMulticast() || a.IsLoopback() != p.IsLoopback() || a.IsGlobalUnicast() != p.IsGlobalUnicast() {
				t.Fatalf("%s mapped to %s, of another class", a, p)
			}
		}
	}
	// IPv4-mapped IPv6 addresses map their IPv4 part like the IPv4 address.
	v4 := netip.MustParseAddr("10.211.3.4")
	v6 := netip.MustParseAddr("::ffff:10.211.3.4")
	if got, want := m.Addr(v6).Unmap(), m.Addr(v4); got != want || !m.Addr(v6).Is4In6() {
		t.Errorf("%s mapped to %s, want ::ffff:%s", v6, m.Addr(v6), want)
	}
}

// TestKeyed checks that the mapping depends on the key and only on it: a
// fresh mapper with the same key gives the same pseudonyms, another key
// others.
func TestKeyed(t *testing.T) {
	a1, a2, b := newMapper(testKey(t, "a")), newMapper(testKey(t, "a")), newMapper(testKey(t, "b"))
	for _, s := range []string{"10.211.80.1", "203.0.114.9", "fd00:5d:51::1", "2a00:1450::5"} {
		x := netip.MustParseAddr(s)
		if a1.Addr(x) != a2.Addr(x) {
			t.Errorf("same key: %s maps to %s and %s", x, a1.Addr(x), a2.Addr(x))
		}
		if a1.Addr(x) == b.Addr(x) {
			t.Errorf("different keys: %s maps to %s with both", x, b.Addr(x))
		}
	}
	if a1.Host("vm") != a2.Host("VM") || a1.Host("vm") == b.Host("vm") {
		t.Errorf("host pseudonyms: %s %s %s", a1.Host("vm"), a2.Host("VM"), b.Host("vm"))
	}
	mac := func(m *mapper) string {
		x := []byte{0x02, 0xde, 0xad, 0xbe, 0xef, 0x01}
		m.MAC(x)
		return hwAddr(x)
	}
	if mac(a1) != mac(a2) || mac(a1) == mac(b) {
		t.Errorf("MAC pseudonyms: %s %s %s", mac(a1), mac(a2), mac(b))
	}
	// Two keys made from the same text, not one key compared with itself.
	ka1, ka2, kb := testKey(t, "a"), testKey(t, "a"), testKey(t, "b")
	if ka1.Fingerprint() != ka2.Fingerprint() || ka1.Fingerprint() == kb.Fingerprint() {
		t.Error("fingerprints do not tell keys apart")
	}
}

func TestMAC(t *testing.T) {
	m := newMapper(testKey(t, "a"))
	for _, tc := range []struct {
		in   string
		keep bool
	}{
		{"ff:ff:ff:ff:ff:ff", true}, {"00:00:00:00:00:00", true}, {"01:80:c2:00:00:0e", true},
		{"33:33:00:00:00:01", true}, {"01:00:5e:00:00:fb", true},
		{"02:de:ad:be:ef:01", false}, {"52:54:00:12:34:56", false}, {"33:33:ff:00:00:01", false},
	} {
		hw := mustMAC(t, tc.in)
		m.MAC(hw)
		out := hwAddr(hw)
		if (out == tc.in) != tc.keep {
			t.Errorf("%s -> %s, keep=%v", tc.in, out, tc.keep)
		}
		orig := mustMAC(t, tc.in)
		if hw[0]&3 != orig[0]&3 {
			t.Errorf("%s -> %s lost its group or local bit", tc.in, out)
		}
	}
	// A solicited-node MAC follows its group's pseudonym.
	g := m.Addr(netip.MustParseAddr("ff02::1:ff12:3456")).As16()
	hw := mustMAC(t, "33:33:ff:12:34:56")
	m.MAC(hw)
	if string(hw[2:]) != string(g[12:]) {
		t.Errorf("33:33:ff:12:34:56 -> %s, group maps to %x", hwAddr(hw), g)
	}
}

func mustMAC(t *testing.T, s string) []byte {
	t.Helper()
	hw, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return hw
}

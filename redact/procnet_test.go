package redact

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// leHex is an IPv4 address as /proc/net/tcp and route print it on a
// little-endian machine.
func leHex(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("%08X", binary.LittleEndian.Uint32(b[:]))
}

func TestProcNetHex(t *testing.T) {
	m := newMapper(testKey(t, "a"))
	addr := netip.MustParseAddr
	net24 := func(s string) netip.Addr {
		p, _ := m.Addr(addr(s)).Prefix(24)
		return p.Addr()
	}

	line := []byte("  0: " + leHex(addr("10.211.80.1")) + ":1F90 " + leHex(addr("10.211.80.2")) + ":A028 01 00000000:00000000 00:00000000 00000000     0        0 123 1")
	m.sockLine(line, binary.LittleEndian)
	want := "  0: " + leHex(m.Addr(addr("10.211.80.1"))) + ":1F90 " + leHex(m.Addr(addr("10.211.80.2"))) + ":A028 01"
	if !strings.HasPrefix(string(line), want) {
		t.Errorf("tcp line:\n got %s\nwant %s...", line, want)
	}

	hdr := []byte("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT")
	d, g, mk := routeColumns(hdr)
	route := []byte("eth0\t" + leHex(addr("10.211.80.0")) + "\t" + leHex(addr("10.211.80.254")) + "\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0")
	m.routeLine(route, d, g, mk, binary.LittleEndian)
	want = "eth0\t" + leHex(net24("10.211.80.0")) + "\t" + leHex(m.Addr(addr("10.211.80.254"))) + "\t0003\t0\t0\t0\t00FFFFFF"
	if !strings.HasPrefix(string(route), want) {
		t.Errorf("route line:\n got %s\nwant %s...", route, want)
	}

	hex6 := func(a netip.Addr) string { b := a.As16(); return fmt.Sprintf("%x", b[:]) }
	p64, _ := m.Addr(addr("fd00:5d:51::")).Prefix(64)
	r6 := []byte(hex6(addr("fd00:5d:51::")) + " 40 " + hex6(addr("::")) + " 00 " + hex6(addr("fe80::1")) + " 00000100 00000001 00000000 00000001  eth0")
	m.ipv6RouteLine(r6)
	want = hex6(p64.Addr()) + " 40 " + hex6(addr("::")) + " 00 " + hex6(m.Addr(addr("fe80::1"))) + " 00000100"
	if !strings.HasPrefix(string(r6), want) {
		t.Errorf("ipv6_route line:\n got %s\nwant %s...", r6, want)
	}

	if1 := []byte(hex6(addr("fd00:5d:51::1")) + " 02 40 00 80   eth0")
	m.firstHexLine(if1)
	if want := hex6(m.Addr(addr("fd00:5d:51::1"))) + " 02 40"; !strings.HasPrefix(string(if1), want) {
		t.Errorf("if_inet6 line:\n got %s\nwant %s...", if1, want)
	}
}

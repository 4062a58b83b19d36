package redact

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	m := newMapper(testKey(t, "a"))
	ts := &textScanner{m: m, names: hostNames("vm", "")}
	p := func(s string) string { return m.Addr(netip.MustParseAddr(s)).String() }
	mac := func(s string) string {
		hw := []byte{0x02, 0xde, 0xad, 0xbe, 0xef, 0x01}
		m.MAC(hw)
		return hwAddr(hw)
	}
	tests := []struct{ in, want string }{
		{"Possible SYN flooding on port 10.211.46.1:8080. Dropping request.",
			"Possible SYN flooding on port " + p("10.211.46.1") + ":8080. Dropping request."},
		{"on port [fd00:5d:33::1]:8080. Sending cookies.", "on port [" + p("fd00:5d:33::1") + "]:8080. Sending cookies."},
		{"[::ffff:10.1.2.3]:443", "[" + p("::ffff:10.1.2.3") + "]:443"},
		{`"local":"10.211.80.1:8080","remote":"10.211.80.2:41000"`,
			`"local":"` + p("10.211.80.1") + `:8080","remote":"` + p("10.211.80.2") + `:41000"`},
		{"tcp://10.0.0.5:143", "tcp://" + p("10.0.0.5") + ":143"},
		{"from 2001:db9::7.", "from " + p("2001:db9::7") + "."},
		{"fd00:5d:51::1.8080 > x", p("fd00:5d:51::1") + ".8080 > x"},
		{"fe80::1%eth0", p("fe80::1") + "%eth0"},
		{"10.211.80.0/24 dev x", strings.TrimSuffix(p("10.211.80.0"), p("10.211.80.0")[strings.LastIndexByte(p("10.211.80.0"), '.'):]) + ".0/24 dev x"},
		{"10.211.80.2  0x1  0x6  02:de:ad:be:ef:01  *  sdlab-s", p("10.211.80.2") + "  0x1  0x6  " + mac("") + "  *  sdlab-s"},
		// Kept addresses and things that only look like addresses.
		{"0.0.0.0:143 [::]:143 127.0.0.1 ::1", "0.0.0.0:143 [::]:143 127.0.0.1 ::1"},
		{"Linux 6.18.44-fc-v657 1.2.3.4.5 v1.2.3 13:51:07.057169 2589db20-b7d5-48cd", "Linux 6.18.44-fc-v657 1.2.3.4.5 v1.2.3 13:51:07.057169 2589db20-b7d5-48cd"},
		{"256.1.1.1 1.2.3 a.b.c.d", "256.1.1.1 1.2.3 a.b.c.d"},
		// Host names: whole words only, with their domain.
		{"vm kernel: hello from VM.example.com, kvm vmalloc vm-2", m.Host("vm") + " kernel: hello from " + m.Host("vm") + ", kvm vmalloc vm-2"},
	}
	for _, tc := range tests {
		if got := string(ts.appendText(nil, []byte(tc.in), true)); got != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// FuzzText checks the text redactor never panics, and that no address it
// replaced is left in its output (unless it is also the pseudonym of
// another address of the input).
func FuzzText(f *testing.F) {
	for _, s := range []string{
		"Possible SYN flooding on port 10.211.46.1:8080. Dropping request.",
		"[fd00:5d:33::1]:8080 [::ffff:10.1.2.3]:443 fe80::1%eth0 10.1.2.0/24",
		"02:de:ad:be:ef:01 MAC=02:de:ad:be:ef:01:02:de:ad:be:ef:02:08:00 SRC=10.9.8.7",
		"1.2.3.4.5 6.18.44 ::1 0.0.0.0 vm.example.com",
		"1.2.3.4:5.6.7.8:9::a.b",
	} {
		f.Add(s)
	}
	m := newMapper(testKey(f, "fuzz"))
	f.Fuzz(func(t *testing.T, in string) {
		found := map[string]bool{}
		ts := &textScanner{m: m, names: hostNames("vm"), found: func(s string) { found[s] = true }}
		out := ts.appendText(nil, []byte(in), true)
		pseudonyms := map[string]bool{}
		for s := range found {
			pseudonyms[mapOne(m, s)] = true
		}
		left := map[string]bool{}
		rescan := &textScanner{m: m, found: func(s string) { left[s] = true }}
		rescan.appendText(nil, out, false)
		for s := range left {
			if found[s] && !pseudonyms[s] {
				t.Fatalf("input %q: %s left in output %q", in, s, out)
			}
		}
	})
}

// mapOne is the pseudonym of an address or MAC as the scanner reports them.
func mapOne(m *mapper, s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return m.Addr(a).WithZone("").String()
	}
	hw, err := net.ParseMAC(s)
	if err != nil {
		return s
	}
	m.MAC(hw)
	return hwAddr(hw)
}

package redact_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/redact"
)

// fixtureBundles are the recorded lab bundles; fixtures/hostile holds
// broken bundles, which are not redacted.
func fixtureBundles(t *testing.T) []string {
	paths, err := filepath.Glob("../fixtures/*/bundle.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range paths {
		if filepath.Base(filepath.Dir(p)) != "hostile" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatal("no fixtures under ../fixtures")
	}
	return out
}

func fixedKey(t *testing.T, s string) redact.Key {
	k, err := redact.NewKey([]byte("fixture key " + s + " for the redaction tests"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// members reads every member of a bundle.
func members(t *testing.T, path string) (map[string][]byte, *bundle.Manifest) {
	t.Helper()
	b, err := bundle.Open(path, bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	out := map[string][]byte{}
	for _, mi := range b.Members() {
		data, err := b.ReadFile(mi.Name)
		if err != nil {
			t.Fatal(err)
		}
		out[mi.Name] = data
	}
	testutil.ValidateMembers(t, out)
	return out, b.Manifest()
}

// originals are the addresses, MACs and names a bundle reveals.
type originals struct {
	addrs map[netip.Addr]string // address -> where it was seen
	macs  map[string]string
	host  string
}

var (
	reQuad  = regexp.MustCompile(`(^|[^0-9.])((?:[0-9]{1,3}\.){3}[0-9]{1,3})`)
	reBrack = regexp.MustCompile(`\[([0-9a-fA-F:.]+)(?:%[^\]]*)?\]`)
	reMAC   = regexp.MustCompile(`(?i)\b(?:[0-9a-f]{2}:){5}[0-9a-f]{2}\b`)
)

// kept are the addresses a redaction leaves on purpose: they identify
// nothing (DESIGN: loopback, unspecified and link-local multicast stay
// recognisable), and the routes to reserved blocks (fe80::/64, ff00::/8)
// name only the block.
func kept(a netip.Addr) bool {
	return a == netip.MustParseAddr("fe80::") || a == netip.MustParseAddr("ff00::") || a.IsUnspecified() || a.IsLoopback() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() ||
		a == netip.MustParseAddr("255.255.255.255")
}

// collect finds the originals with parsers of its own (not the package's),
// from the places the issue names: listeners, sockets, pcap, kernel log,
// manifest, and the hex and text files of /proc/net.
func collect(t *testing.T, ms map[string][]byte, m *bundle.Manifest) originals {
	o := originals{addrs: map[netip.Addr]string{}, macs: map[string]string{}, host: m.Host.Hostname}
	add := func(s, where string) {
		s = strings.Trim(s, "[]")
		if i := strings.IndexByte(s, '%'); i >= 0 {
			s = s[:i]
		}
		if a, err := netip.ParseAddr(s); err == nil && !kept(a.Unmap()) {
			o.addrs[a.Unmap()] = where
		}
	}
	addPort := func(s, where string) {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			add(ap.Addr().String(), where)
		} else if h, _, err := net.SplitHostPort(s); err == nil {
			add(h, where)
		}
	}
	for name, data := range ms {
		switch {
		case strings.HasSuffix(name, "/"+bundle.SampleListeners):
			ls, err := bundle.DecodeListeners(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, l := range ls {
				add(l.Addr, name)
				addPort(l.Local, name)
			}
		case name == bundle.PathSocketsTCP:
			sr := bundle.NewSocketReader(bytes.NewReader(data))
			for {
				s, err := sr.Next()
				var rowErr *bundle.RowError
				if errors.As(err, &rowErr) {
					continue
				}
				if err != nil {
					break
				}
				addPort(s.Local, name)
				addPort(s.Remote, name)
			}
		case name == bundle.PathSocketsSummary:
			if s, err := bundle.DecodeSocketSummary(bytes.NewReader(data)); err == nil {
				for k := range s.ByRemoteAddr {
					add(k, name)
				}
			}
		case name == bundle.PathPackets:
			pcapOriginals(t, data, add, o.macs)
		case name == "proc/net/route":
			for _, line := range strings.Split(string(data), "\n")[1:] {
				f := strings.Fields(line)
				for _, k := range []int{1, 2} {
					if len(f) > k {
						if v, err := hex.DecodeString(f[k]); err == nil && len(v) == 4 {
							a := netip.AddrFrom4([4]byte{v[3], v[2], v[1], v[0]})
							add(a.String(), name)
						}
					}
				}
			}
		case name == "proc/net/if_inet6" || name == "proc/net/ipv6_route":
			for _, line := range strings.Split(string(data), "\n") {
				for _, f := range strings.Fields(line) {
					if v, err := hex.DecodeString(f); err == nil && len(v) == 16 {
						add(netip.AddrFrom16([16]byte(v)).String(), name)
					}
				}
			}
		}
		if name == bundle.PathPackets {
			continue
		}
		// Text forms anywhere: the kernel log, arp, the manifest.
		for _, mm := range reQuad.FindAllStringSubmatch(string(data), -1) {
			add(mm[2], name)
		}
		for _, mm := range reBrack.FindAllStringSubmatch(string(data), -1) {
			add(mm[1], name)
		}
		for _, mac := range reMAC.FindAllString(string(data), -1) {
			if mac != "00:00:00:00:00:00" && mac != "ff:ff:ff:ff:ff:ff" {
				o.macs[strings.ToLower(mac)] = name
			}
		}
	}
	return o
}

func pcapOriginals(t *testing.T, data []byte, add func(s, where string), macs map[string]string) {
	r, err := pcapgo.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("pcap: %v", err)
	}
	for {
		d, _, err := r.ReadPacketData()
		if err != nil {
			return
		}
		p := gopacket.NewPacket(d, r.LinkType(), gopacket.Default)
		if sll, ok := p.LinkLayer().(*layers.LinuxSLL); ok && sll.AddrLen == 6 {
			if hw := net.HardwareAddr(sll.Addr).String(); hw != "00:00:00:00:00:00" {
				macs[hw] = bundle.PathPackets
			}
		}
		if nl := p.NetworkLayer(); nl != nil {
			add(nl.NetworkFlow().Src().String(), bundle.PathPackets)
			add(nl.NetworkFlow().Dst().String(), bundle.PathPackets)
		}
	}
}

// forms are the ways an address can be written in a member: text, the hex
// of /proc/net (host-order words on this little-endian lab, and network
// order), and binary.
func forms(a netip.Addr) (text []string, bin []byte) {
	b := a.AsSlice()
	if a.Is4() {
		le := fmt.Sprintf("%08x", binary.LittleEndian.Uint32(b))
		return []string{a.String(), le, hex.EncodeToString(b)}, b
	}
	var words string
	for w := 0; w < 16; w += 4 {
		words += fmt.Sprintf("%08x", binary.LittleEndian.Uint32(b[w:]))
	}
	full := strings.ReplaceAll(a.StringExpanded(), ":", "")
	return []string{a.String(), a.StringExpanded(), full, words}, b
}

// containsText finds s in data (case-insensitively) where it is not part of
// a longer number: 10.1.2.3 is not in 10.1.2.34 nor in 110.1.2.3.
func containsText(data []byte, s string) bool {
	d := bytes.ToLower(data)
	s = strings.ToLower(s)
	for off := 0; ; {
		i := bytes.Index(d[off:], []byte(s))
		if i < 0 {
			return false
		}
		i += off
		before := i == 0 || !isHexOrDot(d[i-1])
		after := i+len(s) >= len(d) || !isHexDigit(d[i+len(s)])
		if before && after {
			return true
		}
		off = i + 1
	}
}

func isHexDigit(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
func isHexOrDot(c byte) bool { return isHexDigit(c) || c == '.' }

// lab ranges, searched for explicitly whatever the collection found.
var reLab = regexp.MustCompile(`(?i)10\.211\.[0-9]{1,3}\.[0-9]{1,3}|fd00:5d:|fd00:005d:|fd00005d`)

// TestRedactFixtures redacts every lab fixture and checks that no original
// address, MAC or host name is left in any member, in any form, nor in
// tcpdump's own decoding of the packet sample; that tcpdump finds no bad
// checksum; and that analyze gives the same findings, naming the
// pseudonymised listeners.
func TestRedactFixtures(t *testing.T) {
	tcpdump, _ := exec.LookPath("tcpdump")
	for _, in := range fixtureBundles(t) {
		name := filepath.Base(filepath.Dir(in))
		t.Run(name, func(t *testing.T) {
			r := redact.New(fixedKey(t, "a"))
			res, err := r.File(in, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(res.Path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("redacted bundle: %v, mode %v", err, fi.Mode().Perm())
			}
			orig, om := members(t, in)
			red, rm := members(t, res.Path)
			o := collect(t, orig, om)
			if len(o.addrs) == 0 {
				t.Fatal("found no address in the original: the test would prove nothing")
			}
			t.Logf("%d addresses, %d MACs in the original", len(o.addrs), len(o.macs))
			info, ok := redact.ManifestInfo(rm)
			if !ok || info.Scheme != redact.Scheme || info.Fingerprint != fixedKey(t, "a").Fingerprint() {
				t.Errorf("manifest redaction info %+v, %v", info, ok)
			}
			if rm.Host.Hostname != r.Host(om.Host.Hostname) || rm.Host.KernelRelease != om.Host.KernelRelease {
				t.Errorf("manifest host %+v", rm.Host)
			}
			if strings.Contains(filepath.Base(res.Path), om.Host.Hostname) {
				t.Errorf("file name %s holds the host name", filepath.Base(res.Path))
			}
			if len(red) != len(orig) {
				t.Errorf("%d members, want %d", len(red), len(orig))
			}
			hostRe := regexp.MustCompile(`(?i)(^|[^A-Za-z0-9_-])` + regexp.QuoteMeta(om.Host.Hostname) + `($|[^A-Za-z0-9_-])`)
			for member, data := range red {
				for a, where := range o.addrs {
					text, bin := forms(a)
					for _, f := range text {
						if containsText(data, f) {
							t.Errorf("%s: %s (from %s) left as %q", member, a, where, f)
						}
					}
					if bytes.Contains(data, bin) && member == bundle.PathPackets {
						t.Errorf("%s: %s (from %s) left in binary", member, a, where)
					}
				}
				for mac, where := range o.macs {
					hw, _ := net.ParseMAC(mac)
					if containsText(data, mac) || containsText(data, hex.EncodeToString(hw)) || bytes.Contains(data, hw) {
						t.Errorf("%s: MAC %s (from %s) left", member, mac, where)
					}
				}
				if loc := reLab.Find(data); loc != nil {
					t.Errorf("%s: lab address %q left", member, loc)
				}
				if len(om.Host.Hostname) >= 2 && member != bundle.PathPackets && hostRe.Match(data) {
					t.Errorf("%s: host name %q left", member, om.Host.Hostname)
				}
			}
			if _, ok := red[bundle.PathPackets]; ok && tcpdump != "" {
				checkTcpdump(t, tcpdump, orig[bundle.PathPackets], red[bundle.PathPackets], o)
			}
			compareReports(t, r, in, res.Path)
		})
	}
}

func runTcpdump(t *testing.T, tcpdump string, pcap []byte, flags string) string {
	p := filepath.Join(t.TempDir(), "p.pcap")
	if err := os.WriteFile(p, pcap, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tcpdump, flags, p).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump %s: %v\n%s", flags, err, out)
	}
	return string(out)
}

func checkTcpdump(t *testing.T, tcpdump string, orig, red []byte, o originals) {
	dec := runTcpdump(t, tcpdump, red, "-ennr") + runTcpdump(t, tcpdump, red, "-vvnr")
	for a := range o.addrs {
		if containsText([]byte(dec), a.String()) {
			t.Errorf("tcpdump's decoding shows %s", a)
		}
	}
	for mac := range o.macs {
		if containsText([]byte(dec), mac) {
			t.Errorf("tcpdump's decoding shows MAC %s", mac)
		}
	}
	if loc := reLab.FindString(dec); loc != "" {
		t.Errorf("tcpdump's decoding shows lab address %s", loc)
	}
	bad := regexp.MustCompile(`bad cksum|incorrect`)
	if n := len(bad.FindAllString(dec, -1)); n > 0 {
		t.Errorf("tcpdump finds %d bad checksums in the redacted sample (original: %d)", n, len(bad.FindAllString(runTcpdump(t, tcpdump, orig, "-vvnr"), -1)))
	}
	count := func(s string) int { return strings.Count(s, "\n") }
	if a, b := count(runTcpdump(t, tcpdump, orig, "-nr")), count(runTcpdump(t, tcpdump, red, "-nr")); a != b {
		t.Errorf("tcpdump decodes %d packets in the redacted sample, %d in the original", b, a)
	}
}

type findingKey struct {
	ID, Severity, Listener, Key, Title string
}

// compareReports checks that analyze finds the same findings, with the
// same severities, about the pseudonymised listeners.
func compareReports(t *testing.T, r *redact.Redactor, in, out string) {
	report := func(p string) *analyze.Report {
		s, err := analyze.LoadBundle(p)
		if err != nil {
			t.Fatal(err)
		}
		return analyze.Analyze(s, p, analyze.Rules())
	}
	a, b := report(in), report(out)
	var want, got []findingKey
	for _, f := range a.Findings {
		want = append(want, findingKey{f.ID, f.Severity.String(), r.Addr(f.Listener), f.Key, r.Addr(f.Title)})
	}
	for _, f := range b.Findings {
		got = append(got, findingKey{f.ID, f.Severity.String(), f.Listener, f.Key, f.Title})
	}
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("findings differ:\noriginal (pseudonymised): %v\nredacted: %v", want, got)
	}
	if len(want) == 0 {
		t.Log("no findings in this fixture")
	}
}

// TestSameKeySamePseudonyms redacts the fixtures with two Redactors of one
// key and one of another: the same key gives byte-identical members and the
// same pseudonyms (the lab host's name, shared by all fixtures, included);
// another key gives other pseudonyms and another fingerprint.
func TestSameKeySamePseudonyms(t *testing.T) {
	paths := fixtureBundles(t)
	var hosts []string
	for i, in := range paths {
		a1, err := redact.New(fixedKey(t, "a")).File(in, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		a2, err := redact.New(fixedKey(t, "a")).File(in, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		b, err := redact.New(fixedKey(t, "b")).File(in, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		m1, _ := members(t, a1.Path)
		m2, _ := members(t, a2.Path)
		mb, _ := members(t, b.Path)
		for name, d := range m1 {
			if name != bundle.PathManifest && !bytes.Equal(d, m2[name]) {
				t.Errorf("%s: %s differs between two redactions with one key", paths[i], name)
			}
		}
		if !bytes.Equal(m1[bundle.PathPackets], m1[bundle.PathPackets]) || bytes.Equal(m1[bundle.PathPackets], mb[bundle.PathPackets]) && len(mb[bundle.PathPackets]) > 24 {
			t.Errorf("%s: packet sample the same under another key", paths[i])
		}
		i1, _ := redact.ManifestInfo(a1.Manifest)
		ib, _ := redact.ManifestInfo(b.Manifest)
		if i1.Fingerprint == ib.Fingerprint || a1.Host == b.Host {
			t.Errorf("%s: another key gave fingerprint %s and host %s", paths[i], ib.Fingerprint, b.Host)
		}
		hosts = append(hosts, a1.Host)
		// Redacting twice would map pseudonyms again: refused.
		if _, err := redact.New(fixedKey(t, "a")).File(a1.Path, t.TempDir()); err == nil {
			t.Errorf("%s: a redacted bundle was redacted again", paths[i])
		}
	}
	for _, h := range hosts[1:] {
		if h != hosts[0] {
			t.Errorf("the lab host's pseudonym differs between bundles: %v", hosts)
		}
	}
}

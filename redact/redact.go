// Package redact pseudonymises a snapdiag bundle so it can travel to a
// ticket or a vendor: every IPv4 and IPv6 address, MAC address and the
// host's names are replaced, consistently across every member, by keyed
// pseudonyms. The key stays with the operator; the same key gives the same
// pseudonyms in every bundle, so the bundles of one incident can be
// compared. Addresses keep their prefixes (Crypto-PAn: the same /24 stays the
// same /24) and their class (private, loopback, link-local, multicast), so
// analyze finds the same findings in the redacted bundle.
package redact

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// CollectorName is the name of the manifest entry a redaction adds to the
// collectors: its notes say the scheme and the key's fingerprint (Info reads
// them back).
const CollectorName = "redact"

// Manifest note prefixes of the redact entry.
const (
	noteScheme      = "scheme="
	noteFingerprint = "key_fingerprint="
)

// ErrRedacted is returned when the bundle to redact is already redacted:
// mapping pseudonyms again would make them match no other bundle.
var ErrRedacted = errors.New("bundle is already redacted")

// Redactor rewrites bundles with one key. It caches pseudonyms, so
// redacting the bundles of one incident with one Redactor is faster; it is
// not safe for concurrent use.
type Redactor struct {
	key Key
	m   *mapper
}

// New returns a Redactor for key.
func New(key Key) *Redactor { return &Redactor{key: key, m: newMapper(key)} }

// Info is what a redacted bundle's manifest says about its redaction.
type Info struct {
	Scheme      string
	Fingerprint string
}

// ManifestInfo reports whether m is the manifest of a redacted bundle, and
// with which scheme and key.
func ManifestInfo(m *bundle.Manifest) (Info, bool) {
	if m.Redaction != nil {
		return Info{Scheme: m.Redaction.Scheme, Fingerprint: m.Redaction.KeyFingerprint}, true
	}
	c := m.Collector(CollectorName)
	if c == nil {
		return Info{}, false
	}
	var in Info
	for _, n := range c.Notes {
		if v, ok := strings.CutPrefix(n, noteScheme); ok {
			in.Scheme = v
		}
		if v, ok := strings.CutPrefix(n, noteFingerprint); ok {
			in.Fingerprint = v
		}
	}
	return in, in.Scheme != ""
}

// Result is what Bundle wrote.
type Result struct {
	Path     string
	Manifest *bundle.Manifest
	Pcap     PcapStats
	// Host is the pseudonym of the bundle's host name.
	Host string
	// Damage says what was lost when the source bundle was damaged (cut
	// short, corrupt): the copy holds only the members before the damage.
	// nil for an intact source. Its text names neither the source's path
	// nor its host.
	Damage error
}

// FileName is the name a redacted copy of a bundle gets:
// snapdiag-host-<hmac8>-<time>.tar.zst.
func (r *Redactor) FileName(m *bundle.Manifest) string {
	t := m.Start
	if t.IsZero() {
		t = m.End
	}
	return bundle.FileName(r.m.Host(m.Host.Hostname), t)
}

// Addr returns the pseudonym of an address in text form (10.1.2.3,
// [fd00::1]:443, a MAC, ...): every address in s is replaced as it would be
// in a bundle's text members. Tests and people use it to find an address's
// pseudonym.
func (r *Redactor) Addr(s string) string {
	t := &textScanner{m: r.m}
	return string(t.appendText(nil, []byte(s), false))
}

// Host returns the pseudonym of a host name.
func (r *Redactor) Host(name string) string { return r.m.Host(name) }

// Bundle writes a redacted copy of the bundle at in into dir, under name
// ("" for FileName), through a bundle.Writer: the copy appears under its
// name only when complete, with mode 0600. A damaged bundle is redacted as
// far as it can be read, and the manifest's redact entry says what was
// lost.
func (r *Redactor) Bundle(in, dir, name string) (Result, error) {
	lim := bundle.DefaultLimits()
	lim.Partial = true
	b, err := bundle.Open(in, lim)
	if err != nil {
		return Result{}, err
	}
	defer b.Close()
	src := b.Manifest()
	if info, ok := ManifestInfo(src); ok {
		return Result{}, fmt.Errorf("%s: %w (key fingerprint %s)", in, ErrRedacted, info.Fingerprint)
	}
	start := time.Now()
	j := &job{r: r, b: b, order: byteOrder(src.Host.Machine)}
	j.text = textScanner{m: r.m, names: hostNames(src.Host.Hostname, nodename(b))}
	j.scrub = pathScrubber(in, src.Host.Hostname, r.m.Host(src.Host.Hostname))

	var total int64
	for _, mi := range b.Members() {
		total += mi.Size
	}
	// Pseudonyms can be longer than what they replace (1.2.3.4 ->
	// 10.214.77.130, vm -> host-0123abcd): leave room.
	w, err := bundle.NewWriter(dir, 2*total+16<<20)
	if err != nil {
		return Result{}, err
	}
	defer w.Abort()
	var pstats PcapStats
	for _, mi := range b.Members() {
		if mi.Name == bundle.PathManifest {
			continue
		}
		st, err := j.member(w, mi)
		if err != nil {
			return Result{}, fmt.Errorf("redact %s: %w", mi.Name, err)
		}
		pstats.Packets += st.Packets
		pstats.Truncated += st.Truncated
		pstats.Dropped += st.Dropped
	}
	var damage error
	if d := b.Damage(); d != nil {
		// The damage error starts with the source's path, whose file name
		// holds the host's name: it is rewritten as every manifest string.
		damage = errors.New(j.string(d.Error()))
	}
	m, err := j.finish(src, pstats, damage, time.Since(start))
	if err != nil {
		return Result{}, err
	}
	if name == "" {
		name = r.FileName(src)
	}
	p, err := w.Commit(name, m)
	if err != nil {
		return Result{}, fmt.Errorf("write redacted bundle: %w", err)
	}
	return Result{Path: p, Manifest: m, Pcap: pstats, Host: r.m.Host(src.Host.Hostname), Damage: damage}, nil
}

// finish is the redacted copy of the manifest src, with the redact entry
// that says what was done (and, when damage is not nil, what was lost) and
// the redaction's scheme and key fingerprint.
func (j *job) finish(src *bundle.Manifest, pstats PcapStats, damage error, took time.Duration) (*bundle.Manifest, error) {
	m, err := j.manifest(src)
	if err != nil {
		return nil, err
	}
	notes := []string{
		noteScheme + Scheme,
		noteFingerprint + j.r.key.Fingerprint(),
		"IPv4 and IPv6 addresses (prefix-preserving), MAC addresses and host names replaced by keyed pseudonyms in every member",
	}
	if pstats.Packets > 0 {
		notes = append(notes, fmt.Sprintf("packet sample: %d packets rewritten, %d cut after their transport header", pstats.Packets, pstats.Truncated))
	}
	if pstats.Dropped > 0 {
		notes = append(notes, fmt.Sprintf("packet sample: %d incomplete last record left out", pstats.Dropped))
	}
	st := bundle.CollectorStatus{Name: CollectorName, Status: bundle.StatusOK, Notes: notes,
		DurationMS: float64(took.Microseconds()) / 1000}
	if damage != nil {
		st.Status = bundle.StatusFailed
		st.Error = "source bundle damaged; members after the damage are missing: " + damage.Error()
	}
	m.Collectors = append(m.Collectors, st)
	m.Redaction = &bundle.Redaction{Scheme: Scheme, KeyFingerprint: j.r.key.Fingerprint()}
	return m, nil
}

// job is the redaction of one bundle.
type job struct {
	r     *Redactor
	b     *bundle.Bundle
	text  textScanner
	order binary.ByteOrder
	// scrub rewrites the source bundle's path and bundle file names.
	scrub *strings.Replacer
}

// string is a manifest string redacted: paths and bundle names first (a
// bundle's file name holds the host's name joined to the time by dashes,
// which the name scanner takes for one word), then addresses and names.
func (j *job) string(s string) string { return j.text.string(j.scrub.Replace(s)) }

// pathScrubber rewrites, in a manifest's error texts, the path the source
// bundle was read from (as given and absolute) as "the source bundle", and
// any bundle file name of host (snapdiag-HOST-...) with its pseudonym.
func pathScrubber(in, host, pseudonym string) *strings.Replacer {
	var pairs []string
	seen := map[string]bool{}
	add := func(old, new string) {
		if old != "" && !seen[old] {
			seen[old] = true
			pairs = append(pairs, old, new)
		}
	}
	if in != "" {
		if abs, err := filepath.Abs(in); err == nil {
			add(abs, "the source bundle")
		}
		add(in, "the source bundle")
	}
	if host != "" {
		add(fileNamePrefix(host), fileNamePrefix(pseudonym))
	}
	return strings.NewReplacer(pairs...)
}

// fileNamePrefix is what the names bundle.FileName gives host's bundles
// start with: snapdiag-HOST-.
func fileNamePrefix(host string) string {
	const zero = "00010101T000000Z.tar.zst" // bundle.FileName's time for time.Time{}
	return strings.TrimSuffix(bundle.FileName(host, time.Time{}), zero)
}

func (t *textScanner) string(s string) string { return string(t.appendText(nil, []byte(s), true)) }

// byteOrder is the capturing machine's byte order, in which /proc/net/tcp
// and route print addresses ("%08X" of a __be32 read as a host integer).
func byteOrder(machine string) binary.ByteOrder {
	switch machine {
	case "s390x", "s390", "ppc64", "ppc", "mips", "mips64", "sparc64", "m68k", "parisc", "parisc64":
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// nodename is the second line of system/uname, the host's name as the
// kernel knows it.
func nodename(b *bundle.Bundle) string {
	data, err := bundle.ReadFileLimit(b, bundle.PathUname, 4096)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 2 {
		return ""
	}
	return strings.TrimSpace(lines[1])
}

// kind is how a member is redacted.
type kind int

const (
	kindText      kind = iota // addresses, MACs and host names in text
	kindAddrs                 // addresses and MACs only (sysctl values, where a host name could be a setting)
	kindCopy                  // holds no address: counters, times
	kindUname                 // system/uname: the node name line
	kindSockHex               // /proc/net/tcp, udp, raw: hex ADDR:PORT
	kindRoute                 // /proc/net/route
	kindIPv6Route             // /proc/net/ipv6_route
	kindIfInet6               // /proc/net/if_inet6, anycast6
	kindPcap                  // packets/*.pcap
)

// counterFiles are /proc/net files that hold counters, protocol tables or
// kernel pointers, never an address: copied as they are, so no host name
// that happens to be a word in them (an interface, a protocol) is touched.
var counterFiles = map[string]bool{
	"netstat": true, "snmp": true, "snmp6": true, "sockstat": true, "sockstat6": true,
	"softnet_stat": true, "dev": true, "protocols": true, "netlink": true, "packet": true,
	"ptype": true, "psched": true,
}

func kindOf(name string) kind {
	base := path.Base(name)
	dir := path.Dir(name)
	switch {
	case name == bundle.PathUname:
		return kindUname
	case name == bundle.PathUptime, name == bundle.PathLoadavg, name == bundle.PathMeminfo,
		name == bundle.PathProcStat, name == bundle.PathBootID:
		return kindCopy
	case strings.HasPrefix(name, bundle.DirSamples+"/") && base == bundle.SampleTimeFile:
		return kindCopy
	case strings.HasPrefix(name, "packets/") && strings.HasSuffix(name, ".pcap"):
		return kindPcap
	case strings.HasSuffix(dir, "proc/net/stat"):
		return kindCopy
	case strings.HasSuffix(name, "proc/sys/net/netfilter/nf_conntrack_count"):
		return kindCopy
	case strings.HasPrefix(name, bundle.DirSysctl+"/") || strings.Contains(name, "/proc/sys/"):
		return kindAddrs
	case strings.HasSuffix(dir, "proc/net"):
		switch base {
		case "tcp", "tcp6", "udp", "udp6", "udplite", "udplite6", "raw", "raw6", "icmp", "icmp6":
			return kindSockHex
		case "route":
			return kindRoute
		case "ipv6_route":
			return kindIPv6Route
		case "if_inet6", "anycast6":
			return kindIfInet6
		}
		if counterFiles[base] {
			return kindCopy
		}
	}
	return kindText
}

// member redacts one member into w.
func (j *job) member(w *bundle.Writer, mi bundle.MemberInfo) (PcapStats, error) {
	f, err := j.b.Open(mi.Name)
	if err != nil {
		return PcapStats{}, err
	}
	defer f.Close()
	var st PcapStats
	k := kindOf(mi.Name)
	// Small members are redacted in memory and handed over whole (the
	// Writer keeps them in memory too); large ones are streamed.
	if mi.Size <= 256<<10 {
		var buf bytes.Buffer
		if st, err = j.redact(k, f, &buf); err != nil {
			return st, err
		}
		return st, w.WriteFile(mi.Name, buf.Bytes())
	}
	out, err := w.Create(mi.Name)
	if err != nil {
		return st, err
	}
	if st, err = j.redact(k, f, out); err != nil {
		out.Close()
		return st, err
	}
	return st, out.Close()
}

func (j *job) redact(k kind, r io.Reader, w io.Writer) (PcapStats, error) {
	switch k {
	case kindCopy:
		_, err := io.Copy(w, r)
		return PcapStats{}, err
	case kindPcap:
		return j.r.m.rewritePcap(r, w)
	}
	first := true
	var routeCols [3]int
	return PcapStats{}, eachLine(r, w, func(dst, line []byte) []byte {
		defer func() { first = false }()
		switch k {
		case kindText:
			return j.text.appendText(dst, line, true)
		case kindAddrs:
			return j.text.appendText(dst, line, false)
		case kindSockHex:
			if !first {
				j.r.m.sockLine(line, j.order)
			}
		case kindRoute:
			if first {
				routeCols[0], routeCols[1], routeCols[2] = routeColumns(line)
			} else {
				j.r.m.routeLine(line, routeCols[0], routeCols[1], routeCols[2], j.order)
			}
		case kindIPv6Route:
			j.r.m.ipv6RouteLine(line)
		case kindIfInet6:
			j.r.m.firstHexLine(line)
		}
		return append(dst, line...)
	}, k == kindUname, j.r.m.Host)
}

// eachLine copies r to w through fn, a line at a time (newline included).
// A line longer than maxLine is cut at its last space or punctuation, where
// no address or name can be split. With uname, the second line is the node
// name and is replaced whole by host(name); the other lines (release,
// version) must reach the analyzer exactly as the kernel wrote them.
func eachLine(r io.Reader, w io.Writer, fn func(dst, line []byte) []byte, uname bool, host func(string) string) error {
	const maxLine = 64 << 10
	br := bufio.NewReaderSize(r, maxLine)
	bw := bufio.NewWriterSize(w, 64<<10)
	if b, ok := w.(*bytes.Buffer); ok {
		// A small member: one buffer for its content is enough.
		bw = bufio.NewWriterSize(b, 16)
		br = bufio.NewReaderSize(r, 4<<10)
	}
	var out []byte
	for n := 0; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			cut := bytes.LastIndexFunc(line, func(c rune) bool { return c < 128 && !isAddrChar(byte(c)) && !isNameChar(byte(c)) })
			if cut < 0 {
				cut = len(line) - 1
			}
			// Unread the rest: it starts the next chunk.
			chunk := append([]byte(nil), line[:cut+1]...)
			rest := append([]byte(nil), line[cut+1:]...)
			br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(rest), br), maxLine)
			line, err = chunk, nil
		}
		if len(line) > 0 {
			if uname && n == 1 {
				name := strings.TrimRight(string(line), "\r\n")
				out = append(out[:0], host(name)...)
				out = append(out, line[len(name):]...)
			} else if uname {
				out = append(out[:0], line...)
			} else {
				out = fn(out[:0], line)
			}
			if _, werr := bw.Write(out); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	return bw.Flush()
}

// manifest returns the redacted copy of m: the host name becomes its
// pseudonym, and every other string (the trigger's reason and check target,
// collector errors and notes, the packet filter, anything a later format
// adds) has its addresses and names replaced, except the fields that hold
// no address and that the analyzer must read as they are: the kernel
// release and version, the tool, times, collector names, statuses and the
// member names.
func (j *job) manifest(m *bundle.Manifest) (*bundle.Manifest, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	v = j.walk(v, "")
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	rm, err := bundle.ParseManifest(out)
	if err != nil {
		return nil, fmt.Errorf("redacted manifest: %w", err)
	}
	rm.Host.Hostname = j.r.m.Host(m.Host.Hostname)
	return rm, nil
}

// keptFields are the manifest's JSON paths whose strings are copied.
var keptFields = map[string]bool{
	"format": true, "tool": true, "start": true, "end": true,
	"host.kernel_release": true, "host.kernel_version": true, "host.machine": true,
	"host.boot_id": true, "host.cap_eff": true, "host.capabilities": true,
	"collectors.name": true, "collectors.status": true, "collectors.files": true,
}

func (j *job) walk(v any, at string) any {
	if keptFields[at] {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if at != "" {
				p = at + "." + k
			}
			x[k] = j.walk(e, p)
		}
	case []any:
		for i, e := range x {
			x[i] = j.walk(e, at)
		}
	case string:
		return j.string(x)
	}
	return v
}

// File redacts the bundle at in into out, which is either a directory (the
// copy gets FileName) or the path of a file that must not exist yet.
func (r *Redactor) File(in, out string) (Result, error) {
	dir, name := out, ""
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		// name stays "": the redacted file name
	} else if err == nil {
		return Result{}, fmt.Errorf("%s: %w", out, fs.ErrExist)
	} else if _, lerr := os.Lstat(out); lerr == nil {
		// A dangling symlink: a name that exists, refused like a file.
		return Result{}, fmt.Errorf("%s: %w", out, fs.ErrExist)
	} else if errors.Is(err, fs.ErrNotExist) {
		dir, name = filepath.Dir(out), filepath.Base(out)
	} else {
		return Result{}, err
	}
	return r.Bundle(in, dir, name)
}

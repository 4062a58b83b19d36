package analyze

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// Snapshot is the parsed view of one bundle: everything the rules read.
// Members the bundle lacks leave their fields empty; Gaps says which and why.
type Snapshot struct {
	// Manifest is nil when the bundle has none.
	Manifest *bundle.Manifest
	Kernel   KernelVersion
	Sysctls  Sysctls
	Samples  []Sample
	// Sockets is nil when sockets/tcp.jsonl is absent.
	Sockets *SocketAggregates
	// Summary is nil when sockets/summary.json is absent.
	Summary *bundle.SocketSummary
	// Packets is nil when packets/sample.pcap is absent.
	Packets *PacketAnalysis
	Kmsg    []KmsgLine
	// FileNr is fs.file-nr: allocated, free, max (nil when absent).
	FileNr []int64
	// Processes are the owners of listeners at or near their backlog, nil
	// when the bundle has no processes.json.
	Processes []*ProcessState
	// Gaps lists members that were missing or could not be parsed.
	Gaps []Gap
	// Damage is set when the bundle was read despite damage (cut short, or
	// corrupt after some members; bundle.ErrTruncated, bundle.ErrCorrupt):
	// the members from the damage on are lost.
	Damage error
	// Namespaces are the other network namespaces of a whole-node bundle
	// (capture --all-netns), in the manifest's order; nil otherwise.
	Namespaces []*Namespace

	// netns is set on the snapshot of one namespace of a whole-node
	// bundle, and own then holds the sysctls its folder has (the others
	// are the host's).
	netns *bundle.NetNS
	own   map[string]bool

	kmsgNet bool // the listen-path lines came from system/kmsg_net
	// names interns the counters' flattened names while loading: 600
	// samples share one string per counter.
	names map[string]map[string]Counter
}

// counter returns the counter group.name, its name interned.
func (s *Snapshot) counter(group, name string) Counter {
	if s.names == nil {
		s.names = map[string]map[string]Counter{}
	}
	g := s.names[group]
	if g == nil {
		g = map[string]Counter{}
		s.names[group] = g
	}
	c, ok := g[name]
	if !ok {
		c = Counter{name: group + "." + name}
		g[name] = c
	}
	return c
}

// Gap is a member the analysis had to do without.
type Gap struct {
	Path string `json:"path"`
	Err  string `json:"error"`
	// Cause is the error itself, for errors.Is: fs.ErrNotExist for an
	// absent member, bundle.ErrNotPcap for a packet sample that is not a
	// classic pcap, bundle.ErrLimit for one past the reader's limits, ...
	Cause error `json:"-"`
}

// Sample is one counter sample (samples/NNN/).
type Sample struct {
	Index int
	Dir   string
	// Time is nil when the sample has no readable time file.
	Time *bundle.SampleTime
	// Values holds every counter the sample's files have, named
	// "Group.Name": "TcpExt.ListenDrops", "Tcp.PassiveOpens",
	// "Snmp6.Ip6InReceives", "Sockstat.TCP.tw", "Softnet.dropped",
	// "Dev.eth0.rx_drop", "Conntrack.drop", "Conntrack.count".
	Values map[Counter]int64
	// Files maps a counter group ("TcpExt", "Softnet", ...) to the member
	// it was read from.
	Files     map[string]string
	Softnet   []SoftnetCPU
	Listeners []bundle.Listener
	// HasListeners is true when listeners.json was read, even if empty.
	HasListeners bool
	// NoSynRecv is true when the listeners' syn_recv are not counts: a
	// namespace of a whole-node bundle dumps LISTEN sockets only until it
	// is chosen for detail (NamespaceEntry.SynRecvFrom).
	NoSynRecv bool
}

// Value returns counter c of the sample.
func (s *Sample) Value(c Counter) (int64, bool) {
	v, ok := s.Values[c]
	return v, ok
}

// Source is the member path counter c was read from: the file of its group.
func (s *Sample) Source(c Counter) string {
	// A counter read from a file of its own (Conntrack.count, from
	// nf_conntrack_count) is recorded under its full name, the others under
	// their group's file.
	if p, ok := s.Files[c.String()]; ok {
		return p
	}
	if p, ok := s.Files[c.group()]; ok {
		return p
	}
	return s.Dir
}

// Limits on what Load reads from one member.
const (
	maxCounterFile = 8 << 20
	maxSysctlFiles = 20000
	maxKmsgBytes   = 32 << 20
)

// ErrNotBundle is returned by Load for a file system that holds neither a
// manifest nor any counter sample.
var ErrNotBundle = errors.New("not a snapdiag bundle: no manifest and no samples")

// Load parses a bundle's members from fsys, which holds them at the paths of
// the bundle package. Missing or damaged members are tolerated and listed in
// Gaps; Load fails only when the manifest is of another format, or when there
// is neither a manifest nor a sample.
func Load(fsys fs.FS) (*Snapshot, error) {
	s := &Snapshot{Sysctls: Sysctls{}}
	data, err := bundle.ReadFileLimit(fsys, bundle.PathManifest, bundle.DefaultLimits().MaxManifest)
	switch {
	case err == nil:
		m, perr := bundle.ParseManifest(data)
		if perr != nil {
			return nil, fmt.Errorf("read %s: %w", bundle.PathManifest, perr)
		}
		s.Manifest = m
	default:
		s.gap(bundle.PathManifest, err)
	}
	s.loadSysctls(fsys)
	s.loadKernel(fsys)
	s.loadSamples(fsys)
	if s.Manifest == nil && len(s.Samples) == 0 {
		return nil, ErrNotBundle
	}
	s.loadFileNr(fsys)
	s.loadKmsg(fsys)
	s.loadSockets(fsys)
	s.loadPackets(fsys)
	s.loadProcesses(fsys)
	s.loadNamespaces(fsys)
	if d, ok := fsys.(damaged); ok && d.Damage() != nil {
		// Whoever reads the bundle this way (analyze, the tui) sees the
		// same bundle-incomplete finding.
		s.Damage = d.Damage()
		s.Gaps = append(s.Gaps, Gap{Path: ".", Err: s.Damage.Error(), Cause: s.Damage})
	}
	s.names = nil
	return s, nil
}

// damaged is a bundle read despite damage (bundle.Open with Partial).
type damaged interface{ Damage() error }

func (s *Snapshot) gap(p string, err error) {
	msg := err.Error()
	if errors.Is(err, fs.ErrNotExist) {
		msg = "absent"
	}
	s.Gaps = append(s.Gaps, Gap{Path: p, Err: msg, Cause: err})
}

// read parses member p through at most its first n bytes, or records a gap.
func (s *Snapshot) read(fsys fs.FS, p string, n int64, parse func(io.Reader) error) bool {
	f, err := fsys.Open(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.gap(p, err)
		}
		return false
	}
	defer f.Close()
	if err := parse(io.LimitReader(f, n)); err != nil {
		s.gap(p, err)
		return false
	}
	return true
}

func (s *Snapshot) loadSysctls(fsys fs.FS) {
	n := 0
	err := fs.WalkDir(fsys, bundle.DirSysctl, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() || n >= maxSysctlFiles {
			return nil
		}
		n++
		name := strings.ReplaceAll(strings.TrimPrefix(p, bundle.DirSysctl+"/"), "/", ".")
		s.read(fsys, p, 64<<10, func(r io.Reader) error {
			v, err := parseSysctlValue(r)
			if err == nil {
				s.Sysctls[name] = v
			}
			return err
		})
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.gap(bundle.DirSysctl, err)
	}
}

func (s *Snapshot) loadKernel(fsys fs.FS) {
	var cands []string
	if s.Manifest != nil {
		cands = append(cands, s.Manifest.Host.KernelRelease)
	}
	cands = append(cands, s.Sysctls["kernel.osrelease"])
	if b, err := bundle.ReadFileLimit(fsys, bundle.PathUname, 4096); err == nil {
		// One field per line (sysname, nodename, release, ...), or
		// "Linux host 6.18.44-fc-v657 #1 SMP ..." on one line, or the release.
		if lines := strings.Split(string(b), "\n"); len(lines) >= 3 {
			cands = append(cands, lines[2])
		} else if f := strings.Fields(string(b)); len(f) >= 3 {
			cands = append(cands, f[2])
		} else if len(f) == 1 {
			cands = append(cands, f[0])
		}
	}
	for _, c := range cands {
		if !strings.Contains(c, ".") {
			continue
		}
		if k, err := parseKernelRelease(c); err == nil {
			s.Kernel = k
			return
		}
	}
	if len(cands) > 0 && cands[0] != "" {
		s.Kernel.Release = cands[0]
	}
}

func (s *Snapshot) loadSamples(fsys fs.FS) {
	ents, err := fs.ReadDir(fsys, bundle.DirSamples)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.gap(bundle.DirSamples, err)
		}
		return
	}
	var idx []int
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		i, err := strconv.Atoi(e.Name())
		if err != nil || i < 0 || bundle.SampleDir(i) != path.Join(bundle.DirSamples, e.Name()) {
			continue
		}
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		// Each sample holds about the counters of the one before: sizing its
		// map so keeps a node's thousand samples from holding twice the
		// slots they use. The first guesses a host's /proc/net, or, in a
		// namespace of a whole-node bundle, grows to its netstat and snmp.
		hint := 512
		if n := len(s.Samples); n > 0 {
			hint = len(s.Samples[n-1].Values)
		} else if s.netns != nil {
			hint = 0
		}
		s.Samples = append(s.Samples, loadSample(s, fsys, i, hint))
	}
}

func loadSample(s *Snapshot, fsys fs.FS, i, hint int) Sample {
	sm := Sample{Index: i, Dir: bundle.SampleDir(i), Values: make(map[Counter]int64, hint), Files: map[string]string{}}
	file := func(name string) string { return bundle.SampleFile(i, name) }
	s.read(fsys, file(bundle.SampleTimeFile), 64<<10, func(r io.Reader) error {
		t, err := bundle.DecodeSampleTime(r)
		if err != nil {
			return err
		}
		sm.Time = &t
		return nil
	})
	for _, name := range []string{bundle.SampleNetstat, bundle.SampleSNMP} {
		p := file(name)
		s.read(fsys, p, maxCounterFile, func(r io.Reader) error {
			c, err := parseNetstat(r)
			for g, m := range c {
				sm.Files[g] = p
				for k, v := range m {
					sm.Values[s.counter(g, k)] = v
				}
			}
			return err
		})
	}
	p6 := file(bundle.SampleSNMP6)
	s.read(fsys, p6, maxCounterFile, func(r io.Reader) error {
		m, err := parseSNMP6(r)
		for k, v := range m {
			sm.Values[s.counter(snmp6Group, k)] = v
		}
		sm.Files[snmp6Group] = p6
		return err
	})
	for _, ss := range []struct{ name, group string }{{bundle.SampleSockstat, sockstatGroup}, {bundle.SampleSockstat6, sockstat6Group}} {
		p := file(ss.name)
		s.read(fsys, p, maxCounterFile, func(r io.Reader) error {
			c, err := parseSockstat(r)
			for proto, m := range c {
				for k, v := range m {
					sm.Values[s.counter(ss.group+"."+proto, k)] = v
				}
			}
			sm.Files[ss.group] = p
			return err
		})
	}
	pSoft := file(bundle.SampleSoftnet)
	s.read(fsys, pSoft, maxCounterFile, func(r io.Reader) error {
		cpus, err := parseSoftnet(r)
		if err != nil {
			return err
		}
		sm.Softnet = cpus
		var proc, drop, sq uint64
		for _, c := range cpus {
			proc += c.Processed
			drop += c.Dropped
			sq += c.TimeSqueeze
		}
		sm.Values[softnetProcessed] = int64(proc)
		sm.Values[softnetDropped] = int64(drop)
		sm.Values[softnetTimeSqueeze] = int64(sq)
		sm.Files[softnetGroup] = pSoft
		return nil
	})
	pDev := file(bundle.SampleDev)
	s.read(fsys, pDev, maxCounterFile, func(r io.Reader) error {
		devs, err := parseNetDev(r)
		if err != nil {
			return err
		}
		for name, d := range devs {
			g := devGroup + "." + name
			sm.Values[s.counter(g, devRxPackets.name)] = int64(d.RxPackets)
			sm.Values[s.counter(g, devRxDrop.name)] = int64(d.RxDrop)
			sm.Values[s.counter(g, devRxFifo.name)] = int64(d.RxFifo)
			sm.Values[s.counter(g, devRxErrs.name)] = int64(d.RxErrs)
		}
		sm.Files[devGroup] = pDev
		return nil
	})
	pCT := file(bundle.SampleConntrack)
	s.read(fsys, pCT, maxCounterFile, func(r io.Reader) error {
		m, err := parseConntrackStat(r)
		if err != nil {
			return err
		}
		for k, v := range m {
			sm.Values[s.counter(conntrackGroup, k)] = int64(v)
		}
		sm.Files[conntrackGroup] = pCT
		return nil
	})
	pCount := file(bundle.SampleCTCount)
	s.read(fsys, pCount, 4096, func(r io.Reader) error {
		v, err := parseSysctlValue(r)
		if err != nil {
			return err
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("nf_conntrack_count %q: %w", v, err)
		}
		sm.Values[conntrackCount] = n
		sm.Files[conntrackCount.name] = pCount
		return nil
	})
	s.read(fsys, file(bundle.SampleListeners), bundle.MaxListenersFile, func(r io.Reader) error {
		ls, err := bundle.DecodeListeners(r)
		if err != nil {
			return err
		}
		sm.Listeners, sm.HasListeners = ls, true
		return nil
	})
	return sm
}

func (s *Snapshot) loadFileNr(fsys fs.FS) {
	if v, ok := s.Sysctls.Ints("fs.file-nr"); ok && len(v) == 3 {
		s.FileNr = v
		return
	}
	// system/file-nr, where a collector stored it with the system files.
	if b, err := bundle.ReadFileLimit(fsys, "system/file-nr", 4096); err == nil {
		tmp := Sysctls{"f": strings.Join(strings.Fields(string(b)), " ")}
		if v, ok := tmp.Ints("f"); ok && len(v) == 3 {
			s.FileNr = v
		}
	}
}

// loadKmsg reads the kernel log tail and the listen-path lines the capture
// kept from the whole ring (system/kmsg_net), without duplicates: the
// SYN-flood warning is printed once per listener and may lie far before the
// tail.
func (s *Snapshot) loadKmsg(fsys fs.FS) {
	seen := map[int64]bool{}
	add := func(ls []KmsgLine) {
		for _, l := range ls {
			if l.Seq >= 0 {
				if seen[l.Seq] {
					continue
				}
				seen[l.Seq] = true
			}
			s.Kmsg = append(s.Kmsg, l)
		}
	}
	s.read(fsys, bundle.PathKmsgNet, maxKmsgBytes, func(r io.Reader) error {
		l, err := parseKmsg(r)
		add(l)
		s.kmsgNet = len(l) > 0
		return err
	})
	s.read(fsys, bundle.PathKmsg, maxKmsgBytes, func(r io.Reader) error {
		l, err := parseKmsg(r)
		add(l)
		return err
	})
	sort.SliceStable(s.Kmsg, func(i, j int) bool { return s.Kmsg[i].Seq < s.Kmsg[j].Seq })
}

func (s *Snapshot) loadSockets(fsys fs.FS) {
	s.read(fsys, bundle.PathSocketsSummary, bundle.MaxSocketSummaryFile, func(r io.Reader) error {
		sum, err := bundle.DecodeSocketSummary(r)
		s.Summary = sum
		return err
	})
	lo, hi := 0, 0
	if r, ok := s.Sysctls.Ints("net.ipv4.ip_local_port_range"); ok && len(r) == 2 {
		lo, hi = int(r[0]), int(r[1])
	}
	s.read(fsys, bundle.PathSocketsTCP, 4<<30, func(r io.Reader) error {
		agg, err := parseSocketsTCP(r, lo, hi)
		s.Sockets = agg
		return err
	})
}

// loadPackets reads the packet sample. The pcap reader bounds what it reads
// (bundle.DefaultPcapLimits), so the member is not cut short here: a sample
// past the limits is a gap wrapping bundle.ErrLimit, not a silent cut.
func (s *Snapshot) loadPackets(fsys fs.FS) {
	s.read(fsys, bundle.PathPackets, bundle.DefaultPcapLimits().MaxBytes+1, func(r io.Reader) error {
		var info *bundle.PacketsInfo
		if s.Manifest != nil {
			info = s.Manifest.Packets
		}
		pa, err := parsePcap(r, info)
		s.Packets = pa
		return err
	})
}

// KmsgMatching returns the kernel log lines containing substr.
func (s *Snapshot) KmsgMatching(substr string) []KmsgLine {
	var out []KmsgLine
	for _, l := range s.Kmsg {
		if strings.Contains(l.Message, substr) {
			out = append(out, l)
		}
	}
	return out
}

// CapturedAt is when the bundle was captured: the manifest's start, else the
// first sample's wall clock, else the zero time.
func (s *Snapshot) CapturedAt() time.Time {
	if s.Manifest != nil && !s.Manifest.Start.IsZero() {
		return s.Manifest.Start
	}
	for _, sm := range s.Samples {
		if sm.Time != nil {
			if t, err := time.Parse(time.RFC3339Nano, sm.Time.Wall); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

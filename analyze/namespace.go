package analyze

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
)

// Namespace is one network namespace of a whole-node bundle (capture
// --all-netns), loaded as if its folder were a bundle of its own.
type Namespace struct {
	// Entry is the manifest's entry for the namespace.
	Entry bundle.NamespaceEntry
	// Snap is the namespace's snapshot: its samples, listeners, sysctls,
	// socket table and packets from its folder; the kernel, the kernel log,
	// fs.file-nr and the sysctls it lacks are the host's.
	Snap *Snapshot
}

// Limits on the namespaces Load reads from a whole-node bundle. A node runs
// a few hundred pods at most; a manifest listing more is damaged or hostile,
// and reading it whole would cost without bound.
const (
	maxNamespaces      = 4096
	maxNamespaceErrors = 8
)

// errBadNamespace is the cause of the gap of a namespace entry that was not
// read: a folder outside netns/, a duplicate, past the limit.
var errBadNamespace = errors.New("namespace entry refused")

// nsError is a namespace entry's error as a gap's cause.
type nsError struct{ msg string }

func (e *nsError) Error() string { return e.msg }
func (e *nsError) Unwrap() error { return errBadNamespace }

// checkNamespaceDir accepts dir only as the namespace's own folder,
// netns/<inode>: anything else (a path outside netns/, "..", a nested or
// absolute path, another namespace's folder) could make the analysis read
// members that are not the namespace's.
func checkNamespaceDir(e bundle.NamespaceEntry) error {
	if e.NetNS.Inode == 0 {
		return &nsError{"namespace entry without an inode"}
	}
	want := bundle.NetNSDir(e.NetNS.Inode)
	if e.Dir != want || !fs.ValidPath(e.Dir) {
		return &nsError{fmt.Sprintf("namespace %d: dir %q is not %s", e.NetNS.Inode, e.Dir, want)}
	}
	return nil
}

// loadNamespaces loads each namespace the manifest lists from its folder.
// Entries that are refused, and what the capture could not read from a
// namespace, become the host's gaps: the bundle rule, which runs once,
// reports them.
func (s *Snapshot) loadNamespaces(fsys fs.FS) {
	if s.Manifest == nil || s.Manifest.Namespaces == nil {
		return
	}
	ents := s.Manifest.Namespaces.Entries
	if n := len(ents); n > maxNamespaces {
		s.Gaps = append(s.Gaps, Gap{Path: bundle.PathManifest,
			Err:   fmt.Sprintf("namespaces: %d entries, past the limit of %d: the rest were not read", n, maxNamespaces),
			Cause: &nsError{"too many namespaces"}})
		ents = ents[:maxNamespaces]
	}
	seen := make(map[uint64]bool, len(ents))
	var empty []string
	defer func() {
		// One gap for every namespace without samples, not one each: a
		// capture cut short may leave hundreds.
		if len(empty) > 0 {
			msg := fmt.Sprintf("%d namespaces have no counter samples (folder missing or empty): %s",
				len(empty), strings.Join(empty[:min(len(empty), 5)], ", "))
			if len(empty) > 5 {
				msg += ", ..."
			}
			s.Gaps = append(s.Gaps, Gap{Path: bundle.DirNetNS, Err: msg, Cause: &nsError{"no samples"}})
		}
	}()
	for _, e := range ents {
		if err := checkNamespaceDir(e); err != nil {
			s.Gaps = append(s.Gaps, Gap{Path: bundle.PathManifest, Err: err.Error(), Cause: err})
			continue
		}
		if seen[e.NetNS.Inode] {
			err := &nsError{fmt.Sprintf("namespace %d listed twice: the second entry was not read", e.NetNS.Inode)}
			s.Gaps = append(s.Gaps, Gap{Path: bundle.PathManifest, Err: err.Error(), Cause: err})
			continue
		}
		seen[e.NetNS.Inode] = true
		for i, msg := range e.Errors {
			if i == maxNamespaceErrors {
				s.Gaps = append(s.Gaps, Gap{Path: e.Dir, Err: fmt.Sprintf("%d more errors", len(e.Errors)-i), Cause: &nsError{"capture errors"}})
				break
			}
			s.Gaps = append(s.Gaps, Gap{Path: e.Dir, Err: msg, Cause: &nsError{msg}})
		}
		if st, err := fs.Stat(fsys, e.Dir); err != nil || !st.IsDir() {
			empty = append(empty, e.Dir)
			continue
		}
		n, err := s.loadNamespace(fsys, e)
		if err != nil {
			s.gap(e.Dir, err)
			continue
		}
		if len(n.Samples) == 0 {
			empty = append(empty, e.Dir)
		}
		s.Namespaces = append(s.Namespaces, &Namespace{Entry: e, Snap: n})
	}
}

// loadNamespace reads one namespace's folder as a bundle. What is the host's
// whatever the namespace (the kernel, its log, fs.file-nr, the global
// sysctls) is shared with the host's snapshot, not read again: a node's
// kernel log is read once, not once per namespace.
func (s *Snapshot) loadNamespace(fsys fs.FS, e bundle.NamespaceEntry) (*Snapshot, error) {
	sub, err := fs.Sub(fsys, e.Dir)
	if err != nil {
		return nil, fmt.Errorf("open namespace folder %s: %w", e.Dir, err)
	}
	n := &Snapshot{Sysctls: Sysctls{}, names: s.names, Kernel: s.Kernel, Kmsg: s.Kmsg, kmsgNet: s.kmsgNet, FileNr: s.FileNr,
		netns: &e.NetNS}
	if s.Manifest != nil {
		// The namespace shares the host's manifest except for what
		// describes the host's own members: its packet sample and socket
		// table, and the namespace itself.
		m := *s.Manifest
		m.NetNS = &e.NetNS
		m.Packets, m.Sockets, m.Namespaces = nil, nil, nil
		n.Manifest = &m
	}
	n.loadSysctls(sub)
	n.own = make(map[string]bool, len(n.Sysctls))
	for k := range n.Sysctls {
		n.own[k] = true
	}
	for k, v := range s.Sysctls {
		if _, ok := n.Sysctls[k]; !ok && !interfaceSysctl(k) {
			n.Sysctls[k] = v
		}
	}
	n.loadSamples(sub)
	for i := range n.Samples {
		from := e.SynRecvFrom
		n.Samples[i].NoSynRecv = from == nil || n.Samples[i].Index < *from
	}
	// The namespace's samples are taken at the host's moments, samples/NNN
	// beside netns/<inode>/samples/NNN, and carry no clock of their own.
	for i := range n.Samples {
		if n.Samples[i].Time == nil {
			n.Samples[i].Time = s.sampleTime(n.Samples[i].Index)
		}
	}
	n.loadSockets(sub)
	n.loadPackets(sub)
	n.loadProcesses(sub)
	for _, g := range n.Gaps {
		if errors.Is(g.Cause, fs.ErrNotExist) {
			continue // a namespace without detail has no socket table
		}
		g.Path = path.Join(e.Dir, g.Path)
		s.Gaps = append(s.Gaps, g)
	}
	n.Gaps, n.names = nil, nil
	return n, nil
}

// NetNS is the namespace the snapshot is of when it is one namespace of a
// whole-node bundle; nil for a bundle's top level.
func (s *Snapshot) NetNS() *bundle.NetNS { return s.netns }

// inheritedSysctl is true when key is not the namespace's own but the
// host's, filled in because the namespace's folder lacks it.
func (s *Snapshot) inheritedSysctl(key string) bool {
	return s.netns != nil && !s.own[key]
}

// Namespace returns the namespace with inode ino, nil when the bundle has
// none such.
func (s *Snapshot) Namespace(ino uint64) *Namespace {
	for _, n := range s.Namespaces {
		if n.Entry.NetNS.Inode == ino {
			return n
		}
	}
	return nil
}

// NamespaceSummary is one namespace's line in the report of a whole-node
// bundle: who it is, how many listeners, and what was found in it.
type NamespaceSummary struct {
	NetNS bundle.NetNS `json:"netns"`
	// Dir is the namespace's folder in the bundle; empty for the host's,
	// the bundle's top level.
	Dir       string `json:"dir,omitempty"`
	Listeners int    `json:"listeners"`
	// Worst is the most severe finding's severity; empty when there are
	// no findings.
	Worst    string `json:"worst,omitempty"`
	Findings int    `json:"findings"`
}

// hostNetNS names the host's namespace, the top level of a whole-node
// bundle.
func hostNetNS(s *Snapshot) bundle.NetNS {
	if s.Manifest != nil && s.Manifest.NetNS != nil {
		return *s.Manifest.NetNS
	}
	n := bundle.NetNS{NamedBy: bundle.NamedBySelf, HostNS: true}
	if s.Manifest != nil {
		n.Inode = s.Manifest.Host.NetNSInode
	}
	return n
}

// analyzeNamespaces runs the per-namespace rules over each namespace, and
// returns their findings, each naming its namespace, and the summary of
// the host's namespace (with hostFindings) and every other.
func analyzeNamespaces(s *Snapshot, rules []Rule, hostFindings []Finding) ([]Finding, []NamespaceSummary) {
	var per []Rule
	for _, r := range rules {
		if !r.Global {
			per = append(per, r)
		}
	}
	sum := make([]NamespaceSummary, 0, len(s.Namespaces)+1)
	host := NamespaceSummary{NetNS: hostNetNS(s), Listeners: len(lastListeners(s))}
	host.tally(hostFindings)
	sum = append(sum, host)
	var out []Finding
	for _, n := range s.Namespaces {
		fs := RunRules(n.Snap, per)
		ns := &n.Entry.NetNS
		for i := range fs {
			fs[i].NetNS = ns
			for j := range fs[i].Evidence {
				fs[i].Evidence[j].Source = n.source(fs[i].Evidence[j].Source)
			}
			for j := range fs[i].Recommendations {
				n.inside(&fs[i].Recommendations[j])
			}
		}
		l := NamespaceSummary{NetNS: n.Entry.NetNS, Dir: n.Entry.Dir, Listeners: n.Entry.Listeners}
		if sm := lastListeners(n.Snap); len(sm) > 0 || l.Listeners == 0 {
			l.Listeners = len(sm)
		}
		l.tally(fs)
		sum = append(sum, l)
		out = append(out, fs...)
	}
	return out, sum
}

// tally counts findings and their worst severity into the summary.
func (l *NamespaceSummary) tally(fs []Finding) {
	l.Findings = len(fs)
	if len(fs) == 0 {
		return
	}
	w := Info
	for _, f := range fs {
		w = max(w, f.Severity)
	}
	l.Worst = w.String()
}

// lastListeners are the listeners of the last sample that has them.
func lastListeners(s *Snapshot) []bundle.Listener {
	for i := len(s.Samples) - 1; i >= 0; i-- {
		if s.Samples[i].HasListeners {
			return s.Samples[i].Listeners
		}
	}
	return nil
}

// namespaceLabel is how a finding's namespace is named before its title:
// "pod imap/dovecot-7d9f (container dovecot): ", "" for the host's.
func namespaceLabel(n *bundle.NetNS) string {
	if n == nil {
		return ""
	}
	return strings.TrimSpace(n.String()) + ": "
}

// sampleTime is the clock of the host's sample with index i, nil when
// there is none.
func (s *Snapshot) sampleTime(i int) *bundle.SampleTime {
	for j := range s.Samples {
		if s.Samples[j].Index == i {
			return s.Samples[j].Time
		}
	}
	return nil
}

// source is the bundle path of a member a namespace's rule quotes as
// evidence: the rules name members as in a bundle of one namespace
// (samples/002/proc/net/netstat), and those that are the namespace's own
// are under its folder (netns/<inode>/samples/...). The kernel log, the
// system files, the manifest and the sysctls the namespace lacks are the
// host's, at the top level.
func (n *Namespace) source(src string) string {
	switch {
	case strings.HasPrefix(src, bundle.DirSamples+"/"), strings.HasPrefix(src, "sockets/"),
		strings.HasPrefix(src, "packets/"), src == bundle.PathProcesses:
	case strings.HasPrefix(src, bundle.DirSysctl+"/"):
		key := strings.ReplaceAll(strings.TrimPrefix(src, bundle.DirSysctl+"/"), "/", ".")
		if n.Snap.inheritedSysctl(key) {
			return src
		}
	default:
		return src
	}
	return n.Entry.Dir + "/" + src
}

// inside makes a sysctl recommendation about one of the namespace's own
// sysctls act on the namespace: net.* sysctls are per network namespace, so
// sysctl -w on the host would not change the pod's. The commands run
// through nsenter into the namespace file; the /etc/sysctl.d line is
// dropped, as the host's boot applies it to the host's namespace only.
func (n *Namespace) inside(rec *Recommendation) {
	if rec.Action != "sysctl" || n.Snap.inheritedSysctl(rec.Key) {
		return
	}
	file := n.Entry.NetNS.Path
	if file == "" && n.Entry.NetNS.PID > 0 {
		file = "/proc/" + strconv.Itoa(n.Entry.NetNS.PID) + "/ns/net"
	}
	if file == "" {
		return
	}
	for k, c := range rec.Commands {
		if strings.HasPrefix(c, "sysctl ") {
			rec.Commands[k] = "nsenter --net=" + file + " " + c
		}
	}
	rec.Persist = ""
}

// interfaceSysctl is true for a sysctl of one network interface
// (net.ipv4.conf.eth0.rp_filter, net.ipv6.neigh.eth0.*): the host's
// interfaces are not a namespace's, so a namespace does not inherit their
// settings. The all and default entries are the namespace's defaults, and
// are inherited like the other sysctls.
func interfaceSysctl(key string) bool {
	for _, p := range []string{"net.ipv4.conf.", "net.ipv6.conf.", "net.ipv4.neigh.", "net.ipv6.neigh."} {
		if rest, ok := strings.CutPrefix(key, p); ok {
			return !strings.HasPrefix(rest, "all.") && !strings.HasPrefix(rest, "default.")
		}
	}
	return false
}

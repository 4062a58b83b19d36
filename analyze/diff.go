package analyze

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/snapdiag/snapdiag/bundle"
)

// DiffSchema is the schema of the JSON diff this package writes.
const DiffSchema = "snapdiag.diff/v1"

// Diff is what changed between two bundles, A (before, or the healthy host)
// and B (after, or the failing host): sysctls, listeners, counter rates,
// findings. Only differences are listed; a bundle read despite damage is
// compared as far as it goes, and its gaps say what is missing.
type Diff struct {
	Schema string   `json:"schema"`
	A      DiffSide `json:"a"`
	B      DiffSide `json:"b"`
	// Host and Kernel are set when the host name or the kernel release
	// differ.
	Host   *Change `json:"host,omitempty"`
	Kernel *Change `json:"kernel,omitempty"`
	// Sysctls lists every key whose value differs or that only one bundle
	// has: the listen-path ones (bundle.ListenPathSysctls) first, then the
	// others by name.
	Sysctls []SysctlChange `json:"sysctls"`
	// Listeners lists the listeners, matched by local ADDR:PORT, whose
	// state differs or that only one bundle has, by port.
	Listeners []ListenerChange `json:"listeners"`
	// Counters are the listen-path counters' rates over each bundle's
	// samples, for those that moved in either.
	Counters []CounterRate `json:"counters"`
	// Findings are the findings that appeared, went away or changed
	// severity, matched by id, listener, sysctl key and namespace.
	Findings []FindingChange `json:"findings"`
	// Namespaces compares the other network namespaces of whole-node
	// bundles (capture --all-netns), matched by inode: the sysctls each
	// has of its own, its listeners and its counters. Empty but for
	// whole-node bundles; the findings above are every namespace's.
	Namespaces []NamespaceDiff `json:"namespaces,omitempty"`
	// Gaps are what either bundle lacked, so what the diff could not say.
	Gaps []DiffGap `json:"gaps"`
}

// NamespaceDiff is one namespace of whole-node bundles that differs. A
// namespace only one bundle has is listed with Only "a" or "b" and nothing
// else: a namespace inode is not reused while the namespace lives, and a
// pod re-created gets a new one.
type NamespaceDiff struct {
	NetNS     bundle.NetNS     `json:"netns"`
	Only      string           `json:"only,omitempty"`
	Sysctls   []SysctlChange   `json:"sysctls"`
	Listeners []ListenerChange `json:"listeners"`
	Counters  []CounterRate    `json:"counters"`
}

// DiffSide identifies one of the two bundles.
type DiffSide struct {
	Path          string  `json:"path"`
	Host          string  `json:"host"`
	Kernel        string  `json:"kernel"`
	CapturedAt    string  `json:"captured_at"`
	Samples       int     `json:"samples"`
	WindowSeconds float64 `json:"window_seconds"`
	Verdict       string  `json:"verdict"`
	// Damaged is true when the bundle was read despite damage.
	Damaged bool `json:"damaged"`
}

// Change is a value that differs between A and B.
type Change struct {
	A string `json:"a"`
	B string `json:"b"`
}

// SysctlChange is one sysctl that differs. A or B is nil where that bundle
// lacks the key.
type SysctlChange struct {
	Key        string  `json:"key"`
	A          *string `json:"a"`
	B          *string `json:"b"`
	ListenPath bool    `json:"listen_path"`
}

// ListenerChange is one listener that differs between the bundles. A or B
// is nil where that bundle does not have it.
type ListenerChange struct {
	Listener string        `json:"listener"`
	A        *ListenerSide `json:"a"`
	B        *ListenerSide `json:"b"`
	// Changed names the fields that differ: backlog, accept_queue_max,
	// syn_recv_max, drops_per_second, process; only_a or only_b for a
	// listener one bundle lacks.
	Changed []string `json:"changed"`
}

// ListenerSide is a listener as one bundle shows it.
type ListenerSide struct {
	// Backlog is its listen backlog (Send-Q of a LISTEN socket).
	Backlog uint32 `json:"backlog"`
	// AcceptQueue and SynRecv are the most seen in any sample.
	AcceptQueue uint32 `json:"accept_queue_max"`
	SynRecv     int    `json:"syn_recv_max"`
	// DropsPerSecond is its own drop counter's rate, nil when the bundle
	// has no per-socket drops or no clock.
	DropsPerSecond *float64 `json:"drops_per_second"`
	Process        *Process `json:"process,omitempty"`
}

// CounterRate is one counter's rate per second in each bundle; A or B is
// nil where that bundle cannot say (fewer than two samples, no clock, a
// reset). Ratio is B/A, nil when A is not positive.
type CounterRate struct {
	Counter string   `json:"counter"`
	A       *float64 `json:"a"`
	B       *float64 `json:"b"`
	Ratio   *float64 `json:"ratio"`
}

// FindingChange is a finding that appeared in B, went away from A, or
// changed severity.
type FindingChange struct {
	// Change is "appeared", "gone" or "severity".
	Change   string   `json:"change"`
	ID       string   `json:"id"`
	Listener string   `json:"listener"`
	Key      string   `json:"key"`
	Severity Severity `json:"severity"`
	// From is A's severity when Change is "severity".
	From  *Severity     `json:"from,omitempty"`
	Title string        `json:"title"`
	NetNS *bundle.NetNS `json:"netns,omitempty"`
}

// DiffGap is a member one bundle lacked or could not parse.
type DiffGap struct {
	// Bundle is "a" or "b".
	Bundle string `json:"bundle"`
	Path   string `json:"path"`
	Error  string `json:"error"`
}

// Finding changes.
const (
	FindingAppeared = "appeared"
	FindingGone     = "gone"
	FindingSeverity = "severity"
)

// diffCounters are the counters the listen-path rules read, whose rates
// the diff compares.
var diffCounters = []Counter{
	tcpExtListenOverflows, tcpExtListenDrops, tcpExtTCPReqQFullDrop, tcpExtTCPReqQFullDoCookies,
	tcpExtSyncookiesSent, tcpExtSyncookiesRecv, tcpExtSyncookiesFailed, tcpExtTCPSynRetrans,
	tcpExtEmbryonicRsts, tcpPassiveOpens, tcpOutRsts,
}

// Compare diffs snapshots a and b, read from pathA and pathB, analyzing
// each with rules.
func Compare(a *Snapshot, pathA string, b *Snapshot, pathB string, rules []Rule) *Diff {
	ra, rb := Analyze(a, pathA, rules), Analyze(b, pathB, rules)
	d := &Diff{Schema: DiffSchema, A: diffSide(a, ra), B: diffSide(b, rb),
		Sysctls: []SysctlChange{}, Listeners: []ListenerChange{}, Counters: []CounterRate{},
		Findings: []FindingChange{}, Gaps: []DiffGap{}}
	if d.A.Host != d.B.Host {
		d.Host = &Change{A: d.A.Host, B: d.B.Host}
	}
	ka, kb := a.Kernel.Release, b.Kernel.Release
	if ka != kb {
		d.Kernel = &Change{A: ka, B: kb}
	}
	var lostA, lostB int
	d.Sysctls, lostA, lostB = diffSysctls(a.Sysctls, a.Damage != nil, b.Sysctls, b.Damage != nil)
	d.Listeners = diffListeners(a, b)
	d.Counters = diffRates(a, b)
	d.Findings = diffFindings(ra.Findings, rb.Findings)
	d.Namespaces = diffNamespaces(a, b)
	for _, g := range a.Gaps {
		d.Gaps = append(d.Gaps, DiffGap{Bundle: "a", Path: g.Path, Error: g.Err})
	}
	for _, g := range b.Gaps {
		d.Gaps = append(d.Gaps, DiffGap{Bundle: "b", Path: g.Path, Error: g.Err})
	}
	for _, l := range []struct {
		side string
		n    int
	}{{"a", lostA}, {"b", lostB}} {
		if l.n > 0 {
			d.Gaps = append(d.Gaps, DiffGap{Bundle: l.side, Path: bundle.DirSysctl,
				Error: fmt.Sprintf("%d sysctls the other bundle has were lost to the damage: not compared", l.n)})
		}
	}
	return d
}

// diffRates lists the listen-path counters that moved in a or b.
func diffRates(a, b *Snapshot) []CounterRate {
	out := []CounterRate{}
	for _, c := range diffCounters {
		if r, ok := counterRate(a, b, c); ok {
			out = append(out, r)
		}
	}
	return out
}

// diffNamespaces compares the namespaces of two whole-node bundles by
// inode, in A's order then B's, listing those that differ.
func diffNamespaces(a, b *Snapshot) []NamespaceDiff {
	var out []NamespaceDiff
	for _, na := range a.Namespaces {
		nb := b.Namespace(na.Entry.NetNS.Inode)
		if nb == nil {
			out = append(out, onlyNamespace(na, "a"))
			continue
		}
		nd := NamespaceDiff{NetNS: nb.Entry.NetNS, Listeners: diffListeners(na.Snap, nb.Snap), Counters: diffRates(na.Snap, nb.Snap)}
		// The sysctls a namespace's folder lacks are the host's, compared
		// above: only its own are compared here.
		nd.Sysctls, _, _ = diffSysctls(na.Snap.ownSysctls(), na.Snap.Damage != nil, nb.Snap.ownSysctls(), nb.Snap.Damage != nil)
		if len(nd.Sysctls)+len(nd.Listeners) > 0 || slices.ContainsFunc(nd.Counters, func(r CounterRate) bool { return rate(r.A) != rate(r.B) }) {
			out = append(out, nd)
		}
	}
	for _, nb := range b.Namespaces {
		if a.Namespace(nb.Entry.NetNS.Inode) == nil {
			out = append(out, onlyNamespace(nb, "b"))
		}
	}
	return out
}

// onlyNamespace is namespace n, which only bundle side has.
func onlyNamespace(n *Namespace, side string) NamespaceDiff {
	return NamespaceDiff{NetNS: n.Entry.NetNS, Only: side, Sysctls: []SysctlChange{}, Listeners: []ListenerChange{}, Counters: []CounterRate{}}
}

// ownSysctls are the sysctls of a namespace's own folder.
func (s *Snapshot) ownSysctls() Sysctls {
	out := Sysctls{}
	for k, v := range s.Sysctls {
		if !s.inheritedSysctl(k) {
			out[k] = v
		}
	}
	return out
}

func diffSide(s *Snapshot, r *Report) DiffSide {
	return DiffSide{Path: r.Bundle.Path, Host: r.Bundle.Host, Kernel: s.Kernel.Release, CapturedAt: r.Bundle.CapturedAt,
		Samples: r.Bundle.Samples, WindowSeconds: r.Bundle.WindowSeconds, Verdict: r.Verdict, Damaged: s.Damage != nil}
}

// sysctlReading are the sysctls that are readings of the moment, not
// settings: fs.file-nr (handles allocated, free, max) differs between any
// two captures and would bury the settings that changed.
var sysctlReading = map[string]bool{"fs.file-nr": true}

// diffSysctls lists the keys that differ, the listen-path ones first. A
// key absent from a damaged bundle is not a difference but a loss: it is
// left out, and counted in lostA or lostB.
func diffSysctls(a Sysctls, damagedA bool, b Sysctls, damagedB bool) (out []SysctlChange, lostA, lostB int) {
	out = []SysctlChange{}
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for k := range keys {
		if sysctlReading[k] {
			continue
		}
		va, oka := a[k]
		vb, okb := b[k]
		switch {
		case oka && okb && va == vb:
			continue
		case !oka && damagedA:
			lostA++
			continue
		case !okb && damagedB:
			lostB++
			continue
		}
		c := SysctlChange{Key: k, ListenPath: slices.Contains(bundle.ListenPathSysctls, k)}
		if oka {
			c.A = &va
		}
		if okb {
			c.B = &vb
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y SysctlChange) int {
		if x.ListenPath != y.ListenPath {
			if x.ListenPath {
				return -1
			}
			return 1
		}
		if x.ListenPath {
			return cmp.Compare(slices.Index(bundle.ListenPathSysctls, x.Key), slices.Index(bundle.ListenPathSysctls, y.Key))
		}
		return cmp.Compare(x.Key, y.Key)
	})
	return out, lostA, lostB
}

// diffListeners matches listeners by local ADDR:PORT. Sockets of an
// SO_REUSEPORT group share one: the group is shown by its first socket,
// with the group's SYN-RECV and the sum of their drop rates.
func diffListeners(a, b *Snapshot) []ListenerChange {
	la, lb := listenerSides(a), listenerSides(b)
	var names []string
	for n := range la {
		names = append(names, n)
	}
	for n := range lb {
		if _, ok := la[n]; !ok {
			names = append(names, n)
		}
	}
	type byPort struct {
		c    ListenerChange
		port int
	}
	var changed []byPort
	for _, n := range names {
		sa, sb := la[n], lb[n]
		c := ListenerChange{Listener: n, A: sa.side, B: sb.side, Changed: changedFields(sa.side, sb.side)}
		if len(c.Changed) > 0 {
			changed = append(changed, byPort{c, cmp.Or(sa.state, sb.state).Port})
		}
	}
	slices.SortFunc(changed, func(x, y byPort) int {
		return cmp.Or(cmp.Compare(x.port, y.port), cmp.Compare(x.c.Listener, y.c.Listener))
	})
	out := []ListenerChange{}
	for _, x := range changed {
		out = append(out, x.c)
	}
	return out
}

type listenerEntry struct {
	side  *ListenerSide
	state *ListenerState
}

func listenerSides(s *Snapshot) map[string]listenerEntry {
	out := map[string]listenerEntry{}
	for _, l := range s.Listeners() {
		e, ok := out[l.Local]
		if !ok {
			e = listenerEntry{side: &ListenerSide{Backlog: l.SendQ, Process: l.process()}, state: l}
		}
		e.side.AcceptQueue = max(e.side.AcceptQueue, l.MaxRecvQ())
		e.side.SynRecv = max(e.side.SynRecv, l.MaxSynRecv())
		if l.Drops.Known && l.Drops.Seconds > 0 {
			r := round2(l.Drops.PerSecond)
			if e.side.DropsPerSecond != nil {
				r = round2(*e.side.DropsPerSecond + l.Drops.PerSecond)
			}
			e.side.DropsPerSecond = &r
		}
		out[l.Local] = e
	}
	return out
}

// changedFields names the fields of a listener that differ; "only_a" or
// "only_b" for a listener one bundle lacks.
func changedFields(a, b *ListenerSide) []string {
	switch {
	case b == nil:
		return []string{"only_a"}
	case a == nil:
		return []string{"only_b"}
	}
	var out []string
	if a.Backlog != b.Backlog {
		out = append(out, "backlog")
	}
	if a.AcceptQueue != b.AcceptQueue {
		out = append(out, "accept_queue_max")
	}
	if a.SynRecv != b.SynRecv {
		out = append(out, "syn_recv_max")
	}
	if rate(a.DropsPerSecond) != rate(b.DropsPerSecond) {
		out = append(out, "drops_per_second")
	}
	if (a.Process == nil) != (b.Process == nil) || (a.Process != nil && *a.Process != *b.Process) {
		out = append(out, "process")
	}
	return out
}

// rate prints a rate for comparison: nil and a number differ.
func rate(f *float64) string {
	if f == nil {
		return "-"
	}
	return strconv.FormatFloat(*f, 'f', 2, 64)
}

// counterRate is counter c's rate in each bundle, and false when it moved
// in neither.
func counterRate(a, b *Snapshot, c Counter) (CounterRate, bool) {
	r := CounterRate{Counter: c.String()}
	da, db := a.Delta(c), b.Delta(c)
	if da.OK && da.Seconds > 0 {
		v := round2(da.PerSecond)
		r.A = &v
	}
	if db.OK && db.Seconds > 0 {
		v := round2(db.PerSecond)
		r.B = &v
	}
	if !da.Moved() && !db.Moved() {
		return r, false
	}
	if r.A != nil && r.B != nil && *r.A > 0 {
		v := round2(*r.B / *r.A)
		r.Ratio = &v
	}
	return r, true
}

// findingKey matches a finding across bundles.
type findingKey struct {
	id, listener, key string
	netns             uint64
}

func keyOf(f Finding) findingKey {
	k := findingKey{id: f.ID, listener: f.Listener, key: f.Key}
	if f.NetNS != nil {
		k.netns = f.NetNS.Inode
	}
	return k
}

// worstByKey keeps, for each key, the most severe finding, in the order
// of first appearance.
func worstByKey(fs []Finding) ([]findingKey, map[findingKey]Finding) {
	var order []findingKey
	m := map[findingKey]Finding{}
	for _, f := range fs {
		k := keyOf(f)
		old, ok := m[k]
		if !ok {
			order = append(order, k)
		}
		if !ok || f.Severity > old.Severity {
			m[k] = f
		}
	}
	return order, m
}

func diffFindings(a, b []Finding) []FindingChange {
	out := []FindingChange{}
	oa, ma := worstByKey(a)
	ob, mb := worstByKey(b)
	change := func(kind string, f Finding) FindingChange {
		return FindingChange{Change: kind, ID: f.ID, Listener: f.Listener, Key: f.Key, Severity: f.Severity, Title: f.Title, NetNS: f.NetNS}
	}
	for _, k := range oa {
		fa := ma[k]
		fb, ok := mb[k]
		switch {
		case !ok:
			out = append(out, change(FindingGone, fa))
		case fa.Severity != fb.Severity:
			c := change(FindingSeverity, fb)
			from := fa.Severity
			c.From = &from
			out = append(out, c)
		}
	}
	for _, k := range ob {
		if _, ok := ma[k]; !ok {
			out = append(out, change(FindingAppeared, mb[k]))
		}
	}
	order := map[string]int{FindingAppeared: 0, FindingSeverity: 1, FindingGone: 2}
	slices.SortStableFunc(out, func(x, y FindingChange) int {
		return cmp.Or(cmp.Compare(order[x.Change], order[y.Change]), cmp.Compare(y.Severity, x.Severity),
			cmp.Compare(x.ID, y.ID), cmp.Compare(x.Listener, y.Listener), cmp.Compare(x.Key, y.Key))
	})
	return out
}

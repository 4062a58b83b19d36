package analyze

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/nodebundle"
)

const (
	fixHealthy = "../fixtures/healthy-busy/bundle.tar.zst"
	fixSYN     = "../fixtures/synflood-cookies-off-v4/bundle.tar.zst"
	fixAccept  = "../fixtures/accept-queue-never-accepts/bundle.tar.zst"
)

// nodeSpec is n namespaces recorded healthy, but for the SYN flood at
// index syn and the stuck acceptor at index acc, each a pod of its own.
func nodeSpec(n, syn, acc int) []nodebundle.Namespace {
	out := make([]nodebundle.Namespace, n)
	for i := range out {
		ino := uint64(4026532000 + i)
		out[i] = nodebundle.Namespace{NetNS: nodebundle.Pod(ino, "shop", fmt.Sprintf("web-%d", i), "web"), From: fixHealthy}
		switch i {
		case syn:
			out[i].From, out[i].Detail = fixSYN, true
		case acc:
			out[i].From, out[i].Detail = fixAccept, true
		}
	}
	return out
}

// perNamespaceIDs are the ids of the findings the per-namespace rules make
// of the recorded bundle p analyzed on its own.
func perNamespaceIDs(t *testing.T, p string) (ids []string, listener string) {
	t.Helper()
	s, err := LoadPath(p)
	if err != nil {
		t.Fatal(err)
	}
	var per []Rule
	for _, r := range Rules() {
		if !r.Global {
			per = append(per, r)
		}
	}
	for _, f := range RunRules(s, per) {
		ids = append(ids, f.ID)
		if listener == "" && f.Listener != "" {
			listener = f.Listener
		}
	}
	return ids, listener
}

// A node of 200 namespaces, one with a SYN-queue overflow and one with an
// accept-queue overflow: the report holds the findings of those two, each
// naming its pod, the same as each incident's bundle analyzed on its own,
// and nothing for the 198 healthy namespaces.
func TestWholeNodeFindsTheSickNamespaces(t *testing.T) {
	const n, syn, acc = 200, 57, 143
	spec := nodeSpec(n, syn, acc)
	p := nodebundle.Write(t, t.TempDir(), fixHealthy, spec)
	s, err := LoadPath(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Namespaces) != n {
		t.Fatalf("loaded %d namespaces, want %d (gaps %v)", len(s.Namespaces), n, s.Gaps)
	}
	r := Analyze(s, p, Rules())

	got := map[uint64][]string{}
	var hostIDs []string
	for _, f := range r.Findings {
		if f.NetNS == nil {
			hostIDs = append(hostIDs, f.ID)
			continue
		}
		got[f.NetNS.Inode] = append(got[f.NetNS.Inode], f.ID)
		if f.NetNS.Owner == nil || f.NetNS.Owner.Pod == nil {
			t.Errorf("finding %s names no pod: %+v", f.ID, f.NetNS)
		}
	}
	synIDs, synListener := perNamespaceIDs(t, fixSYN)
	accIDs, accListener := perNamespaceIDs(t, fixAccept)
	if !slices.Contains(synIDs, IDSynQueueOverflow) || !slices.Contains(accIDs, IDAcceptQueueOverflow) {
		t.Fatalf("the fixtures no longer show their incidents: %v, %v", synIDs, accIDs)
	}
	want := map[uint64][]string{spec[syn].NetNS.Inode: synIDs, spec[acc].NetNS.Inode: accIDs}
	sortIDs := func(m map[uint64][]string) {
		for _, v := range m {
			slices.Sort(v)
		}
	}
	sortIDs(got)
	sortIDs(want)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("findings per namespace (-want +got):\n%s", d)
	}
	for _, f := range r.Findings {
		switch {
		case f.NetNS == nil:
		case f.ID == IDSynQueueOverflow && f.Listener != synListener:
			t.Errorf("syn-queue-overflow on %q, want %q", f.Listener, synListener)
		case f.ID == IDAcceptQueueOverflow && f.Listener != accListener:
			t.Errorf("accept-queue-overflow on %q, want %q", f.Listener, accListener)
		}
	}

	// The host's own findings are those of its bundle alone.
	hs, err := LoadPath(fixHealthy)
	if err != nil {
		t.Fatal(err)
	}
	var wantHost []string
	for _, f := range Analyze(hs, fixHealthy, Rules()).Findings {
		wantHost = append(wantHost, f.ID)
	}
	if d := cmp.Diff(wantHost, hostIDs); d != "" {
		t.Errorf("host findings (-want +got):\n%s", d)
	}

	// The summary: the host first, then every namespace; those with
	// findings are the two.
	if len(r.Namespaces) != n+1 || !r.Namespaces[0].NetNS.HostNS && r.Namespaces[0].Dir != "" {
		t.Fatalf("namespaces summary: %d entries, first %+v", len(r.Namespaces), r.Namespaces[0])
	}
	var sick []uint64
	for _, ns := range r.Namespaces[1:] {
		if ns.Findings > 0 {
			sick = append(sick, ns.NetNS.Inode)
		}
		if ns.Listeners == 0 {
			t.Errorf("namespace %d: no listeners counted", ns.NetNS.Inode)
		}
	}
	if d := cmp.Diff([]uint64{spec[syn].NetNS.Inode, spec[acc].NetNS.Inode}, sick); d != "" {
		t.Errorf("namespaces with findings (-want +got):\n%s", d)
	}
	if w, _ := r.Worst(); ExitCode(r) != ExitCritical || w != Critical {
		t.Errorf("exit code %d (worst %s), want %d", ExitCode(r), w, ExitCritical)
	}
	if r.Findings[0].NetNS == nil {
		t.Errorf("the verdict's finding %s is not a namespace's", r.Findings[0].ID)
	}
}

// A bundle without namespaces is analyzed as before: no summary, no
// namespace on any finding.
func TestSingleBundleHasNoNamespaces(t *testing.T) {
	s, err := LoadPath(fixSYN)
	if err != nil {
		t.Fatal(err)
	}
	r := Analyze(s, fixSYN, Rules())
	if r.Namespaces != nil || s.Namespaces != nil {
		t.Errorf("namespaces in a single bundle: %v", r.Namespaces)
	}
	for _, f := range r.Findings {
		if f.NetNS != nil {
			t.Errorf("finding %s has netns %+v", f.ID, f.NetNS)
		}
	}
}

// A host-wide finding (here the file table, from the kernel log) is
// reported once, for the host, not once per namespace; a namespace finding
// names its pod in the markdown heading.
func TestGlobalFindingsOnce(t *testing.T) {
	m, members := nodebundle.Build(t, fixHealthy, nodeSpec(20, 3, -1))
	members[bundle.PathKmsg] = append(slices.Clone(members[bundle.PathKmsg]),
		"4,9000,5000000000,-;VFS: file-max limit 1048576 reached\n"...)
	s := loadBuilt(t, m, members)
	r := Analyze(s, "node", Rules())
	byID := map[string][]*bundle.NetNS{}
	for _, f := range r.Findings {
		byID[f.ID] = append(byID[f.ID], f.NetNS)
	}
	if got := byID[IDFDExhaustion]; len(got) != 1 || got[0] != nil {
		t.Errorf("fd-exhaustion findings: %v, want one, the host's", got)
	}
	var md bytes.Buffer
	if err := RenderMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	var syn *Finding
	for i := range r.Findings {
		if r.Findings[i].ID == IDSynQueueOverflow {
			syn = &r.Findings[i]
		}
	}
	if syn == nil || syn.NetNS == nil {
		t.Fatalf("no syn-queue-overflow of a namespace: %v", byID)
	}
	heading := "### " + strings.ToUpper(syn.Severity.String()) + " " + mdEscape(syn.NetNS.String()+": "+syn.Title)
	if !slices.Contains(strings.Split(md.String(), "\n"), heading) {
		t.Errorf("no heading %q in the markdown report", heading)
	}
}

// TestSynRecvFromLeavesOutUncountedSamples: a namespace of a whole-node
// capture dumps LISTEN sockets only until it is chosen for detail
// (syn_recv_from), so the syn_recv of its earlier samples are no readings:
// the listener's SYN-RECV series starts at syn_recv_from, and a namespace
// never chosen has none.
func TestSynRecvFromLeavesOutUncountedSamples(t *testing.T) {
	spec := nodeSpec(2, 0, -1)
	spec[1].From = fixSYN // the same flood, never chosen for detail
	m, members := nodebundle.Build(t, fixHealthy, spec)
	top, err := LoadPath(fixSYN)
	if err != nil {
		t.Fatal(err)
	}
	last := top.Samples[len(top.Samples)-1].Index
	m.Namespaces.Entries[0].SynRecvFrom = &last
	s := loadBuilt(t, m, members)
	for _, tc := range []struct {
		ino  uint64
		want int // SYN-RECV readings of the flooded listener
	}{{spec[0].NetNS.Inode, 1}, {spec[1].NetNS.Inode, 0}} {
		n := s.Namespace(tc.ino)
		if n == nil {
			t.Fatalf("namespace %d not loaded", tc.ino)
		}
		for _, l := range n.Snap.Listeners() {
			if l.Port != 8080 {
				continue
			}
			if len(l.SynRecvs) != tc.want || len(l.GroupSizes) != tc.want {
				t.Errorf("namespace %d: listener %s has %d SYN-RECV readings (%d group sizes) over %d samples, want %d",
					tc.ino, l.Local, len(l.SynRecvs), len(l.GroupSizes), len(n.Snap.Samples), tc.want)
			}
		}
	}
}

// loadBuilt loads the whole-node bundle nodebundle.Build made (m and its
// members), as edited by the test.
func loadBuilt(t *testing.T, m *bundle.Manifest, members map[string][]byte) *Snapshot {
	t.Helper()
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{bundle.PathManifest: {Data: mb}}
	for name, data := range members {
		fsys[name] = &fstest.MapFile{Data: data}
	}
	s, err := Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
